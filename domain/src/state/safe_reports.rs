//! "Reported safe by a relative" (`EventBody::ReportedSafe`): who has a standing report, as of
//! any time. A report stands until a `RetractAssertion` naming it (as of the same time).

use super::fold::State;
use crate::event::EventBody;
use crate::hlc::Timestamp;
use crate::ids::{EventId, PersonRef};
use crate::text::Label;
use crate::time::Millis;

/// One standing report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafeReport {
    pub event: EventId,
    pub at: Timestamp,
    /// Who reported (a relation or a label).
    pub by: Label,
}

impl State {
    /// The reports standing for `person` as of `as_of` (not retracted as of then), in order.
    pub fn safe_reports(&self, person: &PersonRef, as_of: Option<Millis>) -> Vec<SafeReport> {
        let Some(h) = self.safe_reports.get(person) else {
            return Vec::new();
        };
        h.upto(as_of, &self.events)
            .iter()
            .filter_map(|&ix| self.events.get(ix))
            .filter(|e| {
                self.retractions
                    .get(&e.id())
                    .is_none_or(|r| r.upto(as_of, &self.events).is_empty())
            })
            .filter_map(|e| match e.body() {
                EventBody::ReportedSafe { by, .. } => Some(SafeReport {
                    event: e.id(),
                    at: e.at(),
                    by: by.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    /// Whether a report that `person` is safe stands as of `as_of`.
    pub fn reported_safe(&self, person: &PersonRef, as_of: Option<Millis>) -> bool {
        !self.safe_reports(person, as_of).is_empty()
    }

    /// Every person with a "reported safe" event (standing or retracted), unordered.
    pub fn safe_report_persons(&self) -> impl Iterator<Item = &PersonRef> {
        self.safe_reports.keys()
    }
}
