//! The detector: the same alerts on every node, whatever the order, duplication or arrival of
//! the events; incremental equals full; and the scenarios officials meet.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;
use kazashi_domain::detector::{AlertKind, Context, Detector, MatchIndex};
use kazashi_domain::event::{EarlyVotingReason, EventBody, VoteMode, WalkInPerson};
use kazashi_domain::ids::{ListNumber, PrecinctId};
use kazashi_domain::roster::{RosterEntry, RosterKind, Sex, VoterFlags, VoterInfo};
use kazashi_domain::text::{Address, KanaReading, Label, Note, PersonName};
use kazashi_domain::{
    CivilDate, Deployment, DeploymentKind, Event, HouseholdId, PersonRef, Roster, Site, SiteKind,
    State,
};
use proptest::prelude::*;
use std::collections::BTreeSet;

fn person(
    id: &str,
    hh: &str,
    name: &str,
    kana: &str,
    born: &str,
    sex: Sex,
    precinct: &str,
) -> RosterEntry {
    RosterEntry {
        person: pid(id),
        household: HouseholdId::new(hh).unwrap(),
        name: PersonName::new(name).unwrap(),
        kana: KanaReading::new(kana).unwrap(),
        birth_date: CivilDate::parse(born).unwrap(),
        sex,
        address: Address::new(&format!("見本県かざし市本町{id}-1")).unwrap(),
        voter: Some(VoterInfo {
            list_number: ListNumber::new(&format!("L{id}")).unwrap(),
            precinct: PrecinctId::new(precinct).unwrap(),
            flags: VoterFlags {
                eligible: id != "9",
                absentee_voted: false,
                early_voted: false,
            },
        }),
        care_needs: BTreeSet::new(),
        support_measure: false,
    }
}

fn roster() -> Roster {
    Roster::new(
        RosterKind::Voters,
        vec![
            person(
                "1",
                "H1",
                "高橋 花子",
                "たかはし はなこ",
                "19800401",
                Sex::Female,
                "01",
            ),
            person(
                "2",
                "H1",
                "高橋 一郎",
                "たかはし いちろう",
                "19780202",
                Sex::Male,
                "01",
            ),
            person(
                "3",
                "H2",
                "斎藤 健",
                "さいとう けん",
                "19600606",
                Sex::Male,
                "02",
            ),
            person(
                "4",
                "H3",
                "渡辺 美咲",
                "わたなべ みさき",
                "19900909",
                Sex::Female,
                "02",
            ),
            person(
                "5",
                "H4",
                "佐藤 美咲",
                "さとう みさき",
                "19850310",
                Sex::Female,
                "01",
            ),
            person(
                "9",
                "H5",
                "山田 太郎",
                "やまだ たろう",
                "19700101",
                Sex::Male,
                "01",
            ),
        ],
        CivilDate::new(2026, 10, 1).unwrap(),
    )
    .unwrap()
}

fn election_day() -> CivilDate {
    CivilDate::new(2026, 10, 25).unwrap()
}

fn deployment(r: &Roster) -> Deployment {
    let station = |id: &str, precincts: &[&str], early: bool| Site {
        id: site(id),
        name: Label::new(id).unwrap(),
        kind: SiteKind::PollingStation {
            precincts: precincts
                .iter()
                .map(|p| PrecinctId::new(p).unwrap())
                .collect(),
            early_voting: early,
            election_day: true,
        },
    };
    Deployment::new(
        kazashi_domain::DeploymentId([4; 16]),
        Label::new("市長選挙").unwrap(),
        DeploymentKind::Election {
            election_day: election_day(),
            early_voting_from: CivilDate::new(2026, 10, 13).unwrap(),
        },
        r.hash(),
        vec![station("P1", &["01"], true), station("P2", &["02"], false)],
    )
    .unwrap()
}

fn day_at(h: u64, m: u64) -> u64 {
    jst_at(election_day(), h, m)
}

fn early_at(d: u32, h: u64) -> u64 {
    jst_at(CivilDate::new(2026, 10, d).unwrap(), h, 0)
}

fn walk_in(name: &str, kana: Option<&str>, born: Option<&str>, sex: Sex) -> WalkInPerson {
    WalkInPerson {
        name: PersonName::new(name).unwrap(),
        kana: kana.map(|k| KanaReading::new(k).unwrap()),
        birth_date: born.map(|b| CivilDate::parse(b).unwrap()),
        sex,
        address: None,
        care_needs: BTreeSet::new(),
    }
}

