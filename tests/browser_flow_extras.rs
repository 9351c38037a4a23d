//! More of the browser flow and the edges of the HTTP surface: `return_to`, the choice page of a
//! tenant with two connections, hostile paths and bodies (plain 4xx, never a 500), metrics and
//! JSON logs.

#[macro_use]
mod common;

use common::*;
use serde_json::{json, Value};

on_both_stores!(
    loaded_plugins_are_listed,
    return_to_is_honoured_on_the_app_origin_only,
    two_connections_show_the_choice_page,
    hostile_browser_inputs_get_plain_pages,
    hostile_api_bodies_get_problems,
    metrics_count_logins_and_plugin_calls,
    json_logs_are_json,
    https_public_url_makes_cookies_secure,
    forwarded_for_is_ignored_unless_trusted,
    concurrent_admin_writes_and_logins_are_never_500,
);

// ---------------------------------------------------------------------------------------------
// helpers

async fn good_account(idp: &Idp) -> String {
    let login = unique("extra-");
    idp.set_account(
        &login,
        json!({ "sub": format!("{login}-sub"), "email": format!("{login}@good.test"), "email_verified": true }),
    )
    .await;
    login
}

/// `GET url` (which must redirect to the IdP), the IdP login, and the callback; returns the
/// callback's response.
async fn login_from(gh: &Gatehouse, idp: &Idp, browser: &reqwest::Client, url: &str) -> Page {
    let page = get(browser, url).await;
    page.assert_status(302);
    let authorize = page.assert_redirect();
    assert!(
        authorize.starts_with(&idp.issuer),
        "expected a redirect to the IdP: {}",
        page.describe()
    );
    let login = good_account(idp).await;
    let callback = idp_sign_in(browser, gh, idp, &authorize, &login).await;
    call_callback(browser, &callback).await
}

fn app_origin(tenant: &Tenant) -> String {
    let url = url::Url::parse(&tenant.app_url).expect("app URL");
    url.origin()
        .ascii_serialization()
}

fn assert_not_5xx(page: &Page) {
    assert!(
        page.status.as_u16() < 500,
        "a hostile input caused a server error: {}",
        page.describe()
    );
}

fn assert_plain_page(page: &Page, status: u16) {
    assert_eq!(
        page.status.as_u16(),
        status,
        "unexpected status: {}",
        page.describe()
    );
    assert!(
        page.content_type()
            .starts_with("text/html"),
        "expected an HTML page: {}",
        page.describe()
    );
    assert!(
        !page
            .body
            .to_lowercase()
            .contains("panicked"),
        "the page shows internals: {}",
        page.describe()
    );
}

