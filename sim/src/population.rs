//! A synthetic municipality: households, residents, voters, and deployments over them.
//! Deterministic for a seed.

use crate::names::{
    CITY, FAMILY, FEMALE, FEMALE_FIRST, FEMALE_LAST, MALE, MALE_FIRST, MALE_LAST, TOWNS,
};
use kazashi_domain::deployment::{Deployment, DeploymentKind, ShelterType, Site, SiteKind};
use kazashi_domain::ids::{DeploymentId, HouseholdId, ListNumber, PersonId, PrecinctId, SiteId};
use kazashi_domain::roster::{
    CareNeed, Roster, RosterEntry, RosterError, RosterKind, Sex, VoterFlags, VoterInfo,
};
use kazashi_domain::text::{Address, KanaReading, Label, PersonName};
use kazashi_domain::time::CivilDate;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct PopulationSpec {
    pub households: usize,
    pub seed: u64,
    /// Reference date for ages and birth dates.
    pub today: CivilDate,
    /// Voter roster (adults with 投票区 and 名簿番号) instead of a resident roster.
    pub voters: bool,
}

/// The generated municipality.
#[derive(Debug, Clone)]
pub struct Municipality {
    pub roster: Roster,
    pub today: CivilDate,
    pub seed: u64,
}

/// Why generation failed (a bug in the generator, reported instead of a panic).
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("generated roster was refused: {0}")]
    Roster(#[from] RosterError),
    #[error("generated value was refused: {0}")]
    Value(String),
}

fn weighted<'a, T>(
    rng: &mut ChaCha8Rng,
    items: &'a [T],
    weight: impl Fn(&T) -> u32,
) -> Option<&'a T> {
    let total: u32 = items.iter().map(&weight).sum();
    if total == 0 {
        return items.first();
    }
    let mut x = rng.random_range(0..total);
    for it in items {
        let w = weight(it);
        if x < w {
            return Some(it);
        }
        x -= w;
    }
    items.last()
}

fn value<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, GenError> {
    r.map_err(|e| GenError::Value(e.to_string()))
}

/// A group of `k` people from another town (one family, varied by `n`), as the demo and
/// workloads register them. Synthetic names only.
pub fn walk_in_group(k: usize, n: u64) -> Vec<kazashi_domain::event::WalkInPerson> {
    // A family from another town, varied by `n`: a common family name, given names and
    // birth dates drawn from it.
    let mut x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5151;
    let mut next = move |m: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % m.max(1) as u64) as usize
    };
    let fam = crate::names::FAMILY.get(next(crate::names::FAMILY.len()));
    (0..k)
        .filter_map(|j| {
            let fam = fam?;
            let (pool, sex) = if j % 2 == 0 {
                (crate::names::MALE, Sex::Male)
            } else {
                (crate::names::FEMALE, Sex::Female)
            };
            let given = pool.get(next(pool.len()))?;
            Some(kazashi_domain::event::WalkInPerson {
                name: PersonName::new(&format!("{} {}", fam.0, given.0)).ok()?,
                kana: kazashi_domain::text::KanaReading::new(&format!("{} {}", fam.1, given.1))
                    .ok(),
                birth_date: CivilDate::new(
                    1940 + next(70) as i32,
                    1 + next(12) as u32,
                    1 + next(28) as u32,
                )
                .ok(),
                sex,
                address: None,
                care_needs: BTreeSet::new(),
            })
        })
        .collect()
}

