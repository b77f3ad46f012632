//! The pinned roster from other laptops, for a laptop enrolled with none (or with one its
//! manifest no longer pins): the store's passphrase opens its key and manifest, the typed-in
//! laptops of the deployment are asked for the roster (`roster_net::fetch_for_folder`: every
//! chunk checked, the roster's hash checked against the pin before the roster store is
//! written), off the window's thread, with its progress; then the folder opens as usual.

use super::enrol::{Job, chain};
use kazashi_domain::CivilDate;
use kazashi_node::enrolled::Folder;
use kazashi_node::mesh::PeerAddr;
use kazashi_node::roster_fetch::RosterStatus;
use kazashi_node::roster_net::{FolderFetch, fetch_for_folder};
use kazashi_node::{Clock as _, KdfParams, SystemClock};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;
use zeroize::Zeroizing;

/// How long the window tries before it gives up (the operator may stop sooner).
pub const ROSTER_WAIT: Duration = Duration::from_secs(15 * 60);

/// How a fetch ended.
pub enum Fetched {
    Done,
    Failed(String),
    TimedOut,
    Stopped,
}

/// A fetch under way.
pub struct RosterFetch {
    job: Job<Fetched>,
    progress: mpsc::Receiver<RosterStatus>,
    stop: Arc<AtomicBool>,
    /// The latest progress.
    pub status: Option<RosterStatus>,
}

impl RosterFetch {
    /// Ask `peers` for the roster of the laptop in `folder`, written under `roster_passphrase`.
    pub fn start(
        folder: Folder,
        passphrase: Zeroizing<String>,
        roster_passphrase: Zeroizing<String>,
        peers: Vec<PeerAddr>,
    ) -> Self {
        let (tx, progress) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let job = Job::spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return Fetched::Failed(e.to_string()),
            };
            let Some(today) = CivilDate::jst_of(SystemClock.now_ms()) else {
                return Fetched::Failed("the clock is outside the calendar".into());
            };
            let how = FolderFetch {
                bind: SocketAddr::from(([0, 0, 0, 0], 0)),
                peers: peers.iter().map(|p| (p.device, p.addr)).collect(),
                kdf: KdfParams::STANDARD,
            };
            let tx = std::sync::Mutex::new(tx);
            let report = move |s: &RosterStatus| {
                if let Ok(tx) = tx.lock() {
                    let _ = tx.send(s.clone());
                }
            };
            let out = rt.block_on(async {
                let watch_stop = async {
                    while !stopped.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                };
                tokio::select! {
                    r = fetch_for_folder(&folder, &passphrase, &roster_passphrase, &how, today, &report) => match r {
                        Ok(_) => Fetched::Done,
                        Err(e) => Fetched::Failed(chain(&e)),
                    },
                    _ = watch_stop => Fetched::Stopped,
                    _ = tokio::time::sleep(ROSTER_WAIT) => Fetched::TimedOut,
                }
            });
            rt.shutdown_timeout(Duration::from_secs(1));
            out
        });
        RosterFetch {
            job,
            progress,
            stop,
            status: None,
        }
    }

    /// The result once there (`Some(Err(()))` if the work stopped without one); keeps the
    /// latest progress in `status`.
    pub fn poll(&mut self) -> Option<Result<Fetched, ()>> {
        while let Ok(s) = self.progress.try_recv() {
            self.status = Some(s);
        }
        self.job.poll()
    }

    /// Stop asking (the result comes as [`Fetched::Stopped`]).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The laptops typed in, one or more separated by spaces or commas.
pub fn parse_peers(text: &str) -> Result<Vec<PeerAddr>, String> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == '、')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<PeerAddr>().map_err(|_| s.to_owned()))
        .collect()
}
