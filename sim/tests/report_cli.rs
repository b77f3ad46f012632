//! `kazashi report`: the command center's files from a real store, through the real binary —
//! each kind written and read back, one shelter's list a part of the whole, as-of cuts, and
//! every refusal in words with nothing written.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::{json, kazashi, refused, store, write_alone};
use std::path::Path;
use std::process::Output;

fn report(dir: &Path, kind: &str, extra: &[&str]) -> Output {
    let mut args: Vec<String> = vec!["report".into(), kind.into()];
    args.extend(store(dir, 1));
    args.extend(extra.iter().map(|s| s.to_string()));
    kazashi(&args)
}

/// Refused in words, with nothing on stdout.
fn refused_quietly(out: &Output, words: &str) {
    refused(out, words);
    assert!(out.stdout.is_empty());
}

#[test]
fn reports_are_written_read_back_and_refused_in_words() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("laptop");
    // Laptop 1 (shelter S001) checks people in, alone.
    write_alone(&dir, 1, 12);

    // The whole list, UTF-8 with BOM, into export/ beside the store.
    let all = json(&report(&dir, "evacuees", &[]));
    let path = std::path::PathBuf::from(all["file"].as_str().unwrap());
    assert_eq!(path.parent().unwrap(), dir.join("export"));
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    let rows = all["rows"].as_u64().unwrap();
    assert!(rows >= 12, "{all}");
    assert_eq!(text.lines().count() as u64, rows + 1);
    assert!(text.starts_with("避難所,氏名,フリガナ"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("export"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "export folder open to others: {mode:o}");
    }

    // The same list in CP932: no BOM, the header in Shift_JIS bytes (避 = 0x94 0xF0).
    let out = dir.join("list-sjis.csv");
    let sjis = json(&report(
        &dir,
        "evacuees-sjis",
        &["--out", out.to_str().unwrap()],
    ));
    assert_eq!(sjis["rows"], all["rows"]);
    let b = std::fs::read(&out).unwrap();
    assert!(b.starts_with(&[0x94, 0xF0]), "{:x?}", &b[..4]);
    assert!(!out.with_extension("partial").exists());

    // One shelter's list: this laptop checked everyone in at its own shelter, S001, so its
    // list is the whole and S002's is empty.
    let s1 = json(&report(&dir, "evacuees", &["--site", "S001"]));
    assert!(s1["file"].as_str().unwrap().contains("S001"));
    assert_eq!(s1["rows"], all["rows"]);
    let s2 = json(&report(&dir, "evacuees", &["--site", "S002"]));
    assert_eq!(s2["rows"], 0);

    // Before anything was written, the list is empty.
    let early = json(&report(&dir, "evacuees", &["--as-of", "2020-01-01 09:00"]));
    assert_eq!(early["rows"], 0);

    // PFIF for the public: nobody here gave consent (no household cards), so nobody is in it,
    // and the output says why.
    let p = json(&report(&dir, "pfif", &[]));
    assert_eq!(p["rows"], 0);
    assert_eq!(p["left_out"]["no_consent"].as_u64().unwrap(), rows);
    let xml = std::fs::read_to_string(p["file"].as_str().unwrap()).unwrap();
    assert!(xml.contains("pfif"));
    assert!(!p["notes"].as_array().unwrap().is_empty());

    // The printable list: a PDF with as many rows (the set-up scripts install the font).
    let pdf = json(&report(&dir, "evacuees-pdf", &[]));
    assert_eq!(pdf["rows"], all["rows"]);
    assert!(
        std::fs::read(pdf["file"].as_str().unwrap())
            .unwrap()
            .starts_with(b"%PDF")
    );

    // Status: one row per shelter of the drill city.
    let s = json(&report(&dir, "status", &[]));
    assert_eq!(s["rows"], 5);

    // Refusals: in words, nothing on stdout.
    refused_quietly(&report(&dir, "turnout", &[]), "for elections");
    refused(
        &report(&dir, "evacuees", &["--site", "Z999"]),
        "not a shelter",
    );
    refused(
        &report(&dir, "status", &["--site", "S001"]),
        "leave out --site",
    );
    refused(
        &report(&dir, "evacuees", &["--as-of", "yesterday"]),
        "YYYY-MM-DD HH:MM",
    );
    refused(
        &report(&dir, "evacuees", &["--as-of", "2099-01-01 00:00"]),
        "future",
    );
    refused_quietly(&report(&dir, "everything", &[]), "unknown report");
}

#[test]
fn every_report_is_on_the_audit_record_with_the_staff_id_only_if_it_is_staff_here() {
    use kazashi_domain::audit::{AuditAction, ExportKind};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("laptop");
    write_alone(&dir, 1, 3);
    json(&report(&dir, "evacuees", &[]));
    json(&report(&dir, "status", &["--staff", "1234"]));
    // A refused report writes no file and no record.
    refused(&report(&dir, "turnout", &[]), "for elections");
    let (node, _) = kazashi_node::enrolled::open(
        &kazashi_node::enrolled::Folder::new(&dir),
        common::PASS,
        common::PASS,
        kazashi_node::SystemClock,
    )
    .unwrap();
    let rows = node.audit_rows(&kazashi_node::audit::AuditFilter::default());
    let exports: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.detail.clone(), r.staff.as_str().to_owned()))
        .collect();
    assert_eq!(exports.len(), 2, "{exports:?}");
    // The id typed was not staff on this laptop (a PIN, say): the record names nobody.
    assert!(
        exports
            .iter()
            .all(|(_, staff)| staff == kazashi_node::audit::NOBODY)
    );
    let kinds: Vec<bool> = node
        .state()
        .events_unordered()
        .filter_map(|e| match e.body() {
            kazashi_domain::EventBody::Audit(r) => Some(matches!(
                r.action,
                AuditAction::Export {
                    kind: ExportKind::Evacuees | ExportKind::Status,
                    ..
                }
            )),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, vec![true, true]);
    assert!(node.audit_chains().iter().all(|c| c.intact()));
}
