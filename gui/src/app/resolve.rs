//! Duplicates resolved in the window (issue 26): a duplicate alert's two records side by side
//! with the score and each reason in the window's language; a manager links them as one person
//! (`SameAs`), marks them distinct (`NotSame`) or retracts either (`RetractAssertion`), each a
//! signed event written through the node. At entry, a lookup or a walk-in that likely matches
//! someone already registered at another site is named with that site before confirming.
//! Event kinds in alert evidence are named here in the window's language (never
//! `EventBody::name`, which is English for logs and messages).
//!
//! When either record of a pair is under the DV block (`State::dv_withheld`), neither
//! record's site is shown (the other is likely the same person), nor is a protected record
//! named in an entry warning: a site is a location staff could say.

use super::Cx;
use super::tr::Tr;
use crate::lang::Lang;
use eframe::egui::{self, RichText};
use kazashi_domain::CivilDate;
use kazashi_domain::detector::{Alert, AlertKind, LIKELY, MatchReason, Record, compare};
use kazashi_domain::event::{EventBody, WalkInPerson};
use kazashi_domain::ids::{PersonRef, SiteId};
use kazashi_domain::roster::Sex;
use kazashi_domain::text::Note;
use kazashi_node::{Clock, Node};

/// An event's kind in the window's language (a kind added later than this list says
/// "another record", never its English name).
#[allow(unreachable_patterns)]
pub fn event_kind(tr: &Tr, body: &EventBody) -> String {
    tr.t(match body {
        EventBody::ShelterCheckIn { .. } => "evkind-shelter-check-in",
        EventBody::ShelterCheckOut { .. } => "evkind-shelter-check-out",
        EventBody::TemporaryLeave { .. } => "evkind-temporary-leave",
        EventBody::ReturnFromLeave { .. } => "evkind-return-from-leave",
        EventBody::Transfer { .. } => "evkind-transfer",
        EventBody::SupportOnlyRegistration { .. } => "evkind-support-only",
        EventBody::WalkInRegistration { .. } => "evkind-walk-in",
        EventBody::HouseholdCard { .. } => "evkind-household-card",
        EventBody::ShelterStatusReport(_) => "evkind-status-report",
        EventBody::SiteLifecycle(_) => "evkind-site-lifecycle",
        EventBody::VoterCheckIn { .. } => "evkind-voter-check-in",
        EventBody::BallotTally { .. } => "evkind-ballot-tally",
        EventBody::UndoCheckIn { .. } => "evkind-undo",
        EventBody::CardBinding { .. } => "evkind-card-binding",
        EventBody::SameAs { .. } => "evkind-same-as",
        EventBody::NotSame { .. } => "evkind-not-same",
        EventBody::RetractAssertion { .. } => "evkind-retraction",
        EventBody::AlertResolution { .. } => "evkind-alert-resolution",
        EventBody::DvBlockLift { .. } => "evkind-dv-lift",
        EventBody::Consent { .. } => "evkind-consent",
        EventBody::OperationClosed { .. } => "evkind-operation-closed",
        EventBody::Audit(_) => "evkind-audit",
        EventBody::SealedNote { .. } => "evkind-sealed-note",
        EventBody::ReportedSafe { .. } => "evkind-reported-safe",
        _ => "evkind-other",
    })
}

/// A match reason in the window's language.
pub fn reason_words(tr: &Tr, r: &MatchReason) -> String {
    match r {
        MatchReason::NameSame { variants } if variants.is_empty() => tr.t("reason-name-same"),
        MatchReason::NameSame { variants } => {
            let v: Vec<String> = variants.iter().map(|(a, b)| format!("{a}→{b}")).collect();
            tr.t_with("reason-name-variants", &[("variants", v.join("・").into())])
        }
        MatchReason::NameSwapped => tr.t("reason-name-swapped"),
        MatchReason::FamilyNameSame => tr.t("reason-family-same"),
        MatchReason::GivenNameSame => tr.t("reason-given-same"),
        MatchReason::NameKanaScript => tr.t("reason-kana-script"),
        MatchReason::ReadingSame => tr.t("reason-reading-same"),
        MatchReason::ReadingDiffers => tr.t("reason-reading-differs"),
        MatchReason::BirthDateSame => tr.t("reason-birth-same"),
        MatchReason::BirthDateUncertain => tr.t("reason-birth-uncertain"),
        MatchReason::BirthDateNear => tr.t("reason-birth-near"),
        MatchReason::BirthYearSame => tr.t("reason-birth-year"),
        MatchReason::AddressSame => tr.t("reason-address-same"),
        MatchReason::AddressDiffers => tr.t("reason-address-differs"),
        MatchReason::AddressNear(p) => {
            tr.t_with("reason-address-near", &[("percent", (*p).into())])
        }
    }
}

