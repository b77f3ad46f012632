//! The laptop's own clock and network, for the station's clock and Wi-Fi screens
//! (`system_view.rs`, issue 29): what the operating system is asked, behind [`SystemControl`]
//! so the window tests can put a fake in its place.
//!
//! [`Real`] runs the tools the appliance (Debian 12, systemd, NetworkManager) has:
//! `timedatectl show` / `set-ntp false` / `set-time` (systemd-timedated, which also writes the
//! hardware clock) and `nmcli` in terse mode (`-t`: fields split by `:`, a `:` or `\` inside a
//! value escaped as `\:` / `\\`). The window runs as the unprivileged `kazashi` user: the
//! appliance's polkit rule (`images/mkosi/mkosi.extra/etc/polkit-1/rules.d/50-kazashi.rules`)
//! grants it exactly these actions. Every call blocks (nmcli may wait for a scan or an
//! activation), so the view runs them on a thread of their own, never on the UI thread.
//!
//! The tools run with `LC_ALL=C`, so their refusals are in English and [`classify`] can tell
//! a refused permission, a wrong Wi-Fi password, no Wi-Fi device and NetworkManager not
//! running apart; anything else keeps the tool's first line. Nothing here panics on odd
//! output: a line that does not parse is skipped. No password is ever in an error.

use kazashi_domain::Millis;
use kazashi_domain::time::CivilDate;
use std::ffi::OsString;
use std::process::{Command, Stdio};

/// One Wi-Fi network as the chooser lists it (one line per SSID: the strongest access point).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wifi {
    pub ssid: String,
    /// 0–100.
    pub signal: u8,
    /// "WPA2", "WPA1 WPA2", "WPA3" …; empty for an open network.
    pub security: String,
    /// The laptop is connected to it now.
    pub in_use: bool,
}

impl Wifi {
    /// Whether a password is asked for.
    pub fn secured(&self) -> bool {
        !self.security.is_empty()
    }
}

/// What kind of network device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Wired,
    Wifi,
}

/// A device's state as NetworkManager reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Connected,
    Connecting,
    Disconnected,
    /// No cable, or the Wi-Fi radio is off.
    Unavailable,
    Unmanaged,
    Other,
}

/// One wired or Wi-Fi device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub name: String,
    pub kind: DeviceKind,
    pub state: LinkState,
    /// The connection (profile) in use, if any.
    pub connection: Option<String>,
}

/// The laptop's wired and Wi-Fi devices (loopback and the rest left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetState {
    pub devices: Vec<Device>,
}

impl NetState {
    pub fn has_wifi(&self) -> bool {
        self.devices.iter().any(|d| d.kind == DeviceKind::Wifi)
    }
}

/// Why the system refused or failed (each has a message in the window's language).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SysError {
    /// The tool is not installed (not on `PATH`).
    Missing(&'static str),
    /// Not permitted (polkit said no).
    Denied,
    /// The Wi-Fi network refused the password.
    WrongPassword,
    /// No Wi-Fi device on this laptop.
    NoWifiDevice,
    /// No network of that name in range.
    NoSuchNetwork,
    /// NetworkManager is not running.
    NetworkManagerDown,
    /// Anything else: the tool's own first line (English).
    Failed(String),
}

/// What the station asks of the operating system. Every call may block for seconds.
pub trait SystemControl: Send + Sync {
    /// Set the system clock (and the hardware clock) to `unix_ms`, turning network time off
    /// first if it is on.
    fn set_time(&self, unix_ms: Millis) -> Result<(), SysError>;
    /// The Wi-Fi networks in range; `rescan`: ask for a fresh scan first.
    fn wifi_list(&self, rescan: bool) -> Result<Vec<Wifi>, SysError>;
    /// Connect to `ssid` (an empty `password` for an open network); the profile is kept, so
    /// the laptop joins it again after a restart.
    fn wifi_connect(&self, ssid: &str, password: &str) -> Result<(), SysError>;
    /// The wired and Wi-Fi devices and their state.
    fn net_state(&self) -> Result<NetState, SysError>;
}

/// The longest tool message kept in [`SysError::Failed`].
const MESSAGE_CHARS: usize = 200;

/// `timedatectl` and `nmcli`, found on `PATH`.
#[derive(Debug, Clone, Default)]
pub struct Real {
    /// `PATH` for the tools; `None`: the window's own.
    path: Option<OsString>,
}

