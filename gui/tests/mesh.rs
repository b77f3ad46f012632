//! The mesh with real processes: `kazashi node` laptops on loopback, over real UDP sockets.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A free UDP port on loopback (bound and released; good enough for a test).
fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One `kazashi node` process and its latest status line.
struct Laptop {
    child: Child,
    port: u16,
    status: Arc<Mutex<Option<Value>>>,
    _dir: tempfile::TempDir,
}

impl Drop for Laptop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Spec<'a> {
    fleet: u64,
    town: u64,
    index: usize,
    peers: Vec<String>,
    writes: usize,
    extra: &'a [&'a str],
}

impl Default for Spec<'_> {
    fn default() -> Self {
        Spec {
            fleet: 7,
            town: 1,
            index: 0,
            peers: Vec::new(),
            writes: 0,
            extra: &[],
        }
    }
}

fn start(spec: Spec<'_>, port: u16) -> Laptop {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kazashi"));
    cmd.env("KAZASHI_PASSPHRASE", "drill passphrase")
        .args(["node", "--dir"])
        .arg(dir.path())
        .args(["--drill-fleet", &spec.fleet.to_string()])
        .args(["--town-seed", &spec.town.to_string()])
        .args(["--sites", "5", "--index", &spec.index.to_string()])
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--no-mdns",
        ])
        .args(["--status-every", "200", "--anti-entropy", "2"])
        .args(["--write-every", "40", "--writes", &spec.writes.to_string()])
        .args(spec.extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for p in &spec.peers {
        cmd.args(["--peer", p]);
    }
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
        _dir: dir,
    }
}

impl Laptop {
    fn status(&self) -> Option<Value> {
        self.status.lock().unwrap().clone()
    }
    fn events(&self) -> u64 {
        self.status()
            .and_then(|s| s["events"].as_u64())
            .unwrap_or(0)
    }
    fn digest(&self) -> String {
        self.status()
            .and_then(|s| s["digest"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }
    fn device(&self) -> String {
        wait_for("the laptop's first status", Duration::from_secs(30), || {
            self.status().is_some()
        });
        self.status().unwrap()["device"]
            .as_str()
            .unwrap()
            .to_owned()
    }
    fn addr(&self) -> String {
        format!("{}@127.0.0.1:{}", self.device(), self.port)
    }
    fn link_to(&self, device: &str) -> Option<String> {
        let s = self.status()?;
        s["peers"]
            .as_array()?
            .iter()
            .find(|p| p["device"] == device)
            .and_then(|p| p["link"].as_str().map(str::to_owned))
    }
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while t.elapsed() < limit {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

fn converged(laptops: &[&Laptop], events: u64) -> bool {
    let first = laptops[0].digest();
    laptops
        .iter()
        .all(|l| l.events() == events && l.digest() == first && !first.is_empty())
}

#[test]
fn five_laptops_on_loopback_converge_after_writes_on_every_one() {
    let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
    // A ring, each dialling the next by address alone (ip:port, no device id): events of every
    // origin travel through the others.
    // Indices 1–5: the five shelters' laptops (0 is the command center's).
    let laptops: Vec<Laptop> = (0..5)
        .map(|i| {
            start(
                Spec {
                    index: i + 1,
                    peers: vec![format!("127.0.0.1:{}", ports[(i + 1) % 5])],
                    writes: 10,
                    ..Spec::default()
                },
                ports[i],
            )
        })
        .collect();
    let all: Vec<&Laptop> = laptops.iter().collect();
    wait_for(
        "five laptops to hold the same 50 events",
        Duration::from_secs(90),
        || converged(&all, 50),
    );
    // Every laptop found the next one by address alone, and shows it connected.
    let next: Vec<String> = (0..5).map(|i| laptops[(i + 1) % 5].device()).collect();
    wait_for(
        "each laptop to show the next connected",
        Duration::from_secs(30),
        || {
            laptops
                .iter()
                .zip(&next)
                .all(|(l, n)| l.link_to(n).as_deref() == Some("connected"))
        },
    );
}

#[test]
fn a_laptop_offline_while_others_wrote_catches_up_through_a_third() {
    let (pa, pb, pc) = (free_port(), free_port(), free_port());
    let a = start(
        Spec {
            index: 1,
            writes: 10,
            ..Spec::default()
        },
        pa,
    );
    let b = start(
        Spec {
            index: 2,
            writes: 10,
            peers: vec![a.addr()],
            ..Spec::default()
        },
        pb,
    );
    wait_for("A and B to converge", Duration::from_secs(60), || {
        converged(&[&a, &b], 20)
    });
    let digest = a.digest();
    // A goes away; C, which never met A, joins through B only, and gets A's events too.
    drop(a);
    let c = start(
        Spec {
            index: 3,
            peers: vec![b.addr()],
            ..Spec::default()
        },
        pc,
    );
    wait_for("C to catch up through B", Duration::from_secs(60), || {
        converged(&[&b, &c], 20)
    });
    assert_eq!(c.digest(), digest);
}

#[test]
fn an_unenrolled_laptop_is_refused_and_another_deployment_is_mismatched() {
    let (px, pr, pm) = (free_port(), free_port(), free_port());
    let x = start(
        Spec {
            index: 1,
            writes: 3,
            ..Spec::default()
        },
        px,
    );
    // Same deployment, but keys from another fleet (another administrator): not enrolled here.
    let rogue = start(
        Spec {
            fleet: 99,
            index: 2,
            writes: 5,
            peers: vec![x.addr()],
            ..Spec::default()
        },
        pr,
    );
    // Another city, so another deployment.
    let other = start(
        Spec {
            town: 2,
            index: 3,
            writes: 5,
            peers: vec![x.addr()],
            ..Spec::default()
        },
        pm,
    );
    let (rd, od) = (rogue.device(), other.device());
    wait_for(
        "X to refuse the rogue and mark the other mismatched",
        Duration::from_secs(60),
        || {
            x.link_to(&rd).as_deref() == Some("refused")
                && x.link_to(&od).as_deref() == Some("mismatched")
        },
    );
    wait_for("the dialers to see why", Duration::from_secs(60), || {
        rogue.link_to(&x.device()).as_deref() == Some("refused")
            && other.link_to(&x.device()).as_deref() == Some("mismatched")
    });
    // Nothing of theirs reached X: only its own three check-ins.
    wait_for("X's own writes", Duration::from_secs(30), || {
        x.events() == 3
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(x.events(), 3);
}
