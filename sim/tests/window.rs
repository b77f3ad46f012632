//! The real window under Xvfb (software OpenGL): `kazashi-lab demo --tour` opens the demo, goes
//! through every key screen, photographs each as drawn, and closes. Each picture must be the
//! window's size, not blank, and close to its snapshot in `docs/screens/` (times, dates and
//! addresses differ from run to run, so a small share of pixels may). To renew the snapshots
//! after a deliberate change: `KAZASHI_UPDATE_SCREENS=1 cargo test -p kazashi-sim --test window`.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use kazashi_tests::card_rig::skip;
use std::path::{Path, PathBuf};
use std::process::Command;

const SCREENS: usize = 16;
/// Share of pixels that may differ from the snapshot.
const TOLERANCE: f64 = 0.04;

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn read_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    assert_eq!(info.color_type, png::ColorType::Rgba, "{}", path.display());
    (info.width, info.height, buf)
}

/// Share of pixels whose colour differs visibly.
fn differing(a: &[u8], b: &[u8]) -> f64 {
    let n = a.len() / 4;
    let diff = a
        .chunks_exact(4)
        .zip(b.chunks_exact(4))
        .filter(|(p, q)| p.iter().zip(q.iter()).any(|(x, y)| x.abs_diff(*y) > 40))
        .count();
    diff as f64 / n.max(1) as f64
}

#[test]
fn the_window_opens_and_draws_every_key_screen() {
    if std::env::var_os("DISPLAY").is_none() && !have("xvfb-run") {
        skip("window smoke test: no display and no xvfb-run (apt-get install xvfb xauth)");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let kazashi = env!("CARGO_BIN_EXE_kazashi-lab");
    let dir = out.path().display().to_string();
    let mut cmd = if have("xvfb-run") {
        let mut c = Command::new("timeout");
        c.args([
            "300",
            "xvfb-run",
            "-a",
            "-s",
            "-screen 0 1366x768x24",
            kazashi,
            "demo",
            "--tour",
            &dir,
        ]);
        c
    } else {
        let mut c = Command::new(kazashi);
        c.args(["demo", "--tour", &dir]);
        c
    };
    let run = cmd.env("LIBGL_ALWAYS_SOFTWARE", "1").output().unwrap();
    assert!(
        run.status.success(),
        "the tour failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut shots: Vec<PathBuf> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    shots.sort();
    assert_eq!(shots.len(), SCREENS, "{shots:?}");
    let snapshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screens");
    let update = std::env::var_os("KAZASHI_UPDATE_SCREENS").is_some();
    let mut report = Vec::new();
    for shot in &shots {
        let name = shot.file_name().unwrap();
        let (w, h, px) = read_png(shot);
        assert_eq!((w, h), (1366, 768), "{name:?} is not the window's size");
        let colours: std::collections::BTreeSet<&[u8]> = px.chunks_exact(4).collect();
        assert!(colours.len() > 50, "{name:?} looks blank");
        let snap = snapshots.join(name);
        if update {
            std::fs::create_dir_all(&snapshots).unwrap();
            std::fs::copy(shot, &snap).unwrap();
            continue;
        }
        assert!(
            snap.exists(),
            "no snapshot {}: make them with KAZASHI_UPDATE_SCREENS=1",
            snap.display()
        );
        let (sw, sh, spx) = read_png(&snap);
        assert_eq!((sw, sh), (w, h), "{name:?}: the snapshot has another size");
        let d = differing(&px, &spx);
        report.push(format!("{name:?}: {:.2} % differ", d * 100.0));
        if d > TOLERANCE {
            let kept = std::env::temp_dir().join(name);
            std::fs::copy(shot, &kept).unwrap();
            panic!(
                "{name:?} differs from its snapshot in {:.1} % of pixels (at most {:.0} %); \
                 the new picture is {}; if the change is meant, renew the snapshots with \
                 KAZASHI_UPDATE_SCREENS=1",
                d * 100.0,
                TOLERANCE * 100.0,
                kept.display()
            );
        }
    }
    println!("{}", report.join("\n"));
}

/// The product's own window (`kazashi station`) on a folder the lab enrolled: it opens, with
/// the PC/SC reader service, and runs until it is stopped — no error, no early exit.
#[test]
fn the_product_window_opens_on_an_enrolled_folder() {
    if !have("xvfb-run") {
        skip("product window test: no xvfb-run (apt-get install xvfb xauth)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    common::store(dir.path(), 1);
    let product = common::product_bin();
    let run = Command::new("timeout")
        .args(["15", "xvfb-run", "-a", "-s", "-screen 0 1366x768x24"])
        .arg(&product)
        .args([
            "station",
            "--dir",
            &d,
            "--no-mdns",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
        ])
        .env("KAZASHI_PASSPHRASE", common::PASS)
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        run.status.code(),
        Some(124),
        "the window should still be open when stopped: {err}"
    );
    assert!(!err.contains("kazashi:"), "{err}");
    // The same command on a folder nobody enrolled says so and opens nothing.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(&product)
        .args(["station", "--dir", &empty.path().display().to_string()])
        .env("KAZASHI_PASSPHRASE", common::PASS)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has not been enrolled"));
}
