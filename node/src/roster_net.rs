//! Rosters over iroh: the thin adapter around `kazashi_sync::roster_transfer`, on its own ALPN
//! (`kazashi/roster/1`) beside the sync protocol's, one handler per protocol on the iroh
//! router.
//!
//! - [`Server`] answers a member (enrolled in the manifest in force and not revoked; anyone
//!   else's connection is closed before a byte is read) with the roster this laptop runs on:
//!   its index, cut once per roster version from the entries in memory or streamed from the
//!   roster store on disk (the same entries, in the same order and encoding, the pinned hash
//!   was checked over when the store was opened: the same chunks either way,
//!   `crate::roster_serve`), and each chunk made on request.
//! - [`fetch`] gets the pinned roster from members: one peer at a time, one stream, a window of
//!   requests in flight; every chunk checked against that peer's index as it arrives and kept
//!   in the encrypted store (`crate::roster_fetch`), a peer that sends a chunk not matching
//!   its own index dropped for the rest of the transfer, a peer that does not hold the roster
//!   or goes silent left for the next. Once all are in, the roster store is built (the hash
//!   checked first) and handed back.
//! - [`keep_pinned`] is the running mesh's loop: whenever the manifest in force pins a roster
//!   other than the one the station runs on, fetch it from the connected members and switch
//!   the station to it (`Node::replace_roster`, between two calls).
//! - [`fetch_for_folder`] is a laptop enrolled with no roster yet: its store alone (key,
//!   manifest), an endpoint of its own, the typed-in peers; the roster store is written and
//!   the folder then opens as usual.

use crate::enrolled::Folder;
use crate::link::{CLOSE_BYE, CLOSE_PROTOCOL, CLOSE_REFUSED, DIAL_TIMEOUT_MS};
use crate::roster_fetch::{BuildError, RosterStatus, RosterTarget, begin, build, keep, short};
use crate::roster_serve::ServeCache;
use crate::store::{KdfParams, Store, StoreError};
use iroh::endpoint::{Connection, RecvStream, SendStream, VarInt, presets};
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use iroh::{Endpoint, EndpointAddr, PublicKey, SecretKey};
use kazashi_domain::ids::RosterHash;
use kazashi_domain::{CivilDate, DeviceId, Roster};
use kazashi_sync::roster_transfer::{
    Fetch, Got, MAX_REQUEST, MAX_RESPONSE, Request, Response, TransferError,
};
use kazashi_sync::{Membership, SignedManifest};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use zeroize::Zeroizing;

pub use kazashi_sync::roster_transfer::ALPN;

/// Requests in flight on one stream.
pub const WINDOW: usize = 8;
/// A peer that sends nothing for this long is left for the next.
const SILENT_MS: u64 = 15_000;

/// What the roster protocol needs of the laptop it runs on.
pub trait RosterHost: Send + Sync + 'static {
    /// Enrolled in the manifest in force, and not revoked.
    fn admits(&self, device: &DeviceId) -> bool;
    /// The roster the station runs on, and its hash (to serve); `None` while there is none.
    fn served_roster(&self) -> Option<(RosterHash, Arc<Roster>)>;
    /// Run `f` on the encrypted store.
    fn with_store(&self, f: &mut dyn FnMut(&Store));
    /// The transfer's status, for the status line and the window.
    fn progress(&self) -> MutexGuard<'_, RosterStatus>;
}

/// The running mesh's side of [`keep_pinned`].
pub trait PinnedHost: RosterHost {
    /// The roster the manifest in force pins, if the station runs on another.
    fn wanted(&self) -> Option<RosterHash>;
    /// Members connected now, to ask.
    fn connected(&self) -> Vec<EndpointAddr>;
    /// Switch the running station to `roster` (the pinned one).
    fn switch(&self, roster: Arc<Roster>) -> Result<(), String>;
    /// Today, in JST (roster birth dates may not be later).
    fn today(&self) -> Option<CivilDate>;
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn close(conn: &Connection, code: u32, reason: &str) {
    conn.close(VarInt::from_u32(code), reason.as_bytes());
}

async fn write_frame(send: &mut SendStream, body: &[u8]) -> Result<(), String> {
    let len = u32::try_from(body.len()).map_err(|_| "frame too large".to_string())?;
    let mut buf = Vec::with_capacity(body.len() + 4);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(body);
    send.write_all(&buf).await.map_err(|e| e.to_string())
}

async fn read_frame(recv: &mut RecvStream, max: usize) -> Result<Vec<u8>, String> {
    let mut len = [0u8; 4];
    recv.read_exact(&mut len).await.map_err(|e| e.to_string())?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(format!("a frame of {len} bytes is over the limit"));
    }
    let mut buf = vec![0u8; len];
    recv.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
    Ok(buf)
}

