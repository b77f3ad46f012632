//! The node's store: one SQLite file, encrypted with SQLCipher, in WAL mode with full sync.
//!
//! **Key.** The database key is derived from the operator's passphrase with Argon2id; the salt
//! and cost sit beside the database in `<file>.kdf` (no secret in it, but without it the
//! database cannot be opened: back up both). The derived key goes to SQLCipher as a raw key, so
//! SQLCipher's own PBKDF2 is not run again, and is wiped from memory after use. A wrong
//! passphrase is told apart from a damaged file.
//!
//! **Contents.**
//! - `meta`: schema version, this device's secret key, the manifest in force.
//! - `shard_chunk`: each shard's Automerge bytes — incremental saves appended in the same
//!   transaction as the events they carry, compacted into one full save from time to time.
//! - `shard`: each shard's heads digest, so the catalog needs no document loaded.
//! - `event`: every accepted envelope with its id, shard, time, site and kind; the node folds
//!   state from it at start. With `event_person` it is the derived index (person, site, kind,
//!   time) for views and the detector; [`Store::rebuild_index`] rebuilds both from the shard
//!   documents.
//! - `quarantine`: refused envelopes and messages, with the reason, for audit.
//!
//! A write returns only once committed with a full fsync (`synchronous = FULL`): a pulled plug
//! loses nothing that was acknowledged.

use kazashi_domain::{Event, EventId, Millis, PersonRef};
use kazashi_sync::{DeviceKey, ShardId};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Argon2id cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KdfParams {
    /// Memory, KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// For laptops: 64 MiB, 3 passes (about half a second on a 2-core machine).
    pub const STANDARD: KdfParams = KdfParams {
        m_kib: 64 * 1024,
        t: 3,
        p: 1,
    };
    /// For tests and drills only: cheap.
    pub const FAST_INSECURE: KdfParams = KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    };
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct KdfFile {
    format: String,
    params: KdfParams,
    salt: String,
}

const KDF_FORMAT: &str = "kazashi-kdf-v1 argon2id";
const SCHEMA_VERSION: i64 = 1;

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
    #[error("the store was written by a newer Kazashi (schema {0})")]
    NewerSchema(i64),
    #[error("key derivation failed: {0}")]
    Kdf(String),
    #[error("no operating-system randomness: {0}")]
    Random(String),
    #[error("file: {0}")]
    Io(#[from] std::io::Error),
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("database value: {0}")]
    Value(#[from] rusqlite::types::FromSqlError),
    #[error("stored data is damaged: {0}")]
    Damaged(String),
}

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

/// One event's row in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedEvent {
    pub id: EventId,
    pub shard: ShardId,
    pub envelope: Vec<u8>,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.path.display())
    }
}

fn kdf_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".kdf");
    PathBuf::from(p)
}

fn derive(
    passphrase: &str,
    salt: &[u8],
    params: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, StoreError> {
    let p = argon2::Params::new(params.m_kib, params.t, params.p, Some(32))
        .map_err(|e| StoreError::Kdf(e.to_string()))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut key = Zeroizing::new([0u8; 32]);
    a.hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|e| StoreError::Kdf(e.to_string()))?;
    Ok(key)
}

/// Fill a buffer from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(b)
}

fn kind_code(e: &Event) -> &'static str {
    e.body().name()
}

