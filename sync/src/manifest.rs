//! Deployment manifests and membership.
//!
//! An operation (a flood, an election) is created by an administrator with an ed25519 key. The
//! manifest names the deployment (id, kind, sites, roster hash), the administrator's public key
//! and every enrolled device with its role; the administrator signs it. A laptop enrols by
//! importing the manifest (a file from USB) and checking its fingerprint against the one the
//! administrator reads out. Later manifests — a new laptop, a revoked one — must carry the same
//! deployment and administrator key and a higher version.
//!
//! The manifest also carries the deployment-wide **staff list** ([`StaffEntry`]: id, a display
//! name, a window role, the sites they may unlock a laptop at, and the PIN only as an Argon2id
//! PHC string — a manifest whose PIN field is anything else is refused, so a PIN in the clear
//! can never be signed) and, once the operation is over, **`closed_at`**: a laptop holding a
//! closed manifest writes nothing more, and peers' events stamped at or after that time are kept
//! but not counted ([`Membership::withholds`]; it still syncs, exports and reports, so the
//! final counts converge).
//!
//! **Which manifest wins** ([`Membership::precedence`], the one rule, pure, the same on every
//! node): another deployment or another administrator key is refused; a higher version wins; a
//! lower one is a rollback; the same version with the same bytes is the same manifest; the
//! **same version with other bytes** (the deployment key restored on a second laptop, two
//! administrators signing apart) is a conflict settled by the SHA-256 of the signed bytes
//! ([`Membership::digest`]): the lower digest wins, on every node, whatever the order in which
//! the two arrive. So the manifests a node has seen decide the one it holds — the greatest by
//! (version, lower digest) — and every node that has seen the same set holds the same one
//! (`manifest_rule` property test below).
//!
//! From v4 the manifest carries the **purpose keys** ([`crate::purpose`]: medical, manager,
//! operation), each sealed to the devices that hold it ([`Membership::unseal`],
//! [`Membership::purposes_of`]), and **`retention_days`**, how long after closing personal data
//! is kept. v3 and v2 manifests are still read, as having neither. From v5 it carries
//! **`receipt_slips`**: whether the deployment hands out a receipt slip (受付票) after a
//! check-in; a v4 (or older) manifest reads as `false`.

use crate::identity::{DeviceKey, signed_bytes, verify};
use crate::purpose::{KeyPurpose, PurposeError, PurposeSecret, SealedKey};
use kazashi_domain::ids::{CardKey, OperatorId};
use kazashi_domain::text::Label;
use kazashi_domain::{Deployment, DeploymentId, DeviceId, Event, EventBody, Millis, SiteId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// v5: `receipt_slips` joined.
const MANIFEST_TAG: &[u8] = b"kazashi-manifest-v5";
/// v4 (the purpose keys sealed to devices, `sealed_keys`, and `retention_days`): still read,
/// as a manifest that hands out no receipt slips.
const MANIFEST_TAG_V4: &[u8] = b"kazashi-manifest-v4";
/// v3 (the JPKI CA certificates, `card_cas`): still read, as a manifest with no sealed keys
/// and no retention period.
const MANIFEST_TAG_V3: &[u8] = b"kazashi-manifest-v3";
/// v2 (the staff list and `closed_at`): still read, as a manifest with no card CAs.
const MANIFEST_TAG_V2: &[u8] = b"kazashi-manifest-v2";

/// The most JPKI CA certificates a manifest carries, and the largest one (DER bytes).
pub const MAX_CARD_CAS: usize = 16;
pub const MAX_CARD_CA_LEN: usize = 8 * 1024;
/// The longest retention period a manifest may set (a hundred years, in days).
pub const MAX_RETENTION_DAYS: u32 = 36_525;

/// The longest PIN hash (PHC string) a staff entry may carry.
pub const MAX_PIN_HASH: usize = 256;
/// How a staff entry's PIN hash must begin: Argon2id, PHC string format.
pub const PIN_HASH_PREFIX: &str = "$argon2id$";

/// What an enrolled device may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// A laptop at a shelter or polling station: writes events for its sites.
    Station,
    /// Headquarters (災害対策本部 / 選挙管理委員会): writes alert resolutions, assertions and
    /// events for any site.
    CommandCenter,
    /// Carries data between sites (a USB courier's laptop): writes nothing.
    Relay,
}

/// One enrolled device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceEntry {
    pub device: DeviceId,
    pub role: Role,
    /// A name for people ("第一小学校 受付1").
    pub label: Label,
    /// The sites a station may write for (empty: any site of the deployment).
    pub sites: Vec<SiteId>,
}

/// A revoked device: everything it signed with an HLC time at or after `from_ms` is not
/// counted (kept in the log, withheld from the fold: [`Membership::withholds`]). Set `from_ms`
/// to the last moment the laptop was known to be in trusted hands. The rule depends only on
/// the event and the manifest, so every node that holds the same manifest counts the same
/// events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub device: DeviceId,
    pub from_ms: Millis,
}

/// What a staff member may do in the window (`kazashi_node::staff` re-exports it as `Role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum StaffRole {
    /// 受付係: check-in, check-out, walk-ins, voter check-in.
    Reception,
    /// 避難所運営責任者 / 投票管理者: also undo, overrides as second officer, status
    /// reports, alert settlement, USB bundles.
    Lead,
    /// 救護班: reception plus the 問診票 notes.
    Medical,
    /// 本部: read-only views of the site.
    Command,
}

impl StaffRole {
    pub const ALL: [StaffRole; 4] = [
        StaffRole::Reception,
        StaffRole::Lead,
        StaffRole::Medical,
        StaffRole::Command,
    ];

