//! Finding the person at the reception desk — a card tap, a card read with its PIN, an
//! admission ticket (入場券), a typed search — and staff cards. Views call these; none of
//! them logs or keeps a name, address or card datum outside the encrypted store.

use crate::card::{AuthCert, BasicFour, CardError, CardSession, Chain, Pin, PinFor, Transport};
use crate::clock::Clock;
use crate::node::{Node, NodeError};
use kazashi_domain::detector::{Candidate, LIKELY};
use kazashi_domain::event::{Event, EventBody, WalkInPerson};
use kazashi_domain::ids::{CardKey, ListNumber, OperatorId, PersonId, PersonRef};
use kazashi_domain::text::{Address, Label, PersonName, TextError};
use unicode_normalization::UnicodeNormalization;

/// What a PIN-less tap found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tap {
    /// The card's pseudonym in this deployment.
    pub card: CardKey,
    /// Who the card is bound to, anywhere in the mesh (`None`: first time seen, or unbound).
    pub person: Option<PersonRef>,
    /// The certificate checked offline against the CA certificates given (revocation is not
    /// known offline: say so on screen).
    pub chain: Chain,
    /// Seconds since 1970 until which the certificate is valid.
    pub not_after: u64,
}

/// How a card's basic four items matched the roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BasicFourMatch {
    /// One roster entry matches likely or better, and no other does: select it.
    Strong(Candidate),
    /// Candidates for staff to choose from (or none likely enough to pick alone).
    Weak(Vec<Candidate>),
    NotFound,
}

/// Why a scanned admission ticket found no one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("the scan was empty")]
    Empty,
    #[error("not a 名簿番号: {0}")]
    NotAListNumber(String),
    #[error("名簿番号 {0} is not on the roster")]
    NotOnRoster(String),
}

impl TicketError {
    pub fn message_ja(&self) -> String {
        match self {
            TicketError::Empty => {
                "バーコードを読み取れませんでした。もう一度読み取ってください。".into()
            }
            TicketError::NotAListNumber(_) => "入場券のバーコードではないようです。".into(),
            TicketError::NotOnRoster(n) => format!("名簿番号 {n} は選挙人名簿にありません。"),
        }
    }
}

impl<C: Clock> Node<C> {
    /// The PIN-less tap: read the JPKI authentication certificate, derive the card key, find
    /// who it is bound to. `cas` are the JPKI CA certificates (DER) the deployment ships.
    pub fn card_tap<T: Transport>(
        &self,
        session: &mut CardSession<T>,
        cas: &[Vec<u8>],
    ) -> Result<Tap, CardError> {
        let cert = session.read_auth_cert()?;
        Ok(self.tap_of(&cert, cas))
    }

    /// [`Self::card_tap`] for a certificate already read.
    pub fn tap_of(&self, cert: &AuthCert, cas: &[Vec<u8>]) -> Tap {
        let card = cert.card_key(&self.station().deployment().id());
        let now = self.station().clock().now_ms() / 1000;
        Tap {
            card,
            person: self.card_person(&card),
            chain: cert.chain(cas, now),
            not_after: cert.not_after(),
        }
    }

    /// Who `card` is bound to now (bindings made at any site count once merged).
    pub fn card_person(&self, card: &CardKey) -> Option<PersonRef> {
        self.station().state().card_binding(card, None)
    }

    /// Bind a card to a person, after a PIN read or a staff lookup. From then on a tap at any
    /// site finds them without a PIN.
    pub fn bind_card(
        &mut self,
        operator: OperatorId,
        card: CardKey,
        person: PersonRef,
    ) -> Result<Event, NodeError> {
        self.record(
            operator,
            EventBody::CardBinding {
                card,
                person: Some(person),
            },
        )
    }

