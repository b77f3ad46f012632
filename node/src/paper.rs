//! Paper fallback (issue 26, requirement 5): A4 PDFs to print when the screens are down or
//! headquarters wants paper — the present list (在所者一覧) per shelter, the shelters' status
//! reports (第1報 / 第n報) in the layout sent to headquarters, and for polling stations the
//! roster extract (名簿抄本) with the already-voted mark and the hourly check-in summary that
//! leaves undone check-ins out. Every page has a header: the title, the site, the time in JST
//! and `n / m 頁`. Persons under the DV block or 支援措置 are never printed; the last page says
//! how many were left out (never who). [`Node::export_paper`] writes an audit record before
//! the bytes are handed back: no record, no file. The 避難者名簿 PDF per shelter is
//! `export::Report::EvacueesPdf`.

use crate::clock::Clock;
use crate::export::{Audience, LeftOut, Rendered, evacuees, jst};
use crate::node::Node;
use crate::print::{self, Page, PrintError};
use kazashi_domain::audit::{AuditAction, ExportKind};
use kazashi_domain::deployment::{Deployment, SiteKind};
use kazashi_domain::event::{BuildingSafety, LifelineStatus, ReportKind, VoteMode};
use kazashi_domain::ids::{OperatorId, PersonRef, SiteId};
use kazashi_domain::roster::Roster;
use kazashi_domain::state::State;
use kazashi_domain::{CivilDate, Millis};
use std::collections::BTreeMap;

/// The paper documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paper {
    /// 在所者一覧: who is in the building now, per shelter.
    PresentList,
    /// 避難者名簿: everyone registered (present, out, supported outside), per shelter.
    EvacueeList,
    /// 避難所状況報告 (第n報), one page per shelter that reported.
    StatusReport,
    /// 名簿抄本: the voters, with 名簿番号 and the already-voted mark.
    RosterExtract,
    /// 時間別受付集計: check-ins per hour per station, undone ones left out.
    HourlySummary,
}

impl Paper {
    pub const ALL: [Paper; 5] = [
        Paper::PresentList,
        Paper::EvacueeList,
        Paper::StatusReport,
        Paper::RosterExtract,
        Paper::HourlySummary,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Paper::PresentList => "present-pdf",
            Paper::EvacueeList => "evacuees-pdf",
            Paper::StatusReport => "status-pdf",
            Paper::RosterExtract => "roster-extract-pdf",
            Paper::HourlySummary => "hourly-summary-pdf",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Paper::PresentList => "在所者一覧",
            Paper::EvacueeList => "避難者名簿",
            Paper::StatusReport => "避難所状況報告",
            Paper::RosterExtract => "選挙人名簿抄本",
            Paper::HourlySummary => "時間別受付者数集計",
        }
    }

    pub fn for_elections(self) -> bool {
        matches!(self, Paper::RosterExtract | Paper::HourlySummary)
    }

    fn audit_kind(self) -> ExportKind {
        match self {
            Paper::PresentList => ExportKind::PresentPdf,
            Paper::EvacueeList => ExportKind::EvacueesPdf,
            Paper::StatusReport => ExportKind::StatusPdf,
            Paper::RosterExtract => ExportKind::RosterExtractPdf,
            Paper::HourlySummary => ExportKind::HourlySummaryPdf,
        }
    }
}

/// What every document is made from.
struct Ctx<'a> {
    font: &'a [u8],
    state: &'a State,
    deployment: &'a Deployment,
    roster: &'a Roster,
    site: Option<SiteId>,
    as_of: Option<Millis>,
    on: CivilDate,
    stamp: String,
}

