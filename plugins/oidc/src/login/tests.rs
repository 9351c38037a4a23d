//! The whole login flow against an in-memory provider with real RSA keys.

use std::cell::RefCell;
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{Duration, Utc};
use gatehouse_plugin_sdk::{
    reason, BeginLoginRequest, ExternalIdentity, FinishLoginRequest, HttpError, HttpErrorKind,
    HttpRequest, HttpResponse, PluginError,
};
use openidconnect::core::{
    CoreGenderClaim, CoreHmacKey, CoreIdToken, CoreIdTokenClaims, CoreJwsSigningAlgorithm,
    CoreRsaPrivateSigningKey,
};
use openidconnect::{
    Audience, ClientId, EmptyAdditionalClaims, EndUserEmail, EndUserName, IssuerUrl, JsonWebKeyId,
    LocalizedClaim, Nonce, PrivateSigningKey, StandardClaims, SubjectIdentifier,
};
use rand_chacha::rand_core::SeedableRng;
use rsa::pkcs1::EncodeRsaPrivateKey;
use serde_json::{json, Value};

use super::{begin_login, finish_login};
use crate::http::Fetch;

const ISSUER: &str = "https://idp.example";
const DISCOVERY: &str = "https://idp.example/.well-known/openid-configuration";
const JWKS: &str = "https://idp.example/jwks";
const TOKEN: &str = "https://idp.example/token";
const USERINFO: &str = "https://idp.example/userinfo";
const CLIENT_ID: &str = "gatehouse-client";
const CLIENT_SECRET: &str = "client-secret-value";
const NONCE: &str = "nonce-value-from-host-0123456789";
const STATE: &str = "state-value-from-host-0123456789";
const VERIFIER: &str = "pkce-verifier-from-host-0123456789-abcdefghijklmnop";
const CODE: &str = "authorization-code-0123456789";
const ACCESS_TOKEN: &str = "access-token-0123456789";
const SUBJECT: &str = "user-1";

/// Private keys, generated once per test binary from fixed seeds (RSA keygen is slow in debug).
fn pem(index: usize) -> &'static str {
    static PEMS: OnceLock<Vec<String>> = OnceLock::new();
    let pems = PEMS.get_or_init(|| {
        (0..2u64)
            .map(|seed| {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                let key = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("keygen");
                key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
                    .expect("pem")
                    .to_string()
            })
            .collect()
    });
    &pems[index]
}

fn key(index: usize, kid: &str) -> CoreRsaPrivateSigningKey {
    CoreRsaPrivateSigningKey::from_pem(pem(index), Some(JsonWebKeyId::new(kid.into())))
        .expect("key")
}

fn known_key() -> CoreRsaPrivateSigningKey {
    key(0, "known")
}

fn jwks() -> Value {
    json!({ "keys": [serde_json::to_value(known_key().as_verification_key()).expect("jwk")] })
}

fn discovery() -> Value {
    json!({
        "issuer": ISSUER,
        "authorization_endpoint": "https://idp.example/authorize",
        "token_endpoint": TOKEN,
        "userinfo_endpoint": USERINFO,
        "jwks_uri": JWKS,
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    })
}

fn claims() -> CoreIdTokenClaims {
    let now = Utc::now();
    let standard = StandardClaims::<CoreGenderClaim>::new(SubjectIdentifier::new(SUBJECT.into()))
        .set_email(Some(EndUserEmail::new("ada@example.com".into())))
        .set_email_verified(Some(true))
        .set_name(Some(LocalizedClaim::from(EndUserName::new("Ada".into()))));
    CoreIdTokenClaims::new(
        IssuerUrl::new(ISSUER.into()).expect("url"),
        vec![Audience::new(CLIENT_ID.into())],
        now + Duration::minutes(5),
        now,
        standard,
        EmptyAdditionalClaims {},
    )
    .set_nonce(Some(Nonce::new(NONCE.into())))
}

fn sign(claims: CoreIdTokenClaims, key: &CoreRsaPrivateSigningKey) -> String {
    CoreIdToken::new(
        claims,
        key,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        None,
        None,
    )
    .expect("sign")
    .to_string()
}