impl Store {
    /// Create a new store at `path` (which must not exist), keyed by `passphrase`.
    pub fn create(path: &Path, passphrase: &str, params: KdfParams) -> Result<Store, StoreError> {
        let kdf = kdf_path(path);
        if path.exists() {
            return Err(StoreError::Exists(path.to_owned()));
        }
        let salt: [u8; 16] = random_bytes()?;
        let file = KdfFile {
            format: KDF_FORMAT.into(),
            params,
            salt: hex::encode(salt),
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| StoreError::Kdf(e.to_string()))?;
        // Written whole and synced before the database exists.
        let tmp = kdf.with_extension("kdf.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &kdf)?;
        let key = derive(passphrase, &salt, params)?;
        let conn = Connection::open(path)?;
        let store = Store::keyed(conn, path, &key)?;
        store.migrate()?;
        Ok(store)
    }

    /// Open an existing store.
    pub fn open(path: &Path, passphrase: &str) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(path.to_owned()));
        }
        let kdf = kdf_path(path);
        let raw =
            std::fs::read(&kdf).map_err(|e| StoreError::KdfFile(kdf.clone(), e.to_string()))?;
        let file: KdfFile = serde_json::from_slice(&raw)
            .map_err(|e| StoreError::KdfFile(kdf.clone(), e.to_string()))?;
        let salt = hex::decode(&file.salt)
            .ok()
            .filter(|s| s.len() == 16 && file.format == KDF_FORMAT)
            .ok_or_else(|| StoreError::KdfFile(kdf.clone(), "bad salt or format".into()))?;
        let key = derive(passphrase, &salt, file.params)?;
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let store = Store::keyed(conn, path, &key)?;
        store.migrate()?;
        Ok(store)
    }

    fn keyed(conn: Connection, path: &Path, key: &[u8; 32]) -> Result<Store, StoreError> {
        let pragma = Zeroizing::new(format!("x'{}'", hex::encode(key)));
        conn.pragma_update(None, "key", pragma.as_str())?;
        // The first read decrypts page 1: a wrong key fails here.
        match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        }) {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::NotADatabase =>
            {
                return Err(StoreError::WrongPassphrase);
            }
            Err(e) => return Err(e.into()),
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
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
                    chunks INTEGER NOT NULL DEFAULT 0
                ) WITHOUT ROWID;
                CREATE TABLE shard_chunk (
                    seq INTEGER PRIMARY KEY,
                    shard TEXT NOT NULL,
                    bytes BLOB NOT NULL
                );
                CREATE INDEX shard_chunk_by_shard ON shard_chunk (shard, seq);
                CREATE TABLE event (
                    id BLOB PRIMARY KEY,
                    shard TEXT NOT NULL,
                    at_ms INTEGER NOT NULL,
                    site TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    envelope BLOB NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE event_person (
                    person TEXT NOT NULL,
                    id BLOB NOT NULL,
                    PRIMARY KEY (person, id)
                ) WITHOUT ROWID;
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
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn meta(&self, k: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT v FROM meta WHERE k = ?1", [k], |r| r.get(0))
            .optional()?)
    }

    fn set_meta(&self, k: &str, v: &[u8]) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO meta (k, v) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            params![k, v],
        )?;
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

    /// Durably append a shard's incremental save together with the index rows of the events
    /// it carries, and the shard's new heads digest. One transaction, fully synced.
    pub fn append(
        &mut self,
        shard: &ShardId,
        chunk: &[u8],
        heads: &[u8; 32],
        events: &[(&Event, &[u8])],
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let name = shard.to_string();
        if !chunk.is_empty() {
            tx.prepare_cached("INSERT INTO shard_chunk (shard, bytes) VALUES (?1, ?2)")?
                .execute(params![name, chunk])?;
        }
        tx.prepare_cached(
            "INSERT INTO shard (shard, heads, chunks) VALUES (?1, ?2, 1)
             ON CONFLICT (shard) DO UPDATE SET heads = excluded.heads, chunks = chunks + 1",
        )?
        .execute(params![name, &heads[..]])?;
        for (e, envelope) in events {
            insert_event(&tx, &name, e, envelope)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Replace a shard's chunks by one full save.
    pub fn compact(&mut self, shard: &ShardId, full: &[u8]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let name = shard.to_string();
        tx.execute("DELETE FROM shard_chunk WHERE shard = ?1", [&name])?;
        tx.execute(
            "INSERT INTO shard_chunk (shard, bytes) VALUES (?1, ?2)",
            params![name, full],
        )?;
        tx.execute("UPDATE shard SET chunks = 1 WHERE shard = ?1", [&name])?;
        tx.commit()?;
        Ok(())
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

    /// Call `f` with every stored envelope (in id order).
    pub fn for_each_envelope(
        &self,
        mut f: impl FnMut(EventId, &[u8]),
    ) -> Result<usize, StoreError> {
        let mut st = self.conn.prepare_cached("SELECT id, envelope FROM event")?;
        let mut rows = st.query([])?;
        let mut n = 0;
        while let Some(r) = rows.next()? {
            let id: [u8; 16] = r
                .get_ref(0)?
                .as_blob()?
                .try_into()
                .map_err(|_| StoreError::Damaged("event id length".into()))?;
            f(EventId(id), r.get_ref(1)?.as_blob()?);
            n += 1;
        }
        Ok(n)
    }

    pub fn event_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM event", [], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// Ids of a person's events, in time order (the index the views and detector use).
    pub fn events_of(&self, person: &PersonRef) -> Result<Vec<EventId>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT e.id FROM event_person p JOIN event e ON e.id = p.id
             WHERE p.person = ?1 ORDER BY e.at_ms, e.id",
        )?;
        let rows = st.query_map([person.to_string()], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for r in rows {
            let id: [u8; 16] = r?
                .try_into()
                .map_err(|_| StoreError::Damaged("event id length".into()))?;
            out.push(EventId(id));
        }
        Ok(out)
    }

    /// Drop the derived index and rebuild it from (shard, event, envelope) triples read from
    /// the shard documents.
    pub fn rebuild_index<'a>(
        &mut self,
        events: impl IntoIterator<Item = (ShardId, &'a Event, &'a [u8])>,
    ) -> Result<usize, StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM event_person", [])?;
        tx.execute("DELETE FROM event", [])?;
        let mut n = 0;
        for (shard, e, env) in events {
            insert_event(&tx, &shard.to_string(), e, env)?;
            n += 1;
        }
        tx.commit()?;
        Ok(n)
    }

    /// Forget the derived index (for repair: [`Store::rebuild_index`] restores it).
    pub fn drop_index(&mut self) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM event_person", [])?;
        tx.execute("DELETE FROM event", [])?;
        tx.commit()?;
        Ok(())
    }

    pub fn quarantine(&self, q: &Quarantined) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO quarantine (received_ms, source, code, reason, bytes) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![q.received_ms as i64, q.source, q.code, q.reason, q.bytes],
        )?;
        Ok(())
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

    /// Fold the write-ahead log into the database file.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

