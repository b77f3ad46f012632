//! The command center's view (本部): every site as of now or some hours back, staleness,
//! lifelines and shortages from the latest reports, ballots and reconciliation gaps with the
//! turnout chart for elections, safety confirmation (安否確認) honouring consent and the DV
//! block, and the exports. Shown to command-center staff and managers.

use super::{AMBER, Cx, GREEN, RED, ago, labelled};
use eframe::egui::{self, RichText};
use kazashi_domain::overview::{Overview, overview, turnout_series};
use kazashi_domain::safety::{Asker, SafetyAnswer, SafetyIndex, Whereabouts};
use kazashi_domain::{CivilDate, Millis};
use kazashi_node::Clock;
use kazashi_node::export::{PFIF_DOMAIN, Report, ReportRequest};
use std::sync::Arc;

const HOUR: Millis = 3_600_000;

#[path = "paper_view.rs"]
pub mod paper_view;

#[path = "as_of_index.rs"]
pub mod as_of_index;

/// The export buttons, in order, with their labels' ids (the election ones only for
/// elections).
const EXPORT_BUTTONS: [(Report, &str); 7] = [
    (Report::Evacuees, "export-csv"),
    (Report::EvacueesSjis, "export-cp932"),
    (Report::EvacueesPdf, "export-pdf"),
    (Report::Pfif, "export-pfif"),
    (Report::Status, "export-status"),
    (Report::Turnout, "export-turnout"),
    (Report::Reconciliation, "export-reconciliation"),
];

#[derive(Default)]
pub struct Dashboard {
    /// 0: now; otherwise the picture this many hours ago.
    hours_back: u32,
    /// (log length, manifest digest, hours back, the picture).
    cache: Option<(
        kazashi_domain::state::StateVersion,
        [u8; 32],
        u32,
        Arc<Overview>,
    )>,
    /// Pictures of past hours through the checkpoint index, made off this thread.
    past: as_of_index::PastPictures,
    /// (log length, the hour it ends in, ballots per station over the last 24 hours).
    turnout: Option<(
        kazashi_domain::state::StateVersion,
        Millis,
        Arc<TurnoutSeries>,
    )>,
    query: String,
    asker: Option<Asker>,
    answers: Option<Vec<SafetyAnswer>>,
    /// Everyone the log knows, folded once for safety confirmation.
    safety_index: SafetyIndex,
    roster: super::roster_import::RosterImport,
    /// 安否未確認 (shelters).
    unconfirmed: super::unconfirmed_view::UnconfirmedPanel,
}

fn lifeline(s: kazashi_domain::event::LifelineStatus) -> &'static str {
    use kazashi_domain::event::LifelineStatus as L;
    match s {
        L::Available => "○",
        L::Limited => "△",
        L::Out => "×",
        L::Unknown => "?",
    }
}

type TurnoutSeries = std::collections::BTreeMap<kazashi_domain::SiteId, Vec<(Millis, u32, u32)>>;

impl Dashboard {
    /// Test hook: the pictures of past hours (and a large log's picture of now), to set how
    /// large a log is replayed on the window's thread and to hold the builds.
    pub fn past_pictures(&mut self) -> &mut as_of_index::PastPictures {
        &mut self.past
    }

    /// Open the 安否未確認 section and bring it into view at the next frame.
    pub fn open_unconfirmed(&mut self) {
        self.unconfirmed.open();
    }

