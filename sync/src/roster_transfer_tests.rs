//! The roster transfer's machines, with no I/O: any order, duplicates, a corrupt chunk, a
//! wrong final hash, a resume with half the chunks stored, and hostile bytes.

use super::*;
use kazashi_domain::CivilDate;
use kazashi_domain::ids::{HouseholdId, PersonId};
use kazashi_domain::roster::{Roster, Sex};
use kazashi_domain::text::{Address, KanaReading, PersonName};
use proptest::prelude::*;

fn roster(n: usize, salt: &str) -> Roster {
    let entries = (0..n)
        .map(|i| RosterEntry {
            person: PersonId::new(&format!("P{i:07}")).unwrap(),
            household: HouseholdId::new(&format!("H{:07}", i / 3)).unwrap(),
            name: PersonName::new(&format!("髙橋 花子{salt}")).unwrap(),
            kana: KanaReading::new("たかはし はなこ").unwrap(),
            birth_date: CivilDate::new(1950 + (i % 60) as i32, 1 + (i % 12) as u32, 1).unwrap(),
            sex: Sex::Female,
            address: Address::new(&format!("新潟県三条市旭町2丁目{i}番")).unwrap(),
            voter: None,
            care_needs: Default::default(),
            support_measure: false,
        })
        .collect();
    Roster::new(
        RosterKind::Residents,
        entries,
        CivilDate::new(2026, 9, 1).unwrap(),
    )
    .unwrap()
}

/// A roster of several chunks, and its serving side.
fn served(n: usize) -> (Roster, Served) {
    let r = roster(n, "");
    let s = Served::new(r.hash(), r.kind(), r.entries());
    (r, s)
}

/// Everything a requester stored, by hash.
type Disk = std::collections::BTreeMap<[u8; 32], Vec<u8>>;

fn assemble(f: &Fetch, disk: &Disk) -> Result<(RosterKind, Vec<RosterEntry>), TransferError> {
    let index = f.index().unwrap().clone();
    let mut a = Assembler::new(f.pinned(), index.clone());
    for c in &index.chunks {
        a.feed(disk.get(&c.sha256).unwrap())?;
    }
    a.finish()
}

#[test]
fn chunks_are_whole_entries_near_the_target_and_the_index_round_trips() {
    let (r, s) = served(10_000);
    assert!(s.index.chunks.len() >= 3, "{} chunks", s.index.chunks.len());
    assert_eq!(s.index.total, 10_000);
    let mut seen = 0usize;
    for (n, c) in (0u32..).zip(&s.index.chunks) {
        let bytes = s.chunk(n, r.entries()).unwrap();
        assert!(bytes.len() <= MAX_CHUNK);
        if (n as usize) + 1 < s.index.chunks.len() {
            assert!(bytes.len() >= CHUNK_TARGET);
        }
        assert_eq!(<[u8; 32]>::from(Sha256::digest(&bytes)), c.sha256);
        for e in chunk_entries(&bytes) {
            e.unwrap();
            seen += 1;
        }
    }
    assert_eq!(seen, 10_000);
    assert_eq!(RosterIndex::decode(&s.index.encode()).unwrap(), s.index);
    let resp = Response::Index(s.index.clone());
    assert_eq!(Response::decode(&resp.encode()).unwrap(), resp);
    for req in [
        Request::Index { roster: s.hash },
        Request::Chunk {
            roster: s.hash,
            n: 7,
        },
    ] {
        assert_eq!(Request::decode(&req.encode()).unwrap(), req);
    }
}

