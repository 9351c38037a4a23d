//! The JSON messages exchanged through [`crate::abi::CallFn`].
//!
//! The host owns all flow state: it generates `state`, nonce and PKCE verifier, stores them,
//! checks `state` itself before calling [`Method::FinishLogin`], and passes the expected values
//! in. A plugin keeps no per-login memory.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The calls a plugin answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `()` → [`PluginInfo`].
    Describe,
    /// [`ValidateConfigRequest`] → [`ValidatedConfig`].
    ValidateConfig,
    /// [`BeginLoginRequest`] → [`BeginLoginResponse`].
    BeginLogin,
    /// [`FinishLoginRequest`] → [`ExternalIdentity`].
    FinishLogin,
    /// [`MetadataRequest`] → [`MetadataResponse`]: the service provider metadata a
    /// protocol publishes (SAML). Plugins without metadata refuse it.
    Metadata,
    /// [`InspectRequest`] → [`InspectReport`]: warnings about a stored connection that need
    /// the network (an IdP certificate in remote metadata nearing its end).
    InspectConnection,
}

impl Method {
    /// Wire name of the method.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Describe => "describe",
            Method::ValidateConfig => "validate_config",
            Method::BeginLogin => "begin_login",
            Method::FinishLogin => "finish_login",
            Method::Metadata => "metadata",
            Method::InspectConnection => "inspect_connection",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Method> {
        Some(match name {
            "describe" => Method::Describe,
            "validate_config" => Method::ValidateConfig,
            "begin_login" => Method::BeginLogin,
            "finish_login" => Method::FinishLogin,
            "metadata" => Method::Metadata,
            "inspect_connection" => Method::InspectConnection,
            _ => return None,
        })
    }
}

/// What a plugin says about itself.
///
/// Build it with `..PluginInfo::default()` after the fields you set, so that fields added by a
/// later SDK (always optional, see the ABI policy) do not break your build.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PluginInfo {
    /// Protocol id used in connection configs (`"oidc"`); equal to the descriptor's.
    pub protocol: String,
    /// Version of the plugin itself.
    pub version: String,
    /// Human-readable protocol name (`"OpenID Connect"`).
    pub display_name: String,
    /// JSON pointers (RFC 6901) of config fields that are secrets. The host encrypts them at
    /// rest and never returns them through its API.
    pub secret_fields: Vec<String>,
    /// How the identity provider returns the browser: a GET to
    /// `/{tenant}/sso/{connection}/callback` with query parameters (OIDC, OAuth 2.0), or a
    /// form POST to `/{tenant}/sso/{connection}/acs` (SAML HTTP-POST binding).
    #[serde(default)]
    pub callback: CallbackBinding,
    /// JSON Schema (draft 2020-12) of the connection `config` the plugin accepts; see
    /// [`crate::schema`]. The host refuses to load a plugin whose schema does not compile, and
    /// checks each config an administrator sends against it before `validate_config`. `null`
    /// (the default, for plugins built before schemas existed) skips that check.
    #[serde(default)]
    pub config_schema: Value,
    /// What the plugin does beyond beginning and finishing logins, from [`capability`]. The
    /// host calls [`Method::Metadata`] and [`Method::InspectConnection`] only on plugins that
    /// declare them; the other names inform administrators (`GET /api/v1/plugins`).
    #[serde(default)]
    pub capabilities: Vec<String>,
}

/// The capability names a plugin may declare in [`PluginInfo::capabilities`].
pub mod capability {
    /// Answers [`super::Method::Metadata`]: the host serves the connection's service provider
    /// metadata at `/{tenant}/sso/{connection}/metadata`.
    pub const METADATA: &str = "metadata";
    /// Answers [`super::Method::InspectConnection`] with warnings that need the network.
    pub const INSPECT_CONNECTION: &str = "inspect_connection";
    /// Uses the host's PKCE verifier (RFC 7636).
    pub const PKCE: &str = "pkce";
    /// Binds the login to the host's nonce (replay protection inside the IdP's answer).
    pub const NONCE: &str = "nonce";
    /// Can accept answers the IdP sends without a request from Gatehouse (IdP-initiated
    /// login), when the connection allows it.
    pub const IDP_INITIATED: &str = "idp_initiated";
    /// Signs its requests to the IdP with a key of the connection.
    pub const SIGNED_REQUESTS: &str = "signed_requests";
    /// Decrypts encrypted answers with a key of the connection.
    pub const ENCRYPTED_ASSERTIONS: &str = "encrypted_assertions";
    /// Reads IdP settings from a metadata or discovery document at a URL.
    pub const REMOTE_METADATA: &str = "remote_metadata";
    /// Returns a [`super::ReplayClaim`] so the host refuses a replayed answer on every node.
    pub const REPLAY_CLAIM: &str = "replay_claim";

