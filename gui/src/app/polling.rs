//! Polling reception: the voter (名簿番号, 投票区, eligibility); early voting with its 投票事由
//! and the 宣誓書 printed as a PDF; the election-day precinct check. A voter the merged log
//! (or the roster) shows as having voted gets a full-screen block with the evidence — where and
//! when — and passes only with a second officer's card or PIN and a reason, recorded in the
//! event. The manager can undo a check-in with a reason. The hourly reconciliation sets
//! check-ins next to the ballots issued as counted by hand.

use super::Found;
use super::cards::Card;
use super::{AMBER, Cx, GREEN, RED, big, hhmm, labelled};
use eframe::egui::{self, RichText};
use kazashi_domain::deployment::{DeploymentKind, SiteKind};
use kazashi_domain::detector::vote_blocks;
use kazashi_domain::event::{
    BlockReason, EarlyVotingReason, EventBody, IdMethod, Override, VoteMode,
};
use kazashi_domain::ids::{CardKey, EventId, OperatorId, PersonId, PersonRef};
use kazashi_domain::state::VoteRecord;
use kazashi_domain::text::Note;
use kazashi_domain::{CivilDate, Millis};
use kazashi_node::{Clock, Node};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Which kind of vote this station takes today.
pub fn mode_today<C: Clock>(node: &Node<C>) -> Option<VoteMode> {
    let site = node.station().site();
    let d = node.station().deployment();
    let SiteKind::PollingStation {
        early_voting,
        election_day,
        ..
    } = &d.site(&site)?.kind
    else {
        return None;
    };
    let DeploymentKind::Election {
        election_day: day, ..
    } = d.kind()
    else {
        return None;
    };
    let today = CivilDate::jst_of(node.station().clock().now_ms());
    match (*early_voting, *election_day) {
        (true, false) => Some(VoteMode::Early(EarlyVotingReason::Duties)),
        (false, true) => Some(VoteMode::ElectionDay),
        (true, true) if today == Some(day) => Some(VoteMode::ElectionDay),
        (true, true) => Some(VoteMode::Early(EarlyVotingReason::Duties)),
        (false, false) => None,
    }
}

/// Ballots issued at this station (standing check-ins).
pub fn voted_here<C: Clock>(node: &Node<C>) -> usize {
    let site = node.station().site();
    node.state()
        .vote_tallies(None)
        .get(&site)
        .map(|t| (t.early + t.election_day) as usize)
        .unwrap_or(0)
}

/// What stops `voter`'s check-in here now, on the merged log.
fn blocks_now<C: Clock>(cx: &Cx<'_, C>, voter: &PersonId, mode: VoteMode) -> BTreeSet<BlockReason> {
    vote_blocks(
        cx.node.state(),
        cx.node.station().roster(),
        cx.node.station().deployment(),
        &cx.site(),
        voter,
        mode,
    )
}

/// A second officer's approval being collected.
#[derive(Default)]
struct Approval {
    staff: String,
    /// The officer's PIN as typed: wiped when taken or dropped.
    pin: zeroize::Zeroizing<String>,
    reason: String,
    officer: Option<OperatorId>,
    error: Option<String>,
    /// A manager's card on the reader, waiting for its PIN (a card approves only once it
    /// signed a fresh challenge with its certificate's key).
    card: Option<Box<super::CardProof>>,
}

pub struct VoterScreen {
    voter: PersonId,
    method: IdMethod,
    bind: Option<(CardKey, PersonId)>,
    label: String,
    details: Vec<String>,
    early: bool,
    pub reason: Option<EarlyVotingReason>,
    oath: Option<PathBuf>,
    blocks: BTreeSet<BlockReason>,
    evidence: Vec<(EventId, String)>,
    approval: Option<Approval>,
}