/// Signs an arbitrary payload with the known key: for claims openidconnect cannot produce.
fn sign_raw(payload: &Value) -> String {
    let header = json!({"alg": "RS256", "kid": "known", "typ": "JWT"});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let signature = known_key()
        .sign(
            &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            input.as_bytes(),
        )
        .expect("sign");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// An identity provider in memory. It records every request it sees.
struct FakeIdp {
    discovery: Value,
    jwks: Value,
    token_status: u16,
    token_body: Value,
    userinfo: Option<Value>,
    blocked: bool,
    requests: RefCell<Vec<HttpRequest>>,
}

impl FakeIdp {
    fn new(id_token: String) -> Self {
        FakeIdp {
            discovery: discovery(),
            jwks: jwks(),
            token_status: 200,
            token_body: json!({
                "access_token": ACCESS_TOKEN,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            }),
            userinfo: None,
            blocked: false,
            requests: RefCell::new(Vec::new()),
        }
    }

    fn requests_to(&self, url: &str) -> Vec<HttpRequest> {
        self.requests
            .borrow()
            .iter()
            .filter(|r| r.url == url)
            .cloned()
            .collect()
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
        let (status, body) = match (request.method.as_str(), request.url.as_str()) {
            ("GET", DISCOVERY) => (200, self.discovery.clone()),
            ("GET", JWKS) => (200, self.jwks.clone()),
            ("POST", TOKEN) => (self.token_status, self.token_body.clone()),
            ("GET", USERINFO) => match &self.userinfo {
                Some(body) => (200, body.clone()),
                None => (404, json!({})),
            },
            _ => (404, json!({})),
        };
        Ok(HttpResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        })
    }
}

fn config(secret: Option<&str>) -> Value {
    json!({
        "discovery_url": DISCOVERY,
        "client_id": CLIENT_ID,
        "client_secret": secret,
        "allowed_domains": ["example.com"],
        "id_token_signing_algs": ["RS256"],
    })
}

fn finish_request(params: &[(&str, &str)]) -> FinishLoginRequest {
    FinishLoginRequest {
        tenant: "acme".into(),
        connection_id: "conn-1".into(),
        config: config(None),
        redirect_uri: "https://gatehouse.example/callback".into(),
        state: STATE.into(),
        nonce: NONCE.into(),
        pkce_verifier: VERIFIER.into(),
        params: params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        request_id: None,
        sp_entity_id: String::new(),
    }
}

fn good_params() -> Vec<(&'static str, &'static str)> {
    vec![("code", CODE), ("state", STATE), ("iss", ISSUER)]
}

fn finish(idp: &FakeIdp) -> Result<ExternalIdentity, PluginError> {
    finish_login(idp, finish_request(&good_params()))
}

/// Asserts the reason code and that nothing secret leaked into the detail.
fn assert_refused(result: Result<ExternalIdentity, PluginError>, code: &str) -> PluginError {
    let error = result.expect_err("login should be refused");
    assert_eq!(error.code, code, "detail: {}", error.detail);
    for secret in [CODE, NONCE, STATE, VERIFIER, ACCESS_TOKEN, CLIENT_SECRET] {
        assert!(
            !error.detail.contains(secret),
            "detail leaks a secret: {}",
            error.detail
        );
    }
    assert!(
        !error.detail.contains("eyJ"),
        "detail leaks a JWT: {}",
        error.detail
    );
    error
}

