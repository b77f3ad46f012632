//! Authority from a card, and the lockout after wrong PINs.
//!
//! The JPKI user-authentication certificate is readable without a PIN, so anyone can copy it
//! onto another card: a PIN-less tap identifies (shelter entry, with the face compared by
//! staff) and grants nothing. Where a card is to grant authority — staff unlock, a second
//! officer's approval, a voter's check-in by card — the card must prove it holds the
//! certificate's private key: [`Node::present_card`] reads the certificate and checks it
//! offline against the deployment's JPKI CA certificates (the manifest's `card_cas`: unknown
//! issuers, bad signatures, expired or not yet valid certificates are refused; revocation is
//! not known offline), then [`Node::prove_card`] takes the JPKI PIN and has the card sign a
//! fresh challenge, checked with the certificate's public key.
//!
//! **The card's own PIN counter is never burned by Kazashi**: the tries left are asked for
//! (`00 20 00 80`, no data) before every VERIFY, and with one try left the app stops and says
//! so — the holder resets it at city hall, or uses their PIN elsewhere.
//!
//! **Lockout**: consecutive wrong PINs are counted per staff id and per card key in the
//! encrypted store's settings, so a restart does not reset them; after [`MAX_FAILURES`] the
//! subject is locked for [`LOCK_MS`]. A success clears the count (the setting is deleted: a
//! card that proved itself leaves no lockout record behind).
//!
//! **What is charged to a card key, and what is not.** The card key names a certificate, and
//! the certificate is readable by anyone without a PIN, so a copy of it on another card (the
//! attacker's own card, which accepts whatever PIN its maker chose) presents the same card key.
//! A failure is charged to the card key only if the genuine card could have caused it:
//! - a **wrong PIN** answer: the genuine card says so when its holder mistypes, so it counts
//!   (a copy can fake the answer too — we cannot tell the two apart from the answer alone;
//!   see the note below);
//! - a **signature that does not verify after the PIN was accepted** ([`Refusal::NotItsKey`]):
//!   the genuine card, once it accepted its own PIN, signs with the certificate's key, and that
//!   signature verifies. A failing one proves the card on the reader is *not* the card the
//!   certificate names, so it is not charged to that card key: five tries with a copied
//!   certificate do not lock the genuine card out. The copy gains nothing from retrying (it
//!   cannot produce the signature), and each attempt is refused as a copy.
//!
//! Note: a copy that answers "wrong PIN" five times can still lock the genuine card key here
//! for [`LOCK_MS`]; the card's own counter (which Kazashi never takes below two tries) is the
//! real limit on guessing, and the staff id and PIN remain as the way in meanwhile.

use crate::card::{AuthCert, CardError, CardSession, Chain, Pin, PinFor, Transport};
use crate::clock::Clock;
use crate::node::{Node, NodeError};
use crate::reception::{Tap, challenge};
use kazashi_domain::Millis;
use kazashi_domain::ids::{CardKey, OperatorId};

/// Consecutive failures before a staff id or a card is locked.
pub const MAX_FAILURES: u32 = 5;
/// How long it stays locked.
pub const LOCK_MS: Millis = 10 * 60_000;

/// Whose PIN failures are counted.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A staff id as typed (PIN login, the second officer's PIN).
    Staff(&'a OperatorId),
    /// A card, by its deployment card key.
    Card(&'a CardKey),
}

impl Subject<'_> {
    pub(crate) fn key(&self) -> String {
        match self {
            Subject::Staff(op) => format!("lockout/staff/{}", op.as_str()),
            Subject::Card(c) => format!("lockout/card/{}", c.to_hex()),
        }
    }
}

#[derive(Debug, Default)]
struct Count {
    failures: u32,
    locked_until: Option<Millis>,
}

impl Count {
    /// 12 bytes: failures (u32 LE), then the lock's end (u64 LE, 0: none).
    fn encode(&self) -> Vec<u8> {
        let mut v = self.failures.to_le_bytes().to_vec();
        v.extend_from_slice(&self.locked_until.unwrap_or(0).to_le_bytes());
        v
    }

    /// A damaged record counts as one at the limit, locked for [`LOCK_MS`] from `now`: a
    /// tampered setting does not reset the count.
    fn decode(b: &[u8], now: Millis) -> Self {
        let failures = b
            .get(..4)
            .and_then(|x| x.try_into().ok())
            .map(u32::from_le_bytes);
        let until = b
            .get(4..12)
            .and_then(|x| x.try_into().ok())
            .map(u64::from_le_bytes);
        match (failures, until, b.len()) {
            (Some(failures), Some(u), 12) => Count {
                failures,
                locked_until: (u != 0).then_some(u),
            },
            _ => Count {
                failures: 0,
                locked_until: Some(now.saturating_add(LOCK_MS)),
            },
        }
    }
}

