//! `kazashi-lab bench <name> [--scale N]`: benchmarks, one JSON object per line:
//! `{"bench":..,"metric":..,"value":..,"unit":..,"scale":N}`. Quote medians.

use kazashi_domain::State;
use kazashi_sim::population::{PopulationSpec, generate, shelter_operation};
use kazashi_sim::workload::{START_MS, shelter_week};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Which benchmark: fold.
    pub name: String,
    /// Problem size (events, for `fold` and `log`).
    #[arg(long, default_value_t = 100_000)]
    pub scale: usize,
    /// Timed repetitions; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Seed of the synthetic workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Internal: `log` measures the cold start in a fresh child process opening this store.
    #[arg(long, hide = true)]
    pub child_open: Option<std::path::PathBuf>,
}

pub fn run(args: &BenchArgs) -> Result<(), String> {
    match args.name.as_str() {
        "fold" => fold(args),
        "log" => crate::bench_log::run(args),
        "shard" => crate::bench_shard::run(args),
        "detector" => crate::bench_detector::run(args),
        "mesh" => crate::bench_mesh::run(args),
        "card" => crate::bench_card::run(args),
        "reception" => crate::bench_reception::run(args),
        "roster" => crate::bench_roster::run(args),
        "roster-transfer" => crate::bench_roster_transfer::run(args),
        "command" => crate::bench_command::run(args),
        "sim" => crate::bench_sim::run(args),
        "baseline" => crate::bench_baseline::run(args),
        "kumamoto" => crate::bench_kumamoto::run(args),
        "enrol" => crate::bench_enrol::run(args),
        "manifest" => crate::bench_manifest::run(args),
        "hostile" => crate::bench_hostile::run(args),
        "match" => crate::bench_match::run(args),
        "station" => crate::bench_station::run(args),
        "chaos" => crate::bench_chaos::run(args),
        other => Err(format!(
            "unknown benchmark {other:?}; available: fold, log, shard, detector, mesh, card, reception, roster, roster-transfer, command, sim, baseline, kumamoto, enrol, manifest, match, station, hostile, chaos"
        )),
    }
}

pub fn emit(bench: &str, metric: &str, value: f64, unit: &str, scale: usize) {
    use std::io::Write as _;
    let v = serde_json::json!({"bench": bench, "metric": metric, "value": value, "unit": unit, "scale": scale});
    // A closed pipe (`| head`) is not an error worth a panic: the reader has what it wanted.
    let _ = writeln!(std::io::stdout().lock(), "{v}");
}

/// The synthetic town a benchmark of `n` events runs on — n/8 households, a shelter per 20 000
/// events (5 to 500) — and its shelter operation. Every benchmark sizes it this way, so their
/// figures describe the same town.
pub fn town(
    n: usize,
    seed: u64,
    voters: bool,
) -> Result<(kazashi_sim::Municipality, kazashi_domain::Deployment), String> {
    let today = kazashi_domain::CivilDate::new(2026, 9, 1).map_err(|e| e.to_string())?;
    let m = generate(PopulationSpec {
        households: (n / 8).max(50),
        seed,
        today,
        voters,
    })
    .map_err(|e| e.to_string())?;
    let d = shelter_operation(&m, (n / 20_000).clamp(5, 500)).map_err(|e| e.to_string())?;
    Ok((m, d))
}

/// The synthetic town of about `n` people (2.2 a household), for the benchmarks whose scale is
/// the roster (reception, roster).
pub fn town_of_people(n: usize, seed: u64) -> Result<kazashi_sim::Municipality, String> {
    let today = kazashi_domain::CivilDate::new(2026, 9, 1).map_err(|e| e.to_string())?;
    generate(PopulationSpec {
        households: (n * 9 / 20).max(50),
        seed,
        today,
        voters: false,
    })
    .map_err(|e| e.to_string())
}

/// Milliseconds since `t`.
pub fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Emit `<metric>_p50` and `<metric>_p99` of `values`.
pub fn emit_percentiles(bench: &str, metric: &str, values: &[f64], unit: &str, scale: usize) {
    for (p, name) in [(0.5, "p50"), (0.99, "p99")] {
        let v = crate::bench_log::percentile(values.to_vec(), p);
        emit(bench, &format!("{metric}_{name}"), v, unit, scale);
    }
}

