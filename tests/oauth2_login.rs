//! Plain OAuth 2.0 sign-in, black box: a real provider shaped like Facebook
//! (tests/oauth2-idp, oauth2-mock-server on Node), a real `gatehouse serve`, HTTP only. Every
//! scenario runs on SQLite and on Postgres (`sqlite::NAME`, `postgres::NAME`), in its own
//! Gatehouse process with its own tenant and client id.

#[macro_use]
mod common;

use common::oauth2::*;
use common::*;
use serde_json::{json, Value};

on_both_stores!(
    connection_config_is_validated_by_the_plugin,
    jit_user_login_succeeds,
    second_login_finds_the_same_user,
    missing_email_is_refused,
    unverified_email_is_refused,
    disallowed_email_domain_is_refused,
    tampered_state_is_refused,
);

// ---------------------------------------------------------------------------------------------
// helpers local to these scenarios

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["type"] == json!(kind))
        .collect()
}

fn has_type(events: &[Value], kind: &str) -> bool {
    events
        .iter()
        .any(|e| e["type"] == json!(kind))
}

/// Exactly one event of this type.
fn one<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    let found = of_type(events, kind);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {kind} event, got {}:\n{}",
        found.len(),
        serde_json::to_string_pretty(events).unwrap_or_default()
    );
    found[0]
}

/// A full, successful login in a fresh browser; returns its session.
async fn successful_login(gh: &Gatehouse, idp: &OAuth2Idp, tenant: &Tenant, login: &str) -> Value {
    let browser = browser();
    let callback = login_via_oauth2(&browser, gh, idp, &tenant.slug, login).await;
    let page = call_callback(&browser, &callback).await;
    assert_login_succeeded(&page, tenant);
    gh.assert_session(&browser).await
}

/// A login whose callback must be refused with this status and reason; checks the page, that
/// no session exists, the login.failed event (matched by the page's attempt id) and that no
/// user was provisioned.
async fn refused_login(
    gh: &Gatehouse,
    idp: &OAuth2Idp,
    tenant: &Tenant,
    login: &str,
    status: u16,
    reason: &str,
) -> Value {
    let browser = browser();
    let callback = login_via_oauth2(&browser, gh, idp, &tenant.slug, login).await;
    let page = call_callback(&browser, &callback).await;
    let attempt = page.assert_error_page(&[status]);
    gh.assert_no_session(&browser).await;
    let event = gh
        .assert_login_failed(&tenant.slug, reason, Some(&attempt))
        .await;
    assert_eq!(event["protocol"], json!("oauth2"), "{event:#}");
    assert!(
        event["user_id"].is_null(),
        "a refused login has no user: {event:#}"
    );
    let events = gh.audit(&tenant.slug, &[]).await;
    assert!(!has_type(&events, "user.provisioned"), "{events:#?}");
    assert!(!has_type(&events, "session.started"), "{events:#?}");
    event
}

// ---------------------------------------------------------------------------------------------
// scenarios

async fn connection_config_is_validated_by_the_plugin(store: Store) {
    let idp = OAuth2Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_oauth2(&gh, idp, facebook_mapping()).await;

    // The stored config is the plugin's normalised one, defaults written out, secret hidden.
    let page = gh
        .admin_get(&format!(
            "/api/v1/tenants/{}/connections/{}",
            tenant.slug, tenant.connection_id
        ))
        .await;
    page.assert_status(200);
    let connection = page.json();
    let config = &connection["config"];
    assert_eq!(connection["protocol"], json!("oauth2"), "{connection:#}");
    assert_eq!(connection["label"], json!("Acme OAuth"), "{connection:#}");
    assert_eq!(config["pkce"], json!(true), "{connection:#}");
    assert_eq!(config["token_auth"], json!("basic"), "{connection:#}");
    assert_eq!(
        config["require_verified_email"],
        json!(true),
        "{connection:#}"
    );
    assert_eq!(config["mapping"], facebook_mapping(), "{connection:#}");
    assert!(config.get("client_secret").is_none(), "{connection:#}");
    assert!(!page.body.contains("secret-client-"), "{}", page.describe());

    // Field errors come back with the field's pointer.
    let mut no_subject = oauth2_config(idp, "c", json!({ "email": "/email" }));
    gh.try_put_oauth2_connection(&tenant.slug, "broken", "Broken", no_subject.clone())
        .await
        .assert_problem(422, Some("/config/mapping/subject"));
    no_subject["mapping"] = facebook_mapping();
    no_subject["token_auth"] = json!("jwt");
    gh.try_put_oauth2_connection(&tenant.slug, "broken", "Broken", no_subject)
        .await
        .assert_problem(422, Some("/config/token_auth"));

    // A preset is expanded in the stored config.
    let page = gh
        .try_put_oauth2_connection(
            &tenant.slug,
            "facebook",
            "Facebook",
            json!({
                "preset": "facebook",
                "client_id": "1234",
                "client_secret": "fb-secret",
                "allowed_domains": ["good.test"],
            }),
        )
        .await;
    page.assert_status(200);
    let facebook = page.json();
    assert_eq!(
        facebook["config"]["authorization_url"],
        json!("https://www.facebook.com/v19.0/dialog/oauth"),
        "{facebook:#}"
    );
    assert_eq!(
        facebook["config"]["token_auth"],
        json!("post"),
        "{facebook:#}"
    );
    assert!(!page.body.contains("fb-secret"), "{}", page.describe());
}

