//! Every card flow end to end: the real `pcsc` crate, a real pcscd, vsmartcard's vpcd reader
//! and the in-repo virtual card. Each test prints "skipped: …" and returns where the rig
//! cannot run (no pcscd, not root); `.ci/run` installs and runs it.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use kazashi_node::card::{CardError, CardSession, Pin, PinFor};
use kazashi_sim::card::{self, CardSpec, Holder, Quirk, VirtualCard};
use kazashi_tests::card_rig::Rig;

macro_rules! rig {
    () => {
        match Rig::start() {
            Ok(r) => r,
            Err(why) => {
                println!("skipped: {why}");
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

#[test]
fn pinless_tap_reads_the_certificate() {
    let rig = rig!();
    let spec = CardSpec::new(0, holder());
    let cert = spec.certificate();
    let inserted = rig.insert(VirtualCard::new(spec)).unwrap();
    let mut s = CardSession::new(rig.connect().unwrap());
    let c = s.read_auth_cert().unwrap();
    assert_eq!(
        c.not_after(),
        kazashi_node::card::AuthCert::parse(cert)
            .unwrap()
            .not_after()
    );
    let apdus = inserted.apdus();
    assert_eq!(apdus.len(), 2 + cert.len().div_ceil(256), "{apdus:02X?}");
    assert!(card::individual_number_touches(&apdus).is_empty());
    drop(s);
    rig.remove(inserted);
}

#[test]
fn pin_read_gives_the_basic_four() {
    let rig = rig!();
    let inserted = rig
        .insert(VirtualCard::new(CardSpec::new(1, holder())))
        .unwrap();
    let mut s = CardSession::new(rig.connect().unwrap());
    assert_eq!(s.pin_tries(PinFor::Text).unwrap(), 3);
    s.verify_pin(PinFor::Text, &Pin::new("1234").unwrap())
        .unwrap();
    let b = s.read_basic_four().unwrap();
    assert_eq!(b.name, "髙橋 花子");
    assert_eq!(b.birth_date.to_string(), "1980-02-29");
    assert!(card::individual_number_touches(&inserted.apdus()).is_empty());
    drop(s);
    rig.remove(inserted);
}

#[test]
fn wrong_pin_counts_down_and_locks() {
    let rig = rig!();
    for quirk in [Quirk::None, Quirk::LockedAnswers6983] {
        let mut spec = CardSpec::new(2, holder());
        spec.quirk = quirk;
        let inserted = rig.insert(VirtualCard::new(spec)).unwrap();
        let mut s = CardSession::new(rig.connect().unwrap());
        let bad = Pin::new("0000").unwrap();
        assert_eq!(
            s.verify_pin(PinFor::Text, &bad),
            Err(CardError::WrongPin {
                which: PinFor::Text,
                left: 2
            })
        );
        assert_eq!(s.pin_tries(PinFor::Text).unwrap(), 2);
        assert_eq!(
            s.verify_pin(PinFor::Text, &bad),
            Err(CardError::WrongPin {
                which: PinFor::Text,
                left: 1
            })
        );
        assert_eq!(
            s.verify_pin(PinFor::Text, &bad),
            Err(CardError::PinLocked(PinFor::Text))
        );
        assert_eq!(
            s.pin_tries(PinFor::Text),
            Err(CardError::PinLocked(PinFor::Text))
        );
        // The right PIN no longer opens it.
        assert_eq!(
            s.verify_pin(PinFor::Text, &Pin::new("1234").unwrap()),
            Err(CardError::PinLocked(PinFor::Text))
        );
        assert_eq!(s.read_basic_four().unwrap_err(), CardError::PinNeeded);
        drop(s);
        rig.remove(inserted);
    }
}
