//! Who may unlock this laptop's window, in which role: staff enrolled here with a PIN (kept as an
//! Argon2id hash in the encrypted store) and, optionally, their own My Number Card (its
//! deployment card key). Roles decide what the window offers; every event still names its
//! operator, so the log says who did what whatever the role.
//!
//! **Two sources of staff.**
//! - The deployment-wide list in the signed manifest ([`kazashi_sync::manifest::StaffEntry`]:
//!   written by `kazashi deployment init --staff` and `kazashi deployment staff add|remove|
//!   set-pin`, the PIN only as an Argon2id PHC string with its own salt), which a newer
//!   manifest changes on every laptop at once, running or not.
//! - Per-laptop records (settings `staff/<operator>` and `staff_card/<card key>`, written by
//!   `kazashi staff add`), not replicated.
//!
//! **Precedence** (one rule for PIN, card and role look-ups): a manifest entry for the staff id
//! (or card) that is valid at this laptop's site — it lists no sites, or this laptop's site
//! among them — decides alone: its PIN hash, its role; a per-laptop record of the same id is
//! not consulted. An id the manifest does not list, or lists only for other sites, falls back
//! to the per-laptop record. So the administrator's list wins wherever it reaches, and a
//! laptop can still add its own helpers (an id of their own) without a new manifest. Taking a
//! member off the manifest does not take away a per-laptop record of theirs: remove that with
//! `kazashi staff remove` on the laptop.

use crate::clock::Clock;
use crate::node::{Node, NodeError};
use crate::store::random_bytes;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use kazashi_domain::ids::{CardKey, OperatorId};
use kazashi_sync::manifest::StaffEntry;
use serde::{Deserialize, Serialize};

/// What a staff member may do in the window: the manifest's staff role (one type for the
/// deployment-wide list and the per-laptop records).
pub use kazashi_sync::manifest::StaffRole as Role;

/// A staff PIN: 4 to 8 digits (full-width digits accepted).
const PIN_LEN: std::ops::RangeInclusive<usize> = 4..=8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("no staff member of that name on this laptop")]
    Unknown,
    #[error("wrong PIN")]
    WrongPin,
    #[error("this staff member has no PIN here")]
    NoPin,
    #[error("a staff PIN is 4 to 8 digits")]
    BadPin,
    #[error("this card is not a staff card on this laptop")]
    UnknownCard,
    #[error("the staff record is damaged")]
    Damaged,
    #[error("too many wrong PINs: locked until {}", kazashi_domain::time::jst_text(*.until))]
    Locked { until: kazashi_domain::Millis },
    #[error("the store: {0}")]
    Store(String),
}