/// A column: left edge in points, heading, most characters shown.
type Col = (f32, &'static str, usize);

const LEFT: f32 = 36.0;
const RIGHT: f32 = 560.0;

/// The page header every document shares: title, site, time, page.
fn header(
    page: &mut Page<'_, '_>,
    title: &str,
    scope: &str,
    stamp: &str,
    i: usize,
    pages: usize,
) -> Result<(), PrintError> {
    page.text(LEFT, 40.0, 16.0, title)?;
    page.text(
        LEFT,
        60.0,
        9.0,
        &format!(
            "{scope}　作成 {stamp}（日本時間）　{} / {} 頁",
            i + 1,
            pages
        ),
    )
}

/// A table over as many pages as it needs, `footer` under the last row.
fn table_pdf(
    font: &[u8],
    title: &str,
    scope: &str,
    stamp: &str,
    cols: &[Col],
    rows: &[Vec<String>],
    footer: &[String],
) -> Result<Vec<u8>, PrintError> {
    const PER_PAGE: usize = 32;
    let pages = rows.len().div_ceil(PER_PAGE).max(1);
    print::pdf(font, pages, |i, page| {
        header(page, title, scope, stamp, i, pages)?;
        let mut y = 90.0;
        for (x, h, _) in cols {
            page.text(*x, y, 9.0, h)?;
        }
        page.line(LEFT, y + 4.0, RIGHT, y + 4.0, 0.8)?;
        for r in rows.iter().skip(i * PER_PAGE).take(PER_PAGE) {
            y += 21.0;
            for ((x, _, w), c) in cols.iter().zip(r) {
                let c: String = c.chars().take(*w).collect();
                page.text(*x, y, 9.0, &c)?;
            }
            page.line(LEFT, y + 6.0, RIGHT, y + 6.0, 0.3)?;
        }
        if i + 1 == pages {
            y += 30.0;
            for l in footer {
                page.text(LEFT, y, 8.0, l)?;
                y += 14.0;
            }
        }
        Ok(())
    })
}

type Parts<'a> = (
    &'a [u8],
    &'a State,
    &'a Deployment,
    &'a Roster,
    Option<SiteId>,
    Option<Millis>,
    CivilDate,
    &'a str,
);

impl Ctx<'_> {
    fn parts(&self) -> Parts<'_> {
        (
            self.font,
            self.state,
            self.deployment,
            self.roster,
            self.site,
            self.as_of,
            self.on,
            &self.stamp,
        )
    }
}

fn site_name(deployment: &Deployment, site: &SiteId) -> String {
    deployment
        .site(site)
        .map_or_else(|| site.to_string(), |s| s.name.as_str().to_owned())
}

fn scope_name(deployment: &Deployment, site: Option<SiteId>) -> String {
    site.map_or_else(|| "全体".to_owned(), |s| site_name(deployment, &s))
}

/// The present list, or with `all` the 避難者名簿 (everyone registered, with their status).
fn person_list(c: &Ctx<'_>, all: bool) -> Result<(Vec<u8>, usize, LeftOut), String> {
    let (font, state, deployment, roster, site, as_of, on, stamp) = c.parts();
    let list = evacuees(state, deployment, roster, site, as_of, on, Audience::Staff);
    // The label `export` gives `StayStatus::Present`.
    let label = "在所";
    let rows: Vec<Vec<String>> = list
        .rows
        .iter()
        .filter(|r| all || r.status == label)
        .map(|r| {
            vec![
                r.site_name.clone(),
                r.name.clone(),
                r.kana.clone(),
                r.age.map(|a| a.to_string()).unwrap_or_default(),
                r.household.clone(),
                r.status.to_owned(),
                r.care_needs.clone(),
            ]
        })
        .collect();
    let cols: [Col; 7] = [
        (LEFT, "避難所", 10),
        (118.0, "氏名", 11),
        (215.0, "フリガナ", 12),
        (318.0, "年齢", 3),
        (346.0, "世帯", 8),
        (410.0, "状態", 7),
        (475.0, "要配慮", 10),
    ];
    let (paper, total) = if all {
        (Paper::EvacueeList, "計")
    } else {
        (Paper::PresentList, "在所 計")
    };
    let mut footer = vec![format!("{total} {} 人", rows.len())];
    footer.extend(list.left_out.lines());
    let pdf = table_pdf(
        font,
        paper.title(),
        &scope_name(deployment, site),
        stamp,
        &cols,
        &rows,
        &footer,
    )
    .map_err(|e| e.to_string())?;
    Ok((pdf, rows.len(), list.left_out))
}

fn lifeline(s: LifelineStatus) -> &'static str {
    match s {
        LifelineStatus::Available => "可",
        LifelineStatus::Limited => "一部",
        LifelineStatus::Out => "不可",
        LifelineStatus::Unknown => "不明",
    }
}

fn building(b: BuildingSafety) -> &'static str {
    match b {
        BuildingSafety::Safe => "安全",
        BuildingSafety::NeedsInspection => "要点検",
        BuildingSafety::Unsafe => "危険",
        BuildingSafety::Unknown => "不明",
    }
}

