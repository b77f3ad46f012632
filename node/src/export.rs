//! Files for people outside Kazashi, from the merged log: the evacuee list (避難者名簿) per
//! shelter or overall as CSV (UTF-8 with BOM, or CP932 for older Excel) and as a print-ready
//! PDF; PFIF 1.4 XML for person-finder services; the shelters' status reports; election
//! turnout and reconciliation. The window and `kazashi report` call the same functions.
//!
//! **Consent.** Every export is made for an [`Audience`]. A person under the DV block — at any
//! time up to now, whatever hour the export is for, until a manager lifts it — or under the
//! roster's 支援措置 is left out of every export, for every audience. The evacuee list for municipal staff holds everyone
//! else; anything for the public (PFIF, a public list) holds only people who agreed to be
//! published, and of them only name, reading, sex, age and where they are — no birth date,
//! address or care needs. Each export says what it left out and why ([`LeftOut`]).

use crate::print::{self, Page, PrintError};
use crate::roster_csv::{WriteEncoding, encode};
use kazashi_domain::deployment::Deployment;
use kazashi_domain::event::Disclosure;
use kazashi_domain::ids::{HouseholdRef, PersonRef, SiteId};
use kazashi_domain::overview::{Overview, turnout_series};
use kazashi_domain::roster::{Roster, Sex};
use kazashi_domain::safety::{ConsentClusters, person_consent};
use kazashi_domain::state::{Departure, State, StayStatus};
use kazashi_domain::{CivilDate, Millis};

/// Who the file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Municipal staff (災害対策本部, the shelter's own staff).
    Staff,
    /// Anyone: the press, person-finder services, a list on the shelter's wall.
    Public,
}

/// What an export left out, and why. Counts only: never who.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeftOut {
    /// Persons under the DV block (never exported).
    pub dv_block: u32,
    /// Persons who did not agree to be published (public exports only).
    pub no_consent: u32,
    /// CSV cells where CP932 lacked a glyph and 〓 stands in its place.
    pub cp932_replaced: u64,
    /// Fields left out of every row for this audience.
    pub withheld_fields: Vec<&'static str>,
}

impl LeftOut {
    /// One line per reason, in Japanese and English, for the screen and the CLI.
    pub fn lines(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.dv_block > 0 {
            v.push(format!(
                "DV等支援措置により{}人を除外 / {} left out: DV protection",
                self.dv_block, self.dv_block
            ));
        }
        if self.no_consent > 0 {
            v.push(format!(
                "公開の同意がない{}人を除外 / {} left out: no consent to publish",
                self.no_consent, self.no_consent
            ));
        }
        if self.cp932_replaced > 0 {
            v.push(format!(
                "Shift_JISにない字を〓に置換: {}欄 / {} cells: glyphs CP932 lacks shown as 〓",
                self.cp932_replaced, self.cp932_replaced
            ));
        }
        if !self.withheld_fields.is_empty() {
            v.push(format!(
                "公開用のため次の項目を省略 / withheld for the public: {}",
                self.withheld_fields.join(", ")
            ));
        }
        v
    }
}

/// One line of the evacuee list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvacueeRow {
    pub site: SiteId,
    pub site_name: String,
    pub person: PersonRef,
    pub name: String,
    pub kana: String,
    pub birth_date: Option<CivilDate>,
    pub age: Option<u32>,
    pub sex: Option<Sex>,
    pub address: String,
    /// The household (世帯番号, or the walk-in registration).
    pub household: String,
    pub status: &'static str,
    pub since: Millis,
    pub care_needs: String,
}

/// The evacuee list and what was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvacueeList {
    pub audience: Audience,
    pub as_of: Option<Millis>,
    pub rows: Vec<EvacueeRow>,
    pub left_out: LeftOut,
}

