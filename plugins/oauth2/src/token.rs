//! The authorization code exchange (RFC 6749 §4.1.3, §4.1.4).
//!
//! The request goes through oauth2's own builder over [`HostHttpClient`]. Plain OAuth 2.0 has
//! no ID token: all the plugin takes from the response is a bearer access token for the
//! user-info request.

use std::borrow::Cow;

use gatehouse_plugin_sdk::HttpError;
use oauth2::basic::{BasicClient, BasicErrorResponse};
use oauth2::{
    AccessToken, AuthType, AuthorizationCode, ClientId, ClientSecret, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, TokenResponse, TokenUrl,
};
use serde::Deserialize;

use crate::config::{Config, TokenAuth};
use crate::error::{sanitize, LoginError};
use crate::http::{Fetch, HostHttpClient};

/// Exchanges `code` for an access token at the configured token endpoint.
///
/// A configured secret is sent as `client_secret_basic` or `client_secret_post` (RFC 6749
/// §2.3.1) as the config says; without one the client is public and oauth2 puts `client_id`
/// in the body (§3.2.1). The PKCE verifier (RFC 7636 §4.5) is sent when given.
pub fn exchange_code(
    fetch: &dyn Fetch,
    config: &Config,
    redirect_uri: &RedirectUrl,
    code: String,
    pkce_verifier: Option<PkceCodeVerifier>,
) -> Result<AccessToken, LoginError> {
    let token_url = TokenUrl::new(config.token_url.clone())
        .map_err(|_| LoginError::TokenExchange("the token URL is not a URL".into()))?;
    let auth_type = match config.token_auth {
        TokenAuth::Basic => AuthType::BasicAuth,
        TokenAuth::Post => AuthType::RequestBody,
    };
    let mut client = BasicClient::new(ClientId::new(config.client_id.clone()))
        .set_token_uri(token_url)
        .set_auth_type(auth_type);
    if let Some(secret) = &config.client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.clone()));
    }
    let http = HostHttpClient::new(fetch);

    let mut request = client
        .exchange_code(AuthorizationCode::new(code))
        .set_redirect_uri(Cow::Borrowed(redirect_uri));
    if let Some(verifier) = pkce_verifier {
        request = request.set_pkce_verifier(verifier);
    }
    let response = request
        .request(&http)
        .map_err(exchange_error)?;

    // RFC 6749 §5.1: token_type is required; the user-info request below uses the token as
    // a bearer token (RFC 6750 §2.1), which is only right for a bearer token. Token type
    // names are case-insensitive (RFC 6749 §5.1), and Facebook and GitHub send "bearer".
    let token_type = response.token_type().as_ref();
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(LoginError::TokenExchange(format!(
            "the token endpoint issued a {:?} token; only bearer tokens are supported \
             (RFC 6750)",
            sanitize(token_type, MAX_ERROR_CODE_CHARS)
        )));
    }
    let access_token = response.access_token().clone();
    if access_token.secret().is_empty() {
        return Err(LoginError::TokenExchange(
            "the token endpoint issued an empty access token".into(),
        ));
    }
    Ok(access_token)
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
        // GitHub answers a bad code with HTTP 200 and an error document, which oauth2 reads
        // as a token response missing its fields.
        RequestTokenError::Parse(_, body) => match error_code_in(&body) {
            Some(code) => LoginError::TokenExchange(format!(
                "the token endpoint refused the code: {}",
                sanitize(&code, MAX_ERROR_CODE_CHARS)
            )),
            None => LoginError::TokenExchange(
                "the token endpoint answered without a usable access_token and token_type \
                 (RFC 6749 section 5.1)"
                    .into(),
            ),
        },
        RequestTokenError::Other(_) => LoginError::TokenExchange(
            "the token endpoint answered with a non-JSON or empty response".into(),
        ),
    }
}

/// The error code of a JSON error document: RFC 6749's `{"error": "invalid_grant"}`, or the
/// Graph API's `{"error": {"type": "OAuthException", ...}}`.
fn error_code_in(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ErrorMember {
        Code(String),
        Graph {
            #[serde(rename = "type")]
            kind: String,
        },
    }
    #[derive(Deserialize)]
    struct ErrorDocument {
        error: ErrorMember,
    }
    match serde_json::from_slice::<ErrorDocument>(body)
        .ok()?
        .error
    {
        ErrorMember::Code(code) => Some(code),
        ErrorMember::Graph { kind } => Some(kind),
    }
}

const MAX_ERROR_CODE_CHARS: usize = 64;
