//! Reading an IdP's metadata document (SAML Metadata §2.3.2, §2.4.3).

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

/// SAML Bindings §3.4.
pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
/// SAML Bindings §3.5.
pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

const MAX_METADATA_BYTES: usize = 1 << 20;
