//! The drill's network side: which laptops link, their connections, and the jobs that carry
//! frames and timers between them.
//!
//! Each end of a connection is the node's own connection policy, [`SyncLink`] — the machine
//! `node::mesh` runs over iroh — so the drill runs the real greeting, push, anti-entropy,
//! pings and lost-after. The engine only performs its actions on simulated time: a frame
//! becomes a delivery job on the simulated network, a timer request becomes one pending timer
//! job per side (a newer, earlier request makes the older job stale: it carries a generation
//! and is ignored), a close ends the connection on both sides. Redials follow the mesh's
//! dial loop ([`Backoff`]): the lesser laptop of a link dials; a dial that cannot reach the
//! other end fails after [`kazashi_node::link::DIAL_TIMEOUT_MS`] and the loop waits twice as long each time, up to
//! `reconnect_s`. Across its loops each laptop runs the mesh's rejoin policy
//! ([`Rejoin`], keyed by link, seeded per laptop): while a peer it dials and had greeted is
//! disconnected it probes one such peer about every [`kazashi_node::redial::PROBE_GAP_MS`],
//! and a greeting with a peer lost before kicks its other lost loops at once. The drill does not
//! step the probes: at each instant where reachability changes ([`Engine::redial`]) the failed
//! ones are counted and the first that can succeed is queued. Handshakes take no time here, so
//! the policy's cap on those in flight never binds. Each attempt counts on the wire as one
//! QUIC Initial ([`net::DIAL_BYTES`]).

use super::{Engine, Job, Status, net};
use crate::scenario::{Network, Transport};
use kazashi_node::link::{
    Action, Backoff, Ended, FRAME_HELLO, FRAME_MANIFEST, FRAME_SYNC, Hello, Link as LinkState,
    LinkConfig, Role, SyncLink,
};
use kazashi_node::redial::Rejoin;
use net::Delivery;

/// One live connection: side 0 is the dialler (`Link::ends[0]`), side 1 accepted it.
pub(super) struct Conn {
    pub(super) id: u64,
    sides: [SyncLink; 2],
    /// Per direction, when the last frame arrives (streams keep order).
    last: [u64; 2],
    /// Per side, the pending timer job: its instant and generation.
    timers: [(Option<u64>, u64); 2],
    /// Per direction, when the sender's greeting arrives: nothing it sends arrives earlier.
    hello_at: [u64; 2],
    /// Per side, whether its machine went live (reported to its laptop's [`Rejoin`]).
    greeted: [bool; 2],
}

impl Conn {
    /// Whether side `side`'s machine is live (greeted).
    pub(super) fn live(&self, side: usize) -> bool {
        self.sides.get(side).is_some_and(SyncLink::is_live)
    }
}

/// Two laptops that dial each other whenever they can.
pub(super) struct Link {
    pub(super) ends: [usize; 2],
    pub(super) conn: Option<Conn>,
    /// A dial is queued (generation `dial_gen`).
    dialling: bool,
    /// Bumped when the dialler goes down: its queued dial is stale.
    dial_gen: u64,
    backoff: Backoff,
    /// The start of the dial attempt that failed last; the loop is backing off since.
    failed_at: Option<u64>,
}

impl Engine {
    /// The connection policy's timings: the scenario's anti-entropy, the mesh's others.
    fn link_config(&self) -> LinkConfig {
        LinkConfig {
            anti_entropy_ms: (self.sc.network.anti_entropy_s * 1000.0) as u64,
            ..LinkConfig::default()
        }
    }

