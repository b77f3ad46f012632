//! Paper copies where staff work (issue 26 req. 5), pressed in the window of the demo city: a
//! polling station's 名簿抄本 and hourly summary from its hourly view, a shelter's present
//! list, 避難者名簿 and status report from its present view, and the receipt slip after a
//! check-in, offered only once the deployment's manifest asks for slips. Every document is
//! saved beside the store, audited, read back with pdftotext, and handed to a stand-in CUPS
//! whose `lp` records its arguments (or to none: saved only, and the status line says so).

use super::*;
use kazashi_domain::audit::{AuditAction, ExportKind};
use kazashi_domain::audit_chain::record_of;
use kazashi_domain::text::Note;
use kazashi_gui::app::command::paper_view;
use kazashi_node::printer::Printer;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// A stand-in CUPS for this test's thread: with a queue `PDF` (the default) whose `lp` writes
/// each argument on a line of `dir/lp.args`, or with no queue at all.
fn stand_in_cups(dir: &Path, with_queue: bool) -> PathBuf {
    let log = dir.join("lp.args");
    let lpstat = if with_queue {
        "case \"$1\" in\n-a) echo 'PDF accepting requests since Sun 06 Dec 2026';;\n\
         -d) echo 'system default destination: PDF';;\nesac"
    } else {
        "echo 'lpstat: No destinations added.' >&2; exit 1"
    };
    paper_view::use_printer(Some(Printer {
        lp: script(
            dir,
            "lp",
            &format!(
                "for a in \"$@\"; do printf '%s\\n' \"$a\" >> '{}'; done\n\
                 echo 'request id is PDF-7 (1 file(s))'",
                log.display()
            ),
        ),
        lpstat: script(dir, "lpstat", lpstat),
        queue: None,
    }));
    log
}

/// The one saved file beside the store whose name starts with `prefix`.
fn saved(dir: &Path, prefix: &str) -> PathBuf {
    let found: Vec<PathBuf> = walk(dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with(prefix))
        })
        .collect();
    assert_eq!(found.len(), 1, "{prefix}: {found:?}");
    let p = found[0].clone();
    assert!(p.parent().is_some_and(|d| d.ends_with("export")), "{p:?}");
    p
}

/// The PDF's text (pdftotext -layout), spaces dropped, after checking every page is A4; `None`
/// (and a line saying the check was skipped) where poppler-utils is not installed.
fn pdf_text(path: &Path) -> Option<String> {
    let info = match std::process::Command::new("pdfinfo").arg(path).output() {
        Ok(o) => o,
        Err(_) => {
            eprintln!(
                "SKIPPED reading the PDF back: no pdfinfo/pdftotext (apt-get install poppler-utils)"
            );
            return None;
        }
    };
    assert!(
        String::from_utf8_lossy(&info.stdout).contains("(A4)"),
        "{path:?} is not A4"
    );
    let out = std::process::Command::new("pdftotext")
        .args(["-layout", path.to_str().unwrap(), "-"])
        .output()
        .ok()?;
    assert!(out.status.success());
    Some(String::from_utf8_lossy(&out.stdout).replace([' ', '　'], ""))
}

fn audited(h: &mut H, kind: ExportKind) -> usize {
    h.state_mut().station.host().with(|n| {
        n.state()
            .events_unordered()
            .filter_map(record_of)
            .filter(|r| matches!(r.action, AuditAction::Export { kind: k, .. } if k == kind))
            .count()
    })
}

/// The lp calls recorded: each call's arguments.
fn lp_calls(log: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines
        .split(|l| l == "-d")
        .skip(1)
        .map(|c| std::iter::once("-d".to_owned()).chain(c.to_vec()).collect())
        .collect()
}

/// A voter of this polling station's precincts, by 名簿番号, last in the roster.
fn ticket_of_this_station(h: &mut H) -> String {
    h.state_mut().station.host().with(|n| {
        let site = n.station().site();
        let precincts = match &n.station().deployment().site(&site).unwrap().kind {
            kazashi_domain::SiteKind::PollingStation { precincts, .. } => precincts.clone(),
            _ => unreachable!(),
        };
        n.station()
            .roster()
            .entries()
            .iter()
            .rev()
            .find_map(|e| e.voter.as_ref().filter(|v| precincts.contains(&v.precinct)))
            .unwrap()
            .list_number
            .as_str()
            .to_owned()
    })
}

/// Check the voter with 名簿番号 `ticket` in at the desk, by the admission ticket.
fn ticket_check_in(h: &mut H, ticket: &str) {
    fill(h, "入場券のバーコード", ticket);
    h.key_press(egui::Key::Enter);
    settle(h);
    assert!(said(h, &format!("名簿番号 {ticket}")));
    press(h, "受付する（投票用紙を交付）");
    assert!(said(h, "受付しました"), "no check-in");
}

