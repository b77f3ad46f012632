//! `kazashi node`: an enrolled laptop without the window — a relay, or a command center's
//! always-on machine under systemd. It joins the mesh and prints its status as one JSON object
//! per line. The lab's drill laptops run the same loop with a writer.

use anyhow::Context as _;
use kazashi_domain::event::EventBody;
use kazashi_domain::{OperatorId, Roster};
use kazashi_node::enrolled::{self, Folder};
use kazashi_node::mesh::{DEFAULT_PORT, Mesh, MeshConfig, PeerAddr};
use kazashi_node::{Node, SystemClock};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Which laptop's folder to open: its store and roster store, and their passphrases.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// This laptop's folder: `kazashi.db` (the enrolled store) and `roster.db` (the pinned
    /// roster store).
    #[arg(long)]
    pub dir: PathBuf,
    /// Environment variable holding the store's passphrase.
    #[arg(long, default_value = "KAZASHI_PASSPHRASE")]
    pub passphrase_env: String,
    /// The roster store, if not `roster.db` in the folder.
    #[arg(long)]
    pub roster: Option<PathBuf>,
    /// Environment variable holding the roster store's passphrase (default: the store's).
    #[arg(long, default_value = "KAZASHI_ROSTER_PASSPHRASE")]
    pub roster_passphrase_env: String,
    /// File holding the store's passphrase, instead of the environment (a systemd credential:
    /// `LoadCredential=` and `$CREDENTIALS_DIRECTORY/…`). One trailing newline is ignored.
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// File holding the roster store's passphrase (default: the environment variable, else the
    /// store's passphrase).
    #[arg(long)]
    pub roster_passphrase_file: Option<PathBuf>,
}

/// A passphrase kept in a file: its text without one trailing newline.
fn read_passphrase_file(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("the passphrase file {}", path.display()))?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    Ok(text.to_owned())
}

impl StoreArgs {
    pub fn folder(&self) -> Folder {
        Folder {
            dir: self.dir.clone(),
            roster: self.roster.clone(),
        }
    }

    /// The store's passphrase, and the roster store's (the store's when its own is unset).
    /// Each from its file when one is named, else from its environment variable.
    pub fn passphrases(&self) -> anyhow::Result<(String, String)> {
        let store = match &self.passphrase_file {
            Some(path) => read_passphrase_file(path)?,
            None => std::env::var(&self.passphrase_env).map_err(|_| {
                anyhow::anyhow!(
                    "set the store's passphrase in the environment variable {} or name a file with --passphrase-file",
                    self.passphrase_env
                )
            })?,
        };
        let roster = match &self.roster_passphrase_file {
            Some(path) => read_passphrase_file(path)?,
            None => std::env::var(&self.roster_passphrase_env).unwrap_or_else(|_| store.clone()),
        };
        Ok((store, roster))
    }
}

/// Open this laptop's enrolled folder.
pub fn open_node(args: &StoreArgs) -> anyhow::Result<(Node<SystemClock>, Arc<Roster>)> {
    let (pass, roster_pass) = args.passphrases()?;
    enrolled::open(&args.folder(), &pass, &roster_pass, SystemClock).map_err(anyhow::Error::from)
}

#[derive(clap::Args, Debug, Clone)]
pub struct NodeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub mesh: MeshArgs,
}

