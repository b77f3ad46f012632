//! The targets. Each takes the fuzzer's bytes to the product's decoder and asserts what
//! `tests/tests/fuzz_parsers.rs` asserts for the same parser; a panic is a finding.

use crate::fixture::{Town, fast_dir, today, town, voters};
use kazashi_domain::event::Event;
use kazashi_domain::{Roster, RosterKind};
use kazashi_node::card::session::{CardSession, Pin, PinFor, Transport};
use kazashi_node::card::{AuthCert, CardError, tlv};
use kazashi_node::link::{Hello, LinkConfig, Role, SyncLink};
use kazashi_node::roster_csv::{Mapping, ReadOptions, WriteEncoding, encode, read, write};
use kazashi_node::{ManualClock, Node, Peer};
use kazashi_sync::protocol::Message;
use kazashi_sync::roster_transfer::{self as rt, Assembler, ChunkRef, RosterIndex};
use kazashi_sync::{bundle, open, seal};
use sha2::{Digest, Sha256};
use std::cell::RefCell;

/// A node kept between inputs (a store costs milliseconds to make), replaced by a fresh one
/// every 10 000 inputs: each refusal is quarantined, and a long run's quarantine would slow it.
struct Kept {
    _dir: tempfile::TempDir,
    node: Node<ManualClock>,
    uses: u32,
}

thread_local! {
    static NODE: RefCell<Option<Kept>> = const { RefCell::new(None) };
}

fn with_node<R>(town: &Town, n: usize, f: impl FnOnce(&mut Node<ManualClock>) -> R) -> R {
    NODE.with(|k| {
        let mut k = k.borrow_mut();
        if k.as_ref().is_none_or(|k| k.uses >= 10_000) {
            let dir = fast_dir();
            let node = town.node(dir.path(), n);
            *k = Some(Kept {
                _dir: dir,
                node,
                uses: 0,
            });
        }
        let kept = k.as_mut().unwrap();
        kept.uses += 1;
        f(&mut kept.node)
    })
}

// ---------------------------------------------------------------------------------------------
// The greeting and sync frames

pub fn hello(b: &[u8]) {
    if let Some(h) = Hello::decode(b) {
        let again = h.encode();
        assert_eq!(
            Hello::decode(&again),
            Some(h),
            "a greeting re-decodes alike"
        );
    }
}

/// Frames (kind, u16 length, body) fed to an accepting [`SyncLink`] on a real node, then its
/// timers.
pub fn link_frames(b: &[u8]) {
    let t = town();
    let remote = t.stations[t.shelter(0)].1.device_id();
    with_node(t, t.shelter(2), |node| {
        let (mut link, _) = SyncLink::open(
            Hello::of(node),
            Role::Accepted,
            remote,
            LinkConfig::default(),
            0,
        );
        let mut now = 0;
        let mut rest = b;
        while let [kind, h, l, tail @ ..] = rest {
            let len = usize::from(u16::from_be_bytes([*h, *l])).min(tail.len());
            let (body, more) = tail.split_at(len);
            if body.len() > link.max_frame() {
                break;
            }
            now += 1;
            link.frame(node, *kind, body, now);
            rest = more;
        }
        now += 20_000;
        link.tick(node, now);
    });
}

pub fn sync_message(b: &[u8]) {
    if let Ok(m) = Message::decode_bounded(b, 64) {
        assert_eq!(
            Message::decode(b).ok(),
            Some(m),
            "bounded and plain decode alike"
        );
    }
    if let Ok(m) = Message::decode(b) {
        let again = m.encode();
        assert_eq!(
            Message::decode(&again).ok(),
            Some(m),
            "re-encoding decodes alike"
        );
    }
}

/// A sync message handled by a real node: Automerge's sync protocol, the vetting of
/// envelopes, the quarantine.
pub fn sync_ingest(b: &[u8]) {
    let t = town();
    with_node(t, t.shelter(2), |node| {
        let mut peer = Peer::new("fuzz");
        let _ = node.sync_handle(&mut peer, b);
    });
}

// ---------------------------------------------------------------------------------------------
// Envelopes, events, manifests, bundles

pub fn envelope(b: &[u8]) {
    let t = town();
    if let Ok(ev) = open(b, &t.members) {
        // Signatures are deterministic: a taken envelope is the one its author seals.
        let dep = t.members.deployment().id();
        if let Some((_, k)) = t
            .stations
            .iter()
            .find(|(_, k)| k.device_id() == ev.device())
        {
            assert_eq!(
                seal(&ev, dep, k).unwrap(),
                b,
                "a non-canonical envelope was taken"
            );
        }
    }
}

