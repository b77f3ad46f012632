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
//! - `peak_rss` of the process (both laptops);
//! - from disk: laptop A again, its roster only in its roster store (`enrolled::open` keeps it
//!   on disk from `roster_lookup::ON_DISK_FROM` entries), serving from a fresh child process
//!   (`--child-open`) so that the town generated here does not count; the roster fetched from
//!   it by the same laptop B, with no roster store again: `transfer_from_disk_s` (as
//!   `transfer_s`), `fetched_on_disk` (1 when B answers from the store it wrote), and the
//!   server's `serve_on_disk` (1 when it served from disk), `serve_rss_open` (VmRSS once open
//!   and listening) and `serve_peak_rss` (VmHWM after serving the whole roster: the open's
//!   streamed check included).
//!
//! Without `--scale` it runs at 1 000 000 people, the figure (the goal: `transfer_s`
//! ≤ 30 s); the lab's other benches keep their default of 100 000.

use crate::bench::{emit, memory_mib};
use crate::bench_log::TempDir;
use kazashi_node::enrolled::{self, Folder, META_SITE};
use kazashi_node::mesh::{Mesh, MeshConfig};
use kazashi_node::roster_db::RosterDb;
use kazashi_node::roster_fetch::RosterTarget;
use kazashi_node::roster_net::{FolderFetch, Standalone};
use kazashi_node::{KdfParams, Node, Store, SystemClock};
use kazashi_sim::fleet::fleet;
use kazashi_sim::population::shelter_operation;
use kazashi_sync::DeviceKey;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASS: &str = "bench passphrase";
const ROSTER_PASS: &str = "bench roster passphrase";
const NAME: &str = "roster-transfer";

pub fn run(args: &crate::bench::BenchArgs) -> Result<(), String> {
    if let Some(dir) = &args.child_open {
        return child(dir);
    }
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
    drop(got);

    // From disk: A's roster only in its roster store, served by a fresh process.
    let folder_a = Folder::new(dir.0.join("a-disk"));
    enrolled_folder(&folder_a, key_a.secret_bytes(), &fleet.manifest, site_a)?;
    RosterDb::create(
        &folder_a.roster_path(),
        ROSTER_PASS,
        KdfParams::FAST_INSECURE,
        (&*roster).into(),
        [0; 32],
        &mut |_, _| {},
    )
    .map_err(|x| e(&x))?;
    drop(roster);
    let exe = std::env::current_exe().map_err(|x| e(&x))?;
    let mut server = std::process::Command::new(exe)
        .args([
            "bench",
            NAME,
            "--scale",
            &persons.to_string(),
            "--child-open",
        ])
        .arg(&folder_a.dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|x| e(&x))?;
    let mut lines = std::io::BufReader::new(server.stdout.take().ok_or("no child output")?).lines();
    let at = tokio::task::block_in_place(|| -> Result<SocketAddr, String> {
        for l in lines.by_ref() {
            let l = l.map_err(|x| e(&x))?;
            let v: serde_json::Value = serde_json::from_str(&l).map_err(|x| e(&x))?;
            if let Some(a) = v.get("listening").and_then(|a| a.as_str()) {
                return a.parse().map_err(|x| e(&x));
            }
            println!("{l}");
        }
        Err("the serving child ended before it listened".into())
    })?;
    remove_roster(&folder);
    let device_a = DeviceKey::from_seed(key_a.secret_bytes()).device_id();
    let how = FolderFetch {
        peers: vec![(Some(device_a), at)],
        ..how
    };
    let t = Instant::now();
    let (host, secret) = Standalone::open(&folder, PASS).map_err(|x| e(&x))?;
    let fetched = host.run(secret, &how, &target, today).await;
    let disk_s = t.elapsed().as_secs_f64();
    drop(host);
    // Closing its input asks the child for its figures.
    drop(server.stdin.take());
    tokio::task::block_in_place(|| {
        for l in lines.by_ref().map_while(Result::ok) {
            println!("{l}");
        }
        let _ = server.wait();
    });
    let got = fetched.map_err(|x| e(&x))?;
    if got.roster.hash() != pinned {
        return Err("the roster received from disk is not the pinned one".into());
    }
    emit(NAME, "transfer_from_disk_s", disk_s, "s", persons);
    let on_disk = got.roster.in_memory().is_none();
    emit(
        NAME,
        "fetched_on_disk",
        f64::from(u8::from(on_disk)),
        "",
        persons,
    );
    Ok(())
}

/// An enrolled laptop's folder: its store with key `seed`, `manifest` and `site`, no roster.
fn enrolled_folder(
    folder: &Folder,
    seed: [u8; 32],
    manifest: &[u8],
    site: &kazashi_domain::SiteId,
) -> Result<(), String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    std::fs::create_dir_all(&folder.dir).map_err(|x| e(&x))?;
    let store =
        Store::create(&folder.store_path(), PASS, KdfParams::FAST_INSECURE).map_err(|x| e(&x))?;
    store
        .set_identity(&DeviceKey::from_seed(seed))
        .map_err(|x| e(&x))?;
    store.set_manifest(manifest).map_err(|x| e(&x))?;
    store
        .set_meta(META_SITE, site.as_str().as_bytes())
        .map_err(|x| e(&x))?;
    Ok(())
}

/// The serving child: the enrolled folder in `dir` opened as a station opens it, its mesh on
/// loopback (`{"listening": addr}` once up), serving until its input closes; then its memory.
fn child(dir: &Path) -> Result<(), String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|x| e(&x))?;
    let result = rt.block_on(async {
        let folder = Folder::new(dir.to_path_buf());
        let (node, roster) =
            enrolled::open(&folder, PASS, ROSTER_PASS, SystemClock).map_err(|x| e(&x))?;
        let (persons, on_disk) = (roster.len(), roster.in_memory().is_none());
        drop(roster);
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
        let at = mesh.addrs().into_iter().next().ok_or("no address")?;
        emit(
            NAME,
            "serve_on_disk",
            f64::from(u8::from(on_disk)),
            "",
            persons,
        );
        if let Some((rss, _)) = memory_mib() {
            emit(NAME, "serve_rss_open", rss, "MiB", persons);
        }
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "{}",
                serde_json::json!({ "listening": at.addr.to_string() })
            );
            let _ = out.flush();
        }
        let _ = tokio::task::spawn_blocking(|| {
            let mut rest = String::new();
            while std::io::stdin().read_line(&mut rest).is_ok_and(|n| n > 0) {}
        })
        .await;
        if let Some((_, peak)) = memory_mib() {
            emit(NAME, "serve_peak_rss", peak, "MiB", persons);
        }
        mesh.shutdown().await;
        Ok(())
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    result
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
