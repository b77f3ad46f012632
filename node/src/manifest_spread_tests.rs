//! Manifests over the mesh (issue 23, step 4): [`Node::adopt_manifest`] and the
//! [`SyncLink`] policy that carries a newer manifest from peer to peer, on nodes wired back to
//! back.

use crate::clock::ManualClock;
use crate::enrolment::Adopted;
use crate::link::tests::{check_in, deployment, device, key, roster, site};
use crate::link::{
    Action, CLOSE_REFUSED, Ended, FRAME_HELLO, FRAME_MANIFEST, FRAME_SYNC, Hello, Link, LinkConfig,
    MAX_MANIFEST, Role, SyncLink,
};
use crate::node::{ManifestRefusal, Node, NodeError};
use crate::store::KdfParams;
use kazashi_domain::text::Label;
use kazashi_sync::{
    DeviceEntry, DeviceKey, Manifest, Revocation, Role as DeviceRole, SignedManifest,
};
use std::collections::VecDeque;
use std::sync::Arc;

pub(crate) const T0: u64 = 1_788_220_800_000;
pub(crate) const ADMIN: u8 = 100;
pub(crate) const OTHER_ADMIN: u8 = 101;
/// The laptop enrolled only from version 2 on.
pub(crate) const C: u8 = 5;

/// A manifest of deployment `dep`, signed by `admin`, enrolling `devices` and revoking
/// `revoked` from T0.
pub(crate) fn signed(version: u32, dep: u8, admin: u8, devices: &[u8], revoked: &[u8]) -> Vec<u8> {
    let admin_key = DeviceKey::from_seed([admin; 32]);
    let manifest = Manifest {
        version,
        deployment: deployment(dep, roster().hash()),
        admin: admin_key.device_id(),
        devices: devices
            .iter()
            .map(|&n| DeviceEntry {
                device: device(n),
                role: DeviceRole::Station,
                label: Label::new(&format!("端末{n}")).unwrap(),
                sites: vec![],
            })
            .collect(),
        revoked: revoked
            .iter()
            .map(|&n| Revocation {
                device: device(n),
                from_ms: T0,
            })
            .collect(),
        staff: vec![],
        closed_at: None,
        card_cas: vec![],
        sealed_keys: Vec::new(),
        retention_days: None,
        receipt_slips: false,
    };
    SignedManifest::sign(&manifest, &admin_key)
        .unwrap()
        .encode()
}

pub(crate) fn v(version: u32, devices: &[u8]) -> Vec<u8> {
    signed(version, 1, ADMIN, devices, &[])
}

pub(crate) struct Lab {
    dir: tempfile::TempDir,
    pub(crate) clock: ManualClock,
    roster: Arc<kazashi_domain::Roster>,
}

impl Lab {
    pub(crate) fn new() -> Lab {
        Lab {
            dir: tempfile::tempdir().unwrap(),
            clock: ManualClock::new(T0),
            roster: Arc::new(roster()),
        }
    }

    pub(crate) fn node(&self, n: u8, manifest: &[u8]) -> Node<ManualClock> {
        Node::create(
            &self.dir.path().join(format!("{n}.db")),
            "correct horse",
            KdfParams::FAST_INSECURE,
            key(n),
            manifest,
            self.roster.clone(),
            site(),
            self.clock.clone(),
        )
        .unwrap()
    }

    /// Laptop `n` opened again from its store (the cold start).
    pub(crate) fn reopen(&self, n: u8) -> Node<ManualClock> {
        Node::open(
            &self.dir.path().join(format!("{n}.db")),
            "correct horse",
            self.roster.clone(),
            site(),
            self.clock.clone(),
        )
        .unwrap()
    }
}

fn config() -> LinkConfig {
    LinkConfig {
        anti_entropy_ms: 7_000,
        ping_ms: 2_000,
        lost_after_ms: 10_000,
        greeting_ms: 5_000,
    }
}

