//! Events the log holds but the fold leaves out (a child of `node`): revocation and the
//! operation's close are **verdicts of the fold, never of the door**.
//!
//! Every validly signed envelope of a device the manifest lists is kept, synced and bundled
//! (`envelope::open` checks the signature, the enrolment, the role and the site, not the time
//! cut-offs). The fold admits an event only if the manifest in force does not withhold it
//! ([`Membership::withholds`]: its device revoked and it stamped at or after the cut-off, or it
//! stamped at or after the operation's close, audit records exempt). The rest waits here. The
//! verdict is a pure function of (events held, manifest), and both converge, so every laptop
//! counts the same events whatever order they and the manifest arrived in; installing a
//! manifest whose cut-offs differ re-judges every event held ([`Node::refold`]), re-admission
//! included (a same-version manifest with fewer revocations that wins by digest).
//!
//! Withheld events do not move this laptop's clock (a thief's stamps are free), except this
//! laptop's own: on a resume the clock starts after them too, so it never stamps twice.

use super::Node;
use crate::clock::Clock;
use crate::station::Station;
use kazashi_domain::{Event, EventId, Timestamp};
use kazashi_sync::{Membership, Withheld};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The withheld events, and the fold digest's cache.
#[derive(Debug, Default)]
pub(crate) struct Held {
    events: BTreeMap<EventId, Event>,
    /// [`Node::fold_digest`] and the state's event count it was taken at (reset on a refold).
    fold_digest: Option<(usize, [u8; 32])>,
}

/// How many events the log holds but does not count, by reason (under the manifest in force).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WithheldCounts {
    /// Signed by a revoked laptop at or after its cut-off.
    pub revoked: usize,
    /// Stamped at or after the operation's close.
    pub after_close: usize,
}

impl WithheldCounts {
    pub fn total(&self) -> usize {
        self.revoked + self.after_close
    }
}

/// Fold `events` under `members` into `station` (a resume): the admitted ones become the
/// state, the others are returned. The clock starts after this device's own events, withheld
/// ones included.
pub(super) fn fold_held<C: Clock>(
    station: &mut Station<C>,
    members: &Membership,
    events: Vec<Event>,
) -> BTreeMap<EventId, Event> {
    // The withheld ones taken out in place: the admitted stay in the batch's own buffer, which
    // becomes the state's arena (a partition into a new vector copied every event once and
    // held both copies for a moment — 2 × 112 MB at a million events on a cold start).
    let mut admitted = events;
    let withheld: Vec<Event> = admitted
        .extract_if(.., |e| members.withholds(e).is_some())
        .collect();
    let me = station.device();
    let own_last: Option<Timestamp> = withheld
        .iter()
        .filter(|e| e.device() == me)
        .map(Event::at)
        .max();
    station.resume(admitted);
    if let Some(last) = own_last {
        station.advance_past(last);
    }
    withheld.into_iter().map(|e| (e.id(), e)).collect()
}

fn digest_of(mut ids: Vec<EventId>) -> [u8; 32] {
    ids.sort_unstable();
    let mut h = Sha256::new();
    for id in &ids {
        h.update(id.0);
    }
    h.finalize().into()
}

impl Held {
    pub(super) fn new(events: BTreeMap<EventId, Event>) -> Self {
        Self {
            events,
            fold_digest: None,
        }
    }
}

impl<C: Clock> Node<C> {
    /// Whether the log holds event `id`, counted or not.
    pub fn holds(&self, id: &EventId) -> bool {
        self.station.state().contains(id) || self.held.events.contains_key(id)
    }

    /// The events the log holds but the fold leaves out, under the manifest in force.
    pub fn withheld_events(&self) -> impl Iterator<Item = &Event> {
        self.held.events.values()
    }

    /// How many events the log holds but does not count, by reason.
    pub fn withheld_counts(&self) -> WithheldCounts {
        let mut c = WithheldCounts::default();
        for e in self.held.events.values() {
            match self.members.withholds(e) {
                Some(Withheld::Revoked { .. }) => c.revoked += 1,
                Some(Withheld::AfterClose { .. }) => c.after_close += 1,
                None => {}
            }
        }
        c
    }

    /// Take in one event from outside, already stored in its shard: folded (and fed to the
    /// detector) if the manifest in force admits it, kept aside otherwise (not observed by the
    /// clock either). Returns whether it was folded.
    pub(super) fn take_in(&mut self, e: Event) -> bool {
        if self.members.withholds(&e).is_some() {
            self.held.events.insert(e.id(), e);
            return false;
        }
        self.station.ingest_vetted(e.clone());
        self.detect(&e);
        true
    }

    /// Re-judge every held event under the manifest in force (called when one with other
    /// cut-offs is installed): fold again when any verdict changed, and drop what was derived
    /// from the old fold (the detector, the digests). Returns how many events changed verdict.
    pub(super) fn refold(&mut self) -> usize {
        let members = &self.members;
        let newly_withheld = self
            .station
            .state()
            .events_unordered()
            .filter(|e| members.withholds(e).is_some())
            .count();
        let readmitted = self
            .held
            .events
            .values()
            .filter(|e| members.withholds(e).is_none())
            .count();
        let changed = newly_withheld + readmitted;
        if changed == 0 {
            return 0;
        }
        self.fold_again(Vec::new());
        changed
    }

    /// Fold everything the log holds, and `more`, again under the manifest in force (a refold,
    /// a bulk load), and drop what was derived from the old fold (the detector, the digests).
    pub(super) fn fold_again(&mut self, more: Vec<Event>) {
        let mut all: Vec<Event> = self.station.state().events_unordered().cloned().collect();
        all.extend(more);
        all.extend(std::mem::take(&mut self.held.events).into_values());
        let events = fold_held(&mut self.station, &self.members, all);
        self.held = Held::new(events);
        self.detector = None;
        self.detector_build = None;
        self.digest_cache = None;
    }

    /// The ids of the events the fold counts, in no order.
    fn folded_ids(&self) -> Vec<EventId> {
        self.station
            .state()
            .events_unordered()
            .map(Event::id)
            .collect()
    }

    /// SHA-256 over the sorted ids of every event the log holds, counted or withheld: equal on
    /// two laptops exactly when they hold the same events (the same log). Kept until the log
    /// grows (events are never removed from it, so the same count means the same events).
    pub fn state_digest(&mut self) -> [u8; 32] {
        let n = self.station.state().len() + self.held.events.len();
        if let Some((at, d)) = self.digest_cache
            && at == n
        {
            return d;
        }
        let mut ids = self.folded_ids();
        ids.extend(self.held.events.keys().copied());
        let d = digest_of(ids);
        self.digest_cache = Some((n, d));
        d
    }

    /// SHA-256 over the sorted ids of the events the fold counts: equal on two laptops that
    /// hold the same log under manifests with the same cut-offs.
    pub fn fold_digest(&mut self) -> [u8; 32] {
        let n = self.station.state().len();
        if let Some((at, d)) = self.held.fold_digest
            && at == n
        {
            return d;
        }
        let d = digest_of(self.folded_ids());
        self.held.fold_digest = Some((n, d));
        d
    }
}
