//! Card readers as the window sees them. The window is handed a [`Readers`]: the product gives
//! it the PC/SC reader service ([`PcscReaders`]), the lab its virtual cards. Each frame the
//! window asks what happened; a card placed on a reader comes back as a [`Card`] to read.

use kazashi_node::card::{CardError, PcscTransport, ReaderEvent, ReaderService, Transport};

/// A card on a reader, ready to exchange APDUs.
pub type Card = Box<dyn Transport + Send>;

/// What the readers did since they were last asked.
#[derive(Default)]
pub struct Polled {
    /// A card was placed on a reader.
    pub card: Option<Card>,
    /// The readers' state changed: what to tell staff, in Japanese and English.
    pub status: Option<(&'static str, &'static str)>,
    /// A card was placed but could not be reached.
    pub error: Option<CardError>,
}

/// Where the window's cards come from.
pub trait Readers {
    /// What happened since the last call. Called every frame: it must not block.
    fn poll(&mut self) -> Polled;
    /// Cards a person picks with a button (the lab's virtual cards); none on real readers.
    fn panel(&self) -> Vec<String> {
        Vec::new()
    }
    /// The card of button `i` of [`Readers::panel`].
    fn pick(&mut self, _i: usize) -> Option<Card> {
        None
    }
}

/// No readers at all (a laptop used by roster lookup only, and tests).
pub struct NoReaders;

impl Readers for NoReaders {
    fn poll(&mut self) -> Polled {
        Polled::default()
    }
}

/// The PC/SC readers through the reader service: plugging, unplugging and pcscd restarts are
/// reported as status lines; a card placed on any reader is connected at once.
pub struct PcscReaders {
    service: ReaderService,
}

impl PcscReaders {
    pub fn start() -> Self {
        Self {
            service: ReaderService::start(),
        }
    }
}

impl Readers for PcscReaders {
    fn poll(&mut self) -> Polled {
        let mut out = Polled::default();
        while let Ok(e) = self.service.events().try_recv() {
            out.status = Some((e.message_ja(), e.message_en()));
            if let ReaderEvent::CardInserted(reader) = &e {
                match PcscTransport::connect(reader) {
                    Ok(t) => {
                        out.card = Some(Box::new(t));
                        out.error = None;
                    }
                    Err(err) => out.error = Some(err),
                }
            }
        }
        out
    }
}
