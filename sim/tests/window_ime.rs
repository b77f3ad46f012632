//! A Japanese name typed through the appliance kiosk's input method reaches the real window:
//! `images/ime-test` with the product binary (sway headless with the kiosk's own files, fcitx5
//! and Mozc, wtype typing やまだ, Space, Enter; the enrolment request's label must be 山田 and
//! the passphrase typed with Mozc on must open the store). Skipped, saying why, where sway,
//! fcitx5-mozc or wtype are not installed (`images/ime-test --setup`). docs/appliance.md,
//! "The kiosk and typing names".
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use kazashi_tests::card_rig::skip;
use std::path::Path;
use std::process::Command;

#[test]
fn a_name_typed_with_mozc_reaches_the_window_under_the_kiosk() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/ime-test");
    if Command::new("python3").arg("--version").output().is_err() {
        skip("images/ime-test: no python3");
        return;
    }
    let out = Command::new("python3")
        .arg(&script)
        .arg(common::product_bin())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(77) {
        skip(&format!("images/ime-test: {}", stdout.trim()));
        return;
    }
    assert!(
        out.status.success(),
        "images/ime-test failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("enrol-request.json label '山田'"),
        "images/ime-test passed without reading the label:\n{stdout}"
    );
}
