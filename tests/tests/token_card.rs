//! Any card as a token through a real pcscd (issue 26, requirement 4): vsmartcard's vpcd
//! reader with the in-repo virtual card in its identifier-only mode (it answers the reader's
//! GET DATA `FF CA 00 00 00` with a UID or an IDm, and nothing else). The product's own path:
//! the reader service reports the card, the window's PC/SC readers connect it, the station's
//! reception tries the My Number Card, falls through to the identifier, and shows the
//! registration screen; once bound (as the registration screen binds), the next tap opens the
//! household without a PIN, here and at another laptop after a USB bundle. A FeliCa IDm the
//! same; a random UID and a wrong-length identifier are refused in words, nothing written.
//!
//! Each test prints "skipped: …" (and appends it to `KAZASHI_SKIP_LOG`) where the rig cannot
//! run (no pcscd, not root).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use kazashi_domain::event::{EventBody, IdMethod};
use kazashi_domain::ids::{OperatorId, PersonRef};
use kazashi_gui::app::cards::{NoReaders, PcscReaders, Readers};
use kazashi_gui::app::reception::Screen;
use kazashi_gui::app::{Host, Station};
use kazashi_gui::lang::Lang;
use kazashi_node::card::CardSession;
use kazashi_node::staff::Role;
use kazashi_node::token::{self, TokenError, TokenKind};
use kazashi_node::{BundleScope, ManualClock};
use kazashi_sim::card::vpcd::InsertedCard;
use kazashi_sim::card::{self, CardSpec, VirtualCard};
use kazashi_tests::card_rig::{Rig, node, wait_for, world};
use std::time::Duration;

macro_rules! rig {
    () => {
        match Rig::start() {
            Ok(r) => r,
            Err(why) => {
                kazashi_tests::card_rig::skip(&format!("token card test: {why}"));
                return;
            }
        }
    };
}

const UID: [u8; 7] = [0x04, 0x5A, 0x91, 0x3C, 0xE2, 0x7F, 0x80];
const IDM: [u8; 8] = [0x01, 0x2E, 0x4C, 0xD3, 0x5A, 0x19, 0x77, 0x08];

/// Take the card off; the APDUs it received: nothing but the JPKI SELECT (the My Number Card
/// try) and the reader's GET DATA, and nothing near the individual number.
fn finish(rig: &Rig, inserted: InsertedCard) -> Vec<Vec<u8>> {
    let apdus = inserted.apdus();
    rig.remove(inserted);
    assert!(card::individual_number_touches(&apdus).is_empty());
    for a in &apdus {
        assert!(
            a.as_slice() == [0xFF, 0xCA, 0, 0, 0] || a.starts_with(&[0x00, 0xA4, 0x04, 0x0C]),
            "an APDU a token read does not need: {a:02X?}"
        );
    }
    apdus
}

/// Wait for the reader service to report the card placed; connected, as the window gets it.
fn placed(readers: &mut PcscReaders) -> kazashi_gui::app::cards::Card {
    let mut card = None;
    assert!(
        wait_for(Duration::from_secs(10), || {
            let p = readers.poll();
            if let Some(e) = p.error {
                panic!("the reader service could not connect the card: {e}");
            }
            card = p.card.or(card.take());
            card.is_some()
        }),
        "the reader service reported no card"
    );
    card.unwrap()
}

fn screen_name(s: &Station<ManualClock>) -> &'static str {
    match &s.reception.screen {
        Screen::Idle => "idle",
        Screen::Token(_) => "token",
        Screen::Household { method, .. } if *method == IdMethod::Token => "household-by-token",
        Screen::Household { .. } => "household",
        _ => "other",
    }
}

fn said(s: &Station<ManualClock>) -> String {
    s.said.as_ref().map(|s| s.text.clone()).unwrap_or_default()
}

