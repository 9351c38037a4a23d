//! The plain OAuth 2.0 protocol plugin for Gatehouse.
//!
//! For providers that speak OAuth 2.0 (RFC 6749) but not OpenID Connect: Facebook, GitHub and
//! in-house servers. The plugin runs the authorization code grant with `state` and, unless
//! switched off, PKCE (RFC 7636), exchanges the code for a bearer access token, reads the
//! user-info document with it (RFC 6750 §2.1) and maps that JSON to an identity through the
//! JSON pointers (RFC 6901) of the connection config.
//!
//! Nothing here is signed: the identity is only as good as the TLS connection to the provider's
//! token and user-info endpoints, which is why both are configured by an administrator and
//! never taken from the callback. The plugin keeps no state between calls; all network access
//! goes through the host ([`Host::http`]), which enforces the deployment's network policy. The
//! host, not this plugin, enforces `allowed_domains` and `require_verified_email`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod callback;
pub mod config;
mod error;
pub mod http;
pub mod login;
mod token;
mod userinfo;

use gatehouse_plugin_sdk::{
    capability, BeginLoginRequest, BeginLoginResponse, CallbackBinding, ExternalIdentity, FinishLoginRequest,
    Host, PluginError, PluginInfo, Protocol, ValidateConfigRequest, ValidatedConfig,
};

use crate::config::Config;

/// The plain OAuth 2.0 protocol.
#[derive(Debug, Default)]
pub struct OAuth2;

impl OAuth2 {
    /// The plugin instance (it has no state).
    pub fn new() -> Self {
        OAuth2
    }
}

impl Protocol for OAuth2 {
    fn describe(&self) -> PluginInfo {
        PluginInfo {
            protocol: PROTOCOL.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            display_name: "OAuth 2.0".to_owned(),
            secret_fields: vec!["/client_secret".to_owned()],
            callback: CallbackBinding::Query,
            config_schema: config::schema(),
            capabilities: vec![capability::PKCE.to_owned()],
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
        // Building the authorization URL needs no network: there is no discovery in plain
        // OAuth 2.0, every endpoint is in the config.
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

const PROTOCOL: &str = "oauth2";

gatehouse_plugin_sdk::export_plugin!(OAuth2, "oauth2", OAuth2::new);
