//! `kazashi-lab bench baseline [--scale N]`: Kazashi and the VxPollBook-style baseline side by
//! side, in the same simulator run (the drill replays Kazashi's writes, faults and heals
//! through the baseline; `sim::drill::baseline`), at N laptops (without `--scale`, or with one
//! outside 3..=2000: 20, 50 and 200).
//!
//! The world: N − 1 shelters with one laptop each and the command center, two hours of
//! arrivals (150 households an hour across all shelters), a 2 % lossy network, a tenth of the
//! shelters cut off (each alone) from 0:45 to 1:15 and one laptop crashed from 0:15 to 0:30
//! (apart, so that each heal's convergence is its own).
//! Per system (`kazashi_…`, `baseline_…`):
//!
//! - `propagation_p50`, `propagation_p99`: from an event's writing to its arrival at each
//!   other laptop up when it was written (simulated ms; events written behind the partition
//!   wait for its end, which sets the p99 of both); `calm_p50`, `calm_p99`: the same over
//!   events written while no fault was in force;
//! - `heal_partition`, `heal_restart`, `heal_final`: convergence after each heal (simulated
//!   ms; the longest of each kind);
//! - `wire_bytes`, `messages`: every frame sent, lost ones included.
//!
//! Then `p99_ratio` and `bytes_ratio` (Kazashi over the baseline; the goal is p99 ≤ 1 and
//! bytes ≤ 0.1) and `wall` (the run's wall time). Simulated figures depend only on the
//! scenario and the seed, so one run is quoted.

use crate::bench::emit;
use kazashi_sim::drill::Engine;
use kazashi_sim::drill::report::SyncFigures;
use kazashi_sim::scenario::Scenario;
use std::time::Instant;

/// The side-by-side world at `laptops` laptops (TOML, so that it reads as a scenario file).
pub fn scenario_text(laptops: usize, seed: u64) -> String {
    let shelters = laptops.saturating_sub(1).max(2);
    // A tenth of the shelters (at least one), spread over the list, each cut off alone.
    let cut: Vec<String> = (0..shelters.div_ceil(10))
        .map(|i| format!("\"S{:03}\"", 1 + i * 10))
        .collect();
    format!(
        r#"name = "side by side {laptops}"
kind = "shelter"
seed = {seed}
households = {households}
start_date = "2026-09-01"
start_hour = 9
hours = 2
shelters = {shelters}
sample_minutes = 30

[network]
latency_ms = 20
jitter_ms = 30
loss = 0.02

[shelter]
arrivals = [[0, 150], [2, 150]]
walk_in = 0.05
car = 0.1
move_on = 0.05
go_home = 0.02
outing = 0.1
double_registrations = 0
variant_walk_ins = 0
status_report_hours = 1

[[fault]]
kind = "partition"
sites = [{cut}]
from = 0.75
until = 1.25

[[fault]]
kind = "crash"
site = "S002"
at = 0.25
restart = 0.5
"#,
        households = 2000,
        cut = cut.join(", "),
    )
}

fn heal_max(f: &SyncFigures, kind: &str) -> Option<f64> {
    let ms: Vec<Option<u64>> = f
        .heals
        .iter()
        .filter(|h| match kind {
            "partition" => h.label.starts_with("partition"),
            "restart" => h.label.ends_with("restarts"),
            _ => h.label == "final heal",
        })
        .map(|h| h.converged_after_ms)
        .collect();
    if ms.is_empty() {
        return None;
    }
    // A heal that never converged shows as infinity (JSON null): never hidden as fast.
    Some(
        ms.iter()
            .map(|m| m.map_or(f64::INFINITY, |v| v as f64))
            .fold(0.0, f64::max),
    )
}

fn emit_system(who: &str, f: &SyncFigures, n: usize) {
    emit(
        "baseline",
        &format!("{who}_propagation_p50"),
        f64::from(f.propagation.p50_ms),
        "ms",
        n,
    );
    emit(
        "baseline",
        &format!("{who}_propagation_p99"),
        f64::from(f.propagation.p99_ms),
        "ms",
        n,
    );
    emit(
        "baseline",
        &format!("{who}_calm_p50"),
        f64::from(f.propagation_calm.p50_ms),
        "ms",
        n,
    );
    emit(
        "baseline",
        &format!("{who}_calm_p99"),
        f64::from(f.propagation_calm.p99_ms),
        "ms",
        n,
    );
    for kind in ["partition", "restart", "final"] {
        if let Some(v) = heal_max(f, kind) {
            emit("baseline", &format!("{who}_heal_{kind}"), v, "ms", n);
        }
    }
    emit(
        "baseline",
        &format!("{who}_wire_bytes"),
        f.wire_bytes as f64,
        "bytes",
        n,
    );
    emit(
        "baseline",
        &format!("{who}_messages"),
        f.messages as f64,
        "messages",
        n,
    );
}

pub fn run(args: &crate::bench::BenchArgs) -> Result<(), String> {
    let sizes: Vec<usize> = if (3..=2000).contains(&args.scale) {
        vec![args.scale]
    } else {
        vec![20, 50, 200]
    };
    for n in sizes {
        let sc = Scenario::parse(&scenario_text(n, args.seed)).map_err(|e| e.to_string())?;
        let t0 = Instant::now();
        let engine = Engine::new(sc, None).map_err(|e| e.to_string())?;
        let (report, _) = engine.run().map_err(|e| e.to_string())?;
        let wall = t0.elapsed().as_secs_f64();
        if !report.violations().is_empty() {
            return Err(format!(
                "bench baseline {n}: {}",
                report.violations().join("; ")
            ));
        }
        let Some(base) = report.baseline.as_ref() else {
            return Err("the baseline did not run".into());
        };
        let laptops = report.laptops;
        emit(
            "baseline",
            "events",
            report.events as f64,
            "events",
            laptops,
        );
        emit_system("kazashi", &report.kazashi, laptops);
        emit_system("baseline", base, laptops);
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        emit(
            "baseline",
            "p99_ratio",
            ratio(
                f64::from(report.kazashi.propagation.p99_ms),
                f64::from(base.propagation.p99_ms),
            ),
            "x",
            laptops,
        );
        emit(
            "baseline",
            "calm_p99_ratio",
            ratio(
                f64::from(report.kazashi.propagation_calm.p99_ms),
                f64::from(base.propagation_calm.p99_ms),
            ),
            "x",
            laptops,
        );
        emit(
            "baseline",
            "bytes_ratio",
            ratio(report.kazashi.wire_bytes as f64, base.wire_bytes as f64),
            "x",
            laptops,
        );
        emit("baseline", "wall", wall, "s", laptops);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_side_by_side_worlds_are_valid_scenarios() {
        for n in [3, 20, 50, 200, 2000] {
            let sc = Scenario::parse(&scenario_text(n, 1)).expect("parses");
            sc.check().expect("valid");
            assert_eq!(sc.shelters + 1, n.max(3));
        }
    }
}
