//! The drill fleet's laptops: a folder enrolled from the seeded fleet (keys derived from a
//! seed, the fast key derivation, the synthetic city's roster imported and pinned), exactly as
//! the product then opens it; and a drill laptop that writes check-ins on the mesh.

use kazashi_domain::event::EventBody;
use kazashi_domain::{CivilDate, OperatorId, Roster};
use kazashi_gui::node_cmd::{MeshArgs, Writer, serve_blocking};
use kazashi_node::enrolled::{self, Folder};
use kazashi_node::roster_csv::{Mapping, ReadOptions, read, write};
use kazashi_node::roster_db::{RosterDb, sha256};
use kazashi_node::{KdfParams, Node, SystemClock};
use kazashi_sim::population::{PopulationSpec, generate, shelter_operation};
use kazashi_sim::workload::household_check_in;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Which drill laptop, in which drill city.
#[derive(clap::Args, Debug, Clone)]
pub struct DrillLaptop {
    /// The laptop's folder (enrolled on first use).
    #[arg(long)]
    pub dir: PathBuf,
    /// Environment variable holding the store's (and the roster store's) passphrase.
    #[arg(long, default_value = "KAZASHI_PASSPHRASE")]
    pub passphrase_env: String,
    /// The fleet's key seed (one laptop per shelter of the synthetic city).
    #[arg(long)]
    pub drill_fleet: u64,
    /// Seed of the synthetic city (and so of the deployment) the drill runs in.
    #[arg(long, default_value_t = 1)]
    pub town_seed: u64,
    /// Shelters in the drill city (one laptop each).
    #[arg(long, default_value_t = 5)]
    pub sites: usize,
    /// Which of the fleet's laptops this is (its shelter's index).
    #[arg(long, default_value_t = 0)]
    pub index: usize,
}

/// The drill city: small, so that a node starts in a moment.
const DRILL_HOUSEHOLDS: usize = 300;

/// The drill city of `seed`.
pub fn drill_town(seed: u64) -> Result<kazashi_sim::Municipality, String> {
    let today = CivilDate::new(2026, 9, 1).map_err(|e| e.to_string())?;
    generate(PopulationSpec {
        households: DRILL_HOUSEHOLDS,
        seed,
        today,
        voters: false,
    })
    .map_err(|e| e.to_string())
}

/// The drill laptop's folder, enrolled from the fleet on first use, then opened as the
/// product opens any folder.
pub fn open(args: &DrillLaptop) -> Result<(Node<SystemClock>, Arc<Roster>), String> {
    let pass = std::env::var(&args.passphrase_env).map_err(|_| {
        format!(
            "set the store's passphrase in the environment variable {}",
            args.passphrase_env
        )
    })?;
    let folder = Folder::new(&args.dir);
    if folder.is_enrolled() {
        return enrolled::open(&folder, &pass, &pass, SystemClock)
            .map_err(|e| format!("{:#}", anyhow::Error::from(e)));
    }
    let m = drill_town(args.town_seed)?;
    let d = shelter_operation(&m, args.sites.max(3)).map_err(|e| e.to_string())?;
    let fleet = kazashi_sim::fleet::fleet(&d, args.drill_fleet)?;
    let (site, key) = fleet.stations.get(args.index).ok_or_else(|| {
        format!(
            "--index {} is beyond the fleet's {} laptops",
            args.index,
            fleet.stations.len()
        )
    })?;
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| format!("cannot create {}: {e}", args.dir.display()))?;
    // The city's roster as a municipality would hand it over: CSV, linted, imported.
    let csv = write(&m.roster);
    let opts = ReadOptions {
        kind: m.roster.kind(),
        mapping: Mapping::default(),
        today: m.today,
        encoding: None,
    };
    let imported = read(csv.as_bytes(), &opts, &mut |_, _| {}).map_err(|lint| {
        format!(
            "the drill city's roster did not lint: {} errors",
            lint.error_count()
        )
    })?;
    RosterDb::create(
        &folder.roster_path(),
        &pass,
        KdfParams::FAST_INSECURE,
        (&imported).into(),
        sha256(csv.as_bytes()),
        &mut |_, _| {},
    )
    .map_err(|e| format!("{:#}", anyhow::Error::from(e)))?;
    let key = kazashi_sync::DeviceKey::from_seed(key.secret_bytes());
    enrolled::enrol(
        &folder,
        &pass,
        &pass,
        KdfParams::FAST_INSECURE,
        key,
        &fleet.manifest,
        *site,
        SystemClock,
    )
    .map_err(|e| format!("{:#}", anyhow::Error::from(e)))
}

/// `kazashi-lab enrol-drill`: enrol a drill laptop's folder and say which it is.
pub fn enrol(args: &DrillLaptop) -> Result<(), String> {
    let (node, roster) = open(args)?;
    println!(
        "{}",
        serde_json::json!({
            "dir": args.dir.display().to_string(),
            "device": node.device().to_hex(),
            "site": node.station().site().to_string(),
            "roster": roster.hash().to_hex(),
        })
    );
    Ok(())
}

#[derive(clap::Args, Debug, Clone)]
pub struct NodeArgs {
    #[command(flatten)]
    pub laptop: DrillLaptop,
    #[command(flatten)]
    pub mesh: MeshArgs,
    /// Write a household check-in every this many milliseconds (0: never).
    #[arg(long, default_value_t = 0)]
    pub write_every: u64,
    /// Stop writing after this many check-ins.
    #[arg(long, default_value_t = 0)]
    pub writes: usize,
}

/// `kazashi-lab node`: a drill laptop on the mesh, writing check-ins at a steady pace.
pub fn node(args: &NodeArgs) -> Result<(), String> {
    let (node, roster) = open(&args.laptop)?;
    let writer = (args.write_every > 0 && args.writes > 0)
        .then(|| OperatorId::new("drill").ok())
        .flatten()
        .map(|operator| {
            let (writes, index) = (args.writes, args.laptop.index);
            let plan = move |k: usize| -> Option<EventBody> {
                (k < writes)
                    .then(|| household_check_in(&roster, index * 7919 + k * 31))
                    .flatten()
            };
            Writer {
                every: Duration::from_millis(args.write_every),
                operator,
                plan: Box::new(plan),
            }
        });
    serve_blocking(node, &args.mesh, writer).map_err(|e| format!("{e:#}"))
}