fn status_label(s: &StayStatus) -> &'static str {
    match s {
        StayStatus::Present => "在所",
        StayStatus::OnLeave(_) => "外出・外泊",
        StayStatus::Left(Departure::CheckedOut(_)) => "退所",
        StayStatus::Left(Departure::TransferredTo(_)) => "転出",
        StayStatus::Expected { .. } => "移送中",
        StayStatus::SupportOnly(_) => "避難所外（支援のみ）",
    }
}

/// The evacuee list: everyone registered (present, on leave, supported outside) at `site`
/// (or every shelter), as of `as_of`, sorted by site and reading. Records linked as one person
/// (same-as) make one row per site: the first of them in the state's order.
pub fn evacuees(
    state: &State,
    deployment: &Deployment,
    roster: &Roster,
    site: Option<SiteId>,
    as_of: Option<Millis>,
    on: CivilDate,
    audience: Audience,
) -> EvacueeList {
    let clusters = ConsentClusters::new(state, as_of);
    let links = state.clusters(as_of);
    let mut listed = std::collections::BTreeSet::new();
    let mut left_out = LeftOut::default();
    if audience == Audience::Public {
        left_out.withheld_fields = vec!["生年月日", "住所", "世帯", "要配慮"];
    }
    let mut rows = Vec::new();
    for s in deployment
        .sites()
        .filter(|s| s.is_shelter() && site.is_none_or(|x| x == s.id))
    {
        for (p, stay) in state.stays_at(&s.id, as_of) {
            if !(stay.status.is_registered() || matches!(stay.status, StayStatus::SupportOnly(_))) {
                continue;
            }
            match person_consent(state, roster, &clusters, &p) {
                None => {
                    left_out.dv_block += 1;
                    continue;
                }
                Some(d) if audience == Audience::Public && d < Disclosure::Public => {
                    left_out.no_consent += 1;
                    continue;
                }
                Some(_) => {}
            }
            // Only a person named as of then stands for their linked records: one not named
            // yet (checked in before their registration) must not hide another who is.
            let Some(who) = state.identity(&p, roster, as_of) else {
                continue;
            };
            if !listed.insert((s.id, links.rep(&p))) {
                continue;
            }
            let facts = state.person_facts(&p, roster, as_of);
            let household = match facts.household {
                Some(HouseholdRef::Roster(h)) => h.to_string(),
                Some(HouseholdRef::WalkIn(reg)) => format!("受付{}", reg.short()),
                None => String::new(),
            };
            let public = audience == Audience::Public;
            rows.push(EvacueeRow {
                site: s.id,
                site_name: s.name.as_str().to_owned(),
                person: p,
                name: who.name.to_string(),
                kana: who.kana.clone().unwrap_or_default().into_owned(),
                birth_date: if public { None } else { facts.birth_date },
                age: facts.birth_date.map(|b| b.age_on(on)),
                sex: facts.sex,
                address: match (public, who.address) {
                    (false, Some(a)) => a.to_string(),
                    _ => String::new(),
                },
                household: if public { String::new() } else { household },
                status: status_label(&stay.status),
                since: stay.since.wall_ms,
                care_needs: if public {
                    String::new()
                } else {
                    facts
                        .care_needs
                        .iter()
                        .map(|c| c.label_ja())
                        .collect::<Vec<_>>()
                        .join("・")
                },
            });
        }
    }
    rows.sort_by(|a, b| {
        (a.site, &a.kana, &a.name, a.person).cmp(&(b.site, &b.kana, &b.name, b.person))
    });
    EvacueeList {
        audience,
        as_of,
        rows,
        left_out,
    }
}

