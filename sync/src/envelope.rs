//! Event envelopes: the domain event's compact encoding, the deployment it belongs to, and the
//! writing device's signature. The device id is inside the event.
//!
//! [`open`] is the one way in for bytes from a peer, a file or the store: every check passes or
//! the envelope is refused with a [`Rejection`] (kept in quarantine by the node), and nothing of
//! it reaches state.

use crate::envelope_verify::verify_strict;
use crate::identity::{DeviceKey, signed_bytes};
use crate::manifest::{Membership, Role};
use kazashi_domain::event::DecodeError;
use kazashi_domain::{DeploymentId, DeviceId, Event, EventId, SiteId};
use serde::{Deserialize, Serialize};
use std::cell::Cell;

const ENVELOPE_TAG: &[u8] = b"kazashi-envelope-v1";

thread_local! {
    static COUNTS: Cell<OpenCounts> = const {
        Cell::new(OpenCounts {
            decoded: 0,
            verified: 0,
        })
    };
}

/// Envelopes this thread has decoded ([`open`], [`open_as`], [`open_trusted`]) and signatures
/// it has verified, since the thread began: tests read them to prove that an envelope is
/// opened once on its way in. Per thread, so tests running side by side do not mix; the
/// shard's vetting checks 256 envelopes or more on other threads, which these do not see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenCounts {
    pub decoded: u64,
    pub verified: u64,
}

/// See [`OpenCounts`].
pub fn open_counts() -> OpenCounts {
    COUNTS.with(Cell::get)
}

fn count(f: impl FnOnce(&mut OpenCounts)) {
    COUNTS.with(|c| {
        let mut n = c.get();
        f(&mut n);
        c.set(n);
    });
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Wire {
    deployment: DeploymentId,
    event: Vec<u8>,
    signature: Vec<u8>,
}

impl Wire {
    /// Postcard's layout (the deployment's 16 bytes, then the event and the signature as byte
    /// strings), written by hand because it cannot fail.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.event.len() + self.signature.len() + 6);
        out.extend_from_slice(&self.deployment.0);
        crate::wire::put_bytes(&mut out, &self.event);
        crate::wire::put_bytes(&mut out, &self.signature);
        out
    }
}

/// Decode an envelope's outer layer, refusing any byte string but the one its contents encode
/// to: postcard takes trailing bytes and over-long length prefixes, which would let anyone
/// holding an envelope make a second byte string of it that still verifies (one event, one
/// byte string — see [`crate::shard`] for why two copies of an id must not differ).
fn decode_wire(bytes: &[u8]) -> Result<Wire, Rejection> {
    let wire: Wire =
        postcard::from_bytes(bytes).map_err(|e| Rejection::Malformed(e.to_string()))?;
    if wire.encode() != bytes {
        return Err(Rejection::Malformed(
            "the envelope is not in its canonical encoding".into(),
        ));
    }
    Ok(wire)
}

/// Why an envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("malformed envelope: {0}")]
    Malformed(String),
    #[error("envelope for another deployment ({found})")]
    WrongDeployment { found: DeploymentId },
    #[error("the event inside is invalid: {0}")]
    InvalidEvent(String),
    #[error("device {0} is not enrolled in this deployment")]
    UnknownDevice(DeviceId),
    #[error("device {0} is revoked")]
    Revoked(DeviceId),
    #[error("the signature does not verify with device {0}'s key")]
    BadSignature(DeviceId),
    #[error("device {device} may not write for site {site}")]
    SiteNotPermitted { device: DeviceId, site: SiteId },
    #[error("device {0} is a relay and writes no events")]
    RelayWrote(DeviceId),
    #[error("stored under id {expected} but the event's id is {found}")]
    IdMismatch { expected: EventId, found: EventId },
}

impl Rejection {
    /// A short stable code for logs and the quarantine table.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::WrongDeployment { .. } => "wrong-deployment",
            Rejection::InvalidEvent(_) => "invalid-event",
            Rejection::UnknownDevice(_) => "unknown-device",
            Rejection::Revoked(_) => "revoked",
            Rejection::BadSignature(_) => "bad-signature",
            Rejection::SiteNotPermitted { .. } => "site-not-permitted",
            Rejection::RelayWrote(_) => "relay-wrote",
            Rejection::IdMismatch { .. } => "id-mismatch",
        }
    }
}

