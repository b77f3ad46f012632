//! Any card as a token in the window (issue 26, requirement 4), on the demo city's shelter
//! S001 with extra virtual cards that are only identifiers (they answer the reader's GET DATA
//! and nothing else): an ISO 14443 UID bound by a roster lookup at first registration, then a
//! tap opens the household with no PIN and the notice that a token is not proof of identity; a
//! FeliCa IDm bound to a walk-in from the walk-in form; a QR wristband typed into the scan
//! field like a keyboard-wedge scanner; a card with a random UID refused in words, nothing
//! written; a sheet of wristbands written as an A4 PDF. The log holds the keyed form, never
//! the identifier.

use super::*;
use crate::demo_window::station_with;
use kazashi_domain::event::IdMethod;
use kazashi_domain::ids::PersonRef;
use kazashi_gui::app::reception::Screen as Desk;
use kazashi_sim::card::CardSpec;

const UID: [u8; 7] = [0x04, 0x5A, 0x91, 0x3C, 0xE2, 0x7F, 0x80];
const IDM: [u8; 8] = [0x01, 0x2E, 0x4C, 0xD3, 0x5A, 0x19, 0x77, 0x08];
const RANDOM_UID: [u8; 4] = [0x08, 0x12, 0x34, 0x56];

/// The shelter window with three identifier-only cards after the demo's My Number Cards,
/// logged in as `staff`.
fn open_with_tokens(staff: &str, pin: &str) -> (H, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let extra = vec![
        ("ICカード".to_owned(), CardSpec::uid_only(&UID)),
        ("Suica".to_owned(), CardSpec::uid_only(&IDM)),
        ("銀行カード".to_owned(), CardSpec::uid_only(&RANDOM_UID)),
    ];
    let station =
        station_with(DemoKind::Shelter, dir.path(), Lang::Ja, false, None, extra).unwrap();
    let mut h = harness_of(station);
    settle(&mut h);
    login(&mut h, staff, pin);
    assert!(said(&h, "カードをかざしてください"), "did not unlock");
    (h, dir)
}

fn bindings(h: &mut H) -> Vec<(kazashi_domain::ids::CardKey, Option<PersonRef>)> {
    h.state_mut().station.host().with(|n| {
        n.state()
            .events_in_order()
            .iter()
            .filter_map(|e| match e.body() {
                EventBody::CardBinding { card, person } => Some((*card, *person)),
                _ => None,
            })
            .collect()
    })
}

fn on_screen(h: &mut H) -> &'static str {
    match &h.state().station.reception.screen {
        Desk::Idle => "idle",
        Desk::Token(_) => "token",
        Desk::Household { method, .. } if *method == IdMethod::Token => "household-by-token",
        Desk::Household { .. } => "household",
        _ => "other",
    }
}

#[test]
fn a_uid_card_is_bound_by_roster_lookup_then_a_tap_finds_the_household_without_a_pin() {
    let (mut h, _dir) = open_with_tokens("uketsuke", "1111");
    // The first tap: not registered; the notice; the registration screen.
    click(&mut h, "かざす: ICカード");
    assert_eq!(on_screen(&mut h), "token");
    assert!(said(&h, "カード・リストバンドを登録"));
    assert!(said(&h, "未登録のICカードです"));
    assert!(said(&h, "本人確認の証明ではありません"));
    assert!(bindings(&mut h).is_empty());
    // Staff find the person in the roster and choose them: bound, household open.
    let who = roster_entry(&mut h, 210);
    fill(&mut h, "名簿検索（登録する方）", who.kana.as_str());
    click_contains(&mut h, who.name.as_str());
    assert!(said(&h, "ICカードを登録しました"), "not bound");
    assert!(said(&h, "世帯の受付"));
    let b = bindings(&mut h);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].1, Some(PersonRef::Roster(who.person)));
    // The log holds the keyed form: no run of the UID in it.
    assert!(!b[0].0.0.windows(UID.len()).any(|w| w == UID));
    click(&mut h, "受付する");
    assert!(said(&h, "を受付しました"));
    // The next tap: the household at once, no PIN, the notice; the binding is not repeated.
    click(&mut h, "かざす: ICカード");
    assert_eq!(on_screen(&mut h), "household-by-token");
    assert!(!said(&h, "暗証番号の入力"));
    assert!(said(&h, "世帯の受付"));
    assert!(said(&h, "本人確認の証明ではありません"));
    assert!(said(&h, "すでに在所しています"));
    assert_eq!(bindings(&mut h).len(), 1);
    // In English, the same notice.
    click(&mut h, "やめる");
    click(&mut h, "English");
    click(&mut h, "Tap: ICカード");
    assert!(said(&h, "A card or wristband is not proof of identity"));
}

