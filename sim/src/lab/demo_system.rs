//! The demo's clock and network (`kazashi-lab demo`, the tour, the window tests): a made-up
//! wired LAN and three Wi-Fi networks, so the lab's window never asks the machine it runs on
//! to change its clock or its network. Connecting works with any password the window lets
//! through; setting the clock is refused with a message saying why.

use kazashi_domain::Millis;
use kazashi_gui::app::system::{
    Device, DeviceKind, LinkState, NetState, SysError, SystemControl, Wifi,
};
use std::sync::Mutex;

/// The demo's system: the Wi-Fi network joined last.
#[derive(Default)]
pub struct DemoSystem {
    joined: Mutex<Option<String>>,
}

impl DemoSystem {
    fn joined(&self) -> Option<String> {
        self.joined.lock().ok().and_then(|j| j.clone())
    }
}

impl SystemControl for DemoSystem {
    fn set_time(&self, _unix_ms: Millis) -> Result<(), SysError> {
        Err(SysError::Failed(
            "the demo does not change this computer's clock".into(),
        ))
    }

    fn wifi_list(&self, _rescan: bool) -> Result<Vec<Wifi>, SysError> {
        let joined = self.joined();
        let net = |ssid: &str, signal, security: &str| Wifi {
            ssid: ssid.into(),
            signal,
            security: security.into(),
            in_use: joined.as_deref() == Some(ssid),
        };
        Ok(vec![
            net("避難所-職員", 82, "WPA2"),
            net("Shelter-Guest", 55, ""),
            net("体育館:2F", 30, "WPA1 WPA2"),
        ])
    }

    fn wifi_connect(&self, ssid: &str, _password: &str) -> Result<(), SysError> {
        if let Ok(mut j) = self.joined.lock() {
            *j = Some(ssid.to_owned());
        }
        Ok(())
    }

    fn net_state(&self) -> Result<NetState, SysError> {
        let joined = self.joined();
        Ok(NetState {
            devices: vec![
                Device {
                    name: "enp0s31f6".into(),
                    kind: DeviceKind::Wired,
                    state: LinkState::Connected,
                    connection: Some("有線接続 1".into()),
                },
                Device {
                    name: "wlp2s0".into(),
                    kind: DeviceKind::Wifi,
                    state: if joined.is_some() {
                        LinkState::Connected
                    } else {
                        LinkState::Disconnected
                    },
                    connection: joined,
                },
            ],
        })
    }
}
