//! The drill simulator: many virtual laptops, each the real [`Node`] (domain fold, signed
//! Automerge log, sync protocol, detector, encrypted SQLite store), over simulated time and a
//! simulated network with seeded faults.
//!
//! One thread, one queue of timed jobs (deliver a message, send a catalog, connect, a person
//! arrives, a fault starts, a car stops, take a sample), ordered by time and then by the order
//! they were queued, so a scenario and a seed give the same run byte for byte. Randomness comes
//! from two seeded streams — the workload's and the network's — so a change in the network
//! does not change who arrives when.
//!
//! Each end of each connection runs the node's own connection policy, `kazashi_node::link`'s
//! `SyncLink`, the machine `node::mesh` runs over iroh ([`links`]): the greeting and its checks,
//! catalogs both ways, a push of every event a laptop gains (its own or relayed) on all its
//! connections, a catalog every `anti_entropy_s`, pings and the lost-after limit, and the
//! mesh's redial back-off. Crashes drop the `Node` and open it again from its store (the real
//! cold start); a lost laptop is never opened again; USB bundles are the real
//! `export_bundle`/`import_bundle` files.
//!
//! Measures: propagation delays, convergence after each heal, detection delays and
//! precision/recall against the planted truth, the command center's headcount error against
//! the truth (the fold of every event written anywhere so far), and wire bytes. The same writes
//! and faults are replayed through the VxPollBook-style baseline ([`baseline`]).

pub mod baseline;
mod extra;
mod links;
pub mod net;
mod overlay;
pub mod report;
pub mod track;

use crate::fleet::fleet_sized;
use crate::population::{
    Municipality, PopulationSpec, election_sized, generate_with_precincts, shelter_operation,
    walk_in_group,
};
use crate::scenario::{Fault, Kind, Scenario};
use kazashi_domain::deployment::{DeploymentKind, SiteKind};
use kazashi_domain::detector::AlertKind;
use kazashi_domain::event::*;
use kazashi_domain::ids::{HouseholdId, OperatorId, PersonId, PersonRef, SiteId};
use kazashi_domain::text::{KanaReading, Label, PersonName};
use kazashi_domain::{CivilDate, Deployment, Event, EventId, Roster, State};
use kazashi_node::{BundleScope, KdfParams, ManualClock, Node, NodeError, SkewedClock};
use links::Link;
use net::NetRng;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use report::{Detection, Invariants, PlantedLine, Report, Sample, SyncFigures};
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::path::PathBuf;
use std::sync::Arc;
use track::Tracker;

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;
/// Simulated laptops' stores: the passphrase of a drill (never a real deployment's).
const PASSPHRASE: &str = "kazashi drill only";
/// The label of the heal after the last scheduled hour.
pub(crate) const FINAL_HEAL: &str = "final heal";
/// After the last scheduled hour, how long the final heal may take before the run gives up.
const FINAL_HEAL_LIMIT: u64 = 4 * HOUR;

type SimNode = Node<SkewedClock<ManualClock>>;

/// Bounds on one run's work ([`Engine::bounded`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The most jobs (deliveries, timers, …) pending at once.
    pub max_pending: usize,
    /// The most jobs run after the final heal began.
    pub max_jobs_after_final: u64,
}

/// Why a drill could not run.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error(transparent)]
    Scenario(#[from] crate::scenario::ScenarioError),
    #[error("could not build the synthetic municipality: {0}")]
    Gen(#[from] crate::population::GenError),
    #[error("scenario names site {0}, which the deployment does not have")]
    UnknownSite(String),
    #[error("laptop {0}: {1}")]
    Node(String, NodeError),
    #[error("{0}")]
    Setup(String),
    /// The run broke its [`Bounds`].
    #[error("did not settle: {0}")]
    Unsettled(String),
    #[error("cannot write the report: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Up,
    /// Crashed, waiting for its restart.
    Down,
    /// Not switched on yet (election-day stations before the day).
    Off,
    Lost,
}

struct Laptop {
    site: SiteId,
    label: String,
    path: PathBuf,
    skew_ms: i64,
    node: Option<SimNode>,
    status: Status,
    links: Vec<usize>,
    /// To seal a copy of each event it writes, for the baseline's sizes.
    key: kazashi_sync::DeviceKey,
    /// Its own clock if a `clock_jump` fault moves it (the run's clock plus `jump_ms`).
    own_clock: Option<ManualClock>,
    jump_ms: i64,
    /// Its gossip overlay as last drawn (`overlay.rs`).
    overlay: Option<Box<overlay::Drawn>>,
}

#[derive(Debug, Clone)]
enum Act {
    ArrivalTick,
    Arrive {
        site: Option<usize>,
    },
    MoveOut {
        hh: usize,
        to: usize,
    },
    MoveIn {
        hh: usize,
    },
    GoHome {
        hh: usize,
    },
    Outing {
        hh: usize,
    },
    Return {
        hh: usize,
    },
    Report {
        site: usize,
        n: u16,
    },
    PlantDouble,
    PlantVariant,
    /// The desk undoes household `hh`'s check-in `target`.
    Undo {
        hh: usize,
        target: EventId,
    },
    Vote {
        voter: PersonId,
        site: usize,
        early: bool,
        /// The planted case this ballot is the second of.
        planted: Option<usize>,
    },
}

#[derive(Debug)]
enum Job {
    Deliver {
        link: usize,
        conn: u64,
        to: u8,
        kind: u8,
        bytes: Vec<u8>,
    },
    /// A connection machine's timer (stale unless `generation` is its side's latest).
    Timer {
        link: usize,
        conn: u64,
        side: u8,
        generation: u64,
    },
    /// A dial (stale unless `generation` is the link's latest).
    Connect {
        link: usize,
        generation: u64,
    },
    Act {
        act: Act,
        tries: u8,
    },
    FaultStart(usize),
    FaultEnd(usize),
    PowerOn(Vec<usize>),
    CarStop {
        car: usize,
        stop: usize,
    },
    Sample,
}

struct Entry {
    t: u64,
    seq: u64,
    job: Job,
}
impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.t, self.seq) == (o.t, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.t, self.seq).cmp(&(o.t, o.seq))
    }
}

/// A shelter household as the world knows it.
#[derive(Debug, Clone)]
struct Stay {
    site: usize,
    members: Vec<PersonRef>,
    out: bool,
    moving: Option<usize>,
    gone: bool,
    /// A planted duplicate's household: it stays put, so the planted truth holds to the end.
    frozen: bool,
}

impl Stay {
    /// In the shelter and staying put: no departure, outing or move under way.
    fn settled(&self) -> bool {
        !self.gone && !self.out && self.moving.is_none() && !self.frozen
    }
}

/// One planted duplicate or double vote, and what became of it.
#[derive(Debug, Clone)]
struct Planted {
    kind: &'static str,
    subject: PersonRef,
    alert: &'static [AlertKind],
    /// The events that show it (both check-ins; for a variant walk-in, its registration).
    evidence: Vec<EventId>,
    recorded_at: Option<u64>,
    blocked: bool,
    detected: BTreeMap<usize, u64>,
}

impl Planted {
    fn new(kind: &'static str, subject: PersonRef, alert: &'static [AlertKind]) -> Self {
        Self {
            kind,
            subject,
            alert,
            evidence: Vec::new(),
            recorded_at: None,
            blocked: false,
            detected: BTreeMap::new(),
        }
    }
}

/// What the engine writes down for the baseline to replay.
#[derive(Debug, Clone)]
pub(crate) enum Trace {
    Create {
        laptop: usize,
        size: u32,
        calm: bool,
    },
    Up(usize),
    Down(usize),
    Partitions(Vec<usize>),
    CarStop {
        car: usize,
        laptop: usize,
    },
    Heal(String),
}

/// The wire, counted.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Wire {
    pub messages: u64,
    pub bytes: u64,
    pub usb_bytes: u64,
    pub bundles: u64,
}

/// How the run went, beyond its report (wall-clock figures, which are not deterministic).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunStats {
    pub node_steps: u64,
    pub events: u64,
    pub jobs: u64,
    /// Connections a connection machine closed (lost after silence, a protocol error).
    pub closed_by_policy: u64,
}

