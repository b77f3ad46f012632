//! Enrolment over the LAN: a fresh laptop sends its request to the administrator's laptop, and
//! the manifest the administrator signs for it comes back on the same connection.
//!
//! The laptop is not a member yet, so this is not the mesh: its own protocol (ALPN
//! [`ALPN`], `kazashi/enrol/1`) on its own endpoint (UDP port [`DEFAULT_PORT`] by default).
//!
//! **Trust.** Nothing here relies on the channel. The administrator approves a request only
//! with the laptop's fingerprint read out and typed (`kazashi deployment approve`), and the
//! laptop installs a manifest only if the deployment key's fingerprint, read out by the
//! administrator and typed, matches ([`crate::enrolment::install`]): a manifest signed by
//! another key, altered, or not listing this laptop is refused and nothing is installed, as on
//! the USB path. What the connection adds: the laptop's endpoint key *is* its device key, so
//! the serving side takes a request only from the laptop holding the key it names (a copied
//! request cannot be sent by anyone else, nor can anyone else collect its manifest).
//!
//! **Wire.** One bidirectional stream, opened by the laptop. Frames: a 4-byte big-endian
//! length (of what follows), a tag byte, the body. Tags: [`TAG_REQUEST`] (laptop → admin, the
//! request's JSON, at most [`MAX_REQUEST`] bytes), [`TAG_PENDING`] (admin → laptop, empty:
//! received, waiting for the administrator; repeated every [`PENDING_EVERY`] as a keep-alive),
//! [`TAG_MANIFEST`] (the signed manifest, at most [`MAX_MANIFEST`] bytes) and [`TAG_REFUSED`]
//! (UTF-8 reason, at most [`MAX_REFUSAL`] bytes). A frame over the limit, an unknown tag, a
//! tag out of turn or a malformed body closes the connection; nothing panics on any input.
//!
//! **Serving side** ([`Server`], `kazashi deployment serve-enrol`). Each request that verifies
//! (its signature and fingerprint, and the connection's key) is stored as
//! `requests/<device hex>.json` in the administrator's folder (at most [`MAX_STORED`] files),
//! reported as a [`ServeEvent::Received`], and kept waiting. Approval stays a separate step:
//! `kazashi deployment approve --request <that file> …` signs the next manifest version. The
//! server re-reads the folder's `manifest.kzm` every [`ServeConfig::poll`] (checked against
//! the folder's key) and sends a waiting laptop the first manifest that lists it. A request
//! from a laptop the manifest already lists gets the manifest at once (a laptop asking again);
//! one it revokes is refused.
//!
//! **Laptop's side** ([`send_request`], async, on a multi-threaded tokio runtime; or
//! [`send_request_blocking`], which makes its own runtime and must not be called from inside
//! one). The target is `<server id hex>@ip:port` as the server prints it, or found on the LAN
//! by mDNS ([`Target::Lan`]: `lan`, or `ip:port` for the server announcing that address).

use crate::deployment_admin::{AdminError, AdminFolder};
use crate::enrolment::{EnrolError, Request};
use crate::mesh::PeerAddr;
use crate::store::{Store, random_bytes, write_atomic};
use iroh::endpoint::{Connection, RecvStream, SendStream, VarInt, presets};
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use iroh::{Endpoint, EndpointAddr, PublicKey, SecretKey};
use kazashi_domain::DeviceId;
use kazashi_sync::{DeviceKey, Membership};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use zeroize::Zeroizing;

