//! Why a login failed, before it becomes the SDK's [`PluginError`].
//!
//! Every variant maps to one reason code of [`gatehouse_plugin_sdk::reason`]. Details are built
//! only from safe material: endpoint names, status codes, OAuth error codes, JSON pointers and
//! fixed texts. Codes, tokens, `state`, PKCE verifiers, secrets and user-info values never
//! reach them.

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
        /// Which request failed ("token endpoint", "user-info endpoint").
        what: &'static str,
        /// The host's category for the failure.
        kind: HttpErrorKind,
        /// The host's safe explanation.
        detail: String,
    },
    /// The provider sent an error to the callback (RFC 6749 §4.1.2.1).
    #[error("{0}")]
    IdpError(String),
    /// The callback is malformed: no code, repeated parameters.
    #[error("{0}")]
    Callback(String),
    /// The token endpoint refused or botched the code exchange.
    #[error("{0}")]
    TokenExchange(String),
    /// The user-info endpoint failed, or its document does not map to an identity.
    #[error("{message}")]
    UserInfo {
        /// Safe explanation.
        message: String,
        /// Shape of the user-info document (member names and JSON types, no values), for
        /// administrators fixing a mapping.
        diagnostics: Option<String>,
    },
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

    /// A user-info failure without diagnostics.
    pub fn userinfo(message: impl Into<String>) -> Self {
        LoginError::UserInfo {
            message: message.into(),
            diagnostics: None,
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
            LoginError::Transport { .. } => reason::IDP_UNREACHABLE,
            LoginError::IdpError(_) => reason::IDP_ERROR,
            LoginError::Callback(_) => reason::CALLBACK_INVALID,
            LoginError::TokenExchange(_) => reason::TOKEN_EXCHANGE_FAILED,
            LoginError::UserInfo { .. } => reason::USERINFO_FAILED,
            LoginError::Host(_) => reason::PLUGIN_FAILURE,
        }
    }
}

impl From<LoginError> for PluginError {
    fn from(error: LoginError) -> Self {
        let code = error.reason();
        match error {
            LoginError::Config(inner) => inner,
            LoginError::UserInfo {
                message,
                diagnostics,
            } => {
                let refusal = PluginError::new(code, message);
                match diagnostics {
                    Some(diagnostics) => refusal.with_diagnostics(diagnostics),
                    None => refusal,
                }
            }
            other => PluginError::new(code, other.to_string()),
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
