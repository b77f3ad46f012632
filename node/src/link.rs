//! One connection's sync policy, sans-IO: the state machine both drivers run — the iroh
//! adapter in [`crate::mesh`] and the drill simulator (`kazashi_sim::drill`).
//!
//! A [`SyncLink`] is one end of one connection. It is told what happens — the connection
//! opened ([`SyncLink::open`]), a frame arrived ([`SyncLink::frame`]), this laptop gained events
//! ([`SyncLink::changed`]), time passed ([`SyncLink::tick`]), the connection ended
//! ([`SyncLink::closed`]) — and answers with [`Action`]s for the driver to perform: send a
//! frame, close the connection, wake me at an instant, and the facts the status view shows.
//! It reads no clock (time is a `u64` of milliseconds on any monotonic scale the driver
//! chooses) and does no I/O; it is given the [`Node`] in each call.
//!
//! The policy:
//!
//! 1. **Greeting.** The dialler sends [`Hello`] (protocol version, deployment, manifest
//!    version) at once; the accepting side reads the dialler's first and answers only after
//!    the checks. Either side closes a peer of another protocol or deployment as
//!    *mismatched* ([`CLOSE_MISMATCHED`]), a device the manifest does not enrol or has revoked
//!    as *refused* ([`CLOSE_REFUSED`]), and a peer whose first frame is not a greeting, or that
//!    sends none within [`LinkConfig::greeting_ms`], with [`CLOSE_PROTOCOL`]. Until the
//!    greeting is checked a frame may be at most [`MAX_HELLO`] bytes ([`SyncLink::max_frame`]).
//! 2. **Manifests.** The side whose manifest version is higher than the peer's greeting (or
//!    than what it sent since) sends its signed manifest ([`FRAME_MANIFEST`], at most
//!    [`MAX_MANIFEST`] bytes) before its catalog; the other adopts it
//!    ([`Node::adopt_manifest`]) and says so ([`Action::Adopted`]: the driver calls
//!    [`SyncLink::changed`] on every connection, which passes it on hop by hop and closes, as
//!    refused, the link of a device it revokes). A peer this laptop's manifest does not enrol
//!    but whose greeting announces a newer one is greeted and given until the greeting's
//!    deadline for that manifest, then checked again under it. A rollback, another
//!    administrator or deployment, a conflict or a bad signature closes as refused.
//! 3. **Sync.** Once greeted, each side sends its catalog ([`Node::sync_start`]), then answers
//!    every sync message ([`Node::sync_handle`]); when the laptop gains events the driver calls
//!    [`SyncLink::changed`] on its connections and each *eager* one pushes what changed
//!    ([`Node::sync_push`]; every link is eager unless the driver says otherwise with
//!    [`SyncLink::set_eager`] — the iroh mesh's gossip overlay does); every
//!    [`LinkConfig::anti_entropy_ms`] a fresh catalog catches anything missed, and is all a
//!    lazy link sends of them. The shards differing as of the peer's last catalog are reported
//!    ([`Action::Differing`]), and the events the peer brought ([`Action::Gained`]).
//! 4. **Liveness.** A ping goes out when nothing has been sent for [`LinkConfig::ping_ms`];
//!    a peer silent for longer than [`LinkConfig::lost_after_ms`] is closed as *lost*
//!    ([`CLOSE_LOST`]).
//! 5. **The end.** However it ends, the session's sync states are kept by the node for the
//!    next connection with the same peer ([`Node::sync_end`]) — except when the process dies,
//!    where the driver just drops the machine.
//!
//! [`Backoff`] ([`crate::redial`]) is the redial policy: the wait before the next dial,
//! doubling after each failure up to a cap, and a jittered probe while a peer stays out of
//! reach.

use crate::clock::Clock;
use crate::enrolment::Adopted;
use crate::node::{ManifestRefusal, Node, NodeError, Peer};
use kazashi_domain::{DeploymentId, DeviceId, EventId};
use kazashi_sync::wire::put_varint;
use kazashi_sync::{Membership, SignedManifest};
use serde::{Deserialize, Serialize};

