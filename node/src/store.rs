//! The node's store: one SQLite file, encrypted with SQLCipher, in WAL mode with full sync.
//!
//! **Key.** The database is keyed by a random data key, kept only wrapped under Argon2id of the
//! operator's passphrase in `<file>.kdf` beside it (`crate::store_key`: format 2; a store made
//! before issue 24, keyed by the Argon2id output itself, is copied under a fresh data key on its
//! first open, crash-safely: see `crate::store_key`, migration). Without the `.kdf` the
//! database cannot be opened (back up both); destroying it is the purge's crypto-shredding
//! (`crate::purge`). The key goes to SQLCipher as a raw key, so SQLCipher's own PBKDF2 is not
//! run again, and is wiped from memory after use. A wrong passphrase is told apart from a
//! damaged file: SQLCipher says "file is not a database" for both, so the `.kdf` also holds a
//! key check (SHA-256 of a tag and the passphrase key), compared before the database is
//! touched. A passphrase that fails it is wrong; a file that then fails to decrypt is damaged
//! ([`StoreError::DamagedFile`], which says what to do). A format-1 `.kdf` written before the
//! check existed gets it on the first open that succeeds.
//!
//! **Full disk.** SQLite's "database or disk is full", and an I/O error of a full disk, are
//! [`StoreError::DiskFull`]: the write is refused whole (its transaction rolled back), nothing
//! committed before is lost, and writes succeed again once space is freed.
//!
//! **Contents.**
//! - `meta`: schema version, this device's secret key, the manifest in force.
//! - `shard_chunk`: each shard's Automerge bytes — incremental saves appended in the same
//!   transaction as the events they carry, compacted into one full save from time to time.
//!   These documents are the log itself (about 110 bytes an event, signature included).
//! - `shard`: each shard's heads digest (so the catalog needs no document loaded) and event
//!   count.
//! - `event_cache`: the events' content without envelopes, zstd-compressed a block per shard
//!   (one small row per write until the shard is compacted). The cold start folds state from
//!   it instead of loading every Automerge document; it is derived data, checked against the
//!   shard counts and rebuilt from the documents if lost. The folded state in memory is the
//!   index (person, site, kind, time) the views and the detector query.
//! - `quarantine`: refused envelopes and messages, with the reason, for audit.
//! - `roster_chunk` (schema 2): chunks of a roster being received over the mesh, keyed by
//!   their SHA-256, with the pinned hash of the roster they belong to (`node::roster_fetch`);
//!   kept so that a cut transfer resumes, deleted once it is built or abandoned.
//!
//! A write returns only once committed with a full fsync (`synchronous = FULL`): a pulled plug
//! loses nothing that was acknowledged.

use kazashi_domain::{Event, Millis};
use kazashi_sync::{DeviceKey, ShardId};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

pub use crate::store_key::KdfParams;
use crate::store_key::KeyError;

#[path = "store_batch.rs"]
mod store_batch;
pub use store_batch::ShardAppend;

const SCHEMA_VERSION: i64 = 2;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store {0} already exists")]
    Exists(PathBuf),
    #[error("no store at {0}")]
    Missing(PathBuf),
    #[error("the key file {0} is missing or damaged: {1}")]
    KdfFile(PathBuf, String),
    #[error("wrong passphrase (or the store is not a Kazashi store)")]
    WrongPassphrase,
    /// The passphrase is right (it passed the key check) but the file does not decrypt or
    /// read: damage, not a typing mistake.
    #[error(
        "{0} is damaged: the passphrase is right, but the file cannot be read. The log is not \
         lost with it: the deployment's other laptops and the bundles hold it. Move the damaged \
         file aside, enrol this laptop again and sync with a peer (or import the latest \
         bundles); a roster store is imported again from its file"
    )]
    DamagedFile(String),
    /// The disk is full: the write was refused whole, nothing saved before is lost.
    #[error(
        "the disk is full: this was not saved, and nothing more can be saved until space is \
         freed on the disk that holds the store (everything saved before is kept)"
    )]
    DiskFull,
    #[error("the store was written by a newer Kazashi (schema {0})")]
    NewerSchema(i64),
    #[error("key derivation failed: {0}")]
    Kdf(String),
    #[error("no operating-system randomness: {0}")]
    Random(String),
    #[error("file: {0}")]
    Io(std::io::Error),
    #[error("database: {0}")]
    Sql(rusqlite::Error),
    #[error("database value: {0}")]
    Value(#[from] rusqlite::types::FromSqlError),
    #[error("stored data is damaged: {0}")]
    Damaged(String),
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) {
            StoreError::DiskFull
        } else {
            StoreError::Io(e)
        }
    }
}

