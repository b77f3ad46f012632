//! The sync protocol, as a state machine with no I/O (the transports carry its bytes).
//!
//! A [`Log`] holds the shard documents. Two peers each open a [`Session`] and reconcile their
//! [`Catalog`]s (for every shard, a digest of its Automerge heads) by ranges of shard ids
//! ([`crate::rbsr`]: equal catalogs settle in one small message). Only the shards whose digests
//! differ are synced, each with Automerge's own sync protocol; a shard one side lacks entirely
//! is sent whole, as its saved document ([`Message::Whole`], which the node reads from its
//! store), and is vetted on arrival exactly as sync messages are. Every message names its
//! shard, so shards interleave freely. ([`Message::Catalog`], the flat list of protocol 1, is
//! still answered.)
//!
//! A shard whose message is refused (a malicious or corrupt change) is dropped from the
//! session and reported; the rest carry on.

use crate::rbsr::{self, Reconcile};
use crate::shard::{EnvelopeCheck, ShardDoc, ShardError, ShardId, Vetted, put_shard};
use crate::wire::take_varint;
use automerge::sync;
use kazashi_domain::{DeviceId, EventId, SiteId};
use serde::{Deserialize, Serialize};

use std::collections::{BTreeMap, BTreeSet};

/// The shard documents of one node.
#[derive(Debug)]
pub struct Log {
    actor: DeviceId,
    shards: BTreeMap<ShardId, ShardDoc>,
    /// Shards the node has stored but not loaded, with their heads digest.
    unloaded: BTreeMap<ShardId, HeadsDigest>,
    /// Shards changed since the node last took them (to save).
    dirty: BTreeSet<ShardId>,
}

/// Digest of a shard's heads.
pub use crate::shard::{HeadsDigest, digest};

/// Every shard a node holds, with the digest of its heads.
pub type Catalog = BTreeMap<ShardId, HeadsDigest>;

impl Log {
    pub fn new(actor: DeviceId) -> Self {
        Self {
            actor,
            shards: BTreeMap::new(),
            unloaded: BTreeMap::new(),
            dirty: BTreeSet::new(),
        }
    }

    /// Note a shard the node holds in storage without loading it.
    pub fn register_stored(&mut self, id: ShardId, heads: HeadsDigest) {
        if !self.shards.contains_key(&id) {
            self.unloaded.insert(id, heads);
        }
    }

    pub fn is_loaded(&self, id: &ShardId) -> bool {
        self.shards.contains_key(id)
    }

    /// Drop a loaded shard from memory (it stays in storage, and in the catalog).
    pub fn unload(&mut self, id: &ShardId) -> Option<ShardDoc> {
        let mut doc = self.shards.remove(id)?;
        self.unloaded.insert(*id, digest(&doc.heads()));
        Some(doc)
    }

    /// Forget a loaded shard entirely (after a failed write, to reload it from storage).
    pub fn discard(&mut self, id: &ShardId, stored: Option<HeadsDigest>) {
        self.shards.remove(id);
        self.dirty.remove(id);
        if let Some(h) = stored {
            self.unloaded.insert(*id, h);
        }
    }

    /// The stored shards that `message` will touch and that must be loaded first.
    pub fn to_load(&mut self, message: &Message) -> Vec<ShardId> {
        match message {
            // The shards both sides hold at different heads (an Automerge message each);
            // those only this side holds go whole, from storage.
            Message::Reconcile(theirs) => {
                let ours = self.catalog();
                rbsr::answer(&ours, theirs)
                    .1
                    .differ
                    .into_iter()
                    .filter(|(s, a, b)| a.is_some() && b.is_some() && self.unloaded.contains_key(s))
                    .map(|(s, _, _)| s)
                    .collect()
            }
            Message::Whole { shard, .. } => {
                if self.unloaded.contains_key(shard) {
                    vec![*shard]
                } else {
                    Vec::new()
                }
            }
            Message::Catalog(theirs) => {
                let theirs: BTreeMap<ShardId, HeadsDigest> = theirs.iter().copied().collect();
                self.unloaded
                    .iter()
                    .filter(|(id, h)| theirs.get(id) != Some(h))
                    .map(|(id, _)| *id)
                    .collect()
            }
            Message::Shard { shard, .. } => {
                if self.unloaded.contains_key(shard) {
                    vec![*shard]
                } else {
                    Vec::new()
                }
            }
        }
    }

