//! The parsers on outputs written from nmcli's and timedatectl's documented formats, and
//! [`Real`] run as real processes against fake `nmcli` and `timedatectl` scripts on `PATH`.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use super::*;
use std::path::Path;

/// `nmcli -t -f IN-USE,SSID,SIGNAL,SECURITY device wifi list`, as NetworkManager 1.42
/// (Debian 12) prints it: a colon inside an SSID escaped as `\:`, a backslash as `\\`, two
/// access points of one network, a hidden network (empty SSID), an open network (empty
/// SECURITY; older versions print `--`), the one in use marked `*`, a line cut short.
const WIFI_LIST: &str = "\
 :避難所-Guest:54:WPA2
*:Shelter\\:5F:82:WPA2
 :避難所-Guest:71:WPA1 WPA2
 ::40:WPA2
 :FreeWiFi:33:
 :Old-AP:20:--
 :back\\\\slash:12:WPA3
 :cut
garbage without fields
";

#[test]
fn the_wifi_list_unescapes_merges_and_sorts() {
    let l = parse_wifi_list(WIFI_LIST);
    let names: Vec<&str> = l.iter().map(|w| w.ssid.as_str()).collect();
    assert_eq!(
        names,
        [
            "Shelter:5F",
            "避難所-Guest",
            "FreeWiFi",
            "Old-AP",
            "back\\slash"
        ]
    );
    assert!(l[0].in_use && l[0].secured());
    assert_eq!(l[0].signal, 82);
    // The strongest of the two access points, with its security.
    assert_eq!((l[1].signal, l[1].security.as_str()), (71, "WPA1 WPA2"));
    assert!(!l[1].in_use);
    assert!(!l[2].secured(), "an empty SECURITY is an open network");
    assert!(!l[3].secured(), "`--` is an open network");
    assert!(l[4].secured());
}

#[test]
fn odd_output_gives_nothing_and_never_panics() {
    for s in [
        "",
        "\n\n",
        ":::",
        "\\",
        ":\\",
        "*:x:999:WPA2\n",
        "*:x:-3:WPA2:extra\n",
        "\u{0}:\u{ffff}:::",
    ] {
        let _ = parse_wifi_list(s);
        let _ = parse_device_status(s);
        let _ = parse_timedatectl_show(s);
        let _ = classify(None, s);
    }
    // A signal out of range is bounded.
    assert_eq!(parse_wifi_list("*:x:999:WPA2\n")[0].signal, 0);
    assert_eq!(parse_wifi_list(" :x:100:WPA2\n")[0].signal, 100);
    assert_eq!(split_terse("a\\"), ["a\\"]);
    assert_eq!(split_terse("a\\:b:c"), ["a:b", "c"]);
    assert_eq!(split_terse(""), [""]);
}

/// `nmcli -t -f DEVICE,TYPE,STATE,CONNECTION device status`.
const DEVICE_STATUS: &str = "\
enp0s31f6:ethernet:connected:Wired connection 1
wlp2s0:wifi:connecting (getting IP configuration):Shelter\\:5F
p2p-dev-wlp2s0:wifi-p2p:disconnected:
lo:loopback:connected (externally):lo
enp3s0:ethernet:unavailable:
";

#[test]
fn the_device_status_keeps_wired_and_wifi() {
    let s = parse_device_status(DEVICE_STATUS);
    assert_eq!(
        s.devices,
        vec![
            Device {
                name: "enp0s31f6".into(),
                kind: DeviceKind::Wired,
                state: LinkState::Connected,
                connection: Some("Wired connection 1".into()),
            },
            Device {
                name: "wlp2s0".into(),
                kind: DeviceKind::Wifi,
                state: LinkState::Connecting,
                connection: Some("Shelter:5F".into()),
            },
            Device {
                name: "enp3s0".into(),
                kind: DeviceKind::Wired,
                state: LinkState::Unavailable,
                connection: None,
            },
        ]
    );
    assert!(s.has_wifi());
    assert!(!parse_device_status("enp0s3:ethernet:connected:x\n").has_wifi());
}

