//! The mesh's driver of [`crate::redial::Rejoin`]: which peers to dial at once after an
//! outage. The connections report openings, greetings and losses ([`Rejoin::opened`],
//! [`Rejoin::greeted`], [`Rejoin::ended`]), mDNS its announcements ([`Rejoin::announced`]); one task per mesh asks
//! the policy what is due and starts that attempt itself (timeout [`PROBE_TIMEOUT_MS`]),
//! reporting its end ([`Rejoin::finished`]) — so that at most
//! [`crate::redial::MAX_HANDSHAKES`] such handshakes are in flight. A connection it makes is
//! handed to the device's dial loop, which runs it as one of its own (and resets its back-off).

use super::{ALPN, CLOSE_BYE, close, public_key};
use crate::redial::{PROBE_TIMEOUT_MS, Rejoin};
use iroh::endpoint::Connection;
use iroh::{Endpoint, EndpointAddr};
use kazashi_domain::DeviceId;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};

/// A connection a probe or kick made, for the device's dial loop.
pub(super) type Handed = mpsc::Receiver<Connection>;

/// The policy, the dial loops' addresses and inboxes, and the scheduler's wake-up.
pub(super) struct Kicks {
    policy: Mutex<Rejoin<DeviceId>>,
    loops: Mutex<BTreeMap<DeviceId, (SocketAddr, mpsc::Sender<Connection>)>>,
    /// Wakes the scheduler when the policy may have something to hand out sooner.
    scheduler: Notify,
    epoch: Instant,
}

impl Kicks {
    pub(super) fn new(seed: u64) -> Self {
        Self {
            policy: Mutex::new(Rejoin::new(seed)),
            loops: Mutex::new(BTreeMap::new()),
            scheduler: Notify::new(),
            epoch: Instant::now(),
        }
    }

    fn policy(&self) -> MutexGuard<'_, Rejoin<DeviceId>> {
        self.policy.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A dial loop for `device` at `addr` starts: the inbox of the connections made for it.
    pub(super) fn register(&self, device: DeviceId, addr: SocketAddr) -> Handed {
        let (tx, rx) = mpsc::channel(1);
        self.policy().dials(device);
        self.loops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(device, (addr, tx));
        rx
    }

    /// A connection with `device` opened (dialled or accepted), not yet greeted.
    pub(super) fn opened(&self, device: DeviceId) {
        let now = self.now();
        if self.policy().opened(device, now) {
            self.scheduler.notify_one();
        }
    }

    /// A connection with `device` that opened ended without its greeting.
    pub(super) fn not_greeted(&self, device: DeviceId) {
        self.policy().not_greeted(device);
    }

    /// A connection with `device` was greeted.
    pub(super) fn greeted(&self, device: DeviceId) {
        let now = self.now();
        if self.policy().greeted(device, now) {
            self.scheduler.notify_one();
        }
    }

    /// A greeted connection with `device` ended.
    pub(super) fn ended(&self, device: DeviceId) {
        let now = self.now();
        self.policy().ended(device, now);
        self.scheduler.notify_one();
    }

    /// Events written by `devices` came in over a connection: those lost are owed an attempt
    /// ([`Rejoin::heard_from`]).
    pub(super) fn heard_from(&self, devices: &BTreeSet<DeviceId>) {
        let now = self.now();
        let mut kicked = false;
        {
            let mut p = self.policy();
            for d in devices {
                kicked |= p.heard_from(*d, now);
            }
        }
        if kicked {
            self.scheduler.notify_one();
        }
    }

    /// mDNS announced `device` (new, or at a new address).
    pub(super) fn announced(&self, device: DeviceId) {
        let now = self.now();
        self.policy().announced(device, now);
        self.scheduler.notify_one();
    }

    /// The scheduler: until the mesh stops, start what the policy says is due.
    pub(super) async fn run(self: Arc<Self>, endpoint: Endpoint) {
        loop {
            let now = self.now();
            let mut due = Vec::new();
            let wake = {
                let mut p = self.policy();
                while let Some(d) = p.next(now) {
                    due.push(d);
                }
                p.wake()
            };
            for device in due {
                self.clone().attempt(&endpoint, device);
            }
            let sleep = match wake {
                Some(at) => {
                    let at = self.epoch + Duration::from_millis(at.max(now.saturating_add(1)));
                    tokio::time::sleep_until(at.into())
                }
                None => tokio::time::sleep(Duration::from_secs(3600)),
            };
            tokio::select! {
                () = sleep => {}
                () = self.scheduler.notified() => {}
            }
        }
    }

    /// One probe or kicked attempt at `device`, on a task of its own.
    fn attempt(self: Arc<Self>, endpoint: &Endpoint, device: DeviceId) {
        let target = self
            .loops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&device)
            .cloned();
        let (Some((addr, inbox)), Some(pk)) = (target, public_key(&device)) else {
            self.policy().finished();
            return;
        };
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            let to = EndpointAddr::new(pk).with_ip_addr(addr);
            let c = tokio::time::timeout(
                Duration::from_millis(PROBE_TIMEOUT_MS),
                endpoint.connect(to, ALPN),
            )
            .await;
            self.policy().finished();
            self.scheduler.notify_one();
            if let Ok(Ok(conn)) = c {
                // The loop is running a connection of its own already: this one is not needed.
                if let Err(e) = inbox.try_send(conn) {
                    let conn = match e {
                        mpsc::error::TrySendError::Full(c)
                        | mpsc::error::TrySendError::Closed(c) => c,
                    };
                    close(&conn, CLOSE_BYE, "already connected");
                }
            }
        });
    }
}