    /// Digest of a loaded shard's heads.
    pub fn heads_digest(&mut self, id: &ShardId) -> Option<HeadsDigest> {
        self.shards.get_mut(id).and_then(ShardDoc::heads_digest)
    }

    pub fn actor(&self) -> DeviceId {
        self.actor
    }

    /// Add a loaded shard.
    pub fn put_shard(&mut self, doc: ShardDoc) {
        self.unloaded.remove(&doc.id());
        self.shards.insert(doc.id(), doc);
    }

    pub fn shard(&self, id: &ShardId) -> Option<&ShardDoc> {
        self.shards.get(id)
    }

    pub fn shard_mut(&mut self, id: &ShardId) -> Option<&mut ShardDoc> {
        self.shards.get_mut(id)
    }

    /// The shard, created empty if the node has none; `None` if it is stored but not loaded.
    pub fn shard_or_new(&mut self, id: ShardId) -> Option<&mut ShardDoc> {
        if self.unloaded.contains_key(&id) {
            return None;
        }
        let actor = self.actor;
        Some(
            self.shards
                .entry(id)
                .or_insert_with(|| ShardDoc::new(id, &actor)),
        )
    }

    pub fn shards(&self) -> impl Iterator<Item = &ShardDoc> {
        self.shards.values()
    }

    /// Add a verified envelope to its shard. Returns false if it was there already.
    pub fn insert(
        &mut self,
        shard: ShardId,
        id: &EventId,
        envelope: &[u8],
    ) -> Result<bool, ShardError> {
        let added = self
            .shard_or_new(shard)
            .ok_or(ShardError::NotLoaded(shard))?
            .insert(id, envelope)?;
        if added {
            self.dirty.insert(shard);
        }
        Ok(added)
    }

    /// Note a shard as changed (after merging into it directly).
    pub fn mark_dirty(&mut self, id: ShardId) {
        self.dirty.insert(id);
    }

    /// The shards changed since the last call.
    pub fn take_dirty(&mut self) -> BTreeSet<ShardId> {
        std::mem::take(&mut self.dirty)
    }

    pub fn catalog(&mut self) -> Catalog {
        // An empty document (made to receive a shard that has not come yet) holds nothing.
        let mut c: Catalog = self
            .shards
            .iter_mut()
            .filter_map(|(id, doc)| Some((*id, doc.heads_digest()?)))
            .collect();
        c.extend(self.unloaded.iter().map(|(id, h)| (*id, *h)));
        c
    }

    /// Number of events in the loaded shards.
    pub fn len(&self) -> usize {
        self.shards.values().map(ShardDoc::len).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The shards a deployment's log can have: its sites' only, and at most
/// [`Scope::MAX_DAYS_PER_SITE`] days of each. A peer's catalog or shard message outside it
/// is refused before it costs anything (a catalog of a million shards would otherwise make a
/// million empty documents here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    sites: BTreeSet<SiteId>,
}

impl Scope {
    /// Days of log per site a deployment can hold (an operation lasts days to months).
    pub const MAX_DAYS_PER_SITE: usize = 1000;

    pub fn new(sites: impl IntoIterator<Item = SiteId>) -> Self {
        Self {
            sites: sites.into_iter().collect(),
        }
    }

    /// The most shards a catalog may name.
    pub fn max_shards(&self) -> usize {
        self.sites.len().saturating_mul(Self::MAX_DAYS_PER_SITE)
    }

    pub fn admits(&self, shard: &ShardId) -> bool {
        self.sites.contains(&shard.site)
    }

    /// Why `message` is outside the scope, if it is.
    pub fn refuse(&self, message: &Message) -> Option<String> {
        match message {
            Message::Catalog(entries) => {
                if entries.len() > self.max_shards() {
                    return Some(format!(
                        "a catalog of {} shards, more than the deployment can have ({})",
                        entries.len(),
                        self.max_shards()
                    ));
                }
                entries.iter().find(|(s, _)| !self.admits(s)).map(|(s, _)| {
                    format!("a catalog naming site {}, not in the deployment", s.site)
                })
            }
            Message::Shard { shard, .. } | Message::Whole { shard, .. } => (!self.admits(shard))
                .then(|| format!("a shard of site {}, not in the deployment", shard.site)),
            Message::Reconcile(r) => {
                if let Err(why) = r.check(self.max_shards()) {
                    return Some(why);
                }
                r.shards().find(|s| !self.admits(s)).map(|s| {
                    format!(
                        "a reconciliation naming site {}, not in the deployment",
                        s.site
                    )
                })
            }
        }
    }
}

/// A protocol message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// The sender's shards and their heads.
    Catalog(Vec<(ShardId, HeadsDigest)>),
    /// An Automerge sync message for one shard.
    Shard { shard: ShardId, sync: Vec<u8> },
    /// Range-based reconciliation of the two catalogs ([`crate::rbsr`]).
    Reconcile(Reconcile),
    /// A shard's whole saved document (a full save and incremental saves, concatenated), for a
    /// peer that holds none of it.
    Whole { shard: ShardId, doc: Vec<u8> },
}

