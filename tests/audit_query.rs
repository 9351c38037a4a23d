//! The audit log's query API: every filter against real activity (OIDC logins through the test
//! IdP, refused OAuth 2.0 callbacks, admin changes), hostile filter values answered with precise
//! 422 problems, both orders, cursors that stay correct while entries arrive, and the tail mode
//! a SIEM polls with. The out-of-order commit test holds two PostgreSQL transactions open with
//! psql and commits the later-numbered one first.

#[macro_use]
mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use base64::Engine as _;
use common::*;
use gatehouse_core::projections::audit_chain::{link_hash, EntryContent, CURRENT_FORM};
use serde_json::{json, Value};

on_both_stores!(
    every_filter_returns_exactly_its_entries,
    hostile_filter_values_are_precise_problems,
    both_orders_and_cursors_while_entries_arrive,
    the_shape_names_actor_target_outcome_and_request,
);

const EVENTS: &str = "/api/v1/tenants/{slug}/audit/events";

fn events_url(gh: &Gatehouse, slug: &str, raw_query: &str) -> String {
    gh.url(&format!("{}?{raw_query}", EVENTS.replace("{slug}", slug)))
}

/// One page with a raw query string (sent as written).
async fn raw_page(gh: &Gatehouse, slug: &str, raw_query: &str) -> Page {
    gh.projected().await;
    let url = events_url(gh, slug, raw_query);
    let response = gh
        .admin()
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    Page::read(&url, response).await
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            e["id"]
                .as_str()
                .unwrap_or_else(|| panic!("no id: {e:#}"))
                .to_owned()
        })
        .collect()
}

fn positions(events: &[Value]) -> Vec<i64> {
    events
        .iter()
        .map(|e| {
            e["position"]
                .as_i64()
                .unwrap_or_else(|| panic!("no position: {e:#}"))
        })
        .collect()
}

/// An OAuth 2.0 connection `fb` (no IdP is contacted) on `slug`.
async fn add_oauth2_connection(gh: &Gatehouse, slug: &str) {
    gh.admin_put(
        &format!("/api/v1/tenants/{slug}/connections/fb"),
        &json!({
            "protocol": "oauth2",
            "label": "Facebook",
            "config": {
                "preset": "facebook",
                "client_id": "1234",
                "client_secret": "fb-secret",
                "allowed_domains": ["good.test"],
            },
        }),
    )
    .await
    .assert_status(200);
}

/// Refused logins through forged callbacks of `fb` (each one a `login.failed`).
async fn forged_callbacks(gh: &Gatehouse, slug: &str, from: usize, count: usize) {
    for n in from..from + count {
        let url = gh.url(&format!(
            "/{slug}/sso/fb/callback?code=c{n}&state=forged-{n}"
        ));
        get(&browser(), &url)
            .await
            .assert_error_page(&[400]);
    }
}

/// A tenant with an OIDC connection (`okta`) and an OAuth 2.0 one (`fb`), one successful OIDC
/// login (email in mixed case), one refused for its email domain, and two forged `fb`
/// callbacks. Returns the tenant, the good email as typed, and the user id of the good login.
async fn busy_tenant(gh: &Gatehouse) -> (Tenant, String, String) {
    let idp = Idp::shared().await;
    let tenant = tenant_with_idp(gh, idp, false).await;

    let good = format!("{}@Good.Test", unique("Ann-"));
    let login = unique("user-");
    idp.set_account(
        &login,
        json!({ "sub": format!("{login}-sub"), "email": good, "email_verified": true }),
    )
    .await;
    let browser = browser();
    let callback = login_via_idp(&browser, gh, idp, &tenant.slug, &login).await;
    assert_login_succeeded(&call_callback(&browser, &callback).await, &tenant);
    let session = gh.assert_session(&browser).await;
    let user_id = session["user_id"]
        .as_str()
        .expect("user_id")
        .to_owned();

    let evil = unique("eve-");
    idp.set_account(
        &evil,
        json!({ "sub": format!("{evil}-sub"), "email": format!("{evil}@evil.test"),
                "email_verified": true }),
    )
    .await;
    let browser = crate::browser();
    let callback = login_via_idp(&browser, gh, idp, &tenant.slug, &evil).await;
    call_callback(&browser, &callback).await;
    gh.assert_login_failed(&tenant.slug, "email_domain_not_allowed", None)
        .await;

    // Added last: with two connections, `?login=sso` shows a choice page.
    add_oauth2_connection(gh, &tenant.slug).await;
    forged_callbacks(gh, &tenant.slug, 0, 2).await;
    (tenant, good, user_id)
}