pub struct Engine {
    sc: Scenario,
    deployment: Arc<Deployment>,
    roster: Arc<Roster>,
    municipality: Municipality,
    sites: Vec<SiteId>,
    laptops: Vec<Laptop>,
    links: Vec<Link>,
    /// Per laptop, the mesh's rejoin policy over its links (`links.rs`).
    rejoin: Vec<kazashi_node::redial::Rejoin<usize>>,
    clock: ManualClock,
    now: u64,
    start: u64,
    end: u64,
    queue: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    next_conn: u64,
    net_rng: NetRng,
    wrng: ChaCha8Rng,
    track: Tracker,
    ids: FxHashMap<EventId, u32>,
    god: State,
    active: Vec<usize>,
    wire: Wire,
    // Shelter world.
    waiting: Vec<HouseholdId>,
    stays: Vec<Stay>,
    robin: Vec<usize>,
    // Both.
    planted: Vec<Planted>,
    pending_detect: Vec<usize>,
    samples: Vec<Sample>,
    trace: Vec<(u64, Trace)>,
    refusals: BTreeMap<String, u32>,
    unrecorded: u32,
    /// When each site first wrote (for HQ's lag behind a site it has not heard from yet).
    first_write: BTreeMap<SiteId, u64>,
    carried: Vec<BTreeMap<usize, Vec<u8>>>,
    stats: RunStats,
    /// A bound on the run's work (see [`Engine::bounded`]); none for a drill.
    bounds: Option<Bounds>,
    operator: OperatorId,
    /// Checks beyond the drill's own, counted over the run (see [`extra`]).
    extra: extra::Extra,
    _dir: tempfile::TempDir,
}

fn at_hours(start: u64, h: f64) -> u64 {
    start + (h.max(0.0) * HOUR as f64).round() as u64
}

impl Engine {
    /// Build the municipality, the deployment and one real `Node` per laptop (stores in a
    /// temporary directory under `work`, or the system's).
    pub fn new(sc: Scenario, work: Option<&std::path::Path>) -> Result<Self, DrillError> {
        sc.check()?;
        let date = CivilDate::parse(&sc.start_date)
            .map_err(|e| DrillError::Setup(format!("start_date: {e}")))?;
        let (m, d) = match sc.kind {
            Kind::Shelter => {
                let m = generate_with_precincts(
                    PopulationSpec {
                        households: sc.households,
                        seed: sc.seed,
                        today: date,
                        voters: false,
                    },
                    0,
                )?;
                let d = shelter_operation(&m, sc.shelters)?;
                (m, d)
            }
            Kind::Election => {
                let el = sc
                    .election
                    .as_ref()
                    .ok_or_else(|| DrillError::Setup("no [election] table".into()))?;
                let day = CivilDate::from_days_since_epoch(date.days_since_epoch() + el.early_days)
                    .ok_or_else(|| DrillError::Setup("election day out of range".into()))?;
                let m = generate_with_precincts(
                    PopulationSpec {
                        households: sc.households,
                        seed: sc.seed,
                        today: date,
                        voters: true,
                    },
                    el.stations,
                )?;
                let d = election_sized(&m, day, el.early_offices, el.early_days, el.stations)?;
                (m, d)
            }
        };
        let start = date
            .jst_midnight()
            .ok_or_else(|| DrillError::Setup("start_date out of range".into()))?
            + (sc.start_hour * HOUR as f64) as u64;
        let end = at_hours(start, sc.hours);
        let deployment = Arc::new(d);
        let roster = Arc::new(m.roster.clone());
        let fleet =
            fleet_sized(&deployment, sc.seed, sc.laptops_per_site).map_err(DrillError::Setup)?;
        let dir = match work {
            Some(w) => {
                std::fs::create_dir_all(w)?;
                tempfile::Builder::new()
                    .prefix("kazashi-drill-")
                    .tempdir_in(w)?
            }
            None => tempfile::Builder::new()
                .prefix("kazashi-drill-")
                .tempdir()?,
        };
        let clock = ManualClock::new(start);
        let sites: Vec<SiteId> = deployment.sites().map(|s| s.id).collect();
        let mut laptops = Vec::new();
        let mut nth: BTreeMap<SiteId, usize> = BTreeMap::new();
        for (i, (site, key)) in fleet.stations.into_iter().enumerate() {
            let n = nth.entry(site).or_default();
            let label = format!("{site}#{}", *n + 1);
            let skew_ms = sc
                .faults
                .iter()
                .filter_map(|f| match f {
                    Fault::ClockSkew {
                        site: s,
                        laptop,
                        minutes,
                    } if s == site.as_str() && *laptop == *n => Some(minutes * 60_000),
                    _ => None,
                })
                .sum();
            *n += 1;
            let path = dir.path().join(format!("laptop-{i:04}.db"));
            let copy = kazashi_sync::DeviceKey::from_seed(key.secret_bytes());
            let own_clock =
                extra::jumps(&sc.faults, site.as_str(), *n - 1).then(|| ManualClock::new(start));
            let node = Node::create(
                &path,
                PASSPHRASE,
                KdfParams::FAST_INSECURE,
                key,
                &fleet.manifest,
                roster.clone(),
                site,
                SkewedClock {
                    inner: own_clock.clone().unwrap_or_else(|| clock.clone()),
                    skew_ms,
                },
            )
            .map_err(|e| DrillError::Node(label.clone(), e))?;
            node.relax_durability_for_simulation()
                .map_err(|e| DrillError::Node(label.clone(), e))?;
            laptops.push(Laptop {
                site,
                label,
                path,
                skew_ms,
                node: Some(node),
                status: Status::Up,
                links: Vec::new(),
                key: copy,
                own_clock,
                jump_ms: 0,
                overlay: None,
            });
        }
        for f in &sc.faults {
            for n in f.sites() {
                if !sites.iter().any(|s| s.as_str() == n) {
                    return Err(DrillError::UnknownSite(n.clone()));
                }
            }
        }
        for c in &sc.cars {
            for n in &c.route {
                if !sites.iter().any(|s| s.as_str() == n) {
                    return Err(DrillError::UnknownSite(n.clone()));
                }
            }
        }
        let n = laptops.len();
        let operator = OperatorId::new("drill01").map_err(|e| DrillError::Setup(e.to_string()))?;
        let mut e = Engine {
            net_rng: NetRng::new(sc.seed ^ 0x006e_6574_776f_726b),
            wrng: ChaCha8Rng::seed_from_u64(sc.seed ^ 0x0077_6f72_6c64),
            robin: vec![0; sites.len()],
            carried: vec![BTreeMap::new(); sc.cars.len()],
            sc,
            deployment,
            roster,
            municipality: m,
            sites,
            laptops,
            links: Vec::new(),
            rejoin: Vec::new(),
            clock,
            now: start,
            start,
            end,
            queue: BinaryHeap::new(),
            seq: 0,
            next_conn: 1,
            track: Tracker::new(n),
            ids: FxHashMap::default(),
            god: State::new(),
            active: Vec::new(),
            wire: Wire::default(),
            waiting: Vec::new(),
            stays: Vec::new(),
            planted: Vec::new(),
            pending_detect: Vec::new(),
            samples: Vec::new(),
            trace: Vec::new(),
            refusals: BTreeMap::new(),
            unrecorded: 0,
            first_write: BTreeMap::new(),
            stats: RunStats::default(),
            bounds: None,
            operator,
            extra: extra::Extra::new(&fleet.admin, &fleet.manifest),
            _dir: dir,
        };
        e.build_links();
        e.schedule_start()?;
        Ok(e)
    }

    fn site_ix(&self, name: &str) -> Option<usize> {
        self.sites.iter().position(|s| s.as_str() == name)
    }

    fn laptop_ix(&self, site: &str, nth: usize) -> Option<usize> {
        self.laptops
            .iter()
            .enumerate()
            .filter(|(_, l)| l.site.as_str() == site)
            .nth(nth)
            .map(|(i, _)| i)
    }

    fn hq(&self) -> Option<usize> {
        let hq = self
            .deployment
            .sites()
            .find(|s| matches!(s.kind, SiteKind::CommandCenter))?;
        self.laptops.iter().position(|l| l.site == hq.id)
    }

    fn push(&mut self, t: u64, job: Job) {
        self.seq += 1;
        self.queue.push(Reverse(Entry {
            t,
            seq: self.seq,
            job,
        }));
    }

