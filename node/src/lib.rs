//! # kazashi-node
//!
//! The service the GUI and the CLI call, and the only layer that touches the outside world:
//! clocks, the encrypted SQLite store ([`store`]) and [`Node`] — one laptop's station, signed
//! log and store together (record, import, sync, USB bundles, housekeeping) — [`link`], one
//! connection's sync policy as a sans-IO state machine, and [`mesh`], the iroh transport that
//! runs it between laptops. Card readers arrive here too.

// Unit tests may unwrap and index: a panic there is a test failure, not a crash.
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)
)]

pub mod admin_purge;
pub mod audit;
pub mod bundle_file;
pub mod card;
pub mod clock;
pub mod deployment_admin;
pub mod enrol_net;
pub mod enrolled;
pub mod enrolment;
pub mod export;
pub mod fingerprint;
pub mod link;
pub mod managers;
pub mod media;
pub mod mesh;
pub mod node;
pub mod notes;
pub mod paper;
pub mod possession;
pub mod print;
pub mod printer;
pub mod purge;
pub mod purpose_keys;
pub mod receipt;
pub mod reception;
pub mod redial;
pub mod roster_build;
pub mod roster_csv;
pub mod roster_db;
pub mod roster_fetch;
pub mod roster_import;
pub mod roster_lookup;
pub mod roster_net;
pub mod roster_seal;
pub mod roster_serve;
pub mod staff;
pub mod station;
pub mod store;
pub mod store_key;
pub mod token;
pub mod unconfirmed_export;
pub mod update;
pub mod update_pin;
pub mod wristband;

pub use clock::{Clock, ManualClock, SkewedClock, SystemClock};
pub use node::{BundleImport, BundleScope, Node, NodeError, Peer, SyncStep};
pub use station::{Ingested, Station, StationError};
pub use store::{KdfParams, Store, StoreError};

#[cfg(test)]
mod audit_tests;
#[cfg(test)]
mod bundle_manifest_tests;
#[cfg(test)]
mod dv_lift_tests;
#[cfg(test)]
mod manager_close_tests;
#[cfg(test)]
mod manifest_spread_tests;
#[cfg(test)]
mod paper_tests;
#[cfg(test)]
mod possession_tests;
#[cfg(test)]
mod roster_lookup_tests;
#[cfg(test)]
mod roster_net_tests;
#[cfg(test)]
mod roster_seal_tests;
#[cfg(test)]
mod roster_serve_tests;
#[cfg(test)]
mod store_rekey_tests;
#[cfg(test)]
mod token_tests;
#[cfg(test)]
mod unconfirmed_export_tests;
