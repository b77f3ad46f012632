//! The simulated network: who can reach whom under the active partitions, and when a message
//! sent now arrives (or whether it does), from the network's own seeded stream.

use crate::scenario::{Fault, Network, Transport};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Bytes a frame adds on the wire (kind and length, as `node::mesh` frames them).
pub const FRAME_OVERHEAD: u64 = 5;
/// Bytes a dial attempt sends: one QUIC Initial (padded to 1,200 bytes).
pub const DIAL_BYTES: u64 = 1_200;

/// Whether laptops at sites `a` and `b` can reach each other while the partitions `active`
/// (indices into `faults`) are in force.
pub fn reachable(faults: &[Fault], active: &[usize], a: &str, b: &str) -> bool {
    active.iter().all(|&i| match faults.get(i) {
        Some(Fault::Partition {
            sites, together, ..
        }) => {
            let (ia, ib) = (sites.iter().any(|s| s == a), sites.iter().any(|s| s == b));
            if *together {
                ia == ib
            } else {
                a == b || (!ia && !ib)
            }
        }
        _ => true,
    })
}

/// One arrival of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub at: u64,
    /// For a stream: the new time of the last arrival in this direction.
    pub last: Option<u64>,
}

pub struct NetRng(ChaCha8Rng);

impl NetRng {
    pub fn new(seed: u64) -> Self {
        Self(ChaCha8Rng::seed_from_u64(seed))
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.0.random_range(0..n) }
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.0.random_bool(p.clamp(0.0, 1.0))
    }

    /// When a message sent at `now` arrives: a stream delivers once, in order after `last`,
    /// each lost packet costing a retransmission timeout; a datagram may be lost, duplicated,
    /// or overtaken.
    pub fn deliveries(&mut self, n: &Network, now: u64, last: u64) -> Vec<Delivery> {
        let one_way = n.latency_ms + self.below(n.jitter_ms + 1);
        match n.transport {
            Transport::Stream => {
                let rto = (4 * n.latency_ms).max(200);
                let mut at = now + one_way;
                let mut tries = 0;
                while tries < 8 && self.chance(n.loss) {
                    at += rto << tries.min(4);
                    tries += 1;
                }
                let at = at.max(last);
                vec![Delivery { at, last: Some(at) }]
            }
            Transport::Datagram => {
                if self.chance(n.loss) {
                    return Vec::new();
                }
                let mut out = vec![Delivery {
                    at: now + one_way,
                    last: None,
                }];
                if self.chance(n.duplicate) {
                    out.push(Delivery {
                        at: now + one_way + 1 + self.below(n.jitter_ms + 1),
                        last: None,
                    });
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_cut_alone_or_together() {
        let faults = vec![
            Fault::Partition {
                sites: vec!["S1".into(), "S2".into()],
                from: 0.0,
                until: 1.0,
                together: false,
            },
            Fault::Partition {
                sites: vec!["S3".into(), "S4".into()],
                from: 0.0,
                until: 1.0,
                together: true,
            },
        ];
        assert!(reachable(&faults, &[], "S1", "S2"));
        assert!(!reachable(&faults, &[0], "S1", "S2"));
        assert!(reachable(&faults, &[0], "S1", "S1"));
        assert!(!reachable(&faults, &[0], "S1", "HQ"));
        assert!(reachable(&faults, &[0], "S3", "HQ"));
        assert!(reachable(&faults, &[1], "S3", "S4"));
        assert!(!reachable(&faults, &[1], "S3", "HQ"));
    }

    #[test]
    fn streams_keep_order_and_datagrams_do_not() {
        let mut n = Network {
            jitter_ms: 100,
            ..Network::default()
        };
        let mut r = NetRng::new(1);
        let mut last = 0;
        for t in 0..200 {
            let d = r.deliveries(&n, t, last);
            assert_eq!(d.len(), 1);
            assert!(d[0].at >= last);
            last = d[0].at;
        }
        n.transport = Transport::Datagram;
        n.loss = 0.3;
        let got: Vec<usize> = (0..1000).map(|t| r.deliveries(&n, t, 0).len()).collect();
        let lost = got.iter().filter(|&&c| c == 0).count();
        assert!((200..400).contains(&lost), "{lost}");
    }
}