fn register(d: u8, s: &str, at: u64, people: Vec<WalkInPerson>) -> Event {
    ev(
        d,
        s,
        at,
        0,
        EventBody::WalkInRegistration {
            members: people,
            home_municipality: None,
        },
    )
}

fn early(voter: &str) -> EventBody {
    vote(voter, VoteMode::Early(EarlyVotingReason::Duties))
}

fn day(voter: &str) -> EventBody {
    vote(voter, VoteMode::ElectionDay)
}

struct World {
    roster: Roster,
    deployment: Deployment,
    matcher: MatchIndex,
}

fn world() -> World {
    let roster = roster();
    let deployment = deployment(&roster);
    let matcher = MatchIndex::new(&roster);
    World {
        roster,
        deployment,
        matcher,
    }
}

impl World {
    fn ctx(&self) -> Context<'_> {
        Context {
            deployment: &self.deployment,
            roster: &self.roster,
            matcher: &self.matcher,
        }
    }

    /// The alerts of an event set, by the full run.
    fn full(&self, events: &[Event]) -> Vec<(AlertKind, Vec<PersonRef>)> {
        let state = State::from_events(events.to_vec());
        let d = Detector::full(&self.ctx(), &state);
        d.alerts()
            .iter()
            .map(|a| (a.kind, a.subjects.clone()))
            .collect()
    }
}

fn kinds(v: &[(AlertKind, Vec<PersonRef>)]) -> Vec<AlertKind> {
    v.iter().map(|(k, _)| *k).collect()
}

#[test]
fn an_offline_double_vote_shows_on_every_node_once_merged() {
    let w = world();
    // Two laptops, not connected, each take voter 1 on election day.
    let a = ev(1, "P1", day_at(9, 0), 0, day("1"));
    let b = ev(2, "P1", day_at(9, 30), 0, day("1"));
    assert!(w.full(std::slice::from_ref(&a)).is_empty());
    assert!(w.full(std::slice::from_ref(&b)).is_empty());
    // Merged: on either laptop, and on a third that got them the other way round.
    let merged = w.full(&[a.clone(), b.clone()]);
    assert_eq!(kinds(&merged), [AlertKind::DoubleVote]);
    assert_eq!(merged, w.full(&[b.clone(), a.clone(), b.clone()]));
    let s1 = State::from_events(vec![a.clone(), b.clone()]);
    let s2 = State::from_events(vec![b, a]);
    let id = |s: &State| Detector::full(&w.ctx(), s).alerts()[0].id;
    assert_eq!(id(&s1), id(&s2), "the alert id is the same on every node");
    // The evidence names both check-ins: when, on which laptop, by whom.
    let d = Detector::full(&w.ctx(), &s1);
    let ev = kazashi_domain::detector::evidence(&s1, d.alerts()[0]);
    let devices: BTreeSet<_> = ev.iter().map(|e| e.device).collect();
    assert_eq!(devices, [dev(1), dev(2)].into_iter().collect());
    assert!(
        ev.iter()
            .all(|e| e.what == "voter check-in" && e.site == site("P1"))
    );
    let mut times: Vec<u64> = ev.iter().map(|e| e.at.wall_ms).collect();
    times.sort_unstable();
    assert_eq!(times, [day_at(9, 0), day_at(9, 30)]);
}

#[test]
fn early_vote_then_election_day_is_a_double_vote() {
    let w = world();
    let e = ev(1, "P1", early_at(20, 10), 0, early("1"));
    let d = ev(2, "P1", day_at(8, 0), 0, day("1"));
    assert_eq!(kinds(&w.full(&[e, d])), [AlertKind::DoubleVote]);
}

#[test]
fn an_undone_check_in_then_a_new_one_raises_nothing() {
    let w = world();
    let wrong = ev(1, "P1", day_at(9, 0), 0, day("1"));
    let undo_it = ev(1, "P1", day_at(9, 1), 0, undo(&wrong));
    let again = ev(1, "P1", day_at(9, 2), 0, day("1"));
    assert!(
        w.full(&[wrong.clone(), undo_it.clone(), again.clone()])
            .is_empty()
    );
    // Without the undo, it is a double vote.
    assert_eq!(kinds(&w.full(&[wrong, again])), [AlertKind::DoubleVote]);
}

