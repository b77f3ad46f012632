//! The window tests' rig: the real station window at 1366×768 under egui_kittest, its first
//! frame installing the fonts, and the query the tests use to read what it says.
#![allow(clippy::unwrap_used)]

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use kazashi_gui::app::Station;
use kazashi_node::{Clock, SystemClock};

/// The window's state under the harness (the station on the system clock unless a test sets
/// the time itself).
pub(crate) struct Screen<C: Clock + Send + 'static = SystemClock> {
    pub(crate) station: Station<C>,
    fonts: bool,
}

pub(crate) type H<C = SystemClock> = Harness<'static, Screen<C>>;

/// The window at 1366×768 around `station` (no frame run yet).
pub(crate) fn harness_of<C: Clock + Send + 'static>(station: Station<C>) -> H<C> {
    Harness::builder()
        .with_size([1366.0, 768.0])
        .build_ui_state(
            |ui, s: &mut Screen<C>| {
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
pub(crate) fn said<C: Clock + Send + 'static>(h: &H<C>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}
