//! A station: one device at one site, writing events and merging its peers'.
//!
//! Every event this device writes goes through [`Station::record`]: stamped by the hybrid
//! logical clock, checked on its own, against the deployment and roster, and against the merged
//! state (a walk-in must exist, an undo must target a check-in), then folded. Events from peers
//! go through [`Station::ingest`]: the same deployment and roster checks, then folded, and their
//! timestamps advance this device's clock (unless too far ahead).
//!
//! Today the log lives in memory; the signed, persisted log (SQLite, Automerge) arrives in
//! `kazashi-sync` and plugs in underneath without changing this API.

use crate::clock::Clock;
use kazashi_domain::event::{BlockReason, EventBody, EventError};
use kazashi_domain::hlc::{ClockSkew, DEFAULT_MAX_FORWARD_MS};
use kazashi_domain::state::{Inserted, ManagerAuthority};
use kazashi_domain::validate::check_event;
use kazashi_domain::{
    Deployment, DeviceId, Event, EventContent, EventId, Hlc, OperatorId, PersonRef, Roster, SiteId,
    State, Timestamp,
};
use std::sync::Arc;

/// Why a station refused something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StationError {
    #[error("the roster does not match the deployment's roster hash")]
    RosterMismatch,
    #[error("site {0} is not part of this deployment")]
    UnknownSite(SiteId),
    #[error(transparent)]
    Invalid(#[from] EventError),
    #[error("walk-in {0} is not registered on this station's log")]
    UnknownWalkIn(PersonRef),
    #[error("the event to undo ({0}) is not on this station's log")]
    UndoTargetMissing(EventId),
    #[error("only check-ins can be undone; {0} is a {1}")]
    UndoTargetNotCheckIn(EventId, &'static str),
    #[error("blocked ({0:?}): an override by a second officer naming each block is needed")]
    Blocked(Vec<BlockReason>),
    #[error("only a manager (責任者) may write a {0}")]
    NotAManager(&'static str),
    /// The site was closed by a manager: no check-in or registration is taken there until a
    /// manager opens it again.
    #[error("this site is closed: no {0} is taken here until a manager (責任者) opens it again")]
    SiteClosed(&'static str),
    /// Notes are sealed (`crate::notes`): the plain 問診票 field of earlier versions is never
    /// written again.
    #[error("a medical note in the clear is refused: add it as a sealed note")]
    PlaintextNote,
}

/// The result of taking in a peer's event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    pub inserted: Inserted,
    /// The peer's timestamp was too far ahead to adopt (the event is kept all the same).
    pub skew: Option<ClockSkew>,
}

/// One device at one site.
pub struct Station<C: Clock> {
    deployment: Arc<Deployment>,
    roster: Arc<Roster>,
    device: DeviceId,
    site: SiteId,
    hlc: Hlc,
    clock: C,
    state: State,
}

impl<C: Clock> Station<C> {
    /// A station for `device` at `site`. The roster must be the one the deployment pins.
    pub fn new(
        deployment: Arc<Deployment>,
        roster: Arc<Roster>,
        device: DeviceId,
        site: SiteId,
        clock: C,
    ) -> Result<Self, StationError> {
        if roster.hash() != deployment.roster_hash() {
            return Err(StationError::RosterMismatch);
        }
        if deployment.site(&site).is_none() {
            return Err(StationError::UnknownSite(site));
        }
        Ok(Self {
            deployment,
            roster,
            device,
            site,
            hlc: Hlc::new(DEFAULT_MAX_FORWARD_MS),
            clock,
            state: State::new(),
        })
    }

    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }
    pub fn roster(&self) -> &Roster {
        &self.roster
    }
    /// The roster, shared (to serve it to peers without a copy).
    pub fn roster_arc(&self) -> Arc<Roster> {
        self.roster.clone()
    }

    /// Switch to another deployment version and the roster it pins, in one step: the folded
    /// state and the clock stay. Refused (nothing changed) if the roster is not the one pinned
    /// or this station's site is gone.
    pub(crate) fn replace_roster(
        &mut self,
        deployment: Arc<Deployment>,
        roster: Arc<Roster>,
    ) -> Result<(), StationError> {
        if roster.hash() != deployment.roster_hash() {
            return Err(StationError::RosterMismatch);
        }
        if deployment.site(&self.site).is_none() {
            return Err(StationError::UnknownSite(self.site));
        }
        self.deployment = deployment;
        self.roster = roster;
        Ok(())
    }
    /// Take a newer version of the deployment (its sites) and this laptop's site in it, on the
    /// same roster: the folded state and the clock stay, the next events are stamped there.
    /// Refused (nothing changed) if the deployment pins another roster or lacks the site.
    pub(crate) fn set_deployment(
        &mut self,
        deployment: Arc<Deployment>,
        site: SiteId,
    ) -> Result<(), StationError> {
        if self.roster.hash() != deployment.roster_hash() {
            return Err(StationError::RosterMismatch);
        }
        if deployment.site(&site).is_none() {
            return Err(StationError::UnknownSite(site));
        }
        self.deployment = deployment;
        self.site = site;
        Ok(())
    }
    pub fn device(&self) -> DeviceId {
        self.device
    }
    pub fn site(&self) -> SiteId {
        self.site
    }
    pub fn state(&self) -> &State {
        &self.state
    }
    /// Set whose manager's decisions count (DV block lifts, site open/close, the operation's
    /// close: the manifest's managers, `crate::managers`): the state's answers follow at once.
    pub(crate) fn set_manager_authority(&mut self, authority: Option<ManagerAuthority>) {
        self.state.set_manager_authority(authority);
    }
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Write a new event at this station on behalf of `operator`.
    pub fn record(&mut self, operator: OperatorId, body: EventBody) -> Result<Event, StationError> {
        self.record_with(operator, body, |_| Ok::<(), StationError>(()))
    }

    /// Write a new event, with `persist` run on it before anything changes here: if it fails,
    /// the clock and the state are as they were (an acknowledged event is a durable one).
    pub fn record_with<E: From<StationError>>(
        &mut self,
        operator: OperatorId,
        body: EventBody,
        persist: impl FnOnce(&Event) -> Result<(), E>,
    ) -> Result<Event, E> {
        if let EventBody::HouseholdCard { card, .. } = &body
            && card.members.iter().any(|m| m.medical_note.is_some())
        {
            return Err(StationError::PlaintextNote.into());
        }
        self.check_references(&body)?;
        // Tick only once the body is known to be acceptable, so refused input leaves no gap.
        let mut clock = self.hlc.clone();
        let now = self.clock.now_ms();
        let at = match self.state.causal_floor(&body) {
            Some(floor) => clock.tick_after(now, floor),
            None => clock.tick(now),
        };
        let event = Event::new(EventContent {
            device: self.device,
            site: self.site,
            operator,
            at,
            body,
        })
        .map_err(StationError::from)?;
        check_event(&event, &self.deployment, &self.roster).map_err(StationError::from)?;
        persist(&event)?;
        self.hlc = clock;
        self.state.insert(event.clone());
        Ok(event)
    }

    /// Resume from stored events (a restart): the state is their fold, and the clock starts
    /// after the last event this device wrote, whatever the wall clock says now.
    pub fn resume(&mut self, events: Vec<Event>) {
        let own_last = events
            .iter()
            .filter(|e| e.device() == self.device)
            .map(Event::at)
            .max();
        // The manager authority is the manifest's, not the log's: it stays across a resume.
        let authority = self.state.manager_authority().cloned();
        self.state = State::from_events(events);
        self.state.set_manager_authority(authority);
        if let Some(last) = own_last
            && last > self.hlc.last()
        {
            self.hlc = Hlc::resume(last, DEFAULT_MAX_FORWARD_MS);
        }
    }

    /// Start the clock after `at` if it is not already: a resume that leaves out some of this
    /// device's own events (withheld by the manifest, `node::withheld`) still never stamps
    /// at or before them.
    pub(crate) fn advance_past(&mut self, at: Timestamp) {
        if at > self.hlc.last() {
            self.hlc = Hlc::resume(at, DEFAULT_MAX_FORWARD_MS);
        }
    }

    /// The last stamp this station's clock gave or saw.
    pub fn last_stamp(&self) -> Timestamp {
        self.hlc.last()
    }

    /// Take in an event written elsewhere, checked against the deployment and roster first.
    pub fn ingest(&mut self, event: Event) -> Result<Ingested, StationError> {
        check_event(&event, &self.deployment, &self.roster)?;
        Ok(self.ingest_vetted(event))
    }

    /// [`Station::ingest`] for an event that passed `check_event` against this station's
    /// deployment and roster on its way in (the node's vetting of a peer's envelopes, or of
    /// one imported envelope): not checked again.
    pub(crate) fn ingest_vetted(&mut self, event: Event) -> Ingested {
        let skew = self.hlc.observe(event.at(), self.clock.now_ms()).err();
        let inserted = self.state.insert(event);
        Ingested { inserted, skew }
    }

    /// Checks that need the merged state: they apply to this device's own writes only.
    fn check_references(&self, body: &EventBody) -> Result<(), StationError> {
        let walk_ins_known = |people: &[PersonRef]| {
            people.iter().try_for_each(|p| match p {
                PersonRef::WalkIn { .. } if self.state.walk_in(p, None).is_none() => {
                    Err(StationError::UnknownWalkIn(*p))
                }
                _ => Ok(()),
            })
        };
        if let Some(m) = body.stay_members() {
            walk_ins_known(m.as_slice())?;
        }
        let arrives = matches!(
            body,
            EventBody::ShelterCheckIn { .. }
                | EventBody::SupportOnlyRegistration { .. }
                | EventBody::WalkInRegistration { .. }
                | EventBody::VoterCheckIn { .. }
        );
        if arrives
            && matches!(
                self.state.site_state(&self.site, None),
                Some((kazashi_domain::event::SiteState::Closed, _))
            )
        {
            return Err(StationError::SiteClosed(body.name()));
        }
        match body {
            EventBody::UndoCheckIn { target, .. } => match self.state.event(target) {
                None => Err(StationError::UndoTargetMissing(*target)),
                Some(t) if !t.body().is_check_in() => {
                    Err(StationError::UndoTargetNotCheckIn(*target, t.body().name()))
                }
                Some(_) => Ok(()),
            },
            EventBody::SameAs { a, b, .. } | EventBody::NotSame { a, b, .. } => {
                walk_ins_known(&[*a, *b])
            }
            EventBody::CardBinding {
                person: Some(p), ..
            } => walk_ins_known(&[*p]),
            EventBody::VoterCheckIn {
                voter,
                mode,
                override_,
                ..
            } => {
                let blocks = kazashi_domain::detector::vote_blocks(
                    &self.state,
                    &self.roster,
                    &self.deployment,
                    &self.site,
                    voter,
                    *mode,
                );
                let allowed = override_.as_ref().map(|o| &o.blocks);
                let open: Vec<BlockReason> = blocks
                    .into_iter()
                    .filter(|b| !allowed.is_some_and(|a| a.contains(b)))
                    .collect();
                if open.is_empty() {
                    Ok(())
                } else {
                    Err(StationError::Blocked(open))
                }
            }
            _ => Ok(()),
        }
    }
}
