//! Rosters over real UDP on loopback: a laptop enrolled with no roster gets it from a member,
//! cut half-way and resumed with only the rest; a running station switches to a newly pinned
//! roster; a stranger is served nothing.

use crate::Node;
use crate::clock::ManualClock;
use crate::enrolled::{self, Folder, META_SITE};
use crate::link::tests::{deployment, device, key, roster as small_roster, site};
use crate::mesh::{Link, Mesh, MeshConfig, PeerAddr};
use crate::roster_db::RosterDb;
use crate::roster_fetch::{RosterTarget, short};
use crate::roster_net::{FolderFetch, Standalone};
use crate::store::{KdfParams, Store};
use kazashi_domain::ids::{HouseholdId, PersonId, RosterHash};
use kazashi_domain::roster::{RosterEntry, RosterKind, Sex};
use kazashi_domain::text::{Address, KanaReading, Label, PersonName};
use kazashi_domain::{CivilDate, Roster};
use kazashi_sync::{DeviceEntry, DeviceKey, Manifest, Role as DeviceRole, SignedManifest};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

pub(crate) const T0: u64 = 1_788_220_800_000;
pub(crate) const PASS: &str = "correct horse";
pub(crate) const ROSTER_PASS: &str = "roster staple";

pub(crate) fn today() -> CivilDate {
    CivilDate::new(2026, 9, 1).unwrap()
}

pub(crate) fn big_roster(n: usize) -> Roster {
    let entries = (0..n)
        .map(|i| RosterEntry {
            person: PersonId::new(&format!("Q{i:07}")).unwrap(),
            household: HouseholdId::new(&format!("H{:07}", i / 3)).unwrap(),
            name: PersonName::new("佐藤 花子").unwrap(),
            kana: KanaReading::new("さとう はなこ").unwrap(),
            birth_date: CivilDate::new(1940 + (i % 80) as i32, 1 + (i % 12) as u32, 3).unwrap(),
            sex: Sex::Female,
            address: Address::new(&format!("新潟県長岡市大手通{i}番地")).unwrap(),
            voter: None,
            care_needs: Default::default(),
            support_measure: false,
        })
        .collect();
    Roster::new(RosterKind::Residents, entries, today()).unwrap()
}

/// Version `version` of deployment 1, pinning `roster`, enrolling `devices`.
pub(crate) fn manifest(version: u32, roster: RosterHash, devices: &[u8]) -> Vec<u8> {
    let admin = DeviceKey::from_seed([100; 32]);
    // From a manifest the spread tests make, whatever fields it has beside these.
    let mut m: Manifest = SignedManifest::decode(&crate::manifest_spread_tests::v(1, &[1]))
        .unwrap()
        .manifest()
        .clone();
    m.version = version;
    m.deployment = deployment(1, roster);
    m.admin = admin.device_id();
    m.devices = devices
        .iter()
        .map(|&n| DeviceEntry {
            device: device(n),
            role: DeviceRole::Station,
            label: Label::new(&format!("端末{n}")).unwrap(),
            sites: vec![],
        })
        .collect();
    m.revoked = vec![];
    SignedManifest::sign(&m, &admin).unwrap().encode()
}

pub(crate) fn loopback(peers: Vec<PeerAddr>) -> MeshConfig {
    MeshConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        peers,
        mdns: false,
        ..MeshConfig::default()
    }
}

/// A laptop's folder enrolled as device `n` under `manifest`, with no roster store.
pub(crate) fn folder_without_roster(dir: &std::path::Path, n: u8, manifest: &[u8]) -> Folder {
    let folder = Folder::new(dir.join(format!("laptop{n}")));
    std::fs::create_dir_all(&folder.dir).unwrap();
    let store = Store::create(&folder.store_path(), PASS, KdfParams::FAST_INSECURE).unwrap();
    store.set_identity(&key(n)).unwrap();
    store.set_manifest(manifest).unwrap();
    store
        .set_meta(META_SITE, site().as_str().as_bytes())
        .unwrap();
    folder
}

pub(crate) fn target(folder: &Folder) -> RosterTarget {
    RosterTarget {
        path: folder.roster_path(),
        passphrase: Zeroizing::new(ROSTER_PASS.into()),
        kdf: KdfParams::FAST_INSECURE,
    }
}