#[test]
fn precinct_eligibility_period_and_overrides_are_flagged() {
    let w = world();
    // Voter 3 belongs to 投票区 02 but votes at P1 on election day.
    assert_eq!(
        kinds(&w.full(&[ev(1, "P1", day_at(10, 0), 0, day("3"))])),
        [AlertKind::WrongPrecinct]
    );
    // Early votes are taken anywhere.
    assert!(
        w.full(&[ev(1, "P1", early_at(20, 10), 0, early("3"))])
            .is_empty()
    );
    // Voter 9 is not eligible.
    assert_eq!(
        kinds(&w.full(&[ev(1, "P1", day_at(10, 0), 0, day("9"))])),
        [AlertKind::NotEligible]
    );
    // An early vote before the period, an election-day vote the day before.
    assert_eq!(
        kinds(&w.full(&[ev(1, "P1", early_at(10, 10), 0, early("1"))])),
        [AlertKind::OutsideVotingPeriod]
    );
    assert_eq!(
        kinds(&w.full(&[ev(1, "P1", early_at(24, 10), 0, day("1"))])),
        [AlertKind::OutsideVotingPeriod]
    );
}

#[test]
fn variant_name_walk_ins_are_found_and_explained() {
    let w = world();
    let cases = [
        // 髙 for 高, same reading and birth date: likely.
        (
            "髙橋 花子",
            Some("たかはし はなこ"),
            Some("19800401"),
            Sex::Female,
            "1",
            AlertKind::LikelyDuplicate,
        ),
        // Katakana reading, 齋 for 斎.
        (
            "齋藤 健",
            Some("サイトウ ケン"),
            Some("19600606"),
            Sex::Male,
            "3",
            AlertKind::LikelyDuplicate,
        ),
        // 邉 for 辺, no reading given.
        (
            "渡邉 美咲",
            None,
            Some("19900909"),
            Sex::Female,
            "4",
            AlertKind::LikelyDuplicate,
        ),
        // Given and family name swapped.
        (
            "花子 高橋",
            Some("たかはし はなこ"),
            Some("19800401"),
            Sex::Female,
            "1",
            AlertKind::LikelyDuplicate,
        ),
        // 斉 is another character in JIS, but 斎藤 and 斉藤 are written for each other
        // (issue 26 folds the 齋/齊/斎/斉 family): likely.
        (
            "斉藤 健",
            Some("さいとう けん"),
            Some("19600606"),
            Sex::Male,
            "3",
            AlertKind::LikelyDuplicate,
        ),
        // Another family name, the same given name and birth date (a marriage): possible.
        (
            "田中 健",
            None,
            Some("19600606"),
            Sex::Male,
            "3",
            AlertKind::PossibleDuplicate,
        ),
        // The birth day one digit off: possible.
        (
            "齋藤 健",
            Some("サイトウ ケン"),
            Some("19600609"),
            Sex::Male,
            "3",
            AlertKind::PossibleDuplicate,
        ),
        // An ideographic variation sequence (葛 with U+E0100 style selectors) changes nothing.
        (
            "髙\u{e0100}橋 花子",
            Some("たかはし はなこ"),
            Some("19800401"),
            Sex::Female,
            "1",
            AlertKind::LikelyDuplicate,
        ),
        // The same name read another way: possible at most.
        (
            "斎藤 健",
            Some("さいとう たけし"),
            Some("19600606"),
            Sex::Male,
            "3",
            AlertKind::PossibleDuplicate,
        ),
    ];
    for (name, kana, born, sex, roster_id, kind) in cases {
        let r = register(1, "P1", day_at(9, 0), vec![walk_in(name, kana, born, sex)]);
        let state = State::from_events(vec![r]);
        let d = Detector::full(&w.ctx(), &state);
        let alerts = d.alerts();
        assert_eq!(alerts.len(), 1, "{name}: {alerts:?}");
        assert_eq!(alerts[0].kind, kind, "{name}");
        assert!(alerts[0].subjects.contains(&p(roster_id)), "{name}");
        let words: Vec<String> = alerts[0].reasons.iter().map(|r| r.explain_ja()).collect();
        assert!(!words.is_empty(), "{name}");
        if name.starts_with('髙') {
            assert!(words.iter().any(|x| x.contains("髙→高")), "{words:?}");
        }
    }
}

