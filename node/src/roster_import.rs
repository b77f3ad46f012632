//! `kazashi roster import`, streamed: a roster file of any size read, checked and written to
//! the roster store ([`crate::roster_db`]) without ever holding its rows in memory.
//!
//! **Passes.**
//! 1. *Sniff*: the file read once for its SHA-256 and its encoding (the rules of
//!    `docs/roster-csv.md`: a BOM means UTF-8, valid UTF-8 is UTF-8, else CP932 to the last
//!    byte).
//! 2. *Rows*: the text decoded as it is read, cut into chunks of about 4 MiB at record ends
//!    (quotes respected), each chunk parsed and checked by the linter's own row rules on a
//!    worker thread (`roster_csv::parse_row`, through the same code as [`crate::roster_csv::read`]),
//!    folded and encoded, and appended in file order to a *stage* table in a third file
//!    keyed like the store, `<file>.part.stage`. Only each row's 宛名番号 and stage position
//!    stay in memory (28 bytes a row).
//!    **A file in 宛名番号 order** (as municipal exports are) skips the stage: its rows go
//!    straight to pass 3's writers as they come, each written once (rid = position; the lines
//!    kept for the findings, 8 bytes a row). At the first row whose 宛名番号 is not greater
//!    than the one before (out of order, or a duplicate), that attempt is dropped — its part
//!    files removed — and the file is read again through the stage as below: the findings,
//!    store and hash are the same either way.
//! 3. *Store*: the ids sorted; duplicate ids reported; the stage read in person-id order (a
//!    sequential read when the file was already in that order, as municipal exports are),
//!    hashed as the roster hash prescribes (the same bytes as [`RosterDb::create`]: the pinned
//!    hash of a file is the same whichever way it was imported), and written to the new store's
//!    `person` table and FTS index on two threads, while the keys of the lookup tables (birth
//!    date, household, 名簿番号, name prefixes, whole folded names: a few bytes each) are
//!    collected, sorted and appended as postings once every row is in, while the text file's
//!    writer ends its own index on its thread. The cross-row checks run on the same sorted
//!    keys: 名簿番号 and variant duplicates on a thread of their own beside the lookup tables'
//!    writes, then empty households; a row's variant key is a keyed 128-bit hash of its exact
//!    key, taken as it is written (see [`variant_key`]), so no row is read back. A refusal is
//!    reported before any failure to write the tables.
//!
//! **All or nothing.** As [`RosterDb::create`]: the new files are `<file>.part*`, written with
//! journaling off and a bounded page cache, and renamed into place past the commit marker only
//! once complete and synced; a refused file (any error, reported by line, 50 a rule as the
//! linter does), a hash other than the pinned one, or a kill at any point leaves the previous
//! roster as it was, and the stage is removed. Findings are those [`crate::roster_csv::read`]
//! makes on the same file, in the same order.

use crate::roster_csv::{
    Lint, ReadOptions, Row, RowContext, Rule, Severity, SourceEncoding, columns, parse_part_rows,
};
use crate::roster_db::{
    IdRows, POSTINGS_PER_ROW, RosterDb, RosterDbError, bulk_pairs, bulk_pragmas, clear_parts,
    commit_parts, days, household_rows, import_meta, part_path, postings, stage_path, text_path,
    write_meta,
};
use crate::store::{KdfParams, create_encrypted_set, kdf_path};
use kazashi_domain::ids::{HouseholdId, ListNumber, PersonId, RosterHash};
use kazashi_domain::normalize::fold;
use kazashi_domain::roster::{RosterHasher, RosterKind};
use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};
use siphasher::sip128::{Hasher128 as _, SipHasher13};
use std::collections::BTreeMap;
use std::hash::Hasher as _;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Why an import did not happen. In every case nothing was imported and the roster store is
/// as it was.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file was refused: {} error(s); nothing was imported", .0.error_count())]
    Refused(Lint),
    #[error("the file's roster has hash {found}, not the pinned {pinned}: nothing was imported")]
    NotPinned { found: String, pinned: String },
    #[error("{path}: {error}")]
    File {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] RosterDbError),
}

impl From<rusqlite::Error> for ImportError {
    fn from(e: rusqlite::Error) -> Self {
        ImportError::Db(e.into())
    }
}

/// Which pass [`import_file`]'s progress is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading and checking the rows (bytes of the file).
    Read,
    /// Writing the store (rows).
    Index,
}

/// What to import, and how.
pub struct ImportOptions<'a> {
    pub read: &'a ReadOptions,
    pub passphrase: &'a str,
    pub params: KdfParams,
    /// Refuse the file unless its roster has this hash (the one pinned in the manifest).
    pub expect: Option<RosterHash>,
}

/// Read, check and import the roster file `src` into the roster store at `out` (see the
/// module doc). Returns the store, opened, and the linter's report (its warnings).
pub fn import_file(
    src: &Path,
    out: &Path,
    opts: &ImportOptions<'_>,
    progress: &mut dyn FnMut(Phase, u64, u64),
) -> Result<(RosterDb, Lint), ImportError> {
    import_file_in_chunks(src, out, opts, progress, CHUNK)
}

/// [`import_file`] with the text cut into chunks of about `chunk` bytes (the result does not
/// depend on it: public for that test).
#[doc(hidden)]
pub fn import_file_in_chunks(
    src: &Path,
    out: &Path,
    opts: &ImportOptions<'_>,
    progress: &mut dyn FnMut(Phase, u64, u64),
    chunk: usize,
) -> Result<(RosterDb, Lint), ImportError> {
    let file_err = |error| ImportError::File {
        path: src.to_owned(),
        error,
    };
    let total = std::fs::metadata(src).map_err(file_err)?.len();
    let sniffed = sniff(src, opts.read.encoding).map_err(file_err)?;
    let (encoding, skip, source_sha256) = match sniffed {
        Sniffed::Ok {
            encoding,
            skip,
            sha256,
        } => (encoding, skip, sha256),
        Sniffed::Refused(lint) => return Err(ImportError::Refused(*lint)),
    };
    clear_parts(out)?;
    let part = part_path(out);
    let stage = stage_path(out);
    let input = Input {
        src,
        encoding,
        skip,
        total,
        chunk,
    };
    let remove_parts = || {
        for p in [part.clone(), kdf_path(&part), text_path(&part)] {
            let _ = std::fs::remove_file(p);
        }
    };
    // A file in 宛名番号 order (as municipal exports are) goes straight into the store; one
    // that is not is read again, through the stage.
    let mut result = import_direct(&part, &input, opts, source_sha256, progress);
    if matches!(result, Ok(None)) {
        remove_parts();
        result = import_staged(&part, &stage, &input, opts, source_sha256, progress).map(Some);
        let _ = std::fs::remove_file(&stage);
    }
    match result {
        Ok(Some(lint)) => {
            let db = commit_parts(out, opts.passphrase)?;
            Ok((db, lint))
        }
        Ok(None) => {
            remove_parts();
            Err(damaged("the import did not finish"))
        }
        Err(e) => {
            remove_parts();
            Err(e)
        }
    }
}

