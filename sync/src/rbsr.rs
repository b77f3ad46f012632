//! Range-based set reconciliation of two catalogs (shard → heads digest), sans-IO.
//!
//! Two laptops that hold the same shards at the same heads should learn it from one small
//! message, not from a list of every shard: the anti-entropy pass runs every few seconds on
//! every link. So the catalog is reconciled by ranges of shard ids in their canonical order
//! ([`ShardId`]'s `Ord`): a [`Reconcile`] message carries, per range, either a
//! [`Fingerprint`] of the sender's entries in it (a hash of the sum of the entries' hashes and
//! their count) or, for a small range, the entries themselves. The receiver compares each
//! range with its own entries there:
//!
//! - an equal fingerprint ends the range;
//! - an unequal one is answered with the receiver's entries when it holds at most
//!   [`LIST_MAX`] there, else with [`SPLIT`] sub-ranges of equal counts, each fingerprinted;
//! - a list settles the range: the receiver now knows exactly which shards differ there
//!   ([`Found`]), and names those only the sender holds in its answer's `want`.
//!
//! Equal catalogs settle in one message; `d` differing shards among `n` take
//! O(d · log n / log SPLIT) ranges over O(log n / log SPLIT) round trips.
//!
//! Every range of a message must lie inside the deployment's shards and the ranges must be in
//! order, without overlap ([`Reconcile::check`]); the work and the answer's size are bounded
//! by the message's (at most [`SPLIT`] ranges out per range in, and [`MAX_RANGES`] in all:
//! past it, unequal ranges are answered with their lists).

use crate::shard::{HeadsDigest, ShardId, put_shard};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

/// A range's summary: equal on two sides exactly when they hold the same entries there (but
/// for a 2^-128 chance).
pub type Fingerprint = [u8; 16];

/// A range with at most this many entries on the answering side is listed, not split.
pub const LIST_MAX: usize = 16;
/// An unequal range with more entries is split into this many sub-ranges.
pub const SPLIT: usize = 16;
/// The most ranges one message may carry (and an answer will).
pub const MAX_RANGES: usize = 4096;
/// The most entries an opening message lists ([`Reconcile::open_listed`]); more are
/// fingerprinted.
pub const LISTED_MAX: usize = 4096;

/// One range of shard ids: from `lower` (inclusive; `None`: from the first) to `upper`
/// (exclusive; `None`: to the last).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    pub lower: Option<ShardId>,
    pub upper: Option<ShardId>,
    pub mode: Mode,
}

/// What a range carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// The sender's entries there, summarised.
    Fingerprint(Fingerprint),
    /// The sender's entries there, in order.
    List(Vec<(ShardId, HeadsDigest)>),
}

/// One reconciliation message: ranges still open, and the shards the sender lacks and wants
/// whole (learnt from a list the peer sent).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Reconcile {
    pub ranges: Vec<Range>,
    pub want: Vec<ShardId>,
}

/// What an answer found: the shards known to differ, each with (ours, theirs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Found {
    pub differ: Vec<(ShardId, Option<HeadsDigest>, Option<HeadsDigest>)>,
    /// Shards the peer asked for whole (ours or not: the caller checks).
    pub wanted: Vec<ShardId>,
}

/// The hash of one entry.
fn entry_hash(shard: &ShardId, digest: &HeadsDigest) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"kazashi-rbsr-v1");
    let site = shard.site.as_str().as_bytes();
    h.update((site.len() as u64).to_le_bytes());
    h.update(site);
    h.update(i64::from(shard.day.year()).to_le_bytes());
    h.update([
        u8::try_from(shard.day.month()).unwrap_or(0),
        u8::try_from(shard.day.day()).unwrap_or(0),
    ]);
    h.update(digest);
    h.finalize().into()
}

/// The fingerprint of some entries: SHA-256 over the sum (mod 2^256) of their hashes and their
/// count. The sum makes it independent of how a range is cut.
pub fn fingerprint<'a>(
    entries: impl Iterator<Item = (&'a ShardId, &'a HeadsDigest)>,
) -> Fingerprint {
    let mut sum = [0u64; 4];
    let mut count = 0u64;
    for (s, d) in entries {
        let h = entry_hash(s, d);
        let mut carry = 0u128;
        for (i, limb) in sum.iter_mut().enumerate() {
            let mut word = [0u8; 8];
            if let Some(part) = h.get(i * 8..i * 8 + 8) {
                word.copy_from_slice(part);
            }
            let t = u128::from(*limb) + u128::from(u64::from_le_bytes(word)) + carry;
            *limb = t as u64;
            carry = t >> 64;
        }
        count += 1;
    }
    let mut h = Sha256::new();
    h.update(b"kazashi-rbsr-fp-v1");
    for limb in sum {
        h.update(limb.to_le_bytes());
    }
    h.update(count.to_le_bytes());
    let full: [u8; 32] = h.finalize().into();
    let mut out = [0u8; 16];
    out.copy_from_slice(full.get(..16).unwrap_or(&[0; 16]));
    out
}

