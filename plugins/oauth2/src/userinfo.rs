//! The user-info request and the mapping of its JSON document to an identity.
//!
//! Plain OAuth 2.0 defines no user-info document: each provider has its own shape, which the
//! connection's [`Mapping`] describes with JSON pointers (RFC 6901). Values are read as plain
//! JSON and checked here, so a provider that sends `"verified": "true"` yields an unverified
//! email rather than a verified one: only the JSON boolean `true` counts.

use gatehouse_plugin_sdk::HttpRequest;
use oauth2::AccessToken;
use serde_json::{Map, Value};

use crate::config::Mapping;
use crate::error::LoginError;
use crate::http::Fetch;

/// The identity read from a user-info document, before the host's policy checks.
#[derive(Debug, PartialEq)]
pub struct MappedIdentity {
    /// The provider's stable id of the user.
    pub subject: String,
    /// The email, if the document has one.
    pub email: Option<String>,
    /// Whether the email counts as verified under the mapping.
    pub email_verified: bool,
    /// Display name.
    pub name: Option<String>,
}

/// Fetches the user-info document with the access token as a bearer token (RFC 6750 §2.1).
///
/// A transport failure keeps its host category (blocked, unreachable); a non-2xx status or a
/// body that is not a JSON object is a user-info failure. The content type is not checked:
/// the Graph API has long labelled its JSON `text/javascript`.
pub fn fetch_userinfo(
    fetch: &dyn Fetch,
    url: &str,
    access_token: &AccessToken,
) -> Result<Map<String, Value>, LoginError> {
    let request = HttpRequest {
        method: "GET".to_owned(),
        url: url.to_owned(),
        headers: vec![
            ("accept".to_owned(), "application/json".to_owned()),
            (
                "authorization".to_owned(),
                format!("Bearer {}", access_token.secret()),
            ),
        ],
        body: Vec::new(),
        cache: None,
    };
    let response = fetch
        .fetch(&request)
        .map_err(|error| LoginError::transport("user-info endpoint", &error))?;

    if !(200..300).contains(&response.status) {
        return Err(LoginError::userinfo(format!(
            "the user-info endpoint answered with HTTP status {}",
            response.status
        )));
    }
    serde_json::from_slice(&response.body)
        .map_err(|_| LoginError::userinfo("the user-info response is not a JSON object"))
}

/// Reads subject, email, name and email verification from the document, in order:
/// 1. the subject must be a non-empty string or an integer (rendered in decimal);
/// 2. the email, when mapped and present, must be a string;
/// 3. the email is verified when the `email_verified` pointer holds the JSON boolean `true`;
///    when that pointer is not configured or finds nothing (or null), `email_verified_default`
///    decides; any other value there (false, "true", 1) means not verified.
pub fn map_identity(
    mapping: &Mapping,
    document: &Map<String, Value>,
) -> Result<MappedIdentity, LoginError> {
    let document = Value::Object(document.clone());

    // 1. A number id (GitHub) is rendered as its decimal string; a fraction or an exponent
    // would not survive the round trip, so only integers are accepted.
    let subject = match document.pointer(&mapping.subject) {
        Some(Value::String(subject)) if !subject.is_empty() => subject.clone(),
        Some(Value::Number(number)) if number.is_i64() || number.is_u64() => number.to_string(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(shape_error(
                format!(
                    "the user-info document has no subject at {}",
                    mapping.subject
                ),
                &document,
            ))
        }
        Some(_) => {
            return Err(shape_error(
                format!(
                    "the subject at {} is neither a string nor an integer",
                    mapping.subject
                ),
                &document,
            ))
        }
    };

    // 2. An absent, null or empty email is no email (GitHub's /user has null for a private
    // one); the host then refuses the login as email_missing.
    let email = match mapping
        .email
        .as_deref()
        .and_then(|pointer| Some((pointer, document.pointer(pointer)?)))
    {
        None | Some((_, Value::Null)) => None,
        Some((_, Value::String(email))) if email.is_empty() => None,
        Some((_, Value::String(email))) => Some(email.clone()),
        Some((pointer, _)) => {
            return Err(shape_error(
                format!("the email at {pointer} is not a string"),
                &document,
            ))
        }
    };

    // 3. An explicit statement of the provider beats the default, and only `true` counts.
    let stated = mapping
        .email_verified
        .as_deref()
        .and_then(|pointer| document.pointer(pointer))
        .filter(|value| !value.is_null());
    let email_verified = match stated {
        Some(value) => *value == Value::Bool(true),
        None => mapping.email_verified_default,
    };

    let name = mapping
        .name
        .as_deref()
        .and_then(|pointer| document.pointer(pointer))
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
        .map(str::to_owned);

    Ok(MappedIdentity {
        subject,
        email_verified: email_verified && email.is_some(),
        email,
        name,
    })
}

/// A mapping failure with the document's shape for administrators: member names and JSON
/// types, never values (they are personal data).
fn shape_error(message: String, document: &Value) -> LoginError {
    let shape = match document {
        Value::Object(members) => members
            .iter()
            .take(MAX_SHAPE_MEMBERS)
            .map(|(name, value)| format!("{} ({})", crate::error::sanitize(name, 40), kind(value)))
            .collect::<Vec<_>>()
            .join(", "),
        other => kind(other).to_owned(),
    };
    LoginError::UserInfo {
        message,
        diagnostics: Some(format!("user-info document members: {shape}")),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

const MAX_SHAPE_MEMBERS: usize = 40;
