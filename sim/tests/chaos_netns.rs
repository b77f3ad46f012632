//! Chaos with real processes (issue 28): five laptops, each in its own network namespace, joined
//! by veth pairs to a bridge in a sixth. Every link is impaired — `tc netem` on both ends (loss
//! 10–30 %, delay with jitter, reordering, duplication) or, on a kernel without netem, nftables
//! in each laptop's namespace (loss 10–30 % each way, 3 % duplicated, 15 % of outgoing packets
//! sent by a slow second path through `tbf`, which delays and reorders them when traffic
//! bursts; said in the skip log) — one link flaps down and up, and laptops are killed with
//! SIGKILL at seeded random moments while they sync, then started again on the same folder.
//! Laptops 1–3 (shelters) write check-ins (`kazashi-lab node` on a drill-enrolled folder, which
//! appends each acknowledged event's id to a file); laptops 0 (the headquarters) and 4 are the
//! product's `kazashi node`. A killed laptop's folder, opened while it is down, must hold every
//! id it acknowledged. After the heal (faults removed, the link up) every laptop must show the
//! same digest within 120 s; then every folder must hold the same events, every acknowledged
//! one among them.
//!
//! Needs root, `ip netns` and `tc` (it sets the namespaces up itself and removes them, on
//! failure too); where it cannot, it says why in `$KAZASHI_SKIP_LOG` and does nothing. The seed
//! is printed; `KAZASHI_CHAOS_SEED=<seed>` replays the schedule (kills, pauses, flaps, link
//! faults — the processes' own timing is the machine's). It prints which faults it used
//! ("links impaired by netem …"); `KAZASHI_CHAOS_NEED_NETEM=1` makes the nftables fallback a
//! failure (`script/netem-vm` sets it: it runs this test in a VM whose kernel has netem).
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::{Laptop, PASS, lab, lab_bin, product_bin, wait_for};
use kazashi_tests::card_rig::skip;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Laptops, of which `WRITERS` from laptop 1 on write check-ins (laptop 0 is the
/// headquarters, where check-ins are refused).
const N: usize = 5;
const WRITERS: usize = 3;
/// Check-ins per writer's run (a writer started again writes as many again).
const WRITES: usize = 240;
const WRITE_EVERY_MS: u64 = 100;
const FLEET: u64 = 28;
const TOWN: u64 = 1;
const PORT: u16 = 47_610;
/// How long the faults last, and until when laptops are killed.
const FAULTS: Duration = Duration::from_secs(36);
const KILLS_UNTIL: Duration = Duration::from_secs(26);
/// The bound on convergence after the heal.
const HEAL_LIMIT: Duration = Duration::from_secs(120);
/// The laptop whose link flaps.
const FLAPPING: usize = 4;

/// `KAZASHI_CHAOS_SLOW=<k>` (1–20, default 1): the test's clock runs k times slower — writes,
/// status lines, anti-entropy, the fault phase, the kills' and flaps' spacing, the waits and the
/// bound after the heal — for an emulated CPU (`script/netem-vm` under TCG). The events, faults
/// and the seed's schedule are the same; the product's own timers are not scaled.
fn slow() -> u32 {
    std::env::var("KAZASHI_CHAOS_SLOW")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|k| (1..=20).contains(k))
        .unwrap_or(1)
}

