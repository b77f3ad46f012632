//! A copied certificate grants no authority, through a real pcscd and vsmartcard's vpcd reader
//! with the in-repo virtual card (issue 24): a card carrying a staff member's certificate —
//! readable by anyone without a PIN — but its own private key names the staff member on a
//! PIN-less read, yet fails `Node::present_card` + `Node::prove_card`, the check behind staff
//! unlock, a second officer's approval and a voter's check-in by card; the genuine card
//! passes with the same PIN. A card with one JPKI PIN try left is never sent a VERIFY.
//! Skipped (with "skipped: …") where the rig cannot run.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use kazashi_domain::Roster;
use kazashi_domain::ids::{OperatorId, SiteId};
use kazashi_node::card::{CardSession, Pin};
use kazashi_node::possession::Refusal;
use kazashi_node::staff::Role;
use kazashi_node::store::KdfParams;
use kazashi_node::{ManualClock, Node};
use kazashi_sim::card::vpcd::InsertedCard;
use kazashi_sim::card::{self, CardSpec, Holder, VirtualCard};
use kazashi_sim::fleet::Fleet;
use kazashi_sim::workload::START_MS;
use kazashi_sync::DeviceKey;
use kazashi_tests::card_rig::Rig;
use std::sync::Arc;

macro_rules! rig {
    () => {
        match Rig::start() {
            Ok(r) => r,
            Err(why) => {
                kazashi_tests::card_rig::skip(&format!("card possession test: {why}"));
                return;
            }
        }
    };
}

fn holder() -> Holder {
    Holder {
        name: "職員 一郎".into(),
        address: "かざし市中央一丁目2番3号".into(),
        birth: "19700101".into(),
        sex: "1".into(),
    }
}

struct World {
    roster: Arc<Roster>,
    fleet: Fleet,
    dir: tempfile::TempDir,
}

fn node(w: &World) -> Node<ManualClock> {
    let site = SiteId::new("S001").unwrap();
    Node::create(
        &w.dir.path().join("S001.db"),
        "correct horse",
        KdfParams::FAST_INSECURE,
        DeviceKey::from_seed(w.fleet.key(&site).unwrap().secret_bytes()),
        &w.fleet.manifest,
        w.roster.clone(),
        site,
        ManualClock::new(START_MS),
    )
    .unwrap()
}

/// The APDUs the card got, after asserting the legal line held.
fn finish(rig: &Rig, inserted: InsertedCard) -> Vec<Vec<u8>> {
    let apdus = inserted.apdus();
    rig.remove(inserted);
    assert!(card::individual_number_touches(&apdus).is_empty());
    apdus
}

/// VERIFY commands that carried a PIN.
fn pin_verifies(apdus: &[Vec<u8>]) -> usize {
    apdus
        .iter()
        .filter(|a| a.get(1) == Some(&0x20) && a.len() > 5)
        .count()
}

#[test]
fn a_copied_staff_certificate_fails_the_possession_check_through_pcscd() {
    let rig = rig!();
    let (roster, fleet) = kazashi_tests::town_with(false).unwrap();
    let w = World {
        roster: Arc::new(roster),
        fleet,
        dir: tempfile::tempdir().unwrap(),
    };
    let n = node(&w);
    assert!(!n.card_cas().is_empty(), "the lab fleet lists its card CA");
    let boss = OperatorId::new("sekinin").unwrap();
    n.enrol_staff(&boss, Role::Lead, Some("2222")).unwrap();
    let pin = Pin::new("1234").unwrap();

    // The genuine card: enrolled as sekinin's staff card, proves itself.
    let inserted = rig
        .insert(VirtualCard::new(CardSpec::new(5, holder())))
        .unwrap();
    let mut s = CardSession::new(rig.connect().unwrap());
    let presented = n.present_card(&mut s).unwrap();
    n.enrol_staff_card(&presented.tap.card, &boss).unwrap();
    assert_eq!(
        n.prove_card(&mut s, &presented, &pin),
        Ok(presented.tap.card)
    );
    drop(s);
    finish(&rig, inserted);

    // The copy: sekinin's certificate, another card's key.
    let mut spec = CardSpec::new(2, holder());
    spec.copied_cert_of = Some(5);
    let inserted = rig.insert(VirtualCard::new(spec)).unwrap();
    let mut s = CardSession::new(rig.connect().unwrap());
    let copied = n.present_card(&mut s).unwrap();
    assert_eq!(
        copied.tap.card, presented.tap.card,
        "not the same certificate"
    );
    // A PIN-less read alone would name sekinin: that is why it grants nothing.
    assert_eq!(
        n.staff_card_login(&copied.tap.card).map(|(op, _)| op),
        Ok(boss)
    );
    assert_eq!(n.prove_card(&mut s, &copied, &pin), Err(Refusal::NotItsKey));
    drop(s);
    finish(&rig, inserted);

    // One JPKI try left: refused before any VERIFY, and the card keeps its last try.
    let mut spec = CardSpec::new(5, holder());
    spec.jpki_tries = 1;
    let inserted = rig.insert(VirtualCard::new(spec)).unwrap();
    let mut s = CardSession::new(rig.connect().unwrap());
    assert!(matches!(n.present_card(&mut s), Err(Refusal::LastTry)));
    drop(s);
    let apdus = finish(&rig, inserted);
    assert_eq!(
        pin_verifies(&apdus),
        0,
        "a VERIFY reached a card on its last try"
    );
}

