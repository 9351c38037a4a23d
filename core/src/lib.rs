//! Gatehouse's core: the event-sourced domain, its projections, storage and the plugin host.
//! It knows nothing of HTTP serving; the `gatehouse` crate (`api/`) does.

#![deny(unsafe_code)]

pub mod crypto;
pub mod domain;
pub mod email;
pub mod ids;
#[allow(unsafe_code)] // The plugin loader and host callbacks: each block says why.
pub mod plugins;
pub mod projections;
pub mod service;
pub mod store;

pub use service::{Gatehouse, Settings};
