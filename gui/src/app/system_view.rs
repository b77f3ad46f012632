//! This laptop's clock and network, at the foot of the network view (issue 29): the time now
//! (JST), which a manager may set — a date and a time typed in JST, checked, then confirmed
//! with the old and new time side by side, and put on the audit record once the system took
//! it — and the wired and Wi-Fi state with a Wi-Fi chooser (the networks in range, a
//! password, connect).
//!
//! Everything the operating system is asked goes through [`SystemControl`] (`system.rs`) on a
//! thread of its own: the UI never waits for `nmcli` or `timedatectl`. One request at a time;
//! its answer is picked up by the next frame.

use super::system::{DeviceKind, LinkState, NetState, Real, SysError, SystemControl, Wifi};
use super::{AMBER, Cx, GREEN, RED, labelled};
use eframe::egui::{self, RichText};
use kazashi_domain::Millis;
use kazashi_domain::audit::AuditAction;
use kazashi_domain::ids::OperatorId;
use kazashi_domain::time::{CivilDate, jst_text};
use kazashi_node::Clock;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant};

/// How often the network state is asked again while the view is shown.
const REFRESH: Duration = Duration::from_secs(20);
/// The earliest and latest year a manager may set (a typo of a decade is refused).
const YEARS: std::ops::RangeInclusive<i32> = 2024..=2099;
/// A change larger than this is shown with a warning before it is confirmed.
const LARGE_CHANGE_MS: u64 = 24 * 3600 * 1000;

/// What a request came back with.
enum Done {
    Refreshed {
        net: Result<NetState, SysError>,
        wifi: Result<Vec<Wifi>, SysError>,
    },
    Connected {
        ssid: String,
        result: Result<(), SysError>,
    },
    TimeSet {
        by: OperatorId,
        from: Millis,
        to: Millis,
        result: Result<(), SysError>,
    },
}

/// The clock form: the date and time as typed, and the change waiting for confirmation.
#[derive(Default)]
struct ClockForm {
    open: bool,
    date: String,
    time: String,
    /// (the clock when the manager asked, the time to set).
    confirm: Option<(Millis, Millis)>,
    error: Option<String>,
}

pub struct Panel {
    sys: Arc<dyn SystemControl>,
    job: Option<Receiver<Done>>,
    refreshed: Option<Instant>,
    net: Option<Result<NetState, SysError>>,
    wifi: Result<Vec<Wifi>, SysError>,
    chosen: Option<Wifi>,
    /// The Wi-Fi password as typed: wiped when taken or dropped.
    password: zeroize::Zeroizing<String>,
    clock: ClockForm,
}

impl Default for Panel {
    fn default() -> Self {
        Panel::new(Arc::new(Real::new()))
    }
}

/// A system error in the window's language.
pub fn sys_words(tr: &super::tr::Tr, e: &SysError) -> String {
    match e {
        SysError::Missing(tool) => tr.t_with("sys-missing", &[("tool", (*tool).into())]),
        SysError::Denied => tr.t("sys-denied"),
        SysError::WrongPassword => tr.t("wifi-wrong-password"),
        SysError::NoWifiDevice => tr.t("wifi-no-device"),
        SysError::NoSuchNetwork => tr.t("wifi-not-found"),
        SysError::NetworkManagerDown => tr.t("sys-nm-down"),
        SysError::Failed(why) => tr.t_with("sys-failed", &[("why", why.clone().into())]),
    }
}

/// Why a typed date and time is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadTime {
    /// Not a date or time as written (or no such day, or no such minute).
    Format,
    /// Outside [`YEARS`].
    OutOfRange,
}

/// Full-width digits and separators (an IME left on) as ASCII.
fn ascii(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            '／' => '/',
            '－' | 'ー' | '‐' => '-',
            '：' => ':',
            c => c,
        })
        .collect()
}

