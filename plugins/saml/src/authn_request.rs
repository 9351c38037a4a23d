//! SP-initiated login: the AuthnRequest (SAML Core §3.4.1) sent over the HTTP-Redirect binding
//! (SAML Bindings §3.4).

use std::io::Write;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{SecondsFormat, Utc};
use flate2::write::DeflateEncoder;
use flate2::Compression;
use gatehouse_plugin_sdk::{reason, BeginLoginRequest, BeginLoginResponse, PluginError};
use openssl::hash::MessageDigest;
use openssl::sign::Signer;
use url::form_urlencoded::byte_serialize;

use crate::config::Config;
use crate::http::Fetch;
use crate::idp_metadata::{self, Freshness, BINDING_POST};
use crate::xml::{escape, NS_ASSERTION, NS_PROTOCOL};

/// Builds the redirect to the IdP's SSO service, reading the IdP metadata first when the
/// connection names a metadata URL.
pub fn begin_login(fetch: &dyn Fetch, request: BeginLoginRequest) -> Result<BeginLoginResponse, PluginError> {
    let config = Config::parse(&request.config)?;
    let config = idp_metadata::resolve(fetch, &config, Freshness::Cached)?;
    // SAML Core §1.3.4: an ID is an xs:ID, that is an NCName; the host generates it.
    if !is_ncname(&request.request_id) {
        return Err(PluginError::new(
            reason::PLUGIN_FAILURE,
            "the host's request id is not an XML NCName",
        ));
    }
    if request.sp_entity_id.is_empty() || request.redirect_uri.is_empty() {
        return Err(PluginError::new(
            reason::PLUGIN_FAILURE,
            "the host gave no SP entity ID or ACS URL",
        ));
    }

    let xml = authn_request_xml(&config, &request);
    let encoded = deflate_base64(xml.as_bytes())
        .map_err(|_| PluginError::new(reason::PLUGIN_FAILURE, "cannot compress the AuthnRequest"))?;

    // Bindings §3.4.4.1: the signature covers the URL-encoded
    // `SAMLRequest=..&RelayState=..&SigAlg=..` exactly as sent.
    let mut query = format!("SAMLRequest={}", url_encode(&encoded));
    if !request.state.is_empty() {
        query.push_str(&format!("&RelayState={}", url_encode(&request.state)));
    }
    if let Some(key) = &config.sp_private_key {
        query.push_str(&format!("&SigAlg={}", url_encode(SIG_ALG_RSA_SHA256)));
        let signature = sign(&key.key, query.as_bytes())
            .map_err(|_| PluginError::new(reason::PLUGIN_FAILURE, "cannot sign the AuthnRequest"))?;
        query.push_str(&format!("&Signature={}", url_encode(&STANDARD.encode(signature))));
    }

    let separator = if config.sso_url.contains('?') { '&' } else { '?' };
    Ok(BeginLoginResponse {
        redirect_url: format!("{}{separator}{query}", config.sso_url),
    })
}

fn authn_request_xml(config: &Config, request: &BeginLoginRequest) -> String {
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    format!(
        concat!(
            r#"<samlp:AuthnRequest xmlns:samlp="{protocol}" xmlns:saml="{assertion}" "#,
            r#"ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{destination}" "#,
            r#"AssertionConsumerServiceURL="{acs}" ProtocolBinding="{binding}">"#,
            r#"<saml:Issuer>{issuer}</saml:Issuer>"#,
            r#"<samlp:NameIDPolicy AllowCreate="true"/>"#,
            r#"</samlp:AuthnRequest>"#
        ),
        protocol = NS_PROTOCOL,
        assertion = NS_ASSERTION,
        id = escape(&request.request_id),
        now = now,
        destination = escape(&config.sso_url),
        acs = escape(&request.redirect_uri),
        binding = BINDING_POST,
        issuer = escape(&request.sp_entity_id),
    )
}

/// Bindings §3.4.4.1: raw DEFLATE (RFC 1951), then base64.
fn deflate_base64(bytes: &[u8]) -> std::io::Result<String> {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes)?;
    Ok(STANDARD.encode(encoder.finish()?))
}

fn sign(key: &openssl::pkey::PKey<openssl::pkey::Private>, data: &[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let mut signer = Signer::new(MessageDigest::sha256(), key)?;
    signer.sign_oneshot_to_vec(data)
}

fn url_encode(text: &str) -> String {
    byte_serialize(text.as_bytes()).collect()
}

/// XML Namespaces §3 NCName, restricted to ASCII (the host generates these).
pub fn is_ncname(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && text.len() <= 256
}

/// XML Signature 1.1 §6.4.2 (RFC 6931 §2.3.2).
pub const SIG_ALG_RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

#[cfg(test)]
mod tests;
