//! Who may lift the DV block, one rule for every node (issue 24).
//!
//! A [`EventBody::DvBlockLift`](kazashi_domain::event::EventBody::DvBlockLift) counts only if
//! its operator is a manager (`StaffRole::Lead`) in the **manifest's** staff list, valid at the
//! site the lift was written at (the entry lists no sites, or that one). The verdict depends on
//! the event (operator, site) and the manifest alone, so every laptop holding the same manifest
//! reaches the same one, whichever laptop wrote the lift and in whatever order it arrived:
//! - **at ingest and on every fold** a lift that does not count is kept in the log (a peer's
//!   event is a fact, and refusing it at the vetting would refuse the whole shard it travels
//!   in) but ignored: the state's [`LiftAuthority`] is set from the manifest, and
//!   `State::dv_blocked` passes over lifts it does not allow. A newer manifest changes the
//!   authority, and every node re-judges every lift alike.
//! - **at the author** `Node::record` refuses a lift that would not count (so a laptop never
//!   writes one the others ignore).
//!
//! A laptop's own staff table (`kazashi staff add`) is not consulted: no other laptop can see
//! it, so a lead enrolled on one laptop alone could lift the block there and nowhere else. Such
//! a lead can still do everything else a lead does on that laptop.

use kazashi_domain::SiteId;
use kazashi_domain::ids::OperatorId;
use kazashi_domain::state::LiftAuthority;
use kazashi_sync::Membership;

/// The managers of the manifest's staff list, with the sites their entries allow.
pub fn authority(members: &Membership) -> LiftAuthority {
    LiftAuthority::new(
        members
            .manifest()
            .staff
            .iter()
            .filter(|e| e.role.manages())
            .map(|e| (e.id, e.sites.clone())),
    )
}

/// Whether a lift written by `operator` at `site` counts on every node holding `members`.
pub fn may_lift(members: &Membership, operator: &OperatorId, site: &SiteId) -> bool {
    authority(members).allows(operator, site)
}
