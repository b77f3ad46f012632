//! Fuzzing of every parser that takes outside bytes (issue 25, requirement 4): each target is
//! a `#[test]` here, run by `cargo test --workspace` (and so by `.ci/run`) for
//! `KAZASHI_FUZZ_CASES` cases (100,000 when unset), after replaying its committed corpus
//! (`fuzz/corpus/<target>/`: real encodings, the coverage-guided fuzzer's minimised corpus
//! and every input that once crashed a parser). The coverage-guided targets themselves
//! (libFuzzer) are the `fuzz/` crate, run by `script/fuzz`. The driver, its mutations and its
//! structure-aware generators are in `fuzz_support/`; the seed corpora, made from real
//! encodings, are committed under `fuzz/corpus/<target>/` (rewrite them with
//! `KAZASHI_FUZZ_WRITE_CORPUS=1`). See docs/security.md, "Fuzzing".
//!
//! Properties: nothing panics; no allocation passes the binary's ceiling
//! ([`ALLOC`], 1 GiB for all the targets at once); what decodes re-decodes the same from its
//! re-encoding; where the format is canonical (the greeting, envelopes, events, signed
//! manifests, roster-transfer requests), the count of inputs taken although they are not the
//! canonical encoding is printed (and asserted zero where the format promises it).
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod fuzz_support;

use arbitrary::Unstructured;
use cap::Cap;
use fuzz_support::{Verdict, bytes_field, raw, run, seeds, varint};
use kazashi_domain::event::Event;
use kazashi_domain::ids::{OperatorId, SiteId};
use kazashi_domain::{CivilDate, Roster, RosterKind};
use kazashi_node::card::session::{CardSession, PinFor, Transport};
use kazashi_node::card::{AuthCert, tlv};
use kazashi_node::link::{
    FRAME_HELLO, FRAME_MANIFEST, FRAME_SYNC, Hello, LinkConfig, Role, SyncLink,
};
use kazashi_node::roster_csv::{Mapping, ReadOptions, WriteEncoding, encode, read, write};
use kazashi_node::store::KdfParams;
use kazashi_node::{BundleScope, ManualClock, Node, Peer};
use kazashi_sim::card::{CardSpec, Holder, VirtualCard};
use kazashi_sim::fleet::Fleet;
use kazashi_sim::workload::START_MS;
use kazashi_sync::protocol::Message;
use kazashi_sync::roster_transfer::{self as rt, Assembler, ChunkRef, RosterIndex, Served};
use kazashi_sync::{DeviceKey, Membership, SignedManifest, bundle, open, seal};
use sha2::{Digest, Sha256};
use std::alloc::System;
use std::sync::{Arc, OnceLock};

/// Every allocation of this test binary counts against one ceiling.
#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, 1 << 30);

/// The town, its fleet, two laptops' stores and the real encodings the seeds come from.
struct World {
    roster: Arc<Roster>,
    fleet: Fleet,
    members: Membership,
    sites: Vec<SiteId>,
    hello: Vec<u8>,
    sync: Vec<Vec<u8>>,
    envelopes: Vec<Vec<u8>>,
    events: Vec<Vec<u8>>,
    bundle: Vec<u8>,
    keys: Vec<DeviceKey>,
}

/// A folder for the targets' stores: in memory where the machine has one (`/dev/shm`), since
/// refusals are quarantined in the store and each costs an fsync on a disk.
fn fast_dir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap()
}

fn key(fleet: &Fleet, n: usize) -> DeviceKey {
    DeviceKey::from_seed(fleet.stations[n].1.secret_bytes())
}

fn new_node(w: &World, dir: &std::path::Path, n: usize) -> Node<ManualClock> {
    Node::create(
        &dir.join(format!("n{n}.db")),
        "correct horse",
        KdfParams::FAST_INSECURE,
        key(&w.fleet, n),
        &w.fleet.manifest,
        w.roster.clone(),
        w.fleet.stations[n].0,
        ManualClock::new(START_MS),
    )
    .unwrap()
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let (roster, fleet) = kazashi_tests::town().unwrap();
        let members = SignedManifest::decode(&fleet.manifest).unwrap();
        let mut w = World {
            roster: Arc::new(roster),
            members,
            sites: fleet.stations.iter().map(|(s, _)| *s).collect(),
            keys: (0..fleet.stations.len()).map(|n| key(&fleet, n)).collect(),
            fleet,
            hello: Vec::new(),
            sync: Vec::new(),
            envelopes: Vec::new(),
            events: Vec::new(),
            bundle: Vec::new(),
        };
        let dir = fast_dir();
        let mut a = new_node(&w, dir.path(), shelter(&w, 0));
        let mut b = new_node(&w, dir.path(), shelter(&w, 1));
        let op = OperatorId::new("staff01").unwrap();
        let dep = w.members.deployment().id();
        for i in 0..12 {
            let body = kazashi_tests::check_in(&w.roster, i).unwrap();
            let ev = a.record(op, body).unwrap();
            w.events.push(ev.encode().unwrap());
            w.envelopes
                .push(seal(&ev, dep, &w.keys[shelter(&w, 0)]).unwrap());
        }
        w.hello = Hello::of(&a).encode();
        // A real exchange, both ways, until it settles.
        let (mut pa, mut pb) = (Peer::new("b"), Peer::new("a"));
        let mut to_b = vec![a.sync_start(&mut pa)];
        let mut to_a = vec![b.sync_start(&mut pb)];
        for _ in 0..8 {
            let mut next_b = Vec::new();
            for m in to_b.drain(..) {
                w.sync.push(m.clone());
                next_b.extend(b.sync_handle(&mut pb, &m).unwrap().replies);
            }
            let mut next_a = Vec::new();
            for m in to_a.drain(..) {
                w.sync.push(m.clone());
                next_a.extend(a.sync_handle(&mut pa, &m).unwrap().replies);
            }
            to_a = next_b;
            to_b = next_a;
        }
        w.bundle = a.export_bundle(BundleScope::All).unwrap();
        w
    })
}