#[test]
fn valid_token_is_accepted() {
    let idp = FakeIdp::new(sign(claims(), &known_key()));
    let identity = finish(&idp).expect("login");
    assert_eq!(
        identity,
        ExternalIdentity {
            issuer: ISSUER.into(),
            subject: SUBJECT.into(),
            email: Some("ada@example.com".into()),
            email_verified: true,
            name: Some("Ada".into()),
            replay: None,
        }
    );

    // The exchange is a public-client PKCE request: client_id and verifier in the body.
    let token_requests = idp.requests_to(TOKEN);
    assert_eq!(token_requests.len(), 1);
    let body = String::from_utf8(token_requests[0].body.clone()).expect("utf8");
    assert!(body.contains("grant_type=authorization_code"), "{body}");
    assert!(body.contains(&format!("code={CODE}")), "{body}");
    assert!(
        body.contains(&format!("code_verifier={VERIFIER}")),
        "{body}"
    );
    assert!(body.contains(&format!("client_id={CLIENT_ID}")), "{body}");
    assert!(body.contains("redirect_uri=https%3A%2F%2Fgatehouse.example%2Fcallback"));

    // Discovery and JWKS are fetched with the cache policies the host expects.
    let discovery = &idp.requests_to(DISCOVERY)[0];
    let cache = discovery
        .cache
        .as_ref()
        .expect("cache policy");
    assert_eq!(
        (cache.max_age_secs, cache.refresh, cache.scope.as_str()),
        (3600, false, "discovery")
    );
    let jwks = idp.requests_to(JWKS);
    assert_eq!(jwks.len(), 1, "no refresh needed");
    let cache = jwks[0]
        .cache
        .as_ref()
        .expect("cache policy");
    assert_eq!(
        (cache.max_age_secs, cache.refresh, cache.scope.as_str()),
        (3600, false, "jwks")
    );
    // Complete claims: no userinfo call.
    assert!(idp.requests_to(USERINFO).is_empty());
}

#[test]
fn confidential_client_uses_basic_auth() {
    let idp = FakeIdp::new(sign(claims(), &known_key()));
    let mut request = finish_request(&good_params());
    request.config = config(Some(CLIENT_SECRET));
    finish_login(&idp, request).expect("login");
    let token_request = &idp.requests_to(TOKEN)[0];
    let authorization = token_request
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        .map(|(_, value)| value.clone())
        .expect("basic auth header");
    let expected = URL_SAFE_NO_PAD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    assert!(authorization.starts_with("Basic "));
    assert_eq!(
        authorization
            .trim_start_matches("Basic ")
            .trim_end_matches('='),
        expected
    );
    let body = String::from_utf8(token_request.body.clone()).expect("utf8");
    assert!(!body.contains(CLIENT_SECRET));
}

#[test]
fn wrong_nonce_is_nonce_mismatch() {
    let token = sign(
        claims().set_nonce(Some(Nonce::new("other".into()))),
        &known_key(),
    );
    assert_refused(finish(&FakeIdp::new(token)), reason::NONCE_MISMATCH);
    let token = sign(claims().set_nonce(None), &known_key());
    assert_refused(finish(&FakeIdp::new(token)), reason::NONCE_MISMATCH);
}

#[test]
fn wrong_audience_is_refused() {
    let token = sign(
        claims().set_audiences(vec![Audience::new("someone-else".into())]),
        &known_key(),
    );
    assert_refused(finish(&FakeIdp::new(token)), reason::ID_TOKEN_INVALID);
}

#[test]
fn extra_audience_or_foreign_azp_is_refused() {
    let token = sign(
        claims().set_audiences(vec![
            Audience::new(CLIENT_ID.into()),
            Audience::new("someone-else".into()),
        ]),
        &known_key(),
    );
    assert_refused(finish(&FakeIdp::new(token)), reason::ID_TOKEN_INVALID);
    let token = sign(
        claims().set_authorized_party(Some(ClientId::new("someone-else".into()))),
        &known_key(),
    );
    assert_refused(finish(&FakeIdp::new(token)), reason::ID_TOKEN_INVALID);
}

#[test]
fn wrong_issuer_is_refused() {
    let token = sign(
        claims().set_issuer(IssuerUrl::new("https://evil.example".into()).expect("url")),
        &known_key(),
    );
    assert_refused(finish(&FakeIdp::new(token)), reason::ID_TOKEN_INVALID);
}

#[test]
fn expired_token_is_refused() {
    let now = Utc::now();
    let token = sign(
        claims()
            .set_issue_time(now - Duration::minutes(20))
            .set_expiration(now - Duration::minutes(10)),
        &known_key(),
    );
    assert_refused(finish(&FakeIdp::new(token)), reason::ID_TOKEN_INVALID);
}

#[test]
fn token_within_clock_skew_is_accepted() {
    let now = Utc::now();
    let token = sign(
        claims().set_expiration(now - Duration::seconds(20)),
        &known_key(),
    );
    finish(&FakeIdp::new(token)).expect("20 s past exp is within the 60 s skew");
}

