use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::{X509NameBuilder, X509};
use serde_json::json;

use super::*;
use crate::acs::test_support::cert_b64;

fn cert_expiring_in(days: u32) -> String {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "soon.example.test").unwrap();
    let name = name.build();
    let mut builder = X509::builder().unwrap();
    builder.set_version(2).unwrap();
    builder.set_serial_number(&BigNum::from_u32(7).unwrap().to_asn1_integer().unwrap()).unwrap();
    builder.set_subject_name(&name).unwrap();
    builder.set_issuer_name(&name).unwrap();
    builder.set_pubkey(&key).unwrap();
    builder.set_not_before(&Asn1Time::from_unix(0).unwrap()).unwrap();
    builder.set_not_after(&Asn1Time::days_from_now(days).unwrap()).unwrap();
    builder.sign(&key, MessageDigest::sha256()).unwrap();
    String::from_utf8(builder.build().to_pem().unwrap()).unwrap()
}

fn base() -> Value {
    json!({
        "idp_entity_id": "https://idp.example.test/metadata",
        "sso_url": "https://idp.example.test/sso",
        "certificates": [cert_b64()],
        "allowed_domains": ["Example.COM."],
    })
}

fn field_of(value: Value) -> String {
    Config::parse(&value).unwrap_err().field.unwrap()
}

#[test]
fn a_minimal_config_is_normalised_with_defaults() {
    let (config, warnings) = Config::parse_with_warnings(&base()).unwrap();
    assert!(warnings.is_empty());
    let value = config.to_value();
    assert_eq!(value["allowed_domains"], json!(["example.com"]));
    assert_eq!(value["require_verified_email"], json!(false));
    assert_eq!(value["allow_idp_initiated"], json!(false));
    assert_eq!(value["allow_sha1"], json!(false));
    assert_eq!(value["clock_skew_secs"], json!(120));
    assert_eq!(value["certificates"], json!([cert_b64()]));
    // The stored form validates again to the same value.
    assert_eq!(Config::parse(&value).unwrap().to_value(), value);
    assert_eq!(config.setup()["nameid_format"], NAMEID_FORMAT_EMAIL);
}

#[test]
fn a_config_without_a_certificate_is_refused() {
    let mut value = base();
    value.as_object_mut().unwrap().remove("certificates");
    assert_eq!(field_of(value), "/certificates");
    let mut value = base();
    value["certificates"] = json!([]);
    assert_eq!(field_of(value), "/certificates");
    let mut value = base();
    value["certificates"] = json!(["bm90IGEgY2VydA=="]);
    assert_eq!(field_of(value), "/certificates/0");
    let mut value = base();
    value["certificates"] = json!([cert_b64(), cert_b64(), cert_b64(), cert_b64(), cert_b64()]);
    assert_eq!(field_of(value), "/certificates");
}

#[test]
fn pem_certificates_are_normalised_to_base64_der() {
    let pem = crate::acs::test_support::cert_pem();
    let mut value = base();
    value["certificates"] = json!([pem]);
    assert_eq!(Config::parse(&value).unwrap().to_value()["certificates"], json!([cert_b64()]));
}

#[test]
fn expired_certificates_are_refused_and_expiring_ones_warned_about() {
    let mut value = base();
    value["certificates"] = json!([cert_expiring_in(0)]);
    // `days_from_now(0)` is now: expired by the time it is checked (or within the second).
    let error = Config::parse(&value);
    if let Err(error) = error {
        assert_eq!(error.field.as_deref(), Some("/certificates/0"));
        assert!(error.detail.contains("expired"));
    }
    let mut value = base();
    value["certificates"] = json!([cert_expiring_in(10)]);
    let (_, warnings) = Config::parse_with_warnings(&value).unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].starts_with("IdP signing certificate CN=soon.example.test expires on 20"));
}