pub fn event(b: &[u8]) {
    if let Ok(ev) = Event::decode(b) {
        let again = ev.encode().unwrap();
        assert_eq!(
            again, b,
            "an event was taken whose bytes are not its encoding"
        );
        assert_eq!(Event::decode(&again).unwrap().id(), ev.id());
    }
}

pub fn manifest(b: &[u8]) {
    if let Ok(m) = kazashi_sync::SignedManifest::decode(b) {
        let again = m.signed().encode();
        assert!(
            kazashi_sync::SignedManifest::decode(&again).is_ok(),
            "re-encoding decodes"
        );
    }
}

/// A sealed note's bytes (issue 24): decoding checks every bound; a note opens only to the
/// text it was sealed with (the seeds' text, sealed to the town's medical key).
pub fn sealed_note(b: &[u8]) {
    use kazashi_domain::sealed_note::NoteKind;
    use kazashi_sync::{KeyPurpose, sealed};
    use std::sync::OnceLock;
    const TEXT: &str = "問診票: 血圧の薬を持参 (fuzz seed)";
    static SECRET: OnceLock<Option<kazashi_sync::PurposeSecret>> = OnceLock::new();
    let t = town();
    let Some(secret) = SECRET.get_or_init(|| {
        t.members
            .unseal(KeyPurpose::Medical, &t.stations[t.shelter(0)].1)
    }) else {
        return;
    };
    let parsed = sealed::sealed_to(b);
    if let Ok(text) = sealed::open(b, NoteKind::Medical, b"person", KeyPurpose::Medical, secret) {
        assert!(parsed.is_ok(), "opened bytes that do not decode");
        assert_eq!(text.as_str(), TEXT, "a note opened to another text");
    }
}

pub fn bundle(b: &[u8]) {
    let t = town();
    let me = &t.stations[t.shelter(1)].1;
    if let Err(e) = bundle::read(b, &t.members, me) {
        assert!(!e.to_string().is_empty(), "a refusal says why");
    }
}

/// A bundle as a member could make it: the fuzzer's bytes are the shards (records of a site
/// index, a date and Automerge bytes), sealed and signed by an enrolled laptop with
/// `bundle::write`, then imported by another laptop's real store (`Node::import_bundle`: the
/// vetting of every shard, the quarantine, the one-transaction commit). This reaches what a
/// stranger's bundle cannot: everything after the signatures.
pub fn bundle_import(b: &[u8]) {
    let t = town();
    let shards = bundle_records(t, b);
    let author = &t.stations[t.shelter(0)].1;
    let body = bundle::BundleBody {
        deployment: t.members.deployment().id(),
        author: author.device_id(),
        id: Sha256::digest(b)[..16].try_into().unwrap(),
        created_ms: crate::fixture::START_MS,
        snapshot: false,
        catalog: Vec::new(),
        shards,
        manifest: None,
    };
    let Ok(file) = bundle::write(&body, author, &t.members, [7; 64]) else {
        return;
    };
    with_node(t, t.shelter(1), |node| {
        if let Err(e) = node.import_bundle(&file, "fuzz") {
            assert!(!e.to_string().is_empty(), "a refusal says why");
        }
    });
}

/// Records: site index (u8), year (u16 LE), month, day, length (u32 LE), Automerge bytes.
fn bundle_records(t: &Town, mut b: &[u8]) -> Vec<(kazashi_sync::ShardId, Vec<u8>)> {
    let mut out = Vec::new();
    while let [site, y0, y1, m, d, l0, l1, l2, l3, rest @ ..] = b {
        let len = (u32::from_le_bytes([*l0, *l1, *l2, *l3]) as usize).min(rest.len());
        let (bytes, more) = rest.split_at(len);
        b = more;
        let Some((site, _)) = t.stations.get(usize::from(*site) % t.stations.len()) else {
            continue;
        };
        let Ok(day) = kazashi_domain::CivilDate::new(
            i32::from(u16::from_le_bytes([*y0, *y1])),
            u32::from(*m),
            u32::from(*d),
        ) else {
            continue;
        };
        out.push((kazashi_sync::ShardId { site: *site, day }, bytes.to_vec()));
    }
    out
}

