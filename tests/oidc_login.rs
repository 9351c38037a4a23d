//! OpenID Connect sign-in, black box: a real IdP (tests/idp), a real `gatehouse serve`, HTTP
//! only. Every scenario runs on SQLite and on Postgres (`sqlite::NAME`, `postgres::NAME`), in
//! its own Gatehouse process with its own tenants and its own IdP client.

#[macro_use]
mod common;

use common::*;
use serde_json::{json, Value};

on_both_stores!(
    tenant_pages_and_admin_api,
    jit_user_login_succeeds,
    second_login_finds_the_same_user,
    disallowed_email_domains_are_refused,
    unverified_email_is_refused,
    missing_email_is_refused,
    tampered_state_is_refused,
    missing_state_is_refused,
    replayed_callback_is_refused,
    state_of_another_tenant_is_refused,
    callback_from_another_browser_is_refused,
    idp_error_is_reported,
    unreachable_idp_is_reported,
    private_addresses_are_refused,
    public_client_login_succeeds,
    audit_api_needs_the_token_and_filters,
    logout_ends_the_session,
    connection_edits_are_checked,
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

fn position(events: &[Value], kind: &str) -> usize {
    events
        .iter()
        .position(|e| e["type"] == json!(kind))
        .unwrap_or_else(|| panic!("no {kind} event"))
}

/// An IdP account with these email claims under a fresh login id; returns the login id.
async fn account(idp: &Idp, email: Option<&str>, email_verified: Value) -> String {
    let login = unique("user-");
    let mut claims = json!({ "sub": format!("{login}-sub"), "name": format!("Name of {login}") });
    if let Some(email) = email {
        claims["email"] = json!(email);
    }
    if !email_verified.is_null() {
        claims["email_verified"] = email_verified;
    }
    idp.set_account(&login, claims).await;
    login
}

/// A full, successful login in a fresh browser; returns the browser and its session.
async fn successful_login(
    gh: &Gatehouse,
    idp: &Idp,
    tenant: &Tenant,
    login: &str,
) -> (reqwest::Client, Value) {
    let browser = browser();
    let callback = login_via_idp(&browser, gh, idp, &tenant.slug, login).await;
    let page = call_callback(&browser, &callback).await;
    assert_login_succeeded(&page, tenant);
    let session = gh.assert_session(&browser).await;
    (browser, session)
}

/// A login whose callback must be refused with this status and reason; checks the page, that
/// no session exists and the login.failed event (matched by the page's attempt id).
async fn refused_login(
    gh: &Gatehouse,
    idp: &Idp,
    tenant: &Tenant,
    login: &str,
    statuses: &[u16],
    reason: &str,
) -> Value {
    let browser = browser();
    let callback = login_via_idp(&browser, gh, idp, &tenant.slug, login).await;
    let page = call_callback(&browser, &callback).await;
    let attempt = page.assert_error_page(statuses);
    gh.assert_no_session(&browser).await;
    gh.assert_login_failed(&tenant.slug, reason, Some(&attempt))
        .await
}

// ---------------------------------------------------------------------------------------------
// scenarios

async fn tenant_pages_and_admin_api(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    get(&client(), &gh.url("/healthz"))
        .await
        .assert_status(200);

    // The admin API needs the bearer token, validates and refuses duplicates.
    let slug = unique("t-");
    let body =
        json!({ "slug": slug, "display_name": "Acme", "app_url": "https://app.acme.test/home" });
    let url = gh.url("/api/v1/tenants");
    let anonymous = client()
        .post(&url)
        .json(&body)
        .send()
        .await
        .expect("POST tenants");
    Page::read(&url, anonymous)
        .await
        .assert_problem(401, None);
    let wrong = client()
        .post(&url)
        .bearer_auth("not-the-token")
        .json(&body)
        .send()
        .await
        .expect("POST tenants");
    Page::read(&url, wrong)
        .await
        .assert_problem(401, None);
    gh.admin_post(
        "/api/v1/tenants",
        &json!({ "slug": "Not A Slug!", "display_name": "X", "app_url": "https://x.test/" }),
    )
    .await
    .assert_problem(422, Some("/slug"));
    let tenant = tenant_with_idp(&gh, idp, false).await;
    gh.admin_post(
        "/api/v1/tenants",
        &json!({ "slug": tenant.slug, "display_name": "Again", "app_url": "https://x.test/" }),
    )
    .await
    .assert_problem(409, None);

    // A connection config is validated field by field.
    gh.try_put_oidc_connection(
        &tenant.slug,
        "broken",
        "Broken",
        json!({ "discovery_url": idp.discovery_url(), "allowed_domains": ["good.test"] }),
    )
    .await
    .assert_problem(422, Some("/config/client_id"));

    // Reading a connection back never shows the secret.
    let page = gh
        .admin_get(&format!(
            "/api/v1/tenants/{}/connections/{}",
            tenant.slug, tenant.connection_id
        ))
        .await;
    page.assert_status(200);
    let secret = tenant
        .client_secret
        .as_deref()
        .expect("confidential client");
    assert!(
        !page.body.contains(secret),
        "GET connection leaked the secret: {}",
        page.describe()
    );
    let connection = page.json();
    assert_eq!(
        connection["config"]["client_secret_set"],
        json!(true),
        "{}",
        page.describe()
    );
    assert_eq!(
        connection["config"]["client_id"],
        json!(tenant.client_id),
        "{}",
        page.describe()
    );
    assert_eq!(
        connection["setup"]["scopes"],
        json!("openid profile email"),
        "{}",
        page.describe()
    );

    // The browser pages.
    let page = get(&browser(), &gh.url(&format!("/{}", tenant.slug))).await;
    page.assert_status(200);
    assert!(
        page.content_type()
            .starts_with("text/html"),
        "{}",
        page.describe()
    );
    assert!(
        page.body
            .contains(&format!("Sign in with {}", tenant.label)),
        "the choice page should offer the connection: {}",
        page.describe()
    );
    let page = get(
        &browser(),
        &gh.url(&format!("/{}?login=standard", tenant.slug)),
    )
    .await;
    page.assert_status(200);
    assert!(
        page.body
            .to_lowercase()
            .contains("not enabled"),
        "standard login should say it is not enabled: {}",
        page.describe()
    );
    let page = get(&browser(), &gh.url(&format!("/{}", unique("no-such-")))).await;
    page.assert_status(404);
    assert!(
        page.content_type()
            .starts_with("text/html"),
        "{}",
        page.describe()
    );
    // A made-up connection id is a plain 404 and records no attempt under that id.
    let page = get(
        &browser(),
        &gh.url(&format!("/{}/sso/no-such-connection/start", tenant.slug)),
    )
    .await;
    page.assert_status(404);

    let events = gh
        .audit_until(
            &tenant.slug,
            &[],
            "tenant.created and tenant.connection.configured",
            |ev| has_type(ev, "tenant.created") && has_type(ev, "tenant.connection.configured"),
        )
        .await;
    assert!(
        !events
            .iter()
            .any(|e| e.to_string().contains("no-such-connection")),
        "a made-up connection id was recorded: {events:#?}"
    );
    let configured = one(&events, "tenant.connection.configured");
    assert_eq!(
        configured["connection_id"],
        json!(tenant.connection_id),
        "{configured:#}"
    );
    assert!(
        !serde_json::to_string(&events)
            .unwrap()
            .contains(secret),
        "the audit log holds the client secret"
    );
}

async fn jit_user_login_succeeds(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    let login = unique("alice-");
    let email = format!("{login}@good.test");
    idp.set_account(
        &login,
        json!({ "sub": format!("{login}-sub"), "email": email, "email_verified": true, "name": "Alice Example" }),
    )
    .await;

    let browser = browser();
    let callback = login_via_idp(&browser, &gh, idp, &tenant.slug, &login).await;
    assert!(
        callback.starts_with(&gh.callback_url(&tenant.slug, &tenant.connection_id)),
        "callback URL {callback}"
    );
    assert!(
        query_param(&callback, "code").is_some(),
        "no code in {callback}"
    );
    assert!(
        query_param(&callback, "state").is_some(),
        "no state in {callback}"
    );
    assert_eq!(
        query_param(&callback, "iss").as_deref(),
        Some(idp.issuer.as_str()),
        "iss in {callback}"
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
    assert!(!user_id.is_empty());

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
    let session_started = one(&events, "session.started");
    assert!(
        of_type(&events, "login.failed").is_empty(),
        "unexpected login.failed: {events:#?}"
    );

    assert_eq!(
        started["connection_id"],
        json!(tenant.connection_id),
        "{started:#}"
    );
    assert_eq!(started["protocol"], json!("oidc"), "{started:#}");
    assert_eq!(provisioned["user_id"], json!(user_id), "{provisioned:#}");
    assert_eq!(provisioned["email"], json!(email), "{provisioned:#}");
    assert_eq!(succeeded["outcome"]["result"], json!("succeeded"), "{succeeded:#}");
    assert_eq!(succeeded["email"], json!(email), "{succeeded:#}");
    assert_eq!(succeeded["user_id"], json!(user_id), "{succeeded:#}");
    assert_eq!(
        succeeded["connection_id"],
        json!(tenant.connection_id),
        "{succeeded:#}"
    );
    assert_eq!(succeeded["protocol"], json!("oidc"), "{succeeded:#}");
    assert_eq!(succeeded["tenant"], json!(tenant.slug), "{succeeded:#}");
    assert!(succeeded["attempt_id"].is_string(), "{succeeded:#}");
    assert_eq!(
        succeeded["attempt_id"], started["attempt_id"],
        "one attempt id per login: {events:#?}"
    );
    assert_eq!(
        session_started["user_id"],
        json!(user_id),
        "{session_started:#}"
    );
    // Newest first: the attempt started before it was provisioned, succeeded, and had a session.
    let start = position(&events, "login.started");
    for later in ["user.provisioned", "login.succeeded", "session.started"] {
        assert!(
            position(&events, later) < start,
            "{later} should be newer than login.started: {events:#?}"
        );
    }
}

async fn second_login_finds_the_same_user(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    let login = account(
        idp,
        Some(&format!("{}@good.test", unique("bob-"))),
        json!(true),
    )
    .await;

    let (_first, one_session) = successful_login(&gh, idp, &tenant, &login).await;
    let (_second, two_session) = successful_login(&gh, idp, &tenant, &login).await;
    assert_eq!(
        one_session["user_id"], two_session["user_id"],
        "a second login must find the same user"
    );

    let events = gh
        .audit_until(&tenant.slug, &[], "two login.succeeded", |ev| {
            of_type(ev, "login.succeeded").len() == 2
        })
        .await;
    assert_eq!(
        of_type(&events, "user.provisioned").len(),
        1,
        "provisioned twice: {events:#?}"
    );
    assert_eq!(of_type(&events, "session.started").len(), 2, "{events:#?}");
    for e in of_type(&events, "login.succeeded") {
        assert_eq!(e["user_id"], one_session["user_id"], "{e:#}");
    }
}

async fn disallowed_email_domains_are_refused(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    for email in [
        "a@evil.test",
        "a@evil.test@good.test",
        "a@good.test.evil.test",
        "a@GOOD.test.evil.test",
    ] {
        let login = account(idp, Some(email), json!(true)).await;
        let event = refused_login(
            &gh,
            idp,
            &tenant,
            &login,
            &[403],
            "email_domain_not_allowed",
        )
        .await;
        assert!(
            event["user_id"].is_null(),
            "a refused login has no user: {event:#}"
        );
    }
    let events = gh.audit(&tenant.slug, &[]).await;
    assert!(
        !has_type(&events, "user.provisioned"),
        "a refused login provisioned a user: {events:#?}"
    );
    assert!(
        !has_type(&events, "session.started"),
        "a refused login started a session: {events:#?}"
    );
}

async fn unverified_email_is_refused(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    for verified in [json!(false), Value::Null] {
        let login = account(idp, Some(&format!("{}@good.test", unique("u-"))), verified).await;
        refused_login(&gh, idp, &tenant, &login, &[403], "email_not_verified").await;
    }
    // OIDC Core 5.1 types email_verified as a boolean: an ID token carrying the string "true"
    // is malformed, and openidconnect refuses to parse it, so the whole token is refused.
    let login = account(idp, Some(&format!("{}@good.test", unique("u-"))), json!("true")).await;
    refused_login(&gh, idp, &tenant, &login, &[400], "id_token_invalid").await;
    let events = gh.audit(&tenant.slug, &[]).await;
    assert!(!has_type(&events, "user.provisioned"), "{events:#?}");
}

async fn missing_email_is_refused(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    let login = account(idp, None, Value::Null).await;
    refused_login(&gh, idp, &tenant, &login, &[403], "email_missing").await;
}

async fn tampered_state_is_refused(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    let browser = browser();
    let callback = login_via_idp(&browser, &gh, idp, &tenant.slug, &unique("s-")).await;
    let state = query_param(&callback, "state").expect("state");
    let tampered = with_query_param(&callback, "state", Some(&flip_one_char(&state)));
    let page = call_callback(&browser, &tampered).await;
    let attempt = page.assert_error_page(&[400]);
    gh.assert_no_session(&browser).await;
    gh.assert_login_failed(&tenant.slug, "state_mismatch", Some(&attempt))
        .await;
}

async fn missing_state_is_refused(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    let browser = browser();
    let callback = login_via_idp(&browser, &gh, idp, &tenant.slug, &unique("s-")).await;
    let page = call_callback(&browser, &with_query_param(&callback, "state", None)).await;
    let attempt = page.assert_error_page(&[400]);
    gh.assert_no_session(&browser).await;
    gh.assert_login_failed(&tenant.slug, "state_missing", Some(&attempt))
        .await;
}

async fn replayed_callback_is_refused(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    let browser = browser();
    let callback = login_via_idp(&browser, &gh, idp, &tenant.slug, &unique("r-")).await;
    assert_login_succeeded(&call_callback(&browser, &callback).await, &tenant);
    let first = gh.assert_session(&browser).await;

    let page = call_callback(&browser, &callback).await;
    let attempt = page.assert_error_page(&[400]);
    gh.assert_login_failed(&tenant.slug, "state_reused", Some(&attempt))
        .await;

    let still = gh.assert_session(&browser).await;
    assert_eq!(
        still["user_id"], first["user_id"],
        "the first session must survive the replay"
    );

    // The same replay from another browser is refused too and gets no session.
    let other = common::browser();
    let page = call_callback(&other, &callback).await;
    page.assert_error_page(&[400]);
    gh.assert_no_session(&other).await;
    let events = gh
        .audit(&tenant.slug, &[("type", "login.succeeded")])
        .await;
    assert_eq!(
        events.len(),
        1,
        "only the first callback may succeed: {events:#?}"
    );
}

async fn state_of_another_tenant_is_refused(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let a = tenant_with_idp(&gh, idp, false).await;
    let b = tenant_with_idp(&gh, idp, false).await;
    let browser = browser();
    let callback_a = login_via_idp(&browser, &gh, idp, &a.slug, &unique("x-")).await;
    let at_b = with_path(
        &callback_a,
        &format!("/{}/sso/{}/callback", b.slug, b.connection_id),
    );
    let page = call_callback(&browser, &at_b).await;
    let attempt = page.assert_error_page(&[400]);
    gh.assert_no_session(&browser).await;

    // The refusal is recorded at the tenant whose callback was called (or at the one that
    // issued the state): accept either, but it must be there.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let mut found = false;
        for slug in [&b.slug, &a.slug] {
            let events = gh
                .audit(slug, &[("type", "login.failed")])
                .await;
            found |= events.iter().any(|e| {
                e["outcome"]["reason"] == json!("state_mismatch") && e["attempt_id"] == json!(attempt)
            });
        }
        if found {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no login.failed state_mismatch for attempt {attempt} at {} or {}:\nB: {:#?}\nA: {:#?}",
            b.slug,
            a.slug,
            gh.audit(&b.slug, &[]).await,
            gh.audit(&a.slug, &[]).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // The state presented at the wrong tenant stays usable where it was issued.
    let page = call_callback(&browser, &callback_a).await;
    assert_login_succeeded(&page, &a);
    let succeeded_b = gh
        .audit(&b.slug, &[("type", "login.succeeded")])
        .await;
    assert!(succeeded_b.is_empty(), "{succeeded_b:#?}");
}

async fn callback_from_another_browser_is_refused(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    let victim = browser();
    let callback = login_via_idp(&victim, &gh, idp, &tenant.slug, &unique("v-")).await;

    // A browser without the gatehouse_flow cookie of this login (a login CSRF attempt).
    let attacker = browser();
    let page = call_callback(&attacker, &callback).await;
    let attempt = page.assert_error_page(&[400]);
    gh.assert_no_session(&attacker).await;
    gh.assert_login_failed(&tenant.slug, "state_mismatch", Some(&attempt))
        .await;
    let events = gh
        .audit(&tenant.slug, &[("type", "login.succeeded")])
        .await;
    assert!(events.is_empty(), "{events:#?}");

    // Whoever saw the callback URL cannot spoil the login of the browser that started it.
    let page = call_callback(&victim, &callback).await;
    assert_login_succeeded(&page, &tenant);
    gh.assert_session(&victim).await;
}

async fn idp_error_is_reported(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    let browser = browser();
    let authorize = start_login(&browser, &gh, &tenant.slug, idp).await;
    let callback = idp_abort(&browser, &gh, idp, &authorize).await;
    assert!(query_param(&callback, "code").is_none(), "{callback}");
    let page = call_callback(&browser, &callback).await;
    let attempt = page.assert_error_page(&[400, 502]);
    gh.assert_no_session(&browser).await;
    let event = gh
        .assert_login_failed(&tenant.slug, "idp_error", Some(&attempt))
        .await;
    assert_eq!(
        event["connection_id"],
        json!(tenant.connection_id),
        "{event:#}"
    );
}

async fn unreachable_idp_is_reported(store: Store) {
    let gh = Gatehouse::start(store).await;
    let slug = unique("t-");
    gh.create_tenant(&slug, "Down", "https://app.down.test/")
        .await;
    let closed = free_port();
    gh.put_oidc_connection(
        &slug,
        "down",
        "Down IdP",
        json!({
            "discovery_url": format!("http://127.0.0.1:{closed}/.well-known/openid-configuration"),
            "client_id": "client-of-a-dead-idp",
            "client_secret": "s3cr3t-of-a-dead-idp",
            "allowed_domains": ["good.test"],
        }),
    )
    .await;
    let browser = browser();
    let page = get(&browser, &gh.url(&format!("/{slug}?login=sso"))).await;
    let attempt = page.assert_error_page(&[502]);
    gh.assert_no_session(&browser).await;
    gh.assert_login_failed(&slug, "idp_unreachable", Some(&attempt))
        .await;
}

async fn private_addresses_are_refused(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start_with(
        store,
        Options {
            allow_private_networks: false,
            ..Options::default()
        },
    )
    .await;
    let slug = unique("t-");
    gh.create_tenant(&slug, "Private", "https://app.private.test/")
        .await;
    let (client_id, client_secret) = idp
        .register_client(&[gh.callback_url(&slug, "okta")], false)
        .await;
    let config = |discovery_url: String| {
        json!({
            "discovery_url": discovery_url,
            "client_id": client_id,
            "client_secret": client_secret,
            "allowed_domains": ["good.test"],
        })
    };

    // A literal loopback address is refused when the connection is saved.
    for host in ["127.0.0.1".to_string(), "[::1]".to_string()] {
        let url = format!(
            "http://{host}:{}/.well-known/openid-configuration",
            idp.port
        );
        gh.try_put_oidc_connection(&slug, "okta", "Okta", config(url))
            .await
            .assert_problem(422, Some("/config/discovery_url"));
    }

    // Outside the local testing mode, plain http is refused when the connection is saved.
    let url = "http://idp.example.com/.well-known/openid-configuration".to_owned();
    gh.try_put_oidc_connection(&slug, "okta", "Okta", config(url))
        .await
        .assert_problem(422, Some("/config/discovery_url"));
    // The same holds for a SAML IdP's metadata URL, whose certificates decide whom we trust.
    gh.admin_put(
        &format!("/api/v1/tenants/{slug}/connections/saml"),
        &json!({ "protocol": "saml", "label": "IdP", "config": {
            "idp_metadata_url": "http://idp.example.com/metadata",
            "allowed_domains": ["example.com"],
        }}),
    )
    .await
    .assert_problem(422, Some("/config/idp_metadata_url"));

    // A host name is only known to be private once resolved: saved, then blocked at login.
    let url = format!(
        "https://localhost:{}/.well-known/openid-configuration",
        idp.port
    );
    gh.put_oidc_connection(&slug, "okta", "Okta", config(url))
        .await;
    let browser = browser();
    let page = get(&browser, &gh.url(&format!("/{slug}?login=sso"))).await;
    assert!(
        !page
            .location()
            .is_some_and(|l| l.contains(&format!(":{}/", idp.port))),
        "Gatehouse talked to a private address: {}",
        page.describe()
    );
    let attempt = page.assert_error_page(&[400, 403, 502]);
    gh.assert_no_session(&browser).await;
    gh.assert_login_failed(&slug, "destination_blocked", Some(&attempt))
        .await;
}

async fn public_client_login_succeeds(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_idp(&gh, idp, true).await;
    assert!(tenant.client_secret.is_none());
    let email = format!("{}@good.test", unique("pub-"));
    let login = account(idp, Some(&email), json!(true)).await;
    let (_browser, session) = successful_login(&gh, idp, &tenant, &login).await;
    assert_eq!(session["email"], json!(email), "{session:#}");
    gh.audit_until(
        &tenant.slug,
        &[("type", "login.succeeded")],
        "login.succeeded",
        |ev| ev.len() == 1,
    )
    .await;
}

async fn audit_api_needs_the_token_and_filters(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    let good_email = format!("{}@good.test", unique("g-"));
    let good = account(idp, Some(&good_email), json!(true)).await;
    let evil_email = format!("{}@evil.test", unique("e-"));
    let evil = account(idp, Some(&evil_email), json!(true)).await;
    successful_login(&gh, idp, &tenant, &good).await;
    refused_login(&gh, idp, &tenant, &evil, &[403], "email_domain_not_allowed").await;
    let all = gh
        .audit_until(&tenant.slug, &[], "the login events", |ev| {
            has_type(ev, "login.succeeded")
                && has_type(ev, "login.failed")
                && has_type(ev, "session.started")
        })
        .await;

    // The bearer token is required.
    let url = gh.url(&format!("/api/v1/tenants/{}/audit/events", tenant.slug));
    get(&client(), &url)
        .await
        .assert_problem(401, None);
    let wrong = client()
        .get(&url)
        .bearer_auth("wrong")
        .send()
        .await
        .expect("GET audit");
    Page::read(&url, wrong)
        .await
        .assert_problem(401, None);

    // Shape and order: newest first.
    for e in &all {
        for key in [
            "schema",
            "id",
            "position",
            "cursor",
            "time",
            "tenant",
            "type",
            "actor",
            "target",
            "outcome",
            "protocol",
            "connection_id",
            "email",
            "user_id",
            "client_ip",
            "user_agent",
            "attempt_id",
            "request_id",
        ] {
            assert!(e.get(key).is_some(), "audit event without {key:?}: {e:#}");
        }
        for (object, key) in [
            ("actor", "kind"),
            ("actor", "id"),
            ("target", "kind"),
            ("target", "id"),
            ("outcome", "result"),
            ("outcome", "reason"),
            ("outcome", "detail"),
        ] {
            assert!(e[object].get(key).is_some(), "audit event without {object}.{key}: {e:#}");
        }
        assert_eq!(e["schema"], json!("gatehouse.audit.event/1"), "{e:#}");
        assert_eq!(e["tenant"], json!(tenant.slug), "{e:#}");
    }
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = all
        .iter()
        .map(|e| {
            chrono::DateTime::parse_from_rfc3339(
                e["time"]
                    .as_str()
                    .expect("time is a string"),
            )
            .unwrap_or_else(|err| panic!("time is not RFC 3339 ({err}): {e:#}"))
        })
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "events are not newest first: {all:#?}"
    );
    let failed = one(&all, "login.failed");
    assert!(
        failed["client_ip"]
            .as_str()
            .is_some_and(|ip| ip.contains("127.0.0.1")),
        "{failed:#}"
    );
    assert!(failed["user_agent"].is_string(), "{failed:#}");

    // type= prefix ("login.") and exact.
    let logins = gh
        .audit(&tenant.slug, &[("type", "login.")])
        .await;
    let kinds: std::collections::BTreeSet<&str> = logins
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(
        kinds,
        ["login.failed", "login.started", "login.succeeded"]
            .into_iter()
            .collect(),
        "type=login. should give exactly the login.* events: {logins:#?}"
    );
    assert_eq!(
        logins.len(),
        all.iter()
            .filter(|e| e["type"]
                .as_str()
                .unwrap_or("")
                .starts_with("login."))
            .count()
    );
    let exact = gh
        .audit(&tenant.slug, &[("type", "login.failed")])
        .await;
    assert!(
        exact.len() == 1 && exact[0]["type"] == json!("login.failed"),
        "{exact:#?}"
    );
    let none = gh
        .audit(&tenant.slug, &[("type", "login")])
        .await;
    assert!(
        none.is_empty(),
        "type=login (no dot) is an exact match and matches nothing: {none:#?}"
    );

    // outcome=
    let failures = gh
        .audit(&tenant.slug, &[("outcome", "failed")])
        .await;
    assert!(
        !failures.is_empty()
            && failures
                .iter()
                .all(|e| e["outcome"]["result"] == json!("failed")),
        "{failures:#?}"
    );
    assert!(has_type(&failures, "login.failed"), "{failures:#?}");
    let successes = gh
        .audit(&tenant.slug, &[("outcome", "succeeded")])
        .await;
    assert!(has_type(&successes, "login.succeeded"), "{successes:#?}");
    assert!(
        successes
            .iter()
            .all(|e| e["outcome"]["result"] == json!("succeeded")),
        "{successes:#?}"
    );

    // email=
    let by_good = gh
        .audit(&tenant.slug, &[("email", &good_email)])
        .await;
    assert!(has_type(&by_good, "login.succeeded"), "{by_good:#?}");
    assert!(
        by_good
            .iter()
            .all(|e| e["email"] == json!(good_email)),
        "{by_good:#?}"
    );
    let by_evil = gh
        .audit(&tenant.slug, &[("email", &evil_email)])
        .await;
    assert!(has_type(&by_evil, "login.failed"), "{by_evil:#?}");
    assert!(
        by_evil
            .iter()
            .all(|e| e["email"] == json!(evil_email)),
        "{by_evil:#?}"
    );

    // Combined filters.
    let combined = gh
        .audit(&tenant.slug, &[("type", "login."), ("outcome", "failed")])
        .await;
    assert!(
        combined.len() == 1 && combined[0]["outcome"]["reason"] == json!("email_domain_not_allowed"),
        "{combined:#?}"
    );

    // Paging: limit=1 walked with next_cursor gives every event once, in the same order.
    let first = gh
        .audit_page(&tenant.slug, &[("limit", "1")])
        .await;
    first.assert_status(200);
    let body = first.json();
    assert_eq!(
        body["events"].as_array().map(Vec::len),
        Some(1),
        "{}",
        first.describe()
    );
    assert!(
        body["next_cursor"].is_string(),
        "more events should give a cursor: {}",
        first.describe()
    );
    let paged = gh
        .audit(&tenant.slug, &[("limit", "1")])
        .await;
    let ids = |events: &[Value]| {
        events
            .iter()
            .map(|e| e["id"].clone())
            .collect::<Vec<_>>()
    };
    let all_now = gh.audit(&tenant.slug, &[]).await;
    assert_eq!(
        ids(&paged),
        ids(&all_now),
        "paging with limit=1 differs from one page"
    );

    // Another tenant's log is its own.
    let other = unique("t-");
    gh.create_tenant(&other, "Other", "https://other.test/")
        .await;
    let theirs = gh
        .audit(&other, &[("type", "login.")])
        .await;
    assert!(theirs.is_empty(), "{theirs:#?}");
}

async fn logout_ends_the_session(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    let login = account(
        idp,
        Some(&format!("{}@good.test", unique("l-"))),
        json!(true),
    )
    .await;
    let (browser, session) = successful_login(&gh, idp, &tenant, &login).await;
    gh.logout(&browser, &tenant.slug).await;
    gh.assert_no_session(&browser).await;
    let events = gh
        .audit_until(&tenant.slug, &[], "session.ended", |ev| {
            has_type(ev, "session.ended")
        })
        .await;
    let ended = one(&events, "session.ended");
    assert_eq!(ended["user_id"], session["user_id"], "{ended:#}");

    // A logout posted from another origin (another port, a sibling subdomain) is refused.
    let (browser, _) = successful_login(&gh, idp, &tenant, &login).await;
    let forged = browser
        .post(gh.url(&format!("/{}/logout", tenant.slug)))
        .header("Origin", "http://127.0.0.1:1")
        .send()
        .await
        .expect("logout request");
    assert_eq!(forged.status().as_u16(), 403);
    gh.assert_session(&browser).await;
    let forged = browser
        .post(gh.url(&format!("/{}/logout", tenant.slug)))
        .header("Sec-Fetch-Site", "same-site")
        .send()
        .await
        .expect("logout request");
    assert_eq!(forged.status().as_u16(), 403);
    gh.assert_session(&browser).await;
}

async fn connection_edits_are_checked(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    let path = format!("/api/v1/tenants/{}/connections/{}", tenant.slug, tenant.connection_id);

    // Omitting the secret keeps it while the identity provider and client stay the same...
    let same = json!({"protocol": "oidc", "label": "Renamed", "config": {
        "discovery_url": idp.discovery_url(), "client_id": tenant.client_id,
        "allowed_domains": ["good.test"]}});
    let page = gh.admin_put(&path, &same).await;
    page.assert_status(200);
    assert_eq!(page.json()["config"]["client_secret_set"], json!(true), "{}", page.describe());

    // ...but never follows the connection to another provider or client.
    let moved = json!({"protocol": "oidc", "label": "Moved", "config": {
        "discovery_url": "https://idp.elsewhere.test/.well-known/openid-configuration",
        "client_id": tenant.client_id, "allowed_domains": ["good.test"]}});
    gh.admin_put(&path, &moved).await.assert_problem(422, Some("/config/client_secret"));
    let other_client = json!({"protocol": "oidc", "label": "Moved", "config": {
        "discovery_url": idp.discovery_url(), "client_id": "someone-else",
        "allowed_domains": ["good.test"]}});
    gh.admin_put(&path, &other_client).await.assert_problem(422, Some("/config/client_secret"));

    // A top-level domain would let anyone in; bidi overrides would disguise a label.
    let tld = json!({"protocol": "oidc", "label": "TLD", "config": {
        "discovery_url": idp.discovery_url(), "client_id": tenant.client_id,
        "allowed_domains": ["good.test", "com"]}});
    gh.admin_put(&path, &tld).await.assert_problem(422, Some("/config/allowed_domains/1"));
    let bidi = json!({"protocol": "oidc", "label": "Acme\u{202E}moc", "config": {
        "discovery_url": idp.discovery_url(), "client_id": tenant.client_id,
        "allowed_domains": ["good.test"]}});
    gh.admin_put(&path, &bidi).await.assert_problem(422, Some("/label"));

    // The email is kept in the form that was checked against the allowed domains.
    let login = account(idp, Some(&format!("{}@GOOD.Test.", unique("Mixed-"))), json!(true)).await;
    let (_, session) = successful_login(&gh, idp, &tenant, &login).await;
    let email = session["email"].as_str().expect("email");
    assert!(email.ends_with("@good.test"), "{session:#}");
}
