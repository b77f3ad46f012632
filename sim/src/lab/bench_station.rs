//! `kazashi-lab bench station --scale N`: a station opened the product's way
//! (`enrolled::open`) on an N-person roster store and N/10 merged events (10 M people and 1 M
//! events at `--scale 10000000`), measured in fresh child processes so that the town and the
//! events generated here do not count:
//!
//! - `ready`: from the open call to a station that answers — the roster store opened and
//!   checked against the pin (streamed for a roster kept on disk, loaded whole below
//!   `roster_lookup::ON_DISK_FROM`; a store the station sealed after such a check is
//!   fingerprinted instead, `roster_seal`: the first run walks and seals, later runs do not),
//!   the events loaded, the match index built;
//! - `card_to_household`: a card's basic four → matched to the roster → the household's members
//!   with who they are and where they stay (the node's side of the reception screen, no frame
//!   drawn) (p50/p99);
//! - `search_name`: staff name searches (a full name, a reading, a family name with a 和暦 birth
//!   date, two characters), 20 hits at most (p50/p99);
//! - `peak_rss_reception`: the child's VmHWM after the above; then `alerts_first_ask`, the
//!   window's first ask for the alert count (it starts the detector's build off its thread),
//!   `card_to_household_during_detector` (p50/p99: the cards again while that build reads the
//!   roster store too) and `detector_full`, from the first ask to the alerts (the detector over
//!   every event, off the reception path), measured last;
//! - `peak_rss`: the child's VmHWM after all of the above; `roster_on_disk` 1 when the roster
//!   was answered from disk.
//!
//! Each child's lines are printed as they came (`"run"`: 0, 1, …), then the medians. The stores
//! live under `KAZASHI_BENCH_DIR` when set (kept), else the system's temporary directory.
//!
//! The parent streams: the town's roster generated a household at a time
//! (`population::Households`) into a CSV file, imported the product's way
//! (`roster_import::import_file`) and answered from disk from then on (the events generated
//! over it, the node created on it); it prints `roster_csv_write`, `roster_store_write`,
//! `events_generated`, `events_store_write` and `parent_peak_rss`. (It held the roster in memory
//! twice before: about 15 GB at 10 M.) The sampled persons are drawn by 宛名番号 (the generator
//! numbers them from 1,000,000,001), so the sample differs from the one before this change.

use crate::bench::{emit, emit_percentiles, memory_mib, ms};
use crate::bench_log::TempDir;
use kazashi_domain::CivilDate;
use kazashi_domain::PersonRef;
use kazashi_domain::roster::RosterKind;
use kazashi_node::card::BasicFour;
use kazashi_node::enrolled::{Folder, META_SITE, ROSTER_FILE, STORE_FILE, open};
use kazashi_node::reception::BasicFourMatch;
use kazashi_node::roster_csv::{CsvWriter, Mapping, ReadOptions};
use kazashi_node::roster_db::RosterDb;
use kazashi_node::roster_import::{ImportOptions, import_file};
use kazashi_node::roster_lookup::StoreRoster;
use kazashi_node::{KdfParams, ManualClock, Node};
use kazashi_sim::Municipality;
use kazashi_sim::population::{Households, shelter_operation};
use kazashi_sim::workload::START_MS;
use kazashi_sync::DeviceKey;
use rand::{RngExt, SeedableRng};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const PASS: &str = "bench passphrase";
const SAMPLE: &str = "sample.txt";
const CSV: &str = "roster.csv";

