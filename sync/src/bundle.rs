//! Bundles: the log on a USB stick, for sites with no network between them.
//!
//! A bundle holds, for each shard, Automerge bytes — a whole save or the changes after given
//! heads — together with the exporting device's heads for every shard it held (so that the
//! receiver can later send back only what the exporter lacks). It is signed by the exporting
//! device, compressed with zstd and encrypted for the deployment: a fresh content key, wrapped
//! for every device the manifest enrols and has not revoked, so a lost stick discloses nothing
//! to whoever finds it, and a revoked laptop cannot read bundles made after its revocation
//! reached the exporter.
//!
//! Importing checks, in order and before anything is used: the format, the lengths (with
//! checked arithmetic; a truncated copy is named as such), the deployment, that the header's
//! author is enrolled and unrevoked, the author's signature over the header, that this laptop
//! is a recipient, the authenticated decryption (any altered byte fails here), the size after
//! decompression (inflated at most to the size the signed header declares, which is itself
//! capped), and the author's signature over the body. So a bundle made by anyone but an
//! enrolled device costs the importer one signature check and nothing of zstd: no byte is
//! decrypted or inflated before the header's signature verifies. The node then refuses a
//! bundle it has imported before or made itself, and merges each shard under exactly the
//! checks a sync message gets, so a bundle can carry nothing that a peer could not have sent.
//!
//! ## File layout
//!
//! `KZBUNDLE4`, a u32 (little-endian) header length, the header (postcard: deployment, author,
//! creation time, the body's size after decompression, the ephemeral key, the recipients and
//! the ciphertext's length), the author's ed25519 signature over magic and header (64 bytes),
//! then the ciphertext: ChaCha20-Poly1305 under the content key with a zero nonce (the key is
//! used once), the magic, header and header signature as associated data, over
//! zstd(postcard(signed body)). The body carries the author's signed manifest, so that a
//! laptop never on the LAN learns of newer versions (revocations) from bundles.
//!
//! Files of earlier formats (`KZBUNDLE3`; `KZBUNDLE2`, whose body has no manifest) have no
//! signed header: their contents must be decompressed before their author can be known, so
//! anyone who can reach a recipient's key list (every enrolled device's public key is in the
//! manifest) could make one that costs the importer up to [`LEGACY_INFLATION`] times its size
//! in memory before it is refused. They are therefore refused by default
//! ([`BundleError::OldFormat`], which names the remedy: have the author export again with this
//! version). [`read_with`] and [`ReadOptions::legacy`] (`kazashi bundle import --legacy`)
//! still read them, for a stick whose origin the operator vouches for, with decompression
//! capped at [`LEGACY_INFLATION`] times the file's size and at [`LEGACY_MAX_BYTES`].
//!
//! ## Key wrapping
//!
//! The exporter draws an ephemeral X25519 secret and wraps the content key to each enrolled,
//! unrevoked device with [`crate::wrap`] (X25519 with the device's ed25519 key in Montgomery
//! form, HKDF-SHA256, ChaCha20-Poly1305; info: `kazashi-bundle-wrap-v1` and the device id).

use crate::identity::{DeviceKey, signed_bytes, verify};
use crate::manifest::Membership;
use crate::shard::ShardId;
use crate::wrap;
use chacha20poly1305::Key;
use kazashi_domain::{DeploymentId, DeviceId, Millis};
use serde::{Deserialize, Serialize};

const MAGIC: &[u8] = b"KZBUNDLE4";
/// The third format: no signed header (the author is known only after decompression). Still
/// read, with decompression capped.
const MAGIC_V3: &[u8] = b"KZBUNDLE3";
/// The second format: as the third, but its body carries no manifest. Still read.
const MAGIC_V2: &[u8] = b"KZBUNDLE2";
/// The first format (signed, not encrypted); no longer read.
const OLD_MAGIC: &[u8] = b"KZBUNDLE1";
const BUNDLE_TAG: &[u8] = b"kazashi-bundle-v3";
/// What the author signs over the magic and header of a bundle of the fourth format.
const HEADER_TAG: &[u8] = b"kazashi-bundle-header-v4";
const BUNDLE_TAG_V2: &[u8] = b"kazashi-bundle-v2";
const WRAP_INFO: &[u8] = b"kazashi-bundle-wrap-v1";
/// The largest bundle this node will decompress (a week of a large city is far below).
pub const MAX_BUNDLE_BYTES: usize = 4 << 30;
/// The largest header (a recipient costs about 90 bytes; manifests enrol hundreds).
const MAX_HEADER: usize = 1 << 20;
/// Bytes of the header signature (ed25519).
const SIGNATURE_LEN: usize = 64;
/// Earlier formats are inflated, before their author is known, to at most this many times
/// the file's size...
pub const LEGACY_INFLATION: usize = 32;
/// ...and at most this many bytes.
pub const LEGACY_MAX_BYTES: usize = 256 << 20;