/// One end of a connection: the node it runs at, the end facing it, its machine.
struct End {
    at: usize,
    other: usize,
    link: SyncLink,
    /// Statuses this end reported, last last.
    statuses: Vec<(Link, Option<String>)>,
    /// The close code this end sent, if it closed.
    closed_with: Option<u32>,
    manifests_sent: usize,
}

/// Nodes and connections between them, delivering frames in order at one instant as the
/// drivers do: a gain or an adoption is told to every connection of that node.
struct Net {
    nodes: Vec<Node<ManualClock>>,
    ends: Vec<End>,
    wire: VecDeque<(usize, u8, Vec<u8>)>,
}

impl Net {
    fn new(nodes: Vec<Node<ManualClock>>) -> Net {
        Net {
            nodes,
            ends: Vec::new(),
            wire: VecDeque::new(),
        }
    }

    /// Node `a` dials node `b`; the pair of ends (a's, b's).
    fn connect(&mut self, a: usize, b: usize) -> (usize, usize) {
        let (ea, eb) = (self.ends.len(), self.ends.len() + 1);
        let dev = |n: &Node<ManualClock>| n.device();
        let (da, db) = (dev(&self.nodes[a]), dev(&self.nodes[b]));
        let (la, oa) = SyncLink::open(Hello::of(&self.nodes[a]), Role::Dialled, db, config(), 0);
        let (lb, ob) = SyncLink::open(Hello::of(&self.nodes[b]), Role::Accepted, da, config(), 0);
        for (at, other, link) in [(a, eb, la), (b, ea, lb)] {
            self.ends.push(End {
                at,
                other,
                link,
                statuses: Vec::new(),
                closed_with: None,
                manifests_sent: 0,
            });
        }
        self.take(ea, oa);
        self.take(eb, ob);
        (ea, eb)
    }

    fn take(&mut self, from: usize, actions: Vec<Action>) {
        for act in actions {
            match act {
                Action::Send { kind, body } => {
                    if kind == FRAME_MANIFEST {
                        self.ends[from].manifests_sent += 1;
                    }
                    let to = self.ends[from].other;
                    self.wire.push_back((to, kind, body));
                }
                Action::Close { code, reason } => {
                    self.ends[from].closed_with = Some(code);
                    let to = self.ends[from].other;
                    let at = self.ends[to].at;
                    let out = self.ends[to].link.closed(
                        &mut self.nodes[at],
                        Ended::ByPeer {
                            code: u64::from(code),
                            reason: reason.into(),
                        },
                    );
                    self.take(to, out);
                }
                Action::Status { link, reason } => self.ends[from].statuses.push((link, reason)),
                Action::Gained { .. } | Action::Adopted { .. } => {
                    let at = self.ends[from].at;
                    for e in 0..self.ends.len() {
                        if self.ends[e].at == at {
                            let out = self.ends[e].link.changed(&mut self.nodes[at], 0);
                            self.take(e, out);
                        }
                    }
                }
                Action::Failed(e) => panic!("{e}"),
                Action::Timer { .. } | Action::Differing(_) => {}
            }
        }
    }

    fn pump(&mut self) {
        let mut steps = 0;
        while let Some((to, kind, body)) = self.wire.pop_front() {
            steps += 1;
            assert!(steps < 10_000, "no quiescence");
            let at = self.ends[to].at;
            let out = self.ends[to]
                .link
                .frame(&mut self.nodes[at], kind, &body, 0);
            self.take(to, out);
        }
    }

    fn version(&self, n: usize) -> u32 {
        self.nodes[n].membership().version()
    }

    fn last_status(&self, e: usize) -> Option<(Link, Option<String>)> {
        self.ends[e].statuses.last().cloned()
    }
}

