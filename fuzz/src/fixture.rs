//! The towns of `fuzz/fixtures/<name>/` (written by `tests/tests/fuzz_parsers.rs`,
//! `fuzz_fixtures_match_the_town`, which also checks they are still the lab's town): the roster
//! as CSV, the signed manifest, and one seeded key per laptop (`SITE HEX` lines). Lab keys,
//! never a deployment's.

use kazashi_domain::ids::SiteId;
use kazashi_domain::{CivilDate, Roster, RosterKind};
use kazashi_node::roster_csv::{Mapping, ReadOptions, read};
use kazashi_node::store::KdfParams;
use kazashi_node::{ManualClock, Node};
use kazashi_sync::{DeviceKey, Membership, SignedManifest};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The day the fixtures' rosters were made for.
pub fn today() -> CivilDate {
    CivilDate::new(2026, 9, 1).unwrap()
}

/// The lab's workload start (`kazashi_sim::workload::START_MS`).
pub const START_MS: u64 = 1_788_210_000_000;

pub struct Town {
    pub roster: Arc<Roster>,
    pub manifest: Vec<u8>,
    pub members: Membership,
    pub stations: Vec<(SiteId, DeviceKey)>,
}

impl Town {
    /// The `n`-th laptop at a shelter (not the command center).
    pub fn shelter(&self, n: usize) -> usize {
        let shelters: Vec<usize> = (0..self.stations.len())
            .filter(|&i| self.stations[i].0.as_str() != "HQ")
            .collect();
        shelters[n % shelters.len()]
    }

    /// A fresh store for laptop `n` in `dir`.
    pub fn node(&self, dir: &Path, n: usize) -> Node<ManualClock> {
        Node::create(
            &dir.join(format!("n{n}.db")),
            "correct horse",
            KdfParams::FAST_INSECURE,
            DeviceKey::from_seed(self.stations[n].1.secret_bytes()),
            &self.manifest,
            self.roster.clone(),
            self.stations[n].0,
            ManualClock::new(START_MS),
        )
        .unwrap()
    }
}

fn dir() -> PathBuf {
    std::env::var_os("KAZASHI_FUZZ_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"))
}

fn load(name: &str, kind: RosterKind) -> Town {
    let d = dir().join(name);
    let manifest = std::fs::read(d.join("manifest.bin")).unwrap();
    let members = SignedManifest::decode(&manifest).unwrap();
    let opts = ReadOptions {
        kind,
        mapping: Mapping::default(),
        today: today(),
        encoding: None,
    };
    let imp = read(
        &std::fs::read(d.join("roster.csv")).unwrap(),
        &opts,
        &mut |_, _| {},
    )
    .unwrap();
    let roster = Roster::new(imp.kind, imp.entries, today()).unwrap();
    let stations = std::fs::read_to_string(d.join("keys.txt"))
        .unwrap()
        .lines()
        .map(|l| {
            let (site, key) = l.split_once(' ').unwrap();
            let seed: [u8; 32] = hex::decode(key).unwrap().try_into().unwrap();
            (SiteId::new(site).unwrap(), DeviceKey::from_seed(seed))
        })
        .collect();
    Town {
        roster: Arc::new(roster),
        manifest,
        members,
        stations,
    }
}

/// The small town every node-backed target uses (residents).
pub fn town() -> &'static Town {
    static T: OnceLock<Town> = OnceLock::new();
    T.get_or_init(|| load("town", RosterKind::Residents))
}

/// The same town on the voter list (admission tickets).
pub fn voters() -> &'static Town {
    static T: OnceLock<Town> = OnceLock::new();
    T.get_or_init(|| load("voters", RosterKind::Voters))
}

/// A folder for stores: in memory where there is one (each refusal is quarantined with an
/// fsync).
pub fn fast_dir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap()
}
