//! Every card flow end to end: the real `pcsc` crate, a real pcscd, vsmartcard's vpcd reader
//! and the in-repo virtual card. Each test prints "skipped: …" and returns where the rig
//! cannot run (no pcscd, not root); `.ci/run` installs what it needs and runs it as root.
//!
//! Every test ends by asserting, from the card's own record of the APDUs it received, that
//! nothing touched the individual number.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use kazashi_domain::CivilDate;
use kazashi_domain::ids::{OperatorId, PersonRef};
use kazashi_node::BundleScope;
use kazashi_node::card::{
    AuthCert, CardError, CardSession, Chain, Pin, PinFor, ReaderEvent, ReaderService,
};
use kazashi_node::reception::{self, BasicFourMatch};
use kazashi_sim::card::vpcd::InsertedCard;
use kazashi_sim::card::{self, CardSpec, Holder, Quirk, VirtualCard};
use kazashi_tests::card_rig::{READER, Rig, node, wait_for, world};
use std::sync::mpsc::Receiver;
use std::time::Duration;

macro_rules! rig {
    () => {
        match Rig::start() {
            Ok(r) => r,
            Err(why) => {
                kazashi_tests::card_rig::skip(&format!("card test: {why}"));
                return;
            }
        }
    };
}

fn holder() -> Holder {
    Holder {
        name: "髙橋 花子".into(),
        address: "かざし市中央一丁目2番3号".into(),
        birth: "19800229".into(),
        sex: "2".into(),
    }
}

/// Take the card off and assert the legal line held for everything it received.
fn finish(rig: &Rig, inserted: InsertedCard) -> Vec<Vec<u8>> {
    let apdus = inserted.apdus();
    rig.remove(inserted);
    let bad = card::individual_number_touches(&apdus);
    assert!(
        bad.is_empty(),
        "the individual number was touched: {bad:02X?}"
    );
    apdus
}

fn reads(apdus: &[Vec<u8>]) -> usize {
    apdus.iter().filter(|a| a.get(1) == Some(&0xB0)).count()
}

#[test]
fn pinless_tap_reads_the_certificate_in_the_fewest_reads() {
    let rig = rig!();
    let spec = CardSpec::new(0, holder());
    let cert = spec.certificate();
    let inserted = rig.insert(VirtualCard::new(spec)).unwrap();
    let mut s = CardSession::new(rig.connect().unwrap());
    let c = s.read_auth_cert().unwrap();
    assert_eq!(c.not_after(), AuthCert::parse(cert).unwrap().not_after());
    assert_eq!(
        c.chain(&[card::TEST_CA.to_vec()], c.not_after() - 1),
        Chain::Trusted
    );
    assert_eq!(
        c.chain(&[card::OTHER_CA.to_vec()], c.not_after() - 1),
        Chain::UnknownIssuer
    );
    drop(s);
    let apdus = finish(&rig, inserted);
    // SELECT AP, SELECT EF, then one READ per 256 bytes.
    assert_eq!(apdus.len(), 2 + cert.len().div_ceil(256), "{apdus:02X?}");
}

#[test]
fn pin_read_gives_the_basic_four() {
    let rig = rig!();
    let inserted = rig
        .insert(VirtualCard::new(CardSpec::new(1, holder())))
        .unwrap();
    let mut s = CardSession::new(rig.connect().unwrap());
    assert_eq!(s.pin_tries(PinFor::Text).unwrap(), 3);
    s.verify_pin(PinFor::Text, &Pin::new("１２３４").unwrap())
        .unwrap();
    let b = s.read_basic_four().unwrap();
    assert_eq!(b.name, "髙橋 花子");
    assert_eq!(b.birth_date, CivilDate::new(1980, 2, 29).unwrap());
    assert_eq!(b.address, "かざし市中央一丁目2番3号");
    drop(s);
    let apdus = finish(&rig, inserted);
    // SELECT AP, SELECT PIN EF, tries, VERIFY, SELECT EF 0002, one READ.
    assert_eq!(apdus.len(), 6, "{apdus:02X?}");
}

