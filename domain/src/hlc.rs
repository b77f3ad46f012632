//! Hybrid logical clock (Kulkarni et al., 2014).
//!
//! A [`Timestamp`] is the largest wall time the device has seen (its own clock or a peer's) plus
//! a counter that orders events within one millisecond. A device's own events are strictly
//! increasing even when its wall clock jumps backwards, and an event written after reading a
//! peer's event is ordered after it. The physical time is always an argument: this module never
//! reads a clock.
//!
//! A peer whose clock runs far ahead could drag every clock in the mesh into the future, so
//! [`Hlc::observe`] refuses to move the clock more than `max_forward_ms` past local physical time
//! and reports the skew instead. The peer's event is still a fact and is kept; only this clock
//! ignores its timestamp.

use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A hybrid-logical-clock reading. Ordered by wall time, then counter.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Timestamp {
    pub wall_ms: Millis,
    pub counter: u32,
}

impl Timestamp {
    pub const fn new(wall_ms: Millis, counter: u32) -> Self {
        Self { wall_ms, counter }
    }

    /// The next reading after this one at the same wall time (or the next millisecond when the
    /// counter is exhausted).
    fn successor(self) -> Self {
        match self.counter.checked_add(1) {
            Some(c) => Self {
                wall_ms: self.wall_ms,
                counter: c,
            },
            None => Self {
                wall_ms: self.wall_ms.saturating_add(1),
                counter: 0,
            },
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.wall_ms, self.counter)
    }
}

/// A remote timestamp too far ahead of local physical time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a peer's clock is {} s ahead of this device (more than the {} s allowed); its timestamp was not adopted",
    .ahead_ms.div_ceil(1000),
    .max_forward_ms / 1000
)]
pub struct ClockSkew {
    pub ahead_ms: u64,
    pub max_forward_ms: u64,
}

/// One device's hybrid logical clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hlc {
    last: Timestamp,
    max_forward_ms: u64,
}

/// Default bound on how far a peer may pull this clock ahead of physical time: 10 minutes.
pub const DEFAULT_MAX_FORWARD_MS: u64 = 10 * 60 * 1000;

impl Hlc {
    /// A fresh clock.
    pub fn new(max_forward_ms: u64) -> Self {
        Self {
            last: Timestamp::default(),
            max_forward_ms,
        }
    }

    /// A clock resumed from the last timestamp this device issued or observed (kept on disk, so
    /// that a restart never issues a timestamp twice).
    pub fn resume(last: Timestamp, max_forward_ms: u64) -> Self {
        Self {
            last,
            max_forward_ms,
        }
    }

    /// The last timestamp issued or adopted.
    pub fn last(&self) -> Timestamp {
        self.last
    }

    /// A timestamp for a new local event at physical time `physical_ms`. Always greater than
    /// every timestamp this clock issued or adopted before.
    pub fn tick(&mut self, physical_ms: Millis) -> Timestamp {
        self.last = if physical_ms > self.last.wall_ms {
            Timestamp::new(physical_ms, 0)
        } else {
            self.last.successor()
        };
        self.last
    }

    /// A timestamp for a new local event that must order after `floor`: the latest event about
    /// the same person (or alert, card, household) that the operator is acting on. The floor is
    /// adopted whatever the skew bound, because this write's meaning depends on it: a check-out
    /// written by a laptop whose clock is hours slow must still follow the check-in it ends.
    pub fn tick_after(&mut self, physical_ms: Millis, floor: Timestamp) -> Timestamp {
        if floor > self.last {
            self.last = floor;
        }
        self.tick(physical_ms)
    }

