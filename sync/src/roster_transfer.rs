//! Rosters over the mesh, sans-IO: the transferable form of a roster, the messages, and the
//! two sides' state machines. No I/O here: `kazashi-node` stores the chunks and carries the
//! bytes (`node::roster_fetch`, `node::roster_net`).
//!
//! **What travels.** Not a roster store's files (each laptop keeps its `roster.db` under its
//! own passphrase) but the canonical entry stream the pinned hash is computed over
//! ([`kazashi_domain::roster::RosterHasher`]): every entry postcard-encoded, in person-id order.
//! The stream is cut into *chunks* of whole entries, about [`CHUNK_TARGET`] bytes each; a chunk
//! is its entries one after another, each as a LEB128 length and the encoded entry. A
//! [`RosterIndex`] lists the kind, the total count and, per chunk, its SHA-256 and entry
//! count. Chunks are content-addressed: a receiver keeps them by hash, so a transfer cut off
//! half-way (a dropped connection, a killed process) resumes with the missing ones only.
//!
//! **Trust.** The roster is named by the hash the manifest pins, and only that hash is
//! trusted. The index may come from any member; a chunk is checked against the index as it
//! arrives (a mismatch is refused at once, and the peer that sent it should be dropped), and
//! once every chunk is in, [`Assembler`] recomputes the roster hash over the entries exactly as
//! received and compares it with the pin *before* anything is built from them. A wrong index
//! (or a wrong set of chunks that matches it) fails there, and everything is discarded.
//!
//! **Messages.** One request, one response, on one stream, many in flight: [`Request`]
//! (`Index` or `Chunk n` of a roster hash) and [`Response`] (the index, a chunk, or
//! `NotHeld` — this peer does not hold that roster). Every length is bounded before anything is
//! allocated ([`MAX_RESPONSE`], [`MAX_CHUNKS`]).

use kazashi_domain::ids::RosterHash;
use kazashi_domain::roster::{RosterEntry, RosterHasher, RosterKind};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// The roster protocol's ALPN (its own, beside the sync protocol's).
pub const ALPN: &[u8] = b"kazashi/roster/1";
/// A chunk is closed once it holds this many bytes or more.
pub const CHUNK_TARGET: usize = 256 * 1024;
/// The largest encoded entry accepted (a real one is a few hundred bytes).
pub const MAX_ENTRY: usize = 64 * 1024;
/// The largest chunk: the target plus one more entry, and its length.
pub const MAX_CHUNK: usize = CHUNK_TARGET + MAX_ENTRY + 16;
/// At most this many chunks in an index (16 GiB of roster: far beyond any municipality).
pub const MAX_CHUNKS: usize = 1 << 16;
/// The largest request on the wire.
pub const MAX_REQUEST: usize = 1 + 32 + 4;
/// The largest response on the wire (a chunk, or the largest index).
pub const MAX_RESPONSE: usize = {
    let index = 1 + INDEX_HEAD + MAX_CHUNKS * CHUNK_REF;
    let chunk = 1 + 4 + MAX_CHUNK;
    if index > chunk { index } else { chunk }
};

const INDEX_HEAD: usize = 1 + 8 + 4;
const CHUNK_REF: usize = 32 + 4;

/// One chunk as the index lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef {
    pub sha256: [u8; 32],
    pub entries: u32,
}

/// What a roster is made of: its kind, its entry count and its chunks in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterIndex {
    pub kind: RosterKind,
    pub total: u64,
    pub chunks: Vec<ChunkRef>,
}