/// What a bundle holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleBody {
    pub deployment: DeploymentId,
    /// The device that exported and signed it.
    pub author: DeviceId,
    /// Random, to recognise a bundle imported before.
    pub id: [u8; 16],
    /// When, by the author's clock (display, and which of two catalogs is newer).
    pub created_ms: Millis,
    /// True when every shard is whole.
    pub snapshot: bool,
    /// The author's heads for every shard it held at export.
    pub catalog: Vec<(ShardId, Vec<[u8; 32]>)>,
    /// Per shard, Automerge bytes.
    pub shards: Vec<(ShardId, Vec<u8>)>,
    /// The author's signed manifest (its encoding) at export; `None` in bundles of the second
    /// format. Authenticated with the rest of the body; the importer still verifies it.
    pub manifest: Option<Vec<u8>>,
}

/// The body of the second format (`KZBUNDLE2`), which carried no manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BodyV2 {
    deployment: DeploymentId,
    author: DeviceId,
    id: [u8; 16],
    created_ms: Millis,
    snapshot: bool,
    catalog: Vec<(ShardId, Vec<[u8; 32]>)>,
    shards: Vec<(ShardId, Vec<u8>)>,
}

impl From<BodyV2> for BundleBody {
    fn from(b: BodyV2) -> Self {
        BundleBody {
            deployment: b.deployment,
            author: b.author,
            id: b.id,
            created_ms: b.created_ms,
            snapshot: b.snapshot,
            catalog: b.catalog,
            shards: b.shards,
            manifest: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Signed {
    body: Vec<u8>,
    signature: Vec<u8>,
}

/// The header of the fourth format: signed by the author, read before anything is decrypted.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    deployment: DeploymentId,
    /// The device that exported the bundle and signed this header.
    author: DeviceId,
    /// As in the body (the author's clock), for the revocation check before decryption.
    created_ms: Millis,
    /// Bytes of the signed body after decompression: inflation stops there.
    plain_len: u64,
    /// The ephemeral X25519 public key.
    ephemeral: [u8; 32],
    /// Per recipient, the content key sealed for it (48 bytes).
    recipients: Vec<(DeviceId, Vec<u8>)>,
    /// Bytes of ciphertext that follow the header's signature.
    ciphertext_len: u64,
}

/// The header of the second and third formats (no author, no size, not signed).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HeaderV3 {
    deployment: DeploymentId,
    /// The ephemeral X25519 public key.
    ephemeral: [u8; 32],
    /// Per recipient, the content key sealed for it (48 bytes).
    recipients: Vec<(DeviceId, Vec<u8>)>,
    /// Bytes of ciphertext that follow, so that a truncated copy is named as such.
    ciphertext_len: u64,
}

/// Why a bundle file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("not a Kazashi bundle")]
    NotABundle,
    #[error("the bundle is cut short: {have} of {want} bytes (copy it again from the stick)")]
    Truncated { have: u64, want: u64 },
    #[error("the bundle is damaged: {0}")]
    Damaged(String),
    #[error("the bundle is for another deployment ({0})")]
    WrongDeployment(DeploymentId),
    #[error(
        "the bundle is not addressed to this laptop (it was made before this laptop was \
         enrolled, or after it was revoked)"
    )]
    NotForThisLaptop,
    #[error("the bundle was made by device {0}, which is not enrolled")]
    UnknownAuthor(DeviceId),
    #[error("the bundle was made by device {0}, which is revoked")]
    RevokedAuthor(DeviceId),
    #[error("the bundle's signature does not verify")]
    BadSignature,
    #[error(
        "this bundle was imported before, at {} (nothing to do)",
        kazashi_domain::time::jst_text(*.imported_ms)
    )]
    AlreadyImported { imported_ms: Millis },
    #[error("this bundle was made by this laptop (nothing to do)")]
    OwnBundle,
    /// A bundle of an earlier format, refused unless [`ReadOptions::legacy`] is set.
    #[error(
        "the bundle is in an earlier format ({0}) whose contents must be unpacked before \
         their author can be checked, so it is refused; nothing was changed. Ask its author \
         to export it again with this version of Kazashi, or, if the stick came from a laptop \
         you trust, import it with `kazashi bundle import --legacy`"
    )]
    OldFormat(&'static str),
}

