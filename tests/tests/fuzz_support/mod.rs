//! The fuzz driver shared by `tests/tests/fuzz_parsers.rs`: seeds from `fuzz/corpus/<target>/`
//! (committed) and from real encodings made at run time, mutated (bit flips, interesting
//! bytes and lengths, truncation, deletion, insertion, duplication, splices, over-long
//! varints) or replaced by structure-aware input that the target builds from
//! [`arbitrary::Unstructured`]; proptest draws the recipe bytes and runs the cases
//! (`KAZASHI_FUZZ_CASES` per target, 100,000 when unset), and shrinks a failure to a small
//! recipe whose input is printed.
//!
//! A global allocator with a ceiling ([`cap::Cap`]) backs the whole test binary: a parser that
//! believes a length field and asks for gigabytes fails the run instead of passing unnoticed.
#![allow(dead_code)]

use arbitrary::Unstructured;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What one case of a target did with its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Refused with an error (never a panic).
    Refused,
    /// Taken; `canonical` is whether the input is the re-encoding of what was decoded (`None`
    /// where the target has no encoder to compare with).
    Taken { canonical: Option<bool> },
}

/// Counts for the report.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub cases: u64,
    pub refused: u64,
    pub taken: u64,
    /// Taken although the bytes are not the canonical re-encoding.
    pub non_canonical: u64,
    pub seeds: usize,
    pub secs: f64,
}

/// Cases per target: `KAZASHI_FUZZ_CASES`, else 100,000.
pub fn cases() -> u32 {
    std::env::var("KAZASHI_FUZZ_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(100_000)
}

pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// The target's seeds: the committed corpus (`seed-*` from real encodings, `min-*` from the
/// coverage-guided fuzzer, `crash-*` inputs that once failed, each run first as it is) plus
/// `fresh` (real encodings made now). With `KAZASHI_FUZZ_WRITE_CORPUS=1` the `seed-*` files
/// are rewritten from `fresh` first.
pub fn seeds(target: &str, fresh: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let dir = corpus_dir(target);
    if std::env::var_os("KAZASHI_FUZZ_WRITE_CORPUS").is_some() {
        // Only the seeds are rewritten: the coverage-guided fuzzer's minimised corpus
        // (`min-*`) and the crash inputs kept as regression cases (`crash-*`) stay.
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
            {
                std::fs::remove_file(p).unwrap();
            }
        }
        for (i, s) in fresh.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:03}.bin")), s).unwrap();
        }
    }
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (the committed corpus)", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert!(!names.is_empty(), "{}: no seeds", dir.display());
    let mut out: Vec<Vec<u8>> = names.iter().map(|p| std::fs::read(p).unwrap()).collect();
    for s in fresh {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

const INTERESTING_BYTES: [u8; 8] = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, 0x20, 0x0a];
const INTERESTING_U32: [u32; 8] = [
    0,
    1,
    0x7f,
    0x80,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    0x0100_0000,
];

fn pos(u: &mut Unstructured<'_>, len: usize) -> usize {
    if len == 0 {
        0
    } else {
        u.choose_index(len).unwrap_or(0)
    }
}

