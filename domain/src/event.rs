//! Events: every fact Kazashi records. An event is immutable; corrections are new events
//! (an undo, a retraction, a newer household card).
//!
//! An [`Event`]'s id is the first 16 bytes of the SHA-256 of its content, so equal ids mean equal
//! events, duplicates collapse by themselves, and no two devices can mint the same id. An `Event`
//! can only be made through [`Event::new`] (or decoded, which calls it), which also checks every
//! rule that depends on the event alone.

use crate::hlc::Timestamp;
use crate::ids::{
    AlertId, CardKey, DeviceId, EventId, HouseholdRef, OperatorId, PersonId, PersonRef, SiteId,
};
use crate::roster::{CareNeed, Sex};
use crate::text::{Address, KanaReading, Label, Note, PersonName, Phone};
use crate::time::{CivilDate, Millis};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Most persons one event may name (a household plus relatives who came with it).
pub const MAX_MEMBERS: usize = 32;

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the event names no person")]
    NoMembers,
    #[error("the event names {0} persons; at most {MAX_MEMBERS} are allowed")]
    TooManyMembers(usize),
    #[error("person {0} is named twice in one event")]
    DuplicateMember(PersonRef),
    #[error("an override needs a second officer different from the operator ({0})")]
    SameOfficer(OperatorId),
    #[error("a same-as / not-same assertion must name two different persons")]
    SamePerson,
    #[error("a transfer must go to another site")]
    TransferToSameSite,
    #[error("birth date {birth} is after the day of the event ({day})")]
    BirthAfterEvent { birth: CivilDate, day: CivilDate },
    #[error("a status report's counts do not add up: {0}")]
    InconsistentReport(&'static str),
    #[error("the household card mentions person {0} twice")]
    DuplicateCardMember(PersonRef),
    #[error("unknown site {0}")]
    UnknownSite(SiteId),
    #[error("{event} cannot be recorded at site {site} ({reason})")]
    WrongSite {
        event: &'static str,
        site: SiteId,
        reason: &'static str,
    },
    #[error("{0} belongs to the other kind of deployment")]
    WrongDeploymentKind(&'static str),
    #[error("person {0} is not on the roster")]
    UnknownPerson(PersonId),
    #[error("household {0} is not on the roster")]
    UnknownHousehold(crate::ids::HouseholdId),
    #[error("person {0} is not a voter on this roster")]
    NotAVoter(PersonId),
    #[error("an event could not be encoded")]
    Encoding,
}

/// The persons one event is about: 1..=MAX_MEMBERS, no repeats, kept in the order given.
/// One person (a single household, most check-outs of one) is kept inline, with no allocation
/// of its own; the enum's largest body is larger than this anyway. Encoded as a list, as before.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<PersonRef>", into = "Vec<PersonRef>")]
pub struct Members(smallvec::SmallVec<[PersonRef; 1]>);

impl Members {
    pub fn new(people: Vec<PersonRef>) -> Result<Self, EventError> {
        if people.is_empty() {
            return Err(EventError::NoMembers);
        }
        if people.len() > MAX_MEMBERS {
            return Err(EventError::TooManyMembers(people.len()));
        }
        let mut seen = BTreeSet::new();
        for p in &people {
            if !seen.insert(*p) {
                return Err(EventError::DuplicateMember(*p));
            }
        }
        Ok(Self(if people.len() <= 1 {
            // Inline whatever the vector's capacity (`from_vec` keeps a spare heap buffer).
            smallvec::SmallVec::from_slice(&people)
        } else {
            smallvec::SmallVec::from_vec(people)
        }))
    }
    pub fn one(p: PersonRef) -> Self {
        Self(smallvec::smallvec![p])
    }
    pub fn as_slice(&self) -> &[PersonRef] {
        &self.0
    }
}

impl TryFrom<Vec<PersonRef>> for Members {
    type Error = EventError;
    fn try_from(v: Vec<PersonRef>) -> Result<Self, EventError> {
        Self::new(v)
    }
}

impl From<Members> for Vec<PersonRef> {
    fn from(m: Members) -> Self {
        m.0.into_vec()
    }
}

/// How staff identified the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum IdMethod {
    /// My Number Card tap (certificate-derived card key, no PIN).
    CardTap,
    /// My Number Card read with PIN (basic four items matched to the roster).
    CardWithPin,
    /// 入場券 barcode (名簿番号).
    AdmissionTicket,
    /// Staff search by name, reading, birth date or address.
    Lookup,
    /// A bound token (a contactless card's UID or IDm, a printed wristband): found without a
    /// PIN, and no proof of identity (staff compare the face, ask the name).
    Token,
}

