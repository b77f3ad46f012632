//! A copied certificate grants no authority (issue 24, requirement 1), clicked through the
//! window: a virtual card carrying a staff member's (or a voter's) certificate, copied — it is
//! readable without a PIN — but its own private key, is refused on all three paths that
//! grant authority: staff unlock, the second officer's approval, a voter's check-in by card.
//! The genuine card passes each of them with the same PIN, so the refusal is the signature's.
//! Also: a card with one PIN try left is not used, and a PIN-less shelter tap is shown as
//! identification only.

use super::*;
use crate::demo_window::station_with;
use kazashi_sim::card::{CardSpec, Holder};

/// The fixture index of sekinin's staff card in the demo (the last fixture).
const SEKININ_FIXTURE: usize = 7;

fn someone() -> Holder {
    Holder {
        name: "複製 太郎".into(),
        address: "かざし市中央1-1".into(),
        birth: "19800101".into(),
        sex: "1".into(),
    }
}

/// A card with fixture `victim`'s certificate and fixture `key`'s private key.
fn copy_of(victim: usize, key: usize) -> CardSpec {
    let mut spec = CardSpec::new(key, someone());
    spec.copied_cert_of = Some(victim);
    spec
}

fn harness_with(kind: DemoKind, extra: Vec<(String, CardSpec)>) -> (H, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let station = station_with(kind, dir.path(), Lang::Ja, false, None, extra).unwrap();
    let mut h = harness_of(station);
    settle(&mut h);
    (h, dir)
}

fn voter_check_ins(h: &mut H) -> usize {
    events_of(h, |b| matches!(b, EventBody::VoterCheckIn { .. }))
}

/// Path 1: staff unlock.
#[test]
fn a_copied_staff_certificate_does_not_unlock_the_window() {
    let (mut h, _dir) = harness_with(
        DemoKind::Shelter,
        vec![("複製カード".into(), copy_of(SEKININ_FIXTURE, 0))],
    );
    click(&mut h, "かざす: 複製カード");
    // The certificate is sekinin's, and genuine: it passes the chain check and names them.
    assert!(
        said(&h, "職員カード：sekinin"),
        "the copy was not taken for sekinin's"
    );
    assert!(h.state().station.login().is_none());
    card_pin(&mut h, "1234");
    assert!(
        said(&h, "証明書の複製の疑い"),
        "the copy was not refused as one"
    );
    assert!(h.state().station.login().is_none(), "a copy unlocked");
    // sekinin's own card, the same PIN: unlocked.
    click_contains(&mut h, "職員カード: sekinin");
    card_pin(&mut h, "1234");
    assert_eq!(
        h.state()
            .station
            .login()
            .map(|l| l.operator.as_str().to_owned()),
        Some("sekinin".into())
    );
}

/// Path 2: the second officer's approval of an override.
#[test]
fn a_copied_manager_certificate_does_not_approve_an_override() {
    let (mut h, _dir) = harness_with(
        DemoKind::EarlyVoting,
        vec![("複製カード".into(), copy_of(SEKININ_FIXTURE, 1))],
    );
    login(&mut h, "uketsuke", "1111");
    let before = voter_check_ins(&mut h);
    // Card 2's holder voted early at E2: blocked.
    let card = voter_card(&h, 2);
    voter_tap(&mut h, &card, true);
    assert!(said(&h, "交付できません"));
    click(&mut h, "責任者の承認で交付する");
    click(&mut h, "かざす: 複製カード");
    assert!(said(&h, "職員カード：sekinin"));
    card_pin(&mut h, "1234");
    assert!(said(&h, "証明書の複製の疑い"), "the copy was not refused");
    assert!(!said(&h, "承認者: sekinin"), "a copy approved");
    // Without an approval the ballot cannot be issued: the button is not there.
    assert!(
        h.query_by_label("受付する（投票用紙を交付）").is_none(),
        "the ballot is offered without an approval"
    );
    assert_eq!(voter_check_ins(&mut h), before);
    // The genuine card approves.
    click_contains(&mut h, "職員カード: sekinin");
    card_pin(&mut h, "1234");
    assert!(said(&h, "承認者: sekinin"));
}

/// Path 3: a voter's check-in by card.
#[test]
fn a_copied_voter_certificate_does_not_check_the_voter_in() {
    let (mut h, _dir) = harness_with(
        DemoKind::ElectionDay,
        vec![("複製カード".into(), copy_of(0, 3))],
    );
    login(&mut h, "uketsuke", "1111");
    let before = voter_check_ins(&mut h);
    click(&mut h, "かざす: 複製カード");
    assert!(said(&h, "カードの本人確認"));
    assert!(
        said(&h, "失効は確認できません"),
        "no offline-revocation caveat"
    );
    card_pin(&mut h, "1234");
    assert!(said(&h, "証明書の複製の疑い"), "the copy was not refused");
    assert!(!said(&h, "選挙人の確認"), "a copy opened the voter");
    assert!(
        !said(&h, "暗証番号（数字4桁）"),
        "a copy got to the card-text PIN"
    );
    assert_eq!(voter_check_ins(&mut h), before);
    // The voter's own card (fixture 0, the panel's first) goes on to the voter.
    let genuine = voter_card(&h, 0);
    voter_tap(&mut h, &genuine, true);
    assert!(said(&h, "選挙人の確認"), "the genuine card did not pass");
    click(&mut h, "受付する（投票用紙を交付）");
    assert_eq!(voter_check_ins(&mut h), before + 1);
}