fn sex_words(tr: &Tr, s: Sex) -> String {
    match tr.lang() {
        Lang::Ja => s.label_ja().to_owned(),
        Lang::En => tr.t(match s {
            Sex::Male => "sex-male",
            Sex::Female => "sex-female",
            Sex::Unspecified => "sex-unspecified",
        }),
    }
}

/// A date and time (JST) for a wall-clock time in milliseconds.
fn when(ms: kazashi_domain::Millis) -> String {
    kazashi_domain::time::jst_text(ms)
}

/// One record's identifying fields as written (owned).
struct Fields {
    name: String,
    kana: Option<String>,
    birth: Option<CivilDate>,
    sex: Sex,
    address: Option<String>,
}

fn fields<C: Clock>(node: &Node<C>, p: &PersonRef) -> Option<Fields> {
    match p {
        PersonRef::Roster(id) => node.station().roster().get(id).map(|e| Fields {
            name: e.name.as_str().to_owned(),
            kana: Some(e.kana.as_str().to_owned()),
            birth: Some(e.birth_date),
            sex: e.sex,
            address: Some(e.address.as_str().to_owned()),
        }),
        PersonRef::WalkIn { .. } => node.state().walk_in(p, None).map(walk_in_fields),
    }
}

fn walk_in_fields(w: &WalkInPerson) -> Fields {
    Fields {
        name: w.name.as_str().to_owned(),
        kana: w.kana.as_ref().map(|k| k.as_str().to_owned()),
        birth: w.birth_date,
        sex: w.sex,
        address: w.address.as_ref().map(|a| a.as_str().to_owned()),
    }
}

impl Fields {
    fn record(&self) -> Record<'_> {
        Record {
            name: &self.name,
            kana: self.kana.as_deref(),
            birth: self.birth,
            birth_exact: true,
            sex: self.sex,
            address: self.address.as_deref(),
        }
    }
}

/// The sites where `p` is registered now (present or on leave), with when the stay began.
fn registered_at<C: Clock>(node: &Node<C>, p: &PersonRef) -> Vec<(SiteId, kazashi_domain::Millis)> {
    node.state()
        .stays(p, None)
        .into_iter()
        .filter(|(_, s)| s.status.is_registered())
        .map(|(site, s)| (site, s.checked_in.unwrap_or(s.since).wall_ms))
        .collect()
}

/// Whether the alert is a pair of records a manager can link or mark distinct.
pub fn is_pair(a: &Alert) -> bool {
    matches!(
        a.kind,
        AlertKind::LikelyDuplicate | AlertKind::PossibleDuplicate
    ) && a.subjects.len() == 2
}

/// The heading words for the kinds `network::alerts` does not name.
pub fn kind_words(tr: &Tr, k: AlertKind) -> Option<String> {
    match k {
        AlertKind::PossibleDuplicate => Some(tr.t("resolve-possible-duplicate")),
        AlertKind::AssertionConflict => Some(tr.t("resolve-assertion-conflict")),
        _ => None,
    }
}

/// What a manager decided about a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Link,
    Distinct,
}

