//! Shards: the Automerge documents the events live in.
//!
//! The log is split by site and JST day ([`ShardId`]) so that every document stays small:
//! Automerge's cost to sync one change grows with the document (195 ms at a million records,
//! measured), while a shelter writes a few thousand events a day. Each document is a map at
//! its root from event id (hex) to the signed envelope bytes, and nothing else.
//!
//! Events are immutable. A peer's sync message is first applied to a fork of the document;
//! the fork's patches are checked — no deletion, no overwrite of an event already present, no
//! other objects, every new value a valid envelope filed under its own id — and only then does
//! the document take it. A refused message changes nothing.
//!
//! Every new change is also judged on its own operations, so that nodes that saw different
//! parts of a peer's history judge it alike: only puts of byte strings at the root, superseding
//! nothing (a write-then-delete in one message is refused as a delete), never a key its own
//! history holds. Envelopes are canonical ([`crate::envelope`]), so two valid copies of one
//! event can differ only in the signature, which only the author's key can make; such copies
//! put concurrently stay side by side, each verified, and the document's envelope for the
//! event is the least in byte order — the same on every node, whatever the delivery order.
//! Before Automerge reads a peer's chunks, [`crate::inflate`] checks what they would inflate
//! to ([`MAX_INFLATED`]).

use crate::envelope::Rejection;
use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{
    ActorId, AutoCommit, ChangeHash, ObjId, PatchAction, ROOT, ReadDoc, ScalarValue, Value,
};
use kazashi_domain::{CivilDate, DeviceId, Event, EventId, SiteId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// The digest of a shard's heads, as catalogs carry it.
pub type HeadsDigest = [u8; 32];

/// Digest of a set of Automerge heads (order does not matter).
pub fn digest(heads: &[automerge::ChangeHash]) -> HeadsDigest {
    let mut sorted: Vec<&automerge::ChangeHash> = heads.iter().collect();
    sorted.sort();
    let mut h = Sha256::new();
    h.update(b"kazashi-heads-v1");
    for x in sorted {
        h.update(x.0);
    }
    h.finalize().into()
}

/// The shard an event belongs to: its site and the JST day of its HLC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShardId {
    pub site: SiteId,
    pub day: CivilDate,
}

impl ShardId {
    pub fn of(event: &Event) -> Option<ShardId> {
        Some(ShardId {
            site: event.site(),
            day: CivilDate::jst_of(event.at().wall_ms)?,
        })
    }

    /// "SITE/2026-09-01".
    pub fn parse(s: &str) -> Option<ShardId> {
        let (site, day) = s.rsplit_once('/')?;
        Some(ShardId {
            site: SiteId::new(site).ok()?,
            day: CivilDate::parse(day).ok()?,
        })
    }
}

/// A shard id as postcard lays it out: the site code as a string, the day as (year, month,
/// day).
pub(crate) fn put_shard(out: &mut Vec<u8>, shard: &ShardId) {
    crate::wire::put_str(out, shard.site.as_str());
    crate::wire::put_signed(out, i64::from(shard.day.year()));
    // Months and days are below 128: one byte each, as postcard writes a u8.
    out.push(u8::try_from(shard.day.month()).unwrap_or(0));
    out.push(u8::try_from(shard.day.day()).unwrap_or(0));
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.site, self.day)
    }
}

/// Verifies an envelope filed under an id (signature, membership; see
/// [`crate::envelope::open_as`]) and returns what it made of it — the node returns the opened,
/// checked [`Event`], so that nothing downstream opens the envelope again.
pub type EnvelopeCheck<'a, T = ()> = &'a (dyn Fn(&EventId, &[u8]) -> Result<T, Rejection> + Sync);

/// A new envelope a document took, with what its [`EnvelopeCheck`] returned for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vetted<T> {
    /// The key it is filed under (the check made sure it is the event's own id).
    pub id: EventId,
    pub envelope: Vec<u8>,
    /// The check's result: for the node, the opened and checked event.
    pub opened: T,
}

/// What went wrong with a shard document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("shard {0} is stored but not loaded")]
    NotLoaded(ShardId),
    #[error("automerge: {0}")]
    Automerge(String),
    #[error("malformed sync message: {0}")]
    BadMessage(String),
    #[error("refused a change that deletes event {0}")]
    Delete(String),
    #[error("refused a change that overwrites event {0}")]
    Overwrite(String),
    #[error("refused a change that writes something other than an event envelope at {0}")]
    NotAnEnvelope(String),
    #[error("refused envelope {key}: {reason}")]
    BadEnvelope { key: String, reason: Rejection },
    #[error("refused a change that re-writes event {0}, which it already holds")]
    Rewrite(String),
    #[error("refused changes too large to take: {0}")]
    TooLarge(String),
}

