//! Peers and sync — each peer's link, when it was last heard, events in from it, shards still
//! differing; when each site was last heard of; a typed-in peer address; USB bundles out and
//! in (`usb.rs`) — and the detector's alerts with their evidence, settled by a manager.

use super::{AMBER, Cx, GREEN, RED, ago, hhmm, labelled};
use eframe::egui::{self, RichText};
use kazashi_domain::detector::AlertKind;
use kazashi_domain::event::{AlertOutcome, EventBody};
use kazashi_domain::{SiteId, Timestamp};
use kazashi_node::mesh::{Link, MeshStatus, PeerAddr};
use kazashi_node::{Clock, Node};
use std::collections::BTreeMap;

/// Alerts not yet settled; `None` while the detector's first build runs off the window's
/// thread (minutes against a ten-million-person roster on disk).
pub fn open_alerts<C: Clock>(node: &mut Node<C>) -> Option<usize> {
    node.open_alert_count_nowait()
}

#[derive(Default)]
pub struct Panel {
    peer: String,
    /// The USB sticks found and their one-click bundles (`usb.rs`).
    pub usb: super::usb::Bundles,
    /// This laptop's clock and Wi-Fi (`system_view.rs`).
    pub system: super::system_view::Panel,
    /// When each site was last heard of, and the log length it was worked out at (a walk over
    /// every event: redone only when the log grows, not every frame).
    heard: Option<(
        kazashi_domain::state::StateVersion,
        BTreeMap<SiteId, Timestamp>,
    )>,
}

fn link_words<C: Clock>(cx: &Cx<'_, C>, l: Link) -> (String, egui::Color32) {
    match l {
        Link::Connected => (cx.tr.t("link-connected"), GREEN),
        Link::Lost => (cx.tr.t("link-lost"), AMBER),
        Link::Mismatched => (cx.tr.t("link-mismatched"), RED),
        Link::Refused => (cx.tr.t("link-refused"), RED),
    }
}

impl Panel {
    /// The panel; a peer address to dial, if one was typed in.
    pub fn show<C: Clock>(
        &mut self,
        ui: &mut egui::Ui,
        cx: &mut Cx<'_, C>,
        status: Option<&MeshStatus>,
    ) -> Option<PeerAddr> {
        let mut dial = None;
        ui.heading(cx.tr.t("network-title"));
        match status {
            None => {
                ui.label(RichText::new(cx.tr.t("network-alone")).color(AMBER));
            }
            Some(s) => {
                ui.label(cx.tr.t_with(
                    "network-me",
                    &[
                        ("events", s.events.into()),
                        ("addrs", s.addrs.join("  ").into()),
                    ],
                ));
                egui::Grid::new("peers").striped(true).show(ui, |ui| {
                    for h in [
                        "peer-name",
                        "peer-link",
                        "peer-heard",
                        "peer-events",
                        "peer-pending",
                    ] {
                        ui.strong(cx.tr.t(h));
                    }
                    ui.end_row();
                    for p in &s.peers {
                        let name = p
                            .label
                            .clone()
                            .unwrap_or_else(|| p.device.chars().take(12).collect());
                        ui.label(name);
                        let (words, color) = link_words(cx, p.link);
                        let words = match &p.reason {
                            Some(r) if p.link != Link::Connected => format!("{words}（{r}）"),
                            _ => words,
                        };
                        ui.label(RichText::new(words).color(color));
                        ui.label(
                            p.last_heard_ms
                                .map(|ms| ago(cx.tr, ms))
                                .unwrap_or_else(|| "—".into()),
                        );
                        ui.label(p.events_in.to_string());
                        ui.label(p.shards_differing.to_string());
                        ui.end_row();
                    }
                });
                if s.peers.is_empty() {
                    ui.label(cx.tr.t("network-no-peers"));
                }
                roster_line(ui, cx, &s.roster);
            }
        }
        ui.horizontal(|ui| {
            labelled(
                ui,
                cx.tr.t("peer-add"),
                egui::TextEdit::singleline(&mut self.peer)
                    .hint_text("192.168.1.20:47810")
                    .desired_width(260.0),
            );
            if ui.button(cx.tr.t("peer-dial")).clicked() {
                match self.peer.parse::<PeerAddr>() {
                    Ok(a) => {
                        dial = Some(a);
                        self.peer.clear();
                    }
                    Err(e) => cx.say(
                        cx.tr.t_with("peer-bad", &[("why", e.to_string().into())]),
                        false,
                    ),
                }
            }
        });
        ui.separator();
        ui.strong(cx.tr.t("sites-heard"));
        let now = cx.now();
        let len = cx.node.state().version();
        if self.heard.as_ref().is_none_or(|(l, _)| *l != len) {
            self.heard = Some((len, cx.node.state().last_event_per_site(None)));
        }
        let heard = self
            .heard
            .as_ref()
            .map(|(_, h)| h.clone())
            .unwrap_or_default();
        egui::Grid::new("sites").striped(true).show(ui, |ui| {
            for (site, at) in heard {
                ui.label(cx.site_name(&site));
                let span = now.saturating_sub(at.wall_ms);
                let color = if span > 30 * 60_000 { AMBER } else { GREEN };
                ui.label(RichText::new(ago(cx.tr, span)).color(color));
                ui.label(hhmm(at.wall_ms));
                ui.end_row();
            }
        });
        // Events the log keeps but the counts leave out (a revoked laptop's after its
        // cut-off, any after the close): an operator sees a flood from a stolen laptop.
        let withheld = cx.node.withheld_counts();
        if withheld.total() > 0 {
            ui.label(
                RichText::new(cx.tr.t_with(
                    "network-withheld",
                    &[
                        ("revoked", withheld.revoked.into()),
                        ("closed", withheld.after_close.into()),
                    ],
                ))
                .color(AMBER),
            );
        }
        ui.separator();
        self.usb.show(ui, cx);
        ui.separator();
        self.system.show(ui, cx);
        dial
    }
}

