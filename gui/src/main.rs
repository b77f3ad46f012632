//! `kazashi`: one binary, the station app by default, and its subcommands.

mod app;
mod bench;
mod bench_card;
mod bench_command;
mod bench_detector;
mod bench_log;
mod bench_mesh;
mod bench_reception;
mod bench_roster;
mod bench_shard;
mod bench_sim;
mod bundle_cmd;
mod card_cmd;
mod demo;
mod drill_cmd;
mod lang;
mod node_cmd;
mod report_cmd;
mod roster_cmd;

use clap::{Parser, Subcommand};
use lang::Lang;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "kazashi",
    version,
    about = "かざし — offline-first check-in for shelters and polling stations"
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
    /// The station in demo mode on the embedded synthetic city (the default).
    Demo(demo::DemoArgs),
    /// Run a benchmark and print one JSON object per line.
    Bench(bench::BenchArgs),
    /// A station without the window: joins the mesh and prints its status as JSON lines.
    Node(node_cmd::NodeArgs),
    /// Carry the log on a USB stick: export to a file, import from one.
    Bundle(bundle_cmd::BundleArgs),
    /// The My Number Card reader: readers, watch, tap (and the PIN path), possession check,
    /// and a virtual card for drills.
    Card(card_cmd::CardArgs),
    /// Rosters: lint a CSV export, import it into the encrypted roster store, show a store,
    /// write a sample.
    Roster(roster_cmd::RosterArgs),
    /// The command center's files from a store: evacuee lists (CSV in UTF-8 or Shift_JIS,
    /// PDF), PFIF, status reports, turnout and reconciliation — the window's export buttons.
    Report(report_cmd::ReportArgs),
    /// A drill on the simulator: the real node code under a scenario's arrivals, votes and
    /// faults on simulated time; writes a report with charts.
    Drill(drill_cmd::DrillArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => demo::run(&demo::DemoArgs::default(), cli.lang),
        Some(Command::Demo(args)) => demo::run(&args, cli.lang),
        Some(Command::Bench(args)) => bench::run(&args),
        Some(Command::Node(args)) => node_cmd::run(&args),
        Some(Command::Bundle(args)) => bundle_cmd::run(&args),
        Some(Command::Card(args)) => card_cmd::run(&args, cli.lang),
        Some(Command::Roster(args)) => roster_cmd::run(&args),
        Some(Command::Drill(args)) => drill_cmd::run(&args),
        Some(Command::Report(args)) => report_cmd::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kazashi: {e}");
            ExitCode::from(2)
        }
    }
}