    /// Match a card's basic four items (name, birth date, sex, address) to the roster.
    pub fn match_basic_four(&mut self, b: &BasicFour) -> BasicFourMatch {
        let found = self
            .matcher()
            .find(&b.name, None, Some(b.birth_date), b.sex, Some(&b.address));
        let likely = found.iter().filter(|c| c.score >= LIKELY).count();
        match (likely, found.first()) {
            (1, Some(best)) => BasicFourMatch::Strong(best.clone()),
            (_, None) => BasicFourMatch::NotFound,
            _ => BasicFourMatch::Weak(found),
        }
    }

    /// Register a walk-in from their card's basic four (a person not on the roster: another
    /// town's resident), and bind the card to them. The one card flow that keeps the basic
    /// four: as the walk-in's registration (name, birth date, sex, address), in the encrypted
    /// log like any walk-in typed by staff. Returns the walk-in.
    pub fn register_walk_in_by_card(
        &mut self,
        operator: OperatorId,
        card: CardKey,
        four: &BasicFour,
        home_municipality: Option<Label>,
    ) -> Result<PersonRef, WalkInByCardError> {
        let person = walk_in_of(four)?;
        let reg = self.record(
            operator,
            EventBody::WalkInRegistration {
                members: vec![person],
                home_municipality,
            },
        )?;
        let walk_in = PersonRef::WalkIn {
            registration: reg.id(),
            index: 0,
        };
        self.bind_card(operator, card, walk_in)?;
        Ok(walk_in)
    }

    /// The voter of a scanned 入場券 barcode. A keyboard-wedge scanner types the 名簿番号
    /// (full-width digits and stray spaces are tolerated).
    pub fn admission_ticket(&self, scanned: &str) -> Result<PersonId, TicketError> {
        let code: String = scanned.nfkc().filter(|c| !c.is_whitespace()).collect();
        if code.is_empty() {
            return Err(TicketError::Empty);
        }
        if !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(TicketError::NotAListNumber(code.chars().take(24).collect()));
        }
        let n = ListNumber::new(&code).map_err(|_| TicketError::NotAListNumber(code.clone()))?;
        self.station()
            .roster()
            .by_list_number(&n)
            .map(|e| e.person)
            .ok_or(TicketError::NotOnRoster(code))
    }

    /// Staff search by kana, kanji, birth date (Western or 和暦) or address.
    pub fn search(&mut self, query: &str, limit: usize) -> Vec<PersonId> {
        self.search_index().search(query, limit)
    }
}

/// Why a card's basic four did not become a walk-in registration (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum WalkInByCardError {
    #[error("the card's {0}")]
    Text(#[from] TextError),
    #[error(transparent)]
    Node(#[from] NodeError),
}

/// A walk-in's entry from a card's basic four, exactly as the card has them (no reading: the
/// card carries none; care needs are asked, not read).
pub fn walk_in_of(four: &BasicFour) -> Result<WalkInPerson, TextError> {
    Ok(WalkInPerson {
        name: PersonName::new(&four.name)?,
        kana: None,
        birth_date: Some(four.birth_date),
        sex: four.sex,
        address: Some(Address::new(&four.address)?),
        care_needs: Default::default(),
    })
}

/// The possession check (an election option): after the JPKI PIN, the card signs a fresh
/// challenge with its authentication key, checked with the certificate's public key. One PIN
/// try only. `Ok(false)`: the signature does not verify (a cloned certificate, a wrong key).
pub fn possession_check<T: Transport>(
    session: &mut CardSession<T>,
    cert: &AuthCert,
    pin: &Pin,
    challenge: &[u8],
) -> Result<bool, CardError> {
    session.verify_pin(PinFor::Jpki, pin)?;
    let (digest_info, signature) = session.sign(challenge)?;
    Ok(cert.verifies(&digest_info, &signature))
}

/// A fresh 32-byte challenge from the operating system.
pub fn challenge() -> Result<[u8; 32], CardError> {
    let mut c = [0u8; 32];
    getrandom::fill(&mut c).map_err(|e| CardError::Reader(e.to_string()))?;
    Ok(c)
}
