//! The paper documents (issue 26, requirement 5) on real stores, read back with `pdftotext`
//! and `pdfinfo` (poppler-utils): A4, the header (title, site, JST time, page), the rows, and
//! nobody under the DV block or 支援措置; each export left its audit record.

use crate::clock::{Clock, ManualClock};
use crate::link::tests::{device, key, site};
use crate::node::Node;
use crate::node::roster_gap_tests::pinning;
use crate::paper::Paper;
use crate::store::KdfParams;
use kazashi_domain::audit::{AuditAction, ExportKind};
use kazashi_domain::audit_chain::record_of;
use kazashi_domain::deployment::{Deployment, DeploymentKind, Site, SiteKind};
use kazashi_domain::event::{
    BuildingSafety, EventBody, IdMethod, LeaveKind, LifelineStatus, Lifelines, Members,
    ReportCounts, ReportKind, Shortage, StatusReport, VoteMode,
};
use kazashi_domain::ids::{
    DeploymentId, HouseholdId, ListNumber, OperatorId, PersonId, PersonRef, PrecinctId, SiteId,
};
use kazashi_domain::roster::{Roster, RosterEntry, RosterKind, Sex, VoterFlags, VoterInfo};
use kazashi_domain::text::{Address, KanaReading, Label, Note, PersonName};
use kazashi_domain::time::CivilDate;
use kazashi_sync::{DeviceEntry, DeviceKey, Manifest, Role as DeviceRole, SignedManifest};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

/// 2026-09-01 09:00 JST.
const T0: u64 = 1_788_220_800_000;

pub(crate) fn font() -> Vec<u8> {
    std::fs::read("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf")
        .expect("fonts-ipaexfont-gothic (script/test installs it)")
}

fn pid(s: &str) -> PersonId {
    PersonId::new(s).unwrap()
}

fn entry(id: &str, h: &str, name: &str, protected: bool) -> RosterEntry {
    RosterEntry {
        person: pid(id),
        household: HouseholdId::new(h).unwrap(),
        name: PersonName::new(name).unwrap(),
        kana: KanaReading::new("たかはし").unwrap(),
        birth_date: CivilDate::new(1980, 1, 1).unwrap(),
        sex: Sex::Female,
        address: Address::new("新潟県三条市旭町2丁目3-1").unwrap(),
        voter: None,
        care_needs: BTreeSet::new(),
        support_measure: protected,
    }
}

/// The text of a PDF (pdftotext -layout) and its page count, after checking every page is A4.
pub(crate) fn read_pdf(dir: &Path, bytes: &[u8]) -> (String, usize) {
    let path = dir.join("read.pdf");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils)");
    assert!(out.status.success());
    let info = std::process::Command::new("pdfinfo")
        .args(["-f", "1", "-l", "999"])
        .arg(&path)
        .output()
        .expect("pdfinfo (poppler-utils)");
    assert!(info.status.success());
    let info = String::from_utf8(info.stdout).unwrap();
    let sizes: Vec<&str> = info
        .lines()
        .filter(|l| l.starts_with("Page") && l.contains("size:"))
        .collect();
    assert!(!sizes.is_empty(), "{info}");
    for s in &sizes {
        assert!(s.contains("pts (A4)"), "{s}");
    }
    (String::from_utf8(out.stdout).unwrap(), sizes.len())
}

/// `text` holds `s`, spaces aside (pdftotext's layout moves them).
fn has(text: &str, s: &str) -> bool {
    let flat = |t: &str| t.replace([' ', '　', '\n'], "");
    flat(text).contains(&flat(s))
}

fn last_export(a: &Node<ManualClock>) -> (OperatorId, AuditAction) {
    let rec = a
        .state()
        .events_unordered()
        .filter_map(|e| record_of(e).map(|r| (e.operator(), r)))
        .max_by_key(|(_, r)| r.seq)
        .unwrap();
    (rec.0, rec.1.action.clone())
}

fn report(kind: ReportKind, persons: u32) -> EventBody {
    EventBody::ShelterStatusReport(Box::new(StatusReport {
        kind,
        opened_at: Some(T0),
        counts: ReportCounts {
            persons,
            households: 1,
            male: 0,
            female: persons,
            sex_unspecified: 0,
            by_age: Default::default(),
            care_needs: Default::default(),
            supported_outside: 0,
        },
        building: BuildingSafety::Safe,
        lifelines: Lifelines {
            power: LifelineStatus::Available,
            water: LifelineStatus::Out,
            gas: LifelineStatus::Unknown,
            comms: LifelineStatus::Limited,
            toilets: LifelineStatus::Available,
        },
        shortages: vec![Shortage {
            item: Label::new("毛布").unwrap(),
            quantity: Some(30),
            note: None,
        }],
        issues: Some(Note::new("断水が続いています").unwrap()),
    }))
}

