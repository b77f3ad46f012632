//! `kazashi-lab bench command --scale N`: the command center's picture over N merged events of a
//! shelter week (the town sized as for every other benchmark):
//!
//! - `aggregate_as_of`: every site's counts (distinct persons, care needs, outside support,
//!   capacity), latest report and staleness as of a time T, for T spread over the week, through
//!   `OverviewIndex` (checkpoints of the counts: the index the window makes off its thread, see
//!   the window's path below) once its checkpoints are made (median and p99 of the runs; issue 27's goal: ≤ 100 ms at 1 M events,
//!   ≤ 1 s at 10 M);
//! - `as_of_index_build`: the first as-of picture, which makes the checkpoints;
//! - `index_checkpoints`: how many it made;
//! - `as_of_late_1000`: the picture right after 1,000 late events (one in every `N / 1000` of
//!   the week, held back; `N / 10` below 10,000 events) are folded in: the checkpoints after
//!   each are patched first;
//! - `aggregate_as_of_replay`: the same picture by replaying every person's history
//!   (`overview`, the path before the index), for comparison;
//! - `aggregate_now`: the latest state;
//! - `safety_index_build`: folding everyone the log knows once for safety confirmation;
//! - `safety_search`: one safety-confirmation query over that index (p50/p99);
//! - `export_csv`: the overall evacuee list as CSV;
//! - the window's path (`kazashi_gui::app::command::as_of_index::PastPictures`): `window_snapshot`,
//!   the state's events shared with the build thread (`State::share`, the window thread's one
//!   cost to start a build), and `window_refold`, folding them again there;
//!   `window_first_picture`, the call that starts it (with a replay on the window's thread only
//!   up to `INLINE_REPLAY` events; above, no picture yet); `window_first_answer`, from that call
//!   to the first picture (the build thread's replay above the limit);
//!   `window_index_build`, the build on its own thread until the index is back;
//!   `window_as_of`/`window_as_of_p99`, pictures from the index once it is; then the 1,000 late
//!   events: `window_late_first_picture` (the call that finds them too many for a frame),
//!   `window_late_first_answer` and `window_late_catch_up` (folding them in on the build
//!   thread).

use crate::bench::{emit, emit_percentiles, median, ms, town};
use kazashi_domain::State;
use kazashi_domain::overview::{OverviewIndex, overview};
use kazashi_domain::safety::{Asker, SafetyIndex};
use kazashi_node::export::{Audience, evacuees, evacuees_csv};
use kazashi_sim::workload::shelter_week;
use std::time::Instant;

pub fn run(args: &crate::bench::BenchArgs) -> Result<(), String> {
    let n = args.scale;
    if !(1000..=20_000_000).contains(&n) {
        return Err("--scale (events) must be between 1000 and 20000000".into());
    }
    let (m, d) = town(n, args.seed, false)?;
    let events = shelter_week(&m, &d, n, args.seed);
    let mut times: Vec<u64> = events.iter().map(|e| e.at().wall_ms).collect();
    times.sort_unstable();
    // 1,000 events spread over the week are held back, to arrive late once the checkpoints
    // are made (one in every n / 1000; this was one in every thousand once, n / 1000 events,
    // which made the figure grow as n²: 1.8 s at 1 M was 1,000 events, 99 s at 3 M 3,000).
    let k = (n / 1000).max(10);
    let (late, early): (Vec<_>, Vec<_>) = events
        .into_iter()
        .enumerate()
        .partition(|(i, _)| i % k == k - 1);
    let mut state = State::from_events(early.into_iter().map(|(_, e)| e));
    let on = m.today;
    let runs = args.runs.max(3);
    let at = |i: usize| {
        times
            .get(times.len() * (i + 1) / (runs + 1))
            .copied()
            .unwrap_or(0)
    };
    let mut index = OverviewIndex::default();
    let s = Instant::now();
    std::hint::black_box(index.overview(&state, &d, &m.roster, on, Some(at(0))));
    emit("command", "as_of_index_build", ms(s), "ms", n);
    let late: Vec<_> = late.into_iter().map(|(_, e)| e).collect();
    window_path(&state, &late, &d, &m.roster, on, runs, &at, n)?;
    for e in late {
        state.insert(e);
    }
    let s = Instant::now();
    std::hint::black_box(index.overview(&state, &d, &m.roster, on, Some(at(runs / 2))));
    emit("command", "as_of_late_1000", ms(s), "ms", n);
    let mut as_of = Vec::new();
    for i in 0..runs {
        let s = Instant::now();
        let ov = index.overview(&state, &d, &m.roster, on, Some(at(i)));
        as_of.push(ms(s));
        std::hint::black_box(ov);
    }
    crate::bench::emit_median_p99("command", "aggregate_as_of", as_of, "ms", n);
    emit(
        "command",
        "index_checkpoints",
        index.checkpoints() as f64,
        "checkpoints",
        n,
    );
    let mut replay = Vec::new();
    for i in 0..runs {
        let t = at(i);
        let s = Instant::now();
        let ov = overview(&state, &d, &m.roster, on, Some(t));
        replay.push(ms(s));
        // The two paths agree (the property tests check it on random logs).
        if index.overview(&state, &d, &m.roster, on, Some(t)) != ov {
            return Err(format!(
                "the indexed picture as of {t} differs from the replay"
            ));
        }
    }
    emit("command", "aggregate_as_of_replay", median(replay), "ms", n);
    let mut now = Vec::new();
    let mut persons = 0;
    for _ in 0..runs {
        let s = Instant::now();
        let ov = overview(&state, &d, &m.roster, on, None);
        now.push(ms(s));
        persons = ov.distinct_registered;
    }
    emit("command", "aggregate_now", median(now), "ms", n);
    emit(
        "command",
        "distinct_registered",
        f64::from(persons),
        "persons",
        n,
    );

    let s = Instant::now();
    let mut index = SafetyIndex::default();
    index.refresh(&state, &m.roster);
    emit("command", "safety_index_build", ms(s), "ms", n);
    let mut search = Vec::new();
    for e in m
        .roster
        .entries()
        .iter()
        .step_by((m.roster.len() / 50).max(1))
        .take(50)
    {
        let s = Instant::now();
        let hits = index.search(
            &state,
            &m.roster,
            e.kana.as_str(),
            Asker::Relative,
            None,
            20,
        );
        search.push(ms(s));
        std::hint::black_box(hits);
    }
    emit_percentiles("command", "safety_search", &search, "ms", n);

    let s = Instant::now();
    let list = evacuees(&state, &d, &m.roster, None, None, on, Audience::Staff);
    let text = evacuees_csv(&list);
    emit("command", "export_csv", ms(s), "ms", n);
    emit("command", "export_rows", list.rows.len() as f64, "rows", n);
    std::hint::black_box(text);
    Ok(())
}

