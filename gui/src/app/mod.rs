//! The station window (egui): reception first. Views over `kazashi_node`, nothing else.
//! `kazashi demo` opens it on the embedded synthetic city with simulated cards.

pub mod fonts;
pub mod reception;
pub mod tr;

#[cfg(test)]
mod tests;

use crate::lang::Lang;
use kazashi_domain::ids::{OperatorId, SiteId};
use kazashi_node::store::KdfParams;
use kazashi_node::{Node, SystemClock};
use kazashi_sim::card::{CardSpec, Holder, VirtualCard};
use reception::{DemoCard, Reception, SharedCard};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A reception station of the demo city (the drill city of seed 1, shelter S001), its store in `dir`, with eight
/// simulated cards: six residents (PIN 1234), one whose card has another PIN (so typing 1234
/// is wrong), one whose PIN is locked.
pub fn demo_reception(dir: &Path, lang: Lang) -> Result<Reception<SystemClock>, String> {
    let m = crate::node_cmd::drill_town(1)?;
    let d = kazashi_sim::population::shelter_operation(&m, 5).map_err(|e| e.to_string())?;
    let fleet = kazashi_sim::fleet::fleet(&d, 1)?;
    let site = SiteId::new("S001").map_err(|e| e.to_string())?;
    let key = fleet.key(&site).ok_or("the demo fleet has no S001")?;
    let roster = Arc::new(m.roster);
    let node = Node::create(
        &dir.join("demo.db"),
        "demo",
        KdfParams::FAST_INSECURE,
        kazashi_sync::DeviceKey::from_seed(key.secret_bytes()),
        &fleet.manifest,
        roster.clone(),
        site,
        SystemClock,
    )
    .map_err(|e| e.to_string())?;
    // One resident from each of eight households.
    let mut heads = Vec::new();
    let mut last = None;
    for e in roster.entries() {
        if last != Some(e.household) {
            heads.push(e.clone());
            last = Some(e.household);
        }
        if heads.len() == kazashi_sim::card::FIXTURE_CARDS {
            break;
        }
    }
    let tr = tr::Tr::new(lang)?;
    let demo = heads
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut spec = CardSpec::new(i, Holder::of(e));
            let mut label = e.name.as_str().to_owned();
            if i == 6 {
                spec.text_pin = *b"8642";
                label = format!("{label}（{}）", tr.t("demo-wrong-pin"));
            }
            if i == 7 {
                spec.text_tries = 0;
                label = format!("{label}（{}）", tr.t("demo-locked"));
            }
            DemoCard {
                label,
                card: SharedCard(Arc::new(Mutex::new(VirtualCard::new(spec)))),
            }
        })
        .collect();
    let operator = OperatorId::new("demo-staff").map_err(|e| e.to_string())?;
    Reception::new(node, lang, operator, demo)
}

struct StationApp {
    reception: Reception<SystemClock>,
    // The demo's store lives as long as the window.
    _dir: Option<tempfile::TempDir>,
}

impl eframe::App for StationApp {
    fn ui(&mut self, ui: &mut eframe::egui::Ui, _frame: &mut eframe::Frame) {
        self.reception.show(ui);
    }
}

/// Open the window on the demo city; returns when it is closed.
pub fn run_demo_window(lang: Lang) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot make the demo's store: {e}"))?;
    let reception = demo_reception(dir.path(), lang)?;
    let options = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_inner_size([1366.0, 768.0])
            .with_title("かざし Kazashi"),
        ..Default::default()
    };
    let mut app = Some(StationApp {
        reception,
        _dir: Some(dir),
    });
    eframe::run_native(
        "kazashi",
        options,
        Box::new(move |cc| {
            fonts::install(&cc.egui_ctx)?;
            let app = app.take().ok_or("the window was created twice")?;
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| format!("cannot open the window: {e}"))
}
