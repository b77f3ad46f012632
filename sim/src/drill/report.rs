//! A drill's report: `report.json` (every figure), `report.md` (the same for people, in
//! English with the Japanese terms staff use) and three charts as SVG (plotters): the command
//! center's headcount against the truth, propagation delays against the baseline's, and bytes
//! on the wire. Nothing in them depends on the machine or the wall clock, so one scenario and
//! seed give the same files.

use super::Wire;
use super::track::{Heal, Tracker, percentile};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Percentiles {
    pub samples: usize,
    pub p50_ms: u32,
    pub p90_ms: u32,
    pub p99_ms: u32,
    pub max_ms: u32,
    /// The 1st to 100th percentiles, for the chart.
    pub cdf_ms: Vec<u32>,
}

impl Percentiles {
    fn of(delays: &[u32]) -> Self {
        let mut d = delays.to_vec();
        d.sort_unstable();
        Self {
            samples: d.len(),
            p50_ms: percentile(&d, 50.0),
            p90_ms: percentile(&d, 90.0),
            p99_ms: percentile(&d, 99.0),
            max_ms: d.last().copied().unwrap_or(0),
            cdf_ms: (1..=100).map(|p| percentile(&d, f64::from(p))).collect(),
        }
    }
}

/// How one sync approach did.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SyncFigures {
    /// From an event's writing to its arrival at each other laptop that came to hold it.
    pub propagation: Percentiles,
    /// The same, for events written while no partition was in force and no laptop was down.
    pub propagation_calm: Percentiles,
    pub heals: Vec<Heal>,
    pub final_heal_converged_after_ms: Option<u64>,
    pub messages: u64,
    pub wire_bytes: u64,
    pub usb_bytes: u64,
    pub bundles: u64,
}

impl SyncFigures {
    pub(crate) fn from_tracker(t: &Tracker, wire: Wire) -> Self {
        if let Some(s) = t.after_heal_summary() {
            eprintln!("trace: {s}");
        }
        let final_heal = t
            .heals()
            .iter()
            .rev()
            .find(|h| h.label == super::FINAL_HEAL)
            .and_then(|h| h.converged_after_ms);
        Self {
            propagation: Percentiles::of(&t.delays),
            propagation_calm: Percentiles::of(&t.delays_calm),
            heals: t.heals().to_vec(),
            final_heal_converged_after_ms: final_heal,
            messages: wire.messages,
            wire_bytes: wire.bytes,
            usb_bytes: wire.usb_bytes,
            bundles: wire.bundles,
        }
    }
}

