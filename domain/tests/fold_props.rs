//! Property tests of the fold: order, duplication and as-of queries.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::*;
use kazashi_domain::event::*;
use kazashi_domain::ids::*;
use kazashi_domain::roster::{CareNeed, Roster, Sex};
use kazashi_domain::state::*;
use kazashi_domain::text::{Label, Note, PersonName};
use kazashi_domain::time::{CivilDate, Millis};
use kazashi_domain::{Event, State};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const SITES: [&str; 3] = ["S1", "S2", "S3"];
const STATIONS: [&str; 2] = ["P1", "P2"];
const ROSTER_IDS: [&str; 6] = ["1", "2", "3", "4", "5", "6"];
const LEVELS: [Disclosure; 4] = [
    Disclosure::Nobody,
    Disclosure::Relatives,
    Disclosure::Acquaintances,
    Disclosure::Public,
];

/// One generated operation; indices pick persons, sites and earlier events.
#[derive(Debug, Clone)]
enum Op {
    CheckIn(usize, Vec<usize>),
    CheckOut(usize, Vec<usize>),
    Leave(usize, Vec<usize>, bool),
    Return(usize, Vec<usize>),
    Transfer(usize, usize, Vec<usize>),
    SupportOnly(usize, Vec<usize>),
    WalkIn(usize, usize),
    Card(usize, usize, bool),
    Vote(usize, usize, bool, bool),
    Undo(usize),
    Bind(u8, Option<usize>),
    Assert(usize, usize, bool),
    Retract(usize),
    Resolve(u8, u8),
    Report(usize, u32),
    Lifecycle(usize, bool),
    /// A manager closes the operation (at a site), announcing a retention period or none.
    CloseOperation(usize, Option<u8>),
    Tally(usize, u32),
    Lift(usize),
    Consent(usize, u8),
    /// An audit record: its number and a made-up `prev` (0: the chain start).
    Audit(u64, u8),
    /// A sealed note on a person: medical or protection, and a byte for its opaque bytes.
    SealedNote(usize, bool, u8),
    /// A relative reports a person safe (issue 26): who reported, by index.
    ReportedSafe(usize, u8),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let people = || proptest::collection::vec(0usize..64, 1..4);
    prop_oneof![
        4 => (0usize..3, people()).prop_map(|(s, m)| Op::CheckIn(s, m)),
        2 => (0usize..3, people()).prop_map(|(s, m)| Op::CheckOut(s, m)),
        1 => (0usize..3, people(), any::<bool>()).prop_map(|(s, m, o)| Op::Leave(s, m, o)),
        1 => (0usize..3, people()).prop_map(|(s, m)| Op::Return(s, m)),
        1 => (0usize..3, 0usize..3, people()).prop_map(|(a, b, m)| Op::Transfer(a, b, m)),
        1 => (0usize..3, people()).prop_map(|(s, m)| Op::SupportOnly(s, m)),
        1 => (0usize..3, 1usize..3).prop_map(|(s, n)| Op::WalkIn(s, n)),
        1 => (0usize..3, 0usize..64, any::<bool>()).prop_map(|(h, m, x)| Op::Card(h, m, x)),
        3 => (0usize..2, 0usize..6, any::<bool>(), any::<bool>()).prop_map(|(s, v, e, o)| Op::Vote(s, v, e, o)),
        2 => (0usize..1000).prop_map(Op::Undo),
        1 => (0u8..3, proptest::option::of(0usize..64)).prop_map(|(c, p)| Op::Bind(c, p)),
        1 => (0usize..64, 0usize..64, any::<bool>()).prop_map(|(a, b, s)| Op::Assert(a, b, s)),
        1 => (0usize..1000).prop_map(Op::Retract),
        1 => (0u8..3, 0u8..3).prop_map(|(a, o)| Op::Resolve(a, o)),
        1 => (0usize..3, 0u32..50).prop_map(|(s, n)| Op::Report(s, n)),
        1 => (0usize..3, any::<bool>()).prop_map(|(s, o)| Op::Lifecycle(s, o)),
        1 => (0usize..3, proptest::option::of(any::<u8>()))
            .prop_map(|(s, d)| Op::CloseOperation(s, d)),
        1 => (0usize..2, 0u32..500).prop_map(|(s, n)| Op::Tally(s, n)),
        1 => (0usize..3).prop_map(Op::Lift),
        1 => (0usize..64, 0u8..4).prop_map(|(m, d)| Op::Consent(m, d)),
        1 => (1u64..6, 0u8..3).prop_map(|(n, p)| Op::Audit(n, p)),
        1 => (0usize..64, any::<bool>(), any::<u8>()).prop_map(|(m, k, b)| Op::SealedNote(m, k, b)),
        1 => (0usize..64, 0u8..2).prop_map(|(m, b)| Op::ReportedSafe(m, b)),
    ]
}