/// A date (`2026-12-06`, `2026/12/06`, `20261206`) and a time (`9:05`, `09:05`,
/// `09:05:30`) typed in JST, as Unix milliseconds.
pub fn parse_jst(date: &str, time: &str) -> Result<Millis, BadTime> {
    let day = CivilDate::parse(&ascii(date)).map_err(|_| BadTime::Format)?;
    if !YEARS.contains(&day.year()) {
        return Err(BadTime::OutOfRange);
    }
    let t = ascii(time);
    let parts: Vec<&str> = t.split(':').collect();
    let num = |s: Option<&&str>, max: u64| -> Result<u64, BadTime> {
        let s = s.ok_or(BadTime::Format)?;
        if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadTime::Format);
        }
        s.parse::<u64>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or(BadTime::Format)
    };
    let (h, m, sec) = match parts.len() {
        2 => (num(parts.first(), 23)?, num(parts.get(1), 59)?, 0),
        3 => (
            num(parts.first(), 23)?,
            num(parts.get(1), 59)?,
            num(parts.get(2), 59)?,
        ),
        _ => return Err(BadTime::Format),
    };
    let midnight = day.jst_midnight().ok_or(BadTime::OutOfRange)?;
    Ok(midnight + (h * 3600 + m * 60 + sec) * 1000)
}

/// `2026-12-06 18:40:12` (JST).
pub fn jst_seconds(ms: Millis) -> String {
    format!("{}:{:02}", jst_text(ms), ms / 1000 % 60)
}

/// "+25分" / "-3時間10分" / "+2日4時間".
fn span_words(tr: &super::tr::Tr, from: Millis, to: Millis) -> String {
    let (sign, d) = if to >= from {
        ("+", to - from)
    } else {
        ("-", from - to)
    };
    let mins = d / 60_000;
    let text = tr.t_with(
        "clock-span",
        &[
            ("days", (mins / 1440).into()),
            ("hours", (mins / 60 % 24).into()),
            ("minutes", (mins % 60).into()),
        ],
    );
    format!("{sign}{text}")
}

