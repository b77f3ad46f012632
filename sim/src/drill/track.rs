//! Who holds which event since when: the bookkeeping behind propagation percentiles and
//! convergence after each heal, shared by Kazashi's run and the baseline's.

use rustc_hash::FxHashMap;

/// Per laptop, the events it holds (a bit per event), and per event when it was written and
/// how many laptops that are up hold it.
#[derive(Debug, Default)]
pub struct Tracker {
    created: Vec<u64>,
    origin: Vec<u32>,
    held: Vec<Vec<u64>>,
    up: Vec<bool>,
    /// When each laptop last came up.
    up_since: Vec<u64>,
    holders_up: Vec<u32>,
    up_count: u32,
    /// Events held by some laptops up but not all of them (kept as `holders_up` and
    /// `up_count` change, so that asking costs nothing per job).
    partial: usize,
    /// Delays, ms, from an event's writing to its arrival at each other laptop that was up
    /// when it was written.
    pub delays: Vec<u32>,
    /// The same for events written while no partition was in force and no laptop was down.
    pub delays_calm: Vec<u32>,
    calm: Vec<bool>,
    heals: Vec<Heal>,
    /// Event → the open heals that wait for it.
    waiting: FxHashMap<u32, Vec<u32>>,
    /// `KAZASHI_DRILL_TRACE=1`: the arrivals after the last partition's heal.
    after_heal: Option<Box<AfterHeal>>,
}

/// The arrivals, after the last partition's heal, of events written before it (a lab trace:
/// `KAZASHI_DRILL_TRACE=1`; nothing in the report depends on it).
#[derive(Debug, Default)]
struct AfterHeal {
    at: Option<u64>,
    /// (origin, receiver, ms after the heal) of each counted arrival within 10 s of it.
    rows: Vec<(u32, u32, u32)>,
}

/// A moment the network came back together (a partition ended, a laptop restarted or was
/// switched on), and when every laptop then up held what any of them held at that moment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Heal {
    pub label: String,
    pub at_ms: u64,
    /// Events some laptop up at `at_ms` lacked then.
    pub missing_events: u32,
    /// Time until none lacked any, if it came.
    pub converged_after_ms: Option<u64>,
    #[serde(skip)]
    remaining: u32,
}

impl Tracker {
    pub fn new(laptops: usize) -> Self {
        Self {
            held: vec![Vec::new(); laptops],
            up: vec![false; laptops],
            up_since: vec![0; laptops],
            after_heal: std::env::var_os("KAZASHI_DRILL_TRACE")
                .is_some()
                .then(Box::default),
            ..Self::default()
        }
    }

    pub fn events(&self) -> usize {
        self.created.len()
    }

    pub fn created_at(&self, e: u32) -> u64 {
        self.created.get(e as usize).copied().unwrap_or(0)
    }

    pub fn origin(&self, e: u32) -> u32 {
        self.origin.get(e as usize).copied().unwrap_or(u32::MAX)
    }

    pub fn holds(&self, laptop: usize, e: u32) -> bool {
        self.held
            .get(laptop)
            .and_then(|b| b.get(e as usize / 64))
            .is_some_and(|w| w & (1 << (e % 64)) != 0)
    }

    pub fn held_count(&self, laptop: usize) -> usize {
        self.held
            .get(laptop)
            .map_or(0, |b| b.iter().map(|w| w.count_ones() as usize).sum())
    }

    pub fn is_up(&self, laptop: usize) -> bool {
        self.up.get(laptop).copied().unwrap_or(false)
    }

    /// A new event, written by `laptop` at `t` (`calm`: with no fault in force). Returns its
    /// index.
    pub fn create(&mut self, laptop: usize, t: u64, calm: bool) -> u32 {
        let e = self.created.len() as u32;
        self.created.push(t);
        self.calm.push(calm);
        self.origin.push(laptop as u32);
        self.holders_up.push(0);
        self.mark(laptop, e);
        e
    }

    /// `laptop` now holds event `e` (from a peer, a bundle, or its own write) at `t`. Returns
    /// false if it already did.
    pub fn gain(&mut self, laptop: usize, e: u32, t: u64) -> bool {
        if self.holds(laptop, e) {
            return false;
        }
        let made = self.created_at(e);
        // Arrivals at a laptop that was down or off when the event was written are catch-up,
        // measured by the heals, not propagation.
        if made >= self.up_since.get(laptop).copied().unwrap_or(0) {
            let d = t.saturating_sub(made).min(u32::MAX as u64) as u32;
            self.delays.push(d);
            if let Some(ah) = self.after_heal.as_mut()
                && let Some(at) = ah.at
                && made < at
                && t >= at
                && t - at < 10_000
            {
                let origin = self.origin.get(e as usize).copied().unwrap_or(u32::MAX);
                ah.rows.push((origin, laptop as u32, (t - at) as u32));
            }
            if self.calm.get(e as usize).copied().unwrap_or(false) {
                self.delays_calm.push(d);
            }
        }
        self.mark(laptop, e);
        self.settle(e, t);
        true
    }