/// Run a command; its error output on failure.
fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{cmd} {}`: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Run `nft -f -` in namespace `ns` with `script` on its input.
fn nft(ns: &str, script: &str) -> Result<(), String> {
    use std::io::Write as _;
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nft: {e}"))?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .map_err(|e| format!("nft: {e}"))?;
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// [`run`] with the arguments as one line of words separated by spaces.
fn cmd(program: &str, words: &str) -> Result<(), String> {
    run(program, &words.split(' ').collect::<Vec<_>>())
}

/// How the links are impaired.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Faults {
    /// `tc netem` on both ends of every link.
    Netem,
    /// No netem in this kernel: nftables drops, duplicates and sends some packets by a slow
    /// second path (delayed and reordered when traffic bursts).
    Nftables,
}

/// Of a laptop's outgoing packets, the share (%) sent by its slow path without netem.
const SLOW_SHARE: u32 = 15;
/// The slow path's `tbf`: 128 kbit/s, a 12,000-byte queue (up to 0.75 s).
const SLOW_TBF: &str = "tbf rate 128kbit burst 1600 limit 12000";

/// The namespaces: a hub with the bridge, and one per laptop with two veth pairs to the bridge:
/// its link (`n`/`h`) and a slow path (`s`/`t`, its bridge port learning no addresses) used
/// only by the faults without netem. Removed on drop (the veths go with them).
struct Net {
    hub: String,
    ns: Vec<String>,
    faults: Option<Faults>,
    tag: u32,
}

impl Net {
    fn addr(i: usize) -> String {
        format!("10.78.0.{}", i + 1)
    }

    /// Laptop `i`'s interface `kind` (`n` its link, `s` its slow path: in its namespace; `h`
    /// and `t` their ends on the bridge).
    fn dev(&self, kind: char, i: usize) -> String {
        format!("kzc{}{kind}{i}", self.tag)
    }

    fn new() -> Result<Net, String> {
        let tag = std::process::id() % 100_000;
        let mut net = Net {
            hub: format!("kzc{tag}hub"),
            ns: Vec::new(),
            faults: None,
            tag,
        };
        let hub = net.hub.clone();
        run("ip", &["netns", "add", &hub])?;
        net.ns.push(hub.clone());
        cmd("ip", &format!("-n {hub} link set lo up"))?;
        cmd("ip", &format!("-n {hub} link add kzbr type bridge"))?;
        cmd("ip", &format!("-n {hub} link set kzbr up"))?;
        for i in 0..N {
            let ns = format!("kzc{tag}n{i}");
            run("ip", &["netns", "add", &ns])?;
            net.ns.push(ns.clone());
            for (mine, theirs) in [('n', 'h'), ('s', 't')] {
                let (m, t) = (net.dev(mine, i), net.dev(theirs, i));
                cmd("ip", &format!("link add {m} type veth peer name {t}"))?;
                // Moved before anything can fail, so that deleting the namespaces removes them.
                let moved = cmd("ip", &format!("link set {t} netns {hub}"))
                    .and_then(|()| cmd("ip", &format!("link set {m} netns {ns}")));
                if let Err(e) = moved {
                    let _ = cmd("ip", &format!("link del {m}"));
                    return Err(e);
                }
                cmd("ip", &format!("-n {hub} link set {t} master kzbr"))?;
                cmd("ip", &format!("-n {hub} link set {t} up"))?;
                cmd("ip", &format!("-n {ns} link set {m} up"))?;
            }
            let (n, t) = (net.dev('n', i), net.dev('t', i));
            cmd(
                "ip",
                &format!("-n {hub} link set {t} type bridge_slave learning off"),
            )?;
            cmd(
                "ip",
                &format!("-n {ns} addr add {}/24 dev {n}", Net::addr(i)),
            )?;
            cmd("ip", &format!("-n {ns} link set lo up"))?;
        }
        Ok(net)
    }

    /// Laptop `i`'s namespace.
    fn ns(&self, i: usize) -> &str {
        &self.ns[i + 1]
    }

    /// Which faults this kernel can make: netem (after `modprobe sch_netem`), else nftables.
    fn probe(&mut self) -> Result<Faults, String> {
        let (ns, dev) = (self.ns(0).to_owned(), self.dev('n', 0));
        let netem = || cmd("tc", &format!("-n {ns} qdisc add dev {dev} root netem"));
        let found = match netem() {
            Ok(()) => Ok(Faults::Netem),
            Err(first) => {
                let _ = run("modprobe", &["sch_netem"]);
                match netem() {
                    Ok(()) => Ok(Faults::Netem),
                    Err(_) => {
                        let probe = "table netdev kzprobe { }\ndelete table netdev kzprobe\n";
                        nft(&ns, probe)
                            .map(|()| Faults::Nftables)
                            .map_err(|e| format!("no netem ({first}) and no nftables ({e})"))
                    }
                }
            }
        };
        if found == Ok(Faults::Netem) {
            cmd("tc", &format!("-n {ns} qdisc del dev {dev} root"))?;
        }
        found
    }

    /// Impair every link; what each got, for the log.
    fn impair(&mut self, how: Faults, rng: &mut ChaCha8Rng) -> Result<Vec<String>, String> {
        self.faults = Some(how);
        let mut said = Vec::new();
        for i in 0..N {
            let loss = rng.random_range(10..=30u32);
            let (ns, hub) = (self.ns(i).to_owned(), self.hub.clone());
            let (n, h, s) = (self.dev('n', i), self.dev('h', i), self.dev('s', i));
            match how {
                Faults::Netem => {
                    let delay = rng.random_range(20..=60u32);
                    let args = format!(
                        "delay {delay}ms {}ms loss {loss}% duplicate 2% reorder 25% 50%",
                        delay / 2
                    );
                    cmd(
                        "tc",
                        &format!("-n {ns} qdisc add dev {n} root netem {args}"),
                    )?;
                    cmd(
                        "tc",
                        &format!("-n {hub} qdisc add dev {h} root netem {args}"),
                    )?;
                    said.push(format!("laptop {i}: netem {args} (both ways)"));
                }
                Faults::Nftables => {
                    // In: drop. Out: drop, duplicate, or send by the slow path.
                    let script = format!(
                        "table netdev kzchaos {{\n\
                         chain in {{ type filter hook ingress device \"{n}\" priority 0; \
                         numgen random mod 100 < {loss} drop; }}\n\
                         chain out {{ type filter hook egress device \"{n}\" priority 0; \
                         numgen random mod 100 < {loss} drop; \
                         numgen random mod 100 < 3 dup to \"{n}\"; \
                         numgen random mod 100 < {SLOW_SHARE} fwd to \"{s}\"; }}\n\
                         }}\n"
                    );
                    cmd("tc", &format!("-n {ns} qdisc add dev {s} root {SLOW_TBF}"))?;
                    nft(&ns, &script)?;
                    said.push(format!(
                        "laptop {i}: loss {loss}% each way; out 3% duplicated, \
                         {SLOW_SHARE}% by a slow path ({SLOW_TBF})"
                    ));
                }
            }
        }
        Ok(said)
    }

    /// What each laptop's slow path carried (without netem): `tc -s` of its `tbf`.
    fn slow_paths(&self) -> Vec<String> {
        (0..N)
            .map(|i| {
                let out = Command::new("tc")
                    .args([
                        "-s",
                        "-n",
                        self.ns(i),
                        "qdisc",
                        "show",
                        "dev",
                        &self.dev('s', i),
                    ])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                let sent = out
                    .lines()
                    .find(|l| l.trim_start().starts_with("Sent"))
                    .unwrap_or("")
                    .trim();
                format!("laptop {i}'s slow path: {sent}")
            })
            .collect()
    }

    /// Take every fault away and bring every link up.
    fn heal(&mut self) {
        let faults = self.faults.take();
        for i in 0..N {
            let (ns, hub) = (self.ns(i).to_owned(), self.hub.clone());
            let (n, h, s, t) = (
                self.dev('n', i),
                self.dev('h', i),
                self.dev('s', i),
                self.dev('t', i),
            );
            match faults {
                Some(Faults::Netem) => {
                    let _ = cmd("tc", &format!("-n {ns} qdisc del dev {n} root"));
                    let _ = cmd("tc", &format!("-n {hub} qdisc del dev {h} root"));
                }
                Some(Faults::Nftables) => {
                    let _ = nft(&ns, "delete table netdev kzchaos\n");
                    let _ = cmd("tc", &format!("-n {ns} qdisc del dev {s} root"));
                }
                None => {}
            }
            for dev in [h, t] {
                let _ = cmd("ip", &format!("-n {hub} link set {dev} up"));
            }
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in &self.ns {
            let _ = run("ip", &["netns", "del", ns]);
        }
    }
}

/// One link taken down and up on a seeded schedule until dropped (then left up).
struct Flapper {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<usize>>,
}

impl Flapper {
    fn start(hub: String, devs: [String; 2], seed: u64, slow: u64) -> Flapper {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let pause = |ms: u64| {
                let until = Instant::now() + Duration::from_millis(ms);
                while Instant::now() < until && !s.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            };
            let mut flaps = 0;
            while !s.load(Ordering::Relaxed) {
                pause(rng.random_range(2000..4000) * slow);
                if s.load(Ordering::Relaxed) {
                    break;
                }
                for dev in &devs {
                    let _ = cmd("ip", &format!("-n {hub} link set {dev} down"));
                }
                flaps += 1;
                pause(rng.random_range(1000..6000) * slow);
                for dev in &devs {
                    let _ = cmd("ip", &format!("-n {hub} link set {dev} up"));
                }
            }
            flaps
        });
        Flapper {
            stop,
            thread: Some(thread),
        }
    }

    /// Stop flapping; how many times the link went down.
    fn stop(&mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or(0)
    }
}

impl Drop for Flapper {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A laptop's folder, its acknowledged ids and its running process.
struct Slot {
    index: usize,
    dir: PathBuf,
    acked: PathBuf,
    /// Lines of `acked` when the running process started (its own count from there).
    acked_at_start: usize,
    laptop: Option<Laptop>,
}

impl Slot {
    fn writes(&self) -> bool {
        (1..=WRITERS).contains(&self.index)
    }

    /// The acknowledged ids so far (whole lines only: a kill may cut the last).
    fn acked_ids(&self) -> Vec<String> {
        std::fs::read_to_string(&self.acked)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.len() == 32 && l.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_owned)
            .collect()
    }

    /// Start the laptop's process in its namespace, dialling the next two laptops.
    fn start(&mut self, net: &Net) {
        let i = self.index;
        // A line cut by the last kill ends here, so that the next one starts whole.
        let text = std::fs::read(&self.acked).unwrap_or_default();
        if text.last().is_some_and(|b| *b != b'\n') {
            use std::io::Write as _;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&self.acked)
                .unwrap();
            f.write_all(b"\n").unwrap();
        }
        self.acked_at_start = self.acked_ids().len();
        let dir = self.dir.display().to_string();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", net.ns(i)]);
        if self.writes() {
            cmd.arg(lab_bin()).args(["node", "--dir", &dir]);
            for (k, v) in [
                ("--drill-fleet", FLEET.to_string()),
                ("--town-seed", TOWN.to_string()),
                ("--sites", N.to_string()),
                ("--index", i.to_string()),
                (
                    "--write-every",
                    (WRITE_EVERY_MS * u64::from(slow())).to_string(),
                ),
                ("--writes", WRITES.to_string()),
                ("--acked", self.acked.display().to_string()),
            ] {
                cmd.args([k, &v]);
            }
        } else {
            cmd.arg(product_bin()).args(["node", "--dir", &dir]);
        }
        let port = PORT + i as u16;
        let (status, anti_entropy) = ((200 * slow()).to_string(), (2 * slow()).to_string());
        cmd.args(["--bind", &Net::addr(i), "--port", &port.to_string()])
            .args(["--status-every", &status, "--anti-entropy", &anti_entropy])
            .arg("--no-mdns");
        for j in [(i + 1) % N, (i + 2) % N] {
            cmd.args(["--peer", &format!("{}:{}", Net::addr(j), PORT + j as u16)]);
        }
        cmd.env_remove("KAZASHI_ROSTER_PASSPHRASE");
        self.laptop = Some(Laptop::spawn_on(cmd, port));
    }

    fn laptop(&self) -> &Laptop {
        self.laptop.as_ref().unwrap()
    }

    /// Whether this run of a writer has acknowledged all its check-ins.
    fn done_writing(&self) -> bool {
        !self.writes() || self.acked_ids().len() >= self.acked_at_start + WRITES
    }
}

/// Wait for a laptop's first status line; its event count.
fn first_status(slot: &Slot) -> u64 {
    wait_for(
        &format!("laptop {}'s first status", slot.index),
        Duration::from_secs(30) * slow(),
        || slot.laptop().get("device").is_string(),
    );
    slot.laptop().events()
}

/// The ids of the events in a stopped laptop's folder.
fn events_in(dir: &Path) -> BTreeSet<String> {
    let folder = kazashi_node::enrolled::Folder::new(dir);
    let (node, _) =
        kazashi_node::enrolled::open(&folder, PASS, PASS, kazashi_node::SystemClock).unwrap();
    node.state()
        .events_unordered()
        .map(|e| e.id().to_hex())
        .collect()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[test]
fn five_laptops_under_loss_flaps_and_kill_9_converge_after_the_heal() {
    if !is_root() {
        skip("chaos_netns: needs root for network namespaces and tc");
        return;
    }
    if run("tc", &["-V"]).is_err() {
        skip("chaos_netns: no `tc` (iproute2)");
        return;
    }
    let mut net = match Net::new() {
        Ok(net) => net,
        Err(e) => {
            skip(&format!(
                "chaos_netns: network namespaces could not be set up: {e}"
            ));
            return;
        }
    };
    let how = match net.probe() {
        Ok(how) => how,
        Err(e) => {
            skip(&format!("chaos_netns: no way to impair links here: {e}"));
            return;
        }
    };
    println!(
        "chaos_netns: links impaired by {}",
        match how {
            Faults::Netem => "netem (tc qdisc netem)",
            Faults::Nftables => "nftables and tbf (no netem in this kernel)",
        }
    );
    // script/netem-vm boots a kernel that has netem: there the fallback would be a failure.
    if how != Faults::Netem && std::env::var_os("KAZASHI_CHAOS_NEED_NETEM").is_some() {
        panic!("chaos_netns: KAZASHI_CHAOS_NEED_NETEM is set but this kernel has no netem");
    }
    if how == Faults::Nftables {
        skip(
            "chaos_netns: no netem in this kernel (sch_netem): no fixed delay or jitter; loss, \
             duplication, and delay and reordering under bursts (a slow second path) by nftables \
             and tbf instead",
        );
    }
    let seed = std::env::var("KAZASHI_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                % 1_000_000_007
        });
    println!("chaos_netns: seed {seed} (KAZASHI_CHAOS_SEED={seed} replays the schedule)");
    if slow() > 1 {
        println!(
            "chaos_netns: the test's clock {}× slower (KAZASHI_CHAOS_SLOW)",
            slow()
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let t0 = Instant::now();

    // Five drill laptops' folders, enrolled side by side.
    let root = tempfile::tempdir().unwrap();
    let enrolments: Vec<_> = (0..N)
        .map(|i| {
            let dir = root.path().join(format!("laptop{i}"));
            let args: Vec<String> = [
                "enrol-drill",
                "--dir",
                &dir.display().to_string(),
                "--drill-fleet",
                &FLEET.to_string(),
                "--town-seed",
                &TOWN.to_string(),
                "--sites",
                &N.to_string(),
                "--index",
                &i.to_string(),
            ]
            .map(str::to_owned)
            .to_vec();
            std::thread::spawn(move || {
                let out = lab(&args);
                assert!(
                    out.status.success(),
                    "enrol-drill: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                dir
            })
        })
        .collect();
    let mut slots: Vec<Slot> = enrolments
        .into_iter()
        .enumerate()
        .map(|(index, t)| Slot {
            index,
            dir: t.join().unwrap(),
            acked: root.path().join(format!("acked{index}.txt")),
            acked_at_start: 0,
            laptop: None,
        })
        .collect();
    for s in &mut slots {
        s.start(&net);
    }
    for s in &slots {
        first_status(s);
    }
    println!(
        "chaos_netns: 5 laptops enrolled and started in {:.1?}",
        t0.elapsed()
    );

    // Faults on every link, one link flapping, kills at random while the writers write.
    let said = net.impair(how, &mut rng).unwrap();
    for line in &said {
        println!("chaos_netns: {line}");
    }
    let mut flapper = Flapper::start(
        net.hub.clone(),
        [net.dev('h', FLAPPING), net.dev('t', FLAPPING)],
        seed ^ 0xf1a9,
        u64::from(slow()),
    );
    let faults_from = Instant::now();
    let mut kills = 0;
    while faults_from.elapsed() < KILLS_UNTIL * slow() {
        std::thread::sleep(Duration::from_millis(rng.random_range(2500..5000)) * slow());
        let i = rng.random_range(0..N);
        let slot = &mut slots[i];
        let shown = slot.laptop().events();
        drop(slot.laptop.take()); // SIGKILL, then reaped
        kills += 1;
        // Its folder, opened while it is down, holds what it showed and everything it
        // acknowledged (not brought back by a peer later).
        let at = faults_from.elapsed();
        let acked = slot.acked_ids();
        let held = events_in(&slot.dir);
        assert!(
            held.len() as u64 >= shown,
            "laptop {i} showed {shown} events before kill -9; its folder holds {} (seed {seed})",
            held.len()
        );
        if let Some(lost) = acked.iter().find(|id| !held.contains(*id)) {
            panic!(
                "laptop {i} acknowledged {lost} before kill -9; its folder lacks it (seed {seed})"
            );
        }
        let down = rng.random_range(300..2000);
        println!(
            "chaos_netns: kill -9 laptop {i} at {at:.1?}: it showed {shown} events; its folder holds {}, the {} ids it acknowledged among them; restarted after {down} ms",
            held.len(),
            acked.len()
        );
        std::thread::sleep(Duration::from_millis(down));
        slot.start(&net);
        let back = first_status(slot);
        assert!(
            back >= shown,
            "laptop {i} showed {shown} events before kill -9 and {back} after its restart"
        );
    }
    let left = (FAULTS * slow()).saturating_sub(faults_from.elapsed());
    std::thread::sleep(left);
    let flaps = flapper.stop();
    if how == Faults::Nftables {
        for line in net.slow_paths() {
            println!("chaos_netns: {line}");
        }
    }

    // The heal: every fault taken away, the link up; every laptop must then agree.
    net.heal();
    let healed = Instant::now();
    println!(
        "chaos_netns: healed after {:.1?} of faults ({kills} kills, the link of laptop {FLAPPING} down {flaps} times)",
        faults_from.elapsed()
    );
    // Every writer done, every laptop showing the same digest over as many events as were
    // acknowledged (or more: some written just before a kill were never acknowledged), and so
    // for longer than three status periods (a status line is up to 200 ms old).
    let agree = || {
        let d = slots[0].laptop().digest();
        let acked: usize = slots.iter().map(|s| s.acked_ids().len()).sum();
        let events = slots[0].laptop().events();
        (!d.is_empty()
            && slots.iter().all(|s| s.done_writing())
            && events >= acked as u64
            && slots
                .iter()
                .all(|s| s.laptop().digest() == d && s.laptop().events() == events))
        .then_some(d)
    };
    let mut since: Option<(String, Instant)> = None;
    let mut converged = || {
        since = match (agree(), since.take()) {
            (Some(d), Some((was, t))) if d == was => Some((was, t)),
            (Some(d), _) => Some((d, Instant::now())),
            (None, _) => None,
        };
        since
            .as_ref()
            .is_some_and(|(_, t)| t.elapsed() >= Duration::from_millis(700) * slow())
    };
    // When the last writer wrote its last check-in (seen to the 100 ms).
    let mut written = None;
    let mut done = false;
    while healed.elapsed() < HEAL_LIMIT * slow() {
        if converged() {
            done = true;
            break;
        }
        if written.is_none() && slots.iter().all(|s| s.done_writing()) {
            written = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let written = written.unwrap_or_else(Instant::now);
    if !done {
        for s in &slots {
            println!(
                "laptop {}: {} events, digest {}, acked {} (from {}), peers {}",
                s.index,
                s.laptop().events(),
                s.laptop().digest(),
                s.acked_ids().len(),
                s.acked_at_start,
                s.laptop().get("peers")
            );
        }
        panic!(
            "the five laptops did not converge within {:?} of the heal (seed {seed})",
            HEAL_LIMIT * slow()
        );
    }
    let took = healed.elapsed();
    let settled = written.elapsed();
    let events = slots[0].laptop().events();
    let digest = slots[0].laptop().digest();

    // Stopped, every folder holds the same events, and every acknowledged one.
    for s in &mut slots {
        drop(s.laptop.take());
    }
    let held: Vec<BTreeSet<String>> = slots.iter().map(|s| events_in(&s.dir)).collect();
    for (s, h) in slots.iter().zip(&held) {
        assert_eq!(
            h, &held[0],
            "laptop {} holds other events than laptop 0 (seed {seed})",
            s.index
        );
    }
    assert_eq!(
        held[0].len() as u64,
        events,
        "the folders hold what the status said"
    );
    let mut acked = 0;
    for s in slots.iter().filter(|s| s.writes()) {
        for id in s.acked_ids() {
            acked += 1;
            assert!(
                held[0].contains(&id),
                "event {id} acknowledged by laptop {} is missing after the heal (seed {seed})",
                s.index
            );
        }
    }
    assert!(
        acked >= WRITERS * WRITES,
        "the writers wrote {acked} check-ins"
    );
    println!(
        "chaos_netns: converged {took:.1?} after the heal ({:.1?} after the last check-in was \
         written): all 5 show digest {}… over {events} events; the {acked} acknowledged ids are in \
         every folder (seed {seed}, {:.1?} in all)",
        settled,
        &digest[..12],
        t0.elapsed()
    );
}
