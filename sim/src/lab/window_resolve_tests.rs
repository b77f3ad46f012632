//! Duplicates resolved in the window (issue 26 req. 2), on the demo city's shelter S001: a
//! duplicate alert's records side by side with the score and reasons, linked (the counts drop
//! by one), marked distinct (silenced), the link retracted (the counts come back); the entry
//! warning naming the other shelter, for a walk-in and for a lookup; event kinds in the
//! window's language.

use super::*;
use kazashi_domain::event::{IdMethod, Members, WalkInPerson};
use kazashi_domain::ids::{OperatorId, PersonRef, SiteId};
use kazashi_domain::text::{Address, KanaReading, PersonName};

fn lead() -> OperatorId {
    OperatorId::new("sekinin").unwrap()
}

/// Register (through the node, as the walk-in form would) and check in here a walk-in
/// written exactly as roster entry `who`; the walk-in's record.
fn walk_in_like(h: &mut H, who: &kazashi_domain::RosterEntry) -> PersonRef {
    let person = WalkInPerson {
        name: PersonName::new(who.name.as_str()).unwrap(),
        kana: Some(KanaReading::new(who.kana.as_str()).unwrap()),
        birth_date: Some(who.birth_date),
        sex: who.sex,
        address: Some(Address::new(who.address.as_str()).unwrap()),
        care_needs: Default::default(),
    };
    h.state_mut().station.host().with(|n| {
        let reg = n
            .record(
                lead(),
                EventBody::WalkInRegistration {
                    members: vec![person],
                    home_municipality: None,
                },
            )
            .unwrap();
        let p = PersonRef::WalkIn {
            registration: reg.id(),
            index: 0,
        };
        n.record(
            lead(),
            EventBody::ShelterCheckIn {
                household: None,
                members: Members::new(vec![p]).unwrap(),
                method: IdMethod::Lookup,
            },
        )
        .unwrap();
        p
    })
}

/// Roster entry `i` checked in here through the window (its household), then a walk-in
/// written as that entry checked in too; the alerts view open. The entry and the walk-in.
fn a_duplicate_pair(h: &mut H, i: usize) -> (kazashi_domain::RosterEntry, PersonRef) {
    let who = search_open(h, i);
    click(h, "受付する");
    let w = walk_in_like(h, &who);
    settle(h);
    click_contains(h, "警告 [F5]");
    (who, w)
}

/// The header's present count, the deployment's distinct registered persons and the rows of
/// this shelter's evacuee list (the staff export).
fn counts(h: &mut H) -> (usize, u32, usize) {
    use kazashi_node::export::{Audience, evacuees};
    let present = h.state_mut().station.present_count();
    let (distinct, rows) = h.state_mut().station.host().with(|n| {
        let s = n.station();
        let list = evacuees(
            s.state(),
            s.deployment(),
            s.roster(),
            Some(s.site()),
            None,
            kazashi_domain::CivilDate::new(2026, 9, 21).unwrap(),
            Audience::Staff,
        );
        (n.distinct_registered(), list.rows.len())
    });
    (present, distinct, rows)
}

/// Open duplicate alerts naming `p`.
fn duplicate_alerts_of(h: &mut H, p: &PersonRef) -> usize {
    h.state_mut().station.host().with(|n| {
        n.alerts()
            .iter()
            .filter(|a| a.score.is_some() && a.subjects.contains(p))
            .count()
    })
}

