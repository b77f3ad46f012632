//! A virtual card on a real pcscd: the client side of vsmartcard's vpcd protocol.
//!
//! vpcd (the pcscd driver) listens on TCP; a card "arrives" on the reader when a client
//! connects and "leaves" when it disconnects. Each message is a 2-byte big-endian length and a
//! payload: one byte is a control message (0x00 power off, 0x01 power on, 0x02 reset, 0x04 get
//! the ATR), anything longer is a C-APDU answered with an R-APDU.

use super::{ATR, ApduLog, VirtualCard};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// vpcd's first reader listens here; the second on the next port.
pub const VPCD_PORT: u16 = 35963;
/// The name pcscd gives vpcd's first reader.
pub const VPCD_READER: &str = "Virtual PCD 00 00";

/// A card on a vpcd reader, served by a thread until removed.
pub struct InsertedCard {
    stop: Arc<AtomicBool>,
    stream: Arc<Mutex<Option<TcpStream>>>,
    thread: Option<JoinHandle<VirtualCard>>,
    log: ApduLog,
}

impl InsertedCard {
    /// Put `card` on the vpcd reader at `addr`. Waits up to `patience` for vpcd to accept;
    /// after that, a dropped connection (pcscd restarting) is redialled until the card is
    /// removed, unless the card was pulled on purpose.
    pub fn insert(card: VirtualCard, addr: SocketAddr, patience: Duration) -> io::Result<Self> {
        let first = dial(addr, patience)?;
        let log = card.log();
        let stop = Arc::new(AtomicBool::new(false));
        let stream = Arc::new(Mutex::new(first.try_clone().ok()));
        let (flag, shared) = (stop.clone(), stream.clone());
        let thread = std::thread::Builder::new()
            .name("virtual card".into())
            .spawn(move || serve(card, first, addr, &flag, &shared))?;
        Ok(InsertedCard {
            stop,
            stream,
            thread: Some(thread),
            log,
        })
    }

    /// The raw APDUs the card has received so far.
    pub fn apdus(&self) -> Vec<Vec<u8>> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Take the card off the reader; returns it (with its PIN counters as they now are).
    pub fn remove(mut self) -> Option<VirtualCard> {
        self.stop.store(true, Ordering::Relaxed);
        if let Ok(mut s) = self.stream.lock()
            && let Some(s) = s.take()
        {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.thread.take().and_then(|t| t.join().ok())
    }
}

impl Drop for InsertedCard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Ok(mut s) = self.stream.lock()
            && let Some(s) = s.take()
        {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn dial(addr: SocketAddr, patience: Duration) -> io::Result<TcpStream> {
    let until = Instant::now() + patience;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(s) => {
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(Duration::from_millis(100)))?;
                return Ok(s);
            }
            Err(e) if Instant::now() >= until => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Read exactly `buf.len()` bytes, giving up (Ok(false)) when `stop` is set.
fn read_full(s: &mut TcpStream, buf: &mut [u8], stop: &AtomicBool) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        if stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        match s.read(buf.get_mut(got..).unwrap_or_default()) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                got += n;
                // vpcd writes a message's length and its payload apart: acknowledge at once,
                // or Nagle on its side and delayed ACKs on ours cost 40 ms per message.
                quick_ack(s);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(target_os = "linux")]
fn quick_ack(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_tcp_quickack(true);
}

#[cfg(not(target_os = "linux"))]
fn quick_ack(_: &TcpStream) {}

fn send(s: &mut TcpStream, payload: &[u8]) -> io::Result<()> {
    let n = u16::try_from(payload.len()).map_err(|_| io::Error::other("answer too long"))?;
    let mut m = n.to_be_bytes().to_vec();
    m.extend_from_slice(payload);
    s.write_all(&m)
}

fn serve(
    mut card: VirtualCard,
    mut s: TcpStream,
    addr: SocketAddr,
    stop: &AtomicBool,
    shared: &Mutex<Option<TcpStream>>,
) -> VirtualCard {
    loop {
        match session(&mut card, &mut s, stop) {
            Ok(()) => return card, // stopped
            Err(_) if stop.load(Ordering::Relaxed) => return card,
            Err(_) if card.pulled() => {
                let _ = s.shutdown(Shutdown::Both);
                return card;
            }
            Err(_) => {
                // pcscd went away: the card stays "on the reader" and redials.
                card.reset();
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return card;
                    }
                    if let Ok(n) = dial(addr, Duration::from_millis(200)) {
                        if let Ok(mut g) = shared.lock() {
                            *g = n.try_clone().ok();
                        }
                        s = n;
                        break;
                    }
                }
            }
        }
    }
}

fn session(card: &mut VirtualCard, s: &mut TcpStream, stop: &AtomicBool) -> io::Result<()> {
    loop {
        let mut len = [0u8; 2];
        if !read_full(s, &mut len, stop)? {
            return Ok(());
        }
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if !read_full(s, &mut msg, stop)? {
            return Ok(());
        }

        match msg.as_slice() {
            [0x00] | [0x01] | [0x02] => card.reset(),
            [0x04] => send(s, &ATR)?,
            [_] | [] => {}
            apdu => match card.receive(apdu) {
                Some(r) => send(s, &r)?,
                // Pulled mid-read: the card leaves instead of answering.
                None => {
                    let _ = s.shutdown(Shutdown::Both);
                    return Err(io::ErrorKind::ConnectionAborted.into());
                }
            },
        }
    }
}
