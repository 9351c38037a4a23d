//! The two halves of a login: the authorization request and the callback.
//!
//! Both take a [`Fetch`] rather than the SDK's `Host`, so the whole flow runs in tests against
//! an in-memory provider.

use gatehouse_plugin_sdk::{
    BeginLoginRequest, BeginLoginResponse, ExternalIdentity, FinishLoginRequest, PluginError,
};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient};
use openidconnect::{
    ClientId, CsrfToken, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
};

use crate::callback::{check_iss, Callback};
use crate::config::Config;
use crate::discovery::discover;
use crate::error::LoginError;
use crate::http::Fetch;
use crate::{id_token, token, userinfo};

/// Builds the authorization request URL (OIDC Core §3.1.2.1) with the host's `state`, nonce
/// and PKCE verifier (sent as its S256 challenge, RFC 7636 §4.2).
pub fn begin_login(
    fetch: &dyn Fetch,
    request: BeginLoginRequest,
) -> Result<BeginLoginResponse, PluginError> {
    let config = Config::parse(&request.config)?;
    let redirect_uri = redirect_url(&request.redirect_uri)?;
    let verifier = pkce_verifier(request.pkce_verifier)?;

    let metadata = discover(fetch, &config)?;

    // The client secret is not needed to build a URL; the client is built without it.
    let client =
        CoreClient::from_provider_metadata(metadata, ClientId::new(config.client_id.clone()), None)
            .set_redirect_uri(redirect_uri);
    let challenge = PkceCodeChallenge::from_code_verifier_sha256(&verifier);
    let state = request.state;
    let nonce = request.nonce;
    // openidconnect adds `openid` itself.
    let mut authorization = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(state),
            move || Nonce::new(nonce),
        )
        .set_pkce_challenge(challenge);
    for scope in config
        .scopes()
        .filter(|scope| *scope != "openid")
    {
        authorization = authorization.add_scope(Scope::new(scope.to_owned()));
    }
    let (url, _state, _nonce) = authorization.url();

    Ok(BeginLoginResponse {
        redirect_url: url.to_string(),
    })
}

/// Verifies the callback and returns the identity. Each step returns early with its own
/// reason; only a fully verified ID token reaches the claims step.
pub fn finish_login(
    fetch: &dyn Fetch,
    request: FinishLoginRequest,
) -> Result<ExternalIdentity, PluginError> {
    let config = Config::parse(&request.config)?;
    let redirect_uri = redirect_url(&request.redirect_uri)?;

    // 1-2. Provider error, duplicate parameters, missing code (RFC 6749 §4.1.2, §3.1).
    let callback = Callback::parse(&request.params)?;
    let verifier = pkce_verifier(request.pkce_verifier)?;

    let metadata = discover(fetch, &config)?;

    // 3. RFC 9207 §2.4: the response must come from the issuer we sent the user to.
    check_iss(
        callback.iss.as_deref(),
        metadata.issuer().as_str(),
        metadata
            .additional_metadata()
            .iss_parameter_supported(),
    )?;

    // 4. Code exchange (OIDC Core §3.1.3.1), with the PKCE verifier (RFC 7636 §4.5).
    let Some(token_url) = metadata.token_endpoint() else {
        return Err(LoginError::Discovery(
            "the discovery document has no token_endpoint (OIDC Discovery 1.0 section 3)".into(),
        )
        .into());
    };
    let tokens = token::exchange_code(
        fetch,
        &config,
        token_url,
        &redirect_uri,
        callback.code,
        verifier.into_secret(),
    )?;

    // 5. ID token validation (OIDC Core §3.1.3.7), including the nonce (step 11).
    let verified = id_token::verify(
        fetch,
        &config,
        &metadata,
        &tokens.unverified_id_token,
        &request.nonce,
    )?;

    // 6. Claims, completed from userinfo when the ID token lacks some (OIDC Core §5.3).
    let userinfo = match metadata.userinfo_endpoint() {
        Some(url) if userinfo::needed(&verified) => Some(userinfo::fetch_userinfo(
            fetch,
            url.as_str(),
            &tokens.access_token,
            &verified.subject,
        )?),
        _ => None,
    };
    Ok(userinfo::merge(verified, userinfo))
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
