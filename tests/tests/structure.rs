//! The shape of the product's code, checked on every run: no source file over 1,500 lines, and
//! no import circle between the modules of a crate (each module's `crate::…` and `super::…`
//! uses, comments aside). The lab (`sim/`) and the tests are not held to this.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const PRODUCT: [&str; 4] = ["domain/src", "sync/src", "node/src", "gui/src"];
const MAX_LINES: usize = 1500;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The names that follow `prefix` in code (not in comments).
fn uses(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find(prefix) {
            let after = &rest[i + prefix.len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
            rest = after;
        }
    }
    out
}

/// A circle in `edges`, if there is one.
fn circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut c = path[i..].to_vec();
            c.push(n.to_owned());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_owned());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for n in edges.keys() {
        if let Some(c) = visit(n, edges, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_product_file_is_over_1500_lines() {
    let mut files = Vec::new();
    for dir in PRODUCT {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 50, "found only {} files", files.len());
    let long: Vec<String> = files
        .iter()
        .filter_map(|p| {
            let n = std::fs::read_to_string(p).unwrap().lines().count();
            (n > MAX_LINES).then(|| format!("{} ({n} lines)", p.display()))
        })
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
}

#[test]
fn no_import_circle_between_the_modules_of_a_product_crate() {
    for dir in PRODUCT {
        let src = root().join(dir);
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        // Edges between top-level modules (crate::x), and between the children of one folder
        // module (super::x inside it).
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for p in &files {
            let rel = p.strip_prefix(&src).unwrap();
            let parts: Vec<String> = rel
                .with_extension("")
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            let top = parts[0].clone();
            if top == "lib" || top == "main" {
                continue;
            }
            let text = std::fs::read_to_string(p).unwrap();
            for m in uses(&text, "crate::") {
                if m != top {
                    edges.entry(top.clone()).or_default().insert(m);
                }
            }
            // A child of folder module `top` (top/x.rs) naming a sibling through super::.
            if parts.len() == 2 && parts[1] != "mod" {
                let me = format!("{top}/{}", parts[1]);
                for m in uses(&text, "super::") {
                    let sibling = format!("{top}/{m}");
                    if sibling != me && files.iter().any(|f| f.ends_with(format!("{sibling}.rs"))) {
                        edges.entry(me.clone()).or_default().insert(sibling);
                    }
                }
            }
        }
        assert!(!edges.is_empty(), "{dir}: no module uses another?");
        if let Some(c) = circle(&edges) {
            panic!("{dir}: an import circle: {}", c.join(" → "));
        }
    }
}

#[test]
fn the_circle_finder_finds_circles() {
    let mut e: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    e.entry("a".into()).or_default().insert("b".into());
    e.entry("b".into()).or_default().insert("c".into());
    assert_eq!(circle(&e), None);
    e.entry("c".into()).or_default().insert("a".into());
    assert_eq!(circle(&e).map(|c| c.len()), Some(4));
    assert_eq!(
        uses(
            "use crate::node::{A}; // crate::mesh\nlet x = crate::store::f();",
            "crate::"
        ),
        ["node", "store"].map(String::from).into()
    );
}
