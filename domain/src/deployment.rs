//! A deployment: one operation (a flood, an earthquake) or one election, its sites and the roster
//! it uses (pinned by hash).

use crate::ids::{DeploymentId, PrecinctId, RosterHash, SiteId};
use crate::text::Label;
use crate::time::CivilDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// 避難所の種別 as used in the shelter status report (codes 1–5, 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ShelterType {
    /// 1 避難所 (designated shelter).
    Designated,
    /// 2 臨時避難所 (temporary, undesignated).
    Temporary,
    /// 3 避難場所兼避難所 (evacuation area and shelter).
    AreaAndShelter,
    /// 4 広域避難場所 (wide-area evacuation area).
    WideArea,
    /// 5 一時避難場所 (temporary evacuation area).
    TemporaryArea,
    /// 9 福祉避難所 (welfare shelter).
    Welfare,
}

impl ShelterType {
    pub fn code(self) -> u8 {
        match self {
            ShelterType::Designated => 1,
            ShelterType::Temporary => 2,
            ShelterType::AreaAndShelter => 3,
            ShelterType::WideArea => 4,
            ShelterType::TemporaryArea => 5,
            ShelterType::Welfare => 9,
        }
    }
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => ShelterType::Designated,
            2 => ShelterType::Temporary,
            3 => ShelterType::AreaAndShelter,
            4 => ShelterType::WideArea,
            5 => ShelterType::TemporaryArea,
            9 => ShelterType::Welfare,
            _ => return None,
        })
    }
    pub fn label_ja(self) -> &'static str {
        match self {
            ShelterType::Designated => "避難所",
            ShelterType::Temporary => "臨時避難所",
            ShelterType::AreaAndShelter => "避難場所兼避難所",
            ShelterType::WideArea => "広域避難場所",
            ShelterType::TemporaryArea => "一時避難場所",
            ShelterType::Welfare => "福祉避難所",
        }
    }
}

/// What a site is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SiteKind {
    Shelter {
        shelter_type: ShelterType,
        /// Persons the site can take.
        capacity: u32,
    },
    PollingStation {
        /// 投票区 served on election day. Empty for an early-voting-only office, which takes
        /// voters from every precinct.
        precincts: Vec<PrecinctId>,
        /// 期日前投票所: takes early votes.
        early_voting: bool,
        /// 当日投票所: open on election day.
        election_day: bool,
    },
    /// 災害対策本部 / 選挙管理委員会: sees everything, checks no one in.
    CommandCenter,
}

/// One place where laptops run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub id: SiteId,
    pub name: Label,
    pub kind: SiteKind,
}

impl Site {
    pub fn is_shelter(&self) -> bool {
        matches!(self.kind, SiteKind::Shelter { .. })
    }
    pub fn is_polling_station(&self) -> bool {
        matches!(self.kind, SiteKind::PollingStation { .. })
    }
}

/// Shelter operation or election.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentKind {
    ShelterOperation,
    Election {
        /// 投票日.
        election_day: CivilDate,
        /// First day of early voting (the day after the 告示日/公示日).
        early_voting_from: CivilDate,
    },
}

/// Why a deployment description was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeploymentError {
    #[error("a deployment needs at least one site")]
    NoSites,
    #[error("site id {0} appears more than once")]
    DuplicateSite(SiteId),
    #[error("site {0} is a polling station, which a shelter operation cannot have")]
    PollingStationInShelterOperation(SiteId),
    #[error("site {0} is a shelter, which an election cannot have")]
    ShelterInElection(SiteId),
    #[error("shelter {0} has capacity 0")]
    ZeroCapacity(SiteId),
    #[error("polling station {0} takes neither early nor election-day votes")]
    StationTakesNoVotes(SiteId),
    #[error("polling station {0} is open on election day but serves no 投票区")]
    StationWithoutPrecinct(SiteId),
    #[error("early voting starts ({from}) after election day ({day})")]
    EarlyVotingAfterElectionDay { from: CivilDate, day: CivilDate },
}

/// A validated deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DeploymentRepr", into = "DeploymentRepr")]
pub struct Deployment {
    id: DeploymentId,
    name: Label,
    kind: DeploymentKind,
    roster: RosterHash,
    sites: BTreeMap<SiteId, Site>,
}

#[derive(Serialize, Deserialize)]
struct DeploymentRepr {
    id: DeploymentId,
    name: Label,
    kind: DeploymentKind,
    roster: RosterHash,
    sites: Vec<Site>,
}

impl TryFrom<DeploymentRepr> for Deployment {
    type Error = DeploymentError;
    fn try_from(r: DeploymentRepr) -> Result<Self, DeploymentError> {
        Deployment::new(r.id, r.name, r.kind, r.roster, r.sites)
    }
}

impl From<Deployment> for DeploymentRepr {
    fn from(d: Deployment) -> Self {
        DeploymentRepr {
            id: d.id,
            name: d.name,
            kind: d.kind,
            roster: d.roster,
            sites: d.sites.into_values().collect(),
        }
    }
}