/// What the command center saw at one moment, against the truth.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sample {
    pub hour: f64,
    /// Persons registered (shelters, in and supported outside) or ballots (elections) across
    /// all sites, in the fold of every event written anywhere so far.
    pub truth: u32,
    pub seen_by_hq: u32,
    /// Sum over sites of |HQ − truth|.
    pub abs_error: u32,
    /// The most any site's latest event was ahead of what HQ held, minutes.
    pub hq_lag_minutes: u64,
    pub events: u64,
    pub wire_bytes: u64,
    pub baseline_wire_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlantedLine {
    pub case: usize,
    pub kind: String,
    pub outcome: String,
    /// From the second check-in (or the registration) to the alert on the first laptop.
    pub first_node_ms: Option<u64>,
    /// … on every laptop up at the end.
    pub all_nodes_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Detection {
    pub planted: Vec<PlantedLine>,
    pub alerts_on_hq: usize,
    pub true_alerts_on_hq: usize,
    pub precision: Option<f64>,
    pub recall_min_over_nodes: Option<f64>,
    pub exact_id_recall_min_over_nodes: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Invariants {
    pub laptops_up_at_end: usize,
    pub distinct_state_digests: usize,
    /// Distinct fold digests (the events counted, `Node::fold_digest`) among the laptops up
    /// at the end: 1 when they count the same events (revocation and close are verdicts of
    /// the fold, the same on every laptop holding the same log and manifest).
    pub distinct_fold_digests: usize,
    pub converged: bool,
    /// Events no laptop up at the end holds, though they did not die with a lost laptop.
    pub events_lost: usize,
    /// Events written on a lost laptop and never passed on (lost with it, as expected).
    pub events_gone_with_lost_laptops: usize,
    pub exact_id_recall: Option<f64>,
    /// Distinct sets of alerts (by id) among the laptops up at the end: 1 when they agree.
    pub distinct_alert_sets: usize,
    /// Events a laptop held when it crashed and lacked when it was opened again.
    pub lost_at_restart: usize,
    /// Sum over sites of |command center − truth| after the final heal, the truth being the
    /// fold of every event written, less those gone with a lost laptop.
    pub hq_count_error_at_end: u32,
    /// Distinct manifest versions among the laptops up at the end.
    pub distinct_manifest_versions: usize,
    /// Laptop errors on a write or a sync step (none is expected, whatever the faults).
    pub errors: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub scenario: String,
    pub kind: String,
    pub seed: u64,
    /// The start of the run (ms since the epoch; the scenario's start date and hour, JST).
    pub start_ms: u64,
    pub sites: usize,
    pub laptops: usize,
    pub links: usize,
    pub residents: usize,
    pub simulated_hours: f64,
    pub final_heal_ends_hours: f64,
    pub events: usize,
    pub refusals: BTreeMap<String, u32>,
    pub not_recorded_no_laptop: u32,
    pub kazashi: SyncFigures,
    pub baseline: Option<SyncFigures>,
    pub detection: Detection,
    pub headcount: Vec<Sample>,
    pub invariants: Invariants,
}

impl Report {
    /// The invariants every drill must keep, as problems (empty when all hold).
    pub fn violations(&self) -> Vec<String> {
        let i = &self.invariants;
        let mut v = Vec::new();
        if !i.converged || i.distinct_state_digests > 1 {
            v.push(format!(
                "laptops did not converge: {} distinct state digests",
                i.distinct_state_digests
            ));
        }
        if i.distinct_fold_digests > 1 {
            v.push(format!(
                "laptops count different events: {} distinct fold digests",
                i.distinct_fold_digests
            ));
        }
        if i.events_lost > 0 {
            v.push(format!("{} events lost", i.events_lost));
        }
        if let Some(r) = i.exact_id_recall
            && r < 1.0
        {
            v.push(format!("exact-id recall {:.1} % < 100 %", r * 100.0));
        }
        if i.distinct_alert_sets > 1 {
            v.push(format!(
                "laptops show different alerts: {} distinct sets",
                i.distinct_alert_sets
            ));
        }
        if i.lost_at_restart > 0 {
            v.push(format!(
                "{} events held before a crash were missing after the restart",
                i.lost_at_restart
            ));
        }
        if i.hq_count_error_at_end > 0 {
            v.push(format!(
                "the command center's counts are off the truth by {} after the final heal",
                i.hq_count_error_at_end
            ));
        }
        if i.distinct_manifest_versions > 1 {
            v.push(format!(
                "laptops hold {} different manifest versions",
                i.distinct_manifest_versions
            ));
        }
        if i.errors > 0 {
            v.push(format!("{} laptop errors", i.errors));
        }
        v
    }
}

fn secs(ms: u64) -> String {
    if ms < 10_000 {
        format!("{:.2} s", ms as f64 / 1000.0)
    } else if ms < 600_000 {
        format!("{:.0} s", ms as f64 / 1000.0)
    } else {
        format!("{:.1} min", ms as f64 / 60_000.0)
    }
}

fn opt_secs(ms: Option<u64>) -> String {
    ms.map_or_else(|| "did not converge".into(), secs)
}

fn mib(b: u64) -> String {
    format!("{:.2} MiB", b as f64 / (1024.0 * 1024.0))
}

/// The human report.
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let k = &r.kazashi;
    let _ = writeln!(s, "# Drill report: {}\n", r.scenario);
    let _ = writeln!(
        s,
        "{} scenario, seed {}. {} sites, {} laptops ({} links), {} residents on the roster. \
         {} simulated hours; the final heal ended at hour {}. {} events written.\n",
        r.kind,
        r.seed,
        r.sites,
        r.laptops,
        r.links,
        r.residents,
        r.simulated_hours,
        r.final_heal_ends_hours,
        r.events
    );
    let inv = &r.invariants;
    let _ = writeln!(s, "## Invariants\n");
    let _ = writeln!(
        s,
        "- Converged: **{}** — {} laptops up at the end, {} distinct state digest(s), {} \
         distinct fold digest(s).",
        if inv.converged { "yes" } else { "NO" },
        inv.laptops_up_at_end,
        inv.distinct_state_digests,
        inv.distinct_fold_digests
    );
    let _ = writeln!(
        s,
        "- Events lost: **{}** (and {} written on a lost laptop and never passed on).",
        inv.events_lost, inv.events_gone_with_lost_laptops
    );
    if let Some(x) = inv.exact_id_recall {
        let _ = writeln!(
            s,
            "- Exact-id recall (every laptop): **{:.1} %**.",
            x * 100.0
        );
    }
    let _ = writeln!(s, "\n## Sync: Kazashi and the VxPollBook-style baseline\n");
    let b = r.baseline.as_ref();
    let col = |f: &dyn Fn(&SyncFigures) -> String| b.map_or_else(|| "—".into(), f);
    let _ = writeln!(
        s,
        "| | Kazashi | baseline (pull 3 peers / 100 ms, pages of 500) |"
    );
    let _ = writeln!(s, "|---|---|---|");
    for (label, f) in [
        (
            "propagation p50, calm (no fault in force)",
            &(|x: &SyncFigures| secs(u64::from(x.propagation_calm.p50_ms)))
                as &dyn Fn(&SyncFigures) -> String,
        ),
        ("propagation p90, calm", &|x: &SyncFigures| {
            secs(u64::from(x.propagation_calm.p90_ms))
        }),
        ("propagation p99, calm", &|x: &SyncFigures| {
            secs(u64::from(x.propagation_calm.p99_ms))
        }),
        ("propagation p50", &|x: &SyncFigures| {
            secs(u64::from(x.propagation.p50_ms))
        }),
        ("propagation p90", &|x: &SyncFigures| {
            secs(u64::from(x.propagation.p90_ms))
        }),
        ("propagation p99", &|x: &SyncFigures| {
            secs(u64::from(x.propagation.p99_ms))
        }),
        ("propagation max", &|x: &SyncFigures| {
            secs(u64::from(x.propagation.max_ms))
        }),
        ("final heal converged after", &|x: &SyncFigures| {
            opt_secs(x.final_heal_converged_after_ms)
        }),
        ("messages", &|x: &SyncFigures| x.messages.to_string()),
        ("bytes on the network", &|x: &SyncFigures| mib(x.wire_bytes)),
        ("bytes carried by car (USB)", &|x: &SyncFigures| {
            mib(x.usb_bytes)
        }),
    ] {
        let _ = writeln!(s, "| {label} | {} | {} |", f(k), col(f));
    }
    let _ = writeln!(s, "\n### Convergence after each heal\n");
    let _ = writeln!(
        s,
        "| hour | what | events missing somewhere | Kazashi | baseline |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for (i, h) in k.heals.iter().enumerate() {
        let base = b
            .and_then(|b| b.heals.get(i))
            .map_or_else(|| "—".into(), |x| opt_secs(x.converged_after_ms));
        let _ = writeln!(
            s,
            "| {:.2} | {} | {} | {} | {} |",
            h.at_ms.saturating_sub(r.start_ms) as f64 / 3_600_000.0,
            h.label,
            h.missing_events,
            opt_secs(h.converged_after_ms),
            base
        );
    }
    let d = &r.detection;
    let _ = writeln!(s, "\n## Detection against the planted truth\n");
    let _ = writeln!(
        s,
        "Alerts of the planted kinds on the command center: {} ({} true). Precision {}; recall (lowest over laptops) {}; exact-id recall {}.\n",
        d.alerts_on_hq,
        d.true_alerts_on_hq,
        d.precision
            .map_or("—".into(), |p| format!("{:.1} %", p * 100.0)),
        d.recall_min_over_nodes
            .map_or("—".into(), |p| format!("{:.1} %", p * 100.0)),
        d.exact_id_recall_min_over_nodes
            .map_or("—".into(), |p| format!("{:.1} %", p * 100.0)),
    );
    if !d.planted.is_empty() {
        let _ = writeln!(
            s,
            "| case | kind | outcome | alert on first laptop | alert on every laptop |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|");
        for p in &d.planted {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                p.case,
                p.kind,
                p.outcome,
                p.first_node_ms.map_or("—".into(), secs),
                p.all_nodes_ms.map_or("—".into(), secs)
            );
        }
    }
    let _ = writeln!(s, "\n## What the command center saw\n");
    let worst = r.headcount.iter().max_by_key(|x| x.abs_error);
    if let Some(w) = worst {
        let _ = writeln!(
            s,
            "Largest headcount error: {} (sum over sites of |HQ − truth|) at hour {:.2}, truth {}, HQ {}. \
             Largest lag of HQ behind a site: {} min.\n",
            w.abs_error,
            w.hour,
            w.truth,
            w.seen_by_hq,
            r.headcount
                .iter()
                .map(|x| x.hq_lag_minutes)
                .max()
                .unwrap_or(0)
        );
    }
    let _ = writeln!(
        s,
        "![headcount](headcount.svg)\n\n![propagation](propagation.svg)\n\n![wire](wire.svg)\n"
    );
    if !r.refusals.is_empty() || r.not_recorded_no_laptop > 0 {
        let _ = writeln!(s, "## Writes the stations refused\n");
        for (k, v) in &r.refusals {
            let _ = writeln!(s, "- {k}: {v}");
        }
        if r.not_recorded_no_laptop > 0 {
            let _ = writeln!(
                s,
                "- not recorded, no laptop up at the site: {}",
                r.not_recorded_no_laptop
            );
        }
    }
    s
}

