//! The Assertion Consumer Service: checks an HTTP-POST `SAMLResponse` (SAML Bindings §3.5,
//! Profiles §4.1.4) and returns the identity it asserts.
//!
//! The checks run in a fixed order of early returns, each with its own reason code:
//! 1. size, encoding and shape, before any XML security library sees the message;
//! 2. signatures, with the configured certificates only;
//! 3. the Response and the verified Assertion against this connection and login;
//! 4. identity, read from the verified assertion only.

mod checks;
pub mod diagnostics;
mod shape;
mod verify;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use gatehouse_plugin_sdk::{ExternalIdentity, FinishLoginRequest, PluginError};
use roxmltree::{Document, Node};

use crate::config::{unix_now, Config};
use crate::http::Fetch;
use crate::idp_metadata::{self, Freshness};
use crate::reason;
use crate::xml::{self, NS_ASSERTION, NS_PROTOCOL};

use self::shape::AssertionShape;

/// Verifies the ACS form fields of one login. With a metadata URL, the IdP's entity ID and
/// certificates come from its metadata, read through the host's cache.
pub fn finish_login(fetch: &dyn Fetch, request: FinishLoginRequest) -> Result<ExternalIdentity, PluginError> {
    let config = Config::parse(&request.config)?;
    let expected = Expected {
        acs_url: &request.redirect_uri,
        sp_entity_id: &request.sp_entity_id,
        request_id: request.request_id.as_deref(),
        now: unix_now(),
    };
    if config.idp_metadata_url.is_none() {
        return consume(&config, &request.params, &expected);
    }

    let cached = idp_metadata::resolve(fetch, &config, Freshness::Cached)?;
    let error = match consume(&cached, &request.params, &expected) {
        Err(error) if error.code == reason::SIGNATURE_INVALID => error,
        outcome => return outcome,
    };
    // No certificate of the cached metadata verifies: the IdP may have rolled its key over
    // since the copy was made. Read the metadata again once (the host allows this at most every
    // five minutes per connection) and check again only if the certificates changed; `consume`
    // has no side effects, and the host records the assertion ID only after success.
    match idp_metadata::resolve(fetch, &config, Freshness::Refreshed) {
        Ok(refreshed) if refreshed.certificates != cached.certificates => {
            consume(&refreshed, &request.params, &expected)
        }
        Ok(_) => Err(error),
        Err(refresh) => Err(PluginError {
            detail: format!("{}; re-reading the IdP metadata failed: {}", error.detail, refresh.detail),
            ..error
        }),
    }
}

/// What the answer must match, all chosen by the host.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// Our ACS URL (Destination, Recipient).
    pub acs_url: &'a str,
    /// Our SP entity ID (Audience).
    pub sp_entity_id: &'a str,
    /// The AuthnRequest ID this login sent, or `None` for an allowed unsolicited answer.
    pub request_id: Option<&'a str>,
    /// The current time, Unix seconds.
    pub now: i64,
}

/// Runs every ACS check on the form parameters. A refusal of a message that decoded from
/// base64 carries [`diagnostics`] for the tenant's administrators.
pub fn consume(
    config: &Config,
    params: &[(String, String)],
    expected: &Expected<'_>,
) -> Result<ExternalIdentity, PluginError> {
    // 1. Size and shape (Bindings §3.5.4), before xmlsec or libxml2 see anything.
    let encoded = saml_response(params)?;
    let decoded = decode_base64(encoded)?;
    check_decoded(config, &decoded, expected)
        .map_err(|error| diagnostics::attach(error, &decoded, config, expected))
}

