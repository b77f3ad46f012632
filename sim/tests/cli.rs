//! The `kazashi-lab` and `kazashi` binaries, run as a user would.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use std::process::Command;

fn kazashi(args: &[&str]) -> std::process::Output {
    Command::new(common::lab_bin()).args(args).output().unwrap()
}

fn product(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(common::product_bin());
    c.args(args).env_remove("KAZASHI_PASSPHRASE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn the_product_offers_no_lab_command_and_says_what_a_fresh_laptop_lacks() {
    let help = product(&["--help"], &[]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for cmd in ["station", "node", "bundle", "card", "roster", "report"] {
        assert!(text.contains(cmd), "{cmd} missing from: {text}");
    }
    for lab in ["demo", "drill", "bench", "emulate", "enrol-drill"] {
        assert!(!text.contains(lab), "the product offers {lab}: {text}");
    }
    assert!(product(&["demo"], &[]).status.code() == Some(2));
    // A folder nobody enrolled: a clear message, and nothing created in it.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let out = product(
        &["node", "--dir", &d, "--run-for", "1", "--no-mdns"],
        &[("KAZASHI_PASSPHRASE", "x")],
    );
    common::refused(&out, "has not been enrolled");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // An enrolled folder: no passphrase, or a wrong one, each says so.
    common::store(dir.path(), 1);
    let out = product(&["node", "--dir", &d, "--run-for", "1"], &[]);
    common::refused(&out, "KAZASHI_PASSPHRASE");
    let out = product(
        &["node", "--dir", &d, "--run-for", "1", "--no-mdns"],
        &[("KAZASHI_PASSPHRASE", "not the passphrase")],
    );
    common::refused(&out, "wrong passphrase");
}

#[test]
fn bad_arguments_get_clear_errors() {
    let out = kazashi(&["bench", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown benchmark"));
    let out = kazashi(&["--lang", "fr", "demo"]);
    assert!(!out.status.success());
}

#[test]
fn fold_bench_prints_json_lines() {
    let out = kazashi(&["bench", "fold", "--scale", "3000", "--runs", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut metrics = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let o = v.as_object().unwrap();
        let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["bench", "metric", "scale", "unit", "value"]);
        assert_eq!(o["bench"], "fold");
        assert_eq!(o["scale"], 3000);
        let value = o["value"].as_f64().unwrap();
        assert!(value.is_finite() && value >= 0.0, "{line}");
        metrics.push(o["metric"].as_str().unwrap().to_owned());
    }
    for m in [
        "batch_fold_time",
        "batch_fold_throughput",
        "shuffled_insert_throughput",
        "as_of_counts_all_sites",
    ] {
        assert!(
            metrics.iter().any(|x| x == m),
            "{m} missing from {metrics:?}"
        );
    }
}

/// The mesh benchmark's two modes on a small scale: every metric printed, the heal's figures
/// consistent with each other.
#[test]
fn mesh_bench_prints_propagation_and_heal() {
    let metrics = |scale: &str| -> std::collections::BTreeMap<String, f64> {
        let out = kazashi(&["bench", "mesh", "--scale", scale, "--runs", "1"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                assert_eq!(v["bench"], "mesh");
                (
                    v["metric"].as_str().unwrap().to_owned(),
                    v["value"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let p = metrics("4");
    for m in ["propagation_p50", "propagation_p99", "all_nodes_p99"] {
        assert!(p[m] > 0.0 && p[m] < 30_000.0, "{m}: {}", p[m]);
    }
    assert!(p["propagation_p50"] <= p["all_nodes_p99"]);
    let h = metrics("1000");
    assert!(h["heal_events_a"] > 0.0 && h["heal_events_b"] > 0.0);
    assert!(h["heal"] > 0.0);
    // Everything that moved crossed the wire, compressed no better than zstd does.
    assert!(h["heal_wire_bytes"] > 0.5 * h["heal_moved_compressed"]);
    let ratio = h["heal_wire_bytes"] / h["heal_moved_compressed"];
    assert!((ratio - h["heal_wire_ratio"]).abs() < 1e-6);
}

#[test]
fn the_reception_bench_prints_its_metrics() {
    let out = kazashi(&["bench", "reception", "--scale", "2000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let metrics: Vec<String> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["bench"], "reception");
            assert_eq!(v["scale"], 2000);
            assert!(v["value"].as_f64().unwrap().is_finite(), "{l}");
            v["metric"].as_str().unwrap().to_owned()
        })
        .collect();
    for m in [
        "card_to_screen_p99",
        "confirm_durable_p99",
        "frame_present_p99",
        "present_rebuild_p99",
        "present_at_site",
    ] {
        assert!(metrics.iter().any(|x| x == m), "no {m} in {metrics:?}");
    }
}

#[test]
fn a_drill_writes_its_report_and_prints_no_personal_data_and_a_bad_scenario_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/small-drill.toml");
    let out_dir = dir.path().join("report");
    let out = kazashi(&[
        "drill",
        "--scenario",
        scenario,
        "--out",
        out_dir.to_str().unwrap(),
        "--no-baseline",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("converged: true, 1 digest(s), events lost: 0"),
        "{text}"
    );
    for f in [
        "report.json",
        "report.md",
        "headcount.svg",
        "propagation.svg",
        "wire.svg",
    ] {
        assert!(out_dir.join(f).is_file(), "{f} missing");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    assert!(json["baseline"].is_null());
    assert_eq!(json["invariants"]["events_lost"], 0);
    // The drill city's names and addresses appear nowhere in what it wrote.
    let sc = kazashi_sim::scenario::Scenario::load(std::path::Path::new(scenario)).unwrap();
    let m = kazashi_sim::generate(kazashi_sim::PopulationSpec {
        households: sc.households,
        seed: sc.seed,
        today: kazashi_domain::CivilDate::parse(&sc.start_date).unwrap(),
        voters: false,
    })
    .unwrap();
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    let all = format!("{text}{md}{json}");
    for e in m.roster.entries().iter().take(200) {
        assert!(!all.contains(e.name.as_str()), "a name leaked");
        assert!(!all.contains(e.address.as_str()), "an address leaked");
    }

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\nkind = \"shelter\"\nseed = 1\nhouseholds = 10\nstart_date = \"2026-09-01\"\nhours = 2\nshelters = 3\n[shelter]\narrivals = [[0, 1]]\n[[fault]]\nkind = \"crash\"\nsite = \"S009\"\nat = 1\nrestart = 1.5\n").unwrap();
    let out = kazashi(&["drill", "--scenario", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("S009"), "{err}");
}
