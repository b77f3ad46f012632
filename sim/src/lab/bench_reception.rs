//! `kazashi-lab bench reception --scale N`: the station window's reception over an N-person roster
//! and N/10 merged events (10 M people and 1 M events at `--scale 10000000`), on a real store,
//! through the window's own code (the view and the node, no card I/O):
//!
//! - `card_to_screen`: a card's basic four in → matched to the roster, the household with each
//!   member's status and registrations elsewhere, and one frame drawn with it (p50/p99);
//! - `confirm_durable`: the confirm click → the check-in written and fsynced (p50/p99);
//! - `frame_present`: one frame of the present list (layout and tessellation, no GPU) with
//!   `present_at_site` people present; `frame_reception`: the idle reception screen;
//! - `present_first`: the first frame of the list (every label made); `present_rebuild`: the
//!   frame after an event came in (the list rebuilt from the log, labels kept);
//! - `matcher_build`, `load_events` (setup), `peak_rss`.

use crate::bench::{emit, emit_percentiles, ms};
use eframe::egui;
use kazashi_domain::OperatorId;
use kazashi_domain::event::IdMethod;
use kazashi_gui::app::reception::Found;
use kazashi_gui::app::{Host, Station, View};
use kazashi_gui::lang::Lang;
use kazashi_node::card::BasicFour;
use kazashi_node::reception::BasicFourMatch;
use kazashi_node::staff::Role;
use kazashi_node::{KdfParams, ManualClock, Node};
use kazashi_sim::population::shelter_operation;
use kazashi_sim::workload::START_MS;
use kazashi_sync::DeviceKey;
use std::sync::Arc;
use std::time::Instant;

/// One frame of the window at 1366×768: layout and tessellation (what the CPU does per frame).
fn frame(ctx: &egui::Context, st: &mut Station<ManualClock>) -> f64 {
    let input = egui::RawInput {
        screen_rect: Some(egui::Rect::from_min_size(
            egui::Pos2::ZERO,
            egui::vec2(1366.0, 768.0),
        )),
        ..Default::default()
    };
    let t = Instant::now();
    let mut out = ctx.run_ui(input, |ui| st.show(ui));
    let prims = ctx.tessellate(out.shapes, out.pixels_per_point);
    // No GPU here: the font atlas updates are not uploaded anywhere.
    out.textures_delta.clear();
    std::hint::black_box(prims);
    ms(t)
}

