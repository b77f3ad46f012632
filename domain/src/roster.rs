//! The roster: residents (shelter operations) or voters (elections) as the municipality exported
//! them. Names keep their registered glyphs; folding for comparison belongs to the matcher.

use crate::ids::{HouseholdId, ListNumber, PersonId, PrecinctId, RosterHash};
use crate::text::{Address, KanaReading, PersonName};
use crate::time::{CivilDate, DateError};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Sex as recorded on the card and in the resident register (ISO 5218 codes "1", "2", "9").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Sex {
    Male,
    Female,
    /// Not applicable / not recorded.
    Unspecified,
}

impl Sex {
    /// Parse the card's / register's code.
    pub fn from_code(code: &str) -> Option<Self> {
        match code.trim() {
            "1" => Some(Sex::Male),
            "2" => Some(Sex::Female),
            "9" | "0" => Some(Sex::Unspecified),
            _ => None,
        }
    }
    pub fn label_ja(self) -> &'static str {
        match self {
            Sex::Male => "男",
            Sex::Female => "女",
            Sex::Unspecified => "その他・不明",
        }
    }
}

/// 要配慮者: categories of people who need particular care in a shelter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CareNeed {
    /// 要介護 (needs nursing care).
    NursingCare,
    /// 妊産婦 (pregnant or nursing).
    Pregnant,
    /// 乳幼児 (infant; recorded explicitly, also derivable from age).
    Infant,
    /// 肢体不自由 (physical disability).
    PhysicalDisability,
    /// 視覚障害.
    VisualImpairment,
    /// 聴覚障害.
    HearingImpairment,
    /// 知的障害.
    IntellectualDisability,
    /// 精神障害.
    MentalDisability,
    /// 発達障害.
    DevelopmentalDisability,
    /// 難病.
    IntractableDisease,
    /// 医療的ケア (e.g. dialysis, oxygen, tube feeding).
    MedicalCare,
    /// 服薬 (regular medication).
    Medication,
    /// 食物アレルギー.
    FoodAllergy,
    /// 日本語支援 (needs language support).
    LanguageSupport,
    /// その他.
    Other,
}

impl CareNeed {
    pub const ALL: [CareNeed; 15] = [
        CareNeed::NursingCare,
        CareNeed::Pregnant,
        CareNeed::Infant,
        CareNeed::PhysicalDisability,
        CareNeed::VisualImpairment,
        CareNeed::HearingImpairment,
        CareNeed::IntellectualDisability,
        CareNeed::MentalDisability,
        CareNeed::DevelopmentalDisability,
        CareNeed::IntractableDisease,
        CareNeed::MedicalCare,
        CareNeed::Medication,
        CareNeed::FoodAllergy,
        CareNeed::LanguageSupport,
        CareNeed::Other,
    ];

    pub fn label_ja(self) -> &'static str {
        match self {
            CareNeed::NursingCare => "要介護",
            CareNeed::Pregnant => "妊産婦",
            CareNeed::Infant => "乳幼児",
            CareNeed::PhysicalDisability => "肢体不自由",
            CareNeed::VisualImpairment => "視覚障害",
            CareNeed::HearingImpairment => "聴覚障害",
            CareNeed::IntellectualDisability => "知的障害",
            CareNeed::MentalDisability => "精神障害",
            CareNeed::DevelopmentalDisability => "発達障害",
            CareNeed::IntractableDisease => "難病",
            CareNeed::MedicalCare => "医療的ケア",
            CareNeed::Medication => "服薬",
            CareNeed::FoodAllergy => "食物アレルギー",
            CareNeed::LanguageSupport => "日本語支援",
            CareNeed::Other => "その他",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            CareNeed::NursingCare => "nursing care",
            CareNeed::Pregnant => "pregnant / nursing",
            CareNeed::Infant => "infant",
            CareNeed::PhysicalDisability => "physical disability",
            CareNeed::VisualImpairment => "visual impairment",
            CareNeed::HearingImpairment => "hearing impairment",
            CareNeed::IntellectualDisability => "intellectual disability",
            CareNeed::MentalDisability => "mental disability",
            CareNeed::DevelopmentalDisability => "developmental disability",
            CareNeed::IntractableDisease => "intractable disease",
            CareNeed::MedicalCare => "medical care",
            CareNeed::Medication => "medication",
            CareNeed::FoodAllergy => "food allergy",
            CareNeed::LanguageSupport => "language support",
            CareNeed::Other => "other",
        }
    }
}