/// Why bytes from a peer were refused; nothing was taken from them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("malformed roster message: {0}")]
    Malformed(&'static str),
    #[error("the roster index is not consistent: {0}")]
    BadIndex(&'static str),
    #[error("chunk {0} does not match its hash in the index")]
    BadChunk(u32),
    #[error("chunk {0} is not in the index")]
    NoSuchChunk(u32),
    #[error("a response came that was not asked for")]
    Unasked,
    #[error("the roster is damaged: {0}")]
    Damaged(String),
    #[error("the roster received hashes to {found}, not to the pinned {pinned}: it was discarded")]
    WrongHash { found: String, pinned: String },
}

fn kind_code(k: RosterKind) -> u8 {
    match k {
        RosterKind::Residents => 0,
        RosterKind::Voters => 1,
    }
}

/// A bounded reader over untrusted bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TransferError> {
        if self.0.len() < n {
            return Err(TransferError::Malformed("too short"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, TransferError> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }
    fn u32(&mut self) -> Result<u32, TransferError> {
        let b: [u8; 4] = self
            .take(4)?
            .try_into()
            .map_err(|_| TransferError::Malformed("too short"))?;
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&mut self) -> Result<u64, TransferError> {
        let b: [u8; 8] = self
            .take(8)?
            .try_into()
            .map_err(|_| TransferError::Malformed("too short"))?;
        Ok(u64::from_le_bytes(b))
    }
    fn hash(&mut self) -> Result<[u8; 32], TransferError> {
        self.take(32)?
            .try_into()
            .map_err(|_| TransferError::Malformed("too short"))
    }
    fn end(&self) -> Result<(), TransferError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(TransferError::Malformed("trailing bytes"))
        }
    }
}

impl RosterIndex {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(INDEX_HEAD + self.chunks.len() * CHUNK_REF);
        out.push(kind_code(self.kind));
        out.extend_from_slice(&self.total.to_le_bytes());
        out.extend_from_slice(&(self.chunks.len() as u32).to_le_bytes());
        for c in &self.chunks {
            out.extend_from_slice(&c.sha256);
            out.extend_from_slice(&c.entries.to_le_bytes());
        }
        out
    }

    /// Read an index from a peer: bounded, and its counts add up.
    pub fn decode(bytes: &[u8]) -> Result<RosterIndex, TransferError> {
        let mut r = Reader(bytes);
        let kind = match r.u8()? {
            0 => RosterKind::Residents,
            1 => RosterKind::Voters,
            _ => return Err(TransferError::BadIndex("unknown kind")),
        };
        let total = r.u64()?;
        let n = r.u32()? as usize;
        if n > MAX_CHUNKS {
            return Err(TransferError::BadIndex("too many chunks"));
        }
        if r.0.len() != n * CHUNK_REF {
            return Err(TransferError::Malformed("index length"));
        }
        let mut chunks = Vec::with_capacity(n);
        for _ in 0..n {
            let sha256 = r.hash()?;
            let entries = r.u32()?;
            if entries == 0 {
                return Err(TransferError::BadIndex("an empty chunk"));
            }
            chunks.push(ChunkRef { sha256, entries });
        }
        r.end()?;
        let sum: u64 = chunks.iter().map(|c| u64::from(c.entries)).sum();
        if sum != total {
            return Err(TransferError::BadIndex(
                "chunk counts do not add up to the total",
            ));
        }
        Ok(RosterIndex {
            kind,
            total,
            chunks,
        })
    }
}

/// Cuts a stream of encoded entries into chunks of whole entries.
#[derive(Debug)]
pub struct Chunker {
    kind: RosterKind,
    cur: Vec<u8>,
    cur_entries: u32,
    total: u64,
    chunks: Vec<ChunkRef>,
}

impl Chunker {
    pub fn new(kind: RosterKind) -> Self {
        Chunker {
            kind,
            cur: Vec::with_capacity(CHUNK_TARGET + 1024),
            cur_entries: 0,
            total: 0,
            chunks: Vec::new(),
        }
    }

    /// Add the next entry as postcard encodes it; returns the chunk it closed, if any.
    pub fn push(&mut self, encoded: &[u8]) -> Option<Vec<u8>> {
        crate::wire::put_bytes(&mut self.cur, encoded);
        self.cur_entries += 1;
        self.total += 1;
        (self.cur.len() >= CHUNK_TARGET).then(|| self.close())
    }

    fn close(&mut self) -> Vec<u8> {
        let chunk = std::mem::replace(&mut self.cur, Vec::with_capacity(CHUNK_TARGET + 1024));
        self.chunks.push(ChunkRef {
            sha256: Sha256::digest(&chunk).into(),
            entries: self.cur_entries,
        });
        self.cur_entries = 0;
        chunk
    }

    /// The last chunk (if any entries are left) and the index.
    pub fn finish(mut self) -> (Option<Vec<u8>>, RosterIndex) {
        let last = (self.cur_entries > 0).then(|| self.close());
        let index = RosterIndex {
            kind: self.kind,
            total: self.total,
            chunks: self.chunks,
        };
        (last, index)
    }
}

