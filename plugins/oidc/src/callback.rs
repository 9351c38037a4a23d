//! Reading the authorization response (the callback query) before anything is trusted.

use crate::error::{sanitize, LoginError};

/// The authorization response, checked for shape only.
pub struct Callback {
    /// The authorization code (RFC 6749 §4.1.2). Secret: never put in errors.
    pub code: String,
    /// The RFC 9207 `iss` parameter, if the provider sent one.
    pub iss: Option<String>,
}

impl Callback {
    /// Checks the raw callback parameters, in order:
    /// 1. an `error` parameter means the provider refused (RFC 6749 §4.1.2.1);
    /// 2. every parameter may appear only once (RFC 6749 §3.1: "Request and response
    ///    parameters MUST NOT be included more than once"), and `code` must be present.
    pub fn parse(params: &[(String, String)]) -> Result<Callback, LoginError> {
        // 1. RFC 6749 §4.1.2.1: error, optional error_description. Both are attacker-influenced
        // text, so only a sanitised, bounded copy is reported.
        if let Some(error) = first(params, "error") {
            let code = sanitize(error, MAX_ERROR_CODE_CHARS);
            let detail = match first(params, "error_description") {
                Some(description) if !description.is_empty() => {
                    format!(
                        "the identity provider returned {code}: {}",
                        sanitize(description, MAX_DESCRIPTION_CHARS)
                    )
                }
                _ => format!("the identity provider returned {code}"),
            };
            return Err(LoginError::IdpError(detail));
        }

        // 2. RFC 6749 §3.1: a repeated parameter makes the response ambiguous.
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
        let code = match first(params, "code") {
            Some(code) if !code.is_empty() => code.to_owned(),
            _ => {
                return Err(LoginError::Callback(
                    "the callback carries no authorization code".into(),
                ))
            }
        };
        let iss = first(params, "iss").map(str::to_owned);

        Ok(Callback { code, iss })
    }
}

/// RFC 9207 §2.4: when the provider sent `iss`, it must be exactly the issuer we discovered;
/// when the provider advertises `authorization_response_iss_parameter_supported`, it must be
/// present. This defeats mix-up attacks between providers sharing a redirect URI.
pub fn check_iss(
    iss: Option<&str>,
    issuer: &str,
    iss_parameter_supported: bool,
) -> Result<(), LoginError> {
    match iss {
        Some(iss) if iss == issuer => Ok(()),
        Some(iss) => Err(LoginError::IssuerMismatch(format!(
            "the callback's iss parameter {:?} is not the discovered issuer {issuer:?} \
             (RFC 9207 section 2.4)",
            sanitize(iss, MAX_ISS_CHARS)
        ))),
        None if iss_parameter_supported => Err(LoginError::IssuerMismatch(
            "the provider advertises the iss parameter but the callback lacks it \
             (RFC 9207 section 2.4)"
                .into(),
        )),
        None => Ok(()),
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
const MAX_ISS_CHARS: usize = 200;