#[test]
fn adopt_manifest_takes_a_newer_one_and_refuses_the_rest_leaving_it_unchanged() {
    let lab = Lab::new();
    let mut a = lab.node(1, &v(1, &[1, 2]));
    let v2 = v(2, &[1, 2, C]);
    assert_eq!(
        a.adopt_manifest(&v2).unwrap(),
        Adopted::Newer {
            version: 2,
            revokes_me: false
        }
    );
    assert_eq!(a.membership().version(), 2);
    assert!(a.membership().device(&device(C)).is_some());
    assert_eq!(a.store().manifest().unwrap().as_deref(), Some(&v2[..]));
    assert_eq!(a.adopt_manifest(&v2).unwrap(), Adopted::Same);

    let refused = |a: &mut Node<ManualClock>, bytes: &[u8]| match a.adopt_manifest(bytes) {
        Err(NodeError::ManifestRefused(r)) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        refused(&mut a, &v(1, &[1, 2])),
        ManifestRefusal::Rollback {
            installed: 2,
            found: 1
        }
    );
    // A version 2 that loses to the installed one (a higher digest): a conflict.
    let digest = |m: &[u8]| SignedManifest::decode(m).unwrap().digest();
    let loser = (6..40)
        .map(|n| v(2, &[1, 2, n]))
        .find(|m| digest(m) > digest(&v2))
        .unwrap();
    assert_eq!(refused(&mut a, &loser), ManifestRefusal::Conflict(2));
    assert_eq!(
        refused(&mut a, &signed(3, 1, OTHER_ADMIN, &[1, 2], &[])),
        ManifestRefusal::OtherAdmin
    );
    assert_eq!(
        refused(&mut a, &signed(3, 9, ADMIN, &[1, 2], &[])),
        ManifestRefusal::OtherDeployment
    );
    let mut forged = v(3, &[1, 2, 7]);
    if let Some(last) = forged.last_mut() {
        *last ^= 1;
    }
    assert!(matches!(
        refused(&mut a, &forged),
        ManifestRefusal::Invalid(_)
    ));
    assert!(matches!(
        refused(&mut a, &[0xff; 9]),
        ManifestRefusal::Invalid(_)
    ));
    assert!(matches!(refused(&mut a, &[]), ManifestRefusal::Invalid(_)));
    assert_eq!(a.membership().version(), 2);
    assert_eq!(a.store().manifest().unwrap().as_deref(), Some(&v2[..]));

    // A manifest revoking this very laptop is adopted all the same.
    let v3 = signed(3, 1, ADMIN, &[1, 2, C], &[1]);
    assert_eq!(
        a.adopt_manifest(&v3).unwrap(),
        Adopted::Newer {
            version: 3,
            revokes_me: true
        }
    );
    assert_eq!(a.membership().revoked_from(&device(1)), Some(T0));
}

#[test]
fn the_adopted_manifest_is_the_one_a_restarted_node_opens_with() {
    let lab = Lab::new();
    let mut a = lab.node(1, &v(1, &[1, 2]));
    let v2 = v(2, &[1, 2, C]);
    a.adopt_manifest(&v2).unwrap();
    drop(a);
    let a = Node::open(
        &lab.dir.path().join("1.db"),
        "correct horse",
        lab.roster.clone(),
        site(),
        lab.clock.clone(),
    )
    .unwrap();
    assert_eq!(a.membership().version(), 2);
}

#[test]
fn a_laptop_enrolled_only_in_the_newer_manifest_is_accepted_once_its_manifest_is_adopted() {
    // Either way round: C dials B, and B dials C.
    for c_dials in [true, false] {
        let lab = Lab::new();
        let v2 = v(2, &[1, 2, C]);
        let _a = lab.node(1, &v2);
        let b = lab.node(2, &v(1, &[1, 2]));
        let c = lab.node(C, &v2);
        let mut net = Net::new(vec![b, c]);
        check_in(&mut net.nodes[1], 0);
        let (eb, ec) = if c_dials {
            let (ec, eb) = net.connect(1, 0);
            (eb, ec)
        } else {
            net.connect(0, 1)
        };
        net.pump();
        assert_eq!(net.version(0), 2, "c_dials {c_dials}");
        assert!(net.ends[eb].link.is_live() && net.ends[ec].link.is_live());
        assert_eq!(net.last_status(eb), Some((Link::Connected, None)));
        assert_eq!(net.ends[ec].manifests_sent, 1);
        assert_eq!(net.ends[eb].manifests_sent, 0);
        // And they sync.
        assert_eq!(net.nodes[0].state().len(), 1);
        assert_eq!(
            net.nodes[0].store().manifest().unwrap().as_deref(),
            Some(&v2[..])
        );
    }
}

