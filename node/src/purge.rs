//! Close and purge (issue 24, requirement 5): after an operation closes and its retention
//! period has passed, a laptop crypto-shreds the operation's personal data and keeps only the
//! counts the record needs.
//!
//! **Closing.** The operation is closed by the administrator's last manifest (`closed_at`,
//! `kazashi deployment close`) or by a manager's signed `EventBody::OperationClosed`, whichever
//! came first ([`closure`]). A manager's close counts only if its operator is a manager in the
//! manifest's staff list at the event's site (`crate::managers`: the same verdict on every
//! laptop); any other is kept in the log and ignored, so a laptop-only lead or a modified
//! binary cannot close the operation, let alone start a purge.
//!
//! **The retention period** ([`retention`]) is the administrator's: the manifest's
//! `retention_days` whenever it sets one. A manager's event may only lengthen it (the longer of
//! the two), never shorten it. With no period in the manifest, the event's applies, but never
//! less than [`MIN_EVENT_RETENTION_DAYS`] (one day): no event alone makes every laptop wipe
//! itself at once, and the day leaves time to see the close, and to export or to stop it with a
//! new manifest, before the data goes. With neither, no purge happens by itself (`kazashi purge`
//! still does it by hand).
//!
//! **Purging** ([`purge`]), in this order, each step durable before the next:
//! 1. The record ([`ClosingRecord`]: per site and JST day check-ins, check-outs, peak
//!    occupancy, ballots issued, votes by mode; open alerts; close times — counts only) is
//!    signed with the device key and written to `record.json` (fsynced, renamed, folder
//!    fsynced).
//! 2. The key files are destroyed (`crate::store_key::destroy`: overwritten with random
//!    bytes, synced, unlinked): `kazashi.db.kdf` (the store's wrapped data key: the log, the
//!    device key, the roster chunks received over the mesh) and `roster.db.kdf` (the roster
//!    store and its text indexes). From here on no passphrase opens the store, the roster
//!    store, or any copy of them taken earlier without its key file.
//! 3. The files themselves are deleted: `kazashi.db` with its `-wal`/`-shm`/`-journal`,
//!    `roster.db`, `roster.db.text`, an import's `roster.db.part*`, temporary files.
//! 4. The window's plain-text output, `export/` (CSV, PDF, PFIF) and `print/` (宣誓書), is
//!    overwritten with random bytes and deleted, file by file, and the folders removed. Files
//!    written elsewhere (`kazashi report --out …`) are not tracked and are the operator's to
//!    delete (docs/deploy.md).
//!
//! A purge killed midway is finished by the next one: [`purge_leftovers`] repeats steps 2–4
//! on a folder that holds a record (the window and `kazashi purge` call it when they find
//! one). The purged folder then holds `record.json` only; [`read_record`] reads it back and
//! checks its signature.

use crate::clock::Clock;
use crate::enrolled::STORE_FILE;
use crate::node::Node;
use crate::store_key::{destroy, kdf_path};
use kazashi_domain::event::{EventBody, SiteState, VoteMode};
use kazashi_domain::{CivilDate, DeviceId, Millis, State};
use kazashi_sync::{DeviceKey, Membership};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The record's file in a purged folder.
pub const RECORD_FILE: &str = "record.json";
/// The folders of plain-text output the window writes beside the store.
pub const OUTPUT_DIRS: [&str; 2] = ["export", "print"];
const RECORD_FORMAT: &str = "kazashi-record-v1";
const RECORD_TAG: &[u8] = b"kazashi-closing-record-v1";
const DAY_MS: u64 = 86_400_000;
/// The shortest retention a manager's `OperationClosed` sets when the manifest sets none.
pub const MIN_EVENT_RETENTION_DAYS: u32 = 1;

/// The retention period in force: the manifest's when it sets one, lengthened (never shortened)
/// by the manager's event; else the event's, at least [`MIN_EVENT_RETENTION_DAYS`].
pub fn retention(manifest_days: Option<u32>, event_days: Option<u32>) -> Option<u32> {
    match (manifest_days, event_days) {
        (Some(m), Some(e)) => Some(m.max(e)),
        (Some(m), None) => Some(m),
        (None, Some(e)) => Some(e.max(MIN_EVENT_RETENTION_DAYS)),
        (None, None) => None,
    }
}

/// Who closed the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedBy {
    /// The administrator's manifest (`closed_at`).
    Manifest,
    /// A manager's `OperationClosed` event.
    Manager,
}

/// When and how the operation closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closure {
    pub at: Millis,
    pub by: ClosedBy,
    /// The retention period in force ([`retention`]).
    pub retention_days: Option<u32>,
}

