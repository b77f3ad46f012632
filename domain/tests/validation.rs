//! Checks of events against a deployment and a roster (`validate::check_event`), and the
//! robustness of `Event::decode` against bytes from a peer, a file or a store.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::*;
use kazashi_domain::deployment::DeploymentError;
use kazashi_domain::event::*;
use kazashi_domain::ids::{
    AlertId, CardKey, DeploymentId, EventId, HouseholdId, HouseholdRef, PersonRef, PrecinctId,
};
use kazashi_domain::roster::{CareNeed, Roster, RosterKind, Sex};
use kazashi_domain::text::{Label, Note, PersonName, Phone};
use kazashi_domain::time::CivilDate;
use kazashi_domain::validate::{check_event, check_event_shape};
use kazashi_domain::{Deployment, DeploymentKind, Event, ShelterType, Site, SiteKind, Timestamp};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

// ----- fixtures -----

fn label(s: &str) -> Label {
    Label::new(s).unwrap()
}

fn note(s: &str) -> Note {
    Note::new(s).unwrap()
}

fn shelter(id: &str, name: &str, shelter_type: ShelterType, capacity: u32) -> Site {
    Site {
        id: site(id),
        name: label(name),
        kind: SiteKind::Shelter {
            shelter_type,
            capacity,
        },
    }
}

fn station(id: &str, precincts: &[&str], early_voting: bool, election_day: bool) -> Site {
    Site {
        id: site(id),
        name: label(&format!("{id} 投票所")),
        kind: SiteKind::PollingStation {
            precincts: precincts
                .iter()
                .map(|p| PrecinctId::new(p).unwrap())
                .collect(),
            early_voting,
            election_day,
        },
    }
}

fn command_center(id: &str) -> Site {
    Site {
        id: site(id),
        name: label("災害対策本部"),
        kind: SiteKind::CommandCenter,
    }
}

/// A flood: two shelters (one of them a 福祉避難所) and the command center.
fn shelter_deployment(roster: &Roster) -> Deployment {
    Deployment::new(
        DeploymentId([1; 16]),
        label("令和8年9月 豪雨災害"),
        DeploymentKind::ShelterOperation,
        roster.hash(),
        vec![
            shelter("S1", "三条市立第一中学校", ShelterType::Designated, 300),
            shelter("S2", "福祉センター", ShelterType::Welfare, 40),
            command_center("HQ"),
        ],
    )
    .unwrap()
}

/// An election: P1 open on election day only (投票区 01), P2 open for both (02), E1 an
/// early-voting office (期日前投票所) only, and the election board.
fn election_deployment(roster: &Roster) -> Deployment {
    Deployment::new(
        DeploymentId([2; 16]),
        label("三条市議会議員一般選挙"),
        DeploymentKind::Election {
            election_day: CivilDate::new(2026, 12, 6).unwrap(),
            early_voting_from: CivilDate::new(2026, 11, 30).unwrap(),
        },
        roster.hash(),
        vec![
            station("P1", &["01"], false, true),
            station("P2", &["02"], true, true),
            station("E1", &[], true, false),
            command_center("EHQ"),
        ],
    )
    .unwrap()
}

/// A resident roster where person 7 has no voter information.
fn residents_with_a_non_voter() -> Roster {
    let mut seven = entry("7", "H4", "19991111", Sex::Male, &[]);
    seven.voter = None;
    Roster::new(
        RosterKind::Residents,
        vec![entry("1", "H1", "19500101", Sex::Male, &[]), seven],
        CivilDate::new(2026, 9, 1).unwrap(),
    )
    .unwrap()
}

fn hh(s: &str) -> HouseholdRef {
    HouseholdRef::Roster(HouseholdId::new(s).unwrap())
}

fn walk_in_ref() -> PersonRef {
    PersonRef::WalkIn {
        registration: EventId([0x3c; 16]),
        index: 0,
    }
}

fn at(site_id: &str, body: EventBody) -> Event {
    ev(1, site_id, T0, 0, body)
}

fn voter_check_in(voter: &str, mode: VoteMode) -> EventBody {
    vote(voter, mode)
}

fn early() -> VoteMode {
    VoteMode::Early(EarlyVotingReason::DisasterOrWeather)
}