#[test]
fn a_stranger_announcing_a_newer_manifest_is_refused_without_it_or_if_it_does_not_enrol_it() {
    let lab = Lab::new();
    let v1 = v(1, &[1, 2]);
    let mut net = Net::new(vec![lab.node(2, &v1)]);
    // A laptop in neither manifest announces version 2: B greets it and waits.
    let stranger = DeviceKey::from_seed([9; 32]).device_id();
    let (mut lb, _) = SyncLink::open(
        Hello::of(&net.nodes[0]),
        Role::Accepted,
        stranger,
        config(),
        0,
    );
    let theirs = Hello {
        manifest_version: 2,
        ..Hello::of(&net.nodes[0])
    };
    let out = lb.frame(&mut net.nodes[0], FRAME_HELLO, &theirs.encode(), 1);
    assert!(lb.greeting(), "waits for the manifest");
    assert_eq!(lb.max_frame(), MAX_MANIFEST);
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Send { kind, .. } if *kind == FRAME_HELLO))
    );
    let out = lb.frame(&mut net.nodes[0], FRAME_MANIFEST, &v(2, &[1, 2]), 2);
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Close { code, .. } if *code == CLOSE_REFUSED))
    );
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Adopted { version: 2 }))
    );
    assert_eq!(net.version(0), 2, "the valid manifest is kept all the same");

    // Anything but a manifest, a bad one, or none before the deadline: refused, nothing adopted.
    let lab = Lab::new();
    let mut b = lab.node(2, &v1);
    for (kind, body) in [
        (FRAME_SYNC, b"catalog".to_vec()),
        (FRAME_MANIFEST, signed(2, 1, OTHER_ADMIN, &[1, 2, C], &[])),
        (FRAME_MANIFEST, vec![0; MAX_MANIFEST + 1]),
        (FRAME_MANIFEST, vec![0xff; 40]),
    ] {
        let (mut l, _) = SyncLink::open(Hello::of(&b), Role::Accepted, device(C), config(), 0);
        l.frame(&mut b, FRAME_HELLO, &theirs.encode(), 1);
        let out = l.frame(&mut b, kind, &body, 2);
        assert!(
            out.iter()
                .any(|a| matches!(a, Action::Close { code, .. } if *code == CLOSE_REFUSED)),
            "{kind}"
        );
        assert!(l.is_closed());
        assert_eq!(b.membership().version(), 1);
    }
    let (mut l, _) = SyncLink::open(Hello::of(&b), Role::Accepted, device(C), config(), 0);
    l.frame(&mut b, FRAME_HELLO, &theirs.encode(), 1);
    assert!(
        l.tick(&mut b, 4_999)
            .iter()
            .all(|a| !matches!(a, Action::Close { .. }))
    );
    let out = l.tick(&mut b, 5_000);
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Close { code, .. } if *code == CLOSE_REFUSED))
    );
    // A stranger announcing no newer manifest is refused at once, as before.
    let (mut l, _) = SyncLink::open(Hello::of(&b), Role::Accepted, device(C), config(), 0);
    let same = Hello::of(&b).encode();
    let out = l.frame(&mut b, FRAME_HELLO, &same, 1);
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Close { code, .. } if *code == CLOSE_REFUSED))
    );
}

