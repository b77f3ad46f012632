//! The enrolment screen: a fresh laptop's side of enrolment in the window, the same steps as
//! `kazashi enrol` (`kazashi_node::enrolment`).
//!
//! 1. A label for the laptop ("第一小学校 受付1") and the store's passphrase, typed twice
//!    (masked, at least 8 characters).
//! 2. The device key and the store are made off the window's thread ([`enrolment::request`]:
//!    the operating system's random source, Argon2id), then the request is shown: the device
//!    id, the fingerprint in groups of four to read out, and a QR code of the device id and the
//!    fingerprint ([`qr_payload`]).
//! 3. 「USBに保存」 writes the request file where the operator says (by default the first
//!    mounted removable medium, else the home folder).
//! 4. 「登録ファイルを読み込む」 installs the administrator's signed manifest
//!    ([`enrolment::install`], with the deployment key's fingerprint the administrator reads
//!    out). Every refusal is shown in words and changes nothing.
//! 5. The caller then opens the store (see `unlock`) and the station runs at its site.
//!
//! 3b. 「LANで送る」 sends the request to the administrator's `kazashi deployment serve-enrol`
//!    instead (`kazashi_node::enrol_net`, found by mDNS or typed as `<id>@ip:port`) and waits,
//!    off the window's thread, for the manifest the administrator signs; it is then installed
//!    as in step 4, with the same fingerprint check (the channel is not trusted).

use super::tr::Tr;
use super::{GREEN, RED, big, labelled};
use eframe::egui::{self, RichText};
use kazashi_domain::SiteId;
use kazashi_node::StoreError;
use kazashi_node::enrol_net::{self, EnrolNetError, Progress, Target};
use kazashi_node::enrolled::Folder;
use kazashi_node::enrolment::{self, EnrolError, REQUEST_FILE, Request};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, TryRecvError};
use zeroize::Zeroizing;

/// The least number of characters in a store passphrase (as `enrolment::request` asks).
pub const MIN_PASSPHRASE: usize = 8;

/// Work done off the window's thread (key derivation takes about a second): the window polls it
/// each frame and never waits.
pub struct Job<T>(mpsc::Receiver<T>);

impl<T: Send + 'static> Job<T> {
    pub fn spawn(f: impl FnOnce() -> T + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        // If no thread can be started, the sender is dropped with the closure: `poll` says so.
        let _ = std::thread::Builder::new()
            .name("kazashi-enrol".into())
            .spawn(move || {
                let _ = tx.send(f());
            });
        Job(rx)
    }

    /// The result once it is there; `Some(Err(()))` if the work stopped without one.
    pub fn poll(&self) -> Option<Result<T, ()>> {
        match self.0.try_recv() {
            Ok(t) => Some(Ok(t)),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(())),
        }
    }
}

/// What the QR code on the request screen holds: the device id (hex) and the fingerprint's
/// digits, `kazashi-enrol-v1:<device hex>:<28 digits>`.
pub fn qr_payload(req: &Request) -> String {
    let digits: String = req
        .fingerprint
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    format!("kazashi-enrol-v1:{}:{digits}", req.device)
}

/// A QR code's modules (dark or light), row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qr {
    pub width: usize,
    pub dark: Vec<bool>,
}

/// Light modules around the code, as the standard asks.
const QUIET: usize = 4;

impl Qr {
    pub fn new(payload: &str) -> Option<Qr> {
        let code =
            qrcode::QrCode::with_error_correction_level(payload.as_bytes(), qrcode::EcLevel::M)
                .ok()?;
        Some(Qr {
            width: code.width(),
            dark: code
                .to_colors()
                .into_iter()
                .map(|c| c == qrcode::Color::Dark)
                .collect(),
        })
    }

    /// One pixel per module with the quiet zone, black on white: what the window shows.
    pub fn image(&self) -> egui::ColorImage {
        let n = self.width + 2 * QUIET;
        let mut pixels = vec![egui::Color32::WHITE; n * n];
        for (i, dark) in self.dark.iter().enumerate() {
            let (x, y) = (i % self.width + QUIET, i / self.width + QUIET);
            if *dark && let Some(p) = pixels.get_mut(y * n + x) {
                *p = egui::Color32::BLACK;
            }
        }
        egui::ColorImage::new([n, n], pixels)
    }
}

