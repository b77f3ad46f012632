//! The command center's picture, safety confirmation and the exports, on the merged log:
//!
//! - the picture as of any T equals the picture of the log cut at T;
//! - turnout over time ends at the ballot tallies;
//! - safety search honours each person's consent, and a DV-blocked person — or anyone a
//!   same-as link joins to one — is absent from every search and every export, for everyone;
//! - the CSV exports read back in UTF-8 with BOM and in CP932, the PFIF export validates
//!   against the PFIF 1.4 schema (xmllint), the PDF's text is there (pdftotext).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use kazashi_domain::event::{Disclosure, EventBody, IdMethod, Members, WalkInPerson};
use kazashi_domain::ids::{DeviceId, HouseholdRef, OperatorId, PersonRef, SiteId};
use kazashi_domain::overview::{OverviewIndex, overview, turnout_series};
use kazashi_domain::roster::Sex;
use kazashi_domain::safety::{Asker, SafetyIndex, safety_search};
use kazashi_domain::text::PersonName;
use kazashi_domain::{CivilDate, Deployment, Roster, State};
use kazashi_node::export::{
    Audience, evacuees, evacuees_csv, evacuees_pdf, for_excel, pfif, reconciliation_csv,
    status_reports_csv, turnout_csv,
};
use kazashi_node::roster_csv::WriteEncoding;
use kazashi_node::{ManualClock, Station};
use kazashi_sim::population::{PopulationSpec, election, generate, shelter_operation};
use kazashi_sim::workload::{START_MS, election_votes, household_card, shelter_week};
use std::sync::Arc;

fn today() -> CivilDate {
    CivilDate::new(2026, 9, 1).unwrap()
}

#[test]
fn the_picture_as_of_t_is_the_picture_of_the_log_cut_at_t() {
    let m = generate(PopulationSpec {
        households: 400,
        seed: 11,
        today: today(),
        voters: false,
    })
    .unwrap();
    let d = shelter_operation(&m, 5).unwrap();
    let events = shelter_week(&m, &d, 4000, 3);
    let full = State::from_events(events.clone());
    let mut times: Vec<u64> = events.iter().map(|e| e.at().wall_ms).collect();
    times.sort_unstable();
    for q in [1, 4, 7, 9] {
        let t = times[times.len() * q / 10];
        let cut = State::from_events(events.iter().filter(|e| e.at().wall_ms <= t).cloned());
        let a = overview(&full, &d, &m.roster, today(), Some(t));
        let b = overview(&cut, &d, &m.roster, today(), None);
        assert_eq!(a.sites, b.sites, "as of {t}");
        assert_eq!(a.totals, b.totals);
        assert_eq!(a.distinct_registered, b.distinct_registered);
        assert!(a.totals.registered() > 0);
        // Distinct persons never exceed the sum over sites.
        assert!(a.distinct_registered <= a.totals.registered());
    }
    // The window's path (checkpoints at least 97 events apart: about 40 over the week) gives
    // the same pictures, also after late events patch the checkpoints.
    let mut index = OverviewIndex::with_interval(97);
    let held: Vec<_> = events.iter().skip(5).step_by(50).cloned().collect();
    let mut growing = State::from_events(
        events
            .iter()
            .enumerate()
            .filter(|(i, _)| *i < 5 || (i - 5) % 50 != 0)
            .map(|(_, e)| e.clone()),
    );
    for q in [2, 5, 8] {
        let t = times[times.len() * q / 10];
        assert_eq!(
            index.overview(&growing, &d, &m.roster, today(), Some(t)),
            overview(&growing, &d, &m.roster, today(), Some(t)),
            "as of {t}"
        );
    }
    for e in held {
        growing.insert(e);
    }
    for q in [1, 3, 5, 9] {
        let t = times[times.len() * q / 10];
        assert_eq!(
            index.overview(&growing, &d, &m.roster, today(), Some(t)),
            overview(&full, &d, &m.roster, today(), Some(t)),
            "after late events, as of {t}"
        );
    }
    assert!(
        index.checkpoints() > 10,
        "{} checkpoints",
        index.checkpoints()
    );
    // The picture moves: early and late differ.
    let early = overview(&full, &d, &m.roster, today(), Some(times[times.len() / 10]));
    let late = overview(&full, &d, &m.roster, today(), None);
    assert_ne!(early.totals, late.totals);
    // Staleness: every shelter that wrote was heard from, at its last event.
    for s in &late.sites {
        let last = events
            .iter()
            .filter(|e| e.site() == s.site)
            .map(|e| e.at())
            .max();
        assert_eq!(s.last_heard, last, "{}", s.site);
    }
    // The status reports CSV has a row per shelter and reads back.
    let text = status_reports_csv(&d, &late);
    let rows = read_csv(&text);
    assert_eq!(rows.len() - 1, d.sites().filter(|s| s.is_shelter()).count());
}