/// 退所理由.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CheckOutReason {
    /// 帰宅.
    Home,
    /// 入院.
    Hospital,
    /// 他の避難所へ (the site if known).
    OtherShelter(Option<SiteId>),
    /// 親族・知人宅へ.
    Relatives,
    /// その他.
    Other,
}

/// 外出 (back the same day) or 外泊 (away overnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LeaveKind {
    Outing,
    Overnight,
}

/// Where a household is staying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum StayingPlace {
    /// 避難所内.
    InShelter,
    /// 在宅避難.
    AtHome,
    /// 車中泊.
    Car,
    /// テント.
    Tent,
    /// 親族・知人宅.
    Relatives,
    /// その他.
    Other,
}

/// 住家被害.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum HousingDamage {
    /// 全壊.
    Total,
    /// 大規模半壊.
    MajorHalf,
    /// 半壊.
    Half,
    /// 一部損壊.
    Partial,
    /// 被害なし.
    None,
}

/// 浸水.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Flooding {
    /// 床上浸水.
    AboveFloor,
    /// 床下浸水.
    BelowFloor,
}

/// The widest audience a person agreed may be told they are safe and where (安否情報).
/// Ordered from narrowest to widest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Disclosure {
    /// 開示しない.
    Nobody,
    /// 同居の親族・親族.
    Relatives,
    /// 知人.
    Acquaintances,
    /// 一般 (may be published).
    Public,
}

/// Per-member part of the household card.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MemberCard {
    pub person: PersonRef,
    pub care_needs: BTreeSet<CareNeed>,
    pub allergies: Option<Label>,
    pub medication: Option<Label>,
    /// Overrides the household's disclosure for this member.
    pub disclosure: Option<Disclosure>,
    /// 問診票 in the clear, as versions before sealed notes wrote it: still read so old events
    /// stay valid, but nothing writes it now (`EventBody::SealedNote` instead) and no view or
    /// export shows it.
    pub medical_note: Option<Note>,
}

/// 避難者カード: one per household; the latest card (in event order) is current.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HouseholdCard {
    pub representative: Option<PersonRef>,
    pub phone: Option<Phone>,
    pub damage: Option<HousingDamage>,
    pub flooding: Option<Flooding>,
    pub staying: StayingPlace,
    /// Vehicle (for car sleepers and parking), as described.
    pub car: Option<Label>,
    /// Pets, as described (e.g. "犬1匹").
    pub pets: Option<Label>,
    pub disclosure: Disclosure,
    /// DV被害者等: never disclose anything about this household to anyone.
    pub dv_block: bool,
    pub members: Vec<MemberCard>,
    pub notes: Option<Note>,
}

/// A person registered on the spot, not on the roster (someone from another town, a visitor).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WalkInPerson {
    pub name: PersonName,
    pub kana: Option<KanaReading>,
    pub birth_date: Option<CivilDate>,
    pub sex: Sex,
    pub address: Option<Address>,
    pub care_needs: BTreeSet<CareNeed>,
}

/// Age bands used in shelter reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AgeBand {
    /// 0–5 (未就学).
    Under6,
    /// 6–14.
    Age6To14,
    /// 15–64.
    Age15To64,
    /// 65–74.
    Age65To74,
    /// 75 and over.
    Over75,
}

impl AgeBand {
    pub const ALL: [AgeBand; 5] = [
        AgeBand::Under6,
        AgeBand::Age6To14,
        AgeBand::Age15To64,
        AgeBand::Age65To74,
        AgeBand::Over75,
    ];

    pub fn of_age(age: u32) -> Self {
        match age {
            0..=5 => AgeBand::Under6,
            6..=14 => AgeBand::Age6To14,
            15..=64 => AgeBand::Age15To64,
            65..=74 => AgeBand::Age65To74,
            _ => AgeBand::Over75,
        }
    }
    pub fn label_ja(self) -> &'static str {
        match self {
            AgeBand::Under6 => "0〜5歳",
            AgeBand::Age6To14 => "6〜14歳",
            AgeBand::Age15To64 => "15〜64歳",
            AgeBand::Age65To74 => "65〜74歳",
            AgeBand::Over75 => "75歳以上",
        }
    }
}

/// State of one lifeline in a status report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LifelineStatus {
    Available,
    Limited,
    Out,
    Unknown,
}

/// ライフライン.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Lifelines {
    pub power: LifelineStatus,
    pub water: LifelineStatus,
    pub gas: LifelineStatus,
    pub comms: LifelineStatus,
    pub toilets: LifelineStatus,
}

/// 建物の安全確認.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BuildingSafety {
    Safe,
    NeedsInspection,
    Unsafe,
    Unknown,
}

