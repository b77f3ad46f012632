//! Builders shared by the domain's integration tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use kazashi_domain::event::*;
use kazashi_domain::ids::*;
use kazashi_domain::roster::*;
use kazashi_domain::text::*;
use kazashi_domain::time::CivilDate;
use kazashi_domain::{Event, Timestamp};
use std::collections::BTreeSet;

pub const T0: u64 = 1_790_000_000_000; // 2026-09-21 (JST), an arbitrary base time

pub fn site(s: &str) -> SiteId {
    SiteId::new(s).unwrap()
}
pub fn pid(s: &str) -> PersonId {
    PersonId::new(s).unwrap()
}
pub fn p(s: &str) -> PersonRef {
    PersonRef::Roster(pid(s))
}
pub fn dev(n: u8) -> DeviceId {
    DeviceId([n; 32])
}
pub fn op(s: &str) -> OperatorId {
    OperatorId::new(s).unwrap()
}
pub fn members(ps: &[PersonRef]) -> Members {
    Members::new(ps.to_vec()).unwrap()
}

/// An event at `site`, written by device `d` at HLC (`wall`, `counter`).
pub fn ev(d: u8, site_id: &str, wall: u64, counter: u32, body: EventBody) -> Event {
    Event::new(EventContent {
        device: dev(d),
        site: site(site_id),
        operator: op(&format!("op{d}")),
        at: Timestamp::new(wall, counter),
        body,
    })
    .unwrap()
}

pub fn check_in(ps: &[PersonRef]) -> EventBody {
    EventBody::ShelterCheckIn {
        household: None,
        members: members(ps),
        method: IdMethod::CardTap,
    }
}
pub fn check_out(ps: &[PersonRef]) -> EventBody {
    EventBody::ShelterCheckOut {
        members: members(ps),
        reason: CheckOutReason::Home,
    }
}
pub fn vote(voter: &str, mode: VoteMode) -> EventBody {
    EventBody::VoterCheckIn {
        voter: pid(voter),
        mode,
        method: IdMethod::AdmissionTicket,
        override_: None,
    }
}
pub fn undo(target: &Event) -> EventBody {
    EventBody::UndoCheckIn {
        target: target.id(),
        reason: Note::new("誤操作").unwrap(),
    }
}

pub fn entry(id: &str, household: &str, born: &str, sex: Sex, needs: &[CareNeed]) -> RosterEntry {
    RosterEntry {
        person: pid(id),
        household: HouseholdId::new(household).unwrap(),
        name: PersonName::new("三条 太郎").unwrap(),
        kana: KanaReading::new("さんじょう たろう").unwrap(),
        birth_date: CivilDate::parse(born).unwrap(),
        sex,
        address: Address::new("新潟県三条市旭町2丁目3-1").unwrap(),
        voter: Some(VoterInfo {
            list_number: ListNumber::new(&format!("L{id}")).unwrap(),
            precinct: PrecinctId::new(if id.len().is_multiple_of(2) {
                "02"
            } else {
                "01"
            })
            .unwrap(),
            flags: VoterFlags {
                eligible: true,
                absentee_voted: false,
                early_voted: false,
            },
        }),
        care_needs: needs.iter().copied().collect::<BTreeSet<_>>(),
        support_measure: false,
    }
}

/// Six residents in three households.
pub fn small_roster() -> Roster {
    use CareNeed::*;
    Roster::new(
        RosterKind::Voters,
        vec![
            entry("1", "H1", "19500101", Sex::Male, &[NursingCare]),
            entry("2", "H1", "19520505", Sex::Female, &[]),
            entry("3", "H2", "19880808", Sex::Female, &[Pregnant]),
            entry("4", "H2", "20230101", Sex::Male, &[]),
            entry("5", "H3", "19700707", Sex::Unspecified, &[]),
            entry("6", "H3", "20100909", Sex::Female, &[FoodAllergy]),
        ],
        CivilDate::new(2026, 9, 1).unwrap(),
    )
    .unwrap()
}

/// An event at `site`, written by device `d` (operator `op{d}`) at the given HLC timestamp.
pub fn ev_at(d: u8, site_id: &str, at: Timestamp, body: EventBody) -> Event {
    ev(d, site_id, at.wall_ms, at.counter, body)
}

/// The instant of `hour:minute` JST on `date`.
pub fn jst_at(date: CivilDate, hour: u64, minute: u64) -> u64 {
    date.jst_midnight().unwrap() + (hour * 60 + minute) * 60_000
}