impl Closure {
    /// When the purge falls due (`None`: no retention period set).
    pub fn purge_at(&self) -> Option<Millis> {
        self.retention_days
            .map(|d| self.at.saturating_add(u64::from(d).saturating_mul(DAY_MS)))
    }
    /// Whether the purge is due at `now`.
    pub fn purge_due(&self, now: Millis) -> bool {
        self.purge_at().is_some_and(|at| now >= at)
    }
}

/// The operation's close, if it is closed: the earlier of the manifest's `closed_at` and a
/// manager's `OperationClosed` that counts (`State::operation_closed` passes over one whose
/// operator the manifest does not name a manager at its site).
pub fn closure(members: &Membership, state: &State) -> Option<Closure> {
    let by_manifest = members.closed_at().map(|at| (at, ClosedBy::Manifest));
    let event = state.operation_closed(None);
    let by_event = event.map(|(t, _)| (t.wall_ms, ClosedBy::Manager));
    let (at, by) = match (by_manifest, by_event) {
        (Some(m), Some(e)) => {
            if e.0 < m.0 {
                e
            } else {
                m
            }
        }
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => return None,
    };
    Some(Closure {
        at,
        by,
        retention_days: retention(members.retention_days(), event.and_then(|(_, days)| days)),
    })
}

/// One site's day, counts only.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DayRecord {
    /// The JST date, `YYYY-MM-DD`.
    pub date: String,
    /// Persons checked in (check-ins withdrawn by an undo not counted).
    pub check_ins: u32,
    /// Persons checked out.
    pub check_outs: u32,
    /// The most persons present at once that day, from the day's start count and its
    /// arrivals and departures (check-ins, check-outs, transfers away).
    pub peak_occupancy: u32,
    /// Ballots issued: voter check-ins not withdrawn.
    pub ballots_issued: u32,
    /// Voter check-ins by mode (`election_day`, `early`).
    pub votes_by_mode: BTreeMap<String, u32>,
    /// The last hand count of the day (`BallotTally`), if one was written.
    pub hand_tally: Option<u32>,
}

/// One site's record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SiteRecord {
    pub site: String,
    pub name: String,
    /// When a manager closed the site, if it is closed.
    pub closed_at_ms: Option<Millis>,
    pub days: Vec<DayRecord>,
}

/// What stays after a purge: counts for the record, no personal data.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClosingRecord {
    pub format: String,
    pub deployment: String,
    pub deployment_name: String,
    /// The device that purged and signed (hex of its public key).
    pub device: String,
    pub closed_at_ms: Option<Millis>,
    pub closed_by: Option<ClosedBy>,
    pub retention_days: Option<u32>,
    pub purged_at_ms: Millis,
    /// Why: `retention` (the period passed) or `manual` (`kazashi purge`).
    pub reason: String,
    /// Events on the log at the purge.
    pub events: u64,
    /// Alerts open at the purge.
    pub open_alerts: u32,
    pub sites: Vec<SiteRecord>,
}

/// The record and its signature, as `record.json` holds them.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct SignedRecord {
    record: ClosingRecord,
    /// Hex of the ed25519 signature over a tag and the record's JSON.
    signature: String,
}

/// Why a purge failed.
#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error(
        "the operation is not closed: a manager closes it (or the administrator's manifest does) before a purge"
    )]
    NotClosed,
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("the record: {0}")]
    Record(String),
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> PurgeError + '_ {
    move |e| PurgeError::Io(path.to_owned(), e)
}

fn vote_mode(m: &VoteMode) -> &'static str {
    match m {
        VoteMode::ElectionDay => "election_day",
        VoteMode::Early(_) => "early",
    }
}