#[test]
fn different_people_with_a_common_name_are_not_merged() {
    let w = world();
    // Another 佐藤 美咲, born the same year but not the same day.
    let r = register(
        1,
        "P1",
        day_at(9, 0),
        vec![walk_in(
            "佐藤 美咲",
            Some("さとう みさき"),
            Some("19851122"),
            Sex::Female,
        )],
    );
    assert!(w.full(&[r]).is_empty());
    // Same name and reading, no birth date given: not enough for an alert on its own…
    let r = register(
        1,
        "P1",
        day_at(9, 0),
        vec![walk_in(
            "佐藤 美咲",
            Some("さとう みさき"),
            None,
            Sex::Female,
        )],
    );
    let a = w.full(&[r]);
    assert!(
        a.iter()
            .all(|(k, _)| *k == AlertKind::LikelyDuplicate || *k == AlertKind::PossibleDuplicate)
    );
}

#[test]
fn two_walk_ins_of_one_person_at_two_sites_and_a_not_same_assertion() {
    let w = world();
    let first = register(
        1,
        "P1",
        day_at(9, 0),
        vec![walk_in(
            "鈴木 次郎",
            Some("すずき じろう"),
            Some("19991212"),
            Sex::Male,
        )],
    );
    let second = register(
        2,
        "P2",
        day_at(11, 0),
        vec![walk_in(
            "鈴木 次郎",
            Some("スズキ ジロウ"),
            Some("19991212"),
            Sex::Male,
        )],
    );
    let a = w.full(&[first.clone(), second.clone()]);
    assert_eq!(kinds(&a), [AlertKind::LikelyDuplicate]);
    // The shelter lead checks: two different people. The alert goes.
    let wa = PersonRef::WalkIn {
        registration: first.id(),
        index: 0,
    };
    let wb = PersonRef::WalkIn {
        registration: second.id(),
        index: 0,
    };
    let not_same = ev(
        3,
        "P1",
        day_at(12, 0),
        0,
        EventBody::NotSame {
            a: wb,
            b: wa,
            note: Some(Note::new("別人").unwrap()),
        },
    );
    assert!(w.full(&[first, second, not_same]).is_empty());
}

#[test]
fn present_at_two_sites_and_a_split_household() {
    let w = world();
    let a = ev(1, "P1", day_at(9, 0), 0, check_in(&[p("1")]));
    let b = ev(2, "P2", day_at(9, 5), 0, check_in(&[p("1"), p("2")]));
    let k = kinds(&w.full(&[a.clone(), b.clone()]));
    assert!(k.contains(&AlertKind::PresentAtTwoSites), "{k:?}");
    // Check out of P1: only the household split (1 and 2 both at P2 now) — none.
    let out = ev(1, "P1", day_at(10, 0), 0, check_out(&[p("1")]));
    assert!(w.full(&[a.clone(), b.clone(), out]).is_empty());
    // 1 at P1, 2 at P2: the household is split.
    let c = ev(2, "P2", day_at(9, 5), 0, check_in(&[p("2")]));
    assert_eq!(kinds(&w.full(&[a, c])), [AlertKind::HouseholdSplit]);
}

#[test]
fn same_as_joins_records_into_one_person_counted_once_and_retraction_splits_them() {
    let w = world();
    // 高橋 花子 (roster 1) checks in at P2; later a walk-in 髙橋 花子 registers at P1.
    let roster_in = ev(2, "P2", day_at(9, 0), 0, check_in(&[p("1")]));
    let reg = register(
        1,
        "P1",
        day_at(10, 0),
        vec![walk_in("髙橋 花子", None, Some("19800401"), Sex::Female)],
    );
    let walker = PersonRef::WalkIn {
        registration: reg.id(),
        index: 0,
    };
    let walker_in = ev(1, "P1", day_at(10, 1), 0, check_in(&[walker]));
    let base = vec![roster_in, reg, walker_in];
    let state = State::from_events(base.clone());
    assert_eq!(state.distinct_registered(None), 2);
    assert_eq!(
        kinds(&w.full(&base)),
        [AlertKind::LikelyDuplicate],
        "before any assertion, the matcher raises the pair"
    );

    // The lead confirms: the same person. The pair is settled, she is one person registered
    // at two sites, and every count takes her once.
    let same = ev(
        3,
        "P1",
        day_at(11, 0),
        0,
        EventBody::SameAs {
            a: walker,
            b: p("1"),
            note: None,
        },
    );
    let mut with_same = base.clone();
    with_same.push(same.clone());
    let a = w.full(&with_same);
    assert_eq!(kinds(&a), [AlertKind::PresentAtTwoSites]);
    let mut both = vec![p("1"), walker];
    both.sort();
    assert_eq!(a[0].1, both);
    let state = State::from_events(with_same.clone());
    assert_eq!(state.distinct_registered(None), 1);
    assert_eq!(
        state.clusters(None).rep(&walker),
        state.clusters(None).rep(&p("1"))
    );

    // A not-same between the two while the same-as stands is a conflict to review.
    let not_same = ev(
        4,
        "P2",
        day_at(11, 30),
        0,
        EventBody::NotSame {
            a: p("1"),
            b: walker,
            note: None,
        },
    );
    let mut conflicted = with_same.clone();
    conflicted.push(not_same);
    let k = kinds(&w.full(&conflicted));
    assert!(k.contains(&AlertKind::AssertionConflict), "{k:?}");

    // Retracting the same-as splits them again: two persons, and the matcher's alert is back.
    let retract = ev(
        3,
        "P1",
        day_at(12, 0),
        0,
        EventBody::RetractAssertion {
            target: same.id(),
            reason: Note::new("確認の誤り").unwrap(),
        },
    );
    let mut retracted = with_same;
    retracted.push(retract);
    assert_eq!(
        State::from_events(retracted.clone()).distinct_registered(None),
        2
    );
    assert_eq!(kinds(&w.full(&retracted)), [AlertKind::LikelyDuplicate]);
}

