//! `kazashi-lab bench enrol [--scale RUNS]`: a fresh laptop enrolled over the LAN, on loopback,
//! key derivation included (every store and key file at the product's standard Argon2id cost),
//! RUNS times (1 to 20; 5 otherwise). Each run, timed from the enrolment request to the laptop
//! open at its site:
//!
//! 1. `enrolment::request`: the device key and a new store (as `kazashi enrol`), then the key
//!    read back from it for the connection (as `kazashi enrol --send`);
//! 2. `enrol_net::send_request` to the administrator's `enrol_net::Server` (in this process,
//!    on 127.0.0.1, re-reading the folder every 250 ms as `serve-enrol` does);
//! 3. on the service's report, `AdminFolder::approve` of the request file it kept, with the
//!    fingerprint (the code `kazashi deployment approve` runs, deployment key unsealed);
//! 4. the manifest back, `enrolment::install` with the deployment key's fingerprint;
//! 5. `enrolled::open` as the station opens it: the store, the roster store checked against
//!    the pinned hash, the cold start.
//!
//! The roster store is in the laptop's folder before the clock starts (it travels apart).
//! Metrics: `enrol_s` (median), `enrol_s_max`, and the medians of the phases
//! (`request_ms`, `approved_ms`: from the request sent to the manifest received,
//! `install_ms`, `open_ms`). Goal: `enrol_s` ≤ 5 s.

use crate::bench::{emit, median};
use crate::bench_log::TempDir;
use kazashi_node::deployment_admin::{AdminFolder, Operation, parse_sites_csv};
use kazashi_node::enrol_net::{self, ServeConfig, ServeEvent, Server, Target};
use kazashi_node::enrolled::{self, Folder};
use kazashi_node::enrolment::{self, Request};
use kazashi_node::roster_csv::{Mapping, ReadOptions, read, write};
use kazashi_node::roster_db::{RosterDb, sha256};
use kazashi_node::{KdfParams, SystemClock};
use kazashi_sync::Role;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

const ADMIN_PASS: &str = "bench administrator passphrase";
const LAPTOP_PASS: &str = "bench laptop passphrase";
const ROSTER_PASS: &str = "bench roster passphrase";
const ROSTER_FILES: [&str; 3] = ["roster.db", "roster.db.text", "roster.db.kdf"];

pub fn run(args: &crate::bench::BenchArgs) -> Result<(), String> {
    let runs = if (1..=20).contains(&args.scale) {
        args.scale
    } else {
        5
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let dir = TempDir::for_bench("enrol")?;
    let result = rt.block_on(enrol(args, runs, &dir.0));
    rt.shutdown_timeout(Duration::from_secs(2));
    result
}

/// The administrator's folder with a pinned roster (at the standard cost), and the roster.
fn setup(dir: &Path, seed: u64) -> Result<AdminFolder, String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let admin = AdminFolder::new(dir.join("admin"));
    let sites = parse_sites_csv("code,name,kind,capacity\nS1,第一小学校,shelter,300\n")
        .map_err(|x| e(&x))?;
    admin
        .init("かざし市 ベンチ", Operation::Shelters, sites, ADMIN_PASS)
        .map_err(|x| e(&x))?;
    let m = crate::bench::town_of_people(1000, seed)?;
    let csv = write(&m.roster).into_bytes();
    let opts = ReadOptions {
        kind: m.roster.kind(),
        mapping: Mapping::default(),
        today: m.today,
        encoding: None,
    };
    let imported = read(&csv, &opts, &mut |_, _| {})
        .map_err(|l| format!("the bench roster did not lint: {} errors", l.error_count()))?;
    let db = RosterDb::create(
        &admin.dir.join("roster.db"),
        ROSTER_PASS,
        KdfParams::STANDARD,
        (&imported).into(),
        sha256(&csv),
        &mut |_, _| {},
    )
    .map_err(|x| e(&x))?;
    admin.pin_roster(ADMIN_PASS, db.hash()).map_err(|x| e(&x))?;
    Ok(admin)
}

struct Phases {
    total: f64,
    request: f64,
    approved: f64,
    install: f64,
    open: f64,
}

