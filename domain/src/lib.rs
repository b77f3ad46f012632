//! # kazashi-domain
//!
//! The pure model of Kazashi: deployments and sites, the roster, every event, the hybrid logical
//! clock and the fold from a set of events to state.
//!
//! Nothing here performs I/O, reads a clock or draws a random number: physical time, today's
//! date and every input are arguments. Every constructor and decoder validates its input and
//! returns a typed error; nothing panics on input.

// Unit tests may unwrap and index: a panic there is a test failure, not a crash.
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)
)]

pub mod address;
pub mod audit;
pub mod audit_chain;
pub mod birth;
pub mod clusters;
pub mod deployment;
pub mod detector;
pub mod event;
mod hex;
pub mod hlc;
pub mod ids;
pub mod normalize;
pub mod overview;
pub mod roster;
pub mod safety;
pub mod sealed_note;
pub mod search;
pub mod state;
pub mod text;
pub mod time;
pub mod unconfirmed;
pub mod validate;

pub use deployment::{Deployment, DeploymentKind, ShelterType, Site, SiteKind};
pub use event::{Event, EventBody, EventContent, EventError, Members, OrderKey};
pub use hlc::{Hlc, Timestamp};
pub use ids::{
    DeploymentId, DeviceId, EventId, HouseholdId, HouseholdRef, OperatorId, PersonId, PersonRef,
    SiteId,
};
pub use roster::{Roster, RosterEntry, RosterKind};
pub use state::State;
pub use time::{CivilDate, Millis};
