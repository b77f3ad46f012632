//! The key file beside an encrypted SQLite file (`<file>.kdf`) and the key hierarchy it holds.
//!
//! **Format 2** (`kazashi-kdf-v2 argon2id+dek`, every store and roster store created since
//! issue 24): the database is keyed by a random 32-byte *data key* (DEK) from the operating
//! system's CSPRNG. The file keeps it only wrapped: ChaCha20-Poly1305 under the *passphrase
//! key* (Argon2id of the passphrase with the file's salt and cost), a random 12-byte nonce, the
//! format and salt as associated data. The file also keeps `check`, SHA-256 of a tag and the
//! passphrase key, so that a wrong passphrase is told apart from a damaged database before the
//! database is touched.
//!
//! **Format 1** (`kazashi-kdf-v1 argon2id`, stores created before): the Argon2id output *is*
//! the database key. A node's store of this format is moved to format 2 on its first open
//! (below); a roster store of this format is read as it is until the next import replaces it
//! (its key exists nowhere but as Argon2id(passphrase, salt), and the salt only in this file,
//! so destroying the file destroys that key just as it destroys a wrapped data key).
//!
//! **Migration** of a format-1 store to format 2 (`Store::open`, once the passphrase opened it):
//! a fresh data key is drawn; the database is copied under it with `sqlcipher_export` to
//! `<file>.rekey` (synced); the new key file is written to `<file>.kdf.next` (synced); the old
//! database's WAL (empty after a TRUNCATE checkpoint) is removed, `<file>.rekey` renamed over
//! the database, then `<file>.kdf.next` over the key file, the folder synced after each. A
//! migration killed at any point is settled by [`settle_rekey`] before the next open: a
//! `.rekey` without a `.kdf.next` is dropped (the old pair is whole); both present, or a
//! `.kdf.next` alone, are rolled forward (the new database is whole and the new key file
//! names its key). So the store always opens with the same passphrase, under one key or the
//! other. Roster stores are not migrated (a new import writes format 2).
//!
//! **Crypto-shredding** ([`destroy`]): the key file is overwritten with random bytes, synced,
//! unlinked and its folder synced. Without it the passphrase opens nothing: not the database,
//! not a copy of it taken before. A copy of the *key file* taken before still opens a copy of
//! the database taken with it (see `docs/storage.md`, purge).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
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

/// The first format: the Argon2id output is the database key.
pub(crate) const FORMAT_V1: &str = "kazashi-kdf-v1 argon2id";
/// The second: a random data key, wrapped under the Argon2id output.
pub(crate) const FORMAT_V2: &str = "kazashi-kdf-v2 argon2id+dek";
const WRAP_TAG: &[u8] = b"kazashi-store-dek-wrap-v2";

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct KdfFile {
    format: String,
    params: KdfParams,
    salt: String,
    /// Format 2: hex of nonce (12 bytes) and the sealed data key (48 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wrapped_key: Option<String>,
    /// Hex of [`key_check`] of the passphrase key (absent in files written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    check: Option<String>,
}

/// Why a key file failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the key file {0} is missing or damaged: {1}")]
    File(PathBuf, String),
    #[error("wrong passphrase (or the store is not a Kazashi store)")]
    WrongPassphrase,
    #[error("key derivation failed: {0}")]
    Kdf(String),
    #[error("no operating-system randomness: {0}")]
    Random(String),
    #[error("file: {0}")]
    Io(#[from] std::io::Error),
}

/// `<file>.kdf`: the key file beside an encrypted file.
pub(crate) fn kdf_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".kdf");
    PathBuf::from(p)
}

/// What the key file keeps to recognise the right passphrase: SHA-256 of a tag and the
/// passphrase key (the output of Argon2id, so this tells nothing a guesser could not learn
/// from the database itself, at the same Argon2id cost per guess).
fn key_check(key: &[u8; 32]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"kazashi-store-key-check-v1");
    h.update(key);
    hex::encode(h.finalize())
}

fn derive(
    passphrase: &str,
    salt: &[u8],
    params: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let p = argon2::Params::new(params.m_kib, params.t, params.p, Some(32))
        .map_err(|e| KeyError::Kdf(e.to_string()))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut key = Zeroizing::new([0u8; 32]);
    a.hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|e| KeyError::Kdf(e.to_string()))?;
    Ok(key)
}

fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, KeyError> {
    let mut b = Zeroizing::new([0u8; N]);
    getrandom::fill(b.as_mut()).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(b)
}

fn wrap_aad(salt: &str) -> Vec<u8> {
    [WRAP_TAG, FORMAT_V2.as_bytes(), salt.as_bytes()].concat()
}

/// Write a new key file at `kdf` (format 2): a fresh salt and data key, the data key wrapped
/// under Argon2id of `passphrase`. Written whole and synced (a temporary file renamed, the
/// folder synced) before the database exists. Returns the data key.
pub(crate) fn create(
    kdf: &Path,
    passphrase: &str,
    params: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    create_for(kdf, passphrase, params, fresh_data_key()?)
}

/// A new data key from the operating system's CSPRNG.
pub(crate) fn fresh_data_key() -> Result<Zeroizing<[u8; 32]>, KeyError> {
    random::<32>()
}

/// [`create`] for a data key drawn before (a migration copies the database under it first).
fn create_for(
    kdf: &Path,
    passphrase: &str,
    params: KdfParams,
    dek: Zeroizing<[u8; 32]>,
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let salt = hex::encode(*random::<16>()?);
    let kek = derive(passphrase, &hex::decode(&salt).unwrap_or_default(), params)?;
    let nonce = random::<12>()?;
    let sealed = ChaCha20Poly1305::new(&Key::from(*kek))
        .encrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: dek.as_ref(),
                aad: &wrap_aad(&salt),
            },
        )
        .map_err(|_| KeyError::Kdf("the data key could not be wrapped".into()))?;
    let file = KdfFile {
        format: FORMAT_V2.into(),
        params,
        check: Some(key_check(&kek)),
        wrapped_key: Some(hex::encode([nonce.as_slice(), &sealed].concat())),
        salt,
    };
    let json = serde_json::to_vec_pretty(&file)
        .map_err(|e| KeyError::File(kdf.to_owned(), e.to_string()))?;
    write_synced(kdf, &json)?;
    Ok(dek)
}

/// The database key of an existing file, from its key file and the passphrase, and whether
/// the key file's check confirmed it (`false`: a format-1 file with no check yet). A key that
/// fails the check is a wrong passphrase, told before the database is touched.
pub(crate) fn open(kdf: &Path, passphrase: &str) -> Result<(Zeroizing<[u8; 32]>, bool), KeyError> {
    let damaged = |why: &str| KeyError::File(kdf.to_owned(), why.to_owned());
    let raw = std::fs::read(kdf).map_err(|e| KeyError::File(kdf.to_owned(), e.to_string()))?;
    let file: KdfFile =
        serde_json::from_slice(&raw).map_err(|e| KeyError::File(kdf.to_owned(), e.to_string()))?;
    let salt = hex::decode(&file.salt)
        .ok()
        .filter(|s| s.len() == 16)
        .ok_or_else(|| damaged("bad salt"))?;
    if file.format != FORMAT_V1 && file.format != FORMAT_V2 {
        return Err(damaged("unknown format"));
    }
    let kek = derive(passphrase, &salt, file.params)?;
    let checked = match &file.check {
        Some(c) if *c != key_check(&kek) => return Err(KeyError::WrongPassphrase),
        Some(_) => true,
        None => false,
    };
    if file.format == FORMAT_V1 {
        return Ok((kek, checked));
    }
    let wrapped = file
        .wrapped_key
        .as_deref()
        .and_then(|w| hex::decode(w).ok())
        .filter(|w| w.len() == 12 + 32 + 16)
        .ok_or_else(|| damaged("no wrapped data key"))?;
    let (nonce, sealed) = wrapped.split_at(12);
    let nonce: [u8; 12] = nonce.try_into().map_err(|_| damaged("a short nonce"))?;
    let dek = ChaCha20Poly1305::new(&Key::from(*kek))
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: sealed,
                aad: &wrap_aad(&file.salt),
            },
        )
        .map_err(|_| match file.check {
            // The passphrase passed the check: the wrapped key itself is damaged.
            Some(_) => damaged("the wrapped data key does not open"),
            None => KeyError::WrongPassphrase,
        })?;
    let dek = Zeroizing::new(dek);
    let key: [u8; 32] = dek
        .as_slice()
        .try_into()
        .map_err(|_| damaged("a data key of the wrong length"))?;
    if !checked {
        // The wrapped key authenticated under this passphrase's key: it is the right one, and
        // a file that lost its check gets it back (best effort).
        let mut file = file;
        file.check = Some(key_check(&kek));
        if let Ok(json) = serde_json::to_vec_pretty(&file) {
            let _ = write_synced(kdf, &json);
        }
    }
    Ok((Zeroizing::new(key), true))
}

