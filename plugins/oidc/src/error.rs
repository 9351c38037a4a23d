//! Why a login failed, before it becomes the SDK's [`PluginError`].
//!
//! Every variant maps to one reason code of [`gatehouse_plugin_sdk::reason`]. Details are built
//! by this crate only from safe material: endpoint kinds, status codes, OAuth error codes and
//! fixed texts. Tokens, codes, `state`, nonces, PKCE verifiers and secrets never reach them.

use gatehouse_plugin_sdk::{reason, HttpError, HttpErrorKind, PluginError};

/// A refused or failed login step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// The stored connection config no longer validates.
    #[error("{0}")]
    Config(PluginError),
    /// The host did not deliver an HTTP answer.
    #[error("{what}: {kind:?}: {detail}")]
    Transport {
        /// Which request failed ("discovery document", "token endpoint", ...).
        what: &'static str,
        /// The host's category for the failure.
        kind: HttpErrorKind,
        /// The host's safe explanation.
        detail: String,
    },
    /// The identity provider answered with an unusable HTTP status.
    #[error("{0}")]
    Unreachable(String),
    /// The discovery document is missing, malformed or inconsistent.
    #[error("{0}")]
    Discovery(String),
    /// The identity provider sent an error to the callback (RFC 6749 §4.1.2.1).
    #[error("{0}")]
    IdpError(String),
    /// The callback is malformed: no code, duplicate parameters.
    #[error("{0}")]
    Callback(String),
    /// The `iss` callback parameter is not the discovered issuer (RFC 9207).
    #[error("{0}")]
    IssuerMismatch(String),
    /// The token endpoint refused or botched the code exchange.
    #[error("{0}")]
    TokenExchange(String),
    /// The ID token failed parsing, signature or claim checks.
    #[error("{0}")]
    IdToken(String),
    /// The ID token's nonce is missing or is not the one issued for this login.
    #[error("{0}")]
    Nonce(String),
    /// The userinfo endpoint failed or contradicted the ID token.
    #[error("{0}")]
    UserInfo(String),
    /// The host passed a value that breaks the plugin contract.
    #[error("{0}")]
    Host(String),
}

impl LoginError {
    /// A transport failure of the request named `what`.
    pub fn transport(what: &'static str, error: &HttpError) -> Self {
        LoginError::Transport {
            what,
            kind: error.kind,
            detail: error.detail.clone(),
        }
    }

    /// The reason code reported to the host.
    pub fn reason(&self) -> &'static str {
        match self {
            LoginError::Config(_) => reason::INVALID_CONFIG,
            LoginError::Transport {
                kind: HttpErrorKind::Blocked,
                ..
            } => reason::DESTINATION_BLOCKED,
            LoginError::Transport { .. } | LoginError::Unreachable(_) => reason::IDP_UNREACHABLE,
            LoginError::Discovery(_) => reason::DISCOVERY_FAILED,
            LoginError::IdpError(_) => reason::IDP_ERROR,
            LoginError::Callback(_) => reason::CALLBACK_INVALID,
            LoginError::IssuerMismatch(_) => reason::ISSUER_MISMATCH,
            LoginError::TokenExchange(_) => reason::TOKEN_EXCHANGE_FAILED,
            LoginError::IdToken(_) => reason::ID_TOKEN_INVALID,
            LoginError::Nonce(_) => reason::NONCE_MISMATCH,
            LoginError::UserInfo(_) => reason::USERINFO_FAILED,
            LoginError::Host(_) => reason::PLUGIN_FAILURE,
        }
    }
}

impl From<LoginError> for PluginError {
    fn from(error: LoginError) -> Self {
        match error {
            LoginError::Config(inner) => inner,
            other => PluginError::new(other.reason(), other.to_string()),
        }
    }
}

/// Keeps at most `max` characters of untrusted text, replacing anything outside printable
/// ASCII with `?`, so a detail can neither smuggle control characters nor grow without bound.
pub fn sanitize(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect();
    if text.chars().count() > max {
        out.push_str("...");
    }
    out
}