#[test]
fn a_uid_card_through_pcscd_is_registered_then_found_without_a_pin_here_and_elsewhere() {
    let rig = rig!();
    let w = world(false);
    let a = node(&w, "S001");
    let mut b = node(&w, "S002");
    let op = OperatorId::new("staff01").unwrap();
    let resident = w.roster.entries()[31].clone();
    let person = PersonRef::Roster(resident.person);

    let mut readers = PcscReaders::start();
    let mut station =
        Station::new(Host::Alone(Box::new(a)), Lang::Ja, Box::new(NoReaders)).unwrap();
    station.unlock(op, Role::Reception);

    // First tap at S001: not a My Number Card, so its UID: not registered yet.
    let inserted = rig
        .insert(VirtualCard::new(CardSpec::uid_only(&UID)))
        .unwrap();
    station.tap(placed(&mut readers));
    assert_eq!(screen_name(&station), "token", "{}", said(&station));
    // The registration screen binds the token to the person staff choose (as here).
    let key = station.host().with(|n| {
        let id = token::TokenId::from_reader(&UID).unwrap();
        let tap = n.token_tap(&id).unwrap();
        assert_eq!((tap.kind, tap.person), (TokenKind::Uid, None));
        n.bind_token(op, tap.key, person).unwrap();
        tap.key
    });
    finish(&rig, inserted);

    // The next tap: the household, by token, no PIN.
    let inserted = rig
        .insert(VirtualCard::new(CardSpec::uid_only(&UID)))
        .unwrap();
    station.tap(placed(&mut readers));
    assert_eq!(
        screen_name(&station),
        "household-by-token",
        "{}",
        said(&station)
    );
    let apdus = finish(&rig, inserted);
    assert!(
        apdus.iter().all(|a| a.get(1) != Some(&0x20)),
        "a VERIFY was sent"
    );

    // At S002 after a USB bundle: the same card through pcscd finds the person there.
    let bundle = station
        .host()
        .with(|n| n.export_bundle(BundleScope::All).unwrap());
    let inserted = rig
        .insert(VirtualCard::new(CardSpec::uid_only(&UID)))
        .unwrap();
    let mut s = CardSession::new(rig.connect().unwrap());
    let id = token::read_token(&mut s).unwrap();
    assert_eq!(b.token_tap(&id).unwrap().person, None);
    b.import_bundle(&bundle, "usb").unwrap();
    let there = b.token_tap(&id).unwrap();
    assert_eq!(there.person, Some(person));
    assert_eq!(there.key, key);
    drop(s);
    finish(&rig, inserted);

    // The log holds the keyed form only.
    for e in b.state().events_unordered() {
        if let EventBody::CardBinding { card, .. } = e.body() {
            assert!(!card.0.windows(UID.len()).any(|x| x == UID));
        }
    }
}

#[test]
fn a_felica_idm_through_pcscd_is_a_token_of_its_own_kind() {
    let rig = rig!();
    let w = world(false);
    let mut a = node(&w, "S001");
    let op = OperatorId::new("staff01").unwrap();
    let resident = w.roster.entries()[44].clone();
    let inserted = rig
        .insert(VirtualCard::new(CardSpec::uid_only(&IDM)))
        .unwrap();
    let mut s = CardSession::new(rig.connect().unwrap());
    // The My Number Card path says what this is not; the token path reads it.
    assert_eq!(
        a.card_tap(&mut s, &[]).unwrap_err(),
        kazashi_node::card::CardError::NotMyNumberCard
    );
    let id = token::read_token(&mut s).unwrap();
    assert_eq!(id.kind(), TokenKind::Idm);
    let tap = a.token_tap(&id).unwrap();
    a.bind_token(op, tap.key, PersonRef::Roster(resident.person))
        .unwrap();
    // Read again (a new session, as a new tap): found.
    drop(s);
    let mut s = CardSession::new(rig.connect().unwrap());
    let again = token::read_token(&mut s).unwrap();
    assert_eq!(
        a.token_tap(&again).unwrap().person,
        Some(PersonRef::Roster(resident.person))
    );
    // The same bytes as a 7-byte UID would be another key: the kind is keyed in.
    assert_ne!(
        a.token_key(&token::TokenId::from_reader(&IDM[..7]).unwrap())
            .unwrap(),
        tap.key
    );
    drop(s);
    finish(&rig, inserted);
}

#[test]
fn a_random_uid_and_a_wrong_length_are_refused_in_words_and_nothing_is_written() {
    let rig = rig!();
    let w = world(false);
    let a = node(&w, "S001");
    let before = a.state().len();
    let mut readers = PcscReaders::start();
    let mut station =
        Station::new(Host::Alone(Box::new(a)), Lang::Ja, Box::new(NoReaders)).unwrap();
    station.unlock(OperatorId::new("staff01").unwrap(), Role::Reception);
    for (uid, words, err) in [
        (
            vec![0x08, 0x12, 0x34, 0x56],
            "かざすたびに違う番号",
            TokenError::RandomUid,
        ),
        (
            vec![0x04, 0x12, 0x34, 0x56, 0x78],
            "番号を読み取れませんでした",
            TokenError::Length(5),
        ),
    ] {
        let inserted = rig
            .insert(VirtualCard::new(CardSpec::uid_only(&uid)))
            .unwrap();
        station.tap(placed(&mut readers));
        assert_eq!(screen_name(&station), "idle");
        assert!(said(&station).contains(words), "{}", said(&station));
        let mut s = CardSession::new(rig.connect().unwrap());
        assert_eq!(token::read_token(&mut s).unwrap_err(), err);
        drop(s);
        finish(&rig, inserted);
        // Let the reader service see the card leave before the next one.
        let _ = readers.poll();
    }
    assert_eq!(station.host().with(|n| n.state().len()), before);
}