/// Eligibility flags of a voter as they stand in the roster extract (名簿抄本).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VoterFlags {
    /// On the register and entitled to vote in this election.
    pub eligible: bool,
    /// Already voted by absentee ballot (不在者投票) before the extract was made.
    pub absentee_voted: bool,
    /// Already voted early (期日前投票) before the extract was made. A missing flag is how
    /// second ballots have been issued: the linter insists the column is present.
    pub early_voted: bool,
}

/// What an election roster adds to a person.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VoterInfo {
    /// 名簿番号, printed on the admission ticket.
    pub list_number: ListNumber,
    /// 投票区.
    pub precinct: PrecinctId,
    pub flags: VoterFlags,
}

/// One person in the roster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RosterEntry {
    pub person: PersonId,
    pub household: HouseholdId,
    /// As registered, with original glyphs.
    pub name: PersonName,
    pub kana: KanaReading,
    pub birth_date: CivilDate,
    pub sex: Sex,
    pub address: Address,
    /// Present in election rosters.
    pub voter: Option<VoterInfo>,
    /// 要配慮者 categories known in advance (避難行動要支援者名簿).
    pub care_needs: BTreeSet<CareNeed>,
    /// 支援措置: the municipality restricts this resident's 住民票 (DV, stalking or abuse
    /// protection, 住民基本台帳事務における支援措置). Never disclosed to any safety query or
    /// export, with the rest of their household; reception marks them discreetly.
    pub support_measure: bool,
}

/// Which kind of roster: it decides which fields are required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RosterKind {
    Residents,
    Voters,
}

/// Why a roster was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    #[error("person id {0} appears more than once")]
    DuplicatePerson(PersonId),
    #[error("list number {0} appears more than once")]
    DuplicateListNumber(ListNumber),
    #[error("person {person}: birth date: {source}")]
    BirthDate { person: PersonId, source: DateError },
    #[error("person {0} has no voter information (list number, precinct) in a voter roster")]
    MissingVoterInfo(PersonId),
}

/// A validated roster with lookup indexes: in memory (entries sorted by person id, hash maps
/// over them), or answered by a roster store on disk ([`RosterStore`]: ten million residents
/// stay on disk, a bounded cache in memory). Every query answers alike either way.
#[derive(Debug, Clone)]
pub struct Roster {
    kind: RosterKind,
    backing: Backing,
}

