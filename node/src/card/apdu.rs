//! ISO 7816-4 commands as the My Number Card takes them, and their answers.
//!
//! Only short APDUs: every exchange of a check-in fits in 256 bytes each way.

/// 公的個人認証AP (JPKI).
pub const AID_JPKI: [u8; 10] = [0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01];
/// 券面事項入力補助AP (the basic four items, after a PIN).
pub const AID_TEXT: [u8; 10] = [0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x08];
/// 券面AP (card face and photo). Kazashi never selects it; it is named here so the guard can
/// refuse it by name.
pub const AID_FACE: [u8; 10] = [0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x02];

/// Elementary files Kazashi uses, by application.
pub mod ef {
    /// JPKI: the user-authentication certificate (readable without a PIN).
    pub const JPKI_AUTH_CERT: u16 = 0x000A;
    /// JPKI: the user-authentication private key (signs after the PIN).
    pub const JPKI_AUTH_KEY: u16 = 0x0017;
    /// JPKI: the user-authentication PIN (4 digits, 3 tries).
    pub const JPKI_AUTH_PIN: u16 = 0x0018;
    /// 券面事項入力補助AP: the PIN (4 digits, 3 tries).
    pub const TEXT_PIN: u16 = 0x0011;
    /// 券面事項入力補助AP: the basic four items (`FF20 { DF21..DF25 }`).
    pub const TEXT_BASIC_FOUR: u16 = 0x0002;
    /// 券面事項入力補助AP: the individual number. Never selected; named for the guard.
    pub const TEXT_MY_NUMBER: u16 = 0x0001;
    /// 券面AP: the individual number's image. Never selected; named for the guard.
    pub const FACE_MY_NUMBER: u16 = 0x0005;
}

pub const INS_SELECT: u8 = 0xA4;
pub const INS_READ_BINARY: u8 = 0xB0;
pub const INS_VERIFY: u8 = 0x20;
pub const INS_SIGN: u8 = 0x2A;
/// GET DATA, sent with class FF: the reader's own command for the contactless UID.
pub const INS_GET_DATA: u8 = 0xCA;

/// One command.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Vec<u8>,
    /// Expected answer length, 1..=256 (256 is sent as `00`).
    pub le: Option<u16>,
}

impl Command {
    /// SELECT an application by AID, no answer data (`00 A4 04 0C`).
    pub fn select_aid(aid: &[u8]) -> Self {
        Command {
            cla: 0,
            ins: INS_SELECT,
            p1: 0x04,
            p2: 0x0C,
            data: aid.to_vec(),
            le: None,
        }
    }
    /// SELECT an elementary file of the current application (`00 A4 02 0C 02 FID`).
    pub fn select_ef(fid: u16) -> Self {
        Command {
            cla: 0,
            ins: INS_SELECT,
            p1: 0x02,
            p2: 0x0C,
            data: fid.to_be_bytes().to_vec(),
            le: None,
        }
    }
    /// READ BINARY of the current EF at `offset` (below 0x8000).
    pub fn read_binary(offset: u16, le: u16) -> Self {
        let [p1, p2] = (offset & 0x7FFF).to_be_bytes();
        Command {
            cla: 0,
            ins: INS_READ_BINARY,
            p1,
            p2,
            data: Vec::new(),
            le: Some(le.clamp(1, 256)),
        }
    }
    /// VERIFY with no data: asks the tries left of the current EF's PIN (`63 Cx`).
    pub fn pin_tries() -> Self {
        Command {
            cla: 0,
            ins: INS_VERIFY,
            p1: 0,
            p2: 0x80,
            data: Vec::new(),
            le: None,
        }
    }
    /// VERIFY the current EF's PIN.
    pub fn verify(pin: &[u8]) -> Self {
        Command {
            cla: 0,
            ins: INS_VERIFY,
            p1: 0,
            p2: 0x80,
            data: pin.to_vec(),
            le: None,
        }
    }
    /// COMPUTE DIGITAL SIGNATURE over a DigestInfo with the current key EF (`80 2A 00 80`).
    pub fn sign(digest_info: &[u8]) -> Self {
        Command {
            cla: 0x80,
            ins: INS_SIGN,
            p1: 0,
            p2: 0x80,
            data: digest_info.to_vec(),
            le: Some(256),
        }
    }

    /// The reader's GET DATA for the contactless identifier (`FF CA 00 00 00`: PC/SC part 3;
    /// the reader answers with the ISO 14443 UID or the FeliCa IDm, whole).
    pub fn get_uid() -> Self {
        Command {
            cla: 0xFF,
            ins: INS_GET_DATA,
            p1: 0,
            p2: 0,
            data: Vec::new(),
            le: Some(256),
        }
    }