/// A duplicate alert's two records side by side, the score and each reason, and (for a
/// manager) the buttons that settle it. Returns the decision clicked, if any.
pub fn pair<C: Clock>(ui: &mut egui::Ui, cx: &Cx<'_, C>, a: &Alert) -> Option<Decision> {
    if let Some(s) = a.score {
        ui.label(
            RichText::new(cx.tr.t_with("resolve-score", &[("score", s.into())]))
                .strong()
                .size(18.0),
        );
    }
    for r in &a.reasons {
        ui.label(format!("・{}", reason_words(cx.tr, r)));
    }
    let rows = [
        "resolve-field-name",
        "resolve-field-kana",
        "resolve-field-birth",
        "resolve-field-sex",
        "resolve-field-address",
        "resolve-field-site",
    ];
    let none = cx.tr.t("resolve-none");
    // Either record protected: neither site is shown (the other is likely the same person).
    let withheld = a
        .subjects
        .iter()
        .any(|p| cx.node.state().dv_withheld(p, cx.node.station().roster()));
    let column = |p: &PersonRef| -> Vec<String> {
        let f = fields(cx.node, p);
        let sites = if withheld {
            cx.tr.t("resolve-withheld")
        } else {
            let v: Vec<String> = registered_at(cx.node, p)
                .into_iter()
                .map(|(s, at)| format!("{} {}", cx.site_name(&s), when(at)))
                .collect();
            if v.is_empty() {
                cx.tr.t("resolve-not-registered")
            } else {
                v.join(" / ")
            }
        };
        match f {
            Some(f) => vec![
                f.name,
                f.kana.unwrap_or_else(|| none.clone()),
                f.birth
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| none.clone()),
                sex_words(cx.tr, f.sex),
                f.address.unwrap_or_else(|| none.clone()),
                sites,
            ],
            None => vec![cx.tr.t("unknown-person")],
        }
    };
    let (left, right) = match a.subjects.as_slice() {
        [x, y] => (column(x), column(y)),
        _ => return None,
    };
    egui::Grid::new(("resolve-pair", a.id.0))
        .striped(true)
        .num_columns(3)
        .show(ui, |ui| {
            for (i, row) in rows.iter().enumerate() {
                ui.label(RichText::new(cx.tr.t(row)).strong());
                ui.label(left.get(i).map(String::as_str).unwrap_or(""));
                ui.label(right.get(i).map(String::as_str).unwrap_or(""));
                ui.end_row();
            }
        });
    if !cx.login.role.manages() {
        return None;
    }
    let mut out = None;
    ui.horizontal(|ui| {
        if ui.button(cx.tr.t("resolve-link")).clicked() {
            out = Some(Decision::Link);
        }
        if ui.button(cx.tr.t("resolve-distinct")).clicked() {
            out = Some(Decision::Distinct);
        }
    });
    out
}

/// Write a manager's decision about an alert's pair as a signed event.
pub fn decide<C: Clock>(cx: &mut Cx<'_, C>, a: &Alert, d: Decision) {
    let [x, y] = a.subjects.as_slice() else {
        return;
    };
    let (a, b) = (*x, *y);
    let (body, done) = match d {
        Decision::Link => (EventBody::SameAs { a, b, note: None }, "resolve-linked"),
        Decision::Distinct => (
            EventBody::NotSame { a, b, note: None },
            "resolve-marked-distinct",
        ),
    };
    if cx.record(body).is_some() {
        cx.say(cx.tr.t(done), true);
    }
}

/// The standing same-person / different-people decisions, each with its retraction (managers
/// only, with a reason).
pub fn links<C: Clock>(ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
    let standing = cx.node.state().assertions(None);
    if standing.is_empty() {
        return;
    }
    ui.separator();
    ui.heading(
        cx.tr
            .t_with("resolve-links-title", &[("count", standing.len().into())]),
    );
    let manages = cx.login.role.manages();
    let reason_id = ui.scope_id().with("resolve-retract-reason");
    let mut reason: String = ui.data_mut(|d| d.get_temp(reason_id).unwrap_or_default());
    if manages {
        ui.horizontal(|ui| {
            let label = ui.label(cx.tr.t("resolve-retract-reason"));
            ui.text_edit_singleline(&mut reason).labelled_by(label.id);
        });
    }
    let mut retract = None;
    for s in &standing {
        ui.horizontal(|ui| {
            let what = cx.tr.t(if s.same {
                "resolve-same"
            } else {
                "resolve-not-same"
            });
            ui.label(format!(
                "{what}: {} ＝ {}",
                cx.person_label(&s.a),
                cx.person_label(&s.b)
            ));
            if manages && ui.button(cx.tr.t("resolve-retract")).clicked() {
                retract = Some(s.event);
            }
        });
    }
    if let Some(target) = retract {
        match Note::new(reason.trim()) {
            Ok(note) => {
                if cx
                    .record(EventBody::RetractAssertion {
                        target,
                        reason: note,
                    })
                    .is_some()
                {
                    reason.clear();
                    cx.say(cx.tr.t("resolve-retracted"), true);
                }
            }
            Err(_) => cx.say(cx.tr.t("resolve-retract-reason-needed"), false),
        }
    }
    ui.data_mut(|d| d.insert_temp(reason_id, reason));
}

