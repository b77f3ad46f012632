//! A purged folder (issue 24, requirement 5; `kazashi_node::purge`) as the commands meet it:
//! a purge cut short is finished, a purged folder's record printed instead of an error
//! (`kazashi node`, `kazashi report`, `kazashi purge`), and the purge's log line.

use anyhow::Context as _;
use kazashi_node::enrolled::Folder;
use kazashi_node::purge;
use std::path::Path;

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