/// A given name and its reading for a person of `sex` aged `age`: half the time one of the
/// listed names of their generation (a window of about a quarter of the list around it, older
/// people towards its start), otherwise composed from two parts.
fn given_name(rng: &mut ChaCha8Rng, sex: Sex, age: u32) -> (String, String) {
    let (pool, first, last) = if sex == Sex::Female {
        (FEMALE, FEMALE_FIRST, FEMALE_LAST)
    } else {
        (MALE, MALE_FIRST, MALE_LAST)
    };
    if rng.random_bool(0.5) {
        let f = first.get(rng.random_range(0..first.len()));
        let l = last.get(rng.random_range(0..last.len()));
        if let (Some(f), Some(l)) = (f, l)
            && f.0 != l.0
        {
            return (format!("{}{}", f.0, l.0), format!("{}{}", f.1, l.1));
        }
    }
    let n = pool.len();
    let centre = (100u32.saturating_sub(age) as usize * n / 101).min(n.saturating_sub(1));
    let half = (n / 8).max(1);
    let lo = centre.saturating_sub(half);
    let hi = (centre + half).min(n.saturating_sub(1));
    let (g, k) = pool
        .get(rng.random_range(lo..=hi))
        .copied()
        .unwrap_or(("花子", "はなこ"));
    (g.to_owned(), k.to_owned())
}

/// Precinct code of a town index ("01", "02", …).
pub fn precinct_of_town(town: usize) -> String {
    format!("{:02}", town + 1)
}

/// Generate a municipality.
pub fn generate(spec: PopulationSpec) -> Result<Municipality, GenError> {
    generate_with_precincts(spec, 0)
}

/// [`generate`] with voters spread over `precincts` 投票区 (town and 丁目 together, up to
/// five per town) instead of one per town (`0`). The roster is otherwise the same.
pub fn generate_with_precincts(
    spec: PopulationSpec,
    precincts: usize,
) -> Result<Municipality, GenError> {
    let mut households = Households::new(spec, precincts);
    let mut entries = Vec::new();
    while let Some(members) = households.next_household()? {
        entries.extend(members);
    }
    let kind = if spec.voters {
        RosterKind::Voters
    } else {
        RosterKind::Residents
    };
    Ok(Municipality {
        roster: Roster::new(kind, entries, spec.today)?,
        today: spec.today,
        seed: spec.seed,
    })
}

/// [`generate_with_precincts`]' roster one household at a time, in person-id order (the same
/// entries, for a roster too large to hold in memory).
pub struct Households {
    spec: PopulationSpec,
    precincts: usize,
    rng: ChaCha8Rng,
    person_seq: u64,
    list_seq: Vec<u32>,
    h: usize,
}

impl Households {
    pub fn new(spec: PopulationSpec, precincts: usize) -> Self {
        Households {
            spec,
            precincts,
            rng: ChaCha8Rng::seed_from_u64(spec.seed),
            person_seq: 0,
            list_seq: vec![0u32; TOWNS.len().max(precincts)],
            h: 0,
        }
    }

