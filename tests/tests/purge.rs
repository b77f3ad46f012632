//! Close and purge (issue 24, requirement 5), on a real laptop folder: a store and a roster
//! store on disk, a planted resident and a planted walk-in, check-ins, a household card, a USB
//! bundle, the window's exports (written by the window's own `write_private` into `export/`
//! beside the store, rendered by the shared `export::render`) and a copy of the store taken
//! before as an "old backup". A manager closes a site (check-ins refused, then reopened) and
//! then the operation; the purge falls due only once the manifest's retention period has
//! passed on the clock passed in; after it, no planted name, reading, address or birth date is
//! found in any file under the data folder or the exports folder in UTF-8, CP932, UTF-16LE or
//! UTF-16BE (the scanner is shown to find them in the exports before); the old backup no
//! longer opens with the passphrase (it did before); the old bundle can be read by nobody
//! (its only recipient's key was in the shredded store; a laptop enrolled later is not a
//! recipient); the signed record holds exactly the planted counts.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use kazashi_domain::event::{
    Disclosure, EventBody, HouseholdCard, IdMethod, Members, StayingPlace, WalkInPerson,
};
use kazashi_domain::ids::{HouseholdId, HouseholdRef, OperatorId, PersonId, PersonRef, SiteId};
use kazashi_domain::roster::{Roster, RosterEntry, RosterKind, Sex};
use kazashi_domain::text::{Address, KanaReading, Label, PersonName};
use kazashi_domain::{CivilDate, Deployment, DeploymentId, DeploymentKind};
use kazashi_domain::{ShelterType, Site, SiteKind};
use kazashi_node::enrolled::{self, Folder};
use kazashi_node::export::{PFIF_DOMAIN, Report, ReportRequest, render};
use kazashi_node::purge::{self, ClosedBy};
use kazashi_node::roster_db::RosterDb;
use kazashi_node::staff::Role;
use kazashi_node::store::{KdfParams, Store, StoreError};
use kazashi_node::{BundleScope, ManualClock, NodeError};
use kazashi_sync::{DeviceKey, SignedManifest};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const PASS: &str = "purge test passphrase";
const RPASS: &str = "purge test roster passphrase";
/// 2026-09-01 09:00 JST.
const T0: u64 = 1_788_220_800_000;
const HOUR: u64 = 3_600_000;
const DAY: u64 = 86_400_000;
const RETENTION_DAYS: u32 = 30;

/// What must not survive, as a person would search for it.
const NEEDLES: &[&str] = &[
    // The planted resident.
    "鷺宮朔太郎",
    "鷺宮 朔太郎",
    "さぎのみや さくたろう",
    "サギノミヤ",
    "新潟県三条市鵜森町四丁目17番23号",
    "鵜森町",
    "1980-04-01",
    "19800401",
    "1980/04/01",
    "昭和55年4月1日",
    // The planted walk-in.
    "雲雀丘瑠璃子",
    "雲雀丘 瑠璃子",
    "ひばりがおか るりこ",
    "長野県松本市蟻ケ崎台五丁目6番",
    "蟻ケ崎台",
    "1975-11-23",
    "19751123",
];

fn site() -> SiteId {
    SiteId::new("S1").unwrap()
}

fn entry(
    id: &str,
    household: &str,
    name: &str,
    kana: &str,
    born: CivilDate,
    address: &str,
) -> RosterEntry {
    RosterEntry {
        person: PersonId::new(id).unwrap(),
        household: HouseholdId::new(household).unwrap(),
        name: PersonName::new(name).unwrap(),
        kana: KanaReading::new(kana).unwrap(),
        birth_date: born,
        sex: Sex::Male,
        address: Address::new(address).unwrap(),
        voter: None,
        care_needs: BTreeSet::new(),
        support_measure: false,
    }
}