#[test]
fn long_ber_lengths_and_chunked_reads() {
    let rig = rig!();
    let mut spec = CardSpec::new(2, holder());
    spec.quirk = Quirk::LongBer;
    let inserted = rig.insert(VirtualCard::new(spec)).unwrap();
    let mut s = CardSession::new(rig.connect().unwrap());
    s.verify_pin(PinFor::Text, &Pin::new("1234").unwrap())
        .unwrap();
    let b = s.read_basic_four().unwrap();
    assert_eq!(b.name, "髙橋 花子");
    assert!(b.address.starts_with("かざし市中央一丁目2番3号（方書）"));
    assert!(b.address.len() > 256);
    drop(s);
    let apdus = finish(&rig, inserted);
    assert!(
        reads(&apdus) >= 2,
        "the long file took {} reads",
        reads(&apdus)
    );
}

#[test]
fn wrong_pin_counts_down_warns_and_locks() {
    let rig = rig!();
    for quirk in [Quirk::None, Quirk::LockedAnswers6983] {
        let mut spec = CardSpec::new(3, holder());
        spec.quirk = quirk;
        let inserted = rig.insert(VirtualCard::new(spec)).unwrap();
        let mut s = CardSession::new(rig.connect().unwrap());
        let bad = Pin::new("0000").unwrap();
        let e = s.verify_pin(PinFor::Text, &bad).unwrap_err();
        assert_eq!(
            e,
            CardError::WrongPin {
                which: PinFor::Text,
                left: 2
            }
        );
        assert_eq!(s.pin_tries(PinFor::Text).unwrap(), 2);
        let e = s.verify_pin(PinFor::Text, &bad).unwrap_err();
        assert_eq!(
            e,
            CardError::WrongPin {
                which: PinFor::Text,
                left: 1
            }
        );
        assert!(e.message_ja().contains("残り1回") && e.message_ja().contains("ロック"));
        assert_eq!(s.pin_tries(PinFor::Text).unwrap(), 1);
        let prompt = kazashi_node::card::pin_prompt_ja(PinFor::Text, 1);
        assert!(prompt.contains("残り1回"), "{prompt}");
        let e = s.verify_pin(PinFor::Text, &bad).unwrap_err();
        assert_eq!(e, CardError::PinLocked(PinFor::Text));
        assert!(
            e.message_ja().contains("市区町村の窓口"),
            "{}",
            e.message_ja()
        );
        assert_eq!(
            s.pin_tries(PinFor::Text),
            Err(CardError::PinLocked(PinFor::Text))
        );
        // The right PIN no longer opens it, and nothing is read.
        let good = Pin::new("1234").unwrap();
        assert_eq!(
            s.verify_pin(PinFor::Text, &good),
            Err(CardError::PinLocked(PinFor::Text))
        );
        assert_eq!(s.read_basic_four().unwrap_err(), CardError::PinNeeded);
        // Each VERIFY above was one APDU: nothing was retried behind the caller's back.
        let verifies = s
            .log()
            .iter()
            .filter(|x| x.command.ins == 0x20 && !x.command.data.is_empty())
            .count();
        assert_eq!(verifies, 4);
        drop(s);
        finish(&rig, inserted);
    }
    assert!(matches!(Pin::new("123"), Err(CardError::PinFormat)));
    assert!(matches!(Pin::new("12345"), Err(CardError::PinFormat)));
    assert!(matches!(Pin::new("12a4"), Err(CardError::PinFormat)));
}

