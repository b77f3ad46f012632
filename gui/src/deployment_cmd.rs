//! `kazashi deployment`: the administrator's folder — create a deployment, approve a laptop's
//! enrolment request, revoke a laptop, pin a roster, back up the signing key, show the manifest,
//! close the operation and, after its retention period, purge the folder's purpose keys
//! (`kazashi_node::admin_purge`).
//! Every change signs the next manifest version into `manifest-vN.kzm` and `manifest.kzm`; the
//! laptops install `manifest.kzm` with `kazashi enrol --install`. The folder's layout and the
//! sites file are in `kazashi_node::deployment_admin` and `docs/deploy.md`.

use anyhow::Context as _;
use kazashi_domain::ids::RosterHash;
use kazashi_domain::{CivilDate, Millis, SiteId, SiteKind};
use kazashi_node::deployment_admin::{AdminFolder, Operation, read_sites};
use kazashi_node::enrolment::Request;
use kazashi_node::roster_db::RosterDb;
use kazashi_sync::{KeyPurpose, Membership, Role};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct DeploymentArgs {
    #[command(subcommand)]
    pub command: DeploymentCommand,
}

pub use crate::admin_args::{AdminArgs, published};

#[derive(clap::Subcommand, Debug)]
pub enum DeploymentCommand {
    /// Create a deployment: its signing key (encrypted under the passphrase) and manifest
    /// version 1 with the sites of a CSV or TOML file.
    Init {
        #[command(flatten)]
        admin: AdminArgs,
        /// The municipality ("三条市").
        #[arg(long)]
        municipality: String,
        /// What the operation is called ("令和8年7月豪雨", "市長選挙").
        #[arg(long, default_value = "")]
        title: String,
        /// A shelter operation.
        #[arg(
            long,
            conflicts_with = "election",
            required_unless_present = "election"
        )]
        shelters: bool,
        /// An election on this day (YYYY-MM-DD).
        #[arg(long, requires = "early_from")]
        election: Option<String>,
        /// The first day of early voting (YYYY-MM-DD).
        #[arg(long)]
        early_from: Option<String>,
        /// The sites: CSV (header code,name,kind,capacity,shelter_type,precincts) or TOML
        /// (`[[site]]` tables with the same keys).
        #[arg(long)]
        sites: PathBuf,
        /// The deployment-wide staff: CSV (header staff_id,name,role,pin,sites,card) or TOML
        /// (`[[staff]]` tables). PINs are hashed (Argon2id) before signing; only the hashes
        /// are in the manifest. Shred the file afterwards.
        #[arg(long)]
        staff: Option<PathBuf>,
        /// A JPKI CA certificate (X.509 DER) whose cards may unlock, approve an override or
        /// check a voter in (with the card's PIN); repeat for each CA. None: no card grants
        /// authority, only PINs do.
        #[arg(long = "card-ca")]
        card_ca: Vec<PathBuf>,
        /// Days after the operation is closed that personal data is kept before each laptop
        /// purges it (unset: kept until set).
        #[arg(long = "retention-days")]
        retention_days: Option<u32>,
    },
    /// Let a laptop hold the medical or manager key from the next version on: its medical
    /// staff (medical) or leads (manager) can then read the sealed notes.
    Grant {
        #[command(flatten)]
        admin: AdminArgs,
        /// The device id (hex, or its first 8 or more digits).
        #[arg(long)]
        device: String,
        /// medical or manager.
        #[arg(long)]
        holds: String,
    },
    /// Stop sealing the medical or manager key to a laptop from the next version on (what it
    /// already holds is not taken back: the keys are not rotated).
    RevokeHolds {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        device: String,
        /// medical or manager.
        #[arg(long)]
        holds: String,
    },
    /// Set how many days after closing personal data is kept (`none` clears it).
    SetRetention {
        #[command(flatten)]
        admin: AdminArgs,
        days: String,
    },
    /// Whether the window offers a receipt slip (受付票) after a check-in: `on` or `off`.
    ReceiptSlips {
        #[command(flatten)]
        admin: AdminArgs,
        state: String,
    },
    /// Replace the JPKI CA certificates (X.509 DER, `--card-ca FILE`, repeated) the
    /// deployment trusts for cards, in the next version.
    CardCa {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long = "card-ca", required = true)]
        card_ca: Vec<PathBuf>,
    },
    /// Add the laptop of an enrolment request, once its fingerprint has been read out and typed.
    Approve {
        #[command(flatten)]
        admin: AdminArgs,
        /// The laptop's `enrol-request.json`.
        #[arg(long)]
        request: PathBuf,
        /// The fingerprint as the laptop's operator reads it out (digits; spaces ignored).
        #[arg(long)]
        fingerprint: String,
        /// The site code the laptop works at.
        #[arg(long)]
        site: String,
        /// station, command-center or relay.
        #[arg(long, default_value = "station")]
        role: String,
    },
    /// Revoke a laptop: its events stamped from TIME on are refused.
    Revoke {
        #[command(flatten)]
        admin: AdminArgs,
        /// The device id (hex, or its first 8 or more digits).
        device: String,
        /// `now`, milliseconds since 1970, or a JST time YYYY-MM-DDTHH:MM.
        #[arg(long)]
        from: String,
    },
    /// Pin a roster store's hash in the next manifest version.
    PinRoster {
        #[command(flatten)]
        admin: AdminArgs,
        /// The roster store written by `kazashi roster import`.
        #[arg(long, required_unless_present = "hash", conflicts_with = "hash")]
        roster: Option<PathBuf>,
        /// Environment variable holding the roster store's passphrase.
        #[arg(long, default_value = "KAZASHI_ROSTER_PASSPHRASE")]
        roster_passphrase_env: String,
        /// The hash `kazashi roster import` printed, instead of the store.
        #[arg(long)]
        hash: Option<String>,
    },
    /// Copy the encrypted key file to a folder (a USB stick) as a backup.
    ExportKey {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        to: PathBuf,
    },
    /// Receive enrolment requests over the LAN (kept in the folder's `requests/`, printed as
    /// JSON lines) and send each waiting laptop the manifest once `approve` lists it.
    ServeEnrol(crate::enrol_cmd::ServeArgs),
    /// The deployment-wide staff list: add, remove, set a PIN (each signs the next version).
    Staff(crate::staff_cmd::DeploymentStaffArgs),
    /// Close the operation: sign the last manifest version, with the closing time. Laptops
    /// that adopt it write nothing more (they still sync, export and report).
    Close {
        #[command(flatten)]
        admin: AdminArgs,
        /// `now`, milliseconds since 1970, or a JST time YYYY-MM-DDTHH:MM.
        #[arg(long, default_value = "now")]
        at: String,
    },
    /// Destroy the folder's purpose keys (medical, manager, operation) once the operation is
    /// closed and its retention period has passed; write `purged.json`. The key file and the
    /// manifests stay for the record; the folder signs nothing after.
    Purge {
        #[command(flatten)]
        admin: AdminArgs,
        /// The deployment's id (as `deployment show` prints it), typed back to confirm.
        #[arg(long)]
        confirm: Option<String>,
    },
    /// The latest manifest: deployment, version, sites, laptops, revocations, roster, staff.
    Show {
        /// The administrator's deployment folder.
        #[arg(long)]
        dir: PathBuf,
    },
}

