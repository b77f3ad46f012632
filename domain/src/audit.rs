//! The audit trail: who read personal data beyond reception (safety searches, exports,
//! reprints, medical-note views), every unlock that succeeded or failed, every override and
//! every roster switch — each as a signed [`EventBody::Audit`] event that replicates like any
//! other.
//!
//! **What a record holds.** The action, counts, and for reads about particular persons their
//! refs ([`PersonRef`]: the 宛名番号 or a walk-in's registration, never a name). Never a name,
//! reading, address, birth date, search text, PIN, card key or certificate: the audit is read
//! by managers on every laptop, so it must not become a second copy of what it guards. A
//! safety search records that a search was made, for which audience and how many answers it
//! gave, not what was asked. A failed unlock names a staff id only when that id is staff on
//! the laptop (a PIN typed into the id field must not land in the log).
//!
//! **The chain.** Each device numbers its audit records 1, 2, 3, … (`seq`) and each names the
//! hash of the device's previous one (`prev`, [`link`]; all zeros for the first). Since every
//! record is signed by its device, nobody else can make one, and a record deleted from a log
//! leaves a hole in the numbers (and a `prev` pointing at nothing): [`verify_chains`] reports,
//! per device, the missing numbers, the records whose `prev` is not the hash of the record
//! before, and two records with one number (a fork: a store restored from an old backup, or a
//! forgery). The verdict is a function of the set of records, never of the order they came
//! in. What a chain cannot show is the loss of a device's *latest* records (nothing after
//! them points back); the view shows each device's last number and time so a manager can ask.

use crate::event::{Event, EventBody, EventError, MAX_MEMBERS};
use crate::ids::{DeviceId, EventId, PersonRef, RosterHash, SiteId};
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// `prev` of a device's first audit record.
pub const CHAIN_START: [u8; 32] = [0; 32];

/// The file an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ExportKind {
    /// 避難者名簿, CSV (UTF-8).
    Evacuees,
    /// 避難者名簿, CSV (CP932).
    EvacueesSjis,
    /// 避難者名簿, PDF.
    EvacueesPdf,
    /// PFIF 1.4 (the public audience).
    Pfif,
    /// The shelters' status reports.
    Status,
    /// Election turnout.
    Turnout,
    /// Election reconciliation.
    Reconciliation,
    /// The audit trail itself, as CSV (staff ids and times, no personal data of evacuees).
    AuditCsv,
}

impl ExportKind {
    pub fn name(self) -> &'static str {
        match self {
            ExportKind::Evacuees => "evacuees",
            ExportKind::EvacueesSjis => "evacuees-sjis",
            ExportKind::EvacueesPdf => "evacuees-pdf",
            ExportKind::Pfif => "pfif",
            ExportKind::Status => "status",
            ExportKind::Turnout => "turnout",
            ExportKind::Reconciliation => "reconciliation",
            ExportKind::AuditCsv => "audit-csv",
        }
    }
}

/// What was printed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ReprintKind {
    /// The 宣誓書 of an early vote (name, address, birth date of the voter).
    Oath,
}

/// Who asked in a safety search (安否確認).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SafetyAsker {
    Relative,
    Acquaintance,
    Public,
}

/// How someone tried to unlock, or to approve as a second officer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum UnlockMethod {
    /// The window's lock screen, staff id and PIN.
    StaffPin,
    /// The window's lock screen, a staff card with its JPKI PIN.
    StaffCard,
    /// A second officer's approval of an override, staff id and PIN.
    SecondOfficerPin,
    /// A second officer's approval of an override, by card.
    SecondOfficerCard,
}

/// Why an unlock failed (never the PIN itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum UnlockFailure {
    /// A PIN that does not match.
    WrongPin,
    /// Locked after too many wrong PINs (this attempt was not even checked), or this one
    /// locked it.
    Locked,
    /// An id that is not staff here (the id typed is not recorded).
    UnknownStaff,
    /// Not a card of staff here, or refused by the chain check.
    CardRefused,
    /// The card did not prove it holds its certificate's key (a copied certificate).
    NotItsKey,
    /// Anything else (a damaged record, a card error).
    Other,
}

