//! The roster this laptop runs on, served to peers (`crate::roster_net::Server`) from wherever
//! the station holds it: in memory, or in its roster store on disk (`crate::roster_lookup`).
//!
//! **Same bytes either way.** A chunk is the entries' canonical encoding, the bytes the pinned
//! hash is computed over (`kazashi_sync::roster_transfer`). A roster store keeps exactly those
//! bytes, one row per entry in person-id order (`crate::roster_db`), so a roster on disk is cut
//! by streaming its rows through the same [`Cutter`] that cuts one in memory: the same chunks,
//! with the same hashes, in the same index. The cut recomputes the roster hash over the rows it
//! read and is refused unless they give the hash served under, and the store's count; every
//! chunk read back later is checked against its hash in the index before it is sent (a store
//! changed under the index answers "not held", never a wrong chunk).
//!
//! **Bounded memory.** Nothing holds the roster: the cut reads [`CUT_BATCH`] rows per lock of
//! the store (the desk's lookups wait one batch at most) and keeps one chunk being filled and
//! the index (36 bytes a chunk, about 1,200 chunks a million people); a chunk is read back by
//! its first row, about a thousand rows.
//!
//! **Cut once, off the async threads.** The cut of a roster (a full scan on disk: seconds at a
//! million people) runs on a blocking thread and lands in [`ServeCache`] whether or not the
//! request that started it is still waiting (a peer that gave up and asks again finds it
//! there); requests meanwhile wait for it, and one cut runs at a time (requests for the roster
//! the station switched to wait for the cut of the one it ran before); a failed cut is not
//! tried again for a minute.

use kazashi_domain::Roster;
use kazashi_domain::ids::RosterHash;
use kazashi_sync::roster_transfer::{CHUNK_TARGET, Cutter, Request, Response, Served, push_entry};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Rows read from a roster store per lock while cutting its index.
pub const CUT_BATCH: usize = 4096;
/// A failed cut is tried again after this long.
const RETRY_AFTER: Duration = Duration::from_secs(60);
/// How often a request waiting for a cut looks again.
const WAIT_STEP: Duration = Duration::from_millis(20);

/// Cut the index of `roster`, served under `hash`: from its entries in memory, or streamed
/// from its store. Refused when a store's rows do not give `hash` or its count.
pub fn cut(hash: RosterHash, roster: &Roster) -> Result<Served, String> {
    if let Some(entries) = roster.in_memory() {
        return Ok(Served::new(hash, roster.kind(), entries));
    }
    let store = roster.store().ok_or("no roster to serve")?;
    let mut cutter = Cutter::new(roster.kind());
    let mut from = 0u64;
    loop {
        let mut last = None;
        let got = store
            .encoded_from(from, CUT_BATCH, &mut |at, bytes| {
                cutter.push(at, bytes);
                last = Some(at);
            })
            .ok_or("the roster store could not be read")?;
        match last.and_then(|at| at.checked_add(1)) {
            Some(next) if got == CUT_BATCH => from = next,
            _ => break,
        }
    }
    if cutter.count() != roster.len() as u64 {
        return Err("the roster store holds another number of entries than it records".into());
    }
    let (served, found) = cutter.finish(hash);
    if found != hash {
        return Err("the roster store's entries do not give the roster's hash".into());
    }
    Ok(served)
}

/// The answer to `req` from `served` (cut from `roster` by [`cut`]): each chunk made from the
/// entries in memory, or read back from the store by its first row.
pub fn respond(served: &Served, req: &Request, roster: &Roster) -> Response {
    if let Some(entries) = roster.in_memory() {
        return served.respond(req, entries);
    }
    let Some(store) = roster.store() else {
        return Response::NotHeld;
    };
    served.respond_with(req, &mut |start, count| {
        let mut out = Vec::with_capacity(CHUNK_TARGET + 1024);
        let want = count as usize;
        let got = store.encoded_from(start, want, &mut |_, b| push_entry(&mut out, b))?;
        (got == want).then_some(out)
    })
}

/// Which roster a cut is of: its hash, and whether it was held in memory (the places of its
/// chunks are positions there, rows on disk).
type Key = (RosterHash, bool);

fn key(hash: RosterHash, roster: &Roster) -> Key {
    (hash, roster.in_memory().is_some())
}

enum State {
    Empty,
    Cutting(Key),
    Ready(Key, Arc<Served>),
    Failed(Key, Instant),
}

/// The index of the roster served, cut once per roster (see the module doc).
#[derive(Clone)]
pub struct ServeCache {
    state: Arc<Mutex<State>>,
}

impl Default for ServeCache {
    fn default() -> Self {
        ServeCache {
            state: Arc::new(Mutex::new(State::Empty)),
        }
    }
}

impl std::fmt::Debug for ServeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServeCache")
    }
}

impl ServeCache {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The index of `roster` (served under `hash`), cut now on a blocking thread if it is
    /// not cut yet; `None` if the cut failed.
    pub async fn served(&self, hash: RosterHash, roster: &Arc<Roster>) -> Option<Arc<Served>> {
        let k = key(hash, roster);
        loop {
            {
                let mut st = self.lock();
                match &*st {
                    State::Ready(at, s) if *at == k => return Some(s.clone()),
                    State::Cutting(at) if *at == k => {}
                    State::Failed(at, when) if *at == k && when.elapsed() < RETRY_AFTER => {
                        return None;
                    }
                    // Another roster's cut still runs (the station switched rosters while
                    // requests waited): it lands first, one full scan of a store at a time.
                    // Taking its place would have every waiter of either roster start its own
                    // cut again each step, none of them landing.
                    State::Cutting(_) => {}
                    _ => {
                        *st = State::Cutting(k);
                        let (state, roster) = (self.state.clone(), roster.clone());
                        tokio::task::spawn_blocking(move || {
                            // A panic fails the cut rather than leaving it running for
                            // ever (every request waits on a running cut).
                            let cut =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    cut(hash, &roster)
                                }));
                            let done = match cut {
                                Ok(Ok(s)) => State::Ready(k, Arc::new(s)),
                                Ok(Err(_)) | Err(_) => State::Failed(k, Instant::now()),
                            };
                            let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                            // A newer roster's cut may have started meanwhile: keep to it.
                            if matches!(&*st, State::Cutting(at) if *at == k) {
                                *st = done;
                            }
                        });
                    }
                }
            }
            tokio::time::sleep(WAIT_STEP).await;
        }
    }

    /// The answer to `req` for `roster`, served under `hash` (a chunk of a roster on disk is
    /// read on a blocking thread).
    pub async fn respond(&self, req: &Request, hash: RosterHash, roster: Arc<Roster>) -> Response {
        let Some(served) = self.served(hash, &roster).await else {
            return Response::NotHeld;
        };
        if roster.in_memory().is_some() || matches!(req, Request::Index { .. }) {
            return respond(&served, req, &roster);
        }
        let req = *req;
        tokio::task::spawn_blocking(move || respond(&served, &req, &roster))
            .await
            .unwrap_or(Response::NotHeld)
    }
}
