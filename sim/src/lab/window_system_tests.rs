//! This laptop's clock and Wi-Fi in the network view (issue 29), clicked through with
//! egui_kittest on a real store, with a fake `SystemControl` that records what it was asked
//! (the real one, against fake `nmcli` and `timedatectl` processes, is tested in
//! `gui/src/app/system_tests.rs`): a manager types a JST date and time, sees the old and new
//! time, confirms, and the system is asked for that instant and the change is on the audit
//! record; a bad date is refused and nothing is asked; reception staff cannot set the clock;
//! a Wi-Fi network picked and its password typed is connected to, a wrong password and a
//! refused permission are said so.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use crate::demo_window::{DemoKind, station};
use crate::window_rig::{H, harness_of, said};
use eframe::egui::{self, accesskit::Role};
use egui_kittest::kittest::Queryable;
use kazashi_domain::Millis;
use kazashi_domain::audit::AuditAction;
use kazashi_domain::event::EventBody;
use kazashi_domain::time::CivilDate;
use kazashi_gui::app::system::{
    Device, DeviceKind, LinkState, NetState, SysError, SystemControl, Wifi,
};
use kazashi_gui::lang::Lang;
use kazashi_node::SystemClock;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    SetTime(Millis),
    List(bool),
    Connect(String, String),
    State,
}

/// A fake system: what it answers is set by the test, what it was asked is kept.
struct Fake {
    calls: Mutex<Vec<Call>>,
    net: Mutex<Result<NetState, SysError>>,
    connect: Mutex<Result<(), SysError>>,
}

impl Fake {
    fn new() -> Arc<Fake> {
        Arc::new(Fake {
            calls: Mutex::new(Vec::new()),
            net: Mutex::new(Ok(NetState {
                devices: vec![
                    Device {
                        name: "enp0s3".into(),
                        kind: DeviceKind::Wired,
                        state: LinkState::Connected,
                        connection: Some("Wired connection 1".into()),
                    },
                    Device {
                        name: "wlp2s0".into(),
                        kind: DeviceKind::Wifi,
                        state: LinkState::Disconnected,
                        connection: None,
                    },
                ],
            })),
            connect: Mutex::new(Ok(())),
        })
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

impl SystemControl for Fake {
    fn set_time(&self, unix_ms: Millis) -> Result<(), SysError> {
        self.calls.lock().unwrap().push(Call::SetTime(unix_ms));
        Ok(())
    }

    fn wifi_list(&self, rescan: bool) -> Result<Vec<Wifi>, SysError> {
        self.calls.lock().unwrap().push(Call::List(rescan));
        Ok(vec![
            Wifi {
                ssid: "Shelter:5F".into(),
                signal: 82,
                security: "WPA2".into(),
                in_use: false,
            },
            Wifi {
                ssid: "FreeWiFi".into(),
                signal: 40,
                security: String::new(),
                in_use: false,
            },
        ])
    }

    fn wifi_connect(&self, ssid: &str, password: &str) -> Result<(), SysError> {
        self.calls
            .lock()
            .unwrap()
            .push(Call::Connect(ssid.into(), password.into()));
        self.connect.lock().unwrap().clone()
    }

    fn net_state(&self) -> Result<NetState, SysError> {
        self.calls.lock().unwrap().push(Call::State);
        self.net.lock().unwrap().clone()
    }
}

fn harness(dir: &std::path::Path, fake: Arc<Fake>) -> H {
    let mut station = station(DemoKind::Shelter, dir, Lang::Ja, false, None).unwrap();
    station.set_system_control(fake);
    let mut h = harness_of(station);
    h.run_steps(3);
    h
}

/// Run frames until `text` shows (the fake answers on a thread of its own), at most 10 s.
fn wait_for(h: &mut H, text: &str) {
    let start = Instant::now();
    while !said(h, text) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never showed: {text}"
        );
        h.run_steps(1);
        std::thread::sleep(Duration::from_millis(10));
    }
    h.run_steps(2);
}

fn click(h: &mut H, label: &str) {
    h.get_by_label(label).scroll_to_me();
    h.run_steps(3);
    h.get_by_label(label).click();
    h.run_steps(3);
}

fn fill(h: &mut H, label: &str, text: &str) {
    let role = [Role::TextInput, Role::PasswordInput]
        .into_iter()
        .find(|r| h.query_by_role_and_label(*r, label).is_some())
        .unwrap_or_else(|| panic!("no field labelled {label}"));
    h.get_by_role_and_label(role, label).scroll_to_me();
    h.run_steps(2);
    h.get_by_role_and_label(role, label).focus();
    h.run_steps(2);
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.run_steps(1);
    h.key_press(egui::Key::Backspace);
    h.run_steps(1);
    if !text.is_empty() {
        h.get_by_role_and_label(role, label).type_text(text);
    }
    h.run_steps(3);
}

