//! `kazashi report KIND`: the command center's files from a laptop's store, made by the same
//! code as the window's export buttons (`kazashi_node::export::render`). Prints one JSON object
//! saying what it wrote and what it left out (counts and reasons, never who).

use crate::node_cmd::{StoreArgs, open_node};
use anyhow::Context as _;
use kazashi_domain::ids::OperatorId;
use kazashi_domain::{CivilDate, Millis, SiteId};
use kazashi_node::export::{PFIF_DOMAIN, Report, ReportRequest};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// evacuees (CSV, UTF-8 with BOM), evacuees-sjis (CSV, CP932), evacuees-pdf, pfif
    /// (PFIF 1.4, consented only), status (shelter status CSV), turnout and reconciliation
    /// (elections, CSV).
    #[arg(value_parser = parse_report)]
    pub kind: Report,
    #[command(flatten)]
    pub store: StoreArgs,
    /// One shelter's evacuees (its site id); every shelter without it.
    #[arg(long, value_parser = parse_site)]
    pub site: Option<SiteId>,
    /// The log as it stood at this JST time, `YYYY-MM-DD HH:MM` (default: now).
    #[arg(long, value_parser = parse_jst)]
    pub as_of: Option<Millis>,
    /// The file to write (default: `export/<name>` beside the store, readable by this user
    /// only).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Who asks for the file: a staff id of this laptop, kept as the operator of the export's
    /// audit record (every export is recorded; without it, or for an id that is not staff
    /// here, the record names nobody: `-`).
    #[arg(long)]
    pub staff: Option<String>,
}

fn parse_report(s: &str) -> Result<Report, String> {
    Report::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Report::ALL.iter().map(|r| r.name()).collect();
        format!("unknown report {s:?}; one of {}", names.join(", "))
    })
}

fn parse_site(s: &str) -> Result<SiteId, String> {
    SiteId::new(s.trim()).map_err(|e| format!("--site {s:?}: {e}"))
}

/// `YYYY-MM-DD HH:MM` (or `YYYY-MM-DDTHH:MM`) in JST, to milliseconds since the epoch.
pub fn parse_jst(s: &str) -> Result<Millis, String> {
    let bad = || format!("{s:?}: expected a JST time as YYYY-MM-DD HH:MM");
    let t = s.trim();
    let (date, time) = t.split_once([' ', 'T']).ok_or_else(bad)?;
    let d = CivilDate::parse(date).map_err(|_| bad())?;
    let (h, m) = time.split_once(':').ok_or_else(bad)?;
    let (h, m): (u64, u64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    d.jst_midnight()
        .map(|midnight| midnight + (h * 60 + m) * 60_000)
        .ok_or_else(bad)
}

pub fn run(args: &ReportArgs) -> anyhow::Result<()> {
    let now = kazashi_node::Clock::now_ms(&kazashi_node::SystemClock);
    if args.as_of.is_some_and(|t| t > now) {
        anyhow::bail!("--as-of is in the future");
    }
    // A purged folder (issue 24) holds no personal data: its signed record is what is left.
    if let Some(shown) = crate::purged_folder::finish_if_begun(&args.store.folder())? {
        println!("{}", serde_json::to_string(&shown)?);
        return Ok(());
    }
    let font = match args.kind {
        Report::EvacueesPdf => Some(crate::app::fonts::find().map_err(anyhow::Error::msg)?.0),
        _ => None,
    };
    let (mut node, _) = open_node(&args.store)?;
    let nobody = || OperatorId::new(kazashi_node::audit::NOBODY).map_err(anyhow::Error::msg);
    let operator = match args.staff.as_deref().map(|s| OperatorId::new(s.trim())) {
        Some(Ok(op)) if node.staff_role(&op).ok().flatten().is_some() => op,
        _ => nobody()?,
    };
    // Made and put on the audit record (issue 24) before the file is written: no record, no
    // file.
    let r = node
        .export_audited(
            operator,
            &ReportRequest {
                report: args.kind,
                site: args.site,
                as_of: args.as_of,
                now,
                font: font.as_deref(),
                pfif_domain: PFIF_DOMAIN,
            },
        )
        .map_err(anyhow::Error::msg)?;
    let path = match &args.out {
        Some(out) => {
            // Beside the target, then renamed: a pulled stick never holds half a file.
            let tmp = out.with_extension("partial");
            std::fs::write(&tmp, &r.bytes)
                .and_then(|()| std::fs::rename(&tmp, out))
                .with_context(|| format!("cannot write {}", out.display()))?;
            out.clone()
        }
        None => {
            crate::app::oath::write_private(&args.store.dir.join("export"), &r.file_name, &r.bytes)
                .map_err(anyhow::Error::msg)?
        }
    };
    let line = serde_json::json!({
        "report": args.kind.name(),
        "file": path.display().to_string(),
        "bytes": r.bytes.len(),
        "rows": r.rows,
        "left_out": {
            "dv_block": r.left_out.dv_block,
            "no_consent": r.left_out.no_consent,
            "cp932_replaced": r.left_out.cp932_replaced,
            "withheld_fields": r.left_out.withheld_fields,
        },
        "notes": r.left_out.lines(),
    });
    println!("{line}");
    Ok(())
}
