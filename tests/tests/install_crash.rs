//! Manifest install is atomic under SIGKILL: a child installing manifest versions one after the
//! other is killed at random points. After every kill the store opens, its manifest is whole,
//! no acknowledged version was lost, and the `site` setting is the one that version gives
//! (each version moves the laptop between two sites, so a manifest written without its site,
//! or the other way round, shows).
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use kazashi_domain::deployment::DeploymentKind;
use kazashi_domain::ids::RosterHash;
use kazashi_domain::text::Label;
use kazashi_domain::{Deployment, DeploymentId, ShelterType, Site, SiteId, SiteKind};
use kazashi_node::enrolled::META_SITE;
use kazashi_node::store::{KdfParams, Store};
use kazashi_sync::{DeviceEntry, DeviceKey, Manifest, Role, SignedManifest};
use rand::{RngExt, SeedableRng};
use std::io::{BufRead, Read};
use std::process::Command;
use std::time::Duration;

const VERSIONS: u32 = 300;
const PASS: &str = "install crash test";

fn site(code: &str) -> Site {
    Site {
        id: SiteId::new(code).unwrap(),
        name: Label::new("避難所").unwrap(),
        kind: SiteKind::Shelter {
            shelter_type: ShelterType::Designated,
            capacity: 10,
        },
    }
}

/// The site version `v` puts the laptop at.
fn site_of(v: u32) -> &'static str {
    if v.is_multiple_of(2) { "S0" } else { "S1" }
}

#[test]
fn killed_installs_leave_a_whole_manifest_and_its_site() {
    let dir = tempfile::tempdir().unwrap();
    let laptop = dir.path().join("laptop");
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&laptop).unwrap();
    std::fs::create_dir_all(&manifests).unwrap();
    let admin = DeviceKey::from_seed([1; 32]);
    let device = DeviceKey::from_seed([2; 32]);
    let deployment = Deployment::new(
        DeploymentId([3; 16]),
        Label::new("install crash").unwrap(),
        DeploymentKind::ShelterOperation,
        RosterHash([0; 32]),
        vec![site("S0"), site("S1")],
    )
    .unwrap();
    for v in 1..=VERSIONS {
        let m = Manifest {
            version: v,
            deployment: deployment.clone(),
            admin: admin.device_id(),
            devices: vec![DeviceEntry {
                device: device.device_id(),
                role: Role::Station,
                label: Label::new("laptop").unwrap(),
                sites: vec![SiteId::new(site_of(v)).unwrap()],
            }],
            revoked: vec![],
            staff: vec![],
            closed_at: None,
        };
        let bytes = SignedManifest::sign(&m, &admin).unwrap().encode();
        std::fs::write(manifests.join(format!("manifest-v{v}.kzm")), bytes).unwrap();
    }
    let store_path = laptop.join("kazashi.db");
    let store = Store::create(&store_path, PASS, KdfParams::FAST_INSECURE).unwrap();
    store.set_identity(&device).unwrap();
    drop(store);

    // The installed version and site, checked to agree.
    let installed = || -> u32 {
        let store = Store::open(&store_path, PASS).unwrap();
        let Some(bytes) = store.manifest().unwrap() else {
            assert_eq!(store.get_meta(META_SITE).unwrap(), None);
            return 0;
        };
        let v = SignedManifest::decode(&bytes).unwrap().version();
        assert_eq!(
            store.get_meta(META_SITE).unwrap(),
            Some(site_of(v).as_bytes().to_vec()),
            "version {v} installed with the wrong site"
        );
        v
    };

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(23);
    let mut acked = 0u32;
    let mut kills = 0;
    while acked < VERSIONS && kills < 400 {
        let start = installed() + 1;
        assert!(start > acked, "acknowledged version {acked} lost");
        let (mut child, mut out) = kazashi_tests::start_ready(
            Command::new(env!("CARGO_BIN_EXE_install_writer"))
                .arg(&laptop)
                .arg(&manifests)
                .arg(start.to_string()),
            "the child did not start",
        );
        let mut line = String::new();
        for _ in 0..rng.random_range(0..4usize) {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                break;
            }
            acked = acked.max(line.trim().parse().unwrap());
        }
        std::thread::sleep(Duration::from_micros(rng.random_range(0..3000)));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        kills += 1;
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        for l in rest.lines() {
            // A line cut by the kill was not acknowledged.
            if let Ok(v) = l.trim().parse::<u32>() {
                acked = acked.max(v);
            }
        }
        if status.success() {
            break;
        }
    }
    let last = installed();
    assert!(last >= acked, "acknowledged {acked}, installed {last}");
    assert!(kills >= 20, "too few kills to mean anything: {kills}");
    eprintln!("install crash test: {kills} kills, version {last} installed");
}