/// The enrolment protocol's ALPN.
pub const ALPN: &[u8] = b"kazashi/enrol/1";
/// The serving side's default UDP port (the mesh's is 47470).
pub const DEFAULT_PORT: u16 = 47471;
/// The mDNS service the serving side announces itself under.
pub const MDNS_SERVICE: &str = "kazashi-enrol";
/// Laptop → admin: the request's JSON.
pub const TAG_REQUEST: u8 = 1;
/// Admin → laptop: received, waiting for approval (empty body).
pub const TAG_PENDING: u8 = 2;
/// Admin → laptop: the signed manifest.
pub const TAG_MANIFEST: u8 = 3;
/// Admin → laptop: refused, with a reason.
pub const TAG_REFUSED: u8 = 4;
/// The largest request body taken.
pub const MAX_REQUEST: usize = 4096;
/// The largest manifest body taken (the mesh's limit).
pub const MAX_MANIFEST: usize = crate::link::MAX_MANIFEST;
/// The largest refusal reason taken.
pub const MAX_REFUSAL: usize = 512;
/// How often a waiting laptop hears that it is still waiting.
pub const PENDING_EVERY: Duration = Duration::from_secs(5);
/// How long the serving side waits for the request after a connection opens.
pub const REQUEST_WITHIN: Duration = Duration::from_secs(10);
/// The most requests kept in `requests/` (a full folder refuses new devices).
pub const MAX_STORED: usize = 256;
/// The most laptops served at once.
pub const MAX_CONNECTIONS: usize = 32;
/// The folder in the administrator's folder holding received requests.
pub const REQUESTS_DIR: &str = "requests";
/// How long a laptop looks for the service by mDNS.
pub const DISCOVER_WITHIN: Duration = Duration::from_secs(20);
/// How long a laptop may wait on one connection (the serving side's bound).
const WAIT_AT_MOST: Duration = Duration::from_secs(4 * 3600);
const CLOSE_DONE: u32 = 0;
const CLOSE_PROTOCOL: u32 = 1;
const CLOSE_BUSY: u32 = 2;

/// Why sending, serving or a message failed. On the laptop's side nothing is installed when
/// one is returned.
#[derive(Debug, thiserror::Error)]
pub enum EnrolNetError {
    #[error("cannot bind the enrolment endpoint on {addr}: {why}")]
    Bind { addr: SocketAddr, why: String },
    #[error("mDNS: {0}")]
    Mdns(String),
    #[error(
        "no administrator's enrolment service found on the LAN within {0} s (is kazashi deployment serve-enrol running? give its address with --send)"
    )]
    NotFound(u64),
    #[error("cannot reach the administrator's enrolment service at {to}: {why}")]
    Connect { to: String, why: String },
    #[error(
        "no manifest came from the administrator within {0} s; the request is kept there — run the same command again once it is approved"
    )]
    Timeout(u64),
    #[error("the administrator's enrolment service did not take the request within {0} s")]
    NoAnswer(u64),
    #[error("the administrator's side refused the request: {0}")]
    Refused(String),
    #[error("the connection ended before a manifest came: {0}")]
    Closed(String),
    #[error("a frame of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("unknown message tag {0}")]
    UnknownTag(u8),
    #[error("unexpected message: {0}")]
    Unexpected(&'static str),
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("not an enrolment address (expected lan, ip:port or <id hex>@ip:port): {0}")]
    Address(String),
    #[error("{0} requests are waiting in {1}: approve or remove some first")]
    TooManyStored(usize, PathBuf),
    #[error("the request")]
    Request(#[source] EnrolError),
    #[error("the administrator's folder")]
    Admin(#[from] AdminError),
    #[error("file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the runtime: {0}")]
    Runtime(String),
}

// ---------------------------------------------------------------------------------------------
// Messages (sans-IO)

/// One message of the enrolment protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Pending,
    Manifest(Vec<u8>),
    Refused(String),
}

impl Message {
    fn tag(&self) -> u8 {
        match self {
            Message::Request(_) => TAG_REQUEST,
            Message::Pending => TAG_PENDING,
            Message::Manifest(_) => TAG_MANIFEST,
            Message::Refused(_) => TAG_REFUSED,
        }
    }

