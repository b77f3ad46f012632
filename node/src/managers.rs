//! Who may write a manager's decision every node honours, one rule for every node (issue 24):
//! a DV block lift, a site's open/close and the close of the whole operation.
//!
//! Such an event ([`EventBody::DvBlockLift`], [`EventBody::SiteLifecycle`],
//! [`EventBody::OperationClosed`]) counts only if its operator is a manager
//! (`StaffRole::Lead`) in the **manifest's** staff list, valid at the site the event was written
//! at (the entry lists no sites, or that one). The verdict depends on the event (operator, site)
//! and the manifest alone, so every laptop holding the same manifest reaches the same one,
//! whichever laptop wrote the event and in whatever order it arrived:
//! - **at ingest and on every fold** an event that does not count is kept in the log (a peer's
//!   event is a fact, and refusing it at the vetting would refuse the whole shard it travels
//!   in) but ignored: the state's [`ManagerAuthority`] is set from the manifest, and
//!   `State::dv_blocked`, `State::site_state` and `State::operation_closed` pass over events it
//!   does not allow (so do everything that reads them: the station's closed-site check, the
//!   writes stop, `purge::closure` and the retention clock). A newer manifest changes the
//!   authority, and every node re-judges every such event alike.
//! - **at the author** `Node::record` refuses one that would not count (so a laptop never
//!   writes one the others ignore).
//!
//! A laptop's own staff table (`kazashi staff add`) is not consulted: no other laptop can see
//! it, so a lead enrolled on one laptop alone (or a modified binary writing any operator id)
//! could otherwise close a site, or close the operation with a retention of 0 days and have
//! every laptop crypto-shred its store. Such a lead can still do everything else a lead does on
//! that laptop.

use kazashi_domain::SiteId;
use kazashi_domain::event::EventBody;
use kazashi_domain::ids::OperatorId;
use kazashi_domain::state::ManagerAuthority;
use kazashi_sync::Membership;

/// The managers of the manifest's staff list, with the sites their entries allow.
pub fn authority(members: &Membership) -> ManagerAuthority {
    ManagerAuthority::new(
        members
            .manifest()
            .staff
            .iter()
            .filter(|e| e.role.manages())
            .map(|e| (e.id, e.sites.clone())),
    )
}

/// Whether `body` is a manager's decision judged by [`authority`].
pub fn is_managed(body: &EventBody) -> bool {
    matches!(
        body,
        EventBody::DvBlockLift { .. }
            | EventBody::SiteLifecycle(_)
            | EventBody::OperationClosed { .. }
    )
}

/// Whether a manager's event written by `operator` at `site` counts on every node holding
/// `members`.
pub fn may_manage(members: &Membership, operator: &OperatorId, site: &SiteId) -> bool {
    authority(members).allows(operator, site)
}

/// Whether a DV block lift written by `operator` at `site` counts (the same rule).
pub fn may_lift(members: &Membership, operator: &OperatorId, site: &SiteId) -> bool {
    may_manage(members, operator, site)
}
