//! Alert resolutions and what sites report: status reports, open/closed, last event.

use super::arena::Ix;
use super::authority::ManagerAuthority;
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

    /// Set whose manager's decisions count (DV block lifts, site open/close, the operation's
    /// close; `None`: every one counts). Queries follow at once; the folded events are
    /// untouched.
    pub fn set_manager_authority(&mut self, authority: Option<ManagerAuthority>) {
        self.manager_authority = authority;
    }

    /// Whose manager's decisions count, if set.
    pub fn manager_authority(&self) -> Option<&ManagerAuthority> {
        self.manager_authority.as_ref()
    }

    /// Whether the manager's event `e` (a DV block lift, a site's open/close, the operation's
    /// close) counts under the authority set: its operator is a manager at its site.
    pub fn manager_counts(&self, e: &Event) -> bool {
        self.manager_authority
            .as_ref()
            .is_none_or(|a| a.allows(&e.operator(), &e.site()))
    }

    /// Whether a site is open, and since when: the latest open/close event that counts (one
    /// by a manager of the manifest at that site, `authority`); others are passed over.
    pub fn site_state(
        &self,
        site: &SiteId,
        as_of: Option<Millis>,
    ) -> Option<(SiteState, Timestamp)> {
        let history = self.site_states.get(site)?;
        history
            .upto(as_of, &self.events)
            .iter()
            .rev()
            .filter_map(|&ix| self.events.get(ix))
            .filter(|e| self.manager_counts(e))
            .find_map(|ev| match ev.body() {
                EventBody::SiteLifecycle(s) => Some((*s, ev.at())),
                _ => None,
            })
    }

    /// The first close of the whole operation that counts (by a manager of the manifest at the
    /// event's site, `authority`; others are passed over), as of `as_of`: its time and the
    /// retention period it announced. Closing is final, so the first one starts the retention
    /// clock.
    pub fn operation_closed(&self, as_of: Option<Millis>) -> Option<(Timestamp, Option<u32>)> {
        self.operation_closes
            .upto(as_of, &self.events)
            .iter()
            .filter_map(|&ix| self.events.get(ix))
            .filter(|e| self.manager_counts(e))
            .find_map(|ev| match ev.body() {
                EventBody::OperationClosed { retention_days } => Some((ev.at(), *retention_days)),
                _ => None,
            })
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
