//! A bundle file on a USB stick, written durably: a `.partial` file beside the target, written
//! and fsynced, renamed over the target, then the folder fsynced. Only after this returns does
//! `Node::export_bundle_to` advance its "already sent" marks, so that after a crash or a pulled
//! stick the marks never claim a file that is not whole on disk (the worst case is a bundle
//! sent twice, which the receiver refuses as imported before).

use std::io::Write;
use std::path::{Path, PathBuf};

/// The temporary name `path` is written under before the rename.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

/// Write `bytes` to `path` whole or not at all, durably (file and folder synced). Any error,
/// including a failed sync of the folder, is returned: the caller must not count the file as
/// written. A failed attempt removes its temporary file.
pub fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let tmp = partial_path(path);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename is durable only once the folder is.
    std::fs::File::open(&dir)?.sync_all()
}