/// The version in [`Hello`]; peers of another version are shown as mismatched.
pub const PROTOCOL_VERSION: u16 = 1;
/// The largest frame taken from a greeted peer (32 MiB): more than an honest message needs.
/// An honest shard message carries Automerge changes, compressed: `kazashi-lab bench hostile`
/// measures 105 bytes an event (`largest_honest_message`: 2,000 events of one site-day in
/// 210 KB), so a site-day of 10,000 events is about 1 MiB and 32 MiB holds some 300,000. A
/// message whose changes inflate past [`kazashi_sync::shard::MAX_INFLATED`] (64 MiB; an
/// envelope is about 300 bytes uncompressed) is refused by the vetting anyway, and at the
/// measured ratio it is about 22 MiB on the wire. A catalog is about 42 bytes a shard: 32 MiB
/// is some 800,000 shards (a deployment of 300 sites over 1,000 days is 300,000; a million is
/// refused from the frame's header). Each frame is paid for from the
/// sender's frame budget before its body is read (`mesh_frames.rs`).
pub const MAX_FRAME: usize = 32 << 20;
/// The greeting's limit: before it is checked, a peer may not make this laptop allocate more.
pub const MAX_HELLO: usize = 1 << 10;

/// Frame kinds (a frame is a `u32` big-endian length, the kind byte, the body).
pub const FRAME_HELLO: u8 = 0;
pub const FRAME_SYNC: u8 = 1;
pub const FRAME_PING: u8 = 2;
/// The body is a signed manifest (`SignedManifest::encode`), at most [`MAX_MANIFEST`] bytes.
pub const FRAME_MANIFEST: u8 = 3;

/// The largest manifest frame taken (also the frame limit while a manifest is awaited).
pub const MAX_MANIFEST: usize = 1 << 20;

/// Close codes.
pub const CLOSE_BYE: u32 = 0;
pub const CLOSE_REFUSED: u32 = 4001;
pub const CLOSE_MISMATCHED: u32 = 4002;
pub const CLOSE_LOST: u32 = 4003;
pub const CLOSE_PROTOCOL: u32 = 4004;

pub use crate::redial::{Backoff, DIAL_TIMEOUT_MS, MAX_ATTEMPTS_IN_FLIGHT};

/// A peer's link, as the GUI and the CLI show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Link {
    Connected,
    /// Silent for longer than the limit, or the connection dropped; redialled.
    Lost,
    /// Another deployment or protocol version.
    Mismatched,
    /// Not enrolled in this deployment (or revoked).
    Refused,
}

/// The greeting both sides send first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    pub protocol: u16,
    pub deployment: DeploymentId,
    pub manifest_version: u32,
    /// The first [`DIGEST_LEN`] bytes of the SHA-256 of the signed manifest in force
    /// ([`Membership::digest`]): two laptops at the same version with different manifests
    /// see it here and the one holding the winner sends it. `None` from a laptop of a
    /// Kazashi that did not send it (its greeting ends after the version).
    pub manifest_digest: Option<[u8; DIGEST_LEN]>,
}

/// How many bytes of the manifest's SHA-256 the greeting carries.
pub const DIGEST_LEN: usize = 16;

/// The greeting's first three fields, as `postcard` reads them.
#[derive(Deserialize)]
struct HelloHead {
    protocol: u16,
    deployment: DeploymentId,
    manifest_version: u32,
}

impl Hello {
    /// This laptop's greeting.
    pub fn of<C: Clock>(node: &Node<C>) -> Self {
        let m = node.membership();
        Self {
            protocol: PROTOCOL_VERSION,
            deployment: m.deployment().id(),
            manifest_version: m.version(),
            manifest_digest: Some(short_digest(m)),
        }
    }

    /// The bytes `postcard` gives for the first three fields (varint, 16 raw bytes, varint),
    /// then the digest's [`DIGEST_LEN`] raw bytes if any, written by hand so that encoding
    /// cannot fail. A greeting without the digest is the previous form, byte for byte; an
    /// older laptop reads the new one too (`postcard` leaves trailing bytes alone).
    /// `hello_encoding_is_postcards` checks both.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + DeploymentId::LEN + 5 + DIGEST_LEN);
        put_varint(&mut out, u64::from(self.protocol));
        out.extend_from_slice(&self.deployment.0);
        put_varint(&mut out, u64::from(self.manifest_version));
        if let Some(d) = &self.manifest_digest {
            out.extend_from_slice(d);
        }
        out
    }

    /// A greeting, with or without the digest; at least a digest's bytes after the version
    /// are read as the digest (room for later fields), fewer are malformed.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (head, rest) = postcard::take_from_bytes::<HelloHead>(bytes).ok()?;
        let manifest_digest = match rest {
            [] => None,
            _ => Some(<[u8; DIGEST_LEN]>::try_from(rest.get(..DIGEST_LEN)?).ok()?),
        };
        Some(Self {
            protocol: head.protocol,
            deployment: head.deployment,
            manifest_version: head.manifest_version,
            manifest_digest,
        })
    }
}

