//! A tenant's SSO configuration at any moment (`GET /api/v1/tenants/{slug}/config?at=`) and the
//! changes between two moments with who made each (`GET .../config/diff?from=&to=`), computed
//! from the tenant's events. Real changes are made through the admin API by two credentials,
//! with the moments between them taken by the test; secrets never show, a kept secret is not a
//! change, and the answers do not depend on the read models.

#[macro_use]
mod common;

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use common::*;
use serde_json::{json, Value};

on_both_stores!(
    each_moment_shows_the_configuration_then_in_force,
    the_diff_names_each_change_its_author_and_time,
    history_does_not_depend_on_the_read_models,
    bad_moments_and_parameters_are_problems,
);

/// An admin credential other than the harness's own.
struct Credential {
    id: String,
    token: String,
}

/// A tenant admin of `slug`, made by the platform admin through the credentials API.
async fn tenant_admin(gh: &Gatehouse, slug: &str) -> Credential {
    let body = json!({"role": "tenant_admin", "tenant": slug, "label": "history tests"});
    let page = gh
        .admin_post("/api/v1/credentials", &body)
        .await;
    page.assert_status(201);
    let issued = page.json();
    Credential {
        id: issued["credential"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id: {}", page.describe()))
            .to_owned(),
        token: issued["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {}", page.describe()))
            .to_owned(),
    }
}

