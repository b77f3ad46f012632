//! The product's `kazashi card …` and the lab's `kazashi-lab bench card` as a user runs them: a
//! real pcscd with the vpcd reader, and `kazashi-lab card emulate` holding a virtual card on it.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use kazashi_tests::card_rig::{Rig, card_present, wait_for};
use serde_json::Value;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

mod common;

/// The product binary.
fn kazashi(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(common::product_bin());
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

struct Emulated(Child);

impl Drop for Emulated {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        wait_for(Duration::from_secs(10), || card_present(false));
    }
}

fn emulate(args: &[&str]) -> Emulated {
    // The reader must be empty first, or the last card still seen would pass for this one.
    assert!(
        wait_for(Duration::from_secs(10), || card_present(false)),
        "a card is still on the reader"
    );
    let mut a = vec!["card", "emulate", "--seconds", "60"];
    a.extend_from_slice(args);
    let child = Command::new(common::lab_bin())
        .args(&a)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || card_present(true)),
        "no card on the reader"
    );
    Emulated(child)
}

#[test]
fn tap_pin_bind_staff_and_possession_from_the_command_line() {
    let rig = match Rig::start() {
        Ok(r) => r,
        Err(why) => {
            kazashi_tests::card_rig::skip(&format!("card test: {why}"));
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().display().to_string();
    let env = [
        ("KAZASHI_PASSPHRASE", "drill only"),
        ("PIN", "1234"),
        ("BAD", "0000"),
    ];
    // A drill laptop's folder, enrolled by the lab; the product's card commands open it.
    let enrol = Command::new(common::lab_bin())
        .args(["enrol-drill", "--dir", store.as_str(), "--drill-fleet", "3"])
        .env("KAZASHI_PASSPHRASE", "drill only")
        .output()
        .unwrap();
    assert!(
        enrol.status.success(),
        "{}",
        String::from_utf8_lossy(&enrol.stderr)
    );
    let base = ["--dir", store.as_str()];
    let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/../sim/fixtures/cards/ca.der");

    let readers = json(&kazashi(&["card", "readers"], &[]));
    assert_eq!(readers["service"], true);

    let card = emulate(&["--resident", "40"]);
    let tap = |extra: &[&str]| {
        let mut a = vec!["card", "tap"];
        a.extend_from_slice(&base);
        a.extend_from_slice(extra);
        kazashi(&a, &env)
    };
    let first = json(&tap(&["--ca", ca]));
    assert_eq!(first["person"], Value::Null);
    assert_eq!(first["apdus"], 6);
    assert!(
        first["chain"]
            .as_str()
            .unwrap()
            .contains("失効は確認できません")
    );
    let pinned = json(&tap(&["--pin-env", "PIN"]));
    assert_eq!(pinned["match"], "strong");
    assert_eq!(pinned["bound"], true);
    let person = pinned["person"].clone();
    assert!(person.is_string());
    // Nothing personal is printed: no name, address or birth date.
    let town = kazashi_sim::population::generate(kazashi_sim::population::PopulationSpec {
        households: 300,
        seed: 1,
        today: kazashi_domain::CivilDate::new(2026, 9, 1).unwrap(),
        voters: false,
    })
    .unwrap();
    let who = &town.roster.entries()[40];
    let text = String::from_utf8(tap(&["--pin-env", "PIN"]).stdout).unwrap();
    for secret in [
        who.name
            .as_str()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned(),
        who.address.as_str().to_owned(),
        who.birth_date.to_string(),
        who.birth_date.to_string().replace('-', ""),
    ] {
        assert!(
            !text.contains(&secret),
            "the output shows {secret:?}: {text}"
        );
    }
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["person"],
        who.person.to_string()
    );
    let again = json(&tap(&[]));
    assert_eq!(again["person"], person);
    let staff = json(&tap(&["--enrol-staff", "city-0042"]));
    assert_eq!(staff["staff"], "city-0042");

    let check = json(&kazashi(
        &["card", "check", "--pin-env", "PIN", "--ca", ca],
        &env,
    ));
    assert_eq!(check["possession"], true);
    assert_eq!(check["apdus"], 11);
    let wrong = kazashi(&["card", "check", "--pin-env", "BAD"], &env);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("残り2回"));
    let wrong_en = kazashi(&["--lang", "en", "card", "check", "--pin-env", "BAD"], &env);
    assert!(String::from_utf8_lossy(&wrong_en.stderr).contains("One try left"));
    drop(card);

    // A card that is not a My Number Card, said in words.
    let _other = emulate(&["--quirk", "not-my-number-card"]);
    let o = tap(&[]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("マイナンバーカードではない"));
    drop(rig);
}

#[test]
fn card_bench_prints_apdus_and_times() {
    let rig = Rig::start();
    let out = Command::new(common::lab_bin())
        .args(["bench", "card", "--scale", "3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let metric = |m: &str| {
        lines
            .iter()
            .find(|v| v["metric"] == m)
            .map(|v| v["value"].as_f64().unwrap())
    };
    assert_eq!(metric("tap_apdus"), Some(6.0));
    assert_eq!(metric("pin_read_apdus"), Some(6.0));
    assert_eq!(metric("possession_apdus"), Some(11.0));
    assert!(metric("possession_inproc_p50").unwrap() > 0.0);
    match rig {
        Ok(_) => assert!(metric("tap_p50").unwrap() > 0.0, "no figures through pcscd"),
        Err(why) => kazashi_tests::card_rig::skip(&format!("the card bench's pcscd half: {why}")),
    }
}
