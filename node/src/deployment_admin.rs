//! The administrator's deployment folder: the deployment's signing key, encrypted, and every
//! manifest version it has signed.
//!
//! **Folder.**
//! - `deployment-key.kzk`: the deployment's ed25519 signing key (made from the operating
//!   system's random source), sealed with ChaCha20-Poly1305 under a key derived from the
//!   administrator's passphrase with Argon2id at [`KdfParams::STANDARD`] or stronger (a file
//!   with weaker parameters is refused). JSON: `format`, `admin` (the public key, hex),
//!   `deployment` (the id, hex), `params`, `salt` (16 bytes), `nonce` (12 bytes) and `sealed`
//!   (the 32-byte secret and its tag); everything but `sealed` is the AEAD's associated data,
//!   so no field can be changed unnoticed. `export-key` copies the file as it is (still
//!   encrypted) for a USB backup.
//! - `manifest-vN.kzm`: version N of the signed manifest, never overwritten; `manifest.kzm`: the
//!   latest, the one to hand to laptops. Each is written to a temporary file, synced, renamed
//!   and the folder synced.
//!
//! Every change (approve a laptop, revoke one, pin a roster) reads `manifest.kzm`, checks it
//! against the key, and signs version N+1. The passphrase is checked before anything is
//! written: a wrong one changes nothing.
//!
//! **Staff** (`init_with_staff`, `staff_add`, `staff_remove`, `staff_set_pin`): the
//! deployment-wide staff list, PINs only as Argon2id hashes (`crate::staff::read_staff` reads
//! the staff file and hashes). **Closing** (`close`) signs the last version, with `closed_at`;
//! the folder signs nothing after it. **Purging** (`purge`, in [`crate::admin_purge`]) destroys
//! `purpose-keys.kzk` once the retention period has passed and writes `purged.json`
//! ([`PURGED_FILE`]); every change is refused after it.
//!
//! **Purpose keys** (`purpose-keys.kzk`, [`crate::purpose_keys`]): the medical, manager and
//! operation secrets, sealed under the deployment key; every version re-seals them to the
//! devices holding them (`grant`, `revoke_holds`; operation: every unrevoked device), and
//! `export-key` copies the file with the key. **Retention** (`set_retention`, `init_full`):
//! the days after closing personal data is kept.
//!
//! **Two administrators.** Laptops take manifests by the one rule
//! (`kazashi_sync::manifest::Membership::precedence`, through [`crate::enrolment::accept`]): a
//! higher version replaces a lower one whatever its content; of two with the same version and
//! different bytes, the one whose signed bytes have the lower SHA-256 wins on every laptop,
//! whatever the order they arrive in. So two administrators who each sign version N from the
//! same N−1 do not split the laptops for long, but one of them loses their change; the fix is
//! to sign N+1 from the union (one folder, copied back) and hand it to all. Work from one
//! folder at a time.
//!
//! **Sites file** (`init --sites`), CSV (UTF-8, header row) or TOML (`[[site]]` tables), with
//! the same keys:
//!
//! | key | required | values |
//! |---|---|---|
//! | `code` | yes | the site id: letters, digits, `-`, `_` (up to 32) |
//! | `name` | yes | the site's name, up to 100 characters |
//! | `kind` | yes | `shelter`, `polling` (当日投票所), `early` (期日前投票所), `polling+early`, `command` (本部) |
//! | `capacity` | shelters | persons, above 0 |
//! | `shelter_type` | no | 1 避難所 (default), 2 臨時避難所, 3 避難場所兼避難所, 4 広域避難場所, 5 一時避難場所, 9 福祉避難所 |
//! | `precincts` | `polling`, `polling+early` | 投票区 codes; in CSV separated by `;` or spaces, in TOML a list |
//!
//! Shelters go with `--shelters`, polling sites with `--election`; a command center with either.

use crate::purpose_keys::{PURPOSE_FILE, PurposeFileError, PurposeSecrets};
use crate::store::{KdfParams, StoreError, random_bytes, write_atomic};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use kazashi_domain::ids::OperatorId;
use kazashi_domain::ids::{PrecinctId, RosterHash};
use kazashi_domain::text::Label;
use kazashi_domain::{
    CivilDate, Deployment, DeploymentId, DeviceId, Millis, ShelterType, Site, SiteId, SiteKind,
    deployment::DeploymentKind,
};
use kazashi_sync::manifest::{ManifestError, StaffEntry};
use kazashi_sync::purpose::{Holder, KeyPurpose, SealedKey, reseal};
use kazashi_sync::{
    DeviceEntry, DeviceKey, Manifest, Membership, Revocation, Role, SignedManifest,
};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The encrypted signing key in an administrator's folder.
pub const KEY_FILE: &str = "deployment-key.kzk";
/// The latest signed manifest, the one laptops install.
pub const MANIFEST_FILE: &str = "manifest.kzm";
/// Written by `deployment purge` ([`crate::admin_purge`]): the folder signs nothing after it.
pub const PURGED_FILE: &str = "purged.json";
const KEY_FORMAT: &str = "kazashi-deployment-key-v1 argon2id chacha20poly1305";

/// The file name of manifest version `v`.
pub fn versioned_name(v: u32) -> String {
    format!("manifest-v{v}.kzm")
}