fn block_words<C: Clock>(cx: &Cx<'_, C>, b: BlockReason) -> String {
    cx.tr.t(match b {
        BlockReason::AlreadyVoted => "block-already-voted",
        BlockReason::RosterFlaggedVoted => "block-roster-voted",
        BlockReason::WrongPrecinct => "block-wrong-precinct",
        BlockReason::Ineligible => "block-ineligible",
    })
}

fn mode_words<C: Clock>(cx: &Cx<'_, C>, m: VoteMode) -> String {
    match m {
        VoteMode::ElectionDay => cx.tr.t("mode-election-day"),
        VoteMode::Early(_) => cx.tr.t("mode-early"),
    }
}

pub fn reason_words<C: Clock>(cx: &Cx<'_, C>, r: EarlyVotingReason) -> String {
    match cx.tr.lang() {
        crate::lang::Lang::Ja => format!("{}号 {}", r.clause(), r.label_ja()),
        crate::lang::Lang::En => cx.tr.t(&format!("reason-{}", r.clause())),
    }
}

fn evidence_line<C: Clock>(cx: &Cx<'_, C>, r: &VoteRecord) -> String {
    let day = CivilDate::jst_of(r.at.wall_ms)
        .map(|d| d.to_string())
        .unwrap_or_default();
    cx.tr.t_with(
        "block-evidence",
        &[
            ("site", cx.site_name(&r.site).into()),
            ("day", day.into()),
            ("time", hhmm(r.at.wall_ms).into()),
            ("mode", mode_words(cx, r.mode).into()),
            ("operator", r.operator.as_str().to_owned().into()),
        ],
    )
}

impl VoterScreen {
    pub fn open<C: Clock>(cx: &mut Cx<'_, C>, f: Found) -> Option<Self> {
        let Some(mode) = mode_today(cx.node) else {
            cx.say(cx.tr.t("not-a-polling-station"), false);
            return None;
        };
        let entry = cx.node.station().roster().get(&f.person);
        let Some(entry) = entry.as_deref().cloned() else {
            cx.say(cx.tr.t("not-found"), false);
            return None;
        };
        let Some(info) = entry.voter.as_ref() else {
            cx.say(cx.tr.t("not-a-voter"), false);
            return None;
        };
        let blocks = blocks_now(cx, &f.person, mode);
        let evidence = cx
            .node
            .state()
            .standing_votes(&f.person, None)
            .iter()
            .map(|r| (r.event, evidence_line(cx, r)))
            .collect();
        let eligible = if info.flags.eligible {
            cx.tr.t("eligible-yes")
        } else {
            cx.tr.t("eligible-no")
        };
        let details = vec![
            cx.tr.t_with(
                "voter-list-number",
                &[("n", info.list_number.as_str().to_owned().into())],
            ),
            cx.tr.t_with(
                "voter-precinct",
                &[("p", info.precinct.as_str().to_owned().into())],
            ),
            eligible,
            entry.address.as_str().to_owned(),
        ];
        Some(VoterScreen {
            voter: f.person,
            method: f.method,
            bind: f.bind,
            label: cx.person_label(&PersonRef::Roster(f.person)),
            details,
            early: matches!(mode, VoteMode::Early(_)),
            reason: None,
            oath: None,
            blocks,
            evidence,
            approval: None,
        })
    }

    /// A second officer's card is wanted (the approval form is open).
    pub fn wants_officer(&self) -> bool {
        self.approval.as_ref().is_some_and(|a| a.officer.is_none())
    }
}

/// Who may approve: a manager enrolled here, not the operator at the desk.
fn check_officer<C: Clock>(cx: &Cx<'_, C>, op: &OperatorId) -> Result<(), String> {
    if *op == cx.login.operator {
        return Err(cx.tr.t("officer-same"));
    }
    match cx.node.staff_role(op) {
        Ok(Some(r)) if r.manages() => Ok(()),
        _ => Err(cx.tr.t("officer-not-manager")),
    }
}