impl Deployment {
    pub fn new(
        id: DeploymentId,
        name: Label,
        kind: DeploymentKind,
        roster: RosterHash,
        sites: Vec<Site>,
    ) -> Result<Self, DeploymentError> {
        if sites.is_empty() {
            return Err(DeploymentError::NoSites);
        }
        if let DeploymentKind::Election {
            election_day,
            early_voting_from,
        } = kind
            && early_voting_from > election_day
        {
            return Err(DeploymentError::EarlyVotingAfterElectionDay {
                from: early_voting_from,
                day: election_day,
            });
        }
        let mut map = BTreeMap::new();
        for s in sites {
            match (&s.kind, kind) {
                (SiteKind::PollingStation { .. }, DeploymentKind::ShelterOperation) => {
                    return Err(DeploymentError::PollingStationInShelterOperation(s.id));
                }
                (SiteKind::Shelter { .. }, DeploymentKind::Election { .. }) => {
                    return Err(DeploymentError::ShelterInElection(s.id));
                }
                (SiteKind::Shelter { capacity: 0, .. }, _) => {
                    return Err(DeploymentError::ZeroCapacity(s.id));
                }
                (
                    SiteKind::PollingStation {
                        early_voting: false,
                        election_day: false,
                        ..
                    },
                    _,
                ) => {
                    return Err(DeploymentError::StationTakesNoVotes(s.id));
                }
                (
                    SiteKind::PollingStation {
                        precincts,
                        election_day: true,
                        ..
                    },
                    _,
                ) if precincts.is_empty() => {
                    return Err(DeploymentError::StationWithoutPrecinct(s.id));
                }
                _ => {}
            }
            if map.contains_key(&s.id) {
                return Err(DeploymentError::DuplicateSite(s.id));
            }
            map.insert(s.id, s);
        }
        Ok(Self {
            id,
            name,
            kind,
            roster,
            sites: map,
        })
    }

    pub fn id(&self) -> DeploymentId {
        self.id
    }
    pub fn name(&self) -> &Label {
        &self.name
    }
    pub fn kind(&self) -> DeploymentKind {
        self.kind
    }
    pub fn is_election(&self) -> bool {
        matches!(self.kind, DeploymentKind::Election { .. })
    }
    /// The hash of the roster this deployment uses.
    pub fn roster_hash(&self) -> RosterHash {
        self.roster
    }
    pub fn site(&self, id: &SiteId) -> Option<&Site> {
        self.sites.get(id)
    }
    /// Sites in id order.
    pub fn sites(&self) -> impl Iterator<Item = &Site> {
        self.sites.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shelter(id: &str, cap: u32) -> Site {
        Site {
            id: SiteId::new(id).unwrap(),
            name: Label::new("三条市立第一中学校").unwrap(),
            kind: SiteKind::Shelter {
                shelter_type: ShelterType::Designated,
                capacity: cap,
            },
        }
    }

    fn station(id: &str, precincts: &[&str], early: bool, day: bool) -> Site {
        Site {
            id: SiteId::new(id).unwrap(),
            name: Label::new("第1投票所").unwrap(),
            kind: SiteKind::PollingStation {
                precincts: precincts
                    .iter()
                    .map(|p| PrecinctId::new(p).unwrap())
                    .collect(),
                early_voting: early,
                election_day: day,
            },
        }
    }

    fn make(kind: DeploymentKind, sites: Vec<Site>) -> Result<Deployment, DeploymentError> {
        Deployment::new(
            DeploymentId([1; 16]),
            Label::new("令和8年 豪雨").unwrap(),
            kind,
            RosterHash([0; 32]),
            sites,
        )
    }

    fn election() -> DeploymentKind {
        DeploymentKind::Election {
            election_day: CivilDate::new(2026, 12, 6).unwrap(),
            early_voting_from: CivilDate::new(2026, 11, 24).unwrap(),
        }
    }

    #[test]
    fn shelter_codes_round_trip() {
        for code in [1, 2, 3, 4, 5, 9] {
            assert_eq!(ShelterType::from_code(code).unwrap().code(), code);
        }
        assert_eq!(ShelterType::from_code(6), None);
    }

    #[test]
    fn validates_sites_against_kind() {
        assert!(
            make(
                DeploymentKind::ShelterOperation,
                vec![shelter("S1", 200), shelter("S2", 50)]
            )
            .is_ok()
        );
        assert_eq!(
            make(DeploymentKind::ShelterOperation, vec![]),
            Err(DeploymentError::NoSites)
        );
        assert!(matches!(
            make(
                DeploymentKind::ShelterOperation,
                vec![shelter("S1", 1), shelter("S1", 2)]
            ),
            Err(DeploymentError::DuplicateSite(_))
        ));
        assert!(matches!(
            make(DeploymentKind::ShelterOperation, vec![shelter("S1", 0)]),
            Err(DeploymentError::ZeroCapacity(_))
        ));
        assert!(matches!(
            make(
                DeploymentKind::ShelterOperation,
                vec![station("P1", &["01"], false, true)]
            ),
            Err(DeploymentError::PollingStationInShelterOperation(_))
        ));
        assert!(
            make(
                election(),
                vec![
                    station("E1", &[], true, false),
                    station("P1", &["01"], false, true)
                ]
            )
            .is_ok()
        );
        assert!(matches!(
            make(election(), vec![station("P1", &[], false, true)]),
            Err(DeploymentError::StationWithoutPrecinct(_))
        ));
        assert!(matches!(
            make(election(), vec![station("P1", &["01"], false, false)]),
            Err(DeploymentError::StationTakesNoVotes(_))
        ));
        assert!(matches!(
            make(election(), vec![shelter("S1", 5)]),
            Err(DeploymentError::ShelterInElection(_))
        ));
    }

    #[test]
    fn decoding_revalidates() {
        let d = make(DeploymentKind::ShelterOperation, vec![shelter("S1", 200)]).unwrap();
        let bytes = postcard::to_allocvec(&d).unwrap();
        assert_eq!(postcard::from_bytes::<Deployment>(&bytes).unwrap(), d);
        let bad = DeploymentRepr {
            id: d.id,
            name: d.name.clone(),
            kind: DeploymentKind::ShelterOperation,
            roster: d.roster,
            sites: vec![shelter("S1", 0)],
        };
        let bytes = postcard::to_allocvec(&bad).unwrap();
        assert!(postcard::from_bytes::<Deployment>(&bytes).is_err());
    }
}
