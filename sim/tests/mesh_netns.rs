//! Partition and heal with Linux network namespaces: two groups of laptops joined by one veth
//! link, which the test cuts for longer than the lost-peer limit and restores. Needs root (the
//! test sets the namespaces up itself); without it, it says so and does nothing.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::{Laptop, node_args, wait_for};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Two namespaces and a veth pair between them; removed on drop.
struct Net {
    ns: [String; 2],
    veth: [String; 2],
    addr: [String; 2],
}

impl Net {
    fn new() -> Option<Net> {
        let tag = std::process::id() % 100_000;
        let net = Net {
            ns: [format!("kz{tag}a"), format!("kz{tag}b")],
            veth: [format!("kzv{tag}a"), format!("kzv{tag}b")],
            addr: ["10.77.0.1".into(), "10.77.0.2".into()],
        };
        let [na, nb] = &net.ns;
        let [va, vb] = &net.veth;
        let ok = ip(&["netns", "add", na])
            && ip(&["netns", "add", nb])
            && ip(&["link", "add", va, "type", "veth", "peer", "name", vb])
            && ip(&["link", "set", va, "netns", na])
            && ip(&["link", "set", vb, "netns", nb])
            && ip(&["-n", na, "addr", "add", "10.77.0.1/24", "dev", va])
            && ip(&["-n", nb, "addr", "add", "10.77.0.2/24", "dev", vb])
            && ip(&["-n", na, "link", "set", va, "up"])
            && ip(&["-n", nb, "link", "set", vb, "up"])
            && ip(&["-n", na, "link", "set", "lo", "up"])
            && ip(&["-n", nb, "link", "set", "lo", "up"]);
        if ok { Some(net) } else { None }
    }

    fn link(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        assert!(ip(&[
            "-n",
            &self.ns[0],
            "link",
            "set",
            &self.veth[0],
            state
        ]));
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in &self.ns {
            ip(&["netns", "del", ns]);
        }
    }
}

fn start(ns: &str, bind: &str, port: u16, index: usize, peer: Option<String>) -> Laptop {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns])
        .arg(common::lab_bin())
        .args(node_args(dir.path(), 7, 1, index, bind, port, 100, 200));
    if let Some(p) = peer {
        cmd.args(["--peer", &p]);
    }
    Laptop::spawn(cmd, port, dir)
}

#[test]
fn two_groups_write_apart_through_a_cut_link_and_converge_when_it_returns() {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let net = if is_root { Net::new() } else { None };
    let Some(net) = net else {
        println!("skipped: needs root for netns (network namespaces could not be set up)");
        return;
    };
    let (a, b) = (&net.addr[0], &net.addr[1]);
    // Group one: laptops 1 and 2 in the first namespace; group two: 3 and 4 in the second.
    // Laptop 3 dials laptop 1 across the veth link; the others dial within their group.
    let l1 = start(&net.ns[0], a, 47501, 1, None);
    let l2 = start(&net.ns[0], a, 47502, 2, Some(format!("{a}:47501")));
    let l3 = start(&net.ns[1], b, 47503, 3, Some(format!("{a}:47501")));
    let l4 = start(&net.ns[1], b, 47504, 4, Some(format!("{b}:47503")));
    let all = [&l1, &l2, &l3, &l4];
    wait_for(
        "all four to be connected and writing",
        Duration::from_secs(30),
        || all.iter().all(|l| l.events() >= 8) && l1.links().len() >= 2,
    );
    // Cut the link for longer than the lost-peer limit; both groups keep writing.
    net.link(false);
    std::thread::sleep(Duration::from_secs(12));
    assert!(
        l1.links().iter().any(|s| s == "lost"),
        "laptop 1 should show laptop 3 as lost: {:?}",
        l1.get("peers")
    );
    assert_ne!(
        l1.digest(),
        l3.digest(),
        "the groups hold different events while cut off"
    );
    let apart = (l1.events(), l3.events());
    net.link(true);
    // Every laptop writes 100 check-ins; once healed, all four hold the same 400 events.
    let t = Instant::now();
    let converged = || {
        let d = l1.digest();
        all.iter().all(|l| l.events() == 400 && l.digest() == d)
    };
    while !converged() && t.elapsed() < Duration::from_secs(90) {
        std::thread::sleep(Duration::from_millis(100));
    }
    if !converged() {
        for l in all {
            println!("{} {} {}", l.events(), l.digest(), l.get("peers"));
        }
        panic!("the four laptops did not converge within 90 s of the link's return");
    }
    println!(
        "partition: group one held {} events and group two {} while apart; all hold 400 after",
        apart.0, apart.1
    );
}
