//! Unit tests with an in-memory CAS server standing in for the host's HTTP client.

use std::cell::RefCell;

use gatehouse_plugin_sdk::{
    BeginLoginRequest, FinishLoginRequest, HttpError, HttpErrorKind, HttpRequest, HttpResponse,
    PluginError, Protocol, ValidateConfigRequest,
};
use serde_json::{json, Value};
use url::Url;

use crate::http::Fetch;
use crate::login::{begin_login, finish_login_with, service_url};
use crate::{Cas, CAS_RESPONSE_INVALID};

const SERVER: &str = "https://cas.example.edu/cas";
const CALLBACK: &str = "https://gh.example/acme/sso/c1/callback";
const STATE: &str = "st4te-value_1";

/// Answers every request with one canned response and records the requests.
struct FakeCas {
    answer: Result<HttpResponse, HttpError>,
    seen: RefCell<Vec<HttpRequest>>,
}

impl FakeCas {
    fn xml(body: &str) -> FakeCas {
        FakeCas::status(200, body)
    }

    fn status(status: u16, body: &str) -> FakeCas {
        FakeCas {
            answer: Ok(HttpResponse {
                status,
                headers: vec![("content-type".into(), "text/xml".into())],
                body: body.as_bytes().to_vec(),
            }),
            seen: RefCell::new(Vec::new()),
        }
    }

    fn failing(kind: HttpErrorKind) -> FakeCas {
        FakeCas {
            answer: Err(HttpError {
                kind,
                detail: "refused by the fake".into(),
            }),
            seen: RefCell::new(Vec::new()),
        }
    }
}

impl Fetch for FakeCas {
    fn fetch(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        self.seen.borrow_mut().push(request.clone());
        self.answer.clone()
    }
}

fn config() -> Value {
    json!({ "server_url": SERVER, "allowed_domains": ["good.test"] })
}

fn finish_request(config: Value, params: &[(&str, &str)]) -> FinishLoginRequest {
    FinishLoginRequest {
        tenant: "acme".into(),
        connection_id: "c1".into(),
        config,
        redirect_uri: CALLBACK.into(),
        state: STATE.into(),
        nonce: "n".into(),
        pkce_verifier: "v".into(),
        params: params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        request_id: None,
        sp_entity_id: String::new(),
    }
}

fn finish(fake: &FakeCas, params: &[(&str, &str)]) -> Result<gatehouse_plugin_sdk::ExternalIdentity, PluginError> {
    finish_login_with(fake, finish_request(config(), params))
}

const TICKET: &str = "ST-1-abcDEF123";

fn ok_params() -> Vec<(&'static str, &'static str)> {
    vec![("state", STATE), ("ticket", TICKET)]
}

fn success(attributes: &str) -> String {
    format!(
        r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
  <cas:authenticationSuccess>
    <cas:user>jdoe</cas:user>
    <cas:attributes>
      <cas:authenticationDate>2024-01-01T00:00:00Z</cas:authenticationDate>
      {attributes}
    </cas:attributes>
    <cas:attribute name="mail" value="ignored@evil.test"/>
  </cas:authenticationSuccess>
</cas:serviceResponse>"#
    )
}

fn validate(config: Value) -> Result<Value, PluginError> {
    Cas.validate_config(ValidateConfigRequest { config })
        .map(|validated| validated.config)
}

fn field_of(result: Result<Value, PluginError>) -> String {
    let error = result.expect_err("the config should be refused");
    assert_eq!(error.code, "invalid_config", "{error:?}");
    error.field.expect("a config error names the field")
}

// --- config ---

#[test]
fn config_defaults_are_written_out() {
    let stored = validate(json!({
        "server_url": "https://cas.example.edu/cas/",
        "allowed_domains": ["Good.TEST."]
    }))
    .unwrap();
    assert_eq!(
        stored,
        json!({
            "server_url": SERVER,
            "allowed_domains": ["good.test"],
            "email_attribute": "mail",
            "name_attribute": "displayName",
            "require_verified_email": false,
            "allow_subdomains": false,
        })
    );
    // Validating the stored config again changes nothing.
    assert_eq!(validate(stored.clone()).unwrap(), stored);
}

