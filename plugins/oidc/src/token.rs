//! The authorization code exchange (RFC 6749 §4.1.3, OIDC Core §3.1.3.1).
//!
//! The request goes through oauth2's own builder over [`HostHttpClient`]. The token response
//! is read with the ID token kept as a raw string, so its parsing and verification happen in
//! one place ([`crate::id_token`]) and a bad ID token is reported as such, not as a failed
//! exchange.

use std::borrow::Cow;
use std::fmt;

use gatehouse_plugin_sdk::HttpError;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AccessToken, AuthType, AuthorizationCode, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeVerifier, RedirectUrl, RequestTokenError, StandardRevocableToken,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{sanitize, LoginError};
use crate::http::{Fetch, HostHttpClient};

/// What the token endpoint returned, secrets still wrapped.
pub struct Tokens {
    /// For the userinfo request only.
    pub access_token: AccessToken,
    /// The compact-serialised ID token, unverified.
    pub unverified_id_token: String,
}

/// Exchanges `code` for tokens at `token_url`.
///
/// A configured secret is sent with `client_secret_basic` (RFC 6749 §2.3.1); without one the
/// client is public and oauth2 puts `client_id` in the body. PKCE (RFC 7636 §4.5) is always
/// sent.
pub fn exchange_code(
    fetch: &dyn Fetch,
    config: &Config,
    token_url: &TokenUrl,
    redirect_uri: &RedirectUrl,
    code: String,
    pkce_verifier: String,
) -> Result<Tokens, LoginError> {
    let mut client: TokenClient = oauth2::Client::new(ClientId::new(config.client_id.clone()))
        .set_token_uri(token_url.clone())
        .set_auth_type(AuthType::BasicAuth);
    if let Some(secret) = &config.client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.clone()));
    }
    let http = HostHttpClient::new(fetch);

    let response = client
        .exchange_code(AuthorizationCode::new(code))
        .set_redirect_uri(Cow::Borrowed(redirect_uri))
        .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier))
        .request(&http)
        .map_err(exchange_error)?;

    // OIDC Core §3.1.3.3: a successful response to an openid request carries an ID token.
    let Some(unverified_id_token) = response.extra_fields().id_token.clone() else {
        return Err(LoginError::IdToken(
            "the token response carries no ID token (OIDC Core section 3.1.3.3)".into(),
        ));
    };
    Ok(Tokens {
        access_token: response.access_token().clone(),
        unverified_id_token,
    })
}

/// Maps a failed exchange to a reason. Only the OAuth error code of an error response is
/// reported (RFC 6749 §5.2); bodies may echo the code or carry tokens, so they never are.
fn exchange_error(error: RequestTokenError<HttpError, BasicErrorResponse>) -> LoginError {
    match error {
        RequestTokenError::Request(error) => LoginError::transport("token endpoint", &error),
        RequestTokenError::ServerResponse(response) => LoginError::TokenExchange(format!(
            "the token endpoint refused the code: {}",
            sanitize(response.error().as_ref(), MAX_ERROR_CODE_CHARS)
        )),
        RequestTokenError::Parse(..) => LoginError::TokenExchange(
            "the token endpoint answered with an unreadable response".into(),
        ),
        RequestTokenError::Other(_) => LoginError::TokenExchange(
            "the token endpoint answered with a non-JSON or empty response".into(),
        ),
    }
}

/// Extra token response fields: the ID token, left unparsed.
#[derive(Clone, Deserialize, Serialize)]
pub struct RawIdToken {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

impl fmt::Debug for RawIdToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawIdToken")
            .finish_non_exhaustive()
    }
}

impl ExtraTokenFields for RawIdToken {}

type TokenClient = oauth2::Client<
    BasicErrorResponse,
    StandardTokenResponse<RawIdToken, BasicTokenType>,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

const MAX_ERROR_CODE_CHARS: usize = 64;
