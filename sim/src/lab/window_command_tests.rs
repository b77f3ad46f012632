//! The command view's pictures of past hours in the real window (kittest) over a signed week of
//! 40,000 events on a real store: while the checkpoint index is made off the window's thread the
//! view says so and keeps drawing frames, each far shorter than the build; every picture — the
//! replay's while it builds, the index's once back, the index's after late events — shows the
//! totals of `overview` as of the same T. A log too large to replay on the window's thread gets
//! its picture of now from the index as well.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use crate::window_rig::{self, harness_of, said};
use eframe::egui;
use egui_kittest::kittest::Queryable;
use kazashi_domain::overview::overview;
use kazashi_domain::{CivilDate, Millis, OperatorId};
use kazashi_gui::app::cards::NoReaders;
use kazashi_gui::app::{Host, Station};
use kazashi_gui::lang::Lang;
use kazashi_node::staff::Role;
use kazashi_node::{KdfParams, ManualClock, Node};
use kazashi_sim::population::shelter_operation;
use kazashi_sim::workload::START_MS;
use kazashi_sync::DeviceKey;
use std::sync::Arc;
use std::time::{Duration, Instant};

const HOUR: Millis = 3_600_000;
const BUILDING: &str = "索引を作成中";

type H = window_rig::H<ManualClock>;

/// The totals line the view shows for the picture as of `hours` back.
fn totals(h: &mut H, now: Millis, hours: u64) -> String {
    let t = now - hours * HOUR;
    let on = CivilDate::jst_of(t).unwrap();
    let ov = h.state_mut().station.host().with(|n| {
        let st = n.station();
        overview(st.state(), st.deployment(), st.roster(), on, Some(t))
    });
    format!(
        "避難者（重複除く）{}人　在所 {}　外出・外泊 {}　要配慮者 {}",
        ov.distinct_registered, ov.totals.present, ov.totals.on_leave, ov.totals.with_care_needs
    )
}

/// The command center's laptop of the first shelter's fleet, a store in `dir` holding
/// `events`, its clock at `now`, unlocked by a lead.
fn headquarters(
    m: &kazashi_sim::Municipality,
    d: &kazashi_domain::Deployment,
    fleet: &kazashi_sim::fleet::Fleet,
    events: Vec<crate::bench_log::Sealed>,
    now: Millis,
    dir: &std::path::Path,
) -> Station<ManualClock> {
    let site = d.sites().find(|s| s.is_shelter()).unwrap().id;
    let key = fleet.nth_key(&site, 0).unwrap();
    let mut node = Node::create(
        &dir.join("station.db"),
        "command",
        KdfParams::FAST_INSECURE,
        DeviceKey::from_seed(key.secret_bytes()),
        &fleet.manifest,
        Arc::new(m.roster.clone()),
        site,
        ManualClock::new(now),
    )
    .unwrap();
    node.bulk_load(events).unwrap();
    let mut station =
        Station::new(Host::Alone(Box::new(node)), Lang::Ja, Box::new(NoReaders)).unwrap();
    station.unlock(OperatorId::new("honbu").unwrap(), Role::Lead);
    station
}

/// The window over `station`, on the command center's dashboard (F7).
fn dashboard(station: Station<ManualClock>) -> H {
    let mut h: H = harness_of(station);
    h.run_steps(3);
    h.key_press(egui::Key::F7);
    h.run_steps(3);
    assert!(said(&h, "本部ダッシュボード"));
    h
}

fn slide(h: &mut H, hours: u64) {
    h.get_by_role(egui::accesskit::Role::Slider)
        .set_value_accesskit(hours as f64);
}