/// One mutation of `data` (`seeds` for splices).
fn mutate_once(u: &mut Unstructured<'_>, data: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    let len = data.len();
    match u.choose_index(10).unwrap_or(0) {
        0 => {
            if len > 0 {
                let p = pos(u, len);
                let bit = u.int_in_range(0..=7u8).unwrap_or(0);
                data[p] ^= 1 << bit;
            }
        }
        1 => {
            if len > 0 {
                let p = pos(u, len);
                let i = u.choose_index(INTERESTING_BYTES.len()).unwrap_or(0);
                data[p] = if u.ratio(1, 3).unwrap_or(false) {
                    u.arbitrary().unwrap_or(0)
                } else {
                    INTERESTING_BYTES[i]
                };
            }
        }
        2 => data.truncate(pos(u, len + 1)),
        3 => {
            if len > 0 {
                let a = pos(u, len);
                let n = u.int_in_range(1..=16usize).unwrap_or(1).min(len - a);
                data.drain(a..a + n);
            }
        }
        4 => {
            let p = pos(u, len + 1);
            let n = u.int_in_range(1..=16usize).unwrap_or(1);
            let bytes: Vec<u8> = (0..n).map(|_| u.arbitrary().unwrap_or(0)).collect();
            data.splice(p..p, bytes);
        }
        5 => {
            if len > 0 {
                let a = pos(u, len);
                let n = u.int_in_range(1..=64usize).unwrap_or(1).min(len - a);
                let copy = data[a..a + n].to_vec();
                let p = pos(u, len + 1);
                data.splice(p..p, copy);
            }
        }
        6 => {
            // Splice: this input's head, another seed's tail.
            if !seeds.is_empty() {
                let other = &seeds[u.choose_index(seeds.len()).unwrap_or(0)];
                let cut = pos(u, len + 1);
                let from = pos(u, other.len() + 1);
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
        }
        7 => {
            // An interesting u32 (a length field), either byte order.
            if len >= 4 {
                let p = pos(u, len - 3);
                let v = INTERESTING_U32[u.choose_index(INTERESTING_U32.len()).unwrap_or(0)];
                let b = if u.arbitrary().unwrap_or(false) {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                };
                data[p..p + 4].copy_from_slice(&b);
            }
        }
        8 => {
            // An over-long varint: continuation bytes before a byte.
            let p = pos(u, len);
            let n = u.int_in_range(1..=9usize).unwrap_or(1);
            if let Some(b) = data.get_mut(p) {
                *b |= 0x80;
            }
            let ins: Vec<u8> = std::iter::repeat_n(0x80, n - 1).chain([0x00]).collect();
            data.splice((p + 1).min(len)..(p + 1).min(len), ins);
        }
        _ => {
            // A huge varint length where one is likely (the first bytes).
            let p = pos(u, len.min(8) + 1);
            data.splice(p..p, [0xff, 0xff, 0xff, 0xff, 0x0f]);
        }
    }
}

/// The input of one case from its recipe: a mutated seed, the target's structure-aware
/// generator, or raw bytes.
pub fn input(
    recipe: &[u8],
    seeds: &[Vec<u8>],
    generate: &dyn Fn(&mut Unstructured<'_>) -> Vec<u8>,
) -> Vec<u8> {
    let mut u = Unstructured::new(recipe);
    match u.choose_index(8).unwrap_or(0) {
        0..=4 => {
            let mut data = seeds[u.choose_index(seeds.len()).unwrap_or(0)].clone();
            let n = u.int_in_range(1..=4u8).unwrap_or(1);
            for _ in 0..n {
                mutate_once(&mut u, &mut data, seeds);
            }
            data
        }
        5 => seeds[u.choose_index(seeds.len()).unwrap_or(0)].clone(),
        6 => generate(&mut u),
        _ => raw(&mut u),
    }
}

/// No structure: the recipe's remaining bytes.
pub fn raw(u: &mut Unstructured<'_>) -> Vec<u8> {
    let n = u.len();
    u.bytes(n).unwrap_or_default().to_vec()
}

/// Run `check` on `cases()` inputs (the seeds first, each as it is). `check` must not panic;
/// its verdicts are counted. A failure is shrunk and its input printed in hex.
pub fn run(
    target: &str,
    seeds: &[Vec<u8>],
    generate: &dyn Fn(&mut Unstructured<'_>) -> Vec<u8>,
    check: &mut dyn FnMut(&[u8]) -> Verdict,
) -> Stats {
    run_n(target, seeds, generate, check, cases())
}

/// [`run`] with `n` generated cases.
pub fn run_n(
    target: &str,
    seeds: &[Vec<u8>],
    generate: &dyn Fn(&mut Unstructured<'_>) -> Vec<u8>,
    check: &mut dyn FnMut(&[u8]) -> Verdict,
    n: u32,
) -> Stats {
    let t = Instant::now();
    let mut stats = Stats {
        seeds: seeds.len(),
        ..Stats::default()
    };
    let count = |v: Verdict, stats: &mut Stats| {
        stats.cases += 1;
        match v {
            Verdict::Refused => stats.refused += 1,
            Verdict::Taken { canonical } => {
                stats.taken += 1;
                if canonical == Some(false) {
                    stats.non_canonical += 1;
                }
            }
        }
    };
    quiet_panics();
    for s in seeds {
        match checked(&mut *check, s) {
            Ok(v) => count(v, &mut stats),
            Err(why) => {
                // Printed first: the panic hook keeps this thread's panics quiet.
                let why = format!("{target}: {why} on seed input {}", hex(s));
                eprintln!("{why}");
                panic!("{why}");
            }
        }
    }
    let stats_cell = std::cell::RefCell::new(stats);
    let check = std::cell::RefCell::new(check);
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..Config::default()
    });
    let result = runner.run(&prop::collection::vec(any::<u8>(), 0..384), |recipe| {
        let data = input(&recipe, seeds, generate);
        match checked(&mut **check.borrow_mut(), &data) {
            Ok(v) => {
                count(v, &mut stats_cell.borrow_mut());
                Ok(())
            }
            Err(why) => Err(TestCaseError::fail(format!(
                "{target}: {why} on input {}",
                hex(&data)
            ))),
        }
    });
    let mut stats = stats_cell.into_inner();
    stats.secs = t.elapsed().as_secs_f64();
    if let Err(e) = result {
        eprintln!("{target}: {e}");
        panic!("{target}: {e}");
    }
    eprintln!(
        "fuzz {target}: {} cases ({} seeds) in {:.1} s: {} refused, {} taken, {} taken non-canonical",
        stats.cases, stats.seeds, stats.secs, stats.refused, stats.taken, stats.non_canonical
    );
    stats
}

thread_local! {
    /// The last panic's message and place on this thread (the shrinking repeats it quietly).
    static LAST_PANIC: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Panics on the fuzz targets' threads are recorded, not printed: shrinking a failure panics
/// hundreds of times, and the failure's message carries the last one.
/// One case: its verdict, or what panicked — escaping `check`, or caught on the way by the
/// code under test (a panic contained is still a bug to fix, found by the same input).
fn checked(check: &mut dyn FnMut(&[u8]) -> Verdict, data: &[u8]) -> Result<Verdict, String> {
    LAST_PANIC.with(|p| p.borrow_mut().clear());
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(data)));
    let last = LAST_PANIC.with(|p| std::mem::take(&mut *p.borrow_mut()));
    match outcome {
        Err(_) => Err(format!("panicked ({last})")),
        Ok(_) if !last.is_empty() => Err(format!("panicked, contained by the code ({last})")),
        Ok(v) => Ok(v),
    }
}

fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let on_target = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("fuzz_"));
            if on_target {
                let place = info.location().map(|l| l.to_string()).unwrap_or_default();
                let what = info
                    .payload()
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| {
                        info.payload()
                            .downcast_ref::<&str>()
                            .map(|s| (*s).to_owned())
                    })
                    .unwrap_or_default();
                // KAZASHI_FUZZ_BACKTRACE=1: where it panicked, for the report.
                let trace = if std::env::var_os("KAZASHI_FUZZ_BACKTRACE").is_some() {
                    format!("\n{}", std::backtrace::Backtrace::force_capture())
                } else {
                    String::new()
                };
                LAST_PANIC.with(|p| *p.borrow_mut() = format!("{what} at {place}{trace}"));
            } else {
                previous(info);
            }
        }));
    });
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A postcard varint.
pub fn varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A postcard byte string or str: a varint length (sometimes a lie), then bytes.
pub fn bytes_field(u: &mut Unstructured<'_>, out: &mut Vec<u8>, body: &[u8]) {
    let lie = u.ratio(1, 8).unwrap_or(false);
    let len = if lie {
        u.arbitrary::<u32>().unwrap_or(0) as u64
    } else {
        body.len() as u64
    };
    varint(out, len);
    out.extend_from_slice(body);
}