    /// The message as one frame: length, tag, body.
    pub fn encode(&self) -> Result<Vec<u8>, EnrolNetError> {
        let body: Vec<u8> = match self {
            Message::Request(r) => {
                serde_json::to_vec(r).map_err(|e| EnrolNetError::Malformed(e.to_string()))?
            }
            Message::Pending => Vec::new(),
            Message::Manifest(m) => m.clone(),
            Message::Refused(why) => truncate(why, MAX_REFUSAL).as_bytes().to_vec(),
        };
        let tag = self.tag();
        if body.len() > max_body(tag)? {
            return Err(EnrolNetError::TooLarge(body.len()));
        }
        let len = u32::try_from(body.len() + 1).map_err(|_| EnrolNetError::TooLarge(body.len()))?;
        let mut out = Vec::with_capacity(body.len() + 5);
        out.extend_from_slice(&len.to_be_bytes());
        out.push(tag);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// A frame's tag and body, read back. Every bound is checked; nothing panics.
    pub fn decode(tag: u8, body: &[u8]) -> Result<Message, EnrolNetError> {
        if body.len() > max_body(tag)? {
            return Err(EnrolNetError::TooLarge(body.len()));
        }
        match tag {
            TAG_REQUEST => Request::parse(body)
                .map(Message::Request)
                .map_err(|e| EnrolNetError::Malformed(e.to_string())),
            TAG_PENDING if body.is_empty() => Ok(Message::Pending),
            TAG_PENDING => Err(EnrolNetError::Malformed(
                "a pending message has a body".into(),
            )),
            TAG_MANIFEST => Ok(Message::Manifest(body.to_vec())),
            TAG_REFUSED => std::str::from_utf8(body)
                .map(|s| Message::Refused(s.to_owned()))
                .map_err(|_| EnrolNetError::Malformed("the reason is not UTF-8".into())),
            other => Err(EnrolNetError::UnknownTag(other)),
        }
    }
}

fn max_body(tag: u8) -> Result<usize, EnrolNetError> {
    match tag {
        TAG_REQUEST => Ok(MAX_REQUEST),
        TAG_PENDING => Ok(0),
        TAG_MANIFEST => Ok(MAX_MANIFEST),
        TAG_REFUSED => Ok(MAX_REFUSAL),
        other => Err(EnrolNetError::UnknownTag(other)),
    }
}

/// The length a frame header announces, if within `max` (tag included) and not empty.
pub fn frame_len(header: [u8; 4], max: usize) -> Result<usize, EnrolNetError> {
    let len = u32::from_be_bytes(header) as usize;
    if len == 0 {
        return Err(EnrolNetError::Malformed("an empty frame".into()));
    }
    if len > max {
        return Err(EnrolNetError::TooLarge(len));
    }
    Ok(len)
}

/// `s` cut to at most `max` bytes on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

// ---------------------------------------------------------------------------------------------
// The serving side's rules (sans-IO, on the folder)

/// The device of a request that came in on a connection from `remote`: its signature and
/// fingerprint must check out, and it must name the connection's own key.
pub fn admit(request: &Request, remote: &DeviceId) -> Result<DeviceId, String> {
    let device = request.verify().map_err(|e| e.to_string())?;
    if device != *remote {
        return Err("the request names another key than the laptop that sent it".into());
    }
    Ok(device)
}

/// Keep `request` (already admitted) in `requests/<device hex>.json` of the administrator's
/// folder, for `kazashi deployment approve --request`. The same device's earlier request is
/// replaced; a new device is refused once [`MAX_STORED`] are waiting.
pub fn store_request(admin: &AdminFolder, request: &Request) -> Result<PathBuf, EnrolNetError> {
    let dir = admin.dir.join(REQUESTS_DIR);
    let io = |path: &PathBuf| {
        let path = path.clone();
        move |source| EnrolNetError::Io { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    // The request verified, so its device is 64 hex digits: a safe file name.
    let path = dir.join(format!("{}.json", request.device));
    if !path.exists() {
        let stored = std::fs::read_dir(&dir).map_err(io(&dir))?.count();
        if stored >= MAX_STORED {
            return Err(EnrolNetError::TooManyStored(stored, dir));
        }
    }
    let json =
        serde_json::to_vec_pretty(request).map_err(|e| EnrolNetError::Malformed(e.to_string()))?;
    write_atomic(&path, &json).map_err(io(&path))?;
    Ok(path)
}

/// What the serving side answers a waiting laptop, given the manifest in force.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// Not listed yet: keep waiting.
    Wait,
    /// Listed: send this manifest.
    Send(Vec<u8>),
    /// Revoked in it: refuse.
    Refuse(String),
}

/// The answer for `device` under `current`.
pub fn answer(current: &Membership, device: &DeviceId) -> Answer {
    if current.revoked_from(device).is_some() {
        return Answer::Refuse(format!(
            "this laptop is revoked in manifest version {}",
            current.version()
        ));
    }
    match current.device(device) {
        Some(_) => Answer::Send(current.signed().encode()),
        None => Answer::Wait,
    }
}

// ---------------------------------------------------------------------------------------------
// Frames over iroh

async fn write_msg(send: &mut SendStream, m: &Message) -> Result<(), EnrolNetError> {
    let frame = m.encode()?;
    send.write_all(&frame)
        .await
        .map_err(|e| EnrolNetError::Closed(e.to_string()))
}

async fn read_msg(recv: &mut RecvStream, max: usize) -> Result<Message, EnrolNetError> {
    let mut header = [0u8; 4];
    recv.read_exact(&mut header)
        .await
        .map_err(|e| EnrolNetError::Closed(e.to_string()))?;
    let len = frame_len(header, max)?;
    let mut buf = vec![0u8; len];
    recv.read_exact(&mut buf)
        .await
        .map_err(|e| EnrolNetError::Closed(e.to_string()))?;
    let Some((&tag, body)) = buf.split_first() else {
        return Err(EnrolNetError::Malformed("an empty frame".into()));
    };
    Message::decode(tag, body)
}

async fn endpoint(secret: SecretKey, bind: SocketAddr) -> Result<Endpoint, EnrolNetError> {
    let bind_err = |why: String| EnrolNetError::Bind { addr: bind, why };
    Endpoint::builder(presets::Minimal)
        .secret_key(secret)
        .alpns(vec![ALPN.to_vec()])
        .clear_ip_transports()
        .bind_addr(bind)
        .map_err(|e| bind_err(e.to_string()))?
        .bind()
        .await
        .map_err(|e| bind_err(e.to_string()))
}

/// The address the connection's selected path runs to.
fn remote_addr(conn: &Connection) -> Option<SocketAddr> {
    conn.paths()
        .iter()
        .filter(|p| p.is_selected())
        .find_map(|p| match p.remote_addr() {
            iroh::TransportAddr::Ip(a) => Some(*a),
            _ => None,
        })
}

// ---------------------------------------------------------------------------------------------
// The serving side

/// How the serving side runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub bind: SocketAddr,
    /// Announce the service on the LAN by mDNS.
    pub mdns: bool,
    /// How often the folder's `manifest.kzm` is re-read.
    pub poll: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            mdns: true,
            poll: Duration::from_millis(250),
        }
    }
}