#[test]
fn another_roster_is_not_held() {
    let (r, s) = served(10);
    let other = RosterHash([9; 32]);
    assert_eq!(
        s.respond(&Request::Index { roster: other }, r.entries()),
        Response::NotHeld
    );
    assert_eq!(
        s.respond(
            &Request::Chunk {
                roster: s.hash,
                n: 99
            },
            r.entries()
        ),
        Response::NotHeld
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    /// Responses in any order, some twice: the roster comes out whole and verified.
    #[test]
    fn chunks_in_any_order_and_duplicated_give_the_roster(seed in any::<u64>()) {
        let (r, s) = served(6000);
        // A small LCG is enough to shuffle.
        let mut state = seed | 1;
        let mut next = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            state >> 33
        };
        let mut f = Fetch::new(r.hash(), []);
        let reqs = f.next_requests(4);
        prop_assert_eq!(reqs.clone(), vec![Request::Index { roster: r.hash() }]);
        let got = f.on_response(&s.respond(&reqs[0], r.entries())).unwrap();
        prop_assert_eq!(got, Got::Index { missing: s.index.chunks.len() });
        let mut disk = Disk::new();
        let mut window = f.next_requests(usize::MAX);
        prop_assert_eq!(window.len(), s.index.chunks.len());
        // Shuffle, and answer some twice.
        for i in (1..window.len()).rev() {
            window.swap(i, (next() as usize) % (i + 1));
        }
        let dup = window[0];
        window.push(dup);
        let mut dups = 0;
        for q in window {
            match f.on_response(&s.respond(&q, r.entries())) {
                Ok(Got::Chunk { n, sha256 }) => {
                    let Request::Chunk { n: m, .. } = q else { unreachable!() };
                    prop_assert_eq!(n, m);
                    disk.insert(sha256, s.chunk(n, r.entries()).unwrap());
                }
                // The second answer to one request was not asked for.
                Err(TransferError::Unasked) => dups += 1,
                other => prop_assert!(false, "{other:?}"),
            }
        }
        prop_assert_eq!(dups, 1);
        prop_assert!(f.is_complete());
        let (kind, entries) = assemble(&f, &disk).unwrap();
        prop_assert_eq!(kind, r.kind());
        prop_assert_eq!(entries.as_slice(), r.entries());
    }

    /// No bytes from a peer panic a decoder.
    #[test]
    fn hostile_bytes_are_refused_not_panicked_on(b in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Request::decode(&b);
        let _ = Response::decode(&b);
        let _ = RosterIndex::decode(&b);
        let _ = chunk_entries(&b).count();
    }
}

#[test]
fn a_chunk_asked_again_elsewhere_after_a_cut_counts_once() {
    let (r, s) = served(3000);
    let mut f = Fetch::new(r.hash(), []);
    let q = f.next_requests(1);
    f.on_response(&s.respond(&q[0], r.entries())).unwrap();
    let q = f.next_requests(1);
    // The connection drops before the answer; on another, its index first, then the chunk.
    f.lost_peer();
    let index = f.next_requests(1);
    assert_eq!(index, vec![Request::Index { roster: r.hash() }]);
    f.on_response(&s.respond(&index[0], r.entries())).unwrap();
    let again = f.next_requests(1);
    assert_eq!(q, again);
    let got = f.on_response(&s.respond(&again[0], r.entries())).unwrap();
    assert!(matches!(got, Got::Chunk { n: 0, .. }));
    assert_eq!(f.received(), 1);
}

#[test]
fn a_corrupt_chunk_is_refused_and_nothing_is_taken() {
    let (r, s) = served(3000);
    let mut f = Fetch::new(r.hash(), []);
    let q = f.next_requests(1);
    f.on_response(&s.respond(&q[0], r.entries())).unwrap();
    let q = f.next_requests(1);
    let Response::Chunk { n, mut bytes } = s.respond(&q[0], r.entries()) else {
        panic!()
    };
    bytes[10] ^= 1;
    assert_eq!(
        f.on_response(&Response::Chunk { n, bytes }),
        Err(TransferError::BadChunk(n))
    );
    assert_eq!(f.progress(), Some((0, s.index.chunks.len())));
    assert_eq!(f.received(), 0);
    // A chunk nobody asked for, or beyond the index, is refused too.
    assert_eq!(
        f.on_response(&Response::Chunk {
            n: 5000,
            bytes: vec![]
        }),
        Err(TransferError::NoSuchChunk(5000))
    );
}

