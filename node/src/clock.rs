//! Where physical time comes from. The domain never reads a clock; the node passes one in.

use kazashi_domain::Millis;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of wall-clock time in milliseconds since the Unix epoch.
pub trait Clock {
    fn now_ms(&self) -> Millis;
}

/// The operating system's clock (which may be wrong; the HLC copes).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// A clock set by hand: simulated time for drills, the demo and tests. Clones share the time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    pub fn new(ms: Millis) -> Self {
        Self(Arc::new(AtomicU64::new(ms)))
    }
    pub fn set(&self, ms: Millis) {
        self.0.store(ms, Ordering::SeqCst);
    }
    pub fn advance(&self, ms: Millis) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

/// A clock that is off by a fixed amount from another (a laptop set to the wrong time).
#[derive(Debug, Clone)]
pub struct SkewedClock<C> {
    pub inner: C,
    pub skew_ms: i64,
}

impl<C: Clock> Clock for SkewedClock<C> {
    fn now_ms(&self) -> Millis {
        self.inner.now_ms().saturating_add_signed(self.skew_ms)
    }
}
