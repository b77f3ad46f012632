//! The product's window at start, for real under Xvfb (software OpenGL):
//!
//! - `kazashi` with no arguments on a laptop folder with no store opens the enrolment screen and
//!   stays open until stopped, having written nothing (no passphrase is read from anywhere);
//! - `kazashi-lab demo --tour-start` photographs the start screens (enrolment form, passphrase,
//!   enrolment request); each picture is the window's size and not blank, and the QR code in the
//!   request's picture, read with a QR decoder from the pixels the window drew, holds the
//!   request's device id and fingerprint. `docs/screens/enrol-*.png` and `unlock-*.png` are made
//!   this way (`KAZASHI_UPDATE_SCREENS=1` copies them there).
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use kazashi_tests::card_rig::skip;
use std::path::Path;
use std::process::Command;

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn xvfb(seconds: &str) -> Command {
    let mut c = Command::new("timeout");
    c.args([seconds, "xvfb-run", "-a", "-s", "-screen 0 1366x768x24"])
        .env("LIBGL_ALWAYS_SOFTWARE", "1");
    c
}

fn read_png(path: &Path) -> (usize, usize, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    assert_eq!(info.color_type, png::ColorType::Rgba, "{}", path.display());
    (info.width as usize, info.height as usize, buf)
}

#[test]
fn kazashi_with_no_arguments_opens_the_enrolment_screen_on_a_fresh_laptop() {
    if !have("xvfb-run") {
        skip("start window test: no xvfb-run (apt-get install xvfb xauth)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let laptop = dir.path().join("laptop");
    let run = xvfb("12")
        .arg(common::product_bin())
        .env("KAZASHI_DIR", &laptop)
        // Not read: the window asks on screen.
        .env("KAZASHI_PASSPHRASE", common::PASS)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        run.status.code(),
        Some(124),
        "the window should still be open when stopped: {err}"
    );
    assert!(!err.contains("kazashi:"), "{err}");
    assert!(
        !laptop.join("kazashi.db").exists(),
        "a store was made before anyone typed a passphrase"
    );
}

#[test]
fn the_start_screens_are_drawn_and_the_requests_qr_code_reads_back() {
    if !have("xvfb-run") {
        skip("start tour: no xvfb-run (apt-get install xvfb xauth)");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let run = xvfb("300")
        .arg(common::lab_bin())
        .args(["demo", "--tour-start"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "the start tour failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let snapshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screens");
    let update = std::env::var_os("KAZASHI_UPDATE_SCREENS").is_some();
    for name in ["enrol-form-ja.png", "unlock-ja.png", "enrol-ja.png"] {
        let shot = out.path().join(name);
        let (w, h, px) = read_png(&shot);
        assert_eq!((w, h), (1366, 768), "{name} is not the window's size");
        let colours: std::collections::BTreeSet<&[u8]> = px.chunks_exact(4).collect();
        assert!(colours.len() > 20, "{name} looks blank");
        if update {
            std::fs::copy(&shot, snapshots.join(name)).unwrap();
        }
    }
    // The QR code as the window drew it, read from the picture's pixels.
    let (w, h, px) = read_png(&out.path().join("enrol-ja.png"));
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| px[(y * w + x) * 4]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code on the request screen");
    let (_, text) = grids[0].decode().unwrap();
    let parts: Vec<&str> = text.split(':').collect();
    assert_eq!(parts.len(), 3, "{text}");
    assert_eq!(parts[0], "kazashi-enrol-v1");
    let device = kazashi_domain::DeviceId::from_hex(parts[1]).unwrap();
    let digits: String = kazashi_node::enrolment::fingerprint(&device)
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    assert_eq!(
        parts[2], digits,
        "the QR code's fingerprint is not its device's"
    );
}
