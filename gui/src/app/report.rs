//! The shelter status report (避難所状況報告): 第1報 first, then periodic reports, prefilled
//! from the counts on the merged log; staff correct what they see differently, add the building
//! check, lifelines and shortages, and send it to the mesh as an event.

use super::{Cx, big, hhmm, labelled};
use eframe::egui::{self, RichText};
use kazashi_domain::event::{
    AgeBand, BuildingSafety, EventBody, LifelineStatus, Lifelines, ReportCounts, ReportKind,
    Shortage, StatusReport,
};
use kazashi_domain::roster::Sex;
use kazashi_domain::text::{Label, Note};
use kazashi_node::Clock;

/// Numbers as typed (text, so that staff can correct them).
struct Counts {
    persons: String,
    households: String,
    male: String,
    female: String,
    other: String,
    ages: Vec<(AgeBand, String)>,
    outside: String,
}

pub struct Form {
    counts: Option<Counts>,
    kind: Option<ReportKind>,
    building: BuildingSafety,
    lifelines: Lifelines,
    shortages: Vec<(String, String)>,
    issues: String,
    errors: Vec<String>,
    /// Closing the site or the operation (managers).
    closing: super::closing::Form,
}

impl Default for Form {
    fn default() -> Self {
        Form {
            counts: None,
            kind: None,
            building: BuildingSafety::Unknown,
            lifelines: Lifelines {
                power: LifelineStatus::Unknown,
                water: LifelineStatus::Unknown,
                gas: LifelineStatus::Unknown,
                comms: LifelineStatus::Unknown,
                toilets: LifelineStatus::Unknown,
            },
            shortages: vec![(String::new(), String::new())],
            issues: String::new(),
            errors: Vec::new(),
            closing: super::closing::Form::default(),
        }
    }
}

fn lifeline_words<C: Clock>(cx: &Cx<'_, C>, s: LifelineStatus) -> String {
    cx.tr.t(match s {
        LifelineStatus::Available => "lifeline-ok",
        LifelineStatus::Limited => "lifeline-limited",
        LifelineStatus::Out => "lifeline-out",
        LifelineStatus::Unknown => "lifeline-unknown",
    })
}

fn building_words<C: Clock>(cx: &Cx<'_, C>, s: BuildingSafety) -> String {
    cx.tr.t(match s {
        BuildingSafety::Safe => "building-safe",
        BuildingSafety::NeedsInspection => "building-inspect",
        BuildingSafety::Unsafe => "building-unsafe",
        BuildingSafety::Unknown => "building-unknown",
    })
}

fn number(ui: &mut egui::Ui, label: String, v: &mut String) {
    labelled(ui, label, egui::TextEdit::singleline(v).desired_width(56.0));
}

impl Form {
    /// Prefill from the merged log, once per opening of the form.
    fn prefill<C: Clock>(&mut self, cx: &Cx<'_, C>) {
        if self.counts.is_some() {
            return;
        }
        let site = cx.site();
        let today = kazashi_domain::CivilDate::jst_of(cx.now());
        let c = match today {
            Some(t) => cx
                .node
                .state()
                .site_counts(&site, cx.node.station().roster(), t, None),
            None => Default::default(),
        };
        let sex = |s: Sex| c.by_sex.get(&Some(s)).copied().unwrap_or(0).to_string();
        let unknown_sex = c.by_sex.get(&None).copied().unwrap_or(0)
            + c.by_sex.get(&Some(Sex::Unspecified)).copied().unwrap_or(0);
        self.counts = Some(Counts {
            persons: c.registered().to_string(),
            households: c.households.to_string(),
            male: sex(Sex::Male),
            female: sex(Sex::Female),
            other: unknown_sex.to_string(),
            ages: AgeBand::ALL
                .iter()
                .map(|b| {
                    (
                        *b,
                        c.by_age.get(&Some(*b)).copied().unwrap_or(0).to_string(),
                    )
                })
                .collect(),
            outside: c.support_only.values().sum::<u32>().to_string(),
        });
        let previous = cx
            .node
            .state()
            .latest_status_report(&site, None)
            .map(|(_, r)| r);
        self.kind = Some(match previous.map(|r| r.kind) {
            None => ReportKind::First,
            Some(ReportKind::First) => ReportKind::Periodic(1),
            Some(ReportKind::Periodic(n)) => ReportKind::Periodic(n.saturating_add(1)),
            Some(ReportKind::Closing) => ReportKind::Closing,
        });
        if let Some(p) = previous {
            // Carry over what was reported last time.
            self.building = p.building;
            self.lifelines = p.lifelines;
        }
    }

