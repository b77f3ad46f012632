//! The station window (egui): views over `kazashi_node`, nothing else.
//!
//! [`Station`] is one laptop's window: a lock screen until a staff member unlocks it (PIN or
//! their own card), then a bar of views one click (or one function key) from reception:
//! reception, the present list, the walk-in form, the status report (shelters) or the hourly
//! reconciliation (polling stations), alerts, and peers/sync. It is handed its parts: the node
//! (alone or in the mesh) and the card readers ([`cards::Readers`]: the PC/SC reader service
//! in the product, virtual cards in the lab's demo). Staff, site and roster come from the store.

pub mod audit_view;
pub mod card_walkin;
pub mod cards;
pub mod closing;
pub mod command;
pub mod enrol;
pub mod fonts;
pub mod network;
pub mod notes;
pub mod oath;
pub mod polling;
pub mod present;
pub mod purged;
pub mod reception;
pub mod replaced;
pub mod report;
pub mod resolve;
pub mod roster_import;
pub mod system;
pub mod system_view;
pub mod token;
pub mod tr;
pub mod unconfirmed_view;
pub mod unlock;
pub mod unlock_roster;
pub mod usb;
pub mod walkin;

use crate::lang::Lang;
use cards::{Card, Readers};
use eframe::egui::{self, RichText};
use kazashi_domain::Millis;
use kazashi_domain::audit::{UnlockFailure, UnlockMethod};
use kazashi_domain::event::{Event, EventBody};
use kazashi_domain::ids::{OperatorId, PersonRef, SiteId};
use kazashi_domain::time::JST_OFFSET_MS;
use kazashi_node::card::CardSession;
use kazashi_node::mesh::{Link, Mesh, MeshStatus, PeerAddr};
use kazashi_node::node::WriteBlock;
use kazashi_node::staff::{LoginError, Role};
use kazashi_node::{Clock, Node};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tr::Tr;

/// Lock the window after this long without a key press or click.
pub const AUTO_LOCK: Duration = Duration::from_secs(5 * 60);
/// How long the notice of a roster switch stays on screen.
const ROSTER_NOTICE: Duration = Duration::from_secs(120);
/// Wrong staff PINs in a row before the PIN field rests.
const PIN_FAILURES: u32 = 5;
/// How long it rests.
const PIN_REST: Duration = Duration::from_secs(60);

pub const RED: egui::Color32 = egui::Color32::from_rgb(170, 20, 20);
pub const GREEN: egui::Color32 = egui::Color32::from_rgb(0, 110, 40);
pub const AMBER: egui::Color32 = egui::Color32::from_rgb(150, 90, 0);

/// Where the node lives: alone (tests; a laptop synced only by USB), or inside the mesh.
pub enum Host<C: Clock + Send + 'static> {
    Alone(Box<Node<C>>),
    Mesh {
        mesh: Arc<Mesh<C>>,
        rt: Arc<tokio::runtime::Runtime>,
    },
}

impl<C: Clock + Send + 'static> Host<C> {
    /// Work on the node; in the mesh, peers hear of anything written.
    pub fn with<R>(&mut self, f: impl FnOnce(&mut Node<C>) -> R) -> R {
        match self {
            Host::Alone(n) => f(n),
            Host::Mesh { mesh, rt } => {
                let _in_rt = rt.enter();
                let (r, grew) = mesh.with_node(|n| {
                    let before = n.state().len();
                    let r = f(n);
                    (r, n.state().len() != before)
                });
                if grew {
                    mesh.announce();
                }
                r
            }
        }
    }

    pub fn status(&self) -> Option<MeshStatus> {
        match self {
            Host::Alone(_) => None,
            Host::Mesh { mesh, rt } => {
                let _in_rt = rt.enter();
                Some(mesh.status())
            }
        }
    }

    fn connect(&self, to: PeerAddr) -> bool {
        match self {
            Host::Alone(_) => false,
            Host::Mesh { mesh, rt } => {
                let _in_rt = rt.enter();
                mesh.connect(to);
                true
            }
        }
    }
}

/// Who the reception found, and how.
pub struct Found {
    pub person: kazashi_domain::ids::PersonId,
    pub method: kazashi_domain::event::IdMethod,
    pub bind: Option<(kazashi_domain::ids::CardKey, kazashi_domain::ids::PersonId)>,
}

/// Who unlocked the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub operator: OperatorId,
    pub role: Role,
}

/// What the last action did, for the status line.
pub struct Said {
    pub text: String,
    pub ok: bool,
}

/// What a view gets each frame: the node, the strings, who is working, the status line.
pub struct Cx<'a, C: Clock> {
    pub node: &'a mut Node<C>,
    pub tr: &'a Tr,
    pub login: &'a Login,
    pub said: &'a mut Option<Said>,
}

