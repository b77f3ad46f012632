//! Minimisation (issue 24, requirement 6): a day of card flows, then the store read table by
//! table and event by event.
//!
//! The day, on real stores (SQLCipher files) through the node's card session and the in-repo
//! virtual card in process (the APDUs are the same as through pcscd; `card.rs` and
//! `card_possession.rs` run that path):
//! - at a shelter: residents' first visits (a PIN-less tap finds no binding, the card-text PIN,
//!   the basic four matched strongly to the roster, the card bound, the check-in), their later
//!   PIN-less taps, a walk-in from another town registered from their card's basic four, a
//!   staff unlock by card (a wrong PIN first, a copied certificate refused, then the genuine
//!   card's proof);
//! - at an early-voting office of an election: a voter's check-in by card (possession proof,
//!   the basic four matched, the card bound, the check-in).
//!
//! Then each store is opened with its passphrase and every table, every cached event and every
//! envelope of every shard is read, to prove:
//! (a) no certificate bytes (any 32-byte window of any card's certificate DER, which covers
//!     its public key's modulus) appear anywhere — only the card keys (hashes) do;
//! (b) the basic four of residents who were only matched (name, address, birth date as on the
//!     card, and any sex/birth date field) appear in no table, event or envelope — the
//!     municipality's roster (`roster.db`, or the roster in memory here) holds them and is not
//!     part of the store, so it is left out;
//! (c) the walk-in's basic four do appear, in their registration (the one flow that keeps
//!     them) — which also shows the search finds what is there.
//!
//! A control store holding a certificate in a setting is caught by the same search.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use kazashi_domain::detector::LIKELY;
use kazashi_domain::event::{EarlyVotingReason, EventBody, IdMethod, Members, VoteMode};
use kazashi_domain::ids::{HouseholdRef, OperatorId, PersonRef, SiteId};
use kazashi_domain::{CivilDate, Event, Roster, RosterEntry};
use kazashi_node::card::{CardSession, Pin, PinFor};
use kazashi_node::possession::Refusal;
use kazashi_node::reception::BasicFourMatch;
use kazashi_node::staff::Role;
use kazashi_node::store::KdfParams;
use kazashi_node::{ManualClock, Node, Store};
use kazashi_sim::card::{CardSpec, Holder, VirtualCard};
use kazashi_sim::fleet::Fleet;
use kazashi_sim::population::{PopulationSpec, election, generate};
use kazashi_sim::workload::START_MS;
use kazashi_sync::{DeviceKey, ShardDoc};
use std::path::Path;
use std::sync::Arc;

const PASS: &str = "correct horse";

fn create(
    path: &Path,
    fleet: &Fleet,
    roster: &Arc<Roster>,
    site: &str,
    now: u64,
) -> Node<ManualClock> {
    let site = SiteId::new(site).unwrap();
    Node::create(
        path,
        PASS,
        KdfParams::FAST_INSECURE,
        DeviceKey::from_seed(fleet.key(&site).unwrap().secret_bytes()),
        &fleet.manifest,
        roster.clone(),
        site,
        ManualClock::new(now),
    )
    .unwrap()
}

/// A virtual card for `holder` on fixture `fixture`, and its certificate.
fn card(fixture: usize, holder: Holder) -> VirtualCard {
    VirtualCard::new(CardSpec::new(fixture, holder))
}

/// The card-text PIN, then the basic four matched to the roster.
fn read_and_match(
    n: &mut Node<ManualClock>,
    s: &mut CardSession<&mut VirtualCard>,
) -> BasicFourMatch {
    assert!(s.pin_tries(PinFor::Text).unwrap() >= 2);
    s.verify_pin(PinFor::Text, &Pin::new("1234").unwrap())
        .unwrap();
    let four = s.read_basic_four().unwrap();
    n.match_basic_four(&four)
}

fn op() -> OperatorId {
    OperatorId::new("uketsuke").unwrap()
}