/// The card's own PIN counter is never spent to its last try, and a staff card needs its
/// PIN: a staff card with one try left is refused before any VERIFY.
#[test]
fn a_card_with_one_try_left_is_not_used() {
    let mut spec = CardSpec::new(SEKININ_FIXTURE, someone());
    spec.jpki_tries = 1;
    let (mut h, _dir) = harness_with(DemoKind::Shelter, vec![("残り1回".into(), spec)]);
    click(&mut h, "かざす: 残り1回");
    assert!(said(&h, "残り1回のため"), "the last try was not protected");
    assert!(text_field_absent(&h, "カードの暗証番号（数字4桁）"));
    assert!(h.state().station.login().is_none());
}

fn text_field_absent(h: &H, label: &str) -> bool {
    h.query_by_role_and_label(Role::PasswordInput, label)
        .is_none()
}

/// Wrong staff PINs lock the id (persisted in the store, the same in the override's PIN).
#[test]
fn five_wrong_staff_pins_lock_the_id() {
    let (mut h, _dir) = harness_with(DemoKind::Shelter, vec![]);
    for _ in 0..4 {
        login(&mut h, "sekinin", "0000");
        assert!(said(&h, "職員IDまたは暗証番号が違います"));
    }
    login(&mut h, "sekinin", "0000");
    assert!(said(&h, "ロックしています"), "no lockout after five");
    let locked = h.state_mut().station.host().with(|n| {
        n.staff_login(
            &kazashi_domain::ids::OperatorId::new("sekinin").unwrap(),
            "2222",
        )
    });
    assert!(
        matches!(locked, Err(kazashi_node::staff::LoginError::Locked { .. })),
        "{locked:?}"
    );
}

/// A PIN-less tap at a shelter is identification only, and the window says so.
#[test]
fn a_pin_less_shelter_tap_is_shown_as_identification_only() {
    let (mut h, _dir) = open(DemoKind::Shelter, "uketsuke", "1111");
    let first = voter_card(&h, 0);
    click(&mut h, &first);
    fill(&mut h, "暗証番号（数字4桁）", "1234");
    click(&mut h, "確認");
    click(&mut h, "受付する");
    assert!(said(&h, "カードを登録しました"));
    click(&mut h, &first);
    assert!(
        said(&h, "本人確認の補助です"),
        "not said to be identification only"
    );
    assert!(said(&h, "失効は確認できません"));
}

/// The override's second-officer PIN is locked out as the lock screen's is: five wrong in a
/// row, then even the right one is refused for the period.
#[test]
fn wrong_second_officer_pins_lock_the_id() {
    let (mut h, _dir) = harness_with(DemoKind::EarlyVoting, vec![]);
    login(&mut h, "uketsuke", "1111");
    let card = voter_card(&h, 2);
    voter_tap(&mut h, &card, true);
    click(&mut h, "責任者の承認で交付する");
    let officer = |h: &mut H, pin: &str| {
        fill(h, "責任者の職員ID", "sekinin");
        fill(h, "責任者の暗証番号", pin);
        click(h, "確認");
    };
    for _ in 0..4 {
        officer(&mut h, "0000");
        assert!(said(&h, "職員IDまたは暗証番号が違います"));
    }
    officer(&mut h, "0000");
    assert!(said(&h, "ロックしています"), "no lockout after five");
    officer(&mut h, "2222");
    assert!(said(&h, "ロックしています"));
    assert!(!said(&h, "承認者: sekinin"), "approved while locked");
}

/// A card whose basic four match no one on the roster (another town's resident, at a shelter):
/// staff see what the card says and register them as a walk-in from it — the one card flow
/// that keeps the basic four (issue 24, minimisation) — with the card bound and the check-in
/// written; the next tap finds them without a PIN.
#[test]
fn a_card_not_on_the_roster_registers_a_walk_in_from_its_basic_four() {
    let visitor = Holder {
        name: "隣町 次郎".into(),
        address: "となり町本町三丁目4番5号".into(),
        birth: "19751224".into(),
        sex: "1".into(),
    };
    let (mut h, _dir) = harness_with(
        DemoKind::Shelter,
        vec![("隣町の方".into(), CardSpec::new(4, visitor))],
    );
    login(&mut h, "uketsuke", "1111");
    let regs = |h: &mut H| events_of(h, |b| matches!(b, EventBody::WalkInRegistration { .. }));
    let before = regs(&mut h);
    click(&mut h, "かざす: 隣町の方");
    assert!(said(&h, "暗証番号の入力"));
    fill(&mut h, "暗証番号（数字4桁）", "1234");
    click(&mut h, "確認");
    assert!(said(&h, "名簿にない方です"), "no walk-in offer");
    assert!(said(&h, "隣町 次郎"));
    assert_eq!(regs(&mut h), before, "written before staff chose");
    click(&mut h, "カードの情報で当日受付する");
    assert!(said(&h, "カードの情報で当日受付し"), "not registered");
    assert_eq!(regs(&mut h), before + 1);
    let (name, address, bound, present) = h.state_mut().station.host().with(|n| {
        let walk_ins = n.state().walk_ins(None);
        let (p, w) = walk_ins
            .iter()
            .find(|(_, w)| w.name.as_str() == "隣町 次郎")
            .map(|(p, w)| (*p, (*w).clone()))
            .unwrap();
        let bound =
            n.state().events_in_order().iter().any(
                |e| matches!(e.body(), EventBody::CardBinding { person: Some(q), .. } if *q == p),
            );
        let present = kazashi_gui::app::reception::is_present(n, &p);
        (
            w.name.as_str().to_owned(),
            w.address.map(|a| a.as_str().to_owned()),
            bound,
            present,
        )
    });
    assert_eq!(name, "隣町 次郎");
    assert_eq!(address.as_deref(), Some("となり町本町三丁目4番5号"));
    assert!(bound && present);
    // The same card again: no PIN.
    click(&mut h, "かざす: 隣町の方");
    assert!(!said(&h, "暗証番号の入力"));
}