/// Where a laptop listens on the mesh and whom it dials (the window and the headless node).
#[derive(clap::Args, Debug, Clone)]
pub struct Listen {
    /// UDP port to listen on (fixed, so that others can type it in).
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Address to bind: every interface by default (a laptop finds its peers on whatever LAN
    /// it is plugged into); an appliance or a laptop with more than one network sets the
    /// address of the shelter LAN's interface (docs/security.md, "Network exposure").
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: IpAddr,
    /// A peer to dial: ip:port, or <device hex>@ip:port (repeatable).
    #[arg(long = "peer")]
    pub peers: Vec<PeerAddr>,
    /// Do not announce or look for laptops on the LAN by mDNS.
    #[arg(long)]
    pub no_mdns: bool,
}

impl Listen {
    /// The mesh's configuration for these flags.
    pub fn config(&self) -> MeshConfig {
        MeshConfig {
            bind: SocketAddr::new(self.bind, self.port),
            peers: self.peers.clone(),
            mdns: !self.no_mdns,
            ..MeshConfig::default()
        }
    }
}

/// How a headless node joins the mesh and reports.
#[derive(clap::Args, Debug, Clone)]
pub struct MeshArgs {
    #[command(flatten)]
    pub listen: Listen,
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

/// The runtime the mesh runs on: two workers, as the laptop has two cores to spare at most.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

/// What a node writes by itself (the lab's drill laptops): every `every`, the next body the
/// plan gives, as `operator`, until it gives none; each event recorded (durable, as
/// [`Node::record`] returns) is handed to `recorded`.
pub struct Writer {
    pub every: Duration,
    pub operator: OperatorId,
    pub plan: Box<dyn FnMut(usize) -> Option<EventBody> + Send>,
    pub recorded: Box<dyn FnMut(&kazashi_domain::event::Event) + Send>,
}

pub fn run(args: &NodeArgs) -> anyhow::Result<()> {
    // A purged folder (issue 24) shows its record; a purge cut short is finished first.
    if let Some(shown) = crate::purged_folder::finish_if_begun(&args.store.folder())? {
        print_line(&shown);
        return Ok(());
    }
    let node = match open_node(&args.store) {
        Ok((node, _)) => node,
        Err(e) if lacks_pinned_roster(&e) && !args.mesh.listen.peers.is_empty() => {
            fetch_roster(args)?;
            open_node(&args.store)?.0
        }
        Err(e) => return Err(e),
    };
    let config = MeshConfig {
        anti_entropy: Duration::from_secs(args.mesh.anti_entropy.max(1)),
        ..args.mesh.listen.config()
    };
    let folder = args.store.folder();
    runtime()?.block_on(serve(node, config, args.mesh.clone(), None, Some(folder)))
}

/// Purge `folder` through the mesh's node if the operation's retention period has passed:
/// the record written through the node (the caller then stops the mesh and deletes the rest).
fn purge_if_due(mesh: &Mesh<SystemClock>, folder: &Folder) -> bool {
    use kazashi_node::Clock as _;
    use kazashi_node::purge;
    let now = SystemClock.now_ms();
    mesh.with_node(|n| {
        purge::due(n, now).is_some()
            && match purge::write_record(&folder.dir, n, now, "retention") {
                Ok(()) => true,
                Err(e) => {
                    eprintln!("kazashi node: the purge is due but its record failed: {e}");
                    false
                }
            }
    })
}

/// The folder has no roster store, or one the manifest no longer pins.
fn lacks_pinned_roster(e: &anyhow::Error) -> bool {
    use kazashi_node::roster_db::RosterDbError;
    matches!(
        e.downcast_ref::<enrolled::OpenError>(),
        Some(
            enrolled::OpenError::NoRoster(_)
                | enrolled::OpenError::Roster {
                    source: RosterDbError::NotPinned { .. },
                    ..
                }
        )
    )
}

/// A laptop enrolled with no roster store (or an old one): get the pinned roster from the
/// typed-in peers first (`roster_net::fetch_for_folder`), printing its progress as JSON lines
/// `{"roster": {...}}`.
fn fetch_roster(args: &NodeArgs) -> anyhow::Result<()> {
    use kazashi_node::Clock as _;
    use kazashi_node::roster_net::{FolderFetch, fetch_for_folder};
    let (pass, roster_pass) = args.store.passphrases()?;
    let how = FolderFetch {
        bind: SocketAddr::new(args.mesh.listen.bind, args.mesh.listen.port),
        peers: args
            .mesh
            .listen
            .peers
            .iter()
            .map(|p| (p.device, p.addr))
            .collect(),
        kdf: kazashi_node::KdfParams::STANDARD,
    };
    let today = kazashi_domain::CivilDate::jst_of(SystemClock.now_ms())
        .context("the clock is outside the calendar")?;
    let report = |s: &kazashi_node::roster_fetch::RosterStatus| {
        print_line(&serde_json::json!({ "roster": s }));
    };
    runtime()?
        .block_on(fetch_for_folder(
            &args.store.folder(),
            &pass,
            &roster_pass,
            &how,
            today,
            &report,
        ))
        .context("the pinned roster could not be fetched from the peers")?;
    Ok(())
}

fn print_line(v: &serde_json::Value) {
    use std::io::Write as _;
    if let Ok(line) = serde_json::to_string(v) {
        let mut out = std::io::stdout().lock();
        // A closed pipe means the reader has gone; nothing to do about it here.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// Join the mesh with `node` and print its status until stopped (the product's `kazashi node`
/// and the lab's drill laptops).
pub fn serve_blocking(
    node: Node<SystemClock>,
    args: &MeshArgs,
    writer: Option<Writer>,
) -> anyhow::Result<()> {
    let config = MeshConfig {
        anti_entropy: Duration::from_secs(args.anti_entropy.max(1)),
        ..args.listen.config()
    };
    runtime()?.block_on(serve(node, config, args.clone(), writer, None))
}

/// Serve until stopped; with `folder`, also until the operation's retention period has passed,
/// when the laptop purges itself (checked at start and with every status line).
async fn serve(
    node: Node<SystemClock>,
    config: MeshConfig,
    args: MeshArgs,
    writer: Option<Writer>,
    folder: Option<Folder>,
) -> anyhow::Result<()> {
    let mesh = Mesh::start(node, config).await?;
    let (purged_tx, mut purged_rx) = tokio::sync::watch::channel(false);
    if let Some(mut w) = writer {
        let mesh = mesh.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(w.every);
            let mut k = 0;
            loop {
                tick.tick().await;
                let Some(body) = (w.plan)(k) else { break };
                k += 1;
                match mesh.record(w.operator, body) {
                    Ok(event) => (w.recorded)(&event),
                    Err(e) => eprintln!("kazashi node: write refused: {e}"),
                }
            }
        });
    }
    let status = {
        let mesh = mesh.clone();
        let every = Duration::from_millis(args.status_every.max(50));
        let folder = folder.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Some(f) = &folder
                    && purge_if_due(&mesh, f)
                {
                    let _ = purged_tx.send(true);
                    break;
                }
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
    let purging = async {
        let _ = purged_rx.wait_for(|p| *p).await;
    };
    let purged = tokio::select! {
        _ = stop => false,
        _ = purging => true,
    };
    status.abort();
    if !purged {
        print_status(&mesh);
    }
    mesh.shutdown().await;
    if let (true, Some(f)) = (purged, folder) {
        drop(mesh);
        let done = kazashi_node::purge::purge_leftovers(&f.dir, &f.roster_path())?;
        eprintln!(
            "{}",
            crate::purged_folder::log_line("retention", Some(&done), &f.dir)
        );
        if let Some(shown) = crate::purged_folder::finish_if_begun(&f)? {
            print_line(&shown);
        }
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Only {
        #[command(flatten)]
        store: StoreArgs,
    }

    fn args(extra: &[&str]) -> StoreArgs {
        let mut argv = vec![
            "kazashi",
            "--dir",
            "/nowhere",
            "--passphrase-env",
            "KAZASHI_TEST_NO_SUCH_VARIABLE_1",
            "--roster-passphrase-env",
            "KAZASHI_TEST_NO_SUCH_VARIABLE_2",
        ];
        argv.extend_from_slice(extra);
        Only::try_parse_from(argv).unwrap().store
    }

    #[test]
    fn passphrases_come_from_files_as_systemd_credentials_give_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store-pass");
        let roster = dir.path().join("roster-pass");
        std::fs::write(&store, "laptop passphrase\n").unwrap();
        std::fs::write(&roster, "roster passphrase").unwrap();
        let s = store.display().to_string();
        let r = roster.display().to_string();
        let (p, rp) = args(&["--passphrase-file", &s]).passphrases().unwrap();
        assert_eq!(
            (p.as_str(), rp.as_str()),
            ("laptop passphrase", "laptop passphrase")
        );
        let (p, rp) = args(&["--passphrase-file", &s, "--roster-passphrase-file", &r])
            .passphrases()
            .unwrap();
        assert_eq!(
            (p.as_str(), rp.as_str()),
            ("laptop passphrase", "roster passphrase")
        );
        // No file, no variable: refused, and the message says how to give one.
        let e = args(&[]).passphrases().unwrap_err().to_string();
        assert!(e.contains("--passphrase-file"), "{e}");
        let missing = dir.path().join("missing").display().to_string();
        let e = args(&["--passphrase-file", &missing])
            .passphrases()
            .unwrap_err();
        assert!(format!("{e:#}").contains("passphrase file"), "{e:#}");
    }
}