impl From<NodeError> for LoginError {
    fn from(e: NodeError) -> Self {
        LoginError::Store(e.to_string())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StaffRecord {
    role: Role,
    /// Argon2id PHC string of the PIN.
    pin: Option<String>,
    /// Removed (`kazashi staff remove`): neither their PIN nor a card enrolled for them
    /// unlocks this laptop any more.
    #[serde(default)]
    removed: bool,
}

fn staff_key(op: &OperatorId) -> String {
    format!("staff/{}", op.as_str())
}

fn card_key(card: &CardKey) -> String {
    format!("staff_card/{}", card.to_hex())
}

/// The PIN's digits as ASCII, or `BadPin`.
fn pin_digits(pin: &str) -> Result<zeroize::Zeroizing<String>, LoginError> {
    use unicode_normalization::UnicodeNormalization;
    let d: zeroize::Zeroizing<String> = zeroize::Zeroizing::new(pin.trim().nfkc().collect());
    if !PIN_LEN.contains(&d.len()) || !d.chars().all(|c| c.is_ascii_digit()) {
        return Err(LoginError::BadPin);
    }
    Ok(d)
}

/// The PIN's Argon2id hash as a PHC string, with a fresh random salt, at the default cost
/// (the one every staff PIN here uses). The PIN is checked first: 4 to 8 digits.
pub fn hash_pin(pin: &str) -> Result<String, LoginError> {
    let digits = pin_digits(pin)?;
    let salt_bytes = random_bytes::<16>().map_err(|e| LoginError::Store(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| LoginError::Store(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(digits.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| LoginError::Store(e.to_string()))
}

/// Check `pin` against a stored PHC string.
fn verify_pin(stored: &str, pin: &str) -> Result<(), LoginError> {
    let digits = pin_digits(pin).map_err(|_| LoginError::WrongPin)?;
    let hash = PasswordHash::new(stored).map_err(|_| LoginError::Damaged)?;
    argon2::Argon2::default()
        .verify_password(digits.as_bytes(), &hash)
        .map_err(|_| LoginError::WrongPin)
}

impl<C: Clock> Node<C> {
    /// Enrol (or re-enrol) a staff member on this laptop with a role and, optionally, a PIN.
    pub fn enrol_staff(
        &self,
        op: &OperatorId,
        role: Role,
        pin: Option<&str>,
    ) -> Result<(), LoginError> {
        let pin = pin.map(hash_pin).transpose()?;
        let rec = StaffRecord {
            role,
            pin,
            removed: false,
        };
        let bytes = serde_json::to_vec(&rec).map_err(|_| LoginError::Damaged)?;
        self.set_setting(&staff_key(op), &bytes)?;
        Ok(())
    }

    /// The per-laptop record of `op`, removed ones included.
    fn staff_record_any(&self, op: &OperatorId) -> Result<Option<StaffRecord>, LoginError> {
        match self.setting(&staff_key(op))? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|_| LoginError::Damaged),
        }
    }

    fn staff_record(&self, op: &OperatorId) -> Result<Option<StaffRecord>, LoginError> {
        Ok(self.staff_record_any(op)?.filter(|r| !r.removed))
    }

    /// The manifest's entry for `op` if it is valid at this laptop's site (the precedence
    /// rule in the module docs).
    pub fn manifest_staff(&self, op: &OperatorId) -> Option<&StaffEntry> {
        let site = self.station().site();
        self.membership().staff(op).filter(|e| e.allowed_at(&site))
    }

    /// The role of a staff member who may unlock this laptop (manifest first, then the
    /// per-laptop record).
    pub fn staff_role(&self, op: &OperatorId) -> Result<Option<Role>, LoginError> {
        if let Some(e) = self.manifest_staff(op) {
            return Ok(Some(e.role));
        }
        Ok(self.staff_record(op)?.map(|r| r.role))
    }

    /// Unlock with a staff member's PIN: their role, or why not (manifest first, then the
    /// per-laptop record). Consecutive failures for the id are counted in the store and lock
    /// it for a while ([`crate::possession`]); a success clears the count.
    pub fn staff_login(&self, op: &OperatorId, pin: &str) -> Result<Role, LoginError> {
        use crate::possession::Subject;
        if let Some(until) = self.locked_until(Subject::Staff(op))? {
            return Err(LoginError::Locked { until });
        }
        match self.staff_login_once(op, pin) {
            Ok(role) => {
                self.pin_succeeded(Subject::Staff(op))?;
                Ok(role)
            }
            Err(e @ (LoginError::Damaged | LoginError::Store(_))) => Err(e),
            Err(e) => match self.pin_failed(Subject::Staff(op))? {
                Some(until) => Err(LoginError::Locked { until }),
                None => Err(e),
            },
        }
    }

    fn staff_login_once(&self, op: &OperatorId, pin: &str) -> Result<Role, LoginError> {
        let (stored, role) = match self.manifest_staff(op) {
            Some(e) => (e.pin_hash.clone(), e.role),
            None => {
                let rec = self.staff_record(op)?.ok_or(LoginError::Unknown)?;
                (rec.pin, rec.role)
            }
        };
        let stored = stored.ok_or(LoginError::NoPin)?;
        verify_pin(&stored, pin)?;
        Ok(role)
    }

    /// Remove a per-laptop staff record (not the manifest's list). Returns whether there was
    /// one.
    pub fn remove_staff(&self, op: &OperatorId) -> Result<bool, LoginError> {
        let Some(mut rec) = self.staff_record(op)? else {
            return Ok(false);
        };
        rec.removed = true;
        rec.pin = None;
        let bytes = serde_json::to_vec(&rec).map_err(|_| LoginError::Damaged)?;
        self.set_setting(&staff_key(op), &bytes)?;
        Ok(true)
    }

    /// Enrol a staff member's own card for staff login on this laptop.
    pub fn enrol_staff_card(&self, card: &CardKey, operator: &OperatorId) -> Result<(), NodeError> {
        self.set_setting(&card_key(card), operator.as_str().as_bytes())
    }

    /// The staff member whose card this is, if enrolled here.
    pub fn staff_card(&self, card: &CardKey) -> Result<Option<OperatorId>, NodeError> {
        Ok(self
            .setting(&card_key(card))?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| OperatorId::new(&s).ok()))
    }

    /// Unlock with a staff card: who and in which role. A card in the manifest's staff list,
    /// valid at this laptop's site, comes first; then a card enrolled on this laptop (one
    /// enrolled without a staff record is a reception worker).
    pub fn staff_card_login(&self, card: &CardKey) -> Result<(OperatorId, Role), LoginError> {
        let site = self.station().site();
        if let Some(e) = self
            .membership()
            .staff_by_card(card)
            .filter(|e| e.allowed_at(&site))
        {
            return Ok((e.id, e.role));
        }
        let op = self.staff_card(card)?.ok_or(LoginError::UnknownCard)?;
        if self.staff_record_any(&op)?.is_some_and(|r| r.removed) {
            return Err(LoginError::UnknownCard);
        }
        let role = self.staff_role(&op)?.unwrap_or(Role::Reception);
        Ok((op, role))
    }
}

// ---------------------------------------------------------------------------------------------
// The staff file (`kazashi deployment init --staff`)

/// Why a staff file or a staff entry was refused (never quoting a PIN).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StaffFileError(pub String);

#[derive(Deserialize)]
struct StaffRow {
    staff_id: String,
    name: String,
    role: String,
    #[serde(default)]
    pin: Option<String>,
    #[serde(default)]
    sites: Option<SitesField>,
    #[serde(default)]
    card: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SitesField {
    List(Vec<String>),
    Text(String),
}

#[derive(Deserialize)]
struct StaffToml {
    #[serde(default)]
    staff: Vec<StaffRow>,
}

/// One deployment-wide staff entry: the id they type, a short display name, a role code, the
/// PIN (hashed here with Argon2id and a fresh salt; only the hash is kept), the sites (empty:
/// every site) and the deployment card key of their own card (64 hex digits), if any.
pub fn staff_entry(
    id: &str,
    name: &str,
    role: &str,
    pin: Option<&str>,
    sites: &[String],
    card: Option<&str>,
) -> Result<StaffEntry, StaffFileError> {
    let bad = |what: String| StaffFileError(what);
    let id = OperatorId::new(id.trim()).map_err(|e| bad(format!("staff_id: {e}")))?;
    let name = kazashi_domain::text::Label::new(name.trim())
        .map_err(|e| bad(format!("{}: name: {e}", id.as_str())))?;
    let role = Role::from_code(role.trim()).ok_or_else(|| {
        bad(format!(
            "{}: role {:?}: reception, lead, medical or command",
            id.as_str(),
            role.trim()
        ))
    })?;
    let pin_hash = match pin.map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => Some(hash_pin(p).map_err(|e| bad(format!("{}: PIN: {e}", id.as_str())))?),
        None => None,
    };
    let sites = sites
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(kazashi_domain::SiteId::new)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("{}: sites: {e}", id.as_str())))?;
    let card = match card.map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) => {
            Some(CardKey::from_hex(c).map_err(|e| bad(format!("{}: card: {e}", id.as_str())))?)
        }
        None => None,
    };
    if pin_hash.is_none() && card.is_none() {
        return Err(bad(format!(
            "{}: give a PIN or a staff card (or both)",
            id.as_str()
        )));
    }
    Ok(StaffEntry {
        id,
        name,
        role,
        pin_hash,
        card,
        sites,
    })
}