/// Ops with a time each: (wall offset in seconds, counter, device).
fn script() -> impl Strategy<Value = Vec<(Op, u64, u32, u8)>> {
    proptest::collection::vec((op_strategy(), 0u64..40, 0u32..3, 1u8..4), 1..60)
}

fn walkin(n: usize) -> WalkInPerson {
    WalkInPerson {
        name: PersonName::new(&format!("来所者{n}")).unwrap(),
        kana: None,
        birth_date: Some(CivilDate::new(1990 + n as i32, 1, 1).unwrap()),
        sex: if n.is_multiple_of(2) {
            Sex::Female
        } else {
            Sex::Male
        },
        address: None,
        care_needs: if n.is_multiple_of(2) {
            [CareNeed::Medication].into()
        } else {
            BTreeSet::new()
        },
    }
}

/// Turn a script into valid events. Ops whose references cannot be resolved are skipped.
fn build(script: &[(Op, u64, u32, u8)]) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    let mut pool: Vec<PersonRef> = ROSTER_IDS.iter().map(|s| p(s)).collect();
    for (op, secs, counter, d) in script {
        let wall = T0 + secs * 1000;
        let pick = |ix: &[usize], pool: &[PersonRef]| -> Members {
            let mut v: Vec<PersonRef> = ix.iter().map(|i| pool[i % pool.len()]).collect();
            v.sort();
            v.dedup();
            Members::new(v).unwrap()
        };
        let (site_id, body): (&str, EventBody) = match op {
            Op::CheckIn(s, m) => (
                SITES[*s],
                EventBody::ShelterCheckIn {
                    household: None,
                    members: pick(m, &pool),
                    method: IdMethod::Lookup,
                },
            ),
            Op::CheckOut(s, m) => (
                SITES[*s],
                EventBody::ShelterCheckOut {
                    members: pick(m, &pool),
                    reason: CheckOutReason::Relatives,
                },
            ),
            Op::Leave(s, m, o) => (
                SITES[*s],
                EventBody::TemporaryLeave {
                    members: pick(m, &pool),
                    kind: if *o {
                        LeaveKind::Overnight
                    } else {
                        LeaveKind::Outing
                    },
                    expected_return: None,
                },
            ),
            Op::Return(s, m) => (
                SITES[*s],
                EventBody::ReturnFromLeave {
                    members: pick(m, &pool),
                },
            ),
            Op::Transfer(a, b, m) => {
                if a == b {
                    continue;
                }
                (
                    SITES[*a],
                    EventBody::Transfer {
                        members: pick(m, &pool),
                        to: site(SITES[*b]),
                    },
                )
            }
            Op::SupportOnly(s, m) => (
                SITES[*s],
                EventBody::SupportOnlyRegistration {
                    household: None,
                    members: pick(m, &pool),
                    staying: StayingPlace::Car,
                },
            ),
            Op::WalkIn(s, n) => (
                SITES[*s],
                EventBody::WalkInRegistration {
                    members: (0..*n).map(walkin).collect(),
                    home_municipality: Some(Label::new("長岡市").unwrap()),
                },
            ),
            Op::Card(h, m, dv) => {
                let person = pool[m % pool.len()];
                let household =
                    HouseholdRef::Roster(HouseholdId::new(["H1", "H2", "H3"][*h]).unwrap());
                let card = HouseholdCard {
                    representative: Some(person),
                    phone: None,
                    damage: Some(HousingDamage::Half),
                    flooding: None,
                    staying: StayingPlace::InShelter,
                    car: None,
                    pets: None,
                    disclosure: Disclosure::Relatives,
                    dv_block: *dv,
                    members: vec![MemberCard {
                        person,
                        care_needs: [CareNeed::HearingImpairment].into(),
                        allergies: None,
                        medication: None,
                        disclosure: None,
                        medical_note: None,
                    }],
                    notes: None,
                };
                (
                    SITES[0],
                    EventBody::HouseholdCard {
                        household,
                        card: Box::new(card),
                    },
                )
            }
            Op::Vote(s, v, early, ov) => {
                let mode = if *early {
                    VoteMode::Early(EarlyVotingReason::Duties)
                } else {
                    VoteMode::ElectionDay
                };
                let override_ = ov.then(|| {
                    Box::new(Override {
                        second_officer: common::op("chief"),
                        blocks: [BlockReason::AlreadyVoted].into(),
                        reason: Note::new("確認済").unwrap(),
                        evidence: vec![],
                    })
                });
                (
                    STATIONS[*s],
                    EventBody::VoterCheckIn {
                        voter: pid(ROSTER_IDS[*v]),
                        mode,
                        method: IdMethod::CardTap,
                        override_,
                    },
                )
            }
            Op::Undo(i) => {
                if out.is_empty() {
                    continue;
                }
                let target = &out[i % out.len()];
                (
                    SITES[0],
                    EventBody::UndoCheckIn {
                        target: target.id(),
                        reason: Note::new("誤り").unwrap(),
                    },
                )
            }
            Op::Bind(c, person) => (
                SITES[1],
                EventBody::CardBinding {
                    card: CardKey([*c; 32]),
                    person: person.map(|i| pool[i % pool.len()]),
                },
            ),
            Op::Assert(a, b, same) => {
                let (a, b) = (pool[a % pool.len()], pool[b % pool.len()]);
                if a == b {
                    continue;
                }
                let body = if *same {
                    EventBody::SameAs { a, b, note: None }
                } else {
                    EventBody::NotSame { a, b, note: None }
                };
                ("HQ", body)
            }
            Op::Retract(i) => {
                if out.is_empty() {
                    continue;
                }
                (
                    "HQ",
                    EventBody::RetractAssertion {
                        target: out[i % out.len()].id(),
                        reason: Note::new("取消").unwrap(),
                    },
                )
            }
            Op::Resolve(a, o) => (
                "HQ",
                EventBody::AlertResolution {
                    alert: AlertId([*a; 32]),
                    outcome: [
                        AlertOutcome::Confirmed,
                        AlertOutcome::Dismissed,
                        AlertOutcome::Reopened,
                    ][usize::from(*o)],
                    note: None,
                },
            ),
            Op::Report(s, n) => {
                let counts = ReportCounts {
                    persons: *n,
                    households: n / 2,
                    male: n / 2,
                    female: n / 2,
                    sex_unspecified: 0,
                    by_age: BTreeMap::new(),
                    care_needs: BTreeMap::new(),
                    supported_outside: 0,
                };
                let lifelines = Lifelines {
                    power: LifelineStatus::Available,
                    water: LifelineStatus::Out,
                    gas: LifelineStatus::Unknown,
                    comms: LifelineStatus::Limited,
                    toilets: LifelineStatus::Available,
                };
                let r = StatusReport {
                    kind: ReportKind::Periodic(1),
                    opened_at: None,
                    counts,
                    building: BuildingSafety::Safe,
                    lifelines,
                    shortages: vec![],
                    issues: None,
                };
                (SITES[*s], EventBody::ShelterStatusReport(Box::new(r)))
            }
            Op::Lifecycle(s, open) => (
                SITES[*s],
                EventBody::SiteLifecycle(if *open {
                    SiteState::Opened
                } else {
                    SiteState::Closed
                }),
            ),
            Op::CloseOperation(s, days) => (
                SITES[*s],
                EventBody::OperationClosed {
                    retention_days: days.map(u32::from),
                },
            ),
            Op::Tally(s, n) => (
                STATIONS[*s],
                EventBody::BallotTally {
                    period_end: wall,
                    ballots_issued: *n,
                },
            ),
            Op::Lift(h) => (
                "HQ",
                EventBody::DvBlockLift {
                    household: HouseholdRef::Roster(
                        HouseholdId::new(["H1", "H2", "H3"][*h]).unwrap(),
                    ),
                    reason: Note::new("支援措置終了").unwrap(),
                },
            ),
            Op::Consent(m, d) => (
                SITES[0],
                EventBody::Consent {
                    person: pool[m % pool.len()],
                    disclosure: LEVELS[usize::from(*d)],
                },
            ),
            Op::Audit(n, p) => (
                SITES[0],
                EventBody::Audit(Box::new(kazashi_domain::audit::AuditRecord {
                    seq: *n,
                    prev: [*p; 32],
                    action: kazashi_domain::audit::AuditAction::MedicalNoteView,
                    persons: vec![pool[usize::from(*p) % pool.len()]],
                })),
            ),
            Op::SealedNote(m, medical, b) => (
                SITES[0],
                EventBody::SealedNote {
                    person: pool[m % pool.len()],
                    kind: if *medical {
                        kazashi_domain::sealed_note::NoteKind::Medical
                    } else {
                        kazashi_domain::sealed_note::NoteKind::Protection
                    },
                    sealed: kazashi_domain::sealed_note::SealedBytes::new(vec![*b; 24]).unwrap(),
                },
            ),
            Op::ReportedSafe(m, by) => (
                "HQ",
                EventBody::ReportedSafe {
                    person: pool[m % pool.len()],
                    by: Label::new(["長男", "妹"][usize::from(*by)]).unwrap(),
                    note: None,
                },
            ),
        };
        let e = ev(*d, site_id, wall, *counter, body);
        if let EventBody::WalkInRegistration { members, .. } = e.body() {
            for i in 0..members.len() {
                pool.push(PersonRef::WalkIn {
                    registration: e.id(),
                    index: i as u16,
                });
            }
        }
        out.push(e);
    }
    out
}

