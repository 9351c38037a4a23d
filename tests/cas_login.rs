//! CAS 3.0 sign-in, black box: a real CAS server (django-cas-server from PyPI, see
//! tests/cas-server), a real `gatehouse serve` with the gatehouse-cas plugin, HTTP only. Every
//! scenario runs on SQLite and on Postgres, in its own Gatehouse process and tenant.

#[macro_use]
mod common;

use common::cas::*;
use common::*;
use serde_json::{json, Value};

on_both_stores!(
    jit_user_login_succeeds,
    wrong_password_never_reaches_gatehouse,
    replayed_ticket_is_refused,
    disallowed_email_domain_is_refused,
);

fn has_type(events: &[Value], kind: &str) -> bool {
    events.iter().any(|e| e["type"] == json!(kind))
}

/// A tenant with one CAS connection `cas` to the shared server.
async fn tenant_with_cas(gh: &Gatehouse, cas: &CasServer) -> Tenant {
    let slug = unique("t-");
    let app_url = format!("https://app.{slug}.test/home");
    gh.create_tenant(&slug, &format!("Tenant {slug}"), &app_url).await;
    let connection_id = "cas".to_string();
    let label = "University CAS".to_string();
    let page = gh
        .admin_put(
            &format!("/api/v1/tenants/{slug}/connections/{connection_id}"),
            &json!({ "protocol": "cas", "label": label, "config": cas_config(cas) }),
        )
        .await;
    page.assert_status(200);
    let connection = page.json();
    assert_eq!(connection["protocol"], json!("cas"), "{connection:#}");
    // The stored config is the plugin's normalised one, defaults written out.
    assert_eq!(
        connection["config"],
        json!({
            "server_url": cas.cas_url,
            "allowed_domains": ["good.test"],
            "email_attribute": "mail",
            "name_attribute": "displayName",
            "require_verified_email": false,
            "allow_subdomains": false,
        }),
        "{connection:#}"
    );
    Tenant {
        slug,
        app_url,
        connection_id,
        label,
        client_id: String::new(),
        client_secret: None,
    }
}

/// `GET /{slug}?login=sso`: asserts the redirect to CAS `/login` with a service URL that is
/// the callback with the state in its query; returns the CAS login URL.
async fn start_cas_login(browser: &reqwest::Client, gh: &Gatehouse, cas: &CasServer, tenant: &Tenant) -> String {
    let page = get(browser, &gh.url(&format!("/{}?login=sso", tenant.slug))).await;
    page.assert_status(302);
    let login = page.location().expect("Location");
    assert!(
        login.starts_with(&format!("{}?service=", cas.login_url())),
        "?login=sso should redirect to {}: {}",
        cas.login_url(),
        page.describe()
    );
    let service = query_param(&login, "service").expect("service");
    let prefix = format!("{}?state=", gh.callback_url(&tenant.slug, &tenant.connection_id));
    assert!(service.starts_with(&prefix), "service URL {service}");
    assert!(page.set_cookie("gatehouse_flow").is_some(), "{}", page.describe());
    login
}

async fn jit_user_login_succeeds(store: Store) {
    let cas = CasServer::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_cas(&gh, cas).await;

    let browser = browser();
    let login = start_cas_login(&browser, &gh, cas, &tenant).await;
    let callback = cas
        .sign_in(&browser, &gh, &login, "alice", "alice-password")
        .await;
    assert!(
        callback.starts_with(&gh.callback_url(&tenant.slug, &tenant.connection_id)),
        "{callback}"
    );
    let page = call_callback(&browser, &callback).await;
    assert_login_succeeded(&page, &tenant);

    let session = gh.assert_session(&browser).await;
    assert_eq!(session["tenant"], json!(tenant.slug), "{session:#}");
    assert_eq!(session["connection_id"], json!("cas"), "{session:#}");
    assert_eq!(session["email"], json!("alice@good.test"), "{session:#}");
    assert_eq!(session["name"], json!("Alice Example"), "{session:#}");

    let events = gh
        .audit_until(&tenant.slug, &[], "login.succeeded and user.provisioned", |ev| {
            has_type(ev, "login.succeeded") && has_type(ev, "user.provisioned")
        })
        .await;
    let succeeded = events
        .iter()
        .find(|e| e["type"] == json!("login.succeeded"))
        .expect("login.succeeded");
    assert_eq!(succeeded["protocol"], json!("cas"), "{succeeded:#}");
    assert_eq!(succeeded["user_id"], session["user_id"], "{succeeded:#}");
}

