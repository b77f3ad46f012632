//! The screen of a purged laptop (issue 24, requirement 5): its folder holds no store, only
//! the signed record of counts (`kazashi_node::purge`). The window opens to this screen, not
//! to an error or the enrolment screen; a purge that was cut short is finished first.

use super::closing::when;
use super::tr::Tr;
use eframe::egui::{self, RichText};
use kazashi_node::enrolled::Folder;
use kazashi_node::purge::{self, ClosedBy, ClosingRecord};

/// A purged folder's record, as read when the window opened it.
pub struct Shown {
    record: Result<(ClosingRecord, bool), String>,
}

impl Shown {
    /// Finish a purge that was cut short, then read the record.
    pub fn open(folder: &Folder) -> Shown {
        let finished = if purge::unfinished(&folder.dir, &folder.roster_path()) {
            purge::purge_leftovers(&folder.dir, &folder.roster_path())
                .map(|_| ())
                .map_err(|e| e.to_string())
        } else {
            Ok(())
        };
        let record = finished.and_then(|()| match purge::read_record(&folder.dir) {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err("no record.json".into()),
            Err(e) => Err(e.to_string()),
        });
        Shown { record }
    }

    /// Whether the record read and its signature verified.
    pub fn verified(&self) -> bool {
        matches!(self.record, Ok((_, true)))
    }

    pub fn show(&self, ui: &mut egui::Ui, tr: &Tr) {
        ui.add_space(12.0);
        ui.heading(RichText::new(tr.t("purged-title")).size(26.0));
        ui.label(tr.t("purged-body"));
        ui.add_space(8.0);
        let (record, verified) = match &self.record {
            Ok((r, v)) => (r, *v),
            Err(why) => {
                ui.label(
                    RichText::new(tr.t_with("purged-error", &[("why", why.clone().into())]))
                        .color(super::RED),
                );
                return;
            }
        };
        ui.label(RichText::new(&record.deployment_name).strong());
        let by = match record.closed_by {
            Some(ClosedBy::Manifest) => tr.t("purged-by-manifest"),
            Some(ClosedBy::Manager) => tr.t("purged-by-manager"),
            None => "—".into(),
        };
        ui.label(
            tr.t_with(
                "purged-closed",
                &[
                    (
                        "time",
                        record.closed_at_ms.map(when).unwrap_or_default().into(),
                    ),
                    ("by", by.into()),
                    (
                        "days",
                        record
                            .retention_days
                            .map(|d| d.to_string())
                            .unwrap_or_else(|| "—".into())
                            .into(),
                    ),
                    ("purged", when(record.purged_at_ms).into()),
                ],
            ),
        );
        ui.label(tr.t_with(
            "purged-alerts",
            &[
                ("n", record.open_alerts.into()),
                ("events", record.events.to_string().into()),
            ],
        ));
        if verified {
            ui.label(tr.t("purged-signature-ok"));
        } else {
            ui.label(RichText::new(tr.t("purged-signature-bad")).color(super::RED));
        }
        ui.add_space(8.0);
        egui::ScrollArea::vertical().show(ui, |ui| {
            egui::Grid::new("purged-record")
                .striped(true)
                .show(ui, |ui| {
                    for h in [
                        "purged-col-site",
                        "purged-col-date",
                        "purged-col-in",
                        "purged-col-out",
                        "purged-col-peak",
                        "purged-col-ballots",
                    ] {
                        ui.label(RichText::new(tr.t(h)).strong());
                    }
                    ui.end_row();
                    for s in &record.sites {
                        for d in &s.days {
                            ui.label(if s.name.is_empty() { &s.site } else { &s.name });
                            ui.label(&d.date);
                            ui.label(d.check_ins.to_string());
                            ui.label(d.check_outs.to_string());
                            ui.label(d.peak_occupancy.to_string());
                            ui.label(d.ballots_issued.to_string());
                            ui.end_row();
                        }
                    }
                });
        });
    }
}
