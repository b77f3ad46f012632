//! The greeting gate (a part of [`crate::mesh`]): how many accepted connections may wait for
//! their greeting at once. A connection is authenticated by its TLS key, but any key will do
//! until the greeting is checked, so a stranger can open connections for nothing; each costs
//! a task and buffers until it greets or its time runs out ([`crate::link::LinkConfig::greeting_ms`],
//! which also bounds the wait for its first stream). Strangers (keys the manifest in force
//! does not enrol) share one pool, capped in all ([`MAX_UNGREETED`]) and per remote address
//! ([`MAX_UNGREETED_PER_ADDR`]), so that a flood of them never keeps an enrolled laptop out;
//! enrolled devices have their own places, a few each ([`MAX_UNGREETED_PER_DEVICE`]). One
//! over is closed at once, before anything is read. Greeted connections do not count.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

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
}

impl<K> Default for Counts<K> {
    fn default() -> Self {
        Counts {
            total: 0,
            by_addr: BTreeMap::new(),
            refused: 0,
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
            return Err(Full);
        }
        c.total += 1;
        c.by_addr.insert(addr.clone(), here + 1);
        Ok(Slot {
            counts: self.counts.clone(),
            addr,
        })
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
}
