//! The receipt slip (受付票) of a check-in (issue 26, requirement 5), for deployments that
//! hand one out: the site, the time in JST, the receipt number (the event's short id) and who
//! was checked in — a shelter check-in's members, or a voter's 名簿番号 and name. A person
//! under the DV block or 支援措置 is not named on it (the slip says how many were left out).
//! An undone check-in has no slip. Printed at the top of an A4 page with a cut line.
//! [`Node::receipt`] writes an audit record first: no record, no slip.

use crate::clock::Clock;
use crate::export::{LeftOut, Rendered, jst};
use crate::node::Node;
use crate::print::{self, PrintError};
use kazashi_domain::audit::{AuditAction, ExportKind};
use kazashi_domain::event::{Event, EventBody, VoteMode};
use kazashi_domain::ids::{EventId, OperatorId, PersonRef};
use kazashi_domain::state::State;
use kazashi_domain::{Deployment, Roster};

/// What a slip says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slip {
    pub title: &'static str,
    pub site: String,
    pub at: String,
    pub number: String,
    /// One line per person named.
    pub lines: Vec<String>,
    pub withheld: u32,
}

/// The slip of check-in `event`, or why there is none.
pub fn slip(
    state: &State,
    deployment: &Deployment,
    roster: &Roster,
    event: &Event,
) -> Result<Slip, String> {
    if state.undone_by(&event.id(), None).is_some() {
        return Err("this check-in was undone; it has no receipt".to_owned());
    }
    let site = deployment
        .site(&event.site())
        .map_or_else(|| event.site().to_string(), |s| s.name.as_str().to_owned());
    let mut withheld = 0u32;
    let mut name = |p: &PersonRef| -> Option<String> {
        if state.dv_withheld(p, roster) {
            withheld += 1;
            return None;
        }
        state.identity(p, roster, None).map(|i| i.name.into_owned())
    };
    let (title, lines) = match event.body() {
        EventBody::ShelterCheckIn { members, .. } => (
            "避難所受付票",
            members
                .as_slice()
                .iter()
                .filter_map(&mut name)
                .map(|n| format!("{n}　様"))
                .collect(),
        ),
        EventBody::VoterCheckIn { voter, mode, .. } => {
            let number = roster
                .get(voter)
                .and_then(|e| e.voter.as_ref().map(|v| v.list_number.to_string()))
                .unwrap_or_default();
            let kind = match mode {
                VoteMode::Early(_) => "期日前投票",
                VoteMode::ElectionDay => "当日投票",
            };
            let mut lines = vec![format!("{kind}　名簿番号 {number}")];
            lines.extend(name(&PersonRef::Roster(*voter)).map(|n| format!("{n}　様")));
            ("投票受付票", lines)
        }
        _ => return Err("only a check-in has a receipt".to_owned()),
    };
    Ok(Slip {
        title,
        site,
        at: jst(event.at().wall_ms),
        number: event.id().short(),
        lines,
        withheld,
    })
}

/// The slip at the top of an A4 page, a cut line under it.
pub fn slip_pdf(font: &[u8], s: &Slip) -> Result<Vec<u8>, PrintError> {
    print::pdf(font, 1, |_, p| {
        let left = 48.0;
        p.rect(36.0, 36.0, 523.0, 250.0, 0.8)?;
        p.text(left, 72.0, 20.0, s.title)?;
        p.text(left, 100.0, 11.0, &format!("受付場所　{}", s.site))?;
        p.text(
            left,
            118.0,
            11.0,
            &format!("受付日時　{}（日本時間）", s.at),
        )?;
        p.text(left, 136.0, 11.0, &format!("受付番号　{}", s.number))?;
        let mut y = 166.0;
        for l in s.lines.iter().take(8) {
            p.text(left, y, 13.0, l)?;
            y += 18.0;
        }
        if s.withheld > 0 {
            p.text(
                left,
                276.0,
                8.0,
                &format!("ほか{}人（氏名は記載していません）", s.withheld),
            )?;
        }
        p.text(230.0, 306.0, 8.0, "‐‐‐‐ 切り取り線 ‐‐‐‐")?;
        p.line(36.0, 300.0, 559.0, 300.0, 0.3)
    })
}

impl<C: Clock> Node<C> {
    /// The receipt slip of check-in `event` as a PDF, recorded in the audit log (kind, the
    /// persons named, site) before it is handed back.
    pub fn receipt(
        &mut self,
        operator: OperatorId,
        event: &EventId,
        font: &[u8],
    ) -> Result<Rendered, String> {
        let st = self.station();
        let ev = st
            .state()
            .event(event)
            .ok_or("no such check-in in the log")?;
        let s = slip(st.state(), st.deployment(), st.roster(), ev)?;
        let site = ev.site();
        let bytes = slip_pdf(font, &s).map_err(|e| e.to_string())?;
        let names = s.lines.iter().filter(|l| l.ends_with('様')).count();
        let action = AuditAction::Export {
            kind: ExportKind::ReceiptPdf,
            rows: u32::try_from(names).unwrap_or(u32::MAX),
            site: Some(site),
            as_of: None,
        };
        self.audit(operator, action, Vec::new())
            .map_err(|e| format!("the audit record could not be written: {e}"))?;
        Ok(Rendered {
            file_name: format!("受付票-{}-{}.pdf", site, s.number),
            bytes,
            rows: names,
            left_out: LeftOut {
                dv_block: s.withheld,
                ..LeftOut::default()
            },
        })
    }
}