async fn enrol(args: &crate::bench::BenchArgs, runs: usize, dir: &Path) -> Result<(), String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let admin = {
        let dir = dir.to_path_buf();
        let seed = args.seed;
        tokio::task::spawn_blocking(move || setup(&dir, seed))
            .await
            .map_err(|x| e(&x))??
    };
    let admin_fp = enrolment::fingerprint(&admin.current().map_err(|x| e(&x))?.manifest().admin);
    let mut server = Server::start(
        admin.clone(),
        ServeConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            mdns: false,
            ..ServeConfig::default()
        },
    )
    .await
    .map_err(|x| e(&x))?;
    let to: Target = server
        .addrs()
        .first()
        .ok_or("the service has no address")?
        .to_string()
        .parse()
        .map_err(|x| e(&x))?;
    let mut all = Vec::new();
    for run in 0..runs {
        let folder = Folder::new(dir.join(format!("laptop{run}")));
        std::fs::create_dir_all(&folder.dir).map_err(|x| e(&x))?;
        for f in ROSTER_FILES {
            std::fs::copy(admin.dir.join(f), folder.dir.join(f)).map_err(|x| e(&x))?;
        }
        all.push(one(&mut server, &admin, &folder, &to, &admin_fp, run).await?);
    }
    server.shutdown().await;
    let med = |f: fn(&Phases) -> f64| median(all.iter().map(f).collect());
    emit("enrol", "enrol_s", med(|p| p.total), "s", runs);
    let max = all.iter().map(|p| p.total).fold(0.0, f64::max);
    emit("enrol", "enrol_s_max", max, "s", runs);
    emit("enrol", "request_ms", med(|p| p.request), "ms", runs);
    emit("enrol", "approved_ms", med(|p| p.approved), "ms", runs);
    emit("enrol", "install_ms", med(|p| p.install), "ms", runs);
    emit("enrol", "open_ms", med(|p| p.open), "ms", runs);
    Ok(())
}

async fn one(
    server: &mut Server,
    admin: &AdminFolder,
    folder: &Folder,
    to: &Target,
    admin_fp: &str,
    run: usize,
) -> Result<Phases, String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    let t0 = Instant::now();
    // 1. The request and the device key, as `kazashi enrol --send` makes them.
    let (req, key) = {
        let folder = folder.clone();
        let label = format!("受付{run}");
        tokio::task::spawn_blocking(move || {
            let req = enrolment::request(&folder, LAPTOP_PASS, &label)?;
            let key = enrol_net::device_key(&folder, LAPTOP_PASS)?;
            Ok::<_, enrolment::EnrolError>((req, key))
        })
        .await
        .map_err(|x| e(&x))?
        .map_err(|x| e(&x))?
    };
    let request = ms(t0);
    // 2. Sent; 3. approved on the service's report.
    let t1 = Instant::now();
    let laptop = {
        let (to, req) = (to.clone(), req.clone());
        tokio::spawn(async move {
            enrol_net::send_request(&key, &to, &req, Duration::from_secs(60), |_| {}).await
        })
    };
    let file = loop {
        match tokio::time::timeout(Duration::from_secs(30), server.next_event()).await {
            Ok(Some(ServeEvent::Received { file, device, .. })) if device == req.device => {
                break file;
            }
            Ok(Some(ServeEvent::Refused { why, .. })) => return Err(format!("refused: {why}")),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return Err("the request never reached the service".into()),
        }
    };
    {
        let admin = admin.clone();
        tokio::task::spawn_blocking(move || {
            let stored = Request::parse(&std::fs::read(&file).map_err(|x| x.to_string())?)
                .map_err(|x| x.to_string())?;
            let site = kazashi_domain::SiteId::new("S1").map_err(|x| x.to_string())?;
            let fp = stored.fingerprint.clone();
            admin
                .approve(ADMIN_PASS, &stored, &fp, site, Role::Station)
                .map_err(|x| x.to_string())
        })
        .await
        .map_err(|x| e(&x))??;
    }
    let bytes = laptop.await.map_err(|x| e(&x))?.map_err(|x| e(&x))?;
    let approved = ms(t1);
    // 4. Installed; 5. opened as the station opens it.
    let t2 = Instant::now();
    let folder = folder.clone();
    let admin_fp = admin_fp.to_owned();
    let (install, open) = tokio::task::spawn_blocking(move || {
        enrolment::install(&folder, LAPTOP_PASS, &bytes, None, Some(&admin_fp))
            .map_err(|x| x.to_string())?;
        let install = ms(t2);
        let t3 = Instant::now();
        let (node, _) = enrolled::open(&folder, LAPTOP_PASS, ROSTER_PASS, SystemClock)
            .map_err(|x| format!("{:#}", anyhow::Error::from(x)))?;
        if node.station().site().as_str() != "S1" {
            return Err("the laptop opened at another site".to_owned());
        }
        Ok::<_, String>((install, ms(t3)))
    })
    .await
    .map_err(|x| e(&x))??;
    Ok(Phases {
        total: t0.elapsed().as_secs_f64(),
        request,
        approved,
        install,
        open,
    })
}