/// The greeting's digest of a manifest: the first [`DIGEST_LEN`] bytes of its SHA-256.
pub fn short_digest(m: &Membership) -> [u8; DIGEST_LEN] {
    let full = m.digest();
    let mut out = [0u8; DIGEST_LEN];
    out.copy_from_slice(full.get(..DIGEST_LEN).unwrap_or(&[0; DIGEST_LEN]));
    out
}

/// A manifest as one side knows it: its version and short digest (unknown from a greeting
/// without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    version: u32,
    digest: Option<[u8; DIGEST_LEN]>,
}

impl Held {
    fn of(m: &Membership) -> Self {
        Self {
            version: m.version(),
            digest: Some(short_digest(m)),
        }
    }

    /// Wins over `other` under the one rule (`Membership::precedence`): a higher version, or
    /// the same version with a lower digest (both known).
    fn wins_over(&self, other: &Held) -> bool {
        match self.version.cmp(&other.version) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => match (self.digest, other.digest) {
                (Some(a), Some(b)) => a < b,
                _ => false,
            },
        }
    }
}

/// The policy's timings, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkConfig {
    /// The periodic catalog exchange that catches anything missed.
    pub anti_entropy_ms: u64,
    /// A ping goes out after this long without sending anything.
    pub ping_ms: u64,
    /// A peer silent for longer than this is lost.
    pub lost_after_ms: u64,
    /// How long the peer has to greet.
    pub greeting_ms: u64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            anti_entropy_ms: 10_000,
            ping_ms: 2_000,
            lost_after_ms: 10_000,
            greeting_ms: 10_000,
        }
    }
}

/// Which end of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// This laptop dialled: it greets first.
    Dialled,
    /// The peer dialled: this laptop checks the peer's greeting before it answers.
    Accepted,
}

/// What the driver is to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write a frame.
    Send { kind: u8, body: Vec<u8> },
    /// Close the connection with a code and a reason; nothing more comes from this machine.
    Close { code: u32, reason: &'static str },
    /// Call [`SyncLink::tick`] at this instant (replaces any earlier request; a tick that
    /// comes early or late is harmless).
    Timer { at: u64 },
    /// The link's state changed (for the status view).
    Status { link: Link, reason: Option<String> },
    /// Events new to this laptop came in from the peer: tell every connection
    /// ([`SyncLink::changed`]) and count them.
    Gained { ids: Vec<EventId> },
    /// Shards differing between the peer and this laptop as of its last catalog (0 in step).
    Differing(usize),
    /// The node failed to take a message (its store): the connection is closed.
    Failed(String),
    /// This laptop adopted a newer manifest from the peer: tell every connection
    /// ([`SyncLink::changed`]), so that each passes it on to a peer that has an older one and
    /// closes if the new manifest revokes its peer.
    Adopted { version: u32 },
}

/// How a connection ended, as the driver saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The peer closed it with a code and a reason.
    ByPeer { code: u64, reason: String },
    /// It dropped: a transport error, the peer's process gone, the network cut.
    Dropped(String),
}

impl Ended {
    /// The status it leaves, in words.
    pub fn status(&self) -> (Link, String) {
        match self {
            Ended::ByPeer { code, .. } if *code == u64::from(CLOSE_REFUSED) => {
                (Link::Refused, "the peer refused this laptop".into())
            }
            Ended::ByPeer { code, .. } if *code == u64::from(CLOSE_MISMATCHED) => {
                (Link::Mismatched, "another deployment or version".into())
            }
            Ended::ByPeer { reason, .. } => (Link::Lost, format!("closed by the peer: {reason}")),
            Ended::Dropped(why) => (Link::Lost, format!("connection ended: {why}")),
        }
    }
}

#[derive(Debug)]
enum Phase {
    /// Waiting for the peer's greeting until the deadline.
    Greeting {
        deadline: u64,
    },
    /// The peer greeted with a newer manifest than this laptop's, one this laptop's does not
    /// enrol it in: waiting for that manifest until the same deadline.
    AwaitManifest {
        deadline: u64,
    },
    Live {
        peer: Box<Peer>,
    },
    Closed,
}