#[test]
fn a_rollback_or_foreign_admin_manifest_from_a_greeted_peer_is_refused_and_closes() {
    // The laptops hold the version 2 that wins a same-version conflict (the lower digest,
    // whichever of the two that is under the encoding); the other one is a loser.
    let digest = |m: &[u8]| kazashi_sync::SignedManifest::decode(m).unwrap().digest();
    let (x, y) = (v(2, &[1, 2]), v(2, &[1, 2, 6]));
    let (v2, loser) = if digest(&x) < digest(&y) {
        (x, y)
    } else {
        (y, x)
    };
    for bad in [
        v(1, &[1, 2]),
        signed(3, 1, OTHER_ADMIN, &[1, 2], &[]),
        loser,
        vec![0xff; 30],
    ] {
        let lab = Lab::new();
        let mut net = Net::new(vec![lab.node(1, &v2), lab.node(2, &v2)]);
        let (ea, eb) = net.connect(0, 1);
        net.pump();
        assert!(net.ends[eb].link.is_live());
        assert_eq!(net.ends[ea].manifests_sent + net.ends[eb].manifests_sent, 0);
        net.wire.push_back((eb, FRAME_MANIFEST, bad));
        net.pump();
        assert_eq!(net.ends[eb].closed_with, Some(CLOSE_REFUSED));
        assert_eq!(net.last_status(eb).map(|s| s.0), Some(Link::Refused));
        assert_eq!(net.version(1), 2);
    }
}

#[test]
fn an_older_manifest_that_crossed_a_newer_adoption_is_ignored_not_refused() {
    // A and B greet at v1; A sends v2 while B adopts v3 elsewhere: v2 is older than B's but
    // newer than what B told A, so the link stays, and B's next change sends v3 to A.
    let lab = Lab::new();
    let v1 = v(1, &[1, 2]);
    let mut net = Net::new(vec![lab.node(1, &v1), lab.node(2, &v1)]);
    let (ea, eb) = net.connect(0, 1);
    net.pump();
    net.nodes[1].adopt_manifest(&v(3, &[1, 2])).unwrap();
    net.wire.push_back((eb, FRAME_MANIFEST, v(2, &[1, 2])));
    net.pump();
    assert!(net.ends[eb].link.is_live());
    let out = net.ends[eb].link.changed(&mut net.nodes[1], 0);
    net.take(eb, out);
    net.pump();
    assert_eq!(net.version(0), 3);
    assert!(net.ends[ea].link.is_live());
}

#[test]
fn a_newer_manifest_spreads_hop_by_hop_and_closes_the_link_of_the_device_it_revokes() {
    let lab = Lab::new();
    let v1 = v(1, &[1, 2, 3, C]);
    // A holds v2, which revokes C; B and D hold v1. Links: B–C and B–D live first.
    let v2 = signed(2, 1, ADMIN, &[1, 2, 3, C], &[C]);
    let mut net = Net::new(vec![
        lab.node(1, &v2),
        lab.node(2, &v1),
        lab.node(3, &v1),
        lab.node(C, &v1),
    ]);
    let (bc, cb) = net.connect(1, 3);
    let (_bd, db) = net.connect(1, 2);
    net.pump();
    assert!(net.ends[bc].link.is_live() && net.ends[db].link.is_live());

    // A meets B: B adopts v2 and passes it on to D; B's link with C closes as refused.
    let (ab, ba) = net.connect(0, 1);
    net.pump();
    assert!(net.ends[ab].link.is_live() && net.ends[ba].link.is_live());
    assert_eq!(net.version(1), 2);
    assert_eq!(net.version(2), 2, "D got it from B");
    assert_eq!(net.version(3), 1, "C is cut off before it gets it");
    assert_eq!(net.ends[bc].closed_with, Some(CLOSE_REFUSED));
    assert_eq!(
        net.last_status(bc),
        Some((
            Link::Refused,
            Some("revoked by manifest version 2".to_owned())
        ))
    );
    assert!(net.ends[cb].link.is_closed());
    assert!(!net.ends[db].link.is_closed());
    // Once each: A to B, B to D; none back.
    let sent: Vec<usize> = net.ends.iter().map(|e| e.manifests_sent).collect();
    assert_eq!(sent.iter().sum::<usize>(), 2, "{sent:?}");

    // C redials B: refused at the greeting (its v1 is older, so nothing is awaited).
    let (_cb2, bc2) = net.connect(3, 1);
    net.pump();
    assert_eq!(net.ends[bc2].closed_with, Some(CLOSE_REFUSED));
}

