//! A roster held only on disk, served to peers (`crate::roster_serve`): cut into the same
//! chunks as the same roster in memory; a row changed under the index never sent; over real
//! UDP on loopback, a laptop whose roster lives only in its roster store serves it to a laptop
//! enrolled with none, which writes it into its own store as it reads the chunks and opens it
//! from disk; a store changed under its station serves nothing and the fetching laptop keeps
//! the roster it had.

use crate::clock::ManualClock;
use crate::enrolled::{self, Folder};
use crate::mesh::Mesh;
use crate::roster_db::RosterDb;
use crate::roster_lookup::{ON_DISK_FROM, StoreRoster};
use crate::roster_net::{FolderFetch, Standalone};
use crate::roster_net_tests::{
    PASS, ROSTER_PASS, T0, big_roster, folder_without_roster, loopback, manifest, target, today,
};
use crate::roster_serve::{cut, respond};
use crate::store::{KdfParams, Store};
use kazashi_domain::Roster;
use kazashi_domain::ids::RosterHash;
use kazashi_domain::roster::RosterEntry;
use kazashi_sync::roster_transfer::{Request, Response};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// `roster` written to a roster store at `path`, and opened from disk (any size).
pub(crate) fn on_disk(path: &Path, roster: &Roster) -> Roster {
    let db = RosterDb::create(
        path,
        ROSTER_PASS,
        KdfParams::FAST_INSECURE,
        roster.into(),
        [0; 32],
        &mut |_, _| {},
    )
    .unwrap();
    let disk = StoreRoster::roster(db, Some(roster.hash())).unwrap();
    assert!(disk.in_memory().is_none());
    disk
}

fn chunk(served: &kazashi_sync::roster_transfer::Served, n: u32, r: &Roster) -> Response {
    respond(
        served,
        &Request::Chunk {
            roster: served.hash,
            n,
        },
        r,
    )
}

#[test]
fn a_roster_on_disk_is_cut_into_the_same_chunks_with_the_same_hashes_as_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mem = big_roster(20_000);
    let disk = on_disk(&dir.path().join("roster.db"), &mem);
    let hash = mem.hash();
    let (a, b) = (cut(hash, &mem).unwrap(), cut(hash, &disk).unwrap());
    assert_eq!(a.index, b.index);
    assert!(a.index.chunks.len() >= 8, "{} chunks", a.index.chunks.len());
    let index = Request::Index { roster: hash };
    assert_eq!(respond(&a, &index, &mem), respond(&b, &index, &disk));
    for n in 0..a.index.chunks.len() as u32 {
        let (x, y) = (chunk(&a, n, &mem), chunk(&b, n, &disk));
        assert!(matches!(x, Response::Chunk { .. }), "chunk {n}");
        assert_eq!(x, y, "chunk {n}");
    }
    let past = a.index.chunks.len() as u32;
    assert_eq!(chunk(&b, past, &disk), Response::NotHeld);
    // Another roster's hash is not served, and no index is cut under a hash the rows do not
    // give.
    let other = RosterHash([3; 32]);
    assert_eq!(
        respond(&b, &Request::Index { roster: other }, &disk),
        Response::NotHeld
    );
    assert!(cut(other, &disk).is_err());
}

#[test]
fn a_row_changed_under_the_index_is_never_sent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roster.db");
    let mem = big_roster(6_000);
    let disk = on_disk(&path, &mem);
    let served = cut(mem.hash(), &disk).unwrap();
    assert!(served.index.chunks.len() >= 2);
    let before = chunk(&served, 1, &disk);
    // Someone holding the passphrase rewrites one entry of chunk 0 behind the station's back.
    let other = RosterDb::open(&path, ROSTER_PASS).unwrap();
    other
        .connection_for_tests()
        .execute(
            "UPDATE person SET entry = CAST(entry || x'00' AS BLOB) WHERE rid = 5",
            [],
        )
        .unwrap();
    drop(other);
    assert_eq!(chunk(&served, 0, &disk), Response::NotHeld);
    // The chunks it does not touch are served as before; a new cut is refused whole.
    assert_eq!(chunk(&served, 1, &disk), before);
    assert!(cut(mem.hash(), &disk).is_err());
}

