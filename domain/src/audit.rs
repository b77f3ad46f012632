//! The audit trail: who read personal data beyond reception (safety searches, exports,
//! reprints, medical-note views), every unlock that succeeded or failed, every override and
//! every roster switch — each as a signed `EventBody::Audit` event that replicates like any
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
//! hash of the device's previous one (`prev`, `audit_chain::link`; all zeros for the first). Since every
//! record is signed by its device, nobody else can make one, and a record deleted from a log
//! leaves a hole in the numbers (and a `prev` pointing at nothing): `audit_chain::verify_chains`
//! reports,
//! per device, the missing numbers, the records whose `prev` is not the hash of the record
//! before, and two records with one number (a fork: a store restored from an old backup, or a
//! forgery). The verdict is a function of the set of records, never of the order they came
//! in. What a chain cannot show is the loss of a device's *latest* records (nothing after
//! them points back); the view shows each device's last number and time so a manager can ask.

use crate::ids::{EventId, PersonRef, RosterHash, SiteId};
use crate::time::Millis;
use serde::{Deserialize, Serialize};

/// `prev` of a device's first audit record.
pub const CHAIN_START: [u8; 32] = [0; 32];

/// Most persons one audit record may name (as many as one event may name).
pub const MAX_PERSONS: usize = 32;

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
    /// 安否未確認: household members not seen anywhere, CSV (`crate::unconfirmed`).
    Unconfirmed,
    /// 安否未確認, A4 PDF.
    UnconfirmedPdf,
    /// 在所者一覧 (who is in the building), A4 PDF.
    PresentPdf,
    /// The shelters' status reports (第n報) as sent to headquarters, A4 PDF.
    StatusPdf,
    /// Polling stations: the roster extract (名簿抄本) on paper, A4 PDF.
    RosterExtractPdf,
    /// Polling stations: check-ins per hour (undone ones left out), A4 PDF.
    HourlySummaryPdf,
    /// A check-in's receipt slip (受付票), PDF.
    ReceiptPdf,
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
            ExportKind::Unconfirmed => "unconfirmed",
            ExportKind::UnconfirmedPdf => "unconfirmed-pdf",
            ExportKind::PresentPdf => "present-pdf",
            ExportKind::StatusPdf => "status-pdf",
            ExportKind::RosterExtractPdf => "roster-extract-pdf",
            ExportKind::HourlySummaryPdf => "hourly-summary-pdf",
            ExportKind::ReceiptPdf => "receipt-pdf",
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
    /// Sealed protection (DV) details shown to a manager.
    ProtectionNoteView,
    /// A manager set the laptop's clock (the station's clock screen): from what it read to
    /// what was set, in Unix milliseconds. The HLC keeps the events' order either way.
    ClockSet { from: Millis, to: Millis },
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
            AuditAction::ProtectionNoteView => "protection-note-view",
            AuditAction::ClockSet { .. } => "clock-set",
        }
    }

    /// Every action's name, in the order of the filter.
    pub const NAMES: [&'static str; 11] = [
        "safety-search",
        "export",
        "reprint",
        "medical-note-view",
        "unlock-succeeded",
        "unlock-failed",
        "override",
        "roster-switch",
        "audit-viewed",
        "protection-note-view",
        "clock-set",
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
            AuditAction::MedicalNoteView
            | AuditAction::AuditViewed
            | AuditAction::ProtectionNoteView => String::new(),
            AuditAction::UnlockSucceeded { method } => format!("method={method:?}"),
            AuditAction::UnlockFailed { method, why } => format!("method={method:?} why={why:?}"),
            AuditAction::Override { check_in } => format!("check_in={check_in}"),
            AuditAction::RosterSwitch { from, to } => {
                format!("from={} to={}", from.short(), to.short())
            }
            AuditAction::ClockSet { from, to } => format!("from_ms={from} to_ms={to}"),
        }
    }
}

/// One audit record: the action, the persons it concerned (refs only) and its place in the
/// device's chain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AuditRecord {
    /// 1 for a device's first audit record, then one more each time.
    pub seq: u64,
    /// The link (`audit_chain::link`) of the device's record `seq - 1`; [`CHAIN_START`] for
    /// the first.
    pub prev: [u8; 32],
    pub action: AuditAction,
    /// Whose data was read, when the read was about particular persons (a reprinted 宣誓書's
    /// voter, a medical note's person): at most [`MAX_PERSONS`].
    pub persons: Vec<PersonRef>,
}
