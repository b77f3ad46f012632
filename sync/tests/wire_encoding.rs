//! The hand-written encoders lay bytes out exactly as postcard does (the decoders are
//! postcard's): protocol messages for any shard, day and payload, and sealed envelopes.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use kazashi_domain::ids::{DeploymentId, SiteId};
use kazashi_domain::time::CivilDate;
use kazashi_sync::{Message, ShardId};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

fn shard(site: &str, days: i64) -> ShardId {
    ShardId {
        site: SiteId::new(site).unwrap(),
        day: CivilDate::from_days_since_epoch(days).unwrap(),
    }
}

/// The envelope's fields as the decoder reads them.
#[derive(Serialize, Deserialize)]
struct Mirror {
    deployment: DeploymentId,
    event: Vec<u8>,
    signature: Vec<u8>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn messages_are_laid_out_as_postcard_lays_them(
        sites in proptest::collection::vec("[A-Z][0-9A-Z]{0,7}", 0..40),
        days in proptest::collection::vec(-20_000i64..40_000, 40),
        digest in any::<[u8; 32]>(),
        payload in proptest::collection::vec(any::<u8>(), 0..2000),
    ) {
        let catalog = Message::Catalog(
            sites.iter().zip(&days).map(|(s, d)| (shard(s, *d), digest)).collect(),
        );
        prop_assert_eq!(catalog.encode(), postcard::to_allocvec(&catalog).unwrap());
        prop_assert_eq!(Message::decode(&catalog.encode()).unwrap(), catalog);
        let one = Message::Shard {
            shard: shard(sites.first().map_or("S001", String::as_str), days[0]),
            sync: payload,
        };
        prop_assert_eq!(one.encode(), postcard::to_allocvec(&one).unwrap());
        prop_assert_eq!(Message::decode(&one.encode()).unwrap(), one);
    }
}

#[test]
fn a_sealed_envelope_is_postcards_layout_of_its_fields() {
    use kazashi_domain::event::{EventBody, SiteState};
    use kazashi_domain::ids::OperatorId;
    use kazashi_domain::{Event, EventContent, Timestamp};
    let key = kazashi_sync::DeviceKey::from_seed([7; 32]);
    let event = Event::new(EventContent {
        device: key.device_id(),
        site: SiteId::new("S001").unwrap(),
        operator: OperatorId::new("uketsuke").unwrap(),
        at: Timestamp::new(1_788_000_000_000, 0),
        body: EventBody::SiteLifecycle(SiteState::Opened),
    })
    .unwrap();
    let sealed = kazashi_sync::seal(&event, DeploymentId([3; 16]), &key).unwrap();
    let fields: Mirror = postcard::from_bytes(&sealed).unwrap();
    assert_eq!(fields.deployment, DeploymentId([3; 16]));
    assert_eq!(fields.event, event.encode().unwrap());
    assert_eq!(fields.signature.len(), 64);
    assert_eq!(postcard::to_allocvec(&fields).unwrap(), sealed);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn reconciliation_and_whole_shards_are_laid_out_as_postcard_lays_them(
        sites in proptest::collection::vec("[A-Z][0-9A-Z]{0,7}", 1..20),
        days in proptest::collection::vec(-20_000i64..40_000, 20),
        fp in any::<[u8; 16]>(),
        digest in any::<[u8; 32]>(),
        doc in proptest::collection::vec(any::<u8>(), 0..2000),
        lists in proptest::collection::vec(any::<bool>(), 0..8),
    ) {
        use kazashi_sync::rbsr::{Mode, Range, Reconcile};
        let s = |i: usize| shard(&sites[i % sites.len()], days[i % days.len()]);
        let ranges = lists.iter().enumerate().map(|(i, list)| Range {
            lower: (i % 3 != 0).then(|| s(i)),
            upper: (i % 2 == 0).then(|| s(i + 1)),
            mode: if *list { Mode::List((0..i).map(|j| (s(j), digest)).collect()) } else { Mode::Fingerprint(fp) },
        }).collect();
        let r = Message::Reconcile(Reconcile { ranges, want: (0..lists.len()).map(s).collect() });
        prop_assert_eq!(r.encode(), postcard::to_allocvec(&r).unwrap());
        prop_assert_eq!(Message::decode(&r.encode()).unwrap(), r);
        let w = Message::Whole { shard: s(0), doc };
        prop_assert_eq!(w.encode(), postcard::to_allocvec(&w).unwrap());
        prop_assert_eq!(Message::decode(&w.encode()).unwrap(), w);
    }
}