    /// The picture, made again only when the log grows or the time asked for changes.
    fn picture<C: Clock>(&mut self, cx: &mut Cx<'_, C>) -> Option<Arc<Overview>> {
        let len = cx.node.state().version();
        let manifest = cx.node.membership().digest();
        if let Some((l, m, h, ov)) = &self.cache
            && *l == len
            && *m == manifest
            && *h == self.hours_back
        {
            return Some(ov.clone());
        }
        let now = cx.now();
        // A large log's picture of now is the index's as of this moment (a replay of every
        // person's history took seconds at ten million events, redone on every new event);
        // events stamped later than this laptop's clock count once it reaches them.
        let large = !self.past.replays_inline(cx.node.state().len());
        let as_of = (self.hours_back > 0 || large)
            .then(|| now.saturating_sub(Millis::from(self.hours_back) * HOUR));
        // Ages are counted on the day of the picture (the clock is always in range).
        let on = CivilDate::jst_of(as_of.unwrap_or(now))?;
        let st = cx.node.station();
        let ov = Arc::new(match as_of {
            None => overview(st.state(), st.deployment(), st.roster(), on, None),
            Some(t) => {
                let basis = as_of_index::Basis {
                    roster: st.deployment().roster_hash(),
                    manifest,
                };
                let roster = st.roster_arc();
                // A large log's picture is made off this thread: none until it is back.
                self.past
                    .picture(st.state(), st.deployment(), &roster, basis, on, t)?
                    .overview
            }
        });
        self.cache = Some((len, manifest, self.hours_back, ov.clone()));
        Some(ov)
    }

