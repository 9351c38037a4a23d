use std::io::Read;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use flate2::read::DeflateDecoder;
use gatehouse_plugin_sdk::{BeginLoginRequest, Host, MetadataRequest};
use openssl::hash::MessageDigest;
use openssl::sign::Verifier;
use openssl::x509::X509;
use serde_json::{json, Value};
use url::Url;

use super::*;
use crate::acs::test_support::{cert_b64, other_key_pair};

const ACS: &str = "https://gatehouse.test/acme/sso/conn1/acs";
const SP: &str = "https://gatehouse.test/acme/sso/conn1";

fn config(signed: bool) -> Value {
    let mut value = json!({
        "idp_entity_id": "https://idp.example.test/metadata",
        "sso_url": "https://idp.example.test/sso?tenant=7",
        "certificates": [cert_b64()],
        "allowed_domains": ["example.com"],
    });
    if signed {
        let (key, cert) = other_key_pair();
        value["sp_private_key"] = json!(key);
        value["sp_certificate"] = json!(cert);
    }
    value
}

fn request(config: Value) -> BeginLoginRequest {
    BeginLoginRequest {
        tenant: "acme".into(),
        connection_id: "conn1".into(),
        config,
        redirect_uri: ACS.into(),
        state: "opaque-ref".into(),
        nonce: String::new(),
        pkce_verifier: String::new(),
        request_id: "_3f2a9c".into(),
        sp_entity_id: SP.into(),
    }
}

