//! Stations (node) over the pure model (domain) and the synthetic city (sim): several devices
//! with wrong clocks write and merge, and end with the same state.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use kazashi_domain::event::{CheckOutReason, EventBody, IdMethod, Members};
use kazashi_domain::ids::{DeviceId, OperatorId, PersonRef, SiteId};
use kazashi_domain::state::{Departure, StayStatus};
use kazashi_domain::text::Note;
use kazashi_domain::{CivilDate, Event, Timestamp};
use kazashi_node::{ManualClock, SkewedClock, Station, StationError};
use kazashi_sim::population::{PopulationSpec, generate, shelter_operation};
use kazashi_sim::workload::START_MS;
use std::sync::Arc;

type Skewed = SkewedClock<ManualClock>;

fn setup() -> (Vec<Station<Skewed>>, ManualClock, kazashi_sim::Municipality) {
    let today = CivilDate::new(2026, 9, 1).unwrap();
    let m = generate(PopulationSpec {
        households: 50,
        seed: 11,
        today,
        voters: false,
    })
    .unwrap();
    let d = Arc::new(shelter_operation(&m, 3).unwrap());
    let roster = Arc::new(m.roster.clone());
    let clock = ManualClock::new(START_MS);
    // S001's laptop is an hour slow, S002's five minutes fast, HQ is right.
    let stations = [("S001", -3_600_000i64), ("S002", 300_000), ("HQ", 0)]
        .iter()
        .enumerate()
        .map(|(i, (site, skew))| {
            Station::new(
                d.clone(),
                roster.clone(),
                DeviceId([i as u8 + 1; 32]),
                SiteId::new(site).unwrap(),
                SkewedClock {
                    inner: clock.clone(),
                    skew_ms: *skew,
                },
            )
            .unwrap()
        })
        .collect();
    (stations, clock, m)
}

fn op() -> OperatorId {
    OperatorId::new("staff01").unwrap()
}

fn deliver(events: &[Event], to: &mut Station<Skewed>) {
    for e in events {
        to.ingest(e.clone()).unwrap();
    }
}

#[test]
fn a_move_between_shelters_orders_correctly_despite_a_slow_clock() {
    let (mut st, clock, m) = setup();
    let household = m.roster.household(&m.roster.entries()[0].household);
    let people: Vec<PersonRef> = household
        .iter()
        .map(|e| PersonRef::Roster(e.person))
        .collect();
    let members = || Members::new(people.clone()).unwrap();

    // 08:00 at S002 (fast clock): the household checks in.
    clock.advance(2 * 3_600_000);
    let a = st[1]
        .record(
            op(),
            EventBody::ShelterCheckIn {
                household: None,
                members: members(),
                method: IdMethod::CardTap,
            },
        )
        .unwrap();
    // 08:10 S001 (an hour slow) hears of it; the household then turns up at S001 and is
    // checked in there.
    clock.advance(600_000);
    deliver(std::slice::from_ref(&a), &mut st[0]);
    let b = st[0]
        .record(
            op(),
            EventBody::ShelterCheckIn {
                household: None,
                members: members(),
                method: IdMethod::Lookup,
            },
        )
        .unwrap();
    // S001's wall clock says 07:10, but its event must order after the one it had seen.
    assert!(b.at().wall_ms < a.at().wall_ms + 3_600_000);
    assert!(
        b.order_key() > a.order_key(),
        "the HLC orders the later check-in after the one it observed"
    );
    // S002 then records the household leaving for S001.
    deliver(std::slice::from_ref(&b), &mut st[1]);
    clock.advance(600_000);
    let c = st[1]
        .record(
            op(),
            EventBody::ShelterCheckOut {
                members: members(),
                reason: CheckOutReason::OtherShelter(Some(SiteId::new("S001").unwrap())),
            },
        )
        .unwrap();
    assert!(c.order_key() > b.order_key());

    // HQ receives everything in reverse order; every station gets everything.
    let all = [a, b, c];
    let mut rev = all.to_vec();
    rev.reverse();
    deliver(&rev, &mut st[2]);
    deliver(&all, &mut st[0]);
    deliver(&all, &mut st[1]);
    assert_eq!(st[0].state(), st[1].state());
    assert_eq!(st[1].state(), st[2].state());
    let stays = st[2].state().stays(&people[0], None);
    assert_eq!(
        stays[&SiteId::new("S001").unwrap()].status,
        StayStatus::Present
    );
    assert!(matches!(
        stays[&SiteId::new("S002").unwrap()].status,
        StayStatus::Left(Departure::CheckedOut(CheckOutReason::OtherShelter(_)))
    ));
}

