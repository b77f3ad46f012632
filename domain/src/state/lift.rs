//! Who may lift the DV block: the managers of the deployment's staff list (see `privacy`).

use crate::SiteId;
use crate::ids::OperatorId;
use std::collections::{BTreeMap, BTreeSet};

/// The managers whose DV block lifts count: operator id → the sites they manage (empty: every
/// site). Built from the manifest's staff list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiftAuthority {
    managers: BTreeMap<OperatorId, BTreeSet<SiteId>>,
}

impl LiftAuthority {
    /// From (manager id, the sites the entry allows — empty: every site).
    pub fn new(managers: impl IntoIterator<Item = (OperatorId, Vec<SiteId>)>) -> Self {
        LiftAuthority {
            managers: managers
                .into_iter()
                .map(|(op, sites)| (op, sites.into_iter().collect()))
                .collect(),
        }
    }

    /// Whether a lift written by `operator` at `site` counts.
    pub fn allows(&self, operator: &OperatorId, site: &SiteId) -> bool {
        self.managers
            .get(operator)
            .is_some_and(|sites| sites.is_empty() || sites.contains(site))
    }
}