/// The most the Automerge chunks of one sync message or one bundle shard may inflate to
/// (their DEFLATE columns and compressed changes), checked before Automerge reads them: a
/// shard's whole history is a few MiB (an envelope is about 300 bytes, a shelter writes a few
/// thousand a day).
pub const MAX_INFLATED: usize = 64 << 20;

fn am(e: automerge::AutomergeError) -> ShardError {
    ShardError::Automerge(e.to_string())
}

/// The refusal of bytes on which Automerge panicked (the panic contained; nothing taken).
fn contained() -> ShardError {
    ShardError::Automerge("failed on these bytes (a panic, contained); nothing was taken".into())
}

/// One shard's document.
#[derive(Debug)]
pub struct ShardDoc {
    id: ShardId,
    actor: ActorId,
    doc: AutoCommit,
    /// Heads at the last save (Automerge forgets its own on load and fork).
    saved: Vec<ChangeHash>,
    /// The digest of the current heads (`None` inside: no events), until the next change.
    digest: Option<Option<HeadsDigest>>,
}

fn key_of(id: &EventId) -> String {
    id.to_hex()
}

impl ShardDoc {
    /// An empty document; this device's changes carry `actor` (its device id).
    pub fn new(id: ShardId, actor: &DeviceId) -> Self {
        let actor = ActorId::from(&actor.0[..]);
        Self {
            id,
            doc: AutoCommit::new().with_actor(actor.clone()),
            actor,
            saved: Vec::new(),
            digest: None,
        }
    }

    /// Load from saved bytes (a full save, followed by any incremental saves, concatenated).
    /// The bytes come from this node's own store, whose contents were checked on the way in.
    pub fn load(id: ShardId, actor: &DeviceId, bytes: &[u8]) -> Result<Self, ShardError> {
        let actor = ActorId::from(&actor.0[..]);
        let mut doc = AutoCommit::load(bytes)
            .map_err(am)?
            .with_actor(actor.clone());
        let saved = doc.get_heads();
        Ok(Self {
            id,
            actor,
            doc,
            saved,
            digest: None,
        })
    }

    pub fn id(&self) -> ShardId {
        self.id
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.doc.length(ROOT)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The digest of the heads, or `None` for a document with no events yet (one made to
    /// receive a shard that has not come). Kept until the document changes, so a catalog costs
    /// no walk over the documents.
    pub fn heads_digest(&mut self) -> Option<HeadsDigest> {
        if let Some(d) = self.digest {
            return d;
        }
        let heads = self.doc.get_heads();
        let d = (!heads.is_empty()).then(|| digest(&heads));
        self.digest = Some(d);
        d
    }

    pub fn contains(&self, id: &EventId) -> bool {
        matches!(self.doc.get(ROOT, key_of(id)), Ok(Some(_)))
    }

    /// Add an envelope this node has verified. Returns false if the event was already there.
    pub fn insert(&mut self, id: &EventId, envelope: &[u8]) -> Result<bool, ShardError> {
        if self.contains(id) {
            return Ok(false);
        }
        self.doc
            .put(ROOT, key_of(id), ScalarValue::Bytes(envelope.to_vec()))
            .map_err(am)?;
        // No wall time on the change: the event carries its own time, and without one the
        // document's bytes depend only on its events (deterministic simulations) and say
        // nothing of when a laptop stored them.
        self.doc
            .commit_with(automerge::transaction::CommitOptions::default().with_time(0));
        self.digest = None;
        Ok(true)
    }

    /// The changes since the last save (to append to the store).
    pub fn save_incremental(&mut self) -> Vec<u8> {
        let bytes = self.doc.save_after(&self.saved);
        self.saved = self.doc.get_heads();
        bytes
    }

    /// The whole document, compacted.
    pub fn save(&mut self) -> Vec<u8> {
        let bytes = self.doc.save();
        self.saved = self.doc.get_heads();
        bytes
    }

    /// The whole document, compacted, to send to a peer that holds none of it (the marks of
    /// what this node has stored are left as they are).
    pub fn whole(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// The envelope filed under `id`.
    pub fn envelope(&self, id: &EventId) -> Option<Vec<u8>> {
        envelope_at(&self.doc, &key_of(id))
    }

    /// Every (id, envelope), in id order.
    pub fn envelopes(&self) -> Vec<(EventId, Vec<u8>)> {
        self.doc
            .keys(ROOT)
            .filter_map(|k| {
                let id = EventId::from_hex(&k).ok()?;
                Some((id, envelope_at(&self.doc, &k)?))
            })
            .collect()
    }

    /// The next sync message for a peer, encoded; `None` when there is nothing to say.
    ///
    /// Should Automerge panic while it builds the message (a bug of its own, which a peer's
    /// earlier message may have set up), the panic stays here: nothing is sent, and the peer's
    /// state starts over, so the next round begins afresh rather than bringing the node down.
    pub fn generate(&mut self, peer: &mut sync::State) -> Option<Vec<u8>> {
        let doc = &mut self.doc;
        let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            doc.sync()
                .generate_sync_message(&mut *peer)
                .map(sync::Message::encode)
        }));
        made.unwrap_or_else(|_| {
            *peer = sync::State::new();
            None
        })
    }

