//! Shards sent whole (a child of `node`): when reconciliation finds that a peer holds none of
//! a shard, this laptop sends the shard's stored document — its compacted save and the
//! incremental saves after it, as the store keeps them — in one [`Message::Whole`], instead of
//! Automerge's sync of every change. Nothing is loaded or re-encoded to send it. The receiver
//! merges it under the same vetting as any sync message (`ShardDoc::merge_bytes` under
//! `accept` and `own_shard`: every envelope's signature, membership and shard checked).
//!
//! A shard whose stored bytes exceed [`MAX_WHOLE`] (far beyond a site-day's few MiB) is
//! opened with Automerge's sync instead, which sends it in the peer's own pace.

use super::{Node, NodeError, Peer};
use crate::clock::Clock;
use kazashi_sync::{Message, ShardId};

/// The largest stored shard sent whole (16 MiB, half the link's frame limit).
pub const MAX_WHOLE: usize = 16 << 20;

impl<C: Clock> Node<C> {
    /// The messages that send `shards` to the peer: each whole, or opened with Automerge's
    /// sync when too large.
    pub(super) fn whole_messages(
        &mut self,
        peer: &mut Peer,
        shards: &[ShardId],
    ) -> Result<Vec<Vec<u8>>, NodeError> {
        let mut out = Vec::with_capacity(shards.len());
        for shard in shards {
            let doc = self.store.shard_bytes(shard)?;
            if doc.is_empty() {
                continue;
            }
            if doc.len() <= MAX_WHOLE {
                out.push(Message::Whole { shard: *shard, doc }.encode());
                continue;
            }
            self.ensure_loaded(shard)?;
            if let Some(m) = peer.session.open_shard(&mut self.log, *shard) {
                out.push(m.encode());
            }
        }
        Ok(out)
    }
}
