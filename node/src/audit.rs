//! The audit trail on a laptop (issue 24, requirement 4): writing this device's chained audit
//! records, the unlock and export paths that write them, and reading every device's records
//! back for the manager's view and its CSV file. What a record holds and how chains are
//! checked is `kazashi_domain::audit` and `audit_chain`.
//!
//! **The chain head comes from the log.** [`Node::audit`] numbers the next record from this
//! device's audit records in the folded state, which holds exactly what the store committed
//! (a record is durable before the state shows it, and the cold start folds the store): a
//! crash between two records, or a restart, continues the chain where the store left it, with
//! no separate counter to drift. A store restored from an older backup starts again from the
//! backup's head, and the records after it that peers still hold then show as a fork.
//!
//! **Who may write one.** Every staff role (the operator is whoever is at the keyboard, or
//! `-` when nobody is identified: a failed unlock with an unknown id, a roster switch the
//! laptop made on its own), on a station, a command center or a relay, and after the
//! operation closed (exports and reports still read personal data then; peers take audit
//! records stamped after the close, `node::after_close`, and from relays, `envelope::open`).
//! A revoked laptop, or one the manifest no longer lists, writes nothing — its records would
//! be refused by every peer — and its reads go on unrecorded as before.
//!
//! **No record, no read.** Where a record is written for a read (an export, a safety
//! search, a reprint, an unlock), a store that fails to take the record refuses the read.
//!
//! **CSV** ([`audit_csv`]): UTF-8, a header, one row per record in time order:
//! `time_jst,time_ms,device,seq,site,staff,action,detail,persons,event`. `persons` is
//! space-separated refs, `R:<宛名番号>` or `W:<registration event hex>:<index>`; `detail` is
//! the action's ASCII `key=value` pairs. No field holds a name, an address, a search text, a
//! PIN or a card key (docs/security.md, "Audit").

use crate::clock::Clock;
use crate::export::{Rendered, Report, ReportRequest, jst, render};
use crate::node::{Node, NodeError, WriteBlock};
use crate::possession::Refusal;
use crate::staff::LoginError;
use kazashi_domain::Millis;
use kazashi_domain::audit::{
    AuditAction, AuditRecord, ExportKind, SafetyAsker, UnlockFailure, UnlockMethod,
};
use kazashi_domain::audit_chain::{DeviceChain, next_link, record_of, verify_chains};
use kazashi_domain::event::{Event, EventBody};
use kazashi_domain::ids::{DeviceId, EventId, OperatorId, PersonId, PersonRef, SiteId};
use kazashi_domain::safety::{Asker, SafetyAnswer, SafetyIndex};

/// The operator of a record no staff member is identified for.
pub const NOBODY: &str = "-";

fn nobody() -> Result<OperatorId, NodeError> {
    OperatorId::new(NOBODY).map_err(|e| NodeError::Damaged(e.to_string()))
}

/// The export kind a report is recorded as.
pub fn export_kind(r: Report) -> ExportKind {
    match r {
        Report::Evacuees => ExportKind::Evacuees,
        Report::EvacueesSjis => ExportKind::EvacueesSjis,
        Report::EvacueesPdf => ExportKind::EvacueesPdf,
        Report::Pfif => ExportKind::Pfif,
        Report::Status => ExportKind::Status,
        Report::Turnout => ExportKind::Turnout,
        Report::Reconciliation => ExportKind::Reconciliation,
    }
}

/// How a failed staff login is recorded.
pub fn login_failure(e: &LoginError) -> UnlockFailure {
    match e {
        LoginError::Unknown => UnlockFailure::UnknownStaff,
        LoginError::WrongPin | LoginError::BadPin => UnlockFailure::WrongPin,
        LoginError::Locked { .. } => UnlockFailure::Locked,
        LoginError::UnknownCard => UnlockFailure::CardRefused,
        LoginError::NoPin | LoginError::Damaged | LoginError::Store(_) => UnlockFailure::Other,
    }
}

