//! Fetching and checking the OpenID Provider metadata (OIDC Discovery 1.0).

use gatehouse_plugin_sdk::CachePolicy;
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{AdditionalProviderMetadata, ProviderMetadata};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Config, WELL_KNOWN_SUFFIX};
use crate::error::LoginError;
use crate::http::{get_json, Fetch};

/// Provider metadata as openidconnect parses it, plus the RFC 9207 flag.
pub type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// Metadata fields openidconnect's core set does not model.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ExtraMetadata {
    /// RFC 9207 §3. Kept as raw JSON: only the boolean `true` turns the check on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    authorization_response_iss_parameter_supported: Option<Value>,
}

impl AdditionalProviderMetadata for ExtraMetadata {}

impl ExtraMetadata {
    /// Whether the provider promises an `iss` parameter on every authorization response.
    pub fn iss_parameter_supported(&self) -> bool {
        self.authorization_response_iss_parameter_supported == Some(Value::Bool(true))
    }
}

/// Fetches the provider metadata through the host (cached for an hour) and checks it.
pub fn discover(fetch: &dyn Fetch, config: &Config) -> Result<Metadata, LoginError> {
    let cache = CachePolicy {
        max_age_secs: DISCOVERY_MAX_AGE_SECS,
        refresh: false,
        min_refresh_secs: 0,
        scope: "discovery".into(),
    };
    let response = get_json(
        fetch,
        &config.discovery_url,
        Vec::new(),
        Some(cache),
        "discovery document",
        LoginError::Unreachable,
    )?;

    let metadata: Metadata = serde_json::from_slice(&response.body).map_err(|error| {
        LoginError::Discovery(format!(
            "the discovery document is not valid provider metadata ({})",
            serde_error_category(&error)
        ))
    })?;
    check_issuer(&metadata, &config.discovery_url)?;
    Ok(metadata)
}

/// OIDC Discovery 1.0 §4.3: the `issuer` in the document must be the issuer whose
/// `/.well-known/openid-configuration` we fetched, or an attacker controlling one provider's
/// document could pose as another issuer.
fn check_issuer(metadata: &Metadata, discovery_url: &str) -> Result<(), LoginError> {
    let issuer = metadata.issuer().as_str();
    let expected = format!(
        "{}{WELL_KNOWN_SUFFIX}",
        issuer
            .strip_suffix('/')
            .unwrap_or(issuer)
    );
    if expected != discovery_url {
        return Err(LoginError::Discovery(format!(
            "the document's issuer {issuer:?} does not match the discovery URL \
             (OIDC Discovery 1.0 section 4.3)"
        )));
    }
    Ok(())
}

/// A short, content-free description of a JSON error: its category and position only, never
/// the offending text.
pub fn serde_error_category(error: &serde_json::Error) -> String {
    let category = match error.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "malformed JSON",
        serde_json::error::Category::Data => "missing or mistyped field",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!(
        "{category} at line {} column {}",
        error.line(),
        error.column()
    )
}

const DISCOVERY_MAX_AGE_SECS: u64 = 3600;
