//! The node over a real encrypted SQLite file: durable writes, cold start, the wrong
//! passphrase, quarantine of bad envelopes, sync between two laptops, compaction and the index
//! rebuild.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use kazashi_domain::event::{EventBody, IdMethod, Members};
use kazashi_domain::ids::{HouseholdRef, OperatorId, PersonRef, SiteId};
use kazashi_domain::{CivilDate, DeviceId, Roster};
use kazashi_node::store::KdfParams;
use kazashi_node::{BundleScope, ManualClock, Node, NodeError, Peer, Store, StoreError};
use kazashi_sim::fleet::{Fleet, fleet};
use kazashi_sim::population::{PopulationSpec, generate, shelter_operation};
use kazashi_sim::workload::START_MS;
use kazashi_sync::{BundleError, DeviceKey, OpenCounts, open_counts, seal};
use std::path::Path;
use std::sync::Arc;

struct World {
    roster: Arc<Roster>,
    fleet: Fleet,
    dir: tempfile::TempDir,
    clock: ManualClock,
}

fn world() -> World {
    let m = generate(PopulationSpec {
        households: 60,
        seed: 5,
        today: CivilDate::new(2026, 9, 1).unwrap(),
        voters: false,
    })
    .unwrap();
    let d = shelter_operation(&m, 3).unwrap();
    World {
        roster: Arc::new(m.roster.clone()),
        fleet: fleet(&d, 5).unwrap(),
        dir: tempfile::tempdir().unwrap(),
        clock: ManualClock::new(START_MS),
    }
}

fn site(s: &str) -> SiteId {
    SiteId::new(s).unwrap()
}

fn op() -> OperatorId {
    OperatorId::new("staff01").unwrap()
}

fn key_of(w: &World, s: &str) -> DeviceKey {
    DeviceKey::from_seed(w.fleet.key(&site(s)).unwrap().secret_bytes())
}

fn create(w: &World, file: &str, s: &str) -> Node<ManualClock> {
    Node::create(
        &w.dir.path().join(file),
        "correct horse",
        KdfParams::FAST_INSECURE,
        key_of(w, s),
        &w.fleet.manifest,
        w.roster.clone(),
        site(s),
        w.clock.clone(),
    )
    .unwrap()
}

fn reopen(w: &World, file: &str, s: &str) -> Node<ManualClock> {
    Node::open(
        &w.dir.path().join(file),
        "correct horse",
        w.roster.clone(),
        site(s),
        w.clock.clone(),
    )
    .unwrap()
}

/// Check in the `i`-th household of the roster.
fn check_in(roster: &Roster, i: usize) -> EventBody {
    let mut households: Vec<_> = roster.entries().iter().map(|e| e.household).collect();
    households.dedup();
    let h = households[i % households.len()];
    let members = roster
        .household(&h)
        .iter()
        .map(|e| PersonRef::Roster(e.person))
        .collect();
    EventBody::ShelterCheckIn {
        household: Some(HouseholdRef::Roster(h)),
        members: Members::new(members).unwrap(),
        method: IdMethod::Lookup,
    }
}

