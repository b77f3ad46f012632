//! Several shards' appends and meta values in one transaction (a child of `store`): a USB
//! bundle's import lands whole or not at all (issue 25, requirement 3) — killed at any point,
//! the store holds either none of the bundle's shards, events and marks, or all of them.

use super::{Store, StoreError, pack};
use kazashi_domain::Event;
use kazashi_sync::ShardId;
use rusqlite::params;

/// One shard's part of [`Store::append_all`]: as [`Store::append`] takes it.
pub struct ShardAppend<'a> {
    pub shard: ShardId,
    /// The document's incremental save (empty when nothing changed).
    pub chunk: Vec<u8>,
    /// The document's new heads digest.
    pub heads: [u8; 32],
    /// The events the chunk brings, for the cache.
    pub events: Vec<&'a Event>,
}

impl Store {
    /// Durably append every shard's incremental save with its events (to the cache) and new
    /// heads digest, and set `metas`, in one transaction, fully synced.
    pub fn append_all(
        &mut self,
        shards: &[ShardAppend<'_>],
        metas: &[(&str, &[u8])],
    ) -> Result<(), StoreError> {
        let mut packed = Vec::with_capacity(shards.len());
        for s in shards {
            let contents = s
                .events
                .iter()
                .map(|e| e.encode())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|x| StoreError::Damaged(format!("an event could not be encoded: {x}")))?;
            packed.push(pack(contents.into_iter(), 1)?);
        }
        let tx = self.conn.transaction()?;
        for (s, packed) in shards.iter().zip(packed) {
            let name = s.shard.to_string();
            if !s.chunk.is_empty() {
                tx.prepare_cached("INSERT INTO shard_chunk (shard, bytes) VALUES (?1, ?2)")?
                    .execute(params![name, s.chunk])?;
            }
            let count = i64::try_from(s.events.len()).unwrap_or(i64::MAX);
            tx.prepare_cached(
                "INSERT INTO shard (shard, heads, chunks, events) VALUES (?1, ?2, 1, ?3)
                 ON CONFLICT (shard) DO UPDATE SET heads = excluded.heads, chunks = chunks + 1,
                     events = events + excluded.events",
            )?
            .execute(params![name, &s.heads[..], count])?;
            if count > 0 {
                tx.prepare_cached(
                    "INSERT INTO event_cache (shard, count, packed) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![name, count, packed])?;
            }
        }
        for (k, v) in metas {
            tx.execute(
                "INSERT INTO meta (k, v) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                params![k, v],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}