fn date(s: &str, what: &str) -> anyhow::Result<CivilDate> {
    CivilDate::parse(s).map_err(|e| anyhow::anyhow!("{what} {s:?}: {e}"))
}

fn now_ms() -> anyhow::Result<Millis> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    Ok(u64::try_from(now.as_millis()).unwrap_or(u64::MAX))
}

/// `now`, milliseconds, or a JST time `YYYY-MM-DDTHH:MM`; a refusal names `flag`.
pub fn parse_time(s: &str, flag: &str) -> anyhow::Result<Millis> {
    let t = s.trim();
    if t == "now" {
        return now_ms();
    }
    if let Ok(ms) = t.parse::<u64>() {
        return Ok(ms);
    }
    let bad = || anyhow::anyhow!("{flag} {t:?}: now, milliseconds, or YYYY-MM-DDTHH:MM (JST)");
    let (day, clock) = t.split_once('T').ok_or_else(bad)?;
    let (h, m) = clock.split_once(':').ok_or_else(bad)?;
    let h: u64 = h.parse().map_err(|_| bad())?;
    let m: u64 = m.parse().map_err(|_| bad())?;
    if h > 23 || m > 59 {
        return Err(bad());
    }
    let midnight = CivilDate::parse(day)
        .ok()
        .and_then(|d| d.jst_midnight())
        .ok_or_else(bad)?;
    Ok(midnight + (h * 60 + m) * 60_000)
}

fn role(s: &str) -> anyhow::Result<Role> {
    Ok(match s {
        "station" => Role::Station,
        "command-center" => Role::CommandCenter,
        "relay" => Role::Relay,
        o => anyhow::bail!("role {o:?}: station, command-center or relay"),
    })
}

