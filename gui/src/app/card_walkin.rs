//! A walk-in registered from their card (a shelter): the card-text PIN was typed, the basic
//! four match no one on the roster (another town's resident), and staff register the person as
//! a walk-in from what the card says — the one card flow that keeps the basic four (issue 24,
//! minimisation: `kazashi_node::reception::walk_in_of`). The registration, the card's binding
//! and the check-in are written through `Cx::record`; cancelled, the basic four are dropped
//! (and wiped).

use super::{Cx, big};
use eframe::egui::{self, RichText};
use kazashi_domain::event::{EventBody, IdMethod, Members};
use kazashi_domain::ids::{CardKey, HouseholdRef, PersonRef};
use kazashi_node::Clock;
use kazashi_node::card::BasicFour;
use kazashi_node::reception::walk_in_of;

/// The screen: what the card says, register or cancel. `true` when done with (either way).
pub fn show<C: Clock>(
    ui: &mut egui::Ui,
    cx: &mut Cx<'_, C>,
    four: &BasicFour,
    card: CardKey,
) -> bool {
    ui.heading(cx.tr.t("card-walkin-title"));
    ui.label(RichText::new(four.name.as_str()).size(22.0).strong());
    ui.label(four.address.as_str());
    ui.label(four.birth_date.to_string());
    ui.label(cx.tr.t("card-walkin-note"));
    let mut register = false;
    let mut cancel = false;
    ui.horizontal(|ui| {
        register = big(ui, cx.tr.t("card-walkin-register")).clicked();
        cancel = ui.button(cx.tr.t("cancel")).clicked();
    });
    // Someone likely the same person registered at another shelter is named first; the next
    // press (with the same warnings) registers (`resolve::likely_elsewhere_new`).
    let warned_id = ui.scope_id().with("card-walkin-warned");
    let warned: Vec<String> = ui.data_mut(|d| d.get_temp(warned_id).unwrap_or_default());
    for w in &warned {
        ui.label(RichText::new(w.as_str()).color(super::AMBER).size(18.0));
    }
    if !warned.is_empty() {
        ui.label(RichText::new(cx.tr.t("resolve-confirm-again")).color(super::AMBER));
    }
    if register {
        let warnings = match walk_in_of(four) {
            Ok(p) => {
                let here = cx.site();
                super::resolve::likely_elsewhere_new(cx, &p, &here)
            }
            Err(_) => Vec::new(),
        };
        if !warnings.is_empty() && warnings != warned {
            ui.data_mut(|d| d.insert_temp(warned_id, warnings));
            return false;
        }
        ui.data_mut(|d| d.remove::<Vec<String>>(warned_id));
        self::register(cx, four, card);
        return true;
    }
    if cancel {
        ui.data_mut(|d| d.remove::<Vec<String>>(warned_id));
    }
    cancel
}

/// Write the registration, bind the card to the walk-in, check them in. A refusal is said by
/// `Cx::record` and stops there.
fn register<C: Clock>(cx: &mut Cx<'_, C>, four: &BasicFour, card: CardKey) {
    let person = match walk_in_of(four) {
        Ok(p) => p,
        Err(e) => {
            let text = cx.tr.t_with("refused", &[("why", e.to_string().into())]);
            return cx.say(text, false);
        }
    };
    let Some(reg) = cx.record(EventBody::WalkInRegistration {
        members: vec![person],
        home_municipality: None,
    }) else {
        return;
    };
    let walk_in = PersonRef::WalkIn {
        registration: reg.id(),
        index: 0,
    };
    if cx
        .record(EventBody::CardBinding {
            card,
            person: Some(walk_in),
        })
        .is_none()
    {
        return;
    }
    let Ok(members) = Members::new(vec![walk_in]) else {
        return;
    };
    if cx
        .record(EventBody::ShelterCheckIn {
            household: Some(HouseholdRef::WalkIn(reg.id())),
            members,
            method: IdMethod::CardWithPin,
        })
        .is_some()
    {
        let done = cx.tr.t("card-walkin-done");
        cx.say(done, true);
    }
}
