//! Any card or a printed wristband as a token at a shelter's reception (issue 26,
//! requirement 4; `kazashi_node::token`).
//!
//! - A card that is not a My Number Card (it does not answer the JPKI application) is read for
//!   its contactless identifier (the reader's GET DATA); a wristband's QR is scanned (or typed)
//!   into the field on the reception screen. Both go the same way:
//! - bound: the person's household opens at once, without a PIN, with the notice that a token
//!   is not proof of identity (the check-in is recorded as [`IdMethod::Token`]);
//! - not bound: the "カード・リストバンドを登録" screen — find the person in the roster (the token
//!   is bound, then their household opens), or register them as a walk-in (the walk-in form
//!   binds it to the household's representative once registered).
//!
//! A laptop without the deployment's operation key can neither bind nor find tokens; it says
//! so. Wristbands are printed here as an A4 sheet of new codes (`kazashi_node::wristband`),
//! saved in `export/` and sent to the printer when one accepts jobs.

use super::{AMBER, Cx, Found, big, labelled};
use crate::lang::Lang;
use eframe::egui::{self, RichText};
use kazashi_domain::event::IdMethod;
use kazashi_domain::ids::{CardKey, PersonId, PersonRef};
use kazashi_node::Clock;
use kazashi_node::card::CardSession;
use kazashi_node::printer::{Printed, Printer};
use kazashi_node::token::{TokenError, TokenId, TokenKind, TokenTap, read_token};

/// How many wristbands one press prints (one A4 sheet).
pub const SHEET: usize = kazashi_node::wristband::PER_PAGE;

/// A token not yet bound: whom to bind it to.
pub struct TokenScreen {
    tap: TokenTap,
    query: String,
    results: Vec<PersonId>,
}

/// The reception desk's token state: the wristband scan field, and a token handed to the
/// walk-in form.
#[derive(Default)]
pub struct Panel {
    scanned: String,
    /// A token to bind to the next walk-in registered (taken by the window for the form).
    pub handoff: Option<Pending>,
}

/// A token waiting in the walk-in form, bound to the representative once registered.
pub type Pending = (CardKey, TokenKind);

fn words(lang: Lang, e: &TokenError) -> String {
    match lang {
        Lang::Ja => e.message_ja(),
        Lang::En => e.message_en(),
    }
}

/// The words for a token's kind.
pub fn kind_words<C: Clock>(cx: &Cx<'_, C>, k: TokenKind) -> String {
    cx.tr.t(match k {
        TokenKind::Uid => "token-kind-uid",
        TokenKind::Idm => "token-kind-idm",
        TokenKind::Wristband => "token-kind-wristband",
    })
}

/// The notice wherever a token found someone or is being registered.
pub fn notice<C: Clock>(ui: &mut egui::Ui, cx: &Cx<'_, C>) {
    ui.label(
        RichText::new(cx.tr.t("token-not-identity"))
            .color(AMBER)
            .size(20.0)
            .strong(),
    );
}

/// What a token read leads to (the reception desk acts on it).
pub enum Outcome {
    /// Nothing more (a refusal or a walk-in named: said on the status line).
    Said,
    /// The person it is bound to: open their household.
    Found(Found),
    /// Not bound: the screen to register it.
    Register(Box<TokenScreen>),
}

/// A card that is not a My Number Card was placed on the reader at a shelter: its identifier.
pub fn card<C: Clock, T: kazashi_node::card::Transport>(
    cx: &mut Cx<'_, C>,
    mut session: CardSession<T>,
) -> Outcome {
    match read_token(&mut session) {
        Ok(id) => identified(cx, &id),
        Err(e) => {
            cx.say(words(cx.tr.lang(), &e), false);
            Outcome::Said
        }
    }
}