impl<C: Clock> Node<C> {
    fn lockout_count(&self, s: Subject<'_>) -> Result<Count, NodeError> {
        let now = self.station().clock().now_ms();
        Ok(self
            .setting(&s.key())?
            .map(|b| Count::decode(&b, now))
            .unwrap_or_default())
    }

    /// Until when `s` is locked, if it is now.
    pub fn locked_until(&self, s: Subject<'_>) -> Result<Option<Millis>, NodeError> {
        let now = self.station().clock().now_ms();
        Ok(self
            .lockout_count(s)?
            .locked_until
            .filter(|until| now < *until))
    }

    /// Count one failure for `s`; until when it is locked, if this one locked it.
    pub fn pin_failed(&self, s: Subject<'_>) -> Result<Option<Millis>, NodeError> {
        let now = self.station().clock().now_ms();
        let mut c = self.lockout_count(s)?;
        if c.locked_until.is_some_and(|u| now >= u) {
            c = Count::default();
        }
        c.failures = c.failures.saturating_add(1);
        if c.failures >= MAX_FAILURES {
            c.failures = 0;
            c.locked_until = Some(now.saturating_add(LOCK_MS));
        }
        self.set_setting(&s.key(), &c.encode())?;
        Ok(c.locked_until.filter(|u| now < *u))
    }

    /// A success: the count of `s` starts again, and its record is forgotten.
    pub fn pin_succeeded(&self, s: Subject<'_>) -> Result<(), NodeError> {
        if self.setting(&s.key())?.is_some() {
            self.store().delete_meta(&s.key())?;
        }
        Ok(())
    }

    /// The JPKI CA certificates (DER) the deployment trusts for cards (the manifest's).
    pub fn card_cas(&self) -> Vec<Vec<u8>> {
        self.membership().card_cas().to_vec()
    }

    /// A PIN-less tap checked against the manifest's card CAs (identification only).
    pub fn card_tap_checked<T: Transport>(
        &self,
        session: &mut CardSession<T>,
    ) -> Result<Tap, CardError> {
        let cas = self.card_cas();
        self.card_tap(session, &cas)
    }

    /// The first half of a card's proof: read the certificate, check it offline against the
    /// deployment's card CAs, and ask the card how many JPKI PIN tries it has left (refused
    /// with one left, so that Kazashi never locks it). Nothing is sent that changes the card.
    pub fn present_card<T: Transport>(
        &self,
        session: &mut CardSession<T>,
    ) -> Result<Presented, Refusal> {
        let cas = self.card_cas();
        if cas.is_empty() {
            return Err(Refusal::NoCas);
        }
        let cert = session.read_auth_cert().map_err(Refusal::Card)?;
        let tap = self.tap_of(&cert, &cas);
        if tap.chain != Chain::Trusted {
            return Err(Refusal::Chain(tap.chain));
        }
        if let Some(until) = self.locked_until(Subject::Card(&tap.card))? {
            return Err(Refusal::Locked { until });
        }
        let tries = safe_tries(session)?;
        Ok(Presented { cert, tap, tries })
    }

    /// The second half: the JPKI PIN typed by the holder, then a fresh challenge signed by
    /// the card and checked with the certificate's key. The card key on success.
    pub fn prove_card<T: Transport>(
        &self,
        session: &mut CardSession<T>,
        presented: &Presented,
        pin: &Pin,
    ) -> Result<CardKey, Refusal> {
        let card = presented.tap.card;
        if let Some(until) = self.locked_until(Subject::Card(&card))? {
            return Err(Refusal::Locked { until });
        }
        safe_tries(session)?;
        match session.verify_pin(PinFor::Jpki, pin) {
            Ok(()) => {}
            Err(e @ CardError::WrongPin { .. }) => {
                if let Some(until) = self.pin_failed(Subject::Card(&card))? {
                    return Err(Refusal::Locked { until });
                }
                return Err(Refusal::Card(e));
            }
            Err(e) => return Err(Refusal::Card(e)),
        }
        let c = challenge().map_err(Refusal::Card)?;
        let (digest_info, signature) = session.sign(&c).map_err(Refusal::Card)?;
        if !presented.cert.verifies(&digest_info, &signature) {
            // Not the certificate's card: not charged to its card key (module docs).
            return Err(Refusal::NotItsKey);
        }
        self.pin_succeeded(Subject::Card(&card))?;
        Ok(card)
    }
}