#[test]
fn turnout_over_time_ends_at_the_tallies() {
    let m = generate(PopulationSpec {
        households: 300,
        seed: 12,
        today: today(),
        voters: true,
    })
    .unwrap();
    let d = election(&m, CivilDate::new(2026, 12, 6).unwrap()).unwrap();
    let (events, _) = election_votes(&m, &d, 0.5, 3, 4, &|i, _, k| {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&(i as u64).to_le_bytes());
        b[8] = k;
        DeviceId(b)
    });
    let st = State::from_events(events.clone());
    let from = events.iter().map(|e| e.at().wall_ms).min().unwrap();
    let to = events.iter().map(|e| e.at().wall_ms).max().unwrap();
    let series = turnout_series(&st, from, to, 3_600_000);
    let ov = overview(&st, &d, &m.roster, today(), None);
    assert!(ov.votes.early + ov.votes.election_day > 0);
    for s in ov.sites.iter().filter(|s| s.votes.is_some()) {
        let t = s.votes.unwrap();
        let last = series.get(&s.site).and_then(|v| v.last()).copied();
        let (e, day) = last.map(|(_, e, d)| (e, d)).unwrap_or((0, 0));
        assert_eq!((e, day), (t.early, t.election_day), "{}", s.site);
        // Cumulative: never falls.
        if let Some(v) = series.get(&s.site) {
            assert!(v.windows(2).all(|w| w[0].1 <= w[1].1 && w[0].2 <= w[1].2));
        }
    }
    let csv = turnout_csv(&d, &st, from, to);
    assert!(read_csv(&csv).len() > 1);
    let rec = reconciliation_csv(&d, &ov);
    assert_eq!(read_csv(&rec)[0][4], "差");
}

/// A shelter with four households checked in: one agreed to be published, one to relatives
/// only, one has no card (no consent), one is under the DV block; and a walk-in who agreed to
/// be published but is the same person as a DV-blocked resident.
struct Shelter {
    roster: Arc<Roster>,
    deployment: Arc<Deployment>,
    station: Station<ManualClock>,
    public: Vec<String>,
    relatives: Vec<String>,
    no_card: Vec<String>,
    dv: Vec<String>,
    dv_walk_in: String,
}