/// The second officer's card, tapped while the approval form is open.
pub fn officer_card<C: Clock>(cx: &mut Cx<'_, C>, v: &mut VoterScreen, card: Card) {
    let Some(a) = v.approval.as_mut() else {
        return;
    };
    let method = kazashi_domain::audit::UnlockMethod::SecondOfficerCard;
    let found = super::staff_card(cx.node, cx.tr, card, method)
        .and_then(|p| check_officer(cx, &p.operator).map(|()| p));
    match found {
        Ok(p) => {
            a.card = Some(p);
            a.error = None;
        }
        Err(e) => {
            a.card = None;
            a.error = Some(e);
        }
    }
}

/// The second officer's card PIN was typed: they approve once the card proved its key.
fn officer_card_pin<C: Clock>(cx: &mut Cx<'_, C>, a: &mut Approval) {
    let Some(p) = a.card.take() else {
        return;
    };
    let mut said = None;
    let method = kazashi_domain::audit::UnlockMethod::SecondOfficerCard;
    match super::prove(cx.node, cx.tr, p, &mut said, method) {
        Ok((op, _)) => match check_officer(cx, &op) {
            Ok(()) => {
                a.officer = Some(op);
                a.error = None;
            }
            Err(e) => a.error = Some(e),
        },
        Err(again) => {
            a.card = again;
            if said.is_some() {
                a.error = said;
            }
        }
    }
}

/// The voter screen; true when done (checked in or cancelled).
pub fn show_voter<C: Clock>(ui: &mut egui::Ui, cx: &mut Cx<'_, C>, v: &mut VoterScreen) -> bool {
    if !v.blocks.is_empty() && v.approval.is_none() {
        return blocked(ui, cx, v);
    }
    ui.heading(cx.tr.t("voter-title"));
    ui.label(RichText::new(v.label.as_str()).size(26.0).strong());
    let mut done = false;
    // Two columns, so that everything fits a 1366×768 screen: the voter and the reason on the
    // left; the approval (if any) and the actions on the right.
    ui.columns(2, |cols| {
        let [left, right] = cols else {
            return;
        };
        for d in &v.details {
            left.label(RichText::new(d.as_str()).size(18.0));
        }
        if v.early {
            left.add_space(8.0);
            left.label(RichText::new(cx.tr.t("early-reason")).size(18.0));
            for r in EarlyVotingReason::ALL {
                left.radio_value(&mut v.reason, Some(r), reason_words(cx, r));
            }
        }
        if let Some(a) = v.approval.as_mut() {
            if approval(right, cx, a) {
                v.approval = None;
                done = v.blocks.is_empty();
                return;
            }
            if a.officer.is_none() {
                return;
            }
        }
        if v.early
            && let Some(reason) = v.reason
        {
            if right.button(cx.tr.t("oath-make")).clicked() {
                match super::oath::write_for(cx, v.voter, reason) {
                    Ok(p) => v.oath = Some(p),
                    Err(e) => cx.say(e, false),
                }
            }
            if let Some(p) = &v.oath {
                right.label(
                    RichText::new(
                        cx.tr
                            .t_with("oath-ready", &[("path", p.display().to_string().into())]),
                    )
                    .color(GREEN),
                );
            }
        }
        let ready = !v.early || (v.reason.is_some() && v.oath.is_some());
        right.horizontal(|ui| {
            if ui
                .add_enabled(
                    ready,
                    egui::Button::new(RichText::new(cx.tr.t("issue-ballot")).size(24.0)),
                )
                .clicked()
            {
                done = check_in(cx, v);
            }
            if ui.button(cx.tr.t("cancel")).clicked() {
                done = true;
            }
        });
        if !ready {
            right.label(cx.tr.t("oath-first"));
        }
    });
    done
}