fn insert_event(
    tx: &rusqlite::Transaction<'_>,
    shard: &str,
    e: &Event,
    envelope: &[u8],
) -> Result<(), StoreError> {
    let id = e.id();
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO event (id, shard, at_ms, site, kind, envelope)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            &id.0[..],
            shard,
            i64::try_from(e.at().wall_ms).unwrap_or(i64::MAX),
            e.site().as_str(),
            kind_code(e),
            envelope
        ])?;
    if inserted > 0 {
        for p in persons_of(e) {
            tx.prepare_cached("INSERT OR IGNORE INTO event_person (person, id) VALUES (?1, ?2)")?
                .execute(params![p.to_string(), &id.0[..]])?;
        }
    }
    Ok(())
}

/// The persons an event is about (for the index).
fn persons_of(e: &Event) -> Vec<PersonRef> {
    use kazashi_domain::EventBody as B;
    match e.body() {
        B::VoterCheckIn { voter, .. } => vec![PersonRef::Roster(*voter)],
        B::SameAs { a, b, .. } | B::NotSame { a, b, .. } => vec![*a, *b],
        B::CardBinding { person, .. } => person.iter().copied().collect(),
        body => body
            .stay_members()
            .map(|m| m.as_slice().to_vec())
            .unwrap_or_default(),
    }
}