    /// The mesh's dial loop for `link` (it probes while the peer is out of reach), its cap the
    /// scenario's `reconnect_s`, its jitter seeded from the network's seed and the link.
    fn fresh_backoff(&self, link: usize) -> Backoff {
        Backoff::mesh()
            .capped((self.sc.network.reconnect_s * 1000.0) as u64)
            .seeded(
                self.sc.seed
                    ^ 0x6469_616c_6c6f_6f70
                    ^ (link as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            )
    }

    /// Each laptop's rejoin policy over the links it is an end of (the ones it dials are its
    /// loops), seeded from the network's seed and the laptop.
    fn fresh_rejoins(&self) -> Vec<Rejoin<usize>> {
        (0..self.laptops.len())
            .map(|l| {
                Rejoin::new(
                    self.sc.seed
                        ^ 0x726a_6f69_6e00_0000
                        ^ (l as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                )
            })
            .collect()
    }

    /// A dial attempt on the wire: one QUIC Initial, counted with the frames (it is lost when
    /// the peer is out of reach, but it was sent).
    fn count_dials(&mut self, attempts: u64) {
        self.wire.messages += attempts;
        self.wire.bytes += attempts * net::DIAL_BYTES;
    }

    /// Laptops at one site all link; every laptop links to the command center's first laptop
    /// and to `peers_per_node` others chosen with the network's seed.
    pub(super) fn build_links(&mut self) {
        let n = self.laptops.len();
        let mut pairs = std::collections::BTreeSet::new();
        let hq = self.hq();
        for a in 0..n {
            for b in (a + 1)..n {
                if self.laptops.get(a).map(|l| l.site) == self.laptops.get(b).map(|l| l.site) {
                    pairs.insert((a, b));
                }
            }
            if let Some(h) = hq
                && h != a
            {
                pairs.insert((a.min(h), a.max(h)));
            }
            for _ in 0..self.sc.network.peers_per_node {
                if n < 2 {
                    break;
                }
                let b = self.net_rng.below(n as u64) as usize;
                if b != a {
                    pairs.insert((a.min(b), a.max(b)));
                }
            }
        }
        self.rejoin = self.fresh_rejoins();
        for (a, b) in pairs {
            let ix = self.links.len();
            if let Some(r) = self.rejoin.get_mut(a) {
                r.dials(ix);
            }
            let backoff = self.fresh_backoff(ix);
            self.links.push(Link {
                ends: [a, b],
                conn: None,
                dialling: false,
                dial_gen: 0,
                backoff,
                failed_at: None,
            });
            for l in [a, b] {
                if let Some(lp) = self.laptops.get_mut(l) {
                    lp.links.push(ix);
                }
            }
        }
    }

    /// Queue a dial on `link` at `t`.
    fn dial_at(&mut self, link: usize, t: u64) {
        let Some(k) = self.links.get_mut(link) else {
            return;
        };
        k.dialling = true;
        let generation = k.dial_gen;
        self.push(t, Job::Connect { link, generation });
    }

    /// Every link dials at the start.
    pub(super) fn dial_all(&mut self) {
        for l in 0..self.links.len() {
            self.dial_at(l, self.now);
        }
    }

    pub(super) fn reachable(&self, a: usize, b: usize) -> bool {
        let (Some(la), Some(lb)) = (self.laptops.get(a), self.laptops.get(b)) else {
            return false;
        };
        la.status == Status::Up
            && lb.status == Status::Up
            && !self.one_way_lost(a, b)
            && !self.one_way_lost(b, a)
            && net::reachable(
                &self.sc.faults,
                &self.active,
                la.site.as_str(),
                lb.site.as_str(),
            )
    }

    fn up(&self, laptop: usize) -> bool {
        self.laptops
            .get(laptop)
            .is_some_and(|l| l.status == Status::Up)
    }

    /// Put a frame on the simulated network. The greeting travels as the connection's
    /// handshake does — reliably, once, and ahead of anything its sender says next — even on
    /// the datagram network, whose losses, duplicates and overtaking are meant for the sync
    /// protocol's messages (a real connection's stream never does any of it). A manifest
    /// frame travels reliably too: the connection policy sends one once per connection and
    /// version, trusting the stream (a chaos world lost one on the datagram network and the
    /// new manifest never spread while the connections stayed up).
    fn send(&mut self, link: usize, from: u8, kind: u8, bytes: Vec<u8>) {
        let Some(k) = self.links.get_mut(link) else {
            return;
        };
        let Some(conn) = k.conn.as_mut() else { return };
        self.wire.messages += 1;
        self.wire.bytes += bytes.len() as u64 + net::FRAME_OVERHEAD;
        let to = 1 - from;
        let id = conn.id;
        let ends = k.ends;
        if let (Some(&a), Some(&b)) = (ends.get(usize::from(from)), ends.get(usize::from(to)))
            && self.frame_lost(id, from, a, b)
        {
            return;
        }
        let Some(conn) = self.links.get_mut(link).and_then(|k| k.conn.as_mut()) else {
            return;
        };
        let dir = usize::from(from);
        let last = conn.last.get(dir).copied().unwrap_or(0);
        // The greeting and a manifest travel reliably on any network (see `send`'s doc).
        let times = if kind == FRAME_HELLO || kind == FRAME_MANIFEST {
            let handshake = Network {
                transport: Transport::Stream,
                ..self.sc.network.clone()
            };
            self.net_rng.deliveries(&handshake, self.now, last)
        } else {
            self.net_rng.deliveries(&self.sc.network, self.now, last)
        };
        if let Some(Delivery { last: Some(l), .. }) = times.first()
            && let Some(slot) = conn.last.get_mut(dir)
        {
            *slot = *l;
        }
        if kind == FRAME_HELLO
            && let (Some(d), Some(slot)) = (times.first(), conn.hello_at.get_mut(dir))
        {
            *slot = d.at;
        }
        let not_before = conn.hello_at.get(dir).copied().unwrap_or(0);
        for d in times {
            self.push(
                d.at.max(not_before),
                Job::Deliver {
                    link,
                    conn: id,
                    to,
                    kind,
                    bytes: bytes.clone(),
                },
            );
        }
    }

    /// `KAZASHI_DRILL_TRACE=1`: within 1.5 s of the last partition's heal, what the links do
    /// (on stderr; a lab trace, nothing in the report depends on it).
    fn trace_link(&self, link: usize, what: std::fmt::Arguments<'_>) {
        let Some(at) = self.track.traced_heal() else {
            return;
        };
        if self.now < at || self.now >= at + 1_500 {
            return;
        }
        let name = |l: usize| self.laptops.get(l).map_or("?", |x| x.label.as_str());
        let ends = self.links.get(link).map_or([0, 0], |k| k.ends);
        eprintln!(
            "trace +{:?} link {link} {}>{}: {what}",
            std::time::Duration::from_millis(self.now - at),
            name(ends[0]),
            name(ends[1])
        );
    }

    /// Perform what side `side` of the connection on `link` asked for.
    fn perform(&mut self, link: usize, side: u8, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send { kind, body } => self.send(link, side, kind, body),
                Action::Close { code, reason } => {
                    self.stats.closed_by_policy += 1;
                    self.hang_up(
                        link,
                        side,
                        Ended::ByPeer {
                            code: u64::from(code),
                            reason: reason.to_owned(),
                        },
                    );
                    return;
                }
                Action::Timer { at } => self.arm(link, side, at),
                Action::Gained { ids } => {
                    let Some(&laptop) = self
                        .links
                        .get(link)
                        .and_then(|k| k.ends.get(usize::from(side)))
                    else {
                        continue;
                    };
                    self.gained(laptop, &ids);
                    self.heard_from(laptop, &ids);
                    self.bump(laptop);
                }
                Action::Failed(_) => {
                    let laptop = self
                        .links
                        .get(link)
                        .and_then(|k| k.ends.get(usize::from(side)))
                        .and_then(|&l| self.laptops.get(l))
                        .map(|l| l.label.clone())
                        .unwrap_or_default();
                    *self
                        .refusals
                        .entry(format!("sync at {laptop}: laptop error"))
                        .or_default() += 1;
                }
                Action::Adopted { .. } => {
                    if let Some(&laptop) = self
                        .links
                        .get(link)
                        .and_then(|k| k.ends.get(usize::from(side)))
                    {
                        self.bump(laptop);
                    }
                }
                Action::Status {
                    link: LinkState::Connected,
                    ..
                } => self.greeted(link, side),
                Action::Status { .. } | Action::Differing(_) => {}
            }
        }
    }

