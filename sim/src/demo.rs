//! The headless demo day: one day of a shelter operation in the synthetic city, run through the
//! real station code on simulated time.
//!
//! Each shelter has a station; the command center (HQ) has one. Households arrive through the
//! day (card tap, staff lookup, or walk-in registration), go out and come back, some leave in the
//! evening, people needing nursing care are transferred to the welfare shelter, one check-in is
//! undone, and every shelter files status reports prefilled from its own counts. Every 30
//! simulated minutes the stations exchange the events they have not yet seen; one shelter is cut
//! off from 12:00 to 16:00. The report says what HQ saw during the cut and whether every station
//! holds the same state at the end.
//!
//! Delivery between stations is an in-memory exchange: the real mesh (iroh) replaces it later.

use crate::population::{
    GenError, Municipality, PopulationSpec, generate, shelter_operation, walk_in_group,
};
use crate::workload::START_MS;
use kazashi_domain::deployment::SiteKind;
use kazashi_domain::event::*;
use kazashi_domain::ids::{DeviceId, HouseholdId, OperatorId, PersonRef, SiteId};
use kazashi_domain::roster::{CareNeed, Sex};
use kazashi_domain::state::SiteCounts;
use kazashi_domain::text::{Label, Note};
use kazashi_domain::{CivilDate, Deployment, Event};
use kazashi_node::{ManualClock, Station, StationError};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::Arc;

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct DemoConfig {
    pub seed: u64,
    pub households: usize,
    pub shelters: usize,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            seed: 2026,
            households: 2_000,
            shelters: 6,
        }
    }
}

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Gen(#[from] GenError),
    #[error("a station refused an event: {0}")]
    Station(#[from] StationError),
    #[error("{0}")]
    Setup(String),
}

/// One shelter's line in the report.
#[derive(Debug, Clone)]
pub struct SiteLine {
    pub id: SiteId,
    pub name: String,
    pub type_label: &'static str,
    pub capacity: u32,
    /// As HQ sees it at the end of the day.
    pub counts: SiteCounts,
    pub reports_filed: usize,
}

/// What HQ saw of the cut-off shelter at 15:00.
#[derive(Debug, Clone)]
pub struct PartitionView {
    pub site: SiteId,
    pub minutes_since_last_event: u64,
    pub present_at_site: u32,
    pub present_seen_by_hq: u32,
}

/// The outcome of the demo day.
#[derive(Debug, Clone)]
pub struct DemoReport {
    pub deployment: String,
    pub date: CivilDate,
    pub residents: usize,
    pub households: usize,
    pub sites: Vec<SiteLine>,
    pub events: usize,
    pub check_ins_by_method: BTreeMap<IdMethod, u32>,
    pub walk_ins: usize,
    pub transfers: u32,
    pub undos: u32,
    pub partition: Option<PartitionView>,
    pub stations: usize,
    /// Every station holds the same state at the end.
    pub converged: bool,
}

struct Net {
    stations: Vec<Station<ManualClock>>,
    outbox: Vec<Vec<Event>>,
    published: Vec<Event>,
    cursor: Vec<usize>,
}

impl Net {
    /// Deliver pending events among all stations except `cut`.
    fn exchange(&mut self, cut: Option<usize>) -> Result<(), StationError> {
        for (i, out) in self.outbox.iter_mut().enumerate() {
            if Some(i) != cut {
                self.published.append(out);
            }
        }
        for (i, st) in self.stations.iter_mut().enumerate() {
            if Some(i) == cut {
                continue;
            }
            let from = self.cursor.get(i).copied().unwrap_or(0);
            for e in self.published.get(from..).unwrap_or(&[]) {
                st.ingest(e.clone())?;
            }
            if let Some(c) = self.cursor.get_mut(i) {
                *c = self.published.len();
            }
        }
        Ok(())
    }

    fn record(&mut self, i: usize, op: OperatorId, body: EventBody) -> Result<Event, DemoError> {
        let st = self
            .stations
            .get_mut(i)
            .ok_or_else(|| DemoError::Setup(format!("no station {i}")))?;
        let e = st.record(op, body)?;
        if let Some(o) = self.outbox.get_mut(i) {
            o.push(e.clone());
        }
        Ok(e)
    }
}

fn note(s: &str) -> Result<Note, DemoError> {
    Note::new(s).map_err(|e| DemoError::Setup(e.to_string()))
}

/// Prefill a status report from a station's own counts.
pub(crate) fn status_report(kind: ReportKind, c: &SiteCounts, opened_at: u64) -> StatusReport {
    let n = |v: Option<&u32>| v.copied().unwrap_or(0);
    StatusReport {
        kind,
        opened_at: Some(opened_at),
        counts: ReportCounts {
            persons: c.registered(),
            households: c.households,
            male: n(c.by_sex.get(&Some(Sex::Male))),
            female: n(c.by_sex.get(&Some(Sex::Female))),
            sex_unspecified: n(c.by_sex.get(&Some(Sex::Unspecified))) + n(c.by_sex.get(&None)),
            by_age: c
                .by_age
                .iter()
                .filter_map(|(k, v)| k.map(|b| (b, *v)))
                .collect(),
            care_needs: c.care_needs.clone(),
            supported_outside: c.support_only.values().sum(),
        },
        building: BuildingSafety::Safe,
        lifelines: Lifelines {
            power: LifelineStatus::Available,
            water: LifelineStatus::Limited,
            gas: LifelineStatus::Out,
            comms: LifelineStatus::Limited,
            toilets: LifelineStatus::Available,
        },
        shortages: Label::new("毛布")
            .ok()
            .map(|item| Shortage {
                item,
                quantity: Some(30),
                note: None,
            })
            .into_iter()
            .collect(),
        issues: None,
    }
}

/// Run the demo day.
pub fn run(cfg: DemoConfig) -> Result<DemoReport, DemoError> {
    let date = CivilDate::new(2026, 9, 1).map_err(|e| DemoError::Setup(e.to_string()))?;
    let m: Municipality = generate(PopulationSpec {
        households: cfg.households,
        seed: cfg.seed,
        today: date,
        voters: false,
    })?;
    let d: Deployment = shelter_operation(&m, cfg.shelters.max(3))?;
    let deployment = Arc::new(d);
    let roster = Arc::new(m.roster.clone());
    let clock = ManualClock::new(START_MS);
    let shelters: Vec<SiteId> = deployment
        .sites()
        .filter(|s| s.is_shelter())
        .map(|s| s.id)
        .collect();
    let welfare = shelters.len() - 1;
    let mut stations = Vec::new();
    for (i, site) in shelters
        .iter()
        .chain(std::iter::once(
            &SiteId::new("HQ").map_err(|e| DemoError::Setup(e.to_string()))?,
        ))
        .enumerate()
    {
        let mut key = [0u8; 32];
        key[0] = 0xd0;
        key[1] = i as u8;
        stations.push(Station::new(
            deployment.clone(),
            roster.clone(),
            DeviceId(key),
            *site,
            clock.clone(),
        )?);
    }
    let hq = stations.len() - 1;
    let n = stations.len();
    let mut net = Net {
        stations,
        outbox: vec![Vec::new(); n],
        published: Vec::new(),
        cursor: vec![0; n],
    };
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let op = |i: usize| {
        OperatorId::new(&format!("staff{:02}", i + 1)).map_err(|e| DemoError::Setup(e.to_string()))
    };
    let mut households: Vec<HouseholdId> = m.roster.entries().iter().map(|e| e.household).collect();
    households.sort_unstable();
    households.dedup();

    let mut by_method: BTreeMap<IdMethod, u32> = BTreeMap::new();
    let mut present_groups: Vec<(usize, Vec<PersonRef>)> = Vec::new();
    let mut out_groups: Vec<(usize, Vec<PersonRef>, u64)> = Vec::new();
    let mut pending_transfers: Vec<(u64, Vec<PersonRef>)> = Vec::new();
    let (mut transfers, mut undos, mut walk_ins) = (0u32, 0u32, 0usize);
    let mut partition = None;
    let cut_site = 1usize.min(shelters.len() - 1);

    for i in 0..shelters.len() {
        net.record(i, op(i)?, EventBody::SiteLifecycle(SiteState::Opened))?;
    }
    let end = START_MS + 16 * HOUR; // 22:00
    let mut t = START_MS;
    while t < end {
        t += 10 * MINUTE;
        clock.set(t);
        let hour = (t - START_MS) / HOUR + 6;
        // Arrivals peak mid-morning and taper off.
        let rate = match hour {
            6..=7 => 6,
            8..=11 => 14,
            12..=15 => 8,
            _ => 3,
        };
        for _ in 0..rng.random_range(0..=rate) {
            let Some(&h) = households.get(rng.random_range(0..households.len().max(1))) else {
                continue;
            };
            let site = (h.as_str().bytes().map(usize::from).sum::<usize>()) % welfare.max(1);
            let roll = rng.random_range(0..100);
            let (members, method) = if roll < 8 {
                // Someone from another town, registered on the spot.
                let k = rng.random_range(1..4usize);
                let people = walk_in_group(k, t ^ (k as u64));
                let reg = net.record(
                    site,
                    op(site)?,
                    EventBody::WalkInRegistration {
                        members: people,
                        home_municipality: Label::new("隣町").ok(),
                    },
                )?;
                walk_ins += k;
                let refs = (0..k)
                    .map(|j| PersonRef::WalkIn {
                        registration: reg.id(),
                        index: j as u16,
                    })
                    .collect();
                (refs, IdMethod::Lookup)
            } else {
                let mem = m.roster.household(&h);
                let already = mem.iter().any(|e| {
                    net.stations.get(site).is_some_and(|s| {
                        s.state()
                            .stays(&PersonRef::Roster(e.person), None)
                            .values()
                            .any(|x| x.status.is_registered())
                    })
                });
                if already || mem.is_empty() {
                    continue;
                }
                let take = if rng.random_bool(0.85) {
                    mem.len()
                } else {
                    rng.random_range(1..=mem.len())
                };
                let refs: Vec<PersonRef> = mem
                    .iter()
                    .take(take)
                    .map(|e| PersonRef::Roster(e.person))
                    .collect();
                (
                    refs,
                    if roll < 75 {
                        IdMethod::CardTap
                    } else {
                        IdMethod::Lookup
                    },
                )
            };
            let Ok(mm) = Members::new(members.clone()) else {
                continue;
            };
            let e = net.record(
                site,
                op(site)?,
                EventBody::ShelterCheckIn {
                    household: None,
                    members: mm,
                    method,
                },
            )?;
            *by_method.entry(method).or_default() += 1;
            // At 10:30 one desk picks the wrong household and the lead withdraws the check-in.
            if undos == 0 && hour >= 10 && t % HOUR == 30 * MINUTE {
                net.record(
                    site,
                    op(site + 10)?,
                    EventBody::UndoCheckIn {
                        target: e.id(),
                        reason: note("別の世帯を選択していたため取消")?,
                    },
                )?;
                undos += 1;
                continue;
            }
            present_groups.push((site, members));
        }
        // Some go out for an errand and come back a few hours later.
        if !present_groups.is_empty() && rng.random_bool(0.5) {
            let (site, g) = present_groups.swap_remove(rng.random_range(0..present_groups.len()));
            if let Ok(mm) = Members::new(g.clone()) {
                net.record(
                    site,
                    op(site)?,
                    EventBody::TemporaryLeave {
                        members: mm,
                        kind: LeaveKind::Outing,
                        expected_return: Some(t + 2 * HOUR),
                    },
                )?;
                out_groups.push((site, g, t + rng.random_range(1..4) * HOUR));
            }
        }
        let (back, still): (Vec<_>, Vec<_>) =
            out_groups.drain(..).partition(|(_, _, when)| *when <= t);
        out_groups = still;
        for (site, g, _) in back {
            if let Ok(mm) = Members::new(g.clone()) {
                net.record(site, op(site)?, EventBody::ReturnFromLeave { members: mm })?;
                present_groups.push((site, g));
            }
        }
        // 11:00: people needing nursing care move to the welfare shelter.
        if t == START_MS + 5 * HOUR {
            for (site, g) in &present_groups {
                let needy: Vec<PersonRef> = g
                    .iter()
                    .filter(|p| matches!(p, PersonRef::Roster(id) if m.roster.get(id).is_some_and(|e| e.care_needs.contains(&CareNeed::NursingCare))))
                    .copied()
                    .collect();
                if let Ok(mm) = Members::new(needy.clone()) {
                    net.record(
                        *site,
                        op(*site)?,
                        EventBody::Transfer {
                            members: mm,
                            to: *shelters
                                .get(welfare)
                                .ok_or_else(|| DemoError::Setup("no welfare shelter".into()))?,
                        },
                    )?;
                    transfers += needy.len() as u32;
                    pending_transfers.push((t + 40 * MINUTE, needy));
                }
            }
        }
        let (arrived, waiting): (Vec<_>, Vec<_>) = pending_transfers
            .drain(..)
            .partition(|(when, _)| *when <= t);
        pending_transfers = waiting;
        for (_, g) in arrived {
            if let Ok(mm) = Members::new(g) {
                net.record(
                    welfare,
                    op(welfare)?,
                    EventBody::ShelterCheckIn {
                        household: None,
                        members: mm,
                        method: IdMethod::Lookup,
                    },
                )?;
            }
        }
        // Evening: some households go home.
        if hour >= 17 && !present_groups.is_empty() && rng.random_bool(0.6) {
            let (site, g) = present_groups.swap_remove(rng.random_range(0..present_groups.len()));
            if let Ok(mm) = Members::new(g) {
                net.record(
                    site,
                    op(site)?,
                    EventBody::ShelterCheckOut {
                        members: mm,
                        reason: CheckOutReason::Home,
                    },
                )?;
            }
        }
        // Status reports at 09:00 (first) and 17:00 (periodic), from each shelter's own view.
        if t.is_multiple_of(HOUR) && (hour == 9 || hour == 17) {
            for (i, site) in shelters.iter().enumerate() {
                let c = net
                    .stations
                    .get(i)
                    .map(|s| s.state().site_counts(site, &m.roster, date, None))
                    .unwrap_or_default();
                let kind = if hour == 9 {
                    ReportKind::First
                } else {
                    ReportKind::Periodic(1)
                };
                net.record(
                    i,
                    op(i)?,
                    EventBody::ShelterStatusReport(Box::new(status_report(kind, &c, START_MS))),
                )?;
            }
        }
        // What HQ sees of the cut-off shelter at 15:00.
        if t == START_MS + 9 * HOUR {
            let hq_state = net.stations.get(hq).map(|s| s.state());
            let own = net.stations.get(cut_site).map(|s| s.state());
            if let (Some(hq_state), Some(own)) = (hq_state, own) {
                let Some(&site) = shelters.get(cut_site) else {
                    continue;
                };
                let last = hq_state
                    .last_event_per_site(None)
                    .get(&site)
                    .map_or(0, |ts| ts.wall_ms);
                partition = Some(PartitionView {
                    site,
                    minutes_since_last_event: t.saturating_sub(last) / MINUTE,
                    present_at_site: own.site_counts(&site, &m.roster, date, None).present,
                    present_seen_by_hq: hq_state.site_counts(&site, &m.roster, date, None).present,
                });
            }
        }
        if t.is_multiple_of(30 * MINUTE) {
            let cut = (START_MS + 6 * HOUR..START_MS + 10 * HOUR)
                .contains(&t)
                .then_some(cut_site);
            net.exchange(cut)?;
        }
    }
    net.exchange(None)?;

    let first = net.stations.first().map(|s| s.state());
    let converged = net.stations.iter().all(|s| Some(s.state()) == first);
    let hq_state = net
        .stations
        .get(hq)
        .map(|s| s.state())
        .ok_or_else(|| DemoError::Setup("no HQ".into()))?;
    let mut reports_by_site: BTreeMap<SiteId, usize> = BTreeMap::new();
    for e in hq_state.events_in_order() {
        if matches!(e.body(), EventBody::ShelterStatusReport(_)) {
            *reports_by_site.entry(e.site()).or_default() += 1;
        }
    }
    let mut sites = Vec::new();
    for s in deployment.sites() {
        if let SiteKind::Shelter {
            shelter_type,
            capacity,
        } = s.kind
        {
            sites.push(SiteLine {
                id: s.id,
                name: s.name.to_string(),
                type_label: shelter_type.label_ja(),
                capacity,
                counts: hq_state.site_counts(&s.id, &m.roster, date, None),
                reports_filed: reports_by_site.get(&s.id).copied().unwrap_or(0),
            });
        }
    }
    Ok(DemoReport {
        deployment: deployment.name().to_string(),
        date,
        residents: m.roster.len(),
        households: households.len(),
        sites,
        events: hq_state.len(),
        check_ins_by_method: by_method,
        walk_ins,
        transfers,
        undos,
        partition,
        stations: net.stations.len(),
        converged,
    })
}
