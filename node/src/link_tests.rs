//! The tests of [`crate::link`] and the small world (nodes, roster, manifest) other modules'
//! tests build on (`crate::link::tests::…`).

use super::*;
use crate::clock::ManualClock;
use crate::store::KdfParams;
use kazashi_domain::event::IdMethod;
use kazashi_domain::ids::{HouseholdId, OperatorId, PersonId, PersonRef, RosterHash, SiteId};
use kazashi_domain::roster::Sex;
use kazashi_domain::text::{Address, KanaReading, Label, PersonName};
use kazashi_domain::{
    CivilDate, Deployment, DeploymentKind, EventBody, Members, Roster, RosterEntry, RosterKind,
    ShelterType, Site, SiteKind,
};
use kazashi_sync::{
    DeviceEntry, DeviceKey, Manifest, Message, Revocation, Role as DeviceRole, SignedManifest,
};
use std::collections::BTreeSet;
use std::sync::Arc;

/// 2026-09-01 09:00 JST.
const T0: u64 = 1_788_220_800_000;
const STRANGER: u8 = 3;
const REVOKED: u8 = 4;

pub(crate) fn key(n: u8) -> DeviceKey {
    DeviceKey::from_seed([n; 32])
}

pub(crate) fn device(n: u8) -> DeviceId {
    key(n).device_id()
}

pub(crate) fn site() -> SiteId {
    SiteId::new("S1").unwrap()
}

pub(crate) fn person(i: usize) -> PersonId {
    PersonId::new(&format!("P{i:03}")).unwrap()
}

pub(crate) fn roster() -> Roster {
    let entries = (0..8)
        .map(|i| RosterEntry {
            person: person(i),
            household: HouseholdId::new(&format!("H{i:03}")).unwrap(),
            name: PersonName::new("髙橋 花子").unwrap(),
            kana: KanaReading::new("たかはし はなこ").unwrap(),
            birth_date: CivilDate::new(1980, 1, 1).unwrap(),
            sex: Sex::Female,
            address: Address::new("新潟県三条市旭町2丁目3-1").unwrap(),
            voter: None,
            care_needs: BTreeSet::new(),
            support_measure: false,
        })
        .collect();
    Roster::new(
        RosterKind::Residents,
        entries,
        CivilDate::new(2026, 9, 1).unwrap(),
    )
    .unwrap()
}

pub(crate) fn deployment(id: u8, roster: RosterHash) -> Deployment {
    Deployment::new(
        DeploymentId([id; 16]),
        Label::new("訓練").unwrap(),
        DeploymentKind::ShelterOperation,
        roster,
        vec![Site {
            id: site(),
            name: Label::new("S1 避難所").unwrap(),
            kind: SiteKind::Shelter {
                shelter_type: ShelterType::Designated,
                capacity: 100,
            },
        }],
    )
    .unwrap()
}

pub(crate) struct World {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) clock: ManualClock,
    pub(crate) roster: Arc<Roster>,
    pub(crate) manifest: Vec<u8>,
}

/// Stations 1 and 2 enrolled, 4 enrolled and revoked, 3 a stranger.
pub(crate) fn world() -> World {
    world_enrolling(&[])
}

/// [`world`] with more stations enrolled (a manifest another laptop may hold: of the same
/// version, it is a conflict that one of the two wins, by digest).
pub(crate) fn world_enrolling(more: &[u8]) -> World {
    world_enrolling_at(3, more)
}

/// [`world_enrolling`] at manifest `version` (below 3: older than [`world`]'s, never adopted
/// by a laptop holding that).
pub(crate) fn world_enrolling_at(version: u32, more: &[u8]) -> World {
    let roster = roster();
    let entry = |n: u8| DeviceEntry {
        device: device(n),
        role: DeviceRole::Station,
        label: Label::new(&format!("端末{n}")).unwrap(),
        sites: vec![],
    };
    let manifest = Manifest {
        version,
        deployment: deployment(1, roster.hash()),
        admin: DeviceKey::from_seed([100; 32]).device_id(),
        devices: [1, 2, REVOKED]
            .iter()
            .chain(more)
            .map(|&n| entry(n))
            .collect(),
        revoked: vec![Revocation {
            device: device(REVOKED),
            from_ms: T0,
        }],
        staff: vec![],
        closed_at: None,
        card_cas: vec![],
        sealed_keys: Vec::new(),
        retention_days: None,
        receipt_slips: false,
    };
    let signed = SignedManifest::sign(&manifest, &DeviceKey::from_seed([100; 32])).unwrap();
    World {
        dir: tempfile::tempdir().unwrap(),
        clock: ManualClock::new(T0),
        roster: Arc::new(roster),
        manifest: signed.encode(),
    }
}