pub fn run(args: &crate::bench::BenchArgs) -> Result<(), String> {
    let n = args.scale;
    if !(1000..=20_000_000).contains(&n) {
        return Err("--scale (roster persons) must be between 1000 and 20000000".into());
    }
    if let Some(dir) = &args.child_open {
        return child(n, dir);
    }
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let dir = TempDir::for_bench("station")?;
    let clock = ManualClock::new(START_MS + 7 * 24 * 3600 * 1000);
    {
        let events_n = (n / 10).max(1000);
        // The town's roster streamed, a household at a time, to a CSV file, imported the
        // product's way (streamed) and answered from disk from then on: the parent holds
        // neither the roster nor its index (at 10 M they took about 15 GB).
        let t = Instant::now();
        let persons = write_town_csv(n, args.seed, &dir.0.join(CSV))?;
        emit("station", "roster_csv_write", ms(t), "ms", n);
        let t = Instant::now();
        let read = ReadOptions {
            kind: RosterKind::Residents,
            mapping: Mapping::default(),
            today: CivilDate::new(2026, 9, 1).map_err(|x| e(&x))?,
            encoding: None,
        };
        let opts = ImportOptions {
            read: &read,
            passphrase: PASS,
            params: KdfParams::FAST_INSECURE,
            expect: None,
        };
        let (db, _) = import_file(
            &dir.0.join(CSV),
            &dir.0.join(ROSTER_FILE),
            &opts,
            &mut |_, _, _| {},
        )
        .map_err(|x| e(&x))?;
        let _ = std::fs::remove_file(dir.0.join(CSV));
        emit("station", "roster_store_write", ms(t), "ms", n);
        let roster = Arc::new(if db.answers_from_disk() && persons >= 200_000 {
            StoreRoster::roster(db, None).map_err(|x| e(&x))?
        } else {
            db.load(read.today, None).map_err(|x| e(&x))?
        });
        let m = Municipality {
            roster: (*roster).clone(),
            today: read.today,
            seed: args.seed,
        };
        let d = shelter_operation(&m, (events_n / 20_000).clamp(5, 500)).map_err(|x| e(&x))?;
        let t = Instant::now();
        let (fleet, sealed) = crate::bench_log::signed_week(&m, &d, events_n, args.seed)?;
        drop(m);
        emit("station", "events_generated", ms(t), "ms", n);
        let site = d
            .sites()
            .find(|s| s.is_shelter())
            .map(|s| s.id)
            .ok_or("no shelter")?;
        let key = fleet.nth_key(&site, 0).ok_or("no key")?;
        // The persons sampled (ids only; the child reads their entries itself): the generator
        // numbers persons from 1,000,000,001 on.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed);
        let ids: Vec<String> = (0..200)
            .map(|_| {
                format!(
                    "{:010}",
                    1_000_000_001 + rng.random_range(0..persons.max(1))
                )
            })
            .collect();
        std::fs::write(dir.0.join(SAMPLE), ids.join("\n")).map_err(|x| e(&x))?;
        let t = Instant::now();
        let mut node = Node::create(
            &dir.0.join(STORE_FILE),
            PASS,
            KdfParams::FAST_INSECURE,
            DeviceKey::from_seed(key.secret_bytes()),
            &fleet.manifest,
            roster,
            site,
            clock.clone(),
        )
        .map_err(|x| e(&x))?;
        node.set_setting(META_SITE, site.as_str().as_bytes())
            .map_err(|x| e(&x))?;
        node.bulk_load(sealed).map_err(|x| e(&x))?;
        node.store().checkpoint().map_err(|x| e(&x))?;
        emit("station", "events_store_write", ms(t), "ms", n);
        emit(
            "station",
            "merged_events",
            node.state().len() as f64,
            "events",
            n,
        );
        if let Some((_, peak)) = memory_mib() {
            emit("station", "parent_peak_rss", peak, "MiB", n);
        }
    }
    crate::bench::child_runs(
        "station",
        n,
        n,
        &dir.0,
        args.runs,
        &[
            ("ready", "ms"),
            ("card_to_household_p99", "ms"),
            ("search_name_p99", "ms"),
            ("peak_rss_reception", "MiB"),
            ("detector_full", "ms"),
            ("peak_rss", "MiB"),
        ],
    )
}