fn check_decoded(
    config: &Config,
    decoded: &[u8],
    expected: &Expected<'_>,
) -> Result<ExternalIdentity, PluginError> {
    let text = decoded_text(decoded)?;
    let document = parse(text)?;
    let root = document.root_element();
    if !xml::is(root, NS_PROTOCOL, "Response") {
        return Err(PluginError::new(reason::MALFORMED, "the root element is not samlp:Response"));
    }
    checks::status(root)?;
    let shape = shape::response_shape(&document)?;

    // 2. Signatures. The assertion we read later is located by the ID that the verified
    // signature covers, in the content xmlsec returns, so a wrapped copy is never read.
    let verified = match &shape.assertion {
        AssertionShape::Plain { id, signed } => {
            if !shape.response_signed && !signed {
                return Err(PluginError::new(
                    reason::SIGNATURE_MISSING,
                    "neither the Response nor the Assertion is signed",
                ));
            }
            shape::signature_algorithms(&document, config.allow_sha1)?;
            let content = verify::verified_content(text, config)?;
            Verified {
                xml: content,
                assertion_id: id.clone(),
            }
        }
        AssertionShape::Encrypted => encrypted(config, &document, text, shape.response_signed)?,
    };
    let verified_document = parse(&verified.xml).map_err(|_| {
        PluginError::new(reason::SIGNATURE_INVALID, "the verified content cannot be read back")
    })?;
    let assertion = verified_assertion(&verified_document, &verified.assertion_id, &shape.response_id)?;

    // 3. The Response (checked even when only the Assertion is signed) and the Assertion.
    checks::response(root, config, expected, shape.response_signed)?;
    checks::assertion(assertion, config, expected)?;

    // 4. Identity.
    Ok(checks::identity(assertion, config, expected))
}

struct Verified {
    xml: String,
    assertion_id: String,
}

/// SAML Core §2.3.4 and §6: decrypt with the SP key, then verify like any other assertion.
fn encrypted(
    config: &Config,
    document: &Document<'_>,
    text: &str,
    response_signed: bool,
) -> Result<Verified, PluginError> {
    let Some(key) = &config.sp_private_key else {
        return Err(PluginError::new(
            reason::ENCRYPTED_UNSUPPORTED,
            "the assertion is encrypted but the connection has no SP private key",
        ));
    };
    let root = document.root_element();
    let outer = xml::child(root, NS_ASSERTION, "EncryptedAssertion")
        .ok_or_else(|| PluginError::new(reason::ASSERTION_COUNT, "the encrypted assertion is misplaced"))?;
    if verify::uses_rsa_1_5(outer) {
        return Err(PluginError::new(
            reason::KEY_TRANSPORT_FORBIDDEN,
            "RSA PKCS#1 v1.5 key transport is not accepted",
        ));
    }

    // With a signed Response, decrypt what the Response signature covers.
    let response_content;
    let verified_response;
    let source = if response_signed {
        shape::signature_algorithms(document, config.allow_sha1)?;
        response_content = verify::verified_content(text, config)?;
        verified_response = parse(&response_content).map_err(|_| {
            PluginError::new(reason::SIGNATURE_INVALID, "the verified content cannot be read back")
        })?;
        let response = verified_response.root_element();
        if !xml::is(response, NS_PROTOCOL, "Response") {
            return Err(PluginError::new(reason::SIGNATURE_INVALID, "the verified element is not the Response"));
        }
        xml::child(response, NS_ASSERTION, "EncryptedAssertion").ok_or_else(|| {
            PluginError::new(reason::SIGNATURE_INVALID, "the signature does not cover the encrypted assertion")
        })?
    } else {
        outer
    };
    let plaintext = verify::decrypt(source, &key.key)?;

    let inner = parse(&plaintext)?;
    let (assertion_id, signed) = shape::assertion_shape(&inner)?;
    if !signed && !response_signed {
        return Err(PluginError::new(
            reason::SIGNATURE_MISSING,
            "neither the Response nor the decrypted Assertion is signed",
        ));
    }
    if signed {
        shape::signature_algorithms(&inner, config.allow_sha1)?;
        let content = verify::verified_content(&plaintext, config)?;
        return Ok(Verified {
            xml: content,
            assertion_id,
        });
    }
    Ok(Verified {
        xml: plaintext,
        assertion_id,
    })
}

