//! Synthetic event streams for benchmarks: a week of a shelter operation, written by two devices
//! per shelter, with check-ins, departures, leave, transfers, walk-ins, cards and undos in
//! realistic proportions. Deterministic for a seed.

use crate::population::{Municipality, walk_in_group};
use kazashi_domain::event::*;
use kazashi_domain::ids::{
    CardKey, DeviceId, HouseholdId, HouseholdRef, OperatorId, PersonRef, SiteId,
};
use kazashi_domain::roster::{CareNeed, Sex};
use kazashi_domain::text::{Label, Note};
use kazashi_domain::{Deployment, Event, EventContent, Hlc};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// 2026-09-01 06:00 JST, the start of every synthetic timeline.
pub const START_MS: u64 = 1_788_210_000_000;

struct Writer {
    device: DeviceId,
    site: SiteId,
    hlc: Hlc,
}

/// A uniformly chosen element (`None` for an empty slice).
fn pick<'a, T>(rng: &mut ChaCha8Rng, v: &'a [T]) -> Option<&'a T> {
    if v.is_empty() {
        return None;
    }
    v.get(rng.random_range(0..v.len()))
}

/// A household card for `members` (the first is the representative) staying in the shelter,
/// with the household's consent and DV block, and nothing else filled in.
pub fn household_card(
    members: &[PersonRef],
    disclosure: Disclosure,
    dv_block: bool,
) -> HouseholdCard {
    HouseholdCard {
        representative: members.first().copied(),
        phone: None,
        damage: None,
        flooding: None,
        staying: StayingPlace::InShelter,
        car: None,
        pets: None,
        disclosure,
        dv_block,
        members: members
            .iter()
            .map(|p| MemberCard {
                person: *p,
                care_needs: Default::default(),
                allergies: None,
                medication: None,
                disclosure: None,
                medical_note: None,
            })
            .collect(),
        notes: None,
    }
}

/// `n` events of a shelter operation over `m`'s roster and `d`'s shelters.
pub fn shelter_week(m: &Municipality, d: &Deployment, n: usize, seed: u64) -> Vec<Event> {
    shelter_week_by(m, d, n, seed, &|i, _, k| {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&(i as u64).to_le_bytes());
        b[8] = k;
        DeviceId(b)
    })
}