#[test]
fn records_joined_at_one_site_count_once_there() {
    let roster = roster();
    let reg = register(
        1,
        "P1",
        day_at(10, 0),
        vec![walk_in("高橋 花子", None, Some("19800401"), Sex::Female)],
    );
    let walker = PersonRef::WalkIn {
        registration: reg.id(),
        index: 0,
    };
    let events = vec![
        ev(1, "P1", day_at(9, 0), 0, check_in(&[p("1"), p("2")])),
        reg,
        ev(1, "P1", day_at(10, 1), 0, check_in(&[walker])),
    ];
    let on = election_day();
    let before = State::from_events(events.clone()).site_counts(&site("P1"), &roster, on, None);
    assert_eq!(before.present, 3);
    let mut joined = events;
    joined.push(ev(
        2,
        "P1",
        day_at(11, 0),
        0,
        EventBody::SameAs {
            a: p("1"),
            b: walker,
            note: None,
        },
    ));
    let after = State::from_events(joined).site_counts(&site("P1"), &roster, on, None);
    assert_eq!(after.present, 2);
}

// ----- properties -----

#[derive(Debug, Clone)]
enum Op {
    Vote(usize, usize, bool),
    Undo(usize),
    CheckIn(usize, usize),
    CheckOut(usize, usize),
    WalkIn(usize, usize),
    NotSame(usize, usize),
    /// A same-as between two records (walk-ins, or a walk-in and a roster voter).
    SameAs(usize, usize),
    /// Retract the k-th assertion so far.
    Retract(usize),
    /// A walk-in checks in at a site.
    WalkInCheckIn(usize, usize),
}

const VOTERS: [&str; 5] = ["1", "2", "3", "4", "9"];
const SITES: [&str; 2] = ["P1", "P2"];
const NAMES: [(&str, &str, &str); 4] = [
    ("髙橋 花子", "たかはし はなこ", "19800401"),
    ("鈴木 次郎", "すずき じろう", "19991212"),
    ("鈴木 次郎", "スズキ ジロウ", "19991212"),
    ("斉藤 健", "さいとう けん", "19600606"),
];

fn ops() -> impl Strategy<Value = Vec<(Op, u64)>> {
    let op = prop_oneof![
        (0..5usize, 0..2usize, any::<bool>()).prop_map(|(v, s, e)| Op::Vote(v, s, e)),
        (0..40usize).prop_map(Op::Undo),
        (0..5usize, 0..2usize).prop_map(|(v, s)| Op::CheckIn(v, s)),
        (0..5usize, 0..2usize).prop_map(|(v, s)| Op::CheckOut(v, s)),
        (0..4usize, 0..2usize).prop_map(|(n, s)| Op::WalkIn(n, s)),
        (0..40usize, 0..40usize).prop_map(|(a, b)| Op::NotSame(a, b)),
        (0..40usize, 0..40usize).prop_map(|(a, b)| Op::SameAs(a, b)),
        (0..40usize).prop_map(Op::Retract),
        (0..40usize, 0..2usize).prop_map(|(k, s)| Op::WalkInCheckIn(k, s)),
    ];
    proptest::collection::vec((op, 0u64..600), 1..30)
}