/// What happened on the serving side, for the administrator's terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServeEvent {
    /// A request that verified, stored in `file`; its laptop waits.
    Received {
        device: String,
        label: String,
        fingerprint: String,
        peer: Option<SocketAddr>,
        file: PathBuf,
    },
    /// The manifest `version` went to the laptop `device`.
    Sent { device: String, version: u32 },
    /// The laptop `device` stopped waiting before its approval (its request stays).
    Left { device: String },
    /// A connection was refused or broke off (junk, a bad request, a revoked laptop).
    Refused {
        peer: Option<SocketAddr>,
        why: String,
    },
}

struct Serving {
    admin: AdminFolder,
    /// The manifest in force, as last read from the folder.
    current: watch::Sender<Option<Arc<Membership>>>,
    events: mpsc::UnboundedSender<ServeEvent>,
    slots: Arc<Semaphore>,
}

/// The administrator's enrolment service, running.
pub struct Server {
    router: Router,
    shared: Arc<Serving>,
    events: mpsc::UnboundedReceiver<ServeEvent>,
    reread: Arc<Notify>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Bind the endpoint (a fresh key from the operating system each time) and serve the
    /// administrator's folder `admin`, which must hold a deployment. Must run inside a
    /// multi-threaded tokio runtime.
    pub async fn start(admin: AdminFolder, config: ServeConfig) -> Result<Server, EnrolNetError> {
        let first = admin.current()?;
        let secret = SecretKey::from_bytes(&Zeroizing::new(
            random_bytes::<32>().map_err(|e| EnrolNetError::Runtime(e.to_string()))?,
        ));
        let ep = endpoint(secret, config.bind).await?;
        if config.mdns {
            use iroh_mdns_address_lookup::MdnsAddressLookup;
            let mdns = MdnsAddressLookup::builder()
                .service_name(MDNS_SERVICE)
                .build(ep.id())
                .map_err(|e| EnrolNetError::Mdns(e.to_string()))?;
            ep.address_lookup()
                .map_err(|e| EnrolNetError::Mdns(e.to_string()))?
                .add(mdns);
        }
        let (current, _) = watch::channel(Some(Arc::new(first)));
        let (tx, events) = mpsc::unbounded_channel();
        let shared = Arc::new(Serving {
            admin,
            current,
            events: tx,
            slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        });
        let router = Router::builder(ep)
            .accept(
                ALPN,
                Handler {
                    shared: shared.clone(),
                },
            )
            .spawn();
        let reread = Arc::new(Notify::new());
        let watcher = tokio::spawn(watch_folder(shared.clone(), config.poll, reread.clone()));
        Ok(Server {
            router,
            shared,
            events,
            reread,
            tasks: vec![watcher],
        })
    }