/// The `n`-th laptop at a shelter (not the command center).
fn shelter(w: &World, n: usize) -> usize {
    let shelters: Vec<usize> = (0..w.sites.len())
        .filter(|&i| w.sites[i].as_str() != "HQ")
        .collect();
    shelters[n % shelters.len()]
}

fn taken(canonical: bool) -> Verdict {
    Verdict::Taken {
        canonical: Some(canonical),
    }
}

fn taken_any() -> Verdict {
    Verdict::Taken { canonical: None }
}

// ---------------------------------------------------------------------------------------------
// The greeting and sync frames

#[test]
fn fuzz_hello() {
    let w = world();
    let s = seeds("hello", vec![w.hello.clone()]);
    let gen_hello = |u: &mut Unstructured<'_>| {
        let mut out = Vec::new();
        varint(&mut out, u.arbitrary::<u32>().unwrap_or(1).into());
        out.extend((0..16).map(|_| u.arbitrary::<u8>().unwrap_or(0)));
        varint(&mut out, u.arbitrary::<u64>().unwrap_or(0));
        out
    };
    let stats = run("hello", &s, &gen_hello, &mut |b| match Hello::decode(b) {
        Some(h) => taken(h.encode() == b),
        None => Verdict::Refused,
    });
    assert!(stats.taken > 0);
}