/// The one assertion in the verified content, found by the ID whose signature verified.
fn verified_assertion<'a, 'input>(
    document: &'a Document<'input>,
    assertion_id: &str,
    response_id: &str,
) -> Result<Node<'a, 'input>, PluginError> {
    let mismatch = || {
        PluginError::new(
            reason::SIGNATURE_INVALID,
            "the verified content is not the assertion that was checked",
        )
    };
    let root = document.root_element();
    if xml::is(root, NS_PROTOCOL, "Response") && root.attribute("ID") != Some(response_id) {
        return Err(mismatch());
    }
    let mut found = document
        .descendants()
        .filter(|n| xml::is(*n, NS_ASSERTION, "Assertion"));
    match (found.next(), found.next()) {
        (Some(assertion), None) if assertion.attribute("ID") == Some(assertion_id) => Ok(assertion),
        _ => Err(mismatch()),
    }
}

/// Bindings §3.5.4: exactly one `SAMLResponse` field.
fn saml_response(params: &[(String, String)]) -> Result<&str, PluginError> {
    let mut values = params
        .iter()
        .filter(|(name, _)| name == "SAMLResponse")
        .map(|(_, value)| value.as_str());
    match (values.next(), values.next()) {
        (Some(value), None) if !value.is_empty() => {
            if value.len() > MAX_ENCODED_BYTES {
                return Err(PluginError::new(
                    reason::TOO_LARGE,
                    format!("SAMLResponse is {} bytes, the limit is {MAX_ENCODED_BYTES}", value.len()),
                ));
            }
            Ok(value)
        }
        (Some(_), Some(_)) => Err(PluginError::new(
            reason::RESPONSE_MISSING,
            "the form carries more than one SAMLResponse",
        )),
        _ => Err(PluginError::new(reason::RESPONSE_MISSING, "the form carries no SAMLResponse")),
    }
}

/// Base64, line breaks tolerated.
fn decode_base64(encoded: &str) -> Result<Vec<u8>, PluginError> {
    let compact: String = encoded
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n' | ' ' | '\t'))
        .collect();
    STANDARD
        .decode(compact)
        .map_err(|_| PluginError::new(reason::MALFORMED, "SAMLResponse is not base64"))
}

/// UTF-8 without DTD markup, with the decoded size limited.
fn decoded_text(bytes: &[u8]) -> Result<&str, PluginError> {
    if bytes.len() > MAX_DECODED_BYTES {
        return Err(PluginError::new(
            reason::TOO_LARGE,
            format!("the decoded response is {} bytes, the limit is {MAX_DECODED_BYTES}", bytes.len()),
        ));
    }
    if xml::has_dtd_markup(bytes) {
        return Err(PluginError::new(reason::DTD_FORBIDDEN, "the response contains a DOCTYPE or ENTITY declaration"));
    }
    std::str::from_utf8(bytes).map_err(|_| PluginError::new(reason::MALFORMED, "the response is not UTF-8"))
}

fn parse(text: &str) -> Result<Document<'_>, PluginError> {
    xml::parse_strict(text).map_err(|error| match error {
        xml::ParseError::Dtd => PluginError::new(
            reason::DTD_FORBIDDEN,
            "the response contains a DOCTYPE or ENTITY declaration",
        ),
        xml::ParseError::Malformed(detail) => {
            PluginError::new(reason::MALFORMED, format!("the response is not well-formed XML: {detail}"))
        }
    })
}

const MAX_ENCODED_BYTES: usize = 256 * 1024;
const MAX_DECODED_BYTES: usize = 192 * 1024;

#[cfg(test)]
pub(crate) mod test_idp;
#[cfg(test)]
mod tests;

/// Test helpers shared with the other modules' tests.
#[cfg(test)]
pub(crate) mod test_support {
    /// The trusted test IdP certificate, base64 DER.
    pub fn cert_b64() -> String {
        super::test_idp::idp().cert_b64()
    }

    /// The trusted test IdP certificate, PEM.
    pub fn cert_pem() -> String {
        super::test_idp::idp().cert_pem()
    }

    /// The second test key pair (PKCS#8 PEM key, PEM certificate).
    pub fn other_key_pair() -> (String, String) {
        let other = super::test_idp::other();
        (
            String::from_utf8(other.key.private_key_to_pem_pkcs8().unwrap()).unwrap(),
            other.cert_pem(),
        )
    }
}