fn shelter() -> Shelter {
    let m = generate(PopulationSpec {
        households: 80,
        seed: 21,
        today: today(),
        voters: false,
    })
    .unwrap();
    let d = Arc::new(shelter_operation(&m, 3).unwrap());
    let roster = Arc::new(m.roster);
    let site: SiteId = d.sites().find(|s| s.is_shelter()).unwrap().id;
    let clock = ManualClock::new(START_MS);
    let mut st = Station::new(
        d.clone(),
        roster.clone(),
        DeviceId([1; 32]),
        site,
        clock.clone(),
    )
    .unwrap();
    let op = OperatorId::new("uketsuke").unwrap();
    // Households of at least two, with distinct names (so searches are unambiguous).
    let mut households: Vec<_> = roster.entries().iter().map(|e| e.household).collect();
    households.dedup();
    let mut picked = Vec::new();
    for h in households {
        let mem = roster.household(&h);
        if mem.len() >= 2 {
            picked.push(h);
        }
        if picked.len() == 4 {
            break;
        }
    }
    let mut names = Vec::new();
    for (i, h) in picked.iter().enumerate() {
        let mem = roster.household(h);
        let people: Vec<PersonRef> = mem.iter().map(|e| PersonRef::Roster(e.person)).collect();
        clock.advance(60_000);
        st.record(
            op,
            EventBody::ShelterCheckIn {
                household: Some(HouseholdRef::Roster(*h)),
                members: Members::new(people.clone()).unwrap(),
                method: IdMethod::Lookup,
            },
        )
        .unwrap();
        let (disclosure, dv_block) = match i {
            0 => (Disclosure::Public, false),
            1 => (Disclosure::Relatives, false),
            2 => (Disclosure::Public, false), // no card is written for this one
            _ => (Disclosure::Public, true),
        };
        if i != 2 {
            clock.advance(60_000);
            st.record(
                op,
                EventBody::HouseholdCard {
                    household: HouseholdRef::Roster(*h),
                    card: Box::new(household_card(&people, disclosure, dv_block)),
                },
            )
            .unwrap();
        }
        names.push(
            mem.iter()
                .map(|e| e.name.as_str().to_owned())
                .collect::<Vec<_>>(),
        );
    }
    // A walk-in (published) who is one of the DV-blocked residents under another record.
    let dv_member = roster.household(&picked[3])[0].clone();
    clock.advance(60_000);
    let reg = st
        .record(
            op,
            EventBody::WalkInRegistration {
                members: vec![WalkInPerson {
                    name: PersonName::new("仮名 避難者").unwrap(),
                    kana: None,
                    birth_date: Some(dv_member.birth_date),
                    sex: Sex::Female,
                    address: None,
                    care_needs: Default::default(),
                }],
                home_municipality: None,
            },
        )
        .unwrap();
    let walk_in = PersonRef::WalkIn {
        registration: reg.id(),
        index: 0,
    };
    clock.advance(60_000);
    st.record(
        op,
        EventBody::ShelterCheckIn {
            household: Some(HouseholdRef::WalkIn(reg.id())),
            members: Members::new(vec![walk_in]).unwrap(),
            method: IdMethod::Lookup,
        },
    )
    .unwrap();
    clock.advance(60_000);
    st.record(
        op,
        EventBody::HouseholdCard {
            household: HouseholdRef::WalkIn(reg.id()),
            card: Box::new(household_card(&[walk_in], Disclosure::Public, false)),
        },
    )
    .unwrap();
    clock.advance(60_000);
    st.record(
        op,
        EventBody::SameAs {
            a: walk_in,
            b: PersonRef::Roster(dv_member.person),
            note: None,
        },
    )
    .unwrap();
    let mut names = names.into_iter();
    Shelter {
        roster,
        deployment: d,
        station: st,
        public: names.next().unwrap(),
        relatives: names.next().unwrap(),
        no_card: names.next().unwrap(),
        dv: names.next().unwrap(),
        dv_walk_in: "仮名 避難者".into(),
    }
}

fn found(s: &Shelter, name: &str, asker: Asker) -> bool {
    !safety_search(s.station.state(), &s.roster, name, asker, None, 50)
        .iter()
        .filter(|a| a.name == name)
        .collect::<Vec<_>>()
        .is_empty()
}

