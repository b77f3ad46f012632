//! USB bundles between two `kazashi node` laptops that never share a network: the round trip,
//! a bundle for one peer, and every refusal, through the real binary and real store files.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::{json, kazashi, refused, store, store_in, write_alone};
use std::path::Path;
use std::process::Output;

fn bundle(action: &str, dir: &Path, index: usize, extra: &[&str]) -> Output {
    let mut args: Vec<String> = vec!["bundle".into(), action.into()];
    args.extend(store(dir, index));
    args.extend(extra.iter().map(|s| s.to_string()));
    kazashi(&args)
}

#[test]
fn a_bundle_carries_the_log_between_laptops_with_no_network_and_bad_ones_change_nothing() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let files = tempfile::tempdir().unwrap();
    let a_status = write_alone(a.path(), 1, 8);
    let b_status = write_alone(b.path(), 2, 5);
    assert_eq!(a_status["events"], 8);
    assert_eq!(b_status["events"], 5);
    let a_device = a_status["device"].as_str().unwrap().to_owned();

    // A's stick: everything A has.
    let stick = files.path().join("a.kzb");
    let e = json(&bundle(
        "export",
        a.path(),
        1,
        &["--out", stick.to_str().unwrap()],
    ));
    assert_eq!(e["events"], 8);
    let i = json(&bundle("import", b.path(), 2, &[stick.to_str().unwrap()]));
    assert_eq!(i["added"], 8);
    assert_eq!(i["author"], a_device.as_str());
    assert_eq!(i["events"], 13);

    // The same file again: refused as a replay; B's own file: refused as its own.
    refused(
        &bundle("import", b.path(), 2, &[stick.to_str().unwrap()]),
        "imported before",
    );
    let bytes = std::fs::read(&stick).unwrap();
    // A copy cut short, a flipped byte, not a bundle at all.
    let cut = files.path().join("cut.kzb");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    refused(
        &bundle("import", b.path(), 2, &[cut.to_str().unwrap()]),
        "cut short",
    );
    let flipped = files.path().join("flipped.kzb");
    let mut f = bytes.clone();
    let n = f.len();
    f[n - 20] ^= 1;
    std::fs::write(&flipped, &f).unwrap();
    refused(
        &bundle("import", b.path(), 2, &[flipped.to_str().unwrap()]),
        "damaged",
    );
    let junk = files.path().join("photo.jpg");
    std::fs::write(&junk, b"\xff\xd8\xff\xe0 not a bundle").unwrap();
    refused(
        &bundle("import", b.path(), 2, &[junk.to_str().unwrap()]),
        "not a Kazashi bundle",
    );
    // A laptop of another drill deployment (another town) cannot use it.
    let other = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = vec!["bundle".into(), "import".into()];
    args.extend(store_in(other.path(), 1, 4));
    args.push(stick.display().to_string());
    refused(&kazashi(&args), "another deployment");

    // B's stick for A: only what A lacks (B's five), and A ends up holding what B holds.
    let back = files.path().join("b-for-a.kzb");
    json(&bundle(
        "export",
        b.path(),
        2,
        &["--out", back.to_str().unwrap(), "--for", &a_device],
    ));
    let whole = files.path().join("b-all.kzb");
    json(&bundle(
        "export",
        b.path(),
        2,
        &["--out", whole.to_str().unwrap(), "--all"],
    ));
    let (lean, full) = (
        std::fs::metadata(&back).unwrap().len(),
        std::fs::metadata(&whole).unwrap().len(),
    );
    assert!(
        lean < full,
        "the bundle for A is not smaller: {lean} vs {full}"
    );
    let i = json(&bundle("import", a.path(), 1, &[back.to_str().unwrap()]));
    assert_eq!(i["added"], 5);
    assert_eq!(i["events"], 13);
    refused(
        &bundle("import", b.path(), 2, &[whole.to_str().unwrap()]),
        "made by this laptop",
    );

    // Both laptops now hold the same events.
    let a_after = write_alone(a.path(), 1, 0);
    let b_after = write_alone(b.path(), 2, 0);
    assert_eq!(a_after["events"], 13);
    assert_eq!(a_after["digest"], b_after["digest"]);
}