impl Message {
    /// Postcard's layout (the variant's index, then its fields), written by hand because it
    /// cannot fail.
    pub fn encode(&self) -> Vec<u8> {
        use crate::wire::{put_bytes, put_varint};
        let mut out = Vec::new();
        match self {
            Message::Catalog(entries) => {
                out.reserve(2 + entries.len() * 48);
                put_varint(&mut out, 0);
                put_varint(&mut out, entries.len() as u64);
                for (shard, digest) in entries {
                    put_shard(&mut out, shard);
                    out.extend_from_slice(digest);
                }
            }
            Message::Shard { shard, sync } => {
                out.reserve(sync.len() + 24);
                put_varint(&mut out, 1);
                put_shard(&mut out, shard);
                put_bytes(&mut out, sync);
            }
            Message::Reconcile(r) => {
                put_varint(&mut out, 2);
                r.put(&mut out);
            }
            Message::Whole { shard, doc } => {
                out.reserve(doc.len() + 24);
                put_varint(&mut out, 3);
                put_shard(&mut out, shard);
                put_bytes(&mut out, doc);
            }
        }
        out
    }
    pub fn decode(bytes: &[u8]) -> Result<Self, SessionError> {
        postcard::from_bytes(bytes).map_err(|e| SessionError::Malformed(e.to_string()))
    }

    /// [`Message::decode`], refusing a catalog of more than `max_entries` shards from the
    /// count it declares, before any entry is read.
    pub fn decode_bounded(bytes: &[u8], max_entries: usize) -> Result<Self, SessionError> {
        if let Some((0, rest)) = take_varint(bytes)
            && let Some((n, _)) = take_varint(rest)
            && n > max_entries as u64
        {
            return Err(SessionError::TooLarge(format!(
                "a catalog of {n} shards, more than the deployment can have ({max_entries})"
            )));
        }
        Self::decode(bytes)
    }
}

/// Why a message could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("malformed protocol message: {0}")]
    Malformed(String),
    #[error("protocol message refused: {0}")]
    TooLarge(String),
}

/// What handling one message produced (`T`: what the envelope check returns).
#[derive(Debug)]
pub struct Outcome<T = ()> {
    /// Messages to send to the peer.
    pub replies: Vec<Message>,
    /// Events new to this node, with what the check made of each (already in the log; the
    /// node applies them to state).
    pub added: Vec<(ShardId, Vetted<T>)>,
    /// Shards whose message was refused, with why (the node quarantines the message).
    pub refused: Vec<(ShardId, ShardError)>,
    /// For a catalog: the shards whose contents differ between the two sides.
    pub differing: Option<usize>,
    /// Shards the peer holds none of: to be sent whole ([`Message::Whole`]), by the node,
    /// from its store (or, too large for a frame, opened with [`Session::open_shard`]).
    pub send_whole: Vec<ShardId>,
    /// The whole message was refused, with why (outside the deployment's [`Scope`]).
    pub out_of_scope: Option<String>,
}

impl<T> Default for Outcome<T> {
    fn default() -> Self {
        Self {
            replies: Vec::new(),
            added: Vec::new(),
            refused: Vec::new(),
            differing: None,
            send_whole: Vec::new(),
            out_of_scope: None,
        }
    }
}

/// The peer says it needs a change this side already sent (its message was lost or overtaken,
/// or the peer dropped it because a dependency had not come yet — see
/// `ShardDoc::without_orphans` — or a bloom filter's false positive kept the dependency back).
/// Automerge never sends a change twice in a session (`sent_hashes`), so left alone both sides
/// answer each other for ever: the peer's heads differ, so a message is always due, and it
/// carries nothing. Forget what was sent and what the peer's filter claimed, so that the next
/// message carries every change since the heads both sides are known to share (the needed ones
/// and their dependencies).
/// The most events a shard new to a session may hold to be pushed with all its changes
/// ([`Session::push`], [`Session::resume_push`]); a larger one (a day's shard gained by a
/// laptop catching up) opens with Automerge's summary, as the peer may well hold it.
pub const FRESH_SHARD_PUSH: usize = 64;