/// What a store holds, flattened: (where, bytes) for every column of every row of every table,
/// every cached event content, and every envelope of every shard document.
fn everything(path: &Path) -> (Vec<(String, Vec<u8>)>, Vec<Event>) {
    let store = Store::open(path, PASS).unwrap();
    let mut blobs = Vec::new();
    for (table, rows) in store.raw_tables().unwrap() {
        for (i, row) in rows.into_iter().enumerate() {
            for (c, col) in row.into_iter().enumerate() {
                blobs.push((format!("table {table} row {i} column {c}"), col));
            }
        }
    }
    let (cached, stale) = store.cached_events().unwrap();
    assert!(stale.is_empty());
    let mut events = Vec::new();
    for (i, content) in cached.into_iter().enumerate() {
        events.push(Event::decode(&content).unwrap());
        blobs.push((format!("cached event {i}"), content));
    }
    let me = store.identity().unwrap().unwrap().device_id();
    for (shard, _, _) in store.shards().unwrap() {
        let doc = ShardDoc::load(shard, &me, &store.shard_bytes(&shard).unwrap()).unwrap();
        for (id, env) in doc.envelopes() {
            blobs.push((format!("shard {shard} envelope {id:?}"), env));
        }
    }
    (blobs, events)
}

/// Where `needle` occurs among `blobs`.
fn found(blobs: &[(String, Vec<u8>)], needle: &[u8]) -> Vec<String> {
    assert!(!needle.is_empty());
    blobs
        .iter()
        .filter(|(_, b)| b.windows(needle.len()).any(|w| w == needle))
        .map(|(at, _)| at.clone())
        .collect()
}

/// Every 32-byte window (stride 16) of a certificate's DER that is the card's own (not also in
/// the CA certificate the manifest ships: the issuer's name and key identifiers are the CA's,
/// public, and kept in the manifest): whole or in part (its public key, its modulus, its
/// signature), a stored certificate shows up as one of them.
fn cert_windows(der: &[u8]) -> Vec<&[u8]> {
    let ca = kazashi_sim::card::TEST_CA;
    let windows: Vec<&[u8]> = (0..der.len().saturating_sub(32))
        .step_by(16)
        .map(|i| &der[i..i + 32])
        .filter(|w| !ca.windows(32).any(|c| c == *w))
        .collect();
    // The modulus alone is 256 bytes: at least 14 windows of it remain.
    assert!(windows.len() >= 14, "{}", windows.len());
    windows
}

fn cert_leaks(blobs: &[(String, Vec<u8>)], der: &[u8]) -> Vec<String> {
    let mut at: Vec<String> = cert_windows(der)
        .into_iter()
        .flat_map(|w| found(blobs, w))
        .collect();
    at.sort();
    at.dedup();
    at
}

/// The basic four as the card holds them, as needles: name, address, birth date (YYYYMMDD).
fn four_needles(h: &Holder) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("name", h.name.as_bytes().to_vec()),
        ("address", h.address.as_bytes().to_vec()),
        ("birth date", h.birth.as_bytes().to_vec()),
    ]
}

/// Whether an event carries a person's sex or birth date as a field (only a walk-in's
/// registration may).
fn carries_personal_fields(e: &Event) -> bool {
    matches!(e.body(), EventBody::WalkInRegistration { .. })
}

/// Residents to bring their cards: adults of distinct households whose card's basic four the
/// roster matches strongly.
fn residents(
    n: &mut Node<ManualClock>,
    roster: &Roster,
    count: usize,
    also: impl Fn(&RosterEntry) -> bool,
) -> Vec<RosterEntry> {
    let mut out: Vec<RosterEntry> = Vec::new();
    for e in roster.entries() {
        if out.len() == count {
            break;
        }
        if out.iter().any(|o| o.household == e.household) || e.birth_date.year() > 1990 || !also(e)
        {
            continue;
        }
        let mut c = card(0, Holder::of(e));
        let m = read_and_match(n, &mut CardSession::new(&mut c));
        if matches!(m, BasicFourMatch::Strong(ref s) if s.person == e.person) {
            out.push(e.clone());
        }
    }
    assert_eq!(out.len(), count);
    out
}

