//! `kazashi purge`: crypto-shred this laptop's copy of a closed operation by hand (issue 24,
//! requirement 5; `kazashi_node::purge`). The laptops also purge by themselves once the
//! retention period has passed (the window's tick, `kazashi node`); this command is for a
//! headless laptop, or a purge before the period ends. It needs the store's passphrase, a
//! closed operation and the deployment's id typed back as confirmation. Prints one JSON object:
//! what was destroyed (counts) and the record that stays. On a folder already purged it prints
//! the record; on one whose purge was cut short it finishes it first.

use crate::node_cmd::{StoreArgs, open_node};
use crate::purged_folder::{finish_if_begun, log_line};
use anyhow::Context as _;
use kazashi_node::purge;
use kazashi_node::{Clock as _, SystemClock};

#[derive(clap::Args, Debug)]
pub struct PurgeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The deployment's id (as `kazashi deployment show` prints it), typed back to confirm:
    /// everything personal on this laptop is destroyed for good.
    #[arg(long)]
    pub confirm: Option<String>,
}

pub fn run(args: &PurgeArgs) -> anyhow::Result<()> {
    if let Some(shown) = finish_if_begun(&args.store.folder())? {
        println!("{}", serde_json::to_string(&shown)?);
        return Ok(());
    }
    let (mut node, _) = open_node(&args.store)?;
    let deployment = node.membership().deployment().id().to_string();
    let Some(close) = purge::closure(node.membership(), node.state()) else {
        anyhow::bail!(
            "the operation is not closed: nothing was purged. A manager closes it in the window \
             (報告 → 運用を終了), or the administrator with `kazashi deployment close`"
        );
    };
    if args.confirm.as_deref() != Some(deployment.as_str()) {
        anyhow::bail!(
            "nothing was purged: this destroys every name, address and record of deployment \
             {deployment} on this laptop for good (only the counts stay). To go ahead, run again \
             with --confirm {deployment}"
        );
    }
    let now = SystemClock.now_ms();
    let folder = args.store.folder();
    purge::write_record(&folder.dir, &mut node, now, "manual")?;
    drop(node);
    let done = purge::purge_leftovers(&folder.dir, &folder.roster_path())?;
    eprintln!("{}", log_line("manual", Some(&done), &folder.dir));
    let (record, verified) = purge::read_record(&folder.dir)?.context("no record")?;
    println!(
        "{}",
        serde_json::to_string(&serde_json::json!({
            "purged": true,
            "closed_at": close.at,
            "keys_destroyed": done.keys_destroyed,
            "files_deleted": done.files_deleted,
            "signature_verified": verified,
            "record": record,
        }))?
    );
    Ok(())
}
