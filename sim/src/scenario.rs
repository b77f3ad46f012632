//! Drill scenarios: TOML files in `scenarios/` that say what to simulate — the municipality,
//! the sites and laptops, the network, the people's arrivals or votes, the faults and the USB
//! runs — so that a scenario and a seed fix the whole run.
//!
//! Times are hours since the start of the run (fractions allowed). Unknown keys are refused,
//! so a misspelt fault is an error, not a quiet no-op.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// What a scenario simulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A shelter operation: arrivals, movements, walk-ins, car evacuees.
    Shelter,
    /// An election: early voting at a few offices, then election day at the stations.
    Election,
}

/// How protocol messages travel between two laptops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// As over QUIC (iroh): reliable and in order per connection; a lost packet costs a
    /// retransmission (`loss` delays, `duplicate` is ignored).
    #[default]
    Stream,
    /// Harsher than any real transport: messages themselves are dropped (`loss`), delivered
    /// twice (`duplicate`) and overtake one another (`jitter`); only anti-entropy repairs.
    Datagram,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    #[serde(default)]
    pub transport: Transport,
    /// One-way latency, ms.
    #[serde(default = "d_latency")]
    pub latency_ms: u64,
    /// Uniform extra delay 0..jitter, ms.
    #[serde(default = "d_jitter")]
    pub jitter_ms: u64,
    /// Probability a message (datagram) or one of its packets (stream) is lost.
    #[serde(default)]
    pub loss: f64,
    /// Probability a message is delivered twice (datagram only).
    #[serde(default)]
    pub duplicate: f64,
    /// Seconds between catalogs on a live connection (the mesh uses 10).
    #[serde(default = "d_anti_entropy")]
    pub anti_entropy_s: f64,
    /// Seconds from a link becoming possible (heal, restart, power-on) to a live connection.
    #[serde(default = "d_reconnect")]
    pub reconnect_s: f64,
    /// Besides the command center, how many other laptops each laptop dials (seeded choice;
    /// laptops at one site always connect to one another).
    #[serde(default = "d_peers")]
    pub peers_per_node: usize,
}

fn d_latency() -> u64 {
    20
}
fn d_jitter() -> u64 {
    20
}
fn d_anti_entropy() -> f64 {
    10.0
}
fn d_reconnect() -> f64 {
    3.0
}
fn d_peers() -> usize {
    2
}

impl Default for Network {
    fn default() -> Self {
        Self {
            transport: Transport::Stream,
            latency_ms: d_latency(),
            jitter_ms: d_jitter(),
            loss: 0.0,
            duplicate: 0.0,
            anti_entropy_s: d_anti_entropy(),
            reconnect_s: d_reconnect(),
            peers_per_node: d_peers(),
        }
    }
}

/// Arrivals and movements in a shelter operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shelter {
    /// Households arriving per hour across all shelters, as (hour, rate) points joined by
    /// straight lines (zero outside them).
    pub arrivals: Vec<(f64, f64)>,
    /// Share of arriving groups from another town, registered on the spot.
    #[serde(default)]
    pub walk_in: f64,
    /// Share of arriving households registered as car evacuees (車中泊, supported only).
    #[serde(default)]
    pub car: f64,
    /// Share of arriving households that later move to another shelter.
    #[serde(default)]
    pub move_on: f64,
    /// Share of arriving households that later go home.
    #[serde(default)]
    pub go_home: f64,
    /// Share of arriving households that go out for a few hours and come back.
    #[serde(default)]
    pub outing: f64,
    /// Planted: persons who register at a second shelter without leaving the first.
    #[serde(default)]
    pub double_registrations: usize,
    /// Planted: roster persons registered again as walk-ins, under a variant of their name, at
    /// another shelter.
    #[serde(default)]
    pub variant_walk_ins: usize,
    /// Hours between status reports from each shelter (0: none).
    #[serde(default)]
    pub status_report_hours: f64,
    /// Share of roster households' check-ins undone at the desk a few minutes later (a wrong
    /// household picked); the household is then not in the shelter.
    #[serde(default)]
    pub undo: f64,
    /// How much sooner than usual moves, outings and goings home come (delays times `pace`;
    /// 1, the default, is a day's pace: a move two hours or more after arriving).
    #[serde(default = "d_pace")]
    pub pace: f64,
}

