//! A peer's catalog or shard message outside the deployment's scope (more shards than it can
//! have, a site it does not have) is refused before it costs a document, or a decoded entry.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;
use common::*;
use kazashi_domain::{CivilDate, EventId};
use kazashi_sync::{Log, Message, Rejection, Scope, Session, SessionError, ShardId};

fn lax(_: &EventId, _: &[u8]) -> Result<(), Rejection> {
    Ok(())
}

fn catalog(n: i64, s: &str) -> Message {
    Message::Catalog(
        (0..n)
            .map(|i| {
                (
                    ShardId {
                        site: site(s),
                        day: CivilDate::from_days_since_epoch(20_000 + i).unwrap(),
                    },
                    [1; 32],
                )
            })
            .collect(),
    )
}

#[test]
fn a_catalog_larger_than_the_deployment_is_refused_from_its_declared_count() {
    let scope = Scope::new([site("S1"), site("S2")]);
    assert_eq!(scope.max_shards(), 2 * Scope::MAX_DAYS_PER_SITE);
    let ok = catalog(10, "S1").encode();
    assert!(Message::decode_bounded(&ok, scope.max_shards()).is_ok());
    let big = catalog(scope.max_shards() as i64 + 1, "S1").encode();
    assert!(matches!(
        Message::decode_bounded(&big, scope.max_shards()),
        Err(SessionError::TooLarge(_))
    ));
    // Only the count is read: a claim of a million entries with none following is refused
    // as too large, not read as far as it goes.
    let mut claim = vec![0u8];
    kazashi_sync::wire::put_varint(&mut claim, 1_000_000);
    assert!(matches!(
        Message::decode_bounded(&claim, scope.max_shards()),
        Err(SessionError::TooLarge(_))
    ));
}

#[test]
fn messages_outside_the_scope_make_no_documents() {
    let scope = Scope::new([site("S1"), site("S2")]);
    let mut log = Log::new(device(1));
    let mut session = Session::new();
    let out = session.handle_within(&mut log, catalog(3, "ZZ9"), &lax, Some(&scope));
    assert!(out.out_of_scope.unwrap().contains("ZZ9"));
    assert!(out.replies.is_empty());
    let over = catalog(scope.max_shards() as i64 + 1, "S2");
    let out = session.handle_within(&mut log, over, &lax, Some(&scope));
    assert!(
        out.out_of_scope
            .unwrap()
            .contains("more than the deployment")
    );
    let shard = ShardId {
        site: site("ZZ9"),
        day: CivilDate::new(2026, 9, 1).unwrap(),
    };
    let out = session.handle_within(
        &mut log,
        Message::Shard {
            shard,
            sync: vec![0x42, 0, 0, 0, 0],
        },
        &lax,
        Some(&scope),
    );
    assert!(out.out_of_scope.is_some());
    assert_eq!(log.shards().count(), 0);
    assert!(log.catalog().is_empty());
    // Inside the scope, the same catalog is answered as before.
    let out = session.handle_within(&mut log, catalog(3, "S1"), &lax, Some(&scope));
    assert!(out.out_of_scope.is_none());
    assert_eq!(out.differing, Some(3));
}

#[test]
fn no_more_new_shards_than_the_deployment_can_have() {
    let scope = Scope::new([site("S1")]);
    let mut log = Log::new(device(1));
    let mut session = Session::new();
    let shard = |i: i64| ShardId {
        site: site("S1"),
        day: CivilDate::from_days_since_epoch(20_000 + i).unwrap(),
    };
    let empty = vec![0x42, 0, 0, 0, 0];
    for i in 0..Scope::MAX_DAYS_PER_SITE as i64 {
        let m = Message::Shard {
            shard: shard(i),
            sync: empty.clone(),
        };
        assert!(
            session
                .handle_within(&mut log, m, &lax, Some(&scope))
                .out_of_scope
                .is_none()
        );
    }
    assert_eq!(log.shards().count(), Scope::MAX_DAYS_PER_SITE);
    let m = Message::Shard {
        shard: shard(-1),
        sync: empty.clone(),
    };
    let out = session.handle_within(&mut log, m, &lax, Some(&scope));
    assert!(out.out_of_scope.unwrap().contains("as many as"));
    assert_eq!(log.shards().count(), Scope::MAX_DAYS_PER_SITE);
    // One it holds is still taken.
    let m = Message::Shard {
        shard: shard(3),
        sync: empty,
    };
    assert!(
        session
            .handle_within(&mut log, m, &lax, Some(&scope))
            .out_of_scope
            .is_none()
    );
}