/// The first mounted removable medium (under `/run/media/$USER`, `/media/$USER` or `/media`),
/// else the home folder: where the request file goes by default.
pub fn default_save_dir() -> PathBuf {
    let user = std::env::var("USER").unwrap_or_default();
    let mut roots = Vec::new();
    if !user.is_empty() {
        roots.push(Path::new("/run/media").join(&user));
        roots.push(Path::new("/media").join(&user));
    }
    roots.push(PathBuf::from("/media"));
    for root in roots {
        let Ok(entries) = std::fs::read_dir(&root) else {
            continue;
        };
        let mut mounted: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir() && is_mount_point(p))
            .collect();
        mounted.sort();
        if let Some(first) = mounted.into_iter().next() {
            return first;
        }
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(unix)]
fn is_mount_point(p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let parent = p.parent().unwrap_or(p);
    match (std::fs::metadata(p), std::fs::metadata(parent)) {
        (Ok(a), Ok(b)) => a.dev() != b.dev(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn is_mount_point(_: &Path) -> bool {
    false
}

/// The enrolment's refusal in the window's words; every one says nothing was changed.
pub fn enrol_words(tr: &Tr, e: &EnrolError) -> String {
    let text = match e {
        EnrolError::Store(StoreError::WrongPassphrase) => tr.t("enrol-wrong-passphrase"),
        EnrolError::ShortPassphrase => tr.t("pass-short"),
        EnrolError::AdminUnconfirmed => tr.t("enrol-admin-needed"),
        EnrolError::AdminFingerprint(_) => tr.t("enrol-admin-fingerprint"),
        EnrolError::Manifest(_) => tr.t("enrol-manifest-invalid"),
        EnrolError::WrongDeployment { .. } | EnrolError::AdminChanged => {
            tr.t("enrol-manifest-foreign")
        }
        EnrolError::Rollback { installed, found } => tr.t_with(
            "enrol-manifest-older",
            &[
                ("found", (*found).into()),
                ("installed", (*installed).into()),
            ],
        ),
        EnrolError::Conflict(v) => {
            tr.t_with("enrol-manifest-conflict", &[("version", (*v).into())])
        }
        EnrolError::NotListed(_) => tr.t("enrol-not-listed"),
        EnrolError::Revoked(_) => tr.t("enrol-revoked"),
        EnrolError::BadSite(s) => tr.t_with("enrol-bad-site", &[("site", s.clone().into())]),
        EnrolError::ChooseSite(n) => tr.t_with("enrol-choose-site", &[("n", (*n).into())]),
        EnrolError::Exists(_) => tr.t("enrol-exists"),
        other => tr.t_with("start-refused", &[("why", chain(other).into())]),
    };
    format!("{text} {}", tr.t("nothing-changed"))
}

/// An error and its sources, "…: …".
struct Chain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

/// An error with its sources as one line (for the window's messages).
pub fn chain(e: &dyn std::error::Error) -> String {
    Chain(e).to_string()
}

/// How long the window waits over the LAN for the administrator to approve.
pub const LAN_WAIT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Why sending over the LAN gave no manifest.
enum LanFailed {
    Enrol(EnrolError),
    Net(EnrolNetError),
}

/// The request on its way over the LAN: the result, and what happens meanwhile.
struct Lan {
    job: Job<Result<Vec<u8>, LanFailed>>,
    progress: mpsc::Receiver<Progress>,
}

/// Where the enrolment is.
enum Step {
    /// The label and the passphrase.
    Form,
    /// The key and the store being made.
    Making(Job<Result<Request, EnrolError>>),
    /// The request made: shown, saved, and waiting for the manifest.
    Request,
    /// The manifest being installed.
    Installing(Job<Result<enrolment::Installed, EnrolError>>),
    /// Installed: the caller opens the store.
    Done,
}

/// What the enrolment screen asks of its caller.
pub enum Outcome {
    Stay,
    /// The manifest is installed: open the store with these passphrases (store, roster store).
    Open {
        passphrase: Zeroizing<String>,
        roster_passphrase: Zeroizing<String>,
    },
}

/// The enrolment screen's state.
pub struct Enrolment {
    folder: Folder,
    step: Step,
    label: String,
    pass: Zeroizing<String>,
    pass2: Zeroizing<String>,
    roster_pass: Zeroizing<String>,
    request: Option<Request>,
    qr: Option<Qr>,
    qr_texture: Option<egui::TextureHandle>,
    save_to: String,
    saved: Option<(String, bool)>,
    manifest: String,
    admin_fp: String,
    site: String,
    choose_site: bool,
    error: Option<String>,
    installed: Option<String>,
    lan_to: String,
    lan: Option<Lan>,
    lan_status: Option<(String, bool)>,
    /// A manifest that came over the LAN, to install instead of the file.
    received: Option<Vec<u8>>,
}

impl Enrolment {
    /// From the start: nothing in `folder` yet.
    pub fn new(folder: Folder) -> Self {
        let save = default_save_dir();
        Enrolment {
            folder,
            step: Step::Form,
            label: String::new(),
            pass: Zeroizing::new(String::new()),
            pass2: Zeroizing::new(String::new()),
            roster_pass: Zeroizing::new(String::new()),
            request: None,
            qr: None,
            qr_texture: None,
            save_to: save.join(REQUEST_FILE).display().to_string(),
            saved: None,
            manifest: save.join("manifest.kzm").display().to_string(),
            admin_fp: String::new(),
            site: String::new(),
            choose_site: false,
            error: None,
            installed: None,
            lan_to: "lan".to_owned(),
            lan: None,
            lan_status: None,
            received: None,
        }
    }

    /// A laptop that asked already and holds no manifest yet (the window was closed while
    /// waiting): the request is made again for the same key, under the passphrase just typed.
    pub fn resume(folder: Folder, passphrase: Zeroizing<String>) -> Self {
        let label = std::fs::read(folder.dir.join(REQUEST_FILE))
            .ok()
            .and_then(|b| Request::parse(&b).ok())
            .map(|r| r.label)
            .unwrap_or_else(|| "laptop".to_owned());
        let mut e = Enrolment::new(folder);
        e.label = label;
        e.pass = passphrase;
        e.make_request();
        e
    }

    /// The request made, once made.
    pub fn request(&self) -> Option<&Request> {
        self.request.as_ref()
    }

    /// The QR code shown, once the request is made.
    pub fn qr(&self) -> Option<&Qr> {
        self.qr.as_ref()
    }

    /// Whether work runs off the window's thread now (not counting a wait over the LAN).
    pub fn busy(&self) -> bool {
        matches!(self.step, Step::Making(_) | Step::Installing(_))
    }

    /// Whether the request is out over the LAN, waiting for the manifest.
    pub fn sending(&self) -> bool {
        self.lan.is_some()
    }

    /// Whether a manifest came over the LAN (to install with the next 「マニフェストを読み込む」).
    pub fn received(&self) -> bool {
        self.received.is_some()
    }

    fn make_request(&mut self) {
        let (folder, pass, label) = (
            self.folder.clone(),
            self.pass.clone(),
            self.label.trim().to_owned(),
        );
        self.error = None;
        self.step = Step::Making(Job::spawn(move || {
            enrolment::request(&folder, &pass, &label)
        }));
    }

    /// The whole screen; what the caller must do next.
    pub fn show(&mut self, ui: &mut egui::Ui, tr: &Tr) -> Outcome {
        self.poll(tr);
        self.poll_lan(tr);
        if self.busy() || self.sending() {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(100));
        }
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.label(RichText::new(tr.t("enrol-title")).size(28.0).strong());
            ui.label(RichText::new(tr.t("enrol-hint")).size(16.0));
            ui.add_space(8.0);
            match self.step {
                Step::Form => self.form(ui, tr),
                Step::Making(_) => {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label(RichText::new(tr.t("enrol-making")).size(18.0));
                    });
                }
                Step::Request | Step::Installing(_) | Step::Done => self.request_screen(ui, tr),
            }
            if let Some(e) = &self.error {
                ui.add_space(6.0);
                ui.label(RichText::new(e.as_str()).size(18.0).color(RED));
            }
        });
        if matches!(self.step, Step::Done) {
            // Handed over once; the screen stays as it is until the caller moves on.
            self.step = Step::Request;
            return Outcome::Open {
                passphrase: self.pass.clone(),
                roster_passphrase: if self.roster_pass.is_empty() {
                    self.pass.clone()
                } else {
                    self.roster_pass.clone()
                },
            };
        }
        Outcome::Stay
    }

    fn poll(&mut self, tr: &Tr) {
        match &self.step {
            Step::Making(job) => match job.poll() {
                None => {}
                Some(Ok(Ok(req))) => {
                    self.qr = Qr::new(&qr_payload(&req));
                    self.qr_texture = None;
                    self.request = Some(req);
                    self.step = Step::Request;
                }
                Some(Ok(Err(e))) => {
                    self.error = Some(enrol_words(tr, &e));
                    self.step = Step::Form;
                }
                Some(Err(())) => {
                    self.error = Some(tr.t("work-stopped"));
                    self.step = Step::Form;
                }
            },
            Step::Installing(job) => match job.poll() {
                None => {}
                Some(Ok(Ok(done))) => {
                    let d = done.members.deployment();
                    let site = d
                        .site(&done.site)
                        .map(|s| s.name.as_str().to_owned())
                        .unwrap_or_else(|| done.site.to_string());
                    self.installed = Some(tr.t_with(
                        "enrol-installed",
                        &[
                            ("name", d.name().as_str().to_owned().into()),
                            ("version", done.members.version().into()),
                            ("site", site.into()),
                        ],
                    ));
                    self.step = Step::Done;
                }
                Some(Ok(Err(e))) => {
                    if matches!(e, EnrolError::ChooseSite(_) | EnrolError::BadSite(_)) {
                        self.choose_site = true;
                    }
                    self.error = Some(enrol_words(tr, &e));
                    self.step = Step::Request;
                }
                Some(Err(())) => {
                    self.error = Some(tr.t("work-stopped"));
                    self.step = Step::Request;
                }
            },
            _ => {}
        }
    }

    fn form(&mut self, ui: &mut egui::Ui, tr: &Tr) {
        ui.label(RichText::new(tr.t("enrol-step-label")).size(20.0).strong());
        labelled(
            ui,
            tr.t("enrol-label"),
            egui::TextEdit::singleline(&mut self.label)
                .hint_text("第一小学校 受付1")
                .desired_width(360.0),
        );
        ui.label(RichText::new(tr.t("enrol-pass-hint")).size(15.0));
        labelled(
            ui,
            tr.t("enrol-pass"),
            egui::TextEdit::singleline(&mut *self.pass)
                .password(true)
                .desired_width(360.0),
        );
        let r = labelled(
            ui,
            tr.t("enrol-pass-again"),
            egui::TextEdit::singleline(&mut *self.pass2)
                .password(true)
                .desired_width(360.0),
        );
        let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        ui.add_space(6.0);
        if big(ui, tr.t("enrol-make")).clicked() || enter {
            self.submit_form(tr);
        }
    }

    fn submit_form(&mut self, tr: &Tr) {
        self.error = None;
        if self.label.trim().is_empty() {
            self.error = Some(tr.t("enrol-label-missing"));
        } else if self.pass.chars().count() < MIN_PASSPHRASE {
            self.error = Some(tr.t("pass-short"));
        } else if *self.pass != *self.pass2 {
            self.error = Some(tr.t("pass-mismatch"));
            self.pass2 = Zeroizing::new(String::new());
        } else {
            self.pass2 = Zeroizing::new(String::new());
            self.make_request();
        }
    }

    fn request_screen(&mut self, ui: &mut egui::Ui, tr: &Tr) {
        let Some(req) = self.request.clone() else {
            return;
        };
        ui.label(
            RichText::new(tr.t("enrol-step-request"))
                .size(20.0)
                .strong(),
        );
        ui.horizontal_top(|ui| {
            if let Some(qr) = &self.qr {
                let texture = self.qr_texture.get_or_insert_with(|| {
                    ui.ctx()
                        .load_texture("enrol-qr", qr.image(), egui::TextureOptions::NEAREST)
                });
                let n = qr.width + 2 * QUIET;
                let side = (220.0 / n as f32).floor().max(2.0) * n as f32;
                let (rect, resp) =
                    ui.allocate_exact_size(egui::vec2(side, side), egui::Sense::hover());
                ui.painter().image(
                    texture.id(),
                    rect,
                    egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
                    egui::Color32::WHITE,
                );
                let label = tr.t_with(
                    "enrol-qr",
                    &[("fingerprint", req.fingerprint.clone().into())],
                );
                resp.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &label));
            }
            ui.vertical(|ui| {
                ui.label(tr.t_with("enrol-label-shown", &[("label", req.label.clone().into())]));
                ui.label(tr.t("enrol-fingerprint"));
                ui.label(
                    RichText::new(&req.fingerprint)
                        .size(30.0)
                        .monospace()
                        .strong(),
                );
                ui.label(RichText::new(tr.t("enrol-read-out")).size(15.0));
                ui.label(
                    RichText::new(
                        tr.t_with("enrol-device", &[("device", req.device.clone().into())]),
                    )
                    .size(13.0)
                    .monospace()
                    .weak(),
                );
            });
        });
        ui.separator();
        ui.label(RichText::new(tr.t("enrol-step-save")).size(20.0).strong());
        ui.horizontal(|ui| {
            labelled(
                ui,
                tr.t("enrol-save-to"),
                egui::TextEdit::singleline(&mut self.save_to).desired_width(520.0),
            );
            if ui.button(tr.t("enrol-save")).clicked() {
                self.saved = Some(save_request(&req, Path::new(self.save_to.trim()), tr));
            }
        });
        if let Some((text, ok)) = &self.saved {
            ui.label(RichText::new(text.as_str()).color(if *ok { GREEN } else { RED }));
        }
        ui.label(RichText::new(tr.t("enrol-lan-hint")).size(15.0));
        ui.horizontal(|ui| {
            labelled(
                ui,
                tr.t("enrol-lan-to"),
                egui::TextEdit::singleline(&mut self.lan_to).desired_width(520.0),
            );
            if ui
                .add_enabled(
                    self.lan.is_none(),
                    egui::Button::new(tr.t("enrol-send-lan")),
                )
                .clicked()
            {
                self.send_lan(&req, tr);
            }
            if self.lan.is_some() {
                ui.spinner();
            }
        });
        if let Some((text, ok)) = &self.lan_status {
            ui.label(RichText::new(text.as_str()).color(if *ok { GREEN } else { RED }));
        }
        ui.separator();
        ui.label(
            RichText::new(tr.t("enrol-step-install"))
                .size(20.0)
                .strong(),
        );
        egui::Grid::new("enrol-install")
            .num_columns(2)
            .spacing([10.0, 8.0])
            .show(ui, |ui| {
                let row = |ui: &mut egui::Ui, label: String, edit: egui::TextEdit<'_>| {
                    let l = ui.label(label);
                    ui.add(edit).labelled_by(l.id);
                    ui.end_row();
                };
                row(
                    ui,
                    tr.t("enrol-manifest"),
                    egui::TextEdit::singleline(&mut self.manifest).desired_width(520.0),
                );
                row(
                    ui,
                    tr.t("enrol-admin-fp"),
                    egui::TextEdit::singleline(&mut self.admin_fp)
                        .hint_text("0000 0000 0000 0000 0000 0000 0000")
                        .desired_width(420.0),
                );
                if self.choose_site {
                    row(
                        ui,
                        tr.t("enrol-site"),
                        egui::TextEdit::singleline(&mut self.site).desired_width(160.0),
                    );
                }
                row(
                    ui,
                    tr.t("enrol-roster-pass"),
                    egui::TextEdit::singleline(&mut *self.roster_pass)
                        .password(true)
                        .desired_width(360.0),
                );
            });
        ui.add_space(6.0);
        match self.step {
            Step::Installing(_) => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(tr.t("enrol-installing"));
                });
            }
            Step::Done => {}
            _ => {
                if big(ui, tr.t("enrol-install")).clicked() {
                    self.install(tr);
                }
            }
        }
        if let Some(done) = &self.installed {
            ui.label(RichText::new(done.as_str()).size(18.0).color(GREEN));
        }
    }

    fn install(&mut self, tr: &Tr) {
        self.error = None;
        let path = PathBuf::from(self.manifest.trim());
        let read = match &self.received {
            Some(b) => Ok(b.clone()),
            None => std::fs::read(&path),
        };
        let bytes = match read {
            Ok(b) => b,
            Err(e) => {
                self.error = Some(tr.t_with(
                    "enrol-file-unreadable",
                    &[
                        ("path", path.display().to_string().into()),
                        ("why", e.to_string().into()),
                    ],
                ));
                return;
            }
        };
        let site = match self.site.trim() {
            "" => None,
            s => match SiteId::new(s) {
                Ok(id) => Some(id),
                Err(_) => {
                    self.error = Some(enrol_words(tr, &EnrolError::BadSite(s.to_owned())));
                    return;
                }
            },
        };
        let typed = self.admin_fp.trim().to_owned();
        let (folder, pass) = (self.folder.clone(), self.pass.clone());
        self.step = Step::Installing(Job::spawn(move || {
            let fp = (!typed.is_empty()).then_some(typed.as_str());
            enrolment::install(&folder, &pass, &bytes, site, fp)
        }));
    }
}

