//! A roster answered from its encrypted store (`kazashi_node::roster_lookup::StoreRoster`)
//! answers every query as the same roster held in memory: entries by 宛名番号 and 名簿番号,
//! households and their 支援措置 flag, the fuzzy matcher (a card's basic four, the detector's
//! walk-in rule over a week of events), staff search, the identity views read. A store altered
//! after import, or one not pinned, is refused before a row is used.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use kazashi_domain::Event;
use kazashi_domain::detector::{Context, Detector, MatchIndex};
use kazashi_domain::event::{EventBody, WalkInPerson};
use kazashi_domain::ids::{DeviceId, OperatorId};
use kazashi_domain::ids::{HouseholdId, PersonId, PersonRef, RosterHash};
use kazashi_domain::search::SearchIndex;
use kazashi_domain::text::PersonName;
use kazashi_domain::{CivilDate, Roster, State};
use kazashi_node::KdfParams;
use kazashi_node::roster_db::{RosterDb, RosterDbError};
use kazashi_node::roster_lookup::StoreRoster;
use kazashi_node::{ManualClock, Station};
use kazashi_sim::population::{PopulationSpec, election, generate, shelter_operation};
use kazashi_sim::workload::{START_MS, election_votes, shelter_week};
use std::sync::Arc;

fn town(voters: bool) -> kazashi_sim::Municipality {
    generate(PopulationSpec {
        households: 600,
        seed: 11,
        today: CivilDate::new(2026, 9, 1).unwrap(),
        voters,
    })
    .unwrap()
}

/// The town's roster written to a store in `dir`, and opened from disk.
fn on_disk(dir: &std::path::Path, roster: &Roster) -> Roster {
    let path = dir.join("roster.db");
    let db = RosterDb::create(
        &path,
        "pw",
        KdfParams::FAST_INSECURE,
        roster.into(),
        [0; 32],
        &mut |_, _| {},
    )
    .unwrap();
    assert!(db.answers_from_disk());
    StoreRoster::roster(db, Some(roster.hash())).unwrap()
}

#[test]
fn lookups_households_and_identity_answer_alike() {
    let m = town(true);
    let dir = tempfile::tempdir().unwrap();
    let disk = on_disk(dir.path(), &m.roster);
    assert!(disk.store().is_some() && disk.in_memory().is_none());
    assert_eq!(disk.len(), m.roster.len());
    assert_eq!(disk.hash(), m.roster.hash());
    assert_eq!(disk, m.roster);
    let state = State::default();
    for e in m.roster.entries() {
        assert_eq!(disk.get(&e.person).as_deref(), Some(e));
        let n = &e.voter.as_ref().unwrap().list_number;
        assert_eq!(disk.by_list_number(n).as_deref(), Some(e));
        let mine: Vec<_> = m
            .roster
            .household(&e.household)
            .iter()
            .map(|x| x.to_entry())
            .collect();
        let theirs: Vec<_> = disk
            .household(&e.household)
            .iter()
            .map(|x| x.to_entry())
            .collect();
        assert_eq!(mine, theirs);
        assert!(disk.has_household(&e.household));
        assert_eq!(
            disk.household_protected(&e.household),
            m.roster.household_protected(&e.household)
        );
        let p = PersonRef::Roster(e.person);
        assert_eq!(
            state.identity(&p, &disk, None),
            state.identity(&p, &m.roster, None)
        );
        assert_eq!(
            state.dv_withheld(&p, &disk),
            state.dv_withheld(&p, &m.roster)
        );
    }
    let nobody = PersonId::new("999999999999").unwrap();
    assert!(disk.get(&nobody).is_none());
    assert!(!disk.has_household(&HouseholdId::new("NOHOUSEHOLD").unwrap()));
    // Streamed in person-id order, every entry.
    let mut streamed = Vec::new();
    assert!(disk.for_each_entry(&mut |e| streamed.push(e.clone())));
    assert_eq!(streamed, m.roster.entries());
    assert!(disk.store().unwrap().fault().is_none());
}

#[test]
fn the_matcher_finds_the_same_candidates() {
    let m = town(false);
    let dir = tempfile::tempdir().unwrap();
    let disk = on_disk(dir.path(), &m.roster);
    let (mem, dsk) = (MatchIndex::new(&m.roster), MatchIndex::new(&disk));
    let (mut strong, mut typo_found) = (0, 0);
    for (i, e) in m.roster.entries().iter().enumerate().step_by(3) {
        // The card's basic four; every few, a typo'd birth date or no address.
        // A birth date a typo away (a year off: `birth::near`) is found by the name alone,
        // which the store answers after testing each bearer's date.
        let (y, mo, d) = (
            e.birth_date.year(),
            e.birth_date.month(),
            e.birth_date.day(),
        );
        let birth = match i % 7 {
            0 => CivilDate::new(y, 1, 1).ok(),
            1 => CivilDate::new(y + 1, mo, d).ok(),
            _ => Some(e.birth_date),
        };
        let address = (i % 5 != 0).then(|| e.address.as_str());
        let a = mem.find(e.name.as_str(), None, birth, e.sex, address);
        let b = dsk.find(e.name.as_str(), None, birth, e.sex, address);
        assert_eq!(a, b, "entry {i}");
        let found = a.iter().any(|c| c.person == e.person);
        strong += usize::from(a.first().is_some_and(|c| c.person == e.person));
        typo_found += usize::from(i % 7 == 1 && birth.is_some() && found);
    }
    assert!(strong > m.roster.len() / 4, "{strong}");
    assert!(typo_found > 10, "{typo_found}");
}

