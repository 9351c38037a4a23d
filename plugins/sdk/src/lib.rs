//! The Gatehouse plugin SDK: the one crate shared by the host and protocol plugins.
//!
//! A plugin implements [`Protocol`] and exports it with [`export_plugin!`]; the SDK handles the
//! C ABI, panic containment and JSON serialization, so plugin code needs no `unsafe`.
//! The host side (library loading) lives in `gatehouse-core` and uses [`abi`] directly.

#![warn(missing_docs)]

pub mod abi;
pub mod config;
pub mod messages;
pub mod plugin;
pub mod schema;

pub use messages::{
    capability, reason, BeginLoginRequest, BeginLoginResponse, CachePolicy, CallbackBinding, ExternalIdentity,
    FinishLoginRequest, HttpError, HttpErrorKind, HttpRequest, HttpResponse, InspectReport,
    InspectRequest, MetadataRequest,
    MetadataResponse, Method, PluginError, PluginInfo, ReplayClaim, ValidateConfigRequest,
    ValidatedConfig,
};
pub use plugin::{Host, Protocol};
