//! Purging the administrator's folder (`kazashi deployment purge`, [`AdminFolder::purge`]):
//! the administrator's half of close and purge (issue 24; the laptops' half is
//! [`crate::purge`]).
//!
//! **When.** Refused, with nothing changed, unless the latest manifest is closed (`closed_at`,
//! `kazashi deployment close`), it sets a retention period (`retention_days`) and
//! `closed_at + retention_days` has passed at `now` (the caller's clock: the CLI passes the
//! system's); unless the deployment's id is typed back (`--confirm`); and unless the passphrase
//! opens the deployment key.
//!
//! **What is destroyed.** `purpose-keys.kzk` (the medical, manager and operation secrets,
//! sealed under the deployment key) and a `purpose-keys.kzk.tmp` an interrupted write left, with
//! [`crate::store_key::destroy`] (overwritten with random bytes, synced, unlinked, the folder
//! synced). Once every laptop has purged too, no sealed note can be opened anywhere: the laptops
//! held the secrets only inside their stores, whose keys their own purge destroys.
//!
//! **What is kept, and why.** The folder holds no plain staff file (`init --staff` reads the
//! file where it is and signs only hashed PINs; the operator shreds that file), so there is no
//! plain personal file to delete. Kept: `deployment-key.kzk` (encrypted; it proves which
//! manifests are the deployment's), every `manifest*.kzm` (the signed record of which laptops
//! and staff were authorised, when, and the closing: an audit of the record needs them; they do
//! hold the staff's names, ids and PIN hashes and the laptops' labels, which no purge can redact
//! from a signed file), and `requests/` (enrolment requests: device keys and labels, the same
//! labels the manifests carry). Any other file in the folder is not Kazashi's: it is named in
//! `purged.json` (`other_files`) and left alone.
//!
//! **Record.** `purged.json` (JSON: `format`, `deployment`, `closed_at`, `retention_days`,
//! `purged_at`, `destroyed`, `kept`, `other_files`; file names only) is written, synced, before
//! the destruction: a purge cut short is finished by the next `deployment purge`, which destroys
//! the files the record names again (a file already gone is skipped) and returns the record.
//! From then on the folder signs no version ([`AdminError::Purged`]).

use crate::deployment_admin::{
    AdminError, AdminFolder, KEY_FILE, MANIFEST_FILE, PURGED_FILE, versioned_name,
};
use crate::purpose_keys::PURPOSE_FILE;
use crate::store::write_atomic;
use crate::store_key::destroy;
use kazashi_domain::Millis;
use std::path::Path;

const FORMAT: &str = "kazashi-admin-purge-v1";
const DAY_MS: u64 = 86_400_000;

/// What `purged.json` says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AdminPurge {
    pub format: String,
    /// The deployment's id (hex).
    pub deployment: String,
    pub closed_at: Millis,
    pub retention_days: u32,
    pub purged_at: Millis,
    /// The files destroyed (overwritten, synced, unlinked), relative to the folder.
    pub destroyed: Vec<String>,
    /// Kazashi's files kept for the record.
    pub kept: Vec<String>,
    /// Files in the folder that are not Kazashi's: not touched.
    pub other_files: Vec<String>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AdminError + '_ {
    move |source| AdminError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether `name` is one of the folder's own files Kazashi keeps.
fn kept_name(name: &str) -> bool {
    name == KEY_FILE
        || name == MANIFEST_FILE
        || name == crate::enrol_net::REQUESTS_DIR
        || name
            .strip_prefix("manifest-v")
            .and_then(|v| v.strip_suffix(".kzm"))
            .and_then(|v| v.parse::<u32>().ok())
            .is_some_and(|v| versioned_name(v) == name)
}

/// The record of an earlier purge of `dir`, if there is one.
pub fn read_purged(dir: &Path) -> Result<Option<AdminPurge>, AdminError> {
    let path = dir.join(PURGED_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&path)(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| AdminError::Text(format!("{}: {e}", path.display())))
}

impl AdminFolder {
    /// Destroy the purpose secrets of a closed deployment whose retention period has passed
    /// at `now`, once `confirm` is its id and `passphrase` opens its key; write `purged.json`
    /// (module doc). On a folder already purged, finish what the record names and return it.
    pub fn purge(
        &self,
        passphrase: &str,
        confirm: &str,
        now: Millis,
    ) -> Result<AdminPurge, AdminError> {
        if let Some(done) = read_purged(&self.dir)? {
            self.destroy_named(&done.destroyed)?;
            return Ok(done);
        }
        let current = self.current()?;
        let closed_at = current.closed_at().ok_or(AdminError::NotClosed)?;
        let days = current.retention_days().ok_or(AdminError::NoRetention)?;
        let until = closed_at.saturating_add(u64::from(days).saturating_mul(DAY_MS));
        if now < until {
            return Err(AdminError::RetentionRunning {
                closed_at,
                days,
                until,
            });
        }
        let deployment = current.deployment().id().to_hex();
        if confirm.trim().to_ascii_lowercase() != deployment {
            return Err(AdminError::Unconfirmed(deployment));
        }
        // A wrong passphrase changes nothing.
        self.key(passphrase)?;
        let mut destroyed = Vec::new();
        let mut kept = Vec::new();
        let mut other_files = Vec::new();
        let tmp = format!("{PURPOSE_FILE}.tmp");
        let entries = std::fs::read_dir(&self.dir).map_err(io(&self.dir))?;
        for entry in entries {
            let entry = entry.map_err(io(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == PURPOSE_FILE || name == tmp {
                destroyed.push(name);
            } else if kept_name(&name) {
                kept.push(name);
            } else {
                other_files.push(name);
            }
        }
        destroyed.sort();
        kept.sort();
        other_files.sort();
        let record = AdminPurge {
            format: FORMAT.into(),
            deployment,
            closed_at,
            retention_days: days,
            purged_at: now,
            destroyed,
            kept,
            other_files,
        };
        let bytes =
            serde_json::to_vec_pretty(&record).map_err(|e| AdminError::Text(e.to_string()))?;
        let path = self.dir.join(PURGED_FILE);
        write_atomic(&path, &bytes).map_err(io(&path))?;
        self.destroy_named(&record.destroyed)?;
        Ok(record)
    }

    /// Destroy the files `names` of the folder (plain names only; one already gone is skipped).
    fn destroy_named(&self, names: &[String]) -> Result<(), AdminError> {
        for name in names {
            // Only a plain name in this folder: a damaged record cannot point elsewhere.
            if name.is_empty() || name.contains(['/', '\\']) || name == ".." || name == "." {
                continue;
            }
            let path = self.dir.join(name);
            destroy(&path).map_err(io(&path))?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "admin_purge_tests.rs"]
mod tests;
