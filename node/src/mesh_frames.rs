//! Frames on the wire and what a peer may make this laptop hold (a part of [`crate::mesh`];
//! issue 25, requirement 2).
//!
//! A frame is a `u32` big-endian length, the kind byte and the body. The length is the peer's
//! word: a frame over the reader's limit ([`crate::link::MAX_FRAME`] once greeted) is refused
//! from its header, and a body is read into a buffer that grows with the bytes that actually
//! come, a [`READ_STEP`] at a time, never to the declared size up front.
//!
//! **The frame budget.** Once a connection has greeted, every frame it sends is paid for,
//! from its declared length and before a byte of its body is read, out of two pools: its
//! device's ([`DEVICE_FRAME_BYTES`], shared by all that device's connections) and the whole
//! laptop's ([`ALL_FRAME_BYTES`]). The payment is held while the frame is read, while it waits
//! in its connection's queue and while the node handles it, and given back when it has been
//! handled (or its connection ends). A frame that does not fit waits — the connection's reader
//! stops reading, QUIC's flow control stops the peer, and nothing is allocated for it — until
//! earlier frames have been handled; a connection stalled this way says nothing, so its link
//! ends it as lost after [`crate::link::LinkConfig::lost_after_ms`]. So one enrolled device, on
//! however many connections and streams, makes this laptop hold at most
//! [`DEVICE_FRAME_BYTES`] of frames, and all peers together [`ALL_FRAME_BYTES`]. A device may
//! keep at most [`MAX_LIVE_PER_DEVICE`] greeted connections at once (two laptops normally
//! have one or two: each may dial the other); one more is closed as busy.
//!
//! **QUIC's own buffers.** Data a peer sends on a stream this laptop does not read is kept by
//! QUIC up to the stream's window. [`transport_config`] lets a peer open one bidirectional
//! stream per connection (each protocol uses one) and no unidirectional stream, takes no
//! datagrams and caps what QUIC buffers for a connection ([`CONNECTION_WINDOW`]); before, a
//! connection could open 200 streams of 1.25 MB each, unread.

use iroh::endpoint::{QuicTransportConfig, RecvStream, SendStream, VarInt};
use kazashi_domain::DeviceId;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How much of a frame is read (and allocated) at a time.
pub const READ_STEP: usize = 1 << 20;

/// Frame bytes one device may make this laptop hold at once, over all its connections: two
/// frames of the largest size (one on each connection two laptops normally keep).
pub const DEVICE_FRAME_BYTES: usize = 2 * crate::link::MAX_FRAME;
/// Frame bytes all peers together may make this laptop hold at once.
pub const ALL_FRAME_BYTES: usize = 4 * crate::link::MAX_FRAME;
/// Greeted connections one device may keep at once.
pub const MAX_LIVE_PER_DEVICE: usize = 4;

/// The pause after a device's first refused message; each refusal within [`FORGIVEN_AFTER`]
/// of the last doubles it, up to [`MAX_PAUSE`].
pub const FIRST_PAUSE: Duration = Duration::from_millis(250);
pub const MAX_PAUSE: Duration = Duration::from_secs(30);
pub const FORGIVEN_AFTER: Duration = Duration::from_secs(60);

/// What QUIC buffers at most for one stream a peer sends on, and for a whole connection.
pub const STREAM_WINDOW: u32 = 1_250_000;
pub const CONNECTION_WINDOW: u32 = 2 * STREAM_WINDOW;

/// The endpoint's QUIC settings: one bidirectional stream per connection may be opened by the
/// peer, no unidirectional ones, no datagrams, and bounded receive windows.
pub fn transport_config() -> QuicTransportConfig {
    QuicTransportConfig::builder()
        .max_concurrent_bidi_streams(VarInt::from_u32(1))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .stream_receive_window(VarInt::from_u32(STREAM_WINDOW))
        .receive_window(VarInt::from_u32(CONNECTION_WINDOW))
        .datagram_receive_buffer_size(None)
        .build()
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection: {0}")]
    Io(String),
    #[error("frame of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("empty frame")]
    Empty,
}