#[test]
fn a_manifest_adopted_over_one_link_reaches_a_live_peer_whose_greeting_was_older() {
    // B and D live at v1; B adopts v3 from a bundle-like source (the node call), then any
    // change tells D.
    let lab = Lab::new();
    let v1 = v(1, &[1, 2]);
    let mut net = Net::new(vec![lab.node(1, &v1), lab.node(2, &v1)]);
    let (ea, _eb) = net.connect(0, 1);
    net.pump();
    net.nodes[0].adopt_manifest(&v(3, &[1, 2])).unwrap();
    let out = net.ends[ea].link.changed(&mut net.nodes[0], 0);
    net.take(ea, out);
    net.pump();
    assert_eq!(net.version(1), 3);
    // A later change sends no manifest again.
    check_in(&mut net.nodes[0], 1);
    let out = net.ends[ea].link.changed(&mut net.nodes[0], 0);
    assert!(
        !out.iter()
            .any(|a| matches!(a, Action::Send { kind, .. } if *kind == FRAME_MANIFEST))
    );
}

/// Manifests of version 2 that differ (each enrols 1, 2 and one more laptop), ordered by the
/// SHA-256 of their signed bytes: the first wins over the others on every laptop.
fn same_version_by_digest(extra: &[u8]) -> Vec<Vec<u8>> {
    let mut ms: Vec<Vec<u8>> = extra.iter().map(|&n| v(2, &[1, 2, 3, n])).collect();
    ms.sort_by_key(|m| SignedManifest::decode(m).unwrap().digest());
    ms
}

#[test]
fn two_laptops_at_the_same_version_with_different_manifests_settle_on_the_winner_over_a_link() {
    let ms = same_version_by_digest(&[6, 7]);
    let (win, lose) = (&ms[0], &ms[1]);
    let win_digest = SignedManifest::decode(win).unwrap().digest();
    // Whoever dials, and whichever side holds the winner.
    for (dialler_wins, a_dials) in [(true, true), (true, false), (false, true), (false, false)] {
        let lab = Lab::new();
        let (ma, mb) = if dialler_wins {
            (win, lose)
        } else {
            (lose, win)
        };
        let mut net = Net::new(vec![lab.node(1, ma), lab.node(2, mb)]);
        let (ea, eb) = if a_dials {
            net.connect(0, 1)
        } else {
            let (eb, ea) = net.connect(1, 0);
            (ea, eb)
        };
        net.pump();
        for n in 0..2 {
            assert_eq!(net.version(n), 2);
            assert_eq!(net.nodes[n].membership().digest(), win_digest, "node {n}");
        }
        assert!(net.ends[ea].link.is_live() && net.ends[eb].link.is_live());
        // The winner's side sent it, once; the loser's sent nothing.
        let (winner_end, loser_end) = if dialler_wins { (ea, eb) } else { (eb, ea) };
        assert_eq!(net.ends[winner_end].manifests_sent, 1);
        assert_eq!(net.ends[loser_end].manifests_sent, 0);
        // The loser's store holds the winner (a restart opens with it).
        let loser = if dialler_wins { 1 } else { 0 };
        let again = net.nodes[loser].adopt_manifest(win).unwrap();
        assert!(matches!(again, Adopted::Same));
        // Later changes send no manifest either way.
        check_in(&mut net.nodes[0], 1);
        let out = net.ends[ea].link.changed(&mut net.nodes[0], 0);
        assert!(
            !out.iter()
                .any(|a| matches!(a, Action::Send { kind, .. } if *kind == FRAME_MANIFEST))
        );
    }
}