/// The full-screen block with the evidence. True when the desk goes back to the prompt.
fn blocked<C: Clock>(ui: &mut egui::Ui, cx: &mut Cx<'_, C>, v: &mut VoterScreen) -> bool {
    let mut back = false;
    egui::Frame::new()
        .fill(egui::Color32::from_rgb(255, 228, 228))
        .inner_margin(24.0)
        .show(ui, |ui| {
            ui.set_min_size(ui.available_size());
            ui.label(
                RichText::new(cx.tr.t("block-title"))
                    .size(34.0)
                    .strong()
                    .color(RED),
            );
            ui.label(RichText::new(v.label.as_str()).size(24.0));
            for b in &v.blocks {
                ui.label(RichText::new(block_words(cx, *b)).size(22.0).color(RED));
            }
            for (_, line) in &v.evidence {
                ui.label(RichText::new(line.as_str()).size(20.0));
            }
            ui.add_space(16.0);
            ui.label(cx.tr.t("block-hint"));
            ui.horizontal(|ui| {
                back = big(ui, cx.tr.t("block-back")).clicked();
                if ui.button(cx.tr.t("override-open")).clicked() {
                    v.approval = Some(Approval::default());
                }
            });
        });
    back
}

/// The second officer's approval form; true when cancelled.
fn approval<C: Clock>(ui: &mut egui::Ui, cx: &mut Cx<'_, C>, a: &mut Approval) -> bool {
    let mut cancel = false;
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.label(
            RichText::new(cx.tr.t("override-title"))
                .size(20.0)
                .color(AMBER),
        );
        match &a.officer {
            Some(op) => {
                ui.label(
                    RichText::new(
                        cx.tr
                            .t_with("officer-ok", &[("who", op.as_str().to_owned().into())]),
                    )
                    .color(GREEN),
                );
            }
            None if a.card.is_some() => {
                let (submit, cancel_card) = match a.card.as_mut() {
                    Some(p) => super::card_proof_form(ui, cx.tr, p),
                    None => (false, false),
                };
                if cancel_card {
                    a.card = None;
                } else if submit {
                    officer_card_pin(cx, a);
                }
            }
            None => {
                ui.label(cx.tr.t("officer-hint"));
                labelled(
                    ui,
                    cx.tr.t("officer-staff"),
                    egui::TextEdit::singleline(&mut a.staff).desired_width(200.0),
                );
                labelled(
                    ui,
                    cx.tr.t("officer-pin"),
                    egui::TextEdit::singleline(&mut *a.pin)
                        .password(true)
                        .desired_width(120.0),
                );
                if ui.button(cx.tr.t("officer-check")).clicked() {
                    let pin = std::mem::take(&mut a.pin);
                    let r = OperatorId::new(a.staff.trim())
                        .map_err(|_| cx.tr.t("login-unknown"))
                        .and_then(|op| {
                            cx.node
                                .staff_unlock(
                                    &op,
                                    &pin,
                                    kazashi_domain::audit::UnlockMethod::SecondOfficerPin,
                                )
                                .map_err(|e| super::login_words(cx.tr, &e))
                                .map(|_| op)
                        })
                        .and_then(|op| check_officer(cx, &op).map(|()| op));
                    match r {
                        Ok(op) => {
                            a.officer = Some(op);
                            a.error = None;
                        }
                        Err(e) => a.error = Some(e),
                    }
                }
            }
        }
        labelled(
            ui,
            cx.tr.t("override-reason"),
            egui::TextEdit::multiline(&mut a.reason).desired_rows(2),
        );
        if let Some(e) = &a.error {
            ui.label(RichText::new(e.as_str()).color(RED));
        }
        cancel = ui.button(cx.tr.t("cancel")).clicked();
    });
    cancel
}

