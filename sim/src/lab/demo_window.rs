//! Demo mode: the embedded synthetic city (a shelter operation, or an election with an
//! early-voting office and election-day stations), staff enrolled with known PINs, simulated
//! cards (residents, one whose PIN the demo gets wrong, one locked, two staff cards), something
//! already on the log from another laptop (a household registered elsewhere; a voter who
//! already voted), and — in the window — simulated peer stations: real nodes on the real mesh
//! over loopback, writing check-ins as they would.

use eframe::egui::{self, RichText};
use kazashi_domain::deployment::{Deployment, SiteKind};
use kazashi_domain::event::{EarlyVotingReason, EventBody, IdMethod, VoteMode};
use kazashi_domain::ids::{OperatorId, SiteId};
use kazashi_domain::{CivilDate, Roster, RosterEntry};
use kazashi_gui::app::cards::{Card, Polled, Readers};
use kazashi_gui::app::tr::Tr;
use kazashi_gui::app::{Host, RED, Station, big};
use kazashi_gui::lang::Lang;
use kazashi_node::card::{CardError, CardSession, Transport};
use kazashi_node::mesh::{Mesh, MeshConfig};
use kazashi_node::staff::Role;
use kazashi_node::store::KdfParams;
use kazashi_node::{BundleScope, Clock, Node, SystemClock};
use kazashi_sim::card::{CardSpec, Holder, VirtualCard};
use kazashi_sim::population::{PopulationSpec, election, generate, shelter_operation};
use kazashi_sim::scenario::{Kind, Scenario};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A virtual card shared between the demo panel and a session (PIN counters persist across
/// taps, as on a real card).
#[derive(Clone)]
pub struct SharedCard(pub Arc<Mutex<VirtualCard>>);

impl Transport for SharedCard {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        let mut c = self
            .0
            .lock()
            .map_err(|_| CardError::Reader("card poisoned".into()))?;
        c.transmit(apdu)
    }
}

/// The demo's readers: a panel of virtual cards, tapped with a button.
pub struct VirtualReaders {
    pub cards: Vec<(String, SharedCard)>,
}

impl Readers for VirtualReaders {
    fn poll(&mut self) -> Polled {
        Polled::default()
    }
    fn panel(&self) -> Vec<String> {
        self.cards.iter().map(|(label, _)| label.clone()).collect()
    }
    fn pick(&mut self, i: usize) -> Option<Card> {
        self.cards.get(i).map(|(_, c)| Box::new(c.clone()) as Card)
    }
}

/// Which demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoKind {
    /// Shelter S001 of a five-shelter operation.
    Shelter,
    /// The early-voting office E1, a week before election day.
    EarlyVoting,
    /// Election-day station P01, on election day.
    ElectionDay,
}

/// Drill mode: the shelter demo's city and its peer stations follow a drill scenario
/// (`scenarios/*.toml`): the scenario's municipality and shelters, and peers that check
/// households in along the scenario's arrival curve, `speed` times faster than real time.
#[derive(Debug, Clone)]
pub struct Drill {
    pub scenario: Scenario,
    pub speed: f64,
}

impl Drill {
    /// A drill on `scenario` (a shelter scenario) at `speed` (1 to 3600).
    pub fn new(scenario: Scenario, speed: f64) -> Result<Self, String> {
        if scenario.kind != Kind::Shelter || scenario.shelter.is_none() {
            return Err("the station's drill mode runs shelter scenarios".into());
        }
        if !(1.0..=3600.0).contains(&speed) {
            return Err("--speed must be between 1 and 3600".into());
        }
        Ok(Self { scenario, speed })
    }
}

/// Most peer stations a drill runs beside the trainee's (real nodes on one laptop).
const DRILL_PEERS: usize = 3;

/// The demo's staff: id, role, PIN.
pub const STAFF: [(&str, Role, &str); 4] = [
    ("uketsuke", Role::Reception, "1111"),
    ("sekinin", Role::Lead, "2222"),
    ("kyugo", Role::Medical, "3333"),
    ("honbu", Role::Command, "4444"),
];

/// Households in the demo city.
const HOUSEHOLDS: usize = 300;