    /// `<server id hex>@ip:port` for a laptop to type in: each bound socket, or, for one bound
    /// to every interface, the interfaces' addresses the endpoint knows.
    pub fn addrs(&self) -> Vec<PeerAddr> {
        let ep = self.router.endpoint();
        let me = DeviceId(*ep.id().as_bytes());
        let known: Vec<SocketAddr> = ep.addr().ip_addrs().copied().collect();
        let mut out = Vec::new();
        for bound in ep.bound_sockets() {
            if bound.ip().is_unspecified() {
                out.extend(
                    known
                        .iter()
                        .filter(|a| a.port() == bound.port() && a.is_ipv4() == bound.is_ipv4())
                        .copied(),
                );
            } else {
                out.push(bound);
            }
        }
        out.into_iter()
            .map(|addr| PeerAddr {
                device: Some(me),
                addr,
            })
            .collect()
    }

    /// The next thing that happened (`None` once stopped).
    pub async fn next_event(&mut self) -> Option<ServeEvent> {
        self.events.recv().await
    }

    /// Re-read the folder now (after an approval made in this process).
    pub fn reread(&self) {
        self.reread.notify_one();
    }

    /// The manifest version in force, as last read.
    pub fn version(&self) -> Option<u32> {
        self.shared.current.borrow().as_ref().map(|m| m.version())
    }

    /// Stop serving: close every connection and the endpoint.
    pub async fn shutdown(self) {
        for t in self.tasks {
            t.abort();
        }
        let _ = self.router.shutdown().await;
    }
}

/// Re-read `manifest.kzm` every `poll` (or when told): a newer valid one is put in force.
async fn watch_folder(shared: Arc<Serving>, poll: Duration, reread: Arc<Notify>) {
    let mut last: Option<Vec<u8>> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = reread.notified() => {}
        }
        let path = shared.admin.manifest_path();
        let Ok(bytes) = tokio::fs::read(&path).await else {
            continue;
        };
        if last.as_deref() == Some(bytes.as_slice()) {
            continue;
        }
        let admin = shared.admin.clone();
        // `current` checks the file against the folder's key; a file caught mid-rename or a
        // foreign one is skipped (the one in force stays).
        let Ok(Ok(next)) = tokio::task::spawn_blocking(move || admin.current()).await else {
            continue;
        };
        last = Some(bytes);
        let newer = shared
            .current
            .borrow()
            .as_ref()
            .is_none_or(|m| next.version() > m.version());
        if newer {
            shared.current.send_replace(Some(Arc::new(next)));
        }
    }
}