    fn schedule_start(&mut self) -> Result<(), DrillError> {
        let start = self.start;
        // Election-day stations are switched on on the morning of the day.
        if let DeploymentKind::Election { election_day, .. } = self.deployment.kind() {
            let day_sites: Vec<SiteId> = self
                .deployment
                .sites()
                .filter(|s| {
                    matches!(
                        s.kind,
                        SiteKind::PollingStation {
                            early_voting: false,
                            ..
                        }
                    )
                })
                .map(|s| s.id)
                .collect();
            let on: Vec<usize> = (0..self.laptops.len())
                .filter(|&i| {
                    self.laptops
                        .get(i)
                        .is_some_and(|l| day_sites.contains(&l.site))
                })
                .collect();
            for &i in &on {
                if let Some(l) = self.laptops.get_mut(i) {
                    l.status = Status::Off;
                }
            }
            let morning = election_day
                .jst_midnight()
                .ok_or_else(|| DrillError::Setup("election day out of range".into()))?
                + 6 * HOUR;
            self.push(morning.max(start), Job::PowerOn(on));
        }
        for i in 0..self.laptops.len() {
            if self.laptops.get(i).is_some_and(|l| l.status == Status::Up) {
                self.track.set_up(i, true, start);
                self.trace.push((start, Trace::Up(i)));
            }
        }
        self.dial_all();
        for (i, f) in self.sc.faults.clone().iter().enumerate() {
            match f {
                Fault::Partition { from, until, .. } => {
                    self.push(at_hours(start, *from), Job::FaultStart(i));
                    self.push(at_hours(start, *until), Job::FaultEnd(i));
                }
                Fault::Crash { at, restart, .. } => {
                    self.push(at_hours(start, *at), Job::FaultStart(i));
                    self.push(at_hours(start, *restart), Job::FaultEnd(i));
                }
                Fault::LostLaptop { at, .. }
                | Fault::ClockJump { at, .. }
                | Fault::ManifestChange { at, .. } => {
                    self.push(at_hours(start, *at), Job::FaultStart(i))
                }
                Fault::OneWay { from, until, .. } => {
                    self.push(at_hours(start, *from), Job::FaultStart(i));
                    self.push(at_hours(start, *until), Job::FaultEnd(i));
                }
                Fault::ClockSkew { .. } => {}
            }
        }
        for (c, car) in self.sc.cars.clone().iter().enumerate() {
            self.push(at_hours(start, car.first), Job::CarStop { car: c, stop: 0 });
        }
        self.push(start, Job::Sample);
        match self.sc.kind {
            Kind::Shelter => self.plan_shelter(),
            Kind::Election => self.plan_election(),
        }
        Ok(())
    }

    // ----- the workload -----

    fn plan_shelter(&mut self) {
        let mut hh: Vec<HouseholdId> = self.roster.entries().iter().map(|e| e.household).collect();
        hh.dedup();
        // Shuffle (Fisher–Yates) with the workload's stream; arrivals pop from the end.
        for i in (1..hh.len()).rev() {
            let j = self.wrng.random_range(0..=i);
            hh.swap(i, j);
        }
        self.waiting = hh;
        self.push(
            self.start,
            Job::Act {
                act: Act::ArrivalTick,
                tries: 0,
            },
        );
        let Some(sh) = self.sc.shelter.clone() else {
            return;
        };
        let span = self.end.saturating_sub(self.start);
        for _ in 0..sh.double_registrations {
            let t = self.start + span / 5 + self.wrng.random_range(0..(span * 3 / 5).max(1));
            self.push(
                t,
                Job::Act {
                    act: Act::PlantDouble,
                    tries: 0,
                },
            );
        }
        for _ in 0..sh.variant_walk_ins {
            let t = self.start + span / 5 + self.wrng.random_range(0..(span * 3 / 5).max(1));
            self.push(
                t,
                Job::Act {
                    act: Act::PlantVariant,
                    tries: 0,
                },
            );
        }
        if sh.status_report_hours > 0.0 {
            let every = (sh.status_report_hours * HOUR as f64) as u64;
            let shelters: Vec<(usize, bool)> = self
                .deployment
                .sites()
                .enumerate()
                .map(|(i, s)| (i, s.is_shelter()))
                .collect();
            for (s, is_shelter) in shelters {
                if is_shelter {
                    let mut t = self.start + every;
                    let mut n = 1u16;
                    while t < self.end {
                        self.push(
                            t + (s as u64 % 10) * MINUTE,
                            Job::Act {
                                act: Act::Report { site: s, n },
                                tries: 0,
                            },
                        );
                        t += every;
                        n = n.saturating_add(1);
                    }
                }
            }
        }
    }

    fn arrival_rate(&self, t: u64) -> f64 {
        let h = (t.saturating_sub(self.start)) as f64 / HOUR as f64;
        self.sc.shelter.as_ref().map_or(0.0, |sh| sh.rate_at(h))
    }

    /// Indices (in deployment order) of the sites whose kind passes `keep`.
    fn site_indices(&self, keep: impl Fn(&SiteKind) -> bool) -> Vec<usize> {
        self.deployment
            .sites()
            .enumerate()
            .filter(|(_, s)| keep(&s.kind))
            .map(|(i, _)| i)
            .collect()
    }

    fn shelter_sites(&self) -> Vec<usize> {
        self.site_indices(|k| {
            matches!(
                k,
                SiteKind::Shelter {
                    shelter_type: kazashi_domain::deployment::ShelterType::Designated
                        | kazashi_domain::deployment::ShelterType::Temporary,
                    ..
                }
            )
        })
    }

    fn plan_election(&mut self) {
        let Some(el) = self.sc.election.clone() else {
            return;
        };
        let DeploymentKind::Election {
            election_day,
            early_voting_from,
        } = self.deployment.kind()
        else {
            return;
        };
        let early = self.site_indices(|k| {
            matches!(
                k,
                SiteKind::PollingStation {
                    early_voting: true,
                    ..
                }
            )
        });
        let station_of = |d: &Deployment, p: &kazashi_domain::ids::PrecinctId| {
            d.sites().position(|s| {
                matches!(&s.kind, SiteKind::PollingStation { precincts, election_day: true, .. } if precincts.contains(p))
            })
        };
        let days = (election_day.days_since_epoch() - early_voting_from.days_since_epoch()).max(0);
        let day0 = early_voting_from.jst_midnight().unwrap_or(self.start);
        let eday = election_day.jst_midnight().unwrap_or(self.start);
        let mut early_voters = Vec::new();
        let mut day_voters = Vec::new();
        let mut stay_home = Vec::new();
        let entries: Vec<_> = self.roster.entries().to_vec();
        for e in &entries {
            let Some(info) = &e.voter else { continue };
            if !info.flags.eligible || info.flags.absentee_voted || info.flags.early_voted {
                continue;
            }
            let Some(own) = station_of(&self.deployment, &info.precinct) else {
                continue;
            };
            if !self.wrng.random_bool(el.turnout) {
                stay_home.push((e.person, own));
                continue;
            }
            if days > 0 && !early.is_empty() && self.wrng.random_bool(el.early_share) {
                let d = self.wrng.random_range(0..days) as u64;
                let site = early
                    .get(self.wrng.random_range(0..early.len()))
                    .copied()
                    .unwrap_or(0);
                let t = day0
                    + d * 24 * HOUR
                    + 8 * HOUR
                    + 30 * MINUTE
                    + self.wrng.random_range(0..(11 * HOUR + 30 * MINUTE));
                self.push(
                    t,
                    Job::Act {
                        act: Act::Vote {
                            voter: e.person,
                            site,
                            early: true,
                            planted: None,
                        },
                        tries: 0,
                    },
                );
                early_voters.push((e.person, own, t));
            } else {
                let t = eday + 7 * HOUR + self.wrng.random_range(0..13 * HOUR);
                self.push(
                    t,
                    Job::Act {
                        act: Act::Vote {
                            voter: e.person,
                            site: own,
                            early: false,
                            planted: None,
                        },
                        tries: 0,
                    },
                );
                day_voters.push((e.person, own, t));
            }
        }
        let day_sites = self.site_indices(|k| {
            matches!(
                k,
                SiteKind::PollingStation {
                    election_day: true,
                    ..
                }
            )
        });
        let dv = el.double_votes;
        // Early, then again on election day at the voter's own station.
        for _ in 0..dv.early_and_day {
            if early_voters.is_empty() {
                break;
            }
            let (voter, own, _) =
                early_voters.swap_remove(self.wrng.random_range(0..early_voters.len()));
            let t = eday + 7 * HOUR + self.wrng.random_range(0..13 * HOUR);
            self.plant_vote("early+day", voter, own, t);
        }
        // Two stations on election day, a few minutes to hours apart.
        for _ in 0..dv.two_stations {
            if day_voters.is_empty() || day_sites.len() < 2 {
                break;
            }
            let (voter, own, t1) =
                day_voters.swap_remove(self.wrng.random_range(0..day_voters.len()));
            let others: Vec<usize> = day_sites.iter().copied().filter(|&s| s != own).collect();
            let site = others
                .get(self.wrng.random_range(0..others.len()))
                .copied()
                .unwrap_or(own);
            let t = (t1 + 5 * MINUTE + self.wrng.random_range(0..2 * HOUR)).min(eday + 20 * HOUR);
            self.plant_vote("two-stations", voter, site, t);
        }
        // At a station while it is cut off, and at the voter's own station.
        let cut: Vec<(Vec<usize>, u64, u64)> = self
            .sc
            .faults
            .iter()
            .filter_map(|f| match f {
                Fault::Partition {
                    sites, from, until, ..
                } => {
                    let (a, b) = (at_hours(self.start, *from), at_hours(self.start, *until));
                    (b > eday + 7 * HOUR && a < eday + 20 * HOUR).then(|| {
                        (
                            sites
                                .iter()
                                .filter_map(|n| self.site_ix(n))
                                .collect::<Vec<_>>(),
                            a.max(eday + 7 * HOUR),
                            b.min(eday + 20 * HOUR),
                        )
                    })
                }
                _ => None,
            })
            .collect();
        for k in 0..dv.offline {
            let Some((cut_sites, a, b)) = cut.get(k % cut.len().max(1)).cloned() else {
                break;
            };
            // An early voter of a station that has been cut off since before it was switched
            // on, so it never received the early votes: the missing flag behind real second
            // ballots.
            let Some(pos) = early_voters
                .iter()
                .position(|(_, own, _)| cut_sites.contains(own))
            else {
                break;
            };
            let (voter, own, _) = early_voters.swap_remove(pos);
            let t = a + self.wrng.random_range(0..b.saturating_sub(a).max(1));
            self.plant_vote("offline", voter, own, t);
        }
    }

