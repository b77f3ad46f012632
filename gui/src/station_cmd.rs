//! `kazashi` (and `kazashi station`): the station window on this laptop's folder, in the mesh,
//! with the PC/SC card readers. The window asks for the store's passphrase itself (never an
//! environment variable); with no arguments, a laptop with no store opens the enrolment screen
//! (`app::unlock::Start`).

use crate::app::Host;
use crate::app::cards::PcscReaders;
use crate::app::unlock::{Opener, Start};
use crate::lang::Lang;
use crate::node_cmd::{Listen, runtime};
use kazashi_node::enrolled::{Folder, OpenError};
use kazashi_node::mesh::Mesh;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args, Debug, Clone)]
pub struct StationArgs {
    /// This laptop's folder: `kazashi.db` (the enrolled store) and `roster.db` (the pinned
    /// roster store).
    #[arg(long)]
    pub dir: PathBuf,
    /// The roster store, if not `roster.db` in the folder.
    #[arg(long)]
    pub roster: Option<PathBuf>,
    #[command(flatten)]
    pub listen: Listen,
}

/// Open the window. With `enrol` (`kazashi` with no arguments) a folder holding no store opens
/// the enrolment screen; without it (`kazashi station`) such a folder is refused.
pub fn run(args: &StationArgs, lang: Lang, enrol: bool) -> anyhow::Result<()> {
    let folder = Folder {
        dir: args.dir.clone(),
        roster: args.roster.clone(),
    };
    if !enrol && !folder.is_enrolled() {
        return Err(OpenError::NoStore(folder.dir.clone()).into());
    }
    let rt = Arc::new(runtime()?);
    let config = args.listen.config();
    let opener: Opener = Arc::new(move |node| {
        let mesh = rt
            .block_on(Mesh::start(node, config.clone()))
            .map_err(|e| e.to_string())?;
        Ok(Host::Mesh {
            mesh,
            rt: rt.clone(),
        })
    });
    let start = Start::new(folder, lang, opener, Box::new(PcscReaders::start()))
        .map_err(anyhow::Error::msg)?
        .with_peers(&args.listen.peers);
    crate::app::run_start(start).map_err(anyhow::Error::msg)
}
