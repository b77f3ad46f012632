//! The walk-in form (当日受付): a household not on the roster — each member's name, reading,
//! birth date (Western or 和暦), sex, address and special needs — and the household card
//! (避難者カード): damage, where they stay (in the shelter, or at home / in a car / a tent and
//! supported from here), car, pets, who may be told they are here, the DV block, and 問診票
//! notes that only medical staff see or write. One submit writes the registration, the card,
//! and the check-in or the support-only registration, then each 問診票 note as a sealed note
//! (`kazashi_node::notes`; never in the card's plain `medical_note`).

use super::reception::staying_combo;
use super::{Cx, RED, big, labelled};
use crate::lang::Lang;
use eframe::egui::{self, RichText};
use kazashi_domain::event::{
    Disclosure, EventBody, HouseholdCard, HousingDamage, IdMethod, MemberCard, Members,
    StayingPlace, WalkInPerson,
};
use kazashi_domain::ids::{HouseholdRef, PersonRef};
use kazashi_domain::roster::{CareNeed, Sex};
use kazashi_domain::sealed_note::NoteKind;
use kazashi_domain::search::parse_typed_date;
use kazashi_domain::text::{Address, KanaReading, Label, Note, PersonName, Phone};
use kazashi_node::Clock;
use std::collections::BTreeSet;

struct MemberForm {
    name: String,
    kana: String,
    birth: String,
    sex: Sex,
    address: String,
    needs: BTreeSet<CareNeed>,
    allergies: String,
    medication: String,
    medical: String,
}

impl Default for MemberForm {
    fn default() -> Self {
        MemberForm {
            name: String::new(),
            kana: String::new(),
            birth: String::new(),
            sex: Sex::Unspecified,
            address: String::new(),
            needs: BTreeSet::new(),
            allergies: String::new(),
            medication: String::new(),
            medical: String::new(),
        }
    }
}

pub struct Form {
    members: Vec<MemberForm>,
    home: String,
    phone: String,
    damage: Option<HousingDamage>,
    staying: StayingPlace,
    car: String,
    pets: String,
    disclosure: Disclosure,
    dv_block: bool,
    notes: String,
    pub errors: Vec<String>,
    /// Likely matches registered at another site, shown once: the next submit with the same
    /// warnings registers (`resolve::likely_elsewhere_new`).
    warned: Vec<String>,
    /// A card or wristband read at reception, bound to the representative once registered.
    pub token: Option<super::token::Pending>,
}

impl Default for Form {
    fn default() -> Self {
        Form {
            members: vec![MemberForm::default()],
            home: String::new(),
            phone: String::new(),
            damage: None,
            staying: StayingPlace::InShelter,
            car: String::new(),
            pets: String::new(),
            disclosure: Disclosure::Relatives,
            dv_block: false,
            notes: String::new(),
            errors: Vec::new(),
            warned: Vec::new(),
            token: None,
        }
    }
}

fn sex_words<C: Clock>(cx: &Cx<'_, C>, s: Sex) -> String {
    match cx.tr.lang() {
        Lang::Ja => s.label_ja().to_owned(),
        Lang::En => cx.tr.t(match s {
            Sex::Male => "sex-male",
            Sex::Female => "sex-female",
            Sex::Unspecified => "sex-unspecified",
        }),
    }
}