    fn plant_vote(&mut self, kind: &'static str, voter: PersonId, site: usize, t: u64) {
        let idx = self.planted.len();
        self.planted.push(Planted::new(
            kind,
            PersonRef::Roster(voter),
            &[AlertKind::DoubleVote],
        ));
        self.push(
            t,
            Job::Act {
                act: Act::Vote {
                    voter,
                    site,
                    early: false,
                    planted: Some(idx),
                },
                tries: 0,
            },
        );
    }

    /// The laptop at `site` that takes the next write: the site's laptops that are up, in turn.
    fn desk(&mut self, site: usize) -> Option<usize> {
        let id = *self.sites.get(site)?;
        let up: Vec<usize> = (0..self.laptops.len())
            .filter(|&i| {
                self.laptops
                    .get(i)
                    .is_some_and(|l| l.site == id && l.status == Status::Up)
            })
            .collect();
        if up.is_empty() {
            return None;
        }
        let r = self.robin.get_mut(site)?;
        *r += 1;
        up.get(*r % up.len()).copied()
    }

    /// Write at a laptop: the real `Node::record`. The event is tracked, folded into the truth
    /// and pushed to the laptop's peers.
    fn record(&mut self, laptop: usize, body: EventBody) -> Result<Event, NodeError> {
        let op = self.operator;
        let node = self
            .laptops
            .get_mut(laptop)
            .and_then(|l| l.node.as_mut())
            .ok_or(NodeError::NotEnrolledHere)?;
        self.stats.node_steps += 1;
        let event = node.record(op, body)?;
        self.stats.events += 1;
        let calm = self.active.is_empty() && self.laptops.iter().all(|l| l.status != Status::Down);
        let e = self.track.create(laptop, self.now, calm);
        self.ids.insert(event.id(), e);
        let size = self
            .laptops
            .get(laptop)
            .and_then(|l| kazashi_sync::envelope::seal(&event, self.deployment.id(), &l.key).ok())
            .map_or(0, |b| b.len() as u32);
        self.trace
            .push((self.now, Trace::Create { laptop, size, calm }));
        self.first_write.entry(event.site()).or_insert(self.now);
        self.god.insert(event.clone());
        self.bump(laptop);
        self.check_detection(laptop);
        Ok(event)
    }

    fn refused(&mut self, what: &str, e: &NodeError) {
        let reason = match e {
            NodeError::Station(kazashi_node::StationError::Blocked(_)) => "blocked at the desk",
            NodeError::Station(_) => "refused by the station's checks",
            _ => "laptop error",
        };
        *self
            .refusals
            .entry(format!("{what}: {reason}"))
            .or_default() += 1;
    }

    /// No laptop up at the site: the desk notes it on paper and enters it ten minutes later,
    /// up to twelve times.
    fn retry(&mut self, act: Act, tries: u8) {
        if tries < 12 {
            let t = self.now + 10 * MINUTE;
            self.push(
                t,
                Job::Act {
                    act,
                    tries: tries + 1,
                },
            );
        } else {
            self.unrecorded += 1;
        }
    }

    /// The shared shape of every household act: at a desk of `site` (or `retry` later if none
    /// is up), write `body` made from household `hh`'s members. Whether it was written; a
    /// refusal is counted under `what`.
    fn household_write(
        &mut self,
        hh: usize,
        site: usize,
        retry: Option<(Act, u8)>,
        what: &str,
        body: impl FnOnce(&mut Self, Members) -> EventBody,
    ) -> bool {
        let Some(laptop) = self.desk(site) else {
            if let Some((act, tries)) = retry {
                self.retry(act, tries);
            }
            return false;
        };
        let Some(members) = self
            .stays
            .get(hh)
            .and_then(|s| Members::new(s.members.clone()).ok())
        else {
            return false;
        };
        let body = body(self, members);
        match self.record(laptop, body) {
            Ok(_) => true,
            Err(e) => {
                self.refused(what, &e);
                false
            }
        }
    }

    fn act(&mut self, act: Act, tries: u8) {
        match act {
            Act::ArrivalTick => {
                if self.now >= self.end {
                    return;
                }
                let rate = self.arrival_rate(self.now);
                let step = 5 * MINUTE;
                let mean = rate * (step as f64 / HOUR as f64);
                let whole = mean.floor() as u64;
                let n =
                    whole + u64::from(self.wrng.random_bool((mean - whole as f64).clamp(0.0, 1.0)));
                for _ in 0..n {
                    let t = self.now + self.wrng.random_range(0..step);
                    self.push(
                        t,
                        Job::Act {
                            act: Act::Arrive { site: None },
                            tries: 0,
                        },
                    );
                }
                self.push(
                    self.now + step,
                    Job::Act {
                        act: Act::ArrivalTick,
                        tries: 0,
                    },
                );
            }
            Act::Arrive { site } => {
                if let Some(site) = self.arrive(site) {
                    // No laptop up there: the desk writes it down and enters it later.
                    self.retry(Act::Arrive { site: Some(site) }, tries);
                }
            }
            Act::MoveOut { hh, to } => {
                let Some(site) = self.stays.get(hh).filter(|s| s.settled()).map(|s| s.site) else {
                    return;
                };
                let reason = CheckOutReason::OtherShelter(self.sites.get(to).copied());
                let retry = Some((Act::MoveOut { hh, to }, tries));
                if self.household_write(hh, site, retry, "move (check-out)", |_, members| {
                    EventBody::ShelterCheckOut { members, reason }
                }) {
                    if let Some(s) = self.stays.get_mut(hh) {
                        s.moving = Some(to);
                    }
                    let t = self.paced(30 * MINUTE, 60 * MINUTE);
                    self.push(
                        t,
                        Job::Act {
                            act: Act::MoveIn { hh },
                            tries: 0,
                        },
                    );
                }
            }
            Act::MoveIn { hh } => {
                let Some(to) = self.stays.get(hh).and_then(|s| s.moving) else {
                    return;
                };
                let retry = Some((Act::MoveIn { hh }, tries));
                if self.household_write(hh, to, retry, "move (check-in)", |_, members| {
                    EventBody::ShelterCheckIn {
                        household: None,
                        members,
                        method: IdMethod::CardTap,
                    }
                }) && let Some(s) = self.stays.get_mut(hh)
                {
                    s.site = to;
                    s.moving = None;
                }
            }
            Act::GoHome { hh } => {
                // Out for the day or not, a household may leave for home.
                let Some(site) = self
                    .stays
                    .get(hh)
                    .filter(|s| !s.gone && s.moving.is_none() && !s.frozen)
                    .map(|s| s.site)
                else {
                    return;
                };
                let retry = Some((Act::GoHome { hh }, tries));
                if self.household_write(hh, site, retry, "check-out", |_, members| {
                    EventBody::ShelterCheckOut {
                        members,
                        reason: CheckOutReason::Home,
                    }
                }) && let Some(s) = self.stays.get_mut(hh)
                {
                    s.gone = true;
                }
            }
            Act::Outing { hh } => {
                let Some(site) = self.stays.get(hh).filter(|s| s.settled()).map(|s| s.site) else {
                    return;
                };
                // An outing nobody could write down did not happen: no retry.
                let mut back = 0;
                if self.household_write(hh, site, None, "outing", |e, members| {
                    back = e.paced(HOUR, 3 * HOUR);
                    EventBody::TemporaryLeave {
                        members,
                        kind: LeaveKind::Outing,
                        expected_return: Some(back),
                    }
                }) {
                    if let Some(s) = self.stays.get_mut(hh) {
                        s.out = true;
                    }
                    self.push(
                        back,
                        Job::Act {
                            act: Act::Return { hh },
                            tries: 0,
                        },
                    );
                }
            }
            Act::Return { hh } => {
                let Some(site) = self.stays.get(hh).filter(|s| s.out).map(|s| s.site) else {
                    return;
                };
                let retry = Some((Act::Return { hh }, tries));
                if self.household_write(hh, site, retry, "return", |_, members| {
                    EventBody::ReturnFromLeave { members }
                }) && let Some(s) = self.stays.get_mut(hh)
                {
                    s.out = false;
                }
            }
            Act::Report { site, n } => {
                let Some(laptop) = self.desk(site) else {
                    return;
                };
                let Some(id) = self.sites.get(site).copied() else {
                    return;
                };
                let Some(node) = self.laptops.get(laptop).and_then(|l| l.node.as_ref()) else {
                    return;
                };
                let today = CivilDate::jst_of(self.now).unwrap_or(self.municipality.today);
                let counts = node.state().site_counts(&id, &self.roster, today, None);
                let report =
                    crate::workload::status_report(ReportKind::Periodic(n), &counts, self.start);
                if let Err(e) =
                    self.record(laptop, EventBody::ShelterStatusReport(Box::new(report)))
                {
                    self.refused("status report", &e);
                }
            }
            Act::PlantDouble => self.plant_double(),
            Act::PlantVariant => self.plant_variant(),
            Act::Undo { hh, target } => self.undo(hh, target, tries),
            Act::Vote {
                voter,
                site,
                early,
                planted,
            } => {
                let Some(laptop) = self.desk(site) else {
                    let act = Act::Vote {
                        voter,
                        site,
                        early,
                        planted,
                    };
                    return self.retry(act, tries);
                };
                let mode = if early {
                    VoteMode::Early(EarlyVotingReason::Duties)
                } else {
                    VoteMode::ElectionDay
                };
                let written = self.record(
                    laptop,
                    EventBody::VoterCheckIn {
                        voter,
                        mode,
                        method: IdMethod::AdmissionTicket,
                        override_: None,
                    },
                );
                match (planted, written) {
                    (None, Ok(_)) => {}
                    (None, Err(e)) => self.refused("vote", &e),
                    (Some(p), written) => {
                        let evidence = match written {
                            Ok(ev) => match self.first_vote(&voter, ev.id()) {
                                Some(first) => Ok(vec![first, ev.id()]),
                                None => return,
                            },
                            Err(e) => Err(e),
                        };
                        self.planted_written(p, laptop, evidence, false, "planted double vote");
                    }
                }
            }
        }
    }

