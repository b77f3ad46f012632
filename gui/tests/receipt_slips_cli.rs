//! `kazashi deployment receipt-slips on|off` (issue 26, requirement 5): the administrator turns
//! the check-in receipt slip on for every laptop by signing the next manifest version; a bad
//! word or a wrong passphrase is refused and signs nothing.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{ADMIN_PASS, files, kazashi, ok, refused, s};

#[test]
fn the_receipt_slip_switch_is_signed_into_the_next_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let admin = tmp.path().join("admin");
    let a = s(&admin);
    let env = [("KAZASHI_ADMIN_PASSPHRASE", ADMIN_PASS)];
    let sites = tmp.path().join("sites.csv");
    std::fs::write(
        &sites,
        "code,name,kind,capacity,shelter_type,precincts\nS1,第一小学校,shelter,100,1,\n",
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
        ],
        &env,
    ));
    let show = || ok(&kazashi(&["deployment", "show", "--dir", &a], &[]));
    assert_eq!(show()["receipt_slips"], false);
    assert_eq!(show()["version"], 1);

    refused(
        &kazashi(&["deployment", "receipt-slips", "--dir", &a, "yes"], &env),
        "on or off",
    );
    refused(
        &kazashi(
            &["deployment", "receipt-slips", "--dir", &a, "on"],
            &[("KAZASHI_ADMIN_PASSPHRASE", "not the passphrase")],
        ),
        "",
    );
    assert_eq!(show()["version"], 1, "a refusal signed a manifest");
    assert!(!files(&admin).contains(&"manifest-v2.kzm".to_owned()));

    let on = ok(&kazashi(
        &["deployment", "receipt-slips", "--dir", &a, "on"],
        &env,
    ));
    assert_eq!(on["version"], 2);
    assert_eq!(show()["receipt_slips"], true);
    assert!(files(&admin).contains(&"manifest-v2.kzm".to_owned()));
    // Another change keeps the switch; off turns it off again.
    ok(&kazashi(
        &["deployment", "set-retention", "--dir", &a, "30"],
        &env,
    ));
    assert_eq!(show()["receipt_slips"], true);
    ok(&kazashi(
        &["deployment", "receipt-slips", "--dir", &a, "off"],
        &env,
    ));
    let off = show();
    assert_eq!(off["receipt_slips"], false);
    assert_eq!(off["retention_days"], 30);
    assert_eq!(off["version"], 4);
}
