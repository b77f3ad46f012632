//! The update pin: the deployment key a machine trusts for signed updates
//! ([`crate::update`]), as a small public file root reads without the store's passphrase
//! (`docs/appliance.md`, "Updating an appliance from a USB stick").
//!
//! A station's store is encrypted under a passphrase that exists only on its screen, so root
//! (`kazashi-update@.service`, started for each USB stick) cannot read the deployment key
//! pinned in it. So the laptop also writes that key, which is public, into its folder:
//!
//! 1. **The folder's pin**, `<dir>/update-pin.json` ([`PIN_FILE`], 0644), written by
//!    [`write_in`] only from a manifest that was verified and installed: by
//!    `enrolment::install` (the first manifest's deployment key confirmed by the fingerprint
//!    the administrator read out; later ones must carry the same key), before the manifest
//!    is written, also when the same manifest is installed again (so a laptop enrolled before
//!    the pin existed gets it from `kazashi enrol --install` of its manifest). A manifest
//!    adopted later from the mesh or a bundle carries the same deployment and key
//!    (`enrolment::accept` refuses another), so the pin never changes. Opening the store
//!    writes nothing (a refusal there changes nothing); the purge removes the folder's pin.
//! 2. **Root's pin**, `/etc/kazashi/update-pin.json`, taken by [`take`] (`kazashi update pin`,
//!    run by `kazashi-pin.service` when `kazashi-pin.path` sees the folder's pin appear or
//!    change): trust on first use. No pin there yet: the folder's is copied (re-encoded from
//!    what was parsed). The same: nothing. A different one: refused, nothing changed — a new
//!    deployment key needs the administrator, who removes root's pin by hand
//!    (docs/appliance.md).
//!
//! The file, every field checked (unknown fields refused, at most [`MAX_PIN_FILE`] bytes):
//!
//! ```json
//! {"format":"kazashi-update-pin-v1","deployment":"<32 hex>","admin":"<64 hex>",
//!  "admin_fingerprint":"1234 5678 …"}
//! ```
//!
//! The fingerprint is redundant (it is computed from `admin`): a file whose fingerprint does
//! not match its key is refused, so a hand-edited key is caught.

use crate::fingerprint::fingerprint;
use kazashi_domain::{DeploymentId, DeviceId};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

/// The folder's pin file.
pub const PIN_FILE: &str = "update-pin.json";
/// Where root keeps the pin it trusts.
pub const TRUSTED_PIN: &str = "/etc/kazashi/update-pin.json";
/// The file's format tag.
pub const FORMAT: &str = "kazashi-update-pin-v1";
/// The largest pin file read (a real one is about 200 bytes).
pub const MAX_PIN_FILE: u64 = 4096;

/// The deployment key a laptop trusts for updates: the one its manifest was signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin {
    pub deployment: DeploymentId,
    pub admin: DeviceId,
}

