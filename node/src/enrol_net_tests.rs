//! The enrolment protocol: its messages under every bound, the serving side's rules on a real
//! administrator's folder, and the whole exchange over real UDP on loopback.

use super::*;
use crate::deployment_admin::{Operation, parse_sites_csv};
use crate::enrolled::Folder;
use crate::enrolment::{self, fingerprint};
use kazashi_sync::Role;

const ADMIN_PASS: &str = "administrator passphrase";
const LAPTOP_PASS: &str = "laptop passphrase";

fn admin_folder(dir: &std::path::Path) -> AdminFolder {
    let admin = AdminFolder::new(dir.join("admin"));
    let sites = parse_sites_csv("code,name,kind,capacity\nS1,第一小学校,shelter,100\n").unwrap();
    admin
        .init("かざし市 テスト", Operation::Shelters, sites, ADMIN_PASS)
        .unwrap();
    admin
}

fn a_request(dir: &std::path::Path, name: &str) -> (Folder, Request) {
    let folder = Folder::new(dir.join(name));
    let req = enrolment::request(&folder, LAPTOP_PASS, "受付1").unwrap();
    (folder, req)
}

#[test]
fn messages_round_trip_and_every_bound_is_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, req) = a_request(tmp.path(), "laptop");
    for m in [
        Message::Request(req.clone()),
        Message::Pending,
        Message::Manifest(vec![7; 1000]),
        Message::Refused("revoked".into()),
    ] {
        let frame = m.encode().unwrap();
        let len = frame_len(frame[..4].try_into().unwrap(), MAX_MANIFEST + 1).unwrap();
        assert_eq!(len, frame.len() - 4);
        assert_eq!(Message::decode(frame[4], &frame[5..]).unwrap(), m);
    }
    // Unknown tags, bodies over their limit, a pending message with a body, junk JSON.
    assert!(matches!(
        Message::decode(9, b""),
        Err(EnrolNetError::UnknownTag(9))
    ));
    assert!(matches!(
        Message::decode(TAG_REQUEST, &vec![b' '; MAX_REQUEST + 1]),
        Err(EnrolNetError::TooLarge(_))
    ));
    assert!(matches!(
        Message::decode(TAG_MANIFEST, &vec![0; MAX_MANIFEST + 1]),
        Err(EnrolNetError::TooLarge(_))
    ));
    assert!(matches!(
        Message::Manifest(vec![0; MAX_MANIFEST + 1]).encode(),
        Err(EnrolNetError::TooLarge(_))
    ));
    assert!(Message::decode(TAG_PENDING, b"x").is_err());
    assert!(matches!(
        Message::decode(TAG_REQUEST, b"{\"format\": 1}"),
        Err(EnrolNetError::Malformed(_))
    ));
    assert!(Message::decode(TAG_REFUSED, &[0xff, 0xfe]).is_err());
    // A long reason is cut on a character boundary, not refused.
    let long = "拒".repeat(400);
    let frame = Message::Refused(long).encode().unwrap();
    assert!(frame.len() <= MAX_REFUSAL + 5);
    assert!(Message::decode(frame[4], &frame[5..]).is_ok());
    // Headers: empty, too long.
    assert!(frame_len([0; 4], 10).is_err());
    assert!(frame_len(11u32.to_be_bytes(), 10).is_err());
    // Any bytes at all: an answer, never a panic.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for n in 0..2000usize {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let body: Vec<u8> = (0..n % 300).map(|i| (x >> (i % 56)) as u8).collect();
        let _ = Message::decode((x % 7) as u8, &body);
    }
}

#[test]
fn the_serving_side_keeps_requests_only_from_their_own_key() {
    let tmp = tempfile::tempdir().unwrap();
    let admin = admin_folder(tmp.path());
    let (_, req) = a_request(tmp.path(), "laptop");
    let device = req.verify().unwrap();
    let other = DeviceKey::from_seed([3; 32]).device_id();
    assert_eq!(admit(&req, &device).unwrap(), device);
    // A copied request sent by another laptop, or one whose label was changed.
    assert!(admit(&req, &other).unwrap_err().contains("another key"));
    let mut forged = req.clone();
    forged.label = "本部".into();
    assert!(admit(&forged, &device).is_err());

    let file = store_request(&admin, &req).unwrap();
    assert_eq!(
        file,
        admin
            .dir
            .join(REQUESTS_DIR)
            .join(format!("{}.json", req.device))
    );
    assert_eq!(Request::parse(&std::fs::read(&file).unwrap()).unwrap(), req);
    // The same device again replaces its file; the folder holds at most MAX_STORED.
    store_request(&admin, &req).unwrap();
    for i in 1..MAX_STORED {
        std::fs::write(admin.dir.join(REQUESTS_DIR).join(format!("{i}.json")), "{}").unwrap();
    }
    store_request(&admin, &req).unwrap();
    let (_, second) = a_request(tmp.path(), "second");
    assert!(matches!(
        store_request(&admin, &second),
        Err(EnrolNetError::TooManyStored(..))
    ));

    // What a waiting laptop is told: wait, the manifest once listed, a refusal once revoked.
    assert_eq!(answer(&admin.current().unwrap(), &device), Answer::Wait);
    let fp = fingerprint(&device);
    let s1 = kazashi_domain::SiteId::new("S1").unwrap();
    let v2 = admin
        .approve(ADMIN_PASS, &req, &fp, s1, Role::Station)
        .unwrap();
    assert_eq!(
        answer(&v2, &device),
        Answer::Send(std::fs::read(admin.manifest_path()).unwrap())
    );
    let v3 = admin.revoke(ADMIN_PASS, &req.device, 0).unwrap();
    assert!(matches!(answer(&v3, &device), Answer::Refuse(_)));
}

