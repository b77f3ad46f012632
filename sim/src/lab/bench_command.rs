//! `kazashi-lab bench command --scale N`: the command center's picture over N merged events of a
//! shelter week (the town sized as for every other benchmark):
//!
//! - `aggregate_as_of`: every site's counts (distinct persons, care needs, outside support,
//!   capacity), latest report and staleness recomputed as of a time T, for T spread over the
//!   week (median and p99 of the runs; target ≤ 200 ms at 1 M events);
//! - `aggregate_now`: the same for the latest state;
//! - `safety_index_build`: folding everyone the log knows once for safety confirmation;
//! - `safety_search`: one safety-confirmation query over that index (p50/p99);
//! - `export_csv`: the overall evacuee list as CSV.

use crate::bench::{emit, emit_percentiles, median, ms, town};
use kazashi_domain::State;
use kazashi_domain::overview::overview;
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
    let state = State::from_events(events);
    let on = m.today;
    let runs = args.runs.max(3);
    let mut as_of = Vec::new();
    for i in 0..runs {
        let t = times
            .get(times.len() * (i + 1) / (runs + 1))
            .copied()
            .unwrap_or(0);
        let s = Instant::now();
        let ov = overview(&state, &d, &m.roster, on, Some(t));
        as_of.push(ms(s));
        std::hint::black_box(ov);
    }
    emit("command", "aggregate_as_of", median(as_of.clone()), "ms", n);
    emit(
        "command",
        "aggregate_as_of_p99",
        crate::bench_log::percentile(as_of, 0.99),
        "ms",
        n,
    );
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