impl<C: Clock> Cx<'_, C> {
    pub fn say(&mut self, text: impl Into<String>, ok: bool) {
        *self.said = Some(Said {
            text: text.into(),
            ok,
        });
    }

    /// Write an event as the logged-in operator; a refusal goes to the status line.
    pub fn record(&mut self, body: EventBody) -> Option<Event> {
        match self.node.record(self.login.operator, body) {
            Ok(e) => Some(e),
            Err(e) => {
                let text = self.tr.t_with("refused", &[("why", e.to_string().into())]);
                self.say(text, false);
                None
            }
        }
    }

    pub fn now(&self) -> Millis {
        self.node.station().clock().now_ms()
    }

    pub fn site(&self) -> SiteId {
        self.node.station().site()
    }

    /// A site's name from the deployment.
    pub fn site_name(&self, site: &SiteId) -> String {
        self.node
            .station()
            .deployment()
            .site(site)
            .map(|s| s.name.as_str().to_owned())
            .unwrap_or_else(|| site.to_string())
    }

    /// 「山田 太郎（やまだ たろう） 1980-02-29」 for a roster person or a walk-in.
    pub fn person_label(&self, p: &PersonRef) -> String {
        match p {
            PersonRef::Roster(id) => match self.node.station().roster().get(id) {
                Some(e) => format!(
                    "{}（{}） {}",
                    e.name.as_str(),
                    e.kana.as_str(),
                    e.birth_date
                ),
                None => id.to_string(),
            },
            PersonRef::WalkIn { .. } => match self.node.state().walk_in(p, None) {
                Some(w) => {
                    let kana = w.kana.as_ref().map(|k| format!("（{}）", k.as_str()));
                    let born = w.birth_date.map(|d| format!(" {d}"));
                    format!(
                        "{}{}{} [{}]",
                        w.name.as_str(),
                        kana.unwrap_or_default(),
                        born.unwrap_or_default(),
                        self.tr.t("walk-in-mark")
                    )
                }
                None => self.tr.t("unknown-person"),
            },
        }
    }
}

/// The window's look: the Japanese font, a light theme for bright halls, large text and
/// large targets (an old laptop's touchpad, gloves, tired hands).
pub fn setup(ctx: &egui::Context) -> Result<(), String> {
    fonts::install(ctx)?;
    ctx.set_theme(egui::ThemePreference::Light);
    ctx.all_styles_mut(|s| {
        use egui::{FontId, TextStyle};
        s.text_styles
            .insert(TextStyle::Body, FontId::proportional(17.0));
        s.text_styles
            .insert(TextStyle::Button, FontId::proportional(17.0));
        s.text_styles
            .insert(TextStyle::Heading, FontId::proportional(24.0));
        s.text_styles
            .insert(TextStyle::Small, FontId::proportional(14.0));
        s.spacing.button_padding = egui::vec2(10.0, 6.0);
        s.spacing.interact_size.y = 30.0;
        s.spacing.item_spacing = egui::vec2(10.0, 8.0);
    });
    Ok(())
}

/// "14:05" in Japan time.
pub fn hhmm(ms: Millis) -> String {
    let minutes = (ms as i64 + JST_OFFSET_MS).div_euclid(60_000);
    let m = minutes.rem_euclid(24 * 60);
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// "3分前" / "3 min ago" for a span in milliseconds.
pub fn ago(tr: &Tr, ms: u64) -> String {
    let s = ms / 1000;
    if s < 60 {
        tr.t_with("ago-seconds", &[("n", s.into())])
    } else if s < 3600 {
        tr.t_with("ago-minutes", &[("n", (s / 60).into())])
    } else {
        tr.t_with("ago-hours", &[("n", (s / 3600).into())])
    }
}

/// A text field with a label that names it (for screen readers and the tests alike).
pub fn labelled(ui: &mut egui::Ui, label: String, edit: egui::TextEdit<'_>) -> egui::Response {
    let l = ui.label(label);
    ui.add(edit).labelled_by(l.id)
}

/// A large button for the main actions.
pub fn big(ui: &mut egui::Ui, text: String) -> egui::Response {
    ui.add(egui::Button::new(RichText::new(text).size(22.0)).min_size(egui::vec2(160.0, 44.0)))
}

/// The views of the bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Reception,
    Present,
    WalkIn,
    Report,
    Reconcile,
    Alerts,
    Network,
    Command,
    Audit,
}

impl View {
    fn label_id(self) -> &'static str {
        match self {
            View::Reception => "view-reception",
            View::Present => "view-present",
            View::WalkIn => "view-walkin",
            View::Report => "view-report",
            View::Reconcile => "view-reconcile",
            View::Alerts => "view-alerts",
            View::Network => "view-network",
            View::Command => "view-command",
            View::Audit => "view-audit",
        }
    }
}

/// The lock screen's fields.
#[derive(Default)]
struct LockForm {
    staff: String,
    /// The staff PIN as typed: wiped when taken or dropped.
    pin: zeroize::Zeroizing<String>,
    error: Option<String>,
    failures: u32,
    resting_until: Option<Instant>,
    /// A staff card on the reader, waiting for its PIN and signature.
    card: Option<Box<CardProof>>,
}

/// A card that passed the chain check and names a staff member, waiting for its JPKI PIN.
pub struct CardProof {
    pub session: CardSession<Card>,
    pub presented: kazashi_node::possession::Presented,
    pub operator: OperatorId,
    pub role: Role,
    /// The PIN as typed: wiped when the proof is done with.
    pub typed: zeroize::Zeroizing<String>,
    pub error: Option<String>,
}

/// A refused card in the window's language.
pub fn refusal_words(tr: &Tr, r: &kazashi_node::possession::Refusal) -> String {
    match tr.lang() {
        crate::lang::Lang::Ja => r.message_ja(),
        crate::lang::Lang::En => r.message_en(),
    }
}

