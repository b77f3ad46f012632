//! The mesh: laptops find each other and converge over iroh, with no server and no internet.
//!
//! A thin adapter: one iroh endpoint per laptop, its identity the device's own ed25519 key,
//! relays, public DNS and port mapping off, a fixed port. One protocol (ALPN `kazashi/sync/1`)
//! is mounted on an iroh [`Router`]. Peers come from typed-in addresses, from the addresses
//! remembered from earlier connections, and from mDNS on the LAN.
//!
//! On each connection the dialer opens one bidirectional stream and both sides speak in
//! length-prefixed frames. What is said is decided by [`crate::link::SyncLink`], the sans-IO
//! policy the drill simulator runs too: the greeting and its checks (another deployment or
//! protocol is *mismatched*, a device the manifest does not enrol or has revoked is *refused*
//! before any of its data is read), the sync session (catalogs, Automerge messages, a push
//! whenever this laptop gains events, a periodic catalog), pings, and a peer silent for ten
//! seconds *lost*. The push goes out on the gossip overlay's eager connections only
//! ([`gossip`], `mesh_gossip.rs`: all of them up to eight peers, a ring and a few chords
//! beyond); the others take new events from their next catalog. Pings and ticks that need
//! nothing from the node are handled without waking it. This module reads frames and feeds
//! them in, writes and closes as told, sleeps until the machine's timer, keeps the status map,
//! and redials with
//! [`crate::link::Backoff`].
//!
//! A second protocol, ALPN `kazashi/roster/1` ([`crate::roster_net`]), serves the roster this
//! laptop runs on to members, and [`Mesh::keep_roster`] fetches a newly pinned one.

use crate::clock::Clock;
use crate::link::{
    Action, Backoff, CLOSE_BYE, CLOSE_PROTOCOL, DIAL_TIMEOUT_MS, Ended, Hello, LinkConfig,
    MAX_ATTEMPTS_IN_FLIGHT, MAX_FRAME, Role, SyncLink,
};
pub use crate::link::{Link, PROTOCOL_VERSION};
use crate::node::{Node, NodeError};
use crate::roster_fetch::{RosterStatus, RosterTarget, short};
use crate::roster_net;
use iroh::endpoint::{Connection, RecvStream, SendStream, VarInt, presets};
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use iroh::{Endpoint, EndpointAddr, PublicKey, SecretKey};
use kazashi_domain::Roster;
use kazashi_domain::ids::RosterHash;
use kazashi_domain::{DeviceId, Event, EventBody, OperatorId, SiteId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

#[path = "mesh_gate.rs"]
mod gate;
pub use gate::{MAX_UNGREETED, MAX_UNGREETED_PER_ADDR, MAX_UNGREETED_PER_DEVICE};
#[path = "mesh_frames.rs"]
mod frames;
#[path = "mesh_gossip.rs"]
pub mod gossip;
#[path = "mesh_rejoin.rs"]
mod rejoin;
pub use frames::{
    ALL_FRAME_BYTES, CONNECTION_WINDOW, DEVICE_FRAME_BYTES, MAX_LIVE_PER_DEVICE, STREAM_WINDOW,
};
use frames::{FrameError, read_frame, write_frame};

/// The close code for a connection turned away because too many are waiting to greet.
pub const CLOSE_BUSY: u32 = 4005;

/// The sync protocol's ALPN.
pub const ALPN: &[u8] = b"kazashi/sync/1";
/// The default UDP port.
pub const DEFAULT_PORT: u16 = 47470;

/// Where to find a peer: an address, with the device's id if known (`<hex>@ip:port`).
/// Without the id, every enrolled device is tried at that address in turn.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PeerAddr {
    pub device: Option<DeviceId>,
    pub addr: SocketAddr,
}

/// Why a peer address could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PeerAddrError {
    #[error("not an address (expected ip:port or <device hex>@ip:port): {0}")]
    Address(String),
    #[error("not a device id (64 hex digits): {0}")]
    Device(String),
}

impl FromStr for PeerAddr {
    type Err = PeerAddrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (device, addr) = match s.split_once('@') {
            Some((d, a)) => (
                Some(DeviceId::from_hex(d).map_err(|_| PeerAddrError::Device(d.to_owned()))?),
                a,
            ),
            None => (None, s),
        };
        let addr = addr
            .parse()
            .map_err(|_| PeerAddrError::Address(addr.to_owned()))?;
        Ok(PeerAddr { device, addr })
    }
}

impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.device {
            Some(d) => write!(f, "{d}@{}", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

/// How the mesh runs.
#[derive(Debug, Clone)]
pub struct MeshConfig {
    /// The UDP address to bind (a fixed port, so that others can type it in).
    pub bind: SocketAddr,
    /// Typed-in peers, dialled and redialled.
    pub peers: Vec<PeerAddr>,
    /// Find and announce laptops on the LAN by mDNS.
    pub mdns: bool,
    /// The periodic catalog exchange that catches anything missed.
    pub anti_entropy: Duration,
    pub ping: Duration,
    /// A connected peer silent this long is lost.
    pub lost_after: Duration,
}

impl MeshConfig {
    /// The connection policy's timings.
    pub fn link(&self) -> LinkConfig {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        LinkConfig {
            anti_entropy_ms: ms(self.anti_entropy),
            ping_ms: ms(self.ping),
            lost_after_ms: ms(self.lost_after),
            ..LinkConfig::default()
        }
    }
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            peers: Vec::new(),
            mdns: true,
            anti_entropy: Duration::from_secs(10),
            ping: Duration::from_secs(2),
            lost_after: Duration::from_secs(10),
        }
    }
}

/// One peer, for the status view.
#[derive(Debug, Clone, Serialize)]
pub struct PeerStatus {
    /// The device id in hex.
    pub device: String,
    /// The manifest's label for it (受付 name), if enrolled.
    pub label: Option<String>,
    pub link: Link,
    /// Why it is not connected, in words.
    pub reason: Option<String>,
    pub addr: Option<String>,
    /// Milliseconds since anything was heard from it.
    pub last_heard_ms: Option<u64>,
    /// Events that came in from it.
    pub events_in: u64,
    /// Shards whose contents differ between it and this laptop, as of its last catalog: the
    /// work pending between the two (0 when in step).
    pub shards_differing: usize,
}

