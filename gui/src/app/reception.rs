//! The reception screen: "カードをかざしてください" → the household with each member → tick who
//! enters → confirm; the PIN path the first time a card is seen; search without a card. A view
//! over `Node` and `node::card`, nothing else. In demo mode a side panel holds simulated cards.

use super::tr::Tr;
use crate::lang::Lang;
use eframe::egui::{self, RichText};
use kazashi_domain::event::{EventBody, IdMethod, Members};
use kazashi_domain::ids::{CardKey, HouseholdRef, OperatorId, PersonId, PersonRef};
use kazashi_domain::state::StayStatus;
use kazashi_node::card::{CardError, CardSession, Pin, PinFor, Transport};
use kazashi_node::reception::{BasicFourMatch, Tap};
use kazashi_node::{Node, clock::Clock};
use kazashi_sim::card::VirtualCard;
use std::sync::{Arc, Mutex};

/// A simulated card shared between the demo panel and a session (PIN counters persist).
#[derive(Clone)]
pub struct SharedCard(pub Arc<Mutex<VirtualCard>>);

impl Transport for SharedCard {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        let mut c = self
            .0
            .lock()
            .map_err(|_| CardError::Reader("card poisoned".into()))?;
        c.transmit(apdu)
    }
}

/// One simulated card of the demo panel.
pub struct DemoCard {
    pub label: String,
    pub card: SharedCard,
}

struct Member {
    person: PersonId,
    label: String,
    present: bool,
    ticked: bool,
}

enum Screen {
    Idle,
    Pin {
        session: CardSession<SharedCard>,
        tap: Tap,
        tries: u8,
        typed: String,
        error: Option<String>,
    },
    Household {
        household: kazashi_domain::ids::HouseholdId,
        members: Vec<Member>,
        method: IdMethod,
        /// A card to bind to this person on confirming (after a PIN read).
        bind: Option<(CardKey, PersonId)>,
    },
    Candidates {
        people: Vec<PersonId>,
        card: CardKey,
    },
}

/// What the last action did, for the status line.
struct Said {
    text: String,
    ok: bool,
}

pub struct Reception<C: Clock> {
    node: Node<C>,
    tr: Tr,
    operator: OperatorId,
    screen: Screen,
    query: String,
    results: Vec<PersonId>,
    said: Option<Said>,
    demo: Vec<DemoCard>,
}

impl<C: Clock> Reception<C> {
    pub fn new(
        node: Node<C>,
        lang: Lang,
        operator: OperatorId,
        demo: Vec<DemoCard>,
    ) -> Result<Self, String> {
        Ok(Reception {
            node,
            tr: Tr::new(lang)?,
            operator,
            screen: Screen::Idle,
            query: String::new(),
            results: Vec::new(),
            said: None,
            demo,
        })
    }

    #[cfg(test)]
    pub fn node(&self) -> &Node<C> {
        &self.node
    }

    fn say(&mut self, text: String, ok: bool) {
        self.said = Some(Said { text, ok });
    }

    fn card_words(&self, e: &CardError) -> String {
        self.tr.lang().card_error(e)
    }

    /// Persons present at this site now.
    pub fn present(&self) -> usize {
        let site = self.node.station().site();
        self.node
            .state()
            .stays_at(&site, None)
            .iter()
            .filter(|(_, s)| s.status == StayStatus::Present)
            .count()
    }

    fn is_present(&self, p: PersonId) -> bool {
        let site = self.node.station().site();
        self.node
            .state()
            .stays(&PersonRef::Roster(p), None)
            .get(&site)
            .is_some_and(|s| s.status == StayStatus::Present)
    }

    fn person_label(&self, p: PersonId) -> String {
        match self.node.station().roster().get(&p) {
            Some(e) => format!(
                "{}（{}） {}",
                e.name.as_str(),
                e.kana.as_str(),
                e.birth_date
            ),
            None => p.to_string(),
        }
    }

    /// A card was placed on the reader.
    pub fn tap(&mut self, card: SharedCard) {
        self.said = None;
        let mut session = CardSession::new(card);
        let tap = match self.node.card_tap(&mut session, &[]) {
            Ok(t) => t,
            Err(e) => return self.say(self.card_words(&e), false),
        };
        match tap.person {
            Some(PersonRef::Roster(p)) => self.open_household(p, IdMethod::CardTap, None),
            Some(other) => self.say(format!("{other}"), true),
            None => match session.pin_tries(PinFor::Text) {
                Ok(tries) => {
                    self.screen = Screen::Pin {
                        session,
                        tap,
                        tries,
                        typed: String::new(),
                        error: None,
                    }
                }
                Err(e) => self.say(self.card_words(&e), false),
            },
        }
    }

