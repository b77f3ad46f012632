//! The baseline: VxPollBook-style sync, replayed on the same writes and faults as Kazashi's
//! run. Every 100 ms each laptop pulls from three random laptops it can reach, sending the
//! highest event number it holds per origin (each laptop's timer at a phase of its own, drawn
//! from the seed: real laptops' timers are not in step with each other, nor with the instant a
//! fault heals); the peer answers with the events after those, in
//! origin order, at most 500 per page. Events of one origin therefore always arrive as a
//! prefix. There is no relay beyond pulling, no merge of documents and no USB path other than
//! the same car runs (a car leaves every event it carries, as a prefix per origin).
//!
//! A laptop's pulls while no laptop could learn anything (every pair that can reach each other
//! holds the same prefixes) are skipped in one step to its first pull after the next write or
//! fault, their requests and empty answers counted on the wire, so a quiet night costs
//! nothing to simulate.

use super::net::{FRAME_OVERHEAD, NetRng, reachable};
use super::report::{Sample, SyncFigures};
use super::track::Tracker;
use super::{Trace, Wire};
use crate::scenario::{Fault, Network, Scenario};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

const TICK_MS: u64 = 100;
const FANOUT: usize = 3;
const PAGE: usize = 500;
/// A request: header plus (origin, highest number) per origin.
const REQ_HEADER: u64 = 16;
const REQ_PER_ORIGIN: u64 = 36;
/// An answer: header plus per event its number and origin besides the envelope.
const RESP_HEADER: u64 = 16;
const RESP_PER_EVENT: u64 = 40;

#[derive(Debug)]
enum Job {
    /// Laptop `.0`'s pull timer.
    Tick(usize),
    Request {
        from: usize,
        to: usize,
        has: Vec<u32>,
    },
    Response {
        to: usize,
        events: Vec<u32>,
    },
}

pub struct Baseline {
    net: Network,
    faults: Vec<Fault>,
    sites: Vec<String>,
    start: u64,
    rng: NetRng,
    track: Tracker,
    /// Per origin laptop, its events in order (indices into the tracker).
    by_origin: Vec<Vec<u32>>,
    /// The position of each event in its origin's list.
    seq_of: Vec<u32>,
    sizes: Vec<u32>,
    /// Per laptop, per origin: how many of that origin's events it holds.
    has: Vec<Vec<u32>>,
    up: Vec<bool>,
    active: Vec<usize>,
    /// Per car, per origin: the prefix it carries.
    cars: Vec<Vec<u32>>,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    jobs: std::collections::BTreeMap<u64, Job>,
    seq: u64,
    now: u64,
    wire: Wire,
    /// Per laptop, the offset of its pull timer in each `TICK_MS` period.
    phase: Vec<u64>,
    /// Bumped by every change [`Baseline::quiet`] reads: what a laptop holds, who is up, the
    /// partitions, the answers in flight.
    version: u64,
    /// [`Baseline::quiet`] as of `.0` (a version).
    quiet_at: Option<(u64, bool)>,
}

impl Baseline {
    pub fn new(sc: &Scenario, sites: &[String], start: u64, _end: u64) -> Self {
        let n = sites.len();
        Self {
            net: sc.network.clone(),
            faults: sc.faults.clone(),
            sites: sites.to_vec(),
            start,
            rng: NetRng::new(sc.seed ^ 0x7678_706f_6c6c),
            track: Tracker::new(n),
            by_origin: vec![Vec::new(); n],
            seq_of: Vec::new(),
            sizes: Vec::new(),
            has: vec![vec![0; n]; n],
            up: vec![false; n],
            active: Vec::new(),
            cars: vec![vec![0; n]; sc.cars.len()],
            queue: BinaryHeap::new(),
            jobs: std::collections::BTreeMap::new(),
            seq: 0,
            now: start,
            wire: Wire::default(),
            phase: {
                let mut phases = NetRng::new(sc.seed ^ 0x0070_6861_7365);
                (0..n).map(|_| phases.below(TICK_MS)).collect()
            },
            version: 0,
            quiet_at: None,
        }
    }

