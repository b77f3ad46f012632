//! The node: one laptop's station, its signed log and its encrypted store, as one service.
//!
//! - [`Node::record`] writes an event: stamped and checked by the [`Station`], sealed with the
//!   device key, added to its shard, and committed to the store (incremental Automerge save and
//!   index rows in one fsynced transaction) *before* the state shows it. The call returns only
//!   once the event is durable.
//! - [`Node::import`] takes one envelope from outside (a USB bundle): verified against the
//!   membership and the domain rules, or quarantined with the reason.
//! - [`Node::sync_start`] and [`Node::sync_handle`] run the sync protocol with a peer over any
//!   transport: stored shards are loaded as the peer's catalog shows they differ, refused
//!   messages are quarantined, new events are stored and folded.
//! - **Revocation and the operation's close are verdicts of the fold, never of the door**: a
//!   revoked laptop's event stamped at or after its cut-off, or any event stamped after the
//!   close, is kept in the log (synced, bundled) but not folded (the `withheld` module).
//! - **The roster is not a condition of replication.** A peer's event (sync, bundle, one
//!   envelope) is checked against the membership (signature, enrolment, role and sites) and
//!   the deployment (sites, the operation's kind), but not against the roster the
//!   station runs on (`check_event_shape`): between adopting a manifest that pins a new roster
//!   and switching to it, a laptop takes events naming people only in the new roster, and one
//!   already switched takes events naming people a newer roster dropped. Refusing them would
//!   refuse the whole shard message carrying them (the vetting is per message, and an
//!   Automerge change cannot be taken without those before it) and leave that shard unsynced
//!   with that peer for the rest of the session, or for good once the roster dropped a
//!   person. Whether the roster holds a person is the view's concern. This laptop's own writes
//!   ([`Node::record`]) are still checked against its roster.
//! - [`Node::open`] is the cold start: the state is folded from the stored envelopes (verified
//!   when they came in; the store is encrypted and authenticated); shard documents are loaded
//!   only when written to or synced.

use crate::clock::Clock;
use crate::station::{Station, StationError};
use crate::store::{KdfParams, Quarantined, Store, StoreError};
use kazashi_domain::detector::{Alert, Context, Detector, MatchIndex};
use kazashi_domain::event::{AlertOutcome, EventBody};
use kazashi_domain::search::SearchIndex;
use kazashi_domain::validate::check_event_shape;
use kazashi_domain::{Event, EventId, OperatorId, Roster, SiteId};
use kazashi_sync::Scope;
use kazashi_sync::manifest::ManifestError;
use kazashi_sync::{
    DeviceKey, Log, Membership, Message, Rejection, Session, ShardDoc, ShardError, ShardId,
    SignedManifest, Vetted, digest, open, open_as, open_trusted, seal,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Why the node refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Station(#[from] StationError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error("refused: {0}")]
    Rejected(#[from] Rejection),
    #[error("this device ({0}) is not enrolled in the manifest")]
    NotEnrolled(kazashi_domain::DeviceId),
    #[error("the store has no device identity or no manifest: enrol first")]
    NotEnrolledHere,
    #[error("the event's time is outside the JST calendar")]
    NoShard,
    #[error("bundle refused: {0}")]
    Bundle(kazashi_sync::BundleError),
    /// The bundle file could not be written (whole and synced); nothing was marked as sent.
    #[error("the bundle could not be written to {}: {why} (nothing was marked as sent)", path.display())]
    BundleFile {
        path: std::path::PathBuf,
        why: String,
    },
    #[error("a stored envelope could not be read: {0}")]
    Damaged(String),
    /// A local write refused: the operation is closed, or this laptop revoked.
    #[error("not written: {0}")]
    WritesStopped(WriteBlock),
    /// A manifest offered to a running node (`Node::adopt_manifest`) that the rule refuses.
    #[error("manifest refused: {0}")]
    ManifestRefused(ManifestRefusal),
    /// A bundle whose manifest the rule refuses (not a mere older version); nothing of it was
    /// taken.
    #[error("bundle refused: the manifest it carries is refused: {0}")]
    BundleManifestRefused(ManifestRefusal),
}

/// Why [`Node::adopt_manifest`](crate::enrolment) refused a manifest; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestRefusal {
    #[error("not a valid signed manifest: {0}")]
    Invalid(String),
    #[error("of another deployment")]
    OtherDeployment,
    #[error("signed by another administrator key")]
    OtherAdmin,
    #[error("version {found} is older than the installed {installed} (a rollback)")]
    Rollback { installed: u32, found: u32 },
    #[error("version {0} differs from the installed one of the same version (a conflict)")]
    Conflict(u32),
}

/// Why this laptop writes nothing (any more): [`Node::write_block`]. It still syncs, takes
/// bundles, exports and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WriteBlock {
    /// The manifest in force closes the operation.
    #[error(
        "this operation is closed (since {}): nothing more is written; sync, export and reports still work",
        jst(*.at)
    )]
    Closed { at: kazashi_domain::Millis },
    /// The manifest in force revokes this laptop.
    #[error("this laptop is revoked (from {}): it writes nothing more", jst(*.from))]
    Revoked { from: kazashi_domain::Millis },
    /// The manifest in force no longer lists this laptop.
    #[error("this laptop is no longer in the deployment's manifest: it writes nothing more")]
    NotListed,
    /// This laptop is a relay: it carries data and writes none.
    #[error("this laptop is a relay: it writes no events")]
    Relay,
}

/// `ms` as a Japan time for people: "2026-07-12 09:30 JST" (milliseconds if out of range).
fn jst(ms: kazashi_domain::Millis) -> String {
    let Some(day) = kazashi_domain::CivilDate::jst_of(ms) else {
        return format!("{ms} ms");
    };
    let minutes = day
        .jst_midnight()
        .map_or(0, |m| ms.saturating_sub(m) / 60_000);
    format!("{day} {:02}:{:02} JST", minutes / 60, minutes % 60)
}