#[test]
fn a_felica_card_is_bound_to_a_walk_in_registered_from_the_form() {
    let (mut h, _dir) = open_with_tokens("kyugo", "3333");
    click(&mut h, "かざす: Suica");
    assert!(said(&h, "未登録の交通系ICカード等（FeliCa）です"));
    click(&mut h, "名簿にない方（飛び込み）として登録");
    assert!(said(&h, "当日受付（名簿にない世帯）"));
    assert!(said(
        &h,
        "読み取った交通系ICカード等（FeliCa）を世帯の代表者"
    ));
    fill(&mut h, "氏名", "旅野 花子");
    fill(&mut h, "ふりがな", "たびの はなこ");
    fill(&mut h, "生年月日", "昭和60年5月5日");
    click(&mut h, "登録する");
    assert!(
        said(&h, "交通系ICカード等（FeliCa）を代表者に登録しました"),
        "{:?}",
        h.state().station.said.as_ref().map(|s| s.text.clone())
    );
    let b = bindings(&mut h);
    assert_eq!(b.len(), 1);
    assert!(matches!(b[0].1, Some(PersonRef::WalkIn { index: 0, .. })));
    // A tap names the walk-in, with the notice.
    click(&mut h, "かざす: Suica");
    assert!(said(
        &h,
        "交通系ICカード等（FeliCa）で見つかりました：旅野 花子"
    ));
    assert!(said(&h, "本人確認の証明ではありません"));
}

#[test]
fn a_wristband_scanned_into_the_field_is_bound_then_found() {
    let (mut h, dir) = open_with_tokens("uketsuke", "1111");
    let code = kazashi_node::token::new_wristband().unwrap();
    // A keyboard-wedge scanner types the code and Enter.
    fill(&mut h, "リストバンドのQR", &code);
    h.key_press(egui::Key::Enter);
    settle(&mut h);
    assert!(said(&h, "未登録のリストバンドです"), "{code}");
    let who = roster_entry(&mut h, 220);
    let q = format!("{} {}", who.name.as_str(), who.birth_date);
    fill(&mut h, "名簿検索（登録する方）", &q);
    click_contains(&mut h, who.name.as_str());
    assert!(said(&h, "リストバンドを登録しました"));
    click(&mut h, "やめる");
    // Scanned again, lower case as a scanner in the wrong mode types it: found.
    fill(&mut h, "リストバンドのQR", &code.to_lowercase());
    h.key_press(egui::Key::Enter);
    settle(&mut h);
    assert_eq!(on_screen(&mut h), "household-by-token");
    assert!(said(&h, "本人確認の証明ではありません"));
    click(&mut h, "やめる");
    // A misread code: said, nothing found, nothing written.
    let mut bad = code.clone();
    bad.pop();
    bad.push(if code.ends_with('0') { '1' } else { '0' });
    fill(&mut h, "リストバンドのQR", &bad);
    h.key_press(egui::Key::Enter);
    settle(&mut h);
    assert!(said(&h, "読み誤りました"));
    assert_eq!(on_screen(&mut h), "idle");
    assert_eq!(bindings(&mut h).len(), 1);
    // A sheet of new wristbands: an A4 PDF in export/ (no printer here).
    let none = kazashi_node::printer::Printer {
        lp: "/nonexistent/lp".into(),
        lpstat: "/nonexistent/lpstat".into(),
        queue: None,
    };
    let text = h
        .state_mut()
        .station
        .with_desk(|cx, _, _| kazashi_gui::app::token::print_sheet(cx, &none))
        .unwrap()
        .unwrap();
    assert!(text.contains("リストバンド 8枚"), "{text}");
    let pdfs: Vec<_> = std::fs::read_dir(dir.path().join("export"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("wristbands-"))
        .collect();
    assert_eq!(pdfs.len(), 1);
    let pdf = std::fs::read(pdfs[0].path()).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
}

#[test]
fn a_card_with_a_random_uid_is_refused_in_words_and_nothing_is_written() {
    let (mut h, _dir) = open_with_tokens("uketsuke", "1111");
    click(&mut h, "かざす: 銀行カード");
    assert!(said(&h, "かざすたびに違う番号を返すため"));
    assert_eq!(on_screen(&mut h), "idle");
    assert!(bindings(&mut h).is_empty());
}