fn transfer(ps: &[PersonRef], to: &str) -> EventBody {
    EventBody::Transfer {
        members: members(ps),
        to: site(to),
    }
}

fn card(household: HouseholdRef, representative: PersonRef, ms: &[PersonRef]) -> EventBody {
    EventBody::HouseholdCard {
        household,
        card: Box::new(HouseholdCard {
            representative: Some(representative),
            phone: Some(Phone::new("0256-34-5511").unwrap()),
            damage: Some(HousingDamage::MajorHalf),
            flooding: Some(Flooding::AboveFloor),
            staying: StayingPlace::InShelter,
            car: Some(label("白の軽自動車")),
            pets: Some(label("犬1匹")),
            disclosure: Disclosure::Relatives,
            dv_block: false,
            members: ms
                .iter()
                .map(|p| MemberCard {
                    person: *p,
                    care_needs: [CareNeed::Medication].into(),
                    allergies: Some(label("そば")),
                    medication: Some(label("降圧剤")),
                    disclosure: None,
                    medical_note: Some(note("血圧が高め")),
                })
                .collect(),
            notes: None,
        }),
    }
}

fn status_report() -> EventBody {
    EventBody::ShelterStatusReport(Box::new(StatusReport {
        kind: ReportKind::Periodic(2),
        opened_at: Some(T0 - 3_600_000),
        counts: ReportCounts {
            persons: 40,
            households: 15,
            male: 18,
            female: 21,
            sex_unspecified: 1,
            by_age: BTreeMap::from([(AgeBand::Under6, 4), (AgeBand::Over75, 9)]),
            care_needs: BTreeMap::from([(CareNeed::NursingCare, 3)]),
            supported_outside: 6,
        },
        building: BuildingSafety::Safe,
        lifelines: Lifelines {
            power: LifelineStatus::Available,
            water: LifelineStatus::Out,
            gas: LifelineStatus::Unknown,
            comms: LifelineStatus::Limited,
            toilets: LifelineStatus::Available,
        },
        shortages: vec![Shortage {
            item: label("毛布"),
            quantity: Some(30),
            note: None,
        }],
        issues: Some(note("体育館の雨漏り")),
    }))
}

fn walk_in_registration() -> EventBody {
    EventBody::WalkInRegistration {
        members: vec![WalkInPerson {
            name: PersonName::new("鈴木 一郎").unwrap(),
            kana: None,
            birth_date: Some(CivilDate::new(1960, 4, 1).unwrap()),
            sex: Sex::Male,
            address: None,
            care_needs: BTreeSet::new(),
        }],
        home_municipality: Some(label("長岡市")),
    }
}

fn override_by(second: &str) -> Override {
    Override {
        second_officer: op(second),
        blocks: [BlockReason::WrongPrecinct, BlockReason::AlreadyVoted].into(),
        reason: note("選挙管理委員会に確認済み"),
        evidence: vec![EventId([9; 16])],
    }
}

// ----- valid events pass -----