async fn jit_user_login_succeeds(store: Store) {
    let idp = OAuth2Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_oauth2(&gh, idp, facebook_mapping()).await;
    let email = format!("{}@good.test", unique("alice-"));
    // Facebook-style ids are numeric strings.
    let login = idp
        .account(json!({ "id": "10157000000000001", "name": "Alice Example", "email": email }))
        .await;

    let browser = browser();
    let authorize = start_oauth2_login(&browser, &gh, &tenant.slug, idp).await;
    assert_eq!(
        query_param(&authorize, "response_type").as_deref(),
        Some("code")
    );
    assert_eq!(
        query_param(&authorize, "client_id").as_deref(),
        Some(tenant.client_id.as_str())
    );
    assert_eq!(
        query_param(&authorize, "redirect_uri"),
        Some(gh.callback_url(&tenant.slug, &tenant.connection_id))
    );
    assert_eq!(
        query_param(&authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(query_param(&authorize, "state").is_some(), "{authorize}");
    let callback = idp
        .sign_in(&browser, &gh, &authorize, &login)
        .await;
    assert!(
        callback.starts_with(&gh.callback_url(&tenant.slug, &tenant.connection_id)),
        "callback URL {callback}"
    );
    assert!(
        query_param(&callback, "code").is_some(),
        "no code in {callback}"
    );

    let page = call_callback(&browser, &callback).await;
    assert_login_succeeded(&page, &tenant);

    let session = gh.assert_session(&browser).await;
    assert_eq!(session["tenant"], json!(tenant.slug), "{session:#}");
    assert_eq!(
        session["connection_id"],
        json!(tenant.connection_id),
        "{session:#}"
    );
    assert_eq!(session["email"], json!(email), "{session:#}");
    assert_eq!(session["name"], json!("Alice Example"), "{session:#}");
    let user_id = session["user_id"]
        .as_str()
        .expect("user_id is a string")
        .to_string();

    // The code went back with client_secret_basic, this client's id and the PKCE verifier.
    let exchange = idp
        .token_requests()
        .await
        .into_iter()
        .find(|r| r["client_id"] == json!(tenant.client_id))
        .expect("the provider saw the code exchange");
    assert_eq!(
        exchange["auth_method"],
        json!("client_secret_basic"),
        "{exchange:#}"
    );
    assert_eq!(exchange["code_verifier"], json!(true), "{exchange:#}");

    let events = gh
        .audit_until(
            &tenant.slug,
            &[],
            "login.succeeded and session.started",
            |ev| has_type(ev, "login.succeeded") && has_type(ev, "session.started"),
        )
        .await;
    let started = one(&events, "login.started");
    let provisioned = one(&events, "user.provisioned");
    let succeeded = one(&events, "login.succeeded");
    assert!(of_type(&events, "login.failed").is_empty(), "{events:#?}");
    assert_eq!(started["protocol"], json!("oauth2"), "{started:#}");
    assert_eq!(provisioned["user_id"], json!(user_id), "{provisioned:#}");
    assert_eq!(provisioned["email"], json!(email), "{provisioned:#}");
    assert_eq!(succeeded["protocol"], json!("oauth2"), "{succeeded:#}");
    assert_eq!(succeeded["outcome"]["result"], json!("succeeded"), "{succeeded:#}");
    assert_eq!(succeeded["user_id"], json!(user_id), "{succeeded:#}");
    assert_eq!(succeeded["email"], json!(email), "{succeeded:#}");
    assert_eq!(
        succeeded["connection_id"],
        json!(tenant.connection_id),
        "{succeeded:#}"
    );
    assert_eq!(
        succeeded["attempt_id"], started["attempt_id"],
        "{events:#?}"
    );
}

async fn second_login_finds_the_same_user(store: Store) {
    let idp = OAuth2Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_oauth2(&gh, idp, facebook_mapping()).await;
    let email = format!("{}@good.test", unique("bob-"));
    let login = idp
        .account(json!({ "id": unique("id-"), "name": "Bob", "email": email }))
        .await;

    let first = successful_login(&gh, idp, &tenant, &login).await;
    let second = successful_login(&gh, idp, &tenant, &login).await;
    assert_eq!(
        first["user_id"], second["user_id"],
        "a second login must find the same user"
    );

    let events = gh
        .audit_until(&tenant.slug, &[], "two login.succeeded", |ev| {
            of_type(ev, "login.succeeded").len() == 2
        })
        .await;
    assert_eq!(of_type(&events, "user.provisioned").len(), 1, "{events:#?}");
    for event in of_type(&events, "login.succeeded") {
        assert_eq!(event["user_id"], first["user_id"], "{event:#}");
        assert_eq!(event["protocol"], json!("oauth2"), "{event:#}");
    }
}

async fn missing_email_is_refused(store: Store) {
    let idp = OAuth2Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_oauth2(&gh, idp, facebook_mapping()).await;
    // Facebook leaves `email` out when the person has none or declined the scope.
    let login = idp
        .account(json!({ "id": unique("id-"), "name": "No Mail" }))
        .await;
    refused_login(&gh, idp, &tenant, &login, 403, "email_missing").await;
}

async fn unverified_email_is_refused(store: Store) {
    let idp = OAuth2Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    // Nothing in the mapping marks an email verified.
    let tenant = tenant_with_oauth2(
        &gh,
        idp,
        json!({ "subject": "/id", "email": "/email", "name": "/name" }),
    )
    .await;
    let login = idp
        .account(json!({
            "id": unique("id-"),
            "email": format!("{}@good.test", unique("u-")),
            "verified": "true",
        }))
        .await;
    refused_login(&gh, idp, &tenant, &login, 403, "email_not_verified").await;

    // A pointer to a string "true" does not verify it either: only a JSON true counts.
    let tenant = tenant_with_oauth2(
        &gh,
        idp,
        json!({ "subject": "/id", "email": "/email", "email_verified": "/verified" }),
    )
    .await;
    refused_login(&gh, idp, &tenant, &login, 403, "email_not_verified").await;
}

async fn disallowed_email_domain_is_refused(store: Store) {
    let idp = OAuth2Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_oauth2(&gh, idp, facebook_mapping()).await;
    for email in ["a@evil.test", "a@good.test.evil.test"] {
        let login = idp
            .account(json!({ "id": unique("id-"), "name": "Eve", "email": email }))
            .await;
        refused_login(&gh, idp, &tenant, &login, 403, "email_domain_not_allowed").await;
    }
}

async fn tampered_state_is_refused(store: Store) {
    let idp = OAuth2Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_oauth2(&gh, idp, facebook_mapping()).await;
    let login = idp
        .account(json!({ "id": unique("id-"), "email": format!("{}@good.test", unique("s-")) }))
        .await;
    let browser = browser();
    let callback = login_via_oauth2(&browser, &gh, idp, &tenant.slug, &login).await;
    let state = query_param(&callback, "state").expect("state");
    let tampered = with_query_param(&callback, "state", Some(&flip_one_char(&state)));
    let page = call_callback(&browser, &tampered).await;
    let attempt = page.assert_error_page(&[400]);
    gh.assert_no_session(&browser).await;
    gh.assert_login_failed(&tenant.slug, "state_mismatch", Some(&attempt))
        .await;
    // The provider never saw this code come back.
    let code = query_param(&callback, "code").expect("code");
    assert!(!gh.log_text().contains(&code), "the code reached the log");
    let exchanged = idp
        .token_requests()
        .await
        .iter()
        .any(|r| r["client_id"] == json!(tenant.client_id));
    assert!(!exchanged, "a tampered callback must not be exchanged");
}
