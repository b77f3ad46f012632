//! `kazashi-lab bench card [--scale N]`: the card flows against the virtual card — APDUs sent and
//! wall time per flow (PIN-less tap, PIN read, possession check), N runs each (at most 200).
//!
//! Twice: in process (the flow code and the card model alone: `<flow>_inproc_p50/p99`), and
//! through the real stack — the `pcsc` crate, pcscd and vsmartcard's vpcd reader, connect
//! included (`<flow>_p50/p99`) — when pcscd with vpcd is running here.

use crate::bench::{emit, emit_percentiles};
use kazashi_domain::ids::DeploymentId;
use kazashi_node::card::{CardSession, PcscTransport, Pin, PinFor, ReaderSnapshot, Transport};
use kazashi_node::reception;
use kazashi_sim::card::vpcd::{InsertedCard, VPCD_PORT, VPCD_READER as READER};
use kazashi_sim::card::{CardSpec, Holder, VirtualCard};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
enum Flow {
    Tap,
    PinRead,
    Possession,
}

impl Flow {
    fn name(self) -> &'static str {
        match self {
            Flow::Tap => "tap",
            Flow::PinRead => "pin_read",
            Flow::Possession => "possession",
        }
    }

    /// Run the flow on a fresh session; returns the APDUs it sent.
    fn run<T: Transport>(self, t: T) -> Result<usize, String> {
        let mut s = CardSession::new(t);
        let pin = Pin::new("1234").map_err(|e| e.to_string())?;
        match self {
            Flow::Tap => {
                let cert = s.read_auth_cert().map_err(|e| e.to_string())?;
                std::hint::black_box(cert.card_key(&DeploymentId([7; 16])));
            }
            Flow::PinRead => {
                s.pin_tries(PinFor::Text).map_err(|e| e.to_string())?;
                s.verify_pin(PinFor::Text, &pin)
                    .map_err(|e| e.to_string())?;
                std::hint::black_box(s.read_basic_four().map_err(|e| e.to_string())?);
            }
            Flow::Possession => {
                let cert = s.read_auth_cert().map_err(|e| e.to_string())?;
                s.pin_tries(PinFor::Jpki).map_err(|e| e.to_string())?;
                let c = reception::challenge().map_err(|e| e.to_string())?;
                if !reception::possession_check(&mut s, &cert, &pin, &c)
                    .map_err(|e| e.to_string())?
                {
                    return Err("the possession check failed against the virtual card".into());
                }
            }
        }
        Ok(s.log().len())
    }
}

fn spec() -> CardSpec {
    CardSpec::new(
        0,
        Holder {
            name: "試験 太郎".into(),
            address: "かざし市中央一丁目1番1号".into(),
            birth: "19800101".into(),
            sex: "1".into(),
        },
    )
}

const FLOWS: [Flow; 3] = [Flow::Tap, Flow::PinRead, Flow::Possession];

pub fn run(args: &crate::bench::BenchArgs) -> Result<(), String> {
    let runs = args.scale.clamp(1, 200);
    // In process.
    for flow in FLOWS {
        let mut times = Vec::with_capacity(runs);
        let mut apdus = 0;
        for _ in 0..runs {
            let mut card = VirtualCard::new(spec());
            let t = Instant::now();
            apdus = flow.run(&mut card)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        emit(
            "card",
            &format!("{}_apdus", flow.name()),
            apdus as f64,
            "apdus",
            runs,
        );
        emit_percentiles(
            "card",
            &format!("{}_inproc", flow.name()),
            &times,
            "ms",
            runs,
        );
    }
    // Through pcscd and vpcd.
    let up = ReaderSnapshot::now().is_ok_and(|s| s.readers.iter().any(|r| r.name == READER));
    if !up {
        eprintln!("bench card: pcscd with the vpcd reader is not running; only in-process figures");
        return Ok(());
    }
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, VPCD_PORT));
    let card = InsertedCard::insert(VirtualCard::new(spec()), addr, Duration::from_secs(5))
        .map_err(|e| format!("cannot reach vpcd: {e}"))?;
    let seen = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(25));
        ReaderSnapshot::now().is_ok_and(|s| s.readers.iter().any(|r| r.name == READER && r.card))
    });
    if !seen {
        return Err("pcscd did not see the virtual card".into());
    }
    for flow in FLOWS {
        let mut times = Vec::with_capacity(runs);
        // A card just placed may still be powering up: the first run may try three times.
        let mut spare = 2;
        while times.len() < runs {
            let t = Instant::now();
            let result = PcscTransport::connect(READER)
                .map_err(|e| e.to_string())
                .and_then(|transport| flow.run(transport));
            match result {
                Ok(_) => times.push(t.elapsed().as_secs_f64() * 1e3),
                Err(_) if times.is_empty() && spare > 0 => {
                    spare -= 1;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e),
            }
        }
        emit_percentiles("card", flow.name(), &times, "ms", runs);
    }
    drop(card);
    Ok(())
}
