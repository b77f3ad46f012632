//! Child process of the crash test: opens the store given on the command line and records
//! check-ins as fast as it can, printing each event id once `record` has returned (that is,
//! once the event is acknowledged as durable), and compacting as it goes. The test kills it
//! with SIGKILL at random.

use kazashi_domain::ids::{OperatorId, SiteId};
use kazashi_node::{Node, SystemClock};
use std::io::Write;
use std::sync::Arc;

fn main() {
    if let Err(e) = run() {
        eprintln!("crash_writer: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: crash_writer <store> <site> <start>")?;
    let site = SiteId::new(&args.next().ok_or("site?")?).map_err(|e| e.to_string())?;
    let start: usize = args
        .next()
        .ok_or("start?")?
        .parse()
        .map_err(|_| "start must be a number")?;
    let (roster, _) = kazashi_tests::town()?;
    let mut node = Node::open(
        std::path::Path::new(&path),
        "crash test",
        Arc::new(roster),
        site,
        SystemClock,
    )
    .map_err(|e| e.to_string())?;
    let roster = node.station().roster().clone();
    let op = OperatorId::new("crash").map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    for i in start.. {
        let body = kazashi_tests::check_in(&roster, i).ok_or("empty roster")?;
        let e = node.record(op, body).map_err(|e| e.to_string())?;
        writeln!(out, "{}", e.id().to_hex()).map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
        // Housekeeping too, so that kills also land in compactions and checkpoints.
        if i % 8 == 0 {
            node.maintain().map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
