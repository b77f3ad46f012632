//! # kazashi-sync
//!
//! The replicated, signed event log: Automerge documents sharded by site and day, ed25519
//! signatures over every event, membership, and the sync protocol as a sans-IO state machine,
//! with the iroh transport as a thin adapter on top.
//!
//! Not built yet: today a station's log lives in memory in `kazashi-node`, and the demo's
//! stations exchange events in memory (`kazashi-sim`). This crate holds no code until the log
//! does; the workspace lists it so that the dependency order (domain → sync → node) is fixed.

// Unit tests may unwrap and index: a panic there is a test failure, not a crash.
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)
)]
