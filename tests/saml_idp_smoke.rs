//! The SAML IdP of the tests (tests/saml-idp, saml-idp on Node) on its own, without Gatehouse:
//! metadata, an SP-initiated AuthnRequest over HTTP-Redirect, the signed answer (checked with
//! `xmlsec1` when it is installed), Assertion-only signing, and concurrent sign-ins keeping
//! their own audience.

mod common;

use std::process::{Command, Stdio};

use common::saml::*;
use common::*;

/// A minimal AuthnRequest as an SP would send it.
fn authn_request(id: &str, sp_entity_id: &str, acs_url: &str, destination: &str) -> String {
    format!(
        concat!(
            r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" "#,
            r#"xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" "#,
            r#"IssueInstant="2026-01-01T00:00:00Z" Destination="{destination}" "#,
            r#"AssertionConsumerServiceURL="{acs}" "#,
            r#"ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">"#,
            r#"<saml:Issuer>{issuer}</saml:Issuer></samlp:AuthnRequest>"#
        ),
        id = id,
        destination = destination,
        acs = acs_url,
        issuer = sp_entity_id
    )
}

fn redirect_url(idp: &SamlIdp, xml: &str, relay_state: &str) -> String {
    let mut url = url::Url::parse(idp.sso_url()).expect("sso_url");
    url.query_pairs_mut()
        .append_pair("SAMLRequest", &redirect_binding_value(xml))
        .append_pair("RelayState", relay_state);
    url.to_string()
}

struct Sp {
    entity_id: String,
    acs_url: String,
    request_id: String,
    relay_state: String,
}

fn sp() -> Sp {
    let slug = unique("sp-");
    Sp {
        entity_id: format!("http://127.0.0.1:9/{slug}/sso/s1/metadata"),
        acs_url: format!("http://127.0.0.1:9/{slug}/sso/s1/acs"),
        request_id: format!("_{}", uuid::Uuid::new_v4().simple()),
        relay_state: unique("rs-"),
    }
}

async fn sign_in(
    idp: &SamlIdp,
    sp: &Sp,
    profile: &SamlProfile,
    options: &SignInOptions,
) -> SamlPost {
    let xml = authn_request(&sp.request_id, &sp.entity_id, &sp.acs_url, idp.sso_url());
    let url = redirect_url(idp, &xml, &sp.relay_state);
    idp.sign_in_with(&browser(), &url, profile, options)
        .await
}

/// `xmlsec1 --verify` of the signature over the element with this ID attribute's type.
fn xmlsec_verify(cert_pem: &str, xml: &str, id_attr: &str) -> Option<Result<(), String>> {
    if Command::new("xmlsec1")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!("xmlsec1 is not installed: signatures not checked independently");
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("cert.pem");
    let file = dir.path().join("message.xml");
    std::fs::write(&cert, cert_pem).expect("write cert");
    std::fs::write(&file, xml).expect("write xml");
    let output = Command::new("xmlsec1")
        .arg("--verify")
        .arg("--pubkey-cert-pem")
        .arg(&cert)
        .arg("--id-attr:ID")
        .arg(id_attr)
        .arg(&file)
        .output()
        .expect("run xmlsec1");
    Some(if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    })
}

#[tokio::test]
async fn metadata_has_the_certificate_and_endpoints() {
    let idp = SamlIdp::shared().await;
    let xml = idp.metadata_xml().await;
    assert_eq!(
        xml_attribute(&xml, "EntityDescriptor", "entityID").as_deref(),
        Some(idp.entity_id()),
        "{xml}"
    );
    let locations: Vec<String> = xml_tags(&xml, "SingleSignOnService")
        .into_iter()
        .filter_map(|attrs| {
            attrs
                .into_iter()
                .find(|(k, _)| k == "Location")
                .map(|(_, v)| v)
        })
        .collect();
    assert_eq!(locations.len(), 2, "two SSO bindings: {xml}");
    assert!(
        locations
            .iter()
            .all(|l| l == idp.sso_url()),
        "SSO endpoints {locations:?} should be {}: {xml}",
        idp.sso_url()
    );
    let body: String = idp
        .certificate_pem()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let in_metadata: String = xml_text(&xml, "X509Certificate")
        .expect("X509Certificate")
        .split_whitespace()
        .collect();
    assert_eq!(in_metadata, body, "the metadata's certificate: {xml}");
}

