//! `kazashi deployment purge` through the product binary: a deployment with no retention
//! period to wait (`--retention-days 0`), a laptop enrolled and granted the medical key, the
//! operation closed; the purge is refused before the close, without the id typed back, with a
//! wrong id or passphrase (the purpose keys still there each time), then destroys
//! `purpose-keys.kzk`, writes `purged.json`, and the folder signs nothing after.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{ADMIN_PASS, LAPTOP_PASS, ROSTER_PASS, files, kazashi, ok, refused, s};

#[test]
fn a_closed_deployment_past_its_retention_loses_its_purpose_keys_and_signs_nothing_more() {
    let tmp = tempfile::tempdir().unwrap();
    let admin = tmp.path().join("admin");
    let laptop = tmp.path().join("laptop");
    let a = s(&admin);
    let l = s(&laptop);
    let admin_env = [("KAZASHI_ADMIN_PASSPHRASE", ADMIN_PASS)];
    let wrong_admin = [("KAZASHI_ADMIN_PASSPHRASE", "not the passphrase")];
    let laptop_env = [
        ("KAZASHI_PASSPHRASE", LAPTOP_PASS),
        ("KAZASHI_ROSTER_PASSPHRASE", ROSTER_PASS),
    ];
    let sites = tmp.path().join("sites.csv");
    std::fs::write(
        &sites,
        "code,name,kind,capacity\nS1,第一小学校,shelter,100\n",
    )
    .unwrap();
    ok(&kazashi(
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
            "--retention-days",
            "0",
        ],
        &admin_env,
    ));
    let shown = ok(&kazashi(&["deployment", "show", "--dir", &a], &[]));
    let id = shown["deployment"].as_str().unwrap().to_owned();

    // A laptop enrolled and holding the medical key.
    let req = ok(&kazashi(
        &["enrol", "--dir", &l, "--label", "救護 受付"],
        &laptop_env,
    ));
    let fingerprint = req["fingerprint"].as_str().unwrap().to_owned();
    let device = req["device"].as_str().unwrap().to_owned();
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
    let grant = |env: &[(&str, &str)]| {
        kazashi(
            &[
                "deployment",
                "grant",
                "--dir",
                &a,
                "--device",
                &device,
                "--holds",
                "medical",
            ],
            env,
        )
    };
    ok(&grant(&admin_env));
    let shown = ok(&kazashi(&["deployment", "show", "--dir", &a], &[]));
    assert_eq!(shown["devices"][0]["holds"][0], "medical");

    let purge = |confirm: Option<&str>, env: &[(&str, &str)]| {
        let mut args = vec!["deployment", "purge", "--dir", &a];
        if let Some(c) = confirm {
            args.extend(["--confirm", c]);
        }
        kazashi(&args, env)
    };
    let purpose = admin.join("purpose-keys.kzk");
    let secrets = std::fs::read(&purpose).unwrap();
    refused(&purge(Some(&id), &admin_env), "not closed");
    assert_eq!(std::fs::read(&purpose).unwrap(), secrets);

    ok(&kazashi(
        &["deployment", "close", "--dir", &a, "--at", "now"],
        &admin_env,
    ));
    let before = files(&admin);
    refused(&purge(None, &admin_env), &format!("--confirm {id}"));
    refused(
        &purge(Some("0123456789abcdef0123456789abcdef"), &admin_env),
        &format!("--confirm {id}"),
    );
    refused(&purge(Some(&id), &wrong_admin), "wrong passphrase");
    refused(&purge(Some(&id), &[]), "KAZASHI_ADMIN_PASSPHRASE");
    assert_eq!(std::fs::read(&purpose).unwrap(), secrets);
    assert_eq!(files(&admin), before);

    let done = ok(&purge(Some(&id), &admin_env));
    assert_eq!(done["destroyed"], serde_json::json!(["purpose-keys.kzk"]));
    assert_eq!(done["deployment"], id.as_str());
    assert_eq!(done["retention_days"], 0);
    assert!(!purpose.exists());
    assert_eq!(
        files(&admin),
        [
            "deployment-key.kzk",
            "manifest-v1.kzm",
            "manifest-v2.kzm",
            "manifest-v3.kzm",
            "manifest-v4.kzm",
            "manifest.kzm",
            "purged.json"
        ]
    );
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(admin.join("purged.json")).unwrap()).unwrap();
    assert_eq!(record["destroyed"], done["destroyed"]);
    assert_eq!(record["purged_at"], done["purged_at"]);

    // The folder signs nothing more, and says why; the manifests still read.
    refused(&grant(&admin_env), "purged");
    assert!(!admin.join("manifest-v5.kzm").exists());
    assert!(!purpose.exists());
    let shown = ok(&kazashi(&["deployment", "show", "--dir", &a], &[]));
    assert_eq!(shown["version"], 4);
    assert!(shown["closed_at"].is_u64());
}