/// What `Node::adopt_manifest` (in `enrolment`) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adopted {
    /// A newer version is now in force (written to the store, swapped in memory).
    Newer {
        version: u32,
        /// The new manifest revokes this very laptop (or no longer lists it): see
        /// `Node::adopt_manifest` (in `enrolment`).
        revokes_me: bool,
    },
    /// Byte for byte the manifest in force: nothing done.
    Same,
}

/// Chunks a shard may gather before [`Node::maintain`] compacts it into one save.
pub const COMPACT_AFTER: u32 = 64;

pub struct Node<C: Clock> {
    station: Station<C>,
    members: Membership,
    key: DeviceKey,
    log: Log,
    store: Store,
    /// Stored chunks per shard (for compaction).
    chunks: BTreeMap<ShardId, u32>,
    /// Per peer, the sync states of the last session (see `Session::resume`).
    peer_memory: BTreeMap<String, BTreeMap<ShardId, Vec<u8>>>,
    /// Per peer, the digest of the manifest this laptop held when the peer was last known to
    /// hold the same one (see [`Node::sync_agreed`]).
    peer_agreed: BTreeMap<String, [u8; 32]>,
    /// The roster folded for matching (built on first use: alerts, a card's basic four).
    matcher: Option<MatchIndex>,
    /// The roster folded for staff search (built on first use).
    search: Option<SearchIndex>,
    /// The detector, built on the first `alerts` call and kept up to date with every event
    /// after.
    detector: Option<Detector>,
    /// The detector being built off the calling thread (`detector_build`).
    detector_build: Option<detector_build::Building>,
    /// [`Node::state_digest`] and the held-event count it was taken at.
    digest_cache: Option<(usize, [u8; 32])>,
    /// The events the log holds but the fold leaves out (revoked, after the close: the
    /// `withheld` module).
    held: withheld::Held,
    /// The shards the deployment can have, made once per deployment (not per sync message:
    /// a thousand sites cost more than the message); cleared when the manifest changes.
    scope: Option<Arc<Scope>>,
    /// Where a newly pinned roster received over the mesh is written (set by
    /// `enrolled::open`; the mesh then keeps the station on the pinned roster).
    roster_target: Option<crate::roster_fetch::RosterTarget>,
}

/// A sync session with one peer.
#[derive(Debug, Default)]
pub struct Peer {
    session: Session,
    /// Who the peer is, for the quarantine ("peer 3fa2…", "usb").
    pub source: String,
}

impl Peer {
    pub fn new(source: impl Into<String>) -> Self {
        Self {
            session: Session::new(),
            source: source.into(),
        }
    }
}

/// What a bundle brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleImport {
    /// Who made it, and when (by its clock).
    pub author: kazashi_domain::DeviceId,
    pub created_ms: u64,
    /// Shards it carried.
    pub shards: usize,
    /// Events new to this laptop.
    pub added: usize,
    /// Of those, per site.
    pub added_by_site: BTreeMap<SiteId, usize>,
    /// Shards whose changes were refused (and quarantined).
    pub refused_shards: usize,
    /// The ids of the events new to this laptop.
    pub added_ids: Vec<EventId>,
    /// The version of the manifest the bundle carried, when it was newer than this laptop's
    /// and adopted (before the bundle's events were checked).
    pub manifest_adopted: Option<u32>,
    /// Of the events added, how many the manifest in force withholds from the counts (a
    /// revoked laptop's after its cut-off, any after the close): held, not folded.
    pub withheld: usize,
}

/// What a bundle carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleScope {
    /// Every shard whole.
    All,
    /// What changed since the last bundle this laptop wrote (everything, the first time).
    SinceLast,
    /// What the device lacks, as far as this laptop knows from the last bundle that device
    /// made and this laptop imported (everything, if none was).
    For(kazashi_domain::DeviceId),
}

const META_BUNDLE_HEADS: &str = "bundle_heads";
const META_BUNDLE_SEEN: &str = "bundle_seen/";
const META_KNOWN_HEADS: &str = "known_heads/";

/// Heads per shard (change hashes), as bundles carry them.
type ShardHeads = Vec<(ShardId, Vec<[u8; 32]>)>;

fn decode_heads(b: &[u8]) -> Result<ShardHeads, NodeError> {
    postcard::from_bytes(b).map_err(|e| NodeError::Damaged(e.to_string()))
}

/// What a sync message brought.
#[derive(Debug, Default)]
pub struct SyncStep {
    /// Encoded replies for the peer.
    pub replies: Vec<Vec<u8>>,
    /// Events new here.
    pub added: usize,
    /// Shard messages refused (and quarantined).
    pub refused: usize,
    /// For a catalog: how many shards differ between it and ours (held by one side only, or
    /// with other heads).
    pub differing: Option<usize>,
    /// The ids of the events new here.
    pub added_ids: Vec<EventId>,
}

