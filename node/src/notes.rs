//! Sealed notes on a laptop (issue 24, requirement 3): 問診票 (medical) notes and DV/protection
//! details, attached to roster residents and walk-ins alike, written only as
//! `EventBody::SealedNote` ciphertext (`kazashi_sync::sealed`) to the manifest's purpose keys.
//!
//! **Who writes.** A medical note: staff whose role is medical or lead; protection details: a
//! lead. Sealing needs only the public keys, so any laptop can write, and one whose manifest
//! has no purpose keys refuses with [`NoteError::Seal`] (`NoKey`: the administrator must issue a
//! v4 manifest). The plain `MemberCard::medical_note` is refused on every own write
//! (`StationError::PlaintextNote`); old events carrying one are still taken from peers, but no
//! view or export shows it.
//!
//! **Who reads.** Only on a laptop that holds the purpose key (`kazashi deployment grant`) and
//! only for the staff role that goes with it: medical staff read medical notes with the medical
//! key; a lead reads medical notes with the medical or manager key and protection details with
//! the manager key. Every other laptop and role stores and relays the ciphertext and sees only
//! how many notes there are. The purpose secret is unwrapped from the manifest with the device
//! key for each read and wiped when dropped; the note text is wiped when the view drops it.

use crate::clock::Clock;
use crate::node::{Node, NodeError};
use crate::staff::Role;
use crate::store::random_bytes;
use kazashi_domain::ids::PersonRef;
use kazashi_domain::sealed_note::{NoteKind, SealedBytes};
use kazashi_domain::{Event, EventBody, EventId, Millis, OperatorId, SiteId};
use kazashi_sync::sealed::{self, OpenError, SealError};
use kazashi_sync::{DeviceKey, KeyPurpose, PurposeSecret};
use zeroize::Zeroizing;

/// Why a note was not written. Nothing was written when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    #[error(
        "only medical staff or a manager may write a medical note; only a manager protection details"
    )]
    NotAllowed,
    #[error("the note was not sealed: {0}")]
    Seal(#[from] SealError),
    #[error(transparent)]
    Node(#[from] NodeError),
}

/// What a staff member may do with notes on this laptop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoteAccess {
    pub read_medical: bool,
    pub read_protection: bool,
    pub write_medical: bool,
    pub write_protection: bool,
}

/// One note as a staff member sees it.
#[derive(Debug)]
pub struct NoteView {
    pub event: EventId,
    pub kind: NoteKind,
    pub at_ms: Millis,
    pub operator: OperatorId,
    pub site: SiteId,
    /// The text, if this laptop and role may read it and it opened; wiped when dropped.
    pub text: Option<Zeroizing<String>>,
}

/// What the note's ciphertext is bound to: the person it is attached to.
fn context(person: &PersonRef) -> Vec<u8> {
    postcard::to_allocvec(person).unwrap_or_default()
}

/// The purposes `role` may read `kind` with.
fn purposes_for(role: Role, kind: NoteKind) -> &'static [KeyPurpose] {
    match (role, kind) {
        (Role::Medical, NoteKind::Medical) => &[KeyPurpose::Medical],
        (Role::Lead, NoteKind::Medical) => &[KeyPurpose::Manager, KeyPurpose::Medical],
        (Role::Lead, NoteKind::Protection) => &[KeyPurpose::Manager],
        _ => &[],
    }
}

impl<C: Clock> Node<C> {
    fn device_key(&self) -> DeviceKey {
        DeviceKey::from_seed(*Zeroizing::new(self.secret_key_bytes()))
    }

    fn role_of(&self, operator: &OperatorId) -> Option<Role> {
        self.staff_role(operator).ok().flatten()
    }

    /// What `operator` may do with notes on this laptop (their role here, the keys it holds).
    pub fn note_access(&self, operator: &OperatorId) -> NoteAccess {
        let Some(role) = self.role_of(operator) else {
            return NoteAccess::default();
        };
        let me = self.device();
        let holds = |kind| {
            purposes_for(role, kind)
                .iter()
                .any(|p| self.membership().holds(&me, *p))
        };
        NoteAccess {
            read_medical: holds(NoteKind::Medical),
            read_protection: holds(NoteKind::Protection),
            write_medical: matches!(role, Role::Medical | Role::Lead),
            write_protection: role == Role::Lead,
        }
    }

    /// Seal `text` as a note of `kind` attached to `person` and write it.
    pub fn add_note(
        &mut self,
        operator: OperatorId,
        person: PersonRef,
        kind: NoteKind,
        text: &str,
    ) -> Result<Event, NoteError> {
        let access = self.note_access(&operator);
        let allowed = match kind {
            NoteKind::Medical => access.write_medical,
            NoteKind::Protection => access.write_protection,
        };
        if !allowed {
            return Err(NoteError::NotAllowed);
        }
        let entropy = Zeroizing::new(random_bytes::<64>().map_err(NodeError::from)?);
        let sealed = sealed::seal(text, kind, &context(&person), self.membership(), &entropy)?;
        Ok(self.record(
            operator,
            EventBody::SealedNote {
                person,
                kind,
                sealed,
            },
        )?)
    }

    /// How many sealed notes `person` has (anyone may see the count).
    pub fn note_count(&self, person: &PersonRef) -> usize {
        self.state().sealed_note_count(person)
    }

    /// The notes attached to `person`, oldest first, opened where `operator` may read them.
    pub fn notes(&self, operator: &OperatorId, person: &PersonRef) -> Vec<NoteView> {
        let role = self.role_of(operator);
        let key = self.device_key();
        // The secrets this role may use, unwrapped once for this call and wiped at its end.
        let secrets: Vec<(KeyPurpose, PurposeSecret)> = KeyPurpose::ALL
            .into_iter()
            .filter(|p| {
                role.is_some_and(|r| {
                    [NoteKind::Medical, NoteKind::Protection]
                        .iter()
                        .any(|k| purposes_for(r, *k).contains(p))
                })
            })
            .filter_map(|p| Some((p, self.membership().unseal(p, &key)?)))
            .collect();
        let ctx = context(person);
        let mut out = Vec::new();
        for n in self.state().sealed_notes(person) {
            let mut text = None;
            for p in role.map_or(&[][..], |r| purposes_for(r, n.kind)) {
                let Some((_, s)) = secrets.iter().find(|(q, _)| q == p) else {
                    continue;
                };
                if let Ok(t) = open_note(n.sealed, n.kind, &ctx, *p, s) {
                    text = Some(t);
                    break;
                }
            }
            out.push(NoteView {
                event: n.event.id(),
                kind: n.kind,
                at_ms: n.event.at().wall_ms,
                operator: n.event.operator(),
                site: n.event.site(),
                text,
            });
        }
        out
    }
}

fn open_note(
    sealed: &SealedBytes,
    kind: NoteKind,
    context: &[u8],
    purpose: KeyPurpose,
    secret: &PurposeSecret,
) -> Result<Zeroizing<String>, OpenError> {
    sealed::open(sealed.as_bytes(), kind, context, purpose, secret)
}