#[test]
fn config_errors_name_the_field() {
    let with = |key: &str, value: Value| {
        let mut config = config();
        config[key] = value;
        config
    };
    assert_eq!(field_of(validate(with("surprise", json!(1)))), "/surprise");
    assert_eq!(field_of(validate(json!({ "allowed_domains": ["good.test"] }))), "/server_url");
    for bad in [
        "ftp://cas.example.edu/cas",
        "https://user:pw@cas.example.edu/cas",
        "https://cas.example.edu/cas#frag",
        "https://cas.example.edu/cas?x=1",
        "cas.example.edu/cas",
        " https://cas.example.edu/cas",
    ] {
        assert_eq!(field_of(validate(with("server_url", json!(bad)))), "/server_url", "{bad}");
    }
    assert_eq!(field_of(validate(with("server_url", json!(7)))), "/server_url");
    assert_eq!(field_of(validate(json!({ "server_url": SERVER }))), "/allowed_domains");
    assert_eq!(field_of(validate(with("allowed_domains", json!([])))), "/allowed_domains");
    assert_eq!(
        field_of(validate(with("allowed_domains", json!(["good.test", "com"])))),
        "/allowed_domains/1"
    );
    assert_eq!(field_of(validate(with("email_attribute", json!("a b")))), "/email_attribute");
    assert_eq!(field_of(validate(with("name_attribute", json!("1x")))), "/name_attribute");
    assert_eq!(field_of(validate(with("name_attribute", json!(5)))), "/name_attribute");
    assert_eq!(
        field_of(validate(with("require_verified_email", json!("no")))),
        "/require_verified_email"
    );
    assert_eq!(field_of(validate(with("allow_subdomains", json!(1)))), "/allow_subdomains");
    assert_eq!(field_of(validate(json!([1]))), "");
}

#[test]
fn config_warnings() {
    let validated = Cas
        .validate_config(ValidateConfigRequest {
            config: json!({
                "server_url": "http://127.0.0.1:8000/cas",
                "allowed_domains": ["good.test"],
                "require_verified_email": true
            }),
        })
        .unwrap();
    assert_eq!(validated.warnings.len(), 2, "{:?}", validated.warnings);
    assert!(validated.setup.contains_key("service_url"));
}

// --- begin_login ---

#[test]
fn begin_login_redirects_to_cas_login_with_state_in_the_service() {
    let response = begin_login(BeginLoginRequest {
        tenant: "acme".into(),
        connection_id: "c1".into(),
        config: config(),
        redirect_uri: CALLBACK.into(),
        state: STATE.into(),
        nonce: "n".into(),
        pkce_verifier: "v".into(),
        request_id: String::new(),
        sp_entity_id: String::new(),
    })
    .unwrap();
    let url = Url::parse(&response.redirect_url).unwrap();
    assert!(response.redirect_url.starts_with(&format!("{SERVER}/login?service=")));
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(pairs.len(), 1);
    let service = &pairs[0].1;
    assert_eq!(service, &format!("{CALLBACK}?state={STATE}"));
    assert_eq!(service, &service_url(CALLBACK, STATE).unwrap());
}

#[test]
fn service_url_encodes_the_state() {
    assert_eq!(
        service_url(CALLBACK, "a b&c=d").unwrap(),
        format!("{CALLBACK}?state=a+b%26c%3Dd")
    );
    assert!(service_url(CALLBACK, "").is_err());
    assert!(service_url(&format!("{CALLBACK}?state=x"), "y").is_err());
}

// --- finish_login ---