/// Why a device could not seal an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the event names device {event}, but the key is device {key}")]
    NotOurDevice { event: DeviceId, key: DeviceId },
    #[error("the event could not be encoded: {0}")]
    Encoding(#[from] kazashi_domain::event::EventError),
}

/// Sign an event written by this device.
pub fn seal(
    event: &Event,
    deployment: DeploymentId,
    key: &DeviceKey,
) -> Result<Vec<u8>, SealError> {
    if event.device() != key.device_id() {
        return Err(SealError::NotOurDevice {
            event: event.device(),
            key: key.device_id(),
        });
    }
    let content = event.encode()?;
    let signature = key.sign(&signed_bytes(ENVELOPE_TAG, &[&deployment.0, &content]));
    let wire = Wire {
        deployment,
        event: content,
        signature: signature.to_vec(),
    };
    Ok(wire.encode())
}

/// Verify an envelope against the membership in force and return its event.
///
/// A revoked device's envelope, or one stamped after the operation's close, is **not** refused
/// here: whether it counts is a verdict of the fold ([`Membership::withholds`]), which every
/// node reaches alike once it holds the same manifest, whatever order the events and the
/// manifest arrived in. Refusing at the door made laptops that took the event under an older
/// manifest and those that did not disagree for good, and refused the whole sync message (and
/// through the change graph every later change of that site-day) with it.
pub fn open(bytes: &[u8], members: &Membership) -> Result<Event, Rejection> {
    count(|n| n.decoded += 1);
    let wire = decode_wire(bytes)?;
    let expected = members.deployment().id();
    if wire.deployment != expected {
        return Err(Rejection::WrongDeployment {
            found: wire.deployment,
        });
    }
    let event = Event::decode(&wire.event).map_err(|e| match e {
        DecodeError::Malformed(m) => Rejection::Malformed(m),
        DecodeError::Invalid(e) => Rejection::InvalidEvent(e.to_string()),
    })?;
    let device = event.device();
    let Some(entry) = members.device(&device) else {
        return Err(Rejection::UnknownDevice(device));
    };
    count(|n| n.verified += 1);
    // `verify_strict`'s verdict with per-device tables (envelope_verify.rs).
    if !verify_strict(
        &device,
        &signed_bytes(ENVELOPE_TAG, &[&wire.deployment.0, &wire.event]),
        &wire.signature,
    ) {
        return Err(Rejection::BadSignature(device));
    }
    match entry.role {
        // A relay writes nothing but its audit records (its exports and unlocks).
        Role::Relay if !matches!(event.body(), kazashi_domain::EventBody::Audit(_)) => {
            return Err(Rejection::RelayWrote(device));
        }
        Role::Station if !entry.sites.is_empty() && !entry.sites.contains(&event.site()) => {
            return Err(Rejection::SiteNotPermitted {
                device,
                site: event.site(),
            });
        }
        _ => {}
    }
    Ok(event)
}

/// The event inside an envelope this node verified before and kept in its own encrypted store
/// (cold start): decoded and checked on its own, the signature not verified again. A store
/// written before envelopes had to be canonical may hold a non-canonical one, which it took
/// then: it is read as it was (its id is that of the event's canonical form either way).
pub fn open_trusted(bytes: &[u8], deployment: DeploymentId) -> Result<Event, Rejection> {
    count(|n| n.decoded += 1);
    let wire: Wire =
        postcard::from_bytes(bytes).map_err(|e| Rejection::Malformed(e.to_string()))?;
    if wire.deployment != deployment {
        return Err(Rejection::WrongDeployment {
            found: wire.deployment,
        });
    }
    let content: kazashi_domain::EventContent =
        postcard::from_bytes(&wire.event).map_err(|e| Rejection::Malformed(e.to_string()))?;
    Event::new(content).map_err(|e| Rejection::InvalidEvent(e.to_string()))
}

/// [`open`], and check that the event is the one the envelope was filed under.
pub fn open_as(bytes: &[u8], id: &EventId, members: &Membership) -> Result<Event, Rejection> {
    let event = open(bytes, members)?;
    if event.id() != *id {
        return Err(Rejection::IdMismatch {
            expected: *id,
            found: event.id(),
        });
    }
    Ok(event)
}
