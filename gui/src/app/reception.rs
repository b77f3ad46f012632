//! Reception: "カードをかざしてください" → who it is (a bound card at once; the first time, the
//! card's PIN and its basic four matched to the roster; or a search, or an admission ticket) →
//! at a shelter the household with each member, staff tick who enters, confirm; at a polling
//! station the voter ([`super::polling`]).

use super::cards::Card;
use super::polling::{self, VoterScreen};
use super::{Cx, RED, View, big, labelled};
use crate::lang::Lang;
use eframe::egui::{self, RichText};
use kazashi_domain::detector::registered_elsewhere;
use kazashi_domain::event::{Disclosure, EventBody, IdMethod, Members, StayingPlace};
use kazashi_domain::ids::{CardKey, HouseholdId, HouseholdRef, PersonId, PersonRef};
use kazashi_node::card::Chain;
use kazashi_node::card::{CardError, CardSession, Pin, PinFor};
use kazashi_node::possession::{Presented, Refusal};
use kazashi_node::reception::{BasicFourMatch, Tap};
use kazashi_node::{Clock, Node};
use zeroize::Zeroizing;

pub struct Member {
    person: PersonId,
    label: String,
    present: bool,
    ticked: bool,
    /// Under the DV block or 支援措置: marked discreetly, no location said.
    protected: bool,
}

pub enum Screen {
    Idle,
    Pin {
        session: CardSession<Card>,
        tap: Tap,
        tries: u8,
        /// The PIN as typed: wiped when the screen is left.
        typed: Zeroizing<String>,
        error: Option<String>,
    },
    /// At a polling station: the voter's card, waiting for its JPKI PIN; it is taken only
    /// once it signed a fresh challenge with its certificate's key.
    Proof {
        session: CardSession<Card>,
        presented: Box<Presented>,
        /// The PIN as typed: wiped when the screen is left.
        typed: Zeroizing<String>,
        error: Option<String>,
    },
    Household {
        household: HouseholdId,
        members: Vec<Member>,
        method: IdMethod,
        /// A card to bind to this person on confirming (after a PIN read).
        bind: Option<(CardKey, PersonId)>,
        /// Where members are registered already (shown, not a block: people move).
        elsewhere: Vec<String>,
        staying: StayingPlace,
    },
    Candidates {
        people: Vec<PersonId>,
        card: CardKey,
    },
    /// At a shelter: the card's basic four match no one on the roster; staff may register the
    /// person as a walk-in from them ([`super::card_walkin`]). Wiped when the screen is left.
    WalkInFromCard {
        four: Box<kazashi_node::card::BasicFour>,
        card: CardKey,
    },
    Voter(Box<VoterScreen>),
    /// A card or wristband not yet registered: whom to bind it to ([`super::token`]).
    Token(Box<super::token::TokenScreen>),
}

pub use super::Found;

pub struct Desk {
    pub screen: Screen,
    query: String,
    ticket: String,
    results: Vec<PersonId>,
    /// The household member whose consent (安否情報) is being recorded, and its level.
    consent_for: usize,
    consent_level: Disclosure,
    /// A manager's reason for lifting the DV block of the household shown.
    lift_reason: String,
    /// The member whose sealed notes are shown (medical staff and leads), and the panel.
    notes_for: usize,
    notes: super::notes::NotesPanel,
    /// The wristband scan field, and a token handed to the walk-in form.
    pub tokens: super::token::Panel,
    /// The receipt slip of this laptop's latest check-in (where the deployment hands them out).
    receipt: super::command::paper_view::Receipt,
}

impl Default for Desk {
    fn default() -> Self {
        Desk {
            screen: Screen::Idle,
            query: String::new(),
            ticket: String::new(),
            results: Vec::new(),
            consent_for: 0,
            consent_level: Disclosure::Relatives,
            lift_reason: String::new(),
            notes_for: 0,
            notes: Default::default(),
            tokens: Default::default(),
            receipt: Default::default(),
        }
    }
}

fn card_words<C: Clock>(cx: &Cx<'_, C>, e: &CardError) -> String {
    cx.tr.lang().card_error(e)
}

/// Persons present at this laptop's site now.
pub fn is_present<C: Clock>(node: &Node<C>, p: &PersonRef) -> bool {
    let site = node.station().site();
    node.state()
        .stays(p, None)
        .get(&site)
        .is_some_and(|s| s.status == kazashi_domain::state::StayStatus::Present)
}