/// A refused staff PIN in the window's language (who exists is not said).
pub fn login_words(tr: &Tr, e: &LoginError) -> String {
    match e {
        LoginError::Unknown | LoginError::WrongPin | LoginError::NoPin | LoginError::BadPin => {
            tr.t("login-unknown")
        }
        LoginError::UnknownCard => tr.t("login-card-unknown"),
        LoginError::Locked { until } => {
            tr.t_with("login-locked", &[("until", hhmm(*until).into())])
        }
        LoginError::Damaged | LoginError::Store(_) => {
            tr.t_with("refused", &[("why", e.to_string().into())])
        }
    }
}

/// The card-PIN form of a [`CardProof`]: the prompt with the tries left, the offline
/// caveat, the PIN field. Returns (submit, cancel).
pub fn card_proof_form(ui: &mut egui::Ui, tr: &Tr, p: &mut CardProof) -> (bool, bool) {
    use kazashi_node::card::PinFor;
    ui.label(RichText::new(tr.t("card-proof-title")).size(20.0).strong());
    ui.label(tr.t_with(
        "card-proof-who",
        &[("who", p.operator.as_str().to_owned().into())],
    ));
    let prompt = match tr.lang() {
        crate::lang::Lang::Ja => kazashi_node::card::pin_prompt_ja(PinFor::Jpki, p.presented.tries),
        crate::lang::Lang::En => kazashi_node::card::pin_prompt_en(PinFor::Jpki, p.presented.tries),
    };
    ui.label(prompt);
    ui.label(RichText::new(tr.t("card-proof-note")).small());
    ui.label(
        RichText::new(tr.lang().t(
            kazashi_node::card::REVOCATION_NOTE_JA,
            kazashi_node::card::REVOCATION_NOTE_EN,
        ))
        .color(AMBER),
    );
    let r = labelled(
        ui,
        tr.t("card-proof-label"),
        egui::TextEdit::singleline(&mut *p.typed)
            .password(true)
            .desired_width(120.0),
    );
    let mut submit = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    let mut cancel = false;
    ui.horizontal(|ui| {
        submit |= ui.button(tr.t("card-proof-ok")).clicked();
        cancel = ui.button(tr.t("cancel")).clicked();
    });
    if let Some(e) = &p.error {
        ui.label(RichText::new(e.as_str()).color(RED));
    }
    (submit, cancel)
}

/// Check the PIN typed into `p` on its card. `Ok(operator, role)` once the card signed a
/// fresh challenge with its certificate's key; `Err(Some(p))` to ask again (a wrong PIN with
/// tries left to spare), `Err(None)` when the card is done with (the reason in `said`).
pub fn prove<C: Clock>(
    node: &mut Node<C>,
    tr: &Tr,
    mut p: Box<CardProof>,
    said: &mut Option<String>,
    method: UnlockMethod,
) -> Result<(OperatorId, Role), Option<Box<CardProof>>> {
    use kazashi_node::card::{CardError, Pin};
    use kazashi_node::possession::Refusal;
    let typed = std::mem::take(&mut p.typed);
    let pin = match Pin::new(&typed) {
        Ok(pin) => pin,
        Err(e) => {
            p.error = Some(tr.lang().card_error(&e));
            return Err(Some(p));
        }
    };
    drop(typed);
    let proved = node.prove_card(&mut p.session, &p.presented, &pin);
    // Every attempt is on record (issue 24); a success whose record fails is refused.
    let outcome = match &proved {
        Ok(card) if *card == p.presented.tap.card => Ok(()),
        Ok(_) => Err(UnlockFailure::NotItsKey),
        Err(r) => Err(kazashi_node::audit::card_failure(r)),
    };
    let recorded = node.audit_unlock(Some(&p.operator), method, outcome);
    match proved {
        Ok(card) if card == p.presented.tap.card => match recorded {
            Ok(_) => Ok((p.operator, p.role)),
            Err(e) => {
                *said = Some(tr.t_with("audit-not-recorded", &[("why", e.to_string().into())]));
                Err(None)
            }
        },
        Ok(_) => {
            *said = Some(refusal_words(tr, &Refusal::NotItsKey));
            Err(None)
        }
        Err(Refusal::Card(e @ CardError::WrongPin { left, .. })) if left >= 2 => {
            p.presented.tries = left;
            p.error = Some(tr.lang().card_error(&e));
            Err(Some(p))
        }
        Err(Refusal::Card(CardError::WrongPin { .. })) => {
            *said = Some(refusal_words(tr, &Refusal::LastTry));
            Err(None)
        }
        Err(r) => {
            *said = Some(refusal_words(tr, &r));
            Err(None)
        }
    }
}