    /// The next household's members (none for a household of minors on a voter roster), or
    /// `None` past the last.
    pub fn next_household(&mut self) -> Result<Option<Vec<RosterEntry>>, GenError> {
        if self.h >= self.spec.households {
            return Ok(None);
        }
        let h = self.h;
        self.h += 1;
        let (spec, precincts) = (self.spec, self.precincts);
        let rng = &mut self.rng;
        let mut entries = Vec::new();
        let sizes: [(usize, u32); 6] = [(1, 38), (2, 28), (3, 16), (4, 12), (5, 4), (6, 2)];
        let y = spec.today.year();
        let size = weighted(rng, &sizes, |s| s.1).map_or(1, |s| s.0);
        let fam = weighted(rng, FAMILY, |f| f.2)
            .ok_or_else(|| GenError::Value("no family names".into()))?;
        // One household in six whose name has variant glyphs is registered with the variant.
        let family = match fam.3 {
            [] => fam.0,
            vs if rng.random_range(0..6) == 0 => vs
                .get(rng.random_range(0..vs.len()))
                .copied()
                .unwrap_or(fam.0),
            _ => fam.0,
        };
        let town = rng.random_range(0..TOWNS.len());
        let town_name = TOWNS.get(town).copied().unwrap_or("本町");
        let chome: usize = rng.random_range(1..6);
        let address = format!(
            "{CITY}{town_name}{chome}丁目{}番{}号",
            rng.random_range(1..30),
            rng.random_range(1..20)
        );
        let precinct = if precincts == 0 {
            town
        } else {
            (town + TOWNS.len() * (chome - 1)) % precincts
        };
        let household = value(HouseholdId::new(&format!("{:08}", 20_000_000 + h)))?;
        let head_age: i32 = if size == 1 {
            rng.random_range(20..96)
        } else {
            rng.random_range(25..90)
        };
        let head_sex = if rng.random_bool(0.5) {
            Sex::Male
        } else {
            Sex::Female
        };
        for i in 0..size {
            let (age, sex) = match i {
                0 => (head_age, head_sex),
                1 => (
                    (head_age + rng.random_range(-5..6)).clamp(18, 100),
                    if head_sex == Sex::Male {
                        Sex::Female
                    } else {
                        Sex::Male
                    },
                ),
                _ if size >= 5 && i == size - 1 && head_age < 65 => (
                    (head_age + rng.random_range(24..34)).min(101),
                    if rng.random_bool(0.6) {
                        Sex::Female
                    } else {
                        Sex::Male
                    },
                ),
                _ => (
                    (head_age - rng.random_range(22..40)).max(rng.random_range(0..6)),
                    if rng.random_bool(0.5) {
                        Sex::Male
                    } else {
                        Sex::Female
                    },
                ),
            };
            let birth = value(CivilDate::new(
                y - age,
                rng.random_range(1..13),
                rng.random_range(1..29),
            ))?;
            let birth = if birth > spec.today {
                value(CivilDate::new(y - age - 1, 1, 1))?
            } else {
                birth
            };
            let age_now = birth.age_on(spec.today);
            let (given, given_kana) = given_name(rng, sex, age_now);
            let (given, given_kana) = (given.as_str(), given_kana.as_str());
            let mut needs = BTreeSet::new();
            let roll = |rng: &mut ChaCha8Rng, p: f64| rng.random_bool(p);
            if age_now >= 75 && roll(rng, 0.2) {
                needs.insert(CareNeed::NursingCare);
            }
            if age_now <= 1 {
                needs.insert(CareNeed::Infant);
            }
            if sex == Sex::Female && (20..=40).contains(&age_now) && roll(rng, 0.05) {
                needs.insert(CareNeed::Pregnant);
            }
            for (need, p) in [
                (CareNeed::PhysicalDisability, 0.03),
                (CareNeed::VisualImpairment, 0.006),
                (CareNeed::HearingImpairment, 0.01),
                (CareNeed::IntellectualDisability, 0.008),
                (CareNeed::MentalDisability, 0.02),
                (CareNeed::IntractableDisease, 0.008),
                (
                    CareNeed::Medication,
                    if age_now >= 65 { 0.25 } else { 0.03 },
                ),
                (
                    CareNeed::FoodAllergy,
                    if age_now < 15 { 0.06 } else { 0.01 },
                ),
            ] {
                if roll(rng, p) {
                    needs.insert(need);
                }
            }
            self.person_seq += 1;
            let person = value(PersonId::new(&format!(
                "{:010}",
                1_000_000_000 + self.person_seq
            )))?;
            let voter = if spec.voters {
                if age_now < 18 {
                    continue;
                }
                let seq = self.list_seq.get_mut(precinct).map(|s| {
                    *s += 1;
                    *s
                });
                Some(VoterInfo {
                    list_number: value(ListNumber::new(&format!(
                        "{}-{:05}",
                        precinct_of_town(precinct),
                        seq.unwrap_or(0)
                    )))?,
                    precinct: value(PrecinctId::new(&precinct_of_town(precinct)))?,
                    flags: VoterFlags {
                        eligible: !roll(rng, 0.002),
                        absentee_voted: roll(rng, 0.004),
                        early_voted: false,
                    },
                })
            } else {
                None
            };
            entries.push(RosterEntry {
                person,
                household,
                name: value(PersonName::new(&format!("{family} {given}")))?,
                kana: value(KanaReading::new(&format!("{} {}", fam.1, given_kana)))?,
                birth_date: birth,
                sex,
                address: value(Address::new(&address))?,
                voter,
                care_needs: needs,
                support_measure: false,
            });
        }
        Ok(Some(entries))
    }
}