#[test]
fn past_pictures_come_from_an_index_built_while_the_window_keeps_drawing() {
    let n = 40_000;
    let m = crate::bench::town(n, 3, false).unwrap().0;
    let d = shelter_operation(&m, 5).unwrap();
    let (fleet, sealed) = crate::bench_log::signed_week(&m, &d, n, 3).unwrap();
    let now = START_MS + 7 * 24 * HOUR;
    // Check-ins and the rest before two days back, one in every 400, arrive late.
    let cut = now - 48 * HOUR;
    let (late, early): (Vec<_>, Vec<_>) = sealed
        .into_iter()
        .enumerate()
        .partition(|(i, (e, _))| i % 400 == 7 && e.at().wall_ms <= cut);
    let late: Vec<_> = late.into_iter().map(|(_, s)| s).collect();
    let early: Vec<_> = early.into_iter().map(|(_, s)| s).collect();
    assert!(late.len() > 20, "{} late", late.len());
    let dir = tempfile::tempdir().unwrap();
    let station = headquarters(&m, &d, &fleet, early, now, dir.path());
    let mut h = dashboard(station);

    // Two days back: the first frame copies the state and starts the build; the frames after
    // it draw while the index is made.
    slide(&mut h, 48);
    let started = Instant::now();
    let mut frames = Vec::new();
    let mut noted = 0;
    while frames.len() < 3 || said(&h, BUILDING) {
        assert!(started.elapsed() < Duration::from_secs(600), "never built");
        let t = Instant::now();
        h.step();
        frames.push(t.elapsed());
        if said(&h, BUILDING) {
            noted += 1;
            // The replay's picture meanwhile, as of the same T.
            if noted == 1 {
                let want = totals(&mut h, now, 48);
                assert!(said(&h, &want), "the replay's picture: {want}");
            }
        }
    }
    let build = started.elapsed();
    // The frame that starts the build (the copy and the replay) left out.
    let mut sorted = frames.clone();
    sorted.sort_unstable();
    sorted.pop();
    let after_first = sorted.last().copied().unwrap_or_default();
    eprintln!(
        "build {build:?} over {} frames; the longest {:?}, the next {after_first:?}",
        frames.len(),
        frames.iter().max()
    );
    assert!(noted >= 3, "the building note in {noted} frames");
    assert!(
        after_first * 4 < build,
        "a frame took {after_first:?} of a {build:?} build"
    );
    // Back: pictures from the index, equal to the replay's.
    for hours in [47, 48, 30, 29] {
        slide(&mut h, hours);
        h.run_steps(2);
        let start = Instant::now();
        // 30 h back is the next day (ages counted on it): its own index, made first (29 h back
        // is from it).
        while said(&h, BUILDING) {
            assert!(start.elapsed() < Duration::from_secs(600), "never built");
            std::thread::sleep(Duration::from_millis(20));
            h.step();
        }
        let want = totals(&mut h, now, hours);
        assert!(said(&h, &want), "{hours} h back: {want}");
    }
    // Late events before T from a peer (appended to the log): folded in by the next picture
    // on the window's thread, and the picture moves.
    slide(&mut h, 48);
    h.run_steps(2);
    let before = totals(&mut h, now, 48);
    let mut late = late;
    let rest = late.split_off(late.len() / 2);
    h.state_mut().station.host().with(|n| {
        for (_, envelope) in &late {
            assert!(n.import(envelope, "peer").unwrap());
        }
    });
    h.run_steps(2);
    let after = totals(&mut h, now, 48);
    assert_ne!(before, after, "the late events change the picture");
    assert!(said(&h, &after), "after late events: {after}");
    assert!(
        !said(&h, BUILDING),
        "a few late events are folded in by the frame"
    );
    // The rest loaded in bulk: the node folds its log again (as on a new manifest), so the index
    // is made again off the window's thread, the replay's picture shown meanwhile.
    h.state_mut()
        .station
        .host()
        .with(|n| n.bulk_load(rest))
        .unwrap();
    h.run_steps(2);
    assert!(said(&h, BUILDING), "a log folded again is indexed again");
    let want = totals(&mut h, now, 48);
    assert_ne!(want, after);
    assert!(said(&h, &want), "the replay's picture: {want}");
    let start = Instant::now();
    while said(&h, BUILDING) {
        assert!(start.elapsed() < Duration::from_secs(600), "never built");
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    slide(&mut h, 47);
    h.run_steps(2);
    slide(&mut h, 48);
    h.run_steps(2);
    assert!(!said(&h, BUILDING));
    assert!(said(&h, &want), "the index's picture again: {want}");
}

/// A log too large to replay on the window's thread: its picture of now comes from the index
/// too, made off the thread. Until it is back the view says so (and shows no totals); then it
/// shows the replay's totals of now; check-ins arriving later move it, frame by frame.
#[test]
fn a_large_logs_picture_of_now_comes_from_the_index() {
    const PENDING: &str = "その時刻の集計を作成中";
    let n = 10_000;
    let m = crate::bench::town(n, 4, false).unwrap().0;
    let d = shelter_operation(&m, 5).unwrap();
    let (fleet, sealed) = crate::bench_log::signed_week(&m, &d, n, 4).unwrap();
    // The laptop's clock a minute past the last event.
    let now = sealed.iter().map(|(e, _)| e.at().wall_ms).max().unwrap() + 60_000;
    assert!(now > START_MS);
    // Thirty check-ins of the last day arrive after the first picture.
    let mut late_left = 30;
    let (late, early): (Vec<_>, Vec<_>) = sealed.into_iter().partition(|(e, _)| {
        let take = late_left > 0
            && e.at().wall_ms > now - 24 * HOUR
            && matches!(
                e.body(),
                kazashi_domain::event::EventBody::ShelterCheckIn { .. }
            );
        if take {
            late_left -= 1;
        }
        take
    });
    assert_eq!(late.len(), 30);
    let dir = tempfile::tempdir().unwrap();
    let mut station = headquarters(&m, &d, &fleet, early, now, dir.path());
    // Every log here is large; the builds wait for the test's word.
    let (open, gate) = std::sync::mpsc::channel();
    let past = station.command_past_pictures();
    past.replay_inline_up_to(1_000);
    past.hold_builds(gate);
    let mut h = dashboard(station);
    // Now (no hours back): nothing counted on the window's thread, and the view says why.
    let want = totals(&mut h, now, 0);
    assert!(said(&h, PENDING), "the picture of now is being made");
    assert!(!said(&h, &want), "no totals before the index is back");
    // The same totals as the replay of the whole log at this moment.
    let replay_now = h.state_mut().station.host().with(|n| {
        let st = n.station();
        let on = CivilDate::jst_of(now).unwrap();
        overview(st.state(), st.deployment(), st.roster(), on, None)
    });
    assert!(
        want.contains(&format!(
            "避難者（重複除く）{}人",
            replay_now.distinct_registered
        )) && want.contains(&format!("在所 {}", replay_now.totals.present)),
        "{want}"
    );
    for _ in 0..8 {
        open.send(()).unwrap();
    }
    let start = Instant::now();
    while said(&h, PENDING) || said(&h, BUILDING) {
        assert!(start.elapsed() < Duration::from_secs(600), "never built");
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    assert!(said(&h, &want), "the index's picture of now: {want}");
    // Check-ins from a peer: the picture of now moves without a new build.
    h.state_mut().station.host().with(|n| {
        for (_, envelope) in &late {
            assert!(n.import(envelope, "peer").unwrap());
        }
    });
    h.run_steps(2);
    let after = totals(&mut h, now, 0);
    assert_ne!(after, want, "thirty check-ins change the picture");
    assert!(!said(&h, PENDING));
    assert!(said(&h, &after), "after the check-ins: {after}");
}