/// The persons likely to be the same human as `p` registered at a site other than `here`:
/// linked records and open likely-duplicate alerts naming `p`. Each as a warning line;
/// protected records are left out.
pub fn likely_elsewhere_of<C: Clock>(
    cx: &mut Cx<'_, C>,
    p: &PersonRef,
    here: &SiteId,
) -> Vec<String> {
    let mut others: Vec<PersonRef> = cx
        .node
        .state()
        .clusters(None)
        .members(p)
        .into_iter()
        .filter(|q| q != p)
        .collect();
    // The detector's first build is waited for a moment (milliseconds on a small log); if it
    // is not back by then (minutes against a ten-million-person roster on disk), only the
    // same-as links say so.
    for a in cx
        .node
        .alerts_within(std::time::Duration::from_secs(2))
        .unwrap_or_default()
    {
        if a.kind == AlertKind::LikelyDuplicate && a.subjects.contains(p) {
            others.extend(a.subjects.iter().filter(|q| *q != p));
        }
    }
    others.sort_unstable();
    others.dedup();
    warnings(cx, p, &others, here)
}

/// The persons a walk-in about to be registered likely is, registered at a site other than
/// `here`: roster persons and earlier walk-ins scoring at least [`LIKELY`].
pub fn likely_elsewhere_new<C: Clock>(
    cx: &mut Cx<'_, C>,
    w: &WalkInPerson,
    here: &SiteId,
) -> Vec<String> {
    let me = walk_in_fields(w);
    let mut others: Vec<PersonRef> = cx
        .node
        .matcher()
        .find(
            &me.name,
            me.kana.as_deref(),
            me.birth,
            me.sex,
            me.address.as_deref(),
        )
        .into_iter()
        .filter(|c| c.score >= LIKELY)
        .map(|c| PersonRef::Roster(c.person))
        .collect();
    for (q, other) in cx.node.state().walk_ins(None) {
        let f = walk_in_fields(other);
        if compare(&me.record(), &f.record()).is_some_and(|(s, _)| s >= LIKELY) {
            others.push(q);
        }
    }
    others.sort_unstable();
    others.dedup();
    let mut out = Vec::new();
    for q in &others {
        if cx.node.state().dv_withheld(q, cx.node.station().roster()) {
            continue;
        }
        for (site, _) in registered_at(cx.node, q) {
            if site != *here {
                out.push(cx.tr.t_with(
                    "resolve-likely-elsewhere",
                    &[
                        ("who", me.name.clone().into()),
                        ("site", cx.site_name(&site).into()),
                    ],
                ));
            }
        }
    }
    out.dedup();
    out
}

fn warnings<C: Clock>(
    cx: &Cx<'_, C>,
    p: &PersonRef,
    others: &[PersonRef],
    here: &SiteId,
) -> Vec<String> {
    let roster = cx.node.station().roster();
    if cx.node.state().dv_withheld(p, roster) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for q in others {
        if cx.node.state().dv_withheld(q, roster) {
            continue;
        }
        for (site, _) in registered_at(cx.node, q) {
            if site != *here {
                out.push(cx.tr.t_with(
                    "resolve-likely-elsewhere",
                    &[
                        ("who", cx.person_label(p).into()),
                        ("site", cx.site_name(&site).into()),
                    ],
                ));
            }
        }
    }
    out.dedup();
    out
}