    /// Take a peer's sync message. `check` verifies an envelope filed under an id (signature,
    /// membership). Returns the events that are new here, each with what `check` returned for
    /// it. On any refusal the document and the peer state are left as they were.
    pub fn receive<T: Send>(
        &mut self,
        peer: &mut sync::State,
        message: &[u8],
        check: EnvelopeCheck<'_, T>,
    ) -> Result<Vec<Vetted<T>>, ShardError> {
        let msg =
            sync::Message::decode(message).map_err(|e| ShardError::BadMessage(e.to_string()))?;
        for have in &msg.have {
            sane_bloom(&have.bloom.to_bytes()).map_err(ShardError::BadMessage)?;
        }
        // A hash asked for twice: Automerge would build that change twice for its answer and
        // panic (its change collector's `MissingOps`). An honest peer asks for each once.
        let mut asked = std::collections::BTreeSet::new();
        if let Some(twice) = msg.need.iter().find(|h| !asked.insert(**h)) {
            return Err(ShardError::BadMessage(format!(
                "change {twice} is asked for twice"
            )));
        }
        // Before Automerge parses a change: what would it inflate to?
        let mut inflated = 0usize;
        for chunk in msg.changes.iter() {
            inflated += crate::inflate::check_chunks(chunk, MAX_INFLATED.saturating_sub(inflated))
                .map_err(|e| ShardError::TooLarge(e.to_string()))?;
        }
        // Should Automerge panic on what the checks above let through (a bug of its own), the
        // panic stays here: new changes reach the document only through a fork that passed
        // `vet` (a message without changes moves only the peer's state), so it is as it was;
        // the peer's state starts over.
        let taken = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.take_message(&mut *peer, msg, check)
        }));
        taken.unwrap_or_else(|_| {
            *peer = sync::State::new();
            Err(contained())
        })
    }

    /// [`Self::receive`] once the message passed the checks that need no document.
    fn take_message<T: Send>(
        &mut self,
        peer: &mut sync::State,
        mut msg: sync::Message,
        check: EnvelopeCheck<'_, T>,
    ) -> Result<Vec<Vetted<T>>, ShardError> {
        msg.changes = self.without_orphans(&msg.changes);
        if msg.changes.is_empty() {
            // Heads, needs and a summary only: nothing enters the document, so there is
            // nothing to vet and no need to fork it.
            self.doc
                .sync()
                .receive_sync_message(peer, msg)
                .map_err(am)?;
            return Ok(Vec::new());
        }
        let before = self.doc.get_heads();
        let mut trial = self.doc.fork().with_actor(self.actor.clone());
        let mut trial_peer = peer.clone();
        trial
            .sync()
            .receive_sync_message(&mut trial_peer, msg)
            .map_err(am)?;
        if trial.get_heads() == before {
            // Nothing the document can take (changes it holds already, or changes whose
            // dependencies are missing, which Automerge would queue without bound): the fork,
            // and its queue, are dropped.
            *peer = trial_peer;
            return Ok(Vec::new());
        }
        let added = self.vet(&mut trial, &before, check)?;
        self.doc = trial;
        self.digest = None;
        *peer = trial_peer;
        Ok(added)
    }

    /// The chunks of a sync message less the changes whose dependencies are neither in the
    /// document nor among the message's other changes: Automerge would queue them, in the
    /// document, for as long as it lives. A dropped change is asked for again by the sync
    /// protocol once its dependencies are here. Chunks that are not single changes (a whole
    /// document) are kept as they are.
    fn without_orphans(&mut self, chunks: &sync::ChunkList) -> sync::ChunkList {
        let parsed: Vec<(Vec<u8>, Option<automerge::Change>)> = chunks
            .iter()
            .map(|c| (c.to_vec(), automerge::Change::from_bytes(c.to_vec()).ok()))
            .collect();
        let mut known: std::collections::BTreeSet<ChangeHash> = std::collections::BTreeSet::new();
        let mut keep = vec![false; parsed.len()];
        loop {
            let mut grew = false;
            for (i, (_, change)) in parsed.iter().enumerate() {
                if keep.get(i).copied().unwrap_or(true) {
                    continue;
                }
                let ready = match change {
                    None => true,
                    Some(c) => c.deps().iter().all(|d| {
                        known.contains(d) || self.doc.get_change_meta_by_hash(d).is_some()
                    }),
                };
                if ready {
                    if let Some(k) = keep.get_mut(i) {
                        *k = true;
                    }
                    if let Some(c) = change {
                        known.insert(c.hash());
                    }
                    grew = true;
                }
            }
            if !grew {
                break;
            }
        }
        sync::ChunkList::from(
            parsed
                .into_iter()
                .zip(keep)
                .filter(|(_, k)| *k)
                .map(|((bytes, _), _)| bytes)
                .collect::<Vec<_>>(),
        )
    }

    /// Merge Automerge bytes from a bundle (a full save or changes), under the same checks as a
    /// sync message. On any refusal the document is left as it was.
    pub fn merge_bytes<T: Send>(
        &mut self,
        bytes: &[u8],
        check: EnvelopeCheck<'_, T>,
    ) -> Result<Vec<Vetted<T>>, ShardError> {
        crate::inflate::check_chunks(bytes, MAX_INFLATED)
            .map_err(|e| ShardError::TooLarge(e.to_string()))?;
        let before = self.doc.get_heads();
        let tried = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut trial = self.doc.fork().with_actor(self.actor.clone());
            trial
                .load_incremental(bytes)
                .map_err(|e| ShardError::BadMessage(e.to_string()))?;
            let added = self.vet(&mut trial, &before, check)?;
            Ok((trial, added))
        }));
        let (trial, added) = tried.unwrap_or_else(|_| Err(contained()))?;
        self.doc = trial;
        self.digest = None;
        Ok(added)
    }

    /// Whether the document holds the change `hash`.
    pub fn has_change(&mut self, hash: &ChangeHash) -> bool {
        self.doc.get_change_by_hash(hash).is_some()
    }

    /// The changes after `heads` (all of them for no heads), for a bundle.
    pub fn save_after(&mut self, heads: &[ChangeHash]) -> Vec<u8> {
        self.doc.save_after(heads)
    }

    /// Check what `trial` changed since `before`: only new, valid envelopes filed under their
    /// own ids. Returns the new envelopes with what `check` made of each.
    ///
    /// Each new change is judged by itself (so that every node that sees it judges it alike,
    /// whatever it held before): it may only put byte strings at keys of the root that its own
    /// history does not hold, superseding nothing — no deletion (a write-then-delete included),
    /// no overwrite, no re-write. Concurrent puts of one key stay side by side; each must be a
    /// valid envelope of that event, and the document's envelope for it is the least of them
    /// in byte order ([`envelope_at`]).
    fn vet<T: Send>(
        &self,
        trial: &mut AutoCommit,
        before: &[ChangeHash],
        check: EnvelopeCheck<'_, T>,
    ) -> Result<Vec<Vetted<T>>, ShardError> {
        let after = trial.get_heads();
        if before == after.as_slice() {
            return Ok(Vec::new());
        }
        self.vet_changes(trial, before)?;
        let mut candidates = Vec::new();
        let mut keys = std::collections::BTreeSet::new();
        for patch in trial.diff(before, &after) {
            if patch.obj != ObjId::Root {
                return Err(ShardError::NotAnEnvelope(format!("{:?}", patch.obj)));
            }
            match patch.action {
                // A put, or a concurrent put of the same key (the same event reached two
                // nodes by different paths).
                PatchAction::PutMap { key, .. }
                | PatchAction::Conflict {
                    prop: automerge::Prop::Map(key),
                } => {
                    if keys.insert(key.clone()) {
                        self.check_key(trial, &key, &mut candidates)?;
                    }
                }
                PatchAction::DeleteMap { key } => return Err(ShardError::Delete(key)),
                other => return Err(ShardError::NotAnEnvelope(format!("{other:?}"))),
            }
        }
        let vetted = verify_all(
            candidates
                .iter()
                .map(|(id, env, _)| (*id, env.clone()))
                .collect(),
            check,
        )?;
        // One per new event: the least envelope (the one `envelope_at` will return).
        let mut out: Vec<Vetted<T>> = Vec::new();
        for (v, (_, _, new)) in vetted.into_iter().zip(&candidates) {
            if !*new {
                continue;
            }
            match out.last_mut() {
                Some(last) if last.id == v.id => {
                    if v.envelope < last.envelope {
                        *last = v;
                    }
                }
                _ => out.push(v),
            }
        }
        Ok(out)
    }

    /// The operations of the changes `trial` has beyond `before`, each judged on its own.
    fn vet_changes(&self, trial: &mut AutoCommit, before: &[ChangeHash]) -> Result<(), ShardError> {
        use automerge::legacy::{Key, ObjectId};
        let changes = trial.get_changes(before);
        let mut puts: Vec<(String, Vec<ChangeHash>)> = Vec::new();
        for change in &changes {
            let expanded = change.decode();
            let mut keys = std::collections::BTreeSet::new();
            for op in &expanded.operations {
                let key = match (&op.obj, &op.key) {
                    (ObjectId::Root, Key::Map(k)) if !op.insert => k.to_string(),
                    _ => return Err(ShardError::NotAnEnvelope(format!("{:?}", op.obj))),
                };
                match &op.action {
                    automerge::legacy::OpType::Put(ScalarValue::Bytes(_)) => {}
                    automerge::legacy::OpType::Delete => return Err(ShardError::Delete(key)),
                    _ => return Err(ShardError::NotAnEnvelope(key)),
                }
                if !op.pred.is_empty() {
                    return Err(ShardError::Overwrite(key));
                }
                if !keys.insert(key.clone()) {
                    return Err(ShardError::Rewrite(key));
                }
                puts.push((key, change.deps().to_vec()));
            }
        }
        // A key put twice among the new changes, or put again after this document held it:
        // does the second change's own history hold it already? (Honest nodes put a key only
        // when their document lacks it; two who lacked it at once put it side by side.)
        let mut seen: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
        for (key, _) in &puts {
            *seen.entry(key.as_str()).or_default() += 1;
        }
        for (key, deps) in &puts {
            let again = seen.get(key.as_str()).is_some_and(|n| *n > 1)
                || matches!(self.doc.get(ROOT, key.as_str()), Ok(Some(_)));
            if again
                && !trial
                    .get_all_at(ROOT, key.as_str(), deps)
                    .map_err(am)?
                    .is_empty()
            {
                return Err(ShardError::Rewrite(key.clone()));
            }
        }
        Ok(())
    }
}

