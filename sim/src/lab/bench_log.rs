//! `kazashi-lab bench log --scale N`: the signed, stored, synced log with N events.
//!
//! A synthetic shelter week of N events, signed by the fleet's keys, is loaded into laptop A's
//! encrypted store (real SQLite file, real fsync, the standard Argon2id cost). Then:
//! - `append_durable_p50` / `_p99`: `Node::record` until the event is committed and fsynced
//!   (1000 check-ins into the week's last shard), and `maintain_p99`, the housekeeping run
//!   between them (shard compaction, WAL checkpoint);
//! - `bytes_per_event`: database plus WAL after a checkpoint, over N;
//! - `cold_start`: `Node::open` in a fresh process (key derivation, reading and decoding the
//!   event cache, folding N events) — and `cold_start_kdf`, the key derivation alone;
//!   `rss_after_open`: that process's resident memory once open, and `rss_before_open`, the
//!   same with only the roster opened (`roster_open`: the roster store beside it, kept on disk
//!   from `roster_lookup::ON_DISK_FROM` entries and then checked by streaming, as a station
//!   opens it; `roster_on_disk` says which); `peak_rss_open`, the child's VmHWM;
//! - `peak_rss`: the benchmark process's own peak (it holds three laptops' worth);
//! - `one_event_sync`: a whole session (catalogs, the shard's Automerge sync, checks, storage)
//!   bringing one new event from A to B, a laptop holding the other N;
//! - `full_sync_to_empty`: a whole session bringing all N events to a freshly enrolled laptop.

use crate::bench::{emit, median, memory_mib, ms};
use kazashi_domain::Event;
use kazashi_node::store::KdfParams;
use kazashi_node::{ManualClock, Node, Peer};
use kazashi_sim::fleet::fleet_sized;
use kazashi_sim::workload::{START_MS, shelter_week_by};
use kazashi_sync::{DeviceKey, seal};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

const PASS: &str = "bench passphrase";