impl Enrolment {
    /// Send the request over the LAN and wait for the manifest, off the window's thread.
    fn send_lan(&mut self, req: &Request, tr: &Tr) {
        let to: Target = match self.lan_to.parse() {
            Ok(t) => t,
            Err(e) => {
                self.lan_status = Some((lan_words(tr, &e), false));
                return;
            }
        };
        let (folder, pass, req) = (self.folder.clone(), self.pass.clone(), req.clone());
        let (tx, progress) = mpsc::channel();
        let job = Job::spawn(move || {
            let key = enrol_net::device_key(&folder, &pass).map_err(LanFailed::Enrol)?;
            enrol_net::send_request_blocking(&key, &to, &req, LAN_WAIT, move |p| {
                let _ = tx.send(p);
            })
            .map_err(LanFailed::Net)
        });
        self.lan_status = Some((tr.t("enrol-lan-looking"), true));
        self.lan = Some(Lan { job, progress });
    }

    fn poll_lan(&mut self, tr: &Tr) {
        let Some(lan) = &self.lan else {
            return;
        };
        while let Ok(p) = lan.progress.try_recv() {
            let text = match p {
                Progress::Connected(_) => tr.t("enrol-lan-connected"),
                Progress::Waiting => tr.t("enrol-lan-waiting"),
            };
            self.lan_status = Some((text, true));
        }
        let Some(done) = lan.job.poll() else {
            return;
        };
        self.lan = None;
        self.lan_status = Some(match done {
            Ok(Ok(bytes)) => {
                self.received = Some(bytes);
                (tr.t("enrol-lan-received"), true)
            }
            Ok(Err(LanFailed::Enrol(e))) => (enrol_words(tr, &e), false),
            Ok(Err(LanFailed::Net(e))) => (lan_words(tr, &e), false),
            Err(()) => (tr.t("work-stopped"), false),
        });
    }
}

