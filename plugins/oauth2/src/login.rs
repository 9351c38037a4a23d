//! The two halves of a login: the authorization request and the callback.
//!
//! `finish_login` takes a [`Fetch`] rather than the SDK's `Host`, so the whole flow runs in
//! tests against an in-memory provider.

use gatehouse_plugin_sdk::{
    BeginLoginRequest, BeginLoginResponse, ExternalIdentity, FinishLoginRequest, PluginError,
};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, ClientId, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
};
use url::Url;

use crate::callback::Callback;
use crate::config::Config;
use crate::error::LoginError;
use crate::http::Fetch;
use crate::{token, userinfo};

/// Builds the authorization request URL (RFC 6749 §4.1.1): `response_type=code`, client id,
/// redirect URI, scopes, the host's `state` and, when PKCE is on, the S256 challenge of the
/// host's verifier (RFC 7636 §4.2, §4.3).
pub fn begin_login(request: BeginLoginRequest) -> Result<BeginLoginResponse, PluginError> {
    let config = Config::parse(&request.config)?;
    let redirect_uri = redirect_url(&request.redirect_uri)?;
    let authorization_url = AuthUrl::new(config.authorization_url.clone()).map_err(|_| {
        PluginError::invalid_config("/authorization_url", "must be an absolute URL")
    })?;

    // The client secret is not needed to build a URL; the client is built without it.
    let client = BasicClient::new(ClientId::new(config.client_id.clone()))
        .set_auth_uri(authorization_url)
        .set_redirect_uri(redirect_uri);
    let state = request.state;
    let mut authorization = client.authorize_url(move || CsrfToken::new(state));
    if config.pkce {
        let verifier = pkce_verifier(request.pkce_verifier)?;
        authorization = authorization
            .set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(&verifier));
    }
    for scope in &config.scopes {
        authorization = authorization.add_scope(Scope::new(scope.clone()));
    }
    let (url, _state) = authorization.url();

    Ok(BeginLoginResponse {
        redirect_url: url.to_string(),
    })
}

/// Verifies the callback and returns the identity. Each step returns early with its own
/// reason; only a bearer token from the configured token endpoint reaches the user-info step.
pub fn finish_login(
    fetch: &dyn Fetch,
    request: FinishLoginRequest,
) -> Result<ExternalIdentity, PluginError> {
    let config = Config::parse(&request.config)?;
    let redirect_uri = redirect_url(&request.redirect_uri)?;
    let issuer = issuer(&config)?;

    // 1-2. Provider error, repeated parameters, missing code (RFC 6749 §4.1.2, §3.1). The
    // host has already matched `state`.
    let callback = Callback::parse(&request.params)?;
    let verifier = if config.pkce {
        Some(pkce_verifier(request.pkce_verifier)?)
    } else {
        None
    };

    // 3. Code exchange (RFC 6749 §4.1.3) with the same redirect URI and, when PKCE is on,
    // the verifier (RFC 7636 §4.5); only a bearer token is accepted.
    let access_token =
        token::exchange_code(fetch, &config, &redirect_uri, callback.code, verifier)?;

    // 4. The user-info document, read with that token (RFC 6750 §2.1).
    let document = userinfo::fetch_userinfo(fetch, &config.userinfo_url, &access_token)?;
    drop(access_token);

    // 5. The mapping turns the document into an identity.
    let identity = userinfo::map_identity(&config.mapping, &document)?;

    Ok(ExternalIdentity {
        issuer,
        subject: identity.subject,
        email: identity.email,
        email_verified: identity.email_verified,
        name: identity.name,
        replay: None,
    })
}

/// Plain OAuth 2.0 has no issuer identifier; the origin of the authorization endpoint names
/// the provider instead (`https://www.facebook.com`), so subjects of different providers never
/// collide in the host's identity links.
fn issuer(config: &Config) -> Result<String, LoginError> {
    let url = Url::parse(&config.authorization_url).map_err(|_| {
        LoginError::Config(PluginError::invalid_config(
            "/authorization_url",
            "must be an absolute URL",
        ))
    })?;
    Ok(url.origin().ascii_serialization())
}

fn redirect_url(text: &str) -> Result<RedirectUrl, LoginError> {
    RedirectUrl::new(text.to_owned())
        .map_err(|_| LoginError::Host("the host passed a redirect URI that is not a URL".into()))
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters. Checked here because the challenge
/// derivation panics on a bad length.
fn pkce_verifier(verifier: String) -> Result<PkceCodeVerifier, LoginError> {
    let valid = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !valid {
        return Err(LoginError::Host(
            "the host passed a PKCE verifier that violates RFC 7636 section 4.1".into(),
        ));
    }
    Ok(PkceCodeVerifier::new(verifier))
}

#[cfg(test)]
mod tests;
