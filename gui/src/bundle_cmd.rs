//! `kazashi bundle export|import`: the log on a USB stick between laptops with no network.
//! Each prints one JSON object saying what it did; a refused file exits non-zero with the
//! reason in words, and changes nothing.

use crate::node_cmd::{StoreArgs, open_node};
use anyhow::Context as _;
use kazashi_domain::DeviceId;
use kazashi_node::BundleScope;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct BundleArgs {
    #[command(subcommand)]
    pub action: BundleAction,
}

#[derive(clap::Subcommand, Debug)]
pub enum BundleAction {
    /// Write this laptop's events to a file, encrypted for the deployment's laptops.
    Export {
        #[command(flatten)]
        store: StoreArgs,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// Only what this device (hex id) lacks, as far as its last bundle here tells.
        #[arg(long = "for", conflicts_with = "all")]
        for_device: Option<String>,
        /// Every shard whole (default: what changed since this laptop's last bundle).
        #[arg(long)]
        all: bool,
    },
    /// Verify a bundle and merge what is new.
    Import {
        #[command(flatten)]
        store: StoreArgs,
        /// The bundle file.
        file: PathBuf,
        /// Also read a bundle of an earlier format (KZBUNDLE3 or KZBUNDLE2, from a Kazashi
        /// before bundles had a signed header). Such a file is unpacked before its author can
        /// be checked (capped at 32 times its size), so it is refused without this: use it
        /// only for a stick whose origin you trust, or have its author export it again.
        #[arg(long)]
        legacy: bool,
    },
}

fn device_hex(s: &str) -> anyhow::Result<DeviceId> {
    DeviceId::from_hex(s.trim())
        .map_err(|_| anyhow::anyhow!("--for {s:?}: a device id is 64 hex digits"))
}

pub fn run(args: &BundleArgs) -> anyhow::Result<()> {
    match &args.action {
        BundleAction::Export {
            store,
            out,
            for_device,
            all,
        } => {
            let scope = match (for_device, all) {
                (Some(d), _) => BundleScope::For(device_hex(d)?),
                (None, true) => BundleScope::All,
                (None, false) => BundleScope::SinceLast,
            };
            let (mut node, _) = open_node(store)?;
            // Written beside the target, synced, renamed and the folder synced before the
            // "already sent" marks move: a pulled stick never holds half a file under the
            // real name, and a crash never marks as sent what is not on the stick.
            let bytes = node.export_bundle_to(out, scope)?;
            let line = serde_json::json!({
                "bundle": "export",
                "file": out.display().to_string(),
                "bytes": bytes,
                "events": node.state().len(),
            });
            println!("{line}");
            Ok(())
        }
        BundleAction::Import {
            store,
            file,
            legacy,
        } => {
            let bytes =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            let (mut node, _) = open_node(store)?;
            let options = kazashi_sync::bundle::ReadOptions { legacy: *legacy };
            let r = node
                .import_bundle_with(&bytes, "usb", options)
                .with_context(|| format!("{}", file.display()))?;
            let by_site: serde_json::Map<String, serde_json::Value> = r
                .added_by_site
                .iter()
                .map(|(s, n)| (s.to_string(), serde_json::json!(n)))
                .collect();
            let line = serde_json::json!({
                "bundle": "import",
                "author": r.author.to_hex(),
                "created_ms": r.created_ms,
                "shards": r.shards,
                "added": r.added,
                "added_by_site": by_site,
                "refused_shards": r.refused_shards,
                "withheld": r.withheld,
                "manifest_adopted": r.manifest_adopted,
                "manifest_version": node.membership().version(),
                "events": node.state().len(),
            });
            println!("{line}");
            Ok(())
        }
    }
}
