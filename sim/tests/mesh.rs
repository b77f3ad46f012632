//! The mesh with real processes on loopback, over real UDP sockets: laptops that write are the
//! lab's drill laptops (`kazashi-lab node`); laptops that only listen are the product's
//! `kazashi node` on a folder the lab enrolled — the same mesh, the same policy.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::{Laptop, converged, lab, lab_bin, node_args, product_bin, wait_for};
use std::process::Command;
use std::time::Duration;

/// A free UDP port on loopback (bound and released; good enough for a test).
fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Spec {
    fleet: u64,
    town: u64,
    index: usize,
    peers: Vec<String>,
    writes: usize,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            fleet: 7,
            town: 1,
            index: 0,
            peers: Vec::new(),
            writes: 0,
        }
    }
}

fn start(spec: Spec, port: u16) -> Laptop {
    let dir = tempfile::tempdir().unwrap();
    let mut args = node_args(
        dir.path(),
        spec.fleet,
        spec.town,
        spec.index,
        "127.0.0.1",
        port,
        spec.writes,
        40,
    );
    let mut cmd = if spec.writes > 0 {
        Command::new(lab_bin())
    } else {
        // Enrol the folder with the lab, then run the product on it.
        let mut enrol: Vec<String> = vec!["enrol-drill".into()];
        enrol.extend(args.iter().skip(1).take(10).cloned());
        let out = lab(&enrol);
        assert!(
            out.status.success(),
            "enrol-drill: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The product takes the folder and the mesh flags, not the drill's.
        let mut product = vec![
            "node".to_owned(),
            "--dir".into(),
            dir.path().display().to_string(),
        ];
        let mut it = args.iter().skip(1);
        while let Some(a) = it.next() {
            match a.as_str() {
                "--port" | "--bind" | "--status-every" | "--anti-entropy" => {
                    product.push(a.clone());
                    product.extend(it.next().cloned());
                }
                "--no-mdns" => product.push(a.clone()),
                _ => {}
            }
        }
        args = product;
        Command::new(product_bin())
    };
    cmd.args(&args);
    for p in &spec.peers {
        cmd.args(["--peer", p]);
    }
    Laptop::spawn(cmd, port, dir)
}

#[test]
fn five_laptops_on_loopback_converge_after_writes_on_every_one() {
    let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
    // A ring, each dialling the next by address alone (ip:port, no device id): events of every
    // origin travel through the others.
    // Indices 1–5: the five shelters' laptops (0 is the command center's).
    let laptops: Vec<Laptop> = (0..5)
        .map(|i| {
            start(
                Spec {
                    index: i + 1,
                    peers: vec![format!("127.0.0.1:{}", ports[(i + 1) % 5])],
                    writes: 10,
                    ..Spec::default()
                },
                ports[i],
            )
        })
        .collect();
    let all: Vec<&Laptop> = laptops.iter().collect();
    wait_for(
        "five laptops to hold the same 50 events",
        Duration::from_secs(90),
        || converged(&all, 50),
    );
    // Every laptop found the next one by address alone, and shows it connected.
    let next: Vec<String> = (0..5).map(|i| laptops[(i + 1) % 5].device()).collect();
    wait_for(
        "each laptop to show the next connected",
        Duration::from_secs(30),
        || {
            laptops
                .iter()
                .zip(&next)
                .all(|(l, n)| l.link_to(n).as_deref() == Some("connected"))
        },
    );
}

#[test]
fn a_laptop_offline_while_others_wrote_catches_up_through_a_third() {
    let (pa, pb, pc) = (free_port(), free_port(), free_port());
    let a = start(
        Spec {
            index: 1,
            writes: 10,
            ..Spec::default()
        },
        pa,
    );
    let b = start(
        Spec {
            index: 2,
            writes: 10,
            peers: vec![a.addr()],
            ..Spec::default()
        },
        pb,
    );
    wait_for("A and B to converge", Duration::from_secs(60), || {
        converged(&[&a, &b], 20)
    });
    let digest = a.digest();
    // A goes away; C, which never met A, joins through B only, and gets A's events too.
    drop(a);
    let c = start(
        Spec {
            index: 3,
            peers: vec![b.addr()],
            ..Spec::default()
        },
        pc,
    );
    wait_for("C to catch up through B", Duration::from_secs(60), || {
        converged(&[&b, &c], 20)
    });
    assert_eq!(c.digest(), digest);
}

#[test]
fn an_unenrolled_laptop_is_refused_and_another_deployment_is_mismatched() {
    let (px, pr, pm) = (free_port(), free_port(), free_port());
    let x = start(
        Spec {
            index: 1,
            writes: 3,
            ..Spec::default()
        },
        px,
    );
    // Same deployment, but keys from another fleet (another administrator): not enrolled here.
    let rogue = start(
        Spec {
            fleet: 99,
            index: 2,
            writes: 5,
            peers: vec![x.addr()],
            ..Spec::default()
        },
        pr,
    );
    // Another city, so another deployment.
    let other = start(
        Spec {
            town: 2,
            index: 3,
            writes: 5,
            peers: vec![x.addr()],
            ..Spec::default()
        },
        pm,
    );
    let (rd, od) = (rogue.device(), other.device());
    wait_for(
        "X to refuse the rogue and mark the other mismatched",
        Duration::from_secs(60),
        || {
            x.link_to(&rd).as_deref() == Some("refused")
                && x.link_to(&od).as_deref() == Some("mismatched")
        },
    );
    wait_for("the dialers to see why", Duration::from_secs(60), || {
        rogue.link_to(&x.device()).as_deref() == Some("refused")
            && other.link_to(&x.device()).as_deref() == Some("mismatched")
    });
    // Nothing of theirs reached X: only its own three check-ins.
    wait_for("X's own writes", Duration::from_secs(30), || {
        x.events() == 3
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(x.events(), 3);
}