pub struct Station<C: Clock + Send + 'static> {
    host: Host<C>,
    tr: Tr,
    login: Option<Login>,
    lock: LockForm,
    last_input: Instant,
    auto_lock: Duration,
    view: View,
    pub said: Option<Said>,
    polling_site: bool,
    readers: Box<dyn Readers>,
    /// The readers' last state, to show staff (Japanese, English).
    reader_status: Option<(&'static str, &'static str)>,
    demo_hint: Option<String>,
    pub reception: reception::Desk,
    present: present::List,
    pub walkin: walkin::Form,
    report: report::Form,
    reconcile: polling::Reconcile,
    network: network::Panel,
    command: command::Dashboard,
    audit: audit_view::AuditView,
    mesh_status: Option<(Instant, MeshStatus)>,
    started: Instant,
    /// (state length, header count, open alerts), recomputed when the log grows.
    counts: Option<(kazashi_domain::state::StateVersion, usize, Option<usize>)>,
    /// Whether an update replaced this program on disk (the header says so).
    replaced: replaced::Replaced,
    /// The manifest the window last applied (one adopted at runtime changes the site, its
    /// kind and whether this laptop writes): its digest.
    manifest_digest: [u8; 32],
    /// Why this laptop writes nothing, under the manifest in force (closed, revoked, …).
    write_block: Option<WriteBlock>,
    /// "Switched to the new roster version (…)", shown on every screen for a while after the
    /// mesh switched the station to a newly pinned roster.
    roster_notice: Option<(Instant, String)>,
    /// What must live as long as the window (the demo's store folder).
    keep: Vec<Box<dyn std::any::Any>>,
}