pub(crate) fn node(w: &World, n: u8) -> Node<ManualClock> {
    Node::create(
        &w.dir.path().join(format!("{n}.db")),
        "correct horse",
        KdfParams::FAST_INSECURE,
        key(n),
        &w.manifest,
        w.roster.clone(),
        site(),
        w.clock.clone(),
    )
    .unwrap()
}

pub(crate) fn check_in(node: &mut Node<ManualClock>, i: usize) {
    node.record(
        OperatorId::new("staff01").unwrap(),
        EventBody::ShelterCheckIn {
            household: None,
            members: Members::new(vec![PersonRef::Roster(person(i))]).unwrap(),
            method: IdMethod::Lookup,
        },
    )
    .unwrap();
}

fn fast() -> LinkConfig {
    LinkConfig {
        anti_entropy_ms: 7_000,
        ping_ms: 2_000,
        lost_after_ms: 10_000,
        greeting_ms: 5_000,
    }
}

fn sends(actions: &[Action]) -> Vec<(u8, Vec<u8>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { kind, body } => Some((*kind, body.clone())),
            _ => None,
        })
        .collect()
}

fn closes(actions: &[Action]) -> Vec<u32> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Close { code, .. } => Some(*code),
            _ => None,
        })
        .collect()
}

fn status(actions: &[Action]) -> Option<(Link, Option<String>)> {
    actions.iter().rev().find_map(|a| match a {
        Action::Status { link, reason } => Some((*link, reason.clone())),
        _ => None,
    })
}

fn timer(actions: &[Action]) -> Option<u64> {
    actions.iter().rev().find_map(|a| match a {
        Action::Timer { at } => Some(*at),
        _ => None,
    })
}

/// An accepting machine at `node` for `remote`, fed one greeting; its actions.
fn greet_with(node: &mut Node<ManualClock>, remote: DeviceId, theirs: Hello) -> Vec<Action> {
    let (mut link, opened) = SyncLink::open(Hello::of(node), Role::Accepted, remote, fast(), 0);
    assert!(sends(&opened).is_empty(), "the accepting side spoke first");
    assert_eq!(link.max_frame(), MAX_HELLO);
    link.frame(node, FRAME_HELLO, &theirs.encode(), 10)
}

#[test]
fn hello_encoding_is_postcards() {
    /// The greeting as earlier Kazashi sent it, without the digest.
    #[derive(serde::Serialize)]
    struct Previous {
        protocol: u16,
        deployment: DeploymentId,
        manifest_version: u32,
    }
    for (protocol, deployment, manifest_version) in [
        (1, DeploymentId([7; 16]), 3),
        (u16::MAX, DeploymentId([0xff; 16]), u32::MAX),
        (300, DeploymentId([0; 16]), 128),
    ] {
        let previous = postcard::to_allocvec(&Previous {
            protocol,
            deployment,
            manifest_version,
        })
        .unwrap();
        let without = Hello {
            protocol,
            deployment,
            manifest_version,
            manifest_digest: None,
        };
        assert_eq!(without.encode(), previous);
        assert_eq!(Hello::decode(&previous), Some(without));
        let with = Hello {
            manifest_digest: Some([0xa5; DIGEST_LEN]),
            ..without
        };
        let bytes = with.encode();
        assert_eq!(bytes, [previous.clone(), vec![0xa5; DIGEST_LEN]].concat());
        assert_eq!(Hello::decode(&bytes), Some(with));
        // An earlier laptop reads the new greeting's first fields (postcard ignores the rest).
        #[derive(serde::Deserialize, PartialEq, Debug)]
        struct Read {
            protocol: u16,
            deployment: DeploymentId,
            manifest_version: u32,
        }
        let read: Read = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(
            (read.protocol, read.deployment, read.manifest_version),
            (protocol, deployment, manifest_version)
        );
        // A digest cut short is malformed; later fields after it are left for later.
        assert_eq!(Hello::decode(&bytes[..bytes.len() - 1]), None);
        let longer = [bytes.clone(), vec![1, 2, 3]].concat();
        assert_eq!(Hello::decode(&longer), Some(with));
    }
    assert_eq!(Hello::decode(&[0xff; 3]), None);
    assert_eq!(Hello::decode(&[]), None);
}

