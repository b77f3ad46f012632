//! # kazashi-sim
//!
//! The synthetic municipality (households, residents with realistic and variant-glyph names,
//! voters with 投票区 and 名簿番号), deployments over it, benchmark workloads, and the headless
//! demo day that drives the real station code on simulated time. The seeded drill simulator
//! with faults and a simulated network grows here.

// Unit tests may unwrap and index: a panic there is a test failure, not a crash.
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)
)]

pub mod card;
pub mod demo;
pub mod drill;
pub mod fleet;
pub mod names;
pub mod population;
pub mod scenario;
pub mod workload;

pub use population::{Municipality, PopulationSpec, generate};