fn chart_err<E: std::fmt::Debug>(e: E) -> std::io::Error {
    std::io::Error::other(format!("chart: {e:?}"))
}

/// One 900×420 SVG on a white page, drawn by `draw`.
fn svg(
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), std::io::Error>,
) -> Result<String, std::io::Error> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err)?;
        draw(&root)?;
        root.present().map_err(chart_err)?;
    }
    Ok(svg)
}

/// A legend entry: a short line in the series' colour.
fn legend_line(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color)
}

/// One line of a chart.
struct Line {
    label: &'static str,
    color: RGBColor,
    width: u32,
    points: Vec<(f64, f64)>,
}

/// Lines over the run's hours, from 0 to `ymax`, the legend at the upper left.
fn hours_svg(
    caption: &str,
    y_desc: &str,
    ymax: f64,
    lines: Vec<Line>,
) -> Result<String, std::io::Error> {
    let xmax = lines
        .iter()
        .flat_map(|l| l.points.last())
        .map(|p| p.0)
        .fold(0.1, f64::max);
    svg(|root| {
        let mut c = ChartBuilder::on(root)
            .caption(caption, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..xmax, 0.0..ymax)
            .map_err(chart_err)?;
        c.configure_mesh()
            .x_desc("hours since start")
            .y_desc(y_desc)
            .draw()
            .map_err(chart_err)?;
        for l in lines {
            c.draw_series(LineSeries::new(l.points, l.color.stroke_width(l.width)))
                .map_err(chart_err)?
                .label(l.label)
                .legend(legend_line(l.color));
        }
        c.configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(chart_err)?;
        Ok(())
    })
}

