//! A drill's fleet: an administrator key and one enrolled station laptop per site, all keys
//! derived from a seed (drills and benchmarks only — real keys come from the OS's CSPRNG), and
//! the signed manifest that enrols them.

use kazashi_domain::text::Label;
use kazashi_domain::{Deployment, SiteId};
use kazashi_sync::purpose::{Holder, reseal};
use kazashi_sync::{
    DeviceEntry, DeviceKey, KeyPurpose, Manifest, PurposeSecret, Role, SealedKey, SignedManifest,
};
use sha2::{Digest, Sha256};

pub struct Fleet {
    pub admin: DeviceKey,
    /// One key per site, in the deployment's site order.
    pub stations: Vec<(SiteId, DeviceKey)>,
    /// The signed manifest, as carried on USB.
    pub manifest: Vec<u8>,
}

impl Fleet {
    /// The key of the station at `site`.
    pub fn key(&self, site: &SiteId) -> Option<&DeviceKey> {
        self.nth_key(site, 0)
    }

    /// The `n`-th laptop's key at `site`.
    pub fn nth_key(&self, site: &SiteId, n: usize) -> Option<&DeviceKey> {
        self.stations
            .iter()
            .filter(|(s, _)| s == site)
            .nth(n)
            .map(|(_, k)| k)
    }
}

fn seeded_key(seed: u64, what: &str) -> DeviceKey {
    let mut h = Sha256::new();
    h.update(b"kazashi-drill-key");
    h.update(seed.to_le_bytes());
    h.update(what.as_bytes());
    DeviceKey::from_seed(h.finalize().into())
}

/// A fleet for `deployment` with one laptop per site: the station at each site may write only
/// for that site, except the command center's, which may write for any.
pub fn fleet(deployment: &Deployment, seed: u64) -> Result<Fleet, String> {
    fleet_sized(deployment, seed, 1)
}

/// A fleet with `per_site` laptops at every site (the first of each site is the one
/// [`Fleet::key`] returns).
pub fn fleet_sized(deployment: &Deployment, seed: u64, per_site: u8) -> Result<Fleet, String> {
    let admin = seeded_key(seed, "admin");
    let sites: Vec<&kazashi_domain::Site> = deployment
        .sites()
        .flat_map(|s| std::iter::repeat_n(s, usize::from(per_site.max(1))))
        .collect();
    let stations: Vec<(SiteId, DeviceKey)> = sites
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id, seeded_key(seed, &format!("{}#{i}", s.id))))
        .collect();
    let devices = sites
        .iter()
        .zip(&stations)
        .map(|(site, (_, key))| {
            let hq = matches!(site.kind, kazashi_domain::SiteKind::CommandCenter);
            Ok(DeviceEntry {
                device: key.device_id(),
                role: if hq {
                    Role::CommandCenter
                } else {
                    Role::Station
                },
                label: Label::new(&format!("{} 受付", site.name)).map_err(|e| e.to_string())?,
                sites: if hq { Vec::new() } else { vec![site.id] },
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    // The purpose keys, seeded too: the medical and manager keys go to every laptop of a
    // drill fleet (the demo's one laptop reads and writes notes), the operation key to all.
    let active: Vec<_> = devices.iter().map(|d: &DeviceEntry| d.device).collect();
    let secret = |what: &str| PurposeSecret::new(seeded_key(seed, what).secret_bytes());
    let (medical, manager, operation) = (
        secret("purpose-medical"),
        secret("purpose-manager"),
        secret("purpose-operation"),
    );
    let grants: Vec<SealedKey> = [KeyPurpose::Medical, KeyPurpose::Manager]
        .into_iter()
        .map(|purpose| SealedKey {
            purpose,
            public: [0; 32],
            ephemeral: [0; 32],
            holders: active
                .iter()
                .map(|d| Holder {
                    device: *d,
                    wrapped: Vec::new(),
                })
                .collect(),
        })
        .collect();
    let sealed_keys = reseal(
        &grants,
        &active,
        &[
            (KeyPurpose::Medical, &medical),
            (KeyPurpose::Manager, &manager),
            (KeyPurpose::Operation, &operation),
        ],
        seeded_key(seed, "purpose-ephemeral").secret_bytes(),
    );
    let manifest = Manifest {
        version: 1,
        deployment: deployment.clone(),
        admin: admin.device_id(),
        devices,
        revoked: Vec::new(),
        staff: Vec::new(),
        closed_at: None,
        card_cas: vec![crate::card::TEST_CA.to_vec()],
        sealed_keys,
        retention_days: None,
        receipt_slips: false,
    };
    let signed = SignedManifest::sign(&manifest, &admin).map_err(|e| e.to_string())?;
    Ok(Fleet {
        admin,
        stations,
        manifest: signed.encode(),
    })
}