#[test]
fn unknown_fields_and_bad_values_are_refused_by_field() {
    let cases = [
        ("surprise", json!(1), "/surprise"),
        ("sso_url", json!("ftp://idp.example.test/sso"), "/sso_url"),
        ("sso_url", json!("not a url"), "/sso_url"),
        ("idp_entity_id", json!(""), "/idp_entity_id"),
        ("allowed_domains", json!([]), "/allowed_domains"),
        ("allowed_domains", json!(["*.example.com"]), "/allowed_domains/0"),
        ("allowed_domains", json!(["com"]), "/allowed_domains/0"),
        ("clock_skew_secs", json!(601), "/clock_skew_secs"),
        ("clock_skew_secs", json!(-1), "/clock_skew_secs"),
        ("allow_sha1", json!("yes"), "/allow_sha1"),
        ("sp_private_key", json!("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"), "/sp_private_key"),
        ("sp_certificate", json!(crate::acs::test_support::cert_pem()), "/sp_private_key"),
        ("email_attribute", json!(""), "/email_attribute"),
    ];
    for (key, bad, field) in cases {
        let mut value = base();
        value[key] = bad;
        assert_eq!(field_of(value), field, "{key}");
    }
}

#[test]
fn the_sp_key_needs_its_matching_certificate() {
    let sp_key = Rsa::generate(2048).unwrap();
    let pem = String::from_utf8(sp_key.private_key_to_pem().unwrap()).unwrap();
    let mut value = base();
    value["sp_private_key"] = json!(pem);
    assert_eq!(field_of(value.clone()), "/sp_certificate");
    // Another key's certificate does not match.
    value["sp_certificate"] = json!(crate::acs::test_support::cert_pem());
    assert_eq!(field_of(value), "/sp_certificate");
    // The key is never echoed in an error.
    let mut value = base();
    value["sp_private_key"] = json!("secret-material");
    let error = Config::parse(&value).unwrap_err();
    assert!(!error.detail.contains("secret-material"));
}

#[test]
fn idp_metadata_supplies_entity_sso_url_and_certificates() {
    let metadata = format!(
        concat!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" "#,
            r#"xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example.test/metadata">"#,
            r#"<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">"#,
            r#"<md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>bm90</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
            r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
            r#"<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.example.test/post"/>"#,
            r#"<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.test/redirect"/>"#,
            "</md:IDPSSODescriptor></md:EntityDescriptor>"
        ),
        cert = cert_b64(),
    );
    let value = json!({ "idp_metadata_xml": metadata, "allowed_domains": ["example.com"] });
    let config = Config::parse(&value).unwrap();
    assert_eq!(config.idp_entity_id, "https://idp.example.test/metadata");
    assert_eq!(config.sso_url, "https://idp.example.test/redirect");
    assert_eq!(config.to_value()["certificates"], json!([cert_b64()]));
    assert!(config.to_value().get("idp_metadata_xml").is_none());

    // Metadata and explicit fields together are ambiguous.
    let mut both = base();
    both["idp_metadata_xml"] = json!(metadata);
    assert_eq!(field_of(both), "/idp_metadata_xml");
    // No signing certificate, a DTD, or no redirect endpoint: refused.
    for bad in [
        metadata.replace(&cert_b64(), "").replace("use=\"signing\"", "use=\"encryption\""),
        format!("<!DOCTYPE x>{metadata}"),
        metadata.replace("HTTP-Redirect", "SOAP"),
    ] {
        let value = json!({ "idp_metadata_xml": bad, "allowed_domains": ["example.com"] });
        assert_eq!(field_of(value), "/idp_metadata_xml");
    }
}

#[test]
fn sp_key_generate_creates_a_matching_pair_and_is_not_stored() {
    let mut value = base();
    value["sp_key"] = json!("generate");
    let (config, warnings) = Config::from_admin(&value).unwrap();
    let key = config.sp_private_key.as_ref().expect("a key was generated");
    let cert = X509::from_pem(config.sp_certificate.as_ref().unwrap().as_bytes()).unwrap();
    assert!(cert.public_key().unwrap().public_eq(&key.key));
    assert!(warnings.iter().any(|w| w.contains("SP metadata")));
    let stored = config.to_value();
    assert!(stored.get("sp_key").is_none());
    assert!(stored["sp_private_key"].as_str().unwrap().starts_with("-----BEGIN PRIVATE KEY-----"));
    // The stored form reads back without generating anything.
    let again = Config::parse(&stored).unwrap();
    assert_eq!(again.sp_private_key.unwrap().pem, key.pem);
    // A stored config never carries the request.
    assert_eq!(field_of(value.clone()), "/sp_key");
}

