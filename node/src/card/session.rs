//! One card session: the flows of a check-in as sequences of APDUs over any [`Transport`],
//! behind the legal-line guard. Sans-IO in spirit: the transport is the only I/O, so the same
//! code runs over pcscd, an in-process emulator, or a recorded trace.

use super::CardError;
use super::apdu::{self, AID_FACE, AID_JPKI, AID_TEXT, Command, Response, ef};
use super::cert::{AuthCert, digest_info};
use super::tlv::{self, BasicFour};
use zeroize::{Zeroize, Zeroizing};

/// Something that carries one APDU to the card and its answer back.
pub trait Transport {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError>;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        (**self).transmit(apdu)
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        (**self).transmit(apdu)
    }
}

/// The card application a PIN belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinFor {
    /// 券面事項入力補助用暗証番号 (the basic four items).
    Text,
    /// 利用者証明用電子証明書の暗証番号 (JPKI authentication; the possession check).
    Jpki,
}

/// A 4-digit PIN, typed by the resident; wiped when dropped, never shown or logged.
pub struct Pin(Zeroizing<[u8; 4]>);

impl Pin {
    /// Exactly four ASCII digits (full-width digits are taken as typed on a Japanese IME).
    pub fn new(typed: &str) -> Result<Self, CardError> {
        let mut digits = [0u8; 4];
        let mut n = 0;
        for c in typed.trim().chars() {
            let d = match c {
                '0'..='9' => c as u8,
                '０'..='９' => b'0' + (c as u32 - '０' as u32) as u8,
                _ => return Err(CardError::PinFormat),
            };
            let slot = digits.get_mut(n).ok_or(CardError::PinFormat)?;
            *slot = d;
            n += 1;
        }
        if n != 4 {
            return Err(CardError::PinFormat);
        }
        Ok(Pin(Zeroizing::new(digits)))
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(****)")
    }
}

/// One exchange as the session log keeps it (PINs and signed data shown only by length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub command: Command,
    /// `None` when the transport failed (card pulled, reader gone).
    pub answer: Option<(usize, u16)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Selected {
    Nothing,
    Jpki,
    Text,
}

/// A session with one card.
pub struct CardSession<T: Transport> {
    transport: T,
    app: Selected,
    ef: Option<u16>,
    log: Vec<Exchange>,
}

/// How many bytes to ask for per READ BINARY (the most a short APDU returns).
const CHUNK: u16 = 256;
/// The largest file Kazashi reads (a certificate is under 2 KB).
const MAX_FILE: usize = 8 * 1024;

impl<T: Transport> CardSession<T> {
    pub fn new(transport: T) -> Self {
        CardSession {
            transport,
            app: Selected::Nothing,
            ef: None,
            log: Vec::new(),
        }
    }

    /// Every exchange so far.
    pub fn log(&self) -> &[Exchange] {
        &self.log
    }

    pub fn into_transport(self) -> T {
        self.transport
    }

    /// The legal line, enforced for every command: only the two applications and the six
    /// files Kazashi needs, and only SELECT, READ BINARY, VERIFY and SIGN. Never 券面AP, never
    /// EF 0001 of 券面事項入力補助AP (the individual number), never 照合番号A (a 12-digit
    /// VERIFY), never EF 0005 of 券面AP.
    fn guard(&self, c: &Command) -> Result<(), CardError> {
        let refuse = |what: &str| Err(CardError::LegalLine(what.to_owned()));
        match (c.cla, c.ins, c.p1) {
            (0x00, apdu::INS_SELECT, 0x04) => {
                if c.data == AID_FACE {
                    return refuse("券面AP");
                }
                if c.data != AID_JPKI && c.data != AID_TEXT {
                    return refuse("an unknown application");
                }
            }
            (0x00, apdu::INS_SELECT, 0x02) => {
                let fid = match c.data.as_slice() {
                    [a, b] => u16::from_be_bytes([*a, *b]),
                    _ => return refuse("a malformed file id"),
                };
                let allowed = match self.app {
                    Selected::Jpki => {
                        [ef::JPKI_AUTH_CERT, ef::JPKI_AUTH_KEY, ef::JPKI_AUTH_PIN].contains(&fid)
                    }
                    Selected::Text => [ef::TEXT_PIN, ef::TEXT_BASIC_FOUR].contains(&fid),
                    Selected::Nothing => false,
                };
                if !allowed {
                    return if fid == ef::TEXT_MY_NUMBER || fid == ef::FACE_MY_NUMBER {
                        refuse("the individual number's file")
                    } else {
                        refuse("a file Kazashi does not use")
                    };
                }
            }
            (0x00, apdu::INS_READ_BINARY, p1) if p1 & 0x80 == 0 => {
                if self.ef.is_none() || self.ef == Some(ef::JPKI_AUTH_KEY) {
                    return refuse("a read with no data file selected");
                }
            }
            (0x00, apdu::INS_VERIFY, 0x00) => {
                if !c.data.is_empty() && c.data.len() != 4 {
                    return refuse("照合番号A or any non-PIN verification");
                }
                if self.ef != Some(ef::TEXT_PIN) && self.ef != Some(ef::JPKI_AUTH_PIN) {
                    return refuse("a VERIFY with no PIN file selected");
                }
            }
            // The reader's own GET DATA (PC/SC part 3): the contactless UID or FeliCa IDm,
            // answered by the reader, not by a card application. Nothing else of class FF.
            (0xFF, apdu::INS_GET_DATA, 0x00) => {
                if c.p2 != 0x00 || !c.data.is_empty() {
                    return refuse("a reader command Kazashi does not use");
                }
            }
            (0x80, apdu::INS_SIGN, 0x00) => {
                if self.app != Selected::Jpki || self.ef != Some(ef::JPKI_AUTH_KEY) {
                    return refuse("a signature outside the JPKI authentication key");
                }
            }
            _ => return refuse("a command Kazashi does not use"),
        }
        Ok(())
    }

