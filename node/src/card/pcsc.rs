//! The real card transport: pcscd through the `pcsc` crate, and the reader service that
//! follows readers (hot-plug), cards (insert, remove) and pcscd itself (stopped, restarted).

use super::CardError;
use super::session::Transport;
use pcsc::{Context, Error, Protocols, ReaderState, Scope, ShareMode, State};
use std::ffi::CString;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

fn card_error(e: Error) -> CardError {
    match e {
        Error::NoService | Error::ServiceStopped | Error::InvalidHandle => CardError::ServiceDown,
        Error::RemovedCard | Error::ResetCard | Error::NoSmartcard | Error::UnpoweredCard => {
            CardError::Removed
        }
        Error::UnresponsiveCard => CardError::Reader("the card does not answer".into()),
        Error::SharingViolation => CardError::Busy,
        Error::UnknownReader | Error::ReaderUnavailable | Error::NoReadersAvailable => {
            CardError::NoReader
        }
        e => CardError::Reader(e.to_string()),
    }
}

/// A connection to the card on one reader. Dropping it resets the card, so a PIN verified in
/// this session does not outlive it.
pub struct PcscTransport {
    card: pcsc::Card,
    reader: String,
    // Keeps the context alive as long as the card handle.
    _context: Context,
}

impl PcscTransport {
    /// Connect to the card on `reader`.
    pub fn connect(reader: &str) -> Result<Self, CardError> {
        let context = Context::establish(Scope::User).map_err(card_error)?;
        let name = CString::new(reader).map_err(|_| CardError::NoReader)?;
        let card = context
            .connect(&name, ShareMode::Shared, Protocols::ANY)
            .map_err(card_error)?;
        Ok(PcscTransport {
            card,
            reader: reader.to_owned(),
            _context: context,
        })
    }

    /// Connect to the first reader holding a card (readers in pcscd's order).
    pub fn connect_any() -> Result<Self, CardError> {
        let snapshot = ReaderSnapshot::now()?;
        if snapshot.readers.is_empty() {
            return Err(CardError::NoReader);
        }
        let reader = snapshot
            .readers
            .iter()
            .find(|r| r.card)
            .ok_or(CardError::NoCard)?;
        Self::connect(&reader.name)
    }

    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// Has the card left the reader (asked for up to `patience`; the reader may take a
    /// moment to notice)?
    fn card_gone(&self, patience: Duration) -> bool {
        let until = std::time::Instant::now() + patience;
        loop {
            match self.card.status2_owned() {
                Err(e) if card_error(e) == CardError::Removed => return true,
                Ok(st) if !st.status().contains(pcsc::Status::PRESENT) => return true,
                _ => {}
            }
            if std::time::Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Transport for PcscTransport {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        // The answer may carry the basic four: the buffer is wiped when dropped.
        let mut buf = zeroize::Zeroizing::new(vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED]);
        match self.card.transmit(apdu, &mut buf[..]) {
            // No status word: the connection to the card broke mid-exchange.
            Ok(r) if r.len() < 2 => {
                if self.card_gone(Duration::from_millis(500)) {
                    Err(CardError::Removed)
                } else {
                    Err(CardError::Garbled)
                }
            }
            Ok(r) => Ok(r.to_vec()),
            Err(e @ (Error::NotTransacted | Error::CommError)) => {
                // A read cut off: say "removed" when the card is gone, else the error.
                if self.card_gone(Duration::from_millis(500)) {
                    Err(CardError::Removed)
                } else {
                    Err(card_error(e))
                }
            }
            Err(e) => Err(card_error(e)),
        }
    }
}

/// One reader as the service sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderInfo {
    pub name: String,
    /// A card is on the reader.
    pub card: bool,
    /// The card is there but does not answer (mute, or not seated).
    pub mute: bool,
}

/// Readers and cards at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReaderSnapshot {
    /// pcscd answers.
    pub service: bool,
    pub readers: Vec<ReaderInfo>,
}

impl ReaderSnapshot {
    /// Ask pcscd now (no waiting).
    pub fn now() -> Result<Self, CardError> {
        let ctx = Context::establish(Scope::User).map_err(card_error)?;
        let names = match ctx.list_readers_owned() {
            Ok(n) => n,
            Err(Error::NoReadersAvailable) => Vec::new(),
            Err(e) => return Err(card_error(e)),
        };
        let mut states: Vec<ReaderState> = names
            .into_iter()
            .map(|n| ReaderState::new(n, State::UNAWARE))
            .collect();
        if !states.is_empty() {
            ctx.get_status_change(Duration::from_millis(0), &mut states)
                .map_err(card_error)?;
        }
        Ok(Self::from_states(&states))
    }

    fn from_states(states: &[ReaderState]) -> Self {
        let readers = states
            .iter()
            .filter(|s| s.name() != pcsc::PNP_NOTIFICATION())
            .filter(|s| !s.event_state().intersects(State::UNKNOWN | State::IGNORE))
            .map(|s| ReaderInfo {
                name: s.name().to_string_lossy().into_owned(),
                card: s.event_state().contains(State::PRESENT),
                mute: s.event_state().contains(State::MUTE),
            })
            .collect();
        ReaderSnapshot {
            service: true,
            readers,
        }
    }

