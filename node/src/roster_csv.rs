//! Rosters as municipalities export them: CSV from the resident register (住民基本台帳) or the
//! voter list (選挙人名簿), in UTF-8 (with or without BOM) or Shift_JIS/CP932, read into a
//! [`Roster`] after a linter has reported everything wrong with the file.
//!
//! The column mapping is documented in `docs/roster-csv.md`: each field has Japanese and
//! English header names that are recognised as they are, and a mapping file (`field = header`
//! per line) renames any of them. A file with any error is refused whole: nothing of it is
//! used. Findings name lines and person ids, never names or addresses.
//!
//! A column holding the 12-digit individual number (個人番号) is refused by name before any row
//! is read: Kazashi must never receive it.

use crate::roster_db::{FoldedEntry, fold_entries};
use kazashi_domain::ids::{HouseholdId, ListNumber, PersonId, PrecinctId, RosterHash};
use kazashi_domain::roster::{
    CareNeed, RosterEntry, RosterError, RosterKind, Sex, VoterFlags, VoterInfo, hash_entries,
};
use kazashi_domain::search::parse_typed_date;
use kazashi_domain::text::{Address, KanaReading, PersonName};
use kazashi_domain::time::DateError;
use kazashi_domain::{CivilDate, Roster};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::fmt;

/// A field of the roster, and the CSV headers it is found under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    Person,
    Household,
    Name,
    Kana,
    BirthDate,
    Sex,
    Address,
    Precinct,
    ListNumber,
    Eligible,
    EarlyVoted,
    AbsenteeVoted,
    CareNeeds,
    /// 支援措置 (DV, stalking or abuse protection): the resident is never disclosed.
    SupportMeasure,
}

impl Field {
    pub const ALL: [Field; 14] = [
        Field::Person,
        Field::Household,
        Field::Name,
        Field::Kana,
        Field::BirthDate,
        Field::Sex,
        Field::Address,
        Field::Precinct,
        Field::ListNumber,
        Field::Eligible,
        Field::EarlyVoted,
        Field::AbsenteeVoted,
        Field::CareNeeds,
        Field::SupportMeasure,
    ];

    /// The key used in mapping files.
    pub fn key(self) -> &'static str {
        match self {
            Field::Person => "person_id",
            Field::Household => "household_id",
            Field::Name => "name",
            Field::Kana => "kana",
            Field::BirthDate => "birth_date",
            Field::Sex => "sex",
            Field::Address => "address",
            Field::Precinct => "precinct",
            Field::ListNumber => "list_number",
            Field::Eligible => "eligible",
            Field::EarlyVoted => "early_voted",
            Field::AbsenteeVoted => "absentee_voted",
            Field::CareNeeds => "care_needs",
            Field::SupportMeasure => "support_measure",
        }
    }

    /// Headers recognised without a mapping file; the first is the one Kazashi writes.
    pub fn headers(self) -> &'static [&'static str] {
        match self {
            Field::Person => &["宛名番号", "個人コード", "住民コード"],
            Field::Household => &["世帯番号", "世帯コード"],
            Field::Name => &["氏名", "漢字氏名"],
            Field::Kana => &["氏名カナ", "フリガナ", "カナ氏名", "ふりがな"],
            Field::BirthDate => &["生年月日"],
            Field::Sex => &["性別"],
            Field::Address => &["住所"],
            Field::Precinct => &["投票区"],
            Field::ListNumber => &["名簿番号", "選挙人名簿番号"],
            Field::Eligible => &["選挙権"],
            Field::EarlyVoted => &["期日前投票済"],
            Field::AbsenteeVoted => &["不在者投票済"],
            Field::CareNeeds => &["要配慮"],
            Field::SupportMeasure => &["支援措置", "支援措置対象", "DV等支援措置"],
        }
    }

    /// Whether a roster of `kind` must have the column.
    pub fn required(self, kind: RosterKind) -> bool {
        match self {
            Field::Person
            | Field::Household
            | Field::Name
            | Field::Kana
            | Field::BirthDate
            | Field::Sex
            | Field::Address => true,
            // A voter list without the early and absentee flags is how second ballots get
            // issued: the columns must be there, even if every value is 0.
            Field::Precinct | Field::ListNumber | Field::EarlyVoted | Field::AbsenteeVoted => {
                kind == RosterKind::Voters
            }
            Field::Eligible | Field::CareNeeds | Field::SupportMeasure => false,
        }
    }
}

/// Header names that announce the individual number; such a column is refused.
const FORBIDDEN_HEADERS: [&str; 6] = [
    "個人番号",
    "マイナンバー",
    "my_number",
    "mynumber",
    "individual_number",
    "個人番号カード番号",
];

/// Renamed headers, from a mapping file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    names: BTreeMap<Field, String>,
}