#[test]
fn success_maps_user_and_default_attributes() {
    let fake = FakeCas::xml(&success(
        "<cas:mail>jdoe@good.test</cas:mail><cas:displayName>Jane Doe</cas:displayName>",
    ));
    let identity = finish(&fake, &ok_params()).unwrap();
    assert_eq!(identity.issuer, SERVER);
    assert_eq!(identity.subject, "jdoe");
    assert_eq!(identity.email.as_deref(), Some("jdoe@good.test"));
    assert_eq!(identity.name.as_deref(), Some("Jane Doe"));
    assert!(!identity.email_verified);

    // One uncached GET to /p3/serviceValidate with the same service URL and the ticket.
    let seen = fake.seen.borrow();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "GET");
    assert!(seen[0].cache.is_none());
    let url = Url::parse(&seen[0].url).unwrap();
    assert_eq!(url.path(), "/cas/p3/serviceValidate");
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(
        pairs,
        vec![
            ("service".to_owned(), service_url(CALLBACK, STATE).unwrap()),
            ("ticket".to_owned(), TICKET.to_owned()),
        ]
    );
}

#[test]
fn attribute_mapping_follows_the_config() {
    let fake = FakeCas::xml(&success(
        "<cas:mail>wrong@good.test</cas:mail><cas:email>jdoe@good.test</cas:email>\
         <cas:cn> Jane </cas:cn><cas:cn>Janet</cas:cn><other:mail xmlns:other=\"urn:x\">x@evil.test</other:mail>",
    ));
    let mut config = config();
    config["email_attribute"] = json!("email");
    config["name_attribute"] = json!("cn");
    let identity = finish_login_with(&fake, finish_request(config, &ok_params())).unwrap();
    assert_eq!(identity.email.as_deref(), Some("jdoe@good.test"));
    assert_eq!(identity.name.as_deref(), Some("Jane"));

    // Absent attributes give no email and no name (the host then refuses the login); the
    // legacy <cas:attribute name= value=> form outside cas:attributes is not read.
    let fake = FakeCas::xml(&success(""));
    let identity = finish(&fake, &ok_params()).unwrap();
    assert_eq!(identity.email, None);
    assert_eq!(identity.name, None);

    // Repeated equal values are one value; different ones are ambiguous.
    let fake = FakeCas::xml(&success("<cas:mail>a@good.test</cas:mail><cas:mail>a@good.test</cas:mail>"));
    assert_eq!(finish(&fake, &ok_params()).unwrap().email.as_deref(), Some("a@good.test"));
    let fake = FakeCas::xml(&success("<cas:mail>a@good.test</cas:mail><cas:mail>b@evil.test</cas:mail>"));
    assert_eq!(finish(&fake, &ok_params()).unwrap_err().code, CAS_RESPONSE_INVALID);
}

#[test]
fn authentication_failure_is_an_idp_error_with_the_code_only() {
    let fake = FakeCas::xml(
        r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
 <cas:authenticationFailure code="INVALID_TICKET">Ticket ST-1-abcDEF123 not recognized</cas:authenticationFailure>
</cas:serviceResponse>"#,
    );
    let error = finish(&fake, &ok_params()).unwrap_err();
    assert_eq!(error.code, "idp_error");
    assert!(error.detail.contains("INVALID_TICKET"), "{error:?}");
    assert!(!error.detail.contains("ST-1"), "the ticket must not leak: {error:?}");
    assert!(!error.detail.contains("recognized"), "{error:?}");
}

