//! Printing through CUPS (issue 26, requirement 5): a document is always saved first (into
//! the export folder), then sent to a printer with `lp` when one exists — the configured queue
//! if CUPS accepts jobs for it, else the system default, else the first queue accepting jobs
//! (`lpstat -a`, `lpstat -d`). Without CUPS, without a printer or when `lp` refuses, the file
//! stays saved and [`Printed::SavedOnly`] says why, in words. The tools' paths are fields so
//! a test can put recording stand-ins in their place.

use crate::export::Rendered;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The CUPS client tools and the queue asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Printer {
    pub lp: PathBuf,
    pub lpstat: PathBuf,
    /// The queue the deployment configured (`None`: the default, or any that accepts jobs).
    pub queue: Option<String>,
}

/// What happened to a saved document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Printed {
    /// Sent to `queue`; `job` is CUPS's request id when `lp` said it.
    Sent { queue: String, job: Option<String> },
    /// Not printed (the file is saved): why.
    SavedOnly { reason: String },
}

/// A document saved, and whether it went to a printer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaperOutcome {
    pub path: PathBuf,
    pub printed: Printed,
}

impl PaperOutcome {
    /// One sentence for the screen, Japanese then English.
    pub fn words(&self) -> String {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match &self.printed {
            Printed::Sent { queue, job } => format!(
                "{name} を保存し、プリンタ {queue} に送りました{} / saved {name} and sent it to printer {queue}{}",
                job.as_ref().map(|j| format!("（{j}）")).unwrap_or_default(),
                job.as_ref().map(|j| format!(" ({j})")).unwrap_or_default(),
            ),
            Printed::SavedOnly { reason } => format!(
                "{name} を保存しました。印刷はしていません：{reason} / saved {name}; not printed: {reason}"
            ),
        }
    }
}

impl Printer {
    /// The tools found on `PATH`.
    pub fn system(queue: Option<String>) -> Printer {
        Printer {
            lp: PathBuf::from("lp"),
            lpstat: PathBuf::from("lpstat"),
            queue,
        }
    }

    fn lpstat(&self, arg: &str) -> Result<String, String> {
        let out = Command::new(&self.lpstat)
            .arg(arg)
            .env("LC_ALL", "C")
            .output()
            .map_err(|e| format!("CUPS (lpstat) is not available: {e}"))?;
        // `lpstat -a` exits non-zero when no queue exists; its output still says so.
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The queues accepting jobs (`lpstat -a`).
    pub fn queues(&self) -> Result<Vec<String>, String> {
        let text = self.lpstat("-a")?;
        Ok(text
            .lines()
            .filter(|l| l.contains(" accepting requests"))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect())
    }

    /// The queue a document goes to, or why none.
    pub fn choose(&self) -> Result<String, String> {
        let queues = self.queues()?;
        if let Some(q) = &self.queue {
            return if queues.contains(q) {
                Ok(q.clone())
            } else {
                Err(format!("the printer {q} is not accepting jobs"))
            };
        }
        let default = self.lpstat("-d").unwrap_or_default();
        let default = default
            .lines()
            .find_map(|l| l.strip_prefix("system default destination: "))
            .map(str::trim)
            .filter(|d| queues.iter().any(|q| q == d));
        match default {
            Some(d) => Ok(d.to_owned()),
            None => queues
                .into_iter()
                .next()
                .ok_or_else(|| "no printer is set up".to_owned()),
        }
    }

    /// Send `file` (A4) to a printer, if there is one.
    pub fn print(&self, file: &Path, title: &str) -> Printed {
        let queue = match self.choose() {
            Ok(q) => q,
            Err(reason) => return Printed::SavedOnly { reason },
        };
        let out = Command::new(&self.lp)
            .env("LC_ALL", "C")
            .arg("-d")
            .arg(&queue)
            .arg("-t")
            .arg(title)
            .arg("-o")
            .arg("media=A4")
            .arg(file)
            .output();
        match out {
            Err(e) => Printed::SavedOnly {
                reason: format!("lp could not be run: {e}"),
            },
            Ok(o) if !o.status.success() => Printed::SavedOnly {
                reason: format!(
                    "lp refused the job: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            },
            Ok(o) => {
                // "request id is PDF-3 (1 file(s))"
                let text = String::from_utf8_lossy(&o.stdout);
                let job = text
                    .split("request id is ")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .map(str::to_owned);
                Printed::Sent { queue, job }
            }
        }
    }
}

/// Write `doc` into `dir` under its own name (never over another file: `-2`, `-3`, … added).
pub fn save(dir: &Path, doc: &Rendered) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("the folder could not be made: {e}"))?;
    let name = Path::new(&doc.file_name);
    let stem = name
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "document".to_owned());
    let ext = name
        .extension()
        .map(|s| format!(".{}", s.to_string_lossy()))
        .unwrap_or_default();
    for n in 1..1000 {
        let file = if n == 1 {
            format!("{stem}{ext}")
        } else {
            format!("{stem}-{n}{ext}")
        };
        let path = dir.join(file);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                use std::io::Write as _;
                f.write_all(&doc.bytes)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| format!("the file could not be written: {e}"))?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("the file could not be written: {e}")),
        }
    }
    Err("too many files of that name in the folder".to_owned())
}