    /// Side `side` wants a tick at `at`: queue a timer job unless one is pending no later.
    fn arm(&mut self, link: usize, side: u8, at: u64) {
        let Some(conn) = self.links.get_mut(link).and_then(|k| k.conn.as_mut()) else {
            return;
        };
        let id = conn.id;
        let Some(slot) = conn.timers.get_mut(usize::from(side)) else {
            return;
        };
        if slot.0.is_some_and(|pending| pending <= at) {
            // The pending job comes first; the machine asks again when it fires.
            return;
        }
        slot.1 += 1;
        slot.0 = Some(at);
        let generation = slot.1;
        let t = at.max(self.now);
        self.push(
            t,
            Job::Timer {
                link,
                conn: id,
                side,
                generation,
            },
        );
    }

    pub(super) fn timer(&mut self, link: usize, conn: u64, side: u8, generation: u64) {
        let Some(k) = self.links.get_mut(link) else {
            return;
        };
        let Some(c) = k.conn.as_mut() else { return };
        if c.id != conn {
            return;
        }
        let Some(slot) = c.timers.get_mut(usize::from(side)) else {
            return;
        };
        if slot.1 != generation {
            return;
        }
        slot.0 = None;
        let Some(&laptop) = k.ends.get(usize::from(side)) else {
            return;
        };
        let Some(node) = self.laptops.get_mut(laptop).and_then(|l| l.node.as_mut()) else {
            return;
        };
        let Some(machine) = c.sides.get_mut(usize::from(side)) else {
            return;
        };
        let actions = machine.tick(node, self.now);
        if actions
            .iter()
            .any(|a| matches!(a, Action::Send { kind, .. } if *kind == FRAME_SYNC))
        {
            self.stats.node_steps += 1;
        }
        self.perform(link, side, actions);
    }

