//! `kazashi enrol`: a fresh laptop's side of enrolment, headless. Without `--install`: a device
//! key from the operating system, a new store under the laptop's passphrase, and
//! `enrol-request.json` for the administrator, with the fingerprint to read out. With
//! `--install FILE`: verify the administrator's signed manifest and install it (newer versions
//! only; see `kazashi_node::enrolment`). With `--send ADDR`: the request goes to the
//! administrator's `kazashi deployment serve-enrol` over the LAN, and the manifest signed for
//! this laptop comes back on the same connection and is installed exactly as with `--install`
//! (`kazashi_node::enrol_net`). [`serve`] is `kazashi deployment serve-enrol`.

use anyhow::Context as _;
use kazashi_domain::SiteId;
use kazashi_node::deployment_admin::AdminFolder;
use kazashi_node::enrol_net::{self, Progress, ServeConfig, ServeEvent, Server, Target};
use kazashi_node::enrolled::Folder;
use kazashi_node::enrolment::{self, REQUEST_FILE};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct EnrolArgs {
    /// This laptop's folder (`kazashi.db` is created in it).
    #[arg(long)]
    pub dir: PathBuf,
    /// A name for people ("第一小学校 受付1").
    #[arg(long, default_value = "laptop")]
    pub label: String,
    /// Install this signed manifest (`manifest.kzm` from the administrator).
    #[arg(long, conflicts_with = "send")]
    pub install: Option<PathBuf>,
    /// Send the request to the administrator's `kazashi deployment serve-enrol` over the LAN
    /// and install the manifest that comes back: `<id>@ip:port` as serve-enrol prints it,
    /// `lan` (found by mDNS), or `ip:port` (the service announcing that address, by mDNS).
    #[arg(long)]
    pub send: Option<String>,
    /// With --send: seconds to wait in all for the administrator's approval.
    #[arg(long, default_value_t = 600, requires = "send")]
    pub wait: u64,
    /// The site to work at, when the manifest allows this laptop more than one.
    #[arg(long)]
    pub site: Option<String>,
    /// The deployment key's fingerprint as the administrator reads it out (`kazashi deployment
    /// show`): required for the first manifest (and so with --send), checked if given later.
    #[arg(long)]
    pub admin_fingerprint: Option<String>,
    /// Environment variable holding the store's passphrase.
    #[arg(long, default_value = "KAZASHI_PASSPHRASE")]
    pub passphrase_env: String,
}

pub fn run(args: &EnrolArgs) -> anyhow::Result<()> {
    let pass = std::env::var(&args.passphrase_env).map_err(|_| {
        anyhow::anyhow!(
            "set the store's passphrase in the environment variable {}",
            args.passphrase_env
        )
    })?;
    let folder = Folder::new(&args.dir);
    if args.send.is_none() && args.install.is_none() {
        for (flag, given) in [
            ("--site", args.site.is_some()),
            ("--admin-fingerprint", args.admin_fingerprint.is_some()),
        ] {
            if given {
                anyhow::bail!("{flag} goes with --install or --send");
            }
        }
    }
    if let Some(to) = &args.send {
        return send(args, &folder, &pass, to);
    }
    match &args.install {
        None => {
            let req = enrolment::request(&folder, &pass, &args.label)
                .with_context(|| format!("enrolling {}", args.dir.display()))?;
            eprintln!(
                "fingerprint (read it out to the administrator): {}",
                req.fingerprint
            );
            println!(
                "{}",
                serde_json::json!({"ok": true, "device": req.device, "fingerprint": req.fingerprint,
                    "request": args.dir.join(REQUEST_FILE).display().to_string()})
            );
            Ok(())
        }
        Some(file) => {
            let bytes = std::fs::read(file).with_context(|| format!("{}", file.display()))?;
            let site = site(args)?;
            let done = enrolment::install(
                &folder,
                &pass,
                &bytes,
                site,
                args.admin_fingerprint.as_deref(),
            )
            .with_context(|| {
                format!(
                    "installing {} in {}: nothing was changed",
                    file.display(),
                    args.dir.display()
                )
            })?;
            println!("{}", installed(&done, "file"));
            Ok(())
        }
    }
}

fn site(args: &EnrolArgs) -> anyhow::Result<Option<SiteId>> {
    args.site
        .as_deref()
        .map(|s| SiteId::new(s.trim()))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--site: {e}"))
}