/// A kept index folds only what is new, yet answers exactly as a fresh search: a walk-in
/// registered after the index was built is found once it is refreshed, and the DV block
/// still hides its cluster.
#[test]
fn a_kept_safety_index_learns_new_records_and_answers_as_a_fresh_search() {
    let mut s = shelter();
    let mut index = SafetyIndex::default();
    index.refresh(s.station.state(), &s.roster);
    let before = index.len();
    assert!(before > 0);
    let op = OperatorId::new("op-late").unwrap();
    let reg = s
        .station
        .record(
            op,
            EventBody::WalkInRegistration {
                members: vec![WalkInPerson {
                    name: PersonName::new("後着 花子").unwrap(),
                    kana: None,
                    birth_date: None,
                    sex: Sex::Female,
                    address: None,
                    care_needs: Default::default(),
                }],
                home_municipality: None,
            },
        )
        .unwrap();
    let late = PersonRef::WalkIn {
        registration: reg.id(),
        index: 0,
    };
    for body in [
        EventBody::ShelterCheckIn {
            household: Some(HouseholdRef::WalkIn(reg.id())),
            members: Members::new(vec![late]).unwrap(),
            method: IdMethod::Lookup,
        },
        EventBody::HouseholdCard {
            household: HouseholdRef::WalkIn(reg.id()),
            card: Box::new(household_card(&[late], Disclosure::Public, false)),
        },
    ] {
        s.station.record(op, body).unwrap();
    }
    let state = s.station.state();
    // Not refreshed: the newcomer is unknown to the index.
    assert!(
        index
            .search(state, &s.roster, "後着", Asker::Public, None, 50)
            .is_empty()
    );
    index.refresh(state, &s.roster);
    assert_eq!(index.len(), before + 1);
    for q in [
        "後着 花子",
        &s.public[0],
        &s.relatives[0],
        &s.dv[0],
        "仮名 避難者",
    ] {
        for a in [Asker::Relative, Asker::Acquaintance, Asker::Public] {
            assert_eq!(
                index.search(state, &s.roster, q, a, None, 50),
                safety_search(state, &s.roster, q, a, None, 50),
                "{q} {a:?}"
            );
        }
    }
    assert_eq!(
        index.search(state, &s.roster, "後着", Asker::Public, None, 50)[0].person,
        late
    );
}

#[test]
fn safety_search_honours_consent_and_never_discloses_the_dv_blocked() {
    let s = shelter();
    for n in &s.public {
        for a in [Asker::Relative, Asker::Acquaintance, Asker::Public] {
            assert!(found(&s, n, a), "{n} public, {a:?}");
        }
    }
    for n in &s.relatives {
        assert!(found(&s, n, Asker::Relative));
        assert!(!found(&s, n, Asker::Acquaintance));
        assert!(!found(&s, n, Asker::Public));
    }
    for n in s.no_card.iter().chain(&s.dv).chain([&s.dv_walk_in]) {
        for a in [Asker::Relative, Asker::Acquaintance, Asker::Public] {
            assert!(!found(&s, n, a), "{n} disclosed to {a:?}");
        }
    }
    // The refusal is the answer for nobody at all: an empty list, nothing else.
    let nobody = safety_search(
        s.station.state(),
        &s.roster,
        "存在しない 名前",
        Asker::Relative,
        None,
        50,
    );
    let blocked = safety_search(
        s.station.state(),
        &s.roster,
        &s.dv[0],
        Asker::Relative,
        None,
        50,
    );
    assert_eq!(nobody, blocked);
    // Variant-tolerant: the reading in katakana finds a published person too.
    let entry = s
        .roster
        .entries()
        .iter()
        .find(|e| e.name.as_str() == s.public[0])
        .unwrap();
    let kata: String = entry
        .kana
        .as_str()
        .chars()
        .map(|c| match c {
            'ぁ'..='ゖ' => char::from_u32(c as u32 + 0x60).unwrap_or(c),
            c => c,
        })
        .collect();
    assert!(
        safety_search(s.station.state(), &s.roster, &kata, Asker::Public, None, 50)
            .iter()
            .any(|a| a.name == s.public[0])
    );
}