#[test]
fn the_present_list_and_the_status_report_print_on_a4_without_the_protected() {
    let roster = Arc::new(
        Roster::new(
            RosterKind::Residents,
            vec![
                entry("P1", "HA", "髙橋 一郎", false),
                entry("P2", "HA", "髙橋 花子", false),
                entry("P4", "HB", "秘匿 太郎", false),
                entry("P5", "HB", "秘匿 花子", true),
            ],
            CivilDate::new(2026, 9, 1).unwrap(),
        )
        .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let mut a = Node::create(
        &dir.path().join("1.db"),
        "correct horse",
        KdfParams::FAST_INSECURE,
        key(1),
        &pinning(1, roster.hash()),
        roster.clone(),
        site(),
        clock.clone(),
    )
    .unwrap();
    let staff = OperatorId::new("staff01").unwrap();
    let lead = OperatorId::new("sekinin").unwrap();
    let members = |ids: &[&str]| {
        Members::new(ids.iter().map(|i| PersonRef::Roster(pid(i))).collect()).unwrap()
    };
    let checkin = a
        .record(
            staff,
            EventBody::ShelterCheckIn {
                household: None,
                members: members(&["P1", "P2", "P4"]),
                method: IdMethod::Lookup,
            },
        )
        .unwrap();
    clock.advance(60_000);
    a.record(
        staff,
        EventBody::TemporaryLeave {
            members: members(&["P2"]),
            kind: LeaveKind::Outing,
            expected_return: None,
        },
    )
    .unwrap();
    a.record(staff, report(ReportKind::First, 3)).unwrap();
    clock.advance(3_600_000);
    a.record(staff, report(ReportKind::Periodic(2), 2)).unwrap();
    let font = font();

    // The present list: P1 only (P2 is out, P4's household is protected).
    let f = a
        .export_paper(
            lead,
            Paper::PresentList,
            Some(site()),
            None,
            clock.now_ms(),
            &font,
        )
        .unwrap();
    let (text, pages) = read_pdf(dir.path(), &f.bytes);
    assert_eq!(pages, 1);
    assert!(has(&text, "在所者一覧"), "{text}");
    assert!(has(&text, "S1 避難所"), "{text}");
    assert!(has(&text, "2026-09-01 10:01（日本時間）"), "{text}");
    assert!(has(&text, "1 / 1 頁"), "{text}");
    assert!(has(&text, "髙橋 一郎"), "{text}");
    assert!(!has(&text, "髙橋 花子"), "{text}");
    assert!(!has(&text, "秘匿"), "{text}");
    assert!(has(&text, "在所 計 1 人"), "{text}");
    assert_eq!(f.rows, 1);
    assert_eq!(f.left_out.dv_block, 1);
    assert!(
        f.file_name.starts_with("在所者一覧-S1-20260901-1001"),
        "{}",
        f.file_name
    );
    assert_eq!(
        last_export(&a),
        (
            lead,
            AuditAction::Export {
                kind: ExportKind::PresentPdf,
                rows: 1,
                site: Some(site()),
                as_of: None
            }
        )
    );

    // The 避難者名簿 of the shelter: everyone registered, the one out with their status.
    let f = a
        .export_paper(
            lead,
            Paper::EvacueeList,
            Some(site()),
            None,
            clock.now_ms(),
            &font,
        )
        .unwrap();
    let (text, _) = read_pdf(dir.path(), &f.bytes);
    assert!(has(&text, "避難者名簿"), "{text}");
    assert!(has(&text, "S1 避難所"), "{text}");
    assert!(has(&text, "1 / 1 頁"), "{text}");
    let out = text
        .lines()
        .find(|l| l.contains("髙橋 花子"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(has(out, "外出・外泊"), "{out}");
    assert!(has(&text, "髙橋 一郎") && has(&text, "計 2 人"), "{text}");
    assert!(!has(&text, "秘匿"), "{text}");
    assert_eq!(f.left_out.dv_block, 1);
    assert!(matches!(
        last_export(&a).1,
        AuditAction::Export {
            kind: ExportKind::EvacueesPdf,
            rows: 2,
            ..
        }
    ));

    // The status report: the latest, 第2報, in the headquarters layout.
    let f = a
        .export_paper(lead, Paper::StatusReport, None, None, clock.now_ms(), &font)
        .unwrap();
    let (text, pages) = read_pdf(dir.path(), &f.bytes);
    assert_eq!(pages, 1);
    assert!(has(&text, "避難所状況報告（第2報）"), "{text}");
    assert!(has(&text, "報告先：災害対策本部"), "{text}");
    assert!(has(&text, "S1 避難所"), "{text}");
    assert!(has(&text, "2 人"), "{text}");
    assert!(has(&text, "水道 不可"), "{text}");
    assert!(has(&text, "毛布×30"), "{text}");
    assert!(has(&text, "断水が続いています"), "{text}");
    assert!(!has(&text, "秘匿") && !has(&text, "髙橋"), "{text}");
    assert_eq!(
        last_export(&a).1,
        AuditAction::Export {
            kind: ExportKind::StatusPdf,
            rows: 1,
            site: None,
            as_of: None
        }
    );
    // As of before the second report: 第1報.
    let f = a
        .export_paper(
            lead,
            Paper::StatusReport,
            None,
            Some(T0 + 90_000),
            clock.now_ms(),
            &font,
        )
        .unwrap();
    let (text, _) = read_pdf(dir.path(), &f.bytes);
    assert!(has(&text, "避難所状況報告（第1報）"), "{text}");

    // The check-in's receipt slip: the two named, the protected one counted only.
    let f = a.receipt(staff, &checkin.id(), &font).unwrap();
    let (text, pages) = read_pdf(dir.path(), &f.bytes);
    assert_eq!(pages, 1);
    assert!(
        has(&text, "避難所受付票") && has(&text, "S1 避難所"),
        "{text}"
    );
    assert!(has(&text, "2026-09-01 09:00（日本時間）"), "{text}");
    assert!(has(&text, &checkin.id().short()), "{text}");
    assert!(
        has(&text, "髙橋 一郎　様") && has(&text, "髙橋 花子　様"),
        "{text}"
    );
    assert!(!has(&text, "秘匿") && has(&text, "ほか1人"), "{text}");
    assert_eq!(
        last_export(&a),
        (
            staff,
            AuditAction::Export {
                kind: ExportKind::ReceiptPdf,
                rows: 2,
                site: Some(site()),
                as_of: None
            }
        )
    );

    // Refusals change nothing: an election document here, a site that is not ours.
    let before = last_export(&a);
    let e = a
        .export_paper(
            lead,
            Paper::RosterExtract,
            None,
            None,
            clock.now_ms(),
            &font,
        )
        .unwrap_err();
    assert!(e.contains("for elections"), "{e}");
    let e = a
        .export_paper(
            lead,
            Paper::PresentList,
            Some(SiteId::new("S9").unwrap()),
            None,
            clock.now_ms(),
            &font,
        )
        .unwrap_err();
    assert!(e.contains("S9"), "{e}");
    assert_eq!(last_export(&a), before);
}

fn station() -> SiteId {
    SiteId::new("V1").unwrap()
}

fn election_manifest(roster: &Roster) -> Vec<u8> {
    let admin = DeviceKey::from_seed([100; 32]);
    let deployment = Deployment::new(
        DeploymentId([7; 16]),
        Label::new("市長選挙").unwrap(),
        DeploymentKind::Election {
            election_day: CivilDate::new(2026, 9, 1).unwrap(),
            early_voting_from: CivilDate::new(2026, 8, 20).unwrap(),
        },
        roster.hash(),
        vec![Site {
            id: station(),
            name: Label::new("第1投票所").unwrap(),
            kind: SiteKind::PollingStation {
                precincts: vec![PrecinctId::new("1").unwrap()],
                early_voting: false,
                election_day: true,
            },
        }],
    )
    .unwrap();
    let manifest = Manifest {
        version: 1,
        deployment,
        admin: admin.device_id(),
        devices: vec![DeviceEntry {
            device: device(1),
            role: DeviceRole::Station,
            label: Label::new("端末1").unwrap(),
            sites: vec![],
        }],
        revoked: vec![],
        staff: vec![],
        closed_at: None,
        card_cas: vec![],
        sealed_keys: Vec::new(),
        retention_days: None,
        receipt_slips: false,
    };
    SignedManifest::sign(&manifest, &admin).unwrap().encode()
}

fn other_precinct(mut e: RosterEntry) -> RosterEntry {
    if let Some(v) = e.voter.as_mut() {
        v.precinct = PrecinctId::new("2").unwrap();
    }
    e
}

fn voter(id: &str, n: &str, name: &str, early: bool, protected: bool) -> RosterEntry {
    let mut e = entry(id, &format!("H{id}"), name, protected);
    e.voter = Some(VoterInfo {
        list_number: ListNumber::new(n).unwrap(),
        precinct: PrecinctId::new("1").unwrap(),
        flags: VoterFlags {
            eligible: true,
            absentee_voted: false,
            early_voted: early,
        },
    });
    e
}

#[test]
fn the_roster_extract_marks_who_voted_and_the_hourly_summary_leaves_out_undone_check_ins() {
    let roster = Arc::new(
        Roster::new(
            RosterKind::Voters,
            vec![
                voter("P1", "0001", "青木 一郎", false, false),
                voter("P2", "0002", "井上 花子", true, false),
                voter("P3", "0003", "上田 三郎", false, false),
                voter("P4", "0004", "秘匿 太郎", false, true),
                other_precinct(voter("P5", "0005", "遠藤 五郎", false, false)),
            ],
            CivilDate::new(2026, 8, 1).unwrap(),
        )
        .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let mut a = Node::create(
        &dir.path().join("1.db"),
        "correct horse",
        KdfParams::FAST_INSECURE,
        key(1),
        &election_manifest(&roster),
        roster.clone(),
        station(),
        clock.clone(),
    )
    .unwrap();
    let staff = OperatorId::new("staff01").unwrap();
    let vote = |who: &str| EventBody::VoterCheckIn {
        voter: pid(who),
        mode: VoteMode::ElectionDay,
        method: IdMethod::Lookup,
        override_: None,
    };
    // 09:00-10:00: P1 checks in; 10:00-11:00: P3 checks in by mistake, undone.
    let first = a.record(staff, vote("P1")).unwrap();
    clock.advance(3_600_000);
    let wrong = a.record(staff, vote("P3")).unwrap();
    clock.advance(60_000);
    a.record(
        staff,
        EventBody::UndoCheckIn {
            target: wrong.id(),
            reason: Note::new("別人を受付").unwrap(),
        },
    )
    .unwrap();
    let font = font();

    let f = a
        .export_paper(
            staff,
            Paper::RosterExtract,
            Some(station()),
            None,
            clock.now_ms(),
            &font,
        )
        .unwrap();
    let (text, _) = read_pdf(dir.path(), &f.bytes);
    assert!(has(&text, "選挙人名簿抄本"), "{text}");
    assert!(has(&text, "第1投票所"), "{text}");
    assert!(has(&text, "1 / 1 頁"), "{text}");
    let line = |n: &str| {
        text.lines()
            .find(|l| l.contains(n))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        line("0001").contains("青木 一郎") && line("0001").contains("済（当日"),
        "{text}"
    );
    assert!(line("0001").contains("新潟県三条市旭町"), "{text}");
    assert!(line("0001").contains("たかはし"), "{text}");
    assert!(line("0002").contains("済（期日前"), "{text}");
    assert!(
        line("0003").contains("上田 三郎") && !line("0003").contains("済"),
        "{text}"
    );
    assert!(!has(&text, "秘匿") && !has(&text, "0004"), "{text}");
    assert!(!has(&text, "遠藤"), "another precinct's voter: {text}");
    assert!(has(&text, "計 3 人　うち投票済 2 人"), "{text}");
    assert_eq!(f.left_out.dv_block, 1);
    assert_eq!(
        last_export(&a).1,
        AuditAction::Export {
            kind: ExportKind::RosterExtractPdf,
            rows: 3,
            site: Some(station()),
            as_of: None
        }
    );

    let f = a
        .export_paper(
            staff,
            Paper::HourlySummary,
            None,
            None,
            clock.now_ms(),
            &font,
        )
        .unwrap();
    let (text, _) = read_pdf(dir.path(), &f.bytes);
    assert!(has(&text, "時間別受付者数集計"), "{text}");
    let hour = text
        .lines()
        .find(|l| l.contains("2026-09-01 09:00〜10:00"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(hour.contains("第1投票所"), "{hour}");
    assert!(
        !has(&text, "10:00〜11:00"),
        "the undone hour is not counted: {text}"
    );
    assert!(has(&text, "受付 計 1 人"), "{text}");
    assert!(
        has(&text, "取消された受付 1 件は集計に含めていません"),
        "{text}"
    );
    assert_eq!(f.rows, 1);
    assert_eq!(
        last_export(&a).1,
        AuditAction::Export {
            kind: ExportKind::HourlySummaryPdf,
            rows: 1,
            site: None,
            as_of: None
        }
    );
    // Receipts: P1's slip with the 名簿番号; the undone check-in has none, and no record.
    let f = a.receipt(staff, &first.id(), &font).unwrap();
    let (text, _) = read_pdf(dir.path(), &f.bytes);
    assert!(
        has(&text, "投票受付票") && has(&text, "当日投票　名簿番号 0001"),
        "{text}"
    );
    assert!(has(&text, "青木 一郎　様"), "{text}");
    let before = last_export(&a);
    let e = a.receipt(staff, &wrong.id(), &font).unwrap_err();
    assert!(e.contains("undone"), "{e}");
    assert_eq!(last_export(&a), before);
    // Shelter documents are refused for an election.
    assert!(
        a.export_paper(staff, Paper::PresentList, None, None, clock.now_ms(), &font)
            .unwrap_err()
            .contains("for shelters")
    );
}

/// A real CUPS queue (cups-pdf): a paper document saved and sent with `lp` comes out of the
/// queue as a PDF. Needs cupsd running with a cups-pdf queue named by `KAZASHI_TEST_CUPS_QUEUE`
/// (`lpadmin -p PDF -v cups-pdf:/ -m lsb/usr/cups-pdf/CUPS-PDF_opt.ppd -E`) and its output
/// folder in `KAZASHI_TEST_CUPS_OUT` (`~/PDF` by default in cups-pdf.conf).
#[test]
#[ignore = "needs cupsd with a cups-pdf queue (KAZASHI_TEST_CUPS_QUEUE, KAZASHI_TEST_CUPS_OUT)"]
fn a_paper_document_prints_through_a_real_cups_pdf_queue() {
    use crate::printer::{Printed, Printer, save_and_print};
    let queue = std::env::var("KAZASHI_TEST_CUPS_QUEUE").expect("KAZASHI_TEST_CUPS_QUEUE");
    let out = std::path::PathBuf::from(
        std::env::var("KAZASHI_TEST_CUPS_OUT").expect("KAZASHI_TEST_CUPS_OUT"),
    );
    let roster = Arc::new(
        Roster::new(
            RosterKind::Residents,
            vec![entry("P1", "HA", "髙橋 一郎", false)],
            CivilDate::new(2026, 9, 1).unwrap(),
        )
        .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let mut a = Node::create(
        &dir.path().join("1.db"),
        "correct horse",
        KdfParams::FAST_INSECURE,
        key(1),
        &pinning(1, roster.hash()),
        roster.clone(),
        site(),
        clock.clone(),
    )
    .unwrap();
    let staff = OperatorId::new("staff01").unwrap();
    a.record(
        staff,
        EventBody::ShelterCheckIn {
            household: None,
            members: Members::new(vec![PersonRef::Roster(pid("P1"))]).unwrap(),
            method: IdMethod::Lookup,
        },
    )
    .unwrap();
    let doc = a
        .export_paper(
            staff,
            Paper::PresentList,
            None,
            None,
            clock.now_ms(),
            &font(),
        )
        .unwrap();
    let before: BTreeSet<_> = std::fs::read_dir(&out)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    let r = save_and_print(
        &dir.path().join("export"),
        &doc,
        &Printer::system(Some(queue.clone())),
    )
    .unwrap();
    assert!(
        matches!(&r.printed, Printed::Sent { queue: q, job: Some(_) } if *q == queue),
        "{r:?}"
    );
    // cups-pdf writes the job's PDF into its output folder.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let printed = loop {
        let new: Vec<_> = std::fs::read_dir(&out)
            .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|p| !before.contains(p) && p.extension().is_some_and(|e| e == "pdf"))
            .collect();
        if let Some(p) = new.first() {
            std::thread::sleep(std::time::Duration::from_millis(500));
            break p.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing came out of {queue}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    // One A4 page came out (cups-pdf re-renders through Ghostscript, whose subset fonts
    // carry no text layer pdftotext can read back, so the content is checked on the saved file).
    let (_, pages) = read_pdf(dir.path(), &std::fs::read(&printed).unwrap());
    assert_eq!(pages, 1);
    let (text, _) = read_pdf(dir.path(), &std::fs::read(&r.path).unwrap());
    assert!(
        has(&text, "在所者一覧") && has(&text, "髙橋 一郎"),
        "{text}"
    );
}
