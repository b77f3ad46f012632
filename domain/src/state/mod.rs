//! The fold: a set of events to state.
//!
//! [`State`] is built by inserting events one at a time, in any order, any number of times; the
//! result depends only on the set of events (see the property tests). Events are ordered by
//! [`OrderKey`] (HLC time, then id), which every node computes the same way.
//!
//! A person's shelter stays depend only on that person's own stay events, so an event that
//! arrives late (a peer was offline) costs a replay of that person's history, not of the log.
//! An undo, whenever it arrives, removes its check-in's effect the same way.
//!
//! Every query takes `as_of: Option<Millis>`: `None` is the merged present; `Some(t)` answers as
//! the log stood with only the events whose HLC wall time is at most `t`. The present answers
//! come from state kept up to date on insert; the as-of answers are replayed from the same
//! histories, and the property tests check that both agree with folding the prefix alone.
//!
//! Inside, the state is compact: events sit in an append-only arena and everything else refers
//! to them by arena index (4 bytes, not a 32-byte order key); sites and persons are interned to
//! small integers. Arena and intern order is arrival order and means nothing: equality and every
//! query answer depend only on the set of events.

mod arena;
mod authority;
mod counts;
mod fold;
mod links;
mod notes;
mod privacy;
mod records;
mod reports;
mod safe_reports;
mod shared;
mod shelter;
mod stay;
mod timeline;
mod votes;

pub use authority::{LiftAuthority, ManagerAuthority};
pub use counts::{AllSiteCounts, SiteCounts};
pub use fold::{Inserted, State, StateVersion};
pub use links::Assertion;
pub use notes::SealedNoteRef;
pub use records::{Identity, PersonFacts};
pub use safe_reports::SafeReport;
pub use shared::SharedEvents;
pub use stay::{Departure, Stay, StayStatus, Stays};
pub use timeline::{CountsIndex, Pending};
pub use votes::{VoteRecord, VoteTally};