/// The `href`s of the choice page's buttons, in order.
fn start_links(page: &Page) -> Vec<String> {
    page.body
        .split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|href| href.replace("&amp;", "&"))
        .filter(|href| href.contains("/sso/"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// scenarios

async fn return_to_is_honoured_on_the_app_origin_only(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    let origin = app_origin(&tenant);

    // A path on the app's origin.
    let page = login_from(
        &gh,
        idp,
        &browser(),
        &gh.url(&format!("/{}?login=sso&return_to=/reports", tenant.slug)),
    )
    .await;
    page.assert_status(302);
    assert_eq!(
        page.location(),
        Some(format!("{origin}/reports")),
        "return_to=/reports: {}",
        page.describe()
    );
    assert!(page.set_cookie("gatehouse_session").is_some(), "{}", page.describe());

    // A full URL on the app's origin, with a query.
    let target = format!("{origin}/deep/link?tab=2");
    let page = login_from(
        &gh,
        idp,
        &browser(),
        &format!(
            "{}?login=sso&return_to={}",
            gh.url(&format!("/{}", tenant.slug)),
            url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
        ),
    )
    .await;
    page.assert_status(302);
    assert_eq!(page.location(), Some(target.clone()), "{}", page.describe());

    // Elsewhere: ignored, the plain app URL.
    for hostile in [
        "https://evil.test/",
        "//evil.test/x",
        "/\\evil.test",
        "https://app.evil.test/",
        &format!("{origin}.evil.test/"),
        &format!("https://user@{}/", origin.trim_start_matches("https://")),
        "javascript:alert(1)",
        "http://app.localhost/",
    ] {
        let page = login_from(
            &gh,
            idp,
            &browser(),
            &format!(
                "{}?login=sso&return_to={}",
                gh.url(&format!("/{}", tenant.slug)),
                url::form_urlencoded::byte_serialize(hostile.as_bytes()).collect::<String>()
            ),
        )
        .await;
        page.assert_status(302);
        assert_eq!(
            page.location().as_deref(),
            Some(tenant.app_url.as_str()),
            "return_to={hostile:?} must land on the plain app URL: {}",
            page.describe()
        );
    }

    // The same through the start route.
    let page = login_from(
        &gh,
        idp,
        &browser(),
        &gh.url(&format!(
            "/{}/sso/{}/start?return_to=/from-start",
            tenant.slug, tenant.connection_id
        )),
    )
    .await;
    page.assert_status(302);
    assert_eq!(
        page.location(),
        Some(format!("{origin}/from-start")),
        "{}",
        page.describe()
    );
}

async fn two_connections_show_the_choice_page(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    let (client_id, _) = idp
        .register_client(&[gh.callback_url(&tenant.slug, "second")], true)
        .await;
    let second_label = format!("{} Second <IdP> & Co", tenant.slug);
    gh.put_oidc_connection(
        &tenant.slug,
        "second",
        &second_label,
        json!({ "discovery_url": idp.discovery_url(), "client_id": client_id, "allowed_domains": ["good.test"] }),
    )
    .await;

    for path in [
        format!("/{}", tenant.slug),
        format!("/{}?login=sso", tenant.slug),
    ] {
        let page = get(&browser(), &gh.url(&path)).await;
        page.assert_status(200);
        assert!(
            page.content_type()
                .starts_with("text/html"),
            "{}",
            page.describe()
        );
        assert!(
            page.body
                .contains(&tenant.label),
            "the choice page should list {:?}: {}",
            tenant.label,
            page.describe()
        );
        // The label is escaped, not injected.
        let escaped = second_label
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        assert!(
            page.body.contains(&escaped) && !page.body.contains("<IdP>"),
            "the choice page should list the second label, HTML-escaped: {}",
            page.describe()
        );
        assert!(
            page.set_cookie("gatehouse_flow")
                .is_none(),
            "the choice page should not start a flow: {}",
            page.describe()
        );
        let links = start_links(&page);
        assert_eq!(
            links.len(),
            2,
            "two start links expected: {links:?}: {}",
            page.describe()
        );
    }

    // return_to is carried through the choice page into the chosen connection.
    let browser = browser();
    let page = get(
        &browser,
        &gh.url(&format!("/{}?login=sso&return_to=/after-choice", tenant.slug)),
    )
    .await;
    page.assert_status(200);
    let links = start_links(&page);
    let second = links
        .iter()
        .find(|l| l.contains("/sso/second/start"))
        .unwrap_or_else(|| panic!("no link to the second connection: {}", page.describe()));
    let start = url::Url::parse(&page.url)
        .and_then(|base| base.join(second))
        .expect("start URL")
        .to_string();
    let page = login_from(&gh, idp, &browser, &start).await;
    page.assert_status(302);
    assert_eq!(
        page.location(),
        Some(format!("{}/after-choice", app_origin(&tenant))),
        "{}",
        page.describe()
    );
    let session = gh.assert_session(&browser).await;
    assert_eq!(session["connection_id"], json!("second"), "{session:#}");
}

async fn hostile_browser_inputs_get_plain_pages(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    let browser = browser();

    let long_slug = "a".repeat(200);
    let upper = tenant.slug.to_uppercase();
    for path in [
        format!("/{}", unique("no-such-")),
        format!("/{upper}"),
        format!("/{upper}?login=sso"),
        format!("/{long_slug}"),
        format!("/{long_slug}?login=sso"),
        "/%00%ff%fe".to_string(),
        "/%C0%AE%C0%AE".to_string(),
        "/a%2Fb".to_string(),
        "/%3Cscript%3E".to_string(),
        format!("/{}/sso/okta/start", unique("no-such-")),
        format!("/{upper}/sso/okta/start"),
        format!("/{}/sso/%ff/start", tenant.slug),
        format!("/{}/sso/{}/callback", upper, tenant.connection_id),
    ] {
        let page = get(&browser, &gh.url(&path)).await;
        assert_plain_page(&page, 404);
        assert!(
            !page.body.contains("<script>"),
            "{path}: {}",
            page.describe()
        );
    }

    // The callback: a 20 KB query, junk encodings, repeated parameters.
    let callback = gh.callback_url(&tenant.slug, &tenant.connection_id);
    let huge = format!("{callback}?state={}&code=x", "s".repeat(20 * 1024));
    let page = get(&browser, &huge).await;
    assert_plain_page(&page, 400);
    page.assert_no_session_cookie();
    for query in [
        "?state=%ff%fe&code=%00",
        "?state=a&state=b&code=c&code=d",
        "?code=x",
        "?state=&code=",
        "?%%%%=%%",
        "?error=%ff&error_description=%00",
    ] {
        let page = get(&browser, &format!("{callback}{query}")).await;
        assert_not_5xx(&page);
        assert!(
            matches!(page.status.as_u16(), 400 | 403),
            "callback{query}: {}",
            page.describe()
        );
        page.assert_no_session_cookie();
    }
    // A huge return_to is ignored, not an error.
    let page = get(
        &browser,
        &gh.url(&format!(
            "/{}?login=sso&return_to=/{}",
            tenant.slug,
            "r".repeat(4000)
        )),
    )
    .await;
    assert_not_5xx(&page);
    page.assert_status(302);
}

async fn hostile_api_bodies_get_problems(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    let admin = gh.admin();
    let tenants_url = gh.url("/api/v1/tenants");

    let send = |body: Vec<u8>, content_type: &'static str| {
        let admin = admin.clone();
        let url = tenants_url.clone();
        async move {
            let response = admin
                .post(&url)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("POST {url}: {e}"));
            Page::read(&url, response).await
        }
    };

    // Malformed JSON.
    send(b"{\"slug\": \"x\",".to_vec(), "application/json")
        .await
        .assert_problem(400, None);
    send(b"not json at all".to_vec(), "application/json")
        .await
        .assert_problem(400, None);
    // Wrong content type.
    let page = send(
        br#"{"slug":"ct-test","display_name":"X","app_url":"https://x.test/"}"#.to_vec(),
        "text/plain",
    )
    .await;
    assert_problem_4xx(&page);
    // More than 64 KiB.
    let big = json!({
        "slug": unique("big-"),
        "display_name": "x".repeat(70 * 1024),
        "app_url": "https://x.test/",
    });
    let page = send(
        serde_json::to_vec(&big).expect("JSON"),
        "application/json",
    )
    .await;
    assert_problem_4xx(&page);
    // An unknown field.
    let page = send(
        serde_json::to_vec(&json!({
            "slug": unique("unk-"),
            "display_name": "X",
            "app_url": "https://x.test/",
            "is_admin": true,
        }))
        .expect("JSON"),
        "application/json",
    )
    .await;
    assert_problem_4xx(&page);
    // Wrong types.
    let page = send(
        serde_json::to_vec(&json!({ "slug": 12, "display_name": [], "app_url": null }))
            .expect("JSON"),
        "application/json",
    )
    .await;
    assert_problem_4xx(&page);

    // A connection with an unknown protocol.
    gh.admin_put(
        &format!("/api/v1/tenants/{}/connections/nope-conn", tenant.slug),
        &json!({ "protocol": "nope", "label": "Nope", "config": {} }),
    )
    .await
    .assert_problem(422, Some("/protocol"));
    // Its config is not an object.
    let page = gh
        .admin_put(
            &format!("/api/v1/tenants/{}/connections/bad-config", tenant.slug),
            &json!({ "protocol": "oidc", "label": "Bad", "config": "a string" }),
        )
        .await;
    assert_problem_4xx(&page);
    // A bad connection id, and an unknown tenant.
    let page = gh
        .admin_put(
            &format!("/api/v1/tenants/{}/connections/Not_An_Id", tenant.slug),
            &json!({ "protocol": "oidc", "label": "X", "config": {} }),
        )
        .await;
    assert_problem_4xx(&page);
    gh.admin_get(&format!("/api/v1/tenants/{}", unique("no-such-")))
        .await
        .assert_problem(404, None);
    gh.admin_get("/api/v1/no-such-route")
        .await
        .assert_problem(404, None);
    // Bad audit filters.
    for query in [
        &[("limit", "0")][..],
        &[("limit", "100000")],
        &[("from", "yesterday")],
        &[("cursor", "%%%")],
        &[("outcome", "maybe")],
        &[("bogus", "1")],
    ] {
        let page = gh.audit_page(&tenant.slug, query).await;
        assert!(
            page.status.as_u16() == 400 || page.status.as_u16() == 422,
            "audit {query:?} should be refused: {}",
            page.describe()
        );
        assert_problem_4xx(&page);
    }
}