    /// What the reception screen says, in Japanese.
    pub fn message_ja(&self) -> &'static str {
        match self.status() {
            Status::ServiceDown => {
                "カードリーダーの管理サービス（pcscd）が動いていません。再接続を待っています。"
            }
            Status::NoReader => "リーダーが接続されていません",
            Status::Mute => "カードを読み取れません。カードを置き直してください",
            Status::Card => "カードを読み取っています",
            Status::Waiting => "カードをかざしてください",
        }
    }

    pub fn message_en(&self) -> &'static str {
        match self.status() {
            Status::ServiceDown => {
                "The card reader service (pcscd) is not running. Waiting to reconnect."
            }
            Status::NoReader => "No card reader is connected",
            Status::Mute => "The card does not answer. Please place it again",
            Status::Card => "Reading the card",
            Status::Waiting => "Please hold the card over the reader",
        }
    }

    fn status(&self) -> Status {
        if !self.service {
            Status::ServiceDown
        } else if self.readers.is_empty() {
            Status::NoReader
        } else if self.readers.iter().any(|r| r.mute) {
            Status::Mute
        } else if self.readers.iter().any(|r| r.card) {
            Status::Card
        } else {
            Status::Waiting
        }
    }
}

enum Status {
    ServiceDown,
    NoReader,
    Mute,
    Card,
    Waiting,
}

/// What the reader service reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderEvent {
    /// Readers or cards changed (or pcscd went away or came back).
    Changed(ReaderSnapshot),
    /// A card arrived on this reader: time to read it.
    CardInserted(String),
    /// The card left this reader.
    CardRemoved(String),
}

impl ReaderEvent {
    pub fn message_ja(&self) -> &'static str {
        match self {
            ReaderEvent::Changed(s) => s.message_ja(),
            ReaderEvent::CardInserted(_) => "カードを読み取っています",
            ReaderEvent::CardRemoved(_) => "カードが外されました",
        }
    }
    pub fn message_en(&self) -> &'static str {
        match self {
            ReaderEvent::Changed(s) => s.message_en(),
            ReaderEvent::CardInserted(_) => "Reading the card",
            ReaderEvent::CardRemoved(_) => "The card was removed",
        }
    }
}

/// A thread that follows pcscd and its readers and sends [`ReaderEvent`]s. It never gives
/// up: when pcscd stops it says so and reconnects when it is back; readers come and go.
pub struct ReaderService {
    events: Receiver<ReaderEvent>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// How long one wait for a change lasts before the stop flag is looked at.
const POLL: Duration = Duration::from_millis(250);

impl ReaderService {
    pub fn start() -> Self {
        let (tx, events) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("card readers".into())
            .spawn(move || watch(&tx, &flag))
            .ok();
        ReaderService {
            events,
            stop,
            thread,
        }
    }

    pub fn events(&self) -> &Receiver<ReaderEvent> {
        &self.events
    }
}

impl Drop for ReaderService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn fatal(e: Error) -> bool {
    matches!(
        e,
        Error::NoService | Error::ServiceStopped | Error::InvalidHandle | Error::CommError
    )
}

fn watch(tx: &Sender<ReaderEvent>, stop: &AtomicBool) {
    let mut last: Option<ReaderSnapshot> = None;
    let mut emit = |s: ReaderSnapshot| -> bool {
        if last.as_ref() == Some(&s) {
            return true;
        }
        let before = last.take().unwrap_or_default();
        for r in &s.readers {
            let had = before.readers.iter().any(|b| b.name == r.name && b.card);
            if r.card && !had && tx.send(ReaderEvent::CardInserted(r.name.clone())).is_err() {
                return false;
            }
        }
        for b in before.readers.iter().filter(|b| b.card) {
            let has = s.readers.iter().any(|r| r.name == b.name && r.card);
            if !has && tx.send(ReaderEvent::CardRemoved(b.name.clone())).is_err() {
                return false;
            }
        }
        last = Some(s.clone());
        tx.send(ReaderEvent::Changed(s)).is_ok()
    };
    let down = ReaderSnapshot {
        service: false,
        readers: Vec::new(),
    };
    'service: while !stop.load(Ordering::Relaxed) {
        let ctx = match Context::establish(Scope::User) {
            Ok(c) => c,
            Err(_) => {
                if !emit(down.clone()) {
                    return;
                }
                std::thread::sleep(POLL * 2);
                continue;
            }
        };
        // One pass per reader list: wait for changes until the list changes.
        while !stop.load(Ordering::Relaxed) {
            let names = match ctx.list_readers_owned() {
                Ok(n) => n,
                Err(Error::NoReadersAvailable) => Vec::new(),
                Err(e) if fatal(e) => {
                    if !emit(down.clone()) {
                        return;
                    }
                    continue 'service;
                }
                Err(_) => Vec::new(),
            };
            let mut states: Vec<ReaderState> = names
                .into_iter()
                .map(|n| ReaderState::new(n, State::UNAWARE))
                .collect();
            states.push(ReaderState::new(pcsc::PNP_NOTIFICATION(), State::UNAWARE));
            let mut first = true;
            loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let wait = if first {
                    Duration::from_millis(0)
                } else {
                    POLL
                };
                match ctx.get_status_change(wait, &mut states) {
                    Ok(()) => {}
                    Err(Error::Timeout) if !first => continue,
                    Err(Error::Timeout) => {}
                    Err(e) if fatal(e) => {
                        if !emit(down.clone()) {
                            return;
                        }
                        std::thread::sleep(POLL);
                        continue 'service;
                    }
                    // A reader vanished between the list and the wait: list again.
                    Err(_) => break,
                }
                first = false;
                if !emit(ReaderSnapshot::from_states(&states)) {
                    return;
                }
                let relist = states.iter().any(|s| {
                    let st = s.event_state();
                    (s.name() == pcsc::PNP_NOTIFICATION() && st.contains(State::CHANGED))
                        || st.intersects(State::UNKNOWN | State::IGNORE)
                });
                for s in &mut states {
                    s.sync_current_state();
                }
                if relist {
                    break;
                }
            }
        }
    }
}
