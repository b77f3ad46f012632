//! The 宣誓書 PDF read back with pdftotext (poppler-utils): the text is real text in the
//! embedded Japanese font, the chosen reason is marked, and the voter's particulars are there.
#![allow(clippy::unwrap_used, clippy::panic)]

use kazashi_domain::CivilDate;
use kazashi_domain::event::EarlyVotingReason;
use kazashi_node::print::{Oath, oath_pdf};

const FONT: &str = "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf";

#[test]
fn the_sworn_statement_prints_what_it_states() {
    let Ok(font) = std::fs::read(FONT) else {
        panic!("{FONT} is missing: apt-get install fonts-ipaexfont-gothic (script/test does)");
    };
    let oath = Oath {
        election: "かざし市長選挙".into(),
        election_day: CivilDate::new(2026, 12, 6).unwrap(),
        today: CivilDate::new(2026, 11, 28).unwrap(),
        station: "かざし市役所 期日前投票所".into(),
        name: "髙橋 﨑子".into(),
        kana: "たかはし さきこ".into(),
        birth_date: CivilDate::new(1980, 2, 29).unwrap(),
        address: "かざし市本町1-2-3".into(),
        precinct: "03".into(),
        list_number: "03-00123".into(),
        reason: EarlyVotingReason::Health,
    };
    let pdf = oath_pdf(&font, &oath).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    assert!(
        pdf.len() < 200_000,
        "the font is not subset: {} bytes",
        pdf.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oath.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout", path.to_str().unwrap(), "-"])
        .output();
    let Ok(out) = out else {
        panic!("pdftotext is missing: apt-get install poppler-utils (script/test does)");
    };
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // Layout turns spacing into spaces of its own: compare without any.
    let bare: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    for want in [
        "宣　誓　書",
        "かざし市長選挙",
        "令和8年12月6日",
        "髙橋 﨑子",
        "昭和55年2月29日",
        "03-00123",
        "■　3号",
        "□　1号",
        "署名（自署）",
        "令和8年11月28日",
    ] {
        let want: String = want.chars().filter(|c| !c.is_whitespace()).collect();
        assert!(bare.contains(&want), "{want} is not in:\n{text}");
    }
}