/// The encoded entries of a chunk, in order; an error if it is not a chunk.
pub fn chunk_entries(chunk: &[u8]) -> impl Iterator<Item = Result<&[u8], TransferError>> {
    let mut rest = chunk;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut len: u64 = 0;
        let mut shift = 0u32;
        let mut used = 0usize;
        loop {
            let Some(&b) = rest.get(used) else {
                rest = &[];
                return Some(Err(TransferError::Malformed("a cut entry length")));
            };
            used += 1;
            len |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 28 {
                rest = &[];
                return Some(Err(TransferError::Malformed("an entry length too long")));
            }
        }
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > MAX_ENTRY || rest.len() - used < len {
            rest = &[];
            return Some(Err(TransferError::Malformed("an entry over its bounds")));
        }
        let (entry, tail) = rest.split_at(used + len);
        rest = tail;
        entry.get(used..).map(Ok)
    })
}

/// Encode one entry as the roster hash sees it.
pub fn encode_entry(e: &RosterEntry, buf: Vec<u8>) -> Vec<u8> {
    // Encoding plain data into a Vec cannot fail (`hash_entries` relies on the same).
    postcard::to_extend(e, buf).unwrap_or_default()
}

/// A request from the laptop that wants a roster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Index { roster: RosterHash },
    Chunk { roster: RosterHash, n: u32 },
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_REQUEST);
        match self {
            Request::Index { roster } => {
                out.push(1);
                out.extend_from_slice(&roster.0);
            }
            Request::Chunk { roster, n } => {
                out.push(2);
                out.extend_from_slice(&roster.0);
                out.extend_from_slice(&n.to_le_bytes());
            }
        }
        out
    }
    pub fn decode(bytes: &[u8]) -> Result<Request, TransferError> {
        let mut r = Reader(bytes);
        let req = match r.u8()? {
            1 => Request::Index {
                roster: RosterHash(r.hash()?),
            },
            2 => Request::Chunk {
                roster: RosterHash(r.hash()?),
                n: r.u32()?,
            },
            _ => return Err(TransferError::Malformed("unknown request")),
        };
        r.end()?;
        Ok(req)
    }
}

/// A response, in the order of the requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Index(RosterIndex),
    Chunk {
        n: u32,
        bytes: Vec<u8>,
    },
    /// This peer does not hold the roster asked for (or no such chunk).
    NotHeld,
}

impl Response {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Response::Index(i) => {
                let mut out = vec![1];
                out.extend_from_slice(&i.encode());
                out
            }
            Response::Chunk { n, bytes } => {
                let mut out = Vec::with_capacity(5 + bytes.len());
                out.push(2);
                out.extend_from_slice(&n.to_le_bytes());
                out.extend_from_slice(bytes);
                out
            }
            Response::NotHeld => vec![3],
        }
    }
    pub fn decode(bytes: &[u8]) -> Result<Response, TransferError> {
        if bytes.len() > MAX_RESPONSE {
            return Err(TransferError::Malformed("response over the limit"));
        }
        let mut r = Reader(bytes);
        match r.u8()? {
            1 => Ok(Response::Index(RosterIndex::decode(r.0)?)),
            2 => {
                let n = r.u32()?;
                if r.0.len() > MAX_CHUNK {
                    return Err(TransferError::Malformed("chunk over the limit"));
                }
                Ok(Response::Chunk {
                    n,
                    bytes: r.0.to_vec(),
                })
            }
            3 => {
                r.end()?;
                Ok(Response::NotHeld)
            }
            _ => Err(TransferError::Malformed("unknown response")),
        }
    }
}

/// Add one encoded entry to a chunk being made, as [`Chunker`] lays it out (for a server that
/// reads the encoded entries back from where it keeps them).
pub fn push_entry(chunk: &mut Vec<u8>, encoded: &[u8]) {
    crate::wire::put_bytes(chunk, encoded);
}

/// The serving side: a roster this laptop holds, its index and where each chunk starts.
#[derive(Debug, Clone)]
pub struct Served {
    pub hash: RosterHash,
    pub index: RosterIndex,
    /// Where each chunk's first entry is read back from: its position in memory, or whatever
    /// place the server's storage gave it ([`Cutter::push`]).
    starts: Vec<u64>,
}

