//! Reading an IdP's metadata document (SAML Metadata §2.3.2, §2.4.3), pasted by an
//! administrator or fetched from the IdP's metadata URL at each login.
//!
//! Fetching goes through the host's shared cache: a cached copy younger than an hour serves
//! every node, so the metadata is re-read at most hourly and new certificates are picked up
//! without anyone editing the connection. When no certificate of the cached copy verifies a
//! signature, the ACS asks for a fresh copy once ([`Freshness::Refreshed`], rate-limited by the
//! host) in case the IdP has just rolled its key over.

use gatehouse_plugin_sdk::{reason as sdk_reason, CachePolicy, HttpErrorKind, HttpRequest, PluginError};

use crate::config::Config;
use crate::http::Fetch;
use crate::reason;
use crate::xml::{self, NS_DSIG, NS_METADATA};

/// What a connection needs from IdP metadata.
#[derive(Debug)]
pub struct IdpMetadata {
    /// `EntityDescriptor/@entityID`.
    pub entity_id: String,
    /// The HTTP-Redirect `SingleSignOnService/@Location`.
    pub sso_url: String,
    /// Signing certificates, base64 DER as found in `ds:X509Certificate`.
    pub certificates: Vec<String>,
}

impl IdpMetadata {
    /// Parses the metadata; the error is a detail safe to show the administrator.
    pub fn parse(text: &str) -> Result<IdpMetadata, String> {
        if text.len() > MAX_METADATA_BYTES {
            return Err("is larger than 1 MiB".into());
        }
        let document = xml::parse_strict(text).map_err(|error| match error {
            xml::ParseError::Dtd => "must not contain a DOCTYPE or entity declarations".to_owned(),
            xml::ParseError::Malformed(detail) => format!("is not well-formed XML: {detail}"),
        })?;
        let root = document.root_element();
        // An aggregate holding a single entity is accepted too (SAML Metadata §2.3.1).
        let entity = if xml::is(root, NS_METADATA, "EntityDescriptor") {
            root
        } else if xml::is(root, NS_METADATA, "EntitiesDescriptor") {
            let mut entities = xml::children(root, NS_METADATA, "EntityDescriptor");
            match (entities.next(), entities.next()) {
                (Some(entity), None) => entity,
                _ => return Err("must describe exactly one entity".into()),
            }
        } else {
            return Err("root element must be md:EntityDescriptor".into());
        };
        let entity_id = entity
            .attribute("entityID")
            .filter(|id| !id.is_empty())
            .ok_or("EntityDescriptor has no entityID")?
            .to_owned();
        let idp = xml::child(entity, NS_METADATA, "IDPSSODescriptor")
            .ok_or("has no IDPSSODescriptor")?;
        let supports_saml2 = idp
            .attribute("protocolSupportEnumeration")
            .is_some_and(|list| list.split_whitespace().any(|p| p == xml::NS_PROTOCOL));
        if !supports_saml2 {
            return Err("IDPSSODescriptor does not support SAML 2.0".into());
        }
        let sso_url = xml::children(idp, NS_METADATA, "SingleSignOnService")
            .find(|service| service.attribute("Binding") == Some(BINDING_REDIRECT))
            .and_then(|service| service.attribute("Location"))
            .ok_or("has no SingleSignOnService with the HTTP-Redirect binding")?
            .to_owned();
        // §2.4.1.1: a KeyDescriptor without `use` serves both signing and encryption.
        let certificates: Vec<String> = xml::children(idp, NS_METADATA, "KeyDescriptor")
            .filter(|key| matches!(key.attribute("use"), None | Some("signing")))
            .filter_map(|key| xml::child(key, NS_DSIG, "KeyInfo"))
            .flat_map(|info| xml::children(info, NS_DSIG, "X509Data"))
            .flat_map(|data| xml::children(data, NS_DSIG, "X509Certificate"))
            .filter_map(xml::full_text)
            .map(|text| text.split_whitespace().collect())
            .collect();
        if certificates.is_empty() {
            return Err("has no signing certificate in IDPSSODescriptor".into());
        }
        Ok(IdpMetadata {
            entity_id,
            sso_url,
            certificates,
        })
    }
}

/// Which copy of the metadata to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// The host's shared copy, if younger than an hour.
    Cached,
    /// A new copy, unless the host fetched one for this connection within five minutes.
    Refreshed,
}

/// The config with the IdP fields filled in from its metadata URL; a config with fixed IdP
/// fields is returned as it is, without any request.
///
/// Failures: a destination the host refuses is `destination_blocked`; no answer, or an answer
/// other than 2xx, is `idp_unreachable`; a document the strict parser refuses, or whose
/// values would not pass config validation, is `saml_metadata_invalid`.
pub fn resolve(fetch: &dyn Fetch, config: &Config, freshness: Freshness) -> Result<Config, PluginError> {
    let Some(url) = &config.idp_metadata_url else {
        return Ok(config.clone());
    };
    let text = fetch_document(fetch, url, freshness)?;

    let invalid = |detail: String| {
        PluginError::new(reason::METADATA_INVALID, format!("the IdP metadata document {detail}"))
    };
    let metadata = IdpMetadata::parse(&text).map_err(invalid)?;
    config.with_metadata(metadata).map_err(invalid)
}

fn fetch_document(fetch: &dyn Fetch, url: &str, freshness: Freshness) -> Result<String, PluginError> {
    let cache = match freshness {
        Freshness::Cached => CachePolicy {
            max_age_secs: CACHE_MAX_AGE_SECS,
            refresh: false,
            min_refresh_secs: 0,
            scope: CACHE_SCOPE.into(),
        },
        Freshness::Refreshed => CachePolicy {
            max_age_secs: CACHE_MAX_AGE_SECS,
            refresh: true,
            min_refresh_secs: MIN_REFRESH_SECS,
            scope: CACHE_SCOPE.into(),
        },
    };
    let request = HttpRequest {
        method: "GET".into(),
        url: url.to_owned(),
        headers: vec![("accept".into(), ACCEPT.into())],
        body: Vec::new(),
        cache: Some(cache),
    };

    let response = fetch.fetch(&request).map_err(|error| {
        let code = match error.kind {
            HttpErrorKind::Blocked => sdk_reason::DESTINATION_BLOCKED,
            _ => sdk_reason::IDP_UNREACHABLE,
        };
        PluginError::new(code, format!("cannot read the IdP metadata: {}", error.detail))
    })?;
    if !(200..300).contains(&response.status) {
        return Err(PluginError::new(
            sdk_reason::IDP_UNREACHABLE,
            format!("the IdP metadata URL answered with HTTP status {}", response.status),
        ));
    }
    String::from_utf8(response.body).map_err(|_| {
        PluginError::new(reason::METADATA_INVALID, "the IdP metadata document is not UTF-8")
    })
}

/// SAML Bindings §3.4.
pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
/// SAML Bindings §3.5.
pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

const MAX_METADATA_BYTES: usize = 1 << 20;
/// SAML Metadata §4.1.1 registers `application/samlmetadata+xml`; many IdPs serve plain XML.
const ACCEPT: &str = "application/samlmetadata+xml, application/xml";
const CACHE_SCOPE: &str = "saml-metadata";
const CACHE_MAX_AGE_SECS: u64 = 3600;
const MIN_REFRESH_SECS: u64 = 300;

#[cfg(test)]
mod tests;