/// The roster protocol's handler on the iroh router.
pub struct Server<H: RosterHost> {
    host: Arc<H>,
    /// The index of the roster served, cut once per roster (`crate::roster_serve`).
    cache: ServeCache,
}

impl<H: RosterHost> Server<H> {
    pub fn new(host: Arc<H>) -> Self {
        Server {
            host,
            cache: ServeCache::default(),
        }
    }

    async fn respond(&self, req: &Request) -> Response {
        let Some((hash, roster)) = self.host.served_roster() else {
            return Response::NotHeld;
        };
        // In memory or on disk alike: the same chunks (`crate::roster_serve`).
        self.cache.respond(req, hash, roster).await
    }
}

impl<H: RosterHost> std::fmt::Debug for Server<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("kazashi roster handler")
    }
}

impl<H: RosterHost> ProtocolHandler for Server<H> {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let remote = DeviceId(*conn.remote_id().as_bytes());
        if !self.host.admits(&remote) {
            close(&conn, CLOSE_REFUSED, "not enrolled in this deployment");
            return Ok(());
        }
        let Ok((mut send, mut recv)) = conn.accept_bi().await else {
            return Ok(());
        };
        loop {
            let Ok(bytes) = read_frame(&mut recv, MAX_REQUEST).await else {
                break;
            };
            let Ok(req) = Request::decode(&bytes) else {
                close(&conn, CLOSE_PROTOCOL, "not a roster request");
                break;
            };
            let resp = self.respond(&req).await;
            if write_frame(&mut send, &resp.encode()).await.is_err() {
                break;
            }
        }
        Ok(())
    }
}

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("the network endpoint: {0}")]
    Endpoint(String),
    #[error("this laptop is not enrolled: {0}")]
    NotEnrolled(String),
    #[error("the roster builder stopped")]
    Stopped,
}

/// What a transfer brought.
#[derive(Debug)]
pub struct Fetched {
    pub roster: Arc<Roster>,
    /// Chunks received in this run (not those held from an earlier one).
    pub fetched: u64,
    pub total: usize,
}

/// How one peer's turn ended.
enum Turn {
    /// Every chunk is held; the index is the one to build from.
    Complete(kazashi_sync::roster_transfer::RosterIndex),
    /// It does not hold the roster, went silent, or the connection ended.
    Next(String),
    /// It sent something wrong: not asked again in this transfer.
    Drop(TransferError),
}

fn show_progress<H: RosterHost>(host: &H, f: &Fetch) {
    let mut p = host.progress();
    if let Some((held, total)) = f.progress() {
        p.chunks_held = held;
        p.chunks_total = total;
    }
    p.chunks_fetched = f.received();
}

/// One peer's turn: its index, then the missing chunks, a window at a time.
async fn from_peer<H: RosterHost>(
    host: &Arc<H>,
    endpoint: &Endpoint,
    f: &mut Fetch,
    addr: EndpointAddr,
) -> Turn {
    let dial = tokio::time::timeout(
        Duration::from_millis(DIAL_TIMEOUT_MS),
        endpoint.connect(addr, ALPN),
    );
    let conn = match dial.await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Turn::Next(e.to_string()),
        Err(_) => return Turn::Next("no answer".into()),
    };
    let turn = exchange(host, &conn, f).await;
    close(&conn, CLOSE_BYE, "done");
    f.lost_peer();
    turn
}

