//! `kazashi-lab card emulate`: a virtual My Number Card of the drill city on vsmartcard's vpcd
//! reader, so that the product's real PC/SC path (pcscd, the reader service, `kazashi card`)
//! can be driven without a physical card.

use crate::fleet_cmd::drill_town;
use kazashi_sim::card::vpcd::{InsertedCard, VPCD_PORT};
use kazashi_sim::card::{CardSpec, Holder, Quirk, VirtualCard};
use serde_json::json;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum QuirkArg {
    None,
    LongBer,
    MalformedTlv,
    NotMyNumberCard,
    Locked6983,
}

#[derive(clap::Args, Debug)]
pub struct CardArgs {
    #[command(subcommand)]
    pub action: CardAction,
}

#[derive(clap::Subcommand, Debug)]
pub enum CardAction {
    /// Put a virtual My Number Card on vsmartcard's vpcd reader (needs pcscd with vpcd). Holds
    /// it there until --seconds pass or Ctrl-C.
    Emulate(EmulateArgs),
}

#[derive(clap::Args, Debug)]
pub struct EmulateArgs {
    /// Fixture key and certificate (1-8).
    #[arg(long, default_value_t = 1)]
    fixture: usize,
    /// The holder: this resident (index) of the drill city.
    #[arg(long, default_value_t = 0)]
    resident: usize,
    /// Seed of the drill city.
    #[arg(long, default_value_t = 1)]
    town_seed: u64,
    /// Both PINs.
    #[arg(long, default_value = "1234")]
    pin: String,
    /// Tries left on both PINs (0: locked).
    #[arg(long, default_value_t = 3)]
    tries: u8,
    #[arg(long, value_enum, default_value_t = QuirkArg::None)]
    quirk: QuirkArg,
    #[arg(long, default_value_t = 0)]
    seconds: u64,
    /// vpcd's port (35963 is its first reader).
    #[arg(long, default_value_t = VPCD_PORT)]
    port: u16,
    /// Carry fixture N's certificate (1-8), copied, while --fixture's key signs: a card a
    /// possession check must refuse.
    #[arg(long)]
    copied_cert_of: Option<usize>,
    /// Instead of a My Number Card, a card that is only a contactless identifier (hex): it
    /// answers just the reader's GET DATA `FF CA 00 00 00` — 4, 7 or 10 bytes an ISO 14443
    /// UID, 8 bytes a FeliCa IDm (a transport IC card). Other flags are ignored.
    #[arg(long)]
    uid: Option<String>,
}

pub fn run(args: &CardArgs) -> Result<(), String> {
    let CardAction::Emulate(a) = &args.action;
    emulate(a)
}

fn emulate(a: &EmulateArgs) -> Result<(), String> {
    let EmulateArgs {
        fixture,
        resident,
        town_seed,
        pin,
        tries,
        quirk,
        seconds,
        port,
        copied_cert_of,
        uid,
    } = a;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, *port));
    if let Some(uid) = uid {
        let bytes = parse_hex(uid).ok_or("--uid is an even number of hex digits")?;
        let kind = if bytes.len() == 8 {
            "felica-idm"
        } else {
            "iso14443-uid"
        };
        return hold(
            VirtualCard::new(CardSpec::uid_only(&bytes)),
            addr,
            *seconds,
            json!({"emulate": "inserted", "uid_card": kind, "bytes": bytes.len(), "port": port}),
        );
    }
    let town = drill_town(*town_seed)?;
    let e = town.roster.entries().get(*resident).ok_or_else(|| {
        format!(
            "--resident {resident}: the drill city has {}",
            town.roster.len()
        )
    })?;
    let holder = Holder::of(e);
    let pin: [u8; 4] = pin
        .as_bytes()
        .try_into()
        .ok()
        .filter(|p: &[u8; 4]| p.iter().all(u8::is_ascii_digit))
        .ok_or("--pin is four digits")?;
    let mut spec = CardSpec::new(fixture.saturating_sub(1), holder);
    spec.text_pin = pin;
    spec.jpki_pin = pin;
    spec.text_tries = (*tries).min(3);
    spec.jpki_tries = (*tries).min(3);
    spec.copied_cert_of = copied_cert_of.map(|n| n.saturating_sub(1));
    spec.quirk = match quirk {
        QuirkArg::None => Quirk::None,
        QuirkArg::LongBer => Quirk::LongBer,
        QuirkArg::MalformedTlv => Quirk::MalformedTlv,
        QuirkArg::NotMyNumberCard => Quirk::NotMyNumberCard,
        QuirkArg::Locked6983 => Quirk::LockedAnswers6983,
    };
    hold(
        VirtualCard::new(spec),
        addr,
        *seconds,
        json!({"emulate": "inserted", "resident": e.person.to_string(), "port": port}),
    )
}

/// Put `card` on vpcd's reader, say so with `inserted`, hold it for `seconds` (0: until
/// stopped), then take it off.
fn hold(
    card: VirtualCard,
    addr: SocketAddr,
    seconds: u64,
    inserted: serde_json::Value,
) -> Result<(), String> {
    let shown = inserted;
    let inserted = InsertedCard::insert(card, addr, Duration::from_secs(5)).map_err(|e| {
        format!("cannot reach vpcd at {addr} (is pcscd running with vsmartcard-vpcd?): {e}")
    })?;
    println!("{shown}");
    let until = (seconds > 0).then(|| Instant::now() + Duration::from_secs(seconds));
    while until.is_none_or(|u| Instant::now() < u) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let n = inserted.apdus().len();
    drop(inserted);
    println!("{}", json!({"emulate": "removed", "apdus": n}));
    Ok(())
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let s: Vec<char> = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks(2)
        .map(|p| {
            let hi = p.first()?.to_digit(16)?;
            let lo = p.get(1)?.to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}