impl<C: Clock + Send + 'static> Station<C> {
    pub fn new(mut host: Host<C>, lang: Lang, readers: Box<dyn Readers>) -> Result<Self, String> {
        let (polling_site, write_block) = host.with(manifest_facts);
        let manifest_digest = host.with(|n| n.membership().digest());
        Ok(Station {
            host,
            tr: Tr::new(lang)?,
            login: None,
            lock: LockForm::default(),
            last_input: Instant::now(),
            auto_lock: AUTO_LOCK,
            view: View::Reception,
            said: None,
            polling_site,
            readers,
            reader_status: None,
            demo_hint: None,
            reception: reception::Desk::default(),
            present: present::List::default(),
            walkin: walkin::Form::default(),
            report: report::Form::default(),
            reconcile: polling::Reconcile::default(),
            network: network::Panel::default(),
            command: command::Dashboard::default(),
            audit: audit_view::AuditView::default(),
            mesh_status: None,
            started: Instant::now(),
            counts: None,
            replaced: replaced::Replaced::default(),
            manifest_digest,
            write_block,
            roster_notice: None,
            keep: Vec::new(),
        })
    }

    /// Test hook: the command view's pictures made off the window's thread (see
    /// [`command::Dashboard::past_pictures`]).
    pub fn command_past_pictures(&mut self) -> &mut command::as_of_index::PastPictures {
        self.command.past_pictures()
    }

    /// Follow a manifest adopted while the window runs (from a peer or a bundle): the site's
    /// kind, and whether this laptop still writes. Cheap; called every frame.
    fn follow_manifest(&mut self) {
        // Only a new manifest changes any of it; a same-version conflict won by the other
        // manifest is a new manifest too, so compare the digest.
        let digest = self.host.with(|n| n.membership().digest());
        if digest == self.manifest_digest {
            return;
        }
        self.manifest_digest = digest;
        let (polling, block) = self.host.with(manifest_facts);
        // The site (and so the header's count) may have moved with it.
        self.counts = None;
        if polling != self.polling_site {
            self.polling_site = polling;
            self.view = View::Reception;
        }
        self.write_block = block;
    }

    /// Why this laptop writes nothing, if it does not (the banner says so).
    pub fn write_block(&self) -> Option<WriteBlock> {
        self.write_block
    }

    /// The red banner's words for a stopped laptop.
    fn block_words(&self, b: WriteBlock) -> String {
        match b {
            WriteBlock::Closed { .. } => self.tr.t("operation-closed"),
            WriteBlock::Revoked { .. } => self.tr.t("laptop-revoked"),
            WriteBlock::NotListed => self.tr.t("laptop-not-listed"),
            WriteBlock::Relay => self.tr.t("laptop-relay"),
        }
    }

    /// The demo's hint on the lock screen (staff names and PINs).
    pub fn set_demo_hint(&mut self, hint: String) {
        self.demo_hint = Some(hint);
    }

    /// Lock after this long without input (default [`AUTO_LOCK`]).
    pub fn set_auto_lock(&mut self, after: Duration) {
        self.auto_lock = after;
    }

    /// Show view `v` and keep the status line (the lab's tour walks the window so).
    pub fn show_view(&mut self, v: View) {
        self.view = v;
    }

    /// Show the command view with its 安否未確認 section open (the lab's tour).
    pub fn show_unconfirmed(&mut self) {
        self.command.open_unconfirmed();
        self.view = View::Command;
    }

    /// Keep `x` alive as long as the window.
    pub fn keep(&mut self, x: Box<dyn std::any::Any>) {
        self.keep.push(x);
    }

    pub fn host(&mut self) -> &mut Host<C> {
        &mut self.host
    }

    pub fn login(&self) -> Option<&Login> {
        self.login.as_ref()
    }

    pub fn lock_now(&mut self) {
        self.login = None;
        self.lock = LockForm::default();
        self.reception = reception::Desk::default();
        self.walkin = walkin::Form::default();
        self.said = None;
    }

    fn views(&self) -> Vec<View> {
        let mut v = vec![View::Reception];
        if self.polling_site {
            v.push(View::Reconcile);
        } else {
            v.extend([View::Present, View::WalkIn, View::Report]);
        }
        v.extend([View::Alerts, View::Network]);
        if self
            .login
            .as_ref()
            .is_some_and(|l| l.role.manages() || l.role == kazashi_node::staff::Role::Command)
        {
            v.push(View::Command);
        }
        // The audit log (issue 24): managers only.
        if self.login.as_ref().is_some_and(|l| l.role.manages()) {
            v.push(View::Audit);
        }
        v
    }

    /// Persons present at this site now (shelters).
    pub fn present_count(&mut self) -> usize {
        self.host.with(|n| present::present_count(n))
    }

    /// The whole window.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let active = ui.input(|i| {
            i.events.iter().any(|e| {
                matches!(
                    e,
                    egui::Event::Key { .. }
                        | egui::Event::Text(_)
                        | egui::Event::PointerButton { .. }
                )
            })
        });
        if active {
            self.last_input = Instant::now();
        }
        if self.login.is_some() && self.last_input.elapsed() >= self.auto_lock {
            self.lock_now();
            self.lock.error = Some(self.tr.t("auto-locked"));
        }
        // Repaint now and then: peers write while nobody touches the window.
        ui.ctx().request_repaint_after(Duration::from_secs(1));
        self.refresh_status();
        self.follow_manifest();

        egui::Panel::top("header").show(ui, |ui| self.header(ui));
        if let Some(b) = self.write_block {
            let text = self.block_words(b);
            egui::Panel::top("stopped").show(ui, |ui| {
                ui.label(RichText::new(text).size(22.0).color(RED).strong());
            });
        }
        if let Some((_, text)) = self
            .roster_notice
            .as_ref()
            .filter(|(at, _)| at.elapsed() < ROSTER_NOTICE)
        {
            let text = text.clone();
            egui::Panel::top("roster-switched").show(ui, |ui| {
                ui.label(RichText::new(text).size(18.0).color(GREEN).strong());
            });
        }
        if let Some(text) = self.stale_banner() {
            egui::Panel::top("stale").show(ui, |ui| {
                ui.label(RichText::new(text).size(18.0).color(AMBER).strong());
            });
        }
        self.poll_readers();
        if !self.readers.panel().is_empty() {
            egui::Panel::right("demo")
                .default_size(250.0)
                .show(ui, |ui| self.demo_panel(ui));
        }
        if self.login.is_none() {
            egui::CentralPanel::default().show(ui, |ui| self.lock_screen(ui));
            return;
        }
        self.keys(ui);
        egui::Panel::top("views").show(ui, |ui| self.view_bar(ui));
        egui::CentralPanel::default().show(ui, |ui| {
            let Some(login) = self.login.clone() else {
                return;
            };
            let Station {
                host,
                tr,
                said,
                view,
                reception,
                present,
                walkin,
                report,
                reconcile,
                network,
                command,
                audit,
                mesh_status,
                polling_site,
                ..
            } = self;
            let status = mesh_status.as_ref().map(|(_, s)| s);
            // A laptop that writes no more (operation closed, revoked) keeps its views for
            // reading, with the check-in controls disabled.
            let writes = self.write_block.is_none();
            let mut connect = None;
            let mut goto = None;
            host.with(|node| {
                let mut cx = Cx {
                    node,
                    tr,
                    login: &login,
                    said,
                };
                match view {
                    View::Reception => {
                        // The voter screen with an approval can be taller than 768 pixels.
                        egui::ScrollArea::vertical()
                            .id_salt("reception-scroll")
                            .auto_shrink([false, true])
                            .show(ui, |ui| {
                                ui.add_enabled_ui(writes, |ui| {
                                    goto = reception.show(ui, &mut cx, *polling_site);
                                });
                                if let Some(t) = reception.tokens.handoff.take() {
                                    walkin.token = Some(t);
                                }
                            });
                    }
                    View::Present => {
                        ui.add_enabled_ui(writes, |ui| present.show(ui, &mut cx));
                    }
                    View::WalkIn => {
                        ui.add_enabled_ui(writes, |ui| {
                            if walkin.show(ui, &mut cx) {
                                goto = Some(View::Present);
                            }
                        });
                    }
                    View::Report => report.show(ui, &mut cx),
                    View::Reconcile => {
                        egui::ScrollArea::vertical()
                            .id_salt("reconcile-scroll")
                            .show(ui, |ui| reconcile.show(ui, &mut cx));
                    }
                    View::Alerts => network::alerts(ui, &mut cx),
                    View::Command => command.show(ui, &mut cx),
                    View::Audit => audit.show(ui, &mut cx),
                    View::Network => {
                        egui::ScrollArea::vertical()
                            .id_salt("network-scroll")
                            .show(ui, |ui| connect = network.show(ui, &mut cx, status));
                    }
                }
                if let Some(s) = cx.said.as_ref() {
                    ui.separator();
                    let color = if s.ok { GREEN } else { RED };
                    ui.label(RichText::new(&s.text).size(20.0).color(color));
                }
            });
            if let Some(v) = goto {
                *view = v;
            }
            if let Some(addr) = connect {
                let text = if host.connect(addr.clone()) {
                    tr.t_with("peer-dialling", &[("addr", addr.to_string().into())])
                } else {
                    tr.t("peer-no-mesh")
                };
                *said = Some(Said { text, ok: true });
                *mesh_status = None;
            }
        });
    }

    fn refresh_status(&mut self) {
        let fresh = self
            .mesh_status
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < Duration::from_secs(1));
        if !fresh && let Some(s) = self.host.status() {
            // The mesh switched the station to a newly pinned roster: say so (the header's
            // roster prefix follows from the node).
            let before = self.mesh_status.as_ref().map(|(_, o)| o.roster.switches);
            if before.is_some_and(|b| s.roster.switches > b) {
                let text = self.tr.t_with(
                    "roster-switched",
                    &[("roster", s.roster.in_use.clone().into())],
                );
                self.roster_notice = Some((Instant::now(), text));
                // The roster-derived counts and views start again from the new roster.
                self.counts = None;
            }
            self.mesh_status = Some((Instant::now(), s));
        }
    }

    /// "最終同期 4分前" when no peer is connected (after a grace period at start).
    fn stale_banner(&self) -> Option<String> {
        let (_, s) = self.mesh_status.as_ref()?;
        if s.peers.iter().any(|p| p.link == Link::Connected) {
            return None;
        }
        let heard = s.peers.iter().filter_map(|p| p.last_heard_ms).min();
        match heard {
            Some(ms) => Some(
                self.tr
                    .t_with("stale", &[("ago", ago(&self.tr, ms).into())]),
            ),
            None if self.started.elapsed() > Duration::from_secs(15) => {
                Some(self.tr.t("stale-never"))
            }
            None => None,
        }
    }

    /// The header's count and the open alerts (`None` while the detector's first build runs
    /// off the window's thread), recomputed only when the log has grown or the count was not
    /// known yet.
    fn counts(&mut self) -> (usize, Option<usize>) {
        let polling = self.polling_site;
        let cached = self.counts;
        let (len, count, alerts) = self.host.with(|n| {
            let len = n.state().version();
            match cached {
                Some(c) if c.0 == len && c.2.is_some() => c,
                _ => {
                    let count = if polling {
                        polling::voted_here(n)
                    } else {
                        present::present_count(n)
                    };
                    (len, count, network::open_alerts(n))
                }
            }
        });
        self.counts = Some((len, count, alerts));
        (count, alerts)
    }

    fn header(&mut self, ui: &mut egui::Ui) {
        let polling = self.polling_site;
        let (present, _) = self.counts();
        let (site_name, deployment) = self.host.with(|n| {
            let site = n.station().site();
            let d = n.station().deployment();
            let site_name = d
                .site(&site)
                .map(|s| s.name.as_str().to_owned())
                .unwrap_or_else(|| site.to_string());
            let mut roster = d.roster_hash().to_hex();
            roster.truncate(8);
            let deployment: Vec<(&'static str, fluent_bundle::FluentValue<'static>)> = vec![
                ("name", d.name().as_str().to_owned().into()),
                ("id", d.id().short().into()),
                ("version", n.membership().version().into()),
                ("roster", roster.into()),
            ];
            (site_name, deployment)
        });
        ui.horizontal(|ui| {
            let title = if polling {
                "app-title-polling"
            } else {
                "app-title"
            };
            ui.heading(format!("{} — {site_name}", self.tr.t(title)));
            ui.separator();
            let counter = if polling {
                "voted-count"
            } else {
                "present-count"
            };
            ui.label(
                RichText::new(self.tr.t_with(counter, &[("count", present.into())])).size(20.0),
            );
            // The time now, in JST (a manager sets the clock in the network view).
            let now = self.host.with(|n| n.station().clock().now_ms());
            ui.label(RichText::new(kazashi_domain::time::jst_text(now)).size(18.0));
            if self.replaced.poll(Instant::now()) {
                ui.label(
                    RichText::new(self.tr.t("update-installed"))
                        .color(AMBER)
                        .strong(),
                );
            }
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
                if let Some(login) = &self.login {
                    if ui.button(self.tr.t("lock")).clicked() {
                        self.lock_now();
                        return;
                    }
                    let role = self.tr.t(&format!("role-{}", login.role.code()));
                    ui.label(format!("{} （{role}）", login.operator.as_str()));
                }
                if let Some(reader) = self.reader_status() {
                    ui.separator();
                    ui.label(RichText::new(reader).size(15.0));
                }
                // The deployment, the manifest version in force and the roster pinned, in
                // the room left between the two sides (cut with "…" rather than overlap).
                ui.add(
                    egui::Label::new(
                        RichText::new(self.tr.t_with("header-deployment", &deployment))
                            .size(13.0)
                            .weak(),
                    )
                    .truncate(),
                );
            });
        });
    }

    fn view_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            for (i, v) in self.views().into_iter().enumerate() {
                let text = format!("{} [F{}]", self.tr.t(v.label_id()), i + 1);
                let label = if v == View::Alerts {
                    match self.counts().1 {
                        Some(0) => text,
                        Some(open) => format!("{text} ({open})"),
                        // The detector's first build is under way off this thread.
                        None => {
                            ui.ctx()
                                .request_repaint_after(std::time::Duration::from_millis(500));
                            format!("{text} (…)")
                        }
                    }
                } else {
                    text
                };
                if ui
                    .selectable_label(self.view == v, RichText::new(label).size(18.0))
                    .clicked()
                {
                    self.goto(v);
                }
            }
        });
    }

    /// Show view `v` (what its button does).
    pub fn set_view(&mut self, v: View) {
        self.goto(v);
    }

    fn goto(&mut self, v: View) {
        self.view = v;
        self.said = None;
        if v == View::Report {
            self.report = report::Form::default();
        }
        if v == View::Audit {
            self.audit = audit_view::AuditView::default();
        }
    }

    /// F1…F7 switch views; Escape goes back to the reception prompt; Ctrl+L locks.
    fn keys(&mut self, ui: &mut egui::Ui) {
        const F: [egui::Key; 8] = [
            egui::Key::F1,
            egui::Key::F2,
            egui::Key::F3,
            egui::Key::F4,
            egui::Key::F5,
            egui::Key::F6,
            egui::Key::F7,
            egui::Key::F8,
        ];
        let views = self.views();
        let (pressed, escape, lock) = ui.input_mut(|i| {
            let pressed = F
                .iter()
                .position(|k| i.consume_key(egui::Modifiers::NONE, *k));
            let escape = i.consume_key(egui::Modifiers::NONE, egui::Key::Escape);
            let lock = i.consume_key(egui::Modifiers::COMMAND, egui::Key::L);
            (pressed, escape, lock)
        });
        if let Some(v) = pressed.and_then(|k| views.get(k)) {
            self.goto(*v);
        }
        if escape {
            self.reception = reception::Desk::default();
            self.view = View::Reception;
        }
        if lock {
            self.lock_now();
        }
    }

    fn lock_screen(&mut self, ui: &mut egui::Ui) {
        ui.add_space(24.0);
        ui.label(RichText::new(self.tr.t("lock-title")).size(30.0).strong());
        ui.label(RichText::new(self.tr.t("lock-hint")).size(18.0));
        if let Some(h) = &self.demo_hint {
            ui.label(RichText::new(h.as_str()).italics());
        }
        ui.add_space(12.0);
        let resting = self.lock.resting_until.is_some_and(|t| Instant::now() < t);
        labelled(
            ui,
            self.tr.t("lock-staff"),
            egui::TextEdit::singleline(&mut self.lock.staff).desired_width(240.0),
        );
        let pin_label = ui.label(self.tr.t("lock-pin"));
        let r = ui
            .add_enabled(
                !resting,
                egui::TextEdit::singleline(&mut *self.lock.pin)
                    .password(true)
                    .desired_width(160.0),
            )
            .labelled_by(pin_label.id);
        let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let unlock = ui
            .add_enabled(
                !resting,
                egui::Button::new(RichText::new(self.tr.t("unlock")).size(22.0)),
            )
            .clicked();
        if resting {
            ui.label(RichText::new(self.tr.t("lock-resting")).color(RED));
        }
        if let Some(e) = &self.lock.error {
            ui.label(RichText::new(e.as_str()).size(18.0).color(RED));
        }
        if (unlock || enter) && !resting {
            self.pin_login();
        }
        if let Some(p) = self.lock.card.as_mut() {
            ui.add_space(12.0);
            let (submit, cancel) = egui::Frame::group(ui.style())
                .show(ui, |ui| card_proof_form(ui, &self.tr, p))
                .inner;
            if cancel {
                self.lock.card = None;
            } else if submit {
                self.card_login();
            }
        }
    }

    /// The staff card's PIN was typed: unlock once the card proved it holds its key.
    fn card_login(&mut self) {
        let Some(p) = self.lock.card.take() else {
            return;
        };
        let mut said = None;
        let Station { host, tr, .. } = self;
        let r = host.with(|n| prove(n, tr, p, &mut said, UnlockMethod::StaffCard));
        match r {
            Ok((op, role)) => self.unlock(op, role),
            Err(again) => {
                self.lock.card = again;
                if said.is_some() {
                    self.lock.error = said;
                }
            }
        }
    }

    fn pin_login(&mut self) {
        let pin = std::mem::take(&mut self.lock.pin);
        let Ok(op) = OperatorId::new(self.lock.staff.trim()) else {
            self.lock.error = Some(self.tr.t("login-unknown"));
            return;
        };
        let r = self
            .host
            .with(|n| n.staff_unlock(&op, &pin, UnlockMethod::StaffPin));
        match r {
            Ok(role) => self.unlock(op, role),
            Err(e) => {
                self.lock.failures += 1;
                if self.lock.failures >= PIN_FAILURES {
                    self.lock.failures = 0;
                    self.lock.resting_until = Some(Instant::now() + PIN_REST);
                }
                self.lock.error = Some(self.login_words(&e));
            }
        }
    }

    fn login_words(&self, e: &LoginError) -> String {
        login_words(&self.tr, e)
    }

    pub fn unlock(&mut self, operator: OperatorId, role: Role) {
        self.login = Some(Login { operator, role });
        self.lock = LockForm::default();
        self.last_input = Instant::now();
        self.view = View::Reception;
    }

    /// Run `f` with the view context and the reception desk (None while locked).
    pub fn with_desk<R>(
        &mut self,
        f: impl FnOnce(&mut Cx<'_, C>, &mut reception::Desk, bool) -> R,
    ) -> Option<R> {
        let login = self.login.clone()?;
        let Station {
            host,
            tr,
            said,
            reception,
            polling_site,
            ..
        } = self;
        Some(host.with(|node| {
            let mut cx = Cx {
                node,
                tr,
                login: &login,
                said,
            };
            f(&mut cx, reception, *polling_site)
        }))
    }

    /// A card was placed on the reader: a staff login when locked, a second officer's approval
    /// when one is asked for, otherwise a resident at reception. A staff card unlocks only
    /// after its PIN, when it signs a fresh challenge with its certificate's key (a copied
    /// certificate grants nothing).
    pub fn tap(&mut self, card: Card) {
        self.last_input = Instant::now();
        if self.login.is_none() {
            let Station { host, tr, lock, .. } = self;
            let r = host.with(|n| staff_card(n, tr, card, UnlockMethod::StaffCard));
            match r {
                Ok(p) => {
                    lock.error = None;
                    lock.card = Some(p);
                }
                Err(e) => {
                    lock.card = None;
                    lock.error = Some(e);
                }
            }
            return;
        }
        self.view = View::Reception;
        self.with_desk(|cx, desk, polling| desk.tap(cx, card, polling));
    }

    /// Take what the card readers did: a placed card is tapped, a change is shown.
    fn poll_readers(&mut self) {
        let polled = self.readers.poll();
        if let Some(status) = polled.status {
            self.reader_status = Some(status);
        }
        if let Some(e) = polled.error {
            let text = self.tr.lang().card_error(&e);
            self.said = Some(Said { text, ok: false });
        }
        if let Some(card) = polled.card {
            self.tap(card);
        }
    }

    /// The card of button `i` of the readers' panel (the lab's tour taps its cards so).
    pub fn pick_card(&mut self, i: usize) -> Option<Card> {
        self.readers.pick(i)
    }

    /// The readers' state as staff read it, in the window's language.
    pub fn reader_status(&self) -> Option<&'static str> {
        self.reader_status.map(|(ja, en)| self.tr.lang().t(ja, en))
    }

    fn demo_panel(&mut self, ui: &mut egui::Ui) {
        ui.heading(self.tr.t("demo-cards"));
        ui.label(self.tr.t("demo-pin-hint"));
        let mut tapped = None;
        egui::ScrollArea::vertical().show(ui, |ui| {
            for (i, label) in self.readers.panel().into_iter().enumerate() {
                if ui
                    .button(self.tr.t_with("demo-tap", &[("who", label.into())]))
                    .clicked()
                {
                    tapped = Some(i);
                }
            }
        });
        if let Some(card) = tapped.and_then(|i| self.readers.pick(i)) {
            self.tap(card);
        }
    }
}