/// What [`read_with`] takes besides the current format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Read the earlier formats (`KZBUNDLE3`, `KZBUNDLE2`), whose decompression runs before
    /// their author is known (capped; see the module docs).
    pub legacy: bool,
}

impl BundleError {
    pub fn code(&self) -> &'static str {
        match self {
            BundleError::NotABundle => "not-a-bundle",
            BundleError::Truncated { .. } => "truncated-bundle",
            BundleError::Damaged(_) => "damaged-bundle",
            BundleError::WrongDeployment(_) => "wrong-deployment",
            BundleError::NotForThisLaptop => "not-a-recipient",
            BundleError::UnknownAuthor(_) => "unknown-device",
            BundleError::RevokedAuthor(_) => "revoked",
            BundleError::BadSignature => "bad-signature",
            BundleError::AlreadyImported { .. } => "replayed-bundle",
            BundleError::OwnBundle => "own-bundle",
            BundleError::OldFormat(_) => "old-format",
        }
    }

    /// Whether the file is suspect (kept in quarantine for the audit) rather than merely
    /// redundant.
    pub fn suspect(&self) -> bool {
        !matches!(
            self,
            BundleError::AlreadyImported { .. }
                | BundleError::OwnBundle
                | BundleError::OldFormat(_)
        )
    }
}

fn damaged(e: impl std::fmt::Display) -> BundleError {
    BundleError::Damaged(e.to_string())
}

/// ChaCha20-Poly1305 under `key` with a zero nonce: every key here seals one message only.
fn seal(key: &Key, msg: &[u8], aad: &[u8]) -> Result<Vec<u8>, BundleError> {
    wrap::seal_once(key, msg, aad).ok_or_else(|| damaged("sealing failed"))
}

fn unseal(key: &Key, msg: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    wrap::open_once(key, msg, aad)
}

/// What the contents of the earlier formats are authenticated with: the magic and the header.
fn associated(magic: &[u8], header: &[u8]) -> Vec<u8> {
    [magic, header].concat()
}

/// Sign, compress and encrypt a bundle for every device `members` enrols and has not revoked.
/// The author must be `key`'s device. `entropy` is 64 bytes from a CSPRNG (the ephemeral
/// secret and the content key); this crate draws no randomness of its own.
pub fn write(
    body: &BundleBody,
    key: &DeviceKey,
    members: &Membership,
    entropy: [u8; 64],
) -> Result<Vec<u8>, BundleError> {
    write_format(body, key, members, entropy, false)
}

/// A bundle of the second format (`KZBUNDLE2`: no manifest in the body), as Kazashi wrote
/// before bundles carried the manifest; for tests that such files are still read.
#[doc(hidden)]
pub fn write_second_format(
    body: &BundleBody,
    key: &DeviceKey,
    members: &Membership,
    entropy: [u8; 64],
) -> Result<Vec<u8>, BundleError> {
    write_format(body, key, members, entropy, true)
}

/// [`write`], or with `v2` a bundle of the second format (the manifest left out, no signed
/// header), as an earlier Kazashi wrote it.
fn write_format(
    body: &BundleBody,
    key: &DeviceKey,
    members: &Membership,
    entropy: [u8; 64],
    v2: bool,
) -> Result<Vec<u8>, BundleError> {
    if body.author != key.device_id() {
        return Err(BundleError::BadSignature);
    }
    let (tag, bytes) = if v2 {
        let old = BodyV2 {
            deployment: body.deployment,
            author: body.author,
            id: body.id,
            created_ms: body.created_ms,
            snapshot: body.snapshot,
            catalog: body.catalog.clone(),
            shards: body.shards.clone(),
        };
        (BUNDLE_TAG_V2, postcard::to_allocvec(&old).map_err(damaged)?)
    } else {
        (BUNDLE_TAG, postcard::to_allocvec(body).map_err(damaged)?)
    };
    let signature = key.sign(&signed_bytes(tag, &[&bytes])).to_vec();
    let signed = postcard::to_allocvec(&Signed {
        body: bytes,
        signature,
    })
    .map_err(damaged)?;
    if signed.len() > MAX_BUNDLE_BYTES {
        return Err(damaged("larger than the bundle limit"));
    }
    let plain = zstd::bulk::compress(&signed, 9).map_err(damaged)?;
    let plain_len = u64::try_from(signed.len()).map_err(damaged)?;
    let sealed = Sealing {
        deployment: body.deployment,
        created_ms: body.created_ms,
        plain_len,
        v2,
    };
    seal_compressed(&sealed, &plain, key, members, entropy)
}

