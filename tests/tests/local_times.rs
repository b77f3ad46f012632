//! Times in messages are local (JST) times, never raw milliseconds: the window's message
//! catalogues name no millisecond placeholder, no error message of the product crates prints a
//! raw `Millis` field, and the errors that carry an instant show it as `YYYY-MM-DD HH:MM`.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

/// 2026-12-06 04:50:17 UTC, which is 13:50 in Japan.
const AT: u64 = 1_796_532_617_000;
const AT_JST: &str = "2026-12-06 13:50";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

/// Whether a placeholder's name says it holds milliseconds.
fn millis_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "ms" || n.ends_with("_ms") || n.ends_with("-ms") || n.contains("millis")
}

#[test]
fn no_message_in_the_catalogues_takes_raw_milliseconds() {
    let mut ftl = Vec::new();
    files(&root().join("gui/i18n"), "ftl", &mut ftl);
    assert!(ftl.len() >= 2, "the catalogues are found");
    let mut bad = Vec::new();
    for f in &ftl {
        let text = std::fs::read_to_string(f).unwrap();
        for (i, line) in text.lines().enumerate() {
            for part in line.split("{ $").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
                    .collect();
                if millis_name(&name) || part.trim_start_matches(&name).starts_with(" } ms") {
                    bad.push(format!("{}:{}: {line}", f.display(), i + 1));
                }
            }
        }
    }
    assert!(bad.is_empty(), "raw milliseconds in messages: {bad:#?}");
}

#[test]
fn no_error_message_prints_a_raw_millisecond_field() {
    let mut rs = Vec::new();
    for c in ["domain/src", "sync/src", "node/src", "gui/src"] {
        files(&root().join(c), "rs", &mut rs);
    }
    assert!(rs.len() > 20, "the sources are found");
    let mut bad = Vec::new();
    for f in &rs {
        let text = std::fs::read_to_string(f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let t = line.trim_start();
            if !(t.starts_with("#[error(") || t.starts_with('"')) {
                continue;
            }
            // `{until}`, `{imported_ms}`, `{0} ms`: a placeholder naming an instant, shown raw.
            for part in t.split('{').skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let rest = &part[name.len()..];
                let raw = millis_name(&name)
                    || matches!(name.as_str(), "until" | "closed_at" | "at" | "from_ms")
                    || rest.starts_with("} ms");
                if raw && rest.starts_with('}') {
                    bad.push(format!("{}:{}: {t}", f.display(), i + 1));
                }
            }
        }
    }
    bad.dedup();
    assert!(
        bad.is_empty(),
        "raw milliseconds in error messages: {bad:#?}"
    );
}

#[test]
fn errors_carrying_an_instant_show_it_in_japan_time() {
    let shown = [
        kazashi_sync::BundleError::AlreadyImported { imported_ms: AT }.to_string(),
        kazashi_node::possession::Refusal::Locked { until: AT }.to_string(),
        kazashi_node::staff::LoginError::Locked { until: AT }.to_string(),
        kazashi_node::deployment_admin::AdminError::Closed(AT).to_string(),
        kazashi_node::deployment_admin::AdminError::RetentionRunning {
            closed_at: AT,
            days: 0,
            until: AT,
        }
        .to_string(),
        kazashi_node::node::WriteBlock::Closed { at: AT }.to_string(),
        kazashi_node::node::WriteBlock::Revoked { from: AT }.to_string(),
    ];
    for s in &shown {
        assert!(s.contains(AT_JST), "{s:?} does not show {AT_JST}");
        assert!(!s.contains(&AT.to_string()), "{s:?} shows raw milliseconds");
    }
    assert_eq!(kazashi_domain::time::jst_text(AT), AT_JST);
}