/// The file to read, as pass 1 found it.
struct Input<'a> {
    src: &'a Path,
    encoding: SourceEncoding,
    /// Bytes to skip (a BOM).
    skip: u64,
    total: u64,
    chunk: usize,
}

/// The new files of an import, keyed, with the bulk pragmas; `extra` (the stage) besides.
fn create_parts(
    part: &Path,
    extra: Option<&Path>,
    opts: &ImportOptions<'_>,
) -> Result<(Connection, Connection, Option<Connection>), ImportError> {
    let text = text_path(part);
    let mut others: Vec<&Path> = vec![&text];
    others.extend(extra);
    let (main, mut others) = create_encrypted_set(part, &others, opts.passphrase, opts.params)
        .map_err(RosterDbError::from)?;
    let extra = if extra.is_some() { others.pop() } else { None };
    let text = others.pop().ok_or_else(|| damaged("no text file"))?;
    for c in [Some(&main), Some(&text), extra.as_ref()]
        .into_iter()
        .flatten()
    {
        bulk_pragmas(c)?;
        // A bounded page cache per file: the memory of an import does not grow with it.
        c.pragma_update(None, "cache_size", -32_768)?;
    }
    Ok((main, text, extra))
}

/// Passes 2 and 3 at once, for a file whose rows come in strictly ascending 宛名番号: each row
/// written to the store as it is read (no stage). `None` at the first row out of that order
/// (nothing kept: the caller removes the part files and imports through the stage).
fn import_direct(
    part: &Path,
    input: &Input<'_>,
    opts: &ImportOptions<'_>,
    source_sha256: [u8; 32],
    progress: &mut dyn FnMut(Phase, u64, u64),
) -> Result<Option<Lint>, ImportError> {
    let (main, text, _) = create_parts(part, None, opts)?;
    // The count is set once known (the text file's writer counts the rows it is given).
    let mut meta = import_meta(opts.read.kind, 0, source_sha256)?;
    let mut ids: Vec<(PersonId, u32)> = Vec::new();
    let mut lines: Vec<u64> = Vec::new();
    let mut out_of_order = false;
    let mut done: Option<ReadDone> = None;
    let built = build_store(
        &main,
        text,
        opts.read.kind,
        true,
        &meta,
        &mut |_| {},
        &mut |each| {
            let mut last: Option<PersonId> = None;
            let read = read_rows(
                input,
                opts.read,
                &mut |r: StageRow| {
                    if last.is_some_and(|l| l >= r.person) {
                        out_of_order = true;
                        return Err(damaged("rows out of 宛名番号 order"));
                    }
                    last = Some(r.person);
                    let rid = u32::try_from(ids.len())
                        .map_err(|_| damaged("more than 4,294,967,295 rows"))?;
                    ids.push((r.person, rid));
                    lines.push(r.line);
                    each(rid, r)
                },
                progress,
            )?;
            done = Some(read);
            Ok(())
        },
    );
    if out_of_order {
        return Ok(None);
    }
    let (built, text_job) = built?;
    let ReadDone {
        household_rows,
        lint,
    } = done.ok_or_else(|| damaged("the file was not read"))?;
    set_count(&mut meta, ids.len() as u64);
    let source = Source::Direct { lines };
    let lint = finish_store(
        &main,
        built,
        &ids,
        &source,
        household_rows,
        lint,
        opts,
        meta,
    )?;
    text_job.finish()?;
    drop(source);
    main.pragma_update(None, "journal_mode", "DELETE")?;
    progress(Phase::Index, ids.len() as u64, ids.len() as u64);
    Ok(Some(lint))
}

/// Pass 2 into the stage, then pass 3 (see the module doc).
fn import_staged(
    part: &Path,
    stage: &Path,
    input: &Input<'_>,
    opts: &ImportOptions<'_>,
    source_sha256: [u8; 32],
    progress: &mut dyn FnMut(Phase, u64, u64),
) -> Result<Lint, ImportError> {
    let (main, text, stage_conn) = create_parts(part, Some(stage), opts)?;
    let stage_conn = stage_conn.ok_or_else(|| damaged("no stage"))?;
    stage_conn.execute_batch(STAGE_SCHEMA)?;
    let mut ids: Vec<(PersonId, u32)> = Vec::new();
    let tx = stage_conn.unchecked_transaction()?;
    let read = {
        let mut ins = tx.prepare(
            "INSERT INTO stage (seq, line, entry, name, kana, birth, household, list)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        read_rows(
            input,
            opts.read,
            &mut |r: StageRow| {
                let seq = u32::try_from(ids.len())
                    .map_err(|_| damaged("more than 4,294,967,295 rows"))?;
                ins.execute(params![
                    seq,
                    r.line as i64,
                    r.entry,
                    r.name,
                    r.kana,
                    r.birth,
                    r.household.as_str(),
                    r.list.as_ref().map(|l| l.as_str()),
                ])?;
                ids.push((r.person, seq));
                Ok(())
            },
            progress,
        )?
    };
    tx.commit()?;
    let rows = Rows {
        ids,
        household_rows: read.household_rows,
        lint: read.lint,
    };
    let lint = write_store(
        &main,
        text,
        &stage_conn,
        rows,
        opts,
        source_sha256,
        progress,
    )?;
    drop(stage_conn);
    main.pragma_update(None, "journal_mode", "DELETE")?;
    Ok(lint)
}