#[test]
fn a_card_already_locked_says_so_before_any_try() {
    let rig = rig!();
    let mut spec = CardSpec::new(4, holder());
    spec.text_tries = 0;
    let inserted = rig.insert(VirtualCard::new(spec)).unwrap();
    let mut s = CardSession::new(rig.connect().unwrap());
    assert_eq!(
        s.pin_tries(PinFor::Text),
        Err(CardError::PinLocked(PinFor::Text))
    );
    // The tap needs no PIN and still works.
    assert!(s.read_auth_cert().is_ok());
    drop(s);
    finish(&rig, inserted);
}

#[test]
fn malformed_tlv_is_an_error_not_a_panic() {
    let rig = rig!();
    let mut spec = CardSpec::new(5, holder());
    spec.quirk = Quirk::MalformedTlv;
    let inserted = rig.insert(VirtualCard::new(spec)).unwrap();
    let mut s = CardSession::new(rig.connect().unwrap());
    s.verify_pin(PinFor::Text, &Pin::new("1234").unwrap())
        .unwrap();
    let e = s.read_basic_four().unwrap_err();
    assert!(matches!(e, CardError::Malformed(_)), "{e:?}");
    assert!(e.message_ja().contains("名簿検索"));
    drop(s);
    finish(&rig, inserted);
}

#[test]
fn a_card_that_is_not_a_my_number_card() {
    let rig = rig!();
    let mut spec = CardSpec::new(6, holder());
    spec.quirk = Quirk::NotMyNumberCard;
    let inserted = rig.insert(VirtualCard::new(spec)).unwrap();
    let mut s = CardSession::new(rig.connect().unwrap());
    assert_eq!(s.read_auth_cert().unwrap_err(), CardError::NotMyNumberCard);
    assert_eq!(
        s.pin_tries(PinFor::Text).unwrap_err(),
        CardError::NotMyNumberCard
    );
    assert!(
        CardError::NotMyNumberCard
            .message_ja()
            .contains("マイナンバーカードではない")
    );
    drop(s);
    finish(&rig, inserted);
}

#[test]
fn a_card_pulled_mid_read_is_removed_and_the_next_tap_works() {
    let rig = rig!();
    let mut spec = CardSpec::new(7, holder());
    spec.pull_at = Some(4); // the second READ BINARY of the certificate
    let inserted = rig.insert(VirtualCard::new(spec.clone())).unwrap();
    let mut s = CardSession::new(rig.connect().unwrap());
    let e = s.read_auth_cert().unwrap_err();
    assert_eq!(e, CardError::Removed, "{e:?}");
    assert!(e.message_ja().contains("カードが外されました"));
    drop(s);
    assert!(wait_for(Duration::from_secs(10), || {
        kazashi_tests::card_rig::card_present(false)
    }));
    finish(&rig, inserted);
    // Placed again, whole this time.
    spec.pull_at = None;
    let inserted = rig.insert(VirtualCard::new(spec)).unwrap();
    let mut s = CardSession::new(rig.connect().unwrap());
    assert!(s.read_auth_cert().is_ok());
    drop(s);
    finish(&rig, inserted);
}

#[test]
fn possession_check_signs_a_fresh_challenge() {
    let rig = rig!();
    let inserted = rig
        .insert(VirtualCard::new(CardSpec::new(0, holder())))
        .unwrap();
    let mut s = CardSession::new(rig.connect().unwrap());
    let cert = s.read_auth_cert().unwrap();
    let challenge = reception::challenge().unwrap();
    assert!(
        reception::possession_check(&mut s, &cert, &Pin::new("1234").unwrap(), &challenge).unwrap()
    );
    // The same signature does not verify for another card's certificate (a copied
    // certificate on a card without its key fails the check).
    let other = AuthCert::parse(CardSpec::new(1, holder()).certificate()).unwrap();
    let c2 = reception::challenge().unwrap();
    assert!(!reception::possession_check(&mut s, &other, &Pin::new("1234").unwrap(), &c2).unwrap());
    // A wrong JPKI PIN signs nothing.
    let e =
        reception::possession_check(&mut s, &cert, &Pin::new("9999").unwrap(), &c2).unwrap_err();
    assert_eq!(
        e,
        CardError::WrongPin {
            which: PinFor::Jpki,
            left: 2
        }
    );
    drop(s);
    finish(&rig, inserted);
}

