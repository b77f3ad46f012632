//! The window as `kazashi` starts it: [`Start`] holds the laptop's folder and shows, in one
//! window and without a restart,
//!
//! - the enrolment screen ([`super::enrol`]) when the folder holds no store;
//! - otherwise the store's passphrase (masked; the roster store's too if it differs), checked
//!   off the window's thread ([`enrolled::open`]): a wrong one is said plainly, changes nothing
//!   and may be typed again; a store that asked to be enrolled and holds no manifest yet goes
//!   back to the enrolment screen's request;
//! - a laptop whose folder lacks the pinned roster store (freshly enrolled, or the manifest pins
//!   a newer one) may get it from the deployment's other laptops, typed in by address
//!   ([`super::unlock_roster`]), then opens;
//! - then the station ([`Station`]), whose lock screen is the staff login (staff id and PIN, or
//!   a staff card); locking returns to it, not to the passphrase.
//!
//! No passphrase is read from the environment here: the headless commands may, the window
//! never does.

use super::cards::{NoReaders, Readers};
use super::enrol::{Enrolment, Job, Outcome, chain};
use super::tr::Tr;
use super::unlock_roster::{Fetched, RosterFetch, parse_peers};
use super::{Host, RED, Station, big, labelled};
use crate::lang::Lang;
use eframe::egui::{self, RichText};
use kazashi_node::enrolled::{self, Folder, OpenError};
use kazashi_node::mesh::PeerAddr;
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
    /// The folder lacks the pinned roster: offer to get it from other laptops.
    roster_missing: bool,
    /// The laptops to ask, as typed.
    peers: String,
}

/// What the passphrase screen asks for.
enum Ask {
    Nothing,
    Open,
    FetchRoster,
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
    /// The roster being fetched; then the store opens with these passphrases.
    Fetching {
        fetch: RosterFetch,
        pass: Zeroizing<String>,
        roster: Zeroizing<String>,
    },
    Station(Box<Station<SystemClock>>),
    /// The folder was purged (issue 24): its record of counts, nothing else.
    Purged(Box<super::purged::Shown>),
}

/// The window from start to station.
pub struct Start {
    folder: Folder,
    tr: Tr,
    phase: Phase,
    opener: Opener,
    readers: Option<Box<dyn Readers>>,
    /// The laptops to ask for a missing roster (the window's `--peer`s), as first shown.
    peers: String,
    /// When the station last checked whether the purge is due.
    purge_checked: Option<std::time::Instant>,
}

/// How often the open station checks whether the operation was closed and its retention period
/// has passed (both cheap: the close is indexed in the state).
const PURGE_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

