//! A virtual My Number Card: the JPKI and 券面事項入力補助 applications with configurable
//! holders, PINs and faults, answering APDUs as the brief (section 3) describes the card.
//!
//! It is written apart from the client in `kazashi_node::card` (its own TLV encoder, its own
//! file table) so the two check each other, and it records every APDU it receives, so tests
//! can assert what a flow sent without trusting the client's own log. [`vpcd`] puts it on a
//! real pcscd through vsmartcard's vpcd driver.
//!
//! The keys and certificates are test material made by `sim/fixtures/cards/make.sh`.

pub mod vpcd;

use kazashi_node::card::{CardError, Transport};
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::Pkcs1v15Sign;
use rsa::pkcs8::DecodePrivateKey;
use std::sync::{Arc, Mutex};

macro_rules! fixtures {
    ($($n:literal),*) => {
        [$((
            include_bytes!(concat!("../../fixtures/cards/card-", $n, ".crt.der")).as_slice(),
            include_bytes!(concat!("../../fixtures/cards/card-", $n, ".key.der")).as_slice(),
        )),*]
    };
}

/// The fixture cards' (certificate, PKCS#8 key), DER.
const FIXTURES: [(&[u8], &[u8]); 8] = fixtures!("1", "2", "3", "4", "5", "6", "7", "8");

/// The CA that issued every fixture card's certificate.
pub const TEST_CA: &[u8] = include_bytes!("../../fixtures/cards/ca.der");
/// A CA that issued none of them.
pub const OTHER_CA: &[u8] = include_bytes!("../../fixtures/cards/other-ca.der");

/// How many distinct fixture cards (keys and certificates) there are.
pub const FIXTURE_CARDS: usize = FIXTURES.len();

/// The answer-to-reset the virtual card gives (T=1, as a My Number Card's).
pub const ATR: [u8; 9] = [0x3B, 0xE0, 0x00, 0xFF, 0x81, 0x31, 0xFE, 0x45, 0x14];

const AID_JPKI: [u8; 10] = [0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01];
const AID_TEXT: [u8; 10] = [0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x08];
const AID_FACE: [u8; 10] = [0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x02];

/// The basic four items on a card, as written on it.
#[derive(Clone)]
pub struct Holder {
    pub name: String,
    pub address: String,
    /// `YYYYMMDD`.
    pub birth: String,
    /// `"1"`, `"2"` or `"9"`.
    pub sex: String,
}

impl Holder {
    /// The basic four of a roster entry, as its card would carry them.
    pub fn of(e: &kazashi_domain::RosterEntry) -> Self {
        let b = e.birth_date;
        Holder {
            name: e.name.as_str().to_owned(),
            address: e.address.as_str().to_owned(),
            birth: format!("{:04}{:02}{:02}", b.year(), b.month(), b.day()),
            sex: match e.sex {
                kazashi_domain::roster::Sex::Male => "1",
                kazashi_domain::roster::Sex::Female => "2",
                kazashi_domain::roster::Sex::Unspecified => "9",
            }
            .into(),
        }
    }
}

/// What kind of card, and which faults it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quirk {
    None,
    /// Every BER length in the long `82 xx xx` form, and an address long enough that the file
    /// takes several reads.
    LongBer,
    /// The basic-four file's TLV lengths are wrong.
    MalformedTlv,
    /// A card with neither application (a transit card, an old 住基カード).
    NotMyNumberCard,
    /// A locked PIN answers `69 83` instead of `63 C0`.
    LockedAnswers6983,
}

/// One virtual card.
#[derive(Clone)]
pub struct CardSpec {
    /// Which fixture key and certificate, 0-based (wraps around).
    pub fixture: usize,
    pub holder: Holder,
    pub text_pin: [u8; 4],
    pub text_tries: u8,
    pub jpki_pin: [u8; 4],
    pub jpki_tries: u8,
    pub quirk: Quirk,
    /// The card leaves the reader (the connection drops) instead of answering this many'th
    /// APDU (1-based) — "pulled mid-read".
    pub pull_at: Option<usize>,
    /// The JPKI certificate of another fixture card, copied onto this one (it is readable
    /// without a PIN), while this card's own key signs: the attack a possession check stops.
    pub copied_cert_of: Option<usize>,
    /// A contactless card with no application at all (a transport IC card, a blank card):
    /// it answers only the reader's GET DATA (`FF CA 00 00 00`) with this identifier — an ISO
    /// 14443 UID (4, 7, 10 bytes) or a FeliCa IDm (8) — and `6A 82` / `6E 00` to the rest.
    pub uid: Option<Vec<u8>>,
}