/// What an audit record says happened.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AuditAction {
    /// A safety search (安否確認): for whom, and how many answers it gave. Not what was asked.
    SafetySearch { asker: SafetyAsker, answers: u32 },
    /// A file of personal data written (window or `kazashi report`).
    Export {
        kind: ExportKind,
        /// Rows written.
        rows: u32,
        /// One shelter, or all.
        site: Option<SiteId>,
        /// The time the file is as of, if not now.
        as_of: Option<Millis>,
    },
    /// A document printed again.
    Reprint { what: ReprintKind },
    /// A sealed medical note (問診票) shown to medical staff.
    MedicalNoteView,
    /// Unlocked (the event's operator is who).
    UnlockSucceeded { method: UnlockMethod },
    /// An unlock refused (the operator is the staff id tried, if it is staff here, else `-`).
    UnlockFailed {
        method: UnlockMethod,
        why: UnlockFailure,
    },
    /// A check-in let through a block by two officers (the check-in event names both).
    Override { check_in: EventId },
    /// The laptop switched to another roster.
    RosterSwitch { from: RosterHash, to: RosterHash },
    /// A manager opened the audit view.
    AuditViewed,
}

impl AuditAction {
    /// A short stable name (CSV, filters).
    pub fn name(&self) -> &'static str {
        match self {
            AuditAction::SafetySearch { .. } => "safety-search",
            AuditAction::Export { .. } => "export",
            AuditAction::Reprint { .. } => "reprint",
            AuditAction::MedicalNoteView => "medical-note-view",
            AuditAction::UnlockSucceeded { .. } => "unlock-succeeded",
            AuditAction::UnlockFailed { .. } => "unlock-failed",
            AuditAction::Override { .. } => "override",
            AuditAction::RosterSwitch { .. } => "roster-switch",
            AuditAction::AuditViewed => "audit-viewed",
        }
    }

    /// Every action's name, in the order of the filter.
    pub const NAMES: [&'static str; 9] = [
        "safety-search",
        "export",
        "reprint",
        "medical-note-view",
        "unlock-succeeded",
        "unlock-failed",
        "override",
        "roster-switch",
        "audit-viewed",
    ];

    /// The action's details as one line of plain ASCII (no personal data is ever in them).
    pub fn detail(&self) -> String {
        match self {
            AuditAction::SafetySearch { asker, answers } => {
                format!("asker={asker:?} answers={answers}").to_lowercase()
            }
            AuditAction::Export {
                kind,
                rows,
                site,
                as_of,
            } => {
                let mut s = format!("kind={} rows={rows}", kind.name());
                if let Some(site) = site {
                    s.push_str(&format!(" site={site}"));
                }
                if let Some(t) = as_of {
                    s.push_str(&format!(" as_of_ms={t}"));
                }
                s
            }
            AuditAction::Reprint { what } => format!("what={what:?}").to_lowercase(),
            AuditAction::MedicalNoteView | AuditAction::AuditViewed => String::new(),
            AuditAction::UnlockSucceeded { method } => format!("method={method:?}"),
            AuditAction::UnlockFailed { method, why } => format!("method={method:?} why={why:?}"),
            AuditAction::Override { check_in } => format!("check_in={check_in}"),
            AuditAction::RosterSwitch { from, to } => {
                format!("from={} to={}", from.short(), to.short())
            }
        }
    }
}

/// One audit record: the action, the persons it concerned (refs only) and its place in the
/// device's chain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AuditRecord {
    /// 1 for a device's first audit record, then one more each time.
    pub seq: u64,
    /// [`link`] of the device's record `seq - 1`; [`CHAIN_START`] for the first.
    pub prev: [u8; 32],
    pub action: AuditAction,
    /// Whose data was read, when the read was about particular persons (a reprinted 宣誓書's
    /// voter, a medical note's person): at most [`MAX_MEMBERS`].
    pub persons: Vec<PersonRef>,
}