/// A token read (card or wristband): its person, or the screen to register it.
pub fn identified<C: Clock>(cx: &mut Cx<'_, C>, id: &TokenId) -> Outcome {
    let tap = match cx.node.token_tap(id) {
        Ok(t) => t,
        Err(e) => {
            cx.say(words(cx.tr.lang(), &e), false);
            return Outcome::Said;
        }
    };
    match tap.person {
        Some(PersonRef::Roster(p)) => Outcome::Found(Found {
            person: p,
            method: IdMethod::Token,
            bind: None,
        }),
        Some(other) => {
            // A walk-in: named, with the notice (their household is in the present list).
            let text = cx.tr.t_with(
                "token-found",
                &[
                    ("kind", kind_words(cx, tap.kind).into()),
                    ("who", cx.person_label(&other).into()),
                ],
            );
            let notice = cx.tr.t("token-not-identity");
            cx.say(format!("{text}\n{notice}"), true);
            Outcome::Said
        }
        None => Outcome::Register(Box::new(TokenScreen {
            tap,
            query: String::new(),
            results: Vec::new(),
        })),
    }
}

/// The idle reception screen's part: the wristband scan field (Enter reads it) and the
/// button that prints new wristbands. Shelters only.
pub fn idle<C: Clock>(ui: &mut egui::Ui, cx: &mut Cx<'_, C>, panel: &mut Panel) -> Outcome {
    if !cx.node.tokens_available() {
        ui.label(RichText::new(cx.tr.t("token-no-key")).small());
        return Outcome::Said;
    }
    let mut print = false;
    let mut read = None;
    ui.horizontal_wrapped(|ui| {
        let r = labelled(
            ui,
            cx.tr.t("token-scan-label"),
            egui::TextEdit::singleline(&mut panel.scanned)
                .hint_text(cx.tr.t("token-scan-hint"))
                .desired_width(300.0),
        );
        if r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
            read = Some(std::mem::take(&mut panel.scanned));
        }
        print = ui
            .button(cx.tr.t_with("token-print", &[("count", SHEET.into())]))
            .clicked();
    });
    if print {
        let printer = Printer::system(std::env::var("KAZASHI_PRINTER").ok());
        match print_sheet(cx, &printer) {
            Ok(text) => cx.say(text, true),
            Err(e) => cx.say(e, false),
        }
    }
    match read {
        Some(text) => {
            *cx.said = None;
            match TokenId::wristband(&text) {
                Ok(id) => identified(cx, &id),
                Err(e) => {
                    cx.say(words(cx.tr.lang(), &e), false);
                    Outcome::Said
                }
            }
        }
        None => Outcome::Said,
    }
}

/// Make a sheet of new wristbands, save it in `export/`, print it when a printer accepts it:
/// the words for the status line.
pub fn print_sheet<C: Clock>(cx: &mut Cx<'_, C>, printer: &Printer) -> Result<String, String> {
    let (font, ..) = super::fonts::find()?;
    let label = cx.site_name(&cx.site());
    let stamp: String = kazashi_domain::time::jst_text(cx.now())
        .chars()
        .map(|c| if c.is_ascii_digit() { c } else { '-' })
        .collect();
    let sheet =
        kazashi_node::wristband::sheet(&font, &label, SHEET, &stamp).map_err(|e| e.to_string())?;
    let path = super::oath::write_beside_store(cx.node, "export", &sheet.file_name, &sheet.pdf)?;
    let file = path.display().to_string();
    let count = sheet.codes.len();
    Ok(match printer.print(&path, "wristbands") {
        Printed::Sent { queue, .. } => cx.tr.t_with(
            "token-printed",
            &[
                ("count", count.into()),
                ("file", file.into()),
                ("queue", queue.into()),
            ],
        ),
        Printed::SavedOnly { reason } => cx.tr.t_with(
            "token-saved",
            &[
                ("count", count.into()),
                ("file", file.into()),
                ("why", reason.into()),
            ],
        ),
    })
}

/// What the registration screen asks of the desk.
pub enum Step {
    Stay,
    Cancel,
    /// Bound to this roster person: open their household.
    Found(Found),
    /// Register a walk-in, binding this token to them.
    WalkIn(Pending),
}

