//! Person clusters: which records are one person, from the live same-as assertions.
//!
//! An official who finds that a walk-in is a roster person (or that two walk-ins are one)
//! records a same-as assertion; a not-same assertion says the opposite; either can be
//! retracted. Clusters are built at read time with union-find over the same-as assertions that
//! stand, so they depend only on the event set, never on arrival order: every node that holds the
//! same events groups the same records. A cluster's representative is its least member, so
//! it too is order-free.
//!
//! A not-same assertion between two records that same-as links join (directly or through
//! others) is a *conflict*: the detector raises it for review rather than guessing which
//! assertion is wrong.

use crate::ids::{EventId, PersonRef};
use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use std::collections::BTreeSet;

/// A live same-as / not-same assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Assertion {
    pub event: EventId,
    pub a: PersonRef,
    pub b: PersonRef,
    pub same: bool,
}

/// Records grouped into persons.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Clusters {
    /// The representative of every record named in a standing same-as assertion.
    rep: FxHashMap<PersonRef, PersonRef>,
    /// Each cluster's members, sorted, keyed by its representative.
    members: FxHashMap<PersonRef, Vec<PersonRef>>,
    /// Standing not-same pairs, each as (lesser, greater).
    not_same: BTreeSet<(PersonRef, PersonRef)>,
    /// Not-same assertions whose two records the same-as links join, in event order.
    conflicts: Vec<Conflict>,
}

/// A not-same assertion contradicted by same-as links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Conflict {
    /// The not-same assertion.
    pub not_same: EventId,
    pub a: PersonRef,
    pub b: PersonRef,
}

fn ordered(a: PersonRef, b: PersonRef) -> (PersonRef, PersonRef) {
    if a <= b { (a, b) } else { (b, a) }
}

/// Union-find over dense indices, union by least index so a root is always its set's least.
struct UnionFind {
    parent: Vec<u32>,
}

impl UnionFind {
    fn find(&mut self, mut x: u32) -> u32 {
        let mut root = x;
        while let Some(&p) = self.parent.get(root as usize) {
            if p == root {
                break;
            }
            root = p;
        }
        // Path compression.
        while let Some(slot) = self.parent.get_mut(x as usize) {
            if *slot == root {
                break;
            }
            let next = *slot;
            *slot = root;
            x = next;
        }
        root
    }

    fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        let (lo, hi) = if ra <= rb { (ra, rb) } else { (rb, ra) };
        if let Some(slot) = self.parent.get_mut(hi as usize) {
            *slot = lo;
        }
    }
}

impl Clusters {
    /// Clusters of the given standing assertions (as [`crate::State::assertions`] gives them).
    pub fn new(assertions: &[Assertion]) -> Self {
        // Dense indices in record order, so the least index is the least record.
        let mut records: Vec<PersonRef> = assertions
            .iter()
            .filter(|a| a.same)
            .flat_map(|a| [a.a, a.b])
            .collect();
        records.sort_unstable();
        records.dedup();
        let index = |p: &PersonRef| records.binary_search(p).ok().map(|i| i as u32);
        let mut uf = UnionFind {
            parent: (0..records.len() as u32).collect(),
        };
        for a in assertions.iter().filter(|a| a.same) {
            if let (Some(x), Some(y)) = (index(&a.a), index(&a.b)) {
                uf.union(x, y);
            }
        }
        let mut c = Clusters::default();
        for (i, p) in records.iter().enumerate() {
            let root = uf.find(i as u32);
            let Some(r) = records.get(root as usize) else {
                continue;
            };
            c.rep.insert(*p, *r);
            // Records are visited in order, so each member list comes out sorted.
            c.members.entry(*r).or_default().push(*p);
        }
        let mut conflicts = Vec::new();
        for a in assertions.iter().filter(|a| !a.same) {
            c.not_same.insert(ordered(a.a, a.b));
            if a.a != a.b && c.same(&a.a, &a.b) {
                conflicts.push(Conflict {
                    not_same: a.event,
                    a: a.a,
                    b: a.b,
                });
            }
        }
        conflicts.sort_unstable();
        c.conflicts = conflicts;
        c
    }

    /// The record that stands for `p`'s cluster (its least member; `p` itself if alone).
    pub fn rep(&self, p: &PersonRef) -> PersonRef {
        self.rep.get(p).copied().unwrap_or(*p)
    }

