//! Any card as a token (issue 26, requirement 4): a contactless card's identifier — the ISO
//! 14443 UID or FeliCa IDm the reader gives for `FF CA 00 00 00` (a transport IC card, a blank
//! card handed out at the shelter) — or a printed QR wristband, bound to a person at their first
//! registration, so that later taps find the person without a PIN.
//!
//! **A token is not proof of identity.** Anyone can copy a UID onto another card, or pick up
//! a wristband; the window says so wherever a token found someone, and staff compare the face
//! and ask the name. Tokens are for shelter entry (identification, the "かざし利用" of the
//! seeds), never for a vote.
//!
//! **Keyed, never raw.** The identifier itself is never written anywhere: the log holds
//! `HMAC-SHA256(k, "kazashi-token-v1" ‖ deployment id ‖ kind ‖ length ‖ identifier)` as the
//! [`CardKey`] of an ordinary [`EventBody::CardBinding`], so the fold, sync, bundles and the
//! detector treat a token like a My Number Card's key (the latest binding wins, on every
//! laptop once merged). `k` is the deployment's **operation purpose secret**
//! (`kazashi_sync::purpose`, [`KeyPurpose::Operation`]), which the manifest seals to every
//! enrolled, unrevoked laptop and which this laptop unwraps with its device key
//! ([`kazashi_sync::Membership::unseal`]) for each tap, wiping it after. Why that key:
//!
//! - it is per deployment and secret, so a key in a copied log or bundle cannot be matched
//!   against a list of card numbers (a transit card's IDm is no secret: a plain hash of it
//!   could be), and the same card gives unrelated keys in two deployments;
//! - every member laptop holds the same one (keys made at one shelter are found at another
//!   after sync) and no one else does (a revoked laptop gets no newer manifest's seal);
//! - it is not rotated by new manifest versions (bindings keep working), and the purge
//!   destroys it, after which the stored keys link to nothing.
//!
//! A laptop without the secret (a manifest before v4, or a device it is not sealed to) cannot
//! bind or find tokens: [`TokenError::NoSecret`], and the window says so.
//!
//! The kinds are told apart by length: 4, 7 or 10 bytes are an ISO 14443 UID, 8 bytes a FeliCa
//! IDm; anything else is refused. A 4-byte UID beginning `08` is a random id (ISO 14443-3):
//! the card gives a new one at every tap, so it cannot be a token and is refused with words
//! that say so. The kind is part of the keyed input, so a UID and a wristband code with the
//! same bytes never collide.

use crate::card::{CardError, CardSession, Transport};
use crate::clock::Clock;
use crate::node::{Node, NodeError};
use hmac::{Hmac, KeyInit, Mac};
use kazashi_domain::event::{Event, EventBody};
use kazashi_domain::ids::{CardKey, DeploymentId, OperatorId, PersonRef};
use kazashi_sync::{DeviceKey, KeyPurpose, PurposeSecret};
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

const KEY_TAG: &[u8] = b"kazashi-token-v1";
const CHECK_TAG: &[u8] = b"kazashi-wristband-check-v1";
/// What a wristband code starts with (format version 1).
pub const WRISTBAND_PREFIX: &str = "KZW1";
/// Random bytes in a wristband code (80 bits).
const WRISTBAND_BYTES: usize = 10;

/// What kind of token an identifier came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// An ISO 14443 (Type A/B) UID of 4, 7 or 10 bytes.
    Uid,
    /// A FeliCa IDm (8 bytes): transport IC cards (Suica, ICOCA, …).
    Idm,
    /// A printed QR wristband's code.
    Wristband,
}

impl TokenKind {
    fn byte(self) -> u8 {
        match self {
            TokenKind::Uid => 1,
            TokenKind::Idm => 2,
            TokenKind::Wristband => 3,
        }
    }
}

/// A token's raw identifier, checked; wiped when dropped and never shown (`Debug` gives the
/// kind and length only).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenId {
    kind: TokenKind,
    bytes: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for TokenId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenId({:?}, {} bytes)", self.kind, self.bytes.len())
    }
}