    pub fn show<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
        ui.heading(cx.tr.t("command-title"));
        ui.horizontal(|ui| {
            ui.label(cx.tr.t("command-as-of"));
            ui.add(
                egui::Slider::new(&mut self.hours_back, 0..=72)
                    .suffix(cx.tr.t("command-hours-back")),
            );
            if self.hours_back == 0 {
                ui.label(RichText::new(cx.tr.t("command-now")).strong());
            }
            // Taken in between frames too, and the note kept true while a build runs.
            self.past.poll();
            if self.past.building() {
                ui.label(RichText::new(cx.tr.t("command-index-building")).small());
                ui.ctx()
                    .request_repaint_after(std::time::Duration::from_millis(250));
            }
        });
        let picture = self.picture(cx);
        let now = cx.now();
        let election = cx.node.station().deployment().is_election();
        let Some(ov) = picture else {
            // The past hour's picture is being made off the window's thread: the rest of the
            // view stays usable meanwhile.
            ui.label(RichText::new(cx.tr.t("command-picture-pending")).strong());
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(250));
            egui::ScrollArea::vertical()
                .id_salt("command-scroll")
                .auto_shrink([false, false])
                .show(ui, |ui| self.below_sites(ui, cx, now, election));
            return;
        };
        if election {
            ui.label(cx.tr.t_with(
                "command-votes",
                &[
                    ("early", ov.votes.early.into()),
                    ("day", ov.votes.election_day.into()),
                    ("overridden", ov.votes.overridden.into()),
                ],
            ));
        } else {
            let t = &ov.totals;
            ui.label(
                RichText::new(cx.tr.t_with(
                    "command-totals",
                    &[
                        ("distinct", ov.distinct_registered.into()),
                        ("present", t.present.into()),
                        ("leave", t.on_leave.into()),
                        ("care", t.with_care_needs.into()),
                        ("outside", t.support_only.values().sum::<u32>().into()),
                    ],
                ))
                .size(18.0),
            );
        }
        egui::ScrollArea::vertical()
            .id_salt("command-scroll")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                self.sites(ui, cx, &ov, now, election);
                self.below_sites(ui, cx, now, election);
            });
    }

    /// Everything under the sites' table: turnout, safety confirmation, exports, the roster,
    /// the unconfirmed list.
    fn below_sites<C: Clock>(
        &mut self,
        ui: &mut egui::Ui,
        cx: &mut Cx<'_, C>,
        now: Millis,
        election: bool,
    ) {
        if election {
            self.turnout(ui, cx, now);
        }
        ui.separator();
        self.safety(ui, cx);
        ui.separator();
        self.exports(ui, cx);
        ui.separator();
        self.roster.show(ui, cx);
        if !election {
            ui.separator();
            self.unconfirmed.show(ui, cx);
        }
    }

    fn sites<C: Clock>(
        &mut self,
        ui: &mut egui::Ui,
        cx: &mut Cx<'_, C>,
        ov: &Overview,
        now: Millis,
        election: bool,
    ) {
        egui::Grid::new("command-sites")
            .striped(true)
            .show(ui, |ui| {
                let heads: &[&str] = if election {
                    &[
                        "command-site",
                        "command-early",
                        "command-day",
                        "command-gap",
                        "command-heard",
                    ]
                } else {
                    &[
                        "command-site",
                        "command-present",
                        "command-leave",
                        "command-households",
                        "command-care",
                        "command-outside",
                        "command-capacity",
                        "command-heard",
                        "command-lifelines",
                        "command-shortages",
                    ]
                };
                for h in heads {
                    ui.strong(cx.tr.t(h));
                }
                ui.end_row();
                for s in &ov.sites {
                    if election != s.votes.is_some() {
                        continue;
                    }
                    ui.label(cx.site_name(&s.site));
                    if let Some(v) = s.votes {
                        ui.label(v.early.to_string());
                        ui.label(v.election_day.to_string());
                        match s.reconciliation.last() {
                            Some(r) => {
                                let color = if r.gap() == 0 { GREEN } else { RED };
                                ui.label(RichText::new(format!("{:+}", r.gap())).color(color));
                            }
                            None => {
                                ui.label("—");
                            }
                        }
                    } else if let Some(c) = &s.counts {
                        ui.label(c.present.to_string());
                        ui.label(c.on_leave.to_string());
                        ui.label(c.households.to_string());
                        ui.label(c.with_care_needs.to_string());
                        ui.label(c.support_only.values().sum::<u32>().to_string());
                        match s.capacity_use() {
                            Some(p) => {
                                let color = if p >= 100 {
                                    RED
                                } else if p >= 80 {
                                    AMBER
                                } else {
                                    GREEN
                                };
                                ui.label(RichText::new(format!("{p}%")).color(color));
                            }
                            None => {
                                ui.label("—");
                            }
                        }
                    }
                    match s.silent_for(ov.as_of.unwrap_or(now)) {
                        Some(ms) => {
                            let color = if ms > 2 * HOUR {
                                RED
                            } else if ms > HOUR / 2 {
                                AMBER
                            } else {
                                GREEN
                            };
                            ui.label(RichText::new(ago(cx.tr, ms)).color(color));
                        }
                        None => {
                            ui.label(RichText::new(cx.tr.t("command-never")).color(RED));
                        }
                    }
                    if !election {
                        match &s.report {
                            Some((_, r)) => {
                                let l = r.lifelines;
                                ui.label(format!(
                                    "電{} 水{} ガ{} 通{} ト{}",
                                    lifeline(l.power),
                                    lifeline(l.water),
                                    lifeline(l.gas),
                                    lifeline(l.comms),
                                    lifeline(l.toilets)
                                ));
                                ui.label(
                                    r.shortages
                                        .iter()
                                        .map(|x| x.item.as_str())
                                        .collect::<Vec<_>>()
                                        .join("・"),
                                );
                            }
                            None => {
                                ui.label(cx.tr.t("command-no-report"));
                                ui.label("");
                            }
                        }
                    }
                    ui.end_row();
                }
            });
    }

    /// Cumulative ballots per station over the last 24 hours, a line each.
    fn turnout<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>, now: Millis) {
        ui.label(cx.tr.t("command-turnout"));
        let len = cx.node.state().version();
        let series = match &self.turnout {
            Some((l, h, s)) if *l == len && *h == now / HOUR => s.clone(),
            _ => {
                let from = now.saturating_sub(24 * HOUR);
                let s = Arc::new(turnout_series(cx.node.state(), from, now, HOUR));
                self.turnout = Some((len, now / HOUR, s.clone()));
                s
            }
        };
        let (rect, _) = ui.allocate_exact_size(egui::vec2(640.0, 160.0), egui::Sense::hover());
        let p = ui.painter_at(rect);
        p.rect_stroke(
            rect,
            0.0,
            egui::Stroke::new(1.0, egui::Color32::GRAY),
            egui::StrokeKind::Inside,
        );
        let top = series
            .values()
            .flat_map(|v| v.iter().map(|(_, e, d)| e + d))
            .max()
            .unwrap_or(0)
            .max(1);
        let colors = [
            GREEN,
            RED,
            AMBER,
            egui::Color32::BLUE,
            egui::Color32::DARK_GRAY,
        ];
        for (i, v) in series.values().enumerate() {
            let n = v.len().max(2) - 1;
            let pts: Vec<egui::Pos2> = v
                .iter()
                .enumerate()
                .map(|(k, (_, e, d))| {
                    egui::pos2(
                        rect.left() + rect.width() * k as f32 / n as f32,
                        rect.bottom() - rect.height() * (e + d) as f32 / top as f32,
                    )
                })
                .collect();
            let c = colors.get(i % colors.len()).copied().unwrap_or(GREEN);
            p.add(egui::Shape::line(pts, egui::Stroke::new(2.0, c)));
        }
    }

    fn safety<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
        ui.label(RichText::new(cx.tr.t("safety-title")).size(18.0).strong());
        let mut go = false;
        ui.horizontal(|ui| {
            let r = labelled(
                ui,
                cx.tr.t("safety-query"),
                egui::TextEdit::singleline(&mut self.query).desired_width(260.0),
            );
            go |= r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            for (a, id) in [
                (Asker::Relative, "safety-relative"),
                (Asker::Acquaintance, "safety-acquaintance"),
                (Asker::Public, "safety-public"),
            ] {
                let selected = self.asker.unwrap_or(Asker::Relative) == a;
                if ui.selectable_label(selected, cx.tr.t(id)).clicked() {
                    self.asker = Some(a);
                    self.answers = None;
                }
            }
            go |= ui.button(cx.tr.t("safety-search")).clicked();
        });
        if go {
            // Only records new since the last search are folded; the search is on the audit
            // record (who asked, how many answers) before anything is shown.
            let asker = self.asker.unwrap_or(Asker::Relative);
            let operator = cx.login.operator;
            match cx
                .node
                .safety_search(operator, &mut self.safety_index, &self.query, asker, 50)
            {
                Ok(a) => self.answers = Some(a),
                Err(e) => {
                    self.answers = None;
                    let text = cx
                        .tr
                        .t_with("audit-not-recorded", &[("why", e.to_string().into())]);
                    cx.say(text, false);
                }
            }
        }
        match &self.answers {
            None => {}
            // The same words whether nobody matched or nobody may be told: a refusal must not
            // be told apart from "not found".
            Some(a) if a.is_empty() => {
                ui.label(RichText::new(cx.tr.t("safety-none")).size(18.0));
            }
            Some(a) => {
                egui::Grid::new("safety").striped(true).show(ui, |ui| {
                    for x in a {
                        ui.label(&x.name);
                        ui.label(cx.site_name(&x.site));
                        ui.label(cx.tr.t(match x.whereabouts {
                            Whereabouts::AtShelter => "safety-at-shelter",
                            Whereabouts::SupportedOutside => "safety-outside",
                            Whereabouts::Left => "safety-left",
                            Whereabouts::Expected => "safety-expected",
                        }));
                        ui.end_row();
                    }
                });
            }
        }
    }

    fn exports<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
        paper_view::buttons(ui, cx);
        ui.separator();
        ui.label(RichText::new(cx.tr.t("export-title")).size(18.0).strong());
        let election = cx.node.station().deployment().is_election();
        let mut which = None;
        ui.horizontal_wrapped(|ui| {
            for (report, id) in EXPORT_BUTTONS {
                if report.for_elections() && !election {
                    continue;
                }
                if ui.button(cx.tr.t(id)).clicked() {
                    which = Some(report);
                }
            }
        });
        let Some(which) = which else {
            return;
        };
        match self.export(cx, which) {
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

    /// Write one export in `export/` beside the store (a folder only this user can read), made
    /// by the same code as `kazashi report`; its path and what it left out.
    fn export<C: Clock>(
        &mut self,
        cx: &mut Cx<'_, C>,
        report: Report,
    ) -> Result<(String, Vec<String>), String> {
        let font = match report {
            Report::EvacueesPdf => Some(super::fonts::find()?.0),
            _ => None,
        };
        let now = cx.now();
        // Made and put on the audit record in one step: no record, no file.
        let r = cx.node.export_audited(
            cx.login.operator,
            &ReportRequest {
                report,
                site: None,
                as_of: None,
                now,
                font: font.as_deref(),
                pfif_domain: PFIF_DOMAIN,
            },
        )?;
        let path = super::oath::write_beside_store(cx.node, "export", &r.file_name, &r.bytes)?;
        Ok((path.display().to_string(), r.left_out.lines()))
    }
}
