//! The greeting gate (a part of [`crate::mesh`]): how many accepted connections may wait for
//! their greeting at once. A connection is authenticated by its TLS key, but any key will do
//! until the greeting is checked, so a stranger can open connections for nothing; each costs
//! a task and buffers until it greets or its time runs out ([`crate::link::LinkConfig::greeting_ms`],
//! which also bounds the wait for its first stream). Strangers (keys the manifest in force
//! does not enrol) share one pool, capped in all ([`MAX_UNGREETED`]) and per remote address
//! ([`MAX_UNGREETED_PER_ADDR`]), so that a flood of them never keeps an enrolled laptop out;
//! enrolled devices have their own places, a few each ([`MAX_UNGREETED_PER_DEVICE`]). One
//! over is closed at once, before anything is read. Greeted connections do not count.
//!
//! A stranger's address turned away *cools*: for [`FIRST_COOLING`], doubling each time it is
//! turned away again up to [`MAX_COOLING`], its new connections are ignored before the TLS
//! handshake ([`Gate::cooling`], the router's incoming filter), so that a flood of handshakes
//! costs this laptop a table lookup each instead of a handshake. Enrolled devices' connections
//! are told apart only by their key, after the handshake, so an address that floods is
//! ignored whoever else is behind it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a stranger's address turned away is ignored, first and at most.
pub const FIRST_COOLING: Duration = Duration::from_secs(1);
pub const MAX_COOLING: Duration = Duration::from_secs(16);

/// Accepted connections that may be waiting for their greeting at once.
pub const MAX_UNGREETED: usize = 64;
/// Of those, from one address (a laptop redialling after a drop needs one or two).
pub const MAX_UNGREETED_PER_ADDR: usize = 8;
/// Connections of one enrolled device waiting for their greeting at once.
pub const MAX_UNGREETED_PER_DEVICE: usize = 4;

#[derive(Debug)]
struct Counts<K> {
    total: usize,
    by_addr: BTreeMap<K, usize>,
    /// Connections turned away since the start.
    refused: u64,
    /// Addresses turned away: until when, and for how long the last time.
    cooling: BTreeMap<K, (Instant, Duration)>,
}

impl<K> Default for Counts<K> {
    fn default() -> Self {
        Counts {
            total: 0,
            by_addr: BTreeMap::new(),
            refused: 0,
            cooling: BTreeMap::new(),
        }
    }
}

/// A pool of places, shared by every accepted connection of its kind, keyed by `K` (the
/// remote address for strangers, the device for enrolled ones).
#[derive(Debug, Clone)]
pub struct Gate<K = Option<IpAddr>> {
    counts: Arc<Mutex<Counts<K>>>,
    max_total: usize,
    max_per_addr: usize,
}

/// One connection's place until it has greeted (or ended): dropping it frees the place.
#[derive(Debug)]
pub struct Slot<K: Ord = Option<IpAddr>> {
    counts: Arc<Mutex<Counts<K>>>,
    addr: K,
}

/// The gate is full (in all or for that address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl<K: Ord + Clone> Gate<K> {
    pub fn new(max_total: usize, max_per_addr: usize) -> Self {
        Gate {
            counts: Arc::default(),
            max_total,
            max_per_addr,
        }
    }

    /// A place for a connection from `addr`.
    pub fn enter(&self, addr: K) -> Result<Slot<K>, Full> {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let here = c.by_addr.get(&addr).copied().unwrap_or(0);
        if c.total >= self.max_total || here >= self.max_per_addr {
            c.refused += 1;
            let now = Instant::now();
            c.cooling.retain(|_, (until, _)| *until > now);
            let next = match c.cooling.get(&addr) {
                Some((_, last)) => (*last * 2).min(MAX_COOLING),
                None => FIRST_COOLING,
            };
            c.cooling.insert(addr, (now + next, next));
            return Err(Full);
        }
        c.total += 1;
        c.by_addr.insert(addr.clone(), here + 1);
        Ok(Slot {
            counts: self.counts.clone(),
            addr,
        })
    }

    /// Whether connections from `addr` are ignored now (it was turned away a moment ago);
    /// one that is counts as turned away.
    pub fn cooling(&self, addr: &K) -> bool {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let cool = c
            .cooling
            .get(addr)
            .is_some_and(|(until, _)| *until > Instant::now());
        if cool {
            c.refused += 1;
        }
        cool
    }

    /// Connections waiting for their greeting now.
    pub fn waiting(&self) -> usize {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    /// Connections turned away because the gate was full.
    pub fn refused(&self) -> u64 {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .refused
    }
}

/// The pool of strangers: keyed by address (an IPv4-mapped IPv6 address counts as IPv4).
pub fn strangers() -> Gate<Option<IpAddr>> {
    Gate::new(MAX_UNGREETED, MAX_UNGREETED_PER_ADDR)
}

/// The places of enrolled devices, a few each.
pub fn members<K: Ord + Clone>() -> Gate<K> {
    Gate::new(usize::MAX, MAX_UNGREETED_PER_DEVICE)
}

impl<K: Ord> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.total = c.total.saturating_sub(1);
        let left = c
            .by_addr
            .get(&self.addr)
            .copied()
            .unwrap_or(0)
            .saturating_sub(1);
        if left == 0 {
            c.by_addr.remove(&self.addr);
        } else {
            if let Some(n) = c.by_addr.get_mut(&self.addr) {
                *n = left;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_caps_per_address_and_in_all_and_frees_on_drop() {
        let gate: Gate = Gate::new(3, 2);
        let a: IpAddr = "192.168.1.5".parse().unwrap();
        let mapped = "::ffff:192.168.1.5"
            .parse::<IpAddr>()
            .unwrap()
            .to_canonical();
        let b: IpAddr = "192.168.1.6".parse().unwrap();
        let s1 = gate.enter(Some(a)).unwrap();
        let _s2 = gate.enter(Some(mapped)).unwrap();
        assert_eq!(
            gate.enter(Some(a)).unwrap_err(),
            Full,
            "a third from one address"
        );
        let _s3 = gate.enter(Some(b)).unwrap();
        assert_eq!(gate.enter(None).unwrap_err(), Full, "four in all");
        assert_eq!(gate.waiting(), 3);
        assert_eq!(gate.refused(), 2);
        drop(s1);
        assert_eq!(gate.waiting(), 2);
        let _again = gate.enter(Some(a)).unwrap();
    }

    #[test]
    fn an_address_turned_away_cools_longer_each_time_and_others_do_not() {
        let gate: Gate = Gate::new(10, 1);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let _s = gate.enter(Some(a)).unwrap();
        assert!(!gate.cooling(&Some(a)), "cooling before it was turned away");
        assert_eq!(gate.enter(Some(a)).unwrap_err(), Full);
        assert!(gate.cooling(&Some(a)));
        assert!(!gate.cooling(&Some(b)), "another address cools");
        assert_eq!(
            gate.refused(),
            2,
            "the ignored connection counts as turned away"
        );
        assert_eq!(gate.enter(Some(a)).unwrap_err(), Full);
        let c = gate.counts.lock().unwrap();
        assert_eq!(
            c.cooling.get(&Some(a)).map(|x| x.1),
            Some(2 * FIRST_COOLING)
        );
    }
}
