//! `kazashi`: the product. The station window on this laptop's enrolled folder by default, and
//! the commands a municipality's laptops need. No simulator, synthetic city or seeded key is
//! linked into it; drills, demos and benchmarks are `kazashi-lab`'s.

use clap::{Parser, Subcommand};
use kazashi_gui::lang::Lang;
use kazashi_gui::{
    bundle_cmd, card_cmd, deployment_cmd, enrol_cmd, node_cmd, purge_cmd, report_cmd, roster_cmd,
    staff_cmd, station_cmd, update_cmd,
};
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
    /// The station window on this laptop's enrolled folder. The default, with no command, also
    /// opens the enrolment screen on a laptop that holds no store yet.
    Station(station_cmd::StationArgs),
    /// An enrolled laptop without the window: joins the mesh and prints its status as JSON
    /// lines (a relay, the command center's always-on machine).
    Node(node_cmd::NodeArgs),
    /// Carry the log on a USB stick: export to a file, import from one.
    Bundle(bundle_cmd::BundleArgs),
    /// The My Number Card reader: readers, watch, tap (and the PIN path), possession check.
    Card(card_cmd::CardArgs),
    /// Rosters: lint a CSV export, import it into the encrypted roster store, show a store.
    Roster(roster_cmd::RosterArgs),
    /// The command center's files from a store: evacuee lists (CSV in UTF-8 or Shift_JIS,
    /// PDF), PFIF, status reports, turnout and reconciliation — the window's export buttons.
    Report(report_cmd::ReportArgs),
    /// The administrator's deployment folder: create a deployment, approve or revoke a laptop,
    /// pin a roster, back up the signing key, show the manifest.
    Deployment(deployment_cmd::DeploymentArgs),
    /// Enrol this laptop: make its key and the request for the administrator, or install the
    /// manifest the administrator signed.
    Enrol(enrol_cmd::EnrolArgs),
    /// Who may unlock this laptop's window: add a staff member with a role and PIN, check a PIN.
    Staff(staff_cmd::StaffArgs),
    /// Crypto-shred this laptop's copy of a closed operation (the counts stay in record.json);
    /// laptops also do it by themselves once the retention period has passed.
    Purge(purge_cmd::PurgeArgs),
    /// A new kazashi package from a USB stick, signed by the deployment key: sign (the
    /// administrator), verify, apply (as root, dpkg -i).
    Update(update_cmd::UpdateArgs),
}

/// This laptop's folder when none is named.
fn default_station() -> station_cmd::StationArgs {
    let dir = std::env::var_os("KAZASHI_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("/var/lib/kazashi"));
    let argv = ["kazashi", "--dir", &dir.display().to_string()].map(str::to_owned);
    #[derive(Parser)]
    struct Only {
        #[command(flatten)]
        station: station_cmd::StationArgs,
    }
    match Only::try_parse_from(argv) {
        Ok(o) => o.station,
        Err(e) => e.exit(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => station_cmd::run(&default_station(), cli.lang, true),
        Some(Command::Station(args)) => station_cmd::run(&args, cli.lang, false),
        Some(Command::Node(args)) => node_cmd::run(&args),
        Some(Command::Bundle(args)) => bundle_cmd::run(&args),
        Some(Command::Card(args)) => card_cmd::run(&args, cli.lang),
        Some(Command::Roster(args)) => roster_cmd::run(&args),
        Some(Command::Report(args)) => report_cmd::run(&args),
        Some(Command::Deployment(args)) => deployment_cmd::run(&args),
        Some(Command::Enrol(args)) => enrol_cmd::run(&args),
        Some(Command::Staff(args)) => staff_cmd::run(&args),
        Some(Command::Purge(args)) => purge_cmd::run(&args),
        Some(Command::Update(args)) => update_cmd::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The error and each of its sources, "…: …: …".
            eprintln!("kazashi: {e:#}");
            ExitCode::from(2)
        }
    }
}
