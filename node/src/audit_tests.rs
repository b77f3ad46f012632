//! The audit trail on real stores (issue 24, requirement 4): a safety search, an export, an
//! unlock that fails (a wrong PIN, an id that is not staff) and one that succeeds, a roster
//! switch each leave a signed, chained audit record; the chain continues across a restart;
//! a second laptop synced with the first holds the same records and finds the chain intact;
//! a log missing one record (a laptop handed every envelope but one) reports the hole; the
//! CSV file reads back into the same rows and holds no personal data.

use crate::audit::{AuditFilter, NOBODY, parse_audit_csv};
use crate::clock::ManualClock;
use crate::export::{PFIF_DOMAIN, Report, ReportRequest};
use crate::link::tests::{check_in, key, site};
use crate::node::roster_gap_tests::{newer_roster, pinning};
use crate::node::{Node, Peer};
use crate::staff::{LoginError, Role};
use crate::store::KdfParams;
use kazashi_domain::audit::{AuditAction, ExportKind, SafetyAsker, UnlockFailure, UnlockMethod};
use kazashi_domain::audit_chain::record_of;
use kazashi_domain::ids::OperatorId;
use kazashi_domain::safety::{Asker, SafetyIndex};
use kazashi_domain::{Event, Roster};
use kazashi_sync::seal;
use std::collections::VecDeque;
use std::sync::Arc;

const T0: u64 = 1_788_220_800_000;
const PASS: &str = "correct horse";

fn create(
    dir: &std::path::Path,
    n: u8,
    manifest: &[u8],
    roster: &Arc<Roster>,
    clock: &ManualClock,
) -> Node<ManualClock> {
    Node::create(
        &dir.join(format!("{n}.db")),
        PASS,
        KdfParams::FAST_INSECURE,
        key(n),
        manifest,
        roster.clone(),
        site(),
        clock.clone(),
    )
    .unwrap()
}

/// Sync `a` and `b` on fresh sessions until neither has anything to say.
fn sync(a: &mut Node<ManualClock>, b: &mut Node<ManualClock>) {
    let (mut pa, mut pb) = (Peer::new("peer b"), Peer::new("peer a"));
    let mut to_b = VecDeque::from([a.sync_start(&mut pa)]);
    let mut to_a = VecDeque::from([b.sync_start(&mut pb)]);
    for _ in 0..1000 {
        if let Some(m) = to_b.pop_front() {
            to_a.extend(b.sync_handle(&mut pb, &m).unwrap().replies);
        } else if let Some(m) = to_a.pop_front() {
            to_b.extend(a.sync_handle(&mut pa, &m).unwrap().replies);
        } else {
            return;
        }
    }
    panic!("no quiescence");
}

/// This device's audit events, by number.
fn audits(n: &Node<ManualClock>) -> Vec<Event> {
    let mut v: Vec<Event> = n
        .state()
        .events_unordered()
        .filter(|e| e.device() == n.device() && record_of(e).is_some())
        .cloned()
        .collect();
    v.sort_by_key(|e| record_of(e).map(|r| r.seq));
    v
}

fn op(s: &str) -> OperatorId {
    OperatorId::new(s).unwrap()
}

