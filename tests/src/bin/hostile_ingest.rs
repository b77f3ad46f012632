//! A laptop's node that a hostile peer feeds, run by `tests/tests/hostile_input.rs` under a
//! 1 GiB address-space limit: three real nodes (encrypted SQLite files in the folder given)
//! write and sync; a hostile peer then sends the victim, through `Node::sync_handle` (the one
//! inbound path for sync frames), a sync message whose Automerge change inflates to 1.5 GiB
//! (a DEFLATE bomb) and a catalog naming a million shards; then the honest nodes write more
//! and sync, and must converge. One JSON line per step on stdout; exit status 0 only if every
//! step went as it should.
//!
//! `--control`: allocate and touch 1.5 GiB instead, to show the limit is in force (the test
//! expects that run to fail).

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout
)]

use kazashi_domain::event::{EventBody, IdMethod, Members};
use kazashi_domain::ids::{HouseholdRef, OperatorId, PersonRef, SiteId};
use kazashi_domain::{CivilDate, Roster, SiteKind};
use kazashi_node::store::KdfParams;
use kazashi_node::{ManualClock, Node, Peer};
use kazashi_sim::fleet::fleet;
use kazashi_sim::hostile::bomb_sync_message;
use kazashi_sim::population::{PopulationSpec, generate, shelter_operation};
use kazashi_sim::workload::START_MS;
use kazashi_sync::{DeviceKey, Log, Message, Session, ShardId, seal};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const BOMB_INFLATED: u64 = 3 << 29; // 1.5 GiB

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--control") {
        let mut v = vec![0u8; BOMB_INFLATED as usize];
        for i in (0..v.len()).step_by(4096) {
            v[i] = 1;
        }
        println!("{{\"control\":\"allocated\",\"bytes\":{}}}", v.len());
        return;
    }
    let Some(dir) = args.get(1) else {
        eprintln!("usage: hostile_ingest <folder> | --control");
        std::process::exit(2);
    };
    if let Err(why) = run(Path::new(dir)) {
        eprintln!("hostile_ingest: {why}");
        std::process::exit(1);
    }
}

fn check_in(roster: &Roster, i: usize) -> EventBody {
    let mut households: Vec<_> = roster.entries().iter().map(|e| e.household).collect();
    households.dedup();
    let h = households[i % households.len()];
    let members = roster
        .household(&h)
        .iter()
        .map(|e| PersonRef::Roster(e.person))
        .collect();
    EventBody::ShelterCheckIn {
        household: Some(HouseholdRef::Roster(h)),
        members: Members::new(members).unwrap(),
        method: IdMethod::Lookup,
    }
}

/// Peak resident set of this process so far, in KiB (`VmHWM`).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Sync two nodes until both are quiet; returns the refusals either side saw.
fn sync(a: &mut Node<ManualClock>, b: &mut Node<ManualClock>) -> usize {
    let (mut pa, mut pb) = (Peer::new("peer b"), Peer::new("peer a"));
    let mut to_b = vec![a.sync_start(&mut pa)];
    let mut to_a = vec![b.sync_start(&mut pb)];
    let mut refused = 0;
    for _ in 0..100 {
        if to_a.is_empty() && to_b.is_empty() {
            break;
        }
        let (mut next_a, mut next_b) = (Vec::new(), Vec::new());
        for m in to_b.drain(..) {
            let s = b.sync_handle(&mut pb, &m).unwrap();
            refused += s.refused;
            next_a.extend(s.replies);
        }
        for m in to_a.drain(..) {
            let s = a.sync_handle(&mut pa, &m).unwrap();
            refused += s.refused;
            next_b.extend(s.replies);
        }
        to_a = next_a;
        to_b = next_b;
    }
    a.sync_end(pa);
    b.sync_end(pb);
    refused
}

fn line(attack: &str, fields: &str) {
    println!(
        "{{\"attack\":\"{attack}\",{fields},\"peak_rss_kib\":{}}}",
        peak_rss_kib()
    );
}

