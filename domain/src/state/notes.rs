//! Sealed notes by person, in the agreed order (`EventBody::SealedNote`).

use super::fold::State;
use crate::event::{Event, EventBody};
use crate::ids::PersonRef;
use crate::sealed_note::{NoteKind, SealedBytes};

/// One sealed note as the log holds it: who wrote it and when are the event's.
#[derive(Debug, Clone, Copy)]
pub struct SealedNoteRef<'a> {
    pub event: &'a Event,
    pub kind: NoteKind,
    pub sealed: &'a SealedBytes,
}

impl State {
    /// The sealed notes attached to `person`, oldest first (the agreed order).
    pub fn sealed_notes(&self, person: &PersonRef) -> Vec<SealedNoteRef<'_>> {
        let Some(h) = self.sealed_notes.get(person) else {
            return Vec::new();
        };
        h.upto(None, &self.events)
            .iter()
            .filter_map(|&i| self.events.get(i))
            .filter_map(|event| match event.body() {
                EventBody::SealedNote { kind, sealed, .. } => Some(SealedNoteRef {
                    event,
                    kind: *kind,
                    sealed,
                }),
                _ => None,
            })
            .collect()
    }

    /// How many sealed notes `person` has.
    pub fn sealed_note_count(&self, person: &PersonRef) -> usize {
        self.sealed_notes
            .get(person)
            .map_or(0, |h| h.upto(None, &self.events).len())
    }
}