#[tokio::test]
async fn sp_initiated_login_is_answered_for_the_request() {
    let idp = SamlIdp::shared().await;
    let sp = sp();
    let email = format!("{}@good.test", unique("alice-"));
    let profile = SamlProfile::new(&email, "Alice", "Example");
    let post = sign_in(idp, &sp, &profile, &SignInOptions::default()).await;

    // The IdP read the AuthnRequest from the HTTP-Redirect binding.
    assert_eq!(
        post.request.id.as_deref(),
        Some(sp.request_id.as_str()),
        "{:?}",
        post.request
    );
    assert_eq!(
        post.request.issuer.as_deref(),
        Some(sp.entity_id.as_str()),
        "{:?}",
        post.request
    );
    assert_eq!(
        post.request.acs_url.as_deref(),
        Some(sp.acs_url.as_str()),
        "{:?}",
        post.request
    );

    // The auto-post page posts to the request's ACS URL with the RelayState.
    assert_eq!(post.acs_url, sp.acs_url, "{}", post.page.describe());
    assert_eq!(
        post.relay_state(),
        Some(sp.relay_state.as_str()),
        "{}",
        post.page.describe()
    );

    let xml = post.response_xml();
    assert_eq!(
        xml_attribute(&xml, "Response", "InResponseTo").as_deref(),
        Some(sp.request_id.as_str()),
        "{xml}"
    );
    assert_eq!(
        xml_attribute(&xml, "Response", "Destination").as_deref(),
        Some(sp.acs_url.as_str()),
        "{xml}"
    );
    assert_eq!(
        xml_text(&xml, "Issuer").as_deref(),
        Some(idp.entity_id()),
        "{xml}"
    );
    assert_eq!(
        xml_text(&xml, "NameID").as_deref(),
        Some(email.as_str()),
        "{xml}"
    );
    assert_eq!(
        xml_attribute(&xml, "NameID", "Format").as_deref(),
        Some(NAMEID_EMAIL),
        "{xml}"
    );
    assert_eq!(
        xml_text(&xml, "Audience").as_deref(),
        Some(sp.entity_id.as_str()),
        "{xml}"
    );
    assert_eq!(
        xml_attribute(&xml, "SubjectConfirmationData", "Recipient").as_deref(),
        Some(sp.acs_url.as_str()),
        "{xml}"
    );
    assert_eq!(
        xml_attribute(&xml, "SubjectConfirmationData", "InResponseTo").as_deref(),
        Some(sp.request_id.as_str()),
        "{xml}"
    );
    for (name, value) in [
        ("email", email.as_str()),
        ("firstName", "Alice"),
        ("lastName", "Example"),
        ("displayName", "Alice Example"),
    ] {
        assert!(
            xml.contains(&format!(r#"<saml:Attribute Name="{name}""#))
                && xml.contains(&format!(">{value}<")),
            "attribute {name}={value} missing: {xml}"
        );
    }
    assert_eq!(
        xml.matches("<Signature ").count(),
        2,
        "the Response and the Assertion are signed: {xml}"
    );
    assert!(
        xml.contains("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"),
        "{xml}"
    );
    assert!(
        xml.contains("http://www.w3.org/2001/04/xmlenc#sha256"),
        "{xml}"
    );
    assert!(
        xml.contains("http://www.w3.org/2001/10/xml-exc-c14n#"),
        "{xml}"
    );

    if let Some(result) = xmlsec_verify(
        idp.certificate_pem(),
        &xml,
        "urn:oasis:names:tc:SAML:2.0:protocol:Response",
    ) {
        result.unwrap_or_else(|e| panic!("xmlsec1 rejects the Response signature: {e}\n{xml}"));
    }
    // The same check with an unrelated certificate fails (the check is meaningful).
    let other = unrelated_certificate();
    if let Some(result) = xmlsec_verify(
        &other.cert_pem,
        &xml,
        "urn:oasis:names:tc:SAML:2.0:protocol:Response",
    ) {
        assert!(
            result.is_err(),
            "xmlsec1 accepted the signature with an unrelated certificate"
        );
    }
    // And a tampered NameID breaks it.
    let (start, end) = xml_text_range(&xml, "NameID").expect("NameID");
    let tampered = format!("{}x{}", &xml[..start], &xml[start + 1..]);
    assert_ne!(&tampered[start..end], &xml[start..end]);
    if let Some(result) = xmlsec_verify(
        idp.certificate_pem(),
        &tampered,
        "urn:oasis:names:tc:SAML:2.0:protocol:Response",
    ) {
        assert!(result.is_err(), "xmlsec1 accepted a tampered response");
    }
}

#[tokio::test]
async fn assertion_only_signing() {
    let idp = SamlIdp::shared().await;
    let sp = sp();
    let profile = SamlProfile::new(&format!("{}@good.test", unique("b-")), "Bob", "Example");
    let post = sign_in(
        idp,
        &sp,
        &profile,
        &SignInOptions {
            assertion_only: true,
            ..SignInOptions::default()
        },
    )
    .await;
    let xml = post.response_xml();
    assert_eq!(
        xml.matches("<Signature ").count(),
        1,
        "only the Assertion is signed: {xml}"
    );
    let assertion_start = xml
        .find("<saml:Assertion")
        .expect("Assertion");
    assert!(
        xml.find("<Signature ")
            .expect("Signature")
            > assertion_start,
        "{xml}"
    );
    if let Some(result) = xmlsec_verify(
        idp.certificate_pem(),
        &xml,
        "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
    ) {
        result.unwrap_or_else(|e| panic!("xmlsec1 rejects the Assertion signature: {e}\n{xml}"));
    }
    // The next default sign-in signs the Response again.
    let post = sign_in(idp, &self::sp(), &profile, &SignInOptions::default()).await;
    assert_eq!(
        post.response_xml()
            .matches("<Signature ")
            .count(),
        2
    );
}

#[tokio::test]
async fn concurrent_sign_ins_keep_their_own_audience_and_profile() {
    let idp = SamlIdp::shared().await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        tasks.push(tokio::spawn(async move {
            let sp = sp();
            let email = format!("{}@good.test", unique(&format!("c{i}-")));
            let profile = SamlProfile::new(&email, &format!("First{i}"), "Last");
            let post = sign_in(idp, &sp, &profile, &SignInOptions::default()).await;
            (sp, email, post)
        }));
    }
    for task in tasks {
        let (sp, email, post) = task.await.expect("sign-in task");
        let xml = post.response_xml();
        assert_eq!(
            xml_text(&xml, "Audience").as_deref(),
            Some(sp.entity_id.as_str()),
            "{xml}"
        );
        assert_eq!(
            xml_text(&xml, "NameID").as_deref(),
            Some(email.as_str()),
            "{xml}"
        );
        assert_eq!(post.acs_url, sp.acs_url);
        assert_eq!(post.relay_state(), Some(sp.relay_state.as_str()));
    }
}

#[test]
fn form_reader_handles_the_known_markup() {
    let html = r#"<form method="post" name="hiddenform" action="http://x.test/a?b=1&amp;c=2">
        <input type="hidden"
               name="SAMLResponse"
               value="PHNhbWw&#x2B;&#x3D;&#x3D;">
        <input type="hidden" name="RelayState" value="">
        <input name='_authnRequest' type='hidden' value='eyJ9&#x3D;'>
        <select name="fmt"><option>first</option><option selected="selected">second</option></select>
        <input type="checkbox" name="off"><input type="radio" name="on" value="v" checked>
        <noscript><input type="submit" value="Submit"></noscript></form>"#;
    let forms = parse_forms(html);
    assert_eq!(forms.len(), 1);
    assert_eq!(forms[0].action, "http://x.test/a?b=1&c=2");
    assert_eq!(forms[0].method, "post");
    assert_eq!(
        forms[0].fields,
        vec![
            ("SAMLResponse".to_string(), "PHNhbWw+==".to_string()),
            ("RelayState".to_string(), String::new()),
            ("_authnRequest".to_string(), "eyJ9=".to_string()),
            ("fmt".to_string(), "second".to_string()),
            ("on".to_string(), "v".to_string()),
        ]
    );
    let stored = deflate_stored(b"hello");
    assert_eq!(
        stored,
        vec![1, 5, 0, 0xfa, 0xff, b'h', b'e', b'l', b'l', b'o']
    );
}
