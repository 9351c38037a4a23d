//! The CAS 3.0 protocol plugin for Gatehouse.
//!
//! CAS (Central Authentication Service, Apereo CAS Protocol 3.0) is still how many
//! universities sign people in. The flow:
//!
//! 1. `begin_login` sends the browser to `{server_url}/login?service=S`, where the service URL
//!    `S` is Gatehouse's callback URL with the host's `state` in its query. CAS has no `state`
//!    parameter of its own; it sends the browser back to `S` unchanged, with `ticket=ST-...`
//!    appended, so the host finds its `state` where it expects it.
//! 2. `finish_login` reads the service ticket and validates it once, server to server, at
//!    `{server_url}/p3/serviceValidate?service=S&ticket=...` through the host's HTTP client
//!    (never cached), then maps the CAS 3.0 XML answer (`cas:user`, `cas:attributes`) to an
//!    identity.
//!
//! Nothing in the answer is signed: the identity is as good as the TLS connection to the CAS
//! server, which is configured by an administrator and never taken from the callback. Service
//! tickets are single-use at the CAS server, which is what makes a replayed ticket fail.
//! The plugin keeps no state between calls and uses only `gatehouse-plugin-sdk`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod http;
pub mod login;
pub mod response;

use gatehouse_plugin_sdk::{
    BeginLoginRequest, BeginLoginResponse, CallbackBinding, ExternalIdentity, FinishLoginRequest,
    Host, PluginError, PluginInfo, Protocol, ValidateConfigRequest, ValidatedConfig,
};

use crate::config::Config;

/// Reason code for a `/p3/serviceValidate` answer that is not a well-formed CAS 3.0 document
/// (not XML, a DTD, an unknown root, no user).
pub const CAS_RESPONSE_INVALID: &str = "cas_response_invalid";

/// The CAS 3.0 protocol.
#[derive(Debug, Default)]
pub struct Cas;

impl Cas {
    /// The plugin instance (it has no state).
    pub fn new() -> Self {
        Cas
    }
}

impl Protocol for Cas {
    fn describe(&self) -> PluginInfo {
        PluginInfo {
            protocol: PROTOCOL.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            display_name: "CAS 3.0".to_owned(),
            // CAS service validation needs no client secret.
            secret_fields: Vec::new(),
            callback: CallbackBinding::Query,
            config_schema: config::schema(),
            // CAS has no PKCE, nonce or metadata; the CAS server itself refuses a reused ticket.
            capabilities: Vec::new(),
        }
    }

    fn validate_config(
        &self,
        request: ValidateConfigRequest,
    ) -> Result<ValidatedConfig, PluginError> {
        let config = Config::parse(&request.config)?;
        Ok(ValidatedConfig {
            config: config.to_value(),
            setup: config.setup(),
            warnings: config.warnings(),
        })
    }

    fn begin_login(
        &self,
        _host: &Host<'_>,
        request: BeginLoginRequest,
    ) -> Result<BeginLoginResponse, PluginError> {
        login::begin_login(request)
    }

    fn finish_login(
        &self,
        host: &Host<'_>,
        request: FinishLoginRequest,
    ) -> Result<ExternalIdentity, PluginError> {
        login::finish_login(host, request)
    }
}

/// The protocol id used in connection configs.
pub const PROTOCOL: &str = "cas";

gatehouse_plugin_sdk::export_plugin!(Cas, "cas", Cas::new);

#[cfg(test)]
mod tests;