#[test]
fn valid_shelter_events_pass() {
    let roster = small_roster();
    let d = shelter_deployment(&roster);
    let ok: Vec<(&str, EventBody)> = vec![
        ("S1", check_in(&[p("1"), p("2")])),
        ("S1", check_in(&[walk_in_ref()])),
        ("S1", check_out(&[p("1")])),
        (
            "S1",
            EventBody::ShelterCheckOut {
                members: members(&[p("3")]),
                reason: CheckOutReason::OtherShelter(Some(site("S2"))),
            },
        ),
        (
            "S1",
            EventBody::ShelterCheckOut {
                members: members(&[p("3")]),
                reason: CheckOutReason::OtherShelter(None),
            },
        ),
        (
            "S1",
            EventBody::TemporaryLeave {
                members: members(&[p("2")]),
                kind: LeaveKind::Overnight,
                expected_return: Some(T0 + 86_400_000),
            },
        ),
        (
            "S1",
            EventBody::ReturnFromLeave {
                members: members(&[p("2")]),
            },
        ),
        ("S1", transfer(&[p("3"), p("4")], "S2")),
        (
            "S2",
            EventBody::SupportOnlyRegistration {
                household: Some(hh("H3")),
                members: members(&[p("5"), p("6")]),
                staying: StayingPlace::Car,
            },
        ),
        ("S1", walk_in_registration()),
        ("S1", card(hh("H1"), p("1"), &[p("1"), p("2")])),
        ("S2", status_report()),
        ("S1", EventBody::SiteLifecycle(SiteState::Opened)),
        ("HQ", EventBody::SiteLifecycle(SiteState::Closed)),
        ("S1", undo(&at("S1", check_in(&[p("1")])))),
        (
            "S1",
            EventBody::CardBinding {
                card: CardKey([1; 32]),
                person: Some(p("1")),
            },
        ),
        (
            "S1",
            EventBody::CardBinding {
                card: CardKey([1; 32]),
                person: None,
            },
        ),
        (
            "HQ",
            EventBody::SameAs {
                a: p("5"),
                b: walk_in_ref(),
                note: None,
            },
        ),
        (
            "HQ",
            EventBody::NotSame {
                a: p("5"),
                b: p("6"),
                note: Some(note("別人")),
            },
        ),
        (
            "HQ",
            EventBody::RetractAssertion {
                target: EventId([4; 16]),
                reason: note("誤り"),
            },
        ),
        (
            "HQ",
            EventBody::AlertResolution {
                alert: AlertId([2; 32]),
                outcome: AlertOutcome::Dismissed,
                note: None,
            },
        ),
    ];
    for (s, body) in ok {
        let name = body.name();
        assert_eq!(
            check_event(&at(s, body), &d, &roster),
            Ok(()),
            "{name} at {s}"
        );
    }
}

#[test]
fn valid_election_events_pass() {
    let roster = small_roster();
    let d = election_deployment(&roster);
    let ok: Vec<(&str, EventBody)> = vec![
        ("P1", voter_check_in("1", VoteMode::ElectionDay)),
        ("P2", voter_check_in("2", VoteMode::ElectionDay)),
        ("P2", voter_check_in("2", early())),
        ("E1", voter_check_in("3", early())),
        (
            "P1",
            EventBody::VoterCheckIn {
                voter: pid("2"),
                mode: VoteMode::ElectionDay,
                method: IdMethod::CardWithPin,
                override_: Some(Box::new(override_by("chief"))),
            },
        ),
        (
            "P1",
            EventBody::BallotTally {
                period_end: T0,
                ballots_issued: 120,
            },
        ),
        ("E1", EventBody::SiteLifecycle(SiteState::Opened)),
        ("EHQ", EventBody::SiteLifecycle(SiteState::Opened)),
        (
            "P1",
            undo(&at("P1", voter_check_in("1", VoteMode::ElectionDay))),
        ),
        (
            "E1",
            EventBody::CardBinding {
                card: CardKey([5; 32]),
                person: Some(p("3")),
            },
        ),
        (
            "EHQ",
            EventBody::SameAs {
                a: p("1"),
                b: p("2"),
                note: None,
            },
        ),
        (
            "EHQ",
            EventBody::AlertResolution {
                alert: AlertId([3; 32]),
                outcome: AlertOutcome::Confirmed,
                note: Some(note("二重投票ではない")),
            },
        ),
    ];
    for (s, body) in ok {
        let name = body.name();
        assert_eq!(
            check_event(&at(s, body), &d, &roster),
            Ok(()),
            "{name} at {s}"
        );
    }
}

// ----- refusals -----

#[test]
fn unknown_site_is_refused() {
    let roster = small_roster();
    let shelters = shelter_deployment(&roster);
    let election = election_deployment(&roster);
    assert_eq!(
        check_event(&at("S9", check_in(&[p("1")])), &shelters, &roster),
        Err(EventError::UnknownSite(site("S9")))
    );
    // A site of the other deployment is unknown here.
    assert_eq!(
        check_event(
            &at("P1", voter_check_in("1", VoteMode::ElectionDay)),
            &shelters,
            &roster
        ),
        Err(EventError::UnknownSite(site("P1")))
    );
    assert_eq!(
        check_event(
            &at("S1", EventBody::SiteLifecycle(SiteState::Opened)),
            &election,
            &roster
        ),
        Err(EventError::UnknownSite(site("S1")))
    );
}

