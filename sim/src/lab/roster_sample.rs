//! `kazashi-lab roster-sample`: the synthetic city's roster as a municipality would export it
//! (the documented columns), to try `kazashi roster lint` and `import` on.

use kazashi_domain::CivilDate;
use kazashi_node::roster_csv::{WriteEncoding, encode, write};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct SampleArgs {
    #[arg(long)]
    pub out: PathBuf,
    /// The drill city of this seed (the one `kazashi-lab node --drill-fleet` runs in).
    #[arg(long, default_value_t = 1)]
    pub town_seed: u64,
    /// Households (default: the drill city's 300).
    #[arg(long)]
    pub households: Option<usize>,
    #[arg(long)]
    pub voters: bool,
    /// utf-8-bom (default) or cp932.
    #[arg(long, default_value = "utf-8-bom")]
    pub encoding: String,
}

pub fn run(args: &SampleArgs) -> Result<(), String> {
    let SampleArgs {
        out,
        town_seed,
        households,
        voters,
        encoding,
    } = args;
    let m = match (households, voters) {
        (None, false) => crate::fleet_cmd::drill_town(*town_seed)?,
        _ => kazashi_sim::population::generate(kazashi_sim::population::PopulationSpec {
            households: households.unwrap_or(300),
            seed: *town_seed,
            today: CivilDate::new(2026, 9, 1).map_err(|e| e.to_string())?,
            voters: *voters,
        })
        .map_err(|e| e.to_string())?,
    };
    let enc = match encoding.as_str() {
        "utf-8-bom" | "utf8" | "utf-8" => WriteEncoding::Utf8Bom,
        "cp932" | "sjis" => WriteEncoding::Cp932,
        o => return Err(format!("unknown encoding {o:?}: utf-8-bom or cp932")),
    };
    let (bytes, rep) = encode(&write(&m.roster), enc);
    std::fs::write(out, bytes).map_err(|e| format!("{}: {e}", out.display()))?;
    println!(
        "{}",
        serde_json::json!({"persons": m.roster.len(), "hash": m.roster.hash().to_hex(),
            "cells_with_glyphs_cp932_lacks": rep.replaced_cells})
    );
    Ok(())
}
