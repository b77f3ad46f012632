//! The window as `kazashi` starts it (`app::unlock::Start`), clicked through by its accessible
//! labels (egui_kittest): a fresh laptop enrolled from zero on the enrolment screen (label and
//! passphrase, the request with its fingerprint and QR code, the request file saved, the
//! administrator's manifest installed — wrong fingerprint, foreign, tampered and not-yet-listed
//! manifests refused with nothing installed — then the station at its site), the store's
//! passphrase asked at start (wrong, then right), and the staff login that follows (wrong PIN,
//! then right, lock). The administrator is a real deployment folder
//! (`kazashi_node::deployment_admin`), the stores are real SQLCipher files.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use eframe::egui::{self, accesskit::Role};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use kazashi_domain::CivilDate;
use kazashi_domain::ids::{OperatorId, SiteId};
use kazashi_gui::app::Host;
use kazashi_gui::app::cards::NoReaders;
use kazashi_gui::app::enrol::{Qr, qr_payload};
use kazashi_gui::app::unlock::{Opener, Start};
use kazashi_gui::lang::Lang;
use kazashi_node::deployment_admin::{AdminFolder, Operation, parse_sites_csv};
use kazashi_node::enrol_net::{ServeConfig, ServeEvent, Server};
use kazashi_node::enrolled::Folder;
use kazashi_node::enrolment::{self, Request, fingerprint};
use kazashi_node::roster_db::{RosterDb, sha256};
use kazashi_node::staff::Role as StaffRole;
use kazashi_node::{KdfParams, Store};
use kazashi_sim::population::{PopulationSpec, generate};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ADMIN_PASS: &str = "administrator passphrase";
const ROSTER_PASS: &str = "roster passphrase";
const LAPTOP_PASS: &str = "laptop passphrase 1";

struct Screen {
    start: Start,
    fonts: bool,
}

type H = Harness<'static, Screen>;

/// The window at 1366×768 on `folder`, the node alone (no mesh) and no card readers.
fn harness(folder: Folder) -> H {
    let opener: Opener = Arc::new(|node| Ok(Host::Alone(Box::new(node))));
    let start = Start::new(folder, Lang::Ja, opener, Box::new(NoReaders)).unwrap();
    let mut h = Harness::builder()
        .with_size([1366.0, 768.0])
        .build_ui_state(
            |ui, s: &mut Screen| {
                if !s.fonts {
                    kazashi_gui::app::setup(ui.ctx()).unwrap();
                    s.fonts = true;
                    ui.ctx().request_repaint();
                    return;
                }
                s.start.show(ui);
            },
            Screen {
                start,
                fonts: false,
            },
        );
    h.run_steps(3);
    h
}