/// How a card refused as proof is recorded.
pub fn card_failure(r: &Refusal) -> UnlockFailure {
    match r {
        Refusal::Card(crate::card::CardError::WrongPin { .. }) => UnlockFailure::WrongPin,
        Refusal::Locked { .. } => UnlockFailure::Locked,
        Refusal::NotItsKey => UnlockFailure::NotItsKey,
        Refusal::Chain(_) | Refusal::NoCas => UnlockFailure::CardRefused,
        Refusal::Card(_) | Refusal::LastTry | Refusal::Store(_) => UnlockFailure::Other,
    }
}

/// One audit record as the view and the CSV show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Wall time of the record's HLC stamp.
    pub at: Millis,
    pub device: DeviceId,
    pub seq: u64,
    pub site: SiteId,
    /// The operator (`-`: nobody identified).
    pub staff: OperatorId,
    /// [`AuditAction::name`].
    pub action: String,
    /// [`AuditAction::detail`].
    pub detail: String,
    pub persons: Vec<PersonRef>,
    pub event: EventId,
}

/// Which records the view shows (every field optional; all set ones must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub device: Option<DeviceId>,
    pub staff: Option<OperatorId>,
    /// An [`AuditAction::name`].
    pub action: Option<String>,
    /// From this time (inclusive).
    pub from: Option<Millis>,
    /// Up to this time (exclusive).
    pub to: Option<Millis>,
}

impl AuditFilter {
    pub fn accepts(&self, r: &AuditRow) -> bool {
        self.device.is_none_or(|d| d == r.device)
            && self.staff.is_none_or(|s| s == r.staff)
            && self.action.as_ref().is_none_or(|a| *a == r.action)
            && self.from.is_none_or(|f| r.at >= f)
            && self.to.is_none_or(|t| r.at < t)
    }
}

fn row_of(e: &Event, r: &AuditRecord) -> AuditRow {
    AuditRow {
        at: e.at().wall_ms,
        device: e.device(),
        seq: r.seq,
        site: e.site(),
        staff: e.operator(),
        action: r.action.name().to_owned(),
        detail: r.action.detail(),
        persons: r.persons.clone(),
        event: e.id(),
    }
}

impl<C: Clock> Node<C> {
    /// Write this device's next audit record (numbered and chained from the log), as
    /// `operator`. `Ok(None)`: this laptop is revoked or no longer listed and writes nothing
    /// (module docs); any other failure is an error and the caller refuses the read.
    pub fn audit(
        &mut self,
        operator: OperatorId,
        action: AuditAction,
        persons: Vec<PersonRef>,
    ) -> Result<Option<Event>, NodeError> {
        // Revoked or unlisted: nothing (whatever else `write_block` names first, e.g. a close).
        let me = self.device();
        if self.membership().revoked_from(&me).is_some() || self.membership().device(&me).is_none()
        {
            return Ok(None);
        }
        match self.write_block() {
            None | Some(WriteBlock::Closed { .. } | WriteBlock::Relay) => {}
            Some(WriteBlock::Revoked { .. } | WriteBlock::NotListed) => return Ok(None),
        }
        let (seq, prev) = next_link(self.device(), self.state().events_unordered());
        let body = EventBody::Audit(Box::new(AuditRecord {
            seq,
            prev,
            action,
            persons,
        }));
        self.write(operator, body).map(Some)
    }

    /// [`Node::audit`] with no staff member identified (operator `-`).
    pub fn audit_as_laptop(&mut self, action: AuditAction) -> Result<Option<Event>, NodeError> {
        let op = nobody()?;
        self.audit(op, action, Vec::new())
    }

    /// Record an unlock attempt. `claimed`: the staff id typed or the card's staff member;
    /// it is kept only if it is staff on this laptop (an id that is not could be a PIN typed
    /// in the wrong field), else the operator is `-`.
    pub fn audit_unlock(
        &mut self,
        claimed: Option<&OperatorId>,
        method: UnlockMethod,
        outcome: Result<(), UnlockFailure>,
    ) -> Result<Option<Event>, NodeError> {
        let known = claimed
            .filter(|op| self.staff_role(op).ok().flatten().is_some())
            .copied();
        let op = match known {
            Some(op) => op,
            None => nobody()?,
        };
        let action = match outcome {
            Ok(()) => AuditAction::UnlockSucceeded { method },
            Err(why) => AuditAction::UnlockFailed { method, why },
        };
        self.audit(op, action, Vec::new())
    }

