//! The audit chains (`EventBody::Audit`, records in the `audit` module): the link each record
//! names, the next link a device writes, and the per-device verdict — holes, broken links and
//! forks — as a function of the set of records, never of their order.

use crate::audit::{AuditRecord, CHAIN_START};
use crate::event::{Event, EventBody};
use crate::ids::{DeviceId, EventId};
use crate::time::Millis;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// The hash a device's next audit record names as `prev`: SHA-256 over a tag, the event's id
/// and its whole encoded content (the device, operator, time and record, `prev` included).
pub fn link(event: &Event) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"kazashi-audit-link-v1");
    h.update(event.id().0);
    // Encoding an event that exists cannot fail (`Event::new` encoded it); the id alone
    // still binds the content if it ever did.
    h.update(event.encode().unwrap_or_default());
    h.finalize().into()
}

/// The audit record an event carries, if it is one.
pub fn record_of(event: &Event) -> Option<&AuditRecord> {
    match event.body() {
        EventBody::Audit(r) => Some(r.as_ref()),
        _ => None,
    }
}

/// The `(seq, prev)` a device's next audit record takes, given the audit events it wrote so
/// far (others' are skipped): one more than the highest number, chained to that record (the
/// greatest id if a fork left two).
pub fn next_link<'a>(
    device: DeviceId,
    events: impl IntoIterator<Item = &'a Event>,
) -> (u64, [u8; 32]) {
    events
        .into_iter()
        .filter(|e| e.device() == device)
        .filter_map(|e| record_of(e).map(|r| (r.seq, e.id(), e)))
        .max_by_key(|(seq, id, _)| (*seq, *id))
        .map_or((1, CHAIN_START), |(seq, _, e)| {
            (seq.saturating_add(1), link(e))
        })
}

/// One device's chain, as far as the records at hand show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceChain {
    pub device: DeviceId,
    /// Distinct records held.
    pub records: usize,
    /// The highest number held (0: none).
    pub last_seq: u64,
    /// When the last record was written (wall ms of its HLC time).
    pub last_at: Option<Millis>,
    /// Numbers below `last_seq` that no record held carries, as inclusive ranges.
    pub missing: Vec<(u64, u64)>,
    /// Numbers of records whose `prev` is not the hash of a held record before them (the
    /// record before was replaced, or they claim to start a chain they do not start).
    pub broken: Vec<u64>,
    /// Numbers carried by two or more different records.
    pub forks: Vec<u64>,
}

impl DeviceChain {
    /// No hole, no broken link, no fork.
    pub fn intact(&self) -> bool {
        self.missing.is_empty() && self.broken.is_empty() && self.forks.is_empty()
    }

    /// How many records the holes stand for.
    pub fn missing_count(&self) -> u64 {
        self.missing
            .iter()
            .map(|(a, b)| b.saturating_sub(*a).saturating_add(1))
            .sum()
    }
}