/// One frame read, holding its share of the budget until dropped.
#[derive(Debug)]
pub struct Frame {
    pub kind: u8,
    pub body: Vec<u8>,
    _paid: Option<Paid>,
}

pub async fn write_frame(send: &mut SendStream, kind: u8, body: &[u8]) -> Result<(), FrameError> {
    let len = u32::try_from(body.len() + 1).map_err(|_| FrameError::TooLarge(body.len()))?;
    let mut buf = Vec::with_capacity(body.len() + 5);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.push(kind);
    buf.extend_from_slice(body);
    send.write_all(&buf)
        .await
        .map_err(|e| FrameError::Io(e.to_string()))
}

/// Read one frame of at most `max` bytes; with a `budget`, its declared length is paid for
/// before its body is read (waiting for room), and held by the frame.
pub async fn read_frame(
    recv: &mut RecvStream,
    max: usize,
    budget: Option<&DeviceBudget>,
) -> Result<Frame, FrameError> {
    let mut len = [0u8; 4];
    recv.read_exact(&mut len)
        .await
        .map_err(|e| FrameError::Io(e.to_string()))?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(FrameError::TooLarge(len));
    }
    let Some(body_len) = len.checked_sub(1) else {
        return Err(FrameError::Empty);
    };
    let paid = match budget {
        Some(b) => Some(b.pay(len).await.ok_or(FrameError::TooLarge(len))?),
        None => None,
    };
    let mut kind = [0u8; 1];
    recv.read_exact(&mut kind)
        .await
        .map_err(|e| FrameError::Io(e.to_string()))?;
    // The buffer grows with the bytes that actually come, a step at a time, doubling but
    // never past the declared length (so never past what was paid for).
    let mut body = Vec::with_capacity(body_len.min(READ_STEP));
    while body.len() < body_len {
        let start = body.len();
        let end = start + (body_len - start).min(READ_STEP);
        if body.capacity() < end {
            let grown = body.capacity().saturating_mul(2).clamp(end, body_len);
            body.reserve_exact(grown - start);
        }
        body.resize(end, 0);
        let Some(part) = body.get_mut(start..) else {
            return Err(FrameError::Empty);
        };
        recv.read_exact(part)
            .await
            .map_err(|e| FrameError::Io(e.to_string()))?;
    }
    Ok(Frame {
        kind: kind[0],
        body,
        _paid: paid,
    })
}

/// The laptop's frame budget: the pool of all peers and one pool per device.
#[derive(Debug, Clone)]
pub struct FrameBudget {
    inner: Arc<Pools>,
}

#[derive(Debug)]
struct Pools {
    /// Per device that sent a refused message: until when its frames are not read, and the
    /// next pause.
    pauses: Mutex<BTreeMap<DeviceId, Pause>>,
    all: Arc<Semaphore>,
    all_cap: usize,
    per_device: usize,
    max_live: usize,
    devices: Mutex<BTreeMap<DeviceId, Weak<DeviceShared>>>,
}

#[derive(Debug, Clone, Copy)]
struct Pause {
    until: Instant,
    last: Duration,
}

#[derive(Debug)]
struct DeviceShared {
    bytes: Arc<Semaphore>,
    /// The pool's size.
    cap: usize,
    live: Mutex<usize>,
}

/// One greeted connection's handle on its device's pool (dropping it frees its place among
/// the device's live connections).
#[derive(Debug)]
pub struct DeviceBudget {
    id: DeviceId,
    pools: Arc<Pools>,
    device: Arc<DeviceShared>,
    all: Arc<Semaphore>,
    all_cap: usize,
}

/// A frame's payment, given back when dropped.
#[derive(Debug)]
pub struct Paid {
    _device: OwnedSemaphorePermit,
    _all: OwnedSemaphorePermit,
}

/// The device already keeps [`MAX_LIVE_PER_DEVICE`] greeted connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl Default for FrameBudget {
    fn default() -> Self {
        Self::new(ALL_FRAME_BYTES, DEVICE_FRAME_BYTES, MAX_LIVE_PER_DEVICE)
    }
}