/// Run `check` on every new envelope, on every core when there are many (a full sync brings
/// thousands; a signature check is the costliest step). Returns them in order, each with its
/// result; the first refusal in order wins, so that every node reports the same reason.
fn verify_all<T: Send>(
    candidates: Vec<(EventId, Vec<u8>)>,
    check: EnvelopeCheck<'_, T>,
) -> Result<Vec<Vetted<T>>, ShardError> {
    let one = |(id, env): &(EventId, Vec<u8>)| {
        check(id, env).map_err(|reason| ShardError::BadEnvelope {
            key: id.to_hex(),
            reason,
        })
    };
    let part_of = |part: &[(EventId, Vec<u8>)]| part.iter().map(one).collect::<Result<Vec<T>, _>>();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let opened: Vec<T> = if threads < 2 || candidates.len() < 256 {
        part_of(&candidates)?
    } else {
        let chunk = candidates.len().div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = candidates
                .chunks(chunk)
                .map(|part| {
                    (
                        part,
                        std::thread::Builder::new().spawn_scoped(s, move || part_of(part)),
                    )
                })
                .collect();
            let mut all = Vec::with_capacity(candidates.len());
            for (part, h) in handles {
                let r = match h {
                    Ok(h) => h.join().unwrap_or_else(|_| part_of(part)),
                    Err(_) => part_of(part),
                };
                all.extend(r?);
            }
            Ok::<_, ShardError>(all)
        })?
    };
    Ok(candidates
        .into_iter()
        .zip(opened)
        .map(|((id, envelope), opened)| Vetted {
            id,
            envelope,
            opened,
        })
        .collect())
}

