//! Metadata read from a URL: the request sent to the host, failures, and certificate rollover
//! through the login entry points, with an in-memory metadata server in place of the host.

use std::cell::RefCell;
use std::collections::VecDeque;

use gatehouse_plugin_sdk::{
    reason as sdk_reason, BeginLoginRequest, CachePolicy, FinishLoginRequest, HttpError,
    HttpErrorKind, HttpRequest, HttpResponse,
};
use serde_json::{json, Value};

use crate::acs::test_idp::{self, idp, other, Idp, Spec, ACS, REQUEST_ID, SP_ENTITY};
use crate::config::Config;
use crate::http::Fetch;
use crate::reason;

const METADATA_URL: &str = "https://idp.example.test/saml/metadata?tenant=7";
/// The entity ID the metadata announces (not the one the test IdP's answers name by default).
const ENTITY: &str = "https://idp.example.test/metadata";
const SSO: &str = "https://idp.example.test/sso/redirect";

/// Answers each request with the next queued answer and records what was asked.
struct MetadataServer {
    answers: RefCell<VecDeque<Result<HttpResponse, HttpError>>>,
    requests: RefCell<Vec<HttpRequest>>,
}

impl MetadataServer {
    fn new(answers: Vec<Result<HttpResponse, HttpError>>) -> Self {
        MetadataServer {
            answers: RefCell::new(answers.into()),
            requests: RefCell::new(Vec::new()),
        }
    }

    fn cache_policies(&self) -> Vec<CachePolicy> {
        self.requests
            .borrow()
            .iter()
            .map(|r| r.cache.clone().expect("metadata requests are cached"))
            .collect()
    }
}

impl Fetch for MetadataServer {
    fn fetch(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        self.requests.borrow_mut().push(request.clone());
        self.answers
            .borrow_mut()
            .pop_front()
            .expect("no more requests expected")
    }
}

fn document(signers: &[&Idp]) -> String {
    let keys: String = signers
        .iter()
        .map(|signer| {
            format!(
                concat!(
                    r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>"#,
                    "<ds:X509Certificate>{}</ds:X509Certificate>",
                    "</ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
                ),
                signer.cert_b64()
            )
        })
        .collect();
    format!(
        concat!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" "#,
            r#"xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity}">"#,
            r#"<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">"#,
            "{keys}",
            r#"<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{sso}"/>"#,
            "</md:IDPSSODescriptor></md:EntityDescriptor>"
        ),
        entity = ENTITY,
        keys = keys,
        sso = SSO,
    )
}

fn ok(body: &str) -> Result<HttpResponse, HttpError> {
    Ok(HttpResponse {
        status: 200,
        headers: vec![("content-type".into(), "application/samlmetadata+xml".into())],
        body: body.as_bytes().to_vec(),
    })
}

fn failed(kind: HttpErrorKind) -> Result<HttpResponse, HttpError> {
    Err(HttpError {
        kind,
        detail: "refused by the test host".into(),
    })
}

fn stored_config() -> Value {
    let admin = json!({ "idp_metadata_url": METADATA_URL, "allowed_domains": ["example.com"] });
    Config::parse(&admin).unwrap().to_value()
}

fn begin_request() -> BeginLoginRequest {
    BeginLoginRequest {
        tenant: "acme".into(),
        connection_id: "conn1".into(),
        config: stored_config(),
        redirect_uri: ACS.into(),
        state: "opaque-ref".into(),
        nonce: String::new(),
        pkce_verifier: String::new(),
        request_id: REQUEST_ID.into(),
        sp_entity_id: SP_ENTITY.into(),
    }
}

/// A login answer valid now (the entry points read the clock), signed by `signer`.
fn finish_request(signer: &Idp) -> FinishLoginRequest {
    let now = chrono::Utc::now().timestamp();
    let spec = Spec {
        issue_instant: now - 5,
        not_before: now - 60,
        not_on_or_after: now + 300,
        scd_not_on_or_after: now + 300,
        ..Spec::default()
    };
    let xml = test_idp::response_with(&spec, &test_idp::assertion(&spec, signer), signer);
    FinishLoginRequest {
        tenant: "acme".into(),
        connection_id: "conn1".into(),
        config: stored_config(),
        redirect_uri: ACS.into(),
        state: "opaque-ref".into(),
        nonce: String::new(),
        pkce_verifier: String::new(),
        params: vec![("SAMLResponse".into(), test_idp::encode(&xml))],
        request_id: Some(REQUEST_ID.into()),
        sp_entity_id: SP_ENTITY.into(),
    }
}

fn cached() -> CachePolicy {
    CachePolicy {
        max_age_secs: 3600,
        refresh: false,
        min_refresh_secs: 0,
        scope: "saml-metadata".into(),
    }
}