fn said(h: &H, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

/// Click the widget labelled `label`, scrolled into view first and once the scrolling has come
/// to rest (the same place three frames running).
fn click(h: &mut H, label: &str) {
    h.get_by_label(label).scroll_to_me();
    let (mut last, mut still) = (None, 0);
    for _ in 0..60 {
        h.run_steps(1);
        let now = Some(h.get_by_label(label).rect());
        still = if now == last { still + 1 } else { 0 };
        if still >= 3 {
            break;
        }
        last = now;
    }
    h.get_by_label(label).click();
    h.run_steps(3);
}

/// The text field (plain or password) labelled `label`.
fn text_field<'h>(h: &'h H, label: &'h str) -> egui_kittest::Node<'h> {
    [Role::TextInput, Role::PasswordInput]
        .into_iter()
        .find_map(|r| h.query_by_role_and_label(r, label))
        .unwrap_or_else(|| panic!("no field labelled {label}"))
}

fn fill(h: &mut H, label: &str, text: &str) {
    text_field(h, label).focus();
    h.run_steps(2);
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.run_steps(1);
    text_field(h, label).type_text(text);
    h.run_steps(3);
}

/// Run frames until the work off the window's thread is done (key derivation, opening).
fn settle_work(h: &mut H) {
    let until = Instant::now() + Duration::from_secs(120);
    h.run_steps(2);
    while h.state().start.busy() {
        assert!(Instant::now() < until, "the window's work did not finish");
        std::thread::sleep(Duration::from_millis(20));
        h.run_steps(1);
    }
    h.run_steps(4);
}

/// Run frames until `done` holds (work over the LAN, which `busy` does not count).
fn wait_for(h: &mut H, what: &str, done: impl Fn(&H) -> bool) {
    let until = Instant::now() + Duration::from_secs(60);
    while !done(h) {
        assert!(Instant::now() < until, "waited in vain for {what}");
        std::thread::sleep(Duration::from_millis(20));
        h.run_steps(1);
    }
    h.run_steps(3);
}

/// Type the label and the passphrase and make the request; the request made.
fn make_request(h: &mut H, label: &str) -> Request {
    fill(h, "端末の名前", label);
    fill(h, "パスフレーズ", LAPTOP_PASS);
    fill(h, "パスフレーズ（確認）", LAPTOP_PASS);
    click(h, "登録申請を作る");
    settle_work(h);
    h.state()
        .start
        .enrolment()
        .and_then(|e| e.request())
        .cloned()
        .expect("no request was made")
}

/// What a QR reader makes of `image` (scaled up, as a phone would see it on the screen).
fn decode(image: &egui::ColorImage) -> String {
    const SCALE: usize = 6;
    let [w, h] = image.size;
    let mut grid = rqrr::PreparedImage::prepare_from_greyscale(w * SCALE, h * SCALE, |x, y| {
        image.pixels[(y / SCALE) * w + x / SCALE].r()
    });
    let grids = grid.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the picture");
    grids[0].decode().unwrap().1
}

/// A deployment from zero, as an administrator makes it: two shelters, a roster imported and
/// pinned. The admin folder, the roster store's path and the deployment key's fingerprint.
struct Admin {
    folder: AdminFolder,
    roster: PathBuf,
    fingerprint: String,
}

fn deployment(dir: &Path, name: &str) -> Admin {
    let folder = AdminFolder::new(dir.join("admin"));
    let sites = parse_sites_csv(
        "code,name,kind,capacity,shelter_type,precincts\n\
         S1,第一小学校,shelter,200,1,\n\
         S2,福祉センター,shelter,30,9,\n",
    )
    .unwrap();
    let members = folder
        .init(name, Operation::Shelters, sites, ADMIN_PASS)
        .unwrap();
    let town = generate(PopulationSpec {
        households: 20,
        seed: 7,
        today: CivilDate::new(2026, 9, 1).unwrap(),
        voters: false,
    })
    .unwrap();
    let roster = folder.dir.join("roster.db");
    let db = RosterDb::create(
        &roster,
        ROSTER_PASS,
        KdfParams::FAST_INSECURE,
        (&town.roster).into(),
        sha256(name.as_bytes()),
        &mut |_, _| {},
    )
    .unwrap();
    folder.pin_roster(ADMIN_PASS, db.hash()).unwrap();
    Admin {
        folder,
        roster,
        fingerprint: fingerprint(&members.manifest().admin),
    }
}

/// The roster store as the administrator hands it over, into the laptop's folder.
fn copy_roster(admin: &Admin, laptop: &Folder) {
    std::fs::create_dir_all(&laptop.dir).unwrap();
    for suffix in ["", ".text", ".kdf"] {
        let from = PathBuf::from(format!("{}{suffix}", admin.roster.display()));
        let to = PathBuf::from(format!("{}{suffix}", laptop.roster_path().display()));
        std::fs::copy(&from, &to).unwrap();
    }
}

fn installed_manifest(laptop: &Folder) -> Option<Vec<u8>> {
    Store::open(&laptop.store_path(), LAPTOP_PASS)
        .unwrap()
        .manifest()
        .unwrap()
}

/// Try to install `file` with the fingerprint `fp`: the window's answer.
fn try_install(h: &mut H, file: &Path, fp: &str) {
    fill(h, "端末登録ファイル", &file.display().to_string());
    fill(h, "管理者の鍵の指紋（管理者が読み上げたもの）", fp);
    click(h, "マニフェストを読み込む");
    settle_work(h);
}

#[test]
fn a_fresh_laptop_enrols_on_the_window_and_opens_at_its_site() {
    let tmp = tempfile::tempdir().unwrap();
    let admin = deployment(tmp.path(), "三条市 訓練");
    let laptop = Folder::new(tmp.path().join("laptop"));
    let mut h = harness(laptop.clone());
    assert!(said(&h, "この端末の登録"));
    assert!(h.state().start.enrolment().is_some());

    // The passphrase: too short, then typed differently twice; nothing is made.
    fill(&mut h, "端末の名前", "第一小学校 受付1");
    fill(&mut h, "パスフレーズ", "short");
    fill(&mut h, "パスフレーズ（確認）", "short");
    click(&mut h, "登録申請を作る");
    assert!(said(&h, "8文字以上"));
    fill(&mut h, "パスフレーズ", LAPTOP_PASS);
    fill(&mut h, "パスフレーズ（確認）", "laptop passphrase 2");
    click(&mut h, "登録申請を作る");
    assert!(said(&h, "一致しません"));
    assert!(!laptop.store_path().exists());

    // The request: made off the window's thread, then its fingerprint and QR code shown.
    fill(&mut h, "パスフレーズ（確認）", LAPTOP_PASS);
    click(&mut h, "登録申請を作る");
    settle_work(&mut h);
    let req: Request = h
        .state()
        .start
        .enrolment()
        .and_then(|e| e.request())
        .cloned()
        .expect("no request was made");
    let device = req.verify().unwrap();
    assert_eq!(req.label, "第一小学校 受付1");
    assert!(laptop.store_path().exists());
    assert!(said(&h, &req.fingerprint), "the fingerprint is not shown");
    assert!(said(
        &h,
        &format!("登録申請のQRコード（指紋 {}）", req.fingerprint)
    ));
    let payload = qr_payload(&req);
    let digits: String = req.fingerprint.split(' ').collect();
    assert_eq!(
        payload,
        format!("kazashi-enrol-v1:{}:{digits}", device.to_hex())
    );
    let qr = h.state().start.enrolment().and_then(|e| e.qr()).cloned();
    assert_eq!(qr, Qr::new(&payload));
    // The picture the window draws reads back, with a QR decoder, as the request's payload.
    assert_eq!(decode(&qr.unwrap().image()), payload);

    // Saved to the "USB stick": the very request, signed by the laptop's key.
    let usb = tmp.path().join("usb");
    std::fs::create_dir_all(&usb).unwrap();
    fill(&mut h, "保存先", &usb.display().to_string());
    click(&mut h, "USBに保存");
    let saved_path = usb.join(enrolment::REQUEST_FILE);
    assert!(said(&h, "に保存しました"), "no saved message");
    let saved = Request::parse(&std::fs::read(&saved_path).unwrap()).unwrap();
    assert_eq!(saved, req);

    // The administrator's manifest before approval: this laptop is not in it.
    try_install(&mut h, &admin.folder.manifest_path(), &admin.fingerprint);
    assert!(said(&h, "この端末はまだこのファイルに載っていません"));
    assert!(said(&h, "何も変更していません"));
    assert_eq!(installed_manifest(&laptop), None);

    // The administrator approves the saved request at S1 (the fingerprint as read out).
    let s1 = SiteId::new("S1").unwrap();
    admin
        .folder
        .approve(
            ADMIN_PASS,
            &saved,
            &req.fingerprint,
            s1,
            kazashi_sync::Role::Station,
        )
        .unwrap();
    let manifest = admin.folder.manifest_path();

    // A mistyped administrator fingerprint: refused, nothing installed.
    let mut wrong: Vec<char> = admin.fingerprint.chars().collect();
    wrong[0] = if wrong[0] == '1' { '2' } else { '1' };
    let wrong: String = wrong.into_iter().collect();
    try_install(&mut h, &manifest, &wrong);
    assert!(said(&h, "入力した指紋の管理者の鍵で署名されていません"));
    assert_eq!(installed_manifest(&laptop), None);

    // Another deployment's administrator approved the same request: refused with ours.
    let other_tmp = tempfile::tempdir().unwrap();
    let other = deployment(other_tmp.path(), "よその配備");
    other
        .folder
        .approve(
            ADMIN_PASS,
            &saved,
            &req.fingerprint,
            s1,
            kazashi_sync::Role::Station,
        )
        .unwrap();
    try_install(&mut h, &other.folder.manifest_path(), &admin.fingerprint);
    assert!(said(&h, "入力した指紋の管理者の鍵で署名されていません"));
    assert_eq!(installed_manifest(&laptop), None);

    // A tampered copy of the right manifest: refused.
    let mut bytes = std::fs::read(&manifest).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 1;
    let tampered = tmp.path().join("tampered.kzm");
    std::fs::write(&tampered, &bytes).unwrap();
    try_install(&mut h, &tampered, &admin.fingerprint);
    assert!(said(&h, "壊れているか、改ざんされています"));
    assert_eq!(installed_manifest(&laptop), None);

    // The right one, with the roster store beside it: installed, and the station opens at S1.
    copy_roster(&admin, &laptop);
    fill(
        &mut h,
        "名簿ストアのパスフレーズ（この端末と同じなら空欄）",
        ROSTER_PASS,
    );
    try_install(&mut h, &manifest, &admin.fingerprint);
    settle_work(&mut h);
    assert_eq!(
        installed_manifest(&laptop),
        Some(std::fs::read(&manifest).unwrap())
    );
    let station = h
        .state_mut()
        .start
        .station()
        .expect("no station after enrolment");
    assert_eq!(station.host().with(|n| n.station().site()), s1);
    assert_eq!(station.host().with(|n| n.device()), device);
    h.run_steps(3);
    assert!(said(&h, "第一小学校"), "the header does not name the site");
    assert!(
        said(&h, "三条市 訓練"),
        "the header does not name the deployment"
    );
    assert!(said(&h, "ロック中"), "the station does not start locked");

    // Staff unlock the station: a wrong PIN, then the right one, then lock again.
    staff_login_wrong_then_right(&mut h);
}

/// A lead enrolled on this laptop logs in (a wrong PIN first) and locks again.
fn staff_login_wrong_then_right(h: &mut H) {
    let op = OperatorId::new("sekinin1").unwrap();
    h.state_mut()
        .start
        .station()
        .unwrap()
        .host()
        .with(|n| n.enrol_staff(&op, StaffRole::Lead, Some("2468")))
        .unwrap();
    fill(h, "職員ID", "sekinin1");
    fill(h, "職員暗証番号", "1357");
    click(h, "解錠");
    assert!(said(h, "職員IDまたは暗証番号が違います"));
    assert!(h.state_mut().start.station().unwrap().login().is_none());
    fill(h, "職員暗証番号", "2468");
    click(h, "解錠");
    let login = h.state_mut().start.station().unwrap().login().cloned();
    assert_eq!(
        login.map(|l| (l.operator, l.role)),
        Some((op, StaffRole::Lead))
    );
    assert!(said(h, "カードをかざしてください"));
    click(h, "ロック");
    assert!(said(h, "ロック中"));
    assert!(h.state_mut().start.station().unwrap().login().is_none());
}

/// An enrolled laptop in `dir`, through the library as `kazashi enrol` does it.
fn enrolled_laptop(dir: &Path) -> (Admin, Folder) {
    let admin = deployment(dir, "三条市 訓練");
    let laptop = Folder::new(dir.join("laptop"));
    let req = enrolment::request(&laptop, LAPTOP_PASS, "受付2").unwrap();
    let s2 = SiteId::new("S2").unwrap();
    admin
        .folder
        .approve(
            ADMIN_PASS,
            &req,
            &req.fingerprint,
            s2,
            kazashi_sync::Role::Station,
        )
        .unwrap();
    let bytes = std::fs::read(admin.folder.manifest_path()).unwrap();
    enrolment::install(&laptop, LAPTOP_PASS, &bytes, None, Some(&admin.fingerprint)).unwrap();
    copy_roster(&admin, &laptop);
    (admin, laptop)
}

#[test]
fn the_store_passphrase_is_asked_at_start_and_a_wrong_one_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (_admin, laptop) = enrolled_laptop(tmp.path());
    let before = std::fs::read(laptop.store_path()).unwrap();
    let mut h = harness(laptop.clone());
    assert!(h.state().start.unlocking());
    assert!(said(&h, "パスフレーズを入力してください"));
    assert!(h.state().start.enrolment().is_none());

    assert!(!said(&h, "パスフレーズを入力してください。"));
    click(&mut h, "開く");
    assert!(
        said(&h, "パスフレーズを入力してください。"),
        "an empty passphrase"
    );
    assert!(h.state().start.unlocking() && !h.state().start.busy());
    fill(&mut h, "この端末のパスフレーズ", "not the passphrase");
    click(&mut h, "開く");
    settle_work(&mut h);
    assert!(
        said(&h, "パスフレーズが違います"),
        "no wrong-passphrase message"
    );
    assert!(h.state().start.unlocking());
    assert!(h.state_mut().start.station().is_none());
    assert_eq!(std::fs::read(laptop.store_path()).unwrap(), before);

    // The right store passphrase with a wrong roster store passphrase: said, retried.
    fill(&mut h, "この端末のパスフレーズ", LAPTOP_PASS);
    fill(
        &mut h,
        "名簿ストアのパスフレーズ（同じなら空欄）",
        "not the roster's",
    );
    click(&mut h, "開く");
    settle_work(&mut h);
    assert!(said(&h, "名簿ストアのパスフレーズが違います"));
    assert!(h.state().start.unlocking());

    fill(&mut h, "この端末のパスフレーズ", LAPTOP_PASS);
    fill(
        &mut h,
        "名簿ストアのパスフレーズ（同じなら空欄）",
        ROSTER_PASS,
    );
    click(&mut h, "開く");
    settle_work(&mut h);
    let station = h
        .state_mut()
        .start
        .station()
        .expect("the store did not open");
    assert_eq!(
        station.host().with(|n| n.station().site()),
        SiteId::new("S2").unwrap()
    );
    h.run_steps(3);
    assert!(said(&h, "福祉センター"));
    assert!(said(&h, "ロック中"));
    staff_login_wrong_then_right(&mut h);
}

