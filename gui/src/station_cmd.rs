//! `kazashi` (and `kazashi station`): the station window on this laptop's enrolled folder, in
//! the mesh, with the PC/SC card readers.

use crate::app::cards::PcscReaders;
use crate::app::{Host, Station};
use crate::lang::Lang;
use crate::node_cmd::{Listen, StoreArgs, open_node, runtime};
use kazashi_node::mesh::Mesh;
use std::sync::Arc;

#[derive(clap::Args, Debug, Clone)]
pub struct StationArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub listen: Listen,
}

pub fn run(args: &StationArgs, lang: Lang) -> anyhow::Result<()> {
    let (node, _) = open_node(&args.store)?;
    let rt = Arc::new(runtime()?);
    let mesh = rt.block_on(Mesh::start(node, args.listen.config()))?;
    let station = Station::new(
        Host::Mesh { mesh, rt },
        lang,
        Box::new(PcscReaders::start()),
    )
    .map_err(anyhow::Error::msg)?;
    crate::app::run_window(station).map_err(anyhow::Error::msg)
}
