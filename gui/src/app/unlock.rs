//! The window as `kazashi` starts it: [`Start`] holds the laptop's folder and shows, in one
//! window and without a restart,
//!
//! - the enrolment screen ([`super::enrol`]) when the folder holds no store;
//! - otherwise the store's passphrase (masked; the roster store's too if it differs), checked
//!   off the window's thread ([`enrolled::open`]): a wrong one is said plainly, changes nothing
//!   and may be typed again; a store that asked to be enrolled and holds no manifest yet goes
//!   back to the enrolment screen's request;
//! - then the station ([`Station`]), whose lock screen is the staff login (staff id and PIN, or
//!   a staff card); locking returns to it, not to the passphrase.
//!
//! No passphrase is read from the environment here: the headless commands may, the window
//! never does.

use super::cards::{NoReaders, Readers};
use super::enrol::{Enrolment, Job, Outcome, chain};
use super::tr::Tr;
use super::{Host, RED, Station, big, labelled};
use crate::lang::Lang;
use eframe::egui::{self, RichText};
use kazashi_node::enrolled::{self, Folder, OpenError};
use kazashi_node::roster_db::RosterDbError;
use kazashi_node::{Node, StoreError, SystemClock};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Puts an opened node to work (off the window's thread): in the mesh (the product), or alone
/// (tests).
pub type Opener = Arc<dyn Fn(Node<SystemClock>) -> Result<Host<SystemClock>, String> + Send + Sync>;

/// The passphrase screen's fields.
#[derive(Default)]
struct UnlockForm {
    pass: Zeroizing<String>,
    roster_pass: Zeroizing<String>,
    error: Option<String>,
}

/// Why opening did not give a node.
enum Failed {
    /// The store has a key and no manifest: back to the enrolment's request.
    Awaiting(Zeroizing<String>),
    Open(OpenError),
    Host(String),
}

enum Phase {
    Enrol(Box<Enrolment>),
    Unlock(UnlockForm),
    Opening(Job<Result<Host<SystemClock>, Failed>>),
    Station(Box<Station<SystemClock>>),
}

/// The window from start to station.
pub struct Start {
    folder: Folder,
    tr: Tr,
    phase: Phase,
    opener: Opener,
    readers: Option<Box<dyn Readers>>,
}

impl Start {
    /// The enrolment screen if `folder` holds no store, else the passphrase screen.
    pub fn new(
        folder: Folder,
        lang: Lang,
        opener: Opener,
        readers: Box<dyn Readers>,
    ) -> Result<Self, String> {
        let phase = if folder.is_enrolled() {
            Phase::Unlock(UnlockForm::default())
        } else {
            Phase::Enrol(Box::new(Enrolment::new(folder.clone())))
        };
        Ok(Start {
            folder,
            tr: Tr::new(lang)?,
            phase,
            opener,
            readers: Some(readers),
        })
    }

    /// The station, once the store is open.
    pub fn station(&mut self) -> Option<&mut Station<SystemClock>> {
        match &mut self.phase {
            Phase::Station(s) => Some(s),
            _ => None,
        }
    }

    /// The enrolment screen, while it shows.
    pub fn enrolment(&self) -> Option<&Enrolment> {
        match &self.phase {
            Phase::Enrol(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the passphrase screen shows.
    pub fn unlocking(&self) -> bool {
        matches!(self.phase, Phase::Unlock(_))
    }

    /// Whether work runs off the window's thread now (a key being made, a store opening).
    pub fn busy(&self) -> bool {
        match &self.phase {
            Phase::Opening(_) => true,
            Phase::Enrol(e) => e.busy(),
            _ => false,
        }
    }

    /// The whole window.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        self.poll();
        if let Phase::Station(s) = &mut self.phase {
            s.show(ui);
            return;
        }
        if self.busy() {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(100));
        }
        egui::Panel::top("start-header").show(ui, |ui| self.header(ui));
        let mut open = None;
        egui::CentralPanel::default().show(ui, |ui| match &mut self.phase {
            Phase::Enrol(e) => {
                if let Outcome::Open {
                    passphrase,
                    roster_passphrase,
                } = e.show(ui, &self.tr)
                {
                    open = Some((passphrase, roster_passphrase));
                }
            }
            Phase::Unlock(form) => {
                if unlock_screen(ui, &self.tr, form) {
                    let pass = std::mem::take(&mut form.pass);
                    let roster = if form.roster_pass.is_empty() {
                        pass.clone()
                    } else {
                        std::mem::take(&mut form.roster_pass)
                    };
                    open = Some((pass, roster));
                }
            }
            Phase::Opening(_) => {
                ui.add_space(24.0);
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(RichText::new(self.tr.t("unlock-opening")).size(20.0));
                });
            }
            Phase::Station(_) => {}
        });
        if let Some((pass, roster)) = open {
            self.open(pass, roster);
        }
    }

    fn header(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.heading(self.tr.t("start-title"));
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui.button(self.tr.t("lang-switch")).clicked() {
                    let next = match self.tr.lang() {
                        Lang::Ja => Lang::En,
                        Lang::En => Lang::Ja,
                    };
                    if let Ok(tr) = Tr::new(next) {
                        self.tr = tr;
                    }
                }
                ui.label(
                    RichText::new(self.folder.dir.display().to_string())
                        .size(13.0)
                        .weak(),
                );
            });
        });
    }

    /// Open the store with these passphrases (the roster store's: the store's when `None`), as
    /// the passphrase screen's button does (the lab's tour drives the window so).
    pub fn unlock_with(&mut self, passphrase: &str, roster_passphrase: Option<&str>) {
        let pass = Zeroizing::new(passphrase.to_owned());
        let roster = Zeroizing::new(roster_passphrase.unwrap_or(passphrase).to_owned());
        self.open(pass, roster);
    }

    /// Open the store off the window's thread.
    fn open(&mut self, pass: Zeroizing<String>, roster: Zeroizing<String>) {
        let (folder, opener) = (self.folder.clone(), self.opener.clone());
        self.phase = Phase::Opening(Job::spawn(move || {
            match enrolled::open(&folder, &pass, &roster, SystemClock) {
                Ok((node, _)) => opener(node).map_err(Failed::Host),
                Err(OpenError::AwaitingManifest(_)) => Err(Failed::Awaiting(pass)),
                Err(e) => Err(Failed::Open(e)),
            }
        }));
    }

    fn poll(&mut self) {
        let Phase::Opening(job) = &self.phase else {
            return;
        };
        let Some(done) = job.poll() else {
            return;
        };
        self.phase = match done {
            Ok(Ok(host)) => {
                let readers = self.readers.take().unwrap_or_else(|| Box::new(NoReaders));
                match Station::new(host, self.tr.lang(), readers) {
                    Ok(s) => Phase::Station(Box::new(s)),
                    Err(e) => self.unlock_error(e),
                }
            }
            Ok(Err(Failed::Awaiting(pass))) => {
                Phase::Enrol(Box::new(Enrolment::resume(self.folder.clone(), pass)))
            }
            Ok(Err(Failed::Open(e))) => {
                let text = open_words(&self.tr, &e);
                self.unlock_error(text)
            }
            Ok(Err(Failed::Host(e))) => {
                let text = self.tr.t_with("start-refused", &[("why", e.into())]);
                self.unlock_error(text)
            }
            Err(()) => self.unlock_error(self.tr.t("work-stopped")),
        };
    }

    fn unlock_error(&self, text: String) -> Phase {
        Phase::Unlock(UnlockForm {
            error: Some(text),
            ..UnlockForm::default()
        })
    }
}