fn login(h: &mut H, staff: &str, pin: &str) {
    fill(h, "職員ID", staff);
    fill(h, "職員暗証番号", pin);
    click(h, "解錠");
    assert!(
        h.state().station.login().is_some(),
        "{staff} did not unlock"
    );
}

/// The network view (F6 at a shelter).
fn network_view(h: &mut H) {
    h.key_press(egui::Key::F6);
    h.run_steps(3);
    wait_for(h, "この端末の時計とネットワーク");
}

fn clock_sets(h: &mut H) -> Vec<(String, Millis, Millis)> {
    h.state_mut().station.host().with(|n| {
        n.state()
            .events_unordered()
            .filter_map(|e| match e.body() {
                EventBody::Audit(r) => match r.action {
                    AuditAction::ClockSet { from, to } => {
                        Some((e.operator().as_str().to_owned(), from, to))
                    }
                    _ => None,
                },
                _ => None,
            })
            .collect()
    })
}

#[test]
fn a_manager_sets_the_clock_in_jst_after_seeing_old_and_new() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let mut h = harness(dir.path(), fake.clone());
    // The header shows the time now (JST) even on the lock screen.
    let today = kazashi_domain::time::jst_text(kazashi_node::Clock::now_ms(&SystemClock));
    assert!(said(&h, &today[..10]), "no date in the header");
    login(&mut h, "sekinin", "2222");
    network_view(&mut h);
    assert!(said(&h, "現在時刻（日本時間）"));
    click(&mut h, "時計を合わせる");
    // No such day: refused, nothing asked of the system.
    fill(&mut h, "日付（年-月-日）", "2027-02-30");
    fill(&mut h, "時刻（時:分）", "09:30");
    click(&mut h, "確認へ");
    assert!(said(&h, "存在しない日付"), "a bad date was not refused");
    fill(&mut h, "日付（年-月-日）", "1999-01-15");
    click(&mut h, "確認へ");
    assert!(said(&h, "2024年から2099年まで"));
    assert!(!said(&h, "時計を変更する"));
    // 2027-01-15 09:30 JST is 00:30 UTC.
    fill(&mut h, "日付（年-月-日）", "2027-01-15");
    click(&mut h, "確認へ");
    assert!(said(&h, "今の時計："));
    assert!(said(&h, "新しい時刻：2027-01-15 09:30:00"));
    assert!(
        said(&h, "1日以上の変更"),
        "no warning for a change of weeks"
    );
    assert!(
        !fake.calls().iter().any(|c| matches!(c, Call::SetTime(_))),
        "asked before the confirmation"
    );
    click(&mut h, "時計を変更する");
    wait_for(&mut h, "時計を 2027-01-15 09:30:00 に合わせました");
    let want =
        CivilDate::new(2027, 1, 15).unwrap().days_since_epoch() as u64 * 86_400_000 + 30 * 60_000;
    let sets: Vec<Call> = fake
        .calls()
        .into_iter()
        .filter(|c| matches!(c, Call::SetTime(_)))
        .collect();
    assert_eq!(sets, [Call::SetTime(want)]);
    // On the audit record, by the manager, from the clock as it was.
    let rec = clock_sets(&mut h);
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].0, "sekinin");
    assert_eq!(rec[0].2, want);
    let now = kazashi_node::Clock::now_ms(&SystemClock);
    assert!(
        now.abs_diff(rec[0].1) < 120_000,
        "from is not the clock then"
    );
}

#[test]
fn reception_staff_cannot_set_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let mut h = harness(dir.path(), fake.clone());
    login(&mut h, "uketsuke", "1111");
    network_view(&mut h);
    assert!(said(&h, "現在時刻（日本時間）"));
    assert!(said(&h, "時計を合わせられるのは責任者だけです"));
    assert!(h.query_by_label("時計を合わせる").is_none());
    assert!(h.query_by_label("日付（年-月-日）").is_none());
    h.run_steps(5);
    assert!(!fake.calls().iter().any(|c| matches!(c, Call::SetTime(_))));
    assert!(clock_sets(&mut h).is_empty());
}

