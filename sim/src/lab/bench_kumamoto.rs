//! `kazashi-lab bench kumamoto [--scale H]`: `scenarios/kumamoto-full.toml` — Kumamoto at full
//! size, 1,040 shelters and the command center, one real `Node` each, about 84,000 households
//! over two days — through the drill simulator, for its first H simulated hours (without
//! `--scale`, or with one outside 1..=48: all 48, then the final heal). Not a CI test: the full
//! run is long (docs/benchmarks.md, "kumamoto").
//!
//! - `setup`: building the town and the 1,041 encrypted stores and nodes (wall s);
//! - `run`: the simulated hours and the final heal (wall s);
//! - `events`, `laptops`, `sites`: what ran;
//! - `peak_evacuees`: the truth's highest headcount over the samples (registered persons
//!   plus those supported outside, summed over shelters);
//! - `arrivals_done`: the share of the scenario's arrivals (households, by the curve) the
//!   simulated hours cover;
//! - `projected_full_run`: `run` divided by that share (wall s; a guide only: later hours carry
//!   more events per hour and more held events per laptop);
//! - `converged` (1 or 0) and `violations` (the invariants that failed, counted).

use crate::bench::emit;
use kazashi_sim::drill::Engine;
use kazashi_sim::scenario::{Fault, Scenario};
use std::time::Instant;

const FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../scenarios/kumamoto-full.toml"
);

/// Households arriving by `hours` under the curve (trapezoids between its points).
fn arrivals_until(points: &[(f64, f64)], hours: f64) -> f64 {
    points
        .windows(2)
        .filter_map(|w| match w {
            [(h0, r0), (h1, r1)] if *h1 > *h0 && hours > *h0 => {
                let end = h1.min(hours);
                let r_end = r0 + (r1 - r0) * (end - h0) / (h1 - h0);
                Some((r0 + r_end) / 2.0 * (end - h0))
            }
            _ => None,
        })
        .sum()
}

pub fn run(args: &crate::bench::BenchArgs) -> Result<(), String> {
    let mut sc = Scenario::load(std::path::Path::new(FILE)).map_err(|e| e.to_string())?;
    let full = sc.hours;
    if (1..48).contains(&args.scale) {
        sc.hours = args.scale as f64;
        // Faults after the cut are left out (a scenario's faults must lie within its hours).
        let hours = sc.hours;
        sc.faults.retain(|f| match f {
            Fault::Partition { until, .. } => *until <= hours,
            Fault::Crash { restart, .. } => *restart <= hours,
            Fault::LostLaptop { at, .. } => *at <= hours,
            // The file has no other kind; any other is dropped from a cut run.
            _ => false,
        });
    }
    let curve = sc
        .shelter
        .as_ref()
        .map(|s| s.arrivals.clone())
        .unwrap_or_default();
    let share = {
        let all = arrivals_until(&curve, full);
        if all > 0.0 {
            arrivals_until(&curve, sc.hours) / all
        } else {
            1.0
        }
    };
    let work = std::env::var_os("KAZASHI_BENCH_DIR").map(std::path::PathBuf::from);
    let t0 = Instant::now();
    let engine = Engine::new(sc, work.as_deref()).map_err(|e| e.to_string())?;
    let setup = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let (report, _) = engine.run().map_err(|e| e.to_string())?;
    let wall = t1.elapsed().as_secs_f64();
    let n = report.laptops;
    emit("kumamoto", "setup", setup, "s", n);
    emit("kumamoto", "run", wall, "s", n);
    emit(
        "kumamoto",
        "simulated_hours",
        report.simulated_hours,
        "h",
        n,
    );
    emit("kumamoto", "events", report.events as f64, "events", n);
    emit("kumamoto", "laptops", n as f64, "laptops", n);
    emit("kumamoto", "sites", report.sites as f64, "sites", n);
    let peak = report.headcount.iter().map(|s| s.truth).max().unwrap_or(0);
    emit("kumamoto", "peak_evacuees", f64::from(peak), "persons", n);
    emit("kumamoto", "arrivals_done", share, "share", n);
    emit(
        "kumamoto",
        "projected_full_run",
        if share > 0.0 {
            (setup + wall) / share
        } else {
            f64::NAN
        },
        "s",
        n,
    );
    emit(
        "kumamoto",
        "converged",
        f64::from(u8::from(report.invariants.converged)),
        "bool",
        n,
    );
    emit(
        "kumamoto",
        "violations",
        report.violations().len() as f64,
        "count",
        n,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_size_file_is_a_valid_scenario_of_the_stated_size() {
        let sc = Scenario::load(std::path::Path::new(FILE)).expect("loads");
        sc.check().expect("valid");
        assert_eq!(sc.shelters, 1040);
        assert_eq!(sc.hours, 48.0);
        let curve = &sc.shelter.as_ref().expect("shelter").arrivals;
        let households = arrivals_until(curve, 48.0);
        // About 84,000 households: 184,000 evacuees at 2.2 a household.
        assert!((80_000.0..90_000.0).contains(&households), "{households}");
        assert!((arrivals_until(curve, 24.0) - 17_850.0).abs() < 1.0);
    }
}
