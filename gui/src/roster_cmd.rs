//! `kazashi roster`: lint a roster file, import it into an encrypted roster store, show what a
//! store holds. The column mapping is in `docs/roster-csv.md`. (A sample file of the synthetic
//! city comes from the lab: `kazashi-lab roster-sample`.)

use anyhow::Context as _;
use kazashi_domain::CivilDate;
use kazashi_domain::ids::RosterHash;
use kazashi_domain::roster::RosterKind;
use kazashi_node::KdfParams;
use kazashi_node::roster_csv::{Lint, Mapping, ReadOptions, SourceEncoding, read};
use kazashi_node::roster_db::RosterDb;
use kazashi_node::roster_import::{ImportError, ImportOptions, Phase, import_file};
use std::io::Write as _;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct RosterArgs {
    #[command(subcommand)]
    pub command: RosterCommand,
}

/// How to read a roster file.
#[derive(clap::Args, Debug, Clone)]
pub struct ReadArgs {
    /// The CSV file (UTF-8 with or without BOM, or Shift_JIS/CP932).
    pub file: PathBuf,
    /// A voter list (選挙人名簿): 投票区, 名簿番号 and the early/absentee flags are required.
    #[arg(long)]
    pub voters: bool,
    /// A mapping file: `field = header` per line (see docs/roster-csv.md).
    #[arg(long)]
    pub map: Option<PathBuf>,
    /// Read as this encoding instead of detecting it: utf-8 or cp932.
    #[arg(long)]
    pub encoding: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
pub enum RosterCommand {
    /// Check a roster file and report every problem; changes nothing.
    Lint(ReadArgs),
    /// Check a roster file and, if it has no errors, write it to an encrypted roster store
    /// (replacing the roster there only once the new one is complete). Prints the hash to pin
    /// in the deployment manifest.
    Import {
        #[command(flatten)]
        read: ReadArgs,
        /// The roster store to write.
        #[arg(long)]
        out: PathBuf,
        /// Environment variable holding the roster store's passphrase.
        #[arg(long, default_value = "KAZASHI_ROSTER_PASSPHRASE")]
        passphrase_env: String,
        /// Refuse the file unless its roster has this hash (the one pinned in the manifest).
        #[arg(long)]
        expect_hash: Option<String>,
        /// Cheap key derivation (tests and drills only).
        #[arg(long, hide = true)]
        insecure_fast_kdf: bool,
    },
    /// What a roster store holds: kind, count and hash.
    Info {
        store: PathBuf,
        #[arg(long, default_value = "KAZASHI_ROSTER_PASSPHRASE")]
        passphrase_env: String,
    },
}

/// The roster store's passphrase from the environment variable `env`.
pub fn passphrase(env: &str) -> anyhow::Result<String> {
    std::env::var(env).map_err(|_| anyhow::anyhow!("set the roster store's passphrase in {env}"))
}

fn today() -> anyhow::Result<CivilDate> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    CivilDate::jst_of(u64::try_from(now.as_millis()).unwrap_or(u64::MAX))
        .context("the system clock is out of range")
}

fn options(a: &ReadArgs) -> anyhow::Result<ReadOptions> {
    let mapping = match &a.map {
        Some(p) => {
            Mapping::parse(&std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?)
                .map_err(anyhow::Error::msg)?
        }
        None => Mapping::default(),
    };
    let encoding = match a.encoding.as_deref() {
        None => None,
        Some("utf-8" | "utf8") => Some(SourceEncoding::Utf8),
        Some("cp932" | "sjis" | "shift_jis") => Some(SourceEncoding::Cp932),
        Some(o) => anyhow::bail!("unknown encoding {o:?}: utf-8 or cp932"),
    };
    Ok(ReadOptions {
        kind: if a.voters {
            RosterKind::Voters
        } else {
            RosterKind::Residents
        },
        mapping,
        today: today()?,
        encoding,
    })
}

