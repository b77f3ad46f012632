//! The drill fleet's laptops: a folder enrolled from the seeded fleet (keys derived from a
//! seed, the fast key derivation, the synthetic city's roster imported and pinned), exactly as
//! the product then opens it; and a laptop that writes check-ins on the mesh — a drill laptop,
//! or (without `--drill-fleet`) a laptop the product enrolled (`kazashi enrol`), opened as
//! `kazashi node` opens it and checking in households of its pinned roster.

use kazashi_domain::event::{Event, EventBody};
use kazashi_domain::{CivilDate, OperatorId, Roster};
use kazashi_gui::node_cmd::{MeshArgs, StoreArgs, Writer, open_node, serve_blocking};
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
    /// The fleet's key seed (one laptop per shelter of the synthetic city). `node` without it
    /// runs the laptop the product enrolled in `--dir`.
    #[arg(long)]
    pub drill_fleet: Option<u64>,
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
    let seed = args.drill_fleet.ok_or_else(|| {
        format!(
            "{} holds no enrolled laptop: name the drill fleet to enrol it from (--drill-fleet)",
            args.dir.display()
        )
    })?;
    let m = drill_town(args.town_seed)?;
    let d = shelter_operation(&m, args.sites.max(3)).map_err(|e| e.to_string())?;
    let fleet = kazashi_sim::fleet::fleet(&d, seed)?;
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
    if args.drill_fleet.is_none() {
        return Err("enrol-drill: name the drill fleet (--drill-fleet)".into());
    }
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
    /// On a laptop the product enrolled: the household (in roster order) of the first
    /// check-in; each next one checks in the next household.
    #[arg(long, default_value_t = 0, conflicts_with = "drill_fleet")]
    pub first_household: usize,
    /// Append the id (hex) of each check-in to this file, one line each, once it is recorded
    /// (durable): what the laptop has acknowledged, for tests that kill it.
    #[arg(long)]
    pub acked: Option<PathBuf>,
}

/// What the writer does with each event it has recorded.
type Recorded = Box<dyn FnMut(&Event) + Send>;

/// Each event recorded: its id appended to `path` as a line (the line is flushed before the
/// next write; a failure is said once and writing goes on).
fn acknowledge(path: Option<PathBuf>) -> Result<Recorded, String> {
    use std::io::Write as _;
    let Some(path) = path else {
        return Ok(Box::new(|_: &Event| {}));
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut failed = false;
    Ok(Box::new(move |event: &Event| {
        let line = format!("{}\n", event.id().to_hex());
        if let Err(e) = file.write_all(line.as_bytes()).and_then(|()| file.flush())
            && !failed
        {
            failed = true;
            eprintln!("kazashi-lab node: cannot append to the acknowledged ids: {e}");
        }
    }))
}

/// The laptop the product enrolled in `laptop.dir`, opened as `kazashi node` opens it (its
/// store flags at their defaults but for the folder and the passphrase's variable: the roster
/// store's passphrase in `KAZASHI_ROSTER_PASSPHRASE`, else the store's).
fn open_enrolled(laptop: &DrillLaptop) -> Result<(Node<SystemClock>, Arc<Roster>), String> {
    #[derive(clap::Parser)]
    struct Only {
        #[command(flatten)]
        store: StoreArgs,
    }
    let argv = [
        "kazashi-lab".into(),
        "--dir".into(),
        laptop.dir.as_os_str().to_owned(),
        "--passphrase-env".into(),
        laptop.passphrase_env.clone().into(),
    ];
    let only: Only =
        clap::Parser::try_parse_from::<_, std::ffi::OsString>(argv).map_err(|e| e.to_string())?;
    open_node(&only.store).map_err(|e| format!("{e:#}"))
}

/// `kazashi-lab node`: a drill laptop (or a laptop the product enrolled) on the mesh, writing
/// check-ins at a steady pace.
pub fn node(args: &NodeArgs) -> Result<(), String> {
    let (node, roster) = match args.laptop.drill_fleet {
        Some(_) => open(&args.laptop)?,
        None => open_enrolled(&args.laptop)?,
    };
    // Which household the k-th check-in is of: spread over the city by the drill laptop's
    // index, or one after the other from the first named.
    let household: Box<dyn Fn(usize) -> usize + Send> = match args.laptop.drill_fleet {
        Some(_) => {
            let index = args.laptop.index;
            Box::new(move |k| index * 7919 + k * 31)
        }
        None => {
            let first = args.first_household;
            Box::new(move |k| first + k)
        }
    };
    let recorded = acknowledge(args.acked.clone())?;
    let writer = (args.write_every > 0 && args.writes > 0)
        .then(|| OperatorId::new("drill").ok())
        .flatten()
        .map(|operator| {
            let writes = args.writes;
            let plan = move |k: usize| -> Option<EventBody> {
                (k < writes)
                    .then(|| household_check_in(&roster, household(k)))
                    .flatten()
            };
            Writer {
                every: Duration::from_millis(args.write_every),
                operator,
                plan: Box::new(plan),
                recorded,
            }
        });
    serve_blocking(node, &args.mesh, writer).map_err(|e| format!("{e:#}"))
}