/// What [`seal_compressed`] puts in the header besides the keys.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Sealing {
    pub deployment: DeploymentId,
    pub created_ms: Millis,
    /// The size after decompression the (fourth format's) header declares.
    pub plain_len: u64,
    /// The second format (no signed header).
    pub v2: bool,
}

/// Encrypt already compressed contents under a header signed by `key`: the last step of
/// [`write`]. Public (hidden) so that tests can build bundles whose contents lie about their
/// size, or decompression bombs, and see them refused.
#[doc(hidden)]
pub fn seal_compressed(
    how: &Sealing,
    plain: &[u8],
    key: &DeviceKey,
    members: &Membership,
    entropy: [u8; 64],
) -> Result<Vec<u8>, BundleError> {
    let (eph_secret, content_key) = entropy.split_at(32);
    let eph_secret: [u8; 32] = eph_secret.try_into().map_err(damaged)?;
    let content_key: [u8; 32] = content_key.try_into().map_err(damaged)?;
    let ephemeral = wrap::ephemeral_public(eph_secret);
    let mut recipients = Vec::new();
    for d in &members.manifest().devices {
        if members.revoked_from(&d.device).is_some() {
            continue;
        }
        let Some(public) = wrap::device_public(&d.device) else {
            continue;
        };
        let Some(sealed) = wrap::wrap(eph_secret, &public, WRAP_INFO, &d.device.0, &content_key)
        else {
            continue;
        };
        recipients.push((d.device, sealed));
    }
    let ciphertext_len = plain
        .len()
        .checked_add(16)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| damaged("too large"))?;
    let (magic, header) = if how.v2 {
        let header = postcard::to_allocvec(&HeaderV3 {
            deployment: how.deployment,
            ephemeral,
            recipients,
            ciphertext_len,
        })
        .map_err(damaged)?;
        (MAGIC_V2, header)
    } else {
        let header = postcard::to_allocvec(&Header {
            deployment: how.deployment,
            author: key.device_id(),
            created_ms: how.created_ms,
            plain_len: how.plain_len,
            ephemeral,
            recipients,
            ciphertext_len,
        })
        .map_err(damaged)?;
        (MAGIC, header)
    };
    let mut out = magic.to_vec();
    out.extend_from_slice(&u32::try_from(header.len()).map_err(damaged)?.to_le_bytes());
    out.extend_from_slice(&header);
    let aad = if how.v2 {
        associated(magic, &header)
    } else {
        out.extend_from_slice(&key.sign(&signed_bytes(HEADER_TAG, &[magic, &header])));
        // Everything before the ciphertext: magic, header length, header, its signature.
        out.clone()
    };
    let ciphertext = seal(&Key::from(content_key), plain, &aad)?;
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// The framing every format shares: magic, header length, header. Returns the header's bytes
/// and where it ends in `file`.
fn frame<'a>(file: &'a [u8], magic: &[u8]) -> Result<(&'a [u8], usize), BundleError> {
    let truncated = |want: usize| BundleError::Truncated {
        have: file.len() as u64,
        want: want as u64,
    };
    let rest = file.strip_prefix(magic).ok_or(BundleError::NotABundle)?;
    let (len, rest) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| truncated(magic.len() + 4))?;
    let header_len = usize::try_from(u32::from_le_bytes(*len)).map_err(damaged)?;
    if header_len > MAX_HEADER {
        return Err(damaged("the header is over its limit"));
    }
    // At most 9 + 4 + 1 MiB: cannot overflow.
    let header_end = magic.len() + 4 + header_len;
    let header = rest
        .get(..header_len)
        .ok_or_else(|| truncated(header_end))?;
    Ok((header, header_end))
}