impl<C: Clock> Node<C> {
    /// Enrol a laptop: a new store at `path` with this device's key and the manifest.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        path: &Path,
        passphrase: &str,
        kdf: KdfParams,
        key: DeviceKey,
        manifest: &[u8],
        roster: Arc<Roster>,
        site: SiteId,
        clock: C,
    ) -> Result<Self, NodeError> {
        let members = SignedManifest::decode(manifest)?;
        if members.device(&key.device_id()).is_none() {
            return Err(NodeError::NotEnrolled(key.device_id()));
        }
        let mut station = Station::new(
            Arc::new(members.deployment().clone()),
            roster,
            key.device_id(),
            site,
            clock,
        )?;
        station.set_manager_authority(Some(crate::managers::authority(&members)));
        let store = Store::create(path, passphrase, kdf)?;
        let held = withheld::Held::default();
        store.set_identity(&key)?;
        store.set_manifest(manifest)?;
        Ok(Self {
            station,
            log: Log::new(key.device_id()),
            members,
            key,
            store,
            chunks: BTreeMap::new(),
            peer_memory: BTreeMap::new(),
            peer_agreed: BTreeMap::new(),
            matcher: None,
            search: None,
            detector: None,
            detector_build: None,
            digest_cache: None,
            held,
            scope: None,
            roster_target: None,
        })
    }

    /// Open an enrolled laptop's store and fold its log (the cold start).
    pub fn open(
        path: &Path,
        passphrase: &str,
        roster: Arc<Roster>,
        site: SiteId,
        clock: C,
    ) -> Result<Self, NodeError> {
        Self::from_store(Store::open(path, passphrase)?, roster, site, clock)
    }

    /// [`Node::open`] on a store already opened (and so already keyed): the cold start.
    pub fn from_store(
        store: Store,
        roster: Arc<Roster>,
        site: SiteId,
        clock: C,
    ) -> Result<Self, NodeError> {
        let key = store.identity()?.ok_or(NodeError::NotEnrolledHere)?;
        let manifest = store.manifest()?.ok_or(NodeError::NotEnrolledHere)?;
        let members = SignedManifest::decode(&manifest)?;
        let mut station = Station::new(
            Arc::new(members.deployment().clone()),
            roster,
            key.device_id(),
            site,
            clock,
        )?;
        station.set_manager_authority(Some(crate::managers::authority(&members)));
        let deployment = members.deployment().id();
        let mut store = store;
        let stored_shards = store.shards()?;
        let (mut blocks, stale) = store.cached_blocks()?;
        if !stale.is_empty() {
            // Part of the cache is lost or behind: rebuild those shards from their documents.
            for shard in &stale {
                rebuild_cache(&mut store, shard, &key.device_id(), deployment)?;
            }
            blocks = store.cached_blocks()?.0;
        }
        let events = decode_all(&blocks)?;
        drop(blocks);
        // Only what the manifest in force admits is folded (the `withheld` module).
        let held = withheld::Held::new(withheld::fold_held(&mut station, &members, events));
        let mut log = Log::new(key.device_id());
        let mut chunks = BTreeMap::new();
        for (shard, heads, n) in stored_shards {
            log.register_stored(shard, heads);
            chunks.insert(shard, n);
        }
        Ok(Self {
            station,
            members,
            key,
            log,
            store,
            chunks,
            peer_memory: BTreeMap::new(),
            peer_agreed: BTreeMap::new(),
            matcher: None,
            search: None,
            detector: None,
            detector_build: None,
            digest_cache: None,
            held,
            scope: None,
            roster_target: None,
        })
    }

    pub fn station(&self) -> &Station<C> {
        &self.station
    }
    pub fn state(&self) -> &kazashi_domain::State {
        self.station.state()
    }
    pub fn membership(&self) -> &Membership {
        &self.members
    }

    /// Make `members` (verified from `signed`) the manifest in force, at this laptop's site
    /// (tests put a manifest in force so, past the rule).
    #[cfg(test)]
    pub(crate) fn replace_membership(
        &mut self,
        members: Membership,
        signed: &[u8],
    ) -> Result<(), NodeError> {
        let site = self.station.site();
        self.replace_membership_at(members, signed, site, &[])
    }

    /// Make `members` (verified from `signed`) the manifest in force with this laptop at
    /// `site`: written to the store with `meta` (the site setting) in one synced transaction
    /// first, then applied in memory at once — the envelope checks, the bundles, the greeting,
    /// the staff list, the closed flag, and the station's sites and site all follow from the
    /// next call on. The station keeps the roster it runs on: a new roster pin shows in
    /// [`Node::pinned_roster`] and is switched to by `replace_roster`. The rule for which
    /// manifest may replace which is `enrolment::accept`: go through `Node::adopt_manifest`.
    pub(crate) fn replace_membership_at(
        &mut self,
        members: Membership,
        signed: &[u8],
        site: SiteId,
        meta: &[(&str, &[u8])],
    ) -> Result<(), NodeError> {
        let deployment = Arc::new(self.station_deployment(&members)?);
        if deployment.site(&site).is_none() {
            return Err(StationError::UnknownSite(site).into());
        }
        self.store.install_manifest(signed, meta)?;
        let refold = members.cutoffs() != self.members.cutoffs();
        self.members = members;
        self.station.set_deployment(deployment, site)?;
        self.station
            .set_manager_authority(Some(crate::managers::authority(&self.members)));
        // The detector reads the deployment (sites, precincts): rebuilt on next use.
        self.detector = None;
        self.detector_build = None;
        self.scope = None;
        // Other cut-offs (a revocation, the close, or one lifted by a manifest that wins):
        // every held event is judged again.
        if refold {
            self.refold();
        }
        Ok(())
    }

    /// The deployment of `members` as this station can run it: the same, but pinning the
    /// roster the station runs on (until `replace_roster` switches).
    fn station_deployment(
        &self,
        members: &Membership,
    ) -> Result<kazashi_domain::Deployment, NodeError> {
        let d = members.deployment();
        let running = self.station.roster().hash();
        if d.roster_hash() == running {
            return Ok(d.clone());
        }
        kazashi_domain::Deployment::new(
            d.id(),
            d.name().clone(),
            d.kind(),
            running,
            d.sites().cloned().collect(),
        )
        .map_err(|e| NodeError::Damaged(format!("the manifest's deployment: {e}")))
    }

    /// The roster hash the manifest in force pins (the station may still run on an older one
    /// until it is switched).
    pub fn pinned_roster(&self) -> kazashi_domain::ids::RosterHash {
        self.members.deployment().roster_hash()
    }

    /// Why this laptop may not write, under the manifest in force: the operation closed,
    /// this laptop revoked or no longer listed, or a relay. `None`: it may write.
    pub fn write_block(&self) -> Option<WriteBlock> {
        let me = self.key.device_id();
        if let Some(at) = self.members.closed_at() {
            return Some(WriteBlock::Closed { at });
        }
        // A manager's close of the whole operation stops this laptop's writes too.
        if let Some((at, _)) = self.station.state().operation_closed(None) {
            return Some(WriteBlock::Closed { at: at.wall_ms });
        }
        if let Some(from) = self.members.revoked_from(&me) {
            return Some(WriteBlock::Revoked { from });
        }
        match self.members.device(&me) {
            None => Some(WriteBlock::NotListed),
            Some(e) if e.role == kazashi_sync::Role::Relay => Some(WriteBlock::Relay),
            Some(_) => None,
        }
    }
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Where a roster received over the mesh goes: `Mesh::start` keeps the station on the
    /// pinned roster when this is set.
    pub fn set_roster_target(&mut self, target: crate::roster_fetch::RosterTarget) {
        self.roster_target = Some(target);
    }
    pub fn roster_target(&self) -> Option<&crate::roster_fetch::RosterTarget> {
        self.roster_target.as_ref()
    }

    /// The roster the manifest in force pins, when the station runs on another (a fresh
    /// manifest pinning a new version): the one to fetch (`crate::roster_fetch`).
    pub fn roster_wanted(&self) -> Option<kazashi_domain::ids::RosterHash> {
        // The station's deployment pins the roster it runs on (checked when it was set).
        let pinned = self.members.deployment().roster_hash();
        (self.station.deployment().roster_hash() != pinned).then_some(pinned)
    }

    /// Switch to `roster`, the one the manifest in force pins, with that manifest's deployment:
    /// one step between two calls, never half; the roster-derived indexes are rebuilt on next
    /// use. Refused, and nothing changed, for any other roster.
    pub fn replace_roster(&mut self, roster: Arc<Roster>) -> Result<(), NodeError> {
        let deployment = Arc::new(self.members.deployment().clone());
        let (from, to) = (self.station.roster().hash(), roster.hash());
        self.station.replace_roster(deployment, roster)?;
        self.matcher = None;
        self.search = None;
        self.detector = None;
        self.detector_build = None;
        // Every roster switch leaves an audit record (issue 24; the audit module).
        self.audit_roster_switch(from, to);
        Ok(())
    }
    /// For simulated laptops only (drills, the simulator): commits stop waiting for fsync.
    /// A crash of the process still keeps every commit; a crash of the machine may not.
    pub fn relax_durability_for_simulation(&self) -> Result<(), NodeError> {
        Ok(self.store.relax_durability()?)
    }
    pub fn device(&self) -> kazashi_domain::DeviceId {
        self.key.device_id()
    }

    /// Load a stored shard if it is not in memory.
    fn ensure_loaded(&mut self, shard: &ShardId) -> Result<(), NodeError> {
        if self.log.is_loaded(shard) || !self.chunks.contains_key(shard) {
            return Ok(());
        }
        let bytes = self.store.shard_bytes(shard)?;
        let doc = ShardDoc::load(*shard, &self.key.device_id(), &bytes)?;
        self.log.put_shard(doc);
        Ok(())
    }

    /// Write a new event; returns once it is durable.
    pub fn record(&mut self, operator: OperatorId, body: EventBody) -> Result<Event, NodeError> {
        if let Some(block) = self.write_block() {
            return Err(NodeError::WritesStopped(block));
        }
        // Only a manager lifts the DV block, or closes or reopens a site or the operation
        // (issue 24): a manager on this laptop, and one in the manifest's staff list at this
        // site — the rule every node applies to such an event (`crate::managers`). Refused
        // otherwise, even for a lead enrolled on this laptop alone (no other laptop would
        // honour it).
        if crate::managers::is_managed(&body)
            && !(crate::managers::may_manage(&self.members, &operator, &self.station.site())
                && self
                    .staff_role(&operator)
                    .ok()
                    .flatten()
                    .is_some_and(|r| r.manages()))
        {
            return Err(StationError::NotAManager(body.name()).into());
        }
        let event = self.write(operator, body)?;
        // Every override leaves an audit record (issue 24; the audit module).
        self.audit_override(&event);
        Ok(event)
    }

    /// [`Node::record`]'s write, past its checks of who may write: stamp, check, seal, persist,
    /// fold. The audit module writes its records here (they go on when the operation is closed).
    pub(crate) fn write(
        &mut self,
        operator: OperatorId,
        body: EventBody,
    ) -> Result<Event, NodeError> {
        let Node {
            station,
            members,
            key,
            log,
            store,
            chunks,
            ..
        } = self;
        let key = &*key;
        let deployment = members.deployment().id();
        station
            .record_with(operator, body, |event| -> Result<(), NodeError> {
                let shard = ShardId::of(event).ok_or(NodeError::NoShard)?;
                if !log.is_loaded(&shard) && chunks.contains_key(&shard) {
                    let bytes = store.shard_bytes(&shard)?;
                    log.put_shard(ShardDoc::load(shard, &key.device_id(), &bytes)?);
                }
                let envelope =
                    seal(event, deployment, key).map_err(|e| NodeError::Damaged(e.to_string()))?;
                persist(log, store, chunks, shard, &[(event, &envelope)])
            })
            .inspect(|e| self.detect(e))
    }

    /// Take one envelope from outside (a USB bundle, a typed-in transfer).
    pub fn import(&mut self, envelope: &[u8], source: &str) -> Result<bool, NodeError> {
        let event = match self.verify(envelope) {
            Ok(e) => e,
            Err(r) => {
                self.quarantine(source, r.code(), &r.to_string(), envelope)?;
                return Err(r.into());
            }
        };
        if self.holds(&event.id()) {
            return Ok(false);
        }
        let shard = ShardId::of(&event).ok_or(NodeError::NoShard)?;
        self.ensure_loaded(&shard)?;
        stage(&mut self.log, shard, &[(&event, envelope)])?;
        self.ingest(shard, vec![(event, envelope.to_vec())])?;
        Ok(true)
    }

    /// Load events this node has already verified or signed itself (a restore from its own
    /// backup, a drill's or a benchmark's prefill): no signature check, one change per event
    /// in the shard documents as if written one by one, one transaction and one compacted save
    /// per shard. Events already present are skipped. Returns the number added.
    pub fn bulk_load(&mut self, events: Vec<(Event, Vec<u8>)>) -> Result<usize, NodeError> {
        let mut by_shard: BTreeMap<ShardId, Vec<(Event, Vec<u8>)>> = BTreeMap::new();
        for (e, env) in events {
            if self.holds(&e.id()) {
                continue;
            }
            let shard = ShardId::of(&e).ok_or(NodeError::NoShard)?;
            by_shard.entry(shard).or_default().push((e, env));
        }
        let mut added = Vec::new();
        for (shard, mut evs) in by_shard {
            evs.sort_by_key(|(e, _)| e.order_key());
            self.ensure_loaded(&shard)?;
            let refs: Vec<(&Event, &[u8])> = evs.iter().map(|(e, b)| (e, b.as_slice())).collect();
            persist(
                &mut self.log,
                &mut self.store,
                &mut self.chunks,
                shard,
                &refs,
            )?;
            if let Some(doc) = self.log.shard_mut(&shard) {
                let full = doc.save();
                self.store.compact(&shard, &full)?;
                self.chunks.insert(shard, 1);
            }
            // Keep memory flat: the document is reloaded when next needed.
            self.log.unload(&shard);
            added.extend(evs.into_iter().map(|(e, _)| e));
        }
        let n = added.len();
        self.fold_again(added);
        Ok(n)
    }

    /// Housekeeping, off the write path (the app calls it when idle, every few seconds):
    /// compact every shard with [`COMPACT_AFTER`] chunks or more into one save, and fold the
    /// write-ahead log into the database. Returns the number of shards compacted.
    pub fn maintain(&mut self) -> Result<usize, NodeError> {
        let due: Vec<ShardId> = self
            .chunks
            .iter()
            .filter(|(_, n)| **n >= COMPACT_AFTER)
            .map(|(s, _)| *s)
            .collect();
        for shard in &due {
            self.ensure_loaded(shard)?;
            if let Some(doc) = self.log.shard_mut(shard) {
                let full = doc.save();
                self.store.compact(shard, &full)?;
                self.chunks.insert(*shard, 1);
            }
        }
        self.store.checkpoint_passive()?;
        Ok(due.len())
    }

    /// The detector's alerts on this node's merged log that no resolution event has closed
    /// (confirmed or dismissed; a reopened alert is open again). The first call builds the
    /// detector over the whole state; after that every new event updates it.
    pub fn alerts(&mut self) -> Vec<Alert> {
        self.open_alerts().into_iter().cloned().collect()
    }

    /// How many alerts [`Node::alerts`] would list, without copying them.
    pub fn open_alert_count(&mut self) -> usize {
        self.open_alerts().len()
    }

    fn open_alerts(&mut self) -> Vec<&Alert> {
        // A build under way off this thread is waited for, not made twice.
        self.take_detector_build(detector_build::Wait::Forever);
        let state = self.station.state();
        let matcher = self
            .matcher
            .get_or_insert_with(|| MatchIndex::new(self.station.roster()));
        let detector = self.detector.get_or_insert_with(|| {
            let ctx = Context {
                deployment: self.station.deployment(),
                roster: self.station.roster(),
                matcher,
            };
            Detector::full(&ctx, state)
        });
        detector
            .alerts()
            .into_iter()
            .filter(|a| {
                !matches!(
                    state.alert_outcome(&a.id, None),
                    Some(AlertOutcome::Confirmed | AlertOutcome::Dismissed)
                )
            })
            .collect()
    }

    /// The roster folded for matching, built on first use.
    pub fn matcher(&mut self) -> &MatchIndex {
        self.matcher
            .get_or_insert_with(|| MatchIndex::new(self.station.roster()))
    }

    /// The roster folded for staff search, built on first use.
    pub fn search_index(&mut self) -> &SearchIndex {
        self.search
            .get_or_insert_with(|| SearchIndex::new(self.station.roster()))
    }

    /// An alert's evidence: each event it cites, with its site, time, operator and device.
    pub fn alert_evidence(&self, alert: &Alert) -> Vec<kazashi_domain::detector::Evidence> {
        kazashi_domain::detector::evidence(self.station.state(), alert)
    }

    /// Distinct persons registered at any shelter now: same-as clusters and persons at two
    /// sites count once (the municipality's headcount).
    pub fn distinct_registered(&self) -> u32 {
        self.station.state().distinct_registered(None)
    }

    /// The one way in for events from outside, whether a peer's sync message, a bundle or
    /// [`Node::import`] brought them: commit the shard that has just taken them (its new save
    /// and their contents), then fold them and feed them to the detector — those the manifest
    /// in force admits; the others are held, not folded (the `withheld` module). Returns the
    /// ids of all of them (all are held).
    ///
    /// The events arrive opened, verified and checked (`accept` in the shard's vetting,
    /// `Node::verify` for one envelope), with the envelope bytes they came in: nothing here
    /// reads them back out of the document or checks them again.
    fn ingest(
        &mut self,
        shard: ShardId,
        events: Vec<(Event, Vec<u8>)>,
    ) -> Result<Vec<EventId>, NodeError> {
        let refs: Vec<(&Event, &[u8])> = events.iter().map(|(e, b)| (e, b.as_slice())).collect();
        persist_loaded(
            &mut self.log,
            &mut self.store,
            &mut self.chunks,
            shard,
            &refs,
        )?;
        let mut ids = Vec::with_capacity(events.len());
        for (e, _) in events {
            ids.push(e.id());
            // Folded if the manifest in force admits it, kept aside otherwise.
            self.take_in(e);
        }
        Ok(ids)
    }

    /// Feed one event, already in the state, to the detector (once it exists).
    fn detect(&mut self, event: &Event) {
        if let (Some(matcher), Some(detector)) = (&self.matcher, &mut self.detector) {
            let ctx = Context {
                deployment: self.station.deployment(),
                roster: self.station.roster(),
                matcher,
            };
            detector.update(&ctx, self.station.state(), event);
        }
    }

    /// Drop every loaded shard document from memory (they stay stored).
    pub fn unload_shards(&mut self) {
        let loaded: Vec<ShardId> = self.log.shards().map(ShardDoc::id).collect();
        for s in loaded {
            self.log.unload(&s);
        }
    }

    /// A bundle for the USB stick (see [`BundleScope`]), encrypted for every device the
    /// manifest enrols and has not revoked, as bytes; the "already sent" marks advance at
    /// once. A file on disk: [`Node::export_bundle_to`], which advances them only once the
    /// file is durably written.
    pub fn export_bundle(&mut self, scope: BundleScope) -> Result<Vec<u8>, NodeError> {
        let (file, marks) = self.prepare_bundle(scope)?;
        if let Some(m) = marks {
            self.store.set_meta(META_BUNDLE_HEADS, &m)?;
        }
        Ok(file)
    }

    /// Write a bundle to `path` (see [`crate::bundle_file::write_durably`]: a `.partial` file,
    /// synced, renamed, the folder synced) and only then advance the "already sent" marks.
    /// Returns the file's size. Killed at any point, the marks never claim a file that is not
    /// whole on disk.
    pub fn export_bundle_to(
        &mut self,
        path: &Path,
        scope: BundleScope,
    ) -> Result<usize, NodeError> {
        let (file, marks) = self.prepare_bundle(scope)?;
        crate::bundle_file::write_durably(path, &file).map_err(|e| NodeError::BundleFile {
            path: path.to_owned(),
            why: e.to_string(),
        })?;
        if let Some(m) = marks {
            self.store.set_meta(META_BUNDLE_HEADS, &m)?;
        }
        Ok(file.len())
    }

    /// The bundle's bytes, and the marks to store once it is sent (`None` for a bundle made
    /// for one device, which moves no marks).
    fn prepare_bundle(
        &mut self,
        scope: BundleScope,
    ) -> Result<(Vec<u8>, Option<Vec<u8>>), NodeError> {
        let since: BTreeMap<ShardId, Vec<[u8; 32]>> = match scope {
            BundleScope::All => BTreeMap::new(),
            BundleScope::SinceLast => match self.store.get_meta(META_BUNDLE_HEADS)? {
                Some(b) => decode_heads(&b)?.into_iter().collect(),
                None => BTreeMap::new(),
            },
            BundleScope::For(device) => self.known_heads(&device)?.1.into_iter().collect(),
        };
        let mut shards = Vec::new();
        let mut catalog = Vec::new();
        let all: Vec<ShardId> = self.chunks.keys().copied().collect();
        for shard in all {
            let was_loaded = self.log.is_loaded(&shard);
            self.ensure_loaded(&shard)?;
            if let Some(doc) = self.log.shard_mut(&shard) {
                // Heads this laptop does not know (the peer has changes not yet here) are left
                // out: the changes after the rest are a superset of what the peer lacks.
                let after: Vec<kazashi_sync::ChangeHash> = since
                    .get(&shard)
                    .into_iter()
                    .flatten()
                    .map(|h| kazashi_sync::ChangeHash(*h))
                    .filter(|h| doc.has_change(h))
                    .collect();
                let heads: Vec<[u8; 32]> = doc.heads().iter().map(|h| h.0).collect();
                let known = since.get(&shard).is_some_and(|s| *s == heads);
                if !known {
                    let bytes = doc.save_after(&after);
                    if !bytes.is_empty() {
                        shards.push((shard, bytes));
                    }
                }
                catalog.push((shard, heads));
            }
            if !was_loaded {
                self.log.unload(&shard);
            }
        }
        let body = kazashi_sync::BundleBody {
            deployment: self.members.deployment().id(),
            author: self.key.device_id(),
            id: crate::store::random_bytes()?,
            created_ms: self.station.clock().now_ms(),
            snapshot: since.is_empty(),
            catalog,
            shards,
            manifest: Some(self.members.signed().encode()),
        };
        let file = kazashi_sync::bundle::write(
            &body,
            &self.key,
            &self.members,
            crate::store::random_bytes()?,
        )
        .map_err(NodeError::Bundle)?;
        let marks = match scope {
            BundleScope::For(_) => None,
            _ => Some(
                postcard::to_allocvec(&body.catalog)
                    .map_err(|e| NodeError::Damaged(e.to_string()))?,
            ),
        };
        Ok((file, marks))
    }

    /// What this laptop knows `device` held, from the last bundle `device` made that was
    /// imported here: (when it was made, its heads per shard). Nothing known: (0, empty).
    fn known_heads(
        &self,
        device: &kazashi_domain::DeviceId,
    ) -> Result<(u64, ShardHeads), NodeError> {
        match self
            .store
            .get_meta(&format!("{META_KNOWN_HEADS}{}", device.to_hex()))?
        {
            Some(b) => postcard::from_bytes(&b).map_err(|e| NodeError::Damaged(e.to_string())),
            None => Ok((0, Vec::new())),
        }
    }

    /// Envelope and domain checks for an event from outside.
    fn verify(&self, envelope: &[u8]) -> Result<Event, Rejection> {
        let e = open(envelope, &self.members)?;
        check_event_shape(&e, self.station.deployment())
            .map_err(|x| Rejection::InvalidEvent(x.to_string()))?;
        Ok(e)
    }

    fn quarantine(
        &self,
        source: &str,
        code: &str,
        reason: &str,
        bytes: &[u8],
    ) -> Result<(), NodeError> {
        self.store.quarantine(&Quarantined {
            received_ms: self.station.clock().now_ms(),
            source: source.to_owned(),
            code: code.to_owned(),
            reason: reason.to_owned(),
            bytes: bytes.to_vec(),
        })?;
        Ok(())
    }

    /// Open a sync session: the first message to send. A peer met before (same `source`)
    /// resumes from what the last session established.
    pub fn sync_start(&mut self, peer: &mut Peer) -> Vec<u8> {
        if let Some(saved) = self.peer_memory.get(&peer.source) {
            peer.session = Session::resume(saved);
        }
        peer.session.start(&mut self.log).encode()
    }

    /// A fresh catalog for a live session (new events here, or the periodic anti-entropy
    /// pass): unlike [`Node::sync_start`] it keeps the session's state with the peer.
    pub fn sync_catalog(&mut self, peer: &mut Peer) -> Vec<u8> {
        peer.session.start(&mut self.log).encode()
    }

    /// On a live session: sync messages carrying what this node gained since it last told the
    /// peer (see [`kazashi_sync::protocol::Session::push`]). Only loaded shards are pushed.
    pub fn sync_push(&mut self, peer: &mut Peer) -> Vec<Vec<u8>> {
        peer.session
            .push(&mut self.log)
            .iter()
            .map(Message::encode)
            .collect()
    }

    /// On a session just resumed with [`Node::sync_start`]: what this node gained since the
    /// last session with the peer, at once (see
    /// [`kazashi_sync::protocol::Session::resume_push`]). Only loaded shards are pushed.
    pub fn sync_resume_push(&mut self, peer: &mut Peer) -> Vec<Vec<u8>> {
        peer.session
            .resume_push(&mut self.log)
            .iter()
            .map(Message::encode)
            .collect()
    }

    /// Whether the peer `source` holds the manifest this laptop holds now (its greeting said
    /// so; told at each greeting): remembered for [`Node::sync_first_flight`].
    pub fn sync_agreed(&mut self, source: &str, agreed: bool) {
        if agreed {
            self.peer_agreed
                .insert(source.to_owned(), self.members.digest());
        } else {
            self.peer_agreed.remove(source);
        }
    }

    /// For the side that dialled, before the peer's greeting: a session resumed with a peer met
    /// before opens at once — the catalog ([`Node::sync_start`]) and what was gained since
    /// ([`Node::sync_resume_push`]) in the same flight as the greeting, not a round trip after
    /// it. Only when the peer was last known to hold the very manifest this laptop holds now
    /// ([`Node::sync_agreed`]): a laptop's manifest only moves forward, so the peer then vets
    /// these messages under that manifest or a later one, and needs nothing from this
    /// laptop's greeting first. Otherwise nothing (the session opens after the greeting, as
    /// with a peer never met).
    pub fn sync_first_flight(&mut self, peer: &mut Peer) -> Vec<Vec<u8>> {
        let agreed = self.peer_agreed.get(&peer.source) == Some(&self.members.digest());
        if !agreed || !self.peer_memory.contains_key(&peer.source) {
            return Vec::new();
        }
        let mut out = vec![self.sync_start(peer)];
        out.extend(self.sync_resume_push(peer));
        out
    }

    /// The device's secret key, for the network endpoint's identity (the same ed25519 key).
    pub(crate) fn secret_key_bytes(&self) -> [u8; 32] {
        self.key.secret_bytes()
    }

    /// A stored setting (peer addresses, …) as raw bytes.
    pub fn setting(&self, key: &str) -> Result<Option<Vec<u8>>, NodeError> {
        Ok(self.store.get_meta(key)?)
    }

    pub fn set_setting(&self, key: &str, value: &[u8]) -> Result<(), NodeError> {
        Ok(self.store.set_meta(key, value)?)
    }

    /// Close a session, remembering where it left the shards for the next one with this peer.
    pub fn sync_end(&mut self, peer: Peer) {
        self.peer_memory
            .insert(peer.source.clone(), peer.session.save());
    }

    /// Take one message from a peer.
    pub fn sync_handle(&mut self, peer: &mut Peer, bytes: &[u8]) -> Result<SyncStep, NodeError> {
        // The shards this deployment can have: a catalog naming more, or a shard of a site
        // outside it, is refused before it costs a document (or a decoded entry) each.
        let deployment = self.station.deployment();
        let scope = self
            .scope
            .get_or_insert_with(|| Arc::new(Scope::new(deployment.sites().map(|s| s.id))))
            .clone();
        let message = match Message::decode_bounded(bytes, scope.max_shards()) {
            Ok(m) => m,
            Err(e) => {
                self.quarantine(&peer.source, "malformed-message", &e.to_string(), bytes)?;
                return Ok(SyncStep {
                    refused: 1,
                    ..SyncStep::default()
                });
            }
        };
        for shard in self.log.to_load(&message) {
            self.ensure_loaded(&shard)?;
        }
        let (members, deployment) = (&self.members, self.station.deployment());
        let check = |id: &EventId, env: &[u8]| accept(members, deployment, id, env);
        let expected = match &message {
            Message::Shard { shard, .. } | Message::Whole { shard, .. } => Some(*shard),
            Message::Catalog(_) | Message::Reconcile(_) => None,
        };
        let check = |id: &EventId, env: &[u8]| own_shard(expected, check(id, env));
        let out = peer
            .session
            .handle_within(&mut self.log, message, &check, Some(&*scope));
        let mut replies: Vec<Vec<u8>> = out.replies.iter().map(Message::encode).collect();
        replies.extend(self.whole_messages(peer, &out.send_whole)?);
        let mut step = SyncStep {
            replies,
            added: 0,
            refused: out.refused.len(),
            differing: out.differing,
            added_ids: Vec::new(),
        };
        if let Some(why) = &out.out_of_scope {
            self.quarantine(&peer.source, "out-of-scope", why, bytes)?;
            step.refused += 1;
        }
        for (shard, err) in &out.refused {
            self.quarantine(
                &peer.source,
                "refused-change",
                &format!("shard {shard}: {err}"),
                bytes,
            )?;
        }
        // Store and fold what came in, shard by shard, as the vetting opened it.
        let mut by_shard: BTreeMap<ShardId, Vec<(Event, Vec<u8>)>> = BTreeMap::new();
        for (shard, vetted) in out.added {
            by_shard.entry(shard).or_default().push(opened(vetted));
        }
        for shard in self.log.take_dirty() {
            let events = by_shard.remove(&shard).unwrap_or_default();
            let ids = self.ingest(shard, events)?;
            step.added += ids.len();
            step.added_ids.extend(ids);
        }
        Ok(step)
    }
}