/// Every query's answer, for comparing two states.
#[derive(Debug, PartialEq)]
struct View {
    stays: Vec<(PersonRef, Stays)>,
    at_site: Vec<Vec<(PersonRef, Stay)>>,
    counts: Vec<SiteCounts>,
    votes: Vec<Vec<VoteRecord>>,
    tallies: BTreeMap<SiteId, VoteTally>,
    ballots: Vec<Vec<(Millis, u32)>>,
    bindings: Vec<Option<PersonRef>>,
    assertions: Vec<Assertion>,
    outcomes: Vec<Option<AlertOutcome>>,
    cards: Vec<Option<HouseholdCard>>,
    reports: Vec<Option<(kazashi_domain::Timestamp, StatusReport)>>,
    site_states: Vec<Option<(SiteState, kazashi_domain::Timestamp)>>,
    walk_ins: Vec<(PersonRef, WalkInPerson)>,
    last_per_site: BTreeMap<SiteId, kazashi_domain::Timestamp>,
    consent: Vec<Disclosure>,
    /// The first close of the operation (the retention clock's start).
    operation_closed: Option<(kazashi_domain::Timestamp, Option<u32>)>,
    /// Every device's audit chain over the records written up to `as_of`.
    audit: Vec<kazashi_domain::audit_chain::DeviceChain>,
    /// The persons with a standing report of safety, and the 安否未確認 list's size (households,
    /// persons; named and withheld together: the DV block is judged on the whole log, not as
    /// of T, so which households are named may differ from a prefix's fold by design).
    safe: Vec<bool>,
    unconfirmed: (usize, usize),
}