/// Why a token was refused or could not be used. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the card's identifier is {0} bytes (4, 7 or 10 for a UID, 8 for a FeliCa IDm)")]
    Length(usize),
    #[error("the card gives a random identifier at every tap")]
    RandomUid,
    #[error("the card's identifier is blank")]
    Blank,
    #[error("the reader gave no identifier for this card")]
    NoIdentifier,
    #[error("not a Kazashi wristband code")]
    NotAWristband,
    #[error("the wristband code was misread (its check does not match)")]
    WristbandCheck,
    #[error("this laptop holds no key for tokens (the deployment's operation key)")]
    NoSecret,
    #[error("this token is already registered to someone else")]
    BoundToOther,
    #[error("the operating system's random source failed")]
    Random,
    #[error(transparent)]
    Card(#[from] CardError),
    #[error("{0}")]
    Node(String),
}

impl From<NodeError> for TokenError {
    fn from(e: NodeError) -> Self {
        TokenError::Node(e.to_string())
    }
}

impl TokenError {
    /// What to tell staff, in Japanese.
    pub fn message_ja(&self) -> String {
        match self {
            TokenError::Length(_) | TokenError::Blank | TokenError::NoIdentifier => {
                "このカードの番号を読み取れませんでした。登録には使えません。別のカードかリストバンドを使ってください。".into()
            }
            TokenError::RandomUid => {
                "このカードはかざすたびに違う番号を返すため、登録には使えません（銀行カード等）。交通系ICカードか配布カード、リストバンドを使ってください。".into()
            }
            TokenError::NotAWristband => {
                "Kazashi のリストバンドのコードではないようです。もう一度読み取ってください。".into()
            }
            TokenError::WristbandCheck => {
                "リストバンドのコードを読み誤りました。もう一度読み取るか、印字された文字を確かめてください。".into()
            }
            TokenError::NoSecret => {
                "この端末はカード・リストバンド用の鍵を持っていないため、登録も照会もできません。管理者に端末の登録（名簿の配布）を確かめてもらってください。名簿検索で受付してください。".into()
            }
            TokenError::BoundToOther => {
                "このカード・リストバンドは別の方に登録済みです。登録を解除してから使ってください。".into()
            }
            TokenError::Random => "乱数を取得できませんでした。".into(),
            TokenError::Card(e) => e.message_ja(),
            TokenError::Node(e) => format!("記録できませんでした: {e}"),
        }
    }

    /// The same in English.
    pub fn message_en(&self) -> String {
        match self {
            TokenError::Length(_) | TokenError::Blank | TokenError::NoIdentifier => {
                "This card's number could not be read; it cannot be registered. Use another card or a wristband.".into()
            }
            TokenError::RandomUid => {
                "This card gives a different number at every tap (bank cards and the like), so it cannot be registered. Use a transport IC card, a handed-out card or a wristband.".into()
            }
            TokenError::NotAWristband => {
                "That is not a Kazashi wristband code. Please scan it again.".into()
            }
            TokenError::WristbandCheck => {
                "The wristband code was misread. Scan it again, or check the printed characters.".into()
            }
            TokenError::NoSecret => {
                "This laptop holds no key for cards and wristbands, so it can neither register nor find them. Ask the administrator to check this laptop's enrolment. Use the roster search.".into()
            }
            TokenError::BoundToOther => {
                "This card or wristband is already registered to someone else. Remove that registration first.".into()
            }
            TokenError::Random => "The random source failed.".into(),
            TokenError::Card(e) => e.message_en(),
            TokenError::Node(e) => format!("Not recorded: {e}"),
        }
    }
}