/// The bytes after `start` when there are exactly `len` of them: `start + len` is computed
/// with checked arithmetic (a header declaring an absurd length is damaged, never a wrap).
fn exactly(file: &[u8], start: usize, len: u64) -> Result<&[u8], BundleError> {
    let want = u64::try_from(start)
        .ok()
        .and_then(|s| s.checked_add(len))
        .ok_or_else(|| damaged("the header declares an impossible length"))?;
    let have = file.len() as u64;
    match have.cmp(&want) {
        std::cmp::Ordering::Less => Err(BundleError::Truncated { have, want }),
        std::cmp::Ordering::Greater => Err(damaged("bytes after the end of the bundle")),
        std::cmp::Ordering::Equal => file.get(start..).ok_or_else(|| damaged("lengths")),
    }
}

/// The content key sealed for `me`, unwrapped.
fn content_key(
    recipients: &[(DeviceId, Vec<u8>)],
    ephemeral: &[u8; 32],
    me: &DeviceKey,
) -> Result<Key, BundleError> {
    let sealed = recipients
        .iter()
        .find(|(d, _)| *d == me.device_id())
        .map(|(_, s)| s)
        .ok_or(BundleError::NotForThisLaptop)?;
    let key = wrap::unwrap_key(
        me.x25519_scalar(),
        ephemeral,
        WRAP_INFO,
        &me.device_id().0,
        sealed,
    )
    .ok_or_else(|| damaged("the key for this laptop does not open (altered)"))?;
    Ok(Key::from(*key))
}

/// An enrolled author, not revoked as of `created_ms`.
fn check_author(
    members: &Membership,
    author: &DeviceId,
    created_ms: Millis,
) -> Result<(), BundleError> {
    if members.device(author).is_none() {
        return Err(BundleError::UnknownAuthor(*author));
    }
    if members
        .revoked_from(author)
        .is_some_and(|from| created_ms >= from)
    {
        return Err(BundleError::RevokedAuthor(*author));
    }
    Ok(())
}

/// Check, decrypt and open a bundle file with this laptop's key; earlier formats are refused
/// ([`BundleError::OldFormat`]).
pub fn read(file: &[u8], members: &Membership, me: &DeviceKey) -> Result<BundleBody, BundleError> {
    read_with(file, members, me, ReadOptions::default())
}

/// [`read`], with the earlier formats read when `options` says so.
pub fn read_with(
    file: &[u8],
    members: &Membership,
    me: &DeviceKey,
    options: ReadOptions,
) -> Result<BundleBody, BundleError> {
    if file.starts_with(OLD_MAGIC) {
        return Err(damaged("an unencrypted bundle of an earlier version"));
    }
    for (magic, name, tag, v2) in [
        (MAGIC_V2, "KZBUNDLE2", BUNDLE_TAG_V2, true),
        (MAGIC_V3, "KZBUNDLE3", BUNDLE_TAG, false),
    ] {
        if file.starts_with(magic) {
            if !options.legacy {
                return Err(BundleError::OldFormat(name));
            }
            return read_legacy(file, members, me, magic, tag, v2);
        }
    }
    let (header_bytes, header_end) = frame(file, MAGIC)?;
    let signature = file
        .get(header_end..)
        .and_then(|r| r.get(..SIGNATURE_LEN))
        .ok_or(BundleError::Truncated {
            have: file.len() as u64,
            want: (header_end + SIGNATURE_LEN) as u64,
        })?;
    let authenticated_end = header_end + SIGNATURE_LEN;
    let header: Header = postcard::from_bytes(header_bytes).map_err(damaged)?;
    let ciphertext = exactly(file, authenticated_end, header.ciphertext_len)?;
    if header.deployment != members.deployment().id() {
        return Err(BundleError::WrongDeployment(header.deployment));
    }
    // Who made it, before a byte is decrypted or inflated.
    check_author(members, &header.author, header.created_ms)?;
    if !verify(
        &header.author,
        &signed_bytes(HEADER_TAG, &[MAGIC, header_bytes]),
        signature,
    ) {
        return Err(BundleError::BadSignature);
    }
    let plain_len = usize::try_from(header.plain_len)
        .ok()
        .filter(|n| *n <= MAX_BUNDLE_BYTES)
        .ok_or_else(|| damaged("larger than the bundle limit"))?;
    let key = content_key(&header.recipients, &header.ephemeral, me)?;
    let aad = file
        .get(..authenticated_end)
        .ok_or_else(|| damaged("lengths"))?;
    let plain = unseal(&key, ciphertext, aad)
        .ok_or_else(|| damaged("the contents do not authenticate (altered in transit)"))?;
    let raw = decompress_bounded(&plain, plain_len)?;
    if raw.len() != plain_len {
        return Err(damaged("the contents are not the size the header declares"));
    }
    let body = open_signed(&raw, BUNDLE_TAG, false, header.deployment)?;
    if body.author != header.author || body.created_ms != header.created_ms {
        return Err(damaged(
            "the header and the contents name another author or time",
        ));
    }
    Ok(body)
}