/// [`shelter_week`] with the writing devices chosen by `device(shelter index, site, k)` for the
/// two laptops (`k` = 0, 1) at each shelter — to sign the events with real keys.
pub fn shelter_week_by(
    m: &Municipality,
    d: &Deployment,
    n: usize,
    seed: u64,
    device: &dyn Fn(usize, &SiteId, u8) -> DeviceId,
) -> Vec<Event> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let shelters: Vec<SiteId> = d.sites().filter(|s| s.is_shelter()).map(|s| s.id).collect();
    // Read through `for_each_entry`, so that a roster answered from disk serves as well (ids
    // only in memory: 10 M persons, about a third of a GB).
    let mut households: Vec<HouseholdId> = Vec::new();
    let mut persons: Vec<kazashi_domain::PersonId> = Vec::new();
    m.roster.for_each_entry(&mut |e| {
        households.push(e.household);
        persons.push(e.person);
    });
    households.sort_unstable();
    households.dedup();
    if shelters.is_empty() || households.is_empty() {
        return Vec::new();
    }
    let mut writers: Vec<Writer> = shelters
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            (0..2u8).map(move |k| Writer {
                device: device(i, s, k),
                site: *s,
                hlc: Hlc::new(u64::MAX / 4),
            })
        })
        .collect();
    let operator = OperatorId::new("demo01").ok();
    let week_ms: u64 = 7 * 24 * 3600 * 1000;
    let step = (week_ms / n.max(1) as u64).max(1);
    // (members, site) of checked-in groups, and of groups on leave.
    let mut present: Vec<(Vec<PersonRef>, usize)> = Vec::new();
    let mut away: Vec<(Vec<PersonRef>, usize)> = Vec::new();
    let mut walk_in_groups: Vec<Vec<PersonRef>> = Vec::new();
    // Persons registered at a shelter (present, on leave or transferred).
    let mut busy: rustc_hash::FxHashSet<PersonRef> = Default::default();
    let mut recent_check_ins: Vec<kazashi_domain::EventId> = Vec::new();
    let mut out = Vec::with_capacity(n);
    let mut t = START_MS;
    let Some(operator) = operator else { return out };
    while out.len() < n {
        t += step;
        let roll = rng.random_range(0..1000u32);
        let site_ix = rng.random_range(0..shelters.len());
        let w_ix = site_ix * 2 + usize::from(rng.random_bool(0.5));
        let mut site_of = site_ix;
        let body = match roll {
            0..=449 => {
                // A household (or part of it) arrives.
                let group: Vec<PersonRef> =
                    if rng.random_range(0..20) == 0 && !walk_in_groups.is_empty() {
                        walk_in_groups.swap_remove(rng.random_range(0..walk_in_groups.len()))
                    } else {
                        // A household already registered somewhere does not come again,
                        // except for the rare one that moves without checking out (about
                        // one check-in in 500), which the detector is there to catch.
                        let again = rng.random_range(0..500) == 0;
                        let Some(h) = (0..8)
                            .filter_map(|_| pick(&mut rng, &households).copied())
                            .find(|h| {
                                again
                                    || !m
                                        .roster
                                        .household(h)
                                        .iter()
                                        .any(|e| busy.contains(&PersonRef::Roster(e.person)))
                            })
                        else {
                            continue;
                        };
                        let mem = m.roster.household(&h);
                        let take = if rng.random_bool(0.8) {
                            mem.len()
                        } else {
                            rng.random_range(1..=mem.len().max(1))
                        };
                        mem.iter()
                            .take(take)
                            .map(|e| PersonRef::Roster(e.person))
                            .collect()
                    };
                let Ok(members) = Members::new(group.clone()) else {
                    continue;
                };
                busy.extend(group.iter().copied());
                present.push((group, site_ix));
                EventBody::ShelterCheckIn {
                    household: None,
                    members,
                    method: IdMethod::CardTap,
                }
            }
            450..=569 if !present.is_empty() => {
                let (g, s) = present.swap_remove(rng.random_range(0..present.len()));
                site_of = s;
                for p in &g {
                    busy.remove(p);
                }
                let Ok(members) = Members::new(g) else {
                    continue;
                };
                EventBody::ShelterCheckOut {
                    members,
                    reason: CheckOutReason::Home,
                }
            }
            570..=669 if !present.is_empty() => {
                let i = rng.random_range(0..present.len());
                let (g, s) = present.swap_remove(i);
                site_of = s;
                away.push((g.clone(), s));
                let Ok(members) = Members::new(g) else {
                    continue;
                };
                EventBody::TemporaryLeave {
                    members,
                    kind: LeaveKind::Outing,
                    expected_return: Some(t + 4 * 3600 * 1000),
                }
            }
            670..=749 if !away.is_empty() => {
                let (g, s) = away.swap_remove(rng.random_range(0..away.len()));
                site_of = s;
                present.push((g.clone(), s));
                let Ok(members) = Members::new(g) else {
                    continue;
                };
                EventBody::ReturnFromLeave { members }
            }
            750..=779 if !present.is_empty() && shelters.len() > 1 => {
                let (g, s) = present.swap_remove(rng.random_range(0..present.len()));
                let to = (s + 1 + rng.random_range(0..shelters.len() - 1)) % shelters.len();
                site_of = s;
                let Ok(members) = Members::new(g) else {
                    continue;
                };
                let Some(&to) = shelters.get(to) else {
                    continue;
                };
                EventBody::Transfer { members, to }
            }
            780..=819 => {
                let Some(&h) = pick(&mut rng, &households) else {
                    continue;
                };
                let g: Vec<PersonRef> = m
                    .roster
                    .household(&h)
                    .iter()
                    .map(|e| PersonRef::Roster(e.person))
                    .collect();
                let Ok(members) = Members::new(g) else {
                    continue;
                };
                let staying = if rng.random_bool(0.5) {
                    StayingPlace::Car
                } else {
                    StayingPlace::AtHome
                };
                EventBody::SupportOnlyRegistration {
                    household: Some(HouseholdRef::Roster(h)),
                    members,
                    staying,
                }
            }
            820..=849 => {
                let k = rng.random_range(1..4usize);
                let members = walk_in_group(k, out.len() as u64 ^ seed);
                EventBody::WalkInRegistration {
                    members,
                    home_municipality: Label::new("長岡市").ok(),
                }
            }
            850..=899 => {
                let Some(&h) = pick(&mut rng, &households) else {
                    continue;
                };
                let mem: Vec<PersonRef> = m
                    .roster
                    .household(&h)
                    .iter()
                    .map(|e| PersonRef::Roster(e.person))
                    .collect();
                let mut card = household_card(&mem, Disclosure::Relatives, false);
                card.damage = Some(HousingDamage::Partial);
                card.flooding = Some(Flooding::BelowFloor);
                for member in &mut card.members {
                    member.care_needs = [CareNeed::Medication].into();
                }
                EventBody::HouseholdCard {
                    household: HouseholdRef::Roster(h),
                    card: Box::new(card),
                }
            }
            900..=919 if !recent_check_ins.is_empty() => {
                let Some(&target) = pick(&mut rng, &recent_check_ins) else {
                    continue;
                };
                let Ok(reason) = Note::new("別世帯を選択していた") else {
                    continue;
                };
                EventBody::UndoCheckIn { target, reason }
            }
            920..=989 => {
                let Some(&person) = pick(&mut rng, &persons) else {
                    continue;
                };
                let mut key = [0u8; 32];
                rng.fill(&mut key[..]);
                EventBody::CardBinding {
                    card: CardKey(key),
                    person: Some(PersonRef::Roster(person)),
                }
            }
            _ => EventBody::SiteLifecycle(SiteState::Opened),
        };
        let wi = if site_of == site_ix {
            w_ix
        } else {
            site_of * 2
        };
        let Some(w) = writers.get_mut(wi) else {
            continue;
        };
        // Each laptop's clock is off by up to two minutes.
        let skew = (wi as u64 % 5) * 30_000;
        let at = w.hlc.tick(t + skew);
        let content = EventContent {
            device: w.device,
            site: w.site,
            operator,
            at,
            body,
        };
        let Ok(event) = Event::new(content) else {
            continue;
        };
        match event.body() {
            EventBody::ShelterCheckIn { .. } => {
                recent_check_ins.push(event.id());
                if recent_check_ins.len() > 64 {
                    recent_check_ins.remove(0);
                }
            }
            EventBody::WalkInRegistration { members, .. } => {
                walk_in_groups.push(
                    (0..members.len())
                        .map(|i| PersonRef::WalkIn {
                            registration: event.id(),
                            index: i as u16,
                        })
                        .collect(),
                );
            }
            _ => {}
        }
        out.push(event);
    }
    out
}