/// `meta`'s row count set to `n`.
fn set_count(meta: &mut [(&str, Vec<u8>)], n: u64) {
    for (k, v) in meta.iter_mut() {
        if *k == "count" {
            *v = n.to_le_bytes().to_vec();
        }
    }
}

fn damaged(what: &str) -> ImportError {
    ImportError::Db(RosterDbError::Damaged(what.into()))
}

/// Pass 1's verdict on a file's bytes.
enum Sniffed {
    Ok {
        encoding: SourceEncoding,
        /// Bytes to skip (a BOM).
        skip: u64,
        sha256: [u8; 32],
    },
    Refused(Box<Lint>),
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Read `r` until `buf` is full or the input ends; the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(buf.get_mut(n..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The file's hash and encoding, as `roster_csv::decode` decides it on the whole file. The
/// hash is taken on a thread of its own, beside the UTF-8 check (SIMD): 1.2 s for a 1.2 GB
/// file, 2.6 s on one thread with the std check.
fn sniff(src: &Path, forced: Option<SourceEncoding>) -> std::io::Result<Sniffed> {
    let mut f = std::fs::File::open(src)?;
    let (chunks, hash_rx) = std::sync::mpsc::sync_channel::<std::sync::Arc<Vec<u8>>>(4);
    let hasher = std::thread::Builder::new().spawn(move || {
        let mut sha = Sha256::new();
        for c in hash_rx {
            sha.update(c.as_slice());
        }
        let out: [u8; 32] = sha.finalize().into();
        out
    })?;
    let checked = sniff_utf8(&mut f, &chunks);
    // The hasher's chunks end here, whatever the check found.
    drop(chunks);
    let sha256 = hasher
        .join()
        .map_err(|_| std::io::Error::other("the file's hash failed"))?;
    let (bom, bad) = checked?;
    sniff_verdict(src, forced, sha256, bom, bad)
}

/// Whether the file starts with a BOM, and the line of its first byte that is not UTF-8 (of
/// the body after any BOM); every chunk read is also given to `hash`.
fn sniff_utf8(
    f: &mut std::fs::File,
    hash: &std::sync::mpsc::SyncSender<std::sync::Arc<Vec<u8>>>,
) -> std::io::Result<(bool, Option<u64>)> {
    const CHUNK: usize = 1 << 20;
    let mut carry: Vec<u8> = Vec::new();
    let mut newlines = 0u64;
    // The line of the first byte that is not UTF-8 (of the body after any BOM).
    let mut bad: Option<u64> = None;
    let mut first = true;
    let mut bom = false;
    loop {
        let mut buf = vec![0u8; CHUNK];
        let n = read_full(f, &mut buf)?;
        buf.truncate(n);
        let buf = std::sync::Arc::new(buf);
        if hash.send(buf.clone()).is_err() {
            return Err(std::io::Error::other("the file's hash stopped"));
        }
        let chunk = buf.as_slice();
        let mut body = chunk;
        if first {
            first = false;
            if let Some(rest) = chunk.strip_prefix(BOM) {
                bom = true;
                body = rest;
            }
        }
        if bad.is_none() {
            let mut data = std::mem::take(&mut carry);
            data.extend_from_slice(body);
            match simdutf8::compat::from_utf8(&data) {
                Ok(_) => newlines += memchr::memchr_iter(b'\n', &data).count() as u64,
                Err(e) => {
                    let valid = data.get(..e.valid_up_to()).unwrap_or_default();
                    let before = newlines + memchr::memchr_iter(b'\n', valid).count() as u64;
                    if e.error_len().is_none() && n == CHUNK {
                        // A character cut by the chunk's end: finished by the next.
                        newlines = before;
                        carry = data.get(e.valid_up_to()..).unwrap_or_default().to_vec();
                    } else {
                        bad = Some(1 + before);
                    }
                }
            }
        }
        if n < CHUNK {
            break;
        }
    }
    if bad.is_none() && !carry.is_empty() {
        bad = Some(1 + newlines);
    }
    Ok((bom, bad))
}

/// The encoding [`sniff`] decides from what it read.
fn sniff_verdict(
    src: &Path,
    forced: Option<SourceEncoding>,
    sha256: [u8; 32],
    bom: bool,
    bad: Option<u64>,
) -> std::io::Result<Sniffed> {
    let mut lint = Lint::default();
    let ok = |encoding, skip| {
        Ok(Sniffed::Ok {
            encoding,
            skip,
            sha256,
        })
    };
    let skip = if bom { BOM.len() as u64 } else { 0 };
    match (forced, bom, bad) {
        (Some(SourceEncoding::Cp932), ..) => {
            if cp932_valid(src)? {
                return ok(SourceEncoding::Cp932, 0);
            }
            lint.error(
                Rule::Encoding,
                None,
                "not valid Shift_JIS/CP932 (is the file UTF-8?)".into(),
            );
        }
        (Some(_), _, None) => return ok(SourceEncoding::Utf8, skip),
        (Some(_), _, Some(line)) => lint.error(
            Rule::Encoding,
            Some(line),
            "not valid UTF-8 here (is the file Shift_JIS?)".into(),
        ),
        (None, true, None) => return ok(SourceEncoding::Utf8Bom, skip),
        (None, true, Some(line)) => lint.error(
            Rule::Encoding,
            Some(line),
            "the file starts with a UTF-8 BOM but is not valid UTF-8 here".into(),
        ),
        (None, false, None) => return ok(SourceEncoding::Utf8, 0),
        (None, false, Some(line)) => {
            if cp932_valid(src)? {
                return ok(SourceEncoding::Cp932, 0);
            }
            lint.error(
                Rule::Encoding,
                Some(line),
                "neither UTF-8 nor Shift_JIS/CP932 (first bad byte on this line)".into(),
            );
        }
    }
    Ok(Sniffed::Refused(Box::new(lint)))
}

/// Whether the whole file is CP932 without a bad byte.
fn cp932_valid(src: &Path) -> std::io::Result<bool> {
    let mut r = Cp932Reader::new(std::fs::File::open(src)?);
    let mut sink = vec![0u8; 1 << 16];
    loop {
        match r.read(&mut sink) {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

/// CP932 bytes read as UTF-8 text; a malformed byte is an `InvalidData` error.
struct Cp932Reader<R> {
    inner: R,
    dec: encoding_rs::Decoder,
    input: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    done: bool,
    out: Vec<u8>,
    out_at: usize,
    out_len: usize,
}

impl<R: Read> Cp932Reader<R> {
    fn new(inner: R) -> Self {
        Cp932Reader {
            inner,
            dec: encoding_rs::SHIFT_JIS.new_decoder_without_bom_handling(),
            input: vec![0u8; 1 << 16],
            start: 0,
            end: 0,
            eof: false,
            done: false,
            out: vec![0u8; 1 << 17],
            out_at: 0,
            out_len: 0,
        }
    }
}

impl<R: Read> Read for Cp932Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.out_at < self.out_len {
                let avail = self.out.get(self.out_at..self.out_len).unwrap_or_default();
                let n = avail.len().min(buf.len());
                if let (Some(d), Some(s)) = (buf.get_mut(..n), avail.get(..n)) {
                    d.copy_from_slice(s);
                }
                self.out_at += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            if self.start == self.end && !self.eof {
                let n = read_full(&mut self.inner, &mut self.input)?;
                (self.start, self.end) = (0, n);
                self.eof = n < self.input.len();
            }
            let src = self.input.get(self.start..self.end).unwrap_or_default();
            let (res, read, written) =
                self.dec
                    .decode_to_utf8_without_replacement(src, &mut self.out, self.eof);
            self.start += read;
            (self.out_at, self.out_len) = (0, written);
            match res {
                encoding_rs::DecoderResult::InputEmpty => {
                    if self.eof {
                        self.done = true;
                    }
                }
                encoding_rs::DecoderResult::OutputFull => {}
                encoding_rs::DecoderResult::Malformed(..) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "not valid Shift_JIS/CP932",
                    ));
                }
            }
        }
    }
}

/// Chunks of the text handed to the parsers: about this many bytes, cut at a record's end.
const CHUNK: usize = 4 << 20;

/// Cuts decoded text at record ends (a line break outside quotes, by the rule of
/// `roster_csv::record_cuts`), keeping the quote state across reads.
struct Chunker {
    buf: Vec<u8>,
    /// Bytes of `buf` scanned for quotes and line breaks.
    scanned: usize,
    quoted: bool,
    /// The byte before `buf[scanned]` (for "does this quote start a cell").
    prev: Option<u8>,
    /// One past the last record end found in `buf`.
    last_end: Option<usize>,
}

impl Chunker {
    fn new() -> Self {
        Chunker {
            buf: Vec::with_capacity(CHUNK + (1 << 20)),
            scanned: 0,
            quoted: false,
            prev: None,
            last_end: None,
        }
    }