/// A sequence of frames (kind, u16 length, body) fed to an accepting [`SyncLink`] on a real
/// node: the greeting's checks, manifest frames and sync messages, in any order.
#[test]
fn fuzz_link_frames() {
    let w = world();
    let mut dir = fast_dir();
    let mut node = new_node(w, dir.path(), shelter(w, 2));
    let mut cases = 0u32;
    let frame = |out: &mut Vec<u8>, kind: u8, body: &[u8]| {
        out.push(kind);
        out.extend_from_slice(&u16::try_from(body.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(body);
    };
    let mut fresh = Vec::new();
    let mut greeted = Vec::new();
    frame(&mut greeted, FRAME_HELLO, &w.hello);
    fresh.push(greeted.clone());
    for m in w.sync.iter().filter(|m| m.len() < 60_000) {
        let mut f = greeted.clone();
        frame(&mut f, FRAME_SYNC, m);
        fresh.push(f);
    }
    let mut f = greeted.clone();
    frame(&mut f, FRAME_MANIFEST, &w.fleet.manifest);
    fresh.push(f);
    let s = seeds("link_frames", fresh);
    let remote = w.keys[shelter(w, 0)].device_id();
    let hello = Hello::of(&node);
    let mut now = 0u64;
    let stats = run("link_frames", &s, &raw, &mut |b| {
        // A fresh store every 10 000 cases: each refusal is quarantined, and a long run's
        // quarantine makes the later cases slower.
        cases += 1;
        if cases.is_multiple_of(10_000) {
            dir = fast_dir();
            node = new_node(w, dir.path(), shelter(w, 2));
        }
        let (mut link, _) =
            SyncLink::open(hello, Role::Accepted, remote, LinkConfig::default(), now);
        let mut rest = b;
        while let [kind, h, l, tail @ ..] = rest {
            let len = usize::from(u16::from_be_bytes([*h, *l])).min(tail.len());
            let (body, more) = tail.split_at(len);
            if body.len() > link.max_frame() {
                break;
            }
            now += 1;
            link.frame(&mut node, *kind, body, now);
            rest = more;
        }
        let live = link.is_live();
        // The timers too: the greeting's deadline, pings, a silent peer lost.
        now += 20_000;
        link.tick(&mut node, now);
        if live { taken_any() } else { Verdict::Refused }
    });
    assert!(stats.taken > 0, "no case got past the greeting");
}

fn gen_message(u: &mut Unstructured<'_>) -> Vec<u8> {
    let w = world();
    let mut out = Vec::new();
    let site = w.sites[u.choose_index(w.sites.len()).unwrap_or(0)]
        .as_str()
        .to_owned();
    let shard = |u: &mut Unstructured<'_>, out: &mut Vec<u8>| {
        let site = if u.ratio(1, 6).unwrap_or(false) {
            u.arbitrary::<String>().unwrap_or_default()
        } else {
            site.clone()
        };
        bytes_field(u, out, site.as_bytes());
        // The year zig-zag encoded, month and day bytes.
        let y: i64 = u.int_in_range(-3..=4000).unwrap_or(2026);
        varint(out, ((y << 1) ^ (y >> 63)) as u64);
        out.push(u.int_in_range(0..=13u8).unwrap_or(9));
        out.push(u.int_in_range(0..=32u8).unwrap_or(1));
    };
    let kind = u.int_in_range(0..=3u8).unwrap_or(0);
    if kind == 2 {
        // A reconciliation: ranges with optional bounds, fingerprints or lists, and wants.
        varint(&mut out, 2);
        let ranges = u.int_in_range(0..=8u64).unwrap_or(1);
        varint(&mut out, ranges);
        for _ in 0..ranges {
            for _ in 0..2 {
                if u.arbitrary().unwrap_or(false) {
                    out.push(1);
                    shard(u, &mut out);
                } else {
                    out.push(0);
                }
            }
            if u.arbitrary().unwrap_or(false) {
                varint(&mut out, 0);
                out.extend((0..16).map(|_| u.arbitrary::<u8>().unwrap_or(0)));
            } else {
                varint(&mut out, 1);
                let n = u.int_in_range(0..=6u64).unwrap_or(1);
                varint(&mut out, n);
                for _ in 0..n {
                    shard(u, &mut out);
                    out.extend((0..32).map(|_| u.arbitrary::<u8>().unwrap_or(0)));
                }
            }
        }
        let wants = u.int_in_range(0..=4u64).unwrap_or(0);
        varint(&mut out, wants);
        for _ in 0..wants {
            shard(u, &mut out);
        }
        return out;
    }
    if kind == 3 {
        // A whole shard: its (arbitrary) saved document.
        varint(&mut out, 3);
        shard(u, &mut out);
        let body: Vec<u8> = u.arbitrary().unwrap_or_default();
        bytes_field(u, &mut out, &body);
        return out;
    }
    if kind == 0 {
        varint(&mut out, 0);
        let n = u.int_in_range(0..=20u64).unwrap_or(1);
        varint(
            &mut out,
            if u.ratio(1, 10).unwrap_or(false) {
                u64::MAX >> 1
            } else {
                n
            },
        );
        for _ in 0..n {
            shard(u, &mut out);
            out.extend((0..32).map(|_| u.arbitrary::<u8>().unwrap_or(0)));
        }
    } else {
        varint(&mut out, 1);
        shard(u, &mut out);
        let body: Vec<u8> = u.arbitrary().unwrap_or_default();
        bytes_field(u, &mut out, &body);
    }
    out
}

#[test]
fn fuzz_sync_message() {
    let w = world();
    let s = seeds("sync_message", w.sync.clone());
    let stats = run("sync_message", &s, &gen_message, &mut |b| {
        // The bounded decoding (what a node uses) refuses, or decodes what the plain one does.
        if let Ok(m) = Message::decode_bounded(b, 64) {
            assert_eq!(Message::decode(b).ok(), Some(m));
        }
        match Message::decode(b) {
            Ok(m) => {
                let again = m.encode();
                let back = Message::decode(&again).unwrap();
                assert_eq!(back, m, "re-encoding decodes alike");
                taken(again == b)
            }
            Err(_) => Verdict::Refused,
        }
    });
    assert!(stats.taken > 0);
}

/// Sync messages handled by a real node (Automerge's sync messages, envelopes, the store).
#[test]
fn fuzz_sync_ingest() {
    let w = world();
    let mut dir = fast_dir();
    let mut node = new_node(w, dir.path(), shelter(w, 2));
    // The sync messages' seeds, and the coverage-guided fuzzer's corpus for this target.
    let mut s = seeds("sync_message", w.sync.clone());
    for x in seeds("sync_ingest", Vec::new()) {
        if !s.contains(&x) {
            s.push(x);
        }
    }
    let mut cases = 0u32;
    let stats = run("sync_ingest", &s, &gen_message, &mut |b| {
        // A fresh store every 10 000 cases (see `fuzz_link_frames`).
        cases += 1;
        if cases.is_multiple_of(10_000) {
            dir = fast_dir();
            node = new_node(w, dir.path(), shelter(w, 2));
        }
        let mut peer = Peer::new("fuzz");
        match node.sync_handle(&mut peer, b) {
            Ok(step) if step.refused == 0 => taken_any(),
            _ => Verdict::Refused,
        }
    });
    assert!(stats.taken > 0);
}

// ---------------------------------------------------------------------------------------------
// Envelopes, events, manifests, bundles

#[test]
fn fuzz_envelope() {
    let w = world();
    let s = seeds("envelope", w.envelopes.clone());
    let dep = w.members.deployment().id();
    let stats = run("envelope", &s, &raw, &mut |b| match open(b, &w.members) {
        Ok(ev) => {
            // Signatures are deterministic: the canonical envelope is the one its author seals.
            let author = w.keys.iter().find(|k| k.device_id() == ev.device());
            let canonical = author.map(|k| seal(&ev, dep, k).unwrap() == b);
            Verdict::Taken { canonical }
        }
        Err(_) => Verdict::Refused,
    });
    assert!(stats.taken > 0);
    assert_eq!(
        stats.non_canonical, 0,
        "an envelope was taken that its author would not seal so"
    );
}

#[test]
fn fuzz_event() {
    let w = world();
    let s = seeds("event", w.events.clone());
    let stats = run("event", &s, &raw, &mut |b| match Event::decode(b) {
        Ok(ev) => {
            let again = ev.encode().unwrap();
            let back = Event::decode(&again).unwrap();
            assert_eq!(back.id(), ev.id(), "the re-encoding has the same id");
            taken(again == b)
        }
        Err(_) => Verdict::Refused,
    });
    assert!(stats.taken > 0);
    assert_eq!(
        stats.non_canonical, 0,
        "an event was taken whose bytes are not its encoding"
    );
}

#[test]
fn fuzz_manifest() {
    let w = world();
    let s = seeds("manifest", vec![w.fleet.manifest.clone()]);
    let stats = run(
        "manifest",
        &s,
        &raw,
        &mut |b| match SignedManifest::decode(b) {
            Ok(m) => taken(m.signed().encode() == b),
            Err(_) => Verdict::Refused,
        },
    );
    assert!(stats.taken > 0);
}

/// A sealed note's bytes (issue 24): decoding checks every bound and reads every byte; a note
/// opens only to the text it was sealed with (a flipped byte in another purpose's wrap may
/// leave it readable with this one, never with other text).
#[test]
fn fuzz_sealed_note() {
    use kazashi_domain::sealed_note::NoteKind;
    use kazashi_sync::KeyPurpose;
    use kazashi_sync::sealed;
    const TEXT: &str = "問診票: 血圧の薬を持参 (fuzz seed)";
    let w = world();
    let me = &w.keys[shelter(w, 0)];
    let secret = w.members.unseal(KeyPurpose::Medical, me).unwrap();
    let note = sealed::seal(TEXT, NoteKind::Medical, b"person", &w.members, &[7; 64]).unwrap();
    let dv = sealed::seal("DV", NoteKind::Protection, b"person", &w.members, &[8; 64]).unwrap();
    let s = seeds(
        "sealed_note",
        vec![note.as_bytes().to_vec(), dv.as_bytes().to_vec()],
    );
    let stats = run("sealed_note", &s, &raw, &mut |b| {
        let parsed = sealed::sealed_to(b);
        match sealed::open(
            b,
            NoteKind::Medical,
            b"person",
            KeyPurpose::Medical,
            &secret,
        ) {
            Ok(text) => {
                assert!(parsed.is_ok(), "opened bytes that do not decode");
                assert_eq!(text.as_str(), TEXT, "a note opened to another text");
                taken(b == note.as_bytes())
            }
            Err(_) if parsed.is_ok() => taken_any(),
            Err(_) => Verdict::Refused,
        }
    });
    assert!(stats.taken > 0);
}

/// A member's bundle around hostile shards (the libFuzzer target `bundle_import`, whose
/// corpus this replays, then 2,000 mutations of it: each case seals, signs and imports a
/// bundle into a real store, so the full count would take minutes). Input: records of a site
/// index, a date (u16 LE year, month, day), a u32 LE length and Automerge bytes.
#[test]
fn fuzz_bundle_import() {
    use kazashi_domain::CivilDate;
    use kazashi_sync::ShardId;
    let w = world();
    let mut dir = fast_dir();
    let mut node = new_node(w, dir.path(), shelter(w, 1));
    let author = &w.keys[shelter(w, 0)];
    let s = seeds("bundle_import", Vec::new());
    let mut cases = 0u32;
    let mut check = |b: &[u8]| {
        cases += 1;
        if cases.is_multiple_of(1_000) {
            dir = fast_dir();
            node = new_node(w, dir.path(), shelter(w, 1));
        }
        let mut shards = Vec::new();
        let mut rest = b;
        while let [site, y0, y1, m, d, l0, l1, l2, l3, tail @ ..] = rest {
            let len = (u32::from_le_bytes([*l0, *l1, *l2, *l3]) as usize).min(tail.len());
            let (bytes, more) = tail.split_at(len);
            rest = more;
            let site = w.sites[usize::from(*site) % w.sites.len()];
            let year = i32::from(u16::from_le_bytes([*y0, *y1]));
            if let Ok(day) = CivilDate::new(year, u32::from(*m), u32::from(*d)) {
                shards.push((ShardId { site, day }, bytes.to_vec()));
            }
        }
        let body = bundle::BundleBody {
            deployment: w.members.deployment().id(),
            author: author.device_id(),
            id: Sha256::digest(b)[..16].try_into().unwrap(),
            created_ms: START_MS,
            snapshot: false,
            catalog: Vec::new(),
            shards,
            manifest: None,
        };
        let file = bundle::write(&body, author, &w.members, [7; 64]).unwrap();
        match node.import_bundle(&file, "fuzz") {
            Ok(r) if r.refused_shards == 0 => taken_any(),
            Ok(_) => Verdict::Refused,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                Verdict::Refused
            }
        }
    };
    let runs = fuzz_support::cases().min(2_000);
    let stats = fuzz_support::run_n("bundle_import", &s, &raw, &mut check, runs);
    assert!(stats.taken > 0, "the real bundle's shards were not taken");
}

