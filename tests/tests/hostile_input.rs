//! Sync input is bounded: a node process under a 1 GiB address-space limit
//! (`prlimit --as`) survives a DEFLATE-bomb sync message (1.5 GiB once inflated) and a catalog
//! naming a million shards from a hostile peer, keeps at most 1 MiB of each refusal, and then
//! converges with its honest peers (`src/bin/hostile_ingest.rs`). A control run allocating
//! 1.5 GiB under the same limit must fail, so the limit is known to bite.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use kazashi_tests::card_rig::skip;
use std::process::{Command, Output};

const LIMIT: u64 = 1 << 30;

fn under_limit(args: &[&str]) -> Option<Output> {
    let bin = env!("CARGO_BIN_EXE_hostile_ingest");
    let out = Command::new("prlimit")
        .arg(format!("--as={LIMIT}"))
        .arg("--")
        .arg(bin)
        .args(args)
        .output()
        .ok()?;
    Some(out)
}

/// The JSON lines the binary printed.
fn lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(str::to_owned)
        .collect()
}

/// A field of a flat JSON line, as written (`"k":v`): the text of `v`.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = line.get(at..)?;
    let end = if rest.starts_with('[') {
        rest.find(']')? + 1
    } else {
        rest.find([',', '}'])?
    };
    rest.get(..end)
}

fn num(line: &str, key: &str) -> u64 {
    field(line, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX)
}

#[test]
fn a_node_under_1_gib_survives_a_deflate_bomb_and_a_million_shard_catalog_then_converges() {
    let Some(control) = under_limit(&["--control"]) else {
        skip("prlimit is not available: the 1 GiB memory-limit test did not run");
        return;
    };
    if control.status.success() {
        skip("prlimit --as does not limit this process (1.5 GiB allocated under 1 GiB)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = under_limit(&[dir.path().to_str().unwrap()]).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    for l in lines(&out) {
        println!("{l}");
    }
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    let got = lines(&out);
    let find = |a: &str| {
        got.iter()
            .find(|l| field(l, "attack") == Some(&format!("\"{a}\"")))
            .cloned()
            .unwrap_or_else(|| panic!("no {a} line in {got:?}"))
    };
    let bomb = find("deflate-bomb");
    assert_eq!(num(&bomb, "refused"), 1, "{bomb}");
    assert!(num(&bomb, "frame_bytes") < 16 << 20, "{bomb}");
    let catalog = find("million-shard-catalog");
    assert_eq!(num(&catalog, "shards"), 1_000_000, "{catalog}");
    assert_eq!(num(&catalog, "refused"), 1, "{catalog}");
    assert!(num(&find("quarantine"), "largest_bytes") <= 1 << 20);
    let c = find("converge");
    assert_eq!(field(&c, "same_digest"), Some("true"), "{c}");
    assert_eq!(num(&c, "refused"), 0, "{c}");
    for l in &got {
        assert!(num(l, "peak_rss_kib") < LIMIT / 1024, "{l}");
    }
}

/// The quarantine keeps at most 1 MiB of a refusal and 32 MiB in all: the oldest refusals go
/// first, counted, and what is kept survives a reopen.
#[test]
fn the_quarantine_is_capped_per_refusal_and_in_all_oldest_first() {
    use kazashi_node::store::{KdfParams, QUARANTINE_ITEM_MAX, QUARANTINE_TOTAL_MAX, Quarantined};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let store = kazashi_node::Store::create(&path, "pass", KdfParams::FAST_INSECURE).unwrap();
    let n = 40u64;
    for i in 0..n {
        store
            .quarantine(&Quarantined {
                received_ms: i,
                source: "peer".into(),
                code: "refused-change".into(),
                reason: format!("refusal {i}"),
                bytes: vec![i as u8; QUARANTINE_ITEM_MAX + 5000],
            })
            .unwrap();
    }
    let q = store.quarantined().unwrap();
    let total: u64 = q.iter().map(|x| x.bytes.len() as u64).sum();
    assert!(total <= QUARANTINE_TOTAL_MAX, "{total}");
    assert!(q.iter().all(|x| x.bytes.len() == QUARANTINE_ITEM_MAX));
    assert!(
        q[0].reason
            .contains(&format!("of {} bytes kept", QUARANTINE_ITEM_MAX + 5000))
    );
    // The newest are kept, in order; the rest were dropped and counted.
    let kept = q.len() as u64;
    assert_eq!(q.last().unwrap().received_ms, n - 1);
    assert_eq!(q[0].received_ms, n - kept);
    assert_eq!(store.quarantine_dropped().unwrap(), n - kept);
    drop(store);
    let store = kazashi_node::Store::open(&path, "pass").unwrap();
    assert_eq!(store.quarantined().unwrap().len() as u64, kept);
    assert_eq!(store.quarantine_dropped().unwrap(), n - kept);
}

#[test]
fn many_tiny_refusals_are_capped_by_count_and_the_running_size_survives_a_reopen() {
    use kazashi_node::store::{KdfParams, QUARANTINE_ROWS_MAX, Quarantined};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let store = kazashi_node::Store::create(&path, "pass", KdfParams::FAST_INSECURE).unwrap();
    let junk = |i: u64| Quarantined {
        received_ms: i,
        source: "peer".into(),
        code: "malformed-message".into(),
        reason: "junk".into(),
        bytes: vec![0xEE; 16],
    };
    let n = QUARANTINE_ROWS_MAX + 25;
    for i in 0..n {
        store.quarantine(&junk(i)).unwrap();
    }
    let q = store.quarantined().unwrap();
    assert_eq!(q.len() as u64, QUARANTINE_ROWS_MAX);
    assert_eq!(q[0].received_ms, 25, "the oldest went first");
    assert_eq!(store.quarantine_dropped().unwrap(), 25);
    drop(store);
    // The running size is kept with the rows: after a reopen one more refusal drops exactly one.
    let store = kazashi_node::Store::open(&path, "pass").unwrap();
    store.quarantine(&junk(n)).unwrap();
    let q = store.quarantined().unwrap();
    assert_eq!(q.len() as u64, QUARANTINE_ROWS_MAX);
    assert_eq!(q.last().unwrap().received_ms, n);
    assert_eq!(store.quarantine_dropped().unwrap(), 26);
}
