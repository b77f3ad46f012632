//! `kazashi update`: a new `kazashi` package carried on a USB stick, signed by the deployment.
//!
//! - `sign` (the administrator, with the deployment key of `kazashi deployment`): reads the
//!   package's name and version with `dpkg-deb`, and writes `kazashi-<version>.kzu`
//!   (`kazashi_node::update`: the package, its version, the deployment id and the deployment
//!   key's signature).
//! - `verify` (a laptop): checks the file against the deployment key pinned in the laptop's
//!   store at enrolment (under its passphrase), or with `--pin` against root's copy of that
//!   key (`/etc/kazashi/update-pin.json`, no passphrase), and the installed version; changes
//!   nothing.
//! - `apply` (a laptop, as root): verifies, writes the verified bytes to a private temporary
//!   file, checks that file's SHA-256 and its control fields again, and passes *that* file to
//!   `dpkg -i`; the stick is never read again after the check. The path may be a stick: every
//!   `*.kzu` in it or its `kazashi/update/` is checked and the newest verified one applied.
//!   `--pin` as for `verify`.
//! - `pin` (root, `kazashi-pin.service`): takes the folder's public update pin into
//!   `/etc/kazashi/update-pin.json` on first use; the same pin again changes nothing; a
//!   different one is refused (`kazashi_node::update_pin`).
//!
//! The programs are `dpkg`, `dpkg-deb` and `dpkg-query`, or those named by `KAZASHI_DPKG`,
//! `KAZASHI_DPKG_DEB` and `KAZASHI_DPKG_QUERY` (the tests record what `dpkg` was given).

use crate::admin_args::AdminArgs;
use crate::node_cmd::StoreArgs;
use anyhow::{Context as _, bail};
use kazashi_node::update::{self, Pin, UpdateError, sha256};
use kazashi_node::update_pin;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    #[command(subcommand)]
    pub command: UpdateCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum UpdateCommand {
    /// Sign a kazashi .deb with the deployment key (the administrator's folder), for laptops to
    /// install from a USB stick.
    Sign {
        #[command(flatten)]
        admin: AdminArgs,
        /// The package (kazashi_<version>_amd64.deb).
        #[arg(long)]
        deb: PathBuf,
        /// Where to write: a folder (kazashi-<version>.kzu is written into it, made if missing)
        /// or a file ending in .kzu. E.g. /media/usb/kazashi/update/
        #[arg(long)]
        out: PathBuf,
        /// The version the package must have (checked against its control file).
        #[arg(long)]
        version: Option<String>,
    },
    /// Check an update file against this laptop's deployment key and installed version.
    /// Changes nothing.
    Verify {
        /// The .kzu file.
        file: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        /// Accept a version not newer than the installed one.
        #[arg(long)]
        allow_downgrade: bool,
        /// Verify against this update pin (root's /etc/kazashi/update-pin.json) instead of the
        /// store: no passphrase is read and the folder is not opened.
        #[arg(long)]
        pin: Option<PathBuf>,
    },
    /// Verify, then install with `dpkg -i` (as root). FILE may be a stick's folder: the newest
    /// verified `*.kzu` in it or in its `kazashi/update/` is applied.
    Apply {
        /// The .kzu file, or a folder holding them.
        file: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        /// Accept a version not newer than the installed one.
        #[arg(long)]
        allow_downgrade: bool,
        /// Verify and check the package, but do not run dpkg.
        #[arg(long)]
        dry_run: bool,
        /// Verify against this update pin (root's /etc/kazashi/update-pin.json) instead of the
        /// store: no passphrase is read and the folder is not opened.
        #[arg(long)]
        pin: Option<PathBuf>,
    },
    /// Take the folder's update pin (<dir>/update-pin.json, written at enrolment) as the
    /// deployment key this machine trusts (as root): copied to --pin if none is there, nothing
    /// if the same, refused (exit 1, nothing changed) if different.
    Pin {
        /// The laptop's folder.
        #[arg(long)]
        dir: PathBuf,
        /// Root's pin.
        #[arg(long, default_value = kazashi_node::update_pin::TRUSTED_PIN)]
        pin: PathBuf,
    },
}