/// The planted resident (100001) and his wife in household H1, and a neighbour household.
fn roster() -> Roster {
    let home = "新潟県三条市鵜森町四丁目17番23号";
    let next = "新潟県三条市旭町2丁目3-1";
    Roster::new(
        RosterKind::Residents,
        vec![
            entry(
                "100001",
                "H1",
                "鷺宮 朔太郎",
                "さぎのみや さくたろう",
                CivilDate::new(1980, 4, 1).unwrap(),
                home,
            ),
            entry(
                "100002",
                "H1",
                "鷺宮 花子",
                "さぎのみや はなこ",
                CivilDate::new(1982, 6, 5).unwrap(),
                home,
            ),
            entry(
                "100003",
                "H2",
                "三条 一郎",
                "さんじょう いちろう",
                CivilDate::new(1950, 1, 1).unwrap(),
                next,
            ),
        ],
        CivilDate::new(2026, 9, 1).unwrap(),
    )
    .unwrap()
}

fn deployment(roster: &Roster) -> Deployment {
    Deployment::new(
        DeploymentId([7; 16]),
        Label::new("令和8年9月 豪雨災害").unwrap(),
        DeploymentKind::ShelterOperation,
        roster.hash(),
        vec![Site {
            id: site(),
            name: Label::new("三条小学校").unwrap(),
            kind: SiteKind::Shelter {
                shelter_type: ShelterType::Designated,
                capacity: 200,
            },
        }],
    )
    .unwrap()
}

/// The fleet's manifest, signed again with a retention period and the manager on its staff list
/// (only a manifest manager's close counts, `kazashi_node::managers`).
fn manifest_with_retention(fleet: &kazashi_sim::fleet::Fleet) -> Vec<u8> {
    let members = SignedManifest::decode(&fleet.manifest).unwrap();
    let mut m = members.manifest().clone();
    m.retention_days = Some(RETENTION_DAYS);
    m.staff.push(kazashi_sync::manifest::StaffEntry {
        id: OperatorId::new("sekinin").unwrap(),
        name: Label::new("責任者").unwrap(),
        role: kazashi_sync::manifest::StaffRole::Lead,
        pin_hash: None,
        card: None,
        sites: vec![],
    });
    SignedManifest::sign(&m, &fleet.admin).unwrap().encode()
}