#[test]
fn a_laptop_waiting_for_its_manifest_goes_back_to_its_request() {
    let tmp = tempfile::tempdir().unwrap();
    let laptop = Folder::new(tmp.path().join("laptop"));
    let req = enrolment::request(&laptop, LAPTOP_PASS, "本部 端末").unwrap();
    let mut h = harness(laptop.clone());
    assert!(h.state().start.unlocking());
    fill(&mut h, "この端末のパスフレーズ", LAPTOP_PASS);
    click(&mut h, "開く");
    settle_work(&mut h);
    let shown = h
        .state()
        .start
        .enrolment()
        .and_then(|e| e.request())
        .cloned();
    assert_eq!(shown, Some(req.clone()), "not the same key's request");
    assert!(said(&h, &req.fingerprint));
    assert!(said(&h, "マニフェストを読み込む"));
}

#[test]
fn a_fresh_laptop_sends_its_request_over_the_lan_and_installs_the_manifest_that_comes_back() {
    let tmp = tempfile::tempdir().unwrap();
    let admin = deployment(tmp.path(), "三条市 訓練");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut server = rt
        .block_on(Server::start(
            admin.folder.clone(),
            ServeConfig {
                bind: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                mdns: false,
                poll: Duration::from_millis(50),
            },
        ))
        .unwrap();
    let addr = server.addrs().into_iter().next().unwrap().to_string();
    let laptop = Folder::new(tmp.path().join("laptop"));
    let mut h = harness(laptop.clone());
    let req = make_request(&mut h, "第一小学校 受付3");

    // A malformed address is said and nothing is sent.
    let to = "管理者の端末（lan で自動検出、または 管理者ID@IPアドレス:ポート）";
    fill(&mut h, to, "nowhere");
    click(&mut h, "LANで送る");
    assert!(said(&h, "管理者の端末の指定が正しくありません"));
    assert!(!h.state().start.enrolment().unwrap().sending());

    fill(&mut h, to, &addr);
    click(&mut h, "LANで送る");
    wait_for(
        &mut h,
        "the administrator's side to hold the request",
        |h| said(h, "承認を待っています"),
    );
    let event = rt
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(10), server.next_event()).await
        })
        .unwrap();
    let Some(ServeEvent::Received {
        file, fingerprint, ..
    }) = event
    else {
        panic!("the service did not report the request: {event:?}");
    };
    assert_eq!(fingerprint, req.fingerprint);
    let stored = Request::parse(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(stored, req);
    let s1 = SiteId::new("S1").unwrap();
    admin
        .folder
        .approve(
            ADMIN_PASS,
            &stored,
            &req.fingerprint,
            s1,
            kazashi_sync::Role::Station,
        )
        .unwrap();
    server.reread();
    wait_for(&mut h, "the manifest over the LAN", |h| {
        h.state().start.enrolment().is_some_and(|e| e.received())
    });
    assert!(said(&h, "端末登録ファイルを受け取りました"));
    assert_eq!(
        installed_manifest(&laptop),
        None,
        "installed before the check"
    );

    // What came over the LAN is checked like a file: a wrong fingerprint installs nothing.
    let nowhere = tmp.path().join("no-such-manifest.kzm");
    try_install(&mut h, &nowhere, "1111 2222 3333 4444 5555 6666 7777");
    assert!(said(&h, "入力した指紋の管理者の鍵で署名されていません"));
    assert_eq!(installed_manifest(&laptop), None);

    copy_roster(&admin, &laptop);
    fill(
        &mut h,
        "名簿ストアのパスフレーズ（この端末と同じなら空欄）",
        ROSTER_PASS,
    );
    try_install(&mut h, &nowhere, &admin.fingerprint);
    settle_work(&mut h);
    assert_eq!(
        installed_manifest(&laptop),
        Some(std::fs::read(admin.folder.manifest_path()).unwrap())
    );
    let station = h
        .state_mut()
        .start
        .station()
        .expect("no station after enrolment");
    assert_eq!(station.host().with(|n| n.station().site()), s1);
    rt.block_on(server.shutdown());
}