/// When each site was last heard of (its newest event's time), for "last event from site X
/// 4 minutes ago".
#[derive(Debug, Clone, Serialize)]
pub struct SiteStaleness {
    pub site: String,
    pub last_event_ms_ago: u64,
}

/// The mesh as a whole.
#[derive(Debug, Clone, Serialize)]
pub struct MeshStatus {
    pub device: String,
    pub addrs: Vec<String>,
    pub events: usize,
    /// [`Node::state_digest`] in hex: equal on two laptops holding the same events.
    pub digest: String,
    pub peers: Vec<PeerStatus>,
    pub sites: Vec<SiteStaleness>,
    /// UDP bytes this laptop has sent on all its connections since it started (QUIC headers,
    /// acknowledgements and retransmissions included).
    pub wire_bytes_out: u64,
    /// The version of the manifest in force (it changes when a newer one is adopted).
    pub manifest_version: u32,
    /// The deployment's id, first eight hex digits.
    pub deployment: String,
    /// The roster in use and any transfer of the pinned one (`crate::roster_net`).
    pub roster: RosterStatus,
}

/// Why the mesh could not start.
#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    #[error("cannot bind the network endpoint on {addr}: {why}")]
    Bind { addr: SocketAddr, why: String },
    #[error("mDNS: {0}")]
    Mdns(String),
    #[error(transparent)]
    Node(#[from] NodeError),
}

#[derive(Debug)]
struct PeerState {
    link: Link,
    reason: Option<String>,
    addr: Option<SocketAddr>,
    last_heard: Option<Instant>,
    events_in: u64,
    /// Shards that differed as of its last catalog, for `shards_differing`.
    differing: usize,
    /// Live connections to it (a peer may dial us while we dial it).
    connections: usize,
}

struct Shared<C: Clock> {
    node: Mutex<Node<C>>,
    peers: Mutex<BTreeMap<DeviceId, PeerState>>,
    /// Bumped whenever this laptop gains events: the eager connections push them.
    changed: watch::Sender<u64>,
    /// Bumped when this laptop adopts a newer manifest: every connection passes it on.
    manifests: watch::Sender<u64>,
    /// The gossip overlay: which connections push at once (`mesh_gossip.rs`).
    gossip: Mutex<Gossip>,
    config: MeshConfig,
    me: DeviceId,
    /// The zero of the connection machines' time.
    epoch: Instant,
    /// Addresses being dialled (so one is not dialled twice).
    dialling: Mutex<BTreeSet<PeerAddr>>,
    /// Rejoining after an outage: probes and kicks across the dial loops (`mesh_rejoin.rs`).
    kicks: Arc<rejoin::Kicks>,
    /// UDP bytes sent on every connection so far.
    wire_out: AtomicU64,
    /// The roster transfer's progress.
    roster: Mutex<RosterStatus>,
    /// Accepted connections not yet greeted (`mesh_gate.rs`): strangers, enrolled devices.
    gate: gate::Gate,
    members_gate: gate::Gate<DeviceId>,
    /// What greeted peers' frames may hold (`mesh_frames.rs`).
    frames: frames::FrameBudget,
}

impl<C: Clock> Shared<C> {
    fn node(&self) -> MutexGuard<'_, Node<C>> {
        // A panic while holding the lock would be a bug; the data behind it is still the
        // durable store's, so carry on with it.
        self.node.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn peers(&self) -> MutexGuard<'_, BTreeMap<DeviceId, PeerState>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn set_link(&self, d: DeviceId, link: Link, reason: Option<String>, addr: Option<SocketAddr>) {
        let mut peers = self.peers();
        let p = peers.entry(d).or_insert(PeerState {
            link,
            reason: None,
            addr: None,
            last_heard: None,
            events_in: 0,
            differing: 0,
            connections: 0,
        });
        // A second connection's end does not make a peer lost while another is live.
        if link != Link::Connected && p.connections > 0 && p.link == Link::Connected {
            return;
        }
        p.link = link;
        p.reason = reason;
        if addr.is_some() {
            p.addr = addr;
        }
    }
    fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
    /// A newer manifest is in force: the overlay is drawn again over its devices, and every
    /// connection passes it on (and closes if it revokes its peer).
    fn adopted(&self) {
        let enrolled = enrolled_devices(&self.node());
        {
            let mut g = self.gossip.lock().unwrap_or_else(|p| p.into_inner());
            g.enrolled = enrolled;
            g.eager = None;
        }
        self.manifests.send_modify(|v| *v = v.wrapping_add(1));
        self.bump();
    }
    /// The connected peers changed: the overlay is drawn again when next asked.
    fn regossip(&self) {
        self.gossip.lock().unwrap_or_else(|p| p.into_inner()).eager = None;
    }
    /// Whether new events go to `remote` at once (an eager link of the overlay).
    fn eager_to(&self, remote: &DeviceId) -> bool {
        let mut g = self.gossip.lock().unwrap_or_else(|p| p.into_inner());
        if g.eager.is_none() {
            let connected: BTreeSet<DeviceId> = self
                .peers()
                .iter()
                .filter(|(_, p)| p.link == Link::Connected)
                .map(|(d, _)| *d)
                .collect();
            g.eager = Some(gossip::eager_peers(&self.me, &g.enrolled, &connected));
        }
        g.eager.as_ref().is_some_and(|e| e.contains(remote))
    }
    /// Milliseconds since the mesh started: the connection machines' time.
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
    /// The instant a machine's time stands for.
    fn instant(&self, at: u64) -> Instant {
        self.epoch + Duration::from_millis(at)
    }
    /// Run one machine call with the node, off the async threads.
    fn with_node<R>(&self, f: impl FnOnce(&mut Node<C>) -> R) -> R {
        tokio::task::block_in_place(|| f(&mut self.node()))
    }
}

