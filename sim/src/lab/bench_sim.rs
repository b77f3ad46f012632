//! `kazashi-lab bench sim [--scale N]`: the drill simulator's own speed, with N virtual laptops
//! (without `--scale`, or with one above 2000: 10, 100 and 1000). A shelter scenario with one
//! laptop per site and the command center, 15 simulated minutes of arrivals at 2000 households
//! an hour (about 600 events; 5 minutes from 500 laptops up), a 2 % lossy network, no faults
//! and no baseline. Each event reaches every laptop through the real sync code, so larger
//! fleets mean more work per event.
//!
//! - `events_per_s`: events written per wall-clock second of the run (the setup excluded);
//! - `node_steps_per_s`: node calls (a write, a sync message handled, a push, a catalog, a
//!   bundle) per wall-clock second;
//! - `setup`: creating the N encrypted stores and nodes;
//! - `simulated_per_wall`: simulated seconds per wall-clock second.

use crate::bench::{emit, median};
use kazashi_sim::drill::Engine;
use kazashi_sim::scenario::{Kind, Network, Scenario, Shelter};
use std::time::Instant;

fn scenario(nodes: usize, seed: u64) -> Scenario {
    Scenario {
        name: format!("bench sim {nodes}"),
        kind: Kind::Shelter,
        seed,
        households: 2000,
        start_date: "2026-09-01".into(),
        start_hour: 9.0,
        // The largest fleet runs five minutes: its rate is what is measured.
        hours: if nodes >= 500 { 5.0 / 60.0 } else { 0.25 },
        shelters: nodes.saturating_sub(1).max(2),
        laptops_per_site: 1,
        sample_minutes: 5.0,
        baseline: false,
        network: Network {
            loss: 0.02,
            ..Network::default()
        },
        shelter: Some(Shelter {
            arrivals: vec![(0.0, 2000.0), (1.0, 2000.0)],
            walk_in: 0.05,
            car: 0.1,
            move_on: 0.0,
            go_home: 0.0,
            outing: 0.0,
            double_registrations: 0,
            variant_walk_ins: 0,
            status_report_hours: 0.0,
            undo: 0.0,
            pace: 1.0,
        }),
        election: None,
        faults: Vec::new(),
        cars: Vec::new(),
    }
}

pub fn run(args: &crate::bench::BenchArgs) -> Result<(), String> {
    let scales: Vec<usize> = if (2..=2000).contains(&args.scale) {
        vec![args.scale]
    } else {
        vec![10, 100, 1000]
    };
    for n in scales {
        // Large fleets take minutes per run: one run there, the median of several below.
        let runs = if n >= 500 { 1 } else { args.runs.clamp(1, 5) };
        let (mut eps, mut sps, mut setup, mut speed) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut laptops = 0;
        for r in 0..runs {
            let sc = scenario(n, args.seed + r as u64);
            let hours = sc.hours;
            let t0 = Instant::now();
            let engine = Engine::new(sc, None).map_err(|e| e.to_string())?;
            setup.push(t0.elapsed().as_secs_f64());
            let t1 = Instant::now();
            let (report, stats) = engine.run().map_err(|e| e.to_string())?;
            let wall = t1.elapsed().as_secs_f64().max(1e-9);
            if !report.violations().is_empty() {
                return Err(format!("bench sim {n}: {}", report.violations().join("; ")));
            }
            laptops = report.laptops;
            eps.push(report.events as f64 / wall);
            sps.push(stats.node_steps as f64 / wall);
            speed.push(hours * 3600.0 / wall);
        }
        emit("sim", "events_per_s", median(eps), "events/s", laptops);
        emit("sim", "node_steps_per_s", median(sps), "steps/s", laptops);
        emit("sim", "setup", median(setup), "s", laptops);
        emit("sim", "simulated_per_wall", median(speed), "x", laptops);
    }
    Ok(())
}