impl AuditRecord {
    /// The rules that depend on the record alone.
    pub(crate) fn check(&self) -> Result<(), EventError> {
        if self.persons.len() > MAX_MEMBERS {
            return Err(EventError::TooManyMembers(self.persons.len()));
        }
        let mut seen = BTreeSet::new();
        for p in &self.persons {
            if !seen.insert(*p) {
                return Err(EventError::DuplicateMember(*p));
            }
        }
        Ok(())
    }
}

/// The hash a device's next audit record names as `prev`: SHA-256 over a tag, the event's id
/// and its whole encoded content (the device, operator, time and record, `prev` included).
pub fn link(event: &Event) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"kazashi-audit-link-v1");
    h.update(event.id().0);
    // Encoding an event that exists cannot fail (`Event::new` encoded it); the id alone
    // still binds the content if it ever did.
    h.update(event.encode().unwrap_or_default());
    h.finalize().into()
}

/// The audit record an event carries, if it is one.
pub fn record_of(event: &Event) -> Option<&AuditRecord> {
    match event.body() {
        EventBody::Audit(r) => Some(r.as_ref()),
        _ => None,
    }
}

/// The `(seq, prev)` a device's next audit record takes, given the audit events it wrote so
/// far (others' are skipped): one more than the highest number, chained to that record (the
/// greatest id if a fork left two).
pub fn next_link<'a>(
    device: DeviceId,
    events: impl IntoIterator<Item = &'a Event>,
) -> (u64, [u8; 32]) {
    events
        .into_iter()
        .filter(|e| e.device() == device)
        .filter_map(|e| record_of(e).map(|r| (r.seq, e.id(), e)))
        .max_by_key(|(seq, id, _)| (*seq, *id))
        .map_or((1, CHAIN_START), |(seq, _, e)| {
            (seq.saturating_add(1), link(e))
        })
}

/// One device's chain, as far as the records at hand show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceChain {
    pub device: DeviceId,
    /// Distinct records held.
    pub records: usize,
    /// The highest number held (0: none).
    pub last_seq: u64,
    /// When the last record was written (wall ms of its HLC time).
    pub last_at: Option<Millis>,
    /// Numbers below `last_seq` that no record held carries, as inclusive ranges.
    pub missing: Vec<(u64, u64)>,
    /// Numbers of records whose `prev` is not the hash of a held record before them (the
    /// record before was replaced, or they claim to start a chain they do not start).
    pub broken: Vec<u64>,
    /// Numbers carried by two or more different records.
    pub forks: Vec<u64>,
}

impl DeviceChain {
    /// No hole, no broken link, no fork.
    pub fn intact(&self) -> bool {
        self.missing.is_empty() && self.broken.is_empty() && self.forks.is_empty()
    }

    /// How many records the holes stand for.
    pub fn missing_count(&self) -> u64 {
        self.missing
            .iter()
            .map(|(a, b)| b.saturating_sub(*a).saturating_add(1))
            .sum()
    }
}

