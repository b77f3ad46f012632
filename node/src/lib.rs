//! # kazashi-node
//!
//! The station service the GUI and the CLI call, and the only layer that touches the outside
//! world: the clock now; the encrypted store, card readers and network as they arrive.

pub mod clock;
pub mod station;

pub use clock::{Clock, ManualClock, SkewedClock, SystemClock};
pub use station::{Ingested, Station, StationError};