impl Mapping {
    /// Parse `field = header` lines (`#` starts a comment). Unknown fields are an error.
    pub fn parse(text: &str) -> Result<Mapping, String> {
        let mut names = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| format!("mapping line {}: expected `field = header`", i + 1))?;
            let (k, v) = (k.trim(), v.trim());
            let field = Field::ALL
                .into_iter()
                .find(|f| f.key() == k)
                .ok_or_else(|| {
                    format!(
                        "mapping line {}: unknown field `{k}` (known: {})",
                        i + 1,
                        Field::ALL.map(Field::key).join(", ")
                    )
                })?;
            if v.is_empty() {
                return Err(format!("mapping line {}: empty header for `{k}`", i + 1));
            }
            names.insert(field, v.to_owned());
        }
        Ok(Mapping { names })
    }

    fn matches(&self, field: Field, header: &str) -> bool {
        match self.names.get(&field) {
            Some(n) => n == header,
            None => field.headers().contains(&header) || field.key() == header,
        }
    }
}

/// The encoding a file was read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceEncoding {
    Utf8,
    Utf8Bom,
    Cp932,
}

impl fmt::Display for SourceEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceEncoding::Utf8 => "UTF-8",
            SourceEncoding::Utf8Bom => "UTF-8 (BOM)",
            SourceEncoding::Cp932 => "Shift_JIS (CP932)",
        })
    }
}

/// What a lint rule checks; its code is stable (tests and the window key on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// Neither UTF-8 nor Shift_JIS/CP932.
    Encoding,
    /// Not readable as CSV (unbalanced quotes, a row of another width).
    Csv,
    /// A required column is absent.
    MissingColumn,
    /// A column is present twice.
    DuplicateColumn,
    /// A column holds the individual number (個人番号).
    IndividualNumber,
    /// A value is not of its field's form (empty, too long, not kana, unknown code).
    BadValue,
    /// A birth date that does not exist or lies in the future.
    ImpossibleDate,
    /// The same 宛名番号 on two rows.
    DuplicatePerson,
    /// The same 名簿番号 on two rows.
    DuplicateListNumber,
    /// Two ids with the same folded name, reading and birth date (異体字 variants, kana/kanji).
    VariantDuplicate,
    /// A household row with no member rows.
    EmptyHousehold,
    /// A voter without a 投票区.
    MissingPrecinct,
    /// A voter without an early-voted or absentee-voted flag value.
    MissingVoteFlag,
    /// No rows at all.
    Empty,
}

impl Rule {
    pub fn code(self) -> &'static str {
        match self {
            Rule::Encoding => "encoding",
            Rule::Csv => "csv",
            Rule::MissingColumn => "missing-column",
            Rule::DuplicateColumn => "duplicate-column",
            Rule::IndividualNumber => "individual-number",
            Rule::BadValue => "bad-value",
            Rule::ImpossibleDate => "impossible-date",
            Rule::DuplicatePerson => "duplicate-person",
            Rule::DuplicateListNumber => "duplicate-list-number",
            Rule::VariantDuplicate => "variant-duplicate",
            Rule::EmptyHousehold => "empty-household",
            Rule::MissingPrecinct => "missing-precinct",
            Rule::MissingVoteFlag => "missing-vote-flag",
            Rule::Empty => "empty",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The file is refused.
    Error,
    /// Reported; the file is still used.
    Warning,
}

/// One finding. `line` is the 1-based line of the file (the header is line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub rule: Rule,
    pub line: Option<u64>,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match self.line {
            Some(l) => write!(f, "{sev} [{}] line {l}: {}", self.rule.code(), self.message),
            None => write!(f, "{sev} [{}]: {}", self.rule.code(), self.message),
        }
    }
}

/// Findings kept in full per rule; beyond this only the count grows.
const KEEP_PER_RULE: usize = 50;

/// The linter's report on one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lint {
    pub encoding: Option<SourceEncoding>,
    /// Data rows read (person rows and household rows).
    pub rows: u64,
    /// Findings, at most [`KEEP_PER_RULE`] per rule, in file order within a rule.
    pub findings: Vec<Finding>,
    /// How many findings each rule made, all of them.
    pub counts: BTreeMap<Rule, u64>,
    /// Whether the voter flags columns were present (elections).
    pub vote_flags_present: bool,
}

impl Lint {
    pub(crate) fn add(
        &mut self,
        severity: Severity,
        rule: Rule,
        line: Option<u64>,
        message: String,
    ) {
        let n = self.counts.entry(rule).or_default();
        *n += 1;
        if *n as usize <= KEEP_PER_RULE {
            self.findings.push(Finding {
                severity,
                rule,
                line,
                message,
            });
        }
    }
    pub(crate) fn error(&mut self, rule: Rule, line: Option<u64>, message: String) {
        self.add(Severity::Error, rule, line, message);
    }
    /// Add the findings of a later part of the file, as if found after these.
    pub(crate) fn absorb(&mut self, later: Lint) {
        self.rows += later.rows;
        let mut kept: BTreeMap<Rule, usize> = BTreeMap::new();
        for f in &self.findings {
            *kept.entry(f.rule).or_default() += 1;
        }
        for f in later.findings {
            let k = kept.entry(f.rule).or_default();
            if *k < KEEP_PER_RULE {
                *k += 1;
                self.findings.push(f);
            }
        }
        for (rule, n) in later.counts {
            *self.counts.entry(rule).or_default() += n;
        }
    }
    /// Whether the file is refused.
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }
    /// All errors found, counting those past the [`KEEP_PER_RULE`] kept (a rule's findings
    /// share one severity).
    pub fn error_count(&self) -> u64 {
        self.counts
            .iter()
            .filter(|(rule, _)| self.errors().any(|f| f.rule == **rule))
            .map(|(_, n)| n)
            .sum()
    }
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
    }
    /// Whether `rule` found anything.
    pub fn found(&self, rule: Rule) -> bool {
        self.counts.get(&rule).is_some_and(|&n| n > 0)
    }
}

