//! Rejoining after an outage, sans-IO: one laptop's view across all its dial loops. Its drivers
//! are [`crate::mesh`] (keyed by device) and the drill simulator (keyed by link); it reads no
//! clock (instants are `u64` milliseconds on the driver's scale).
//!
//! Each loop backs off on its own ([`super::Backoff`]): after a long outage one attempt every
//! timeout + cap. A laptop that was cut off with its peers would so see them again seconds
//! after the network returned. [`Rejoin`] shortens that, with a bound that does not grow with
//! the number of peers:
//!
//! - **A probe per laptop, not per loop.** While some peer this laptop dials and had greeted
//!   before is disconnected (a *candidate*), the laptop starts one attempt about every
//!   [`PROBE_GAP_MS`] times one plus the number of peers it is connected to (jittered between
//!   half and one and a half times that, seeded), at the candidates in turn: at most one probe
//!   per gap, whether one peer is out of reach or fifty. A laptop cut off from everyone probes
//!   ten times a second; one still connected to 99 peers once every ten seconds, so a fleet on
//!   one network probes about ten times a second in all, whatever its size. A peer never
//!   greeted (a mesh still forming, a stale address, a connection turned away as busy before
//!   its greeting) is never probed.
//! - **Evidence kicks the rest.** When a connection with a peer that had greeted before and was
//!   lost opens again (dialled or accepted: the network is back), or a discovery announcement
//!   or a new address for a peer arrives, every other candidate is owed an attempt at once.
//!   Each loss is kicked at most once per piece of evidence, and only once it is
//!   [`SETTLE_MS`] old (a fresh loss is its loop's to redial, 250 ms after); nothing is kicked
//!   on a first meeting, so a forming mesh sees no kicks.
//! - **News of a lost peer kicks it.** Events a lost peer wrote arriving through another
//!   connection ([`Rejoin::heard_from`]) say that it is back on the network, here or
//!   somewhere this laptop reaches: it is owed an attempt at once, at most once per loss (a
//!   laptop connected to many peers probes too seldom to find it soon, and a peer that
//!   accepts but does not dial can only wait to be dialled).
//! - **A cap on handshakes.** Probes and kicked attempts together have at most
//!   [`MAX_HANDSHAKES`] in flight ([`Rejoin::next`] hands out none beyond; the driver reports
//!   each one's end with [`Rejoin::finished`]). The loops' own back-off attempts are not counted
//!   here: they are paced by their back-off.
//!
//! The cost while a candidate stays out of reach: one QUIC Initial (1,200 bytes) a probe gap,
//! about 12 KB a second per laptop, whatever the number of peers lost (in the mesh, fewer: at
//! most [`MAX_HANDSHAKES`] probes wait out their [`PROBE_TIMEOUT_MS`] at once).

use std::collections::{BTreeMap, VecDeque};

/// The mean gap between the starts of two probes of one laptop (each drawn between half and one
/// and a half times it).
pub const PROBE_GAP_MS: u64 = 100;

/// How long a probe or a kicked attempt may take in the mesh before it counts as failed: a
/// peer that is back answers a handshake within a few round trips; a slow one still gets the
/// loop's own attempts, which wait [`super::DIAL_TIMEOUT_MS`].
pub const PROBE_TIMEOUT_MS: u64 = 1_000;

/// How long a peer must have been lost before evidence kicks it: until then its own loop
/// redials it (250 ms after the loss, then backing off).
pub const SETTLE_MS: u64 = 3_000;

/// The most probes and kicked attempts of one laptop in flight at once.
pub const MAX_HANDSHAKES: usize = 8;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Peer {
    /// This laptop runs a dial loop for it.
    dials: bool,
    /// A connection with it has been greeted at least once.
    met: bool,
    /// Live greeted connections with it.
    live: u32,
    /// A connection with it opened and kicked the others; its greeting does not again.
    opened: bool,
    /// When its last live connection ended.
    lost_at: u64,
    /// News of it ([`Rejoin::heard_from`]) kicked it since it was lost.
    heard: bool,
}

impl Peer {
    fn candidate(&self) -> bool {
        self.dials && self.met && self.live == 0
    }
}

/// One laptop's rejoin policy over the peers it knows, keyed by `K` (a device, a link).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejoin<K: Ord + Copy> {
    peers: BTreeMap<K, Peer>,
    /// Peers owed an attempt at once (kicked), in the order they were owed.
    owed: VecDeque<K>,
    /// Probes and kicked attempts in flight.
    in_flight: usize,
    cap: usize,
    gap_ms: u64,
    /// When the next probe starts, while there are candidates.
    next_probe: Option<u64>,
    /// The last peer probed: the next probe goes to the candidate after it.
    cursor: Option<K>,
    /// The jitter's splitmix64 state.
    jitter: u64,
}