#[test]
fn fuzz_bundle() {
    let w = world();
    let s = seeds("bundle", vec![w.bundle.clone()]);
    let me = &w.keys[shelter(w, 1)];
    let stats = run(
        "bundle",
        &s,
        &raw,
        &mut |b| match bundle::read(b, &w.members, me) {
            Ok(_) => taken_any(),
            Err(e) => {
                assert!(!e.to_string().is_empty());
                Verdict::Refused
            }
        },
    );
    assert!(stats.taken > 0);
}

// ---------------------------------------------------------------------------------------------
// Roster CSV (UTF-8 and CP932)

fn roster_csv(enc: WriteEncoding) -> Vec<Vec<u8>> {
    let w = world();
    let text = write(&w.roster);
    // The header and a few rows, and twenty: small seeds mutate faster.
    let lines: Vec<&str> = text.lines().collect();
    let rows = |n: usize| {
        encode(
            &format!("{}\n", lines[..lines.len().min(n)].join("\n")),
            enc,
        )
        .0
    };
    vec![rows(6), rows(21)]
}

fn gen_csv(u: &mut Unstructured<'_>, cp932: bool) -> Vec<u8> {
    let w = world();
    let text = write(&w.roster);
    let header = text.lines().next().unwrap_or_default().to_owned();
    let pieces = [
        ",",
        "\"",
        "\"\"",
        "\n",
        "\r\n",
        "髙橋",
        "ｶﾅ",
        "令和6年1月1日",
        "1980-02-29",
        "S55.2.29",
        "2",
        "9",
        "〒100-0001",
        "－",
        "〜",
        "①",
        "\u{FEFF}",
        "🏠",
        "",
    ];
    let mut out = header;
    out.push('\n');
    let rows = u.int_in_range(0..=8usize).unwrap_or(1);
    for _ in 0..rows {
        let cells = u.int_in_range(0..=14usize).unwrap_or(10);
        for c in 0..cells {
            if c > 0 {
                out.push(',');
            }
            for _ in 0..u.int_in_range(0..=3usize).unwrap_or(1) {
                out.push_str(pieces[u.choose_index(pieces.len()).unwrap_or(0)]);
            }
        }
        out.push('\n');
    }
    if cp932 {
        encode(&out, WriteEncoding::Cp932).0
    } else {
        out.into_bytes()
    }
}