impl From<KeyError> for StoreError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::File(path, why) => StoreError::KdfFile(path, why),
            KeyError::WrongPassphrase => StoreError::WrongPassphrase,
            KeyError::Kdf(why) => StoreError::Kdf(why),
            KeyError::Random(why) => StoreError::Random(why),
            KeyError::Io(e) => e.into(),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::DiskFull,
            // Past the key check and page 1 (`keyed`), a page that does not decrypt or parse.
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
                StoreError::DamagedFile(format!("the store ({e})"))
            }
            _ => StoreError::Sql(e),
        }
    }
}

/// The most bytes of one refusal the quarantine keeps.
pub const QUARANTINE_ITEM_MAX: usize = 1 << 20;
/// The most bytes the quarantine keeps in all; the oldest refusals go first.
pub const QUARANTINE_TOTAL_MAX: u64 = 32 << 20;
/// The most refusals the quarantine keeps (tiny junk frames would otherwise make a long table).
pub const QUARANTINE_ROWS_MAX: u64 = 10_000;
const META_QUARANTINE_DROPPED: &str = "quarantine_dropped";
/// The quarantine's running size (bytes, rows), kept with each insert so that keeping a refusal
/// costs the same however many are kept (a sum over the table at each refusal made a hostile
/// peer's junk slower to refuse the more it sent).
const META_QUARANTINE_SIZE: &str = "quarantine_size";

/// A refused envelope or message, kept for audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub received_ms: Millis,
    /// Where it came from ("peer 3fa2…", "usb bundle …").
    pub source: String,
    /// A stable code (see `Rejection::code`).
    pub code: String,
    pub reason: String,
    pub bytes: Vec<u8>,
}

/// One row of a table as [`Store::raw_tables`] reads it: each column's bytes.
pub type RawRow = Vec<Vec<u8>>;

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.path.display())
    }
}

pub(crate) use crate::store_key::kdf_path;

/// Fill a buffer from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(b)
}

/// Write `bytes` to `path` whole or not at all: a temporary file beside it, synced, renamed
/// over `path`, and the folder synced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), std::io::Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    // The rename is durable only once the folder is.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Create an encrypted SQLite file at `path` (which must not exist): a fresh salt in
/// `<file>.kdf`, the key derived from `passphrase` with Argon2id. Shared by the node's store
/// and the roster store.
pub(crate) fn create_encrypted(
    path: &Path,
    passphrase: &str,
    params: KdfParams,
) -> Result<Connection, StoreError> {
    create_keyed(path, passphrase, params).map(|(c, _)| c)
}

/// [`create_encrypted`], and the key.
fn create_keyed(
    path: &Path,
    passphrase: &str,
    params: KdfParams,
) -> Result<(Connection, Zeroizing<[u8; 32]>), StoreError> {
    if path.exists() {
        return Err(StoreError::Exists(path.to_owned()));
    }
    // The key file is written whole and synced before the database exists.
    let key = crate::store_key::create(&kdf_path(path), passphrase, params)?;
    Ok((keyed(open_file(path)?, &key, Checked::Yes(path))?, key))
}

/// [`create_encrypted`] for a store of two files written at once: `second` (which must not
/// exist) is keyed like `path` and has no `.kdf` of its own; [`open_encrypted_pair`] reads it
/// back attached.
pub(crate) fn create_encrypted_pair(
    path: &Path,
    second: &Path,
    passphrase: &str,
    params: KdfParams,
) -> Result<(Connection, Connection), StoreError> {
    if second.exists() {
        return Err(StoreError::Exists(second.to_owned()));
    }
    let (main, key) = create_keyed(path, passphrase, params)?;
    let other = keyed(open_file(second)?, &key, Checked::Yes(second))?;
    Ok((main, other))
}

/// [`create_encrypted_pair`] with more files keyed alike (an import's staging file besides).
pub(crate) fn create_encrypted_set(
    path: &Path,
    others: &[&Path],
    passphrase: &str,
    params: KdfParams,
) -> Result<(Connection, Vec<Connection>), StoreError> {
    if let Some(o) = others.iter().find(|o| o.exists()) {
        return Err(StoreError::Exists(o.to_path_buf()));
    }
    let (main, key) = create_keyed(path, passphrase, params)?;
    let mut conns = Vec::with_capacity(others.len());
    for o in others {
        conns.push(keyed(open_file(o)?, &key, Checked::Yes(o))?);
    }
    Ok((main, conns))
}

