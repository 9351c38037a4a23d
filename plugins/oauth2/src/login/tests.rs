//! The whole login flow against an in-memory provider.

use std::cell::RefCell;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use gatehouse_plugin_sdk::{
    reason, BeginLoginRequest, ExternalIdentity, FinishLoginRequest, HttpError, HttpErrorKind,
    HttpRequest, HttpResponse, PluginError,
};
use serde_json::{json, Value};
use url::Url;

use super::{begin_login, finish_login};
use crate::http::Fetch;

const AUTHORIZE: &str = "https://idp.example/dialog/oauth";
const TOKEN: &str = "https://graph.idp.example/oauth/access_token";
const USERINFO: &str = "https://graph.idp.example/me?fields=id,name,email";
const CLIENT_ID: &str = "gatehouse-client";
const CLIENT_SECRET: &str = "client-secret-value";
const STATE: &str = "state-value-from-host-0123456789";
const VERIFIER: &str = "pkce-verifier-from-host-0123456789-abcdefghijklmnop";
const CODE: &str = "authorization-code-0123456789";
const ACCESS_TOKEN: &str = "access-token-0123456789";
const REDIRECT_URI: &str = "https://gatehouse.example/acme/sso/fb/callback";

/// A provider in memory. It records every request it sees.
struct FakeIdp {
    token_status: u16,
    token_body: Value,
    userinfo_status: u16,
    userinfo_body: Vec<u8>,
    blocked: bool,
    requests: RefCell<Vec<HttpRequest>>,
}

impl FakeIdp {
    fn new(userinfo: Value) -> Self {
        FakeIdp {
            token_status: 200,
            token_body: json!({
                "access_token": ACCESS_TOKEN,
                "token_type": "bearer",
                "expires_in": 5183944,
            }),
            userinfo_status: 200,
            userinfo_body: userinfo.to_string().into_bytes(),
            blocked: false,
            requests: RefCell::new(Vec::new()),
        }
    }

    fn ada() -> Self {
        FakeIdp::new(json!({ "id": "10157", "name": "Ada", "email": "ada@example.com" }))
    }

    fn requests_to(&self, url: &str) -> Vec<HttpRequest> {
        self.requests
            .borrow()
            .iter()
            .filter(|r| r.url == url)
            .cloned()
            .collect()
    }

    fn token_request(&self) -> HttpRequest {
        let requests = self.requests_to(TOKEN);
        assert_eq!(requests.len(), 1, "one code exchange");
        requests[0].clone()
    }
}

impl Fetch for FakeIdp {
    fn fetch(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        self.requests
            .borrow_mut()
            .push(request.clone());
        if self.blocked {
            return Err(HttpError {
                kind: HttpErrorKind::Blocked,
                detail: "private address".into(),
            });
        }
        let json_type = vec![("content-type".into(), "application/json".into())];
        let response = match (request.method.as_str(), request.url.as_str()) {
            ("POST", TOKEN) => HttpResponse {
                status: self.token_status,
                headers: json_type,
                body: self.token_body.to_string().into_bytes(),
            },
            ("GET", USERINFO) => {
                let authorized =
                    header(request, "authorization") == Some(format!("Bearer {ACCESS_TOKEN}"));
                HttpResponse {
                    status: if authorized {
                        self.userinfo_status
                    } else {
                        401
                    },
                    // The Graph API's historical label for its JSON.
                    headers: vec![("content-type".into(), "text/javascript".into())],
                    body: self.userinfo_body.clone(),
                }
            }
            _ => HttpResponse {
                status: 404,
                headers: json_type,
                body: b"{}".to_vec(),
            },
        };
        Ok(response)
    }
}