fn build(script: &[(Op, u64)]) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    let mut walk_ins: Vec<PersonRef> = Vec::new();
    let mut assertions: Vec<Event> = Vec::new();
    for (i, (op, minute)) in script.iter().enumerate() {
        let at = day_at(7, 0) + minute * 60_000;
        let d = (i % 3) as u8 + 1;
        let e = match op {
            Op::Vote(v, s, early_) => {
                let body = if *early_ {
                    early(VOTERS[*v])
                } else {
                    day(VOTERS[*v])
                };
                let at = if *early_ {
                    early_at(20, 10) + minute * 60_000
                } else {
                    at
                };
                ev(d, SITES[*s], at, 0, body)
            }
            Op::Undo(k) => {
                let Some(t) = out.iter().filter(|e| e.body().is_check_in()).nth(*k) else {
                    continue;
                };
                ev(d, SITES[0], at.max(t.at().wall_ms + 1), 0, undo(t))
            }
            Op::CheckIn(v, s) => ev(d, SITES[*s], at, 0, check_in(&[p(VOTERS[*v])])),
            Op::CheckOut(v, s) => ev(d, SITES[*s], at, 0, check_out(&[p(VOTERS[*v])])),
            Op::WalkIn(n, s) => {
                let (name, kana, born) = NAMES[*n];
                let e = register(
                    d,
                    SITES[*s],
                    at,
                    vec![walk_in(
                        name,
                        Some(kana),
                        Some(born),
                        if *n == 0 { Sex::Female } else { Sex::Male },
                    )],
                );
                walk_ins.push(PersonRef::WalkIn {
                    registration: e.id(),
                    index: 0,
                });
                e
            }
            Op::SameAs(a, b) => {
                // Records: the walk-ins so far, then the roster voters.
                let records: Vec<PersonRef> = walk_ins
                    .iter()
                    .copied()
                    .chain(VOTERS.iter().map(|v| p(v)))
                    .collect();
                let (Some(a), Some(b)) = (
                    records.get(*a % records.len()),
                    records.get(*b % records.len()),
                ) else {
                    continue;
                };
                if a == b {
                    continue;
                }
                let e = ev(
                    d,
                    SITES[1],
                    at,
                    0,
                    EventBody::SameAs {
                        a: *a,
                        b: *b,
                        note: None,
                    },
                );
                assertions.push(e.clone());
                e
            }
            Op::Retract(k) => {
                let Some(t) = assertions.get(*k % assertions.len().max(1)) else {
                    continue;
                };
                let body = EventBody::RetractAssertion {
                    target: t.id(),
                    reason: Note::new("誤り").unwrap(),
                };
                ev(d, SITES[0], at.max(t.at().wall_ms + 1), 0, body)
            }
            Op::WalkInCheckIn(k, s) => {
                let Some(w) = walk_ins.get(*k % walk_ins.len().max(1)) else {
                    continue;
                };
                ev(d, SITES[*s], at, 0, check_in(&[*w]))
            }
            Op::NotSame(a, b) => {
                let (Some(a), Some(b)) = (
                    walk_ins.get(*a % walk_ins.len().max(1)),
                    walk_ins.get(*b % walk_ins.len().max(1)),
                ) else {
                    continue;
                };
                if a == b {
                    continue;
                }
                let e = ev(
                    d,
                    SITES[0],
                    at,
                    0,
                    EventBody::NotSame {
                        a: *a,
                        b: *b,
                        note: None,
                    },
                );
                assertions.push(e.clone());
                e
            }
        };
        out.push(e);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any order, any duplication: the same alerts (ids included). Incremental, event by event
    /// in that order, ends with the same alerts as the full run.
    #[test]
    fn alerts_depend_only_on_the_event_set(script in ops(), seed in any::<u64>(), dups in proptest::collection::vec(0usize..40, 0..8)) {
        let w = world();
        let events = build(&script);
        let mut shuffled = events.clone();
        for &k in &dups {
            if let Some(e) = events.get(k % events.len().max(1)) {
                shuffled.push(e.clone());
            }
        }
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let full_a = Detector::full(&w.ctx(), &State::from_events(events.clone()));
        let full_b = Detector::full(&w.ctx(), &State::from_events(shuffled.clone()));
        prop_assert_eq!(full_a.alerts(), full_b.alerts());

        let mut state = State::new();
        let mut inc = Detector::default();
        for e in &shuffled {
            if state.insert(e.clone()) == kazashi_domain::state::Inserted::New {
                inc.update(&w.ctx(), &state, e);
            }
        }
        prop_assert_eq!(inc.alerts(), full_a.alerts());
        prop_assert_eq!(inc.clusters(), full_a.clusters());
        prop_assert_eq!(&inc, &full_a);
    }
}
