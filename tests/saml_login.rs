//! SAML 2.0 sign-in, black box: a real SAML IdP (tests/saml-idp, saml-idp on Node), a real
//! `gatehouse serve`, HTTP only. Every scenario runs on SQLite and on Postgres
//! (`sqlite::NAME`, `postgres::NAME`), in its own Gatehouse process with its own tenants.
//!
//! The IdP has global settings (audience, signing mode); `SamlIdp::sign_in` serialises the
//! IdP side of every login behind one async mutex, so scenarios may run in parallel.
//!
//! The contract these tests hold Gatehouse to:
//! - `PUT /api/v1/tenants/{slug}/connections/{id}` with `protocol: "saml"` and a config of
//!   `idp_entity_id`, `sso_url`, `certificates` (PEM list), `allowed_domains` -- or
//!   `idp_metadata_xml` and `allowed_domains` -- answers 200 with `setup.acs_url` =
//!   `{public}/{slug}/sso/{id}/acs` and `setup.sp_entity_id` = `setup.metadata_url` =
//!   `{public}/{slug}/sso/{id}/metadata`; no certificate is a 422 on `/config/certificates`.
//! - `GET {metadata_url}`: 200 `application/samlmetadata+xml`, entityID = sp_entity_id,
//!   AssertionConsumerService Location = acs_url.
//! - `GET /{slug}?login=sso`: 302 to the IdP's SSO URL with SAMLRequest and RelayState, and
//!   the `gatehouse_flow` cookie. The AuthnRequest's Issuer is the sp_entity_id (the IdP uses
//!   it as the audience) and the IdP posts to the acs_url.
//! - `POST {acs_url}` (SAMLResponse, RelayState): 303 to `{acs_url}/continue?handle=...`;
//!   following it with the browser's cookies: 302 to the app URL with `gatehouse_session`, or
//!   an HTML error page with `<code id="attempt-id">UUID</code>` and a `login.failed` audit
//!   event with that attempt id and a reason code (a refusal may also come straight from the
//!   POST).
//! - Audit events as for OIDC, with `protocol: "saml"`.

#[macro_use]
mod common;

use common::saml::*;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

on_both_stores!(
    connection_config_and_sp_metadata,
    sp_initiated_login_provisions_and_finds_the_user,
    metadata_import_login_succeeds,
    certificate_rollover,
    disallowed_email_domain_is_refused,
    replayed_response_is_refused,
    unsolicited_response_is_refused,
    tampered_response_is_refused,
    response_for_another_tenant_is_refused,
);

// ---------------------------------------------------------------------------------------------
// helpers local to these scenarios

const CONNECTION: &str = "acme-saml";
const LABEL: &str = "Acme SAML";


fn acs_url(gh: &Gatehouse, slug: &str, id: &str) -> String {
    gh.url(&format!("/{slug}/sso/{id}/acs"))
}

fn sp_entity_id(gh: &Gatehouse, slug: &str, id: &str) -> String {
    gh.url(&format!("/{slug}/sso/{id}/metadata"))
}

/// The config that trusts these certificates of the shared IdP, for `good.test`.
fn trust(idp: &SamlIdp, certificates: &[&str]) -> Value {
    json!({
        "idp_entity_id": idp.entity_id(),
        "sso_url": idp.sso_url(),
        "certificates": certificates,
        "allowed_domains": ["good.test"],
    })
}

async fn try_put_saml(gh: &Gatehouse, slug: &str, id: &str, config: Value) -> Page {
    gh.admin_put(
        &format!("/api/v1/tenants/{slug}/connections/{id}"),
        &json!({ "protocol": "saml", "label": LABEL, "config": config }),
    )
    .await
}