fn assert_problem_4xx(page: &Page) -> Value {
    let status = page.status.as_u16();
    assert!(
        (400..500).contains(&status),
        "expected a 4xx problem: {}",
        page.describe()
    );
    page.assert_problem(status, None)
}

async fn metrics_count_logins_and_plugin_calls(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    let page = login_from(
        &gh,
        idp,
        &browser(),
        &gh.url(&format!("/{}?login=sso", tenant.slug)),
    )
    .await;
    assert_login_succeeded(&page, &tenant);
    // And a refused one.
    let browser = browser();
    let bad = unique("bad-");
    idp.set_account(
        &bad,
        json!({ "sub": format!("{bad}-sub"), "email": format!("{bad}@bad.test"), "email_verified": true }),
    )
    .await;
    let callback = login_via_idp(&browser, &gh, idp, &tenant.slug, &bad).await;
    call_callback(&browser, &callback)
        .await
        .assert_error_page(&[403]);

    let page = get(&client(), &gh.url("/metrics")).await;
    page.assert_status(200);
    assert!(
        page.content_type()
            .starts_with("text/plain"),
        "{}",
        page.describe()
    );
    let lines: Vec<&str> = page
        .body
        .lines()
        .filter(|l| l.starts_with("gatehouse_login_attempts_total{"))
        .collect();
    let has = |outcome: &str| {
        lines.iter().any(|l| {
            l.contains("protocol=\"oidc\"")
                && l.contains(&format!("outcome=\"{outcome}\""))
                && l.trim_end()
                    .rsplit(' ')
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .is_some_and(|v| v >= 1.0)
        })
    };
    assert!(
        has("succeeded"),
        "no oidc/succeeded login count: {}",
        page.describe()
    );
    assert!(
        has("failed"),
        "no oidc/failed login count: {}",
        page.describe()
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("reason=\"")),
        "login counts without a reason label: {}",
        page.describe()
    );
    assert!(
        page.body
            .contains("gatehouse_plugin_call_seconds_bucket{")
            && page
                .body
                .contains("gatehouse_plugin_call_seconds_count{"),
        "no plugin call histogram: {}",
        page.describe()
    );
    // Routes are labelled by pattern, never by the raw path (no slug, code or state).
    assert!(
        !page.body.contains(&tenant.slug),
        "a metric label holds the tenant slug: {}",
        page.describe()
    );
    assert!(
        !page.body.contains(&bad),
        "a metric label holds a login: {}",
        page.describe()
    );
}

