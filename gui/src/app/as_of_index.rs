//! The command view's pictures of past hours through the checkpoint index
//! (`kazashi_domain::state::CountsIndex`), made off the window's thread.
//!
//! Making the checkpoints replays the whole log (seconds at a million events), so it never runs
//! on the window's thread: the first picture of a past hour starts a build on a thread of its
//! own, which folds the state's shared events again (`State::share`: the window's thread copies
//! nothing; a clone of the state took 5 s there at ten million events). Until the index is back
//! a picture is the replay (`overview`), exactly as before the index — on the window's thread
//! while the log is small ([`INLINE_REPLAY`] events), else on the build thread, once, for the
//! hour asked, with no picture meanwhile (`None`: the view says it is being made). Back, the
//! index answers; the arena is append-only, so an index made over the fold serves the live state
//! grown since, and what arrived in the meantime (late events included) is folded in by the
//! next picture — here when it is cheap ([`INLINE_PATCHES`], [`INLINE_EVENTS`]), else on the
//! build thread again. Both paths give the same picture (`domain/tests/fold_props.rs`,
//! `tests/tests/command.rs`), so the window never shows one that is wrong, only sometimes a
//! slower one or none yet.
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
/// The largest log replayed on the window's thread while no index answers (a replay costs
/// about 0.2 µs an event: 20 ms here, 3 s at ten million events); above it the replay runs on
/// the build thread.
pub const INLINE_REPLAY: usize = 100_000;
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

/// What a build thread sends back.
enum Built {
    /// The replay as of the hour asked when the build started (a large log only).
    Early(Millis, Overview),
    Index(CountsIndex),
}

struct Build {
    basis: Basis,
    on: CivilDate,
    started: Instant,
    done: Receiver<Built>,
    /// The build thread's replay, once back.
    early: Option<(Millis, Overview)>,
    /// Events in the log the build started from.
    len: usize,
}

/// What a build is for: the basis and day of its index, and the hour of its replay if the
/// log is too large to replay on the window's thread.
struct Job {
    basis: Basis,
    on: CivilDate,
    early_at: Option<Millis>,
}

/// The indexes of past pictures and the one build under way.
#[derive(Default)]
pub struct PastPictures {
    /// Least events between checkpoints (0: the index's default; tests use small ones).
    every: usize,
    /// The largest log replayed on the window's thread (`None`: [`INLINE_REPLAY`]).
    replay_limit: Option<usize>,
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

    /// Replay logs of at most `events` on the window's thread, larger ones on the build thread
    /// (tests use small limits; the default is [`INLINE_REPLAY`]).
    pub fn replay_inline_up_to(&mut self, events: usize) {
        self.replay_limit = Some(events);
    }

    /// Whether a log of `events` is replayed on the window's thread (else it is large: its
    /// pictures, now's included, come from the build thread).
    pub fn replays_inline(&self, events: usize) -> bool {
        events <= self.replay_limit.unwrap_or(INLINE_REPLAY)
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

    /// Take in what a build sent back, if anything (never waits).
    pub fn poll(&mut self) {
        loop {
            let Some(b) = &mut self.build else {
                return;
            };
            match b.done.try_recv() {
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.build = None;
                    return;
                }
                Ok(Built::Early(t, overview)) => b.early = Some((t, overview)),
                Ok(Built::Index(index)) => {
                    self.last_build = Some(b.started.elapsed());
                    let basis = b.basis;
                    self.build = None;
                    self.ready.retain(|r| r.index.on() != index.on());
                    if self.ready.len() >= DAYS_KEPT {
                        self.ready.remove(0);
                    }
                    self.ready.push(Ready { basis, index });
                    return;
                }
            }
        }
    }

    /// The picture as of `t`, ages counted on `on`: from the index of that day when it is made
    /// and caught up with `state` cheaply, else the replay (and the index made or caught up off
    /// this thread). The replay of a large log is made off this thread too: `None` until it is
    /// back (ask again; [`PastPictures::building`] says one is under way). Never waits.
    pub fn picture(
        &mut self,
        state: &State,
        deployment: &Deployment,
        roster: &Arc<Roster>,
        basis: Basis,
        on: CivilDate,
        t: Millis,
    ) -> Option<Picture> {
        self.poll();
        self.ready.retain(|r| r.basis == basis);
        let inline = self.replays_inline(state.len());
        // The build thread's replay of a large log serves only the hour, day and basis it was
        // made for, and only the log it was made from.
        let early = self.build.as_ref().and_then(|b| {
            b.early.as_ref().filter(|(at, _)| {
                !inline && *at == t && b.on == on && b.basis == basis && b.len == state.len()
            })
        });
        if let Some((_, overview)) = early {
            return Some(Picture {
                overview: overview.clone(),
                source: Source::Replay { building: true },
            });
        }
        let early_at = (!inline).then_some(t);
        if let Some(i) = self.ready.iter().position(|r| r.index.on() == on) {
            let cheap = self
                .ready
                .get(i)
                .and_then(|r| r.index.pending(state, roster))
                .is_some_and(|p| p.patches <= INLINE_PATCHES && p.events <= INLINE_EVENTS);
            if cheap && let Some(r) = self.ready.get_mut(i) {
                return Some(Picture {
                    overview: overview_indexed(&mut r.index, state, deployment, roster, t),
                    source: Source::Index,
                });
            }
            // Behind the log by more than a frame can fold: caught up on the build thread.
            if self.build.is_none() {
                let r = self.ready.remove(i);
                let job = Job {
                    basis,
                    on,
                    early_at,
                };
                self.start(state, deployment, roster, job, Some(r.index));
            }
        } else if self.build.is_none() {
            let job = Job {
                basis,
                on,
                early_at,
            };
            self.start(state, deployment, roster, job, None);
        }
        inline.then(|| Picture {
            overview: overview(state, deployment, roster, on, Some(t)),
            source: Source::Replay {
                building: self.build.is_some(),
            },
        })
    }

    /// Make (or catch up) the index of day `job.on` on a thread of its own, over the state's
    /// shared events folded again there; first the replay as of `job.early_at`, if asked.
    fn start(
        &mut self,
        state: &State,
        deployment: &Deployment,
        roster: &Arc<Roster>,
        job: Job,
        index: Option<CountsIndex>,
    ) {
        let Job {
            basis,
            on,
            early_at,
        } = job;
        let mut index = index.unwrap_or_else(|| match self.every {
            0 => CountsIndex::new(on),
            every => CountsIndex::with_interval(on, every),
        });
        // A pointer per block of events: the fold is the build thread's.
        let shared = state.share();
        let len = state.len();
        let deployment = early_at.map(|_| deployment.clone());
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
                let folded = shared.fold();
                if let (Some(t), Some(d)) = (early_at, &deployment) {
                    let _ = tx.send(Built::Early(t, overview(&folded, d, &roster, on, Some(t))));
                }
                index.fold_in(&folded, &roster);
                // The fold is dropped here, not on the window's thread.
                drop(folded);
                let _ = tx.send(Built::Index(index));
            });
        // No thread: the next picture tries again (a small log's replay answers meanwhile).
        if spawned.is_ok() {
            self.build = Some(Build {
                basis,
                on,
                started: Instant::now(),
                done,
                early: None,
                len,
            });
        }
    }

    /// The day the build under way is for.
    pub fn building_for(&self) -> Option<CivilDate> {
        self.build.as_ref().map(|b| b.on)
    }
}