/// Open a pair made by [`create_encrypted_pair`]: `second` attached to the first as `schema`.
pub(crate) fn open_encrypted_pair(
    path: &Path,
    second: &Path,
    schema: &str,
    passphrase: &str,
) -> Result<Connection, StoreError> {
    if !second.exists() {
        return Err(StoreError::Missing(second.to_owned()));
    }
    let (conn, key) = open_keyed(path, passphrase)?;
    let raw = raw_key(&key);
    let name = second
        .to_str()
        .ok_or_else(|| StoreError::Missing(second.to_owned()))?;
    // Attaching reads the file's page 1, and so does the first query: a file keyed otherwise
    // (from another store, or damaged) fails at one of them.
    let attached = conn
        .execute(
            &format!("ATTACH DATABASE ?1 AS {schema} KEY ?2"),
            rusqlite::params![name, raw.as_str()],
        )
        .and_then(|_| {
            conn.query_row(
                &format!("SELECT count(*) FROM {schema}.sqlite_master"),
                [],
                |r| r.get::<_, i64>(0),
            )
        });
    match attached {
        Ok(_) => Ok(conn),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::NotADatabase =>
        {
            Err(StoreError::Damaged(format!(
                "{} does not belong to this store (it is from another import, or damaged)",
                second.display()
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether the key given to [`keyed`] is known to be right.
enum Checked<'a> {
    /// Confirmed by the key check (or a new file): a file that does not decrypt is damaged.
    Yes(&'a Path),
    /// No key check to go by: "not a database" may be either.
    Unknown,
}

/// Open an encrypted SQLite file made by [`create_encrypted`].
pub(crate) fn open_encrypted(path: &Path, passphrase: &str) -> Result<Connection, StoreError> {
    open_keyed(path, passphrase).map(|(c, _)| c)
}

/// [`open_encrypted`], and the key.
fn open_keyed(
    path: &Path,
    passphrase: &str,
) -> Result<(Connection, Zeroizing<[u8; 32]>), StoreError> {
    if !path.exists() {
        return Err(StoreError::Missing(path.to_owned()));
    }
    let kdf = kdf_path(path);
    let (key, checked) = crate::store_key::open(&kdf, passphrase)?;
    sqlcipher_ready()?;
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let conn = keyed(
        conn,
        &key,
        if checked {
            Checked::Yes(path)
        } else {
            Checked::Unknown
        },
    )?;
    if !checked {
        crate::store_key::add_key_check(&kdf, &key);
    }
    Ok((conn, key))
}

/// SQLCipher sets itself up (`sqlcipher_extra_init`) after SQLite marks itself initialised,
/// outside SQLite's lock: a connection keyed on one thread while the process's first
/// connection is still being opened on another fails with "An error occurred with PRAGMA key"
/// (the log says "sqlcipher not initialized"; seen in CI with stores opened on parallel test
/// threads), and a connection opened in that gap never gets `sqlcipher_export` (registered
/// last, for connections opened after), which the move to a data key needs. So before a
/// process's first store connection is opened, a throwaway in-memory connection is keyed and
/// must know `sqlcipher_export`, tried again until both hold; once they do, SQLCipher stays
/// set up for the life of the process. Every store connection is opened after this.
fn sqlcipher_ready() -> Result<(), StoreError> {
    static READY: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if READY.get().is_some() {
        return Ok(());
    }
    // The other thread's setup is short (a heap, the provider, a few random bytes); two
    // seconds of tries is far more than it ever needs. The last try's error is the answer.
    let mut tries = 2000;
    loop {
        let probe = Connection::open_in_memory()?;
        let _ = probe.pragma_update(None, "cipher_log_level", "NONE");
        let ready = probe
            .pragma_update(None, "key", raw_key(&[0; 32]).as_str())
            .and_then(|()| probe.prepare("SELECT sqlcipher_export('main')").map(drop));
        match ready {
            Ok(()) => {
                let _ = READY.set(());
                return Ok(());
            }
            Err(e) if tries <= 1 => return Err(e.into()),
            Err(_) => tries -= 1,
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// A store's file opened as a connection, once SQLCipher is ready ([`sqlcipher_ready`]).
fn open_file(path: &Path) -> Result<Connection, StoreError> {
    sqlcipher_ready()?;
    Ok(Connection::open(path)?)
}

/// A raw key as SQLCipher takes it (`x'…'`: no key derivation of its own).
fn raw_key(key: &[u8; 32]) -> Zeroizing<String> {
    Zeroizing::new(format!("x'{}'", hex::encode(key)))
}

fn keyed(conn: Connection, key: &[u8; 32], checked: Checked<'_>) -> Result<Connection, StoreError> {
    // A wrong key is reported as an error here; SQLCipher need not also print it.
    let _ = conn.pragma_update(None, "cipher_log_level", "NONE");
    let pragma = raw_key(key);
    conn.pragma_update(None, "key", pragma.as_str())?;
    // The first read decrypts page 1: a wrong key fails here.
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => Ok(conn),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if matches!(
                e.code,
                rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt
            ) =>
        {
            match checked {
                Checked::Yes(path) => Err(StoreError::DamagedFile(path.display().to_string())),
                Checked::Unknown => Err(StoreError::WrongPassphrase),
            }
        }
        Err(e) => Err(e.into()),
    }
}

impl Store {
    /// Create a new store at `path` (which must not exist), keyed by `passphrase`.
    pub fn create(path: &Path, passphrase: &str, params: KdfParams) -> Result<Store, StoreError> {
        let conn = create_encrypted(path, passphrase, params)?;
        let store = Store::with_pragmas(conn, path)?;
        store.migrate()?;
        Ok(store)
    }

    /// Open an existing store. A store keyed the first way (by the passphrase's Argon2id
    /// output) is moved to a random data key first (`crate::store_key`, migration); one whose
    /// move was cut short is settled before it is opened.
    pub fn open(path: &Path, passphrase: &str) -> Result<Store, StoreError> {
        crate::store_key::settle_rekey(path)?;
        let store = Store::open_as_is(path, passphrase)?;
        if crate::store_key::is_first_format(path) {
            return store.move_to_data_key(passphrase);
        }
        Ok(store)
    }

    fn open_as_is(path: &Path, passphrase: &str) -> Result<Store, StoreError> {
        let conn = open_encrypted(path, passphrase)?;
        let store = Store::with_pragmas(conn, path)?;
        store.migrate()?;
        Ok(store)
    }

    /// The migration of a first-format store (see `crate::store_key`): copied under a fresh
    /// data key to `<file>.rekey` and synced, the new key file written to `<file>.kdf.next`,
    /// the store closed, both renamed into place; then opened again.
    fn move_to_data_key(self, passphrase: &str) -> Result<Store, StoreError> {
        let path = self.path.clone();
        let (rekey, _) = crate::store_key::rekey_paths(&path);
        self.checkpoint()?;
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        match std::fs::remove_file(&rekey) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        // The connection may not create files: the copy starts as an empty file (an empty
        // database to SQLite).
        std::fs::File::create(&rekey)?;
        let dek = crate::store_key::fresh_data_key()?;
        let name = rekey
            .to_str()
            .ok_or_else(|| StoreError::Missing(rekey.clone()))?;
        let raw = raw_key(&dek);
        self.conn.execute(
            "ATTACH DATABASE ?1 AS rekey KEY ?2",
            params![name, raw.as_str()],
        )?;
        self.conn
            .query_row("SELECT sqlcipher_export('rekey')", [], |_| Ok(()))?;
        self.conn
            .execute_batch(&format!("PRAGMA rekey.user_version = {version}"))?;
        self.conn.execute_batch("DETACH DATABASE rekey")?;
        std::fs::File::open(&rekey)?.sync_all()?;
        crate::store_key::write_next(&path, passphrase, dek)?;
        drop(self);
        crate::store_key::finish_rekey(&path)?;
        Store::open_as_is(&path, passphrase)
    }

    #[cfg(test)]
    pub(crate) fn conn_for_tests(&self) -> &Connection {
        &self.conn
    }

    /// A store keyed the first way (by the Argon2id output of the passphrase), as Kazashi made
    /// them before issue 24: for the migration's tests.
    #[cfg(test)]
    pub(crate) fn create_first_format(path: &Path, passphrase: &str) -> Result<Store, StoreError> {
        let key = crate::store_key::create_first_format(
            &kdf_path(path),
            passphrase,
            KdfParams::FAST_INSECURE,
        )?;
        let conn = keyed(open_file(path)?, &key, Checked::Yes(path))?;
        let store = Store::with_pragmas(conn, path)?;
        store.migrate()?;
        Ok(store)
    }

    fn with_pragmas(conn: Connection, path: &Path) -> Result<Store, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Checkpoints belong to `Node::maintain`, off the write path; this bound only keeps
        // the WAL from growing without end if maintenance never runs.
        conn.pragma_update(None, "wal_autocheckpoint", 16384)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(Store {
            conn,
            path: path.to_owned(),
        })
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema(version));
        }
        if version == 0 {
            self.conn.execute_batch(
                "BEGIN;
                CREATE TABLE meta (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
                CREATE TABLE shard (
                    shard TEXT PRIMARY KEY,
                    heads BLOB NOT NULL,
                    chunks INTEGER NOT NULL DEFAULT 0,
                    events INTEGER NOT NULL DEFAULT 0
                ) WITHOUT ROWID;
                CREATE TABLE shard_chunk (
                    seq INTEGER PRIMARY KEY,
                    shard TEXT NOT NULL,
                    bytes BLOB NOT NULL
                );
                CREATE INDEX shard_chunk_by_shard ON shard_chunk (shard, seq);
                CREATE TABLE event_cache (
                    seq INTEGER PRIMARY KEY,
                    shard TEXT NOT NULL,
                    count INTEGER NOT NULL,
                    packed BLOB NOT NULL
                );
                CREATE INDEX event_cache_by_shard ON event_cache (shard, seq);
                CREATE TABLE quarantine (
                    seq INTEGER PRIMARY KEY,
                    received_ms INTEGER NOT NULL,
                    source TEXT NOT NULL,
                    code TEXT NOT NULL,
                    reason TEXT NOT NULL,
                    bytes BLOB NOT NULL
                );
                PRAGMA user_version = 1;
                COMMIT;",
            )?;
        }
        if version < 2 {
            self.conn.execute_batch(
                "BEGIN;
                CREATE TABLE roster_chunk (
                    hash BLOB PRIMARY KEY,
                    roster BLOB NOT NULL,
                    bytes BLOB NOT NULL
                );
                PRAGMA user_version = 2;
                COMMIT;",
            )?;
        }
        Ok(())
    }

    /// The hashes of the chunks of roster `roster` held (see `node::roster_fetch`).
    pub fn roster_chunks(&self, roster: &[u8; 32]) -> Result<Vec<[u8; 32]>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT hash FROM roster_chunk WHERE roster = ?1")?;
        let rows = st.query_map([&roster[..]], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for h in rows {
            out.push(
                h?.try_into()
                    .map_err(|_| StoreError::Damaged("a roster chunk's hash".into()))?,
            );
        }
        Ok(out)
    }

    /// Keep one received roster chunk (durably: a cut transfer resumes from here).
    pub fn put_roster_chunk(
        &self,
        roster: &[u8; 32],
        hash: &[u8; 32],
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO roster_chunk (hash, roster, bytes) VALUES (?1, ?2, ?3)",
            params![&hash[..], &roster[..], bytes],
        )?;
        Ok(())
    }

    /// One roster chunk by hash.
    pub fn roster_chunk(&self, hash: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT bytes FROM roster_chunk WHERE hash = ?1",
                [&hash[..]],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Delete the roster chunks of every roster but `keep` (all of them with `None`).
    pub fn drop_roster_chunks(&self, keep: Option<&[u8; 32]>) -> Result<usize, StoreError> {
        Ok(match keep {
            Some(k) => self
                .conn
                .execute("DELETE FROM roster_chunk WHERE roster != ?1", [&k[..]])?,
            None => self.conn.execute("DELETE FROM roster_chunk", [])?,
        })
    }

    /// `synchronous = OFF`: for simulated laptops only (see
    /// `Node::relax_durability_for_simulation`).
    pub fn relax_durability(&self) -> Result<(), StoreError> {
        self.conn.pragma_update(None, "synchronous", "OFF")?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A value kept in the encrypted store by key.
    pub fn get_meta(&self, k: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.meta(k)
    }

    fn meta(&self, k: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT v FROM meta WHERE k = ?1", [k], |r| r.get(0))
            .optional()?)
    }

    pub fn set_meta(&self, k: &str, v: &[u8]) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO meta (k, v) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            params![k, v],
        )?;
        Ok(())
    }

    /// Every row of every table, each column as bytes (text as UTF-8, integers as their
    /// decimal digits, NULL as nothing), by table name: what the file holds, for audits and
    /// the minimisation test (`tests/tests/card_minimise.rs`).
    pub fn raw_tables(&self) -> Result<Vec<(String, Vec<RawRow>)>, StoreError> {
        use rusqlite::types::ValueRef;
        let names: Vec<String> = {
            let mut st = self
                .conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?;
            st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
        };
        let mut out = Vec::new();
        for name in names {
            let mut st = self
                .conn
                .prepare(&format!("SELECT * FROM \"{}\"", name.replace('"', "\"\"")))?;
            let n = st.column_count();
            let mut rows = st.query([])?;
            let mut kept = Vec::new();
            while let Some(r) = rows.next()? {
                let mut cols = Vec::with_capacity(n);
                for i in 0..n {
                    cols.push(match r.get_ref(i)? {
                        ValueRef::Null => Vec::new(),
                        ValueRef::Integer(v) => v.to_string().into_bytes(),
                        ValueRef::Real(v) => v.to_string().into_bytes(),
                        ValueRef::Text(b) | ValueRef::Blob(b) => b.to_vec(),
                    });
                }
                kept.push(cols);
            }
            out.push((name, kept));
        }
        Ok(out)
    }

    /// Remove a value kept by key (nothing to do when there is none).
    pub fn delete_meta(&self, k: &str) -> Result<(), StoreError> {
        self.conn.execute("DELETE FROM meta WHERE k = ?1", [k])?;
        Ok(())
    }

    /// Set several values in one fully synced transaction (all or none after a crash).
    pub fn set_metas(&mut self, values: &[(&str, &[u8])]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for (k, v) in values {
            tx.execute(
                "INSERT INTO meta (k, v) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                params![k, v],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// This device's key (kept only inside the encrypted store).
    pub fn identity(&self) -> Result<Option<DeviceKey>, StoreError> {
        let Some(v) = self.meta("device_secret")?.map(Zeroizing::new) else {
            return Ok(None);
        };
        let seed: [u8; 32] = v
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Damaged("device secret is not 32 bytes".into()))?;
        Ok(Some(DeviceKey::from_seed(seed)))
    }

    pub fn set_identity(&self, key: &DeviceKey) -> Result<(), StoreError> {
        let secret = Zeroizing::new(key.secret_bytes());
        self.set_meta("device_secret", secret.as_slice())
    }

    /// The signed manifest in force.
    pub fn manifest(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.meta("manifest")
    }

    pub fn set_manifest(&self, signed: &[u8]) -> Result<(), StoreError> {
        self.set_meta("manifest", signed)
    }

    /// Replace the manifest in force and set `settings` with it, in one fully synced
    /// transaction: after a crash the store holds either the old manifest and settings or the
    /// new ones.
    pub fn install_manifest(
        &mut self,
        signed: &[u8],
        settings: &[(&str, &[u8])],
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let upsert =
            "INSERT INTO meta (k, v) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET v = excluded.v";
        tx.execute(upsert, params!["manifest", signed])?;
        for (k, v) in settings {
            tx.execute(upsert, params![k, v])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Durably append a shard's incremental save together with the events it carries (to the
    /// cache) and the shard's new heads digest. One transaction, fully synced
    /// ([`Store::append_all`] with one shard).
    pub fn append(
        &mut self,
        shard: &ShardId,
        chunk: &[u8],
        heads: &[u8; 32],
        events: &[&Event],
    ) -> Result<(), StoreError> {
        let one = ShardAppend {
            shard: *shard,
            chunk: chunk.to_vec(),
            heads: *heads,
            events: events.to_vec(),
        };
        self.append_all(&[one], &[])
    }

    /// Replace a shard's chunks by one full save, and its cache rows by one block.
    pub fn compact(&mut self, shard: &ShardId, full: &[u8]) -> Result<(), StoreError> {
        let name = shard.to_string();
        let contents = self.cached_contents(&name)?;
        let count = i64::try_from(contents.len()).unwrap_or(i64::MAX);
        let packed = pack(contents.into_iter(), 6)?;
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM shard_chunk WHERE shard = ?1", [&name])?;
        tx.execute(
            "INSERT INTO shard_chunk (shard, bytes) VALUES (?1, ?2)",
            params![name, full],
        )?;
        tx.execute("UPDATE shard SET chunks = 1 WHERE shard = ?1", [&name])?;
        tx.execute("DELETE FROM event_cache WHERE shard = ?1", [&name])?;
        tx.execute(
            "INSERT INTO event_cache (shard, count, packed) VALUES (?1, ?2, ?3)",
            params![name, count, packed],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The encoded event contents cached for a shard.
    fn cached_contents(&self, shard: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT packed FROM event_cache WHERE shard = ?1 ORDER BY seq")?;
        let mut rows = st.query([shard])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            unpack(r.get_ref(0)?.as_blob()?, &mut out)?;
        }
        Ok(out)
    }

    /// Every cached block, still compressed, with per-shard counts checked against the shard
    /// table. Returns the blocks (see [`CacheBlock::contents`]) and the shards whose cache does
    /// not match (to rebuild).
    pub fn cached_blocks(&self) -> Result<(Vec<CacheBlock>, Vec<ShardId>), StoreError> {
        let mut cached: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
        let mut blocks = Vec::new();
        {
            let mut st = self
                .conn
                .prepare_cached("SELECT shard, count, packed FROM event_cache ORDER BY seq")?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let shard: String = r.get(0)?;
                let count: i64 = r.get(1)?;
                *cached.entry(shard).or_default() += count;
                blocks.push(CacheBlock {
                    count: usize::try_from(count)
                        .map_err(|_| StoreError::Damaged("negative cache count".into()))?,
                    packed: r.get(2)?,
                });
            }
        }
        let mut stale = Vec::new();
        let mut st = self
            .conn
            .prepare_cached("SELECT shard, events FROM shard")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let name: String = r.get(0)?;
            let events: i64 = r.get(1)?;
            if cached.get(&name).copied().unwrap_or(0) != events {
                stale.push(
                    ShardId::parse(&name)
                        .ok_or_else(|| StoreError::Damaged(format!("shard name {name:?}")))?,
                );
            }
        }
        Ok((blocks, stale))
    }

    /// Every cached event content (tests and tools; the cold start uses
    /// [`Store::cached_blocks`]).
    pub fn cached_events(&self) -> Result<(Vec<Vec<u8>>, Vec<ShardId>), StoreError> {
        let (blocks, stale) = self.cached_blocks()?;
        let mut out = Vec::new();
        for b in &blocks {
            let raw = b.decompress()?;
            for c in split_block(&raw) {
                out.push(c?.to_vec());
            }
        }
        Ok((out, stale))
    }

    /// Replace a shard's cache with `contents` (rebuilt from its document).
    pub fn rebuild_cache(
        &mut self,
        shard: &ShardId,
        contents: Vec<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let name = shard.to_string();
        let count = i64::try_from(contents.len()).unwrap_or(i64::MAX);
        let packed = pack(contents.into_iter(), 9)?;
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM event_cache WHERE shard = ?1", [&name])?;
        tx.execute(
            "INSERT INTO event_cache (shard, count, packed) VALUES (?1, ?2, ?3)",
            params![name, count, packed],
        )?;
        tx.execute(
            "UPDATE shard SET events = ?2 WHERE shard = ?1",
            params![name, count],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Forget the derived event cache (for repair drills and tests).
    pub fn drop_cache(&mut self) -> Result<(), StoreError> {
        self.conn.execute("DELETE FROM event_cache", [])?;
        Ok(())
    }

    /// Events recorded in the shard table.
    pub fn event_count(&self) -> Result<u64, StoreError> {
        let n: i64 =
            self.conn
                .query_row("SELECT coalesce(sum(events), 0) FROM shard", [], |r| {
                    r.get(0)
                })?;
        Ok(n.max(0) as u64)
    }

    /// Every shard with its heads digest and number of stored chunks.
    pub fn shards(&self) -> Result<Vec<(ShardId, [u8; 32], u32)>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT shard, heads, chunks FROM shard ORDER BY shard")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, u32>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, heads, chunks) = row?;
            let shard = ShardId::parse(&name)
                .ok_or_else(|| StoreError::Damaged(format!("shard name {name:?}")))?;
            let heads: [u8; 32] = heads
                .try_into()
                .map_err(|_| StoreError::Damaged(format!("heads of {name}")))?;
            out.push((shard, heads, chunks));
        }
        Ok(out)
    }

    /// A shard's stored bytes (its chunks in order, concatenated), for `ShardDoc::load`.
    pub fn shard_bytes(&self, shard: &ShardId) -> Result<Vec<u8>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT bytes FROM shard_chunk WHERE shard = ?1 ORDER BY seq")?;
        let mut out = Vec::new();
        let mut rows = st.query([shard.to_string()])?;
        while let Some(r) = rows.next()? {
            let b = r.get_ref(0)?.as_blob()?;
            out.extend_from_slice(b);
        }
        Ok(out)
    }

    /// Keep a refusal: at most [`QUARANTINE_ITEM_MAX`] of its bytes (the reason says how many
    /// there were), and the table at most [`QUARANTINE_TOTAL_MAX`] bytes, the oldest refusals
    /// dropped first and counted ([`Store::quarantine_dropped`]). A peer that sends refusable
    /// bytes without end fills no disk.
    pub fn quarantine(&self, q: &Quarantined) -> Result<(), StoreError> {
        let (bytes, reason) = match q.bytes.get(..QUARANTINE_ITEM_MAX) {
            Some(head) if q.bytes.len() > QUARANTINE_ITEM_MAX => (
                head,
                format!(
                    "{} (the first {QUARANTINE_ITEM_MAX} of {} bytes kept)",
                    q.reason,
                    q.bytes.len()
                ),
            ),
            _ => (q.bytes.as_slice(), q.reason.clone()),
        };
        // A savepoint, not a transaction: a refusal may be kept inside a caller's transaction.
        self.conn.execute_batch("SAVEPOINT quarantine")?;
        let kept = self.keep_quarantined(q, bytes, &reason);
        match kept {
            Ok(()) => self.conn.execute_batch("RELEASE quarantine")?,
            Err(_) => {
                let _ = self
                    .conn
                    .execute_batch("ROLLBACK TO quarantine; RELEASE quarantine");
            }
        }
        kept
    }

    fn keep_quarantined(
        &self,
        q: &Quarantined,
        bytes: &[u8],
        reason: &str,
    ) -> Result<(), StoreError> {
        let tx = &self.conn;
        tx.execute(
            "INSERT INTO quarantine (received_ms, source, code, reason, bytes) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![q.received_ms as i64, q.source, q.code, reason, bytes],
        )?;
        let size: Option<Vec<u8>> = tx
            .query_row(
                "SELECT v FROM meta WHERE k = ?1",
                [META_QUARANTINE_SIZE],
                |r| r.get(0),
            )
            .optional()?;
        let running = size.as_deref().and_then(|v| {
            let b: [u8; 8] = v.get(..8)?.try_into().ok()?;
            let r: [u8; 8] = v.get(8..)?.try_into().ok()?;
            Some((u64::from_le_bytes(b), u64::from_le_bytes(r)))
        });
        let (mut total, mut rows) = match running {
            Some((b, r)) => (b + bytes.len() as u64, r + 1),
            // First use (or a store from before the running size): count once.
            _ => tx.query_row(
                "SELECT COALESCE(SUM(length(bytes)), 0), COUNT(*) FROM quarantine",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?.max(0) as u64,
                        r.get::<_, i64>(1)?.max(0) as u64,
                    ))
                },
            )?,
        };
        let mut dropped = 0u64;
        if total > QUARANTINE_TOTAL_MAX || rows > QUARANTINE_ROWS_MAX {
            let mut drop = Vec::new();
            {
                let mut st =
                    tx.prepare_cached("SELECT seq, length(bytes) FROM quarantine ORDER BY seq")?;
                let mut found = st.query([])?;
                while (total > QUARANTINE_TOTAL_MAX || rows > QUARANTINE_ROWS_MAX)
                    && let Some(r) = found.next()?
                {
                    drop.push(r.get::<_, i64>(0)?);
                    total = total.saturating_sub(r.get::<_, i64>(1)?.max(0) as u64);
                    rows = rows.saturating_sub(1);
                }
            }
            for seq in &drop {
                tx.execute("DELETE FROM quarantine WHERE seq = ?1", [seq])?;
            }
            dropped = drop.len() as u64;
        }
        let mut size = total.to_le_bytes().to_vec();
        size.extend_from_slice(&rows.to_le_bytes());
        tx.execute(
            "INSERT OR REPLACE INTO meta (k, v) VALUES (?1, ?2)",
            params![META_QUARANTINE_SIZE, size],
        )?;
        if dropped > 0 {
            let before: u64 = tx
                .query_row(
                    "SELECT v FROM meta WHERE k = ?1",
                    [META_QUARANTINE_DROPPED],
                    |r| r.get::<_, Vec<u8>>(0),
                )
                .optional()?
                .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
                .map_or(0, u64::from_le_bytes);
            tx.execute(
                "INSERT OR REPLACE INTO meta (k, v) VALUES (?1, ?2)",
                params![
                    META_QUARANTINE_DROPPED,
                    (before + dropped).to_le_bytes().to_vec()
                ],
            )?;
        }
        Ok(())
    }

    /// Refusals dropped from the quarantine to keep it under [`QUARANTINE_TOTAL_MAX`].
    pub fn quarantine_dropped(&self) -> Result<u64, StoreError> {
        Ok(self
            .meta(META_QUARANTINE_DROPPED)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map_or(0, u64::from_le_bytes))
    }

    pub fn quarantined(&self) -> Result<Vec<Quarantined>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT received_ms, source, code, reason, bytes FROM quarantine ORDER BY seq",
        )?;
        let rows = st.query_map([], |r| {
            Ok(Quarantined {
                received_ms: r.get::<_, i64>(0)?.max(0) as u64,
                source: r.get(1)?,
                code: r.get(2)?,
                reason: r.get(3)?,
                bytes: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Bytes of the database and its write-ahead log on disk.
    pub fn size_on_disk(&self) -> u64 {
        let mut wal = self.path.as_os_str().to_owned();
        wal.push("-wal");
        [self.path.clone(), PathBuf::from(wal)]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Copy what it can of the write-ahead log into the database without waiting on readers.
    pub fn checkpoint_passive(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Fold the write-ahead log into the database file.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

/// Length-prefixed contents, zstd-compressed.
fn pack(contents: impl Iterator<Item = Vec<u8>>, level: i32) -> Result<Vec<u8>, StoreError> {
    let mut raw = Vec::new();
    for c in contents {
        let len =
            u32::try_from(c.len()).map_err(|_| StoreError::Damaged("event too large".into()))?;
        raw.extend_from_slice(&len.to_le_bytes());
        raw.extend_from_slice(&c);
    }
    zstd::bulk::compress(&raw, level).map_err(StoreError::Io)
}

fn unpack(packed: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), StoreError> {
    let raw = zstd::stream::decode_all(packed)
        .map_err(|_| StoreError::Damaged("event cache block".into()))?;
    for c in split_block(&raw) {
        out.push(c?.to_vec());
    }
    Ok(())
}

/// One compressed block of the event cache.
#[derive(Debug, Clone)]
pub struct CacheBlock {
    /// Events it says it holds.
    pub count: usize,
    packed: Vec<u8>,
}

impl CacheBlock {
    /// The block decompressed (see [`split_block`]), checked to hold `count` events.
    pub fn decompress(&self) -> Result<Vec<u8>, StoreError> {
        let raw = zstd::stream::decode_all(self.packed.as_slice())
            .map_err(|_| StoreError::Damaged("event cache block".into()))?;
        let n = split_block(&raw).try_fold(0usize, |n, c| c.map(|_| n + 1))?;
        if n != self.count {
            return Err(StoreError::Damaged("event cache block count".into()));
        }
        Ok(raw)
    }
}

/// The event contents in a decompressed cache block.
pub fn split_block(raw: &[u8]) -> impl Iterator<Item = Result<&[u8], StoreError>> {
    let mut rest = raw;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let damaged = || StoreError::Damaged("event cache block".into());
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            rest = &[];
            return Some(Err(damaged()));
        };
        let len = u32::from_le_bytes(*len) as usize;
        let Some((c, tail)) = tail.split_at_checked(len) else {
            rest = &[];
            return Some(Err(damaged()));
        };
        rest = tail;
        Some(Ok(c))
    })
}
