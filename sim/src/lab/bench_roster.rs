//! `kazashi-lab bench roster --scale N`: an N-person roster (N/2.2 households of the synthetic
//! city) written as a UTF-8 CSV file; then, in `--runs` fresh child processes (at most 5, so
//! that the town the parent generated does not count in their memory), the product's import
//! (`roster_import::import_file`, what `kazashi roster import` runs: the file streamed, linted
//! and written into the encrypted roster store with its indexes), timed:
//!
//! - `import_total` and `import_rows_per_s`: the whole import, file to open store;
//! - `import_peak_rss`: the child's VmHWM right after the import (the import's own peak);
//! - `lookup_by_id`: one entry by 宛名番号 (p50/p99);
//! - `search_name`: staff-style name searches — a full name in kanji (異体字 folded), a reading
//!   in katakana, a family name with a birth date in 和暦, a two-character family name —
//!   at most 20 hits each (p50/p99);
//! - `verify`: every entry read back and checked against the pinned hash, streamed (a
//!   station's start with the roster on disk);
//! - `csv_bytes`, `store_bytes` (both files of the store).
//!
//! Each child's lines are printed with `"run"`, then `import_total_median` and
//! `import_peak_rss_median`. The CSV and the store go to `KAZASHI_BENCH_DIR` if set.

use crate::bench::{emit, emit_percentiles, ms};
use crate::bench_log::TempDir;
use kazashi_domain::ids::{PersonId, RosterHash};
use kazashi_domain::roster::RosterKind;
use kazashi_node::KdfParams;
use kazashi_node::roster_csv::{Mapping, ReadOptions, write};
use kazashi_node::roster_db::RosterDb;
use kazashi_node::roster_import::{ImportOptions, import_file};
use rand::{RngExt, SeedableRng};
use std::path::Path;
use std::time::Instant;

const CSV: &str = "roster.csv";
const SAMPLE: &str = "sample.txt";
const HASH: &str = "hash.txt";

pub fn run(args: &crate::bench::BenchArgs) -> Result<(), String> {
    let n = args.scale;
    if !(1000..=20_000_000).contains(&n) {
        return Err("--scale (roster persons) must be between 1000 and 20000000".into());
    }
    if let Some(dir) = &args.child_open {
        return child(n, dir);
    }
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let dir = TempDir::for_bench("roster")?;
    let persons = {
        let m = crate::bench::town_of_people(n, args.seed)?;
        let persons = m.roster.len();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed);
        let ids: Vec<String> = (0..500)
            .filter_map(|_| m.roster.entries().get(rng.random_range(0..persons)))
            .map(|x| x.person.to_string())
            .collect();
        std::fs::write(dir.0.join(SAMPLE), ids.join("\n")).map_err(|x| e(&x))?;
        std::fs::write(dir.0.join(HASH), m.roster.hash().to_hex()).map_err(|x| e(&x))?;
        let csv = write(&m.roster);
        drop(m);
        std::fs::write(dir.0.join(CSV), csv.as_bytes()).map_err(|x| e(&x))?;
        emit("roster", "csv_bytes", csv.len() as f64, "bytes", persons);
        persons
    };
    crate::bench::child_runs(
        "roster",
        n,
        persons,
        &dir.0,
        args.runs,
        &[("import_total", "s"), ("import_peak_rss", "MiB")],
    )
}

/// The child: import the CSV in `dir` as `kazashi roster import` does, and measure.
fn child(n: usize, dir: &Path) -> Result<(), String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let expect = RosterHash::from_hex(&std::fs::read_to_string(dir.join(HASH)).map_err(|x| e(&x))?)
        .map_err(|x| e(&x))?;
    let path = dir.join("roster.db");
    let read = ReadOptions {
        kind: RosterKind::Residents,
        mapping: Mapping::default(),
        today: kazashi_domain::CivilDate::new(2026, 9, 1).map_err(|x| e(&x))?,
        encoding: None,
    };
    let opts = ImportOptions {
        read: &read,
        passphrase: "bench",
        params: KdfParams::FAST_INSECURE,
        expect: Some(expect),
    };
    let t = Instant::now();
    let (db, _lint) =
        import_file(&dir.join(CSV), &path, &opts, &mut |_, _, _| {}).map_err(|x| e(&x))?;
    let total = t.elapsed().as_secs_f64();
    let persons = usize::try_from(db.len()).unwrap_or(n);
    emit("roster", "import_total", total, "s", persons);
    emit(
        "roster",
        "import_rows_per_s",
        persons as f64 / total,
        "rows/s",
        persons,
    );
    if let Some((_, peak)) = crate::bench::memory_mib() {
        emit("roster", "import_peak_rss", peak, "MiB", persons);
    }
    // The hash was checked against the generated roster's by the import (`expect`).
    let store_bytes: u64 = [path.clone(), kazashi_node::roster_db::text_path(&path)]
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    emit(
        "roster",
        "store_bytes",
        store_bytes as f64,
        "bytes",
        persons,
    );
    // Lookups and searches on a freshly opened store (its page cache cold, the OS's warm).
    drop(db);
    let db = RosterDb::open(&path, "bench").map_err(|x| e(&x))?;
    let ids = std::fs::read_to_string(dir.join(SAMPLE)).map_err(|x| e(&x))?;
    let mut sample = Vec::new();
    let mut look = Vec::new();
    for id in ids.lines() {
        let p = PersonId::new(id).map_err(|x| e(&x))?;
        let t = Instant::now();
        let got = db.get(&p).map_err(|x| e(&x))?;
        look.push(ms(t));
        sample.push(got.ok_or_else(|| format!("lookup of {p} failed"))?);
    }
    emit_percentiles("roster", "lookup_by_id", &look, "ms", persons);
    let mut search = Vec::new();
    let mut found = 0usize;
    for (i, s) in sample.iter().enumerate() {
        let family = |t: &str| t.split([' ', '　']).next().unwrap_or("").to_owned();
        let q = match i % 4 {
            0 => s.name.as_str().to_owned(),
            1 => s.kana.as_str().to_owned(),
            2 => format!(
                "{} {}",
                family(s.kana.as_str()),
                kazashi_node::print::wareki(s.birth_date)
            ),
            _ => family(s.name.as_str()).chars().take(2).collect(),
        };
        let t = Instant::now();
        let hits = db.search(&q, 20).map_err(|x| e(&x))?;
        search.push(ms(t));
        // A name as common as 田中 太郎 may have more than 20 bearers: those are not counted.
        if i % 4 != 3 && (hits.len() == 20 || hits.iter().any(|h| h.person == s.person)) {
            found += 1;
        }
    }
    emit_percentiles("roster", "search_name", &search, "ms", persons);
    emit(
        "roster",
        "search_found_share",
        found as f64 / (sample.len() * 3 / 4).max(1) as f64,
        "ratio",
        persons,
    );

    let t = Instant::now();
    db.verify(Some(expect)).map_err(|x| e(&x))?;
    emit("roster", "verify", t.elapsed().as_secs_f64(), "s", persons);
    if let Some((_, peak)) = crate::bench::memory_mib() {
        emit("roster", "peak_rss", peak, "MiB", persons);
    }
    Ok(())
}
