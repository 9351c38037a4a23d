//! ID token verification (OIDC Core §3.1.3.7) with openidconnect's `IdTokenVerifier`.
//!
//! The verifier is always built as for a public client, whether or not the connection has a
//! client secret: a secret must never turn HS256 into an accepted algorithm, because anyone
//! holding the secret (or an admin who mistyped one) could then mint ID tokens. Allowed
//! algorithms are exactly the connection's `id_token_signing_algs`, never what the token's
//! header asks for.

use std::str::FromStr;

use chrono::{Duration, Utc};
use gatehouse_plugin_sdk::CachePolicy;
use openidconnect::core::{CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet};
use openidconnect::{
    ClaimsVerificationError, ClientId, IssuerUrl, Nonce, SignatureVerificationError,
};

use crate::config::Config;
use crate::discovery::{serde_error_category, Metadata};
use crate::error::LoginError;
use crate::http::{get_json, Fetch};

/// Claims of an ID token whose signature and claims all passed verification.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedIdToken {
    /// `iss`, equal to the discovered issuer.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// `email`, if present.
    pub email: Option<String>,
    /// `email_verified`, if present (a JSON boolean; anything else fails parsing).
    pub email_verified: Option<bool>,
    /// `name` in its default language, if present.
    pub name: Option<String>,
}

/// Verifies `unverified` against the provider's keys, refetching the JWKS once if no key
/// matches (the provider may have rotated its keys since we cached them).
pub fn verify(
    fetch: &dyn Fetch,
    config: &Config,
    metadata: &Metadata,
    unverified: &str,
    nonce: &str,
) -> Result<VerifiedIdToken, LoginError> {
    // OIDC Core §2 and §5.1: a JWT whose claims have the wrong JSON types (for example
    // `email_verified: "true"`) is refused here. The parse error is not echoed: it may quote
    // claim values.
    let token = CoreIdToken::from_str(unverified).map_err(|_| {
        LoginError::IdToken(
            "the ID token is not a well-formed JWT with standard claims of the right types".into(),
        )
    })?;
    let nonce = Nonce::new(nonce.to_owned());

    let jwks = fetch_jwks(fetch, metadata, false)?;
    let claims = match check(&token, config, metadata.issuer(), jwks, &nonce) {
        // RFC 7517 §4.5 / OIDC Core §10.1.1: a `kid` we do not know may be a rotated key;
        // ask the host for a fresh JWKS (rate limited by min_refresh_secs), then retry once.
        Err(ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        )) => {
            let jwks = fetch_jwks(fetch, metadata, true)?;
            check(&token, config, metadata.issuer(), jwks, &nonce)
        }
        other => other,
    }
    .map_err(claims_error)?;

    Ok(claims)
}

fn check(
    token: &CoreIdToken,
    config: &Config,
    issuer: &IssuerUrl,
    jwks: CoreJsonWebKeySet,
    nonce: &Nonce,
) -> Result<VerifiedIdToken, ClaimsVerificationError> {
    let now = Utc::now();
    let skew = Duration::seconds(CLOCK_SKEW_SECS);
    // Public-client verifier on purpose: see the module documentation.
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new(config.client_id.clone()),
        issuer.clone(),
        jwks,
    )
    .set_allowed_algs(
        config
            .id_token_signing_algs
            .iter()
            .map(|alg| alg.to_core()),
    )
    // Step 9: exp must be in the future; tolerate a small clock difference.
    .set_time_fn(move || now - skew)
    // Step 10: refuse tokens issued in the future beyond the same tolerance.
    .set_issue_time_verifier_fn(move |iat| {
        if iat > now + skew {
            Err("the ID token was issued in the future".into())
        } else {
            Ok(())
        }
    });

    // Steps 1-3 and 6-11 (issuer, audience, untrusted extra audiences, algorithm, signature,
    // exp, iat, nonce) happen inside openidconnect. Extra audiences are refused outright (the
    // library's default: we trust no audience but our own).
    let claims = token.claims(&verifier, nonce)?;

    // Steps 4-5: openidconnect leaves `azp` unchecked. If present it must be our client id.
    if let Some(azp) = claims.authorized_party() {
        if azp.as_str() != config.client_id {
            return Err(ClaimsVerificationError::InvalidAudience(
                "azp is not this client".into(),
            ));
        }
    }

    Ok(VerifiedIdToken {
        issuer: claims.issuer().to_string(),
        subject: claims.subject().to_string(),
        email: claims
            .email()
            .map(|email| email.to_string()),
        email_verified: claims.email_verified(),
        name: claims
            .name()
            .and_then(|name| name.get(None))
            .map(|name| name.to_string()),
    })
}

/// Fetches the JWKS through the host; `refresh` bypasses the cache.
fn fetch_jwks(
    fetch: &dyn Fetch,
    metadata: &Metadata,
    refresh: bool,
) -> Result<CoreJsonWebKeySet, LoginError> {
    let cache = if refresh {
        CachePolicy {
            max_age_secs: 0,
            refresh: true,
            min_refresh_secs: JWKS_MIN_REFRESH_SECS,
            scope: "jwks".into(),
        }
    } else {
        CachePolicy {
            max_age_secs: JWKS_MAX_AGE_SECS,
            refresh: false,
            min_refresh_secs: 0,
            scope: "jwks".into(),
        }
    };
    let response = get_json(
        fetch,
        metadata.jwks_uri().as_str(),
        Vec::new(),
        Some(cache),
        "JWKS",
        LoginError::Unreachable,
    )?;
    serde_json::from_slice(&response.body).map_err(|error| {
        LoginError::IdToken(format!(
            "the provider's JWKS is not a valid key set ({})",
            serde_error_category(&error)
        ))
    })
}

/// Maps a verification failure to a reason with a fixed detail: openidconnect's messages may
/// quote claim values, so they are not passed on.
fn claims_error(error: ClaimsVerificationError) -> LoginError {
    let detail = match error {
        // Step 11.
        ClaimsVerificationError::InvalidNonce(_) => {
            return LoginError::Nonce(
                "the ID token's nonce is missing or is not the one issued for this login \
                 (OIDC Core section 3.1.3.7 step 11)"
                    .into(),
            )
        }
        ClaimsVerificationError::Expired(_) => {
            "the ID token has expired or was issued in the future (steps 9-10)"
        }
        ClaimsVerificationError::InvalidAudience(_) => {
            "the ID token's audience or authorized party is not this client alone (steps 3-5)"
        }
        ClaimsVerificationError::InvalidIssuer(_) => {
            "the ID token's issuer is not the discovered issuer (step 2)"
        }
        ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        ) => "no key of the provider's JWKS matches the ID token, even after a refresh (step 6)",
        ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::DisallowedAlg(_),
        ) => "the ID token's algorithm is not allowed for this connection (step 7)",
        ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::AmbiguousKeyId(_),
        ) => "several keys of the provider's JWKS match the ID token (step 6)",
        ClaimsVerificationError::SignatureVerification(_) => {
            "the ID token's signature is invalid (step 6)"
        }
        ClaimsVerificationError::Unsupported(_) => "encrypted ID tokens are not supported (step 1)",
        _ => "the ID token failed a claim check",
    };
    LoginError::IdToken(format!("{detail}; see OIDC Core section 3.1.3.7"))
}

const CLOCK_SKEW_SECS: i64 = 60;
const JWKS_MAX_AGE_SECS: u64 = 3600;
const JWKS_MIN_REFRESH_SECS: u64 = 30;
