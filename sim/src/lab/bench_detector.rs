//! `kazashi-lab bench detector --scale N`: the detector over a synthetic shelter week of N events
//! plus the municipality's election (turnout 60 %, one planted double vote per 10 000 events).
//!
//! - `full_run`: `Detector::full` over both (the fold and the roster index not included),
//!   with `full_run_throughput` in events per second; `matcher_build`, the folded roster index;
//! - `incremental_per_event`: the last 10 000 events inserted and checked one by one;
//! - `double_vote_recall`: planted double votes found;
//! - `fuzzy_precision` / `fuzzy_recall`: 300 walk-ins planted as variant spellings of roster
//!   people (異体字, katakana reading, swapped names) among 300 strangers with common names;
//! - `alerts`, and `alerts_<kind>` for each kind raised; `peak_rss`, the process's peak memory.

use crate::bench::{emit, median};
use kazashi_domain::detector::{AlertKind, Context, Detector, MatchIndex};
use kazashi_domain::event::{EventBody, WalkInPerson};
use kazashi_domain::text::{KanaReading, PersonName};
use kazashi_domain::{CivilDate, Event, EventContent, PersonRef, State, Timestamp};
use kazashi_sim::population::election;
use kazashi_sim::workload::{START_MS, election_votes, shelter_week};
use rand::{RngExt, SeedableRng};
use std::collections::BTreeSet;
use std::time::Instant;

pub fn run(args: &crate::bench::BenchArgs) -> Result<(), String> {
    let n = args.scale;
    if !(1000..=20_000_000).contains(&n) {
        return Err("--scale must be between 1000 and 20000000".into());
    }
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let (m, shelters) = crate::bench::town(n, args.seed, true)?;
    let polls =
        election(&m, CivilDate::new(2026, 10, 25).map_err(|x| e(&x))?).map_err(|x| e(&x))?;
    let week = shelter_week(&m, &shelters, n, args.seed);
    let device = |i: usize, _: &kazashi_domain::SiteId, _: u8| {
        let mut b = [9u8; 32];
        b[..8].copy_from_slice(&(i as u64).to_le_bytes());
        kazashi_domain::DeviceId(b)
    };
    let (votes, planted) = election_votes(&m, &polls, 0.6, (n / 10_000).max(5), args.seed, &device);
    let total = week.len() + votes.len();

    let t = Instant::now();
    let matcher = MatchIndex::new(&m.roster);
    emit(
        "detector",
        "matcher_build",
        t.elapsed().as_secs_f64() * 1e3,
        "ms",
        n,
    );
    let shelter_ctx = Context {
        deployment: &shelters,
        roster: &m.roster,
        matcher: &matcher,
    };
    let poll_ctx = Context {
        deployment: &polls,
        roster: &m.roster,
        matcher: &matcher,
    };
    let split = week.len().saturating_sub(10_000);
    let tail: Vec<Event> = week.get(split..).map(<[Event]>::to_vec).unwrap_or_default();
    let head: Vec<Event> = week.get(..split).map(<[Event]>::to_vec).unwrap_or_default();
    let shelter_state = State::from_events(week);
    let poll_state = State::from_events(votes);

    let mut times = Vec::new();
    let mut alerts = (0, 0);
    let mut by_kind: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for _ in 0..args.runs.clamp(1, 5) {
        let t = Instant::now();
        let a = Detector::full(&shelter_ctx, &shelter_state);
        let b = Detector::full(&poll_ctx, &poll_state);
        times.push(t.elapsed().as_secs_f64());
        alerts = (a.alerts().len(), b.alerts().len());
        if times.len() == 1 {
            for x in a.alerts().into_iter().chain(b.alerts()) {
                *by_kind.entry(x.kind.code()).or_default() += 1;
            }
            let found: BTreeSet<PersonRef> = b
                .alerts()
                .iter()
                .filter(|x| x.kind == AlertKind::DoubleVote)
                .flat_map(|x| x.subjects.iter().copied())
                .collect();
            let hit = planted
                .iter()
                .filter(|v| found.contains(&PersonRef::Roster(**v)))
                .count();
            emit(
                "detector",
                "double_vote_recall",
                hit as f64 / planted.len().max(1) as f64,
                "ratio",
                n,
            );
        }
    }
    let med = median(times);
    emit("detector", "full_run", med * 1e3, "ms", n);
    emit(
        "detector",
        "full_run_throughput",
        total as f64 / med,
        "events/s",
        n,
    );
    emit(
        "detector",
        "alerts",
        (alerts.0 + alerts.1) as f64,
        "alerts",
        n,
    );

    for (kind, count) in by_kind {
        emit(
            "detector",
            &format!("alerts_{kind}"),
            count as f64,
            "alerts",
            n,
        );
    }

    // Incremental: the week's last events, one by one. The full states go first, so that at
    // 10 M events the process holds one week, not three.
    drop(shelter_state);
    drop(poll_state);
    let mut state = State::from_events(head);
    let mut det = Detector::full(&shelter_ctx, &state);
    let t = Instant::now();
    let mut k = 0usize;
    for ev in tail {
        if state.insert(ev.clone()) == kazashi_domain::state::Inserted::New {
            det.update(&shelter_ctx, &state, &ev);
            k += 1;
        }
    }
    emit(
        "detector",
        "incremental_per_event",
        t.elapsed().as_secs_f64() * 1e6 / k.max(1) as f64,
        "us",
        n,
    );

    // Fuzzy matching: planted variants among strangers.
    let (precision, recall) = fuzzy(&m.roster, &matcher, &shelters, args.seed)?;
    emit("detector", "fuzzy_precision", precision, "ratio", n);
    emit("detector", "fuzzy_recall", recall, "ratio", n);
    if let Some((_, peak)) = crate::bench::memory_mib() {
        emit("detector", "peak_rss", peak, "MiB", n);
    }
    Ok(())
}