#[test]
fn a_same_version_winner_spreads_hop_by_hop_and_admits_a_laptop_it_alone_enrols() {
    // W enrols 1, 2, 3 and 6; L enrols 1, 2, 3 and 7 (or the other way round, by digest).
    let ms = same_version_by_digest(&[6, 7]);
    let (win, lose) = (&ms[0], &ms[1]);
    let win_m = SignedManifest::decode(win).unwrap();
    let only_winner = [6u8, 7]
        .into_iter()
        .find(|&n| win_m.device(&device(n)).is_some())
        .unwrap();
    let lab = Lab::new();
    // A holds the winner; B and D the loser, linked B–D first.
    let mut net = Net::new(vec![
        lab.node(1, win),
        lab.node(2, lose),
        lab.node(3, lose),
        lab.node(only_winner, win),
    ]);
    let (bd, db) = net.connect(1, 2);
    net.pump();
    assert!(net.ends[bd].link.is_live() && net.ends[db].link.is_live());
    let (ab, ba) = net.connect(0, 1);
    net.pump();
    assert!(net.ends[ab].link.is_live() && net.ends[ba].link.is_live());
    for n in 0..3 {
        assert_eq!(
            net.nodes[n].membership().digest(),
            win_m.digest(),
            "node {n}"
        );
    }
    assert!(net.ends[bd].link.is_live(), "D took it from B, no refusal");
    // The laptop enrolled only in the winner dials D, which had the loser: accepted.
    let lab2 = Lab::new();
    let mut net2 = Net::new(vec![lab2.node(only_winner, win), lab2.node(3, lose)]);
    let (e, f) = net2.connect(0, 1);
    net2.pump();
    assert!(net2.ends[e].link.is_live() && net2.ends[f].link.is_live());
    assert_eq!(net2.nodes[1].membership().digest(), win_m.digest());
    // And the other way round: a laptop holding the loser that enrols it not is refused by
    // the winner's holder without waiting (the loser cannot win).
    let loser_only = if only_winner == 6 { 7 } else { 6 };
    let mut net3 = Net::new(vec![lab2.node(loser_only, lose), lab2.node(2, win)]);
    let (_g, h) = net3.connect(0, 1);
    net3.pump();
    assert_eq!(net3.ends[h].closed_with, Some(CLOSE_REFUSED));
    assert_eq!(net3.nodes[1].membership().digest(), win_m.digest());
}

#[test]
fn same_version_manifests_that_cross_on_a_link_end_at_the_best_with_the_link_kept() {
    // A and B greet holding X; then B takes Y and A takes Z, both of version 2 and both
    // beating X, Y beating Z. A's Z reaches B after B took Y: it crossed, so it is ignored
    // (not refused) and B sends Y back at once.
    let ms = same_version_by_digest(&[6, 7, 8]);
    let (y, z, x) = (&ms[0], &ms[1], &ms[2]);
    let lab = Lab::new();
    let mut net = Net::new(vec![lab.node(1, x), lab.node(2, x)]);
    let (ea, eb) = net.connect(0, 1);
    net.pump();
    assert_eq!(net.ends[ea].manifests_sent + net.ends[eb].manifests_sent, 0);
    net.nodes[1].adopt_manifest(y).unwrap();
    net.nodes[0].adopt_manifest(z).unwrap();
    let out = net.ends[ea].link.changed(&mut net.nodes[0], 0);
    net.take(ea, out);
    net.pump();
    assert!(net.ends[ea].link.is_live() && net.ends[eb].link.is_live());
    let best = SignedManifest::decode(y).unwrap().digest();
    assert_eq!(net.nodes[0].membership().digest(), best);
    assert_eq!(net.nodes[1].membership().digest(), best);

    // A losing same-version manifest the peer had no reason to send (it was told the
    // winner) still closes as refused and changes nothing.
    let lab = Lab::new();
    let mut net = Net::new(vec![lab.node(1, y), lab.node(2, y)]);
    let (_ea, eb) = net.connect(0, 1);
    net.pump();
    net.wire.push_back((eb, FRAME_MANIFEST, z.clone()));
    net.pump();
    assert_eq!(net.ends[eb].closed_with, Some(CLOSE_REFUSED));
    assert_eq!(net.nodes[1].membership().digest(), best);
}