/// Inflates with a limit, as any reader of a Redirect payload must.
fn inflate(encoded: &str) -> String {
    let compressed = STANDARD.decode(encoded).unwrap();
    let mut text = String::new();
    DeflateDecoder::new(compressed.as_slice())
        .take(64 * 1024)
        .read_to_string(&mut text)
        .unwrap();
    text
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[test]
fn the_authn_request_names_our_id_issuer_acs_and_destination() {
    let response = begin_login(&Host::offline(), request(config(false))).unwrap();
    let url = Url::parse(&response.redirect_url).unwrap();
    assert_eq!(url.host_str(), Some("idp.example.test"));
    assert_eq!(param(&url, "tenant").as_deref(), Some("7"));
    assert_eq!(param(&url, "RelayState").as_deref(), Some("opaque-ref"));
    assert!(param(&url, "Signature").is_none());
    let xml = inflate(&param(&url, "SAMLRequest").unwrap());
    let document = roxmltree::Document::parse(&xml).unwrap();
    let root = document.root_element();
    assert!(crate::xml::is(root, crate::xml::NS_PROTOCOL, "AuthnRequest"));
    assert_eq!(root.attribute("ID"), Some("_3f2a9c"));
    assert_eq!(root.attribute("Version"), Some("2.0"));
    assert_eq!(root.attribute("AssertionConsumerServiceURL"), Some(ACS));
    assert_eq!(root.attribute("Destination"), Some("https://idp.example.test/sso?tenant=7"));
    assert_eq!(root.attribute("ProtocolBinding"), Some(crate::idp_metadata::BINDING_POST));
    let issuer = crate::xml::child(root, crate::xml::NS_ASSERTION, "Issuer").unwrap();
    assert_eq!(issuer.text(), Some(SP));
}

#[test]
fn with_an_sp_key_the_redirect_is_signed_and_verifiable() {
    let response = begin_login(&Host::offline(), request(config(true))).unwrap();
    let url = Url::parse(&response.redirect_url).unwrap();
    assert_eq!(param(&url, "SigAlg").as_deref(), Some(SIG_ALG_RSA_SHA256));
    // Bindings §3.4.4.1: the signed octets are the query as sent, up to &Signature.
    let query = url.query().unwrap();
    let start = query.find("SAMLRequest=").unwrap();
    let end = query.find("&Signature=").unwrap();
    let signed = &query[start..end];
    let signature = STANDARD.decode(param(&url, "Signature").unwrap()).unwrap();
    let (_, cert) = other_key_pair();
    let public = X509::from_pem(cert.as_bytes()).unwrap().public_key().unwrap();
    let mut verifier = Verifier::new(MessageDigest::sha256(), &public).unwrap();
    verifier.update(signed.as_bytes()).unwrap();
    assert!(verifier.verify(&signature).unwrap());
}

#[test]
fn a_request_id_that_is_not_an_ncname_is_refused() {
    let mut bad = request(config(false));
    bad.request_id = "1\"><x".into();
    assert!(begin_login(&Host::offline(), bad).is_err());
}

#[test]
fn sp_metadata_describes_the_connection() {
    for signed in [false, true] {
        let response = crate::sp_metadata::metadata(MetadataRequest {
            tenant: "acme".into(),
            connection_id: "conn1".into(),
            config: config(signed),
            sp_entity_id: SP.into(),
            acs_url: ACS.into(),
        })
        .unwrap();
        assert_eq!(response.content_type, "application/samlmetadata+xml");
        let document = roxmltree::Document::parse(&response.body).unwrap();
        let root = document.root_element();
        assert_eq!(root.attribute("entityID"), Some(SP));
        let sp = crate::xml::child(root, crate::xml::NS_METADATA, "SPSSODescriptor").unwrap();
        assert_eq!(sp.attribute("AuthnRequestsSigned"), Some(if signed { "true" } else { "false" }));
        assert_eq!(sp.attribute("WantAssertionsSigned"), Some("true"));
        let acs = crate::xml::child(sp, crate::xml::NS_METADATA, "AssertionConsumerService").unwrap();
        assert_eq!(acs.attribute("Location"), Some(ACS));
        assert_eq!(acs.attribute("Binding"), Some(crate::idp_metadata::BINDING_POST));
        let keys = crate::xml::children(sp, crate::xml::NS_METADATA, "KeyDescriptor").count();
        assert_eq!(keys, if signed { 2 } else { 0 });
    }
}

#[test]
fn a_generated_sp_key_signs_requests_that_verify_with_the_published_certificate() {
    use gatehouse_plugin_sdk::{Protocol, ValidateConfigRequest};

    let mut admin = config(false);
    admin["sp_key"] = json!("generate");
    let validated = crate::Saml
        .validate_config(ValidateConfigRequest { config: admin })
        .unwrap();
    let stored = validated.config;
    assert!(stored.get("sp_key").is_none());

    let response = crate::Saml
        .begin_login(&Host::offline(), request(stored.clone()))
        .unwrap();
    let url = Url::parse(&response.redirect_url).unwrap();
    assert_eq!(param(&url, "SigAlg").as_deref(), Some(SIG_ALG_RSA_SHA256));
    let xml = inflate(&param(&url, "SAMLRequest").unwrap());
    let document = roxmltree::Document::parse(&xml).unwrap();
    assert_eq!(document.root_element().attribute("AssertionConsumerServiceURL"), Some(ACS));

    // The certificate the IdP learns from our metadata verifies the redirect signature.
    let metadata = crate::Saml
        .metadata(MetadataRequest {
            tenant: "acme".into(),
            connection_id: "conn1".into(),
            config: stored,
            sp_entity_id: SP.into(),
            acs_url: ACS.into(),
        })
        .unwrap();
    let document = roxmltree::Document::parse(&metadata.body).unwrap();
    let published = document
        .descendants()
        .find(|n| crate::xml::is(*n, crate::xml::NS_DSIG, "X509Certificate"))
        .and_then(|n| n.text())
        .unwrap();
    let cert = X509::from_der(&STANDARD.decode(published).unwrap()).unwrap();
    let query = url.query().unwrap();
    let start = query.find("SAMLRequest=").unwrap();
    let end = query.find("&Signature=").unwrap();
    let signature = STANDARD.decode(param(&url, "Signature").unwrap()).unwrap();
    let public = cert.public_key().unwrap();
    let mut verifier = Verifier::new(MessageDigest::sha256(), &public).unwrap();
    verifier.update(&query.as_bytes()[start..end]).unwrap();
    assert!(verifier.verify(&signature).unwrap());
}

#[test]
fn the_acs_url_is_in_every_authn_request() {
    // SAML Core §3.4.1: without AssertionConsumerServiceURL the IdP would post to whatever
    // ACS it has on file; every request names ours, signed or not.
    for signed in [false, true] {
        let response = begin_login(&Host::offline(), request(config(signed))).unwrap();
        let url = Url::parse(&response.redirect_url).unwrap();
        let xml = inflate(&param(&url, "SAMLRequest").unwrap());
        let document = roxmltree::Document::parse(&xml).unwrap();
        assert_eq!(document.root_element().attribute("AssertionConsumerServiceURL"), Some(ACS));
    }
}
