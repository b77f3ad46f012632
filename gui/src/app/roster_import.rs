//! Roster import from the window (command view): a CSV export checked by the same linter as
//! `kazashi roster import`, and if it has no errors, written to the encrypted roster store
//! beside this laptop's store (`roster/roster.db`), with a progress bar. A refused file changes
//! nothing. The station keeps using the roster its deployment manifest pins: the new roster's
//! hash is shown, to be pinned in the next manifest.

use super::{Cx, GREEN, RED, labelled};
use eframe::egui::{self, RichText};
use kazashi_domain::CivilDate;
use kazashi_domain::roster::RosterKind;
use kazashi_node::roster_csv::{Lint, Mapping, ReadOptions, Severity, read};
use kazashi_node::roster_import::{ImportError, ImportOptions, Phase, import_file};
use kazashi_node::{Clock, KdfParams};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How far a running job is: the phase (0 reading, 1 indexing) and its done/total.
#[derive(Default)]
struct Progress {
    phase: AtomicU64,
    done: AtomicU64,
    total: AtomicU64,
}

impl Progress {
    fn set(&self, phase: u64, done: u64, total: u64) {
        self.phase.store(phase, Ordering::Relaxed);
        self.done.store(done, Ordering::Relaxed);
        self.total.store(total.max(1), Ordering::Relaxed);
    }
    fn fraction(&self) -> f32 {
        let (d, t) = (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed).max(1),
        );
        (d as f32 / t as f32).clamp(0.0, 1.0)
    }
}

/// What a finished job found.
enum Outcome {
    /// Could not run at all (unreadable file, store error).
    Failed(String),
    /// The linter refused the file: nothing was written.
    Refused(Lint),
    /// Checked only.
    Checked { lint: Lint, persons: usize },
    /// Written to the roster store.
    Imported {
        lint: Lint,
        persons: u64,
        hash: String,
        store: PathBuf,
    },
}

struct Job {
    progress: Arc<Progress>,
    handle: std::thread::JoinHandle<Outcome>,
}

#[derive(Default)]
pub struct RosterImport {
    path: String,
    voters: bool,
    passphrase: String,
    job: Option<Job>,
    outcome: Option<Outcome>,
}