/// A file read and linted without errors: the entries a [`Roster`] is made of, checked for
/// everything [`Roster::new`] refuses (the import writes them to a store without building the
/// in-memory roster's maps).
#[derive(Debug, Clone)]
pub struct Imported {
    pub kind: RosterKind,
    /// In person-id order, each id once.
    pub entries: Vec<RosterEntry>,
    pub lint: Lint,
    /// Each entry's folded text, in the same order (for the roster store's index).
    pub folded: Vec<FoldedEntry>,
}

impl Imported {
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// The hash the roster will have (to check against a pinned one before writing).
    pub fn hash(&self) -> RosterHash {
        hash_entries(self.kind, &self.entries)
    }
    /// The in-memory roster with its lookup maps.
    pub fn into_roster(self, today: CivilDate) -> Result<Roster, RosterError> {
        Roster::new(self.kind, self.entries, today)
    }
}

/// Options of one import.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub kind: RosterKind,
    pub mapping: Mapping,
    /// Birth dates after this day are impossible.
    pub today: CivilDate,
    /// Force an encoding instead of detecting it.
    pub encoding: Option<SourceEncoding>,
}

/// Decode the bytes: a UTF-8 BOM, else valid UTF-8, else CP932 without a single bad byte.
fn decode(bytes: &[u8], forced: Option<SourceEncoding>, lint: &mut Lint) -> Option<String> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let as_utf8 = |b: &[u8]| std::str::from_utf8(b).map(str::to_owned);
    let bad_line = |b: &[u8], at: usize| {
        1 + b
            .get(..at)
            .map_or(0, |p| p.iter().filter(|&&c| c == b'\n').count()) as u64
    };
    let cp932 = |b: &[u8]| {
        let (text, had_errors) = encoding_rs::SHIFT_JIS.decode_without_bom_handling(b);
        (!had_errors).then(|| text.into_owned())
    };
    let choice = match forced {
        Some(SourceEncoding::Cp932) => cp932(bytes).map(|t| (t, SourceEncoding::Cp932)),
        Some(_) => {
            let body = bytes.strip_prefix(BOM).unwrap_or(bytes);
            match as_utf8(body) {
                Ok(t) => Some((t, SourceEncoding::Utf8)),
                Err(e) => {
                    lint.error(
                        Rule::Encoding,
                        Some(bad_line(body, e.valid_up_to())),
                        "not valid UTF-8 here (is the file Shift_JIS?)".into(),
                    );
                    return None;
                }
            }
        }
        None => match bytes.strip_prefix(BOM) {
            Some(body) => match as_utf8(body) {
                Ok(t) => Some((t, SourceEncoding::Utf8Bom)),
                Err(e) => {
                    lint.error(
                        Rule::Encoding,
                        Some(bad_line(body, e.valid_up_to())),
                        "the file starts with a UTF-8 BOM but is not valid UTF-8 here".into(),
                    );
                    return None;
                }
            },
            None => match as_utf8(bytes) {
                Ok(t) => Some((t, SourceEncoding::Utf8)),
                Err(e) => cp932(bytes)
                    .map(|t| (t, SourceEncoding::Cp932))
                    .or_else(|| {
                        lint.error(
                            Rule::Encoding,
                            Some(bad_line(bytes, e.valid_up_to())),
                            "neither UTF-8 nor Shift_JIS/CP932 (first bad byte on this line)"
                                .into(),
                        );
                        None
                    }),
            },
        },
    };
    match choice {
        Some((t, enc)) => {
            lint.encoding = Some(enc);
            Some(t)
        }
        None => {
            if !lint.has_errors() {
                lint.error(
                    Rule::Encoding,
                    None,
                    "not valid Shift_JIS/CP932 (is the file UTF-8?)".into(),
                );
            }
            None
        }
    }
}

fn flag(v: &str) -> Option<bool> {
    match v.trim() {
        "1" | "済" | "有" | "あり" | "true" | "TRUE" | "yes" | "Y" | "○" => Some(true),
        "0" | "未" | "無" | "なし" | "false" | "FALSE" | "no" | "N" | "" => Some(false),
        _ => None,
    }
}

fn care_need(word: &str) -> Option<CareNeed> {
    CareNeed::ALL
        .into_iter()
        .find(|c| c.label_ja() == word || c.label_en() == word || format!("{c:?}") == word)
}

fn sex(v: &str) -> Option<Sex> {
    Sex::from_code(v).or(match v.trim() {
        "男" | "男性" | "M" | "m" => Some(Sex::Male),
        "女" | "女性" | "F" | "f" => Some(Sex::Female),
        _ => None,
    })
}