    /// The command as a session's log keeps it: a VERIFY's PIN and a signature's DigestInfo
    /// are replaced by zeros of the same length (the log keeps what was sent, never the PIN).
    pub fn for_log(&self) -> Command {
        let keep = self.ins != INS_VERIFY && self.ins != INS_SIGN;
        Command {
            data: if keep {
                self.data.clone()
            } else {
                vec![0; self.data.len()]
            },
            ..*self
        }
    }

    /// The short-form encoding. Data longer than 255 bytes is cut (no command here has any).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = vec![self.cla, self.ins, self.p1, self.p2];
        let n = self.data.len().min(255);
        if n > 0 {
            v.push(n as u8);
            v.extend_from_slice(self.data.get(..n).unwrap_or_default());
        }
        if let Some(le) = self.le {
            v.push(if le >= 256 { 0 } else { le as u8 });
        }
        v
    }
}

/// A command as the log keeps it: PINs and signed data never appear, only their length.
impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:02X} {:02X} {:02X} {:02X}",
            self.cla, self.ins, self.p1, self.p2
        )?;
        if !self.data.is_empty() {
            if self.ins == INS_SELECT {
                write!(f, " [{}]", hex_upper(&self.data))?;
            } else {
                write!(f, " [{} bytes]", self.data.len())?;
            }
        }
        if let Some(le) = self.le {
            write!(f, " Le={le}")?;
        }
        Ok(())
    }
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// An answer: data and the status word. The data (a chunk of the basic four, a signature) is
/// wiped when the answer is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    pub data: Vec<u8>,
    pub sw: u16,
}

impl Drop for Response {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.data);
    }
}

impl Response {
    /// Split a raw answer; `None` when it has no status word.
    pub fn parse(raw: &[u8]) -> Option<Self> {
        let n = raw.len().checked_sub(2)?;
        let (data, sw) = raw.split_at(n);
        let sw = u16::from_be_bytes([*sw.first()?, *sw.get(1)?]);
        Some(Response {
            data: data.to_vec(),
            sw,
        })
    }
    pub fn ok(&self) -> bool {
        self.sw == SW_OK
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes, SW {:04X}", self.data.len(), self.sw)
    }
}

pub const SW_OK: u16 = 0x9000;
/// End of file reached before Le bytes (the data returned is the rest of the file).
pub const SW_END_OF_FILE: u16 = 0x6282;
pub const SW_SECURITY_NOT_SATISFIED: u16 = 0x6982;
pub const SW_PIN_BLOCKED: u16 = 0x6983;
pub const SW_FILE_NOT_FOUND: u16 = 0x6A82;
pub const SW_WRONG_OFFSET: u16 = 0x6B00;

/// `63 Cx`: x tries left.
pub fn tries_left(sw: u16) -> Option<u8> {
    (sw & 0xFFF0 == 0x63C0).then_some((sw & 0x000F) as u8)
}

/// `6C xx`: wrong Le, xx bytes are available.
pub fn exact_length(sw: u16) -> Option<u16> {
    (sw & 0xFF00 == 0x6C00).then_some(match sw & 0xFF {
        0 => 256,
        n => n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_match_the_brief() {
        assert_eq!(
            Command::select_aid(&AID_JPKI).to_bytes(),
            [
                0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00,
                0x01
            ]
        );
        assert_eq!(
            Command::select_ef(0x000A).to_bytes(),
            [0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x0A]
        );
        assert_eq!(
            Command::read_binary(0x0100, 256).to_bytes(),
            [0x00, 0xB0, 0x01, 0x00, 0x00]
        );
        assert_eq!(Command::pin_tries().to_bytes(), [0x00, 0x20, 0x00, 0x80]);
        assert_eq!(
            Command::verify(b"1234").to_bytes(),
            [0x00, 0x20, 0x00, 0x80, 0x04, b'1', b'2', b'3', b'4']
        );
        let s = Command::sign(&[7; 51]).to_bytes();
        assert_eq!(s.get(..5), Some(&[0x80, 0x2A, 0x00, 0x80, 51][..]));
        assert_eq!(s.last(), Some(&0x00));
        assert_eq!(s.len(), 5 + 51 + 1);
    }

    #[test]
    fn the_log_form_hides_pins() {
        let shown = format!("{:?}", Command::verify(b"9876"));
        assert!(
            !shown.contains("39") && shown.contains("[4 bytes]"),
            "{shown}"
        );
    }

    #[test]
    fn status_words() {
        assert_eq!(tries_left(0x63C2), Some(2));
        assert_eq!(tries_left(0x63C0), Some(0));
        assert_eq!(tries_left(0x6983), None);
        assert_eq!(exact_length(0x6C10), Some(16));
        assert_eq!(Response::parse(&[0x90]), None);
        assert_eq!(
            Response::parse(&[1, 2, 0x90, 0x00]),
            Some(Response {
                data: vec![1, 2],
                sw: SW_OK
            })
        );
    }
}
