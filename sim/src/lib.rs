//! # kazashi-sim
//!
//! The synthetic municipality (households, residents with realistic and variant-glyph names,
//! voters with 投票区 and 名簿番号), deployments over it, benchmark workloads, virtual cards,
//! and the seeded drill simulator (real nodes on simulated time and a simulated network with
//! faults). The `kazashi-lab` binary (`src/lab/`) puts the product's window and commands on top
//! of them: the demo city, drills, benchmarks and drill laptops.

// Unit tests may unwrap and index: a panic there is a test failure, not a crash.
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)
)]

pub mod card;
pub mod chaos;
pub mod drill;
pub mod fleet;
pub mod hostile;
pub mod names;
pub mod population;
pub mod scenario;
pub mod workload;

pub use population::{Municipality, PopulationSpec, generate};