/// Why a birth date was refused.
fn birth_date(v: &str, today: CivilDate) -> Result<CivilDate, String> {
    match CivilDate::parse(v) {
        Ok(d) => d.not_after(today).map_err(|e| e.to_string()),
        Err(DateError::NoSuchDay { year, month, day }) => {
            Err(format!("{year:04}-{month:02}-{day:02} does not exist"))
        }
        Err(_) => match parse_typed_date(v) {
            Some(d) => d.not_after(today).map_err(|e| e.to_string()),
            None => Err(
                "not a date that exists in a known form (1980-02-29, 19800229, S55.2.29, 昭和55年2月29日)"
                    .into(),
            ),
        },
    }
}

/// Read and lint `bytes`. `progress(done, total)` is called now and then with bytes read.
/// Errors refuse the whole file: the report is returned and nothing is built.
pub fn read(
    bytes: &[u8],
    opts: &ReadOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Imported, Lint> {
    // Small files in one part: threads cost more than they save below a few megabytes.
    let parts = if bytes.len() < (4 << 20) {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
    };
    read_in_parts(bytes, opts, progress, parts)
}

/// [`read`] with the rows parsed in (up to) `parts` parts on as many threads: the result is
/// the same for any number of parts (public for that test).
#[doc(hidden)]
pub fn read_in_parts(
    bytes: &[u8],
    opts: &ReadOptions,
    progress: &mut dyn FnMut(u64, u64),
    parts: usize,
) -> Result<Imported, Lint> {
    let mut lint = Lint::default();
    let total = bytes.len() as u64;
    let Some(text) = decode(bytes, opts.encoding, &mut lint) else {
        return Err(lint);
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = match rdr.headers() {
        Ok(h) => h.iter().map(|s| s.trim().to_owned()).collect(),
        Err(e) => {
            lint.error(Rule::Csv, Some(1), format!("header line: {e}"));
            return Err(lint);
        }
    };
    let col = columns(&headers, opts, &mut lint);
    if lint.has_errors() {
        return Err(lint);
    }

    // The rows after the header, cut at record boundaries into one part per core, each parsed
    // on its own thread; the parts' findings are merged in file order.
    let header_end = usize::try_from(rdr.position().byte()).unwrap_or(usize::MAX);
    let cuts = record_cuts(text.as_bytes(), header_end, parts);
    let ctx = RowContext {
        col: &col,
        width: headers.len(),
        opts,
    };
    let done = std::sync::atomic::AtomicU64::new(header_end as u64);
    let outs: Vec<PartOut> = std::thread::scope(|scope| {
        let ctx = &ctx;
        let done = &done;
        // Each part's text and the line breaks before it.
        let mut spans = cuts.windows(2).filter_map(|w| match w {
            [a, b] => Some((text.get(a.at..b.at).unwrap_or(""), a.lines)),
            _ => None,
        });
        let first = spans.next();
        let others: Vec<_> = spans
            .map(|(chunk, base)| {
                scope.spawn(move || parse_part(chunk, base, ctx, done, &mut |_| {}))
            })
            .collect();
        let mut outs = Vec::new();
        if let Some((chunk, base)) = first {
            outs.push(parse_part(chunk, base, ctx, done, &mut |d| {
                progress(d, total)
            }));
        }
        for h in others {
            outs.push(h.join().unwrap_or_else(|_| PartOut::failed()));
        }
        outs
    });
    let mut rows: Vec<(RosterEntry, u64)> =
        Vec::with_capacity(outs.iter().map(|o| o.rows.len()).sum());
    let mut household_rows: Vec<(HouseholdId, u64)> = Vec::new();
    for o in outs {
        rows.extend(o.rows);
        household_rows.extend(o.household_rows);
        lint.absorb(o.lint);
    }
    progress(total, total);
    if lint.rows == 0 {
        lint.error(
            Rule::Empty,
            None,
            "the file has a header but no rows".into(),
        );
    }
    // In person-id order, as the roster keeps them, so the folded text lines up.
    // The sort is stable: a duplicate id keeps its file order.
    rows.sort_by_key(|(e, _)| e.person);
    let (entries, lines): (Vec<RosterEntry>, Vec<u64>) = rows.into_iter().unzip();
    let folded = fold_entries(&entries);
    cross_checks(
        &entries,
        &lines,
        &folded,
        &household_rows,
        opts.kind,
        &mut lint,
    );
    if lint.has_errors() {
        return Err(lint);
    }
    Ok(Imported {
        kind: opts.kind,
        entries,
        lint,
        folded,
    })
}

/// The columns of each field, from the header; refusals (a 個人番号 column, a missing or doubled
/// one) go to `lint`.
pub(crate) fn columns(
    headers: &[String],
    opts: &ReadOptions,
    lint: &mut Lint,
) -> BTreeMap<Field, usize> {
    for h in headers {
        if FORBIDDEN_HEADERS
            .iter()
            .any(|f| h.eq_ignore_ascii_case(f) || h.replace([' ', '　'], "") == *f)
        {
            lint.error(
                Rule::IndividualNumber,
                Some(1),
                format!(
                    "column `{h}` holds the individual number (個人番号): Kazashi must never receive it; remove the column and export again"
                ),
            );
        }
    }
    let mut col: BTreeMap<Field, usize> = BTreeMap::new();
    for field in Field::ALL {
        let found: Vec<usize> = headers
            .iter()
            .enumerate()
            .filter(|(_, h)| opts.mapping.matches(field, h))
            .map(|(i, _)| i)
            .collect();
        match found.as_slice() {
            [] if field.required(opts.kind) => lint.error(
                Rule::MissingColumn,
                Some(1),
                format!(
                    "required column `{}` ({}) is missing",
                    field.headers().first().copied().unwrap_or(""),
                    field.key()
                ),
            ),
            [] => {}
            [i] => {
                col.insert(field, *i);
            }
            [_, ..] => lint.error(
                Rule::DuplicateColumn,
                Some(1),
                format!("column for `{}` appears {} times", field.key(), found.len()),
            ),
        }
    }
    lint.vote_flags_present =
        col.contains_key(&Field::EarlyVoted) && col.contains_key(&Field::AbsenteeVoted);
    col
}

/// What the rows need besides their text.
pub(crate) struct RowContext<'a> {
    pub(crate) col: &'a BTreeMap<Field, usize>,
    /// Fields in the header: every row must have as many.
    pub(crate) width: usize,
    pub(crate) opts: &'a ReadOptions,
}

/// One part's rows: entries and household rows with their lines, and its findings.
struct PartOut {
    rows: Vec<(RosterEntry, u64)>,
    household_rows: Vec<(HouseholdId, u64)>,
    lint: Lint,
}

impl PartOut {
    fn failed() -> PartOut {
        let mut lint = Lint::default();
        lint.error(
            Rule::Csv,
            None,
            "a part of the file could not be read".into(),
        );
        PartOut {
            rows: Vec::new(),
            household_rows: Vec::new(),
            lint,
        }
    }
}

/// Where to cut the rows (from `from` to the end) into `parts` parts of about equal size, each
/// cut just after a line break that ends a record: outside quotes as the CSV reader sees them
/// (a quote opens a quoted cell only at the start of a cell; inside, `""` is a quote and a lone
/// `"` closes it). Returns the bounds, `from` first and the end last, each but the end with
/// the line breaks before it (counted on the way).
fn record_cuts(b: &[u8], from: usize, parts: usize) -> Vec<Cut> {
    let end = b.len();
    let from = from.min(end);
    let mut lines = b
        .get(..from)
        .map_or(0, |h| memchr::memchr_iter(b'\n', h).count() as u64);
    let mut cuts = vec![Cut { at: from, lines }];
    if parts <= 1 || from >= end {
        cuts.push(Cut { at: end, lines });
        return cuts;
    }
    let step = (end - from) / parts;
    let mut next_target = from + step;
    let mut quoted = false;
    let mut i = from;
    while let Some(off) = b
        .get(i..)
        .and_then(|rest| memchr::memchr2(b'"', b'\n', rest))
    {
        let at = i + off;
        i = at + 1;
        match b.get(at) {
            Some(b'"') if quoted => {
                if b.get(at + 1) == Some(&b'"') {
                    i = at + 2;
                } else {
                    quoted = false;
                }
            }
            Some(b'"') => {
                let starts_cell = at == 0 || matches!(b.get(at - 1), Some(b',' | b'\n' | b'\r'));
                quoted = starts_cell;
            }
            Some(b'\n') => {
                lines += 1;
                if quoted || at < next_target {
                    continue;
                }
                if at + 1 < end {
                    cuts.push(Cut { at: at + 1, lines });
                }
                if cuts.len() == parts {
                    break;
                }
                next_target = at + 1 + step;
            }
            _ => {}
        }
    }
    cuts.push(Cut { at: end, lines });
    cuts
}

/// A place the rows are cut, and the line breaks before it.
#[derive(Debug, Clone, Copy)]
struct Cut {
    at: usize,
    lines: u64,
}

/// Parse one part of the rows. `base` is the number of line breaks before the part.
/// `progress` is given the bytes of the file parsed so far, by all parts.
fn parse_part(
    text: &str,
    base: u64,
    ctx: &RowContext<'_>,
    done: &std::sync::atomic::AtomicU64,
    progress: &mut dyn FnMut(u64),
) -> PartOut {
    let mut lint = Lint::default();
    // Each entry with the line it was read from.
    let mut rows: Vec<(RosterEntry, u64)> = Vec::with_capacity(text.len() / 110);
    // Households named on a row of their own (no person id), with the line.
    let mut household_rows: Vec<(HouseholdId, u64)> = Vec::new();
    let (mut next_report, mut reported) = (0u64, 0u64);
    parse_part_rows(text, base, ctx, &mut lint, &mut |row, line, pos, _| {
        if pos >= next_report {
            let step = pos - reported;
            reported = pos;
            let all = done.fetch_add(step, std::sync::atomic::Ordering::Relaxed) + step;
            progress(all);
            next_report = pos + (1 << 22);
        }
        match row {
            Row::Entry(entry) => rows.push((entry, line)),
            Row::Household(h) => household_rows.push((h, line)),
            Row::Bad => {}
        }
    });
    PartOut {
        rows,
        household_rows,
        lint,
    }
}

/// Parse the rows of one part of the file (`base` line breaks before it): each checked by
/// [`parse_row`] and handed to `each` with its line and the byte offset after it in `text`.
pub(crate) fn parse_part_rows(
    text: &str,
    base: u64,
    ctx: &RowContext<'_>,
    lint: &mut Lint,
    each: &mut dyn FnMut(Row, u64, u64, &mut Lint),
) {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut record = csv::StringRecord::new();
    let (mut counted_to, mut newlines) = (0usize, 0u64);
    loop {
        // The line the next record starts on (the header is line 1), counted from the bytes
        // (a quoted cell may hold line breaks).
        // After a CRLF the reader stands between the CR and the LF.
        let mut at = usize::try_from(rdr.position().byte()).unwrap_or(usize::MAX);
        if text.as_bytes().get(at) == Some(&b'\n') {
            at += 1;
        }
        if let Some(between) = text.as_bytes().get(counted_to..at) {
            newlines += between.iter().filter(|&&b| b == b'\n').count() as u64;
            counted_to = at;
        }
        let line = base + newlines + 1;
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                lint.error(Rule::Csv, Some(line), e.to_string());
                break;
            }
        }
        let row = parse_row(&record, line, ctx, lint);
        each(row, line, rdr.position().byte(), lint);
    }
}

