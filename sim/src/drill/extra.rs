//! The faults and checks the chaos runner (`crate::chaos`) added to the drill: asymmetric
//! partitions (`one_way`), clock jumps, a manifest change mid-run, undone check-ins, and the
//! end-of-run checks — the same alerts on every laptop, nothing held before a crash missing
//! after the restart, the command center's counts against the truth, one manifest version.

use super::{Act, Engine, Status};
use crate::scenario::{Fault, Kind, Transport};
use kazashi_domain::event::EventBody;
use kazashi_domain::ids::AlertId;
use kazashi_domain::text::{Label, Note};
use kazashi_domain::{CivilDate, Event, EventId, State};
use kazashi_sync::{DeviceEntry, DeviceKey, Membership, Revocation, Role, SignedManifest};
use std::collections::BTreeSet;

/// What the engine keeps for the extra faults and checks.
pub(super) struct Extra {
    admin: DeviceKey,
    /// The latest manifest the administrator signed.
    manifest: Vec<u8>,
    /// Events a laptop held when it went down and lacked when it was opened again.
    pub(super) lost_at_restart: usize,
    /// Stream connections (id, direction) stalled by a one-way partition: nothing more arrives.
    stalled: BTreeSet<(u64, u8)>,
}

/// The checks made after the final heal.
pub(super) struct EndChecks {
    pub(super) alert_sets: usize,
    pub(super) hq_error: u32,
    pub(super) manifest_versions: usize,
}

impl Extra {
    pub(super) fn new(admin: &DeviceKey, manifest: &[u8]) -> Self {
        Self {
            admin: DeviceKey::from_seed(admin.secret_bytes()),
            manifest: manifest.to_vec(),
            lost_at_restart: 0,
            stalled: BTreeSet::new(),
        }
    }
}

/// Whether a `clock_jump` fault moves the `nth` laptop of `site`.
pub(super) fn jumps(faults: &[Fault], site: &str, nth: usize) -> bool {
    faults.iter().any(
        |f| matches!(f, Fault::ClockJump { site: s, laptop, .. } if s == site && *laptop == nth),
    )
}

impl Engine {
    /// `now` plus `min` and a random part of `spread`, scaled by the shelter's `pace` (moves,
    /// outings and goings home happen that many times sooner).
    pub(super) fn paced(&mut self, min: u64, spread: u64) -> u64 {
        use rand::RngExt;
        let pace = self.sc.shelter.as_ref().map_or(1.0, |s| s.pace);
        let d = min + self.wrng.random_range(0..spread);
        self.now + (d as f64 * pace) as u64
    }

    /// After the final heal: every laptop up holds every event any holds, under one manifest.
    pub(super) fn settled(&self) -> bool {
        if self.track.unconverged() != 0 {
            return false;
        }
        let mut digests = self
            .laptops
            .iter()
            .filter(|l| l.status == Status::Up)
            .filter_map(|l| l.node.as_ref())
            .map(|n| n.membership().digest());
        let first = digests.next();
        digests.all(|d| Some(d) == first)
    }

    /// The run's clock and every laptop's own (jumped) clock to `self.now`.
    pub(super) fn set_clocks(&mut self) {
        self.clock.set(self.now);
        for l in &self.laptops {
            if let Some(c) = &l.own_clock {
                c.set(self.now.saturating_add_signed(l.jump_ms));
            }
        }
    }

    /// Whether a one-way partition in force loses what `from` sends to `to`.
    pub(super) fn one_way_lost(&self, from: usize, to: usize) -> bool {
        let (Some(a), Some(b)) = (self.laptops.get(from), self.laptops.get(to)) else {
            return false;
        };
        let (a, b) = (a.site.as_str(), b.site.as_str());
        self.active.iter().any(|&i| match self.sc.faults.get(i) {
            Some(Fault::OneWay { sites, .. }) => {
                sites.iter().any(|s| s == a) && !sites.iter().any(|s| s == b)
            }
            _ => false,
        })
    }

    /// Whether a frame of connection `conn` from laptop `from` to `to` is lost to a one-way
    /// partition. On a stream, once one is lost nothing after it arrives either.
    pub(super) fn frame_lost(&mut self, conn: u64, dir: u8, from: usize, to: usize) -> bool {
        if self.extra.stalled.contains(&(conn, dir)) {
            return true;
        }
        if !self.one_way_lost(from, to) {
            return false;
        }
        if self.sc.network.transport == Transport::Stream {
            self.extra.stalled.insert((conn, dir));
        }
        true
    }

