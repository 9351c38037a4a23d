//! The protocol plugins under test, one file each. To add a plugin, implement
//! [`crate::subject::Subject`] for it here and add one `conformance_suite!` line in `main.rs`.

pub mod cas;
pub mod oauth2;
pub mod oidc;
pub mod saml;
