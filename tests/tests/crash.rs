//! Crash safety: a child process writing check-ins is killed with SIGKILL at random points,
//! 200 times. After every kill the store opens cleanly (the next child starts from it), and no
//! event the child acknowledged — printed after `record` returned — is missing.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use kazashi_domain::EventId;
use kazashi_domain::ids::SiteId;
use kazashi_node::store::KdfParams;
use kazashi_node::{ManualClock, Node};
use kazashi_sync::DeviceKey;
use rand::{RngExt, SeedableRng};
use std::io::{BufRead, Read};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

fn open(path: &std::path::Path, roster: &kazashi_domain::Roster) -> Node<ManualClock> {
    Node::open(
        path,
        "crash test",
        Arc::new(roster.clone()),
        SiteId::new("S001").unwrap(),
        ManualClock::new(0),
    )
    .unwrap()
}

#[test]
fn killed_writers_lose_no_acknowledged_event() {
    let rounds: usize = std::env::var("KAZASHI_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let (roster, fleet) = kazashi_tests::town().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let site = SiteId::new("S001").unwrap();
    let key = DeviceKey::from_seed(fleet.key(&site).unwrap().secret_bytes());
    drop(
        Node::create(
            &path,
            "crash test",
            KdfParams::FAST_INSECURE,
            key,
            &fleet.manifest,
            Arc::new(roster.clone()),
            site,
            ManualClock::new(0),
        )
        .unwrap(),
    );

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    let mut acked: Vec<EventId> = Vec::new();
    let mut killed_mid_write = 0;
    for round in 0..rounds {
        let (mut child, mut out) = kazashi_tests::start_ready(
            Command::new(env!("CARGO_BIN_EXE_crash_writer"))
                .arg(&path)
                .arg("S001")
                .arg(acked.len().to_string()),
            &format!("round {round}: the store did not reopen"),
        );
        let mut line = String::new();
        // Let it write a few events, then kill it at a random moment.
        let wanted = rng.random_range(0..5usize);
        for _ in 0..wanted {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                break;
            }
            acked.push(EventId::from_hex(line.trim()).unwrap());
        }
        std::thread::sleep(Duration::from_micros(rng.random_range(0..4000)));
        child.kill().unwrap();
        child.wait().unwrap();
        // Ids printed before the kill were acknowledged too.
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        for l in rest.lines() {
            if let Ok(id) = EventId::from_hex(l.trim()) {
                acked.push(id);
            } else {
                // A line cut in half by the kill: the event was not acknowledged.
                killed_mid_write += 1;
            }
        }
        if round % 50 == 49 {
            let node = open(&path, &roster);
            for id in &acked {
                assert!(
                    node.state().contains(id),
                    "round {round}: acknowledged {id} lost"
                );
            }
        }
    }
    let node = open(&path, &roster);
    let missing: Vec<_> = acked
        .iter()
        .filter(|id| !node.state().contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events lost: {missing:?}",
        missing.len()
    );
    assert!(
        acked.len() >= rounds,
        "too few writes to mean anything: {}",
        acked.len()
    );
    eprintln!(
        "crash test: {rounds} kills, {} acknowledged events, {} events stored, {killed_mid_write} cut lines",
        acked.len(),
        node.state().len()
    );
}