    pub(super) fn extra_fault(&mut self, f: &Fault, starting: bool) {
        match f {
            Fault::OneWay { sites, .. } => {
                let Some(i) = self.sc.faults.iter().position(|x| x == f) else {
                    return;
                };
                if starting {
                    // Live connections are not cut: their frames die one way, and the far
                    // side gives the peer up after its silence limit.
                    self.active.push(i);
                } else {
                    self.active.retain(|&a| a != i);
                    self.heal(format!("one-way partition of {} ends", sites.join(", ")));
                    self.redial();
                }
                self.trace.push((
                    self.now,
                    super::Trace::Partitions(
                        self.active
                            .iter()
                            .copied()
                            .filter(|&a| {
                                matches!(self.sc.faults.get(a), Some(Fault::Partition { .. }))
                            })
                            .collect(),
                    ),
                ));
            }
            Fault::ClockJump {
                site,
                laptop,
                minutes,
                ..
            } => {
                if let Some(l) = self.laptop_ix(site, *laptop)
                    && let Some(x) = self.laptops.get_mut(l)
                {
                    x.jump_ms = x.jump_ms.saturating_add(minutes.saturating_mul(60_000));
                }
                self.set_clocks();
            }
            Fault::ManifestChange { site, laptop, .. } => self.manifest_change(site, *laptop),
            _ => {}
        }
    }

    /// The administrator signs the next version: the laptops lost so far revoked from now,
    /// one spare laptop enrolled. It is handed to the laptop named (if it is up), which
    /// passes it on.
    fn manifest_change(&mut self, site: &str, nth: usize) {
        let Some(target) = self.laptop_ix(site, nth) else {
            return;
        };
        if !self
            .laptops
            .get(target)
            .is_some_and(|l| l.status == Status::Up)
        {
            return;
        }
        let Ok(current) = SignedManifest::decode(&self.extra.manifest) else {
            self.count_error("manifest change");
            return;
        };
        let mut m = current.manifest().clone();
        m.version += 1;
        let now = self.now;
        for l in self.laptops.iter().filter(|l| l.status == Status::Lost) {
            let device = l.key.device_id();
            if !m.revoked.iter().any(|r| r.device == device) {
                m.revoked.push(Revocation {
                    device,
                    from_ms: now,
                });
            }
        }
        let spare = DeviceKey::from_seed({
            let mut s = [7u8; 32];
            s[..4].copy_from_slice(&m.version.to_le_bytes());
            s
        });
        if let (Ok(label), Some(first)) = (Label::new("予備機"), self.laptops.first()) {
            m.devices.push(DeviceEntry {
                device: spare.device_id(),
                role: Role::Station,
                label,
                sites: vec![first.site],
            });
        }
        let Ok(signed) = SignedManifest::sign(&m, &self.extra.admin) else {
            self.count_error("manifest change");
            return;
        };
        let bytes = signed.encode();
        self.extra.manifest = bytes.clone();
        let adopted = self
            .laptops
            .get_mut(target)
            .and_then(|l| l.node.as_mut())
            .map(|n| n.adopt_manifest(&bytes));
        match adopted {
            Some(Ok(_)) => self.bump(target),
            Some(Err(_)) => self.count_error("manifest change"),
            None => {}
        }
    }

    /// The manifest the administrator signed last (the one every laptop holds at the end).
    pub(super) fn final_members(&self) -> Option<Membership> {
        SignedManifest::decode(&self.extra.manifest).ok()
    }

    /// Whether the manifest `members` withholds event `id` from the counts.
    pub(super) fn withheld_at_end(&self, members: Option<&Membership>, id: &EventId) -> bool {
        members
            .zip(self.god.event(id))
            .is_some_and(|(m, e)| m.withholds(e).is_some())
    }

    fn count_error(&mut self, what: &str) {
        *self
            .refusals
            .entry(format!("{what}: laptop error"))
            .or_default() += 1;
    }

