//! `kazashi-lab`: the lab above the product — the station window on the synthetic city
//! (`demo`), drills on the simulator, benchmarks, virtual cards, and drill laptops enrolled
//! from the seeded fleet. Everything here drives the product's own code (`kazashi_gui`,
//! `kazashi_node`); nothing here ships in the `kazashi` binary.

mod bench;
mod bench_baseline;
mod bench_card;
mod bench_chaos;
mod bench_command;
mod bench_detector;
mod bench_enrol;
mod bench_hostile;
mod bench_kumamoto;
mod bench_log;
mod bench_manifest;
mod bench_match;
mod bench_mesh;
mod bench_reception;
mod bench_roster;
mod bench_roster_transfer;
mod bench_shard;
mod bench_sim;
mod bench_station;
mod card_lab;
mod chaos_cmd;
mod demo;
mod demo_system;
mod demo_window;
mod drill_cmd;
mod fleet_cmd;
mod roster_sample;
mod tour;
mod tour_scenes;
mod tour_start;
#[cfg(test)]
mod window_audit_tests;
#[cfg(test)]
mod window_close_tests;
#[cfg(test)]
mod window_command_tests;
#[cfg(test)]
mod window_enrol_tests;
#[cfg(test)]
mod window_notes_tests;
#[cfg(test)]
mod window_purge_tests;
#[cfg(test)]
mod window_rig;
#[cfg(test)]
mod window_roster_tests;
#[cfg(test)]
mod window_system_tests;
#[cfg(test)]
mod window_tests;

use clap::{Parser, Subcommand};
use kazashi_gui::lang::Lang;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "kazashi-lab",
    version,
    about = "かざし lab — demo city, drills, benchmarks and virtual cards over the real product code"
)]
struct Cli {
    /// Language of the output: ja (default) or en.
    #[arg(long, global = true, default_value = "ja")]
    lang: Lang,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// The station window on the embedded synthetic city (the default).
    Demo(demo::DemoArgs),
    /// A drill on the simulator: the real node code under a scenario's arrivals, votes and
    /// faults on simulated time; writes a report with charts.
    Drill(drill_cmd::DrillArgs),
    /// Random worlds through the drill simulator, checked after the final heal; failing
    /// worlds are shrunk and kept as scenario files.
    Chaos(chaos_cmd::ChaosArgs),
    /// Run a benchmark and print one JSON object per line.
    Bench(bench::BenchArgs),
    /// Virtual cards on a virtual reader (vsmartcard's vpcd).
    Card(card_lab::CardArgs),
    /// Enrol a drill laptop's folder from the seeded fleet (then `kazashi … --dir` opens it).
    EnrolDrill(fleet_cmd::DrillLaptop),
    /// A drill laptop on the mesh (enrolled on first use), writing check-ins at a steady pace.
    Node(fleet_cmd::NodeArgs),
    /// Write the synthetic city's roster as a municipality's CSV export.
    RosterSample(roster_sample::SampleArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => demo::run(&demo::DemoArgs::default(), cli.lang),
        Some(Command::Demo(args)) => demo::run(&args, cli.lang),
        Some(Command::Drill(args)) => drill_cmd::run(&args),
        Some(Command::Chaos(args)) => chaos_cmd::run(&args),
        Some(Command::Bench(args)) => bench::run(&args),
        Some(Command::Card(args)) => card_lab::run(&args),
        Some(Command::EnrolDrill(args)) => fleet_cmd::enrol(&args),
        Some(Command::Node(args)) => fleet_cmd::node(&args),
        Some(Command::RosterSample(args)) => roster_sample::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kazashi-lab: {e}");
            ExitCode::from(2)
        }
    }
}
