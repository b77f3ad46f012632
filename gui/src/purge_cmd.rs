//! `kazashi purge`: crypto-shred this laptop's copy of a closed operation by hand (issue 24,
//! requirement 5; `kazashi_node::purge`). The laptops also purge by themselves once the
//! retention period has passed (the window's tick, `kazashi node`); this command is for a
//! headless laptop, or a purge before the period ends. It needs the store's passphrase, a
//! closed operation and the deployment's id typed back as confirmation. Prints one JSON object:
//! what was destroyed (counts) and the record that stays. On a folder already purged it prints
//! the record; on one whose purge was cut short it finishes it first.

use crate::node_cmd::{StoreArgs, open_node};
use anyhow::Context as _;
use kazashi_node::enrolled::Folder;
use kazashi_node::purge;
use kazashi_node::{Clock as _, SystemClock};
use std::path::Path;

#[derive(clap::Args, Debug)]
pub struct PurgeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The deployment's id (as `kazashi deployment show` prints it), typed back to confirm:
    /// everything personal on this laptop is destroyed for good.
    #[arg(long)]
    pub confirm: Option<String>,
}

/// A line for the log: what the purge did, never who.
pub fn log_line(what: &str, done: Option<&purge::Purged>, dir: &Path) -> serde_json::Value {
    serde_json::json!({
        "purge": what,
        "dir": dir.display().to_string(),
        "keys_destroyed": done.map(|d| d.keys_destroyed),
        "files_deleted": done.map(|d| d.files_deleted),
    })
}

/// A folder whose purge was begun (its record written) is finished; a purged folder's record
/// is returned. `None`: the folder is not being purged (open it as usual).
pub fn finish_if_begun(folder: &Folder) -> anyhow::Result<Option<serde_json::Value>> {
    if purge::unfinished(&folder.dir, &folder.roster_path()) {
        let done = purge::purge_leftovers(&folder.dir, &folder.roster_path())
            .context("finishing the purge that was cut short")?;
        eprintln!("{}", log_line("finished", Some(&done), &folder.dir));
    }
    if !purge::is_purged(&folder.dir) {
        return Ok(None);
    }
    let (record, verified) = purge::read_record(&folder.dir)
        .context("the record of the purge")?
        .context("no record")?;
    Ok(Some(serde_json::json!({
        "purged": true,
        "signature_verified": verified,
        "record": record,
    })))
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