fn view(s: &State, roster: &Roster, persons: &[PersonRef], as_of: Option<Millis>) -> View {
    let on = CivilDate::new(2026, 9, 21).unwrap();
    View {
        stays: persons.iter().map(|p| (*p, s.stays(p, as_of))).collect(),
        at_site: SITES.iter().map(|x| s.stays_at(&site(x), as_of)).collect(),
        counts: SITES
            .iter()
            .map(|x| s.site_counts(&site(x), roster, on, as_of))
            .collect(),
        votes: ROSTER_IDS
            .iter()
            .map(|v| s.votes_of(&pid(v), as_of))
            .collect(),
        tallies: s.vote_tallies(as_of),
        ballots: STATIONS
            .iter()
            .map(|x| s.ballot_tallies(&site(x), as_of))
            .collect(),
        bindings: (0u8..3)
            .map(|c| s.card_binding(&CardKey([c; 32]), as_of))
            .collect(),
        assertions: s.assertions(as_of),
        outcomes: (0u8..3)
            .map(|a| s.alert_outcome(&AlertId([a; 32]), as_of))
            .collect(),
        cards: ["H1", "H2", "H3"]
            .iter()
            .map(|h| {
                s.household_card(&HouseholdRef::Roster(HouseholdId::new(h).unwrap()), as_of)
                    .cloned()
            })
            .collect(),
        reports: SITES
            .iter()
            .map(|x| {
                s.latest_status_report(&site(x), as_of)
                    .map(|(t, r)| (t, r.clone()))
            })
            .collect(),
        site_states: SITES
            .iter()
            .map(|x| s.site_state(&site(x), as_of))
            .collect(),
        walk_ins: s
            .walk_ins(as_of)
            .into_iter()
            .map(|(p, w)| (p, w.clone()))
            .collect(),
        last_per_site: s.last_event_per_site(as_of),
        consent: persons
            .iter()
            .map(|p| s.consent_level(p, roster, as_of))
            .collect(),
        operation_closed: s.operation_closed(as_of),
        safe: persons.iter().map(|p| s.reported_safe(p, as_of)).collect(),
        unconfirmed: {
            let l = kazashi_domain::unconfirmed::unconfirmed(s, roster, as_of, None);
            (
                l.households.len() + l.withheld_households as usize,
                l.missing_count() + l.withheld_persons as usize,
            )
        },
        audit: kazashi_domain::audit_chain::verify_chains(
            s.events_unordered()
                .filter(|e| as_of.is_none_or(|t| e.at().wall_ms <= t)),
        ),
    }
}

