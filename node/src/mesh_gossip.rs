//! Which connections a new event is pushed on at once (*eager*), and which wait for the
//! periodic catalog (*lazy*): the mesh's gossip overlay, a pure function of this laptop's id,
//! the enrolled devices and the peers connected now.
//!
//! Pushing every new event on every connection costs each laptop one Automerge message per
//! peer, and every receiver does the same on all of its own: about N² messages an event. At
//! 100 laptops on one LAN that saturated the machines (`docs/benchmarks.md`, "mesh"). Here a
//! laptop pushes on a few connections only, chosen so that the pushes still reach every
//! laptop in a few hops; the others catch up from the anti-entropy catalog
//! ([`crate::link::LinkConfig::anti_entropy_ms`]), as Plumtree's lazy links do.
//!
//! The eager set of laptop `a`, among the peers connected to it:
//! - every peer, when there are at most [`PUSH_ALL_UP_TO`] (small fleets are unchanged);
//! - otherwise its two neighbours on the ring of connected device ids (the one after `a` and
//!   the one before, wrapping): on a full mesh the ring alone reaches everyone;
//! - its [`CHORDS`] peers of least [`weight`] (a hash of the pair, the same from both ends):
//!   shortcuts across the ring, so that a push crosses the fleet in a few hops;
//! - every peer that would pick `a` as one of *its* chords, judged over the enrolled devices:
//!   on a full mesh this makes the overlay symmetric, so each laptop also hears from those it
//!   pushes to.
//!
//! The iroh adapter sets it on each connection ([`crate::link::SyncLink::set_eager`]); the
//! drill simulator draws the same overlay over its laptops' links (`sim/src/drill/overlay.rs`).

use kazashi_domain::DeviceId;
use std::collections::BTreeSet;

/// Up to this many connected peers, every connection is eager (as before the overlay).
pub const PUSH_ALL_UP_TO: usize = 8;
/// The chords each laptop picks, besides its two ring neighbours.
pub const CHORDS: usize = 3;