    /// Guard, send, log. The log keeps the command without its PIN or signed data
    /// ([`Command::for_log`]); the command's bytes, the card's raw answer and the command
    /// itself are wiped once sent, so a PIN does not outlive its VERIFY in this session.
    fn send(&mut self, mut c: Command) -> Result<Response, CardError> {
        self.guard(&c)?;
        let logged = c.for_log();
        let sent = self.transport.transmit(&Zeroizing::new(c.to_bytes()));
        c.data.zeroize();
        let raw = match sent {
            Ok(raw) => Zeroizing::new(raw),
            Err(e) => {
                self.log.push(Exchange {
                    command: logged,
                    answer: None,
                });
                return Err(e);
            }
        };
        let r = Response::parse(&raw).ok_or(CardError::Garbled);
        self.log.push(Exchange {
            command: logged,
            answer: r.as_ref().ok().map(|r| (r.data.len(), r.sw)),
        });
        r
    }

    fn select_app(&mut self, app: Selected) -> Result<(), CardError> {
        if self.app == app {
            return Ok(());
        }
        let aid: &[u8] = match app {
            Selected::Jpki => &AID_JPKI,
            Selected::Text => &AID_TEXT,
            Selected::Nothing => return Ok(()),
        };
        let r = self.send(Command::select_aid(aid))?;
        match r.sw {
            apdu::SW_OK => {
                self.app = app;
                self.ef = None;
                Ok(())
            }
            // A card without the application: not a My Number Card (or an old 住基カード).
            apdu::SW_FILE_NOT_FOUND | 0x6A86 | 0x6D00 | 0x6E00 => Err(CardError::NotMyNumberCard),
            sw => Err(CardError::Status(sw)),
        }
    }

    fn select_ef(&mut self, fid: u16) -> Result<(), CardError> {
        if self.ef == Some(fid) {
            return Ok(());
        }
        let r = self.send(Command::select_ef(fid))?;
        match r.sw {
            apdu::SW_OK => {
                self.ef = Some(fid);
                Ok(())
            }
            apdu::SW_FILE_NOT_FOUND => Err(CardError::NotMyNumberCard),
            sw => Err(CardError::Status(sw)),
        }
    }

    /// Read the current EF, a TLV: one full chunk first (it carries the length), then the rest
    /// in full chunks. A file of `n` bytes takes ⌈n / 256⌉ reads.
    ///
    /// The buffer is wiped when dropped and sized once for the largest file (no growth, so no
    /// copy of a basic-four chunk is left behind in freed memory).
    fn read_tlv_file(&mut self) -> Result<Zeroizing<Vec<u8>>, CardError> {
        let mut data: Zeroizing<Vec<u8>> =
            Zeroizing::new(Vec::with_capacity(MAX_FILE + usize::from(CHUNK)));
        let mut want: Option<usize> = None;
        loop {
            let offset = u16::try_from(data.len()).map_err(|_| CardError::TooLong)?;
            let le = match want {
                Some(w) => (w - data.len()).min(usize::from(CHUNK)) as u16,
                None => CHUNK,
            };
            let mut r = self.send(Command::read_binary(offset, le))?;
            if let Some(exact) = apdu::exact_length(r.sw) {
                r = self.send(Command::read_binary(offset, exact))?;
            }
            let end_of_file = r.sw == apdu::SW_END_OF_FILE;
            match r.sw {
                apdu::SW_OK | apdu::SW_END_OF_FILE => {}
                apdu::SW_SECURITY_NOT_SATISFIED => return Err(CardError::PinNeeded),
                apdu::SW_WRONG_OFFSET => return Err(CardError::Malformed("short file".into())),
                sw => return Err(CardError::Status(sw)),
            }
            if r.data.is_empty() {
                return Err(CardError::Malformed("the file ended early".into()));
            }
            data.extend_from_slice(&r.data);
            if want.is_none() {
                want = tlv::total_len(&data).map_err(|e| CardError::Malformed(e.to_string()))?;
            }
            match want {
                Some(w) if w > MAX_FILE => return Err(CardError::TooLong),
                Some(w) if data.len() >= w => {
                    data.truncate(w);
                    return Ok(data);
                }
                _ if end_of_file || data.len() > MAX_FILE => {
                    return Err(CardError::Malformed("the file ended early".into()));
                }
                _ => {}
            }
        }
    }

