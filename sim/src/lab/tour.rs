//! The window's tour: it opens the demo, goes through the key screens the way staff would
//! (through the same calls the buttons make), photographs each one as the window drew it, and
//! closes. The real-window smoke test runs it under Xvfb; `docs/screens/` holds its pictures.

use crate::demo_window::{DemoKind, station};
use eframe::egui::{self, ColorImage};
use kazashi_domain::event::EarlyVotingReason;
use kazashi_domain::ids::OperatorId;
use kazashi_gui::app::reception::Screen;
use kazashi_gui::app::{Station, View};
use kazashi_gui::lang::Lang;
use kazashi_node::SystemClock;
use kazashi_node::staff::Role;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};

/// The screens, in order. Each is photographed after the step of the same index.
pub const SCREENS: [&str; 16] = [
    "01-launcher",
    "02-lock",
    "03-reception",
    "04-pin",
    "05-household",
    "06-present",
    "07-walkin",
    "08-report",
    "09-alerts",
    "10-network",
    "11-voter-early",
    "12-block",
    "13-reconcile",
    "20-resolve",
    "21-unconfirmed",
    "22-token",
];

/// Frames to let a screen settle (layout, fonts) before it is photographed.
const SETTLE_FRAMES: u32 = 6;

pub struct Tour {
    dir: PathBuf,
    lang: Lang,
    step: usize,
    wait: u32,
    pending: Option<Receiver<Arc<ColorImage>>>,
    /// The demo stores' folders.
    keep: Vec<tempfile::TempDir>,
    error: Option<String>,
}

impl Tour {
    pub fn new(dir: PathBuf, lang: Lang) -> Result<Self, String> {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Tour {
            dir,
            lang,
            step: 0,
            wait: SETTLE_FRAMES,
            pending: None,
            keep: Vec::new(),
            error: None,
        })
    }

    /// Called at the start of every frame.
    pub fn frame(&mut self, ctx: &egui::Context, station: &mut Option<Station<SystemClock>>) {
        ctx.request_repaint();
        if let Some(e) = &self.error {
            eprintln!("kazashi-lab demo --tour: {e}");
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        }
        if let Some(rx) = &self.pending {
            let Ok(image) = rx.try_recv() else {
                return;
            };
            self.pending = None;
            let Some(name) = SCREENS.get(self.step) else {
                return;
            };
            if let Err(e) = save_png(&self.dir.join(format!("{name}.png")), &image) {
                self.error = Some(e);
                return;
            }
            self.step += 1;
            if self.step == SCREENS.len() {
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                return;
            }
            if let Err(e) = self.act(station) {
                self.error = Some(format!("step {name}: {e}"));
            }
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

    fn open(&mut self, kind: DemoKind, network: bool) -> Result<Station<SystemClock>, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let s = station(kind, dir.path(), self.lang, network, None)?;
        self.keep.push(dir);
        Ok(s)
    }

    /// What staff do to reach the screen of `self.step`.
    fn act(&mut self, station: &mut Option<Station<SystemClock>>) -> Result<(), String> {
        let name = SCREENS.get(self.step).copied().unwrap_or_default();
        if name == "02-lock" {
            *station = Some(self.open(DemoKind::Shelter, true)?);
            return Ok(());
        }
        if name == "11-voter-early" {
            let mut s = self.open(DemoKind::EarlyVoting, false)?;
            login(&mut s, "uketsuke", Role::Reception)?;
            tap_with_pin(&mut s, 0)?;
            s.with_desk(|_, desk, _| {
                if let Screen::Voter(v) = &mut desk.screen {
                    v.reason = Some(EarlyVotingReason::Duties);
                }
            });
            *station = Some(s);
            return Ok(());
        }
        if name == "22-token" {
            let mut s = self.open(DemoKind::Shelter, false)?;
            login(&mut s, "uketsuke", Role::Reception)?;
            token_tap(&mut s)?;
            *station = Some(s);
            return Ok(());
        }
        if name == "20-resolve" {
            let mut s = self.open(DemoKind::Shelter, false)?;
            login(&mut s, "sekinin", Role::Lead)?;
            s.host().with(crate::tour_scenes::duplicate_pair)?;
            s.show_view(View::Alerts);
            *station = Some(s);
            return Ok(());
        }
        let s = station.as_mut().ok_or("no station open")?;
        match name {
            "03-reception" => login(s, "sekinin", Role::Lead)?,
            "04-pin" => tap(s, 0)?,
            "05-household" => pin(s)?,
            "06-present" => {
                confirm(s);
                // A household checked in at S002 before the demo comes in again here: an alert.
                tap_with_pin(s, 3)?;
                confirm(s);
                s.show_view(View::Present);
            }
            "07-walkin" => s.show_view(View::WalkIn),
            "08-report" => s.show_view(View::Report),
            "09-alerts" => s.show_view(View::Alerts),
            "10-network" => s.show_view(View::Network),
            "12-block" => {
                s.with_desk(|_, desk, _| desk.screen = Screen::Idle);
                tap_with_pin(s, 2)?;
            }
            "21-unconfirmed" => {
                s.host().with(crate::tour_scenes::household_partly_in)?;
                s.show_unconfirmed();
            }
            "13-reconcile" => {
                s.with_desk(|_, desk, _| desk.screen = Screen::Idle);
                s.lock_now();
                login(s, "sekinin", Role::Lead)?;
                s.show_view(View::Reconcile);
            }
            _ => {}
        }
        Ok(())
    }
}