/// What one data row is.
pub(crate) enum Row {
    Entry(RosterEntry),
    /// A household named on a row of its own (no person id).
    Household(HouseholdId),
    /// Refused: the findings are in the lint.
    Bad,
}

/// Check one data row read from line `line`, its findings into `lint` (which counts it).
pub(crate) fn parse_row(
    record: &csv::StringRecord,
    line: u64,
    ctx: &RowContext<'_>,
    lint: &mut Lint,
) -> Row {
    let opts = ctx.opts;
    let col = ctx.col;
    lint.rows += 1;
    if record.len() != ctx.width {
        lint.error(
            Rule::Csv,
            Some(line),
            format!(
                "the row has {} fields, the header has {}",
                record.len(),
                ctx.width
            ),
        );
        return Row::Bad;
    }
    let get = |f: Field| {
        col.get(&f)
            .and_then(|&i| record.get(i))
            .map(str::trim)
            .unwrap_or("")
    };
    let bad = |lint: &mut Lint, rule: Rule, msg: String| {
        lint.error(rule, Some(line), msg);
    };
    let household = match HouseholdId::new(get(Field::Household)) {
        Ok(h) => h,
        Err(e) => {
            bad(lint, Rule::BadValue, format!("世帯番号: {e}"));
            return Row::Bad;
        }
    };
    let person_raw = get(Field::Person);
    if person_raw.is_empty() && get(Field::Name).is_empty() {
        return Row::Household(household);
    }
    let person = match PersonId::new(person_raw) {
        Ok(p) => p,
        Err(e) => {
            bad(lint, Rule::BadValue, format!("宛名番号: {e}"));
            return Row::Bad;
        }
    };
    let name = PersonName::new(get(Field::Name))
        .map_err(|e| bad(lint, Rule::BadValue, format!("{person}: 氏名: {e}")));
    let kana = KanaReading::new(get(Field::Kana))
        .map_err(|e| bad(lint, Rule::BadValue, format!("{person}: 氏名カナ: {e}")));
    let birth = birth_date(get(Field::BirthDate), opts.today).map_err(|e| {
        bad(
            lint,
            Rule::ImpossibleDate,
            format!("{person}: 生年月日: {e}"),
        )
    });
    let sex_v = sex(get(Field::Sex)).ok_or_else(|| {
        bad(
            lint,
            Rule::BadValue,
            format!("{person}: 性別: expected 1, 2, 9, 男 or 女"),
        )
    });
    let address = Address::new(get(Field::Address))
        .map_err(|e| bad(lint, Rule::BadValue, format!("{person}: 住所: {e}")));
    let mut care_needs = std::collections::BTreeSet::new();
    for w in get(Field::CareNeeds)
        .split(['・', ';', '、', ',', '|'])
        .map(str::trim)
        .filter(|w| !w.is_empty())
    {
        match care_need(w) {
            Some(c) => {
                care_needs.insert(c);
            }
            None => bad(
                lint,
                Rule::BadValue,
                format!("{person}: 要配慮: unknown category `{w}`"),
            ),
        }
    }
    // A value that is neither yes nor no is an error, not a no: reading 支援措置 wrong
    // would disclose the very people it protects.
    let support_measure = flag(get(Field::SupportMeasure)).ok_or_else(|| {
        bad(
            lint,
            Rule::BadValue,
            format!("{person}: 支援措置: expected 1 or 0 (also 有/無, あり/なし, ○)"),
        )
    });
    let voter = if opts.kind == RosterKind::Voters {
        voter_info(&get, person, line, lint)
    } else {
        Ok(None)
    };
    if let (
        Ok(name),
        Ok(kana),
        Ok(birth_date),
        Ok(sex),
        Ok(address),
        Ok(voter),
        Ok(support_measure),
    ) = (name, kana, birth, sex_v, address, voter, support_measure)
    {
        Row::Entry(RosterEntry {
            person,
            household,
            name,
            kana,
            birth_date,
            sex,
            address,
            voter,
            care_needs,
            support_measure,
        })
    } else {
        Row::Bad
    }
}

