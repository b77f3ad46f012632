//! `kazashi-lab bench manifest [--scale N] [--runs R]`: a new manifest version reaching N
//! laptops (2 to 200; 50 otherwise) over the real mesh on loopback — `node::mesh::Mesh`, one
//! iroh endpoint per laptop in this process, every laptop connected to every other as on one
//! shelter LAN (as `bench mesh`).
//!
//! Each round the administrator signs the next version (one more laptop approved) and it is
//! installed on one laptop (`Node::adopt_manifest` on the running node, then
//! `Mesh::announce`); the mesh passes it on through its connections (`FRAME_MANIFEST`, adopted
//! and passed on hop by hop). Measured per laptop: from the install to the laptop holding the
//! new version in force. R + 1 rounds, the first (warm-up) not counted.
//!
//! Metrics: `adopted_p50` / `adopted_p99` over every (round, laptop) pair, `all_adopted_p50` /
//! `_p99` (the last laptop of each round), `setup` (the full mesh up). Goal: `adopted_p99`
//! ≤ 2 s at 50 laptops.

use crate::bench::{emit, emit_percentiles};
use crate::bench_log::TempDir;
use kazashi_domain::CivilDate;
use kazashi_domain::text::Label;
use kazashi_node::mesh::{Link, Mesh, MeshConfig, PeerAddr};
use kazashi_node::{KdfParams, Node, SystemClock};
use kazashi_sim::fleet::fleet;
use kazashi_sim::population::{PopulationSpec, generate, shelter_operation};
use kazashi_sync::{DeviceEntry, DeviceKey, Role, SignedManifest};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASS: &str = "bench passphrase";

pub fn run(args: &crate::bench::BenchArgs) -> Result<(), String> {
    let n = if (2..=200).contains(&args.scale) {
        args.scale
    } else {
        50
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let dir = TempDir::for_bench("manifest")?;
    let result = rt.block_on(spread(args, n, &dir.0));
    rt.shutdown_timeout(Duration::from_secs(2));
    result
}

fn connected(m: &Mesh<SystemClock>) -> usize {
    m.status()
        .peers
        .iter()
        .filter(|p| p.link == Link::Connected)
        .count()
}

async fn spread(args: &crate::bench::BenchArgs, n: usize, dir: &Path) -> Result<(), String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let today = CivilDate::new(2026, 9, 1).map_err(|x| e(&x))?;
    let m = generate(PopulationSpec {
        households: 300,
        seed: args.seed,
        today,
        voters: false,
    })
    .map_err(|x| e(&x))?;
    // n - 1 shelters and the command center: one laptop each.
    let d = shelter_operation(&m, n - 1).map_err(|x| e(&x))?;
    let fleet = fleet(&d, args.seed)?;
    let roster = Arc::new(m.roster);

    let setup = Instant::now();
    let mut meshes: Vec<Arc<Mesh<SystemClock>>> = Vec::new();
    let mut addrs: Vec<PeerAddr> = Vec::new();
    for (i, (site, key)) in fleet.stations.iter().enumerate() {
        let node = Node::create(
            &dir.join(format!("m{i}.db")),
            PASS,
            KdfParams::FAST_INSECURE,
            DeviceKey::from_seed(key.secret_bytes()),
            &fleet.manifest,
            roster.clone(),
            *site,
            SystemClock,
        )
        .map_err(|x| e(&x))?;
        let config = MeshConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            mdns: false,
            peers: addrs.clone(),
            ..MeshConfig::default()
        };
        let mesh = Mesh::start(node, config).await.map_err(|x| e(&x))?;
        addrs.extend(mesh.addrs());
        meshes.push(mesh);
    }
    let t = Instant::now();
    while !meshes.iter().all(|m| connected(m) + 1 >= n) {
        if t.elapsed() > Duration::from_secs(120) {
            return Err("the full mesh did not come up in 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    emit(
        "manifest",
        "setup",
        setup.elapsed().as_secs_f64() * 1e3,
        "ms",
        n,
    );

    let mut current = SignedManifest::decode(&fleet.manifest)
        .map_err(|x| e(&x))?
        .manifest()
        .clone();
    let installer = meshes.first().ok_or("no laptop")?.clone();
    let rounds = args.runs.clamp(1, 50);
    let (mut each, mut last) = (Vec::new(), Vec::new());
    for r in 0..=rounds {
        // The next version: one more laptop approved.
        current.version += 1;
        let newcomer = DeviceKey::from_seed([r as u8 ^ 0x5a; 32]).device_id();
        current.devices.push(DeviceEntry {
            device: newcomer,
            role: Role::Station,
            label: Label::new(&format!("追加 {r}")).map_err(|x| e(&x))?,
            sites: Vec::new(),
        });
        let bytes = SignedManifest::sign(&current, &fleet.admin)
            .map_err(|x| e(&x))?
            .encode();
        let version = current.version;
        // Receivers subscribe before the install, so that no wake-up is missed.
        let watches: Vec<_> = meshes
            .iter()
            .skip(1)
            .map(|m| (m.clone(), m.changes()))
            .collect();
        let t0 = Instant::now();
        installer
            .with_node(|node| node.adopt_manifest(&bytes))
            .map_err(|x| e(&x))?;
        installer.announce();
        let mut waiters = tokio::task::JoinSet::new();
        for (mesh, mut rx) in watches {
            waiters.spawn(async move {
                loop {
                    rx.borrow_and_update();
                    if mesh.with_node(|node| node.membership().version()) >= version {
                        return Some(t0.elapsed().as_secs_f64() * 1e3);
                    }
                    if tokio::time::timeout(Duration::from_secs(30), rx.changed())
                        .await
                        .is_err()
                    {
                        return None;
                    }
                }
            });
        }
        let mut slowest = 0.0f64;
        while let Some(got) = waiters.join_next().await {
            let ms = got
                .map_err(|x| e(&x))?
                .ok_or("a manifest version did not reach every laptop in 30 s")?;
            slowest = slowest.max(ms);
            if r > 0 {
                each.push(ms);
            }
        }
        if r > 0 {
            last.push(slowest);
        }
        // Let the mesh go quiet between versions.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    emit_percentiles("manifest", "adopted", &each, "ms", n);
    emit_percentiles("manifest", "all_adopted", &last, "ms", n);
    // All at once: one by one, each endpoint's close waits on its own.
    let mut closing = tokio::task::JoinSet::new();
    for m in meshes {
        closing.spawn(async move { m.shutdown().await });
    }
    while closing.join_next().await.is_some() {}
    Ok(())
}