#[test]
fn shelter_events_are_refused_in_an_election() {
    let roster = small_roster();
    let d = election_deployment(&roster);
    let cases: Vec<(&str, EventBody, &str)> = vec![
        ("P1", check_in(&[p("1")]), "shelter check-in"),
        ("P2", check_out(&[p("1")]), "shelter check-out"),
        ("P1", transfer(&[p("1")], "P2"), "transfer"),
        ("E1", walk_in_registration(), "walk-in registration"),
        ("EHQ", card(hh("H1"), p("1"), &[p("1")]), "household card"),
        ("EHQ", status_report(), "shelter status report"),
    ];
    for (s, body, name) in cases {
        assert_eq!(
            check_event(&at(s, body), &d, &roster),
            Err(EventError::WrongDeploymentKind(name)),
            "{name} at {s}"
        );
    }
}

#[test]
fn voter_check_in_at_a_shelter_is_refused() {
    let roster = small_roster();
    let d = shelter_deployment(&roster);
    assert_eq!(
        check_event(
            &at("S1", voter_check_in("1", VoteMode::ElectionDay)),
            &d,
            &roster
        ),
        Err(EventError::WrongDeploymentKind("voter check-in"))
    );
    assert_eq!(
        check_event(
            &at(
                "S1",
                EventBody::BallotTally {
                    period_end: T0,
                    ballots_issued: 3
                }
            ),
            &d,
            &roster
        ),
        Err(EventError::WrongDeploymentKind("ballot tally"))
    );
}

#[test]
fn election_events_at_the_election_board_are_refused() {
    let roster = small_roster();
    let d = election_deployment(&roster);
    assert_eq!(
        check_event(
            &at("EHQ", voter_check_in("1", VoteMode::ElectionDay)),
            &d,
            &roster
        ),
        Err(EventError::WrongSite {
            event: "voter check-in",
            site: site("EHQ"),
            reason: "not a polling station",
        })
    );
    assert_eq!(
        check_event(
            &at(
                "EHQ",
                EventBody::BallotTally {
                    period_end: T0,
                    ballots_issued: 3
                }
            ),
            &d,
            &roster
        ),
        Err(EventError::WrongSite {
            event: "ballot tally",
            site: site("EHQ"),
            reason: "not a polling station",
        })
    );
}

#[test]
fn shelter_events_at_the_command_center_are_refused() {
    let roster = small_roster();
    let d = shelter_deployment(&roster);
    assert_eq!(
        check_event(&at("HQ", check_in(&[p("1")])), &d, &roster),
        Err(EventError::WrongSite {
            event: "shelter check-in",
            site: site("HQ"),
            reason: "not a shelter",
        })
    );
    assert_eq!(
        check_event(&at("HQ", status_report()), &d, &roster),
        Err(EventError::WrongSite {
            event: "shelter status report",
            site: site("HQ"),
            reason: "not a shelter",
        })
    );
}

#[test]
fn vote_mode_must_match_the_station() {
    let roster = small_roster();
    let d = election_deployment(&roster);
    assert_eq!(
        check_event(&at("P1", voter_check_in("1", early())), &d, &roster),
        Err(EventError::WrongSite {
            event: "voter check-in",
            site: site("P1"),
            reason: "this station takes no early votes",
        })
    );
    assert_eq!(
        check_event(
            &at("E1", voter_check_in("1", VoteMode::ElectionDay)),
            &d,
            &roster
        ),
        Err(EventError::WrongSite {
            event: "voter check-in",
            site: site("E1"),
            reason: "this station is not open on election day",
        })
    );
}