#[derive(Clone)]
struct Handler {
    shared: Arc<Serving>,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("kazashi enrolment handler")
    }
}

impl ProtocolHandler for Handler {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let peer = remote_addr(&conn);
        let Ok(_slot) = self.shared.slots.clone().try_acquire_owned() else {
            conn.close(VarInt::from_u32(CLOSE_BUSY), b"busy");
            return Ok(());
        };
        match serve_one(&self.shared, &conn, peer).await {
            Ok(()) => {}
            Err(e) => {
                let _ = self.shared.events.send(ServeEvent::Refused {
                    peer,
                    why: e.to_string(),
                });
                conn.close(VarInt::from_u32(CLOSE_PROTOCOL), b"refused");
            }
        }
        Ok(())
    }
}

/// One laptop: its request, then waiting until a manifest lists it.
async fn serve_one(
    shared: &Serving,
    conn: &Connection,
    peer: Option<SocketAddr>,
) -> Result<(), EnrolNetError> {
    let remote = DeviceId(*conn.remote_id().as_bytes());
    let (mut send, mut recv) = tokio::time::timeout(REQUEST_WITHIN, conn.accept_bi())
        .await
        .map_err(|_| EnrolNetError::Unexpected("no stream opened"))?
        .map_err(|e| EnrolNetError::Closed(e.to_string()))?;
    let first = tokio::time::timeout(REQUEST_WITHIN, read_msg(&mut recv, MAX_REQUEST + 1))
        .await
        .map_err(|_| EnrolNetError::Unexpected("no request within the time allowed"))??;
    let Message::Request(request) = first else {
        return Err(EnrolNetError::Unexpected(
            "the first message must be a request",
        ));
    };
    let device = match admit(&request, &remote) {
        Ok(d) => d,
        Err(why) => return Err(refuse(conn, &mut send, why).await),
    };
    let file = {
        let (admin, req) = (shared.admin.clone(), request.clone());
        match tokio::task::spawn_blocking(move || store_request(&admin, &req)).await {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => return Err(refuse(conn, &mut send, e.to_string()).await),
            Err(e) => return Err(refuse(conn, &mut send, e.to_string()).await),
        }
    };
    let _ = shared.events.send(ServeEvent::Received {
        device: request.device.clone(),
        label: request.label.clone(),
        fingerprint: request.fingerprint.clone(),
        peer,
        file,
    });
    let mut current = shared.current.subscribe();
    let until = Instant::now() + WAIT_AT_MOST;
    // Anything the laptop sends from now on is out of turn: reading it on its own task makes
    // the laptop's leaving (or its junk) end the wait.
    let mut reader = tokio::spawn(async move { read_msg(&mut recv, MAX_REQUEST + 1).await });
    loop {
        let now = current.borrow_and_update().clone();
        let decided = now.as_deref().map(|m| (answer(m, &device), m.version()));
        match decided {
            Some((Answer::Send(bytes), version)) => {
                reader.abort();
                write_msg(&mut send, &Message::Manifest(bytes)).await?;
                let _ = send.finish();
                let _ = shared.events.send(ServeEvent::Sent {
                    device: request.device.clone(),
                    version,
                });
                // Let the laptop read it and close; do not wait for ever.
                let _ = tokio::time::timeout(Duration::from_secs(10), conn.closed()).await;
                return Ok(());
            }
            Some((Answer::Refuse(why), _)) => {
                reader.abort();
                return Err(refuse(conn, &mut send, why).await);
            }
            Some((Answer::Wait, _)) | None => {}
        }
        write_msg(&mut send, &Message::Pending).await?;
        if Instant::now() > until {
            reader.abort();
            return Err(EnrolNetError::Timeout(WAIT_AT_MOST.as_secs()));
        }
        tokio::select! {
            changed = current.changed() => {
                if changed.is_err() {
                    reader.abort();
                    return Err(EnrolNetError::Closed("the service stopped".into()));
                }
            }
            _ = tokio::time::sleep(PENDING_EVERY) => {}
            r = &mut reader => {
                return match r {
                    // The laptop went (gave up, or was stopped): its request stays.
                    Ok(Err(EnrolNetError::Closed(_))) => {
                        let _ = shared.events.send(ServeEvent::Left {
                            device: request.device.clone(),
                        });
                        Ok(())
                    }
                    Ok(Err(e)) => Err(e),
                    _ => Err(EnrolNetError::Unexpected("a message out of turn")),
                };
            }
        }
    }
}