enum Action {
    Stay,
    Cancel,
    Chosen(PersonId),
    WalkIn,
}

/// The "カード・リストバンドを登録" screen: a person chosen from the roster gets the token bound.
pub fn screen<C: Clock>(ui: &mut egui::Ui, cx: &mut Cx<'_, C>, s: &mut TokenScreen) -> Step {
    let tap = s.tap.clone();
    match show(ui, cx, s) {
        Action::Stay => Step::Stay,
        Action::Cancel => Step::Cancel,
        Action::WalkIn => Step::WalkIn((tap.key, tap.kind)),
        Action::Chosen(p) => {
            let person = PersonRef::Roster(p);
            match cx.node.bind_token(cx.login.operator, tap.key, person) {
                Ok(_) => {
                    let text = cx.tr.t_with(
                        "token-bound",
                        &[
                            ("kind", kind_words(cx, tap.kind).into()),
                            ("who", cx.person_label(&person).into()),
                        ],
                    );
                    cx.say(text, true);
                    Step::Found(Found {
                        person: p,
                        method: IdMethod::Lookup,
                        bind: None,
                    })
                }
                Err(e) => {
                    cx.say(words(cx.tr.lang(), &e), false);
                    Step::Stay
                }
            }
        }
    }
}

fn show<C: Clock>(ui: &mut egui::Ui, cx: &mut Cx<'_, C>, s: &mut TokenScreen) -> Action {
    ui.heading(cx.tr.t("token-title"));
    ui.label(
        RichText::new(cx.tr.t_with(
            "token-unbound",
            &[("kind", kind_words(cx, s.tap.kind).into())],
        ))
        .size(20.0),
    );
    notice(ui, cx);
    let r = labelled(
        ui,
        cx.tr.t("token-search-label"),
        egui::TextEdit::singleline(&mut s.query)
            .hint_text(cx.tr.t("search-hint"))
            .desired_width(480.0),
    );
    if r.changed() {
        s.results = if s.query.trim().is_empty() {
            Vec::new()
        } else {
            cx.node.search(&s.query, 30)
        };
    }
    if !s.query.trim().is_empty() && s.results.is_empty() {
        ui.label(cx.tr.t("search-none"));
    }
    let mut action = Action::Stay;
    ui.horizontal(|ui| {
        if big(ui, cx.tr.t("token-walkin")).clicked() {
            action = Action::WalkIn;
        }
        if ui.button(cx.tr.t("cancel")).clicked() {
            action = Action::Cancel;
        }
    });
    egui::ScrollArea::vertical()
        .id_salt("token-results")
        .show(ui, |ui| {
            for p in &s.results {
                let label = cx.person_label(&PersonRef::Roster(*p));
                if ui.button(RichText::new(label).size(18.0)).clicked() {
                    action = Action::Chosen(*p);
                }
            }
        });
    action
}

/// The walk-in form's part: say that the token read will be bound.
pub fn walkin_banner<C: Clock>(ui: &mut egui::Ui, cx: &Cx<'_, C>, pending: &Pending) {
    ui.label(
        RichText::new(cx.tr.t_with(
            "token-walkin-pending",
            &[("kind", kind_words(cx, pending.1).into())],
        ))
        .color(AMBER)
        .size(18.0),
    );
}

/// After a walk-in registration: bind the token to the representative. The words to add to
/// the status line, and whether it was bound.
pub fn bind_walk_in<C: Clock>(
    cx: &mut Cx<'_, C>,
    pending: Pending,
    representative: PersonRef,
) -> (String, bool) {
    match cx
        .node
        .bind_token(cx.login.operator, pending.0, representative)
    {
        Ok(_) => (
            cx.tr.t_with(
                "token-walkin-bound",
                &[("kind", kind_words(cx, pending.1).into())],
            ),
            true,
        ),
        Err(e) => (words(cx.tr.lang(), &e), false),
    }
}