/// The counts for the record, from the merged log (pure: no personal data is read beyond
/// counting members).
pub fn counts(state: &State, deployment: &kazashi_domain::Deployment) -> Vec<SiteRecord> {
    #[derive(Default)]
    struct Acc {
        days: BTreeMap<CivilDate, DayRecord>,
        present: i64,
    }
    let mut sites: BTreeMap<kazashi_domain::SiteId, Acc> = BTreeMap::new();
    for e in state.events_in_order() {
        let Some(day) = CivilDate::jst_of(e.at().wall_ms) else {
            continue;
        };
        let acc = sites.entry(e.site()).or_default();
        let n = |m: &kazashi_domain::event::Members| i64::try_from(m.as_slice().len()).unwrap_or(0);
        let undone = || state.undone_by(&e.id(), None).is_some();
        let present_before = acc.present;
        let d = acc.days.entry(day).or_insert_with(|| DayRecord {
            date: day.to_string(),
            peak_occupancy: u32::try_from(present_before.max(0)).unwrap_or(u32::MAX),
            ..DayRecord::default()
        });
        let count = |x: i64| u32::try_from(x.max(0)).unwrap_or(u32::MAX);
        match e.body() {
            EventBody::ShelterCheckIn { members, .. } if !undone() => {
                d.check_ins = d.check_ins.saturating_add(count(n(members)));
                acc.present += n(members);
            }
            EventBody::ShelterCheckOut { members, .. } => {
                d.check_outs = d.check_outs.saturating_add(count(n(members)));
                acc.present = (acc.present - n(members)).max(0);
            }
            EventBody::Transfer { members, .. } => {
                acc.present = (acc.present - n(members)).max(0);
            }
            EventBody::VoterCheckIn { mode, .. } if !undone() => {
                d.ballots_issued = d.ballots_issued.saturating_add(1);
                *d.votes_by_mode.entry(vote_mode(mode).into()).or_default() += 1;
            }
            EventBody::BallotTally { ballots_issued, .. } => {
                d.hand_tally = Some(*ballots_issued);
            }
            _ => {}
        }
        d.peak_occupancy = d.peak_occupancy.max(count(acc.present));
    }
    sites
        .into_iter()
        .map(|(site, acc)| SiteRecord {
            site: site.to_string(),
            name: deployment
                .site(&site)
                .map(|s| s.name.as_str().to_owned())
                .unwrap_or_default(),
            closed_at_ms: match state.site_state(&site, None) {
                Some((SiteState::Closed, at)) => Some(at.wall_ms),
                _ => None,
            },
            days: acc.days.into_values().collect(),
        })
        .collect()
}

fn record_message(record: &ClosingRecord) -> Result<Vec<u8>, PurgeError> {
    let json = serde_json::to_vec(record).map_err(|e| PurgeError::Record(e.to_string()))?;
    Ok([RECORD_TAG, &json].concat())
}

/// The record of `node` at `now`, signed by its device key, as `record.json` holds it.
fn signed_record<C: Clock>(
    node: &mut Node<C>,
    now: Millis,
    reason: &str,
) -> Result<Vec<u8>, PurgeError> {
    let members = node.membership();
    let close = closure(members, node.state());
    let deployment = members.deployment();
    let record = ClosingRecord {
        format: RECORD_FORMAT.into(),
        deployment: deployment.id().to_string(),
        deployment_name: deployment.name().as_str().to_owned(),
        device: hex::encode(node.device().0),
        closed_at_ms: close.map(|c| c.at),
        closed_by: close.map(|c| c.by),
        retention_days: close.and_then(|c| c.retention_days),
        purged_at_ms: now,
        reason: reason.into(),
        events: node.state().len() as u64,
        open_alerts: 0,
        sites: counts(node.state(), deployment),
    };
    let open_alerts = u32::try_from(node.open_alert_count()).unwrap_or(u32::MAX);
    let record = ClosingRecord {
        open_alerts,
        ..record
    };
    let key = DeviceKey::from_seed(node.secret_key_bytes());
    let signature = hex::encode(key.sign(&record_message(&record)?));
    serde_json::to_vec_pretty(&SignedRecord { record, signature })
        .map_err(|e| PurgeError::Record(e.to_string()))
}

/// What a purge did, for the log (no personal data).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Purged {
    /// Key files destroyed.
    pub keys_destroyed: usize,
    /// Other files deleted (databases, temporary files, exports).
    pub files_deleted: usize,
}

/// Purge the enrolled laptop in `dir` whose node is `node` (its roster store at `roster`):
/// the record written, then the keys destroyed and the files deleted (see the module docs).
/// Refused, changing nothing, unless the operation is closed. The node is consumed: its store
/// is closed before its files go.
pub fn purge<C: Clock>(
    dir: &Path,
    roster: &Path,
    mut node: Node<C>,
    now: Millis,
    reason: &str,
) -> Result<Purged, PurgeError> {
    write_record(dir, &mut node, now, reason)?;
    drop(node);
    purge_leftovers(dir, roster)
}

/// Step 1 of a purge: the signed record written to `dir/record.json` (durably). Refused,
/// changing nothing, unless the operation is closed. Once it is written the folder counts as
/// being purged: [`purge_leftovers`] must follow (a laptop that finds a record beside a store
/// finishes the purge before anything else). For a node that others share (the mesh), write
/// the record through it, stop it, then run [`purge_leftovers`].
pub fn write_record<C: Clock>(
    dir: &Path,
    node: &mut Node<C>,
    now: Millis,
    reason: &str,
) -> Result<(), PurgeError> {
    if closure(node.membership(), node.state()).is_none() {
        return Err(PurgeError::NotClosed);
    }
    let record = signed_record(node, now, reason)?;
    let path = dir.join(RECORD_FILE);
    crate::store::write_atomic(&path, &record).map_err(io_at(&path))
}