fn fuzz_csv(target: &str, enc: WriteEncoding, cp932: bool) {
    let s = seeds(target, roster_csv(enc));
    let opts = ReadOptions {
        kind: RosterKind::Residents,
        mapping: Mapping::default(),
        today: CivilDate::new(2026, 9, 1).unwrap(),
        encoding: None,
    };
    let gen_csv = move |u: &mut Unstructured<'_>| gen_csv(u, cp932);
    let stats = run(
        target,
        &s,
        &gen_csv,
        &mut |b| match read(b, &opts, &mut |_, _| {}) {
            Ok(imp) => {
                // What was taken writes back as a roster that reads the same, unless the writer
                // had to replace a glyph the encoding lacks (CP932 has no 🏠; user-defined 外字
                // come in as private-use characters), which it reports.
                let roster = Roster::new(imp.kind, imp.entries.clone(), opts.today).unwrap();
                let (again, rep) = encode(&write(&roster), enc);
                let back = read(&again, &opts, &mut |_, _| {}).unwrap();
                if rep.replaced_cells == 0 {
                    assert_eq!(back.entries, imp.entries);
                }
                taken(rep.replaced_cells == 0)
            }
            Err(lint) => {
                assert!(!lint.findings.is_empty(), "a refusal says why");
                Verdict::Refused
            }
        },
    );
    assert!(stats.taken > 0);
}

#[test]
fn fuzz_roster_csv_utf8() {
    fuzz_csv("roster_csv_utf8", WriteEncoding::Utf8Bom, false);
}

#[test]
fn fuzz_roster_csv_cp932() {
    fuzz_csv("roster_csv_cp932", WriteEncoding::Cp932, true);
}

// ---------------------------------------------------------------------------------------------
// Card responses

/// Answers from a script (each a u16 length and the raw answer with its status word).
struct Script<'a>(&'a [u8]);

impl Transport for Script<'_> {
    fn transmit(&mut self, _apdu: &[u8]) -> Result<Vec<u8>, kazashi_node::card::CardError> {
        match self.0 {
            [h, l, rest @ ..] => {
                let len = usize::from(u16::from_be_bytes([*h, *l])).min(rest.len());
                let (answer, more) = rest.split_at(len);
                self.0 = more;
                Ok(answer.to_vec())
            }
            _ => Err(kazashi_node::card::CardError::Reader("no card".into())),
        }
    }
}

/// A virtual card's answers, recorded.
struct Recorder {
    card: VirtualCard,
    script: Vec<u8>,
}

impl Transport for Recorder {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, kazashi_node::card::CardError> {
        let a = self.card.transmit(apdu)?;
        self.script
            .extend_from_slice(&u16::try_from(a.len()).unwrap().to_be_bytes());
        self.script.extend_from_slice(&a);
        Ok(a)
    }
}

fn card_walk<T: Transport>(session: &mut CardSession<T>) -> usize {
    let mut ok = 0;
    ok += usize::from(session.read_auth_cert().is_ok());
    ok += usize::from(session.pin_tries(PinFor::Text).is_ok());
    let pin = kazashi_node::card::Pin::new("1234").unwrap();
    ok += usize::from(session.verify_pin(PinFor::Text, &pin).is_ok());
    ok += usize::from(session.read_basic_four().is_ok());
    ok += usize::from(session.verify_pin(PinFor::Jpki, &pin).is_ok());
    ok += usize::from(session.sign(b"challenge").is_ok());
    ok
}

fn holder() -> Holder {
    Holder {
        name: "髙橋 花子".into(),
        address: "かざし市中央一丁目2番3号".into(),
        birth: "19800229".into(),
        sex: "2".into(),
    }
}

#[test]
fn fuzz_card_session() {
    let mut fresh = Vec::new();
    for fixture in 0..2 {
        let mut rec = Recorder {
            card: VirtualCard::new(CardSpec::new(fixture, holder())),
            script: Vec::new(),
        };
        let mut s = CardSession::new(&mut rec);
        assert_eq!(
            card_walk(&mut s),
            6,
            "the virtual card answers the whole walk"
        );
        drop(s);
        fresh.push(rec.script);
    }
    let s = seeds("card_session", fresh);
    let stats = run("card_session", &s, &raw, &mut |b| {
        let mut session = CardSession::new(Script(b));
        if card_walk(&mut session) == 6 {
            taken_any()
        } else {
            Verdict::Refused
        }
    });
    assert!(stats.taken > 0);
}

#[test]
fn fuzz_card_cert() {
    let fresh = (0..2)
        .map(|f| CardSpec::new(f, holder()).certificate().to_vec())
        .collect();
    let s = seeds("card_cert", fresh);
    let dep = world().members.deployment().id();
    let stats = run("card_cert", &s, &raw, &mut |b| match AuthCert::parse(b) {
        Ok(c) => {
            let _ = c.card_key(&dep);
            let _ = c.not_after();
            let _ = c.verifies(b"digest", b"signature");
            taken_any()
        }
        Err(_) => Verdict::Refused,
    });
    assert!(stats.taken > 0);
}