fn deployment_id(seed: u64, tag: u8) -> DeploymentId {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&seed.to_le_bytes());
    b[15] = tag;
    DeploymentId(b)
}

/// Site names for generated shelters: schools and community halls of the fictional city.
fn shelter_name(i: usize) -> String {
    const KINDS: [&str; 4] = ["小学校", "中学校", "公民館", "コミュニティセンター"];
    let town = TOWNS.get(i % TOWNS.len()).copied().unwrap_or("本町");
    let kind = KINDS
        .get((i / TOWNS.len()) % KINDS.len())
        .copied()
        .unwrap_or("公民館");
    let round = i / (TOWNS.len() * KINDS.len());
    if round == 0 {
        format!("かざし市立{town}{kind}")
    } else {
        format!("かざし市立{town}第{}{kind}", round + 1)
    }
}

/// A shelter operation with `shelters` shelters (S001…) and a command center (HQ).
pub fn shelter_operation(m: &Municipality, shelters: usize) -> Result<Deployment, GenError> {
    let mut sites = Vec::new();
    for i in 0..shelters {
        // The last shelter is a welfare shelter (福祉避難所); every eighth is temporary.
        let (shelter_type, capacity) = match i {
            _ if shelters >= 3 && i == shelters - 1 => (ShelterType::Welfare, 40),
            _ if i % 8 == 7 => (ShelterType::Temporary, 80),
            _ => (ShelterType::Designated, 150 + 50 * (i as u32 % 5)),
        };
        sites.push(Site {
            id: value(SiteId::new(&format!("S{:03}", i + 1)))?,
            name: value(Label::new(&shelter_name(i)))?,
            kind: SiteKind::Shelter {
                shelter_type,
                capacity,
            },
        });
    }
    sites.push(command_center()?);
    value(Deployment::new(
        deployment_id(m.seed, 1),
        value(Label::new("かざし市 豪雨災害（訓練）"))?,
        DeploymentKind::ShelterOperation,
        m.roster.hash(),
        sites,
    ))
}

fn command_center() -> Result<Site, GenError> {
    Ok(Site {
        id: value(SiteId::new("HQ"))?,
        name: value(Label::new("かざし市役所 災害対策本部"))?,
        kind: SiteKind::CommandCenter,
    })
}

/// What sets one generated election apart from another.
struct ElectionPlan<'a> {
    early_offices: &'a [String],
    /// Election-day station *i* serves 投票区 *i*.
    stations: &'a [String],
    early_days: i64,
    tag: u8,
    label: &'a str,
}

/// The early-voting offices (E1…), the election-day stations (P01…) and the election board
/// (HQ) of `plan`.
fn election_of(
    m: &Municipality,
    election_day: CivilDate,
    plan: ElectionPlan<'_>,
) -> Result<Deployment, GenError> {
    let mut sites = Vec::new();
    for (i, name) in plan.early_offices.iter().enumerate() {
        sites.push(Site {
            id: value(SiteId::new(&format!("E{}", i + 1)))?,
            name: value(Label::new(name))?,
            kind: SiteKind::PollingStation {
                precincts: vec![],
                early_voting: true,
                election_day: false,
            },
        });
    }
    for (i, name) in plan.stations.iter().enumerate() {
        sites.push(Site {
            id: value(SiteId::new(&format!("P{}", precinct_of_town(i))))?,
            name: value(Label::new(name))?,
            kind: SiteKind::PollingStation {
                precincts: vec![value(PrecinctId::new(&precinct_of_town(i)))?],
                early_voting: false,
                election_day: true,
            },
        });
    }
    sites.push(Site {
        id: value(SiteId::new("HQ"))?,
        name: value(Label::new("かざし市 選挙管理委員会"))?,
        kind: SiteKind::CommandCenter,
    });
    let from = CivilDate::from_days_since_epoch(election_day.days_since_epoch() - plan.early_days)
        .ok_or_else(|| GenError::Value("early voting start out of range".into()))?;
    value(Deployment::new(
        deployment_id(m.seed, plan.tag),
        value(Label::new(plan.label))?,
        DeploymentKind::Election {
            election_day,
            early_voting_from: from,
        },
        m.roster.hash(),
        sites,
    ))
}