/// Resident cards in the panel (the last two of the fixtures are staff cards).
const RESIDENT_CARDS: usize = 6;

struct World {
    roster: Arc<Roster>,
    deployment: Deployment,
    site: SiteId,
    /// The laptop that wrote something before the demo starts, and the peer stations.
    peers: Vec<(SiteId, usize)>,
}

fn today_jst() -> Result<CivilDate, String> {
    CivilDate::jst_of(SystemClock.now_ms())
        .ok_or_else(|| "the clock is outside the calendar".into())
}

fn world(kind: DemoKind, drill: Option<&Drill>) -> Result<World, String> {
    let today = today_jst()?;
    let voters = kind != DemoKind::Shelter;
    let drill = drill.filter(|_| kind == DemoKind::Shelter);
    let m = generate(PopulationSpec {
        households: drill.map_or(HOUSEHOLDS, |d| d.scenario.households.min(50_000)),
        seed: drill.map_or(1, |d| d.scenario.seed),
        today,
        voters,
    })
    .map_err(|e| e.to_string())?;
    let day = |offset: i64| {
        CivilDate::from_days_since_epoch(today.days_since_epoch() + offset)
            .ok_or_else(|| "date out of range".to_owned())
    };
    let sid = |s: &str| SiteId::new(s).map_err(|e| e.to_string());
    let (deployment, site, peers) = match kind {
        DemoKind::Shelter => match drill {
            Some(d) => {
                let n = d.scenario.shelters.max(2);
                let peers = (2..=n.min(DRILL_PEERS + 1))
                    .map(|i| Ok((sid(&format!("S{i:03}"))?, 0)))
                    .collect::<Result<Vec<_>, String>>()?;
                (
                    shelter_operation(&m, n).map_err(|e| e.to_string())?,
                    sid("S001")?,
                    peers,
                )
            }
            None => (
                shelter_operation(&m, 5).map_err(|e| e.to_string())?,
                sid("S001")?,
                vec![(sid("S002")?, 0), (sid("S003")?, 0)],
            ),
        },
        DemoKind::EarlyVoting => (
            election(&m, day(7)?).map_err(|e| e.to_string())?,
            sid("E1")?,
            vec![(sid("E2")?, 0), (sid("E1")?, 1)],
        ),
        DemoKind::ElectionDay => (
            election(&m, today).map_err(|e| e.to_string())?,
            sid("P01")?,
            vec![(sid("P01")?, 1), (sid("P02")?, 0)],
        ),
    };
    Ok(World {
        roster: Arc::new(m.roster),
        deployment,
        site,
        peers,
    })
}

/// The card holders: heads of households, voters of this station's precinct at an
/// election-day station.
fn holders(w: &World) -> Vec<&RosterEntry> {
    let precincts = match w.deployment.site(&w.site).map(|s| &s.kind) {
        Some(SiteKind::PollingStation { precincts, .. }) => precincts.clone(),
        _ => Vec::new(),
    };
    let mut out: Vec<&RosterEntry> = Vec::new();
    let mut last = None;
    for e in w.roster.entries() {
        if last == Some(e.household) {
            continue;
        }
        last = Some(e.household);
        let fits = precincts.is_empty()
            || e.voter
                .as_ref()
                .is_some_and(|v| precincts.contains(&v.precinct));
        if fits {
            out.push(e);
        }
        if out.len() == kazashi_sim::card::FIXTURE_CARDS {
            break;
        }
    }
    out
}

/// The fleet's manifest with the demo's managers on its staff list: a DV block lift counts
/// only by a manager the manifest names (`kazashi_node::managers`), on every laptop.
fn with_managers(fleet: &kazashi_sim::fleet::Fleet) -> Result<Vec<u8>, String> {
    use kazashi_sync::manifest::StaffEntry;
    let signed =
        kazashi_sync::SignedManifest::decode(&fleet.manifest).map_err(|e| e.to_string())?;
    let mut m = signed.manifest().clone();
    for (id, role, pin) in STAFF.iter().filter(|(_, role, _)| role.manages()) {
        m.staff.push(StaffEntry {
            id: OperatorId::new(id).map_err(|e| e.to_string())?,
            name: kazashi_domain::text::Label::new(id).map_err(|e| e.to_string())?,
            role: *role,
            pin_hash: Some(kazashi_node::staff::hash_pin(pin).map_err(|e| e.to_string())?),
            card: None,
            sites: Vec::new(),
        });
    }
    Ok(kazashi_sync::SignedManifest::sign(&m, &fleet.admin)
        .map_err(|e| e.to_string())?
        .encode())
}