#[test]
fn a_consistent_index_of_another_roster_fails_the_final_hash_check() {
    // A peer that answers for the pinned hash with another roster's index and chunks: every
    // chunk matches the index it sent, and the whole is refused at the end.
    let pinned = roster(3000, "").hash();
    let other = roster(3000, "子");
    let liar = Served::new(pinned, other.kind(), other.entries());
    let mut f = Fetch::new(pinned, []);
    let mut disk = Disk::new();
    loop {
        let reqs = f.next_requests(8);
        if reqs.is_empty() {
            break;
        }
        for q in reqs {
            if let Got::Chunk { n, sha256 } =
                f.on_response(&liar.respond(&q, other.entries())).unwrap()
            {
                disk.insert(sha256, liar.chunk(n, other.entries()).unwrap());
            }
        }
    }
    assert!(f.is_complete());
    match assemble(&f, &disk) {
        Err(TransferError::WrongHash { found, pinned: p }) => {
            assert_eq!(p, pinned.to_hex());
            assert_eq!(found, other.hash().to_hex());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_resume_with_half_the_chunks_stored_asks_for_the_rest_only() {
    let (r, s) = served(12_000);
    let total = s.index.chunks.len();
    assert!(total >= 4);
    let half: Vec<[u8; 32]> = s.index.chunks.iter().step_by(2).map(|c| c.sha256).collect();
    let mut f = Fetch::new(r.hash(), half.clone());
    let q = f.next_requests(1);
    let got = f.on_response(&s.respond(&q[0], r.entries())).unwrap();
    assert_eq!(
        got,
        Got::Index {
            missing: total - half.len()
        }
    );
    let mut disk: Disk = s
        .index
        .chunks
        .iter()
        .zip(0u32..)
        .step_by(2)
        .map(|(c, n)| (c.sha256, s.chunk(n, r.entries()).unwrap()))
        .collect();
    let mut asked = Vec::new();
    loop {
        let reqs = f.next_requests(3);
        if reqs.is_empty() {
            break;
        }
        for q in reqs {
            let Request::Chunk { n, .. } = q else {
                panic!()
            };
            asked.push(n);
            if let Got::Chunk { n, sha256 } = f.on_response(&s.respond(&q, r.entries())).unwrap() {
                disk.insert(sha256, s.chunk(n, r.entries()).unwrap());
            }
        }
    }
    assert_eq!(asked, (1..total as u32).step_by(2).collect::<Vec<_>>());
    assert_eq!(f.received() as usize, total - half.len());
    let (_, entries) = assemble(&f, &disk).unwrap();
    assert_eq!(entries.as_slice(), r.entries());
}

#[test]
fn an_index_whose_counts_do_not_add_up_is_refused() {
    let (_, s) = served(3000);
    let mut bad = s.index.clone();
    bad.total += 1;
    assert!(matches!(
        RosterIndex::decode(&bad.encode()),
        Err(TransferError::BadIndex(_))
    ));
    let mut many = s.index.encode();
    many[9..13].copy_from_slice(&(MAX_CHUNKS as u32 + 1).to_le_bytes());
    assert!(RosterIndex::decode(&many).is_err());
}

#[test]
fn a_cut_from_a_stream_is_the_cut_in_memory_and_the_streamed_assembly_checks_the_pin() {
    let (r, s) = served(10_000);
    // Streamed with other places (a store's rows, say 100 apart): the same index.
    let mut cutter = Cutter::new(r.kind());
    for (i, e) in (0u64..).zip(r.entries()) {
        cutter.push(i * 100, &encode_entry(e, Vec::new()));
    }
    assert_eq!(cutter.count(), 10_000);
    let (streamed, found) = cutter.finish(r.hash());
    assert_eq!(found, r.hash());
    assert_eq!(streamed.index, s.index);
    for n in 0..s.index.chunks.len() as u32 {
        let (start, count) = streamed.place(n).unwrap();
        assert_eq!(start % 100, 0);
        // Chunks read back from those places are the in-memory chunks.
        let resp = streamed.respond_with(
            &Request::Chunk {
                roster: r.hash(),
                n,
            },
            &mut |at, k| {
                assert_eq!((at, k), (start, count));
                s.chunk(n, r.entries())
            },
        );
        assert_eq!(
            resp,
            s.respond(
                &Request::Chunk {
                    roster: r.hash(),
                    n
                },
                r.entries()
            )
        );
    }
    // A chunk read back wrong is not sent.
    let wrong = streamed.respond_with(
        &Request::Chunk {
            roster: r.hash(),
            n: 0,
        },
        &mut |_, _| Some(b"not the chunk".to_vec()),
    );
    assert_eq!(wrong, Response::NotHeld);
    // Streamed assembly: every entry handed over in order, the pin checked at the end.
    let mut a = Assembler::new(r.hash(), s.index.clone());
    let mut got = Vec::new();
    for n in 0..s.index.chunks.len() as u32 {
        let c = s.chunk(n, r.entries()).unwrap();
        a.feed_with(&c, &mut |bytes, e| {
            assert_eq!(bytes, encode_entry(&e, Vec::new()).as_slice());
            got.push(e);
        })
        .unwrap();
    }
    assert_eq!(a.check().unwrap(), r.kind());
    assert_eq!(got, r.entries());
    let mut liar = Assembler::new(RosterHash([1; 32]), s.index.clone());
    for n in 0..s.index.chunks.len() as u32 {
        liar.feed_with(&s.chunk(n, r.entries()).unwrap(), &mut |_, _| {})
            .unwrap();
    }
    assert!(matches!(liar.check(), Err(TransferError::WrongHash { .. })));
}