impl TokenId {
    /// The identifier the reader gave for `FF CA 00 00 00`: 4, 7 or 10 bytes are an ISO 14443
    /// UID, 8 a FeliCa IDm; anything else, a random UID or a blank one is refused.
    pub fn from_reader(data: &[u8]) -> Result<TokenId, TokenError> {
        let kind = match data.len() {
            0 => return Err(TokenError::NoIdentifier),
            4 | 7 | 10 => TokenKind::Uid,
            8 => TokenKind::Idm,
            n => return Err(TokenError::Length(n)),
        };
        if data.iter().all(|b| *b == 0) || data.iter().all(|b| *b == 0xFF) {
            return Err(TokenError::Blank);
        }
        // ISO 14443-3: a single-size UID whose first byte is 08 is a random id.
        if kind == TokenKind::Uid && data.len() == 4 && data.first() == Some(&0x08) {
            return Err(TokenError::RandomUid);
        }
        Ok(TokenId {
            kind,
            bytes: Zeroizing::new(data.to_vec()),
        })
    }

    /// A wristband's code as a scanner (a keyboard wedge) or a person typed it: full-width
    /// characters, case, spaces and hyphens are tolerated; the check characters must match.
    pub fn wristband(scanned: &str) -> Result<TokenId, TokenError> {
        let code: String = scanned
            .nfkc()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .flat_map(char::to_uppercase)
            .collect();
        let body = code
            .strip_prefix(WRISTBAND_PREFIX)
            .ok_or(TokenError::NotAWristband)?;
        if body.len() != 2 * WRISTBAND_BYTES + 2 || !body.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(TokenError::NotAWristband);
        }
        let all = hex::decode(body).map_err(|_| TokenError::NotAWristband)?;
        let (bytes, check) = all.split_at(WRISTBAND_BYTES);
        if check != [wristband_check(bytes)] {
            return Err(TokenError::WristbandCheck);
        }
        Ok(TokenId {
            kind: TokenKind::Wristband,
            bytes: Zeroizing::new(bytes.to_vec()),
        })
    }

    pub fn kind(&self) -> TokenKind {
        self.kind
    }
}

fn wristband_check(bytes: &[u8]) -> u8 {
    let mut h = Sha256::new();
    h.update(CHECK_TAG);
    h.update(bytes);
    h.finalize().first().copied().unwrap_or(0)
}

/// A new wristband's code, from the operating system's random source: `KZW1-` and 22
/// hexadecimal characters in groups of four (80 random bits and a check byte). Printed as a QR
/// code and as text; it is bound like any token.
pub fn new_wristband() -> Result<String, TokenError> {
    let mut b = [0u8; WRISTBAND_BYTES];
    getrandom::fill(&mut b).map_err(|_| TokenError::Random)?;
    Ok(wristband_code(&b))
}

/// The printed code of a wristband's random bytes.
pub fn wristband_code(bytes: &[u8; WRISTBAND_BYTES]) -> String {
    let mut hexed = hex::encode_upper(bytes);
    hexed.push_str(&format!("{:02X}", wristband_check(bytes)));
    let groups: Vec<&str> = hexed
        .as_bytes()
        .chunks(4)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    format!("{WRISTBAND_PREFIX}-{}", groups.join("-"))
}

/// The keyed form of a token: what the log stores and looks up, never the identifier.
pub fn token_key(secret: &[u8; 32], deployment: &DeploymentId, id: &TokenId) -> CardKey {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return CardKey([0; 32]),
    };
    mac.update(KEY_TAG);
    mac.update(&deployment.0);
    mac.update(&[
        id.kind.byte(),
        u8::try_from(id.bytes.len()).unwrap_or(u8::MAX),
    ]);
    mac.update(&id.bytes);
    CardKey(mac.finalize().into_bytes().into())
}

/// What a token tap found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenTap {
    /// The token's keyed form in this deployment.
    pub key: CardKey,
    pub kind: TokenKind,
    /// Who it is bound to, anywhere in the mesh (`None`: not registered).
    pub person: Option<PersonRef>,
}

/// Read a token from a card on the reader: the reader's GET DATA, checked.
pub fn read_token<T: Transport>(session: &mut CardSession<T>) -> Result<TokenId, TokenError> {
    match session.read_uid() {
        Ok(data) => TokenId::from_reader(&data),
        // The reader knows no GET DATA for this card, or has no identifier for it.
        Err(CardError::Status(0x6A81 | 0x6A82 | 0x6A86 | 0x6D00 | 0x6E00 | 0x6B00)) => {
            Err(TokenError::NoIdentifier)
        }
        Err(e) => Err(TokenError::Card(e)),
    }
}

