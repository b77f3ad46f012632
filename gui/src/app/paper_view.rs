//! The print buttons (issue 26, requirement 5): the A4 paper documents of `kazashi_node::paper`
//! — the present list, the 避難者名簿 and the status report for shelters, the roster extract (名簿抄本) and
//! the check-ins per hour for elections — for this laptop's site when it is of the document's
//! kind, else for every site. Each is made and audited by `Node::export_paper` (no record, no
//! file), saved in `export/` beside the store (a folder only this user can read) and sent to
//! a printer through CUPS when one accepts jobs (`KAZASHI_PRINTER` names the queue; else the
//! default or the first); the status line says which happened, in words.

use crate::app::Cx;
use eframe::egui::{self, RichText};
use kazashi_node::Clock;
use kazashi_node::paper::Paper;
use kazashi_node::printer::{Printed, Printer};

/// The buttons, in order, with their labels' ids.
pub const BUTTONS: [(Paper, &str); 5] = [
    (Paper::PresentList, "paper-present"),
    (Paper::EvacueeList, "paper-evacuees"),
    (Paper::StatusReport, "paper-status"),
    (Paper::RosterExtract, "paper-extract"),
    (Paper::HourlySummary, "paper-hourly"),
];

/// The print buttons of this deployment's kind; a press makes, saves and prints.
pub fn buttons<C: Clock>(ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
    ui.label(RichText::new(cx.tr.t("paper-title")).size(18.0).strong());
    let election = cx.node.station().deployment().is_election();
    let mut which = None;
    ui.horizontal_wrapped(|ui| {
        for (paper, id) in BUTTONS {
            if paper.for_elections() != election {
                continue;
            }
            if ui.button(cx.tr.t(id)).clicked() {
                which = Some(paper);
            }
        }
    });
    if let Some(paper) = which {
        match print(
            cx,
            paper,
            &Printer::system(std::env::var("KAZASHI_PRINTER").ok()),
        ) {
            Ok(text) => cx.say(text, true),
            Err(e) => cx.say(cx.tr.t_with("export-failed", &[("why", e.into())]), false),
        }
    }
}

/// Make `paper`, save it in `export/`, print it through `printer` when it can: the words for
/// the status line.
pub fn print<C: Clock>(
    cx: &mut Cx<'_, C>,
    paper: Paper,
    printer: &Printer,
) -> Result<String, String> {
    let (font, ..) = crate::app::fonts::find()?;
    let now = cx.now();
    let here = cx.site();
    let site = cx
        .node
        .station()
        .deployment()
        .site(&here)
        .filter(|s| {
            if paper.for_elections() {
                s.is_polling_station()
            } else {
                s.is_shelter()
            }
        })
        .map(|s| s.id);
    let r = cx
        .node
        .export_paper(cx.login.operator, paper, site, None, now, &font)?;
    let path = crate::app::oath::write_beside_store(cx.node, "export", &r.file_name, &r.bytes)?;
    let file = path.display().to_string();
    let mut text = match printer.print(&path, paper.title()) {
        Printed::Sent { queue, .. } => cx.tr.t_with(
            "paper-printed",
            &[("file", file.into()), ("queue", queue.into())],
        ),
        Printed::SavedOnly { reason } => cx.tr.t_with(
            "paper-saved",
            &[("file", file.into()), ("why", reason.into())],
        ),
    };
    for n in r.left_out.lines() {
        text.push('\n');
        text.push_str(&n);
    }
    Ok(text)
}