    /// Every name above, for checks and documentation.
    pub const ALL: [&str; 9] = [
        METADATA,
        INSPECT_CONNECTION,
        PKCE,
        NONCE,
        IDP_INITIATED,
        SIGNED_REQUESTS,
        ENCRYPTED_ASSERTIONS,
        REMOTE_METADATA,
        REPLAY_CLAIM,
    ];
}

/// How the identity provider answers.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CallbackBinding {
    /// GET with query parameters; the host's `state` travels as `state`.
    #[default]
    Query,
    /// POST with form parameters; the host's `state` travels as `RelayState`.
    FormPost,
}

/// Asks the plugin to check and normalise a connection config.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ValidateConfigRequest {
    /// The config as the admin sent it (secrets in plain text, as sent).
    pub config: Value,
}

/// A config the plugin accepts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ValidatedConfig {
    /// The normalised config to store.
    pub config: Value,
    /// What the IdP administrator must be told, besides the redirect URL the host adds
    /// (for example `"scopes": "openid profile email"`).
    pub setup: BTreeMap<String, String>,
    /// Things the administrator should act on soon (a certificate about to expire); the host
    /// shows them and records them in the audit log.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Starts a login at the identity provider.
#[derive(Clone, Serialize, Deserialize)]
pub struct BeginLoginRequest {
    /// Tenant slug, for logging and for binding.
    pub tenant: String,
    /// Connection id within the tenant.
    pub connection_id: String,
    /// The stored connection config, secrets decrypted.
    pub config: Value,
    /// Where the identity provider must send the browser back.
    pub redirect_uri: String,
    /// Opaque anti-forgery value generated by the host.
    pub state: String,
    /// Replay-protection value generated by the host, for protocols that carry one.
    pub nonce: String,
    /// PKCE code verifier (RFC 7636) generated by the host.
    pub pkce_verifier: String,
    /// Request id generated by the host for protocols that correlate answers with requests
    /// (SAML `ID`/`InResponseTo`); a valid XML NCName.
    #[serde(default)]
    pub request_id: String,
    /// Gatehouse's own identifier for this connection (the SAML SP entity ID).
    #[serde(default)]
    pub sp_entity_id: String,
}

impl fmt::Debug for BeginLoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BeginLoginRequest")
            .field("tenant", &self.tenant)
            .field("connection_id", &self.connection_id)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// Where to send the browser.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BeginLoginResponse {
    /// The identity provider URL to redirect the browser to.
    pub redirect_url: String,
}

/// Completes a login from the identity provider's callback.
///
/// The host has already matched `state` against the flow it stored for this browser, tenant
/// and connection, and consumed it; the values passed here are the stored, expected ones.
#[derive(Clone, Serialize, Deserialize)]
pub struct FinishLoginRequest {
    /// Tenant slug.
    pub tenant: String,
    /// Connection id within the tenant.
    pub connection_id: String,
    /// The stored connection config, secrets decrypted.
    pub config: Value,
    /// The redirect URI used when the login began.
    pub redirect_uri: String,
    /// The `state` the host issued (already checked by the host).
    pub state: String,
    /// The nonce the host issued; the plugin must check it.
    pub nonce: String,
    /// The PKCE verifier the host issued.
    pub pkce_verifier: String,
    /// Callback parameters exactly as received (query string or form body), untrusted.
    pub params: Vec<(String, String)>,
    /// The request id of the login this answer must belong to; `None` for an unsolicited
    /// answer the connection allows (then any correlation id in the answer must be refused).
    #[serde(default)]
    pub request_id: Option<String>,
    /// Gatehouse's own identifier for this connection (the SAML SP entity ID).
    #[serde(default)]
    pub sp_entity_id: String,
}