#[derive(Debug, Clone)]
enum Backing {
    Memory(Box<InMemory>),
    Store(Arc<dyn RosterStore>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct InMemory {
    /// Sorted by person id.
    entries: Vec<RosterEntry>,
    by_person: FxHashMap<PersonId, usize>,
    by_household: FxHashMap<HouseholdId, Vec<usize>>,
    by_list_number: FxHashMap<ListNumber, usize>,
}

/// Two rosters are equal when they hold the same entries (a store's by its verified hash).
impl PartialEq for Roster {
    fn eq(&self, other: &Self) -> bool {
        match (&self.backing, &other.backing) {
            (Backing::Memory(a), Backing::Memory(b)) => self.kind == other.kind && a == b,
            _ => {
                self.kind == other.kind && self.len() == other.len() && self.hash() == other.hash()
            }
        }
    }
}
impl Eq for Roster {}

impl Roster {
    /// Validate the entries as of `today` (birth dates may not be later).
    pub fn new(
        kind: RosterKind,
        mut entries: Vec<RosterEntry>,
        today: CivilDate,
    ) -> Result<Self, RosterError> {
        entries.sort_by_key(|a| a.person);
        let mut by_person = FxHashMap::default();
        let mut by_household: FxHashMap<HouseholdId, Vec<usize>> = FxHashMap::default();
        let mut by_list_number = FxHashMap::default();
        for (i, e) in entries.iter().enumerate() {
            if by_person.insert(e.person, i).is_some() {
                return Err(RosterError::DuplicatePerson(e.person));
            }
            e.birth_date
                .not_after(today)
                .map_err(|source| RosterError::BirthDate {
                    person: e.person,
                    source,
                })?;
            match (&e.voter, kind) {
                (None, RosterKind::Voters) => {
                    return Err(RosterError::MissingVoterInfo(e.person));
                }
                (Some(v), _) => {
                    if by_list_number.insert(v.list_number, i).is_some() {
                        return Err(RosterError::DuplicateListNumber(v.list_number));
                    }
                }
                (None, RosterKind::Residents) => {}
            }
            by_household.entry(e.household).or_default().push(i);
        }
        Ok(Self {
            kind,
            backing: Backing::Memory(Box::new(InMemory {
                entries,
                by_person,
                by_household,
                by_list_number,
            })),
        })
    }

    /// A roster answered by a store on disk (its entries checked when the store was opened).
    pub fn from_store(store: Arc<dyn RosterStore>) -> Self {
        Self {
            kind: store.kind(),
            backing: Backing::Store(store),
        }
    }

    /// The store behind this roster, if it is not held in memory.
    pub fn store(&self) -> Option<&Arc<dyn RosterStore>> {
        match &self.backing {
            Backing::Store(s) => Some(s),
            Backing::Memory(_) => None,
        }
    }

    fn memory(&self) -> Option<&InMemory> {
        match &self.backing {
            Backing::Memory(m) => Some(m),
            Backing::Store(_) => None,
        }
    }

    pub fn kind(&self) -> RosterKind {
        self.kind
    }
    pub fn len(&self) -> usize {
        match &self.backing {
            Backing::Memory(m) => m.entries.len(),
            Backing::Store(s) => s.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// All entries, sorted by person id, when the roster is held in memory; `None` for a
    /// roster on disk (stream it with [`Roster::for_each_entry`]).
    pub fn in_memory(&self) -> Option<&[RosterEntry]> {
        self.memory().map(|m| m.entries.as_slice())
    }
    /// All entries of a roster in memory, sorted by person id (empty for a roster on disk:
    /// use [`Roster::for_each_entry`] where either may be given).
    pub fn entries(&self) -> &[RosterEntry] {
        self.in_memory().unwrap_or(&[])
    }
    /// Every entry in person-id order, wherever the roster is held; `false` if a store could
    /// not be read to the end.
    pub fn for_each_entry(&self, f: &mut dyn FnMut(&RosterEntry)) -> bool {
        match &self.backing {
            Backing::Memory(m) => {
                m.entries.iter().for_each(f);
                true
            }
            Backing::Store(s) => s.for_each(f),
        }
    }
    pub fn get(&self, person: &PersonId) -> Option<EntryRef<'_>> {
        match &self.backing {
            Backing::Memory(m) => m
                .by_person
                .get(person)
                .and_then(|&i| m.entries.get(i))
                .map(EntryRef::Borrowed),
            Backing::Store(s) => s.get(person).map(EntryRef::Shared),
        }
    }
    /// Look a voter up by the 名簿番号 on their admission ticket.
    pub fn by_list_number(&self, n: &ListNumber) -> Option<EntryRef<'_>> {
        match &self.backing {
            Backing::Memory(m) => m
                .by_list_number
                .get(n)
                .and_then(|&i| m.entries.get(i))
                .map(EntryRef::Borrowed),
            Backing::Store(s) => s.by_list_number(n).map(EntryRef::Shared),
        }
    }
    /// Whether any entry belongs to household `h`.
    pub fn has_household(&self, h: &HouseholdId) -> bool {
        match &self.backing {
            Backing::Memory(m) => m.by_household.contains_key(h),
            Backing::Store(s) => !s.household(h).is_empty(),
        }
    }

    /// Whether any resident of household `h` is under 支援措置.
    pub fn household_protected(&self, h: &HouseholdId) -> bool {
        self.household(h).iter().any(|e| e.support_measure)
    }

    /// The members of a household, sorted by person id.
    pub fn household(&self, h: &HouseholdId) -> Vec<EntryRef<'_>> {
        match &self.backing {
            Backing::Memory(m) => m
                .by_household
                .get(h)
                .map(|ix| {
                    ix.iter()
                        .filter_map(|&i| m.entries.get(i))
                        .map(EntryRef::Borrowed)
                        .collect()
                })
                .unwrap_or_default(),
            Backing::Store(s) => s.household(h).into_iter().map(EntryRef::Shared).collect(),
        }
    }

    /// SHA-256 over the canonical encoding (entries in person-id order, postcard-encoded).
    /// The deployment manifest pins this hash; every node checks its roster against it (a
    /// store's entries are checked against it when the store is opened).
    pub fn hash(&self) -> RosterHash {
        match &self.backing {
            Backing::Memory(m) => hash_entries(self.kind, &m.entries),
            Backing::Store(s) => s.hash(),
        }
    }
}

// A roster kept on disk: the trait a [`Roster`] answers through when it does not hold its
// entries in memory (ten million residents would take gigabytes), and the entry handle it hands
// out. The domain names what it asks of a roster store, never how:
// `kazashi_node::roster_lookup` answers from the encrypted roster store with a bounded cache.
// Every answer is a function of the pinned roster, so every laptop folds and matches alike
// whichever way its roster is held.

/// An imported roster answered from storage. Entries come back shared (`Arc`) from the
/// implementation's cache; a store that cannot be read answers "not there" and reports the
/// fault through [`RosterStore::fault`].
pub trait RosterStore: Send + Sync + std::fmt::Debug {
    fn kind(&self) -> RosterKind;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The roster hash, verified against the stored entries when the store was opened.
    fn hash(&self) -> RosterHash;
    fn get(&self, person: &PersonId) -> Option<Arc<RosterEntry>>;
    fn by_list_number(&self, n: &ListNumber) -> Option<Arc<RosterEntry>>;
    /// The members of a household, sorted by person id (empty: no such household).
    fn household(&self, h: &HouseholdId) -> Vec<Arc<RosterEntry>>;
    /// Everyone born on `date`, in person-id order (the fuzzy matcher's dated candidates).
    fn born_on(&self, date: CivilDate) -> Vec<Arc<RosterEntry>>;
    /// Entries whose whole name, folded ([`crate::normalize::fold`]), is `folded` (the
    /// matcher's candidates without a date), in person-id order, at most `limit`.
    fn named(&self, folded: &str, limit: usize) -> Vec<Arc<RosterEntry>>;
    /// [`RosterStore::named`] (the same first `limit` bearers of the name), keeping only those
    /// born on one of `dates` (sorted): a store can match the name's postings against the
    /// dates' instead of reading every bearer's entry.
    fn named_born(&self, folded: &str, dates: &[CivilDate], limit: usize) -> Vec<Arc<RosterEntry>> {
        let mut v = self.named(folded, limit);
        v.retain(|e| dates.binary_search(&e.birth_date).is_ok());
        v
    }
    /// Staff search (kana, kanji, a birth date, an address word), at most `limit`.
    fn search(&self, query: &str, limit: usize) -> Vec<PersonId>;
    /// Every entry in person-id order, streamed (for exports and serving the roster); `false`
    /// if the store could not be read to the end.
    fn for_each(&self, f: &mut dyn FnMut(&RosterEntry)) -> bool;
    /// Up to `count` entries in person-id order from place `from` on (a place handed out here
    /// before, or 0 for the first), each as stored — the encoding the roster hash is computed
    /// over — with its place, to `f`: how roster chunks are read back to serve a peer, a
    /// batch at a time. How many were handed out; `None` if the store cannot be read or keeps
    /// no such encoding.
    fn encoded_from(
        &self,
        from: u64,
        count: usize,
        f: &mut dyn FnMut(u64, &[u8]),
    ) -> Option<usize> {
        let _ = (from, count, f);
        None
    }
    /// The last read error, if any (a damaged or vanished file): the station shows it.
    fn fault(&self) -> Option<String>;
}

/// A roster entry as a [`crate::Roster`] hands it out: borrowed from a roster in memory, or
/// shared from a roster store's cache. Reads like `&RosterEntry`.
#[derive(Debug, Clone)]
pub enum EntryRef<'a> {
    Borrowed(&'a RosterEntry),
    Shared(Arc<RosterEntry>),
}

impl std::ops::Deref for EntryRef<'_> {
    type Target = RosterEntry;
    fn deref(&self) -> &RosterEntry {
        match self {
            EntryRef::Borrowed(e) => e,
            EntryRef::Shared(e) => e,
        }
    }
}

