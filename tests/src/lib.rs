//! Helpers shared by Kazashi's cross-crate tests and their child processes.

pub mod card_rig;

/// Start `cmd` with its output piped and wait for the child to say `ready` on its first line
/// (the kill tests' writers say so once their store is open); `what` names the child in the
/// failure. Returns the child and its remaining output.
#[allow(clippy::unwrap_used, clippy::panic)]
pub fn start_ready(
    cmd: &mut std::process::Command,
    what: &str,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
) {
    use std::io::{BufRead, Read};
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    if line.trim() != "ready" {
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        panic!("{what}: {line:?} {err}");
    }
    (child, out)
}

use kazashi_domain::event::EventBody;
use kazashi_domain::{CivilDate, Roster};
use kazashi_sim::population::{PopulationSpec, generate, shelter_operation};

/// `text` with its ASCII digits made full-width (０–９), as a keyboard-wedge scanner or an IME
/// may type them.
pub fn full_width_digits(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// The small town every multi-process test uses: its roster and its fleet's manifest.
pub fn town() -> Result<(Roster, kazashi_sim::fleet::Fleet), String> {
    town_with(false)
}

/// [`town`], its residents on the voter list or not.
pub fn town_with(voters: bool) -> Result<(Roster, kazashi_sim::fleet::Fleet), String> {
    let today = CivilDate::new(2026, 9, 1).map_err(|e| e.to_string())?;
    let m = generate(PopulationSpec {
        households: 60,
        seed: 5,
        today,
        voters,
    })
    .map_err(|e| e.to_string())?;
    let d = shelter_operation(&m, 3).map_err(|e| e.to_string())?;
    let fleet = kazashi_sim::fleet::fleet(&d, 5)?;
    Ok((m.roster, fleet))
}

/// A check-in of the `i`-th household of the roster (cycling).
pub fn check_in(roster: &Roster, i: usize) -> Option<EventBody> {
    kazashi_sim::workload::household_check_in(roster, i)
}

/// Two rosters the roster kill test imports in turn: the town's, and the same less its last
/// entry (so their hashes differ).
pub fn two_rosters() -> Result<[Roster; 2], String> {
    let today = CivilDate::new(2026, 9, 1).map_err(|e| e.to_string())?;
    let roster = generate(PopulationSpec {
        households: 60,
        seed: 5,
        today,
        voters: false,
    })
    .map_err(|e| e.to_string())?
    .roster;
    let fewer = roster.entries().len().saturating_sub(1);
    let less = Roster::new(
        roster.kind(),
        roster.entries().iter().take(fewer).cloned().collect(),
        today,
    )
    .map_err(|e| e.to_string())?;
    Ok([roster, less])
}