fn gen_tlv(u: &mut Unstructured<'_>) -> Vec<u8> {
    fn item(u: &mut Unstructured<'_>, depth: u8, out: &mut Vec<u8>) {
        let tags: [&[u8]; 6] = [
            &[0xFF, 0x20],
            &[0xDF, 0x21],
            &[0xDF, 0x22],
            &[0xDF, 0x23],
            &[0xDF, 0x24],
            &[0xDF, 0x25],
        ];
        out.extend_from_slice(tags[u.choose_index(tags.len()).unwrap_or(0)]);
        let mut body = Vec::new();
        if depth < 2 && u.ratio(1, 3).unwrap_or(false) {
            for _ in 0..u.int_in_range(0..=5u8).unwrap_or(1) {
                item(u, depth + 1, &mut body);
            }
        } else {
            body = u.arbitrary().unwrap_or_default();
        }
        let len = if u.ratio(1, 8).unwrap_or(false) {
            u.arbitrary::<u32>().unwrap_or(0) as usize
        } else {
            body.len()
        };
        match u.choose_index(4).unwrap_or(0) {
            0 if len < 0x80 => out.push(len as u8),
            1 if len < 0x100 => out.extend_from_slice(&[0x81, len as u8]),
            2 if len < 0x10000 => {
                out.push(0x82);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(0x84);
                out.extend_from_slice(&(len as u32).to_be_bytes());
            }
        }
        out.extend_from_slice(&body);
    }
    let mut out = Vec::new();
    item(u, 0, &mut out);
    out
}

#[test]
fn fuzz_card_tlv() {
    // The basic-four file as the virtual card lays it out, short and long length forms.
    let tlv_of = |tag: u16, v: &[u8], long: bool| {
        let mut out = tag.to_be_bytes().to_vec();
        if long || v.len() >= 0x80 {
            out.push(0x82);
            out.extend_from_slice(&u16::try_from(v.len()).unwrap().to_be_bytes());
        } else {
            out.push(u8::try_from(v.len()).unwrap());
        }
        out.extend_from_slice(v);
        out
    };
    let h = holder();
    let file = |long: bool| {
        let mut inner = tlv_of(0xDF21, &[1, 2, 3], long);
        inner.extend(tlv_of(0xDF22, h.name.as_bytes(), long));
        inner.extend(tlv_of(0xDF23, h.address.as_bytes(), long));
        inner.extend(tlv_of(0xDF24, h.birth.as_bytes(), long));
        inner.extend(tlv_of(0xDF25, h.sex.as_bytes(), long));
        let mut f = tlv_of(0xFF20, &inner, long);
        f.extend_from_slice(&[0xFF; 8]);
        f
    };
    let fresh = vec![file(false), file(true)];
    let s = seeds("card_tlv", fresh);
    let stats = run("card_tlv", &s, &gen_tlv, &mut |b| {
        let mut rest = b;
        while let Ok((_, more)) = tlv::read(rest) {
            if more.len() >= rest.len() {
                break;
            }
            rest = more;
        }
        let _ = tlv::total_len(b);
        match tlv::basic_four(b) {
            Ok(_) => taken_any(),
            Err(_) => Verdict::Refused,
        }
    });
    assert!(stats.taken > 0);
}

// ---------------------------------------------------------------------------------------------
// Admission tickets, enrolment, roster transfer

#[test]
fn fuzz_admission_ticket() {
    // A town on the voter list, its own fleet and manifest.
    let (roster, fleet) = kazashi_tests::town_with(true).unwrap();
    let dir = fast_dir();
    let node = Node::create(
        &dir.path().join("voters.db"),
        "correct horse",
        KdfParams::FAST_INSECURE,
        key(&fleet, 0),
        &fleet.manifest,
        Arc::new(roster.clone()),
        fleet.stations[0].0,
        ManualClock::new(START_MS),
    )
    .unwrap();
    let fresh: Vec<Vec<u8>> = roster
        .entries()
        .iter()
        .filter_map(|e| e.voter.as_ref())
        .take(4)
        .map(|v| format!(" {}\n", v.list_number.as_str()).into_bytes())
        .chain([" １２３４５\n".as_bytes().to_vec(), b"A-0001".to_vec()])
        .collect();
    let s = seeds("admission_ticket", fresh);
    let gen_ticket = |u: &mut Unstructured<'_>| {
        let pieces = [
            "0", "9", "１", "Ａ", "-", "ー", " ", "\u{3000}", "\n", "\u{FF0D}", "a",
        ];
        let mut out = String::new();
        for _ in 0..u.int_in_range(0..=24usize).unwrap_or(6) {
            out.push_str(pieces[u.choose_index(pieces.len()).unwrap_or(0)]);
        }
        out.into_bytes()
    };
    run("admission_ticket", &s, &gen_ticket, &mut |b| {
        let text = String::from_utf8_lossy(b);
        match node.admission_ticket(&text) {
            Ok(_) => taken_any(),
            Err(e) => {
                assert!(!e.to_string().is_empty());
                Verdict::Refused
            }
        }
    });
}

fn enrol_request() -> Vec<u8> {
    let dir = fast_dir();
    let folder = kazashi_node::enrolled::Folder::new(dir.path());
    let req = kazashi_node::enrolment::request(&folder, "a long passphrase", "受付1").unwrap();
    serde_json::to_vec_pretty(&req).unwrap()
}

#[test]
fn fuzz_enrol_request() {
    let s = seeds("enrol_request", vec![enrol_request()]);
    let stats =
        run(
            "enrol_request",
            &s,
            &raw,
            &mut |b| match kazashi_node::enrolment::Request::parse(b) {
                Ok(r) => match r.verify() {
                    Ok(_) => taken_any(),
                    Err(_) => Verdict::Refused,
                },
                Err(_) => Verdict::Refused,
            },
        );
    assert!(stats.taken > 0);
}

