//! The start screens' tour (`kazashi-lab demo --tour-start DIR`): the product's window as
//! `kazashi` starts it ([`Start`]) on throw-away folders, photographed as drawn — the enrolment
//! form of a fresh laptop, the passphrase screen of a laptop with a store, and the enrolment
//! request (fingerprint and QR code) that laptop goes back to once its passphrase is typed,
//! since it holds no manifest yet. `docs/screens/enrol-*.png` and `unlock-*.png` are made so,
//! under Xvfb.

use crate::tour::save_png;
use eframe::egui::{self, ColorImage};
use kazashi_gui::app::Host;
use kazashi_gui::app::cards::NoReaders;
use kazashi_gui::app::unlock::{Opener, Start};
use kazashi_gui::lang::Lang;
use kazashi_node::enrolled::Folder;
use kazashi_node::enrolment;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};

/// The screens, in order (with `-ja` or `-en` added).
pub const START_SCREENS: [&str; 3] = ["enrol-form", "unlock", "enrol"];
/// The tour's laptop passphrase (a throw-away store).
const PASS: &str = "tour passphrase";
/// Frames to let a screen settle before it is photographed.
const SETTLE_FRAMES: u32 = 8;

pub struct StartTour {
    dir: PathBuf,
    lang: Lang,
    step: usize,
    wait: u32,
    pending: Option<Receiver<Arc<ColorImage>>>,
    start: Option<Start>,
    keep: Vec<tempfile::TempDir>,
    error: Option<String>,
}

impl StartTour {
    pub fn new(dir: PathBuf, lang: Lang) -> Result<Self, String> {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut t = StartTour {
            dir,
            lang,
            step: 0,
            wait: SETTLE_FRAMES,
            pending: None,
            start: None,
            keep: Vec::new(),
            error: None,
        };
        // A fresh laptop: nothing in its folder.
        let fresh = t.folder()?;
        t.start = Some(t.open(fresh)?);
        Ok(t)
    }

    fn folder(&mut self) -> Result<Folder, String> {
        let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
        let folder = Folder::new(tmp.path().join("laptop"));
        self.keep.push(tmp);
        Ok(folder)
    }

    fn open(&self, folder: Folder) -> Result<Start, String> {
        let opener: Opener = Arc::new(|node| Ok(Host::Alone(Box::new(node))));
        Start::new(folder, self.lang, opener, Box::new(NoReaders))
    }

    fn name(&self) -> Option<String> {
        let lang = match self.lang {
            Lang::Ja => "ja",
            Lang::En => "en",
        };
        START_SCREENS.get(self.step).map(|s| format!("{s}-{lang}"))
    }

    /// What the operator does to reach the screen of `self.step`.
    fn act(&mut self) -> Result<(), String> {
        match START_SCREENS.get(self.step).copied() {
            Some("unlock") => {
                // A laptop that asked to be enrolled (`kazashi enrol` made its store and key).
                let folder = self.folder()?;
                enrolment::request(&folder, PASS, "第一小学校 受付1").map_err(|e| e.to_string())?;
                self.start = Some(self.open(folder)?);
            }
            Some("enrol") => {
                let start = self.start.as_mut().ok_or("no window")?;
                start.unlock_with(PASS, None);
            }
            _ => {}
        }
        Ok(())
    }

    fn frame(&mut self, ctx: &egui::Context) {
        ctx.request_repaint();
        if let Some(e) = &self.error {
            eprintln!("kazashi-lab demo --tour-start: {e}");
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        }
        if let Some(rx) = &self.pending {
            let Ok(image) = rx.try_recv() else {
                return;
            };
            self.pending = None;
            let Some(name) = self.name() else {
                return;
            };
            if let Err(e) = save_png(&self.dir.join(format!("{name}.png")), &image) {
                self.error = Some(e);
                return;
            }
            self.step += 1;
            if self.step == START_SCREENS.len() {
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                return;
            }
            if let Err(e) = self.act() {
                self.error = Some(format!("step {name}: {e}"));
            }
            self.wait = SETTLE_FRAMES;
            return;
        }
        // Key derivation and opening run off the window's thread: wait for them.
        if self.start.as_ref().is_some_and(|s| s.busy()) {
            self.wait = SETTLE_FRAMES;
            return;
        }
        if self.wait > 0 {
            self.wait -= 1;
            return;
        }
        let (tx, rx) = channel();
        ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(
            egui::ScreenshotCallback::new(move |image| {
                let _ = tx.send(image);
            }),
        ));
        self.pending = Some(rx);
    }
}

impl eframe::App for StartTour {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.frame(ui.ctx());
        if let Some(s) = &mut self.start {
            s.show(ui);
        }
    }
}

/// Open the window, photograph the start screens into `dir`, and close.
pub fn run(dir: PathBuf, lang: Lang) -> Result<(), String> {
    kazashi_gui::app::run_app(StartTour::new(dir, lang)?)
}
