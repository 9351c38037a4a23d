//! The OpenID Connect protocol plugin for Gatehouse.
//!
//! Implements the authorization code flow with PKCE (OIDC Core 1.0 §3.1, RFC 7636) as a
//! [`Protocol`]. The plugin keeps no state between calls: the host generates and stores
//! `state`, nonce and PKCE verifier and passes them in. All network access goes through the
//! host ([`Host::http`]), which enforces the deployment's network policy.
//!
//! The host, not this plugin, enforces `allowed_domains` and `require_verified_email`; the
//! plugin only normalises them and reports `email_verified` faithfully.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod callback;
pub mod config;
mod discovery;
mod error;
pub mod http;
mod id_token;
pub mod login;
mod token;
mod userinfo;

use gatehouse_plugin_sdk::{
    capability, BeginLoginRequest, BeginLoginResponse, CallbackBinding, ExternalIdentity, FinishLoginRequest, Host, PluginError,
    PluginInfo, Protocol, ValidateConfigRequest, ValidatedConfig,
};

use crate::config::Config;

/// The OpenID Connect protocol.
#[derive(Debug, Default)]
pub struct Oidc;

impl Oidc {
    /// The plugin instance (it has no state).
    pub fn new() -> Self {
        Oidc
    }
}

impl Protocol for Oidc {
    fn describe(&self) -> PluginInfo {
        PluginInfo {
            protocol: PROTOCOL.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            display_name: "OpenID Connect".to_owned(),
            secret_fields: vec!["/client_secret".to_owned()],
            callback: CallbackBinding::Query,
            config_schema: config::schema(),
            capabilities: [capability::PKCE, capability::NONCE, capability::REMOTE_METADATA]
                .map(str::to_owned)
                .to_vec(),
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
            warnings: Vec::new(),
        })
    }

    fn begin_login(
        &self,
        host: &Host<'_>,
        request: BeginLoginRequest,
    ) -> Result<BeginLoginResponse, PluginError> {
        login::begin_login(host, request)
    }

    fn finish_login(
        &self,
        host: &Host<'_>,
        request: FinishLoginRequest,
    ) -> Result<ExternalIdentity, PluginError> {
        login::finish_login(host, request)
    }
}

const PROTOCOL: &str = "oidc";

gatehouse_plugin_sdk::export_plugin!(Oidc, "oidc", Oidc::new);
