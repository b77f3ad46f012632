//! Whether the window's own program was replaced on disk while it runs: a signed update applied
//! from a USB stick (`kazashi-update@.service`, docs/appliance.md) installs the new package with
//! dpkg, which puts a new `/usr/bin/kazashi` in place. The running window keeps the old program
//! until it is started again, and the kernel then names its image "… (deleted)" in
//! `/proc/self/exe`. The header says so, so staff restart at a quiet moment (the kiosk session
//! starts the new program; nothing is lost: every write is already on disk).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often the link is read (one `readlink` call; the header is drawn every frame).
const EVERY: Duration = Duration::from_secs(10);

/// Watches one process's image link (`/proc/self/exe` for the window).
#[derive(Debug)]
pub struct Replaced {
    link: PathBuf,
    checked: Option<Instant>,
    replaced: bool,
}

impl Default for Replaced {
    fn default() -> Self {
        Self::watching("/proc/self/exe")
    }
}

impl Replaced {
    /// Watch `link`, a `/proc/<pid>/exe`.
    pub fn watching(link: impl Into<PathBuf>) -> Self {
        Self {
            link: link.into(),
            checked: None,
            replaced: false,
        }
    }

    /// Whether the program was replaced (read again at most every 10 s; once replaced, always).
    pub fn poll(&mut self, now: Instant) -> bool {
        if !self.replaced && self.checked.is_none_or(|t| now.duration_since(t) >= EVERY) {
            self.checked = Some(now);
            self.replaced = image_replaced(&self.link);
        }
        self.replaced
    }
}

/// Whether the process image behind `link` (a `/proc/<pid>/exe`) is no longer the file at its
/// path: removed or replaced by a new file. Anything unreadable counts as not replaced.
pub fn image_replaced(link: &Path) -> bool {
    std::fs::read_link(link).is_ok_and(|target| {
        target
            .as_os_str()
            .as_encoded_bytes()
            .ends_with(b" (deleted)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real process from a copied program: not replaced while the file is there, replaced
    /// once a new file is renamed over it (what dpkg does), and `Replaced` keeps saying so.
    #[test]
    fn a_running_program_renamed_over_is_seen_as_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        let prog = dir.path().join("sleeper");
        std::fs::copy("/bin/sleep", &prog).expect("copy /bin/sleep");
        // Another test thread forking while the copy was open for writing holds that write
        // descriptor until its exec: starting the copy then fails with "text file busy" for a
        // moment. Try again briefly.
        let mut tries = 0;
        let mut child = loop {
            match std::process::Command::new(&prog).arg("30").spawn() {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 200 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                other => break other.expect("start the copy"),
            }
        };
        let link = PathBuf::from(format!("/proc/{}/exe", child.id()));
        let mut watch = Replaced::watching(&link);
        let t0 = Instant::now();
        assert!(
            !image_replaced(&link),
            "the file is still the running image"
        );
        assert!(!watch.poll(t0));
        let new = dir.path().join("sleeper.new");
        std::fs::copy("/bin/sleep", &new).expect("copy again");
        std::fs::rename(&new, &prog).expect("rename over the running program");
        assert!(
            image_replaced(&link),
            "renamed over: the image is gone from its path"
        );
        assert!(
            !watch.poll(t0 + Duration::from_secs(1)),
            "not read again within 10 s"
        );
        assert!(watch.poll(t0 + EVERY));
        let _ = child.kill();
        let _ = child.wait();
        assert!(watch.poll(t0 + EVERY * 3), "once replaced, always");
        assert!(!image_replaced(Path::new("/nonexistent/exe")));
    }
}