/// A running mesh around one node.
pub struct Mesh<C: Clock> {
    shared: Arc<Shared<C>>,
    router: Router,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn public_key(d: &DeviceId) -> Option<PublicKey> {
    PublicKey::from_bytes(&d.0).ok()
}

const SETTING_PEERS: &str = "mesh_peers";

impl<C: Clock + Send + 'static> Mesh<C> {
    /// Bind the endpoint, mount the protocols and start dialling (and, if the node has a
    /// roster target, keep it on the pinned roster: [`Mesh::keep_roster`]). Must run inside a
    /// multi-threaded tokio runtime.
    pub async fn start(node: Node<C>, config: MeshConfig) -> Result<Arc<Self>, MeshError> {
        let secret = SecretKey::from_bytes(&node.secret_key_bytes());
        let me = node.device();
        let roster_in_use = short(&node.station().deployment().roster_hash());
        let roster_target = node.roster_target().cloned();
        let remembered: Vec<PeerAddr> = node
            .setting(SETTING_PEERS)?
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let bind_err = |why: String| MeshError::Bind {
            addr: config.bind,
            why,
        };
        let endpoint = Endpoint::builder(presets::Minimal)
            .secret_key(secret)
            .alpns(vec![ALPN.to_vec()])
            .transport_config(frames::transport_config())
            .clear_ip_transports()
            .bind_addr(config.bind)
            .map_err(|e| bind_err(e.to_string()))?
            .bind()
            .await
            .map_err(|e| bind_err(e.to_string()))?;
        let (changed, _) = watch::channel(0u64);
        let (manifests, _) = watch::channel(0u64);
        let gossip = Mutex::new(Gossip {
            enrolled: enrolled_devices(&node),
            eager: None,
        });
        let shared = Arc::new(Shared {
            node: Mutex::new(node),
            peers: Mutex::new(BTreeMap::new()),
            changed,
            manifests,
            gossip,
            config: config.clone(),
            me,
            epoch: Instant::now(),
            dialling: Mutex::new(BTreeSet::new()),
            kicks: Arc::new(rejoin::Kicks::new(jitter_seed(&me))),
            wire_out: AtomicU64::new(0),
            roster: Mutex::new(RosterStatus {
                state: "in_use".into(),
                in_use: roster_in_use,
                ..RosterStatus::default()
            }),
            gate: gate::strangers(),
            members_gate: gate::members(),
            frames: frames::FrameBudget::default(),
        });
        // A stranger's address turned away a moment ago is ignored before the TLS handshake.
        let strangers = shared.gate.clone();
        let router = Router::builder(endpoint.clone())
            .incoming_filter(Arc::new(move |incoming| {
                use iroh::endpoint::IncomingAddr;
                use iroh::protocol::IncomingFilterOutcome;
                match incoming.remote_addr() {
                    IncomingAddr::Ip(a) if strangers.cooling(&Some(a.ip().to_canonical())) => {
                        IncomingFilterOutcome::Ignore
                    }
                    _ => IncomingFilterOutcome::Accept,
                }
            }))
            .accept(
                ALPN,
                Handler {
                    shared: shared.clone(),
                },
            )
            .accept(roster_net::ALPN, roster_net::Server::new(shared.clone()))
            .spawn();
        let kicks = tokio::spawn(shared.kicks.clone().run(endpoint.clone()));
        let mesh = Arc::new(Mesh {
            shared,
            router,
            tasks: Mutex::new(vec![kicks]),
        });
        let mut peers: Vec<PeerAddr> = config.peers.clone();
        for p in remembered {
            if !peers.contains(&p) {
                peers.push(p);
            }
        }
        for p in peers {
            mesh.connect(p);
        }
        if let Some(t) = roster_target {
            mesh.keep_roster(t);
        }
        if config.mdns {
            mesh.start_mdns(&endpoint)?;
        }
        Ok(mesh)
    }

    /// Accepted connections waiting for their greeting now, and those turned away so far
    /// because too many were (`MAX_UNGREETED`, `MAX_UNGREETED_PER_ADDR`,
    /// `MAX_UNGREETED_PER_DEVICE`).
    pub fn ungreeted(&self) -> (usize, u64) {
        let (s, m) = (&self.shared.gate, &self.shared.members_gate);
        (s.waiting() + m.waiting(), s.refused() + m.refused())
    }

    /// Dial a peer (and keep redialling it while the mesh runs).
    pub fn connect(self: &Arc<Self>, to: PeerAddr) {
        {
            let mut d = self
                .shared
                .dialling
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if !d.insert(to.clone()) {
                return;
            }
        }
        let endpoint = self.router.endpoint().clone();
        let shared = self.shared.clone();
        let task = tokio::spawn(dial_loop(shared, endpoint, to));
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
    }

