//! Not a test: the MJ shrink map's first candidate for every CJK ideograph it changes, written
//! for `domain/data/gen_variants.py` (which joins it with Unihan's variant fields). Run:
//! `KAZASHI_MJ_DUMP=/tmp/mj_shrink.tsv cargo test -p kazashi-domain --test mj_shrink_dump -- --ignored`

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use jntajis::codec::mj_shrink::{MJShrinkSchemes, mj_shrink_candidates};

#[test]
#[ignore = "generates input for domain/data/gen_variants.py"]
fn dump_mj_shrink() {
    let Some(path) = std::env::var_os("KAZASHI_MJ_DUMP") else {
        return;
    };
    let mut out = String::new();
    let ranges = [
        0x3400u32..=0x4dbf,
        0x4e00..=0x9fff,
        0xf900..=0xfaff,
        0x20000..=0x3134f,
    ];
    for c in ranges.into_iter().flatten().filter_map(char::from_u32) {
        let s = c.to_string();
        if let Some(to) = mj_shrink_candidates(&s, MJShrinkSchemes::ALL).next()
            && to != s
            && to.chars().count() == 1
        {
            out.push_str(&format!("{c}\t{to}\n"));
        }
    }
    std::fs::write(path, out).unwrap();
}
