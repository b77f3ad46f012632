//! The administrator's folder and passphrase, as every `kazashi deployment …` command takes
//! them, and the JSON line a command prints after signing a version (`deployment_cmd` and the
//! staff commands of `staff_cmd` share them).

use kazashi_node::deployment_admin::AdminFolder;
use kazashi_sync::Membership;
use std::path::PathBuf;

/// The administrator's folder and passphrase.
#[derive(clap::Args, Debug, Clone)]
pub struct AdminArgs {
    /// The administrator's deployment folder (the key file and the manifests).
    #[arg(long)]
    pub dir: PathBuf,
    /// Environment variable holding the deployment key's passphrase.
    #[arg(long, default_value = "KAZASHI_ADMIN_PASSPHRASE")]
    pub passphrase_env: String,
}

impl AdminArgs {
    pub fn folder(&self) -> AdminFolder {
        AdminFolder::new(&self.dir)
    }
    pub fn passphrase(&self) -> anyhow::Result<String> {
        std::env::var(&self.passphrase_env).map_err(|_| {
            anyhow::anyhow!(
                "set the deployment key's passphrase in the environment variable {}",
                self.passphrase_env
            )
        })
    }
}

/// What a command that signed version `m` prints: the version, the file to hand to laptops,
/// and the two fingerprints.
pub fn published(dir: &std::path::Path, m: &Membership) -> serde_json::Value {
    serde_json::json!({"ok": true, "version": m.version(),
        "admin_fingerprint": kazashi_node::enrolment::fingerprint(&m.manifest().admin),
        "manifest": dir.join(kazashi_node::deployment_admin::MANIFEST_FILE).display().to_string(),
        "fingerprint": m.fingerprint()})
}
