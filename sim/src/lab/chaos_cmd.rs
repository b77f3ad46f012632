//! `kazashi-lab chaos --runs N --seed S [--jobs J] [--keep DIR]`: N random worlds (seeds S,
//! S+1, …) through the drill simulator, each checked after its final heal
//! (`kazashi_sim::chaos`). A failing world is shrunk and written to DIR as a scenario file
//! (`kazashi-lab drill --scenario FILE` replays it). Prints one line per failure and the
//! figures as JSON lines; exits non-zero if any world failed.

use kazashi_sim::chaos;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ChaosArgs {
    /// How many worlds.
    #[arg(long, default_value_t = 100)]
    pub runs: u64,
    /// The first world's seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worlds run at once (one thread each).
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Where shrunk failing worlds are written.
    #[arg(long, default_value = "chaos-failures")]
    pub keep: PathBuf,
    /// Runs the shrinker may spend on each failing world (0: keep it unshrunk).
    #[arg(long, default_value_t = 200)]
    pub shrink_budget: usize,
    /// Where the laptops' stores go (a temporary directory per world, removed after it).
    #[arg(long)]
    pub work: Option<PathBuf>,
    /// A line per world, not only per failing one.
    #[arg(long)]
    pub verbose: bool,
    /// Print the world of `--seed` as a scenario file and stop.
    #[arg(long)]
    pub dump: bool,
}

pub fn run(args: &ChaosArgs) -> Result<(), String> {
    if args.dump {
        let w = chaos::world::world(args.seed);
        print!("{}", chaos::scenario_file(&w, &[]));
        return Ok(());
    }
    let seeds = args.seed..args.seed.saturating_add(args.runs);
    eprintln!(
        "kazashi chaos: worlds {}..{} on {} threads …",
        seeds.start, seeds.end, args.jobs
    );
    let work = args.work.as_deref();
    let verbose = args.verbose;
    let sum = chaos::run_many(seeds, args.jobs, work, &|o| {
        if o.failed() {
            eprintln!("world {} FAILED: {}", o.seed, o.violations.join("; "));
        } else if verbose {
            eprintln!(
                "world {}: {} laptops, {} events, final heal {} ms, {:.1} s",
                o.seed,
                o.laptops,
                o.events,
                o.final_heal_ms.unwrap_or(0),
                o.wall_s
            );
        }
    });
    print_figures("chaos", &sum, args.runs as usize);
    for (sc, o) in &sum.failures {
        let kept = if args.shrink_budget == 0 {
            std::fs::create_dir_all(&args.keep)
                .and_then(|()| {
                    let p = args.keep.join(format!("chaos-{}.toml", sc.seed));
                    std::fs::write(&p, chaos::scenario_file(sc, &o.violations)).map(|()| p)
                })
                .map_err(|e| e.to_string())?
        } else {
            chaos::shrink_and_keep(sc, &args.keep, work, args.shrink_budget)
                .map_err(|e| e.to_string())?
                .0
        };
        eprintln!("world {}: kept as {}", sc.seed, kept.display());
    }
    if sum.failed == 0 {
        Ok(())
    } else {
        Err(format!("{} of {} worlds failed", sum.failed, sum.runs))
    }
}

/// The figures of a chaos run, as the benchmarks print them.
pub fn print_figures(bench: &str, sum: &chaos::Summary, scale: usize) {
    use crate::bench::emit;
    emit(bench, "runs", sum.runs as f64, "runs", scale);
    emit(bench, "runs_converged", sum.converged as f64, "runs", scale);
    emit(bench, "runs_failed", sum.failed as f64, "runs", scale);
    emit(
        bench,
        "runs_per_second",
        sum.runs as f64 / sum.wall_s.max(1e-9),
        "runs/s",
        scale,
    );
    emit(
        bench,
        "worst_final_heal_convergence",
        sum.worst_final_heal_ms as f64,
        "ms",
        scale,
    );
    emit(
        bench,
        "worst_final_heal_seed",
        sum.worst_seed as f64,
        "seed",
        scale,
    );
    emit(
        bench,
        "laptops_per_run",
        sum.laptops as f64 / sum.runs.max(1) as f64,
        "laptops",
        scale,
    );
    emit(
        bench,
        "events_per_run",
        sum.events as f64 / sum.runs.max(1) as f64,
        "events",
        scale,
    );
}
