//! Manifest install is atomic under SIGKILL. Two ways of killing the child that installs:
//!
//! - at random moments, while it installs manifest versions one after the other (~200 kills);
//! - exactly at each of the file-changing system calls (open, write, sync, truncate, rename,
//!   unlink) one install makes, in turn: `strace`'s fault injection sends SIGKILL as the N-th
//!   call of each kind starts, for every N the install makes. Every point of the install's write
//!   path is hit once, and the outcomes, in the order of the calls, must be the old version up
//!   to one commit point and the new one from there on.
//!
//! After every kill the store opens, its manifest is byte for byte one of the signed versions,
//! no acknowledged version was lost, and the `site` setting is the one that version gives (each
//! version moves the laptop between two sites, so a manifest written without its site, or the
//! other way round, shows).
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use kazashi_domain::deployment::DeploymentKind;
use kazashi_domain::ids::RosterHash;
use kazashi_domain::text::Label;
use kazashi_domain::{Deployment, DeploymentId, ShelterType, Site, SiteId, SiteKind};
use kazashi_node::enrolled::META_SITE;
use kazashi_node::store::{KdfParams, Store};
use kazashi_sync::{DeviceEntry, DeviceKey, Manifest, Role, SignedManifest};
use rand::{RngExt, SeedableRng};
use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const VERSIONS: u32 = 300;
const PASS: &str = "install crash test";

fn site(code: &str) -> Site {
    Site {
        id: SiteId::new(code).unwrap(),
        name: Label::new("避難所").unwrap(),
        kind: SiteKind::Shelter {
            shelter_type: ShelterType::Designated,
            capacity: 10,
        },
    }
}

/// The site version `v` puts the laptop at.
fn site_of(v: u32) -> &'static str {
    if v.is_multiple_of(2) { "S0" } else { "S1" }
}

/// A laptop folder with a store holding the device key and no manifest, and a folder of
/// `versions` signed manifests (`manifest-v<N>.kzm`) that move it between two sites.
struct Setup {
    _dir: tempfile::TempDir,
    laptop: PathBuf,
    manifests: PathBuf,
}

fn setup(versions: u32) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let laptop = dir.path().join("laptop");
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&laptop).unwrap();
    std::fs::create_dir_all(&manifests).unwrap();
    let admin = DeviceKey::from_seed([1; 32]);
    let device = DeviceKey::from_seed([2; 32]);
    let deployment = Deployment::new(
        DeploymentId([3; 16]),
        Label::new("install crash").unwrap(),
        DeploymentKind::ShelterOperation,
        RosterHash([0; 32]),
        vec![site("S0"), site("S1")],
    )
    .unwrap();
    for v in 1..=versions {
        let m = Manifest {
            version: v,
            deployment: deployment.clone(),
            admin: admin.device_id(),
            devices: vec![DeviceEntry {
                device: device.device_id(),
                role: Role::Station,
                label: Label::new("laptop").unwrap(),
                sites: vec![SiteId::new(site_of(v)).unwrap()],
            }],
            revoked: vec![],
            staff: vec![],
            closed_at: None,
            card_cas: vec![],
            sealed_keys: Vec::new(),
            retention_days: None,
            receipt_slips: false,
        };
        let bytes = SignedManifest::sign(&m, &admin).unwrap().encode();
        std::fs::write(manifests.join(format!("manifest-v{v}.kzm")), bytes).unwrap();
    }
    let store = Store::create(&laptop.join("kazashi.db"), PASS, KdfParams::FAST_INSECURE).unwrap();
    store.set_identity(&device).unwrap();
    drop(store);
    Setup {
        _dir: dir,
        laptop,
        manifests,
    }
}