/// One end of one connection: the greeting, the sync session and its timers.
#[derive(Debug)]
pub struct SyncLink {
    role: Role,
    remote: DeviceId,
    config: LinkConfig,
    mine: Hello,
    phase: Phase,
    /// The manifest the peer holds, as far as this side knows (its greeting, or the one sent
    /// to it since).
    peer_held: Held,
    /// The greatest manifest (under the rule) this side announced or sent to the peer.
    told: Held,
    last_heard: u64,
    last_sent: u64,
    next_catalog: u64,
    /// The instant last asked for with [`Action::Timer`].
    armed: Option<u64>,
    /// Messages of the peer's refused so far (malformed, outside the deployment, refused
    /// changes): the driver slows a peer that sends them (`mesh_frames.rs`).
    refusals: u64,
    /// New events are pushed on this connection at once ([`SyncLink::set_eager`]); a lazy
    /// one leaves them to the next catalog.
    eager: bool,
    /// The session this side opened in its first flight, before the peer's greeting
    /// ([`SyncLink::first_flight`]), taken up when the greeting passes.
    early: Option<Box<Peer>>,
}

impl SyncLink {
    /// A connection to `remote` opened at `now`; `mine` is this laptop's greeting
    /// ([`Hello::of`]).
    pub fn open(
        mine: Hello,
        role: Role,
        remote: DeviceId,
        config: LinkConfig,
        now: u64,
    ) -> (Self, Vec<Action>) {
        let mut link = Self {
            role,
            remote,
            config,
            mine,
            phase: Phase::Greeting {
                deadline: now.saturating_add(config.greeting_ms),
            },
            peer_held: Held {
                version: 0,
                digest: None,
            },
            told: Held {
                version: mine.manifest_version,
                digest: mine.manifest_digest,
            },
            last_heard: now,
            last_sent: now,
            next_catalog: now,
            armed: None,
            refusals: 0,
            eager: true,
            early: None,
        };
        let mut out = Vec::new();
        if role == Role::Dialled {
            link.send(&mut out, FRAME_HELLO, mine.encode(), now);
        }
        link.arm(&mut out);
        (link, out)
    }

    /// Right after [`SyncLink::open`], on the side that dialled: a peer met before, last known
    /// to hold this laptop's manifest, gets the session's opening — the catalog and what this
    /// laptop gained since the last session with it ([`Node::sync_first_flight`]) — behind the
    /// greeting, in the same flight, instead of a round trip later: a laptop back from a
    /// partition hands over what it wrote a round trip sooner. The accepting side reads them
    /// only once it has checked the greeting, as any sync message. Nothing otherwise (a peer
    /// never met, another manifest, the accepting side): the session opens when the greeting
    /// passes.
    pub fn first_flight<C: Clock>(&mut self, node: &mut Node<C>, now: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if self.role != Role::Dialled
            || self.early.is_some()
            || !matches!(self.phase, Phase::Greeting { .. })
            || !enrolled(node, &self.remote)
        {
            return out;
        }
        let mut peer = Box::new(Peer::new(format!("peer {}", self.remote.short())));
        let first = node.sync_first_flight(&mut peer);
        if first.is_empty() {
            return out;
        }
        for m in first {
            self.send(&mut out, FRAME_SYNC, m, now);
        }
        self.early = Some(peer);
        out
    }

