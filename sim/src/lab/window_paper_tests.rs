//! The print buttons (issue 26 req. 5) in the command view of the demo city: 在所者一覧 is
//! made, audited, saved beside the store as an A4 PDF holding the person checked in, and
//! either sent to a CUPS printer or saved only — the status line says which.

use super::*;
use kazashi_domain::audit::{AuditAction, ExportKind};
use kazashi_domain::audit_chain::record_of;
use kazashi_domain::event::{IdMethod, Members};
use kazashi_domain::ids::{OperatorId, PersonRef};

#[test]
fn the_present_list_button_saves_an_audited_a4_pdf_and_says_whether_it_printed() {
    let (mut h, dir) = open(DemoKind::Shelter, "honbu", "4444");
    let who = h.state_mut().station.host().with(|n| {
        let e = n.station().roster().entries()[0].clone();
        n.record(
            OperatorId::new("uketsuke").unwrap(),
            EventBody::ShelterCheckIn {
                household: None,
                members: Members::new(vec![PersonRef::Roster(e.person)]).unwrap(),
                method: IdMethod::Lookup,
            },
        )
        .unwrap();
        e
    });
    click(&mut h, "本部 [F7]");
    assert!(said(&h, "印刷（A4）"));
    assert!(
        h.query_by_label("名簿抄本").is_none(),
        "an election button for shelters"
    );
    press(&mut h, "在所者一覧");
    assert!(
        said(&h, "を保存し、プリンタ") || said(&h, "を保存しました（印刷はしていません"),
        "the status line does not say what happened"
    );
    let pdf = walk(dir.path())
        .into_iter()
        .find(|p| {
            p.file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with("在所者一覧-"))
        })
        .expect("no present list saved");
    assert!(
        pdf.parent().is_some_and(|d| d.ends_with("export")),
        "{pdf:?}"
    );
    let info = std::process::Command::new("pdfinfo")
        .arg(&pdf)
        .output()
        .expect("pdfinfo (poppler-utils)");
    assert!(String::from_utf8_lossy(&info.stdout).contains("(A4)"));
    let out = std::process::Command::new("pdftotext")
        .args([pdf.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (poppler-utils)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("在所者一覧"), "{text}");
    let given = who.name.as_str().split(' ').next_back().unwrap();
    assert!(text.contains(given), "{given} not in the PDF:\n{text}");
    let audited = h.state_mut().station.host().with(|n| {
        n.state()
            .events_unordered()
            .filter_map(record_of)
            .filter(|r| {
                matches!(
                    r.action,
                    AuditAction::Export {
                        kind: ExportKind::PresentPdf,
                        ..
                    }
                )
            })
            .count()
    });
    assert_eq!(audited, 1);
}