impl Desk {
    /// A card was placed on the reader.
    pub fn tap<C: Clock>(&mut self, cx: &mut Cx<'_, C>, card: Card, polling: bool) {
        *cx.said = None;
        if let Screen::Voter(v) = &mut self.screen
            && v.wants_officer()
        {
            return polling::officer_card(cx, v, card);
        }
        let mut session = CardSession::new(card);
        if polling {
            // A voter's check-in by card: the card proves it holds its key (PIN, signature).
            match cx.node.present_card(&mut session) {
                Ok(presented) => {
                    self.screen = Screen::Proof {
                        session,
                        presented: Box::new(presented),
                        typed: Zeroizing::default(),
                        error: None,
                    }
                }
                Err(r) => cx.say(super::refusal_words(cx.tr, &r), false),
            }
            return;
        }
        // Shelter entry: identification only (the face compared by staff), the chain checked
        // when the deployment lists its card CAs.
        let tap = match cx.node.card_tap_checked(&mut session) {
            Ok(t) => t,
            // Any other contactless card: its identifier, as a token.
            Err(CardError::NotMyNumberCard) => {
                let o = super::token::card(cx, session);
                return self.token(cx, o);
            }
            Err(e) => return cx.say(card_words(cx, &e), false),
        };
        if tap.chain != Chain::Trusted && !cx.node.card_cas().is_empty() {
            return cx.say(
                super::refusal_words(cx.tr, &Refusal::Chain(tap.chain)),
                false,
            );
        }
        self.tapped(cx, session, tap, polling);
    }

    /// What a token read found: the household, or the screen to register the token.
    fn token<C: Clock>(&mut self, cx: &mut Cx<'_, C>, o: super::token::Outcome) {
        match o {
            super::token::Outcome::Said => {}
            super::token::Outcome::Found(f) => self.found(cx, f, false),
            super::token::Outcome::Register(s) => self.screen = Screen::Token(s),
        }
    }

    /// A card identified (PIN-less at a shelter, proven at a polling station): its person, or
    /// the card-text PIN to read the basic four the first time.
    fn tapped<C: Clock>(
        &mut self,
        cx: &mut Cx<'_, C>,
        mut session: CardSession<Card>,
        tap: Tap,
        polling: bool,
    ) {
        match tap.person {
            Some(PersonRef::Roster(p)) => self.found(
                cx,
                Found {
                    person: p,
                    method: IdMethod::CardTap,
                    bind: None,
                },
                polling,
            ),
            Some(other) => {
                let label = cx.person_label(&other);
                cx.say(label, true)
            }
            None => match session.pin_tries(PinFor::Text) {
                // One try left: Kazashi never spends it.
                Ok(tries) if tries <= 1 => {
                    cx.say(super::refusal_words(cx.tr, &Refusal::LastTry), false)
                }
                Ok(tries) => {
                    self.screen = Screen::Pin {
                        session,
                        tap,
                        tries,
                        typed: Zeroizing::default(),
                        error: None,
                    }
                }
                Err(e) => cx.say(card_words(cx, &e), false),
            },
        }
    }

    /// Open the person found: their household at a shelter, the voter at a polling station.
    pub fn found<C: Clock>(&mut self, cx: &mut Cx<'_, C>, f: Found, polling: bool) {
        if polling {
            self.screen = match VoterScreen::open(cx, f) {
                Some(v) => Screen::Voter(Box::new(v)),
                None => Screen::Idle,
            };
            return;
        }
        let Some(household) = cx
            .node
            .station()
            .roster()
            .get(&f.person)
            .map(|e| e.household)
        else {
            return cx.say(cx.tr.t("not-found"), false);
        };
        let entries: Vec<PersonId> = cx
            .node
            .station()
            .roster()
            .household(&household)
            .iter()
            .map(|e| e.person)
            .collect();
        let members: Vec<Member> = entries
            .iter()
            .map(|p| {
                let r = PersonRef::Roster(*p);
                let present = is_present(cx.node, &r);
                Member {
                    person: *p,
                    label: cx.person_label(&r),
                    present,
                    ticked: !present,
                    protected: cx.node.state().dv_withheld(&r, cx.node.station().roster()),
                }
            })
            .collect();
        let refs: Vec<PersonRef> = entries.iter().map(|p| PersonRef::Roster(*p)).collect();
        // No other shelter is named for a protected person: it is a location staff could say.
        let mut elsewhere: Vec<String> = registered_elsewhere(cx.node.state(), &refs, &cx.site())
            .into_iter()
            .filter(|(p, _)| !cx.node.state().dv_withheld(p, cx.node.station().roster()))
            .map(|(p, s)| {
                cx.tr.t_with(
                    "registered-elsewhere",
                    &[
                        ("who", cx.person_label(&p).into()),
                        ("site", cx.site_name(&s).into()),
                    ],
                )
            })
            .collect();
        // Someone likely the same person (linked, or a likely duplicate) registered elsewhere.
        let here = cx.site();
        for r in &refs {
            elsewhere.extend(super::resolve::likely_elsewhere_of(cx, r, &here));
        }
        self.consent_for = 0;
        self.consent_level = Disclosure::Relatives;
        self.lift_reason.clear();
        self.notes_for = 0;
        self.screen = Screen::Household {
            household,
            members,
            method: f.method,
            bind: f.bind,
            elsewhere,
            staying: StayingPlace::InShelter,
        };
    }