/// The lint report on standard error: what a person reads before anything is used.
fn report(lint: &Lint) {
    let mut err = std::io::stderr().lock();
    if let Some(e) = lint.encoding {
        let _ = writeln!(err, "encoding: {e}; rows: {}", lint.rows);
    }
    for f in &lint.findings {
        let _ = writeln!(err, "{f}");
    }
    for (rule, n) in &lint.counts {
        let shown = lint.findings.iter().filter(|f| f.rule == *rule).count() as u64;
        if *n > shown {
            let _ = writeln!(err, "… and {} more [{}]", n - shown, rule.code());
        }
    }
}

fn progress_bar(label: &'static str) -> impl FnMut(u64, u64) {
    let mut last = u64::MAX;
    move |done, total| {
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        if pct != last {
            last = pct;
            let bar = "#".repeat((pct / 5) as usize);
            eprint!("\r{label} [{bar:<20}] {pct:>3}%");
            if pct >= 100 {
                eprintln!();
            }
        }
    }
}

fn read_file(a: &ReadArgs) -> anyhow::Result<(Vec<u8>, ReadOptions)> {
    let bytes = std::fs::read(&a.file).with_context(|| format!("{}", a.file.display()))?;
    Ok((bytes, options(a)?))
}

pub fn run(args: &RosterArgs) -> anyhow::Result<()> {
    match &args.command {
        RosterCommand::Lint(a) => {
            let (bytes, opts) = read_file(a)?;
            match read(&bytes, &opts, &mut |_, _| {}) {
                Ok(imp) => {
                    report(&imp.lint);
                    println!(
                        "{}",
                        serde_json::json!({"ok": true, "rows": imp.lint.rows, "persons": imp.len(),
                            "warnings": imp.lint.warnings().count(), "hash": imp.hash().to_hex()})
                    );
                    Ok(())
                }
                Err(lint) => {
                    report(&lint);
                    Err(anyhow::anyhow!(
                        "{} refused: {} error(s); nothing was used",
                        a.file.display(),
                        lint.error_count()
                    ))
                }
            }
        }
        RosterCommand::Import {
            read: a,
            out,
            passphrase_env,
            expect_hash,
            insecure_fast_kdf,
        } => {
            let pass = passphrase(passphrase_env)?;
            let expect = expect_hash
                .as_deref()
                .map(RosterHash::from_hex)
                .transpose()
                .context("--expect-hash")?;
            let params = if *insecure_fast_kdf {
                KdfParams::FAST_INSECURE
            } else {
                KdfParams::STANDARD
            };
            let read_opts = options(a)?;
            let opts = ImportOptions {
                read: &read_opts,
                passphrase: &pass,
                params,
                expect,
            };
            // Streamed: the file is read row by row and never held whole in memory.
            let mut read_bar = progress_bar("読み込み read ");
            let mut index_bar = progress_bar("索引 index  ");
            let done = import_file(&a.file, out, &opts, &mut |phase, done, total| match phase {
                Phase::Read => read_bar(done, total),
                Phase::Index => index_bar(done, total),
            });
            let (db, lint) = match done {
                Ok(x) => x,
                Err(ImportError::Refused(lint)) => {
                    eprintln!();
                    report(&lint);
                    anyhow::bail!(
                        "{} refused: nothing was imported and the roster store is unchanged",
                        a.file.display()
                    );
                }
                Err(e) => return Err(e.into()),
            };
            report(&lint);
            println!(
                "{}",
                serde_json::json!({"ok": true, "persons": db.len(), "hash": db.hash().to_hex(),
                    "warnings": lint.warnings().count(), "store": out.display().to_string()})
            );
            Ok(())
        }
        RosterCommand::Info {
            store,
            passphrase_env,
        } => {
            let db = RosterDb::open(store, &passphrase(passphrase_env)?)?;
            let kind = match db.kind() {
                RosterKind::Residents => "residents",
                RosterKind::Voters => "voters",
            };
            println!(
                "{}",
                serde_json::json!({"kind": kind, "persons": db.len(), "hash": db.hash().to_hex()})
            );
            Ok(())
        }
    }
}
