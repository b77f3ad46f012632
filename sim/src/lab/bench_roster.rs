//! `kazashi-lab bench roster --scale N`: an N-person roster (N/2.2 households of the synthetic
//! city) written as a UTF-8 CSV export, then, timed:
//!
//! - `import_rows_per_s` and `import_total`: the file read, decoded, linted and written into
//!   the encrypted roster store with its indexes (FTS5 trigram and prefix), as
//!   `kazashi roster import` does it;
//! - `lookup_by_id`: one entry by 宛名番号 (p50/p99);
//! - `search_name`: staff-style name searches — a full name in kanji (異体字 folded), a reading
//!   in katakana, a family name with a birth date in 和暦, a two-character family name —
//!   at most 20 hits each (p50/p99);
//! - `load`: the whole roster read back and checked against its hash (a station's start);
//! - `csv_bytes`, `store_bytes` (both files of the store), `peak_rss`.

use crate::bench::{emit, emit_percentiles, ms};
use crate::bench_log::TempDir;
use kazashi_domain::roster::RosterKind;
use kazashi_node::KdfParams;
use kazashi_node::roster_csv::{Mapping, ReadOptions, read, write};
use kazashi_node::roster_db::{RosterDb, sha256};
use rand::{RngExt, SeedableRng};
use std::time::Instant;

pub fn run(args: &crate::bench::BenchArgs) -> Result<(), String> {
    let n = args.scale;
    if !(1000..=20_000_000).contains(&n) {
        return Err("--scale (roster persons) must be between 1000 and 20000000".into());
    }
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let m = crate::bench::town_of_people(n, args.seed)?;
    let today = m.today;
    let persons = m.roster.len();
    let csv = write(&m.roster).into_bytes();
    let sample: Vec<kazashi_domain::roster::RosterEntry> = {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed);
        (0..500)
            .filter_map(|_| {
                m.roster
                    .entries()
                    .get(rng.random_range(0..persons))
                    .cloned()
            })
            .collect()
    };
    let expect = m.roster.hash();
    drop(m);
    let dir = TempDir::for_bench("roster")?;
    let path = dir.0.join("roster.db");
    emit("roster", "csv_bytes", csv.len() as f64, "bytes", persons);

    let opts = ReadOptions {
        kind: RosterKind::Residents,
        mapping: Mapping::default(),
        today,
        encoding: None,
    };
    let t = Instant::now();
    let imp = read(&csv, &opts, &mut |_, _| {}).map_err(|l| {
        format!(
            "the benchmark's own CSV was refused: {}",
            l.findings
                .first()
                .map(|f| f.to_string())
                .unwrap_or_default()
        )
    })?;
    let read_s = t.elapsed().as_secs_f64();
    let db = RosterDb::create(
        &path,
        "bench",
        KdfParams::FAST_INSECURE,
        (&imp).into(),
        sha256(&csv),
        &mut |_, _| {},
    )
    .map_err(|x| e(&x))?;
    let total = t.elapsed().as_secs_f64();
    drop(imp);
    // Checked after the clock stops: the store's hash, made as it wrote, is the generated
    // roster's.
    if db.hash() != expect {
        return Err("the CSV did not read back to the same roster".into());
    }
    emit("roster", "import_read_lint", read_s, "s", persons);
    emit("roster", "import_total", total, "s", persons);
    emit(
        "roster",
        "import_rows_per_s",
        persons as f64 / total,
        "rows/s",
        persons,
    );
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
    let mut look = Vec::new();
    for s in &sample {
        let t = Instant::now();
        let got = db.get(&s.person).map_err(|x| e(&x))?;
        look.push(ms(t));
        if got.as_ref().map(|g| g.person) != Some(s.person) {
            return Err(format!("lookup of {} failed", s.person));
        }
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
    let back = db.load(today, Some(expect)).map_err(|x| e(&x))?;
    emit("roster", "load", t.elapsed().as_secs_f64(), "s", persons);
    drop(back);
    if let Some((_, peak)) = crate::bench::memory_mib() {
        emit("roster", "peak_rss", peak, "MiB", persons);
    }
    Ok(())
}