impl Start {
    /// The enrolment screen if `folder` holds no store, else the passphrase screen.
    pub fn new(
        folder: Folder,
        lang: Lang,
        opener: Opener,
        readers: Box<dyn Readers>,
    ) -> Result<Self, String> {
        let phase = if kazashi_node::purge::is_purged(&folder.dir)
            || kazashi_node::purge::unfinished(&folder.dir, &folder.roster_path())
        {
            Phase::Purged(Box::new(super::purged::Shown::open(&folder)))
        } else if folder.is_enrolled() {
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
            peers: String::new(),
            purge_checked: None,
        })
    }

    /// The laptops offered for fetching a missing roster (the station's `--peer`s).
    pub fn with_peers(mut self, peers: &[PeerAddr]) -> Self {
        self.peers = peers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        self
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
            Phase::Opening(_) | Phase::Fetching { .. } => true,
            Phase::Enrol(e) => e.busy(),
            _ => false,
        }
    }

    /// The whole window.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        self.poll();
        if let Phase::Station(s) = &mut self.phase {
            s.show(ui);
            // Once the operation's retention period has passed, the laptop purges itself: the
            // record through the node, then the station (and its store) closed and the rest
            // deleted; the window then shows the record.
            if self
                .purge_checked
                .is_none_or(|t| t.elapsed() >= PURGE_CHECK)
            {
                self.purge_checked = Some(std::time::Instant::now());
                match s.purge_record_if_due(&self.folder.dir) {
                    Ok(true) => {
                        // The station (its mesh, its store) closed before the files go.
                        self.phase = Phase::Unlock(UnlockForm::default());
                        self.phase =
                            Phase::Purged(Box::new(super::purged::Shown::open(&self.folder)));
                    }
                    Ok(false) => {}
                    Err(e) => s.said = Some(super::Said { text: e, ok: false }),
                }
            }
            return;
        }
        if self.busy() {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(100));
        }
        egui::Panel::top("start-header").show(ui, |ui| self.header(ui));
        let mut open = None;
        let mut fetch = None;
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
                let ask = unlock_screen(ui, &self.tr, form);
                // The laptops typed in are checked before the passphrases are taken.
                let peers = match ask {
                    Ask::FetchRoster => match parse_peers(&form.peers) {
                        Ok(p) if !p.is_empty() => Some(p),
                        Ok(_) => {
                            form.error = Some(self.tr.t("unlock-peers-none"));
                            return;
                        }
                        Err(bad) => {
                            form.error =
                                Some(self.tr.t_with("unlock-peers-bad", &[("addr", bad.into())]));
                            return;
                        }
                    },
                    _ => None,
                };
                if !matches!(ask, Ask::Nothing) {
                    let pass = std::mem::take(&mut form.pass);
                    let roster = if form.roster_pass.is_empty() {
                        pass.clone()
                    } else {
                        std::mem::take(&mut form.roster_pass)
                    };
                    match peers {
                        Some(p) => fetch = Some((pass, roster, p, form.peers.clone())),
                        None => open = Some((pass, roster)),
                    }
                }
            }
            Phase::Fetching { fetch, .. } => {
                ui.add_space(24.0);
                ui.horizontal(|ui| {
                    ui.spinner();
                    let text = match &fetch.status {
                        Some(s) if s.chunks_total > 0 => self.tr.t_with(
                            "unlock-roster-fetching",
                            &[
                                ("held", s.chunks_held.into()),
                                ("total", s.chunks_total.into()),
                            ],
                        ),
                        _ => self.tr.t("unlock-roster-waiting"),
                    };
                    ui.label(RichText::new(text).size(20.0));
                });
                if ui.button(self.tr.t("unlock-roster-stop")).clicked() {
                    fetch.stop();
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
            Phase::Purged(shown) => shown.show(ui, &self.tr),
        });
        if let Some((pass, roster)) = open {
            self.open(pass, roster);
        }
        if let Some((pass, roster, peers, typed)) = fetch {
            self.peers = typed;
            self.phase = Phase::Fetching {
                fetch: RosterFetch::start(self.folder.clone(), pass.clone(), roster.clone(), peers),
                pass,
                roster,
            };
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
        if let Phase::Fetching {
            fetch,
            pass,
            roster,
        } = &mut self.phase
        {
            let Some(done) = fetch.poll() else {
                return;
            };
            let (pass, roster) = (pass.clone(), roster.clone());
            match done {
                Ok(Fetched::Done) => self.open(pass, roster),
                Ok(Fetched::Failed(why)) => {
                    let text = self
                        .tr
                        .t_with("unlock-roster-failed", &[("why", why.into())]);
                    self.phase = self.roster_error(text);
                }
                Ok(Fetched::TimedOut) => {
                    self.phase = self.roster_error(self.tr.t("unlock-roster-timeout"));
                }
                Ok(Fetched::Stopped) => {
                    self.phase = self.roster_error(self.tr.t("unlock-roster-stopped"));
                }
                Err(()) => self.phase = self.roster_error(self.tr.t("work-stopped")),
            }
            return;
        }
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
                if lacks_pinned_roster(&e) {
                    self.roster_error(text)
                } else {
                    self.unlock_error(text)
                }
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
            peers: self.peers.clone(),
            ..UnlockForm::default()
        })
    }

    /// The passphrase screen again, offering to fetch the roster.
    fn roster_error(&self, text: String) -> Phase {
        Phase::Unlock(UnlockForm {
            error: Some(text),
            roster_missing: true,
            peers: self.peers.clone(),
            ..UnlockForm::default()
        })
    }
}

impl eframe::App for Start {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}

/// The folder has no roster store, or one its manifest does not pin.
fn lacks_pinned_roster(e: &OpenError) -> bool {
    matches!(
        e,
        OpenError::NoRoster(_)
            | OpenError::Roster {
                source: RosterDbError::NotPinned { .. },
                ..
            }
    )
}

/// The passphrase screen; what the operator asks for.
fn unlock_screen(ui: &mut egui::Ui, tr: &Tr, form: &mut UnlockForm) -> Ask {
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
    let mut fetch = false;
    if form.roster_missing {
        ui.add_space(12.0);
        ui.label(RichText::new(tr.t("unlock-roster-hint")).size(16.0));
        ui.horizontal(|ui| {
            labelled(
                ui,
                tr.t("unlock-roster-peers"),
                egui::TextEdit::singleline(&mut form.peers).desired_width(420.0),
            );
            fetch = ui.button(tr.t("unlock-roster-fetch")).clicked();
        });
    }
    if (clicked || enter || fetch) && form.pass.is_empty() {
        form.error = Some(tr.t("unlock-empty"));
        return Ask::Nothing;
    }
    if fetch {
        Ask::FetchRoster
    } else if clicked || enter {
        Ask::Open
    } else {
        Ask::Nothing
    }
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