fn installed(done: &enrolment::Installed, via: &str) -> serde_json::Value {
    serde_json::json!({"ok": true, "version": done.members.version(),
        "deployment": done.members.deployment().id().to_hex(),
        "site": done.site.as_str(), "changed": done.changed, "via": via,
        "roster": done.members.deployment().roster_hash().to_hex()})
}

/// `--send`: the request over the LAN, the manifest back, installed as from a file.
fn send(args: &EnrolArgs, folder: &Folder, pass: &str, to: &str) -> anyhow::Result<()> {
    // Checked before anything is made or sent: the install at the end needs them.
    let target: Target = to.parse().context("--send")?;
    let Some(admin_fp) = args.admin_fingerprint.as_deref() else {
        anyhow::bail!(
            "--send needs --admin-fingerprint: the deployment key's fingerprint as the administrator reads it out"
        );
    };
    let site = site(args)?;
    let req = enrolment::request(folder, pass, &args.label)
        .with_context(|| format!("enrolling {}", args.dir.display()))?;
    eprintln!(
        "fingerprint (read it out to the administrator): {}",
        req.fingerprint
    );
    let key = enrol_net::device_key(folder, pass).context("the laptop's store")?;
    let runtime = crate::node_cmd::runtime()?;
    let mut told = false;
    let bytes = runtime
        .block_on(enrol_net::send_request(
            &key,
            &target,
            &req,
            Duration::from_secs(args.wait),
            |p| match p {
                Progress::Connected(_) => {
                    eprintln!("connected to the administrator's enrolment service")
                }
                Progress::Waiting if !told => {
                    told = true;
                    eprintln!(
                        "request delivered; waiting for the administrator to approve it (up to {} s)",
                        args.wait
                    );
                }
                Progress::Waiting => {}
            },
        ))
        .context("sending the enrolment request: nothing was installed")?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    let done =
        enrolment::install(folder, pass, &bytes, site, Some(admin_fp)).with_context(|| {
            format!(
                "installing the manifest the administrator's side sent in {}: nothing was changed",
                args.dir.display()
            )
        })?;
    println!("{}", installed(&done, "lan"));
    Ok(())
}

/// `kazashi deployment serve-enrol`: the administrator's side of enrolment over the LAN.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The administrator's deployment folder (requests are kept in its `requests/`).
    #[arg(long, visible_alias = "admin-dir")]
    pub dir: PathBuf,
    /// UDP port to listen on.
    #[arg(long, default_value_t = enrol_net::DEFAULT_PORT)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: IpAddr,
    /// Do not announce the service on the LAN by mDNS.
    #[arg(long)]
    pub no_mdns: bool,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long)]
    pub run_for: Option<u64>,
}

/// Serve enrolment requests until stopped: one JSON line when listening, and one per request
/// received, manifest sent, or connection refused. Approval stays `kazashi deployment approve`.
pub fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let admin = AdminFolder::new(&args.dir);
    let config = ServeConfig {
        bind: SocketAddr::new(args.bind, args.port),
        mdns: !args.no_mdns,
        ..ServeConfig::default()
    };
    let runtime = crate::node_cmd::runtime()?;
    runtime.block_on(async {
        let mut server = Server::start(admin, config)
            .await
            .with_context(|| format!("serving enrolment for {}", args.dir.display()))?;
        let addrs: Vec<String> = server.addrs().iter().map(ToString::to_string).collect();
        println!(
            "{}",
            serde_json::json!({"serving": true, "addrs": addrs, "version": server.version(),
                "mdns": !args.no_mdns})
        );
        let stop = async {
            match args.run_for {
                Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        };
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                ev = server.next_event() => match ev {
                    Some(ev) => println!("{}", event_json(&ev)),
                    None => break,
                },
            }
        }
        server.shutdown().await;
        anyhow::Ok(())
    })?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

fn event_json(ev: &ServeEvent) -> serde_json::Value {
    let addr = |a: &Option<SocketAddr>| a.map(|a| a.to_string());
    match ev {
        ServeEvent::Received {
            device,
            label,
            fingerprint,
            peer,
            file,
        } => serde_json::json!({"request": {"device": device, "label": label,
            "fingerprint": fingerprint, "peer": addr(peer),
            "file": file.display().to_string()}}),
        ServeEvent::Sent { device, version } => {
            serde_json::json!({"sent": {"device": device, "version": version}})
        }
        ServeEvent::Left { device } => serde_json::json!({"left": {"device": device}}),
        ServeEvent::Refused { peer, why } => {
            serde_json::json!({"refused": {"peer": addr(peer), "why": why}})
        }
    }
}