#[test]
fn a_greeting_of_another_protocol_or_deployment_is_mismatched_and_not_answered() {
    let w = world();
    let mut a = node(&w, 1);
    let ours = Hello::of(&a);
    let other_protocol = greet_with(
        &mut a,
        device(2),
        Hello {
            protocol: PROTOCOL_VERSION + 1,
            ..ours
        },
    );
    assert_eq!(closes(&other_protocol), [CLOSE_MISMATCHED]);
    assert!(sends(&other_protocol).is_empty());
    let (link, why) = status(&other_protocol).unwrap();
    assert_eq!(link, Link::Mismatched);
    assert!(why.unwrap().contains("protocol version 2"));

    let other_deployment = greet_with(
        &mut a,
        device(2),
        Hello {
            deployment: DeploymentId([9; 16]),
            ..ours
        },
    );
    assert_eq!(closes(&other_deployment), [CLOSE_MISMATCHED]);
    assert!(sends(&other_deployment).is_empty());
    let (link, why) = status(&other_deployment).unwrap();
    assert_eq!(link, Link::Mismatched);
    assert!(why.unwrap().contains("another deployment (09090909)"));

    // The dialling side closes the same way when the answer is wrong.
    let (mut d, opened) = SyncLink::open(ours, Role::Dialled, device(2), fast(), 0);
    assert_eq!(sends(&opened), [(FRAME_HELLO, ours.encode())]);
    let out = d.frame(
        &mut a,
        FRAME_HELLO,
        &Hello {
            deployment: DeploymentId([9; 16]),
            ..ours
        }
        .encode(),
        5,
    );
    assert_eq!(closes(&out), [CLOSE_MISMATCHED]);
    assert!(d.is_closed());

    // Anything but a greeting first, or bytes that are no greeting, is a protocol error.
    let (mut x, _) = SyncLink::open(ours, Role::Accepted, device(2), fast(), 0);
    let out = x.frame(&mut a, FRAME_SYNC, b"catalog", 1);
    assert_eq!(closes(&out), [CLOSE_PROTOCOL]);
    assert_eq!(status(&out).unwrap().1.as_deref(), Some("no greeting"));
    let (mut y, _) = SyncLink::open(ours, Role::Accepted, device(2), fast(), 0);
    let out = y.frame(&mut a, FRAME_HELLO, &[0xff, 0xff, 0xff, 0xff], 1);
    assert_eq!(closes(&out), [CLOSE_PROTOCOL]);
    // After the close nothing more is done.
    assert!(y.frame(&mut a, FRAME_HELLO, &ours.encode(), 2).is_empty());
    assert!(y.tick(&mut a, 1_000_000).is_empty());
}

#[test]
fn an_unenrolled_or_revoked_remote_is_refused() {
    let w = world();
    let mut a = node(&w, 1);
    let ours = Hello::of(&a);
    for stranger in [device(STRANGER), device(REVOKED)] {
        let out = greet_with(&mut a, stranger, ours);
        assert_eq!(closes(&out), [CLOSE_REFUSED], "{stranger:?}");
        assert!(sends(&out).is_empty(), "answered {stranger:?}");
        assert_eq!(
            status(&out),
            Some((
                Link::Refused,
                Some("not enrolled in this deployment".to_owned())
            ))
        );
    }
    // The enrolled one is answered: its greeting, then the catalog.
    let out = greet_with(&mut a, device(2), ours);
    assert!(closes(&out).is_empty());
    let kinds: Vec<u8> = sends(&out).iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, [FRAME_HELLO, FRAME_SYNC]);
    assert_eq!(status(&out), Some((Link::Connected, None)));
}