/// Cuts a roster's index from its encoded entries as they stream past, in person-id order,
/// holding one chunk at a time: the same chunks, with the same hashes, as [`Served::new`]
/// cuts from the same roster in memory. Each entry comes with the place it is read back from
/// (a position, a row number: anything ascending the server's storage understands), and the
/// roster hash is recomputed over the same bytes, so a server cuts an index only from a stream
/// that gives the hash it serves under.
pub struct Cutter {
    chunker: Chunker,
    hasher: RosterHasher,
    starts: Vec<u64>,
    /// Whether the chunk being filled has its start recorded.
    open: bool,
}

impl std::fmt::Debug for Cutter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cutter({} entries)", self.chunker.total)
    }
}

impl Cutter {
    pub fn new(kind: RosterKind) -> Self {
        Cutter {
            chunker: Chunker::new(kind),
            hasher: RosterHasher::new(kind),
            starts: Vec::new(),
            open: false,
        }
    }

    /// The next entry, as postcard encodes it (the bytes the roster hash is computed over),
    /// read back later from `at`.
    pub fn push(&mut self, at: u64, encoded: &[u8]) {
        if !self.open {
            self.starts.push(at);
            self.open = true;
        }
        self.hasher.entry(encoded);
        if self.chunker.push(encoded).is_some() {
            self.open = false;
        }
    }

    /// Entries pushed so far.
    pub fn count(&self) -> u64 {
        self.chunker.total
    }

    /// The serving side of the roster named `hash`, and the hash the entries pushed give (the
    /// caller compares the two: [`Served::new`] does not).
    pub fn finish(self, hash: RosterHash) -> (Served, RosterHash) {
        let found = self.hasher.finish();
        let (_, index) = self.chunker.finish();
        let mut starts = self.starts;
        starts.truncate(index.chunks.len());
        (
            Served {
                hash,
                index,
                starts,
            },
            found,
        )
    }
}

impl Served {
    /// Cut `entries` (a roster's, in person-id order) into chunks; `hash` is the roster's.
    pub fn new(hash: RosterHash, kind: RosterKind, entries: &[RosterEntry]) -> Served {
        let mut cutter = Cutter::new(kind);
        let mut buf = Vec::with_capacity(512);
        for (i, e) in (0u64..).zip(entries) {
            buf.clear();
            buf = encode_entry(e, std::mem::take(&mut buf));
            cutter.push(i, &buf);
        }
        cutter.finish(hash).0
    }

    /// Where chunk `n`'s first entry is read back from, and how many entries it holds.
    pub fn place(&self, n: u32) -> Option<(u64, u32)> {
        let start = *self.starts.get(n as usize)?;
        let count = self.index.chunks.get(n as usize)?.entries;
        Some((start, count))
    }

    /// Chunk `n` of `entries` (the ones this was made from).
    pub fn chunk(&self, n: u32, entries: &[RosterEntry]) -> Option<Vec<u8>> {
        let (start, count) = self.place(n)?;
        chunk_of(entries, start, count)
    }

    /// The answer to `req`, from `entries`.
    pub fn respond(&self, req: &Request, entries: &[RosterEntry]) -> Response {
        self.respond_with(req, &mut |start, count| chunk_of(entries, start, count))
    }

    /// The answer to `req`, a chunk made by `read(start, count)` (its entries, laid out with
    /// [`push_entry`]). A chunk read back that does not match its hash in the index (storage
    /// changed under it, or failed) is not sent: the answer is [`Response::NotHeld`].
    pub fn respond_with(
        &self,
        req: &Request,
        read: &mut dyn FnMut(u64, u32) -> Option<Vec<u8>>,
    ) -> Response {
        match req {
            Request::Index { roster } if *roster == self.hash => {
                Response::Index(self.index.clone())
            }
            Request::Chunk { roster, n } if *roster == self.hash => {
                let (Some((start, count)), Some(c)) =
                    (self.place(*n), self.index.chunks.get(*n as usize))
                else {
                    return Response::NotHeld;
                };
                match read(start, count) {
                    Some(bytes) if <[u8; 32]>::from(Sha256::digest(&bytes)) == c.sha256 => {
                        Response::Chunk { n: *n, bytes }
                    }
                    _ => Response::NotHeld,
                }
            }
            _ => Response::NotHeld,
        }
    }
}

