//! Property test of the 安否未確認 list (issue 26, requirement 3): over random check-ins,
//! undos, support-only registrations, "reported safe" events and their retractions, delivered
//! in any order and folded as of any time, a roster person is on the list iff some member of
//! their household was seen and nothing accounts for them — judged by a reference written here
//! from the raw events, independently of the fold — and a household with a resident under
//! 支援措置 is never named, only counted.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::*;
use kazashi_domain::event::*;
use kazashi_domain::ids::*;
use kazashi_domain::roster::{Roster, RosterKind, Sex};
use kazashi_domain::text::{Label, Note};
use kazashi_domain::time::{CivilDate, Millis};
use kazashi_domain::unconfirmed::{household_missing, unconfirmed};
use kazashi_domain::{Event, State};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// Nine residents in three households; resident 9 (household H3) is under 支援措置.
fn roster() -> Roster {
    let mut entries = vec![
        entry("1", "H1", "19500101", Sex::Male, &[]),
        entry("2", "H1", "19520505", Sex::Female, &[]),
        entry("3", "H1", "19800808", Sex::Female, &[]),
        entry("4", "H2", "20230101", Sex::Male, &[]),
        entry("5", "H2", "19700707", Sex::Unspecified, &[]),
        entry("6", "H2", "20100909", Sex::Female, &[]),
        entry("7", "H3", "19750303", Sex::Male, &[]),
        entry("8", "H3", "19800404", Sex::Female, &[]),
        entry("9", "H3", "20050404", Sex::Female, &[]),
    ];
    entries[8].support_measure = true;
    Roster::new(
        RosterKind::Residents,
        entries,
        CivilDate::new(2026, 9, 1).unwrap(),
    )
    .unwrap()
}

fn person(i: usize) -> PersonRef {
    p(&(i % 9 + 1).to_string())
}