/// Emit `<metric>` (the median of `values`) and `<metric>_p99`.
pub fn emit_median_p99(bench: &str, metric: &str, values: Vec<f64>, unit: &str, scale: usize) {
    emit(bench, metric, median(values.clone()), unit, scale);
    let p99 = crate::bench_log::percentile(values, 0.99);
    emit(bench, &format!("{metric}_p99"), p99, unit, scale);
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Run `kazashi-lab bench <bench> --scale <n> --child-open <dir>` `runs` times (1–5) in fresh
/// processes, echo each child's JSON lines with its `run` number, then emit the median of each
/// of `medians` (metric, unit) over the runs as `<metric>_median` at `scale`.
pub fn child_runs(
    bench: &str,
    n: usize,
    scale: usize,
    dir: &std::path::Path,
    runs: usize,
    medians: &[(&str, &str)],
) -> Result<(), String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let exe = std::env::current_exe().map_err(|x| e(&x))?;
    let mut outs = Vec::new();
    for run in 0..runs.clamp(1, 5) {
        let out = std::process::Command::new(&exe)
            .args(["bench", bench, "--scale", &n.to_string()])
            .arg("--child-open")
            .arg(dir)
            .output()
            .map_err(|x| e(&x))?;
        if !out.status.success() {
            return Err(format!(
                "{bench} child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        for l in text.lines() {
            if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(l)
                && let Some(o) = v.as_object_mut()
            {
                o.insert("run".into(), serde_json::json!(run));
                println!("{v}");
            }
        }
        outs.push(text);
    }
    for (metric, unit) in medians {
        let values: Vec<f64> = outs
            .iter()
            .filter_map(|out| {
                out.lines()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .find(|v| v.get("metric").and_then(|m| m.as_str()) == Some(*metric))
                    .and_then(|v| v.get("value").and_then(serde_json::Value::as_f64))
            })
            .collect();
        emit(
            bench,
            &format!("{metric}_median"),
            median(values),
            unit,
            scale,
        );
    }
    Ok(())
}

/// Resident and peak memory of this process, in MiB (Linux; `None` elsewhere).
pub fn memory_mib() -> Option<(f64, f64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn fold(args: &BenchArgs) -> Result<(), String> {
    let n = args.scale;
    if n == 0 || n > 50_000_000 {
        return Err("--scale must be between 1 and 50000000".into());
    }
    let runs = args.runs.clamp(1, 101);
    let (m, d) = town(n, args.seed, false)?;
    let today = m.today;
    let events = shelter_week(&m, &d, n, args.seed);

    // Batch fold (how a node rebuilds state from its log).
    // The first run's state is kept, and the memory it added measured before any other run
    // (later runs free states whose pages the allocator keeps, which would blur the figure).
    let mut times = Vec::new();
    let rss_before = memory_mib();
    let t = Instant::now();
    let state = State::from_events(events.clone());
    times.push(t.elapsed().as_secs_f64());
    let rss_after = memory_mib();
    for _ in 1..runs {
        let input = events.clone();
        let t = Instant::now();
        let other = State::from_events(input);
        times.push(t.elapsed().as_secs_f64());
        drop(other);
    }
    let med = median(times);
    emit("fold", "batch_fold_time", med * 1e3, "ms", n);
    emit(
        "fold",
        "batch_fold_throughput",
        n as f64 / med,
        "events/s",
        n,
    );

    // Incremental inserts in a shuffled order (how merged peer events arrive).
    let mut shuffled = events.clone();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ args.seed;
    for i in (1..shuffled.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        shuffled.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let mut times = Vec::new();
    for _ in 0..runs.min(3) {
        let input = shuffled.clone();
        let t = Instant::now();
        let mut s = State::new();
        for e in input {
            s.insert(e);
        }
        times.push(t.elapsed().as_secs_f64());
        if s != state {
            return Err("shuffled insert produced a different state".into());
        }
    }
    let med = median(times);
    emit(
        "fold",
        "shuffled_insert_throughput",
        n as f64 / med,
        "events/s",
        n,
    );

    // As-of query: counts at every shelter at mid-week.
    let mid = START_MS + 3 * 24 * 3600 * 1000;
    let sites: Vec<_> = d.sites().map(|s| s.id).collect();
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let total: u32 = sites
            .iter()
            .map(|s| state.site_counts(s, &m.roster, today, Some(mid)).present)
            .sum();
        times.push(t.elapsed().as_secs_f64());
        std::hint::black_box(total);
    }
    emit(
        "fold",
        "as_of_counts_all_sites",
        median(times) * 1e3,
        "ms",
        n,
    );

    if let (Some((before, _)), Some((after, peak))) = (rss_before, rss_after) {
        emit(
            "fold",
            "state_rss_growth",
            (after - before).max(0.0),
            "MiB",
            n,
        );
        emit("fold", "peak_rss", peak, "MiB", n);
    }
    Ok(())
}