async fn send(
    gh: &Gatehouse,
    credential: &Credential,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> Page {
    let url = gh.url(path);
    let mut request = client()
        .request(method, &url)
        .bearer_auth(&credential.token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    Page::read(&url, response).await
}

fn harness_admin(gh: &Gatehouse) -> Credential {
    Credential {
        id: "config".to_owned(),
        token: gh.admin_token.clone(),
    }
}

/// Now, as RFC 3339, after which the test waits a few milliseconds: the next event is recorded
/// strictly later, even with the millisecond precision of event times.
async fn moment() -> DateTime<Utc> {
    let now = Utc::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    now
}

fn text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

const FIRST_SECRET: &str = "first-secret-Qm9vb";
const SECOND_SECRET: &str = "second-secret-WmFw";

fn facebook(label: &str, secret: Option<&str>) -> Value {
    let mut config = json!({
        "preset": "facebook",
        "client_id": "1234",
        "allowed_domains": ["good.test"],
    });
    if let Some(secret) = secret {
        config["client_secret"] = json!(secret);
    }
    json!({"protocol": "oauth2", "label": label, "config": config})
}

/// The moments around a scripted series of changes by two credentials.
struct Story {
    slug: String,
    first: Credential,
    second: Credential,
    /// `moments[0]` before the tenant existed; `moments[k]` after change k.
    moments: Vec<DateTime<Utc>>,
}

/// 1 first (the platform admin) creates the tenant; 2 second (a tenant admin made after
/// that) adds a connection with a secret; 3 first refuses guests; 4 second relabels the
/// connection and changes its secret; 5 first relabels it again and keeps the secret (omitted);
/// 6 second removes it.
async fn story(gh: &Gatehouse) -> Story {
    let first = harness_admin(gh);
    let slug = unique("hist-");
    let connection = format!("/api/v1/tenants/{slug}/connections/fb");
    let mut moments = vec![moment().await];

    send(
        gh,
        &first,
        reqwest::Method::POST,
        "/api/v1/tenants",
        Some(&json!({"slug": slug, "display_name": "History", "app_url": "https://app.history.test/"})),
    )
    .await
    .assert_status(201);
    moments.push(moment().await);
    let second = tenant_admin(gh, &slug).await;
    let body = facebook("Facebook", Some(FIRST_SECRET));
    send(gh, &second, reqwest::Method::PUT, &connection, Some(&body))
        .await
        .assert_status(200);
    moments.push(moment().await);
    let policy = json!({"standard_methods": [], "guests_allowed": false, "enforce_sso": true});
    let path = format!("/api/v1/tenants/{slug}/login-policy");
    send(gh, &first, reqwest::Method::PUT, &path, Some(&policy))
        .await
        .assert_status(200);
    moments.push(moment().await);
    let body = facebook("Facebook SSO", Some(SECOND_SECRET));
    send(gh, &second, reqwest::Method::PUT, &connection, Some(&body))
        .await
        .assert_status(200);
    moments.push(moment().await);
    let body = facebook("Facebook (kept secret)", None);
    send(gh, &first, reqwest::Method::PUT, &connection, Some(&body))
        .await
        .assert_status(200);
    moments.push(moment().await);
    send(gh, &second, reqwest::Method::DELETE, &connection, None)
        .await
        .assert_status(204);
    moments.push(moment().await);
    Story {
        slug,
        first,
        second,
        moments,
    }
}

async fn config_at(gh: &Gatehouse, slug: &str, at: Option<DateTime<Utc>>) -> Page {
    let mut path = format!("/api/v1/tenants/{slug}/config");
    if let Some(at) = at {
        path.push_str(&format!("?at={}", urlencode(&text(at))));
    }
    gh.admin_get(&path).await
}

async fn diff(gh: &Gatehouse, slug: &str, query: &str) -> Page {
    gh.admin_get(&format!("/api/v1/tenants/{slug}/config/diff?{query}"))
        .await
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn assert_no_secret(page: &Page) {
    for secret in [FIRST_SECRET, SECOND_SECRET] {
        assert!(
            !page.body.contains(secret),
            "a secret leaked: {}",
            page.describe()
        );
    }
    for sealed in ["$sealed", "ciphertext", "A256GCM"] {
        assert!(
            !page.body.contains(sealed),
            "a sealed secret leaked: {}",
            page.describe()
        );
    }
}

async fn each_moment_shows_the_configuration_then_in_force(store: Store) {
    let gh = Gatehouse::start(store).await;
    let story = story(&gh).await;
    let slug = &story.slug;
    let m = &story.moments;

    let page = config_at(&gh, slug, Some(m[1])).await;
    page.assert_status(200);
    let body = page.json();
    assert_eq!(body["tenant"], json!(slug));
    assert_eq!(body["last_change"]["sequence"], json!(1), "{body:#}");
    assert_eq!(body["last_change"]["event_type"], json!("tenant.created"));
    assert_eq!(body["last_change"]["credential_id"], json!(story.first.id));
    let config = &body["config"];
    assert_eq!(config["slug"], json!(slug));
    assert_eq!(config["display_name"], json!("History"));
    assert_eq!(config["app_url"], json!("https://app.history.test/"));
    assert_eq!(config["connections"], json!({}));
    assert_eq!(
        config["login_policy"],
        json!({"standard_methods": [], "guests_allowed": true, "enforce_sso": true, "link_verified_email": false})
    );

    let page = config_at(&gh, slug, Some(m[2])).await;
    page.assert_status(200);
    assert_no_secret(&page);
    let body = page.json();
    let fb = &body["config"]["connections"]["fb"];
    assert_eq!(fb["protocol"], json!("oauth2"), "{body:#}");
    assert_eq!(fb["label"], json!("Facebook"));
    assert_eq!(fb["config"]["client_id"], json!("1234"));
    assert_eq!(fb["config"]["client_secret_set"], json!(true), "{body:#}");
    assert!(
        fb["config"]
            .get("client_secret")
            .is_none(),
        "{body:#}"
    );
    assert_eq!(body["last_change"]["credential_id"], json!(story.second.id));
    assert_eq!(
        body["config"]["login_policy"]["guests_allowed"],
        json!(true)
    );

    let body = config_at(&gh, slug, Some(m[3]))
        .await
        .json();
    assert_eq!(
        body["config"]["login_policy"]["guests_allowed"],
        json!(false),
        "{body:#}"
    );
    assert_eq!(
        body["config"]["connections"]["fb"]["label"],
        json!("Facebook")
    );

    for (k, label) in [(4, "Facebook SSO"), (5, "Facebook (kept secret)")] {
        let page = config_at(&gh, slug, Some(m[k])).await;
        assert_no_secret(&page);
        let body = page.json();
        let fb = &body["config"]["connections"]["fb"];
        assert_eq!(fb["label"], json!(label), "at moment {k}: {body:#}");
        assert_eq!(fb["config"]["client_secret_set"], json!(true), "{body:#}");
    }

    let body = config_at(&gh, slug, Some(m[6]))
        .await
        .json();
    assert_eq!(body["config"]["connections"], json!({}), "{body:#}");
    assert_eq!(
        body["last_change"]["event_type"],
        json!("tenant.connection.removed")
    );
    assert_eq!(body["last_change"]["sequence"], json!(6));
    // Without `at`: now, which is the last configuration.
    let now = config_at(&gh, slug, None).await.json();
    assert_eq!(now["config"], body["config"]);
    assert_eq!(now["last_change"], body["last_change"]);

    // The admin API's own view agrees with the history at the end.
    let tenant = gh
        .admin_get(&format!("/api/v1/tenants/{slug}"))
        .await
        .json();
    assert_eq!(tenant["display_name"], now["config"]["display_name"]);
    assert_eq!(tenant["connections"], json!([]));
}

/// The changes of one event (by sequence) in a diff.
fn changes_of(diff: &Value, sequence: u64) -> Vec<Value> {
    diff["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no changes array: {diff:#}"))
        .iter()
        .filter(|c| c["sequence"] == json!(sequence))
        .cloned()
        .collect()
}

fn change_at<'a>(changes: &'a [Value], path: &str) -> &'a Value {
    changes
        .iter()
        .find(|c| c["path"] == json!(path))
        .unwrap_or_else(|| panic!("no change at {path} in {changes:#?}"))
}