fn bounds(lower: &Option<ShardId>, upper: &Option<ShardId>) -> (Bound<ShardId>, Bound<ShardId>) {
    (
        lower.map_or(Bound::Unbounded, Bound::Included),
        upper.map_or(Bound::Unbounded, Bound::Excluded),
    )
}

fn entries_in<'a>(
    ours: &'a BTreeMap<ShardId, HeadsDigest>,
    lower: &Option<ShardId>,
    upper: &Option<ShardId>,
) -> Vec<(&'a ShardId, &'a HeadsDigest)> {
    // An empty or inverted range holds nothing (`check` refuses those from a peer; BTreeMap
    // would panic on them).
    if let (Some(l), Some(u)) = (lower, upper)
        && l >= u
    {
        return Vec::new();
    }
    ours.range(bounds(lower, upper)).collect()
}

impl Reconcile {
    /// The opening message for a catalog: the whole range, listed if small, else fingerprinted.
    pub fn open(ours: &BTreeMap<ShardId, HeadsDigest>) -> Reconcile {
        let all = entries_in(ours, &None, &None);
        Reconcile {
            ranges: vec![summary(&None, &None, &all)],
            want: Vec::new(),
        }
    }

    /// The opening message of a new connection: every entry listed (up to `LISTED_MAX`), so
    /// that the peer knows every difference after one message, as a catalog did — a link
    /// that has just healed settles in one round trip; the periodic passes fingerprint.
    pub fn open_listed(ours: &BTreeMap<ShardId, HeadsDigest>) -> Reconcile {
        if ours.len() > LISTED_MAX {
            return Self::open(ours);
        }
        Reconcile {
            ranges: vec![Range {
                lower: None,
                upper: None,
                mode: Mode::List(ours.iter().map(|(s, d)| (*s, *d)).collect()),
            }],
            want: Vec::new(),
        }
    }

    /// Why a peer's message is refused, if it is: more than [`MAX_RANGES`] ranges, more than
    /// `max_shards` entries or wants, ranges out of order or overlapping, or a listed entry
    /// outside its range or out of order.
    pub fn check(&self, max_shards: usize) -> Result<(), String> {
        if self.ranges.len() > MAX_RANGES {
            return Err(format!(
                "a reconciliation of {} ranges, more than {MAX_RANGES}",
                self.ranges.len()
            ));
        }
        if self.want.len() > max_shards {
            return Err(format!(
                "a reconciliation wanting {} shards, more than the deployment can have ({max_shards})",
                self.want.len()
            ));
        }
        let mut listed = 0usize;
        let mut prev_upper: Option<Option<ShardId>> = None;
        for r in &self.ranges {
            if let (Some(l), Some(u)) = (&r.lower, &r.upper)
                && l >= u
            {
                return Err("a reconciliation range that is empty or inverted".into());
            }
            // In order, no overlap: this lower at or after the previous upper.
            if let Some(pu) = prev_upper {
                match (pu, &r.lower) {
                    (None, _) | (Some(_), None) => {
                        return Err("reconciliation ranges out of order or overlapping".into());
                    }
                    (Some(pu), Some(l)) if *l < pu => {
                        return Err("reconciliation ranges out of order or overlapping".into());
                    }
                    _ => {}
                }
            }
            prev_upper = Some(r.upper);
            if let Mode::List(items) = &r.mode {
                listed = listed.saturating_add(items.len());
                if listed > max_shards {
                    return Err(format!(
                        "a reconciliation listing more shards than the deployment can have ({max_shards})"
                    ));
                }
                let mut last: Option<&ShardId> = None;
                for (s, _) in items {
                    let inside = r.lower.is_none_or(|l| *s >= l) && r.upper.is_none_or(|u| *s < u);
                    if !inside || last.is_some_and(|p| p >= s) {
                        return Err(
                            "a reconciliation list out of order or outside its range".into()
                        );
                    }
                    last = Some(s);
                }
            }
        }
        Ok(())
    }

    /// Every shard the message names (listed, wanted, or a range bound).
    pub fn shards(&self) -> impl Iterator<Item = &ShardId> {
        self.ranges
            .iter()
            .flat_map(|r| {
                let listed: Box<dyn Iterator<Item = &ShardId>> = match &r.mode {
                    Mode::List(items) => Box::new(items.iter().map(|(s, _)| s)),
                    Mode::Fingerprint(_) => Box::new(std::iter::empty()),
                };
                r.lower.iter().chain(r.upper.iter()).chain(listed)
            })
            .chain(self.want.iter())
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty() && self.want.is_empty()
    }