#[test]
fn unsigned_token_is_refused() {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).expect("json"));
    let token = format!("{header}.{payload}.");
    assert_refused(finish(&FakeIdp::new(token)), reason::ID_TOKEN_INVALID);
}

#[test]
fn hs256_token_signed_with_the_client_secret_is_refused() {
    let token = CoreIdToken::new(
        claims(),
        &CoreHmacKey::new(CLIENT_SECRET.as_bytes().to_vec()),
        CoreJwsSigningAlgorithm::HmacSha256,
        None,
        None,
    )
    .expect("sign")
    .to_string();
    let idp = FakeIdp::new(token);
    let mut request = finish_request(&good_params());
    request.config = config(Some(CLIENT_SECRET));
    assert_refused(finish_login(&idp, request), reason::ID_TOKEN_INVALID);
}

#[test]
fn unknown_key_is_refused_after_one_refresh() {
    let token = sign(claims(), &key(1, "rotated"));
    let idp = FakeIdp::new(token);
    assert_refused(finish(&idp), reason::ID_TOKEN_INVALID);
    let jwks = idp.requests_to(JWKS);
    assert_eq!(jwks.len(), 2, "one cached fetch, one forced refresh");
    let refresh = jwks[1]
        .cache
        .as_ref()
        .expect("cache policy");
    assert_eq!(
        (
            refresh.max_age_secs,
            refresh.refresh,
            refresh.min_refresh_secs,
            refresh.scope.as_str()
        ),
        (0, true, 30, "jwks")
    );
}

#[test]
fn rotated_key_is_found_by_the_refresh() {
    let token = sign(claims(), &key(1, "rotated"));
    let idp = FakeIdp::new(token);
    // The fake serves both keys, but simulates a stale cache by failing the first lookup:
    // the first JWKS answer lacks the new key, the refreshed one has it.
    struct Rotating<'a>(&'a FakeIdp);
    impl Fetch for Rotating<'_> {
        fn fetch(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
            let mut response = self.0.fetch(request)?;
            if request.url == JWKS
                && request
                    .cache
                    .as_ref()
                    .is_some_and(|c| c.refresh)
            {
                let rotated = key(1, "rotated").as_verification_key();
                response.body = json!({ "keys": [rotated] })
                    .to_string()
                    .into_bytes();
            }
            Ok(response)
        }
    }
    let identity = finish_login(&Rotating(&idp), finish_request(&good_params())).expect("login");
    assert_eq!(identity.subject, SUBJECT);
}

#[test]
fn token_signed_by_another_key_with_a_known_kid_is_refused() {
    let token = sign(claims(), &key(1, "known"));
    assert_refused(finish(&FakeIdp::new(token)), reason::ID_TOKEN_INVALID);
}

#[test]
fn iss_parameter_mismatch_is_refused() {
    let idp = FakeIdp::new(sign(claims(), &known_key()));
    let result = finish_login(
        &idp,
        finish_request(&[("code", CODE), ("iss", "https://evil.example")]),
    );
    assert_refused(result, reason::ISSUER_MISMATCH);
    assert!(
        idp.requests_to(TOKEN).is_empty(),
        "no exchange after a mix-up"
    );
}

#[test]
fn missing_iss_parameter_is_refused_when_advertised() {
    let mut idp = FakeIdp::new(sign(claims(), &known_key()));
    idp.discovery["authorization_response_iss_parameter_supported"] = json!(true);
    let result = finish_login(&idp, finish_request(&[("code", CODE)]));
    assert_refused(result, reason::ISSUER_MISMATCH);

    // Without the advertisement a missing iss is fine.
    let idp = FakeIdp::new(sign(claims(), &known_key()));
    finish_login(&idp, finish_request(&[("code", CODE)])).expect("login");
}

