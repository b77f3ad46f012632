//! # kazashi-gui
//!
//! The product: the station window ([`app`], egui, views over `kazashi_node`) and the commands
//! of the `kazashi` binary. Nothing here knows the simulator: the window is handed its node and
//! its card readers, and every command opens an enrolled laptop's folder. The lab
//! (`kazashi-sim`, the `kazashi-lab` binary) sits above this crate.

pub mod admin_args;
pub mod app;
pub mod bundle_cmd;
pub mod card_cmd;
pub mod deployment_cmd;
pub mod enrol_cmd;
pub mod lang;
pub mod node_cmd;
pub mod purge_cmd;
pub mod purged_folder;
pub mod report_cmd;
pub mod roster_cmd;
pub mod staff_cmd;
pub mod station_cmd;
pub mod update_cmd;
