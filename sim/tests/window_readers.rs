//! The window's card readers (`kazashi_gui::app::cards::PcscReaders`, what `kazashi` and `kazashi
//! station` hand the window) through a real pcscd with vsmartcard's vpcd reader: polled as the
//! window polls them every frame, they say plainly when pcscd stops and comes back, when the
//! reader is unplugged and plugged again, and they hand over a card placed after all that —
//! the window is never restarted. Skipped, with the reason, where pcscd or root is missing.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use kazashi_gui::app::cards::{Card, PcscReaders, Readers};
use kazashi_sim::card::{CardSpec, Holder, VirtualCard};
use kazashi_tests::card_rig::{self, Rig};
use std::time::{Duration, Instant};

fn holder() -> Holder {
    Holder {
        name: "髙橋 花子".into(),
        address: "かざし市中央一丁目2番3号".into(),
        birth: "19800229".into(),
        sex: "2".into(),
    }
}

/// The window's view of the readers: the status line it shows (Japanese, English) and the
/// cards handed to it.
struct Window {
    readers: PcscReaders,
    status: Option<(&'static str, &'static str)>,
}

impl Window {
    /// Poll as the window's frames do (every 50 ms) until `want` holds of the status line or a
    /// card comes; the card, if one came.
    fn until(&mut self, what: &str, want: impl Fn(&str) -> bool, card: bool) -> Option<Card> {
        let end = Instant::now() + Duration::from_secs(15);
        while Instant::now() < end {
            let p = self.readers.poll();
            if let Some(s) = p.status {
                self.status = Some(s);
            }
            assert!(p.error.is_none(), "{what}: {:?}", p.error);
            if card && p.card.is_some() {
                return p.card;
            }
            if !card && self.status.is_some_and(|(ja, _)| want(ja)) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{what}: the window still shows {:?}", self.status);
    }

    fn shows(&mut self, what: &str, ja: &str, en: &str) {
        self.until(what, |s| s == ja, false);
        assert_eq!(self.status.map(|s| s.1), Some(en), "{what}");
    }
}

#[test]
fn the_windows_readers_show_a_pcscd_restart_and_an_unplug_plainly_and_recover() {
    let rig = match Rig::start() {
        Ok(r) => r,
        Err(why) => {
            card_rig::skip(&format!("window readers: {why}"));
            return;
        }
    };
    let mut w = Window {
        readers: PcscReaders::start(),
        status: None,
    };
    w.shows(
        "started",
        "カードをかざしてください",
        "Please hold the card over the reader",
    );
    let card = rig
        .insert(VirtualCard::new(CardSpec::new(0, holder())))
        .unwrap();
    assert!(w.until("a card placed", |_| false, true).is_some());
    rig.remove(card);
    w.shows(
        "card removed",
        "カードをかざしてください",
        "Please hold the card over the reader",
    );
    if !rig.owns_pcscd() {
        card_rig::skip("window readers: the pcscd restart part (pcscd is the system's)");
        return;
    }

    // pcscd stops (a crash, or systemctl restart): said at once, in both languages.
    rig.stop_pcscd().unwrap();
    w.shows(
        "pcscd stopped",
        "カードリーダーの管理サービス（pcscd）が動いていません。再接続を待っています。",
        "The card reader service (pcscd) is not running. Waiting to reconnect.",
    );
    // Back: the same readers object reconnects by itself.
    rig.restart_pcscd().unwrap();
    w.shows(
        "pcscd back",
        "カードをかざしてください",
        "Please hold the card over the reader",
    );
    let card = rig
        .insert(VirtualCard::new(CardSpec::new(1, holder())))
        .unwrap();
    let mut got = w
        .until("a card after the restart", |_| false, true)
        .expect("a card");
    // It is a card the window can talk to (its certificate reads).
    let mut s = kazashi_node::card::CardSession::new(&mut got);
    assert!(s.read_auth_cert().is_ok());
    drop(s);
    drop(got);
    rig.remove(card);

    // The reader unplugged (pcscd with no reader), then plugged back.
    rig.restart_pcscd_without_readers().unwrap();
    w.shows(
        "reader unplugged",
        "リーダーが接続されていません",
        "No card reader is connected",
    );
    rig.restart_pcscd().unwrap();
    w.shows(
        "reader plugged",
        "カードをかざしてください",
        "Please hold the card over the reader",
    );
    drop(rig);
}