async fn json_logs_are_json(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start_with(
        store,
        Options {
            env: vec![("GATEHOUSE_LOG_FORMAT".into(), "json".into())],
            ..Options::default()
        },
    )
    .await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    let page = login_from(
        &gh,
        idp,
        &browser(),
        &gh.url(&format!("/{}?login=sso", tenant.slug)),
    )
    .await;
    assert_login_succeeded(&page, &tenant);
    get(&browser(), &gh.url("/no-such-tenant-here"))
        .await
        .assert_status(404);
    gh.admin_post("/api/v1/tenants", &json!({}))
        .await;

    let log = gh.log_text();
    let mut parsed = 0;
    let mut in_banner = false;
    for line in log.lines() {
        if line.contains("Admin API token (shown once") {
            in_banner = true;
            continue;
        }
        if in_banner {
            if line.contains("Authorization: Bearer") {
                in_banner = false;
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line:?}\nwhole log:\n{log}"));
        assert!(
            value.get("timestamp").is_some() && value.get("level").is_some(),
            "a JSON log line without timestamp/level: {line}"
        );
        parsed += 1;
    }
    assert!(
        log.contains("login succeeded") && parsed >= 5,
        "expected JSON lines for the requests and the login:\n{log}"
    );
}

async fn https_public_url_makes_cookies_secure(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start_with(
        store,
        Options {
            https_public_url: true,
            ..Options::default()
        },
    )
    .await;
    let port = gh.port;
    let base = gh.url.clone();
    let slug = unique("t-");
    gh.create_tenant(&slug, "Secure", "https://app.secure.test/")
        .await;
    let (client_id, _) = idp
        .register_client(&[format!("https://127.0.0.1:{port}/{slug}/sso/okta/callback")], true)
        .await;
    let page = gh
        .admin_put(
            &format!("/api/v1/tenants/{slug}/connections/okta"),
            &json!({ "protocol": "oidc", "label": "Okta", "config": {
                "discovery_url": idp.discovery_url(), "client_id": client_id, "allowed_domains": ["good.test"] } }),
        )
        .await;
    page.assert_status(200);
    assert_eq!(
        page.json()["setup"]["redirect_url"],
        json!(format!("https://127.0.0.1:{port}/{slug}/sso/okta/callback")),
        "the redirect URL follows the public URL: {}",
        page.describe()
    );
    let page = get(&browser(), &format!("{base}/{slug}?login=sso")).await;
    page.assert_status(302);
    let cookie = page
        .set_cookie("gatehouse_flow")
        .unwrap_or_else(|| panic!("no flow cookie: {}", page.describe()));
    assert!(
        cookie
            .split(';')
            .any(|a| a.trim().eq_ignore_ascii_case("secure")),
        "with an https public URL the flow cookie must be Secure: {}",
        page.describe()
    );
    let authorize = page.assert_redirect();
    assert_eq!(
        query_param(&authorize, "redirect_uri"),
        Some(format!("https://127.0.0.1:{port}/{slug}/sso/okta/callback")),
        "{}",
        page.describe()
    );
}

async fn forwarded_for_is_ignored_unless_trusted(store: Store) {
    let idp = Idp::shared().await;
    for trusted in [false, true] {
        let gh = Gatehouse::start_with(
            store,
            Options {
                env: vec![(
                    "GATEHOUSE_TRUST_PROXY_HEADERS".into(),
                    trusted.to_string(),
                )],
                ..Options::default()
            },
        )
        .await;
        let tenant = tenant_with_idp(&gh, idp, false).await;
        let url = gh.url(&format!("/{}?login=sso", tenant.slug));
        let response = browser()
            .get(&url)
            .header("X-Forwarded-For", "203.0.113.9")
            .send()
            .await
            .expect("GET");
        let page = Page::read(&url, response).await;
        page.assert_status(302);
        let events = gh
            .audit_until(&tenant.slug, &[("type", "login.started")], "login.started", |e| {
                !e.is_empty()
            })
            .await;
        let ip = &events[0]["client_ip"];
        if trusted {
            assert_eq!(ip, &json!("203.0.113.9"), "trusted proxy header: {events:#?}");
        } else {
            assert_eq!(
                ip,
                &json!("127.0.0.1"),
                "an untrusted X-Forwarded-For must not set the client IP: {events:#?}"
            );
        }
    }
}

async fn concurrent_admin_writes_and_logins_are_never_500(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    let config = json!({ "discovery_url": idp.discovery_url(), "client_id": tenant.client_id, "allowed_domains": ["good.test"] });
    // Logins (their callbacks) and connection writes on the same tenant, all at once.
    let mut callbacks = Vec::new();
    for _ in 0..4 {
        let browser = browser();
        let login = good_account(idp).await;
        let callback = login_via_idp(&browser, &gh, idp, &tenant.slug, &login).await;
        callbacks.push((browser, callback));
    }
    let puts = (0..6).map(|i| {
        let path = format!("/api/v1/tenants/{}/connections/extra{i}", tenant.slug);
        let body = json!({ "protocol": "oidc", "label": format!("Extra {i}"), "config": config });
        let gh = &gh;
        async move { gh.admin_put(&path, &body).await }
    });
    let logins = callbacks
        .iter()
        .map(|(browser, callback)| call_callback(browser, callback));
    let (puts, logins) = tokio::join!(
        futures_util::future::join_all(puts),
        futures_util::future::join_all(logins)
    );
    for page in &puts {
        assert!(
            matches!(page.status.as_u16(), 200 | 409),
            "a concurrent PUT failed: {}",
            page.describe()
        );
    }
    for page in &logins {
        assert_login_succeeded(page, &tenant);
    }
    let accepted = puts
        .iter()
        .filter(|p| p.status.as_u16() == 200)
        .count();
    let page = gh
        .admin_get(&format!("/api/v1/tenants/{}", tenant.slug))
        .await;
    page.assert_status(200);
    let count = page.json()["connections"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(count, accepted + 1, "{}", page.describe());
}

async fn loaded_plugins_are_listed(store: Store) {
    let gh = Gatehouse::start(store).await;
    let anonymous = get(&client(), &gh.url("/api/v1/plugins")).await;
    anonymous.assert_problem(401, None);

    let page = gh.admin_get("/api/v1/plugins").await;
    page.assert_status(200);
    let listed = page.json();
    let plugins = listed["plugins"].as_array().expect("plugins list");
    let find = |protocol: &str| {
        plugins
            .iter()
            .find(|p| p["protocol"] == json!(protocol))
            .unwrap_or_else(|| panic!("{protocol} not listed: {listed:#}"))
            .clone()
    };
    assert_eq!(find("oidc")["callback"], json!("query"), "{listed:#}");
    assert_eq!(find("oidc")["secret_fields"], json!(["/client_secret"]), "{listed:#}");
    assert_eq!(find("saml")["callback"], json!("form_post"), "{listed:#}");
    assert_eq!(find("saml")["secret_fields"], json!(["/sp_private_key"]), "{listed:#}");
    assert_eq!(find("oauth2")["abi_version"], json!(1), "{listed:#}");
    assert_eq!(find("cas")["callback"], json!("query"), "{listed:#}");
}