    /// The voter's other check-in, from the truth.
    fn first_vote(&self, voter: &PersonId, not: EventId) -> Option<EventId> {
        self.god
            .votes_of(voter, None)
            .into_iter()
            .map(|r| r.event)
            .find(|e| *e != not)
    }

    /// An arrival at `site` (chosen now if `None`); returns the site if no laptop there is up.
    fn arrive(&mut self, site: Option<usize>) -> Option<usize> {
        let sh = self.sc.shelter.clone()?;
        let sites = self.shelter_sites();
        if sites.is_empty() {
            return None;
        }
        let site = match site {
            Some(s) => s,
            None => sites
                .get(self.wrng.random_range(0..sites.len()))
                .copied()
                .unwrap_or(0),
        };
        let Some(laptop) = self.desk(site) else {
            return Some(site);
        };
        let roll: f64 = self.wrng.random_range(0.0..1.0);
        let hh_ix = self.stays.len();
        let members: Vec<PersonRef>;
        let body;
        if roll < sh.walk_in {
            let k = self.wrng.random_range(1..4usize);
            let people = walk_in_group(k, self.now ^ (k as u64) ^ (hh_ix as u64) << 20);
            let reg = match self.record(
                laptop,
                EventBody::WalkInRegistration {
                    members: people,
                    home_municipality: Label::new("隣町").ok(),
                },
            ) {
                Ok(r) => r,
                Err(e) => {
                    self.refused("walk-in", &e);
                    return None;
                }
            };
            members = (0..k)
                .map(|j| PersonRef::WalkIn {
                    registration: reg.id(),
                    index: j as u16,
                })
                .collect();
            let m = Members::new(members.clone()).ok()?;
            body = EventBody::ShelterCheckIn {
                household: Some(kazashi_domain::ids::HouseholdRef::WalkIn(reg.id())),
                members: m,
                method: IdMethod::Lookup,
            };
        } else {
            let h = self.waiting.pop()?;
            members = self
                .roster
                .household(&h)
                .iter()
                .map(|e| PersonRef::Roster(e.person))
                .collect();
            let m = Members::new(members.clone()).ok()?;
            body = if roll < sh.walk_in + sh.car {
                EventBody::SupportOnlyRegistration {
                    household: Some(kazashi_domain::ids::HouseholdRef::Roster(h)),
                    members: m,
                    staying: StayingPlace::Car,
                }
            } else {
                EventBody::ShelterCheckIn {
                    household: Some(kazashi_domain::ids::HouseholdRef::Roster(h)),
                    members: m,
                    method: if self.wrng.random_bool(0.7) {
                        IdMethod::CardTap
                    } else {
                        IdMethod::Lookup
                    },
                }
            };
        }
        let in_shelter = matches!(body, EventBody::ShelterCheckIn { .. });
        let checked_in = match self.record(laptop, body) {
            Ok(ev) => ev.id(),
            Err(e) => {
                self.refused("check-in", &e);
                return None;
            }
        };
        self.stays.push(Stay {
            site,
            members,
            out: false,
            moving: None,
            gone: !in_shelter,
            frozen: false,
        });
        if !in_shelter {
            return None;
        }
        if sh.undo > 0.0 && self.wrng.random_bool(sh.undo.clamp(0.0, 1.0)) {
            // A wrong household picked at the desk, undone a few minutes later.
            let t = self.now + MINUTE + self.wrng.random_range(0..10 * MINUTE);
            let act = Act::Undo {
                hh: hh_ix,
                target: checked_in,
            };
            self.push(t, Job::Act { act, tries: 0 });
            // Nothing else befalls it (no planted case picks it) before the undo.
            if let Some(st) = self.stays.get_mut(hh_ix) {
                st.frozen = true;
            }
            return None;
        }
        let r: f64 = self.wrng.random_range(0.0..1.0);
        if r < sh.move_on && sites.len() > 1 {
            let to = sites
                .get(self.wrng.random_range(0..sites.len()))
                .copied()
                .unwrap_or(site);
            if to != site {
                let t = self.paced(2 * HOUR, 22 * HOUR);
                self.push(
                    t,
                    Job::Act {
                        act: Act::MoveOut { hh: hh_ix, to },
                        tries: 0,
                    },
                );
            }
        } else if r < sh.move_on + sh.go_home {
            let t = self.paced(4 * HOUR, 32 * HOUR);
            self.push(
                t,
                Job::Act {
                    act: Act::GoHome { hh: hh_ix },
                    tries: 0,
                },
            );
        } else if r < sh.move_on + sh.go_home + sh.outing {
            let t = self.paced(HOUR, 8 * HOUR);
            self.push(
                t,
                Job::Act {
                    act: Act::Outing { hh: hh_ix },
                    tries: 0,
                },
            );
        }
        None
    }

    /// A present roster person, chosen with the workload's stream.
    fn someone_present(&mut self) -> Option<(usize, PersonId)> {
        let present: Vec<usize> = (0..self.stays.len())
            .filter(|&i| {
                self.stays.get(i).is_some_and(|s| {
                    s.settled() && matches!(s.members.first(), Some(PersonRef::Roster(_)))
                })
            })
            .collect();
        let i = *present.get(self.wrng.random_range(0..present.len().max(1)))?;
        let st = self.stays.get_mut(i)?;
        st.frozen = true;
        let person = st.members.iter().find_map(|p| match p {
            PersonRef::Roster(id) => Some(*id),
            _ => None,
        })?;
        Some((st.site, person))
    }

    fn other_shelter(&mut self, site: usize) -> Option<usize> {
        let others: Vec<usize> = self
            .shelter_sites()
            .into_iter()
            .filter(|&s| s != site)
            .collect();
        others
            .get(self.wrng.random_range(0..others.len().max(1)))
            .copied()
    }

