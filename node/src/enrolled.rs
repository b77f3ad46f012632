//! An enrolled laptop's folder, as the product opens it: `kazashi.db` (the encrypted store with
//! this device's key, the signed manifest and the log) and `roster.db` (the roster store whose
//! hash the manifest pins). The site the laptop works at is a setting of its store, written at
//! enrolment; a device enrolled for exactly one site needs none.
//!
//! Nothing here knows where keys or manifests come from: the deployment tools write them at
//! enrolment, the drill lab writes them from its seeded fleet. Opening checks the roster against
//! the pin before the station sees a single row.

use crate::clock::Clock;
use crate::node::{Node, NodeError};
use crate::roster_db::{RosterDb, RosterDbError};
use crate::roster_fetch::RosterTarget;
use crate::roster_seal::META_ROSTER_SEAL;
use crate::store::{KdfParams, Store, StoreError};
use kazashi_domain::{CivilDate, Roster, SiteId};
use kazashi_sync::{DeviceKey, SignedManifest};
use std::path::PathBuf;
use std::sync::Arc;

/// The store's file in a laptop's folder.
pub const STORE_FILE: &str = "kazashi.db";
/// The roster store's file in a laptop's folder.
pub const ROSTER_FILE: &str = "roster.db";
/// The store setting naming the site this laptop works at.
pub const META_SITE: &str = "site";

/// Why an enrolled folder could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("no enrolled store in {0}: this laptop has not been enrolled")]
    NoStore(PathBuf),
    #[error("no roster store at {0}: import the pinned roster first (kazashi roster import)")]
    NoRoster(PathBuf),
    #[error("the store in {dir}")]
    Store {
        dir: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("the roster store {path}")]
    Roster {
        path: PathBuf,
        #[source]
        source: RosterDbError,
    },
    #[error("the node in {dir}")]
    Node {
        dir: PathBuf,
        #[source]
        source: NodeError,
    },
    #[error("the store's site setting {0:?} is not a site of the deployment")]
    BadSite(String),
    #[error(
        "this laptop's site is not set and its manifest entry names {0} sites: enrol it at one site"
    )]
    NoSite(usize),
    #[error("the clock is outside the calendar")]
    Clock,
    #[error(
        "this laptop in {0} has asked to be enrolled but holds no manifest yet: install the administrator's (kazashi enrol --install manifest.kzm)"
    )]
    AwaitingManifest(PathBuf),
}

/// Where an enrolled laptop's parts are.
#[derive(Debug, Clone)]
pub struct Folder {
    pub dir: PathBuf,
    /// The roster store (default: `roster.db` in `dir`).
    pub roster: Option<PathBuf>,
}

impl Folder {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            roster: None,
        }
    }
    pub fn store_path(&self) -> PathBuf {
        self.dir.join(STORE_FILE)
    }
    pub fn roster_path(&self) -> PathBuf {
        self.roster
            .clone()
            .unwrap_or_else(|| self.dir.join(ROSTER_FILE))
    }
    /// Whether a store has been enrolled here.
    pub fn is_enrolled(&self) -> bool {
        self.store_path().exists()
    }
}

/// The site this store works at: its setting, else the one site its manifest entry allows.
fn site_of(
    store: &Store,
    members: &kazashi_sync::Membership,
    key: &DeviceKey,
) -> Result<SiteId, OpenError> {
    let store_err = |source| OpenError::Store {
        dir: store.path().to_path_buf(),
        source,
    };
    if let Some(b) = store.get_meta(META_SITE).map_err(store_err)? {
        let text = String::from_utf8_lossy(&b).into_owned();
        let site = SiteId::new(&text).map_err(|_| OpenError::BadSite(text.clone()))?;
        if members.deployment().site(&site).is_none() {
            return Err(OpenError::BadSite(text));
        }
        return Ok(site);
    }
    let sites = members
        .device(&key.device_id())
        .map(|d| d.sites.clone())
        .unwrap_or_default();
    match sites.as_slice() {
        [one] => Ok(*one),
        other => Err(OpenError::NoSite(other.len())),
    }
}

/// Open the enrolled laptop in `folder`: the store under `passphrase`, the roster store under
/// `roster_passphrase` checked against the manifest's pin, then the cold start.
pub fn open<C: Clock>(
    folder: &Folder,
    passphrase: &str,
    roster_passphrase: &str,
    clock: C,
) -> Result<(Node<C>, Arc<Roster>), OpenError> {
    let path = folder.store_path();
    if !path.exists() {
        return Err(OpenError::NoStore(folder.dir.clone()));
    }
    let store_err = |source| OpenError::Store {
        dir: folder.dir.clone(),
        source,
    };
    let node_err = |source| OpenError::Node {
        dir: folder.dir.clone(),
        source,
    };
    let store = Store::open(&path, passphrase).map_err(store_err)?;
    let key = store
        .identity()
        .map_err(store_err)?
        .ok_or(OpenError::Node {
            dir: folder.dir.clone(),
            source: NodeError::NotEnrolledHere,
        })?;
    let signed = store
        .manifest()
        .map_err(store_err)?
        .ok_or_else(|| OpenError::AwaitingManifest(folder.dir.clone()))?;
    let members = SignedManifest::decode(&signed).map_err(|e| node_err(e.into()))?;
    let site = site_of(&store, &members, &key)?;
    let seal = store.get_meta(META_ROSTER_SEAL).map_err(store_err)?;
    let (roster, new_seal) = load_roster(
        folder,
        roster_passphrase,
        members.deployment(),
        &clock,
        seal.as_deref(),
    )?;
    if let Some(s) = new_seal {
        store.set_meta(META_ROSTER_SEAL, &s).map_err(store_err)?;
    }
    let mut node = Node::from_store(store, roster.clone(), site, clock).map_err(node_err)?;
    node.set_roster_target(roster_target(folder, roster_passphrase));
    Ok((node, roster))
}

