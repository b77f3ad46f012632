//! Alert resolutions and what sites report: status reports, open/closed, last event.

use super::arena::Ix;
use super::fold::State;
use crate::event::{AlertOutcome, Event, EventBody, SiteState, StatusReport};
use crate::hlc::Timestamp;
use crate::ids::{AlertId, SiteId};
use crate::time::Millis;
use std::collections::BTreeMap;

impl State {
    /// The latest resolution of an alert.
    pub fn alert_outcome(&self, alert: &AlertId, as_of: Option<Millis>) -> Option<AlertOutcome> {
        match self
            .latest_in(&self.alert_resolutions, alert, as_of)
            .map(Event::body)
        {
            Some(EventBody::AlertResolution { outcome, .. }) => Some(*outcome),
            _ => None,
        }
    }

    /// The latest status report of a site, with its time.
    pub fn latest_status_report(
        &self,
        site: &SiteId,
        as_of: Option<Millis>,
    ) -> Option<(Timestamp, &StatusReport)> {
        let ev = self.latest_in(&self.status_reports, site, as_of)?;
        match ev.body() {
            EventBody::ShelterStatusReport(r) => Some((ev.at(), r)),
            _ => None,
        }
    }

    /// Whether a site is open, and since when (the latest open/close event).
    pub fn site_state(
        &self,
        site: &SiteId,
        as_of: Option<Millis>,
    ) -> Option<(SiteState, Timestamp)> {
        let ev = self.latest_in(&self.site_states, site, as_of)?;
        match ev.body() {
            EventBody::SiteLifecycle(s) => Some((*s, ev.at())),
            _ => None,
        }
    }

    /// The first close of the whole operation by a manager (`EventBody::OperationClosed`), as
    /// of `as_of`: its time and the retention period it announced. Closing is final, so the
    /// first one starts the retention clock.
    pub fn operation_closed(&self, as_of: Option<Millis>) -> Option<(Timestamp, Option<u32>)> {
        let first = *self.operation_closes.upto(as_of, &self.events).first()?;
        let ev = self.events.get(first)?;
        match ev.body() {
            EventBody::OperationClosed { retention_days } => Some((ev.at(), *retention_days)),
            _ => None,
        }
    }

    /// The time of the last event written at each site (for staleness).
    pub fn last_event_per_site(&self, as_of: Option<Millis>) -> BTreeMap<SiteId, Timestamp> {
        // Per interned site, the latest visible event's time: a scan of the two compact columns,
        // reading an event itself only when its wall time ties the best so far.
        let ev = &self.events;
        let mut best: Vec<Option<(Millis, Ix)>> = vec![None; self.sites.ids.len()];
        for (ix, (&wall, &site)) in (0..).zip(ev.wall.iter().zip(&ev.site_of)) {
            if as_of.is_some_and(|t| wall > t) {
                continue;
            }
            let Some(slot) = best.get_mut(site as usize) else {
                continue;
            };
            let better = match *slot {
                None => true,
                Some((w, _)) if wall != w => wall > w,
                Some((_, b)) => ev.get(ix).map(Event::at) > ev.get(b).map(Event::at),
            };
            if better {
                *slot = Some((wall, ix));
            }
        }
        (0..)
            .zip(best)
            .filter_map(|(i, b)| Some((self.sites.id(i)?, ev.get(b?.1)?.at())))
            .collect()
    }
}
