//! The event-sourced domain: one folder per aggregate (state, `handle`, `apply`), with its
//! commands, events, errors and given/when/then tests.

pub mod audit_read;
pub mod credential;
pub mod login_attempt;
pub mod session;
pub mod tenant;
pub mod user;

/// Services injected into aggregates: they decide without I/O, so nothing is needed yet.
#[derive(Clone, Debug, Default)]
pub struct NoServices;