    pub fn submit_pin<C: Clock>(&mut self, cx: &mut Cx<'_, C>, polling: bool) {
        let Screen::Pin {
            mut session,
            tap,
            tries,
            typed,
            ..
        } = std::mem::replace(&mut self.screen, Screen::Idle)
        else {
            return;
        };
        let back = |session, tap, tries, error| Screen::Pin {
            session,
            tap,
            tries,
            typed: Zeroizing::default(),
            error: Some(error),
        };
        let pin = match Pin::new(&typed) {
            Ok(p) => p,
            Err(e) => {
                self.screen = back(session, tap, tries, card_words(cx, &e));
                return;
            }
        };
        drop(typed);
        match session.verify_pin(PinFor::Text, &pin) {
            Ok(()) => {}
            Err(CardError::WrongPin { left, .. }) if left <= 1 => {
                return cx.say(super::refusal_words(cx.tr, &Refusal::LastTry), false);
            }
            Err(e @ CardError::WrongPin { left, .. }) => {
                self.screen = back(session, tap, left, card_words(cx, &e));
                return;
            }
            Err(e) => return cx.say(card_words(cx, &e), false),
        }
        let four = match session.read_basic_four() {
            Ok(f) => f,
            Err(e) => return cx.say(card_words(cx, &e), false),
        };
        match cx.node.match_basic_four(&four) {
            BasicFourMatch::Strong(c) => self.found(
                cx,
                Found {
                    person: c.person,
                    method: IdMethod::CardWithPin,
                    bind: Some((tap.card, c.person)),
                },
                polling,
            ),
            BasicFourMatch::Weak(cands) => {
                self.screen = Screen::Candidates {
                    people: cands.iter().map(|c| c.person).collect(),
                    card: tap.card,
                }
            }
            // At a shelter, another town's resident: offer the walk-in from the card.
            BasicFourMatch::NotFound if !polling => {
                self.screen = Screen::WalkInFromCard {
                    four: Box::new(four),
                    card: tap.card,
                }
            }
            BasicFourMatch::NotFound => cx.say(cx.tr.t("not-found"), false),
        }
    }

    /// The voter's card PIN was typed: once the card signed a fresh challenge with its
    /// certificate's key, the voter it is bound to (or the card-text PIN the first time).
    pub fn submit_proof<C: Clock>(&mut self, cx: &mut Cx<'_, C>, polling: bool) {
        let Screen::Proof {
            mut session,
            mut presented,
            typed,
            ..
        } = std::mem::replace(&mut self.screen, Screen::Idle)
        else {
            return;
        };
        let pin = match Pin::new(&typed) {
            Ok(p) => p,
            Err(e) => {
                self.screen = Screen::Proof {
                    session,
                    presented,
                    typed: Zeroizing::default(),
                    error: Some(card_words(cx, &e)),
                };
                return;
            }
        };
        drop(typed);
        match cx.node.prove_card(&mut session, &presented, &pin) {
            Ok(_) => {
                let tap = presented.tap.clone();
                self.tapped(cx, session, tap, polling);
            }
            Err(Refusal::Card(e @ CardError::WrongPin { left, .. })) if left >= 2 => {
                presented.tries = left;
                self.screen = Screen::Proof {
                    session,
                    presented,
                    typed: Zeroizing::default(),
                    error: Some(card_words(cx, &e)),
                };
            }
            Err(Refusal::Card(CardError::WrongPin { .. })) => {
                cx.say(super::refusal_words(cx.tr, &Refusal::LastTry), false)
            }
            Err(r) => cx.say(super::refusal_words(cx.tr, &r), false),
        }
    }