/// Lint `file`, and unless `store` is `None` write it there: the job's body, off the UI thread.
fn run(
    file: &Path,
    kind: RosterKind,
    today: CivilDate,
    store: Option<(PathBuf, String)>,
    progress: &Progress,
) -> Outcome {
    let opts = ReadOptions {
        kind,
        mapping: Mapping::default(),
        today,
        encoding: None,
    };
    let Some((path, pass)) = store else {
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => return Outcome::Failed(format!("{}: {e}", file.display())),
        };
        return match read(&bytes, &opts, &mut |d, t| progress.set(0, d, t)) {
            Ok(imp) => Outcome::Checked {
                persons: imp.len(),
                lint: imp.lint,
            },
            Err(lint) => Outcome::Refused(lint),
        };
    };
    if let Some(dir) = path.parent()
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        return Outcome::Failed(format!("{}: {e}", dir.display()));
    }
    // Streamed, as `kazashi roster import`: the file is never held whole in memory.
    let import = ImportOptions {
        read: &opts,
        passphrase: &pass,
        params: KdfParams::STANDARD,
        expect: None,
    };
    match import_file(file, &path, &import, &mut |phase, d, t| {
        progress.set(u64::from(phase == Phase::Index), d, t)
    }) {
        Ok((db, lint)) => Outcome::Imported {
            lint,
            persons: db.len(),
            hash: db.hash().to_hex(),
            store: path,
        },
        Err(ImportError::Refused(lint)) => Outcome::Refused(lint),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

impl RosterImport {
    pub fn show<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
        ui.label(RichText::new(cx.tr.t("roster-title")).size(18.0).strong());
        let busy = self.job.is_some();
        ui.horizontal_wrapped(|ui| {
            labelled(
                ui,
                cx.tr.t("roster-file"),
                egui::TextEdit::singleline(&mut self.path).desired_width(420.0),
            );
            ui.checkbox(&mut self.voters, cx.tr.t("roster-voters"));
        });
        let mut start = None;
        ui.horizontal_wrapped(|ui| {
            labelled(
                ui,
                cx.tr.t("roster-pass"),
                egui::TextEdit::singleline(&mut self.passphrase)
                    .password(true)
                    .desired_width(220.0),
            );
            let ready = !busy && !self.path.trim().is_empty();
            if ui
                .add_enabled(ready, egui::Button::new(cx.tr.t("roster-lint")))
                .clicked()
            {
                start = Some(false);
            }
            if ui
                .add_enabled(ready, egui::Button::new(cx.tr.t("roster-import")))
                .clicked()
            {
                start = Some(true);
            }
        });
        if let Some(write) = start {
            self.start(cx, write);
        }
        self.poll(ui, cx);
        self.outcome_view(ui, cx);
    }

    fn start<C: Clock>(&mut self, cx: &mut Cx<'_, C>, write: bool) {
        let Some(today) = CivilDate::jst_of(cx.now()) else {
            return;
        };
        let store = if write {
            if self.passphrase.is_empty() {
                cx.say(cx.tr.t("roster-need-pass"), false);
                return;
            }
            let Some(dir) = cx.node.store().path().parent() else {
                let why = "the store has no folder".to_owned();
                cx.say(cx.tr.t_with("roster-failed", &[("why", why.into())]), false);
                return;
            };
            Some((
                dir.join("roster").join("roster.db"),
                self.passphrase.clone(),
            ))
        } else {
            None
        };
        let file = PathBuf::from(self.path.trim());
        let kind = if self.voters {
            RosterKind::Voters
        } else {
            RosterKind::Residents
        };
        let progress = Arc::new(Progress::default());
        let p = progress.clone();
        let handle = std::thread::spawn(move || run(&file, kind, today, store, &p));
        self.outcome = None;
        self.job = Some(Job { progress, handle });
    }

    /// The progress bar while a job runs; its outcome when it ends.
    fn poll<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
        let Some(job) = &self.job else {
            return;
        };
        if !job.handle.is_finished() {
            let phase = match job.progress.phase.load(Ordering::Relaxed) {
                0 => cx.tr.t("roster-reading"),
                _ => cx.tr.t("roster-indexing"),
            };
            let f = job.progress.fraction();
            ui.add(
                egui::ProgressBar::new(f)
                    .desired_width(420.0)
                    .text(format!("{phase} {:.0}%", f * 100.0)),
            );
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(100));
            return;
        }
        let Some(job) = self.job.take() else {
            return;
        };
        let outcome = job
            .handle
            .join()
            .unwrap_or_else(|_| Outcome::Failed("the import stopped unexpectedly".into()));
        let (text, ok) = match &outcome {
            Outcome::Failed(why) => (
                cx.tr
                    .t_with("roster-failed", &[("why", why.clone().into())]),
                false,
            ),
            Outcome::Refused(lint) => (
                cx.tr.t_with(
                    "roster-refused",
                    &[("errors", (lint.error_count() as i64).into())],
                ),
                false,
            ),
            Outcome::Checked { lint, persons } => (
                cx.tr.t_with(
                    "roster-checked",
                    &[
                        ("persons", (*persons as i64).into()),
                        ("warnings", (lint.warnings().count() as i64).into()),
                    ],
                ),
                true,
            ),
            Outcome::Imported { persons, .. } => (
                cx.tr
                    .t_with("roster-imported", &[("persons", (*persons as i64).into())]),
                true,
            ),
        };
        cx.say(text, ok);
        self.outcome = Some(outcome);
    }

    fn outcome_view<C: Clock>(&self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
        let lint = match &self.outcome {
            None | Some(Outcome::Failed(_)) => return,
            Some(Outcome::Refused(l)) => {
                ui.label(RichText::new(cx.tr.t("roster-unchanged")).color(RED));
                l
            }
            Some(Outcome::Checked { lint, .. }) => lint,
            Some(Outcome::Imported {
                lint, hash, store, ..
            }) => {
                ui.label(
                    RichText::new(cx.tr.t_with(
                        "roster-written",
                        &[("path", store.display().to_string().into())],
                    ))
                    .color(GREEN),
                );
                ui.label(cx.tr.t("roster-pin"));
                ui.monospace(hash);
                lint
            }
        };
        for f in lint.findings.iter().take(30) {
            let colour = match f.severity {
                Severity::Error => RED,
                Severity::Warning => super::AMBER,
            };
            ui.label(RichText::new(f.to_string()).color(colour));
        }
        let shown = lint.findings.len().min(30) as u64;
        let all: u64 = lint.counts.values().sum();
        if all > shown {
            ui.label(
                cx.tr
                    .t_with("roster-more", &[("n", ((all - shown) as i64).into())]),
            );
        }
    }
}
