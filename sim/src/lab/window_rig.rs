//! The window tests' rig: the real station window at 1366×768 under egui_kittest, its first
//! frame installing the fonts, and the query the tests use to read what it says.
#![allow(clippy::unwrap_used)]

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use kazashi_gui::app::Station;
use kazashi_node::SystemClock;

pub(crate) struct Screen {
    pub(crate) station: Station<SystemClock>,
    fonts: bool,
}

pub(crate) type H = Harness<'static, Screen>;

/// The window at 1366×768 around `station` (no frame run yet).
pub(crate) fn harness_of(station: Station<SystemClock>) -> H {
    Harness::builder()
        .with_size([1366.0, 768.0])
        .build_ui_state(
            |ui, s: &mut Screen| {
                // The first frame installs the font and draws nothing.
                if !s.fonts {
                    kazashi_gui::app::setup(ui.ctx()).unwrap();
                    s.fonts = true;
                    ui.ctx().request_repaint();
                    return;
                }
                s.station.show(ui);
            },
            Screen {
                station,
                fonts: false,
            },
        )
}

/// Whether some widget's label contains `text`.
pub(crate) fn said(h: &H, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}