fn header(request: &HttpRequest, name: &str) -> Option<String> {
    request
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

fn form(request: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect()
}

fn form_value(request: &HttpRequest, name: &str) -> Option<String> {
    form(request)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

fn config() -> Value {
    json!({
        "authorization_url": AUTHORIZE,
        "token_url": TOKEN,
        "userinfo_url": USERINFO,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scopes": ["email", "public_profile"],
        "mapping": {
            "subject": "/id",
            "email": "/email",
            "name": "/name",
            "email_verified_default": true,
        },
        "allowed_domains": ["example.com"],
    })
}

fn begin_request(config: Value) -> BeginLoginRequest {
    BeginLoginRequest {
        tenant: "acme".into(),
        connection_id: "fb".into(),
        config,
        redirect_uri: REDIRECT_URI.into(),
        state: STATE.into(),
        nonce: "unused-nonce".into(),
        pkce_verifier: VERIFIER.into(),
        request_id: String::new(),
        sp_entity_id: String::new(),
    }
}

fn finish_request(config: Value, params: &[(&str, &str)]) -> FinishLoginRequest {
    FinishLoginRequest {
        tenant: "acme".into(),
        connection_id: "fb".into(),
        config,
        redirect_uri: REDIRECT_URI.into(),
        state: STATE.into(),
        nonce: "unused-nonce".into(),
        pkce_verifier: VERIFIER.into(),
        params: params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        request_id: None,
        sp_entity_id: String::new(),
    }
}

const GOOD_PARAMS: [(&str, &str); 2] = [("code", CODE), ("state", STATE)];

fn finish_with(idp: &FakeIdp, config: Value) -> Result<ExternalIdentity, PluginError> {
    finish_login(idp, finish_request(config, &GOOD_PARAMS))
}

fn finish(idp: &FakeIdp) -> Result<ExternalIdentity, PluginError> {
    finish_with(idp, config())
}

/// Asserts the reason code and that nothing secret leaked into the detail or diagnostics.
fn assert_refused(result: Result<ExternalIdentity, PluginError>, code: &str) -> PluginError {
    let error = result.expect_err("login should be refused");
    assert_eq!(error.code, code, "detail: {}", error.detail);
    let diagnostics = error
        .diagnostics
        .clone()
        .unwrap_or_default();
    for secret in [
        CODE,
        STATE,
        VERIFIER,
        ACCESS_TOKEN,
        CLIENT_SECRET,
        "ada@example.com",
    ] {
        assert!(
            !error.detail.contains(secret) && !diagnostics.contains(secret),
            "a secret or personal value leaked: {error:?}"
        );
    }
    error
}

fn ada_identity() -> ExternalIdentity {
    ExternalIdentity {
        issuer: "https://idp.example".into(),
        subject: "10157".into(),
        email: Some("ada@example.com".into()),
        email_verified: true,
        name: Some("Ada".into()),
        replay: None,
    }
}

#[test]
fn authorization_url_carries_the_request_and_the_pkce_challenge() {
    let response = begin_login(begin_request(config())).expect("begin");
    let url = Url::parse(&response.redirect_url).expect("url");
    assert_eq!(
        format!(
            "{}://{}{}",
            url.scheme(),
            url.host_str().expect("host"),
            url.path()
        ),
        AUTHORIZE
    );
    let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let value = |name: &str| {
        let found: Vec<&String> = params
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(found.len(), 1, "{name} once in {params:?}");
        found[0].clone()
    };
    assert_eq!(value("response_type"), "code");
    assert_eq!(value("client_id"), CLIENT_ID);
    assert_eq!(value("redirect_uri"), REDIRECT_URI);
    assert_eq!(value("scope"), "email public_profile");
    assert_eq!(value("state"), STATE);
    assert_eq!(value("code_challenge_method"), "S256");
    // RFC 7636 Appendix B: BASE64URL(SHA256(verifier)), checked against oauth2's derivation.
    let expected = oauth2::PkceCodeChallenge::from_code_verifier_sha256(
        &oauth2::PkceCodeVerifier::new(VERIFIER.into()),
    );
    assert_eq!(value("code_challenge"), expected.as_str());
    assert_eq!(value("code_challenge").len(), 43);
    // Nothing secret travels in the browser's URL.
    assert!(!response.redirect_url.contains(VERIFIER));
    assert!(!response
        .redirect_url
        .contains(CLIENT_SECRET));
}

#[test]
fn without_pkce_or_scopes_the_url_has_neither() {
    let mut config = config();
    config["pkce"] = json!(false);
    config["scopes"] = json!([]);
    config["authorization_url"] = json!("https://idp.example/dialog/oauth?display=popup");
    let response = begin_login(begin_request(config)).expect("begin");
    let url = Url::parse(&response.redirect_url).expect("url");
    let names: Vec<String> = url
        .query_pairs()
        .map(|(n, _)| n.into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "display",
            "response_type",
            "client_id",
            "state",
            "redirect_uri"
        ]
    );
}

#[test]
fn a_bad_verifier_from_the_host_is_refused() {
    let mut request = begin_request(config());
    request.pkce_verifier = "short".into();
    assert_eq!(
        begin_login(request)
            .expect_err("refused")
            .code,
        reason::PLUGIN_FAILURE
    );
}

#[test]
fn string_id_login_succeeds_with_basic_auth_and_pkce() {
    let idp = FakeIdp::ada();
    assert_eq!(finish(&idp).expect("login"), ada_identity());

    let token = idp.token_request();
    let authorization = header(&token, "authorization").expect("basic auth header");
    let expected = STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    assert_eq!(authorization, format!("Basic {expected}"));
    assert_eq!(
        form_value(&token, "grant_type").as_deref(),
        Some("authorization_code")
    );
    assert_eq!(form_value(&token, "code").as_deref(), Some(CODE));
    assert_eq!(
        form_value(&token, "redirect_uri").as_deref(),
        Some(REDIRECT_URI)
    );
    assert_eq!(
        form_value(&token, "code_verifier").as_deref(),
        Some(VERIFIER)
    );
    assert_eq!(form_value(&token, "client_secret"), None);
    assert_eq!(form_value(&token, "client_id"), None);

    let userinfo = idp.requests_to(USERINFO);
    assert_eq!(userinfo.len(), 1);
    assert_eq!(userinfo[0].method, "GET");
    assert_eq!(
        header(&userinfo[0], "authorization"),
        Some(format!("Bearer {ACCESS_TOKEN}"))
    );
    assert!(userinfo[0].body.is_empty());
}

#[test]
fn numeric_id_becomes_a_decimal_subject() {
    let idp = FakeIdp::new(json!({ "id": 583231, "login": "octocat", "email": "o@example.com" }));
    let identity = finish(&idp).expect("login");
    assert_eq!(identity.subject, "583231");
    assert_eq!(identity.name, None);
    let idp = FakeIdp::new(json!({ "id": 18446744073709551615u64 }));
    assert_eq!(finish(&idp).expect("login").subject, "18446744073709551615");
    let idp = FakeIdp::new(json!({ "id": 1.5 }));
    assert_refused(finish(&idp), reason::USERINFO_FAILED);
}

#[test]
fn nested_pointers_are_followed() {
    let idp = FakeIdp::new(json!({
        "data": { "user": { "uid": "u-7", "mail": "ada@example.com", "mail_ok": true } }
    }));
    let mut config = config();
    config["mapping"] = json!({
        "subject": "/data/user/uid",
        "email": "/data/user/mail",
        "email_verified": "/data/user/mail_ok",
    });
    let identity = finish_with(&idp, config).expect("login");
    assert_eq!(identity.subject, "u-7");
    assert!(identity.email_verified);
}

#[test]
fn post_auth_sends_the_secret_in_the_body() {
    let idp = FakeIdp::ada();
    let mut config = config();
    config["token_auth"] = json!("post");
    finish_with(&idp, config).expect("login");
    let token = idp.token_request();
    assert_eq!(header(&token, "authorization"), None);
    assert_eq!(form_value(&token, "client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(
        form_value(&token, "client_secret").as_deref(),
        Some(CLIENT_SECRET)
    );
}

#[test]
fn facebook_preset_posts_its_secret() {
    let idp = FakeIdp::ada();
    let config = json!({
        "preset": "facebook",
        "token_url": TOKEN,
        "userinfo_url": USERINFO,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "allowed_domains": ["example.com"],
    });
    let identity = finish_with(&idp, config).expect("login");
    assert_eq!(identity.issuer, "https://www.facebook.com");
    assert!(identity.email_verified, "Facebook emails count as verified");
    let token = idp.token_request();
    assert_eq!(
        form_value(&token, "client_secret").as_deref(),
        Some(CLIENT_SECRET)
    );
}

#[test]
fn public_client_sends_its_id_and_no_secret() {
    let idp = FakeIdp::ada();
    let mut config = config();
    config["client_secret"] = Value::Null;
    finish_with(&idp, config).expect("login");
    let token = idp.token_request();
    assert_eq!(header(&token, "authorization"), None);
    assert_eq!(form_value(&token, "client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(form_value(&token, "client_secret"), None);
    assert_eq!(
        form_value(&token, "code_verifier").as_deref(),
        Some(VERIFIER)
    );
}

#[test]
fn without_pkce_no_verifier_is_sent() {
    let idp = FakeIdp::ada();
    let mut config = config();
    config["pkce"] = json!(false);
    let mut request = finish_request(config, &GOOD_PARAMS);
    // The host's verifier is not even looked at.
    request.pkce_verifier = String::new();
    finish_login(&idp, request).expect("login");
    assert_eq!(form_value(&idp.token_request(), "code_verifier"), None);
}

#[test]
fn provider_error_is_idp_error() {
    let idp = FakeIdp::ada();
    let error = assert_refused(
        finish_login(
            &idp,
            finish_request(
                config(),
                &[
                    ("error", "access_denied"),
                    ("error_reason", "user_denied"),
                    ("error_description", "Permissions error\u{7}\n"),
                    ("state", STATE),
                ],
            ),
        ),
        reason::IDP_ERROR,
    );
    assert_eq!(
        error.detail,
        "the identity provider returned access_denied: Permissions error??"
    );
    assert!(
        idp.requests.borrow().is_empty(),
        "no exchange after an error"
    );
}

#[test]
fn missing_or_repeated_code_is_callback_invalid() {
    for params in [
        vec![("state", STATE)],
        vec![("code", ""), ("state", STATE)],
        vec![("code", CODE), ("code", "other"), ("state", STATE)],
        vec![("code", CODE), ("state", STATE), ("state", STATE)],
    ] {
        let idp = FakeIdp::ada();
        assert_refused(
            finish_login(&idp, finish_request(config(), &params)),
            reason::CALLBACK_INVALID,
        );
        assert!(idp.requests.borrow().is_empty());
    }
}

#[test]
fn token_errors_are_token_exchange_failed() {
    let mut idp = FakeIdp::ada();
    idp.token_status = 400;
    idp.token_body = json!({ "error": "invalid_grant", "error_description": CODE });
    let error = assert_refused(finish(&idp), reason::TOKEN_EXCHANGE_FAILED);
    assert!(error.detail.contains("invalid_grant"), "{}", error.detail);

    // GitHub: HTTP 200 with an error document.
    let mut idp = FakeIdp::ada();
    idp.token_body = json!({ "error": "bad_verification_code", "error_uri": "x" });
    let error = assert_refused(finish(&idp), reason::TOKEN_EXCHANGE_FAILED);
    assert!(
        error
            .detail
            .contains("bad_verification_code"),
        "{}",
        error.detail
    );

    // Graph API: an error object.
    let mut idp = FakeIdp::ada();
    idp.token_status = 400;
    idp.token_body = json!({ "error": { "message": CODE, "type": "OAuthException", "code": 100 } });
    let error = assert_refused(finish(&idp), reason::TOKEN_EXCHANGE_FAILED);
    assert!(error.detail.contains("OAuthException"), "{}", error.detail);

    let mut idp = FakeIdp::ada();
    idp.token_body = json!({ "token_type": "bearer" });
    assert_refused(finish(&idp), reason::TOKEN_EXCHANGE_FAILED);
    assert!(idp.requests_to(USERINFO).is_empty());
}

#[test]
fn only_bearer_tokens_are_accepted() {
    let mut idp = FakeIdp::ada();
    idp.token_body["token_type"] = json!("Bearer");
    finish(&idp).expect("token types are case-insensitive");

    for token_type in [json!("mac"), json!("DPoP"), json!(null)] {
        let mut idp = FakeIdp::ada();
        idp.token_body["token_type"] = token_type;
        assert_refused(finish(&idp), reason::TOKEN_EXCHANGE_FAILED);
        assert!(idp.requests_to(USERINFO).is_empty());
    }
    let mut idp = FakeIdp::ada();
    idp.token_body
        .as_object_mut()
        .expect("object")
        .remove("token_type");
    assert_refused(finish(&idp), reason::TOKEN_EXCHANGE_FAILED);
}

#[test]
fn userinfo_failures_are_userinfo_failed() {
    let mut idp = FakeIdp::ada();
    idp.userinfo_status = 500;
    let error = assert_refused(finish(&idp), reason::USERINFO_FAILED);
    assert!(error.detail.contains("500"), "{}", error.detail);

    let mut idp = FakeIdp::ada();
    idp.userinfo_body = b"<html>login</html>".to_vec();
    assert_refused(finish(&idp), reason::USERINFO_FAILED);

    let idp = FakeIdp::new(json!(["not", "an", "object"]));
    assert_refused(finish(&idp), reason::USERINFO_FAILED);
}

#[test]
fn missing_subject_is_userinfo_failed_with_the_document_shape() {
    for document in [
        json!({ "name": "Ada", "email": "ada@example.com" }),
        json!({ "id": "", "email": "ada@example.com" }),
        json!({ "id": null, "email": "ada@example.com" }),
        json!({ "id": { "value": "x" }, "email": "ada@example.com" }),
    ] {
        let idp = FakeIdp::new(document.clone());
        let error = assert_refused(finish(&idp), reason::USERINFO_FAILED);
        assert!(error.detail.contains("/id"), "{}", error.detail);
        let diagnostics = error.diagnostics.expect("diagnostics");
        assert!(diagnostics.contains("email (string)"), "{diagnostics}");
    }
}

#[test]
fn missing_email_is_no_email() {
    for document in [
        json!({ "id": "1", "name": "Ada" }),
        json!({ "id": 1, "email": null }),
        json!({ "id": 1, "email": "" }),
    ] {
        let identity = finish(&FakeIdp::new(document)).expect("login");
        assert_eq!(identity.email, None);
        assert!(!identity.email_verified, "no email is never verified");
    }
    let mut config = config();
    config["mapping"]
        .as_object_mut()
        .expect("object")
        .remove("email");
    let identity = finish_with(&FakeIdp::ada(), config).expect("login");
    assert_eq!(identity.email, None);

    let idp = FakeIdp::new(json!({ "id": 1, "email": ["ada@example.com"] }));
    assert_refused(finish(&idp), reason::USERINFO_FAILED);
}

#[test]
fn only_a_json_true_verifies_an_email() {
    let verified_by = |value: Value, default: bool| {
        let idp = FakeIdp::new(json!({ "id": "1", "email": "ada@example.com", "ok": value }));
        let mut config = config();
        config["mapping"]["email_verified"] = json!("/ok");
        config["mapping"]["email_verified_default"] = json!(default);
        finish_with(&idp, config)
            .expect("login")
            .email_verified
    };
    assert!(verified_by(json!(true), false));
    assert!(!verified_by(json!("true"), false));
    assert!(!verified_by(json!(1), false));
    // An explicit statement beats the default.
    assert!(!verified_by(json!(false), true));
    assert!(!verified_by(json!("true"), true));
    // No statement: the default decides.
    assert!(verified_by(Value::Null, true));
    assert!(!verified_by(Value::Null, false));

    let mut config = config();
    config["mapping"]["email_verified_default"] = json!(false);
    assert!(
        !finish_with(&FakeIdp::ada(), config)
            .expect("login")
            .email_verified
    );
}

#[test]
fn host_errors_keep_their_category() {
    let mut idp = FakeIdp::ada();
    idp.blocked = true;
    assert_refused(finish(&idp), reason::DESTINATION_BLOCKED);

    struct Down;
    impl Fetch for Down {
        fn fetch(&self, _: &HttpRequest) -> Result<HttpResponse, HttpError> {
            Err(HttpError {
                kind: HttpErrorKind::Connect,
                detail: "connection refused".into(),
            })
        }
    }
    assert_refused(
        finish_login(&Down, finish_request(config(), &GOOD_PARAMS)),
        reason::IDP_UNREACHABLE,
    );

    /// Answers the token request, then fails the user-info request.
    struct UserinfoBlocked(FakeIdp);
    impl Fetch for UserinfoBlocked {
        fn fetch(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
            if request.url == USERINFO {
                return Err(HttpError {
                    kind: HttpErrorKind::Blocked,
                    detail: "private address".into(),
                });
            }
            self.0.fetch(request)
        }
    }
    assert_refused(
        finish_login(
            &UserinfoBlocked(FakeIdp::ada()),
            finish_request(config(), &GOOD_PARAMS),
        ),
        reason::DESTINATION_BLOCKED,
    );
}

#[test]
fn a_broken_stored_config_is_invalid_config() {
    let mut config = config();
    config["mapping"] = json!({});
    let error = assert_refused(finish_with(&FakeIdp::ada(), config), reason::INVALID_CONFIG);
    assert_eq!(error.field.as_deref(), Some("/mapping/subject"));
}