/// One shortage line (不足物資).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Shortage {
    pub item: Label,
    pub quantity: Option<u32>,
    pub note: Option<Note>,
}

/// 第1報, a periodic report, or the closing report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ReportKind {
    First,
    Periodic(u16),
    Closing,
}

/// Counts as entered in a status report (prefilled from the fold, possibly corrected by staff).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReportCounts {
    pub persons: u32,
    pub households: u32,
    pub male: u32,
    pub female: u32,
    pub sex_unspecified: u32,
    pub by_age: BTreeMap<AgeBand, u32>,
    pub care_needs: BTreeMap<CareNeed, u32>,
    /// Supported outside the building (在宅・車中泊・テント).
    pub supported_outside: u32,
}

/// 避難所状況報告.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StatusReport {
    pub kind: ReportKind,
    pub opened_at: Option<Millis>,
    pub counts: ReportCounts,
    pub building: BuildingSafety,
    pub lifelines: Lifelines,
    pub shortages: Vec<Shortage>,
    pub issues: Option<Note>,
}

/// 投票事由 (公職選挙法第48条の2第1項 各号).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EarlyVotingReason {
    /// 1号: 仕事・学業・冠婚葬祭その他の用務.
    Duties,
    /// 2号: 用務・事故のため投票区外に旅行・滞在.
    Travel,
    /// 3号: 疾病・負傷・妊娠・身体障害等で歩行困難、又は収容.
    Health,
    /// 4号: 交通至難の島等に居住・滞在.
    RemoteIsland,
    /// 5号: 投票区のある市町村外に住所を移転.
    MovedAway,
    /// 6号: 天災又は悪天候により投票所に到達困難.
    DisasterOrWeather,
}

impl EarlyVotingReason {
    pub const ALL: [EarlyVotingReason; 6] = [
        EarlyVotingReason::Duties,
        EarlyVotingReason::Travel,
        EarlyVotingReason::Health,
        EarlyVotingReason::RemoteIsland,
        EarlyVotingReason::MovedAway,
        EarlyVotingReason::DisasterOrWeather,
    ];
    /// Clause number in the sworn statement.
    pub fn clause(self) -> u8 {
        match self {
            EarlyVotingReason::Duties => 1,
            EarlyVotingReason::Travel => 2,
            EarlyVotingReason::Health => 3,
            EarlyVotingReason::RemoteIsland => 4,
            EarlyVotingReason::MovedAway => 5,
            EarlyVotingReason::DisasterOrWeather => 6,
        }
    }
    pub fn label_ja(self) -> &'static str {
        match self {
            EarlyVotingReason::Duties => "仕事・学業・冠婚葬祭等の用務",
            EarlyVotingReason::Travel => "用務・事故による投票区外への旅行・滞在",
            EarlyVotingReason::Health => "疾病・負傷・妊娠・身体の障害等",
            EarlyVotingReason::RemoteIsland => "交通至難の島等に居住・滞在",
            EarlyVotingReason::MovedAway => "市町村外への住所移転",
            EarlyVotingReason::DisasterOrWeather => "天災・悪天候",
        }
    }
}

/// Early vote or election-day vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum VoteMode {
    Early(EarlyVotingReason),
    ElectionDay,
}

/// What a live check stopped, and an override let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BlockReason {
    /// Another check-in (not undone) was already on the merged log.
    AlreadyVoted,
    /// The roster extract says the voter already voted (absentee or early).
    RosterFlaggedVoted,
    /// Election day, but not this station's 投票区.
    WrongPrecinct,
    /// The roster marks the voter ineligible.
    Ineligible,
}

/// A check-in let through a block by two officers: the event's operator and `second_officer`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Override {
    pub second_officer: OperatorId,
    pub blocks: BTreeSet<BlockReason>,
    pub reason: Note,
    /// The earlier check-ins shown as evidence when the block appeared.
    pub evidence: Vec<EventId>,
}

/// How an alert was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AlertOutcome {
    /// A real problem, dealt with.
    Confirmed,
    /// Not a problem (e.g. two different people).
    Dismissed,
    /// Opened again.
    Reopened,
}