#[derive(Debug, Clone)]
enum Op {
    CheckIn(Vec<usize>),
    SupportOnly(Vec<usize>),
    /// Undo the n-th check-in so far.
    Undo(usize),
    Safe(usize),
    /// Retract the n-th report so far.
    Retract(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let people = || proptest::collection::vec(0usize..9, 1..3);
    prop_oneof![
        4 => people().prop_map(Op::CheckIn),
        1 => people().prop_map(Op::SupportOnly),
        2 => (0usize..8).prop_map(Op::Undo),
        3 => (0usize..9).prop_map(Op::Safe),
        2 => (0usize..8).prop_map(Op::Retract),
    ]
}

fn build(script: &[(Op, u64, u8)]) -> Vec<Event> {
    let mut out = Vec::new();
    let mut checkins: Vec<Event> = Vec::new();
    let mut reports: Vec<Event> = Vec::new();
    for (o, secs, d) in script {
        let wall = T0 + secs * 1000;
        let pick = |m: &[usize]| -> Vec<PersonRef> {
            let s: BTreeSet<PersonRef> = m.iter().map(|&i| person(i)).collect();
            s.into_iter().collect()
        };
        let e = match o {
            Op::CheckIn(m) => {
                let e = ev(*d, "S1", wall, 0, check_in(&pick(m)));
                checkins.push(e.clone());
                e
            }
            Op::SupportOnly(m) => ev(
                *d,
                "S2",
                wall,
                0,
                EventBody::SupportOnlyRegistration {
                    household: None,
                    members: members(&pick(m)),
                    staying: StayingPlace::AtHome,
                },
            ),
            Op::Undo(n) => {
                let Some(t) = checkins.get(n % checkins.len().max(1)) else {
                    continue;
                };
                // After its target, as a writer's causal floor makes it.
                ev(*d, "S1", t.at().wall_ms + 1000 + secs, 1, undo(t))
            }
            Op::Safe(i) => {
                let e = ev(
                    *d,
                    "HQ",
                    wall,
                    0,
                    EventBody::ReportedSafe {
                        person: person(*i),
                        by: Label::new("長男").unwrap(),
                        note: None,
                    },
                );
                reports.push(e.clone());
                e
            }
            Op::Retract(n) => {
                let Some(t) = reports.get(n % reports.len().max(1)) else {
                    continue;
                };
                ev(
                    *d,
                    "HQ",
                    t.at().wall_ms + 1000 + secs,
                    1,
                    EventBody::RetractAssertion {
                        target: t.id(),
                        reason: Note::new("誤報").unwrap(),
                    },
                )
            }
        };
        out.push(e);
    }
    out
}

/// The reference: household → missing members, and the withheld (count of households,
/// persons), from the raw events with wall time at most `t`.
fn reference(
    events: &[Event],
    roster: &Roster,
    t: Millis,
) -> (BTreeMap<HouseholdId, Vec<PersonId>>, (u32, u32)) {
    let upto: Vec<&Event> = events.iter().filter(|e| e.at().wall_ms <= t).collect();
    let undone: BTreeSet<EventId> = upto
        .iter()
        .filter_map(|e| match e.body() {
            EventBody::UndoCheckIn { target, .. } => Some(*target),
            _ => None,
        })
        .collect();
    let retracted: BTreeSet<EventId> = upto
        .iter()
        .filter_map(|e| match e.body() {
            EventBody::RetractAssertion { target, .. } => Some(*target),
            _ => None,
        })
        .collect();
    let mut seen: BTreeSet<PersonRef> = BTreeSet::new();
    let mut safe: BTreeSet<PersonRef> = BTreeSet::new();
    for e in &upto {
        match e.body() {
            EventBody::ShelterCheckIn { members, .. } if !undone.contains(&e.id()) => {
                seen.extend(members.as_slice().iter().copied())
            }
            EventBody::SupportOnlyRegistration { members, .. } => {
                seen.extend(members.as_slice().iter().copied())
            }
            EventBody::ReportedSafe { person, .. } if !retracted.contains(&e.id()) => {
                safe.insert(*person);
            }
            _ => {}
        }
    }
    let mut listed = BTreeMap::new();
    let mut withheld = (0, 0);
    for h in ["H1", "H2", "H3"] {
        let h = HouseholdId::new(h).unwrap();
        let ms = roster.household(&h);
        let refs: Vec<PersonRef> = ms.iter().map(|e| PersonRef::Roster(e.person)).collect();
        if !refs.iter().any(|r| seen.contains(r)) {
            continue;
        }
        let missing: Vec<PersonId> = ms
            .iter()
            .filter(|e| {
                let r = PersonRef::Roster(e.person);
                !seen.contains(&r) && !safe.contains(&r)
            })
            .map(|e| e.person)
            .collect();
        if missing.is_empty() {
            continue;
        }
        if ms.iter().any(|e| e.support_measure) {
            withheld.0 += 1;
            withheld.1 += missing.len() as u32;
        } else {
            listed.insert(h, missing);
        }
    }
    (listed, withheld)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn on_the_list_iff_nothing_accounts_for_them(
        script in proptest::collection::vec((op(), 0u64..40, 1u8..4), 1..30),
        cut in 0u64..120,
        seed in any::<u64>(),
    ) {
        let roster = roster();
        let events = build(&script);
        // Two delivery orders: a seeded shuffle inserted one by one, and the batch fold.
        let mut shuffled = events.clone();
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let mut one_by_one = State::new();
        for e in shuffled.iter().rev().chain(shuffled.iter()) {
            one_by_one.insert(e.clone());
        }
        let batch = State::from_events(events.clone());
        for as_of in [None, Some(T0 + cut * 1000)] {
            let t = as_of.unwrap_or(u64::MAX);
            let (want, withheld) = reference(&events, &roster, t);
            for state in [&one_by_one, &batch] {
                let got = unconfirmed(state, &roster, as_of, None);
                let got_map: BTreeMap<HouseholdId, Vec<PersonId>> = got
                    .households
                    .iter()
                    .map(|h| (h.household, h.missing.clone()))
                    .collect();
                prop_assert_eq!(&got_map, &want, "as_of {:?}", as_of);
                prop_assert_eq!((got.withheld_households, got.withheld_persons), withheld);
                // Nobody of the protected household is ever named.
                let h3 = HouseholdId::new("H3").unwrap();
                prop_assert!(got.households.iter().all(|h| h.household != h3));
                prop_assert_eq!(household_missing(state, &roster, &h3, as_of), None);
                for h in &got.households {
                    let one = household_missing(state, &roster, &h.household, as_of);
                    prop_assert_eq!(one.as_ref(), Some(&h.missing));
                }
            }
        }
    }
}

/// A worked case: two of three arrive, the third is listed; a relative's report takes them off;
/// its retraction puts them back; the report as of before it was written still lists them.
#[test]
fn a_report_takes_a_member_off_and_its_retraction_puts_them_back() {
    let roster = roster();
    let c = ev(1, "S1", T0, 0, check_in(&[p("1"), p("2")]));
    let mut s = State::from_events([c]);
    let l = unconfirmed(&s, &roster, None, None);
    assert_eq!(l.households.len(), 1);
    assert_eq!(l.households[0].missing, vec![pid("3")]);
    assert_eq!(l.households[0].sites, vec![site("S1")]);
    assert_eq!(l.households[0].accounted, 2);
    assert!(
        unconfirmed(&s, &roster, None, Some(site("S2")))
            .households
            .is_empty()
    );
    let r = ev(
        2,
        "HQ",
        T0 + 10_000,
        0,
        EventBody::ReportedSafe {
            person: p("3"),
            by: Label::new("長男").unwrap(),
            note: Some(Note::new("親戚宅にいると電話あり").unwrap()),
        },
    );
    s.insert(r.clone());
    assert!(unconfirmed(&s, &roster, None, None).households.is_empty());
    assert_eq!(
        unconfirmed(&s, &roster, Some(T0 + 5_000), None)
            .households
            .len(),
        1
    );
    s.insert(ev(
        2,
        "HQ",
        T0 + 20_000,
        0,
        EventBody::RetractAssertion {
            target: r.id(),
            reason: Note::new("別人だった").unwrap(),
        },
    ));
    assert_eq!(
        unconfirmed(&s, &roster, None, None).households[0].missing,
        vec![pid("3")]
    );
    // The protected household: one arrives, two missing, counted but never named.
    s.insert(ev(1, "S1", T0 + 30_000, 0, check_in(&[p("7")])));
    let l = unconfirmed(&s, &roster, None, None);
    assert_eq!((l.withheld_households, l.withheld_persons), (1, 2));
    assert_eq!(l.households.len(), 1);
}
