//! The 安否未確認 list (issue 26, requirement 3) as a file: household members not seen
//! anywhere while the rest of their household was (`kazashi_domain::unconfirmed`), CSV in
//! UTF-8 with BOM, for the deployment's staff. Households under the DV block or 支援措置 are
//! never named: the file holds no row of theirs, and [`LeftOut::dv_block`] counts their
//! unaccounted members (the window shows the count). [`Node::export_unconfirmed`] writes an
//! audit record before handing the bytes back: no record, no file.

use crate::clock::Clock;
use crate::export::{LeftOut, Rendered, for_excel, jst};
use crate::node::Node;
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

/// The file for `site` (or the whole deployment) as of `as_of` (or `now`).
pub fn render_unconfirmed(
    state: &State,
    deployment: &Deployment,
    roster: &Roster,
    site: Option<SiteId>,
    as_of: Option<Millis>,
    now: Millis,
) -> Rendered {
    let list = unconfirmed(state, roster, as_of, site);
    let mut left_out = LeftOut {
        dv_block: list.withheld_persons,
        ..LeftOut::default()
    };
    let text = unconfirmed_csv(deployment, roster, &list);
    let bytes = for_excel(&text, WriteEncoding::Utf8Bom, &mut left_out);
    let scope = site.map_or_else(|| "全体".to_owned(), |s| s.to_string());
    let stamp = jst(as_of.unwrap_or(now))
        .replace(['-', ':'], "")
        .replace(' ', "-");
    Rendered {
        file_name: format!("安否未確認-{scope}-{stamp}.csv"),
        bytes,
        rows: list.missing_count(),
        left_out,
    }
}

impl<C: Clock> Node<C> {
    /// The 安否未確認 CSV, recorded in the audit log (kind, rows, site, as-of) before it is
    /// handed back.
    pub fn export_unconfirmed(
        &mut self,
        operator: OperatorId,
        site: Option<SiteId>,
        as_of: Option<Millis>,
        now: Millis,
    ) -> Result<Rendered, String> {
        let st = self.station();
        let r = render_unconfirmed(st.state(), st.deployment(), st.roster(), site, as_of, now);
        let action = AuditAction::Export {
            kind: ExportKind::Unconfirmed,
            rows: u32::try_from(r.rows).unwrap_or(u32::MAX),
            site,
            as_of,
        };
        self.audit(operator, action, Vec::new())
            .map_err(|e| format!("the audit record could not be written: {e}"))?;
        Ok(r)
    }
}