/// `timedatectl show` on a Debian 12 machine with no network time service installed.
const TIMEDATECTL_SHOW: &str = "\
Timezone=Asia/Tokyo
LocalRTC=no
CanNTP=no
NTP=no
NTPSynchronized=no
TimeUSec=Sun 2026-12-06 18:40:12 JST
RTCTimeUSec=Sun 2026-12-06 18:40:12 JST
";

#[test]
fn timedatectl_show_is_read() {
    let t = parse_timedatectl_show(TIMEDATECTL_SHOW);
    assert_eq!(
        t,
        TimeState {
            ntp: Some(false),
            can_ntp: Some(false),
            timezone: Some("Asia/Tokyo".into()),
            local_rtc: Some(false),
        }
    );
    assert_eq!(
        parse_timedatectl_show("NTP=yes\nCanNTP=yes").ntp,
        Some(true)
    );
    assert_eq!(parse_timedatectl_show("NTP=maybe").ntp, None);
    assert_eq!(
        parse_timedatectl_show("no equals sign"),
        TimeState::default()
    );
}

#[test]
fn set_time_text_is_utc() {
    // 2026-12-06 13:50:17 JST is 04:50:17 UTC.
    assert_eq!(
        utc_text(1_796_532_617_000).as_deref(),
        Some("2026-12-06 04:50:17 UTC")
    );
    assert_eq!(utc_text(0).as_deref(), Some("1970-01-01 00:00:00 UTC"));
    assert_eq!(utc_text(u64::MAX), None);
}

#[test]
fn refusals_are_told_apart() {
    let c = |code, s: &str| classify(Some(code), s);
    assert_eq!(
        c(
            1,
            "Error: Failed to add/activate new connection: Not authorized to control networking."
        ),
        SysError::Denied
    );
    assert_eq!(c(1, "Failed to set time: Access denied"), SysError::Denied);
    assert_eq!(
        c(
            1,
            "Failed to set time: Interactive authentication required."
        ),
        SysError::Denied
    );
    assert_eq!(
        c(
            4,
            "Error: Connection activation failed: (7) Secrets were required, but not provided."
        ),
        SysError::WrongPassword
    );
    assert_eq!(
        c(
            2,
            "Error: Failed to add/activate new connection: 802-11-wireless-security.psk: property is invalid"
        ),
        SysError::WrongPassword
    );
    assert_eq!(
        c(2, "Error: No Wi-Fi device found."),
        SysError::NoWifiDevice
    );
    assert_eq!(
        c(10, "Error: No network with SSID 'x' found."),
        SysError::NoSuchNetwork
    );
    assert_eq!(
        c(8, "Error: NetworkManager is not running."),
        SysError::NetworkManagerDown
    );
    let long = format!("\n  Error: {}\nsecond line", "x".repeat(500));
    match c(1, &long) {
        SysError::Failed(m) => {
            assert!(m.starts_with("Error: x"));
            assert_eq!(m.chars().count(), MESSAGE_CHARS);
        }
        e => panic!("{e:?}"),
    }
}

/// A fake tool: appends its arguments (one a line, then `--`) to `<dir>/<name>.log`, and
/// runs `body` (POSIX sh, builtins only: PATH holds nothing but the fakes).
fn fake(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let log = dir.join(format!("{name}.log"));
    let script = format!(
        "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> '{}'; done\necho -- >> '{}'\n{body}\n",
        log.display(),
        log.display()
    );
    let path = dir.join(name);
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The calls a fake received, each as its arguments.
fn calls(dir: &Path, name: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
    let mut out = vec![];
    let mut cur = vec![];
    for l in text.lines() {
        if l == "--" {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(l.to_owned());
        }
    }
    out
}

#[test]
fn the_real_tools_get_these_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fake(
        d,
        "timedatectl",
        "case \"$1\" in show) printf 'NTP=yes\\nCanNTP=yes\\n';; esac; exit 0",
    );
    let list = WIFI_LIST.replace('\\', "\\\\");
    fake(
        d,
        "nmcli",
        &format!(
            r#"case "$*" in
  *"wifi list"*) printf '{list}';;
  *"device status"*) printf 'enp0s3:ethernet:connected:Wired connection 1\n';;
  *"password right pass"*|*"connect FreeWiFi") echo "Device 'wlp2s0' successfully activated.";;
  *connect*) echo 'Error: Connection activation failed: (7) Secrets were required, but not provided.' >&2; exit 4;;