#[test]
fn no_greeting_before_the_deadline_closes() {
    let w = world();
    let mut a = node(&w, 1);
    let (mut link, out) = SyncLink::open(Hello::of(&a), Role::Accepted, device(2), fast(), 100);
    assert_eq!(timer(&out), Some(5_100));
    let early = link.tick(&mut a, 5_099);
    assert!(closes(&early).is_empty());
    assert_eq!(timer(&early), Some(5_100));
    let out = link.tick(&mut a, 5_100);
    assert_eq!(closes(&out), [CLOSE_PROTOCOL]);
    assert_eq!(status(&out).unwrap().0, Link::Mismatched);
}

/// Two machines wired back to back at the same instant: deliver every frame until
/// nothing is in flight, announcing gains as the drivers do. The frames sent, per kind.
struct Pair {
    a: Node<ManualClock>,
    b: Node<ManualClock>,
    la: SyncLink,
    lb: SyncLink,
    /// (to b?, kind, body)
    wire: std::collections::VecDeque<(bool, u8, Vec<u8>)>,
    sent: [usize; 4],
    statuses: Vec<(bool, Link)>,
}

impl Pair {
    fn open(w: &World, config: LinkConfig, now: u64) -> Pair {
        let (a, b) = (node(w, 1), node(w, 2));
        let (la, oa) = SyncLink::open(Hello::of(&a), Role::Dialled, device(2), config, now);
        let (lb, ob) = SyncLink::open(Hello::of(&b), Role::Accepted, device(1), config, now);
        let mut p = Pair {
            a,
            b,
            la,
            lb,
            wire: Default::default(),
            sent: [0; 4],
            statuses: Vec::new(),
        };
        p.take(true, oa, now);
        p.take(false, ob, now);
        p
    }

    /// Perform the actions of a's machine (`from_a`) or b's.
    fn take(&mut self, from_a: bool, actions: Vec<Action>, now: u64) {
        for act in actions {
            match act {
                Action::Send { kind, body } => {
                    self.sent[usize::from(kind)] += 1;
                    self.wire.push_back((from_a, kind, body));
                }
                Action::Close { code, reason } => panic!("closed: {code} {reason}"),
                Action::Status { link, .. } => self.statuses.push((from_a, link)),
                Action::Gained { .. } | Action::Adopted { .. } => {
                    let more = if from_a {
                        self.la.changed(&mut self.a, now)
                    } else {
                        self.lb.changed(&mut self.b, now)
                    };
                    self.take(from_a, more, now);
                }
                Action::Failed(e) => panic!("{e}"),
                Action::Timer { .. } | Action::Differing(_) => {}
            }
        }
    }

    fn pump(&mut self, now: u64) {
        let mut steps = 0;
        while let Some((to_b, kind, body)) = self.wire.pop_front() {
            steps += 1;
            assert!(steps < 10_000, "no quiescence");
            let out = if to_b {
                self.lb.frame(&mut self.b, kind, &body, now)
            } else {
                self.la.frame(&mut self.a, kind, &body, now)
            };
            self.take(!to_b, out, now);
        }
    }
}

#[test]
fn two_machines_back_to_back_converge_and_push_what_is_new() {
    let w = world();
    let mut p = Pair::open(&w, fast(), 0);
    for i in 0..3 {
        check_in(&mut p.a, i);
    }
    for i in 3..5 {
        check_in(&mut p.b, i);
    }
    assert_ne!(p.a.state_digest(), p.b.state_digest());
    p.pump(0);
    assert!(p.la.is_live() && p.lb.is_live());
    assert_eq!(
        p.statuses,
        [(false, Link::Connected), (true, Link::Connected)],
        "the accepting side goes live first, on the dialler's greeting"
    );
    assert_eq!(p.a.state().len(), 5);
    assert_eq!(p.a.state_digest(), p.b.state_digest());
    assert_eq!(p.sent[usize::from(FRAME_HELLO)], 2);

    // A new event is pushed at once, without waiting for a catalog.
    check_in(&mut p.b, 5);
    let out = p.lb.changed(&mut p.b, 100);
    assert!(!sends(&out).is_empty());
    p.take(false, out, 100);
    p.pump(100);
    assert_eq!(p.a.state().len(), 6);
    assert_eq!(p.a.state_digest(), p.b.state_digest());
}