fn d_pace() -> f64 {
    1.0
}

impl Shelter {
    /// Households arriving per hour across all shelters, `hour` hours after the start (the
    /// `arrivals` curve; zero outside it).
    pub fn rate_at(&self, hour: f64) -> f64 {
        for w in self.arrivals.windows(2) {
            if let [(h0, r0), (h1, r1)] = w
                && hour >= *h0
                && hour < *h1
            {
                let f = if h1 > h0 {
                    (hour - h0) / (h1 - h0)
                } else {
                    0.0
                };
                return r0 + (r1 - r0) * f;
            }
        }
        0.0
    }
}

/// Planted double-vote attempts, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DoubleVotes {
    /// Voted early, comes again on election day.
    #[serde(default)]
    pub early_and_day: usize,
    /// Votes on election day at two stations.
    #[serde(default)]
    pub two_stations: usize,
    /// Votes on election day at a station while it is cut off (a `partition` fault on
    /// election day must exist), and at another.
    #[serde(default)]
    pub offline: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Election {
    /// Election-day stations (one per 投票区).
    pub stations: usize,
    /// Early-voting offices.
    #[serde(default = "d_offices")]
    pub early_offices: usize,
    /// Days of early voting before election day (the run starts on the first).
    #[serde(default = "d_early_days")]
    pub early_days: i64,
    /// Share of eligible voters who vote.
    #[serde(default = "d_turnout")]
    pub turnout: f64,
    /// Of those, the share voting early.
    #[serde(default = "d_early_share")]
    pub early_share: f64,
    #[serde(default)]
    pub double_votes: DoubleVotes,
}

fn d_offices() -> usize {
    2
}
fn d_early_days() -> i64 {
    12
}
fn d_turnout() -> f64 {
    0.5
}
fn d_early_share() -> f64 {
    0.3
}

/// A fault, at hours since the start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// The sites' laptops lose every link outside their group (`together`) or outside their own
    /// site (each alone) from `from` until `until`.
    Partition {
        sites: Vec<String>,
        from: f64,
        until: f64,
        #[serde(default)]
        together: bool,
    },
    /// A laptop's process dies at `at` and starts again (cold start from its store) at
    /// `restart`.
    Crash {
        site: String,
        #[serde(default)]
        laptop: usize,
        at: f64,
        restart: f64,
    },
    /// A laptop is lost for good at `at` (what it had not passed on is gone with it).
    LostLaptop {
        site: String,
        #[serde(default)]
        laptop: usize,
        at: f64,
    },
    /// A laptop's clock is off by `minutes` for the whole run.
    ClockSkew {
        site: String,
        #[serde(default)]
        laptop: usize,
        minutes: i64,
    },
    /// An asymmetric partition: from `from` until `until`, what the sites' laptops send to
    /// laptops elsewhere is lost, while what those send them still arrives. A connection
    /// stalls in the dead direction (a stream keeps order: nothing after a lost frame
    /// arrives) until the far side gives the peer up as lost; no new one can be dialled.
    OneWay {
        sites: Vec<String>,
        from: f64,
        until: f64,
    },
    /// A laptop's clock jumps by `minutes` (forward or back) at `at`, while it runs, and stays
    /// so (on top of any `clock_skew`).
    ClockJump {
        site: String,
        #[serde(default)]
        laptop: usize,
        at: f64,
        minutes: i64,
    },
    /// The administrator signs the next manifest version at `at` and hands it to this laptop
    /// (it spreads from there): it revokes the laptops lost before `at` from that moment, and
    /// enrols one spare laptop that never comes on line.
    ManifestChange {
        site: String,
        #[serde(default)]
        laptop: usize,
        at: f64,
    },
}

impl Fault {
    /// The sites a fault names.
    pub fn sites(&self) -> Vec<&String> {
        match self {
            Fault::Partition { sites, .. } | Fault::OneWay { sites, .. } => sites.iter().collect(),
            Fault::Crash { site, .. }
            | Fault::LostLaptop { site, .. }
            | Fault::ClockSkew { site, .. }
            | Fault::ClockJump { site, .. }
            | Fault::ManifestChange { site, .. } => vec![site],
        }
    }
}