    /// [`Node::staff_login`], recorded: success or failure, an audit record either way. A
    /// success whose record the store refuses is refused.
    pub fn staff_unlock(
        &mut self,
        op: &OperatorId,
        pin: &str,
        method: UnlockMethod,
    ) -> Result<crate::staff::Role, LoginError> {
        let r = self.staff_login(op, pin);
        let outcome = r.as_ref().map(|_| ()).map_err(login_failure);
        let written = self.audit_unlock(Some(op), method, outcome);
        match (r, written) {
            (Ok(_), Err(e)) => Err(LoginError::Store(e.to_string())),
            (r, _) => r,
        }
    }

    /// Make a report ([`render`]) as `operator` and record the export before the bytes are
    /// handed back: no record, no file.
    pub fn export_audited(
        &mut self,
        operator: OperatorId,
        req: &ReportRequest<'_>,
    ) -> Result<Rendered, String> {
        let st = self.station();
        let r = render(st.state(), st.deployment(), st.roster(), req)?;
        let action = AuditAction::Export {
            kind: export_kind(req.report),
            rows: u32::try_from(r.rows).unwrap_or(u32::MAX),
            site: req.site,
            as_of: req.as_of,
        };
        self.audit(operator, action, Vec::new())
            .map_err(|e| format!("the audit record could not be written: {e}"))?;
        Ok(r)
    }

    /// A safety search (安否確認) through `index`, recorded (who asked, how many answers —
    /// not the words searched) before the answers are handed back: no record, no answers. An
    /// empty query searches nothing and records nothing.
    pub fn safety_search(
        &mut self,
        operator: OperatorId,
        index: &mut SafetyIndex,
        query: &str,
        asker: Asker,
        limit: usize,
    ) -> Result<Vec<SafetyAnswer>, NodeError> {
        if query.trim().is_empty() {
            return Ok(Vec::new());
        }
        let st = self.station();
        index.refresh(st.state(), st.roster());
        let answers = index.search(st.state(), st.roster(), query, asker, None, limit);
        let asker = match asker {
            Asker::Relative => SafetyAsker::Relative,
            Asker::Acquaintance => SafetyAsker::Acquaintance,
            Asker::Public => SafetyAsker::Public,
        };
        let n = u32::try_from(answers.len()).unwrap_or(u32::MAX);
        self.audit(
            operator,
            AuditAction::SafetySearch { asker, answers: n },
            Vec::new(),
        )?;
        Ok(answers)
    }

    /// The audit rows `filter` accepts as the CSV file's text ([`audit_csv`]), the export
    /// itself recorded first (kind `audit-csv`): no record, no file.
    pub fn audit_export(
        &mut self,
        operator: OperatorId,
        filter: &AuditFilter,
    ) -> Result<(String, usize), NodeError> {
        let rows = self.audit_rows(filter);
        let action = AuditAction::Export {
            kind: ExportKind::AuditCsv,
            rows: u32::try_from(rows.len()).unwrap_or(u32::MAX),
            site: None,
            as_of: None,
        };
        self.audit(operator, action, Vec::new())?;
        Ok((audit_csv(&rows), rows.len()))
    }

    /// An override let through (a voter check-in carrying one): its audit record. Called by
    /// `Node::record` after the check-in is durable; a failure to write the record cannot
    /// undo the check-in, and is left for the chain (no record) — there is none but a failing
    /// store, which the check-in just wrote to.
    pub(crate) fn audit_override(&mut self, event: &Event) {
        if let EventBody::VoterCheckIn {
            voter,
            override_: Some(_),
            ..
        } = event.body()
        {
            let action = AuditAction::Override {
                check_in: event.id(),
            };
            let _ = self.audit(event.operator(), action, vec![PersonRef::Roster(*voter)]);
        }
    }

    /// A roster switch, recorded by the laptop (operator `-`). Called by `replace_roster`
    /// after the switch; see [`Node::audit_override`] for a failure.
    pub(crate) fn audit_roster_switch(
        &mut self,
        from: kazashi_domain::ids::RosterHash,
        to: kazashi_domain::ids::RosterHash,
    ) {
        if from != to {
            let _ = self.audit_as_laptop(AuditAction::RosterSwitch { from, to });
        }
    }