    /// After a laptop gained events: its eager connections push them (as the mesh does, with
    /// its gossip overlay: `overlay.rs`).
    pub(super) fn bump(&mut self, laptop: usize) {
        let links = self
            .laptops
            .get(laptop)
            .map(|l| l.links.clone())
            .unwrap_or_default();
        let eager = self.eager_links(laptop, &links);
        for (i, link) in links.into_iter().enumerate() {
            let Some(side) = self.side(link, laptop) else {
                continue;
            };
            let actions = {
                let Some(conn) = self.links.get_mut(link).and_then(|k| k.conn.as_mut()) else {
                    continue;
                };
                let Some(node) = self.laptops.get_mut(laptop).and_then(|l| l.node.as_mut()) else {
                    continue;
                };
                let Some(machine) = conn.sides.get_mut(usize::from(side)) else {
                    continue;
                };
                machine.set_eager(eager.get(i).copied().unwrap_or(true));
                self.stats.node_steps += 1;
                machine.changed(node, self.now)
            };
            self.perform(link, side, actions);
        }
    }

    fn side(&self, link: usize, laptop: usize) -> Option<u8> {
        let k = self.links.get(link)?;
        if k.ends[0] == laptop {
            Some(0)
        } else if k.ends[1] == laptop {
            Some(1)
        } else {
            None
        }
    }

    /// A dial on `link`: the connection opens if the other end can be reached; otherwise the
    /// attempt fails and the dial loop backs off (see [`Engine::redial`]).
    pub(super) fn connect(&mut self, link: usize, generation: u64) {
        let Some(k) = self.links.get_mut(link) else {
            return;
        };
        if k.dial_gen != generation || !k.dialling {
            return;
        }
        k.dialling = false;
        let [a, b] = k.ends;
        if k.conn.is_some() || !self.up(a) {
            return;
        }
        self.count_dials(1);
        if !self.reachable(a, b) {
            self.trace_link(link, format_args!("dial fails"));
            if let Some(k) = self.links.get_mut(link) {
                k.failed_at = Some(self.now);
            }
            return;
        }
        self.trace_link(link, format_args!("connects"));
        let id = self.next_conn;
        self.next_conn += 1;
        let config = self.link_config();
        let mut opened = Vec::new();
        let mut sides = Vec::new();
        for (side, (&me, &other)) in [a, b].iter().zip([b, a].iter()).enumerate() {
            let Some(node) = self.laptops.get(me).and_then(|x| x.node.as_ref()) else {
                return;
            };
            let Some(remote) = self.laptops.get(other).map(|x| x.key.device_id()) else {
                return;
            };
            let role = if side == 0 {
                Role::Dialled
            } else {
                Role::Accepted
            };
            let (machine, actions) =
                SyncLink::open(Hello::of(node), role, remote, config, self.now);
            sides.push(machine);
            opened.push(actions);
        }
        let Ok(mut sides) = <[SyncLink; 2]>::try_from(sides) else {
            return;
        };
        // The dialler's first flight: a peer met before gets the session's opening behind
        // the greeting (as the mesh's connections do).
        if let (Some(node), Some(first), Some(dialler)) = (
            self.laptops.get_mut(a).and_then(|x| x.node.as_mut()),
            opened.get_mut(0),
            sides.get_mut(0),
        ) {
            first.extend(dialler.first_flight(node, self.now));
        }
        if let Some(k) = self.links.get_mut(link) {
            k.backoff.met();
            k.failed_at = None;
            k.conn = Some(Conn {
                id,
                sides,
                last: [0, 0],
                timers: [(None, 0); 2],
                hello_at: [0, 0],
                greeted: [false; 2],
            });
        }
        self.opened(link);
        for (side, actions) in opened.into_iter().enumerate() {
            self.perform(link, side as u8, actions);
        }
    }