#[test]
fn error_parameter_is_idp_error() {
    let idp = FakeIdp::new(String::new());
    let long = format!("denied\n{}", "x".repeat(5000));
    let result = finish_login(
        &idp,
        finish_request(&[("error", "access_denied"), ("error_description", &long)]),
    );
    let error = assert_refused(result, reason::IDP_ERROR);
    assert!(error.detail.contains("access_denied"));
    assert!(error.detail.len() < 400, "detail is bounded");
    assert!(!error.detail.contains('\n'));
    assert!(idp.requests.borrow().is_empty());
}

#[test]
fn missing_or_duplicate_code_is_callback_invalid() {
    let idp = FakeIdp::new(String::new());
    assert_refused(
        finish_login(&idp, finish_request(&[("state", STATE)])),
        reason::CALLBACK_INVALID,
    );
    assert_refused(
        finish_login(&idp, finish_request(&[("code", "")])),
        reason::CALLBACK_INVALID,
    );
    assert_refused(
        finish_login(&idp, finish_request(&[("code", CODE), ("code", "other")])),
        reason::CALLBACK_INVALID,
    );
    assert_refused(
        finish_login(
            &idp,
            finish_request(&[("code", CODE), ("iss", ISSUER), ("iss", ISSUER)]),
        ),
        reason::CALLBACK_INVALID,
    );
}

#[test]
fn token_endpoint_error_reports_only_the_error_code() {
    let mut idp = FakeIdp::new(String::new());
    idp.token_status = 400;
    idp.token_body = json!({"error": "invalid_grant", "error_description": CODE});
    let error = assert_refused(finish(&idp), reason::TOKEN_EXCHANGE_FAILED);
    assert!(error.detail.contains("invalid_grant"), "{}", error.detail);
}

#[test]
fn string_email_verified_in_userinfo_is_not_verified() {
    let claims = claims()
        .set_email(None)
        .set_email_verified(None)
        .set_name(None);
    let mut idp = FakeIdp::new(sign(claims, &known_key()));
    idp.userinfo = Some(json!({
        "sub": SUBJECT,
        "email": "ada@example.com",
        "email_verified": "true",
        "name": "Ada L.",
    }));
    let identity = finish(&idp).expect("login");
    assert_eq!(identity.email.as_deref(), Some("ada@example.com"));
    assert!(!identity.email_verified);
    assert_eq!(identity.name.as_deref(), Some("Ada L."));

    let userinfo = &idp.requests_to(USERINFO)[0];
    assert!(userinfo
        .headers
        .contains(&("authorization".into(), format!("Bearer {ACCESS_TOKEN}"))));

    // Control: a JSON true does count.
    idp.userinfo.as_mut().expect("set")["email_verified"] = json!(true);
    assert!(
        finish(&idp)
            .expect("login")
            .email_verified
    );
}

#[test]
fn string_email_verified_in_id_token_is_refused() {
    // openidconnect (without accept-string-booleans) cannot parse such a token, so it can never
    // be verified, let alone count as a verified email.
    let mut payload = serde_json::to_value(claims()).expect("json");
    payload["email_verified"] = json!("true");
    let idp = FakeIdp::new(sign_raw(&payload));
    assert_refused(finish(&idp), reason::ID_TOKEN_INVALID);

    // The same hand-made token with a boolean is accepted: the raw signer is sound.
    payload["email_verified"] = json!(true);
    let idp = FakeIdp::new(sign_raw(&payload));
    assert!(
        finish(&idp)
            .expect("login")
            .email_verified
    );
}

#[test]
fn differing_userinfo_email_makes_email_unverified() {
    let mut idp = FakeIdp::new(sign(claims().set_name(None), &known_key()));
    idp.userinfo = Some(json!({
        "sub": SUBJECT,
        "email": "someone.else@example.com",
        "email_verified": true,
    }));
    let identity = finish(&idp).expect("login");
    assert_eq!(identity.email.as_deref(), Some("ada@example.com"));
    assert!(!identity.email_verified);
}

#[test]
fn userinfo_for_another_subject_is_refused() {
    let mut idp = FakeIdp::new(sign(claims().set_name(None), &known_key()));
    idp.userinfo = Some(json!({"sub": "user-2", "name": "Mallory"}));
    assert_refused(finish(&idp), reason::USERINFO_FAILED);
}

#[test]
fn blocked_destination_is_reported() {
    let mut idp = FakeIdp::new(String::new());
    idp.blocked = true;
    assert_refused(finish(&idp), reason::DESTINATION_BLOCKED);
}

