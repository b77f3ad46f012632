//! The product links no lab: `cargo tree` of the `kazashi` package's normal dependencies names
//! neither the simulator, nor the seeded randomness the fleet's keys come from (the workspace's
//! `rand_chacha`), nor the window test harness.
//!
//! One `rand_chacha` remains, an old one: the `rsa` crate (certificate checks on the card)
//! reaches it through `num-bigint-dig`'s prime generation, which the product never calls. The
//! test pins that it is only that one.
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
    let versions: Vec<(&str, &str)> = tree
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?, w.next()?))
        })
        .collect();
    // The tree is the real one: the product's own layers are in it.
    for needed in ["kazashi", "kazashi-node", "kazashi-sync", "kazashi-domain", "eframe"] {
        assert!(crates.contains(&needed), "{needed} missing from:\n{tree}");
    }
    for banned in ["kazashi-sim", "egui_kittest", "kazashi-tests"] {
        assert!(!crates.contains(&banned), "the product links {banned}:\n{tree}");
    }
    // The seeded generator the lab derives keys with is rand_chacha 0.10 (see the workspace's
    // Cargo.toml); any other rand_chacha must be rsa's old one.
    for (name, version) in &versions {
        if *name == "rand_chacha" {
            assert!(
                version.starts_with("v0.3."),
                "the product links the lab's seeded generator rand_chacha {version}:\n{tree}"
            );
            assert!(crates.contains(&"rsa"), "rand_chacha without rsa:\n{tree}");
        }
    }
}
