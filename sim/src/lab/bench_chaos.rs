//! `kazashi-lab bench chaos --scale N [--seed S]`: N chaos worlds (`kazashi_sim::chaos`) on
//! two threads; prints runs, runs converged, runs failed, runs per second and the worst
//! convergence time after the final heal (with its seed), and the failing seeds on stderr.

pub fn run(args: &crate::bench::BenchArgs) -> Result<(), String> {
    let n = args.scale as u64;
    if n == 0 || n > 1_000_000 {
        return Err("--scale must be between 1 and 1000000 worlds".into());
    }
    let jobs = std::thread::available_parallelism().map_or(2, |p| p.get().min(2));
    let seeds = args.seed..args.seed + n;
    let sum = kazashi_sim::chaos::run_many(seeds, jobs, None, &|o| {
        if o.failed() {
            eprintln!("world {} FAILED: {}", o.seed, o.violations.join("; "));
        }
    });
    crate::chaos_cmd::print_figures("chaos", &sum, args.scale);
    Ok(())
}