#[test]
fn discovery_issuer_must_match_the_discovery_url() {
    let mut idp = FakeIdp::new(sign(claims(), &known_key()));
    idp.discovery["issuer"] = json!("https://other.example");
    assert_refused(finish(&idp), reason::DISCOVERY_FAILED);

    // A trailing slash on the issuer is tolerated (OIDC Discovery 1.0 §4.3 example).
    let mut idp = FakeIdp::new(sign(claims(), &known_key()));
    idp.discovery["issuer"] = json!("https://idp.example/");
    let result = finish_login(&idp, finish_request(&[("code", CODE)]));
    // The ID token's iss lacks the slash, so only the exact discovered issuer is accepted.
    assert_refused(result, reason::ID_TOKEN_INVALID);
}

#[test]
fn malformed_discovery_is_discovery_failed() {
    let mut idp = FakeIdp::new(String::new());
    idp.discovery = json!({"issuer": ISSUER});
    assert_refused(finish(&idp), reason::DISCOVERY_FAILED);
}

#[test]
fn begin_login_builds_the_authorization_url() {
    let idp = FakeIdp::new(String::new());
    let mut config = config(None);
    config["scopes"] = json!(["groups"]);
    let response = begin_login(
        &idp,
        BeginLoginRequest {
            tenant: "acme".into(),
            connection_id: "conn-1".into(),
            config,
            redirect_uri: "https://gatehouse.example/callback".into(),
            state: STATE.into(),
            nonce: NONCE.into(),
            pkce_verifier: VERIFIER.into(),
            request_id: String::new(),
            sp_entity_id: String::new(),
        },
    )
    .expect("begin");
    let url = url::Url::parse(&response.redirect_url).expect("url");
    assert_eq!(
        url.as_str().split('?').next(),
        Some("https://idp.example/authorize")
    );
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let get = |name: &str| {
        let values: Vec<&str> = query
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(values.len(), 1, "{name} once");
        values[0].to_owned()
    };
    assert_eq!(get("response_type"), "code");
    assert_eq!(get("client_id"), CLIENT_ID);
    assert_eq!(get("state"), STATE);
    assert_eq!(get("nonce"), NONCE);
    assert_eq!(get("redirect_uri"), "https://gatehouse.example/callback");
    assert_eq!(get("code_challenge_method"), "S256");
    assert_eq!(
        get("code_challenge"),
        openidconnect::PkceCodeChallenge::from_code_verifier_sha256(
            &openidconnect::PkceCodeVerifier::new(VERIFIER.into())
        )
        .as_str()
    );
    assert_eq!(get("scope"), "openid profile email groups");
    assert!(!response.redirect_url.contains(VERIFIER));
}

#[test]
fn begin_login_maps_transport_failures() {
    let request = || BeginLoginRequest {
        tenant: "acme".into(),
        connection_id: "conn-1".into(),
        config: config(None),
        redirect_uri: "https://gatehouse.example/callback".into(),
        state: STATE.into(),
        nonce: NONCE.into(),
        pkce_verifier: VERIFIER.into(),
        request_id: String::new(),
        sp_entity_id: String::new(),
    };
    let mut idp = FakeIdp::new(String::new());
    idp.blocked = true;
    let error = begin_login(&idp, request()).expect_err("blocked");
    assert_eq!(error.code, reason::DESTINATION_BLOCKED);

    let offline = gatehouse_plugin_sdk::Host::offline();
    let error = begin_login(&offline, request()).expect_err("offline");
    assert_eq!(error.code, reason::IDP_UNREACHABLE);

    let mut idp = FakeIdp::new(String::new());
    idp.discovery["issuer"] = json!("https://other.example");
    let error = begin_login(&idp, request()).expect_err("inconsistent");
    assert_eq!(error.code, reason::DISCOVERY_FAILED);

    let mut bad = request();
    bad.pkce_verifier = "short".into();
    let error = begin_login(&FakeIdp::new(String::new()), bad).expect_err("bad verifier");
    assert_eq!(error.code, reason::PLUGIN_FAILURE);
}