    pub fn code(self) -> &'static str {
        match self {
            StaffRole::Reception => "reception",
            StaffRole::Lead => "lead",
            StaffRole::Medical => "medical",
            StaffRole::Command => "command",
        }
    }

    pub fn from_code(s: &str) -> Option<StaffRole> {
        StaffRole::ALL.into_iter().find(|r| r.code() == s)
    }

    /// May write check-ins and the like.
    pub fn writes(self) -> bool {
        self != StaffRole::Command
    }

    /// May undo, override as the second officer, file status reports, settle alerts.
    pub fn manages(self) -> bool {
        self == StaffRole::Lead
    }

    /// May read 問診票 notes.
    pub fn medical(self) -> bool {
        self == StaffRole::Medical
    }
}

/// A staff member of the deployment, who may unlock the window of any laptop at their sites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffEntry {
    /// What they type at the lock screen, and what every event they write names.
    pub id: OperatorId,
    /// For people only ("受付 山田"): keep it short; it is shown, never matched.
    pub name: Label,
    pub role: StaffRole,
    /// The PIN's Argon2id hash as a PHC string (its own random salt), never the PIN.
    pub pin_hash: Option<String>,
    /// The deployment card key of their own My Number Card: a tap unlocks.
    pub card: Option<CardKey>,
    /// The sites whose laptops they may unlock (empty: every site).
    pub sites: Vec<SiteId>,
}

impl StaffEntry {
    /// Whether the entry lets them unlock a laptop at `site`.
    pub fn allowed_at(&self, site: &SiteId) -> bool {
        self.sites.is_empty() || self.sites.contains(site)
    }
}

/// The content of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Increases with every reissue.
    pub version: u32,
    pub deployment: Deployment,
    /// The administrator's public key.
    pub admin: DeviceId,
    pub devices: Vec<DeviceEntry>,
    pub revoked: Vec<Revocation>,
    /// The deployment-wide staff list.
    pub staff: Vec<StaffEntry>,
    /// When the operation was closed: no laptop holding this manifest writes any more, and
    /// events stamped at or after it are refused.
    pub closed_at: Option<Millis>,
    /// The JPKI CA certificates (X.509 DER) that issue the cards this deployment trusts for
    /// staff unlock, a second officer's approval and a voter's check-in by card
    /// (`kazashi deployment init --card-ca FILE`). Empty: no card grants authority.
    pub card_cas: Vec<Vec<u8>>,
    /// The purpose keys (medical, manager, operation), each sealed to the devices that hold it
    /// ([`crate::purpose`]). Empty in a manifest of v3 or earlier.
    pub sealed_keys: Vec<SealedKey>,
    /// How many days after `closed_at` personal data is kept before each laptop purges it;
    /// `None`: not set (kept until a manager acts).
    pub retention_days: Option<u32>,
    /// Whether a check-in's receipt slip (受付票) is offered in the window
    /// (`kazashi deployment receipt-slips on|off`). `false` in a manifest of v4 or earlier.
    pub receipt_slips: bool,
}

/// A v4 manifest's content (before `receipt_slips`): read as one that hands out no slips.
#[derive(Serialize, Deserialize)]
struct ManifestV4 {
    version: u32,
    deployment: Deployment,
    admin: DeviceId,
    devices: Vec<DeviceEntry>,
    revoked: Vec<Revocation>,
    staff: Vec<StaffEntry>,
    closed_at: Option<Millis>,
    card_cas: Vec<Vec<u8>>,
    sealed_keys: Vec<SealedKey>,
    retention_days: Option<u32>,
}

impl From<ManifestV4> for Manifest {
    fn from(m: ManifestV4) -> Self {
        Manifest {
            version: m.version,
            deployment: m.deployment,
            admin: m.admin,
            devices: m.devices,
            revoked: m.revoked,
            staff: m.staff,
            closed_at: m.closed_at,
            card_cas: m.card_cas,
            sealed_keys: m.sealed_keys,
            retention_days: m.retention_days,
            receipt_slips: false,
        }
    }
}

/// A v3 manifest's content (before `sealed_keys` and `retention_days`): read as one with
/// neither.
#[derive(Serialize, Deserialize)]
struct ManifestV3 {
    version: u32,
    deployment: Deployment,
    admin: DeviceId,
    devices: Vec<DeviceEntry>,
    revoked: Vec<Revocation>,
    staff: Vec<StaffEntry>,
    closed_at: Option<Millis>,
    card_cas: Vec<Vec<u8>>,
}

impl From<ManifestV3> for Manifest {
    fn from(m: ManifestV3) -> Self {
        Manifest {
            version: m.version,
            deployment: m.deployment,
            admin: m.admin,
            devices: m.devices,
            revoked: m.revoked,
            staff: m.staff,
            closed_at: m.closed_at,
            card_cas: m.card_cas,
            sealed_keys: Vec::new(),
            retention_days: None,
            receipt_slips: false,
        }
    }
}

/// A v2 manifest's content (before `card_cas`): read and taken as one with no card CAs.
#[derive(Serialize, Deserialize)]
struct ManifestV2 {
    version: u32,
    deployment: Deployment,
    admin: DeviceId,
    devices: Vec<DeviceEntry>,
    revoked: Vec<Revocation>,
    staff: Vec<StaffEntry>,
    closed_at: Option<Millis>,
}

impl From<ManifestV2> for Manifest {
    fn from(m: ManifestV2) -> Self {
        Manifest {
            version: m.version,
            deployment: m.deployment,
            admin: m.admin,
            devices: m.devices,
            revoked: m.revoked,
            staff: m.staff,
            closed_at: m.closed_at,
            card_cas: Vec::new(),
            sealed_keys: Vec::new(),
            retention_days: None,
            receipt_slips: false,
        }
    }
}