/// The event's recorded time lies between the moments taken around it.
fn assert_between(change: &Value, after: DateTime<Utc>, before: DateTime<Utc>) {
    let time: DateTime<Utc> = change["time"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("no time: {change:#}"));
    assert!(
        after < time && time <= before,
        "{time} not in ({after}, {before}]: {change:#}"
    );
}

async fn the_diff_names_each_change_its_author_and_time(store: Store) {
    let gh = Gatehouse::start(store).await;
    let story = story(&gh).await;
    let slug = &story.slug;
    let m = &story.moments;

    let query = format!(
        "from={}&to={}",
        urlencode(&text(m[1])),
        urlencode(&text(m[6]))
    );
    let page = diff(&gh, slug, &query).await;
    page.assert_status(200);
    assert_no_secret(&page);
    let body = page.json();
    assert_eq!(body["from_sequence"], json!(1), "{body:#}");
    assert_eq!(body["to_sequence"], json!(6), "{body:#}");
    let sequences: Vec<u64> = body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sequence"].as_u64().unwrap())
        .collect();
    assert!(
        sequences
            .windows(2)
            .all(|w| w[0] <= w[1]),
        "not in order: {sequences:?}"
    );
    assert!(
        !sequences.contains(&1),
        "the creation is before from: {body:#}"
    );

    // 2: the second credential added the connection, its secret without a value.
    let added = changes_of(&body, 2);
    for change in &added {
        assert_eq!(change["change"], json!("added"), "{change:#}");
        assert_eq!(
            change["credential_id"],
            json!(story.second.id),
            "{change:#}"
        );
        assert_eq!(change["actor"], json!(format!("admin:{}", story.second.id)));
        assert_eq!(change["event_type"], json!("tenant.connection.configured"));
        assert_between(change, m[1], m[2]);
    }
    assert_eq!(
        change_at(&added, "/connections/fb/label")["new"],
        json!("Facebook")
    );
    assert_eq!(
        change_at(&added, "/connections/fb/config/client_id")["new"],
        json!("1234")
    );
    assert_eq!(
        change_at(&added, "/connections/fb/config/allowed_domains")["new"],
        json!(["good.test"])
    );
    let secret = change_at(&added, "/connections/fb/config/client_secret");
    assert_eq!(secret["secret"], json!(true), "{secret:#}");
    assert!(
        secret.get("old").is_none() && secret.get("new").is_none(),
        "{secret:#}"
    );

    // 3: the first credential refused guests; nothing else changed.
    let policy = changes_of(&body, 3);
    assert_eq!(policy.len(), 1, "{policy:#?}");
    assert_eq!(policy[0]["path"], json!("/login_policy/guests_allowed"));
    assert_eq!(policy[0]["change"], json!("changed"));
    assert_eq!(policy[0]["old"], json!(true));
    assert_eq!(policy[0]["new"], json!(false));
    assert_eq!(policy[0]["secret"], json!(false));
    assert_eq!(policy[0]["credential_id"], json!(story.first.id));
    assert_between(&policy[0], m[2], m[3]);

    // 4: the second credential relabelled and changed the secret: "changed", no value.
    let relabel = changes_of(&body, 4);
    let paths: Vec<&str> = relabel
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        vec![
            "/connections/fb/config/client_secret",
            "/connections/fb/label"
        ]
    );
    let secret = change_at(&relabel, "/connections/fb/config/client_secret");
    assert_eq!(secret["change"], json!("changed"));
    assert_eq!(secret["secret"], json!(true));
    assert!(
        secret.get("old").is_none() && secret.get("new").is_none(),
        "{secret:#}"
    );
    let label = change_at(&relabel, "/connections/fb/label");
    assert_eq!(
        (&label["old"], &label["new"]),
        (&json!("Facebook"), &json!("Facebook SSO"))
    );
    assert_eq!(label["credential_id"], json!(story.second.id));
    assert_between(label, m[3], m[4]);

    // 5: a kept secret is sealed again, yet is no change: only the label changed.
    let kept = changes_of(&body, 5);
    assert_eq!(
        kept.len(),
        1,
        "a kept secret counted as a change: {kept:#?}"
    );
    assert_eq!(kept[0]["path"], json!("/connections/fb/label"));
    assert_eq!(kept[0]["credential_id"], json!(story.first.id));

    // 6: the removal, secret included, by the second credential.
    let removed = changes_of(&body, 6);
    assert!(
        removed
            .iter()
            .all(|c| c["change"] == json!("removed")),
        "{removed:#?}"
    );
    assert!(removed
        .iter()
        .all(|c| c["credential_id"] == json!(story.second.id)));
    assert_eq!(
        change_at(&removed, "/connections/fb/label")["old"],
        json!("Facebook (kept secret)")
    );
    let secret = change_at(&removed, "/connections/fb/config/client_secret");
    assert!(
        secret.get("old").is_none() && secret["secret"] == json!(true),
        "{secret:#}"
    );

    // A narrower window holds only its own changes.
    let query = format!(
        "from={}&to={}",
        urlencode(&text(m[2])),
        urlencode(&text(m[4]))
    );
    let narrow = diff(&gh, slug, &query).await.json();
    let sequences: Vec<u64> = narrow["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, vec![3, 4, 4], "{narrow:#}");

    // From before the tenant existed: the creation shows as added fields by the first admin.
    let query = format!(
        "from={}&to={}",
        urlencode(&text(m[0])),
        urlencode(&text(m[1]))
    );
    let creation = diff(&gh, slug, &query).await.json();
    assert_eq!(creation["from_sequence"], json!(0), "{creation:#}");
    let created = changes_of(&creation, 1);
    assert_eq!(change_at(&created, "/slug")["new"], json!(slug));
    assert_eq!(
        change_at(&created, "/display_name")["new"],
        json!("History")
    );
    assert!(created
        .iter()
        .all(|c| c["credential_id"] == json!(story.first.id)));
    assert_between(change_at(&created, "/slug"), m[0], m[1]);

    // An empty window has no change; `to` defaults to now.
    let query = format!("from={}", urlencode(&text(m[6])));
    let quiet = diff(&gh, slug, &query).await.json();
    assert_eq!(quiet["changes"], json!([]), "{quiet:#}");
    assert_eq!(quiet["to_sequence"], json!(6));
}

/// The read models can be emptied (or lag): history is folded from the events.
async fn history_does_not_depend_on_the_read_models(store: Store) {
    let gh = Gatehouse::start(store).await;
    let story = story(&gh).await;
    let slug = &story.slug;
    let m = &story.moments;
    let before = config_at(&gh, slug, Some(m[4]))
        .await
        .json();
    let query = format!(
        "from={}&to={}",
        urlencode(&text(m[0])),
        urlencode(&text(m[6]))
    );
    let diff_before = diff(&gh, slug, &query).await.json();

    gh.sql(&format!("DELETE FROM audit_log WHERE tenant = '{slug}'"));
    gh.sql(&format!("DELETE FROM tenants_view WHERE slug = '{slug}'"));

    assert_eq!(
        config_at(&gh, slug, Some(m[4]))
            .await
            .json(),
        before
    );
    assert_eq!(diff(&gh, slug, &query).await.json(), diff_before);
}

async fn bad_moments_and_parameters_are_problems(store: Store) {
    let gh = Gatehouse::start(store).await;
    let before = moment().await;
    let slug = unique("hist-");
    gh.create_tenant(&slug, "History", "https://app.history.test/")
        .await;
    let created = moment().await;

    // A moment before the tenant existed names its creation time.
    let problem = config_at(&gh, &slug, Some(before))
        .await
        .assert_problem(422, Some("/at"));
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("did not exist") && detail.contains("created at"),
        "{problem:#}"
    );
    let query = format!("from={0}&to={0}", urlencode(&text(before)));
    diff(&gh, &slug, &query)
        .await
        .assert_problem(422, Some("/to"));

    let future = text(Utc::now() + chrono::Duration::hours(1));
    let path = format!("/api/v1/tenants/{slug}/config?at={}", urlencode(&future));
    gh.admin_get(&path)
        .await
        .assert_problem(422, Some("/at"));
    for (query, field) in [
        ("at=yesterday".to_owned(), "/at"),
        ("at=2026-13-01T00:00:00Z".to_owned(), "/at"),
        (format!("at={0}&at={0}", urlencode(&text(created))), "/at"),
        ("when=now".to_owned(), "/when"),
    ] {
        gh.admin_get(&format!("/api/v1/tenants/{slug}/config?{query}"))
            .await
            .assert_problem(422, Some(field));
    }
    let created_text = urlencode(&text(created));
    for (query, field) in [
        (String::new(), "/from"),
        ("to=2026-01-01T00:00:00Z".to_owned(), "/from"),
        ("from=%00".to_owned(), "/from"),
        (
            format!("from={created_text}&to={}", urlencode(&text(before))),
            "/to",
        ),
        (
            format!("from={created_text}&to={}", urlencode(&future)),
            "/to",
        ),
        (format!("from={created_text}&cursor=x"), "/cursor"),
    ] {
        diff(&gh, &slug, &query)
            .await
            .assert_problem(422, Some(field));
    }

    gh.admin_get("/api/v1/tenants/no-such-tenant/config")
        .await
        .assert_problem(404, None);
    gh.admin_get("/api/v1/tenants/NOT%20A%20SLUG/config/diff?from=2026-01-01T00:00:00Z")
        .await
        .assert_problem(404, None);
    get(
        &client(),
        &gh.url(&format!("/api/v1/tenants/{slug}/config")),
    )
    .await
    .assert_problem(401, None);
    get(
        &client(),
        &gh.url(&format!(
            "/api/v1/tenants/{slug}/config/diff?from={created_text}"
        )),
    )
    .await
    .assert_problem(401, None);
}