#[test]
fn reads_unlocks_and_a_roster_switch_are_audited_chained_and_a_hole_shows() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let (old, new) = (
        Arc::new(crate::link::tests::roster()),
        Arc::new(newer_roster()),
    );
    let v1 = pinning(1, old.hash());
    let mut a = create(dir.path(), 1, &v1, &old, &clock);
    let lead = op("sekinin");
    a.enrol_staff(&lead, Role::Lead, Some("2222")).unwrap();
    check_in(&mut a, 1);

    // Unlocks: a wrong PIN, an id that is not staff (a PIN typed in the id field), the right PIN.
    clock.advance(1000);
    assert_eq!(
        a.staff_unlock(&lead, "9999", UnlockMethod::StaffPin),
        Err(LoginError::WrongPin)
    );
    clock.advance(1000);
    assert_eq!(
        a.staff_unlock(&op("1234"), "2222", UnlockMethod::StaffPin),
        Err(LoginError::Unknown)
    );
    clock.advance(1000);
    assert_eq!(
        a.staff_unlock(&lead, "2222", UnlockMethod::StaffPin),
        Ok(Role::Lead)
    );

    // A safety search: its answers, and a record of how many — not of what was asked.
    clock.advance(1000);
    let mut index = SafetyIndex::default();
    let answers = a
        .safety_search(lead, &mut index, "たかはし", Asker::Public, 50)
        .unwrap();
    // An empty query searches and records nothing.
    assert!(
        a.safety_search(lead, &mut index, "  ", Asker::Public, 50)
            .unwrap()
            .is_empty()
    );

    // An export through the one audited path.
    clock.advance(1000);
    let req = ReportRequest {
        report: Report::Evacuees,
        site: None,
        as_of: None,
        now: T0 + 5000,
        font: None,
        pfif_domain: PFIF_DOMAIN,
    };
    let file = a.export_audited(lead, &req).unwrap();

    let records = audits(&a);
    let actions: Vec<(AuditAction, String)> = records
        .iter()
        .map(|e| {
            (
                record_of(e).unwrap().action.clone(),
                e.operator().as_str().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            (
                AuditAction::UnlockFailed {
                    method: UnlockMethod::StaffPin,
                    why: UnlockFailure::WrongPin
                },
                "sekinin".to_owned()
            ),
            (
                AuditAction::UnlockFailed {
                    method: UnlockMethod::StaffPin,
                    why: UnlockFailure::UnknownStaff
                },
                NOBODY.to_owned()
            ),
            (
                AuditAction::UnlockSucceeded {
                    method: UnlockMethod::StaffPin
                },
                "sekinin".to_owned()
            ),
            (
                AuditAction::SafetySearch {
                    asker: SafetyAsker::Public,
                    answers: u32::try_from(answers.len()).unwrap()
                },
                "sekinin".to_owned()
            ),
            (
                AuditAction::Export {
                    kind: ExportKind::Evacuees,
                    rows: u32::try_from(file.rows).unwrap(),
                    site: None,
                    as_of: None
                },
                "sekinin".to_owned()
            ),
        ]
    );
    // Numbered 1..=5, each naming the one before.
    for (i, e) in records.iter().enumerate() {
        let r = record_of(e).unwrap();
        assert_eq!(r.seq, i as u64 + 1);
        let prev = if i == 0 {
            kazashi_domain::audit::CHAIN_START
        } else {
            kazashi_domain::audit_chain::link(&records[i - 1])
        };
        assert_eq!(r.prev, prev);
    }

    // A restart: the chain goes on from the store.
    drop(a);
    let mut a = Node::open(
        &dir.path().join("1.db"),
        PASS,
        old.clone(),
        site(),
        clock.clone(),
    )
    .unwrap();
    // The roster switch, made by the laptop (no staff): recorded with both hashes.
    let v2 = pinning(2, new.hash());
    a.adopt_manifest(&v2).unwrap();
    clock.advance(1000);
    a.replace_roster(new.clone()).unwrap();
    let records = audits(&a);
    assert_eq!(records.len(), 6);
    let last = records.last().unwrap();
    assert_eq!(
        record_of(last).unwrap().action,
        AuditAction::RosterSwitch {
            from: old.hash(),
            to: new.hash()
        }
    );
    assert_eq!(last.operator().as_str(), NOBODY);
    assert_eq!(record_of(last).unwrap().seq, 6);
    assert_eq!(
        record_of(last).unwrap().prev,
        kazashi_domain::audit_chain::link(&records[4])
    );

    // A second laptop synced with the first holds the same records, signed by laptop 1, and
    // finds its chain intact.
    let mut b = create(dir.path(), 2, &v2, &new, &clock);
    sync(&mut a, &mut b);
    let everything = AuditFilter::default();
    assert_eq!(b.audit_rows(&everything), a.audit_rows(&everything));
    let chains = b.audit_chains();
    assert_eq!(chains.len(), 1);
    assert_eq!(chains[0].device, a.device());
    assert!(chains[0].intact(), "{chains:?}");
    assert_eq!(chains[0].last_seq, 6);

    // A log missing record 3: laptop 3 is handed every envelope of laptop 1 but that one.
    let mut c = create(dir.path(), 3, &v2, &new, &clock);
    let deployment = a.membership().deployment().id();
    let dropped = records[2].id();
    for e in a.state().events_in_order() {
        if e.id() != dropped {
            let env = seal(e, deployment, &key(1)).unwrap();
            assert!(c.import(&env, "usb").unwrap());
        }
    }
    let chains = c.audit_chains();
    assert_eq!(chains[0].missing, vec![(3, 3)]);
    assert!(!chains[0].intact());

    // The CSV file: filters, round trip, no personal data, and its own record.
    let filter = AuditFilter {
        action: Some("unlock-failed".into()),
        ..AuditFilter::default()
    };
    assert_eq!(b.audit_rows(&filter).len(), 2);
    let staff_filter = AuditFilter {
        staff: Some(lead),
        from: Some(T0 + 2500),
        ..AuditFilter::default()
    };
    assert_eq!(
        b.audit_rows(&staff_filter).len(),
        3,
        "success, search, export"
    );
    let by_device = |d| AuditFilter {
        device: Some(d),
        ..AuditFilter::default()
    };
    assert_eq!(b.audit_rows(&by_device(a.device())).len(), 6);
    assert!(b.audit_rows(&by_device(b.device())).is_empty());
    let before = AuditFilter {
        to: Some(T0 + 2500),
        ..AuditFilter::default()
    };
    assert_eq!(b.audit_rows(&before).len(), 2, "the two failed unlocks");
    let (csv, n) = b.audit_export(lead, &everything).unwrap();
    assert_eq!(n, 6);
    let back = parse_audit_csv(&csv).unwrap();
    assert_eq!(back, a.audit_rows(&everything));
    for secret in ["髙橋", "たかはし", "三条市", "9999", "1234", "2222"] {
        assert!(!csv.contains(secret), "the audit CSV holds {secret:?}");
    }
    // Laptop 2's export of the audit is itself on record, in laptop 2's own chain.
    let own = audits(&b);
    assert_eq!(own.len(), 1);
    assert!(matches!(
        record_of(&own[0]).unwrap().action,
        AuditAction::Export {
            kind: ExportKind::AuditCsv,
            rows: 6,
            ..
        }
    ));
}