/// `bytes` as a `T`, every byte used (postcard alone would ignore a tail).
fn decode_exact<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ManifestError> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((v, [])) => Ok(v),
        Ok(_) => Err(ManifestError::Malformed("bytes after the manifest".into())),
        Err(e) => Err(ManifestError::Malformed(e.to_string())),
    }
}

/// A manifest with its administrator's signature, as carried on USB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedManifest {
    manifest: Vec<u8>,
    signature: Vec<u8>,
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("the manifest file is malformed: {0}")]
    Malformed(String),
    #[error("the manifest's signature does not verify with its administrator key")]
    BadSignature,
    #[error("the manifest was signed by a key other than the manifest's administrator")]
    NotAdmin,
    #[error("the manifest is for another deployment ({found}), not {expected}")]
    WrongDeployment {
        expected: DeploymentId,
        found: DeploymentId,
    },
    #[error("the manifest names a different administrator key than the enrolled one")]
    AdminChanged,
    #[error("the manifest's version {found} is not newer than the current {current}")]
    NotNewer { current: u32, found: u32 },
    #[error("device {0} is listed twice")]
    DuplicateDevice(DeviceId),
    #[error("device {device} may write for site {site}, which is not in the deployment")]
    UnknownSite { device: DeviceId, site: SiteId },
    #[error("staff member {0} is listed twice")]
    DuplicateStaff(OperatorId),
    #[error("staff member {staff} is listed for site {site}, which is not in the deployment")]
    StaffUnknownSite { staff: OperatorId, site: SiteId },
    #[error("staff member {0}'s PIN field is not an Argon2id hash (PHC string)")]
    NotAPinHash(OperatorId),
    #[error("staff members {0} and {1} have the same staff card")]
    DuplicateStaffCard(OperatorId, OperatorId),
    #[error("the sealed purpose keys: {0}")]
    Purpose(#[from] PurposeError),
    #[error("the retention period is over {MAX_RETENTION_DAYS} days")]
    Retention,
    #[error("card CA certificate {0} is empty or too large, or there are too many")]
    BadCardCa(usize),
    #[error(
        "version {0} differs from the installed one of the same version, whose signed bytes \
         have the lower SHA-256 and so win (a conflict)"
    )]
    ConflictLost(u32),
}

impl SignedManifest {
    /// Sign `manifest` with the administrator key (which must be `manifest.admin`).
    pub fn sign(manifest: &Manifest, admin: &DeviceKey) -> Result<Self, ManifestError> {
        if admin.device_id() != manifest.admin {
            return Err(ManifestError::NotAdmin);
        }
        check(manifest)?;
        let bytes =
            postcard::to_allocvec(manifest).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        let signature = admin.sign(&signed_bytes(MANIFEST_TAG, &[&bytes])).to_vec();
        Ok(Self {
            manifest: bytes,
            signature,
        })
    }

    /// The file's bytes: postcard's layout of the two byte strings (each a varint length,
    /// then the bytes), written by hand because it cannot fail.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.manifest.len() + self.signature.len() + 10);
        crate::wire::put_bytes(&mut out, &self.manifest);
        crate::wire::put_bytes(&mut out, &self.signature);
        out
    }

    /// Decode and verify against the administrator key inside. Whether that key is the right
    /// one is for the person enrolling to confirm, by the fingerprint.
    pub fn decode(bytes: &[u8]) -> Result<Membership, ManifestError> {
        let signed: SignedManifest =
            postcard::from_bytes(bytes).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        // The current layout, signed under its tag; else a v4, v3 or v2 one under theirs (the
        // layouts differ, and each is read to its last byte, so a manifest is only ever one of
        // them).
        let (manifest, tag): (Manifest, &[u8]) = match decode_exact::<Manifest>(&signed.manifest) {
            Ok(m) => (m, MANIFEST_TAG),
            Err(e) => match decode_exact::<ManifestV4>(&signed.manifest) {
                Ok(m) => (m.into(), MANIFEST_TAG_V4),
                Err(_) => match decode_exact::<ManifestV3>(&signed.manifest) {
                    Ok(m) => (m.into(), MANIFEST_TAG_V3),
                    Err(_) => match decode_exact::<ManifestV2>(&signed.manifest) {
                        Ok(m) => (m.into(), MANIFEST_TAG_V2),
                        Err(_) => return Err(e),
                    },
                },
            },
        };
        if !verify(
            &manifest.admin,
            &signed_bytes(tag, &[&signed.manifest]),
            &signed.signature,
        ) {
            return Err(ManifestError::BadSignature);
        }
        check(&manifest)?;
        Ok(Membership::new(manifest, signed))
    }
}

fn check(m: &Manifest) -> Result<(), ManifestError> {
    if m.card_cas.len() > MAX_CARD_CAS {
        return Err(ManifestError::BadCardCa(MAX_CARD_CAS + 1));
    }
    if let Some(i) = m
        .card_cas
        .iter()
        .position(|c| c.is_empty() || c.len() > MAX_CARD_CA_LEN)
    {
        return Err(ManifestError::BadCardCa(i + 1));
    }
    let mut staff = std::collections::BTreeSet::new();
    let mut cards: BTreeMap<CardKey, OperatorId> = BTreeMap::new();
    for s in &m.staff {
        if !staff.insert(s.id) {
            return Err(ManifestError::DuplicateStaff(s.id));
        }
        if let Some(site) = s.sites.iter().find(|x| m.deployment.site(x).is_none()) {
            return Err(ManifestError::StaffUnknownSite {
                staff: s.id,
                site: *site,
            });
        }
        if let Some(h) = &s.pin_hash
            && !is_pin_hash(h)
        {
            return Err(ManifestError::NotAPinHash(s.id));
        }
        if let Some(card) = s.card
            && let Some(first) = cards.insert(card, s.id)
        {
            return Err(ManifestError::DuplicateStaffCard(first, s.id));
        }
    }
    if m.retention_days.is_some_and(|d| d > MAX_RETENTION_DAYS) {
        return Err(ManifestError::Retention);
    }
    let listed = m.devices.iter().map(|d| d.device).collect();
    crate::purpose::check(&m.sealed_keys, &listed)?;
    let mut seen = std::collections::BTreeSet::new();
    for d in &m.devices {
        if !seen.insert(d.device) {
            return Err(ManifestError::DuplicateDevice(d.device));
        }
        if let Some(site) = d.sites.iter().find(|s| m.deployment.site(s).is_none()) {
            return Err(ManifestError::UnknownSite {
                device: d.device,
                site: *site,
            });
        }
    }
    Ok(())
}