/// Write the check-in (with the override, if any). True when written.
fn check_in<C: Clock>(cx: &mut Cx<'_, C>, v: &mut VoterScreen) -> bool {
    let Some(mode) = mode_today(cx.node) else {
        return false;
    };
    let mode = match (mode, v.reason) {
        (VoteMode::Early(_), Some(r)) => VoteMode::Early(r),
        (VoteMode::Early(_), None) => return false,
        (m, _) => m,
    };
    // The live check again: a peer's check-in may have arrived meanwhile.
    let blocks = blocks_now(cx, &v.voter, mode);
    let override_ = if blocks.is_empty() {
        None
    } else {
        let Some(a) = v.approval.as_ref() else {
            v.blocks = blocks;
            return false;
        };
        let (Some(officer), Ok(reason)) = (a.officer, Note::new(&a.reason)) else {
            cx.say(cx.tr.t("override-incomplete"), false);
            return false;
        };
        Some(Box::new(Override {
            second_officer: officer,
            blocks,
            reason,
            evidence: v.evidence.iter().map(|(id, _)| *id).collect(),
        }))
    };
    if let Some((card, p)) = v.bind
        && let Err(e) = cx
            .node
            .bind_card(cx.login.operator, card, PersonRef::Roster(p))
    {
        cx.say(e.to_string(), false);
        return false;
    }
    let overridden = override_.is_some();
    let body = EventBody::VoterCheckIn {
        voter: v.voter,
        mode,
        method: v.method,
        override_,
    };
    if cx.record(body).is_none() {
        return false;
    }
    let id = if overridden {
        "ballot-issued-override"
    } else {
        "ballot-issued"
    };
    cx.say(cx.tr.t(id), true);
    true
}

/// One check-in at this station, for the recent list.
struct Row {
    event: EventId,
    at: Millis,
    label: String,
    undone: bool,
    overridden: bool,
}

/// The hourly reconciliation and the recent check-ins (undo by the manager).
#[derive(Default)]
pub struct Reconcile {
    /// The state's length when the rows were made.
    seen: Option<kazashi_domain::state::StateVersion>,
    rows: Vec<Row>,
    issued: String,
    undo: Option<(EventId, String)>,
    /// Closing the station or the operation (managers).
    closing: super::closing::Form,
}

impl Reconcile {
    fn refresh<C: Clock>(&mut self, cx: &Cx<'_, C>) {
        if self.seen == Some(cx.node.state().version()) {
            return;
        }
        let site = cx.site();
        let mut rows = Vec::new();
        for voter in cx.node.state().voters() {
            for r in cx.node.state().votes_of(&voter, None) {
                if r.site == site {
                    rows.push(Row {
                        event: r.event,
                        at: r.at.wall_ms,
                        label: cx.person_label(&PersonRef::Roster(voter)),
                        undone: r.undone_by.is_some(),
                        overridden: r.overridden,
                    });
                }
            }
        }
        rows.sort_by_key(|r| std::cmp::Reverse(r.at));
        self.rows = rows;
        self.seen = Some(cx.node.state().version());
    }

