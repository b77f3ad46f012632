//! The 安否未確認 list (issue 26, requirement 3) as a file: household members not seen
//! anywhere while the rest of their household was (`kazashi_domain::unconfirmed`), CSV in
//! UTF-8 with BOM or an A4 PDF (`print::pdf`), for the deployment's staff. Households under the DV block or 支援措置 are
//! never named: the file holds no row of theirs, and [`LeftOut::dv_block`] counts their
//! unaccounted members (the window shows the count). [`Node::export_unconfirmed`] writes an
//! audit record before handing the bytes back: no record, no file.

use crate::clock::Clock;
use crate::export::{LeftOut, Rendered, for_excel, jst};
use crate::node::Node;
use crate::print::{self, Page, PrintError};
use crate::roster_csv::WriteEncoding;
use kazashi_domain::Millis;
use kazashi_domain::audit::{AuditAction, ExportKind};
use kazashi_domain::deployment::Deployment;
use kazashi_domain::ids::{OperatorId, SiteId};
use kazashi_domain::roster::Roster;
use kazashi_domain::state::State;
use kazashi_domain::unconfirmed::{UnconfirmedList, unconfirmed};

pub const UNCONFIRMED_HEADER: [&str; 8] = [
    "世帯番号",
    "宛名番号",
    "氏名",
    "フリガナ",
    "生年月日",
    "住所",
    "同世帯の確認済み人数",
    "同世帯の所在",
];

/// The list as CSV text: one row per unaccounted member.
pub fn unconfirmed_csv(deployment: &Deployment, roster: &Roster, list: &UnconfirmedList) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    // Writing into a Vec cannot fail.
    let _ = w.write_record(UNCONFIRMED_HEADER);
    for h in &list.households {
        let sites = h
            .sites
            .iter()
            .map(|s| {
                deployment
                    .site(s)
                    .map_or_else(|| s.to_string(), |x| x.name.to_string())
            })
            .collect::<Vec<_>>()
            .join("・");
        for p in &h.missing {
            let Some(e) = roster.get(p) else { continue };
            let _ = w.write_record([
                h.household.to_string(),
                p.to_string(),
                e.name.to_string(),
                e.kana.to_string(),
                e.birth_date.to_string(),
                e.address.to_string(),
                h.accounted.to_string(),
                sites.clone(),
            ]);
        }
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The list as an A4 PDF: a header per page (title, time, page), 30 rows a page, and on the
/// last page how many were withheld (never who).
pub fn unconfirmed_pdf(
    font: &[u8],
    deployment: &Deployment,
    roster: &Roster,
    list: &UnconfirmedList,
    stamp: &str,
) -> Result<Vec<u8>, PrintError> {
    const PER_PAGE: usize = 30;
    let mut rows: Vec<[String; 5]> = Vec::new();
    for h in &list.households {
        let sites = h
            .sites
            .iter()
            .map(|s| {
                deployment
                    .site(s)
                    .map_or_else(|| s.to_string(), |x| x.name.to_string())
            })
            .collect::<Vec<_>>()
            .join("・");
        for p in &h.missing {
            let Some(e) = roster.get(p) else { continue };
            rows.push([
                h.household.to_string(),
                e.name.to_string(),
                e.kana.to_string(),
                e.address.to_string(),
                sites.clone(),
            ]);
        }
    }
    let pages = rows.len().div_ceil(PER_PAGE).max(1);
    let cols: [(f32, &str, usize); 5] = [
        (36.0, "世帯", 10),
        (100.0, "氏名", 12),
        (200.0, "フリガナ", 14),
        (310.0, "住所", 22),
        (470.0, "同世帯の所在", 10),
    ];
    print::pdf(font, pages, |i, page: &mut Page<'_, '_>| {
        page.text(36.0, 40.0, 16.0, "安否未確認者一覧")?;
        page.text(
            36.0,
            60.0,
            9.0,
            &format!(
                "時点 {stamp}　{} / {} 頁　計 {} 人",
                i + 1,
                pages,
                rows.len()
            ),
        )?;
        let mut y = 90.0;
        for (x, h, _) in cols {
            page.text(x, y, 9.0, h)?;
        }
        page.line(36.0, y + 4.0, 560.0, y + 4.0, 0.8)?;
        for r in rows.iter().skip(i * PER_PAGE).take(PER_PAGE) {
            y += 22.0;
            for ((x, _, w), c) in cols.iter().zip(r) {
                let c: String = c.chars().take(*w).collect();
                page.text(*x, y, 9.0, &c)?;
            }
            page.line(36.0, y + 6.0, 560.0, y + 6.0, 0.3)?;
        }
        if i + 1 == pages && list.withheld_persons > 0 {
            page.text(
                36.0,
                y + 30.0,
                8.0,
                &format!(
                    "DV等支援措置の世帯は氏名を載せていません：{}世帯 {}人",
                    list.withheld_households, list.withheld_persons
                ),
            )?;
        }
        Ok(())
    })
}

/// The file for `site` (or the whole deployment) as of `as_of` (or `now`).
pub fn render_unconfirmed(
    state: &State,
    deployment: &Deployment,
    roster: &Roster,
    site: Option<SiteId>,
    as_of: Option<Millis>,
    now: Millis,
    pdf_font: Option<&[u8]>,
) -> Result<Rendered, String> {
    let list = unconfirmed(state, roster, as_of, site);
    let mut left_out = LeftOut {
        dv_block: list.withheld_persons,
        ..LeftOut::default()
    };
    let scope = site.map_or_else(|| "全体".to_owned(), |s| s.to_string());
    let at = jst(as_of.unwrap_or(now));
    let stamp = at.replace(['-', ':'], "").replace(' ', "-");
    let (file_name, bytes) = match pdf_font {
        Some(font) => (
            format!("安否未確認-{scope}-{stamp}.pdf"),
            unconfirmed_pdf(font, deployment, roster, &list, &at).map_err(|e| e.to_string())?,
        ),
        None => {
            let text = unconfirmed_csv(deployment, roster, &list);
            (
                format!("安否未確認-{scope}-{stamp}.csv"),
                for_excel(&text, WriteEncoding::Utf8Bom, &mut left_out),
            )
        }
    };
    Ok(Rendered {
        file_name,
        bytes,
        rows: list.missing_count(),
        left_out,
    })
}

impl<C: Clock> Node<C> {
    /// The 安否未確認 CSV (or, given a font, the PDF), recorded in the audit log (kind, rows,
    /// site, as-of) before it is handed back.
    pub fn export_unconfirmed(
        &mut self,
        operator: OperatorId,
        site: Option<SiteId>,
        as_of: Option<Millis>,
        now: Millis,
        pdf_font: Option<&[u8]>,
    ) -> Result<Rendered, String> {
        let st = self.station();
        let r = render_unconfirmed(
            st.state(),
            st.deployment(),
            st.roster(),
            site,
            as_of,
            now,
            pdf_font,
        )?;
        let action = AuditAction::Export {
            kind: if pdf_font.is_some() {
                ExportKind::UnconfirmedPdf
            } else {
                ExportKind::Unconfirmed
            },
            rows: u32::try_from(r.rows).unwrap_or(u32::MAX),
            site,
            as_of,
        };
        self.audit(operator, action, Vec::new())
            .map_err(|e| format!("the audit record could not be written: {e}"))?;
        Ok(r)
    }
}