/// The pair's weight: a mix of the two ids' first eight bytes, symmetric (`weight(a, b) ==
/// weight(b, a)`); device ids are public keys, so the weights look random and no laptop picks
/// its chords.
pub fn weight(a: &DeviceId, b: &DeviceId) -> u64 {
    let head = |d: &DeviceId| {
        let mut x = [0u8; 8];
        x.copy_from_slice(d.0.get(..8).unwrap_or(&[0; 8]));
        u64::from_le_bytes(x)
    };
    // splitmix64's finaliser.
    let mut z = (head(a) ^ head(b)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The [`CHORDS`] devices of `among` (not `me`) of least weight with `me`, ties by id.
fn chords<'a>(me: &DeviceId, among: impl Iterator<Item = &'a DeviceId>) -> Vec<DeviceId> {
    let mut by_weight: Vec<(u64, DeviceId)> = among
        .filter(|d| *d != me)
        .map(|d| (weight(me, d), *d))
        .collect();
    by_weight.sort_unstable();
    by_weight.into_iter().take(CHORDS).map(|(_, d)| d).collect()
}

/// The peers of `connected` that laptop `me` pushes new events to at once (module docs).
/// `enrolled` is the deployment's devices (this one may be among them).
pub fn eager_peers(
    me: &DeviceId,
    enrolled: &BTreeSet<DeviceId>,
    connected: &BTreeSet<DeviceId>,
) -> BTreeSet<DeviceId> {
    let others: BTreeSet<DeviceId> = connected.iter().filter(|d| *d != me).copied().collect();
    if others.len() <= PUSH_ALL_UP_TO {
        return others;
    }
    let mut eager = BTreeSet::new();
    // The ring: the next id after mine and the one before, wrapping.
    if let Some(next) = others.range(me..).next().or_else(|| others.iter().next()) {
        eager.insert(*next);
    }
    if let Some(prev) = others
        .range(..me)
        .next_back()
        .or_else(|| others.iter().next_back())
    {
        eager.insert(*prev);
    }
    eager.extend(chords(me, others.iter()));
    // Those that pick me, as far as this laptop can tell: over the enrolled devices.
    for peer in &others {
        if chords(peer, enrolled.iter().chain(std::iter::once(me))).contains(me) {
            eager.insert(*peer);
        }
    }
    eager
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, VecDeque};

    fn fleet(n: usize, seed: u8) -> Vec<DeviceId> {
        use sha2::{Digest, Sha256};
        (0..n)
            .map(|i| {
                let h = Sha256::digest([seed, (i >> 8) as u8, i as u8]);
                DeviceId(h.into())
            })
            .collect()
    }

    /// Each laptop's eager set on a full mesh of `ids`.
    fn overlay(ids: &[DeviceId]) -> BTreeMap<DeviceId, BTreeSet<DeviceId>> {
        let all: BTreeSet<DeviceId> = ids.iter().copied().collect();
        ids.iter()
            .map(|me| (*me, eager_peers(me, &all, &all)))
            .collect()
    }

    /// Hops from `from` to each laptop, following eager pushes.
    fn hops(o: &BTreeMap<DeviceId, BTreeSet<DeviceId>>, from: DeviceId) -> Vec<usize> {
        let mut dist = BTreeMap::from([(from, 0usize)]);
        let mut queue = VecDeque::from([from]);
        while let Some(d) = queue.pop_front() {
            let here = dist[&d];
            for p in &o[&d] {
                if !dist.contains_key(p) {
                    dist.insert(*p, here + 1);
                    queue.push_back(*p);
                }
            }
        }
        dist.into_values().collect()
    }

    #[test]
    fn weights_are_symmetric_and_differ() {
        let ids = fleet(50, 1);
        let mut seen = BTreeSet::new();
        for a in &ids {
            for b in &ids {
                assert_eq!(weight(a, b), weight(b, a));
                if a < b {
                    seen.insert(weight(a, b));
                }
            }
        }
        assert_eq!(seen.len(), 50 * 49 / 2, "colliding weights");
    }

    #[test]
    fn small_fleets_push_on_every_connection() {
        for n in 1..=PUSH_ALL_UP_TO + 1 {
            let ids = fleet(n, 2);
            for (me, eager) in overlay(&ids) {
                let others: BTreeSet<DeviceId> =
                    ids.iter().filter(|d| **d != me).copied().collect();
                assert_eq!(eager, others, "n = {n}");
            }
        }
    }

    /// On a full mesh of any size up to 200, in several fleets: a push from any laptop reaches
    /// every other in a few hops, each laptop pushes on few connections, and whoever pushes to
    /// a laptop is pushed to by it.
    #[test]
    fn a_full_mesh_overlay_reaches_everyone_in_few_hops_with_a_bounded_fan_out() {
        for seed in 0..4u8 {
            for n in [10, 12, 20, 33, 50, 64, 100, 150, 200] {
                let ids = fleet(n, seed);
                let o = overlay(&ids);
                let degrees: Vec<usize> = o.values().map(BTreeSet::len).collect();
                let max = degrees.iter().copied().max().unwrap_or(0);
                let mean = degrees.iter().sum::<usize>() as f64 / n as f64;
                assert!(max <= 16, "n = {n}, seed {seed}: fan-out {max}");
                assert!(mean <= 9.0, "n = {n}, seed {seed}: mean fan-out {mean}");
                for (a, eager) in &o {
                    assert!(!eager.contains(a));
                    for b in eager {
                        assert!(o[b].contains(a), "n = {n}: not symmetric");
                    }
                }
                let worst = ids
                    .iter()
                    .map(|d| {
                        let h = hops(&o, *d);
                        assert_eq!(h.len(), n, "n = {n}, seed {seed}: not everyone reached");
                        h.into_iter().max().unwrap_or(0)
                    })
                    .max()
                    .unwrap_or(0);
                assert!(worst <= 5, "n = {n}, seed {seed}: {worst} hops");
            }
        }
    }

    /// With part of the fleet away, the eager set is drawn from the connected peers only, and
    /// the connected laptops still reach each other.
    #[test]
    fn only_connected_peers_are_eager_and_the_rest_still_reach_each_other() {
        let ids = fleet(100, 9);
        let all: BTreeSet<DeviceId> = ids.iter().copied().collect();
        // Every third laptop is away; the others form a full mesh among themselves.
        let here: BTreeSet<DeviceId> = ids.iter().step_by(3).copied().collect();
        let o: BTreeMap<DeviceId, BTreeSet<DeviceId>> = here
            .iter()
            .map(|me| (*me, eager_peers(me, &all, &here)))
            .collect();
        for (me, eager) in &o {
            assert!(eager.is_subset(&here) && !eager.contains(me));
            assert!(eager.len() >= 2 + CHORDS.min(1));
        }
        for d in &here {
            assert_eq!(hops(&o, *d).len(), here.len());
        }
    }
}
