//! The command center's picture (災害対策本部 / 選挙管理委員会): every site as of any time T,
//! from the merged log alone — counts of distinct persons (same-as links applied), 要配慮者 by
//! category, people supported outside, capacity use, the latest status report's lifelines and
//! shortages, how long since each site was last heard from; for elections, ballots per station
//! (early and election day), turnout over time and the hand-count reconciliation gaps.
//!
//! Pure: the time T and the day ages are counted on are arguments.

use crate::deployment::{Deployment, SiteKind};
use crate::event::{StatusReport, VoteMode};
use crate::hlc::Timestamp;
use crate::ids::SiteId;
use crate::roster::Roster;
use crate::state::{AllSiteCounts, CountsIndex, SiteCounts, State, VoteTally};
use crate::time::{CivilDate, Millis};
use std::collections::BTreeMap;

/// One site as the command center sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteView {
    pub site: SiteId,
    /// Shelters: the counts (persons are distinct within the site).
    pub counts: Option<SiteCounts>,
    /// Shelters: capacity (persons).
    pub capacity: Option<u32>,
    /// The last event written at the site, as heard by T (staleness).
    pub last_heard: Option<Timestamp>,
    /// The latest status report by T, with its time.
    pub report: Option<(Timestamp, StatusReport)>,
    /// Polling stations: ballots by T.
    pub votes: Option<VoteTally>,
    /// Polling stations: each hand count entered by T against the check-ins up to its time.
    pub reconciliation: Vec<Reconciled>,
}

impl SiteView {
    /// Registered persons over capacity, in percent (shelters with a capacity).
    pub fn capacity_use(&self) -> Option<u32> {
        let (c, cap) = (self.counts.as_ref()?, self.capacity?);
        (cap > 0).then(|| c.registered().saturating_mul(100) / cap)
    }
    /// Milliseconds since the site was last heard from, at `now`.
    pub fn silent_for(&self, now: Millis) -> Option<Millis> {
        self.last_heard.map(|t| now.saturating_sub(t.wall_ms))
    }
}

/// One hand count against the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    pub period_end: Millis,
    pub ballots_issued: u32,
    pub check_ins: u32,
}

impl Reconciled {
    /// Ballots issued minus check-ins (0 when they agree).
    pub fn gap(&self) -> i64 {
        i64::from(self.ballots_issued) - i64::from(self.check_ins)
    }
}

/// Every site as of T.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    pub as_of: Option<Millis>,
    pub sites: Vec<SiteView>,
    /// Distinct persons registered at any shelter (one person at two shelters, or two records
    /// joined by same-as, count once).
    pub distinct_registered: u32,
    /// Totals over the sites (a person at two shelters counts at both).
    pub totals: SiteCounts,
    pub votes: VoteTally,
}

fn add_counts(t: &mut SiteCounts, c: &SiteCounts) {
    t.present += c.present;
    t.on_leave += c.on_leave;
    t.expected += c.expected;
    t.left += c.left;
    t.households += c.households;
    t.with_care_needs += c.with_care_needs;
    for (k, v) in &c.by_sex {
        *t.by_sex.entry(*k).or_default() += v;
    }
    for (k, v) in &c.by_age {
        *t.by_age.entry(*k).or_default() += v;
    }
    for (k, v) in &c.care_needs {
        *t.care_needs.entry(*k).or_default() += v;
    }
    for (k, v) in &c.support_only {
        *t.support_only.entry(*k).or_default() += v;
    }
}

/// The command center's picture as of `as_of` (`None`: everything merged so far). Ages are
/// counted on `on`.
pub fn overview(
    state: &State,
    deployment: &Deployment,
    roster: &Roster,
    on: CivilDate,
    as_of: Option<Millis>,
) -> Overview {
    let clusters = state.clusters(as_of);
    let all = state.all_site_counts(roster, on, as_of, &clusters);
    assemble(state, deployment, as_of, all)
}

/// The command center's picture through checkpoints of the counts ([`CountsIndex`]): equal to
/// [`overview`], but as of a past T it replays only the events near T instead of every
/// person's history. Keeps an index for each of the last few days ages are counted on; made
/// for one roster (make a new one when the roster changes). Events folded into the state
/// since the last call, late ones included, are taken in at the next call.
#[derive(Debug, Clone, Default)]
pub struct OverviewIndex {
    days: Vec<CountsIndex>,
    /// Least events between checkpoints (0: the default).
    every: usize,
}

/// Days kept: the window's slider reaches three days back.
const DAYS_KEPT: usize = 4;

impl OverviewIndex {
    /// An index with checkpoints at least `every` events apart (tests use small ones).
    pub fn with_interval(every: usize) -> Self {
        OverviewIndex {
            days: Vec::new(),
            every,
        }
    }

    /// How many checkpoints the indexes hold, over all days kept.
    pub fn checkpoints(&self) -> usize {
        self.days.iter().map(CountsIndex::checkpoints).sum()
    }