/// PUT a SAML connection, asserting 200 and the `setup` block.
async fn put_saml(gh: &Gatehouse, slug: &str, id: &str, config: Value) -> Value {
    let page = try_put_saml(gh, slug, id, config).await;
    page.assert_status(200);
    let connection = page.json();
    assert_eq!(connection["id"], json!(id), "{}", page.describe());
    assert_eq!(connection["protocol"], json!("saml"), "{}", page.describe());
    assert_eq!(connection["label"], json!(LABEL), "{}", page.describe());
    let setup = &connection["setup"];
    assert_eq!(
        setup["acs_url"],
        json!(acs_url(gh, slug, id)),
        "setup.acs_url: {}",
        page.describe()
    );
    assert_eq!(
        setup["sp_entity_id"],
        json!(sp_entity_id(gh, slug, id)),
        "setup.sp_entity_id: {}",
        page.describe()
    );
    assert_eq!(
        setup["metadata_url"],
        json!(sp_entity_id(gh, slug, id)),
        "setup.metadata_url: {}",
        page.describe()
    );
    connection
}

/// A tenant with a unique slug and one SAML connection with this config.
async fn saml_tenant_with(gh: &Gatehouse, config: Value) -> SamlTenant {
    let slug = unique("s-");
    let app_url = format!("https://app.{slug}.test/home");
    gh.create_tenant(&slug, &format!("Tenant {slug}"), &app_url)
        .await;
    put_saml(gh, &slug, CONNECTION, config).await;
    SamlTenant {
        acs_url: acs_url(gh, &slug, CONNECTION),
        sp_entity_id: sp_entity_id(gh, &slug, CONNECTION),
        slug,
        app_url,
        connection_id: CONNECTION.to_string(),
    }
}

/// A tenant trusting the shared IdP's certificate.
async fn saml_tenant(gh: &Gatehouse, idp: &SamlIdp) -> SamlTenant {
    saml_tenant_with(gh, trust(idp, &[idp.certificate_pem()])).await
}

fn profile_at(domain: &str) -> SamlProfile {
    let local = unique("user-");
    let mut profile = SamlProfile::new(
        &format!("{local}@{domain}"),
        "Alice",
        &format!("Example-{local}"),
    );
    profile.groups = vec!["Engineering".into(), "Everyone".into()];
    profile
}

/// `?login=sso` in this browser, then the IdP signs this profile; returns its auto-post
/// (not yet posted). Asserts the AuthnRequest's Issuer and the ACS the IdP posts to.
async fn idp_answer(
    browser: &reqwest::Client,
    gh: &Gatehouse,
    idp: &SamlIdp,
    tenant: &SamlTenant,
    profile: &SamlProfile,
    options: SignInOptions,
) -> SamlPost {
    let sso = start_saml_login(browser, gh, &tenant.slug, idp).await;
    let relay_state = query_param(&sso, "RelayState");
    let options = SignInOptions {
        acs_url_fallback: Some(tenant.acs_url.clone()),
        ..options
    };
    let post = idp
        .sign_in_with(browser, &sso, profile, &options)
        .await;
    assert_eq!(
        post.request.issuer.as_deref(),
        Some(tenant.sp_entity_id.as_str()),
        "the AuthnRequest's Issuer should be the SP entity id ({:?}); redirect was {sso}",
        post.request
    );
    assert_eq!(
        post.acs_url,
        tenant.acs_url,
        "the IdP should post to the connection's ACS URL: {}",
        post.page.describe()
    );
    assert_eq!(
        post.relay_state().map(str::to_string),
        relay_state,
        "the IdP should echo the RelayState: {}",
        post.page.describe()
    );
    post
}