    /// Take a timestamp seen on a peer's event into account, so that later local events order
    /// after it. A timestamp more than `max_forward_ms` ahead of `physical_ms` is not adopted.
    pub fn observe(&mut self, remote: Timestamp, physical_ms: Millis) -> Result<(), ClockSkew> {
        let limit = physical_ms.saturating_add(self.max_forward_ms);
        if remote.wall_ms > limit {
            return Err(ClockSkew {
                ahead_ms: remote.wall_ms - physical_ms,
                max_forward_ms: self.max_forward_ms,
            });
        }
        if remote > self.last {
            self.last = remote;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn follows_physical_time() {
        let mut c = Hlc::new(DEFAULT_MAX_FORWARD_MS);
        assert_eq!(c.tick(1000), Timestamp::new(1000, 0));
        assert_eq!(c.tick(1000), Timestamp::new(1000, 1));
        assert_eq!(c.tick(2000), Timestamp::new(2000, 0));
    }

    #[test]
    fn wall_clock_jumping_back_keeps_order() {
        let mut c = Hlc::new(DEFAULT_MAX_FORWARD_MS);
        let a = c.tick(10_000_000);
        // The laptop's clock is reset an hour back (a dead CMOS battery, a wrong manual setting).
        let b = c.tick(10_000_000 - 3_600_000);
        let d = c.tick(10_000_000 - 3_600_000 + 5);
        assert!(a < b && b < d);
        assert_eq!(b.wall_ms, 10_000_000);
    }

    #[test]
    fn observing_a_peer_orders_later_events_after_it() {
        let mut mine = Hlc::new(DEFAULT_MAX_FORWARD_MS);
        mine.tick(1_000);
        // Peer is 5 minutes ahead: within bounds, adopted.
        let remote = Timestamp::new(1_000 + 300_000, 7);
        mine.observe(remote, 1_000).unwrap();
        let next = mine.tick(1_001);
        assert!(next > remote);
    }

    #[test]
    fn a_peer_far_ahead_is_reported_not_adopted() {
        let mut mine = Hlc::new(60_000);
        let before = mine.tick(1_000);
        let err = mine
            .observe(Timestamp::new(1_000 + 3_600_000, 0), 1_000)
            .unwrap_err();
        assert_eq!(err.ahead_ms, 3_600_000);
        assert_eq!(mine.last(), before);
        assert_eq!(mine.tick(1_001), Timestamp::new(1_001, 0));
    }

    #[test]
    fn tick_after_orders_past_a_floor_beyond_the_bound() {
        let mut c = Hlc::new(60_000);
        let floor = Timestamp::new(10_000_000, 3);
        let t = c.tick_after(1_000, floor);
        assert!(t > floor);
        assert!(c.tick(1_001) > t);
        // A floor in the past changes nothing.
        let mut d = Hlc::new(60_000);
        assert_eq!(
            d.tick_after(5_000, Timestamp::new(10, 0)),
            Timestamp::new(5_000, 0)
        );
    }

    #[test]
    fn resumes_without_repeating() {
        let mut c = Hlc::new(DEFAULT_MAX_FORWARD_MS);
        let t = c.tick(5_000);
        let mut resumed = Hlc::resume(c.last(), DEFAULT_MAX_FORWARD_MS);
        assert!(resumed.tick(4_000) > t);
    }

    #[test]
    fn counter_overflow_moves_to_next_millisecond() {
        let mut c = Hlc::resume(Timestamp::new(7, u32::MAX), DEFAULT_MAX_FORWARD_MS);
        assert_eq!(c.tick(0), Timestamp::new(8, 0));
    }

    proptest! {
        /// Whatever the physical readings (skewed, repeated, going backwards) and whatever peers
        /// send, a device's own timestamps strictly increase and never fall behind a timestamp it
        /// adopted.
        #[test]
        fn own_events_strictly_increase(
            steps in proptest::collection::vec((0u64..1_000_000, proptest::option::of((0u64..1_200_000, 0u32..4))), 1..200)
        ) {
            let mut c = Hlc::new(100_000);
            let mut prev: Option<Timestamp> = None;
            for (phys, remote) in steps {
                let mut adopted = None;
                if let Some((w, n)) = remote {
                    let r = Timestamp::new(w, n);
                    if c.observe(r, phys).is_ok() { adopted = Some(r); }
                    else { prop_assert!(w > phys + 100_000); }
                }
                let t = c.tick(phys);
                if let Some(p) = prev { prop_assert!(t > p); }
                if let Some(r) = adopted { prop_assert!(t > r); }
                prop_assert!(t.wall_ms >= phys);
                prev = Some(t);
            }
        }
    }
}
