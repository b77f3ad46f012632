//! A Japanese font, loaded deterministically: the first of a fixed list of Debian font files
//! (IPAex Gothic, then Noto Sans CJK). None there is a clear error, never tofu.

use eframe::egui::{self, FontData, FontDefinitions, FontFamily};
use std::sync::Arc;

/// (path, index in a collection).
pub const CANDIDATES: [(&str, u32); 3] = [
    ("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf", 0),
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 0),
    ("/usr/share/fonts/truetype/fonts-japanese-gothic.ttf", 0),
];

/// The font's bytes and index, or what to install.
pub fn find() -> Result<(Vec<u8>, u32, &'static str), String> {
    for (path, index) in CANDIDATES {
        if let Ok(bytes) = std::fs::read(path) {
            return Ok((bytes, index, path));
        }
    }
    Err(format!(
        "no Japanese font found (looked for {}); install one: sudo apt-get install fonts-ipaexfont-gothic",
        CANDIDATES.map(|(p, _)| p).join(", ")
    ))
}

/// Put the Japanese font first in every family.
pub fn install(ctx: &egui::Context) -> Result<&'static str, String> {
    let (bytes, index, path) = find()?;
    let mut fonts = FontDefinitions::default();
    let mut data = FontData::from_owned(bytes);
    data.index = index;
    fonts.font_data.insert("japanese".into(), Arc::new(data));
    for family in [FontFamily::Proportional, FontFamily::Monospace] {
        fonts
            .families
            .entry(family)
            .or_default()
            .insert(0, "japanese".into());
    }
    ctx.set_fonts(fonts);
    Ok(path)
}
