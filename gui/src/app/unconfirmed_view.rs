//! 安否未確認 (issue 26, requirement 3): roster household members not seen anywhere while the
//! rest of their household was (`kazashi_domain::unconfirmed`), for the command center and a
//! site's lead (a section of the command view). A member is taken off the list by a relative's
//! report, written as `EventBody::ReportedSafe` through `Cx::record` (withdrawn with a reason by
//! a `RetractAssertion` naming it); the list goes to CSV or PDF
//! through `Node::export_unconfirmed`, which writes the audit record first. Households under
//! the DV block or 支援措置 are never named here: one line counts them.

use super::{Cx, labelled};
use eframe::egui::{self, RichText};
use kazashi_domain::event::EventBody;
use kazashi_domain::ids::HouseholdId;
use kazashi_domain::ids::{EventId, PersonId, PersonRef, SiteId};
use kazashi_domain::text::{Label, Note};
use kazashi_domain::unconfirmed::{UnconfirmedList, household_missing, unconfirmed};
use kazashi_node::Clock;
use std::sync::Arc;

/// Most members the table shows (whole households, in household order); the files hold all.
const SHOWN: usize = 40;

#[derive(Default)]
pub struct UnconfirmedPanel {
    /// (log length, the list).
    cache: Option<(kazashi_domain::state::StateVersion, Arc<UnconfirmedList>)>,
    /// The member a report is being written for, and who reported (as typed).
    reporting: Option<PersonId>,
    by: String,
    /// The report being withdrawn, and why (as typed).
    withdrawing: Option<EventId>,
    reason: String,
    /// Open the section and bring it into view at the next frame ([`UnconfirmedPanel::open`]).
    open_once: bool,
}

impl UnconfirmedPanel {
    fn list<C: Clock>(&mut self, cx: &mut Cx<'_, C>) -> Arc<UnconfirmedList> {
        let len = cx.node.state().version();
        if let Some((l, list)) = &self.cache
            && *l == len
        {
            return list.clone();
        }
        let st = cx.node.station();
        let list = Arc::new(unconfirmed(st.state(), st.roster(), None, None));
        self.cache = Some((len, list.clone()));
        list
    }

    /// Open the section and scroll to it at the next frame (the lab's tour photographs it).
    pub fn open(&mut self) {
        self.open_once = true;
    }