fn need_words<C: Clock>(cx: &Cx<'_, C>, n: CareNeed) -> &'static str {
    match cx.tr.lang() {
        Lang::Ja => n.label_ja(),
        Lang::En => n.label_en(),
    }
}

fn damage_words<C: Clock>(cx: &Cx<'_, C>, d: Option<HousingDamage>) -> String {
    cx.tr.t(match d {
        None => "damage-unknown",
        Some(HousingDamage::Total) => "damage-total",
        Some(HousingDamage::MajorHalf) => "damage-major-half",
        Some(HousingDamage::Half) => "damage-half",
        Some(HousingDamage::Partial) => "damage-partial",
        Some(HousingDamage::None) => "damage-none",
    })
}

fn disclosure_words<C: Clock>(cx: &Cx<'_, C>, d: Disclosure) -> String {
    cx.tr.t(match d {
        Disclosure::Nobody => "disclose-nobody",
        Disclosure::Relatives => "disclose-relatives",
        Disclosure::Acquaintances => "disclose-acquaintances",
        Disclosure::Public => "disclose-public",
    })
}

/// An optional text field: empty is `None`, bad is an error message.
fn optional<T, E>(
    raw: &str,
    make: impl Fn(&str) -> Result<T, E>,
    bad: impl Fn() -> String,
    errors: &mut Vec<String>,
) -> Option<T> {
    let t = raw.trim();
    if t.is_empty() {
        return None;
    }
    match make(t) {
        Ok(v) => Some(v),
        Err(_) => {
            errors.push(bad());
            None
        }
    }
}

/// A labelled single-line field.
fn field(ui: &mut egui::Ui, label: String, value: &mut String, width: f32) {
    labelled(
        ui,
        label,
        egui::TextEdit::singleline(value).desired_width(width),
    );
}

impl Form {
    /// The form; true when a household was registered (the window shows the present list).
    pub fn show<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) -> bool {
        let mut submitted = false;
        // The title, the actions and what is wrong stay in view; the form scrolls below.
        ui.horizontal(|ui| {
            ui.heading(cx.tr.t("walkin-title"));
            if big(ui, cx.tr.t("walkin-submit")).clicked() {
                submitted = self.submit(cx);
            }
            if ui.button(cx.tr.t("walkin-clear")).clicked() {
                *self = Form::default();
            }
        });
        for e in &self.errors {
            ui.label(RichText::new(e.as_str()).color(RED));
        }
        if let Some(t) = &self.token {
            super::token::walkin_banner(ui, cx, t);
        }
        for w in &self.warned {
            ui.label(RichText::new(w.as_str()).color(super::AMBER).size(18.0));
        }
        if !self.warned.is_empty() {
            ui.label(RichText::new(cx.tr.t("resolve-confirm-again")).color(super::AMBER));
        }
        let medical = cx.login.role.medical();
        egui::ScrollArea::vertical().show(ui, |ui| {
            let mut remove = None;
            let many = self.members.len() > 1;
            for (i, m) in self.members.iter_mut().enumerate() {
                egui::Frame::group(ui.style()).show(ui, |ui| {
                    ui.horizontal(|ui| {
                        ui.strong(cx.tr.t_with("walkin-member", &[("n", (i + 1).into())]));
                        if many && ui.small_button(cx.tr.t("walkin-remove")).clicked() {
                            remove = Some(i);
                        }
                    });
                    ui.horizontal_wrapped(|ui| {
                        field(ui, cx.tr.t("walkin-name"), &mut m.name, 160.0);
                        field(ui, cx.tr.t("walkin-kana"), &mut m.kana, 160.0);
                        field(ui, cx.tr.t("walkin-birth"), &mut m.birth, 120.0);
                        egui::ComboBox::from_id_salt(("sex", i))
                            .selected_text(sex_words(cx, m.sex))
                            .show_ui(ui, |ui| {
                                for s in [Sex::Male, Sex::Female, Sex::Unspecified] {
                                    ui.selectable_value(&mut m.sex, s, sex_words(cx, s));
                                }
                            });
                    });
                    ui.horizontal_wrapped(|ui| {
                        field(ui, cx.tr.t("walkin-address"), &mut m.address, 360.0);
                    });
                    ui.collapsing(
                        cx.tr.t_with("walkin-needs", &[("n", m.needs.len().into())]),
                        |ui| {
                            ui.horizontal_wrapped(|ui| {
                                for n in CareNeed::ALL {
                                    let mut on = m.needs.contains(&n);
                                    if ui.checkbox(&mut on, need_words(cx, n)).changed() {
                                        if on {
                                            m.needs.insert(n);
                                        } else {
                                            m.needs.remove(&n);
                                        }
                                    }
                                }
                            });
                            ui.horizontal_wrapped(|ui| {
                                field(ui, cx.tr.t("walkin-allergies"), &mut m.allergies, 200.0);
                                field(ui, cx.tr.t("walkin-medication"), &mut m.medication, 200.0);
                            });
                            if medical {
                                labelled(
                                    ui,
                                    cx.tr.t("walkin-medical"),
                                    egui::TextEdit::multiline(&mut m.medical).desired_rows(2),
                                );
                            } else {
                                ui.label(RichText::new(cx.tr.t("walkin-medical-hidden")).italics());
                            }
                        },
                    );
                });
            }
            if let Some(i) = remove {
                self.members.remove(i);
            }
            if ui.button(cx.tr.t("walkin-add")).clicked() {
                let address = self
                    .members
                    .first()
                    .map(|m| m.address.clone())
                    .unwrap_or_default();
                self.members.push(MemberForm {
                    address,
                    ..MemberForm::default()
                });
            }
            ui.separator();
            ui.strong(cx.tr.t("walkin-card"));
            ui.horizontal_wrapped(|ui| {
                field(ui, cx.tr.t("walkin-home"), &mut self.home, 160.0);
                field(ui, cx.tr.t("walkin-phone"), &mut self.phone, 140.0);
                ui.label(cx.tr.t("walkin-damage"));
                egui::ComboBox::from_id_salt("damage")
                    .selected_text(damage_words(cx, self.damage))
                    .show_ui(ui, |ui| {
                        for d in [
                            None,
                            Some(HousingDamage::Total),
                            Some(HousingDamage::MajorHalf),
                            Some(HousingDamage::Half),
                            Some(HousingDamage::Partial),
                            Some(HousingDamage::None),
                        ] {
                            ui.selectable_value(&mut self.damage, d, damage_words(cx, d));
                        }
                    });
            });
            ui.horizontal_wrapped(|ui| {
                ui.label(cx.tr.t("walkin-staying"));
                staying_combo(ui, cx, "walkin-staying", &mut self.staying, true);
                field(ui, cx.tr.t("walkin-car"), &mut self.car, 160.0);
                field(ui, cx.tr.t("walkin-pets"), &mut self.pets, 120.0);
            });
            ui.horizontal_wrapped(|ui| {
                ui.label(cx.tr.t("walkin-disclosure"));
                egui::ComboBox::from_id_salt("disclosure")
                    .selected_text(disclosure_words(cx, self.disclosure))
                    .show_ui(ui, |ui| {
                        for d in [
                            Disclosure::Nobody,
                            Disclosure::Relatives,
                            Disclosure::Acquaintances,
                            Disclosure::Public,
                        ] {
                            ui.selectable_value(&mut self.disclosure, d, disclosure_words(cx, d));
                        }
                    });
                ui.checkbox(
                    &mut self.dv_block,
                    RichText::new(cx.tr.t("walkin-dv")).color(RED),
                );
            });
            field(ui, cx.tr.t("walkin-notes"), &mut self.notes, 480.0);
        });
        submitted
    }

    fn submit<C: Clock>(&mut self, cx: &mut Cx<'_, C>) -> bool {
        let mut errors = Vec::new();
        let today = kazashi_domain::CivilDate::jst_of(cx.now());
        let mut persons = Vec::new();
        let mut extras = Vec::new();
        for (i, m) in self.members.iter().enumerate() {
            let n = i + 1;
            let bad = |id: &str| cx.tr.t_with(id, &[("n", n.into())]);
            let name = match PersonName::new(m.name.trim()) {
                Ok(v) => Some(v),
                Err(_) => {
                    errors.push(bad("walkin-bad-name"));
                    None
                }
            };
            let kana = optional(
                &m.kana,
                KanaReading::new,
                || bad("walkin-bad-kana"),
                &mut errors,
            );
            let birth = optional(
                &m.birth,
                |s| {
                    parse_typed_date(s)
                        .filter(|d| today.is_none_or(|t| *d <= t))
                        .ok_or(())
                },
                || bad("walkin-bad-birth"),
                &mut errors,
            );
            let address = optional(
                &m.address,
                Address::new,
                || bad("walkin-bad-address"),
                &mut errors,
            );
            let allergies = optional(
                &m.allergies,
                Label::new,
                || bad("walkin-bad-text"),
                &mut errors,
            );
            let medication = optional(
                &m.medication,
                Label::new,
                || bad("walkin-bad-text"),
                &mut errors,
            );
            let medical = optional(
                &m.medical,
                Note::new,
                || bad("walkin-bad-text"),
                &mut errors,
            );
            if let Some(name) = name {
                persons.push(WalkInPerson {
                    name,
                    kana,
                    birth_date: birth,
                    sex: m.sex,
                    address,
                    care_needs: m.needs.clone(),
                });
                extras.push((allergies, medication, medical));
            }
        }
        let home = optional(
            &self.home,
            Label::new,
            || cx.tr.t("walkin-bad-home"),
            &mut errors,
        );
        let phone = optional(
            &self.phone,
            Phone::new,
            || cx.tr.t("walkin-bad-phone"),
            &mut errors,
        );
        let car = optional(
            &self.car,
            Label::new,
            || cx.tr.t("walkin-bad-car"),
            &mut errors,
        );
        let pets = optional(
            &self.pets,
            Label::new,
            || cx.tr.t("walkin-bad-pets"),
            &mut errors,
        );
        let notes = optional(
            &self.notes,
            Note::new,
            || cx.tr.t("walkin-bad-notes"),
            &mut errors,
        );
        // Medical notes are sealed to the deployment's medical and manager keys
        // (`kazashi_node::notes`): refused before anything is written if the manifest has none.
        if extras.iter().any(|(_, _, m)| m.is_some())
            && let Some(missing) = kazashi_sync::sealed::recipients(NoteKind::Medical)
                .iter()
                .find(|p| cx.node.membership().purpose_public(**p).is_none())
        {
            errors.push(
                cx.tr
                    .t_with("notes-no-key", &[("key", missing.code().into())]),
            );
        }
        if !errors.is_empty() {
            self.errors = errors;
            return false;
        }
        self.errors.clear();
        // A member likely already registered at another site: say where, and register only
        // on the next press (with the same warnings).
        let here = cx.site();
        let mut warnings = Vec::new();
        for p in &persons {
            warnings.extend(super::resolve::likely_elsewhere_new(cx, p, &here));
        }
        if !warnings.is_empty() && warnings != self.warned {
            self.warned = warnings;
            return false;
        }
        self.warned.clear();
        let count = persons.len();
        let Some(reg) = cx.record(EventBody::WalkInRegistration {
            members: persons,
            home_municipality: home,
        }) else {
            return false;
        };
        let refs: Vec<PersonRef> = (0..count)
            .map(|i| PersonRef::WalkIn {
                registration: reg.id(),
                index: u16::try_from(i).unwrap_or(u16::MAX),
            })
            .collect();
        let mut sealed_notes = Vec::new();
        let members = refs
            .iter()
            .zip(extras)
            .map(|(p, (allergies, medication, medical))| {
                if let Some(note) = medical {
                    sealed_notes.push((*p, note));
                }
                MemberCard {
                    person: *p,
                    care_needs: BTreeSet::new(),
                    allergies,
                    medication,
                    disclosure: None,
                    // Never in the clear: sealed notes below.
                    medical_note: None,
                }
            })
            .collect();
        let household = HouseholdRef::WalkIn(reg.id());
        let card = HouseholdCard {
            representative: refs.first().copied(),
            phone,
            damage: self.damage,
            flooding: None,
            staying: self.staying,
            car,
            pets,
            disclosure: self.disclosure,
            dv_block: self.dv_block,
            members,
            notes,
        };
        if cx
            .record(EventBody::HouseholdCard {
                household,
                card: Box::new(card),
            })
            .is_none()
        {
            return false;
        }
        let representative = refs.first().copied();
        let Ok(members) = Members::new(refs) else {
            return false;
        };
        let body = if self.staying == StayingPlace::InShelter {
            EventBody::ShelterCheckIn {
                household: Some(household),
                members,
                method: IdMethod::Lookup,
            }
        } else {
            EventBody::SupportOnlyRegistration {
                household: Some(household),
                members,
                staying: self.staying,
            }
        };
        if cx.record(body).is_none() {
            return false;
        }
        // A card or wristband read at reception: the representative's.
        let token = match (self.token.take(), representative) {
            (Some(t), Some(first)) => Some(super::token::bind_walk_in(cx, t, first)),
            _ => None,
        };
        // The registration stands even if a note is refused (said; the form is cleared so
        // that it is not registered twice).
        let mut note_refused = None;
        for (person, note) in sealed_notes {
            let operator = cx.login.operator;
            if let Err(e) = cx
                .node
                .add_note(operator, person, NoteKind::Medical, note.as_str())
            {
                note_refused = Some(e.to_string());
            }
        }
        let id = if self.staying == StayingPlace::InShelter {
            "checked-in"
        } else {
            "support-registered"
        };
        let mut text = cx.tr.t_with(id, &[("count", count.into())]);
        *self = Form::default();
        match token {
            Some((words, true)) => text = format!("{text}　{words}"),
            Some((words, false)) => note_refused = Some(words),
            None => {}
        }
        match note_refused {
            None => cx.say(text, true),
            Some(why) => {
                let why = cx.tr.t_with("refused", &[("why", why.into())]);
                cx.say(format!("{text} / {why}"), false);
            }
        }
        true
    }
}