#[test]
fn a_duplicate_shows_both_records_and_linking_counts_them_once_and_retracting_restores() {
    let (mut h, _dir) = open(DemoKind::Shelter, "sekinin", "2222");
    let (who, w) = a_duplicate_pair(&mut h, 100);
    // Side by side: the field names, both records' values, the score and the reasons.
    assert!(said(&h, "一致度"), "no score");
    assert!(said(&h, "氏名一致"), "no reason in Japanese");
    assert!(said(&h, "生年月日"), "no field row");
    assert_eq!(
        h.query_all_by_label(who.address.as_str()).count(),
        2,
        "both addresses side by side"
    );
    // Evidence names event kinds in Japanese, never the English names.
    assert!(
        said(&h, "当日受付の登録"),
        "the evidence kind is not in Japanese"
    );
    for english in [
        "walk-in registration",
        "shelter check-in",
        "same-as assertion",
    ] {
        assert!(
            !said(&h, english),
            "English event name {english} in the Japanese window"
        );
    }
    assert_eq!(duplicate_alerts_of(&mut h, &w), 1);
    let (present, distinct, rows) = counts(&mut h);
    click(&mut h, "同一人物としてリンク");
    assert!(said(&h, "同一人物としてリンクしました"));
    let linked = events_of(&mut h, |b| {
        matches!(b, EventBody::SameAs { a, b, .. }
            if [*a, *b].contains(&w) && [*a, *b].contains(&PersonRef::Roster(who.person)))
    });
    assert_eq!(linked, 1, "the link was not recorded between the pair");
    assert_eq!(
        counts(&mut h),
        (present - 1, distinct - 1, rows - 1),
        "linked, not counted once"
    );
    assert_eq!(
        duplicate_alerts_of(&mut h, &w),
        0,
        "the linked pair is still alerted"
    );
    // The status report's counts too.
    let report_total = |h: &mut H| {
        h.state_mut().station.host().with(|n| {
            let site = n.station().site();
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64;
            let today = kazashi_domain::CivilDate::jst_of(ms).unwrap();
            let c = n
                .station()
                .state()
                .site_counts(&site, n.station().roster(), today, None);
            format!("{c:?}")
        })
    };
    let linked_report = report_total(&mut h);
    // The present list shows the linked person on one row.
    let rows_of = |h: &mut H| {
        h.key_press(egui::Key::F2);
        settle(h);
        fill(h, "絞り込み", who.kana.as_str());
        let n = h
            .get_all_by_role(Role::CheckBox)
            .filter(|n| {
                n.accesskit_node()
                    .label()
                    .is_some_and(|l| l.contains(who.name.as_str()))
            })
            .count();
        h.key_press(egui::Key::F5);
        settle(h);
        n
    };
    assert_eq!(rows_of(&mut h), 1, "the linked person is on two rows");
    // Retract, with a reason: the counts and the alert come back.
    click(&mut h, "リンク取消");
    assert!(
        said(&h, "取消の理由を入力してください"),
        "retracted without a reason"
    );
    fill(&mut h, "取消の理由", "入力の誤り");
    click(&mut h, "リンク取消");
    assert!(said(&h, "判断を取り消しました"));
    assert_eq!(
        events_of(&mut h, |b| matches!(b, EventBody::RetractAssertion { .. })),
        1
    );
    assert_eq!(
        counts(&mut h),
        (present, distinct, rows),
        "the retraction did not restore"
    );
    assert_eq!(
        duplicate_alerts_of(&mut h, &w),
        1,
        "the alert did not come back"
    );
    assert_ne!(
        report_total(&mut h),
        linked_report,
        "the report counts ignore the link"
    );
    assert_eq!(
        rows_of(&mut h),
        2,
        "the retracted link still merges the rows"
    );
}

#[test]
fn marking_a_pair_distinct_silences_it_and_counts_both() {
    let (mut h, _dir) = open(DemoKind::Shelter, "sekinin", "2222");
    let (_who, w) = a_duplicate_pair(&mut h, 120);
    assert_eq!(duplicate_alerts_of(&mut h, &w), 1);
    let before = counts(&mut h);
    click(&mut h, "別人");
    assert!(said(&h, "別人として記録しました"));
    assert_eq!(
        events_of(&mut h, |b| matches!(b, EventBody::NotSame { .. })),
        1
    );
    assert_eq!(duplicate_alerts_of(&mut h, &w), 0, "not silenced");
    assert_eq!(counts(&mut h), before, "distinct people must both count");
    assert!(said(&h, "別人: "), "the decision is not listed");
}

#[test]
fn reception_staff_see_the_pair_but_cannot_link() {
    let (mut h, _dir) = open(DemoKind::Shelter, "uketsuke", "1111");
    let who = roster_entry(&mut h, 100);
    walk_in_like(&mut h, &who);
    settle(&mut h);
    click_contains(&mut h, "警告 [F5]");
    assert!(said(&h, "一致度"));
    assert!(!said(&h, "同一人物としてリンク"));
    assert!(said(&h, "処理は責任者が行います"));
}

/// A roster person registered at S002 (card 3's household, carried in before the demo).
fn registered_at_s002(h: &mut H) -> (kazashi_domain::RosterEntry, String) {
    h.state_mut().station.host().with(|n| {
        let s = SiteId::new("S002").unwrap();
        let (p, _) = n.state().stays_at(&s, None).into_iter().next().unwrap();
        let PersonRef::Roster(id) = p else {
            panic!("a roster person")
        };
        let e = n.station().roster().get(&id).unwrap().to_entry();
        let name = n.station().deployment().site(&s).unwrap().name.to_string();
        (e, name)
    })
}