impl AsRef<RosterEntry> for EntryRef<'_> {
    fn as_ref(&self) -> &RosterEntry {
        self
    }
}

impl PartialEq for EntryRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}
impl Eq for EntryRef<'_> {}

impl EntryRef<'_> {
    /// The entry, owned.
    pub fn to_entry(&self) -> RosterEntry {
        (**self).clone()
    }
}

/// The roster hash of `entries` (in person-id order, as a [`Roster`] keeps them).
pub fn hash_entries(kind: RosterKind, entries: &[RosterEntry]) -> RosterHash {
    let mut h = RosterHasher::new(kind);
    let mut buf = Vec::with_capacity(256);
    for e in entries {
        buf.clear();
        // Encoding plain data into a Vec cannot fail; an empty slice would still hash.
        buf = postcard::to_extend(e, std::mem::take(&mut buf)).unwrap_or_default();
        h.entry(&buf);
    }
    h.finish()
}

/// The roster hash fed one encoded entry at a time (postcard bytes, in person-id order): for a
/// writer that encodes each entry anyway.
pub struct RosterHasher(Sha256);

impl RosterHasher {
    pub fn new(kind: RosterKind) -> Self {
        let mut h = Sha256::new();
        h.update(b"kazashi-roster-v1");
        h.update([matches!(kind, RosterKind::Voters) as u8]);
        Self(h)
    }
    /// The next entry, as `postcard` encodes it.
    pub fn entry(&mut self, encoded: &[u8]) {
        self.0.update((encoded.len() as u64).to_le_bytes());
        self.0.update(encoded);
    }
    pub fn finish(self) -> RosterHash {
        RosterHash(self.0.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, hh: &str, born: &str) -> RosterEntry {
        RosterEntry {
            person: PersonId::new(id).unwrap(),
            household: HouseholdId::new(hh).unwrap(),
            name: PersonName::new("髙橋 花子").unwrap(),
            kana: KanaReading::new("たかはし はなこ").unwrap(),
            birth_date: CivilDate::parse(born).unwrap(),
            sex: Sex::Female,
            address: Address::new("新潟県三条市旭町2丁目3-1").unwrap(),
            voter: None,
            care_needs: BTreeSet::new(),
            support_measure: false,
        }
    }

    fn today() -> CivilDate {
        CivilDate::new(2026, 11, 21).unwrap()
    }

    #[test]
    fn indexes_and_households() {
        let r = Roster::new(
            RosterKind::Residents,
            vec![
                entry("3", "H1", "19800101"),
                entry("1", "H1", "19820202"),
                entry("2", "H2", "20100303"),
            ],
            today(),
        )
        .unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r.entries()[0].person.as_str(), "1");
        let members = r.household(&HouseholdId::new("H1").unwrap());
        let hh: Vec<_> = members.iter().map(|e| e.person.as_str()).collect();
        assert_eq!(hh, ["1", "3"]);
        assert!(r.get(&PersonId::new("9").unwrap()).is_none());
    }

