//! `kazashi purge` and a purged folder, through the product's binary (issue 24, requirement
//! 5): refused on an open operation and without the deployment id typed back, each saying why
//! and changing nothing; after a manager's close and the confirmation, the laptop's folder
//! holds only the signed record (the key files and databases gone, the exports overwritten and
//! deleted), and `kazashi purge`, `kazashi report` and `kazashi node` on it print the record.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{files, kazashi, ok, refused, s};
use kazashi_domain::event::{EventBody, IdMethod, Members};
use kazashi_domain::ids::{HouseholdId, HouseholdRef, OperatorId, PersonId, PersonRef, SiteId};
use kazashi_domain::roster::{Roster, RosterEntry, RosterKind, Sex};
use kazashi_domain::text::{Address, KanaReading, Label, PersonName};
use kazashi_domain::{
    CivilDate, Deployment, DeploymentId, DeploymentKind, ShelterType, Site, SiteKind,
};
use kazashi_node::enrolled::{self, Folder};
use kazashi_node::roster_db::RosterDb;
use kazashi_node::staff::Role as StaffRole;
use kazashi_node::{KdfParams, SystemClock};
use kazashi_sync::{DeviceEntry, DeviceKey, Manifest, Role, SignedManifest};
use std::collections::BTreeSet;

const PASS: &str = "purge cli passphrase";

fn site() -> SiteId {
    SiteId::new("S1").unwrap()
}

fn roster() -> Roster {
    let entry = |id: &str, name: &str| RosterEntry {
        person: PersonId::new(id).unwrap(),
        household: HouseholdId::new("H1").unwrap(),
        name: PersonName::new(name).unwrap(),
        kana: KanaReading::new("かもめ").unwrap(),
        birth_date: CivilDate::new(1966, 3, 3).unwrap(),
        sex: Sex::Male,
        address: Address::new("新潟県三条市旭町2丁目3-1").unwrap(),
        voter: None,
        care_needs: BTreeSet::new(),
        support_measure: false,
    };
    Roster::new(
        RosterKind::Residents,
        vec![entry("1", "鴎 一郎"), entry("2", "鴎 次郎")],
        CivilDate::new(2026, 9, 1).unwrap(),
    )
    .unwrap()
}