impl eframe::App for Start {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}

/// The passphrase screen; true when the operator asks to open.
fn unlock_screen(ui: &mut egui::Ui, tr: &Tr, form: &mut UnlockForm) -> bool {
    ui.add_space(24.0);
    ui.label(RichText::new(tr.t("unlock-title")).size(30.0).strong());
    ui.label(RichText::new(tr.t("unlock-hint")).size(18.0));
    ui.add_space(12.0);
    let r = labelled(
        ui,
        tr.t("unlock-pass"),
        egui::TextEdit::singleline(&mut *form.pass)
            .password(true)
            .desired_width(360.0),
    );
    let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    labelled(
        ui,
        tr.t("unlock-roster-pass"),
        egui::TextEdit::singleline(&mut *form.roster_pass)
            .password(true)
            .desired_width(360.0),
    );
    ui.add_space(6.0);
    let clicked = big(ui, tr.t("unlock-open")).clicked();
    if let Some(e) = &form.error {
        ui.add_space(6.0);
        ui.label(RichText::new(e.as_str()).size(18.0).color(RED));
    }
    if (clicked || enter) && form.pass.is_empty() {
        form.error = Some(tr.t("unlock-empty"));
        return false;
    }
    clicked || enter
}

/// Why the store did not open, in the window's words.
pub fn open_words(tr: &Tr, e: &OpenError) -> String {
    match e {
        OpenError::Store {
            source: StoreError::WrongPassphrase,
            ..
        } => tr.t("unlock-wrong-passphrase"),
        OpenError::Roster {
            source: RosterDbError::Store(StoreError::WrongPassphrase),
            ..
        } => tr.t("unlock-wrong-roster-passphrase"),
        OpenError::Roster {
            source: RosterDbError::NotPinned { .. },
            ..
        } => tr.t("unlock-roster-not-pinned"),
        OpenError::NoRoster(path) => tr.t_with(
            "unlock-no-roster",
            &[("path", path.display().to_string().into())],
        ),
        other => tr.t_with("start-refused", &[("why", chain(other).into())]),
    }
}