    /// Postcard's layout, written by hand (it cannot fail).
    pub fn put(&self, out: &mut Vec<u8>) {
        use crate::wire::put_varint;
        let put_opt = |out: &mut Vec<u8>, s: &Option<ShardId>| match s {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                put_shard(out, s);
            }
        };
        put_varint(out, self.ranges.len() as u64);
        for r in &self.ranges {
            put_opt(out, &r.lower);
            put_opt(out, &r.upper);
            match &r.mode {
                Mode::Fingerprint(fp) => {
                    put_varint(out, 0);
                    out.extend_from_slice(fp);
                }
                Mode::List(items) => {
                    put_varint(out, 1);
                    put_varint(out, items.len() as u64);
                    for (s, d) in items {
                        put_shard(out, s);
                        out.extend_from_slice(d);
                    }
                }
            }
        }
        put_varint(out, self.want.len() as u64);
        for s in &self.want {
            put_shard(out, s);
        }
    }

    /// The encoded size in bytes.
    pub fn encode_len(&self) -> usize {
        let mut out = Vec::new();
        self.put(&mut out);
        out.len()
    }
}

/// A range's summary as sent: listed when small, fingerprinted when not.
fn summary(
    lower: &Option<ShardId>,
    upper: &Option<ShardId>,
    entries: &[(&ShardId, &HeadsDigest)],
) -> Range {
    let mode = if entries.len() <= LIST_MAX {
        Mode::List(entries.iter().map(|(s, d)| (**s, **d)).collect())
    } else {
        Mode::Fingerprint(fingerprint(entries.iter().copied()))
    };
    Range {
        lower: *lower,
        upper: *upper,
        mode,
    }
}