/// Why a pin file was refused. Nothing was written when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("{path}: not an update pin file ({reason}): refused")]
    Malformed { path: String, reason: String },
    #[error("{0}: larger than {MAX_PIN_FILE} bytes, not an update pin file: refused")]
    TooLarge(String),
    #[error("{0}: not a regular file: refused")]
    NotAFile(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The folder's pin is not root's: the whole message (both pins by fingerprint, the
    /// reset path).
    #[error("{0}")]
    Differs(String),
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PinJson {
    format: String,
    deployment: String,
    admin: String,
    admin_fingerprint: String,
}

/// The file's bytes for `pin` (one line of JSON and a newline).
pub fn encode(pin: &Pin) -> Vec<u8> {
    let json = PinJson {
        format: FORMAT.to_owned(),
        deployment: pin.deployment.to_hex(),
        admin: pin.admin.to_hex(),
        admin_fingerprint: fingerprint(&pin.admin),
    };
    let mut out = serde_json::to_vec(&json).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Parse a pin file's bytes; `path` names it in the errors. Every field is checked.
pub fn parse(bytes: &[u8], path: &str) -> Result<Pin, PinError> {
    let bad = |reason: &str| PinError::Malformed {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if bytes.len() as u64 > MAX_PIN_FILE {
        return Err(PinError::TooLarge(path.to_owned()));
    }
    // serde_json's message names a line and column, never the file's text.
    let json: PinJson = serde_json::from_slice(bytes).map_err(|e| bad(&e.to_string()))?;
    if json.format != FORMAT {
        return Err(bad(&format!("the format is not {FORMAT}")));
    }
    let deployment = DeploymentId::from_hex(&json.deployment).map_err(|_| {
        bad(&format!(
            "the deployment id is not {} hex digits",
            2 * DeploymentId::LEN
        ))
    })?;
    let admin = DeviceId::from_hex(&json.admin).map_err(|_| {
        bad(&format!(
            "the deployment key is not {} hex digits",
            2 * DeviceId::LEN
        ))
    })?;
    let digits = |s: &str| -> String { s.chars().filter(char::is_ascii_digit).collect() };
    if digits(&json.admin_fingerprint) != digits(&fingerprint(&admin)) {
        return Err(bad("the fingerprint does not match the deployment key"));
    }
    Ok(Pin { deployment, admin })
}

/// Read and parse the pin at `path`: `None` if there is none. A symbolic link, a FIFO, a
/// device or anything but a regular file is refused without being read; at most
/// [`MAX_PIN_FILE`] bytes are read.
pub fn read(path: &Path) -> Result<Option<Pin>, PinError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let name = path.display().to_string();
    let io = |source| PinError::Io {
        path: name.clone(),
        source,
    };
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(PinError::NotAFile(name)),
        Err(e) => return Err(io(e)),
    };
    if !file.metadata().map_err(io)?.is_file() {
        return Err(PinError::NotAFile(name));
    }
    let mut bytes = Vec::new();
    file.take(MAX_PIN_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    parse(&bytes, &name).map(Some)
}

/// Write `bytes` to `path` atomically (a new file beside it, synced, renamed), mode 0644.
fn write_public(path: &Path, bytes: &[u8]) -> Result<(), PinError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    use std::os::unix::fs::PermissionsExt as _;
    let io = |source| PinError::Io {
        path: path.display().to_string(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    // Never through a link left at the temporary name.
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)
            .map_err(io)?;
        // The mode whatever the umask: the pin is public, root's reader needs it.
        f.set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Write `pin` into the laptop's folder `dir` as [`PIN_FILE`], unless it holds that pin
/// already. True when the file was written. Call only with the pin of a manifest that was
/// verified and installed.
pub fn write_in(dir: &Path, pin: &Pin) -> Result<bool, PinError> {
    let path = dir.join(PIN_FILE);
    let bytes = encode(pin);
    if std::fs::read(&path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    write_public(&path, &bytes)?;
    Ok(true)
}

/// What [`take`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// The folder holds no pin yet: nothing to take, nothing written.
    NoFolderPin,
    /// Root had no pin: the folder's was copied (trust on first use).
    New(Pin),
    /// Root's pin is the folder's: nothing written.
    Unchanged(Pin),
}

/// Root's side: take the folder's pin `folder_pin` into `trusted` on first use; nothing if
/// they are equal; refused, nothing changed, if they differ (or either is malformed).
pub fn take(folder_pin: &Path, trusted: &Path) -> Result<Taken, PinError> {
    let Some(offered) = read(folder_pin)? else {
        return Ok(Taken::NoFolderPin);
    };
    match read(trusted)? {
        Some(have) if have == offered => Ok(Taken::Unchanged(have)),
        Some(have) => Err(PinError::Differs(format!(
            "the update pin in {} (deployment {}, deployment key {}) differs from the one \
             this machine trusts in {} (deployment {}, deployment key {}): refused, nothing \
             changed. A machine enrolled into another deployment, or a new deployment key, \
             needs the administrator: remove {} as root and run kazashi-pin.service again \
             (docs/appliance.md)",
            folder_pin.display(),
            offered.deployment.short(),
            fingerprint(&offered.admin),
            trusted.display(),
            have.deployment.short(),
            fingerprint(&have.admin),
            trusted.display(),
        ))),
        None => {
            if let Some(parent) = trusted.parent().filter(|p| !p.as_os_str().is_empty()) {
                use std::os::unix::fs::DirBuilderExt as _;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(parent)
                    .map_err(|source| PinError::Io {
                        path: parent.display().to_string(),
                        source,
                    })?;
            }
            write_public(trusted, &encode(&offered))?;
            Ok(Taken::New(offered))
        }
    }
}

/// The folder's pin file.
pub fn in_folder(dir: &Path) -> PathBuf {
    dir.join(PIN_FILE)
}

#[cfg(test)]
#[path = "update_pin_tests.rs"]
mod tests;