    /// The desk undoes household `hh`'s check-in `target` (at a laptop of its site).
    pub(super) fn undo(&mut self, hh: usize, target: kazashi_domain::EventId, tries: u8) {
        let Some(site) = self.stays.get(hh).filter(|s| !s.gone).map(|s| s.site) else {
            return;
        };
        let Some(laptop) = self.desk(site) else {
            return self.retry(Act::Undo { hh, target }, tries);
        };
        let Ok(reason) = Note::new("別世帯を選択") else {
            return;
        };
        match self.record(laptop, EventBody::UndoCheckIn { target, reason }) {
            Ok(_) => {
                if let Some(s) = self.stays.get_mut(hh) {
                    s.gone = true;
                }
            }
            Err(e) => self.refused("undo", &e),
        }
    }

    /// A laptop was opened again from its store: every event it held before must be there
    /// (held: counted, or withheld by the manifest).
    pub(super) fn check_restart(&mut self, laptop: usize) {
        let Some(node) = self.laptops.get(laptop).and_then(|l| l.node.as_ref()) else {
            return;
        };
        let missing = self
            .ids
            .iter()
            .filter(|(id, e)| self.track.holds(laptop, **e) && !node.holds(id))
            .count();
        self.extra.lost_at_restart += missing;
    }

    /// After the final heal: alerts, the command center's counts, manifest versions.
    pub(super) fn end_checks(&mut self, gone_with_lost: &[u32]) -> EndChecks {
        let gone: BTreeSet<u32> = gone_with_lost.iter().copied().collect();
        // The truth counts what the final manifest admits: a revoked laptop's events stamped at
        // or after its cut-off are held by every laptop and counted by none.
        let members = self.final_members();
        let mut events: Vec<Event> = self
            .ids
            .iter()
            .filter(|(_, e)| !gone.contains(e))
            .filter_map(|(id, _)| self.god.event(id).cloned())
            .filter(|e| members.as_ref().is_none_or(|m| m.withholds(e).is_none()))
            .collect();
        events.sort_by_key(|e| e.id());
        let truth = State::from_events(events);
        let mut alert_sets: Vec<Vec<AlertId>> = Vec::new();
        let mut versions = BTreeSet::new();
        for l in &mut self.laptops {
            let (Status::Up, Some(node)) = (l.status, l.node.as_mut()) else {
                continue;
            };
            let mut ids: Vec<AlertId> = node.alerts().into_iter().map(|a| a.id).collect();
            ids.sort();
            if !alert_sets.contains(&ids) {
                alert_sets.push(ids);
            }
            versions.insert(node.membership().digest());
        }
        let hq_site = self
            .deployment
            .sites()
            .find(|s| matches!(s.kind, kazashi_domain::SiteKind::CommandCenter))
            .map(|s| s.id);
        let hq = self
            .laptops
            .iter()
            .find(|l| Some(l.site) == hq_site && l.status == Status::Up)
            .and_then(|l| l.node.as_ref());
        let hq_error = match hq {
            Some(node) => self.count_error_against(&truth, node.state()),
            None => 0,
        };
        EndChecks {
            alert_sets: alert_sets.len(),
            hq_error,
            manifest_versions: versions.len(),
        }
    }

    /// Sum over sites of |seen − truth|: persons registered (in the shelter or supported
    /// outside) for shelters, ballots for elections.
    fn count_error_against(&self, truth: &State, seen: &State) -> u32 {
        let today = CivilDate::jst_of(self.now).unwrap_or(self.municipality.today);
        match self.sc.kind {
            Kind::Shelter => {
                let (gc, hc) = (truth.clusters(None), seen.clusters(None));
                self.deployment
                    .sites()
                    .filter(|s| s.is_shelter())
                    .map(|site| {
                        let g = truth.site_counts_with(&site.id, &self.roster, today, None, &gc);
                        let h = seen.site_counts_with(&site.id, &self.roster, today, None, &hc);
                        let gv = g.registered() + g.support_only.values().sum::<u32>();
                        let hv = h.registered() + h.support_only.values().sum::<u32>();
                        gv.abs_diff(hv)
                    })
                    .sum()
            }
            Kind::Election => {
                let (g, h) = (truth.vote_tallies(None), seen.vote_tallies(None));
                self.sites
                    .iter()
                    .map(|site| {
                        let gv = g.get(site).map_or(0, |v| v.early + v.election_day);
                        let hv = h.get(site).map_or(0, |v| v.early + v.election_day);
                        gv.abs_diff(hv)
                    })
                    .sum()
            }
        }
    }
}
