//! `kazashi-lab bench hostile [--scale N]`: hostile peers against one laptop's mesh, real iroh
//! endpoints on loopback in one process (issue 25). Two honest laptops A and B each wrote N
//! events apart (N = `--scale`, at most 2,000; 2,000 when the default is left); for each round
//! both stores are fresh copies of the same two, A's mesh starts, the attack starts against A
//! and runs for two seconds, then B dials A while the attack goes on, and the round ends when
//! both hold every event (equal digests). Per round:
//! - `<attack>_heal`: from B's start to convergence, seconds; `<attack>_heal_vs_quiet`: that
//!   over the quiet round's (goal: at most 2);
//! - `<attack>_peak_rss`: the process's peak resident memory during the round (the peak is
//!   reset before each round through `/proc/self/clear_refs`), MiB (goal: at most 1024); the
//!   process holds both laptops and the attacker, so this is an upper bound for A alone;
//! - `<attack>_turned_away`: connections A's greeting gate closed as busy.
//!
//! The attacks: `quiet` (none); `handshake_flood` (strangers from eight loopback addresses
//! keep opening connections that never greet); `oversized_frames` (an enrolled laptop — the
//! command center's key, as a compromised relay would be — greets, then sends frames that
//! declare 255 MiB and streams junk into them, four connections at once); `junk_frames` (the
//! same member sends 64 KiB frames of random bytes as fast as the link takes them);
//! `catalog_1m` (the same member sends catalogs naming a million shards). Not run here: the
//! DEFLATE bomb inside an Automerge change (crafting one needs Automerge's column encoder;
//! see docs/security.md).

use crate::bench::emit;
use crate::bench_log::{TempDir, copy_store};
use kazashi_domain::{CivilDate, OperatorId, SiteId};
use kazashi_node::link::{FRAME_HELLO, FRAME_SYNC, Hello};
use kazashi_node::mesh::{ALPN, Mesh, MeshConfig, PeerAddr};
use kazashi_node::{KdfParams, Node, SystemClock};
use kazashi_sim::fleet::fleet;
use kazashi_sim::population::{PopulationSpec, generate, shelter_operation};
use kazashi_sim::workload::household_check_in;
use kazashi_sync::protocol::Message;
use kazashi_sync::{DeviceKey, ShardId};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const PASS: &str = "bench passphrase";
const ATTACKS: [&str; 5] = [
    "quiet",
    "handshake_flood",
    "oversized_frames",
    "junk_frames",
    "catalog_1m",
];

struct Setup {
    roster: Arc<kazashi_domain::Roster>,
    manifest: Vec<u8>,
    /// A, B: (store template, site).
    honest: [(PathBuf, SiteId); 2],
    /// The member the attacker holds (the command center's key) and its greeting.
    member: DeviceKey,
    member_hello: Vec<u8>,
    sites: Vec<SiteId>,
    events: usize,
}

pub fn run(args: &crate::bench::BenchArgs) -> Result<(), String> {
    let n = if args.scale == 100_000 {
        2_000
    } else {
        args.scale.clamp(10, 2_000)
    };
    let dir = TempDir::for_bench("hostile")?;
    let setup = prepare(&dir.0, n, args.seed)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let mut quiet = None;
    let mut result = Ok(());
    for (round, attack) in ATTACKS.iter().enumerate() {
        match rt.block_on(one_round(&setup, &dir.0, round, attack)) {
            Ok((heal, peak, turned)) => {
                let quiet = *quiet.get_or_insert(heal);
                emit("hostile", &format!("{attack}_heal"), heal, "s", n);
                emit(
                    "hostile",
                    &format!("{attack}_heal_vs_quiet"),
                    heal / quiet,
                    "x",
                    n,
                );
                if let Some(peak) = peak {
                    emit("hostile", &format!("{attack}_peak_rss"), peak, "MiB", n);
                }
                emit(
                    "hostile",
                    &format!("{attack}_turned_away"),
                    turned as f64,
                    "connections",
                    n,
                );
            }
            Err(e) => {
                result = Err(format!("{attack}: {e}"));
                break;
            }
        }
    }
    rt.shutdown_timeout(Duration::from_secs(2));
    result
}