    /// Scan the new bytes (all of them at the end of the input; else all but the last, which
    /// may be the first of a `""`).
    fn scan(&mut self, eof: bool) {
        let limit = if eof {
            self.buf.len()
        } else {
            self.buf.len().saturating_sub(1)
        };
        let mut i = self.scanned;
        while i < limit {
            let b = self.buf.get(i).copied().unwrap_or(0);
            match b {
                b'"' if self.quoted => {
                    if self.buf.get(i + 1) == Some(&b'"') {
                        if i + 1 >= limit {
                            // The pair straddles the scan limit: look again with more input.
                            break;
                        }
                        self.prev = Some(b'"');
                        i += 2;
                        continue;
                    }
                    self.quoted = false;
                }
                b'"' => {
                    self.quoted = matches!(self.prev, None | Some(b',' | b'\n' | b'\r'));
                }
                b'\n' if !self.quoted => self.last_end = Some(i + 1),
                _ => {}
            }
            self.prev = Some(b);
            i += 1;
        }
        self.scanned = i;
    }

    /// The text up to the last record end found, taken out of the buffer.
    fn take(&mut self) -> Option<Vec<u8>> {
        let end = self.last_end.take()?;
        let rest = self.buf.split_off(end);
        self.scanned -= end;
        Some(std::mem::replace(&mut self.buf, rest))
    }
}

/// A chunk of rows checked on a worker: each good row encoded and folded, household rows,
/// the findings.
struct Checked {
    /// Bytes of text parsed.
    bytes: u64,
    rows: Vec<StageRow>,
    household_rows: Vec<(HouseholdId, u64)>,
    lint: Lint,
}

struct StageRow {
    person: PersonId,
    line: u64,
    entry: Vec<u8>,
    name: String,
    kana: String,
    birth: i64,
    household: HouseholdId,
    list: Option<ListNumber>,
}

/// What pass 2 leaves besides the rows it gave its sink.
struct ReadDone {
    household_rows: Vec<(HouseholdId, u64)>,
    lint: Lint,
}

/// What pass 2 leaves for pass 3.
struct Rows {
    /// (宛名番号, stage position) of every good row, in file order.
    ids: Vec<(PersonId, u32)>,
    household_rows: Vec<(HouseholdId, u64)>,
    lint: Lint,
}

const STAGE_SCHEMA: &str = "CREATE TABLE stage (
    seq INTEGER PRIMARY KEY,
    line INTEGER NOT NULL,
    entry BLOB NOT NULL,
    name TEXT NOT NULL,
    kana TEXT NOT NULL,
    birth INTEGER NOT NULL,
    household TEXT NOT NULL,
    list TEXT
)";