impl ShardDoc {
    /// Check the values at `key` in `trial`: every one a byte string, to be verified as an
    /// envelope of the event `key` names. Pushes each distinct value not verified here before,
    /// marked whether the event is new to this document.
    fn check_key(
        &self,
        trial: &AutoCommit,
        key: &str,
        candidates: &mut Vec<(EventId, Vec<u8>, bool)>,
    ) -> Result<(), ShardError> {
        let Ok(id) = EventId::from_hex(key) else {
            return Err(ShardError::NotAnEnvelope(key.to_owned()));
        };
        let values = trial.get_all(ROOT, key).map_err(am)?;
        if values.is_empty() {
            return Err(ShardError::Delete(key.to_owned()));
        }
        let old = values_at(&self.doc, key);
        let new = old.is_empty();
        let mut distinct: Vec<Vec<u8>> = Vec::new();
        for (v, _) in &values {
            let Value::Scalar(s) = v else {
                return Err(ShardError::NotAnEnvelope(key.to_owned()));
            };
            let ScalarValue::Bytes(b) = s.as_ref() else {
                return Err(ShardError::NotAnEnvelope(key.to_owned()));
            };
            if !distinct.contains(b) {
                distinct.push(b.clone());
            }
        }
        if old.iter().any(|o| !distinct.contains(o)) {
            return Err(ShardError::Overwrite(key.to_owned()));
        }
        distinct.sort();
        for b in distinct {
            if !old.contains(&b) {
                candidates.push((id, b, new));
            }
        }
        Ok(())
    }
}

