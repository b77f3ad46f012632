//! The present list (在所者一覧): everyone registered at this shelter with their status — 在所,
//! 外出/外泊, 退所, expected from a transfer, supported outside — and what staff do to them:
//! temporary leave and return, check-out with a reason, transfer to another shelter, check-in of
//! an expected arrival, and (managers) undo of a check-in. Rows are drawn only where visible, so
//! ten thousand people scroll as fast as ten.

use super::command::paper_view;
use super::polling::undo_form;
use super::reception::staying_words;
use super::{Cx, GREEN, hhmm, labelled};
use eframe::egui::{self, RichText};
use kazashi_domain::Millis;
use kazashi_domain::event::{CheckOutReason, EventBody, IdMethod, LeaveKind, Members};
use kazashi_domain::ids::{EventId, PersonRef, SiteId};
use kazashi_domain::state::{Departure, StayStatus};
use kazashi_node::{Clock, Node};
use std::sync::Arc;

/// Persons present at this laptop's site now; records linked as one person (same-as) count
/// once.
pub fn present_count<C: Clock>(node: &Node<C>) -> usize {
    let site = node.station().site();
    let clusters = node.state().clusters(None);
    let mut reps: Vec<PersonRef> = node
        .state()
        .stays_at(&site, None)
        .iter()
        .filter(|(_, s)| s.status == StayStatus::Present)
        .map(|(p, _)| clusters.rep(p))
        .collect();
    reps.sort_unstable();
    reps.dedup();
    reps.len()
}

struct Row {
    person: PersonRef,
    label: Arc<str>,
    /// Folded label for the filter.
    folded: Arc<str>,
    status: StayStatus,
    since: Millis,
    /// The check-in that set the status, when the status is a fresh check-in.
    check_in: Option<EventId>,
    ticked: bool,
    /// The other records here linked to this one as the same person (same-as), with their
    /// status: one row stands for them all, and an action on it applies to each that it fits.
    linked: Vec<(PersonRef, StayStatus)>,
}

