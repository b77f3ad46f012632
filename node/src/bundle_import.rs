//! [`Node::import_bundle`]: a USB bundle taken whole or not at all (a child of `node`).
//!
//! Every shard of the bundle is vetted in memory first (exactly as a peer's sync message is:
//! `ShardDoc::merge_bytes` under `accept` and `own_shard`); then the new saves of every shard
//! that took something, their events (to the cache) and the bundle's marks (seen, and what its
//! author held) are committed in **one** fsynced transaction ([`Store::append_all`]); only then
//! are the events folded into the state. Killed at any point (`tests/tests/crash_paths.rs`
//! kills it at every file call), the store holds either none of the bundle or all of it, with
//! its marks; a failed commit (a full disk) drops the merged shards from memory so that they
//! are read back from the store as they were. A shard whose changes fail the checks is
//! refused and quarantined, and the others are taken: the bundle is one unit, its refused
//! shards are part of what it did.
//!
//! Bundles of earlier formats (`KZBUNDLE3`, `KZBUNDLE2`) are refused unless asked for
//! ([`ReadOptions::legacy`], `kazashi bundle import --legacy`): see `kazashi_sync::bundle`.

use super::{
    Adopted, BundleImport, META_BUNDLE_SEEN, META_KNOWN_HEADS, ManifestRefusal, Node, NodeError,
    accept, opened, own_shard,
};
use crate::clock::Clock;
use crate::store::{ShardAppend, Store};
use kazashi_domain::{Event, EventId};
use kazashi_sync::bundle::ReadOptions;
use kazashi_sync::{BundleError, ShardId, digest};
use std::collections::BTreeMap;

impl<C: Clock> Node<C> {
    /// Take a bundle from a USB stick. A bad file is refused whole and kept in quarantine; a
    /// bundle imported before, or made here, is refused as redundant, and one of an earlier
    /// format as such ([`BundleError::OldFormat`]). Within a good one, a shard whose changes
    /// fail the checks is refused and quarantined, the others are taken — all in one
    /// transaction (module docs).
    pub fn import_bundle(&mut self, file: &[u8], source: &str) -> Result<BundleImport, NodeError> {
        self.import_bundle_with(file, source, ReadOptions::default())
    }

