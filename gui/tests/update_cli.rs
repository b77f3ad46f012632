//! Signed updates with the product binary: a deployment, a laptop enrolled into it, real .deb
//! files made by `dpkg-deb`, `kazashi update sign` with the deployment key, and `verify` and
//! `apply` on the laptop's folder. Another deployment's key, a flipped byte, a cut file, an
//! older version, a laptop not enrolled: each refused, the laptop's folder unchanged, dpkg
//! never run. `apply` runs a recording stand-in for dpkg (`KAZASHI_DPKG`): it gets a private
//! copy of exactly the signed bytes. The installed version comes from a stand-in for
//! `dpkg-query` (`KAZASHI_DPKG_QUERY`): 0.5.0-1.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{ADMIN_PASS, LAPTOP_PASS, command, files, ok, refused, s};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Output;

const INSTALLED: &str = "0.5.0-1";

struct World {
    tmp: tempfile::TempDir,
    dpkg_query: PathBuf,
    dpkg: PathBuf,
    record: PathBuf,
}

impl World {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dpkg_query = script(
            tmp.path(),
            "dpkg-query",
            &format!("#!/bin/sh\nprintf '%s' '{INSTALLED}'\n"),
        );
        let record = tmp.path().join("record");
        std::fs::create_dir_all(&record).unwrap();
        let dpkg = script(
            tmp.path(),
            "dpkg",
            &format!(
                "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{r}/args'\ncp \"$2\" '{r}/got.deb'\n",
                r = record.display()
            ),
        );
        Self {
            tmp,
            dpkg_query,
            dpkg,
            record,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }

    /// `kazashi args…` with the dpkg stand-ins and `env`.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = command(args, env);
        c.env("KAZASHI_DPKG_QUERY", &self.dpkg_query)
            .env("KAZASHI_DPKG", &self.dpkg);
        c.output().unwrap()
    }

    /// A deployment in `name`; its deployment key's fingerprint.
    fn deployment(&self, name: &str) -> (String, String) {
        let sites = self.path("sites.csv");
        std::fs::write(
            &sites,
            "code,name,kind,capacity,shelter_type,precincts\nS1,第一小学校,shelter,100,1,\n",
        )
        .unwrap();
        let dir = s(&self.path(name));
        let init = ok(&self.run(
            &[
                "deployment",
                "init",
                "--dir",
                &dir,
                "--municipality",
                "かざし市",
                "--shelters",
                "--sites",
                &s(&sites),
            ],
            &[("KAZASHI_ADMIN_PASSPHRASE", ADMIN_PASS)],
        ));
        (dir, init["admin_fingerprint"].as_str().unwrap().to_owned())
    }

    /// A laptop folder `name` enrolled into the deployment at `admin`.
    fn laptop(&self, name: &str, admin: &str, admin_fp: &str) -> String {
        let l = s(&self.path(name));
        let env = [("KAZASHI_PASSPHRASE", LAPTOP_PASS)];
        let req = ok(&self.run(&["enrol", "--dir", &l, "--label", "受付1"], &env));
        ok(&self.run(
            &[
                "deployment",
                "approve",
                "--dir",
                admin,
                "--request",
                &format!("{l}/enrol-request.json"),
                "--fingerprint",
                req["fingerprint"].as_str().unwrap(),
                "--site",
                "S1",
            ],
            &[("KAZASHI_ADMIN_PASSPHRASE", ADMIN_PASS)],
        ));
        ok(&self.run(
            &[
                "enrol",
                "--dir",
                &l,
                "--install",
                &format!("{admin}/manifest.kzm"),
                "--admin-fingerprint",
                admin_fp,
            ],
            &env,
        ));
        l
    }

    /// A real .deb of `package` at `version`, made by dpkg-deb.
    fn deb(&self, package: &str, version: &str) -> PathBuf {
        let root = self.path(&format!("build-{package}-{version}"));
        std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
        std::fs::create_dir_all(root.join("usr/share/doc/kazashi-update-test")).unwrap();
        std::fs::write(
            root.join("DEBIAN/control"),
            format!(
                "Package: {package}\nVersion: {version}\nArchitecture: all\n\
                 Maintainer: test <test@invalid>\nDescription: a test package\n"
            ),
        )
        .unwrap();
        std::fs::write(
            root.join("usr/share/doc/kazashi-update-test/README"),
            format!("{package} {version}\n"),
        )
        .unwrap();
        let out = self.path(&format!("{package}_{version}_all.deb"));
        let built = std::process::Command::new("dpkg-deb")
            .args(["--root-owner-group", "--build"])
            .arg(&root)
            .arg(&out)
            .output()
            .expect("dpkg-deb is needed to build the test packages");
        assert!(built.status.success(), "{built:?}");
        out
    }

    fn sign(&self, admin: &str, deb: &Path, out: &Path, pass: &str) -> Output {
        self.run(
            &[
                "update",
                "sign",
                "--dir",
                admin,
                "--deb",
                &s(deb),
                "--out",
                &s(out),
            ],
            &[("KAZASHI_ADMIN_PASSPHRASE", pass)],
        )
    }

    fn on_laptop(&self, verb: &str, laptop: &str, file: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["update", verb, &s(file), "--dir", laptop]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        args.extend(extra.iter().map(|e| (*e).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&args, &[("KAZASHI_PASSPHRASE", LAPTOP_PASS)])
    }

    fn dpkg_ran(&self) -> bool {
        self.record.join("args").exists()
    }
}

fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// Every file of a folder and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files(dir)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(dir.join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

#[test]
fn only_the_deployments_signed_newer_package_is_verified_and_installed() {
    let w = World::new();
    let (admin, admin_fp) = w.deployment("admin");
    let (other, _) = w.deployment("other-admin");
    let laptop = w.laptop("laptop", &admin, &admin_fp);
    let lp = PathBuf::from(&laptop);
    let usb = w.path("usb");
    let update_dir = usb.join("kazashi").join("update");

    let deb = w.deb("kazashi", "0.6.0-1");
    let deb_bytes = std::fs::read(&deb).unwrap();

    // The administrator signs: not with a wrong passphrase, not another package.
    refused(
        &w.sign(&admin, &deb, &update_dir, "not the passphrase"),
        "wrong passphrase",
    );
    assert!(files(&update_dir).is_empty());
    refused(
        &w.sign(
            &admin,
            &w.deb("openssh-server", "9.9-1"),
            &update_dir,
            ADMIN_PASS,
        ),
        "not kazashi",
    );
    let not_a_deb = w.path("not-a.deb");
    std::fs::write(&not_a_deb, b"plain bytes").unwrap();
    refused(
        &w.sign(&admin, &not_a_deb, &update_dir, ADMIN_PASS),
        "not a Debian package",
    );
    assert!(files(&update_dir).is_empty());
    let signed = ok(&w.sign(&admin, &deb, &update_dir, ADMIN_PASS));
    let good = update_dir.join("kazashi-0.6.0-1.kzu");
    assert_eq!(signed["file"], s(&good));
    assert_eq!(signed["version"], "0.6.0-1");
    assert_eq!(signed["admin_fingerprint"], admin_fp.as_str());
    let good_bytes = std::fs::read(&good).unwrap();

    // The laptop verifies it against the key pinned at enrolment.
    let v = ok(&w.on_laptop("verify", &laptop, &good, &[]));
    assert_eq!(v["verified"], true);
    assert_eq!(v["version"], "0.6.0-1");
    assert_eq!(v["installed"], INSTALLED);
    assert_eq!(v["sha256"], signed["sha256"]);
    let before = snapshot(&lp);

    // Refusals, each changing nothing.
    let bad = w.path("bad");
    std::fs::create_dir_all(&bad).unwrap();
    // Another deployment's key.
    ok(&w.sign(&other, &deb, &bad.join("other.kzu"), ADMIN_PASS));
    // One flipped byte in the package, and one in the signature.
    let mut flipped = good_bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x20;
    std::fs::write(bad.join("flipped.kzu"), &flipped).unwrap();
    let mut sig = good_bytes.clone();
    let last = sig.len() - 1;
    sig[last] ^= 1;
    std::fs::write(bad.join("signature.kzu"), &sig).unwrap();
    // Truncated.
    std::fs::write(bad.join("cut.kzu"), &good_bytes[..good_bytes.len() - 10]).unwrap();
    std::fs::write(bad.join("empty.kzu"), b"").unwrap();
    // Older, and the installed version again.
    ok(&w.sign(&admin, &w.deb("kazashi", "0.4.0-1"), &bad, ADMIN_PASS));
    ok(&w.sign(&admin, &w.deb("kazashi", INSTALLED), &bad, ADMIN_PASS));
    let cases = [
        ("other.kzu", "another deployment"),
        ("flipped.kzu", "altered or damaged"),
        ("signature.kzu", "altered or damaged"),
        ("cut.kzu", "damaged one"),
        ("empty.kzu", "damaged one"),
        (
            "kazashi-0.4.0-1.kzu",
            "not newer than the installed 0.5.0-1",
        ),
        (
            "kazashi-0.5.0-1.kzu",
            "not newer than the installed 0.5.0-1",
        ),
    ];
    for (file, words) in cases {
        for verb in ["verify", "apply"] {
            refused(&w.on_laptop(verb, &laptop, &bad.join(file), &[]), words);
            assert!(!w.dpkg_ran(), "{verb} {file}: dpkg ran");
            assert_eq!(snapshot(&lp), before, "{verb} {file}: the folder changed");
        }
    }
    // A downgrade on purpose.
    let down = ok(&w.on_laptop(
        "verify",
        &laptop,
        &bad.join("kazashi-0.4.0-1.kzu"),
        &["--allow-downgrade"],
    ));
    assert_eq!(down["version"], "0.4.0-1");
    // A wrong laptop passphrase; a laptop not enrolled; one that asked but holds no manifest.
    refused(
        &w.run(
            &["update", "verify", &s(&good), "--dir", &laptop],
            &[("KAZASHI_PASSPHRASE", "not the passphrase")],
        ),
        "passphrase",
    );
    let fresh = w.path("fresh");
    refused(
        &w.on_laptop("verify", &s(&fresh), &good, &[]),
        "not enrolled",
    );
    assert!(!fresh.exists());
    let waiting = s(&w.path("waiting"));
    ok(&w.run(
        &["enrol", "--dir", &waiting, "--label", "受付2"],
        &[("KAZASHI_PASSPHRASE", LAPTOP_PASS)],
    ));
    refused(
        &w.on_laptop("apply", &waiting, &good, &[]),
        "holds no manifest",
    );
    assert!(!w.dpkg_ran());
    assert_eq!(snapshot(&lp), before);

    // A stick holding only refused files: nothing installed.
    refused(
        &w.on_laptop("apply", &laptop, &bad, &[]),
        "nothing installed",
    );
    assert!(!w.dpkg_ran());

    // A dry run checks all and installs nothing.
    let dry = ok(&w.on_laptop("apply", &laptop, &good, &["--dry-run"]));
    assert_eq!(dry["applied"], false);
    assert!(!w.dpkg_ran());

    // Apply from the stick's folder, beside a tampered newer file: the verified one goes to
    // dpkg, as a private copy of exactly the signed bytes, not a path on the stick.
    let newer_dir = w.path("newer");
    ok(&w.sign(&admin, &w.deb("kazashi", "0.9.0-1"), &newer_dir, ADMIN_PASS));
    let mut newer = std::fs::read(newer_dir.join("kazashi-0.9.0-1.kzu")).unwrap();
    let n = newer.len();
    newer[n / 2] ^= 1;
    std::fs::write(update_dir.join("kazashi-0.9.0-1.kzu"), &newer).unwrap();
    let applied = ok(&w.on_laptop("apply", &laptop, &usb, &[]));
    assert_eq!(applied["applied"], true);
    assert_eq!(applied["version"], "0.6.0-1");
    assert_eq!(applied["refused"].as_array().unwrap().len(), 1);
    let args = std::fs::read_to_string(w.record.join("args")).unwrap();
    let lines: Vec<&str> = args.lines().collect();
    assert_eq!(lines.len(), 2, "{args}");
    assert_eq!(lines[0], "-i");
    assert!(!lines[1].starts_with(&s(&usb)), "{args}");
    assert_eq!(std::fs::read(w.record.join("got.deb")).unwrap(), deb_bytes);
    // The private copy is removed afterwards.
    assert!(!Path::new(lines[1]).exists());
    assert_eq!(snapshot(&lp), before);
}