    /// The machine at `side` closed the connection: the other side is told how, and the
    /// dialler dials again after its wait.
    fn hang_up(&mut self, link: usize, side: u8, how: Ended) {
        let Some(k) = self.links.get_mut(link) else {
            return;
        };
        let Some(conn) = k.conn.take() else { return };
        let ends = k.ends;
        self.ungreet(link, ends, conn.greeted, None);
        let other = 1 - usize::from(side);
        if let (Some(machine), Some(&l)) = (conn.sides.into_iter().nth(other), ends.get(other)) {
            self.close_side(l, machine, how);
        }
        self.after_close(link);
    }

    fn close_side(&mut self, laptop: usize, mut machine: SyncLink, how: Ended) {
        if let Some(node) = self.laptops.get_mut(laptop).and_then(|x| x.node.as_mut()) {
            // Only a status comes back.
            let _ = machine.closed(node, how);
        }
    }

    /// A connection ended: a live dialler waits its first wait and dials again.
    fn after_close(&mut self, link: usize) {
        let Some(k) = self.links.get(link) else {
            return;
        };
        if k.dialling || !self.up(k.ends[0]) {
            return;
        }
        let t = self.now + k.backoff.delay();
        self.dial_at(link, t);
    }

    /// The network drops a connection; `crashed` is the side whose process died (it saves
    /// nothing).
    pub(super) fn disconnect(&mut self, link: usize, crashed: Option<usize>) {
        let Some(k) = self.links.get_mut(link) else {
            return;
        };
        let Some(conn) = k.conn.take() else { return };
        let ends = k.ends;
        self.ungreet(link, ends, conn.greeted, crashed);
        for (side, machine) in conn.sides.into_iter().enumerate() {
            let Some(&l) = ends.get(side) else { continue };
            if Some(l) == crashed {
                continue;
            }
            let why = if crashed.is_some() {
                "the peer's laptop stopped"
            } else {
                "the network is cut"
            };
            self.close_side(l, machine, Ended::Dropped(why.into()));
        }
        self.after_close(link);
    }

    /// A laptop goes down: its connections drop, and the dial loops it ran die with it.
    pub(super) fn links_down(&mut self, laptop: usize) {
        let links = self
            .laptops
            .get(laptop)
            .map(|l| l.links.clone())
            .unwrap_or_default();
        for link in links {
            self.disconnect(link, Some(laptop));
            if let Some(k) = self.links.get_mut(link)
                && k.ends[0] == laptop
            {
                k.dial_gen += 1;
                k.dialling = false;
                k.failed_at = None;
            }
        }
    }

    /// A laptop comes up: the dial loops it runs start afresh (dialled by [`Engine::redial`]).
    pub(super) fn links_up(&mut self, laptop: usize) {
        let links = self
            .laptops
            .get(laptop)
            .map(|l| l.links.clone())
            .unwrap_or_default();
        if let Some(r) = self.rejoin.get_mut(laptop) {
            // A restarted laptop remembers no meetings (the mesh's policy lives in memory).
            r.restart();
        }
        for link in links {
            let backoff = self.fresh_backoff(link);
            if let Some(k) = self.links.get_mut(link)
                && k.ends[0] == laptop
            {
                k.dial_gen += 1;
                k.dialling = false;
                k.failed_at = None;
                k.backoff = backoff;
            }
        }
    }