/// `YYYY-MM-DD HH:MM` in JST.
pub fn jst(ms: Millis) -> String {
    let jst = ms.saturating_add(9 * 3_600_000);
    let day = CivilDate::from_days_since_epoch((jst / 86_400_000) as i64);
    let min = (jst % 86_400_000) / 60_000;
    match day {
        Some(d) => format!("{d} {:02}:{:02}", min / 60, min % 60),
        None => String::new(),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` in UTC (PFIF's form).
fn utc(ms: Millis) -> String {
    let day = CivilDate::from_days_since_epoch((ms / 86_400_000) as i64);
    let s = (ms % 86_400_000) / 1000;
    match day {
        Some(d) => format!("{d}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60),
        None => "1970-01-01T00:00:00Z".into(),
    }
}

fn sex_ja(s: Option<Sex>) -> &'static str {
    match s {
        Some(Sex::Male) => "男",
        Some(Sex::Female) => "女",
        Some(Sex::Unspecified) => "その他",
        None => "",
    }
}

/// CSV text from a header and rows (quoted where needed, CRLF).
fn csv_text(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    // Writing into a Vec cannot fail.
    let _ = w.write_record(header);
    for r in rows {
        let _ = w.write_record(&r);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// Encode CSV text for Excel, noting the cells CP932 could not hold.
pub fn for_excel(text: &str, enc: WriteEncoding, left_out: &mut LeftOut) -> Vec<u8> {
    let (bytes, rep) = encode(text, enc);
    left_out.cp932_replaced += rep.replaced_cells;
    bytes
}

pub const EVACUEE_HEADER: [&str; 12] = [
    "避難所",
    "氏名",
    "フリガナ",
    "生年月日",
    "年齢",
    "性別",
    "住所",
    "世帯",
    "状態",
    "更新日時",
    "要配慮",
    "記録番号",
];

/// The evacuee list as CSV text.
pub fn evacuees_csv(list: &EvacueeList) -> String {
    csv_text(
        &EVACUEE_HEADER,
        list.rows.iter().map(|r| {
            vec![
                r.site_name.clone(),
                r.name.clone(),
                r.kana.clone(),
                r.birth_date.map(|d| d.to_string()).unwrap_or_default(),
                r.age.map(|a| a.to_string()).unwrap_or_default(),
                sex_ja(r.sex).to_owned(),
                r.address.clone(),
                r.household.clone(),
                r.status.to_owned(),
                jst(r.since),
                r.care_needs.clone(),
                match r.person {
                    PersonRef::Roster(id) => id.to_string(),
                    PersonRef::WalkIn {
                        registration,
                        index,
                    } => {
                        format!("W{}-{index}", registration.short())
                    }
                },
            ]
        }),
    )
}

/// The evacuee list as an A4 PDF: a header per page (title, time, page), 32 rows a page, and
/// what was left out on the last page.
pub fn evacuees_pdf(font: &[u8], title: &str, list: &EvacueeList) -> Result<Vec<u8>, PrintError> {
    const PER_PAGE: usize = 32;
    let pages = list.rows.len().div_ceil(PER_PAGE).max(1);
    let stamp = list
        .as_of
        .map(jst)
        .unwrap_or_else(|| "最新 / latest".to_owned());
    let cols: [(f32, &str); 7] = [
        (36.0, "避難所"),
        (130.0, "氏名"),
        (235.0, "フリガナ"),
        (345.0, "年齢"),
        (375.0, "性別"),
        (405.0, "状態"),
        (480.0, "要配慮"),
    ];
    print::pdf(font, pages, |i, page: &mut Page<'_, '_>| {
        page.text(36.0, 40.0, 16.0, title)?;
        page.text(
            36.0,
            60.0,
            9.0,
            &format!(
                "時点 {stamp}　{} / {} 頁　計 {} 人",
                i + 1,
                pages,
                list.rows.len()
            ),
        )?;
        let mut y = 90.0;
        for (x, h) in cols {
            page.text(x, y, 9.0, h)?;
        }
        page.line(36.0, y + 4.0, 560.0, y + 4.0, 0.8)?;
        for r in list.rows.iter().skip(i * PER_PAGE).take(PER_PAGE) {
            y += 21.0;
            let cells = [
                r.site_name.clone(),
                r.name.clone(),
                r.kana.clone(),
                r.age.map(|a| a.to_string()).unwrap_or_default(),
                sex_ja(r.sex).to_owned(),
                r.status.to_owned(),
                r.care_needs.clone(),
            ];
            for ((x, _), c) in cols.iter().zip(cells) {
                let c: String = c.chars().take(14).collect();
                page.text(*x, y, 9.0, &c)?;
            }
            page.line(36.0, y + 6.0, 560.0, y + 6.0, 0.3)?;
        }
        if i + 1 == pages {
            y += 30.0;
            for l in list.left_out.lines() {
                page.text(36.0, y, 8.0, &l)?;
                y += 14.0;
            }
        }
        Ok(())
    })
}

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// PFIF 1.4 XML of the people who agreed to be published (the public evacuee list): a person
/// record each (name, reading, sex, age) with one note saying where they are. `domain` names
/// this municipality's records (e.g. `kazashi.city.example.lg.jp`); `now` stamps the entries.
pub fn pfif(list: &EvacueeList, domain: &str, source_name: &str, now: Millis) -> String {
    use std::fmt::Write as _;
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<pfif:pfif xmlns:pfif=\"http://zesty.ca/pfif/1.4\">\n",
    );
    let domain = xml_escape(domain);
    for r in list
        .rows
        .iter()
        .filter(|_| list.audience == Audience::Public)
    {
        let id = match r.person {
            PersonRef::Roster(id) => format!("p{id}"),
            PersonRef::WalkIn {
                registration,
                index,
            } => format!("w{}-{index}", registration.to_hex()),
        };
        let (family, given) = match r.name.split_once([' ', '　']) {
            Some((f, g)) => (f.to_owned(), g.trim().to_owned()),
            None => (r.name.clone(), String::new()),
        };
        let sex = match r.sex {
            Some(Sex::Male) => "male",
            Some(Sex::Female) => "female",
            Some(Sex::Unspecified) | None => "other",
        };
        let when = utc(now);
        let _ = write!(
            x,
            "  <pfif:person>\n    <pfif:person_record_id>{domain}/{id}</pfif:person_record_id>\n    <pfif:entry_date>{when}</pfif:entry_date>\n    <pfif:author_name>{src}</pfif:author_name>\n    <pfif:source_name>{src}</pfif:source_name>\n    <pfif:source_date>{when}</pfif:source_date>\n    <pfif:full_name>{full}</pfif:full_name>\n    <pfif:given_name>{given}</pfif:given_name>\n    <pfif:family_name>{family}</pfif:family_name>\n",
            src = xml_escape(source_name),
            full = xml_escape(&r.name),
            given = xml_escape(&given),
            family = xml_escape(&family),
        );
        if !r.kana.is_empty() {
            let _ = writeln!(
                x,
                "    <pfif:alternate_names>{}</pfif:alternate_names>",
                xml_escape(&r.kana)
            );
        }
        let _ = writeln!(x, "    <pfif:sex>{sex}</pfif:sex>");
        if let Some(a) = r.age {
            let _ = writeln!(x, "    <pfif:age>{a}</pfif:age>");
        }
        let _ = write!(
            x,
            "    <pfif:note>\n      <pfif:note_record_id>{domain}/n-{id}-{since}</pfif:note_record_id>\n      <pfif:person_record_id>{domain}/{id}</pfif:person_record_id>\n      <pfif:entry_date>{when}</pfif:entry_date>\n      <pfif:author_name>{src}</pfif:author_name>\n      <pfif:source_date>{sdate}</pfif:source_date>\n      <pfif:author_made_contact>true</pfif:author_made_contact>\n      <pfif:status>believed_alive</pfif:status>\n      <pfif:last_known_location>{site}</pfif:last_known_location>\n      <pfif:text>{site}（{status}）</pfif:text>\n    </pfif:note>\n  </pfif:person>\n",
            since = r.since,
            src = xml_escape(source_name),
            sdate = utc(r.since),
            site = xml_escape(&r.site_name),
            status = r.status,
        );
    }
    x.push_str("</pfif:pfif>\n");
    x
}

fn lifeline(s: kazashi_domain::event::LifelineStatus) -> &'static str {
    use kazashi_domain::event::LifelineStatus as L;
    match s {
        L::Available => "可",
        L::Limited => "一部",
        L::Out => "不可",
        L::Unknown => "不明",
    }
}

/// The latest status report of every shelter, with the counts on the log, as CSV text.
pub fn status_reports_csv(deployment: &Deployment, ov: &Overview) -> String {
    let header = [
        "避難所",
        "報告日時",
        "報",
        "人数（報告）",
        "世帯（報告）",
        "人数（記録）",
        "収容率%",
        "要配慮者（記録）",
        "避難所外支援（記録）",
        "電気",
        "水道",
        "ガス",
        "通信",
        "トイレ",
        "不足物資",
        "最終受信",
    ];
    let rows = ov.sites.iter().filter(|s| s.counts.is_some()).map(|s| {
        let name = deployment
            .site(&s.site)
            .map(|x| x.name.as_str().to_owned())
            .unwrap_or_default();
        let c = s.counts.clone().unwrap_or_default();
        let (when, kind, persons, households, lifelines, shortages) = match &s.report {
            Some((t, r)) => (
                jst(t.wall_ms),
                match r.kind {
                    kazashi_domain::event::ReportKind::First => "第1報".to_owned(),
                    kazashi_domain::event::ReportKind::Periodic(n) => format!("第{n}報"),
                    kazashi_domain::event::ReportKind::Closing => "最終報".to_owned(),
                },
                r.counts.persons.to_string(),
                r.counts.households.to_string(),
                [
                    r.lifelines.power,
                    r.lifelines.water,
                    r.lifelines.gas,
                    r.lifelines.comms,
                    r.lifelines.toilets,
                ]
                .map(|l| lifeline(l).to_owned()),
                r.shortages
                    .iter()
                    .map(|x| match x.quantity {
                        Some(q) => format!("{}×{q}", x.item.as_str()),
                        None => x.item.as_str().to_owned(),
                    })
                    .collect::<Vec<_>>()
                    .join("・"),
            ),
            None => (
                String::new(),
                "未報告".to_owned(),
                String::new(),
                String::new(),
                [(); 5].map(|_| String::new()),
                String::new(),
            ),
        };
        let mut row = vec![
            name,
            when,
            kind,
            persons,
            households,
            c.registered().to_string(),
            s.capacity_use().map(|p| p.to_string()).unwrap_or_default(),
            c.with_care_needs.to_string(),
            c.support_only.values().sum::<u32>().to_string(),
        ];
        row.extend(lifelines);
        row.push(shortages);
        row.push(s.last_heard.map(|t| jst(t.wall_ms)).unwrap_or_default());
        row
    });
    csv_text(&header, rows)
}

/// Turnout per station per hour (cumulative) as CSV text, from `from` to `to`.
pub fn turnout_csv(deployment: &Deployment, state: &State, from: Millis, to: Millis) -> String {
    let series = turnout_series(state, from, to, 3_600_000);
    let header = ["投票所", "時刻", "期日前（累計）", "当日（累計）"];
    let rows = series.iter().flat_map(|(site, points)| {
        let name = deployment
            .site(site)
            .map(|x| x.name.as_str().to_owned())
            .unwrap_or_else(|| site.to_string());
        points
            .iter()
            .map(move |(t, e, d)| vec![name.clone(), jst(*t), e.to_string(), d.to_string()])
    });
    csv_text(&header, rows)
}

/// Each hand count against the log's check-ins, per station, as CSV text.
pub fn reconciliation_csv(deployment: &Deployment, ov: &Overview) -> String {
    let header = [
        "投票所",
        "集計時刻",
        "交付数（手集計）",
        "受付数（記録）",
        "差",
    ];
    let rows = ov.sites.iter().flat_map(|s| {
        let name = deployment
            .site(&s.site)
            .map(|x| x.name.as_str().to_owned())
            .unwrap_or_default();
        s.reconciliation.iter().map(move |r| {
            vec![
                name.clone(),
                jst(r.period_end),
                r.ballots_issued.to_string(),
                r.check_ins.to_string(),
                format!("{:+}", r.gap()),
            ]
        })
    });
    csv_text(&header, rows)
}

/// The domain PFIF record ids are made in (`kazashi.local/<record>`).
pub const PFIF_DOMAIN: &str = "kazashi.local";

/// The files staff can ask for, by the names `kazashi report` takes. The window's buttons and
/// the CLI both go through [`render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// 避難者名簿, CSV in UTF-8 with BOM (Excel opens it as it is).
    Evacuees,
    /// 避難者名簿, CSV in CP932 (Shift_JIS) for older Excel.
    EvacueesSjis,
    /// 避難者名簿, A4 PDF for printing.
    EvacueesPdf,
    /// PFIF 1.4 XML for person-finder services (the public audience: consent only).
    Pfif,
    /// The shelters' status reports and counts, CSV.
    Status,
    /// Elections: turnout per station per hour, CSV.
    Turnout,
    /// Elections: hand counts against the log's check-ins, CSV.
    Reconciliation,
}

impl Report {
    pub const ALL: [Report; 7] = [
        Report::Evacuees,
        Report::EvacueesSjis,
        Report::EvacueesPdf,
        Report::Pfif,
        Report::Status,
        Report::Turnout,
        Report::Reconciliation,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Report::Evacuees => "evacuees",
            Report::EvacueesSjis => "evacuees-sjis",
            Report::EvacueesPdf => "evacuees-pdf",
            Report::Pfif => "pfif",
            Report::Status => "status",
            Report::Turnout => "turnout",
            Report::Reconciliation => "reconciliation",
        }
    }

    pub fn parse(s: &str) -> Option<Report> {
        Report::ALL.into_iter().find(|r| r.name() == s)
    }

    /// Turnout and reconciliation exist only for elections.
    pub fn for_elections(self) -> bool {
        matches!(self, Report::Turnout | Report::Reconciliation)
    }

    /// Whether the report is of evacuees (and so may be cut to one shelter).
    pub fn is_evacuee_list(self) -> bool {
        matches!(
            self,
            Report::Evacuees | Report::EvacueesSjis | Report::EvacueesPdf | Report::Pfif
        )
    }
}