/// Pass 2 (see the module doc): the rows parsed and checked on worker threads, appended to
/// the stage in file order.
fn read_rows(
    input: &Input<'_>,
    opts: &ReadOptions,
    sink: &mut dyn FnMut(StageRow) -> Result<(), ImportError>,
    progress: &mut dyn FnMut(Phase, u64, u64),
) -> Result<ReadDone, ImportError> {
    let &Input {
        src,
        encoding,
        skip,
        total,
        chunk,
    } = input;
    let file_err = |error| ImportError::File {
        path: src.to_owned(),
        error,
    };
    let mut file = std::fs::File::open(src).map_err(file_err)?;
    std::io::copy(&mut (&mut file).take(skip), &mut std::io::sink()).map_err(file_err)?;
    let mut input: Box<dyn Read + Send> = match encoding {
        SourceEncoding::Cp932 => Box::new(Cp932Reader::new(file)),
        SourceEncoding::Utf8 | SourceEncoding::Utf8Bom => Box::new(file),
    };
    let mut lint = Lint {
        encoding: Some(encoding),
        ..Lint::default()
    };
    // The header: the first record.
    let mut chunker = Chunker::new();
    let mut eof = false;
    let mut fill = |chunker: &mut Chunker, eof: &mut bool| -> Result<(), ImportError> {
        let at = chunker.buf.len();
        chunker.buf.resize(at + chunk.clamp(16, 1 << 20), 0);
        let n = read_full(&mut input, chunker.buf.get_mut(at..).unwrap_or_default())
            .map_err(file_err)?;
        chunker.buf.truncate(at + n);
        *eof = n == 0;
        chunker.scan(*eof);
        Ok(())
    };
    while chunker.last_end.is_none() && !eof {
        fill(&mut chunker, &mut eof)?;
    }
    let mut head = chunker
        .take()
        .unwrap_or_else(|| std::mem::take(&mut chunker.buf));
    chunker.scanned = chunker.scanned.min(chunker.buf.len());
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(head.as_slice());
    let headers: Vec<String> = match rdr.headers() {
        Ok(h) => h.iter().map(|s| s.trim().to_owned()).collect(),
        Err(e) => {
            lint.error(Rule::Csv, Some(1), format!("header line: {e}"));
            return Err(ImportError::Refused(lint));
        }
    };
    let col = columns(&headers, opts, &mut lint);
    if lint.has_errors() {
        return Err(ImportError::Refused(lint));
    }
    // What follows the header in its chunk is the first chunk of rows.
    let header_end = usize::try_from(rdr.position().byte()).unwrap_or(usize::MAX);
    drop(rdr);
    let mut base = head
        .get(..header_end)
        .map_or(0, |h| memchr::memchr_iter(b'\n', h).count() as u64);
    let first_rows = head.split_off(header_end.min(head.len()));
    let ctx = RowContext {
        col: &col,
        width: headers.len(),
        opts,
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4));
    let mut household_rows = Vec::new();
    std::thread::scope(|scope| -> Result<(), ImportError> {
        let ctx = &ctx;
        let (work_tx, work_rx) =
            std::sync::mpsc::sync_channel::<(usize, Vec<u8>, u64)>(workers * 2);
        let work_rx = std::sync::Arc::new(std::sync::Mutex::new(work_rx));
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<(usize, Checked)>(workers * 2);
        for _ in 0..workers {
            let work_rx = work_rx.clone();
            let done_tx = done_tx.clone();
            std::thread::Builder::new()
                .spawn_scoped(scope, move || {
                    loop {
                        let job = match work_rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok((i, text, base)) = job else { return };
                        if done_tx.send((i, check_chunk(&text, base, ctx))).is_err() {
                            return;
                        }
                    }
                })
                .map_err(file_err)?;
        }
        drop(done_tx);
        // Only the workers hold the queue's receiving end: once they have all stopped (the
        // writer gone, or the queue closed), the reader's next send fails and it stops too —
        // a sink that refuses a row (a direct import meeting a row out of order) ends the read.
        drop(work_rx);
        // The reader: chunks of text to the workers, in order.
        let reader = std::thread::Builder::new()
            .spawn_scoped(scope, move || -> Result<(), ImportError> {
                let mut i = 0usize;
                let mut send = |text: Vec<u8>, base: &mut u64| -> bool {
                    let lines = memchr::memchr_iter(b'\n', &text).count() as u64;
                    let ok = work_tx.send((i, text, *base)).is_ok();
                    *base += lines;
                    i += 1;
                    ok
                };
                if !first_rows.is_empty() && !send(first_rows, &mut base) {
                    return Ok(());
                }
                while !eof {
                    fill(&mut chunker, &mut eof)?;
                    if chunker.buf.len() >= chunk || eof {
                        let text = if eof {
                            Some(std::mem::take(&mut chunker.buf))
                        } else {
                            chunker.take()
                        };
                        if let Some(t) = text.filter(|t| !t.is_empty())
                            && !send(t, &mut base)
                        {
                            return Ok(());
                        }
                    }
                }
                Ok(())
            })
            .map_err(file_err)?;
        // The writer (this thread): results in chunk order to the sink.
        let mut pending: BTreeMap<usize, Checked> = BTreeMap::new();
        let mut next = 0usize;
        let written = (|| -> Result<(), ImportError> {
            let mut bytes_done = skip;
            for (i, c) in done_rx.iter() {
                pending.insert(i, c);
                while let Some(c) = pending.remove(&next) {
                    next += 1;
                    for r in c.rows {
                        sink(r)?;
                    }
                    bytes_done += c.bytes;
                    household_rows.extend(c.household_rows);
                    lint.absorb(c.lint);
                    progress(Phase::Read, bytes_done.min(total), total);
                }
            }
            Ok(())
        })();
        drop(done_rx);
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(damaged("the file reader failed")));
        written?;
        read?;
        Ok(())
    })?;
    progress(Phase::Read, total, total);
    if lint.rows == 0 {
        lint.error(
            Rule::Empty,
            None,
            "the file has a header but no rows".into(),
        );
    }
    Ok(ReadDone {
        household_rows,
        lint,
    })
}

/// One chunk parsed and checked by the linter's rules, each good row encoded and folded.
fn check_chunk(text: &[u8], base: u64, ctx: &RowContext<'_>) -> Checked {
    let mut lint = Lint::default();
    let Ok(text) = simdutf8::basic::from_utf8(text) else {
        lint.error(Rule::Encoding, Some(base + 1), "not valid text here".into());
        return Checked {
            bytes: text.len() as u64,
            rows: Vec::new(),
            household_rows: Vec::new(),
            lint,
        };
    };
    let mut rows = Vec::new();
    let mut household_rows = Vec::new();
    parse_part_rows(
        text,
        base,
        ctx,
        &mut lint,
        &mut |row, line, _, lint| match row {
            Row::Entry(e) => match postcard::to_allocvec(&e) {
                Ok(entry) => rows.push(StageRow {
                    person: e.person,
                    line,
                    name: fold(e.name.as_str()),
                    kana: fold(e.kana.as_str()),
                    birth: days(e.birth_date),
                    household: e.household,
                    list: e.voter.as_ref().map(|v| v.list_number),
                    entry,
                }),
                Err(x) => lint.error(Rule::BadValue, Some(line), x.to_string()),
            },
            Row::Household(h) => household_rows.push((h, line)),
            Row::Bad => {}
        },
    );
    Checked {
        bytes: text.len() as u64,
        rows,
        household_rows,
        lint,
    }
}