/// A transport IC card (its IDm) registered to roster entry 60 earlier, tapped again: the
/// household found by the card, with the notice that it is not proof of identity.
fn token_tap(s: &mut Station<SystemClock>) -> Result<(), String> {
    const IDM: [u8; 8] = [0x01, 0x2E, 0x4C, 0xD3, 0x5A, 0x19, 0x77, 0x08];
    let err = |e: kazashi_node::token::TokenError| e.to_string();
    s.host().with(|n| {
        let id = kazashi_node::token::TokenId::from_reader(&IDM).map_err(err)?;
        let key = n.token_key(&id).map_err(err)?;
        let who = n.station().roster().entries().get(60).map(|e| e.person);
        let who = who.ok_or("the demo roster is short")?;
        let op = OperatorId::new("uketsuke").map_err(|e| e.to_string())?;
        let person = kazashi_domain::ids::PersonRef::Roster(who);
        n.bind_token(op, key, person).map_err(err).map(|_| ())
    })?;
    let card = kazashi_sim::card::VirtualCard::new(kazashi_sim::card::CardSpec::uid_only(&IDM));
    s.tap(Box::new(card));
    Ok(())
}

fn login(s: &mut Station<SystemClock>, who: &str, role: Role) -> Result<(), String> {
    let op = OperatorId::new(who).map_err(|e| e.to_string())?;
    s.unlock(op, role);
    Ok(())
}

fn tap(s: &mut Station<SystemClock>, card: usize) -> Result<(), String> {
    let c = s.pick_card(card).ok_or("no such demo card")?;
    s.tap(c);
    Ok(())
}

fn pin(s: &mut Station<SystemClock>) -> Result<(), String> {
    s.with_desk(|cx, desk, polling| {
        if let Screen::Pin { typed, .. } = &mut desk.screen {
            *typed = "1234".to_owned().into();
        }
        desk.submit_pin(cx, polling);
    })
    .ok_or_else(|| "locked".to_owned())
}

/// At a polling station a card first proves it holds its key: its JPKI PIN.
fn card_proof(s: &mut Station<SystemClock>) -> Result<(), String> {
    s.with_desk(|cx, desk, polling| {
        if let Screen::Proof { typed, .. } = &mut desk.screen {
            *typed = "1234".to_owned().into();
            desk.submit_proof(cx, polling);
        }
    })
    .ok_or_else(|| "locked".to_owned())
}

fn tap_with_pin(s: &mut Station<SystemClock>, card: usize) -> Result<(), String> {
    tap(s, card)?;
    card_proof(s)?;
    pin(s)
}

fn confirm(s: &mut Station<SystemClock>) {
    s.with_desk(|cx, desk, _| desk.confirm(cx, false));
}

/// Write an RGBA PNG.
pub fn save_png(path: &Path, image: &ColorImage) -> Result<(), String> {
    let [w, h] = image.size;
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut enc = png::Encoder::new(
        std::io::BufWriter::new(file),
        u32::try_from(w).map_err(|e| e.to_string())?,
        u32::try_from(h).map_err(|e| e.to_string())?,
    );
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(|e| e.to_string())?;
    let bytes: Vec<u8> = image
        .pixels
        .iter()
        .flat_map(|p| p.to_srgba_unmultiplied())
        .collect();
    writer.write_image_data(&bytes).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())
}