/// An election of any size: `early` early-voting offices (E1…) open for `early_days` days
/// before election day, and `stations` election-day stations (P01…, station *i* serving
/// 投票区 *i*, as [`generate_with_precincts`] assigns them), and the election board (HQ).
pub fn election_sized(
    m: &Municipality,
    election_day: CivilDate,
    early: usize,
    early_days: i64,
    stations: usize,
) -> Result<Deployment, GenError> {
    let early_offices: Vec<String> = (1..=early)
        .map(|i| format!("かざし市 第{i}期日前投票所"))
        .collect();
    let stations: Vec<String> = (1..=stations).map(|i| format!("第{i}投票所")).collect();
    election_of(
        m,
        election_day,
        ElectionPlan {
            early_offices: &early_offices,
            stations: &stations,
            early_days,
            tag: 3,
            label: "かざし市議会議員選挙（訓練）",
        },
    )
}

/// An election: two early-voting offices (E1, E2), one election-day station per 投票区 (P01…),
/// and the election board (HQ).
pub fn election(m: &Municipality, election_day: CivilDate) -> Result<Deployment, GenError> {
    let early_offices = [
        "かざし市役所 期日前投票所".to_owned(),
        "かざし市 北部支所 期日前投票所".to_owned(),
    ];
    let stations: Vec<String> = TOWNS
        .iter()
        .enumerate()
        .map(|(i, town)| format!("第{}投票所（{town}）", i + 1))
        .collect();
    election_of(
        m,
        election_day,
        ElectionPlan {
            early_offices: &early_offices,
            stations: &stations,
            early_days: 12,
            tag: 2,
            label: "かざし市長選挙（訓練）",
        },
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec(voters: bool) -> PopulationSpec {
        PopulationSpec {
            households: 400,
            seed: 7,
            today: CivilDate::new(2026, 11, 21).unwrap(),
            voters,
        }
    }

    #[test]
    fn deterministic_for_a_seed() {
        let a = generate(spec(false)).unwrap();
        let b = generate(spec(false)).unwrap();
        assert_eq!(a.roster.hash(), b.roster.hash());
        let c = generate(PopulationSpec {
            seed: 8,
            ..spec(false)
        })
        .unwrap();
        assert_ne!(a.roster.hash(), c.roster.hash());
    }

    #[test]
    fn looks_like_a_town() {
        let m = generate(spec(false)).unwrap();
        let n = m.roster.len();
        // 400 households of about 2.2 persons.
        assert!((700..1200).contains(&n), "{n} residents");
        let old = m
            .roster
            .entries()
            .iter()
            .filter(|e| e.birth_date.age_on(m.today) >= 65)
            .count();
        assert!(old * 100 / n > 15, "elderly share {}%", old * 100 / n);
        assert!(m.roster.entries().iter().any(|e| e.name.as_str().starts_with("髙橋") || e.name.as_str().starts_with("渡邉")));
        assert!(m.roster.entries().iter().any(|e| !e.care_needs.is_empty()));
    }

    #[test]
    fn voters_are_adults_with_precincts() {
        let m = generate(spec(true)).unwrap();
        assert!(
            m.roster
                .entries()
                .iter()
                .all(|e| e.birth_date.age_on(m.today) >= 18 && e.voter.is_some())
        );
        let d = election(&m, CivilDate::new(2026, 12, 6).unwrap()).unwrap();
        assert_eq!(
            d.sites().filter(|s| s.is_polling_station()).count(),
            2 + TOWNS.len()
        );
        let s = shelter_operation(&generate(spec(false)).unwrap(), 30).unwrap();
        assert_eq!(s.sites().filter(|s| s.is_shelter()).count(), 30);
    }
}