fn voter_info<'a>(
    get: &dyn Fn(Field) -> &'a str,
    person: PersonId,
    line: u64,
    lint: &mut Lint,
) -> Result<Option<VoterInfo>, ()> {
    let precinct = match get(Field::Precinct) {
        "" => {
            lint.error(
                Rule::MissingPrecinct,
                Some(line),
                format!("{person}: no 投票区"),
            );
            Err(())
        }
        p => PrecinctId::new(p).map_err(|e| {
            lint.error(Rule::BadValue, Some(line), format!("{person}: 投票区: {e}"));
        }),
    };
    let list_number = ListNumber::new(get(Field::ListNumber)).map_err(|e| {
        lint.error(
            Rule::BadValue,
            Some(line),
            format!("{person}: 名簿番号: {e}"),
        );
    });
    let mut vote_flag = |f: Field, label: &str| match get(f) {
        "" => {
            lint.error(
                Rule::MissingVoteFlag,
                Some(line),
                format!("{person}: {label} is empty: write 0 or 1, never leave it out"),
            );
            Err(())
        }
        v => flag(v).ok_or_else(|| {
            lint.error(
                Rule::BadValue,
                Some(line),
                format!("{person}: {label}: expected 0 or 1"),
            );
        }),
    };
    let early_voted = vote_flag(Field::EarlyVoted, "期日前投票済");
    let absentee_voted = vote_flag(Field::AbsenteeVoted, "不在者投票済");
    let eligible = match get(Field::Eligible) {
        "" => Ok(true),
        v => flag(v).ok_or_else(|| {
            lint.error(
                Rule::BadValue,
                Some(line),
                format!("{person}: 選挙権: expected 0 or 1"),
            );
        }),
    };
    Ok(Some(VoterInfo {
        list_number: list_number?,
        precinct: precinct?,
        flags: VoterFlags {
            eligible: eligible?,
            absentee_voted: absentee_voted?,
            early_voted: early_voted?,
        },
    }))
}

