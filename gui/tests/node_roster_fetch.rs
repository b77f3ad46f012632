//! `kazashi node` on a laptop enrolled with no roster store, its own process: it fetches the
//! pinned roster from the member named by `--peer` (progress as `{"roster": …}` lines), writes
//! it as its `roster.db` under its own roster passphrase, then joins the mesh on it. The member
//! runs in this test's process on loopback UDP.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use kazashi_domain::ids::{DeploymentId, HouseholdId, PersonId, SiteId};
use kazashi_domain::roster::Sex;
use kazashi_domain::text::{Address, KanaReading, Label, PersonName};
use kazashi_domain::{
    CivilDate, Deployment, DeploymentKind, Roster, RosterEntry, RosterKind, ShelterType, Site,
    SiteKind,
};
use kazashi_node::enrolled::{Folder, META_SITE};
use kazashi_node::mesh::{Mesh, MeshConfig};
use kazashi_node::roster_db::RosterDb;
use kazashi_node::{KdfParams, Node, Store, SystemClock};
use kazashi_sync::{DeviceEntry, DeviceKey, Manifest, Role, SignedManifest};
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;

const PASS: &str = "laptop passphrase";
const ROSTER_PASS: &str = "laptop roster passphrase";

fn site() -> SiteId {
    SiteId::new("S1").unwrap()
}

fn roster(n: usize) -> Roster {
    let entries = (0..n)
        .map(|i| RosterEntry {
            person: PersonId::new(&format!("P{i:07}")).unwrap(),
            household: HouseholdId::new(&format!("H{:07}", i / 2)).unwrap(),
            name: PersonName::new("渡辺 健").unwrap(),
            kana: KanaReading::new("わたなべ けん").unwrap(),
            birth_date: CivilDate::new(1950 + (i % 50) as i32, 4, 1).unwrap(),
            sex: Sex::Male,
            address: Address::new(&format!("新潟県見附市本町{i}番")).unwrap(),
            voter: None,
            care_needs: Default::default(),
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

fn key(n: u8) -> DeviceKey {
    DeviceKey::from_seed([n; 32])
}

/// A manifest pinning `roster`, laptops 1 and 2 at S1.
fn manifest(roster: &Roster) -> Vec<u8> {
    let admin = key(100);
    let deployment = Deployment::new(
        DeploymentId([4; 16]),
        Label::new("訓練").unwrap(),
        DeploymentKind::ShelterOperation,
        roster.hash(),
        vec![Site {
            id: site(),
            name: Label::new("S1 避難所").unwrap(),
            kind: SiteKind::Shelter {
                shelter_type: ShelterType::Designated,
                capacity: 100,
            },
        }],
    )
    .unwrap();
    let m = Manifest {
        version: 1,
        deployment,
        admin: admin.device_id(),
        devices: [1u8, 2]
            .iter()
            .map(|&n| DeviceEntry {
                device: key(n).device_id(),
                role: Role::Station,
                label: Label::new(&format!("端末{n}")).unwrap(),
                sites: vec![site()],
            })
            .collect(),
        revoked: vec![],
        staff: vec![],
        closed_at: None,
        card_cas: vec![],
        sealed_keys: Vec::new(),
        retention_days: None,
        receipt_slips: false,
    };
    SignedManifest::sign(&m, &admin).unwrap().encode()
}

#[test]
fn kazashi_node_with_no_roster_fetches_the_pinned_one_from_its_peer_and_runs_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let roster = Arc::new(roster(30_000));
    let signed = manifest(&roster);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let member = Node::create(
        &dir.path().join("member.db"),
        "member passphrase",
        KdfParams::FAST_INSECURE,
        key(1),
        &signed,
        roster.clone(),
        site(),
        SystemClock,
    )
    .unwrap();
    let mesh = rt
        .block_on(Mesh::start(
            member,
            MeshConfig {
                bind: SocketAddr::from(([127, 0, 0, 1], 0)),
                mdns: false,
                ..MeshConfig::default()
            },
        ))
        .unwrap();
    let at = mesh.addrs().into_iter().next().unwrap();

    // Laptop 2: enrolled (key, manifest, site), no roster store.
    let folder = Folder::new(dir.path().join("laptop2"));
    std::fs::create_dir_all(&folder.dir).unwrap();
    {
        let store = Store::create(&folder.store_path(), PASS, KdfParams::FAST_INSECURE).unwrap();
        store.set_identity(&key(2)).unwrap();
        store.set_manifest(&signed).unwrap();
        store
            .set_meta(META_SITE, site().as_str().as_bytes())
            .unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_kazashi"))
        .args([
            "node",
            "--dir",
            folder.dir.to_str().unwrap(),
            "--peer",
            &at.to_string(),
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--no-mdns",
            "--run-for",
            "2",
            "--status-every",
            "500",
        ])
        .env("KAZASHI_PASSPHRASE", PASS)
        .env("KAZASHI_ROSTER_PASSPHRASE", ROSTER_PASS)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let prefix = &roster.hash().to_hex()[..8];
    // Progress lines first, the last of them with every chunk in and the roster in use.
    let fetched: Vec<&Value> = lines.iter().filter(|l| l.get("device").is_none()).collect();
    let done = fetched.last().unwrap()["roster"].clone();
    assert_eq!(done["state"], "in_use", "{stdout}");
    assert_eq!(done["in_use"], prefix);
    assert!(done["chunks_total"].as_u64().unwrap() >= 5, "{done}");
    assert_eq!(done["chunks_held"], done["chunks_total"]);
    assert_eq!(done["chunks_fetched"], done["chunks_total"]);
    // Then the mesh's status lines, on the roster fetched.
    let last = lines.last().unwrap();
    assert_eq!(last["roster"]["in_use"], prefix, "{last}");
    assert_eq!(last["roster"]["state"], "in_use");
    assert!(
        last["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["link"] == "connected"),
        "{last}"
    );
    // The roster store is the laptop's own, under its roster passphrase, on the pin.
    assert!(RosterDb::open(&folder.roster_path(), PASS).is_err());
    let db = RosterDb::open(&folder.roster_path(), ROSTER_PASS).unwrap();
    assert_eq!(db.hash(), roster.hash());
    assert_eq!(db.len(), 30_000);
    rt.block_on(mesh.shutdown());
}
