//! A deployment from zero with the product binary, as an administrator and a laptop's operator
//! would run it: `kazashi deployment init` from a sites CSV, `roster import` and `pin-roster`,
//! `kazashi enrol` on a fresh laptop folder, `approve` with the fingerprint read out,
//! `enrol --install`, and `kazashi node` opening the laptop at its site. Every bad input on the
//! way is refused with a clear message and changes nothing.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{ADMIN_PASS, LAPTOP_PASS, ROSTER_PASS, files, kazashi, ok, refused, s};
use std::path::Path;

#[test]
fn a_deployment_from_zero_opens_on_an_enrolled_laptop() {
    let tmp = tempfile::tempdir().unwrap();
    let admin = tmp.path().join("admin");
    let laptop = tmp.path().join("laptop");
    let usb = tmp.path().join("usb");
    std::fs::create_dir_all(&usb).unwrap();
    let a = s(&admin);
    let l = s(&laptop);
    let admin_env = [("KAZASHI_ADMIN_PASSPHRASE", ADMIN_PASS)];
    let wrong_admin = [("KAZASHI_ADMIN_PASSPHRASE", "not the passphrase")];

    // Sites: a bad file is refused and leaves no folder behind.
    let bad_sites = tmp.path().join("bad.csv");
    std::fs::write(
        &bad_sites,
        "code,name,kind,capacity\nS1,第一小学校,castle,100\n",
    )
    .unwrap();
    let out = kazashi(
        &[
            "deployment",
            "init",
            "--dir",
            &a,
            "--municipality",
            "かざし市",
            "--shelters",
            "--sites",
            &s(&bad_sites),
        ],
        &admin_env,
    );
    refused(&out, "line 2");
    assert!(files(&admin).is_empty());

    let sites = tmp.path().join("sites.csv");
    std::fs::write(
        &sites,
        "code,name,kind,capacity,shelter_type,precincts\n\
         S1,第一小学校,shelter,100,1,\n\
         HQ,災害対策本部,command,,,\n",
    )
    .unwrap();
    let init = [
        "deployment",
        "init",
        "--dir",
        &a,
        "--municipality",
        "かざし市",
        "--title",
        "令和8年豪雨",
        "--shelters",
        "--sites",
        &s(&sites),
    ];
    refused(&kazashi(&init, &[]), "KAZASHI_ADMIN_PASSPHRASE");
    let v1 = ok(&kazashi(&init, &admin_env));
    assert_eq!(v1["version"], 1);
    assert_eq!(
        files(&admin),
        [
            "deployment-key.kzk",
            "manifest-v1.kzm",
            "manifest.kzm",
            "purpose-keys.kzk"
        ]
    );
    // Once only.
    refused(&kazashi(&init, &admin_env), "already holds a deployment");
    // The key file does not hold the secret in the clear; the backup is the same file.
    let key_file = std::fs::read(admin.join("deployment-key.kzk")).unwrap();
    assert!(String::from_utf8_lossy(&key_file).contains("argon2id"));
    ok(&kazashi(
        &["deployment", "export-key", "--dir", &a, "--to", &s(&usb)],
        &[],
    ));
    assert_eq!(
        std::fs::read(usb.join("deployment-key.kzk")).unwrap(),
        key_file
    );
    refused(
        &kazashi(
            &["deployment", "export-key", "--dir", &a, "--to", &s(&usb)],
            &[],
        ),
        "already holds",
    );

    // The roster: imported, then pinned (a wrong passphrase signs nothing).
    let roster_csv = tmp.path().join("roster.csv");
    std::fs::write(
        &roster_csv,
        "宛名番号,世帯番号,氏名,氏名カナ,生年月日,性別,住所\n\
         A0001,H001,髙橋 太郎,タカハシ タロウ,1950-04-01,1,かざし市中央1\n\
         A0002,H001,髙橋 花子,タカハシ ハナコ,1955-07-15,2,かざし市中央1\n\
         A0003,H002,山田 一郎,ヤマダ イチロウ,1980-01-02,1,かざし市北2\n",
    )
    .unwrap();
    let roster = admin.join("roster.db");
    let imported = ok(&kazashi(
        &["roster", "import", &s(&roster_csv), "--out", &s(&roster)],
        &[("KAZASHI_ROSTER_PASSPHRASE", ROSTER_PASS)],
    ));
    let pin = [
        "deployment",
        "pin-roster",
        "--dir",
        &a,
        "--roster",
        &s(&roster),
    ];
    refused(
        &kazashi(
            &pin,
            &[wrong_admin[0], ("KAZASHI_ROSTER_PASSPHRASE", ROSTER_PASS)],
        ),
        "wrong passphrase",
    );
    assert!(!admin.join("manifest-v2.kzm").exists());
    let v2 = ok(&kazashi(
        &pin,
        &[admin_env[0], ("KAZASHI_ROSTER_PASSPHRASE", ROSTER_PASS)],
    ));
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["roster"], imported["hash"]);

    // A fresh laptop asks to be enrolled.
    let laptop_env = [
        ("KAZASHI_PASSPHRASE", LAPTOP_PASS),
        ("KAZASHI_ROSTER_PASSPHRASE", ROSTER_PASS),
    ];
    let req = ok(&kazashi(
        &["enrol", "--dir", &l, "--label", "第一小学校 受付1"],
        &laptop_env,
    ));
    let fingerprint = req["fingerprint"].as_str().unwrap().to_owned();
    assert_eq!(
        fingerprint.chars().filter(char::is_ascii_digit).count(),
        28,
        "{fingerprint}"
    );
    // Asked again before approval: the same key and fingerprint, the request written again.
    let again = ok(&kazashi(
        &["enrol", "--dir", &l, "--label", "第一小学校 受付1"],
        &laptop_env,
    ));
    assert_eq!(again["fingerprint"], req["fingerprint"]);
    assert_eq!(again["device"], req["device"]);
    let request = s(&laptop.join("enrol-request.json"));
    // Not approved yet: the laptop says what it waits for.
    refused(
        &kazashi(
            &["node", "--dir", &l, "--run-for", "1", "--no-mdns"],
            &laptop_env,
        ),
        "kazashi enrol --install",
    );

    // The administrator approves it only with the fingerprint read out, at a real site.
    let approve = |fp: &str, site: &str, env: &[(&str, &str)]| {
        kazashi(
            &[
                "deployment",
                "approve",
                "--dir",
                &a,
                "--request",
                &request,
                "--fingerprint",
                fp,
                "--site",
                site,
            ],
            env,
        )
    };
    let mut wrong_fp: Vec<char> = fingerprint.chars().collect();
    wrong_fp[0] = if wrong_fp[0] == '1' { '2' } else { '1' };
    let wrong_fp: String = wrong_fp.into_iter().collect();
    refused(&approve(&wrong_fp, "S1", &admin_env), "does not match");
    refused(&approve(&fingerprint, "S9", &admin_env), "not a site");
    refused(
        &approve(&fingerprint, "S1", &wrong_admin),
        "wrong passphrase",
    );
    assert!(!admin.join("manifest-v3.kzm").exists());
    let typed: String = fingerprint.replace(' ', "");
    let v3 = ok(&approve(&typed, "S1", &admin_env));
    assert_eq!(v3["version"], 3);
    refused(
        &approve(&typed, "S1", &admin_env),
        "already in the manifest",
    );

    // The laptop installs: not an older version, not one without it, and only newer ones.
    // The administrator reads out the deployment key's fingerprint (init and show print it).
    let admin_fp = v1["admin_fingerprint"].as_str().unwrap().to_owned();
    let install_as = |file: &Path, fp: &str| {
        kazashi(
            &[
                "enrol",
                "--dir",
                &l,
                "--install",
                &s(file),
                "--admin-fingerprint",
                fp,
            ],
            &laptop_env,
        )
    };
    let install = |file: &Path| install_as(file, &admin_fp);
    refused(
        &kazashi(
            &[
                "enrol",
                "--dir",
                &l,
                "--install",
                &s(&admin.join("manifest.kzm")),
            ],
            &laptop_env,
        ),
        "--admin-fingerprint",
    );
    refused(
        &install_as(&admin.join("manifest.kzm"), &fingerprint),
        "does not have the fingerprint",
    );
    refused(
        &install(&admin.join("manifest-v2.kzm")),
        "not in the manifest",
    );
    let mut tampered = std::fs::read(admin.join("manifest.kzm")).unwrap();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 1;
    let tampered_file = tmp.path().join("tampered.kzm");
    std::fs::write(&tampered_file, tampered).unwrap();
    refused(&install(&tampered_file), "nothing was changed");
    refused(
        &kazashi(
            &[
                "enrol",
                "--dir",
                &l,
                "--install",
                &s(&admin.join("manifest.kzm")),
                "--admin-fingerprint",
                &admin_fp,
            ],
            &[("KAZASHI_PASSPHRASE", "not the passphrase")],
        ),
        "wrong passphrase",
    );
    let installed = ok(&install(&admin.join("manifest.kzm")));
    assert_eq!(installed["version"], 3);
    assert_eq!(
        ok(&kazashi(&["deployment", "show", "--dir", &a], &[]))["admin_fingerprint"],
        admin_fp.as_str()
    );
    assert_eq!(installed["site"], "S1");
    refused(
        &install(&admin.join("manifest-v2.kzm")),
        "older than the installed",
    );
    refused(
        &kazashi(&["enrol", "--dir", &l], &laptop_env),
        "enrolled already",
    );

    // Another deployment's manifest, even one that lists this laptop, is refused.
    let other = tmp.path().join("other-admin");
    let o = s(&other);
    ok(&kazashi(
        &[
            "deployment",
            "init",
            "--dir",
            &o,
            "--municipality",
            "よそ市",
            "--shelters",
            "--sites",
            &s(&sites),
        ],
        &admin_env,
    ));
    ok(&kazashi(
        &[
            "deployment",
            "approve",
            "--dir",
            &o,
            "--request",
            &request,
            "--fingerprint",
            &typed,
            "--site",
            "S1",
        ],
        &admin_env,
    ));
    refused(
        &install(&other.join("manifest.kzm")),
        "but this laptop is in",
    );

    // The pinned roster goes to the laptop (by USB, for now) and the laptop opens at S1.
    for f in ["roster.db", "roster.db.text", "roster.db.kdf"] {
        std::fs::copy(admin.join(f), laptop.join(f)).unwrap();
    }
    let node = kazashi(
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
    );
    let status = ok(&node);
    let device = req["device"].as_str().unwrap();
    assert!(status.to_string().contains(&device[..8]), "{status}");

    // Staff who may unlock this laptop: a PIN kept only as a hash, checked.
    let staff = |cmd: &str, pin: &str| {
        let mut env = laptop_env.to_vec();
        env.push(("KAZASHI_STAFF_PIN", pin));
        let mut args = vec!["staff", cmd, "--dir", &l, "--operator", "uketsuke1"];
        if cmd == "add" {
            args.extend(["--role", "reception"]);
        }
        kazashi(&args, &env)
    };
    refused(&staff("add", "12"), "4 to 8 digits");
    refused(&staff("check", "1234"), "no staff member");
    ok(&staff("add", "2468"));
    assert_eq!(ok(&staff("check", "2468"))["role"], "reception");
    refused(&staff("check", "1357"), "wrong PIN");

    let shown = ok(&kazashi(&["deployment", "show", "--dir", &a], &[]));
    assert_eq!(shown["version"], 3);
    assert_eq!(shown["roster"], imported["hash"]);
    assert_eq!(shown["devices"][0]["device"], device);
    assert_eq!(shown["devices"][0]["sites"][0], "S1");
    // The purpose keys (sealed notes): the operation key to every laptop; medical granted.
    assert_eq!(
        shown["purpose_keys"],
        serde_json::json!(["medical", "manager", "operation"])
    );
    assert_eq!(
        shown["devices"][0]["holds"],
        serde_json::json!(["operation"])
    );
    let grant = |holds: &str, env: &[(&str, &str)]| {
        kazashi(
            &[
                "deployment",
                "grant",
                "--dir",
                &a,
                "--device",
                &device[..12],
                "--holds",
                holds,
            ],
            env,
        )
    };
    refused(&grant("operation", &admin_env), "medical or manager");
    refused(&grant("medical", &wrong_admin), "wrong passphrase");
    assert_eq!(ok(&grant("medical", &admin_env))["version"], 4);
    refused(&grant("medical", &admin_env), "already holds");
    let shown = ok(&kazashi(&["deployment", "show", "--dir", &a], &[]));
    assert_eq!(
        shown["devices"][0]["holds"],
        serde_json::json!(["medical", "operation"])
    );

    // Revoked: version 5, and the laptop says so when it is handed that manifest.
    let v4 = ok(&kazashi(
        &[
            "deployment",
            "revoke",
            "--dir",
            &a,
            &device[..12],
            "--from",
            "now",
        ],
        &admin_env,
    ));
    assert_eq!(v4["version"], 5);
    refused(&install(&admin.join("manifest.kzm")), "revoked");
    assert_eq!(
        files(&admin)
            .iter()
            .filter(|f| f.starts_with("manifest-v"))
            .count(),
        5
    );
    let shown = ok(&kazashi(&["deployment", "show", "--dir", &a], &[]));
    assert_eq!(shown["devices"][0]["holds"], serde_json::json!([]));
}