#[test]
fn sp_key_generate_sent_again_rotates_the_key() {
    let mut value = base();
    value["sp_key"] = json!("generate");
    let first = Config::from_admin(&value).unwrap().0.to_value();
    // As the host sends it on update: the stored key filled in, plus the request.
    let mut update = first.clone();
    update["sp_key"] = json!("generate");
    let second = Config::from_admin(&update).unwrap().0.to_value();
    assert_ne!(second["sp_private_key"], first["sp_private_key"]);
    assert_ne!(second["sp_certificate"], first["sp_certificate"]);
    // Without the request the stored pair is kept as it is.
    let (kept, warnings) = Config::from_admin(&first).unwrap();
    assert_eq!(kept.to_value(), first);
    assert!(warnings.is_empty());
}

#[test]
fn sp_key_accepts_only_generate() {
    for bad in [json!("rotate"), json!(true), json!({"generate": true})] {
        let mut value = base();
        value["sp_key"] = bad;
        let error = Config::from_admin(&value).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("/sp_key"));
    }
    // A mismatched pair given by hand is still refused on the admin path.
    let mut value = base();
    let other = Rsa::generate(2048).unwrap();
    value["sp_private_key"] = json!(String::from_utf8(other.private_key_to_pem().unwrap()).unwrap());
    value["sp_certificate"] = json!(crate::acs::test_support::cert_pem());
    let error = Config::from_admin(&value).unwrap_err();
    assert_eq!(error.field.as_deref(), Some("/sp_certificate"));
}

#[test]
fn fetched_metadata_drops_expired_certificates_but_needs_a_valid_one() {
    use crate::idp_metadata::IdpMetadata;
    let config = Config::parse(&json!({
        "idp_metadata_url": "https://idp.example.test/metadata",
        "allowed_domains": ["example.com"],
    }))
    .unwrap();
    assert!(config.certificates.is_empty(), "nothing is trusted before the metadata is read");
    let metadata = |certificates: Vec<String>| IdpMetadata {
        entity_id: "https://idp.example.test/entity".into(),
        sso_url: "https://idp.example.test/sso".into(),
        certificates,
    };
    let expired = cert_expiring_in(0);
    let resolved = config
        .with_metadata(metadata(vec![expired.clone(), cert_b64()]))
        .unwrap();
    assert_eq!(resolved.idp_entity_id, "https://idp.example.test/entity");
    assert_eq!(resolved.certificates.len(), 1);
    // What a login read is never stored.
    assert_eq!(resolved.to_value(), config.to_value());
    assert!(config.with_metadata(metadata(vec![expired])).is_err());
}

fn cert_with(bits: u32, not_before_days: u32) -> String {
    let key = PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "odd.example.test").unwrap();
    let name = name.build();
    let mut builder = X509::builder().unwrap();
    builder.set_version(2).unwrap();
    builder.set_serial_number(&BigNum::from_u32(9).unwrap().to_asn1_integer().unwrap()).unwrap();
    builder.set_subject_name(&name).unwrap();
    builder.set_issuer_name(&name).unwrap();
    builder.set_pubkey(&key).unwrap();
    builder.set_not_before(&Asn1Time::days_from_now(not_before_days).unwrap()).unwrap();
    builder.set_not_after(&Asn1Time::days_from_now(not_before_days + 400).unwrap()).unwrap();
    builder.sign(&key, MessageDigest::sha256()).unwrap();
    String::from_utf8(builder.build().to_pem().unwrap()).unwrap()
}

#[test]
fn several_pem_blocks_in_one_entry_are_refused() {
    let both = format!("{}{}", cert_expiring_in(400), cert_expiring_in(500));
    let mut config = base();
    config["certificates"] = json!([both]);
    assert_eq!(field_of(config), "/certificates/0");
}

#[test]
fn weak_keys_are_refused_and_future_certificates_warned_about() {
    let mut config = base();
    config["certificates"] = json!([cert_with(1024, 0)]);
    assert_eq!(field_of(config), "/certificates/0");

    let mut config = base();
    config["certificates"] = json!([cert_b64(), cert_with(2048, 30)]);
    let (_, warnings) = Config::parse_with_warnings(&config).unwrap();
    assert!(warnings.iter().any(|w| w.contains("is not valid before")), "{warnings:?}");
}
