//! `kazashi-lab bench hostile [--scale N] [--runs R]`: hostile peers against one laptop's mesh,
//! real iroh endpoints on loopback in one process (issue 25). Two honest laptops A and B each
//! wrote N events apart (N = `--scale`, at most 2,000; 2,000 when the default is left); for
//! each round both stores are fresh copies of the same two, A's mesh starts, the attack starts
//! against A and runs for two seconds, then B dials A while the attack goes on, and the round
//! ends when both hold every event (equal digests). Every round is run R times (`--runs`,
//! default 5); per attack:
//! - `<attack>_heal`: from B's start to convergence, seconds, the median of the runs;
//!   `<attack>_heal_vs_quiet`: that over the quiet rounds' median (goal: at most 2);
//! - `<attack>_peak_rss`: the process's peak resident memory during the round (the peak is
//!   reset before each round through `/proc/self/clear_refs`), MiB, the highest of the runs
//!   (goal: at most 1024); the process holds both laptops and the attacker, and what the
//!   allocator kept from earlier rounds, so this is an upper bound for A alone;
//!   `<attack>_rss_added`: the peak less the resident memory at the round's start, the highest
//!   of the runs;
//! - `<attack>_turned_away`: connections A's greeting gate closed as busy (the last run).
//!
//! Also `largest_honest_message`: the largest sync message one honest laptop sends another
//! that holds nothing, bytes (its N events are one site-day shard), against `max_frame`.
//!
//! The attacks: `quiet` (none); `handshake_flood` (strangers from eight loopback addresses
//! keep opening connections that never greet); `oversized_header` (an enrolled laptop — the
//! command center's key, as a compromised relay would be — greets, then sends a header
//! declaring a 255 MiB frame, over and over, on four connections at once); `oversized_frames`
//! (the same member sends frames of the largest size taken, `MAX_FRAME`, streaming junk into
//! them, on eight connections at once: the frame budget lets the device hold two);
//! `junk_frames` (the same member sends 64 KiB frames of random bytes as fast as the link takes
//! them); `catalog_1m` (the same member sends catalogs naming a million shards, 41 MB: past
//! the frame limit); `catalog_400k` (400,000 shards, 17 MB: read, then refused from the count
//! it declares);
//! `deflate_bomb` (the same member sends sync messages for shards of the deployment whose
//! Automerge change is DEFLATE data inflating to 1.5 GiB, one shard after another).

use crate::bench::emit;
use crate::bench_log::{TempDir, copy_store};
use kazashi_domain::{CivilDate, OperatorId, SiteId};
use kazashi_node::link::{FRAME_HELLO, FRAME_SYNC, Hello, MAX_FRAME};
use kazashi_node::mesh::{ALPN, Mesh, MeshConfig, PeerAddr};
use kazashi_node::{KdfParams, Node, SystemClock};
use kazashi_sim::fleet::fleet;
use kazashi_sim::hostile::{big_catalog, bomb_message, frame};
use kazashi_sim::population::{PopulationSpec, generate, shelter_operation};
use kazashi_sim::workload::household_check_in;
use kazashi_sync::{DeviceKey, ShardId};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const PASS: &str = "bench passphrase";
const ATTACKS: [&str; 8] = [
    "quiet",
    "handshake_flood",
    "oversized_header",
    "oversized_frames",
    "junk_frames",
    "catalog_1m",
    "catalog_400k",
    "deflate_bomb",
];

/// What the bomb's change inflates to.
const BOMB_INFLATED: u64 = 3 << 29;

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
    /// The day the honest laptops wrote on (their shards).
    day: CivilDate,
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
    let largest = largest_honest_message(&setup)?;
    emit(
        "hostile",
        "largest_honest_message",
        largest as f64,
        "bytes",
        n,
    );
    emit("hostile", "max_frame", MAX_FRAME as f64, "bytes", n);
    let runs = args.runs.max(1);
    // Per attack: heals, highest peak and highest rise over the round's start, last turned
    // away.
    type Seen = (Vec<f64>, Option<(f64, f64)>, u64);
    let mut seen: Vec<Seen> = vec![(Vec::new(), None, 0); ATTACKS.len()];
    let mut result = Ok(());
    'runs: for run in 0..runs {
        for (i, attack) in ATTACKS.iter().enumerate() {
            let round = run * ATTACKS.len() + i;
            match rt.block_on(one_round(&setup, &dir.0, round, attack)) {
                Ok((heal, peak, turned)) => {
                    let Some(s) = seen.get_mut(i) else { continue };
                    s.0.push(heal);
                    s.1 = match (s.1, peak) {
                        (Some(a), Some(b)) => Some((a.0.max(b.0), a.1.max(b.1))),
                        (a, b) => a.or(b),
                    };
                    s.2 = turned;
                }
                Err(e) => {
                    result = Err(format!("{attack}: {e}"));
                    break 'runs;
                }
            }
        }
    }
    rt.shutdown_timeout(Duration::from_secs(2));
    result?;
    let quiet = seen
        .first()
        .map(|s| crate::bench::median(s.0.clone()))
        .unwrap_or(f64::NAN);
    for (attack, (heals, peak, turned)) in ATTACKS.iter().zip(seen) {
        let heal = crate::bench::median(heals);
        emit("hostile", &format!("{attack}_heal"), heal, "s", n);
        emit(
            "hostile",
            &format!("{attack}_heal_vs_quiet"),
            heal / quiet,
            "x",
            n,
        );
        if let Some((peak, added)) = peak {
            emit("hostile", &format!("{attack}_peak_rss"), peak, "MiB", n);
            emit("hostile", &format!("{attack}_rss_added"), added, "MiB", n);
        }
        emit(
            "hostile",
            &format!("{attack}_turned_away"),
            turned as f64,
            "connections",
            n,
        );
    }
    emit("hostile", "runs", runs as f64, "runs", n);
    Ok(())
}