fn prepare(dir: &Path, n: usize, seed: u64) -> Result<Setup, String> {
    let today = CivilDate::new(2026, 9, 1).map_err(|e| e.to_string())?;
    let m = generate(PopulationSpec {
        households: (2 * n).max(300),
        seed,
        today,
        voters: false,
    })
    .map_err(|e| e.to_string())?;
    let d = shelter_operation(&m, 2).map_err(|e| e.to_string())?;
    let fleet = fleet(&d, seed)?;
    let roster = Arc::new(m.roster);
    let shelters: Vec<&(SiteId, DeviceKey)> = fleet
        .stations
        .iter()
        .filter(|(s, _)| d.site(s).is_some_and(|x| x.is_shelter()))
        .collect();
    let hq = fleet
        .stations
        .iter()
        .find(|(s, _)| !d.site(s).is_some_and(|x| x.is_shelter()))
        .ok_or("no command center in the fleet")?;
    let (Some(a), Some(b)) = (shelters.first(), shelters.get(1)) else {
        return Err("fewer than two shelters".into());
    };
    let op = OperatorId::new("staff01").map_err(|e| e.to_string())?;
    let mut honest = Vec::new();
    for (side, (site, key)) in [a, b].into_iter().enumerate() {
        let path = dir.join(format!("template{side}.db"));
        let mut node = Node::create(
            &path,
            PASS,
            KdfParams::FAST_INSECURE,
            DeviceKey::from_seed(key.secret_bytes()),
            &fleet.manifest,
            roster.clone(),
            *site,
            SystemClock,
        )
        .map_err(|e| e.to_string())?;
        for i in side * n..(side + 1) * n {
            let body = household_check_in(&roster, i).ok_or("no household")?;
            node.record(op, body).map_err(|e| e.to_string())?;
        }
        honest.push((path, *site));
    }
    let member = DeviceKey::from_seed(hq.1.secret_bytes());
    let hq_node = Node::create(
        &dir.join("member.db"),
        PASS,
        KdfParams::FAST_INSECURE,
        DeviceKey::from_seed(hq.1.secret_bytes()),
        &fleet.manifest,
        roster.clone(),
        hq.0,
        SystemClock,
    )
    .map_err(|e| e.to_string())?;
    let member_hello = Hello::of(&hq_node).encode();
    let [a, b]: [(PathBuf, SiteId); 2] = honest.try_into().map_err(|_| "two sides")?;
    Ok(Setup {
        roster,
        manifest: fleet.manifest.clone(),
        honest: [a, b],
        member,
        member_hello,
        sites: fleet.stations.iter().map(|(s, _)| *s).collect(),
        events: 2 * n,
    })
}

fn loopback(peers: Vec<PeerAddr>) -> MeshConfig {
    MeshConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        peers,
        mdns: false,
        ..MeshConfig::default()
    }
}