#[test]
fn first_tap_binds_after_the_pin_then_a_tap_anywhere_finds_the_person() {
    let rig = rig!();
    let w = world(false);
    let mut a = node(&w, "S001");
    let mut b = node(&w, "S002");
    let op = OperatorId::new("staff01").unwrap();
    let resident = w.roster.entries()[17].clone();
    let spec = CardSpec::new(3, Holder::of(&resident));

    // At S001: the first tap finds no one; the PIN read matches the roster; bind.
    let inserted = rig.insert(VirtualCard::new(spec.clone())).unwrap();
    let mut s = CardSession::new(rig.connect().unwrap());
    let tap = a.card_tap(&mut s, &[card::TEST_CA.to_vec()]).unwrap();
    assert_eq!(tap.person, None);
    assert_eq!(tap.chain, Chain::Trusted);
    assert_eq!(s.pin_tries(PinFor::Text).unwrap(), 3);
    s.verify_pin(PinFor::Text, &Pin::new("1234").unwrap())
        .unwrap();
    let four = s.read_basic_four().unwrap();
    let BasicFourMatch::Strong(found) = a.match_basic_four(&four) else {
        panic!("no strong match for the card's basic four");
    };
    assert_eq!(found.person, resident.person);
    a.bind_card(op, tap.card, PersonRef::Roster(found.person))
        .unwrap();
    drop(s);
    finish(&rig, inserted);

    // Again at S001: the tap alone finds them, with no PIN.
    let inserted = rig.insert(VirtualCard::new(spec.clone())).unwrap();
    let mut s = CardSession::new(rig.connect().unwrap());
    let again = a.card_tap(&mut s, &[]).unwrap();
    assert_eq!(again.person, Some(PersonRef::Roster(resident.person)));
    assert_eq!(
        again.chain,
        Chain::UnknownIssuer,
        "no CA certificates were given"
    );
    drop(s);
    let apdus = finish(&rig, inserted);
    assert!(
        apdus.iter().all(|x| x.get(1) != Some(&0x20)),
        "a tap sent a VERIFY"
    );

    // At S002, once a USB bundle from S001 has arrived: the tap finds them there too.
    let inserted = rig.insert(VirtualCard::new(spec)).unwrap();
    let mut s = CardSession::new(rig.connect().unwrap());
    assert_eq!(b.card_tap(&mut s, &[]).unwrap().person, None);
    let bundle = a.export_bundle(BundleScope::All).unwrap();
    b.import_bundle(&bundle, "usb").unwrap();
    let mut s2 = CardSession::new(s.into_transport());
    assert_eq!(
        b.card_tap(&mut s2, &[]).unwrap().person,
        Some(PersonRef::Roster(resident.person))
    );
    drop(s2);
    finish(&rig, inserted);
}