    #[test]
    fn refuses_duplicates_future_births_and_missing_voter_info() {
        let dup = Roster::new(
            RosterKind::Residents,
            vec![entry("1", "H", "19800101"), entry("1", "H", "19800101")],
            today(),
        );
        assert!(matches!(dup, Err(RosterError::DuplicatePerson(_))));
        let future = Roster::new(
            RosterKind::Residents,
            vec![entry("1", "H", "20270101")],
            today(),
        );
        assert!(matches!(future, Err(RosterError::BirthDate { .. })));
        let voters = Roster::new(
            RosterKind::Voters,
            vec![entry("1", "H", "19800101")],
            today(),
        );
        assert!(matches!(voters, Err(RosterError::MissingVoterInfo(_))));
    }

    #[test]
    fn hash_is_order_independent_and_content_sensitive() {
        let a = Roster::new(
            RosterKind::Residents,
            vec![entry("1", "H", "19800101"), entry("2", "H", "19810101")],
            today(),
        )
        .unwrap();
        let b = Roster::new(
            RosterKind::Residents,
            vec![entry("2", "H", "19810101"), entry("1", "H", "19800101")],
            today(),
        )
        .unwrap();
        let c = Roster::new(
            RosterKind::Residents,
            vec![entry("2", "H", "19810101"), entry("1", "H", "19800102")],
            today(),
        )
        .unwrap();
        assert_eq!(a.hash(), b.hash());
        assert_ne!(a.hash(), c.hash());
    }
}