    fn mark(&mut self, laptop: usize, e: u32) {
        let Some(bits) = self.held.get_mut(laptop) else {
            return;
        };
        let w = e as usize / 64;
        if bits.len() <= w {
            bits.resize(w + 1, 0);
        }
        if let Some(word) = bits.get_mut(w) {
            *word |= 1 << (e % 64);
        }
        if self.up.get(laptop).copied().unwrap_or(false)
            && let Some(h) = self.holders_up.get_mut(e as usize)
        {
            let before = *h > 0 && *h < self.up_count;
            *h += 1;
            let after = *h > 0 && *h < self.up_count;
            match (before, after) {
                (false, true) => self.partial += 1,
                (true, false) => self.partial = self.partial.saturating_sub(1),
                _ => {}
            }
        }
    }

    /// Whether every laptop up holds `e` now; closes the heals waiting only for it.
    fn settle(&mut self, e: u32, t: u64) {
        if self.holders_up.get(e as usize).copied().unwrap_or(0) < self.up_count {
            return;
        }
        if let Some(hs) = self.waiting.remove(&e) {
            for h in hs {
                if let Some(heal) = self.heals.get_mut(h as usize) {
                    heal.remaining = heal.remaining.saturating_sub(1);
                    if heal.remaining == 0 && heal.converged_after_ms.is_none() {
                        heal.converged_after_ms = Some(t.saturating_sub(heal.at_ms));
                    }
                }
            }
        }
    }

    /// `laptop` is up (switched on, restarted) or down (crashed, lost, switched off).
    pub fn set_up(&mut self, laptop: usize, up: bool, t: u64) {
        if self.is_up(laptop) == up {
            return;
        }
        if let Some(u) = self.up.get_mut(laptop) {
            *u = up;
        }
        if up {
            if let Some(u) = self.up_since.get_mut(laptop) {
                *u = t;
            }
            self.up_count += 1;
        } else {
            self.up_count = self.up_count.saturating_sub(1);
        }
        let held: Vec<u32> = (0..self.created.len() as u32)
            .filter(|&e| self.holds(laptop, e))
            .collect();
        for e in held {
            if let Some(h) = self.holders_up.get_mut(e as usize) {
                if up {
                    *h += 1;
                } else {
                    *h = h.saturating_sub(1);
                }
            }
        }
        self.partial = self
            .holders_up
            .iter()
            .filter(|&&h| h > 0 && h < self.up_count)
            .count();
        if !up {
            // Fewer laptops to wait for: some open heals may be complete now.
            let waiting: Vec<u32> = self.waiting.keys().copied().collect();
            for e in waiting {
                self.settle(e, t);
            }
        }
    }

    /// Start measuring convergence from this moment.
    pub fn heal(&mut self, label: String, t: u64) {
        if let Some(ah) = self.after_heal.as_mut()
            && label.starts_with("partition")
        {
            ah.at = Some(t);
            ah.rows.clear();
        }
        let idx = self.heals.len() as u32;
        let mut missing = 0u32;
        for e in 0..self.created.len() as u32 {
            let h = self.holders_up.get(e as usize).copied().unwrap_or(0);
            if h > 0 && h < self.up_count {
                missing += 1;
                self.waiting.entry(e).or_default().push(idx);
            }
        }
        self.heals.push(Heal {
            label,
            at_ms: t,
            missing_events: missing,
            converged_after_ms: (missing == 0).then_some(0),
            remaining: missing,
        });
    }

    pub fn heals(&self) -> &[Heal] {
        &self.heals
    }

    /// With `KAZASHI_DRILL_TRACE=1`: when the last partition healed.
    pub fn traced_heal(&self) -> Option<u64> {
        self.after_heal.as_ref()?.at
    }