    fn plant_double(&mut self) {
        let Some((site, person)) = self.someone_present() else {
            return;
        };
        let Some(other) = self.other_shelter(site) else {
            return;
        };
        let Some(laptop) = self.desk(other) else {
            return;
        };
        let Some(first) = self
            .god
            .registered_at(&PersonRef::Roster(person))
            .first()
            .map(|(_, e)| *e)
        else {
            return;
        };
        let p = self.planted.len();
        self.planted.push(Planted::new(
            "registered-twice",
            PersonRef::Roster(person),
            &[AlertKind::PresentAtTwoSites],
        ));
        let Ok(members) = Members::new(vec![PersonRef::Roster(person)]) else {
            return;
        };
        let written = self.record(
            laptop,
            EventBody::ShelterCheckIn {
                household: None,
                members,
                method: IdMethod::Lookup,
            },
        );
        self.planted_written(
            p,
            laptop,
            written.map(|ev| vec![first, ev.id()]),
            true,
            "planted double registration",
        );
    }

    fn plant_variant(&mut self) {
        let Some((site, person)) = self.someone_present() else {
            return;
        };
        let Some(other) = self.other_shelter(site) else {
            return;
        };
        let Some(laptop) = self.desk(other) else {
            return;
        };
        let entry = self.roster.get(&person);
        let Some(entry) = entry.as_deref().cloned() else {
            return;
        };
        let walk = WalkInPerson {
            name: variant_name(&entry.name).unwrap_or_else(|| entry.name.clone()),
            kana: KanaReading::new(entry.kana.as_str()).ok(),
            birth_date: Some(entry.birth_date),
            sex: entry.sex,
            address: Some(entry.address.clone()),
            care_needs: entry.care_needs.clone(),
        };
        let p = self.planted.len();
        self.planted.push(Planted::new(
            "variant-walk-in",
            PersonRef::Roster(person),
            &[AlertKind::LikelyDuplicate, AlertKind::PossibleDuplicate],
        ));
        let written = self.record(
            laptop,
            EventBody::WalkInRegistration {
                members: vec![walk],
                home_municipality: None,
            },
        );
        self.planted_written(
            p,
            laptop,
            written.map(|reg| vec![reg.id()]),
            true,
            "planted variant walk-in",
        );
    }

    /// What became of planted case `p`'s write at `laptop`: on the record with its evidence
    /// (and looked for at once on that laptop), or refused — "blocked at the desk" if
    /// `any_refusal_blocks` or the refusal was a live block.
    fn planted_written(
        &mut self,
        p: usize,
        laptop: usize,
        evidence: Result<Vec<EventId>, NodeError>,
        any_refusal_blocks: bool,
        what: &str,
    ) {
        match evidence {
            Ok(evidence) => {
                if let Some(pl) = self.planted.get_mut(p) {
                    pl.evidence = evidence;
                    pl.recorded_at = Some(self.now);
                }
                self.pending_detect.push(p);
                self.check_detection(laptop);
            }
            Err(e) => {
                if let Some(pl) = self.planted.get_mut(p) {
                    pl.blocked = any_refusal_blocks
                        || matches!(
                            e,
                            NodeError::Station(kazashi_node::StationError::Blocked(_))
                        );
                }
                self.refused(what, &e);
            }
        }
    }

    /// For each planted case `laptop` now holds the evidence of: does its detector show it?
    fn check_detection(&mut self, laptop: usize) {
        if self.pending_detect.is_empty() {
            return;
        }
        let due: Vec<usize> = self
            .pending_detect
            .iter()
            .copied()
            .filter(|&p| {
                self.planted.get(p).is_some_and(|pl| {
                    !pl.detected.contains_key(&laptop)
                        && !pl.evidence.is_empty()
                        && pl.evidence.iter().all(|id| {
                            self.ids
                                .get(id)
                                .is_some_and(|&e| self.track.holds(laptop, e))
                        })
                })
            })
            .collect();
        if due.is_empty() {
            return;
        }
        let Some(node) = self.laptops.get_mut(laptop).and_then(|l| l.node.as_mut()) else {
            return;
        };
        self.stats.node_steps += 1;
        let alerts = node.alerts();
        for p in due {
            if let Some(pl) = self.planted.get_mut(p)
                && alerts
                    .iter()
                    .any(|a| pl.alert.contains(&a.kind) && a.subjects.contains(&pl.subject))
            {
                pl.detected.insert(laptop, self.now);
            }
        }
    }

    // ----- the network -----

    fn gained(&mut self, laptop: usize, ids: &[EventId]) {
        for id in ids {
            if let Some(&e) = self.ids.get(id) {
                self.track.gain(laptop, e, self.now);
            }
        }
        self.check_detection(laptop);
    }

    // ----- faults, power, cars -----

    fn go_down(&mut self, laptop: usize, status: Status) {
        self.links_down(laptop);
        if let Some(l) = self.laptops.get_mut(laptop) {
            l.node = None;
            l.status = status;
        }
        self.track.set_up(laptop, false, self.now);
        self.trace.push((self.now, Trace::Down(laptop)));
    }

    fn come_up(&mut self, laptop: usize) -> Result<(), DrillError> {
        let Some(l) = self.laptops.get_mut(laptop) else {
            return Ok(());
        };
        if l.status == Status::Lost || l.status == Status::Up {
            return Ok(());
        }
        if l.node.is_none() {
            let node = Node::open(
                &l.path,
                PASSPHRASE,
                self.roster.clone(),
                l.site,
                SkewedClock {
                    inner: l.own_clock.clone().unwrap_or_else(|| self.clock.clone()),
                    skew_ms: l.skew_ms,
                },
            )
            .map_err(|e| DrillError::Node(l.label.clone(), e))?;
            node.relax_durability_for_simulation()
                .map_err(|e| DrillError::Node(l.label.clone(), e))?;
            self.stats.node_steps += 1;
            l.node = Some(node);
            l.status = Status::Up;
            self.check_restart(laptop);
        }
        if let Some(l) = self.laptops.get_mut(laptop) {
            l.status = Status::Up;
        }
        self.links_up(laptop);
        self.track.set_up(laptop, true, self.now);
        self.trace.push((self.now, Trace::Up(laptop)));
        Ok(())
    }

    fn heal(&mut self, label: String) {
        self.track.heal(label.clone(), self.now);
        self.trace.push((self.now, Trace::Heal(label)));
    }

    fn fault(&mut self, i: usize, starting: bool) -> Result<(), DrillError> {
        let Some(f) = self.sc.faults.get(i).cloned() else {
            return Ok(());
        };
        match f {
            Fault::Partition { sites, .. } => {
                if starting {
                    self.active.push(i);
                    self.cut();
                } else {
                    self.active.retain(|&a| a != i);
                    self.heal(format!("partition of {} ends", sites.join(", ")));
                    self.redial();
                }
                self.trace
                    .push((self.now, Trace::Partitions(self.active.clone())));
            }
            Fault::Crash { site, laptop, .. } => {
                let Some(l) = self.laptop_ix(&site, laptop) else {
                    return Ok(());
                };
                if starting {
                    if self.laptops.get(l).is_some_and(|x| x.status == Status::Up) {
                        self.go_down(l, Status::Down);
                    }
                } else if self
                    .laptops
                    .get(l)
                    .is_some_and(|x| x.status == Status::Down)
                {
                    self.come_up(l)?;
                    self.heal(format!("{site} laptop {} restarts", laptop + 1));
                    self.redial();
                }
            }
            Fault::LostLaptop { site, laptop, .. } => {
                if let Some(l) = self.laptop_ix(&site, laptop)
                    && self
                        .laptops
                        .get(l)
                        .is_some_and(|x| x.status != Status::Lost)
                {
                    self.go_down(l, Status::Lost);
                }
            }
            Fault::ClockSkew { .. } => {}
            Fault::OneWay { .. } | Fault::ClockJump { .. } | Fault::ManifestChange { .. } => {
                self.extra_fault(&f, starting)
            }
        }
        Ok(())
    }