fn refreshed() -> CachePolicy {
    CachePolicy {
        max_age_secs: 3600,
        refresh: true,
        min_refresh_secs: 300,
        scope: "saml-metadata".into(),
    }
}

#[test]
fn the_url_is_stored_alone_and_must_be_a_plain_web_url() {
    let stored = stored_config();
    assert_eq!(
        stored.as_object().unwrap().keys().filter(|k| k.starts_with("idp") || *k == "sso_url" || *k == "certificates").collect::<Vec<_>>(),
        ["idp_metadata_url"]
    );
    assert_eq!(Config::parse(&stored).unwrap().to_value(), stored);
    // Plain http passes the plugin; the host's network policy refuses it outside local testing.
    for bad in [
        "https://admin:pw@idp.example.test/metadata",
        "https://idp.example.test/metadata#keys",
        "ftp://idp.example.test/metadata",
        " https://idp.example.test/metadata",
        "metadata.xml",
    ] {
        let value = json!({ "idp_metadata_url": bad, "allowed_domains": ["example.com"] });
        let error = Config::parse(&value).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("/idp_metadata_url"), "{bad}");
    }
}

#[test]
fn the_url_is_exclusive_with_the_other_ways() {
    let with_xml = json!({
        "idp_metadata_url": METADATA_URL,
        "idp_metadata_xml": document(&[idp()]),
        "allowed_domains": ["example.com"],
    });
    let with_fields = json!({
        "idp_metadata_url": METADATA_URL,
        "certificates": [idp().cert_b64()],
        "allowed_domains": ["example.com"],
    });
    for value in [with_xml, with_fields] {
        let error = Config::parse(&value).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("/idp_metadata_url"));
    }
}

#[test]
fn begin_login_reads_the_metadata_through_the_host_cache() {
    let server = MetadataServer::new(vec![ok(&document(&[idp()]))]);
    let response = crate::authn_request::begin_login(&server, begin_request()).unwrap();
    assert!(response.redirect_url.starts_with(&format!("{SSO}?SAMLRequest=")));

    let requests = server.requests.borrow();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "GET");
    assert_eq!(request.url, METADATA_URL);
    assert_eq!(
        request.headers,
        [("accept".to_owned(), "application/samlmetadata+xml, application/xml".to_owned())]
    );
    assert!(request.body.is_empty());
    assert_eq!(request.cache, Some(cached()));
}

#[test]
fn finish_login_trusts_the_metadata_and_names_its_entity_as_issuer() {
    let server = MetadataServer::new(vec![ok(&document(&[idp()]))]);
    let identity = crate::acs::finish_login(&server, finish_request(idp())).unwrap();
    assert_eq!(identity.issuer, ENTITY);
    assert_eq!(identity.subject, "ada@example.com");
    assert_eq!(server.cache_policies(), [cached()]);
}

#[test]
fn a_rolled_over_key_is_found_by_one_forced_refresh() {
    // The cached copy lists the old key; the IdP now signs with the new one.
    let server = MetadataServer::new(vec![
        ok(&document(&[idp()])),
        ok(&document(&[idp(), other()])),
    ]);
    let identity = crate::acs::finish_login(&server, finish_request(other())).unwrap();
    assert_eq!(identity.issuer, ENTITY);
    assert_eq!(server.cache_policies(), [cached(), refreshed()]);
}

#[test]
fn an_unknown_key_is_refused_after_one_refresh() {
    // The refresh brings nothing new (or the host served its copy again within 5 minutes).
    let server = MetadataServer::new(vec![ok(&document(&[idp()])), ok(&document(&[idp()]))]);
    let error = crate::acs::finish_login(&server, finish_request(other())).unwrap_err();
    assert_eq!(error.code, reason::SIGNATURE_INVALID);
    assert_eq!(server.cache_policies(), [cached(), refreshed()]);
    // A refresh that fails keeps the signature refusal and says why.
    let server = MetadataServer::new(vec![ok(&document(&[idp()])), failed(HttpErrorKind::Timeout)]);
    let error = crate::acs::finish_login(&server, finish_request(other())).unwrap_err();
    assert_eq!(error.code, reason::SIGNATURE_INVALID);
    assert!(error.detail.contains("re-reading the IdP metadata failed"));
    // Other refusals never trigger a refresh.
    let server = MetadataServer::new(vec![ok(&document(&[idp()]))]);
    let mut request = finish_request(idp());
    request.sp_entity_id = "https://gatehouse.test/other/sso/conn9".into();
    let error = crate::acs::finish_login(&server, request).unwrap_err();
    assert_eq!(error.code, reason::AUDIENCE_MISMATCH);
    assert_eq!(server.cache_policies(), [cached()]);
}