/// Glyph variants a registrar may write for a common character.
const VARIANTS: &[(char, char)] = &[
    ('高', '髙'),
    ('崎', '﨑'),
    ('辺', '邉'),
    ('斎', '齋'),
    ('吉', '𠮷'),
    ('浜', '濵'),
    ('徳', '德'),
];

fn to_katakana(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'ぁ'..='ゖ' => char::from_u32(c as u32 + 0x60).unwrap_or(c),
            _ => c,
        })
        .collect()
}

fn fuzzy(
    roster: &kazashi_domain::Roster,
    matcher: &MatchIndex,
    deployment: &kazashi_domain::Deployment,
    seed: u64,
) -> Result<(f64, f64), String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xf022);
    let site = deployment.sites().next().map(|s| s.id).ok_or("no site")?;
    let entries = roster.entries();
    let mut events = Vec::new();
    let mut truth: Vec<(EventContent, Option<kazashi_domain::PersonId>)> = Vec::new();
    for i in 0..600u32 {
        let planted = i % 2 == 0;
        let person = if planted {
            let Some(r) = entries.get(rng.random_range(0..entries.len())) else {
                continue;
            };
            let mut name = r.name.as_str().to_owned();
            let mut kana = r.kana.as_str().to_owned();
            match rng.random_range(0..3) {
                // 異体字 where the name has one, else katakana.
                0 if VARIANTS.iter().any(|(a, _)| name.contains(*a)) => {
                    for (a, b) in VARIANTS {
                        name = name.replace(*a, &b.to_string());
                    }
                }
                1 => {
                    let parts: Vec<&str> = name.split(' ').collect();
                    if let [f, g] = parts.as_slice() {
                        name = format!("{g} {f}");
                    }
                }
                _ => kana = to_katakana(&kana),
            }
            WalkInPerson {
                name: PersonName::new(&name).map_err(|x| e(&x))?,
                kana: KanaReading::new(&kana).ok(),
                birth_date: Some(r.birth_date),
                sex: r.sex,
                address: None,
                care_needs: BTreeSet::new(),
            }
            .pipe(|w| (w, Some(r.person)))
        } else {
            // A stranger: a common family name, a random given name and birth date.
            let fam = kazashi_sim::names::FAMILY
                .get(rng.random_range(0..kazashi_sim::names::FAMILY.len()))
                .ok_or("no names")?;
            let given = kazashi_sim::names::FEMALE
                .get(rng.random_range(0..kazashi_sim::names::FEMALE.len()))
                .ok_or("no names")?;
            let born = CivilDate::from_days_since_epoch(rng.random_range(-20_000..18_000i64))
                .ok_or("date")?;
            WalkInPerson {
                name: PersonName::new(&format!("{} {}", fam.0, given.0)).map_err(|x| e(&x))?,
                kana: KanaReading::new(&format!("{} {}", fam.1, given.1)).ok(),
                birth_date: Some(born),
                sex: kazashi_domain::roster::Sex::Female,
                address: None,
                care_needs: BTreeSet::new(),
            }
            .pipe(|w| (w, None))
        };
        let content = EventContent {
            device: kazashi_domain::DeviceId([7; 32]),
            site,
            operator: kazashi_domain::OperatorId::new("fuzzy").map_err(|x| e(&x))?,
            at: Timestamp::new(START_MS + u64::from(i) * 60_000, 0),
            body: EventBody::WalkInRegistration {
                members: vec![person.0],
                home_municipality: None,
            },
        };
        truth.push((content.clone(), person.1));
        events.push(Event::new(content).map_err(|x| e(&x))?);
    }
    let state = State::from_events(events.clone());
    let ctx = Context {
        deployment,
        roster,
        matcher,
    };
    let det = Detector::full(&ctx, &state);
    let (mut tp, mut fp, mut planted) = (0usize, 0usize, 0usize);
    for (ev, (_, who)) in events.iter().zip(&truth) {
        let me = PersonRef::WalkIn {
            registration: ev.id(),
            index: 0,
        };
        if who.is_some() {
            planted += 1;
        }
        for a in det.alerts().iter().filter(|a| a.subjects.contains(&me)) {
            let roster_hits: Vec<&PersonRef> = a
                .subjects
                .iter()
                .filter(|s| matches!(s, PersonRef::Roster(_)))
                .collect();
            if roster_hits.is_empty() {
                continue; // walk-in against walk-in: not scored here
            }
            match who {
                Some(id) if roster_hits.contains(&&PersonRef::Roster(*id)) => tp += 1,
                _ => fp += 1,
            }
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / planted.max(1) as f64;
    Ok((precision, recall))
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}