/// Open or close a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SiteState {
    Opened,
    Closed,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EventBody {
    /// Chosen household members enter the shelter.
    ShelterCheckIn {
        household: Option<HouseholdRef>,
        members: Members,
        method: IdMethod,
    },
    /// 退所.
    ShelterCheckOut {
        members: Members,
        reason: CheckOutReason,
    },
    /// 外出 / 外泊届.
    TemporaryLeave {
        members: Members,
        kind: LeaveKind,
        expected_return: Option<Millis>,
    },
    /// Back from 外出 / 外泊.
    ReturnFromLeave { members: Members },
    /// Moved by the shelter to another site (e.g. to a 福祉避難所).
    Transfer { members: Members, to: SiteId },
    /// At-home, car or tent evacuees supported by this site (災害対策基本法 §86-7).
    SupportOnlyRegistration {
        household: Option<HouseholdRef>,
        members: Members,
        staying: StayingPlace,
    },
    /// Persons not on the roster, registered as one household. They are referred to as
    /// `PersonRef::WalkIn { registration: <this event>, index }`.
    WalkInRegistration {
        members: Vec<WalkInPerson>,
        home_municipality: Option<Label>,
    },
    /// 避難者カード (replaces the household's previous card).
    HouseholdCard {
        household: HouseholdRef,
        card: Box<HouseholdCard>,
    },
    /// 避難所状況報告.
    ShelterStatusReport(Box<StatusReport>),
    /// Site opened or closed.
    SiteLifecycle(SiteState),
    /// A voter receives a ballot.
    VoterCheckIn {
        voter: PersonId,
        mode: VoteMode,
        method: IdMethod,
        override_: Option<Box<Override>>,
    },
    /// Ballots issued up to `period_end`, counted by hand, for the hourly reconciliation.
    BallotTally {
        period_end: Millis,
        ballots_issued: u32,
    },
    /// Withdraw a check-in (shelter or voter) recorded in error. The operator is the manager.
    UndoCheckIn { target: EventId, reason: Note },
    /// Bind a card key to a person (or unbind it with `None`).
    CardBinding {
        card: CardKey,
        person: Option<PersonRef>,
    },
    /// Two person records are the same human.
    SameAs {
        a: PersonRef,
        b: PersonRef,
        note: Option<Note>,
    },
    /// Two person records are different humans (silences the matcher).
    NotSame {
        a: PersonRef,
        b: PersonRef,
        note: Option<Note>,
    },
    /// Withdraw a same-as / not-same assertion.
    RetractAssertion { target: EventId, reason: Note },
    /// Settle (or reopen) a detector alert.
    AlertResolution {
        alert: AlertId,
        outcome: AlertOutcome,
        note: Option<Note>,
    },
    /// Lift the DV block (DV被害者等) that household cards set on `household`. Nothing else
    /// clears it — not a later card without the flag, not a report for an earlier hour: it
    /// clears only the cards before it in the agreed order. A manager (lead) writes it.
    DvBlockLift {
        household: HouseholdRef,
        reason: Note,
    },
    /// A person's own consent to be named in safety answers (安否情報), recorded at reception:
    /// for a roster resident, who may have no household card, or anyone. When later than the
    /// household card it overrides the card's level for this person.
    Consent {
        person: PersonRef,
        disclosure: Disclosure,
    },
    /// A manager closes the whole operation (every site): from this event on, laptops write
    /// nothing more, and the retention clock for the purge starts at its time (issue 24).
    /// `retention_days` is the period the manager announced; the manifest's, when it sets one,
    /// wins.
    OperationClosed { retention_days: Option<u32> },
    /// A note sealed to roles (`crate::sealed_note`): a 問診票 note (medical staff and managers)
    /// or DV/protection details (managers), attached to a roster resident or a walk-in. Only
    /// laptops holding the purpose keys can read it; every laptop stores and relays it.
    SealedNote {
        person: PersonRef,
        kind: crate::sealed_note::NoteKind,
        sealed: crate::sealed_note::SealedBytes,
    },
    /// An audit record: a read of personal data beyond reception, an unlock, an override or
    /// a roster switch, chained per device (`crate::audit`).
    Audit(Box<crate::audit::AuditRecord>),
    /// A relative (or anyone staff trust) reports that `person` is safe, though not seen at
    /// any site: the person leaves the 安否未確認 list (`crate::unconfirmed`). `by` says who
    /// reported (a relation or a label, e.g. 長男); no name of the reporter is needed. A
    /// `RetractAssertion` naming this event withdraws it.
    ReportedSafe {
        person: PersonRef,
        by: Label,
        note: Option<Note>,
    },
}