#[test]
fn malformed_answers_are_refused() {
    for body in [
        "not xml at all",
        "<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">",
        // Wrong namespace.
        "<cas:serviceResponse xmlns:cas=\"urn:evil\"><cas:authenticationSuccess><cas:user>x</cas:user></cas:authenticationSuccess></cas:serviceResponse>",
        // Neither success nor failure, or both.
        "<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\"/>",
        "<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\"><cas:authenticationSuccess><cas:user>x</cas:user></cas:authenticationSuccess><cas:authenticationFailure code=\"X\"/></cas:serviceResponse>",
        // No user, two users, an empty user.
        "<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\"><cas:authenticationSuccess/></cas:serviceResponse>",
        "<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\"><cas:authenticationSuccess><cas:user>a</cas:user><cas:user>b</cas:user></cas:authenticationSuccess></cas:serviceResponse>",
        "<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\"><cas:authenticationSuccess><cas:user>  </cas:user></cas:authenticationSuccess></cas:serviceResponse>",
    ] {
        let fake = FakeCas::xml(body);
        let error = finish(&fake, &ok_params()).unwrap_err();
        assert_eq!(error.code, CAS_RESPONSE_INVALID, "{body}: {error:?}");
    }
    let fake = FakeCas {
        answer: Ok(HttpResponse { status: 200, headers: vec![], body: vec![0xff, 0xfe, 0x00] }),
        seen: RefCell::new(Vec::new()),
    };
    assert_eq!(finish(&fake, &ok_params()).unwrap_err().code, CAS_RESPONSE_INVALID);
}

#[test]
fn a_dtd_is_refused_before_any_entity_is_expanded() {
    let body = r#"<?xml version="1.0"?>
<!DOCTYPE cas:serviceResponse [ <!ENTITY who "admin"> ]>
<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
  <cas:authenticationSuccess><cas:user>&who;</cas:user></cas:authenticationSuccess>
</cas:serviceResponse>"#;
    let error = finish(&FakeCas::xml(body), &ok_params()).unwrap_err();
    assert_eq!(error.code, CAS_RESPONSE_INVALID);
    assert!(error.detail.contains("DTD"), "{error:?}");
}

#[test]
fn a_missing_duplicate_or_odd_ticket_is_a_callback_error_without_a_request() {
    let fake = FakeCas::xml(&success(""));
    for params in [
        vec![("state", STATE)],
        vec![("state", STATE), ("ticket", TICKET), ("ticket", "ST-2-x")],
        vec![("state", STATE), ("ticket", "")],
        vec![("state", STATE), ("ticket", "PT-1-abc")],
        vec![("state", STATE), ("ticket", "ST-1 abc")],
    ] {
        let error = finish(&fake, &params).unwrap_err();
        assert_eq!(error.code, "callback_invalid", "{params:?}: {error:?}");
    }
    let long = format!("ST-{}", "a".repeat(300));
    assert_eq!(finish(&fake, &[("ticket", long.as_str())]).unwrap_err().code, "callback_invalid");
    assert!(fake.seen.borrow().is_empty(), "no ticket validation for a bad callback");
}

#[test]
fn transport_failures_have_their_own_codes() {
    let error = finish(&FakeCas::failing(HttpErrorKind::Blocked), &ok_params()).unwrap_err();
    assert_eq!(error.code, "destination_blocked");
    for kind in [HttpErrorKind::Connect, HttpErrorKind::Timeout, HttpErrorKind::TooLarge] {
        let error = finish(&FakeCas::failing(kind), &ok_params()).unwrap_err();
        assert_eq!(error.code, "idp_unreachable", "{kind:?}");
    }
    let error = finish(&FakeCas::status(500, "oops"), &ok_params()).unwrap_err();
    assert_eq!(error.code, "idp_unreachable");
    assert!(error.detail.contains("500"));
}

#[test]
fn a_stored_config_that_no_longer_validates_is_refused() {
    let fake = FakeCas::xml(&success(""));
    let request = finish_request(json!({ "server_url": SERVER }), &ok_params());
    let error = finish_login_with(&fake, request).unwrap_err();
    assert_eq!(error.code, "invalid_config");
    assert!(fake.seen.borrow().is_empty());
}

#[test]
fn describe_says_cas_with_a_query_callback() {
    let info = Cas.describe();
    assert_eq!(info.protocol, "cas");
    assert_eq!(info.callback, gatehouse_plugin_sdk::CallbackBinding::Query);
    assert!(info.secret_fields.is_empty());
}