/// `--holds`: a purpose key the administrator grants laptop by laptop.
fn purpose(s: &str) -> anyhow::Result<KeyPurpose> {
    match KeyPurpose::from_code(s.trim()) {
        Some(p) if p.granted() => Ok(p),
        _ => anyhow::bail!("--holds {s:?}: medical or manager"),
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Station => "station",
        Role::CommandCenter => "command-center",
        Role::Relay => "relay",
    }
}

/// What a manifest holds, as JSON (device labels and site names; no person's data).
pub fn summary(m: &Membership) -> serde_json::Value {
    let d = m.deployment();
    let sites: Vec<_> = d
        .sites()
        .map(|s| {
            let kind = match &s.kind {
                SiteKind::Shelter { capacity, .. } => format!("shelter ({capacity})"),
                SiteKind::PollingStation {
                    precincts,
                    early_voting,
                    election_day,
                } => format!(
                    "polling{}{} [{}]",
                    if *election_day { " day" } else { "" },
                    if *early_voting { " early" } else { "" },
                    precincts
                        .iter()
                        .map(|p| p.as_str())
                        .collect::<Vec<_>>()
                        .join(";")
                ),
                SiteKind::CommandCenter => "command".into(),
            };
            serde_json::json!({"code": s.id.as_str(), "name": s.name.as_str(), "kind": kind})
        })
        .collect();
    let devices: Vec<_> = m
        .manifest()
        .devices
        .iter()
        .map(|e| {
            serde_json::json!({"device": e.device.to_hex(), "label": e.label.as_str(),
                "role": role_name(e.role),
                "sites": e.sites.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                "revoked_from_ms": m.revoked_from(&e.device),
                "holds": m.purposes_of(&e.device).iter().map(|p| p.code()).collect::<Vec<_>>()})
        })
        .collect();
    let staff: Vec<_> = m
        .manifest()
        .staff
        .iter()
        .map(|s| {
            serde_json::json!({"id": s.id.as_str(), "name": s.name.as_str(),
                "role": s.role.code(),
                "sites": s.sites.iter().map(|x| x.as_str()).collect::<Vec<_>>(),
                "pin": s.pin_hash.is_some(), "card": s.card.is_some()})
        })
        .collect();
    let roster = d.roster_hash();
    serde_json::json!({
        "staff": staff, "closed_at": m.closed_at(), "card_cas": m.card_cas().len(),
        "retention_days": m.retention_days(), "receipt_slips": m.receipt_slips(),
        "purpose_keys": m.sealed_keys().iter().map(|k| k.purpose.code()).collect::<Vec<_>>(),
        "deployment": d.id().to_hex(), "name": d.name().as_str(), "election": d.is_election(),
        "version": m.version(), "admin": m.manifest().admin.to_hex(),
        "admin_fingerprint": kazashi_node::enrolment::fingerprint(&m.manifest().admin),
        "fingerprint": m.fingerprint(),
        "roster": if roster == RosterHash([0; 32]) { None } else { Some(roster.to_hex()) },
        "sites": sites, "devices": devices,
    })
}

