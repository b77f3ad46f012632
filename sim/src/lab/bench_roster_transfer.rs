//! `kazashi-lab bench roster-transfer --scale N`: an N-person roster (the synthetic city, as
//! `bench roster` makes it) pinned in a manifest, served by one laptop's running mesh, and
//! fetched over loopback UDP by a laptop enrolled with no roster store
//! (`kazashi_node::roster_net`, the path `kazashi node` takes), timed:
//!
//! - `transfer_s`: from the request to the new roster store written and open — the index, every
//!   chunk checked and kept in the encrypted store, the pinned hash recomputed over the entries,
//!   the roster validated and the store built (`RosterDb::create`) and opened;
//! - `open_verified_s`: then the folder opened as a station would (`enrolled::open`: the store
//!   read back whole and its hash checked against the pin);
//! - `resume_s`: the same transfer again from nothing, cut (the task dropped, as a killed
//!   process) once half the chunks are in, then resumed from a fresh start to the store open;
//!   the time of the resumed run;
//! - `chunks_total`, `chunks_before_cut` (held when it resumed) and `chunks_after_resume`
//!   (fetched by the resumed run: about half);
//! - `peak_rss` of the process (both laptops).
//!
//! Without `--scale` it runs at 1 000 000 people, the figure (the goal: `transfer_s`
//! ≤ 30 s); the lab's other benches keep their default of 100 000.

use crate::bench::{emit, memory_mib};
use crate::bench_log::TempDir;
use kazashi_node::enrolled::{self, Folder, META_SITE};
use kazashi_node::mesh::{Mesh, MeshConfig};
use kazashi_node::roster_fetch::RosterTarget;
use kazashi_node::roster_net::{FolderFetch, Standalone};
use kazashi_node::{KdfParams, Node, Store, SystemClock};
use kazashi_sim::fleet::fleet;
use kazashi_sim::population::shelter_operation;
use kazashi_sync::DeviceKey;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASS: &str = "bench passphrase";
const ROSTER_PASS: &str = "bench roster passphrase";
const NAME: &str = "roster-transfer";

pub fn run(args: &crate::bench::BenchArgs) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let result = rt.block_on(bench(args));
    rt.shutdown_timeout(Duration::from_secs(2));
    result
}

fn remove_roster(folder: &Folder) {
    let p = folder.roster_path();
    for suffix in ["", ".text", ".kdf"] {
        let mut f = p.as_os_str().to_owned();
        f.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(f));
    }
}

/// The scale when `--scale` is not given: the 1 M people.
pub const DEFAULT_SCALE: usize = 1_000_000;

/// `--scale` as typed, or [`DEFAULT_SCALE`] when it was not (the lab's shared `--scale`
/// default, 100 000, is for the other benches).
fn scale(args: &crate::bench::BenchArgs) -> usize {
    if scale_typed(std::env::args()) {
        args.scale
    } else {
        DEFAULT_SCALE
    }
}

/// Whether the command line names `--scale` (`--scale N` or `--scale=N`).
fn scale_typed(mut argv: impl Iterator<Item = String>) -> bool {
    argv.any(|a| a == "--scale" || a.starts_with("--scale="))
}