    fn start_mdns(self: &Arc<Self>, endpoint: &Endpoint) -> Result<(), MeshError> {
        use iroh_mdns_address_lookup::{DiscoveryEvent, MdnsAddressLookup};
        use n0_future::StreamExt;
        let mdns = MdnsAddressLookup::builder()
            .service_name("kazashi")
            .build(endpoint.id())
            .map_err(|e| MeshError::Mdns(e.to_string()))?;
        endpoint
            .address_lookup()
            .map_err(|e| MeshError::Mdns(e.to_string()))?
            .add(mdns.clone());
        let me = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            let mut events = mdns.subscribe().await;
            while let Some(ev) = events.next().await {
                let DiscoveryEvent::Discovered { endpoint_info, .. } = ev else {
                    continue;
                };
                let Some(mesh) = me.upgrade() else { break };
                let device = DeviceId(*endpoint_info.endpoint_id.as_bytes());
                // Only enrolled laptops, and only one side dials (the lesser id).
                let enrolled = mesh.shared.node().membership().device(&device).is_some();
                if !enrolled || device == mesh.shared.me {
                    continue;
                }
                // Evidence the network is there: the peers lost meanwhile are dialled again.
                mesh.shared.kicks.announced(device);
                if mesh.shared.me > device {
                    continue;
                }
                let addr = endpoint_info.to_endpoint_addr();
                if let Some(addr) = addr.ip_addrs().next() {
                    mesh.connect(PeerAddr {
                        device: Some(device),
                        addr: *addr,
                    });
                }
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
        Ok(())
    }

    /// Keep the station on the roster the manifest in force pins: when a newer manifest pins
    /// another, fetch it from the connected members, write it to `target` and switch
    /// (`crate::roster_net::keep_pinned`).
    pub fn keep_roster(self: &Arc<Self>, target: RosterTarget) {
        let task = tokio::spawn(roster_net::keep_pinned(
            self.shared.clone(),
            self.router.endpoint().clone(),
            target,
        ));
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
    }

    /// Write a new event here and announce it to every peer.
    pub fn record(&self, operator: OperatorId, body: EventBody) -> Result<Event, NodeError> {
        let e = {
            let mut node = self.shared.node();
            tokio::task::block_in_place(|| node.record(operator, body))?
        };
        self.shared.bump();
        Ok(e)
    }

    /// Work on the node directly (reads, bundles, alerts). Call [`Mesh::announce`] after
    /// anything that adds events.
    pub fn with_node<R>(&self, f: impl FnOnce(&mut Node<C>) -> R) -> R {
        let mut node = self.shared.node();
        tokio::task::block_in_place(|| f(&mut node))
    }

    /// Tell every peer this laptop has new events (after a bundle import, say).
    pub fn announce(&self) {
        self.shared.bump();
    }

    /// A receiver that wakes whenever this laptop gains events (its own or a peer's): the
    /// GUI's cue to redraw, a benchmark's to look.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.shared.changed.subscribe()
    }

    /// This laptop's address for others to type in: `<device hex>@ip:port` per bound socket.
    pub fn addrs(&self) -> Vec<PeerAddr> {
        self.router
            .endpoint()
            .bound_sockets()
            .into_iter()
            .map(|addr| PeerAddr {
                device: Some(self.shared.me),
                addr,
            })
            .collect()
    }

    /// The mesh and every peer met, now.
    pub fn status(&self) -> MeshStatus {
        let (events, digest, sites, labels, manifest_version, deployment) = {
            let mut node = self.shared.node();
            let now = node.station().clock().now_ms();
            let sites: Vec<SiteStaleness> = node
                .state()
                .last_event_per_site(None)
                .into_iter()
                .map(|(site, at): (SiteId, _)| SiteStaleness {
                    site: site.to_string(),
                    last_event_ms_ago: now.saturating_sub(at.wall_ms),
                })
                .collect();
            let labels: BTreeMap<DeviceId, String> = node
                .membership()
                .manifest()
                .devices
                .iter()
                .map(|d| (d.device, d.label.to_string()))
                .collect();
            let digest = hex::encode(node.state_digest());
            let members = node.membership();
            let (version, deployment) = (members.version(), members.deployment().id().short());
            (
                node.state().len(),
                digest,
                sites,
                labels,
                version,
                deployment,
            )
        };
        let peers = self
            .shared
            .peers()
            .iter()
            .map(|(d, p)| PeerStatus {
                device: d.to_hex(),
                label: labels.get(d).cloned(),
                link: p.link,
                reason: p.reason.clone(),
                addr: p.addr.map(|a| a.to_string()),
                last_heard_ms: p.last_heard.map(|t| t.elapsed().as_millis() as u64),
                events_in: p.events_in,
                shards_differing: p.differing,
            })
            .collect();
        MeshStatus {
            device: self.shared.me.to_hex(),
            addrs: self.addrs().iter().map(ToString::to_string).collect(),
            events,
            digest,
            peers,
            sites,
            wire_bytes_out: self.shared.wire_out.load(Ordering::Relaxed),
            manifest_version,
            deployment,
            roster: self
                .shared
                .roster
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }

    /// Stop: close every connection and the endpoint.
    pub async fn shutdown(&self) {
        let tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            t.abort();
        }
        let _ = self.router.shutdown().await;
    }
}

impl<C: Clock + Send + 'static> roster_net::RosterHost for Shared<C> {
    fn admits(&self, device: &DeviceId) -> bool {
        let node = self.node();
        let m = node.membership();
        m.device(device).is_some() && m.revoked_from(device).is_none()
    }
    fn served_roster(&self) -> Option<(RosterHash, Arc<Roster>)> {
        let node = self.node();
        let s = node.station();
        Some((s.deployment().roster_hash(), s.roster_arc()))
    }
    fn with_store(&self, f: &mut dyn FnMut(&crate::Store)) {
        f(self.node().store())
    }
    fn progress(&self) -> MutexGuard<'_, RosterStatus> {
        self.roster.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<C: Clock + Send + 'static> roster_net::PinnedHost for Shared<C> {
    fn wanted(&self) -> Option<RosterHash> {
        self.node().roster_wanted()
    }
    fn connected(&self) -> Vec<EndpointAddr> {
        self.peers()
            .iter()
            .filter(|(_, p)| p.link == Link::Connected)
            .filter_map(|(d, p)| {
                let a = EndpointAddr::new(public_key(d)?);
                Some(match p.addr {
                    Some(ip) => a.with_ip_addr(ip),
                    None => a,
                })
            })
            .collect()
    }
    fn switch(&self, roster: Arc<Roster>) -> Result<(), String> {
        let r = self
            .node()
            .replace_roster(roster)
            .map_err(|e| e.to_string());
        self.bump();
        r
    }
    fn today(&self) -> Option<kazashi_domain::CivilDate> {
        kazashi_domain::CivilDate::jst_of(self.node().station().clock().now_ms())
    }
}

#[derive(Clone)]
struct Handler<C: Clock> {
    shared: Arc<Shared<C>>,
}

impl<C: Clock> std::fmt::Debug for Handler<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("kazashi sync handler")
    }
}