#[test]
fn a_walk_in_like_someone_checked_in_elsewhere_is_named_before_registering() {
    let (mut h, _dir) = open(DemoKind::Shelter, "uketsuke", "1111");
    let (who, site) = registered_at_s002(&mut h);
    h.key_press(egui::Key::F3);
    settle(&mut h);
    fill(&mut h, "氏名", who.name.as_str());
    fill(&mut h, "ふりがな", who.kana.as_str());
    fill(&mut h, "生年月日", &who.birth_date.to_string());
    fill(&mut h, "住所", who.address.as_str());
    let walk_ins = |h: &mut H| events_of(h, |b| matches!(b, EventBody::WalkInRegistration { .. }));
    click(&mut h, "登録する");
    assert!(
        said(
            &h,
            &format!("{site} で受付済みの人と同一人物の可能性があります")
        ),
        "the other shelter is not named"
    );
    assert!(said(&h, "もう一度押すと登録します"));
    assert_eq!(walk_ins(&mut h), 0, "registered before the second press");
    click(&mut h, "登録する");
    assert_eq!(walk_ins(&mut h), 1, "the second press did not register");
}

#[test]
fn a_lookup_of_someone_linked_to_a_person_checked_in_elsewhere_names_that_shelter() {
    let (mut h, _dir) = open(DemoKind::Shelter, "sekinin", "2222");
    let (there, site) = registered_at_s002(&mut h);
    let who = roster_entry(&mut h, 100);
    assert_ne!(who.household, there.household);
    h.state_mut().station.host().with(|n| {
        n.record(
            lead(),
            EventBody::SameAs {
                a: PersonRef::Roster(who.person),
                b: PersonRef::Roster(there.person),
                note: None,
            },
        )
        .unwrap();
    });
    search_open(&mut h, 100);
    assert!(
        said(
            &h,
            &format!("{site} で受付済みの人と同一人物の可能性があります")
        ),
        "the lookup does not name the other shelter"
    );
}

#[test]
fn english_alert_evidence_and_reasons_are_in_english() {
    let (mut h, _dir) = open(DemoKind::Shelter, "sekinin", "2222");
    let who = roster_entry(&mut h, 100);
    walk_in_like(&mut h, &who);
    settle(&mut h);
    click(&mut h, "English");
    click_contains(&mut h, "Alerts [F5]");
    assert!(said(&h, "Walk-in registration"));
    assert!(said(&h, "Match score"));
    assert!(said(&h, "Same name"));
    assert!(!said(&h, "当日受付の登録"));
}

#[test]
fn a_protected_persons_site_is_never_shown_beside_the_pair() {
    let (mut h, _dir) = open(DemoKind::Shelter, "sekinin", "2222");
    // A resident whose household card carries the DV block, checked in here, and a walk-in
    // written like them.
    let who = roster_entry(&mut h, 100);
    h.state_mut().station.host().with(|n| {
        use kazashi_domain::event::{Disclosure, HouseholdCard, StayingPlace};
        use kazashi_domain::ids::HouseholdRef;
        let card = HouseholdCard {
            representative: Some(PersonRef::Roster(who.person)),
            phone: None,
            damage: None,
            flooding: None,
            staying: StayingPlace::InShelter,
            car: None,
            pets: None,
            disclosure: Disclosure::Nobody,
            dv_block: true,
            members: Vec::new(),
            notes: None,
        };
        n.record(
            lead(),
            EventBody::HouseholdCard {
                household: HouseholdRef::Roster(who.household),
                card: Box::new(card),
            },
        )
        .unwrap();
        n.record(
            lead(),
            EventBody::ShelterCheckIn {
                household: None,
                members: Members::new(vec![PersonRef::Roster(who.person)]).unwrap(),
                method: IdMethod::Lookup,
            },
        )
        .unwrap();
    });
    walk_in_like(&mut h, &who);
    settle(&mut h);
    click_contains(&mut h, "警告 [F5]");
    assert!(said(&h, "一致度"), "no pair shown");
    let here = h.state_mut().station.host().with(|n| {
        let s = n.station().site();
        n.station().deployment().site(&s).unwrap().name.to_string()
    });
    assert!(said(&h, "（保護のため表示しません）"));
    // Neither column (the walk-in is likely the protected person) nor the evidence names the
    // shelter; the window's title does.
    let leaks = h
        .query_all_by_label_contains(&here)
        .filter(|n| {
            let l = n.accesskit_node().value().unwrap_or_default();
            l.contains("・") || l.contains(':')
        })
        .count();
    assert_eq!(leaks, 0, "the shelter is named beside a protected person");
}