#[test]
fn unknown_roster_person_is_refused() {
    let roster = small_roster();
    let shelters = shelter_deployment(&roster);
    let election = election_deployment(&roster);
    let stranger = pid("99");
    let unknown = Err(EventError::UnknownPerson(stranger));
    let shelter_cases: Vec<(&str, EventBody)> = vec![
        ("S1", check_in(&[p("1"), p("99")])),
        ("S1", check_out(&[p("99")])),
        (
            "S1",
            EventBody::TemporaryLeave {
                members: members(&[p("99")]),
                kind: LeaveKind::Outing,
                expected_return: None,
            },
        ),
        (
            "S1",
            EventBody::ReturnFromLeave {
                members: members(&[p("99")]),
            },
        ),
        ("S1", transfer(&[p("99")], "S2")),
        (
            "S1",
            EventBody::SupportOnlyRegistration {
                household: None,
                members: members(&[p("99")]),
                staying: StayingPlace::Tent,
            },
        ),
        // A card naming a stranger as a member, or as the representative.
        ("S1", card(hh("H1"), p("1"), &[p("1"), p("99")])),
        ("S1", card(hh("H1"), p("99"), &[p("1")])),
        (
            "S1",
            EventBody::CardBinding {
                card: CardKey([7; 32]),
                person: Some(p("99")),
            },
        ),
        (
            "HQ",
            EventBody::SameAs {
                a: p("1"),
                b: p("99"),
                note: None,
            },
        ),
        (
            "HQ",
            EventBody::NotSame {
                a: p("99"),
                b: p("1"),
                note: None,
            },
        ),
    ];
    for (s, body) in shelter_cases {
        let name = body.name();
        let e = at(s, body);
        assert_eq!(check_event(&e, &shelters, &roster), unknown, "{name}");
        // A peer's event is not refused for the roster (the roster it names may be newer).
        assert_eq!(check_event_shape(&e, &shelters), Ok(()), "{name}");
        // The other checks still hold without the roster.
        assert!(check_event_shape(&e, &election).is_err(), "{name}");
    }
    assert_eq!(
        check_event(
            &at("P1", voter_check_in("99", VoteMode::ElectionDay)),
            &election,
            &roster
        ),
        unknown
    );
}

#[test]
fn person_not_a_voter_is_refused() {
    let roster = residents_with_a_non_voter();
    let d = election_deployment(&roster);
    assert_eq!(
        check_event(
            &at("P1", voter_check_in("7", VoteMode::ElectionDay)),
            &d,
            &roster
        ),
        Err(EventError::NotAVoter(pid("7")))
    );
    assert_eq!(
        check_event(&at("E1", voter_check_in("7", early())), &d, &roster),
        Err(EventError::NotAVoter(pid("7")))
    );
    // Without the roster, the voter is not looked up; the station's kind still is.
    let e = at("P1", voter_check_in("7", VoteMode::ElectionDay));
    assert_eq!(check_event_shape(&e, &d), Ok(()));
    assert!(check_event_shape(&at("P1", voter_check_in("7", early())), &d).is_err());
    // Person 1 of the same roster is a voter.
    assert_eq!(
        check_event(
            &at("P1", voter_check_in("1", VoteMode::ElectionDay)),
            &d,
            &roster
        ),
        Ok(())
    );
}

#[test]
fn transfer_to_an_unknown_site_is_refused() {
    let roster = small_roster();
    let d = shelter_deployment(&roster);
    assert_eq!(
        check_event(&at("S1", transfer(&[p("1")], "S9")), &d, &roster),
        Err(EventError::UnknownSite(site("S9")))
    );
    assert_eq!(
        check_event(
            &at(
                "S1",
                EventBody::ShelterCheckOut {
                    members: members(&[p("1")]),
                    reason: CheckOutReason::OtherShelter(Some(site("S9"))),
                }
            ),
            &d,
            &roster
        ),
        Err(EventError::UnknownSite(site("S9")))
    );
}

#[test]
fn transfer_to_a_site_that_is_not_a_shelter_is_refused() {
    let roster = small_roster();
    let d = shelter_deployment(&roster);
    assert_eq!(
        check_event(&at("S1", transfer(&[p("1")], "HQ")), &d, &roster),
        Err(EventError::WrongSite {
            event: "transfer",
            site: site("HQ"),
            reason: "not a shelter",
        })
    );
    assert_eq!(
        check_event(
            &at(
                "S1",
                EventBody::ShelterCheckOut {
                    members: members(&[p("1")]),
                    reason: CheckOutReason::OtherShelter(Some(site("HQ"))),
                }
            ),
            &d,
            &roster
        ),
        Err(EventError::WrongSite {
            event: "shelter check-out",
            site: site("HQ"),
            reason: "not a shelter",
        })
    );
    // A polling station cannot be a transfer destination: a shelter operation cannot contain
    // one, and in an election a transfer is refused outright.
    assert_eq!(
        Deployment::new(
            DeploymentId([1; 16]),
            label("混在"),
            DeploymentKind::ShelterOperation,
            roster.hash(),
            vec![
                shelter("S1", "体育館", ShelterType::Designated, 100),
                station("P1", &["01"], false, true),
            ],
        ),
        Err(DeploymentError::PollingStationInShelterOperation(site(
            "P1"
        )))
    );
    let election = election_deployment(&roster);
    assert_eq!(
        check_event(&at("P1", transfer(&[p("1")], "P2")), &election, &roster),
        Err(EventError::WrongDeploymentKind("transfer"))
    );
}