pub fn run(args: &DeploymentArgs) -> anyhow::Result<()> {
    match &args.command {
        DeploymentCommand::Init {
            admin,
            municipality,
            title,
            shelters: _,
            election,
            early_from,
            sites,
            staff,
            card_ca,
            retention_days,
        } => {
            let card_cas = read_card_cas(card_ca)?;
            let pass = admin.passphrase()?;
            let operation = match (election, early_from) {
                (Some(day), Some(from)) => Operation::Election {
                    day: date(day, "--election")?,
                    early_voting_from: date(from, "--early-from")?,
                },
                _ => Operation::Shelters,
            };
            let sites = read_sites(sites)?;
            let staff = match staff {
                Some(path) => kazashi_node::staff::read_staff(path)
                    .with_context(|| format!("the staff file {}", path.display()))?,
                None => Vec::new(),
            };
            let name = format!("{} {}", municipality.trim(), title.trim());
            let m = admin
                .folder()
                .init_full(
                    name.trim(),
                    operation,
                    sites,
                    staff,
                    card_cas,
                    *retention_days,
                    &pass,
                )
                .with_context(|| format!("creating the deployment in {}", admin.dir.display()))?;
            println!("{}", published(&admin.dir, &m));
            Ok(())
        }
        DeploymentCommand::Grant {
            admin,
            device,
            holds,
        } => {
            let purpose = purpose(holds)?;
            let pass = admin.passphrase()?;
            let m = admin
                .folder()
                .grant(&pass, device, purpose)
                .context("nothing was signed")?;
            println!("{}", published(&admin.dir, &m));
            Ok(())
        }
        DeploymentCommand::RevokeHolds {
            admin,
            device,
            holds,
        } => {
            let purpose = purpose(holds)?;
            let pass = admin.passphrase()?;
            let m = admin
                .folder()
                .revoke_holds(&pass, device, purpose)
                .context("nothing was signed")?;
            println!("{}", published(&admin.dir, &m));
            Ok(())
        }
        DeploymentCommand::SetRetention { admin, days } => {
            let days = match days.trim() {
                "none" => None,
                d => Some(
                    d.parse::<u32>()
                        .ok()
                        .filter(|n| *n <= kazashi_sync::manifest::MAX_RETENTION_DAYS)
                        .with_context(|| {
                            format!(
                                "the retention {d:?}: a number of days up to {}, or none",
                                kazashi_sync::manifest::MAX_RETENTION_DAYS
                            )
                        })?,
                ),
            };
            let pass = admin.passphrase()?;
            let m = admin
                .folder()
                .set_retention(&pass, days)
                .context("nothing was signed")?;
            println!("{}", published(&admin.dir, &m));
            Ok(())
        }
        DeploymentCommand::ReceiptSlips { admin, state } => {
            let on = match state.trim() {
                "on" => true,
                "off" => false,
                other => anyhow::bail!("receipt-slips {other:?}: on or off"),
            };
            let pass = admin.passphrase()?;
            let m = admin
                .folder()
                .set_receipt_slips(&pass, on)
                .context("nothing was signed")?;
            println!("{}", published(&admin.dir, &m));
            Ok(())
        }
        DeploymentCommand::CardCa { admin, card_ca } => {
            let card_cas = read_card_cas(card_ca)?;
            let pass = admin.passphrase()?;
            let m = admin.folder().set_card_cas(&pass, card_cas)?;
            println!("{}", published(&admin.dir, &m));
            Ok(())
        }
        DeploymentCommand::Approve {
            admin,
            request,
            fingerprint,
            site,
            role: r,
        } => {
            let pass = admin.passphrase()?;
            let bytes = std::fs::read(request).with_context(|| format!("{}", request.display()))?;
            let req = Request::parse(&bytes).with_context(|| format!("{}", request.display()))?;
            let site = SiteId::new(site.trim()).map_err(|e| anyhow::anyhow!("--site: {e}"))?;
            let m = admin
                .folder()
                .approve(&pass, &req, fingerprint, site, role(r)?)
                .context("nothing was signed")?;
            println!("{}", published(&admin.dir, &m));
            Ok(())
        }
        DeploymentCommand::Revoke {
            admin,
            device,
            from,
        } => {
            let pass = admin.passphrase()?;
            let from = parse_time(from, "--from")?;
            let m = admin
                .folder()
                .revoke(&pass, device, from)
                .context("nothing was signed")?;
            println!("{}", published(&admin.dir, &m));
            Ok(())
        }
        DeploymentCommand::PinRoster {
            admin,
            roster,
            roster_passphrase_env,
            hash,
        } => {
            let pass = admin.passphrase()?;
            let hash = match (roster, hash) {
                (_, Some(h)) => RosterHash::from_hex(h).context("--hash")?,
                (Some(path), None) => {
                    let rp = std::env::var(roster_passphrase_env).map_err(|_| {
                        anyhow::anyhow!(
                            "set the roster store's passphrase in {roster_passphrase_env}"
                        )
                    })?;
                    RosterDb::open(path, &rp)
                        .with_context(|| format!("the roster store {}", path.display()))?
                        .hash()
                }
                (None, None) => anyhow::bail!("give --roster or --hash"),
            };
            let m = admin
                .folder()
                .pin_roster(&pass, hash)
                .context("nothing was signed")?;
            let mut out = published(&admin.dir, &m);
            if let Some(o) = out.as_object_mut() {
                o.insert("roster".into(), hash.to_hex().into());
            }
            println!("{out}");
            Ok(())
        }
        DeploymentCommand::ExportKey { admin, to } => {
            let dest = admin.folder().export_key(to)?;
            println!(
                "{}",
                serde_json::json!({"ok": true, "key": dest.display().to_string()})
            );
            Ok(())
        }
        DeploymentCommand::ServeEnrol(args) => crate::enrol_cmd::serve(args),
        DeploymentCommand::Staff(args) => crate::staff_cmd::run_deployment(args),
        DeploymentCommand::Close { admin, at } => {
            let pass = admin.passphrase()?;
            let at = parse_time(at, "--at")?;
            let m = admin
                .folder()
                .close(&pass, at)
                .context("nothing was signed")?;
            let mut out = published(&admin.dir, &m);
            if let Some(o) = out.as_object_mut() {
                o.insert("closed_at".into(), at.into());
            }
            println!("{out}");
            Ok(())
        }
        DeploymentCommand::Purge { admin, confirm } => {
            let pass = admin.passphrase()?;
            let done =
                admin
                    .folder()
                    .purge(&pass, confirm.as_deref().unwrap_or_default(), now_ms()?)?;
            let mut out = serde_json::to_value(&done)?;
            if let Some(o) = out.as_object_mut() {
                o.insert("ok".into(), true.into());
            }
            println!("{out}");
            Ok(())
        }
        DeploymentCommand::Show { dir } => {
            let m = AdminFolder::new(dir).current()?;
            println!("{}", summary(&m));
            Ok(())
        }
    }
}

