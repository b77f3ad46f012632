//! Hostile input over the network (issue 25, requirement 2): the product's `kazashi node`, a
//! real process under a 1 GiB address-space limit (`prlimit --as`), listening on loopback; an
//! enrolled member turned hostile (the command center's key, as a compromised relay would
//! hold it) connects over iroh like any laptop, greets, and sends what this test crafts: a
//! sync message whose Automerge change inflates to 1.5 GiB (a DEFLATE bomb), a catalog of a
//! million shards, a frame header declaring 255 MiB, frames of the largest size taken on more
//! connections than a device may keep, and streams past the one a connection may open. The
//! node stays up, its memory stays bounded, and it then converges with an honest laptop (a
//! drill laptop writing check-ins): the same events, the same state digest.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::{Laptop, PASS, free_port, lab, lab_bin, node_args, product_bin, wait_for};
use iroh::endpoint::{Connection, SendStream, presets};
use kazashi_domain::CivilDate;
use kazashi_node::link::{
    FRAME_HELLO, FRAME_SYNC, Hello, MAX_FRAME, PROTOCOL_VERSION, short_digest,
};
use kazashi_node::mesh::{ALPN, CLOSE_BUSY, MAX_LIVE_PER_DEVICE};
use kazashi_sim::hostile::{big_catalog, bomb_message, frame};
use kazashi_sim::population::{PopulationSpec, generate, shelter_operation};
use kazashi_sync::{DeviceKey, ShardId, SignedManifest};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const FLEET: u64 = 7;
const TOWN: u64 = 1;
const LIMIT: u64 = 1 << 30;

