//! What the CLI tests share: the product and lab binaries, a drill laptop's node process and its latest status line, a drill
//! laptop's store arguments, a laptop that writes alone, a free port, a command run with exactly
//! the passphrases given, and reading a command's answer.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One `kazashi node` laptop (killed on drop) and the last status it printed.
pub struct Laptop {
    child: Child,
    pub port: u16,
    status: Arc<Mutex<Option<Value>>>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Laptop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kazashi-lab node` arguments for drill laptop `index` of fleet `fleet` in city `town`, with its
/// store in `dir`, writing `writes` check-ins every `every_ms`.
#[allow(clippy::too_many_arguments)]
pub fn node_args(
    dir: &std::path::Path,
    fleet: u64,
    town: u64,
    index: usize,
    bind: &str,
    port: u16,
    writes: usize,
    every_ms: u64,
) -> Vec<String> {
    let mut v: Vec<String> = vec!["node".into(), "--dir".into(), dir.display().to_string()];
    for (k, val) in [
        ("--drill-fleet", fleet.to_string()),
        ("--town-seed", town.to_string()),
        ("--sites", "5".into()),
        ("--index", index.to_string()),
        ("--port", port.to_string()),
        ("--bind", bind.into()),
        ("--status-every", "200".into()),
        ("--anti-entropy", "2".into()),
        ("--write-every", every_ms.to_string()),
        ("--writes", writes.to_string()),
    ] {
        v.push(k.into());
        v.push(val);
    }
    v.push("--no-mdns".into());
    v
}

impl Laptop {
    /// Run `cmd` (a `kazashi node`, perhaps behind `ip netns exec`) and follow its status.
    pub fn spawn(cmd: Command, port: u16, dir: tempfile::TempDir) -> Laptop {
        let mut l = Laptop::spawn_on(cmd, port);
        l._dir = Some(dir);
        l
    }

    /// As [`Laptop::spawn`], on a folder the test keeps (to stop the laptop and start it again).
    pub fn spawn_on(mut cmd: Command, port: u16) -> Laptop {
        cmd.env("KAZASHI_PASSPHRASE", "drill passphrase")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().unwrap();
        let status = Arc::new(Mutex::new(None));
        let out = child.stdout.take().unwrap();
        let s = status.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    *s.lock().unwrap() = Some(v);
                }
            }
        });
        Laptop {
            child,
            port,
            status,
            _dir: None,
        }
    }

    /// The last status line, whole (`Null` before the first).
    pub fn status(&self) -> Value {
        self.status.lock().unwrap().clone().unwrap_or(Value::Null)
    }
    pub fn manifest_version(&self) -> u64 {
        self.get("manifest_version").as_u64().unwrap_or(0)
    }

    pub fn get(&self, k: &str) -> Value {
        self.status
            .lock()
            .unwrap()
            .as_ref()
            .map(|s| s[k].clone())
            .unwrap_or(Value::Null)
    }
    pub fn events(&self) -> u64 {
        self.get("events").as_u64().unwrap_or(0)
    }
    pub fn digest(&self) -> String {
        self.get("digest").as_str().unwrap_or("").to_owned()
    }
    pub fn device(&self) -> String {
        wait_for("the laptop's first status", Duration::from_secs(30), || {
            self.get("device").is_string()
        });
        self.get("device").as_str().unwrap_or("").to_owned()
    }
    /// `<device>@127.0.0.1:<port>`, for another laptop to dial.
    pub fn addr(&self) -> String {
        format!("{}@127.0.0.1:{}", self.device(), self.port)
    }
    /// The link to `device` as this laptop shows it.
    pub fn link_to(&self, device: &str) -> Option<String> {
        self.get("peers")
            .as_array()?
            .iter()
            .find(|p| p["device"] == device)
            .and_then(|p| p["link"].as_str().map(str::to_owned))
    }
    /// Every peer's link.
    pub fn links(&self) -> Vec<String> {
        self.get("peers")
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(|p| p["link"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A free UDP port on loopback (bound and released; good enough for a test).
pub fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Run `bin` with `args` and, of the passphrase variables, exactly those in `env`.
pub fn run_env(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin);
    c.args(args);
    for k in [
        "KAZASHI_PASSPHRASE",
        "KAZASHI_ROSTER_PASSPHRASE",
        "KAZASHI_ADMIN_PASSPHRASE",
        "KAZASHI_STAFF_PIN",
    ] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

pub fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while t.elapsed() < limit {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

/// Whether all hold exactly `events` events, and the same ones.
pub fn converged(laptops: &[&Laptop], events: u64) -> bool {
    let first = laptops[0].digest();
    !first.is_empty()
        && laptops
            .iter()
            .all(|l| l.events() == events && l.digest() == first)
}

/// The store passphrase the drill tests give every laptop.
pub const PASS: &str = "drill passphrase";

/// The lab binary (`kazashi-lab`): drill laptops, demo, drills, benches, virtual cards.
pub fn lab_bin() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_kazashi-lab").into()
}

/// The product binary (`kazashi`), built beside the lab's by `cargo test --workspace`.
pub fn product_bin() -> std::path::PathBuf {
    let p = lab_bin().with_file_name(format!("kazashi{}", std::env::consts::EXE_SUFFIX));
    assert!(
        p.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (or build -p kazashi first)",
        p.display()
    );
    p
}

/// The product `kazashi` with the drill passphrase in its environment.
pub fn kazashi(args: &[String]) -> Output {
    Command::new(product_bin())
        .args(args)
        .env("KAZASHI_PASSPHRASE", PASS)
        .output()
        .unwrap()
}

/// `kazashi-lab` with the drill passphrase in its environment.
pub fn lab(args: &[String]) -> Output {
    Command::new(lab_bin())
        .args(args)
        .env("KAZASHI_PASSPHRASE", PASS)
        .output()
        .unwrap()
}

/// The folder of drill laptop `index` (fleet 11, city 3) in `dir`, enrolled by the lab on
/// first use; returns the product's arguments that open it.
pub fn store(dir: &Path, index: usize) -> Vec<String> {
    store_in(dir, index, 3)
}

/// As [`store`], in the drill city (and so the deployment) of seed `town`.
pub fn store_in(dir: &Path, index: usize, town: u64) -> Vec<String> {
    let d = dir.display().to_string();
    let args: Vec<String> = [
        "enrol-drill",
        "--dir",
        &d,
        "--drill-fleet",
        "11",
        "--town-seed",
        &town.to_string(),
        "--index",
        &index.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = lab(&args);
    assert!(
        out.status.success(),
        "enrol-drill: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    vec!["--dir".into(), d]
}

/// Run laptop `index` alone (no peers, no mDNS) for a second, writing `writes` check-ins;
/// returns its last status.
pub fn write_alone(dir: &Path, index: usize, writes: usize) -> Value {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut args = node_args(dir, 11, 3, index, "127.0.0.1", port, writes, 20);
    args.extend(["--run-for".into(), "1".into()]);
    let out = lab(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .to_owned();
    serde_json::from_str(&last).unwrap()
}

pub fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn refused(out: &Output, words: &str) {
    assert!(!out.status.success(), "not refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(words), "expected {words:?} in: {err}");
}