/// Enrolled laptop `n` whose roster store holds `roster`.
pub(crate) fn folder_with_roster(dir: &Path, n: u8, m: &[u8], roster: &Roster) -> Folder {
    let folder = folder_without_roster(dir, n, m);
    RosterDb::create(
        &folder.roster_path(),
        ROSTER_PASS,
        KdfParams::FAST_INSECURE,
        roster.into(),
        [0; 32],
        &mut |_, _| {},
    )
    .unwrap();
    folder
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_laptop_whose_roster_is_only_on_disk_serves_it_and_the_fetched_one_lands_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let n = ON_DISK_FROM as usize;
    let (pinned, sample, m, folder_a) = {
        let roster = big_roster(n);
        let m = manifest(1, roster.hash(), &[1, 2]);
        let folder_a = folder_with_roster(dir.path(), 1, &m, &roster);
        let sample: Vec<RosterEntry> = roster.entries().iter().step_by(997).cloned().collect();
        (roster.hash(), sample, m, folder_a)
        // The roster in memory is dropped here: A has it on disk only.
    };
    let (node_a, roster_a) =
        enrolled::open(&folder_a, PASS, ROSTER_PASS, ManualClock::new(T0)).unwrap();
    assert!(
        roster_a.in_memory().is_none(),
        "A holds its roster in memory"
    );
    drop(roster_a);
    let ma = Mesh::start(node_a, loopback(Vec::new())).await.unwrap();
    let at_a = ma.addrs().into_iter().next().unwrap();

    let folder_b = folder_without_roster(dir.path(), 2, &m);
    let how = FolderFetch {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        peers: vec![(at_a.device, at_a.addr)],
        kdf: KdfParams::FAST_INSECURE,
    };
    let (host, secret) = Standalone::open(&folder_b, PASS).unwrap();
    let got = tokio::time::timeout(
        Duration::from_secs(240),
        host.run(secret, &how, &target(&folder_b), today()),
    )
    .await
    .expect("the transfer did not end")
    .unwrap();
    assert_eq!(got.roster.hash(), pinned);
    assert_eq!(got.fetched as usize, got.total);
    assert!(got.total >= 50, "{} chunks", got.total);
    // B answers from the store it wrote, not from memory, and finds everyone.
    assert!(got.roster.in_memory().is_none());
    assert_eq!(got.roster.len(), n);
    for e in &sample {
        assert_eq!(got.roster.get(&e.person).as_deref(), Some(e));
        assert!(got.roster.household(&e.household).iter().any(|x| **x == *e));
    }
    drop((got, host));
    // The chunks are gone from B's store; B's folder opens on its roster, checked on the pin.
    let store = Store::open(&folder_b.store_path(), PASS).unwrap();
    assert!(store.roster_chunks(&pinned.0).unwrap().is_empty());
    drop(store);
    let (node_b, opened) =
        enrolled::open(&folder_b, PASS, ROSTER_PASS, ManualClock::new(T0)).unwrap();
    assert_eq!(opened.hash(), pinned);
    assert!(opened.in_memory().is_none());
    let e = sample.last().unwrap();
    assert_eq!(node_b.station().roster().get(&e.person).as_deref(), Some(e));
    ma.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_changed_under_its_station_serves_nothing_and_the_fetcher_keeps_its_roster() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (big_roster(3_000), big_roster(9_000));
    let m = manifest(1, new.hash(), &[1, 2]);
    // A runs on the pinned roster, answered from its store on disk.
    let path_a = dir.path().join("a-roster.db");
    let disk = Arc::new(on_disk(&path_a, &new));
    let node_a = crate::Node::create(
        &dir.path().join("1.db"),
        PASS,
        KdfParams::FAST_INSECURE,
        crate::link::tests::key(1),
        &m,
        disk.clone(),
        crate::link::tests::site(),
        ManualClock::new(T0),
    )
    .unwrap();
    let ma = Mesh::start(node_a, loopback(Vec::new())).await.unwrap();
    let at_a = ma.addrs().into_iter().next().unwrap();
    // Then one of its rows is rewritten behind its back.
    let other = RosterDb::open(&path_a, ROSTER_PASS).unwrap();
    other
        .connection_for_tests()
        .execute(
            "UPDATE person SET entry = CAST(entry || x'00' AS BLOB) WHERE rid = 4000",
            [],
        )
        .unwrap();
    drop(other);
    // B holds an older roster in its folder and fetches the pinned one from A.
    let folder_b = folder_with_roster(dir.path(), 2, &m, &old);
    let how = FolderFetch {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        peers: vec![(at_a.device, at_a.addr)],
        kdf: KdfParams::FAST_INSECURE,
    };
    let (host, secret) = Standalone::open(&folder_b, PASS).unwrap();
    let run = tokio::time::timeout(
        Duration::from_secs(4),
        host.run(secret, &how, &target(&folder_b), today()),
    )
    .await;
    assert!(run.is_err(), "a roster came from a changed store");
    let s = host.status();
    assert_eq!((s.chunks_held, s.chunks_fetched), (0, 0), "{s:?}");
    drop(host);
    // Nothing lost: B's roster store is the one it had, whole, and no part file is left.
    let db = RosterDb::open(&folder_b.roster_path(), ROSTER_PASS).unwrap();
    assert_eq!(db.load(today(), Some(old.hash())).unwrap(), old);
    let part = crate::roster_db::part_path(&folder_b.roster_path());
    assert!(!part.exists());
    ma.shutdown().await;
}