/// Why an administrator's command was refused. Nothing was written when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0} already holds a deployment: use another folder")]
    Exists(PathBuf),
    #[error("no deployment in {0}: run kazashi deployment init first")]
    NoDeployment(PathBuf),
    #[error("wrong passphrase for the deployment key, or the key file was altered")]
    WrongPassphrase,
    #[error("the key file {0} is damaged: {1}")]
    KeyFile(PathBuf, String),
    #[error("the key file uses weaker key derivation than the standard: refused")]
    WeakKdf,
    #[error("the passphrase must have at least 8 characters")]
    ShortPassphrase,
    #[error("{0} was not signed by this folder's deployment key")]
    ForeignManifest(PathBuf),
    #[error("the manifest {path}")]
    Manifest {
        path: PathBuf,
        #[source]
        source: ManifestError,
    },
    #[error("signing the manifest")]
    Sign(#[source] ManifestError),
    #[error("the sites file, {0}")]
    Sites(String),
    #[error("the deployment")]
    Deployment(#[from] kazashi_domain::deployment::DeploymentError),
    #[error("{0}")]
    Text(String),
    #[error("version {0} already exists in the folder: versions only grow")]
    VersionExists(u32),
    #[error("device {0} is already in the manifest")]
    AlreadyEnrolled(String),
    #[error("device {0} is not in the manifest")]
    UnknownDevice(String),
    #[error("device {0} is revoked and cannot be enrolled again")]
    Revoked(String),
    #[error("site {0} is not a site of the deployment")]
    UnknownSite(String),
    #[error("staff member {0} is already in the manifest")]
    StaffExists(String),
    #[error("staff member {0} is not in the manifest")]
    UnknownStaff(String),
    #[error("the staff file, {0}")]
    Staff(String),
    #[error(
        "the operation was closed (at {}): no version is signed after the closing one",
        kazashi_domain::time::jst_text(*.0)
    )]
    Closed(Millis),
    #[error(
        "the deployment was purged (purged.json is in the folder): its purpose keys are \
         destroyed and no version is signed after the purge"
    )]
    Purged,
    #[error(
        "the operation is not closed: nothing was purged. Close it first with `kazashi \
         deployment close`"
    )]
    NotClosed,
    #[error(
        "the last manifest sets no retention period (retention_days): nothing was purged; a \
         closed folder signs no new version, so wipe the folder by hand (docs/deploy.md)"
    )]
    NoRetention,
    #[error(
        "the retention period runs until {} (closed at {} + {days} days): nothing was purged",
        kazashi_domain::time::jst_text(*.until),
        kazashi_domain::time::jst_text(*.closed_at)
    )]
    RetentionRunning {
        closed_at: Millis,
        days: u32,
        until: Millis,
    },
    #[error(
        "nothing was purged: this destroys the medical, manager and operation keys of \
         deployment {0} for good. To go ahead, run again with --confirm {0}"
    )]
    Unconfirmed(String),
    #[error("the roster {0} is already pinned")]
    SameRoster(String),
    #[error(
        "the fingerprint read out ({typed}) does not match the request's device ({expected}): refused"
    )]
    FingerprintMismatch { typed: String, expected: String },
    #[error("the enrolment request: {0}")]
    Request(String),
    #[error("file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the operating system's random source")]
    Random(#[from] StoreError),
    #[error(transparent)]
    PurposeKeys(#[from] PurposeFileError),
    #[error("device {0} already holds the {1} key")]
    AlreadyHolds(String, &'static str),
    #[error("device {0} does not hold the {1} key")]
    NotHolding(String, &'static str),
    #[error("the {0} key goes to every enrolled laptop; it is not granted")]
    NotGranted(&'static str),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AdminError + '_ {
    move |source| AdminError::Io {
        path: path.to_path_buf(),
        source,
    }
}

// ---------------------------------------------------------------------------------------------
// The key file

#[derive(serde::Serialize, serde::Deserialize)]
struct KeyFile {
    format: String,
    admin: String,
    deployment: String,
    params: KdfParams,
    salt: String,
    nonce: String,
    sealed: String,
}

impl KeyFile {
    /// Everything but the sealed secret, bound to it.
    fn associated(&self) -> Vec<u8> {
        format!(
            "{}\n{}\n{}\n{} {} {}\n{}\n{}",
            self.format,
            self.admin,
            self.deployment,
            self.params.m_kib,
            self.params.t,
            self.params.p,
            self.salt,
            self.nonce
        )
        .into_bytes()
    }
}

fn derive(passphrase: &str, salt: &[u8], params: KdfParams) -> Result<Key, AdminError> {
    let p = argon2::Params::new(params.m_kib, params.t, params.p, Some(32))
        .map_err(|e| AdminError::Text(format!("key derivation: {e}")))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut key = Zeroizing::new([0u8; 32]);
    a.hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|e| AdminError::Text(format!("key derivation: {e}")))?;
    Ok(Key::from(*key))
}

/// The key file's bytes: `key` sealed under `passphrase` (Argon2id at the standard cost, a
/// fresh salt and nonce from the operating system).
pub fn seal_key(
    key: &DeviceKey,
    deployment: DeploymentId,
    passphrase: &str,
) -> Result<Vec<u8>, AdminError> {
    if passphrase.chars().count() < 8 {
        return Err(AdminError::ShortPassphrase);
    }
    let salt: [u8; 16] = random_bytes()?;
    let nonce: [u8; 12] = random_bytes()?;
    let mut file = KeyFile {
        format: KEY_FORMAT.into(),
        admin: key.device_id().to_hex(),
        deployment: deployment.to_hex(),
        params: KdfParams::STANDARD,
        salt: hex::encode(salt),
        nonce: hex::encode(nonce),
        sealed: String::new(),
    };
    let aad = file.associated();
    let secret = Zeroizing::new(key.secret_bytes());
    let sealed = ChaCha20Poly1305::new(&derive(passphrase, &salt, KdfParams::STANDARD)?)
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: secret.as_slice(),
                aad: &aad,
            },
        )
        .map_err(|_| AdminError::Text("sealing the key failed".into()))?;
    file.sealed = hex::encode(sealed);
    serde_json::to_vec_pretty(&file).map_err(|e| AdminError::Text(e.to_string()))
}

/// The signing key in a key file's `bytes`, and the deployment it is for.
pub fn open_key(
    bytes: &[u8],
    passphrase: &str,
    path: &Path,
) -> Result<(DeviceKey, DeploymentId), AdminError> {
    let damaged = |what: &str| AdminError::KeyFile(path.to_path_buf(), what.to_owned());
    let file: KeyFile = serde_json::from_slice(bytes).map_err(|e| damaged(&e.to_string()))?;
    if file.format != KEY_FORMAT {
        return Err(damaged("not a Kazashi deployment key file"));
    }
    let p = file.params;
    let std = KdfParams::STANDARD;
    if p.m_kib < std.m_kib || p.t < std.t || p.p < std.p {
        return Err(AdminError::WeakKdf);
    }
    let salt = hex::decode(&file.salt).map_err(|_| damaged("bad salt"))?;
    let nonce: [u8; 12] = hex::decode(&file.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or_else(|| damaged("bad nonce"))?;
    let sealed = hex::decode(&file.sealed).map_err(|_| damaged("bad sealed key"))?;
    let admin = DeviceId::from_hex(&file.admin).map_err(|_| damaged("bad admin key"))?;
    let deployment =
        DeploymentId::from_hex(&file.deployment).map_err(|_| damaged("bad deployment id"))?;
    let aad = file.associated();
    let secret = Zeroizing::new(
        ChaCha20Poly1305::new(&derive(passphrase, &salt, p)?)
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| AdminError::WrongPassphrase)?,
    );
    let seed: [u8; 32] = secret
        .as_slice()
        .try_into()
        .map_err(|_| damaged("the secret is not 32 bytes"))?;
    let key = DeviceKey::from_seed(seed);
    if key.device_id() != admin {
        return Err(damaged("the secret does not match the public key"));
    }
    Ok((key, deployment))
}

// ---------------------------------------------------------------------------------------------
// Sites

#[derive(serde::Deserialize)]
struct SiteRow {
    code: String,
    name: String,
    kind: String,
    #[serde(default)]
    capacity: Option<u32>,
    #[serde(default)]
    shelter_type: Option<u8>,
    #[serde(default)]
    precincts: Option<Precincts>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Precincts {
    List(Vec<String>),
    Text(String),
}

#[derive(serde::Deserialize)]
struct SitesToml {
    site: Vec<SiteRow>,
}

fn site_of(row: SiteRow, at: &str) -> Result<Site, AdminError> {
    let bad = |what: String| AdminError::Sites(format!("{at}: {what}"));
    let id = SiteId::new(row.code.trim()).map_err(|e| bad(format!("code: {e}")))?;
    let name = Label::new(row.name.trim()).map_err(|e| bad(format!("name: {e}")))?;
    let precincts: Vec<PrecinctId> = match row.precincts {
        None => Vec::new(),
        Some(Precincts::List(v)) => v
            .iter()
            .map(|p| PrecinctId::new(p.trim()))
            .collect::<Result<_, _>>()
            .map_err(|e| bad(format!("precincts: {e}")))?,
        Some(Precincts::Text(t)) => t
            .split(|c: char| c == ';' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .map(PrecinctId::new)
            .collect::<Result<_, _>>()
            .map_err(|e| bad(format!("precincts: {e}")))?,
    };
    let polling = |early_voting, election_day| SiteKind::PollingStation {
        precincts: precincts.clone(),
        early_voting,
        election_day,
    };
    let kind = match row.kind.trim() {
        "shelter" => {
            let capacity = row
                .capacity
                .ok_or_else(|| bad("a shelter needs a capacity".into()))?;
            let shelter_type = ShelterType::from_code(row.shelter_type.unwrap_or(1))
                .ok_or_else(|| bad("shelter_type must be 1, 2, 3, 4, 5 or 9".into()))?;
            SiteKind::Shelter {
                shelter_type,
                capacity,
            }
        }
        "polling" => polling(false, true),
        "early" => polling(true, false),
        "polling+early" => polling(true, true),
        "command" => SiteKind::CommandCenter,
        other => {
            return Err(bad(format!(
                "kind {other:?}: shelter, polling, early, polling+early or command"
            )));
        }
    };
    Ok(Site { id, name, kind })
}

/// The sites in a CSV file's text (UTF-8, a header row naming the keys).
pub fn parse_sites_csv(text: &str) -> Result<Vec<Site>, AdminError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut sites = Vec::new();
    for (i, row) in reader.deserialize::<SiteRow>().enumerate() {
        let at = format!("line {}", i + 2);
        let row = row.map_err(|e| AdminError::Sites(format!("{at}: {e}")))?;
        let row = SiteRow {
            capacity: row.capacity,
            shelter_type: row.shelter_type,
            precincts: match row.precincts {
                Some(Precincts::Text(t)) if t.trim().is_empty() => None,
                p => p,
            },
            ..row
        };
        sites.push(site_of(row, &at)?);
    }
    Ok(sites)
}

/// The sites in a TOML file's text (`[[site]]` tables).
pub fn parse_sites_toml(text: &str) -> Result<Vec<Site>, AdminError> {
    let file: SitesToml = toml::from_str(text).map_err(|e| AdminError::Sites(e.to_string()))?;
    file.site
        .into_iter()
        .enumerate()
        .map(|(i, row)| site_of(row, &format!("site {}", i + 1)))
        .collect()
}

/// The sites in `path`: TOML if it ends in `.toml`, CSV otherwise.
pub fn read_sites(path: &Path) -> Result<Vec<Site>, AdminError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    if path.extension().is_some_and(|e| e == "toml") {
        parse_sites_toml(&text)
    } else {
        parse_sites_csv(&text)
    }
}

// ---------------------------------------------------------------------------------------------
// The folder

/// What the deployment is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Shelters,
    Election {
        day: CivilDate,
        early_voting_from: CivilDate,
    },
}

/// An administrator's deployment folder.
#[derive(Debug, Clone)]
pub struct AdminFolder {
    pub dir: PathBuf,
}

impl AdminFolder {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    pub fn key_path(&self) -> PathBuf {
        self.dir.join(KEY_FILE)
    }
    pub fn manifest_path(&self) -> PathBuf {
        self.dir.join(MANIFEST_FILE)
    }

    /// Create the deployment: its id and signing key from the operating system, the key file
    /// sealed under `passphrase`, and manifest version 1 (no devices, no roster pinned).
    pub fn init(
        &self,
        name: &str,
        operation: Operation,
        sites: Vec<Site>,
        passphrase: &str,
    ) -> Result<Membership, AdminError> {
        self.init_with_staff(name, operation, sites, Vec::new(), passphrase)
    }

    /// [`AdminFolder::init`] with the deployment-wide staff list (PINs already hashed:
    /// `staff::read_staff`).
    pub fn init_with_staff(
        &self,
        name: &str,
        operation: Operation,
        sites: Vec<Site>,
        staff: Vec<StaffEntry>,
        passphrase: &str,
    ) -> Result<Membership, AdminError> {
        self.init_with(name, operation, sites, staff, Vec::new(), passphrase)
    }

    /// [`AdminFolder::init_with_staff`] with the JPKI CA certificates (DER) the deployment
    /// trusts for cards (`--card-ca`).
    pub fn init_with(
        &self,
        name: &str,
        operation: Operation,
        sites: Vec<Site>,
        staff: Vec<StaffEntry>,
        card_cas: Vec<Vec<u8>>,
        passphrase: &str,
    ) -> Result<Membership, AdminError> {
        self.init_full(name, operation, sites, staff, card_cas, None, passphrase)
    }

    /// [`AdminFolder::init_with`] with the retention period (`--retention-days`). The purpose
    /// secrets are made here too (`purpose-keys.kzk`, [`crate::purpose_keys`]).
    #[allow(clippy::too_many_arguments)]
    pub fn init_full(
        &self,
        name: &str,
        operation: Operation,
        sites: Vec<Site>,
        staff: Vec<StaffEntry>,
        card_cas: Vec<Vec<u8>>,
        retention_days: Option<u32>,
        passphrase: &str,
    ) -> Result<Membership, AdminError> {
        if self.key_path().exists() || self.manifest_path().exists() {
            return Err(AdminError::Exists(self.dir.clone()));
        }
        let name = Label::new(name).map_err(|e| AdminError::Text(format!("the name: {e}")))?;
        let kind = match operation {
            Operation::Shelters => DeploymentKind::ShelterOperation,
            Operation::Election {
                day,
                early_voting_from,
            } => DeploymentKind::Election {
                election_day: day,
                early_voting_from,
            },
        };
        let id = DeploymentId(random_bytes()?);
        let deployment = Deployment::new(id, name, kind, RosterHash([0; 32]), sites)?;
        let key = DeviceKey::from_seed(*Zeroizing::new(random_bytes::<32>()?));
        let sealed = seal_key(&key, id, passphrase)?;
        let secrets = PurposeSecrets::generate()?;
        let secrets_file = secrets.seal(&key, id)?;
        let manifest = Manifest {
            version: 1,
            deployment,
            admin: key.device_id(),
            devices: Vec::new(),
            revoked: Vec::new(),
            staff,
            closed_at: None,
            card_cas,
            sealed_keys: reseal(&[], &[], &secrets.list(), random_bytes()?),
            retention_days,
            receipt_slips: false,
        };
        let signed = SignedManifest::sign(&manifest, &key).map_err(AdminError::Sign)?;
        let bytes = signed.encode();
        let members = SignedManifest::decode(&bytes).map_err(AdminError::Sign)?;
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let key_path = self.key_path();
        write_atomic(&key_path, &sealed).map_err(io(&key_path))?;
        let purpose_path = self.dir.join(PURPOSE_FILE);
        write_atomic(&purpose_path, &secrets_file).map_err(io(&purpose_path))?;
        self.publish(1, &bytes)?;
        Ok(members)
    }

    /// The latest manifest, checked against the key file's public key.
    pub fn current(&self) -> Result<Membership, AdminError> {
        let key_path = self.key_path();
        let path = self.manifest_path();
        if !key_path.exists() || !path.exists() {
            return Err(AdminError::NoDeployment(self.dir.clone()));
        }
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let members = SignedManifest::decode(&bytes).map_err(|source| AdminError::Manifest {
            path: path.clone(),
            source,
        })?;
        let key_bytes = std::fs::read(&key_path).map_err(io(&key_path))?;
        let file: KeyFile = serde_json::from_slice(&key_bytes)
            .map_err(|e| AdminError::KeyFile(key_path.clone(), e.to_string()))?;
        if file.admin != members.manifest().admin.to_hex() {
            return Err(AdminError::ForeignManifest(path));
        }
        Ok(members)
    }

    /// The signing key, under `passphrase`.
    pub(crate) fn key(&self, passphrase: &str) -> Result<DeviceKey, AdminError> {
        let path = self.key_path();
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        open_key(&bytes, passphrase, &path).map(|(k, _)| k)
    }

    /// Sign `change` of the latest manifest as the next version and publish it.
    fn reissue(
        &self,
        passphrase: &str,
        change: impl FnOnce(&mut Manifest) -> Result<(), AdminError>,
    ) -> Result<Membership, AdminError> {
        let current = self.current()?;
        if self.dir.join(PURGED_FILE).exists() {
            return Err(AdminError::Purged);
        }
        if let Some(at) = current.closed_at() {
            return Err(AdminError::Closed(at));
        }
        let mut next = current.manifest().clone();
        change(&mut next)?;
        next.version = current
            .version()
            .checked_add(1)
            .ok_or(AdminError::VersionExists(u32::MAX))?;
        if self.dir.join(versioned_name(next.version)).exists() {
            return Err(AdminError::VersionExists(next.version));
        }
        let key = self.key(passphrase)?;
        // Every version re-seals the purpose secrets to the devices holding them now.
        let secrets = self.purpose_secrets(&key, next.deployment.id())?;
        let active: Vec<DeviceId> = next
            .devices
            .iter()
            .map(|d| d.device)
            .filter(|d| !next.revoked.iter().any(|r| r.device == *d))
            .collect();
        next.sealed_keys = reseal(&next.sealed_keys, &active, &secrets.list(), random_bytes()?);
        let signed = SignedManifest::sign(&next, &key).map_err(AdminError::Sign)?;
        let bytes = signed.encode();
        let members = current.update(&bytes).map_err(AdminError::Sign)?;
        self.publish(next.version, &bytes)?;
        Ok(members)
    }

    /// The purpose secrets: opened from `purpose-keys.kzk`, or, in a folder made before them,
    /// made now and written (before any manifest sealed to them is published).
    fn purpose_secrets(
        &self,
        key: &DeviceKey,
        deployment: DeploymentId,
    ) -> Result<PurposeSecrets, AdminError> {
        let path = self.dir.join(PURPOSE_FILE);
        if path.exists() {
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            return Ok(PurposeSecrets::open(&bytes, key, deployment, &path)?);
        }
        let secrets = PurposeSecrets::generate()?;
        let bytes = secrets.seal(key, deployment)?;
        write_atomic(&path, &bytes).map_err(io(&path))?;
        Ok(secrets)
    }

    /// Let `device` hold `purpose`'s key (medical or manager) from the next version on: its
    /// laptop can then read the notes sealed to it.
    pub fn grant(
        &self,
        passphrase: &str,
        device: &str,
        purpose: KeyPurpose,
    ) -> Result<Membership, AdminError> {
        if !purpose.granted() {
            return Err(AdminError::NotGranted(purpose.code()));
        }
        let current = self.current()?;
        let device = find_device(&current, device)?;
        if current.revoked_from(&device).is_some() {
            return Err(AdminError::Revoked(device.short()));
        }
        self.reissue(passphrase, |m| {
            let placeholder = || SealedKey {
                purpose,
                public: [0; 32],
                ephemeral: [0; 32],
                holders: Vec::new(),
            };
            if !m.sealed_keys.iter().any(|k| k.purpose == purpose) {
                m.sealed_keys.push(placeholder());
            }
            for k in m.sealed_keys.iter_mut().filter(|k| k.purpose == purpose) {
                if k.holders.iter().any(|h| h.device == device) {
                    return Err(AdminError::AlreadyHolds(device.short(), purpose.code()));
                }
                k.holders.push(Holder {
                    device,
                    wrapped: Vec::new(),
                });
            }
            Ok(())
        })
    }

    /// Stop sealing `purpose`'s key to `device` from the next version on. What the laptop
    /// already unwrapped is not taken back (the keys are not rotated: docs/security.md).
    pub fn revoke_holds(
        &self,
        passphrase: &str,
        device: &str,
        purpose: KeyPurpose,
    ) -> Result<Membership, AdminError> {
        if !purpose.granted() {
            return Err(AdminError::NotGranted(purpose.code()));
        }
        let current = self.current()?;
        let device = find_device(&current, device)?;
        self.reissue(passphrase, |m| {
            let mut found = false;
            for k in m.sealed_keys.iter_mut().filter(|k| k.purpose == purpose) {
                let before = k.holders.len();
                k.holders.retain(|h| h.device != device);
                found |= k.holders.len() != before;
            }
            if !found {
                return Err(AdminError::NotHolding(device.short(), purpose.code()));
            }
            Ok(())
        })
    }

    /// Set (or clear, with `None`) how many days after closing personal data is kept.
    pub fn set_retention(
        &self,
        passphrase: &str,
        days: Option<u32>,
    ) -> Result<Membership, AdminError> {
        self.reissue(passphrase, |m| {
            m.retention_days = days;
            Ok(())
        })
    }

    /// Turn the check-in receipt slip (受付票) on or off for every laptop, in the next version.
    pub fn set_receipt_slips(&self, passphrase: &str, on: bool) -> Result<Membership, AdminError> {
        self.reissue(passphrase, |m| {
            m.receipt_slips = on;
            Ok(())
        })
    }

    fn publish(&self, version: u32, bytes: &[u8]) -> Result<(), AdminError> {
        // The latest first: a crash between the two leaves the next version free to sign.
        let latest = self.manifest_path();
        write_atomic(&latest, bytes).map_err(io(&latest))?;
        let v = self.dir.join(versioned_name(version));
        write_atomic(&v, bytes).map_err(io(&v))
    }

    /// Add the device of `request` at `site` in `role`, once the administrator has typed the
    /// fingerprint the laptop's operator read out (`typed`, spaces and dashes ignored).
    pub fn approve(
        &self,
        passphrase: &str,
        request: &crate::enrolment::Request,
        typed: &str,
        site: SiteId,
        role: Role,
    ) -> Result<Membership, AdminError> {
        let device = request
            .verify()
            .map_err(|e| AdminError::Request(e.to_string()))?;
        let expected = crate::enrolment::fingerprint(&device);
        let digits = |s: &str| -> String { s.chars().filter(char::is_ascii_digit).collect() };
        if digits(typed) != digits(&expected) {
            return Err(AdminError::FingerprintMismatch {
                typed: typed.trim().to_owned(),
                expected,
            });
        }
        let label =
            Label::new(&request.label).map_err(|e| AdminError::Request(format!("label: {e}")))?;
        self.reissue(passphrase, |m| {
            if m.deployment.site(&site).is_none() {
                return Err(AdminError::UnknownSite(site.to_string()));
            }
            if m.devices.iter().any(|d| d.device == device) {
                return Err(AdminError::AlreadyEnrolled(device.short()));
            }
            if m.revoked.iter().any(|r| r.device == device) {
                return Err(AdminError::Revoked(device.short()));
            }
            m.devices.push(DeviceEntry {
                device,
                role,
                label,
                sites: vec![site],
            });
            Ok(())
        })
    }

    /// Revoke `device` (full hex, or a unique prefix of at least 8 hex digits): its events
    /// stamped at or after `from_ms` are refused.
    pub fn revoke(
        &self,
        passphrase: &str,
        device: &str,
        from_ms: Millis,
    ) -> Result<Membership, AdminError> {
        let current = self.current()?;
        let device = find_device(&current, device)?;
        self.reissue(passphrase, |m| {
            if m.revoked.iter().any(|r| r.device == device) {
                return Err(AdminError::Revoked(device.short()));
            }
            m.revoked.push(Revocation { device, from_ms });
            Ok(())
        })
    }

    /// Pin the roster whose hash is `hash` in the next version.
    pub fn pin_roster(&self, passphrase: &str, hash: RosterHash) -> Result<Membership, AdminError> {
        self.reissue(passphrase, |m| {
            let d = &m.deployment;
            if d.roster_hash() == hash {
                return Err(AdminError::SameRoster(hash.short()));
            }
            m.deployment = Deployment::new(
                d.id(),
                d.name().clone(),
                d.kind(),
                hash,
                d.sites().cloned().collect(),
            )?;
            Ok(())
        })
    }

    /// Add a staff member to the deployment-wide list in the next version.
    pub fn staff_add(&self, passphrase: &str, entry: StaffEntry) -> Result<Membership, AdminError> {
        self.reissue(passphrase, |m| {
            if m.staff.iter().any(|s| s.id == entry.id) {
                return Err(AdminError::StaffExists(entry.id.to_string()));
            }
            m.staff.push(entry);
            Ok(())
        })
    }

    /// Take a staff member off the deployment-wide list in the next version.
    pub fn staff_remove(
        &self,
        passphrase: &str,
        id: &OperatorId,
    ) -> Result<Membership, AdminError> {
        self.reissue(passphrase, |m| {
            let before = m.staff.len();
            m.staff.retain(|s| s.id != *id);
            if m.staff.len() == before {
                return Err(AdminError::UnknownStaff(id.to_string()));
            }
            Ok(())
        })
    }

    /// Give a staff member a new PIN hash (`staff::hash_pin`) in the next version.
    pub fn staff_set_pin(
        &self,
        passphrase: &str,
        id: &OperatorId,
        pin_hash: String,
    ) -> Result<Membership, AdminError> {
        self.reissue(passphrase, |m| {
            let entry = m
                .staff
                .iter_mut()
                .find(|s| s.id == *id)
                .ok_or_else(|| AdminError::UnknownStaff(id.to_string()))?;
            entry.pin_hash = Some(pin_hash);
            Ok(())
        })
    }

    /// Replace the JPKI CA certificates (DER) the deployment trusts for cards, in the next
    /// version.
    pub fn set_card_cas(
        &self,
        passphrase: &str,
        card_cas: Vec<Vec<u8>>,
    ) -> Result<Membership, AdminError> {
        self.reissue(passphrase, |m| {
            m.card_cas = card_cas;
            Ok(())
        })
    }

    /// Close the operation: the next version, the last, carries `closed_at`. Laptops that
    /// adopt it write nothing more and refuse events stamped from `at` on; they still sync,
    /// export and report. The folder signs nothing after it.
    pub fn close(&self, passphrase: &str, at: Millis) -> Result<Membership, AdminError> {
        self.reissue(passphrase, |m| {
            m.closed_at = Some(at);
            Ok(())
        })
    }

    /// Copy the key file, still encrypted, into `to` (a USB stick). Refuses to overwrite.
    pub fn export_key(&self, to: &Path) -> Result<PathBuf, AdminError> {
        self.current()?;
        let from = self.key_path();
        let bytes = std::fs::read(&from).map_err(io(&from))?;
        let dest = to.join(KEY_FILE);
        if dest.exists() {
            return Err(AdminError::Exists(dest));
        }
        write_atomic(&dest, &bytes).map_err(io(&dest))?;
        // Read back: a stick pulled mid-copy must not pass for a backup.
        let back = std::fs::read(&dest).map_err(io(&dest))?;
        if back != bytes {
            return Err(AdminError::KeyFile(dest, "the copy differs".into()));
        }
        // The purpose secrets go with it (sealed under the same key): a folder restored
        // without them would make new ones, and every note sealed so far would be unreadable.
        let purpose = self.dir.join(PURPOSE_FILE);
        if purpose.exists() {
            let bytes = std::fs::read(&purpose).map_err(io(&purpose))?;
            let to = to.join(PURPOSE_FILE);
            write_atomic(&to, &bytes).map_err(io(&to))?;
            if std::fs::read(&to).map_err(io(&to))? != bytes {
                return Err(AdminError::KeyFile(to, "the copy differs".into()));
            }
        }
        Ok(dest)
    }
}

/// The enrolled device `text` names: its full hex or a unique prefix of 8 or more hex digits.
fn find_device(members: &Membership, text: &str) -> Result<DeviceId, AdminError> {
    let t = text.trim().to_ascii_lowercase();
    if t.len() < 8 {
        return Err(AdminError::UnknownDevice(t));
    }
    let mut hits = members
        .manifest()
        .devices
        .iter()
        .map(|d| d.device)
        .filter(|d| d.to_hex().starts_with(&t));
    match (hits.next(), hits.next()) {
        (Some(d), None) => Ok(d),
        _ => Err(AdminError::UnknownDevice(t)),
    }
}

#[cfg(test)]
#[path = "deployment_admin_purpose_tests.rs"]
mod purpose_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DeviceKey {
        DeviceKey::from_seed([7; 32])
    }

    #[test]
    fn the_key_file_opens_only_with_its_passphrase_and_unaltered() {
        let dep = DeploymentId([3; 16]);
        let p = Path::new("k.kzk");
        let sealed = seal_key(&key(), dep, "correct horse").unwrap();
        let (k, d) = open_key(&sealed, "correct horse", p).unwrap();
        assert_eq!(k.device_id(), key().device_id());
        assert_eq!(d, dep);
        // The secret is not in the file in the clear.
        let text = String::from_utf8(sealed.clone()).unwrap();
        assert!(!text.contains(&hex::encode(key().secret_bytes())));
        assert!(matches!(
            open_key(&sealed, "wrong horse", p),
            Err(AdminError::WrongPassphrase)
        ));
        // One flipped digit in the sealed secret, or a changed header field.
        let mut file: serde_json::Value = serde_json::from_slice(&sealed).unwrap();
        let s = file["sealed"].as_str().unwrap().to_owned();
        let flipped = format!("{}{}", if s.starts_with('0') { '1' } else { '0' }, &s[1..]);
        let mut t = file.clone();
        t["sealed"] = flipped.into();
        assert!(matches!(
            open_key(&serde_json::to_vec(&t).unwrap(), "correct horse", p),
            Err(AdminError::WrongPassphrase)
        ));
        let mut t = file.clone();
        t["deployment"] = DeploymentId([4; 16]).to_hex().into();
        assert!(open_key(&serde_json::to_vec(&t).unwrap(), "correct horse", p).is_err());
        // Weak key derivation is refused before any work.
        file["params"]["m_kib"] = 64.into();
        assert!(matches!(
            open_key(&serde_json::to_vec(&file).unwrap(), "correct horse", p),
            Err(AdminError::WeakKdf)
        ));
        assert!(matches!(
            open_key(b"{not json", "correct horse", p),
            Err(AdminError::KeyFile(..))
        ));
        assert!(matches!(
            seal_key(&key(), dep, "short"),
            Err(AdminError::ShortPassphrase)
        ));
    }

    #[test]
    fn versions_grow_one_at_a_time_and_a_refusal_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let admin = AdminFolder::new(tmp.path().join("admin"));
        let sites =
            parse_sites_csv("code,name,kind,capacity\nS1,第一小学校,shelter,100\n").unwrap();
        let pass = "administrator passphrase";
        let v1 = admin
            .init("かざし市", Operation::Shelters, sites.clone(), pass)
            .unwrap();
        assert_eq!(v1.version(), 1);
        assert!(v1.manifest().devices.is_empty());
        assert!(matches!(
            admin.init("かざし市", Operation::Shelters, sites, pass),
            Err(AdminError::Exists(_))
        ));
        let listing = || {
            let mut v: Vec<_> = std::fs::read_dir(&admin.dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        let before = listing();
        let hash = RosterHash([5; 32]);
        assert!(matches!(
            admin.pin_roster("wrong passphrase", hash),
            Err(AdminError::WrongPassphrase)
        ));
        assert_eq!(listing(), before);
        let v2 = admin.pin_roster(pass, hash).unwrap();
        assert_eq!((v2.version(), v2.deployment().roster_hash()), (2, hash));
        assert_eq!(v2.deployment().id(), v1.deployment().id());
        assert!(matches!(
            admin.pin_roster(pass, hash),
            Err(AdminError::SameRoster(_))
        ));
        // A laptop's request, approved at a site of the deployment only.
        let laptop = tempfile::tempdir().unwrap();
        let folder = crate::enrolled::Folder::new(laptop.path());
        let req = crate::enrolment::request(&folder, "laptop passphrase", "受付1").unwrap();
        let s1 = SiteId::new("S1").unwrap();
        assert!(matches!(
            admin.approve(
                pass,
                &req,
                &req.fingerprint,
                SiteId::new("S2").unwrap(),
                Role::Station
            ),
            Err(AdminError::UnknownSite(_))
        ));
        assert!(matches!(
            admin.approve(pass, &req, "0000 0000", s1, Role::Station),
            Err(AdminError::FingerprintMismatch { .. })
        ));
        let v3 = admin
            .approve(pass, &req, &req.fingerprint, s1, Role::Station)
            .unwrap();
        assert_eq!(v3.version(), 3);
        let device = req.verify().unwrap();
        assert_eq!(v3.device(&device).unwrap().sites, vec![s1]);
        // Version 4 already in the folder (another administrator's copy): refused, not
        // overwritten.
        std::fs::write(admin.dir.join(versioned_name(4)), b"theirs").unwrap();
        assert!(matches!(
            admin.revoke(pass, &device.to_hex(), 1),
            Err(AdminError::VersionExists(4))
        ));
        assert_eq!(
            std::fs::read(admin.dir.join(versioned_name(4))).unwrap(),
            b"theirs"
        );
        std::fs::remove_file(admin.dir.join(versioned_name(4))).unwrap();
        let v4 = admin.revoke(pass, &device.short(), 1_000).unwrap();
        assert_eq!(v4.revoked_from(&device), Some(1_000));
        assert!(matches!(
            admin.approve(pass, &req, &req.fingerprint, s1, Role::Station),
            Err(AdminError::AlreadyEnrolled(_))
        ));
        assert!(matches!(
            admin.revoke(pass, "abc", 1),
            Err(AdminError::UnknownDevice(_))
        ));
        // Every version is kept, and manifest.kzm is the latest.
        for v in 1..=4 {
            let bytes = std::fs::read(admin.dir.join(versioned_name(v))).unwrap();
            assert_eq!(SignedManifest::decode(&bytes).unwrap().version(), v);
        }
        assert_eq!(admin.current().unwrap().version(), 4);
        // A manifest.kzm signed by another key is not this folder's.
        let other = tempfile::tempdir().unwrap();
        let theirs = AdminFolder::new(other.path());
        theirs
            .init(
                "よそ市",
                Operation::Shelters,
                parse_sites_csv("code,name,kind,capacity\nS1,x,shelter,1\n").unwrap(),
                pass,
            )
            .unwrap();
        std::fs::copy(theirs.manifest_path(), admin.manifest_path()).unwrap();
        assert!(matches!(
            admin.current(),
            Err(AdminError::ForeignManifest(_))
        ));
    }

    #[test]
    fn sites_from_csv_and_toml_agree() {
        let csv = "code,name,kind,capacity,shelter_type,precincts\n\
                   S1,第一小学校,shelter,200,,\n\
                   S2,福祉センター,shelter,30,9,\n\
                   HQ,災害対策本部,command,,,\n";
        let a = parse_sites_csv(csv).unwrap();
        let toml = r#"
            [[site]]
            code = "S1"
            name = "第一小学校"
            kind = "shelter"
            capacity = 200
            [[site]]
            code = "S2"
            name = "福祉センター"
            kind = "shelter"
            capacity = 30
            shelter_type = 9
            [[site]]
            code = "HQ"
            name = "災害対策本部"
            kind = "command"
        "#;
        assert_eq!(parse_sites_toml(toml).unwrap(), a);
        assert_eq!(a.len(), 3);
        let e = parse_sites_csv("code,name,kind,precincts\nP1,第1投票所,polling,01;02\n").unwrap();
        assert!(
            matches!(&e[0].kind, SiteKind::PollingStation { precincts, election_day: true, early_voting: false } if precincts.len() == 2)
        );
        for bad in [
            "code,name,kind\nS1,x,shelter\n",
            "code,name,kind\nS1,x,castle\n",
            "code,name,kind,capacity,shelter_type\nS1,x,shelter,5,7\n",
            "code,name,kind\nS 1,x,command\n",
        ] {
            let err = parse_sites_csv(bad).unwrap_err().to_string();
            assert!(err.contains("line 2"), "{bad}: {err}");
        }
    }
}