fn all_persons(events: &[Event]) -> Vec<PersonRef> {
    let mut v: BTreeSet<PersonRef> = ROSTER_IDS.iter().map(|s| p(s)).collect();
    for e in events {
        if let EventBody::WalkInRegistration { members, .. } = e.body() {
            for i in 0..members.len() {
                v.insert(PersonRef::WalkIn {
                    registration: e.id(),
                    index: i as u16,
                });
            }
        }
    }
    v.into_iter().collect()
}

/// A deliberately naive fold, written independently of `State`: sort everything, collect the
/// undone check-ins, then run each person's stay machine from scratch.
fn reference_stays(events: &[Event], person: &PersonRef, as_of: Option<Millis>) -> Stays {
    let mut evs: Vec<&Event> = events
        .iter()
        .filter(|e| as_of.is_none_or(|t| e.at().wall_ms <= t))
        .collect();
    evs.sort_by_key(|e| e.order_key());
    evs.dedup_by_key(|e| e.id());
    let undone: BTreeSet<EventId> = evs
        .iter()
        .filter_map(|e| match e.body() {
            EventBody::UndoCheckIn { target, .. } => Some(*target),
            _ => None,
        })
        .collect();
    let mut stays = Stays::new();
    for e in evs {
        let Some(m) = e.body().stay_members() else {
            continue;
        };
        if !m.as_slice().contains(person) {
            continue;
        }
        let cur = stays.get(&e.site()).copied();
        let new = |status, checked_in| Stay {
            status,
            since: e.at(),
            event: e.id(),
            checked_in,
        };
        let ci = cur.and_then(|s| s.checked_in);
        match (e.body(), cur.map(|s| s.status)) {
            (EventBody::ShelterCheckIn { .. }, Some(StayStatus::Present)) => {}
            (EventBody::ShelterCheckIn { .. }, Some(StayStatus::OnLeave(_)))
                if !undone.contains(&e.id()) =>
            {
                stays.insert(e.site(), new(StayStatus::Present, ci));
            }
            (EventBody::ShelterCheckIn { .. }, _) if !undone.contains(&e.id()) => {
                stays.insert(e.site(), new(StayStatus::Present, Some(e.at())));
            }
            (
                EventBody::ShelterCheckOut { reason, .. },
                Some(StayStatus::Present | StayStatus::OnLeave(_)),
            ) => {
                stays.insert(
                    e.site(),
                    new(StayStatus::Left(Departure::CheckedOut(*reason)), ci),
                );
            }
            (EventBody::TemporaryLeave { kind, .. }, Some(StayStatus::Present)) => {
                stays.insert(e.site(), new(StayStatus::OnLeave(*kind), ci));
            }
            (EventBody::ReturnFromLeave { .. }, Some(StayStatus::OnLeave(_))) => {
                stays.insert(e.site(), new(StayStatus::Present, ci));
            }
            (
                EventBody::Transfer { to, .. },
                Some(StayStatus::Present | StayStatus::OnLeave(_)),
            ) => {
                stays.insert(
                    e.site(),
                    new(StayStatus::Left(Departure::TransferredTo(*to)), ci),
                );
                let dest = stays.get(to).map(|s| s.status);
                if !matches!(dest, Some(StayStatus::Present | StayStatus::OnLeave(_))) {
                    stays.insert(*to, new(StayStatus::Expected { from: e.site() }, None));
                }
            }
            (EventBody::SupportOnlyRegistration { staying, .. }, _) => {
                stays.insert(e.site(), new(StayStatus::SupportOnly(*staying), None));
            }
            _ => {}
        }
    }
    stays
}