/// An event filed in a shard other than its own (its site and JST day) is refused: it would
/// sit where no catalog of its own shard shows it.
fn own_shard(
    expected: Option<ShardId>,
    opened: Result<Event, Rejection>,
) -> Result<Event, Rejection> {
    let e = opened?;
    match expected {
        Some(s) if ShardId::of(&e) != Some(s) => Err(Rejection::InvalidEvent(format!(
            "filed in shard {s}, but it belongs to {}",
            ShardId::of(&e).map_or_else(|| "none".to_owned(), |o| o.to_string())
        ))),
        _ => Ok(e),
    }
}

/// An event the shard's vetting opened, with its envelope, as [`Node::ingest`] takes it.
fn opened(v: Vetted<Event>) -> (Event, Vec<u8>) {
    (v.opened, v.envelope)
}

/// Whether an envelope from a peer or a bundle may enter a shard: it verifies against the
/// membership, is filed under its own id, and passes the domain checks but the roster's (module
/// docs: the roster is not a condition of replication). Returns the opened
/// event, which the vetting hands back for [`Node::ingest`].
fn accept(
    members: &Membership,
    deployment: &kazashi_domain::Deployment,
    id: &EventId,
    envelope: &[u8],
) -> Result<Event, Rejection> {
    let e = open_as(envelope, id, members)?;
    check_event_shape(&e, deployment).map_err(|x| Rejection::InvalidEvent(x.to_string()))?;
    Ok(e)
}