/// What a response gave the requester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    /// The index: these many chunks are still missing.
    Index { missing: usize },
    /// A chunk checked against the index: store it under its hash.
    Chunk { n: u32, sha256: [u8; 32] },
    /// A chunk already held: nothing to do.
    Duplicate,
    /// The peer does not hold this roster: ask another.
    NotHeld,
}

/// The requesting side of one roster transfer: what is held, what to ask next.
#[derive(Debug, Clone)]
pub struct Fetch {
    pinned: RosterHash,
    index: Option<RosterIndex>,
    /// Hashes of the chunks stored (from an earlier, cut-off run too).
    stored: BTreeSet<[u8; 32]>,
    /// Chunk numbers asked for and not yet answered.
    asked: BTreeSet<u32>,
    index_asked: bool,
    /// Chunks received in this run.
    received: u64,
}

impl Fetch {
    /// A transfer of the roster `pinned`, with the chunks already `stored`.
    pub fn new(pinned: RosterHash, stored: impl IntoIterator<Item = [u8; 32]>) -> Fetch {
        Fetch {
            pinned,
            index: None,
            stored: stored.into_iter().collect(),
            asked: BTreeSet::new(),
            index_asked: false,
            received: 0,
        }
    }

    pub fn pinned(&self) -> RosterHash {
        self.pinned
    }
    pub fn index(&self) -> Option<&RosterIndex> {
        self.index.as_ref()
    }
    /// Chunks received in this run (not those found stored).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// (chunks held, chunks in the index), once the index is known.
    pub fn progress(&self) -> Option<(usize, usize)> {
        let i = self.index.as_ref()?;
        let held = i
            .chunks
            .iter()
            .filter(|c| self.stored.contains(&c.sha256))
            .count();
        Some((held, i.chunks.len()))
    }

    pub fn is_complete(&self) -> bool {
        self.progress().is_some_and(|(h, t)| h == t)
    }

    /// The next requests, keeping at most `window` chunks asked for and unanswered.
    pub fn next_requests(&mut self, window: usize) -> Vec<Request> {
        let roster = self.pinned;
        let Some(index) = &self.index else {
            if self.index_asked {
                return Vec::new();
            }
            self.index_asked = true;
            return vec![Request::Index { roster }];
        };
        let mut out = Vec::new();
        for (n, c) in (0u32..).zip(&index.chunks) {
            if self.asked.len() >= window {
                break;
            }
            if !self.stored.contains(&c.sha256) && !self.asked.contains(&n) {
                self.asked.insert(n);
                out.push(Request::Chunk { roster, n });
            }
        }
        out
    }

    /// The connection it was asking on is gone: ask again elsewhere. The index is forgotten
    /// too: each peer is asked for its own, so that every chunk is checked against the index
    /// of the peer that sent it, and a chunk that does not match is that peer's fault alone.
    /// Chunks held stay (they are named by their hash).
    pub fn lost_peer(&mut self) {
        self.asked.clear();
        self.index_asked = false;
        self.index = None;
    }

    /// Take one response. An error means the peer sent something wrong: drop it (and
    /// [`Fetch::lost_peer`]); nothing was taken.
    pub fn on_response(&mut self, r: &Response) -> Result<Got, TransferError> {
        match r {
            Response::NotHeld => Ok(Got::NotHeld),
            Response::Index(index) => {
                if !self.index_asked || self.index.is_some() {
                    return Err(TransferError::Unasked);
                }
                self.index = Some(index.clone());
                let (held, total) = self.progress().unwrap_or((0, 0));
                Ok(Got::Index {
                    missing: total - held,
                })
            }
            Response::Chunk { n, bytes } => {
                let Some(index) = &self.index else {
                    return Err(TransferError::Unasked);
                };
                let c = index
                    .chunks
                    .get(*n as usize)
                    .ok_or(TransferError::NoSuchChunk(*n))?;
                if !self.asked.remove(n) {
                    return Err(TransferError::Unasked);
                }
                let sha256: [u8; 32] = Sha256::digest(bytes).into();
                if sha256 != c.sha256 {
                    return Err(TransferError::BadChunk(*n));
                }
                if !self.stored.insert(sha256) {
                    return Ok(Got::Duplicate);
                }
                self.received += 1;
                Ok(Got::Chunk { n: *n, sha256 })
            }
        }
    }