    fn open_household(
        &mut self,
        person: PersonId,
        method: IdMethod,
        bind: Option<(CardKey, PersonId)>,
    ) {
        let Some(household) = self
            .node
            .station()
            .roster()
            .get(&person)
            .map(|e| e.household)
        else {
            return self.say(self.tr.t("not-found"), false);
        };
        let members: Vec<Member> = self
            .node
            .station()
            .roster()
            .household(&household)
            .iter()
            .map(|e| {
                let present = self.is_present(e.person);
                Member {
                    person: e.person,
                    label: self.person_label(e.person),
                    present,
                    ticked: !present,
                }
            })
            .collect();
        self.screen = Screen::Household {
            household,
            members,
            method,
            bind,
        };
    }

    fn submit_pin(&mut self) {
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
        let pin = match Pin::new(&typed) {
            Ok(p) => p,
            Err(e) => {
                let error = Some(self.card_words(&e));
                self.screen = Screen::Pin {
                    session,
                    tap,
                    tries,
                    typed: String::new(),
                    error,
                };
                return;
            }
        };
        drop(typed);
        match session.verify_pin(PinFor::Text, &pin) {
            Ok(()) => {}
            Err(e @ CardError::WrongPin { left, .. }) => {
                let error = Some(self.card_words(&e));
                self.screen = Screen::Pin {
                    session,
                    tap,
                    tries: left,
                    typed: String::new(),
                    error,
                };
                return;
            }
            Err(e) => return self.say(self.card_words(&e), false),
        }
        let four = match session.read_basic_four() {
            Ok(f) => f,
            Err(e) => return self.say(self.card_words(&e), false),
        };
        match self.node.match_basic_four(&four) {
            BasicFourMatch::Strong(c) => {
                self.open_household(c.person, IdMethod::CardWithPin, Some((tap.card, c.person)))
            }
            BasicFourMatch::Weak(cands) => {
                self.screen = Screen::Candidates {
                    people: cands.iter().map(|c| c.person).collect(),
                    card: tap.card,
                }
            }
            BasicFourMatch::NotFound => self.say(self.tr.t("not-found"), false),
        }
    }

    fn confirm(&mut self) {
        let Screen::Household {
            household,
            members,
            method,
            bind,
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
            return self.say(self.tr.t("already-present"), false);
        }
        if let Some((card, p)) = bind
            && let Err(e) = self
                .node
                .bind_card(self.operator, card, PersonRef::Roster(p))
        {
            return self.say(e.to_string(), false);
        }
        let n = chosen.len();
        let body = match Members::new(chosen) {
            Ok(members) => EventBody::ShelterCheckIn {
                household: Some(HouseholdRef::Roster(household)),
                members,
                method,
            },
            Err(e) => return self.say(e.to_string(), false),
        };
        match self.node.record(self.operator, body) {
            Ok(_) => {
                let mut text = self.tr.t_with("checked-in", &[("count", n.into())]);
                if bind.is_some() {
                    text = format!("{text}　{}", self.tr.t("card-bound"));
                }
                self.say(text, true);
                self.query.clear();
                self.results.clear();
            }
            Err(e) => self.say(e.to_string(), false),
        }
    }

