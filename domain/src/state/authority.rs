//! Who may write a manager's decision that every node honours: the managers of the deployment's
//! staff list, set by the node from the signed manifest.
//!
//! Three kinds of event change what every laptop does and are a manager's alone: a DV block
//! lift (`EventBody::DvBlockLift`, `privacy`), a site's open/close (`EventBody::SiteLifecycle`,
//! `reports`: a closed site takes no check-in) and the close of the whole operation
//! (`EventBody::OperationClosed`, `reports`: writes stop everywhere and the retention clock
//! starts, at whose end every laptop crypto-shreds its store). One rule for all three: such an
//! event counts only if its operator is a manager in the manifest's staff list valid at the
//! site the event was written at (the entry lists no sites, or that one). Any other is kept in
//! the log (peer events are facts) and ignored by the fold's answers. The verdict depends on the
//! event (operator, site) and the authority alone, so every node holding the same manifest
//! reaches the same one, whichever laptop wrote the event and in whatever order it arrived. With
//! no authority set (the pure model in tests) every such event counts.
//!
//! The operation's close is judged at the event's site too (not "a manager anywhere"): a
//! manager's entry that lists sites lets them sign in only there, so a close written elsewhere
//! under their id did not come from them.

use crate::SiteId;
use crate::ids::OperatorId;
use std::collections::{BTreeMap, BTreeSet};

/// The managers whose decisions count: operator id → the sites they manage (empty: every
/// site). Built from the manifest's staff list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagerAuthority {
    managers: BTreeMap<OperatorId, BTreeSet<SiteId>>,
}

/// The former name, from when the authority judged DV block lifts alone.
pub type LiftAuthority = ManagerAuthority;

impl ManagerAuthority {
    /// From (manager id, the sites the entry allows — empty: every site).
    pub fn new(managers: impl IntoIterator<Item = (OperatorId, Vec<SiteId>)>) -> Self {
        ManagerAuthority {
            managers: managers
                .into_iter()
                .map(|(op, sites)| (op, sites.into_iter().collect()))
                .collect(),
        }
    }

    /// Whether a manager's event written by `operator` at `site` counts.
    pub fn allows(&self, operator: &OperatorId, site: &SiteId) -> bool {
        self.managers
            .get(operator)
            .is_some_and(|sites| sites.is_empty() || sites.contains(site))
    }
}