/// Whether `h` looks like an Argon2id PHC string: the prefix, printable ASCII of PHC's
/// alphabet, bounded. (The node parses it in full when a PIN is checked.)
fn is_pin_hash(h: &str) -> bool {
    h.len() <= MAX_PIN_HASH
        && h.starts_with(PIN_HASH_PREFIX)
        && h.split('$').count() >= 5
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"$=,+/.-".contains(&b))
}

/// How a manifest compares with the one in force, under the one rule (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precedence {
    /// A higher version: it wins.
    Newer,
    /// Byte for byte the one in force.
    Same,
    /// A lower version: a rollback.
    Older,
    /// The same version, other bytes, and the lower digest: it wins.
    ConflictWins,
    /// The same version, other bytes, and the higher digest: the one in force stays.
    ConflictLoses,
}

impl Precedence {
    /// Whether the incoming manifest replaces the one in force.
    pub fn replaces(self) -> bool {
        matches!(self, Precedence::Newer | Precedence::ConflictWins)
    }
}

/// Why the fold leaves out an event the log holds ([`Membership::withholds`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withheld {
    /// Its device is revoked and it is stamped at or after the cut-off.
    Revoked { from: Millis },
    /// It is stamped at or after the operation's close (and is not an audit record).
    AfterClose { at: Millis },
}

/// The time cut-offs a manifest sets (revocations and the close): two manifests with equal
/// cut-offs withhold the same events ([`Membership::cutoffs`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cutoffs {
    revoked: BTreeMap<DeviceId, Millis>,
    closed_at: Option<Millis>,
}

impl Cutoffs {
    /// Whether the fold leaves `e` out under these cut-offs: revocation and the operation's
    /// close are verdicts of the fold, never of the door (`envelope::open` keeps such events).
    /// Audit records go on after the close (exports and reports still read personal data), but
    /// not after their device's revocation.
    pub fn withholds(&self, e: &Event) -> Option<Withheld> {
        withholds(&self.revoked, self.closed_at, e)
    }

    /// Whether nothing is cut off (no revocation, no close).
    pub fn is_empty(&self) -> bool {
        self.revoked.is_empty() && self.closed_at.is_none()
    }
}

fn withholds(
    revoked: &BTreeMap<DeviceId, Millis>,
    closed_at: Option<Millis>,
    e: &Event,
) -> Option<Withheld> {
    let wall = e.at().wall_ms;
    if let Some(&from) = revoked.get(&e.device())
        && wall >= from
    {
        return Some(Withheld::Revoked { from });
    }
    match closed_at {
        Some(at) if wall >= at && !matches!(e.body(), EventBody::Audit(_)) => {
            Some(Withheld::AfterClose { at })
        }
        _ => None,
    }
}

/// The verified manifest in force, indexed for envelope checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    manifest: Manifest,
    signed: SignedManifest,
    devices: BTreeMap<DeviceId, DeviceEntry>,
    revoked: BTreeMap<DeviceId, Millis>,
    staff: BTreeMap<OperatorId, StaffEntry>,
    digest: [u8; 32],
}