/// Tell the laptop why, and give it a moment to read it before the connection closes.
async fn refuse(conn: &Connection, send: &mut SendStream, why: String) -> EnrolNetError {
    if write_msg(send, &Message::Refused(why.clone()))
        .await
        .is_ok()
    {
        let _ = send.finish();
        let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
    }
    EnrolNetError::Refused(why)
}

// ---------------------------------------------------------------------------------------------
// The laptop's side

/// Where the administrator's enrolment service is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `<server id hex>@ip:port`, as `serve-enrol` prints it.
    Addr { id: DeviceId, addr: SocketAddr },
    /// Found on the LAN by mDNS: the first service seen, or the one announcing `near`.
    Lan { near: Option<SocketAddr> },
}

impl FromStr for Target {
    type Err = EnrolNetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("lan") {
            return Ok(Target::Lan { near: None });
        }
        let p: PeerAddr = s
            .parse()
            .map_err(|_| EnrolNetError::Address(s.to_owned()))?;
        Ok(match p.device {
            Some(id) => Target::Addr { id, addr: p.addr },
            None => Target::Lan { near: Some(p.addr) },
        })
    }
}

/// How the laptop's side is getting on, for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Connected to the service at this address.
    Connected(Option<SocketAddr>),
    /// The request is with the administrator, waiting for approval.
    Waiting,
}

/// The device key in a laptop's store (made by [`crate::enrolment::request`]).
pub fn device_key(
    folder: &crate::enrolled::Folder,
    passphrase: &str,
) -> Result<DeviceKey, EnrolError> {
    let path = folder.store_path();
    if !path.exists() {
        return Err(EnrolError::NoStore(folder.dir.clone()));
    }
    Store::open(&path, passphrase)?
        .identity()?
        .ok_or(EnrolError::NoKey)
}

/// Send `request` (made by [`crate::enrolment::request`], for `key`) to the administrator at
/// `to` and wait up to `timeout` in all for the signed manifest; its bytes are returned
/// unverified — install them with [`crate::enrolment::install`] and the typed deployment key's
/// fingerprint. Async: run it on a multi-threaded tokio runtime.
pub async fn send_request(
    key: &DeviceKey,
    to: &Target,
    request: &Request,
    timeout: Duration,
    mut progress: impl FnMut(Progress) + Send,
) -> Result<Vec<u8>, EnrolNetError> {
    let secret = SecretKey::from_bytes(&key.secret_bytes());
    let ep = endpoint(secret, SocketAddr::from(([0, 0, 0, 0], 0))).await?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut delivered = false;
    let mut progress = |p: Progress| {
        delivered |= p == Progress::Waiting;
        progress(p);
    };
    let result = tokio::time::timeout_at(deadline, async {
        let addr = match to {
            Target::Addr { id, addr } => {
                let pk = PublicKey::from_bytes(&id.0)
                    .map_err(|_| EnrolNetError::Address(id.to_hex()))?;
                EndpointAddr::new(pk).with_ip_addr(*addr)
            }
            Target::Lan { near } => {
                let within = DISCOVER_WITHIN.min(timeout);
                tokio::time::timeout(within, discover(&ep, *near))
                    .await
                    .map_err(|_| EnrolNetError::NotFound(within.as_secs()))??
            }
        };
        let shown = addr.ip_addrs().next().copied();
        let conn = ep
            .connect(addr, ALPN)
            .await
            .map_err(|e| EnrolNetError::Connect {
                to: shown.map(|a| a.to_string()).unwrap_or_default(),
                why: e.to_string(),
            })?;
        progress(Progress::Connected(shown));
        let got = exchange(&conn, request, &mut progress).await;
        conn.close(VarInt::from_u32(CLOSE_DONE), b"bye");
        got
    })
    .await;
    // A dial still under way when the time ran out would hold the close for seconds.
    let _ = tokio::time::timeout(Duration::from_secs(1), ep.close()).await;
    match result {
        Ok(r) => r,
        Err(_) if delivered => Err(EnrolNetError::Timeout(timeout.as_secs())),
        Err(_) => Err(EnrolNetError::NoAnswer(timeout.as_secs())),
    }
}