async fn exchange<H: RosterHost>(host: &Arc<H>, conn: &Connection, f: &mut Fetch) -> Turn {
    let (mut send, mut recv) = match conn.open_bi().await {
        Ok(s) => s,
        Err(e) => return Turn::Next(e.to_string()),
    };
    let pinned = f.pinned();
    let mut in_flight = 0usize;
    loop {
        for q in f.next_requests(WINDOW) {
            if let Err(e) = write_frame(&mut send, &q.encode()).await {
                return Turn::Next(e);
            }
            in_flight += 1;
        }
        if f.is_complete()
            && let Some(index) = f.index()
        {
            return Turn::Complete(index.clone());
        }
        if in_flight == 0 {
            return Turn::Next("nothing more to ask".into());
        }
        let read = tokio::time::timeout(
            Duration::from_millis(SILENT_MS),
            read_frame(&mut recv, MAX_RESPONSE),
        );
        let bytes = match read.await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return Turn::Next(e),
            Err(_) => return Turn::Next("silent".into()),
        };
        in_flight -= 1;
        let resp = match Response::decode(&bytes) {
            Ok(r) => r,
            Err(e) => {
                close(conn, CLOSE_PROTOCOL, "bad roster response");
                return Turn::Drop(e);
            }
        };
        match f.on_response(&resp) {
            Ok(Got::Chunk { sha256, .. }) => {
                let Response::Chunk { bytes, .. } = &resp else {
                    return Turn::Next("unexpected".into());
                };
                let mut kept = Ok(());
                tokio::task::block_in_place(|| {
                    host.with_store(&mut |s| kept = keep(s, pinned, &sha256, bytes))
                });
                if let Err(e) = kept {
                    return Turn::Next(format!("the store: {e}"));
                }
            }
            Ok(Got::NotHeld) => return Turn::Next("it does not hold this roster".into()),
            Ok(Got::Index { .. } | Got::Duplicate) => {}
            Err(e) => {
                close(conn, CLOSE_PROTOCOL, "a chunk not matching its index");
                return Turn::Drop(e);
            }
        }
        show_progress(host.as_ref(), f);
        // Responses already buffered are read without a pause: yield, so that a transfer
        // being stopped (a newer pin, the mesh shutting down) stops at the next chunk.
        tokio::task::yield_now().await;
    }
}