    pub fn show<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
        self.prefill(cx);
        let kind = match self.kind {
            Some(ReportKind::First) | None => cx.tr.t("report-first"),
            Some(ReportKind::Periodic(n)) => {
                cx.tr.t_with("report-periodic", &[("n", (n + 1).into())])
            }
            Some(ReportKind::Closing) => cx.tr.t("report-closing"),
        };
        ui.heading(format!("{} — {kind}", cx.tr.t("report-title")));
        ui.label(
            cx.tr
                .t_with("report-prefilled", &[("time", hhmm(cx.now()).into())]),
        );
        let mut send = false;
        egui::ScrollArea::vertical().show(ui, |ui| {
            if let Some(c) = self.counts.as_mut() {
                ui.horizontal_wrapped(|ui| {
                    number(ui, cx.tr.t("report-persons"), &mut c.persons);
                    number(ui, cx.tr.t("report-households"), &mut c.households);
                    number(ui, cx.tr.t("report-male"), &mut c.male);
                    number(ui, cx.tr.t("report-female"), &mut c.female);
                    number(ui, cx.tr.t("report-other-sex"), &mut c.other);
                    number(ui, cx.tr.t("report-outside"), &mut c.outside);
                });
                ui.horizontal_wrapped(|ui| {
                    for (b, v) in c.ages.iter_mut() {
                        let label = match cx.tr.lang() {
                            crate::lang::Lang::Ja => b.label_ja().to_owned(),
                            crate::lang::Lang::En => cx.tr.t(&format!("age-{}", *b as u8)),
                        };
                        number(ui, label, v);
                    }
                });
            }
            ui.separator();
            ui.horizontal_wrapped(|ui| {
                ui.label(cx.tr.t("report-building"));
                egui::ComboBox::from_id_salt("building")
                    .selected_text(building_words(cx, self.building))
                    .show_ui(ui, |ui| {
                        for b in [
                            BuildingSafety::Safe,
                            BuildingSafety::NeedsInspection,
                            BuildingSafety::Unsafe,
                            BuildingSafety::Unknown,
                        ] {
                            ui.selectable_value(&mut self.building, b, building_words(cx, b));
                        }
                    });
            });
            let l = &mut self.lifelines;
            ui.horizontal_wrapped(|ui| {
                for (id, v) in [
                    ("lifeline-power", &mut l.power),
                    ("lifeline-water", &mut l.water),
                    ("lifeline-gas", &mut l.gas),
                    ("lifeline-comms", &mut l.comms),
                    ("lifeline-toilets", &mut l.toilets),
                ] {
                    ui.label(cx.tr.t(id));
                    egui::ComboBox::from_id_salt(id)
                        .selected_text(lifeline_words(cx, *v))
                        .show_ui(ui, |ui| {
                            for s in [
                                LifelineStatus::Available,
                                LifelineStatus::Limited,
                                LifelineStatus::Out,
                                LifelineStatus::Unknown,
                            ] {
                                ui.selectable_value(v, s, lifeline_words(cx, s));
                            }
                        });
                }
            });
            ui.separator();
            ui.strong(cx.tr.t("report-shortages"));
            for (i, (item, qty)) in self.shortages.iter_mut().enumerate() {
                ui.horizontal(|ui| {
                    labelled(
                        ui,
                        cx.tr.t_with("report-item", &[("n", (i + 1).into())]),
                        egui::TextEdit::singleline(item).desired_width(200.0),
                    );
                    number(ui, cx.tr.t("report-quantity"), qty);
                });
            }
            if ui.button(cx.tr.t("report-add-item")).clicked() {
                self.shortages.push((String::new(), String::new()));
            }
            labelled(
                ui,
                cx.tr.t("report-issues"),
                egui::TextEdit::multiline(&mut self.issues).desired_rows(2),
            );
            for e in &self.errors {
                ui.label(RichText::new(e.as_str()).color(super::RED));
            }
            send = big(ui, cx.tr.t("report-send")).clicked();
            self.closing.show(ui, cx);
        });
        if send {
            self.send(cx);
        }
    }

    fn send<C: Clock>(&mut self, cx: &mut Cx<'_, C>) {
        let mut errors = Vec::new();
        let Some(c) = self.counts.as_ref() else {
            return;
        };
        let mut n = |id: &str, v: &str| -> u32 {
            match v.trim().parse::<u32>() {
                Ok(x) => x,
                Err(_) => {
                    errors.push(
                        cx.tr
                            .t_with("report-bad-number", &[("field", cx.tr.t(id).into())]),
                    );
                    0
                }
            }
        };
        let mut counts = ReportCounts {
            persons: n("report-persons", &c.persons),
            households: n("report-households", &c.households),
            male: n("report-male", &c.male),
            female: n("report-female", &c.female),
            sex_unspecified: n("report-other-sex", &c.other),
            by_age: Default::default(),
            care_needs: Default::default(),
            supported_outside: n("report-outside", &c.outside),
        };
        for (b, v) in &c.ages {
            let x = n("report-age", v);
            counts.by_age.insert(*b, x);
        }
        let mut shortages = Vec::new();
        for (item, qty) in &self.shortages {
            if item.trim().is_empty() {
                continue;
            }
            match Label::new(item.trim()) {
                Ok(item) => shortages.push(Shortage {
                    item,
                    quantity: qty.trim().parse().ok(),
                    note: None,
                }),
                Err(_) => errors.push(cx.tr.t("report-bad-item")),
            }
        }
        let issues = match self.issues.trim() {
            "" => None,
            t => match Note::new(t) {
                Ok(n) => Some(n),
                Err(_) => {
                    errors.push(cx.tr.t("report-bad-issues"));
                    None
                }
            },
        };
        if !errors.is_empty() {
            self.errors = errors;
            return;
        }
        let site = cx.site();
        let opened_at = cx
            .node
            .state()
            .stays_at(&site, None)
            .iter()
            .filter_map(|(_, s)| s.checked_in.map(|t| t.wall_ms))
            .min();
        let report = StatusReport {
            kind: self.kind.unwrap_or(ReportKind::First),
            opened_at,
            counts,
            building: self.building,
            lifelines: self.lifelines,
            shortages,
            issues,
        };
        if cx
            .record(EventBody::ShelterStatusReport(Box::new(report)))
            .is_some()
        {
            *self = Form::default();
            cx.say(cx.tr.t("report-sent"), true);
        }
    }
}
