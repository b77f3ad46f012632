//! Print-ready documents as PDF (A4, Japanese text with the font embedded as a subset): the
//! 宣誓書 of an early vote. The font's bytes are passed in (the caller finds a system font);
//! nothing here reads or writes files.

use kazashi_domain::CivilDate;
use kazashi_domain::event::EarlyVotingReason;
use krilla::Document;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::surface::Surface;
use krilla::text::{Font, TextDirection};

/// A4 in points.
pub const A4: (f32, f32) = (595.28, 841.89);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrintError {
    #[error("the font could not be read")]
    Font,
    #[error("the page could not be laid out: {0}")]
    Layout(&'static str),
    #[error("the PDF could not be written: {0}")]
    Pdf(String),
}

/// One page being drawn. Units are points, origin top-left, `y` the text baseline.
pub struct Page<'a, 'b> {
    surface: Surface<'a>,
    font: &'b Font,
}

impl Page<'_, '_> {
    fn ink(&mut self) {
        self.surface.set_stroke(None);
        self.surface.set_fill(Some(Fill {
            paint: rgb::Color::new(0, 0, 0).into(),
            opacity: NormalizedF32::ONE,
            rule: Default::default(),
        }));
    }

    /// One line of text; control characters become spaces.
    pub fn text(&mut self, x: f32, y: f32, size: f32, t: &str) -> Result<(), PrintError> {
        if !(size.is_finite() && size > 0.0 && x.is_finite() && y.is_finite()) {
            return Err(PrintError::Layout("text outside the page"));
        }
        let clean: String = t
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if !clean.trim().is_empty() {
            self.ink();
            self.surface.draw_text(
                Point::from_xy(x, y),
                self.font.clone(),
                size,
                &clean,
                false,
                TextDirection::Auto,
            );
        }
        Ok(())
    }

    fn stroke(&mut self, width: f32) {
        self.surface.set_fill(None);
        self.surface.set_stroke(Some(Stroke {
            width,
            ..Default::default()
        }));
    }

    pub fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, width: f32) -> Result<(), PrintError> {
        let r = Rect::from_xywh(x, y, w, h).ok_or(PrintError::Layout("bad rectangle"))?;
        let mut pb = PathBuilder::new();
        pb.push_rect(r);
        let path = pb.finish().ok_or(PrintError::Layout("empty rectangle"))?;
        self.stroke(width);
        self.surface.draw_path(&path);
        Ok(())
    }

    /// A filled black rectangle (a QR code's module).
    pub fn fill_rect(&mut self, x: f32, y: f32, w: f32, h: f32) -> Result<(), PrintError> {
        let r = Rect::from_xywh(x, y, w, h).ok_or(PrintError::Layout("bad rectangle"))?;
        let mut pb = PathBuilder::new();
        pb.push_rect(r);
        let path = pb.finish().ok_or(PrintError::Layout("empty rectangle"))?;
        self.ink();
        self.surface.draw_path(&path);
        Ok(())
    }

    pub fn line(
        &mut self,
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
        width: f32,
    ) -> Result<(), PrintError> {
        let mut pb = PathBuilder::new();
        pb.move_to(x1, y1);
        pb.line_to(x2, y2);
        let path = pb.finish().ok_or(PrintError::Layout("empty line"))?;
        self.stroke(width);
        self.surface.draw_path(&path);
        Ok(())
    }
}

/// A document of A4 pages, each drawn by `draw`.
pub fn pdf(
    font: &[u8],
    pages: usize,
    mut draw: impl FnMut(usize, &mut Page<'_, '_>) -> Result<(), PrintError>,
) -> Result<Vec<u8>, PrintError> {
    let font = Font::new(font.to_vec().into(), 0).ok_or(PrintError::Font)?;
    let mut doc = Document::new();
    for i in 0..pages {
        let settings =
            PageSettings::from_wh(A4.0, A4.1).ok_or(PrintError::Layout("bad page size"))?;
        let mut page = doc.start_page_with(settings);
        let r = {
            let mut p = Page {
                surface: page.surface(),
                font: &font,
            };
            let r = draw(i, &mut p);
            p.surface.finish();
            r
        };
        page.finish();
        r?;
    }
    doc.finish().map_err(|e| PrintError::Pdf(format!("{e:?}")))
}