async fn wrong_password_never_reaches_gatehouse(store: Store) {
    let cas = CasServer::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_cas(&gh, cas).await;

    let browser = browser();
    let login = start_cas_login(&browser, &gh, cas, &tenant).await;
    let page = cas
        .submit_login(&browser, &login, "alice", "not-her-password")
        .await;
    // CAS shows its form again; no ticket, no redirect to Gatehouse.
    page.assert_status(200);
    assert!(page.location().is_none(), "{}", page.describe());
    assert!(!page.body.contains("ticket=ST-"), "{}", page.describe());
    gh.assert_no_session(&browser).await;
    let events = gh.audit(&tenant.slug, &[]).await;
    assert!(!has_type(&events, "login.succeeded"), "{events:#?}");
    assert!(!has_type(&events, "login.failed"), "{events:#?}");
    assert!(!has_type(&events, "user.provisioned"), "{events:#?}");
}

async fn replayed_ticket_is_refused(store: Store) {
    let cas = CasServer::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_cas(&gh, cas).await;

    let browser = browser();
    let login = start_cas_login(&browser, &gh, cas, &tenant).await;
    let callback = cas
        .sign_in(&browser, &gh, &login, "bob", "bob-password")
        .await;
    assert_login_succeeded(&call_callback(&browser, &callback).await, &tenant);
    let ticket = query_param(&callback, "ticket").expect("ticket");

    // The same callback again: its state is spent, the host refuses before any CAS call.
    let page = call_callback(&browser, &callback).await;
    let attempt = page.assert_error_page(&[400]);
    gh.assert_login_failed(&tenant.slug, "state_reused", Some(&attempt)).await;

    // The ticket under a fresh login's state: CAS refuses it (tickets are single-use and bound
    // to their service URL), which is an idp_error recorded for that attempt.
    let thief = common::browser();
    let login = start_cas_login(&thief, &gh, cas, &tenant).await;
    let service = query_param(&login, "service").expect("service");
    let forged = with_query_param(&service, "ticket", Some(&ticket));
    let page = call_callback(&thief, &forged).await;
    let attempt = page.assert_error_page(&[502, 400, 403]);
    let event = gh.assert_login_failed(&tenant.slug, "idp_error", Some(&attempt)).await;
    assert_eq!(event["protocol"], json!("cas"), "{event:#}");
    assert!(event["user_id"].is_null(), "{event:#}");
    gh.assert_no_session(&thief).await;
}

async fn disallowed_email_domain_is_refused(store: Store) {
    let cas = CasServer::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_cas(&gh, cas).await;

    let browser = browser();
    let login = start_cas_login(&browser, &gh, cas, &tenant).await;
    let callback = cas
        .sign_in(&browser, &gh, &login, "mallory", "mallory-password")
        .await;
    let page = call_callback(&browser, &callback).await;
    let attempt = page.assert_error_page(&[403]);
    gh.assert_no_session(&browser).await;
    let event = gh
        .assert_login_failed(&tenant.slug, "email_domain_not_allowed", Some(&attempt))
        .await;
    assert_eq!(event["protocol"], json!("cas"), "{event:#}");
    let events = gh.audit(&tenant.slug, &[]).await;
    assert!(!has_type(&events, "user.provisioned"), "{events:#?}");
    assert!(!has_type(&events, "session.started"), "{events:#?}");
}
