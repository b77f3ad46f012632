//! USB bundles the way people handle them: the sticks mounted now are listed (polled every few
//! seconds from the mount table, see `kazashi_node::media`), each with one-click 書き出し (a bundle
//! written to `<stick>/kazashi/`) and 読み込み (every `*.kzb` there imported; the node refuses the
//! ones it has imported before). A small in-window folder browser is the fallback for media not
//! found that way; nothing is typed as a path.

use super::Cx;
use eframe::egui;
use kazashi_node::media::{self, Medium};
use kazashi_node::{BundleScope, Clock, NodeError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the window learns of mounted media: the live system, or a test's list.
pub type MediaSource = Box<dyn Fn() -> Vec<Medium> + Send>;

/// How often the mounted media are looked at again (a read of the mount table and a few
/// one-byte sysfs files: cheap enough for the UI thread at this pace).
const POLL: Duration = Duration::from_secs(3);

/// Bundle progress: the steps done of an export or import.
struct Progress {
    label: String,
    done: f32,
}

/// The fallback folder browser: one folder shown, its subfolders and bundle files.
struct Browser {
    dir: PathBuf,
}

#[derive(Default)]
pub struct Bundles {
    source: Option<MediaSource>,
    media: Vec<Medium>,
    polled: Option<Instant>,
    progress: Option<Progress>,
    browser: Option<Browser>,
}

/// What importing one file came to.
enum One {
    Added(usize),
    AlreadyHad,
    Refused(String),
}

impl Bundles {
    /// Replace where media are found (a test's fake stick); looked at again at once.
    pub fn set_source(&mut self, source: MediaSource) {
        self.source = Some(source);
        self.polled = None;
    }

    fn poll(&mut self) {
        if self.polled.is_some_and(|t| t.elapsed() < POLL) {
            return;
        }
        self.media = match &self.source {
            Some(f) => f(),
            None => media::removable_media(),
        };
        self.polled = Some(Instant::now());
    }

    pub fn show<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>) {
        self.poll();
        ui.ctx().request_repaint_after(POLL);
        ui.strong(cx.tr.t("bundle-title"));
        let manages = cx.login.role.manages() || cx.login.role.writes();
        if self.media.is_empty() {
            ui.label(cx.tr.t("usb-none"));
        }
        for m in self.media.clone() {
            ui.horizontal(|ui| {
                ui.label(cx.tr.t_with(
                    "usb-stick",
                    &[
                        ("label", m.label.clone().into()),
                        ("mount", m.mount.display().to_string().into()),
                    ],
                ));
                if ui
                    .add_enabled(manages, egui::Button::new(cx.tr.t("usb-export")))
                    .clicked()
                {
                    self.export_to(cx, &m.kazashi_dir(), &m.label);
                }
                if ui
                    .add_enabled(manages, egui::Button::new(cx.tr.t("usb-import")))
                    .clicked()
                {
                    self.import_dir(cx, &m.kazashi_dir(), &m.label);
                }
            });
        }
        if ui.button(cx.tr.t("usb-browse")).clicked() {
            self.browser = match self.browser {
                Some(_) => None,
                None => Some(Browser {
                    dir: std::env::var_os("HOME")
                        .map(PathBuf::from)
                        .unwrap_or_else(|| PathBuf::from("/")),
                }),
            };
        }
        if self.browser.is_some() {
            self.browse(ui, cx, manages);
        }
        if let Some(p) = &self.progress {
            ui.add(egui::ProgressBar::new(p.done).text(p.label.as_str()));
        }
    }

    fn browse<C: Clock>(&mut self, ui: &mut egui::Ui, cx: &mut Cx<'_, C>, manages: bool) {
        let Some(dir) = self.browser.as_ref().map(|b| b.dir.clone()) else {
            return;
        };
        let mut go = None;
        ui.group(|ui| {
            ui.horizontal(|ui| {
                ui.label(dir.display().to_string());
                if let Some(up) = dir.parent()
                    && ui.button(cx.tr.t("usb-up")).clicked()
                {
                    go = Some(up.to_path_buf());
                }
                if ui
                    .add_enabled(manages, egui::Button::new(cx.tr.t("usb-export-here")))
                    .clicked()
                {
                    let name = dir
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    self.export_to(cx, &dir, &name);
                }
            });
            let mut folders = Vec::new();
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for e in rd.flatten() {
                    let p = e.path();
                    let hidden = e.file_name().to_string_lossy().starts_with('.');
                    if p.is_dir() && !hidden {
                        folders.push(p);
                    }
                }
            }
            folders.sort();
            egui::ScrollArea::vertical()
                .id_salt("usb-browser")
                .max_height(200.0)
                .show(ui, |ui| {
                    for f in folders {
                        let name = f
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        if ui.button(format!("📁 {name}")).clicked() {
                            go = Some(f);
                        }
                    }
                    for b in media::bundles_in(&dir) {
                        let name = b
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        if ui
                            .add_enabled(manages, egui::Button::new(format!("📦 {name}")))
                            .clicked()
                        {
                            let text = match self.import_file(cx, &b) {
                                One::Added(n) => {
                                    cx.tr.t_with("bundle-import-done", &[("added", n.into())])
                                }
                                One::AlreadyHad => cx.tr.t("bundle-err-replayed-bundle"),
                                One::Refused(why) => {
                                    cx.tr.t_with("bundle-refused", &[("why", why.into())])
                                }
                            };
                            cx.say(text, true);
                        }
                    }
                });
        });
        if let (Some(d), Some(b)) = (go, self.browser.as_mut()) {
            b.dir = d;
        }
    }

    /// Write a bundle of everything into `dir` (made if missing), named by site and time.
    fn export_to<C: Clock>(&mut self, cx: &mut Cx<'_, C>, dir: &Path, where_: &str) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            self.progress = None;
            return cx.say(
                cx.tr
                    .t_with("bundle-write-failed", &[("why", e.to_string().into())]),
                false,
            );
        }
        let stamp = kazashi_node::export::jst(cx.now())
            .replace(['-', ':'], "")
            .replace(' ', "-");
        let path = dir.join(format!("kazashi-{}-{stamp}.kzb", cx.site()));
        // Written beside, synced, renamed, the folder synced, and only then marked as sent.
        match cx.node.export_bundle_to(&path, BundleScope::All) {
            Ok(len) => {
                self.progress = Some(Progress {
                    label: cx.tr.t_with(
                        "bundle-written",
                        &[
                            ("path", path.display().to_string().into()),
                            ("kb", (len / 1024).into()),
                        ],
                    ),
                    done: 1.0,
                });
                cx.say(
                    cx.tr
                        .t_with("usb-export-done", &[("label", where_.to_string().into())]),
                    true,
                );
            }
            Err(NodeError::BundleFile { why, .. }) => {
                self.progress = None;
                cx.say(
                    cx.tr.t_with("bundle-write-failed", &[("why", why.into())]),
                    false,
                );
            }
            Err(e) => {
                self.progress = None;
                cx.say(e.to_string(), false);
            }
        }
    }

    /// Import every bundle in `dir` and say in words what came of it.
    fn import_dir<C: Clock>(&mut self, cx: &mut Cx<'_, C>, dir: &Path, label: &str) {
        let files = media::bundles_in(dir);
        if files.is_empty() {
            self.progress = None;
            return cx.say(
                cx.tr
                    .t_with("usb-no-bundles", &[("label", label.to_string().into())]),
                false,
            );
        }
        let (mut files_in, mut added, mut had, mut refused) = (0usize, 0usize, 0usize, Vec::new());
        for f in &files {
            match self.import_file(cx, f) {
                One::Added(n) => {
                    files_in += 1;
                    added += n;
                }
                One::AlreadyHad => had += 1,
                One::Refused(why) => {
                    let name = f
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    refused.push(format!("{name}: {why}"));
                }
            }
        }
        let mut text = cx.tr.t_with(
            "usb-import-done",
            &[
                ("label", label.to_string().into()),
                ("files", files_in.into()),
                ("added", added.into()),
                ("had", had.into()),
            ],
        );
        if !refused.is_empty() {
            text.push(' ');
            text.push_str(
                &cx.tr
                    .t_with("bundle-refused", &[("why", refused.join(" / ").into())]),
            );
        }
        cx.say(text, refused.is_empty());
    }

    fn import_file<C: Clock>(&mut self, cx: &mut Cx<'_, C>, path: &Path) -> One {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                return One::Refused(
                    cx.tr
                        .t_with("bundle-read-failed", &[("why", e.to_string().into())]),
                );
            }
        };
        match cx.node.import_bundle(&bytes, &path.display().to_string()) {
            Ok(r) => {
                let by_site: Vec<String> = r
                    .added_by_site
                    .iter()
                    .map(|(s, n)| format!("{} {n}", cx.site_name(s)))
                    .collect();
                self.progress = Some(Progress {
                    label: cx.tr.t_with(
                        "bundle-imported",
                        &[
                            ("added", r.added.into()),
                            ("shards", r.shards.into()),
                            ("sites", by_site.join("、").into()),
                        ],
                    ),
                    done: 1.0,
                });
                if r.refused_shards == 0 {
                    One::Added(r.added)
                } else {
                    One::Refused(cx.tr.t_with(
                        "bundle-import-refused",
                        &[("refused", r.refused_shards.into())],
                    ))
                }
            }
            Err(NodeError::Bundle(b)) if !b.suspect() && b.code() != "old-format" => {
                One::AlreadyHad
            }
            Err(e) => One::Refused(refusal_words(cx, &e)),
        }
    }
}

/// A refused bundle in the window's words.
fn refusal_words<C: Clock>(cx: &Cx<'_, C>, e: &NodeError) -> String {
    match e {
        NodeError::Bundle(b) => cx.tr.t(&format!("bundle-err-{}", b.code())),
        NodeError::BundleManifestRefused(r) => {
            use kazashi_node::node::ManifestRefusal as R;
            match r {
                R::OtherAdmin => cx.tr.t("bundle-err-manifest-other-admin"),
                R::OtherDeployment => cx.tr.t("bundle-err-manifest-other-deployment"),
                R::Conflict(v) => cx
                    .tr
                    .t_with("bundle-err-manifest-conflict", &[("version", (*v).into())]),
                R::Invalid(_) | R::Rollback { .. } => cx.tr.t("bundle-err-manifest-invalid"),
            }
        }
        other => other.to_string(),
    }
}

impl<C: Clock + Send + 'static> super::Station<C> {
    /// Where the bundle section finds mounted media: a test hook (a fake stick), the live mount
    /// table otherwise.
    pub fn set_media_source(&mut self, source: MediaSource) {
        self.network.usb.set_source(source);
    }
}
