//! `kazashi` (and `kazashi station`): the station window on this laptop's enrolled folder, in
//! the mesh, with the PC/SC card readers.

use crate::app::cards::PcscReaders;
use crate::app::{Host, Station};
use crate::lang::Lang;
use crate::node_cmd::{StoreArgs, open_node};
use anyhow::Context as _;
use kazashi_node::mesh::{DEFAULT_PORT, Mesh, MeshConfig, PeerAddr};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

#[derive(clap::Args, Debug, Clone)]
pub struct StationArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// UDP port to listen on.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: IpAddr,
    /// A peer to dial: ip:port, or <device hex>@ip:port (repeatable).
    #[arg(long = "peer")]
    pub peers: Vec<PeerAddr>,
    /// Do not announce or look for laptops on the LAN by mDNS.
    #[arg(long)]
    pub no_mdns: bool,
}

pub fn run(args: &StationArgs, lang: Lang) -> anyhow::Result<()> {
    let (node, _) = open_node(&args.store)?;
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the runtime")?,
    );
    let config = MeshConfig {
        bind: SocketAddr::new(args.bind, args.port),
        peers: args.peers.clone(),
        mdns: !args.no_mdns,
        ..MeshConfig::default()
    };
    let mesh = rt.block_on(Mesh::start(node, config))?;
    let station = Station::new(
        Host::Mesh { mesh, rt },
        lang,
        Box::new(PcscReaders::start()),
    )
    .map_err(anyhow::Error::msg)?;
    crate::app::run_window(station).map_err(anyhow::Error::msg)
}