#[test]
fn the_polling_station_prints_its_roster_extract_and_hourly_summary_through_lp() {
    let (mut h, dir) = open(DemoKind::ElectionDay, "sekinin", "2222");
    let tools = tempfile::tempdir().unwrap();
    let log = stand_in_cups(tools.path(), true);
    let ticket = ticket_of_this_station(&mut h);
    ticket_check_in(&mut h, &ticket);
    // The other laptop of this station checked a voter in before the demo: undone here.
    h.state_mut().station.host().with(|n| {
        let me = n.station().device();
        let theirs = n
            .state()
            .events_unordered()
            .find(|e| e.device() != me && matches!(e.body(), EventBody::VoterCheckIn { .. }))
            .map(|e| e.id())
            .unwrap();
        n.record(
            kazashi_domain::ids::OperatorId::new("sekinin").unwrap(),
            EventBody::UndoCheckIn {
                target: theirs,
                reason: Note::new("別人に交付したため").unwrap(),
            },
        )
        .unwrap();
    });
    h.key_press(egui::Key::F2);
    settle(&mut h);
    assert!(said(&h, "時間別の照合"));

    press(&mut h, "名簿抄本を印刷");
    assert!(
        said(&h, "を保存し、プリンタ PDF に送りました"),
        "the status line does not say it printed"
    );
    let extract = saved(dir.path(), "選挙人名簿抄本-");
    if let Some(text) = pdf_text(&extract) {
        assert!(text.contains("選挙人名簿抄本"), "{text}");
        let line = text
            .lines()
            .find(|l| l.contains(&ticket))
            .unwrap_or_else(|| panic!("{ticket} not in the extract:\n{text}"));
        assert!(line.contains("済（当日"), "not marked as voted: {line}");
    }
    press(&mut h, "時間別受付者数を印刷");
    let hourly = saved(dir.path(), "時間別受付者数集計-");
    if let Some(text) = pdf_text(&hourly) {
        assert!(text.contains("受付計1人"), "{text}");
        assert!(
            text.contains("取消された受付1件は集計に含めていません"),
            "{text}"
        );
    }
    assert_eq!(audited(&mut h, ExportKind::RosterExtractPdf), 1);
    assert_eq!(audited(&mut h, ExportKind::HourlySummaryPdf), 1);
    // Each went to the default queue, on A4, under its title, as the saved file.
    let calls = lp_calls(&log);
    let call = |title: &str, file: &Path| {
        vec![
            "-d".to_owned(),
            "PDF".into(),
            "-t".into(),
            title.into(),
            "-o".into(),
            "media=A4".into(),
            file.display().to_string(),
        ]
    };
    assert_eq!(
        calls,
        [
            call("選挙人名簿抄本", &extract),
            call("時間別受付者数集計", &hourly)
        ]
    );
    // A shelter's documents are not offered at a polling station.
    assert!(h.query_by_label("在所者一覧を印刷").is_none());
    paper_view::use_printer(None);
}

#[test]
fn the_present_view_prints_this_shelters_lists_and_report_and_says_when_it_only_saved() {
    let (mut h, dir) = open(DemoKind::Shelter, "sekinin", "2222");
    let tools = tempfile::tempdir().unwrap();
    let log = stand_in_cups(tools.path(), false);
    let who = search_open(&mut h, 60);
    click(&mut h, "受付する");
    assert!(said(&h, "人を受付しました"));
    h.key_press(egui::Key::F4);
    settle(&mut h);
    fill(&mut h, "品目1", "毛布");
    click(&mut h, "報告を送る");
    assert!(said(&h, "状況報告を送りました"));
    h.key_press(egui::Key::F2);
    settle(&mut h);
    assert!(h.query_by_label("名簿抄本を印刷").is_none());
    let given = who.name.as_str().split(' ').next_back().unwrap().to_owned();

    press(&mut h, "在所者一覧を印刷");
    assert!(
        said(
            &h,
            "を保存しました（印刷はしていません：no printer is set up）"
        ),
        "the status line does not say why nothing printed"
    );
    let present = saved(dir.path(), "在所者一覧-");
    assert!(present.to_string_lossy().contains("-S001-"), "{present:?}");
    if let Some(text) = pdf_text(&present) {
        assert!(text.contains("在所者一覧"), "{text}");
        assert!(text.contains(&given), "{given} not in:\n{text}");
    }
    press(&mut h, "避難者名簿を印刷");
    if let Some(text) = pdf_text(&saved(dir.path(), "避難者名簿-")) {
        assert!(text.contains("避難者名簿"), "{text}");
        assert!(text.contains(&given), "{given} not in:\n{text}");
    }
    press(&mut h, "状況報告を印刷");
    if let Some(text) = pdf_text(&saved(dir.path(), "避難所状況報告-")) {
        assert!(text.contains("第1報"), "{text}");
        assert!(text.contains("毛布"), "{text}");
    }
    assert_eq!(audited(&mut h, ExportKind::PresentPdf), 1);
    assert_eq!(audited(&mut h, ExportKind::EvacueesPdf), 1);
    assert_eq!(audited(&mut h, ExportKind::StatusPdf), 1);
    assert!(!log.exists(), "lp ran with no printer set up");
    paper_view::use_printer(None);
}

