//! The frame budget and the QUIC limits (`mesh_frames.rs`), the last two over real UDP on
//! loopback.

use super::*;
use crate::link::MAX_FRAME;
use iroh::endpoint::{Connection, presets};
use iroh::{Endpoint, EndpointAddr};
use std::net::SocketAddr;
use std::time::Duration;

const ALPN: &[u8] = b"kazashi/frames-test/1";

fn dev(n: u8) -> DeviceId {
    DeviceId([n; 32])
}

async fn pending<F: std::future::Future>(f: F) -> bool {
    tokio::time::timeout(Duration::from_millis(300), f)
        .await
        .is_err()
}

#[tokio::test]
async fn one_device_holds_at_most_its_pool_over_all_its_connections_and_all_devices_the_laptops() {
    let budget = FrameBudget::new(250, 100, 3);
    let (a1, a2) = (
        budget.connection(dev(1)).unwrap(),
        budget.connection(dev(1)).unwrap(),
    );
    let _a3 = budget.connection(dev(1)).unwrap();
    assert_eq!(
        budget.connection(dev(1)).unwrap_err(),
        Busy,
        "a fourth live connection of one device"
    );
    // Device 1 pays 60 on one connection; 60 more on another must wait for it.
    let first = a1.pay(60).await.unwrap();
    assert_eq!(
        a2.available(),
        40,
        "the pool is the device's, not the connection's"
    );
    assert!(pending(a2.pay(60)).await, "device 1 went past its pool");
    assert!(a1.pay(101).await.is_none(), "a frame larger than the pool");
    // Other devices are not held up by device 1's wait, until the laptop's pool is spent.
    let b = budget.connection(dev(2)).unwrap();
    let c = budget.connection(dev(3)).unwrap();
    let b1 = b.pay(100).await.unwrap();
    let c1 = c.pay(80).await.unwrap();
    assert_eq!(budget.available(), 10);
    assert!(pending(c.pay(20)).await, "past the laptop's pool");
    // Handled frames give their payment back; the waiter goes on.
    drop(b1);
    let second = a2.pay(40).await.unwrap();
    drop((first, second, c1));
    assert_eq!(budget.available(), 250);
    // A dropped connection frees its place.
    drop(a1);
    let _again = budget.connection(dev(1)).unwrap();
}

async fn endpoint() -> Endpoint {
    Endpoint::builder(presets::Minimal)
        .alpns(vec![ALPN.to_vec()])
        .transport_config(transport_config())
        .clear_ip_transports()
        .bind_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
        .unwrap()
        .bind()
        .await
        .unwrap()
}

/// A dialler and an accepted connection between two endpoints with the mesh's QUIC settings.
async fn pair() -> (Endpoint, Endpoint, Connection, Connection) {
    let (a, b) = (endpoint().await, endpoint().await);
    let addr = EndpointAddr::new(b.id()).with_ip_addr(b.bound_sockets()[0]);
    let accept = {
        let b = b.clone();
        tokio::spawn(async move { b.accept().await.unwrap().await.unwrap() })
    };
    let dialled = a.connect(addr, ALPN).await.unwrap();
    let accepted = accept.await.unwrap();
    (a, b, dialled, accepted)
}

fn head(len: u32, kind: u8) -> Vec<u8> {
    let mut h = len.to_be_bytes().to_vec();
    h.push(kind);
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_over_the_limit_are_refused_from_the_header_and_over_the_budget_wait_unread() {
    let (_a, _b, dialled, accepted) = pair().await;
    let (mut send, _r) = dialled.open_bi().await.unwrap();
    // A header past the limit: refused before anything else is read.
    send.write_all(&head(u32::try_from(MAX_FRAME + 1).unwrap(), 1))
        .await
        .unwrap();
    let (_s, mut recv) = accepted.accept_bi().await.unwrap();
    let budget = FrameBudget::new(4000, 1500, 4);
    let conn = budget.connection(dev(9)).unwrap();
    let r = read_frame(&mut recv, MAX_FRAME, Some(&conn)).await;
    assert!(
        matches!(r, Err(FrameError::TooLarge(n)) if n == MAX_FRAME + 1),
        "{r:?}"
    );
    assert_eq!(conn.available(), 1500, "a refused header paid for nothing");

    // Within the limit but past what the device has left: the frame waits, unread, and its
    // body is read once an earlier frame of the device has been handled.
    let (_a, _b, dialled, accepted) = pair().await;
    let (mut send, _r) = dialled.open_bi().await.unwrap();
    let mut frame = head(1001, 7);
    frame.extend_from_slice(&[0x41; 1000]);
    send.write_all(&frame).await.unwrap();
    let (_s, mut recv) = accepted.accept_bi().await.unwrap();
    let earlier = conn.pay(1000).await.unwrap();
    let read = tokio::spawn(async move {
        let other = budget.connection(dev(9)).unwrap();
        read_frame(&mut recv, MAX_FRAME, Some(&other)).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!read.is_finished(), "read past the device's budget");
    drop(earlier);
    let f = tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((f.kind, f.body.len()), (7, 1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_may_open_one_stream_per_connection_and_quic_buffers_little_of_it_unread() {
    let (_a, _b, dialled, accepted) = pair().await;
    let (mut first, _r) = dialled.open_bi().await.unwrap();
    first.write_all(&[0; 8]).await.unwrap();
    // A second stream is not granted while the first is open.
    assert!(
        pending(dialled.open_bi()).await,
        "a second bidirectional stream was opened"
    );
    assert!(
        pending(dialled.open_uni()).await,
        "a unidirectional stream was opened"
    );
    // Nobody reads the first stream: the peer can push only QUIC's window into it.
    let mut pushed = 0usize;
    let chunk = vec![0u8; 64 << 10];
    while !pending(first.write_all(&chunk)).await {
        pushed += chunk.len();
        assert!(pushed <= 8 << 20, "{pushed} bytes buffered unread");
    }
    assert!(
        pushed <= CONNECTION_WINDOW as usize + chunk.len(),
        "{pushed} bytes taken unread"
    );
    drop(accepted);
}

#[tokio::test]
async fn a_device_whose_messages_are_refused_is_read_later_each_time_and_others_are_not() {
    let budget = FrameBudget::default();
    let (a1, a2) = (
        budget.connection(dev(1)).unwrap(),
        budget.connection(dev(1)).unwrap(),
    );
    let b = budget.connection(dev(2)).unwrap();
    let took = |t: std::time::Instant| t.elapsed();
    let t = std::time::Instant::now();
    a1.pause().await;
    assert!(
        took(t) < Duration::from_millis(50),
        "paused before any refusal"
    );
    a1.refused();
    let t = std::time::Instant::now();
    b.pause().await;
    assert!(
        took(t) < Duration::from_millis(50),
        "another device was paused"
    );
    // The pause is the device's: its other connection waits too.
    a2.pause().await;
    let first = took(t);
    assert!(first >= FIRST_PAUSE - Duration::from_millis(5), "{first:?}");
    // Again within the forgiveness time: twice as long; and it outlives the connections.
    drop((a1, a2));
    let a3 = budget.connection(dev(1)).unwrap();
    a3.refused();
    let t = std::time::Instant::now();
    a3.pause().await;
    let second = took(t);
    assert!(
        second >= 2 * FIRST_PAUSE - Duration::from_millis(5),
        "{second:?}"
    );
}