async fn every_filter_returns_exactly_its_entries(store: Store) {
    let gh = Gatehouse::start(store).await;
    let (tenant, good, user_id) = busy_tenant(&gh).await;
    let slug = tenant.slug.as_str();
    let all = gh.audit(slug, &[]).await;
    let succeeded = all
        .iter()
        .find(|e| e["type"] == json!("login.succeeded"))
        .unwrap_or_else(|| panic!("no login.succeeded: {all:#?}"))
        .clone();
    let time = |e: &Value| {
        chrono::DateTime::parse_from_rfc3339(e["time"].as_str().expect("time")).expect("RFC 3339")
    };
    let at = time(&succeeded);
    let from = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let to = (at + chrono::Duration::milliseconds(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let lower = good.to_lowercase();

    // Each filter gives exactly the entries of the whole log that match it (compared by id, in
    // the log's order), and never nothing.
    type Check = Box<dyn Fn(&Value) -> bool>;
    let cases: Vec<(Vec<(&str, &str)>, Check)> = vec![
        (
            vec![("type", "login.succeeded")],
            Box::new(|e: &Value| e["type"] == json!("login.succeeded")),
        ),
        (
            vec![("type", "login.")],
            Box::new(|e: &Value| {
                e["type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("login."))
            }),
        ),
        (
            vec![("type", "tenant.connection.")],
            Box::new(|e: &Value| {
                e["type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("tenant.connection."))
            }),
        ),
        (
            vec![("outcome", "failed")],
            Box::new(|e: &Value| e["outcome"]["result"] == json!("failed")),
        ),
        (
            vec![("outcome", "succeeded")],
            Box::new(|e: &Value| e["outcome"]["result"] == json!("succeeded")),
        ),
        (
            vec![("reason", "email_domain_not_allowed")],
            Box::new(|e: &Value| e["outcome"]["reason"] == json!("email_domain_not_allowed")),
        ),
        (
            vec![("email", good.as_str())],
            Box::new(move |e: &Value| e["email"] == json!(lower)),
        ),
        (
            vec![("user", user_id.as_str())],
            Box::new({
                let user_id = user_id.clone();
                move |e: &Value| e["user_id"] == json!(user_id)
            }),
        ),
        (
            vec![("connection", "fb")],
            Box::new(|e: &Value| e["connection_id"] == json!("fb")),
        ),
        (
            vec![("protocol", "oauth2")],
            Box::new(|e: &Value| e["protocol"] == json!("oauth2")),
        ),
        (
            vec![("protocol", "oidc")],
            Box::new(|e: &Value| e["protocol"] == json!("oidc")),
        ),
        (
            vec![("client_ip", "127.0.0.1")],
            Box::new(|e: &Value| e["client_ip"] == json!("127.0.0.1")),
        ),
        (
            vec![("from", from.as_str()), ("to", to.as_str())],
            Box::new(move |e: &Value| {
                time(e) >= at && time(e) < at + chrono::Duration::milliseconds(1)
            }),
        ),
        (
            vec![
                ("type", "login."),
                ("outcome", "failed"),
                ("connection", "okta"),
            ],
            Box::new(|e: &Value| {
                e["type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("login."))
                    && e["outcome"]["result"] == json!("failed")
                    && e["connection_id"] == json!("okta")
            }),
        ),
    ];
    for (query, matches) in &cases {
        let expected: Vec<Value> = all
            .iter()
            .filter(|e| matches(e))
            .cloned()
            .collect();
        assert!(
            !expected.is_empty(),
            "{query:?} matches nothing in {all:#?}"
        );
        assert!(expected.len() < all.len(), "{query:?} matches everything");
        let found = gh.audit(slug, query).await;
        assert_eq!(ids(&found), ids(&expected), "{query:?}: {found:#?}");
    }

    // The same filters in another notation: an IPv6 form of nothing, a prefix that is no
    // type's, an email nobody used, a range before everything.
    for query in [
        vec![("client_ip", "::ffff:7f00:2")],
        vec![("type", "logins.")],
        vec![("type", "login")],
        vec![("email", "nobody@good.test")],
        vec![("to", "2001-01-01T00:00:00Z")],
        vec![("user", "00000000-0000-0000-0000-000000000000")],
    ] {
        let found = gh.audit(slug, &query).await;
        assert!(found.is_empty(), "{query:?}: {found:#?}");
    }

    // Another tenant's log is its own, whatever the filter.
    let other = unique("t-");
    gh.create_tenant(&other, "Other", "https://other.test/")
        .await;
    assert!(gh
        .audit(&other, &[("email", good.as_str())])
        .await
        .is_empty());
    assert!(gh
        .audit(&other, &[("type", "login.")])
        .await
        .is_empty());
}

async fn hostile_filter_values_are_precise_problems(store: Store) {
    let gh = Gatehouse::start(store).await;
    let slug = unique("t-");
    gh.create_tenant(&slug, "Hostile", "https://hostile.test/")
        .await;
    add_oauth2_connection(&gh, &slug).await;
    forged_callbacks(&gh, &slug, 0, 2).await;
    let before = gh.audit(&slug, &[]).await;
    let negative = format!(
        "c2_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode([[0u8; 8], (-5i64).to_be_bytes()].concat())
    );
    let long = "a".repeat(10_000);
    // A parameter's name is cut to 64 characters in the problem.
    let long_field = format!("/{}", "a".repeat(64));

    let cases: Vec<(String, &str)> = vec![
        ("type=login.%25".into(), "/type"),
        ("type=login._".into(), "/type"),
        (
            "type=%27%3B%20DROP%20TABLE%20audit_log%3B--".into(),
            "/type",
        ),
        ("type=LOGIN.failed".into(), "/type"),
        ("type=.".into(), "/type"),
        ("type=login..failed".into(), "/type"),
        ("type=".into(), "/type"),
        (format!("type={}", "a".repeat(65)), "/type"),
        ("outcome=maybe".into(), "/outcome"),
        ("outcome=".into(), "/outcome"),
        ("reason=a%20b".into(), "/reason"),
        ("reason=%25".into(), "/reason"),
        (format!("reason={}", "a".repeat(65)), "/reason"),
        ("email=".into(), "/email"),
        ("email=a%00b%40good.test".into(), "/email"),
        (format!("email={}%40good.test", "a".repeat(320)), "/email"),
        ("user=not-a-uuid".into(), "/user"),
        ("user=%27%20OR%201%3D1--".into(), "/user"),
        ("connection=FB".into(), "/connection"),
        ("connection=-fb".into(), "/connection"),
        (format!("connection={}", "a".repeat(64)), "/connection"),
        ("protocol=OIDC".into(), "/protocol"),
        ("protocol=o%27idc".into(), "/protocol"),
        ("client_ip=127.000.0.1".into(), "/client_ip"),
        ("client_ip=10.0.0.0%2F8".into(), "/client_ip"),
        ("client_ip=localhost".into(), "/client_ip"),
        ("order=random".into(), "/order"),
        ("order=NEWEST".into(), "/order"),
        ("cursor=3".into(), "/cursor"),
        ("cursor=c2_".into(), "/cursor"),
        ("cursor=c1_AAAAAAAAAAc".into(), "/cursor"),
        ("cursor=c2_AAAAAAAAAAAAAAAAAAAAAA%3D%3D".into(), "/cursor"),
        ("cursor=c2_%27%20OR%201%3D1".into(), "/cursor"),
        (format!("cursor={negative}"), "/cursor"),
        (format!("cursor=c2_{long}"), "/cursor"),
        ("order=tail".into(), "/order"),
        ("limit=0".into(), "/limit"),
        ("limit=201".into(), "/limit"),
        ("limit=-1".into(), "/limit"),
        ("limit=ten".into(), "/limit"),
        ("limit=99999999999999999999999".into(), "/limit"),
        ("from=yesterday".into(), "/from"),
        ("from=2026-13-01T00:00:00Z".into(), "/from"),
        ("to=2026-12-01".into(), "/to"),
        (
            "from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z".into(),
            "/to",
        ),
        (
            "from=2026-12-02T00:00:00Z&to=2026-12-02T00:00:00Z".into(),
            "/to",
        ),
        ("kind=login.failed".into(), "/kind"),
        ("type=login.failed&type=login.started".into(), "/type"),
        (format!("{long}=1"), long_field.as_str()),
        ("a%2Fb~c=1".into(), "/a~1b~0c"),
        (format!("email={long}"), "/email"),
    ];
    for (query, field) in &cases {
        let page = raw_page(&gh, &slug, query).await;
        let problem = page.assert_problem(422, Some(field));
        assert_eq!(
            problem["type"],
            json!("urn:gatehouse:problem:invalid-field"),
            "{query}: {}",
            page.describe()
        );
        assert!(
            page.body.len() < 2_000,
            "the problem does not echo a long value back: {query}"
        );
    }

    // Several bad parameters: each is named.
    let page = raw_page(&gh, &slug, "outcome=x&limit=0&order=up").await;
    let problem = page.assert_problem(422, Some("/outcome"));
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors[]: {}", page.describe()))
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        ["/outcome", "/limit", "/order"],
        "{}",
        page.describe()
    );

    // Valid values full of SQL are only values: nothing matches, nothing breaks.
    for query in [
        "email=x%27%3B%20DELETE%20FROM%20audit_log%3B--%40evil.test",
        "email=%25",
        "email=_%40good.test",
        "email=%FF%FE%40good.test",
        // `_` is a LIKE wildcard: unescaped, this would match tenant.connection.configured.
        "type=tenant_connection.",
    ] {
        let page = raw_page(&gh, &slug, query).await;
        page.assert_status(200);
        assert_eq!(
            page.json()["events"],
            json!([]),
            "{query}: {}",
            page.describe()
        );
    }
    assert_eq!(
        ids(&gh.audit(&slug, &[]).await),
        ids(&before),
        "the log is unchanged"
    );

    // An unknown tenant is a 404, not an empty log.
    raw_page(&gh, "no-such-tenant", "")
        .await
        .assert_problem(404, None);
}

async fn both_orders_and_cursors_while_entries_arrive(store: Store) {
    let gh = Gatehouse::start(store).await;
    let slug = unique("t-");
    gh.create_tenant(&slug, "Paging", "https://paging.test/")
        .await;
    add_oauth2_connection(&gh, &slug).await;
    forged_callbacks(&gh, &slug, 0, 4).await;

    // Oldest first is newest first reversed; in commit order, positions count 1, 2, 3... with
    // no gap.
    let newest = gh.audit(&slug, &[]).await;
    let mut oldest = gh
        .audit(&slug, &[("order", "oldest")])
        .await;
    let committed = gh
        .audit(&slug, &[("order", "commit")])
        .await;
    assert_eq!(
        positions(&committed),
        (1..=newest.len() as i64).collect::<Vec<_>>(),
        "{committed:#?}"
    );
    oldest.reverse();
    assert_eq!(ids(&oldest), ids(&newest));
    let times: Vec<&str> = newest
        .iter()
        .filter_map(|e| e["time"].as_str())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first by time: {times:?}"
    );

    // Newest first, paged by 3 while more entries arrive: the pages go on into older entries
    // with nothing missed or repeated; the new entries head a fresh first page.
    let first = gh
        .audit_page(&slug, &[("limit", "3")])
        .await;
    first.assert_status(200);
    let body = first.json();
    let mut walked: Vec<Value> = body["events"]
        .as_array()
        .expect("events")
        .clone();
    let mut cursor = body["next_cursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();
    forged_callbacks(&gh, &slug, 100, 3).await;
    loop {
        let page = gh
            .audit_page(&slug, &[("limit", "3"), ("cursor", &cursor)])
            .await;
        page.assert_status(200);
        let body = page.json();
        walked.extend(
            body["events"]
                .as_array()
                .expect("events")
                .iter()
                .cloned(),
        );
        match body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(ids(&walked), ids(&newest), "paging across inserts");
    let now = gh.audit(&slug, &[]).await;
    let added = now.len() - newest.len();
    assert!(added >= 3, "{now:#?}");
    assert_eq!(ids(&now[added..]), ids(&newest));

    // Tail mode: commit order from a cursor, two at a time, entries arriving between polls.
    // Every entry is seen once, in position order; caught up, the cursor stays put.
    let mut seen: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut polls = 0;
    loop {
        polls += 1;
        assert!(polls < 100, "the tail never caught up");
        if polls == 3 {
            forged_callbacks(&gh, &slug, 200, 2).await;
        }
        let mut query = vec![("order", "commit"), ("limit", "2")];
        if let Some(c) = &cursor {
            query.push(("cursor", c.as_str()));
        }
        let page = gh.audit_page(&slug, &query).await;
        page.assert_status(200);
        let body = page.json();
        let batch = body["events"]
            .as_array()
            .expect("events")
            .clone();
        let next = body["next_cursor"]
            .as_str()
            .expect("a tail always gets a cursor once anything matched")
            .to_owned();
        if let Some(last) = batch.last() {
            assert_eq!(last["cursor"], json!(next), "{}", page.describe());
        }
        if batch.is_empty() {
            assert_eq!(
                Some(&next),
                cursor.as_ref(),
                "an empty poll keeps the cursor"
            );
            break;
        }
        seen.extend(batch);
        cursor = Some(next);
    }
    let all = gh
        .audit(&slug, &[("order", "commit")])
        .await;
    assert_eq!(ids(&seen), ids(&all));
    assert_eq!(positions(&seen), (1..=all.len() as i64).collect::<Vec<_>>());
    let unique_ids: HashSet<String> = ids(&seen).into_iter().collect();
    assert_eq!(unique_ids.len(), seen.len(), "no entry twice");

    // A filtered tail gets a cursor too, and an entry's own cursor resumes after it.
    let failed = gh
        .audit(&slug, &[("order", "commit"), ("type", "login.failed")])
        .await;
    assert_eq!(failed.len(), 9, "{failed:#?}");
    let resume = failed[4]["cursor"]
        .as_str()
        .expect("cursor");
    let page = gh
        .audit_page(
            &slug,
            &[
                ("order", "commit"),
                ("type", "login.failed"),
                ("cursor", resume),
            ],
        )
        .await;
    page.assert_status(200);
    let body = page.json();
    assert_eq!(
        ids(body["events"]
            .as_array()
            .expect("events")),
        ids(&failed[5..])
    );
    assert_eq!(body["next_cursor"], failed[8]["cursor"]);

    // While a projection rebuild refills the log, a tail never runs past an entry that is
    // chained but not back yet: a row missing from the log stops it right there.
    let hidden = &all[all.len() - 3];
    let hidden_key = hidden["id"].as_str().expect("id");
    let saved = gh.sql(&format!(
        "SELECT id FROM audit_log WHERE event_key = '{hidden_key}'"
    ));
    assert!(!saved.trim().is_empty());
    gh.sql(&format!(
        "CREATE TABLE hidden_row AS SELECT * FROM audit_log WHERE event_key = '{hidden_key}'"
    ));
    gh.sql(&format!(
        "DELETE FROM audit_log WHERE event_key = '{hidden_key}'"
    ));
    let before_gap = all[all.len() - 5]["cursor"]
        .as_str()
        .expect("cursor");
    let page = gh
        .audit_page(&slug, &[("order", "commit"), ("cursor", before_gap)])
        .await;
    page.assert_status(200);
    let body = page.json();
    assert_eq!(
        ids(body["events"]
            .as_array()
            .expect("events")),
        ids(&all[all.len() - 4..all.len() - 3]),
        "the page stops before the missing entry: {}",
        page.describe()
    );
    let stopped = body["next_cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let page = gh
        .audit_page(&slug, &[("order", "commit"), ("cursor", &stopped)])
        .await;
    assert_eq!(page.json()["events"], json!([]), "{}", page.describe());
    gh.sql("INSERT INTO audit_log SELECT * FROM hidden_row");
    let page = gh
        .audit_page(&slug, &[("order", "commit"), ("cursor", &stopped)])
        .await;
    assert_eq!(
        ids(page.json()["events"]
            .as_array()
            .expect("events")),
        ids(&all[all.len() - 3..]),
        "once back, the tail carries on from it: {}",
        page.describe()
    );
}

async fn the_shape_names_actor_target_outcome_and_request(store: Store) {
    let gh = Gatehouse::start(store).await;
    let idp = Idp::shared().await;
    let slug = unique("t-");
    let request_id = format!("req-{}", unique("r"));
    let response = gh
        .admin()
        .post(gh.url("/api/v1/tenants"))
        .header("X-Request-Id", &request_id)
        .json(&json!({
            "slug": slug,
            "display_name": "Shape",
            "app_url": format!("https://app.{slug}.test/"),
        }))
        .send()
        .await
        .expect("POST /api/v1/tenants");
    assert!(response.status().is_success(), "{}", response.status());
    let (client_id, client_secret) = idp
        .register_client(&[gh.callback_url(&slug, "okta")], false)
        .await;
    gh.put_oidc_connection(
        &slug,
        "okta",
        "Okta",
        json!({
            "discovery_url": idp.discovery_url(),
            "client_id": client_id,
            "client_secret": client_secret,
            "allowed_domains": ["good.test"],
        }),
    )
    .await;
    let login = unique("user-");
    let email = format!("{login}@good.test");
    idp.set_account(
        &login,
        json!({ "sub": format!("{login}-sub"), "email": email, "email_verified": true }),
    )
    .await;
    let browser = browser();
    let callback = login_via_idp(&browser, &gh, idp, &slug, &login).await;
    call_callback(&browser, &callback)
        .await
        .assert_status(302);
    let session = gh.assert_session(&browser).await;
    let user_id = session["user_id"]
        .as_str()
        .expect("user_id");
    gh.logout(&browser, &slug).await;

    let events = gh
        .audit_until(&slug, &[("order", "commit")], "session.ended", |ev| {
            ev.iter()
                .any(|e| e["type"] == json!("session.ended"))
        })
        .await;
    let one = |kind: &str| {
        events
            .iter()
            .find(|e| e["type"] == json!(kind))
            .unwrap_or_else(|| panic!("no {kind}: {events:#?}"))
            .clone()
    };
    for e in &events {
        assert_eq!(e["schema"], json!("gatehouse.audit.event/1"), "{e:#}");
        assert_eq!(e["tenant"], json!(slug), "{e:#}");
        let kind = e["type"].as_str().expect("type");
        let words: Vec<&str> = kind.split('.').collect();
        assert!(
            words.len() >= 2
                && words.iter().all(|w| !w.is_empty()
                    && w.bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'_')),
            "dotted lowercase type: {kind}"
        );
    }

    let created = one("tenant.created");
    assert_eq!(
        created["actor"]["kind"],
        json!("admin_credential"),
        "{created:#}"
    );
    assert!(created["actor"]["id"].is_string(), "{created:#}");
    assert_eq!(
        created["target"],
        json!({"kind": "tenant", "id": slug}),
        "{created:#}"
    );
    assert_eq!(created["request_id"], json!(request_id), "{created:#}");
    assert_eq!(created["outcome"]["result"], Value::Null, "{created:#}");

    let configured = one("tenant.connection.configured");
    assert_eq!(
        configured["target"],
        json!({"kind": "connection", "id": "okta"}),
        "{configured:#}"
    );
    assert_eq!(configured["protocol"], json!("oidc"), "{configured:#}");
    assert!(configured["request_id"].is_string(), "{configured:#}");

    let started = one("login.started");
    assert_eq!(
        started["actor"],
        json!({"kind": "person", "id": null}),
        "{started:#}"
    );
    assert_eq!(
        started["target"],
        json!({"kind": "connection", "id": "okta"}),
        "{started:#}"
    );
    assert_eq!(started["client_ip"], json!("127.0.0.1"), "{started:#}");
    assert!(started["user_agent"].is_string(), "{started:#}");
    assert!(started["attempt_id"].is_string(), "{started:#}");
    assert!(started["request_id"].is_string(), "{started:#}");

    let succeeded = one("login.succeeded");
    assert_eq!(
        succeeded["actor"],
        json!({"kind": "person", "id": user_id}),
        "{succeeded:#}"
    );
    assert_eq!(
        succeeded["outcome"]["result"],
        json!("succeeded"),
        "{succeeded:#}"
    );
    assert_eq!(succeeded["email"], json!(email), "{succeeded:#}");
    assert_eq!(
        succeeded["attempt_id"], started["attempt_id"],
        "{succeeded:#}"
    );

    let provisioned = one("user.provisioned");
    assert_eq!(
        provisioned["target"],
        json!({"kind": "user", "id": user_id}),
        "{provisioned:#}"
    );
    let session_started = one("session.started");
    assert_eq!(
        session_started["target"]["kind"],
        json!("session"),
        "{session_started:#}"
    );
    let ended = one("session.ended");
    assert_eq!(ended["target"], session_started["target"], "{ended:#}");
    assert_eq!(
        ended["actor"],
        json!({"kind": "person", "id": user_id}),
        "{ended:#}"
    );
    assert!(ended["outcome"]["reason"].is_string(), "{ended:#}");

    // A credential change: its actor, target and request.
    let minted = gh
        .admin()
        .post(gh.url("/api/v1/credentials"))
        .header("X-Request-Id", "mint-an-auditor")
        .json(&json!({ "role": "auditor", "tenant": slug, "label": "SIEM" }))
        .send()
        .await
        .expect("POST /api/v1/credentials");
    assert_eq!(minted.status().as_u16(), 201);
    let minted: Value = minted.json().await.expect("JSON");
    let credential_id = minted["credential"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let created = gh
        .audit_until(
            &slug,
            &[("type", "credential.created")],
            "credential.created",
            |ev| !ev.is_empty(),
        )
        .await;
    assert_eq!(
        created[0]["target"],
        json!({"kind": "credential", "id": credential_id}),
        "{created:#?}"
    );
    assert_eq!(
        created[0]["actor"]["kind"],
        json!("admin_credential"),
        "{created:#?}"
    );
    assert_eq!(
        created[0]["request_id"],
        json!("mint-an-auditor"),
        "{created:#?}"
    );

    // A read of the log is an entry of the access log, in the same shape.
    let read = gh
        .admin()
        .get(events_url(&gh, &slug, "type=login."))
        .header("X-Request-Id", "read-the-log")
        .send()
        .await
        .expect("GET events");
    assert_eq!(read.status().as_u16(), 200);
    gh.projected().await;
    let page = gh
        .admin_get(&format!("/api/v1/tenants/{slug}/audit/reads?limit=200"))
        .await;
    page.assert_status(200);
    let reads = page.json()["events"]
        .as_array()
        .expect("events")
        .clone();
    let mine = reads
        .iter()
        .find(|e| e["request_id"] == json!("read-the-log"))
        .unwrap_or_else(|| panic!("no audit.read of read-the-log: {reads:#?}"));
    assert_eq!(mine["schema"], json!("gatehouse.audit.event/1"), "{mine:#}");
    assert_eq!(mine["type"], json!("audit.read"), "{mine:#}");
    assert_eq!(mine["actor"]["kind"], json!("admin_credential"), "{mine:#}");
    assert_eq!(
        mine["target"],
        json!({"kind": "audit_log", "id": slug}),
        "{mine:#}"
    );

    // The events list and the chain agree on positions.
    let report = gh
        .admin_get(&format!("/api/v1/tenants/{slug}/audit/verify"))
        .await
        .json();
    assert_eq!(report["ok"], json!(true), "{report:#}");
    let committed = gh.audit(&slug, &[("order", "commit")]).await;
    assert_eq!(
        report["head_position"],
        committed
            .last()
            .map(|e| e["position"].clone())
            .unwrap_or_default(),
        "{report:#}"
    );
    assert_eq!(
        positions(&committed),
        (1..=committed.len() as i64).collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------------------
// Out-of-order commits (PostgreSQL)

/// A psql session kept open, so a transaction can span several steps of a test.
struct Psql {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Psql {
    fn open(url: &str) -> Psql {
        let mut child = Command::new("psql")
            .arg(url)
            .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run psql");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Psql {
            child,
            stdin,
            stdout,
        }
    }

    /// Runs one statement and returns its output lines (psql prints each result at once).
    fn run(&mut self, sql: &str) -> Vec<String> {
        writeln!(self.stdin, "{sql};\n\\echo __done__").expect("write to psql");
        self.stdin.flush().expect("flush");
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let read = self
                .stdout
                .read_line(&mut line)
                .expect("read psql");
            assert!(read > 0, "psql stopped (the statement failed?): {sql}");
            let line = line.trim_end().to_owned();
            if line == "__done__" {
                return lines;
            }
            if !line.is_empty() {
                lines.push(line);
            }
        }
    }
}

impl Drop for Psql {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An audit row written the way Gatehouse writes one, for the hash computation.
struct Entry {
    event_key: String,
    tenant: String,
    time: i64,
    kind: &'static str,
    request_id: String,
}

impl Entry {
    fn hash(&self) -> [u8; 32] {
        EntryContent {
            form: CURRENT_FORM,
            event_key: &self.event_key,
            tenant: &self.tenant,
            time: self.time,
            kind: self.kind,
            attempt_id: None,
            connection_id: None,
            protocol: None,
            outcome: None,
            reason: None,
            detail: None,
            email: None,
            user_id: None,
            actor: Some("system"),
            client_ip: None,
            user_agent: None,
            request_id: Some(&self.request_id),
        }
        .hash()
        .expect("the current form")
    }
}

impl Psql {
    /// Inside an open transaction: inserts `entry`'s audit row (drawing its row id) and
    /// returns the id.
    fn insert_row(&mut self, entry: &Entry) -> i64 {
        self.run(&format!(
            "INSERT INTO audit_log (event_key, tenant, time, type, actor, request_id) \
             VALUES ('{}', '{}', {}, '{}', 'system', '{}') RETURNING id",
            entry.event_key, entry.tenant, entry.time, entry.kind, entry.request_id
        ))[0]
            .parse()
            .expect("id")
    }

    /// Inside an open transaction: chains the row of `entry` exactly as Gatehouse does (locks
    /// the tenant's head, takes the next position, writes the link, the row's position and
    /// the head). Returns the position.
    fn chain(&mut self, entry: &Entry) -> i64 {
        let head = self.run(&format!(
            "INSERT INTO audit_chain_heads (tenant, position, link_hash, checkpoint_position, \
             checkpoint_time) VALUES ('{}', 0, decode(repeat('00', 32), 'hex'), 0, 0) \
             ON CONFLICT (tenant) DO UPDATE SET tenant = excluded.tenant \
             RETURNING position || ' ' || encode(link_hash, 'hex')",
            entry.tenant
        ));
        let (head, previous) = head[0]
            .split_once(' ')
            .expect("position and link");
        let position = head.parse::<i64>().expect("position") + 1;
        let hash = entry.hash();
        let link = link_hash(&hex_bytes(previous), position, &hash);
        self.run(&format!(
            "INSERT INTO audit_chain (tenant, position, event_key, entry_hash, link_hash, form) \
             VALUES ('{}', {position}, '{}', decode('{}', 'hex'), decode('{}', 'hex'), \
             {CURRENT_FORM})",
            entry.tenant,
            entry.event_key,
            hex(&hash),
            hex(&link)
        ));
        self.run(&format!(
            "UPDATE audit_log SET position = {position} WHERE event_key = '{}'",
            entry.event_key
        ));
        self.run(&format!(
            "UPDATE audit_chain_heads SET position = {position}, link_hash = decode('{}', 'hex') \
             WHERE tenant = '{}'",
            hex(&link),
            entry.tenant
        ));
        position
    }
}

/// The tail sees an entry whose transaction drew the lower row id but committed second.
///
/// Two psql sessions write audit entries for one tenant the way Gatehouse does. A begins and
/// inserts its row first, drawing the lower `audit_log.id`, then holds off. B begins, inserts
/// its row (the higher id), chains it under the tenant's head lock and commits. A tail poll sees
/// B. A then chains its entry (waiting for nobody: B is done) and commits. The next poll, from
/// the cursor the tail holds, sees A: a reader paging by row id would have passed over A for
/// good, since it sorts before B. The chain verifies at the end, so both entries are faithful
/// copies of Gatehouse's writes. (SQLite has one writer at a time: a second write transaction
/// cannot begin before the first commits, so commits cannot be out of order there.)
#[tokio::test]
async fn a_tail_sees_a_transaction_that_committed_after_a_later_numbered_one() {
    let gh = Gatehouse::start(Store::Postgres).await;
    let slug = unique("t-");
    gh.create_tenant(&slug, "Tail", "https://tail.test/")
        .await;
    let tail = |cursor: Option<String>| {
        let gh = &gh;
        let slug = slug.clone();
        async move {
            let mut query = vec![("order", "commit".to_owned())];
            if let Some(c) = cursor {
                query.push(("cursor", c));
            }
            let query: Vec<(&str, &str)> = query
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect();
            let page = gh.audit_page(&slug, &query).await;
            page.assert_status(200);
            let body = page.json();
            (
                body["events"]
                    .as_array()
                    .expect("events")
                    .clone(),
                body["next_cursor"]
                    .as_str()
                    .map(str::to_owned),
            )
        }
    };
    let (first, cursor) = tail(None).await;
    assert_eq!(ids(&first).len(), 1, "tenant.created: {first:#?}");
    let entry = |sequence: u32, request_id: &str| Entry {
        event_key: format!("tenant:{slug}:{sequence}"),
        tenant: slug.clone(),
        time: chrono::Utc::now().timestamp_millis(),
        kind: "tenant.login_policy.changed",
        request_id: request_id.to_owned(),
    };
    let url = gh
        .database_url
        .clone()
        .expect("a PostgreSQL database");
    let (entry_a, entry_b) = (entry(9001, "commits-second"), entry(9002, "commits-first"));

    let mut a = Psql::open(&url);
    a.run("BEGIN");
    let a_id = a.insert_row(&entry_a);
    let mut b = Psql::open(&url);
    b.run("BEGIN");
    let b_id = b.insert_row(&entry_b);
    assert!(b_id > a_id, "B's row id {b_id} is later than A's {a_id}");
    let b_position = b.chain(&entry_b);
    b.run("COMMIT");

    let (seen_b, cursor) = tail(cursor).await;
    assert_eq!(ids(&seen_b), [entry_b.event_key.clone()], "{seen_b:#?}");
    assert_eq!(seen_b[0]["position"], json!(b_position));
    // What a reader going by row id has passed now.
    let last_seen_id = b_id;

    let a_position = a.chain(&entry_a);
    a.run("COMMIT");
    assert_eq!(a_position, b_position + 1);

    // The tail, polling on from its cursor, sees A; by row id it sorts before what was seen.
    let (seen_a, next) = tail(cursor.clone()).await;
    assert_eq!(ids(&seen_a), [entry_a.event_key.clone()], "{seen_a:#?}");
    assert_eq!(seen_a[0]["request_id"], json!("commits-second"));
    assert!(a_id < last_seen_id);
    let by_id = gh.sql(&format!(
        "SELECT count(*) FROM audit_log WHERE tenant = '{slug}' AND id > {last_seen_id}"
    ));
    assert_eq!(
        by_id.trim(),
        "0",
        "an id-based tail would have nothing new: it lost A"
    );
    let (empty, _) = tail(next).await;
    assert!(empty.is_empty(), "{empty:#?}");

    // Both entries are faithful copies of Gatehouse's writes: the chain verifies.
    let report = gh
        .admin_get(&format!("/api/v1/tenants/{slug}/audit/verify"))
        .await
        .json();
    assert_eq!(report["ok"], json!(true), "{report:#}");
    assert_eq!(report["head_position"], json!(a_position), "{report:#}");
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hex_bytes(text: &str) -> [u8; 32] {
    let bytes: Vec<u8> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect();
    bytes.try_into().expect("32 bytes")
}