/// Check every device's audit chain in `events` (other events are skipped; duplicates count
/// once). One entry per device with at least one audit record, in device order.
pub fn verify_chains<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<DeviceChain> {
    // device → seq → id → (prev, own link, wall ms)
    type BySeq = BTreeMap<u64, BTreeMap<EventId, ([u8; 32], [u8; 32], Millis)>>;
    let mut devices: BTreeMap<DeviceId, BySeq> = BTreeMap::new();
    for e in events {
        if let Some(r) = record_of(e) {
            devices
                .entry(e.device())
                .or_default()
                .entry(r.seq)
                .or_default()
                .insert(e.id(), (r.prev, link(e), e.at().wall_ms));
        }
    }
    devices
        .into_iter()
        .map(|(device, by_seq)| {
            let mut c = DeviceChain {
                device,
                records: by_seq.values().map(BTreeMap::len).sum(),
                last_seq: by_seq.keys().next_back().copied().unwrap_or(0),
                last_at: by_seq.values().flat_map(|m| m.values().map(|v| v.2)).max(),
                missing: Vec::new(),
                broken: Vec::new(),
                forks: Vec::new(),
            };
            let mut expected = 1u64;
            for (&seq, held) in &by_seq {
                if seq > expected {
                    c.missing.push((expected, seq - 1));
                }
                expected = seq.saturating_add(1);
                if held.len() > 1 {
                    c.forks.push(seq);
                }
                let before: BTreeSet<[u8; 32]> = match seq.checked_sub(1) {
                    Some(0) => [CHAIN_START].into(),
                    Some(p) => by_seq
                        .get(&p)
                        .map(|m| m.values().map(|v| v.1).collect())
                        .unwrap_or_default(),
                    None => BTreeSet::new(),
                };
                // A record after a hole is not blamed for it: the hole is reported already.
                let after_hole = seq > 1 && !by_seq.contains_key(&(seq - 1));
                if !after_hole && held.values().any(|(prev, _, _)| !before.contains(prev)) {
                    c.broken.push(seq);
                }
            }
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventContent;
    use crate::hlc::Timestamp;
    use crate::ids::OperatorId;

    fn chain(device: u8, n: u64) -> Vec<Event> {
        let mut out: Vec<Event> = Vec::new();
        for seq in 1..=n {
            let prev = out.last().map_or(CHAIN_START, link);
            out.push(
                Event::new(EventContent {
                    device: DeviceId([device; 32]),
                    site: SiteId::new("S1").unwrap(),
                    operator: OperatorId::new("op1").unwrap(),
                    at: Timestamp::new(1_790_000_000_000 + seq, 0),
                    body: EventBody::Audit(Box::new(AuditRecord {
                        seq,
                        prev,
                        action: AuditAction::SafetySearch {
                            asker: SafetyAsker::Public,
                            answers: 0,
                        },
                        persons: vec![],
                    })),
                })
                .unwrap(),
            );
        }
        out
    }

    #[test]
    fn an_intact_chain_and_a_hole() {
        let c = chain(1, 5);
        let v = verify_chains(&c);
        assert_eq!(v.len(), 1);
        assert!(v[0].intact(), "{v:?}");
        assert_eq!(v[0].last_seq, 5);
        assert_eq!(next_link(DeviceId([1; 32]), &c), (6, link(&c[4])));
        assert_eq!(next_link(DeviceId([2; 32]), &c), (1, CHAIN_START));
        let holed: Vec<&Event> = c
            .iter()
            .filter(|e| record_of(e).unwrap().seq != 3)
            .collect();
        let v = verify_chains(holed);
        assert_eq!(v[0].missing, vec![(3, 3)]);
        assert!(v[0].broken.is_empty());
        assert!(!v[0].intact());
    }

    #[test]
    fn a_replaced_record_breaks_the_link() {
        let mut c = chain(1, 3);
        let other = chain(1, 2);
        // Record 2 of another chain in place of this one's: 3 no longer links to it.
        c[1] = Event::new(EventContent {
            operator: OperatorId::new("op2").unwrap(),
            ..other[1].content().clone()
        })
        .unwrap();
        let v = verify_chains(&c);
        assert_eq!(v[0].broken, vec![3]);
        assert!(v[0].missing.is_empty());
    }

    #[test]
    fn too_many_persons_are_refused() {
        let many: Vec<PersonRef> = (0..33)
            .map(|i| PersonRef::Roster(crate::ids::PersonId::new(&i.to_string()).unwrap()))
            .collect();
        let r = AuditRecord {
            seq: 1,
            prev: CHAIN_START,
            action: AuditAction::MedicalNoteView,
            persons: many,
        };
        assert_eq!(r.check(), Err(EventError::TooManyMembers(33)));
    }
}