    /// The whole screen.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        egui::Panel::top("header").show(ui, |ui| self.header(ui));
        if !self.demo.is_empty() {
            egui::Panel::right("demo")
                .default_size(240.0)
                .show(ui, |ui| self.demo_panel(ui));
        }
        egui::CentralPanel::default().show(ui, |ui| {
            match &self.screen {
                Screen::Idle => self.idle(ui),
                Screen::Pin { .. } => self.pin(ui),
                Screen::Household { .. } => self.household(ui),
                Screen::Candidates { .. } => self.candidates(ui),
            }
            if let Some(s) = &self.said {
                ui.separator();
                let color = if s.ok {
                    egui::Color32::from_rgb(0, 110, 40)
                } else {
                    egui::Color32::from_rgb(170, 20, 20)
                };
                ui.label(RichText::new(&s.text).size(20.0).color(color));
            }
        });
    }

    fn header(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let site = self.node.station().site();
            let name = self
                .node
                .station()
                .deployment()
                .site(&site)
                .map(|s| s.name.as_str().to_owned())
                .unwrap_or_else(|| site.to_string());
            ui.heading(format!("{} — {name}", self.tr.t("app-title")));
            ui.separator();
            ui.label(
                RichText::new(
                    self.tr
                        .t_with("present-count", &[("count", self.present().into())]),
                )
                .size(20.0),
            );
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui.button(self.tr.t("lang-switch")).clicked() {
                    let next = match self.tr.lang() {
                        Lang::Ja => Lang::En,
                        Lang::En => Lang::Ja,
                    };
                    if let Ok(tr) = Tr::new(next) {
                        self.tr = tr;
                    }
                }
            });
        });
    }

    fn demo_panel(&mut self, ui: &mut egui::Ui) {
        ui.heading(self.tr.t("demo-cards"));
        ui.label(self.tr.t("demo-pin-hint"));
        let mut tapped = None;
        for (i, d) in self.demo.iter().enumerate() {
            if ui
                .button(
                    self.tr
                        .t_with("demo-tap", &[("who", d.label.clone().into())]),
                )
                .clicked()
            {
                tapped = Some(i);
            }
        }
        if let Some(card) = tapped
            .and_then(|i| self.demo.get(i))
            .map(|d| d.card.clone())
        {
            self.tap(card);
        }
    }

    fn idle(&mut self, ui: &mut egui::Ui) {
        ui.add_space(12.0);
        ui.label(RichText::new(self.tr.t("tap-prompt")).size(32.0).strong());
        ui.add_space(16.0);
        let label = ui.label(self.tr.t("search-label"));
        let edit = egui::TextEdit::singleline(&mut self.query)
            .hint_text(self.tr.t("search-hint"))
            .desired_width(480.0);
        let r = ui.add(edit).labelled_by(label.id);
        if r.changed() {
            let q = self.query.clone();
            self.results = if q.trim().is_empty() {
                Vec::new()
            } else {
                self.node.search(&q, 30)
            };
        }
        if !self.query.trim().is_empty() && self.results.is_empty() {
            ui.label(self.tr.t("search-none"));
        }
        let mut chosen = None;
        egui::ScrollArea::vertical().show(ui, |ui| {
            for p in &self.results {
                if ui
                    .button(RichText::new(self.person_label(*p)).size(18.0))
                    .clicked()
                {
                    chosen = Some(*p);
                }
            }
        });
        if let Some(p) = chosen {
            self.said = None;
            self.open_household(p, IdMethod::Lookup, None);
        }
    }

    fn pin(&mut self, ui: &mut egui::Ui) {
        let Screen::Pin {
            tries,
            typed,
            error,
            ..
        } = &mut self.screen
        else {
            return;
        };
        ui.heading(self.tr.t("pin-title"));
        let prompt = match self.tr.lang() {
            Lang::Ja => kazashi_node::card::pin_prompt_ja(PinFor::Text, *tries),
            Lang::En => kazashi_node::card::pin_prompt_en(PinFor::Text, *tries),
        };
        ui.label(RichText::new(prompt).size(20.0));
        if let Some(e) = error {
            ui.label(
                RichText::new(e.as_str())
                    .color(egui::Color32::from_rgb(170, 20, 20))
                    .size(20.0),
            );
        }
        let label = ui.label(self.tr.t("pin-label"));
        let r = ui
            .add(
                egui::TextEdit::singleline(typed)
                    .password(true)
                    .desired_width(120.0),
            )
            .labelled_by(label.id);
        let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let mut submit = enter;
        let mut cancel = false;
        ui.horizontal(|ui| {
            submit |= ui
                .button(RichText::new(self.tr.t("pin-ok")).size(20.0))
                .clicked();
            cancel = ui.button(self.tr.t("cancel")).clicked();
        });
        if cancel {
            self.screen = Screen::Idle;
        } else if submit {
            self.submit_pin();
        }
    }

    fn household(&mut self, ui: &mut egui::Ui) {
        let already = self.tr.t("already-present");
        let Screen::Household { members, .. } = &mut self.screen else {
            return;
        };
        ui.heading(self.tr.t("household-title"));
        ui.label(self.tr.t("household-hint"));
        for m in members.iter_mut() {
            if m.present {
                ui.label(format!("{}　{already}", m.label));
            } else {
                ui.checkbox(&mut m.ticked, RichText::new(m.label.as_str()).size(20.0));
            }
        }
        let mut confirm = false;
        let mut cancel = false;
        ui.horizontal(|ui| {
            confirm = ui
                .button(RichText::new(self.tr.t("confirm-checkin")).size(24.0))
                .clicked();
            cancel = ui.button(self.tr.t("cancel")).clicked();
        });
        if cancel {
            self.screen = Screen::Idle;
        } else if confirm {
            self.confirm();
        }
    }

    fn candidates(&mut self, ui: &mut egui::Ui) {
        let Screen::Candidates { people, card } = &self.screen else {
            return;
        };
        let (people, card) = (people.clone(), *card);
        ui.heading(self.tr.t("candidates-title"));
        let mut chosen = None;
        for p in &people {
            if ui
                .button(RichText::new(self.person_label(*p)).size(18.0))
                .clicked()
            {
                chosen = Some(*p);
            }
        }
        if ui.button(self.tr.t("cancel")).clicked() {
            self.screen = Screen::Idle;
        }
        if let Some(p) = chosen {
            self.open_household(p, IdMethod::CardWithPin, Some((card, p)));
        }
    }
}
