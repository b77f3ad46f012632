//! `kazashi-lab bench mesh --scale N`: the mesh on loopback, real iroh endpoints in one process.
//!
//! With N below 1000, N is a number of endpoints (laptops), all connected to each other as on
//! one shelter LAN, and the benchmark measures how fast a new event reaches them:
//! - `propagation_p50` / `_p99`: from `Mesh::record` on one laptop to the event being in
//!   another laptop's state (stored and folded), over every (event, receiver) pair;
//! - `all_nodes_p50` / `_p99`: from the write to the moment the last laptop has it.
//!
//! With N of 1000 or more, N is a number of events per side, and the benchmark measures a
//! heal: two laptops that were apart while each took about N events (each group of sites
//! writing on its own side) connect, and
//! - `heal`: the time from the dial until both hold every event (digests equal);
//! - `heal_wire_bytes`: UDP bytes both sent (QUIC headers, acknowledgements, retransmissions
//!   included), and `heal_moved_compressed`: the zstd-compressed size of the signed events
//!   that had to move (each side's, compressed as one stream);
//! - `heal_wire_ratio`: the first over the second.

use crate::bench::{emit, emit_percentiles, median};
use crate::bench_log::{TempDir, copy_store, seal_all};
use kazashi_domain::{CivilDate, DeviceId, EventId, OperatorId, SiteId};
use kazashi_node::mesh::{Mesh, MeshConfig, PeerAddr};
use kazashi_node::{KdfParams, Node, SystemClock};
use kazashi_sim::fleet::{fleet, fleet_sized};
use kazashi_sim::population::{PopulationSpec, generate, shelter_operation};
use kazashi_sim::workload::{household_check_in, shelter_week_by};
use kazashi_sync::DeviceKey;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASS: &str = "bench passphrase";

pub fn run(args: &crate::bench::BenchArgs) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let dir = TempDir::for_bench("mesh")?;
    let result = if args.scale < 1000 {
        rt.block_on(propagation(args, &dir.0))
    } else {
        rt.block_on(heal(args, &dir.0))
    };
    // Endpoints close with the runtime; give their sockets a moment to go.
    rt.shutdown_timeout(Duration::from_secs(2));
    result
}

fn loopback() -> MeshConfig {
    MeshConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        mdns: false,
        ..MeshConfig::default()
    }
}

