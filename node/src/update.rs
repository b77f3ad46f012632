//! Signed updates of the `kazashi` package, carried on a USB stick (`docs/appliance.md`,
//! "Updating an appliance from a USB stick").
//!
//! The administrator signs a `kazashi` .deb with the **deployment key** (the ed25519 key that
//! signs manifests, `deployment-key.kzk`: [`sign_update`]); a laptop takes it only if it is
//! signed by the deployment key it pinned at enrolment (the admin key of the manifest in its
//! store: [`pin_of`]) and names a newer version than the installed one ([`verify`]). The
//! parse and the check are pure: bytes and the pin in, the verified package out.
//!
//! **The file** (`kazashi-<version>.kzu`), every length bounded, every byte read:
//!
//! | bytes | what |
//! |---|---|
//! | 16 | [`MAGIC`] |
//! | 16 | the deployment id |
//! | 32 | the signing key (the deployment key's public half) |
//! | 1 + n | the Debian version of the package (1 to [`MAX_VERSION`] bytes, dpkg's syntax) |
//! | 8 + n | the package (little-endian length, at most [`MAX_PACKAGE`] bytes) |
//! | 64 | ed25519 signature over [`signed_message`] |
//!
//! The signature covers `"kazashi-update-v1"`, the deployment id, the key, the version and the
//! package's SHA-256: a package signed for one deployment, or relabelled with another version,
//! does not verify. A file with a byte too many or too few is refused as malformed.
//!
//! **Versions** are compared as dpkg compares them ([`compare_versions`]: epoch, upstream
//! version, revision; `~` sorts before the end). An update whose version is not newer than the
//! installed one (a downgrade, or the same version again) is refused unless the caller allows it.

use crate::deployment_admin::{AdminError, AdminFolder};
use crate::enrolled::Folder;
use crate::store::{Store, StoreError};
use kazashi_domain::{DeploymentId, DeviceId};
use kazashi_sync::SignedManifest;
use kazashi_sync::manifest::ManifestError;
use sha2::{Digest, Sha256};
use std::cmp::Ordering;
use std::path::PathBuf;

/// The first bytes of an update file.
pub const MAGIC: &[u8; 16] = b"KAZASHI-UPDATE\x00\x01";
/// The domain of the signature: nothing else the deployment key signs starts with it.
pub const SIGN_TAG: &[u8] = b"kazashi-update-v1";
/// The longest version accepted.
pub const MAX_VERSION: usize = 64;
/// The largest package accepted (the kazashi .deb is about 20 MB).
pub const MAX_PACKAGE: u64 = 512 << 20;
/// The file's length with an empty package and a one-byte version.
const FIXED: usize = 16 + 16 + 32 + 1 + 8 + 64;
/// The extension of an update file.
pub const EXTENSION: &str = "kzu";

