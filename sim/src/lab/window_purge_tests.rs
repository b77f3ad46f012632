//! The window on a closed operation whose retention period has passed (issue 24, requirement
//! 5): opened with its passphrase, the station purges the laptop by itself and the window turns
//! to the purged screen with the signed counts; started again on the purged folder, it opens to
//! that screen (not to an error or the enrolment screen). Real stores, real files.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use kazashi_domain::event::{EventBody, IdMethod, Members};
use kazashi_domain::ids::{HouseholdId, HouseholdRef, OperatorId, PersonId, PersonRef, SiteId};
use kazashi_domain::roster::{Roster, RosterEntry, RosterKind, Sex};
use kazashi_domain::text::{Address, KanaReading, Label, PersonName};
use kazashi_domain::{
    CivilDate, Deployment, DeploymentId, DeploymentKind, ShelterType, Site, SiteKind,
};
use kazashi_gui::app::Host;
use kazashi_gui::app::cards::NoReaders;
use kazashi_gui::app::unlock::{Opener, Start};
use kazashi_gui::lang::Lang;
use kazashi_node::enrolled::{self, Folder};
use kazashi_node::roster_db::RosterDb;
use kazashi_node::staff::Role;
use kazashi_node::{KdfParams, ManualClock, purge};
use kazashi_sync::DeviceKey;
use std::collections::BTreeSet;
use std::sync::Arc;

const PASS: &str = "purge window passphrase";
/// 2026-09-01 09:00 JST: long before the test runs, so a retention of one day has passed.
const T0: u64 = 1_788_220_800_000;

struct Screen {
    start: Start,
    fonts: bool,
}

fn harness(folder: Folder) -> Harness<'static, Screen> {
    let opener: Opener = Arc::new(|node| Ok(Host::Alone(Box::new(node))));
    let start = Start::new(folder, Lang::Ja, opener, Box::new(NoReaders)).unwrap();
    let mut h = Harness::builder()
        .with_size([1366.0, 768.0])
        .build_ui_state(
            |ui, s: &mut Screen| {
                if !s.fonts {
                    kazashi_gui::app::setup(ui.ctx()).unwrap();
                    s.fonts = true;
                    ui.ctx().request_repaint();
                    return;
                }
                s.start.show(ui);
            },
            Screen {
                start,
                fonts: false,
            },
        );
    h.run_steps(3);
    h
}

fn said(h: &Harness<'static, Screen>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

/// A laptop at one shelter with two residents checked in, the operation closed by a manager
/// with a retention period of one day, at T0.
fn closed_laptop(dir: &std::path::Path) -> Folder {
    let site = SiteId::new("S1").unwrap();
    let entry = |id: &str, name: &str| RosterEntry {
        person: PersonId::new(id).unwrap(),
        household: HouseholdId::new("H1").unwrap(),
        name: PersonName::new(name).unwrap(),
        kana: KanaReading::new("つばめ").unwrap(),
        birth_date: CivilDate::new(1970, 1, 1).unwrap(),
        sex: Sex::Female,
        address: Address::new("新潟県三条市旭町2丁目3-1").unwrap(),
        voter: None,
        care_needs: BTreeSet::new(),
        support_measure: false,
    };
    let roster = Roster::new(
        RosterKind::Residents,
        vec![entry("1", "燕 一子"), entry("2", "燕 二子")],
        CivilDate::new(2026, 9, 1).unwrap(),
    )
    .unwrap();
    let d = Deployment::new(
        DeploymentId([9; 16]),
        Label::new("窓の消去テスト").unwrap(),
        DeploymentKind::ShelterOperation,
        roster.hash(),
        vec![Site {
            id: site,
            name: Label::new("旭小学校").unwrap(),
            kind: SiteKind::Shelter {
                shelter_type: ShelterType::Designated,
                capacity: 50,
            },
        }],
    )
    .unwrap();
    let fleet = kazashi_sim::fleet::fleet(&d, 31).unwrap();
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
        DeviceKey::from_seed(fleet.key(&site).unwrap().secret_bytes()),
        &fleet.manifest,
        site,
        ManualClock::new(T0),
    )
    .unwrap();
    let lead = OperatorId::new("sekinin").unwrap();
    node.enrol_staff(&lead, Role::Lead, Some("2468")).unwrap();
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
    node.record(
        lead,
        EventBody::OperationClosed {
            retention_days: Some(1),
        },
    )
    .unwrap();
    folder
}

#[test]
fn the_window_purges_a_laptop_past_retention_and_then_opens_to_its_record() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = closed_laptop(tmp.path());
    let mut h = harness(folder.clone());
    assert!(h.state().start.unlocking());
    h.state_mut().start.unlock_with(PASS, None);
    // The store opens off the window's thread; the first frame of the station checks the
    // retention clock and purges.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !said(&h, "この端末の個人データは消去済みです") {
        assert!(std::time::Instant::now() < deadline, "no purged screen");
        std::thread::sleep(std::time::Duration::from_millis(20));
        h.run_steps(1);
    }
    assert!(purge::is_purged(&folder.dir));
    assert!(!folder.store_path().exists());
    assert!(!folder.dir.join("kazashi.db.kdf").exists());
    assert!(said(&h, "検証済み"));
    assert!(said(&h, "旭小学校"));
    let (record, verified) = purge::read_record(&folder.dir).unwrap().unwrap();
    assert!(verified);
    assert_eq!(record.sites[0].days[0].check_ins, 2);
    drop(h);

    // Started again on the purged folder: the purged screen at once, no passphrase asked.
    let h = harness(folder.clone());
    assert!(!h.state().start.unlocking());
    assert!(h.state().start.enrolment().is_none());
    assert!(said(&h, "この端末の個人データは消去済みです"));
    assert!(said(&h, "旭小学校"));
}
