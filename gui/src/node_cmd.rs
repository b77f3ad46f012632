//! `kazashi node`: a station without the window — for tests, the simulator, and a command
//! center's always-on laptop under systemd. It joins the mesh, optionally writes check-ins at a
//! steady pace (drills), and prints its status as one JSON object per line.

use kazashi_domain::{CivilDate, OperatorId, Roster};
use kazashi_node::mesh::{DEFAULT_PORT, Mesh, MeshConfig, PeerAddr};
use kazashi_node::{KdfParams, Node, SystemClock};
use kazashi_sim::population::{PopulationSpec, generate, shelter_operation};
use kazashi_sim::workload::household_check_in;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Which laptop's store to open: the directory, its passphrase and (for drills) the fleet.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// Directory of this laptop's store (created on first run).
    #[arg(long)]
    pub dir: PathBuf,
    /// Environment variable holding the store's passphrase.
    #[arg(long, default_value = "KAZASHI_PASSPHRASE")]
    pub passphrase_env: String,
    /// Enrol from the drill fleet with this key seed (drills and tests: keys derived from a
    /// seed, one laptop per shelter of the synthetic city).
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
    /// Take the roster from this roster store (`kazashi roster import`) instead of generating
    /// it; it must be the roster pinned in the deployment manifest.
    #[arg(long)]
    pub roster: Option<PathBuf>,
    /// Environment variable holding the roster store's passphrase.
    #[arg(long, default_value = "KAZASHI_ROSTER_PASSPHRASE")]
    pub roster_passphrase_env: String,
}

#[derive(clap::Args, Debug, Clone)]
pub struct NodeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// UDP port to listen on (fixed, so that others can type it in).
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: IpAddr,
    /// A peer to dial: ip:port, or <device hex>@ip:port (repeatable).
    #[arg(long = "peer")]
    pub peers: Vec<PeerAddr>,
    /// Do not announce or look for laptops on the LAN by mDNS.
    #[arg(long)]
    pub no_mdns: bool,
    /// Write a household check-in every this many milliseconds (drills; 0: never).
    #[arg(long, default_value_t = 0)]
    pub write_every: u64,
    /// Stop writing after this many check-ins.
    #[arg(long, default_value_t = 0)]
    pub writes: usize,
    /// Print the status every this many milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub status_every: u64,
    /// Seconds between anti-entropy passes.
    #[arg(long, default_value_t = 10)]
    pub anti_entropy: u64,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long)]
    pub run_for: Option<u64>,
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

fn drill_world(
    args: &StoreArgs,
) -> Result<
    (
        Arc<Roster>,
        kazashi_sim::fleet::Fleet,
        kazashi_domain::SiteId,
    ),
    String,
> {
    let m = drill_town(args.town_seed)?;
    let d = shelter_operation(&m, args.sites.max(3)).map_err(|e| e.to_string())?;
    let fleet = kazashi_sim::fleet::fleet(&d, args.drill_fleet)?;
    let site = fleet
        .stations
        .get(args.index)
        .map(|(s, _)| *s)
        .ok_or_else(|| {
            format!(
                "--index {} is beyond the fleet's {} laptops",
                args.index,
                fleet.stations.len()
            )
        })?;
    let roster = match &args.roster {
        None => m.roster,
        Some(path) => {
            let pass = crate::roster_cmd::passphrase(&args.roster_passphrase_env)?;
            let db = kazashi_node::roster_db::RosterDb::open(path, &pass)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            db.load(m.today, Some(d.roster_hash()))
                .map_err(|e| format!("{}: {e}", path.display()))?
        }
    };
    Ok((Arc::new(roster), fleet, site))
}

/// Open this laptop's store, enrolling it from the drill fleet on first use.
pub fn open_node(args: &StoreArgs) -> Result<(Node<SystemClock>, Arc<Roster>), String> {
    let passphrase = std::env::var(&args.passphrase_env).map_err(|_| {
        format!(
            "set the store's passphrase in the environment variable {}",
            args.passphrase_env
        )
    })?;
    let (roster, fleet, site) = drill_world(args)?;
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| format!("cannot create {}: {e}", args.dir.display()))?;
    let path = args.dir.join("kazashi.db");
    let node = if path.exists() {
        Node::open(&path, &passphrase, roster.clone(), site, SystemClock)
    } else {
        let key = fleet
            .stations
            .get(args.index)
            .map(|(_, k)| kazashi_sync::DeviceKey::from_seed(k.secret_bytes()))
            .ok_or("no key for this laptop")?;
        // Drill stores: the fast key derivation (their keys are derived from a seed anyway).
        Node::create(
            &path,
            &passphrase,
            KdfParams::FAST_INSECURE,
            key,
            &fleet.manifest,
            roster.clone(),
            site,
            SystemClock,
        )
    }
    .map_err(|e| e.to_string())?;
    Ok((node, roster))
}

pub fn run(args: &NodeArgs) -> Result<(), String> {
    let (node, roster) = open_node(&args.store)?;
    let config = MeshConfig {
        bind: SocketAddr::new(args.bind, args.port),
        peers: args.peers.clone(),
        mdns: !args.no_mdns,
        anti_entropy: Duration::from_secs(args.anti_entropy.max(1)),
        ..MeshConfig::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(serve(node, config, roster, args.clone()))
}

async fn serve(
    node: Node<SystemClock>,
    config: MeshConfig,
    roster: Arc<Roster>,
    args: NodeArgs,
) -> Result<(), String> {
    let mesh = Mesh::start(node, config).await.map_err(|e| e.to_string())?;
    if args.write_every > 0 && args.writes > 0 {
        let mesh = mesh.clone();
        let (every, writes, index) = (args.write_every, args.writes, args.store.index);
        tokio::spawn(async move {
            let operator = OperatorId::new("drill").ok();
            let mut tick = tokio::time::interval(Duration::from_millis(every));
            for k in 0..writes {
                tick.tick().await;
                let (Some(op), Some(body)) =
                    (operator, household_check_in(&roster, index * 7919 + k * 31))
                else {
                    continue;
                };
                if let Err(e) = mesh.record(op, body) {
                    eprintln!("kazashi node: write refused: {e}");
                }
            }
        });
    }
    let status = {
        let mesh = mesh.clone();
        let every = Duration::from_millis(args.status_every.max(50));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                print_status(&mesh);
            }
        })
    };
    let stop = async {
        match args.run_for {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => wait_for_signal().await,
        }
    };
    stop.await;
    status.abort();
    print_status(&mesh);
    mesh.shutdown().await;
    Ok(())
}

fn print_status(mesh: &Mesh<SystemClock>) {
    use std::io::Write as _;
    let status = mesh.status();
    if let Ok(line) = serde_json::to_string(&status) {
        let mut out = std::io::stdout().lock();
        // A closed pipe means the reader has gone; nothing to do about it here.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