fn run(dir: &Path) -> Result<(), String> {
    let m = generate(PopulationSpec {
        households: 60,
        seed: 5,
        today: CivilDate::new(2026, 9, 1).unwrap(),
        voters: false,
    })
    .map_err(|e| e.to_string())?;
    let d = shelter_operation(&m, 3).map_err(|e| e.to_string())?;
    let f = fleet(&d, 5).map_err(|e| e.to_string())?;
    let roster = Arc::new(m.roster.clone());
    let clock = ManualClock::new(START_MS);
    // The shelters (check-ins are written there); the catalog also names the others.
    let sites: Vec<SiteId> = d
        .sites()
        .filter(|s| matches!(s.kind, SiteKind::Shelter { .. }))
        .map(|s| s.id)
        .collect();
    let mut nodes: Vec<Node<ManualClock>> = sites
        .iter()
        .take(3)
        .enumerate()
        .map(|(i, s)| {
            let key = DeviceKey::from_seed(f.key(s).unwrap().secret_bytes());
            Node::create(
                &dir.join(format!("n{i}.db")),
                "correct horse",
                KdfParams::FAST_INSECURE,
                key,
                &f.manifest,
                roster.clone(),
                *s,
                clock.clone(),
            )
            .unwrap()
        })
        .collect();
    if nodes.len() < 3 {
        return Err("the drill deployment has fewer than three sites".into());
    }
    let op = OperatorId::new("staff01").unwrap();
    for (i, n) in nodes.iter_mut().enumerate() {
        for k in 0..10 {
            clock.advance(1000);
            n.record(op, check_in(&roster, i * 10 + k))
                .map_err(|e| e.to_string())?;
        }
    }
    let (a, rest) = nodes.split_at_mut(1);
    let (b, c) = rest.split_at_mut(1);
    let (v, h1, h2) = (&mut a[0], &mut b[0], &mut c[0]);
    if sync(v, h1) != 0 {
        return Err("honest nodes refused each other".into());
    }
    line("none", &format!("\"events\":{}", v.state().len()));

    // A DEFLATE bomb in the victim's own shard.
    let shard = ShardId {
        site: sites[0],
        day: CivilDate::jst_of(START_MS).unwrap(),
    };
    let frame = Message::Shard {
        shard,
        sync: bomb_sync_message(BOMB_INFLATED),
    }
    .encode();
    let mut hostile = Peer::new("peer hostile");
    let t = Instant::now();
    let step = v
        .sync_handle(&mut hostile, &frame)
        .map_err(|e| e.to_string())?;
    line(
        "deflate-bomb",
        &format!(
            "\"frame_bytes\":{},\"inflates_to\":{BOMB_INFLATED},\"refused\":{},\"ms\":{}",
            frame.len(),
            step.refused,
            t.elapsed().as_millis()
        ),
    );
    if step.refused != 1 || step.added != 0 {
        return Err(format!("the bomb was not refused: {step:?}"));
    }

    // A catalog naming a million shards: 80,000 days of each of the deployment's sites, then
    // of made-up sites (a million distinct days do not fit a date's range).
    let digest = [7u8; 32];
    let all_sites: Vec<SiteId> = d.sites().map(|s| s.id).collect();
    let entries: Vec<(ShardId, [u8; 32])> = (0..1_000_000i64)
        .filter_map(|i| {
            let j = (i / 80_000) as usize;
            let site = match all_sites.get(j) {
                Some(s) => *s,
                None => SiteId::new(&format!("X{j:04}")).ok()?,
            };
            Some((
                ShardId {
                    site,
                    day: CivilDate::from_days_since_epoch(i % 80_000)?,
                },
                digest,
            ))
        })
        .collect();
    let n = entries.len();
    let frame = Message::Catalog(entries).encode();
    let t = Instant::now();
    let step = v
        .sync_handle(&mut hostile, &frame)
        .map_err(|e| e.to_string())?;
    line(
        "million-shard-catalog",
        &format!(
            "\"shards\":{n},\"frame_bytes\":{},\"refused\":{},\"replies\":{},\"ms\":{}",
            frame.len(),
            step.refused,
            step.replies.len(),
            t.elapsed().as_millis()
        ),
    );
    drop(frame);
    if step.refused != 1 || !step.replies.is_empty() {
        return Err(format!(
            "the catalog was not refused: refused {}, {} replies",
            step.refused,
            step.replies.len()
        ));
    }
    // A shard of a site outside the deployment.
    let outside = Message::Shard {
        shard: ShardId {
            site: SiteId::new("ZZ999").unwrap(),
            day: shard.day,
        },
        sync: bomb_sync_message(1000),
    }
    .encode();
    let step = v
        .sync_handle(&mut hostile, &outside)
        .map_err(|e| e.to_string())?;
    line("site-outside", &format!("\"refused\":{}", step.refused));
    if step.refused != 1 {
        return Err("a shard of a site outside the deployment was taken".into());
    }
    // A valid event of the third shelter, filed in the victim's shard.
    let key2 = DeviceKey::from_seed(f.key(&sites[2]).unwrap().secret_bytes());
    clock.advance(1000);
    let e = h2
        .record(op, check_in(&roster, 33))
        .map_err(|e| e.to_string())?;
    let env = seal(&e, d.id(), &key2).map_err(|e| e.to_string())?;
    let mut evil = Log::new(key2.device_id());
    evil.insert(shard, &e.id(), &env)
        .map_err(|e| e.to_string())?;
    let mut es = Session::new();
    // A new session: the bomb got this shard refused for the rest of the first one.
    let mut hostile = Peer::new("peer hostile 2");
    let mut to_v = vec![es.start(&mut evil).encode()];
    let mut wrong_refused = 0;
    let lax =
        |_: &kazashi_domain::EventId, _: &[u8]| -> Result<(), kazashi_sync::Rejection> { Ok(()) };
    for _ in 0..20 {
        let mut back = Vec::new();
        for m in to_v.drain(..) {
            let step = v.sync_handle(&mut hostile, &m).map_err(|e| e.to_string())?;
            wrong_refused += step.refused;
            back.extend(step.replies);
        }
        for m in back {
            let msg = Message::decode(&m).map_err(|e| e.to_string())?;
            to_v.extend(
                es.handle(&mut evil, msg, &lax)
                    .replies
                    .iter()
                    .map(Message::encode),
            );
        }
        if to_v.is_empty() {
            break;
        }
    }
    line(
        "wrong-shard",
        &format!(
            "\"refused\":{wrong_refused},\"taken\":{}",
            v.state().contains(&e.id())
        ),
    );
    if wrong_refused == 0 || v.state().contains(&e.id()) {
        return Err("an event filed in another shard was taken".into());
    }
    let why = v.store().quarantined().map_err(|e| e.to_string())?;
    if !why
        .iter()
        .any(|q| q.source == "peer hostile 2" && q.reason.contains("but it belongs to"))
    {
        return Err("the wrong shard was refused for another reason".into());
    }
    let q = v.store().quarantined().map_err(|e| e.to_string())?;
    let largest = q.iter().map(|x| x.bytes.len()).max().unwrap_or(0);
    line(
        "quarantine",
        &format!("\"kept\":{},\"largest_bytes\":{largest}", q.len()),
    );
    if largest > 1 << 20 {
        return Err(format!(
            "the quarantine kept {largest} bytes of one refusal"
        ));
    }

    // The honest nodes write more and meet; they converge.
    let t = Instant::now();
    for (i, n) in [&mut *v, &mut *h1, &mut *h2].into_iter().enumerate() {
        for k in 0..5 {
            clock.advance(1000);
            n.record(op, check_in(&roster, 40 + i * 5 + k))
                .map_err(|e| e.to_string())?;
        }
    }
    let mut refused = 0;
    for _ in 0..2 {
        refused += sync(v, h1) + sync(h1, h2) + sync(v, h2);
    }
    let (dv, d1, d2) = (v.state_digest(), h1.state_digest(), h2.state_digest());
    line(
        "converge",
        &format!(
            "\"events\":[{},{},{}],\"same_digest\":{},\"refused\":{refused},\"ms\":{}",
            v.state().len(),
            h1.state().len(),
            h2.state().len(),
            dv == d1 && d1 == d2,
            t.elapsed().as_millis()
        ),
    );
    if dv != d1 || d1 != d2 || v.state().len() != 46 || refused != 0 {
        return Err("the honest nodes did not converge".into());
    }
    Ok(())
}
