//! Helpers shared by Kazashi's cross-crate tests and their child processes.

pub mod card_rig;

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
