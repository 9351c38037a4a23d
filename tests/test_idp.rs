//! The test IdP itself (tests/idp), driven by the harness without Gatehouse: if these fail,
//! the OIDC login tests cannot tell anything. The relying party here is a made-up callback on
//! a closed port; the tests never call it and do the token exchange themselves.

mod common;

use base64::Engine as _;
use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

struct Rp {
    base: String,
    redirect_uri: String,
    client_id: String,
    client_secret: Option<String>,
}

async fn rp(idp: &Idp, public: bool) -> Rp {
    let base = format!("http://127.0.0.1:{}", free_port());
    let redirect_uri = format!("{base}/{}/sso/okta/callback", unique("t-"));
    let (client_id, client_secret) = idp
        .register_client(std::slice::from_ref(&redirect_uri), public)
        .await;
    Rp {
        base,
        redirect_uri,
        client_id,
        client_secret,
    }
}

fn pkce() -> (String, String) {
    let verifier = B64URL.encode(rand::random::<[u8; 32]>());
    let challenge = B64URL.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn authorize_url(idp: &Idp, rp: &Rp, state: &str, nonce: &str, challenge: Option<&str>) -> String {
    let mut url = url::Url::parse(&format!("{}/auth", idp.issuer)).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &rp.client_id)
            .append_pair("redirect_uri", &rp.redirect_uri)
            .append_pair("scope", "openid profile email")
            .append_pair("state", state)
            .append_pair("nonce", nonce);
        if let Some(challenge) = challenge {
            q.append_pair("code_challenge", challenge)
                .append_pair("code_challenge_method", "S256");
        }
    }
    url.to_string()
}

async fn exchange(idp: &Idp, rp: &Rp, code: &str, verifier: &str) -> Page {
    let url = format!("{}/token", idp.issuer);
    let mut request = client().post(&url).form(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", rp.redirect_uri.as_str()),
        ("code_verifier", verifier),
        ("client_id", rp.client_id.as_str()),
    ]);
    if let Some(secret) = &rp.client_secret {
        request = request.basic_auth(&rp.client_id, Some(secret));
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    Page::read(&url, response).await
}

fn id_token_claims(tokens: &Value) -> Value {
    let token = tokens["id_token"]
        .as_str()
        .expect("id_token");
    let payload = token
        .split('.')
        .nth(1)
        .expect("a JWS has three parts");
    serde_json::from_slice(
        &B64URL
            .decode(payload)
            .expect("base64url payload"),
    )
    .expect("JSON claims")
}

async fn sign_in_and_exchange(idp: &Idp, rp: &Rp, login: &str) -> Value {
    let browser = browser();
    let (verifier, challenge) = pkce();
    let state = unique("state-");
    let nonce = unique("nonce-");
    let authorize = authorize_url(idp, rp, &state, &nonce, Some(&challenge));
    let callback = idp_sign_in_to(&browser, &rp.base, idp, &authorize, login).await;
    assert!(callback.starts_with(&rp.redirect_uri), "{callback}");
    assert_eq!(
        query_param(&callback, "state").as_deref(),
        Some(state.as_str()),
        "{callback}"
    );
    assert_eq!(
        query_param(&callback, "iss").as_deref(),
        Some(idp.issuer.as_str()),
        "RFC 9207 iss: {callback}"
    );
    let code = query_param(&callback, "code").expect("code");

    let page = exchange(idp, rp, &code, &verifier).await;
    page.assert_status(200);
    let claims = id_token_claims(&page.json());
    assert_eq!(claims["iss"], json!(idp.issuer), "{claims:#}");
    assert_eq!(claims["aud"], json!(rp.client_id), "{claims:#}");
    assert_eq!(claims["nonce"], json!(nonce), "{claims:#}");

    // A code works once.
    let again = exchange(idp, rp, &code, &verifier).await;
    again.assert_status(400);
    assert_eq!(
        again.json()["error"],
        json!("invalid_grant"),
        "{}",
        again.describe()
    );
    claims
}

#[tokio::test]
async fn confidential_client_gets_the_claims_set_for_the_login() {
    let idp = Idp::shared().await;
    let rp = rp(idp, false).await;
    let login = unique("alice-");
    idp.set_account(
        &login,
        json!({ "sub": format!("{login}-sub"), "email": "alice@good.test", "email_verified": "true", "name": "Alice Example" }),
    )
    .await;
    let claims = sign_in_and_exchange(idp, &rp, &login).await;
    assert_eq!(claims["sub"], json!(format!("{login}-sub")), "{claims:#}");
    assert_eq!(claims["email"], json!("alice@good.test"), "{claims:#}");
    assert_eq!(
        claims["email_verified"],
        json!("true"),
        "odd claims pass through as set: {claims:#}"
    );
    assert_eq!(claims["name"], json!("Alice Example"), "{claims:#}");
}

#[tokio::test]
async fn public_client_and_default_claims() {
    let idp = Idp::shared().await;
    let rp = rp(idp, true).await;
    assert!(rp.client_secret.is_none());
    let login = unique("bob-");
    let claims = sign_in_and_exchange(idp, &rp, &login).await;
    assert_eq!(claims["sub"], json!(login), "{claims:#}");
    assert_eq!(
        claims["email"],
        json!(format!("{login}@good.test")),
        "{claims:#}"
    );
    assert_eq!(claims["email_verified"], json!(true), "{claims:#}");
    assert_eq!(claims["name"], json!(login), "{claims:#}");
}

#[tokio::test]
async fn pkce_is_required() {
    let idp = Idp::shared().await;
    let rp = rp(idp, false).await;
    let state = unique("state-");
    let page = get(&browser(), &authorize_url(idp, &rp, &state, "n", None)).await;
    let location = page.assert_redirect();
    assert!(
        location.starts_with(&rp.redirect_uri),
        "{}",
        page.describe()
    );
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("invalid_request"),
        "{location}"
    );
}

#[tokio::test]
async fn abort_returns_access_denied() {
    let idp = Idp::shared().await;
    let rp = rp(idp, false).await;
    let (_, challenge) = pkce();
    let state = unique("state-");
    let authorize = authorize_url(idp, &rp, &state, "n", Some(&challenge));
    let callback = idp_abort_to(&browser(), &rp.base, idp, &authorize).await;
    assert_eq!(
        query_param(&callback, "state").as_deref(),
        Some(state.as_str()),
        "{callback}"
    );
    assert_eq!(
        query_param(&callback, "iss").as_deref(),
        Some(idp.issuer.as_str()),
        "{callback}"
    );
    assert!(query_param(&callback, "code").is_none(), "{callback}");
}

#[tokio::test]
async fn test_routes_validate_their_input() {
    let idp = Idp::shared().await;
    let url = format!("{}/test/accounts", idp.issuer);
    let response = client()
        .post(&url)
        .json(&json!({ "claims": {} }))
        .send()
        .await
        .expect("POST");
    Page::read(&url, response)
        .await
        .assert_status(400);
    let login = unique("carol-");
    let page = get(&client(), &format!("{url}/{login}")).await;
    page.assert_status(200);
    assert_eq!(
        page.json()["claims"]["email"],
        json!(format!("{login}@good.test")),
        "{}",
        page.describe()
    );
}