fn resend_needed(doc: &mut ShardDoc, peer: &mut sync::State) {
    let Some(need) = peer.their_need.as_ref() else {
        return;
    };
    let lost: Vec<_> = need
        .iter()
        .filter(|h| peer.sent_hashes.contains(h))
        .copied()
        .collect();
    if lost.is_empty() || !lost.iter().all(|h| doc.has_change(h)) {
        return;
    }
    peer.sent_hashes.clear();
    peer.their_have = Some(vec![sync::Have {
        last_sync: peer.shared_heads.clone(),
        bloom: sync::BloomFilter::default(),
    }]);
}

/// One sync session with one peer.
#[derive(Debug, Default)]
pub struct Session {
    peers: BTreeMap<ShardId, sync::State>,
    refused: BTreeSet<ShardId>,
    /// Our shards' digests as last announced to the peer (catalog or push).
    announced: BTreeMap<ShardId, HeadsDigest>,
    /// Per shard found differing: (ours, theirs) then, and the round ([`Session::start`]s so
    /// far) it was first found so.
    differed: BTreeMap<ShardId, (Pair, u64)>,
    /// Reconciliation rounds this side opened ([`Session::start`]).
    round: u64,
    /// Catalogs (protocol 1) taken from the peer.
    catalogs: u64,
    /// Shards sent whole in this session: at which of our digests, in which round.
    sent_whole: BTreeMap<ShardId, (HeadsDigest, u64)>,
    /// A resumed session ([`Session::resume`]): the shards the last session with the peer
    /// had announced or synced. `None` for a peer never met.
    known: Option<BTreeSet<ShardId>>,
}

type Pair = (Option<HeadsDigest>, Option<HeadsDigest>);

impl Session {
    pub fn new() -> Self {
        Self::default()
    }

    /// A session with a peer met before: per shard, Automerge's saved sync state (the heads
    /// both sides were known to share), so that the first messages need not summarise the
    /// whole shard. Unreadable entries are dropped (that shard starts afresh).
    ///
    /// The shards saved with no sync state (an empty entry: announced to the peer, never
    /// synced with it) are remembered as known too: a shard neither side had announced then
    /// is one this laptop made or gained since ([`Session::resume_push`]).
    pub fn resume(saved: &BTreeMap<ShardId, Vec<u8>>) -> Self {
        Self {
            peers: saved
                .iter()
                .filter(|(_, b)| !b.is_empty())
                .filter_map(|(s, b)| Some((*s, sync::State::decode(b).ok()?)))
                .collect(),
            known: Some(saved.keys().copied().collect()),
            ..Self::default()
        }
    }

    /// What to keep for the next session with this peer (see [`Session::resume`]): each
    /// shard's sync state, and an empty entry for a shard announced without one.
    pub fn save(&self) -> BTreeMap<ShardId, Vec<u8>> {
        let mut out: BTreeMap<ShardId, Vec<u8>> =
            self.announced.keys().map(|s| (*s, Vec::new())).collect();
        out.extend(self.peers.iter().map(|(s, st)| (*s, st.encode())));
        out
    }

    /// The opening message: our catalog. Also sent again on a live session, periodically, to
    /// catch anything missed (anti-entropy).
    ///
    /// The session's first opening lists every shard ([`Reconcile::open_listed`]), as a
    /// catalog did, so that a new connection (a heal, a restart) settles in one round trip;
    /// the periodic passes after it send one fingerprint.
    pub fn start(&mut self, log: &mut Log) -> Message {
        let catalog = log.catalog();
        let open = if self.round == 0 {
            Reconcile::open_listed(&catalog)
        } else {
            Reconcile::open(&catalog)
        };
        self.round += 1;
        self.announced = catalog;
        Message::Reconcile(open)
    }

