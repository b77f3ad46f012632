//! The product's window over a real mesh on loopback while a newer manifest pins a new roster
//! version: the running station fetches it from the laptop that has it, switches between two
//! frames, says so on screen (名簿を新しい版に切り替えました（…）) and the header's roster prefix
//! changes. Stores are real SQLite files.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use kazashi_domain::roster::Roster;
use kazashi_domain::{CivilDate, Deployment};
use kazashi_gui::app::cards::NoReaders;
use kazashi_gui::app::{Host, Station};
use kazashi_gui::lang::Lang;
use kazashi_node::mesh::{Mesh, MeshConfig};
use kazashi_node::roster_db::RosterDb;
use kazashi_node::roster_fetch::RosterTarget;
use kazashi_node::{KdfParams, Node, SystemClock};
use kazashi_sim::fleet::fleet;
use kazashi_sim::population::{PopulationSpec, generate, shelter_operation};
use kazashi_sync::{DeviceKey, SignedManifest};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn loopback(peers: Vec<kazashi_node::mesh::PeerAddr>) -> MeshConfig {
    MeshConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        peers,
        mdns: false,
        ..MeshConfig::default()
    }
}

fn prefix(r: &Roster) -> String {
    r.hash().to_hex()[..8].to_owned()
}

#[test]
fn the_window_switches_to_a_newly_pinned_roster_fetched_over_the_mesh_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let today = CivilDate::new(2026, 9, 1).unwrap();
    let m = generate(PopulationSpec {
        households: 300,
        seed: 7,
        today,
        voters: false,
    })
    .unwrap();
    let d1 = shelter_operation(&m, 1).unwrap();
    let fleet = fleet(&d1, 7).unwrap();
    let old = Arc::new(m.roster);
    // Version 2 of the roster: one person fewer.
    let mut entries = old.entries().to_vec();
    entries.pop();
    let new = Arc::new(Roster::new(old.kind(), entries, today).unwrap());
    let d2 = Deployment::new(
        d1.id(),
        d1.name().clone(),
        d1.kind(),
        new.hash(),
        d1.sites().cloned().collect(),
    )
    .unwrap();
    let mut v2 = SignedManifest::decode(&fleet.manifest)
        .unwrap()
        .manifest()
        .clone();
    v2.version += 1;
    v2.deployment = d2;
    let v2 = SignedManifest::sign(&v2, &fleet.admin).unwrap().encode();

    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    );
    let node = |i: usize, manifest: &[u8], roster: &Arc<Roster>| {
        let (site, key) = &fleet.stations[i];
        Node::create(
            &dir.path().join(format!("{i}.db")),
            "pw",
            KdfParams::FAST_INSECURE,
            DeviceKey::from_seed(key.secret_bytes()),
            manifest,
            roster.clone(),
            *site,
            SystemClock,
        )
        .unwrap()
    };
    // A already runs on version 2; the window's laptop B on version 1.
    let ma = rt
        .block_on(Mesh::start(node(0, &v2, &new), loopback(Vec::new())))
        .unwrap();
    let mut b = node(1, &fleet.manifest, &old);
    let roster_path = dir.path().join("b-roster.db");
    b.set_roster_target(RosterTarget::new(
        roster_path.clone(),
        "roster pw",
        KdfParams::FAST_INSECURE,
    ));
    let mb = rt.block_on(Mesh::start(b, loopback(ma.addrs()))).unwrap();
    let station = Station::new(
        Host::Mesh {
            mesh: mb.clone(),
            rt: rt.clone(),
        },
        Lang::Ja,
        Box::new(NoReaders),
    )
    .unwrap();
    let mut h = crate::window_rig::harness_of(station);
    h.run_steps(3);
    let shows = crate::window_rig::said;
    assert!(shows(&h, &format!("名簿 {}", prefix(&old))));
    let started = Instant::now();
    while !shows(&h, "名簿を新しい版に切り替えました") {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no switch shown: {:?}",
            mb.status().roster
        );
        std::thread::sleep(Duration::from_millis(200));
        h.run_steps(1);
    }
    assert!(shows(
        &h,
        &format!("名簿を新しい版に切り替えました（{}）", prefix(&new))
    ));
    // The header names the new version, and the old one nowhere.
    assert!(shows(&h, &format!("名簿 {}", prefix(&new))));
    assert!(!shows(&h, &prefix(&old)));
    assert_eq!(mb.with_node(|n| n.station().roster().len()), old.len() - 1);
    // The network view names the roster in use.
    {
        let st = &mut h.state_mut().station;
        st.unlock(
            kazashi_domain::OperatorId::new("uketsuke").unwrap(),
            kazashi_node::staff::Role::Reception,
        );
        st.set_view(kazashi_gui::app::View::Network);
    }
    h.run_steps(3);
    assert!(shows(&h, &format!("使用中の名簿：{}", prefix(&new))));
    // The store written beside opens under its passphrase, on the pinned roster.
    let db = RosterDb::open(&roster_path, "roster pw").unwrap();
    assert_eq!(db.hash(), new.hash());
    rt.block_on(async {
        ma.shutdown().await;
        mb.shutdown().await;
    });
}