#[test]
fn anti_entropy_catalog_goes_at_the_configured_interval() {
    let w = world();
    let config = LinkConfig {
        ping_ms: 60_000,
        lost_after_ms: 120_000,
        ..fast()
    };
    let mut p = Pair::open(&w, config, 0);
    p.pump(0);
    assert!(p.la.is_live());
    let catalogs = |out: &[Action]| {
        sends(out)
            .iter()
            .filter(|(k, b)| {
                *k == FRAME_SYNC && matches!(Message::decode(b), Ok(Message::Reconcile(_)))
            })
            .count()
    };
    // Asked for a tick at the catalog's time, not before.
    let quiet = p.la.tick(&mut p.a, 6_999);
    assert_eq!(catalogs(&quiet), 0);
    assert_eq!(timer(&quiet), Some(7_000));
    let first = p.la.tick(&mut p.a, 7_000);
    assert_eq!(catalogs(&first), 1);
    assert_eq!(timer(&first), Some(14_000));
    assert_eq!(catalogs(&p.la.tick(&mut p.a, 13_000)), 0);
    assert_eq!(catalogs(&p.la.tick(&mut p.a, 14_000)), 1);
    // A late tick sends one catalog, not the missed ones, and keeps the beat.
    let late = p.la.tick(&mut p.a, 30_000);
    assert_eq!(catalogs(&late), 1);
    assert_eq!(timer(&late), Some(35_000));
}

#[test]
fn pings_keep_an_idle_link_and_silence_past_lost_after_closes_it() {
    let w = world();
    let mut p = Pair::open(&w, fast(), 0);
    p.pump(0);
    // Idle for the ping interval: a ping.
    let out = p.la.tick(&mut p.a, 2_000);
    assert_eq!(sends(&out), [(FRAME_PING, Vec::new())]);
    // Something sent since: no ping yet.
    let pushed = p.la.tick(&mut p.a, 3_000);
    assert!(sends(&pushed).is_empty());
    assert_eq!(timer(&pushed), Some(4_000));
    // The peer's ping at 8 s keeps it; 10 s after that it is lost.
    let heard = p.la.frame(&mut p.a, FRAME_PING, &[], 8_000);
    assert!(closes(&heard).is_empty());
    assert!(closes(&p.la.tick(&mut p.a, 18_000)).is_empty());
    let out = p.la.tick(&mut p.a, 18_001);
    assert_eq!(closes(&out), [CLOSE_LOST]);
    assert_eq!(
        status(&out),
        Some((Link::Lost, Some("silent for 10 s".to_owned())))
    );
    assert!(p.la.is_closed());
    assert!(p.la.tick(&mut p.a, 20_000).is_empty());
    // The timer asked for covers the deadline.
    let w2 = world();
    let mut q = Pair::open(&w2, fast(), 0);
    q.pump(0);
    let mut at = 0;
    for _ in 0..20 {
        let out = q.la.tick(&mut q.a, at);
        if !closes(&out).is_empty() {
            break;
        }
        at = timer(&out).unwrap();
    }
    assert_eq!(at, 10_001, "the lost check is not late");
}

#[test]
fn peer_bytes_that_are_not_a_message_are_quarantined_and_an_unknown_kind_closes() {
    let w = world();
    let mut p = Pair::open(&w, fast(), 0);
    p.pump(0);
    let out = p.la.frame(&mut p.a, FRAME_SYNC, &[0xff; 40], 1);
    assert!(closes(&out).is_empty());
    assert!(p.la.is_live());
    let out =
        p.la.frame(&mut p.a, FRAME_HELLO, &Hello::of(&p.b).encode(), 2);
    assert_eq!(closes(&out), [CLOSE_PROTOCOL]);
    assert_eq!(status(&out).unwrap().0, Link::Lost);
}

#[test]
fn a_close_by_the_peer_says_why() {
    let w = world();
    let mut p = Pair::open(&w, fast(), 0);
    p.pump(0);
    let out = p.la.closed(
        &mut p.a,
        Ended::ByPeer {
            code: u64::from(CLOSE_REFUSED),
            reason: "refused".into(),
        },
    );
    assert_eq!(status(&out).unwrap().0, Link::Refused);
    assert!(p.la.is_closed());
    assert!(p.la.closed(&mut p.a, Ended::Dropped("x".into())).is_empty());
    let (l, why) = Ended::ByPeer {
        code: u64::from(CLOSE_MISMATCHED),
        reason: String::new(),
    }
    .status();
    assert_eq!(l, Link::Mismatched);
    assert!(why.contains("another deployment"));
    assert_eq!(
        Ended::Dropped("timed out".into()).status(),
        (Link::Lost, "connection ended: timed out".into())
    );
    assert_eq!(
        Ended::ByPeer {
            code: 0,
            reason: "bye".into()
        }
        .status(),
        (Link::Lost, "closed by the peer: bye".into())
    );
}

