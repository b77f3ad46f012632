//! Property test of the audit chains (issue 24, requirement 4): over random chains of several
//! devices, any deletion of records that are not a device's latest is always reported as a
//! hole covering exactly the deleted numbers; a record replaced by another of the same number
//! is reported (broken link or fork); an untouched set is intact; and the verdict is the same
//! for every delivery order and duplication.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use kazashi_domain::Event;
use kazashi_domain::audit::{AuditAction, AuditRecord, CHAIN_START, ExportKind, SafetyAsker};
use kazashi_domain::audit_chain::{link, next_link, record_of, verify_chains};
use kazashi_domain::event::{EventBody, EventContent};
use kazashi_domain::hlc::Timestamp;
use kazashi_domain::ids::{DeviceId, OperatorId, SiteId};
use proptest::prelude::*;
use std::collections::BTreeSet;

fn action(k: u8) -> AuditAction {
    match k % 3 {
        0 => AuditAction::SafetySearch {
            asker: SafetyAsker::Relative,
            answers: u32::from(k),
        },
        1 => AuditAction::Export {
            kind: ExportKind::Evacuees,
            rows: u32::from(k),
            site: None,
            as_of: None,
        },
        _ => AuditAction::MedicalNoteView,
    }
}

/// A device's chain of `kinds.len()` records, written the way a node writes them: each next
/// link taken from the records written so far.
fn chain(device: u8, kinds: &[u8], operator: &str) -> Vec<Event> {
    let dev = DeviceId([device; 32]);
    let mut out: Vec<Event> = Vec::new();
    for (i, k) in kinds.iter().enumerate() {
        let (seq, prev) = next_link(dev, &out);
        assert_eq!(seq, i as u64 + 1);
        out.push(
            Event::new(EventContent {
                device: dev,
                site: SiteId::new("S1").unwrap(),
                operator: OperatorId::new(operator).unwrap(),
                at: Timestamp::new(1_790_000_000_000 + i as u64 * 1000, 0),
                body: EventBody::Audit(Box::new(AuditRecord {
                    seq,
                    prev,
                    action: action(*k),
                    persons: vec![],
                })),
            })
            .unwrap(),
        );
    }
    out
}

fn seq(e: &Event) -> u64 {
    record_of(e).unwrap().seq
}

/// Every number in the ranges.
fn expand(ranges: &[(u64, u64)]) -> BTreeSet<u64> {
    ranges.iter().flat_map(|(a, b)| *a..=*b).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn deletions_are_always_seen_in_any_order(
        lens in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..30), 1..4),
        deletions in proptest::collection::vec(any::<u16>(), 0..12),
        order in any::<u64>(),
        dup in any::<u8>(),
    ) {
        let chains: Vec<Vec<Event>> = lens
            .iter()
            .enumerate()
            .map(|(d, kinds)| chain(d as u8 + 1, kinds, "op1"))
            .collect();
        let all: Vec<Event> = chains.iter().flatten().cloned().collect();
        // Untouched: every device intact, whatever the order.
        let whole = verify_chains(&all);
        prop_assert_eq!(whole.len(), chains.len());
        prop_assert!(whole.iter().all(|c| c.intact()), "{:?}", whole);

        // Delete some records (by position in the whole set).
        let gone: BTreeSet<usize> = deletions
            .iter()
            .map(|d| usize::from(*d) % all.len())
            .collect();
        let kept: Vec<Event> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| !gone.contains(i))
            .map(|(_, e)| e.clone())
            .collect();
        let verdict = verify_chains(&kept);

        // What must be seen: per device, each deleted number below the highest kept one.
        for c in &chains {
            let dev = c[0].device();
            let kept_here: Vec<u64> = kept.iter().filter(|e| e.device() == dev).map(seq).collect();
            let Some(&top) = kept_here.iter().max() else {
                prop_assert!(verdict.iter().all(|v| v.device != dev));
                continue;
            };
            let deleted: BTreeSet<u64> = (1..top).filter(|s| !kept_here.contains(s)).collect();
            let v = verdict.iter().find(|v| v.device == dev).unwrap();
            prop_assert_eq!(expand(&v.missing), deleted.clone());
            prop_assert_eq!(v.intact(), deleted.is_empty());
            prop_assert!(v.broken.is_empty() && v.forks.is_empty());
            prop_assert_eq!(v.last_seq, top);
        }

        // Any delivery order, with duplicates, gives the same verdict.
        let mut shuffled: Vec<Event> = kept.clone();
        let mut x = order | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        for i in 0..usize::from(dup % 4).min(shuffled.len()) {
            let e = shuffled[i].clone();
            shuffled.push(e);
        }
        prop_assert_eq!(verify_chains(&shuffled), verdict);
    }

    #[test]
    fn a_replaced_record_is_always_seen(
        kinds in proptest::collection::vec(any::<u8>(), 2..20),
        at in any::<u16>(),
        keep_original in any::<bool>(),
    ) {
        let honest = chain(1, &kinds, "op1");
        // The same numbers written with another operator: a forgery of record `i` keeps its
        // number and its `prev`, but is another record, so its successor no longer links.
        let i = usize::from(at) % (honest.len() - 1);
        let forged_content = EventContent {
            operator: OperatorId::new("op2").unwrap(),
            ..honest[i].content().clone()
        };
        let forged = Event::new(forged_content).unwrap();
        prop_assert_ne!(link(&forged), link(&honest[i]));
        let mut set: Vec<Event> = honest.clone();
        if keep_original {
            set.push(forged);
            let v = &verify_chains(&set)[0];
            prop_assert_eq!(&v.forks, &vec![i as u64 + 1]);
        } else {
            set[i] = forged;
            let v = &verify_chains(&set)[0];
            prop_assert_eq!(&v.broken, &vec![i as u64 + 2]);
            prop_assert!(v.missing.is_empty());
        }
    }
}

#[test]
fn a_chain_starts_at_one_with_the_zero_link() {
    let c = chain(9, &[1, 2], "op1");
    assert_eq!(record_of(&c[0]).unwrap().prev, CHAIN_START);
    // A first record that claims another start is broken.
    let mut r = record_of(&c[0]).unwrap().clone();
    r.prev = [1; 32];
    let bad = Event::new(EventContent {
        body: EventBody::Audit(Box::new(r)),
        ..c[0].content().clone()
    })
    .unwrap();
    let v = verify_chains([&bad]);
    assert_eq!(v[0].broken, vec![1]);
    // Records 1 and 2 missing, only 3 held: a hole of two.
    let c3 = chain(9, &[1, 2, 3], "op1");
    let v = verify_chains([&c3[2]]);
    assert_eq!(v[0].missing, vec![(1, 2)]);
    assert_eq!(v[0].missing_count(), 2);
}