/// Every distinct byte string at a key (concurrent writes of one event give several).
fn values_at(doc: &AutoCommit, key: &str) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for (v, _) in doc.get_all(ROOT, key).unwrap_or_default() {
        if let Value::Scalar(s) = v
            && let ScalarValue::Bytes(b) = s.as_ref()
            && !out.contains(b)
        {
            out.push(b.clone());
        }
    }
    out
}

/// The envelope at a key: the least in byte order of the values there (concurrent writes of
/// one event give several, each checked to be a valid envelope of it on the way in), so that
/// every node holding the same changes holds the same envelope.
fn envelope_at(doc: &AutoCommit, key: &str) -> Option<Vec<u8>> {
    let values = doc.get_all(ROOT, key).ok()?;
    let mut out: Option<Vec<u8>> = None;
    for (v, _) in values {
        let Value::Scalar(s) = v else { return None };
        let ScalarValue::Bytes(b) = s.as_ref() else {
            return None;
        };
        match &out {
            Some(o) if o <= b => {}
            _ => out = Some(b.clone()),
        }
    }
    out
}

/// A peer's Bloom filter (its summary of the changes it has), checked before Automerge uses it:
/// Automerge divides by the filter's size in bits and reserves one slot per probe, so a filter
/// that claims entries but holds no bits would panic the node, and one with billions of probes
/// would exhaust its memory (found by `tests/tests/fuzz_parsers.rs`). An empty filter (no
/// entries) is fine.
fn sane_bloom(bytes: &[u8]) -> Result<(), String> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut rest = bytes;
    let mut next = || -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..35).step_by(7) {
            let (&b, tail) = rest
                .split_first()
                .ok_or_else(|| "a truncated Bloom filter".to_string())?;
            rest = tail;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("a Bloom filter field too long".into())
    };
    let (entries, bits_per_entry, probes) = (next()?, next()?, next()?);
    if entries == 0 || !(1..=64).contains(&bits_per_entry) || !(1..=64).contains(&probes) {
        return Err(format!(
            "a Bloom filter with {entries} entries, {bits_per_entry} bits each and {probes} probes"
        ));
    }
    if rest.is_empty() {
        return Err("a Bloom filter with entries but no bits".into());
    }
    Ok(())
}

#[cfg(test)]
mod bloom_checks {
    use super::sane_bloom;

    #[test]
    fn a_filter_with_entries_but_no_bits_or_absurd_probes_is_refused() {
        assert!(sane_bloom(&[]).is_ok());
        assert!(sane_bloom(&[3, 10, 7, 0xff, 0xff, 0xff, 0xff]).is_ok());
        assert!(sane_bloom(&[3, 0, 7]).is_err(), "no bits per entry");
        assert!(sane_bloom(&[3, 10, 7]).is_err(), "no bits at all");
        assert!(
            sane_bloom(&[3, 10, 0xff, 0xff, 0xff, 0xff, 0x0f, 1]).is_err(),
            "4e9 probes"
        );
        assert!(sane_bloom(&[0x80]).is_err(), "truncated");
    }
}