    /// The PIN-less tap: the JPKI user-authentication certificate.
    pub fn read_auth_cert(&mut self) -> Result<AuthCert, CardError> {
        self.select_app(Selected::Jpki)?;
        self.select_ef(ef::JPKI_AUTH_CERT)?;
        let der = self.read_tlv_file()?;
        AuthCert::parse(&der).map_err(|e| CardError::Malformed(e.to_string()))
    }

    fn select_pin(&mut self, which: PinFor) -> Result<(), CardError> {
        match which {
            PinFor::Text => {
                self.select_app(Selected::Text)?;
                self.select_ef(ef::TEXT_PIN)
            }
            PinFor::Jpki => {
                self.select_app(Selected::Jpki)?;
                self.select_ef(ef::JPKI_AUTH_PIN)
            }
        }
    }

    /// The tries left before the PIN locks (`00 20 00 80` → `63 Cx`). Asks, never tries.
    pub fn pin_tries(&mut self, which: PinFor) -> Result<u8, CardError> {
        self.select_pin(which)?;
        let r = self.send(Command::pin_tries())?;
        match (apdu::tries_left(r.sw), r.sw) {
            (Some(0), _) | (None, apdu::SW_PIN_BLOCKED) => Err(CardError::PinLocked(which)),
            (Some(n), _) => Ok(n),
            // Some cards answer 9000 to an empty VERIFY once the PIN is verified.
            (None, apdu::SW_OK) => Ok(3),
            (None, sw) => Err(CardError::Status(sw)),
        }
    }

    /// One VERIFY with the PIN typed. Exactly one try: never retried here.
    pub fn verify_pin(&mut self, which: PinFor, pin: &Pin) -> Result<(), CardError> {
        self.select_pin(which)?;
        let r = self.send(Command::verify(pin.0.as_slice()))?;
        match (r.sw, apdu::tries_left(r.sw)) {
            (apdu::SW_OK, _) => Ok(()),
            (apdu::SW_PIN_BLOCKED, _) | (_, Some(0)) => Err(CardError::PinLocked(which)),
            (_, Some(left)) => Err(CardError::WrongPin { which, left }),
            (sw, None) => Err(CardError::Status(sw)),
        }
    }

    /// The basic four items, after [`Self::verify_pin`] with [`PinFor::Text`].
    pub fn read_basic_four(&mut self) -> Result<BasicFour, CardError> {
        self.select_app(Selected::Text)?;
        self.select_ef(ef::TEXT_BASIC_FOUR)?;
        let file = self.read_tlv_file()?;
        tlv::basic_four(&file).map_err(|e| CardError::Malformed(e.to_string()))
    }

    /// The card's contactless identifier through the reader (`FF CA 00 00 00`): an ISO 14443
    /// UID or a FeliCa IDm, as the reader reports it. Unchecked bytes (see
    /// `crate::token::TokenId::from_reader`); wiped when dropped.
    pub fn read_uid(&mut self) -> Result<Zeroizing<Vec<u8>>, CardError> {
        let mut r = self.send(Command::get_uid())?;
        match r.sw {
            apdu::SW_OK => Ok(Zeroizing::new(std::mem::take(&mut r.data))),
            sw => Err(CardError::Status(sw)),
        }
    }