/// The JPKI PIN's tries left, refusing at one (or none).
fn safe_tries<T: Transport>(session: &mut CardSession<T>) -> Result<u8, Refusal> {
    match session.pin_tries(PinFor::Jpki) {
        Ok(n) if n <= 1 => Err(Refusal::LastTry),
        Ok(n) => Ok(n),
        Err(e) => Err(Refusal::Card(e)),
    }
}

/// A card whose certificate passed the chain check, waiting for its PIN.
#[derive(Debug, Clone)]
pub struct Presented {
    pub cert: AuthCert,
    pub tap: Tap,
    /// The JPKI PIN's tries left (at least 2).
    pub tries: u8,
}

/// Why a card was not taken as proof of its holder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    Card(CardError),
    #[error("the certificate failed the chain check: {0:?}")]
    Chain(Chain),
    #[error("the deployment lists no JPKI CA certificate: no card grants authority")]
    NoCas,
    #[error("the card's PIN has one try left: Kazashi does not use it")]
    LastTry,
    #[error("too many failures: locked until {}", kazashi_domain::time::jst_text(*.until))]
    Locked { until: Millis },
    #[error("the card does not hold the certificate's key (a copied certificate)")]
    NotItsKey,
    #[error("the store: {0}")]
    Store(String),
}

impl From<NodeError> for Refusal {
    fn from(e: NodeError) -> Self {
        Refusal::Store(e.to_string())
    }
}

/// "14:05" (JST) for a lock's end.
fn hhmm_jst(ms: Millis) -> String {
    let m = (ms + 9 * 3_600_000) / 60_000;
    format!("{:02}:{:02}", (m / 60) % 24, m % 60)
}

impl Refusal {
    pub fn message_ja(&self) -> String {
        match self {
            Refusal::Card(e) => e.message_ja(),
            Refusal::Chain(Chain::UnknownIssuer) => {
                "このカードの電子証明書は、配備で認められた発行元のものではありません。".into()
            }
            Refusal::Chain(Chain::BadSignature) => {
                "このカードの電子証明書の署名が正しくありません。".into()
            }
            Refusal::Chain(Chain::Expired) => {
                "このカードの電子証明書は有効期限が切れています。".into()
            }
            Refusal::Chain(Chain::NotYetValid) | Refusal::Chain(Chain::Trusted) => {
                "このカードの電子証明書はまだ有効ではありません。".into()
            }
            Refusal::NoCas => "配備にカードの発行元（公的個人認証のCA証明書）が登録されていないため、カードでは認証できません。職員IDと暗証番号を使ってください。".into(),
            Refusal::LastTry => "このカードの利用者証明用暗証番号は残り1回のため、ここでは使いません（間違えるとロックされます）。職員IDと暗証番号、または名簿検索を使ってください。".into(),
            Refusal::Locked { until } => format!(
                "暗証番号の誤りが続いたため、{}までロックしています。",
                hhmm_jst(*until)
            ),
            Refusal::NotItsKey => "このカードは電子証明書の鍵を持っていません（証明書の複製の疑い）。認証できません。".into(),
            Refusal::Store(_) => "記録の読み書きに失敗しました。".into(),
        }
    }

    pub fn message_en(&self) -> String {
        match self {
            Refusal::Card(e) => e.message_en(),
            Refusal::Chain(Chain::UnknownIssuer) => {
                "This card's certificate is not from an issuer the deployment trusts.".into()
            }
            Refusal::Chain(Chain::BadSignature) => {
                "This card's certificate has a bad signature.".into()
            }
            Refusal::Chain(Chain::Expired) => "This card's certificate has expired.".into(),
            Refusal::Chain(Chain::NotYetValid) | Refusal::Chain(Chain::Trusted) => {
                "This card's certificate is not valid yet.".into()
            }
            Refusal::NoCas => "The deployment lists no JPKI CA certificate, so no card can authenticate. Use the staff id and PIN.".into(),
            Refusal::LastTry => "This card's authentication PIN has one try left, so Kazashi will not use it (a mistake would lock it). Use the staff id and PIN, or the roster search.".into(),
            Refusal::Locked { until } => format!(
                "Too many wrong PINs: locked until {} (JST).",
                hhmm_jst(*until)
            ),
            Refusal::NotItsKey => "This card does not hold its certificate's key (a copied certificate?). Refused.".into(),
            Refusal::Store(_) => "The store could not be read or written.".into(),
        }
    }
}
