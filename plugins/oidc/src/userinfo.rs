//! The userinfo request (OIDC Core §5.3) and merging its claims with the ID token's.
//!
//! The response is read as plain JSON rather than through openidconnect's typed claims, so a
//! provider that sends `"email_verified": "true"` yields an unverified email instead of a
//! failed login: only the JSON boolean `true` counts (OIDC Core §5.1 defines it as boolean).

use gatehouse_plugin_sdk::{ExternalIdentity, HttpErrorKind};
use oauth2::AccessToken;
use serde_json::{Map, Value};

use crate::error::LoginError;
use crate::http::{get_json, header, Fetch};
use crate::id_token::VerifiedIdToken;

/// Claims read from a userinfo response whose `sub` matched the ID token.
#[derive(Debug, Default)]
pub struct UserInfo {
    email: Option<String>,
    email_verified: bool,
    name: Option<String>,
}

/// Whether the ID token lacks claims the userinfo endpoint may supply.
pub fn needed(id_token: &VerifiedIdToken) -> bool {
    id_token.email.is_none() || id_token.name.is_none()
}

/// Calls the userinfo endpoint with the access token as a bearer token (RFC 6750 §2.1).
pub fn fetch_userinfo(
    fetch: &dyn Fetch,
    url: &str,
    access_token: &AccessToken,
    subject: &str,
) -> Result<UserInfo, LoginError> {
    let authorization = vec![(
        "authorization".to_owned(),
        format!("Bearer {}", access_token.secret()),
    )];
    let response = get_json(fetch, url, authorization, None, "userinfo", |detail| {
        LoginError::UserInfo(detail)
    })
    .map_err(|error| match error {
        // A blocked destination keeps its own reason; other failures are userinfo failures.
        blocked @ LoginError::Transport {
            kind: HttpErrorKind::Blocked,
            ..
        } => blocked,
        LoginError::Transport { detail, .. } => {
            LoginError::UserInfo(format!("the userinfo endpoint is unreachable: {detail}"))
        }
        other => other,
    })?;

    // OIDC Core §5.3.2: the response is JSON, or a JWT when the client registered for signed
    // or encrypted userinfo, which this plugin does not do.
    if let Some(content_type) = header(&response.headers, "content-type") {
        if content_type
            .to_ascii_lowercase()
            .starts_with("application/jwt")
        {
            return Err(LoginError::UserInfo(
                "signed or encrypted userinfo responses are not supported".into(),
            ));
        }
    }
    let claims: Map<String, Value> = serde_json::from_slice(&response.body)
        .map_err(|_| LoginError::UserInfo("the userinfo response is not a JSON object".into()))?;

    // OIDC Core §5.3.2: "The sub Claim in the UserInfo Response MUST be verified to exactly
    // match the sub Claim in the ID Token; if they do not match, the UserInfo Response values
    // MUST NOT be used." A token substitution would otherwise graft another user's claims.
    match claims.get("sub") {
        Some(Value::String(sub)) if sub == subject => {}
        _ => {
            return Err(LoginError::UserInfo(
                "the userinfo sub does not match the ID token's sub (OIDC Core section 5.3.2)"
                    .into(),
            ))
        }
    }

    Ok(UserInfo {
        email: string_claim(&claims, "email"),
        email_verified: claims.get("email_verified") == Some(&Value::Bool(true)),
        name: string_claim(&claims, "name"),
    })
}

/// Combines the verified ID token with optional userinfo claims. ID token values win; userinfo
/// only fills gaps. An email is verified only when the source that supplied it says so with a
/// JSON `true`, and a userinfo email that contradicts the ID token's makes it unverified.
pub fn merge(id_token: VerifiedIdToken, userinfo: Option<UserInfo>) -> ExternalIdentity {
    let userinfo = userinfo.unwrap_or_default();
    let (email, email_verified) = match (id_token.email, userinfo.email) {
        (Some(email), other) => {
            let contradicted = other.is_some_and(|other| other != email);
            let verified = id_token.email_verified == Some(true) && !contradicted;
            (Some(email), verified)
        }
        (None, Some(email)) => (Some(email), userinfo.email_verified),
        (None, None) => (None, false),
    };
    ExternalIdentity {
        issuer: id_token.issuer,
        subject: id_token.subject,
        email,
        email_verified,
        name: id_token.name.or(userinfo.name),
        replay: None,
    }
}

fn string_claim(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name) {
        Some(Value::String(value)) if !value.is_empty() => Some(value.clone()),
        _ => None,
    }
}