/// Whether a WPA password as typed could be one: 8 to 63 characters, or 64 hex digits.
fn wpa_password_ok(p: &str) -> bool {
    let n = p.chars().count();
    (8..=63).contains(&n) || (n == 64 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl Panel {
    pub fn new(sys: Arc<dyn SystemControl>) -> Self {
        Panel {
            sys,
            job: None,
            refreshed: None,
            net: None,
            wifi: Ok(Vec::new()),
            chosen: None,
            password: zeroize::Zeroizing::default(),
            clock: ClockForm::default(),
        }
    }

    /// Ask another [`SystemControl`] from now on (the lab's tests: a fake that records calls).
    pub fn set_control(&mut self, sys: Arc<dyn SystemControl>) {
        *self = Panel::new(sys);
    }

    /// Whether a request is running.
    pub fn busy(&self) -> bool {
        self.job.is_some()
    }

    /// Run `f` on a thread of its own; its answer is picked up by [`Panel::poll`].
    fn start<C: Clock>(
        &mut self,
        cx: &mut Cx<'_, C>,
        f: impl FnOnce(&dyn SystemControl) -> Done + Send + 'static,
    ) {
        let (tx, rx) = mpsc::channel();
        let sys = self.sys.clone();
        let spawned = std::thread::Builder::new()
            .name("kazashi-system".into())
            .spawn(move || {
                let _ = tx.send(f(&*sys));
            });
        match spawned {
            Ok(_) => self.job = Some(rx),
            Err(e) => cx.say(
                cx.tr.t_with("sys-failed", &[("why", e.to_string().into())]),
                false,
            ),
        }
    }

    fn refresh<C: Clock>(&mut self, cx: &mut Cx<'_, C>, rescan: bool) {
        self.refreshed = Some(Instant::now());
        self.start(cx, move |sys| {
            let net = sys.net_state();
            let wifi = match &net {
                Ok(n) if n.has_wifi() => sys.wifi_list(rescan),
                _ => Ok(Vec::new()),
            };
            Done::Refreshed { net, wifi }
        });
    }

    /// Take a finished request's answer.
    fn poll<C: Clock>(&mut self, cx: &mut Cx<'_, C>) {
        let Some(rx) = &self.job else {
            return;
        };
        let done = match rx.try_recv() {
            Ok(d) => d,
            Err(TryRecvError::Empty) => return,
            Err(TryRecvError::Disconnected) => {
                self.job = None;
                cx.say(
                    cx.tr.t_with("sys-failed", &[("why", "thread".into())]),
                    false,
                );
                return;
            }
        };
        self.job = None;
        match done {
            Done::Refreshed { net, wifi } => {
                self.net = Some(net);
                self.wifi = wifi;
            }
            Done::Connected { ssid, result } => match result {
                Ok(()) => {
                    self.chosen = None;
                    cx.say(
                        cx.tr.t_with("wifi-connected", &[("ssid", ssid.into())]),
                        true,
                    );
                    self.refresh(cx, false);
                }
                Err(e) => cx.say(sys_words(cx.tr, &e), false),
            },
            Done::TimeSet {
                by,
                from,
                to,
                result,
            } => match result {
                Ok(()) => {
                    // On record once the system took it (the record's HLC time follows the
                    // new clock, or the log's latest time if the clock went back).
                    let text =
                        match cx
                            .node
                            .audit(by, AuditAction::ClockSet { from, to }, Vec::new())
                        {
                            Ok(_) => cx
                                .tr
                                .t_with("clock-set-done", &[("time", jst_seconds(to).into())]),
                            Err(e) => cx
                                .tr
                                .t_with("clock-set-not-recorded", &[("why", e.to_string().into())]),
                        };
                    cx.say(text, true);
                }
                Err(e) => cx.say(sys_words(cx.tr, &e), false),
            },
        }
    }

    pub fn show<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
        self.poll(cx);
        if self.job.is_none() && self.refreshed.is_none_or(|t| t.elapsed() >= REFRESH) {
            self.refresh(cx, false);
        }
        if self.job.is_some() {
            ui.ctx().request_repaint_after(Duration::from_millis(100));
        }
        ui.strong(cx.tr.t("system-title"));
        self.clock(ui, cx);
        ui.separator();
        self.network(ui, cx);
        if self.job.is_some() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(cx.tr.t("sys-busy"));
            });
        }
    }

    fn clock<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
        let now = cx.now();
        ui.label(
            RichText::new(
                cx.tr
                    .t_with("clock-now", &[("time", jst_seconds(now).into())]),
            )
            .size(18.0),
        );
        if !cx.login.role.manages() {
            ui.label(RichText::new(cx.tr.t("clock-manager-only")).small());
            return;
        }
        let idle = self.job.is_none();
        if !self.clock.open {
            if ui
                .add_enabled(idle, egui::Button::new(cx.tr.t("clock-set")))
                .clicked()
            {
                let text = jst_text(now);
                let (d, t) = text.split_once(' ').unwrap_or((&text, ""));
                self.clock = ClockForm {
                    open: true,
                    date: d.to_owned(),
                    time: t.to_owned(),
                    confirm: None,
                    error: None,
                };
            }
            return;
        }
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.label(RichText::new(cx.tr.t("clock-help")).small());
            if let Some((from, to)) = self.clock.confirm {
                self.confirm(ui, cx, idle, from, to);
                return;
            }
            ui.horizontal(|ui| {
                labelled(
                    ui,
                    cx.tr.t("clock-date"),
                    egui::TextEdit::singleline(&mut self.clock.date).desired_width(130.0),
                );
                labelled(
                    ui,
                    cx.tr.t("clock-time"),
                    egui::TextEdit::singleline(&mut self.clock.time).desired_width(90.0),
                );
            });
            ui.horizontal(|ui| {
                if ui.button(cx.tr.t("clock-check")).clicked() {
                    self.check(cx);
                }
                if ui.button(cx.tr.t("cancel")).clicked() {
                    self.clock = ClockForm::default();
                }
            });
            if let Some(e) = &self.clock.error {
                ui.label(RichText::new(e.as_str()).color(RED));
            }
        });
    }

    /// The typed date and time, checked: on to the confirmation, or a refusal that changes
    /// nothing.
    fn check<C: Clock>(&mut self, cx: &mut Cx<'_, C>) {
        let to = match parse_jst(&self.clock.date, &self.clock.time) {
            Ok(t) => t,
            Err(BadTime::Format) => {
                self.clock.error = Some(cx.tr.t("clock-bad-format"));
                return;
            }
            Err(BadTime::OutOfRange) => {
                self.clock.error = Some(cx.tr.t_with(
                    "clock-out-of-range",
                    &[
                        ("from", (*YEARS.start()).into()),
                        ("to", (*YEARS.end()).into()),
                    ],
                ));
                return;
            }
        };
        // A clock moved past a closed operation's purge date would purge this laptop.
        let purge_at = kazashi_node::purge::closure(cx.node.membership(), cx.node.state())
            .and_then(|c| c.purge_at());
        if let Some(at) = purge_at.filter(|at| to >= *at) {
            self.clock.error = Some(
                cx.tr
                    .t_with("clock-after-purge", &[("time", jst_text(at).into())]),
            );
            return;
        }
        self.clock.error = None;
        self.clock.confirm = Some((cx.now(), to));
    }

    fn confirm<C: Clock>(
        &mut self,
        ui: &mut egui::Ui,
        cx: &mut Cx<'_, C>,
        idle: bool,
        from: Millis,
        to: Millis,
    ) {
        ui.label(RichText::new(cx.tr.t("clock-confirm-title")).strong());
        ui.label(
            cx.tr
                .t_with("clock-old", &[("time", jst_seconds(from).into())]),
        );
        ui.label(
            RichText::new(
                cx.tr
                    .t_with("clock-new", &[("time", jst_seconds(to).into())]),
            )
            .strong(),
        );
        let span = span_words(cx.tr, from, to);
        ui.label(cx.tr.t_with("clock-diff", &[("span", span.into())]));
        if to.abs_diff(from) > LARGE_CHANGE_MS {
            ui.label(RichText::new(cx.tr.t("clock-large")).color(AMBER));
        }
        let mut go = false;
        ui.horizontal(|ui| {
            go = ui
                .add_enabled(idle, egui::Button::new(cx.tr.t("clock-apply")))
                .clicked();
            if ui.button(cx.tr.t("cancel")).clicked() {
                self.clock = ClockForm::default();
            }
        });
        if go {
            let by = cx.login.operator;
            self.clock = ClockForm::default();
            self.start(cx, move |sys| Done::TimeSet {
                by,
                from,
                to,
                result: sys.set_time(to),
            });
        }
    }

    fn network<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
        let idle = self.job.is_none();
        match &self.net {
            None => {
                ui.label(cx.tr.t("net-unknown"));
            }
            Some(Err(e)) => {
                ui.label(RichText::new(sys_words(cx.tr, e)).color(RED));
            }
            Some(Ok(n)) if n.devices.is_empty() => {
                ui.label(RichText::new(cx.tr.t("net-no-devices")).color(AMBER));
            }
            Some(Ok(n)) => {
                for d in &n.devices {
                    device_line(ui, cx, d);
                }
            }
        }
        let has_wifi = matches!(&self.net, Some(Ok(n)) if n.has_wifi());
        if !has_wifi {
            if matches!(&self.net, Some(Ok(_))) {
                ui.label(cx.tr.t("wifi-no-device"));
            }
            return;
        }
        ui.horizontal(|ui| {
            ui.label(RichText::new(cx.tr.t("wifi-title")).strong());
            if ui
                .add_enabled(idle, egui::Button::new(cx.tr.t("wifi-rescan")))
                .clicked()
            {
                self.refresh(cx, true);
            }
        });
        match &self.wifi {
            Err(e) => {
                ui.label(RichText::new(sys_words(cx.tr, e)).color(RED));
            }
            Ok(l) if l.is_empty() => {
                ui.label(cx.tr.t("wifi-none"));
            }
            Ok(l) => {
                let mut pick = None;
                egui::Grid::new("wifi-list").striped(true).show(ui, |ui| {
                    for w in l {
                        let chosen = self.chosen.as_ref().is_some_and(|c| c.ssid == w.ssid);
                        if ui.selectable_label(chosen, w.ssid.as_str()).clicked() {
                            pick = Some(w.clone());
                        }
                        ui.label(cx.tr.t_with("wifi-signal", &[("signal", w.signal.into())]));
                        ui.label(if w.secured() {
                            cx.tr
                                .t_with("wifi-secured", &[("kind", w.security.clone().into())])
                        } else {
                            cx.tr.t("wifi-open")
                        });
                        if w.in_use {
                            ui.label(RichText::new(cx.tr.t("wifi-in-use")).color(GREEN));
                        }
                        ui.end_row();
                    }
                });
                if let Some(w) = pick {
                    self.password = zeroize::Zeroizing::default();
                    self.chosen = Some(w);
                }
            }
        }
        self.connect_form(ui, cx, idle);
    }

    fn connect_form<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>, idle: bool) {
        let Some(w) = self.chosen.clone() else {
            return;
        };
        let mut go = false;
        let mut cancel = false;
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.label(
                RichText::new(
                    cx.tr
                        .t_with("wifi-connect-to", &[("ssid", w.ssid.clone().into())]),
                )
                .strong(),
            );
            if w.secured() {
                let r = labelled(
                    ui,
                    cx.tr.t("wifi-password"),
                    egui::TextEdit::singleline(&mut *self.password)
                        .password(true)
                        .desired_width(240.0),
                );
                go = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            } else {
                ui.label(RichText::new(cx.tr.t("wifi-open-warning")).color(AMBER));
            }
            ui.horizontal(|ui| {
                go |= ui
                    .add_enabled(idle, egui::Button::new(cx.tr.t("wifi-connect")))
                    .clicked();
                cancel = ui.button(cx.tr.t("cancel")).clicked();
            });
        });
        if cancel {
            self.chosen = None;
            self.password = zeroize::Zeroizing::default();
            return;
        }
        if !go || !idle {
            return;
        }
        let password = std::mem::take(&mut self.password);
        if w.secured() && !wpa_password_ok(&password) {
            cx.say(cx.tr.t("wifi-password-length"), false);
            return;
        }
        cx.say(
            cx.tr
                .t_with("wifi-connecting", &[("ssid", w.ssid.clone().into())]),
            true,
        );
        let ssid = w.ssid;
        self.start(cx, move |sys| {
            let result = sys.wifi_connect(&ssid, &password);
            drop(password);
            Done::Connected { ssid, result }
        });
    }
}