/// Sign the next manifest version with the demo fleet's administrator key, receipt slips on,
/// and hand it to the node as a peer would.
fn turn_receipt_slips_on(h: &mut H) {
    h.state_mut().station.host().with(|n| {
        let fleet = kazashi_sim::fleet::fleet_sized(n.station().deployment(), 1, 2).unwrap();
        let mut m = n.membership().manifest().clone();
        assert!(!m.receipt_slips);
        m.version += 1;
        m.receipt_slips = true;
        let signed = kazashi_sync::SignedManifest::sign(&m, &fleet.admin).unwrap();
        n.adopt_manifest(&signed.encode()).unwrap();
        assert!(n.membership().receipt_slips());
    });
    settle(h);
}

fn slip_button(h: &H) -> Option<String> {
    h.query_all_by_label_contains("受付票を印刷（")
        .next()
        .map(|n| n.accesskit_node().label().unwrap_or_default())
}

#[test]
fn the_receipt_slip_is_offered_after_a_check_in_only_where_the_deployment_asks_for_it() {
    let (mut h, dir) = open(DemoKind::Shelter, "sekinin", "2222");
    let tools = tempfile::tempdir().unwrap();
    let log = stand_in_cups(tools.path(), true);
    let who = search_open(&mut h, 60);
    click(&mut h, "受付する");
    assert!(said(&h, "人を受付しました"));
    assert_eq!(
        slip_button(&h),
        None,
        "a slip where the manifest asks for none"
    );
    h.key_press(egui::Key::F2);
    settle(&mut h);
    assert_eq!(slip_button(&h), None);

    turn_receipt_slips_on(&mut h);
    // Now the present view and reception offer the slip of this laptop's check-in.
    let label = slip_button(&h).expect("no slip button in the present view");
    h.key_press(egui::Key::F1);
    settle(&mut h);
    assert_eq!(slip_button(&h).as_deref(), Some(label.as_str()));
    press(&mut h, &label);
    assert!(said(&h, "プリンタ PDF に送りました"), "not printed");
    let slip = saved(dir.path(), "受付票-S001-");
    if let Some(text) = pdf_text(&slip) {
        assert!(text.contains("避難所受付票"), "{text}");
        assert!(text.contains("受付番号"), "{text}");
        let given = who.name.as_str().split(' ').next_back().unwrap();
        assert!(text.contains(given), "{given} not on the slip:\n{text}");
    }
    assert_eq!(audited(&mut h, ExportKind::ReceiptPdf), 1);
    let calls = lp_calls(&log);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0][3], "受付票");
    assert_eq!(calls[0][6], slip.display().to_string());

    // The check-in undone: this laptop has no standing check-in left, and no slip is offered.
    h.state_mut().station.host().with(|n| {
        let last = paper_view::last_check_in(n).unwrap().0;
        n.record(
            kazashi_domain::ids::OperatorId::new("sekinin").unwrap(),
            EventBody::UndoCheckIn {
                target: last,
                reason: Note::new("受付の誤り").unwrap(),
            },
        )
        .unwrap();
    });
    settle(&mut h);
    assert_eq!(slip_button(&h), None, "a slip for an undone check-in");
    paper_view::use_printer(None);
}

#[test]
fn a_voters_receipt_slip_carries_the_list_number() {
    let (mut h, dir) = open(DemoKind::ElectionDay, "uketsuke", "1111");
    let tools = tempfile::tempdir().unwrap();
    stand_in_cups(tools.path(), true);
    turn_receipt_slips_on(&mut h);
    assert_eq!(slip_button(&h), None, "a slip before any check-in here");
    let ticket = ticket_of_this_station(&mut h);
    ticket_check_in(&mut h, &ticket);
    let label = slip_button(&h).expect("no slip after the check-in");
    press(&mut h, &label);
    assert!(said(&h, "プリンタ PDF に送りました"), "not printed");
    if let Some(text) = pdf_text(&saved(dir.path(), "受付票-")) {
        assert!(text.contains("投票受付票"), "{text}");
        assert!(text.contains(&format!("名簿番号{ticket}")), "{text}");
    }
    assert_eq!(audited(&mut h, ExportKind::ReceiptPdf), 1);
    paper_view::use_printer(None);
}
