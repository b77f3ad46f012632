//! The deployment's whole life from zero with the product binary, in separate processes over
//! real sockets: `kazashi deployment init` and a roster imported and pinned in an administrator's
//! folder; four laptops enrolled (`kazashi enrol` request, `deployment approve`, `enrol
//! --install`), each with the roster; three of them meshed on loopback by typed-in addresses (no
//! mDNS), a check-in on laptop 1 reaching 2 and 3; a manifest revoking laptop 3 from a cut-off
//! and pinning a new roster version, brought by hand to laptop 1 with that roster and spread
//! from there over the mesh, the roster too (laptop 2 switches to it while running); laptop 3's
//! later events and its connections refused while its earlier events stay; the fourth laptop
//! caught up by USB bundle.
//! Check-ins are written by the lab's `kazashi-lab node` on the product-enrolled folders (the
//! product has no headless check-in command); everything else is `kazashi`.
//!
//! The staff card goes through a real pcscd with the lab's virtual card on the vpcd reader
//! (skipped, with the reason, where pcscd or root is missing): a card enrolled on the laptop,
//! and one from the manifest's staff list (`card staff-key`, `deployment staff add --card`,
//! the new version installed, `staff check --card` with the card's PIN).
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::{Laptop, PASS, converged, free_port, lab_bin, product_bin, run_env, wait_for};
use kazashi_tests::card_rig::{self, Rig, card_present};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const ADMIN_PASS: &str = "administrator passphrase";
const ROSTER_PASS: &str = "roster passphrase";
/// Generous: the machine running the tests may be loaded.
const LIMIT: Duration = Duration::from_secs(60);

/// The environment of a laptop's commands: its store's and its roster store's passphrases.
const LAPTOP: [(&str, &str); 2] = [
    ("KAZASHI_PASSPHRASE", PASS),
    ("KAZASHI_ROSTER_PASSPHRASE", ROSTER_PASS),
];
/// The administrator's: the deployment key's and the roster store's.
const ADMIN: [(&str, &str); 2] = [
    ("KAZASHI_ADMIN_PASSPHRASE", ADMIN_PASS),
    ("KAZASHI_ROSTER_PASSPHRASE", ROSTER_PASS),
];

