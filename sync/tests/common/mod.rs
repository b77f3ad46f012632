//! Fixtures: a two-shelter deployment, an administrator, three stations, a relay.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use kazashi_domain::event::{IdMethod, SiteState};
use kazashi_domain::ids::RosterHash;
use kazashi_domain::text::Label;
use kazashi_domain::{
    Deployment, DeploymentId, DeploymentKind, DeviceId, Event, EventBody, EventContent, Members,
    OperatorId, PersonId, PersonRef, ShelterType, Site, SiteId, SiteKind, Timestamp,
};
use kazashi_sync::{
    DeviceEntry, DeviceKey, Manifest, Membership, Revocation, Role, SignedManifest,
};

/// 2026-09-01 09:00 JST.
pub const T0: u64 = 1_788_220_800_000;

pub fn site(s: &str) -> SiteId {
    SiteId::new(s).unwrap()
}

pub fn deployment(id: u8) -> Deployment {
    let shelter = |s: &str| Site {
        id: site(s),
        name: Label::new(&format!("{s} 避難所")).unwrap(),
        kind: SiteKind::Shelter {
            shelter_type: ShelterType::Designated,
            capacity: 100,
        },
    };
    Deployment::new(
        DeploymentId([id; 16]),
        Label::new("訓練").unwrap(),
        DeploymentKind::ShelterOperation,
        RosterHash([7; 32]),
        vec![shelter("S1"), shelter("S2")],
    )
    .unwrap()
}

pub fn admin() -> DeviceKey {
    DeviceKey::from_seed([100; 32])
}

/// Stations 1..=3 (station 3 may write only for S2), relay 9.
pub fn key(n: u8) -> DeviceKey {
    DeviceKey::from_seed([n; 32])
}

pub fn manifest(version: u32, revoked: Vec<Revocation>) -> Manifest {
    let entry = |n: u8, role: Role, sites: Vec<SiteId>| DeviceEntry {
        device: key(n).device_id(),
        role,
        label: Label::new(&format!("端末{n}")).unwrap(),
        sites,
    };
    Manifest {
        version,
        deployment: deployment(1),
        admin: admin().device_id(),
        devices: vec![
            entry(1, Role::Station, vec![]),
            entry(2, Role::Station, vec![]),
            entry(3, Role::Station, vec![site("S2")]),
            entry(9, Role::Relay, vec![]),
        ],
        revoked,
        staff: vec![],
        closed_at: None,
        card_cas: vec![],
        sealed_keys: Vec::new(),
        retention_days: None,
        receipt_slips: false,
    }
}

pub fn membership() -> Membership {
    let signed = SignedManifest::sign(&manifest(1, vec![]), &admin()).unwrap();
    SignedManifest::decode(&signed.encode()).unwrap()
}

pub fn device(n: u8) -> DeviceId {
    key(n).device_id()
}

/// An event by device `n` at `site` and `at` ms after T0: a check-in of person `p` if `p > 0`,
/// else the site opening.
pub fn event(n: u8, s: &str, at: u64, p: u32) -> Event {
    let body = if p > 0 {
        EventBody::ShelterCheckIn {
            household: None,
            members: Members::new(vec![PersonRef::Roster(
                PersonId::new(&format!("P{p:05}")).unwrap(),
            )])
            .unwrap(),
            method: IdMethod::Lookup,
        }
    } else {
        EventBody::SiteLifecycle(SiteState::Opened)
    };
    Event::new(EventContent {
        device: device(n),
        site: site(s),
        operator: OperatorId::new(&format!("op{n}")).unwrap(),
        at: Timestamp::new(T0 + at, 0),
        body,
    })
    .unwrap()
}
