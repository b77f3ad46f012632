//! The iroh mesh greets each connection with the manifest in force at that moment, version and
//! digest: a laptop that adopted a manifest while running announces that one, so a peer
//! holding a better manifest of the same version sends it (issue 23; real UDP on loopback).

use crate::manifest_spread_tests::{Lab, v};
use crate::mesh::{Mesh, MeshConfig, PeerAddr};
use kazashi_sync::SignedManifest;
use std::net::SocketAddr;
use std::time::Duration;

fn digest(m: &[u8]) -> [u8; 32] {
    SignedManifest::decode(m).unwrap().digest()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_laptop_that_adopted_a_manifest_while_running_greets_with_it() {
    // A starts on X (version 3), then adopts Z (version 4) while running; B holds Z', also
    // version 4, which beats Z — and X's digest is below Z''s. A greeting that still named
    // X's digest would make B take A's for the winner and send nothing, while A waits for
    // B's: the two would never settle.
    let xs: Vec<Vec<u8>> = (6..40).map(|n| v(3, &[1, 2, n])).collect();
    let zs: Vec<Vec<u8>> = (6..40).map(|n| v(4, &[1, 2, n])).collect();
    let (x, z, z2) = xs
        .iter()
        .flat_map(|x| zs.iter().map(move |z| (x, z)))
        .flat_map(|(x, z)| zs.iter().map(move |z2| (x, z, z2)))
        .find(|(x, z, z2)| digest(x) < digest(z2) && digest(z2) < digest(z))
        .unwrap();
    let config = |peers: Vec<PeerAddr>| MeshConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        peers,
        mdns: false,
        ..MeshConfig::default()
    };
    let lab = Lab::new();
    let ma = Mesh::start(lab.node(1, x), config(Vec::new()))
        .await
        .unwrap();
    ma.with_node(|n| n.adopt_manifest(z)).unwrap();
    let mb = Mesh::start(lab.node(2, z2), config(Vec::new()))
        .await
        .unwrap();
    // A dials: the dialling side's greeting goes first, before any answer.
    ma.connect(mb.addrs().into_iter().next().unwrap());
    let mut waited = 0;
    while ma.with_node(|n| n.membership().digest()) != digest(z2) {
        assert!(
            waited < 100,
            "A never got the winner: {:?}",
            ma.status().peers
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(mb.with_node(|n| n.membership().digest()), digest(z2));
}