    /// Sign `challenge` with the JPKI authentication key, after [`Self::verify_pin`] with
    /// [`PinFor::Jpki`]. Returns the DigestInfo signed and the signature.
    pub fn sign(&mut self, challenge: &[u8]) -> Result<(Vec<u8>, Vec<u8>), CardError> {
        self.select_app(Selected::Jpki)?;
        self.select_ef(ef::JPKI_AUTH_KEY)?;
        let di = digest_info(challenge);
        let mut r = self.send(Command::sign(&di))?;
        match r.sw {
            apdu::SW_OK => Ok((di, std::mem::take(&mut r.data))),
            apdu::SW_SECURITY_NOT_SATISFIED => Err(CardError::PinNeeded),
            sw => Err(CardError::Status(sw)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers 9000 to everything and records what reached it.
    #[derive(Default)]
    struct Recorder(Vec<Vec<u8>>);

    impl Transport for Recorder {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
            self.0.push(apdu.to_vec());
            Ok(vec![0x90, 0x00])
        }
    }

    fn refused(s: &mut CardSession<Recorder>, c: Command) {
        let before = s.transport.0.len();
        let shown = format!("{c:?}");
        assert!(
            matches!(s.send(c), Err(CardError::LegalLine(_))),
            "{shown} was not refused"
        );
        assert_eq!(s.transport.0.len(), before, "{shown} reached the card");
    }

    #[test]
    fn the_guard_stops_the_individual_number_before_the_card() {
        let mut s = CardSession::new(Recorder::default());
        refused(&mut s, Command::select_aid(&AID_FACE));
        refused(&mut s, Command::select_aid(&[0xA0, 0, 0, 0, 0x03]));
        refused(&mut s, Command::select_ef(ef::TEXT_MY_NUMBER));
        s.select_app(Selected::Text).unwrap();
        refused(&mut s, Command::select_ef(ef::TEXT_MY_NUMBER));
        refused(&mut s, Command::select_ef(ef::FACE_MY_NUMBER));
        refused(&mut s, Command::select_ef(0x0003));
        refused(&mut s, Command::verify(b"123456789012"));
        // READ BINARY by short file id (P1 bit 8) of EF 01.
        refused(
            &mut s,
            Command {
                cla: 0,
                ins: 0xB0,
                p1: 0x81,
                p2: 0,
                data: vec![],
                le: Some(16),
            },
        );
        // A read with no file selected, GET DATA, an unknown class.
        refused(&mut s, Command::read_binary(0, 16));
        refused(
            &mut s,
            Command {
                cla: 0,
                ins: 0xCA,
                p1: 0,
                p2: 0,
                data: vec![],
                le: Some(0),
            },
        );
        refused(
            &mut s,
            Command {
                cla: 0x0C,
                ins: 0xA4,
                p1: 4,
                p2: 0x0C,
                data: AID_TEXT.to_vec(),
                le: None,
            },
        );
        // Signing outside the JPKI key.
        refused(&mut s, Command::sign(&[0; 51]));
        // In JPKI, the key file cannot be read.
        s.select_app(Selected::Jpki).unwrap();
        s.select_ef(ef::JPKI_AUTH_KEY).unwrap();
        refused(&mut s, Command::read_binary(0, 16));
        // The reader's GET DATA with anything but P1 = P2 = 0 and no data; another class-FF
        // command.
        for (p1, p2, data) in [(1u8, 0u8, vec![]), (0, 1, vec![]), (0, 0, vec![1])] {
            refused(
                &mut s,
                Command {
                    cla: 0xFF,
                    ins: 0xCA,
                    p1,
                    p2,
                    data,
                    le: Some(256),
                },
            );
        }
        refused(
            &mut s,
            Command {
                cla: 0xFF,
                ins: 0x82,
                p1: 0,
                p2: 0,
                data: vec![0; 6],
                le: None,
            },
        );
        // What a flow needs still goes through.
        s.select_ef(ef::JPKI_AUTH_PIN).unwrap();
        assert!(s.send(Command::pin_tries()).is_ok());
        assert!(s.read_uid().is_ok());
        assert_eq!(s.transport.0.len(), 6);
        assert_eq!(s.transport.0.last().unwrap(), &[0xFF, 0xCA, 0, 0, 0]);
    }

    #[test]
    fn the_log_keeps_no_pin() {
        let mut s = CardSession::new(Recorder::default());
        let _ = s.verify_pin(PinFor::Text, &Pin::new("4321").unwrap());
        let shown = format!("{:?}", s.log());
        assert!(
            !shown.contains("34, 33") && !shown.contains("4321") && shown.contains("[4 bytes]"),
            "{shown}"
        );
        // The log keeps the command without the PIN (not merely hidden when shown), while
        // the card got it.
        let verify = s
            .log()
            .iter()
            .find(|x| x.command.ins == apdu::INS_VERIFY && !x.command.data.is_empty())
            .unwrap();
        assert_eq!(verify.command.data, [0; 4]);
        let sent = s.transport.0.last().unwrap();
        assert_eq!(sent.get(5..9), Some(&b"4321"[..]));
    }
}