    /// Forget the stored chunks (they were discarded) and the index, to start over.
    pub fn restart(&mut self) {
        self.stored.clear();
        self.asked.clear();
        self.index = None;
        self.index_asked = false;
    }
}

/// The entries of a complete transfer, chunk by chunk in index order, checked against the
/// index and, at the end, against the pinned hash.
pub struct Assembler {
    pinned: RosterHash,
    index: RosterIndex,
    hasher: RosterHasher,
    next: usize,
    /// The last entry's person (the order check).
    last: Option<kazashi_domain::ids::PersonId>,
    entries: Vec<RosterEntry>,
}

impl std::fmt::Debug for Assembler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Assembler(chunk {} of {})",
            self.next,
            self.index.chunks.len()
        )
    }
}

impl Assembler {
    pub fn new(pinned: RosterHash, index: RosterIndex) -> Assembler {
        // No room reserved from the index's counts: they are a peer's word until the hash
        // checks out, and a false one must not make this laptop allocate gigabytes.
        Assembler {
            pinned,
            hasher: RosterHasher::new(index.kind),
            next: 0,
            last: None,
            entries: Vec::new(),
            index,
        }
    }

    /// The next chunk in order (its hash is checked again: the store may have lost it); its
    /// entries are kept for [`Assembler::finish`].
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), TransferError> {
        let mut entries = std::mem::take(&mut self.entries);
        let fed = self.feed_with(chunk, &mut |_, e| entries.push(e));
        self.entries = entries;
        fed
    }

    /// The next chunk in order, each entry handed to `f` (its encoding, as hashed, and the
    /// entry) instead of kept: a receiver writing the roster out as it goes holds no more than
    /// a chunk. Nothing handed over may be used before [`Assembler::check`] passes.
    pub fn feed_with(
        &mut self,
        chunk: &[u8],
        f: &mut dyn FnMut(&[u8], RosterEntry),
    ) -> Result<(), TransferError> {
        let n = u32::try_from(self.next).unwrap_or(u32::MAX);
        let c = self
            .index
            .chunks
            .get(self.next)
            .ok_or(TransferError::NoSuchChunk(n))?;
        if <[u8; 32]>::from(Sha256::digest(chunk)) != c.sha256 {
            return Err(TransferError::BadChunk(n));
        }
        let mut count = 0u32;
        for e in chunk_entries(chunk) {
            let e = e?;
            self.hasher.entry(e);
            let entry: RosterEntry =
                postcard::from_bytes(e).map_err(|x| TransferError::Damaged(x.to_string()))?;
            if self.last.is_some_and(|prev| prev >= entry.person) {
                return Err(TransferError::Damaged(
                    "entries out of person-id order".into(),
                ));
            }
            self.last = Some(entry.person);
            f(e, entry);
            count += 1;
        }
        if count != c.entries {
            return Err(TransferError::BadIndex("a chunk's entry count"));
        }
        self.next += 1;
        Ok(())
    }

    /// Every chunk is in and the entries give the pinned hash: the kind of the roster.
    pub fn check(self) -> Result<RosterKind, TransferError> {
        if self.next != self.index.chunks.len() {
            return Err(TransferError::Damaged("chunks are missing".into()));
        }
        let found = self.hasher.finish();
        if found != self.pinned {
            return Err(TransferError::WrongHash {
                found: found.to_hex(),
                pinned: self.pinned.to_hex(),
            });
        }
        Ok(self.index.kind)
    }

    /// The entries, once every chunk is in and the hash is the pinned one.
    pub fn finish(mut self) -> Result<(RosterKind, Vec<RosterEntry>), TransferError> {
        let entries = std::mem::take(&mut self.entries);
        let kind = self.check()?;
        Ok((kind, entries))
    }
}

#[cfg(test)]
#[path = "roster_transfer_tests.rs"]
mod tests;

/// The chunk of `count` entries of `entries` from `start`, encoded as sent.
fn chunk_of(entries: &[RosterEntry], start: u64, count: u32) -> Option<Vec<u8>> {
    let start = usize::try_from(start).ok()?;
    let mut out = Vec::with_capacity(CHUNK_TARGET + 1024);
    let mut buf = Vec::with_capacity(512);
    for e in entries.get(start..start.checked_add(count as usize)?)? {
        buf.clear();
        buf = encode_entry(e, std::mem::take(&mut buf));
        push_entry(&mut out, &buf);
    }
    Some(out)
}