impl FrameBudget {
    /// Pools of `all` bytes in all and `per_device` bytes per device; `max_live` greeted
    /// connections per device.
    pub fn new(all: usize, per_device: usize, max_live: usize) -> Self {
        FrameBudget {
            inner: Arc::new(Pools {
                pauses: Mutex::new(BTreeMap::new()),
                all: Arc::new(Semaphore::new(all)),
                all_cap: all,
                per_device,
                max_live,
                devices: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// A place for one more greeted connection of `device`, paying out of its device's pool.
    pub fn connection(&self, device: DeviceId) -> Result<DeviceBudget, Busy> {
        let mut devices = self.inner.devices.lock().unwrap_or_else(|p| p.into_inner());
        devices.retain(|_, d| d.strong_count() > 0);
        let shared = match devices.get(&device).and_then(Weak::upgrade) {
            Some(d) => d,
            None => {
                let d = Arc::new(DeviceShared {
                    bytes: Arc::new(Semaphore::new(self.inner.per_device)),
                    cap: self.inner.per_device,
                    live: Mutex::new(0),
                });
                devices.insert(device, Arc::downgrade(&d));
                d
            }
        };
        {
            let mut live = shared.live.lock().unwrap_or_else(|p| p.into_inner());
            if *live >= self.inner.max_live {
                return Err(Busy);
            }
            *live += 1;
        }
        Ok(DeviceBudget {
            id: device,
            pools: self.inner.clone(),
            device: shared,
            all: self.inner.all.clone(),
            all_cap: self.inner.all_cap,
        })
    }

    /// Bytes of the laptop's pool free now.
    #[cfg(test)]
    pub fn available(&self) -> usize {
        self.inner.all.available_permits()
    }
}

impl DeviceBudget {
    /// This laptop refused a message of the device: none of its frames is read for a while
    /// (on any of its connections), longer each time it does it again, so that a member
    /// sending what is refused (junk, bombs, catalogs past the deployment) has only a small
    /// share of the node's time. An honest laptop's messages are not refused.
    pub fn refused(&self) {
        let now = Instant::now();
        let mut pauses = self.pools.pauses.lock().unwrap_or_else(|p| p.into_inner());
        let next = match pauses.get(&self.id) {
            Some(p) if now < p.until + FORGIVEN_AFTER => (p.last * 2).min(MAX_PAUSE),
            _ => FIRST_PAUSE,
        };
        pauses.insert(
            self.id,
            Pause {
                until: now + next,
                last: next,
            },
        );
    }

    /// Wait out the device's pause, if any.
    pub async fn pause(&self) {
        loop {
            let until = {
                let pauses = self.pools.pauses.lock().unwrap_or_else(|p| p.into_inner());
                match pauses.get(&self.id) {
                    Some(p) if p.until > Instant::now() => p.until,
                    _ => return,
                }
            };
            tokio::time::sleep_until(until.into()).await;
        }
    }

    /// Pay for a frame of `len` bytes, waiting until both pools have room: the device's first,
    /// then the laptop's (so a connection waiting for the laptop's pool holds only its own
    /// device's share). `None` if `len` is more than a pool could ever give.
    pub async fn pay(&self, len: usize) -> Option<Paid> {
        let len = len.max(1);
        if len > self.device.cap || len > self.all_cap {
            return None;
        }
        let n = u32::try_from(len).ok()?;
        let device = self.device.bytes.clone().acquire_many_owned(n).await.ok()?;
        let all = self.all.clone().acquire_many_owned(n).await.ok()?;
        Some(Paid {
            _device: device,
            _all: all,
        })
    }

    /// Bytes of the device's pool free now.
    #[cfg(test)]
    pub fn available(&self) -> usize {
        self.device.bytes.available_permits()
    }
}

impl Drop for DeviceBudget {
    fn drop(&mut self) {
        let mut live = self.device.live.lock().unwrap_or_else(|p| p.into_inner());
        *live = live.saturating_sub(1);
    }
}

#[cfg(test)]
#[path = "mesh_frames_tests.rs"]
mod tests;