/// The child: open the enrolled folder in `dir`, as the product does, and measure.
fn child(n: usize, dir: &Path) -> Result<(), String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let clock = ManualClock::new(START_MS + 7 * 24 * 3600 * 1000 + 60_000);
    let t = Instant::now();
    let (mut node, roster) = open(&Folder::new(dir), PASS, PASS, clock).map_err(|x| e(&x))?;
    let opened = ms(t);
    node.matcher();
    let ready = ms(t);
    emit("station", "open", opened, "ms", n);
    emit("station", "ready", ready, "ms", n);
    if let Some((_, peak)) = memory_mib() {
        emit("station", "rss_ready", peak, "MiB", n);
    }
    emit(
        "station",
        "roster_on_disk",
        f64::from(u8::from(roster.store().is_some())),
        "bool",
        n,
    );
    // The sampled entries, read through a second connection (not the station's caches).
    let side = RosterDb::open(&dir.join(ROSTER_FILE), PASS).map_err(|x| e(&x))?;
    let ids = std::fs::read_to_string(dir.join(SAMPLE)).map_err(|x| e(&x))?;
    let mut sample = Vec::new();
    for id in ids.lines() {
        let id = kazashi_domain::PersonId::new(id).map_err(|x| e(&x))?;
        sample.extend(side.get(&id).map_err(|x| e(&x))?);
    }
    drop(side);
    let (to_household, misses) = cards(&mut node, &roster, &sample);
    emit_percentiles("station", "card_to_household", &to_household, "ms", n);
    emit(
        "station",
        "basic_four_not_strong",
        misses as f64,
        "cards",
        n,
    );
    let mut search = Vec::new();
    for (i, s) in sample.iter().enumerate() {
        let family = |t: &str| t.split([' ', '　']).next().unwrap_or("").to_owned();
        let q = match i % 4 {
            0 => s.name.as_str().to_owned(),
            1 => s.kana.as_str().to_owned(),
            2 => format!(
                "{} {}",
                family(s.kana.as_str()),
                kazashi_node::print::wareki(s.birth_date)
            ),
            _ => family(s.name.as_str()).chars().take(2).collect(),
        };
        let t = Instant::now();
        let hits = node.search(&q, 20);
        search.push(ms(t));
        std::hint::black_box(hits);
    }
    emit_percentiles("station", "search_name", &search, "ms", n);
    if let Some((_, peak)) = memory_mib() {
        emit("station", "peak_rss_reception", peak, "MiB", n);
    }
    // The detector over every event (not on the reception path): after the reception figures,
    // so that a slow first run does not hold them back. The window's first ask starts it off
    // its thread (`alerts_first_ask`: what the frame pays); cards are looked up again while it
    // runs (`card_to_household_during_detector`: both read the roster store); then the wait
    // for it (`detector_full`, from the first ask).
    let t = Instant::now();
    let first = node.open_alert_count_nowait();
    emit("station", "alerts_first_ask", ms(t), "ms", n);
    if first.is_none() {
        let (during, _) = cards(&mut node, &roster, &sample);
        emit_percentiles(
            "station",
            "card_to_household_during_detector",
            &during,
            "ms",
            n,
        );
    }
    let alerts = node.alerts().len();
    emit("station", "detector_full", ms(t), "ms", n);
    emit("station", "alerts", alerts as f64, "alerts", n);
    if let Some((_, peak)) = memory_mib() {
        emit("station", "peak_rss", peak, "MiB", n);
    }
    Ok(())
}

/// A card's basic four → matched → the household shown, for each sampled entry: the times
/// (ms) and how many did not match strongly.
fn cards(
    node: &mut kazashi_node::Node<ManualClock>,
    roster: &kazashi_domain::Roster,
    sample: &[kazashi_domain::roster::RosterEntry],
) -> (Vec<f64>, usize) {
    let mut to_household = Vec::new();
    let mut misses = 0usize;
    for s in sample {
        let four = BasicFour {
            name: s.name.as_str().to_owned(),
            address: s.address.as_str().to_owned(),
            birth_date: s.birth_date,
            sex: s.sex,
        };
        let t = Instant::now();
        let BasicFourMatch::Strong(c) = node.match_basic_four(&four) else {
            misses += 1;
            continue;
        };
        let state = node.state();
        let mut shown = 0usize;
        if let Some(me) = roster.get(&c.person) {
            for m in roster.household(&me.household) {
                let p = PersonRef::Roster(m.person);
                if state.dv_withheld(&p, roster) {
                    continue;
                }
                let who = state.identity(&p, roster, None);
                let stays = state.stays(&p, None);
                shown += usize::from(who.is_some()) + std::hint::black_box(&stays).len();
            }
        }
        std::hint::black_box(shown);
        to_household.push(ms(t));
    }
    (to_household, misses)
}

/// The roster of `town_of_people(n, seed)`, written as CSV to `path` a household at a time;
/// the number of persons.
fn write_town_csv(n: usize, seed: u64, path: &Path) -> Result<usize, String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    // What `bench::town_of_people(n, seed)` generates.
    let spec = kazashi_sim::PopulationSpec {
        households: (n * 9 / 20).max(50),
        seed,
        today: CivilDate::new(2026, 9, 1).map_err(|x| e(&x))?,
        voters: false,
    };
    let file = std::fs::File::create(path).map_err(|x| e(&x))?;
    let mut w = CsvWriter::new(
        RosterKind::Residents,
        std::io::BufWriter::with_capacity(1 << 20, file),
    )
    .map_err(|x| e(&x))?;
    let mut households = Households::new(spec, 0);
    let mut persons = 0usize;
    while let Some(members) = households.next_household().map_err(|x| e(&x))? {
        for m in &members {
            w.entry(m).map_err(|x| e(&x))?;
        }
        persons += members.len();
    }
    let mut out = w.finish().map_err(|x| e(&x))?;
    std::io::Write::flush(&mut out).map_err(|x| e(&x))?;
    Ok(persons)
}
