//! The libFuzzer binary for every target of `kazashi-fuzz`: `KAZASHI_FUZZ_TARGET=<name>`
//! picks one (see `kazashi_fuzz::TARGETS`); the arguments are libFuzzer's (a corpus folder to
//! grow, `-max_total_time=N`, files to replay, `-merge=1` to minimise). Built and run by
//! `script/fuzz`.
#![no_main]

use cap::Cap;
use std::alloc::System;

/// Every allocation counts against one ceiling: a parser that believes a length field and
/// asks for gigabytes aborts the run (a crash libFuzzer saves) instead of passing unnoticed.
#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, 1 << 30);

static TARGET: std::sync::OnceLock<fn(&[u8])> = std::sync::OnceLock::new();

libfuzzer_sys::fuzz_target!(
    init: {
        // KAZASHI_FUZZ_WRITE_SEEDS=<corpus folder>: write the seeds made from other targets'
        // seeds (bundle_import's, from the real bundle), then run as asked.
        if let Some(dir) = std::env::var_os("KAZASHI_FUZZ_WRITE_SEEDS") {
            kazashi_fuzz::write_bundle_import_seed(std::path::Path::new(&dir));
        }
        let name = std::env::var("KAZASHI_FUZZ_TARGET").unwrap_or_default();
        match kazashi_fuzz::target(&name) {
            Some(f) => {
                let _ = TARGET.set(f);
            }
            None => {
                eprintln!(
                    "KAZASHI_FUZZ_TARGET must name a target: {}",
                    kazashi_fuzz::TARGETS.join(" ")
                );
                std::process::exit(2);
            }
        }
    },
    |data: &[u8]| {
        if let Some(f) = TARGET.get() {
            f(data);
        }
    }
);
