//! The redial policy, sans-IO: when a dial loop tries its peer again. Its drivers are
//! [`crate::mesh`]'s dial loop and the drill simulator (`kazashi_sim::drill`); it reads no
//! clock (instants are `u64` milliseconds on any monotonic scale the driver chooses).
//!
//! After a connection ends, the loop waits [`Backoff::delay`] (250 ms) and dials. A dial that
//! does not meet its peer within [`DIAL_TIMEOUT_MS`] has failed, and the wait after each
//! failure doubles, up to a cap (the mesh's: 5 s).
//!
//! That alone leaves a peer that was out of reach for long — a shelter cut off for half an
//! hour — one attempt every timeout + cap (8 s): its events written meanwhile would reach the
//! others up to 8 s after the network returned, 4 s on average. So a loop that *probes* (none
//! for now: see [`Backoff::mesh`]) starts its next attempt at most a probe gap after the previous
//! one *started*, even while that one still waits out its timeout (attempts overlap): about
//! [`PROBE_MS`], jittered between half and one and a half times it. The jitter keeps the
//! laptops cut off together from redialling in step, and spreads one laptop's loops so that
//! the first of them to meet its peer after a heal comes sooner. Its stream is a
//! splitmix64 the driver seeds ([`Backoff::seeded`]): the mesh from the OS, the drill from its
//! network seed, so a seeded drill gives the same figures.
//!
//! Across a laptop's loops, [`Rejoin`] (`redial_rejoin.rs`) bounds the return after an outage
//! instead, with one probe per laptop and kicks on evidence that the network is back; the
//! mesh and the drill run it.
//!
//! The cost: a dial attempt is a QUIC Initial (1,200 bytes, retransmitted at most twice within
//! its timeout), so a probing loop whose peer stays out of reach sends about 2.4 to 7 KB a
//! second — on the laptop's own network, and only while that peer cannot be reached.

/// How long a dial may take before it counts as failed.
pub const DIAL_TIMEOUT_MS: u64 = 3_000;

/// The most attempts of one probing loop that wait out their timeout at once (the mesh skips a
/// probe rather than start another): a slow network or a busy laptop does not pile handshakes up.
pub const MAX_ATTEMPTS_IN_FLIGHT: usize = 3;

/// The mean gap between the starts of two attempts of a probing loop whose peer stays out of
/// reach (each gap drawn between half and one and a half times this).
pub const PROBE_MS: u64 = 500;

/// The redial policy: after a failed dial wait twice as long as the last time, up to a cap;
/// after a connection that was made, start again from the first wait; if probing, never more
/// than a (jittered) probe gap between the starts of two attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first_ms: u64,
    cap_ms: u64,
    failures: u32,
    /// The mean probe gap, if the loop probes.
    probe_ms: Option<u64>,
    /// The jitter's splitmix64 state.
    jitter: u64,
    /// Whether the loop has met its peer: only then does it probe. A peer never met may be a
    /// stale address, and a fleet forming its mesh would otherwise open a handshake every
    /// half second on every loop at once, each making the others slower.
    met_once: bool,
}

impl Backoff {
    /// A loop that does not probe: each failed attempt lasts the timeout, then the wait.
    pub const fn new(first_ms: u64, cap_ms: u64) -> Self {
        Self {
            first_ms,
            cap_ms,
            failures: 0,
            probe_ms: None,
            jitter: 0,
            met_once: false,
        }
    }

    /// The mesh's: 250 ms, doubling up to 5 s. It does not probe: with probing, 100 laptops
    /// on one machine (`kazashi-lab bench mesh --scale 100`) did not form their mesh in 7
    /// minutes (8 GB of handshakes in flight), where without it they form in about 40 s. The
    /// probe stays available ([`Backoff::probing`]) for when its cost is bounded.
    pub const fn mesh() -> Self {
        Self::new(250, 5_000)
    }

    /// The same loop, probing with a mean gap of `probe_ms` (at least 2 ms).
    pub const fn probing(mut self, probe_ms: u64) -> Self {
        self.probe_ms = Some(if probe_ms < 2 { 2 } else { probe_ms });
        self
    }

    /// The same loop, not probing (a loop that dials every enrolled device at an address at
    /// once: a probe would be that many attempts).
    pub const fn without_probe(mut self) -> Self {
        self.probe_ms = None;
        self
    }

    /// The same loop with the back-off's cap `cap_ms` (the drill's `reconnect_s`).
    pub const fn capped(mut self, cap_ms: u64) -> Self {
        self.cap_ms = cap_ms;
        self
    }

    /// The same loop with its jitter stream seeded.
    pub const fn seeded(mut self, seed: u64) -> Self {
        self.jitter = seed;
        self
    }

    /// The attempts that failed since the loop last met its peer.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The wait before the next dial.
    pub fn delay(&self) -> u64 {
        let factor = 1u64.checked_shl(self.failures.min(32)).unwrap_or(u64::MAX);
        self.first_ms.saturating_mul(factor).min(self.cap_ms)
    }

    /// A dial failed: the (longer) wait before the next.
    pub fn failed(&mut self) -> u64 {
        self.failures = self.failures.saturating_add(1);
        self.delay()
    }

    /// A dial met its peer: when that connection ends, wait the first wait again.
    pub fn met(&mut self) -> u64 {
        self.failures = 0;
        self.met_once = true;
        self.delay()
    }

    /// The attempt that started at `started` failed, or has not met its peer yet: when the
    /// next one starts. Without probing (or before the loop first met its peer): its timeout,
    /// then the doubled wait. Probing: the sooner of that and a jittered probe gap after
    /// `started`.
    pub fn next_start(&mut self, started: u64) -> u64 {
        let backed_off = started
            .saturating_add(DIAL_TIMEOUT_MS)
            .saturating_add(self.failed());
        match self.probe_ms {
            Some(p) if self.met_once => backed_off.min(started.saturating_add(self.probe_gap(p))),
            _ => backed_off,
        }
    }

    /// Whether the next attempt may start while earlier ones still wait out their timeout.
    pub fn probes(&self) -> bool {
        self.probe_ms.is_some() && self.met_once
    }

    /// A gap drawn between half and one and a half times `p`.
    fn probe_gap(&mut self, p: u64) -> u64 {
        // splitmix64
        self.jitter = self.jitter.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.jitter;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (p / 2).saturating_add(z % p.saturating_add(1)).max(1)
    }

    /// A dial loop whose attempt begun at `tried` failed, and so did every attempt since
    /// (see [`Backoff::next_start`]): the first attempt at or after `now`. Time spent at the
    /// cap of a loop that does not probe is skipped in one step.
    pub fn next_attempt(&mut self, tried: u64, now: u64) -> u64 {
        let mut at = tried;
        loop {
            let next = self.next_start(at);
            if next >= now {
                return next;
            }
            at = next;
            if !self.probes() && self.delay() >= self.cap_ms {
                // From here on one attempt every timeout + cap.
                let period = DIAL_TIMEOUT_MS.saturating_add(self.cap_ms).max(1);
                let turns = (now - at) / period;
                self.failures = self
                    .failures
                    .saturating_add(u32::try_from(turns).unwrap_or(u32::MAX));
                at = at.saturating_add(turns.saturating_mul(period));
                if at >= now {
                    return at;
                }
            }
        }
    }
}

#[path = "redial_rejoin.rs"]
pub mod rejoin;
pub use rejoin::{MAX_HANDSHAKES, PROBE_GAP_MS, PROBE_TIMEOUT_MS, Rejoin};

#[cfg(test)]
#[path = "redial_tests.rs"]
mod tests;