/// The window's path: a build on its own thread while the calling thread gets the replay, then
/// the pictures from the index, then 1,000 late events folded in on the build thread. Each
/// picture is checked against the replay.
#[allow(clippy::too_many_arguments)]
fn window_path(
    state: &State,
    late: &[kazashi_domain::Event],
    d: &kazashi_domain::Deployment,
    roster: &kazashi_domain::Roster,
    on: kazashi_domain::CivilDate,
    runs: usize,
    at: &dyn Fn(usize) -> u64,
    n: usize,
) -> Result<(), String> {
    use kazashi_gui::app::command::as_of_index::{Basis, PastPictures, Source};
    let s = Instant::now();
    let shared = std::hint::black_box(state.share());
    emit("command", "window_snapshot", ms(s), "ms", n);
    let s = Instant::now();
    std::hint::black_box(shared.fold());
    emit("command", "window_refold", ms(s), "ms", n);
    let mut state = state.clone();
    let roster = std::sync::Arc::new(roster.clone());
    let basis = Basis {
        roster: d.roster_hash(),
        manifest: [0; 32],
    };
    let mut past = PastPictures::default();
    // Until the index is back: the first call starts the build, the rest ask again (as frames
    // do) and the first answer is timed.
    let until_indexed = |past: &mut PastPictures, state: &State, first: &str, answer: &str| {
        let s = Instant::now();
        let mut got = std::hint::black_box(past.picture(state, d, &roster, basis, on, at(0)));
        emit("command", first, ms(s), "ms", n);
        // A batch small enough is folded in by the call itself: no build.
        let built = past.building();
        while got.is_none() && past.building() {
            std::thread::sleep(std::time::Duration::from_millis(5));
            got = past.picture(state, d, &roster, basis, on, at(0));
        }
        if got.is_some() {
            emit("command", answer, ms(s), "ms", n);
        }
        while past.building() {
            std::thread::sleep(std::time::Duration::from_millis(5));
            past.poll();
        }
        built
    };
    until_indexed(
        &mut past,
        &state,
        "window_first_picture",
        "window_first_answer",
    );
    let build = past
        .last_build()
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
    emit("command", "window_index_build", build, "ms", n);
    let mut times = Vec::new();
    for i in 0..runs {
        let s = Instant::now();
        let p = past
            .picture(&state, d, &roster, basis, on, at(i))
            .ok_or("no picture once indexed")?;
        times.push(ms(s));
        if p.source != Source::Index {
            return Err(format!("picture {i} came from {:?}", p.source));
        }
        if p.overview != kazashi_domain::overview::overview(&state, d, &roster, on, Some(at(i))) {
            return Err(format!("the window's picture {i} differs from the replay"));
        }
    }
    crate::bench::emit_median_p99("command", "window_as_of", times, "ms", n);
    for e in late {
        state.insert(e.clone());
    }
    if until_indexed(
        &mut past,
        &state,
        "window_late_first_picture",
        "window_late_first_answer",
    ) && let Some(t) = past.last_build()
    {
        emit(
            "command",
            "window_late_catch_up",
            t.as_secs_f64() * 1e3,
            "ms",
            n,
        );
    }
    let p = past
        .picture(&state, d, &roster, basis, on, at(runs / 2))
        .ok_or("no picture after the late events")?;
    if p.source != Source::Index
        || p.overview
            != kazashi_domain::overview::overview(&state, d, &roster, on, Some(at(runs / 2)))
    {
        return Err("after late events the window's picture is not the index's replay".into());
    }
    Ok(())
}
