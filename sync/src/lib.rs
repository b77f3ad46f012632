//! # kazashi-sync
//!
//! The replicated, signed event log: device identities and deployment manifests, signed event
//! envelopes, the Automerge shard documents the envelopes live in, and the sync protocol as a
//! state machine. No I/O here: the node stores the bytes and the transports carry them.

// Unit tests may unwrap and index: a panic there is a test failure, not a crash.
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)
)]

pub mod envelope;
mod envelope_verify;
pub mod identity;
pub mod inflate;
pub mod manifest;
pub mod purpose;
pub mod sealed;
pub mod shard;
pub mod wire;
mod wrap;

pub use envelope::{OpenCounts, Rejection, open, open_as, open_counts, open_trusted, seal};
pub use identity::DeviceKey;
pub use manifest::{
    Cutoffs, DeviceEntry, Manifest, Membership, Revocation, Role, SignedManifest, Withheld,
};
pub use purpose::{KeyPurpose, PurposeSecret, SealedKey};
pub use shard::{EnvelopeCheck, ShardDoc, ShardError, ShardId, Vetted};
pub mod protocol;
pub mod rbsr;
pub mod roster_transfer;
pub use protocol::{
    Catalog, HeadsDigest, Log, Message, Outcome, Scope, Session, SessionError, digest,
};
pub mod bundle;
pub use automerge::ChangeHash;
pub use bundle::{BundleBody, BundleError};