#[test]
fn a_lazy_link_leaves_new_events_to_the_catalog_and_an_eager_one_pushes_them() {
    let w = world();
    let config = LinkConfig {
        ping_ms: 60_000,
        lost_after_ms: 120_000,
        ..fast()
    };
    let mut p = Pair::open(&w, config, 0);
    p.pump(0);
    assert!(p.lb.is_eager(), "links are eager unless told");
    p.lb.set_eager(false);
    check_in(&mut p.b, 0);
    let out = p.lb.changed(&mut p.b, 100);
    assert!(sends(&out).is_empty(), "a lazy link pushed");
    p.pump(100);
    assert_eq!(p.a.state().len(), 0);
    // The next catalog (7 s) carries it.
    let out = p.lb.tick(&mut p.b, 7_000);
    assert!(!sends(&out).is_empty());
    p.take(false, out, 7_000);
    p.pump(7_000);
    assert_eq!(p.a.state().len(), 1);
    assert_eq!(p.a.state_digest(), p.b.state_digest());
    // Eager again: pushed at once.
    p.lb.set_eager(true);
    check_in(&mut p.b, 1);
    let out = p.lb.changed(&mut p.b, 7_100);
    assert!(!sends(&out).is_empty());
    p.take(false, out, 7_100);
    p.pump(7_100);
    assert_eq!(p.a.state().len(), 2);
}

/// A lazy link still closes when a newer manifest drops its peer.
#[test]
fn a_lazy_link_still_closes_on_a_revocation() {
    use crate::manifest_spread_tests::{C, Lab, v};
    let lab = Lab::new();
    let mut a = lab.node(1, &v(1, &[1, 2, C]));
    let (mut l, _) = SyncLink::open(Hello::of(&a), Role::Accepted, device(C), fast(), 0);
    let theirs = Hello::of(&a).encode();
    let out = l.frame(&mut a, FRAME_HELLO, &theirs, 1);
    assert!(l.is_live(), "{out:?}");
    l.set_eager(false);
    a.adopt_manifest(&v(2, &[1, 2])).unwrap();
    let out = l.changed(&mut a, 2);
    assert_eq!(closes(&out), [CLOSE_REFUSED]);
    assert!(sends(&out).is_empty());
}

/// The light paths the driver takes without the node do what the full ones do, and decline
/// whenever the node is needed.
#[test]
fn light_ticks_and_pings_match_the_full_ones_and_decline_when_the_node_is_needed() {
    let (w, w2, w3) = (world(), world(), world());
    let mut p = Pair::open(&w, fast(), 0);
    let mut q = Pair::open(&w2, fast(), 0);
    p.pump(0);
    q.pump(0);
    for now in [1_000, 2_000, 2_500, 4_100, 6_999] {
        let light =
            p.la.tick_light(now)
                .expect("nothing from the node is needed");
        assert_eq!(light, q.la.tick(&mut q.a, now), "at {now}");
    }
    let light = p.la.ping(FRAME_PING, 6_999).unwrap();
    assert_eq!(light, q.la.frame(&mut q.a, FRAME_PING, &[], 6_999));
    // The catalog is due: the node is needed.
    assert_eq!(p.la.tick_light(7_000), None);
    // Other frames, a link not live, and a silent peer: the node is needed.
    assert_eq!(p.la.ping(FRAME_SYNC, 7_000), None);
    let (mut fresh, _) = SyncLink::open(Hello::of(&p.a), Role::Accepted, device(2), fast(), 0);
    assert_eq!(fresh.ping(FRAME_PING, 1), None);
    assert_eq!(fresh.tick_light(1), None);
    let mut r = Pair::open(&w3, fast(), 0);
    r.pump(0);
    r.la.tick(&mut r.a, 6_000);
    assert_eq!(
        r.la.tick_light(6_999 + 10_000),
        None,
        "lost: the full tick closes it"
    );
}