impl<C: Clock> Node<C> {
    /// The operation secret, unwrapped for one use (wiped when dropped).
    fn token_secret(&self) -> Option<PurposeSecret> {
        let key = DeviceKey::from_seed(*Zeroizing::new(self.secret_key_bytes()));
        self.membership().unseal(KeyPurpose::Operation, &key)
    }

    /// Whether this laptop can bind and find tokens (it holds the operation key).
    pub fn tokens_available(&self) -> bool {
        self.membership()
            .holds(&self.device(), KeyPurpose::Operation)
            && self.token_secret().is_some()
    }

    /// The keyed form of `id` in this deployment.
    pub fn token_key(&self, id: &TokenId) -> Result<CardKey, TokenError> {
        let secret = self.token_secret().ok_or(TokenError::NoSecret)?;
        Ok(token_key(
            secret.bytes(),
            &self.station().deployment().id(),
            id,
        ))
    }

    /// Who `id` is bound to (bindings made at any site count once merged).
    pub fn token_tap(&self, id: &TokenId) -> Result<TokenTap, TokenError> {
        let key = self.token_key(id)?;
        Ok(TokenTap {
            key,
            kind: id.kind,
            person: self.card_person(&key),
        })
    }

    /// Bind a token to a person at their registration. Refused when it is bound to someone
    /// else (a wristband handed out twice: unbind first); bound again to the same person, no
    /// event is written and `None` comes back.
    pub fn bind_token(
        &mut self,
        operator: OperatorId,
        key: CardKey,
        person: PersonRef,
    ) -> Result<Option<Event>, TokenError> {
        match self.card_person(&key) {
            Some(p) if p == person => Ok(None),
            Some(_) => Err(TokenError::BoundToOther),
            None => Ok(Some(self.bind_card(operator, key, person)?)),
        }
    }