/// A household card filed under a household the roster does not know could never be matched to
/// anyone (the fold looks cards up by the members' roster household), so its care needs would be
/// silently lost from the counts.
#[test]
fn household_card_for_an_unknown_roster_household_is_refused() {
    let roster = small_roster();
    let d = shelter_deployment(&roster);
    let result = check_event(&at("S1", card(hh("H99"), p("1"), &[p("1")])), &d, &roster);
    assert_eq!(
        result,
        Err(EventError::UnknownHousehold(
            HouseholdId::new("H99").unwrap()
        ))
    );
}

// ----- decoding -----

/// One valid event of every kind.
fn samples() -> Vec<Event> {
    let bodies: Vec<(&str, EventBody)> = vec![
        (
            "S1",
            EventBody::ShelterCheckIn {
                household: Some(hh("H1")),
                members: members(&[p("1"), p("2"), walk_in_ref()]),
                method: IdMethod::CardWithPin,
            },
        ),
        (
            "S1",
            EventBody::ShelterCheckOut {
                members: members(&[p("3")]),
                reason: CheckOutReason::OtherShelter(Some(site("S2"))),
            },
        ),
        (
            "S1",
            EventBody::TemporaryLeave {
                members: members(&[p("2")]),
                kind: LeaveKind::Overnight,
                expected_return: Some(T0 + 86_400_000),
            },
        ),
        (
            "S1",
            EventBody::ReturnFromLeave {
                members: members(&[p("2")]),
            },
        ),
        ("S1", transfer(&[p("3"), p("4")], "S2")),
        (
            "S2",
            EventBody::SupportOnlyRegistration {
                household: Some(HouseholdRef::WalkIn(EventId([8; 16]))),
                members: members(&[p("5")]),
                staying: StayingPlace::Car,
            },
        ),
        ("S1", walk_in_registration()),
        ("S1", card(hh("H1"), p("1"), &[p("1"), p("2")])),
        ("S2", status_report()),
        ("S1", EventBody::SiteLifecycle(SiteState::Opened)),
        (
            "P1",
            EventBody::VoterCheckIn {
                voter: pid("2"),
                mode: VoteMode::ElectionDay,
                method: IdMethod::AdmissionTicket,
                override_: Some(Box::new(override_by("chief"))),
            },
        ),
        ("E1", voter_check_in("3", early())),
        (
            "P1",
            EventBody::BallotTally {
                period_end: T0,
                ballots_issued: 120,
            },
        ),
        (
            "P1",
            EventBody::UndoCheckIn {
                target: EventId([6; 16]),
                reason: note("誤操作"),
            },
        ),
        (
            "S1",
            EventBody::CardBinding {
                card: CardKey([1; 32]),
                person: Some(walk_in_ref()),
            },
        ),
        (
            "HQ",
            EventBody::SameAs {
                a: p("5"),
                b: walk_in_ref(),
                note: Some(note("本人確認済み")),
            },
        ),
        (
            "HQ",
            EventBody::NotSame {
                a: p("5"),
                b: p("6"),
                note: None,
            },
        ),
        (
            "HQ",
            EventBody::RetractAssertion {
                target: EventId([4; 16]),
                reason: note("誤り"),
            },
        ),
        (
            "HQ",
            EventBody::AlertResolution {
                alert: AlertId([2; 32]),
                outcome: AlertOutcome::Reopened,
                note: None,
            },
        ),
    ];
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, (s, body))| ev(1 + (i % 3) as u8, s, T0 + i as u64 * 1_000, 0, body))
        .collect()
}