impl EventBody {
    /// A short English name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            EventBody::ShelterCheckIn { .. } => "shelter check-in",
            EventBody::ShelterCheckOut { .. } => "shelter check-out",
            EventBody::TemporaryLeave { .. } => "temporary leave",
            EventBody::ReturnFromLeave { .. } => "return from leave",
            EventBody::Transfer { .. } => "transfer",
            EventBody::SupportOnlyRegistration { .. } => "support-only registration",
            EventBody::WalkInRegistration { .. } => "walk-in registration",
            EventBody::HouseholdCard { .. } => "household card",
            EventBody::ShelterStatusReport(_) => "shelter status report",
            EventBody::SiteLifecycle(_) => "site opened/closed",
            EventBody::VoterCheckIn { .. } => "voter check-in",
            EventBody::BallotTally { .. } => "ballot tally",
            EventBody::UndoCheckIn { .. } => "undo",
            EventBody::CardBinding { .. } => "card binding",
            EventBody::SameAs { .. } => "same-as assertion",
            EventBody::NotSame { .. } => "not-same assertion",
            EventBody::RetractAssertion { .. } => "retraction",
            EventBody::AlertResolution { .. } => "alert resolution",
            EventBody::DvBlockLift { .. } => "DV block lift",
            EventBody::Consent { .. } => "consent",
            EventBody::OperationClosed { .. } => "operation close",
            EventBody::Audit(_) => "audit record",
            EventBody::SealedNote { .. } => "sealed note",
            EventBody::ReportedSafe { .. } => "reported safe",
        }
    }

    /// The persons whose shelter stay this event changes, if it is a stay event.
    pub fn stay_members(&self) -> Option<&Members> {
        match self {
            EventBody::ShelterCheckIn { members, .. }
            | EventBody::ShelterCheckOut { members, .. }
            | EventBody::TemporaryLeave { members, .. }
            | EventBody::ReturnFromLeave { members }
            | EventBody::Transfer { members, .. }
            | EventBody::SupportOnlyRegistration { members, .. } => Some(members),
            _ => None,
        }
    }

    /// True for events an undo may target.
    pub fn is_check_in(&self) -> bool {
        matches!(
            self,
            EventBody::ShelterCheckIn { .. } | EventBody::VoterCheckIn { .. }
        )
    }
}

/// Everything an event says; its id is derived from this.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventContent {
    /// The device that wrote (and signs) the event.
    pub device: DeviceId,
    pub site: SiteId,
    /// The staff member at the keyboard.
    pub operator: OperatorId,
    /// Hybrid-logical-clock time of writing.
    pub at: Timestamp,
    pub body: EventBody,
}

/// The position of an event in the total order every node agrees on.
pub type OrderKey = (Timestamp, EventId);

/// Who wrote an event and where: a deployment has few of these (its laptops, sites and staff),
/// and its events share them (see [`shared_origin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Origin {
    device: DeviceId,
    site: SiteId,
    operator: OperatorId,
}

/// Slots of the per-thread cache of origins ([`shared_origin`]).
const ORIGIN_SLOTS: usize = 256;

thread_local! {
    /// The origins this thread made lately, by a hash of their value. Only a cache: an origin
    /// missing here is made anew (an equal value, so nothing the model answers changes), and it
    /// holds at most [`ORIGIN_SLOTS`] of them whatever the input.
    static RECENT_ORIGINS: std::cell::RefCell<Vec<Option<Arc<Origin>>>> =
        std::cell::RefCell::new(vec![None; ORIGIN_SLOTS]);
}

/// One shared copy of `origin`: the one this thread made last for an equal value, if its slot
/// still holds it. Events keep a pointer (8 bytes) instead of the 98 bytes of device, site and
/// operator — at a million events, 90 MiB less for the same log.
fn shared_origin(origin: Origin) -> Arc<Origin> {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    origin.hash(&mut h);
    // FxHash's high bits are its best mixed; ORIGIN_SLOTS is a power of two below 2^32.
    let slot = (h.finish() >> 32) as usize % ORIGIN_SLOTS;
    RECENT_ORIGINS
        .try_with(|cache| {
            let mut cache = cache.borrow_mut();
            match cache.get_mut(slot) {
                Some(Some(known)) if **known == origin => known.clone(),
                Some(entry) => entry.insert(Arc::new(origin)).clone(),
                None => Arc::new(origin),
            }
        })
        .unwrap_or_else(|_| Arc::new(origin))
}

/// An immutable, content-addressed event.
///
/// Held as its id, time, body and a shared [`Origin`] (112 bytes, was 208 with the content
/// inline): equality, order, hashing, `Debug` and the encoding are those of the id followed by
/// the [`EventContent`], as before.
#[derive(Clone)]
pub struct Event {
    id: EventId,
    at: Timestamp,
    origin: Arc<Origin>,
    body: EventBody,
}

/// The content as the encoding and `Debug` see it, borrowed from an [`Event`]: serialised
/// exactly as [`EventContent`] (same fields, same order).
#[derive(Serialize)]
#[serde(rename = "EventContent")]
struct ContentRef<'a> {
    device: &'a DeviceId,
    site: &'a SiteId,
    operator: &'a OperatorId,
    at: &'a Timestamp,
    body: &'a EventBody,
}

