//! 安否未確認 in the window (issue 26 req. 3), on the demo city's shelter S001: one member of a
//! household checked in, the others listed in the command view; a relative's report written
//! from the list takes one off (a signed `ReportedSafe`); a household under the DV block (its
//! card set it; the demo roster has no 支援措置 flag) with one member in is counted, never named; the CSV export is written beside the store, names the
//! member left and not the protected household, and leaves an audit record.

use super::*;
use kazashi_domain::audit::{AuditAction, ExportKind};
use kazashi_domain::audit_chain::record_of;
use kazashi_domain::event::{IdMethod, Members};
use kazashi_domain::ids::{HouseholdRef, OperatorId, PersonRef};

/// Check in the first member of the first household (from entry `from` on) with at least
/// `size` members nobody has seen; with `dv`, its household card sets the DV block. Its members.
fn check_in_first(
    h: &mut H,
    from: usize,
    size: usize,
    dv: bool,
) -> Vec<kazashi_domain::RosterEntry> {
    h.state_mut().station.host().with(|n| {
        let roster = n.station().roster();
        let members = roster
            .entries()
            .iter()
            .skip(from)
            .map(|e| roster.household(&e.household))
            .find(|m| {
                m.len() >= size
                    && m.len() <= 4
                    && m.iter().all(|e| {
                        n.state()
                            .stays(&PersonRef::Roster(e.person), None)
                            .is_empty()
                    })
            })
            .unwrap()
            .into_iter()
            .map(|e| e.to_entry())
            .collect::<Vec<_>>();
        n.record(
            OperatorId::new("uketsuke").unwrap(),
            EventBody::ShelterCheckIn {
                household: Some(HouseholdRef::Roster(members[0].household)),
                members: Members::new(vec![PersonRef::Roster(members[0].person)]).unwrap(),
                method: IdMethod::Lookup,
            },
        )
        .unwrap();
        if dv {
            let refs: Vec<PersonRef> = members
                .iter()
                .map(|e| PersonRef::Roster(e.person))
                .collect();
            n.record(
                OperatorId::new("uketsuke").unwrap(),
                EventBody::HouseholdCard {
                    household: HouseholdRef::Roster(members[0].household),
                    card: Box::new(kazashi_sim::workload::household_card(
                        &refs,
                        kazashi_domain::event::Disclosure::Relatives,
                        true,
                    )),
                },
            )
            .unwrap();
        }
        members
    })
}

