//! Who may unlock this laptop's window, in which role: staff enrolled here with a PIN (kept as an
//! Argon2id hash in the encrypted store) and, optionally, their own My Number Card (its
//! deployment card key). Roles decide what the window offers; every event still names its
//! operator, so the log says who did what whatever the role.
//!
//! Staff records are per laptop (settings `staff/<operator>`), not replicated.

use crate::clock::Clock;
use crate::node::{Node, NodeError};
use crate::store::random_bytes;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use kazashi_domain::ids::{CardKey, OperatorId};
use serde::{Deserialize, Serialize};

/// What a staff member may do in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
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

impl Role {
    pub const ALL: [Role; 4] = [Role::Reception, Role::Lead, Role::Medical, Role::Command];

    pub fn code(self) -> &'static str {
        match self {
            Role::Reception => "reception",
            Role::Lead => "lead",
            Role::Medical => "medical",
            Role::Command => "command",
        }
    }

    pub fn from_code(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == s)
    }

    /// May write check-ins and the like.
    pub fn writes(self) -> bool {
        self != Role::Command
    }

    /// May undo, override as the second officer, file status reports, settle alerts.
    pub fn manages(self) -> bool {
        self == Role::Lead
    }

    /// May read 問診票 notes.
    pub fn medical(self) -> bool {
        self == Role::Medical
    }
}

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

fn hash_pin(pin: &str) -> Result<String, LoginError> {
    let digits = pin_digits(pin)?;
    let salt_bytes = random_bytes::<16>().map_err(|e| LoginError::Store(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| LoginError::Store(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(digits.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| LoginError::Store(e.to_string()))
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
        let rec = StaffRecord { role, pin };
        let bytes = serde_json::to_vec(&rec).map_err(|_| LoginError::Damaged)?;
        self.set_setting(&staff_key(op), &bytes)?;
        Ok(())
    }

    fn staff_record(&self, op: &OperatorId) -> Result<Option<StaffRecord>, LoginError> {
        match self.setting(&staff_key(op))? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|_| LoginError::Damaged),
        }
    }

    /// The role of a staff member enrolled here.
    pub fn staff_role(&self, op: &OperatorId) -> Result<Option<Role>, LoginError> {
        Ok(self.staff_record(op)?.map(|r| r.role))
    }

    /// Unlock with a staff member's PIN: their role, or why not.
    pub fn staff_login(&self, op: &OperatorId, pin: &str) -> Result<Role, LoginError> {
        let rec = self.staff_record(op)?.ok_or(LoginError::Unknown)?;
        let stored = rec.pin.as_deref().ok_or(LoginError::NoPin)?;
        let digits = pin_digits(pin).map_err(|_| LoginError::WrongPin)?;
        let hash = PasswordHash::new(stored).map_err(|_| LoginError::Damaged)?;
        argon2::Argon2::default()
            .verify_password(digits.as_bytes(), &hash)
            .map_err(|_| LoginError::WrongPin)?;
        Ok(rec.role)
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

    /// Unlock with a staff card: who and in which role (a card enrolled without a staff
    /// record is a reception worker).
    pub fn staff_card_login(&self, card: &CardKey) -> Result<(OperatorId, Role), LoginError> {
        let op = self.staff_card(card)?.ok_or(LoginError::UnknownCard)?;
        let role = self.staff_role(&op)?.unwrap_or(Role::Reception);
        Ok((op, role))
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