impl std::fmt::Debug for ContentRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventContent")
            .field("device", self.device)
            .field("site", self.site)
            .field("operator", self.operator)
            .field("at", self.at)
            .field("body", self.body)
            .finish()
    }
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("id", &self.id)
            .field("content", &self.content_ref())
            .finish()
    }
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.at == other.at
            && self.origin == other.origin
            && self.body == other.body
    }
}

impl Eq for Event {}

/// The id, then the content (device, site, operator, time, body).
impl Ord for Event {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.id
            .cmp(&other.id)
            .then_with(|| self.origin.cmp(&other.origin))
            .then_with(|| self.at.cmp(&other.at))
            .then_with(|| self.body.cmp(&other.body))
    }
}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The id, then the content's fields in order.
impl std::hash::Hash for Event {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
        self.origin.hash(state);
        self.at.hash(state);
        self.body.hash(state);
    }
}

impl Event {
    /// Check the rules that depend on the event alone and derive its id.
    pub fn new(content: EventContent) -> Result<Self, EventError> {
        check_intrinsic(&content)?;
        let bytes = postcard::to_allocvec(&content).map_err(|_| EventError::Encoding)?;
        Ok(Self::from_parts(id_of(&bytes)?, content))
    }

    fn from_parts(id: EventId, content: EventContent) -> Self {
        let EventContent {
            device,
            site,
            operator,
            at,
            body,
        } = content;
        Self {
            id,
            at,
            origin: shared_origin(Origin {
                device,
                site,
                operator,
            }),
            body,
        }
    }

    fn content_ref(&self) -> ContentRef<'_> {
        ContentRef {
            device: &self.origin.device,
            site: &self.origin.site,
            operator: &self.origin.operator,
            at: &self.at,
            body: &self.body,
        }
    }

    pub fn id(&self) -> EventId {
        self.id
    }
    /// Everything the event says, as a value (an event keeps its device, site and operator
    /// shared with other events, not in an `EventContent`).
    pub fn content(&self) -> EventContent {
        EventContent {
            device: self.origin.device,
            site: self.origin.site,
            operator: self.origin.operator,
            at: self.at,
            body: self.body.clone(),
        }
    }
    pub fn device(&self) -> DeviceId {
        self.origin.device
    }
    pub fn site(&self) -> SiteId {
        self.origin.site
    }
    pub fn operator(&self) -> OperatorId {
        self.origin.operator
    }
    pub fn at(&self) -> Timestamp {
        self.at
    }
    pub fn body(&self) -> &EventBody {
        &self.body
    }
    /// Position in the agreed total order: HLC time, then id.
    pub fn order_key(&self) -> OrderKey {
        (self.at, self.id)
    }

    /// The compact binary encoding (postcard) of the content; the id is re-derived on decode.
    /// [`Event::new`] encoded the same content already, so this fails only if postcard does
    /// not encode the same value twice alike; the error is passed on, never empty bytes.
    pub fn encode(&self) -> Result<Vec<u8>, EventError> {
        postcard::to_allocvec(&self.content_ref()).map_err(|_| EventError::Encoding)
    }

    /// Decode and validate bytes from a peer, a file or a store. Only the canonical encoding
    /// is taken (the bytes [`Event::encode`] writes for what they decode to): postcard also
    /// reads trailing bytes and over-long integers, and one event must have one byte string.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let content: EventContent =
            postcard::from_bytes(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        let event = Event::new(content).map_err(DecodeError::Invalid)?;
        if event.encode().map_err(DecodeError::Invalid)? != bytes {
            return Err(DecodeError::Malformed(
                "the event is not in its canonical encoding".into(),
            ));
        }
        Ok(event)
    }

    /// Decode bytes that [`Event::encode`] wrote and this node kept in its own authenticated
    /// store (the cold start): the id is the hash of these bytes as they are, without encoding
    /// the content again. Bytes from anywhere else must go through [`Event::decode`], which
    /// refuses non-canonical encodings.
    pub fn decode_own(bytes: &[u8]) -> Result<Self, DecodeError> {
        let content: EventContent =
            postcard::from_bytes(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        check_intrinsic(&content).map_err(DecodeError::Invalid)?;
        let id = id_of(bytes).map_err(DecodeError::Invalid)?;
        Ok(Self::from_parts(id, content))
    }
}

/// An event's id: the first 16 bytes of SHA-256 over a tag and the content's encoding.
fn id_of(bytes: &[u8]) -> Result<EventId, EventError> {
    let mut h = Sha256::new();
    h.update(b"kazashi-event-v1");
    h.update(bytes);
    let digest = h.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(digest.get(..16).ok_or(EventError::Encoding)?);
    Ok(EventId(id))
}