    pub fn confirm<C: Clock>(&mut self, cx: &mut Cx<'_, C>, support_only: bool) {
        let Screen::Household {
            household,
            members,
            method,
            bind,
            staying,
            ..
        } = std::mem::replace(&mut self.screen, Screen::Idle)
        else {
            return;
        };
        let chosen: Vec<PersonRef> = members
            .iter()
            .filter(|m| m.ticked && !m.present)
            .map(|m| PersonRef::Roster(m.person))
            .collect();
        if chosen.is_empty() {
            return cx.say(cx.tr.t("already-present"), false);
        }
        if let Some((card, p)) = bind
            && let Err(e) = cx
                .node
                .bind_card(cx.login.operator, card, PersonRef::Roster(p))
        {
            return cx.say(e.to_string(), false);
        }
        let n = chosen.len();
        let members = match Members::new(chosen) {
            Ok(m) => m,
            Err(e) => return cx.say(e.to_string(), false),
        };
        let household = Some(HouseholdRef::Roster(household));
        let body = if support_only {
            EventBody::SupportOnlyRegistration {
                household,
                members,
                staying,
            }
        } else {
            EventBody::ShelterCheckIn {
                household,
                members,
                method,
            }
        };
        if cx.record(body).is_some() {
            let id = if support_only {
                "support-registered"
            } else {
                "checked-in"
            };
            let mut text = cx.tr.t_with(id, &[("count", n.into())]);
            if bind.is_some() {
                text = format!("{text}　{}", cx.tr.t("card-bound"));
            }
            cx.say(text, true);
            self.query.clear();
            self.results.clear();
        }
    }

    /// The reception view; may ask to switch views (to the walk-in form).
    pub fn show<C: Clock>(
        &mut self,
        ui: &mut egui::Ui,
        cx: &mut Cx<'_, C>,
        polling: bool,
    ) -> Option<View> {
        match &mut self.screen {
            Screen::Idle => return self.idle(ui, cx, polling),
            Screen::Pin { .. } => self.pin(ui, cx, polling),
            Screen::Proof { .. } => self.proof(ui, cx, polling),
            Screen::Household { .. } => self.household(ui, cx),
            Screen::Candidates { .. } => self.candidates(ui, cx, polling),
            Screen::WalkInFromCard { four, card } => {
                if super::card_walkin::show(ui, cx, four, *card) {
                    self.screen = Screen::Idle;
                }
            }
            Screen::Voter(v) => {
                if polling::show_voter(ui, cx, v) {
                    self.screen = Screen::Idle;
                }
            }
            Screen::Token(s) => match super::token::screen(ui, cx, s) {
                super::token::Step::Stay => {}
                super::token::Step::Cancel => self.screen = Screen::Idle,
                super::token::Step::Found(f) => self.found(cx, f, false),
                super::token::Step::WalkIn(t) => {
                    self.tokens.handoff = Some(t);
                    self.screen = Screen::Idle;
                    return Some(View::WalkIn);
                }
            },
        }
        None
    }