/// One row per person: rows of records linked as one person (same-as) merged into the row
/// of the first of them present here (else the first of them).
fn merge_linked(rows: Vec<Row>, clusters: &kazashi_domain::clusters::Clusters) -> Vec<Row> {
    let mut out: Vec<Row> = Vec::with_capacity(rows.len());
    let mut at: std::collections::BTreeMap<PersonRef, usize> = Default::default();
    for r in rows {
        if !clusters.is_clustered(&r.person) {
            out.push(r);
            continue;
        }
        let rep = clusters.rep(&r.person);
        match at.get(&rep).and_then(|&i| out.get_mut(i)) {
            None => {
                at.insert(rep, out.len());
                out.push(r);
            }
            Some(first) => {
                if first.status != StayStatus::Present && r.status == StayStatus::Present {
                    // The present record leads the row.
                    let mut linked = std::mem::take(&mut first.linked);
                    linked.push((first.person, first.status));
                    *first = Row { linked, ..r };
                } else {
                    first.linked.push((r.person, r.status));
                }
            }
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Outing,
    Overnight,
    Return,
    CheckOut,
    Transfer,
    CheckIn,
}

pub struct List {
    seen: Option<kazashi_domain::state::StateVersion>,
    rows: Vec<Row>,
    /// Each person's label and its folded form, made once: the list is rebuilt whenever the
    /// log grows (a peer writes every few seconds), and folding ten thousand names each time
    /// would stall the window.
    labels: std::collections::HashMap<PersonRef, (Arc<str>, Arc<str>)>,
    /// The site's counts, made with the rows.
    counts: kazashi_domain::state::SiteCounts,
    filter: String,
    show_left: bool,
    reason: CheckOutReason,
    to: Option<SiteId>,
    undo: Option<(EventId, String)>,
    /// The sealed notes of the one person chosen.
    notes: super::notes::NotesPanel,
    /// The receipt slip of this laptop's latest check-in (where the deployment hands them out).
    receipt: paper_view::Receipt,
}

impl Default for List {
    fn default() -> Self {
        List {
            seen: None,
            rows: Vec::new(),
            labels: Default::default(),
            counts: Default::default(),
            filter: String::new(),
            show_left: false,
            reason: CheckOutReason::Home,
            to: None,
            undo: None,
            notes: Default::default(),
            receipt: Default::default(),
        }
    }
}

fn status_words<C: Clock>(cx: &Cx<'_, C>, s: &StayStatus) -> String {
    match s {
        StayStatus::Present => cx.tr.t("status-present"),
        StayStatus::OnLeave(LeaveKind::Outing) => cx.tr.t("status-outing"),
        StayStatus::OnLeave(LeaveKind::Overnight) => cx.tr.t("status-overnight"),
        StayStatus::Left(Departure::CheckedOut(_)) => cx.tr.t("status-left"),
        StayStatus::Left(Departure::TransferredTo(to)) => cx
            .tr
            .t_with("status-transferred", &[("site", cx.site_name(to).into())]),
        StayStatus::Expected { from } => cx
            .tr
            .t_with("status-expected", &[("site", cx.site_name(from).into())]),
        StayStatus::SupportOnly(p) => {
            format!("{}（{}）", cx.tr.t("status-support"), staying_words(cx, *p))
        }
    }
}

fn reason_words<C: Clock>(cx: &Cx<'_, C>, r: CheckOutReason) -> String {
    cx.tr.t(match r {
        CheckOutReason::Home => "checkout-home",
        CheckOutReason::Hospital => "checkout-hospital",
        CheckOutReason::Relatives => "checkout-relatives",
        CheckOutReason::Other => "checkout-other",
        _ => "checkout-other",
    })
}

impl List {
    fn refresh<C: Clock>(&mut self, cx: &Cx<'_, C>) {
        let len = cx.node.state().version();
        if self.seen == Some(len) {
            return;
        }
        let ticked: std::collections::BTreeSet<PersonRef> = self
            .rows
            .iter()
            .filter(|r| r.ticked)
            .map(|r| r.person)
            .collect();
        let site = cx.site();
        let rows: Vec<Row> = cx
            .node
            .state()
            .stays_at(&site, None)
            .into_iter()
            .map(|(person, stay)| {
                let (label, folded) = self
                    .labels
                    .entry(person)
                    .or_insert_with(|| {
                        let label = cx.person_label(&person);
                        let folded = kazashi_domain::normalize::fold(&label);
                        (Arc::from(label), Arc::from(folded))
                    })
                    .clone();
                let check_in = (stay.status == StayStatus::Present)
                    .then_some(stay.event)
                    .filter(|e| {
                        matches!(
                            cx.node.state().event(e).map(|e| e.body()),
                            Some(EventBody::ShelterCheckIn { .. })
                        )
                    });
                Row {
                    person,
                    folded,
                    label,
                    status: stay.status,
                    since: stay.since.wall_ms,
                    check_in,
                    ticked: ticked.contains(&person),
                    linked: Vec::new(),
                }
            })
            .collect();
        let mut rows = merge_linked(rows, &cx.node.state().clusters(None));
        rows.sort_unstable_by(|a, b| a.folded.cmp(&b.folded));
        self.rows = rows;
        self.counts = match kazashi_domain::CivilDate::jst_of(cx.now()) {
            Some(today) => {
                cx.node
                    .state()
                    .site_counts(&site, cx.node.station().roster(), today, None)
            }
            None => Default::default(),
        };
        self.seen = Some(len);
    }

    fn visible(&self, r: &Row, folded_filter: &str) -> bool {
        let shown = self.show_left || !matches!(r.status, StayStatus::Left(_));
        shown && (folded_filter.is_empty() || r.folded.contains(folded_filter))
    }

    pub fn show<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
        self.refresh(cx);
        let counts = self.counts.clone();
        ui.horizontal(|ui| {
            ui.heading(cx.tr.t("present-title"));
            ui.label(cx.tr.t_with(
                "present-summary",
                &[
                    ("present", counts.present.into()),
                    ("leave", counts.on_leave.into()),
                    ("expected", counts.expected.into()),
                    ("households", counts.households.into()),
                    ("outside", counts.support_only.values().sum::<u32>().into()),
                ],
            ));
        });
        ui.horizontal(|ui| {
            labelled(
                ui,
                cx.tr.t("present-filter"),
                egui::TextEdit::singleline(&mut self.filter).desired_width(240.0),
            );
            ui.checkbox(&mut self.show_left, cx.tr.t("present-show-left"));
        });
        // This shelter's paper copies, and the slip of the latest check-in here.
        ui.horizontal_wrapped(|ui| {
            paper_view::row(ui, cx, &paper_view::SHELTER_ROW);
            self.receipt.show(ui, cx);
        });
        let folded = kazashi_domain::normalize::fold(self.filter.trim());
        let shown: Vec<usize> = (0..self.rows.len())
            .filter(|&i| self.rows.get(i).is_some_and(|r| self.visible(r, &folded)))
            .collect();
        let action = self.actions(ui, cx);
        // One person chosen: their sealed notes (the text for medical staff only).
        let mut one = self.rows.iter().filter(|r| r.ticked);
        if let (Some(r), None) = (one.next(), one.next()) {
            let (person, label) = (r.person, r.label.clone());
            self.notes.show(ui, cx, person, &label);
        }
        let row_h = 26.0;
        egui::ScrollArea::vertical()
            .max_height(ui.available_height() - 60.0)
            .show_rows(ui, row_h, shown.len(), |ui, range| {
                egui::Grid::new("present-rows")
                    .striped(true)
                    .min_col_width(80.0)
                    .show(ui, |ui| {
                        for i in range {
                            let Some(r) = shown.get(i).and_then(|&k| self.rows.get_mut(k)) else {
                                continue;
                            };
                            ui.checkbox(&mut r.ticked, RichText::new(&*r.label).size(17.0));
                            let color = match r.status {
                                StayStatus::Present => GREEN,
                                _ => ui.visuals().text_color(),
                            };
                            ui.label(RichText::new(status_words(cx, &r.status)).color(color));
                            ui.label(hhmm(r.since));
                            if cx.login.role.manages()
                                && let Some(e) = r.check_in
                                && ui.small_button(cx.tr.t("undo-short")).clicked()
                            {
                                self.undo = Some((e, String::new()));
                            }
                            ui.end_row();
                        }
                    });
            });
        undo_form(ui, cx, &mut self.undo);
        if let Some(a) = action {
            self.apply(cx, a);
        }
    }

    fn actions<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) -> Option<Action> {
        let ticked = self.rows.iter().filter(|r| r.ticked).count();
        let mut action = None;
        ui.horizontal_wrapped(|ui| {
            ui.label(cx.tr.t_with("present-ticked", &[("count", ticked.into())]));
            let on = ticked > 0 && cx.login.role.writes();
            for (a, id) in [
                (Action::Outing, "act-outing"),
                (Action::Overnight, "act-overnight"),
                (Action::Return, "act-return"),
                (Action::CheckIn, "act-checkin"),
            ] {
                if ui.add_enabled(on, egui::Button::new(cx.tr.t(id))).clicked() {
                    action = Some(a);
                }
            }
            ui.separator();
            egui::ComboBox::from_id_salt("checkout-reason")
                .selected_text(reason_words(cx, self.reason))
                .show_ui(ui, |ui| {
                    for r in [
                        CheckOutReason::Home,
                        CheckOutReason::Relatives,
                        CheckOutReason::Hospital,
                        CheckOutReason::Other,
                    ] {
                        ui.selectable_value(&mut self.reason, r, reason_words(cx, r));
                    }
                });
            if ui
                .add_enabled(on, egui::Button::new(cx.tr.t("act-checkout")))
                .clicked()
            {
                action = Some(Action::CheckOut);
            }
            ui.separator();
            let here = cx.site();
            let shelters: Vec<(SiteId, String)> = cx
                .node
                .station()
                .deployment()
                .sites()
                .filter(|s| s.is_shelter() && s.id != here)
                .map(|s| (s.id, s.name.as_str().to_owned()))
                .collect();
            let chosen = self
                .to
                .and_then(|t| shelters.iter().find(|(s, _)| *s == t))
                .map(|(_, n)| n.clone())
                .unwrap_or_else(|| cx.tr.t("transfer-choose"));
            egui::ComboBox::from_id_salt("transfer-to")
                .selected_text(chosen)
                .show_ui(ui, |ui| {
                    for (s, n) in &shelters {
                        ui.selectable_value(&mut self.to, Some(*s), n.as_str());
                    }
                });
            if ui
                .add_enabled(
                    on && self.to.is_some(),
                    egui::Button::new(cx.tr.t("act-transfer")),
                )
                .clicked()
            {
                action = Some(Action::Transfer);
            }
        });
        action
    }

    fn apply<C: Clock>(&mut self, cx: &mut Cx<'_, C>, a: Action) {
        // Only the ticked persons the action fits: leave and check-out from 在所, return from
        // leave, check-in of expected arrivals.
        let fits = |s: &StayStatus| match a {
            Action::Outing | Action::Overnight => *s == StayStatus::Present,
            Action::Return => matches!(s, StayStatus::OnLeave(_)),
            Action::CheckOut | Action::Transfer => s.is_registered(),
            Action::CheckIn => matches!(
                s,
                StayStatus::Expected { .. } | StayStatus::Left(_) | StayStatus::SupportOnly(_)
            ),
        };
        let n = self
            .rows
            .iter()
            .filter(|r| r.ticked && fits(&r.status))
            .count();
        // A row's linked records (the same person) go with it where the action fits them.
        let chosen: Vec<PersonRef> = self
            .rows
            .iter()
            .filter(|r| r.ticked && fits(&r.status))
            .flat_map(|r| {
                std::iter::once(r.person)
                    .chain(r.linked.iter().filter(|(_, s)| fits(s)).map(|(p, _)| *p))
            })
            .collect();
        if chosen.is_empty() {
            return cx.say(cx.tr.t("act-nobody"), false);
        }
        let Ok(members) = Members::new(chosen) else {
            return cx.say(cx.tr.t("act-nobody"), false);
        };
        let body = match a {
            Action::Outing | Action::Overnight => EventBody::TemporaryLeave {
                members,
                kind: if a == Action::Outing {
                    LeaveKind::Outing
                } else {
                    LeaveKind::Overnight
                },
                expected_return: None,
            },
            Action::Return => EventBody::ReturnFromLeave { members },
            Action::CheckOut => EventBody::ShelterCheckOut {
                members,
                reason: self.reason,
            },
            Action::Transfer => match self.to {
                Some(to) => EventBody::Transfer { members, to },
                None => return,
            },
            Action::CheckIn => EventBody::ShelterCheckIn {
                household: None,
                members,
                method: IdMethod::Lookup,
            },
        };
        if cx.record(body).is_some() {
            cx.say(cx.tr.t_with("act-done", &[("count", n.into())]), true);
            for r in self.rows.iter_mut() {
                r.ticked = false;
            }
        }
    }
}
