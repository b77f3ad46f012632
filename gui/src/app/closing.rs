//! Closing (issue 24, requirement 5), at the foot of the report view (shelters) and of the
//! reconciliation view (polling stations), for managers only: close
//! or reopen this site (`EventBody::SiteLifecycle`; a closed site takes no check-in), and close
//! the whole operation (`EventBody::OperationClosed`, with the retention period the manager
//! announces; the manifest's, when set, wins). Once the operation is closed it says when the
//! purge falls due. The window's tick ([`super::Station::purge_record_if_due`], run by
//! `unlock::Start`) purges the laptop once the period has passed.

use super::{Cx, Station};
use eframe::egui::{self, RichText};
use kazashi_domain::event::{EventBody, SiteState};
use kazashi_node::Clock;
use kazashi_node::purge;
use std::path::Path;

/// The longest retention period a manager may announce (a hundred years).
const MAX_DAYS: u32 = 36_500;

#[derive(Default)]
pub struct Form {
    retention: String,
    confirm: bool,
}

/// `ms` as a JST date and time for people.
pub fn when(ms: kazashi_domain::Millis) -> String {
    kazashi_domain::time::jst_text(ms)
}

/// The retention period as typed: empty is `None`; else days, at most [`MAX_DAYS`].
fn parse_days(s: &str) -> Result<Option<u32>, ()> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    match t.parse::<u32>() {
        Ok(d) if d <= MAX_DAYS => Ok(Some(d)),
        _ => Err(()),
    }
}

impl Form {
    pub fn show<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
        if !cx.login.role.manages() {
            return;
        }
        ui.separator();
        ui.label(RichText::new(cx.tr.t("closing-title")).size(18.0).strong());
        let site = cx.node.station().site();
        let closed = matches!(
            cx.node.state().site_state(&site, None),
            Some((SiteState::Closed, _))
        );
        ui.horizontal_wrapped(|ui| {
            if closed {
                ui.label(RichText::new(cx.tr.t("closing-site-closed")).color(super::RED));
                if ui.button(cx.tr.t("closing-reopen")).clicked()
                    && cx
                        .record(EventBody::SiteLifecycle(SiteState::Opened))
                        .is_some()
                {
                    let t = cx.tr.t("closing-reopen-done");
                    cx.say(t, true);
                }
            } else {
                ui.label(cx.tr.t("closing-site-open"));
                if ui.button(cx.tr.t("closing-close-site")).clicked()
                    && cx
                        .record(EventBody::SiteLifecycle(SiteState::Closed))
                        .is_some()
                {
                    let t = cx.tr.t("closing-site-done");
                    cx.say(t, true);
                }
            }
        });
        if let Some(close) = purge::closure(cx.node.membership(), cx.node.state()) {
            ui.label(cx.tr.t_with(
                "closing-operation-closed",
                &[("time", when(close.at).into())],
            ));
            ui.label(match close.purge_at() {
                Some(at) => cx
                    .tr
                    .t_with("closing-purge-at", &[("time", when(at).into())]),
                None => cx.tr.t("closing-purge-none"),
            });
            return;
        }
        super::labelled(
            ui,
            cx.tr.t("closing-retention"),
            egui::TextEdit::singleline(&mut self.retention).desired_width(64.0),
        );
        ui.checkbox(&mut self.confirm, cx.tr.t("closing-confirm"));
        let button = ui.add_enabled(
            self.confirm,
            egui::Button::new(cx.tr.t("closing-close-operation")),
        );
        if button.clicked() {
            match parse_days(&self.retention) {
                Err(()) => {
                    let t = cx.tr.t("closing-retention-bad");
                    cx.say(t, false);
                }
                Ok(retention_days) => {
                    if cx
                        .record(EventBody::OperationClosed { retention_days })
                        .is_some()
                    {
                        *self = Form::default();
                        let t = cx.tr.t("closing-operation-done");
                        cx.say(t, true);
                    }
                }
            }
        }
    }
}

impl<C: Clock + Send + 'static> Station<C> {
    /// If the operation is closed and its retention period has passed (by the node's clock):
    /// the purge's signed record written to `dir` through the node, and `true`. The caller then
    /// drops the station (closing the store) and deletes the rest
    /// (`kazashi_node::purge::purge_leftovers`).
    ///
    /// Also takes up a manager's close of the operation written on another laptop (or on this
    /// one) since the window last looked: the window then shows the closed banner and disables
    /// the check-in controls, as for the administrator's closing manifest.
    pub fn purge_record_if_due(&mut self, dir: &Path) -> Result<bool, String> {
        let block = self.host.with(|n| n.write_block());
        if block.is_some() {
            self.write_block = block;
        }
        self.host.with(|n| {
            let now = n.station().clock().now_ms();
            if purge::due(n, now).is_none() {
                return Ok(false);
            }
            purge::write_record(dir, n, now, "retention")
                .map(|()| true)
                .map_err(|e| e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn retention_days_are_a_bounded_number_or_empty() {
        assert_eq!(super::parse_days(" "), Ok(None));
        assert_eq!(super::parse_days("30"), Ok(Some(30)));
        assert_eq!(super::parse_days("36501"), Err(()));
        assert_eq!(super::parse_days("-1"), Err(()));
        assert_eq!(super::parse_days("三十"), Err(()));
    }
}
