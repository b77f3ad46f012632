//! The reception screen clicked through by its accessible labels (egui_kittest), with the
//! Japanese font loaded (kittest panics on a missing glyph): search, card taps (bound, first
//! time with the PIN, wrong PIN, locked), the household confirm, the language switch.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use super::reception::Reception;
use super::{demo_reception, fonts};
use crate::lang::Lang;
use eframe::egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use kazashi_node::SystemClock;

struct Screen {
    reception: Reception<SystemClock>,
    fonts: bool,
}

fn harness(lang: Lang) -> (Harness<'static, Screen>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let reception = demo_reception(dir.path(), lang).unwrap();
    let h = Harness::builder()
        .with_size([1366.0, 768.0])
        .build_ui_state(
            |ui, s: &mut Screen| {
                // The first frame installs the font and draws nothing.
                if !s.fonts {
                    fonts::install(ui.ctx()).unwrap();
                    s.fonts = true;
                    ui.ctx().request_repaint();
                    return;
                }
                s.reception.show(ui);
            },
            Screen {
                reception,
                fonts: false,
            },
        );
    (h, dir)
}

fn settle(h: &mut Harness<'static, Screen>) {
    h.run_steps(3);
}

/// Focus the only field of `role`, then type into it.
fn type_into(h: &mut Harness<'static, Screen>, role: Role, text: &str) {
    h.get_by_role(role).focus();
    h.run_steps(2);
    h.get_by_role(role).type_text(text);
    h.run_steps(3);
}

fn said(h: &Harness<'static, Screen>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

#[test]
fn search_then_check_in_a_household() {
    let (mut h, _dir) = harness(Lang::Ja);
    settle(&mut h);
    assert!(said(&h, "カードをかざしてください"));
    assert!(said(&h, "在所 0人"));
    let who = h.state().reception.node().station().roster().entries()[20].clone();
    type_into(&mut h, Role::TextInput, who.kana.as_str());
    h.get_by_label_contains(who.name.as_str()).click();
    settle(&mut h);
    assert!(said(&h, "世帯の受付"));
    let size = h
        .state()
        .reception
        .node()
        .station()
        .roster()
        .household(&who.household)
        .len();
    h.get_by_label("受付する").click();
    settle(&mut h);
    assert!(
        said(&h, &format!("{size}人を受付しました")),
        "no confirmation"
    );
    assert!(said(&h, &format!("在所 {size}人")));
    assert_eq!(h.state().reception.present(), size);
}

#[test]
fn first_tap_asks_the_pin_then_taps_need_none() {
    let (mut h, _dir) = harness(Lang::Ja);
    settle(&mut h);
    let taps: Vec<String> = h
        .query_all_by_label_contains("かざす: ")
        .map(|n| n.accesskit_node().label().unwrap_or_default())
        .collect();
    assert_eq!(taps.len(), 8);
    let first = taps[0].clone();
    h.get_by_label(&first).click();
    settle(&mut h);
    assert!(said(&h, "暗証番号の入力"));
    assert!(said(&h, "残り3回"));
    type_into(&mut h, Role::PasswordInput, "1234");
    h.get_by_label("確認").click();
    settle(&mut h);
    assert!(
        said(&h, "世帯の受付"),
        "the PIN read did not open the household"
    );
    h.get_by_label("受付する").click();
    settle(&mut h);
    assert!(said(&h, "カードを登録しました"));
    let present = h.state().reception.present();
    assert!(present >= 1);
    // The same card again: no PIN, the household at once, everyone already present.
    h.get_by_label(&first).click();
    settle(&mut h);
    assert!(!said(&h, "暗証番号の入力"));
    assert!(said(&h, "すでに在所しています"));
}

#[test]
fn a_wrong_pin_counts_down_and_a_locked_card_is_explained() {
    let (mut h, _dir) = harness(Lang::Ja);
    settle(&mut h);
    h.get_by_label_contains("暗証番号を間違える人").click();
    settle(&mut h);
    type_into(&mut h, Role::PasswordInput, "1234");
    h.get_by_label("確認").click();
    settle(&mut h);
    assert!(said(&h, "暗証番号が違います。残り2回です。"));
    h.get_by_label("やめる").click();
    settle(&mut h);
    h.get_by_label_contains("ロックされたカード").click();
    settle(&mut h);
    assert!(
        said(&h, "市区町村の窓口"),
        "the locked card was not explained"
    );
    assert!(said(&h, "カードをかざしてください"));
}

#[test]
fn english_is_one_click_away() {
    let (mut h, _dir) = harness(Lang::Ja);
    settle(&mut h);
    h.get_by_label("English").click();
    settle(&mut h);
    assert!(said(&h, "Please hold the card over the reader"));
    assert!(said(&h, "0 present"));
    h.get_by_label("日本語").click();
    settle(&mut h);
    assert!(said(&h, "カードをかざしてください"));
}