impl fmt::Debug for FinishLoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FinishLoginRequest")
            .field("tenant", &self.tenant)
            .field("connection_id", &self.connection_id)
            .finish_non_exhaustive()
    }
}

/// The identity the plugin verified.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ExternalIdentity {
    /// Identifier of the identity provider (the OIDC issuer, the SAML entity id).
    pub issuer: String,
    /// Stable subject identifier at that provider.
    pub subject: String,
    /// Email as asserted by the provider, not yet checked against allowed domains.
    pub email: Option<String>,
    /// True only when the provider asserted the email as verified with a true boolean.
    pub email_verified: bool,
    /// Display name.
    pub name: Option<String>,
    /// A one-time identifier of the answer (the SAML assertion ID) the host must accept only
    /// once until it expires, across every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayClaim>,
}

/// An answer identifier that may be used once.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReplayClaim {
    /// The identifier, unique per issuer.
    pub id: String,
    /// Until when it must be remembered (Unix seconds); after that the answer is expired anyway.
    pub expires_at: i64,
}

/// Asks for the service provider metadata of a connection.
#[derive(Clone, Serialize, Deserialize)]
pub struct MetadataRequest {
    /// Tenant slug.
    pub tenant: String,
    /// Connection id.
    pub connection_id: String,
    /// The stored connection config, secrets decrypted.
    pub config: Value,
    /// Gatehouse's identifier for the connection.
    pub sp_entity_id: String,
    /// Where the identity provider posts its answers.
    pub acs_url: String,
}

impl fmt::Debug for MetadataRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetadataRequest")
            .field("tenant", &self.tenant)
            .field("connection_id", &self.connection_id)
            .finish_non_exhaustive()
    }
}

/// Asks a plugin to look at a stored connection with network access.
#[derive(Clone, Serialize, Deserialize)]
pub struct InspectRequest {
    /// Tenant slug.
    pub tenant: String,
    /// Connection id.
    pub connection_id: String,
    /// The stored connection config, secrets decrypted.
    pub config: Value,
}

impl fmt::Debug for InspectRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InspectRequest")
            .field("tenant", &self.tenant)
            .field("connection_id", &self.connection_id)
            .finish_non_exhaustive()
    }
}

/// What an inspection found.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct InspectReport {
    /// Things the administrator should act on soon.
    pub warnings: Vec<String>,
}

/// A published metadata document.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MetadataResponse {
    /// Media type, such as `application/samlmetadata+xml`.
    pub content_type: String,
    /// The document.
    pub body: String,
}

/// A refusal from a plugin: a stable reason code and a detail safe to show an administrator.
/// The detail must never contain tokens, codes, secrets or raw assertions.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct PluginError {
    /// Stable reason code, lowercase with underscores (see [`reason`]).
    pub code: String,
    /// Safe, human-readable explanation.
    pub detail: String,
    /// For config validation: JSON pointer of the offending field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For a refused login: a decoded, redacted view of what the identity provider sent
    /// (signature values, certificates and attribute values masked), for the tenant's
    /// administrators only. The host keeps it sealed for a limited time and never shows it to
    /// the person signing in or writes it to a log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<String>,
}

impl PluginError {
    /// An error with a reason code and safe detail.
    pub fn new(code: &str, detail: impl Into<String>) -> Self {
        PluginError {
            code: code.to_owned(),
            detail: detail.into(),
            field: None,
            diagnostics: None,
        }
    }

    /// A config error naming the field (JSON pointer such as `/discovery_url`).
    pub fn invalid_config(field: &str, detail: impl Into<String>) -> Self {
        PluginError {
            code: reason::INVALID_CONFIG.to_owned(),
            detail: detail.into(),
            field: Some(field.to_owned()),
            diagnostics: None,
        }
    }

