//! Child process of the kill tests of every write path (`tests/tests/crash_paths.rs`): runs
//! one write operation on the stores named on the command line and says on stdout when it was
//! acknowledged. The test kills it (SIGKILL) at every file-changing system call, or at random.
//!
//! - `import <store> <site> <bundle>`: import a bundle; prints `imported <n>`.
//! - `export <store> <site> <file>`: export what changed since the last bundle to `file`
//!   (durably, marks after); prints `exported <bytes>`.
//! - `sync <store> <site> <source-store> <source-site>`: sync with the source until neither
//!   side has anything to send; prints each event id once `sync_handle` stored it, then
//!   `synced`.
//! - `roster <db> <start>`: import the town's roster and the same less its last entry, in
//!   turn, forever from the `start`-th; prints each import's hash once `RosterDb::create`
//!   returned.

use kazashi_domain::ids::SiteId;
use kazashi_node::roster_db::RosterDb;
use kazashi_node::store::KdfParams;
use kazashi_node::{BundleScope, Node, Peer, SystemClock};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// The passphrase of every store the kill tests make.
const PASS: &str = "crash test";

fn main() {
    if let Err(e) = run() {
        eprintln!("path_writer: {e}");
        std::process::exit(2);
    }
}

fn open(path: &str, site: &str) -> Result<Node<SystemClock>, String> {
    let (roster, _) = kazashi_tests::town()?;
    Node::open(
        Path::new(path),
        PASS,
        Arc::new(roster),
        SiteId::new(site).map_err(|e| e.to_string())?,
        SystemClock,
    )
    .map_err(|e| e.to_string())
}

fn say(line: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> Result<&str, String> {
        args.get(i)
            .map(String::as_str)
            .ok_or_else(|| format!("argument {i} missing: see the module docs"))
    };
    match arg(0)? {
        "import" => {
            let mut node = open(arg(1)?, arg(2)?)?;
            let file = std::fs::read(arg(3)?).map_err(|e| e.to_string())?;
            say("ready")?;
            let r = node
                .import_bundle(&file, "usb")
                .map_err(|e| e.to_string())?;
            say(&format!("imported {}", r.added))
        }
        "export" => {
            let mut node = open(arg(1)?, arg(2)?)?;
            say("ready")?;
            let n = node
                .export_bundle_to(Path::new(arg(3)?), BundleScope::SinceLast)
                .map_err(|e| e.to_string())?;
            say(&format!("exported {n}"))
        }
        "sync" => {
            let mut b = open(arg(1)?, arg(2)?)?;
            let mut a = open(arg(3)?, arg(4)?)?;
            say("ready")?;
            let (mut at_a, mut at_b) = (Peer::new("b"), Peer::new("a"));
            let mut to_b = vec![a.sync_start(&mut at_a)];
            let mut to_a = vec![b.sync_start(&mut at_b)];
            for _ in 0..64 {
                if to_a.is_empty() && to_b.is_empty() {
                    return say("synced");
                }
                for m in std::mem::take(&mut to_b) {
                    let step = b.sync_handle(&mut at_b, &m).map_err(|e| e.to_string())?;
                    for id in &step.added_ids {
                        say(&id.to_hex())?;
                    }
                    to_a.extend(step.replies);
                }
                for m in std::mem::take(&mut to_a) {
                    let step = a.sync_handle(&mut at_a, &m).map_err(|e| e.to_string())?;
                    to_b.extend(step.replies);
                }
            }
            Err("the sync did not settle".into())
        }
        "roster" => {
            let path = Path::new(arg(1)?);
            let start: usize = arg(2)?.parse().map_err(|_| "start must be a number")?;
            let rosters = kazashi_tests::two_rosters()?;
            say("ready")?;
            for i in start.. {
                let r = rosters.get(i % 2).ok_or("no roster")?;
                let db = RosterDb::create(
                    path,
                    PASS,
                    KdfParams::FAST_INSECURE,
                    r.into(),
                    [0; 32],
                    &mut |_, _| {},
                )
                .map_err(|e| e.to_string())?;
                say(&db.hash().to_hex())?;
            }
            Ok(())
        }
        other => Err(format!("unknown operation {other:?}")),
    }
}