#[test]
fn checking_out_a_linked_persons_row_checks_out_each_record() {
    let (mut h, _dir) = open(DemoKind::Shelter, "sekinin", "2222");
    let who = search_open(&mut h, 130);
    click(&mut h, "受付する");
    let w = walk_in_like(&mut h, &who);
    h.state_mut().station.host().with(|n| {
        n.record(
            lead(),
            EventBody::SameAs {
                a: PersonRef::Roster(who.person),
                b: w,
                note: None,
            },
        )
        .unwrap();
    });
    let before = h.state_mut().station.present_count();
    h.key_press(egui::Key::F2);
    settle(&mut h);
    fill(&mut h, "絞り込み", who.kana.as_str());
    tick(&mut h, who.name.as_str());
    click(&mut h, "退所");
    assert!(said(&h, "1人を記録しました"), "one person, not two");
    assert_eq!(h.state_mut().station.present_count(), before - 1);
    let left = h.state_mut().station.host().with(|n| {
        [PersonRef::Roster(who.person), w]
            .iter()
            .filter(|p| {
                n.state()
                    .stays(p, None)
                    .values()
                    .all(|s| !s.status.is_registered())
            })
            .count()
    });
    assert_eq!(left, 2, "a linked record was left checked in");
}

/// The demo shelter, where the first peer (S002) registered and checked in a walk-in written
/// exactly as roster entry 100 before its bundle was carried over; logged in as `staff`.
fn with_a_walk_in_at_s002(staff: &str, pin: &str) -> (H, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut plant = |n: &mut kazashi_node::Node<SystemClock>| -> Result<(), String> {
        let who = n.station().roster().entries()[100].clone();
        let person = WalkInPerson {
            name: PersonName::new(who.name.as_str()).unwrap(),
            kana: Some(KanaReading::new(who.kana.as_str()).unwrap()),
            birth_date: Some(who.birth_date),
            sex: who.sex,
            address: Some(Address::new(who.address.as_str()).unwrap()),
            care_needs: Default::default(),
        };
        let op = OperatorId::new("demo-peer").unwrap();
        let reg = n
            .record(
                op,
                EventBody::WalkInRegistration {
                    members: vec![person],
                    home_municipality: None,
                },
            )
            .map_err(|e| e.to_string())?;
        let p = PersonRef::WalkIn {
            registration: reg.id(),
            index: 0,
        };
        n.record(
            op,
            EventBody::ShelterCheckIn {
                household: None,
                members: Members::new(vec![p]).unwrap(),
                method: IdMethod::Lookup,
            },
        )
        .map_err(|e| e.to_string())?;
        Ok(())
    };
    let station = crate::demo_window::station_planted(
        DemoKind::Shelter,
        dir.path(),
        Lang::Ja,
        false,
        None,
        Vec::new(),
        &mut plant,
    )
    .unwrap();
    let mut h = harness_of(station);
    settle(&mut h);
    login(&mut h, staff, pin);
    let site = h.state_mut().station.host().with(|n| {
        let s = SiteId::new("S002").unwrap();
        n.station().deployment().site(&s).unwrap().name.to_string()
    });
    (h, dir, site)
}

#[test]
fn a_lookup_likely_matching_a_walk_in_checked_in_elsewhere_names_that_shelter() {
    let (mut h, _dir, site) = with_a_walk_in_at_s002("uketsuke", "1111");
    search_open(&mut h, 100);
    assert!(
        said(
            &h,
            &format!("{site} で受付済みの人と同一人物の可能性があります")
        ),
        "the lookup does not name the other shelter"
    );
}

#[test]
fn a_walk_in_like_an_earlier_walk_in_elsewhere_is_named_before_registering() {
    let (mut h, _dir, site) = with_a_walk_in_at_s002("uketsuke", "1111");
    let who = roster_entry(&mut h, 100);
    h.key_press(egui::Key::F3);
    settle(&mut h);
    fill(&mut h, "氏名", who.name.as_str());
    fill(&mut h, "ふりがな", who.kana.as_str());
    fill(&mut h, "生年月日", &who.birth_date.to_string());
    fill(&mut h, "住所", who.address.as_str());
    click(&mut h, "登録する");
    assert!(
        said(
            &h,
            &format!("{site} で受付済みの人と同一人物の可能性があります")
        ),
        "the earlier walk-in's shelter is not named"
    );
    let walk_ins = |h: &mut H| events_of(h, |b| matches!(b, EventBody::WalkInRegistration { .. }));
    assert_eq!(walk_ins(&mut h), 1, "only the one carried over");
    click(&mut h, "登録する");
    assert_eq!(walk_ins(&mut h), 2);
}
