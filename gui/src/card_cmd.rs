//! `kazashi card …`: the card reader from the command line — readers, a live watch, a tap
//! (and the PIN path) and the possession check, on real PC/SC readers. (The lab's
//! `kazashi-lab card emulate` puts a virtual card on a virtual reader.)
//! Output is JSON lines; no name, address or card datum is ever printed (persons by roster
//! id, cards by the first digits of their pseudonymous key).

use crate::lang::Lang;
use crate::node_cmd::{StoreArgs, open_node};
use anyhow::Context as _;
use kazashi_domain::ids::{OperatorId, PersonRef};
use kazashi_node::card::{
    self, CardError, CardSession, Chain, PcscTransport, Pin, PinFor, ReaderService, ReaderSnapshot,
};
use kazashi_node::reception::{self, BasicFourMatch};
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct CardArgs {
    #[command(subcommand)]
    pub action: CardAction,
}

#[derive(clap::Subcommand, Debug)]
pub enum CardAction {
    /// Readers and cards now.
    Readers,
    /// Follow readers and cards: one JSON line per change (Ctrl-C to stop).
    Watch {
        /// Stop after this many seconds (0: never).
        #[arg(long, default_value_t = 0)]
        seconds: u64,
    },
    /// Tap: read the card's certificate (no PIN) and find who it is bound to. With --pin-env,
    /// also read the basic four items, match them to the roster and bind a strong match.
    Tap {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        reader: ReaderArgs,
        /// Environment variable holding the card-text PIN (券面事項入力補助用, 4 digits).
        #[arg(long)]
        pin_env: Option<String>,
        /// The operator recorded on a binding.
        #[arg(long, default_value = "reception")]
        operator: String,
        /// Enrol this card as the staff login of this operator id.
        #[arg(long)]
        enrol_staff: Option<String>,
    },
    /// The card's full deployment card key (64 hex digits), for the manifest's staff list
    /// (`deployment staff add --card`, the staff file's `card` column). Reads the card's
    /// certificate (no PIN); the key is this deployment's pseudonym of the card, nothing else
    /// of the card is printed.
    StaffKey {
        /// The administrator's deployment folder (its latest manifest names the deployment).
        #[arg(
            long,
            required_unless_present = "deployment",
            conflicts_with = "deployment"
        )]
        admin_dir: Option<PathBuf>,
        /// Or the deployment id (32 hex digits, `deployment show`'s `deployment`).
        #[arg(long)]
        deployment: Option<String>,
        #[command(flatten)]
        reader: ReaderArgs,
    },
    /// Possession check (elections): the card signs a fresh challenge after the JPKI PIN.
    Check {
        #[command(flatten)]
        reader: ReaderArgs,
        /// Environment variable holding the JPKI authentication PIN (4 digits).
        #[arg(long)]
        pin_env: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct ReaderArgs {
    /// The reader to use (default: the first with a card).
    #[arg(long)]
    pub reader: Option<String>,
    /// JPKI CA certificates (DER) for the offline chain check (repeatable).
    #[arg(long = "ca")]
    pub cas: Vec<PathBuf>,
}

impl ReaderArgs {
    pub(crate) fn session(&self) -> Result<CardSession<PcscTransport>, CardError> {
        let t = match &self.reader {
            Some(r) => PcscTransport::connect(r)?,
            None => PcscTransport::connect_any()?,
        };
        Ok(CardSession::new(t))
    }
    fn cas(&self) -> anyhow::Result<Vec<Vec<u8>>> {
        self.cas
            .iter()
            .map(|p| std::fs::read(p).with_context(|| format!("cannot read {}", p.display())))
            .collect()
    }
}

fn said(e: &CardError, lang: Lang) -> String {
    lang.card_error(e)
}

fn chain_words(c: Chain, lang: Lang) -> String {
    let (ja, en) = match c {
        Chain::Trusted => ("発行元を確認しました", "issuer verified"),
        Chain::UnknownIssuer => (
            "発行元を確認できません（CA証明書なし）",
            "issuer not verified (no CA certificate)",
        ),
        Chain::BadSignature => (
            "証明書の署名が正しくありません",
            "the certificate's signature is wrong",
        ),
        Chain::Expired => (
            "証明書の有効期限が切れています",
            "the certificate has expired",
        ),
        Chain::NotYetValid => (
            "証明書はまだ有効ではありません",
            "the certificate is not yet valid",
        ),
    };
    format!(
        "{} {}",
        lang.t(ja, en),
        lang.t(card::REVOCATION_NOTE_JA, card::REVOCATION_NOTE_EN)
    )
}

fn snapshot_json(s: &ReaderSnapshot, lang: Lang) -> serde_json::Value {
    let readers: Vec<_> = s
        .readers
        .iter()
        .map(|r| json!({"name": r.name, "card": r.card, "mute": r.mute}))
        .collect();
    json!({"service": s.service, "readers": readers, "message": lang.t(s.message_ja(), s.message_en())})
}

fn person_json(p: &PersonRef) -> serde_json::Value {
    json!(p.to_string())
}

pub fn run(args: &CardArgs, lang: Lang) -> anyhow::Result<()> {
    match &args.action {
        CardAction::Readers => {
            let s = match ReaderSnapshot::now() {
                Ok(s) => s,
                Err(CardError::ServiceDown) => ReaderSnapshot::default(),
                Err(e) => anyhow::bail!(said(&e, lang)),
            };
            println!("{}", snapshot_json(&s, lang));
            Ok(())
        }
        CardAction::Watch { seconds } => {
            let service = ReaderService::start();
            let until = (*seconds > 0).then(|| Instant::now() + Duration::from_secs(*seconds));
            loop {
                let wait = until.map_or(Duration::from_secs(3600), |u| {
                    u.saturating_duration_since(Instant::now())
                });
                if wait.is_zero() {
                    return Ok(());
                }
                match service.events().recv_timeout(wait) {
                    Ok(e) => {
                        let msg = lang.t(e.message_ja(), e.message_en());
                        let line = match &e {
                            kazashi_node::card::ReaderEvent::Changed(s) => {
                                json!({"event": "changed", "state": snapshot_json(s, lang), "message": msg})
                            }
                            kazashi_node::card::ReaderEvent::CardInserted(r) => {
                                json!({"event": "inserted", "reader": r, "message": msg})
                            }
                            kazashi_node::card::ReaderEvent::CardRemoved(r) => {
                                json!({"event": "removed", "reader": r, "message": msg})
                            }
                        };
                        println!("{line}");
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        CardAction::Tap {
            store,
            reader,
            pin_env,
            operator,
            enrol_staff,
        } => {
            let cas = reader.cas()?;
            let (mut node, _) = open_node(store)?;
            let mut s = reader
                .session()
                .map_err(|e| anyhow::Error::msg(said(&e, lang)))?;
            let tap = node
                .card_tap(&mut s, &cas)
                .map_err(|e| anyhow::Error::msg(said(&e, lang)))?;
            let mut out = serde_json::Map::new();
            out.insert("card".into(), json!(tap.card.short()));
            out.insert("person".into(), json!(tap.person.as_ref().map(person_json)));
            out.insert("chain".into(), json!(chain_words(tap.chain, lang)));
            out.insert("apdus".into(), json!(s.log().len()));
            if let Some(staff) = enrol_staff {
                let op = OperatorId::new(staff)?;
                node.enrol_staff_card(&tap.card, &op)?;
            }
            if let Some(op) = node.staff_card(&tap.card)? {
                out.insert("staff".into(), json!(op.as_str()));
            }
            if let Some(var) = pin_env {
                let typed =
                    std::env::var(var).map_err(|_| anyhow::anyhow!("set the PIN in {var}"))?;
                let pin = Pin::new(&typed).map_err(|e| anyhow::Error::msg(said(&e, lang)))?;
                let left = s
                    .pin_tries(PinFor::Text)
                    .map_err(|e| anyhow::Error::msg(said(&e, lang)))?;
                out.insert("tries_before".into(), json!(left));
                s.verify_pin(PinFor::Text, &pin)
                    .map_err(|e| anyhow::Error::msg(said(&e, lang)))?;
                let four = s
                    .read_basic_four()
                    .map_err(|e| anyhow::Error::msg(said(&e, lang)))?;
                match node.match_basic_four(&four) {
                    BasicFourMatch::Strong(c) => {
                        let op = OperatorId::new(operator)?;
                        let person = PersonRef::Roster(c.person);
                        if tap.person != Some(person) {
                            node.bind_card(op, tap.card, person)?;
                            out.insert("bound".into(), json!(true));
                        }
                        out.insert("match".into(), json!("strong"));
                        out.insert("person".into(), person_json(&person));
                        out.insert("score".into(), json!(c.score));
                    }
                    BasicFourMatch::Weak(cands) => {
                        out.insert("match".into(), json!("weak"));
                        out.insert(
                            "candidates".into(),
                            cands
                                .iter()
                                .map(|c| json!({"person": c.person.to_string(), "score": c.score}))
                                .collect::<Vec<_>>()
                                .into(),
                        );
                    }
                    BasicFourMatch::NotFound => {
                        out.insert("match".into(), json!("none"));
                    }
                }
                out.insert("apdus".into(), json!(s.log().len()));
            }
            println!("{}", serde_json::Value::Object(out));
            Ok(())
        }
        CardAction::StaffKey {
            admin_dir,
            deployment,
            reader,
        } => {
            let (id, staff) = match (admin_dir, deployment) {
                (Some(dir), _) => {
                    let m = kazashi_node::deployment_admin::AdminFolder::new(dir)
                        .current()
                        .with_context(|| format!("--admin-dir {}", dir.display()))?;
                    (m.deployment().id(), Some(m))
                }
                (None, Some(hex)) => (
                    kazashi_domain::DeploymentId::from_hex(hex)
                        .map_err(|e| anyhow::anyhow!("--deployment: {e}"))?,
                    None,
                ),
                (None, None) => anyhow::bail!("give --admin-dir or --deployment"),
            };
            let cas = reader.cas()?;
            let mut s = reader
                .session()
                .map_err(|e| anyhow::Error::msg(said(&e, lang)))?;
            let cert = s
                .read_auth_cert()
                .map_err(|e| anyhow::Error::msg(said(&e, lang)))?;
            let key = cert.card_key(&id);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let listed = staff
                .as_ref()
                .and_then(|m| m.staff_by_card(&key))
                .map(|e| e.id.as_str().to_owned());
            println!(
                "{}",
                json!({
                    "card_key": key.to_hex(),
                    "card": key.short(),
                    "deployment": id.short(),
                    "chain": chain_words(cert.chain(&cas, now), lang),
                    "staff": listed,
                })
            );
            Ok(())
        }
        CardAction::Check { reader, pin_env } => {
            let cas = reader.cas()?;
            let typed =
                std::env::var(pin_env).map_err(|_| anyhow::anyhow!("set the PIN in {pin_env}"))?;
            let pin = Pin::new(&typed).map_err(|e| anyhow::Error::msg(said(&e, lang)))?;
            let mut s = reader
                .session()
                .map_err(|e| anyhow::Error::msg(said(&e, lang)))?;
            let cert = s
                .read_auth_cert()
                .map_err(|e| anyhow::Error::msg(said(&e, lang)))?;
            let left = s
                .pin_tries(PinFor::Jpki)
                .map_err(|e| anyhow::Error::msg(said(&e, lang)))?;
            let challenge =
                reception::challenge().map_err(|e| anyhow::Error::msg(said(&e, lang)))?;
            let ok = reception::possession_check(&mut s, &cert, &pin, &challenge)
                .map_err(|e| anyhow::Error::msg(said(&e, lang)))?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            println!(
                "{}",
                json!({
                    "possession": ok,
                    "tries_before": left,
                    "chain": chain_words(cert.chain(&cas, now), lang),
                    "apdus": s.log().len(),
                })
            );
            if ok {
                Ok(())
            } else {
                Err(anyhow::Error::msg(lang.t(
                    "カードの鍵による署名を確認できませんでした",
                    "the card's signature did not verify",
                )))
            }
        }
    }
}