/// Staff signed into the manifest at `init --staff` (PINs only as hashes), a staff PIN login on
/// an enrolled laptop, the administrator's staff commands, and closing the operation: the
/// laptop that installs the closing manifest writes no more.
#[test]
fn staff_at_init_log_in_on_a_laptop_and_a_closed_operation_stops_its_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let admin = tmp.path().join("admin");
    let laptop = tmp.path().join("laptop");
    let (a, l) = (s(&admin), s(&laptop));
    let admin_env = [("KAZASHI_ADMIN_PASSPHRASE", ADMIN_PASS)];
    let laptop_env = [
        ("KAZASHI_PASSPHRASE", LAPTOP_PASS),
        ("KAZASHI_ROSTER_PASSPHRASE", ROSTER_PASS),
    ];
    let sites = tmp.path().join("sites.csv");
    std::fs::write(
        &sites,
        "code,name,kind,capacity\nS1,第一小学校,shelter,100\nS2,第二小学校,shelter,50\n",
    )
    .unwrap();
    let init = |staff: &Path| {
        kazashi(
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
                "--staff",
                &s(staff),
            ],
            &admin_env,
        )
    };
    // A bad PIN is refused, named by line and staff id, without quoting the PIN.
    let bad = tmp.path().join("bad-staff.csv");
    std::fs::write(
        &bad,
        "staff_id,name,role,pin,sites\nlead1,責任者,lead,98765432109,\n",
    )
    .unwrap();
    let out = init(&bad);
    refused(&out, "line 2: lead1: PIN");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("98765432109"));
    assert!(files(&admin).is_empty());

    let staff = tmp.path().join("staff.csv");
    std::fs::write(
        &staff,
        "staff_id,name,role,pin,sites\n\
         lead1,責任者,lead,7315,\n\
         uketsuke2,受付,reception,8642,S2\n",
    )
    .unwrap();
    let v1 = ok(&init(&staff));
    assert_eq!(v1["version"], 1);
    // Only hashes in the signed manifest; show lists the staff without them.
    let manifest = std::fs::read(admin.join("manifest.kzm")).unwrap();
    let text = String::from_utf8_lossy(&manifest);
    assert_eq!(text.matches("$argon2id$").count(), 2);
    assert!(!text.contains("7315") && !text.contains("8642"));
    let shown = ok(&kazashi(&["deployment", "show", "--dir", &a], &[]));
    assert_eq!(shown["staff"][0]["id"], "lead1");
    assert_eq!(shown["staff"][0]["pin"], true);
    assert_eq!(shown["staff"][1]["sites"][0], "S2");
    assert!(!shown.to_string().contains("argon2"));

    // Roster pinned, a laptop enrolled at S1.
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
    let req = ok(&kazashi(
        &["enrol", "--dir", &l, "--label", "第一小学校 受付1"],
        &laptop_env,
    ));
    let fingerprint = req["fingerprint"].as_str().unwrap().to_owned();
    ok(&kazashi(
        &[
            "deployment",
            "approve",
            "--dir",
            &a,
            "--request",
            &s(&laptop.join("enrol-request.json")),
            "--fingerprint",
            &fingerprint,
            "--site",
            "S1",
        ],
        &admin_env,
    ));
    for f in ["roster.db", "roster.db.text", "roster.db.kdf"] {
        std::fs::copy(admin.join(f), laptop.join(f)).unwrap();
    }
    let admin_fp = v1["admin_fingerprint"].as_str().unwrap().to_owned();
    let install = || {
        kazashi(
            &[
                "enrol",
                "--dir",
                &l,
                "--install",
                &s(&admin.join("manifest.kzm")),
                "--admin-fingerprint",
                &admin_fp,
            ],
            &laptop_env,
        )
    };
    ok(&install());

    // The manifest's staff log in on the laptop, where their entry allows.
    let check = |who: &str, pin: &str| {
        let mut env = laptop_env.to_vec();
        env.push(("KAZASHI_STAFF_PIN", pin));
        kazashi(&["staff", "check", "--dir", &l, "--operator", who], &env)
    };
    let lead = ok(&check("lead1", "7315"));
    assert_eq!(
        (&lead["role"], &lead["source"], &lead["writes"]),
        (&"lead".into(), &"manifest".into(), &true.into())
    );
    refused(&check("lead1", "1111"), "wrong PIN");
    // Listed for S2 only: not at this S1 laptop.
    refused(&check("uketsuke2", "8642"), "no staff member");

    // The administrator changes a PIN and adds someone: the next versions.
    let staff_cmd = |args: &[&str], pin: Option<&str>| {
        let mut env = admin_env.to_vec();
        if let Some(p) = pin {
            env.push(("KAZASHI_STAFF_PIN", p));
        }
        let mut all = vec!["deployment", "staff"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--dir", &a]);
        kazashi(&all, &env)
    };
    ok(&staff_cmd(&["set-pin", "--id", "lead1"], Some("2580")));
    let added = ok(&staff_cmd(
        &[
            "add", "--id", "kyugo1", "--name", "救護", "--role", "medical", "--site", "S1",
        ],
        Some("3690"),
    ));
    assert_eq!(added["staff"], 3);
    refused(
        &staff_cmd(
            &["add", "--id", "kyugo1", "--name", "x", "--role", "medical"],
            Some("3690"),
        ),
        "already in the manifest",
    );
    refused(
        &staff_cmd(&["remove", "--id", "nobody"], None),
        "not in the manifest",
    );
    ok(&install());
    refused(&check("lead1", "7315"), "wrong PIN");
    assert_eq!(ok(&check("lead1", "2580"))["role"], "lead");
    assert_eq!(ok(&check("kyugo1", "3690"))["role"], "medical");

    // Closing: the last version; the administrator signs nothing after it.
    let closed = ok(&kazashi(
        &["deployment", "close", "--dir", &a, "--at", "now"],
        &admin_env,
    ));
    let closed_at = closed["closed_at"].as_u64().unwrap();
    assert_eq!(
        ok(&kazashi(&["deployment", "show", "--dir", &a], &[]))["closed_at"],
        closed_at
    );
    refused(
        &staff_cmd(&["remove", "--id", "kyugo1"], None),
        "operation was closed",
    );
    // The laptop installs it: staff still log in (to read and export), but it writes no more.
    ok(&install());
    let after = ok(&check("lead1", "2580"));
    assert_eq!(after["writes"], false);
    assert_eq!(after["closed_at"], closed_at);
    assert!(
        after["why_not"]
            .as_str()
            .unwrap()
            .contains("operation is closed"),
        "{after}"
    );
    // It still opens as a node (sync, reports).
    ok(&kazashi(
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
}