impl<C: Clock + Send + 'static> ProtocolHandler for Handler<C> {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        use roster_net::RosterHost as _;
        let remote = DeviceId(*connection.remote_id().as_bytes());
        // Enrolled devices and strangers wait in separate pools: a flood of strangers never
        // keeps a laptop of the deployment out.
        let slot = if self.shared.admits(&remote) {
            self.shared.members_gate.enter(remote).map(Slot::Member)
        } else {
            let from = remote_ip(&connection).map(|a| a.to_canonical());
            self.shared.gate.enter(from).map(Slot::Stranger)
        };
        let Ok(slot) = slot else {
            close(
                &connection,
                CLOSE_BUSY,
                "busy: too many connections waiting to greet",
            );
            return Ok(());
        };
        let _ = run_peer(self.shared.clone(), connection, None, Some(slot)).await;
        Ok(())
    }
}

/// Dial `to` until the mesh stops: each time the connection ends, wait and dial again, as
/// [`crate::redial`]'s back-off says (its probe is off for the mesh; at most
/// `MAX_ATTEMPTS_IN_FLIGHT` attempts wait out their timeout at once).
async fn dial_loop<C: Clock + Send + 'static>(
    shared: Arc<Shared<C>>,
    endpoint: Endpoint,
    to: PeerAddr,
) {
    let mut backoff = match to.device {
        Some(_) => Backoff::mesh().seeded(jitter_seed(&shared.me)),
        None => Backoff::mesh().without_probe(),
    };
    // Connections the rejoin policy's probes and kicks made for this device (`mesh_rejoin.rs`).
    let mut handed = to.device.map(|d| shared.kicks.register(d, to.addr));
    let origin = Instant::now();
    let elapsed = move || u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut attempts = tokio::task::JoinSet::new();
    loop {
        let started = elapsed();
        if attempts.len() < MAX_ATTEMPTS_IN_FLIGHT {
            dial_once(&shared, &endpoint, &to, &mut attempts);
        }
        let wake = origin + Duration::from_millis(backoff.next_start(started));
        let met = loop {
            tokio::select! {
                r = attempts.join_next(), if !attempts.is_empty() => {
                    if let Some(Ok(Some(found))) = r {
                        break Some(found);
                    }
                }
                Some(conn) = async {
                    match handed.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    let device = DeviceId(*conn.remote_id().as_bytes());
                    break Some((device, conn));
                }
                () = tokio::time::sleep_until(wake.into()) => break None,
            }
        };
        let Some((device, conn)) = met else {
            // Nobody answered yet: the next attempt (the earlier ones keep trying).
            continue;
        };
        attempts.abort_all();
        let wait = backoff.met();
        remember(
            &shared,
            PeerAddr {
                device: Some(device),
                addr: to.addr,
            },
        );
        let _ = run_peer(shared.clone(), conn, Some(to.addr), None).await;
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}

/// A seed for a loop's jitter: from the OS, or the device's bytes if the draw fails (the jitter
/// only spreads the loops).
fn jitter_seed(me: &DeviceId) -> u64 {
    let mut seed = [0u8; 8];
    if getrandom::fill(&mut seed).is_err() {
        seed.copy_from_slice(me.0.get(..8).unwrap_or(&[0; 8]));
    }
    u64::from_le_bytes(seed)
}

/// One dial attempt at `to`, as tasks in `attempts` that give up after [`DIAL_TIMEOUT_MS`]:
/// the device if known, else every enrolled device not connected.
fn dial_once<C: Clock + Send + 'static>(
    shared: &Arc<Shared<C>>,
    endpoint: &Endpoint,
    to: &PeerAddr,
    attempts: &mut tokio::task::JoinSet<Option<(DeviceId, Connection)>>,
) {
    let candidates: Vec<DeviceId> = match to.device {
        Some(d) => vec![d],
        None => {
            // Not the laptops already connected: iroh reaches a known peer over the path it
            // has, whatever address is given, so that "dial" would only find them again.
            let connected: BTreeSet<DeviceId> = shared
                .peers()
                .iter()
                .filter(|(_, p)| p.link == Link::Connected)
                .map(|(d, _)| *d)
                .collect();
            shared
                .node()
                .membership()
                .manifest()
                .devices
                .iter()
                .map(|d| d.device)
                .filter(|d| *d != shared.me && !connected.contains(d))
                .collect()
        }
    };
    // Without a device id, every enrolled device is tried at the address at once; the TLS
    // handshake admits only the one that holds the key.
    for device in candidates {
        let Some(pk) = public_key(&device) else {
            continue;
        };
        let addr = EndpointAddr::new(pk).with_ip_addr(to.addr);
        let endpoint = endpoint.clone();
        let (target, by_address) = (to.addr, to.device.is_none());
        attempts.spawn(async move {
            let c = tokio::time::timeout(
                Duration::from_millis(DIAL_TIMEOUT_MS),
                endpoint.connect(addr, ALPN),
            );
            match c.await {
                // Dialling by address alone, iroh may reach a laptop it already knows over the
                // path it has, whatever address was given: only a connection that runs over
                // the address typed in found the laptop that is there.
                Ok(Ok(conn)) if by_address && !runs_over(&conn, target) => {
                    close(&conn, CLOSE_BYE, "not the laptop at this address");
                    None
                }
                Ok(Ok(conn)) => Some((device, conn)),
                _ => None,
            }
        });
    }
}

/// The overlay's inputs kept between draws, and the last draw.
struct Gossip {
    /// The devices the manifest in force enrols, not revoked.
    enrolled: BTreeSet<DeviceId>,
    /// The eager peers, drawn again after the connected peers or the manifest changed.
    eager: Option<BTreeSet<DeviceId>>,
}

/// The devices the manifest in force enrols and has not revoked.
fn enrolled_devices<C: Clock>(node: &Node<C>) -> BTreeSet<DeviceId> {
    let m = node.membership();
    m.manifest()
        .devices
        .iter()
        .map(|d| d.device)
        .filter(|d| m.revoked_from(d).is_none())
        .collect()
}

/// Keep a peer's address for the next start.
fn remember<C: Clock>(shared: &Shared<C>, p: PeerAddr) {
    let node = shared.node();
    let mut list: Vec<PeerAddr> = node
        .setting(SETTING_PEERS)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if list.contains(&p) {
        return;
    }
    list.retain(|q| q.device != p.device);
    list.push(p);
    if let Ok(b) = serde_json::to_vec(&list) {
        let _ = node.set_setting(SETTING_PEERS, &b);
    }
}

