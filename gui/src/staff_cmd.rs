//! `kazashi staff`: who may unlock this laptop's window — add a staff member with a role and a
//! PIN (kept only as an Argon2id hash in the encrypted store), or check a PIN. Staff records are
//! per laptop (`kazashi_node::staff`). The PIN is read from an environment variable, never from
//! the command line, and never printed.

use crate::node_cmd::{StoreArgs, open_node};
use kazashi_domain::ids::OperatorId;
use kazashi_node::staff::Role;

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
    /// Check a staff member's PIN on this laptop: prints the role, or refuses.
    Check {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        operator: String,
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
            println!(
                "{}",
                serde_json::json!({"ok": true, "operator": op.as_str(), "role": role.code()})
            );
            Ok(())
        }
        StaffCommand::Check {
            store,
            operator: op,
            pin_env,
        } => {
            let op = operator(op)?;
            let pin = pin(pin_env)?;
            let (node, _) = open_node(store)?;
            let role = node
                .staff_login(&op, &pin)
                .map_err(|e| anyhow::anyhow!("{}: {e}", op.as_str()))?;
            println!(
                "{}",
                serde_json::json!({"ok": true, "operator": op.as_str(), "role": role.code()})
            );
            Ok(())
        }
    }
}
