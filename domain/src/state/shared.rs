//! A state's events handed to another thread without copying the state: the arena's blocks
//! are shared (a pointer each), and the thread folds them again into a state equal to the one
//! they came from. `State::clone` copies every person's track, household and history — about
//! 5 s on the window's thread at ten million events (`kazashi-lab bench command`,
//! `window_snapshot`); this costs the window's thread microseconds and moves the fold to the
//! thread that needs the state.

use super::State;
use super::arena::{Arena, IdIndex, Lineage, SiteTable};
use super::authority::ManagerAuthority;

/// The events of a state, shared, with what is not folded from them (the lineage, the
/// interned sites, whose managers' decisions count).
#[derive(Debug, Clone)]
pub struct SharedEvents {
    lineage: Lineage,
    arena: Arena,
    sites: SiteTable,
    manager_authority: Option<ManagerAuthority>,
}

impl State {
    /// This state's events, shared (cheap: no event or folded record is copied), to be folded
    /// again elsewhere by [`SharedEvents::fold`].
    pub fn share(&self) -> SharedEvents {
        SharedEvents {
            lineage: self.lineage,
            arena: self.events.arena.clone(),
            sites: self.sites.clone(),
            manager_authority: self.manager_authority.clone(),
        }
    }
}

impl SharedEvents {
    /// How many events are shared.
    pub fn len(&self) -> usize {
        self.arena.len()
    }

    /// Whether no event is shared.
    pub fn is_empty(&self) -> bool {
        self.arena.is_empty()
    }

    /// The state these events fold to: equal to the state they were shared from (the fold does
    /// not depend on the order events came in), of the same lineage, with every event at the
    /// same place in the arena and every site under the same number — so an index made over it
    /// (`CountsIndex`) serves the state shared from, grown since, as one made over its clone
    /// does. Applied in the agreed order, as `State::from_events` does.
    pub fn fold(self) -> State {
        let arena = self.arena;
        let (order, index) = super::fold::sorted_beside(arena.iter(), || IdIndex::of_arena(&arena));
        let index = index.unwrap_or_else(|| IdIndex::of_arena(&arena));
        let mut s = State::new();
        s.lineage = self.lineage;
        s.manager_authority = self.manager_authority;
        s.sites = self.sites;
        s.fold_arena(arena, index, order)
    }
}
