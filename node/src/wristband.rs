//! QR wristbands as a PDF (issue 26, requirement 4): an A4 sheet of strips, each with a new
//! random code ([`crate::token::new_wristband`]) as a QR code and as text, to cut out and put
//! on a wrist (or to stick on a band). A code is nobody's until it is bound at reception: the
//! sheet holds no personal data and needs no audit record; what it prints is random, and the
//! log keeps only its keyed form ([`crate::token`]).
//!
//! Each strip says that the band is not proof of identity.

use crate::print::{self, PrintError};
use crate::token::{self, TokenError};

/// Strips per A4 page.
pub const PER_PAGE: usize = 8;

/// Why a sheet could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SheetError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Print(#[from] PrintError),
    #[error("the code does not fit a QR code")]
    Qr,
}

/// A sheet of wristbands: the codes printed and the PDF.
pub struct Sheet {
    pub codes: Vec<String>,
    pub pdf: Vec<u8>,
    pub file_name: String,
}

/// `count` new wristbands (clamped to 1..=80), with `label` (the site's name) on each strip.
/// `font`: a Japanese font's bytes; `stamp` names the file.
pub fn sheet(font: &[u8], label: &str, count: usize, stamp: &str) -> Result<Sheet, SheetError> {
    let count = count.clamp(1, 10 * PER_PAGE);
    let codes = (0..count)
        .map(|_| token::new_wristband())
        .collect::<Result<Vec<_>, _>>()?;
    let pdf = sheet_of(font, label, &codes)?;
    Ok(Sheet {
        codes,
        pdf,
        file_name: format!("wristbands-{stamp}.pdf"),
    })
}

/// The PDF of the given codes (the tests print known ones).
pub fn sheet_of(font: &[u8], label: &str, codes: &[String]) -> Result<Vec<u8>, SheetError> {
    let qrs = codes
        .iter()
        .map(|c| {
            qrcode::QrCode::with_error_correction_level(c.as_bytes(), qrcode::EcLevel::M)
                .map_err(|_| SheetError::Qr)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let pages = codes.len().div_ceil(PER_PAGE).max(1);
    let (w, h) = print::A4;
    let margin = 36.0;
    let strip = (h - 2.0 * margin) / PER_PAGE as f32;
    let pdf = print::pdf(font, pages, |page, p| {
        for slot in 0..PER_PAGE {
            let i = page * PER_PAGE + slot;
            let (Some(code), Some(qr)) = (codes.get(i), qrs.get(i)) else {
                break;
            };
            let top = margin + slot as f32 * strip;
            // The cut line above each strip.
            p.line(margin, top, w - margin, top, 0.3)?;
            // The QR code, with its quiet zone of four modules.
            let n = qr.width();
            let side = strip - 16.0;
            let module = side / (n + 8) as f32;
            let (qx, qy) = (margin + 8.0 + 4.0 * module, top + 8.0 + 4.0 * module);
            for (k, c) in qr.to_colors().iter().enumerate() {
                if *c == qrcode::Color::Dark {
                    let (x, y) = ((k % n) as f32, (k / n) as f32);
                    p.fill_rect(qx + x * module, qy + y * module, module, module)?;
                }
            }
            let tx = margin + side + 24.0;
            p.text(tx, top + 24.0, 11.0, &format!("{label}　受付リストバンド"))?;
            p.text(tx, top + 50.0, 16.0, code)?;
            p.text(
                tx,
                top + 70.0,
                9.0,
                "本人確認の証明ではありません（顔と名前を確かめます） / Not proof of identity",
            )?;
        }
        let last = margin + PER_PAGE as f32 * strip;
        p.line(margin, last, w - margin, last, 0.3)?;
        Ok(())
    })?;
    Ok(pdf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::TokenId;

    /// The sheet read back with pdftotext: every code is printed as text (a person can type
    /// it when a scanner fails) and parses back, with the notice; A4 pages as many as needed.
    #[test]
    fn a_sheet_prints_each_code_and_the_notice() {
        let font = crate::paper_tests::font();
        let s = sheet(&font, "かざし小学校", 10, "test").unwrap();
        assert_eq!(s.codes.len(), 10);
        let dir = tempfile::tempdir().unwrap();
        let (text, pages) = crate::paper_tests::read_pdf(dir.path(), &s.pdf);
        assert_eq!(pages, 2);
        let bare: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        for c in &s.codes {
            assert!(bare.contains(c.as_str()), "{c} not printed");
            assert!(TokenId::wristband(c).is_ok());
        }
        assert!(bare.contains("本人確認の証明ではありません"));
        assert!(bare.contains("かざし小学校"));
        // Random codes: no two alike.
        let mut sorted = s.codes.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 10);
    }
}
