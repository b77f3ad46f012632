//! The My Number Card over PC/SC.
//!
//! - [`apdu`], [`tlv`], [`cert`]: the card's commands, the basic-four TLV and the JPKI
//!   certificate — pure, and total on untrusted bytes.
//! - [`session`]: the flows of a check-in (PIN-less tap, PIN read, possession check) over any
//!   [`Transport`], every command through the legal-line guard.
//! - [`pcsc`]: the real transport (pcscd through the `pcsc` crate) and the [`ReaderService`]
//!   that follows readers and cards and says in plain words what is happening.
//!
//! Kazashi never reads the individual number (個人番号): the guard in [`session`] refuses
//! 券面AP, EF 0001 of 券面事項入力補助AP and any 12-digit VERIFY (照合番号A) before they reach
//! the card.

pub mod apdu;
pub mod cert;
pub mod pcsc;
pub mod rsa_verify;
pub mod session;
pub mod tlv;

pub use cert::{AuthCert, Chain};
pub use pcsc::{PcscTransport, ReaderEvent, ReaderService, ReaderSnapshot};
pub use session::{CardSession, Exchange, Pin, PinFor, Transport};
pub use tlv::BasicFour;

/// What can go wrong with a card, each with words for the screen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("the card was removed")]
    Removed,
    #[error("no card on the reader")]
    NoCard,
    #[error("no card reader is connected")]
    NoReader,
    #[error("the card reader service (pcscd) is not running")]
    ServiceDown,
    #[error("another program is using the card")]
    Busy,
    #[error("card reader error: {0}")]
    Reader(String),
    #[error("the card's answer has no status word")]
    Garbled,
    #[error("not a My Number Card")]
    NotMyNumberCard,
    #[error("the card answered {0:04X}")]
    Status(u16),
    #[error("the card's data cannot be read: {0}")]
    Malformed(String),
    #[error("a file on the card is longer than any the card should hold")]
    TooLong,
    #[error("the card wants its PIN first")]
    PinNeeded,
    #[error("a PIN is exactly four digits")]
    PinFormat,
    #[error("wrong PIN; {left} tries left")]
    WrongPin { which: PinFor, left: u8 },
    #[error("the PIN is locked")]
    PinLocked(PinFor),
    #[error("refused by the legal line: {0}")]
    LegalLine(String),
}

impl CardError {
    /// What to tell staff and the resident, in Japanese.
    pub fn message_ja(&self) -> String {
        match self {
            CardError::Removed => "カードが外されました。もう一度カードをかざしてください。".into(),
            CardError::NoCard => "カードをかざしてください。".into(),
            CardError::NoReader => "リーダーが接続されていません。カードリーダーをつないでください。".into(),
            CardError::ServiceDown => {
                "カードリーダーの管理サービス（pcscd）が動いていません。再接続を待っています。".into()
            }
            CardError::Busy => "ほかのプログラムがカードを使用中です。".into(),
            CardError::Reader(_) | CardError::Garbled | CardError::Status(_) => {
                "カードを読み取れませんでした。カードを置き直してください。".into()
            }
            CardError::NotMyNumberCard => {
                "マイナンバーカードではないようです。カードを確かめるか、名簿検索で受付してください。".into()
            }
            CardError::Malformed(_) | CardError::TooLong => {
                "カードの内容を読み取れませんでした。名簿検索で受付してください。".into()
            }
            CardError::PinNeeded => "暗証番号の入力が必要です。".into(),
            CardError::PinFormat => "暗証番号は数字4桁です。".into(),
            CardError::WrongPin { left: 1, .. } => {
                "暗証番号が違います。残り1回です。次に間違えるとロックされます。".into()
            }
            CardError::WrongPin { left, .. } => format!("暗証番号が違います。残り{left}回です。"),
            CardError::PinLocked(which) => format!(
                "{}がロックされています。お住まいの市区町村の窓口で暗証番号の再設定をしてください（カードと本人確認書類が必要です）。今日は名簿検索で受付します。",
                which.name_ja()
            ),
            CardError::LegalLine(_) => "この操作は行えません（個人番号は読み取りません）。".into(),
        }
    }

    /// The same in English.
    pub fn message_en(&self) -> String {
        match self {
            CardError::Removed => "The card was removed. Please hold it over the reader again.".into(),
            CardError::NoCard => "Please hold the card over the reader.".into(),
            CardError::NoReader => "No card reader is connected. Please plug one in.".into(),
            CardError::ServiceDown => {
                "The card reader service (pcscd) is not running. Waiting to reconnect.".into()
            }
            CardError::Busy => "Another program is using the card.".into(),
            CardError::Reader(_) | CardError::Garbled | CardError::Status(_) => {
                "The card could not be read. Please place it again.".into()
            }
            CardError::NotMyNumberCard => {
                "This does not look like a My Number Card. Check the card, or look the person up in the roster.".into()
            }
            CardError::Malformed(_) | CardError::TooLong => {
                "The card's contents could not be read. Please look the person up in the roster.".into()
            }
            CardError::PinNeeded => "The card's PIN is needed.".into(),
            CardError::PinFormat => "The PIN is four digits.".into(),
            CardError::WrongPin { left: 1, .. } => {
                "Wrong PIN. One try left: one more mistake locks it.".into()
            }
            CardError::WrongPin { left, .. } => format!("Wrong PIN. {left} tries left."),
            CardError::PinLocked(which) => format!(
                "The {} is locked. The resident must have it reset at their city hall (with the card and proof of identity). Check them in by roster lookup today.",
                which.name_en()
            ),
            CardError::LegalLine(_) => {
                "Not allowed: Kazashi never reads the individual number.".into()
            }
        }
    }
}

impl PinFor {
    pub fn name_ja(self) -> &'static str {
        match self {
            PinFor::Text => "券面事項入力補助用の暗証番号",
            PinFor::Jpki => "利用者証明用電子証明書の暗証番号",
        }
    }
    pub fn name_en(self) -> &'static str {
        match self {
            PinFor::Text => "card-text PIN",
            PinFor::Jpki => "authentication-certificate PIN",
        }
    }
}

/// The prompt before the resident types a PIN, with the tries left; a plain warning before
/// the last one.
pub fn pin_prompt_ja(which: PinFor, tries_left: u8) -> String {
    match tries_left {
        1 => format!(
            "{}（数字4桁）を入力してください。残り1回です。間違えるとロックされ、市区町村の窓口での再設定が必要になります。",
            which.name_ja()
        ),
        n => format!(
            "{}（数字4桁）を入力してください。残り{n}回。",
            which.name_ja()
        ),
    }
}

pub fn pin_prompt_en(which: PinFor, tries_left: u8) -> String {
    match tries_left {
        1 => format!(
            "Enter the {} (4 digits). ONE try left: a mistake locks it, and only city hall can reset it.",
            which.name_en()
        ),
        n => format!("Enter the {} (4 digits). {n} tries left.", which.name_en()),
    }
}

/// Said wherever a certificate is trusted offline.
pub const REVOCATION_NOTE_JA: &str =
    "オフラインのため、電子証明書の失効は確認できません（有効期限と発行元のみ確認）。";
pub const REVOCATION_NOTE_EN: &str = "Offline: the certificate's revocation cannot be checked (only its validity period and issuer).";