#[test]
fn household_members_not_seen_are_listed_reported_safe_and_exported_without_the_protected() {
    let (mut h, dir) = open(DemoKind::Shelter, "honbu", "4444");
    let family = check_in_first(&mut h, 100, 3, false);
    let protected = check_in_first(&mut h, 200, 2, true);
    click(&mut h, "本部 [F7]");
    // A closed section of the command view until opened.
    assert!(!said(
        &h,
        &format!("家族から無事の連絡（{}）", family[1].name)
    ));
    h.get_by_label_contains("安否未確認（世帯の一部が来所")
        .click_accesskit();
    settle(&mut h);
    let button = |e: &kazashi_domain::RosterEntry| format!("家族から無事の連絡（{}）", e.name);
    for e in &family[1..] {
        assert!(said(&h, &button(e)), "{} is not listed", e.person);
    }
    assert!(
        !said(&h, &button(&family[0])),
        "the member who arrived is listed"
    );
    // The household under the DV block: counted, never named.
    assert!(said(&h, "DV等支援措置の世帯は氏名を表示しません"));
    for e in &protected {
        assert!(!said(&h, &button(e)), "a protected member is named");
    }

    // A relative reports the second member safe: it needs who reported.
    press(&mut h, &button(&family[1]));
    assert!(said(&h, "さんの無事の連絡"), "the report form did not open");
    press(&mut h, "記録する");
    assert!(said(&h, "連絡した方の続柄などを入力してください"));
    let reports = |h: &mut H| events_of(h, |b| matches!(b, EventBody::ReportedSafe { .. }));
    assert_eq!(reports(&mut h), 0);
    fill(&mut h, "連絡した方（続柄など）", "長男");
    press(&mut h, "記録する");
    assert!(said(&h, "無事の連絡を記録しました"));
    assert_eq!(reports(&mut h), 1);
    settle(&mut h);
    assert!(
        !said(&h, &button(&family[1])),
        "still listed after the report"
    );
    assert!(said(&h, &button(&family[2])));

    // Withdrawn (it needs a reason), the member is listed again; reported once more, off.
    assert!(said(&h, "家族からの無事の連絡（記録済み）"));
    press(&mut h, &format!("取り消す（{}）", family[1].name));
    press(&mut h, "取り消しを記録する");
    assert!(said(&h, "取り消しの理由を入力してください"));
    fill(&mut h, "取り消しの理由", "別人だった");
    press(&mut h, "取り消しを記録する");
    assert!(said(&h, "無事の連絡を取り消しました"));
    settle(&mut h);
    assert!(
        said(&h, &button(&family[1])),
        "not listed again after the withdrawal"
    );
    let retractions = |h: &mut H| events_of(h, |b| matches!(b, EventBody::RetractAssertion { .. }));
    assert_eq!(retractions(&mut h), 1);
    press(&mut h, &button(&family[1]));
    fill(&mut h, "連絡した方（続柄など）", "長女");
    press(&mut h, "記録する");
    assert_eq!(reports(&mut h), 2);
    settle(&mut h);
    assert!(!said(&h, &button(&family[1])));

    // The CSV beside the store: the member left, no protected household; an audit record.
    press(&mut h, "安否未確認をCSVに書き出す");
    assert!(said(&h, "書き出しました"));
    let files: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with("安否未確認-"))
        })
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let bytes = std::fs::read(&files[0]).unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains(family[2].person.as_str()));
    assert!(!text.contains(&format!(",{},", family[1].person)));
    assert!(!text.contains(&format!(",{},", family[0].person)));
    for e in &protected {
        assert!(!text.contains(&format!(",{},", e.person)), "{text}");
    }
    let audited = h.state_mut().station.host().with(|n| {
        n.state()
            .events_unordered()
            .filter_map(record_of)
            .filter(|r| {
                matches!(
                    r.action,
                    AuditAction::Export {
                        kind: ExportKind::Unconfirmed,
                        ..
                    }
                )
            })
            .count()
    });
    assert_eq!(audited, 1);

    // The PDF beside it, read back with pdftotext: the member left, the count withheld.
    press(&mut h, "安否未確認をPDFに書き出す");
    assert!(said(&h, "書き出しました"));
    let pdf = walk(dir.path())
        .into_iter()
        .find(|p| {
            p.file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with("安否未確認-"))
                && p.extension().is_some_and(|e| e == "pdf")
        })
        .unwrap();
    let out = std::process::Command::new("pdftotext")
        .args([pdf.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (poppler-utils)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("安否未確認者一覧"), "{text}");
    let given = family[2].name.as_str().split(' ').next_back().unwrap();
    assert!(text.contains(given), "{given} not in the PDF:\n{text}");
    assert!(
        text.contains("DV等支援措置の世帯は氏名を載せていません"),
        "{text}"
    );
}

/// At reception: a household of which one member is in shows, when another arrives, the
/// members nobody has seen yet; a household under the DV block shows no such line.
#[test]
fn reception_shows_a_households_members_not_yet_seen() {
    let (mut h, _dir) = open(DemoKind::Shelter, "uketsuke", "1111");
    let family = check_in_first(&mut h, 150, 3, false);
    let index = |h: &mut H, e: &kazashi_domain::RosterEntry| {
        h.state_mut().station.host().with(|n| {
            n.station()
                .roster()
                .entries()
                .iter()
                .position(|x| x.person == e.person)
                .unwrap()
        })
    };
    let i = index(&mut h, &family[1]);
    search_open(&mut h, i);
    assert!(said(&h, "世帯の受付"));
    assert!(said(&h, "安否未確認（この世帯でまだ確認できていない方）"));
    let line = h
        .query_all_by_label_contains("安否未確認（この世帯")
        .next()
        .unwrap()
        .accesskit_node()
        .value()
        .unwrap_or_default();
    assert!(!line.contains(family[0].name.as_str()), "{line}");
    for e in &family[1..] {
        assert!(line.contains(e.name.as_str()), "{line}");
    }
    click(&mut h, "やめる");
    let protected = check_in_first(&mut h, 250, 2, true);
    let i = index(&mut h, &protected[1]);
    search_open(&mut h, i);
    assert!(said(&h, "世帯の受付"));
    assert!(!said(&h, "安否未確認（この世帯"));
}