pub fn run(args: &crate::bench::BenchArgs) -> Result<(), String> {
    let n = args.scale;
    if !(1000..=20_000_000).contains(&n) {
        return Err("--scale (roster persons) must be between 1000 and 20000000".into());
    }
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let events_n = (n / 10).max(1000);
    let m = crate::bench::town_of_people(n, args.seed)?;
    let persons = m.roster.len();
    let d = shelter_operation(&m, (events_n / 20_000).clamp(5, 500)).map_err(|x| e(&x))?;
    let (fleet, sealed) = crate::bench_log::signed_week(&m, &d, events_n, args.seed)?;
    let site = d
        .sites()
        .find(|s| s.is_shelter())
        .map(|s| s.id)
        .ok_or("no shelter")?;
    let key = fleet.nth_key(&site, 0).ok_or("no key")?;
    let clock = ManualClock::new(START_MS + 7 * 24 * 3600 * 1000);
    let dir = crate::bench_log::TempDir::for_bench("reception")?;
    let roster = Arc::new(m.roster);
    let mut node = Node::create(
        &dir.0.join("station.db"),
        "bench",
        KdfParams::FAST_INSECURE,
        DeviceKey::from_seed(key.secret_bytes()),
        &fleet.manifest,
        roster.clone(),
        site,
        clock.clone(),
    )
    .map_err(|x| e(&x))?;
    let t = Instant::now();
    node.bulk_load(sealed).map_err(|x| e(&x))?;
    node.store().checkpoint().map_err(|x| e(&x))?;
    emit("reception", "load_events", ms(t), "ms", n);
    emit("reception", "roster_persons", persons as f64, "persons", n);
    emit(
        "reception",
        "merged_events",
        node.state().len() as f64,
        "events",
        n,
    );
    let t = Instant::now();
    node.matcher();
    emit("reception", "matcher_build", ms(t), "ms", n);
    node.alerts();
    let present = kazashi_gui::app::present::present_count(&node);
    emit("reception", "present_at_site", present as f64, "persons", n);

    let mut st = Station::new(
        Host::Alone(Box::new(node)),
        Lang::Ja,
        Box::new(kazashi_gui::app::cards::NoReaders),
    )?;
    st.unlock(OperatorId::new("bench").map_err(|x| e(&x))?, Role::Lead);
    let ctx = egui::Context::default();
    kazashi_gui::app::setup(&ctx)?;
    for _ in 0..3 {
        frame(&ctx, &mut st);
    }
    let idle: Vec<f64> = (0..200).map(|_| frame(&ctx, &mut st)).collect();
    emit_percentiles("reception", "frame_reception", &idle, "ms", n);

    // Card data in → the household on screen; confirm → durable.
    let mut to_screen = Vec::new();
    let mut durable = Vec::new();
    let mut misses = 0usize;
    let step = (persons / 211).max(1);
    for i in 0..200 {
        let Some(entry) = roster.entries().get((i * step + 7) % persons).cloned() else {
            continue;
        };
        let four = BasicFour {
            name: entry.name.as_str().to_owned(),
            address: entry.address.as_str().to_owned(),
            birth_date: entry.birth_date,
            sex: entry.sex,
        };
        clock.advance(1000);
        let t = Instant::now();
        let found = st.with_desk(|cx, desk, polling| match cx.node.match_basic_four(&four) {
            BasicFourMatch::Strong(c) => {
                desk.found(
                    cx,
                    Found {
                        person: c.person,
                        method: IdMethod::CardWithPin,
                        bind: None,
                    },
                    polling,
                );
                true
            }
            _ => false,
        });
        if found != Some(true) {
            misses += 1;
            continue;
        }
        frame(&ctx, &mut st);
        to_screen.push(ms(t));
        let before = st.with_desk(|cx, _, _| cx.node.state().len());
        let t = Instant::now();
        st.with_desk(|cx, desk, _| desk.confirm(cx, false));
        let after = st.with_desk(|cx, _, _| cx.node.state().len());
        if after > before {
            durable.push(ms(t));
        }
        // Back to the prompt for the next one.
        frame(&ctx, &mut st);
    }
    emit_percentiles("reception", "card_to_screen", &to_screen, "ms", n);
    emit_percentiles("reception", "confirm_durable", &durable, "ms", n);
    emit(
        "reception",
        "basic_four_not_strong",
        misses as f64,
        "cards",
        n,
    );

    // The present list: a frame after the log grew, then steady frames.
    st.set_view(View::Present);
    let first = frame(&ctx, &mut st);
    emit("reception", "present_first", first, "ms", n);
    let present_frames: Vec<f64> = (0..200).map(|_| frame(&ctx, &mut st)).collect();
    emit_percentiles("reception", "frame_present", &present_frames, "ms", n);
    // A peer's event arrives: the next frame rebuilds the list (labels already made).
    let mut rebuilds = Vec::new();
    for i in 0..20 {
        let Some(e) = roster.entries().get((i * 7919 + 3) % persons) else {
            continue;
        };
        clock.advance(1000);
        st.with_desk(|cx, _, _| {
            let members =
                kazashi_domain::event::Members::new(vec![kazashi_domain::PersonRef::Roster(
                    e.person,
                )]);
            if let Ok(members) = members {
                cx.record(kazashi_domain::event::EventBody::ShelterCheckIn {
                    household: None,
                    members,
                    method: IdMethod::Lookup,
                });
            }
        });
        rebuilds.push(frame(&ctx, &mut st));
    }
    emit_percentiles("reception", "present_rebuild", &rebuilds, "ms", n);
    if let Some((_, peak)) = crate::bench::memory_mib() {
        emit("reception", "peak_rss", peak, "MiB", n);
    }
    Ok(())
}
