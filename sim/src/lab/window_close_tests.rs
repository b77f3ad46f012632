//! The window on a laptop whose manifest changes while it runs (issue 23): a closing manifest
//! turns the station read-only at once — the red banner, the check-in controls disabled, and
//! the node refusing writes — and a revocation of the laptop says so. Real stores, the demo's
//! seeded fleet (its administrator key signs the new versions).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use crate::demo_window::{DemoKind, station};
use crate::window_rig::{H, harness_of, said};
use egui_kittest::kittest::{NodeT, Queryable};
use kazashi_domain::OperatorId;
use kazashi_domain::event::{EventBody, IdMethod, Members};
use kazashi_gui::lang::Lang;
use kazashi_node::Clock;
use kazashi_node::node::{NodeError, WriteBlock};
use kazashi_sync::{Revocation, SignedManifest};

fn open(lang: Lang) -> (H, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let station = station(DemoKind::Shelter, dir.path(), lang, false, None).unwrap();
    let mut h = harness_of(station);
    h.run_steps(3);
    h.state_mut().station.unlock(
        OperatorId::new("uketsuke").unwrap(),
        kazashi_node::staff::Role::Reception,
    );
    h.run_steps(3);
    (h, dir)
}

/// The next manifest version, changed by `change` and signed by the demo fleet's
/// administrator, adopted by the window's node.
fn adopt_next(
    h: &mut H,
    change: impl FnOnce(&mut kazashi_sync::Manifest, u64, kazashi_domain::DeviceId),
) {
    h.state_mut().station.host().with(|n| {
        let mut m = n.membership().manifest().clone();
        m.version += 1;
        change(&mut m, n.station().clock().now_ms(), n.device());
        let fleet = kazashi_sim::fleet::fleet_sized(n.membership().deployment(), 1, 2).unwrap();
        let bytes = SignedManifest::sign(&m, &fleet.admin).unwrap().encode();
        n.adopt_manifest(&bytes).unwrap();
    });
    h.run_steps(3);
}

fn try_check_in(h: &mut H) -> Result<(), NodeError> {
    h.state_mut().station.host().with(|n| {
        let who = n.station().roster().entries()[0].person;
        n.record(
            OperatorId::new("uketsuke").unwrap(),
            EventBody::ShelterCheckIn {
                household: None,
                members: Members::new(vec![kazashi_domain::PersonRef::Roster(who)]).unwrap(),
                method: IdMethod::Lookup,
            },
        )
        .map(|_| ())
    })
}

const SEARCH: &str = "名前・よみ・生年月日・住所で検索";

#[test]
fn a_closing_manifest_turns_the_running_window_read_only() {
    let (mut h, _dir) = open(Lang::Ja);
    assert!(!said(&h, "この運用は終了しました"));
    assert!(
        !h.query_by_label(SEARCH)
            .unwrap()
            .accesskit_node()
            .is_disabled()
    );
    assert_eq!(h.state().station.write_block(), None);

    adopt_next(&mut h, |m, now, _| m.closed_at = Some(now));
    assert!(said(&h, "この運用は終了しました"), "no banner");
    assert!(matches!(
        h.state().station.write_block(),
        Some(WriteBlock::Closed { .. })
    ));
    // The check-in controls are disabled, and the node refuses a write all the same.
    assert!(
        h.query_by_label(SEARCH)
            .unwrap()
            .accesskit_node()
            .is_disabled()
    );
    let before = h.state_mut().station.host().with(|n| n.state().len());
    assert!(matches!(
        try_check_in(&mut h),
        Err(NodeError::WritesStopped(WriteBlock::Closed { .. }))
    ));
    assert_eq!(
        h.state_mut().station.host().with(|n| n.state().len()),
        before
    );
}

#[test]
fn a_revocation_of_this_laptop_is_said_in_english_too() {
    let (mut h, _dir) = open(Lang::En);
    assert!(try_check_in(&mut h).is_ok());
    adopt_next(&mut h, |m, now, me| {
        m.revoked.push(Revocation {
            device: me,
            from_ms: now,
        })
    });
    let me_revoked = h.state_mut().station.host().with(|n| {
        let me = n.device();
        n.membership().revoked_from(&me).is_some()
    });
    assert!(me_revoked);
    assert!(said(&h, "This laptop has been revoked"), "no banner");
    assert!(matches!(
        try_check_in(&mut h),
        Err(NodeError::WritesStopped(WriteBlock::Revoked { .. }))
    ));
}
