//! The greeting gate over real UDP on loopback (issue 25, requirement 6): a stranger opens
//! many connections that never greet; the gate caps those it keeps, closes the rest at once,
//! ends the kept ones when their greeting time runs out, and an honest laptop syncs
//! throughout.

use super::*;
use crate::link::tests::{check_in, device, node, world};
use iroh::endpoint::presets;

fn config(bind: [u8; 4], peers: Vec<PeerAddr>) -> MeshConfig {
    MeshConfig {
        bind: SocketAddr::from((bind, 0)),
        peers,
        mdns: false,
        ..MeshConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_connections_that_never_greet_is_capped_and_an_honest_peer_still_syncs() {
    let w = world();
    let mut a = node(&w, 1);
    let mut b = node(&w, 2);
    for i in 0..3 {
        check_in(&mut a, i);
    }
    check_in(&mut b, 3);
    let ma = Mesh::start(a, config([127, 0, 0, 1], Vec::new()))
        .await
        .unwrap();
    let at_a = ma.addrs().into_iter().next().unwrap();

    // Strangers: fresh keys, from nine other loopback addresses, with the sync ALPN, each
    // trying more connections than its address may keep, enough to fill the strangers' pool.
    let target = EndpointAddr::new(public_key(&device(1)).unwrap()).with_ip_addr(at_a.addr);
    let per_addr = MAX_UNGREETED_PER_ADDR + 2;
    // The nine addresses at once: the flood is over well within the greeting time.
    let mut tasks = Vec::new();
    for host in 2..11u8 {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let stranger = Endpoint::builder(presets::Minimal)
                .clear_ip_transports()
                .bind_addr(SocketAddr::from(([127, 0, 0, host], 0)))
                .unwrap()
                .bind()
                .await
                .unwrap();
            let (mut held, mut ignored) = (Vec::new(), 0);
            for i in 0..per_addr {
                // An address turned away is ignored for a while, before the handshake: its
                // next try waits, and may not connect in time.
                let Ok(Ok(conn)) = tokio::time::timeout(
                    Duration::from_secs(3),
                    stranger.connect(target.clone(), ALPN),
                )
                .await
                else {
                    ignored += 1;
                    continue;
                };
                // Half open a stream and send two bytes of a frame's length, half send nothing.
                if i % 2 == 0
                    && let Ok((mut send, recv)) = conn.open_bi().await
                {
                    let _ = send.write_all(&[0, 0]).await;
                    held.push((conn, Some((send, recv))));
                } else {
                    held.push((conn, None));
                }
            }
            (stranger, held, ignored)
        }));
    }
    let (mut strangers, mut held, mut ignored) = (Vec::new(), Vec::new(), 0);
    for t in tasks {
        let (s, h, i) = t.await.unwrap();
        strangers.push(s);
        held.extend(h);
        ignored += i;
    }
    let tried = 9 * per_addr;
    assert!(held.len() >= MAX_UNGREETED, "only {} connected", held.len());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (waiting, refused) = ma.ungreeted();
    assert!(
        waiting <= MAX_UNGREETED,
        "{waiting} connections wait to greet"
    );
    assert!(
        refused >= (tried - MAX_UNGREETED) as u64,
        "refused only {refused} of {tried}"
    );
    let busy = || {
        held.iter()
            .filter(|(c, _)| {
                matches!(c.close_reason(), Some(iroh::endpoint::ConnectionError::ApplicationClosed(r))
                    if r.error_code.into_inner() == u64::from(CLOSE_BUSY))
            })
            .count()
    };
    // The last busy closes may still be on their way.
    let mut waited = 0;
    while busy() + ignored < tried - MAX_UNGREETED && waited < 30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert!(
        busy() + ignored >= tried - MAX_UNGREETED,
        "closed as busy: {}, ignored: {ignored}, waiting and turned away: {:?}",
        busy(),
        ma.ungreeted()
    );

    // An honest laptop, meanwhile, syncs.
    let mb = Mesh::start(b, config([127, 0, 0, 1], vec![at_a]))
        .await
        .unwrap();
    let mut waited = 0;
    while !(ma.status().events == 4 && mb.status().events == 4) {
        assert!(waited < 200, "no convergence under the flood");
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }

    // The kept ones are closed when their greeting time runs out (10 s), and the gate empties.
    let mut waited = 0;
    while ma.ungreeted().0 > 0 || held.iter().any(|(c, _)| c.close_reason().is_none()) {
        assert!(
            waited < 200,
            "still waiting to greet after the greeting time: {:?}",
            ma.ungreeted()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(
        mb.status().peers.first().map(|p| p.link),
        Some(Link::Connected)
    );
    for m in [&ma, &mb] {
        m.shutdown().await;
    }
    for s in strangers {
        s.close().await;
    }
}

/// What a laptop announces on the LAN by mDNS, as another laptop hears it: its endpoint id
/// (the device's public key, which a peer needs to dial it) and its address, under the
/// service `kazashi`; no user data (no label, site, deployment or person), no relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mdns_announces_only_the_device_key_and_its_address() {
    use iroh_mdns_address_lookup::{DiscoveryEvent, MdnsAddressLookup};
    use n0_future::StreamExt;
    let w = world();
    let ma = Mesh::start(
        node(&w, 1),
        MeshConfig {
            mdns: true,
            ..config([0, 0, 0, 0], Vec::new())
        },
    )
    .await
    .unwrap();
    let bound = ma.router.endpoint().bound_sockets();
    let listener = Endpoint::builder(presets::Minimal)
        .clear_ip_transports()
        .bind_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
        .unwrap()
        .bind()
        .await
        .unwrap();
    let mdns = MdnsAddressLookup::builder()
        .service_name("kazashi")
        .advertise(false)
        .build(listener.id())
        .unwrap();
    let mut events = mdns.subscribe().await;
    let heard = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(ev) = events.next().await {
            if let DiscoveryEvent::Discovered { endpoint_info, .. } = ev
                && endpoint_info.endpoint_id.as_bytes() == &device(1).0
            {
                return Some(endpoint_info);
            }
        }
        None
    })
    .await;
    let Ok(Some(info)) = heard else {
        panic!("the laptop was not heard by mDNS within 20 s");
    };
    assert_eq!(info.data.user_data(), None, "user data announced");
    let addr = info.to_endpoint_addr();
    assert_eq!(addr.relay_urls().count(), 0, "a relay announced");
    let ports: BTreeSet<u16> = bound.iter().map(|s| s.port()).collect();
    for a in addr.ip_addrs() {
        assert!(
            ports.contains(&a.port()),
            "{a} is not where the mesh listens"
        );
    }
    assert!(addr.ip_addrs().count() > 0);
    ma.shutdown().await;
    listener.close().await;
}