#[test]
fn a_day_of_card_flows_keeps_only_key_hashes_and_the_walk_ins_basic_four() {
    let dir = tempfile::tempdir().unwrap();
    let (roster, fleet) = kazashi_tests::town_with(false).unwrap();
    let roster = Arc::new(roster);
    let shelter_path = dir.path().join("shelter.db");
    let mut n = create(&shelter_path, &fleet, &roster, "S001", START_MS);
    assert!(!n.card_cas().is_empty());
    let clock = n.station().clock().clone();
    let people = residents(&mut n, &roster, 3, |_| true);
    let mut ders: Vec<&'static [u8]> = Vec::new();
    let mut matched: Vec<Holder> = Vec::new();

    // First visits: tap, PIN, match, bind, check in.
    for (i, e) in people.iter().enumerate() {
        let holder = Holder::of(e);
        let mut c = card(i + 1, holder.clone());
        ders.push(c.spec().certificate());
        let mut s = CardSession::new(&mut c);
        let tap = n.card_tap_checked(&mut s).unwrap();
        assert_eq!(tap.person, None);
        let BasicFourMatch::Strong(found) = read_and_match(&mut n, &mut s) else {
            panic!("not a strong match");
        };
        assert_eq!(found.person, e.person);
        let person = PersonRef::Roster(e.person);
        n.bind_card(op(), tap.card, person).unwrap();
        n.record(
            op(),
            EventBody::ShelterCheckIn {
                household: Some(HouseholdRef::Roster(e.household)),
                members: Members::new(vec![person]).unwrap(),
                method: IdMethod::CardWithPin,
            },
        )
        .unwrap();
        matched.push(holder);
        clock.advance(60_000);
    }
    // Later the same day: PIN-less taps find them; two go home.
    for (i, e) in people.iter().enumerate() {
        let mut c = card(i + 1, Holder::of(e));
        let tap = n.card_tap_checked(&mut CardSession::new(&mut c)).unwrap();
        assert_eq!(tap.person, Some(PersonRef::Roster(e.person)));
        if i < 2 {
            n.record(
                op(),
                EventBody::ShelterCheckOut {
                    members: Members::new(vec![PersonRef::Roster(e.person)]).unwrap(),
                    reason: kazashi_domain::event::CheckOutReason::Home,
                },
            )
            .unwrap();
        }
        clock.advance(60_000);
    }

    // A walk-in from another town: the card's basic four match no one; registered from them.
    let visitor = Holder {
        name: "隣町 次郎".into(),
        address: "となり町本町三丁目4番5号".into(),
        birth: "19751224".into(),
        sex: "1".into(),
    };
    let mut c = card(4, visitor.clone());
    ders.push(c.spec().certificate());
    let mut s = CardSession::new(&mut c);
    let tap = n.card_tap_checked(&mut s).unwrap();
    assert_eq!(tap.person, None);
    s.verify_pin(PinFor::Text, &Pin::new("1234").unwrap())
        .unwrap();
    let four = s.read_basic_four().unwrap();
    match n.match_basic_four(&four) {
        BasicFourMatch::NotFound => {}
        BasicFourMatch::Weak(c) => assert!(c.iter().all(|c| c.score < LIKELY)),
        BasicFourMatch::Strong(_) => panic!("the visitor matched a resident"),
    }
    let walk_in = n
        .register_walk_in_by_card(op(), tap.card, &four, None)
        .unwrap();
    drop(four);
    let PersonRef::WalkIn { registration, .. } = walk_in else {
        panic!("not a walk-in");
    };
    n.record(
        op(),
        EventBody::ShelterCheckIn {
            household: Some(HouseholdRef::WalkIn(registration)),
            members: Members::new(vec![walk_in]).unwrap(),
            method: IdMethod::CardWithPin,
        },
    )
    .unwrap();
    assert_eq!(n.card_person(&tap.card), Some(walk_in));
    drop(s);

    // A staff unlock by card: a wrong PIN, a copied certificate, then the genuine card.
    let boss = OperatorId::new("sekinin").unwrap();
    n.enrol_staff(&boss, Role::Lead, Some("2222")).unwrap();
    let staff_holder = Holder {
        name: "職員 一郎".into(),
        address: "かざし市中央一丁目2番3号".into(),
        birth: "19700101".into(),
        sex: "1".into(),
    };
    let mut genuine = card(5, staff_holder.clone());
    ders.push(genuine.spec().certificate());
    {
        let mut s = CardSession::new(&mut genuine);
        let p = n.present_card(&mut s).unwrap();
        n.enrol_staff_card(&p.tap.card, &boss).unwrap();
        assert!(matches!(
            n.prove_card(&mut s, &p, &Pin::new("9999").unwrap()),
            Err(Refusal::Card(_))
        ));
    }
    let mut spec = CardSpec::new(2, staff_holder.clone());
    spec.copied_cert_of = Some(5);
    let mut copy = VirtualCard::new(spec);
    {
        let mut s = CardSession::new(&mut copy);
        let p = n.present_card(&mut s).unwrap();
        assert_eq!(
            n.prove_card(&mut s, &p, &Pin::new("1234").unwrap()),
            Err(Refusal::NotItsKey)
        );
    }
    let mut genuine = card(5, staff_holder.clone());
    {
        let mut s = CardSession::new(&mut genuine);
        let p = n.present_card(&mut s).unwrap();
        let key = n
            .prove_card(&mut s, &p, &Pin::new("1234").unwrap())
            .unwrap();
        assert_eq!(n.staff_card_login(&key).unwrap(), (boss, Role::Lead));
    }
    let card_keys: Vec<_> = n
        .state()
        .events_in_order()
        .iter()
        .filter_map(|e| match e.body() {
            EventBody::CardBinding { card, .. } => Some(*card),
            _ => None,
        })
        .collect();
    assert_eq!(card_keys.len(), 4);
    drop(n);

    // An election: a voter's check-in by card at an early-voting office.
    let day = CivilDate::new(2026, 9, 13).unwrap();
    let m = generate(PopulationSpec {
        households: 60,
        seed: 5,
        today: CivilDate::new(2026, 9, 1).unwrap(),
        voters: true,
    })
    .unwrap();
    let d = election(&m, day).unwrap();
    let efleet = kazashi_sim::fleet::fleet(&d, 5).unwrap();
    let eroster = Arc::new(m.roster);
    let election_path = dir.path().join("election.db");
    let now = CivilDate::new(2026, 9, 10).unwrap().jst_midnight().unwrap() + 10 * 3_600_000;
    let mut e = create(&election_path, &efleet, &eroster, "E1", now);
    let voter = residents(&mut e, &eroster, 1, |x| {
        x.voter
            .as_ref()
            .is_some_and(|v| v.flags.eligible && !v.flags.early_voted && !v.flags.absentee_voted)
    })
    .remove(0);
    let voter_holder = Holder::of(&voter);
    let mut c = card(6, voter_holder.clone());
    let voter_der = c.spec().certificate();
    {
        let mut s = CardSession::new(&mut c);
        let p = e.present_card(&mut s).unwrap();
        let key = e
            .prove_card(&mut s, &p, &Pin::new("1234").unwrap())
            .unwrap();
        assert_eq!(p.tap.person, None);
        let BasicFourMatch::Strong(found) = read_and_match(&mut e, &mut s) else {
            panic!("the voter's card did not match strongly");
        };
        assert_eq!(found.person, voter.person);
        e.bind_card(op(), key, PersonRef::Roster(voter.person))
            .unwrap();
        e.record(
            op(),
            EventBody::VoterCheckIn {
                voter: voter.person,
                mode: VoteMode::Early(EarlyVotingReason::Travel),
                method: IdMethod::CardWithPin,
                override_: None,
            },
        )
        .unwrap();
    }
    drop(e);

    // The stores, read whole.
    let (blobs, events) = everything(&shelter_path);
    let (eblobs, eevents) = everything(&election_path);
    assert!(
        blobs.len() > 10 && events.len() >= 10,
        "{} {}",
        blobs.len(),
        events.len()
    );

    // (a) No certificate, whole or in part, in either store; the card keys (hashes) are there.
    for der in ders.iter().chain([&voter_der]) {
        assert_eq!(
            cert_leaks(&blobs, der),
            Vec::<String>::new(),
            "a certificate at the shelter"
        );
        assert_eq!(
            cert_leaks(&eblobs, der),
            Vec::<String>::new(),
            "a certificate at the office"
        );
    }
    for k in &card_keys {
        assert!(
            !found(&blobs, &k.0).is_empty(),
            "a card binding's key hash is missing"
        );
    }
    // The lockout left no record once the genuine card proved itself; the staff card is kept
    // by its key hash.
    let metas: Vec<String> = Store::open(&shelter_path, PASS)
        .unwrap()
        .raw_tables()
        .unwrap()
        .into_iter()
        .filter(|(t, _)| t == "meta")
        .flat_map(|(_, rows)| {
            rows.into_iter()
                .map(|r| String::from_utf8_lossy(&r[0]).into_owned())
        })
        .collect();
    assert!(
        !metas.iter().any(|k| k.starts_with("lockout/card/")),
        "a lockout record outlived the success: {metas:?}"
    );
    assert_eq!(
        metas
            .iter()
            .filter(|k| k.starts_with("staff_card/"))
            .count(),
        1
    );

    // (b) The matched residents' and the voter's basic four are nowhere (the roster that holds
    // them is the municipality's, not the store).
    for h in &matched {
        for (what, needle) in four_needles(h) {
            assert_eq!(
                found(&blobs, &needle),
                Vec::<String>::new(),
                "a matched resident's {what}"
            );
        }
    }
    for (what, needle) in four_needles(&voter_holder) {
        assert_eq!(
            found(&eblobs, &needle),
            Vec::<String>::new(),
            "the voter's {what}"
        );
    }
    for (what, needle) in four_needles(&staff_holder) {
        assert_eq!(
            found(&blobs, &needle),
            Vec::<String>::new(),
            "the staff member's {what}"
        );
    }
    // No event but a walk-in's registration carries a name, birth date, sex or address.
    for ev in events.iter().chain(&eevents) {
        if carries_personal_fields(ev) {
            let EventBody::WalkInRegistration { members, .. } = ev.body() else {
                unreachable!()
            };
            assert_eq!(members.len(), 1);
            assert_eq!(members[0].name.as_str(), visitor.name);
        }
    }

    // (c) The walk-in's basic four are kept: in the registration, its cached event and its
    // envelope.
    let regs: Vec<_> = events
        .iter()
        .filter_map(|ev| match ev.body() {
            EventBody::WalkInRegistration { members, .. } => Some(members.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(regs.len(), 1);
    let w = &regs[0][0];
    assert_eq!(w.name.as_str(), visitor.name);
    assert_eq!(
        w.address.as_ref().map(|a| a.as_str()),
        Some(visitor.address.as_str())
    );
    assert_eq!(w.birth_date, Some(CivilDate::new(1975, 12, 24).unwrap()));
    assert_eq!(w.sex, kazashi_domain::roster::Sex::Male);
    for (what, needle) in four_needles(&visitor).into_iter().take(2) {
        let at = found(&blobs, &needle);
        assert!(
            at.iter().any(|a| a.starts_with("cached event")),
            "the walk-in's {what}: {at:?}"
        );
        assert!(
            at.iter().any(|a| a.starts_with("shard")),
            "the walk-in's {what}: {at:?}"
        );
    }

    // The control: a certificate kept in a setting is caught by the same search.
    let control_path = dir.path().join("control.db");
    let control = create(&control_path, &fleet, &roster, "S001", START_MS);
    control.set_setting("control", ders[0]).unwrap();
    drop(control);
    let (cblobs, _) = everything(&control_path);
    assert!(!cert_leaks(&cblobs, ders[0]).is_empty());
}
