//! The print buttons (issue 26, requirement 5): the A4 paper documents of `kazashi_node::paper`
//! — the present list, the 避難者名簿 and the status report for shelters, the roster extract (名簿抄本) and
//! the check-ins per hour for elections — for this laptop's site when it is of the document's
//! kind, else for every site. Each is made and audited by `Node::export_paper` (no record, no
//! file), saved in `export/` beside the store (a folder only this user can read) and sent to
//! a printer through CUPS when one accepts jobs (`KAZASHI_PRINTER` names the queue; else the
//! default or the first); the status line says which happened, in words.
//!
//! The command view has every document of the deployment's kind ([`buttons`]); a shelter's
//! present view has its present list, 避難者名簿 and status report, a polling station's
//! hourly view its 名簿抄本 and hourly summary ([`row`]). Where the manifest asks for receipt
//! slips (`receipt_slips`), reception and the present view offer the slip of this laptop's
//! latest standing check-in ([`Receipt`], made by `Node::receipt`).

use crate::app::Cx;
use eframe::egui::{self, RichText};
use kazashi_domain::event::EventBody;
use kazashi_domain::hlc::Timestamp;
use kazashi_domain::ids::EventId;
use kazashi_node::paper::Paper;
use kazashi_node::printer::{Printed, Printer};
use kazashi_node::{Clock, Node};
use std::cell::RefCell;
use std::path::Path;

thread_local! {
    /// The printer set for this thread ([`use_printer`]); `None`: the system's.
    static PRINTER: RefCell<Option<Printer>> = const { RefCell::new(None) };
}

/// The printer documents go to: the system's CUPS tools and `KAZASHI_PRINTER`'s queue, unless
/// [`use_printer`] set another on this thread.
pub fn printer() -> Printer {
    PRINTER
        .with(|p| p.borrow().clone())
        .unwrap_or_else(|| Printer::system(std::env::var("KAZASHI_PRINTER").ok()))
}

/// Send this thread's documents to `printer` (`None`: the system's again). The window runs on
/// one thread, so a test gives its window stand-in `lp`/`lpstat` tools without touching any
/// other test's.
pub fn use_printer(printer: Option<Printer>) {
    PRINTER.with(|p| *p.borrow_mut() = printer);
}

/// The buttons of this site's own documents, in one line: `(document, label id)`.
pub const SHELTER_ROW: [(Paper, &str); 3] = [
    (Paper::PresentList, "paper-here-present"),
    (Paper::EvacueeList, "paper-here-evacuees"),
    (Paper::StatusReport, "paper-here-status"),
];
pub const POLLING_ROW: [(Paper, &str); 2] = [
    (Paper::RosterExtract, "paper-here-extract"),
    (Paper::HourlySummary, "paper-here-hourly"),
];

/// One line of print buttons for this site's documents; a press makes, saves and prints.
pub fn row<C: Clock>(ui: &mut egui::Ui, cx: &mut Cx<'_, C>, papers: &[(Paper, &str)]) {
    let election = cx.node.station().deployment().is_election();
    let mut which = None;
    ui.horizontal_wrapped(|ui| {
        ui.label(cx.tr.t("paper-title"));
        for (paper, id) in papers {
            if paper.for_elections() == election && ui.button(cx.tr.t(id)).clicked() {
                which = Some(*paper);
            }
        }
    });
    if let Some(paper) = which {
        pressed(cx, paper);
    }
}

fn pressed<C: Clock>(cx: &mut Cx<'_, C>, paper: Paper) {
    match print(cx, paper, &printer()) {
        Ok(text) => cx.say(text, true),
        Err(e) => cx.say(cx.tr.t_with("export-failed", &[("why", e.into())]), false),
    }
}

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
        pressed(cx, paper);
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
    let mut text = sent(cx, &path, paper.title(), printer);
    for n in r.left_out.lines() {
        text.push('\n');
        text.push_str(&n);
    }
    Ok(text)
}

/// Print the saved `path` through `printer` when it can: the words for the status line.
fn sent<C: Clock>(cx: &Cx<'_, C>, path: &Path, title: &str, printer: &Printer) -> String {
    let file = path.display().to_string();
    match printer.print(path, title) {
        Printed::Sent { queue, .. } => cx.tr.t_with(
            "paper-printed",
            &[("file", file.into()), ("queue", queue.into())],
        ),
        Printed::SavedOnly { reason } => cx.tr.t_with(
            "paper-saved",
            &[("file", file.into()), ("why", reason.into())],
        ),
    }
}

/// The receipt slip button: this laptop's latest standing check-in, found again only when the
/// log grows, and only where the manifest asks for slips.
#[derive(Default)]
pub struct Receipt {
    /// The state's length when `last` was found.
    seen: Option<kazashi_domain::state::StateVersion>,
    last: Option<(EventId, Timestamp)>,
}

/// This laptop's latest check-in (shelter or vote) that was not undone.
pub fn last_check_in<C: Clock>(node: &Node<C>) -> Option<(EventId, Timestamp)> {
    let me = node.station().device();
    let state = node.state();
    state
        .events_unordered()
        .filter(|e| e.device() == me)
        .filter(|e| {
            matches!(
                e.body(),
                EventBody::ShelterCheckIn { .. } | EventBody::VoterCheckIn { .. }
            )
        })
        .filter(|e| state.undone_by(&e.id(), None).is_none())
        .map(|e| (e.id(), e.at()))
        .max_by_key(|(id, at)| (*at, *id))
}

impl Receipt {
    /// 「受付票を印刷（14:05 の受付）」 when the deployment hands out slips and this laptop
    /// checked someone in; a press makes the slip (`Node::receipt`, audited), saves it and
    /// prints it.
    pub fn show<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
        if !cx.node.membership().receipt_slips() {
            return;
        }
        let len = cx.node.state().version();
        if self.seen != Some(len) {
            self.last = last_check_in(cx.node);
            self.seen = Some(len);
        }
        let Some((event, at)) = self.last else {
            return;
        };
        let label = cx.tr.t_with(
            "receipt-print",
            &[("time", crate::app::hhmm(at.wall_ms).into())],
        );
        if ui.button(label).clicked() {
            match slip(cx, &event, &printer()) {
                Ok(text) => cx.say(text, true),
                Err(e) => cx.say(cx.tr.t_with("export-failed", &[("why", e.into())]), false),
            }
        }
    }
}

/// Make the slip of check-in `event`, save it in `export/`, print it through `printer` when
/// it can: the words for the status line.
pub fn slip<C: Clock>(
    cx: &mut Cx<'_, C>,
    event: &EventId,
    printer: &Printer,
) -> Result<String, String> {
    let (font, ..) = crate::app::fonts::find()?;
    let r = cx.node.receipt(cx.login.operator, event, &font)?;
    let path = crate::app::oath::write_beside_store(cx.node, "export", &r.file_name, &r.bytes)?;
    let mut text = sent(cx, &path, "受付票", printer);
    for n in r.left_out.lines() {
        text.push('\n');
        text.push_str(&n);
    }
    Ok(text)
}