/// Both ends of a pair close (the network dropped the connection): each node keeps the
/// session's state for the next one.
fn drop_pair(p: &mut Pair) {
    p.la.closed(&mut p.a, Ended::Dropped("cut".into()));
    p.lb.closed(&mut p.b, Ended::Dropped("cut".into()));
    p.wire.clear();
}

/// A dialler back from a partition, with a peer it met before under the same manifest: its
/// catalog and what it wrote meanwhile go behind its greeting, so the peer holds them after
/// one flight, before anything of the peer's came back; the greeting's answer then opens
/// nothing twice.
#[test]
fn a_dialler_back_with_a_peer_met_before_opens_its_session_behind_its_greeting() {
    let w = world();
    let mut p = Pair::open(&w, fast(), 0);
    check_in(&mut p.a, 0);
    check_in(&mut p.b, 1);
    p.pump(0);
    assert_eq!(p.a.state_digest(), p.b.state_digest());
    drop_pair(&mut p);
    // Written apart.
    for i in 2..5 {
        check_in(&mut p.a, i);
    }
    check_in(&mut p.b, 5);

    let (mut la, opened) = SyncLink::open(Hello::of(&p.a), Role::Dialled, device(2), fast(), 50);
    let first = la.first_flight(&mut p.a, 50);
    let flight: Vec<(u8, Vec<u8>)> = sends(&opened).into_iter().chain(sends(&first)).collect();
    let kinds: Vec<u8> = flight.iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds.first(), Some(&FRAME_HELLO), "the greeting goes first");
    assert!(
        kinds.len() >= 3 && kinds.iter().skip(1).all(|&k| k == FRAME_SYNC),
        "the catalog and the resumed push behind the greeting: {kinds:?}"
    );
    assert!(
        la.first_flight(&mut p.a, 50).is_empty(),
        "opened once per connection"
    );

    let (mut lb, _) = SyncLink::open(Hello::of(&p.b), Role::Accepted, device(1), fast(), 50);
    let mut answer = Vec::new();
    for (kind, body) in &flight {
        answer.extend(lb.frame(&mut p.b, *kind, body, 60));
    }
    assert!(lb.is_live());
    assert_eq!(
        p.b.state().len(),
        6,
        "the peer holds what the dialler wrote apart after one flight"
    );

    // The peer's greeting comes back: the session is already open, nothing is sent again.
    let hello_back: Vec<(u8, Vec<u8>)> = sends(&answer)
        .into_iter()
        .filter(|(k, _)| *k == FRAME_HELLO)
        .collect();
    assert_eq!(hello_back.len(), 1);
    let out = la.frame(&mut p.a, FRAME_HELLO, &hello_back[0].1, 70);
    assert!(la.is_live());
    assert!(
        sends(&out).is_empty(),
        "the greeting's answer opened the session a second time: {:?}",
        sends(&out).iter().map(|(k, _)| *k).collect::<Vec<_>>()
    );
    // The rest of the peer's answer, and the exchange to the end: both hold everything.
    p.la = la;
    p.lb = lb;
    for (kind, body) in sends(&answer)
        .into_iter()
        .filter(|(k, _)| *k != FRAME_HELLO)
    {
        p.wire.push_back((false, kind, body));
    }
    p.pump(80);
    assert_eq!(p.a.state().len(), 6);
    assert_eq!(p.a.state_digest(), p.b.state_digest());
}