/// Where a newer roster received over the mesh is written: the folder's roster store, under
/// the same passphrase, at the standard key cost (`crate::roster_net`).
pub fn roster_target(folder: &Folder, roster_passphrase: &str) -> RosterTarget {
    RosterTarget {
        path: folder.roster_path(),
        passphrase: zeroize::Zeroizing::new(roster_passphrase.to_owned()),
        kdf: KdfParams::STANDARD,
    }
}

/// The roster store of `folder`, checked against the deployment's pinned hash; with the seal
/// the station recorded (`crate::roster_seal`) when those very bytes were checked before, a
/// large store is not walked again. The seal to record, when the store was walked and sealed
/// now.
pub fn load_roster<C: Clock>(
    folder: &Folder,
    passphrase: &str,
    deployment: &kazashi_domain::Deployment,
    clock: &C,
    seal: Option<&[u8]>,
) -> Result<(Arc<Roster>, Option<Vec<u8>>), OpenError> {
    let path = folder.roster_path();
    if !path.exists() {
        return Err(OpenError::NoRoster(path));
    }
    let today = CivilDate::jst_of(clock.now_ms()).ok_or(OpenError::Clock)?;
    let roster_err = |source| OpenError::Roster {
        path: path.clone(),
        source,
    };
    let db = RosterDb::open(&path, passphrase).map_err(roster_err)?;
    let pin = deployment.roster_hash();
    // A small roster, or one of an older layout, is loaded whole (and checked) as before.
    if db.len() < crate::roster_lookup::ON_DISK_FROM || !db.answers_from_disk() {
        return Ok((
            Arc::new(db.load(today, Some(pin)).map_err(roster_err)?),
            None,
        ));
    }
    // A large one stays on disk: checked entry by entry as it streams past the hash, unless
    // the station sealed these very bytes after such a check.
    let files = [path.clone(), crate::roster_db::text_path(&path)];
    let files: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
    let io = |e: std::io::Error| OpenError::Roster {
        path: path.clone(),
        source: RosterDbError::Io(e),
    };
    let before = crate::roster_seal::fingerprint(&files).map_err(io)?;
    let sealed = seal == Some(crate::roster_seal::seal_bytes(&pin, &before).as_slice());
    let (store, new_seal) = if sealed {
        let s = crate::roster_lookup::StoreRoster::sealed(db, pin).map_err(roster_err)?;
        (s, None)
    } else {
        let s = crate::roster_lookup::StoreRoster::open(db, Some(pin)).map_err(roster_err)?;
        // Sealed only if the files did not change while they were checked.
        let after = crate::roster_seal::fingerprint(&files).map_err(io)?;
        (
            s,
            (after == before).then(|| crate::roster_seal::seal_bytes(&pin, &after)),
        )
    };
    Ok((Arc::new(Roster::from_store(Arc::new(store))), new_seal))
}

/// Enrol a laptop in `folder`: a new store holding `key` and the signed `manifest`, working at
/// `site`. The roster store must already be in the folder (it is checked against the pin).
#[allow(clippy::too_many_arguments)]
pub fn enrol<C: Clock>(
    folder: &Folder,
    passphrase: &str,
    roster_passphrase: &str,
    kdf: KdfParams,
    key: DeviceKey,
    manifest: &[u8],
    site: SiteId,
    clock: C,
) -> Result<(Node<C>, Arc<Roster>), OpenError> {
    let node_err = |source| OpenError::Node {
        dir: folder.dir.clone(),
        source,
    };
    let members = SignedManifest::decode(manifest).map_err(|e| node_err(e.into()))?;
    if members.deployment().site(&site).is_none() {
        return Err(OpenError::BadSite(site.to_string()));
    }
    let (roster, seal) = load_roster(
        folder,
        roster_passphrase,
        members.deployment(),
        &clock,
        None,
    )?;
    std::fs::create_dir_all(&folder.dir).map_err(|e| OpenError::Store {
        dir: folder.dir.clone(),
        source: StoreError::Io(e),
    })?;
    let mut node = Node::create(
        &folder.store_path(),
        passphrase,
        kdf,
        key,
        manifest,
        roster.clone(),
        site,
        clock,
    )
    .map_err(node_err)?;
    node.set_setting(META_SITE, site.as_str().as_bytes())
        .map_err(node_err)?;
    if let Some(s) = seal {
        node.set_setting(META_ROSTER_SEAL, &s).map_err(node_err)?;
    }
    node.set_roster_target(roster_target(folder, roster_passphrase));
    Ok((node, roster))
}