/// An accepted connection's place in the greeting gate, held until it has greeted.
#[derive(Debug)]
enum Slot {
    Stranger(#[allow(dead_code)] gate::Slot),
    Member(#[allow(dead_code)] gate::Slot<DeviceId>),
}

/// The address the connection's selected path runs to.
fn remote_ip(conn: &Connection) -> Option<std::net::IpAddr> {
    conn.paths()
        .iter()
        .filter(|p| p.is_selected())
        .find_map(|p| match p.remote_addr() {
            iroh::TransportAddr::Ip(a) => Some(a.ip()),
            _ => None,
        })
}

/// Whether the connection's selected path goes to `addr`.
fn runs_over(conn: &Connection, addr: SocketAddr) -> bool {
    let canonical = |a: SocketAddr| (a.ip().to_canonical(), a.port());
    conn.paths().iter().any(|p| {
        p.is_selected()
            && matches!(p.remote_addr(), iroh::TransportAddr::Ip(a) if canonical(*a) == canonical(addr))
    })
}

fn close(conn: &Connection, code: u32, reason: &str) {
    conn.close(VarInt::from_u32(code), reason.as_bytes());
}

/// How a connection ended, as the machine is told it.
fn ended(conn: &Connection, e: &FrameError) -> Ended {
    use iroh::endpoint::ConnectionError;
    match conn.close_reason() {
        Some(ConnectionError::ApplicationClosed(c)) => Ended::ByPeer {
            code: c.error_code.into_inner(),
            reason: String::from_utf8_lossy(&c.reason).into_owned(),
        },
        Some(other) => Ended::Dropped(format!("{other} ({e})")),
        None => Ended::Dropped(e.to_string()),
    }
}

/// One connection's I/O around its machine: performs what the machine says.
struct Wire<'a, C: Clock> {
    shared: &'a Shared<C>,
    conn: &'a Connection,
    send: SendStream,
    remote: DeviceId,
    dialled: Option<SocketAddr>,
    /// When the machine wants its next tick.
    wake: Option<Instant>,
    /// Counted in the peer's live connections.
    connected: bool,
    /// UDP bytes of this connection already added to the mesh's total.
    counted: u64,
    /// Reported greeted to the rejoin policy (and not yet as ended).
    greeted: bool,
}

impl<C: Clock> Wire<'_, C> {
    async fn perform(&mut self, actions: Vec<Action>) -> Result<(), FrameError> {
        for action in actions {
            match action {
                Action::Send { kind, body } => write_frame(&mut self.send, kind, &body).await?,
                Action::Close { code, reason } => close(self.conn, code, reason),
                Action::Timer { at } => self.wake = Some(self.shared.instant(at)),
                Action::Status { link, reason } => self.status(link, reason),
                Action::Gained { ids } => {
                    if let Some(p) = self.shared.peers().get_mut(&self.remote) {
                        p.events_in += ids.len() as u64;
                    }
                    // Their writers are on the network: a lost one is redialled at once.
                    let writers: std::collections::BTreeSet<DeviceId> =
                        self.shared.with_node(|n| {
                            ids.iter()
                                .filter_map(|id| n.state().event(id).map(|e| e.device()))
                                .collect()
                        });
                    self.shared.kicks.heard_from(&writers);
                    self.shared.bump();
                }
                Action::Differing(n) => {
                    if let Some(p) = self.shared.peers().get_mut(&self.remote) {
                        p.differing = n;
                    }
                }
                // The status that follows says why.
                Action::Failed(_) => {}
                // A newer manifest is in force: every connection passes it on (and closes
                // if it revokes its peer).
                Action::Adopted { .. } => self.shared.adopted(),
            }
        }
        Ok(())
    }

    fn status(&mut self, link: Link, reason: Option<String>) {
        if link == Link::Connected {
            self.shared
                .set_link(self.remote, Link::Connected, None, self.dialled);
            if let Some(p) = self.shared.peers().get_mut(&self.remote) {
                p.connections += 1;
                p.last_heard = Some(Instant::now());
            }
            self.connected = true;
            self.shared.regossip();
            if !self.greeted {
                self.greeted = true;
                self.shared.kicks.greeted(self.remote);
            }
            return;
        }
        if self.connected {
            if let Some(p) = self.shared.peers().get_mut(&self.remote) {
                p.connections = p.connections.saturating_sub(1);
            }
            self.connected = false;
        }
        self.ended();
        self.shared
            .set_link(self.remote, link, reason, self.dialled);
        self.shared.regossip();
    }

    /// Tell the rejoin policy this connection ended, if it was greeted.
    fn ended(&mut self) {
        if self.greeted {
            self.greeted = false;
            self.shared.kicks.ended(self.remote);
        }
    }

    /// Add the UDP bytes this connection has sent since the last count to the mesh's total.
    fn count_sent(&mut self) {
        let sent = self.conn.stats().udp_tx.bytes;
        self.shared
            .wire_out
            .fetch_add(sent.saturating_sub(self.counted), Ordering::Relaxed);
        self.counted = self.counted.max(sent);
    }
}

