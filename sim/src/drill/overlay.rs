//! The mesh's gossip overlay in the drill: which of a laptop's live connections push a new
//! event at once (eager) and which wait for the next anti-entropy catalog (lazy).
//!
//! The choice is the iroh mesh's own, [`kazashi_node::mesh::gossip::eager_peers`], over the
//! peers connected now and the devices the laptop's manifest enrols: every connection while a
//! laptop has at most [`gossip::PUSH_ALL_UP_TO`] peers, else its ring neighbours, a few chords
//! and the peers that pick it. Without it a command center linked to every shelter pushed each
//! event on a thousand connections, each an Automerge message to make and to answer.
//!
//! Each laptop keeps the set last drawn and the connected peers it was drawn over, so the set
//! is drawn again only when those change (and the enrolled devices once per manifest).
//!
//! `KAZASHI_DRILL_ALL_EAGER=1` (a lab switch for comparisons, as `KAZASHI_DRILL_PROFILE`)
//! makes every connection eager again, as the drill was before.

use super::Engine;
use kazashi_domain::DeviceId;
use kazashi_node::mesh::gossip;
use std::collections::BTreeSet;

/// One laptop's overlay as last drawn.
#[derive(Default)]
pub(super) struct Drawn {
    connected: BTreeSet<DeviceId>,
    eager: BTreeSet<DeviceId>,
    /// The manifest (version and digest) the enrolled devices were read from, and them.
    manifest: Option<(u32, [u8; 32])>,
    enrolled: BTreeSet<DeviceId>,
}

impl Engine {
    /// For each of `links` (the laptop's), whether a new event goes out on it at once: its
    /// peer is in the laptop's eager set. Links without a live connection are `false` (they
    /// push nothing either way).
    pub(super) fn eager_links(&mut self, laptop: usize, links: &[usize]) -> Vec<bool> {
        let mut peers: Vec<Option<DeviceId>> = Vec::with_capacity(links.len());
        for &link in links {
            let peer = self.links.get(link).and_then(|k| {
                let conn = k.conn.as_ref()?;
                let side = if k.ends[0] == laptop { 0 } else { 1 };
                if !conn.live(side) {
                    return None;
                }
                let other = *k.ends.get(1 - side)?;
                self.laptops.get(other).map(|l| l.key.device_id())
            });
            peers.push(peer);
        }
        let connected: BTreeSet<DeviceId> = peers.iter().flatten().copied().collect();
        if connected.len() <= gossip::PUSH_ALL_UP_TO
            || std::env::var_os("KAZASHI_DRILL_ALL_EAGER").is_some()
        {
            // The overlay's first rule; nothing to draw.
            return peers.iter().map(Option::is_some).collect();
        }
        let Some(l) = self.laptops.get_mut(laptop) else {
            return vec![true; links.len()];
        };
        let me = l.key.device_id();
        let drawn = l.overlay.get_or_insert_with(Box::default);
        if let Some(node) = l.node.as_ref() {
            let m = node.membership();
            let key = (m.version(), m.digest());
            if drawn.manifest != Some(key) {
                drawn.enrolled = m
                    .manifest()
                    .devices
                    .iter()
                    .map(|d| d.device)
                    .filter(|d| m.revoked_from(d).is_none())
                    .collect();
                drawn.manifest = Some(key);
                drawn.connected.clear();
            }
        }
        if drawn.connected != connected || drawn.eager.is_empty() {
            drawn.eager = gossip::eager_peers(&me, &drawn.enrolled, &connected);
            drawn.connected = connected;
        }
        peers
            .iter()
            .map(|p| p.is_some_and(|d| drawn.eager.contains(&d)))
            .collect()
    }
}