/// A car carrying USB bundles: at each stop it leaves the bundles it carries and takes the
/// laptop's latest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Car {
    /// Sites visited in order, then again from the first.
    pub route: Vec<String>,
    /// Hour of the first stop.
    pub first: f64,
    /// Hours between stops.
    pub leg_hours: f64,
    /// Hour after which the car stops running (the end of the run if absent).
    #[serde(default)]
    pub until: Option<f64>,
}

/// A scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub kind: Kind,
    pub seed: u64,
    /// Households in the synthetic municipality.
    pub households: usize,
    /// The first day (JST), `YYYY-MM-DD`.
    pub start_date: String,
    /// Hour of that day the run starts.
    #[serde(default)]
    pub start_hour: f64,
    /// Simulated hours.
    pub hours: f64,
    /// Shelters (shelter operations); ignored for elections.
    #[serde(default)]
    pub shelters: usize,
    /// Laptops per site (the command center's included).
    #[serde(default = "d_laptops")]
    pub laptops_per_site: u8,
    /// Minutes between samples of what the command center sees.
    #[serde(default = "d_sample")]
    pub sample_minutes: f64,
    /// Also run the VxPollBook-style baseline sync on the same writes.
    #[serde(default = "d_true")]
    pub baseline: bool,
    #[serde(default)]
    pub network: Network,
    #[serde(default)]
    pub shelter: Option<Shelter>,
    #[serde(default)]
    pub election: Option<Election>,
    #[serde(default, rename = "fault")]
    pub faults: Vec<Fault>,
    #[serde(default, rename = "car")]
    pub cars: Vec<Car>,
}

fn d_laptops() -> u8 {
    1
}
fn d_sample() -> f64 {
    10.0
}
fn d_true() -> bool {
    true
}

/// `x ≥ min`, false for NaN (so `!ge(..)` refuses NaN too).
fn ge(x: f64, min: f64) -> bool {
    x >= min
}

/// Why a scenario was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Parse(String),
    #[error("scenario: {0}")]
    Invalid(String),
}