/// Checks across rows: duplicate ids and list numbers, the same person under variant glyphs,
/// households without members.
fn cross_checks(
    entries: &[RosterEntry],
    lines: &[u64],
    folded: &[FoldedEntry],
    household_rows: &[(HouseholdId, u64)],
    kind: RosterKind,
    lint: &mut Lint,
) {
    let line_of = |i: usize| lines.get(i).copied().unwrap_or(0);
    // The entries are sorted by person id, stably: a repeated id follows its first row.
    let mut first = 0usize;
    for (i, pair) in (1..).zip(entries.windows(2)) {
        let [a, b] = pair else { continue };
        if a.person != b.person {
            first = i;
            continue;
        }
        lint.error(
            Rule::DuplicatePerson,
            Some(line_of(i)),
            format!("宛名番号 {} already on line {}", b.person, line_of(first)),
        );
    }
    let mut by_list: FxHashMap<ListNumber, usize> = FxHashMap::default();
    for (i, e) in entries.iter().enumerate() {
        if let Some(v) = &e.voter
            && let Some(first) = by_list.insert(v.list_number, i)
        {
            lint.error(
                Rule::DuplicateListNumber,
                Some(line_of(i)),
                format!(
                    "名簿番号 {} already on line {}",
                    v.list_number,
                    line_of(first)
                ),
            );
        }
    }
    // The same person twice: equal folded name and reading and the same birth date under two
    // ids. For a voter list that is two ballots (an error); for residents, a warning.
    let mut seen: FxHashMap<(&str, &str, CivilDate), usize> =
        FxHashMap::with_capacity_and_hasher(entries.len(), Default::default());
    for (i, (e, FoldedEntry { name, kana, .. })) in entries.iter().zip(folded).enumerate() {
        if let Some(&first) = seen.get(&(name.as_str(), kana.as_str(), e.birth_date)) {
            let other = entries.get(first).map(|o| o.person);
            if other == Some(e.person) {
                continue;
            }
            let msg = format!(
                "宛名番号 {} looks like {} on line {} (same name up to variant glyphs, same reading and birth date)",
                e.person,
                other.map(|p| p.to_string()).unwrap_or_default(),
                line_of(first)
            );
            let sev = match kind {
                RosterKind::Voters => Severity::Error,
                RosterKind::Residents => Severity::Warning,
            };
            lint.add(sev, Rule::VariantDuplicate, Some(line_of(i)), msg);
        } else {
            seen.insert((name.as_str(), kana.as_str(), e.birth_date), i);
        }
    }
    let with_members: rustc_hash::FxHashSet<HouseholdId> =
        entries.iter().map(|e| e.household).collect();
    for (h, line) in household_rows {
        if !with_members.contains(h) {
            lint.error(
                Rule::EmptyHousehold,
                Some(*line),
                format!("世帯番号 {h} has no members"),
            );
        }
    }
}

/// Which encoding to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteEncoding {
    /// UTF-8 with a BOM, which Excel needs to open it right.
    Utf8Bom,
    /// Shift_JIS (CP932), for older Excel and municipal systems.
    Cp932,
}

/// Characters CP932 cannot hold were replaced by 〓 (geta mark) on these many cells.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Encoded {
    pub replaced_cells: u64,
}

