//! The sync protocol, as a state machine with no I/O (the transports carry its bytes).
//!
//! A [`Log`] holds the shard documents. Two peers each open a [`Session`] and send their
//! [`Catalog`]: for every shard, a digest of its Automerge heads. Only the shards whose digests
//! differ are synced, each with Automerge's own sync protocol; a shard one side lacks starts
//! empty there. Every message names its shard, so shards interleave freely.
//!
//! A shard whose message is refused (a malicious or corrupt change) is dropped from the
//! session and reported; the rest carry on.

use crate::shard::{EnvelopeCheck, ShardDoc, ShardError, ShardId};
use automerge::sync;
use kazashi_domain::{DeviceId, EventId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// The shard documents of one node.
#[derive(Debug)]
pub struct Log {
    actor: DeviceId,
    shards: BTreeMap<ShardId, ShardDoc>,
    /// Shards changed since the node last took them (to save).
    dirty: BTreeSet<ShardId>,
}

/// Digest of a shard's heads.
pub type HeadsDigest = [u8; 32];

/// Every shard a node holds, with the digest of its heads.
pub type Catalog = BTreeMap<ShardId, HeadsDigest>;

impl Log {
    pub fn new(actor: DeviceId) -> Self {
        Self {
            actor,
            shards: BTreeMap::new(),
            dirty: BTreeSet::new(),
        }
    }

    pub fn actor(&self) -> DeviceId {
        self.actor
    }

    /// Add a loaded shard.
    pub fn put_shard(&mut self, doc: ShardDoc) {
        self.shards.insert(doc.id(), doc);
    }

    pub fn shard(&self, id: &ShardId) -> Option<&ShardDoc> {
        self.shards.get(id)
    }

    pub fn shard_mut(&mut self, id: &ShardId) -> Option<&mut ShardDoc> {
        self.shards.get_mut(id)
    }

    fn shard_or_new(&mut self, id: ShardId) -> &mut ShardDoc {
        let actor = self.actor;
        self.shards
            .entry(id)
            .or_insert_with(|| ShardDoc::new(id, &actor))
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
        let added = self.shard_or_new(shard).insert(id, envelope)?;
        if added {
            self.dirty.insert(shard);
        }
        Ok(added)
    }

    /// The shards changed since the last call.
    pub fn take_dirty(&mut self) -> BTreeSet<ShardId> {
        std::mem::take(&mut self.dirty)
    }

    pub fn catalog(&mut self) -> Catalog {
        self.shards
            .iter_mut()
            .map(|(id, doc)| (*id, digest(&doc.heads())))
            .collect()
    }

    /// Number of events in all shards.
    pub fn len(&self) -> usize {
        self.shards.values().map(ShardDoc::len).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn digest(heads: &[automerge::ChangeHash]) -> HeadsDigest {
    let mut sorted: Vec<&automerge::ChangeHash> = heads.iter().collect();
    sorted.sort();
    let mut h = Sha256::new();
    h.update(b"kazashi-heads-v1");
    for x in sorted {
        h.update(x.0);
    }
    h.finalize().into()
}

/// A protocol message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// The sender's shards and their heads.
    Catalog(Vec<(ShardId, HeadsDigest)>),
    /// An Automerge sync message for one shard.
    Shard { shard: ShardId, sync: Vec<u8> },
}

impl Message {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }
    pub fn decode(bytes: &[u8]) -> Result<Self, SessionError> {
        postcard::from_bytes(bytes).map_err(|e| SessionError::Malformed(e.to_string()))
    }
}

/// Why a message could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("malformed protocol message: {0}")]
    Malformed(String),
}

/// What handling one message produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Messages to send to the peer.
    pub replies: Vec<Message>,
    /// Events new to this node (already in the log; the node applies them to state).
    pub added: Vec<(ShardId, EventId)>,
    /// Shards whose message was refused, with why (the node quarantines the message).
    pub refused: Vec<(ShardId, ShardError)>,
}

/// One sync session with one peer.
#[derive(Debug, Default)]
pub struct Session {
    peers: BTreeMap<ShardId, sync::State>,
    refused: BTreeSet<ShardId>,
}

impl Session {
    pub fn new() -> Self {
        Self::default()
    }

    /// The opening message.
    pub fn start(&mut self, log: &mut Log) -> Message {
        Message::Catalog(log.catalog().into_iter().collect())
    }

    /// Shards refused in this session.
    pub fn refused(&self) -> &BTreeSet<ShardId> {
        &self.refused
    }

    /// Take a message from the peer.
    pub fn handle(&mut self, log: &mut Log, message: Message, check: EnvelopeCheck<'_>) -> Outcome {
        let mut out = Outcome::default();
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
                for shard in differing {
                    if self.refused.contains(&shard) {
                        continue;
                    }
                    let peer = self.peers.entry(shard).or_default();
                    if let Some(sync) = log.shard_or_new(shard).generate(peer) {
                        out.replies.push(Message::Shard { shard, sync });
                    }
                }
            }
            Message::Shard { shard, sync } => {
                if self.refused.contains(&shard) {
                    return out;
                }
                let peer = self.peers.entry(shard).or_default();
                let doc = log.shard_or_new(shard);
                match doc.receive(peer, &sync, check) {
                    Ok(added) => {
                        if !added.is_empty() {
                            log.dirty.insert(shard);
                        }
                        out.added.extend(added.into_iter().map(|id| (shard, id)));
                        let doc = log.shard_or_new(shard);
                        if let Some(sync) = doc.generate(peer) {
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
