//! Sealed notes (issue 24, requirement 3) on three real laptop folders — a medical station
//! granted the medical key, a reception station and the command center without it — each with
//! its encrypted store and roster store on disk, under a v4 manifest whose purpose keys were
//! made and sealed as the administrator's folder does (`kazashi_sync::purpose::reseal`).
//!
//! On the medical laptop medical staff add 問診票 notes with planted unique text to a roster
//! resident and to a walk-in, and a lead adds protection (DV) details; the notes go to the
//! reception laptop on a USB bundle, and from there (relayed, still sealed) to the command
//! center. Then on the reception laptop and at the command center the planted text is found
//! nowhere: not in what their staff are shown, not in any table row of the store opened with
//! its passphrase, any shard's bytes, any envelope or cached event, not in any export file
//! they write, not in the bundles, not in any raw file of the folders. The scanner is shown to
//! find a control string written in the clear (a household card's general notes) in the same
//! places, and the medical laptop reads the planted notes back — so the test fails if sealing
//! is switched off.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use kazashi_domain::event::{
    Disclosure, EventBody, HouseholdCard, MemberCard, StayingPlace, WalkInPerson,
};
use kazashi_domain::ids::{HouseholdId, HouseholdRef, OperatorId, PersonId, PersonRef, SiteId};
use kazashi_domain::roster::{Roster, RosterEntry, RosterKind, Sex};
use kazashi_domain::sealed_note::NoteKind;
use kazashi_domain::text::{Address, KanaReading, Label, Note, PersonName};
use kazashi_domain::{CivilDate, Deployment, DeploymentId, DeploymentKind};
use kazashi_domain::{ShelterType, Site, SiteKind};
use kazashi_node::enrolled::{self, Folder};
use kazashi_node::export::{PFIF_DOMAIN, Report, ReportRequest, render};
use kazashi_node::roster_db::RosterDb;
use kazashi_node::staff::Role;
use kazashi_node::store::{KdfParams, Store};
use kazashi_node::{BundleScope, ManualClock, Node};
use kazashi_sync::purpose::{Holder, reseal};
use kazashi_sync::{
    DeviceEntry, DeviceKey, KeyPurpose, Manifest, PurposeSecret, Role as DeviceRole, SealedKey,
    ShardDoc, SignedManifest,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const PASS: &str = "sealed notes test passphrase";
const RPASS: &str = "sealed notes roster passphrase";
/// 2026-09-01 09:00 JST.
const T0: u64 = 1_788_220_800_000;

/// The planted note texts: unique strings nobody but medical staff (and a manager) may read.
const PLANTED: &[&str] = &[
    "PLANTED-7f3a9c-問診-血圧の薬を持参",
    "PLANTED-b21e04-問診-歩行器",
    "PLANTED-d8c611-保護-加害者が捜索中",
];
/// Written in the clear (a household card's general notes), so the scanner must find it.
const CONTROL: &str = "CONTROL-5e9d70-車中泊";

fn s1() -> SiteId {
    SiteId::new("S1").unwrap()
}
fn hq() -> SiteId {
    SiteId::new("HQ").unwrap()
}

fn roster() -> Roster {
    let entry = |id: &str, name: &str, kana: &str| RosterEntry {
        person: PersonId::new(id).unwrap(),
        household: HouseholdId::new("H1").unwrap(),
        name: PersonName::new(name).unwrap(),
        kana: KanaReading::new(kana).unwrap(),
        birth_date: CivilDate::new(1950, 3, 3).unwrap(),
        sex: Sex::Female,
        address: Address::new("新潟県三条市旭町2丁目3-1").unwrap(),
        voter: None,
        care_needs: BTreeSet::new(),
        support_measure: false,
    };
    Roster::new(
        RosterKind::Residents,
        vec![
            entry("200001", "三条 梅子", "さんじょう うめこ"),
            entry("200002", "三条 松男", "さんじょう まつお"),
        ],
        CivilDate::new(2026, 9, 1).unwrap(),
    )
    .unwrap()
}

fn deployment(roster: &Roster) -> Deployment {
    Deployment::new(
        DeploymentId([9; 16]),
        Label::new("令和8年9月 豪雨災害").unwrap(),
        DeploymentKind::ShelterOperation,
        roster.hash(),
        vec![
            Site {
                id: s1(),
                name: Label::new("三条小学校").unwrap(),
                kind: SiteKind::Shelter {
                    shelter_type: ShelterType::Designated,
                    capacity: 200,
                },
            },
            Site {
                id: hq(),
                name: Label::new("災害対策本部").unwrap(),
                kind: SiteKind::CommandCenter,
            },
        ],
    )
    .unwrap()
}

fn key(n: u8) -> DeviceKey {
    DeviceKey::from_seed([n; 32])
}

/// The v4 manifest: three laptops, the medical key granted to laptop 1 only, the manager key
/// to nobody, the operation key to all (as `AdminFolder::grant` and each reissue make it).
fn manifest(d: &Deployment) -> Vec<u8> {
    let admin = key(100);
    let entry = |n: u8, role, site: Option<SiteId>, label: &str| DeviceEntry {
        device: key(n).device_id(),
        role,
        label: Label::new(label).unwrap(),
        sites: site.into_iter().collect(),
    };
    let devices = vec![
        entry(1, DeviceRole::Station, Some(s1()), "救護所"),
        entry(2, DeviceRole::Station, Some(s1()), "受付1"),
        entry(3, DeviceRole::CommandCenter, None, "本部"),
    ];
    let active: Vec<_> = devices.iter().map(|d| d.device).collect();
    let grant = vec![SealedKey {
        purpose: KeyPurpose::Medical,
        public: [0; 32],
        ephemeral: [0; 32],
        holders: vec![Holder {
            device: key(1).device_id(),
            wrapped: vec![],
        }],
    }];
    let (medical, manager, operation) = (
        PurposeSecret::new([31; 32]),
        PurposeSecret::new([32; 32]),
        PurposeSecret::new([33; 32]),
    );
    let sealed_keys = reseal(
        &grant,
        &active,
        &[
            (KeyPurpose::Medical, &medical),
            (KeyPurpose::Manager, &manager),
            (KeyPurpose::Operation, &operation),
        ],
        [34; 32],
    );
    let m = Manifest {
        version: 1,
        deployment: d.clone(),
        admin: admin.device_id(),
        devices,
        revoked: vec![],
        staff: vec![],
        closed_at: None,
        card_cas: vec![],
        sealed_keys,
        retention_days: Some(30),
        receipt_slips: false,
    };
    SignedManifest::sign(&m, &admin).unwrap().encode()
}

fn laptop(
    dir: &Path,
    roster: &Roster,
    n: u8,
    site: SiteId,
    manifest: &[u8],
    clock: &ManualClock,
) -> Node<ManualClock> {
    let folder = Folder::new(dir);
    std::fs::create_dir_all(dir).unwrap();
    RosterDb::create(
        &folder.roster_path(),
        RPASS,
        KdfParams::FAST_INSECURE,
        roster.into(),
        [0; 32],
        &mut |_, _| {},
    )
    .unwrap();
    let (node, _) = enrolled::enrol(
        &folder,
        PASS,
        RPASS,
        KdfParams::FAST_INSECURE,
        key(n),
        manifest,
        site,
        clock.clone(),
    )
    .unwrap();
    node
}

fn op(s: &str) -> OperatorId {
    OperatorId::new(s).unwrap()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    hay.windows(n.len()).any(|w| w == n)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Every place on a laptop where text could sit, each as (where, bytes): the store's tables
/// (decrypted rows), its cached events, each shard's saved bytes and each envelope in it, the
/// export files it writes, and every raw file under its folder and the stick.
fn everything(dir: &Path, stick: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let store = Store::open(&dir.join("kazashi.db"), PASS).unwrap();
    for (table, rows) in store.raw_tables().unwrap() {
        for (i, row) in rows.into_iter().enumerate() {
            for (c, col) in row.into_iter().enumerate() {
                out.push((format!("table {table} row {i} col {c}"), col));
            }
        }
    }
    let (events, _) = store.cached_events().unwrap();
    for (i, e) in events.into_iter().enumerate() {
        out.push((format!("cached event {i}"), e));
    }
    let me = store.identity().unwrap().unwrap().device_id();
    for (shard, _, _) in store.shards().unwrap() {
        let bytes = store.shard_bytes(&shard).unwrap();
        let doc = ShardDoc::load(shard, &me, &bytes).unwrap();
        for (id, envelope) in doc.envelopes() {
            out.push((format!("envelope {id:?}"), envelope));
        }
        out.push((format!("shard {shard:?}"), bytes));
    }
    drop(store);
    for f in files_under(dir).into_iter().chain(files_under(stick)) {
        out.push((f.display().to_string(), std::fs::read(&f).unwrap()));
    }
    out
}

/// Write every export the laptop can make into `dir/export`, as the window does.
fn export_all(node: &Node<ManualClock>, dir: &Path, now: u64) -> usize {
    let mut written = 0;
    for report in Report::ALL {
        let st = node.station();
        let Ok(r) = render(
            st.state(),
            st.deployment(),
            st.roster(),
            &ReportRequest {
                report,
                site: None,
                as_of: None,
                now,
                font: None,
                pfif_domain: PFIF_DOMAIN,
            },
        ) else {
            continue;
        };
        kazashi_gui::app::oath::write_private(&dir.join("export"), &r.file_name, &r.bytes).unwrap();
        written += 1;
    }
    written
}

#[test]
fn notes_planted_on_the_medical_laptop_are_found_nowhere_on_the_reception_laptop_or_at_the_command_center()
 {
    let tmp = tempfile::tempdir().unwrap();
    let (dm, dr, dh, stick) = (
        tmp.path().join("medical"),
        tmp.path().join("reception"),
        tmp.path().join("hq"),
        tmp.path().join("usb"),
    );
    std::fs::create_dir_all(&stick).unwrap();
    let roster = roster();
    let d = deployment(&roster);
    let manifest = manifest(&d);
    let clock = ManualClock::new(T0);
    let mut medical = laptop(&dm, &roster, 1, s1(), &manifest, &clock);
    let mut reception = laptop(&dr, &roster, 2, s1(), &manifest, &clock);
    let mut command = laptop(&dh, &roster, 3, hq(), &manifest, &clock);
    // Staff on every laptop: medical staff and a lead everywhere, reception staff at the desk.
    for node in [&medical, &reception, &command] {
        node.enrol_staff(&op("kyugo"), Role::Medical, Some("3333"))
            .unwrap();
        node.enrol_staff(&op("sekinin"), Role::Lead, Some("2222"))
            .unwrap();
        node.enrol_staff(&op("uketsuke"), Role::Reception, Some("1111"))
            .unwrap();
    }
    assert_eq!(
        medical.membership().purposes_of(&medical.device()),
        vec![KeyPurpose::Medical, KeyPurpose::Operation]
    );
    assert_eq!(
        reception.membership().purposes_of(&reception.device()),
        vec![KeyPurpose::Operation]
    );

    // On the medical laptop: a roster resident and a walk-in, notes on both.
    let resident = PersonRef::Roster(PersonId::new("200001").unwrap());
    let walk_in = medical
        .record(
            op("uketsuke"),
            EventBody::WalkInRegistration {
                members: vec![WalkInPerson {
                    name: PersonName::new("旅野 花").unwrap(),
                    kana: None,
                    birth_date: None,
                    sex: Sex::Female,
                    address: None,
                    care_needs: BTreeSet::new(),
                }],
                home_municipality: None,
            },
        )
        .unwrap();
    let walker = PersonRef::WalkIn {
        registration: walk_in.id(),
        index: 0,
    };
    // Reception staff may not write a medical note; a plain 問診票 on a card is refused.
    assert!(
        medical
            .add_note(op("uketsuke"), resident, NoteKind::Medical, PLANTED[0])
            .is_err()
    );
    let mut card = HouseholdCard {
        representative: Some(resident),
        phone: None,
        damage: None,
        flooding: None,
        staying: StayingPlace::InShelter,
        car: None,
        pets: None,
        disclosure: Disclosure::Nobody,
        dv_block: false,
        members: vec![MemberCard {
            person: resident,
            care_needs: BTreeSet::new(),
            allergies: None,
            medication: None,
            disclosure: None,
            medical_note: Some(Note::new(PLANTED[0]).unwrap()),
        }],
        notes: Some(Note::new(CONTROL).unwrap()),
    };
    let h1 = HouseholdRef::Roster(HouseholdId::new("H1").unwrap());
    let refused = medical
        .record(
            op("uketsuke"),
            EventBody::HouseholdCard {
                household: h1,
                card: Box::new(card.clone()),
            },
        )
        .unwrap_err();
    assert!(refused.to_string().contains("in the clear"), "{refused}");
    card.members[0].medical_note = None;
    medical
        .record(
            op("uketsuke"),
            EventBody::HouseholdCard {
                household: h1,
                card: Box::new(card),
            },
        )
        .unwrap();
    clock.advance(60_000);
    medical
        .add_note(op("kyugo"), resident, NoteKind::Medical, PLANTED[0])
        .unwrap();
    medical
        .add_note(op("kyugo"), walker, NoteKind::Medical, PLANTED[1])
        .unwrap();
    // Protection details: a lead only.
    assert!(
        medical
            .add_note(op("kyugo"), resident, NoteKind::Protection, PLANTED[2])
            .is_err()
    );
    medical
        .add_note(op("sekinin"), resident, NoteKind::Protection, PLANTED[2])
        .unwrap();

    // Medical staff read their notes back here; the protection details are the manager
    // key's, which this laptop does not hold; reception staff read nothing.
    let texts = |node: &Node<ManualClock>, who: &str, p: &PersonRef| -> Vec<Option<String>> {
        node.notes(&op(who), p)
            .into_iter()
            .map(|n| n.text.map(|t| t.as_str().to_owned()))
            .collect()
    };
    assert_eq!(
        texts(&medical, "kyugo", &resident),
        vec![Some(PLANTED[0].to_owned()), None]
    );
    assert_eq!(
        texts(&medical, "kyugo", &walker),
        vec![Some(PLANTED[1].to_owned())]
    );
    assert_eq!(texts(&medical, "uketsuke", &resident), vec![None, None]);
    assert!(medical.note_access(&op("kyugo")).read_medical);
    assert!(!medical.note_access(&op("uketsuke")).read_medical);

    // To the reception laptop on a bundle; from it, relayed, to the command center.
    let first = stick.join("from-medical.kzb");
    medical.export_bundle_to(&first, BundleScope::All).unwrap();
    reception
        .import_bundle(&std::fs::read(&first).unwrap(), "usb")
        .unwrap();
    let relay = stick.join("from-reception.kzb");
    reception
        .export_bundle_to(&relay, BundleScope::All)
        .unwrap();
    command
        .import_bundle(&std::fs::read(&relay).unwrap(), "usb")
        .unwrap();

    for (name, node, dir) in [
        ("reception", &reception, &dr),
        ("command center", &command, &dh),
    ] {
        // The ciphertext is there: the counts and the events relayed.
        assert_eq!(node.note_count(&resident), 2, "{name}");
        assert_eq!(node.note_count(&walker), 1, "{name}");
        // Nobody on this laptop reads a note, whatever their role.
        for who in ["kyugo", "sekinin", "uketsuke"] {
            assert!(
                texts(node, who, &resident)
                    .iter()
                    .chain(&texts(node, who, &walker))
                    .all(Option::is_none),
                "{name}: {who} read a note"
            );
            assert!(!node.note_access(&op(who)).read_medical);
        }
        let written = export_all(node, dir, T0 + 120_000);
        assert!(written >= 4, "{name}: {written} exports");
    }
    let now = T0 + 120_000;
    export_all(&medical, &dm, now);
    drop((medical, reception, command));

    // The scan. The control string, written in the clear, is found on both laptops in the
    // decrypted store (so the scanner sees what is there); no planted note text anywhere.
    for (name, dir) in [
        ("reception", &dr),
        ("command center", &dh),
        ("medical", &dm),
    ] {
        let places = everything(dir, &stick);
        assert!(
            places
                .iter()
                .any(|(w, b)| w.starts_with("envelope") && contains(b, CONTROL)),
            "{name}: the scanner does not see the control text in the envelopes"
        );
        assert!(
            places
                .iter()
                .any(|(w, b)| w.starts_with("table") && contains(b, CONTROL)),
            "{name}: the scanner does not see the control text in the tables"
        );
        assert!(places.iter().any(|(w, _)| w.contains("export")), "{name}");
        for needle in PLANTED {
            let found: Vec<&String> = places
                .iter()
                .filter(|(_, b)| contains(b, needle))
                .map(|(w, _)| w)
                .collect();
            assert!(found.is_empty(), "{name}: {needle} found in {found:?}");
        }
    }
    // And the medical laptop, opened again from disk, still reads them.
    let (medical, _) = enrolled::open(&Folder::new(&dm), PASS, RPASS, clock.clone()).unwrap();
    assert_eq!(
        texts(&medical, "kyugo", &walker),
        vec![Some(PLANTED[1].to_owned())]
    );
}