    pub fn remote(&self) -> DeviceId {
        self.remote
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The largest frame to read from the peer now: [`MAX_HELLO`] until its greeting is
    /// checked, [`MAX_MANIFEST`] while its newer manifest is awaited, then [`MAX_FRAME`].
    pub fn max_frame(&self) -> usize {
        match self.phase {
            Phase::Greeting { .. } => MAX_HELLO,
            Phase::AwaitManifest { .. } => MAX_MANIFEST,
            _ => MAX_FRAME,
        }
    }

    /// Still waiting for the peer's greeting (or for the newer manifest it announced).
    pub fn greeting(&self) -> bool {
        matches!(
            self.phase,
            Phase::Greeting { .. } | Phase::AwaitManifest { .. }
        )
    }

    /// Greeted and syncing.
    pub fn is_live(&self) -> bool {
        matches!(self.phase, Phase::Live { .. })
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// How many of the peer's sync messages this laptop has refused on this connection.
    pub fn refusals(&self) -> u64 {
        self.refusals
    }

    /// Push new events on this connection at once (the default), or leave them to the next
    /// anti-entropy catalog (a *lazy* link of the gossip overlay, `mesh_gossip.rs`). A link
    /// made eager again pushes what it held back at the next [`SyncLink::changed`].
    pub fn set_eager(&mut self, eager: bool) {
        self.eager = eager;
    }

    pub fn is_eager(&self) -> bool {
        self.eager
    }

    /// A ping from a live peer, taken without the node: `Some` with the actions (the timer),
    /// or `None` when the frame is anything else or the link is not live (then
    /// [`SyncLink::frame`]).
    pub fn ping(&mut self, kind: u8, now: u64) -> Option<Vec<Action>> {
        if kind != FRAME_PING || !self.is_live() {
            return None;
        }
        self.last_heard = self.last_heard.max(now);
        let mut out = Vec::new();
        self.arm(&mut out);
        Some(out)
    }

    /// [`SyncLink::tick`] when it needs nothing from the node — a live link with no catalog
    /// due and its peer not yet silent too long (at most a ping to send): `Some` with the
    /// actions; `None` otherwise (then [`SyncLink::tick`]).
    pub fn tick_light(&mut self, now: u64) -> Option<Vec<Action>> {
        if !self.is_live()
            || now >= self.next_catalog
            || now.saturating_sub(self.last_heard) > self.config.lost_after_ms
        {
            return None;
        }
        let mut out = Vec::new();
        if now >= self.ping_due() {
            self.send(&mut out, FRAME_PING, Vec::new(), now);
        }
        self.armed = None;
        self.arm(&mut out);
        Some(out)
    }

    /// A frame from the peer, at `now`.
    pub fn frame<C: Clock>(
        &mut self,
        node: &mut Node<C>,
        kind: u8,
        body: &[u8],
        now: u64,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if self.is_closed() {
            return out;
        }
        self.last_heard = self.last_heard.max(now);
        match self.phase {
            Phase::Greeting { .. } => {
                self.greet(node, kind, body, now, &mut out);
                self.arm(&mut out);
                return out;
            }
            Phase::AwaitManifest { .. } => {
                self.awaited(node, kind, body, now, &mut out);
                self.arm(&mut out);
                return out;
            }
            _ => {}
        }
        match kind {
            FRAME_SYNC => {
                let Phase::Live { peer } = &mut self.phase else {
                    return out;
                };
                match node.sync_handle(peer, body) {
                    Ok(step) => {
                        self.refusals = self.refusals.saturating_add(step.refused as u64);
                        if let Some(n) = step.differing {
                            out.push(Action::Differing(n));
                        } else if step.replies.is_empty() {
                            out.push(Action::Differing(0));
                        }
                        for r in step.replies {
                            self.send(&mut out, FRAME_SYNC, r, now);
                        }
                        if !step.added_ids.is_empty() {
                            out.push(Action::Gained {
                                ids: step.added_ids,
                            });
                        }
                    }
                    Err(e) => {
                        out.push(Action::Failed(e.to_string()));
                        self.end(
                            node,
                            &mut out,
                            CLOSE_BYE,
                            "store error",
                            format!("store: {e}"),
                        );
                        return out;
                    }
                }
            }
            FRAME_PING => {}
            FRAME_MANIFEST => {
                self.live_manifest(node, body, &mut out);
                if self.is_closed() {
                    return out;
                }
                // If the peer's crossed a better one here, this laptop's goes back at once.
                self.offer_manifest(node, &mut out, now);
            }
            _ => {
                self.end(
                    node,
                    &mut out,
                    CLOSE_PROTOCOL,
                    "unknown frame",
                    format!("unknown frame kind {kind}"),
                );
                return out;
            }
        }
        self.arm(&mut out);
        out
    }

    /// This laptop gained events (its own, or any peer's), or adopted a manifest: pass the
    /// manifest on, close a link the manifest now revokes, and on an eager link push the
    /// events.
    pub fn changed<C: Clock>(&mut self, node: &mut Node<C>, now: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.is_live() {
            // Before the greeting, the opening catalog will carry them.
            return out;
        }
        if !enrolled(node, &self.remote) {
            self.revoked(node, &mut out);
            return out;
        }
        self.offer_manifest(node, &mut out, now);
        let Phase::Live { peer } = &mut self.phase else {
            return out;
        };
        if !self.eager {
            // A lazy link: the next catalog carries them.
            self.arm(&mut out);
            return out;
        }
        for m in node.sync_push(peer) {
            self.send(&mut out, FRAME_SYNC, m, now);
        }
        self.arm(&mut out);
        out
    }

    /// Time has come to `now`: the greeting's deadline, silence, the catalog, the ping.
    pub fn tick<C: Clock>(&mut self, node: &mut Node<C>, now: u64) -> Vec<Action> {
        let mut out = Vec::new();
        match &self.phase {
            Phase::Closed => return out,
            Phase::Greeting { deadline } => {
                if now >= *deadline {
                    self.refuse(
                        &mut out,
                        Link::Mismatched,
                        CLOSE_PROTOCOL,
                        "no greeting",
                        "no greeting".into(),
                    );
                    return out;
                }
            }
            Phase::AwaitManifest { deadline } => {
                if now >= *deadline {
                    let why = "not enrolled in this deployment (its newer manifest never came)";
                    self.refused(&mut out, why.into());
                    return out;
                }
            }
            Phase::Live { .. } => {
                let silent = now.saturating_sub(self.last_heard);
                if silent > self.config.lost_after_ms {
                    self.end(
                        node,
                        &mut out,
                        CLOSE_LOST,
                        "silent",
                        format!("silent for {} s", silent / 1000),
                    );
                    return out;
                }
                if now >= self.next_catalog {
                    if let Phase::Live { peer } = &mut self.phase {
                        let catalog = node.sync_catalog(peer);
                        self.send(&mut out, FRAME_SYNC, catalog, now);
                    }
                    let every = self.config.anti_entropy_ms.max(1);
                    // Missed turns are skipped, not made up in a burst.
                    let behind = (now - self.next_catalog) / every + 1;
                    self.next_catalog = self
                        .next_catalog
                        .saturating_add(behind.saturating_mul(every));
                }
                if now >= self.ping_due() {
                    self.send(&mut out, FRAME_PING, Vec::new(), now);
                }
            }
        }
        // The driver's timer has fired: ask again whatever the instant.
        self.armed = None;
        self.arm(&mut out);
        out
    }

    /// The connection ended under the machine (the peer closed it, or it dropped). The
    /// session's state is kept for the next connection with this peer.
    pub fn closed<C: Clock>(&mut self, node: &mut Node<C>, how: Ended) -> Vec<Action> {
        let mut out = Vec::new();
        if self.is_closed() {
            return out;
        }
        let (link, why) = how.status();
        if let Phase::Live { peer } = std::mem::replace(&mut self.phase, Phase::Closed) {
            node.sync_end(*peer);
        }
        out.push(Action::Status {
            link,
            reason: Some(why),
        });
        out
    }

    /// This laptop closes the connection (shutting down): a clean bye.
    pub fn close<C: Clock>(&mut self, node: &mut Node<C>) -> Vec<Action> {
        let mut out = Vec::new();
        if self.is_closed() {
            return out;
        }
        self.end(node, &mut out, CLOSE_BYE, "bye", "closed".into());
        out
    }

    /// The peer's first frame: it must be a greeting that passes the checks.
    fn greet<C: Clock>(
        &mut self,
        node: &mut Node<C>,
        kind: u8,
        body: &[u8],
        now: u64,
        out: &mut Vec<Action>,
    ) {
        let theirs = match kind {
            FRAME_HELLO => Hello::decode(body),
            _ => None,
        };
        let Some(theirs) = theirs else {
            self.refuse(
                out,
                Link::Mismatched,
                CLOSE_PROTOCOL,
                "no greeting",
                "no greeting".into(),
            );
            return;
        };
        if theirs.protocol != PROTOCOL_VERSION || theirs.deployment != self.mine.deployment {
            let why = if theirs.protocol != PROTOCOL_VERSION {
                format!(
                    "protocol version {} (this laptop: {PROTOCOL_VERSION})",
                    theirs.protocol
                )
            } else {
                format!("another deployment ({})", theirs.deployment.short())
            };
            self.refuse(out, Link::Mismatched, CLOSE_MISMATCHED, "mismatched", why);
            return;
        }
        self.peer_held = Held {
            version: theirs.manifest_version,
            digest: theirs.manifest_digest,
        };
        if !enrolled(node, &self.remote) {
            let deadline = match self.phase {
                Phase::Greeting { deadline } => deadline,
                _ => now,
            };
            if self.peer_held.wins_over(&Held::of(node.membership())) {
                // Perhaps enrolled in the newer (or same-version winning) manifest it holds:
                // greet, so that it sends it, and wait for it (bounded by the greeting's
                // deadline).
                if self.role == Role::Accepted {
                    self.hello(node, out, now);
                }
                self.phase = Phase::AwaitManifest { deadline };
                return;
            }
            self.refused(out, "not enrolled in this deployment".into());
            return;
        }
        if self.role == Role::Accepted {
            self.hello(node, out, now);
        }
        self.go_live(node, out, now);
    }

    /// This laptop's greeting, with the manifest in force now.
    fn hello<C: Clock>(&mut self, node: &Node<C>, out: &mut Vec<Action>, now: u64) {
        let held = Held::of(node.membership());
        let hello = Hello {
            manifest_version: held.version,
            manifest_digest: held.digest,
            ..self.mine
        };
        self.tell(held);
        self.send(out, FRAME_HELLO, hello.encode(), now);
    }

    /// The greeting passed: the session begins, with this laptop's manifest first if the
    /// peer's is older.
    fn go_live<C: Clock>(&mut self, node: &mut Node<C>, out: &mut Vec<Action>, now: u64) {
        // Remembered for the next connection's first flight (`SyncLink::first_flight`).
        let agreed = self.peer_held == Held::of(node.membership());
        node.sync_agreed(&format!("peer {}", self.remote.short()), agreed);
        // Opened already in the first flight: only what this laptop gained since then (its
        // catalog did not carry it, and no push went before the greeting).
        let (peer, opening) = match self.early.take() {
            Some(mut peer) => {
                let gained = node.sync_push(&mut peer);
                (peer, gained)
            }
            None => {
                let mut peer = Box::new(Peer::new(format!("peer {}", self.remote.short())));
                let mut opening = vec![node.sync_start(&mut peer)];
                // What this laptop wrote or gained since the last session with the peer goes
                // at once (a laptop back from a partition), not after a round of catalogs
                // and summaries.
                opening.extend(node.sync_resume_push(&mut peer));
                (peer, opening)
            }
        };
        self.phase = Phase::Live { peer };
        self.last_heard = now;
        self.next_catalog = now.saturating_add(self.config.anti_entropy_ms.max(1));
        out.push(Action::Status {
            link: Link::Connected,
            reason: None,
        });
        self.offer_manifest(node, out, now);
        for m in opening {
            self.send(out, FRAME_SYNC, m, now);
        }
    }

    /// Send this laptop's manifest if it wins over the peer's: a newer version, or the same
    /// version with a lower digest (and it fits a frame).
    fn offer_manifest<C: Clock>(&mut self, node: &Node<C>, out: &mut Vec<Action>, now: u64) {
        let mine = Held::of(node.membership());
        if !mine.wins_over(&self.peer_held) {
            return;
        }
        let bytes = node.membership().signed().encode();
        if bytes.len() > MAX_MANIFEST {
            return;
        }
        self.peer_held = mine;
        self.tell(mine);
        self.send(out, FRAME_MANIFEST, bytes, now);
    }

    /// This side announced or sent `held` to the peer.
    fn tell(&mut self, held: Held) {
        if held.wins_over(&self.told) {
            self.told = held;
        }
    }

    /// The frame awaited after a greeting that announced a newer manifest: that manifest.
    /// Adopted if valid, then the peer must be enrolled in it.
    fn awaited<C: Clock>(
        &mut self,
        node: &mut Node<C>,
        kind: u8,
        body: &[u8],
        now: u64,
        out: &mut Vec<Action>,
    ) {
        if kind != FRAME_MANIFEST || body.len() > MAX_MANIFEST {
            self.refused(
                out,
                "not enrolled in this deployment (no manifest came)".into(),
            );
            return;
        }
        let adopted = match node.adopt_manifest(body) {
            Ok(Adopted::Newer { version, .. }) => Some(version),
            Ok(Adopted::Same) => None,
            Err(e) => {
                self.refused(out, format!("its manifest is refused: {e}"));
                return;
            }
        };
        // The peer's manifest is now this laptop's (adopted, or the same).
        self.peer_held = Held::of(node.membership());
        if enrolled(node, &self.remote) {
            self.go_live(node, out, now);
        } else {
            self.refused(out, "not enrolled in this deployment".into());
        }
        if let Some(version) = adopted {
            out.push(Action::Adopted { version });
        }
    }

    /// A manifest from a greeted peer: adopted if it wins (newer, or the same version with a
    /// lower digest); a rollback or a losing conflict the peer had no reason to send (not
    /// winning over what this side told it), another deployment or administrator or a bad
    /// signature closes the connection as refused. One that loses to this laptop's but wins
    /// over what it told the peer crossed an adoption here: ignored (this laptop's then goes
    /// to the peer, [`SyncLink::frame`]).
    fn live_manifest<C: Clock>(&mut self, node: &mut Node<C>, body: &[u8], out: &mut Vec<Action>) {
        if body.len() > MAX_MANIFEST {
            self.end(
                node,
                out,
                CLOSE_PROTOCOL,
                "manifest too large",
                format!("a manifest of {} bytes", body.len()),
            );
            return;
        }
        // The version the peer holds, as its manifest says.
        let (adopted, theirs) = match node.adopt_manifest(body) {
            Ok(Adopted::Newer { version, .. }) => (Some(version), Held::of(node.membership())),
            Ok(Adopted::Same) => (None, Held::of(node.membership())),
            Err(NodeError::ManifestRefused(r)) => {
                let crossing = matches!(
                    r,
                    ManifestRefusal::Rollback { .. } | ManifestRefusal::Conflict(_)
                );
                if let Some(theirs) = crossing.then(|| crossed(body, &self.told)).flatten() {
                    if theirs.wins_over(&self.peer_held) {
                        self.peer_held = theirs;
                    }
                    return;
                }
                self.end_as(
                    node,
                    out,
                    Link::Refused,
                    CLOSE_REFUSED,
                    "refused",
                    format!("its manifest is refused: {r}"),
                );
                return;
            }
            Err(e) => {
                out.push(Action::Failed(e.to_string()));
                self.end(node, out, CLOSE_BYE, "store error", format!("store: {e}"));
                return;
            }
        };
        if theirs.wins_over(&self.peer_held) {
            self.peer_held = theirs;
        }
        if !enrolled(node, &self.remote) {
            self.revoked(node, out);
        }
        if let Some(version) = adopted {
            out.push(Action::Adopted { version });
        }
    }

    /// Close before the session began (nothing to save).
    fn refuse(
        &mut self,
        out: &mut Vec<Action>,
        link: Link,
        code: u32,
        reason: &'static str,
        why: String,
    ) {
        self.phase = Phase::Closed;
        out.push(Action::Status {
            link,
            reason: Some(why),
        });
        out.push(Action::Close { code, reason });
    }

    /// Close before the session began: the peer is not enrolled.
    fn refused(&mut self, out: &mut Vec<Action>, why: String) {
        self.refuse(out, Link::Refused, CLOSE_REFUSED, "refused", why);
    }

    /// Close the session: the manifest now in force revokes the peer.
    fn revoked<C: Clock>(&mut self, node: &mut Node<C>, out: &mut Vec<Action>) {
        let why = format!(
            "revoked by manifest version {}",
            node.membership().version()
        );
        self.end_as(node, out, Link::Refused, CLOSE_REFUSED, "refused", why);
    }

    /// Close from this side, keeping the session's state.
    fn end<C: Clock>(
        &mut self,
        node: &mut Node<C>,
        out: &mut Vec<Action>,
        code: u32,
        reason: &'static str,
        why: String,
    ) {
        self.end_as(node, out, Link::Lost, code, reason, why);
    }

    /// [`SyncLink::end`], leaving the status `link`.
    fn end_as<C: Clock>(
        &mut self,
        node: &mut Node<C>,
        out: &mut Vec<Action>,
        link: Link,
        code: u32,
        reason: &'static str,
        why: String,
    ) {
        if let Phase::Live { peer } = std::mem::replace(&mut self.phase, Phase::Closed) {
            node.sync_end(*peer);
        }
        out.push(Action::Status {
            link,
            reason: Some(why),
        });
        out.push(Action::Close { code, reason });
    }

    fn send(&mut self, out: &mut Vec<Action>, kind: u8, body: Vec<u8>, now: u64) {
        self.last_sent = self.last_sent.max(now);
        out.push(Action::Send { kind, body });
    }

    fn ping_due(&self) -> u64 {
        self.last_sent.saturating_add(self.config.ping_ms.max(1))
    }

    /// The next instant something is due, if the connection is open.
    fn due(&self) -> Option<u64> {
        match &self.phase {
            Phase::Closed => None,
            Phase::Greeting { deadline } | Phase::AwaitManifest { deadline } => Some(*deadline),
            Phase::Live { .. } => Some(
                self.next_catalog.min(self.ping_due()).min(
                    self.last_heard
                        .saturating_add(self.config.lost_after_ms)
                        .saturating_add(1),
                ),
            ),
        }
    }

    /// Ask for a tick at the next due instant, if it is not the one asked for already.
    fn arm(&mut self, out: &mut Vec<Action>) {
        let due = self.due();
        if due != self.armed {
            self.armed = due;
            if let Some(at) = due {
                out.push(Action::Timer { at });
            }
        }
    }
}

/// A manifest from the peer that loses to this laptop's (refused as a rollback or a conflict)
/// but wins over `told`, what this side announced to the peer: it crossed an adoption here, so
/// the peer had reason to send it. Its version and digest then.
fn crossed(body: &[u8], told: &Held) -> Option<Held> {
    let theirs = Held::of(&SignedManifest::decode(body).ok()?);
    theirs.wins_over(told).then_some(theirs)
}

/// The device is listed in the manifest in force and not revoked.
fn enrolled<C: Clock>(node: &Node<C>, device: &DeviceId) -> bool {
    let m = node.membership();
    m.device(device).is_some() && m.revoked_from(device).is_none()
}

#[cfg(test)]
#[path = "link_tests.rs"]
pub(crate) mod tests;

#[cfg(test)]
#[path = "mesh_digest_tests.rs"]
mod mesh_digest_tests;