/// The benchmark's working directory: removed afterwards, unless it was given in
/// `KAZASHI_BENCH_DIR` (to look at the files).
pub(crate) struct TempDir(pub(crate) PathBuf, pub(crate) bool);
impl TempDir {
    /// The working directory of benchmark `name`, created: `KAZASHI_BENCH_DIR` if set (kept),
    /// else a fresh one under the system's temporary directory (removed on drop).
    pub(crate) fn for_bench(name: &str) -> Result<TempDir, String> {
        let dir = match std::env::var_os("KAZASHI_BENCH_DIR") {
            Some(d) => TempDir(PathBuf::from(d), false),
            None => TempDir(
                std::env::temp_dir().join(format!("kazashi-bench-{name}-{}", std::process::id())),
                true,
            ),
        };
        std::fs::create_dir_all(&dir.0).map_err(|e| e.to_string())?;
        Ok(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.1 {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub(crate) fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(f64::NAN)
}

/// Run a session between two nodes until both are quiet; returns events added at `b`.
fn sync(a: &mut Node<ManualClock>, b: &mut Node<ManualClock>) -> Result<usize, String> {
    let (mut pa, mut pb) = (Peer::new("bench b"), Peer::new("bench a"));
    let mut to_b = vec![a.sync_start(&mut pa)];
    let mut to_a = vec![b.sync_start(&mut pb)];
    let mut added = 0;
    for _ in 0..10_000 {
        if to_a.is_empty() && to_b.is_empty() {
            a.sync_end(pa);
            b.sync_end(pb);
            return Ok(added);
        }
        let mut next_a = Vec::new();
        for m in to_b.drain(..) {
            let s = b.sync_handle(&mut pb, &m).map_err(|e| e.to_string())?;
            if s.refused > 0 {
                return Err("a sync message was refused".into());
            }
            added += s.added;
            next_a.extend(s.replies);
        }
        for m in to_a.drain(..) {
            let s = a.sync_handle(&mut pa, &m).map_err(|e| e.to_string())?;
            to_b.extend(s.replies);
        }
        to_a = next_a;
    }
    Err("sync did not settle".into())
}

pub(crate) fn copy_store(from: &Path, to: &Path) -> Result<(), String> {
    let kdf = |p: &Path| PathBuf::from(format!("{}.kdf", p.display()));
    std::fs::copy(from, to).map_err(|e| e.to_string())?;
    std::fs::copy(kdf(from), kdf(to)).map_err(|e| e.to_string())?;
    Ok(())
}

pub fn run(args: &crate::bench::BenchArgs) -> Result<(), String> {
    let n = args.scale;
    if !(100..=5_000_000).contains(&n) {
        return Err("--scale must be between 100 and 5000000".into());
    }
    let e = |x: &dyn std::fmt::Display| x.to_string();
    if let Some(path) = &args.child_open {
        return child_open(args, path);
    }
    let dir = TempDir::for_bench("log")?;

    // The town, the fleet (two laptops per site) and the signed week.
    let (m, d) = crate::bench::town(n, args.seed, false)?;
    let (fleet, sealed) = signed_week(&m, &d, n, args.seed)?;
    let roster = Arc::new(m.roster.clone());
    let site = d
        .sites()
        .find(|s| s.is_shelter())
        .map(|s| s.id)
        .ok_or("no shelter")?;
    let key_a = fleet.nth_key(&site, 0).ok_or("no key")?;
    let week_end = START_MS + 7 * 24 * 3600 * 1000;
    let clock = ManualClock::new(week_end);

    // Laptop A with the week loaded.
    let path_a = dir.0.join("a.db");
    let mut a = Node::create(
        &path_a,
        PASS,
        KdfParams::STANDARD,
        DeviceKey::from_seed(key_a.secret_bytes()),
        &fleet.manifest,
        roster.clone(),
        site,
        clock.clone(),
    )
    .map_err(|x| e(&x))?;
    a.bulk_load(sealed).map_err(|x| e(&x))?;
    a.store().checkpoint().map_err(|x| e(&x))?;
    // The roster store the cold-start child opens, as a station does.
    drop(
        kazashi_node::roster_db::RosterDb::create(
            &dir.0.join(kazashi_node::enrolled::ROSTER_FILE),
            PASS,
            KdfParams::FAST_INSECURE,
            (&m.roster).into(),
            [0; 32],
            &mut |_, _| {},
        )
        .map_err(|x| e(&x))?,
    );
    emit(
        "log",
        "bytes_per_event",
        a.store().size_on_disk() as f64 / n as f64,
        "bytes",
        n,
    );
    // Durable appends (each committed with a full fsync).
    let op = kazashi_domain::OperatorId::new("bench").map_err(|x| e(&x))?;
    let households: Vec<_> = {
        let mut h: Vec<_> = m.roster.entries().iter().map(|x| x.household).collect();
        h.dedup();
        h
    };
    // A check-in every second; housekeeping (compaction, checkpoint) between them every ten,
    // as the app runs it when idle, timed on its own.
    let mut lat = Vec::new();
    let mut upkeep = Vec::new();
    for i in 0..1000 {
        clock.advance(1000);
        let body = check_in(&m.roster, households.get(i % households.len()).copied())?;
        let t = Instant::now();
        a.record(op, body).map_err(|x| e(&x))?;
        lat.push(ms(t));
        if i % 10 == 9 {
            let t = Instant::now();
            a.maintain().map_err(|x| e(&x))?;
            upkeep.push(ms(t));
        }
    }
    crate::bench::emit_percentiles("log", "append_durable", &lat, "ms", n);
    emit("log", "maintain_p99", percentile(upkeep, 0.99), "ms", n);
    a.store().checkpoint().map_err(|x| e(&x))?;
    drop(a);

    // Cold start, in fresh processes (so that memory is the node's, not this benchmark's).
    let path_b = dir.0.join("b.db");
    copy_store(&path_a, &path_b)?;
    let mut child_lines = Vec::new();
    for _ in 0..args.runs.clamp(1, 5) {
        let exe = std::env::current_exe().map_err(|x| e(&x))?;
        let out = std::process::Command::new(exe)
            .args([
                "bench",
                "log",
                "--scale",
                &n.to_string(),
                "--seed",
                &args.seed.to_string(),
            ])
            .arg("--child-open")
            .arg(&path_a)
            .output()
            .map_err(|x| e(&x))?;
        if !out.status.success() {
            return Err(format!(
                "cold-start child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        child_lines.push(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    for metric in [
        "cold_start",
        "cold_start_kdf",
        "roster_open",
        "rss_before_open",
        "rss_after_open",
        "peak_rss_open",
    ] {
        let values: Vec<f64> = child_lines
            .iter()
            .filter_map(|out| {
                out.lines()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .find(|v| v.get("metric").and_then(|m| m.as_str()) == Some(metric))
                    .and_then(|v| v.get("value").and_then(serde_json::Value::as_f64))
            })
            .collect();
        let unit = if metric.contains("rss") { "MiB" } else { "ms" };
        emit("log", metric, median(values), unit, n);
    }
    let mut a =
        Node::open(&path_a, PASS, roster.clone(), site, clock.clone()).map_err(|x| e(&x))?;

    // One new event to a peer that has the rest. B is a copy of A's store taken before the
    // appends above, so the first session also carries those; it is not timed.
    let other_site = d
        .sites()
        .filter(|s| s.is_shelter())
        .nth(1)
        .map(|s| s.id)
        .unwrap_or(site);
    let mut b =
        Node::open(&path_b, PASS, roster.clone(), other_site, clock.clone()).map_err(|x| e(&x))?;
    sync(&mut a, &mut b)?;
    let mut times = Vec::new();
    for i in 0..args.runs.clamp(1, 11) {
        clock.advance(1000);
        let body = check_in(&m.roster, households.get(i).copied())?;
        a.record(op, body).map_err(|x| e(&x))?;
        let t = Instant::now();
        let added = sync(&mut a, &mut b)?;
        times.push(ms(t));
        if added != 1 {
            return Err(format!("one-event sync carried {added} events"));
        }
    }
    emit("log", "one_event_sync", median(times), "ms", n);
    drop(b);

    // Everything to a freshly enrolled laptop.
    a.unload_shards();
    let key_c = fleet.nth_key(&other_site, 1).ok_or("no key")?;
    let mut c = Node::create(
        &dir.0.join("c.db"),
        PASS,
        KdfParams::STANDARD,
        DeviceKey::from_seed(key_c.secret_bytes()),
        &fleet.manifest,
        roster.clone(),
        other_site,
        clock.clone(),
    )
    .map_err(|x| e(&x))?;
    let t = Instant::now();
    let added = sync(&mut a, &mut c)?;
    let full = ms(t);
    if c.state() != a.state() {
        return Err(format!(
            "full sync left the states different ({added} events carried)"
        ));
    }
    emit("log", "full_sync_to_empty", full, "ms", n);
    emit(
        "log",
        "full_sync_throughput",
        added as f64 / (full / 1e3),
        "events/s",
        n,
    );
    if let Some((_, peak)) = memory_mib() {
        emit("log", "peak_rss", peak, "MiB", n);
    }
    Ok(())
}

/// The child's side of the cold start: open the roster store beside the store (kept on disk
/// from `roster_lookup::ON_DISK_FROM` entries, as `enrolled::open` does), open the store,
/// report.
fn child_open(args: &crate::bench::BenchArgs, path: &Path) -> Result<(), String> {
    use kazashi_node::roster_db::RosterDb;
    use kazashi_node::roster_lookup::{ON_DISK_FROM, StoreRoster};
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let n = args.scale;
    let dir = path.parent().ok_or("no folder")?;
    let t = Instant::now();
    let db =
        RosterDb::open(&dir.join(kazashi_node::enrolled::ROSTER_FILE), PASS).map_err(|x| e(&x))?;
    let today = kazashi_domain::CivilDate::new(2026, 9, 1).map_err(|x| e(&x))?;
    let on_disk = db.len() >= ON_DISK_FROM && db.answers_from_disk();
    let roster = Arc::new(if on_disk {
        StoreRoster::roster(db, None).map_err(|x| e(&x))?
    } else {
        db.load(today, None).map_err(|x| e(&x))?
    });
    let roster_open = ms(t);
    if let Some((rss, _)) = memory_mib() {
        emit("log", "rss_before_open", rss, "MiB", n);
    }
    // The site: the store's manifest's first shelter.
    let t = Instant::now();
    let store = kazashi_node::Store::open(path, PASS).map_err(|x| e(&x))?;
    let kdf = ms(t);
    let manifest = store.manifest().map_err(|x| e(&x))?.ok_or("no manifest")?;
    let site = kazashi_sync::SignedManifest::decode(&manifest)
        .map_err(|x| e(&x))?
        .deployment()
        .sites()
        .find(|s| s.is_shelter())
        .map(|s| s.id)
        .ok_or("no shelter")?;
    drop(store);
    let t = Instant::now();
    let node =
        Node::open(path, PASS, roster, site, ManualClock::new(START_MS)).map_err(|x| e(&x))?;
    let cold = ms(t);
    emit("log", "cold_start", cold, "ms", n);
    emit("log", "cold_start_kdf", kdf, "ms", n);
    emit("log", "roster_open", roster_open, "ms", n);
    emit(
        "log",
        "roster_on_disk",
        f64::from(u8::from(on_disk)),
        "bool",
        n,
    );
    if let Some((rss, peak)) = memory_mib() {
        emit("log", "rss_after_open", rss, "MiB", n);
        emit("log", "peak_rss_open", peak, "MiB", n);
    }
    drop(node);
    Ok(())
}

fn check_in(
    roster: &kazashi_domain::Roster,
    h: Option<kazashi_domain::HouseholdId>,
) -> Result<kazashi_domain::EventBody, String> {
    use kazashi_domain::event::{EventBody, IdMethod};
    let h = h.ok_or("no household")?;
    let members = roster
        .household(&h)
        .iter()
        .map(|x| kazashi_domain::PersonRef::Roster(x.person))
        .collect();
    Ok(EventBody::ShelterCheckIn {
        household: Some(kazashi_domain::HouseholdRef::Roster(h)),
        members: kazashi_domain::Members::new(members).map_err(|x| x.to_string())?,
        method: IdMethod::Lookup,
    })
}

/// Sign every event with its device's key, on every core.
/// An event and its signed envelope.
pub(crate) type Sealed = (Event, Vec<u8>);

/// The shelter week of `n` events on `m` and `d`, signed by a drill fleet of two laptops per
/// shelter (seeded keys), ready for `Node::bulk_load`.
pub(crate) fn signed_week(
    m: &kazashi_sim::Municipality,
    d: &kazashi_domain::Deployment,
    n: usize,
    seed: u64,
) -> Result<(kazashi_sim::fleet::Fleet, Vec<Sealed>), String> {
    let fleet = fleet_sized(d, seed, 2)?;
    let device_of = |_: usize, site: &kazashi_domain::SiteId, k: u8| {
        fleet
            .nth_key(site, usize::from(k))
            .map(DeviceKey::device_id)
            .unwrap_or(kazashi_domain::DeviceId([0; 32]))
    };
    let events = shelter_week_by(m, d, n, seed, &device_of);
    let keys: std::collections::BTreeMap<kazashi_domain::DeviceId, &DeviceKey> = fleet
        .stations
        .iter()
        .map(|(_, k)| (k.device_id(), k))
        .collect();
    let sealed = seal_all(&events, &keys, d.id())?;
    Ok((fleet, sealed))
}

pub(crate) fn seal_all(
    events: &[Event],
    keys: &std::collections::BTreeMap<kazashi_domain::DeviceId, &DeviceKey>,
    deployment: kazashi_domain::DeploymentId,
) -> Result<Vec<(Event, Vec<u8>)>, String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = events.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = events
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|ev| {
                            let key = keys.get(&ev.device()).ok_or("event by an unknown device")?;
                            let env = seal(ev, deployment, key).map_err(|x| x.to_string())?;
                            Ok((ev.clone(), env))
                        })
                        .collect::<Result<Vec<_>, String>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(events.len());
        for h in handles {
            out.extend(h.join().map_err(|_| "a sealing thread failed")??);
        }
        Ok(out)
    })
}
