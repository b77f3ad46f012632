//! Who is who: card bindings and same-as / not-same assertions.

use super::fold::State;
use crate::event::{Event, EventBody};
use crate::ids::{CardKey, PersonRef};
use crate::time::Millis;

pub use crate::clusters::Assertion;

impl State {
    /// The person a card key is bound to (the latest binding wins; `None` if unbound).
    pub fn card_binding(&self, card: &CardKey, as_of: Option<Millis>) -> Option<PersonRef> {
        match self
            .latest_in(&self.card_bindings, card, as_of)
            .map(Event::body)
        {
            Some(EventBody::CardBinding { person, .. }) => *person,
            _ => None,
        }
    }

    /// Same-as / not-same assertions not retracted, in order.
    pub fn assertions(&self, as_of: Option<Millis>) -> Vec<Assertion> {
        self.assertions
            .upto(as_of, &self.events)
            .iter()
            .filter_map(|&ix| self.events.get(ix))
            .filter(|e| {
                self.retractions
                    .get(&e.id())
                    .is_none_or(|r| r.upto(as_of, &self.events).is_empty())
            })
            .filter_map(|e| match e.body() {
                EventBody::SameAs { a, b, .. } => Some(Assertion {
                    event: e.id(),
                    a: *a,
                    b: *b,
                    same: true,
                }),
                EventBody::NotSame { a, b, .. } => Some(Assertion {
                    event: e.id(),
                    a: *a,
                    b: *b,
                    same: false,
                }),
                _ => None,
            })
            .collect()
    }

    /// Person clusters from the same-as assertions standing at `as_of`.
    pub fn clusters(&self, as_of: Option<Millis>) -> crate::clusters::Clusters {
        crate::clusters::Clusters::new(&self.assertions(as_of))
    }
}