    /// Attaches a redacted view of the identity provider's answer for administrators.
    pub fn with_diagnostics(mut self, diagnostics: impl Into<String>) -> Self {
        self.diagnostics = Some(diagnostics.into());
        self
    }
}

/// Reason codes shared by plugins and host. Plugins may add their own, lowercase with
/// underscores; these are the ones the host and the audit API document.
pub mod reason {
    /// The connection config is not acceptable.
    pub const INVALID_CONFIG: &str = "invalid_config";
    /// The identity provider returned an error to the callback.
    pub const IDP_ERROR: &str = "idp_error";
    /// The identity provider could not be reached or answered with something unusable.
    pub const IDP_UNREACHABLE: &str = "idp_unreachable";
    /// The host refused an outbound address (loopback, private, link-local).
    pub const DESTINATION_BLOCKED: &str = "destination_blocked";
    /// The discovery document is missing, malformed or inconsistent.
    pub const DISCOVERY_FAILED: &str = "discovery_failed";
    /// The callback lacks the authorization code or carries malformed parameters.
    pub const CALLBACK_INVALID: &str = "callback_invalid";
    /// The `iss` callback parameter (RFC 9207) is not the discovered issuer.
    pub const ISSUER_MISMATCH: &str = "issuer_mismatch";
    /// The token endpoint refused the code exchange.
    pub const TOKEN_EXCHANGE_FAILED: &str = "token_exchange_failed";
    /// The ID token failed signature or claim checks.
    pub const ID_TOKEN_INVALID: &str = "id_token_invalid";
    /// The ID token nonce does not match the one issued for this login.
    pub const NONCE_MISMATCH: &str = "nonce_mismatch";
    /// The user-info endpoint failed.
    pub const USERINFO_FAILED: &str = "userinfo_failed";
    /// The plugin panicked.
    pub const PLUGIN_PANIC: &str = "plugin_panic";
    /// The plugin failed outside the protocol (bad output, timeout, missing).
    pub const PLUGIN_FAILURE: &str = "plugin_failure";
    /// The plugin does not implement the requested method.
    pub const UNSUPPORTED: &str = "unsupported";
}

/// Caching the host may apply to a GET request.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CachePolicy {
    /// Reuse a stored answer younger than this many seconds.
    pub max_age_secs: u64,
    /// Ignore the stored answer and fetch again, unless the last fetch of this URL for this
    /// cache scope happened less than `min_refresh_secs` ago.
    #[serde(default)]
    pub refresh: bool,
    /// Lower bound between two forced refreshes.
    #[serde(default)]
    pub min_refresh_secs: u64,
    /// Scope of the cache entry (the host adds tenant and connection to it).
    #[serde(default)]
    pub scope: String,
}

/// An outbound HTTP request made through the host.
#[derive(Clone, Serialize, Deserialize)]
pub struct HttpRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// Absolute http or https URL.
    pub url: String,
    /// Request headers.
    pub headers: Vec<(String, String)>,
    /// Request body.
    #[serde(with = "base64_bytes")]
    pub body: Vec<u8>,
    /// Optional caching for GET requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CachePolicy>,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Headers and body may carry client secrets or authorization codes.
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The answer to an [`HttpRequest`].
#[derive(Clone, Serialize, Deserialize)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Response body (at most the host's size limit).
    #[serde(with = "base64_bytes")]
    pub body: Vec<u8>,
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// Why the host did not deliver an HTTP response.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, thiserror::Error)]
#[error("{kind:?}: {detail}")]
pub struct HttpError {
    /// Category of failure.
    pub kind: HttpErrorKind,
    /// Safe explanation (never includes request bodies or headers).
    pub detail: String,
}

/// Category of an [`HttpError`].
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HttpErrorKind {
    /// The destination resolves to an address the deployment does not allow.
    Blocked,
    /// The URL or request is malformed or uses an unsupported scheme or method.
    InvalidRequest,
    /// Connection failed or was reset.
    Connect,
    /// No complete answer within the host's time limit.
    Timeout,
    /// The response exceeded the host's size limit.
    TooLarge,
}

mod base64_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}