    pub fn show<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
        self.refresh(cx);
        let site = cx.site();
        ui.horizontal(|ui| {
            ui.heading(cx.tr.t("reconcile-title"));
            // The paper backup: this station's 名簿抄本 and the check-ins per hour.
            super::command::paper_view::row(ui, cx, &super::command::paper_view::POLLING_ROW);
        });
        let tallies = cx.node.state().ballot_tallies(&site, None);
        // Check-ins per hour (JST), counted from the log.
        let mut per_hour: std::collections::BTreeMap<u64, u32> = Default::default();
        for r in self.rows.iter().filter(|r| !r.undone) {
            *per_hour.entry(r.at / 3_600_000).or_default() += 1;
        }
        egui::Grid::new("hours").striped(true).show(ui, |ui| {
            ui.strong(cx.tr.t("reconcile-hour"));
            ui.strong(cx.tr.t("reconcile-checkins"));
            ui.end_row();
            for (h, n) in &per_hour {
                ui.label(format!(
                    "{}–{}",
                    hhmm(h * 3_600_000),
                    hhmm((h + 1) * 3_600_000)
                ));
                ui.label(n.to_string());
                ui.end_row();
            }
        });
        ui.separator();
        egui::Grid::new("tallies").striped(true).show(ui, |ui| {
            ui.strong(cx.tr.t("reconcile-until"));
            ui.strong(cx.tr.t("reconcile-checkins"));
            ui.strong(cx.tr.t("reconcile-issued"));
            ui.strong(cx.tr.t("reconcile-gap"));
            ui.end_row();
            for (end, issued) in &tallies {
                let checked = self
                    .rows
                    .iter()
                    .filter(|r| !r.undone && r.at <= *end)
                    .count() as i64;
                let gap = i64::from(*issued) - checked;
                ui.label(hhmm(*end));
                ui.label(checked.to_string());
                ui.label(issued.to_string());
                let color = if gap == 0 { GREEN } else { RED };
                ui.label(RichText::new(format!("{gap:+}")).color(color).strong());
                ui.end_row();
            }
        });
        ui.horizontal(|ui| {
            labelled(
                ui,
                cx.tr.t("reconcile-enter"),
                egui::TextEdit::singleline(&mut self.issued).desired_width(80.0),
            );
            if ui.button(cx.tr.t("reconcile-save")).clicked() {
                match self.issued.trim().parse::<u32>() {
                    Ok(n) => {
                        let body = EventBody::BallotTally {
                            period_end: cx.now(),
                            ballots_issued: n,
                        };
                        if cx.record(body).is_some() {
                            self.issued.clear();
                            cx.say(cx.tr.t("reconcile-saved"), true);
                        }
                    }
                    Err(_) => cx.say(cx.tr.t("reconcile-not-a-number"), false),
                }
            }
        });
        ui.separator();
        ui.heading(cx.tr.t("recent-title"));
        self.recent(ui, cx);
        self.closing.show(ui, cx);
    }

    fn recent<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
        let manages = cx.login.role.manages();
        let mut open = None;
        egui::ScrollArea::vertical()
            .max_height(260.0)
            .show(ui, |ui| {
                for r in self.rows.iter().take(50) {
                    ui.horizontal(|ui| {
                        ui.label(hhmm(r.at));
                        let mut text = r.label.clone();
                        if r.overridden {
                            text = format!("{text} [{}]", cx.tr.t("overridden-mark"));
                        }
                        if r.undone {
                            ui.label(RichText::new(text).strikethrough());
                            ui.label(cx.tr.t("undone-mark"));
                        } else {
                            ui.label(text);
                            if manages
                                && ui
                                    .button(
                                        cx.tr.t_with(
                                            "undo-open",
                                            &[("who", r.label.clone().into())],
                                        ),
                                    )
                                    .clicked()
                            {
                                open = Some(r.event);
                            }
                        }
                    });
                }
            });
        if let Some(e) = open {
            self.undo = Some((e, String::new()));
        }
        undo_form(ui, cx, &mut self.undo);
    }
}

/// The manager's undo of a check-in (shelter or vote), with a reason.
pub fn undo_form<C: Clock>(
    ui: &mut egui::Ui,
    cx: &mut Cx<'_, C>,
    undo: &mut Option<(EventId, String)>,
) {
    let Some((target, reason)) = undo.as_mut() else {
        return;
    };
    let mut close = false;
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.label(RichText::new(cx.tr.t("undo-title")).color(AMBER).size(20.0));
        labelled(
            ui,
            cx.tr.t("undo-reason"),
            egui::TextEdit::singleline(reason).desired_width(400.0),
        );
        ui.horizontal(|ui| {
            if ui.button(cx.tr.t("undo-confirm")).clicked() {
                match Note::new(reason) {
                    Ok(note) => {
                        let body = EventBody::UndoCheckIn {
                            target: *target,
                            reason: note,
                        };
                        if cx.record(body).is_some() {
                            cx.say(cx.tr.t("undo-done"), true);
                            close = true;
                        }
                    }
                    Err(_) => cx.say(cx.tr.t("undo-needs-reason"), false),
                }
            }
            if ui.button(cx.tr.t("cancel")).clicked() {
                close = true;
            }
        });
    });
    if close {
        *undo = None;
    }
}