#[test]
fn basic_four_matching_strong_weak_and_none() {
    let rig = rig!();
    let w = world(false);
    let mut a = node(&w, "S001");
    let resident = w.roster.entries()[5].clone();
    let read = |rig: &Rig, h: Holder| {
        let inserted = rig.insert(VirtualCard::new(CardSpec::new(2, h))).unwrap();
        let mut s = CardSession::new(rig.connect().unwrap());
        s.verify_pin(PinFor::Text, &Pin::new("1234").unwrap())
            .unwrap();
        let b = s.read_basic_four().unwrap();
        drop(s);
        finish(rig, inserted);
        b
    };
    // The same person as on the roster: a strong match.
    let mut h = Holder::of(&resident);
    let b = read(&rig, h.clone());
    assert!(
        matches!(a.match_basic_four(&b), BasicFourMatch::Strong(c) if c.person == resident.person)
    );
    // The card's address differs from the roster's (moved house, or someone from elsewhere who
    // shares name, birth date and sex): never a silent pick — the resident is offered first
    // and staff confirm.
    h.address = "別の町1-1".into();
    let b = read(&rig, h.clone());
    match a.match_basic_four(&b) {
        BasicFourMatch::Weak(found) => assert_eq!(
            found.first().map(|c| c.person),
            Some(resident.person),
            "the resident is the first candidate"
        ),
        other => panic!("a different address must leave the pick to staff: {other:?}"),
    }
    // Right name, another birth year: candidates for staff, never a silent pick.
    h.birth = format!("{:04}0101", resident.birth_date.year() - 20);
    h.address = resident.address.as_str().into();
    let b = read(&rig, h);
    match a.match_basic_four(&b) {
        BasicFourMatch::Strong(c) => panic!("a strong match on a wrong birth date: {c:?}"),
        BasicFourMatch::Weak(_) | BasicFourMatch::NotFound => {}
    }
    // Someone not on the roster.
    let b = read(&rig, holder());
    assert_eq!(a.match_basic_four(&b), BasicFourMatch::NotFound);
}

#[test]
fn staff_login_with_the_staff_members_own_card() {
    let rig = rig!();
    let w = world(false);
    let a = node(&w, "S001");
    let staff = OperatorId::new("kazashi-city-0042").unwrap();
    let spec = CardSpec::new(4, holder());
    let tap = |rig: &Rig| {
        let inserted = rig.insert(VirtualCard::new(spec.clone())).unwrap();
        let mut s = CardSession::new(rig.connect().unwrap());
        let t = a.card_tap(&mut s, &[]).unwrap();
        drop(s);
        finish(rig, inserted);
        t
    };
    let t = tap(&rig);
    assert_eq!(a.staff_card(&t.card).unwrap(), None);
    a.enrol_staff_card(&t.card, &staff).unwrap();
    assert_eq!(a.staff_card(&tap(&rig).card).unwrap(), Some(staff));
}

#[test]
fn admission_tickets_and_search_find_voters_without_a_card() {
    let w = world(true);
    let mut a = node(&w, "S001");
    let voter = w
        .roster
        .entries()
        .iter()
        .find(|e| e.voter.is_some())
        .unwrap()
        .clone();
    let n = voter
        .voter
        .as_ref()
        .unwrap()
        .list_number
        .as_str()
        .to_owned();
    assert_eq!(
        a.admission_ticket(&format!(" {n}\n")).unwrap(),
        voter.person
    );
    let wide = kazashi_tests::full_width_digits(&n);
    assert_eq!(a.admission_ticket(&wide).unwrap(), voter.person);
    assert!(a.admission_ticket("").is_err());
    assert!(a.admission_ticket("99-99999").is_err());
    assert!(a.admission_ticket("<script>").is_err());
    // Search: by reading in katakana, and by name with birth date (和暦).
    let kana: String = voter
        .kana
        .as_str()
        .chars()
        .map(|c| match c {
            'ぁ'..='ゖ' => char::from_u32(c as u32 + 0x60).unwrap_or(c),
            _ => c,
        })
        .collect();
    assert!(a.search(&kana, 50).contains(&voter.person));
    let b = voter.birth_date;
    let (era, base) = if b.year() >= 1989 {
        ("H", 1988)
    } else {
        ("S", 1925)
    };
    let q = format!(
        "{} {era}{}.{}.{}",
        voter.name.as_str(),
        b.year() - base,
        b.month(),
        b.day()
    );
    if b.year() < 2019 && b.year() > 1926 {
        assert_eq!(a.search(&q, 50), vec![voter.person], "{q}");
    }
    assert!(a.search("存在しない名前", 50).is_empty());
}

