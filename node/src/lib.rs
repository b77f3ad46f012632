//! # kazashi-node
//!
//! The station service the GUI and the CLI call, and the only layer that touches the outside
//! world: the clock now; the encrypted store, card readers and network as they arrive.

// Unit tests may unwrap and index: a panic there is a test failure, not a crash.
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)
)]

pub mod clock;
pub mod node;
pub mod station;
pub mod store;

pub use clock::{Clock, ManualClock, SkewedClock, SystemClock};
pub use node::{Node, NodeError, Peer, SyncStep};
pub use station::{Ingested, Station, StationError};
pub use store::{KdfParams, Store, StoreError};