/// One connection, dialled (`dialled` holds the address) or accepted (holding its `slot` in
/// the greeting gate until it has greeted), until it ends.
async fn run_peer<C: Clock + Send + 'static>(
    shared: Arc<Shared<C>>,
    conn: Connection,
    dialled: Option<SocketAddr>,
    slot: Option<Slot>,
) -> Result<(), FrameError> {
    let remote = DeviceId(*conn.remote_id().as_bytes());
    // A peer lost before is back: the other lost peers are dialled at once (`mesh_rejoin.rs`).
    shared.kicks.opened(remote);
    let io = |e: iroh::endpoint::ConnectionError| FrameError::Io(e.to_string());
    // A peer that never opens its stream is given no longer than one that never greets.
    let greeting = Duration::from_millis(shared.config.link().greeting_ms);
    let streams = match dialled {
        Some(_) => conn.open_bi().await.map_err(io),
        None => match tokio::time::timeout(greeting, conn.accept_bi()).await {
            Ok(streams) => streams.map_err(io),
            Err(_) => {
                close(&conn, CLOSE_PROTOCOL, "no greeting in time");
                Err(FrameError::Io("no greeting in time".into()))
            }
        },
    };
    let (send, mut recv) = match streams {
        Ok(s) => s,
        Err(e) => {
            shared.kicks.not_greeted(remote);
            return Err(e);
        }
    };
    let role = match dialled {
        Some(_) => Role::Dialled,
        None => Role::Accepted,
    };
    // The manifest in force now (version and digest): a running node adopts newer ones from
    // its peers.
    let hello = shared.with_node(|n| Hello::of(n));
    let (mut link, mut first) =
        SyncLink::open(hello, role, remote, shared.config.link(), shared.now());
    // A peer met before gets the session's opening behind the greeting (dialler only).
    first.extend(shared.with_node(|n| link.first_flight(n, shared.now())));
    let mut wire = Wire {
        shared: &shared,
        conn: &conn,
        send,
        remote,
        dialled,
        wake: None,
        connected: false,
        counted: 0,
        greeted: false,
    };
    let mut result = wire.perform(first).await;
    // The greeting is read here, under its own size limit; nothing more is read until the
    // machine has checked it.
    while result.is_ok() && link.greeting() {
        let wake = wire.wake.unwrap_or_else(Instant::now);
        let actions = tokio::select! {
            f = read_frame(&mut recv, link.max_frame(), None) => match f {
                Ok(f) => shared.with_node(|n| link.frame(n, f.kind, &f.body, shared.now())),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            },
            _ = tokio::time::sleep_until(wake.into()) => {
                shared.with_node(|n| link.tick(n, shared.now()))
            }
        };
        result = wire.perform(actions).await;
    }
    drop(slot);
    if result.is_ok() && link.is_live() {
        // Greeted: its frames are paid for from its device's budget, shared by all the
        // device's connections, and the device may keep only a few at once.
        match shared.frames.connection(remote) {
            Ok(budget) => {
                result = session(&shared, &mut wire, &mut link, recv, budget).await;
            }
            Err(frames::Busy) => {
                close(
                    &conn,
                    CLOSE_BUSY,
                    "busy: too many connections from this device",
                );
                result = Err(FrameError::Io(
                    "too many connections from this device".into(),
                ));
            }
        }
    }
    if let Err(e) = &result {
        let actions = shared.with_node(|n| link.closed(n, ended(&conn, e)));
        // Only the status: the connection is gone.
        let _ = wire.perform(actions).await;
    }
    wire.count_sent();
    if !wire.greeted {
        shared.kicks.not_greeted(remote);
    }
    wire.ended();
    result
}

/// The greeted connection: frames, local changes and the machine's timer, until it ends.
async fn session<C: Clock + Send + 'static>(
    shared: &Arc<Shared<C>>,
    wire: &mut Wire<'_, C>,
    link: &mut SyncLink,
    mut recv: RecvStream,
    budget: frames::DeviceBudget,
) -> Result<(), FrameError> {
    // Frames are read on their own task: a read cut short by another branch would lose data.
    // Bounded in bytes: each frame is paid for from the device's and the laptop's frame budget
    // before its body is read, and holds it until it has been handled (`mesh_frames.rs`).
    let (tx, mut rx) = mpsc::channel::<Result<frames::Frame, FrameError>>(64);
    let budget = Arc::new(budget);
    let strikes = budget.clone();
    let reader = tokio::spawn(async move {
        loop {
            // A device whose messages were refused waits before its next frame is read.
            budget.pause().await;
            let f = read_frame(&mut recv, MAX_FRAME, Some(&budget)).await;
            let end = f.is_err();
            if tx.send(f).await.is_err() || end {
                break;
            }
        }
    });
    let mut changed = shared.changed.subscribe();
    let mut manifests = shared.manifests.subscribe();
    let remote = link.remote();
    let result = loop {
        wire.count_sent();
        if link.is_closed() {
            break Ok(());
        }
        let wake = wire
            .wake
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let actions = tokio::select! {
            frame = rx.recv() => match frame {
                Some(Ok(f)) => {
                    if let Some(p) = shared.peers().get_mut(&remote) {
                        p.last_heard = Some(Instant::now());
                    }
                    // The frame's payment is given back when `f` drops, once handled.
                    let refused = link.refusals();
                    // A ping needs nothing from the node.
                    let actions = match link.ping(f.kind, shared.now()) {
                        Some(actions) => actions,
                        None => shared.with_node(|n| link.frame(n, f.kind, &f.body, shared.now())),
                    };
                    if link.refusals() > refused {
                        strikes.refused();
                    }
                    actions
                }
                Some(Err(e)) => {
                    // A frame declared past the limit is refused like a bad message.
                    if matches!(e, FrameError::TooLarge(_)) {
                        strikes.refused();
                    }
                    break Err(e);
                }
                None => break Err(FrameError::Io("the reader stopped".into())),
            },
            r = changed.changed() => match r {
                // Only the overlay's eager links push at once; a lazy one waits for its
                // catalog, and is not even woken into the node.
                Ok(()) => {
                    link.set_eager(shared.eager_to(&remote));
                    if link.is_eager() {
                        shared.with_node(|n| link.changed(n, shared.now()))
                    } else {
                        Vec::new()
                    }
                }
                Err(_) => shared.with_node(|n| link.close(n)),
            },
            r = manifests.changed() => match r {
                Ok(()) => {
                    link.set_eager(shared.eager_to(&remote));
                    shared.with_node(|n| link.changed(n, shared.now()))
                }
                Err(_) => shared.with_node(|n| link.close(n)),
            },
            _ = tokio::time::sleep_until(wake.into()) => {
                match link.tick_light(shared.now()) {
                    Some(actions) => actions,
                    None => shared.with_node(|n| link.tick(n, shared.now())),
                }
            }
        };
        if let Err(e) = wire.perform(actions).await {
            break Err(e);
        }
    };
    reader.abort();
    result
}