/// Whether a purge of `dir` was begun (its record is written) and not finished (a store or
/// key file is still there).
pub fn unfinished(dir: &Path, roster: &Path) -> bool {
    let store = dir.join(STORE_FILE);
    dir.join(RECORD_FILE).exists()
        && [
            store.clone(),
            kdf_path(&store),
            roster.to_owned(),
            kdf_path(roster),
        ]
        .iter()
        .any(|p| p.exists())
}

/// The purge due for `node` at `now`, if any: the operation is closed and its retention
/// period has passed.
pub fn due<C: Clock>(node: &Node<C>, now: Millis) -> Option<Closure> {
    closure(node.membership(), node.state()).filter(|c| c.purge_due(now))
}

/// Steps 2–4 of a purge: the key files destroyed, the databases, temporary files and the
/// window's exports deleted. Safe to repeat (a purge killed midway is finished by this).
pub fn purge_leftovers(dir: &Path, roster: &Path) -> Result<Purged, PurgeError> {
    let store = dir.join(STORE_FILE);
    let mut done = Purged {
        keys_destroyed: 0,
        files_deleted: 0,
    };
    // Keys first: once they are gone, whatever is left is ciphertext nobody can open.
    for db in [&store, roster] {
        let kdf = kdf_path(db);
        if destroy(&kdf).map_err(io_at(&kdf))? {
            done.keys_destroyed += 1;
        }
    }
    let names = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    let prefixes: Vec<String> = [names(&store), names(roster)]
        .into_iter()
        .flatten()
        .collect();
    // The databases and everything named after them: -wal, -shm, -journal, .text, .part*,
    // .kdf.tmp, an interrupted key file.
    for folder in [Some(dir), roster.parent()].into_iter().flatten() {
        let Ok(entries) = std::fs::read_dir(folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !prefixes.iter().any(|p| name.starts_with(p.as_str())) {
                continue;
            }
            let path = entry.path();
            let removed = if name.contains(".kdf") {
                destroy(&path)
            } else if path.is_dir() {
                std::fs::remove_dir_all(&path).map(|()| true)
            } else {
                std::fs::remove_file(&path).map(|()| true)
            };
            if removed.map_err(io_at(&path))? {
                done.files_deleted += 1;
            }
        }
    }
    for out in OUTPUT_DIRS {
        done.files_deleted += wipe_dir(&dir.join(out))?;
    }
    // The update pin (public: the deployment's id and key) goes too, so that the record is
    // all that is left; root's copy in /etc/kazashi stays (docs/appliance.md).
    let pin = crate::update_pin::in_folder(dir);
    match std::fs::remove_file(&pin) {
        Ok(()) => done.files_deleted += 1,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_at(&pin)(e)),
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(done)
}

/// Overwrite and delete every file under `dir`, then the folders. Returns the files deleted.
fn wipe_dir(dir: &Path) -> Result<usize, PurgeError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut n = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir {
            n += wipe_dir(&path)?;
        } else if destroy(&path).map_err(io_at(&path))? {
            n += 1;
        }
    }
    std::fs::remove_dir(dir).map_err(io_at(dir))?;
    Ok(n)
}

/// Whether `dir` is a purged folder: it holds a record and no store.
pub fn is_purged(dir: &Path) -> bool {
    dir.join(RECORD_FILE).exists() && !dir.join(STORE_FILE).exists()
}

/// The record in `dir` (`None`: there is none), and whether its signature verifies against
/// the device it names.
pub fn read_record(dir: &Path) -> Result<Option<(ClosingRecord, bool)>, PurgeError> {
    let path = dir.join(RECORD_FILE);
    let raw = match std::fs::read(&path) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(PurgeError::Io(path, e)),
    };
    let signed: SignedRecord =
        serde_json::from_slice(&raw).map_err(|e| PurgeError::Record(e.to_string()))?;
    let device = hex::decode(&signed.record.device)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(DeviceId);
    let signature = hex::decode(&signed.signature).unwrap_or_default();
    let verified = match device {
        Some(d) => kazashi_sync::identity::verify(&d, &record_message(&signed.record)?, &signature),
        None => false,
    };
    Ok(Some((signed.record, verified)))
}