/// Check every device's audit chain in `events` (other events are skipped; duplicates count
/// once). One entry per device with at least one audit record, in device order.
pub fn verify_chains<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<DeviceChain> {
    // device → seq → id → (prev, own link, wall ms)
    type BySeq = BTreeMap<u64, BTreeMap<EventId, ([u8; 32], [u8; 32], Millis)>>;
    let mut devices: BTreeMap<DeviceId, BySeq> = BTreeMap::new();
    for e in events {
        if let Some(r) = record_of(e) {
            devices
                .entry(e.device())
                .or_default()
                .entry(r.seq)
                .or_default()
                .insert(e.id(), (r.prev, link(e), e.at().wall_ms));
        }
    }
    devices
        .into_iter()
        .map(|(device, by_seq)| {
            let mut c = DeviceChain {
                device,
                records: by_seq.values().map(BTreeMap::len).sum(),
                last_seq: by_seq.keys().next_back().copied().unwrap_or(0),
                last_at: by_seq.values().flat_map(|m| m.values().map(|v| v.2)).max(),
                missing: Vec::new(),
                broken: Vec::new(),
                forks: Vec::new(),
            };
            let mut expected = 1u64;
            for (&seq, held) in &by_seq {
                if seq > expected {
                    c.missing.push((expected, seq - 1));
                }
                expected = seq.saturating_add(1);
                if held.len() > 1 {
                    c.forks.push(seq);
                }
                let before: BTreeSet<[u8; 32]> = match seq.checked_sub(1) {
                    Some(0) => [CHAIN_START].into(),
                    Some(p) => by_seq
                        .get(&p)
                        .map(|m| m.values().map(|v| v.1).collect())
                        .unwrap_or_default(),
                    None => BTreeSet::new(),
                };
                // A record after a hole is not blamed for it: the hole is reported already.
                let after_hole = seq > 1 && !by_seq.contains_key(&(seq - 1));
                if !after_hole && held.values().any(|(prev, _, _)| !before.contains(prev)) {
                    c.broken.push(seq);
                }
            }
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditAction, SafetyAsker};
    use crate::event::EventContent;
    use crate::hlc::Timestamp;
    use crate::ids::OperatorId;
    use crate::ids::{PersonRef, SiteId};

    fn chain(device: u8, n: u64) -> Vec<Event> {
        let mut out: Vec<Event> = Vec::new();
        for seq in 1..=n {
            let prev = out.last().map_or(CHAIN_START, link);
            out.push(
                Event::new(EventContent {
                    device: DeviceId([device; 32]),
                    site: SiteId::new("S1").unwrap(),
                    operator: OperatorId::new("op1").unwrap(),
                    at: Timestamp::new(1_790_000_000_000 + seq, 0),
                    body: EventBody::Audit(Box::new(AuditRecord {
                        seq,
                        prev,
                        action: AuditAction::SafetySearch {
                            asker: SafetyAsker::Public,
                            answers: 0,
                        },
                        persons: vec![],
                    })),
                })
                .unwrap(),
            );
        }
        out
    }

    #[test]
    fn an_intact_chain_and_a_hole() {
        let c = chain(1, 5);
        let v = verify_chains(&c);
        assert_eq!(v.len(), 1);
        assert!(v[0].intact(), "{v:?}");
        assert_eq!(v[0].last_seq, 5);
        assert_eq!(next_link(DeviceId([1; 32]), &c), (6, link(&c[4])));
        assert_eq!(next_link(DeviceId([2; 32]), &c), (1, CHAIN_START));
        let holed: Vec<&Event> = c
            .iter()
            .filter(|e| record_of(e).unwrap().seq != 3)
            .collect();
        let v = verify_chains(holed);
        assert_eq!(v[0].missing, vec![(3, 3)]);
        assert!(v[0].broken.is_empty());
        assert!(!v[0].intact());
    }

    #[test]
    fn a_replaced_record_breaks_the_link() {
        let mut c = chain(1, 3);
        let other = chain(1, 2);
        // Record 2 of another chain in place of this one's: 3 no longer links to it.
        c[1] = Event::new(EventContent {
            operator: OperatorId::new("op2").unwrap(),
            ..other[1].content().clone()
        })
        .unwrap();
        let v = verify_chains(&c);
        assert_eq!(v[0].broken, vec![3]);
        assert!(v[0].missing.is_empty());
    }

    #[test]
    fn too_many_persons_are_refused() {
        let many: Vec<PersonRef> = (0..33)
            .map(|i| PersonRef::Roster(crate::ids::PersonId::new(&i.to_string()).unwrap()))
            .collect();
        let r = AuditRecord {
            seq: 1,
            prev: CHAIN_START,
            action: AuditAction::MedicalNoteView,
            persons: many,
        };
        let e = Event::new(EventContent {
            device: DeviceId([1; 32]),
            site: SiteId::new("S1").unwrap(),
            operator: OperatorId::new("op1").unwrap(),
            at: Timestamp::new(1_790_000_000_000, 0),
            body: EventBody::Audit(Box::new(r)),
        });
        assert_eq!(e, Err(crate::event::EventError::TooManyMembers(33)));
        assert_eq!(crate::audit::MAX_PERSONS, crate::event::MAX_MEMBERS);
    }
}