/// Save `doc` into `dir`, then print it when a printer exists.
pub fn save_and_print(
    dir: &Path,
    doc: &Rendered,
    printer: &Printer,
) -> Result<PaperOutcome, String> {
    let path = save(dir, doc)?;
    let title = Path::new(&doc.file_name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let printed = printer.print(&path, &title);
    Ok(PaperOutcome { path, printed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::LeftOut;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn doc() -> Rendered {
        Rendered {
            file_name: "在所者一覧-S1-20260901-1001.pdf".into(),
            bytes: b"%PDF-1.7 test".to_vec(),
            rows: 1,
            left_out: LeftOut::default(),
        }
    }

    /// A CUPS with queues `Office` and `PDF` (default `PDF`), its `lp` recording its arguments.
    fn cups(dir: &Path, lp_body: &str) -> Printer {
        let log = dir.join("lp.args");
        Printer {
            lp: script(
                dir,
                "lp",
                &format!(
                    "for a in \"$@\"; do printf '%s\\n' \"$a\" >> '{}'; done\n{lp_body}",
                    log.display()
                ),
            ),
            lpstat: script(
                dir,
                "lpstat",
                "case \"$1\" in\n-a) echo 'Office accepting requests since Sun 06 Dec 2026'; echo 'PDF accepting requests since Sun 06 Dec 2026';;\n-d) echo 'system default destination: PDF';;\nesac",
            ),
            queue: None,
        }
    }

    #[test]
    fn a_document_is_saved_then_sent_to_the_default_queue_with_lp() {
        let tools = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let printer = cups(tools.path(), "echo 'request id is PDF-3 (1 file(s))'");
        let r = save_and_print(out.path(), &doc(), &printer).unwrap();
        assert_eq!(std::fs::read(&r.path).unwrap(), b"%PDF-1.7 test");
        assert_eq!(
            r.printed,
            Printed::Sent {
                queue: "PDF".into(),
                job: Some("PDF-3".into())
            }
        );
        let args = std::fs::read_to_string(tools.path().join("lp.args")).unwrap();
        let args: Vec<&str> = args.lines().collect();
        let file = r.path.display().to_string();
        assert_eq!(
            args,
            [
                "-d",
                "PDF",
                "-t",
                "在所者一覧-S1-20260901-1001",
                "-o",
                "media=A4",
                file.as_str()
            ]
        );
        assert!(
            r.words().contains("プリンタ PDF に送りました（PDF-3）"),
            "{}",
            r.words()
        );
        // A second save does not overwrite the first.
        let again = save_and_print(out.path(), &doc(), &printer).unwrap();
        assert!(again.path.ends_with("在所者一覧-S1-20260901-1001-2.pdf"));
        assert!(r.path.exists());
    }

    #[test]
    fn a_configured_queue_is_used_and_an_absent_one_only_saves() {
        let tools = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let mut printer = cups(tools.path(), "echo 'request id is Office-9 (1 file(s))'");
        printer.queue = Some("Office".into());
        let r = save_and_print(out.path(), &doc(), &printer).unwrap();
        assert!(matches!(r.printed, Printed::Sent { ref queue, .. } if queue == "Office"));

        printer.queue = Some("Gone".into());
        let r = save_and_print(out.path(), &doc(), &printer).unwrap();
        assert_eq!(
            r.printed,
            Printed::SavedOnly {
                reason: "the printer Gone is not accepting jobs".into()
            }
        );
        assert!(r.path.exists());
        let calls = std::fs::read_to_string(tools.path().join("lp.args")).unwrap();
        assert_eq!(calls.matches("-d\n").count(), 1, "lp ran once: {calls}");
    }

    #[test]
    fn without_cups_or_when_lp_refuses_the_file_is_saved_and_the_reason_said() {
        let tools = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let none = Printer {
            lp: tools.path().join("no-lp"),
            lpstat: tools.path().join("no-lpstat"),
            queue: None,
        };
        let r = save_and_print(out.path(), &doc(), &none).unwrap();
        assert!(r.path.exists());
        match &r.printed {
            Printed::SavedOnly { reason } => assert!(reason.contains("lpstat"), "{reason}"),
            p => panic!("{p:?}"),
        }
        assert!(r.words().contains("印刷はしていません"), "{}", r.words());

        let empty = Printer {
            lpstat: script(
                tools.path(),
                "lpstat0",
                "echo 'lpstat: No destinations added.' >&2; exit 1",
            ),
            ..none
        };
        let r = save_and_print(out.path(), &doc(), &empty).unwrap();
        assert_eq!(
            r.printed,
            Printed::SavedOnly {
                reason: "no printer is set up".into()
            }
        );

        let refusing = cups(
            tools.path(),
            "echo 'lp: The printer or class is not shared.' >&2; exit 1",
        );
        let r = save_and_print(out.path(), &doc(), &refusing).unwrap();
        assert_eq!(
            r.printed,
            Printed::SavedOnly {
                reason: "lp refused the job: lp: The printer or class is not shared.".into()
            }
        );
        assert!(r.path.exists());
    }
}
