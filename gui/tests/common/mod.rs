//! What the product's command-line tests share: the `kazashi` binary with no passphrase taken
//! from the caller's environment, a command's JSON answer, a refusal's words, paths as text.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

pub const ADMIN_PASS: &str = "administrator passphrase";
pub const LAPTOP_PASS: &str = "laptop passphrase";
pub const ROSTER_PASS: &str = "roster passphrase";

/// `kazashi args…` with exactly the passphrase variables in `env`.
pub fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kazashi"));
    c.args(args)
        .env_remove("KAZASHI_PASSPHRASE")
        .env_remove("KAZASHI_ROSTER_PASSPHRASE")
        .env_remove("KAZASHI_ADMIN_PASSPHRASE");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

pub fn kazashi(args: &[&str], env: &[(&str, &str)]) -> Output {
    command(args, env).output().unwrap()
}

/// The command succeeded: its last line, as JSON.
pub fn ok(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The command was refused, saying `words`.
pub fn refused(out: &Output, words: &str) {
    assert!(!out.status.success(), "not refused: {out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(words), "expected {words:?} in: {err}");
}

/// The folder's file names, sorted.
pub fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn s(p: &Path) -> String {
    p.display().to_string()
}