/// The version installed in `laptop` (0: none), after checking that the store opens with its
/// key, that the manifest is byte for byte the signed file of its version, and that the site
/// setting is the one that version gives.
fn installed(laptop: &Path, manifests: &Path) -> u32 {
    let store = Store::open(&laptop.join("kazashi.db"), PASS).unwrap();
    assert_eq!(
        store.identity().unwrap().map(|k| k.device_id()),
        Some(DeviceKey::from_seed([2; 32]).device_id()),
        "the device key changed"
    );
    let Some(bytes) = store.manifest().unwrap() else {
        assert_eq!(store.get_meta(META_SITE).unwrap(), None);
        return 0;
    };
    let v = SignedManifest::decode(&bytes).unwrap().version();
    assert_eq!(
        bytes,
        std::fs::read(manifests.join(format!("manifest-v{v}.kzm"))).unwrap(),
        "version {v} installed is not the signed file"
    );
    assert_eq!(
        store.get_meta(META_SITE).unwrap(),
        Some(site_of(v).as_bytes().to_vec()),
        "version {v} installed with the wrong site"
    );
    v
}

#[test]
fn killed_installs_leave_a_whole_manifest_and_its_site() {
    let Setup {
        _dir,
        laptop,
        manifests,
    } = setup(VERSIONS);
    let installed = || installed(&laptop, &manifests);

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(23);
    let mut acked = 0u32;
    let mut kills = 0;
    while acked < VERSIONS && kills < 400 {
        let start = installed() + 1;
        assert!(start > acked, "acknowledged version {acked} lost");
        let (mut child, mut out) = kazashi_tests::start_ready(
            Command::new(env!("CARGO_BIN_EXE_install_writer"))
                .arg(&laptop)
                .arg(&manifests)
                .arg(start.to_string()),
            "the child did not start",
        );
        let mut line = String::new();
        for _ in 0..rng.random_range(0..4usize) {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                break;
            }
            acked = acked.max(line.trim().parse().unwrap());
        }
        std::thread::sleep(Duration::from_micros(rng.random_range(0..3000)));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        kills += 1;
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        for l in rest.lines() {
            // A line cut by the kill was not acknowledged.
            if let Ok(v) = l.trim().parse::<u32>() {
                acked = acked.max(v);
            }
        }
        if status.success() {
            break;
        }
    }
    let last = installed();
    assert!(last >= acked, "acknowledged {acked}, installed {last}");
    assert!(kills >= 20, "too few kills to mean anything: {kills}");
    eprintln!("install crash test: {kills} kills, version {last} installed");
}

/// The file-changing system calls an install may make (`?`: those this architecture lacks are
/// left out).
const CALLS: &[&str] = &[
    "openat",
    "write",
    "pwrite64",
    "writev",
    "pwritev",
    "fsync",
    "fdatasync",
    "ftruncate",
    "rename",
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
];

const STRACE: &str = "/usr/bin/strace";