#[test]
fn a_wifi_network_is_picked_and_connected_with_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let mut h = harness(dir.path(), fake.clone());
    login(&mut h, "uketsuke", "1111");
    network_view(&mut h);
    wait_for(&mut h, "Shelter:5F");
    assert!(said(&h, "有線LAN enp0s3: 接続済み（Wired connection 1）"));
    assert!(said(&h, "Wi-Fi wlp2s0: 未接続"));
    assert!(said(&h, "鍵なし"), "the open network is not marked");
    assert_eq!(fake.calls()[..2], [Call::State, Call::List(false)]);
    click(&mut h, "Shelter:5F");
    assert!(said(&h, "「Shelter:5F」に接続"));
    // Too short for WPA: refused here, nothing asked.
    fill(&mut h, "Wi-Fiのパスワード", "short");
    click(&mut h, "接続する");
    assert!(said(&h, "8〜63文字"));
    assert!(!fake.calls().iter().any(|c| matches!(c, Call::Connect(..))));
    // A wrong password: the network's refusal is said so.
    *fake.connect.lock().unwrap() = Err(SysError::WrongPassword);
    fill(&mut h, "Wi-Fiのパスワード", "not the one");
    click(&mut h, "接続する");
    wait_for(&mut h, "Wi-Fiのパスワードが違います");
    // The right one.
    *fake.connect.lock().unwrap() = Ok(());
    fill(&mut h, "Wi-Fiのパスワード", "kazashi-5f-2026");
    click(&mut h, "接続する");
    wait_for(&mut h, "「Shelter:5F」に接続しました");
    let connects: Vec<Call> = fake
        .calls()
        .into_iter()
        .filter(|c| matches!(c, Call::Connect(..)))
        .collect();
    assert_eq!(
        connects,
        [
            Call::Connect("Shelter:5F".into(), "not the one".into()),
            Call::Connect("Shelter:5F".into(), "kazashi-5f-2026".into()),
        ]
    );
    // A rescan asks for a fresh list.
    wait_for(&mut h, "再検索");
    let start = Instant::now();
    while h.query_by_label("処理中…").is_some() && start.elapsed() < Duration::from_secs(10) {
        h.run_steps(1);
        std::thread::sleep(Duration::from_millis(10));
    }
    click(&mut h, "再検索");
    let start = Instant::now();
    while !fake.calls().contains(&Call::List(true)) {
        assert!(start.elapsed() < Duration::from_secs(10), "no rescan");
        h.run_steps(1);
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_refusal_or_a_missing_tool_is_said_in_the_windows_language() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    *fake.net.lock().unwrap() = Err(SysError::Denied);
    let mut h = harness(dir.path(), fake.clone());
    login(&mut h, "sekinin", "2222");
    network_view(&mut h);
    wait_for(&mut h, "許可されていません");
    assert!(
        h.query_by_label("再検索").is_none(),
        "a Wi-Fi list without a device"
    );
    // nmcli missing, after the switch to English.
    let fake = Fake::new();
    *fake.net.lock().unwrap() = Err(SysError::Missing("nmcli"));
    h.state_mut().station.set_system_control(fake.clone());
    click(&mut h, "English");
    wait_for(&mut h, "nmcli is not on this laptop");
    // No Wi-Fi device: the wired line, and the chooser says why it is not there.
    let fake = Fake::new();
    fake.net.lock().unwrap().as_mut().unwrap().devices.pop();
    h.state_mut().station.set_system_control(fake.clone());
    wait_for(&mut h, "This laptop has no Wi-Fi device");
    assert!(said(&h, "Wired LAN enp0s3: connected"));
    assert!(!fake.calls().iter().any(|c| matches!(c, Call::List(_))));
}

#[test]
fn the_demo_never_touches_this_computers_clock_or_network() {
    let dir = tempfile::tempdir().unwrap();
    let station = station(DemoKind::Shelter, dir.path(), Lang::Ja, false, None).unwrap();
    let mut h = harness_of(station);
    h.run_steps(3);
    login(&mut h, "sekinin", "2222");
    network_view(&mut h);
    wait_for(&mut h, "体育館:2F");
    click(&mut h, "Shelter-Guest");
    click(&mut h, "接続する");
    wait_for(&mut h, "「Shelter-Guest」に接続しました");
    wait_for(&mut h, "Wi-Fi wlp2s0: 接続済み（Shelter-Guest）");
    click(&mut h, "時計を合わせる");
    click(&mut h, "確認へ");
    click(&mut h, "時計を変更する");
    wait_for(&mut h, "the demo does not change this computer's clock");
    assert!(clock_sets(&mut h).is_empty(), "a refused change on record");
}
