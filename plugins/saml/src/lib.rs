//! The SAML 2.0 service provider plugin for Gatehouse.
//!
//! SP-initiated login sends an AuthnRequest over HTTP-Redirect ([`authn_request`]); the IdP
//! answers over HTTP-POST to the ACS ([`acs`]), where every check runs as a numbered early
//! return with its own reason code ([`reason`]). Signature verification is samael's (xmlsec);
//! everything samael leaves to its caller, or gets wrong by default, is checked here: a
//! certificate is always configured (samael fails open without one), algorithms are
//! restricted, references and IDs are checked before xmlsec runs, and Destination, Issuer,
//! Status, Audience, Recipient, times and InResponseTo are checked here, on the verified
//! content.
//!
//! The host owns request IDs, replay records and allowed-domain checks; the plugin keeps no
//! state between calls.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod acs;
pub mod authn_request;
pub mod config;
pub mod http;
pub mod idp_metadata;
pub mod reason;
pub mod sp_key;
pub mod sp_metadata;
#[cfg(feature = "testing")]
pub mod testing;
mod xml;

use gatehouse_plugin_sdk::{
    capability, BeginLoginRequest, BeginLoginResponse, CallbackBinding, ExternalIdentity, FinishLoginRequest,
    Host, InspectReport, InspectRequest, MetadataRequest, MetadataResponse, PluginError,
    PluginInfo, Protocol, ValidateConfigRequest, ValidatedConfig,
};

use crate::config::Config;

/// The SAML 2.0 protocol.
#[derive(Debug, Default)]
pub struct Saml;

impl Saml {
    /// The plugin instance (it has no state).
    pub fn new() -> Self {
        Saml
    }
}

impl Protocol for Saml {
    fn describe(&self) -> PluginInfo {
        PluginInfo {
            protocol: PROTOCOL.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            display_name: "SAML 2.0".to_owned(),
            secret_fields: vec!["/sp_private_key".to_owned()],
            callback: CallbackBinding::FormPost,
            config_schema: config::schema(),
            capabilities: [
                capability::METADATA,
                capability::INSPECT_CONNECTION,
                capability::IDP_INITIATED,
                capability::SIGNED_REQUESTS,
                capability::ENCRYPTED_ASSERTIONS,
                capability::REMOTE_METADATA,
                capability::REPLAY_CLAIM,
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    }

    fn validate_config(
        &self,
        request: ValidateConfigRequest,
    ) -> Result<ValidatedConfig, PluginError> {
        let (config, warnings) = Config::from_admin(&request.config)?;
        Ok(ValidatedConfig {
            config: config.to_value(),
            setup: config.setup(),
            warnings,
        })
    }

    fn begin_login(
        &self,
        host: &Host<'_>,
        request: BeginLoginRequest,
    ) -> Result<BeginLoginResponse, PluginError> {
        authn_request::begin_login(host, request)
    }

    fn finish_login(
        &self,
        host: &Host<'_>,
        request: FinishLoginRequest,
    ) -> Result<ExternalIdentity, PluginError> {
        acs::finish_login(host, request)
    }

    fn metadata(&self, request: MetadataRequest) -> Result<MetadataResponse, PluginError> {
        sp_metadata::metadata(request)
    }

    fn inspect_connection(
        &self,
        host: &Host<'_>,
        request: InspectRequest,
    ) -> Result<InspectReport, PluginError> {
        inspect(host, &request.config)
    }
}

/// With `idp_metadata_url`, reads the metadata (the host's shared copy) and warns about
/// certificates nearing their end, or about metadata that cannot be read; fixed certificates
/// are already covered by validation.
fn inspect(fetch: &dyn http::Fetch, config: &serde_json::Value) -> Result<InspectReport, PluginError> {
    let config = Config::parse(config)?;
    if config.idp_metadata_url.is_none() {
        return Ok(InspectReport::default());
    }
    let warnings = match idp_metadata::resolve(fetch, &config, idp_metadata::Freshness::Cached) {
        Ok(resolved) => resolved.expiry_warnings(),
        Err(error) => vec![format!("the IdP metadata could not be used ({}): {}", error.code, error.detail)],
    };
    Ok(InspectReport { warnings })
}

const PROTOCOL: &str = "saml";

gatehouse_plugin_sdk::export_plugin!(Saml, "saml", Saml::new);
