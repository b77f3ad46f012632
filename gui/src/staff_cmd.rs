//! `kazashi staff`: who may unlock this laptop's window — add a staff member with a role and a
//! PIN (kept only as an Argon2id hash in the encrypted store), remove one, or check a PIN
//! (against the manifest's staff list first, then this laptop's own records: the precedence
//! rule of `kazashi_node::staff`). And `kazashi deployment staff`: the administrator's side,
//! the deployment-wide list in the signed manifest. A PIN is read from an environment variable,
//! never from the command line, and never printed.

use crate::admin_args::{AdminArgs, published};
use crate::node_cmd::{StoreArgs, open_node};
use anyhow::Context as _;
use kazashi_domain::ids::OperatorId;
use kazashi_node::staff::{Role, hash_pin, staff_entry};

#[derive(clap::Args, Debug)]
pub struct StaffArgs {
    #[command(subcommand)]
    pub command: StaffCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum StaffCommand {
    /// Add (or replace) a staff member on this laptop.
    Add {
        #[command(flatten)]
        store: StoreArgs,
        /// The staff id they type at the lock screen.
        #[arg(long)]
        operator: String,
        /// reception, lead, medical or command.
        #[arg(long)]
        role: String,
        /// Environment variable holding the PIN (4 to 8 digits).
        #[arg(long, default_value = "KAZASHI_STAFF_PIN")]
        pin_env: String,
    },
    /// Remove a staff member this laptop enrolled (not the manifest's list): their PIN and
    /// any card enrolled for them stop unlocking it.
    Remove {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        operator: String,
    },
    /// Check a staff member's PIN on this laptop: prints the role, where it came from
    /// (manifest or laptop) and whether this laptop writes, or refuses. With --card, the staff
    /// card on the reader instead (real PC/SC): the card says who (the manifest's staff list,
    /// then a card enrolled on this laptop), and the card's JPKI PIN proves its holder (the
    /// card signs a fresh challenge, checked with its certificate's key).
    Check {
        #[command(flatten)]
        store: StoreArgs,
        /// The staff id (with --card: optional, and then it must be the card's).
        #[arg(long, required_unless_present = "card")]
        operator: Option<String>,
        #[arg(long, default_value = "KAZASHI_STAFF_PIN")]
        pin_env: String,
        /// Check the staff card on the reader rather than a staff PIN.
        #[arg(long)]
        card: bool,
        /// The reader to use with --card (default: the first with a card).
        #[arg(long, requires = "card")]
        reader: Option<String>,
        /// With --card: the environment variable holding the card's JPKI authentication PIN
        /// (利用者証明用, 4 digits).
        #[arg(long, default_value = "KAZASHI_CARD_PIN")]
        card_pin_env: String,
    },
}

/// `kazashi deployment staff`.
#[derive(clap::Args, Debug)]
pub struct DeploymentStaffArgs {
    #[command(subcommand)]
    pub command: DeploymentStaffCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum DeploymentStaffCommand {
    /// Add a staff member to the deployment-wide list (the next manifest version).
    Add {
        #[command(flatten)]
        admin: AdminArgs,
        /// The staff id they type at the lock screen.
        #[arg(long)]
        id: String,
        /// A short display name ("受付 山田").
        #[arg(long)]
        name: String,
        /// reception, lead, medical or command.
        #[arg(long)]
        role: String,
        /// The sites whose laptops they may unlock (repeatable; none: every site).
        #[arg(long = "site")]
        sites: Vec<String>,
        /// The deployment card key of their own My Number Card (64 hex digits): a tap unlocks.
        #[arg(long)]
        card: Option<String>,
        /// Environment variable holding the PIN (4 to 8 digits); unset: no PIN (then --card).
        #[arg(long, default_value = "KAZASHI_STAFF_PIN")]
        pin_env: String,
    },
    /// Take a staff member off the deployment-wide list (the next manifest version).
    Remove {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        id: String,
    },
    /// Give a staff member a new PIN (the next manifest version).
    SetPin {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        id: String,
        /// Environment variable holding the new PIN (4 to 8 digits).
        #[arg(long, default_value = "KAZASHI_STAFF_PIN")]
        pin_env: String,
    },
}

fn operator(s: &str) -> anyhow::Result<OperatorId> {
    OperatorId::new(s.trim()).map_err(|e| anyhow::anyhow!("--operator: {e}"))
}

fn pin(env: &str) -> anyhow::Result<String> {
    std::env::var(env)
        .map_err(|_| anyhow::anyhow!("set the staff PIN in the environment variable {env}"))
}

pub fn run(args: &StaffArgs) -> anyhow::Result<()> {
    match &args.command {
        StaffCommand::Add {
            store,
            operator: op,
            role,
            pin_env,
        } => {
            let op = operator(op)?;
            let role = Role::from_code(role.trim()).ok_or_else(|| {
                anyhow::anyhow!("--role {role:?}: reception, lead, medical or command")
            })?;
            let pin = pin(pin_env)?;
            let (node, _) = open_node(store)?;
            node.enrol_staff(&op, role, Some(&pin))
                .map_err(|e| anyhow::anyhow!("nothing was changed: {e}"))?;
            let shadowed = node.manifest_staff(&op).is_some();
            println!(
                "{}",
                serde_json::json!({"ok": true, "operator": op.as_str(), "role": role.code(),
                    "shadowed_by_manifest": shadowed})
            );
            Ok(())
        }
        StaffCommand::Remove {
            store,
            operator: op,
        } => {
            let op = operator(op)?;
            let (node, _) = open_node(store)?;
            let removed = node
                .remove_staff(&op)
                .map_err(|e| anyhow::anyhow!("nothing was changed: {e}"))?;
            if !removed {
                anyhow::bail!("{}: no staff member of that id on this laptop", op.as_str());
            }
            println!(
                "{}",
                serde_json::json!({"ok": true, "operator": op.as_str(), "removed": true})
            );
            Ok(())
        }
        StaffCommand::Check {
            store,
            operator: op,
            pin_env,
            card,
            reader,
            card_pin_env,
        } => {
            let op = op.as_deref().map(operator).transpose()?;
            let (node, _) = open_node(store)?;
            let site = node.station().site();
            let (op, role, card, from_manifest) = if *card {
                let (who, role, key) = card_check(&node, reader.as_deref(), card_pin_env)?;
                let listed = node
                    .membership()
                    .staff_by_card(&key)
                    .is_some_and(|e| e.allowed_at(&site));
                if let Some(typed) = op.filter(|typed| *typed != who) {
                    anyhow::bail!(
                        "this card is {}'s staff card, not {}'s",
                        who.as_str(),
                        typed.as_str()
                    );
                }
                (who, role, Some(key.short()), listed)
            } else {
                let op = op.ok_or_else(|| anyhow::anyhow!("give --operator (or --card)"))?;
                let pin = pin(pin_env)?;
                let role = node
                    .staff_login(&op, &pin)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", op.as_str()))?;
                let listed = node.manifest_staff(&op).is_some();
                (op, role, None, listed)
            };
            let source = if from_manifest { "manifest" } else { "laptop" };
            let block = node.write_block();
            println!(
                "{}",
                serde_json::json!({"ok": true, "operator": op.as_str(), "role": role.code(),
                    "source": source, "card": card, "writes": block.is_none(),
                    "closed_at": node.membership().closed_at(),
                    "why_not": block.map(|b| b.to_string())})
            );
            Ok(())
        }
    }
}

/// The staff card on the reader, as the window's lock screen takes it
/// (`kazashi_node::possession`): the certificate checked offline against the manifest's card
/// CAs, the staff member it names (`Node::staff_card_login`: the manifest's list valid at this
/// site first, then a card enrolled on this laptop), then the holder's proof — the card's
/// JPKI PIN (never tried with one try left; wrong ones count towards the lockout) and a fresh
/// challenge signed by the card, checked with the certificate's key. Nothing of the card is
/// printed but its key's first digits.
fn card_check<C: kazashi_node::Clock>(
    node: &kazashi_node::Node<C>,
    reader: Option<&str>,
    pin_env: &str,
) -> anyhow::Result<(OperatorId, Role, kazashi_domain::ids::CardKey)> {
    use kazashi_node::card::{CardSession, PcscTransport, Pin};
    let words = |e: kazashi_node::card::CardError| anyhow::anyhow!("{}", e.message_en());
    let refused = |r: kazashi_node::possession::Refusal| anyhow::anyhow!("{}", r.message_en());
    let typed = std::env::var(pin_env)
        .map_err(|_| anyhow::anyhow!("set the card's PIN in the environment variable {pin_env}"))?;
    let pin = Pin::new(&typed).map_err(words)?;
    let transport = match reader {
        Some(r) => PcscTransport::connect(r),
        None => PcscTransport::connect_any(),
    }
    .map_err(words)?;
    let mut session = CardSession::new(transport);
    let presented = node.present_card(&mut session).map_err(refused)?;
    let key = presented.tap.card;
    let (op, role) = node
        .staff_card_login(&key)
        .map_err(|e| anyhow::anyhow!("card {}: {e}", key.short()))?;
    node.prove_card(&mut session, &presented, &pin)
        .map_err(refused)?;
    Ok((op, role, key))
}

pub fn run_deployment(args: &DeploymentStaffArgs) -> anyhow::Result<()> {
    let (admin, m) = match &args.command {
        DeploymentStaffCommand::Add {
            admin,
            id,
            name,
            role,
            sites,
            card,
            pin_env,
        } => {
            let pass = admin.passphrase()?;
            let pin = std::env::var(pin_env).ok();
            let entry = staff_entry(id, name, role, pin.as_deref(), sites, card.as_deref())?;
            let m = admin
                .folder()
                .staff_add(&pass, entry)
                .context("nothing was signed")?;
            (admin, m)
        }
        DeploymentStaffCommand::Remove { admin, id } => {
            let pass = admin.passphrase()?;
            let id = operator(id)?;
            let m = admin
                .folder()
                .staff_remove(&pass, &id)
                .context("nothing was signed")?;
            (admin, m)
        }
        DeploymentStaffCommand::SetPin { admin, id, pin_env } => {
            let pass = admin.passphrase()?;
            let id = operator(id)?;
            let hash = hash_pin(&pin(pin_env)?).map_err(|e| anyhow::anyhow!("the PIN: {e}"))?;
            let m = admin
                .folder()
                .staff_set_pin(&pass, &id, hash)
                .context("nothing was signed")?;
            (admin, m)
        }
    };
    let mut out = published(&admin.dir, &m);
    if let Some(o) = out.as_object_mut() {
        o.insert("staff".into(), m.manifest().staff.len().into());
    }
    println!("{out}");
    Ok(())
}
