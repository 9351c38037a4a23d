//! Two `gatehouse serve` processes on one PostgreSQL database (same secret key, same admin
//! token, same GATEHOUSE_PUBLIC_URL): a login started at one node finishes at the other, the
//! session is seen by both, and a replay at the first is refused.

mod common;

use common::*;
use serde_json::{json, Value};
use url::Url;

/// The same URL at another port (both nodes are 127.0.0.1).
fn at_port(url: &str, port: u16) -> String {
    let mut parsed = Url::parse(url).unwrap_or_else(|e| panic!("parse {url}: {e}"));
    parsed
        .set_port(Some(port))
        .expect("set the port");
    parsed.to_string()
}

async fn login_account(idp: &Idp) -> (String, String) {
    let login = unique("multi-");
    let email = format!("{login}@good.test");
    idp.set_account(
        &login,
        json!({ "sub": format!("{login}-sub"), "email": email, "email_verified": true, "name": "Multi Node" }),
    )
    .await;
    (login, email)
}

#[tokio::test]
async fn login_started_at_one_node_finishes_at_the_other() {
    let idp = Idp::shared().await;
    let a = Gatehouse::start(Store::Postgres).await;
    let b = a.another_node(&[]).await;
    assert_ne!(a.port, b.port);

    // Tenant and connection through node A; node B sees them at once (shared store).
    let tenant = tenant_with_idp(&a, idp, false).await;
    let page = b
        .admin_get(&format!("/api/v1/tenants/{}", tenant.slug))
        .await;
    page.assert_status(200);
    assert_eq!(
        page.json()["connections"][0]["id"],
        json!(tenant.connection_id),
        "node B should see the connection made at node A: {}",
        page.describe()
    );

    let (login, email) = login_account(idp).await;
    let browser = browser();
    let callback = login_via_idp(&browser, &a, idp, &tenant.slug, &login).await;
    assert!(
        callback.starts_with(&a.callback_url(&tenant.slug, &tenant.connection_id)),
        "the IdP should return to the public URL (node A's): {callback}"
    );
    let at_b = at_port(&callback, b.port);
    let page = call_callback(&browser, &at_b).await;
    assert_login_succeeded(&page, &tenant);

    // One session, valid on both nodes.
    let on_b = b.assert_session(&browser).await;
    let on_a = a.assert_session(&browser).await;
    assert_eq!(on_a, on_b, "both nodes should see the same session");
    assert_eq!(on_b["email"], json!(email), "{on_b:#}");
    assert_eq!(on_b["tenant"], json!(tenant.slug), "{on_b:#}");

    // The same callback again, at node A: the state was consumed at node B.
    let replay = call_callback(&browser, &callback).await;
    let attempt = replay.assert_error_page(&[400]);
    a.assert_login_failed(&tenant.slug, "state_reused", Some(&attempt))
        .await;
    // And at node B as well.
    let replay = call_callback(&browser, &at_b).await;
    let attempt = replay.assert_error_page(&[400]);
    b.assert_login_failed(&tenant.slug, "state_reused", Some(&attempt))
        .await;

    // Both nodes write to one audit log.
    let from_a = a.audit(&tenant.slug, &[]).await;
    let from_b = b.audit(&tenant.slug, &[]).await;
    assert_eq!(
        from_a,
        from_b,
        "the audit log should read the same from both nodes:\n{}",
        serde_json::to_string_pretty(&from_a).unwrap_or_default()
    );
    let succeeded: Vec<&Value> = from_a
        .iter()
        .filter(|e| e["type"] == json!("login.succeeded"))
        .collect();
    assert_eq!(
        succeeded.len(),
        1,
        "exactly one login.succeeded:\n{}",
        serde_json::to_string_pretty(&from_a).unwrap_or_default()
    );

    // Logging out at node A ends the session at node B too.
    a.logout(&browser, &tenant.slug).await;
    b.assert_no_session(&browser).await;
}

#[tokio::test]
async fn a_flow_keeps_the_redirect_uri_it_started_with() {
    // The node finishing a login exchanges the code with the redirect_uri recorded when the
    // flow started (node A's), not one built from its own public URL: a flow started before a
    // public-URL change still completes.
    let idp = Idp::shared().await;
    let a = Gatehouse::start(Store::Postgres).await;
    let tenant = tenant_with_idp(&a, idp, false).await;
    let own_url = format!("http://127.0.0.1:{}", free_port());
    let b = a
        .another_node(&[("GATEHOUSE_PUBLIC_URL", own_url.as_str())])
        .await;
    let (login, email) = login_account(idp).await;
    let browser = browser();
    let callback = login_via_idp(&browser, &a, idp, &tenant.slug, &login).await;
    let page = call_callback(&browser, &at_port(&callback, b.port)).await;
    assert_login_succeeded(&page, &tenant);
    let session = b.assert_session(&browser).await;
    assert_eq!(session["email"], json!(email), "{session:#}");
}

#[tokio::test]
async fn configured_admin_token_works_on_both_nodes() {
    let a = Gatehouse::start(Store::Postgres).await;
    let b = a.another_node(&[]).await;
    for node in [&a, &b] {
        let slug = unique("t-");
        node.create_tenant(&slug, "Admin on each node", "https://app.example.test/")
            .await;
        let other = if std::ptr::eq(node, &a) { &b } else { &a };
        other
            .admin_get(&format!("/api/v1/tenants/{slug}"))
            .await
            .assert_status(200);
        let url = other.url(&format!("/api/v1/tenants/{slug}"));
        let wrong = client()
            .get(&url)
            .bearer_auth("wrong-token")
            .send()
            .await
            .expect("GET tenant");
        Page::read(&url, wrong)
            .await
            .assert_problem(401, None);
    }
}