#[test]
fn the_detector_raises_the_same_alerts() {
    let m = town(true);
    let dir = tempfile::tempdir().unwrap();
    let disk = on_disk(dir.path(), &m.roster);
    let shelters = shelter_operation(&m, 5).unwrap();
    let week = shelter_week(&m, &shelters, 3000, 4);
    let polls = election(&m, CivilDate::new(2026, 10, 25).unwrap()).unwrap();
    let device = |i: usize, _: &kazashi_domain::SiteId, _: u8| {
        let mut b = [9u8; 32];
        b[..8].copy_from_slice(&(i as u64).to_le_bytes());
        kazashi_domain::DeviceId(b)
    };
    let (votes, _) = election_votes(&m, &polls, 0.6, 20, 4, &device);
    // Walk-ins who are roster residents written down at the desk: as on the roster, the
    // family and given names swapped, without a birth date, a year off.
    let site = shelters.sites().find(|s| s.is_shelter()).unwrap().id;
    let clock = ManualClock::new(START_MS);
    let mut desk = Station::new(
        Arc::new(shelters.clone()),
        Arc::new(m.roster.clone()),
        DeviceId([3; 32]),
        site,
        clock.clone(),
    )
    .unwrap();
    for (i, e) in m.roster.entries().iter().enumerate().step_by(41) {
        let name = match (i % 4, e.name.as_str().split_once(' ')) {
            (1, Some((family, given))) => format!("{given} {family}"),
            _ => e.name.as_str().to_owned(),
        };
        let birth = match i % 4 {
            2 => None,
            3 => CivilDate::new(e.birth_date.year() - 1, e.birth_date.month(), 1).ok(),
            _ => Some(e.birth_date),
        };
        let person = WalkInPerson {
            name: PersonName::new(&name).unwrap(),
            kana: (i % 3 == 0).then(|| e.kana.clone()),
            birth_date: birth,
            sex: e.sex,
            address: Some(e.address.clone()),
            care_needs: Default::default(),
        };
        clock.advance(60_000);
        desk.record(
            OperatorId::new("desk").unwrap(),
            EventBody::WalkInRegistration {
                members: vec![person],
                home_municipality: None,
            },
        )
        .unwrap();
    }
    let mut walk_ins: Vec<Event> = desk.state().events_unordered().cloned().collect();
    walk_ins.extend(week);
    let mut raised = 0;
    for (d, events) in [(&shelters, walk_ins), (&polls, votes)] {
        let state = State::from_events(events);
        let run = |roster: &Roster| {
            let matcher = MatchIndex::new(roster);
            let ctx = Context {
                deployment: d,
                roster,
                matcher: &matcher,
            };
            let det = Detector::full(&ctx, &state);
            det.alerts().into_iter().cloned().collect::<Vec<_>>()
        };
        let (a, b) = (run(&m.roster), run(&disk));
        raised += a.len();
        assert_eq!(a, b);
    }
    assert!(raised > 20, "{raised}");
}

#[test]
fn staff_search_finds_the_person() {
    let m = town(false);
    let dir = tempfile::tempdir().unwrap();
    let disk = on_disk(dir.path(), &m.roster);
    let (mem, dsk) = (SearchIndex::new(&m.roster), SearchIndex::new(&disk));
    for e in m.roster.entries().iter().step_by(17) {
        for q in [e.name.as_str(), e.kana.as_str()] {
            let (a, b) = (mem.search(q, 50), dsk.search(q, 50));
            assert!(b.contains(&e.person), "{q}");
            let (mut a, mut b) = (a, b);
            a.sort();
            b.sort();
            assert_eq!(a, b, "{q}");
        }
    }
}

#[test]
fn an_altered_or_unpinned_store_is_refused() {
    let m = town(false);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roster.db");
    drop(on_disk(dir.path(), &m.roster));
    // Pinned to another roster: refused.
    let db = RosterDb::open(&path, "pw").unwrap();
    let other = RosterHash([7; 32]);
    assert!(matches!(
        StoreRoster::roster(db, Some(other)),
        Err(RosterDbError::NotPinned { .. })
    ));
    // One entry rewritten by someone holding the passphrase: refused before any lookup.
    let db = RosterDb::open(&path, "pw").unwrap();
    db.connection_for_tests()
        .execute(
            "UPDATE person SET entry = CAST(entry || x'00' AS BLOB) WHERE rid = 5",
            [],
        )
        .unwrap();
    let refused = StoreRoster::roster(db, Some(m.roster.hash()));
    assert!(
        matches!(refused, Err(RosterDbError::Damaged(_))),
        "{refused:?}"
    );
    // A row removed: refused too.
    let db = RosterDb::open(&path, "pw").unwrap();
    db.connection_for_tests()
        .execute("DELETE FROM person WHERE rid = 9", [])
        .unwrap();
    assert!(StoreRoster::roster(db, None).is_err());
}