/// Shuffle deterministically from `seed` (xorshift, Fisher–Yates).
fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut x = seed | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

/// Insert in the given order, one by one.
fn insert_all(events: &[Event]) -> State {
    let mut s = State::new();
    for e in events {
        s.insert(e.clone());
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any permutation and any duplication of the same event set folds to identical state.
    #[test]
    fn order_and_duplicates_do_not_matter(
        script in script(),
        seed_perm in any::<proptest::sample::Index>(),
        dups in proptest::collection::vec(any::<proptest::sample::Index>(), 0..20),
        shuffle_seed in any::<u64>(),
    ) {
        let events = build(&script);
        prop_assume!(!events.is_empty());
        let batch = State::from_events(events.clone());

        // Duplicate some events and shuffle deterministically from the seed.
        let mut messy = events.clone();
        for d in &dups { messy.push(events[d.index(events.len())].clone()); }
        shuffle(&mut messy, shuffle_seed);
        let rot = seed_perm.index(messy.len());
        messy.rotate_left(rot);
        let incremental = insert_all(&messy);
        let reversed = { let mut r = events.clone(); r.reverse(); insert_all(&r) };

        prop_assert_eq!(&incremental, &batch);
        prop_assert_eq!(&reversed, &batch);
        let distinct: BTreeSet<EventId> = events.iter().map(Event::id).collect();
        prop_assert_eq!(incremental.len(), distinct.len());

        let roster = small_roster();
        let persons = all_persons(&events);
        prop_assert_eq!(view(&incremental, &roster, &persons, None), view(&batch, &roster, &persons, None));
        // The DV block is read from the whole log: the same whatever the arrival order.
        for p in &persons {
            prop_assert_eq!(incremental.dv_withheld(p, &roster), batch.dv_withheld(p, &roster));
            prop_assert_eq!(reversed.dv_withheld(p, &roster), batch.dv_withheld(p, &roster));
        }
    }

    /// As-of-T answers from the full state agree with folding only the events up to T.
    #[test]
    fn as_of_agrees_with_prefix(script in script(), cut in 0u64..42) {
        let events = build(&script);
        let t = T0 + cut * 1000;
        let full = insert_all(&events);
        let prefix_events: Vec<Event> = events.iter().filter(|e| e.at().wall_ms <= t).cloned().collect();
        let prefix = State::from_events(prefix_events);
        let roster = small_roster();
        let persons = all_persons(&events);
        prop_assert_eq!(view(&full, &roster, &persons, Some(t)), view(&prefix, &roster, &persons, None));
    }

    /// The command center's one-pass counts equal each site's own counts and the distinct
    /// count, now and as of any T, whatever the arrival order.
    #[test]
    fn one_pass_counts_agree_with_per_site_counts(script in script(), shuffle_seed in any::<u64>(), cut in proptest::option::of(0u64..42)) {
        let mut events = build(&script);
        shuffle(&mut events, shuffle_seed);
        let as_of = cut.map(|c| T0 + c * 1000);
        let state = insert_all(&events);
        let roster = small_roster();
        let on = CivilDate::new(2026, 9, 21).unwrap();
        let all = state.all_site_counts(&roster, on, as_of, &state.clusters(as_of));
        prop_assert_eq!(all.distinct_registered, state.distinct_registered(as_of));
        for x in SITES {
            let one = state.site_counts(&site(x), &roster, on, as_of);
            let got = all.by_site.get(&site(x)).cloned().unwrap_or_default();
            prop_assert_eq!(got, one, "site {}", x);
        }
    }

    /// Undo and override semantics hold under any order: the stays match a naive reference fold,
    /// a voter's standing check-ins are exactly those no undo targets, and overrides are kept.
    #[test]
    fn undo_and_override_semantics(script in script(), shuffle_seed in any::<u64>(), cut in proptest::option::of(0u64..42)) {
        let mut events = build(&script);
        shuffle(&mut events, shuffle_seed);
        let as_of = cut.map(|c| T0 + c * 1000);
        let state = insert_all(&events);
        for person in all_persons(&events) {
            prop_assert_eq!(state.stays(&person, as_of), reference_stays(&events, &person, as_of), "person {}", person);
        }
        let visible = |e: &&Event| as_of.is_none_or(|t| e.at().wall_ms <= t);
        let undone: BTreeSet<EventId> = events.iter().filter(visible).filter_map(|e| match e.body() {
            EventBody::UndoCheckIn { target, .. } => Some(*target),
            _ => None,
        }).collect();
        for v in ROSTER_IDS {
            let mut expected: Vec<(EventId, bool)> = events.iter().filter(visible).filter_map(|e| match e.body() {
                EventBody::VoterCheckIn { voter, override_, .. } if *voter == pid(v) && !undone.contains(&e.id()) => Some((e.id(), override_.is_some())),
                _ => None,
            }).collect();
            expected.sort();
            // Identical events share one id: the log is a set.
            expected.dedup();
            let mut got: Vec<(EventId, bool)> = state.standing_votes(&pid(v), as_of).iter().map(|r| (r.event, r.overridden)).collect();
            got.sort();
            prop_assert_eq!(got, expected);
        }
    }
}

/// Every site's counts with the sites whose counts are all zero left out (the index leaves
/// them out; `all_site_counts` keeps a site once anyone had a stay there).
fn nonzero(all: AllSiteCounts) -> (BTreeMap<SiteId, SiteCounts>, u32) {
    let by_site = all
        .by_site
        .into_iter()
        .filter(|(_, c)| *c != SiteCounts::default())
        .collect();
    (by_site, all.distinct_registered)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The checkpointed counts as of T equal `all_site_counts` as of T, for any T, any
    /// interval between checkpoints, any arrival order, and events that arrive after the
    /// checkpoints were made, with times before them (late events patch the checkpoints).
    #[test]
    fn checkpointed_counts_equal_the_full_fold(
        script in script(),
        shuffle_seed in any::<u64>(),
        every in 1usize..6,
        split in any::<proptest::sample::Index>(),
        cuts in proptest::collection::vec(0u64..42, 1..5),
    ) {
        let mut events = build(&script);
        prop_assume!(!events.is_empty());
        shuffle(&mut events, shuffle_seed);
        let roster = small_roster();
        let on = CivilDate::new(2026, 9, 21).unwrap();
        let mut index = CountsIndex::with_interval(on, every);
        let first = split.index(events.len() + 1);
        let mut state = State::new();
        for (i, part) in [&events[..first], &events[first..]].into_iter().enumerate() {
            for e in part {
                state.insert(e.clone());
            }
            for c in &cuts {
                let t = T0 + c * 1000;
                let clusters = state.clusters(Some(t));
                let want = nonzero(state.all_site_counts(&roster, on, Some(t), &clusters));
                let got = nonzero(index.all_site_counts(&state, &roster, t, &clusters));
                prop_assert_eq!(got, want, "part {} as of {}", i, t);
            }
        }
        // A state folded in another order is another arena: the index notices and starts again.
        let batch = State::from_events(events.clone());
        let t = T0 + cuts[0] * 1000;
        let clusters = batch.clusters(Some(t));
        prop_assert_eq!(
            nonzero(index.all_site_counts(&batch, &roster, t, &clusters)),
            nonzero(batch.all_site_counts(&roster, on, Some(t), &clusters))
        );
    }

    /// A state's shared events folded again (on another thread, as the command view does) give
    /// an equal state of the same version, whatever order the original took its events in; an
    /// index made over that fold serves the original, grown since, with the full fold's counts.
    #[test]
    fn shared_events_fold_to_the_same_state(
        script in script(),
        shuffle_seed in any::<u64>(),
        every in 1usize..6,
        split in any::<proptest::sample::Index>(),
        cuts in proptest::collection::vec(0u64..42, 1..5),
    ) {
        let mut events = build(&script);
        prop_assume!(!events.is_empty());
        shuffle(&mut events, shuffle_seed);
        let first = split.index(events.len() + 1);
        let mut state = insert_all(&events[..first]);
        let shared = state.share();
        prop_assert_eq!(shared.len(), state.len());
        let folded = std::thread::spawn(move || shared.fold()).join().unwrap();
        prop_assert_eq!(&folded, &state);
        prop_assert_eq!(folded.version(), state.version());
        let roster = small_roster();
        let persons = all_persons(&events);
        prop_assert_eq!(view(&folded, &roster, &persons, None), view(&state, &roster, &persons, None));
        let on = CivilDate::new(2026, 9, 21).unwrap();
        let mut index = CountsIndex::with_interval(on, every);
        index.fold_in(&folded, &roster);
        // The original is the state indexed: nothing to take in, nothing made again.
        prop_assert_eq!(index.pending(&state, &roster).map(|p| (p.events, p.patches)), Some((0, 0)));
        for e in &events[first..] {
            state.insert(e.clone());
        }
        for c in &cuts {
            let t = T0 + c * 1000;
            let clusters = state.clusters(Some(t));
            let want = nonzero(state.all_site_counts(&roster, on, Some(t), &clusters));
            let got = nonzero(index.all_site_counts(&state, &roster, t, &clusters));
            prop_assert_eq!(got, want, "as of {}", t);
        }
    }
}
