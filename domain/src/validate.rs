//! Checks of an event against the deployment and the roster.
//!
//! These checks depend only on the event, the deployment and the roster, never on other events,
//! so a node applies them to events from peers as well as its own, in any arrival order. Checks
//! that need the merged state (does the walk-in exist, is the voter already checked in) belong
//! to the writer's live checks and to the detector: a peer's event is a fact once signed.

use crate::deployment::{Deployment, SiteKind};
use crate::event::{Event, EventBody, EventError, VoteMode};
use crate::ids::{HouseholdRef, PersonRef, SiteId};
use crate::roster::Roster;

/// Check `event` against `deployment` and `roster`.
pub fn check_event(
    event: &Event,
    deployment: &Deployment,
    roster: &Roster,
) -> Result<(), EventError> {
    check(event, deployment, Some(roster))
}

/// [`check_event`] without the roster look-ups (a person, household or voter the roster does
/// not hold is not refused): for a peer's signed event, which may name a person of a roster
/// version this laptop has not switched to yet, or one a newer roster dropped. Whether the
/// roster holds them is the view's concern, not replication's (`kazashi_node::node`).
pub fn check_event_shape(event: &Event, deployment: &Deployment) -> Result<(), EventError> {
    check(event, deployment, None)
}

fn check(
    event: &Event,
    deployment: &Deployment,
    roster: Option<&Roster>,
) -> Result<(), EventError> {
    let site_id = event.site();
    let site = deployment
        .site(&site_id)
        .ok_or(EventError::UnknownSite(site_id))?;
    let body = event.body();
    let name = body.name();
    let wrong = |reason: &'static str| EventError::WrongSite {
        event: name,
        site: site_id,
        reason,
    };
    let known = |p: &PersonRef| match p {
        PersonRef::Roster(id) if roster.is_some_and(|r| r.get(id).is_none()) => {
            Err(EventError::UnknownPerson(*id))
        }
        _ => Ok(()),
    };
    let shelter_site = |s: &SiteId| -> Result<(), EventError> {
        match deployment.site(s) {
            None => Err(EventError::UnknownSite(*s)),
            Some(x) if !x.is_shelter() => Err(EventError::WrongSite {
                event: name,
                site: *s,
                reason: "not a shelter",
            }),
            Some(_) => Ok(()),
        }
    };

    let shelter_event = matches!(
        body,
        EventBody::ShelterCheckIn { .. }
            | EventBody::ShelterCheckOut { .. }
            | EventBody::TemporaryLeave { .. }
            | EventBody::ReturnFromLeave { .. }
            | EventBody::Transfer { .. }
            | EventBody::SupportOnlyRegistration { .. }
            | EventBody::WalkInRegistration { .. }
            | EventBody::HouseholdCard { .. }
            | EventBody::ShelterStatusReport(_)
    );
    let election_event = matches!(
        body,
        EventBody::VoterCheckIn { .. } | EventBody::BallotTally { .. }
    );
    if shelter_event && deployment.is_election() {
        return Err(EventError::WrongDeploymentKind(name));
    }
    if election_event && !deployment.is_election() {
        return Err(EventError::WrongDeploymentKind(name));
    }
    if shelter_event && !site.is_shelter() {
        return Err(wrong("not a shelter"));
    }
    if let Some(members) = body.stay_members() {
        members.as_slice().iter().try_for_each(known)?;
    }
    let household = match body {
        EventBody::ShelterCheckIn { household, .. }
        | EventBody::SupportOnlyRegistration { household, .. } => household.as_ref(),
        EventBody::HouseholdCard { household, .. } | EventBody::DvBlockLift { household, .. } => {
            Some(household)
        }
        _ => None,
    };
    if let Some(HouseholdRef::Roster(h)) = household
        && roster.is_some_and(|r| !r.has_household(h))
    {
        return Err(EventError::UnknownHousehold(*h));
    }

    match body {
        EventBody::Transfer { to, .. } => shelter_site(to),
        EventBody::ShelterCheckOut {
            reason: crate::event::CheckOutReason::OtherShelter(Some(s)),
            ..
        } => shelter_site(s),
        EventBody::HouseholdCard { card, .. } => card
            .members
            .iter()
            .map(|m| &m.person)
            .chain(card.representative.iter())
            .try_for_each(known),
        EventBody::VoterCheckIn { voter, mode, .. } => {
            let SiteKind::PollingStation {
                early_voting,
                election_day,
                ..
            } = &site.kind
            else {
                return Err(wrong("not a polling station"));
            };
            match mode {
                VoteMode::Early(_) if !early_voting => {
                    return Err(wrong("this station takes no early votes"));
                }
                VoteMode::ElectionDay if !election_day => {
                    return Err(wrong("this station is not open on election day"));
                }
                _ => {}
            }
            if let Some(roster) = roster {
                let entry = roster.get(voter).ok_or(EventError::UnknownPerson(*voter))?;
                if entry.voter.is_none() {
                    return Err(EventError::NotAVoter(*voter));
                }
            }
            Ok(())
        }
        EventBody::BallotTally { .. } if !site.is_polling_station() => {
            Err(wrong("not a polling station"))
        }
        EventBody::CardBinding {
            person: Some(p), ..
        }
        | EventBody::Consent { person: p, .. }
        | EventBody::ReportedSafe { person: p, .. } => known(p),
        EventBody::SameAs { a, b, .. } | EventBody::NotSame { a, b, .. } => {
            known(a).and_then(|()| known(b))
        }
        _ => Ok(()),
    }
}