#[cfg(test)]
#[path = "mesh_exposure_tests.rs"]
mod exposure_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_addresses_are_read_with_or_without_a_device_and_bad_ones_say_why() {
        let plain: PeerAddr = "192.168.1.20:47470".parse().unwrap();
        assert_eq!(plain.device, None);
        assert_eq!(plain.addr, SocketAddr::from(([192, 168, 1, 20], 47470)));
        let hex = "ab".repeat(32);
        let full: PeerAddr = format!(" {hex}@[::1]:9 ").parse().unwrap();
        assert_eq!(full.device, Some(DeviceId([0xab; 32])));
        assert_eq!(full.to_string(), format!("{hex}@[::1]:9"));
        assert_eq!(full.to_string().parse::<PeerAddr>().unwrap(), full);
        assert!(matches!(
            "shelter-3".parse::<PeerAddr>(),
            Err(PeerAddrError::Address(_))
        ));
        assert!(matches!(
            "abc@10.0.0.1:1".parse::<PeerAddr>(),
            Err(PeerAddrError::Device(_))
        ));
        assert!(matches!(
            "10.0.0.1".parse::<PeerAddr>(),
            Err(PeerAddrError::Address(_))
        ));
    }

    /// The adapter end to end in one process, over real UDP on loopback: the greeting, the
    /// catalogs, a push, the status map, and a refusal.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_meshes_on_loopback_converge_push_and_refuse_a_stranger() {
        use crate::link::tests::{check_in, device, node, world, world_enrolling_at};
        let config = |peers: Vec<PeerAddr>| MeshConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            peers,
            mdns: false,
            ..MeshConfig::default()
        };
        let w = world();
        let mut a = node(&w, 1);
        let mut b = node(&w, 2);
        for i in 0..3 {
            check_in(&mut a, i);
        }
        for i in 3..5 {
            check_in(&mut b, i);
        }
        let ma = Mesh::start(a, config(Vec::new())).await.unwrap();
        let at_a = ma.addrs().into_iter().next().unwrap();
        let mb = Mesh::start(b, config(vec![at_a.clone()])).await.unwrap();
        let settled = |want: usize| {
            let (sa, sb) = (ma.status(), mb.status());
            sa.events == want && sb.events == want && sa.digest == sb.digest
        };
        let mut waited = 0;
        while !settled(5) {
            assert!(waited < 200, "no convergence: {:?}", mb.status().peers);
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += 1;
        }
        let link_to = |m: &Mesh<_>, d: DeviceId| {
            m.status()
                .peers
                .iter()
                .find(|p| p.device == d.to_hex())
                .map(|p| (p.link, p.events_in))
        };
        assert_eq!(link_to(&ma, device(2)), Some((Link::Connected, 2)));
        assert_eq!(link_to(&mb, device(1)), Some((Link::Connected, 3)));
        // A new event is pushed.
        mb.with_node(|n| check_in(n, 5));
        mb.announce();
        let mut waited = 0;
        while !settled(6) {
            assert!(waited < 100, "not pushed");
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += 1;
        }

        // A laptop whose manifest enrols it, dialling one whose manifest does not (an older
        // version: one of the same version could win by digest and be adopted).
        let w3 = world_enrolling_at(2, &[3]);
        let mc = Mesh::start(node(&w3, 3), config(vec![at_a])).await.unwrap();
        let mut waited = 0;
        while link_to(&mc, device(1)).map(|l| l.0) != Some(Link::Refused)
            || link_to(&ma, device(3)).map(|l| l.0) != Some(Link::Refused)
        {
            assert!(
                waited < 200,
                "not refused: {:?} / {:?}",
                mc.status().peers,
                ma.status().peers
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += 1;
        }
        assert_eq!(ma.status().events, 6, "a refused peer's data was taken");
        for m in [&ma, &mb, &mc] {
            m.shutdown().await;
        }
    }

    /// Over real UDP: C, enrolled only in version 2, dials A (version 1), which adopts C's
    /// manifest, accepts C, and passes the manifest on to B.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_newer_manifest_gets_its_laptop_in_and_reaches_a_third_laptop() {
        use crate::link::tests::{check_in, device};
        use crate::manifest_spread_tests::{C, Lab, v};
        let config = |peers: Vec<PeerAddr>| MeshConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            peers,
            mdns: false,
            ..MeshConfig::default()
        };
        let lab = Lab::new();
        let (v1, v2) = (v(1, &[1, 2]), v(2, &[1, 2, C]));
        let ma = Mesh::start(lab.node(1, &v1), config(Vec::new()))
            .await
            .unwrap();
        let at_a = ma.addrs().into_iter().next().unwrap();
        let mb = Mesh::start(lab.node(2, &v1), config(vec![at_a.clone()]))
            .await
            .unwrap();
        let mut c = lab.node(C, &v2);
        check_in(&mut c, 0);
        let linked = |m: &Mesh<_>, d: DeviceId| {
            m.status()
                .peers
                .iter()
                .any(|p| p.device == d.to_hex() && p.link == Link::Connected)
        };
        let mut waited = 0;
        while !linked(&ma, device(2)) {
            assert!(waited < 200, "a and b never met");
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += 1;
        }
        let mc = Mesh::start(c, config(vec![at_a])).await.unwrap();
        // The status line shows the version in force, and follows an adoption.
        let version = |m: &Mesh<_>| m.status().manifest_version;
        let dep = ma.with_node(|n| n.membership().deployment().id().short());
        assert_eq!(
            (mb.status().deployment.len(), mb.status().deployment),
            (8, dep)
        );
        let mut waited = 0;
        while !(linked(&ma, device(C)) && version(&mb) == 2 && mb.status().events == 1) {
            assert!(
                waited < 200,
                "not spread: a {:?}, b v{}",
                ma.status().peers,
                version(&mb)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += 1;
        }
        assert_eq!(version(&ma), 2);
        for m in [&ma, &mb, &mc] {
            m.shutdown().await;
        }
    }
}