#[test]
fn stations_refuse_what_they_cannot_stand_behind() {
    let (mut st, _clock, m) = setup();
    let ghost = kazashi_domain::EventId([9; 16]);
    let undo = EventBody::UndoCheckIn {
        target: ghost,
        reason: Note::new("取消").unwrap(),
    };
    assert_eq!(
        st[0].record(op(), undo),
        Err(StationError::UndoTargetMissing(ghost))
    );
    let walk_in = PersonRef::WalkIn {
        registration: ghost,
        index: 0,
    };
    let body = EventBody::ShelterCheckIn {
        household: None,
        members: Members::one(walk_in),
        method: IdMethod::Lookup,
    };
    assert_eq!(
        st[0].record(op(), body),
        Err(StationError::UnknownWalkIn(walk_in))
    );
    // The command center is not a shelter.
    let p = PersonRef::Roster(m.roster.entries()[0].person);
    let body = EventBody::ShelterCheckIn {
        household: None,
        members: Members::one(p),
        method: IdMethod::Lookup,
    };
    assert!(matches!(
        st[2].record(op(), body),
        Err(StationError::Invalid(_))
    ));
    // An undo of something that is not a check-in.
    let opened = st[0]
        .record(
            op(),
            EventBody::SiteLifecycle(kazashi_domain::event::SiteState::Opened),
        )
        .unwrap();
    let undo = EventBody::UndoCheckIn {
        target: opened.id(),
        reason: Note::new("取消").unwrap(),
    };
    assert!(matches!(
        st[0].record(op(), undo),
        Err(StationError::UndoTargetNotCheckIn(..))
    ));
    // A refused write leaves nothing behind.
    assert_eq!(st[0].state().len(), 1);
    // A roster that is not the pinned one is refused.
    let other = generate(PopulationSpec {
        households: 5,
        seed: 99,
        today: CivilDate::new(2026, 9, 1).unwrap(),
        voters: false,
    })
    .unwrap();
    let d = Arc::new(st[0].deployment().clone());
    let r = Station::new(
        d,
        Arc::new(other.roster),
        DeviceId([5; 32]),
        SiteId::new("S001").unwrap(),
        ManualClock::new(0),
    );
    assert!(matches!(r, Err(StationError::RosterMismatch)));
}

#[test]
fn a_peer_far_in_the_future_is_kept_but_does_not_drag_the_clock() {
    let (mut st, clock, m) = setup();
    let p = PersonRef::Roster(m.roster.entries()[0].person);
    // S002's laptop thinks it is next year.
    let future = Event::new(kazashi_domain::EventContent {
        device: st[1].device(),
        site: SiteId::new("S002").unwrap(),
        operator: op(),
        at: Timestamp::new(START_MS + 365 * 24 * 3_600_000, 0),
        body: EventBody::ShelterCheckIn {
            household: None,
            members: Members::one(p),
            method: IdMethod::CardTap,
        },
    })
    .unwrap();
    let r = st[2].ingest(future.clone()).unwrap();
    assert!(r.skew.is_some());
    assert!(st[2].state().contains(&future.id()));
    clock.advance(1000);
    let mine = st[2]
        .record(
            op(),
            EventBody::SiteLifecycle(kazashi_domain::event::SiteState::Opened),
        )
        .unwrap();
    assert!(
        mine.at().wall_ms < START_MS + 3_600_000,
        "HQ's clock stayed near real time"
    );
}

#[test]
fn a_second_check_in_is_blocked_and_an_override_is_reviewed() {
    use kazashi_domain::detector::{AlertKind, Context, Detector, MatchIndex};
    use kazashi_domain::event::{BlockReason, Override, VoteMode};
    use kazashi_sim::population::election;
    let today = CivilDate::new(2026, 10, 1).unwrap();
    let m = generate(PopulationSpec {
        households: 40,
        seed: 3,
        today,
        voters: true,
    })
    .unwrap();
    let day = CivilDate::new(2026, 10, 25).unwrap();
    let d = Arc::new(election(&m, day).unwrap());
    let roster = Arc::new(m.roster.clone());
    let voter_entry = m
        .roster
        .entries()
        .iter()
        .find(|e| {
            e.voter.as_ref().is_some_and(|v| {
                v.flags.eligible && !v.flags.early_voted && !v.flags.absentee_voted
            })
        })
        .unwrap();
    let info = voter_entry.voter.as_ref().unwrap();
    let home = SiteId::new(&format!("P{}", info.precinct)).unwrap();
    let clock = ManualClock::new(day.jst_midnight().unwrap() + 9 * 3_600_000);
    let station = |n: u8, site: SiteId| {
        Station::new(
            d.clone(),
            roster.clone(),
            DeviceId([n; 32]),
            site,
            clock.clone(),
        )
        .unwrap()
    };
    let mut a = station(1, home);
    let mut b = station(2, home);
    let body = |o: Option<Override>| EventBody::VoterCheckIn {
        voter: voter_entry.person,
        mode: VoteMode::ElectionDay,
        method: IdMethod::AdmissionTicket,
        override_: o.map(Box::new),
    };
    let first = a.record(op(), body(None)).unwrap();
    // A refused second tap at the same laptop.
    assert_eq!(
        a.record(op(), body(None)).unwrap_err(),
        StationError::Blocked(vec![BlockReason::AlreadyVoted])
    );
    // The other laptop has merged the first check-in: blocked there too.
    b.ingest(first.clone()).unwrap();
    clock.advance(60_000);
    assert!(matches!(
        b.record(op(), body(None)),
        Err(StationError::Blocked(_))
    ));
    // Two officers let it through (the override names the block).
    let o = Override {
        second_officer: OperatorId::new("chief").unwrap(),
        blocks: [BlockReason::AlreadyVoted].into(),
        reason: Note::new("入場券の確認済み").unwrap(),
        evidence: vec![first.id()],
    };
    let second = b.record(op(), body(Some(o))).unwrap();
    a.ingest(second).unwrap();
    let matcher = MatchIndex::new(&m.roster);
    let ctx = Context {
        deployment: &d,
        roster: &m.roster,
        matcher: &matcher,
    };
    for s in [a.state(), b.state()] {
        let det = Detector::full(&ctx, s);
        let kinds: Vec<AlertKind> = det.alerts().iter().map(|x| x.kind).collect();
        assert_eq!(kinds, [AlertKind::DoubleVote, AlertKind::OverrideReview]);
    }
}