    /// A section of the command view, closed until opened (the list can be long).
    pub fn show<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
        let title = RichText::new(cx.tr.t("unconfirmed-title"))
            .size(18.0)
            .strong();
        let once = std::mem::take(&mut self.open_once);
        let mut header = egui::CollapsingHeader::new(title).id_salt("unconfirmed-section");
        if once {
            header = header.open(Some(true));
        }
        let shown = header.show(ui, |ui| self.body(ui, cx));
        if once {
            shown.header_response.scroll_to_me(Some(egui::Align::Min));
        }
    }

    fn body<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
        let list = self.list(cx);
        if list.households.is_empty() {
            ui.label(cx.tr.t("unconfirmed-none"));
        } else {
            ui.label(cx.tr.t_with(
                "unconfirmed-count",
                &[
                    ("households", list.households.len().into()),
                    ("persons", list.missing_count().into()),
                ],
            ));
        }
        if list.withheld_households > 0 {
            ui.label(RichText::new(cx.tr.t_with(
                "unconfirmed-withheld",
                &[
                    ("households", list.withheld_households.into()),
                    ("persons", list.withheld_persons.into()),
                ],
            )));
        }
        let mut report_for = None;
        if !list.households.is_empty() {
            egui::Grid::new("unconfirmed").striped(true).show(ui, |ui| {
                ui.label("");
                for id in [
                    "unconfirmed-col-household",
                    "unconfirmed-col-name",
                    "unconfirmed-col-kana",
                    "unconfirmed-col-where",
                ] {
                    ui.strong(cx.tr.t(id));
                }
                ui.end_row();
                let st = cx.node.station();
                let (roster, deployment) = (st.roster(), st.deployment());
                let mut shown = 0usize;
                for h in &list.households {
                    if shown >= SHOWN {
                        break;
                    }
                    let sites = h
                        .sites
                        .iter()
                        .map(|s: &SiteId| {
                            deployment
                                .site(s)
                                .map_or_else(|| s.to_string(), |x| x.name.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join("・");
                    for p in &h.missing {
                        let Some(e) = roster.get(p) else { continue };
                        shown += 1;
                        let label = cx.tr.t_with(
                            "unconfirmed-report-safe",
                            &[("name", e.name.to_string().into())],
                        );
                        if ui.button(label).clicked() {
                            report_for = Some(*p);
                        }
                        ui.label(h.household.to_string());
                        ui.label(e.name.to_string());
                        ui.label(e.kana.to_string());
                        ui.label(&sites);
                        ui.end_row();
                    }
                }
            });
        }
        if list.missing_count() > SHOWN {
            ui.label(cx.tr.t_with(
                "unconfirmed-more",
                &[("n", (list.missing_count() - SHOWN).into())],
            ));
        }
        if let Some(p) = report_for {
            self.reporting = Some(p);
            self.by.clear();
        }
        self.report_form(ui, cx);
        self.reports(ui, cx);
        ui.horizontal(|ui| {
            if ui.button(cx.tr.t("unconfirmed-export")).clicked() {
                self.export(cx, false);
            }
            if ui.button(cx.tr.t("unconfirmed-export-pdf")).clicked() {
                self.export(cx, true);
            }
        });
    }

    /// Who reported, then the event.
    fn report_form<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
        let Some(p) = self.reporting else { return };
        let name = cx
            .node
            .station()
            .roster()
            .get(&p)
            .map(|e| e.name.to_string())
            .unwrap_or_default();
        ui.group(|ui| {
            ui.label(
                RichText::new(
                    cx.tr
                        .t_with("unconfirmed-report-for", &[("name", name.into())]),
                )
                .strong(),
            );
            labelled(
                ui,
                cx.tr.t("unconfirmed-by"),
                egui::TextEdit::singleline(&mut self.by).desired_width(240.0),
            );
            ui.horizontal(|ui| {
                if ui.button(cx.tr.t("unconfirmed-record")).clicked() {
                    match Label::new(self.by.trim()) {
                        Err(_) => {
                            let text = cx.tr.t("unconfirmed-by-needed");
                            cx.say(text, false);
                        }
                        Ok(by) => {
                            let body = EventBody::ReportedSafe {
                                person: PersonRef::Roster(p),
                                by,
                                note: None,
                            };
                            if cx.record(body).is_some() {
                                let text = cx.tr.t("unconfirmed-recorded");
                                cx.say(text, true);
                                self.reporting = None;
                                self.by.clear();
                            }
                        }
                    }
                }
                if ui.button(cx.tr.t("unconfirmed-cancel")).clicked() {
                    self.reporting = None;
                    self.by.clear();
                }
            });
        });
    }

    /// The standing reports of safety (roster residents, none of a DV/支援措置 household), each
    /// withdrawable with a reason (`RetractAssertion` naming the report).
    fn reports<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
        let st = cx.node.station();
        let (state, roster) = (st.state(), st.roster());
        let mut standing: Vec<(String, String, EventId)> = Vec::new();
        for p in state.safe_report_persons() {
            let PersonRef::Roster(id) = p else { continue };
            if state.dv_withheld(p, roster) {
                continue;
            }
            let Some(e) = roster.get(id) else { continue };
            for r in state.safe_reports(p, None) {
                standing.push((e.name.to_string(), r.by.to_string(), r.event));
            }
        }
        if standing.is_empty() {
            return;
        }
        standing.sort();
        let mut pick = None;
        ui.label(RichText::new(cx.tr.t("unconfirmed-reports")).strong());
        ui.indent("unconfirmed-reports", |ui| {
            for (name, by, event) in &standing {
                ui.horizontal(|ui| {
                    ui.label(format!("{name}（{by}）"));
                    let label = cx
                        .tr
                        .t_with("unconfirmed-withdraw", &[("name", name.clone().into())]);
                    if ui.button(label).clicked() {
                        pick = Some(*event);
                    }
                });
            }
        });
        if let Some(e) = pick {
            self.withdrawing = Some(e);
            self.reason.clear();
        }
        let Some(target) = self.withdrawing else {
            return;
        };
        ui.group(|ui| {
            labelled(
                ui,
                cx.tr.t("unconfirmed-withdraw-reason"),
                egui::TextEdit::singleline(&mut self.reason).desired_width(240.0),
            );
            ui.horizontal(|ui| {
                if ui.button(cx.tr.t("unconfirmed-withdraw-record")).clicked() {
                    match Note::new(self.reason.trim()) {
                        Err(_) => {
                            let text = cx.tr.t("unconfirmed-withdraw-reason-needed");
                            cx.say(text, false);
                        }
                        Ok(reason) => {
                            if cx
                                .record(EventBody::RetractAssertion { target, reason })
                                .is_some()
                            {
                                let text = cx.tr.t("unconfirmed-withdrawn");
                                cx.say(text, true);
                                self.withdrawing = None;
                                self.reason.clear();
                            }
                        }
                    }
                }
                if ui.button(cx.tr.t("unconfirmed-cancel")).clicked() {
                    self.withdrawing = None;
                    self.reason.clear();
                }
            });
        });
    }

    /// The CSV in `export/` beside the store, audited first (no record, no file).
    fn export<C: Clock>(&mut self, cx: &mut Cx<'_, C>, pdf: bool) {
        let font = if pdf {
            match super::fonts::find() {
                Ok((f, ..)) => Some(f),
                Err(e) => {
                    cx.say(cx.tr.t_with("export-failed", &[("why", e.into())]), false);
                    return;
                }
            }
        } else {
            None
        };
        let now = cx.now();
        let written = cx
            .node
            .export_unconfirmed(cx.login.operator, None, None, now, font.as_deref())
            .and_then(|r| {
                let path =
                    super::oath::write_beside_store(cx.node, "export", &r.file_name, &r.bytes)?;
                Ok((path.display().to_string(), r.left_out.lines()))
            });
        match written {
            Ok((path, notes)) => {
                let mut text = cx.tr.t_with("export-written", &[("path", path.into())]);
                for n in notes {
                    text.push('\n');
                    text.push_str(&n);
                }
                cx.say(text, true);
            }
            Err(e) => cx.say(cx.tr.t_with("export-failed", &[("why", e.into())]), false),
        }
    }
}

/// At reception, when part of a household is here: its members not yet accounted for (no
/// stay anywhere, no vote, no report of safety), by name; nothing for a household under the
/// DV block or 支援措置, or when nobody of it has been seen or nobody is missing.
pub fn household_line<C: Clock>(ui: &mut egui::Ui, cx: &mut Cx<'_, C>, household: &HouseholdId) {
    let st = cx.node.station();
    let (state, roster) = (st.state(), st.roster());
    let Some(missing) = household_missing(state, roster, household, None) else {
        return;
    };
    let size = roster.household(household).len();
    if missing.is_empty() || missing.len() == size {
        return;
    }
    let names: Vec<String> = missing
        .iter()
        .filter_map(|p| roster.get(p).map(|e| e.name.to_string()))
        .collect();
    let text = cx.tr.t_with(
        "unconfirmed-household",
        &[("names", names.join("、").into())],
    );
    ui.label(RichText::new(text).color(super::AMBER));
}