/// The folder's public pin of a laptop, as JSON.
fn folder_pin(laptop: &str) -> serde_json::Value {
    let path = Path::new(laptop).join("update-pin.json");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "the pin is public");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// A station whose passphrase exists only on its screen: the manifest's install writes the
/// deployment key into the folder as `update-pin.json`; root takes it on first use into its
/// own pin (`kazashi update pin`), refuses another deployment's pin changing nothing, and
/// `verify`/`apply --pin` check updates against it with no passphrase at all.
#[test]
fn root_trusts_the_pin_written_at_enrolment_and_updates_without_the_passphrase() {
    let w = World::new();
    let (admin, admin_fp) = w.deployment("admin");
    let (other, other_fp) = w.deployment("other-admin");
    let admin_show = ok(&w.run(
        &["deployment", "show", "--dir", &admin],
        &[("KAZASHI_ADMIN_PASSPHRASE", ADMIN_PASS)],
    ));

    // A laptop that only asked holds no pin; the manifest's install writes it.
    let laptop = s(&w.path("laptop"));
    let env = [("KAZASHI_PASSPHRASE", LAPTOP_PASS)];
    ok(&w.run(&["enrol", "--dir", &laptop, "--label", "受付1"], &env));
    assert!(!Path::new(&laptop).join("update-pin.json").exists());
    std::fs::remove_dir_all(&laptop).unwrap();
    let laptop = w.laptop("laptop", &admin, &admin_fp);
    let pin_json = folder_pin(&laptop);
    assert_eq!(pin_json["format"], "kazashi-update-pin-v1");
    assert_eq!(pin_json["admin_fingerprint"], admin_fp.as_str());
    assert_eq!(pin_json["deployment"], admin_show["deployment"]);

    // A laptop enrolled before the pin existed: installing its manifest again writes it.
    std::fs::remove_file(Path::new(&laptop).join("update-pin.json")).unwrap();
    let again = ok(&w.run(
        &[
            "enrol",
            "--dir",
            &laptop,
            "--install",
            &format!("{admin}/manifest.kzm"),
        ],
        &[("KAZASHI_PASSPHRASE", LAPTOP_PASS)],
    ));
    assert_eq!(again["changed"], false);
    assert_eq!(folder_pin(&laptop), pin_json);

    // Root takes it on first use, then finds it unchanged.
    let etc = w.path("etc/kazashi/update-pin.json");
    let pin_args = ["update", "pin", "--dir", &laptop, "--pin", &s(&etc)];
    let taken = ok(&w.run(&pin_args, &[]));
    assert_eq!(taken["pinned"], "new");
    assert_eq!(taken["admin_fingerprint"], admin_fp.as_str());
    let trusted = std::fs::read(&etc).unwrap();
    assert_eq!(
        trusted,
        std::fs::read(Path::new(&laptop).join("update-pin.json")).unwrap()
    );
    assert_eq!(ok(&w.run(&pin_args, &[]))["pinned"], "unchanged");
    // A folder with no pin yet: nothing taken, nothing written.
    let empty = w.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let none = ok(&w.run(
        &[
            "update",
            "pin",
            "--dir",
            &s(&empty),
            "--pin",
            &s(&w.path("etc2/pin.json")),
        ],
        &[],
    ));
    assert_eq!(none["pinned"], false);
    assert!(!w.path("etc2").exists());

    // The machine re-enrolled into another deployment: its folder's pin changes, root refuses
    // it loudly and keeps the first, byte for byte.
    let moved = w.laptop("moved", &other, &other_fp);
    assert_eq!(folder_pin(&moved)["admin_fingerprint"], other_fp.as_str());
    let out = w.run(&["update", "pin", "--dir", &moved, "--pin", &s(&etc)], &[]);
    refused(&out, "differs from the one this machine trusts");
    refused(&out, "refused, nothing changed");
    refused(&out, &other_fp);
    assert_eq!(std::fs::read(&etc).unwrap(), trusted);
    // A damaged folder pin: refused too.
    std::fs::write(Path::new(&moved).join("update-pin.json"), b"{\"format\"").unwrap();
    refused(
        &w.run(&["update", "pin", "--dir", &moved, "--pin", &s(&etc)], &[]),
        "not an update pin file",
    );
    assert_eq!(std::fs::read(&etc).unwrap(), trusted);

    // Updates checked against root's pin, with no passphrase anywhere and no folder opened.
    let usb = w.path("usb");
    let update_dir = usb.join("kazashi").join("update");
    let deb = w.deb("kazashi", "0.7.0-1");
    ok(&w.sign(&admin, &deb, &update_dir, ADMIN_PASS));
    let bad = w.path("bad");
    ok(&w.sign(&other, &deb, &bad.join("other.kzu"), ADMIN_PASS));
    let nowhere = s(&w.path("no-folder-here"));
    let with_pin = |verb: &str, file: &Path, dir: &str| {
        w.run(
            &["update", verb, &s(file), "--dir", dir, "--pin", &s(&etc)],
            &[],
        )
    };
    let before = snapshot(Path::new(&laptop));
    let v = ok(&with_pin(
        "verify",
        &update_dir.join("kazashi-0.7.0-1.kzu"),
        &nowhere,
    ));
    assert_eq!(v["verified"], true);
    assert_eq!(v["trust"], format!("pin {}", s(&etc)));
    // Another deployment's signature, under the pin: refused, nothing installed.
    for verb in ["verify", "apply"] {
        refused(
            &with_pin(verb, &bad.join("other.kzu"), &laptop),
            "another deployment",
        );
        assert!(!w.dpkg_ran());
    }
    // No pin file where one is named: refused, not a fall-back to the store.
    refused(
        &w.run(
            &[
                "update",
                "apply",
                &s(&usb),
                "--dir",
                &laptop,
                "--pin",
                &s(&w.path("etc/kazashi/none.json")),
            ],
            &[("KAZASHI_PASSPHRASE", LAPTOP_PASS)],
        ),
        "trusts no deployment key yet",
    );
    assert!(!w.dpkg_ran());
    // The stick: the deployment's signed package goes to dpkg, as a private copy.
    let applied = ok(&with_pin("apply", &usb, &laptop));
    assert_eq!(applied["applied"], true);
    assert_eq!(applied["version"], "0.7.0-1");
    assert_eq!(applied["trust"], format!("pin {}", s(&etc)));
    let args = std::fs::read_to_string(w.record.join("args")).unwrap();
    assert_eq!(args.lines().next(), Some("-i"));
    assert!(!args.contains(&s(&usb)), "{args}");
    assert_eq!(
        std::fs::read(w.record.join("got.deb")).unwrap(),
        std::fs::read(&deb).unwrap()
    );
    assert_eq!(snapshot(Path::new(&laptop)), before);
    assert_eq!(std::fs::read(&etc).unwrap(), trusted);
}