/// The stage's row at `seq`, as pass 2 gave it (`person`: its 宛名番号, not staged).
fn stage_row(stage: &Connection, seq: u32, person: PersonId) -> Result<StageRow, ImportError> {
    let mut st = stage.prepare_cached(
        "SELECT line, entry, name, kana, birth, household, list FROM stage WHERE seq = ?1",
    )?;
    let raw = st.query_row([seq], staged)?;
    from_stage(raw, person)
}

/// A stage row as read: line, entry, name, kana, birth, household, list.
type RawStaged = (i64, Vec<u8>, String, String, i64, String, Option<String>);

fn staged(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawStaged> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn from_stage(raw: RawStaged, person: PersonId) -> Result<StageRow, ImportError> {
    let (line, entry, name, kana, birth, household, list) = raw;
    Ok(StageRow {
        person,
        line: u64::try_from(line).unwrap_or(0),
        entry,
        name,
        kana,
        birth,
        household: HouseholdId::new(&household).map_err(|e| damaged(&format!("stage: {e}")))?,
        list: list
            .map(|l| ListNumber::new(&l).map_err(|e| damaged(&format!("stage: {e}"))))
            .transpose()?,
    })
}

/// Where the cross-row checks find a row's line and keys: the stage, or (rows written
/// straight to the store) the lines kept and the entry in the store.
enum Source<'a> {
    Stage(&'a Connection),
    Direct { lines: Vec<u64> },
}

impl Source<'_> {
    /// The file line of the row at `seq` (pass 2's position), whose 宛名番号 is `person`.
    fn line(&self, seq: u32, person: PersonId) -> Result<u64, ImportError> {
        match self {
            Source::Stage(stage) => Ok(stage_row(stage, seq, person)?.line),
            Source::Direct { lines, .. } => lines
                .get(seq as usize)
                .copied()
                .ok_or_else(|| damaged("no line for a row")),
        }
    }
}

/// The key of an import's variant hashes, drawn from the OS for each import and never kept.
type VariantSeed = (u64, u64);

/// A fresh [`VariantSeed`].
fn variant_seed() -> Result<VariantSeed, ImportError> {
    let b: [u8; 16] = crate::store::random_bytes().map_err(RosterDbError::from)?;
    let (k0, k1) = b.split_at(8);
    let word = |x: &[u8]| u64::from_le_bytes(x.try_into().unwrap_or([0; 8]));
    Ok((word(k0), word(k1)))
}

/// A row's variant-duplicate key — folded name, folded reading, birth date — as a 128-bit
/// SipHash-1-3 under `seed`. Rows with equal hashes are taken as having equal keys: honest
/// rows collide with odds of about n² / 2¹²⁹ (10⁻²⁵ at ten million rows), and without the
/// seed, which lives only as long as the import, no file can be made to collide. So the
/// checks never read a row back (that read was about a fifth of a 10 M import's last pass).
fn variant_key(seed: VariantSeed, name: &str, kana: &str, birth: i64) -> (u64, u64) {
    let mut h = SipHasher13::new_with_keys(seed.0, seed.1);
    h.write_usize(name.len());
    h.write(name.as_bytes());
    h.write_usize(kana.len());
    h.write(kana.as_bytes());
    h.write_i64(birth);
    let d = h.finish128();
    (d.h1, d.h2)
}

/// Rows to the text thread at a time.
pub(crate) const TEXT_BATCH: usize = 8192;

/// Pass 3 from the stage (see the module doc). Returns the lint; writes nothing that stays
/// when the file is refused.
fn write_store(
    main: &Connection,
    text: Connection,
    stage: &Connection,
    rows: Rows,
    opts: &ImportOptions<'_>,
    source_sha256: [u8; 32],
    progress: &mut dyn FnMut(Phase, u64, u64),
) -> Result<Lint, ImportError> {
    let Rows {
        mut ids,
        household_rows,
        mut lint,
    } = rows;
    let kind = opts.read.kind;
    // (id, position in file order) pairs are unique: this sorts as a stable sort by id would.
    ids.sort_unstable();
    let n = ids.len();
    // Duplicate ids: each row after the first of its id.
    let mut dup = Lint::default();
    let mut first = 0usize;
    for (i, pair) in (1..).zip(ids.windows(2)) {
        let [a, b] = pair else { continue };
        if a.0 != b.0 {
            first = i;
            continue;
        }
        let (Some(f), Some(this)) = (ids.get(first), ids.get(i)) else {
            continue;
        };
        dup.error(
            Rule::DuplicatePerson,
            Some(stage_row(stage, this.1, this.0)?.line),
            format!(
                "宛名番号 {} already on line {}",
                b.0,
                stage_row(stage, f.1, f.0)?.line
            ),
        );
    }
    lint.absorb(dup);
    let write = !lint.has_errors();
    let meta = import_meta(kind, n as u64, source_sha256)?;
    let in_order = ids.iter().zip(0u32..).all(|((_, seq), i)| *seq == i);
    let ids_ref = &ids;
    let (built, text_job) = build_store(
        main,
        text,
        kind,
        write,
        &meta,
        &mut |rid| {
            if rid.is_multiple_of(65_536) {
                progress(Phase::Index, u64::from(rid), n as u64);
            }
        },
        &mut |each| {
            if in_order {
                let mut st = stage.prepare(
                    "SELECT line, entry, name, kana, birth, household, list FROM stage ORDER BY seq",
                )?;
                let mut q = st.query([])?;
                for (rid, (person, _)) in (0u32..).zip(ids_ref) {
                    let r = q.next()?.ok_or_else(|| damaged("stage: a row missing"))?;
                    each(rid, from_stage(staged(r)?, *person)?)?;
                }
            } else {
                for (rid, (person, seq)) in (0u32..).zip(ids_ref) {
                    each(rid, stage_row(stage, *seq, *person)?)?;
                }
            }
            Ok(())
        },
    )?;
    let lint = finish_store(
        main,
        built,
        &ids,
        &Source::Stage(stage),
        household_rows,
        lint,
        opts,
        meta,
    )?;
    text_job.finish()?;
    progress(Phase::Index, n as u64, n as u64);
    Ok(lint)
}