    /// With `KAZASHI_DRILL_TRACE=1`: where the arrivals after the last partition's heal came,
    /// by origin and by receiver (count, and mean, least and most seconds after the heal), and
    /// their overall mean —
    /// what shifts the propagation p99 when it is set by events written behind the partition.
    pub fn after_heal_summary(&self) -> Option<String> {
        let ah = self.after_heal.as_ref()?;
        // Nothing until a partition healed.
        ah.at?;
        // Seconds, from the arrivals' milliseconds.
        let mean = |v: &[u32]| {
            if v.is_empty() {
                0.0
            } else {
                v.iter().map(|&d| f64::from(d)).sum::<f64>() / v.len() as f64 / 1000.0
            }
        };
        let secs = |d: u32| f64::from(d) / 1000.0;
        let all: Vec<u32> = ah.rows.iter().map(|r| r.2).collect();
        let mut by_origin: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
        let mut by_receiver: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
        for &(o, r, d) in &ah.rows {
            by_origin.entry(o).or_default().push(d);
            by_receiver.entry(r).or_default().push(d);
        }
        let fmt = |m: &std::collections::BTreeMap<u32, Vec<u32>>| {
            m.iter()
                .map(|(k, v)| {
                    let mut s = v.clone();
                    s.sort_unstable();
                    format!(
                        "{k}:{}x{:.3}[{:.3}-{:.3}]",
                        v.len(),
                        mean(v),
                        secs(s.first().copied().unwrap_or(0)),
                        secs(s.last().copied().unwrap_or(0))
                    )
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        Some(format!(
            "after the last partition's heal: {} arrivals, mean {:.4} s\n  by origin: {}\n  by receiver: {}",
            all.len(),
            mean(&all),
            fmt(&by_origin),
            fmt(&by_receiver)
        ))
    }

    /// Events held by some laptop that is up and not by every one.
    pub fn unconverged(&self) -> usize {
        self.partial
    }

    /// Events no laptop that is up holds (gone with a lost laptop, or on one that is down).
    pub fn unheld(&self) -> Vec<u32> {
        (0..self.created.len() as u32)
            .filter(|&e| self.holders_up.get(e as usize).copied().unwrap_or(0) == 0)
            .collect()
    }
}

/// Percentiles of a sample (nearest rank), in its unit.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.clamp(1, sorted.len()) - 1)
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heal_converges_when_every_laptop_up_holds_what_any_held() {
        let mut t = Tracker::new(3);
        for l in 0..3 {
            t.set_up(l, true, 0);
        }
        let a = t.create(0, 100, true);
        let b = t.create(1, 200, false);
        t.heal("x".into(), 1000);
        assert_eq!(t.heals()[0].missing_events, 2);
        assert!(t.gain(1, a, 1100));
        assert!(!t.gain(1, a, 1150));
        t.gain(2, a, 1200);
        t.gain(0, b, 1300);
        assert_eq!(t.heals()[0].converged_after_ms, None);
        // Laptop 2 crashes: nobody else waits for b.
        t.set_up(2, false, 1400);
        assert_eq!(t.heals()[0].converged_after_ms, Some(400));
        assert_eq!(t.delays, vec![1000, 1100, 1100]);
        assert_eq!(t.delays_calm, vec![1000, 1100]);
        assert_eq!(percentile(&[1, 2, 3, 4], 50.0), 2);
        assert_eq!(percentile(&[1, 2, 3, 4], 99.0), 4);
    }

    /// What `unconverged` counted before it was kept up to date: a walk over every event.
    fn walked(t: &Tracker) -> usize {
        t.holders_up
            .iter()
            .filter(|&&h| h > 0 && h < t.up_count)
            .count()
    }

    #[test]
    fn the_unconverged_count_follows_gains_crashes_and_restarts() {
        let mut t = Tracker::new(4);
        for l in 0..3 {
            t.set_up(l, true, 0);
        }
        let mut seen = Vec::new();
        let a = t.create(0, 10, true);
        seen.push(t.unconverged());
        let b = t.create(3, 20, false); // written on a laptop that is off
        seen.push(t.unconverged());
        t.gain(1, a, 30);
        seen.push(t.unconverged());
        t.gain(2, a, 40);
        seen.push(t.unconverged());
        t.set_up(3, true, 50); // holds b, lacks a
        seen.push(t.unconverged());
        t.gain(3, a, 60);
        t.gain(0, b, 70);
        seen.push(t.unconverged());
        t.set_up(0, false, 80); // only laptop 3 and 0 held b
        seen.push(t.unconverged());
        t.gain(1, b, 90);
        t.gain(2, b, 95);
        seen.push(t.unconverged());
        t.set_up(0, true, 99);
        seen.push(t.unconverged());
        assert_eq!(seen, vec![1, 1, 1, 0, 2, 1, 1, 0, 0]);
        assert_eq!(t.unconverged(), walked(&t));
    }
}