/// What to make.
#[derive(Debug, Clone, Copy)]
pub struct ReportRequest<'a> {
    pub report: Report,
    /// One shelter's evacuees (`None`: every shelter). Evacuee lists only.
    pub site: Option<SiteId>,
    /// The log as it stood at this time (`None`: everything merged so far).
    pub as_of: Option<Millis>,
    /// The time now (file names, ages, PFIF's entry date).
    pub now: Millis,
    /// A font with Japanese glyphs (TrueType/OpenType bytes), for the PDF.
    pub font: Option<&'a [u8]>,
    /// PFIF record ids are `<domain>/<id>`.
    pub pfif_domain: &'a str,
}

/// A file ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// A suggested file name: kind, shelter (id) or 全体, and the JST time, e.g.
    /// `避難者名簿-S001-20261121-1530.csv`.
    pub file_name: String,
    pub bytes: Vec<u8>,
    /// Data rows (evacuees, stations × hours, …).
    pub rows: usize,
    pub left_out: LeftOut,
}

/// `YYYYMMDD-HHMM` in JST, for file names.
fn stamp(ms: Millis) -> String {
    jst(ms).replace(['-', ':'], "").replace(' ', "-")
}

/// Make one report from the merged log. Refuses, in words, a shelter the deployment does not
/// have, an election report for a shelter deployment, and a PDF without a font.
pub fn render(
    state: &State,
    deployment: &Deployment,
    roster: &Roster,
    req: &ReportRequest<'_>,
) -> Result<Rendered, String> {
    let at = req.as_of.unwrap_or(req.now);
    let on = CivilDate::jst_of(at).ok_or("the time is out of range")?;
    let stamp = stamp(at);
    if req.report.for_elections() && !deployment.is_election() {
        return Err(format!(
            "{} is for elections; this deployment runs shelters",
            req.report.name()
        ));
    }
    if let Some(site) = req.site {
        if !req.report.is_evacuee_list() {
            return Err(format!(
                "{} covers every site; leave out --site",
                req.report.name()
            ));
        }
        if !deployment.site(&site).is_some_and(|s| s.is_shelter()) {
            return Err(format!("{site} is not a shelter of this deployment"));
        }
    }
    let scope = req
        .site
        .map_or_else(|| "全体".to_owned(), |s| s.to_string());
    let overview = || kazashi_domain::overview::overview(state, deployment, roster, on, req.as_of);
    let mut left_out = LeftOut::default();
    let (file_name, bytes, rows) = match req.report {
        Report::Status => {
            let ov = overview();
            let text = status_reports_csv(deployment, &ov);
            let rows = ov.sites.iter().filter(|s| s.counts.is_some()).count();
            let bytes = for_excel(&text, WriteEncoding::Utf8Bom, &mut left_out);
            (format!("状況報告-{stamp}.csv"), bytes, rows)
        }
        Report::Reconciliation => {
            let ov = overview();
            let rows = ov.sites.iter().map(|s| s.reconciliation.len()).sum();
            let text = reconciliation_csv(deployment, &ov);
            let bytes = for_excel(&text, WriteEncoding::Utf8Bom, &mut left_out);
            (format!("照合-{stamp}.csv"), bytes, rows)
        }
        Report::Turnout => {
            // From the hour of the first ballot to the time asked for.
            let first = state
                .voters()
                .iter()
                .flat_map(|v| state.votes_of(v, req.as_of))
                .map(|r| r.at.wall_ms)
                .min()
                .unwrap_or(at);
            let from = first - first % 3_600_000;
            let text = turnout_csv(deployment, state, from, at);
            let rows = text.lines().count().saturating_sub(1);
            let bytes = for_excel(&text, WriteEncoding::Utf8Bom, &mut left_out);
            (format!("投票者数推移-{stamp}.csv"), bytes, rows)
        }
        r => {
            let audience = if r == Report::Pfif {
                Audience::Public
            } else {
                Audience::Staff
            };
            let list = evacuees(state, deployment, roster, req.site, req.as_of, on, audience);
            left_out = list.left_out.clone();
            let base = format!("避難者名簿-{scope}-{stamp}");
            let (name, bytes) = match r {
                Report::EvacueesSjis => (
                    format!("{base}-sjis.csv"),
                    for_excel(&evacuees_csv(&list), WriteEncoding::Cp932, &mut left_out),
                ),
                Report::EvacueesPdf => {
                    let font = req
                        .font
                        .ok_or("no font with Japanese glyphs was found for the PDF")?;
                    let pdf = evacuees_pdf(font, "避難者名簿", &list).map_err(|e| e.to_string())?;
                    (format!("{base}.pdf"), pdf)
                }
                Report::Pfif => (
                    format!("pfif-{scope}-{stamp}.xml"),
                    pfif(&list, req.pfif_domain, deployment.name().as_str(), req.now).into_bytes(),
                ),
                _ => (
                    format!("{base}.csv"),
                    for_excel(&evacuees_csv(&list), WriteEncoding::Utf8Bom, &mut left_out),
                ),
            };
            (name, bytes, list.rows.len())
        }
    };
    Ok(Rendered {
        file_name,
        bytes,
        rows,
        left_out,
    })
}