/// The seed of `bundle_import`: the shards of the committed real bundle
/// (`fuzz/corpus/bundle/seed-000.bin`) as records.
pub fn write_bundle_import_seed(corpus: &std::path::Path) {
    let t = town();
    let file = std::fs::read(corpus.join("bundle/seed-000.bin")).unwrap();
    let body = bundle::read(&file, &t.members, &t.stations[t.shelter(1)].1).unwrap();
    let mut out = Vec::new();
    for (shard, bytes) in &body.shards {
        let site = t
            .stations
            .iter()
            .position(|(s, _)| *s == shard.site)
            .unwrap();
        out.push(u8::try_from(site).unwrap());
        out.extend_from_slice(&u16::try_from(shard.day.year()).unwrap().to_le_bytes());
        out.push(u8::try_from(shard.day.month()).unwrap());
        out.push(u8::try_from(shard.day.day()).unwrap());
        out.extend_from_slice(&u32::try_from(bytes.len()).unwrap().to_le_bytes());
        out.extend_from_slice(bytes);
    }
    std::fs::create_dir_all(corpus.join("bundle_import")).unwrap();
    std::fs::write(corpus.join("bundle_import/seed-000.bin"), out).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Roster CSV, roster transfer

fn roster_csv(b: &[u8], enc: WriteEncoding) {
    let opts = ReadOptions {
        kind: RosterKind::Residents,
        mapping: Mapping::default(),
        today: today(),
        encoding: None,
    };
    match read(b, &opts, &mut |_, _| {}) {
        Ok(imp) => {
            // What was taken writes back as a roster that reads the same, unless the writer
            // had to replace a glyph the encoding lacks, which it reports.
            let roster = Roster::new(imp.kind, imp.entries.clone(), opts.today).unwrap();
            let (again, rep) = encode(&write(&roster), enc);
            let back = read(&again, &opts, &mut |_, _| {}).unwrap();
            if rep.replaced_cells == 0 {
                assert_eq!(back.entries, imp.entries, "a roster reads back the same");
            }
        }
        Err(lint) => assert!(!lint.findings.is_empty(), "a refusal says why"),
    }
}

pub fn roster_csv_utf8(b: &[u8]) {
    roster_csv(b, WriteEncoding::Utf8Bom);
}

pub fn roster_csv_cp932(b: &[u8]) {
    roster_csv(b, WriteEncoding::Cp932);
}

/// The first byte picks the message: 0 an index, 1 a request, 2 a response, 3 a chunk.
pub fn roster_transfer(b: &[u8]) {
    let Some((&which, body)) = b.split_first() else {
        return;
    };
    match which % 4 {
        0 => {
            if let Ok(i) = RosterIndex::decode(body) {
                assert_eq!(RosterIndex::decode(&i.encode()).ok(), Some(i));
            }
        }
        1 => {
            if let Ok(r) = rt::Request::decode(body) {
                assert_eq!(r.encode(), body, "a request is canonical");
            }
        }
        2 => {
            if let Ok(r) = rt::Response::decode(body) {
                assert_eq!(rt::Response::decode(&r.encode()).ok(), Some(r));
            }
        }
        _ => {
            // A chunk whose hash matches its index: the entries themselves are parsed.
            let t = town();
            let index = RosterIndex {
                kind: t.roster.kind(),
                total: 1,
                chunks: vec![ChunkRef {
                    sha256: Sha256::digest(body).into(),
                    entries: u32::try_from(rt::chunk_entries(body).count()).unwrap_or(0),
                }],
            };
            let mut a = Assembler::new(t.roster.hash(), index);
            if a.feed(body).is_ok() {
                let _ = a.finish();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Card answers

/// Answers from a script (each a u16 length and the raw answer with its status word).
struct Script<'a>(&'a [u8]);

impl Transport for Script<'_> {
    fn transmit(&mut self, _apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        match self.0 {
            [h, l, rest @ ..] => {
                let len = usize::from(u16::from_be_bytes([*h, *l])).min(rest.len());
                let (answer, more) = rest.split_at(len);
                self.0 = more;
                Ok(answer.to_vec())
            }
            _ => Err(CardError::Reader("no card".into())),
        }
    }
}

/// A card's whole walk (certificate, PIN tries, PINs, basic four, a signature) on answers
/// from the fuzzer.
pub fn card_session(b: &[u8]) {
    let mut s = CardSession::new(Script(b));
    let _ = s.read_auth_cert();
    let _ = s.pin_tries(PinFor::Text);
    let pin = Pin::new("1234").unwrap();
    let _ = s.verify_pin(PinFor::Text, &pin);
    let _ = s.read_basic_four();
    let _ = s.verify_pin(PinFor::Jpki, &pin);
    let _ = s.sign(b"challenge");
}

pub fn card_cert(b: &[u8]) {
    if let Ok(c) = AuthCert::parse(b) {
        let _ = c.card_key(&town().members.deployment().id());
        let _ = c.not_after();
        let _ = c.verifies(b"digest", b"signature");
    }
}

pub fn card_tlv(b: &[u8]) {
    let mut rest = b;
    while let Ok((_, more)) = tlv::read(rest) {
        if more.len() >= rest.len() {
            break;
        }
        rest = more;
    }
    let _ = tlv::total_len(b);
    let _ = tlv::basic_four(b);
}

// ---------------------------------------------------------------------------------------------
// Admission tickets, enrolment, typed text, the administrator's files

pub fn admission_ticket(b: &[u8]) {
    let t = voters();
    let text = String::from_utf8_lossy(b);
    with_node(t, 0, |node| {
        if let Err(e) = node.admission_ticket(&text) {
            assert!(!e.to_string().is_empty(), "a refusal says why");
        }
    });
}

pub fn enrol_request(b: &[u8]) {
    if let Ok(r) = kazashi_node::enrolment::Request::parse(b) {
        let _ = r.verify();
    }
}

/// A frame header (checked against a 1 MiB limit), a tag and a body.
pub fn enrol_net(b: &[u8]) {
    use kazashi_node::enrol_net::{Message as M, frame_len};
    let Some((header, rest)) = b.split_first_chunk::<4>() else {
        return;
    };
    let _ = frame_len(*header, 1 << 20);
    let Some((&tag, body)) = rest.split_first() else {
        return;
    };
    if let Ok(m) = M::decode(tag, body) {
        let again = m.encode().unwrap();
        assert_eq!(
            M::decode(again[4], &again[5..]).unwrap(),
            m,
            "re-decodes alike"
        );
    }
}

/// What staff type: a search (dates Western or 和暦, years, words), a typed date, a birth
/// date as a clerk wrote it, a roster column mapping.
pub fn typed_text(b: &[u8]) {
    let s = String::from_utf8_lossy(b);
    let q = kazashi_domain::search::Query::parse(&s);
    let _ = q.matches("たかはし はなこ", "タカハシ", "かざし市", Some(today()));
    let _ = kazashi_domain::search::parse_typed_date(&s);
    let _ = kazashi_domain::birth::parse_birth_date(&s);
    let folded = kazashi_domain::normalize::fold(&s);
    let key = kazashi_domain::address::AddressKey::new(&folded);
    let _ = key.agreement(&kazashi_domain::address::AddressKey::new(
        "かざし市中央1-2-3",
    ));
    let _ = Mapping::parse(&s);
}

/// The administrator's sites file, as CSV and as TOML.
pub fn admin_files(b: &[u8]) {
    let s = String::from_utf8_lossy(b);
    let _ = kazashi_node::deployment_admin::parse_sites_csv(&s);
    let _ = kazashi_node::deployment_admin::parse_sites_toml(&s);
}

/// A signed update file (`.kzu`) from a stick, against a laptop's pin and installed version:
/// what verifies hands back a package inside the file.
pub fn update_file(b: &[u8]) {
    use kazashi_node::update::{Pin, verify};
    let pin = Pin {
        deployment: kazashi_domain::DeploymentId([3; 16]),
        admin: kazashi_sync::DeviceKey::from_seed([7; 32]).device_id(),
    };
    match verify(b, &pin, "0.1.0", false) {
        Ok(v) => assert!(v.package.len() < b.len(), "the package is inside the file"),
        Err(e) => assert!(!e.to_string().is_empty(), "a refusal says why"),
    }
}

/// The public update pin a laptop writes into its folder and root reads without the
/// passphrase (`update-pin.json`): refused with a reason, or a pin that encodes and parses
/// back the same.
pub fn update_pin(b: &[u8]) {
    use kazashi_node::update_pin::{encode, parse};
    match parse(b, "update-pin.json") {
        Ok(p) => assert_eq!(
            parse(&encode(&p), "x").ok(),
            Some(p),
            "a pin re-reads the same"
        ),
        Err(e) => assert!(!e.to_string().is_empty(), "a refusal says why"),
    }
}