/// What the store pass collects from the rows for the lookup tables and checks.
struct Built {
    hasher: RosterHasher,
    births: Vec<(i64, u32)>,
    households: Vec<(HouseholdId, u32)>,
    lists: Vec<(ListNumber, u32)>,
    /// (variant hash, rid): see [`variant_key`].
    variants: Vec<(u64, u64, u32)>,
}

/// The rows' sink in the store pass: (rid, row), rids from 0 up in 宛名番号 order.
type Each<'a> = dyn FnMut(u32, StageRow) -> Result<(), ImportError> + 'a;

/// The `person` table and the text file's FTS rows, written (unless `write` is false) from the
/// rows `feed` gives in rid order, on two threads; the hash and the lookup keys collected.
fn build_store(
    main: &Connection,
    text: Connection,
    kind: RosterKind,
    write: bool,
    meta: &[(&'static str, Vec<u8>)],
    tick: &mut dyn FnMut(u32),
    feed: &mut dyn FnMut(&mut Each<'_>) -> Result<(), ImportError>,
) -> Result<(Built, TextJob), ImportError> {
    let seed = variant_seed()?;
    let mut b = Built {
        hasher: RosterHasher::new(kind),
        births: Vec::new(),
        households: Vec::new(),
        lists: Vec::new(),
        variants: Vec::new(),
    };
    let text_meta = meta.to_vec();
    let (text_tx, text_rx) = std::sync::mpsc::sync_channel::<Vec<(String, String)>>(4);
    let text_job = TextJob(Some(
        std::thread::Builder::new()
            .spawn(move || write_text(&text, text_rx, &text_meta, write))
            .map_err(|error| ImportError::File {
                path: PathBuf::from("(thread)"),
                error,
            })?,
    ));
    // Bound after the job, so dropped before it on every way out: the writer sees its rows
    // end before the job's drop waits for it.
    let text_tx = text_tx;
    main.execute_batch(crate::roster_db::MAIN_SCHEMA)?;
    let tx = main.unchecked_transaction()?;
    {
        let mut ins = tx.prepare("INSERT INTO person (rid, birth, entry) VALUES (?1, ?2, ?3)")?;
        let mut batch = Vec::with_capacity(TEXT_BATCH);
        let mut each = |rid: u32, s: StageRow| -> Result<(), ImportError> {
            b.hasher.entry(&s.entry);
            if write {
                ins.execute(params![rid, s.birth, s.entry])?;
            }
            b.births.push((s.birth, rid));
            b.households.push((s.household, rid));
            if let Some(l) = s.list {
                b.lists.push((l, rid));
            }
            let (h1, h2) = variant_key(seed, &s.name, &s.kana, s.birth);
            b.variants.push((h1, h2, rid));
            batch.push((s.name, s.kana));
            if batch.len() == TEXT_BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(TEXT_BATCH));
                if text_tx.send(full).is_err() {
                    return Err(damaged("the text index writer stopped"));
                }
            }
            tick(rid);
            Ok(())
        };
        feed(&mut each)?;
        if !batch.is_empty() && text_tx.send(batch).is_err() {
            return Err(damaged("the text index writer stopped"));
        }
    }
    tx.commit()?;
    // The text writer ends its index (the FTS segments, its postings) from here on, beside
    // the caller's cross-row checks and lookup tables: `TextJob::finish` waits for it.
    drop(text_tx);
    Ok((b, text_job))
}

/// The text file's writer, running on its own thread until its rows are all given and its
/// index written. Dropped unfinished (an error on the way), it is waited for all the same:
/// no thread outlives the import that started it.
struct TextJob(Option<std::thread::JoinHandle<Result<(), ImportError>>>);

impl TextJob {
    /// Wait for the text writer; its error if it failed.
    fn finish(mut self) -> Result<(), ImportError> {
        match self.0.take() {
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err(damaged("the text index writer failed"))),
            None => Ok(()),
        }
    }
}

impl Drop for TextJob {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.join();
        }
    }
}

/// A row the cross-row checks found repeating an earlier one, by rid; the lines and the
/// message are made once the checks are done.
enum Repeat {
    /// The row's 名簿番号 is the row `first`'s.
    List {
        rid: u32,
        first: u32,
        number: ListNumber,
    },
    /// The row is the row `first` up to variant glyphs (same reading and birth date).
    Variant { rid: u32, first: u32 },
}

impl Repeat {
    /// The repeating row.
    fn rid(&self) -> u32 {
        match self {
            Repeat::List { rid, .. } | Repeat::Variant { rid, .. } => *rid,
        }
    }
}

/// The cross-row checks on the keys alone (名簿番号 and variant duplicates), in the order
/// the findings are reported: the 名簿番号 repeats by rid, then the variant repeats by rid.
/// `lists` are sorted; `ids` are (宛名番号, pass 2 position) in rid order.
fn repeats(
    lists: &[(ListNumber, u32)],
    mut variants: Vec<(u64, u64, u32)>,
    ids: &[(PersonId, u32)],
) -> Vec<Repeat> {
    let mut found: Vec<Repeat> = Vec::new();
    for w in lists.windows(2) {
        if let [(a, ra), (b, rb)] = w
            && a == b
        {
            found.push(Repeat::List {
                rid: *rb,
                first: *ra,
                number: *b,
            });
        }
    }
    found.sort_by_key(Repeat::rid);
    variants.sort_unstable();
    let person_of = |rid: u32| ids.get(rid as usize).map(|x| x.0);
    let mut variant_found = Vec::new();
    for group in variants.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        let [(_, _, first), rest @ ..] = group else {
            continue;
        };
        for &(_, _, rid) in rest {
            // The same 宛名番号 twice is reported as a duplicate id, not as a variant.
            if person_of(*first) != person_of(rid) {
                variant_found.push(Repeat::Variant { rid, first: *first });
            }
        }
    }
    drop(variants);
    variant_found.sort_by_key(Repeat::rid);
    found.extend(variant_found);
    found
}