fn alert_words<C: Clock>(cx: &Cx<'_, C>, k: AlertKind) -> String {
    if let Some(w) = super::resolve::kind_words(cx.tr, k) {
        return w;
    }
    cx.tr.t(match k {
        AlertKind::DoubleVote => "alert-double-vote",
        AlertKind::WrongPrecinct => "alert-wrong-precinct",
        AlertKind::NotEligible => "alert-not-eligible",
        AlertKind::OverrideReview => "alert-override",
        AlertKind::OutsideVotingPeriod => "alert-outside-period",
        AlertKind::PresentAtTwoSites => "alert-two-sites",
        AlertKind::HouseholdSplit => "alert-household-split",
        AlertKind::LikelyDuplicate => "alert-duplicate",
        _ => "alert-other",
    })
}

/// The detector's open alerts, with evidence; a manager confirms or dismisses them.
pub fn alerts<C: Clock>(ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
    let Some(list) = cx.node.alerts_within(std::time::Duration::ZERO) else {
        ui.heading(cx.tr.t("alerts-checking"));
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_millis(500));
        return;
    };
    ui.heading(
        cx.tr
            .t_with("alerts-title", &[("count", list.len().into())]),
    );
    if list.is_empty() {
        ui.label(RichText::new(cx.tr.t("alerts-none")).color(GREEN));
        super::resolve::links(ui, cx);
        return;
    }
    let manages = cx.login.role.manages();
    let mut settle = None;
    let mut decided = None;
    egui::ScrollArea::vertical().show(ui, |ui| {
        for a in &list {
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.label(
                    RichText::new(alert_words(cx, a.kind))
                        .size(20.0)
                        .color(RED)
                        .strong(),
                );
                if super::resolve::is_pair(a) {
                    if let Some(d) = super::resolve::pair(ui, cx, a) {
                        decided = Some((a.clone(), d));
                    }
                } else {
                    for p in &a.subjects {
                        ui.label(cx.person_label(p));
                    }
                }
                // Where a protected person was recorded is never shown.
                let withheld = a
                    .subjects
                    .iter()
                    .any(|p| cx.node.state().dv_withheld(p, cx.node.station().roster()));
                for e in cx.node.alert_evidence(a) {
                    // The kind in the window's language (`Evidence::what` is English).
                    let what = cx
                        .node
                        .state()
                        .event(&e.event)
                        .map(|ev| super::resolve::event_kind(cx.tr, ev.body()))
                        .unwrap_or_default();
                    ui.label(format!(
                        "・{} {} — {}（{}）",
                        hhmm(e.at.wall_ms),
                        if withheld {
                            cx.tr.t("resolve-withheld")
                        } else {
                            cx.site_name(&e.site)
                        },
                        what,
                        e.operator.as_str()
                    ));
                }
                if manages {
                    ui.horizontal(|ui| {
                        if ui.button(cx.tr.t("alert-confirm")).clicked() {
                            settle = Some((a.id, AlertOutcome::Confirmed));
                        }
                        if ui.button(cx.tr.t("alert-dismiss")).clicked() {
                            settle = Some((a.id, AlertOutcome::Dismissed));
                        }
                    });
                } else {
                    ui.label(cx.tr.t("alert-manager-only"));
                }
            });
        }
    });
    if let Some((alert, outcome)) = settle
        && cx
            .record(EventBody::AlertResolution {
                alert,
                outcome,
                note: None,
            })
            .is_some()
    {
        cx.say(cx.tr.t("alert-settled"), true);
    }
    if let Some((a, d)) = decided {
        super::resolve::decide(cx, &a, d);
    }
    super::resolve::links(ui, cx);
}

/// The roster in use, and a transfer of a newly pinned one (chunks received / total).
fn roster_line<C: Clock>(
    ui: &mut egui::Ui,
    cx: &Cx<'_, C>,
    r: &kazashi_node::roster_fetch::RosterStatus,
) {
    let args = [
        ("roster", r.in_use.clone().into()),
        ("wanted", r.wanted.clone().unwrap_or_default().into()),
        ("held", r.chunks_held.into()),
        ("total", r.chunks_total.into()),
    ];
    let (id, color) = match r.state.as_str() {
        "fetching" | "building" if r.chunks_total > 0 => ("roster-fetching", AMBER),
        "fetching" | "building" | "waiting" => ("roster-waiting", AMBER),
        "failed" => ("roster-fetch-failed", RED),
        _ => ("roster-in-use", GREEN),
    };
    ui.label(RichText::new(cx.tr.t_with(id, &args)).color(color));
}