/// The product's node on a drill laptop's folder, under the address-space limit.
struct Victim {
    child: Child,
    port: u16,
    status: Arc<Mutex<Option<Value>>>,
    _dir: tempfile::TempDir,
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Victim {
    fn start(index: usize) -> Victim {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let enrol: Vec<String> = [
            "enrol-drill",
            "--dir",
            &d,
            "--drill-fleet",
            &FLEET.to_string(),
            "--town-seed",
            &TOWN.to_string(),
            "--sites",
            "5",
            "--index",
            &index.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let out = lab(&enrol);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        // prlimit sets the limit, then runs the node in its own place (same process id).
        let mut cmd = Command::new("prlimit");
        cmd.arg(format!("--as={LIMIT}"))
            .arg("--")
            .arg(product_bin())
            .args(["node", "--dir", &d, "--bind", "127.0.0.1", "--no-mdns"])
            .args(["--port", &port.to_string()])
            .args(["--status-every", "200", "--anti-entropy", "2"])
            .env("KAZASHI_PASSPHRASE", PASS)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().unwrap();
        let status = Arc::new(Mutex::new(None));
        let out = child.stdout.take().unwrap();
        let s = status.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    *s.lock().unwrap() = Some(v);
                }
            }
        });
        let v = Victim {
            child,
            port,
            status,
            _dir: dir,
        };
        wait_for("the node's first status", Duration::from_secs(60), || {
            v.get("device").is_string()
        });
        v
    }
    fn get(&self, k: &str) -> Value {
        self.status
            .lock()
            .unwrap()
            .as_ref()
            .map(|s| s[k].clone())
            .unwrap_or(Value::Null)
    }
    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
    /// (resident now, peak resident), MiB, from the kernel.
    fn memory(&self) -> (f64, f64) {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| -> f64 {
            let line = s.lines().find(|l| l.starts_with(name)).unwrap();
            line.split_whitespace()
                .nth(1)
                .unwrap()
                .parse::<f64>()
                .unwrap()
                / 1024.0
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
    /// The address-space limit in force in the node's process.
    fn limit(&self) -> String {
        let s = std::fs::read_to_string(format!("/proc/{}/limits", self.child.id())).unwrap();
        s.lines()
            .find(|l| l.starts_with("Max address space"))
            .unwrap()
            .to_owned()
    }
    fn addr(&self) -> String {
        format!(
            "{}@127.0.0.1:{}",
            self.get("device").as_str().unwrap(),
            self.port
        )
    }
    fn events(&self) -> u64 {
        self.get("events").as_u64().unwrap_or(0)
    }
    fn digest(&self) -> String {
        self.get("digest").as_str().unwrap_or("").to_owned()
    }
}

/// What the hostile member needs: its key, its greeting, the victim's site and the sites.
struct Member {
    key: DeviceKey,
    hello: Vec<u8>,
    victim_site: kazashi_domain::SiteId,
    sites: Vec<kazashi_domain::SiteId>,
}

fn member(victim_index: usize) -> Member {
    let m = generate(PopulationSpec {
        households: 300,
        seed: TOWN,
        today: CivilDate::new(2026, 9, 1).unwrap(),
        voters: false,
    })
    .unwrap();
    let d = shelter_operation(&m, 5).unwrap();
    let fleet = kazashi_sim::fleet::fleet(&d, FLEET).unwrap();
    let membership = SignedManifest::decode(&fleet.manifest).unwrap();
    let hello = Hello {
        protocol: PROTOCOL_VERSION,
        deployment: membership.deployment().id(),
        manifest_version: membership.version(),
        manifest_digest: Some(short_digest(&membership)),
    };
    Member {
        key: DeviceKey::from_seed(fleet.stations[0].1.secret_bytes()),
        hello: hello.encode(),
        victim_site: fleet.stations[victim_index].0,
        sites: fleet.stations.iter().map(|(s, _)| *s).collect(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn endpoint(key: &DeviceKey) -> iroh::Endpoint {
    iroh::Endpoint::builder(presets::Minimal)
        .secret_key(iroh::SecretKey::from_bytes(&key.secret_bytes()))
        .clear_ip_transports()
        .bind_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
        .unwrap()
        .bind()
        .await
        .unwrap()
}

fn target(v: &Victim) -> iroh::EndpointAddr {
    let device = kazashi_domain::DeviceId::from_hex(v.get("device").as_str().unwrap()).unwrap();
    iroh::EndpointAddr::new(iroh::PublicKey::from_bytes(&device.0).unwrap())
        .with_ip_addr(SocketAddr::from(([127, 0, 0, 1], v.port)))
}

/// A greeted connection of the member: its stream to write on; what the node says is drained.
async fn greeted(
    ep: &iroh::Endpoint,
    to: &iroh::EndpointAddr,
    m: &Member,
) -> (Connection, SendStream) {
    let conn = tokio::time::timeout(Duration::from_secs(5), ep.connect(to.clone(), ALPN))
        .await
        .unwrap()
        .unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(&frame(FRAME_HELLO, &m.hello)).await.unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 << 10];
        while let Ok(Some(_)) = recv.read(&mut buf).await {}
    });
    (conn, send)
}

/// An honest drill laptop writing `writes` check-ins, dialling `peer`.
fn honest(index: usize, peer: &str, writes: usize) -> Laptop {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let args = node_args(
        dir.path(),
        FLEET,
        TOWN,
        index,
        "127.0.0.1",
        port,
        writes,
        20,
    );
    let mut cmd = Command::new(lab_bin());
    cmd.args(&args).args(["--peer", peer]);
    Laptop::spawn(cmd, port, dir)
}

fn converge(v: &Victim, h: &Laptop, events: u64) {
    wait_for(
        "the node and the honest laptop to hold the same events",
        Duration::from_secs(90),
        || v.events() == events && h.events() == events && v.digest() == h.digest(),
    );
}

#[test]
fn a_node_under_1_gib_survives_a_deflate_bomb_and_a_million_shard_catalog_over_the_network() {
    let mut v = Victim::start(1);
    assert!(v.limit().contains(&LIMIT.to_string()), "{}", v.limit());
    let m = member(1);
    let rt = runtime();
    let to = target(&v);
    let day = CivilDate::jst_of(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    )
    .unwrap();
    let bomb = frame(
        FRAME_SYNC,
        &bomb_message(
            ShardId {
                site: m.victim_site,
                day,
            },
            3 << 29,
        ),
    );
    // A million shards is past the frame limit (32 MiB): refused from the frame's header. So
    // also 400,000 (within it): read, then refused from the count it declares.
    let catalog = frame(FRAME_SYNC, &big_catalog(&m.sites, 1_000_000));
    let within = frame(FRAME_SYNC, &big_catalog(&m.sites, 400_000));
    assert!(bomb.len() < MAX_FRAME, "bomb {}", bomb.len());
    assert!(within.len() < MAX_FRAME, "catalog {}", within.len());
    assert!(catalog.len() > MAX_FRAME, "catalog {}", catalog.len());
    rt.block_on(async {
        let ep = endpoint(&m.key).await;
        // The bomb, then the catalogs, each on its own greeted connection, three times.
        for _ in 0..3 {
            let mut held = Vec::new();
            for f in [&bomb, &within, &catalog] {
                let (c, mut s) = greeted(&ep, &to, &m).await;
                // The node may close the connection before it has all of it, or read it
                // later: a member whose messages were refused is read after a pause.
                let _ = tokio::time::timeout(Duration::from_secs(15), s.write_all(f)).await;
                held.push(c);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            for c in held {
                c.close(0u32.into(), b"");
            }
        }
        ep.close().await;
    });
    assert!(v.alive(), "the node died");
    let (rss, peak) = v.memory();
    eprintln!("after the bomb and the catalog: RSS {rss:.0} MiB, peak {peak:.0} MiB");
    assert!(peak < 512.0, "peak resident memory {peak:.0} MiB");
    assert_eq!(v.events(), 0, "the hostile member's messages added events");
    // Then an honest laptop joins and writes; the node converges with it.
    let h = honest(2, &v.addr(), 20);
    converge(&v, &h, 20);
    assert!(v.alive());
}

#[test]
fn frames_over_the_limit_and_the_budget_and_extra_streams_are_refused_and_the_node_stays_up() {
    let mut v = Victim::start(3);
    let m = member(3);
    let rt = runtime();
    let to = target(&v);
    let (rss_before, _) = v.memory();
    let busy = rt.block_on(async {
        let ep = endpoint(&m.key).await;
        // A header declaring 255 MiB: the connection is closed, nothing read after it.
        let (c, mut s) = greeted(&ep, &to, &m).await;
        let mut head = ((255u32 << 20) + 1).to_be_bytes().to_vec();
        head.push(FRAME_SYNC);
        s.write_all(&head).await.unwrap();
        let _ = s.write_all(&vec![0x41; 1 << 20]).await;
        tokio::time::timeout(Duration::from_secs(5), c.closed())
            .await
            .expect("the oversized header did not end the connection");
        // A second stream on a connection, or a one-way stream: never granted.
        let (c, _s) = greeted(&ep, &to, &m).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(500), c.open_bi())
                .await
                .is_err(),
            "a second stream was granted"
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(500), c.open_uni())
                .await
                .is_err(),
            "a one-way stream was granted"
        );
        c.close(0u32.into(), b"");
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Frames of the largest size taken, junk inside, on more connections than a device
        // may keep: the ones over are closed as busy, the rest stall once the device's
        // budget is spent.
        let mut conns = Vec::new();
        for _ in 0..MAX_LIVE_PER_DEVICE + 4 {
            let (c, mut s) = greeted(&ep, &to, &m).await;
            let c2 = c.clone();
            tokio::spawn(async move {
                let mut head = u32::try_from(MAX_FRAME).unwrap().to_be_bytes().to_vec();
                head.push(FRAME_SYNC);
                if s.write_all(&head).await.is_err() {
                    return;
                }
                let junk = vec![0x41u8; 1 << 20];
                let mut left = MAX_FRAME - 1;
                while left > 0 {
                    let n = left.min(junk.len());
                    if s.write_all(&junk[..n]).await.is_err() {
                        return;
                    }
                    left -= n;
                }
                drop(c2);
            });
            conns.push(c);
        }
        tokio::time::sleep(Duration::from_secs(6)).await;
        let busy = conns
            .iter()
            .filter(|c| {
                matches!(c.close_reason(), Some(iroh::endpoint::ConnectionError::ApplicationClosed(a))
                    if a.error_code.into_inner() == u64::from(CLOSE_BUSY))
            })
            .count();
        for c in &conns {
            c.close(0u32.into(), b"");
        }
        ep.close().await;
        busy
    });
    assert!(v.alive(), "the node died");
    let (rss, peak) = v.memory();
    eprintln!(
        "RSS before {rss_before:.0} MiB, after {rss:.0} MiB, peak {peak:.0} MiB; busy {busy}"
    );
    assert!(
        busy >= 4,
        "only {busy} connections over the device's limit were closed as busy"
    );
    // Two frames of the largest size at most (the device's budget), plus what the allocator
    // keeps of freed buffers and the node's own work: below what the eight frames would take
    // if each were read at once (8 x 32 MiB).
    let bound = rss_before + ((2 * MAX_FRAME) >> 20) as f64 + 96.0;
    assert!(bound < rss_before + ((8 * MAX_FRAME) >> 20) as f64);
    assert!(peak < bound, "peak {peak:.0} MiB, bound {bound:.0} MiB");
    let h = honest(4, &v.addr(), 10);
    converge(&v, &h, 10);
    assert!(v.alive());
}
