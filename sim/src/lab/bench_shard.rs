//! `kazashi-lab bench shard --scale N`: what one Automerge shard costs as it grows, to choose the
//! sharding. For shard sizes up to N events (1k, 3k, 10k, 30k, 100k, …): the time for a peer to
//! take one new event through the sync protocol with all checks (fork, patch vetting, envelope
//! verification), the saved size per event, and the load time.

use crate::bench::{emit, median};
use kazashi_domain::{CivilDate, Event};
use kazashi_sim::fleet::fleet_sized;
use kazashi_sim::population::{PopulationSpec, generate, shelter_operation};
use kazashi_sim::workload::shelter_week_by;
use kazashi_sync::{DeviceKey, Rejection, ShardDoc, ShardId, open_as, seal};
use std::time::Instant;

pub fn run(args: &crate::bench::BenchArgs) -> Result<(), String> {
    let max = args.scale.clamp(1000, 1_000_000);
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let today = CivilDate::new(2026, 9, 1).map_err(|x| e(&x))?;
    let m = generate(PopulationSpec {
        households: (max / 8).max(50),
        seed: args.seed,
        today,
        voters: false,
    })
    .map_err(|x| e(&x))?;
    // One shelter, so that every event lands in the same site's shards.
    let d = shelter_operation(&m, 1).map_err(|x| e(&x))?;
    let fleet = fleet_sized(&d, args.seed, 2)?;
    let members = kazashi_sync::SignedManifest::decode(&fleet.manifest).map_err(|x| e(&x))?;
    let device_of = |_: usize, site: &kazashi_domain::SiteId, k: u8| {
        fleet
            .nth_key(site, usize::from(k))
            .map(DeviceKey::device_id)
            .unwrap_or(kazashi_domain::DeviceId([0; 32]))
    };
    let events = shelter_week_by(&m, &d, max + args.runs + 1, args.seed, &device_of);
    let key_of = |ev: &Event| {
        fleet
            .stations
            .iter()
            .map(|(_, k)| k)
            .find(|k| k.device_id() == ev.device())
    };
    let sealed: Vec<(Event, Vec<u8>)> = events
        .iter()
        .filter_map(|ev| Some((ev.clone(), seal(ev, d.id(), key_of(ev)?).ok()?)))
        .collect();
    let check = |id: &kazashi_domain::EventId, env: &[u8]| -> Result<(), Rejection> {
        open_as(env, id, &members).map(|_| ())
    };
    let (ev0, _) = sealed.first().ok_or("no events")?;
    let shard = ShardId::of(ev0).ok_or("no shard")?;
    let actor_a = fleet
        .stations
        .first()
        .map(|(_, k)| k.device_id())
        .ok_or("no key")?;
    let actor_b = fleet
        .stations
        .get(1)
        .map(|(_, k)| k.device_id())
        .ok_or("no key")?;

    let mut size = 1000;
    while size <= max {
        // A holds `size` events, B a copy; then A takes one more and syncs it to B.
        let mut a = ShardDoc::new(shard, &actor_a);
        for (ev, env) in sealed.iter().take(size) {
            a.insert(&ev.id(), env).map_err(|x| e(&x))?;
        }
        let saved = a.save();
        let t = Instant::now();
        let mut b = ShardDoc::load(shard, &actor_b, &saved).map_err(|x| e(&x))?;
        let load = t.elapsed().as_secs_f64() * 1e3;
        let mut times = Vec::new();
        let (mut sa, mut sb) = (automerge::sync::State::new(), automerge::sync::State::new());
        // Settle the pair first (the peers know each other's heads).
        settle(&mut a, &mut b, &mut sa, &mut sb, &check)?;
        for (ev, env) in sealed.iter().skip(size).take(args.runs.clamp(1, 21)) {
            a.insert(&ev.id(), env).map_err(|x| e(&x))?;
            let t = Instant::now();
            let added = settle(&mut a, &mut b, &mut sa, &mut sb, &check)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            if added != 1 {
                return Err(format!("one-event sync added {added}"));
            }
        }
        emit("shard", "one_event_sync", median(times), "ms", size);
        emit(
            "shard",
            "saved_bytes_per_event",
            saved.len() as f64 / size as f64,
            "bytes",
            size,
        );
        emit("shard", "load", load, "ms", size);
        size = if size.to_string().starts_with('1') {
            size * 3
        } else {
            size * 10 / 3
        };
    }
    Ok(())
}

fn settle(
    a: &mut ShardDoc,
    b: &mut ShardDoc,
    sa: &mut automerge::sync::State,
    sb: &mut automerge::sync::State,
    check: kazashi_sync::EnvelopeCheck<'_>,
) -> Result<usize, String> {
    let mut added = 0;
    for _ in 0..20 {
        let ab = a.generate(sa);
        if let Some(m) = &ab {
            added += b.receive(sb, m, check).map_err(|x| x.to_string())?.len();
        }
        let ba = b.generate(sb);
        if let Some(m) = &ba {
            a.receive(sa, m, check).map_err(|x| x.to_string())?;
        }
        if ab.is_none() && ba.is_none() {
            break;
        }
    }
    Ok(added)
}