async fn exchange(
    conn: &Connection,
    request: &Request,
    progress: &mut (impl FnMut(Progress) + Send),
) -> Result<Vec<u8>, EnrolNetError> {
    let io = |e: iroh::endpoint::ConnectionError| EnrolNetError::Closed(e.to_string());
    let (mut send, mut recv) = conn.open_bi().await.map_err(io)?;
    write_msg(&mut send, &Message::Request(request.clone())).await?;
    loop {
        match read_msg(&mut recv, MAX_MANIFEST + 1).await? {
            Message::Pending => progress(Progress::Waiting),
            Message::Manifest(bytes) => return Ok(bytes),
            Message::Refused(why) => return Err(EnrolNetError::Refused(why)),
            Message::Request(_) => {
                return Err(EnrolNetError::Unexpected(
                    "a request from the administrator's side",
                ));
            }
        }
    }
}

/// The first enrolment service mDNS finds (the one at `near`, if given).
async fn discover(ep: &Endpoint, near: Option<SocketAddr>) -> Result<EndpointAddr, EnrolNetError> {
    use iroh_mdns_address_lookup::{DiscoveryEvent, MdnsAddressLookup};
    use n0_future::StreamExt;
    let mdns = MdnsAddressLookup::builder()
        .service_name(MDNS_SERVICE)
        .advertise(false)
        .build(ep.id())
        .map_err(|e| EnrolNetError::Mdns(e.to_string()))?;
    ep.address_lookup()
        .map_err(|e| EnrolNetError::Mdns(e.to_string()))?
        .add(mdns.clone());
    let mut events = mdns.subscribe().await;
    let canonical = |a: &SocketAddr| (a.ip().to_canonical(), a.port());
    while let Some(ev) = events.next().await {
        let DiscoveryEvent::Discovered { endpoint_info, .. } = ev else {
            continue;
        };
        let addr = endpoint_info.to_endpoint_addr();
        let fits = match near {
            None => true,
            Some(n) => addr.ip_addrs().any(|a| canonical(a) == canonical(&n)),
        };
        if fits {
            return Ok(addr);
        }
    }
    Err(EnrolNetError::Mdns("the discovery stopped".into()))
}

/// [`send_request`] on a runtime of its own: blocks the calling thread (call it from a worker
/// thread, never from inside a tokio runtime).
pub fn send_request_blocking(
    key: &DeviceKey,
    to: &Target,
    request: &Request,
    timeout: Duration,
    progress: impl FnMut(Progress) + Send,
) -> Result<Vec<u8>, EnrolNetError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| EnrolNetError::Runtime(e.to_string()))?;
    let out = rt.block_on(send_request(key, to, request, timeout, progress));
    rt.shutdown_timeout(Duration::from_secs(1));
    out
}

#[cfg(test)]
#[path = "enrol_net_tests.rs"]
mod tests;