    /// A shard found differing as `pair`: whether it differed so since at least a whole round
    /// before (a message was lost: a dropped frame, a transport that loses messages). Each
    /// side opens a round every anti-entropy period, and a round can find a shard twice (once
    /// in each side's), so one round's repeat is no evidence.
    fn stuck(&mut self, shard: ShardId, pair: Pair, round: u64, gap: u64) -> bool {
        match self.differed.get_mut(&shard) {
            Some((p, since)) if *p == pair => {
                if round >= *since + gap {
                    *since = round;
                    true
                } else {
                    false
                }
            }
            _ => {
                self.differed.insert(shard, (pair, round));
                false
            }
        }
    }

    /// Whether to send `shard` whole at our digest `ours`: not if it went at that digest in
    /// this round or the one before.
    fn whole_due(&mut self, shard: ShardId, ours: HeadsDigest) -> bool {
        if self.refused.contains(&shard) {
            return false;
        }
        let round = self.round;
        match self.sent_whole.get(&shard) {
            Some((d, at)) if *d == ours && round < *at + 2 => false,
            _ => {
                self.sent_whole.insert(shard, (ours, round));
                true
            }
        }
    }

    /// [`Message::Whole`] for each of `shards` that `log` holds loaded (a driver that keeps
    /// its documents in memory; the node sends its stored bytes instead).
    pub fn serve_whole(&mut self, log: &mut Log, shards: &[ShardId]) -> Vec<Message> {
        shards
            .iter()
            .filter_map(|s| {
                let doc = log.shard_mut(s)?.whole();
                Some(Message::Whole { shard: *s, doc })
            })
            .collect()
    }

    /// An Automerge sync message opening `shard` (loaded) for a peer that holds none of it,
    /// when the whole document is too large for one message.
    pub fn open_shard(&mut self, log: &mut Log, shard: ShardId) -> Option<Message> {
        if self.refused.contains(&shard) {
            return None;
        }
        let peer = self.peers.entry(shard).or_default();
        peer.in_flight = false;
        let sync = log.shard_mut(&shard)?.generate(peer)?;
        Some(Message::Shard { shard, sync })
    }

    /// Start Automerge's sync of a shard both sides hold at different heads.
    fn sync_differing(&mut self, log: &mut Log, shard: ShardId, stuck: bool) -> Option<Message> {
        if self.refused.contains(&shard) {
            return None;
        }
        let peer = self.peers.entry(shard).or_default();
        if stuck {
            *peer = sync::State::decode(&peer.encode()).unwrap_or_default();
        }
        // The peer's heads differ from ours: a message is due even if an earlier one is still
        // "in flight" (the peer may have had nothing to answer it with, which would leave the
        // flag set for the whole session).
        peer.in_flight = false;
        // A stored shard the node did not load (see `Log::to_load`) is skipped.
        let sync = log.shard_or_new(shard).and_then(|d| d.generate(peer))?;
        Some(Message::Shard { shard, sync })
    }

    /// On a live session, after this node gained events: a sync message for every shard that
    /// changed since it was last announced, carrying the new changes straight away (a catalog
    /// alone would wait for the peer to ask, and the peer's Automerge state may believe it
    /// already knows our heads).
    ///
    /// A small shard (at most [`FRESH_SHARD_PUSH`] events) this session never announced nor
    /// synced — made or gained here since the last catalog, such as a site's first events of
    /// the day — goes with all its changes, as if the peer held none of it, instead of
    /// Automerge's opening summary and a round trip for the peer's answer: each gossip hop of
    /// a new shard costs one trip, not three. A peer that had it from a third laptop takes
    /// it again harmlessly, at the cost of its bytes.
    pub fn push(&mut self, log: &mut Log) -> Vec<Message> {
        let mut out = Vec::new();
        for (shard, digest) in log.catalog() {
            if self.announced.get(&shard) == Some(&digest) || self.refused.contains(&shard) {
                continue;
            }
            let fresh = !self.announced.contains_key(&shard)
                && !self.peers.contains_key(&shard)
                && log
                    .shard(&shard)
                    .is_some_and(|d| d.len() <= FRESH_SHARD_PUSH);
            // Our heads moved since the last message, so Automerge sends even with one in
            // flight; a shard whose heads did not move waits for the peer's answer (forcing a
            // message then would repeat a whole document the peer has not yet acknowledged).
            let peer = self.peers.entry(shard).or_default();
            if fresh {
                peer.their_have = Some(vec![sync::Have {
                    last_sync: Vec::new(),
                    bloom: sync::BloomFilter::default(),
                }]);
                peer.their_need = Some(Vec::new());
            }
            if let Some(sync) = log.shard_or_new(shard).and_then(|d| d.generate(peer)) {
                out.push(Message::Shard { shard, sync });
            }
            self.announced.insert(shard, digest);
        }
        out
    }