impl Scenario {
    pub fn parse(text: &str) -> Result<Self, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse(e.to_string()))?;
        s.check()?;
        Ok(s)
    }

    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Checks beyond the file's shape: sizes, times, probabilities.
    pub fn check(&self) -> Result<(), ScenarioError> {
        let bad = |m: String| Err(ScenarioError::Invalid(m));
        if !(self.hours > 0.0 && self.hours <= 24.0 * 31.0) {
            return bad(format!("hours must be in (0, 744], not {}", self.hours));
        }
        if !(0.0..24.0).contains(&self.start_hour) {
            return bad(format!(
                "start_hour must be in [0, 24), not {}",
                self.start_hour
            ));
        }
        if self.households == 0 || self.households > 2_000_000 {
            return bad(format!(
                "households must be 1..=2000000, not {}",
                self.households
            ));
        }
        if self.laptops_per_site == 0 || self.laptops_per_site > 16 {
            return bad("laptops_per_site must be 1..=16".into());
        }
        if !ge(self.sample_minutes, 1.0) {
            return bad("sample_minutes must be at least 1".into());
        }
        if kazashi_domain::CivilDate::parse(&self.start_date).is_err() {
            return bad(format!(
                "start_date {:?} is not YYYY-MM-DD",
                self.start_date
            ));
        }
        let n = &self.network;
        for (what, p) in [("loss", n.loss), ("duplicate", n.duplicate)] {
            if !(0.0..0.9).contains(&p) {
                return bad(format!("network.{what} must be in [0, 0.9), not {p}"));
            }
        }
        if !ge(n.anti_entropy_s, 0.5) || !ge(n.reconnect_s, 0.0) {
            return bad("network.anti_entropy_s must be ≥ 0.5 and reconnect_s ≥ 0".into());
        }
        match self.kind {
            Kind::Shelter => {
                let Some(sh) = &self.shelter else {
                    return bad("a shelter scenario needs a [shelter] table".into());
                };
                if self.shelters < 2 || self.shelters > 2000 {
                    return bad("shelters must be 2..=2000".into());
                }
                for (what, p) in [
                    ("walk_in", sh.walk_in),
                    ("car", sh.car),
                    ("move_on", sh.move_on),
                    ("go_home", sh.go_home),
                    ("outing", sh.outing),
                    ("undo", sh.undo),
                ] {
                    if !(0.0..=1.0).contains(&p) {
                        return bad(format!("shelter.{what} must be in [0, 1], not {p}"));
                    }
                }
                if !(sh.pace > 0.0 && sh.pace <= 1.0) {
                    return bad(format!("shelter.pace must be in (0, 1], not {}", sh.pace));
                }
                if sh
                    .arrivals
                    .iter()
                    .any(|(h, r)| !ge(*h, 0.0) || !ge(*r, 0.0))
                {
                    return bad("shelter.arrivals must be (hour ≥ 0, rate ≥ 0) points".into());
                }
            }
            Kind::Election => {
                let Some(el) = &self.election else {
                    return bad("an election scenario needs an [election] table".into());
                };
                if el.stations == 0 || el.stations > 500 {
                    return bad("election.stations must be 1..=500".into());
                }
                if el.early_offices == 0 || el.early_offices > 50 {
                    return bad("election.early_offices must be 1..=50".into());
                }
                if !(0..=30).contains(&el.early_days) {
                    return bad("election.early_days must be 0..=30".into());
                }
                for (what, p) in [("turnout", el.turnout), ("early_share", el.early_share)] {
                    if !(0.0..=1.0).contains(&p) {
                        return bad(format!("election.{what} must be in [0, 1], not {p}"));
                    }
                }
                if el.double_votes.offline > 0
                    && !self
                        .faults
                        .iter()
                        .any(|f| matches!(f, Fault::Partition { .. }))
                {
                    return bad(
                        "election.double_votes.offline needs a partition fault to vote during"
                            .into(),
                    );
                }
            }
        }
        for f in &self.faults {
            let (from, until) = match f {
                Fault::Partition { from, until, .. } => (*from, *until),
                Fault::Crash { at, restart, .. } => (*at, *restart),
                Fault::LostLaptop { at, .. } => (*at, *at),
                Fault::ClockSkew { minutes, .. } => {
                    if minutes.abs() > 24 * 60 * 7 {
                        return bad("clock_skew.minutes must be within a week".into());
                    }
                    (0.0, 0.0)
                }
                Fault::OneWay { from, until, .. } => (*from, *until),
                Fault::ClockJump { at, minutes, .. } => {
                    if minutes.abs() > 24 * 60 * 7 {
                        return bad("clock_jump.minutes must be within a week".into());
                    }
                    (*at, *at)
                }
                Fault::ManifestChange { at, .. } => (*at, *at),
            };
            if !(from >= 0.0 && until >= from && until <= self.hours) {
                return bad(format!(
                    "fault {f:?}: times must satisfy 0 ≤ from ≤ until ≤ hours"
                ));
            }
        }
        for c in &self.cars {
            if c.route.len() < 2
                || !(ge(c.leg_hours, 0.0) && c.leg_hours != 0.0)
                || !ge(c.first, 0.0)
            {
                return bad("a car needs a route of two or more sites and leg_hours > 0".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
name = "t"
kind = "shelter"
seed = 1
households = 100
start_date = "2026-09-01"
hours = 4
shelters = 3
[shelter]
arrivals = [[0, 10], [4, 0]]
[[fault]]
kind = "partition"
sites = ["S002"]
from = 1
until = 2
"#;

    #[test]
    fn a_scenario_reads_and_bad_ones_say_why() {
        let s = Scenario::parse(SMALL).unwrap();
        assert_eq!(s.faults.len(), 1);
        assert_eq!(s.network.anti_entropy_s, 10.0);
        let typo = SMALL.replace("kind = \"partition\"", "kind = \"partitoin\"");
        assert!(matches!(
            Scenario::parse(&typo),
            Err(ScenarioError::Parse(_))
        ));
        let late = SMALL.replace("until = 2", "until = 9");
        assert!(
            matches!(Scenario::parse(&late), Err(ScenarioError::Invalid(m)) if m.contains("until"))
        );
        let no_table = SMALL.replace("[shelter]\narrivals = [[0, 10], [4, 0]]", "");
        assert!(Scenario::parse(&no_table).is_err());
    }
}