/// Answer a peer's message (already [`Reconcile::check`]ed) from our catalog: the reply (no
/// ranges and no wants when there is nothing more to say) and what it found.
pub fn answer(ours: &BTreeMap<ShardId, HeadsDigest>, theirs: &Reconcile) -> (Reconcile, Found) {
    let mut reply = Reconcile::default();
    let mut found = Found {
        differ: Vec::new(),
        wanted: theirs.want.clone(),
    };
    for range in &theirs.ranges {
        let mine = entries_in(ours, &range.lower, &range.upper);
        match &range.mode {
            Mode::Fingerprint(fp) => {
                if fingerprint(mine.iter().copied()) == *fp {
                    continue;
                }
                // Past the budget of ranges, or small enough: the list settles it.
                if mine.len() <= LIST_MAX || reply.ranges.len() + SPLIT > MAX_RANGES {
                    reply.ranges.push(Range {
                        lower: range.lower,
                        upper: range.upper,
                        mode: Mode::List(mine.iter().map(|(s, d)| (**s, **d)).collect()),
                    });
                    continue;
                }
                let per = mine.len().div_ceil(SPLIT);
                let parts: Vec<&[(&ShardId, &HeadsDigest)]> = mine.chunks(per).collect();
                for (i, part) in parts.iter().enumerate() {
                    let lower = if i == 0 {
                        range.lower
                    } else {
                        part.first().map(|(s, _)| **s)
                    };
                    let upper = match parts.get(i + 1) {
                        Some(next) => next.first().map(|(s, _)| **s),
                        None => range.upper,
                    };
                    reply.ranges.push(summary(&lower, &upper, part));
                }
            }
            Mode::List(items) => {
                let theirs_here: BTreeMap<ShardId, HeadsDigest> = items.iter().copied().collect();
                let keys: BTreeSet<ShardId> = mine
                    .iter()
                    .map(|(s, _)| **s)
                    .chain(theirs_here.keys().copied())
                    .collect();
                for s in keys {
                    let a = ours.get(&s).copied();
                    let b = theirs_here.get(&s).copied();
                    if a != b {
                        if a.is_none() {
                            reply.want.push(s);
                        }
                        found.differ.push((s, a, b));
                    }
                }
            }
        }
    }
    (reply, found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kazashi_domain::{CivilDate, SiteId};
    use proptest::prelude::*;

    fn shard(site: u8, day: i64) -> ShardId {
        ShardId {
            site: SiteId::new(&format!("S{site:03}")).unwrap(),
            day: CivilDate::from_days_since_epoch(20_000 + day).unwrap(),
        }
    }

    /// Run two sides to the end; returns what each found, and the number of messages.
    fn run(
        a: &BTreeMap<ShardId, HeadsDigest>,
        b: &BTreeMap<ShardId, HeadsDigest>,
    ) -> (BTreeSet<ShardId>, usize) {
        let mut differ = BTreeSet::new();
        let mut msg = Reconcile::open(a);
        let mut sides = [b, a];
        let mut messages = 1;
        while !msg.ranges.is_empty() {
            msg.check(1_000_000).unwrap();
            let (reply, found) = answer(sides[0], &msg);
            differ.extend(found.differ.iter().map(|(s, _, _)| *s));
            // A want is the other side's to serve: it lists a shard it lacks.
            for w in &reply.want {
                assert!(!sides[0].contains_key(w));
                assert!(sides[1].contains_key(w));
            }
            msg = reply;
            sides.swap(0, 1);
            messages += 1;
            assert!(messages < 40, "does not settle");
        }
        (differ, messages)
    }

    fn catalog(entries: &[(u8, i64, u8)]) -> BTreeMap<ShardId, HeadsDigest> {
        entries
            .iter()
            .map(|(s, d, v)| (shard(*s, *d), [*v; 32]))
            .collect()
    }

    #[test]
    fn equal_catalogs_settle_in_one_answer() {
        let a: Vec<(u8, i64, u8)> = (0..50u8)
            .flat_map(|s| (0..20).map(move |d| (s, d, 1)))
            .collect();
        let a = catalog(&a);
        let (d, messages) = run(&a, &a.clone());
        assert!(d.is_empty());
        assert_eq!(messages, 2);
        assert!(Reconcile::open(&a).encode_len() < 64);
    }

    #[test]
    fn one_differing_shard_among_a_thousand_is_found_in_few_small_messages() {
        let a: Vec<(u8, i64, u8)> = (0..50u8)
            .flat_map(|s| (0..20).map(move |d| (s, d, 1)))
            .collect();
        let a = catalog(&a);
        let mut b = a.clone();
        b.insert(shard(7, 3), [9; 32]);
        let (d, messages) = run(&a, &b);
        assert_eq!(d, BTreeSet::from([shard(7, 3)]));
        assert!(messages <= 5, "{messages} messages");
    }

    proptest! {
        #[test]
        fn two_random_catalogs_reconcile_to_exactly_the_differing_shards(
            common in proptest::collection::btree_map((0u8..40, 0i64..60), any::<u8>(), 0..600),
            only_a in proptest::collection::btree_map((0u8..40, 0i64..60), any::<u8>(), 0..40),
            only_b in proptest::collection::btree_map((0u8..40, 0i64..60), any::<u8>(), 0..40),
            changed in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
        ) {
            let mut a: BTreeMap<ShardId, HeadsDigest> = common.iter().map(|((s, d), v)| (shard(*s, *d), [*v; 32])).collect();
            let mut b = a.clone();
            for ((s, d), v) in &only_a { a.insert(shard(*s, *d), [*v; 32]); }
            for ((s, d), v) in &only_b { b.insert(shard(*s, *d), [v.wrapping_add(1); 32]); }
            let keys: Vec<ShardId> = b.keys().copied().collect();
            for i in &changed {
                if !keys.is_empty() {
                    let k = keys[i.index(keys.len())];
                    b.insert(k, [0xee; 32]);
                }
            }
            let expected: BTreeSet<ShardId> = a.keys().chain(b.keys()).filter(|k| a.get(k) != b.get(k)).copied().collect();
            let (found, messages) = run(&a, &b);
            prop_assert_eq!(&found, &expected);
            // O(log n) round trips: log16 of 2,400 entries is under 3.
            prop_assert!(messages <= 6, "{} messages", messages);
        }

        #[test]
        fn hostile_messages_are_refused_or_answered_within_bounds(
            ranges in proptest::collection::vec((proptest::option::of((0u8..40, 0i64..60)), proptest::option::of((0u8..40, 0i64..60)), any::<bool>(), proptest::collection::vec((0u8..40, 0i64..60), 0..30)), 0..50),
        ) {
            let ours: BTreeMap<ShardId, HeadsDigest> = (0..40u8).flat_map(|s| (0..60).map(move |d| (shard(s, d), [s; 32]))).collect();
            let msg = Reconcile {
                ranges: ranges.iter().map(|(l, u, fp, items)| Range {
                    lower: l.map(|(s, d)| shard(s, d)),
                    upper: u.map(|(s, d)| shard(s, d)),
                    mode: if *fp { Mode::Fingerprint([1; 16]) } else { Mode::List(items.iter().map(|(s, d)| (shard(*s, *d), [0; 32])).collect()) },
                }).collect(),
                want: Vec::new(),
            };
            if msg.check(2400).is_ok() {
                let (reply, found) = answer(&ours, &msg);
                prop_assert!(reply.ranges.len() <= SPLIT * msg.ranges.len().max(1));
                prop_assert!(reply.ranges.len() <= MAX_RANGES);
                prop_assert!(found.differ.len() <= 2400 + 30 * 50);
                prop_assert!(reply.check(2400).is_ok());
            }
        }
    }
}
