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
    // The manager is on the manifest's staff list: only such a manager's close counts
    // (`kazashi_node::managers`).
    let manifest = {
        let members = kazashi_sync::SignedManifest::decode(&fleet.manifest).unwrap();
        let mut m = members.manifest().clone();
        m.staff.push(kazashi_sync::manifest::StaffEntry {
            id: OperatorId::new("sekinin").unwrap(),
            name: Label::new("責任者").unwrap(),
            role: Role::Lead,
            pin_hash: None,
            card: None,
            sites: vec![],
        });
        kazashi_sync::SignedManifest::sign(&m, &fleet.admin)
            .unwrap()
            .encode()
    };
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
        &manifest,
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

mod closing {
    //! The report view's closing section (managers only), clicked through on the demo's
    //! shelter: a site closed refuses check-ins and is reopened; the operation closed with a
    //! retention period turns the window read-only and says when the purge falls due.

    use crate::demo_window::{DemoKind, station};

    use egui_kittest::kittest::{NodeT, Queryable};
    use kazashi_domain::OperatorId;
    use kazashi_domain::event::{EventBody, IdMethod, Members};
    use kazashi_gui::app::View;
    use kazashi_gui::lang::Lang;
    use kazashi_node::StationError;
    use kazashi_node::node::{NodeError, WriteBlock};
    use kazashi_node::staff::Role;

    use crate::window_rig::{H, harness_of};

    const FIELD: &str = "保存期間（日、空欄はマニフェストの設定どおり）";

    fn open(dir: &std::path::Path, who: &str, role: Role) -> H {
        open_at(DemoKind::Shelter, View::Report, dir, who, role)
    }

    fn open_at(kind: DemoKind, view: View, dir: &std::path::Path, who: &str, role: Role) -> H {
        let station = station(kind, dir, Lang::Ja, false, None).unwrap();
        let mut h = harness_of(station);
        h.run_steps(3);
        h.state_mut()
            .station
            .unlock(OperatorId::new(who).unwrap(), role);
        h.state_mut().station.set_view(view);
        h.run_steps(3);
        h
    }

    fn said(h: &H, text: &str) -> bool {
        h.query_all_by_label_contains(text).next().is_some()
    }

    fn click(h: &mut H, label: &str) {
        h.get_by_label(label).scroll_to_me();
        h.run_steps(3);
        h.get_by_label(label).click();
        h.run_steps(3);
    }

    fn field<'h>(h: &'h H, label: &'h str) -> egui_kittest::Node<'h> {
        h.query_by_role_and_label(egui::accesskit::Role::TextInput, label)
            .unwrap()
    }

    /// Replace the text of the field labelled `label` with `text`.
    fn fill(h: &mut H, label: &str, text: &str) {
        field(h, label).focus();
        h.run_steps(2);
        h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
        h.run_steps(1);
        field(h, label).type_text(text);
        h.run_steps(3);
    }

    fn check_in(h: &mut H) -> Result<(), NodeError> {
        h.state_mut().station.host().with(|n| {
            let who = n.station().roster().entries()[0].person;
            n.record(
                OperatorId::new("uketsuke").unwrap(),
                EventBody::ShelterCheckIn {
                    household: None,
                    members: Members::new(vec![kazashi_domain::PersonRef::Roster(who)]).unwrap(),
                    method: IdMethod::Lookup,
                },
            )
            .map(|_| ())
        })
    }

    #[test]
    fn a_polling_station_is_closed_from_the_reconciliation_view() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = open_at(
            DemoKind::ElectionDay,
            View::Reconcile,
            dir.path(),
            "sekinin",
            Role::Lead,
        );
        assert!(said(&h, "閉鎖と消去（責任者）"));
        click(&mut h, "この場所を閉鎖する");
        assert!(said(&h, "この避難所・投票所は閉鎖中です"));
        let site = h.state_mut().station.host().with(|n| n.station().site());
        let state = h
            .state_mut()
            .station
            .host()
            .with(|n| n.state().site_state(&site, None).map(|(s, _)| s));
        assert_eq!(state, Some(kazashi_domain::event::SiteState::Closed));
    }

    #[test]
    fn reception_staff_see_no_closing_buttons() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path(), "uketsuke", Role::Reception);
        assert!(!said(&h, "閉鎖と消去"));
        assert!(h.query_by_label("この場所を閉鎖する").is_none());
    }

    #[test]
    fn a_manager_closes_and_reopens_the_site_then_closes_the_operation() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = open(dir.path(), "sekinin", Role::Lead);
        assert!(said(&h, "閉鎖と消去（責任者）"));
        click(&mut h, "この場所を閉鎖する");
        assert!(said(&h, "この避難所・投票所は閉鎖中です"));
        assert!(matches!(
            check_in(&mut h),
            Err(NodeError::Station(StationError::SiteClosed(_)))
        ));
        click(&mut h, "この場所を再開する");
        assert!(said(&h, "この避難所・投票所は開いています"));
        check_in(&mut h).unwrap();

        // The operation: the button waits for the confirmation; a bad period is said.
        click(&mut h, "運用を終了する");
        assert!(!said(&h, "運用を終了しました"));
        fill(&mut h, FIELD, "三十");
        click(
            &mut h,
            "運用全体を終了します（すべての端末で記録が止まります）",
        );
        assert!(
            !h.get_by_label("運用を終了する")
                .accesskit_node()
                .is_disabled(),
            "the confirmation did not enable the button"
        );
        click(&mut h, "運用を終了する");
        assert!(said(&h, "日数で入力してください"));
        let typed = h.state_mut().station.host().with(|n| n.state().len());
        fill(&mut h, FIELD, "30");
        click(&mut h, "運用を終了する");
        assert!(said(&h, "運用を終了しました"), "not closed");
        let after = h.state_mut().station.host().with(|n| n.state().len());
        assert_eq!(after, typed + 1);
        let close = h
            .state_mut()
            .station
            .host()
            .with(|n| kazashi_node::purge::closure(n.membership(), n.state()).unwrap());
        assert_eq!(close.retention_days, Some(30));
        assert!(said(&h, "個人データの消去予定"));
        // The window's tick takes up the close: read-only, and not yet purged.
        assert!(
            !h.state_mut()
                .station
                .purge_record_if_due(dir.path())
                .unwrap()
        );
        h.run_steps(3);
        assert!(matches!(
            h.state().station.write_block(),
            Some(WriteBlock::Closed { .. })
        ));
        assert!(said(&h, "この運用は終了しました"));
        assert!(matches!(
            check_in(&mut h),
            Err(NodeError::WritesStopped(WriteBlock::Closed { .. }))
        ));
    }

    use eframe::egui;
}
