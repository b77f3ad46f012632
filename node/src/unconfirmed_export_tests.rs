//! The 安否未確認 file on a real store (issue 26, requirement 3): two of a household checked
//! in, a relative's report taking one member off; the CSV read back holds the one member left
//! and nobody of a household under 支援措置 (counted in `left_out.dv_block`); the export left
//! a signed audit record of its kind and rows; an export as of before the report lists both.

use crate::clock::{Clock, ManualClock};
use crate::link::tests::{key, site};
use crate::node::Node;
use crate::node::roster_gap_tests::pinning;
use crate::store::KdfParams;
use kazashi_domain::audit::{AuditAction, ExportKind};
use kazashi_domain::audit_chain::record_of;
use kazashi_domain::event::{EventBody, IdMethod, Members};
use kazashi_domain::ids::{HouseholdId, OperatorId, PersonId, PersonRef};
use kazashi_domain::roster::{Roster, RosterEntry, RosterKind, Sex};
use kazashi_domain::text::{Address, KanaReading, Label, PersonName};
use kazashi_domain::time::CivilDate;
use std::collections::BTreeSet;
use std::sync::Arc;

const T0: u64 = 1_788_220_800_000;

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

#[test]
fn the_unconfirmed_csv_lists_who_is_left_withholds_the_protected_and_is_audited() {
    let roster = Arc::new(
        Roster::new(
            RosterKind::Residents,
            vec![
                entry("P1", "HA", "髙橋 一郎", false),
                entry("P2", "HA", "髙橋 花子", false),
                entry("P3", "HA", "髙橋 三郎", false),
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
    a.record(
        staff,
        EventBody::ShelterCheckIn {
            household: None,
            members: Members::new(vec![
                PersonRef::Roster(pid("P1")),
                PersonRef::Roster(pid("P4")),
            ])
            .unwrap(),
            method: IdMethod::Lookup,
        },
    )
    .unwrap();
    clock.advance(60_000);
    let before_report = clock.now_ms();
    clock.advance(60_000);
    a.record(
        staff,
        EventBody::ReportedSafe {
            person: PersonRef::Roster(pid("P2")),
            by: Label::new("長男").unwrap(),
            note: None,
        },
    )
    .unwrap();
    clock.advance(1000);

    let file = a
        .export_unconfirmed(lead, None, None, clock.now_ms(), None)
        .unwrap();
    let text = String::from_utf8(file.bytes.clone()).unwrap();
    let text = text.trim_start_matches('\u{feff}');
    let mut rd = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<Vec<String>> = rd
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert_eq!(&rows[0][..3], ["HA", "P3", "髙橋 三郎"]);
    assert_eq!(rows[0][6], "2");
    assert_eq!(rows[0][7], "S1 避難所");
    assert!(!text.contains("秘匿") && !text.contains("HB") && !text.contains("P5"));
    assert_eq!(file.rows, 1);
    assert_eq!(file.left_out.dv_block, 1);
    assert!(file.file_name.starts_with("安否未確認-全体-"));

    // The audit record: kind and rows, by the lead.
    let rec = a
        .state()
        .events_unordered()
        .filter_map(|e| record_of(e).map(|r| (e.operator(), r)))
        .max_by_key(|(_, r)| r.seq)
        .unwrap();
    assert_eq!(rec.0, lead);
    assert_eq!(
        rec.1.action,
        AuditAction::Export {
            kind: ExportKind::Unconfirmed,
            rows: 1,
            site: None,
            as_of: None
        }
    );

    // As of before the report: both P2 and P3.
    let earlier = a
        .export_unconfirmed(
            lead,
            Some(site()),
            Some(before_report),
            clock.now_ms(),
            None,
        )
        .unwrap();
    assert_eq!(earlier.rows, 2);

    // The PDF, read back with pdftotext: the member left, nobody of the protected household,
    // the count withheld; its own audit kind.
    let font = std::fs::read("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf")
        .expect("fonts-ipaexfont-gothic (script/test installs it)");
    let pdf = a
        .export_unconfirmed(lead, None, None, clock.now_ms(), Some(&font))
        .unwrap();
    assert!(pdf.file_name.ends_with(".pdf"));
    let path = dir.path().join("unconfirmed.pdf");
    std::fs::write(&path, &pdf.bytes).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args([path.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (poppler-utils)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("安否未確認者一覧"), "{text}");
    assert!(
        text.contains("髙橋 三郎") || text.contains("三郎"),
        "{text}"
    );
    assert!(!text.contains("花子") && !text.contains("秘匿"), "{text}");
    assert!(text.contains("1人"), "{text}");
    let last = a
        .state()
        .events_unordered()
        .filter_map(record_of)
        .max_by_key(|r| r.seq)
        .unwrap();
    assert!(matches!(
        last.action,
        AuditAction::Export {
            kind: ExportKind::UnconfirmedPdf,
            rows: 1,
            ..
        }
    ));
}
