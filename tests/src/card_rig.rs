//! The virtual-card rig: a real pcscd with vsmartcard's vpcd reader, and the in-repo card
//! emulator on it. Starts pcscd itself when it is not running (as root; it then exits by
//! itself a minute after the last client), and says "skipped: …" only where it cannot.

use kazashi_node::card::{PcscTransport, ReaderSnapshot};
use kazashi_sim::card::VirtualCard;
use kazashi_sim::card::vpcd::{InsertedCard, VPCD_PORT};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const PCSCD: &str = "/usr/sbin/pcscd";
const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";
/// The reader vpcd's first slot shows as.
pub use kazashi_sim::card::vpcd::VPCD_READER as READER;

/// One card test at a time: there is one virtual reader.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
/// The pcscd this process started, if any.
static OURS: Mutex<Option<Child>> = Mutex::new(None);

pub struct Rig {
    _turn: MutexGuard<'static, ()>,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn vpcd_reader_up() -> bool {
    ReaderSnapshot::now().is_ok_and(|s| s.readers.iter().any(|r| r.name == READER))
}

/// Say that (part of) a test could not run here, and why: printed, and appended to the file
/// `KAZASHI_SKIP_LOG` names, which `script/test` shows at the end (cargo hides the output of
/// passing tests).
pub fn skip(why: &str) {
    println!("skipped: {why}");
    if let Some(path) = std::env::var_os("KAZASHI_SKIP_LOG") {
        use std::io::Write as _;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "skipped: {why}");
        }
    }
}

/// Wait until `f` holds, up to `d`.
pub fn wait_for(d: Duration, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

impl Rig {
    /// The rig, or the reason it cannot run here (for [`skip`]).
    pub fn start() -> Result<Rig, String> {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        if !std::path::Path::new(PCSCD).exists() {
            return Err(
                "pcscd is not installed (script/test installs pcscd and vsmartcard-vpcd)".into(),
            );
        }
        if !std::path::Path::new(VPCD_DRIVER).exists() {
            return Err("vsmartcard-vpcd is not installed (script/test installs it)".into());
        }
        let ours = OURS.lock().map(|g| g.is_some()).unwrap_or(false);
        // A pcscd another test process of this suite started is taken over, so that every
        // test process can stop and restart it; the system's own pcscd is left alone.
        if !vpcd_reader_up() || (!ours && rig_pcscd_running()) {
            start_pcscd()?;
        }
        Ok(Rig { _turn: turn })
    }

    /// Does this process own pcscd (so a test may stop and restart it)?
    pub fn owns_pcscd(&self) -> bool {
        OURS.lock().map(|g| g.is_some()).unwrap_or(false)
    }

    /// Stop our pcscd (as if it crashed or was restarted).
    pub fn stop_pcscd(&self) -> Result<(), String> {
        let mut g = OURS.lock().map_err(|_| "poisoned")?;
        let mut child = g.take().ok_or("pcscd is not ours")?;
        let _ = child.kill();
        let _ = child.wait();
        Ok(())
    }

    pub fn restart_pcscd(&self) -> Result<(), String> {
        start_pcscd()
    }

    /// Restart our pcscd with no reader configured: as if the reader were unplugged.
    pub fn restart_pcscd_without_readers(&self) -> Result<(), String> {
        let empty = std::env::temp_dir().join("kazashi-card-rig-no-readers");
        std::fs::create_dir_all(&empty).map_err(|e| e.to_string())?;
        spawn_pcscd(&["--config", &empty.display().to_string()])?;
        if wait_for(Duration::from_secs(10), || ReaderSnapshot::now().is_ok()) {
            Ok(())
        } else {
            Err("pcscd without readers did not come up".into())
        }
    }

    /// Put a card on the virtual reader and wait until pcscd sees it.
    pub fn insert(&self, card: VirtualCard) -> Result<InsertedCard, String> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, VPCD_PORT));
        let c =
            InsertedCard::insert(card, addr, Duration::from_secs(10)).map_err(|e| e.to_string())?;
        if !wait_for(Duration::from_secs(10), || card_present(true)) {
            return Err("pcscd did not see the virtual card".into());
        }
        Ok(c)
    }

    /// Take the card off and wait until pcscd sees it gone.
    pub fn remove(&self, c: InsertedCard) -> Option<VirtualCard> {
        let card = c.remove();
        wait_for(Duration::from_secs(10), || card_present(false));
        card
    }

    /// Connect to the card on the virtual reader.
    pub fn connect(&self) -> Result<PcscTransport, String> {
        PcscTransport::connect(READER).map_err(|e| e.to_string())
    }
}