/// A laptop enrolled at S1 with two residents checked in, its lead `sekinin`, and an export
/// in `export/` as the window writes it.
fn laptop(dir: &std::path::Path) -> (Folder, String) {
    let roster = roster();
    let admin = DeviceKey::from_seed([100; 32]);
    let me = DeviceKey::from_seed([1; 32]);
    let deployment = Deployment::new(
        DeploymentId([5; 16]),
        Label::new("消去の訓練").unwrap(),
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
    let id = deployment.id().to_string();
    let m = Manifest {
        version: 1,
        deployment,
        admin: admin.device_id(),
        devices: vec![DeviceEntry {
            device: me.device_id(),
            role: Role::Station,
            label: Label::new("受付1").unwrap(),
            sites: vec![site()],
        }],
        revoked: vec![],
        // The manager on the staff list: only such a manager's close counts
        // (`kazashi_node::managers`).
        staff: vec![kazashi_sync::manifest::StaffEntry {
            id: OperatorId::new("sekinin").unwrap(),
            name: Label::new("責任者").unwrap(),
            role: StaffRole::Lead,
            pin_hash: None,
            card: None,
            sites: vec![],
        }],
        closed_at: None,
        card_cas: vec![],
        sealed_keys: Vec::new(),
        retention_days: Some(30),
        receipt_slips: false,
    };
    let manifest = SignedManifest::sign(&m, &admin).unwrap().encode();
    let folder = Folder::new(dir);
    RosterDb::create(
        &folder.roster_path(),
        PASS,
        KdfParams::FAST_INSECURE,
        (&roster).into(),
        [0; 32],
        &mut |_, _| {},
    )
    .unwrap();
    let (mut node, _) = enrolled::enrol(
        &folder,
        PASS,
        PASS,
        KdfParams::FAST_INSECURE,
        me,
        &manifest,
        site(),
        SystemClock,
    )
    .unwrap();
    let lead = OperatorId::new("sekinin").unwrap();
    node.enrol_staff(&lead, StaffRole::Lead, Some("1357"))
        .unwrap();
    let r = |id: &str| PersonRef::Roster(PersonId::new(id).unwrap());
    node.record(
        lead,
        EventBody::ShelterCheckIn {
            household: Some(HouseholdRef::Roster(HouseholdId::new("H1").unwrap())),
            members: Members::new(vec![r("1"), r("2")]).unwrap(),
            method: IdMethod::Lookup,
        },
    )
    .unwrap();
    let export = dir.join("export");
    kazashi_gui::app::oath::write_private(&export, "避難者名簿.csv", "鴎 一郎\n".as_bytes())
        .unwrap();
    (folder, id)
}

fn close(folder: &Folder) {
    let (mut node, _) = enrolled::open(folder, PASS, PASS, SystemClock).unwrap();
    node.record(
        OperatorId::new("sekinin").unwrap(),
        EventBody::OperationClosed {
            retention_days: None,
        },
    )
    .unwrap();
}

#[test]
fn kazashi_purge_is_refused_until_closed_and_confirmed_then_leaves_only_the_record() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kazashi");
    std::fs::create_dir_all(&dir).unwrap();
    let (folder, id) = laptop(&dir);
    // The public update pin an installed manifest leaves in the folder: the purge removes it.
    kazashi_node::update_pin::write_in(
        &dir,
        &kazashi_node::update_pin::Pin {
            deployment: DeploymentId([5; 16]),
            admin: DeviceKey::from_seed([100; 32]).device_id(),
        },
    )
    .unwrap();
    let env = [("KAZASHI_PASSPHRASE", PASS)];
    let d = s(&dir);
    let before = files(&dir);
    assert!(before.contains(&"update-pin.json".to_owned()));

    let out = kazashi(&["purge", "--dir", &d, "--confirm", &id], &env);
    refused(&out, "the operation is not closed");
    assert_eq!(files(&dir), before);

    close(&folder);
    let before = files(&dir);
    let out = kazashi(&["purge", "--dir", &d], &env);
    refused(&out, &format!("--confirm {id}"));
    let out = kazashi(&["purge", "--dir", &d, "--confirm", "something-else"], &env);
    refused(&out, "nothing was purged");
    assert_eq!(files(&dir), before);

    let out = kazashi(&["purge", "--dir", &d, "--confirm", &id], &env);
    let v = ok(&out);
    assert_eq!(v["purged"], true);
    assert_eq!(v["keys_destroyed"], 2);
    assert_eq!(v["signature_verified"], true);
    assert_eq!(v["record"]["reason"], "manual");
    assert_eq!(v["record"]["retention_days"], 30);
    assert_eq!(v["record"]["sites"][0]["days"][0]["check_ins"], 2);
    // The log line on stderr says what was done, never who.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"purge\":\"manual\""), "{err}");
    assert!(!err.contains('鴎'), "{err}");
    assert_eq!(files(&dir), vec!["record.json".to_owned()]);
    assert!(
        !std::fs::read_to_string(dir.join("record.json"))
            .unwrap()
            .contains('鴎')
    );

    // On the purged folder: the record, from every command that opens a folder.
    let out = kazashi(&["purge", "--dir", &d], &env);
    assert_eq!(ok(&out)["purged"], true);
    let out = kazashi(&["report", "evacuees", "--dir", &d], &env);
    assert_eq!(ok(&out)["record"]["sites"][0]["site"], "S1");
    let out = kazashi(
        &[
            "node",
            "--dir",
            &d,
            "--run-for",
            "1",
            "--no-mdns",
            "--port",
            "0",
        ],
        &env,
    );
    assert_eq!(ok(&out)["purged"], true);
    assert_eq!(files(&dir), vec!["record.json".to_owned()]);
}