/// Rebuild a shard's event cache from its document.
fn rebuild_cache(
    store: &mut Store,
    shard: &ShardId,
    actor: &kazashi_domain::DeviceId,
    deployment: kazashi_domain::DeploymentId,
) -> Result<(), NodeError> {
    let doc = ShardDoc::load(*shard, actor, &store.shard_bytes(shard)?)?;
    let mut contents = Vec::new();
    for (id, env) in doc.envelopes() {
        let e = open_trusted(&env, deployment)?;
        if e.id() != id {
            return Err(NodeError::Damaged(format!(
                "event {id} is filed under another id"
            )));
        }
        contents.push(
            e.encode()
                .map_err(|x| NodeError::Damaged(format!("event {id}: {x}")))?,
        );
    }
    store.rebuild_cache(shard, contents)?;
    Ok(())
}

/// Decode the cached blocks, on every core (blocks dealt out in turn).
fn decode_all(blocks: &[crate::store::CacheBlock]) -> Result<Vec<Event>, NodeError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let total: usize = blocks.len();
    let decode = |k: usize| -> Result<Vec<Event>, NodeError> {
        let mine = blocks.iter().skip(k).step_by(threads);
        let mut out = Vec::with_capacity(mine.clone().map(|b| b.count).sum());
        for block in mine {
            // One block decompressed at a time: memory stays flat.
            let raw = block.decompress()?;
            for c in crate::store::split_block(&raw) {
                out.push(Event::decode_own(c?).map_err(|e| NodeError::Damaged(e.to_string()))?);
            }
        }
        Ok(out)
    };
    if total == 0 {
        return Ok(Vec::new());
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                (
                    k,
                    std::thread::Builder::new().spawn_scoped(s, move || decode(k)),
                )
            })
            .collect();
        let mut out = Vec::new();
        for (k, h) in handles {
            // A thread that could not start: decode its share here.
            let events = match h {
                Ok(h) => h
                    .join()
                    .map_err(|_| NodeError::Damaged("a decoding thread failed".into()))??,
                Err(_) => decode(k)?,
            };
            if out.is_empty() {
                out = events;
            } else {
                out.extend(events);
            }
        }
        Ok(out)
    })
}