/// Why an update was refused. Nothing was installed or written when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("not a Kazashi update file, or a damaged one ({0}): refused")]
    Malformed(&'static str),
    #[error("the update is larger than {} MiB: refused", MAX_PACKAGE >> 20)]
    TooLarge,
    #[error("the version {0:?} is not a Debian version (e.g. 0.2.0-1): refused")]
    BadVersion(String),
    #[error(
        "the update is for another deployment ({file}), not this laptop's ({pinned}): refused, \
         nothing installed"
    )]
    OtherDeployment { file: String, pinned: String },
    #[error(
        "the update is signed by a key ({file}) that is not this deployment's key ({pinned}): \
         refused, nothing installed"
    )]
    ForeignKey { file: String, pinned: String },
    #[error(
        "the update's signature does not match its contents (altered or damaged): refused, \
         nothing installed"
    )]
    BadSignature,
    #[error(
        "the update's version {offered} is not newer than the installed {installed}: refused, \
         nothing installed (a downgrade or a reinstall needs --allow-downgrade)"
    )]
    NotNewer { offered: String, installed: String },
    #[error("this laptop in {0} is not enrolled (no store): it trusts no deployment key yet")]
    NotEnrolled(PathBuf),
    #[error(
        "this laptop in {0} holds no manifest yet: it trusts no deployment key until the \
         administrator's manifest is installed"
    )]
    NoManifest(PathBuf),
    #[error("the laptop's store")]
    Store(#[from] StoreError),
    #[error("the laptop's manifest")]
    Manifest(#[source] ManifestError),
    #[error(transparent)]
    Admin(#[from] AdminError),
}

/// The deployment key a laptop trusts for updates (the update pin, also kept as a public file
/// root can read without the passphrase: [`crate::update_pin`]).
pub use crate::update_pin::Pin;

/// An update file, parsed (not yet verified).
#[derive(Debug, Clone, Copy)]
pub struct Parsed<'a> {
    pub deployment: DeploymentId,
    pub signer: DeviceId,
    pub version: &'a str,
    pub package: &'a [u8],
    pub signature: &'a [u8],
}

/// A verified update: the package's bytes, exactly those the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct Verified<'a> {
    pub version: &'a str,
    pub package: &'a [u8],
    /// SHA-256 of the package, hex.
    pub sha256: [u8; 32],
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The bytes the deployment key signs.
pub fn signed_message(
    deployment: &DeploymentId,
    signer: &DeviceId,
    version: &str,
    package: &[u8],
) -> Vec<u8> {
    let digest: [u8; 32] = Sha256::digest(package).into();
    let mut m = Vec::with_capacity(SIGN_TAG.len() + 16 + 32 + 1 + MAX_VERSION + 8 + 32);
    m.extend_from_slice(SIGN_TAG);
    m.extend_from_slice(&deployment.0);
    m.extend_from_slice(&signer.0);
    m.push(u8::try_from(version.len()).unwrap_or(u8::MAX));
    m.extend_from_slice(version.as_bytes());
    m.extend_from_slice(&(package.len() as u64).to_le_bytes());
    m.extend_from_slice(&digest);
    m
}

/// An update file's bytes: `package` at `version`, signed with `key` for `deployment`.
pub fn encode(
    key: &kazashi_sync::DeviceKey,
    deployment: DeploymentId,
    version: &str,
    package: &[u8],
) -> Result<Vec<u8>, UpdateError> {
    check_version(version)?;
    if package.len() as u64 > MAX_PACKAGE {
        return Err(UpdateError::TooLarge);
    }
    let signer = key.device_id();
    let signature = key.sign(&signed_message(&deployment, &signer, version, package));
    let mut out = Vec::with_capacity(FIXED + version.len() + package.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&deployment.0);
    out.extend_from_slice(&signer.0);
    out.push(u8::try_from(version.len()).map_err(|_| UpdateError::BadVersion(version.into()))?);
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(&(package.len() as u64).to_le_bytes());
    out.extend_from_slice(package);
    out.extend_from_slice(&signature);
    Ok(out)
}

/// Split `n` bytes off the front of `rest`.
fn take<'a>(rest: &mut &'a [u8], n: usize, what: &'static str) -> Result<&'a [u8], UpdateError> {
    if rest.len() < n {
        return Err(UpdateError::Malformed(what));
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

fn array<const N: usize>(rest: &mut &[u8], what: &'static str) -> Result<[u8; N], UpdateError> {
    take(rest, N, what)?
        .try_into()
        .map_err(|_| UpdateError::Malformed(what))
}

/// Parse an update file. Every length is checked before it is used; nothing is verified yet.
pub fn parse(bytes: &[u8]) -> Result<Parsed<'_>, UpdateError> {
    if bytes.len() < FIXED {
        return Err(UpdateError::Malformed("too short"));
    }
    if bytes.len() as u64 > MAX_PACKAGE + (FIXED + MAX_VERSION) as u64 {
        return Err(UpdateError::TooLarge);
    }
    let mut rest = bytes;
    if take(&mut rest, MAGIC.len(), "header")? != MAGIC {
        return Err(UpdateError::Malformed("not an update file"));
    }
    let deployment = DeploymentId(array(&mut rest, "deployment id")?);
    let signer = DeviceId(array(&mut rest, "signing key")?);
    let [vlen] = array::<1>(&mut rest, "version")?;
    let version = std::str::from_utf8(take(&mut rest, usize::from(vlen), "version")?)
        .map_err(|_| UpdateError::Malformed("version not UTF-8"))?;
    check_version(version)?;
    let plen = u64::from_le_bytes(array(&mut rest, "package length")?);
    if plen > MAX_PACKAGE {
        return Err(UpdateError::TooLarge);
    }
    let plen = usize::try_from(plen).map_err(|_| UpdateError::TooLarge)?;
    let package = take(&mut rest, plen, "truncated package")?;
    let signature = take(&mut rest, 64, "truncated signature")?;
    if !rest.is_empty() {
        return Err(UpdateError::Malformed("bytes after the signature"));
    }
    Ok(Parsed {
        deployment,
        signer,
        version,
        package,
        signature,
    })
}

/// Verify an update file against the laptop's `pin` and the `installed` version: signed by
/// the pinned deployment key for the pinned deployment, unaltered, and newer than `installed`
/// (unless `allow_downgrade`). The package returned is exactly the bytes the signature covers.
pub fn verify<'a>(
    bytes: &'a [u8],
    pin: &Pin,
    installed: &str,
    allow_downgrade: bool,
) -> Result<Verified<'a>, UpdateError> {
    let p = parse(bytes)?;
    if p.deployment != pin.deployment {
        return Err(UpdateError::OtherDeployment {
            file: p.deployment.short(),
            pinned: pin.deployment.short(),
        });
    }
    if p.signer != pin.admin {
        return Err(UpdateError::ForeignKey {
            file: crate::fingerprint::fingerprint(&p.signer),
            pinned: crate::fingerprint::fingerprint(&pin.admin),
        });
    }
    // Checked with the pinned key, not the file's.
    let message = signed_message(&pin.deployment, &pin.admin, p.version, p.package);
    if !kazashi_sync::identity::verify(&pin.admin, &message, p.signature) {
        return Err(UpdateError::BadSignature);
    }
    check_version(installed)?;
    if !allow_downgrade && compare_versions(p.version, installed) != Ordering::Greater {
        return Err(UpdateError::NotNewer {
            offered: p.version.to_owned(),
            installed: installed.to_owned(),
        });
    }
    Ok(Verified {
        version: p.version,
        package: p.package,
        sha256: Sha256::digest(p.package).into(),
    })
}