    fn car_stop(&mut self, car: usize, stop: usize) {
        let Some(c) = self.sc.cars.get(car).cloned() else {
            return;
        };
        let until = c.until.map_or(self.end, |u| at_hours(self.start, u));
        if self.now > until || self.now >= self.end {
            return;
        }
        let site_name = c
            .route
            .get(stop % c.route.len().max(1))
            .cloned()
            .unwrap_or_default();
        let next = self.now + (c.leg_hours * HOUR as f64) as u64;
        self.push(
            next,
            Job::CarStop {
                car,
                stop: stop + 1,
            },
        );
        let Some(site) = self.site_ix(&site_name) else {
            return;
        };
        let Some(laptop) = self.desk(site) else {
            return;
        };
        self.trace.push((self.now, Trace::CarStop { car, laptop }));
        let carried: Vec<Vec<u8>> = self
            .carried
            .get(car)
            .map(|m| {
                m.iter()
                    .filter(|(a, _)| **a != laptop)
                    .map(|(_, b)| b.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut gained = Vec::new();
        let mut bundle = None;
        if let Some(node) = self.laptops.get_mut(laptop).and_then(|l| l.node.as_mut()) {
            for b in carried {
                self.stats.node_steps += 1;
                if let Ok(r) = node.import_bundle(&b, "usb") {
                    gained.extend(r.added_ids);
                }
            }
            self.stats.node_steps += 1;
            bundle = node.export_bundle(BundleScope::All).ok();
        }
        if let Some(b) = bundle {
            self.wire.usb_bytes += b.len() as u64;
            self.wire.bundles += 1;
            if let Some(m) = self.carried.get_mut(car) {
                m.insert(laptop, b);
            }
        }
        if !gained.is_empty() {
            self.gained(laptop, &gained);
            self.bump(laptop);
        }
    }

    fn sample(&mut self) {
        let hours = (self.now - self.start) as f64 / HOUR as f64;
        let today = CivilDate::jst_of(self.now).unwrap_or(self.municipality.today);
        let hq = self.hq();
        let hq_state = hq
            .and_then(|h| self.laptops.get(h))
            .and_then(|l| l.node.as_ref())
            .map(|n| n.state());
        let (truth, seen, err) = match (self.sc.kind, hq_state) {
            (_, None) => (0, 0, 0),
            (Kind::Shelter, Some(hs)) => {
                let (gc, hc) = (self.god.clusters(None), hs.clusters(None));
                let mut t = 0u32;
                let mut s = 0u32;
                let mut e = 0u32;
                for site in self.deployment.sites().filter(|s| s.is_shelter()) {
                    let g = self
                        .god
                        .site_counts_with(&site.id, &self.roster, today, None, &gc);
                    let h = hs.site_counts_with(&site.id, &self.roster, today, None, &hc);
                    let gv = g.registered() + g.support_only.values().sum::<u32>();
                    let hv = h.registered() + h.support_only.values().sum::<u32>();
                    t += gv;
                    s += hv;
                    e += gv.abs_diff(hv);
                }
                (t, s, e)
            }
            (Kind::Election, Some(hs)) => {
                let g = self.god.vote_tallies(None);
                let h = hs.vote_tallies(None);
                let mut t = 0u32;
                let mut s = 0u32;
                let mut e = 0u32;
                for site in &self.sites {
                    let gv = g.get(site).map_or(0, |v| v.early + v.election_day);
                    let hv = h.get(site).map_or(0, |v| v.early + v.election_day);
                    t += gv;
                    s += hv;
                    e += gv.abs_diff(hv);
                }
                (t, s, e)
            }
        };
        // How far behind the sites the command center's picture is: per site, the time of the
        // last event written there minus that of the last one HQ holds.
        let lag = hq_state.map_or(0, |hs| {
            let g = self.god.last_event_per_site(None);
            let h = hs.last_event_per_site(None);
            g.iter()
                .map(|(s, t)| {
                    // Never heard from: behind since the site's first write.
                    let seen = h
                        .get(s)
                        .map(|x| x.wall_ms)
                        .unwrap_or_else(|| self.first_write.get(s).copied().unwrap_or(t.wall_ms));
                    t.wall_ms.saturating_sub(seen)
                })
                .max()
                .unwrap_or(0)
        });
        self.samples.push(Sample {
            hour: (hours * 100.0).round() / 100.0,
            truth,
            seen_by_hq: seen,
            abs_error: err,
            hq_lag_minutes: lag / MINUTE,
            events: self.track.events() as u64,
            wire_bytes: self.wire.bytes,
            baseline_wire_bytes: None,
        });
        let next = self.now + (self.sc.sample_minutes * MINUTE as f64) as u64;
        if next <= self.end {
            self.push(next, Job::Sample);
        }
    }

    /// Bound the run's work (the chaos runner's worlds): a world whose messages never settle
    /// is an error with the reason, not a run that goes on for hours of wall clock.
    pub fn bounded(mut self, bounds: Bounds) -> Self {
        self.bounds = Some(bounds);
        self
    }

    /// The bound a job past `jobs_after_final` (jobs since the final heal began) breaks.
    fn over_bounds(&self, jobs_after_final: Option<u64>) -> Option<String> {
        let b = self.bounds?;
        if self.queue.len() > b.max_pending {
            return Some(format!(
                "a storm of messages: {} jobs pending at {} s of simulated time (bound {})",
                self.queue.len(),
                self.now.saturating_sub(self.start) / 1000,
                b.max_pending
            ));
        }
        match jobs_after_final {
            Some(n) if n > b.max_jobs_after_final => Some(format!(
                "the final heal did not settle within {} jobs ({} s of simulated time after it; {} jobs pending)",
                b.max_jobs_after_final,
                self.now.saturating_sub(self.end) / 1000,
                self.queue.len()
            )),
            _ => None,
        }
    }

    /// Run the scenario, the final heal and the baseline; the report.
    pub fn run(mut self) -> Result<(Report, RunStats), DrillError> {
        let mut final_started = false;
        let mut after_final = 0u64;
        // KAZASHI_DRILL_PROFILE=1: wall time per kind of job, on stderr (not in the report).
        let profile = std::env::var_os("KAZASHI_DRILL_PROFILE").is_some();
        let mut spent = [0f64; 6];
        // With the profile: frames delivered by kind (greeting, sync, ping, manifest, other).
        let mut frames = [0u64; 5];
        loop {
            if !final_started && self.queue.peek().is_none_or(|Reverse(e)| e.t > self.end) {
                // The last scheduled hour is over: end every fault, switch everything on, and
                // let the mesh settle.
                final_started = true;
                self.now = self.now.max(self.end);
                self.set_clocks();
                self.final_heal()?;
                if self.settled() {
                    break;
                }
            }
            let Some(Reverse(entry)) = self.queue.pop() else {
                break;
            };
            if final_started {
                if entry.t > self.end + FINAL_HEAL_LIMIT {
                    break;
                }
                if matches!(
                    entry.job,
                    Job::Act { .. } | Job::CarStop { .. } | Job::Sample
                ) {
                    continue;
                }
            }
            self.now = entry.t.max(self.now);
            self.set_clocks();
            self.stats.jobs += 1;
            if final_started {
                after_final += 1;
            }
            if self.bounds.is_some()
                && let Some(why) = self.over_bounds(final_started.then_some(after_final))
            {
                return Err(DrillError::Unsettled(why));
            }
            let kind = match &entry.job {
                Job::Deliver { .. } => 0,
                Job::Timer { .. } => 1,
                Job::Connect { .. } => 2,
                Job::Act { .. } => 3,
                Job::Sample => 4,
                _ => 5,
            };
            let t0 = profile.then(std::time::Instant::now);
            if profile
                && let Job::Deliver { kind, .. } = &entry.job
                && let Some(n) = frames.get_mut(usize::from(*kind).min(4))
            {
                *n += 1;
            }
            match entry.job {
                Job::Deliver {
                    link,
                    conn,
                    to,
                    kind,
                    bytes,
                } => self.deliver(link, conn, to, kind, bytes),
                Job::Timer {
                    link,
                    conn,
                    side,
                    generation,
                } => self.timer(link, conn, side, generation),
                Job::Connect { link, generation } => self.connect(link, generation),
                Job::Act { act, tries } => self.act(act, tries),
                Job::FaultStart(i) => self.fault(i, true)?,
                Job::FaultEnd(i) => self.fault(i, false)?,
                Job::PowerOn(ls) => {
                    for l in ls {
                        self.come_up(l)?;
                    }
                    self.heal("election-day stations switched on".into());
                    self.redial();
                }
                Job::CarStop { car, stop } => self.car_stop(car, stop),
                Job::Sample => self.sample(),
            }
            if let (Some(t0), Some(slot)) = (t0, spent.get_mut(kind)) {
                *slot += t0.elapsed().as_secs_f64();
            }
            if final_started && self.settled() {
                break;
            }
        }
        if profile {
            eprintln!(
                "drill profile (s): deliver {:.1}, timers {:.1}, connect {:.1}, writes {:.1}, samples {:.1}, other {:.1}; {} jobs, {} connections closed by the policy; frames delivered: {} greetings, {} sync, {} pings, {} manifests, {} other",
                spent[0],
                spent[1],
                spent[2],
                spent[3],
                spent[4],
                spent[5],
                self.stats.jobs,
                self.stats.closed_by_policy,
                frames[0],
                frames[1],
                frames[2],
                frames[3],
                frames[4]
            );
        }
        self.finish()
    }

    fn final_heal(&mut self) -> Result<(), DrillError> {
        self.active.clear();
        self.trace.push((self.now, Trace::Partitions(Vec::new())));
        for l in 0..self.laptops.len() {
            if self
                .laptops
                .get(l)
                .is_some_and(|x| matches!(x.status, Status::Down | Status::Off))
            {
                self.come_up(l)?;
            }
        }
        self.heal(FINAL_HEAL.into());
        self.redial();
        Ok(())
    }

    fn finish(mut self) -> Result<(Report, RunStats), DrillError> {
        let end_of_run = self.now;
        // Invariants over the laptops that are up (all but the lost ones).
        // The state digest says "the same log" (every event held, counted or withheld by the
        // manifest); the fold digest "the same events counted".
        let mut digests = std::collections::BTreeSet::new();
        let mut folds = std::collections::BTreeSet::new();
        let mut up = 0usize;
        for l in &mut self.laptops {
            if let (Status::Up, Some(node)) = (l.status, l.node.as_mut()) {
                digests.insert(node.state_digest());
                folds.insert(node.fold_digest());
                up += 1;
            }
        }
        let lost_laptops: Vec<usize> = (0..self.laptops.len())
            .filter(|&i| {
                self.laptops
                    .get(i)
                    .is_some_and(|l| l.status == Status::Lost)
            })
            .collect();
        let unheld = self.track.unheld();
        let (with_laptop, lost): (Vec<u32>, Vec<u32>) = unheld
            .into_iter()
            .partition(|&e| lost_laptops.contains(&(self.track.origin(e) as usize)));
        // Detection, on every laptop that is up at the end.
        let mut alerts_total = 0usize;
        let mut alerts_true = 0usize;
        let kinds: &[AlertKind] = match self.sc.kind {
            Kind::Election => &[AlertKind::DoubleVote],
            Kind::Shelter => &[
                AlertKind::PresentAtTwoSites,
                AlertKind::LikelyDuplicate,
                AlertKind::PossibleDuplicate,
            ],
        };
        let mut recall_min: Option<f64> = None;
        let mut exact_recall_min: Option<f64> = None;
        // A planted case whose evidence died with a lost laptop cannot be found anywhere, nor
        // one whose evidence the final manifest withholds (a revoked laptop's, stamped at or
        // after its cut-off: held everywhere, counted nowhere).
        let final_members = self.final_members();
        let recorded: Vec<usize> = (0..self.planted.len())
            .filter(|&p| {
                self.planted.get(p).is_some_and(|x| {
                    x.recorded_at.is_some()
                        && !x.evidence.iter().any(|id| {
                            self.ids.get(id).is_some_and(|e| with_laptop.contains(e))
                                || self.withheld_at_end(final_members.as_ref(), id)
                        })
                })
            })
            .collect();
        let hq = self.hq().unwrap_or(0);
        for l in 0..self.laptops.len() {
            let Some(node) = self
                .laptops
                .get_mut(l)
                .filter(|x| x.status == Status::Up)
                .and_then(|x| x.node.as_mut())
            else {
                continue;
            };
            let alerts = node.alerts();
            let relevant: Vec<_> = alerts.iter().filter(|a| kinds.contains(&a.kind)).collect();
            if l == hq {
                alerts_total = relevant.len();
                alerts_true = relevant
                    .iter()
                    .filter(|a| {
                        self.planted
                            .iter()
                            .any(|p| p.recorded_at.is_some() && a.subjects.contains(&p.subject))
                    })
                    .count();
            }
            let found = |p: &Planted| {
                relevant
                    .iter()
                    .any(|a| p.alert.contains(&a.kind) && a.subjects.contains(&p.subject))
            };
            let (mut hit, mut exact_hit, mut exact_n) = (0usize, 0usize, 0usize);
            for &p in &recorded {
                let Some(pl) = self.planted.get(p) else {
                    continue;
                };
                let exact = pl.kind != "variant-walk-in";
                let ok = found(pl);
                hit += usize::from(ok);
                if exact {
                    exact_n += 1;
                    exact_hit += usize::from(ok);
                }
            }
            if !recorded.is_empty() {
                let r = hit as f64 / recorded.len() as f64;
                recall_min = Some(recall_min.map_or(r, |m: f64| m.min(r)));
            }
            if exact_n > 0 {
                let r = exact_hit as f64 / exact_n as f64;
                exact_recall_min = Some(exact_recall_min.map_or(r, |m: f64| m.min(r)));
            }
        }
        let up_at_end: Vec<usize> = (0..self.laptops.len())
            .filter(|&i| self.laptops.get(i).is_some_and(|l| l.status == Status::Up))
            .collect();
        let planted_lines: Vec<PlantedLine> = self
            .planted
            .iter()
            .enumerate()
            .map(|(i, p)| PlantedLine {
                case: i + 1,
                kind: p.kind.to_owned(),
                outcome: if p.blocked {
                    "blocked at the desk".into()
                } else if p.recorded_at.is_some() {
                    "recorded".into()
                } else {
                    "not attempted".into()
                },
                first_node_ms: p
                    .recorded_at
                    .and_then(|t0| p.detected.values().min().map(|t| t.saturating_sub(t0))),
                all_nodes_ms: p.recorded_at.and_then(|t0| {
                    up_at_end
                        .iter()
                        .map(|l| p.detected.get(l).copied())
                        .collect::<Option<Vec<u64>>>()
                        .and_then(|v| v.into_iter().max())
                        .map(|t| t.saturating_sub(t0))
                }),
            })
            .collect();
        let extra = self.end_checks(&with_laptop);
        let kazashi = SyncFigures::from_tracker(&self.track, self.wire);
        let baseline = if self.sc.baseline {
            let mut b = baseline::Baseline::new(
                &self.sc,
                &self
                    .laptops
                    .iter()
                    .map(|l| l.site.as_str().to_owned())
                    .collect::<Vec<_>>(),
                self.start,
                self.end,
            );
            Some(b.run(&self.trace, &mut self.samples))
        } else {
            None
        };
        let detection = Detection {
            planted: planted_lines,
            alerts_on_hq: alerts_total,
            true_alerts_on_hq: alerts_true,
            precision: (alerts_total > 0).then(|| alerts_true as f64 / alerts_total as f64),
            recall_min_over_nodes: recall_min,
            exact_id_recall_min_over_nodes: exact_recall_min,
        };
        let report = Report {
            scenario: self.sc.name.clone(),
            kind: match self.sc.kind {
                Kind::Shelter => "shelter".into(),
                Kind::Election => "election".into(),
            },
            seed: self.sc.seed,
            start_ms: self.start,
            sites: self.sites.len(),
            laptops: self.laptops.len(),
            links: self.links.len(),
            residents: self.roster.entries().len(),
            simulated_hours: self.sc.hours,
            final_heal_ends_hours: ((end_of_run - self.start) as f64 / HOUR as f64 * 100.0).round()
                / 100.0,
            events: self.track.events(),
            refusals: self.refusals.clone(),
            not_recorded_no_laptop: self.unrecorded,
            kazashi,
            baseline,
            detection,
            headcount: std::mem::take(&mut self.samples),
            invariants: Invariants {
                laptops_up_at_end: up,
                distinct_state_digests: digests.len(),
                distinct_fold_digests: folds.len(),
                converged: digests.len() <= 1 && self.track.unconverged() == 0,
                events_lost: lost.len(),
                events_gone_with_lost_laptops: with_laptop.len(),
                exact_id_recall: exact_recall_min,
                distinct_alert_sets: extra.alert_sets,
                lost_at_restart: self.extra.lost_at_restart,
                hq_count_error_at_end: extra.hq_error,
                distinct_manifest_versions: extra.manifest_versions,
                errors: self
                    .refusals
                    .iter()
                    .filter(|(k, _)| k.ends_with("laptop error"))
                    .map(|(_, n)| *n)
                    .sum(),
            },
        };
        Ok((report, self.stats))
    }
}

/// Another spelling of a name: a registered variant glyph of the family name, or the name in
/// its other script where none exists (a desk that typed what it heard).
fn variant_name(name: &PersonName) -> Option<PersonName> {
    let s = name.as_str();
    for (base, _, _, variants) in crate::names::FAMILY {
        for v in variants.iter() {
            if let Some(rest) = s.strip_prefix(v) {
                return PersonName::new(&format!("{base}{rest}")).ok();
            }
        }
        if let (Some(rest), Some(v)) = (s.strip_prefix(base), variants.first()) {
            return PersonName::new(&format!("{v}{rest}")).ok();
        }
    }
    // No variant glyph: swap family and given name order typed the other way round.
    let mut parts: Vec<&str> = s.split(' ').collect();
    parts.reverse();
    PersonName::new(&parts.join(" ")).ok()
}

/// Run a scenario file's drill and write its report to `out`.
pub fn run_to_dir(sc: Scenario, out: &std::path::Path) -> Result<(Report, RunStats), DrillError> {
    std::fs::create_dir_all(out)?;
    let engine = Engine::new(sc, None)?;
    let (report, stats) = engine.run()?;
    report::write(&report, out)?;
    Ok((report, stats))
}