#[test]
fn a_chunk_damaged_in_the_store_is_refused_at_the_build_and_the_roster_in_place_stays() {
    use crate::roster_fetch::{BuildError, RosterTarget, begin, build, keep};
    use kazashi_sync::roster_transfer::{Got, TransferError};
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (big_roster(2_000), big_roster(8_000));
    let t = RosterTarget::new(
        dir.path().join("roster.db"),
        ROSTER_PASS,
        KdfParams::FAST_INSECURE,
    );
    drop(on_disk(&t.path, &old));
    // The pinned roster served from disk; the receiver's store holds damaged bytes under the
    // last chunk's hash (a store that lost it), so every other chunk is written out first.
    let served = cut(new.hash(), &on_disk(&dir.path().join("a.db"), &new)).unwrap();
    let disk = on_disk(&dir.path().join("a2.db"), &new);
    let last = served.index.chunks.len() - 1;
    let st = Store::create(&dir.path().join("k.db"), PASS, KdfParams::FAST_INSECURE).unwrap();
    let damaged_at = served.index.chunks[last].sha256;
    st.put_roster_chunk(&new.hash().0, &damaged_at, b"damaged")
        .unwrap();
    let mut f = begin(&st, new.hash()).unwrap();
    loop {
        let reqs = f.next_requests(4);
        if reqs.is_empty() {
            break;
        }
        for q in reqs {
            let resp = respond(&served, &q, &disk);
            if let (Got::Chunk { sha256, .. }, Response::Chunk { bytes, .. }) =
                (f.on_response(&resp).unwrap(), &resp)
            {
                keep(&st, new.hash(), &sha256, bytes).unwrap();
            }
        }
    }
    assert!(f.is_complete());
    let with = |g: &mut dyn FnMut(&Store)| g(&st);
    let e = build(&with, new.hash(), f.index().unwrap(), &t, today()).unwrap_err();
    assert!(
        matches!(e, BuildError::Transfer(TransferError::BadChunk(n)) if n as usize == last),
        "{e}"
    );
    // Every chunk is discarded, no part file is left, the roster in place is the old one.
    assert!(st.roster_chunks(&new.hash().0).unwrap().is_empty());
    let part = crate::roster_db::part_path(&t.path);
    for p in [
        part.clone(),
        crate::roster_db::text_path(&part),
        crate::store::kdf_path(&part),
    ] {
        assert!(!p.exists(), "{} left", p.display());
    }
    let db = RosterDb::open(&t.path, ROSTER_PASS).unwrap();
    assert_eq!(db.load(today(), Some(old.hash())).unwrap(), old);
}