    fn idle<C: Clock>(
        &mut self,
        ui: &mut egui::Ui,
        cx: &mut Cx<'_, C>,
        polling: bool,
    ) -> Option<View> {
        ui.add_space(12.0);
        ui.label(RichText::new(cx.tr.t("tap-prompt")).size(32.0).strong());
        self.receipt.show(ui, cx);
        ui.add_space(16.0);
        let mut goto = None;
        if polling {
            let r = labelled(
                ui,
                cx.tr.t("ticket-label"),
                egui::TextEdit::singleline(&mut self.ticket)
                    .hint_text(cx.tr.t("ticket-hint"))
                    .desired_width(240.0),
            );
            if r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                let scanned = std::mem::take(&mut self.ticket);
                match cx.node.admission_ticket(&scanned) {
                    Ok(p) => {
                        self.found(
                            cx,
                            Found {
                                person: p,
                                method: IdMethod::AdmissionTicket,
                                bind: None,
                            },
                            polling,
                        );
                        return None;
                    }
                    Err(e) => {
                        let text = match cx.tr.lang() {
                            Lang::Ja => e.message_ja(),
                            Lang::En => e.to_string(),
                        };
                        cx.say(text, false);
                    }
                }
            }
        }
        let r = labelled(
            ui,
            cx.tr.t("search-label"),
            egui::TextEdit::singleline(&mut self.query)
                .hint_text(cx.tr.t("search-hint"))
                .desired_width(480.0),
        );
        if r.changed() {
            let q = self.query.clone();
            self.results = if q.trim().is_empty() {
                Vec::new()
            } else {
                cx.node.search(&q, 30)
            };
        }
        if !self.query.trim().is_empty() && self.results.is_empty() {
            ui.label(cx.tr.t("search-none"));
        }
        if !polling {
            let o = super::token::idle(ui, cx, &mut self.tokens);
            self.token(cx, o);
        }
        if !polling && ui.button(cx.tr.t("walk-in-open")).clicked() {
            goto = Some(View::WalkIn);
        }
        let mut chosen = None;
        egui::ScrollArea::vertical().show(ui, |ui| {
            for p in &self.results {
                let label = cx.person_label(&PersonRef::Roster(*p));
                if ui.button(RichText::new(label).size(18.0)).clicked() {
                    chosen = Some(*p);
                }
            }
        });
        if let Some(p) = chosen {
            *cx.said = None;
            self.found(
                cx,
                Found {
                    person: p,
                    method: IdMethod::Lookup,
                    bind: None,
                },
                polling,
            );
        }
        goto
    }

    fn pin<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>, polling: bool) {
        let Screen::Pin {
            tries,
            typed,
            error,
            ..
        } = &mut self.screen
        else {
            return;
        };
        ui.heading(cx.tr.t("pin-title"));
        let prompt = match cx.tr.lang() {
            Lang::Ja => kazashi_node::card::pin_prompt_ja(PinFor::Text, *tries),
            Lang::En => kazashi_node::card::pin_prompt_en(PinFor::Text, *tries),
        };
        ui.label(RichText::new(prompt).size(20.0));
        if let Some(e) = error {
            ui.label(RichText::new(e.as_str()).color(RED).size(20.0));
        }
        let (submit, cancel) = pin_field(ui, cx, "pin-label", "pin-ok", typed);
        if cancel {
            self.screen = Screen::Idle;
        } else if submit {
            self.submit_pin(cx, polling);
        }
    }

    fn proof<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>, polling: bool) {
        let Screen::Proof {
            presented,
            typed,
            error,
            ..
        } = &mut self.screen
        else {
            return;
        };
        ui.heading(cx.tr.t("card-proof-title"));
        let prompt = match cx.tr.lang() {
            Lang::Ja => kazashi_node::card::pin_prompt_ja(PinFor::Jpki, presented.tries),
            Lang::En => kazashi_node::card::pin_prompt_en(PinFor::Jpki, presented.tries),
        };
        ui.label(RichText::new(prompt).size(20.0));
        ui.label(cx.tr.t("card-proof-note"));
        ui.label(
            RichText::new(cx.tr.lang().t(
                kazashi_node::card::REVOCATION_NOTE_JA,
                kazashi_node::card::REVOCATION_NOTE_EN,
            ))
            .color(super::AMBER),
        );
        if let Some(e) = error {
            ui.label(RichText::new(e.as_str()).color(RED).size(20.0));
        }
        let (submit, cancel) = pin_field(ui, cx, "card-proof-label", "card-proof-ok", typed);
        if cancel {
            self.screen = Screen::Idle;
        } else if submit {
            self.submit_proof(cx, polling);
        }
    }

    fn household<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
        let already = cx.tr.t("already-present");
        let Desk {
            screen,
            consent_for,
            consent_level,
            lift_reason,
            notes_for,
            notes,
            ..
        } = self;
        let Screen::Household {
            household,
            members,
            elsewhere,
            staying,
            method,
            ..
        } = screen
        else {
            return;
        };
        ui.heading(cx.tr.t("household-title"));
        ui.label(cx.tr.t("household-hint"));
        if *method == IdMethod::Token {
            super::token::notice(ui, cx);
        }
        if *method == IdMethod::CardTap {
            ui.label(RichText::new(cx.tr.t("card-identify-only")).color(super::AMBER));
            ui.label(
                RichText::new(cx.tr.lang().t(
                    kazashi_node::card::REVOCATION_NOTE_JA,
                    kazashi_node::card::REVOCATION_NOTE_EN,
                ))
                .small(),
            );
        }
        for m in members.iter_mut() {
            ui.horizontal(|ui| {
                if m.present {
                    ui.label(format!("{}　{already}", m.label));
                } else {
                    ui.checkbox(&mut m.ticked, RichText::new(m.label.as_str()).size(20.0));
                }
                if m.protected {
                    // Discreet: a small mark, the meaning on hover, never the word DV aloud.
                    ui.label(RichText::new(cx.tr.t("reception-protected-mark")).small())
                        .on_hover_text(cx.tr.t("reception-protected-hint"));
                }
            });
        }
        super::unconfirmed_view::household_line(ui, cx, household);
        let mut consent = None;
        ui.horizontal_wrapped(|ui| {
            ui.label(cx.tr.t("reception-consent-label"));
            let who = members
                .get(*consent_for)
                .map(|m| m.label.clone())
                .unwrap_or_default();
            egui::ComboBox::from_id_salt("reception-consent-who")
                .selected_text(who)
                .show_ui(ui, |ui| {
                    for (i, m) in members.iter().enumerate() {
                        ui.selectable_value(consent_for, i, m.label.as_str());
                    }
                });
            egui::ComboBox::from_id_salt("reception-consent-level")
                .selected_text(disclosure_words(cx, *consent_level))
                .show_ui(ui, |ui| {
                    for d in [
                        Disclosure::Nobody,
                        Disclosure::Relatives,
                        Disclosure::Acquaintances,
                        Disclosure::Public,
                    ] {
                        ui.selectable_value(consent_level, d, disclosure_words(cx, d));
                    }
                });
            if ui.button(cx.tr.t("reception-consent-record")).clicked() {
                consent = members
                    .get(*consent_for)
                    .map(|m| (m.person, *consent_level));
            }
        });
        // Medical staff and leads: a member's sealed notes (問診票, protection details).
        let access = cx.node.note_access(&cx.login.operator);
        if access.write_medical || access.read_medical || access.read_protection {
            ui.horizontal_wrapped(|ui| {
                ui.label(cx.tr.t("notes-who"));
                let who = members
                    .get(*notes_for)
                    .map(|m| m.label.clone())
                    .unwrap_or_default();
                egui::ComboBox::from_id_salt("reception-notes-who")
                    .selected_text(who)
                    .show_ui(ui, |ui| {
                        for (i, m) in members.iter().enumerate() {
                            ui.selectable_value(notes_for, i, m.label.as_str());
                        }
                    });
            });
            if let Some(m) = members.get(*notes_for) {
                let (person, label) = (PersonRef::Roster(m.person), m.label.clone());
                notes.show(ui, cx, person, &label);
            }
        }
        // A manager lifts the DV block a household card set (never 支援措置, which only a new
        // roster clears), with a reason.
        let blocked_here = cx
            .node
            .state()
            .dv_blocked(&HouseholdRef::Roster(*household));
        let mut lift = None;
        if blocked_here && cx.login.role.manages() {
            ui.horizontal_wrapped(|ui| {
                labelled(
                    ui,
                    cx.tr.t("reception-lift-reason"),
                    egui::TextEdit::singleline(lift_reason).desired_width(320.0),
                );
                if ui.button(cx.tr.t("reception-lift")).clicked() {
                    lift = Some(kazashi_domain::text::Note::new(lift_reason.trim()));
                }
            });
        }
        let lifted = match lift {
            Some(Ok(reason)) => cx
                .record(EventBody::DvBlockLift {
                    household: HouseholdRef::Roster(*household),
                    reason,
                })
                .is_some(),
            Some(Err(_)) => {
                cx.say(cx.tr.t("reception-lift-reason-needed"), false);
                false
            }
            None => false,
        };
        if lifted {
            lift_reason.clear();
            cx.say(cx.tr.t("reception-lift-done"), true);
        }
        if let Some((person, disclosure)) = consent
            && cx
                .record(EventBody::Consent {
                    person: PersonRef::Roster(person),
                    disclosure,
                })
                .is_some()
        {
            cx.say(cx.tr.t("reception-consent-recorded"), true);
        }
        for w in elsewhere.iter() {
            ui.label(RichText::new(w.as_str()).color(super::AMBER).size(18.0));
        }
        let mut confirm = false;
        let mut support = false;
        let mut cancel = false;
        ui.horizontal(|ui| {
            confirm = big(ui, cx.tr.t("confirm-checkin")).clicked();
            cancel = ui.button(cx.tr.t("cancel")).clicked();
        });
        ui.separator();
        ui.horizontal(|ui| {
            ui.label(cx.tr.t("support-only-label"));
            staying_combo(ui, cx, "household-staying", staying, false);
            support = ui.button(cx.tr.t("support-only-register")).clicked();
        });
        if cancel {
            self.screen = Screen::Idle;
        } else if confirm {
            self.confirm(cx, false);
        } else if support {
            if *staying == StayingPlace::InShelter {
                *staying = StayingPlace::AtHome;
            }
            self.confirm(cx, true);
        }
    }

    fn candidates<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>, polling: bool) {
        let Screen::Candidates { people, card } = &self.screen else {
            return;
        };
        let (people, card) = (people.clone(), *card);
        ui.heading(cx.tr.t("candidates-title"));
        let mut chosen = None;
        for p in &people {
            let label = cx.person_label(&PersonRef::Roster(*p));
            if ui.button(RichText::new(label).size(18.0)).clicked() {
                chosen = Some(*p);
            }
        }
        if ui.button(cx.tr.t("cancel")).clicked() {
            self.screen = Screen::Idle;
        }
        if let Some(p) = chosen {
            self.found(
                cx,
                Found {
                    person: p,
                    method: IdMethod::CardWithPin,
                    bind: Some((card, p)),
                },
                polling,
            );
        }
    }
}