esac"#
        ),
    );
    let real = Real::with_search_path(d);

    // 2026-12-06 13:50:17 JST: network time is on here, so it is turned off first.
    real.set_time(1_796_532_617_000).unwrap();
    assert_eq!(
        calls(d, "timedatectl"),
        [
            vec!["show"],
            vec!["set-ntp", "false"],
            vec!["set-time", "2026-12-06 04:50:17 UTC"],
        ]
    );

    let l = real.wifi_list(true).unwrap();
    assert_eq!(l, parse_wifi_list(WIFI_LIST));
    assert_eq!(l[0].ssid, "Shelter:5F");
    real.wifi_list(false).unwrap();
    let s = real.net_state().unwrap();
    assert_eq!(s.devices.len(), 1);
    real.wifi_connect("Shelter:5F", "right pass").unwrap();
    assert_eq!(
        real.wifi_connect("Shelter:5F", "wrong pass"),
        Err(SysError::WrongPassword)
    );
    real.wifi_connect("FreeWiFi", "").unwrap();
    assert_eq!(
        calls(d, "nmcli"),
        [
            vec![
                "-t",
                "-f",
                "IN-USE,SSID,SIGNAL,SECURITY",
                "device",
                "wifi",
                "list",
                "--rescan",
                "yes"
            ],
            vec![
                "-t",
                "-f",
                "IN-USE,SSID,SIGNAL,SECURITY",
                "device",
                "wifi",
                "list",
                "--rescan",
                "auto"
            ],
            vec![
                "-t",
                "-f",
                "DEVICE,TYPE,STATE,CONNECTION",
                "device",
                "status"
            ],
            vec![
                "device",
                "wifi",
                "connect",
                "Shelter:5F",
                "password",
                "right pass"
            ],
            vec![
                "device",
                "wifi",
                "connect",
                "Shelter:5F",
                "password",
                "wrong pass"
            ],
            vec!["device", "wifi", "connect", "FreeWiFi"],
        ]
    );
}

#[test]
fn a_refused_or_missing_tool_is_said_so() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Network time off: set-time straight away, refused by polkit.
    fake(
        d,
        "timedatectl",
        "case \"$1\" in show) echo NTP=no;; set-time) echo 'Failed to set time: Access denied' >&2; exit 1;; esac",
    );
    let real = Real::with_search_path(d);
    assert_eq!(real.set_time(1_796_532_617_000), Err(SysError::Denied));
    assert_eq!(
        calls(d, "timedatectl"),
        [vec!["show"], vec!["set-time", "2026-12-06 04:50:17 UTC"]]
    );
    // No nmcli on PATH.
    assert_eq!(real.net_state(), Err(SysError::Missing("nmcli")));
    assert_eq!(real.wifi_list(false), Err(SysError::Missing("nmcli")));
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(
        Real::with_search_path(empty.path()).set_time(0),
        Err(SysError::Missing("timedatectl"))
    );
}

/// What `set-time` is given is read by systemd's own timestamp parser (the one timedatectl
/// uses) as the instant meant: `systemd-analyze timestamp` prints its Unix seconds. Skipped
/// (said so) on a machine without systemd-analyze.
#[test]
fn systemd_reads_the_set_time_text_as_the_same_instant() {
    for ms in [1_796_532_617_000u64, 1_767_225_599_000, 4_102_444_799_000] {
        let text = utc_text(ms).unwrap();
        let out = match Command::new("systemd-analyze")
            .args(["timestamp", &text])
            .env("LC_ALL", "C")
            .env("TZ", "Asia/Tokyo")
            .output()
        {
            Ok(o) => o,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("no systemd-analyze here: not checked");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}: {stdout}");
        let want = format!("UNIX seconds: @{}", ms / 1000);
        assert!(stdout.contains(&want), "{text}: {stdout}");
    }
}