impl CardSpec {
    pub fn new(fixture: usize, holder: Holder) -> Self {
        CardSpec {
            fixture,
            holder,
            text_pin: *b"1234",
            text_tries: 3,
            jpki_pin: *b"1234",
            jpki_tries: 3,
            quirk: Quirk::None,
            pull_at: None,
            copied_cert_of: None,
            uid: None,
        }
    }

    /// A card that is only an identifier (see [`CardSpec::uid`]): a FeliCa IDm when 8 bytes
    /// long, else an ISO 14443 UID.
    pub fn uid_only(uid: &[u8]) -> Self {
        let mut spec = CardSpec::new(
            0,
            Holder {
                name: String::new(),
                address: String::new(),
                birth: String::new(),
                sex: String::new(),
            },
        );
        spec.uid = Some(uid.to_vec());
        spec
    }

    /// The certificate this card carries (DER): its fixture's, or the copied one.
    pub fn certificate(&self) -> &'static [u8] {
        fixture(self.copied_cert_of.unwrap_or(self.fixture)).0
    }
}

fn fixture(i: usize) -> (&'static [u8], &'static [u8]) {
    FIXTURES
        .get(i % FIXTURES.len())
        .copied()
        .unwrap_or((&[], &[]))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum App {
    Jpki,
    Text,
    Face,
}

/// Every APDU a card received, raw.
pub type ApduLog = Arc<Mutex<Vec<Vec<u8>>>>;

/// A card in its power-on state.
pub struct VirtualCard {
    spec: CardSpec,
    app: Option<App>,
    ef: Option<u16>,
    text_ok: bool,
    jpki_ok: bool,
    key: Option<RsaPrivateKey>,
    received: usize,
    log: ApduLog,
}

const OK: [u8; 2] = [0x90, 0x00];

fn sw(v: u16) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

/// BER length, short or `81`/`82` form; `long` forces `82`.
fn ber_len(n: usize, long: bool) -> Vec<u8> {
    if long || n > 0xFF {
        vec![0x82, (n >> 8) as u8, n as u8]
    } else if n > 0x7F {
        vec![0x81, n as u8]
    } else {
        vec![n as u8]
    }
}

fn tlv(tag: u16, value: &[u8], long: bool) -> Vec<u8> {
    let mut v = tag.to_be_bytes().to_vec();
    v.extend(ber_len(value.len(), long));
    v.extend_from_slice(value);
    v
}

impl VirtualCard {
    pub fn new(spec: CardSpec) -> Self {
        VirtualCard {
            spec,
            app: None,
            ef: None,
            text_ok: false,
            jpki_ok: false,
            key: None,
            received: 0,
            log: ApduLog::default(),
        }
    }

    pub fn spec(&self) -> &CardSpec {
        &self.spec
    }

    /// The raw log of APDUs received (shared: it can be read after the card moved elsewhere).
    pub fn log(&self) -> ApduLog {
        self.log.clone()
    }

    /// Power cycle: selections and verified PINs are forgotten; tries are kept.
    pub fn reset(&mut self) {
        self.app = None;
        self.ef = None;
        self.text_ok = false;
        self.jpki_ok = false;
    }

    /// Has the card been pulled (its `pull_at` reached)? Then it answers nothing more.
    pub fn pulled(&self) -> bool {
        self.spec.pull_at.is_some_and(|n| self.received >= n)
    }

    fn file(&self, fid: u16) -> Option<Vec<u8>> {
        let h = &self.spec.holder;
        match (self.app?, fid) {
            (App::Jpki, 0x000A) => Some(self.spec.certificate().to_vec()),
            (App::Jpki, 0x000B) => Some(TEST_CA.to_vec()),
            (App::Text, 0x0002) => {
                let long = self.spec.quirk == Quirk::LongBer;
                let address = if long {
                    format!("{}{}", h.address, "（方書）".repeat(30))
                } else {
                    h.address.clone()
                };
                let mut inner = tlv(0xDF21, &[0x01, 0x02, 0x03], long);
                inner.extend(tlv(0xDF22, h.name.as_bytes(), long));
                inner.extend(tlv(0xDF23, address.as_bytes(), long));
                inner.extend(tlv(0xDF24, h.birth.as_bytes(), long));
                inner.extend(tlv(0xDF25, h.sex.as_bytes(), long));
                let mut f = tlv(0xFF20, &inner, long);
                if self.spec.quirk == Quirk::MalformedTlv {
                    // The name's length claims more than there is.
                    if let Some(p) = f.windows(2).position(|w| w == [0xDF, 0x22])
                        && let Some(b) = f.get_mut(p + 2)
                    {
                        *b = 0x7F;
                    }
                    if let Some(b) = f.get_mut(2) {
                        *b = 0x7F;
                    }
                }
                f.resize(f.len().max(0x200), 0xFF);
                Some(f)
            }
            // The individual number: on the card, never to be read by Kazashi. A fake number.
            (App::Text, 0x0001) => Some(b"000000000000".to_vec()),
            (App::Face, 0x0005) => Some(b"000000000000".to_vec()),
            _ => None,
        }
    }

    fn exists(&self, fid: u16) -> bool {
        matches!(
            (self.app, fid),
            (Some(App::Jpki), 0x000A | 0x000B | 0x0017 | 0x0018)
                | (Some(App::Text), 0x0001 | 0x0002 | 0x0011)
                | (Some(App::Face), 0x0005)
        )
    }

    fn tries(&mut self) -> Option<&mut u8> {
        match (self.app?, self.ef?) {
            (App::Text, 0x0011) => Some(&mut self.spec.text_tries),
            (App::Jpki, 0x0018) => Some(&mut self.spec.jpki_tries),
            _ => None,
        }
    }

    fn locked_sw(&self) -> Vec<u8> {
        if self.spec.quirk == Quirk::LockedAnswers6983 {
            sw(0x6983)
        } else {
            sw(0x63C0)
        }
    }

    fn record(&mut self, apdu: &[u8]) {
        if let Ok(mut l) = self.log.lock() {
            l.push(apdu.to_vec());
        }
        self.received += 1;
    }

    /// Take one C-APDU off the reader: its answer, or `None` when the card leaves the reader
    /// instead (its `pull_at` is reached; that APDU is still recorded).
    pub fn receive(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
        if self.spec.pull_at.is_some_and(|n| self.received + 1 >= n) {
            self.record(apdu);
            return None;
        }
        Some(self.answer(apdu))
    }

    /// Answer one C-APDU with an R-APDU (data and status word).
    pub fn answer(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.record(apdu);
        let [cla, ins, p1, p2, rest @ ..] = apdu else {
            return sw(0x6700);
        };
        let (data, le): (&[u8], Option<usize>) = match rest {
            [] => (&[], None),
            [le] => (&[], Some(if *le == 0 { 256 } else { usize::from(*le) })),
            [lc, body @ ..] => {
                let n = usize::from(*lc);
                match (body.get(..n), body.get(n..)) {
                    (Some(d), Some([])) => (d, None),
                    (Some(d), Some([le])) => {
                        (d, Some(if *le == 0 { 256 } else { usize::from(*le) }))
                    }
                    _ => return sw(0x6700),
                }
            }
        };
        if let Some(uid) = &self.spec.uid {
            // The reader's GET DATA: the identifier whole (Le 00), else the card has no
            // application to select and knows no other command.
            return match (cla, ins, p1, p2, le) {
                (0xFF, 0xCA, 0x00, 0x00, Some(256)) if data.is_empty() => {
                    let mut r = uid.clone();
                    r.extend(OK);
                    r
                }
                (0xFF, 0xCA, _, _, _) => sw(0x6A81),
                (0x00, _, _, _, _) => sw(0x6A82),
                _ => sw(0x6E00),
            };
        }
        if self.spec.quirk == Quirk::NotMyNumberCard {
            return sw(0x6A82);
        }
        match (cla, ins, p1, p2) {
            (0x00, 0xA4, 0x04, 0x0C) => {
                let app = if data == AID_JPKI {
                    App::Jpki
                } else if data == AID_TEXT {
                    App::Text
                } else if data == AID_FACE {
                    App::Face
                } else {
                    return sw(0x6A82);
                };
                self.app = Some(app);
                self.ef = None;
                OK.to_vec()
            }
            (0x00, 0xA4, 0x02, 0x0C) => {
                let [a, b] = data else { return sw(0x6A87) };
                let fid = u16::from_be_bytes([*a, *b]);
                if !self.exists(fid) {
                    return sw(0x6A82);
                }
                self.ef = Some(fid);
                OK.to_vec()
            }
            (0x00, 0xB0, p1, p2) if p1 & 0x80 == 0 => {
                let Some(ef) = self.ef else { return sw(0x6986) };
                if self.app == Some(App::Text) && ef == 0x0002 && !self.text_ok {
                    return sw(0x6982);
                }
                let Some(file) = self.file(ef) else {
                    return sw(0x6986);
                };
                let offset = usize::from(u16::from_be_bytes([*p1, *p2]));
                if offset >= file.len() {
                    return sw(0x6B00);
                }
                let want = le.unwrap_or(256);
                let end = (offset + want).min(file.len());
                let mut r = file.get(offset..end).unwrap_or_default().to_vec();
                r.extend(if end - offset < want {
                    sw(0x6282)
                } else {
                    OK.to_vec()
                });
                r
            }
            (0x00, 0x20, 0x00, 0x80) => {
                let (text_pin, jpki_pin) = (self.spec.text_pin, self.spec.jpki_pin);
                let (app, ef) = (self.app, self.ef);
                let locked = self.locked_sw();
                let Some(tries) = self.tries() else {
                    return sw(0x6986);
                };
                if *tries == 0 {
                    return locked;
                }
                if data.is_empty() {
                    return sw(0x63C0 | u16::from(*tries));
                }
                let right = match (app, ef) {
                    (Some(App::Text), Some(0x0011)) => data == text_pin,
                    _ => data == jpki_pin,
                };
                if right {
                    *tries = 3;
                    match app {
                        Some(App::Text) => self.text_ok = true,
                        _ => self.jpki_ok = true,
                    }
                    OK.to_vec()
                } else {
                    *tries -= 1;
                    sw(0x63C0 | u16::from(*tries))
                }
            }
            (0x80, 0x2A, 0x00, 0x80) => {
                if self.app != Some(App::Jpki) || self.ef != Some(0x0017) {
                    return sw(0x6986);
                }
                if !self.jpki_ok {
                    return sw(0x6982);
                }
                if self.key.is_none() {
                    self.key = RsaPrivateKey::from_pkcs8_der(fixture(self.spec.fixture).1).ok();
                }
                let Some(key) = &self.key else {
                    return sw(0x6F00);
                };
                match key.sign(Pkcs1v15Sign::new_unprefixed(), data) {
                    Ok(mut s) => {
                        s.extend(OK);
                        s
                    }
                    Err(_) => sw(0x6A80),
                }
            }
            (0x00, _, _, _) | (0x80, _, _, _) => sw(0x6D00),
            _ => sw(0x6E00),
        }
    }
}

/// In-process use (benchmarks, the demo): the card answers directly; a pulled card is
/// "removed".
impl Transport for VirtualCard {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        if self.pulled() {
            return Err(CardError::Removed);
        }
        self.receive(apdu).ok_or(CardError::Removed)
    }
}