fn create(
    path: &Path,
    w: &World,
    fleet: &kazashi_sim::fleet::Fleet,
    site: SiteId,
    n: usize,
) -> Result<Node<SystemClock>, String> {
    let key = fleet
        .nth_key(&site, n)
        .ok_or_else(|| format!("the demo fleet has no laptop {n} at {site}"))?;
    Node::create(
        path,
        "demo",
        KdfParams::FAST_INSECURE,
        kazashi_sync::DeviceKey::from_seed(key.secret_bytes()),
        &fleet.manifest,
        w.roster.clone(),
        site,
        SystemClock,
    )
    .map_err(|e| e.to_string())
}

/// What a peer station writes, in order: household check-ins at a shelter, voters' check-ins
/// at a polling station (voters of its precinct on election day).
fn peer_events(w: &World, site: &SiteId, count: usize) -> Vec<EventBody> {
    let Some(kind) = w.deployment.site(site).map(|s| &s.kind) else {
        return Vec::new();
    };
    match kind {
        SiteKind::Shelter { .. } => (0..count)
            .filter_map(|k| kazashi_sim::workload::household_check_in(&w.roster, 17 + k * 7))
            .collect(),
        SiteKind::PollingStation {
            precincts,
            early_voting,
            ..
        } => {
            let voters: Vec<&RosterEntry> = w
                .roster
                .entries()
                .iter()
                .filter(|e| {
                    e.voter
                        .as_ref()
                        .is_some_and(|v| precincts.is_empty() || precincts.contains(&v.precinct))
                })
                .collect();
            let mode = if *early_voting {
                VoteMode::Early(EarlyVotingReason::Duties)
            } else {
                VoteMode::ElectionDay
            };
            (0..count)
                .filter_map(|k| voters.get((40 + k * 13) % voters.len().max(1)))
                .map(|e| EventBody::VoterCheckIn {
                    voter: e.person,
                    mode,
                    method: IdMethod::AdmissionTicket,
                    override_: None,
                })
                .collect()
        }
        SiteKind::CommandCenter => Vec::new(),
    }
}

