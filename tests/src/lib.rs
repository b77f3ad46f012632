//! Helpers shared by Kazashi's cross-crate tests and their child processes.

pub mod card_rig;

use kazashi_domain::event::EventBody;
use kazashi_domain::{CivilDate, Roster};
use kazashi_sim::population::{PopulationSpec, generate, shelter_operation};

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
