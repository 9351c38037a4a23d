//! Reading the authorization response (the callback query) before anything is trusted.

use crate::error::{sanitize, LoginError};

/// The authorization response, checked for shape only.
pub struct Callback {
    /// The authorization code (RFC 6749 §4.1.2). Secret: never put in errors.
    pub code: String,
}

impl Callback {
    /// Checks the raw callback parameters, in order:
    /// 1. an `error` parameter means the provider refused (RFC 6749 §4.1.2.1);
    /// 2. no parameter may appear twice (RFC 6749 §3.1), and `code` must be present.
    ///
    /// `state` was already matched by the host before the plugin is called.
    pub fn parse(params: &[(String, String)]) -> Result<Callback, LoginError> {
        // 1. RFC 6749 §4.1.2.1: `error`, optional `error_description`. Both are
        // attacker-influenced text, so only a sanitised, bounded copy is reported. Facebook
        // also sends `error_reason`, which adds nothing the description does not say.
        if let Some(error) = first(params, "error") {
            let code = sanitize(error, MAX_ERROR_CODE_CHARS);
            let detail = match first(params, "error_description") {
                Some(description) if !description.is_empty() => format!(
                    "the identity provider returned {code}: {}",
                    sanitize(description, MAX_DESCRIPTION_CHARS)
                ),
                _ => format!("the identity provider returned {code}"),
            };
            return Err(LoginError::IdpError(detail));
        }

        // 2. RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than
        // once." A repeated parameter makes the response ambiguous.
        for (index, (name, _)) in params.iter().enumerate() {
            if params[..index]
                .iter()
                .any(|(seen, _)| seen == name)
            {
                return Err(LoginError::Callback(format!(
                    "the callback repeats the parameter {:?}",
                    sanitize(name, MAX_NAME_CHARS)
                )));
            }
        }
        match first(params, "code") {
            Some(code) if !code.is_empty() => Ok(Callback {
                code: code.to_owned(),
            }),
            _ => Err(LoginError::Callback(
                "the callback carries no authorization code".into(),
            )),
        }
    }
}

fn first<'p>(params: &'p [(String, String)], name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

const MAX_ERROR_CODE_CHARS: usize = 64;
const MAX_DESCRIPTION_CHARS: usize = 200;
const MAX_NAME_CHARS: usize = 40;