async fn bench(args: &crate::bench::BenchArgs) -> Result<(), String> {
    let n = scale(args);
    if !(1000..=20_000_000).contains(&n) {
        return Err("--scale (roster persons) must be between 1000 and 20000000".into());
    }
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let m = crate::bench::town_of_people(n, args.seed)?;
    let today = m.today;
    let persons = m.roster.len();
    let d = shelter_operation(&m, 1).map_err(|x| e(&x))?;
    let fleet = fleet(&d, args.seed)?;
    let roster = Arc::new(m.roster);
    let pinned = roster.hash();
    let dir = TempDir::for_bench(NAME)?;
    let [(site_a, key_a), (site_b, key_b), ..] = fleet.stations.as_slice() else {
        return Err("the fleet has fewer than two laptops".into());
    };

    // Laptop A runs on the roster and serves it.
    let node = Node::create(
        &dir.0.join("a.db"),
        PASS,
        KdfParams::FAST_INSECURE,
        DeviceKey::from_seed(key_a.secret_bytes()),
        &fleet.manifest,
        roster.clone(),
        *site_a,
        SystemClock,
    )
    .map_err(|x| e(&x))?;
    let mesh = Mesh::start(
        node,
        MeshConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            mdns: false,
            ..MeshConfig::default()
        },
    )
    .await
    .map_err(|x| e(&x))?;
    let at_a = mesh.addrs().into_iter().next().ok_or("A has no address")?;

    // Laptop B: enrolled (key, manifest, site), no roster store.
    let folder = Folder::new(dir.0.join("b"));
    std::fs::create_dir_all(&folder.dir).map_err(|x| e(&x))?;
    {
        let store = Store::create(&folder.store_path(), PASS, KdfParams::FAST_INSECURE)
            .map_err(|x| e(&x))?;
        store
            .set_identity(&DeviceKey::from_seed(key_b.secret_bytes()))
            .map_err(|x| e(&x))?;
        store.set_manifest(&fleet.manifest).map_err(|x| e(&x))?;
        store
            .set_meta(META_SITE, site_b.as_str().as_bytes())
            .map_err(|x| e(&x))?;
    }
    let how = FolderFetch {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        peers: vec![(at_a.device, at_a.addr)],
        kdf: KdfParams::FAST_INSECURE,
    };
    let target = RosterTarget::new(folder.roster_path(), ROSTER_PASS, KdfParams::FAST_INSECURE);

    // Whole.
    let t = Instant::now();
    let (host, secret) = Standalone::open(&folder, PASS).map_err(|x| e(&x))?;
    let got = host
        .run(secret, &how, &target, today)
        .await
        .map_err(|x| e(&x))?;
    let transfer_s = t.elapsed().as_secs_f64();
    drop(host);
    if got.roster.hash() != pinned {
        return Err("the roster received is not the pinned one".into());
    }
    drop(got);
    let t = Instant::now();
    let (opened, r) = enrolled::open(&folder, PASS, ROSTER_PASS, SystemClock).map_err(|x| e(&x))?;
    let open_s = t.elapsed().as_secs_f64();
    if r.hash() != pinned || r.len() != persons {
        return Err("the folder opened on another roster".into());
    }
    drop((opened, r));
    emit(NAME, "transfer_s", transfer_s, "s", persons);
    emit(NAME, "open_verified_s", open_s, "s", persons);

    // Cut at half, resumed.
    remove_roster(&folder);
    let (host, secret) = Standalone::open(&folder, PASS).map_err(|x| e(&x))?;
    let first = {
        let (host, how, target) = (host.clone(), how.clone(), target.clone());
        tokio::spawn(async move { host.run(secret, &how, &target, today).await })
    };
    let started = Instant::now();
    let total = loop {
        let s = host.status();
        if s.chunks_total > 0 && s.chunks_held * 2 >= s.chunks_total {
            first.abort();
            break s.chunks_total;
        }
        if first.is_finished() || started.elapsed() > Duration::from_secs(600) {
            return Err(format!("the first run ended before half: {s:?}"));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let _ = first.await;
    drop(host);
    let held = Store::open(&folder.store_path(), PASS)
        .and_then(|s| s.roster_chunks(&pinned.0))
        .map_err(|x| e(&x))?
        .len();
    let t = Instant::now();
    let (host, secret) = Standalone::open(&folder, PASS).map_err(|x| e(&x))?;
    let got = host
        .run(secret, &how, &target, today)
        .await
        .map_err(|x| e(&x))?;
    let resume_s = t.elapsed().as_secs_f64();
    if got.roster.hash() != pinned || got.total != total {
        return Err("the resumed transfer gave another roster".into());
    }
    emit(NAME, "resume_s", resume_s, "s", persons);
    emit(NAME, "chunks_total", total as f64, "chunks", persons);
    emit(NAME, "chunks_before_cut", held as f64, "chunks", persons);
    emit(
        NAME,
        "chunks_after_resume",
        got.fetched as f64,
        "chunks",
        persons,
    );
    if let Some((_, peak)) = memory_mib() {
        emit(NAME, "peak_rss", peak, "MiB", persons);
    }
    mesh.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_scale_is_a_million_unless_scale_is_typed() {
        let argv = |a: &[&str]| {
            a.iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .into_iter()
        };
        assert!(!scale_typed(argv(&[
            "kazashi-lab",
            "bench",
            "roster-transfer"
        ])));
        assert!(scale_typed(argv(&[
            "kazashi-lab",
            "bench",
            "roster-transfer",
            "--scale",
            "5000"
        ])));
        assert!(scale_typed(argv(&[
            "kazashi-lab",
            "bench",
            "roster-transfer",
            "--scale=5000"
        ])));
        assert_eq!(DEFAULT_SCALE, 1_000_000);
    }
}