fn row_entry(row: StaffRow, at: &str) -> Result<StaffEntry, StaffFileError> {
    let sites: Vec<String> = match row.sites {
        None => Vec::new(),
        Some(SitesField::List(v)) => v,
        Some(SitesField::Text(t)) => t
            .split(|c: char| c == ';' || c.is_whitespace())
            .map(str::to_owned)
            .collect(),
    };
    staff_entry(
        &row.staff_id,
        &row.name,
        &row.role,
        row.pin.as_deref(),
        &sites,
        row.card.as_deref(),
    )
    .map_err(|e| StaffFileError(format!("{at}: {e}")))
}

/// The staff in a CSV file's text (UTF-8, a header row: staff_id,name,role,pin[,sites][,card]).
pub fn parse_staff_csv(text: &str) -> Result<Vec<StaffEntry>, StaffFileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    for (i, row) in reader.deserialize::<StaffRow>().enumerate() {
        let at = format!("line {}", i + 2);
        // csv's message names the line and the column, never a field's value.
        let row = row.map_err(|e| StaffFileError(format!("{at}: {}", csv_reason(&e))))?;
        out.push(row_entry(row, &at)?);
    }
    Ok(out)
}

/// What was wrong with a CSV row, without quoting any field (a PIN may be one).
fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("{len} fields where the header has {expected_len}")
        }
        csv::ErrorKind::Deserialize { err, .. } => match err.field() {
            Some(f) => format!("column {} is malformed", f + 1),
            None => "a missing or malformed column (staff_id, name, role are needed)".into(),
        },
        csv::ErrorKind::Utf8 { .. } => "not UTF-8".into(),
        _ => "unreadable".into(),
    }
}