/// Add events to a loaded (or new) shard and commit them with its incremental save. On a
/// store failure the in-memory shard is dropped, to be reloaded from what was committed.
fn persist(
    log: &mut Log,
    store: &mut Store,
    chunks: &mut BTreeMap<ShardId, u32>,
    shard: ShardId,
    events: &[(&Event, &[u8])],
) -> Result<(), NodeError> {
    stage(log, shard, events)?;
    persist_loaded(log, store, chunks, shard, events)
}

/// Add events to a loaded (or new) shard in memory, to be committed by [`persist_loaded`]. On
/// a failure the in-memory shard is dropped, to be reloaded from what was committed.
fn stage(log: &mut Log, shard: ShardId, events: &[(&Event, &[u8])]) -> Result<(), NodeError> {
    for (e, env) in events {
        if let Err(err) = log.insert(shard, &e.id(), env) {
            log.discard(&shard, None);
            return Err(err.into());
        }
    }
    log.take_dirty();
    Ok(())
}

fn persist_loaded(
    log: &mut Log,
    store: &mut Store,
    chunks: &mut BTreeMap<ShardId, u32>,
    shard: ShardId,
    events: &[(&Event, &[u8])],
) -> Result<(), NodeError> {
    let Some(doc) = log.shard_mut(&shard) else {
        return Err(ShardError::NotLoaded(shard).into());
    };
    // A shard's first chunk is a compacted save (a whole shard from a peer comes in one
    // piece); later ones are the changes since.
    let chunk = if chunks.contains_key(&shard) {
        doc.save_incremental()
    } else {
        doc.save()
    };
    let heads = digest(&doc.heads());
    let events: Vec<&Event> = events.iter().map(|(e, _)| *e).collect();
    if let Err(e) = store.append(&shard, &chunk, &heads, &events) {
        let stored_heads = store
            .shards()
            .ok()
            .and_then(|v| v.into_iter().find(|(s, _, _)| *s == shard).map(|x| x.1));
        log.discard(&shard, stored_heads);
        return Err(e.into());
    }
    *chunks.entry(shard).or_insert(0) += 1;
    Ok(())
}

#[path = "bundle_import.rs"]
mod bundle_import;
#[path = "detector_build.rs"]
mod detector_build;
#[cfg(test)]
#[path = "revocation_tests.rs"]
mod revocation_tests;
#[path = "sync_whole.rs"]
mod sync_whole;
#[path = "withheld.rs"]
pub mod withheld;

#[cfg(test)]
#[path = "roster_gap_tests.rs"]
pub(crate) mod roster_gap_tests;