/// A date as the 和暦 the forms use: 令和8年11月21日.
pub fn wareki(d: CivilDate) -> String {
    let ymd = (d.year(), d.month(), d.day());
    let (era, base) = if ymd >= (2019, 5, 1) {
        ("令和", 2018)
    } else if ymd >= (1989, 1, 8) {
        ("平成", 1988)
    } else if ymd >= (1926, 12, 25) {
        ("昭和", 1925)
    } else if ymd >= (1912, 7, 30) {
        ("大正", 1911)
    } else {
        ("明治", 1867)
    };
    let n = d.year() - base;
    let year = if n == 1 {
        "元".to_owned()
    } else {
        n.to_string()
    };
    format!("{era}{year}年{}月{}日", d.month(), d.day())
}

/// What a 宣誓書 (公職選挙法施行令 第49条の8) states.
#[derive(Debug, Clone)]
pub struct Oath {
    pub election: String,
    pub election_day: CivilDate,
    pub today: CivilDate,
    pub station: String,
    pub name: String,
    pub kana: String,
    pub birth_date: CivilDate,
    pub address: String,
    pub precinct: String,
    pub list_number: String,
    pub reason: EarlyVotingReason,
}

/// The 宣誓書 ready to print: the chosen 事由 marked, a box for the voter's own signature.
pub fn oath_pdf(font: &[u8], o: &Oath) -> Result<Vec<u8>, PrintError> {
    pdf(font, 1, |_, p| {
        let (w, _) = A4;
        let left = 64.0;
        let right = w - 64.0;
        p.text(w / 2.0 - 60.0, 90.0, 26.0, "宣　誓　書")?;
        p.text(left, 130.0, 13.0, &o.election)?;
        p.text(
            left,
            150.0,
            12.0,
            &format!("投票日　{}", wareki(o.election_day)),
        )?;
        p.text(
            left,
            185.0,
            12.0,
            "私は、上記選挙の当日、下記の事由に該当すると見込まれます。",
        )?;
        p.text(left, 203.0, 12.0, "上記のとおり真正であることを誓います。")?;
        // The voter's particulars.
        let top = 225.0;
        let rows: [(&str, String); 5] = [
            ("ふりがな", o.kana.clone()),
            ("氏名", o.name.clone()),
            ("生年月日", wareki(o.birth_date)),
            ("住所", o.address.clone()),
            (
                "投票区・名簿番号",
                format!("{}　／　{}", o.precinct, o.list_number),
            ),
        ];
        let h = 34.0;
        p.rect(left, top, right - left, h * rows.len() as f32, 0.8)?;
        for (i, (k, v)) in rows.iter().enumerate() {
            let y = top + h * i as f32;
            if i > 0 {
                p.line(left, y, right, y, 0.4)?;
            }
            p.text(left + 8.0, y + 22.0, 11.0, k)?;
            p.text(left + 130.0, y + 22.0, 12.0, v)?;
        }
        p.line(
            left + 120.0,
            top,
            left + 120.0,
            top + h * rows.len() as f32,
            0.4,
        )?;
        // The reasons, the chosen one marked.
        let mut y = top + h * rows.len() as f32 + 36.0;
        p.text(left, y, 12.0, "事由（該当するもの）")?;
        y += 10.0;
        for r in EarlyVotingReason::ALL {
            y += 24.0;
            let mark = if r == o.reason { "■" } else { "□" };
            p.text(
                left + 8.0,
                y,
                12.0,
                &format!("{mark}　{}号　{}", r.clause(), r.label_ja()),
            )?;
        }
        // Signature.
        y += 44.0;
        p.text(left, y, 12.0, &wareki(o.today))?;
        y += 16.0;
        p.rect(left, y, right - left, 56.0, 0.8)?;
        p.text(left + 8.0, y + 20.0, 11.0, "署名（自署）")?;
        y += 84.0;
        p.text(left, y, 10.0, &format!("{}　選挙管理委員会", o.station))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wareki_dates() {
        let d = |y, m, dd| CivilDate::new(y, m, dd).unwrap_or_else(|_| unreachable!());
        assert_eq!(wareki(d(2026, 11, 21)), "令和8年11月21日");
        assert_eq!(wareki(d(2019, 5, 1)), "令和元年5月1日");
        assert_eq!(wareki(d(2019, 4, 30)), "平成31年4月30日");
        assert_eq!(wareki(d(1980, 2, 29)), "昭和55年2月29日");
        assert_eq!(wareki(d(1989, 1, 8)), "平成元年1月8日");
        assert_eq!(wareki(d(1989, 1, 7)), "昭和64年1月7日");
    }

    #[test]
    fn a_font_that_is_not_a_font_is_an_error() {
        assert_eq!(
            pdf(b"not a font", 1, |_, _| Ok(())).map(|_| ()),
            Err(PrintError::Font)
        );
    }
}