/// No first flight to a peer never met, from the accepting side, or to a peer last seen under
/// another manifest than the one this laptop holds now (it may not enrol what the messages
/// carry before it has this laptop's manifest): those sessions open after the greeting.
#[test]
fn no_first_flight_to_a_stranger_from_the_accepting_side_or_under_another_manifest() {
    use crate::manifest_spread_tests::{Lab, v};
    let w = world();
    let mut p = Pair::open(&w, fast(), 0);
    assert!(
        p.la.first_flight(&mut p.a, 0).is_empty(),
        "never met: nothing before the greeting"
    );
    p.pump(0);
    drop_pair(&mut p);
    check_in(&mut p.a, 0);
    let (mut lb, _) = SyncLink::open(Hello::of(&p.b), Role::Accepted, device(1), fast(), 10);
    assert!(
        lb.first_flight(&mut p.b, 10).is_empty(),
        "the accepting side"
    );
    let (mut la, _) = SyncLink::open(Hello::of(&p.a), Role::Dialled, device(2), fast(), 10);
    assert!(!la.first_flight(&mut p.a, 10).is_empty(), "met before");

    // Met under version 1; this laptop has adopted version 2 since.
    let lab = Lab::new();
    let mut a = lab.node(1, &v(1, &[1, 2]));
    let mut b = lab.node(2, &v(1, &[1, 2]));
    let (mut la, oa) = SyncLink::open(Hello::of(&a), Role::Dialled, device(2), fast(), 0);
    let (mut lb, _) = SyncLink::open(Hello::of(&b), Role::Accepted, device(1), fast(), 0);
    let mut wire: std::collections::VecDeque<(bool, u8, Vec<u8>)> = sends(&oa)
        .into_iter()
        .map(|(k, body)| (true, k, body))
        .collect();
    let mut steps = 0;
    while let Some((to_b, kind, body)) = wire.pop_front() {
        steps += 1;
        assert!(steps < 1_000, "no quiescence");
        let out = if to_b {
            lb.frame(&mut b, kind, &body, 1)
        } else {
            la.frame(&mut a, kind, &body, 1)
        };
        wire.extend(sends(&out).into_iter().map(|(k, body)| (!to_b, k, body)));
    }
    assert!(la.is_live() && lb.is_live());
    la.closed(&mut a, Ended::Dropped("cut".into()));
    check_in(&mut a, 0);
    let (mut again, _) = SyncLink::open(Hello::of(&a), Role::Dialled, device(2), fast(), 10);
    assert!(
        !again.first_flight(&mut a, 10).is_empty(),
        "same manifest: the first flight goes"
    );
    a.adopt_manifest(&v(2, &[1, 2, 3])).unwrap();
    let (mut newer, _) = SyncLink::open(Hello::of(&a), Role::Dialled, device(2), fast(), 20);
    assert!(
        newer.first_flight(&mut a, 20).is_empty(),
        "another manifest since: nothing before the greeting"
    );
}

/// What the dialler gains between its first flight and the peer's greeting (its own write, or
/// a third laptop's events) goes when the greeting passes: the early catalog did not carry it
/// and no push goes before the greeting.
#[test]
fn what_is_gained_between_the_first_flight_and_the_greeting_goes_at_the_greeting() {
    let w = world();
    let mut p = Pair::open(&w, fast(), 0);
    check_in(&mut p.a, 0);
    p.pump(0);
    drop_pair(&mut p);
    check_in(&mut p.a, 1);

    let (mut la, opened) = SyncLink::open(Hello::of(&p.a), Role::Dialled, device(2), fast(), 50);
    let first = la.first_flight(&mut p.a, 50);
    assert!(!sends(&first).is_empty());
    // Gained after the first flight left, before the greeting's answer.
    check_in(&mut p.a, 2);
    assert!(
        la.changed(&mut p.a, 55).is_empty(),
        "nothing before the greeting"
    );

    let (mut lb, _) = SyncLink::open(Hello::of(&p.b), Role::Accepted, device(1), fast(), 50);
    let mut answer = Vec::new();
    for (kind, body) in sends(&opened).into_iter().chain(sends(&first)) {
        answer.extend(lb.frame(&mut p.b, kind, &body, 60));
    }
    assert_eq!(
        p.b.state().len(),
        2,
        "the first flight carried the write before it"
    );
    let hello = sends(&answer)
        .into_iter()
        .find(|(k, _)| *k == FRAME_HELLO)
        .unwrap();
    let out = la.frame(&mut p.a, FRAME_HELLO, &hello.1, 70);
    assert!(la.is_live());
    let pushed = sends(&out);
    assert!(
        !pushed.is_empty() && pushed.iter().all(|(k, _)| *k == FRAME_SYNC),
        "the write gained since goes at the greeting"
    );
    for (kind, body) in pushed {
        lb.frame(&mut p.b, kind, &body, 80);
    }
    assert_eq!(p.b.state().len(), 3);
}
