//! The product links no lab: `cargo tree` of the `kazashi` package's normal dependencies names
//! neither the simulator, nor the seeded generator the drill fleet's keys come from
//! (`rand_chacha`), nor the window test harness.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::process::Command;

#[test]
fn the_product_binary_links_no_simulator_no_seeded_keys_no_test_harness() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let out = Command::new(cargo)
        .args([
            "tree",
            "--manifest-path",
            manifest,
            "-p",
            "kazashi",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--locked",
            "--offline",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    // The tree is the real one: the product's own layers are in it.
    for needed in [
        "kazashi",
        "kazashi-node",
        "kazashi-sync",
        "kazashi-domain",
        "eframe",
    ] {
        assert!(crates.contains(&needed), "{needed} missing from:\n{tree}");
    }
    for banned in [
        "kazashi-sim",
        "rand_chacha",
        "egui_kittest",
        "kazashi-tests",
    ] {
        assert!(
            !crates.contains(&banned),
            "the product links {banned}:\n{tree}"
        );
    }
}