/// Encode CSV text for Excel. CP932 has no room for some registered glyphs (𠮷, 﨑 in some
/// systems): such a cell gets 〓 in their place and is counted, so the caller can say so.
pub fn encode(text: &str, enc: WriteEncoding) -> (Vec<u8>, Encoded) {
    match enc {
        WriteEncoding::Utf8Bom => {
            let mut out = Vec::with_capacity(text.len() + 3);
            out.extend_from_slice(b"\xEF\xBB\xBF");
            out.extend_from_slice(text.as_bytes());
            (out, Encoded::default())
        }
        WriteEncoding::Cp932 => {
            let mut out = Vec::with_capacity(text.len());
            let mut report = Encoded::default();
            for line in text.split_inclusive('\n') {
                let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(line);
                if !unmappable {
                    out.extend_from_slice(&bytes);
                    continue;
                }
                // Replace per character so the count is of cells touched, not of characters.
                let mut cell_touched = false;
                for c in line.chars() {
                    if c == ',' {
                        if cell_touched {
                            report.replaced_cells += 1;
                        }
                        cell_touched = false;
                    }
                    let mut buf = [0u8; 4];
                    let s = c.encode_utf8(&mut buf);
                    let (b, _, bad) = encoding_rs::SHIFT_JIS.encode(s);
                    if bad {
                        cell_touched = true;
                        out.extend_from_slice(&encoding_rs::SHIFT_JIS.encode("〓").0);
                    } else {
                        out.extend_from_slice(&b);
                    }
                }
                if cell_touched {
                    report.replaced_cells += 1;
                }
            }
            (out, report)
        }
    }
}

/// The roster as CSV, in the documented columns (round trip: reading it back gives the same
/// roster, hash and all).
pub fn write(roster: &Roster) -> String {
    // Writing into a Vec cannot fail.
    let out = CsvWriter::new(roster.kind(), Vec::with_capacity(roster.len() * 120))
        .and_then(|mut w| {
            for e in roster.entries() {
                w.entry(e)?;
            }
            w.finish()
        })
        .unwrap_or_default();
    String::from_utf8(out).unwrap_or_default()
}

/// [`write`] one entry at a time into any writer (a roster too large to hold: entries given
/// in person-id order, as [`write`] gives them).
pub struct CsvWriter<W: std::io::Write> {
    w: csv::Writer<W>,
    fields: Vec<Field>,
    row: Vec<String>,
}

impl<W: std::io::Write> CsvWriter<W> {
    /// The header line written.
    pub fn new(kind: RosterKind, out: W) -> std::io::Result<Self> {
        let fields: Vec<Field> = Field::ALL
            .into_iter()
            .filter(|f| {
                f.required(kind)
                    || *f == Field::CareNeeds
                    || *f == Field::SupportMeasure
                    || (*f == Field::Eligible && kind == RosterKind::Voters)
            })
            .collect();
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(out);
        let header: Vec<&str> = fields
            .iter()
            .map(|f| f.headers().first().copied().unwrap_or(""))
            .collect();
        w.write_record(&header)?;
        Ok(CsvWriter {
            w,
            row: Vec::with_capacity(fields.len()),
            fields,
        })
    }

    /// One row.
    pub fn entry(&mut self, e: &RosterEntry) -> std::io::Result<()> {
        let row = &mut self.row;
        row.clear();
        for f in &self.fields {
            let b = |x: bool| if x { "1" } else { "0" }.to_owned();
            row.push(match f {
                Field::Person => e.person.to_string(),
                Field::Household => e.household.to_string(),
                Field::Name => e.name.as_str().to_owned(),
                Field::Kana => e.kana.as_str().to_owned(),
                Field::BirthDate => e.birth_date.to_string(),
                Field::Sex => match e.sex {
                    Sex::Male => "1",
                    Sex::Female => "2",
                    Sex::Unspecified => "9",
                }
                .to_owned(),
                Field::Address => e.address.as_str().to_owned(),
                Field::Precinct => e
                    .voter
                    .as_ref()
                    .map(|v| v.precinct.to_string())
                    .unwrap_or_default(),
                Field::ListNumber => e
                    .voter
                    .as_ref()
                    .map(|v| v.list_number.to_string())
                    .unwrap_or_default(),
                Field::Eligible => e
                    .voter
                    .as_ref()
                    .map(|v| b(v.flags.eligible))
                    .unwrap_or_default(),
                Field::EarlyVoted => e
                    .voter
                    .as_ref()
                    .map(|v| b(v.flags.early_voted))
                    .unwrap_or_default(),
                Field::AbsenteeVoted => e
                    .voter
                    .as_ref()
                    .map(|v| b(v.flags.absentee_voted))
                    .unwrap_or_default(),
                Field::CareNeeds => e
                    .care_needs
                    .iter()
                    .map(|c| c.label_ja())
                    .collect::<Vec<_>>()
                    .join("・"),
                Field::SupportMeasure => b(e.support_measure),
            });
        }
        self.w.write_record(&*row)?;
        Ok(())
    }

    /// Flushed; the writer back.
    pub fn finish(self) -> std::io::Result<W> {
        self.w.into_inner().map_err(|e| e.into_error())
    }
}

/// A checked import, as the roster store writes it (entries, and the text folded while reading).
impl<'a> From<&'a Imported> for crate::roster_db::Rows<'a> {
    fn from(i: &'a Imported) -> Self {
        crate::roster_db::Rows {
            kind: i.kind,
            entries: &i.entries,
            folded: Some(&i.folded),
        }
    }
}
