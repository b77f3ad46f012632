//! Child process of the install crash test: installs `manifest-v<N>.kzm` from a folder into the
//! laptop folder given, for N = start, start+1, … while the files last, printing each version
//! once `install` has returned (acknowledged). The test kills it with SIGKILL at random.

use kazashi_node::enrolled::Folder;
use kazashi_node::enrolment::install;
use std::io::Write;
use std::path::PathBuf;

fn main() {
    if let Err(e) = run() {
        eprintln!("install_writer: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: install_writer <laptop dir> <manifests dir> <start>";
    let laptop = PathBuf::from(args.next().ok_or(usage)?);
    let manifests = PathBuf::from(args.next().ok_or(usage)?);
    let start: u32 = args
        .next()
        .ok_or(usage)?
        .parse()
        .map_err(|_| "start must be a number")?;
    let folder = Folder::new(laptop);
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    for v in start.. {
        let Ok(bytes) = std::fs::read(manifests.join(format!("manifest-v{v}.kzm"))) else {
            break;
        };
        // The harness trusts its own manifests: the key's fingerprint is taken from them.
        let admin = kazashi_sync::SignedManifest::decode(&bytes)
            .map_err(|e| e.to_string())?
            .manifest()
            .admin;
        let typed = kazashi_node::enrolment::fingerprint(&admin);
        install(&folder, "install crash test", &bytes, None, Some(&typed))
            .map_err(|e| e.to_string())?;
        writeln!(out, "{v}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}
