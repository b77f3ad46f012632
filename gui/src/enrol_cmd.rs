//! `kazashi enrol`: a fresh laptop's side of enrolment, headless. Without `--install`: a device
//! key from the operating system, a new store under the laptop's passphrase, and
//! `enrol-request.json` for the administrator, with the fingerprint to read out. With
//! `--install FILE`: verify the administrator's signed manifest and install it (newer versions
//! only; see `kazashi_node::enrolment`).

use anyhow::Context as _;
use kazashi_domain::SiteId;
use kazashi_node::enrolled::Folder;
use kazashi_node::enrolment::{self, REQUEST_FILE};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct EnrolArgs {
    /// This laptop's folder (`kazashi.db` is created in it).
    #[arg(long)]
    pub dir: PathBuf,
    /// A name for people ("第一小学校 受付1").
    #[arg(long, default_value = "laptop")]
    pub label: String,
    /// Install this signed manifest (`manifest.kzm` from the administrator).
    #[arg(long)]
    pub install: Option<PathBuf>,
    /// The site to work at, when the manifest allows this laptop more than one.
    #[arg(long, requires = "install")]
    pub site: Option<String>,
    /// The deployment key's fingerprint as the administrator reads it out (`kazashi deployment
    /// show`): required for the first manifest, checked if given later.
    #[arg(long, requires = "install")]
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
            let site = args
                .site
                .as_deref()
                .map(|s| SiteId::new(s.trim()))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--site: {e}"))?;
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
            println!(
                "{}",
                serde_json::json!({"ok": true, "version": done.members.version(),
                    "deployment": done.members.deployment().id().to_hex(),
                    "site": done.site.as_str(), "changed": done.changed,
                    "roster": done.members.deployment().roster_hash().to_hex()})
            );
            Ok(())
        }
    }
}