    /// Remove a token's binding (a lost wristband, a card handed back).
    pub fn unbind_token(
        &mut self,
        operator: OperatorId,
        key: CardKey,
    ) -> Result<Event, TokenError> {
        Ok(self.record(
            operator,
            EventBody::CardBinding {
                card: key,
                person: None,
            },
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dep(n: u8) -> DeploymentId {
        DeploymentId([n; 16])
    }

    #[test]
    fn lengths_decide_the_kind_and_others_are_refused() {
        assert_eq!(
            TokenId::from_reader(&[1, 2, 3, 4]).unwrap().kind(),
            TokenKind::Uid
        );
        assert_eq!(
            TokenId::from_reader(&[4, 1, 2, 3, 4, 5, 6]).unwrap().kind(),
            TokenKind::Uid
        );
        assert_eq!(
            TokenId::from_reader(&[9; 10]).unwrap().kind(),
            TokenKind::Uid
        );
        assert_eq!(
            TokenId::from_reader(&[1, 2, 3, 4, 5, 6, 7, 8])
                .unwrap()
                .kind(),
            TokenKind::Idm
        );
        for n in [1, 2, 3, 5, 6, 9, 11, 12, 16, 255, 300] {
            assert_eq!(
                TokenId::from_reader(&vec![0x11; n]),
                Err(TokenError::Length(n)),
                "{n}"
            );
        }
        assert_eq!(TokenId::from_reader(&[]), Err(TokenError::NoIdentifier));
        assert_eq!(TokenId::from_reader(&[0; 7]), Err(TokenError::Blank));
        assert_eq!(TokenId::from_reader(&[0xFF; 8]), Err(TokenError::Blank));
        assert_eq!(
            TokenId::from_reader(&[0x08, 0x12, 0x34, 0x56]),
            Err(TokenError::RandomUid)
        );
        // A 7-byte UID may begin 08 (a manufacturer code).
        assert!(TokenId::from_reader(&[0x08, 1, 2, 3, 4, 5, 6]).is_ok());
    }

    #[test]
    fn a_uid_and_an_idm_with_the_same_bytes_differ_from_a_wristband() {
        let s = [7u8; 32];
        let uid = TokenId::from_reader(&[1; 10]).unwrap();
        let band = TokenId::wristband(&wristband_code(&[1; 10])).unwrap();
        assert_eq!(band.kind(), TokenKind::Wristband);
        assert_ne!(token_key(&s, &dep(1), &uid), token_key(&s, &dep(1), &band));
    }

    #[test]
    fn wristband_codes_read_back_as_scanned_or_typed() {
        let code = wristband_code(&[0xAB, 0xCD, 0, 1, 2, 3, 4, 5, 6, 7]);
        assert!(code.starts_with("KZW1-ABCD-0001-"), "{code}");
        let want = TokenId::wristband(&code).unwrap();
        // A keyboard wedge on a Japanese IME: full-width; typed by hand: lower case, spaces.
        let wide: String = code
            .chars()
            .map(|c| match c {
                '0'..='9' => char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap(),
                'A'..='Z' => char::from_u32(c as u32 - 'A' as u32 + 'Ａ' as u32).unwrap(),
                c => c,
            })
            .collect();
        assert_eq!(TokenId::wristband(&wide).unwrap(), want);
        let typed = code.to_lowercase().replace('-', " ");
        assert_eq!(TokenId::wristband(&format!("  {typed}\n")).unwrap(), want);
        // One character misread: the check catches it.
        let mut bad = code.clone().into_bytes();
        let last = bad.len() - 4;
        bad[last] = if bad[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            TokenId::wristband(std::str::from_utf8(&bad).unwrap()),
            Err(TokenError::WristbandCheck)
        );
        for junk in ["", "KZW1", "KZW1-XYZ", "12345", "名簿番号123", "KZW2-ABCD"] {
            assert_eq!(
                TokenId::wristband(junk),
                Err(TokenError::NotAWristband),
                "{junk}"
            );
        }
        let fresh = new_wristband().unwrap();
        assert!(TokenId::wristband(&fresh).is_ok(), "{fresh}");
        assert_ne!(fresh, new_wristband().unwrap());
    }

    #[test]
    fn debug_shows_no_identifier() {
        let id = TokenId::from_reader(&[0x04, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6]).unwrap();
        let shown = format!("{id:?}");
        assert_eq!(shown, "TokenId(Uid, 7 bytes)");
    }

    proptest! {
        #[test]
        fn keys_are_never_the_raw_identifier_and_differ_by_deployment_and_secret(
            raw in prop_oneof![
                proptest::collection::vec(any::<u8>(), 4),
                proptest::collection::vec(any::<u8>(), 7),
                proptest::collection::vec(any::<u8>(), 8),
                proptest::collection::vec(any::<u8>(), 10),
            ],
            secret in any::<[u8; 32]>(),
            other in any::<[u8; 32]>(),
            d1 in any::<[u8; 16]>(),
            d2 in any::<[u8; 16]>(),
        ) {
            let Ok(id) = TokenId::from_reader(&raw) else { return Ok(()) };
            let k = token_key(&secret, &DeploymentId(d1), &id);
            // The key holds no run of the identifier's bytes (beyond chance), nor a plain
            // SHA-256 of it.
            prop_assert!(!k.0.windows(raw.len()).any(|w| w == raw.as_slice()));
            prop_assert_ne!(k.0, <[u8; 32]>::from(Sha256::digest(&raw)));
            // Same inputs, same key (every laptop agrees).
            prop_assert_eq!(k, token_key(&secret, &DeploymentId(d1), &id));
            if d1 != d2 {
                prop_assert_ne!(k, token_key(&secret, &DeploymentId(d2), &id));
            }
            if secret != other {
                prop_assert_ne!(k, token_key(&other, &DeploymentId(d1), &id));
            }
        }

        #[test]
        fn reader_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            let r = TokenId::from_reader(&raw);
            if let Ok(id) = r {
                prop_assert!([4, 7, 8, 10].contains(&id.bytes.len()));
            }
        }

        #[test]
        fn scanned_text_never_panics(s in ".{0,80}") {
            let _ = TokenId::wristband(&s);
        }
    }
}
