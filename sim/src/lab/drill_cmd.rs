//! `kazashi-lab drill --scenario FILE --out DIR`: run a drill scenario through the simulator (the
//! real node code on simulated time and network) and write its report: `report.json`,
//! `report.md` and the charts. Exits non-zero if an invariant failed.

use kazashi_sim::drill::{self, report::Report};
use kazashi_sim::scenario::Scenario;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct DrillArgs {
    /// The scenario (TOML; see `scenarios/`).
    #[arg(long)]
    pub scenario: PathBuf,
    /// Where the report goes.
    #[arg(long, default_value = "drill-report")]
    pub out: PathBuf,
    /// Another seed than the scenario's.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Skip the baseline run.
    #[arg(long)]
    pub no_baseline: bool,
}

pub fn run(args: &DrillArgs) -> Result<(), String> {
    let mut sc = Scenario::load(&args.scenario).map_err(|e| e.to_string())?;
    if let Some(s) = args.seed {
        sc.seed = s;
    }
    if args.no_baseline {
        sc.baseline = false;
    }
    eprintln!(
        "kazashi drill: {} (seed {}), {} simulated hours …",
        sc.name, sc.seed, sc.hours
    );
    let t0 = Instant::now();
    let (report, stats) = drill::run_to_dir(sc, &args.out).map_err(|e| e.to_string())?;
    let wall = t0.elapsed().as_secs_f64();
    print_summary(&report);
    eprintln!(
        "ran in {wall:.1} s wall clock: {} node steps, {} jobs; report in {}",
        stats.node_steps,
        stats.jobs,
        args.out.display()
    );
    let v = report.violations();
    if v.is_empty() {
        Ok(())
    } else {
        Err(format!("invariants failed: {}", v.join("; ")))
    }
}

fn print_summary(r: &Report) {
    let k = &r.kazashi;
    println!("{}", r.scenario);
    println!(
        "  {} laptops at {} sites, {} events, {} residents",
        r.laptops, r.sites, r.events, r.residents
    );
    println!(
        "  propagation p50/p99/max: {} / {} / {} ms",
        k.propagation.p50_ms, k.propagation.p99_ms, k.propagation.max_ms
    );
    if let Some(b) = &r.baseline {
        println!(
            "  baseline    p50/p99/max: {} / {} / {} ms",
            b.propagation.p50_ms, b.propagation.p99_ms, b.propagation.max_ms
        );
    }
    for (i, h) in k.heals.iter().enumerate() {
        let base = r
            .baseline
            .as_ref()
            .and_then(|b| b.heals.get(i))
            .and_then(|h| h.converged_after_ms)
            .map_or("—".to_owned(), |ms| format!("{ms} ms"));
        println!(
            "  heal: {:<40} converged after {} (baseline {base})",
            h.label,
            h.converged_after_ms
                .map_or("never".to_owned(), |ms| format!("{ms} ms"))
        );
    }
    let d = &r.detection;
    println!(
        "  planted: {}; recall {}; exact-id recall {}; precision {}",
        d.planted.len(),
        pct(d.recall_min_over_nodes),
        pct(d.exact_id_recall_min_over_nodes),
        pct(d.precision)
    );
    let i = &r.invariants;
    println!(
        "  converged: {}, {} digest(s), events lost: {}",
        i.converged, i.distinct_state_digests, i.events_lost
    );
}

fn pct(x: Option<f64>) -> String {
    x.map_or("—".into(), |v| format!("{:.1} %", v * 100.0))
}