/// The largest message A sends a laptop that holds nothing (its whole shard, in one session).
fn largest_honest_message(s: &Setup) -> Result<usize, String> {
    let dir = TempDir::for_bench("hostile-honest")?;
    let (template, site) = &s.honest[0];
    let path = dir.0.join("a.db");
    copy_store(template, &path)?;
    let mut a =
        Node::open(&path, PASS, s.roster.clone(), *site, SystemClock).map_err(|e| e.to_string())?;
    let mut b = Node::create(
        &dir.0.join("empty.db"),
        PASS,
        KdfParams::FAST_INSECURE,
        DeviceKey::from_seed(s.member.secret_bytes()),
        &s.manifest,
        s.roster.clone(),
        *site,
        SystemClock,
    )
    .map_err(|e| e.to_string())?;
    let (mut pa, mut pb) = (kazashi_node::Peer::new("b"), kazashi_node::Peer::new("a"));
    let mut to_b = vec![a.sync_start(&mut pa)];
    let mut to_a = vec![b.sync_start(&mut pb)];
    let mut largest = 0;
    for _ in 0..50 {
        if to_a.is_empty() && to_b.is_empty() {
            break;
        }
        largest = to_b.iter().map(Vec::len).max().unwrap_or(0).max(largest);
        let mut next_a = Vec::new();
        for m in to_b.drain(..) {
            next_a.extend(
                b.sync_handle(&mut pb, &m)
                    .map_err(|e| e.to_string())?
                    .replies,
            );
        }
        let mut next_b = Vec::new();
        for m in to_a.drain(..) {
            next_b.extend(
                a.sync_handle(&mut pa, &m)
                    .map_err(|e| e.to_string())?
                    .replies,
            );
        }
        to_a = next_a;
        to_b = next_b;
    }
    if b.state().len() != a.state().len() {
        return Err("the honest sync did not complete".into());
    }
    Ok(largest)
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
        day: CivilDate::jst_of(kazashi_node::Clock::now_ms(&SystemClock))
            .ok_or("no JST day today")?,
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
) -> Result<(f64, Option<(f64, f64)>, u64), String> {
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
    let base = crate::bench::memory_mib().map(|(rss, _)| rss);
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
    let peak = crate::bench::memory_mib()
        .zip(base)
        .map(|((_, peak), base)| (peak, peak - base));
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
        "oversized_header" | "oversized_frames" | "junk_frames" | "catalog_1m" | "catalog_400k"
        | "deflate_bomb" => {
            let ep = endpoint([127, 0, 0, 1], Some(&s.member)).await?;
            let hello = frame(FRAME_HELLO, &s.member_hello);
            let catalog = match attack {
                "catalog_1m" => Arc::new(frame(FRAME_SYNC, &big_catalog(&s.sites, 1_000_000))),
                "catalog_400k" => Arc::new(frame(FRAME_SYNC, &big_catalog(&s.sites, 400_000))),
                _ => Arc::new(Vec::new()),
            };
            // Bombs for every shard of the deployment's sites, the honest laptops' day first.
            let bombs: Arc<Vec<Vec<u8>>> = Arc::new(if attack == "deflate_bomb" {
                let mut days = vec![s.day];
                days.extend((1..40).filter_map(|k| {
                    CivilDate::from_days_since_epoch(s.day.days_since_epoch() - k)
                }));
                days.iter()
                    .flat_map(|day| s.sites.iter().map(move |site| (*site, *day)))
                    .map(|(site, day)| {
                        frame(
                            FRAME_SYNC,
                            &bomb_message(ShardId { site, day }, BOMB_INFLATED),
                        )
                    })
                    .take(4)
                    .collect()
            } else {
                Vec::new()
            });
            let parallel = match attack {
                "oversized_frames" => 8,
                "oversized_header" => 4,
                _ => 1,
            };
            for k in 0..parallel {
                let (ep, to, stop, hello, catalog, bombs) = (
                    ep.clone(),
                    to.clone(),
                    stop.clone(),
                    hello.clone(),
                    catalog.clone(),
                    bombs.clone(),
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
                            "oversized_header" => {
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
                            "oversized_frames" => {
                                // The largest frame taken, its body junk, again and again.
                                let len = u32::try_from(MAX_FRAME).unwrap_or(u32::MAX);
                                let mut ok = true;
                                while ok && !stop.load(Ordering::Relaxed) {
                                    let mut head = len.to_be_bytes().to_vec();
                                    head.push(FRAME_SYNC);
                                    ok = send.write_all(&head).await.is_ok();
                                    let mut left = MAX_FRAME - 1;
                                    while ok && left > 0 && !stop.load(Ordering::Relaxed) {
                                        let part = left.min(body.len());
                                        let chunk = body.get(..part).unwrap_or_default();
                                        ok = send.write_all(chunk).await.is_ok();
                                        left -= part;
                                    }
                                }
                            }
                            "deflate_bomb" => {
                                let mut k = 0usize;
                                while !stop.load(Ordering::Relaxed) {
                                    let Some(b) = bombs.get(k % bombs.len().max(1)) else {
                                        break;
                                    };
                                    if send.write_all(b).await.is_err() {
                                        break;
                                    }
                                    k += 1;
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