/// The pin of an enrolled laptop: the deployment and admin key of the manifest in its store
/// (verified as it is decoded). Opens the store under `passphrase`; writes nothing of its own.
pub fn pin_of(folder: &Folder, passphrase: &str) -> Result<Pin, UpdateError> {
    let path = folder.store_path();
    if !path.exists() {
        return Err(UpdateError::NotEnrolled(folder.dir.clone()));
    }
    let store = Store::open(&path, passphrase)?;
    let bytes = store
        .manifest()?
        .ok_or_else(|| UpdateError::NoManifest(folder.dir.clone()))?;
    let members = SignedManifest::decode(&bytes).map_err(UpdateError::Manifest)?;
    Ok(Pin {
        deployment: members.deployment().id(),
        admin: members.manifest().admin,
    })
}

/// Sign `package` at `version` with the deployment key of the administrator's `folder`
/// (opened under `passphrase`; the key must be the one that signs its manifests).
pub fn sign_update(
    folder: &AdminFolder,
    passphrase: &str,
    version: &str,
    package: &[u8],
) -> Result<(Vec<u8>, Pin), UpdateError> {
    let members = folder.current()?;
    let key = folder.key(passphrase)?;
    let pin = Pin {
        deployment: members.deployment().id(),
        admin: members.manifest().admin,
    };
    if key.device_id() != pin.admin {
        return Err(UpdateError::Admin(AdminError::ForeignManifest(
            folder.manifest_path(),
        )));
    }
    Ok((encode(&key, pin.deployment, version, package)?, pin))
}

/// The file name of an update at `version`: `kazashi-<version>.kzu` (`:` of an epoch as `_`).
pub fn file_name(version: &str) -> String {
    format!("kazashi-{}.{EXTENSION}", version.replace(':', "_"))
}

/// Check dpkg's syntax: `[epoch:]upstream[-revision]`, the upstream version starting with a
/// digit, only `A-Za-z0-9.+~-` (and `:` after an epoch).
pub fn check_version(v: &str) -> Result<(), UpdateError> {
    let bad = || UpdateError::BadVersion(v.chars().take(MAX_VERSION).collect());
    if v.is_empty() || v.len() > MAX_VERSION {
        return Err(bad());
    }
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) => (Some(e), r),
        None => (None, v),
    };
    if let Some(e) = epoch
        && (e.is_empty() || e.len() > 9 || !e.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((u, r)) => (u, Some(r)),
        None => (rest, None),
    };
    let ok_char = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'~');
    if !upstream.bytes().next().is_some_and(|b| b.is_ascii_digit())
        || !upstream
            .bytes()
            .all(|b| ok_char(b) || b == b'-' || (b == b':' && epoch.is_some()))
    {
        return Err(bad());
    }
    if let Some(r) = revision
        && (r.is_empty() || !r.bytes().all(ok_char))
    {
        return Err(bad());
    }
    Ok(())
}

/// The split of a version: epoch, upstream, revision (empty when none: dpkg reads it so).
fn split(v: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) => (e.parse().unwrap_or(0), r),
        None => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((u, r)) => (epoch, u, r),
        None => (epoch, rest, ""),
    }
}

/// dpkg's weight of a character outside a run of digits.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`: runs of non-digits compared by [`order`], runs of digits as numbers.
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (ac, bc) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a.get(i).cmp(&b.get(j));
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

/// Compare two Debian versions as dpkg does.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| verrevcmp(ua.as_bytes(), ub.as_bytes()))
        .then_with(|| verrevcmp(ra.as_bytes(), rb.as_bytes()))
}

#[cfg(test)]
#[path = "update_tests.rs"]
mod tests;