/// Asserts the ACS exchange signed the browser in: the POST answered 303 to the same-site
/// follow-up, which answered 302 to the app with a proper session cookie.
fn assert_acs_succeeded(outcome: &AcsOutcome, tenant: &SamlTenant) {
    assert_eq!(
        outcome.post.status.as_u16(),
        303,
        "the ACS should answer 303 to its follow-up: {}",
        outcome.describe()
    );
    let next = outcome
        .post
        .location()
        .unwrap_or_default();
    assert!(
        next.starts_with(&format!("{}/continue?handle=", tenant.acs_url)),
        "the ACS should redirect to {}/continue?handle=...: {}",
        tenant.acs_url,
        outcome.describe()
    );
    let page = outcome
        .continued
        .as_ref()
        .unwrap_or_else(|| panic!("no follow-up: {}", outcome.describe()));
    assert_eq!(
        page.status.as_u16(),
        302,
        "the follow-up should sign in: {}",
        outcome.describe()
    );
    assert_eq!(
        page.location().as_deref(),
        Some(tenant.app_url.as_str()),
        "the follow-up should go to the app: {}",
        outcome.describe()
    );
    let cookie = page
        .set_cookie("gatehouse_session")
        .unwrap_or_else(|| panic!("no gatehouse_session cookie: {}", outcome.describe()));
    let attrs: Vec<String> = cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    for wanted in ["httponly", "samesite=lax", "path=/"] {
        assert!(
            attrs.iter().any(|a| a == wanted),
            "session cookie without {wanted}: {cookie}\n{}",
            outcome.describe()
        );
    }
}

/// Asserts a refusal: an HTML error page with an attempt id (from the follow-up, or from the
/// POST itself) and no session cookie. Returns the attempt id. The status is checked apart
/// ([`assert_refusal_status`]), after the audit reason, so a failure names the reason too.
fn assert_acs_refused(outcome: &AcsOutcome) -> String {
    outcome.post.assert_no_session_cookie();
    let page = outcome.last();
    assert!(
        !matches!(page.status.as_u16(), 200..=399),
        "expected a refusal: {}",
        outcome.describe()
    );
    assert!(
        page.content_type()
            .starts_with("text/html"),
        "expected an HTML error page: {}",
        outcome.describe()
    );
    page.assert_no_session_cookie();
    page.attempt_id().unwrap_or_else(|| {
        panic!(
            "error page without <code id=\"attempt-id\">UUID</code>: {}",
            outcome.describe()
        )
    })
}

/// The refusal's status is one of these (400: forged, replayed, misdirected or unsolicited
/// answer; 403: the tenant's policy refuses the identity).
fn assert_refusal_status(outcome: &AcsOutcome, statuses: &[u16]) {
    assert!(
        statuses.contains(&outcome.last().status.as_u16()),
        "expected a refusal with status in {statuses:?}: {}",
        outcome.describe()
    );
}

