//! Sealed notes in the window (issue 24, requirement 3), clicked through with egui_kittest on
//! real stores: medical staff choose a checked-in resident in the present list, add a 問診票
//! note and read it back; the log holds it only sealed; reception staff on the same laptop see
//! that one sealed note exists, not its text, and have no field to write one.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use crate::demo_window::{DemoKind, station};
use crate::window_rig::{H, harness_of, said};
use eframe::egui::{self, accesskit::Role};
use egui_kittest::kittest::{NodeT, Queryable};
use kazashi_domain::event::EventBody;
use kazashi_domain::sealed_note::NoteKind;
use kazashi_gui::lang::Lang;

fn harness(dir: &std::path::Path) -> H {
    let station = station(DemoKind::Shelter, dir, Lang::Ja, false, None).unwrap();
    harness_of(station)
}

fn settle(h: &mut H) {
    h.run_steps(3);
}

fn click(h: &mut H, label: &str) {
    h.get_by_label(label).scroll_to_me();
    h.run_steps(2);
    h.get_by_label(label).click();
    settle(h);
}

fn click_contains(h: &mut H, label: &str) {
    h.get_by_label_contains(label).scroll_to_me();
    h.run_steps(2);
    h.get_by_label_contains(label).click();
    settle(h);
}

fn field<'h>(h: &'h H, label: &'h str) -> Option<egui_kittest::Node<'h>> {
    [
        Role::TextInput,
        Role::PasswordInput,
        Role::MultilineTextInput,
    ]
    .into_iter()
    .find_map(|r| h.query_by_role_and_label(r, label))
}

fn fill(h: &mut H, label: &str, text: &str) {
    field(h, label)
        .unwrap_or_else(|| panic!("no field labelled {label}"))
        .focus();
    h.run_steps(2);
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.run_steps(1);
    field(h, label).unwrap().type_text(text);
    h.run_steps(3);
}

fn tick(h: &mut H, name: &str) {
    h.get_all_by_role(Role::CheckBox)
        .find(|n| n.accesskit_node().label().is_some_and(|l| l.contains(name)))
        .unwrap_or_else(|| panic!("no checkbox for {name}"))
        .click();
    settle(h);
}

fn login(h: &mut H, staff: &str, pin: &str) {
    fill(h, "職員ID", staff);
    fill(h, "職員暗証番号", pin);
    click(h, "解錠");
    assert!(
        said(h, "カードをかざしてください"),
        "{staff} did not unlock"
    );
}

const NOTE: &str = "夜間の吸入が必要 KITTEST-4c1d";

#[test]
fn medical_staff_add_and_read_a_note_reception_staff_see_only_that_it_exists() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(dir.path());
    settle(&mut h);
    login(&mut h, "kyugo", "3333");
    // A resident found at reception and checked in.
    let who = h
        .state_mut()
        .station
        .host()
        .with(|n| n.station().roster().entries()[100].clone());
    fill(
        &mut h,
        "名前・よみ・生年月日・住所で検索",
        who.kana.as_str(),
    );
    click_contains(&mut h, who.name.as_str());
    click(&mut h, "受付する");
    // Chosen in the present list: the notes panel.
    h.key_press(egui::Key::F2);
    settle(&mut h);
    fill(&mut h, "絞り込み", who.kana.as_str());
    tick(&mut h, who.name.as_str());
    assert!(said(&h, "問診票メモ："), "no notes panel for medical staff");
    assert!(said(&h, "メモはありません"));
    click(&mut h, "メモを封印して保存");
    assert!(
        said(&h, "メモを入力してください"),
        "an empty note was not refused"
    );
    fill(&mut h, "新しいメモ", NOTE);
    click(&mut h, "メモを封印して保存");
    assert!(said(&h, "メモを封印して保存しました"));
    assert!(said(&h, NOTE), "medical staff do not read the note back");
    // In the log: one sealed medical note, its text nowhere in the events' bytes.
    let (sealed, plain) = h.state_mut().station.host().with(|n| {
        let events = n.state().events_in_order();
        let sealed = events
            .iter()
            .filter(|e| {
                matches!(
                    e.body(),
                    EventBody::SealedNote {
                        kind: NoteKind::Medical,
                        ..
                    }
                )
            })
            .count();
        let plain: Vec<String> = events
            .iter()
            .filter(|e| {
                let bytes = e.encode().unwrap();
                bytes.windows(NOTE.len()).any(|w| w == NOTE.as_bytes())
            })
            .map(|e| format!("{:?}", e.body()))
            .collect();
        (sealed, plain)
    });
    assert_eq!((sealed, plain), (1, Vec::<String>::new()));

    // Reception staff on the same laptop: the count, not the text, and no field to write.
    click(&mut h, "ロック");
    login(&mut h, "uketsuke", "1111");
    h.key_press(egui::Key::F2);
    settle(&mut h);
    fill(&mut h, "絞り込み", who.kana.as_str());
    if !said(&h, "封印されたメモ") {
        tick(&mut h, who.name.as_str());
    }
    assert!(
        said(&h, "封印されたメモ 1件"),
        "reception staff are not told a note exists"
    );
    assert!(!said(&h, NOTE), "reception staff read the note");
    assert!(field(&h, "新しいメモ").is_none());
    // On the audit record (issue 24): the medical staff member's view of the note, once for
    // the person shown, with the person's ref; reception staff opened nothing.
    let person = kazashi_domain::ids::PersonRef::Roster(who.person);
    let views: Vec<(String, Vec<kazashi_domain::ids::PersonRef>)> =
        h.state_mut().station.host().with(|n| {
            n.state()
                .events_unordered()
                .filter_map(|e| match e.body() {
                    EventBody::Audit(r)
                        if r.action == kazashi_domain::audit::AuditAction::MedicalNoteView =>
                    {
                        Some((e.operator().as_str().to_owned(), r.persons.clone()))
                    }
                    _ => None,
                })
                .collect()
        });
    assert_eq!(views, vec![("kyugo".to_owned(), vec![person])]);
}

const NOTE2: &str = "ペニシリン禁忌 KITTEST-9e02";

#[test]
fn medical_staff_add_a_note_from_the_household_screen_reception_staff_see_no_panel() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(dir.path());
    settle(&mut h);
    login(&mut h, "kyugo", "3333");
    let who = h
        .state_mut()
        .station
        .host()
        .with(|n| n.station().roster().entries()[120].clone());
    fill(
        &mut h,
        "名前・よみ・生年月日・住所で検索",
        who.kana.as_str(),
    );
    click_contains(&mut h, who.name.as_str());
    assert!(
        said(&h, "メモの対象"),
        "no notes panel on the household screen"
    );
    fill(&mut h, "新しいメモ", NOTE2);
    click(&mut h, "メモを封印して保存");
    assert!(said(&h, "メモを封印して保存しました"));
    assert!(said(&h, NOTE2), "medical staff do not read the note back");
    // Reception staff open the same household: no panel, no text.
    click(&mut h, "ロック");
    login(&mut h, "uketsuke", "1111");
    fill(
        &mut h,
        "名前・よみ・生年月日・住所で検索",
        who.kana.as_str(),
    );
    click_contains(&mut h, who.name.as_str());
    assert!(said(&h, "受付する"), "the household screen did not open");
    assert!(!said(&h, "メモの対象"));
    assert!(!said(&h, NOTE2), "reception staff read the note");
}