    /// [`overview`], with the counts as of `Some(T)` from the index.
    pub fn overview(
        &mut self,
        state: &State,
        deployment: &Deployment,
        roster: &Roster,
        on: CivilDate,
        as_of: Option<Millis>,
    ) -> Overview {
        let Some(t) = as_of else {
            return overview(state, deployment, roster, on, None);
        };
        let i = match self.days.iter().position(|d| d.on() == on) {
            Some(i) => i,
            None => {
                if self.days.len() >= DAYS_KEPT {
                    self.days.remove(0);
                }
                self.days.push(match self.every {
                    0 => CountsIndex::new(on),
                    every => CountsIndex::with_interval(on, every),
                });
                self.days.len() - 1
            }
        };
        match self.days.get_mut(i) {
            Some(index) => overview_indexed(index, state, deployment, roster, t),
            None => overview(state, deployment, roster, on, as_of),
        }
    }
}

/// [`overview`] as of `t` with the counts from `index`, ages counted on the index's day
/// ([`CountsIndex::on`]). Events folded into the state since the index last saw it are taken
/// in first ([`CountsIndex::pending`] says what that costs).
pub fn overview_indexed(
    index: &mut CountsIndex,
    state: &State,
    deployment: &Deployment,
    roster: &Roster,
    t: Millis,
) -> Overview {
    let clusters = state.clusters(Some(t));
    let all = index.all_site_counts(state, roster, t, &clusters);
    assemble(state, deployment, Some(t), all)
}

/// Everything but the counts, and the picture put together.
fn assemble(
    state: &State,
    deployment: &Deployment,
    as_of: Option<Millis>,
    mut all: AllSiteCounts,
) -> Overview {
    let heard = state.last_event_per_site(as_of);
    let tallies = if deployment.is_election() {
        state.vote_tallies(as_of)
    } else {
        BTreeMap::new()
    };
    // Check-in times per station, for reconciliation against the hand counts.
    let mut check_ins: BTreeMap<SiteId, Vec<Millis>> = BTreeMap::new();
    if deployment.is_election() {
        for v in state.voters() {
            for r in state.votes_of(&v, as_of) {
                if r.undone_by.is_none() {
                    check_ins.entry(r.site).or_default().push(r.at.wall_ms);
                }
            }
        }
        for times in check_ins.values_mut() {
            times.sort_unstable();
        }
    }
    let mut totals = SiteCounts::default();
    let mut votes = VoteTally::default();
    let sites = deployment
        .sites()
        .map(|s| {
            let (counts, capacity) = match s.kind {
                SiteKind::Shelter { capacity, .. } => {
                    let c = all.by_site.remove(&s.id).unwrap_or_default();
                    add_counts(&mut totals, &c);
                    (Some(c), Some(capacity))
                }
                _ => (None, None),
            };
            let (tally, reconciliation) = match s.kind {
                SiteKind::PollingStation { .. } => {
                    let t = tallies.get(&s.id).copied().unwrap_or_default();
                    votes.early += t.early;
                    votes.election_day += t.election_day;
                    votes.overridden += t.overridden;
                    votes.undone += t.undone;
                    let times = check_ins.get(&s.id).map(Vec::as_slice).unwrap_or(&[]);
                    let rec = state
                        .ballot_tallies(&s.id, as_of)
                        .into_iter()
                        .map(|(period_end, ballots_issued)| Reconciled {
                            period_end,
                            ballots_issued,
                            check_ins: u32::try_from(times.partition_point(|&t| t <= period_end))
                                .unwrap_or(u32::MAX),
                        })
                        .collect();
                    (Some(t), rec)
                }
                _ => (None, Vec::new()),
            };
            SiteView {
                site: s.id,
                counts,
                capacity,
                last_heard: heard.get(&s.id).copied(),
                report: state
                    .latest_status_report(&s.id, as_of)
                    .map(|(t, r)| (t, r.clone())),
                votes: tally,
                reconciliation,
            }
        })
        .collect();
    Overview {
        as_of,
        sites,
        distinct_registered: all.distinct_registered,
        totals,
        votes,
    }
}

/// Ballots per station over time: for each station, the cumulative (early, election day)
/// check-ins at the end of each `step` from `from` to `to` (undone ones left out, as of `to`).
pub fn turnout_series(
    state: &State,
    from: Millis,
    to: Millis,
    step: Millis,
) -> BTreeMap<SiteId, Vec<(Millis, u32, u32)>> {
    let step = step.max(1);
    let buckets = usize::try_from(to.saturating_sub(from) / step + 1).unwrap_or(1);
    let mut out: BTreeMap<SiteId, Vec<(Millis, u32, u32)>> = BTreeMap::new();
    for v in state.voters() {
        for r in state.votes_of(&v, Some(to)) {
            if r.undone_by.is_some() || r.at.wall_ms > to {
                continue;
            }
            let series = out.entry(r.site).or_insert_with(|| {
                (0..buckets)
                    .map(|i| {
                        (
                            from.saturating_add(step.saturating_mul(i as Millis + 1))
                                .min(to),
                            0,
                            0,
                        )
                    })
                    .collect()
            });
            let first = usize::try_from(r.at.wall_ms.saturating_sub(from) / step).unwrap_or(0);
            for b in series.iter_mut().skip(first) {
                match r.mode {
                    VoteMode::Early(_) => b.1 += 1,
                    VoteMode::ElectionDay => b.2 += 1,
                }
            }
        }
    }
    out
}