#[test]
fn fuzz_enrol_net() {
    use kazashi_node::enrol_net::Message as M;
    let req = kazashi_node::enrolment::Request::parse(&enrol_request()).unwrap();
    let frames: Vec<Vec<u8>> = [
        M::Request(req),
        M::Pending,
        M::Manifest(world().fleet.manifest.clone()),
        M::Refused("no".into()),
    ]
    .iter()
    .map(|m| m.encode().unwrap())
    .collect();
    let s = seeds("enrol_net", frames);
    let stats = run("enrol_net", &s, &raw, &mut |b| {
        let Some((header, rest)) = b.split_first_chunk::<4>() else {
            return Verdict::Refused;
        };
        let _ = kazashi_node::enrol_net::frame_len(*header, 1 << 20);
        let Some((&tag, body)) = rest.split_first() else {
            return Verdict::Refused;
        };
        match M::decode(tag, body) {
            Ok(m) => {
                let again = m.encode().unwrap();
                assert_eq!(M::decode(again[4], &again[5..]).unwrap(), m);
                taken_any()
            }
            Err(_) => Verdict::Refused,
        }
    });
    assert!(stats.taken > 0);
}

#[test]
fn fuzz_roster_transfer() {
    let w = world();
    let hash = w.roster.hash();
    let served = Served::new(hash, w.roster.kind(), w.roster.entries());
    let chunk = served.chunk(0, w.roster.entries()).unwrap();
    let mut fresh = vec![
        vec![0u8]
            .into_iter()
            .chain(served.index.encode())
            .collect::<Vec<u8>>(),
        vec![1u8]
            .into_iter()
            .chain(rt::Request::Index { roster: hash }.encode())
            .collect(),
        vec![1u8]
            .into_iter()
            .chain(rt::Request::Chunk { roster: hash, n: 0 }.encode())
            .collect(),
        vec![2u8]
            .into_iter()
            .chain(rt::Response::Index(served.index.clone()).encode())
            .collect(),
        vec![3u8].into_iter().chain(chunk.iter().copied()).collect(),
    ];
    fresh.push(
        vec![2u8]
            .into_iter()
            .chain(rt::Response::NotHeld.encode())
            .collect(),
    );
    let s = seeds("roster_transfer", fresh);
    let stats = run("roster_transfer", &s, &raw, &mut |b| {
        let Some((&which, body)) = b.split_first() else {
            return Verdict::Refused;
        };
        match which % 4 {
            0 => match RosterIndex::decode(body) {
                Ok(i) => taken(i.encode() == body),
                Err(_) => Verdict::Refused,
            },
            1 => match rt::Request::decode(body) {
                Ok(r) => taken(r.encode() == body),
                Err(_) => Verdict::Refused,
            },
            2 => match rt::Response::decode(body) {
                Ok(r) => {
                    assert_eq!(rt::Response::decode(&r.encode()).unwrap(), r);
                    taken(r.encode() == body)
                }
                Err(_) => Verdict::Refused,
            },
            _ => {
                // A chunk whose hash matches its index: the entries themselves are parsed.
                let index = RosterIndex {
                    kind: w.roster.kind(),
                    total: 1,
                    chunks: vec![ChunkRef {
                        sha256: Sha256::digest(body).into(),
                        entries: u32::try_from(rt::chunk_entries(body).count()).unwrap_or(0),
                    }],
                };
                let mut a = Assembler::new(hash, index);
                match a.feed(body) {
                    Ok(()) => {
                        let _ = a.finish();
                        taken_any()
                    }
                    Err(_) => Verdict::Refused,
                }
            }
        }
    });
    assert!(stats.taken > 0);
}

// ---------------------------------------------------------------------------------------------
// What staff type, and the administrator's sites file

/// A search (dates Western or 和暦, years, words), a typed date, a birth date as a clerk
/// wrote it, an address key, a roster column mapping: nothing panics.
#[test]
fn fuzz_typed_text() {
    let s = seeds("typed_text", Vec::new());
    let gen_text = |u: &mut Unstructured<'_>| {
        let pieces = [
            "昭和",
            "令和",
            "元",
            "年",
            "月",
            "日",
            "S",
            "H",
            "R",
            "55",
            "２",
            ".",
            "/",
            "-",
            "〒",
            "丁目",
            "番地",
            "号",
            "の",
            "－",
            " ",
            "\u{3000}",
            "=",
            "#",
            "\n",
            "髙",
            "ｶ",
            "\u{E0100}",
        ];
        let mut out = String::new();
        for _ in 0..u.int_in_range(0..=16usize).unwrap_or(4) {
            out.push_str(pieces[u.choose_index(pieces.len()).unwrap_or(0)]);
        }
        out.into_bytes()
    };
    run("typed_text", &s, &gen_text, &mut |b| {
        let text = String::from_utf8_lossy(b);
        let q = kazashi_domain::search::Query::parse(&text);
        let _ = q.matches(
            "たかはし",
            "タカハシ",
            "かざし市",
            CivilDate::new(1980, 2, 29).ok(),
        );
        let _ = kazashi_domain::search::parse_typed_date(&text);
        let _ = kazashi_domain::birth::parse_birth_date(&text);
        let folded = kazashi_domain::normalize::fold(&text);
        let _ = kazashi_domain::address::AddressKey::new(&folded);
        match Mapping::parse(&text) {
            Ok(_) => taken_any(),
            Err(e) => {
                assert!(!e.is_empty(), "a refusal says why");
                Verdict::Refused
            }
        }
    });
}