    /// [`Node::import_bundle`], reading earlier formats when `options` says so.
    pub fn import_bundle_with(
        &mut self,
        file: &[u8],
        source: &str,
        options: ReadOptions,
    ) -> Result<BundleImport, NodeError> {
        let body = match self.open_bundle(file, options) {
            Ok(b) => b,
            Err(e) => {
                if e.suspect() {
                    // Keep at most the first MiB of a refused file for the audit.
                    let kept = file.get(..file.len().min(1 << 20)).unwrap_or(file);
                    self.quarantine(source, e.code(), &e.to_string(), kept)?;
                }
                return Err(NodeError::Bundle(e));
            }
        };
        let seen_key = format!("{META_BUNDLE_SEEN}{}", hex::encode(body.id));
        if let Some(at) = self.store.get_meta(&seen_key)? {
            let imported_ms = at
                .get(..8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_le_bytes);
            return Err(NodeError::Bundle(BundleError::AlreadyImported {
                imported_ms,
            }));
        }
        // The author's manifest first, so that a revocation it carries applies to the events
        // below (they are held either way; the manifest decides which are folded). An older one, or one of the same version that loses, is not adopted (the
        // events are checked under this laptop's); another admin's, another deployment's or a
        // bad one refuses the whole bundle, and nothing changes. (An adopted manifest is
        // committed on its own: it is valid whatever becomes of the events.)
        let manifest_adopted = match body.manifest.as_deref() {
            None => None,
            Some(bytes) => match self.adopt_manifest(bytes) {
                Ok(Adopted::Newer { version, .. }) => Some(version),
                Ok(Adopted::Same) => None,
                Err(NodeError::ManifestRefused(ManifestRefusal::Rollback { .. })) => None,
                // The author holds a manifest of this version that loses to this laptop's
                // (`Membership::precedence`): this laptop keeps its own, as for an older one,
                // and checks the events under it; the losing manifest is kept in quarantine.
                Err(NodeError::ManifestRefused(r @ ManifestRefusal::Conflict(_))) => {
                    self.quarantine(source, "conflict-manifest", &r.to_string(), bytes)?;
                    None
                }
                Err(NodeError::ManifestRefused(r)) => {
                    let kept = file.get(..file.len().min(1 << 20)).unwrap_or(file);
                    self.quarantine(source, "refused-manifest", &r.to_string(), kept)?;
                    return Err(NodeError::BundleManifestRefused(r));
                }
                Err(e) => return Err(e),
            },
        };
        let mut report = BundleImport {
            manifest_adopted,
            author: body.author,
            created_ms: body.created_ms,
            shards: body.shards.len(),
            added: 0,
            added_by_site: BTreeMap::new(),
            refused_shards: 0,
            added_ids: Vec::new(),
            withheld: 0,
        };
        // 1. Every shard vetted and merged in memory; nothing is written yet but refusals.
        let mut taken: BTreeMap<ShardId, Vec<(Event, Vec<u8>)>> = BTreeMap::new();
        for (shard, bytes) in body.shards {
            if let Err(e) = self.ensure_loaded(&shard) {
                self.drop_merged(taken.keys());
                return Err(e);
            }
            let (members, deployment) = (&self.members, self.station.deployment());
            let check = |id: &EventId, env: &[u8]| accept(members, deployment, id, env);
            let Some(doc) = self.log.shard_or_new(shard) else {
                continue;
            };
            match doc.merge_bytes(&bytes, &|id: &EventId, env: &[u8]| {
                own_shard(Some(shard), check(id, env))
            }) {
                Ok(vetted) => {
                    self.log.mark_dirty(shard);
                    self.log.take_dirty();
                    taken
                        .entry(shard)
                        .or_default()
                        .extend(vetted.into_iter().map(opened));
                }
                Err(err) => {
                    if let Err(e) = self.quarantine(
                        source,
                        "refused-change",
                        &format!("shard {shard}: {err}"),
                        &bytes,
                    ) {
                        self.drop_merged(taken.keys());
                        return Err(e);
                    }
                    report.refused_shards += 1;
                }
            }
        }
        // 2. Every shard's save and events, the bundle's seen mark and what its author held:
        // one transaction.
        let now = self.station.clock().now_ms().to_le_bytes();
        let known_key = format!("{META_KNOWN_HEADS}{}", body.author.to_hex());
        let known = match self.known_heads(&body.author) {
            Ok((at, _)) if at <= body.created_ms => Some(
                postcard::to_allocvec(&(body.created_ms, &body.catalog))
                    .map_err(|e| NodeError::Damaged(e.to_string())),
            ),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        };
        let known = match known.transpose() {
            Ok(k) => k,
            Err(e) => {
                self.drop_merged(taken.keys());
                return Err(e);
            }
        };
        let mut marks: Vec<(&str, &[u8])> = vec![(seen_key.as_str(), &now)];
        if let Some(k) = &known {
            marks.push((known_key.as_str(), k));
        }
        let mut appends = Vec::with_capacity(taken.len());
        for (shard, events) in &taken {
            let Some(doc) = self.log.shard_mut(shard) else {
                continue;
            };
            appends.push(ShardAppend {
                shard: *shard,
                chunk: doc.save_incremental(),
                heads: digest(&doc.heads()),
                events: events.iter().map(|(e, _)| e).collect(),
            });
        }
        if let Err(e) = self.store.append_all(&appends, &marks) {
            drop(appends);
            self.drop_merged(taken.keys());
            return Err(e.into());
        }
        drop(appends);
        // 3. Durable: now the state and the detector see the events.
        for (shard, events) in taken {
            *self.chunks.entry(shard).or_insert(0) += 1;
            let n = events.len();
            for (e, _) in events {
                report.added_ids.push(e.id());
                // Held either way; folded only if the manifest in force admits it.
                if !self.take_in(e) {
                    report.withheld += 1;
                }
            }
            if n > 0 {
                *report.added_by_site.entry(shard.site).or_default() += n;
            }
            report.added += n;
        }
        Ok(report)
    }

    /// Forget the in-memory merges of `shards` (the commit did not happen): each is read
    /// back from the store as it was when next needed.
    fn drop_merged<'a>(&mut self, shards: impl Iterator<Item = &'a ShardId>) {
        let shards: Vec<ShardId> = shards.copied().collect();
        let stored: BTreeMap<ShardId, [u8; 32]> = stored_heads(&self.store);
        for s in shards {
            self.log.discard(&s, stored.get(&s).copied());
        }
    }

    /// Decrypt and check a bundle, and refuse one made here.
    fn open_bundle(
        &self,
        file: &[u8],
        options: ReadOptions,
    ) -> Result<kazashi_sync::BundleBody, BundleError> {
        let body = kazashi_sync::bundle::read_with(file, &self.members, &self.key, options)?;
        if body.author == self.key.device_id() {
            return Err(BundleError::OwnBundle);
        }
        Ok(body)
    }
}

/// The heads digest of every stored shard (none when the store cannot say).
fn stored_heads(store: &Store) -> BTreeMap<ShardId, [u8; 32]> {
    store
        .shards()
        .map(|v| v.into_iter().map(|(s, h, _)| (s, h)).collect())
        .unwrap_or_default()
}