/// A bundle of the second or third format: no signed header, so the author is known only
/// after decompression, which is capped (see the module docs).
fn read_legacy(
    file: &[u8],
    members: &Membership,
    me: &DeviceKey,
    magic: &[u8],
    tag: &[u8],
    v2: bool,
) -> Result<BundleBody, BundleError> {
    let (header_bytes, header_end) = frame(file, magic)?;
    let header: HeaderV3 = postcard::from_bytes(header_bytes).map_err(damaged)?;
    let ciphertext = exactly(file, header_end, header.ciphertext_len)?;
    if header.deployment != members.deployment().id() {
        return Err(BundleError::WrongDeployment(header.deployment));
    }
    let key = content_key(&header.recipients, &header.ephemeral, me)?;
    let plain = unseal(&key, ciphertext, &associated(magic, header_bytes))
        .ok_or_else(|| damaged("the contents do not authenticate (altered in transit)"))?;
    let cap = file
        .len()
        .saturating_mul(LEGACY_INFLATION)
        .min(LEGACY_MAX_BYTES);
    let raw = decompress_bounded(&plain, cap)?;
    let body = open_signed(&raw, tag, v2, header.deployment)?;
    check_author(members, &body.author, body.created_ms)?;
    Ok(body)
}

/// The signed body: decoded, of `deployment`, by an enrolled author whose signature verifies.
/// (The author's enrolment is checked by the caller.)
fn open_signed(
    raw: &[u8],
    tag: &[u8],
    v2: bool,
    deployment: DeploymentId,
) -> Result<BundleBody, BundleError> {
    let signed: Signed = postcard::from_bytes(raw).map_err(damaged)?;
    let body: BundleBody = if v2 {
        postcard::from_bytes::<BodyV2>(&signed.body)
            .map_err(damaged)?
            .into()
    } else {
        postcard::from_bytes(&signed.body).map_err(damaged)?
    };
    if body.deployment != deployment {
        return Err(BundleError::WrongDeployment(body.deployment));
    }
    if !verify(
        &body.author,
        &signed_bytes(tag, &[&signed.body]),
        &signed.signature,
    ) {
        return Err(BundleError::BadSignature);
    }
    Ok(body)
}

/// zstd, inflated to at most `limit` bytes (one more is read to tell a larger stream).
fn decompress_bounded(packed: &[u8], limit: usize) -> Result<Vec<u8>, BundleError> {
    use std::io::Read;
    let mut decoder = zstd::stream::Decoder::new(packed).map_err(damaged)?;
    // A frame may ask for a window of up to 2 GiB; Kazashi writes at level 9 (at most 4 MiB).
    decoder.window_log_max(24).map_err(damaged)?;
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX);
    decoder
        .take(cap.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(damaged)?;
    if out.len() > limit {
        return Err(damaged("larger than the size its header allows"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_lengths_cannot_overflow() {
        let file = [0u8; 32];
        for len in [u64::MAX, u64::MAX - 5] {
            assert!(matches!(
                exactly(&file, 20, len),
                Err(BundleError::Damaged(w)) if w.contains("impossible")
            ));
        }
        // Far past the file, without overflow: named as cut short.
        assert!(matches!(
            exactly(&file, 20, 1 << 63),
            Err(BundleError::Truncated { .. })
        ));
        assert!(matches!(
            exactly(&file, usize::MAX, 1),
            Err(BundleError::Damaged(_))
        ));
        assert!(matches!(
            exactly(&file, 20, 13),
            Err(BundleError::Truncated { have: 32, want: 33 })
        ));
        assert_eq!(exactly(&file, 20, 12).map(<[u8]>::len), Ok(12));
        assert!(exactly(&file, 20, 11).is_err());
    }
}