/// Waits for a `login.failed` event of this attempt at any of these tenants whose reason
/// satisfies `accept`; returns it.
async fn failed_event(
    gh: &Gatehouse,
    slugs: &[&str],
    attempt: &str,
    what: &str,
    accept: impl Fn(&str) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        for slug in slugs {
            let events = gh
                .audit(slug, &[("type", "login.failed")])
                .await;
            if let Some(event) = events
                .into_iter()
                .find(|e| e["attempt_id"] == json!(attempt))
            {
                let reason = event["outcome"]["reason"].as_str().unwrap_or("");
                assert!(
                    accept(reason),
                    "login.failed of attempt {attempt} at {slug} has reason {reason:?}, expected {what}: {event:#}"
                );
                assert_eq!(event["outcome"]["result"], json!("failed"), "{event:#}");
                assert_eq!(event["tenant"], json!(slug), "{event:#}");
                return event;
            }
        }
        if Instant::now() > deadline {
            let mut all = String::new();
            for slug in slugs {
                all.push_str(&format!(
                    "{slug}: {}\n",
                    serde_json::to_string_pretty(&gh.audit(slug, &[]).await).unwrap_or_default()
                ));
            }
            panic!("no login.failed ({what}) for attempt {attempt} at {slugs:?}; events:\n{all}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A whole successful login in a fresh browser: returns the browser, its session and the
/// IdP's post (already consumed).
async fn successful_login(
    gh: &Gatehouse,
    idp: &SamlIdp,
    tenant: &SamlTenant,
    profile: &SamlProfile,
) -> (reqwest::Client, Value, SamlPost) {
    let browser = browser();
    let post = idp_answer(&browser, gh, idp, tenant, profile, SignInOptions::default()).await;
    let outcome = post_to_acs(&browser, &post.acs_url, &post.form()).await;
    assert_acs_succeeded(&outcome, tenant);
    let session = gh.assert_session(&browser).await;
    assert_eq!(session["tenant"], json!(tenant.slug), "{session:#}");
    assert_eq!(
        session["connection_id"],
        json!(tenant.connection_id),
        "{session:#}"
    );
    assert_eq!(session["email"], json!(profile.email), "{session:#}");
    assert_eq!(session["name"], json!(profile.name()), "{session:#}");
    (browser, session, post)
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["type"] == json!(kind))
        .collect()
}

fn is_replay_reason(reason: &str) -> bool {
    matches!(
        reason,
        "state_reused" | "assertion_replayed" | "saml_assertion_replayed"
    )
}

// ---------------------------------------------------------------------------------------------
// scenarios

async fn connection_config_and_sp_metadata(store: Store) {
    let idp = SamlIdp::shared().await;
    let gh = Gatehouse::start(store).await;
    let slug = unique("s-");
    gh.create_tenant(&slug, "Acme", &format!("https://app.{slug}.test/home"))
        .await;

    // Without a certificate there is nothing to check signatures with.
    let mut config = trust(idp, &[]);
    try_put_saml(&gh, &slug, CONNECTION, config.clone())
        .await
        .assert_problem(422, Some("/config/certificates"));
    config
        .as_object_mut()
        .expect("object")
        .remove("certificates");
    try_put_saml(&gh, &slug, CONNECTION, config)
        .await
        .assert_problem(422, Some("/config/certificates"));

    let saved = put_saml(&gh, &slug, CONNECTION, trust(idp, &[idp.certificate_pem()])).await;

    // The test IdP's certificate lives two days: the admin view warns, and the warning is
    // recorded once as an audit event (reading the connection again adds none).
    let warned = |connection: &Value| {
        connection["warnings"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w.as_str().is_some_and(|w| w.contains("expires on"))))
    };
    assert!(warned(&saved), "the PUT answer warns about the expiry: {saved:#}");
    let read = gh
        .admin_get(&format!("/api/v1/tenants/{slug}/connections/{CONNECTION}"))
        .await;
    assert!(warned(&read.json()), "GET warns too: {}", read.describe());
    let events = gh
        .audit(&slug, &[("type", "tenant.connection.warning_raised")])
        .await;
    assert_eq!(events.len(), 1, "one warning event: {events:#?}");
    assert!(
        events[0]["outcome"]["detail"].as_str().is_some_and(|d| d.contains("expires on")),
        "{events:#?}"
    );
    assert_eq!(events[0]["connection_id"], json!(CONNECTION), "{events:#?}");

    let metadata_url = sp_entity_id(&gh, &slug, CONNECTION);
    let page = get(&client(), &metadata_url).await;
    page.assert_status(200);
    assert!(
        page.content_type()
            .starts_with("application/samlmetadata+xml"),
        "SP metadata content type: {}",
        page.describe()
    );
    assert_eq!(
        xml_attribute(&page.body, "EntityDescriptor", "entityID").as_deref(),
        Some(metadata_url.as_str()),
        "SP metadata entityID: {}",
        page.describe()
    );
    let acs = acs_url(&gh, &slug, CONNECTION);
    let locations: Vec<String> = xml_tags(&page.body, "AssertionConsumerService")
        .into_iter()
        .filter_map(|attrs| {
            attrs
                .into_iter()
                .find(|(k, _)| k == "Location")
                .map(|(_, v)| v)
        })
        .collect();
    assert!(
        locations.contains(&acs),
        "SP metadata should list the ACS {acs} (found {locations:?}): {}",
        page.describe()
    );

    // No metadata for a connection that does not exist.
    let page = get(&client(), &sp_entity_id(&gh, &slug, "no-such-connection")).await;
    page.assert_status(404);
}

async fn sp_initiated_login_provisions_and_finds_the_user(store: Store) {
    let idp = SamlIdp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = saml_tenant(&gh, idp).await;
    let profile = profile_at("good.test");

    let browser = browser();
    let post = idp_answer(
        &browser,
        &gh,
        idp,
        &tenant,
        &profile,
        SignInOptions::default(),
    )
    .await;
    // What the IdP signed is meant for this connection.
    let xml = post.response_xml();
    assert_eq!(
        xml_text(&xml, "Audience").as_deref(),
        Some(tenant.sp_entity_id.as_str()),
        "{xml}"
    );
    assert_eq!(
        xml_attribute(&xml, "SubjectConfirmationData", "Recipient").as_deref(),
        Some(tenant.acs_url.as_str()),
        "{xml}"
    );
    assert_eq!(
        xml_attribute(&xml, "Response", "InResponseTo"),
        post.request.id,
        "{xml}"
    );

    let outcome = post_to_acs(&browser, &post.acs_url, &post.form()).await;
    assert_acs_succeeded(&outcome, &tenant);
    let session = gh.assert_session(&browser).await;
    assert_eq!(session["tenant"], json!(tenant.slug), "{session:#}");
    assert_eq!(
        session["connection_id"],
        json!(tenant.connection_id),
        "{session:#}"
    );
    assert_eq!(session["email"], json!(profile.email), "{session:#}");
    assert_eq!(session["name"], json!(profile.name()), "{session:#}");
    let user_id = session["user_id"]
        .as_str()
        .expect("user_id is a string")
        .to_string();

    // A second login (another browser, same IdP user) finds the same user.
    let (_second, again, _) = successful_login(&gh, idp, &tenant, &profile).await;
    assert_eq!(
        again["user_id"],
        json!(user_id),
        "a second login must find the same user"
    );
    // The first session still works.
    assert_eq!(gh.assert_session(&browser).await["user_id"], json!(user_id));

    let events = gh
        .audit_until(
            &tenant.slug,
            &[],
            "two login.succeeded and session.started",
            |ev| {
                of_type(ev, "login.succeeded").len() == 2
                    && of_type(ev, "session.started").len() == 2
            },
        )
        .await;
    assert!(
        of_type(&events, "login.failed").is_empty(),
        "unexpected login.failed: {events:#?}"
    );
    let provisioned = of_type(&events, "user.provisioned");
    assert_eq!(provisioned.len(), 1, "one JIT provisioning: {events:#?}");
    assert_eq!(provisioned[0]["user_id"], json!(user_id), "{events:#?}");
    assert_eq!(provisioned[0]["email"], json!(profile.email), "{events:#?}");
    let started = of_type(&events, "login.started");
    assert_eq!(started.len(), 2, "{events:#?}");
    for event in started
        .iter()
        .chain(of_type(&events, "login.succeeded").iter())
    {
        assert_eq!(event["protocol"], json!("saml"), "{event:#}");
        assert_eq!(
            event["connection_id"],
            json!(tenant.connection_id),
            "{event:#}"
        );
        assert_eq!(event["tenant"], json!(tenant.slug), "{event:#}");
        assert!(event["attempt_id"].is_string(), "{event:#}");
    }
    for succeeded in of_type(&events, "login.succeeded") {
        assert_eq!(succeeded["outcome"]["result"], json!("succeeded"), "{succeeded:#}");
        assert_eq!(succeeded["user_id"], json!(user_id), "{succeeded:#}");
        assert_eq!(succeeded["email"], json!(profile.email), "{succeeded:#}");
        assert!(
            started
                .iter()
                .any(|s| s["attempt_id"] == succeeded["attempt_id"]),
            "login.succeeded without its login.started: {events:#?}"
        );
    }
    // Newest first: the oldest login.started comes before the provisioning.
    let oldest_start = events
        .iter()
        .rposition(|e| e["type"] == json!("login.started"))
        .expect("login.started");
    let provision = events
        .iter()
        .position(|e| e["type"] == json!("user.provisioned"))
        .expect("user.provisioned");
    assert!(
        provision < oldest_start,
        "provisioned before any login started? {events:#?}"
    );
}

async fn metadata_import_login_succeeds(store: Store) {
    let idp = SamlIdp::shared().await;
    let gh = Gatehouse::start(store).await;
    let metadata = idp.metadata_xml().await;
    let tenant = saml_tenant_with(
        &gh,
        json!({ "idp_metadata_xml": metadata, "allowed_domains": ["good.test"] }),
    )
    .await;
    let profile = profile_at("good.test");
    successful_login(&gh, idp, &tenant, &profile).await;
    gh.audit_until(
        &tenant.slug,
        &[("type", "login.succeeded")],
        "login.succeeded",
        |ev| {
            ev.iter()
                .any(|e| e["protocol"] == json!("saml") && e["email"] == json!(profile.email))
        },
    )
    .await;

    // The admin generates an SP key, then edits the connection by pasting the same metadata
    // again without the key: the key stays (same IdP), and logins still work.
    let path = format!("/api/v1/tenants/{}/connections/{}", tenant.slug, tenant.connection_id);
    let page = gh
        .admin_put(&path, &json!({"protocol": "saml", "label": "Acme SAML", "config": {
            "idp_metadata_xml": metadata, "allowed_domains": ["good.test"], "sp_key": "generate"}}))
        .await;
    page.assert_status(200);
    assert_eq!(page.json()["config"]["sp_private_key_set"], json!(true), "{}", page.describe());
    let page = gh
        .admin_put(&path, &json!({"protocol": "saml", "label": "Acme SAML (edited)", "config": {
            "idp_metadata_xml": metadata, "allowed_domains": ["good.test"],
            "sp_certificate": page.json()["config"]["sp_certificate"].clone()}}))
        .await;
    page.assert_status(200);
    assert_eq!(page.json()["config"]["sp_private_key_set"], json!(true), "{}", page.describe());
    let sp_metadata = get(&client(), &gh.url(&format!("/{}/sso/{}/metadata", tenant.slug, tenant.connection_id))).await;
    assert!(sp_metadata.body.contains("AuthnRequestsSigned=\"true\""), "{}", sp_metadata.describe());
    successful_login(&gh, idp, &tenant, &profile_at("good.test")).await;
}

async fn certificate_rollover(store: Store) {
    let idp = SamlIdp::shared().await;
    let gh = Gatehouse::start(store).await;
    let unrelated = unrelated_certificate();

    // The new (unrelated) certificate first, the one the IdP signs with second: accepted.
    let tenant = saml_tenant_with(
        &gh,
        trust(idp, &[unrelated.cert_pem.as_str(), idp.certificate_pem()]),
    )
    .await;
    let profile = profile_at("good.test");
    successful_login(&gh, idp, &tenant, &profile).await;

    // Only the unrelated certificate: the IdP's signature no longer verifies.
    put_saml(
        &gh,
        &tenant.slug,
        &tenant.connection_id,
        trust(idp, &[unrelated.cert_pem.as_str()]),
    )
    .await;
    let browser = browser();
    let post = idp_answer(
        &browser,
        &gh,
        idp,
        &tenant,
        &profile,
        SignInOptions::default(),
    )
    .await;
    let outcome = post_to_acs(&browser, &post.acs_url, &post.form()).await;
    let attempt = assert_acs_refused(&outcome);
    gh.assert_no_session(&browser).await;
    gh.assert_login_failed(&tenant.slug, "saml_signature_invalid", Some(&attempt))
        .await;
    assert_refusal_status(&outcome, &[400]);
}

async fn disallowed_email_domain_is_refused(store: Store) {
    let idp = SamlIdp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = saml_tenant(&gh, idp).await;
    let profile = profile_at("evil.test");
    let browser = browser();
    let post = idp_answer(
        &browser,
        &gh,
        idp,
        &tenant,
        &profile,
        SignInOptions::default(),
    )
    .await;
    let outcome = post_to_acs(&browser, &post.acs_url, &post.form()).await;
    let attempt = assert_acs_refused(&outcome);
    gh.assert_no_session(&browser).await;
    let event = gh
        .assert_login_failed(&tenant.slug, "email_domain_not_allowed", Some(&attempt))
        .await;
    assert_refusal_status(&outcome, &[403]);
    assert_eq!(event["protocol"], json!("saml"), "{event:#}");
    let provisioned = gh
        .audit(&tenant.slug, &[("type", "user.provisioned")])
        .await;
    assert!(
        provisioned.is_empty(),
        "no user for a refused domain: {provisioned:#?}"
    );
}

async fn replayed_response_is_refused(store: Store) {
    let idp = SamlIdp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = saml_tenant(&gh, idp).await;
    let profile = profile_at("good.test");
    let (browser, first, post) = successful_login(&gh, idp, &tenant, &profile).await;

    // The same SAMLResponse and RelayState again, from the same browser.
    let outcome = post_to_acs(&browser, &post.acs_url, &post.form()).await;
    let attempt = assert_acs_refused(&outcome);
    failed_event(
        &gh,
        &[&tenant.slug],
        &attempt,
        "state_reused or assertion_replayed",
        is_replay_reason,
    )
    .await;
    assert_refusal_status(&outcome, &[400]);
    let still = gh.assert_session(&browser).await;
    assert_eq!(
        still["user_id"], first["user_id"],
        "the first session must survive the replay"
    );

    // And from a fresh browser.
    let other = common::browser();
    let outcome = post_to_acs(&other, &post.acs_url, &post.form()).await;
    let attempt = assert_acs_refused(&outcome);
    gh.assert_no_session(&other).await;
    failed_event(
        &gh,
        &[&tenant.slug],
        &attempt,
        "state_reused, state_mismatch, state_missing or assertion_replayed",
        |r| is_replay_reason(r) || r.starts_with("state_"),
    )
    .await;
    assert_refusal_status(&outcome, &[400]);

    // And at a second node sharing the database (PostgreSQL only).
    if store == Store::Postgres {
        let node_b = gh.another_node(&[]).await;
        let acs_b = post.acs_url.replace(
            &format!("127.0.0.1:{}", gh.port),
            &format!("127.0.0.1:{}", node_b.port),
        );
        assert_ne!(acs_b, post.acs_url, "the replay must go to node B");
        let outcome = post_to_acs(&browser, &acs_b, &post.form()).await;
        let attempt = assert_acs_refused(&outcome);
        failed_event(&gh, &[&tenant.slug], &attempt, "state_reused or assertion_replayed", is_replay_reason)
            .await;
        assert_refusal_status(&outcome, &[400]);
    }

    let succeeded = gh
        .audit(&tenant.slug, &[("type", "login.succeeded")])
        .await;
    assert_eq!(
        succeeded.len(),
        1,
        "only the first post may succeed: {succeeded:#?}"
    );
}

async fn unsolicited_response_is_refused(store: Store) {
    let idp = SamlIdp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = saml_tenant(&gh, idp).await;
    let profile = profile_at("good.test");
    let browser = browser();
    let post = idp_answer(
        &browser,
        &gh,
        idp,
        &tenant,
        &profile,
        SignInOptions::default(),
    )
    .await;

    // The SAMLResponse alone, as an IdP-initiated login would post it.
    let outcome = post_to_acs(
        &browser,
        &post.acs_url,
        &[("SAMLResponse", post.saml_response())],
    )
    .await;
    let attempt = assert_acs_refused(&outcome);
    gh.assert_no_session(&browser).await;
    failed_event(
        &gh,
        &[&tenant.slug],
        &attempt,
        "saml_unsolicited or unsolicited_response",
        |r| matches!(r, "saml_unsolicited" | "unsolicited_response"),
    )
    .await;
    assert_refusal_status(&outcome, &[400, 403]);
}

async fn tampered_response_is_refused(store: Store) {
    let idp = SamlIdp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = saml_tenant(&gh, idp).await;

    for assertion_only in [false, true] {
        let profile = profile_at("good.test");
        let browser = browser();
        let post = idp_answer(
            &browser,
            &gh,
            idp,
            &tenant,
            &profile,
            SignInOptions {
                assertion_only,
                ..SignInOptions::default()
            },
        )
        .await;
        let xml = post.response_xml();
        let name_id = xml_text(&xml, "NameID").expect("NameID");
        assert_eq!(name_id, profile.email, "{xml}");
        // Another user of the same (allowed) domain: one character of the local part changed,
        // in the NameID and in the email attribute alike.
        let forged = format!(
            "{}@good.test",
            flip_one_char(
                name_id
                    .split('@')
                    .next()
                    .expect("local part")
            )
        );
        assert_ne!(forged, name_id);
        let tampered = xml.replace(&name_id, &forged);
        assert!(tampered.contains(&forged), "{tampered}");
        let response = encode_saml_response(&tampered);
        let relay_state = post
            .relay_state()
            .expect("RelayState")
            .to_string();
        let outcome = post_to_acs(
            &browser,
            &post.acs_url,
            &[
                ("SAMLResponse", response.as_str()),
                ("RelayState", relay_state.as_str()),
            ],
        )
        .await;
        let attempt = assert_acs_refused(&outcome);
        gh.assert_no_session(&browser).await;
        gh.assert_login_failed(&tenant.slug, "saml_signature_invalid", Some(&attempt))
            .await;
        assert_refusal_status(&outcome, &[400]);
    }
    let provisioned = gh
        .audit(&tenant.slug, &[("type", "user.provisioned")])
        .await;
    assert!(
        provisioned.is_empty(),
        "no user from a forged response: {provisioned:#?}"
    );
}

async fn response_for_another_tenant_is_refused(store: Store) {
    let idp = SamlIdp::shared().await;
    let gh = Gatehouse::start(store).await;
    let a = saml_tenant(&gh, idp).await;
    let b = saml_tenant(&gh, idp).await;
    let profile = profile_at("good.test");

    let browser_a = browser();
    let post_a = idp_answer(&browser_a, &gh, idp, &a, &profile, SignInOptions::default()).await;
    let saml_response_a = post_a.saml_response().to_string();
    let relay_state_a = post_a
        .relay_state()
        .expect("RelayState")
        .to_string();

    let reason_ok = |r: &str| r.starts_with("saml_") || r.starts_with("state_");

    // B's own login in another browser, answered with A's response: the flow cookie and
    // RelayState are B's, so only the SAML checks (audience, destination, recipient,
    // InResponseTo) can refuse it.
    let browser_b = browser();
    let sso_b = start_saml_login(&browser_b, &gh, &b.slug, idp).await;
    let relay_state_b = query_param(&sso_b, "RelayState").expect("RelayState");
    let outcome = post_to_acs(
        &browser_b,
        &b.acs_url,
        &[
            ("SAMLResponse", saml_response_a.as_str()),
            ("RelayState", relay_state_b.as_str()),
        ],
    )
    .await;
    let attempt = assert_acs_refused(&outcome);
    gh.assert_no_session(&browser_b).await;
    failed_event(
        &gh,
        &[&b.slug, &a.slug],
        &attempt,
        "a saml_* or state_* reason",
        reason_ok,
    )
    .await;
    assert_refusal_status(&outcome, &[400, 403]);

    // A's response and RelayState, posted to B's ACS by A's browser.
    let outcome = post_to_acs(
        &browser_a,
        &b.acs_url,
        &[
            ("SAMLResponse", saml_response_a.as_str()),
            ("RelayState", relay_state_a.as_str()),
        ],
    )
    .await;
    let attempt = assert_acs_refused(&outcome);
    gh.assert_no_session(&browser_a).await;
    failed_event(
        &gh,
        &[&b.slug, &a.slug],
        &attempt,
        "a saml_* or state_* reason",
        reason_ok,
    )
    .await;
    assert_refusal_status(&outcome, &[400, 403]);

    let succeeded_b = gh
        .audit(&b.slug, &[("type", "login.succeeded")])
        .await;
    assert!(succeeded_b.is_empty(), "{succeeded_b:#?}");
    let provisioned_b = gh
        .audit(&b.slug, &[("type", "user.provisioned")])
        .await;
    assert!(provisioned_b.is_empty(), "{provisioned_b:#?}");
}