    /// Every audit record this laptop holds (every device's) that `filter` accepts, in time
    /// order.
    pub fn audit_rows(&self, filter: &AuditFilter) -> Vec<AuditRow> {
        let mut rows: Vec<AuditRow> = self
            .state()
            .events_unordered()
            .filter_map(|e| record_of(e).map(|r| row_of(e, r)))
            .filter(|r| filter.accepts(r))
            .collect();
        rows.sort_by_key(|r| (r.at, r.device, r.seq, r.event));
        rows
    }

    /// Every device's audit chain as far as this laptop holds it: holes, broken links, forks.
    pub fn audit_chains(&self) -> Vec<DeviceChain> {
        verify_chains(self.state().events_unordered())
    }

    /// The device's label in the manifest ("第一小学校 受付1"), or its short hex.
    pub fn device_label(&self, device: &DeviceId) -> String {
        self.membership()
            .device(device)
            .map_or_else(|| device.short(), |e| e.label.as_str().to_owned())
    }
}

/// The CSV header.
pub const CSV_HEADER: &str = "time_jst,time_ms,device,seq,site,staff,action,detail,persons,event";

fn person_field(p: &PersonRef) -> String {
    match p {
        PersonRef::Roster(id) => format!("R:{id}"),
        PersonRef::WalkIn {
            registration,
            index,
        } => format!("W:{}:{index}", registration.to_hex()),
    }
}

fn parse_person(s: &str) -> Option<PersonRef> {
    if let Some(id) = s.strip_prefix("R:") {
        return PersonId::new(id).ok().map(PersonRef::Roster);
    }
    let (reg, index) = s.strip_prefix("W:")?.split_once(':')?;
    Some(PersonRef::WalkIn {
        registration: EventId::from_hex(reg).ok()?,
        index: index.parse().ok()?,
    })
}

/// A CSV field, quoted when it must be.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The rows as the audit CSV (module docs).
pub fn audit_csv(rows: &[AuditRow]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for r in rows {
        let persons: Vec<String> = r.persons.iter().map(person_field).collect();
        let cells = [
            jst(r.at),
            r.at.to_string(),
            r.device.to_hex(),
            r.seq.to_string(),
            r.site.to_string(),
            r.staff.as_str().to_owned(),
            r.action.clone(),
            r.detail.clone(),
            persons.join(" "),
            r.event.to_hex(),
        ];
        let line: Vec<String> = cells.iter().map(|c| field(c)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

/// Split one CSV line into fields (quotes as [`audit_csv`] writes them).
fn split_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// Read an audit CSV back (tests, and anyone checking a file against a laptop): the rows, or
/// the first line that is not one.
pub fn parse_audit_csv(text: &str) -> Result<Vec<AuditRow>, String> {
    let mut lines = text.lines();
    if lines.next() != Some(CSV_HEADER) {
        return Err("not an audit CSV (the header differs)".into());
    }
    let mut rows = Vec::new();
    for (n, line) in lines.enumerate().filter(|(_, l)| !l.is_empty()) {
        let bad = || format!("line {}: not an audit row", n + 2);
        let f = split_line(line);
        let [
            _,
            at,
            device,
            seq,
            site,
            staff,
            action,
            detail,
            persons,
            event,
        ] = f.as_slice()
        else {
            return Err(bad());
        };
        rows.push(AuditRow {
            at: at.parse().map_err(|_| bad())?,
            device: DeviceId::from_hex(device).map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
            site: SiteId::new(site).map_err(|_| bad())?,
            staff: OperatorId::new(staff).map_err(|_| bad())?,
            action: action.clone(),
            detail: detail.clone(),
            persons: persons
                .split(' ')
                .filter(|p| !p.is_empty())
                .map(|p| parse_person(p).ok_or_else(bad))
                .collect::<Result<_, _>>()?,
            event: EventId::from_hex(event).map_err(|_| bad())?,
        });
    }
    Ok(rows)
}