/// An election's voter check-ins: every eligible voter of the roster votes once with
/// probability `turnout` — early at the early-voting stations (a third of them) or on election
/// day at the station of their 投票区 — and `double_votes` of them a second time at another
/// station (the planted double votes the detector must find). Signed by `device(station index,
/// site, 0)`. Returns the events and the planted voters.
pub fn election_votes(
    m: &Municipality,
    d: &Deployment,
    turnout: f64,
    double_votes: usize,
    seed: u64,
    device: &dyn Fn(usize, &SiteId, u8) -> DeviceId,
) -> (Vec<Event>, Vec<kazashi_domain::PersonId>) {
    use kazashi_domain::deployment::{DeploymentKind, SiteKind};
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xe1ec);
    let DeploymentKind::Election {
        election_day,
        early_voting_from,
    } = d.kind()
    else {
        return (Vec::new(), Vec::new());
    };
    let sites: Vec<&kazashi_domain::Site> = d.sites().collect();
    let early_sites: Vec<usize> = (0..sites.len())
        .filter(|&i| {
            matches!(
                sites.get(i).map(|s| &s.kind),
                Some(SiteKind::PollingStation {
                    early_voting: true,
                    ..
                })
            )
        })
        .collect();
    let station_of = |precinct: &kazashi_domain::ids::PrecinctId| {
        sites.iter().position(|s| {
            matches!(&s.kind, SiteKind::PollingStation { precincts, election_day: true, .. } if precincts.contains(precinct))
        })
    };
    let Some(operator) = OperatorId::new("poll01").ok() else {
        return (Vec::new(), Vec::new());
    };
    let early_days =
        (election_day.days_since_epoch() - early_voting_from.days_since_epoch()).max(1);
    let mut hlcs: Vec<Hlc> = sites.iter().map(|_| Hlc::new(u64::MAX / 4)).collect();
    let mut planned: Vec<(u64, usize, kazashi_domain::PersonId, VoteMode)> = Vec::new();
    let mut voters = Vec::new();
    for e in m.roster.entries() {
        let Some(info) = &e.voter else { continue };
        if !info.flags.eligible || info.flags.absentee_voted || info.flags.early_voted {
            continue;
        }
        if !rng.random_bool(turnout.clamp(0.0, 1.0)) {
            continue;
        }
        let minute = rng.random_range(0..13 * 60u64);
        let (day, site, mode) = if rng.random_bool(1.0 / 3.0) && !early_sites.is_empty() {
            let k = rng.random_range(0..early_days);
            let Some(day) = kazashi_domain::CivilDate::from_days_since_epoch(
                early_voting_from.days_since_epoch() + k,
            ) else {
                continue;
            };
            let Some(&site) = pick(&mut rng, &early_sites) else {
                continue;
            };
            (day, site, VoteMode::Early(EarlyVotingReason::Duties))
        } else {
            let Some(site) = station_of(&info.precinct) else {
                continue;
            };
            (election_day, site, VoteMode::ElectionDay)
        };
        let Some(midnight) = day.jst_midnight() else {
            continue;
        };
        planned.push((midnight + (7 * 60 + minute) * 60_000, site, e.person, mode));
        voters.push((e.person, site));
    }
    // The planted double votes: the same voter again on election day at another station.
    let mut planted = Vec::new();
    let day_sites: Vec<usize> = (0..sites.len())
        .filter(|&i| {
            matches!(
                sites.get(i).map(|s| &s.kind),
                Some(SiteKind::PollingStation {
                    election_day: true,
                    ..
                })
            )
        })
        .collect();
    for _ in 0..double_votes {
        let Some(&(voter, first)) = pick(&mut rng, &voters) else {
            break;
        };
        let others: Vec<usize> = day_sites.iter().copied().filter(|&s| s != first).collect();
        let Some(&site) = pick(&mut rng, &others) else {
            continue;
        };
        let Some(midnight) = election_day.jst_midnight() else {
            continue;
        };
        let minute = rng.random_range(0..13 * 60u64);
        planned.push((
            midnight + (7 * 60 + minute) * 60_000,
            site,
            voter,
            VoteMode::ElectionDay,
        ));
        planted.push(voter);
    }
    planned.sort_by_key(|(t, ..)| *t);
    let mut out = Vec::with_capacity(planned.len());
    for (t, site_ix, voter, mode) in planned {
        let (Some(site), Some(hlc)) = (sites.get(site_ix), hlcs.get_mut(site_ix)) else {
            continue;
        };
        let content = EventContent {
            device: device(site_ix, &site.id, 0),
            site: site.id,
            operator,
            at: hlc.tick(t),
            body: EventBody::VoterCheckIn {
                voter,
                mode,
                method: IdMethod::AdmissionTicket,
                override_: None,
            },
        };
        if let Ok(e) = Event::new(content) {
            out.push(e);
        }
    }
    planted.sort_unstable();
    planted.dedup();
    (out, planted)
}