/// The administrator's sites file, as CSV and as TOML: a refusal says why.
#[test]
fn fuzz_admin_files() {
    let s = seeds("admin_files", Vec::new());
    run("admin_files", &s, &raw, &mut |b| {
        let text = String::from_utf8_lossy(b);
        let csv = kazashi_node::deployment_admin::parse_sites_csv(&text);
        let toml = kazashi_node::deployment_admin::parse_sites_toml(&text);
        for e in [csv.as_ref().err(), toml.as_ref().err()]
            .into_iter()
            .flatten()
        {
            assert!(!e.to_string().is_empty());
        }
        if csv.is_ok() || toml.is_ok() {
            taken_any()
        } else {
            Verdict::Refused
        }
    });
}

/// A signed update file (`.kzu`, `kazashi_node::update`) from a stick: refused with a reason,
/// or verified against the pin with its package inside the file — and only a file exactly as
/// signed verifies. The seeds are real files of the deployment key the pin names (the
/// coverage-guided target `update_file` uses the same pin).
#[test]
fn fuzz_update_file() {
    use kazashi_node::update::{Pin, encode, verify};
    let key = DeviceKey::from_seed([7; 32]);
    let pin = Pin {
        deployment: kazashi_domain::DeploymentId([3; 16]),
        admin: key.device_id(),
    };
    let fresh = vec![
        encode(&key, pin.deployment, "0.2.0-1", b"!<arch>\ndebian-binary").unwrap(),
        encode(&key, pin.deployment, "1:0.2.0~rc1+b2-1", &[0u8; 300]).unwrap(),
    ];
    let s = seeds("update_file", fresh);
    let stats = run("update_file", &s, &raw, &mut |b| {
        match verify(b, &pin, "0.1.0", false) {
            Ok(v) => {
                assert!(v.package.len() < b.len());
                // Only a file the key signed verifies: any change to one is refused.
                assert!(s.iter().any(|seed| seed == b), "an unsigned file verified");
                taken_any()
            }
            Err(e) => {
                assert!(!e.to_string().is_empty(), "a refusal says why");
                Verdict::Refused
            }
        }
    });
    assert!(stats.taken > 0);
}

/// The public update pin (`kazashi_node::update_pin`, `update-pin.json`): written by the
/// `kazashi` user into its folder, read by root. Refused with a reason, or a pin that
/// re-encodes and parses back the same; only a file whose fingerprint matches its key is taken.
#[test]
fn fuzz_update_pin() {
    use kazashi_node::update_pin::{Pin, encode, parse};
    let pins = [3u8, 9].map(|n| Pin {
        deployment: kazashi_domain::DeploymentId([n; 16]),
        admin: DeviceKey::from_seed([n; 32]).device_id(),
    });
    let fresh: Vec<Vec<u8>> = pins.iter().map(encode).collect();
    let s = seeds("update_pin", fresh);
    let stats = run(
        "update_pin",
        &s,
        &raw,
        &mut |b| match parse(b, "update-pin.json") {
            Ok(p) => {
                assert_eq!(parse(&encode(&p), "x").unwrap(), p);
                taken_any()
            }
            Err(e) => {
                assert!(!e.to_string().is_empty(), "a refusal says why");
                Verdict::Refused
            }
        },
    );
    assert!(stats.taken > 0);
}

// ---------------------------------------------------------------------------------------------
// The coverage-guided targets' fixtures (`fuzz/`, run by `script/fuzz`)

/// The coverage-guided fuzzer (`fuzz/`) links no lab, so the town it needs — the roster, the
/// signed manifest, the laptops' seeded keys — is committed under `fuzz/fixtures/` (rewritten
/// with `KAZASHI_FUZZ_WRITE_CORPUS=1`). This checks the committed copy is still the town the
/// lab makes: same manifest bytes, same keys, a roster that reads back with the pinned hash.
#[test]
fn fuzz_fixtures_match_the_town() {
    for (name, voters) in [("town", false), ("voters", true)] {
        let (roster, fleet) = kazashi_tests::town_with(voters).unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/fixtures")
            .join(name);
        let keys: String = fleet
            .stations
            .iter()
            .map(|(s, k)| format!("{} {}\n", s.as_str(), fuzz_support::hex(&k.secret_bytes())))
            .collect();
        let (csv, _) = encode(&write(&roster), WriteEncoding::Utf8Bom);
        if std::env::var_os("KAZASHI_FUZZ_WRITE_CORPUS").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("roster.csv"), &csv).unwrap();
            std::fs::write(dir.join("manifest.bin"), &fleet.manifest).unwrap();
            std::fs::write(dir.join("keys.txt"), &keys).unwrap();
        }
        let stale = "stale: rewrite with KAZASHI_FUZZ_WRITE_CORPUS=1 cargo test -p kazashi-tests --test fuzz_parsers fuzz_fixtures";
        assert_eq!(
            std::fs::read(dir.join("manifest.bin")).unwrap(),
            fleet.manifest,
            "{name} manifest {stale}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("keys.txt")).unwrap(),
            keys,
            "{name} keys {stale}"
        );
        let opts = ReadOptions {
            kind: roster.kind(),
            mapping: Mapping::default(),
            today: CivilDate::new(2026, 9, 1).unwrap(),
            encoding: None,
        };
        let imp = read(
            &std::fs::read(dir.join("roster.csv")).unwrap(),
            &opts,
            &mut |_, _| {},
        )
        .unwrap();
        let back = Roster::new(imp.kind, imp.entries, opts.today).unwrap();
        assert_eq!(back.hash(), roster.hash(), "{name} roster {stale}");
    }
}