impl<K: Ord + Copy> Rejoin<K> {
    /// The policy with the default gap and cap, its jitter stream seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            peers: BTreeMap::new(),
            owed: VecDeque::new(),
            in_flight: 0,
            cap: MAX_HANDSHAKES,
            gap_ms: PROBE_GAP_MS,
            next_probe: None,
            cursor: None,
            jitter: seed,
        }
    }

    /// The same policy probing with a mean gap of `gap_ms` (at least 2 ms).
    pub fn with_gap(mut self, gap_ms: u64) -> Self {
        self.gap_ms = gap_ms.max(2);
        self
    }

    /// The same policy with at most `cap` (at least 1) probes and kicked attempts in flight.
    pub fn with_cap(mut self, cap: usize) -> Self {
        self.cap = cap.max(1);
        self
    }

    /// This laptop runs a dial loop for `peer` (only those are probed and kicked).
    pub fn dials(&mut self, peer: K) {
        self.peers.entry(peer).or_default().dials = true;
    }

    /// This laptop's loop for `peer` stopped.
    pub fn stops_dialling(&mut self, peer: K) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.dials = false;
        }
        self.owed.retain(|k| *k != peer);
    }

    /// Forget everything but the loops and the jitter (the laptop restarted: its connections
    /// and memories of meetings are gone).
    pub fn restart(&mut self) {
        for p in self.peers.values_mut() {
            p.met = false;
            p.live = 0;
            p.opened = false;
            p.heard = false;
        }
        self.owed.clear();
        self.in_flight = 0;
        self.next_probe = None;
        self.cursor = None;
    }

    /// Whether `peer` is a candidate: dialled by this laptop, greeted before, not connected.
    pub fn is_candidate(&self, peer: &K) -> bool {
        self.peers.get(peer).is_some_and(Peer::candidate)
    }

    /// The candidates, in key order.
    pub fn candidates(&self) -> impl Iterator<Item = K> + '_ {
        self.peers
            .iter()
            .filter(|(_, p)| p.candidate())
            .map(|(k, _)| *k)
    }

    /// A connection with `peer` was greeted at `now`. Returns whether it is evidence that the
    /// network is back (the peer had greeted before and was lost): then every other candidate
    /// is owed an attempt at once.
    pub fn greeted(&mut self, peer: K, now: u64) -> bool {
        let p = self.peers.entry(peer).or_default();
        let evidence = p.met && p.live == 0 && !p.opened;
        p.opened = false;
        p.met = true;
        p.live = p.live.saturating_add(1);
        self.owed.retain(|k| *k != peer);
        if evidence {
            self.kick_all(now);
        }
        if self.candidates().next().is_none() {
            self.next_probe = None;
        }
        evidence
    }

    /// A connection with `peer` opened at `now` (a dial met it or it was accepted), before its
    /// greeting. Returns whether it is evidence that the network is back (the peer had greeted
    /// before and is not connected): then every other candidate is owed an attempt at once —
    /// a greeting's round trips sooner than [`Rejoin::greeted`] would.
    pub fn opened(&mut self, peer: K, now: u64) -> bool {
        let Some(p) = self.peers.get_mut(&peer) else {
            return false;
        };
        if !(p.met && p.live == 0) || p.opened {
            return false;
        }
        p.opened = true;
        self.owed.retain(|k| *k != peer);
        self.kick_all(now);
        self.owed.retain(|k| *k != peer);
        true
    }

    /// A connection with `peer` that opened ended before its greeting.
    pub fn not_greeted(&mut self, peer: K) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.opened = false;
        }
    }

    /// A greeted connection with `peer` ended at `now`.
    pub fn ended(&mut self, peer: K, now: u64) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.live = p.live.saturating_sub(1);
        p.opened = false;
        if p.live == 0 {
            p.lost_at = now;
            p.heard = false;
        }
        if p.candidate() && self.next_probe.is_none() {
            let gap = self.gap();
            self.next_probe = Some(now.saturating_add(gap));
        }
    }

    /// Events `peer` wrote arrived at `now` through another connection (or this one, before it
    /// was reported greeted): if it is a candidate lost for at least [`SETTLE_MS`], it is
    /// owed an attempt at once — once per loss, whatever else arrives from it. Returns
    /// whether it was kicked.
    pub fn heard_from(&mut self, peer: K, now: u64) -> bool {
        let Some(p) = self.peers.get_mut(&peer) else {
            return false;
        };
        if !p.candidate() || p.heard || p.lost_at.saturating_add(SETTLE_MS) > now {
            return false;
        }
        p.heard = true;
        self.owe(peer);
        true
    }

    /// A discovery announcement or a new address for `peer` arrived at `now`: the peer and
    /// every other candidate are owed an attempt at once.
    pub fn announced(&mut self, peer: K, now: u64) {
        if self
            .peers
            .get(&peer)
            .is_some_and(|p| p.dials && p.live == 0)
        {
            self.owe(peer);
        }
        self.kick_all(now);
    }

    fn kick_all(&mut self, now: u64) {
        let lost: Vec<K> = self
            .peers
            .iter()
            .filter(|(_, p)| p.candidate() && p.lost_at.saturating_add(SETTLE_MS) <= now)
            .map(|(k, _)| *k)
            .collect();
        for k in lost {
            self.owe(k);
        }
    }

    fn owe(&mut self, k: K) {
        if !self.owed.contains(&k) {
            self.owed.push_back(k);
        }
    }

    /// The next attempt to start at `now`, if any: a kicked peer first, else a probe if one is
    /// due; none while [`MAX_HANDSHAKES`] are in flight. Each one handed out is in flight until
    /// [`Rejoin::finished`].
    pub fn next(&mut self, now: u64) -> Option<K> {
        if self.in_flight >= self.cap {
            return None;
        }
        while let Some(k) = self.owed.pop_front() {
            if self.peers.get(&k).is_some_and(|p| p.dials && p.live == 0) {
                self.in_flight += 1;
                return Some(k);
            }
        }
        let due = self.next_probe?;
        if due > now {
            return None;
        }
        let Some(k) = self.rotate() else {
            self.next_probe = None;
            return None;
        };
        // The next gap counts from when this probe was due, so that a late driver does not
        // slow the probe down (nor is owed a burst: at most one probe per call).
        let gap = self.gap();
        self.next_probe = Some(due.saturating_add(gap).max(now.saturating_add(1)));
        self.in_flight += 1;
        Some(k)
    }

    /// A probe or kicked attempt handed out by [`Rejoin::next`] ended (met its peer or not).
    pub fn finished(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// When [`Rejoin::next`] may next hand something out: `Some(0)` for at once (a kick owed
    /// and room for it), the next probe's instant, or `None` (nothing to do until told more).
    /// While [`MAX_HANDSHAKES`] are in flight: `None` (the next [`Rejoin::finished`] is what
    /// makes room).
    pub fn wake(&self) -> Option<u64> {
        if self.in_flight >= self.cap {
            return None;
        }
        if !self.owed.is_empty() {
            return Some(0);
        }
        self.next_probe
    }

    /// For a driver that does not step every probe (the drill, between the instants where
    /// reachability changes): the probes due before `now` all failed (their targets stayed
    /// out of reach) and are skipped; returns how many, and the first probe at or after `now`
    /// whose target `reachable` says can be reached, if any candidate can (trying each
    /// candidate at most once past `now`, in turn, each failed try counted as skipped).
    pub fn skip_to(&mut self, now: u64, reachable: impl Fn(&K) -> bool) -> (u64, Option<(u64, K)>) {
        let mut skipped = 0u64;
        let Some(mut due) = self.next_probe else {
            return (0, None);
        };
        let count = self.candidates().count() as u64;
        if count == 0 {
            self.next_probe = None;
            return (0, None);
        }
        // Whole turns of the gap's mean before `now` are skipped without drawing each one;
        // the stream is then drawn for the last few, so the phase stays jittered.
        let mean = self
            .gap_ms
            .saturating_mul(self.connected().saturating_add(1))
            .max(1);
        if due < now {
            let turns = (now - due) / mean;
            if turns > 4 {
                let skip = turns - 4;
                due = due.saturating_add(skip.saturating_mul(mean));
                skipped = skipped.saturating_add(skip);
                for _ in 0..(skip % count) {
                    self.rotate();
                }
            }
        }
        let mut tries_past_now = 0u64;
        loop {
            let Some(k) = self.rotate() else {
                self.next_probe = None;
                return (skipped, None);
            };
            if due >= now {
                if reachable(&k) {
                    let gap = self.gap();
                    self.next_probe = Some(due.saturating_add(gap));
                    return (skipped, Some((due, k)));
                }
                tries_past_now += 1;
                if tries_past_now > count {
                    // Nothing can be reached: stop at the first probe past `now`.
                    self.next_probe = Some(due);
                    return (skipped, None);
                }
            }
            skipped = skipped.saturating_add(1);
            let gap = self.gap();
            due = due.saturating_add(gap);
        }
    }

    /// The candidate after the cursor (wrapping), which becomes the cursor.
    fn rotate(&mut self) -> Option<K> {
        let after = self
            .cursor
            .and_then(|c| {
                self.peers
                    .range((std::ops::Bound::Excluded(c), std::ops::Bound::Unbounded))
                    .find(|(_, p)| p.candidate())
                    .map(|(k, _)| *k)
            })
            .or_else(|| self.candidates().next());
        self.cursor = after.or(self.cursor);
        after
    }

    /// Peers with a live connection.
    fn connected(&self) -> u64 {
        self.peers.values().filter(|p| p.live > 0).count() as u64
    }

    /// A gap drawn between half and one and a half times the mean, the mean being the probe
    /// gap times one plus the peers connected.
    fn gap(&mut self) -> u64 {
        // splitmix64
        self.jitter = self.jitter.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.jitter;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let p = self
            .gap_ms
            .saturating_mul(self.connected().saturating_add(1));
        (p / 2).saturating_add(z % p.saturating_add(1)).max(1)
    }
}

#[cfg(test)]
#[path = "redial_rejoin_tests.rs"]
mod tests;