/// When a peer writes what: every 7 s in the demo; in a drill, household check-ins along the
/// scenario's arrival curve (this shelter's share of it), with exponential gaps drawn from
/// the scenario's seed, compressed `speed` times. Each peer takes other households.
fn peer_plan(
    w: &World,
    site: &SiteId,
    i: usize,
    drill: Option<&Drill>,
) -> Vec<(Duration, EventBody)> {
    let Some(d) = drill else {
        return peer_events(w, site, 200)
            .into_iter()
            .enumerate()
            .map(|(k, b)| {
                let first = if k == 0 { 3 + 2 * i as u64 } else { 7 };
                (Duration::from_secs(first), b)
            })
            .collect();
    };
    use rand::{RngExt, SeedableRng};
    let Some(sh) = d.scenario.shelter.as_ref() else {
        return Vec::new();
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(d.scenario.seed ^ (i as u64 + 1));
    let share = 1.0 / d.scenario.shelters.max(1) as f64;
    let (mut hour, mut k) = (0.0f64, 0usize);
    let mut out = Vec::new();
    let mut waited = 0.0f64;
    while hour < d.scenario.hours && out.len() < 2000 {
        let rate = sh.rate_at(hour) * share;
        if rate <= 0.0 {
            hour += 5.0 / 60.0;
            waited += 5.0 / 60.0;
            continue;
        }
        let u: f64 = rng.random_range(f64::EPSILON..1.0);
        let gap = -u.ln() / rate + waited;
        waited = 0.0;
        hour += gap;
        if hour >= d.scenario.hours {
            break;
        }
        // Households the trainee's own cards do not hold, a different run per peer.
        let Some(body) =
            kazashi_sim::workload::household_check_in(&w.roster, 40 + i + k * (DRILL_PEERS + 1))
        else {
            break;
        };
        k += 1;
        out.push((Duration::from_secs_f64(gap * 3600.0 / d.speed), body));
    }
    out
}

/// The event planted before the demo starts, on the first peer: the household of card 3
/// checked in at another shelter; the voter of card 2 already voted.
fn planted(w: &World, cards: &[&RosterEntry]) -> Option<EventBody> {
    if w.deployment.is_election() {
        let voter = cards.get(2)?.person;
        let (site, _) = w.peers.first()?;
        let mode = match w.deployment.site(site).map(|s| &s.kind) {
            Some(SiteKind::PollingStation {
                early_voting: true, ..
            }) => VoteMode::Early(EarlyVotingReason::Travel),
            _ => VoteMode::ElectionDay,
        };
        Some(EventBody::VoterCheckIn {
            voter,
            mode,
            method: IdMethod::CardTap,
            override_: None,
        })
    } else {
        let e = cards.get(3)?;
        let members = w
            .roster
            .household(&e.household)
            .iter()
            .map(|m| kazashi_domain::PersonRef::Roster(m.person))
            .collect();
        Some(EventBody::ShelterCheckIn {
            household: Some(kazashi_domain::HouseholdRef::Roster(e.household)),
            members: kazashi_domain::event::Members::new(members).ok()?,
            method: IdMethod::Lookup,
        })
    }
}

/// A demo station with its store in `dir`; `network`: on the mesh over loopback with live
/// simulated peers (the window), else alone (tests).
pub fn station(
    kind: DemoKind,
    dir: &Path,
    lang: Lang,
    network: bool,
    drill: Option<&Drill>,
) -> Result<Station<SystemClock>, String> {
    station_with(kind, dir, lang, network, drill, Vec::new())
}

/// [`station`] with `extra` cards at the end of the readers' panel (tests: a card carrying
/// a copied certificate, a card with one PIN try left).
pub fn station_with(
    kind: DemoKind,
    dir: &Path,
    lang: Lang,
    network: bool,
    drill: Option<&Drill>,
    extra: Vec<(String, CardSpec)>,
) -> Result<Station<SystemClock>, String> {
    station_planted(kind, dir, lang, network, drill, extra, &mut |_| Ok(()))
}

/// A planted peer's writer (the first peer, before its bundle is carried over).
pub type Plant<'a> = dyn FnMut(&mut Node<SystemClock>) -> Result<(), String> + 'a;

/// [`station_with`], with `plant` writing more on the first peer (another shelter) before
/// its bundle is carried over (tests: a walk-in registered at another shelter).
pub fn station_planted(
    kind: DemoKind,
    dir: &Path,
    lang: Lang,
    network: bool,
    drill: Option<&Drill>,
    extra: Vec<(String, CardSpec)>,
    plant: &mut Plant<'_>,
) -> Result<Station<SystemClock>, String> {
    let w = world(kind, drill)?;
    let mut fleet = kazashi_sim::fleet::fleet_sized(&w.deployment, 1, 2)?;
    fleet.manifest = with_managers(&fleet)?;
    let mut node = create(&dir.join("station.db"), &w, &fleet, w.site, 0)?;
    for (id, role, pin) in STAFF {
        let op = OperatorId::new(id).map_err(|e| e.to_string())?;
        node.enrol_staff(&op, role, Some(pin))
            .map_err(|e| e.to_string())?;
    }
    let tr = Tr::new(lang)?;
    let people = holders(&w);
    let mut cards = Vec::new();
    for (i, e) in people.iter().enumerate() {
        let mut spec = CardSpec::new(i, Holder::of(e));
        let mut label = e.name.as_str().to_owned();
        if i == 4 {
            spec.text_pin = *b"8642";
            label = format!("{label}（{}）", tr.t("demo-wrong-pin"));
        }
        if i == 5 {
            spec.text_tries = 0;
            label = format!("{label}（{}）", tr.t("demo-locked"));
        }
        let card = SharedCard(Arc::new(Mutex::new(VirtualCard::new(spec))));
        if i >= RESIDENT_CARDS {
            // A staff member's own card, enrolled for staff login.
            let (id, role) = if i == RESIDENT_CARDS {
                ("uketsuke", Role::Reception)
            } else {
                ("sekinin", Role::Lead)
            };
            let op = OperatorId::new(id).map_err(|e| e.to_string())?;
            let tap = node
                .card_tap(&mut CardSession::new(card.clone()), &[])
                .map_err(|e| e.to_string())?;
            node.enrol_staff_card(&tap.card, &op)
                .map_err(|e| e.to_string())?;
            label = tr.t_with(
                "demo-staff-card",
                &[
                    ("who", id.into()),
                    ("role", tr.t(&format!("role-{}", role.code())).into()),
                ],
            );
        }
        cards.push((label, card));
    }
    for (label, spec) in extra {
        cards.push((
            label,
            SharedCard(Arc::new(Mutex::new(VirtualCard::new(spec)))),
        ));
    }
    // Another laptop's work, carried over by USB bundle before the demo starts.
    let mut peers = Vec::new();
    for (i, (site, n)) in w.peers.iter().enumerate() {
        let mut peer = create(&dir.join(format!("peer{i}.db")), &w, &fleet, *site, *n)?;
        if i == 0
            && let Some(body) = planted(&w, &people)
        {
            let op = OperatorId::new("demo-peer").map_err(|e| e.to_string())?;
            peer.record(op, body).map_err(|e| e.to_string())?;
            plant(&mut peer)?;
            let bundle = peer
                .export_bundle(BundleScope::All)
                .map_err(|e| e.to_string())?;
            node.import_bundle(&bundle, "demo USB")
                .map_err(|e| e.to_string())?;
        }
        peers.push((*site, peer));
    }
    let staff_hint = tr.t("demo-staff-hint");
    let host = if network {
        start_mesh(node, peers, &w, drill)?
    } else {
        Host::Alone(Box::new(node))
    };
    let mut s = Station::new(host, lang, Box::new(VirtualReaders { cards }))?;
    s.set_demo_hint(staff_hint);
    s.set_system_control(std::sync::Arc::new(
        crate::demo_system::DemoSystem::default(),
    ));
    Ok(s)
}

/// Our node and the peers on the mesh over loopback; each peer writes now and then.
fn start_mesh(
    node: Node<SystemClock>,
    peers: Vec<(SiteId, Node<SystemClock>)>,
    w: &World,
    drill: Option<&Drill>,
) -> Result<Host<SystemClock>, String> {
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime: {e}"))?,
    );
    let config = MeshConfig {
        bind: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        peers: Vec::new(),
        mdns: false,
        anti_entropy: Duration::from_secs(5),
        ..MeshConfig::default()
    };
    let ours = rt
        .block_on(Mesh::start(node, config.clone()))
        .map_err(|e| e.to_string())?;
    for (i, (site, peer)) in peers.into_iter().enumerate() {
        let mesh = rt
            .block_on(Mesh::start(peer, config.clone()))
            .map_err(|e| e.to_string())?;
        {
            let _in = rt.enter();
            for a in mesh.addrs() {
                ours.connect(a);
            }
        }
        // Staggered, so that the peers do not write in step.
        let plan = peer_plan(w, &site, i, drill);
        rt.spawn(async move {
            let op = OperatorId::new("demo-peer").ok();
            for (wait, body) in plan {
                tokio::time::sleep(wait).await;
                if let Some(op) = op {
                    // A refusal (a voter already voted) is what a real station would see too.
                    let _ = mesh.record(op, body);
                }
            }
            // Keep the peer on the mesh after its last write.
            std::future::pending::<()>().await;
        });
    }
    Ok(Host::Mesh { mesh: ours, rt })
}

