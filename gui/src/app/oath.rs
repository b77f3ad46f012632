//! The 宣誓書 of an early vote as a PDF ready to print, written next to the store in a folder
//! only this user can read. Only the latest is kept: it carries a voter's name and address.

use super::Cx;
use kazashi_domain::CivilDate;
use kazashi_domain::audit::{AuditAction, ReprintKind};
use kazashi_domain::deployment::DeploymentKind;
use kazashi_domain::event::EarlyVotingReason;
use kazashi_domain::ids::PersonId;
use kazashi_node::print::{Oath, oath_pdf};
use kazashi_node::{Clock, Node};
use std::path::PathBuf;

/// Make the 宣誓書 for `voter` with `reason`; the path of the PDF. Every print is on the
/// audit record (the voter's ref, issue 24) before the file is written: no record, no print.
pub fn write_for<C: Clock>(
    cx: &mut Cx<'_, C>,
    voter: PersonId,
    reason: EarlyVotingReason,
) -> Result<PathBuf, String> {
    let st = cx.node.station();
    let e = st
        .roster()
        .get(&voter)
        .ok_or_else(|| cx.tr.t("not-found"))?;
    let info = e.voter.as_ref().ok_or_else(|| cx.tr.t("not-a-voter"))?;
    let DeploymentKind::Election { election_day, .. } = st.deployment().kind() else {
        return Err(cx.tr.t("not-a-polling-station"));
    };
    let today = CivilDate::jst_of(cx.now()).ok_or("the clock is outside the calendar")?;
    let oath = Oath {
        election: st.deployment().name().as_str().to_owned(),
        election_day,
        today,
        station: cx.site_name(&cx.site()),
        name: e.name.as_str().to_owned(),
        kana: e.kana.as_str().to_owned(),
        birth_date: e.birth_date,
        address: e.address.as_str().to_owned(),
        precinct: info.precinct.as_str().to_owned(),
        list_number: info.list_number.as_str().to_owned(),
        reason,
    };
    let (font, _, _) = super::fonts::find()?;
    let pdf = oath_pdf(&font, &oath).map_err(|e| e.to_string())?;
    cx.node
        .audit(
            cx.login.operator,
            AuditAction::Reprint {
                what: ReprintKind::Oath,
            },
            vec![kazashi_domain::ids::PersonRef::Roster(voter)],
        )
        .map_err(|e| {
            cx.tr
                .t_with("audit-not-recorded", &[("why", e.to_string().into())])
        })?;
    write_beside_store(cx.node, "print", "宣誓書.pdf", &pdf)
}

/// Write `bytes` as `name` in `folder` beside the store (`export` or `print`: the window's
/// output folders, which the purge clears — `kazashi_node::purge::OUTPUT_DIRS`).
pub fn write_beside_store<C: Clock>(
    node: &Node<C>,
    folder: &str,
    name: &str,
    bytes: &[u8],
) -> Result<PathBuf, String> {
    let dir = node
        .store()
        .path()
        .parent()
        .map(|p| p.join(folder))
        .ok_or("the store has no folder")?;
    write_private(&dir, name, bytes)
}

/// Write `bytes` as `dir/name`, the folder readable by this user only, replacing what was there.
pub fn write_private(dir: &std::path::Path, name: &str, bytes: &[u8]) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let path = dir.join(name);
    std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}