/// What a test asserts of every flow: the raw APDUs a card received never select 券面AP,
/// never select EF 0001 while 券面事項入力補助AP is selected (nor EF 0005 in 券面AP), and never
/// VERIFY with 12 bytes (照合番号A). Returns the offending APDUs.
pub fn individual_number_touches(log: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut app: Option<App> = None;
    let mut bad = Vec::new();
    for a in log {
        match a.as_slice() {
            [0x00, 0xA4, 0x04, _, 0x0A, aid @ ..] => {
                app = if aid == AID_TEXT {
                    Some(App::Text)
                } else if aid == AID_JPKI {
                    Some(App::Jpki)
                } else {
                    Some(App::Face)
                };
                if aid == AID_FACE {
                    bad.push(a.clone());
                }
            }
            [0x00, 0xA4, 0x02, _, 0x02, 0x00, 0x01] if app == Some(App::Text) => {
                bad.push(a.clone())
            }
            [0x00, 0xA4, 0x02, _, 0x02, 0x00, 0x05] if app == Some(App::Face) => {
                bad.push(a.clone())
            }
            [_, 0x20, _, _, 12, ..] => bad.push(a.clone()),
            // READ BINARY with a short file id (P1 bit 8) naming EF 01 or EF 05.
            [0x00, 0xB0, p1, ..] if p1 & 0x80 != 0 && matches!(p1 & 0x1F, 0x01 | 0x05) => {
                bad.push(a.clone())
            }
            _ => {}
        }
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> VirtualCard {
        VirtualCard::new(CardSpec::new(
            0,
            Holder {
                name: "山田 太郎".into(),
                address: "かざし市中央1-2-3".into(),
                birth: "19700101".into(),
                sex: "1".into(),
            },
        ))
    }

    #[test]
    fn the_legal_line_check_sees_every_way_to_the_number() {
        let text = [&[0x00, 0xA4, 0x04, 0x0C, 0x0A][..], &AID_TEXT].concat();
        let face = [&[0x00, 0xA4, 0x04, 0x0C, 0x0A][..], &AID_FACE].concat();
        let jpki = [&[0x00, 0xA4, 0x04, 0x0C, 0x0A][..], &AID_JPKI].concat();
        let ef = |f: u8| vec![0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, f];
        let clean = vec![jpki.clone(), ef(0x01), text.clone(), ef(0x02), ef(0x11)];
        assert!(
            individual_number_touches(&clean).is_empty(),
            "EF 0001 of JPKI is not the number"
        );
        assert_eq!(
            individual_number_touches(&[text.clone(), ef(0x01)]).len(),
            1
        );
        assert_eq!(
            individual_number_touches(std::slice::from_ref(&face)).len(),
            1
        );
        assert_eq!(individual_number_touches(&[face, ef(0x05)]).len(), 2);
        let pin_a = [&[0x00, 0x20, 0x00, 0x80, 12][..], b"123456789012"].concat();
        assert_eq!(individual_number_touches(&[text.clone(), pin_a]).len(), 1);
        assert_eq!(
            individual_number_touches(&[text, vec![0x00, 0xB0, 0x81, 0x00, 0x00]]).len(),
            1
        );
    }

    /// A card with a copied certificate shows the victim's certificate but signs with its
    /// own key: the possession check refuses it, and passes the genuine card.
    #[test]
    fn a_copied_certificate_fails_the_possession_check() {
        use kazashi_node::card::{AuthCert, CardSession, Pin};
        let holder = card().spec().holder.clone();
        let genuine = VirtualCard::new(CardSpec::new(3, holder.clone()));
        let mut copy_spec = CardSpec::new(0, holder);
        copy_spec.copied_cert_of = Some(3);
        let copy = VirtualCard::new(copy_spec);
        let pin = Pin::new("1234").unwrap();
        let mut s = CardSession::new(genuine);
        let cert = s.read_auth_cert().unwrap();
        let c = [7u8; 32];
        assert!(kazashi_node::reception::possession_check(&mut s, &cert, &pin, &c).unwrap());
        let mut s = CardSession::new(copy);
        let copied = s.read_auth_cert().unwrap();
        let d = kazashi_domain::DeploymentId([1; 16]);
        assert_eq!(
            copied.card_key(&d),
            cert.card_key(&d),
            "not the same certificate"
        );
        assert_eq!(
            copied.chain(&[TEST_CA.to_vec()], copied.not_after() - 1),
            kazashi_node::card::Chain::Trusted
        );
        assert!(!kazashi_node::reception::possession_check(&mut s, &copied, &pin, &c).unwrap());
        assert!(AuthCert::parse(fixture(0).0).unwrap().card_key(&d) != cert.card_key(&d));
    }

    #[test]
    fn the_card_keeps_its_secrets_until_the_pin() {
        let mut c = card();
        let sel_text = [&[0x00, 0xA4, 0x04, 0x0C, 0x0A][..], &AID_TEXT].concat();
        assert_eq!(c.answer(&sel_text), OK);
        assert_eq!(c.answer(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x02]), OK);
        assert_eq!(c.answer(&[0x00, 0xB0, 0x00, 0x00, 0x00]), sw(0x6982));
        assert_eq!(c.answer(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x11]), OK);
        assert_eq!(c.answer(&[0x00, 0x20, 0x00, 0x80]), sw(0x63C3));
        assert_eq!(
            c.answer(&[0x00, 0x20, 0x00, 0x80, 0x04, b'1', b'2', b'3', b'4']),
            OK
        );
        assert_eq!(c.answer(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x02]), OK);
        let r = c.answer(&[0x00, 0xB0, 0x00, 0x00, 0x00]);
        assert_eq!(r.get(..2), Some(&[0xFF, 0x20][..]));
        // A reset forgets the PIN.
        c.reset();
        assert_eq!(c.answer(&sel_text), OK);
        assert_eq!(c.answer(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x02]), OK);
        assert_eq!(c.answer(&[0x00, 0xB0, 0x00, 0x00, 0x00]), sw(0x6982));
        // Malformed APDUs get 6700, not a panic.
        assert_eq!(c.answer(&[0x00, 0xA4]), sw(0x6700));
        assert_eq!(c.answer(&[0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3]), sw(0x6700));
    }
}
