//! Greedy shrinking of a failing world: try smaller worlds — a fault, a car, a kind of
//! event, a site, a laptop per site, half the people or time, a tamer network — and keep each
//! that still fails, until none does or the budget of runs is spent.

use crate::scenario::{Scenario, Transport};

/// The smaller worlds to try next, most radical first. Candidates the scenario's own checks
/// refuse (or that name sites no longer there) are dropped by the caller's run.
pub fn candidates(sc: &Scenario) -> Vec<Scenario> {
    let mut out = Vec::new();
    let mut with = |f: &dyn Fn(&mut Scenario)| {
        let mut c = sc.clone();
        f(&mut c);
        if c != *sc && c.check().is_ok() {
            out.push(c);
        }
    };
    // Whole faults and cars.
    if !sc.faults.is_empty() {
        with(&|c| c.faults.clear());
    }
    for i in 0..sc.faults.len() {
        with(&|c| {
            c.faults.remove(i);
        });
    }
    for i in 0..sc.cars.len() {
        with(&|c| {
            c.cars.remove(i);
        });
    }
    // Fewer laptops and sites.
    if sc.laptops_per_site > 1 {
        with(&|c| c.laptops_per_site = 1);
        with(&|c| c.laptops_per_site -= 1);
    }
    if sc.shelters > 2 {
        with(&|c| c.shelters -= 1);
        with(&|c| c.shelters = 2);
    }
    if let Some(el) = &sc.election {
        if el.stations > 1 {
            with(&|c| {
                if let Some(e) = c.election.as_mut() {
                    e.stations -= 1;
                }
            });
        }
        if el.early_offices > 1 {
            with(&|c| {
                if let Some(e) = c.election.as_mut() {
                    e.early_offices -= 1;
                }
            });
        }
        with(&|c| {
            if let Some(e) = c.election.as_mut() {
                e.turnout = (e.turnout / 2.0 * 100.0).round() / 100.0;
            }
        });
    }
    // Fewer events.
    if let Some(sh) = &sc.shelter {
        with(&|c| {
            if let Some(s) = c.shelter.as_mut() {
                for p in &mut s.arrivals {
                    p.1 = (p.1 / 2.0 * 100.0).round() / 100.0;
                }
            }
        });
        type Share = fn(&mut crate::scenario::Shelter) -> &mut f64;
        let shares: [Share; 7] = [
            |s| &mut s.walk_in,
            |s| &mut s.car,
            |s| &mut s.move_on,
            |s| &mut s.go_home,
            |s| &mut s.outing,
            |s| &mut s.undo,
            |s| &mut s.status_report_hours,
        ];
        for share in shares {
            with(&|c| {
                if let Some(s) = c.shelter.as_mut() {
                    *share(s) = 0.0;
                }
            });
        }
        if sh.double_registrations > 0 {
            with(&|c| {
                if let Some(s) = c.shelter.as_mut() {
                    s.double_registrations -= 1;
                }
            });
        }
        if sh.variant_walk_ins > 0 {
            with(&|c| {
                if let Some(s) = c.shelter.as_mut() {
                    s.variant_walk_ins = 0;
                }
            });
        }
    }
    if sc.households > 60 {
        with(&|c| c.households = (c.households / 2).max(50));
    }
    // Less time: the faults must still fit.
    with(&|c| {
        let last = c
            .faults
            .iter()
            .map(|f| match f {
                crate::scenario::Fault::Partition { until, .. }
                | crate::scenario::Fault::OneWay { until, .. } => *until,
                crate::scenario::Fault::Crash { restart, .. } => *restart,
                crate::scenario::Fault::LostLaptop { at, .. }
                | crate::scenario::Fault::ClockJump { at, .. }
                | crate::scenario::Fault::ManifestChange { at, .. } => *at,
                crate::scenario::Fault::ClockSkew { .. } => 0.0,
            })
            .fold(0.0f64, f64::max);
        c.hours = ((c.hours / 2.0).max(last).max(0.05) * 100.0).ceil() / 100.0;
    });
    // A tamer network.
    let n = &sc.network;
    if n.loss > 0.0 {
        with(&|c| c.network.loss = 0.0);
    }
    if n.duplicate > 0.0 {
        with(&|c| c.network.duplicate = 0.0);
    }
    if n.jitter_ms > 0 {
        with(&|c| c.network.jitter_ms = 0);
    }
    if n.transport == Transport::Datagram {
        with(&|c| {
            c.network.transport = Transport::Stream;
            c.network.duplicate = 0.0;
        });
    }
    if n.peers_per_node > 0 {
        with(&|c| c.network.peers_per_node = 0);
    }
    out
}

/// Shrink `sc` while `fails` holds, trying at most `budget` candidates.
pub fn shrink(
    mut sc: Scenario,
    fails: &mut dyn FnMut(&Scenario) -> bool,
    budget: usize,
) -> Scenario {
    let mut tried = 0usize;
    'pass: loop {
        for c in candidates(&sc) {
            if tried >= budget {
                break 'pass;
            }
            tried += 1;
            if fails(&c) {
                sc = c;
                continue 'pass;
            }
        }
        break;
    }
    sc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Fault;

    #[test]
    fn shrinking_keeps_what_the_failure_needs_and_drops_the_rest() {
        let mut sc = (0..)
            .map(crate::chaos::world::world)
            .find(|w| w.shelters >= 3 && w.laptops_per_site > 1 && !w.cars.is_empty())
            .unwrap();
        sc.faults.push(Fault::Crash {
            site: "HQ".into(),
            laptop: 0,
            at: 0.1,
            restart: 0.2,
        });
        // A "failure" that needs a crash of HQ and at least two shelters.
        let mut fails = |c: &Scenario| {
            c.shelters >= 2
                && c.faults
                    .iter()
                    .any(|f| matches!(f, Fault::Crash { site, .. } if site == "HQ"))
        };
        let small = shrink(sc.clone(), &mut fails, 10_000);
        assert!(fails(&small));
        assert_eq!(small.faults.len(), 1, "{:?}", small.faults);
        assert!(small.cars.is_empty());
        assert_eq!(small.laptops_per_site, 1);
        assert!(small.network.loss == 0.0 && small.network.jitter_ms == 0);
        assert!(small.hours <= sc.hours);
        // Nothing left to drop: every candidate of the result passes.
        assert!(candidates(&small).iter().all(|c| !fails(c)));
    }
}