/// The chain is checked against the manifest's card CAs before any PIN is asked: a
/// deployment that lists another CA refuses the card as an unknown issuer, one that lists
/// none lets no card grant authority, and an expired certificate is refused. (In process:
/// the virtual card answers directly, no reader needed.)
#[test]
fn the_chain_is_checked_against_the_manifests_card_cas_before_any_pin() {
    use kazashi_node::card::Chain;
    use kazashi_sync::{Manifest, SignedManifest};
    let (roster, fleet) = kazashi_tests::town_with(false).unwrap();
    let with_cas = |cas: Vec<Vec<u8>>| {
        let members = SignedManifest::decode(&fleet.manifest).unwrap();
        let mut m: Manifest = members.manifest().clone();
        m.version += 1;
        m.card_cas = cas;
        SignedManifest::sign(&m, &fleet.admin).unwrap().encode()
    };
    let lab = fleet.manifest.clone();
    let other = with_cas(vec![card::OTHER_CA.to_vec()]);
    let none = with_cas(vec![]);
    let mut w = World {
        roster: Arc::new(roster),
        fleet,
        dir: tempfile::tempdir().unwrap(),
    };
    let mut present = |manifest: &[u8], clock_ms: u64| {
        w.fleet.manifest = manifest.to_vec();
        w.dir = tempfile::tempdir().unwrap();
        let n = node(&w);
        n.station().clock().set(clock_ms);
        let mut card = VirtualCard::new(CardSpec::new(5, holder()));
        let r = n
            .present_card(&mut CardSession::new(&mut card))
            .map(|p| p.tap.card);
        let log = card.log();
        let verifies = pin_verifies(&log.lock().unwrap());
        (r, verifies)
    };
    // The lab's own CA: presented.
    assert!(present(&lab, START_MS).0.is_ok());
    // Expired (the fixture certificates end with 2035).
    assert_eq!(
        present(&lab, 2_083_000_000_000),
        (Err(Refusal::Chain(Chain::Expired)), 0)
    );
    // Another CA only: an unknown issuer.
    assert_eq!(
        present(&other, START_MS),
        (Err(Refusal::Chain(Chain::UnknownIssuer)), 0)
    );
    // None at all.
    assert_eq!(present(&none, START_MS), (Err(Refusal::NoCas), 0));
}

/// A copied certificate's failed signature is not charged to the genuine card (issue 24):
/// the copy accepts its own PIN and cannot sign with the certificate's key, so each try is
/// refused as a copy — but ten of them do not lock the card key, and the genuine card then
/// proves itself at once. Wrong PINs, which the genuine card could have caused, still count.
/// (In process: the virtual card answers directly.)
#[test]
fn copied_certificate_failures_do_not_lock_the_genuine_card() {
    use kazashi_node::possession::{MAX_FAILURES, Subject};
    let (roster, fleet) = kazashi_tests::town_with(false).unwrap();
    let w = World {
        roster: Arc::new(roster),
        fleet,
        dir: tempfile::tempdir().unwrap(),
    };
    let n = node(&w);
    let pin = Pin::new("1234").unwrap();
    let genuine_key = {
        let mut card = VirtualCard::new(CardSpec::new(5, holder()));
        n.present_card(&mut CardSession::new(&mut card))
            .unwrap()
            .tap
            .card
    };
    for _ in 0..2 * MAX_FAILURES {
        let mut spec = CardSpec::new(2, holder());
        spec.copied_cert_of = Some(5);
        let mut copy = VirtualCard::new(spec);
        let mut s = CardSession::new(&mut copy);
        let p = n.present_card(&mut s).unwrap();
        assert_eq!(p.tap.card, genuine_key);
        assert_eq!(n.prove_card(&mut s, &p, &pin), Err(Refusal::NotItsKey));
    }
    assert_eq!(n.locked_until(Subject::Card(&genuine_key)).unwrap(), None);
    let mut card = VirtualCard::new(CardSpec::new(5, holder()));
    let mut s = CardSession::new(&mut card);
    let p = n.present_card(&mut s).unwrap();
    assert_eq!(n.prove_card(&mut s, &p, &pin), Ok(genuine_key));
    drop(s);

    // Wrong PINs are still counted for the card key: the fifth in a row locks it (a fresh
    // card each time, so its own counter never reaches its last try).
    let wrong = Pin::new("9999").unwrap();
    for i in 1..=MAX_FAILURES {
        let mut card = VirtualCard::new(CardSpec::new(5, holder()));
        let mut s = CardSession::new(&mut card);
        let p = n.present_card(&mut s).unwrap();
        let r = n.prove_card(&mut s, &p, &wrong);
        if i < MAX_FAILURES {
            assert!(matches!(r, Err(Refusal::Card(_))), "{r:?}");
        } else {
            assert!(matches!(r, Err(Refusal::Locked { .. })), "{r:?}");
        }
    }
    assert!(
        n.locked_until(Subject::Card(&genuine_key))
            .unwrap()
            .is_some()
    );
}
