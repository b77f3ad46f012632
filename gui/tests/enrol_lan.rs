//! Enrolment over the LAN with the product binary, each side its own process: the
//! administrator's `kazashi deployment serve-enrol`, a fresh laptop's `kazashi enrol --send`,
//! `kazashi deployment approve` from the request the service kept, and the laptop opening at
//! its site with `kazashi node`. A manifest under a mistyped deployment-key fingerprint is
//! refused with nothing installed; junk datagrams on the service's port and a laptop that gives
//! up waiting leave the service serving.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use common::{ADMIN_PASS, LAPTOP_PASS, ROSTER_PASS, command, kazashi, ok, refused, s};

/// `kazashi deployment serve-enrol` (killed on drop) and every JSON line it printed.
struct Service {
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    fn start(admin: &str) -> Service {
        let mut child = command(
            &[
                "deployment",
                "serve-enrol",
                "--dir",
                admin,
                "--port",
                "0",
                "--bind",
                "127.0.0.1",
                "--no-mdns",
            ],
            &[],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                l.lock().unwrap().push(serde_json::from_str(&line).unwrap());
            }
        });
        Service { child, lines }
    }

    /// The first line with `key`, from index `from` on, waited for.
    fn wait_line(&self, key: &str, from: usize) -> (usize, Value) {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(60) {
            if let Some((i, v)) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, v)| v.get(key).is_some())
            {
                return (i, v.clone());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no {key:?} line from serve-enrol");
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

/// `kazashi enrol --send` as a child process.
fn send(laptop: &str, to: &str, admin_fp: &str, wait: &str, env: &[(&str, &str)]) -> Child {
    command(
        &[
            "enrol",
            "--dir",
            laptop,
            "--label",
            "第一小学校 受付2",
            "--send",
            to,
            "--admin-fingerprint",
            admin_fp,
            "--wait",
            wait,
        ],
        env,
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap()
}

#[test]
fn a_laptop_enrols_over_the_lan_and_opens_at_its_site() {
    let tmp = tempfile::tempdir().unwrap();
    let admin = tmp.path().join("admin");
    let laptop = tmp.path().join("laptop");
    let (a, l) = (s(&admin), s(&laptop));
    let admin_env = [("KAZASHI_ADMIN_PASSPHRASE", ADMIN_PASS)];
    let laptop_env = [
        ("KAZASHI_PASSPHRASE", LAPTOP_PASS),
        ("KAZASHI_ROSTER_PASSPHRASE", ROSTER_PASS),
    ];

    // The administrator's folder with a pinned roster.
    let sites = tmp.path().join("sites.csv");
    std::fs::write(
        &sites,
        "code,name,kind,capacity\nS1,第一小学校,shelter,100\nHQ,災害対策本部,command,\n",
    )
    .unwrap();
    let v1 = ok(&kazashi(
        &[
            "deployment",
            "init",
            "--dir",
            &a,
            "--municipality",
            "かざし市",
            "--shelters",
            "--sites",
            &s(&sites),
        ],
        &admin_env,
    ));
    let admin_fp = v1["admin_fingerprint"].as_str().unwrap().to_owned();
    let roster_csv = tmp.path().join("roster.csv");
    std::fs::write(
        &roster_csv,
        "宛名番号,世帯番号,氏名,氏名カナ,生年月日,性別,住所\n\
         A0001,H001,髙橋 太郎,タカハシ タロウ,1950-04-01,1,かざし市中央1\n",
    )
    .unwrap();
    let roster = admin.join("roster.db");
    ok(&kazashi(
        &["roster", "import", &s(&roster_csv), "--out", &s(&roster)],
        &[("KAZASHI_ROSTER_PASSPHRASE", ROSTER_PASS)],
    ));
    ok(&kazashi(
        &[
            "deployment",
            "pin-roster",
            "--dir",
            &a,
            "--roster",
            &s(&roster),
        ],
        &[admin_env[0], ("KAZASHI_ROSTER_PASSPHRASE", ROSTER_PASS)],
    ));

    // The service, and its address as it prints it.
    let mut service = Service::start(&a);
    let (_, serving) = service.wait_line("serving", 0);
    assert_eq!(serving["version"], 2);
    let to = serving["addrs"][0].as_str().unwrap().to_owned();
    let port: u16 = to.rsplit(':').next().unwrap().parse().unwrap();

    // Junk datagrams on its port: dropped, the service goes on.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for n in [1usize, 40, 1200, 1500] {
        let junk: Vec<u8> = (0..n).map(|i| (i * 37 + n) as u8).collect();
        udp.send_to(&junk, ("127.0.0.1", port)).unwrap();
    }
    // Flags checked before anything is made: no fingerprint, a bad address.
    refused(
        &kazashi(&["enrol", "--dir", &l, "--send", &to], &laptop_env),
        "--admin-fingerprint",
    );
    refused(
        &kazashi(
            &[
                "enrol",
                "--dir",
                &l,
                "--send",
                "nowhere",
                "--admin-fingerprint",
                &admin_fp,
            ],
            &laptop_env,
        ),
        "not an enrolment address",
    );
    assert!(!laptop.exists());

    // The laptop sends its request with a mistyped deployment-key fingerprint.
    let mut wrong: Vec<char> = admin_fp.chars().collect();
    wrong[0] = if wrong[0] == '1' { '2' } else { '1' };
    let wrong: String = wrong.into_iter().collect();
    let first = send(&l, &to, &wrong, "60", &laptop_env);
    let (at, got) = service.wait_line("request", 0);
    let request = &got["request"];
    assert_eq!(request["label"], "第一小学校 受付2");
    assert!(request["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    let file = request["file"].as_str().unwrap().to_owned();
    assert!(file.starts_with(&s(&admin.join("requests"))), "{file}");
    let fingerprint = request["fingerprint"].as_str().unwrap().to_owned();
    // The administrator compares the fingerprint read out and approves, as for a USB request.
    let v3 = ok(&kazashi(
        &[
            "deployment",
            "approve",
            "--dir",
            &a,
            "--request",
            &file,
            "--fingerprint",
            &fingerprint,
            "--site",
            "S1",
        ],
        &admin_env,
    ));
    assert_eq!(v3["version"], 3);
    service.wait_line("sent", at);
    let out = first.wait_with_output().unwrap();
    refused(&out, "does not have the fingerprint");
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was changed"));
    // Nothing installed: the laptop still waits for a manifest.
    refused(
        &kazashi(
            &[
                "node",
                "--dir",
                &l,
                "--run-for",
                "1",
                "--no-mdns",
                "--port",
                "0",
            ],
            &laptop_env,
        ),
        "kazashi enrol --install",
    );

    // Again with the right fingerprint: approved already, so the manifest comes at once.
    let (sent_at, _) = service.wait_line("sent", at);
    let out = send(&l, &to, &admin_fp, "60", &laptop_env)
        .wait_with_output()
        .unwrap();
    let done = ok(&out);
    assert_eq!(done["via"], "lan");
    assert_eq!(done["version"], 3);
    assert_eq!(done["site"], "S1");
    service.wait_line("sent", sent_at + 1);
    refused(
        &kazashi(&["enrol", "--dir", &l], &laptop_env),
        "enrolled already",
    );

    // A second laptop nobody approves gives up with a clear message; its request stays.
    let other = tmp.path().join("other");
    let out = send(&s(&other), &to, &admin_fp, "2", &laptop_env)
        .wait_with_output()
        .unwrap();
    refused(&out, "no manifest came from the administrator within 2 s");
    let waiting = std::fs::read_dir(admin.join("requests")).unwrap().count();
    assert_eq!(waiting, 2);
    let (_, left) = service.wait_line("left", 0);
    assert_ne!(left["left"]["device"], request["device"]);
    assert!(service.running(), "the service stopped");

    // The roster goes with the laptop (USB for now) and it opens at S1.
    for f in ["roster.db", "roster.db.text", "roster.db.kdf"] {
        std::fs::copy(admin.join(f), laptop.join(f)).unwrap();
    }
    let status = ok(&kazashi(
        &[
            "node",
            "--dir",
            &l,
            "--run-for",
            "1",
            "--no-mdns",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
        ],
        &laptop_env,
    ));
    assert_eq!(status["manifest_version"], 3);
    let device = std::fs::read_to_string(&file).unwrap();
    assert!(
        device.contains(status["device"].as_str().unwrap()),
        "{status}"
    );
}