impl<C: Clock + Send + 'static> super::Station<C> {
    /// Ask `c` for the clock and Wi-Fi instead of the system's tools (the lab's tests).
    pub fn set_system_control(&mut self, c: Arc<dyn SystemControl>) {
        self.network.system.set_control(c);
    }
}

fn device_line<C: Clock>(ui: &mut egui::Ui, cx: &Cx<'_, C>, d: &super::system::Device) {
    let kind = cx.tr.t(match d.kind {
        DeviceKind::Wired => "net-wired",
        DeviceKind::Wifi => "net-wifi",
    });
    let (state, color) = match d.state {
        LinkState::Connected => ("net-connected", GREEN),
        LinkState::Connecting => ("net-connecting", AMBER),
        LinkState::Disconnected => ("net-disconnected", AMBER),
        LinkState::Unavailable => ("net-unavailable", AMBER),
        LinkState::Unmanaged | LinkState::Other => ("net-other", AMBER),
    };
    let mut text = format!("{kind} {}: {}", d.name, cx.tr.t(state));
    if let Some(c) = &d.connection {
        text.push_str(&format!("（{c}）"));
    }
    ui.label(RichText::new(text).color(color));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn typed_jst_times_are_read_or_refused() {
        // 2026-12-06 13:50 JST is 04:50 UTC.
        let t = 1_796_532_600_000;
        assert_eq!(parse_jst("2026-12-06", "13:50"), Ok(t));
        assert_eq!(parse_jst(" 2026/12/06 ", "13:50:00"), Ok(t));
        assert_eq!(parse_jst("20261206", "13:50:17"), Ok(t + 17_000));
        assert_eq!(parse_jst("２０２６－１２－０６", "１３：５０"), Ok(t));
        assert_eq!(
            parse_jst("2026-12-07", "0:00"),
            Ok(t + 10 * 3_600_000 + 600_000)
        );
        for (d, h) in [
            ("2026-02-29", "10:00"),
            ("2026-13-01", "10:00"),
            ("tomorrow", "10:00"),
            ("", ""),
            ("2026-12-06", "24:00"),
            ("2026-12-06", "12:60"),
            ("2026-12-06", "12"),
            ("2026-12-06", "12:5:5:5"),
            ("2026-12-06", "+1:00"),
            ("2026-12-06", "123:00"),
            ("2026-12-06", "12:00:61"),
        ] {
            assert_eq!(parse_jst(d, h), Err(BadTime::Format), "{d} {h}");
        }
        assert_eq!(parse_jst("2016-12-06", "10:00"), Err(BadTime::OutOfRange));
        assert_eq!(parse_jst("2126-12-06", "10:00"), Err(BadTime::OutOfRange));
        assert_eq!(jst_seconds(t + 17_000), "2026-12-06 13:50:17");
    }

    #[test]
    fn wpa_passwords() {
        assert!(!wpa_password_ok("short"));
        assert!(wpa_password_ok("eight888"));
        assert!(wpa_password_ok(&"あ".repeat(63)));
        assert!(!wpa_password_ok(&"x".repeat(64)));
        assert!(wpa_password_ok(&"ab".repeat(32)));
    }
}