/// Manifest `version` enrolling stations 1 and 2 and relay 5, closed at `closed_at` if set,
/// laptop 2 revoked from `revoke_2` if set.
fn manifest(
    version: u32,
    roster: &Roster,
    closed_at: Option<u64>,
    revoke_2: Option<u64>,
) -> Vec<u8> {
    use crate::link::tests::{deployment, device};
    use kazashi_domain::text::Label;
    use kazashi_sync::{DeviceEntry, DeviceKey, Manifest, Revocation, Role, SignedManifest};
    let admin = DeviceKey::from_seed([100; 32]);
    let entry = |n: u8, role: Role| DeviceEntry {
        device: device(n),
        role,
        label: Label::new(&format!("端末{n}")).unwrap(),
        sites: vec![],
    };
    let m = Manifest {
        version,
        deployment: deployment(1, roster.hash()),
        admin: admin.device_id(),
        devices: vec![
            entry(1, Role::Station),
            entry(2, Role::Station),
            entry(5, Role::Relay),
        ],
        revoked: revoke_2
            .map(|from_ms| Revocation {
                device: device(2),
                from_ms,
            })
            .into_iter()
            .collect(),
        staff: vec![],
        closed_at,
        card_cas: vec![],
        sealed_keys: Vec::new(),
        retention_days: None,
        receipt_slips: false,
    };
    SignedManifest::sign(&m, &admin).unwrap().encode()
}

#[test]
fn a_relay_and_a_closed_operation_still_write_audit_records_and_peers_take_them() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let roster = Arc::new(crate::link::tests::roster());
    let v1 = manifest(1, &roster, None, None);
    let mut a = create(dir.path(), 1, &v1, &roster, &clock);
    let mut relay = create(dir.path(), 5, &v1, &roster, &clock);
    let lead = op("sekinin");

    // A relay writes no event but its audit records, and a station takes them.
    clock.advance(1000);
    assert!(matches!(
        relay.record(
            lead,
            kazashi_domain::EventBody::SiteLifecycle(kazashi_domain::event::SiteState::Opened)
        ),
        Err(crate::node::NodeError::WritesStopped(
            crate::node::WriteBlock::Relay
        ))
    ));
    let req = ReportRequest {
        report: Report::Status,
        site: None,
        as_of: None,
        now: T0 + 1000,
        font: None,
        pfif_domain: PFIF_DOMAIN,
    };
    relay.export_audited(lead, &req).unwrap();
    assert_eq!(audits(&relay).len(), 1);
    sync(&mut relay, &mut a);
    assert!(a.store().quarantined().unwrap().is_empty());
    let chains = a.audit_chains();
    assert!(
        chains
            .iter()
            .any(|c| c.device == relay.device() && c.intact())
    );

    // The operation closes: nothing more is written but audit records, and a peer holding
    // the closing manifest takes them.
    check_in(&mut a, 1);
    clock.advance(60_000);
    let v2 = manifest(2, &roster, Some(T0 + 30_000), None);
    a.adopt_manifest(&v2).unwrap();
    let mut b = create(dir.path(), 2, &v2, &roster, &clock);
    assert!(a.write_block().is_some());
    a.export_audited(lead, &req).unwrap();
    sync(&mut a, &mut b);
    assert!(
        b.store().quarantined().unwrap().is_empty(),
        "a peer refused an audit record"
    );
    assert_eq!(b.audit_rows(&AuditFilter::default()).len(), 2);

    // A revoked laptop writes nothing, audit records included (its peers would refuse them),
    // and its read goes on.
    let v3 = manifest(3, &roster, Some(T0 + 30_000), Some(T0));
    b.adopt_manifest(&v3).unwrap();
    let before = b.state().len();
    assert!(b.export_audited(lead, &req).is_ok());
    assert_eq!(b.state().len(), before);
}