/// Why bytes did not decode into an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed event bytes: {0}")]
    Malformed(String),
    #[error("invalid event: {0}")]
    Invalid(EventError),
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.content_ref().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let content = EventContent::deserialize(d)?;
        Event::new(content).map_err(serde::de::Error::custom)
    }
}

fn check_intrinsic(c: &EventContent) -> Result<(), EventError> {
    let day = crate::time::CivilDate::jst_of(c.at.wall_ms);
    match &c.body {
        EventBody::Transfer { to, .. } if *to == c.site => Err(EventError::TransferToSameSite),
        EventBody::WalkInRegistration { members, .. } => {
            if members.is_empty() {
                return Err(EventError::NoMembers);
            }
            if members.len() > MAX_MEMBERS {
                return Err(EventError::TooManyMembers(members.len()));
            }
            if let Some(day) = day {
                for m in members {
                    if let Some(b) = m.birth_date
                        && b > day
                    {
                        return Err(EventError::BirthAfterEvent { birth: b, day });
                    }
                }
            }
            Ok(())
        }
        EventBody::VoterCheckIn {
            override_: Some(o), ..
        } if o.second_officer == c.operator => Err(EventError::SameOfficer(c.operator)),
        EventBody::Audit(r) => {
            let persons = &r.persons;
            if persons.len() > crate::audit::MAX_PERSONS {
                return Err(EventError::TooManyMembers(persons.len()));
            }
            let mut seen = BTreeSet::new();
            for p in persons {
                if !seen.insert(*p) {
                    return Err(EventError::DuplicateMember(*p));
                }
            }
            Ok(())
        }
        EventBody::SameAs { a, b, .. } | EventBody::NotSame { a, b, .. } if a == b => {
            Err(EventError::SamePerson)
        }
        EventBody::HouseholdCard { card, .. } => {
            let mut seen = BTreeSet::new();
            for m in &card.members {
                if !seen.insert(m.person) {
                    return Err(EventError::DuplicateCardMember(m.person));
                }
            }
            Ok(())
        }
        EventBody::ShelterStatusReport(r) => {
            let n = &r.counts;
            let sexes = u64::from(n.male) + u64::from(n.female) + u64::from(n.sex_unspecified);
            if sexes > u64::from(n.persons) {
                return Err(EventError::InconsistentReport(
                    "male + female + unspecified exceeds persons",
                ));
            }
            if n.households > n.persons {
                return Err(EventError::InconsistentReport(
                    "more households than persons",
                ));
            }
            let ages: u64 = n.by_age.values().map(|&v| u64::from(v)).sum();
            if ages > u64::from(n.persons) {
                return Err(EventError::InconsistentReport("age bands exceed persons"));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(s: &str) -> PersonRef {
        PersonRef::Roster(PersonId::new(s).unwrap())
    }

    fn content(body: EventBody) -> EventContent {
        EventContent {
            device: DeviceId([7; 32]),
            site: SiteId::new("S1").unwrap(),
            operator: OperatorId::new("op1").unwrap(),
            at: Timestamp::new(1_790_000_000_000, 0),
            body,
        }
    }

    #[test]
    fn members_are_checked() {
        assert_eq!(Members::new(vec![]), Err(EventError::NoMembers));
        assert_eq!(
            Members::new(vec![pid("1"), pid("1")]),
            Err(EventError::DuplicateMember(pid("1")))
        );
        let many: Vec<_> = (0..33).map(|i| pid(&i.to_string())).collect();
        assert_eq!(Members::new(many), Err(EventError::TooManyMembers(33)));
    }

    #[test]
    fn ids_are_content_hashes_and_round_trip() {
        let body = || EventBody::ShelterCheckIn {
            household: None,
            members: Members::one(pid("1")),
            method: IdMethod::CardTap,
        };
        let a = Event::new(content(body())).unwrap();
        let b = Event::new(content(body())).unwrap();
        assert_eq!(a.id(), b.id());
        let mut other = content(body());
        other.at.counter = 1;
        assert_ne!(Event::new(other).unwrap().id(), a.id());
        let decoded = Event::decode(&a.encode().unwrap()).unwrap();
        assert_eq!(decoded, a);
    }

    /// The event holds its content apart (a shared origin); its encoding, id, order and
    /// hash are still those of the id and the whole content, as when it held an
    /// `EventContent` inline.
    #[test]
    fn shared_origin_changes_no_encoding_order_or_hash() {
        use std::hash::BuildHasher;
        let bodies = [
            EventBody::SiteLifecycle(SiteState::Opened),
            EventBody::ShelterCheckIn {
                household: None,
                members: Members::new(vec![pid("1"), pid("2")]).unwrap(),
                method: IdMethod::CardTap,
            },
            EventBody::SameAs {
                a: pid("1"),
                b: pid("2"),
                note: Some(Note::new("同一人物").unwrap()),
            },
        ];
        let mut events = Vec::new();
        for (k, body) in bodies.into_iter().enumerate() {
            for device in [DeviceId([7; 32]), DeviceId([8; 32])] {
                let mut c = content(body.clone());
                c.device = device;
                c.at.counter = k as u32;
                let bytes = postcard::to_allocvec(&c).unwrap();
                let e = Event::new(c.clone()).unwrap();
                assert_eq!(e.encode().unwrap(), bytes);
                assert_eq!(postcard::to_allocvec(&e).unwrap(), bytes);
                assert_eq!(Event::decode(&bytes).unwrap(), e);
                assert_eq!(Event::decode_own(&bytes).unwrap(), e);
                assert_eq!(e.content(), c);
                assert_eq!(
                    format!("{e:?}"),
                    format!("Event {{ id: {:?}, content: {c:?} }}", e.id())
                );
                let h = rustc_hash::FxBuildHasher;
                assert_eq!(h.hash_one(&e), h.hash_one((e.id(), &c)));
                events.push((e, c));
            }
        }
        for (a, ca) in &events {
            for (b, cb) in &events {
                assert_eq!(a.cmp(b), (a.id(), ca).cmp(&(b.id(), cb)));
                assert_eq!(a == b, (a.id(), ca) == (b.id(), cb));
            }
        }
    }

    #[test]
    fn events_share_their_origin_and_stay_small() {
        assert!(std::mem::size_of::<Event>() <= 112);
        assert!(std::mem::size_of::<EventBody>() <= 72);
        let mut v = Vec::with_capacity(8);
        v.push(pid("1"));
        assert!(!Members::new(v).unwrap().0.spilled());
        let a = Event::new(content(EventBody::SiteLifecycle(SiteState::Opened))).unwrap();
        let b = Event::new(content(EventBody::SiteLifecycle(SiteState::Closed))).unwrap();
        assert!(Arc::ptr_eq(&a.origin, &b.origin));
        let mut other = content(EventBody::SiteLifecycle(SiteState::Closed));
        other.operator = OperatorId::new("op2").unwrap();
        let c = Event::new(other).unwrap();
        assert_eq!(c.operator(), OperatorId::new("op2").unwrap());
        assert_eq!(c.site(), a.site());
        assert_eq!(c.device(), a.device());
        assert_ne!(c.content(), b.content());
    }

    #[test]
    fn garbage_bytes_are_refused_without_panic() {
        assert!(matches!(Event::decode(&[]), Err(DecodeError::Malformed(_))));
        assert!(matches!(
            Event::decode(&[0xff; 40]),
            Err(DecodeError::Malformed(_))
        ));
        let good = Event::new(content(EventBody::SiteLifecycle(SiteState::Opened)))
            .unwrap()
            .encode()
            .unwrap();
        for cut in 0..good.len() {
            assert!(Event::decode(&good[..cut]).is_err());
        }
    }

    #[test]
    fn an_override_needs_two_officers() {
        let o = Override {
            second_officer: OperatorId::new("op1").unwrap(),
            blocks: [BlockReason::AlreadyVoted].into(),
            reason: Note::new("入場券の再発行").unwrap(),
            evidence: vec![],
        };
        let body = EventBody::VoterCheckIn {
            voter: PersonId::new("1").unwrap(),
            mode: VoteMode::ElectionDay,
            method: IdMethod::Lookup,
            override_: Some(Box::new(o)),
        };
        assert_eq!(
            Event::new(content(body)),
            Err(EventError::SameOfficer(OperatorId::new("op1").unwrap()))
        );
    }

    #[test]
    fn intrinsic_rules() {
        let same = EventBody::SameAs {
            a: pid("1"),
            b: pid("1"),
            note: None,
        };
        assert_eq!(Event::new(content(same)), Err(EventError::SamePerson));
        let t = EventBody::Transfer {
            members: Members::one(pid("1")),
            to: SiteId::new("S1").unwrap(),
        };
        assert_eq!(Event::new(content(t)), Err(EventError::TransferToSameSite));
        let future_baby = WalkInPerson {
            name: PersonName::new("山田 太郎").unwrap(),
            kana: None,
            birth_date: Some(CivilDate::new(2100, 1, 1).unwrap()),
            sex: Sex::Male,
            address: None,
            care_needs: BTreeSet::new(),
        };
        let w = EventBody::WalkInRegistration {
            members: vec![future_baby],
            home_municipality: None,
        };
        assert!(matches!(
            Event::new(content(w)),
            Err(EventError::BirthAfterEvent { .. })
        ));
    }
}