/// Every encoding a planted string could sit in on disk.
fn encodings(s: &str) -> Vec<(&'static str, Vec<u8>)> {
    let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(s);
    vec![
        ("UTF-8", s.as_bytes().to_vec()),
        ("CP932", sjis.into_owned()),
        (
            "UTF-16LE",
            s.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        ),
        (
            "UTF-16BE",
            s.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        ),
    ]
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// (file, needle, encoding) for every planted string found under `dir`.
fn scan(dir: &Path) -> Vec<(PathBuf, &'static str, &'static str)> {
    let mut found = Vec::new();
    for f in files_under(dir) {
        let bytes = std::fs::read(&f).unwrap();
        for needle in NEEDLES {
            for (enc, pattern) in encodings(needle) {
                if bytes
                    .windows(pattern.len())
                    .any(|w| w == pattern.as_slice())
                {
                    found.push((f.clone(), *needle, enc));
                }
            }
        }
    }
    found
}

#[test]
fn after_the_retention_period_a_purge_leaves_only_the_signed_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kazashi");
    let stick = tmp.path().join("usb");
    let backup = tmp.path().join("backup");
    for d in [&dir, &stick, &backup] {
        std::fs::create_dir_all(d).unwrap();
    }
    let roster = roster();
    let d = deployment(&roster);
    let fleet = kazashi_sim::fleet::fleet(&d, 24).unwrap();
    let manifest = manifest_with_retention(&fleet);
    let key = || DeviceKey::from_seed(fleet.key(&site()).unwrap().secret_bytes());
    let folder = Folder::new(&dir);
    RosterDb::create(
        &folder.roster_path(),
        RPASS,
        KdfParams::FAST_INSECURE,
        (&roster).into(),
        [0; 32],
        &mut |_, _| {},
    )
    .unwrap();
    let clock = ManualClock::new(T0);
    let (mut node, _) = enrolled::enrol(
        &folder,
        PASS,
        RPASS,
        KdfParams::FAST_INSECURE,
        key(),
        &manifest,
        site(),
        clock.clone(),
    )
    .unwrap();
    // The store's key file holds a wrapped data key (format 2), not the passphrase's key.
    assert_eq!(
        kazashi_node::store_key::format_of(&dir.join("kazashi.db.kdf")).as_deref(),
        Some("kazashi-kdf-v2 argon2id+dek")
    );
    let desk = OperatorId::new("uketsuke").unwrap();
    let lead = OperatorId::new("sekinin").unwrap();
    node.enrol_staff(&desk, Role::Reception, Some("1111"))
        .unwrap();
    node.enrol_staff(&lead, Role::Lead, Some("2222")).unwrap();

    // Day 1: the planted household checks in (2), the neighbour (1); a household card; a
    // walk-in registered and checked in (1).
    let h1 = HouseholdRef::Roster(HouseholdId::new("H1").unwrap());
    let r = |id: &str| PersonRef::Roster(PersonId::new(id).unwrap());
    node.record(
        desk,
        EventBody::ShelterCheckIn {
            household: Some(h1),
            members: Members::new(vec![r("100001"), r("100002")]).unwrap(),
            method: IdMethod::Lookup,
        },
    )
    .unwrap();
    clock.advance(HOUR);
    node.record(
        desk,
        EventBody::ShelterCheckIn {
            household: Some(HouseholdRef::Roster(HouseholdId::new("H2").unwrap())),
            members: Members::new(vec![r("100003")]).unwrap(),
            method: IdMethod::Lookup,
        },
    )
    .unwrap();
    node.record(
        desk,
        EventBody::HouseholdCard {
            household: h1,
            card: Box::new(HouseholdCard {
                representative: Some(r("100001")),
                phone: None,
                damage: None,
                flooding: None,
                staying: StayingPlace::InShelter,
                car: None,
                pets: Some(Label::new("犬1匹").unwrap()),
                disclosure: Disclosure::Public,
                dv_block: false,
                members: vec![],
                notes: None,
            }),
        },
    )
    .unwrap();
    let walk_in = node
        .record(
            desk,
            EventBody::WalkInRegistration {
                members: vec![WalkInPerson {
                    name: PersonName::new("雲雀丘 瑠璃子").unwrap(),
                    kana: Some(KanaReading::new("ひばりがおか るりこ").unwrap()),
                    birth_date: Some(CivilDate::new(1975, 11, 23).unwrap()),
                    sex: Sex::Female,
                    address: Some(Address::new("長野県松本市蟻ケ崎台五丁目6番").unwrap()),
                    care_needs: BTreeSet::new(),
                }],
                home_municipality: None,
            },
        )
        .unwrap();
    let w = PersonRef::WalkIn {
        registration: walk_in.id(),
        index: 0,
    };
    node.record(
        desk,
        EventBody::ShelterCheckIn {
            household: None,
            members: Members::new(vec![w]).unwrap(),
            method: IdMethod::Lookup,
        },
    )
    .unwrap();
    // Peak of day 1: 4 present.

    // Day 2: the neighbour leaves (1 check-out). A manager closes the site: a check-in is
    // refused with a clear message, and only a manager may close or reopen.
    clock.advance(DAY);
    node.record(
        desk,
        EventBody::ShelterCheckOut {
            members: Members::new(vec![r("100003")]).unwrap(),
            reason: kazashi_domain::event::CheckOutReason::Home,
        },
    )
    .unwrap();
    let close_site = EventBody::SiteLifecycle(kazashi_domain::event::SiteState::Closed);
    let refused = node.record(desk, close_site.clone()).unwrap_err();
    assert!(refused.to_string().contains("only a manager"), "{refused}");
    node.record(lead, close_site).unwrap();
    let again = EventBody::ShelterCheckIn {
        household: Some(HouseholdRef::Roster(HouseholdId::new("H2").unwrap())),
        members: Members::new(vec![r("100003")]).unwrap(),
        method: IdMethod::Lookup,
    };
    let refused = node.record(desk, again.clone()).unwrap_err();
    assert!(
        refused.to_string().contains("this site is closed"),
        "{refused}"
    );
    node.record(
        lead,
        EventBody::SiteLifecycle(kazashi_domain::event::SiteState::Opened),
    )
    .unwrap();
    node.record(desk, again).unwrap();
    // Day 2 check-ins: 1; present after: 4 (peak of day 2: 4, it started at 4).

    // A bundle on the stick, and the window's exports, written as the window writes them.
    let bundle_path = stick.join("kazashi.kzb");
    node.export_bundle_to(&bundle_path, BundleScope::All)
        .unwrap();
    let bundle = std::fs::read(&bundle_path).unwrap();
    let members = node.membership().clone();
    assert!(kazashi_sync::bundle::read(&bundle, &members, &key()).is_ok());
    for report in [Report::Evacuees, Report::EvacueesSjis, Report::Pfif] {
        let st = node.station();
        let r = render(
            st.state(),
            st.deployment(),
            st.roster(),
            &ReportRequest {
                report,
                site: None,
                as_of: None,
                now: kazashi_node::Clock::now_ms(&clock),
                font: None,
                pfif_domain: PFIF_DOMAIN,
            },
        )
        .unwrap();
        kazashi_gui::app::oath::write_private(&dir.join("export"), &r.file_name, &r.bytes).unwrap();
    }
    // The scanner finds the planted strings where they are in the clear: in the exports, in
    // UTF-8 and in CP932 (the Shift_JIS list).
    let before = scan(&dir);
    assert!(
        before
            .iter()
            .all(|(f, _, _)| f.starts_with(dir.join("export"))),
        "plain text outside the exports before the purge: {before:?}"
    );
    for enc in ["UTF-8", "CP932"] {
        assert!(
            before
                .iter()
                .any(|(_, n, e)| *n == "鷺宮 朔太郎" && *e == enc),
            "the scanner must see the planted name in {enc}: {before:?}"
        );
    }
    assert!(before.iter().any(|(_, n, _)| *n == "雲雀丘 瑠璃子"));

    // The old backup: the store's file, copied as a backup tool would.
    node.store().checkpoint().unwrap();
    std::fs::copy(dir.join("kazashi.db"), backup.join("kazashi.db")).unwrap();
    let events_before = node.state().len();

    // The manager closes the operation: writes stop.
    clock.advance(HOUR);
    node.record(
        lead,
        EventBody::OperationClosed {
            retention_days: None,
        },
    )
    .unwrap();
    let closed_at = kazashi_node::Clock::now_ms(&clock);
    let stopped = node
        .record(
            desk,
            EventBody::ShelterCheckOut {
                members: Members::new(vec![r("100003")]).unwrap(),
                reason: kazashi_domain::event::CheckOutReason::Home,
            },
        )
        .unwrap_err();
    assert!(matches!(stopped, NodeError::WritesStopped(_)), "{stopped}");
    let close = purge::closure(node.membership(), node.state()).unwrap();
    assert_eq!(close.by, ClosedBy::Manager);
    assert!(close.at <= closed_at);
    assert_eq!(close.retention_days, Some(RETENTION_DAYS));
    // Not due a day before the period ends; due after it.
    clock.set(close.at + u64::from(RETENTION_DAYS) * DAY - DAY);
    assert!(!close.purge_due(kazashi_node::Clock::now_ms(&clock)));
    // Before the purge, the backup opens with the passphrase and the laptop's key file: this
    // is what the purge must take away.
    std::fs::copy(dir.join("kazashi.db.kdf"), backup.join("kazashi.db.kdf")).unwrap();
    {
        let old = Store::open(&backup.join("kazashi.db"), PASS).unwrap();
        assert!(old.event_count().unwrap() >= events_before as u64);
    }
    std::fs::remove_file(backup.join("kazashi.db.kdf")).unwrap();

    clock.set(close.at + u64::from(RETENTION_DAYS) * DAY + HOUR);
    assert!(close.purge_due(kazashi_node::Clock::now_ms(&clock)));
    let now = kazashi_node::Clock::now_ms(&clock);
    let done = purge::purge(&dir, &folder.roster_path(), node, now, "retention").unwrap();

    // The old backup no longer opens with the passphrase and whatever key file the laptop
    // still holds (none: it was destroyed).
    let laptop_kdf = dir.join("kazashi.db.kdf");
    if laptop_kdf.exists() {
        std::fs::copy(&laptop_kdf, backup.join("kazashi.db.kdf")).unwrap();
    }
    let gone = Store::open(&backup.join("kazashi.db"), PASS).unwrap_err();
    assert!(matches!(gone, StoreError::KdfFile(..)), "{gone}");
    assert!(!dir.join("kazashi.db.kdf").exists());
    assert!(!dir.join("roster.db.kdf").exists());
    assert_eq!(done.keys_destroyed, 2, "{done:?}");

    // Nothing planted is left, in any encoding, under the data folder (the exports folder is
    // inside it and gone).
    let after = scan(&dir);
    assert!(after.is_empty(), "planted data after the purge: {after:?}");
    let left: Vec<PathBuf> = files_under(&dir);
    assert_eq!(left, vec![dir.join(purge::RECORD_FILE)], "{left:?}");
    assert!(!dir.join("export").exists());
    assert!(purge::is_purged(&dir));

    // Nor does a purged folder open as a laptop.
    assert!(enrolled::open(&folder, PASS, RPASS, clock.clone()).is_err());

    // The old bundle: its only recipient's key was in the shredded store. A laptop enrolled
    // afterwards (a manifest that lists a new device) is not a recipient.
    let newcomer = DeviceKey::from_seed([42; 32]);
    let mut m = members.manifest().clone();
    m.version += 1;
    m.devices.push(kazashi_sync::DeviceEntry {
        device: newcomer.device_id(),
        role: kazashi_sync::Role::Station,
        label: Label::new("新しい受付").unwrap(),
        sites: vec![site()],
    });
    let later =
        SignedManifest::decode(&SignedManifest::sign(&m, &fleet.admin).unwrap().encode()).unwrap();
    assert_eq!(
        kazashi_sync::bundle::read(&bundle, &later, &newcomer).unwrap_err(),
        kazashi_sync::BundleError::NotForThisLaptop
    );

    // The record: signed, counts equal to what was planted, no personal data.
    let (record, verified) = purge::read_record(&dir).unwrap().unwrap();
    assert!(verified);
    assert_eq!(record.reason, "retention");
    assert_eq!(record.purged_at_ms, now);
    assert_eq!(record.retention_days, Some(RETENTION_DAYS));
    assert_eq!(record.closed_by, Some(ClosedBy::Manager));
    assert_eq!(record.sites.len(), 1);
    let s1 = &record.sites[0];
    assert_eq!(s1.site, "S1");
    assert_eq!(s1.closed_at_ms, None, "the site was reopened");
    let days: Vec<(&str, u32, u32, u32)> = s1
        .days
        .iter()
        .map(|d| (d.date.as_str(), d.check_ins, d.check_outs, d.peak_occupancy))
        .collect();
    assert_eq!(
        days,
        vec![("2026-09-01", 4, 0, 4), ("2026-09-02", 1, 1, 4)],
        "{record:?}"
    );
    assert_eq!(record.events, events_before as u64 + 1);
}