/// Get the roster `pinned` from the peers `peers` gives (asked again whenever none is left),
/// keep its chunks in the store as they come, and build it into `target` once all are in.
/// Runs until done or refused at the end (a wrong hash); drop the future to stop it — what
/// was received stays for the next run. Peers in `distrusted` are not asked; a peer that sends
/// a chunk not matching its own index is added, and so is the one whose index completed a set
/// that fails the final check (every chunk matched that index: the index is wrong).
pub async fn fetch<H: RosterHost>(
    host: &Arc<H>,
    endpoint: &Endpoint,
    pinned: RosterHash,
    peers: &(dyn Fn() -> Vec<EndpointAddr> + Send + Sync),
    distrusted: &mut BTreeSet<PublicKey>,
    target: &RosterTarget,
    today: CivilDate,
) -> Result<Fetched, FetchError> {
    let mut f = {
        let mut r = None;
        tokio::task::block_in_place(|| host.with_store(&mut |s| r = Some(begin(s, pinned))));
        r.ok_or(FetchError::Stopped)??
    };
    {
        let mut p = host.progress();
        p.state = "fetching".into();
        p.wanted = Some(short(&pinned));
        p.chunks_held = 0;
        p.chunks_total = 0;
        p.chunks_fetched = 0;
    }
    let (index, from) = 'peers: loop {
        let candidates: Vec<EndpointAddr> = peers()
            .into_iter()
            .filter(|a| !distrusted.contains(&a.id))
            .collect();
        if candidates.is_empty() {
            host.progress().state = "waiting".into();
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        for addr in candidates {
            let id = addr.id;
            host.progress().state = "fetching".into();
            match from_peer(host, endpoint, &mut f, addr).await {
                Turn::Complete(index) => break 'peers (index, id),
                Turn::Next(why) => {
                    if f.received() == 0 {
                        host.progress().error = Some(format!("a peer: {why}"));
                    }
                }
                Turn::Drop(e) => {
                    distrusted.insert(id);
                    host.progress().error = Some(format!("a peer was dropped: {e}"));
                }
            }
        }
        // Nobody had it (or every connection ended): ask again in a while.
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    host.progress().state = "building".into();
    let total = index.chunks.len();
    let fetched = f.received();
    let (h, t) = (host.clone(), target.clone());
    let built =
        tokio::task::spawn_blocking(move || build(&|g| h.with_store(g), pinned, &index, &t, today))
            .await
            .map_err(|_| FetchError::Stopped)?;
    match built {
        Ok(roster) => Ok(Fetched {
            roster,
            fetched,
            total,
        }),
        Err(e) => {
            if matches!(e, BuildError::Transfer(_) | BuildError::Invalid(_)) {
                distrusted.insert(from);
            }
            let mut p = host.progress();
            p.state = "failed".into();
            p.error = Some(e.to_string());
            p.chunks_held = 0;
            Err(e.into())
        }
    }
}

/// The running mesh's loop: whenever the manifest in force pins a roster the station does not
/// run on, fetch it from connected members, write it to `target` and switch the station.
pub async fn keep_pinned<H: PinnedHost>(host: Arc<H>, endpoint: Endpoint, target: RosterTarget) {
    // Peers caught sending a wrong index or chunk, for the roster they sent it for.
    let mut distrusted: (Option<RosterHash>, BTreeSet<PublicKey>) = (None, BTreeSet::new());
    loop {
        let wanted = host.wanted();
        let Some(pinned) = wanted else {
            {
                let mut p = host.progress();
                if p.state != "in_use" {
                    p.state = "in_use".into();
                    p.wanted = None;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        if distrusted.0 != Some(pinned) {
            distrusted = (Some(pinned), BTreeSet::new());
        }
        let Some(today) = host.today() else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let peers = {
            let h = host.clone();
            move || h.connected()
        };
        // A newer manifest arriving mid-transfer pins yet another roster: start over for it.
        let changed = {
            let h = host.clone();
            async move {
                while h.wanted() == Some(pinned) {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        };
        let outcome = tokio::select! {
            r = fetch(&host, &endpoint, pinned, &peers, &mut distrusted.1, &target, today) => Some(r),
            _ = changed => None,
        };
        match outcome {
            Some(Ok(got)) => {
                let switched = tokio::task::block_in_place(|| host.switch(got.roster));
                let mut p = host.progress();
                match switched {
                    Ok(()) => {
                        p.state = "in_use".into();
                        p.in_use = short(&pinned);
                        p.wanted = None;
                        p.switches += 1;
                        p.error = None;
                    }
                    Err(e) => {
                        p.state = "failed".into();
                        p.error = Some(e);
                    }
                }
            }
            Some(Err(e)) => {
                {
                    let mut p = host.progress();
                    p.state = "failed".into();
                    p.error = Some(e.to_string());
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            None => {}
        }
    }
}

/// A laptop with its store and no roster: what the roster protocol needs of it.
pub struct Standalone {
    store: Mutex<Store>,
    members: Membership,
    progress: Mutex<RosterStatus>,
}

impl RosterHost for Standalone {
    fn admits(&self, device: &DeviceId) -> bool {
        self.members.device(device).is_some() && self.members.revoked_from(device).is_none()
    }
    fn served_roster(&self) -> Option<(RosterHash, Arc<Roster>)> {
        None
    }
    fn with_store(&self, f: &mut dyn FnMut(&Store)) {
        f(&lock(&self.store))
    }
    fn progress(&self) -> MutexGuard<'_, RosterStatus> {
        lock(&self.progress)
    }
}

/// Where a fresh laptop looks for its roster.
#[derive(Debug, Clone)]
pub struct FolderFetch {
    /// The UDP address to bind.
    pub bind: SocketAddr,
    /// Peers to ask: an address, with the device if known (else every member is tried there).
    pub peers: Vec<(Option<DeviceId>, SocketAddr)>,
    /// The key cost of the new roster store.
    pub kdf: KdfParams,
}

impl Standalone {
    /// The store of the enrolled laptop in `folder`, with its key and manifest.
    pub fn open(
        folder: &Folder,
        passphrase: &str,
    ) -> Result<(Arc<Standalone>, SecretKey), FetchError> {
        let store = Store::open(&folder.store_path(), passphrase)?;
        let key = store
            .identity()?
            .ok_or_else(|| FetchError::NotEnrolled("no device key".into()))?;
        let signed = store
            .manifest()?
            .ok_or_else(|| FetchError::NotEnrolled("no manifest installed".into()))?;
        let members =
            SignedManifest::decode(&signed).map_err(|e| FetchError::NotEnrolled(e.to_string()))?;
        let pinned = members.deployment().roster_hash();
        let host = Arc::new(Standalone {
            store: Mutex::new(store),
            members,
            progress: Mutex::new(RosterStatus {
                state: "waiting".into(),
                wanted: Some(short(&pinned)),
                ..RosterStatus::default()
            }),
        });
        Ok((host, SecretKey::from_bytes(&key.secret_bytes())))
    }

    /// The roster the manifest pins.
    pub fn pinned(&self) -> RosterHash {
        self.members.deployment().roster_hash()
    }

    /// The transfer's progress now.
    pub fn status(&self) -> RosterStatus {
        lock(&self.progress).clone()
    }

    /// Bind an endpoint as this laptop and fetch the pinned roster from the peers of `how`
    /// into `target`. Dropping the future stops it; what was received stays in the store.
    pub async fn run(
        self: &Arc<Self>,
        secret: SecretKey,
        how: &FolderFetch,
        target: &RosterTarget,
        today: CivilDate,
    ) -> Result<Fetched, FetchError> {
        let me = DeviceId(*secret.public().as_bytes());
        let pinned = self.pinned();
        let candidates: Vec<EndpointAddr> = how
            .peers
            .iter()
            .flat_map(|(device, addr)| {
                let devices: Vec<DeviceId> = match device {
                    Some(d) => vec![*d],
                    None => self
                        .members
                        .manifest()
                        .devices
                        .iter()
                        .map(|d| d.device)
                        .filter(|d| *d != me)
                        .collect(),
                };
                // Only members are asked.
                devices
                    .into_iter()
                    .filter(|d| self.admits(d))
                    .filter_map(|d| PublicKey::from_bytes(&d.0).ok())
                    .map(|pk| EndpointAddr::new(pk).with_ip_addr(*addr))
                    .collect::<Vec<_>>()
            })
            .collect();
        let endpoint = Endpoint::builder(presets::Minimal)
            .secret_key(secret)
            .clear_ip_transports()
            .bind_addr(how.bind)
            .map_err(|e| FetchError::Endpoint(e.to_string()))?
            .bind()
            .await
            .map_err(|e| FetchError::Endpoint(e.to_string()))?;
        // A laptop with no roster serves none; the router only answers "not held".
        let router = Router::builder(endpoint.clone())
            .accept(ALPN, Server::new(self.clone()))
            .spawn();
        let peers = move || candidates.clone();
        let mut distrusted = BTreeSet::new();
        let result = fetch(
            self,
            &endpoint,
            pinned,
            &peers,
            &mut distrusted,
            target,
            today,
        )
        .await;
        if result.is_ok() {
            let mut p = self.progress();
            p.state = "in_use".into();
            p.in_use = short(&pinned);
            p.wanted = None;
        }
        let _ = router.shutdown().await;
        result
    }
}

/// Get the pinned roster of the enrolled laptop in `folder`, which has none (or another), from
/// the peers in `how`, and write it as the folder's roster store under `roster_passphrase`.
/// `report` is called with the progress about twice a second, and once at the end.
pub async fn fetch_for_folder(
    folder: &Folder,
    passphrase: &str,
    roster_passphrase: &str,
    how: &FolderFetch,
    today: CivilDate,
    report: &(dyn Fn(&RosterStatus) + Send + Sync),
) -> Result<Fetched, FetchError> {
    let (host, secret) = Standalone::open(folder, passphrase)?;
    let target = RosterTarget {
        path: folder.roster_path(),
        passphrase: Zeroizing::new(roster_passphrase.to_owned()),
        kdf: how.kdf,
    };
    let reporter = {
        let host = host.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                report(&host.status());
            }
        }
    };
    let result = tokio::select! {
        r = host.run(secret, how, &target, today) => r,
        _ = reporter => Err(FetchError::Stopped),
    };
    report(&host.status());
    result
}