fn next(rx: &Receiver<ReaderEvent>, want: impl Fn(&ReaderEvent) -> bool) -> ReaderEvent {
    loop {
        match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(e) if want(&e) => return e,
            Ok(_) => {}
            Err(e) => panic!("no such reader event: {e}"),
        }
    }
}

#[test]
fn the_reader_service_follows_cards_and_pcscd() {
    let rig = rig!();
    let service = ReaderService::start();
    let rx = service.events();
    let e = next(
        rx,
        |e| matches!(e, ReaderEvent::Changed(s) if s.readers.iter().any(|r| r.name == READER)),
    );
    assert_eq!(e.message_ja(), "カードをかざしてください");
    let inserted = rig
        .insert(VirtualCard::new(CardSpec::new(0, holder())))
        .unwrap();
    let e = next(rx, |e| matches!(e, ReaderEvent::CardInserted(_)));
    assert_eq!(e, ReaderEvent::CardInserted(READER.into()));
    assert_eq!(e.message_ja(), "カードを読み取っています");
    finish(&rig, inserted);
    let e = next(rx, |e| matches!(e, ReaderEvent::CardRemoved(_)));
    assert_eq!(e.message_ja(), "カードが外されました");
    if !rig.owns_pcscd() {
        kazashi_tests::card_rig::skip(
            "the pcscd restart part (pcscd is the system's, not this test's)",
        );
        return;
    }
    rig.stop_pcscd().unwrap();
    let e = next(rx, |e| matches!(e, ReaderEvent::Changed(s) if !s.service));
    assert!(e.message_ja().contains("pcscd"), "{}", e.message_ja());
    rig.restart_pcscd().unwrap();
    next(
        rx,
        |e| matches!(e, ReaderEvent::Changed(s) if s.service && s.readers.iter().any(|r| r.name == READER)),
    );
    // And cards are seen again after the restart.
    let inserted = rig
        .insert(VirtualCard::new(CardSpec::new(0, holder())))
        .unwrap();
    next(rx, |e| matches!(e, ReaderEvent::CardInserted(_)));
    finish(&rig, inserted);
    // No reader at all (pcscd with none configured), then the reader back.
    rig.restart_pcscd_without_readers().unwrap();
    let e = next(
        rx,
        |e| matches!(e, ReaderEvent::Changed(s) if s.service && s.readers.is_empty()),
    );
    assert_eq!(e.message_ja(), "リーダーが接続されていません");
    assert_eq!(e.message_en(), "No card reader is connected");
    rig.restart_pcscd().unwrap();
    next(
        rx,
        |e| matches!(e, ReaderEvent::Changed(s) if s.readers.iter().any(|r| r.name == READER)),
    );
}

#[test]
fn a_staff_lookup_binds_a_card_without_the_pin() {
    let rig = rig!();
    let w = world(false);
    let mut a = node(&w, "S002");
    let resident = w.roster.entries()[23].clone();
    let spec = CardSpec::new(5, Holder::of(&resident));
    let inserted = rig.insert(VirtualCard::new(spec)).unwrap();
    let mut s = CardSession::new(rig.connect().unwrap());
    let tap = a.card_tap(&mut s, &[]).unwrap();
    assert_eq!(tap.person, None);
    // The resident has forgotten the PIN: staff find them by name and birth date instead.
    let q = format!("{} {}", resident.name.as_str(), resident.birth_date);
    let found = a.search(&q, 10);
    assert_eq!(found, vec![resident.person], "{q}");
    let op = OperatorId::new("staff02").unwrap();
    a.bind_card(op, tap.card, PersonRef::Roster(found[0]))
        .unwrap();
    let again = a.card_tap(&mut s, &[]).unwrap();
    assert_eq!(again.person, Some(PersonRef::Roster(resident.person)));
    drop(s);
    let apdus = finish(&rig, inserted);
    assert!(
        apdus.iter().all(|x| x.get(1) != Some(&0x20)),
        "no PIN was asked"
    );
}