/// A check-in, by roster lookup, of the whole `i`-th household of the roster (in roster order,
/// cycling): what drills and tests write.
pub fn household_check_in(roster: &kazashi_domain::Roster, i: usize) -> Option<EventBody> {
    let mut households: Vec<HouseholdId> = roster.entries().iter().map(|e| e.household).collect();
    households.dedup();
    let h = *households.get(i % households.len().max(1))?;
    let members = roster
        .household(&h)
        .iter()
        .map(|e| PersonRef::Roster(e.person))
        .collect();
    Some(EventBody::ShelterCheckIn {
        household: Some(HouseholdRef::Roster(h)),
        members: Members::new(members).ok()?,
        method: IdMethod::Lookup,
    })
}

/// Prefill a status report from a station's own counts.
pub fn status_report(
    kind: ReportKind,
    c: &kazashi_domain::state::SiteCounts,
    opened_at: u64,
) -> StatusReport {
    let n = |v: Option<&u32>| v.copied().unwrap_or(0);
    StatusReport {
        kind,
        opened_at: Some(opened_at),
        counts: ReportCounts {
            persons: c.registered(),
            households: c.households,
            male: n(c.by_sex.get(&Some(Sex::Male))),
            female: n(c.by_sex.get(&Some(Sex::Female))),
            sex_unspecified: n(c.by_sex.get(&Some(Sex::Unspecified))) + n(c.by_sex.get(&None)),
            by_age: c
                .by_age
                .iter()
                .filter_map(|(k, v)| k.map(|b| (b, *v)))
                .collect(),
            care_needs: c.care_needs.clone(),
            supported_outside: c.support_only.values().sum(),
        },
        building: BuildingSafety::Safe,
        lifelines: Lifelines {
            power: LifelineStatus::Available,
            water: LifelineStatus::Limited,
            gas: LifelineStatus::Out,
            comms: LifelineStatus::Limited,
            toilets: LifelineStatus::Available,
        },
        shortages: Label::new("毛布")
            .ok()
            .map(|item| Shortage {
                item,
                quantity: Some(30),
                note: None,
            })
            .into_iter()
            .collect(),
        issues: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::population::{PopulationSpec, generate, shelter_operation};
    use kazashi_domain::validate::check_event;
    use kazashi_domain::{CivilDate, State};

    #[test]
    fn events_are_valid_and_deterministic() {
        let m = generate(PopulationSpec {
            households: 300,
            seed: 3,
            today: CivilDate::new(2026, 9, 1).unwrap(),
            voters: false,
        })
        .unwrap();
        let d = shelter_operation(&m, 5).unwrap();
        let a = shelter_week(&m, &d, 2000, 1);
        let b = shelter_week(&m, &d, 2000, 1);
        assert_eq!(a.len(), 2000);
        assert_eq!(a, b);
        for e in &a {
            check_event(e, &d, &m.roster).unwrap();
        }
        let s = State::from_events(a);
        let present: u32 = d
            .sites()
            .map(|x| s.site_counts(&x.id, &m.roster, m.today, None).present)
            .sum();
        assert!(present > 100, "{present} present");
    }
}