#[test]
fn every_kind_of_event_round_trips() {
    let events = samples();
    let kinds: BTreeSet<&str> = events.iter().map(|e| e.body().name()).collect();
    assert_eq!(kinds.len(), 18, "{kinds:?}");
    for e in &events {
        assert_eq!(
            Event::decode(&e.encode().unwrap()).as_ref(),
            Ok(e),
            "{}",
            e.body().name()
        );
    }
}

/// Every prefix of every encoding is refused.
#[test]
fn truncated_encodings_are_refused() {
    for e in samples() {
        let bytes = e.encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(
                Event::decode(&bytes[..cut]).is_err(),
                "{} cut at {cut}",
                e.body().name()
            );
        }
    }
}

/// Every single-bit flip of every encoding either fails to decode or decodes to another event.
#[test]
fn single_bit_flips_fail_or_change_the_id() {
    for e in samples() {
        let bytes = e.encode().unwrap();
        for pos in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[pos] ^= 1 << bit;
                if let Ok(d) = Event::decode(&b) {
                    assert_ne!(d.id(), e.id(), "{} byte {pos} bit {bit}", e.body().name());
                    assert_ne!(d.content(), e.content());
                }
            }
        }
    }
}

/// Decoding changes nothing it accepts: what decodes re-encodes to an event equal to itself.
fn assert_stable(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(e) = Event::decode(bytes) {
        let again = Event::decode(&e.encode().unwrap());
        prop_assert_eq!(again.as_ref(), Ok(&e));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// Random bytes never make the decoder panic.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        assert_stable(&bytes)?;
    }

    /// A valid beginning followed by garbage (so the decoder gets past the header) never panics.
    #[test]
    fn valid_prefix_with_random_tail_never_panics(
        which in any::<proptest::sample::Index>(),
        cut in any::<proptest::sample::Index>(),
        tail in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let events = samples();
        let bytes = events[which.index(events.len())].encode().unwrap();
        let mut b = bytes[..cut.index(bytes.len())].to_vec();
        b.extend_from_slice(&tail);
        assert_stable(&b)?;
    }

    /// A valid event's encoding, truncated, is refused; with one byte changed to any other value
    /// it is refused or decodes to an event with another id.
    #[test]
    fn damaged_encodings_fail_or_change_the_id(
        which in any::<proptest::sample::Index>(),
        pos in any::<proptest::sample::Index>(),
        mask in 1u8..=255,
        wall in T0..T0 + 400 * 86_400_000,
        counter in any::<u32>(),
        device in any::<[u8; 32]>(),
    ) {
        let events = samples();
        let base = events[which.index(events.len())].content().clone();
        let e = Event::new(EventContent {
            device: kazashi_domain::ids::DeviceId(device),
            at: Timestamp::new(wall, counter),
            ..base
        })
        .unwrap();
        let bytes = e.encode().unwrap();
        let i = pos.index(bytes.len());
        prop_assert!(Event::decode(&bytes[..i]).is_err());
        let mut flipped = bytes.clone();
        flipped[i] ^= mask;
        match Event::decode(&flipped) {
            Err(_) => {}
            Ok(d) => prop_assert_ne!(d.id(), e.id()),
        }
        assert_stable(&flipped)?;
    }
}

/// The validation errors of decoding are typed: a well-formed encoding of an event that breaks
/// an intrinsic rule is `Invalid`, not `Malformed`.
#[test]
fn an_encoding_that_breaks_a_rule_is_invalid_not_malformed() {
    let content = EventContent {
        device: dev(1),
        site: site("S1"),
        operator: op("op1"),
        at: Timestamp::new(T0, 0),
        body: EventBody::Transfer {
            members: members(&[p("1")]),
            to: site("S1"),
        },
    };
    assert_eq!(
        Event::new(content.clone()),
        Err(EventError::TransferToSameSite)
    );
    let bytes = postcard::to_allocvec(&content).unwrap();
    assert_eq!(
        Event::decode(&bytes),
        Err(DecodeError::Invalid(EventError::TransferToSameSite))
    );
}
