//! Kazashi's coverage-guided fuzz targets (issue 25, requirement 4): one per parser that takes
//! outside bytes, each calling the product's own decoding entry point with the invariants of
//! `tests/tests/fuzz_parsers.rs` — nothing panics, no allocation passes the binary's ceiling
//! (1 GiB, see `src/bin/kazashi-fuzz.rs`), what decodes re-decodes alike from its re-encoding,
//! and a canonical format takes only its canonical bytes.
//!
//! One binary serves every target (one instrumented link on a two-core laptop instead of
//! twenty); the target is named by `KAZASHI_FUZZ_TARGET`. `script/fuzz` builds and runs it.
//! The town the node-backed targets need (roster, signed manifest, the lab's seeded keys) is
//! read from `fuzz/fixtures/` so that this crate links no lab.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod fixture;
mod targets;

pub use targets::write_bundle_import_seed;

/// Every target, as `script/fuzz` runs them (the corpus of each is `fuzz/corpus/<name>/`).
pub const TARGETS: &[&str] = &[
    "hello",
    "link_frames",
    "sync_message",
    "sync_ingest",
    "envelope",
    "event",
    "manifest",
    "bundle",
    "bundle_import",
    "sealed_note",
    "roster_csv_utf8",
    "roster_csv_cp932",
    "roster_transfer",
    "card_session",
    "card_cert",
    "card_tlv",
    "admission_ticket",
    "enrol_request",
    "enrol_net",
    "typed_text",
    "admin_files",
    "update_file",
    "update_pin",
];

/// The function of target `name`, if there is one.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    use targets::*;
    Some(match name {
        "hello" => hello,
        "link_frames" => link_frames,
        "sync_message" => sync_message,
        "sync_ingest" => sync_ingest,
        "envelope" => envelope,
        "event" => event,
        "manifest" => manifest,
        "bundle" => bundle,
        "bundle_import" => bundle_import,
        "sealed_note" => sealed_note,
        "roster_csv_utf8" => roster_csv_utf8,
        "roster_csv_cp932" => roster_csv_cp932,
        "roster_transfer" => roster_transfer,
        "card_session" => card_session,
        "card_cert" => card_cert,
        "card_tlv" => card_tlv,
        "admission_ticket" => admission_ticket,
        "enrol_request" => enrol_request,
        "enrol_net" => enrol_net,
        "typed_text" => typed_text,
        "admin_files" => admin_files,
        "update_file" => update_file,
        "update_pin" => update_pin,
        _ => return None,
    })
}