/// The window's first screen: which demo to open.
pub struct Launcher {
    tr: Tr,
    network: bool,
    error: Option<String>,
    drill: Option<Drill>,
}

impl Launcher {
    pub fn new(lang: Lang, network: bool) -> Result<Self, String> {
        Ok(Launcher {
            tr: Tr::new(lang)?,
            network,
            error: None,
            drill: None,
        })
    }

    /// Offer the drill first.
    pub fn with_drill(mut self, drill: Option<Drill>) -> Self {
        self.drill = drill;
        self
    }

    /// The launcher; the station once one is chosen.
    pub fn show(&mut self, ui: &mut egui::Ui) -> Option<Station<SystemClock>> {
        let tr = &self.tr;
        let mut chosen = None;
        let mut switch = false;
        egui::CentralPanel::default().show(ui, |ui| {
            ui.add_space(24.0);
            ui.heading(RichText::new(tr.t("launcher-title")).size(30.0));
            ui.label(RichText::new(tr.t("launcher-hint")).size(18.0));
            ui.add_space(16.0);
            if let Some(d) = &self.drill {
                let label = tr.t_with(
                    "launcher-drill",
                    &[
                        ("name", d.scenario.name.clone().into()),
                        ("speed", format!("{}", d.speed).into()),
                    ],
                );
                if big(ui, label).clicked() {
                    chosen = Some((DemoKind::Shelter, true));
                }
                ui.add_space(8.0);
            }
            for (kind, id) in [
                (DemoKind::Shelter, "launcher-shelter"),
                (DemoKind::EarlyVoting, "launcher-early"),
                (DemoKind::ElectionDay, "launcher-election-day"),
            ] {
                if big(ui, tr.t(id)).clicked() {
                    chosen = Some((kind, false));
                }
                ui.add_space(8.0);
            }
            switch = ui.button(tr.t("lang-switch")).clicked();
            if let Some(e) = &self.error {
                ui.label(RichText::new(e.as_str()).color(RED));
            }
        });
        if switch {
            let next = match self.tr.lang() {
                Lang::Ja => Lang::En,
                Lang::En => Lang::Ja,
            };
            match Tr::new(next) {
                Ok(t) => self.tr = t,
                Err(e) => self.error = Some(e),
            }
        }
        let (kind, drilling) = chosen?;
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => {
                self.error = Some(format!("cannot make the demo's store: {e}"));
                return None;
            }
        };
        let drill = self.drill.as_ref().filter(|_| drilling);
        match station(kind, dir.path(), self.tr.lang(), self.network, drill) {
            Ok(mut s) => {
                s.keep(Box::new(dir));
                Some(s)
            }
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const SCENARIO: &str = r#"
name = "drill test"
kind = "shelter"
seed = 3
households = 800
start_date = "2026-09-01"
hours = 2
shelters = 6
[shelter]
arrivals = [[0, 600], [1, 600]]
"#;

    #[test]
    fn a_drill_takes_its_city_and_shelters_from_the_scenario_and_its_peers_follow_the_curve() {
        let d = Drill::new(Scenario::parse(SCENARIO).unwrap(), 60.0).unwrap();
        let w = world(DemoKind::Shelter, Some(&d)).unwrap();
        assert_eq!(w.deployment.sites().filter(|s| s.is_shelter()).count(), 6);
        assert_eq!(w.peers.len(), DRILL_PEERS);
        assert!(w.roster.entries().len() > 1000);
        let plans: Vec<_> = w
            .peers
            .iter()
            .enumerate()
            .map(|(i, (site, _))| peer_plan(&w, site, i, Some(&d)))
            .collect();
        for p in &plans {
            // 600 households an hour for one hour, a sixth of them here: about 100, all in
            // the first simulated hour — the first real minute at 60× speed.
            assert!((60..=150).contains(&p.len()), "{}", p.len());
            let span: f64 = p.iter().map(|(t, _)| t.as_secs_f64()).sum();
            assert!(span < 75.0, "{span}");
        }
        // Each peer checks in other households.
        let first = |p: &Vec<(Duration, EventBody)>| match p.first().map(|x| &x.1) {
            Some(EventBody::ShelterCheckIn { household, .. }) => *household,
            _ => None,
        };
        assert_ne!(first(&plans[0]), first(&plans[1]));
        // The demo's own plan is unchanged: a write every seven seconds.
        let demo = world(DemoKind::Shelter, None).unwrap();
        let p = peer_plan(&demo, &demo.peers[0].0, 0, None);
        assert_eq!(p[1].0, Duration::from_secs(7));
        // Drill mode runs shelter scenarios at a sane speed.
        assert!(Drill::new(Scenario::parse(SCENARIO).unwrap(), 0.5).is_err());
    }
}