/// The staff in a TOML file's text (`[[staff]]` tables with the same keys; `sites` a list).
pub fn parse_staff_toml(text: &str) -> Result<Vec<StaffEntry>, StaffFileError> {
    let file: StaffToml = toml::from_str(text)
        .map_err(|e| StaffFileError(format!("not a staff TOML file ({})", e.message())))?;
    file.staff
        .into_iter()
        .enumerate()
        .map(|(i, row)| row_entry(row, &format!("staff {}", i + 1)))
        .collect()
}

/// The staff in `path`: TOML if it ends in `.toml`, CSV otherwise.
pub fn read_staff(path: &std::path::Path) -> Result<Vec<StaffEntry>, StaffFileError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| StaffFileError(format!("{}: {e}", path.display())))?;
    if path.extension().is_some_and(|e| e == "toml") {
        parse_staff_toml(&text)
    } else {
        parse_staff_csv(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_digits_of_the_right_length() {
        assert!(pin_digits("1234").is_ok());
        assert_eq!(
            pin_digits("１２３４").map(|d| d.to_string()),
            Ok("1234".into())
        );
        assert_eq!(pin_digits("123").map(|_| ()), Err(LoginError::BadPin));
        assert_eq!(pin_digits("123456789").map(|_| ()), Err(LoginError::BadPin));
        assert_eq!(pin_digits("12a4").map(|_| ()), Err(LoginError::BadPin));
    }

    #[test]
    fn roles_round_trip_their_codes() {
        for r in Role::ALL {
            assert_eq!(Role::from_code(r.code()), Some(r));
        }
        assert_eq!(Role::from_code("admin"), None);
        assert!(Role::Lead.manages() && !Role::Reception.manages());
        assert!(!Role::Command.writes() && Role::Medical.medical());
    }

    #[test]
    fn a_pin_hash_verifies_only_its_pin() {
        let h = hash_pin("2468").unwrap_or_default();
        let parsed = PasswordHash::new(&h);
        assert!(parsed.is_ok(), "not a PHC string: {h}");
        if let Ok(p) = parsed {
            let a = argon2::Argon2::default();
            assert!(a.verify_password(b"2468", &p).is_ok());
            assert!(a.verify_password(b"2469", &p).is_err());
        }
        assert!(!h.contains("2468"));
    }
}

#[cfg(test)]
#[path = "operation_tests.rs"]
mod operation_tests;