/// Words for where a household stays.
/// The words for a consent level (the walk-in form's).
fn disclosure_words<C: Clock>(cx: &Cx<'_, C>, d: Disclosure) -> String {
    cx.tr.t(match d {
        Disclosure::Nobody => "disclose-nobody",
        Disclosure::Relatives => "disclose-relatives",
        Disclosure::Acquaintances => "disclose-acquaintances",
        Disclosure::Public => "disclose-public",
    })
}

pub fn staying_words<C: Clock>(cx: &Cx<'_, C>, s: StayingPlace) -> String {
    cx.tr.t(match s {
        StayingPlace::InShelter => "staying-shelter",
        StayingPlace::AtHome => "staying-home",
        StayingPlace::Car => "staying-car",
        StayingPlace::Tent => "staying-tent",
        StayingPlace::Relatives => "staying-relatives",
        StayingPlace::Other => "staying-other",
    })
}

/// A choice of where a household stays (`shelter`: offer "in the shelter").
pub fn staying_combo<C: Clock>(
    ui: &mut egui::Ui,
    cx: &Cx<'_, C>,
    id: &str,
    value: &mut StayingPlace,
    shelter: bool,
) {
    let all = [
        StayingPlace::InShelter,
        StayingPlace::AtHome,
        StayingPlace::Car,
        StayingPlace::Tent,
        StayingPlace::Relatives,
        StayingPlace::Other,
    ];
    let shown = if !shelter && *value == StayingPlace::InShelter {
        StayingPlace::AtHome
    } else {
        *value
    };
    egui::ComboBox::from_id_salt(id)
        .selected_text(staying_words(cx, shown))
        .show_ui(ui, |ui| {
            for s in all {
                if s == StayingPlace::InShelter && !shelter {
                    continue;
                }
                ui.selectable_value(value, s, staying_words(cx, s));
            }
        });
}

/// A masked PIN field (Enter submits) with its OK and cancel buttons: (submitted, cancelled).
fn pin_field<C: Clock>(
    ui: &mut egui::Ui,
    cx: &Cx<'_, C>,
    label: &str,
    ok: &str,
    typed: &mut String,
) -> (bool, bool) {
    let r = labelled(
        ui,
        cx.tr.t(label),
        egui::TextEdit::singleline(typed)
            .password(true)
            .desired_width(120.0),
    );
    let mut submit = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    let mut cancel = false;
    ui.horizontal(|ui| {
        submit |= big(ui, cx.tr.t(ok)).clicked();
        cancel = ui.button(cx.tr.t("cancel")).clicked();
    });
    (submit, cancel)
}
