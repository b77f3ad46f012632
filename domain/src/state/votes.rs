//! Elections: voters' check-ins, tallies per station, hand-counted ballots.

use super::fold::State;
use super::stay::undone_by;
use crate::event::{Event, EventBody, IdMethod, VoteMode};
use crate::hlc::Timestamp;
use crate::ids::{DeviceId, EventId, OperatorId, PersonId, SiteId};
use crate::time::Millis;
use std::collections::BTreeMap;

/// One voter check-in, with what happened to it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct VoteRecord {
    pub event: EventId,
    pub at: Timestamp,
    pub site: SiteId,
    pub device: DeviceId,
    pub operator: OperatorId,
    pub mode: VoteMode,
    pub method: IdMethod,
    /// Let through a block by two officers.
    pub overridden: bool,
    /// The undo that withdrew it, if any (as of the query time).
    pub undone_by: Option<EventId>,
}

/// Early and election-day ballots counted at one station.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VoteTally {
    pub early: u32,
    pub election_day: u32,
    /// Check-ins that overrode a block.
    pub overridden: u32,
    /// Check-ins withdrawn by an undo (not counted above).
    pub undone: u32,
}

impl State {
    /// A voter's check-ins in order, undone ones included (marked).
    pub fn votes_of(&self, voter: &PersonId, as_of: Option<Millis>) -> Vec<VoteRecord> {
        let Some(h) = self.votes.get(voter) else {
            return Vec::new();
        };
        h.upto(as_of, &self.events)
            .iter()
            .filter_map(|&ix| {
                let ev = self.events.get(ix)?;
                let id = ev.id();
                let EventBody::VoterCheckIn {
                    mode,
                    method,
                    override_,
                    ..
                } = ev.body()
                else {
                    return None;
                };
                Some(VoteRecord {
                    event: id,
                    at: ev.at(),
                    site: ev.site(),
                    device: ev.device(),
                    operator: ev.operator(),
                    mode: *mode,
                    method: *method,
                    overridden: override_.is_some(),
                    undone_by: undone_by(&self.undos, &id, as_of, &self.events)
                        .and_then(|u| self.events.id(u)),
                })
            })
            .collect()
    }

    /// Voters with at least one check-in event (undone or not), in id order.
    pub fn voters(&self) -> Vec<PersonId> {
        let mut v: Vec<PersonId> = self.votes.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Check-ins that stand (not undone) for a voter.
    pub fn standing_votes(&self, voter: &PersonId, as_of: Option<Millis>) -> Vec<VoteRecord> {
        let mut v = self.votes_of(voter, as_of);
        v.retain(|r| r.undone_by.is_none());
        v
    }

    /// Ballots per station.
    pub fn vote_tallies(&self, as_of: Option<Millis>) -> BTreeMap<SiteId, VoteTally> {
        let mut out: BTreeMap<SiteId, VoteTally> = BTreeMap::new();
        for voter in self.votes.keys() {
            for r in self.votes_of(voter, as_of) {
                let t = out.entry(r.site).or_default();
                if r.undone_by.is_some() {
                    t.undone += 1;
                    continue;
                }
                match r.mode {
                    VoteMode::Early(_) => t.early += 1,
                    VoteMode::ElectionDay => t.election_day += 1,
                }
                if r.overridden {
                    t.overridden += 1;
                }
            }
        }
        out
    }

    /// Hand-counted ballot tallies entered at a station, in order: (period end, ballots issued).
    pub fn ballot_tallies(&self, site: &SiteId, as_of: Option<Millis>) -> Vec<(Millis, u32)> {
        let Some(h) = self.ballot_tallies.get(site) else {
            return Vec::new();
        };
        h.upto(as_of, &self.events)
            .iter()
            .filter_map(|&ix| match self.events.get(ix).map(Event::body) {
                Some(EventBody::BallotTally {
                    period_end,
                    ballots_issued,
                }) => Some((*period_end, *ballots_issued)),
                _ => None,
            })
            .collect()
    }
}