    /// Whether `p` is linked to any other record.
    pub fn is_clustered(&self, p: &PersonRef) -> bool {
        self.rep.contains_key(p)
    }

    /// The records of `p`'s cluster, sorted (just `p` if alone).
    pub fn members(&self, p: &PersonRef) -> SmallVec<[PersonRef; 2]> {
        match self.rep.get(p).and_then(|r| self.members.get(r)) {
            Some(m) => m.iter().copied().collect(),
            None => smallvec::smallvec![*p],
        }
    }

    /// Whether same-as links make `a` and `b` one person.
    pub fn same(&self, a: &PersonRef, b: &PersonRef) -> bool {
        a == b || self.rep(a) == self.rep(b)
    }

    /// Whether an official has settled the pair either way (one person, or not-same).
    pub fn settled(&self, a: &PersonRef, b: &PersonRef) -> bool {
        self.same(a, b) || self.not_same.contains(&ordered(*a, *b))
    }

    /// Not-same assertions that same-as links contradict.
    pub fn conflicts(&self) -> &[Conflict] {
        &self.conflicts
    }

    /// Clusters of more than one record.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{EventId, PersonId};
    use proptest::prelude::*;

    fn p(i: u8) -> PersonRef {
        PersonRef::Roster(PersonId::new(&format!("P{i:03}")).unwrap())
    }

    fn same(i: u8, a: u8, b: u8) -> Assertion {
        Assertion {
            event: EventId([i; 16]),
            a: p(a),
            b: p(b),
            same: true,
        }
    }

    fn not_same(i: u8, a: u8, b: u8) -> Assertion {
        Assertion {
            same: false,
            ..same(i, a, b)
        }
    }

    #[test]
    fn links_join_transitively_and_the_least_record_represents() {
        let c = Clusters::new(&[same(1, 5, 3), same(2, 3, 9), same(3, 20, 21)]);
        assert!(c.same(&p(5), &p(9)));
        assert_eq!(c.rep(&p(9)), p(3));
        assert_eq!(c.members(&p(5)).as_slice(), &[p(3), p(5), p(9)]);
        assert!(!c.same(&p(5), &p(20)));
        assert_eq!(c.rep(&p(7)), p(7));
        assert_eq!(c.members(&p(7)).as_slice(), &[p(7)]);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn a_not_same_settles_a_pair_and_conflicts_with_links_that_join_it() {
        let c = Clusters::new(&[
            same(1, 1, 2),
            same(2, 2, 3),
            not_same(3, 1, 3),
            not_same(4, 4, 5),
        ]);
        assert!(c.settled(&p(5), &p(4)));
        assert!(!c.settled(&p(4), &p(6)));
        assert_eq!(
            c.conflicts(),
            &[Conflict {
                not_same: EventId([3; 16]),
                a: p(1),
                b: p(3)
            }]
        );
    }

    proptest! {
        /// The clusters are the connected components of the links, whatever their order.
        #[test]
        fn clusters_are_components_in_any_order(
            links in proptest::collection::vec((0u8..12, 0u8..12), 0..20),
            seed in any::<u64>(),
        ) {
            let asserted: Vec<Assertion> = links
                .iter()
                .enumerate()
                .map(|(i, (a, b))| same(i as u8, *a, *b))
                .collect();
            let mut shuffled = asserted.clone();
            let mut s = seed;
            for i in (1..shuffled.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (s >> 33) as usize % (i + 1));
            }
            let c = Clusters::new(&asserted);
            prop_assert_eq!(&c, &Clusters::new(&shuffled));
            // Reachability by a plain fixpoint, against union-find.
            let mut reach = [[false; 12]; 12];
            for (i, row) in reach.iter_mut().enumerate() {
                row[i] = true;
            }
            for (a, b) in &links {
                reach[*a as usize][*b as usize] = true;
                reach[*b as usize][*a as usize] = true;
            }
            for k in 0..12 {
                for i in 0..12 {
                    for j in 0..12 {
                        if reach[i][k] && reach[k][j] {
                            reach[i][j] = true;
                        }
                    }
                }
            }
            for i in 0..12u8 {
                for j in 0..12u8 {
                    prop_assert_eq!(c.same(&p(i), &p(j)), reach[i as usize][j as usize]);
                }
                prop_assert!(c.rep(&p(i)) <= p(i));
            }
        }
    }
}
