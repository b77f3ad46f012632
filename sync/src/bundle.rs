//! Bundles: the log on a USB stick, for sites with no network between them.
//!
//! A bundle holds, for each shard, Automerge bytes — a whole save (a *snapshot*) or the changes
//! after given heads (a *delta*) — signed by the exporting device and compressed with zstd.
//! Importing checks the file (format, size, deployment, an enrolled and unrevoked author, the
//! signature) and then merges each shard under exactly the checks a sync message gets, so a
//! bundle can carry nothing that a peer could not have sent.
//!
//! File layout: `KZBUNDLE1` then zstd(postcard(signed bundle)).

use crate::identity::{DeviceKey, signed_bytes, verify};
use crate::manifest::Membership;
use crate::shard::ShardId;
use kazashi_domain::{DeploymentId, DeviceId, Millis};
use serde::{Deserialize, Serialize};

const MAGIC: &[u8] = b"KZBUNDLE1";
const BUNDLE_TAG: &[u8] = b"kazashi-bundle-v1";
/// The largest bundle this node will decompress (a week of a large city is far below).
pub const MAX_BUNDLE_BYTES: usize = 4 << 30;

/// What a bundle holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleBody {
    pub deployment: DeploymentId,
    /// The device that exported and signed it.
    pub author: DeviceId,
    /// When, by the author's clock (display only).
    pub created_ms: Millis,
    /// True for a snapshot (whole shards), false for a delta.
    pub snapshot: bool,
    /// Per shard, Automerge bytes.
    pub shards: Vec<(ShardId, Vec<u8>)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Signed {
    body: Vec<u8>,
    signature: Vec<u8>,
}

/// Why a bundle file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("not a Kazashi bundle")]
    NotABundle,
    #[error("the bundle is damaged: {0}")]
    Damaged(String),
    #[error("the bundle is for another deployment ({0})")]
    WrongDeployment(DeploymentId),
    #[error("the bundle was made by device {0}, which is not enrolled")]
    UnknownAuthor(DeviceId),
    #[error("the bundle was made by device {0}, which is revoked")]
    RevokedAuthor(DeviceId),
    #[error("the bundle's signature does not verify")]
    BadSignature,
}

impl BundleError {
    pub fn code(&self) -> &'static str {
        match self {
            BundleError::NotABundle => "not-a-bundle",
            BundleError::Damaged(_) => "damaged-bundle",
            BundleError::WrongDeployment(_) => "wrong-deployment",
            BundleError::UnknownAuthor(_) => "unknown-device",
            BundleError::RevokedAuthor(_) => "revoked",
            BundleError::BadSignature => "bad-signature",
        }
    }
}

/// Sign and compress a bundle. The author must be `key`'s device.
pub fn write(body: &BundleBody, key: &DeviceKey) -> Result<Vec<u8>, BundleError> {
    if body.author != key.device_id() {
        return Err(BundleError::BadSignature);
    }
    let bytes = postcard::to_allocvec(body).map_err(|e| BundleError::Damaged(e.to_string()))?;
    let signature = key.sign(&signed_bytes(BUNDLE_TAG, &[&bytes])).to_vec();
    let signed = postcard::to_allocvec(&Signed {
        body: bytes,
        signature,
    })
    .map_err(|e| BundleError::Damaged(e.to_string()))?;
    let mut out = MAGIC.to_vec();
    out.extend(zstd::bulk::compress(&signed, 9).map_err(|e| BundleError::Damaged(e.to_string()))?);
    Ok(out)
}

/// Check and open a bundle file.
pub fn read(file: &[u8], members: &Membership) -> Result<BundleBody, BundleError> {
    let packed = file.strip_prefix(MAGIC).ok_or(BundleError::NotABundle)?;
    let raw = decompress_bounded(packed)?;
    let signed: Signed =
        postcard::from_bytes(&raw).map_err(|e| BundleError::Damaged(e.to_string()))?;
    let body: BundleBody =
        postcard::from_bytes(&signed.body).map_err(|e| BundleError::Damaged(e.to_string()))?;
    if body.deployment != members.deployment().id() {
        return Err(BundleError::WrongDeployment(body.deployment));
    }
    if members.device(&body.author).is_none() {
        return Err(BundleError::UnknownAuthor(body.author));
    }
    if members
        .revoked_from(&body.author)
        .is_some_and(|from| body.created_ms >= from)
    {
        return Err(BundleError::RevokedAuthor(body.author));
    }
    if !verify(
        &body.author,
        &signed_bytes(BUNDLE_TAG, &[&signed.body]),
        &signed.signature,
    ) {
        return Err(BundleError::BadSignature);
    }
    Ok(body)
}

fn decompress_bounded(packed: &[u8]) -> Result<Vec<u8>, BundleError> {
    use std::io::Read;
    let decoder =
        zstd::stream::Decoder::new(packed).map_err(|e| BundleError::Damaged(e.to_string()))?;
    let mut out = Vec::new();
    let limit = u64::try_from(MAX_BUNDLE_BYTES).unwrap_or(u64::MAX);
    decoder
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| BundleError::Damaged(e.to_string()))?;
    if out.len() > MAX_BUNDLE_BYTES {
        return Err(BundleError::Damaged("larger than the bundle limit".into()));
    }
    Ok(out)
}