/// `path` with `suffix` appended to its file name.
pub(crate) fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// The files of a migration in progress: the database copied under the new key, the new key
/// file.
pub(crate) fn rekey_paths(db: &Path) -> (PathBuf, PathBuf) {
    (beside(db, ".rekey"), beside(&kdf_path(db), ".next"))
}

/// A format-2 key file wrapping `dek` for `passphrase`, at the cost of the file it replaces,
/// written to `<db>.kdf.next` (synced) for [`finish_rekey`] to put in place.
pub(crate) fn write_next(
    db: &Path,
    passphrase: &str,
    dek: Zeroizing<[u8; 32]>,
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let kdf = kdf_path(db);
    let raw = std::fs::read(&kdf).map_err(|e| KeyError::File(kdf.clone(), e.to_string()))?;
    let old: KdfFile =
        serde_json::from_slice(&raw).map_err(|e| KeyError::File(kdf.clone(), e.to_string()))?;
    create_for(&rekey_paths(db).1, passphrase, old.params, dek)
}

/// Whether the key file of `db` is of the first format (its database not keyed by a data key).
pub(crate) fn is_first_format(db: &Path) -> bool {
    format_of(&kdf_path(db)).as_deref() == Some(FORMAT_V1)
}

/// Put a migration's files in place: the old WAL and shared-memory files removed (the
/// database was checkpointed and closed), `<db>.rekey` renamed over `db`, `<db>.kdf.next`
/// over the key file, the folder synced after each rename.
pub(crate) fn finish_rekey(db: &Path) -> Result<(), std::io::Error> {
    let (rekey, next) = rekey_paths(db);
    if rekey.exists() {
        for side in ["-wal", "-shm", "-journal"] {
            match std::fs::remove_file(beside(db, side)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(&rekey, db)?;
        sync_parent(db);
    }
    if next.exists() {
        std::fs::rename(&next, kdf_path(db))?;
        sync_parent(db);
    }
    Ok(())
}

/// Settle a migration cut short (see the module docs), before `db` is opened.
pub(crate) fn settle_rekey(db: &Path) -> Result<(), std::io::Error> {
    let (rekey, next) = rekey_paths(db);
    let mut tmp = next.as_os_str().to_owned();
    tmp.push(".tmp");
    let _ = std::fs::remove_file(PathBuf::from(tmp));
    match (rekey.exists(), next.exists()) {
        // The copy may be partial and no key file names its key: the old pair is whole.
        (true, false) => std::fs::remove_file(&rekey),
        (_, true) => finish_rekey(db),
        (false, false) => Ok(()),
    }
}

/// A format-1 key file (the Argon2id output is the database key), as Kazashi wrote before
/// issue 24: for the migration's tests.
#[cfg(test)]
pub(crate) fn create_first_format(
    kdf: &Path,
    passphrase: &str,
    params: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let salt = *random::<16>()?;
    let key = derive(passphrase, &salt, params)?;
    let file = KdfFile {
        format: FORMAT_V1.into(),
        params,
        salt: hex::encode(salt),
        check: Some(key_check(&key)),
        wrapped_key: None,
    };
    let json = serde_json::to_vec_pretty(&file)
        .map_err(|e| KeyError::File(kdf.to_owned(), e.to_string()))?;
    write_synced(kdf, &json)?;
    Ok(key)
}

/// Add the key check to a format-1 file written before it existed, once a key has opened the
/// database (so it is the right one). Best effort: the store works without it.
pub(crate) fn add_key_check(kdf: &Path, key: &[u8; 32]) {
    let Ok(raw) = std::fs::read(kdf) else { return };
    let Ok(mut file) = serde_json::from_slice::<KdfFile>(&raw) else {
        return;
    };
    if file.check.is_some() || file.format != FORMAT_V1 {
        return;
    }
    file.check = Some(key_check(key));
    if let Ok(json) = serde_json::to_vec_pretty(&file) {
        let _ = write_synced(kdf, &json);
    }
}

/// The format of the key file at `kdf`, if it reads.
pub fn format_of(kdf: &Path) -> Option<String> {
    let raw = std::fs::read(kdf).ok()?;
    serde_json::from_slice::<KdfFile>(&raw)
        .ok()
        .map(|f| f.format)
}

/// `bytes` written to a temporary file beside `path`, synced, renamed over `path`, and the
/// folder synced.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), std::io::Error> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_parent(path);
    Ok(())
}

fn sync_parent(path: &Path) {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Ok(d) = std::fs::File::open(dir.unwrap_or(Path::new("."))) {
        let _ = d.sync_all();
    }
}

/// Overwrite the file at `path` in place with random bytes (its whole length, at least one
/// block), sync it, unlink it and sync its folder. Returns whether there was a file. Used for
/// key files (crypto-shredding: the key is gone) and for plain exports. On a copy-on-write
/// file system or an SSD the old blocks may survive the overwrite; for a key file that is
/// why the key is also never written anywhere else.
pub fn destroy(path: &Path) -> Result<bool, std::io::Error> {
    use std::io::Write;
    let len = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => m.len(),
        Ok(_) => {
            // A link or anything else: remove the name only.
            std::fs::remove_file(path)?;
            sync_parent(path);
            return Ok(true);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    {
        let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
        let mut left = len.max(4096);
        let mut block = vec![0u8; 64 * 1024];
        while left > 0 {
            let n = usize::try_from(left.min(block.len() as u64)).unwrap_or(block.len());
            let chunk = block.get_mut(..n).unwrap_or_default();
            getrandom::fill(chunk).map_err(|e| std::io::Error::other(e.to_string()))?;
            f.write_all(chunk)?;
            left -= n as u64;
        }
        f.sync_all()?;
    }
    std::fs::remove_file(path)?;
    sync_parent(path);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_file_wraps_a_random_data_key_and_destroy_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let kdf = dir.path().join("x.db.kdf");
        let dek = create(&kdf, "pass", KdfParams::FAST_INSECURE).unwrap();
        let text = std::fs::read_to_string(&kdf).unwrap();
        assert!(text.contains(FORMAT_V2));
        // The data key is not in the file in the clear.
        assert!(!text.contains(&hex::encode(*dek)));
        let (again, checked) = open(&kdf, "pass").unwrap();
        assert!(checked);
        assert_eq!(*again, *dek);
        assert!(matches!(
            open(&kdf, "wrong"),
            Err(KeyError::WrongPassphrase)
        ));
        // A second file of the same passphrase has another data key.
        let other = dir.path().join("y.db.kdf");
        assert_ne!(
            *create(&other, "pass", KdfParams::FAST_INSECURE).unwrap(),
            *dek
        );
        assert!(destroy(&kdf).unwrap());
        assert!(!kdf.exists());
        assert!(!destroy(&kdf).unwrap());
        assert!(matches!(open(&kdf, "pass"), Err(KeyError::File(..))));
    }

    #[test]
    fn an_altered_wrapped_key_is_damage_not_a_wrong_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let kdf = dir.path().join("x.db.kdf");
        create(&kdf, "pass", KdfParams::FAST_INSECURE).unwrap();
        let mut file: KdfFile = serde_json::from_slice(&std::fs::read(&kdf).unwrap()).unwrap();
        let mut w = hex::decode(file.wrapped_key.unwrap()).unwrap();
        w[20] ^= 1;
        file.wrapped_key = Some(hex::encode(w));
        std::fs::write(&kdf, serde_json::to_vec(&file).unwrap()).unwrap();
        assert!(matches!(open(&kdf, "pass"), Err(KeyError::File(..))));
    }
}