#[tokio::test]
async fn printed_admin_token_works_on_both_nodes() {
    // No GATEHOUSE_ADMIN_TOKEN: node A generates one and prints it once; node B, on the same
    // database, accepts it and prints none of its own.
    let a = Gatehouse::start_with(
        Store::Postgres,
        Options {
            generated_admin_token: true,
            ..Options::default()
        },
    )
    .await;
    assert!(
        a.admin_token.len() >= 20,
        "the printed admin token looks too short: {:?}\n{}",
        a.admin_token,
        a.log_text()
    );
    let b = a.another_node(&[]).await;
    assert_eq!(
        b.printed_admin_token(),
        None,
        "node B should not print a new token when one exists:\n{}",
        b.log_text()
    );
    let slug = unique("t-");
    a.create_tenant(&slug, "Printed token", "https://app.example.test/")
        .await;
    let page = b
        .admin_get(&format!("/api/v1/tenants/{slug}"))
        .await;
    page.assert_status(200);
    let slug2 = unique("t-");
    b.create_tenant(&slug2, "Printed token at B", "https://app.example.test/")
        .await;
    a.admin_get(&format!("/api/v1/tenants/{slug2}"))
        .await
        .assert_status(200);

    // The printed token then put in the configuration (as the README's several-nodes recipe
    // suggests) starts a node normally, and works there.
    let token = a.admin_token.clone();
    let c = a
        .another_node(&[("GATEHOUSE_ADMIN_TOKEN", &token)])
        .await;
    c.admin_get(&format!("/api/v1/tenants/{slug}"))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn the_same_callback_at_both_nodes_at_once_signs_in_once() {
    let idp = Idp::shared().await;
    let a = Gatehouse::start(Store::Postgres).await;
    let b = a.another_node(&[]).await;
    let tenant = tenant_with_idp(&a, idp, false).await;
    for round in 0..3 {
        let (login, _) = login_account(idp).await;
        let browser = browser();
        let callback = login_via_idp(&browser, &a, idp, &tenant.slug, &login).await;
        let at_b = at_port(&callback, b.port);
        let (first, second) = tokio::join!(
            call_callback(&browser, &callback),
            call_callback(&browser, &at_b)
        );
        let pages = [first, second];
        let won: Vec<&Page> = pages
            .iter()
            .filter(|p| p.status.as_u16() == 302)
            .collect();
        assert_eq!(
            won.len(),
            1,
            "round {round}: exactly one of the racing callbacks should sign in:\n{}\n\n{}",
            pages[0].describe(),
            pages[1].describe()
        );
        let lost = pages
            .iter()
            .find(|p| p.status.as_u16() != 302)
            .expect("one lost");
        let attempt = lost.assert_error_page(&[400]);
        a.assert_login_failed(&tenant.slug, "state_reused", Some(&attempt))
            .await;
    }
    let events = a.audit(&tenant.slug, &[("type", "login.succeeded")]).await;
    assert_eq!(
        events.len(),
        3,
        "three rounds, three successes:\n{}",
        serde_json::to_string_pretty(&events).unwrap_or_default()
    );
}

#[tokio::test]
async fn concurrent_admin_writes_at_both_nodes_are_never_lost_or_500() {
    // Each PUT appends to the tenant's event stream; writes racing at two nodes must each end
    // in 200 or a clean 409, and every 200 must be visible afterwards.
    let idp = Idp::shared().await;
    let a = Gatehouse::start(Store::Postgres).await;
    let b = a.another_node(&[]).await;
    let slug = unique("t-");
    a.create_tenant(&slug, "Race", "https://app.race.test/")
        .await;
    let (client_id, _) = idp
        .register_client(&[a.callback_url(&slug, "c0")], true)
        .await;
    let config = json!({ "discovery_url": idp.discovery_url(), "client_id": client_id, "allowed_domains": ["good.test"] });
    let mut calls = Vec::new();
    for i in 0..8 {
        let node = if i % 2 == 0 { &a } else { &b };
        let path = format!("/api/v1/tenants/{slug}/connections/c{i}");
        let body = json!({ "protocol": "oidc", "label": format!("C{i}"), "config": config });
        calls.push(async move { (i, node.admin_put(&path, &body).await) });
    }
    let results = futures_util::future::join_all(calls).await;
    let mut ok = Vec::new();
    for (i, page) in &results {
        match page.status.as_u16() {
            200 => ok.push(format!("c{i}")),
            409 => {
                page.assert_problem(409, None);
            }
            _ => panic!("a racing PUT failed: {}", page.describe()),
        }
    }
    let page = b
        .admin_get(&format!("/api/v1/tenants/{slug}"))
        .await;
    page.assert_status(200);
    let mut ids: Vec<String> = page.json()["connections"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", page.describe()))
        .iter()
        .filter_map(|c| c["id"].as_str().map(str::to_string))
        .collect();
    ids.sort();
    ok.sort();
    assert_eq!(ids, ok, "the connections should be exactly the accepted PUTs: {}", page.describe());
}