    /// At the start of a resumed session ([`Session::resume`]): for every loaded shard whose
    /// heads moved since the heads both sides were last known to share, a sync message
    /// carrying every change made since, in the first flight — not after the catalogs and a
    /// round of Automerge summaries, two more trips. A laptop back from a partition or a
    /// restart so hands over what it wrote meanwhile as soon as the connection is greeted, and
    /// a peer what the laptop missed. The peer may hold some of these changes already (from a
    /// third laptop): it takes them again harmlessly, at the cost of their bytes.
    ///
    /// A loaded shard the last session never announced nor synced (this laptop's first
    /// events at a site since, or a shard it gained since), of at most [`FRESH_SHARD_PUSH`]
    /// events, goes with all its changes, as if
    /// the peer held none of it: a laptop cut off before it wrote at its site hands over its
    /// first events in the same flight, not after a round of catalogs.
    pub fn resume_push(&mut self, log: &mut Log) -> Vec<Message> {
        let mut out = Vec::new();
        if let Some(known) = &self.known {
            let new: Vec<ShardId> = log
                .catalog()
                .into_keys()
                .filter(|s| {
                    !known.contains(s) && !self.peers.contains_key(s) && !self.refused.contains(s)
                })
                .collect();
            for shard in new {
                let Some(doc) = log.shard_mut(&shard) else {
                    continue;
                };
                if doc.len() > FRESH_SHARD_PUSH {
                    continue;
                }
                let mut peer = sync::State::new();
                peer.their_have = Some(vec![sync::Have {
                    last_sync: Vec::new(),
                    bloom: sync::BloomFilter::default(),
                }]);
                peer.their_need = Some(Vec::new());
                if let Some(sync) = doc.generate(&mut peer) {
                    out.push(Message::Shard { shard, sync });
                }
                self.peers.insert(shard, peer);
            }
        }
        for (shard, peer) in &mut self.peers {
            // Only a state as resumed: the peer has not spoken in this session yet.
            if self.refused.contains(shard)
                || peer.shared_heads.is_empty()
                || peer.their_heads.is_some()
            {
                continue;
            }
            let Some(doc) = log.shard_mut(shard) else {
                continue;
            };
            let mut heads = doc.heads();
            heads.sort_unstable();
            let mut shared = peer.shared_heads.clone();
            shared.sort_unstable();
            if heads == shared || !shared.iter().all(|h| doc.has_change(h)) {
                continue;
            }
            // As if the peer had said it holds the shared heads and nothing after them.
            peer.their_have = Some(vec![sync::Have {
                last_sync: shared,
                bloom: sync::BloomFilter::default(),
            }]);
            peer.their_need = Some(Vec::new());
            if let Some(sync) = doc.generate(peer) {
                out.push(Message::Shard {
                    shard: *shard,
                    sync,
                });
            }
        }
        out
    }

    /// Shards refused in this session.
    pub fn refused(&self) -> &BTreeSet<ShardId> {
        &self.refused
    }

    /// Take a message from the peer.
    pub fn handle<T: Send>(
        &mut self,
        log: &mut Log,
        message: Message,
        check: EnvelopeCheck<'_, T>,
    ) -> Outcome<T> {
        self.handle_within(log, message, check, None)
    }

