//! The SP metadata published for each connection (SAML Metadata §2.4.4).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use gatehouse_plugin_sdk::{reason, MetadataRequest, MetadataResponse, PluginError};
use openssl::x509::X509;

use crate::config::{Config, NAMEID_FORMAT_EMAIL};
use crate::idp_metadata::BINDING_POST;
use crate::xml::{escape, NS_DSIG, NS_METADATA, NS_PROTOCOL};

/// Builds the `md:EntityDescriptor` of our side of a connection.
pub fn metadata(request: MetadataRequest) -> Result<MetadataResponse, PluginError> {
    let config = Config::parse(&request.config)?;
    if request.sp_entity_id.is_empty() || request.acs_url.is_empty() {
        return Err(PluginError::new(
            reason::PLUGIN_FAILURE,
            "the host gave no SP entity ID or ACS URL",
        ));
    }
    let mut keys = String::new();
    if let Some(pem) = &config.sp_certificate {
        let der = X509::from_pem(pem.as_bytes())
            .and_then(|cert| cert.to_der())
            .map_err(|_| PluginError::new(reason::PLUGIN_FAILURE, "the SP certificate is unreadable"))?;
        let cert = STANDARD.encode(der);
        for usage in ["signing", "encryption"] {
            keys.push_str(&format!(
                concat!(
                    r#"<md:KeyDescriptor use="{usage}"><ds:KeyInfo><ds:X509Data>"#,
                    r#"<ds:X509Certificate>{cert}</ds:X509Certificate>"#,
                    r#"</ds:X509Data></ds:KeyInfo>"#
                ),
                usage = usage,
                cert = cert,
            ));
            if usage == "encryption" {
                // Only what the ACS accepts: AES-GCM/CBC content, RSA-OAEP key transport.
                keys.push_str(r#"<md:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes128-gcm"/>"#);
                keys.push_str(r#"<md:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>"#);
                keys.push_str(r#"<md:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"/>"#);
            }
            keys.push_str("</md:KeyDescriptor>");
        }
    }
    let body = format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<md:EntityDescriptor xmlns:md="{md}" xmlns:ds="{ds}" entityID="{entity}">"#,
            r#"<md:SPSSODescriptor AuthnRequestsSigned="{signed}" WantAssertionsSigned="true" "#,
            r#"protocolSupportEnumeration="{protocol}">"#,
            "{keys}",
            "<md:NameIDFormat>{nameid}</md:NameIDFormat>",
            r#"<md:AssertionConsumerService Binding="{binding}" Location="{acs}" index="0" isDefault="true"/>"#,
            "</md:SPSSODescriptor></md:EntityDescriptor>"
        ),
        md = NS_METADATA,
        ds = NS_DSIG,
        entity = escape(&request.sp_entity_id),
        signed = config.sp_private_key.is_some(),
        protocol = NS_PROTOCOL,
        keys = keys,
        nameid = NAMEID_FORMAT_EMAIL,
        binding = BINDING_POST,
        acs = escape(&request.acs_url),
    );
    Ok(MetadataResponse {
        content_type: "application/samlmetadata+xml".to_owned(),
        body,
    })
}