/// A roster store that reads its rows slowly and counts how many reads run at once (the
/// cuts of [`crate::roster_serve::ServeCache`] read a store through `encoded_from` only).
#[derive(Debug)]
struct SlowStore {
    hash: RosterHash,
    rows: Vec<Vec<u8>>,
    reading: Arc<(
        std::sync::atomic::AtomicUsize,
        std::sync::atomic::AtomicUsize,
    )>,
}

impl kazashi_domain::roster::RosterStore for SlowStore {
    fn kind(&self) -> kazashi_domain::roster::RosterKind {
        kazashi_domain::roster::RosterKind::Residents
    }
    fn len(&self) -> usize {
        self.rows.len()
    }
    fn hash(&self) -> RosterHash {
        self.hash
    }
    fn get(&self, _: &kazashi_domain::ids::PersonId) -> Option<Arc<RosterEntry>> {
        None
    }
    fn by_list_number(&self, _: &kazashi_domain::ids::ListNumber) -> Option<Arc<RosterEntry>> {
        None
    }
    fn household(&self, _: &kazashi_domain::ids::HouseholdId) -> Vec<Arc<RosterEntry>> {
        Vec::new()
    }
    fn born_on(&self, _: kazashi_domain::CivilDate) -> Vec<Arc<RosterEntry>> {
        Vec::new()
    }
    fn named(&self, _: &str, _: usize) -> Vec<Arc<RosterEntry>> {
        Vec::new()
    }
    fn search(&self, _: &str, _: usize) -> Vec<kazashi_domain::ids::PersonId> {
        Vec::new()
    }
    fn for_each(&self, _: &mut dyn FnMut(&RosterEntry)) -> bool {
        false
    }
    fn encoded_from(
        &self,
        from: u64,
        count: usize,
        f: &mut dyn FnMut(u64, &[u8]),
    ) -> Option<usize> {
        use std::sync::atomic::Ordering::SeqCst;
        let (now, most) = &*self.reading;
        most.fetch_max(now.fetch_add(1, SeqCst) + 1, SeqCst);
        std::thread::sleep(Duration::from_millis(30));
        let mut n = 0;
        for (at, row) in (0u64..).zip(&self.rows).skip(from as usize).take(count) {
            f(at, row);
            n += 1;
        }
        now.fetch_sub(1, SeqCst);
        Some(n)
    }
    fn fault(&self) -> Option<String> {
        None
    }
}

/// Requests for two rosters waiting at once (the station switched rosters while a cut ran):
/// one cut at a time reads the store — the one running lands, then the other starts — rather
/// than each waiter starting the cut of its roster again every few milliseconds, and every
/// request gets its index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_two_rosters_at_once_cut_one_at_a_time_and_all_get_their_index() {
    use crate::roster_serve::ServeCache;
    use kazashi_sync::roster_transfer::encode_entry;
    let reading = Arc::new(Default::default());
    let slow = |r: &Roster| -> Arc<Roster> {
        let rows = r
            .entries()
            .iter()
            .map(|e| encode_entry(e, Vec::new()))
            .collect();
        let store = SlowStore {
            hash: r.hash(),
            rows,
            reading: Arc::clone(&reading),
        };
        Arc::new(Roster::from_store(Arc::new(store)))
    };
    let (one, two) = (big_roster(9_000), big_roster(10_000));
    let rosters = [(one.hash(), slow(&one)), (two.hash(), slow(&two))];
    let cache = ServeCache::default();
    let mut waiting = Vec::new();
    for k in 0..8 {
        let (hash, roster) = rosters[k % 2].clone();
        let cache = cache.clone();
        waiting.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5 * k as u64)).await;
            let served = cache.served(hash, &roster).await;
            served.map(|s| s.hash)
        }));
    }
    for (k, w) in waiting.into_iter().enumerate() {
        let got = tokio::time::timeout(Duration::from_secs(60), w)
            .await
            .expect("a request still waits for its index")
            .unwrap();
        assert_eq!(got, Some(rosters[k % 2].0), "request {k}");
    }
    let most = reading.1.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(most, 1, "{most} cuts read the store at once");
}