fn headcount_svg(r: &Report) -> Result<String, std::io::Error> {
    let ymax = r
        .headcount
        .iter()
        .map(|s| s.truth.max(s.seen_by_hq))
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.05;
    let what = if r.kind == "election" {
        "ballots"
    } else {
        "persons registered"
    };
    let series = |f: fn(&Sample) -> u32| -> Vec<(f64, f64)> {
        r.headcount
            .iter()
            .map(|s| (s.hour, f64::from(f(s))))
            .collect()
    };
    hours_svg(
        &format!("Command center vs truth: {what}"),
        what,
        ymax,
        vec![
            Line {
                label: "truth",
                color: BLACK,
                width: 2,
                points: series(|s| s.truth),
            },
            Line {
                label: "seen by HQ",
                color: BLUE,
                width: 2,
                points: series(|s| s.seen_by_hq),
            },
            Line {
                label: "|HQ − truth| summed over sites",
                color: RED,
                width: 1,
                points: series(|s| s.abs_error),
            },
        ],
    )
}

fn propagation_svg(r: &Report) -> Result<String, std::io::Error> {
    // Seconds on a log scale: from 10 ms to the slowest arrival.
    let max_s = std::iter::once(&r.kazashi)
        .chain(r.baseline.iter())
        .map(|f| f.propagation.max_ms)
        .max()
        .unwrap_or(1000)
        .max(1000) as f64
        / 1000.0;
    svg(|root| {
        let mut c = ChartBuilder::on(root)
            .caption(
                "Propagation: share of arrivals within t",
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(50)
            .build_cartesian_2d((0.01..max_s * 1.1).log_scale(), 0.0..100.0)
            .map_err(chart_err)?;
        c.configure_mesh()
            .x_desc("seconds from writing to arrival (log)")
            .y_desc("% of arrivals")
            .draw()
            .map_err(chart_err)?;
        for (f, color, label) in [
            (Some(&r.kazashi), BLUE, "Kazashi"),
            (r.baseline.as_ref(), RED, "baseline"),
        ] {
            let Some(f) = f else { continue };
            c.draw_series(LineSeries::new(
                f.propagation
                    .cdf_ms
                    .iter()
                    .enumerate()
                    .map(|(i, ms)| ((f64::from(*ms) / 1000.0).max(0.01), (i + 1) as f64)),
                color.stroke_width(2),
            ))
            .map_err(chart_err)?
            .label(label)
            .legend(legend_line(color));
        }
        c.configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(chart_err)?;
        Ok(())
    })
}

fn wire_svg(r: &Report) -> Result<String, std::io::Error> {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let ymax = r
        .headcount
        .iter()
        .map(|s| mib(s.wire_bytes.max(s.baseline_wire_bytes.unwrap_or(0))))
        .fold(0.01, f64::max)
        * 1.05;
    let mut lines = vec![Line {
        label: "Kazashi",
        color: BLUE,
        width: 2,
        points: r
            .headcount
            .iter()
            .map(|s| (s.hour, mib(s.wire_bytes)))
            .collect(),
    }];
    if r.headcount.iter().any(|s| s.baseline_wire_bytes.is_some()) {
        lines.push(Line {
            label: "baseline",
            color: RED,
            width: 2,
            points: r
                .headcount
                .iter()
                .filter_map(|s| Some((s.hour, mib(s.baseline_wire_bytes?))))
                .collect(),
        });
    }
    hours_svg("Bytes on the network, cumulative", "MiB", ymax, lines)
}

/// Write `report.json`, `report.md` and the charts into `out`.
pub fn write(r: &Report, out: &Path) -> Result<(), std::io::Error> {
    std::fs::create_dir_all(out)?;
    let json = serde_json::to_string_pretty(r).map_err(std::io::Error::other)?;
    std::fs::write(out.join("report.json"), json + "\n")?;
    std::fs::write(out.join("report.md"), markdown(r))?;
    std::fs::write(out.join("headcount.svg"), headcount_svg(r)?)?;
    std::fs::write(out.join("propagation.svg"), propagation_svg(r)?)?;
    std::fs::write(out.join("wire.svg"), wire_svg(r)?)?;
    Ok(())
}