/// A card on the reader as a staff card: the chain check against the manifest's card CAs,
/// the staff member it names, its PIN's tries — then it waits for the PIN.
pub fn staff_card<C: Clock>(
    node: &mut Node<C>,
    tr: &Tr,
    card: Card,
    method: UnlockMethod,
) -> Result<Box<CardProof>, String> {
    let mut session = CardSession::new(card);
    // A card refused before its PIN is an unlock failure on record (nobody identified).
    let presented = match node.present_card(&mut session) {
        Ok(p) => p,
        Err(r) => {
            let why = kazashi_node::audit::card_failure(&r);
            let _ = node.audit_unlock(None, method, Err(why));
            return Err(refusal_words(tr, &r));
        }
    };
    let (operator, role) = match node.staff_card_login(&presented.tap.card) {
        Ok(x) => x,
        Err(e) => {
            let why = kazashi_node::audit::login_failure(&e);
            let _ = node.audit_unlock(None, method, Err(why));
            return Err(login_words(tr, &e));
        }
    };
    Ok(Box::new(CardProof {
        session,
        presented,
        operator,
        role,
        typed: zeroize::Zeroizing::default(),
        error: None,
    }))
}

/// (the site is a polling station, why the laptop writes nothing).
fn manifest_facts<C: Clock>(n: &mut Node<C>) -> (bool, Option<WriteBlock>) {
    let site = n.station().site();
    let polling = n
        .station()
        .deployment()
        .site(&site)
        .is_some_and(|s| s.is_polling_station());
    (polling, n.write_block())
}

/// The eframe app for one station.
struct StationApp {
    station: Station<kazashi_node::SystemClock>,
}

impl eframe::App for StationApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.station.show(ui);
    }
}

/// The window's size and title.
fn native_options() -> eframe::NativeOptions {
    eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1366.0, 768.0])
            .with_title("かざし Kazashi"),
        ..Default::default()
    }
}

/// Open the window on `station`; returns when it is closed.
pub fn run_window(station: Station<kazashi_node::SystemClock>) -> Result<(), String> {
    run_app(StationApp { station })
}

/// Open the window as `kazashi` starts it: enrolment or the store's passphrase, then the
/// station (see [`unlock::Start`]); returns when it is closed.
pub fn run_start(start: unlock::Start) -> Result<(), String> {
    run_app(start)
}

/// Open a window of the station's size and look running `app` (the product's station, the
/// lab's demo); returns when it is closed.
pub fn run_app<A: eframe::App + 'static>(app: A) -> Result<(), String> {
    let mut app = Some(app);
    eframe::run_native(
        "kazashi",
        native_options(),
        Box::new(move |cc| {
            setup(&cc.egui_ctx)?;
            let app = app.take().ok_or("the window was created twice")?;
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| format!("cannot open the window: {e}"))
}
