//! The card parsers and flows take any bytes a card (or a forged card) can send: they answer
//! with an error, never a panic.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use kazashi_node::card::cert::AuthCert;
use kazashi_node::card::{CardError, CardSession, Pin, PinFor, Transport, tlv};
use proptest::prelude::*;

const CERT: &[u8] = include_bytes!("../../sim/fixtures/cards/card-1.crt.der");

fn basic_four_file() -> Vec<u8> {
    let mut inner = vec![0xDF, 0x21, 0x01, 0x00];
    for (tag, v) in [
        (0x22u8, "山田 太郎".as_bytes()),
        (0x23, "かざし市中央1-2-3".as_bytes()),
        (0x24, b"19700101".as_slice()),
        (0x25, b"1".as_slice()),
    ] {
        inner.extend([0xDF, tag, v.len() as u8]);
        inner.extend_from_slice(v);
    }
    let mut f = vec![0xFF, 0x20, 0x81, inner.len() as u8];
    f.extend(inner);
    f
}

/// A card that answers with scripted bytes, then 9000s.
struct Scripted(Vec<Vec<u8>>);

impl Transport for Scripted {
    fn transmit(&mut self, _apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        if self.0.is_empty() {
            Ok(vec![0x90, 0x00])
        } else {
            Ok(self.0.remove(0))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn tlv_and_certificate_parsers_take_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = tlv::basic_four(&bytes);
        let _ = tlv::total_len(&bytes);
        let _ = tlv::read(&bytes);
        let _ = AuthCert::parse(&bytes);
    }

    #[test]
    fn damaged_real_files_are_refused_or_read(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        for good in [basic_four_file(), CERT.to_vec()] {
            let mut f = good.clone();
            for (at, v) in &flips {
                let i = at.index(f.len());
                f[i] = *v;
            }
            let _ = tlv::basic_four(&f);
            let _ = AuthCert::parse(&f);
            let short = &good[..cut.index(good.len())];
            prop_assert!(tlv::basic_four(short).is_err());
            prop_assert!(AuthCert::parse(short).is_err());
        }
    }

    #[test]
    fn flows_take_any_answers(
        answers in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..12),
    ) {
        let mut s = CardSession::new(Scripted(answers.clone()));
        let _ = s.read_auth_cert();
        let mut s = CardSession::new(Scripted(answers.clone()));
        let _ = s.pin_tries(PinFor::Text);
        let _ = s.verify_pin(PinFor::Text, &Pin::new("1234").unwrap());
        let _ = s.read_basic_four();
        let mut s = CardSession::new(Scripted(answers));
        let _ = s.sign(b"challenge");
    }
}

#[test]
fn the_fixture_files_parse() {
    assert_eq!(
        tlv::basic_four(&basic_four_file()).unwrap().name,
        "山田 太郎"
    );
    assert!(AuthCert::parse(CERT).is_ok());
}
