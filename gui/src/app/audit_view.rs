//! The manager's audit view (監査ログ, issue 24): every device's audit records this laptop
//! holds — reads of personal data beyond reception, unlocks, overrides, roster switches —
//! filtered by device, staff id, action and time; each device's chain status first, a hole
//! or a broken link in red; and the CSV file (format in `kazashi_node::audit`) written to
//! the exports folder. Opening the view is itself recorded. Shown to managers (lead) only.

use super::{Cx, GREEN, RED, labelled};
use eframe::egui::{self, RichText};
use kazashi_domain::audit::AuditAction;
use kazashi_domain::audit_chain::DeviceChain;
use kazashi_domain::ids::{DeviceId, OperatorId};
use kazashi_node::Clock;
use kazashi_node::audit::{AuditFilter, AuditRow};
use kazashi_node::export::jst;

/// Most rows the table shows (the newest); the CSV holds them all.
const SHOWN: usize = 500;

/// The view's filters as typed, and what the log said when they last changed.
#[derive(Default)]
pub struct AuditView {
    /// The opening is recorded once per visit.
    recorded: bool,
    device: Option<DeviceId>,
    staff: String,
    action: Option<&'static str>,
    /// JST, `YYYY-MM-DD HH:MM`.
    from: String,
    to: String,
    /// (log length, filter) → rows and chains.
    cache: Option<(
        kazashi_domain::state::StateVersion,
        AuditFilter,
        Vec<AuditRow>,
        Vec<DeviceChain>,
    )>,
}

/// A hole, broken link or fork, in words.
pub fn chain_words(tr: &super::tr::Tr, c: &DeviceChain) -> String {
    if c.intact() {
        return tr.t("audit-chain-ok");
    }
    let mut parts = Vec::new();
    for (a, b) in &c.missing {
        let range = if a == b {
            a.to_string()
        } else {
            format!("{a}–{b}")
        };
        parts.push(tr.t_with("audit-chain-missing", &[("seqs", range.into())]));
    }
    if !c.broken.is_empty() {
        let list: Vec<String> = c.broken.iter().map(u64::to_string).collect();
        parts.push(tr.t_with("audit-chain-broken", &[("seqs", list.join(", ").into())]));
    }
    if !c.forks.is_empty() {
        let list: Vec<String> = c.forks.iter().map(u64::to_string).collect();
        parts.push(tr.t_with("audit-chain-fork", &[("seqs", list.join(", ").into())]));
    }
    parts.join(" / ")
}

/// `YYYY-MM-DD HH:MM` (or `YYYY-MM-DD` for midnight) in JST, to milliseconds.
fn parse_jst(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?}: YYYY-MM-DD HH:MM (JST)");
    let (date, time) = s.split_once([' ', 'T']).unwrap_or((s, "00:00"));
    let d = kazashi_domain::CivilDate::parse(date).map_err(|_| bad())?;
    let (h, m) = time.split_once(':').ok_or_else(bad)?;
    let (h, m): (u64, u64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    d.jst_midnight()
        .map(|midnight| midnight + (h * 60 + m) * 60_000)
        .ok_or_else(bad)
}

impl AuditView {
    /// The filter as typed: `Err` names a time that does not parse.
    fn filter(&self) -> Result<AuditFilter, String> {
        let time = |s: &str| -> Result<Option<u64>, String> {
            let t = s.trim();
            if t.is_empty() {
                Ok(None)
            } else {
                parse_jst(t).map(Some)
            }
        };
        Ok(AuditFilter {
            device: self.device,
            staff: OperatorId::new(self.staff.trim()).ok(),
            action: self.action.map(str::to_owned),
            from: time(&self.from)?,
            to: time(&self.to)?,
        })
    }

    pub fn show<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
        ui.heading(cx.tr.t("audit-title"));
        if !cx.login.role.manages() {
            ui.label(cx.tr.t("audit-managers-only"));
            return;
        }
        if !self.recorded {
            self.recorded = true;
            if let Err(e) = cx
                .node
                .audit(cx.login.operator, AuditAction::AuditViewed, Vec::new())
            {
                // No record, no view.
                let text = cx
                    .tr
                    .t_with("audit-not-recorded", &[("why", e.to_string().into())]);
                cx.say(text, false);
                self.recorded = false;
                return;
            }
        }
        let filter = match self.filter() {
            Ok(f) => Some(f),
            Err(e) => {
                ui.label(RichText::new(e).color(RED));
                None
            }
        };
        let len = cx.node.state().version();
        if let Some(f) = &filter
            && self
                .cache
                .as_ref()
                .is_none_or(|(l, cf, _, _)| *l != len || cf != f)
        {
            let rows = cx.node.audit_rows(f);
            let chains = cx.node.audit_chains();
            self.cache = Some((len, f.clone(), rows, chains));
        }
        let Some((_, _, rows, chains)) = &self.cache else {
            return;
        };