#[test]
fn a_laptop_enrolled_without_the_roster_gets_it_from_another_laptop_and_opens() {
    use kazashi_node::mesh::{Mesh, MeshConfig};
    let tmp = tempfile::tempdir().unwrap();
    let admin = deployment(tmp.path(), "三条市 訓練");
    // Two laptops ask and are approved (A at S1, B at S2); both install the latest manifest.
    let a = Folder::new(tmp.path().join("a"));
    let b = Folder::new(tmp.path().join("b"));
    for (folder, site) in [(&a, "S1"), (&b, "S2")] {
        let req = enrolment::request(folder, LAPTOP_PASS, site).unwrap();
        let s = SiteId::new(site).unwrap();
        admin
            .folder
            .approve(
                ADMIN_PASS,
                &req,
                &req.fingerprint,
                s,
                kazashi_sync::Role::Station,
            )
            .unwrap();
    }
    let manifest = std::fs::read(admin.folder.manifest_path()).unwrap();
    for folder in [&a, &b] {
        enrolment::install(
            folder,
            LAPTOP_PASS,
            &manifest,
            None,
            Some(&admin.fingerprint),
        )
        .unwrap();
    }
    // A has the roster store and runs in the mesh on loopback; B has none.
    copy_roster(&admin, &a);
    let (node_a, _) =
        kazashi_node::enrolled::open(&a, LAPTOP_PASS, ROSTER_PASS, kazashi_node::SystemClock)
            .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mesh = rt
        .block_on(Mesh::start(
            node_a,
            MeshConfig {
                bind: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                mdns: false,
                ..MeshConfig::default()
            },
        ))
        .unwrap();
    let at_a = mesh.addrs().into_iter().next().unwrap();

    let mut h = harness(b.clone());
    fill(&mut h, "この端末のパスフレーズ", LAPTOP_PASS);
    fill(
        &mut h,
        "名簿ストアのパスフレーズ（同じなら空欄）",
        ROSTER_PASS,
    );
    click(&mut h, "開く");
    settle_work(&mut h);
    assert!(
        said(&h, "名簿ストアがありません"),
        "the missing roster is not said"
    );
    assert!(h.state().start.unlocking());

    // A malformed address is said, and the passphrases typed stay.
    let peers = "名簿を持つ端末（IPアドレス:ポート、複数は空白で区切る）";
    fill(&mut h, "この端末のパスフレーズ", LAPTOP_PASS);
    fill(
        &mut h,
        "名簿ストアのパスフレーズ（同じなら空欄）",
        ROSTER_PASS,
    );
    fill(&mut h, peers, "not-an-address");
    click(&mut h, "名簿を受け取る");
    assert!(said(&h, "端末のアドレスが正しくありません"));
    assert!(!b.roster_path().exists());

    fill(&mut h, peers, &at_a.addr.to_string());
    click(&mut h, "名簿を受け取る");
    settle_work(&mut h);
    let station = h
        .state_mut()
        .start
        .station()
        .expect("the station did not open with the roster from A");
    assert_eq!(
        station.host().with(|n| n.station().site()),
        SiteId::new("S2").unwrap()
    );
    let roster_len = station
        .host()
        .with(|n| n.station().roster().entries().len());
    assert!(roster_len > 0);
    // Written under the roster passphrase typed, with the pinned hash.
    let db = RosterDb::open(&b.roster_path(), ROSTER_PASS).unwrap();
    let pinned = kazashi_sync::SignedManifest::decode(&manifest)
        .unwrap()
        .deployment()
        .roster_hash();
    assert_eq!(db.hash(), pinned);
    rt.block_on(mesh.shutdown());
}
