//! The detector's first build off the calling thread (a child of `node`).
//!
//! The first look at the alerts builds the detector over the whole state: a second at a million
//! events, minutes against a ten-million-person roster on disk (every walk-in's candidates read
//! from the store). The window asks for the alert count every frame, so it asks here with
//! [`Node::open_alert_count_nowait`]: the build starts on a thread of its own over the state's
//! shared events folded again there (`State::share`) and a match index of its own, and the
//! count is `None` until it is back. Events that arrive meanwhile are fed to it when it is taken
//! in — the ones after the build's snapshot, in the order the state took them — exactly as they
//! would have been fed one by one. A build is dropped when the state was folded again, the
//! deployment or the roster changed meanwhile (each of those drops the detector too); the
//! blocking calls ([`Node::alerts`], [`Node::open_alert_count`]) wait for a build under way,
//! and [`Node::alerts_within`] (a household's screen naming a likely duplicate elsewhere) waits
//! a bounded time.

use super::Node;
use crate::clock::Clock;
use kazashi_domain::detector::{Context, Detector, MatchIndex};
use kazashi_domain::state::StateVersion;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::time::Duration;

/// How long to wait for a build under way.
#[derive(Debug, Clone, Copy)]
pub(super) enum Wait {
    No,
    Up(Duration),
    Forever,
}

/// A build under way: what it sends back, and the state it was started over.
pub(super) struct Building {
    done: Receiver<(Detector, MatchIndex)>,
    from: StateVersion,
}

impl<C: Clock> Node<C> {
    /// How many alerts [`Node::alerts`] would list, if the detector is built; else `None`, and
    /// the build is started (or left running) off this thread. Never waits for it.
    pub fn open_alert_count_nowait(&mut self) -> Option<usize> {
        self.detector_ready().then(|| self.open_alert_count())
    }

    /// [`Node::alerts`], if the detector is built or its build is back within `wait` (a small
    /// log's takes milliseconds); else `None`, the build going on off this thread.
    pub fn alerts_within(
        &mut self,
        wait: Duration,
    ) -> Option<Vec<kazashi_domain::detector::Alert>> {
        if !self.detector_ready() {
            self.take_detector_build(Wait::Up(wait));
        }
        self.detector.is_some().then(|| self.alerts())
    }

    /// Whether the detector is built (a finished build taken in); if not, its build is started
    /// off this thread unless one is under way. Built here when no thread can be started.
    fn detector_ready(&mut self) -> bool {
        self.take_detector_build(Wait::No);
        if self.detector.is_some() {
            return true;
        }
        if self.detector_build.is_none() {
            self.start_detector_build();
        }
        self.detector_build.is_none()
    }

    /// Whether the detector is being built off the calling thread.
    pub fn detector_building(&mut self) -> bool {
        self.take_detector_build(Wait::No);
        self.detector_build.is_some()
    }

    fn start_detector_build(&mut self) {
        let station = &self.station;
        let shared = station.state().share();
        let from = station.state().version();
        let deployment = station.deployment().clone();
        let roster = station.roster_arc();
        let (tx, done) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("kazashi-detector".into())
            .spawn(move || {
                let state = shared.fold();
                let matcher = MatchIndex::new(&roster);
                let ctx = Context {
                    deployment: &deployment,
                    roster: &roster,
                    matcher: &matcher,
                };
                let detector = Detector::full(&ctx, &state);
                // The fold is dropped here, not on the caller's thread.
                drop(state);
                let _ = tx.send((detector, matcher));
            });
        if spawned.is_ok() {
            self.detector_build = Some(Building { done, from });
        }
    }

    /// Take in a finished build (waiting for one under way as `wait` says), feeding it the
    /// events that arrived since it started. A build whose thread failed, or over a state since
    /// folded again, is dropped (the next look builds again).
    pub(super) fn take_detector_build(&mut self, wait: Wait) {
        let Some(b) = &self.detector_build else {
            return;
        };
        let got = match wait {
            Wait::Forever => b.done.recv().ok(),
            Wait::Up(d) => match b.done.recv_timeout(d) {
                Ok(got) => Some(got),
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Disconnected) => None,
            },
            Wait::No => match b.done.try_recv() {
                Ok(got) => Some(got),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => None,
            },
        };
        let from = b.from;
        self.detector_build = None;
        let Some((mut detector, matcher)) = got else {
            return;
        };
        let state = self.station.state();
        if self.detector.is_some() || !state.grew_from(from) {
            return;
        }
        let matcher = self.matcher.get_or_insert(matcher);
        let ctx = Context {
            deployment: self.station.deployment(),
            roster: self.station.roster(),
            matcher,
        };
        for event in state.events_unordered().skip(from.len()) {
            detector.update(&ctx, state, event);
        }
        self.detector = Some(detector);
    }
}
