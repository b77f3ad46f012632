//! `kazashi-lab demo`: the product's station window on the embedded synthetic city, with
//! virtual cards and simulated peer stations; `--scenario` for the window's drill mode,
//! `--tour` for the screenshot tour. With no display, `script/demo` runs the drill instead.

use crate::demo_window::{self, Drill, Launcher};
use crate::tour::Tour;
use eframe::egui;
use kazashi_gui::app::Station;
use kazashi_gui::lang::Lang;

#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Walk the window through its key screens by itself, save a PNG of each into this folder,
    /// and close (the screenshots in docs/screens are made this way, under Xvfb).
    #[arg(long, value_name = "DIR")]
    pub tour: Option<std::path::PathBuf>,
    /// The start screens' tour instead: the enrolment form, the passphrase screen and the
    /// enrolment request with its QR code, as `kazashi` shows them; a PNG of each into this
    /// folder (docs/screens/enrol-*.png, unlock-*.png), then close.
    #[arg(long, value_name = "DIR", conflicts_with = "tour")]
    pub tour_start: Option<std::path::PathBuf>,
    /// Drill mode: the window's shelter drill follows this scenario (its city, shelters and
    /// arrival curve; peer stations write along it).
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<std::path::PathBuf>,
    /// In drill mode, simulated time runs this many times faster than real time.
    #[arg(long, default_value_t = 60.0)]
    pub speed: f64,
}

impl Default for DemoArgs {
    fn default() -> Self {
        Self {
            tour: None,
            tour_start: None,
            scenario: None,
            speed: 60.0,
        }
    }
}

pub fn run(args: &DemoArgs, lang: Lang) -> Result<(), String> {
    if let Some(dir) = &args.tour_start {
        return crate::tour_start::run(dir.clone(), lang);
    }
    let drill = match &args.scenario {
        Some(path) => {
            let sc = kazashi_sim::scenario::Scenario::load(path).map_err(|e| e.to_string())?;
            Some(Drill::new(sc, args.speed)?)
        }
        None => None,
    };
    run_demo_window(lang, args.tour.clone(), drill).map_err(|e| {
        format!(
            "{e}; {}",
            lang.t(
                "画面のない環境では `kazashi-lab drill --scenario scenarios/small-drill.toml` で訓練を実行できます",
                "without a display, run the drill: `kazashi-lab drill --scenario scenarios/small-drill.toml`"
            )
        )
    })
}

/// The eframe app: the demo launcher first, then the station; optionally a scripted tour
/// that photographs every key screen.
struct App {
    station: Option<Station<kazashi_node::SystemClock>>,
    launcher: Launcher,
    tour: Option<Tour>,
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        if let Some(t) = &mut self.tour {
            t.frame(ui.ctx(), &mut self.station);
        }
        match &mut self.station {
            Some(s) => s.show(ui),
            None => self.station = self.launcher.show(ui),
        }
    }
}

/// Open the window on the demo city; returns when it is closed. With `tour`, the window walks
/// through the key screens by itself, saves a PNG of each into that folder, and closes.
pub fn run_demo_window(
    lang: Lang,
    tour: Option<std::path::PathBuf>,
    drill: Option<demo_window::Drill>,
) -> Result<(), String> {
    let launcher = Launcher::new(lang, true)?.with_drill(drill);
    let tour = tour.map(|dir| Tour::new(dir, lang)).transpose()?;
    kazashi_gui::app::run_app(App {
        station: None,
        launcher,
        tour,
    })
}