impl Membership {
    fn new(manifest: Manifest, signed: SignedManifest) -> Self {
        let devices = manifest
            .devices
            .iter()
            .map(|d| (d.device, d.clone()))
            .collect();
        let mut revoked: BTreeMap<DeviceId, Millis> = BTreeMap::new();
        for r in &manifest.revoked {
            let e = revoked.entry(r.device).or_insert(r.from_ms);
            *e = (*e).min(r.from_ms);
        }
        let staff = manifest.staff.iter().map(|s| (s.id, s.clone())).collect();
        let digest = Sha256::digest(signed.encode()).into();
        Self {
            manifest,
            signed,
            devices,
            revoked,
            staff,
            digest,
        }
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    pub fn deployment(&self) -> &Deployment {
        &self.manifest.deployment
    }
    pub fn version(&self) -> u32 {
        self.manifest.version
    }
    /// The signed file, to pass on to another laptop.
    pub fn signed(&self) -> &SignedManifest {
        &self.signed
    }
    pub fn device(&self, id: &DeviceId) -> Option<&DeviceEntry> {
        self.devices.get(id)
    }
    /// From when a device's events are not counted, if it is revoked.
    pub fn revoked_from(&self, id: &DeviceId) -> Option<Millis> {
        self.revoked.get(id).copied()
    }

    /// Whether the fold leaves out `e` under this manifest (it stays in the log, is synced and
    /// bundled as any other): its device revoked and it stamped at or after the cut-off, or it
    /// stamped at or after the operation's close (audit records exempt). See [`Cutoffs`].
    pub fn withholds(&self, e: &Event) -> Option<Withheld> {
        withholds(&self.revoked, self.manifest.closed_at, e)
    }

    /// The cut-offs this manifest sets: a manifest with other cut-offs may change which held
    /// events count, so a node refolds when it installs one.
    pub fn cutoffs(&self) -> Cutoffs {
        Cutoffs {
            revoked: self.revoked.clone(),
            closed_at: self.manifest.closed_at,
        }
    }

    /// The deployment-wide staff member `id`, if listed.
    pub fn staff(&self, id: &OperatorId) -> Option<&StaffEntry> {
        self.staff.get(id)
    }
    /// The staff member whose card this is, if listed.
    pub fn staff_by_card(&self, card: &CardKey) -> Option<&StaffEntry> {
        self.manifest.staff.iter().find(|s| s.card == Some(*card))
    }
    /// When the operation was closed, if it was.
    pub fn closed_at(&self) -> Option<Millis> {
        self.manifest.closed_at
    }
    /// The JPKI CA certificates (DER) the deployment trusts for cards.
    pub fn card_cas(&self) -> &[Vec<u8>] {
        &self.manifest.card_cas
    }

    /// How many days after closing personal data is kept, if the manifest sets it.
    pub fn retention_days(&self) -> Option<u32> {
        self.manifest.retention_days
    }

    /// Whether the deployment hands out a receipt slip after a check-in.
    pub fn receipt_slips(&self) -> bool {
        self.manifest.receipt_slips
    }

    /// The purpose keys and who holds them.
    pub fn sealed_keys(&self) -> &[SealedKey] {
        &self.manifest.sealed_keys
    }

    /// The public key things for `purpose` are sealed to, if the manifest has one.
    pub fn purpose_public(&self, purpose: KeyPurpose) -> Option<[u8; 32]> {
        self.sealed_key(purpose).map(|k| k.public)
    }

    fn sealed_key(&self, purpose: KeyPurpose) -> Option<&SealedKey> {
        self.manifest
            .sealed_keys
            .iter()
            .find(|k| k.purpose == purpose)
    }

    /// Whether `device` is sealed a copy of `purpose`'s secret (and is not revoked).
    pub fn holds(&self, device: &DeviceId, purpose: KeyPurpose) -> bool {
        self.revoked_from(device).is_none()
            && self
                .sealed_key(purpose)
                .is_some_and(|k| k.holders.iter().any(|h| h.device == *device))
    }

    /// The purposes `device` holds, in [`KeyPurpose::ALL`]'s order.
    pub fn purposes_of(&self, device: &DeviceId) -> Vec<KeyPurpose> {
        KeyPurpose::ALL
            .into_iter()
            .filter(|p| self.holds(device, *p))
            .collect()
    }

    /// This device's copy of `purpose`'s secret, unwrapped with its device key: `None` if the
    /// manifest has no such key, the device does not hold it or is revoked, or it does not open.
    pub fn unseal(&self, purpose: KeyPurpose, me: &DeviceKey) -> Option<PurposeSecret> {
        if self.revoked_from(&me.device_id()).is_some() {
            return None;
        }
        crate::purpose::unseal(self.sealed_key(purpose)?, me)
    }

    /// SHA-256 of the signed manifest's bytes: settles two manifests of the same version.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// How `next` compares with this manifest under the one rule (module docs); another
    /// deployment's or administrator's is an error.
    pub fn precedence(&self, next: &Membership) -> Result<Precedence, ManifestError> {
        if next.deployment().id() != self.deployment().id() {
            return Err(ManifestError::WrongDeployment {
                expected: self.deployment().id(),
                found: next.deployment().id(),
            });
        }
        if next.manifest.admin != self.manifest.admin {
            return Err(ManifestError::AdminChanged);
        }
        Ok(match next.version().cmp(&self.version()) {
            std::cmp::Ordering::Greater => Precedence::Newer,
            std::cmp::Ordering::Less => Precedence::Older,
            std::cmp::Ordering::Equal => match next.digest.cmp(&self.digest) {
                std::cmp::Ordering::Equal => Precedence::Same,
                std::cmp::Ordering::Less => Precedence::ConflictWins,
                std::cmp::Ordering::Greater => Precedence::ConflictLoses,
            },
        })
    }

    /// Eight hex digits of the SHA-256 of the signed manifest, in two groups, for the
    /// administrator to read out and the enrolling operator to compare ("3fa2-91c0").
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.signed.encode());
        let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}",
            hex.get(..4).unwrap_or(""),
            hex.get(4..).unwrap_or("")
        )
    }

    /// Take a manifest of the same deployment from the same administrator if it wins over
    /// this one under the rule: a newer version, or the same version with the lower digest.
    pub fn update(&self, bytes: &[u8]) -> Result<Membership, ManifestError> {
        let next = SignedManifest::decode(bytes)?;
        match self.precedence(&next)? {
            Precedence::Newer | Precedence::ConflictWins => Ok(next),
            Precedence::ConflictLoses => Err(ManifestError::ConflictLost(next.version())),
            Precedence::Same | Precedence::Older => Err(ManifestError::NotNewer {
                current: self.version(),
                found: next.version(),
            }),
        }
    }
}

#[cfg(test)]
mod encoding {
    use super::*;