/// Wait until `done` holds for every mesh, polling; an error after `limit`.
async fn wait_all(
    meshes: &[Arc<Mesh<SystemClock>>],
    limit: Duration,
    what: &str,
    done: impl Fn(&Mesh<SystemClock>) -> bool,
) -> Result<(), String> {
    let t = Instant::now();
    loop {
        if meshes.iter().all(|m| done(m)) {
            return Ok(());
        }
        if t.elapsed() > limit {
            return Err(format!("{what}: not reached in {} s", limit.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn connected(m: &Mesh<SystemClock>) -> usize {
    m.status()
        .peers
        .iter()
        .filter(|p| p.link == kazashi_node::mesh::Link::Connected)
        .count()
}

async fn propagation(args: &crate::bench::BenchArgs, dir: &Path) -> Result<(), String> {
    let n = args.scale;
    if !(2..=200).contains(&n) {
        return Err(
            "bench mesh: --scale is endpoints (2 to 200) or events per side (1000 or more)".into(),
        );
    }
    let today = CivilDate::new(2026, 9, 1).map_err(|e| e.to_string())?;
    let m = generate(PopulationSpec {
        households: 300,
        seed: args.seed,
        today,
        voters: false,
    })
    .map_err(|e| e.to_string())?;
    // n - 1 shelters and the command center: one laptop each.
    let d = shelter_operation(&m, n - 1).map_err(|e| e.to_string())?;
    let fleet = fleet(&d, args.seed)?;
    let roster = Arc::new(m.roster);

    let setup = Instant::now();
    let mut meshes: Vec<Arc<Mesh<SystemClock>>> = Vec::new();
    let mut addrs: Vec<PeerAddr> = Vec::new();
    let mut writers = Vec::new();
    for (i, (site, key)) in fleet.stations.iter().enumerate() {
        let node = Node::create(
            &dir.join(format!("p{i}.db")),
            PASS,
            KdfParams::FAST_INSECURE,
            DeviceKey::from_seed(key.secret_bytes()),
            &fleet.manifest,
            roster.clone(),
            *site,
            SystemClock,
        )
        .map_err(|e| e.to_string())?;
        // Every laptop dials those started before it: a full mesh, one connection per pair.
        let config = MeshConfig {
            peers: addrs.clone(),
            ..loopback()
        };
        let mesh = Mesh::start(node, config).await.map_err(|e| e.to_string())?;
        addrs.extend(mesh.addrs());
        if d.site(site).is_some_and(|s| s.is_shelter()) {
            writers.push(i);
        }
        meshes.push(mesh);
    }
    // Every endpoint is on 127.0.0.1, so each laptop's gate takes at most
    // `MAX_UNGREETED_PER_ADDR` greetings at a time from all the others: a full mesh of 100
    // takes minutes to form on a loaded machine.
    let limit = Duration::from_secs(120 + 5 * n as u64);
    wait_all(&meshes, limit, "full mesh", |m| connected(m) + 1 >= n).await?;
    emit(
        "mesh",
        "setup",
        setup.elapsed().as_secs_f64() * 1e3,
        "ms",
        n,
    );

    let operator = OperatorId::new("bench").map_err(|e| e.to_string())?;
    let rounds = args.runs.max(1) * 6;
    // KAZASHI_BENCH_TRACE=1: per round on stderr, the slowest arrival and how many laptops
    // are not connected to every other at the write (a mesh that came apart after forming).
    let trace = std::env::var_os("KAZASHI_BENCH_TRACE").is_some();
    let mut each = Vec::new();
    let mut last = Vec::new();
    for r in 0..=rounds {
        let w = *writers.get(r % writers.len()).ok_or("no shelter laptop")?;
        let writer = meshes.get(w).ok_or("no such laptop")?.clone();
        let mut waiters = tokio::task::JoinSet::new();
        let t0 = Instant::now();
        let body = household_check_in(&roster, r * 37 + w).ok_or("no household")?;
        // Receivers subscribe before the write, so that no wake-up is missed.
        let watches: Vec<_> = meshes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != w)
            .map(|(_, m)| (m.clone(), m.changes()))
            .collect();
        let id: EventId = writer
            .record(operator, body)
            .map_err(|e| e.to_string())?
            .id();
        for (mesh, mut rx) in watches {
            waiters.spawn(async move {
                loop {
                    rx.borrow_and_update();
                    if mesh.with_node(|n| n.state().contains(&id)) {
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
                .map_err(|e| e.to_string())?
                .ok_or("an event did not reach every laptop in 30 s")?;
            slowest = slowest.max(ms);
            // The first round warms up the connections; it is not counted.
            if r > 0 {
                each.push(ms);
            }
        }
        if r > 0 {
            last.push(slowest);
        }
        if trace {
            let apart = meshes.iter().filter(|m| connected(m) + 1 < n).count();
            eprintln!(
                "round {r}: writer {w}, slowest {:?}, laptops not fully connected after: {apart}",
                Duration::from_secs_f64(slowest / 1e3)
            );
        }
        // Let the mesh go quiet between writes.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    emit_percentiles("mesh", "propagation", &each, "ms", n);
    emit_percentiles("mesh", "all_nodes", &last, "ms", n);
    for m in &meshes {
        m.shutdown().await;
    }
    Ok(())
}

/// One side of the partition: its laptop's site and key, and the signed events it took.
struct Side {
    site: SiteId,
    key: [u8; 32],
    events: Vec<(kazashi_domain::Event, Vec<u8>)>,
}

async fn heal(args: &crate::bench::BenchArgs, dir: &Path) -> Result<(), String> {
    let per_side = args.scale;
    if per_side > 2_000_000 {
        return Err("bench mesh: at most 2000000 events per side".into());
    }
    let total = per_side * 2;
    let (m, d) = crate::bench::town(total, args.seed, false)?;
    let fleet = fleet_sized(&d, args.seed, 1)?;
    let device_of = |_: usize, site: &SiteId, _: u8| {
        fleet
            .key(site)
            .map(DeviceKey::device_id)
            .unwrap_or(DeviceId([0; 32]))
    };
    let keys: BTreeMap<DeviceId, &DeviceKey> = fleet
        .stations
        .iter()
        .map(|(_, k)| (k.device_id(), k))
        .collect();
    let events = seal_all(
        &shelter_week_by(&m, &d, total, args.seed, &device_of),
        &keys,
        d.id(),
    )?;
    // The partition: shelters into two groups of about equal weight, each group's laptops on
    // one side (a site is never split).
    let mut per_site: BTreeMap<SiteId, usize> = BTreeMap::new();
    for (e, _) in &events {
        *per_site.entry(e.site()).or_default() += 1;
    }
    let mut by_weight: Vec<(SiteId, usize)> = per_site.into_iter().collect();
    by_weight.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let (mut one, mut two) = (BTreeSet::new(), BTreeSet::new());
    let (mut w1, mut w2) = (0, 0);
    for (s, w) in by_weight {
        if w1 <= w2 {
            one.insert(s);
            w1 += w;
        } else {
            two.insert(s);
            w2 += w;
        }
    }
    let side = |group: &BTreeSet<SiteId>| -> Result<Side, String> {
        let site = *group.iter().next().ok_or("an empty side")?;
        let key = fleet.key(&site).ok_or("no key")?.secret_bytes();
        let events = events
            .iter()
            .filter(|(e, _)| group.contains(&e.site()))
            .cloned()
            .collect();
        Ok(Side { site, key, events })
    };
    let (a, b) = (side(&one)?, side(&two)?);
    drop(events);
    let moved_compressed = compressed(&a.events)? + compressed(&b.events)?;
    let roster = Arc::new(m.roster);
    let mut base = Vec::new();
    for (name, s) in [("a", &a), ("b", &b)] {
        let path = dir.join(format!("{name}.db"));
        let mut node = Node::create(
            &path,
            PASS,
            KdfParams::FAST_INSECURE,
            DeviceKey::from_seed(s.key),
            &fleet.manifest,
            roster.clone(),
            s.site,
            SystemClock,
        )
        .map_err(|e| e.to_string())?;
        node.bulk_load(s.events.clone())
            .map_err(|e| e.to_string())?;
        base.push((path, s.site));
    }
    let counts = (a.events.len(), b.events.len());
    drop((a, b));
    emit("mesh", "heal_events_a", counts.0 as f64, "events", per_side);
    emit("mesh", "heal_events_b", counts.1 as f64, "events", per_side);
    let want = counts.0 + counts.1;

    let (mut times, mut wires) = (Vec::new(), Vec::new());
    let runs = args.runs.clamp(1, 3);
    for run in 0..runs {
        let mut meshes = Vec::new();
        let mut addr = Vec::new();
        let mut t0 = None;
        for (k, (path, site)) in base.iter().enumerate() {
            let copy = dir.join(format!("run{run}-{k}.db"));
            copy_store(path, &copy)?;
            let node = Node::open(&copy, PASS, roster.clone(), *site, SystemClock)
                .map_err(|e| e.to_string())?;
            if k == 1 {
                t0 = Some(Instant::now());
            }
            let mesh = Mesh::start(
                node,
                MeshConfig {
                    peers: addr.clone(),
                    ..loopback()
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            addr.extend(mesh.addrs());
            meshes.push(mesh);
        }
        let t0 = t0.ok_or("no second laptop")?;
        wait_all(&meshes, Duration::from_secs(600), "heal", |m| {
            m.with_node(|n| n.state().len()) >= want
        })
        .await?;
        let took = t0.elapsed().as_secs_f64() * 1e3;
        let digests: BTreeSet<String> = meshes.iter().map(|m| m.status().digest).collect();
        if digests.len() != 1 {
            return Err("after the heal the two laptops hold different events".into());
        }
        let wire: u64 = meshes.iter().map(|m| m.status().wire_bytes_out).sum();
        times.push(took);
        wires.push(wire as f64);
        for m in &meshes {
            m.shutdown().await;
        }
    }
    let wire = median(wires);
    emit("mesh", "heal", median(times), "ms", per_side);
    emit("mesh", "heal_wire_bytes", wire, "bytes", per_side);
    emit(
        "mesh",
        "heal_moved_compressed",
        moved_compressed as f64,
        "bytes",
        per_side,
    );
    emit(
        "mesh",
        "heal_wire_ratio",
        wire / moved_compressed as f64,
        "ratio",
        per_side,
    );
    Ok(())
}

/// The zstd size (level 3) of the envelopes as one stream.
fn compressed(events: &[(kazashi_domain::Event, Vec<u8>)]) -> Result<usize, String> {
    let mut all = Vec::new();
    for (_, env) in events {
        all.extend_from_slice(env);
    }
    zstd::bulk::compress(&all, 3)
        .map(|c| c.len())
        .map_err(|e| e.to_string())
}