        // Each device's chain first: a hole is what a manager must see.
        ui.label(RichText::new(cx.tr.t("audit-chains")).size(18.0).strong());
        egui::Grid::new("audit-chains")
            .striped(true)
            .show(ui, |ui| {
                for c in chains {
                    ui.label(cx.node.device_label(&c.device));
                    ui.label(cx.tr.t_with(
                        "audit-chain-count",
                        &[("records", c.records.into()), ("last", c.last_seq.into())],
                    ));
                    ui.label(c.last_at.map(jst).unwrap_or_default());
                    let words = chain_words(cx.tr, c);
                    if c.intact() {
                        ui.label(RichText::new(words).color(GREEN));
                    } else {
                        ui.label(RichText::new(words).color(RED).strong().size(18.0));
                    }
                    ui.end_row();
                }
            });
        ui.separator();

        // Filters.
        let devices: Vec<DeviceId> = chains.iter().map(|c| c.device).collect();
        let mut export = false;
        ui.horizontal_wrapped(|ui| {
            let all = cx.tr.t("audit-all");
            let shown = self
                .device
                .map_or_else(|| all.clone(), |d| cx.node.device_label(&d));
            egui::ComboBox::from_id_salt("audit-device")
                .selected_text(shown)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.device, None, all.clone());
                    for d in &devices {
                        ui.selectable_value(&mut self.device, Some(*d), cx.node.device_label(d));
                    }
                });
            labelled(
                ui,
                cx.tr.t("audit-staff"),
                egui::TextEdit::singleline(&mut self.staff).desired_width(100.0),
            );
            egui::ComboBox::from_id_salt("audit-action")
                .selected_text(self.action.unwrap_or(&all).to_owned())
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.action, None, all.clone());
                    for a in AuditAction::NAMES {
                        ui.selectable_value(&mut self.action, Some(a), a);
                    }
                });
            labelled(
                ui,
                cx.tr.t("audit-from"),
                egui::TextEdit::singleline(&mut self.from).desired_width(130.0),
            );
            labelled(
                ui,
                cx.tr.t("audit-to"),
                egui::TextEdit::singleline(&mut self.to).desired_width(130.0),
            );
            export = ui.button(cx.tr.t("audit-export")).clicked();
        });
        ui.label(cx.tr.t_with("audit-count", &[("n", rows.len().into())]));
        let newest: Vec<&AuditRow> = rows.iter().rev().take(SHOWN).collect();
        egui::ScrollArea::vertical()
            .id_salt("audit-rows")
            .max_height(360.0)
            .show(ui, |ui| {
                egui::Grid::new("audit-table").striped(true).show(ui, |ui| {
                    for h in [
                        "audit-col-time",
                        "audit-col-device",
                        "audit-col-seq",
                        "audit-col-staff",
                        "audit-col-action",
                        "audit-col-detail",
                        "audit-col-persons",
                    ] {
                        ui.label(RichText::new(cx.tr.t(h)).strong());
                    }
                    ui.end_row();
                    for r in newest {
                        ui.label(jst(r.at));
                        ui.label(cx.node.device_label(&r.device));
                        ui.label(r.seq.to_string());
                        ui.label(r.staff.as_str());
                        ui.label(&r.action);
                        ui.label(&r.detail);
                        let persons: Vec<String> =
                            r.persons.iter().map(ToString::to_string).collect();
                        ui.label(persons.join(" "));
                        ui.end_row();
                    }
                });
            });
        if export && let Some(f) = filter {
            match self.export(cx, &f) {
                Ok(path) => {
                    let text = cx.tr.t_with("export-written", &[("path", path.into())]);
                    cx.say(text, true);
                }
                Err(e) => cx.say(cx.tr.t_with("export-failed", &[("why", e.into())]), false),
            }
        }
    }

    /// Write the rows `filter` accepts as CSV in `export/` beside the store; its path.
    fn export<C: Clock>(
        &mut self,
        cx: &mut Cx<'_, C>,
        filter: &AuditFilter,
    ) -> Result<String, String> {
        let (csv, _) = cx
            .node
            .audit_export(cx.login.operator, filter)
            .map_err(|e| e.to_string())?;
        let stamp = jst(cx.now()).replace(['-', ':'], "").replace(' ', "-");
        let name = format!("監査ログ-{stamp}.csv");
        let path = super::oath::write_beside_store(cx.node, "export", &name, csv.as_bytes())?;
        Ok(path.display().to_string())
    }
}
