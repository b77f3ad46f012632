//! The command view's pictures of past hours through the checkpoint index
//! (`kazashi_domain::state::CountsIndex`), made off the window's thread.
//!
//! Making the checkpoints replays the whole log (seconds at a million events), so it never runs
//! on the window's thread: the first picture of a past hour starts a build on a thread of its
//! own over a copy of the folded state, and until the index is back every picture is the replay
//! (`overview`), exactly as before the index. Back, the index answers; the arena is append-only,
//! so an index made over the copy serves the live state grown since, and what arrived in the
//! meantime (late events included) is folded in by the next picture — here when it is cheap
//! ([`INLINE_PATCHES`], [`INLINE_EVENTS`]), else on the build thread again over a new copy while
//! the replay answers. Both paths give the same picture (`domain/tests/fold_props.rs`,
//! `tests/tests/command.rs`), so the window never shows one that is wrong, only sometimes a
//! slower one.
//!
//! An index is made for one day ages are counted on, one pinned roster and one manifest (by its
//! digest): a newer manifest may judge events otherwise, so any change of either makes the
//! indexes again; a state that is not the one indexed, grown, is found by the index itself
//! (`CountsIndex::pending` says `None`) and made again too.

use kazashi_domain::ids::RosterHash;
use kazashi_domain::overview::{Overview, overview, overview_indexed};
use kazashi_domain::state::CountsIndex;
use kazashi_domain::{CivilDate, Deployment, Millis, Roster, State};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant};

/// Late events folded in on the window's thread at most, counted as checkpoint patches (about
/// 4 µs each at a million events in release: a few milliseconds).
pub const INLINE_PATCHES: usize = 2048;
/// New arrivals folded in on the window's thread at most (appends mostly reach no checkpoint,
/// but their tail is cut into new checkpoints: about one interval's replay).
pub const INLINE_EVENTS: usize = 8192;
/// Indexes kept, by day ages are counted on (the slider reaches three days back).
const DAYS_KEPT: usize = 4;

/// What an index was made under: the pinned roster and the manifest in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Basis {
    pub roster: RosterHash,
    pub manifest: [u8; 32],
}

/// Where a picture came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The checkpoint index.
    Index,
    /// The replay of every person's history; `building`: an index is being made or caught up
    /// off the window's thread.
    Replay { building: bool },
}

/// A picture as of a past T and where it came from.
#[derive(Debug, Clone)]
pub struct Picture {
    pub overview: Overview,
    pub source: Source,
}

struct Ready {
    basis: Basis,
    index: CountsIndex,
}

struct Build {
    basis: Basis,
    on: CivilDate,
    started: Instant,
    done: Receiver<CountsIndex>,
}

/// The indexes of past pictures and the one build under way.
#[derive(Default)]
pub struct PastPictures {
    /// Least events between checkpoints (0: the index's default; tests use small ones).
    every: usize,
    ready: Vec<Ready>,
    build: Option<Build>,
    /// How long the last build took, from start to its index back.
    last_build: Option<Duration>,
    /// Test hook: each build waits for a message here before it starts.
    gate: Option<Arc<std::sync::Mutex<Receiver<()>>>>,
}

impl PastPictures {
    /// Indexes with checkpoints at least `every` events apart (tests use small ones).
    pub fn with_interval(every: usize) -> Self {
        PastPictures {
            every,
            ..Self::default()
        }
    }

    /// Test hook: every build from now on waits for one message on `gate` before it starts
    /// (the window's thread must go on meanwhile).
    pub fn hold_builds(&mut self, gate: Receiver<()>) {
        self.gate = Some(Arc::new(std::sync::Mutex::new(gate)));
    }

    /// Whether an index is being made or caught up off the window's thread.
    pub fn building(&self) -> bool {
        self.build.is_some()
    }

    /// How long the last finished build took.
    pub fn last_build(&self) -> Option<Duration> {
        self.last_build
    }

    /// Take in a finished build, if any (never waits).
    pub fn poll(&mut self) {
        let Some(b) = &self.build else {
            return;
        };
        match b.done.try_recv() {
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => self.build = None,
            Ok(index) => {
                self.last_build = Some(b.started.elapsed());
                let basis = b.basis;
                self.build = None;
                self.ready.retain(|r| r.index.on() != index.on());
                if self.ready.len() >= DAYS_KEPT {
                    self.ready.remove(0);
                }
                self.ready.push(Ready { basis, index });
            }
        }
    }

    /// The picture as of `t`, ages counted on `on`: from the index of that day when it is made
    /// and caught up with `state` cheaply, else the replay (and the index made or caught up off
    /// this thread). Never waits for a build.
    pub fn picture(
        &mut self,
        state: &State,
        deployment: &Deployment,
        roster: &Arc<Roster>,
        basis: Basis,
        on: CivilDate,
        t: Millis,
    ) -> Picture {
        self.poll();
        self.ready.retain(|r| r.basis == basis);
        if let Some(i) = self.ready.iter().position(|r| r.index.on() == on) {
            let cheap = self
                .ready
                .get(i)
                .and_then(|r| r.index.pending(state, roster))
                .is_some_and(|p| p.patches <= INLINE_PATCHES && p.events <= INLINE_EVENTS);
            if cheap && let Some(r) = self.ready.get_mut(i) {
                return Picture {
                    overview: overview_indexed(&mut r.index, state, deployment, roster, t),
                    source: Source::Index,
                };
            }
            // Behind the log by more than a frame can fold: caught up on the build thread.
            if self.build.is_none() {
                let r = self.ready.remove(i);
                self.start(state, roster, basis, on, Some(r.index));
            }
        } else if self.build.is_none() {
            self.start(state, roster, basis, on, None);
        }
        Picture {
            overview: overview(state, deployment, roster, on, Some(t)),
            source: Source::Replay {
                building: self.build.is_some(),
            },
        }
    }

    /// Make (or catch up) the index of day `on` on a thread of its own, over a copy of `state`.
    fn start(
        &mut self,
        state: &State,
        roster: &Arc<Roster>,
        basis: Basis,
        on: CivilDate,
        index: Option<CountsIndex>,
    ) {
        let mut index = index.unwrap_or_else(|| match self.every {
            0 => CountsIndex::new(on),
            every => CountsIndex::with_interval(on, every),
        });
        // The copy is the one cost on this thread (about a tenth of the build's, see
        // docs/benchmarks.md, command).
        let snapshot = state.clone();
        let roster = roster.clone();
        let gate = self.gate.clone();
        let (tx, done) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("kazashi-as-of-index".into())
            .spawn(move || {
                if let Some(g) = gate
                    && let Ok(rx) = g.lock()
                {
                    let _ = rx.recv();
                }
                index.fold_in(&snapshot, &roster);
                // The copy is dropped here, not on the window's thread.
                drop(snapshot);
                let _ = tx.send(index);
            });
        // No thread: the replay goes on answering, and the next picture tries again.
        if spawned.is_ok() {
            self.build = Some(Build {
                basis,
                on,
                started: Instant::now(),
                done,
            });
        }
    }

    /// The day the build under way is for.
    pub fn building_for(&self) -> Option<CivilDate> {
        self.build.as_ref().map(|b| b.on)
    }
}