/// 第1報 / 第n報 / 最終報.
pub fn report_ordinal(k: ReportKind) -> String {
    match k {
        ReportKind::First => "第1報".to_owned(),
        ReportKind::Periodic(n) => format!("第{n}報"),
        ReportKind::Closing => "最終報".to_owned(),
    }
}

/// One page per shelter with a report: the form shelters send to 災害対策本部 — the report
/// as sent (報, time, persons, households, by sex, age and care needs, building, lifelines,
/// shortages, issues) and the counts on the log beside it. Counts only: no names.
fn status_report(c: &Ctx<'_>) -> Result<(Vec<u8>, usize), String> {
    let (font, state, deployment, roster, site, as_of, on, stamp) = c.parts();
    let ov = kazashi_domain::overview::overview(state, deployment, roster, on, as_of);
    let sites: Vec<_> = ov
        .sites
        .iter()
        .filter(|s| s.report.is_some() && site.is_none_or(|x| x == s.site))
        .collect();
    let pages = sites.len().max(1);
    let pdf = print::pdf(font, pages, |i, page| {
        let Some(s) = sites.get(i) else {
            header(page, "避難所状況報告", "全体", stamp, i, pages)?;
            return page.text(LEFT, 100.0, 12.0, "報告はまだありません。");
        };
        let Some((t, r)) = &s.report else {
            return Ok(());
        };
        let title = format!("避難所状況報告（{}）", report_ordinal(r.kind));
        let name = site_name(deployment, &s.site);
        header(page, &title, &name, stamp, i, pages)?;
        page.text(LEFT, 80.0, 10.0, "報告先：災害対策本部")?;
        let c = s.counts.clone().unwrap_or_default();
        let mut rows: Vec<(String, String)> = vec![
            ("避難所名".into(), name.clone()),
            ("報告日時".into(), jst(t.wall_ms)),
            (
                "開設日時".into(),
                r.opened_at.map(jst).unwrap_or_else(|| "—".into()),
            ),
            (
                "避難者数".into(),
                format!(
                    "{} 人（男 {}・女 {}・その他 {}）",
                    r.counts.persons, r.counts.male, r.counts.female, r.counts.sex_unspecified
                ),
            ),
            ("世帯数".into(), format!("{} 世帯", r.counts.households)),
            (
                "避難所外避難者".into(),
                format!("{} 人", r.counts.supported_outside),
            ),
            (
                "年齢別".into(),
                r.counts
                    .by_age
                    .iter()
                    .map(|(a, n)| format!("{} {n}", a.label_ja()))
                    .collect::<Vec<_>>()
                    .join("・"),
            ),
            (
                "要配慮者".into(),
                r.counts
                    .care_needs
                    .iter()
                    .map(|(k, n)| format!("{} {n}", k.label_ja()))
                    .collect::<Vec<_>>()
                    .join("・"),
            ),
            ("建物".into(), building(r.building).to_owned()),
            (
                "ライフライン".into(),
                format!(
                    "電気 {}・水道 {}・ガス {}・通信 {}・トイレ {}",
                    lifeline(r.lifelines.power),
                    lifeline(r.lifelines.water),
                    lifeline(r.lifelines.gas),
                    lifeline(r.lifelines.comms),
                    lifeline(r.lifelines.toilets)
                ),
            ),
            (
                "不足物資".into(),
                r.shortages
                    .iter()
                    .map(|x| match x.quantity {
                        Some(q) => format!("{}×{q}", x.item.as_str()),
                        None => x.item.as_str().to_owned(),
                    })
                    .collect::<Vec<_>>()
                    .join("・"),
            ),
            (
                "課題・要望".into(),
                r.issues
                    .as_ref()
                    .map(|n| n.as_str().replace('\n', " "))
                    .unwrap_or_default(),
            ),
        ];
        rows.push((
            "記録上の人数".into(),
            format!(
                "在所 {}・外出 {}・世帯 {}・要配慮 {}",
                c.present, c.on_leave, c.households, c.with_care_needs
            ),
        ));
        let top = 100.0;
        let h = 30.0;
        page.rect(LEFT, top, RIGHT - LEFT, h * rows.len() as f32, 0.8)?;
        page.line(
            LEFT + 110.0,
            top,
            LEFT + 110.0,
            top + h * rows.len() as f32,
            0.4,
        )?;
        for (k, (label, value)) in rows.iter().enumerate() {
            let y = top + h * k as f32;
            if k > 0 {
                page.line(LEFT, y, RIGHT, y, 0.4)?;
            }
            page.text(LEFT + 6.0, y + 19.0, 10.0, label)?;
            let v: String = value.chars().take(40).collect();
            page.text(LEFT + 118.0, y + 19.0, 10.0, &v)?;
        }
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok((pdf, sites.len()))
}

fn roster_extract(c: &Ctx<'_>) -> Result<(Vec<u8>, usize, LeftOut), String> {
    let (font, state, deployment, roster, site, as_of, _, stamp) = c.parts();
    let mut left_out = LeftOut::default();
    // A station's extract holds the precincts it serves (an early-voting office: all).
    let precincts = site
        .and_then(|s| deployment.site(&s))
        .map(|s| match &s.kind {
            SiteKind::PollingStation { precincts, .. } => precincts.clone(),
            _ => Vec::new(),
        })
        .unwrap_or_default();
    // Streamed: a roster answered from disk is read once, keeping only these precincts'.
    let mut voters: Vec<(
        kazashi_domain::roster::VoterInfo,
        kazashi_domain::RosterEntry,
    )> = Vec::new();
    let whole = roster.for_each_entry(&mut |e| {
        if let Some(v) = e.voter.as_ref()
            && (precincts.is_empty() || precincts.contains(&v.precinct))
        {
            voters.push((v.clone(), e.clone()));
        }
    });
    if !whole {
        return Err("the roster store could not be read to the end".to_owned());
    }
    voters.sort_by_key(|(v, _)| v.list_number);
    let mut rows = Vec::new();
    for (v, e) in &voters {
        if state.dv_withheld(&PersonRef::Roster(e.person), roster) {
            left_out.dv_block += 1;
            continue;
        }
        let standing = state.standing_votes(&e.person, as_of);
        let mark = if v.flags.absentee_voted {
            "済（不在者）".to_owned()
        } else if v.flags.early_voted {
            "済（期日前・抄本作成前）".to_owned()
        } else if let Some(r) = standing.first() {
            let kind = match r.mode {
                VoteMode::Early(_) => "期日前",
                VoteMode::ElectionDay => "当日",
            };
            format!("済（{kind} {}）", site_name(deployment, &r.site))
        } else {
            String::new()
        };
        rows.push(vec![
            v.list_number.to_string(),
            e.name.to_string(),
            e.kana.to_string(),
            e.address.to_string(),
            mark,
        ]);
    }
    let cols: [Col; 5] = [
        (LEFT, "名簿番号", 8),
        (95.0, "氏名", 10),
        (185.0, "ふりがな", 12),
        (290.0, "住所", 18),
        (455.0, "投票済", 12),
    ];
    let voted = rows
        .iter()
        .filter(|r| r.get(4).is_some_and(|m| !m.is_empty()))
        .count();
    let mut footer = vec![format!("計 {} 人　うち投票済 {} 人", rows.len(), voted)];
    if left_out.dv_block > 0 {
        footer.push(format!(
            "支援措置等により{}人は記載していません（投票管理者に照会）",
            left_out.dv_block
        ));
    }
    let pdf = table_pdf(
        font,
        Paper::RosterExtract.title(),
        &scope_name(deployment, site),
        stamp,
        &cols,
        &rows,
        &footer,
    )
    .map_err(|e| e.to_string())?;
    Ok((pdf, rows.len(), left_out))
}

/// Check-ins per station and hour (JST), from the check-ins that stand: an undone check-in is
/// not counted, and the footer says how many were undone.
fn hourly_summary(c: &Ctx<'_>) -> Result<(Vec<u8>, usize), String> {
    let (font, state, deployment, _, site, as_of, _, stamp) = c.parts();
    // (station, hour start) -> (early, election day)
    let mut per: BTreeMap<(SiteId, Millis), (u32, u32)> = BTreeMap::new();
    let mut undone = 0u32;
    for v in state.voters() {
        for r in state.votes_of(&v, as_of) {
            if site.is_some_and(|s| s != r.site) {
                continue;
            }
            if r.undone_by.is_some() {
                undone += 1;
                continue;
            }
            let hour = r.at.wall_ms - r.at.wall_ms % 3_600_000;
            let e = per.entry((r.site, hour)).or_default();
            match r.mode {
                VoteMode::Early(_) => e.0 += 1,
                VoteMode::ElectionDay => e.1 += 1,
            }
        }
    }
    let mut rows = Vec::new();
    let mut cumulative: BTreeMap<SiteId, u32> = BTreeMap::new();
    for ((s, hour), (early, day)) in &per {
        let c = cumulative.entry(*s).or_default();
        *c += early + day;
        let from = jst(*hour);
        let to = jst(hour + 3_600_000);
        let to = to.rsplit(' ').next().unwrap_or_default().to_owned();
        rows.push(vec![
            site_name(deployment, s),
            format!("{from}〜{to}"),
            early.to_string(),
            day.to_string(),
            (early + day).to_string(),
            c.to_string(),
        ]);
    }
    let total: u32 = cumulative.values().sum();
    let cols: [Col; 6] = [
        (LEFT, "投票所", 12),
        (150.0, "時間帯", 24),
        (320.0, "期日前", 6),
        (375.0, "当日", 6),
        (430.0, "計", 6),
        (485.0, "累計", 8),
    ];
    let footer = vec![
        format!("受付 計 {total} 人"),
        format!("取消された受付 {undone} 件は集計に含めていません"),
    ];
    let pdf = table_pdf(
        font,
        Paper::HourlySummary.title(),
        &scope_name(deployment, site),
        stamp,
        &cols,
        &rows,
        &footer,
    )
    .map_err(|e| e.to_string())?;
    Ok((pdf, rows.len()))
}

/// Make one paper document. Refuses, in words, a site the deployment does not have (or of
/// the wrong kind), an election document for shelters and a shelter document for elections.
pub fn render_paper(
    (state, deployment, roster): (&State, &Deployment, &Roster),
    paper: Paper,
    site: Option<SiteId>,
    as_of: Option<Millis>,
    now: Millis,
    font: &[u8],
) -> Result<Rendered, String> {
    let at = as_of.unwrap_or(now);
    let on = CivilDate::jst_of(at).ok_or("the time is out of range")?;
    if paper.for_elections() != deployment.is_election() {
        return Err(if deployment.is_election() {
            format!(
                "{} is for shelters; this deployment runs an election",
                paper.name()
            )
        } else {
            format!(
                "{} is for elections; this deployment runs shelters",
                paper.name()
            )
        });
    }
    if let Some(s) = site {
        let ok = deployment.site(&s).is_some_and(|x| {
            if paper.for_elections() {
                x.is_polling_station()
            } else {
                x.is_shelter()
            }
        });
        if !ok {
            return Err(format!("{s} is not a site of that kind in this deployment"));
        }
    }
    let stamp = jst(at);
    let file_stamp = stamp.replace(['-', ':'], "").replace(' ', "-");
    let scope = site.map_or_else(|| "全体".to_owned(), |s| s.to_string());
    let c = Ctx {
        font,
        state,
        deployment,
        roster,
        site,
        as_of,
        on,
        stamp,
    };
    let (bytes, rows, left_out) = match paper {
        Paper::PresentList => person_list(&c, false)?,
        Paper::EvacueeList => person_list(&c, true)?,
        Paper::StatusReport => {
            let (b, n) = status_report(&c)?;
            (b, n, LeftOut::default())
        }
        Paper::RosterExtract => roster_extract(&c)?,
        Paper::HourlySummary => {
            let (b, n) = hourly_summary(&c)?;
            (b, n, LeftOut::default())
        }
    };
    Ok(Rendered {
        file_name: format!("{}-{scope}-{file_stamp}.pdf", paper.title()),
        bytes,
        rows,
        left_out,
    })
}

impl<C: Clock> Node<C> {
    /// A paper document ([`render_paper`]), recorded in the audit log (kind, rows, site,
    /// as-of) before it is handed back.
    pub fn export_paper(
        &mut self,
        operator: OperatorId,
        paper: Paper,
        site: Option<SiteId>,
        as_of: Option<Millis>,
        now: Millis,
        font: &[u8],
    ) -> Result<Rendered, String> {
        let st = self.station();
        let r = render_paper(
            (st.state(), st.deployment(), st.roster()),
            paper,
            site,
            as_of,
            now,
            font,
        )?;
        let action = AuditAction::Export {
            kind: paper.audit_kind(),
            rows: u32::try_from(r.rows).unwrap_or(u32::MAX),
            site,
            as_of,
        };
        self.audit(operator, action, Vec::new())
            .map_err(|e| format!("the audit record could not be written: {e}"))?;
        Ok(r)
    }
}