fn kazashi(args: &[&str], env: &[(&str, &str)]) -> Output {
    run_env(&product_bin(), args, env)
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The last line of a successful command's output, as JSON.
fn ok(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn refused(out: &Output, words: &str) {
    assert!(!out.status.success(), "not refused: {out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(words), "expected {words:?} in: {err}");
}

/// `ok` holds at every look for all of `d`.
fn holds(what: &str, d: Duration, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while t.elapsed() < d {
        assert!(ok(), "{what}: no longer so after {:?}", t.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A roster store's three files, copied from one folder to another (the USB stick's way).
fn copy_roster(from: &Path, to: &Path) {
    for f in ["roster.db", "roster.db.text", "roster.db.kdf"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
}

/// The administrator's folder with a deployment of four shelters and the synthetic city's
/// roster imported and pinned.
struct Admin {
    root: PathBuf,
    dir: PathBuf,
    /// The deployment key's fingerprint, as the administrator reads it out.
    fingerprint: String,
    /// The folder of the pinned roster store.
    roster: PathBuf,
    roster_hash: String,
}

/// One enrolled laptop's folder.
struct Enrolled {
    dir: PathBuf,
    device: String,
}

impl Enrolled {
    fn store(&self) -> Vec<String> {
        vec!["--dir".into(), s(&self.dir)]
    }
}

impl Admin {
    /// `kazashi deployment init`, a roster from `kazashi-lab roster-sample` through `kazashi
    /// roster import`, and `deployment pin-roster`.
    fn init(root: &Path) -> Admin {
        let dir = root.join("admin");
        let sites = root.join("sites.csv");
        std::fs::write(
            &sites,
            "code,name,kind,capacity,shelter_type,precincts\n\
             S1,第一小学校,shelter,100,1,\n\
             S2,第二小学校,shelter,100,1,\n\
             S3,第三中学校,shelter,100,1,\n\
             S4,公民館,shelter,50,2,\n",
        )
        .unwrap();
        let v1 = ok(&kazashi(
            &[
                "deployment",
                "init",
                "--dir",
                &s(&dir),
                "--municipality",
                "かざし市",
                "--title",
                "令和8年豪雨",
                "--shelters",
                "--sites",
                &s(&sites),
            ],
            &ADMIN,
        ));
        assert_eq!(v1["version"], 1);
        let fingerprint = v1["admin_fingerprint"].as_str().unwrap().to_owned();
        let csv = root.join("roster.csv");
        let sample = ok(&run_env(
            &lab_bin(),
            &["roster-sample", "--out", &s(&csv)],
            &[],
        ));
        let roster = dir.join("roster-v1");
        let hash = import_roster(&csv, &roster);
        assert_eq!(hash, sample["hash"].as_str().unwrap());
        let admin = Admin {
            root: root.to_owned(),
            dir,
            fingerprint,
            roster,
            roster_hash: hash,
        };
        let pinned = admin.pin(&admin.roster.clone());
        assert_eq!(pinned["version"], 2);
        assert_eq!(pinned["roster"], admin.roster_hash.as_str());
        admin
    }

    fn manifest(&self) -> PathBuf {
        self.dir.join("manifest.kzm")
    }

    /// `deployment pin-roster` of the roster store in `folder`.
    fn pin(&self, folder: &Path) -> Value {
        ok(&kazashi(
            &[
                "deployment",
                "pin-roster",
                "--dir",
                &s(&self.dir),
                "--roster",
                &s(&folder.join("roster.db")),
            ],
            &ADMIN,
        ))
    }

    /// A fresh laptop asks to be enrolled (`kazashi enrol`) and the administrator approves it
    /// at `site` with the fingerprint read out.
    fn enrol(&self, name: &str, site: &str) -> Enrolled {
        let dir = self.root.join(name);
        let req = ok(&kazashi(
            &[
                "enrol",
                "--dir",
                &s(&dir),
                "--label",
                &format!("{site} 受付"),
            ],
            &LAPTOP,
        ));
        let typed = req["fingerprint"].as_str().unwrap().replace(' ', "");
        ok(&kazashi(
            &[
                "deployment",
                "approve",
                "--dir",
                &s(&self.dir),
                "--request",
                &s(&dir.join("enrol-request.json")),
                "--fingerprint",
                &typed,
                "--site",
                site,
            ],
            &ADMIN,
        ));
        Enrolled {
            dir,
            device: req["device"].as_str().unwrap().to_owned(),
        }
    }

    /// The laptop takes the roster store of `roster` and the latest manifest (USB).
    fn install(&self, laptop: &Enrolled, roster: &Path) -> Value {
        copy_roster(roster, &laptop.dir);
        ok(&kazashi(
            &[
                "enrol",
                "--dir",
                &s(&laptop.dir),
                "--install",
                &s(&self.manifest()),
                "--admin-fingerprint",
                &self.fingerprint,
            ],
            &LAPTOP,
        ))
    }
}

/// `kazashi roster import` of `csv` into `folder`/roster.db; its hash.
fn import_roster(csv: &Path, folder: &Path) -> String {
    std::fs::create_dir_all(folder).unwrap();
    let out = ok(&kazashi(
        &[
            "roster",
            "import",
            &s(csv),
            "--out",
            &s(&folder.join("roster.db")),
            "--insecure-fast-kdf",
        ],
        &ADMIN,
    ));
    out["hash"].as_str().unwrap().to_owned()
}

/// A laptop on the mesh at `port`, dialling `peers` (`<device>@127.0.0.1:<port>`). With
/// `writes`, the lab's `kazashi-lab node` on the product-enrolled folder writes that many
/// check-ins of consecutive households from `first`; without, it is the product's `kazashi node`.
fn start(laptop: &Enrolled, port: u16, peers: &[String], writes: Option<(usize, usize)>) -> Laptop {
    let mut cmd = match writes {
        Some(_) => Command::new(lab_bin()),
        None => Command::new(product_bin()),
    };
    cmd.arg("node").args(laptop.store());
    for (k, v) in [
        ("--port", port.to_string()),
        ("--bind", "127.0.0.1".into()),
        ("--status-every", "200".into()),
        ("--anti-entropy", "2".into()),
    ] {
        cmd.args([k, &v]);
    }
    cmd.arg("--no-mdns");
    if let Some((n, first)) = writes {
        cmd.args(["--write-every", "40", "--writes", &n.to_string()]);
        cmd.args(["--first-household", &first.to_string()]);
    }
    for p in peers {
        cmd.args(["--peer", p]);
    }
    cmd.env("KAZASHI_ROSTER_PASSPHRASE", ROSTER_PASS);
    Laptop::spawn_on(cmd, port)
}

fn addr(laptop: &Enrolled, port: u16) -> String {
    format!("{}@127.0.0.1:{port}", laptop.device)
}

/// The roster CSV without its last row: the municipality's next version (one person moved
/// away). Written beside `csv`.
fn next_roster_csv(csv: &Path) -> PathBuf {
    let text = std::fs::read_to_string(csv).unwrap();
    let body = text.trim_end_matches(['\r', '\n']);
    let cut = body.rfind('\n').unwrap();
    let next = csv.with_file_name("roster-next.csv");
    std::fs::write(&next, format!("{}\n", &body[..cut].trim_end_matches('\r'))).unwrap();
    next
}

/// `kazashi bundle` on a stopped laptop's folder.
fn bundle(laptop: &Enrolled, args: &[&str]) -> Output {
    let mut a: Vec<String> = vec!["bundle".into(), args[0].into()];
    a.extend(laptop.store());
    a.extend(args[1..].iter().map(|s| s.to_string()));
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    kazashi(&a, &LAPTOP)
}

#[test]
fn a_deployment_from_zero_meshes_revokes_a_laptop_and_catches_up_by_usb() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let admin = Admin::init(tmp.path());

    // Four laptops ask and are approved (versions 3–6); each installs version 6 with the roster.
    let sites = ["S1", "S2", "S3", "S4"];
    let laptops: Vec<Enrolled> = sites
        .iter()
        .enumerate()
        .map(|(i, site)| admin.enrol(&format!("laptop{}", i + 1), site))
        .collect();
    for (l, site) in laptops.iter().zip(sites) {
        let installed = admin.install(l, &admin.roster);
        assert_eq!(installed["version"], 6);
        assert_eq!(installed["site"], site);
    }
    let [l1, l2, l3, l4] = &laptops[..] else {
        unreachable!()
    };
    eprintln!(
        "deployment and four laptops enrolled: {:?}",
        started.elapsed()
    );

    // Three of them on the mesh by typed-in addresses: 1 and 3 write, 2 only relays.
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let book = [addr(l1, ports[0]), addr(l2, ports[1]), addr(l3, ports[2])];
    let others = |i: usize| -> Vec<String> {
        (0..3)
            .filter(|j| *j != i)
            .map(|j| book[j].clone())
            .collect()
    };
    let n1 = start(l1, ports[0], &others(0), Some((5, 0)));
    let n2 = start(l2, ports[1], &others(1), None);
    let n3 = start(l3, ports[2], &others(2), Some((3, 200)));
    wait_for(
        "three laptops to hold the same 8 events (5 from laptop 1, 3 from laptop 3)",
        LIMIT,
        || converged(&[&n1, &n2, &n3], 8),
    );
    for n in [&n1, &n2, &n3] {
        assert_eq!(n.manifest_version(), 6);
        assert_eq!(n.links().len(), 2, "{}", n.status());
    }
    // Laptop 2 wrote nothing: what it holds came over the mesh, from 1 and from 3.
    let from = |n: &Laptop, who: &Enrolled| -> u64 {
        n.get("peers")
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["device"] == who.device.as_str())
            .map(|p| p["events_in"].as_u64().unwrap_or(0))
            .sum()
    };
    assert!(from(&n2, l1) + from(&n2, l3) >= 8, "{}", n2.status());
    let digest8 = n1.digest();
    eprintln!("three laptops meshed and in step: {:?}", started.elapsed());

    // Laptop 3 is stolen: gone from the mesh; the administrator revokes it from now and, in
    // the same round, pins the municipality's next roster.
    drop(n3);
    let cut_off = now_ms();
    let v7 = ok(&kazashi(
        &[
            "deployment",
            "revoke",
            "--dir",
            &s(&admin.dir),
            &l3.device,
            "--from",
            &cut_off.to_string(),
        ],
        &ADMIN,
    ));
    assert_eq!(v7["version"], 7);
    let roster2 = admin.dir.join("roster-v2");
    let hash2 = import_roster(&next_roster_csv(&admin.root.join("roster.csv")), &roster2);
    assert_ne!(hash2, admin.roster_hash);
    let v8 = admin.pin(&roster2);
    assert_eq!(v8["version"], 8);
    assert_eq!(v8["roster"], hash2.as_str());

    // Version 8 and its roster go to laptop 1 by hand, which restarts; laptop 2 gets the
    // manifest over the mesh, then the roster it pins, from laptop 1, and switches to it while
    // running.
    assert_eq!(n2.get("roster")["in_use"], admin.roster_hash[..8]);
    drop(n1);
    assert_eq!(admin.install(l1, &roster2)["version"], 8);
    let n1 = start(l1, ports[0], &others(0), None);
    wait_for(
        "laptop 2 to adopt version 8 from laptop 1 over the mesh",
        LIMIT,
        || n1.manifest_version() == 8 && n2.manifest_version() == 8,
    );
    // Laptop 3's events from before the cut-off stay, on the one that adopted it and on the
    // one that opened with it.
    wait_for("laptops 1 and 2 to hold the same 8 events", LIMIT, || {
        converged(&[&n1, &n2], 8)
    });
    assert_eq!(n1.digest(), digest8);
    assert_eq!(n1.get("roster")["in_use"], hash2[..8], "{}", n1.status());
    wait_for("laptop 2 to switch to the new roster", LIMIT, || {
        n2.get("roster")["in_use"] == hash2[..8] && n2.get("roster")["state"] == "in_use"
    });
    assert_eq!(n2.get("roster")["switches"], 1, "{}", n2.status());
    // The switch is on laptop 2's audit trail (issue 24): one signed record, which laptop 1
    // takes over the mesh like any event.
    wait_for(
        "laptops 1 and 2 to hold the 8 events and the switch's audit record",
        LIMIT,
        || converged(&[&n1, &n2], 9),
    );
    let digest9 = n1.digest();
    assert_ne!(digest9, digest8);
    // Written to its folder, encrypted under its own roster passphrase.
    let info = ok(&kazashi(
        &["roster", "info", &s(&l2.dir.join("roster.db"))],
        &LAPTOP,
    ));
    assert_eq!(info["hash"], hash2.as_str());
    eprintln!("version 8 and its roster spread: {:?}", started.elapsed());

    // Laptop 3, still on version 6, writes four check-ins alone (elsewhere, another port)...
    let n3 = start(l3, free_port(), &[], Some((4, 250)));
    wait_for(
        "laptop 3 to write 4 check-ins after the cut-off",
        LIMIT,
        || n3.events() == 12,
    );
    drop(n3);
    // ... then comes back to the mesh: its connections are refused both ways round.
    let n3 = start(l3, ports[2], &others(2), None);
    // (Laptop 3's view is its own new process's: each refusal it shows is a fresh one.)
    wait_for("laptops 1 and 2 to refuse laptop 3", LIMIT, || {
        n3.events() == 12
            && [l1, l2]
                .iter()
                .all(|l| n3.link_to(&l.device).as_deref() == Some("refused"))
            && [&n1, &n2]
                .iter()
                .all(|n| n.link_to(&l3.device).as_deref() == Some("refused"))
    });
    // Nothing of what it wrote after the cut-off gets in, while it keeps trying for longer
    // than an anti-entropy round and a redial.
    holds(
        "laptops 1 and 2 to keep their 9 events",
        Duration::from_secs(5),
        || converged(&[&n1, &n2], 9) && n2.digest() == digest9,
    );
    eprintln!("laptop 3 refused: {:?}", started.elapsed());
    drop(n3);
    drop(n2);
    let digest_1 = n1.digest();
    drop(n1);

    // Laptop 3's stick, written after its cut-off, is refused whole by laptop 1, which keeps
    // its 9 events.
    let stick = tmp.path().join("usb");
    std::fs::create_dir_all(&stick).unwrap();
    let from_3 = stick.join("laptop3.kzb");
    assert_eq!(
        ok(&bundle(l3, &["export", "--out", &s(&from_3), "--all"]))["events"],
        12
    );
    refused(&bundle(l1, &["import", &s(&from_3)]), "revoked");
    // And by laptop 2, which opens on the roster it received over the mesh.
    refused(&bundle(l2, &["import", &s(&from_3)]), "revoked");

    // Laptop 4 never saw the mesh: a USB bundle from laptop 1 brings version 8 and all 9
    // events (5 of S1, 3 of S3 from before the cut-off) and laptop 2's audit record.
    let from_1 = stick.join("laptop1.kzb");
    let e = ok(&bundle(l1, &["export", "--out", &s(&from_1), "--all"]));
    assert_eq!(e["events"], 9);
    let i = ok(&bundle(l4, &["import", &s(&from_1)]));
    assert_eq!(i["added"], 9, "{i}");
    assert_eq!(i["manifest_adopted"], 8, "{i}");
    assert_eq!(i["manifest_version"], 8);
    assert_eq!(i["added_by_site"]["S1"], 5, "{i}");
    assert_eq!(i["added_by_site"]["S3"], 3, "{i}");
    assert_eq!(i["author"], l1.device.as_str());
    // Version 8 pins the next roster: laptop 4 takes it from the stick too.
    copy_roster(&roster2, &l4.dir);
    // Laptop 3's stick is refused there too, now that laptop 4 knows of the revocation.
    refused(&bundle(l4, &["import", &s(&from_3)]), "revoked");
    let last = ok(&kazashi(
        &[
            "node",
            "--dir",
            &s(&l4.dir),
            "--run-for",
            "1",
            "--no-mdns",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
        ],
        &LAPTOP,
    ));
    assert_eq!(last["events"], 9, "{last}");
    assert_eq!(last["manifest_version"], 8);
    assert_eq!(last["digest"], digest_1.as_str());
    assert_eq!(last["roster"]["in_use"], hash2[..8], "{last}");
    eprintln!("end to end: {:?}", started.elapsed());
}

/// `kazashi-lab card emulate`, holding a virtual card on the vpcd reader until dropped.
struct Emulated(Child);

impl Drop for Emulated {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        card_rig::wait_for(Duration::from_secs(10), || card_present(false));
    }
}

/// A card with the key and certificate of `fixture` (1–8), held by `resident` of the city.
fn emulate(fixture: usize, resident: usize) -> Emulated {
    assert!(
        card_rig::wait_for(Duration::from_secs(10), || card_present(false)),
        "a card is still on the reader"
    );
    let child = Command::new(lab_bin())
        .args(["card", "emulate", "--seconds", "60"])
        .args(["--resident", &resident.to_string()])
        .args(["--fixture", &fixture.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let card = Emulated(child);
    assert!(
        card_rig::wait_for(Duration::from_secs(10), || card_present(true)),
        "no card on the reader"
    );
    card
}

#[test]
fn a_staff_card_unlocks_an_enrolled_laptop_through_pcscd() {
    let rig = match Rig::start() {
        Ok(r) => r,
        Err(why) => {
            card_rig::skip(&format!("deploy_e2e staff card: {why}"));
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let admin = Admin::init(tmp.path());
    let l = admin.enrol("laptop1", "S1");
    assert_eq!(admin.install(&l, &admin.roster)["version"], 3);
    let dir = s(&l.dir);
    let env = |pin: &'static str| -> Vec<(&'static str, &'static str)> {
        let mut e = LAPTOP.to_vec();
        e.extend([("KAZASHI_STAFF_PIN", pin), ("PIN", pin)]);
        e
    };
    let staff = |cmd: &str, pin: &'static str| {
        let mut a = vec!["staff", cmd, "--dir", &dir, "--operator", "sekinin1"];
        if cmd == "add" {
            a.extend(["--role", "lead"]);
        }
        kazashi(&a, &env(pin))
    };
    let tap = |extra: &[&str], pin: &'static str| {
        let mut a = vec!["card", "tap", "--dir", &dir];
        a.extend_from_slice(extra);
        kazashi(&a, &env(pin))
    };
    ok(&staff("add", "2468"));

    // No card on the reader: no unlock.
    let none = tap(&[], "2468");
    assert!(!none.status.success(), "{none:?}");
    assert!(!String::from_utf8_lossy(&none.stdout).contains("sekinin1"));

    // The lead's own card (resident 40 of the city whose roster is pinned here): read through
    // pcscd, it is matched to the roster with its PIN, then bound as this staff member's login.
    let card = emulate(1, 40);
    let first = ok(&tap(&[], "1234"));
    assert_eq!(first["staff"], Value::Null, "{first}");
    assert_eq!(ok(&tap(&["--pin-env", "PIN"], "1234"))["match"], "strong");
    let bound = ok(&tap(&["--enrol-staff", "sekinin1"], "1234"));
    assert_eq!(bound["staff"], "sekinin1");
    // The lock screen's check: the card alone says who, the staff record says the role; the
    // staff PIN unlocks, a wrong one does not; the card's own PIN is checked by the card.
    let again = ok(&tap(&[], "1234"));
    assert_eq!(again["staff"], "sekinin1");
    assert_eq!(again["card"], bound["card"]);
    assert_eq!(ok(&staff("check", "2468"))["role"], "lead");
    refused(&staff("check", "1357"), "wrong PIN");
    assert_eq!(
        ok(&kazashi(
            &["card", "check", "--pin-env", "PIN"],
            &env("1234")
        ))["possession"],
        true
    );
    let wrong = kazashi(&["card", "check", "--pin-env", "PIN"], &env("0000"));
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("残り2回"));
    drop(card);

    // Someone else's card (another key) is nobody's login here.
    let other = emulate(2, 41);
    let o = ok(&tap(&[], "1234"));
    assert_eq!(o["staff"], Value::Null, "{o}");
    assert_ne!(o["card"], bound["card"]);
    drop(other);

    // A staff card from the manifest's staff list. The administrator reads the card's full
    // key (`card staff-key`, through pcscd), signs it into the list — card only, no PIN — and
    // the laptop takes that version; the card then unlocks it by the lock screen's check (the
    // card names the staff member, its PIN and a signed challenge prove the holder).
    let card = emulate(3, 42);
    let check = |pin: &'static str, extra: &[&str]| {
        let mut a = vec![
            "staff",
            "check",
            "--dir",
            &dir,
            "--card",
            "--card-pin-env",
            "PIN",
        ];
        a.extend_from_slice(extra);
        kazashi(&a, &env(pin))
    };
    let staff_key = || {
        ok(&kazashi(
            &["card", "staff-key", "--admin-dir", &s(&admin.dir)],
            &[],
        ))
    };
    let key = staff_key();
    let hex = key["card_key"].as_str().unwrap().to_owned();
    assert_eq!(hex.len(), 64, "{key}");
    assert!(hex.starts_with(key["card"].as_str().unwrap()));
    assert_eq!(key["staff"], Value::Null);
    // Cards grant authority only from the CAs the manifest lists: none yet.
    refused(&check("1234", &[]), "no JPKI CA certificate");
    let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cards/ca.der");
    let with_ca = ok(&kazashi(
        &[
            "deployment",
            "card-ca",
            "--dir",
            &s(&admin.dir),
            "--card-ca",
            &s(&ca),
        ],
        &ADMIN,
    ));
    assert_eq!(with_ca["version"], 4, "{with_ca}");
    let signed = ok(&kazashi(
        &[
            "deployment",
            "staff",
            "add",
            "--dir",
            &s(&admin.dir),
            "--id",
            "kyugo1",
            "--name",
            "救護",
            "--role",
            "medical",
            "--site",
            "S1",
            "--card",
            &hex,
        ],
        &ADMIN,
    ));
    assert_eq!(signed["version"], 5, "{signed}");
    assert_eq!(staff_key()["staff"], "kyugo1");
    // The laptop still on version 3 knows nothing of it.
    refused(&check("1234", &[]), "no JPKI CA certificate");
    assert_eq!(admin.install(&l, &admin.roster)["version"], 5);
    let c = ok(&check("1234", &[]));
    assert_eq!(
        (&c["operator"], &c["role"], &c["source"], &c["card"]),
        (
            &Value::from("kyugo1"),
            &Value::from("medical"),
            &Value::from("manifest"),
            &key["card"]
        ),
        "{c}"
    );
    assert_eq!(
        ok(&check("1234", &["--operator", "kyugo1"]))["operator"],
        "kyugo1"
    );
    refused(
        &check("1234", &["--operator", "sekinin1"]),
        "kyugo1's staff card",
    );
    // A wrong card PIN: no unlock (the card counts it).
    let wrong = check("0000", &[]);
    assert!(!wrong.status.success(), "{wrong:?}");
    assert!(!String::from_utf8_lossy(&wrong.stdout).contains("kyugo1"));
    // The PIN-only check of that id is refused (no PIN in its entry).
    assert!(
        !staff_pin_check(&dir, "kyugo1", env("2468"))
            .status
            .success()
    );
    drop(card);
    drop(rig);
}

/// `kazashi staff check` of `id` by PIN.
fn staff_pin_check(dir: &str, id: &str, env: Vec<(&'static str, &'static str)>) -> Output {
    kazashi(&["staff", "check", "--dir", dir, "--operator", id], &env)
}
