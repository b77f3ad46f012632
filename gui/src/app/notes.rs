//! Sealed notes in the window (issue 24, requirement 3): 問診票 notes and, for a manager,
//! protection (DV) details of one person — a roster resident or a walk-in — shown under the
//! present list when one person is chosen, and on the household screen at reception.
//!
//! Medical staff (and a lead) on a laptop that holds the medical key read the notes and add
//! new ones; a lead on a laptop holding the manager key also reads and adds protection
//! details. Everyone else sees only how many sealed notes there are. The text is opened by
//! `kazashi_node::notes` each frame it is shown and wiped when dropped; nothing is cached
//! here but what is being typed.

use super::{Cx, hhmm, labelled};
use eframe::egui::{self, RichText};
use kazashi_domain::ids::PersonRef;
use kazashi_domain::sealed_note::NoteKind;
use kazashi_node::Clock;
use zeroize::Zeroizing;

/// The notes of the person shown, and the note being typed.
pub struct NotesPanel {
    draft: Zeroizing<String>,
    kind: NoteKind,
    /// Whose notes the draft is for: a draft is dropped when another person is shown.
    person: Option<PersonRef>,
    /// Whose opened notes are on the audit record (issue 24): once per person shown.
    audited: Option<PersonRef>,
}

impl Default for NotesPanel {
    fn default() -> Self {
        NotesPanel {
            draft: Zeroizing::new(String::new()),
            kind: NoteKind::Medical,
            person: None,
            audited: None,
        }
    }
}

impl NotesPanel {
    /// The notes of `person` (`label`: their name as shown).
    pub fn show<C: Clock>(
        &mut self,
        ui: &mut egui::Ui,
        cx: &mut Cx<'_, C>,
        person: PersonRef,
        label: &str,
    ) {
        if self.person != Some(person) {
            self.draft.clear();
            self.person = Some(person);
            self.audited = None;
        }
        let operator = cx.login.operator;
        let access = cx.node.note_access(&operator);
        let count = cx.node.note_count(&person);
        ui.separator();
        ui.label(RichText::new(cx.tr.t_with("notes-title", &[("name", label.into())])).strong());
        if !(access.read_medical || access.read_protection) {
            // Only the count: not what they say, not their kind.
            ui.label(
                cx.tr
                    .t_with("notes-sealed-count", &[("count", count.into())]),
            );
        } else {
            let notes = cx.node.notes(&operator, &person);
            // Notes opened here are on the audit record, once per person shown; no record,
            // no text (issue 24).
            if self.audited != Some(person) && notes.iter().any(|n| n.text.is_some()) {
                match audit_view(cx, &notes, person) {
                    Ok(()) => self.audited = Some(person),
                    Err(why) => {
                        let text = cx.tr.t_with("audit-not-recorded", &[("why", why.into())]);
                        ui.label(RichText::new(text).color(super::RED));
                        return;
                    }
                }
            }
            if notes.is_empty() {
                ui.label(cx.tr.t("notes-none"));
            }
            for n in &notes {
                let kind = match n.kind {
                    NoteKind::Medical => cx.tr.t("notes-kind-medical"),
                    NoteKind::Protection => cx.tr.t("notes-kind-protection"),
                };
                let text = match &n.text {
                    Some(t) => t.as_str().to_owned(),
                    None => cx.tr.t("notes-sealed-one"),
                };
                ui.label(format!(
                    "{} {} {}: {}",
                    hhmm(n.at_ms),
                    kind,
                    n.operator,
                    text
                ));
            }
        }
        if !(access.write_medical || access.write_protection) {
            return;
        }
        if access.write_protection {
            ui.horizontal(|ui| {
                ui.radio_value(
                    &mut self.kind,
                    NoteKind::Medical,
                    cx.tr.t("notes-kind-medical"),
                );
                ui.radio_value(
                    &mut self.kind,
                    NoteKind::Protection,
                    cx.tr.t("notes-kind-protection"),
                );
            });
        } else {
            self.kind = NoteKind::Medical;
        }
        labelled(
            ui,
            cx.tr.t("notes-new"),
            egui::TextEdit::multiline(&mut *self.draft)
                .desired_rows(2)
                .desired_width(480.0),
        );
        if ui.button(cx.tr.t("notes-add")).clicked() {
            self.add(cx, person);
        }
    }

    fn add<C: Clock>(&mut self, cx: &mut Cx<'_, C>, person: PersonRef) {
        if self.draft.trim().is_empty() {
            cx.say(cx.tr.t("notes-empty"), false);
            return;
        }
        let operator = cx.login.operator;
        match cx
            .node
            .add_note(operator, person, self.kind, self.draft.trim())
        {
            Ok(_) => {
                self.draft.clear();
                cx.say(cx.tr.t("notes-added"), true);
            }
            Err(e) => {
                let text = cx.tr.t_with("refused", &[("why", e.to_string().into())]);
                cx.say(text, false);
            }
        }
    }
}

/// The audit records of notes opened for `person`: a medical-note view and a protection view,
/// for the kinds whose text was opened.
fn audit_view<C: Clock>(
    cx: &mut Cx<'_, C>,
    notes: &[kazashi_node::notes::NoteView],
    person: PersonRef,
) -> Result<(), String> {
    use kazashi_domain::audit::AuditAction;
    for (kind, action) in [
        (NoteKind::Medical, AuditAction::MedicalNoteView),
        (NoteKind::Protection, AuditAction::ProtectionNoteView),
    ] {
        if notes.iter().any(|n| n.kind == kind && n.text.is_some()) {
            cx.node
                .audit(cx.login.operator, action, vec![person])
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