/// A member serving `roster` under `manifest` on loopback, and its address.
pub(crate) async fn member(
    dir: &std::path::Path,
    n: u8,
    manifest: &[u8],
    roster: Arc<Roster>,
) -> (Arc<Mesh<ManualClock>>, PeerAddr) {
    let node = Node::create(
        &dir.join(format!("{n}.db")),
        PASS,
        KdfParams::FAST_INSECURE,
        key(n),
        manifest,
        roster,
        site(),
        ManualClock::new(T0),
    )
    .unwrap();
    let mesh = Mesh::start(node, loopback(Vec::new())).await.unwrap();
    let at = mesh.addrs().into_iter().next().unwrap();
    (mesh, at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_laptop_with_no_roster_gets_it_cut_half_way_resumes_with_the_rest_and_opens() {
    let dir = tempfile::tempdir().unwrap();
    let roster = Arc::new(big_roster(100_000));
    let m = manifest(1, roster.hash(), &[1, 2]);
    let (ma, at_a) = member(dir.path(), 1, &m, roster.clone()).await;
    let folder = folder_without_roster(dir.path(), 2, &m);
    assert!(matches!(
        enrolled::open(&folder, PASS, ROSTER_PASS, ManualClock::new(T0)),
        Err(enrolled::OpenError::NoRoster(_))
    ));
    let how = FolderFetch {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        peers: vec![(Some(device(1)), at_a.addr)],
        kdf: KdfParams::FAST_INSECURE,
    };

    // The first run, cut (the task dropped, as a killed process) once half the chunks are in.
    let (host, secret) = Standalone::open(&folder, PASS).unwrap();
    let run = {
        let (host, how, t) = (host.clone(), how.clone(), target(&folder));
        tokio::spawn(async move { host.run(secret, &how, &t, today()).await })
    };
    let started = std::time::Instant::now();
    let total = loop {
        let s = host.status();
        if s.chunks_total > 0 && s.chunks_held * 2 >= s.chunks_total {
            run.abort();
            break s.chunks_total;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no progress: {s:?}"
        );
        tokio::task::yield_now().await;
    };
    assert!(run.await.unwrap_err().is_cancelled());
    drop(host);
    let held = {
        let store = Store::open(&folder.store_path(), PASS).unwrap();
        store.roster_chunks(&roster.hash().0).unwrap().len()
    };
    assert!(total >= 20, "{total} chunks");
    assert!(held * 2 >= total && held < total, "{held} of {total}");
    assert!(!folder.roster_path().exists());

    // The second run, from a new start: only the missing chunks travel.
    let (host, secret) = Standalone::open(&folder, PASS).unwrap();
    let got = host
        .run(secret, &how, &target(&folder), today())
        .await
        .unwrap();
    assert_eq!(got.total, total);
    assert_eq!(got.fetched as usize, total - held);
    assert_eq!(got.roster.hash(), roster.hash());
    let status = host.status();
    assert_eq!(
        (status.state.as_str(), status.in_use.clone()),
        ("in_use", short(&roster.hash()))
    );
    drop(host);
    // The chunks are gone from the store; the folder opens on the roster checked on the pin.
    let store = Store::open(&folder.store_path(), PASS).unwrap();
    assert!(store.roster_chunks(&roster.hash().0).unwrap().is_empty());
    drop(store);
    let (node, opened) = enrolled::open(&folder, PASS, ROSTER_PASS, ManualClock::new(T0)).unwrap();
    assert_eq!(opened.hash(), roster.hash());
    assert_eq!(opened.len(), 100_000);
    assert_eq!(node.station().roster().hash(), roster.hash());
    ma.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_station_switches_to_the_newly_pinned_roster_it_gets_from_a_member() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (Arc::new(small_roster()), Arc::new(big_roster(20_000)));
    let (v1, v2) = (
        manifest(1, old.hash(), &[1, 2]),
        manifest(2, new.hash(), &[1, 2]),
    );
    // A already runs on version 2 and its roster; B on version 1.
    let (ma, at_a) = member(dir.path(), 1, &v2, new.clone()).await;
    let b = Node::create(
        &dir.path().join("2.db"),
        PASS,
        KdfParams::FAST_INSECURE,
        key(2),
        &v1,
        old.clone(),
        site(),
        ManualClock::new(T0),
    )
    .unwrap();
    assert_eq!(b.roster_wanted(), None);
    let mb = Mesh::start(b, loopback(vec![at_a])).await.unwrap();
    let b_folder = Folder::new(dir.path().join("b"));
    mb.keep_roster(target(&b_folder));
    assert_eq!(mb.status().roster.in_use, short(&old.hash()));
    // B adopts version 2 from A over the sync link, then fetches its roster and switches.
    let mut waited = 0;
    while mb.status().roster.switches == 0 {
        assert!(waited < 600, "no switch: {:?}", mb.status().roster);
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    let s = mb.status();
    assert_eq!(s.manifest_version, 2);
    assert_eq!(
        (s.roster.state.as_str(), s.roster.in_use.clone()),
        ("in_use", short(&new.hash()))
    );
    assert_eq!(s.roster.chunks_total, s.roster.chunks_held);
    assert_eq!(s.roster.chunks_fetched as usize, s.roster.chunks_total);
    mb.with_node(|n| {
        assert_eq!(n.station().roster().hash(), new.hash());
        assert_eq!(n.station().deployment().roster_hash(), new.hash());
        assert_eq!(n.roster_wanted(), None);
    });
    // The roster store written for B opens under B's passphrase and matches the pin.
    let db = RosterDb::open(&b_folder.roster_path(), ROSTER_PASS).unwrap();
    assert_eq!(db.load(today(), Some(new.hash())).unwrap().len(), 20_000);
    assert!(
        mb.status()
            .peers
            .iter()
            .any(|p| p.device == device(1).to_hex() && p.link == Link::Connected)
    );
    assert_eq!(ma.status().roster.switches, 0);
    for m in [&ma, &mb] {
        m.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_the_servers_manifest_does_not_enrol_is_served_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let roster = Arc::new(big_roster(2_000));
    let (ma, at_a) = member(
        dir.path(),
        1,
        &manifest(1, roster.hash(), &[1, 2]),
        roster.clone(),
    )
    .await;
    // Device 3 holds a manifest (of the same admin, unknown to A) that lists it.
    let folder = folder_without_roster(dir.path(), 3, &manifest(1, roster.hash(), &[1, 3]));
    let how = FolderFetch {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        peers: vec![(Some(device(1)), at_a.addr)],
        kdf: KdfParams::FAST_INSECURE,
    };
    let (host, secret) = Standalone::open(&folder, PASS).unwrap();
    let run = tokio::time::timeout(
        Duration::from_secs(4),
        host.run(secret, &how, &target(&folder), today()),
    )
    .await;
    assert!(run.is_err(), "a stranger got a roster");
    let s = host.status();
    assert_eq!((s.chunks_held, s.chunks_total, s.chunks_fetched), (0, 0, 0));
    assert!(!folder.roster_path().exists());
    ma.shutdown().await;
}

/// A member that answers for the pinned roster with another roster's index and chunks.
struct Liar {
    pinned: RosterHash,
    other: Arc<Roster>,
    progress: std::sync::Mutex<crate::roster_fetch::RosterStatus>,
}

impl crate::roster_net::RosterHost for Liar {
    fn admits(&self, _: &kazashi_domain::DeviceId) -> bool {
        true
    }
    fn served_roster(&self) -> Option<(RosterHash, Arc<Roster>)> {
        Some((self.pinned, self.other.clone()))
    }
    fn with_store(&self, _: &mut dyn FnMut(&Store)) {}
    fn progress(&self) -> std::sync::MutexGuard<'_, crate::roster_fetch::RosterStatus> {
        self.progress.lock().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roster_that_fails_the_pinned_hash_is_discarded_whole_and_said_so() {
    let dir = tempfile::tempdir().unwrap();
    let roster = big_roster(3_000);
    let other = Arc::new(big_roster(2_999));
    let m = manifest(1, roster.hash(), &[1, 2]);
    // Device 1, whose every chunk matches the index it sends, and whose index is a lie.
    let endpoint = iroh::Endpoint::builder(iroh::endpoint::presets::Minimal)
        .secret_key(iroh::SecretKey::from_bytes(&key(1).secret_bytes()))
        .clear_ip_transports()
        .bind_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
        .unwrap()
        .bind()
        .await
        .unwrap();
    let at = *endpoint.bound_sockets().first().unwrap();
    let liar = Arc::new(Liar {
        pinned: roster.hash(),
        other: other.clone(),
        progress: Default::default(),
    });
    let router = iroh::protocol::Router::builder(endpoint)
        .accept(
            crate::roster_net::ALPN,
            crate::roster_net::Server::new(liar),
        )
        .spawn();
    let folder = folder_without_roster(dir.path(), 2, &m);
    let how = FolderFetch {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        peers: vec![(Some(device(1)), at)],
        kdf: KdfParams::FAST_INSECURE,
    };
    let (host, secret) = Standalone::open(&folder, PASS).unwrap();
    let e = tokio::time::timeout(
        Duration::from_secs(30),
        host.run(secret, &how, &target(&folder), today()),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert!(e.to_string().contains("discarded"), "{e}");
    let s = host.status();
    assert_eq!(s.state, "failed");
    assert!(s.error.unwrap().contains(&roster.hash().to_hex()));
    drop(host);
    assert!(!folder.roster_path().exists());
    let store = Store::open(&folder.store_path(), PASS).unwrap();
    assert!(store.roster_chunks(&roster.hash().0).unwrap().is_empty());
    router.shutdown().await.unwrap();
}
