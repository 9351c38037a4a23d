//! The hostile corpus: every case asserts its exact reason code.

use serde_json::json;

use super::test_idp::{self, idp, other, response, Spec, ACS, IDP_ENTITY, NOW, REQUEST_ID, SP_ENTITY};
use super::{consume, Expected};
use crate::config::Config;
use crate::reason;

fn config_with(extra: serde_json::Value) -> Config {
    let mut value = json!({
        "idp_entity_id": IDP_ENTITY,
        "sso_url": "https://idp.example.test/sso",
        "certificates": [idp().cert_b64()],
        "allowed_domains": ["example.com"],
    });
    for (key, v) in extra.as_object().unwrap() {
        value[key] = v.clone();
    }
    Config::parse(&value).expect("test config is valid")
}

fn expected(request_id: Option<&'static str>) -> Expected<'static> {
    Expected {
        acs_url: ACS,
        sp_entity_id: SP_ENTITY,
        request_id,
        now: NOW,
    }
}

fn run_with(config: &Config, xml: &str, request_id: Option<&'static str>) -> Result<gatehouse_plugin_sdk::ExternalIdentity, gatehouse_plugin_sdk::PluginError> {
    let params = vec![
        ("SAMLResponse".to_owned(), test_idp::encode(xml)),
        ("RelayState".to_owned(), "opaque".to_owned()),
    ];
    consume(config, &params, &expected(request_id))
}

fn code(xml: &str) -> String {
    code_with(&config_with(json!({})), xml, Some(REQUEST_ID))
}

fn code_with(config: &Config, xml: &str, request_id: Option<&'static str>) -> String {
    match run_with(config, xml, request_id) {
        Ok(identity) => panic!("accepted: {identity:?}"),
        Err(error) => {
            // Details never carry the NameID or XML.
            assert!(!error.detail.contains("<"), "detail echoes XML: {}", error.detail);
            error.code
        }
    }
}

fn accepted(xml: &str) -> gatehouse_plugin_sdk::ExternalIdentity {
    run_with(&config_with(json!({})), xml, Some(REQUEST_ID)).expect("accepted")
}

fn assertion_signed() -> Spec {
    Spec {
        sign_response: false,
        sign_assertion: true,
        ..Spec::default()
    }
}

// ---- accepted answers ----------------------------------------------------------------------

#[test]
fn a_signed_response_is_accepted() {
    let identity = accepted(&response(&Spec::default()));
    assert_eq!(identity.issuer, IDP_ENTITY);
    assert_eq!(identity.subject, "ada@example.com");
    assert_eq!(identity.email.as_deref(), Some("ada@example.com"));
    assert!(!identity.email_verified);
    assert_eq!(identity.name.as_deref(), Some("Ada Lovelace"));
    let replay = identity.replay.unwrap();
    assert_eq!(replay.id, "_assert1");
    assert_eq!(replay.expires_at, NOW + 300 + 120);
}

#[test]
fn an_assertion_only_signature_is_accepted() {
    let identity = accepted(&response(&assertion_signed()));
    assert_eq!(identity.subject, "ada@example.com");
}

#[test]
fn response_and_assertion_both_signed_are_accepted() {
    let spec = Spec {
        sign_assertion: true,
        ..Spec::default()
    };
    accepted(&response(&spec));
}

#[test]
fn email_comes_from_attributes_when_the_name_id_is_not_an_email() {
    let spec = Spec {
        name_id: "opaque-4711".into(),
        name_id_format: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent".into(),
        ..Spec::default()
    };
    let identity = accepted(&response(&spec));
    assert_eq!(identity.subject, "opaque-4711");
    assert_eq!(identity.email.as_deref(), Some("ada.attr@example.com"));
}

#[test]
fn a_second_configured_certificate_verifies_during_rollover() {
    let config = config_with(json!({ "certificates": [idp().cert_b64(), other().cert_b64()] }));
    let spec = Spec::default();
    let xml = test_idp::response_with(&spec, &test_idp::assertion(&spec, other()), other());
    run_with(&config, &xml, Some(REQUEST_ID)).expect("the second certificate verifies");
}

#[test]
fn sha1_is_refused_by_default_and_accepted_with_the_opt_in() {
    let xml = response(&Spec {
        sha1: true,
        ..Spec::default()
    });
    assert_eq!(code(&xml), reason::ALGORITHM_FORBIDDEN);
    let config = config_with(json!({ "allow_sha1": true }));
    run_with(&config, &xml, Some(REQUEST_ID)).expect("SHA-1 accepted with the opt-in");
}

#[test]
fn an_unsolicited_answer_is_accepted_only_without_in_response_to() {
    let spec = Spec {
        in_response_to: None,
        scd_in_response_to: None,
        ..Spec::default()
    };
    let xml = response(&spec);
    let config = config_with(json!({ "allow_idp_initiated": true }));
    run_with(&config, &xml, None).expect("unsolicited answer accepted when allowed");
    // A login we started must get an answer to it.
    assert_eq!(code(&xml), reason::UNSOLICITED);
}

#[test]
fn the_protocol_entry_point_accepts_a_valid_answer() {
    use gatehouse_plugin_sdk::{FinishLoginRequest, Host, Protocol};
    // Real time here: the Protocol path reads the clock itself.
    let now = chrono::Utc::now().timestamp();
    let spec = Spec {
        issue_instant: now - 5,
        not_before: now - 60,
        not_on_or_after: now + 300,
        scd_not_on_or_after: now + 300,
        ..Spec::default()
    };
    let request = FinishLoginRequest {
        tenant: "acme".into(),
        connection_id: "conn1".into(),
        config: config_with(json!({})).to_value(),
        redirect_uri: ACS.into(),
        state: "s".into(),
        nonce: String::new(),
        pkce_verifier: String::new(),
        params: vec![("SAMLResponse".into(), test_idp::encode(&response(&spec)))],
        request_id: Some(REQUEST_ID.into()),
        sp_entity_id: SP_ENTITY.into(),
    };
    let identity = crate::Saml.finish_login(&Host::offline(), request).unwrap();
    assert_eq!(identity.subject, "ada@example.com");
}

// ---- signatures ----------------------------------------------------------------------------

#[test]
fn a_stripped_signature_is_refused() {
    let spec = Spec {
        sign_response: false,
        ..Spec::default()
    };
    assert_eq!(code(&response(&spec)), reason::SIGNATURE_MISSING);
}

#[test]
fn a_signature_by_an_unknown_key_carried_in_key_info_is_refused() {
    let spec = Spec::default();
    let xml = test_idp::response_with(&spec, &test_idp::assertion(&spec, other()), other());
    let key_info = format!(
        "</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>",
        other().cert_b64()
    );
    let xml = xml.replacen("</ds:SignatureValue>", &key_info, 1);
    assert_eq!(code(&xml), reason::SIGNATURE_INVALID);
}

#[test]
fn a_tampered_name_id_is_refused() {
    let xml = response(&Spec::default()).replace("ada@example.com", "eve@example.com");
    assert_eq!(code(&xml), reason::SIGNATURE_INVALID);
    let xml = response(&assertion_signed()).replace("ada@example.com", "eve@example.com");
    assert_eq!(code(&xml), reason::SIGNATURE_INVALID);
}

#[test]
fn a_comment_injected_name_id_yields_the_full_value() {
    // The IdP signed "user@good.test<!---->.evil.test"; exclusive c14n without comments drops
    // the comment from the digest, so the signature holds, and the value must not be cut.
    // samael's reduction matches xmlsec's pre-digest content (comments removed) back to the
    // document and refuses the mismatch; a refusal is one of the two acceptable outcomes.
    // If a later samael accepts it, the value must be the whole text, never "user@good.test".
    for spec in [Spec::default(), assertion_signed()] {
        let spec = Spec {
            name_id: "user@good.test<!---->.evil.test".into(),
            ..spec
        };
        match run_with(&config_with(json!({})), &response(&spec), Some(REQUEST_ID)) {
            Ok(identity) => {
                assert_eq!(identity.subject, "user@good.test.evil.test");
                assert_eq!(identity.email.as_deref(), Some("user@good.test.evil.test"));
            }
            Err(error) => assert_eq!(error.code, reason::SIGNATURE_INVALID),
        }
    }
    // Inserting the comment after signing changes nothing either.
    let xml = response(&Spec::default()).replace("ada@example.com", "ada@example.com<!---->.evil.test");
    assert_eq!(code(&xml), reason::SIGNATURE_INVALID);
}

#[test]
fn a_reference_to_another_element_is_refused() {
    // The assertion's signature points at the Response instead of its parent.
    let xml = response(&assertion_signed()).replacen("URI=\"#_assert1\"", "URI=\"#_resp1\"", 1);
    assert_eq!(code(&xml), reason::SIGNATURE_REFERENCE_INVALID);
    // An empty URI (the whole document) is refused too.
    let xml = response(&Spec::default()).replacen("URI=\"#_resp1\"", "URI=\"\"", 1);
    assert_eq!(code(&xml), reason::SIGNATURE_REFERENCE_INVALID);
}

#[test]
fn other_transforms_and_retrieval_methods_are_refused() {
    let xml = response(&Spec::default()).replacen(
        "http://www.w3.org/2001/10/xml-exc-c14n#\"/></ds:Transforms>",
        "http://www.w3.org/TR/1999/REC-xslt-19991116\"/></ds:Transforms>",
        1,
    );
    assert_eq!(code(&xml), reason::SIGNATURE_REFERENCE_INVALID);
    let xml = response(&Spec::default()).replacen(
        "</ds:SignatureValue>",
        "</ds:SignatureValue><ds:KeyInfo><ds:RetrievalMethod URI=\"file:///etc/passwd\"/></ds:KeyInfo>",
        1,
    );
    assert_eq!(code(&xml), reason::SIGNATURE_REFERENCE_INVALID);
    let xml = response(&Spec::default()).replacen(
        "xml-exc-c14n#\"/><ds:SignatureMethod",
        "xml-exc-c14n#WithComments\"/><ds:SignatureMethod",
        1,
    );
    assert_eq!(code(&xml), reason::SIGNATURE_REFERENCE_INVALID);
}

// ---- XML signature wrapping ----------------------------------------------------------------

fn evil_assertion(id: &str) -> String {
    let spec = Spec {
        assertion_id: id.into(),
        name_id: "eve@example.com".into(),
        sign_assertion: false,
        ..Spec::default()
    };
    test_idp::assertion(&spec, idp())
}

fn signed_assertion() -> String {
    test_idp::assertion(&assertion_signed(), idp())
}

fn unsigned_response_around(spec: &Spec, body: &str) -> String {
    let spec = Spec {
        sign_response: false,
        ..spec.clone()
    };
    test_idp::response_with(&spec, body, idp())
}

#[test]
fn xsw_evil_assertion_before_the_signed_one() {
    let body = format!("{}{}", evil_assertion("_evil"), signed_assertion());
    assert_eq!(code(&unsigned_response_around(&Spec::default(), &body)), reason::ASSERTION_COUNT);
}

#[test]
fn xsw_evil_assertion_after_the_signed_one() {
    let body = format!("{}{}", signed_assertion(), evil_assertion("_evil"));
    assert_eq!(code(&unsigned_response_around(&Spec::default(), &body)), reason::ASSERTION_COUNT);
}

#[test]
fn xsw_signed_assertion_moved_into_extensions() {
    // The signed original hides in Extensions; an unsigned evil assertion takes its place.
    let body = format!(
        "<samlp:Extensions>{}</samlp:Extensions>{}",
        signed_assertion(),
        evil_assertion("_evil")
    );
    let xml = unsigned_response_around(&Spec::default(), &body);
    assert_eq!(code(&xml), reason::SIGNATURE_REFERENCE_INVALID);
    // Alone in Extensions, it is not where SAML Core puts an assertion.
    let body = format!("<samlp:Extensions>{}</samlp:Extensions>", signed_assertion());
    assert_eq!(code(&unsigned_response_around(&Spec::default(), &body)), reason::SIGNATURE_REFERENCE_INVALID);
    // And a Response-signed answer with its (unsigned) assertion in Extensions: none in place.
    let spec = Spec::default();
    let body = format!("<samlp:Extensions>{}</samlp:Extensions>", evil_assertion("_assert1"));
    let xml = test_idp::response_with(&spec, &body, idp());
    assert_eq!(code(&xml), reason::ASSERTION_COUNT);
}

#[test]
fn xsw_signed_assertion_moved_into_a_signature_object() {
    // The evil assertion carries a copy of the signature, whose ds:Object holds the original.
    let signed = signed_assertion();
    let signature_start = signed.find("<ds:Signature").unwrap();
    let signature_end = signed.find("</ds:Signature>").unwrap();
    let signature_body = &signed[signature_start..signature_end];
    let wrapped = format!("{signature_body}<ds:Object>{signed}</ds:Object></ds:Signature>");
    let evil = evil_assertion("_assert1").replacen("</saml:Issuer>", &format!("</saml:Issuer>{wrapped}"), 1);
    assert_eq!(code(&unsigned_response_around(&Spec::default(), &evil)), reason::DUPLICATE_ID);
    // With a fresh ID for the evil one the reference no longer points at its parent.
    let evil = evil_assertion("_evil").replacen("</saml:Issuer>", &format!("</saml:Issuer>{wrapped}"), 1);
    assert_eq!(code(&unsigned_response_around(&Spec::default(), &evil)), reason::SIGNATURE_REFERENCE_INVALID);
}

#[test]
fn xsw_evil_assertion_wrapping_the_signed_one() {
    // The signed assertion's signature no longer sits where a signature may be.
    let evil = evil_assertion("_evil").replacen("</saml:Assertion>", &format!("{}</saml:Assertion>", signed_assertion()), 1);
    assert_eq!(code(&unsigned_response_around(&Spec::default(), &evil)), reason::SIGNATURE_REFERENCE_INVALID);
    // Without its signature, the nested copy still makes two assertions.
    let nested = evil_assertion("_inner");
    let evil = evil_assertion("_evil").replacen("</saml:Assertion>", &format!("{nested}</saml:Assertion>"), 1);
    assert_eq!(code(&unsigned_response_around(&Spec::default(), &evil)), reason::ASSERTION_COUNT);
}

#[test]
fn xsw_signed_response_copied_into_an_evil_response() {
    // Evil root Response (new ID, unsigned) with the signature moved to it and the original
    // signed Response in its ds:Object: the reference no longer names its parent.
    let original = response(&Spec::default());
    let signature_start = original.find("<ds:Signature").unwrap();
    let signature_end = original.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let signature = &original[signature_start..signature_end];
    let with_object = signature.replacen("</ds:Signature>", &format!("<ds:Object>{original}</ds:Object></ds:Signature>"), 1);
    let evil_spec = Spec {
        response_id: "_evilresp".into(),
        ..Spec::default()
    };
    let evil = unsigned_response_around(&evil_spec, &evil_assertion("_evil"))
        .replacen("</saml:Issuer>", &format!("</saml:Issuer>{with_object}"), 1);
    assert_eq!(code(&evil), reason::SIGNATURE_REFERENCE_INVALID);
}

#[test]
fn xsw_signed_response_nested_in_extensions_of_an_evil_response() {
    let original = response(&Spec::default());
    let evil_spec = Spec {
        response_id: "_evilresp".into(),
        ..Spec::default()
    };
    let body = format!("<samlp:Extensions>{original}</samlp:Extensions>{}", evil_assertion("_evil"));
    let evil = unsigned_response_around(&evil_spec, &body);
    assert_eq!(code(&evil), reason::SIGNATURE_REFERENCE_INVALID);
}

#[test]
fn xsw_signed_response_with_its_assertion_replaced() {
    // The Response signature covers the assertion: swapping it breaks the signature.
    let original = response(&Spec::default());
    let start = original.find("<saml:Assertion").unwrap();
    let end = original.find("</saml:Assertion>").unwrap() + "</saml:Assertion>".len();
    let xml = format!("{}{}{}", &original[..start], evil_assertion("_assert1"), &original[end..]);
    assert_eq!(code(&xml), reason::SIGNATURE_INVALID);
}

#[test]
fn xsw_duplicate_ids_are_refused() {
    let body = format!(
        "<samlp:Extensions><saml:Issuer ID=\"_assert1\">x</saml:Issuer></samlp:Extensions>{}",
        signed_assertion()
    );
    assert_eq!(code(&unsigned_response_around(&Spec::default(), &body)), reason::DUPLICATE_ID);
}

#[test]
fn xsw_unsigned_response_fields_are_still_checked() {
    // Only the assertion is signed; a changed Destination in the unsigned Response is refused.
    let spec = Spec {
        destination: Some("https://evil.test/acs".into()),
        ..assertion_signed()
    };
    assert_eq!(code(&response(&spec)), reason::DESTINATION_MISMATCH);
}

#[test]
fn two_assertions_are_refused() {
    let spec = Spec::default();
    let body = format!("{}{}", test_idp::assertion(&spec, idp()), evil_assertion("_evil"));
    let xml = test_idp::response_with(&spec, &body, idp());
    assert_eq!(code(&xml), reason::ASSERTION_COUNT);
}

// ---- conditions ----------------------------------------------------------------------------

#[test]
fn wrong_values_are_refused_with_their_code() {
    let cases: Vec<(Spec, &str)> = vec![
        (Spec { audience: Some("https://other-sp.test".into()), ..Spec::default() }, reason::AUDIENCE_MISMATCH),
        (Spec { audience: None, ..Spec::default() }, reason::AUDIENCE_MISMATCH),
        (Spec { recipient: "https://evil.test/acs".into(), ..Spec::default() }, reason::RECIPIENT_MISMATCH),
        (Spec { destination: Some("https://evil.test/acs".into()), ..Spec::default() }, reason::DESTINATION_MISMATCH),
        (Spec { destination: None, ..Spec::default() }, reason::DESTINATION_MISMATCH),
        (Spec { response_issuer: Some("https://evil.test".into()), ..Spec::default() }, reason::ISSUER_MISMATCH),
        (Spec { assertion_issuer: "https://evil.test".into(), ..Spec::default() }, reason::ISSUER_MISMATCH),
        (Spec { status: "urn:oasis:names:tc:SAML:2.0:status:Requester".into(), ..Spec::default() }, reason::STATUS_NOT_SUCCESS),
        (Spec { not_on_or_after: NOW - 121, ..Spec::default() }, reason::EXPIRED),
        (Spec { scd_not_on_or_after: NOW - 121, ..Spec::default() }, reason::EXPIRED),
        (Spec { not_before: NOW + 121, ..Spec::default() }, reason::NOT_YET_VALID),
        (Spec { issue_instant: NOW + 600, ..Spec::default() }, reason::NOT_YET_VALID),
        (Spec { in_response_to: Some("_other".into()), ..Spec::default() }, reason::IN_RESPONSE_TO_MISMATCH),
        (Spec { scd_in_response_to: Some("_other".into()), ..Spec::default() }, reason::IN_RESPONSE_TO_MISMATCH),
        (Spec { scd_in_response_to: None, ..Spec::default() }, reason::UNSOLICITED),
        (Spec { in_response_to: None, scd_in_response_to: None, ..Spec::default() }, reason::UNSOLICITED),
        (Spec { name_id: String::new(), ..Spec::default() }, reason::SUBJECT_MISSING),
    ];
    for (spec, expected_code) in cases {
        assert_eq!(code(&response(&spec)), expected_code);
    }
}

#[test]
fn the_skew_is_honoured() {
    let spec = Spec {
        not_on_or_after: NOW - 60,
        scd_not_on_or_after: NOW - 60,
        ..Spec::default()
    };
    accepted(&response(&spec));
    let config = config_with(json!({ "clock_skew_secs": 0 }));
    assert_eq!(code_with(&config, &response(&spec), Some(REQUEST_ID)), reason::EXPIRED);
}

#[test]
fn in_response_to_is_refused_when_no_request_is_pending() {
    let config = config_with(json!({ "allow_idp_initiated": true }));
    let xml = response(&Spec::default());
    assert_eq!(code_with(&config, &xml, None), reason::IN_RESPONSE_TO_UNKNOWN);
    let spec = Spec {
        in_response_to: None,
        ..Spec::default()
    };
    assert_eq!(code_with(&config, &response(&spec), None), reason::IN_RESPONSE_TO_UNKNOWN);
}

#[test]
fn an_assertion_for_another_connection_is_refused() {
    // Same IdP, same certificate, another tenant's connection: the Audience tells them apart.
    let spec = Spec {
        audience: Some("https://gatehouse.test/other-tenant/sso/conn9".into()),
        recipient: "https://gatehouse.test/other-tenant/sso/conn9/acs".into(),
        destination: Some("https://gatehouse.test/other-tenant/sso/conn9/acs".into()),
        ..Spec::default()
    };
    assert_eq!(code(&response(&spec)), reason::DESTINATION_MISMATCH);
}

// ---- size and shape ------------------------------------------------------------------------

#[test]
fn dtds_and_entities_are_refused() {
    let laughs = concat!(
        r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">"#,
        r#"<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>"#,
        r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&lol2;</samlp:Response>"#
    );
    assert_eq!(code(laughs), reason::DTD_FORBIDDEN);
    let xxe = r#"<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
    assert_eq!(code(xxe), reason::DTD_FORBIDDEN);
    let empty = "<!doctype r><r/>";
    assert_eq!(code(empty), reason::DTD_FORBIDDEN);
    // A DOCTYPE inside an otherwise valid signed response.
    let signed = response(&Spec::default());
    assert_eq!(code(&format!("<!DOCTYPE samlp:Response>{signed}")), reason::DTD_FORBIDDEN);
}

#[test]
fn oversized_garbage_and_non_xml_payloads_are_refused() {
    let config = config_with(json!({}));
    let run_raw = |value: String| {
        let params = vec![("SAMLResponse".to_owned(), value)];
        consume(&config, &params, &expected(Some(REQUEST_ID))).unwrap_err().code
    };
    assert_eq!(run_raw("A".repeat(256 * 1024 + 4)), reason::TOO_LARGE);
    assert_eq!(run_raw("%%%not base64%%%".into()), reason::MALFORMED);
    assert_eq!(run_raw(test_idp::encode("this is not xml")), reason::MALFORMED);
    assert_eq!(run_raw(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [0xff, 0xfe, 0x00])), reason::MALFORMED);
    assert_eq!(run_raw(test_idp::encode("<foo/>")), reason::MALFORMED);
    assert_eq!(
        run_raw(test_idp::encode(r#"<?xml version="1.0" encoding="ISO-8859-1"?><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>"#)),
        reason::MALFORMED
    );
    // A well-formed but oversized response.
    let big = format!("<r>{}</r>", "x".repeat(200 * 1024));
    assert_eq!(run_raw(test_idp::encode(&big)), reason::TOO_LARGE);
}

#[test]
fn missing_or_duplicate_saml_response_is_refused() {
    let config = config_with(json!({}));
    let none: Vec<(String, String)> = vec![("RelayState".into(), "x".into())];
    assert_eq!(consume(&config, &none, &expected(Some(REQUEST_ID))).unwrap_err().code, reason::RESPONSE_MISSING);
    let xml = test_idp::encode(&response(&Spec::default()));
    let twice = vec![("SAMLResponse".into(), xml.clone()), ("SAMLResponse".into(), xml)];
    assert_eq!(consume(&config, &twice, &expected(Some(REQUEST_ID))).unwrap_err().code, reason::RESPONSE_MISSING);
}

// ---- encryption ----------------------------------------------------------------------------

fn encrypted_response(key_transport: &str) -> String {
    let spec = Spec::default();
    let body = format!(
        concat!(
            r#"<saml:EncryptedAssertion><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" "#,
            r#"Type="http://www.w3.org/2001/04/xmlenc#Element">"#,
            r#"<xenc:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes128-gcm"/>"#,
            r#"<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptedKey>"#,
            r#"<xenc:EncryptionMethod Algorithm="{transport}"/>"#,
            "<xenc:CipherData><xenc:CipherValue>AAAA</xenc:CipherValue></xenc:CipherData>",
            "</xenc:EncryptedKey></ds:KeyInfo>",
            "<xenc:CipherData><xenc:CipherValue>AAAA</xenc:CipherValue></xenc:CipherData>",
            "</xenc:EncryptedData></saml:EncryptedAssertion>"
        ),
        transport = key_transport,
    );
    test_idp::response_with(&spec, &body, idp())
}

#[test]
fn encrypted_assertions_need_an_sp_key_and_refuse_rsa_1_5() {
    let xml = encrypted_response("http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p");
    assert_eq!(code(&xml), reason::ENCRYPTED_UNSUPPORTED);
    let sp = other();
    let config = config_with(json!({
        "sp_private_key": String::from_utf8(sp.key.private_key_to_pem_pkcs8().unwrap()).unwrap(),
        "sp_certificate": sp.cert_pem(),
    }));
    let xml = encrypted_response("http://www.w3.org/2001/04/xmlenc#rsa-1_5");
    assert_eq!(code_with(&config, &xml, Some(REQUEST_ID)), reason::KEY_TRANSPORT_FORBIDDEN);
    // Undecryptable content with an allowed transport.
    let xml = encrypted_response("http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p");
    assert_eq!(code_with(&config, &xml, Some(REQUEST_ID)), reason::ENCRYPTED_UNSUPPORTED);
}

fn encrypt_for_sp(assertion_xml: &str) -> String {
    use openssl::rand::rand_bytes;
    use openssl::rsa::Padding;
    use openssl::symm::{encrypt_aead, Cipher};
    let mut key = [0u8; 16];
    let mut iv = [0u8; 12];
    rand_bytes(&mut key).unwrap();
    rand_bytes(&mut iv).unwrap();
    let mut tag = [0u8; 16];
    let ciphertext = encrypt_aead(Cipher::aes_128_gcm(), &key, Some(&iv), &[], assertion_xml.as_bytes(), &mut tag).unwrap();
    let content = [iv.as_slice(), &ciphertext, &tag].concat();
    let rsa = other().cert.public_key().unwrap().rsa().unwrap();
    let mut wrapped = vec![0u8; rsa.size() as usize];
    let n = rsa.public_encrypt(&key, &mut wrapped, Padding::PKCS1_OAEP).unwrap();
    wrapped.truncate(n);
    let b64 = |bytes: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes);
    format!(
        concat!(
            r#"<saml:EncryptedAssertion><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" "#,
            r#"Type="http://www.w3.org/2001/04/xmlenc#Element">"#,
            r#"<xenc:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes128-gcm"/>"#,
            r#"<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptedKey>"#,
            r#"<xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"/>"#,
            "<xenc:CipherData><xenc:CipherValue>{key}</xenc:CipherValue></xenc:CipherData>",
            "</xenc:EncryptedKey></ds:KeyInfo>",
            "<xenc:CipherData><xenc:CipherValue>{content}</xenc:CipherValue></xenc:CipherData>",
            "</xenc:EncryptedData></saml:EncryptedAssertion>"
        ),
        key = b64(&wrapped),
        content = b64(&content),
    )
}

fn sp_key_config() -> Config {
    let (key, cert) = super::test_support::other_key_pair();
    config_with(json!({ "sp_private_key": key, "sp_certificate": cert }))
}

#[test]
fn an_encrypted_signed_assertion_is_decrypted_and_verified() {
    let config = sp_key_config();
    // Only the decrypted assertion is signed.
    let spec = assertion_signed();
    let body = encrypt_for_sp(&test_idp::assertion(&spec, idp()));
    let xml = test_idp::response_with(&spec, &body, idp());
    let identity = run_with(&config, &xml, Some(REQUEST_ID)).expect("encrypted assertion accepted");
    assert_eq!(identity.subject, "ada@example.com");
    // The Response signed over an encrypted, unsigned assertion.
    let spec = Spec::default();
    let body = encrypt_for_sp(&test_idp::assertion(&spec, idp()));
    let xml = test_idp::response_with(&spec, &body, idp());
    run_with(&config, &xml, Some(REQUEST_ID)).expect("signed Response over an encrypted assertion");
    // Nothing signed at all.
    let spec = Spec {
        sign_response: false,
        ..Spec::default()
    };
    let body = encrypt_for_sp(&test_idp::assertion(&spec, idp()));
    let xml = test_idp::response_with(&spec, &body, idp());
    assert_eq!(code_with(&config, &xml, Some(REQUEST_ID)), reason::SIGNATURE_MISSING);
    // A decrypted assertion signed by an unknown key.
    let spec = assertion_signed();
    let body = encrypt_for_sp(&test_idp::assertion(&spec, other()));
    let xml = test_idp::response_with(&spec, &body, idp());
    assert_eq!(code_with(&config, &xml, Some(REQUEST_ID)), reason::SIGNATURE_INVALID);
}

// ---- diagnostics ---------------------------------------------------------------------------

fn refusal(xml: &str) -> gatehouse_plugin_sdk::PluginError {
    run_with(&config_with(json!({})), xml, Some(REQUEST_ID)).unwrap_err()
}

#[test]
fn a_wrong_audience_yields_redacted_diagnostics_for_the_administrator() {
    let spec = Spec {
        audience: Some("https://other-sp.test".into()),
        sign_assertion: true,
        ..Spec::default()
    };
    let xml = response(&spec);
    let error = refusal(&xml);
    assert_eq!(error.code, reason::AUDIENCE_MISMATCH);
    let diagnostics = error.diagnostics.expect("diagnostics attached");

    // The failed check, with what was found and what was expected.
    assert!(diagnostics.contains(&format!("the Audience was https://other-sp.test, expected {SP_ENTITY}")));
    assert!(diagnostics.contains(&format!("Audience: {SP_ENTITY}")));
    // The decoded answer, with its structure visible.
    assert!(diagnostics.contains("<saml:Audience>https://other-sp.test</saml:Audience>"));
    assert!(diagnostics.contains(&format!("<saml:Issuer>{IDP_ENTITY}</saml:Issuer>")));
    // Signature values and digests are redacted; none of the real ones appears.
    assert!(diagnostics.contains("<ds:SignatureValue>[redacted]</ds:SignatureValue>"));
    assert!(diagnostics.contains("<ds:DigestValue>[redacted]</ds:DigestValue>"));
    let document = roxmltree::Document::parse(&xml).unwrap();
    for value in document
        .descendants()
        .filter(|n| matches!(n.tag_name().name(), "SignatureValue" | "DigestValue"))
        .filter_map(|n| n.text())
    {
        let compact: String = value.split_whitespace().collect();
        assert!(!diagnostics.contains(&compact[..16]), "a signature or digest value leaked");
    }
    // The NameID and attribute values are masked; email domains stay.
    assert!(diagnostics.contains("a***@example.com"));
    assert!(!diagnostics.contains("ada@example.com"));
    assert!(!diagnostics.contains("ada.attr"));
    assert!(!diagnostics.contains("Ada Lovelace"));
    assert!(diagnostics.contains("<saml:AttributeValue>A***</saml:AttributeValue>"));
    // Never the posted base64.
    assert!(!diagnostics.contains(&test_idp::encode(&xml)[..40]));
    assert!(diagnostics.len() <= super::diagnostics::MAX_BYTES);
}

#[test]
fn diagnostics_cover_every_refusal_after_decoding_and_none_before() {
    // Before decoding there is nothing to show.
    let config = config_with(json!({}));
    let params = vec![("SAMLResponse".to_owned(), "%%%not base64%%%".to_owned())];
    let error = consume(&config, &params, &expected(Some(REQUEST_ID))).unwrap_err();
    assert!(error.diagnostics.is_none());
    // A DTD or malformed XML: the check, but no body that could not be redacted.
    let error = refusal(r#"<!DOCTYPE r [<!ENTITY x "ada@example.com">]><r>&x;</r>"#);
    let diagnostics = error.diagnostics.unwrap();
    assert!(diagnostics.contains("saml_dtd_forbidden"));
    assert!(!diagnostics.contains("ada@example.com"));
    let error = refusal("<r>ada@example.com");
    let diagnostics = error.diagnostics.unwrap();
    assert!(diagnostics.contains("not shown"));
    assert!(!diagnostics.contains("ada@example.com"));
    // Signature and encryption refusals carry them too.
    let xml = response(&Spec::default()).replace("ada@example.com", "eve@example.com");
    let diagnostics = refusal(&xml).diagnostics.unwrap();
    assert!(diagnostics.contains("saml_signature_invalid"));
    assert!(diagnostics.contains("e***@example.com"));
    let xml = encrypted_response("http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p");
    let diagnostics = refusal(&xml).diagnostics.unwrap();
    assert!(diagnostics.contains("<xenc:CipherValue>[redacted]</xenc:CipherValue>"));
}

#[test]
fn a_comment_in_the_name_id_is_noted_without_revealing_it() {
    let spec = Spec {
        name_id: "user@good.test<!---->.evil.test".into(),
        audience: Some("https://other-sp.test".into()),
        ..Spec::default()
    };
    // Refused either by the signature check or by the audience; both carry diagnostics.
    let diagnostics = refusal(&response(&spec)).diagnostics.unwrap();
    assert!(diagnostics.contains("u***@good.test.evil.test<!-- the value contained 1 comment(s) -->"));
    assert!(!diagnostics.contains("user@"));
}

#[test]
fn large_answers_are_cut_to_the_limit() {
    let padding = format!("<samlp:Extensions>{}</samlp:Extensions>", "<x:y xmlns:x=\"urn:x\">padding</x:y>".repeat(2000));
    let xml = response(&Spec::default()).replacen("<samlp:Status>", &format!("{padding}<samlp:Status>"), 1);
    let diagnostics = refusal(&xml).diagnostics.unwrap();
    assert!(diagnostics.len() <= super::diagnostics::MAX_BYTES);
    assert!(diagnostics.ends_with("[truncated]\n"));
}

#[test]
fn a_refusal_without_an_assertion_is_reported_as_the_status() {
    // What IdPs send when they deny a user: a non-Success status and no assertion at all.
    let xml = format!(
        r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_denied" Version="2.0" IssueInstant="2030-01-01T00:00:00Z" Destination="{ACS}" InResponseTo="{REQUEST_ID}"><saml:Issuer>{IDP_ENTITY}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Responder"><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:RequestDenied"/></samlp:StatusCode><samlp:StatusMessage>user carol@good.test is not assigned</samlp:StatusMessage></samlp:Status></samlp:Response>"#
    );
    assert_eq!(code(&xml), reason::STATUS_NOT_SUCCESS);
}

#[test]
fn a_deflate_bomb_is_never_inflated() {
    // The HTTP-POST binding carries plain base64 XML (Bindings §3.5.4): the ACS never
    // inflates, so a compressed payload of any ratio is just bytes that are not XML.
    use std::io::Write;
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![b'<'; 16 * 1024 * 1024];
    encoder.write_all(&zeros).unwrap();
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 64 * 1024, "the bomb is small: {}", bomb.len());
    let config = config_with(json!({}));
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bomb);
    let params = vec![("SAMLResponse".to_owned(), encoded)];
    let error = consume(&config, &params, &expected(Some(REQUEST_ID))).unwrap_err();
    assert_eq!(error.code, reason::MALFORMED);
}