    #[test]
    fn the_hand_encoding_is_postcards_for_any_length() {
        for (m, s) in [
            (0usize, 0usize),
            (1, 64),
            (127, 128),
            (128, 64),
            (300, 64),
            (20_000, 64),
        ] {
            let signed = SignedManifest {
                manifest: (0..m).map(|i| (i * 7) as u8).collect(),
                signature: vec![0xAB; s],
            };
            assert_eq!(
                signed.encode(),
                postcard::to_allocvec(&signed).unwrap(),
                "{m} {s}"
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod manifest_rule {
    use super::*;
    use kazashi_domain::deployment::DeploymentKind;
    use kazashi_domain::ids::RosterHash;
    use kazashi_domain::{Site, SiteKind};
    use proptest::prelude::*;

    const HASH: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA";

    fn admin(seed: u8) -> DeviceKey {
        DeviceKey::from_seed([seed; 32])
    }

    fn deployment(dep: u8) -> Deployment {
        let site = |id: &str| Site {
            id: SiteId::new(id).unwrap(),
            name: Label::new("第一小学校").unwrap(),
            kind: SiteKind::CommandCenter,
        };
        Deployment::new(
            DeploymentId([dep; 16]),
            Label::new("test").unwrap(),
            DeploymentKind::ShelterOperation,
            RosterHash([0; 32]),
            vec![site("S1"), site("S2")],
        )
        .unwrap()
    }

    fn staff(id: &str) -> StaffEntry {
        StaffEntry {
            id: OperatorId::new(id).unwrap(),
            name: Label::new("受付").unwrap(),
            role: StaffRole::Reception,
            pin_hash: Some(HASH.into()),
            card: None,
            sites: vec![],
        }
    }

    /// Version `version` of deployment `dep` signed by `admin(key)`: devices 1..=devices,
    /// device 1 revoked from `revoke` if given, and `variant` staff (so two manifests of the
    /// same version may differ).
    fn manifest(key: u8, dep: u8, version: u32, variant: u8, revoke: Option<u64>) -> Manifest {
        Manifest {
            version,
            deployment: deployment(dep),
            admin: admin(key).device_id(),
            devices: (1..=3u8)
                .map(|n| DeviceEntry {
                    device: DeviceKey::from_seed([n; 32]).device_id(),
                    role: Role::Station,
                    label: Label::new("laptop").unwrap(),
                    sites: vec![],
                })
                .collect(),
            revoked: revoke
                .map(|from_ms| Revocation {
                    device: DeviceKey::from_seed([1; 32]).device_id(),
                    from_ms,
                })
                .into_iter()
                .collect(),
            staff: (0..variant).map(|i| staff(&format!("staff{i}"))).collect(),
            closed_at: None,
            card_cas: vec![],
            sealed_keys: vec![],
            retention_days: None,
            receipt_slips: false,
        }
    }

    fn sign(m: &Manifest, key: u8) -> Vec<u8> {
        SignedManifest::sign(m, &admin(key)).unwrap().encode()
    }

    #[test]
    fn card_cas_travel_signed_and_a_v2_manifest_still_reads_with_none() {
        let mut m = manifest(9, 1, 2, 1, None);
        m.card_cas = vec![vec![0x30, 0x03, 1, 2, 3], vec![0x30; 40]];
        let members = SignedManifest::decode(&sign(&m, 9)).unwrap();
        assert_eq!(members.card_cas(), m.card_cas.as_slice());
        assert_eq!(members.manifest(), &m);
        // Too many, an empty one, an oversized one: refused at signing.
        let refused = |m: &Manifest| SignedManifest::sign(m, &admin(9)).unwrap_err();
        let mut empty = m.clone();
        empty.card_cas.push(vec![]);
        assert_eq!(refused(&empty), ManifestError::BadCardCa(3));
        let mut big = m.clone();
        big.card_cas[0] = vec![0; MAX_CARD_CA_LEN + 1];
        assert_eq!(refused(&big), ManifestError::BadCardCa(1));
        let mut many = m.clone();
        many.card_cas = vec![vec![1]; MAX_CARD_CAS + 1];
        assert!(matches!(refused(&many), ManifestError::BadCardCa(_)));

        // A manifest signed by v2 software: its layout, its tag.
        let old = manifest(9, 1, 3, 1, None);
        let v2 = ManifestV2 {
            version: old.version,
            deployment: old.deployment.clone(),
            admin: old.admin,
            devices: old.devices.clone(),
            revoked: old.revoked.clone(),
            staff: old.staff.clone(),
            closed_at: Some(5),
        };
        let bytes = postcard::to_allocvec(&v2).unwrap();
        let signed = |tag: &[u8]| {
            SignedManifest {
                manifest: bytes.clone(),
                signature: admin(9).sign(&signed_bytes(tag, &[&bytes])).to_vec(),
            }
            .encode()
        };
        let read = SignedManifest::decode(&signed(MANIFEST_TAG_V2)).unwrap();
        assert!(read.card_cas().is_empty());
        assert_eq!(read.closed_at(), Some(5));
        assert_eq!(read.staff(&old.staff[0].id), Some(&old.staff[0]));
        // The v2 layout under the v3 tag (or a tail after a manifest) is not a manifest.
        assert_eq!(
            SignedManifest::decode(&signed(MANIFEST_TAG)).unwrap_err(),
            ManifestError::BadSignature
        );
        assert_a_tail_is_malformed(&m);
    }

    #[test]
    fn sealed_keys_and_retention_travel_signed_and_a_v3_manifest_reads_with_neither() {
        use crate::purpose::{Holder, reseal};
        let mut m = manifest(9, 1, 2, 1, None);
        let ids: Vec<DeviceId> = m.devices.iter().map(|d| d.device).collect();
        let medical = PurposeSecret::new([21; 32]);
        let op = PurposeSecret::new([22; 32]);
        let grant = vec![SealedKey {
            purpose: KeyPurpose::Medical,
            public: [0; 32],
            ephemeral: [0; 32],
            holders: vec![Holder {
                device: ids[1],
                wrapped: vec![],
            }],
        }];
        m.sealed_keys = reseal(
            &grant,
            &ids,
            &[
                (KeyPurpose::Medical, &medical),
                (KeyPurpose::Operation, &op),
            ],
            [3; 32],
        );
        m.retention_days = Some(30);
        let members = SignedManifest::decode(&sign(&m, 9)).unwrap();
        assert_eq!(members.manifest(), &m);
        assert_eq!(members.retention_days(), Some(30));
        let d2 = DeviceKey::from_seed([2; 32]);
        let d1 = DeviceKey::from_seed([1; 32]);
        assert_eq!(
            members.purposes_of(&ids[1]),
            vec![KeyPurpose::Medical, KeyPurpose::Operation]
        );
        assert_eq!(members.purposes_of(&ids[0]), vec![KeyPurpose::Operation]);
        assert_eq!(
            members.unseal(KeyPurpose::Medical, &d2).unwrap().bytes(),
            &[21; 32]
        );
        assert!(members.unseal(KeyPurpose::Medical, &d1).is_none());
        assert!(members.unseal(KeyPurpose::Manager, &d2).is_none());
        assert_eq!(
            members.purpose_public(KeyPurpose::Medical),
            Some(medical.public())
        );
        // Revoked: holds nothing, unseals nothing.
        let mut r = m.clone();
        r.revoked.push(Revocation {
            device: ids[1],
            from_ms: 5,
        });
        let revoked = SignedManifest::decode(&sign(&r, 9)).unwrap();
        assert!(revoked.purposes_of(&ids[1]).is_empty());
        assert!(revoked.unseal(KeyPurpose::Medical, &d2).is_none());
        // Refused at signing: a retention over the limit, a holder not listed.
        let mut long = m.clone();
        long.retention_days = Some(MAX_RETENTION_DAYS + 1);
        assert_eq!(
            SignedManifest::sign(&long, &admin(9)).unwrap_err(),
            ManifestError::Retention
        );
        let mut stranger = m.clone();
        stranger.devices.remove(1);
        assert!(matches!(
            SignedManifest::sign(&stranger, &admin(9)).unwrap_err(),
            ManifestError::Purpose(_)
        ));

        // A manifest signed by v3 software: its layout, its tag; none of the new fields.
        let v3 = ManifestV3 {
            version: 3,
            deployment: m.deployment.clone(),
            admin: m.admin,
            devices: m.devices.clone(),
            revoked: vec![],
            staff: m.staff.clone(),
            closed_at: None,
            card_cas: vec![vec![0x30, 1]],
        };
        let bytes = postcard::to_allocvec(&v3).unwrap();
        let signed = |tag: &[u8]| {
            SignedManifest {
                manifest: bytes.clone(),
                signature: admin(9).sign(&signed_bytes(tag, &[&bytes])).to_vec(),
            }
            .encode()
        };
        let read = SignedManifest::decode(&signed(MANIFEST_TAG_V3)).unwrap();
        assert!(read.sealed_keys().is_empty());
        assert_eq!(read.retention_days(), None);
        assert_eq!(read.card_cas(), &[vec![0x30, 1]]);
        assert!(read.unseal(KeyPurpose::Operation, &d1).is_none());
        assert_eq!(
            SignedManifest::decode(&signed(MANIFEST_TAG)).unwrap_err(),
            ManifestError::BadSignature
        );
    }

    #[test]
    fn receipt_slips_travel_signed_and_a_v4_manifest_reads_as_without() {
        let mut m = manifest(9, 1, 2, 1, None);
        m.retention_days = Some(7);
        m.receipt_slips = true;
        let members = SignedManifest::decode(&sign(&m, 9)).unwrap();
        assert!(members.receipt_slips());
        assert_eq!(members.manifest(), &m);
        // A manifest signed by v4 software: its layout under its tag reads, with no slips and
        // everything else kept; the same bytes under the v5 tag do not verify.
        let v4 = ManifestV4 {
            version: m.version,
            deployment: m.deployment.clone(),
            admin: m.admin,
            devices: m.devices.clone(),
            revoked: vec![],
            staff: m.staff.clone(),
            closed_at: None,
            card_cas: vec![],
            sealed_keys: vec![],
            retention_days: Some(7),
        };
        let bytes = postcard::to_allocvec(&v4).unwrap();
        let signed = |tag: &[u8]| {
            SignedManifest {
                manifest: bytes.clone(),
                signature: admin(9).sign(&signed_bytes(tag, &[&bytes])).to_vec(),
            }
            .encode()
        };
        let read = SignedManifest::decode(&signed(MANIFEST_TAG_V4)).unwrap();
        assert!(!read.receipt_slips());
        assert_eq!(read.retention_days(), Some(7));
        assert_eq!(read.manifest().staff, m.staff);
        assert_eq!(
            SignedManifest::decode(&signed(MANIFEST_TAG)).unwrap_err(),
            ManifestError::BadSignature
        );
        // A v5 manifest with a byte more is not a manifest.
        assert_a_tail_is_malformed(&m);
    }

    #[test]
    fn staff_and_closing_travel_signed_and_a_pin_in_the_clear_is_refused() {
        let mut m = manifest(9, 1, 2, 0, None);
        let mut s = staff("uketsuke1");
        s.sites = vec![SiteId::new("S2").unwrap()];
        s.card = Some(CardKey([4; 32]));
        m.staff.push(s.clone());
        m.closed_at = Some(1_800_000_000_000);
        let members = SignedManifest::decode(&sign(&m, 9)).unwrap();
        assert_eq!(members.staff(&s.id), Some(&s));
        assert_eq!(members.staff_by_card(&CardKey([4; 32])), Some(&s));
        assert_eq!(members.staff_by_card(&CardKey([5; 32])), None);
        assert_eq!(members.closed_at(), Some(1_800_000_000_000));
        assert!(s.allowed_at(&SiteId::new("S2").unwrap()));
        assert!(!s.allowed_at(&SiteId::new("S1").unwrap()));

        let refused = |m: &Manifest| SignedManifest::sign(m, &admin(9)).unwrap_err();
        let mut clear = m.clone();
        clear.staff[0].pin_hash = Some("2468".into());
        assert_eq!(refused(&clear), ManifestError::NotAPinHash(s.id));
        clear.staff[0].pin_hash = Some("$argon2i$v=19$m=1,t=1,p=1$a$b".into());
        assert_eq!(refused(&clear), ManifestError::NotAPinHash(s.id));
        clear.staff[0].pin_hash = Some(format!("{HASH}\n2468"));
        assert_eq!(refused(&clear), ManifestError::NotAPinHash(s.id));
        let mut twice = m.clone();
        twice.staff.push(s.clone());
        assert_eq!(refused(&twice), ManifestError::DuplicateStaff(s.id));
        let mut card = m.clone();
        let mut other = staff("uketsuke2");
        other.card = s.card;
        card.staff.push(other.clone());
        assert_eq!(
            refused(&card),
            ManifestError::DuplicateStaffCard(s.id, other.id)
        );
        let mut away = m.clone();
        away.staff[0].sites = vec![SiteId::new("S9").unwrap()];
        assert!(matches!(
            refused(&away),
            ManifestError::StaffUnknownSite { .. }
        ));
    }

    #[test]
    fn the_same_version_is_settled_by_the_lower_digest_in_either_order() {
        let a = SignedManifest::decode(&sign(&manifest(9, 1, 2, 1, None), 9)).unwrap();
        let b = SignedManifest::decode(&sign(&manifest(9, 1, 2, 2, None), 9)).unwrap();
        let (low, high) = if a.digest() < b.digest() {
            (a, b)
        } else {
            (b, a)
        };
        assert_eq!(
            high.precedence(&low).unwrap(),
            Precedence::ConflictWins,
            "the lower digest replaces the higher"
        );
        assert_eq!(low.precedence(&high).unwrap(), Precedence::ConflictLoses);
        assert_eq!(low.precedence(&low).unwrap(), Precedence::Same);
        assert_eq!(
            high.update(&low.signed().encode()).unwrap().digest(),
            low.digest()
        );
        assert_eq!(
            low.update(&high.signed().encode()),
            Err(ManifestError::ConflictLost(2))
        );
        // Versions first: a higher version wins over either, a lower one is a rollback.
        let v3 = SignedManifest::decode(&sign(&manifest(9, 1, 3, 0, None), 9)).unwrap();
        assert_eq!(low.precedence(&v3).unwrap(), Precedence::Newer);
        assert_eq!(v3.precedence(&low).unwrap(), Precedence::Older);
        let other_admin = SignedManifest::decode(&sign(&manifest(8, 1, 5, 0, None), 8)).unwrap();
        assert_eq!(
            low.precedence(&other_admin),
            Err(ManifestError::AdminChanged)
        );
        let other_dep = SignedManifest::decode(&sign(&manifest(9, 2, 5, 0, None), 9)).unwrap();
        assert!(matches!(
            low.precedence(&other_dep),
            Err(ManifestError::WrongDeployment { .. })
        ));
    }

    /// What a node ends with, from the genesis manifest, taking `deliveries` in order under
    /// the rule (refusals change nothing).
    fn settle(genesis: &[u8], deliveries: &[&[u8]]) -> Vec<u8> {
        let mut held = SignedManifest::decode(genesis).unwrap();
        for bytes in deliveries {
            if let Ok(next) = held.update(bytes) {
                held = next;
            }
        }
        held.signed().encode()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Whatever the order in which a set of manifests reaches the nodes — several
        /// versions, same-version conflicts, revocations, another administrator's and another
        /// deployment's — every node ends with the same manifest: the greatest by version,
        /// then lower digest, of the valid ones.
        #[test]
        fn every_delivery_order_ends_with_the_same_membership(
            specs in proptest::collection::vec(
                (1u32..5, 0u8..3, proptest::option::of(0u64..3), 0u8..10),
                1..8,
            ),
            seeds in proptest::collection::vec(any::<u64>(), 3),
        ) {
            let genesis = sign(&manifest(9, 1, 1, 0, None), 9);
            let set: Vec<Vec<u8>> = specs
                .iter()
                .map(|(version, variant, revoke, who)| match who {
                    // Now and then another administrator's, or another deployment's.
                    0 => sign(&manifest(8, 1, *version + 1, *variant, *revoke), 8),
                    1 => sign(&manifest(9, 2, *version + 1, *variant, *revoke), 9),
                    _ => sign(&manifest(9, 1, *version, *variant, *revoke), 9),
                })
                .collect();
            let mut ends = Vec::new();
            for seed in &seeds {
                // A permutation of the set from the seed, with repeats (a manifest passed on
                // twice), as one node receives it.
                let mut order: Vec<&[u8]> = set.iter().map(Vec::as_slice).collect();
                let mut x = *seed | 1;
                for i in (1..order.len()).rev() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    order.swap(i, (x % (i as u64 + 1)) as usize);
                }
                if let Some(first) = order.first().copied() {
                    order.push(first);
                }
                ends.push(settle(&genesis, &order));
            }
            // The expected end: the greatest valid one by (version, lower digest).
            let valid = set
                .iter()
                .chain(std::iter::once(&genesis))
                .filter_map(|b| SignedManifest::decode(b).ok())
                .filter(|m| m.manifest().admin == admin(9).device_id())
                .filter(|m| m.deployment().id() == DeploymentId([1; 16]))
                .max_by(|a, b| {
                    a.version()
                        .cmp(&b.version())
                        .then_with(|| b.digest().cmp(&a.digest()))
                })
                .unwrap();
            for end in &ends {
                prop_assert_eq!(end, &valid.signed().encode());
            }
        }
    }

    /// `m` serialised with one byte more, signed under the current tag: not a manifest.
    fn assert_a_tail_is_malformed(m: &impl serde::Serialize) {
        let mut tail = postcard::to_allocvec(m).unwrap();
        tail.push(0);
        let tailed = SignedManifest {
            signature: admin(9)
                .sign(&signed_bytes(MANIFEST_TAG, &[&tail]))
                .to_vec(),
            manifest: tail,
        };
        assert!(matches!(
            SignedManifest::decode(&tailed.encode()),
            Err(ManifestError::Malformed(_))
        ));
    }
}