/// Why the LAN gave no manifest, in the window's words (the detail in English as it came).
fn lan_words(tr: &Tr, e: &EnrolNetError) -> String {
    match e {
        EnrolNetError::Address(_) => tr.t("enrol-lan-address"),
        EnrolNetError::NotFound(_) => tr.t("enrol-lan-not-found"),
        EnrolNetError::Timeout(_) => tr.t("enrol-lan-timeout"),
        EnrolNetError::Refused(why) => {
            tr.t_with("enrol-lan-refused", &[("why", why.clone().into())])
        }
        other => tr.t_with("enrol-lan-failed", &[("why", chain(other).into())]),
    }
}

/// Write the request file to `to` (a file, or a folder to put `enrol-request.json` in): what to
/// tell the operator, and whether it worked.
fn save_request(req: &Request, to: &Path, tr: &Tr) -> (String, bool) {
    let path = if to.is_dir() {
        to.join(REQUEST_FILE)
    } else {
        to.to_path_buf()
    };
    let written = serde_json::to_vec_pretty(req)
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|json| {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&path)?;
            f.write_all(&json)?;
            // A USB stick may be pulled out as soon as the message shows.
            f.sync_all()
        });
    match written {
        Ok(()) => (
            tr.t_with(
                "enrol-saved",
                &[("path", path.display().to_string().into())],
            ),
            true,
        ),
        Err(e) => (
            tr.t_with(
                "enrol-save-failed",
                &[
                    ("path", path.display().to_string().into()),
                    ("why", e.to_string().into()),
                ],
            ),
            false,
        ),
    }
}