/// Where the trusted key came from, for the output.
fn trust(pin_file: Option<&Path>) -> String {
    pin_file.map_or_else(|| "store".to_owned(), |p| format!("pin {}", p.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn program(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// The package's `Package` and `Version` fields, by `dpkg-deb --field`.
fn control_fields(deb: &Path) -> anyhow::Result<(String, String)> {
    let prog = program("KAZASHI_DPKG_DEB", "dpkg-deb");
    let out = Command::new(&prog)
        .arg("--field")
        .arg(deb)
        .args(["Package", "Version"])
        .output()
        .with_context(|| format!("running {prog} to read the package's version"))?;
    if !out.status.success() {
        bail!(
            "{} is not a Debian package ({prog}: {}): refused",
            deb.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
            .map(|v| v.trim().to_owned())
    };
    match (field("Package"), field("Version")) {
        (Some(p), Some(v)) => Ok((p, v)),
        _ => bail!("{} has no Package or Version field: refused", deb.display()),
    }
}

/// The installed kazashi's version: dpkg's record of the package, else this binary's own.
fn installed_version() -> String {
    let prog = program("KAZASHI_DPKG_QUERY", "dpkg-query");
    let asked = Command::new(prog)
        .args(["--show", "--showformat=${Version}", "kazashi"])
        .output();
    match asked {
        Ok(out) if out.status.success() => {
            let v = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if update::check_version(&v).is_ok() {
                return v;
            }
            env!("CARGO_PKG_VERSION").to_owned()
        }
        _ => env!("CARGO_PKG_VERSION").to_owned(),
    }
}

/// A file's bytes, refused without reading it all if it is larger than any update can be.
fn read_bounded(path: &Path) -> anyhow::Result<Vec<u8>> {
    let limit = update::MAX_PACKAGE + 4096;
    let file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}", path.display()))?;
    if bytes.len() as u64 > limit {
        return Err(UpdateError::TooLarge.into());
    }
    Ok(bytes)
}

fn sign(admin: &AdminArgs, deb: &Path, out: &Path, version: Option<&str>) -> anyhow::Result<()> {
    let pass = admin.passphrase()?;
    let (name, deb_version) = control_fields(deb)?;
    if name != "kazashi" {
        bail!("the package is {name:?}, not kazashi: refused, nothing signed");
    }
    if let Some(v) = version
        && v != deb_version
    {
        bail!("the package's version is {deb_version}, not {v}: refused, nothing signed");
    }
    let package = read_bounded(deb)?;
    let (bytes, pin) = update::sign_update(&admin.folder(), &pass, &deb_version, &package)?;
    let target = if out.extension().is_some_and(|e| e == update::EXTENSION) && !out.is_dir() {
        out.to_path_buf()
    } else {
        out.join(update::file_name(&deb_version))
    };
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("{}", parent.display()))?;
    }
    kazashi_node::store::write_atomic(&target, &bytes)
        .with_context(|| format!("writing {}", target.display()))?;
    let digest: [u8; 32] = sha256(&package);
    println!(
        "{}",
        serde_json::json!({"ok": true, "file": target.display().to_string(),
            "version": deb_version, "deployment": pin.deployment.to_hex(),
            "admin_fingerprint": kazashi_node::enrolment::fingerprint(&pin.admin),
            "sha256": hex(&digest), "bytes": package.len()})
    );
    Ok(())
}

/// The laptop's pin: from `pin_file` (root's copy, no passphrase) if given, else from its
/// store.
fn pin(store: &StoreArgs, pin_file: Option<&Path>) -> anyhow::Result<Pin> {
    if let Some(path) = pin_file {
        return update_pin::read(path)?.with_context(|| {
            format!(
                "no update pin at {}: this machine trusts no deployment key yet \
                 (kazashi-pin.service takes it from the enrolled folder), nothing installed",
                path.display()
            )
        });
    }
    let (pass, _) = store.passphrases()?;
    Ok(update::pin_of(&store.folder(), &pass)?)
}

/// `kazashi update pin`: root takes the folder's pin on first use.
fn pin_cmd(dir: &Path, trusted: &Path) -> anyhow::Result<()> {
    let offered = update_pin::in_folder(dir);
    let (taken, pin) = match update_pin::take(&offered, trusted)? {
        update_pin::Taken::NoFolderPin => {
            println!(
                "{}",
                serde_json::json!({"ok": true, "pinned": false,
                    "reason": "the folder holds no update pin yet (not enrolled)",
                    "folder_pin": offered.display().to_string()})
            );
            return Ok(());
        }
        update_pin::Taken::New(p) => ("new", p),
        update_pin::Taken::Unchanged(p) => ("unchanged", p),
    };
    println!(
        "{}",
        serde_json::json!({"ok": true, "pinned": taken, "pin": trusted.display().to_string(),
            "deployment": pin.deployment.to_hex(),
            "admin_fingerprint": kazashi_node::enrolment::fingerprint(&pin.admin)})
    );
    Ok(())
}

/// The update files at `path`: the file itself, or every `*.kzu` in the folder and in its
/// `kazashi/update/`, sorted.
fn candidates(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut found = Vec::new();
    for dir in [path.to_path_buf(), path.join("kazashi").join("update")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_file() && p.extension().is_some_and(|x| x == update::EXTENSION) {
                found.push(p);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// A file read once and verified: its bytes are kept, the package inside is what was checked.
struct Checked {
    path: PathBuf,
    bytes: Vec<u8>,
    version: String,
    sha256: [u8; 32],
}

fn check(path: &Path, pin: &Pin, installed: &str, allow: bool) -> anyhow::Result<Checked> {
    let bytes = read_bounded(path)?;
    let v = update::verify(&bytes, pin, installed, allow)?;
    let (version, sha256) = (v.version.to_owned(), v.sha256);
    Ok(Checked {
        path: path.to_path_buf(),
        bytes,
        version,
        sha256,
    })
}

fn verify_cmd(
    file: &Path,
    store: &StoreArgs,
    allow: bool,
    pin_file: Option<&Path>,
) -> anyhow::Result<()> {
    let pin = pin(store, pin_file)?;
    let installed = installed_version();
    let c = check(file, &pin, &installed, allow)
        .with_context(|| format!("the update {}", file.display()))?;
    println!(
        "{}",
        serde_json::json!({"ok": true, "verified": true, "file": c.path.display().to_string(),
            "version": c.version, "installed": installed,
            "deployment": pin.deployment.to_hex(), "sha256": hex(&c.sha256),
            "trust": trust(pin_file)})
    );
    Ok(())
}

/// A folder only this process's user can enter, removed when dropped.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn new() -> anyhow::Result<Self> {
        use std::os::unix::fs::DirBuilderExt as _;
        let tag: [u8; 16] = kazashi_node::store::random_bytes()?;
        let dir = std::env::temp_dir().join(format!("kazashi-update-{}", hex(&tag)));
        // Made anew (never an existing path), 0700.
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("making {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn apply_cmd(
    path: &Path,
    store: &StoreArgs,
    allow: bool,
    dry_run: bool,
    pin_file: Option<&Path>,
) -> anyhow::Result<()> {
    let pin = pin(store, pin_file)?;
    let installed = installed_version();
    let files = candidates(path)?;
    let mut refused = Vec::new();
    let mut best: Option<Checked> = None;
    for f in &files {
        match check(f, &pin, &installed, allow) {
            Ok(c) => {
                let newer = best.as_ref().is_none_or(|b| {
                    update::compare_versions(&c.version, &b.version) == std::cmp::Ordering::Greater
                });
                if newer {
                    best = Some(c);
                }
            }
            Err(e) => refused.push(format!("{}: {e:#}", f.display())),
        }
    }
    let Some(c) = best else {
        if refused.is_empty() {
            println!(
                "{}",
                serde_json::json!({"ok": true, "applied": false, "reason": "no update file",
                    "path": path.display().to_string()})
            );
            return Ok(());
        }
        bail!("nothing installed: {}", refused.join("; "));
    };
    // The verified bytes, to a private file; the stick is not read again.
    let tmp = PrivateDir::new()?;
    let deb = tmp.0.join("kazashi.deb");
    {
        let package = update::verify(&c.bytes, &pin, &installed, allow)?.package;
        kazashi_node::store::write_atomic(&deb, package)
            .with_context(|| format!("writing {}", deb.display()))?;
    }
    drop(c.bytes);
    // What dpkg will read is what was signed.
    let written = std::fs::read(&deb).with_context(|| format!("{}", deb.display()))?;
    if sha256(&written) != c.sha256 {
        bail!(
            "the package written to {} differs from the signed one: nothing installed",
            deb.display()
        );
    }
    drop(written);
    let (name, deb_version) = control_fields(&deb)?;
    if name != "kazashi" || deb_version != c.version {
        bail!(
            "the signed package is {name} {deb_version}, not kazashi {}: refused, nothing installed",
            c.version
        );
    }
    let dpkg = program("KAZASHI_DPKG", "dpkg");
    if !dry_run {
        let status = Command::new(&dpkg)
            .arg("-i")
            .arg(&deb)
            .status()
            .with_context(|| format!("running {dpkg}"))?;
        if !status.success() {
            bail!(
                "{dpkg} -i failed ({status}) installing kazashi {}",
                c.version
            );
        }
    }
    println!(
        "{}",
        serde_json::json!({"ok": true, "applied": !dry_run, "dry_run": dry_run,
            "file": c.path.display().to_string(), "version": c.version,
            "installed_before": installed, "sha256": hex(&c.sha256), "refused": refused,
            "trust": trust(pin_file)})
    );
    Ok(())
}

pub fn run(args: &UpdateArgs) -> anyhow::Result<()> {
    match &args.command {
        UpdateCommand::Sign {
            admin,
            deb,
            out,
            version,
        } => sign(admin, deb, out, version.as_deref()),
        UpdateCommand::Verify {
            file,
            store,
            allow_downgrade,
            pin,
        } => verify_cmd(file, store, *allow_downgrade, pin.as_deref()),
        UpdateCommand::Apply {
            file,
            store,
            allow_downgrade,
            dry_run,
            pin,
        } => apply_cmd(file, store, *allow_downgrade, *dry_run, pin.as_deref()),
        UpdateCommand::Pin { dir, pin } => pin_cmd(dir, pin),
    }
}
