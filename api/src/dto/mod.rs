//! Request and response bodies of the JSON API, with their OpenAPI schemas.

pub mod audit;
pub mod audit_export;
pub mod audit_summary;
pub mod config_history;
pub mod credentials;
pub mod session;
pub mod tenants;