/// The end of the store pass: the cross-row checks on the sorted keys (on a thread of their
/// own) beside the lookup tables, the hash checked against the pin, then the meta. `ids` are
/// (宛名番号, pass 2 position) in rid order.
#[allow(clippy::too_many_arguments)]
fn finish_store(
    main: &Connection,
    built: Built,
    ids: &[(PersonId, u32)],
    source: &Source<'_>,
    household_rows: Vec<(HouseholdId, u64)>,
    mut lint: Lint,
    opts: &ImportOptions<'_>,
    mut meta: Vec<(&str, Vec<u8>)>,
) -> Result<Lint, ImportError> {
    let kind = opts.read.kind;
    let Built {
        hasher,
        births,
        mut households,
        mut lists,
        variants,
    } = built;
    let hash = hasher.finish();
    let pinned = opts.expect.is_none_or(|p| p == hash);
    lists.sort_unstable();
    households.sort_unstable();
    // The tables are written while the checks run; a finding after all drops them with the
    // rest of the part files.
    let (found, tables) = std::thread::scope(|scope| {
        let checks = std::thread::Builder::new()
            .spawn_scoped(scope, || repeats(&lists, variants, ids))
            .map_err(|error| ImportError::File {
                path: PathBuf::from("(thread)"),
                error,
            });
        let tables = if pinned && !lint.has_errors() {
            lookup_tables(main, ids, &lists, births, &households).map(Some)
        } else {
            Ok(None)
        };
        let found =
            checks.and_then(|h| h.join().map_err(|_| damaged("the cross-row checks failed")));
        (found, tables)
    });
    // The checks' refusal first: a failure writing the tables (a full disk) does not hide it.
    let found = found?;
    let line_of = |rid: u32| -> Result<u64, ImportError> {
        let (person, seq) = ids
            .get(rid as usize)
            .copied()
            .ok_or_else(|| damaged("rid"))?;
        source.line(seq, person)
    };
    let person_of = |rid: u32| {
        ids.get(rid as usize)
            .map(|x| x.0.to_string())
            .unwrap_or_default()
    };
    for f in found {
        match f {
            Repeat::List { rid, first, number } => lint.error(
                Rule::DuplicateListNumber,
                Some(line_of(rid)?),
                format!("名簿番号 {} already on line {}", number, line_of(first)?),
            ),
            Repeat::Variant { rid, first } => {
                let msg = format!(
                    "宛名番号 {} looks like {} on line {} (same name up to variant glyphs, same reading and birth date)",
                    person_of(rid),
                    person_of(first),
                    line_of(first)?
                );
                let sev = match kind {
                    RosterKind::Voters => Severity::Error,
                    RosterKind::Residents => Severity::Warning,
                };
                lint.add(sev, Rule::VariantDuplicate, Some(line_of(rid)?), msg);
            }
        }
    }
    for (h, line) in &household_rows {
        let has = households.partition_point(|(k, _)| k < h);
        if households.get(has).map(|x| &x.0) != Some(h) {
            lint.error(
                Rule::EmptyHousehold,
                Some(*line),
                format!("世帯番号 {h} has no members"),
            );
        }
    }
    if lint.has_errors() {
        return Err(ImportError::Refused(lint));
    }
    let Some(tx) = tables? else {
        return Err(ImportError::NotPinned {
            found: hash.to_hex(),
            pinned: opts.expect.map(|p| p.to_hex()).unwrap_or_default(),
        });
    };
    meta.push(("hash", hash.0.to_vec()));
    write_meta(&tx, &meta)?;
    tx.commit()?;
    Ok(lint)
}

/// The lookup tables, keys appended in order, in a transaction left open for the meta.
fn lookup_tables<'c>(
    main: &'c Connection,
    ids: &[(PersonId, u32)],
    lists: &[(ListNumber, u32)],
    mut births: Vec<(i64, u32)>,
    households: &[(HouseholdId, u32)],
) -> Result<rusqlite::Transaction<'c>, ImportError> {
    let tx = main.unchecked_transaction()?;
    let mut by_id = IdRows::new(&tx)?;
    for (p, _) in ids {
        by_id.push(*p)?;
    }
    by_id.finish()?;
    // A repeated 名簿番号 only once: the checks, running meanwhile, refuse the file for it
    // (and these tables with it).
    bulk_pairs(
        &tx,
        "by_list",
        lists
            .chunk_by(|a, b| a.0 == b.0)
            .filter_map(|g| g.first())
            .map(|(l, r)| (l.as_str(), i64::from(*r))),
    )?;
    births.sort_unstable();
    grouped_postings(&tx, "by_birth", births.into_iter())?;
    household_rows(&tx, households.iter().map(|(h, r)| (h.as_str(), *r)))?;
    Ok(tx)
}

/// Postings rows (see `roster_db::postings`) from (key, rid) pairs sorted by key, then rid.
pub(crate) fn grouped_postings<K: rusqlite::ToSql + PartialEq>(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    pairs: impl Iterator<Item = (K, u32)>,
) -> Result<(), RosterDbError> {
    let mut key: Option<K> = None;
    let mut rids: Vec<i64> = Vec::with_capacity(POSTINGS_PER_ROW);
    for (k, r) in pairs {
        if key.as_ref() != Some(&k) {
            if let Some(done) = key.take() {
                postings(tx, table, std::iter::once((&done, rids.as_slice())))?;
            }
            rids.clear();
            key = Some(k);
        }
        rids.push(i64::from(r));
    }
    if let Some(done) = key {
        postings(tx, table, std::iter::once((&done, rids.as_slice())))?;
    }
    Ok(())
}

#[path = "roster_import_text.rs"]
mod text;
pub(crate) use text::write_text;
