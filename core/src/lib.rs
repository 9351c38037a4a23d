//! Gatehouse's core: the event-sourced domain, its projections, storage and the plugin host.
//! It knows nothing of HTTP serving; the `gatehouse` crate (`api/`) does.

pub mod crypto;
pub mod domain;
pub mod email;
pub mod ids;
pub mod plugins;
pub mod projections;
pub mod service;
pub mod store;

pub use service::{Gatehouse, Settings};