/// `from`'s files copied into `to`, made afresh.
fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// The install writer installing version `v` alone into `laptop`, under strace with `extra`.
fn traced_install(laptop: &Path, only: &Path, v: u32, extra: &[String]) -> std::process::Output {
    let trace: Vec<String> = CALLS.iter().map(|c| format!("?{c}")).collect();
    Command::new(STRACE)
        .args(["-f", "-qq", "-e"])
        .arg(format!("trace={}", trace.join(",")))
        .args(extra)
        .arg(env!("CARGO_BIN_EXE_install_writer"))
        .arg(laptop)
        .arg(only)
        .arg(v.to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The calls of a trace written by `strace -f -o`, in order (one thread expected).
fn calls_in(trace: &str) -> Vec<String> {
    let mut pids = std::collections::BTreeSet::new();
    let calls = trace
        .lines()
        .filter_map(|l| {
            let (pid, rest) = l.split_once(' ')?;
            let rest = rest.trim_start();
            if rest.starts_with("<...") || rest.starts_with("+++") || rest.starts_with("---") {
                return None;
            }
            let name = rest.split_once('(')?.0;
            pids.insert(pid.to_owned());
            CALLS.contains(&name).then(|| name.to_owned())
        })
        .collect();
    assert_eq!(
        pids.len(),
        1,
        "the install writer ran on several threads: {pids:?}"
    );
    calls
}

#[test]
fn an_install_killed_at_each_of_its_file_calls_leaves_the_old_version_or_the_new() {
    if !Path::new(STRACE).exists() {
        kazashi_tests::card_rig::skip(
            "install crash at every system call: strace is not installed (apt-get install strace)",
        );
        return;
    }
    let Setup {
        _dir,
        laptop,
        manifests,
    } = setup(2);
    let work = laptop.with_file_name("work");
    let mut points = 0;
    // The first install (no manifest before) and the next (version 1 → 2).
    for v in 1..=2u32 {
        // The folder as it stands before version v: the laptop's, which holds v - 1.
        let before = laptop.with_file_name(format!("before-v{v}"));
        copy_dir(&laptop, &before);
        assert_eq!(installed(&before, &manifests), v - 1);
        let only = manifests.with_file_name(format!("only-v{v}"));
        std::fs::create_dir_all(&only).unwrap();
        let file = format!("manifest-v{v}.kzm");
        std::fs::copy(manifests.join(&file), only.join(&file)).unwrap();

        // A run that is not killed: which calls the install makes, in order.
        copy_dir(&before, &work);
        let log = work.with_file_name("trace.txt");
        let dry = traced_install(&work, &only, v, &["-o".into(), log.display().to_string()]);
        if !dry.status.success() {
            let why = String::from_utf8_lossy(&dry.stderr).into_owned();
            assert!(
                why.contains("ptrace") || why.contains("PTRACE"),
                "the install under strace failed: {why}"
            );
            kazashi_tests::card_rig::skip(&format!(
                "install crash at every system call: strace cannot trace here ({})",
                why.trim()
            ));
            return;
        }
        assert_eq!(installed(&work, &manifests), v);
        let calls = calls_in(&std::fs::read_to_string(&log).unwrap());
        // (position in the run, call, its number among calls of its kind)
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let mut outcomes: Vec<(usize, String, usize, u32)> = Vec::new();
        for (pos, call) in calls.iter().enumerate() {
            let n = seen.entry(call.as_str()).or_default();
            *n += 1;
            copy_dir(&before, &work);
            let out = traced_install(
                &work,
                &only,
                v,
                &[
                    "-o".into(),
                    "/dev/null".into(),
                    "-e".into(),
                    format!("inject={call}:signal=KILL:when={n}"),
                ],
            );
            {
                use std::os::unix::process::ExitStatusExt as _;
                assert_eq!(
                    out.status.signal(),
                    Some(9),
                    "{call} #{n} of version {v}'s install: not killed there ({:?}; {})",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let got = installed(&work, &manifests);
            assert!(
                got == v - 1 || got == v,
                "killed at {call} #{n}: version {got} installed, expected {} or {v}",
                v - 1
            );
            // An acknowledged install is kept.
            if String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == v.to_string())
            {
                assert_eq!(
                    got, v,
                    "killed at {call} #{n}: version {v} acknowledged, lost"
                );
            }
            outcomes.push((pos, call.clone(), *n, got));
        }
        // Old up to one commit point, new from there on; both seen.
        let commit = outcomes.iter().position(|o| o.3 == v);
        let Some(commit) = commit else {
            panic!("no kill left version {v}: {outcomes:?}")
        };
        assert!(commit > 0, "no kill left version {}: {outcomes:?}", v - 1);
        assert!(
            outcomes[commit..].iter().all(|o| o.3 == v),
            "the outcome went back to the old version after the commit point: {outcomes:?}"
        );
        eprintln!(
            "version {v}: {} kill points ({} before the commit at {} #{})",
            outcomes.len(),
            commit,
            outcomes[commit].1,
            outcomes[commit].2
        );
        points += outcomes.len();
        // The laptop moves on to version v for the next round.
        copy_dir(&before, &work);
        let done = traced_install(&work, &only, v, &["-o".into(), "/dev/null".into()]);
        assert!(done.status.success());
        copy_dir(&work, &laptop);
    }
    assert!(
        points >= 20,
        "too few kill points to mean anything: {points}"
    );
}