    /// Something became possible (a heal, a restart, a power-on): every idle dial loop that
    /// can now reach its peer gets its next attempt queued — at once for a loop that has not
    /// tried yet, else when its back-off would next try.
    pub(super) fn redial(&mut self) {
        for link in 0..self.links.len() {
            let Some(k) = self.links.get(link) else {
                continue;
            };
            if k.conn.is_some()
                || k.dialling
                || !self.up(k.ends[0])
                || !self.reachable(k.ends[0], k.ends[1])
            {
                continue;
            }
            let now = self.now;
            let t = match k.failed_at {
                None => now,
                Some(tried) => {
                    let Some(k) = self.links.get_mut(link) else {
                        continue;
                    };
                    // The attempts that failed since `tried` were sent all the same.
                    let before = k.backoff.failures();
                    let t = k.backoff.next_attempt(tried, now);
                    let failed = k.backoff.failures().saturating_sub(before);
                    self.count_dials(u64::from(failed.saturating_sub(1)));
                    t
                }
            };
            self.dial_at(link, t);
        }
        self.probe_all();
    }

    /// Side `side` of the connection on `link` went live: its laptop's rejoin policy is told
    /// (see [`Engine::opened`]).
    fn greeted(&mut self, link: usize, side: u8) {
        let Some(k) = self.links.get_mut(link) else {
            return;
        };
        let Some(&laptop) = k.ends.get(usize::from(side)) else {
            return;
        };
        if let Some(g) = k
            .conn
            .as_mut()
            .and_then(|c| c.greeted.get_mut(usize::from(side)))
        {
            *g = true;
        }
        let now = self.now;
        let evidence = self
            .rejoin
            .get_mut(laptop)
            .is_some_and(|r| r.greeted(link, now));
        if evidence {
            self.kick(laptop);
        }
    }

    /// A connection on `link` opened: each end's rejoin policy is told, and one that meets a
    /// peer lost before (the network is back) dials its laptop's other lost loops at once.
    fn opened(&mut self, link: usize) {
        let Some(ends) = self.links.get(link).map(|k| k.ends) else {
            return;
        };
        let now = self.now;
        for laptop in ends {
            let evidence = self
                .rejoin
                .get_mut(laptop)
                .is_some_and(|r| r.opened(link, now));
            if evidence {
                self.kick(laptop);
            }
        }
    }

    /// Events in `ids` came in at `laptop`: its rejoin policy hears of their writers (as the
    /// mesh does from each event's device; here the drill's record of who wrote it), and
    /// what it owes is dialled.
    fn heard_from(&mut self, laptop: usize, ids: &[kazashi_domain::EventId]) {
        let Some(links) = self.laptops.get(laptop).map(|l| l.links.clone()) else {
            return;
        };
        let writers: std::collections::BTreeSet<usize> = ids
            .iter()
            .filter_map(|id| self.ids.get(id).map(|&e| self.track.origin(e) as usize))
            .collect();
        let now = self.now;
        let mut kicked = false;
        for link in links {
            let Some(ends) = self.links.get(link).map(|k| k.ends) else {
                continue;
            };
            let other = if ends[0] == laptop { ends[1] } else { ends[0] };
            if !writers.contains(&other) {
                continue;
            }
            if let Some(r) = self.rejoin.get_mut(laptop) {
                kicked |= r.heard_from(link, now);
            }
        }
        if kicked {
            self.kick(laptop);
        }
    }

    /// Dial what `laptop`'s rejoin policy owes at once.
    fn kick(&mut self, laptop: usize) {
        let now = self.now;
        let Some(r) = self.rejoin.get_mut(laptop) else {
            return;
        };
        let mut kicked = Vec::new();
        while let Some(l) = r.next(now) {
            // Handshakes take no time in the drill: each one ends as it starts.
            r.finished();
            kicked.push(l);
        }
        for l in kicked {
            let idle = self
                .links
                .get(l)
                .is_some_and(|k| k.conn.is_none() && self.up(k.ends[0]));
            if idle {
                self.dial_at(l, now);
            }
        }
    }