#[test]
fn transport_failures_and_bad_documents_have_their_own_codes() {
    let cases = vec![
        (failed(HttpErrorKind::Blocked), sdk_reason::DESTINATION_BLOCKED),
        (failed(HttpErrorKind::Connect), sdk_reason::IDP_UNREACHABLE),
        (failed(HttpErrorKind::Timeout), sdk_reason::IDP_UNREACHABLE),
        (failed(HttpErrorKind::TooLarge), sdk_reason::IDP_UNREACHABLE),
        (
            Ok(HttpResponse {
                status: 503,
                headers: vec![],
                body: vec![],
            }),
            sdk_reason::IDP_UNREACHABLE,
        ),
        (ok("<html>maintenance</html>"), reason::METADATA_INVALID),
        (ok(&format!("<!DOCTYPE x>{}", document(&[idp()]))), reason::METADATA_INVALID),
        (ok(&document(&[])), reason::METADATA_INVALID),
        (ok(&document(&[idp()]).replace(SSO, "javascript:alert(1)")), reason::METADATA_INVALID),
        (ok(&document(&[idp()]).replace(&idp().cert_b64(), "bm90IGEgY2VydA==")), reason::METADATA_INVALID),
        (
            Ok(HttpResponse {
                status: 200,
                headers: vec![],
                body: vec![0xff, 0xfe],
            }),
            reason::METADATA_INVALID,
        ),
    ];
    for (answer, code) in cases {
        let server = MetadataServer::new(vec![answer.clone()]);
        let error = crate::authn_request::begin_login(&server, begin_request()).unwrap_err();
        assert_eq!(error.code, code);
        let server = MetadataServer::new(vec![answer]);
        let error = crate::acs::finish_login(&server, finish_request(idp())).unwrap_err();
        assert_eq!(error.code, code);
    }
}

#[test]
fn the_protocol_entry_points_use_the_host() {
    use gatehouse_plugin_sdk::{Host, Protocol};
    // The offline host has no network: the metadata cannot be read.
    let error = crate::Saml.begin_login(&Host::offline(), begin_request()).unwrap_err();
    assert_eq!(error.code, sdk_reason::IDP_UNREACHABLE);
    let error = crate::Saml
        .finish_login(&Host::offline(), finish_request(idp()))
        .unwrap_err();
    assert_eq!(error.code, sdk_reason::IDP_UNREACHABLE);
}

#[test]
fn fixed_configs_make_no_request() {
    let server = MetadataServer::new(vec![]);
    let mut request = begin_request();
    request.config = json!({
        "idp_entity_id": ENTITY,
        "sso_url": SSO,
        "certificates": [idp().cert_b64()],
        "allowed_domains": ["example.com"],
    });
    crate::authn_request::begin_login(&server, request).unwrap();
    assert!(server.requests.borrow().is_empty());
}

fn certificate_expiring_in(days: u32) -> String {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::{X509NameBuilder, X509};

    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "ending.example.test").unwrap();
    let name = name.build();
    let mut builder = X509::builder().unwrap();
    builder.set_version(2).unwrap();
    builder.set_serial_number(&BigNum::from_u32(3).unwrap().to_asn1_integer().unwrap()).unwrap();
    builder.set_subject_name(&name).unwrap();
    builder.set_issuer_name(&name).unwrap();
    builder.set_pubkey(&key).unwrap();
    builder.set_not_before(&Asn1Time::from_unix(0).unwrap()).unwrap();
    builder.set_not_after(&Asn1Time::days_from_now(days).unwrap()).unwrap();
    builder.sign(&key, MessageDigest::sha256()).unwrap();
    openssl::base64::encode_block(&builder.build().to_der().unwrap())
}

#[test]
fn inspection_warns_about_remote_certificates_nearing_their_end() {
    let with_soon = document(&[idp()]).replace(
        "</md:IDPSSODescriptor>",
        &format!(
            concat!(
                r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>"#,
                "<ds:X509Certificate>{}</ds:X509Certificate>",
                "</ds:X509Data></ds:KeyInfo></md:KeyDescriptor></md:IDPSSODescriptor>"
            ),
            certificate_expiring_in(10)
        ),
    );
    let server = MetadataServer::new(vec![ok(&with_soon)]);
    let report = crate::inspect(&server, &stored_config()).unwrap();
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(report.warnings[0].contains("CN=ending.example.test") || report.warnings[0].contains("ending.example.test"));

    let server = MetadataServer::new(vec![failed(HttpErrorKind::Timeout)]);
    let report = crate::inspect(&server, &stored_config()).unwrap();
    assert!(report.warnings[0].contains("idp_unreachable"), "{:?}", report.warnings);

    // Fixed certificates need no request: validation already covers them.
    let fixed = json!({
        "idp_entity_id": ENTITY, "sso_url": SSO, "certificates": [idp().cert_b64()],
        "allowed_domains": ["example.com"],
    });
    let server = MetadataServer::new(vec![]);
    assert!(crate::inspect(&server, &Config::parse(&fixed).unwrap().to_value()).unwrap().warnings.is_empty());
}