fn raw_file_contains(path: &Path, needle: &[u8]) -> bool {
    let bytes = std::fs::read(path).unwrap();
    bytes.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn writes_survive_a_restart_and_the_file_is_encrypted() {
    let w = world();
    let mut a = create(&w, "a.db", "S001");
    let mut written = Vec::new();
    for i in 0..10 {
        w.clock.advance(60_000);
        written.push(a.record(op(), check_in(&w.roster, i)).unwrap());
    }
    let before = a.state().clone();
    let person = written[0].body().stay_members().unwrap().as_slice()[0];
    drop(a);

    let path = w.dir.path().join("a.db");
    assert!(
        !raw_file_contains(&path, b"SQLite format 3"),
        "the header is in clear"
    );
    if let PersonRef::Roster(p) = person {
        assert!(
            !raw_file_contains(&path, p.as_str().as_bytes()),
            "a person id is in clear"
        );
    }

    let a = reopen(&w, "a.db", "S001");
    assert_eq!(a.state(), &before);
    assert_eq!(a.state().len(), 10);
    // The folded state (the index the views query) has the person's stay from that event.
    let stays = a.state().stays(&person, None);
    assert_eq!(stays.values().next().unwrap().event, written[0].id());
}

#[test]
fn the_wrong_passphrase_is_told_apart() {
    let w = world();
    drop(create(&w, "a.db", "S001"));
    let err = Node::open(
        &w.dir.path().join("a.db"),
        "wrong horse",
        w.roster.clone(),
        site("S001"),
        w.clock.clone(),
    )
    .err()
    .unwrap();
    assert!(
        matches!(err, NodeError::Store(StoreError::WrongPassphrase)),
        "{err}"
    );
    let missing = Store::open(&w.dir.path().join("none.db"), "x")
        .err()
        .unwrap();
    assert!(matches!(missing, StoreError::Missing(_)));
    // Creating over an existing store is refused.
    let again = Store::create(&w.dir.path().join("a.db"), "x", KdfParams::FAST_INSECURE);
    assert!(matches!(again, Err(StoreError::Exists(_))));
}

#[test]
fn a_device_not_in_the_manifest_cannot_enrol() {
    let w = world();
    let err = Node::create(
        &w.dir.path().join("x.db"),
        "pw",
        KdfParams::FAST_INSECURE,
        DeviceKey::from_seed([42; 32]),
        &w.fleet.manifest,
        w.roster.clone(),
        site("S001"),
        w.clock.clone(),
    )
    .err()
    .unwrap();
    assert!(matches!(err, NodeError::NotEnrolled(_)));
    assert!(!w.dir.path().join("x.db").exists());
}

#[test]
fn bad_envelopes_are_quarantined_with_their_reason() {
    let w = world();
    let mut a = create(&w, "a.db", "S001");
    let mut b = create(&w, "b.db", "S002");
    let e = b.record(op(), check_in(&w.roster, 3)).unwrap();
    let dep = a.membership().deployment().id();
    let good = seal(&e, dep, &key_of(&w, "S002")).unwrap();

    // Garbage, a stranger's event, a tampered signature.
    assert!(a.import(b"not an envelope", "usb").is_err());
    let stranger = {
        let mut c = create(&w, "c.db", "S003");
        let ev = c.record(op(), check_in(&w.roster, 4)).unwrap();
        seal(&ev, dep, &key_of(&w, "S003")).unwrap()
    };
    let mut tampered = good.clone();
    let n = tampered.len();
    tampered[n - 1] ^= 1;
    assert!(matches!(
        a.import(&tampered, "usb"),
        Err(NodeError::Rejected(_))
    ));
    // S003's key writing for S003 is fine; the good one is taken once.
    assert!(a.import(&stranger, "usb").unwrap());
    assert!(a.import(&good, "usb").unwrap());
    assert!(!a.import(&good, "usb").unwrap());

    let q = a.store().quarantined().unwrap();
    let codes: Vec<&str> = q.iter().map(|x| x.code.as_str()).collect();
    assert_eq!(codes, ["malformed", "bad-signature"]);
    assert_eq!(q[1].bytes, tampered);
    assert_eq!(a.state().len(), 2);
    // Quarantine survives a restart; the state does not take quarantined events.
    drop(a);
    let a = reopen(&w, "a.db", "S001");
    assert_eq!(a.store().quarantined().unwrap().len(), 2);
    assert_eq!(a.state().len(), 2);
}

/// Run a sync session between two nodes until both are quiet.
fn sync(a: &mut Node<ManualClock>, b: &mut Node<ManualClock>) -> (usize, usize) {
    let (mut pa, mut pb) = (Peer::new("peer b"), Peer::new("peer a"));
    let mut to_b = vec![a.sync_start(&mut pa)];
    let mut to_a = vec![b.sync_start(&mut pb)];
    let (mut added_a, mut added_b) = (0, 0);
    for _ in 0..100 {
        if to_a.is_empty() && to_b.is_empty() {
            break;
        }
        let mut next_a = Vec::new();
        let mut next_b = Vec::new();
        for m in to_b.drain(..) {
            let s = b.sync_handle(&mut pb, &m).unwrap();
            assert_eq!(s.refused, 0);
            added_b += s.added;
            next_a.extend(s.replies);
        }
        for m in to_a.drain(..) {
            let s = a.sync_handle(&mut pa, &m).unwrap();
            assert_eq!(s.refused, 0);
            added_a += s.added;
            next_b.extend(s.replies);
        }
        to_a = next_a;
        to_b = next_b;
    }
    a.sync_end(pa);
    b.sync_end(pb);
    (added_a, added_b)
}

#[test]
fn two_laptops_sync_and_keep_what_they_synced() {
    let w = world();
    let mut a = create(&w, "a.db", "S001");
    let mut b = create(&w, "b.db", "S002");
    for i in 0..6 {
        w.clock.advance(60_000);
        a.record(op(), check_in(&w.roster, i)).unwrap();
        b.record(op(), check_in(&w.roster, 20 + i)).unwrap();
    }
    assert_eq!(sync(&mut a, &mut b), (6, 6));
    assert_eq!(a.state(), b.state());
    // Nothing new: nothing moves.
    assert_eq!(sync(&mut a, &mut b), (0, 0));
    drop((a, b));

    // After a restart both still hold everything, and a new write on one reaches the other
    // (the shard is loaded from the store for the sync).
    let mut a = reopen(&w, "a.db", "S001");
    let mut b = reopen(&w, "b.db", "S002");
    assert_eq!(a.state(), b.state());
    assert_eq!(a.state().len(), 12);
    w.clock.advance(60_000);
    let e = a.record(op(), check_in(&w.roster, 40)).unwrap();
    assert_eq!(sync(&mut a, &mut b), (0, 1));
    assert!(b.state().contains(&e.id()));
    assert_eq!(a.state(), b.state());
}

/// Envelopes decoded and signatures verified on this thread since `before`.
fn opens_since(before: OpenCounts) -> (u64, u64) {
    let now = open_counts();
    (now.decoded - before.decoded, now.verified - before.verified)
}

#[test]
fn an_incoming_envelope_is_opened_and_verified_once() {
    let w = world();
    let mut a = create(&w, "a.db", "S001");
    let mut b = create(&w, "b.db", "S002");
    let mut c = create(&w, "c.db", "S003");
    for i in 0..7 {
        w.clock.advance(60_000);
        a.record(op(), check_in(&w.roster, i)).unwrap();
    }
    // A sync: b's vetting opens each of a's events once and b stores and folds what it opened
    // (a, offered nothing new, opens nothing).
    let before = open_counts();
    assert_eq!(sync(&mut a, &mut b), (0, 7));
    assert_eq!(
        opens_since(before),
        (7, 7),
        "(decoded, verified) over a sync"
    );
    assert_eq!(a.state(), b.state());
    // A bundle: the same.
    let bundle = a.export_bundle(BundleScope::All).unwrap();
    let before = open_counts();
    assert_eq!(c.import_bundle(&bundle, "usb").unwrap().added, 7);
    assert_eq!(
        opens_since(before),
        (7, 7),
        "(decoded, verified) over a bundle"
    );
    assert_eq!(a.state(), c.state());
    // One envelope: the same.
    w.clock.advance(60_000);
    let e = a.record(op(), check_in(&w.roster, 7)).unwrap();
    let env = seal(&e, a.membership().deployment().id(), &key_of(&w, "S001")).unwrap();
    let before = open_counts();
    assert!(c.import(&env, "usb").unwrap());
    assert_eq!(
        opens_since(before),
        (1, 1),
        "(decoded, verified) for one envelope"
    );
    assert_eq!(a.state(), c.state());
    // And what came in survives a restart.
    drop(c);
    assert_eq!(reopen(&w, "c.db", "S003").state(), a.state());
}

#[test]
fn a_busy_shard_is_compacted_and_reloads_whole() {
    let w = world();
    let mut a = create(&w, "a.db", "S001");
    for i in 0..150 {
        w.clock.advance(10_000);
        a.record(op(), check_in(&w.roster, i)).unwrap();
    }
    assert_eq!(a.store().shards().unwrap()[0].2, 150);
    assert_eq!(a.maintain().unwrap(), 1);
    let shards = a.store().shards().unwrap();
    assert_eq!(shards.len(), 1);
    assert_eq!(shards[0].2, 1, "chunks not compacted");
    // More writes after compaction append to it.
    for i in 0..5 {
        w.clock.advance(10_000);
        a.record(op(), check_in(&w.roster, 200 + i)).unwrap();
    }
    assert_eq!(a.store().shards().unwrap()[0].2, 6);
    let before = a.state().clone();
    drop(a);
    let mut a = reopen(&w, "a.db", "S001");
    assert_eq!(a.state(), &before);
    // The reloaded document holds all 150 (a sync to a fresh laptop carries them all).
    let mut b = create(&w, "b.db", "S002");
    assert_eq!(sync(&mut a, &mut b), (0, 155));
    assert_eq!(b.state(), a.state());
}

#[test]
fn a_lost_event_cache_is_rebuilt_from_the_documents() {
    let w = world();
    let mut a = create(&w, "a.db", "S001");
    for i in 0..20 {
        w.clock.advance(60_000);
        a.record(op(), check_in(&w.roster, i)).unwrap();
    }
    let before = a.state().clone();
    drop(a);
    {
        let mut s = Store::open(&w.dir.path().join("a.db"), "correct horse").unwrap();
        s.drop_cache().unwrap();
        assert_eq!(s.cached_events().unwrap().0.len(), 0);
    }
    let a = reopen(&w, "a.db", "S001");
    assert_eq!(a.state(), &before);
    assert_eq!(a.store().cached_events().unwrap().0.len(), 20);
    assert!(a.store().cached_events().unwrap().1.is_empty());
}

#[test]
fn a_usb_bundle_carries_snapshots_and_deltas() {
    let w = world();
    let mut a = create(&w, "a.db", "S001");
    let mut b = create(&w, "b.db", "S002");
    for i in 0..10 {
        w.clock.advance(60_000);
        a.record(op(), check_in(&w.roster, i)).unwrap();
    }
    let first = a.export_bundle(BundleScope::SinceLast).unwrap();
    let r = b.import_bundle(&first, "usb").unwrap();
    assert_eq!((r.added, r.author), (10, a.device()));
    assert_eq!(r.added_by_site.get(&site("S001")), Some(&10));
    assert_eq!(a.state(), b.state());
    for i in 0..5 {
        w.clock.advance(60_000);
        a.record(op(), check_in(&w.roster, 10 + i)).unwrap();
    }
    let delta = a.export_bundle(BundleScope::SinceLast).unwrap();
    assert!(
        delta.len() < first.len(),
        "the delta is not smaller: {} vs {}",
        delta.len(),
        first.len()
    );
    assert_eq!(b.import_bundle(&delta, "usb").unwrap().added, 5);
    assert_eq!(a.state(), b.state());
    // A snapshot carries everything again; nothing is new.
    let snap = a.export_bundle(BundleScope::All).unwrap();
    assert_eq!(b.import_bundle(&snap, "usb").unwrap().added, 0);
    // And b keeps it across a restart.
    let before = b.state().clone();
    drop(b);
    assert_eq!(reopen(&w, "b.db", "S002").state(), &before);
}

#[test]
fn a_replayed_bundle_or_ones_own_is_refused_and_changes_nothing() {
    let w = world();
    let mut a = create(&w, "a.db", "S001");
    let mut b = create(&w, "b.db", "S002");
    w.clock.advance(60_000);
    a.record(op(), check_in(&w.roster, 1)).unwrap();
    let file = a.export_bundle(BundleScope::All).unwrap();
    assert_eq!(b.import_bundle(&file, "usb").unwrap().added, 1);
    let before = b.state().clone();
    match b.import_bundle(&file, "usb") {
        Err(NodeError::Bundle(e @ BundleError::AlreadyImported { .. })) => {
            assert!(e.to_string().contains("imported before"), "{e}");
        }
        other => panic!("a replay was not refused: {other:?}"),
    }
    // Remembered across a restart.
    drop(b);
    let mut b = reopen(&w, "b.db", "S002");
    assert!(matches!(
        b.import_bundle(&file, "usb"),
        Err(NodeError::Bundle(BundleError::AlreadyImported { .. }))
    ));
    assert!(matches!(
        a.import_bundle(&file, "usb"),
        Err(NodeError::Bundle(BundleError::OwnBundle))
    ));
    assert_eq!(b.state(), &before);
    // Redundant, not suspect: nothing quarantined.
    assert!(b.store().quarantined().unwrap().is_empty());
    assert!(a.store().quarantined().unwrap().is_empty());
}

#[test]
fn a_bundle_for_a_peer_carries_only_what_that_peer_lacks() {
    let w = world();
    let mut a = create(&w, "a.db", "S001");
    let mut b = create(&w, "b.db", "S002");
    for i in 0..30 {
        w.clock.advance(60_000);
        a.record(op(), check_in(&w.roster, i)).unwrap();
    }
    // Nothing known about b yet: everything goes.
    let to_b = a.export_bundle(BundleScope::For(b.device())).unwrap();
    assert_eq!(b.import_bundle(&to_b, "usb").unwrap().added, 30);
    // b now knows what a held; it writes three check-ins of its own.
    for i in 0..3 {
        w.clock.advance(60_000);
        b.record(op(), check_in(&w.roster, 100 + i)).unwrap();
    }
    let lean = b.export_bundle(BundleScope::For(a.device())).unwrap();
    let whole = b.export_bundle(BundleScope::All).unwrap();
    // What every bundle carries whatever its events (signed header, manifest, catalog): a
    // bundle of nothing new.
    let fixed = b.export_bundle(BundleScope::SinceLast).unwrap().len();
    assert!(
        (lean.len() - fixed) * 3 < whole.len() - fixed,
        "the bundle for a is not lean: {} vs {} ({fixed} in every bundle)",
        lean.len(),
        whole.len()
    );
    let r = a.import_bundle(&lean, "usb").unwrap();
    assert_eq!((r.added, r.shards), (3, 1));
    assert_eq!(a.state(), b.state());
    // A device never heard of gets everything.
    let c = create(&w, "c.db", "S003");
    let to_c = b.export_bundle(BundleScope::For(c.device())).unwrap();
    assert!(to_c.len() + 200 > whole.len());
}

#[test]
fn bad_bundles_are_refused_and_quarantined() {
    use kazashi_sync::bundle::{self, BundleBody};
    let w = world();
    let mut a = create(&w, "a.db", "S001");
    let mut b = create(&w, "b.db", "S002");
    w.clock.advance(60_000);
    a.record(op(), check_in(&w.roster, 1)).unwrap();
    let good = a.export_bundle(BundleScope::All).unwrap();
    let members = a.membership().clone();

    // Not a bundle; a flipped byte; cut short; signed by a laptop that is not enrolled.
    assert!(b.import_bundle(b"hello", "usb").is_err());
    let mut flipped = good.clone();
    let n = flipped.len();
    flipped[n / 2] ^= 0x40;
    assert!(b.import_bundle(&flipped, "usb").is_err());
    assert!(matches!(
        b.import_bundle(&good[..n - 100], "usb"),
        Err(NodeError::Bundle(BundleError::Truncated { .. }))
    ));
    let stranger = DeviceKey::from_seed([77; 32]);
    let body = |author: DeviceId, shards| BundleBody {
        deployment: members.deployment().id(),
        author,
        id: [9; 16],
        created_ms: START_MS,
        snapshot: true,
        catalog: vec![],
        shards,
        manifest: None,
    };
    let forged = bundle::write(
        &body(stranger.device_id(), vec![]),
        &stranger,
        &members,
        [5; 64],
    )
    .unwrap();
    assert!(b.import_bundle(&forged, "usb").is_err());

    // An enrolled laptop's bundle whose shard holds an event of a stranger: that shard is
    // refused, nothing of it is taken.
    let shard = kazashi_sync::ShardId {
        site: site("S001"),
        day: CivilDate::new(2026, 9, 1).unwrap(),
    };
    let rogue_event = {
        let mut c = create(&w, "c.db", "S001");
        c.record(op(), check_in(&w.roster, 2)).unwrap()
    };
    let rogue_env = seal(
        &kazashi_domain::Event::new(kazashi_domain::EventContent {
            device: stranger.device_id(),
            ..rogue_event.content().clone()
        })
        .unwrap(),
        a.membership().deployment().id(),
        &stranger,
    )
    .unwrap();
    let mut doc = kazashi_sync::ShardDoc::new(shard, &stranger.device_id());
    let rogue_id = kazashi_sync::open_trusted(&rogue_env, a.membership().deployment().id())
        .unwrap()
        .id();
    doc.insert(&rogue_id, &rogue_env).unwrap();
    let key_a = key_of(&w, "S001");
    let smuggled = bundle::write(
        &body(key_a.device_id(), vec![(shard, doc.save())]),
        &key_a,
        &members,
        [6; 64],
    )
    .unwrap();
    let r = b.import_bundle(&smuggled, "usb").unwrap();
    assert_eq!((r.added, r.refused_shards), (0, 1));
    assert!(!b.state().contains(&rogue_id));

    let codes: Vec<String> = b
        .store()
        .quarantined()
        .unwrap()
        .into_iter()
        .map(|q| q.code)
        .collect();
    assert_eq!(
        codes,
        [
            "not-a-bundle",
            "damaged-bundle",
            "truncated-bundle",
            "unknown-device",
            "refused-change"
        ]
    );
    // The good bundle still goes in.
    assert_eq!(b.import_bundle(&good, "usb").unwrap().added, 1);
}

#[test]
fn alerts_agree_across_laptops_and_a_resolution_closes_them_everywhere() {
    use kazashi_domain::detector::AlertKind;
    use kazashi_domain::event::AlertOutcome;
    let w = world();
    let mut a = create(&w, "a.db", "S001");
    let mut b = create(&w, "b.db", "S002");
    // The same household checked in at two shelters while the laptops were apart.
    w.clock.advance(60_000);
    a.record(op(), check_in(&w.roster, 7)).unwrap();
    b.record(op(), check_in(&w.roster, 7)).unwrap();
    assert!(a.alerts().is_empty());
    sync(&mut a, &mut b);
    let on_a = a.alerts();
    assert!(
        on_a.iter().any(|x| x.kind == AlertKind::PresentAtTwoSites),
        "{on_a:?}"
    );
    let ids = |v: &[kazashi_domain::detector::Alert]| v.iter().map(|x| x.id).collect::<Vec<_>>();
    assert_eq!(ids(&on_a), ids(&b.alerts()));
    // The evidence shows both check-ins, one from each laptop; the household counts once in
    // the municipality's headcount, though it is registered at two shelters.
    let two = on_a
        .iter()
        .find(|x| x.kind == AlertKind::PresentAtTwoSites)
        .unwrap();
    let sites: std::collections::BTreeSet<_> =
        a.alert_evidence(two).iter().map(|e| e.site).collect();
    assert_eq!(sites.len(), 2);
    let mut households: Vec<_> = w.roster.entries().iter().map(|e| e.household).collect();
    households.dedup();
    let household = w.roster.household(&households[7]).len() as u32;
    assert_eq!(a.distinct_registered(), household);
    assert_eq!(b.distinct_registered(), household);
    // A's shelter lead dismisses them all (moved on); B sees them closed after the next sync.
    w.clock.advance(60_000);
    for x in &on_a {
        a.record(
            op(),
            EventBody::AlertResolution {
                alert: x.id,
                outcome: AlertOutcome::Dismissed,
                note: None,
            },
        )
        .unwrap();
    }
    assert!(a.alerts().is_empty());
    sync(&mut a, &mut b);
    assert!(b.alerts().is_empty());
}

/// A minute later, roster household `i` checked in at both laptops' shelters, then a sync.
fn at_both_shelters(w: &World, a: &mut Node<ManualClock>, b: &mut Node<ManualClock>, i: usize) {
    w.clock.advance(60_000);
    a.record(op(), check_in(&w.roster, i)).unwrap();
    b.record(op(), check_in(&w.roster, i)).unwrap();
    sync(a, b);
}

/// The detector's first build off the calling thread (`Node::open_alert_count_nowait`, what the
/// window asks every frame): no count until it is back; events recorded and synced after it
/// started are fed to it when it is taken in, so the alerts are those a laptop that built its
/// detector in line finds; a blocking call waits for the build instead of making another.
#[test]
fn the_detectors_first_build_off_the_thread_takes_in_what_arrived_meanwhile() {
    use kazashi_domain::detector::AlertKind;
    let w = world();
    let mut a = create(&w, "a.db", "S001");
    let mut b = create(&w, "b.db", "S002");
    at_both_shelters(&w, &mut a, &mut b, 7);
    // The first ask starts the build and does not wait for it.
    assert_eq!(a.open_alert_count_nowait(), None);
    assert!(a.detector_building());
    // Another household at both shelters, after the build's snapshot.
    at_both_shelters(&w, &mut a, &mut b, 9);
    let on_a = a.alerts();
    // B never looked: a bounded wait starts its build and takes it in when back.
    let within = b
        .alerts_within(std::time::Duration::from_secs(120))
        .expect("a small log's build is back within the wait");
    let on_b = b.alerts();
    let ids = |v: &[kazashi_domain::detector::Alert]| v.iter().map(|x| x.id).collect::<Vec<_>>();
    assert_eq!(ids(&within), ids(&on_b));
    assert_eq!(ids(&on_a), ids(&on_b));
    assert_eq!(
        on_a.iter()
            .filter(|x| x.kind == AlertKind::PresentAtTwoSites)
            .count(),
        2,
        "{on_a:?}"
    );
    assert!(!a.detector_building());
    assert_eq!(a.open_alert_count_nowait(), Some(on_a.len()));
    // Kept up to date in line from then on.
    at_both_shelters(&w, &mut a, &mut b, 11);
    assert_eq!(a.open_alert_count_nowait(), Some(b.alerts().len()));
    assert_eq!(ids(&a.alerts()), ids(&b.alerts()));
}