    fn push(&mut self, t: u64, job: Job) {
        if matches!(job, Job::Response { .. }) {
            self.version += 1;
        }
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq)));
        self.jobs.insert(self.seq, job);
    }

    fn can_reach(&self, a: usize, b: usize) -> bool {
        a != b
            && self.up.get(a).copied().unwrap_or(false)
            && self.up.get(b).copied().unwrap_or(false)
            && match (self.sites.get(a), self.sites.get(b)) {
                (Some(x), Some(y)) => reachable(&self.faults, &self.active, x, y),
                _ => false,
            }
    }

    /// The laptops `a` can reach now.
    fn reached_by(&self, a: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.up.len()).filter(move |&b| self.can_reach(a, b))
    }

    /// Laptop `l` takes the events of `origin` numbered `from..to` it lacks, in order.
    fn take(&mut self, l: usize, origin: usize, upto: u32) {
        let have = self
            .has
            .get(l)
            .and_then(|h| h.get(origin))
            .copied()
            .unwrap_or(0);
        if upto <= have {
            return;
        }
        for s in have..upto {
            if let Some(&e) = self.by_origin.get(origin).and_then(|v| v.get(s as usize)) {
                self.track.gain(l, e, self.now);
            }
        }
        if let Some(h) = self.has.get_mut(l).and_then(|h| h.get_mut(origin)) {
            *h = upto;
        }
        self.version += 1;
    }

    fn apply(&mut self, item: &Trace) {
        self.version += 1;
        match item {
            Trace::Create { laptop, size, calm } => {
                let e = self.track.create(*laptop, self.now, *calm);
                let list = match self.by_origin.get_mut(*laptop) {
                    Some(l) => l,
                    None => return,
                };
                self.seq_of.push(list.len() as u32);
                list.push(e);
                self.sizes.push(*size);
                let n = list.len() as u32;
                if let Some(h) = self.has.get_mut(*laptop).and_then(|h| h.get_mut(*laptop)) {
                    *h = n;
                }
            }
            Trace::Up(l) => {
                if let Some(u) = self.up.get_mut(*l) {
                    *u = true;
                }
                self.track.set_up(*l, true, self.now);
            }
            Trace::Down(l) => {
                if let Some(u) = self.up.get_mut(*l) {
                    *u = false;
                }
                self.track.set_up(*l, false, self.now);
            }
            Trace::Partitions(a) => self.active = a.clone(),
            Trace::Heal(label) => self.track.heal(label.clone(), self.now),
            Trace::CarStop { car, laptop } => {
                let carried = self.cars.get(*car).cloned().unwrap_or_default();
                for (o, &upto) in carried.iter().enumerate() {
                    self.take(*laptop, o, upto);
                }
                let held = self.has.get(*laptop).cloned().unwrap_or_default();
                let bytes: u64 = held
                    .iter()
                    .enumerate()
                    .map(|(o, &k)| {
                        self.by_origin.get(o).map_or(0, |v| {
                            v.iter()
                                .take(k as usize)
                                .map(|&e| self.size(e) + RESP_PER_EVENT)
                                .sum::<u64>()
                        })
                    })
                    .sum();
                self.wire.usb_bytes += bytes;
                self.wire.bundles += 1;
                if let Some(c) = self.cars.get_mut(*car) {
                    for (o, &k) in held.iter().enumerate() {
                        if let Some(x) = c.get_mut(o) {
                            *x = (*x).max(k);
                        }
                    }
                }
            }
        }
    }

    fn size(&self, e: u32) -> u64 {
        u64::from(self.sizes.get(e as usize).copied().unwrap_or(0))
    }

    /// Which side of every active partition a site is on: laptops reach each other exactly
    /// when their keys are equal (each partition splits the sites into classes, and the
    /// classes of several partitions intersect).
    fn side_key(&self, site: &str) -> Vec<usize> {
        self.active
            .iter()
            .map(|&i| match self.faults.get(i) {
                Some(Fault::Partition {
                    sites, together, ..
                }) => match sites.iter().position(|s| s == site) {
                    None => 0,
                    Some(_) if *together => 1,
                    Some(p) => p + 1,
                },
                _ => 0,
            })
            .collect()
    }

    /// Whether no pull could bring anything now: no answer in flight carries news, and within
    /// each group of laptops that reach one another every laptop holds the group's longest
    /// prefix of every origin.
    fn quiet(&mut self) -> bool {
        match self.quiet_at {
            Some((v, q)) if v == self.version => q,
            _ => {
                let q = self.compute_quiet();
                self.quiet_at = Some((self.version, q));
                q
            }
        }
    }

    fn compute_quiet(&self) -> bool {
        // Requests in flight are answered from the peers' prefixes (checked below); an answer
        // in flight matters only if it carries an event its recipient lacks.
        let useful = self.jobs.values().any(|j| match j {
            Job::Response { to, events } => events.iter().any(|&e| !self.track.holds(*to, e)),
            _ => false,
        });
        if useful {
            return false;
        }
        let mut groups: std::collections::BTreeMap<Vec<usize>, Vec<usize>> =
            std::collections::BTreeMap::new();
        for (a, up) in self.up.iter().enumerate() {
            if *up {
                let key = self.side_key(self.sites.get(a).map_or("", String::as_str));
                groups.entry(key).or_default().push(a);
            }
        }
        for members in groups.values() {
            let n = self.has.first().map_or(0, Vec::len);
            let mut max = vec![0u32; n];
            for &a in members {
                for (m, h) in max.iter_mut().zip(self.has.get(a).into_iter().flatten()) {
                    *m = (*m).max(*h);
                }
            }
            if members.iter().any(|&a| self.has.get(a) != Some(&max)) {
                return false;
            }
        }
        true
    }

    fn request_bytes(&self) -> u64 {
        REQ_HEADER + REQ_PER_ORIGIN * self.by_origin.iter().filter(|v| !v.is_empty()).count() as u64
    }

    /// Laptop `a`'s pull: requests to up to `FANOUT` laptops it can reach.
    fn tick(&mut self, a: usize) {
        if !self.up.get(a).copied().unwrap_or(false) {
            return;
        }
        let mut pool: Vec<usize> = self.reached_by(a).collect();
        let mut chosen = Vec::new();
        for _ in 0..FANOUT.min(pool.len()) {
            let i = self.rng.below(pool.len() as u64) as usize;
            chosen.push(pool.swap_remove(i));
        }
        let has = self.has.get(a).cloned().unwrap_or_default();
        for b in chosen {
            let bytes = self.request_bytes();
            self.send(bytes, || Job::Request {
                from: a,
                to: b,
                has: has.clone(),
            });
        }
    }

    /// One frame of `bytes` on the wire, counted, and `job` at each of its deliveries.
    fn send(&mut self, bytes: u64, job: impl Fn() -> Job) {
        self.wire.messages += 1;
        self.wire.bytes += bytes + FRAME_OVERHEAD;
        for d in self.rng.deliveries(&self.net, self.now, 0) {
            self.push(d.at, job());
        }
    }

    fn request(&mut self, from: usize, to: usize, has: Vec<u32>) {
        if !self.can_reach(from, to) {
            return;
        }
        let mut events = Vec::new();
        let theirs = self.has.get(to).cloned().unwrap_or_default();
        'outer: for (o, (&want, &got)) in has.iter().zip(theirs.iter()).enumerate() {
            for s in want..got {
                if events.len() >= PAGE {
                    break 'outer;
                }
                if let Some(&e) = self.by_origin.get(o).and_then(|v| v.get(s as usize)) {
                    events.push(e);
                }
            }
        }
        let bytes = RESP_HEADER
            + events
                .iter()
                .map(|&e| self.size(e) + RESP_PER_EVENT)
                .sum::<u64>();
        self.send(bytes, || Job::Response {
            to: from,
            events: events.clone(),
        });
    }

    fn response(&mut self, to: usize, events: Vec<u32>) {
        if !self.up.get(to).copied().unwrap_or(false) {
            return;
        }
        for e in events {
            let o = self.track.origin(e) as usize;
            let s = self.seq_of.get(e as usize).copied().unwrap_or(u32::MAX);
            let have = self
                .has
                .get(to)
                .and_then(|h| h.get(o))
                .copied()
                .unwrap_or(0);
            if s == have {
                self.take(to, o, s + 1);
            }
        }
    }

    /// Replay `trace`; fill in the samples' baseline wire bytes.
    pub(crate) fn run(&mut self, trace: &[(u64, Trace)], samples: &mut [Sample]) -> SyncFigures {
        let mut next_trace = 0usize;
        let mut next_sample = 0usize;
        for a in 0..self.up.len() {
            let first = self.start + self.phase.get(a).copied().unwrap_or(0);
            self.push(first, Job::Tick(a));
        }
        let last_trace = trace.last().map_or(self.start, |(t, _)| *t);
        loop {
            let next_job = self.queue.peek().map(|Reverse((t, _))| *t);
            let trace_t = trace.get(next_trace).map(|(t, _)| *t);
            // Samples are taken at their time, before anything at that time happens.
            let sample_t = samples
                .get(next_sample)
                .map(|s| self.start + (s.hour * 3_600_000.0).round() as u64);
            let t = [next_job, trace_t].into_iter().flatten().min();
            if let (Some(st), Some(t)) = (sample_t, t)
                && st <= t
            {
                if let Some(s) = samples.get_mut(next_sample) {
                    s.baseline_wire_bytes = Some(self.wire.bytes);
                }
                next_sample += 1;
                continue;
            }
            let Some(t) = t else { break };
            if trace_t == Some(t) && next_job.is_none_or(|j| j >= t) {
                self.now = t;
                if let Some((_, item)) = trace.get(next_trace) {
                    self.apply(item);
                }
                next_trace += 1;
                continue;
            }
            let Some(Reverse((t, seq))) = self.queue.pop() else {
                break;
            };
            self.now = t;
            let Some(job) = self.jobs.remove(&seq) else {
                continue;
            };
            if matches!(job, Job::Response { .. }) {
                self.version += 1;
            }
            match job {
                Job::Tick(a) => {
                    let done = next_trace >= trace.len() && self.track.unconverged() == 0;
                    if (done || (t > last_trace && self.quiet())) && next_trace >= trace.len() {
                        // Nothing left to learn, and nothing more will be written.
                        break;
                    }
                    if self.quiet() {
                        // Nothing to learn until the next write, fault or sample: skip this
                        // laptop's pulls to its first one at or after it, counting the idle
                        // pulls (a request and an empty answer each).
                        let until = [trace_t, sample_t]
                            .into_iter()
                            .flatten()
                            .min()
                            .unwrap_or(t)
                            .max(t);
                        let ticks = (until - t).div_ceil(TICK_MS).max(1);
                        let pulls = self.reached_by(a).count().min(FANOUT) as u64;
                        let per = self.request_bytes() + RESP_HEADER + 2 * FRAME_OVERHEAD;
                        self.wire.messages += 2 * pulls * ticks;
                        self.wire.bytes += pulls * ticks * per;
                        self.push(t + ticks * TICK_MS, Job::Tick(a));
                        continue;
                    }
                    self.tick(a);
                    self.push(t + TICK_MS, Job::Tick(a));
                }
                Job::Request { from, to, has } => self.request(from, to, has),
                Job::Response { to, events } => self.response(to, events),
            }
        }
        SyncFigures::from_tracker(&self.track, self.wire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two laptops on a network that neither loses nor delays unevenly; laptop 0 writes one
    /// event on a whole tick of the clock (as faults heal in the scenarios). The event reaches
    /// laptop 1 at its next pull and one round trip: its pull timer's own phase, not the
    /// instant of the write.
    fn delay_of_one_event(seed: u64) -> u32 {
        let text = format!(
            r#"name = "two"
kind = "shelter"
seed = {seed}
households = 10
start_date = "2026-09-01"
hours = 1
shelters = 2
[network]
latency_ms = 20
jitter_ms = 0
loss = 0.0
[shelter]
arrivals = [[0, 10]]
"#
        );
        let sc = Scenario::parse(&text).expect("scenario");
        let sites = ["S001".to_string(), "S002".to_string()];
        let mut b = Baseline::new(&sc, &sites, 0, 3_600_000);
        let trace = [
            (0, Trace::Up(0)),
            (0, Trace::Up(1)),
            (
                10_000,
                Trace::Create {
                    laptop: 0,
                    size: 100,
                    calm: true,
                },
            ),
        ];
        let figures = b.run(&trace, &mut []);
        assert_eq!(figures.propagation.samples, 1);
        figures.propagation.p50_ms
    }

    #[test]
    fn each_laptop_pulls_at_a_phase_of_its_own() {
        let delays: Vec<u32> = (0..16).map(delay_of_one_event).collect();
        // One round trip (40 ms) after the pull, which comes within a period of the write.
        assert!(
            delays.iter().all(|d| (40..40 + TICK_MS as u32).contains(d)),
            "{delays:?}"
        );
        // Timers in step with the clock would give 40 ms every time.
        let distinct: std::collections::BTreeSet<u32> = delays.iter().copied().collect();
        assert!(distinct.len() >= 8, "{delays:?}");
        // The same seed, the same run.
        assert_eq!(delay_of_one_event(3), delay_of_one_event(3));
    }
}
