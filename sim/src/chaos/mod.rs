//! Chaos runs (issue 28): random worlds ([`world::world`]) run through the drill simulator —
//! real `Node`s with real stores on simulated time and network — and checked after the final
//! heal ([`check`]). A failing world is shrunk ([`shrink::shrink`]) and written as a scenario
//! file that `kazashi-lab drill --scenario FILE` replays.
//!
//! The invariants (`drill::report::Report::violations`): every laptop up at the end holds the
//! same state digest, the same alerts and the same manifest; no event is lost (except one
//! written on a lost laptop and never passed on); nothing a laptop held is missing when it is
//! opened again after a crash; every planted exact double is found on every laptop (recall
//! 100 %); the command center's counts equal the truth; no laptop error on a write or a sync
//! step; no panic; the run ends (a setup or engine error is a failure too).

pub mod shrink;
pub mod world;

use crate::drill::{Bounds, Engine};
use crate::scenario::Scenario;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The bounds on one world's work: a world whose sync messages never settle (world 36 before
/// its fix: a storm of messages growing without end) fails with the reason instead of running
/// for hours (it failed after 31 s of wall clock, debug build). Worlds 0–59 all run inside these
/// bounds.
pub const BOUNDS: Bounds = Bounds {
    max_pending: 100_000,
    max_jobs_after_final: 1_000_000,
};

/// How one world's run went.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub seed: u64,
    pub laptops: usize,
    pub events: usize,
    /// The invariants broken, a panic's message, an engine error: empty for a good run.
    pub violations: Vec<String>,
    /// The engine could not set the world up (a shrinking step that broke the world, not
    /// the product).
    pub setup_error: bool,
    /// From the final heal until every laptop up held every event, ms.
    pub final_heal_ms: Option<u64>,
    /// Wall-clock seconds the run took (not deterministic; not in any comparison).
    pub wall_s: f64,
}

impl Outcome {
    pub fn failed(&self) -> bool {
        !self.violations.is_empty()
    }
}

/// Run one world and check it. A panic in the product or the engine is caught and reported
/// as a violation.
pub fn check(sc: &Scenario, work: Option<&Path>) -> Outcome {
    let t0 = Instant::now();
    let mut out = Outcome {
        seed: sc.seed,
        laptops: 0,
        events: 0,
        violations: Vec::new(),
        setup_error: false,
        final_heal_ms: None,
        wall_s: 0.0,
    };
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let engine = Engine::new(sc.clone(), work)
            .map_err(|e| (true, e.to_string()))?
            .bounded(BOUNDS);
        engine.run().map_err(|e| (false, e.to_string()))
    }));
    match run {
        Ok(Ok((report, _))) => {
            out.laptops = report.laptops;
            out.events = report.events;
            out.final_heal_ms = report.kazashi.final_heal_converged_after_ms;
            out.violations = report.violations();
            if out.final_heal_ms.is_none() && out.violations.is_empty() {
                out.violations
                    .push("the final heal did not converge in time".into());
            }
        }
        Ok(Err((setup, e))) => {
            out.setup_error = setup;
            out.violations.push(format!("run error: {e}"));
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic".into());
            out.violations.push(format!("panic: {msg}"));
        }
    }
    out.wall_s = t0.elapsed().as_secs_f64();
    out
}

/// The figures of many runs.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub runs: u64,
    pub converged: u64,
    pub failed: u64,
    pub wall_s: f64,
    /// The slowest final heal, ms.
    pub worst_final_heal_ms: u64,
    /// Its world's seed.
    pub worst_seed: u64,
    pub laptops: u64,
    pub events: u64,
    /// The failing worlds, with their outcomes (in seed order).
    pub failures: Vec<(Scenario, Outcome)>,
}

/// Run worlds `seeds` on `jobs` threads; `each` sees every outcome as it comes (in no
/// particular order). Stores live in `work` (or the system's temporary directory), one
/// temporary directory per run, removed after it.
pub fn run_many(
    seeds: std::ops::Range<u64>,
    jobs: usize,
    work: Option<&Path>,
    each: &(dyn Fn(&Outcome) + Sync),
) -> Summary {
    let t0 = Instant::now();
    let next = AtomicU64::new(seeds.start);
    let summary = Mutex::new(Summary::default());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::SeqCst);
                    if seed >= seeds.end {
                        break;
                    }
                    let sc = world::world(seed);
                    let o = check(&sc, work);
                    each(&o);
                    let Ok(mut sum) = summary.lock() else { break };
                    sum.runs += 1;
                    sum.laptops += o.laptops as u64;
                    sum.events += o.events as u64;
                    if o.failed() {
                        sum.failed += 1;
                        sum.failures.push((sc, o));
                    } else {
                        sum.converged += 1;
                        let ms = o.final_heal_ms.unwrap_or(0);
                        if ms > sum.worst_final_heal_ms {
                            sum.worst_final_heal_ms = ms;
                            sum.worst_seed = o.seed;
                        }
                    }
                }
            });
        }
    });
    let mut sum = summary.into_inner().unwrap_or_default();
    sum.failures.sort_by_key(|(sc, _)| sc.seed);
    sum.wall_s = t0.elapsed().as_secs_f64();
    sum
}

/// Shrink a failing world and write it to `dir` as `chaos-<seed>.toml`, with its violations
/// as comments; the path.
pub fn shrink_and_keep(
    sc: &Scenario,
    dir: &Path,
    work: Option<&Path>,
    budget: usize,
) -> std::io::Result<(PathBuf, Scenario, Outcome)> {
    let small = shrink::shrink(
        sc.clone(),
        &mut |c| {
            let o = check(c, work);
            o.failed() && !o.setup_error
        },
        budget,
    );
    let o = check(&small, work);
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("chaos-{}.toml", sc.seed));
    std::fs::write(&path, scenario_file(&small, &o.violations))?;
    Ok((path, small, o))
}

/// A scenario as a file, what it broke in comments at the top.
pub fn scenario_file(sc: &Scenario, violations: &[String]) -> String {
    let mut text = format!(
        "# Chaos world {} (kazashi-lab chaos), shrunk if it failed. Replay: kazashi-lab drill --scenario FILE\n",
        sc.seed
    );
    for v in violations {
        text.push_str(&format!("# broke: {v}\n"));
    }
    text.push_str(&toml::to_string(sc).unwrap_or_default());
    text
}