/// The CA certificates of `--card-ca`: each an X.509 certificate in DER with an RSA key.
fn read_card_cas(paths: &[PathBuf]) -> anyhow::Result<Vec<Vec<u8>>> {
    paths
        .iter()
        .map(|p| {
            let der = std::fs::read(p).with_context(|| format!("--card-ca {}", p.display()))?;
            if der.starts_with(b"-----BEGIN") {
                anyhow::bail!(
                    "--card-ca {}: PEM; give the DER form (openssl x509 -outform DER)",
                    p.display()
                );
            }
            kazashi_node::card::AuthCert::parse(&der)
                .map_err(|e| anyhow::anyhow!("--card-ca {}: {e}", p.display()))?;
            Ok(der)
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `--card-ca` takes DER certificates only; the CAs travel signed in version 1 and are
    /// replaced by the next version.
    #[test]
    fn card_cas_are_der_certificates_signed_into_the_manifest() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = include_bytes!("../../sim/fixtures/cards/ca.der");
        let other = include_bytes!("../../sim/fixtures/cards/other-ca.der");
        let write = |name: &str, bytes: &[u8]| {
            let p = tmp.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let (der, der2) = (write("ca.der", ca), write("other.der", other));
        let pem = write("ca.pem", b"-----BEGIN CERTIFICATE-----\nMIIB\n");
        let junk = write("junk.der", b"not a certificate");
        assert_eq!(
            read_card_cas(&[der.clone(), der2.clone()]).unwrap(),
            vec![ca.to_vec(), other.to_vec()]
        );
        assert!(
            read_card_cas(std::slice::from_ref(&pem))
                .unwrap_err()
                .to_string()
                .contains("DER")
        );
        assert!(read_card_cas(&[der.clone(), junk]).is_err());
        assert!(read_card_cas(&[tmp.path().join("missing.der")]).is_err());

        let admin = kazashi_node::deployment_admin::AdminFolder::new(tmp.path().join("admin"));
        let sites = kazashi_node::deployment_admin::parse_sites_csv(
            "code,name,kind,capacity\nS1,第一小学校,shelter,100\n",
        )
        .unwrap();
        let pass = "administrator passphrase";
        let v1 = admin
            .init_with(
                "かざし市",
                Operation::Shelters,
                sites,
                Vec::new(),
                read_card_cas(std::slice::from_ref(&der)).unwrap(),
                pass,
            )
            .unwrap();
        assert_eq!(v1.card_cas(), &[ca.to_vec()]);
        let v2 = admin.set_card_cas(pass, vec![other.to_vec()]).unwrap();
        assert_eq!((v2.version(), v2.card_cas()), (2, &[other.to_vec()][..]));
        assert_eq!(summary(&v2).get("card_cas"), Some(&serde_json::json!(1)));
    }

    #[test]
    fn revocation_times_are_jst_milliseconds_or_now() {
        // 2026-07-12 09:30 JST is 00:30 UTC.
        assert_eq!(
            parse_time("2026-07-12T09:30", "--from").unwrap(),
            1_783_816_200_000
        );
        assert_eq!(
            parse_time("1783816200000", "--at").unwrap(),
            1_783_816_200_000
        );
        let now = parse_time("now", "--at").unwrap();
        assert!(now > 1_700_000_000_000);
        for bad in [
            "2026-07-12",
            "2026-07-12T24:00",
            "2026-13-01T10:00",
            "yesterday",
            "",
        ] {
            for flag in ["--from", "--at"] {
                let e = parse_time(bad, flag).unwrap_err().to_string();
                assert!(e.starts_with(&format!("{flag} ")), "{bad}: {e}");
            }
        }
    }
}