impl Real {
    pub fn new() -> Self {
        Self::default()
    }

    /// The tools are looked up on `path` instead of the window's `PATH` (the tests put fake
    /// `nmcli` and `timedatectl` scripts there).
    pub fn with_search_path(path: impl Into<OsString>) -> Self {
        Real {
            path: Some(path.into()),
        }
    }

    /// Run `tool` with `args`; its standard output, or why it failed.
    fn run(&self, tool: &'static str, args: &[&str]) -> Result<String, SysError> {
        let mut cmd = Command::new(tool);
        cmd.args(args)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(p) = &self.path {
            // Set in the child's environment, PATH is also where the program is looked up.
            cmd.env("PATH", p);
        }
        // "Text file busy": the tool is open for writing somewhere for a moment (a package
        // being upgraded; a process forked while it was written). Try again briefly.
        let mut busy = 0;
        let out = loop {
            match cmd.output() {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && busy < 50 => {
                    busy += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                other => break other,
            }
        };
        let out = match out {
            Ok(o) => o,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SysError::Missing(tool));
            }
            Err(e) => return Err(SysError::Failed(bounded(&format!("{tool}: {e}")))),
        };
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            return Ok(stdout);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(classify(out.status.code(), &format!("{stderr}\n{stdout}")))
    }
}

impl SystemControl for Real {
    fn set_time(&self, unix_ms: Millis) -> Result<(), SysError> {
        let at = utc_text(unix_ms).ok_or_else(|| SysError::Failed("no such time".into()))?;
        let shown = self.run("timedatectl", &["show"])?;
        if parse_timedatectl_show(&shown).ntp == Some(true) {
            self.run("timedatectl", &["set-ntp", "false"])?;
        }
        self.run("timedatectl", &["set-time", &at]).map(|_| ())
    }

    fn wifi_list(&self, rescan: bool) -> Result<Vec<Wifi>, SysError> {
        let rescan = if rescan { "yes" } else { "auto" };
        let out = self.run(
            "nmcli",
            &[
                "-t",
                "-f",
                "IN-USE,SSID,SIGNAL,SECURITY",
                "device",
                "wifi",
                "list",
                "--rescan",
                rescan,
            ],
        )?;
        Ok(parse_wifi_list(&out))
    }

    fn wifi_connect(&self, ssid: &str, password: &str) -> Result<(), SysError> {
        let mut args = vec!["device", "wifi", "connect", ssid];
        if !password.is_empty() {
            args.extend(["password", password]);
        }
        self.run("nmcli", &args).map(|_| ())
    }

    fn net_state(&self) -> Result<NetState, SysError> {
        let out = self.run(
            "nmcli",
            &[
                "-t",
                "-f",
                "DEVICE,TYPE,STATE,CONNECTION",
                "device",
                "status",
            ],
        )?;
        Ok(parse_device_status(&out))
    }
}

/// At most [`MESSAGE_CHARS`] of `s`'s first non-empty line.
fn bounded(s: &str) -> String {
    let line = s
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    line.chars().take(MESSAGE_CHARS).collect()
}

/// A failed tool's exit code and output as a [`SysError`]. nmcli's exit codes (nmcli(1)):
/// 8 NetworkManager is not running, 10 no such connection, device or access point.
pub fn classify(code: Option<i32>, output: &str) -> SysError {
    let low = output.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| low.contains(w));
    if has(&[
        "not authorized",
        "access denied",
        "insufficient privileges",
        "interactive authentication required",
        "permission denied",
    ]) {
        SysError::Denied
    } else if has(&[
        "secrets were required",
        "no secrets",
        "psk: property is invalid",
    ]) {
        SysError::WrongPassword
    } else if has(&["no wi-fi device"]) {
        SysError::NoWifiDevice
    } else if has(&["no network with ssid"]) {
        SysError::NoSuchNetwork
    } else if code == Some(8) || has(&["networkmanager is not running"]) {
        SysError::NetworkManagerDown
    } else {
        SysError::Failed(bounded(output))
    }
}

/// One line of nmcli's terse output split into its fields: `:` separates, `\:` is a colon
/// and `\\` a backslash inside a value.
pub fn split_terse(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let next = chars.next().unwrap_or('\\');
                if let Some(f) = fields.last_mut() {
                    f.push(next);
                }
            }
            ':' => fields.push(String::new()),
            c => {
                if let Some(f) = fields.last_mut() {
                    f.push(c);
                }
            }
        }
    }
    fields
}