    /// A connection on `link` (ends `ends`) is gone: the sides that had gone live tell their
    /// laptops' rejoin policies (not a side whose laptop `crashed`: it forgets anyway).
    fn ungreet(
        &mut self,
        link: usize,
        ends: [usize; 2],
        greeted: [bool; 2],
        crashed: Option<usize>,
    ) {
        let now = self.now;
        for (side, &laptop) in ends.iter().enumerate() {
            if Some(laptop) == crashed {
                continue;
            }
            let Some(r) = self.rejoin.get_mut(laptop) else {
                continue;
            };
            if greeted.get(side).copied().unwrap_or(false) {
                r.ended(link, now);
            } else {
                r.not_greeted(link);
            }
        }
    }

    /// Every laptop's probes up to now: those that failed are counted on the wire, and the
    /// first that can reach its peer is queued.
    fn probe_all(&mut self) {
        let now = self.now;
        for laptop in 0..self.rejoin.len() {
            if !self.up(laptop) {
                continue;
            }
            let Some(mut r) = self.rejoin.get(laptop).cloned() else {
                continue;
            };
            let (failed, first) = r.skip_to(now, |&l| {
                self.links
                    .get(l)
                    .is_some_and(|k| k.conn.is_none() && self.reachable(k.ends[0], k.ends[1]))
            });
            if let Some(slot) = self.rejoin.get_mut(laptop) {
                *slot = r;
            }
            self.count_dials(failed);
            if let Some((t, l)) = first {
                self.dial_at(l, t);
            }
        }
    }

    /// Drop every connection the current partitions and statuses forbid.
    pub(super) fn cut(&mut self) {
        for link in 0..self.links.len() {
            let Some(k) = self.links.get(link) else {
                continue;
            };
            if k.conn.is_some() && !self.reachable(k.ends[0], k.ends[1]) {
                self.disconnect(link, None);
            }
        }
    }

    pub(super) fn deliver(&mut self, link: usize, conn: u64, to: u8, kind: u8, bytes: Vec<u8>) {
        let Some(k) = self.links.get_mut(link) else {
            return;
        };
        let Some(c) = k.conn.as_mut() else { return };
        if c.id != conn {
            return;
        }
        let Some(&laptop) = k.ends.get(usize::from(to)) else {
            return;
        };
        let Some(node) = self.laptops.get_mut(laptop).and_then(|l| l.node.as_mut()) else {
            return;
        };
        let Some(machine) = c.sides.get_mut(usize::from(to)) else {
            return;
        };
        if kind == FRAME_SYNC {
            self.stats.node_steps += 1;
        }
        let actions = machine.frame(node, kind, &bytes, self.now);
        if self.track.traced_heal().is_some() && kind != kazashi_node::link::FRAME_PING {
            let gained: Vec<u32> = actions
                .iter()
                .flat_map(|a| match a {
                    Action::Gained { ids } => ids.as_slice(),
                    _ => &[],
                })
                .filter_map(|id| self.ids.get(id).map(|&e| self.track.origin(e)))
                .collect();
            let sends = actions
                .iter()
                .filter(|a| matches!(a, Action::Send { .. }))
                .count();
            self.trace_link(
                link,
                format_args!(
                    "to side {to} kind {kind} {} bytes: gained {gained:?}, sends {sends}",
                    bytes.len()
                ),
            );
        }
        self.perform(link, to, actions);
    }
}

#[cfg(test)]
mod tests {
    use kazashi_node::link::{Backoff, DIAL_TIMEOUT_MS};

    #[test]
    fn a_dial_loop_at_the_cap_retries_every_timeout_and_cap() {
        let mut b = Backoff::new(250, 3_000);
        let first = b.next_attempt(0, 1);
        assert_eq!(first, DIAL_TIMEOUT_MS + 500);
        let mut b = Backoff::new(250, 3_000);
        let far = b.next_attempt(0, 86_400_000);
        assert!((86_400_000..86_400_000 + DIAL_TIMEOUT_MS + 3_000).contains(&far));
    }
}