#[test]
fn addresses_are_read_or_refused() {
    let id = DeviceKey::from_seed([1; 32]).device_id();
    assert_eq!(
        format!("{}@127.0.0.1:47471", id.to_hex())
            .parse::<Target>()
            .unwrap(),
        Target::Addr {
            id,
            addr: "127.0.0.1:47471".parse().unwrap()
        }
    );
    assert_eq!("LAN".parse::<Target>().unwrap(), Target::Lan { near: None });
    assert_eq!(
        "192.168.1.5:47471".parse::<Target>().unwrap(),
        Target::Lan {
            near: Some("192.168.1.5:47471".parse().unwrap())
        }
    );
    for bad in ["", "admin", "12@1.2.3.4:5", "1.2.3.4"] {
        assert!(bad.parse::<Target>().is_err(), "{bad}");
    }
}

fn loopback() -> ServeConfig {
    ServeConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        mdns: false,
        poll: Duration::from_millis(50),
    }
}

/// Junk on the enrolment ALPN from a raw endpoint: the connection is closed.
async fn send_junk(to: &Target, junk: &[u8]) {
    let Target::Addr { id, addr } = to else {
        panic!("not an address")
    };
    let secret = SecretKey::from_bytes(&[42; 32]);
    let ep = endpoint(secret, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let conn = ep
        .connect(
            EndpointAddr::new(PublicKey::from_bytes(&id.0).unwrap()).with_ip_addr(*addr),
            ALPN,
        )
        .await
        .unwrap();
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    let _ = send.write_all(junk).await;
    let _ = send.finish();
    let closed = tokio::time::timeout(Duration::from_secs(15), conn.closed()).await;
    assert!(closed.is_ok(), "the server kept a junk connection open");
    ep.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_laptop_gets_its_manifest_over_udp_once_approved() {
    let tmp = tempfile::tempdir().unwrap();
    let admin = admin_folder(tmp.path());
    let mut server = Server::start(admin.clone(), loopback()).await.unwrap();
    let addr = server.addrs().into_iter().next().unwrap();
    let to: Target = addr.to_string().parse().unwrap();

    // Junk first: too long, an unknown tag, a manifest where a request belongs. Each is
    // refused and the service goes on.
    send_junk(&to, &u32::MAX.to_be_bytes()).await;
    send_junk(&to, &[0, 0, 0, 2, 9, 9]).await;
    send_junk(&to, &Message::Manifest(vec![1, 2, 3]).encode().unwrap()).await;
    for _ in 0..3 {
        let ev = tokio::time::timeout(Duration::from_secs(10), server.next_event())
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(ev, ServeEvent::Refused { .. }), "{ev:?}");
    }

    // A request copied from another laptop: refused, nothing stored.
    let (folder, req) = a_request(tmp.path(), "laptop");
    let thief = DeviceKey::from_seed([5; 32]);
    let stolen = send_request(&thief, &to, &req, Duration::from_secs(10), |_| {}).await;
    assert!(
        matches!(&stolen, Err(EnrolNetError::Refused(w)) if w.contains("another key")),
        "{stolen:?}"
    );
    assert!(
        !admin
            .dir
            .join(REQUESTS_DIR)
            .join(format!("{}.json", req.device))
            .exists()
    );
    let ev = server.next_event().await.unwrap();
    assert!(matches!(ev, ServeEvent::Refused { .. }), "{ev:?}");

    // The real laptop: its request arrives and is kept; it waits; approval sends the manifest.
    let key = device_key(&folder, LAPTOP_PASS).unwrap();
    let (r2, t2) = (req.clone(), to.clone());
    let (waits_tx, mut waits) = mpsc::unbounded_channel();
    let laptop = tokio::spawn(async move {
        send_request(&key, &t2, &r2, Duration::from_secs(60), move |p| {
            let _ = waits_tx.send(p);
        })
        .await
    });
    let ServeEvent::Received {
        device,
        fingerprint: fp,
        peer,
        file,
        ..
    } = server.next_event().await.unwrap()
    else {
        panic!("no request")
    };
    assert_eq!(device, req.device);
    assert_eq!(fp, req.fingerprint);
    assert!(peer.is_some_and(|p| p.ip().is_loopback()), "{peer:?}");
    assert_eq!(
        waits.recv().await,
        Some(Progress::Connected(Some(addr.addr)))
    );
    assert_eq!(waits.recv().await, Some(Progress::Waiting));
    assert!(!laptop.is_finished());
    let stored = Request::parse(&std::fs::read(&file).unwrap()).unwrap();
    let s1 = kazashi_domain::SiteId::new("S1").unwrap();
    let approved = tokio::task::spawn_blocking({
        let admin = admin.clone();
        move || admin.approve(ADMIN_PASS, &stored, &fp, s1, Role::Station)
    })
    .await
    .unwrap()
    .unwrap();
    let bytes = tokio::time::timeout(Duration::from_secs(10), laptop)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(bytes, std::fs::read(admin.manifest_path()).unwrap());
    assert_eq!(
        server.next_event().await,
        Some(ServeEvent::Sent {
            device: req.device.clone(),
            version: approved.version()
        })
    );
    let admin_fp = fingerprint(&approved.manifest().admin);
    let done = enrolment::install(&folder, LAPTOP_PASS, &bytes, None, Some(&admin_fp)).unwrap();
    assert_eq!(done.members.version(), 2);

    // Asked again once listed: the manifest at once.
    let key = device_key(&folder, LAPTOP_PASS).unwrap();
    let again = send_request(&key, &to, &req, Duration::from_secs(10), |_| {})
        .await
        .unwrap();
    assert_eq!(again, bytes);

    // Nobody serving there: a clear error within the time given.
    server.shutdown().await;
    let t = Instant::now();
    let gone = send_request(&key, &to, &req, Duration::from_secs(2), |_| {}).await;
    assert!(
        matches!(
            gone,
            Err(EnrolNetError::NoAnswer(2) | EnrolNetError::Connect { .. })
        ),
        "{gone:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

/// A service that answers every request with `reply`, whoever asks.
#[derive(Debug, Clone)]
struct Liar {
    reply: Vec<u8>,
}

impl ProtocolHandler for Liar {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let (mut send, mut recv) = conn.accept_bi().await?;
        if read_msg(&mut recv, MAX_REQUEST + 1).await.is_ok() {
            let _ = write_msg(&mut send, &Message::Manifest(self.reply.clone())).await;
            let _ = send.finish();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await;
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_from_a_dishonest_service_installs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let admin = admin_folder(tmp.path());
    let (folder, req) = a_request(tmp.path(), "laptop");
    let s1 = kazashi_domain::SiteId::new("S1").unwrap();
    let admin_fp = fingerprint(&admin.current().unwrap().manifest().admin);
    // Manifests the laptop must refuse: one not listing it, one listing it but altered, and
    // one listing it signed by another deployment key.
    let unlisted = std::fs::read(admin.manifest_path()).unwrap();
    let other = AdminFolder::new(tmp.path().join("other"));
    let sites = parse_sites_csv("code,name,kind,capacity\nS1,第一小学校,shelter,100\n").unwrap();
    other
        .init("よそ市", Operation::Shelters, sites, ADMIN_PASS)
        .unwrap();
    other
        .approve(ADMIN_PASS, &req, &req.fingerprint, s1, Role::Station)
        .unwrap();
    let foreign = std::fs::read(other.manifest_path()).unwrap();
    admin
        .approve(ADMIN_PASS, &req, &req.fingerprint, s1, Role::Station)
        .unwrap();
    let mut tampered = std::fs::read(admin.manifest_path()).unwrap();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 1;
    let key = device_key(&folder, LAPTOP_PASS).unwrap();
    type Check = fn(&EnrolError) -> bool;
    let cases: [(Vec<u8>, Check); 3] = [
        (unlisted, |e| matches!(e, EnrolError::NotListed(_))),
        (tampered, |e| matches!(e, EnrolError::Manifest(_))),
        (foreign, |e| matches!(e, EnrolError::AdminFingerprint(_))),
    ];
    for (reply, refusal) in cases {
        let ep = endpoint(
            SecretKey::from_bytes(&[9; 32]),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        )
        .await
        .unwrap();
        let router = Router::builder(ep)
            .accept(
                ALPN,
                Liar {
                    reply: reply.clone(),
                },
            )
            .spawn();
        let to = Target::Addr {
            id: DeviceId(*router.endpoint().id().as_bytes()),
            addr: router.endpoint().bound_sockets()[0],
        };
        let got = send_request(&key, &to, &req, Duration::from_secs(10), |_| {})
            .await
            .unwrap();
        assert_eq!(got, reply);
        let refused =
            enrolment::install(&folder, LAPTOP_PASS, &got, None, Some(&admin_fp)).unwrap_err();
        assert!(refusal(&refused), "{refused:?}");
        let store = Store::open(&folder.store_path(), LAPTOP_PASS).unwrap();
        assert_eq!(store.manifest().unwrap(), None);
        router.shutdown().await.unwrap();
    }
}
