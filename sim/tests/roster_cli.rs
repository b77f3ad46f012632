//! `kazashi roster` as a municipal clerk runs it, and a station that takes its roster from the
//! roster store only if it is the one pinned in the deployment manifest.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::process::{Command, Output};

mod common;

/// The product, or the lab for what only the lab does (the synthetic city's sample file and
/// enrolling a drill laptop).
fn kazashi(dir: &std::path::Path, args: &[&str]) -> Output {
    let (bin, args): (_, Vec<&str>) = match args {
        ["roster", "sample", rest @ ..] => (
            common::lab_bin(),
            std::iter::once("roster-sample")
                .chain(rest.iter().copied())
                .collect(),
        ),
        ["enrol-drill", ..] => (common::lab_bin(), args.to_vec()),
        _ => (common::product_bin(), args.to_vec()),
    };
    Command::new(bin)
        .args(args)
        .current_dir(dir)
        .env("KAZASHI_ROSTER_PASSPHRASE", "roster-pass")
        .env("KAZASHI_PASSPHRASE", "store-pass")
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or("")).unwrap()
}

#[test]
fn import_pins_and_a_station_refuses_another_roster() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    // The drill city's roster as a municipality would export it. In CP932 the glyphs it lacks
    // (𠮷) become 〓 and are counted — that file is another roster.
    let sjis = json(&kazashi(
        p,
        &[
            "roster",
            "sample",
            "--out",
            "sjis.csv",
            "--encoding",
            "cp932",
        ],
    ));
    assert!(sjis["cells_with_glyphs_cp932_lacks"].as_u64().unwrap() > 0);
    let lint = json(&kazashi(p, &["roster", "lint", "sjis.csv"]));
    assert_ne!(lint["hash"], sjis["hash"]);
    let sample = json(&kazashi(p, &["roster", "sample", "--out", "town.csv"]));
    let lint = json(&kazashi(p, &["roster", "lint", "town.csv"]));
    assert_eq!(lint["hash"], sample["hash"]);
    let imp = json(&kazashi(
        p,
        &[
            "roster",
            "import",
            "town.csv",
            "--out",
            "roster.db",
            "--insecure-fast-kdf",
        ],
    ));
    assert_eq!(
        imp["hash"], sample["hash"],
        "CSV → store keeps the roster exactly"
    );
    let info = json(&kazashi(p, &["roster", "info", "roster.db"]));
    assert_eq!(info["persons"], sample["persons"]);
    // A station of the drill fleet starts on it: it is the roster the manifest pins.
    json(&kazashi(
        p,
        &["enrol-drill", "--dir", "s1", "--drill-fleet", "1"],
    ));
    let node = |db: &str, store: &str| {
        kazashi(
            p,
            &[
                "node",
                "--dir",
                store,
                "--roster",
                db,
                "--no-mdns",
                "--port",
                "0",
                "--bind",
                "127.0.0.1",
                "--run-for",
                "1",
            ],
        )
    };
    let ok = node("roster.db", "s1");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // One row changed: lints clean, imports, but no station of this deployment will use it.
    let text = String::from_utf8(std::fs::read(p.join("town.csv")).unwrap()).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut cols: Vec<String> = lines[1].split(',').map(str::to_owned).collect();
    cols[2].push('子'); // 氏名 of the first person
    lines[1] = cols.join(",");
    let changed = lines.join("\r\n") + "\r\n";
    std::fs::write(p.join("other.csv"), changed).unwrap();
    let imp2 = json(&kazashi(
        p,
        &[
            "roster",
            "import",
            "other.csv",
            "--out",
            "other.db",
            "--insecure-fast-kdf",
        ],
    ));
    assert_ne!(imp2["hash"], sample["hash"]);
    let refused = node("other.db", "s1");
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("pinned in the deployment manifest"), "{err}");
    // --expect-hash refuses before anything is written.
    let pinned = sample["hash"].as_str().unwrap();
    let out = kazashi(
        p,
        &[
            "roster",
            "import",
            "other.csv",
            "--out",
            "third.db",
            "--insecure-fast-kdf",
            "--expect-hash",
            pinned,
        ],
    );
    assert!(!out.status.success());
    assert!(!p.join("third.db").exists());
    // A refused file changes nothing: the store is as it was.
    let before = std::fs::read(p.join("roster.db")).unwrap();
    std::fs::write(p.join("bad.csv"), "宛名番号,世帯番号\r\nA1,H1\r\n").unwrap();
    let out = kazashi(
        p,
        &[
            "roster",
            "import",
            "bad.csv",
            "--out",
            "roster.db",
            "--insecure-fast-kdf",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing-column"));
    assert_eq!(std::fs::read(p.join("roster.db")).unwrap(), before);
}