/// `nmcli -t -f IN-USE,SSID,SIGNAL,SECURITY device wifi list`: one entry per SSID (the
/// strongest access point; in use if any of its access points is), hidden networks (no SSID)
/// left out; in use first, then by signal. Lines of another shape are skipped.
pub fn parse_wifi_list(out: &str) -> Vec<Wifi> {
    let mut list: Vec<Wifi> = Vec::new();
    for line in out.lines() {
        let [in_use, ssid, signal, security] = match <[String; 4]>::try_from(split_terse(line)) {
            Ok(f) => f,
            Err(_) => continue,
        };
        if ssid.is_empty() || ssid == "--" {
            continue;
        }
        let signal = signal.trim().parse::<u8>().unwrap_or(0).min(100);
        let security = match security.trim() {
            "--" => String::new(),
            s => s.to_owned(),
        };
        let in_use = in_use.trim() == "*";
        match list.iter_mut().find(|w| w.ssid == ssid) {
            Some(w) => {
                w.in_use |= in_use;
                if signal > w.signal {
                    w.signal = signal;
                    w.security = security;
                }
            }
            None => list.push(Wifi {
                ssid,
                signal,
                security,
                in_use,
            }),
        }
    }
    list.sort_by(|a, b| {
        b.in_use
            .cmp(&a.in_use)
            .then(b.signal.cmp(&a.signal))
            .then(a.ssid.cmp(&b.ssid))
    });
    list
}

/// `nmcli -t -f DEVICE,TYPE,STATE,CONNECTION device status`: the ethernet and wifi devices.
pub fn parse_device_status(out: &str) -> NetState {
    let mut devices = Vec::new();
    for line in out.lines() {
        let [name, kind, state, connection] = match <[String; 4]>::try_from(split_terse(line)) {
            Ok(f) => f,
            Err(_) => continue,
        };
        let kind = match kind.as_str() {
            "ethernet" => DeviceKind::Wired,
            "wifi" => DeviceKind::Wifi,
            _ => continue,
        };
        // "connected", "connected (externally)", "connecting (getting IP configuration)", …
        let state = match state.split(' ').next().unwrap_or("") {
            "connected" => LinkState::Connected,
            "connecting" => LinkState::Connecting,
            "disconnected" | "deactivating" => LinkState::Disconnected,
            "unavailable" => LinkState::Unavailable,
            "unmanaged" => LinkState::Unmanaged,
            _ => LinkState::Other,
        };
        let connection = (!connection.is_empty() && connection != "--").then_some(connection);
        devices.push(Device {
            name,
            kind,
            state,
            connection,
        });
    }
    NetState { devices }
}

/// What `timedatectl show` says (the keys the station needs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeState {
    /// Network time on (`NTP=yes`).
    pub ntp: Option<bool>,
    /// A network time service is installed (`CanNTP`).
    pub can_ntp: Option<bool>,
    pub timezone: Option<String>,
    /// The hardware clock keeps local time, not UTC (`LocalRTC`).
    pub local_rtc: Option<bool>,
}

/// `timedatectl show`: `Key=Value` lines; unknown keys and odd lines are skipped.
pub fn parse_timedatectl_show(out: &str) -> TimeState {
    let yes = |v: &str| match v {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    };
    let mut t = TimeState::default();
    for line in out.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "NTP" => t.ntp = yes(v),
            "CanNTP" => t.can_ntp = yes(v),
            "Timezone" => t.timezone = (!v.is_empty()).then(|| v.to_owned()),
            "LocalRTC" => t.local_rtc = yes(v),
            _ => {}
        }
    }
    t
}

/// `unix_ms` as `timedatectl set-time` takes it, in UTC whatever the laptop's time zone:
/// `2026-12-06 09:40:00 UTC` (systemd.time(7)); `None` out of the calendar's range.
pub fn utc_text(unix_ms: Millis) -> Option<String> {
    const DAY: u64 = 86_400_000;
    let day = CivilDate::from_days_since_epoch(i64::try_from(unix_ms / DAY).ok()?)?;
    let secs = (unix_ms % DAY) / 1000;
    Some(format!(
        "{day} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    ))
}

#[cfg(test)]
#[path = "system_tests.rs"]
mod tests;