/// Reset the process's peak resident memory (Linux: `VmHWM` restarts from `VmRSS`).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// One round: heal time, peak memory, connections turned away.
async fn one_round(
    s: &Setup,
    dir: &Path,
    round: usize,
    attack: &str,
) -> Result<(f64, Option<f64>, u64), String> {
    let mut nodes = Vec::new();
    for (side, (template, site)) in s.honest.iter().enumerate() {
        let path = dir.join(format!("r{round}-{side}.db"));
        copy_store(template, &path)?;
        nodes.push(
            Node::open(&path, PASS, s.roster.clone(), *site, SystemClock)
                .map_err(|e| e.to_string())?,
        );
    }
    let b = nodes.pop().ok_or("B")?;
    let a = nodes.pop().ok_or("A")?;
    reset_peak();
    let ma = Mesh::start(a, loopback(Vec::new()))
        .await
        .map_err(|e| e.to_string())?;
    let at_a = ma.addrs().into_iter().next().ok_or("A has no address")?;
    let stop = Arc::new(AtomicBool::new(false));
    let attackers = start_attack(s, attack, &at_a, &stop).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t = Instant::now();
    let mb = Mesh::start(b, loopback(vec![at_a]))
        .await
        .map_err(|e| e.to_string())?;
    let limit = Duration::from_secs(300);
    loop {
        let (sa, sb) = (ma.status(), mb.status());
        if sa.events == s.events && sb.events == s.events && sa.digest == sb.digest {
            break;
        }
        if t.elapsed() > limit {
            return Err(format!("no convergence in {} s", limit.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let heal = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let peak = crate::bench::memory_mib().map(|(_, peak)| peak);
    let turned = ma.ungreeted().1;
    for t in attackers {
        t.abort();
    }
    mb.shutdown().await;
    ma.shutdown().await;
    let _ = s.manifest.len();
    Ok((heal, peak, turned))
}

async fn endpoint(ip: [u8; 4], key: Option<&DeviceKey>) -> Result<iroh::Endpoint, String> {
    let mut b = iroh::Endpoint::builder(iroh::endpoint::presets::Minimal)
        .clear_ip_transports()
        .bind_addr(SocketAddr::from((ip, 0)))
        .map_err(|e| e.to_string())?;
    if let Some(k) = key {
        b = b.secret_key(iroh::SecretKey::from_bytes(&k.secret_bytes()));
    }
    b.bind().await.map_err(|e| e.to_string())
}

fn target(at: &PeerAddr) -> Result<iroh::EndpointAddr, String> {
    let d = at.device.ok_or("A's address has no device")?;
    let pk = iroh::PublicKey::from_bytes(&d.0).map_err(|e| e.to_string())?;
    Ok(iroh::EndpointAddr::new(pk).with_ip_addr(at.addr))
}

fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len() + 1).unwrap_or(u32::MAX);
    let mut out = len.to_be_bytes().to_vec();
    out.push(kind);
    out.extend_from_slice(body);
    out
}

/// A million shards: the three sites over enough days.
fn catalog_1m(sites: &[SiteId]) -> Vec<u8> {
    let mut entries = Vec::with_capacity(1_000_000);
    'outer: for year in 2000..4000 {
        for month in 1..=12 {
            for day in 1..=28 {
                for site in sites {
                    if entries.len() == 1_000_000 {
                        break 'outer;
                    }
                    if let Ok(day) = CivilDate::new(year, month, day) {
                        entries.push((ShardId { site: *site, day }, [0x5a; 32]));
                    }
                }
            }
        }
    }
    Message::Catalog(entries).encode()
}

async fn start_attack(
    s: &Setup,
    attack: &str,
    at: &PeerAddr,
    stop: &Arc<AtomicBool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, String> {
    let to = target(at)?;
    let mut tasks = Vec::new();
    match attack {
        "quiet" => {}
        "handshake_flood" => {
            for host in 2..10u8 {
                let ep = endpoint([127, 0, 0, host], None).await?;
                let (to, stop) = (to.clone(), stop.clone());
                tasks.push(tokio::spawn(async move {
                    let mut held = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        held.retain(|(c, _): &(iroh::endpoint::Connection, _)| {
                            c.close_reason().is_none()
                        });
                        if held.len() >= 32 {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                        let Ok(Ok(c)) = tokio::time::timeout(
                            Duration::from_secs(2),
                            ep.connect(to.clone(), ALPN),
                        )
                        .await
                        else {
                            continue;
                        };
                        let streams = match c.open_bi().await {
                            Ok((mut send, recv)) => {
                                let _ = send.write_all(&[0, 0]).await;
                                Some((send, recv))
                            }
                            Err(_) => None,
                        };
                        held.push((c, streams));
                    }
                }));
            }
        }
        "oversized_frames" | "junk_frames" | "catalog_1m" => {
            let ep = endpoint([127, 0, 0, 1], Some(&s.member)).await?;
            let hello = frame(FRAME_HELLO, &s.member_hello);
            let catalog = if attack == "catalog_1m" {
                Arc::new(frame(FRAME_SYNC, &catalog_1m(&s.sites)))
            } else {
                Arc::new(Vec::new())
            };
            let parallel = if attack == "oversized_frames" { 4 } else { 1 };
            for k in 0..parallel {
                let (ep, to, stop, hello, catalog) = (
                    ep.clone(),
                    to.clone(),
                    stop.clone(),
                    hello.clone(),
                    catalog.clone(),
                );
                let attack = attack.to_owned();
                tasks.push(tokio::spawn(async move {
                    let mut junk_seed = 0x9e37_79b9_7f4a_7c15u64 ^ k;
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(Ok(c)) = tokio::time::timeout(
                            Duration::from_secs(2),
                            ep.connect(to.clone(), ALPN),
                        )
                        .await
                        else {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        };
                        let Ok((mut send, mut recv)) = c.open_bi().await else {
                            continue;
                        };
                        // Drain what A says, so that its writes never wait on us.
                        let drain = tokio::spawn(async move {
                            let mut buf = vec![0u8; 64 << 10];
                            while let Ok(Some(_)) = recv.read(&mut buf).await {}
                        });
                        if send.write_all(&hello).await.is_err() {
                            drain.abort();
                            continue;
                        }
                        let body = vec![0x41u8; 1 << 20];
                        match attack.as_str() {
                            "oversized_frames" => {
                                let len = (255u32 << 20) + 1;
                                let mut head = len.to_be_bytes().to_vec();
                                head.push(FRAME_SYNC);
                                let mut ok = send.write_all(&head).await.is_ok();
                                for _ in 0..255 {
                                    if !ok || stop.load(Ordering::Relaxed) {
                                        break;
                                    }
                                    ok = send.write_all(&body).await.is_ok();
                                }
                            }
                            "junk_frames" => {
                                while !stop.load(Ordering::Relaxed) {
                                    let junk: Vec<u8> = (0..64 << 10)
                                        .map(|_| {
                                            junk_seed ^= junk_seed << 13;
                                            junk_seed ^= junk_seed >> 7;
                                            junk_seed ^= junk_seed << 17;
                                            junk_seed as u8
                                        })
                                        .collect();
                                    if send.write_all(&frame(FRAME_SYNC, &junk)).await.is_err() {
                                        break;
                                    }
                                }
                            }
                            _ => {
                                while !stop.load(Ordering::Relaxed) {
                                    if send.write_all(&catalog).await.is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        drain.abort();
                        c.close(0u32.into(), b"");
                    }
                }));
            }
        }
        other => return Err(format!("unknown attack {other}")),
    }
    Ok(tasks)
}