fn read_csv(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn exports_leave_out_the_dv_blocked_and_honour_consent() {
    let s = shelter();
    let st = s.station.state();
    let staff = evacuees(
        st,
        &s.deployment,
        &s.roster,
        None,
        None,
        today(),
        Audience::Staff,
    );
    let public = evacuees(
        st,
        &s.deployment,
        &s.roster,
        None,
        None,
        today(),
        Audience::Public,
    );
    let names = |l: &kazashi_node::export::EvacueeList| {
        l.rows.iter().map(|r| r.name.clone()).collect::<Vec<_>>()
    };
    for n in s.public.iter().chain(&s.relatives).chain(&s.no_card) {
        assert!(names(&staff).contains(n), "{n} missing from the staff list");
    }
    for n in s.dv.iter().chain([&s.dv_walk_in]) {
        assert!(!names(&staff).contains(n) && !names(&public).contains(n));
    }
    assert_eq!(staff.left_out.dv_block as usize, s.dv.len() + 1);
    assert_eq!(names(&public).len(), s.public.len());
    assert_eq!(
        public.left_out.no_consent as usize,
        s.relatives.len() + s.no_card.len()
    );
    assert!(
        public
            .rows
            .iter()
            .all(|r| r.address.is_empty() && r.birth_date.is_none())
    );
    assert!(staff.left_out.lines().iter().any(|l| l.contains("DV")));

    // CSV: both encodings read back to the same rows; nothing of the DV-blocked in the bytes.
    let text = evacuees_csv(&staff);
    let mut lo = staff.left_out.clone();
    let bom = for_excel(&text, WriteEncoding::Utf8Bom, &mut lo);
    let sjis = for_excel(&text, WriteEncoding::Cp932, &mut lo);
    assert!(bom.starts_with(b"\xEF\xBB\xBF"));
    let back_utf8 = read_csv(std::str::from_utf8(&bom[3..]).unwrap());
    let (decoded, _, bad) = encoding_rs::SHIFT_JIS.decode(&sjis);
    assert!(!bad);
    let back_sjis = read_csv(&decoded);
    assert_eq!(back_utf8.len(), staff.rows.len() + 1);
    assert_eq!(back_utf8[0][1], "氏名");
    if lo.cp932_replaced == 0 {
        assert_eq!(back_sjis, back_utf8);
    } else {
        assert_eq!(back_sjis.len(), back_utf8.len());
    }
    for n in s.dv.iter().chain([&s.dv_walk_in]) {
        assert!(!contains(&bom, n));
        assert!(!text.contains(n.as_str()));
    }

    // PFIF 1.4: valid against the schema, published people only.
    let xml = pfif(
        &public,
        "kazashi.example.lg.jp",
        "かざし市災害対策本部",
        START_MS,
    );
    for n in s
        .relatives
        .iter()
        .chain(&s.no_card)
        .chain(&s.dv)
        .chain([&s.dv_walk_in])
    {
        assert!(!xml.contains(n.as_str()), "{n} in PFIF");
    }
    for n in &s.public {
        assert!(xml.contains(n.as_str()));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pfif.xml");
    std::fs::write(&path, &xml).unwrap();
    let xsd = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/pfif-1.4.xsd");
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--schema", xsd, path.to_str().unwrap()])
        .output()
        .unwrap_or_else(|e| {
            panic!("xmllint missing ({e}): apt-get install libxml2-utils (script/test does)")
        });
    assert!(
        out.status.success(),
        "PFIF invalid: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A staff list is never written as PFIF.
    assert!(!pfif(&staff, "x.example", "x", START_MS).contains("<pfif:person>"));

    // PDF: the text is there, the DV-blocked are not.
    let font = std::fs::read("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf")
        .expect("fonts-ipaexfont-gothic (script/test installs it)");
    let pdf = evacuees_pdf(&font, "避難者名簿", &staff).unwrap();
    let p = dir.path().join("list.pdf");
    std::fs::write(&p, &pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args([p.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (poppler-utils)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("避難者名簿"));
    for n in s.public.iter().chain(&s.relatives) {
        let family = n.split(' ').next().unwrap();
        assert!(text.contains(family), "{n} not in the PDF:\n{text}");
    }
    for n in s.dv.iter().chain([&s.dv_walk_in]) {
        assert!(!text.contains(n.as_str()));
    }
    assert!(text.contains("DV"), "the PDF says what it left out");
}

/// The window's pictures of past hours (`kazashi_gui::app::command::as_of_index`): the replay
/// while the checkpoint index is made off the calling thread — held there by a gate, so a call
/// that waited for it would hang the test —, the index once it is back; equal to the replay
/// before, after, and after late events, a few folded in by the call itself and a batch too
/// large for a frame folded on the build thread while the replay answers; a new manifest makes
/// the index again.
#[test]
fn the_windows_past_pictures_come_from_an_index_made_off_its_thread() {
    use kazashi_domain::state::CountsIndex;
    use kazashi_gui::app::command::as_of_index::{Basis, INLINE_PATCHES, PastPictures, Source};
    use std::time::{Duration, Instant};
    let m = generate(PopulationSpec {
        households: 400,
        seed: 5,
        today: today(),
        voters: false,
    })
    .unwrap();
    let d = shelter_operation(&m, 5).unwrap();
    let events = shelter_week(&m, &d, 6000, 9);
    let mut times: Vec<u64> = events.iter().map(|e| e.at().wall_ms).collect();
    times.sort_unstable();
    let ts: Vec<u64> = [1, 3, 5, 7, 9]
        .iter()
        .map(|q| times[times.len() * q / 10])
        .collect();
    // Every 40th event arrives late.
    let (late, early): (Vec<_>, Vec<_>) = events
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 40 == 7);
    let mut late: Vec<_> = late.into_iter().map(|(_, e)| e).collect();
    let mut state = State::from_events(early.into_iter().map(|(_, e)| e));
    let roster = Arc::new(m.roster.clone());
    let mut basis = Basis {
        roster: d.roster_hash(),
        manifest: [1; 32],
    };
    let mut past = PastPictures::with_interval(97);
    let (open, gate) = std::sync::mpsc::channel();
    past.hold_builds(gate);
    let check = |past: &mut PastPictures, state: &State, basis: Basis, want: Source| {
        for &t in &ts {
            let p = past
                .picture(state, &d, &roster, basis, today(), t)
                .expect("a small log is replayed on the window's thread");
            assert_eq!(p.source, want, "as of {t}");
            assert_eq!(
                p.overview,
                overview(state, &d, &m.roster, today(), Some(t)),
                "as of {t} from {want:?}"
            );
        }
    };
    let until_indexed = |past: &mut PastPictures, state: &State, basis: Basis| {
        let start = Instant::now();
        while past
            .picture(state, &d, &roster, basis, today(), ts[0])
            .map(|p| p.source)
            != Some(Source::Index)
        {
            assert!(start.elapsed() < Duration::from_secs(300), "never indexed");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // The build cannot start: every call returns, with the replay.
    check(&mut past, &state, basis, Source::Replay { building: true });
    assert!(past.building());
    open.send(()).unwrap();
    until_indexed(&mut past, &state, basis);
    assert!(!past.building());
    check(&mut past, &state, basis, Source::Index);
    // Three late events: folded in by the call itself.
    for e in late.drain(..3) {
        state.insert(e);
    }
    check(&mut past, &state, basis, Source::Index);
    // The rest: more than a frame may fold, so the index is caught up on the build thread over
    // a new copy (held again) while the replay answers.
    let mut probe = CountsIndex::with_interval(today(), 97);
    probe.fold_in(&state, &m.roster);
    // A copy shares the arena's blocks; appends to the original leave it as it was.
    let copy = state.clone();
    let copied: Vec<_> = copy.events_unordered().map(|e| e.id()).collect();
    for e in late.drain(..) {
        state.insert(e);
    }
    assert_eq!(
        copy.events_unordered().map(|e| e.id()).collect::<Vec<_>>(),
        copied
    );
    assert!(state.len() > copy.len());
    let pending = probe.pending(&state, &m.roster).unwrap();
    assert!(pending.patches > INLINE_PATCHES, "{pending:?}");
    check(&mut past, &state, basis, Source::Replay { building: true });
    open.send(()).unwrap();
    until_indexed(&mut past, &state, basis);
    check(&mut past, &state, basis, Source::Index);
    assert_eq!(
        past.picture(&state, &d, &roster, basis, today(), ts[2])
            .unwrap()
            .overview,
        overview(
            &State::from_events(events.clone()),
            &d,
            &m.roster,
            today(),
            Some(ts[2])
        )
    );
    // Another manifest: the index is made again, the replay answering meanwhile.
    basis.manifest = [2; 32];
    check(&mut past, &state, basis, Source::Replay { building: true });
    open.send(()).unwrap();
    until_indexed(&mut past, &state, basis);
    check(&mut past, &state, basis, Source::Index);
    assert!(past.last_build().is_some());
    // The log folded again (as the node does on a new manifest or a bulk load: the same events
    // in the agreed order, the first and the last in place): not the state indexed, grown, so
    // the index is made again. A copy is the state indexed.
    // Built so that the arenas differ only in the middle: two events from the middle and the
    // last arrive after the rest.
    let mut in_order: Vec<_> = state.events_in_order().into_iter().cloned().collect();
    let last = in_order.pop().unwrap();
    let middle = in_order.len() / 2;
    let two: Vec<_> = in_order.drain(middle..middle + 2).collect();
    let mut grown = State::from_events(in_order);
    for e in two.into_iter().chain([last]) {
        grown.insert(e);
    }
    let refolded = State::from_events(grown.events_in_order().into_iter().cloned());
    let mut probe = CountsIndex::with_interval(today(), 97);
    probe.fold_in(&grown, &m.roster);
    assert_eq!(
        probe.pending(&grown.clone(), &m.roster).map(|p| p.events),
        Some(0)
    );
    assert_eq!(probe.pending(&refolded, &m.roster), None);
    check(
        &mut past,
        &refolded,
        basis,
        Source::Replay { building: true },
    );
    open.send(()).unwrap();
    until_indexed(&mut past, &refolded, basis);
    check(&mut past, &refolded, basis, Source::Index);
}

/// A log too large to replay on the window's thread: the call that starts the build returns at
/// once with no picture (the build held by a gate, so a call that replayed or waited would be
/// seen), the build thread's replay of the hour asked comes back first — for that hour only —
/// and then the index; both equal the replay. Late events too many for a frame: no picture
/// until the build thread has them.
#[test]
fn a_large_logs_past_picture_is_made_off_the_windows_thread() {
    use kazashi_gui::app::command::as_of_index::{Basis, PastPictures, Source};
    use std::time::{Duration, Instant};
    let m = generate(PopulationSpec {
        households: 300,
        seed: 8,
        today: today(),
        voters: false,
    })
    .unwrap();
    let d = shelter_operation(&m, 8).unwrap();
    let events = shelter_week(&m, &d, 5000, 4);
    let mut times: Vec<u64> = events.iter().map(|e| e.at().wall_ms).collect();
    times.sort_unstable();
    let (t, other) = (times[times.len() / 3], times[times.len() * 2 / 3]);
    let (late, early): (Vec<_>, Vec<_>) = events
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 25 == 3);
    let mut state = State::from_events(early.into_iter().map(|(_, e)| e));
    let roster = Arc::new(m.roster.clone());
    let basis = Basis {
        roster: d.roster_hash(),
        manifest: [3; 32],
    };
    let mut past = PastPictures::with_interval(61);
    // Every log here is "large".
    past.replay_inline_up_to(100);
    let (open, gate) = std::sync::mpsc::channel();
    past.hold_builds(gate);
    let wait_for = |past: &mut PastPictures, state: &State, at: u64| {
        let start = Instant::now();
        loop {
            if let Some(p) = past.picture(state, &d, &roster, basis, today(), at) {
                return p;
            }
            assert!(start.elapsed() < Duration::from_secs(300), "no picture");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    assert!(
        past.picture(&state, &d, &roster, basis, today(), t)
            .is_none()
    );
    assert!(past.building());
    // Asked again while the build is held: still nothing, and no second build.
    assert!(
        past.picture(&state, &d, &roster, basis, today(), t)
            .is_none()
    );
    open.send(()).unwrap();
    let first = wait_for(&mut past, &state, t);
    assert_eq!(
        first.overview,
        overview(&state, &d, &m.roster, today(), Some(t))
    );
    if first.source != Source::Index {
        assert_eq!(first.source, Source::Replay { building: true });
        // The early replay serves only the hour it was made for.
        if past.building() {
            assert!(
                past.picture(&state, &d, &roster, basis, today(), other)
                    .is_none_or(|p| p.source == Source::Index)
            );
        }
    }
    let second = wait_for(&mut past, &state, other);
    assert_eq!(second.source, Source::Index);
    assert_eq!(
        second.overview,
        overview(&state, &d, &m.roster, today(), Some(other))
    );
    // Late events, too many for a frame: nothing until the build thread has them.
    for (_, e) in late {
        state.insert(e);
    }
    assert!(
        past.picture(&state, &d, &roster, basis, today(), other)
            .is_none()
    );
    assert!(past.building());
    open.send(()).unwrap();
    let caught_up = wait_for(&mut past, &state, other);
    assert_eq!(
        caught_up.overview,
        overview(
            &State::from_events(events.clone()),
            &d,
            &m.roster,
            today(),
            Some(other)
        )
    );
}