/// Is a card on the virtual reader (as pcscd says)?
pub fn card_present(want: bool) -> bool {
    ReaderSnapshot::now()
        .map(|s| s.readers.iter().any(|r| r.name == READER && r.card) == want)
        .unwrap_or(false)
}

fn start_pcscd() -> Result<(), String> {
    spawn_pcscd(&[])?;
    if wait_for(Duration::from_secs(10), vpcd_reader_up) {
        Ok(())
    } else {
        Err("pcscd started but shows no vpcd reader (is /etc/reader.conf.d/vpcd there?)".into())
    }
}

/// (Re)start our own pcscd in the foreground, exiting by itself a minute after its last
/// client.
fn spawn_pcscd(extra: &[&str]) -> Result<(), String> {
    if !is_root() {
        return Err("pcscd with the vpcd reader is not running, and starting it needs root".into());
    }
    let mut g = OURS.lock().map_err(|_| "poisoned")?;
    if let Some(mut old) = g.take() {
        let _ = old.kill();
        let _ = old.wait();
    }
    // A pcscd left by an earlier run may hold the socket without answering.
    let _ = Command::new("pkill").args(["-x", "pcscd"]).status();
    std::thread::sleep(Duration::from_millis(200));
    let _ = std::fs::remove_file("/run/pcscd/pcscd.comm");
    let _ = std::fs::create_dir_all("/run/pcscd");
    let child = Command::new(PCSCD)
        .args(["--foreground", "--auto-exit"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start pcscd: {e}"))?;
    let _ = std::fs::write(marker(), child.id().to_string());
    *g = Some(child);
    Ok(())
}

/// Where a rig writes the pid of the pcscd it started.
fn marker() -> std::path::PathBuf {
    std::env::temp_dir().join("kazashi-card-rig.pcscd.pid")
}

/// Is the running pcscd one a rig started (in this or another process)?
fn rig_pcscd_running() -> bool {
    let Ok(pid) = std::fs::read_to_string(marker()) else {
        return false;
    };
    std::fs::read_to_string(format!("/proc/{}/comm", pid.trim())).is_ok_and(|c| c.trim() == "pcscd")
}

/// The synthetic town and its drill fleet, with a folder for the laptops' stores: what the
/// card tests write check-ins into.
pub struct World {
    pub roster: std::sync::Arc<kazashi_domain::Roster>,
    pub fleet: kazashi_sim::fleet::Fleet,
    pub dir: tempfile::TempDir,
}

/// The town (with its voters' roster when `voters`), and an empty folder. Test support: a
/// failure here is the test's failure.
#[allow(clippy::unwrap_used)]
pub fn world(voters: bool) -> World {
    let (roster, fleet) = crate::town_with(voters).unwrap();
    World {
        roster: std::sync::Arc::new(roster),
        fleet,
        dir: tempfile::tempdir().unwrap(),
    }
}

/// A fresh laptop of `site` in the world's folder, on a manual clock at the drill's start.
#[allow(clippy::unwrap_used)]
pub fn node(w: &World, site: &str) -> kazashi_node::Node<kazashi_node::ManualClock> {
    let site = kazashi_domain::ids::SiteId::new(site).unwrap();
    kazashi_node::Node::create(
        &w.dir.path().join(format!("{site}.db")),
        "correct horse",
        kazashi_node::store::KdfParams::FAST_INSECURE,
        kazashi_sync::DeviceKey::from_seed(w.fleet.key(&site).unwrap().secret_bytes()),
        &w.fleet.manifest,
        w.roster.clone(),
        site,
        kazashi_node::ManualClock::new(kazashi_sim::workload::START_MS),
    )
    .unwrap()
}