    /// [`Session::handle`], first refusing a message outside `scope` (the deployment's).
    pub fn handle_within<T: Send>(
        &mut self,
        log: &mut Log,
        message: Message,
        check: EnvelopeCheck<'_, T>,
        scope: Option<&Scope>,
    ) -> Outcome<T> {
        let mut out = Outcome::default();
        if let Some(why) = scope.and_then(|s| s.refuse(&message)) {
            out.out_of_scope = Some(why);
            return out;
        }
        // A shard new here, when this node already holds as many as the deployment can have:
        // one message per made-up day would otherwise make a document each.
        if let (Some(scope), Message::Shard { shard, .. } | Message::Whole { shard, .. }) =
            (scope, &message)
            && !log.shards.contains_key(shard)
            && !log.unloaded.contains_key(shard)
            && log.shards.len() + log.unloaded.len() >= scope.max_shards()
        {
            out.out_of_scope = Some(format!(
                "a new shard when this node holds as many as the deployment can have ({})",
                scope.max_shards()
            ));
            return out;
        }
        match message {
            Message::Catalog(theirs) => {
                let ours = log.catalog();
                let theirs: BTreeMap<ShardId, HeadsDigest> = theirs.into_iter().collect();
                let differing: BTreeSet<ShardId> = ours
                    .keys()
                    .chain(theirs.keys())
                    .filter(|s| ours.get(s) != theirs.get(s))
                    .copied()
                    .collect();
                out.differing = Some(differing.len());
                // A shard that differs exactly as it did at the peer's previous catalog made
                // no progress in between: a message was lost (a dropped frame, a transport
                // that loses messages). Automerge would never resend changes it believes it
                // sent, so forget what was sent and in flight, keeping the heads both sides
                // are known to share.
                // A peer of protocol 1 sends a catalog per period: the same difference at the
                // next catalog is stuck.
                self.catalogs += 1;
                let mut stuck = BTreeSet::new();
                for s in &differing {
                    let pair = (ours.get(s).copied(), theirs.get(s).copied());
                    if self.stuck(*s, pair, self.catalogs, 1) {
                        stuck.insert(*s);
                    }
                }
                for shard in differing {
                    // A shard only this side holds is the peer's to open: it says "I have
                    // nothing" once and gets the whole document in one message. Were both
                    // sides to speak first, the peer would say it twice, and Automerge reads
                    // each as a peer that lost its data and sends the whole document again.
                    if self.refused.contains(&shard)
                        || (ours.contains_key(&shard) && !theirs.contains_key(&shard))
                    {
                        continue;
                    }
                    if let Some(m) = self.sync_differing(log, shard, stuck.contains(&shard)) {
                        out.replies.push(m);
                    }
                }
            }
            Message::Reconcile(theirs) => {
                let ours = log.catalog();
                let (reply, found) = rbsr::answer(&ours, &theirs);
                if !theirs.ranges.is_empty() && reply.ranges.is_empty() {
                    out.differing = Some(found.differ.len());
                }
                for (shard, a, b) in found.differ {
                    let stuck = self.stuck(shard, (a, b), self.round, 2);
                    match (a, b) {
                        (Some(_), Some(_)) => {
                            if let Some(m) = self.sync_differing(log, shard, stuck) {
                                out.replies.push(m);
                            }
                        }
                        // Theirs only: the reply's `want` asks for it.
                        (None, _) => {}
                        (Some(d), None) => {
                            if self.whole_due(shard, d) {
                                out.send_whole.push(shard);
                            }
                        }
                    }
                }
                for shard in found.wanted {
                    if let Some(d) = ours.get(&shard)
                        && self.whole_due(shard, *d)
                        && !out.send_whole.contains(&shard)
                    {
                        out.send_whole.push(shard);
                    }
                }
                if !reply.is_empty() {
                    out.replies.push(Message::Reconcile(reply));
                }
            }
            Message::Whole { shard, doc } => {
                if self.refused.contains(&shard) {
                    return out;
                }
                let Some(d) = log.shard_or_new(shard) else {
                    return out;
                };
                match d.merge_bytes(&doc, check) {
                    Ok(added) => {
                        if !added.is_empty() {
                            log.dirty.insert(shard);
                        }
                        out.added.extend(added.into_iter().map(|v| (shard, v)));
                        // The peer holds it: not a fresh shard to push back to it.
                        self.peers.entry(shard).or_default();
                    }
                    Err(e) => {
                        self.refused.insert(shard);
                        out.refused.push((shard, e));
                    }
                }
            }
            Message::Shard { shard, sync } => {
                if self.refused.contains(&shard) {
                    return out;
                }
                let peer = self.peers.entry(shard).or_default();
                let Some(doc) = log.shard_or_new(shard) else {
                    return out;
                };
                match doc.receive(peer, &sync, check) {
                    Ok(added) => {
                        if !added.is_empty() {
                            log.dirty.insert(shard);
                        }
                        out.added.extend(added.into_iter().map(|id| (shard, id)));
                        if let Some(d) = log.shard_or_new(shard) {
                            resend_needed(d, peer);
                        }
                        if let Some(sync) = log.shard_or_new(shard).and_then(|d| d.generate(peer)) {
                            out.replies.push(Message::Shard { shard, sync });
                        }
                    }
                    Err(e) => {
                        self.refused.insert(shard);
                        out.refused.push((shard, e));
                    }
                }
            }
        }
        out
    }
}
