//! Dashboard counts: `GET /api/v1/tenants/{slug}/audit/summary?from=&to=&bucket=hour|day`
//! counts a tenant's audit entries per bucket by outcome, reason and connection. Real activity
//! (configuration by two credentials, started and refused logins on two connections) is counted
//! and checked against the listing of `GET .../audit/events` for the same range; rows written
//! around midnight UTC show the bucket boundaries; bad parameters are 422 problems.

#[macro_use]
mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, SecondsFormat, Timelike, Utc};
use common::*;
use serde_json::{json, Value};

on_both_stores!(
    counts_match_the_listing_by_outcome_reason_and_connection,
    buckets_are_cut_at_utc_hours_and_midnight,
    bad_parameters_are_problems,
);

fn text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

async fn summary(gh: &Gatehouse, slug: &str, query: &[(&str, &str)]) -> Page {
    gh.projected().await;
    let url = gh.url(&format!("/api/v1/tenants/{slug}/audit/summary"));
    let response = gh
        .admin()
        .get(&url)
        .query(query)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    Page::read(&url, response).await
}

async fn oauth2_connection(gh: &Gatehouse, slug: &str, id: &str, preset: &str) {
    gh.admin_put(
        &format!("/api/v1/tenants/{slug}/connections/{id}"),
        &json!({
            "protocol": "oauth2",
            "label": id,
            "config": {
                "preset": preset,
                "client_id": "1234",
                "client_secret": "summary-secret",
                "allowed_domains": ["good.test"],
                "require_verified_email": false,
            },
        }),
    )
    .await
    .assert_status(200);
}

/// Starts `starts` logins at a connection (each `login.started`, sent on to the provider) and
/// sends `forged` callbacks with a state Gatehouse never issued (each `login.failed`).
async fn activity(gh: &Gatehouse, slug: &str, connection: &str, starts: usize, forged: usize) {
    for _ in 0..starts {
        let page = get(
            &browser(),
            &gh.url(&format!("/{slug}/sso/{connection}/start")),
        )
        .await;
        page.assert_redirect();
    }
    for n in 0..forged {
        let url = gh.url(&format!(
            "/{slug}/sso/{connection}/callback?code=c{n}&state=forged-{n}"
        ));
        get(&browser(), &url)
            .await
            .assert_error_page(&[400]);
    }
}

/// What the summary should say, worked out from listed events: per bucket start, the counts.
fn expected(events: &[Value], width: Duration) -> BTreeMap<String, Value> {
    let mut buckets: BTreeMap<String, BTreeMap<&str, BTreeMap<String, u64>>> = BTreeMap::new();
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for event in events {
        let time: DateTime<Utc> = DateTime::parse_from_rfc3339(event["time"].as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc);
        let start = if width == Duration::hours(1) {
            time.date_naive()
                .and_hms_opt(time.hour(), 0, 0)
                .unwrap()
                .and_utc()
        } else {
            time.date_naive()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
        };
        let key = text(start);
        *totals.entry(key.clone()).or_default() += 1;
        let bucket = buckets.entry(key).or_default();
        for (field, name) in [
            ("/outcome/result", "outcomes"),
            ("/outcome/reason", "reasons"),
            ("/connection_id", "connections"),
        ] {
            if let Some(value) = event
                .pointer(field)
                .and_then(Value::as_str)
            {
                *bucket
                    .entry(name)
                    .or_default()
                    .entry(value.to_owned())
                    .or_default() += 1;
            }
        }
    }
    totals
        .into_iter()
        .map(|(start, total)| {
            let maps = buckets
                .remove(&start)
                .unwrap_or_default();
            let map = |name: &str| {
                json!(maps
                    .get(name)
                    .cloned()
                    .unwrap_or_default())
            };
            let counts = json!({
                "total": total,
                "outcomes": map("outcomes"),
                "reasons": map("reasons"),
                "connections": map("connections"),
            });
            (start, counts)
        })
        .collect()
}

/// The non-empty buckets of a summary, by start, without `start` and `end`.
fn non_empty(summary: &Value) -> BTreeMap<String, Value> {
    summary["buckets"]
        .as_array()
        .unwrap_or_else(|| panic!("no buckets: {summary:#}"))
        .iter()
        .filter(|b| b["total"] != json!(0))
        .map(|b| {
            let mut counts = b.clone();
            let start = counts
                .as_object_mut()
                .unwrap()
                .remove("start")
                .unwrap();
            counts
                .as_object_mut()
                .unwrap()
                .remove("end");
            (start.as_str().unwrap().to_owned(), counts)
        })
        .collect()
}

async fn counts_match_the_listing_by_outcome_reason_and_connection(store: Store) {
    let gh = Gatehouse::start(store).await;
    let slug = unique("sum-");
    let from = Utc::now() - Duration::minutes(5);
    gh.create_tenant(&slug, "Summary", &format!("https://app.{slug}.test/"))
        .await;
    oauth2_connection(&gh, &slug, "fb", "facebook").await;
    oauth2_connection(&gh, &slug, "gh", "github").await;
    activity(&gh, &slug, "fb", 3, 4).await;
    activity(&gh, &slug, "gh", 2, 1).await;
    // Another tenant's activity is never counted.
    let other = unique("sum-");
    gh.create_tenant(&other, "Other", &format!("https://app.{other}.test/"))
        .await;
    oauth2_connection(&gh, &other, "fb", "facebook").await;
    activity(&gh, &other, "fb", 2, 2).await;
    let to = Utc::now() + Duration::minutes(5);
    let (from_text, to_text) = (text(from), text(to));

    let listed = gh
        .audit(&slug, &[("from", &from_text), ("to", &to_text)])
        .await;
    for (bucket, width) in [("hour", Duration::hours(1)), ("day", Duration::days(1))] {
        let page = summary(
            &gh,
            &slug,
            &[("from", &from_text), ("to", &to_text), ("bucket", bucket)],
        )
        .await;
        page.assert_status(200);
        let body = page.json();
        assert_eq!(body["bucket"], json!(bucket));
        assert_eq!(body["tenant"], json!(slug));
        assert_eq!(
            non_empty(&body),
            expected(&listed, width),
            "by {bucket}: {body:#}"
        );
        let totals = &body["totals"];
        assert_eq!(totals["total"], json!(listed.len()), "{body:#}");
        assert_eq!(totals["outcomes"]["failed"], json!(5), "{body:#}");
        // Per connection: its configuration, each start, and each forged callback twice (the
        // attempt it opens and its refusal).
        assert_eq!(
            totals["connections"]["fb"],
            json!(1 + 3 + 2 * 4),
            "{body:#}"
        );
        assert_eq!(totals["connections"]["gh"], json!(1 + 2 + 2), "{body:#}");
        assert_eq!(totals["total"], json!(1 + 12 + 5), "{body:#}");
        let reasons: u64 = totals["reasons"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(reasons, 5, "every refusal has a reason: {body:#}");
        // Every bucket of the range is present, each one width long, in order.
        let buckets = body["buckets"].as_array().unwrap();
        for pair in buckets.windows(2) {
            assert_eq!(pair[0]["end"], pair[1]["start"], "{body:#}");
        }
        let first = DateTime::parse_from_rfc3339(buckets[0]["start"].as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc);
        assert!(first <= from && from - first < width, "{body:#}");
    }

    // A type prefix counts only those types: the configuration changes, by connection.
    let page = summary(
        &gh,
        &slug,
        &[
            ("from", &from_text),
            ("to", &to_text),
            ("bucket", "day"),
            ("type", "tenant."),
        ],
    )
    .await;
    let body = page.json();
    let configured = listed
        .iter()
        .filter(|e| {
            e["type"]
                .as_str()
                .unwrap()
                .starts_with("tenant.")
        })
        .count();
    assert_eq!(body["totals"]["total"], json!(configured), "{body:#}");
    assert_eq!(body["totals"]["outcomes"], json!({}), "{body:#}");
    assert_eq!(
        body["totals"]["connections"],
        json!({"fb": 1, "gh": 1}),
        "{body:#}"
    );
    // Other filters of the listing apply as well.
    let page = summary(
        &gh,
        &slug,
        &[
            ("from", &from_text),
            ("to", &to_text),
            ("bucket", "day"),
            ("connection", "gh"),
            ("outcome", "failed"),
        ],
    )
    .await;
    let body = page.json();
    assert_eq!(body["totals"]["total"], json!(1), "{body:#}");
    assert_eq!(body["totals"]["connections"], json!({"gh": 1}), "{body:#}");
}

/// Rows at chosen times (written directly: the API records only "now").
fn insert_rows(gh: &Gatehouse, slug: &str, rows: &[(&str, &str, Option<&str>)]) {
    for (n, (time, kind, outcome)) in rows.iter().enumerate() {
        let ms = DateTime::parse_from_rfc3339(time)
            .unwrap()
            .timestamp_millis();
        let outcome = outcome.map_or("NULL".to_owned(), |o| format!("'{o}'"));
        // The server may hold SQLite's write lock for a moment: wait for it.
        let wait = match gh.store {
            Store::Sqlite => "PRAGMA busy_timeout = 10000;",
            Store::Postgres => "",
        };
        gh.sql(&format!(
            "{wait} INSERT INTO audit_log \
             (event_key, tenant, time, type, outcome, connection_id, position) \
             VALUES ('test:{slug}:{n}', '{slug}', {ms}, '{kind}', {outcome}, 'okta', {})",
            1000 + n
        ));
    }
}

async fn buckets_are_cut_at_utc_hours_and_midnight(store: Store) {
    let gh = Gatehouse::start(store).await;
    let slug = unique("sum-");
    gh.create_tenant(&slug, "Summary", &format!("https://app.{slug}.test/"))
        .await;
    insert_rows(
        &gh,
        &slug,
        &[
            ("2026-11-30T22:59:59.999Z", "login.failed", Some("failed")),
            ("2026-11-30T23:00:00.000Z", "login.failed", Some("failed")),
            (
                "2026-11-30T23:59:59.999Z",
                "login.succeeded",
                Some("succeeded"),
            ),
            (
                "2026-12-01T00:00:00.000Z",
                "login.succeeded",
                Some("succeeded"),
            ),
            ("2026-12-01T00:59:59.999Z", "session.started", None),
            ("2026-12-01T01:00:00.000Z", "login.failed", Some("failed")),
        ],
    );

    let page = summary(
        &gh,
        &slug,
        &[
            ("from", "2026-11-30T23:00:00Z"),
            ("to", "2026-12-01T01:00:00Z"),
            ("bucket", "hour"),
        ],
    )
    .await;
    page.assert_status(200);
    let body = page.json();
    let buckets = body["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 2, "{body:#}");
    assert_eq!(buckets[0]["start"], json!("2026-11-30T23:00:00.000Z"));
    assert_eq!(buckets[0]["end"], json!("2026-12-01T00:00:00.000Z"));
    assert_eq!(buckets[0]["total"], json!(2), "{body:#}");
    assert_eq!(buckets[0]["outcomes"], json!({"failed": 1, "succeeded": 1}));
    assert_eq!(buckets[1]["start"], json!("2026-12-01T00:00:00.000Z"));
    assert_eq!(buckets[1]["total"], json!(2), "{body:#}");
    assert_eq!(buckets[1]["outcomes"], json!({"succeeded": 1}), "{body:#}");
    assert_eq!(body["totals"]["total"], json!(4));
    assert_eq!(body["totals"]["connections"], json!({"okta": 4}));

    // By day, from a moment inside the day: the first bucket starts at midnight UTC and
    // counts only what lies inside the range; a time zone offset in `from` changes nothing.
    let page = summary(
        &gh,
        &slug,
        &[
            ("from", "2026-12-01T01:30:00+02:00"),
            ("to", "2026-12-02T00:00:00Z"),
            ("bucket", "day"),
        ],
    )
    .await;
    let body = page.json();
    let buckets = body["buckets"].as_array().unwrap();
    assert_eq!(body["from"], json!("2026-11-30T23:30:00.000Z"), "{body:#}");
    assert_eq!(buckets.len(), 2, "{body:#}");
    assert_eq!(buckets[0]["start"], json!("2026-11-30T00:00:00.000Z"));
    assert_eq!(buckets[0]["total"], json!(1), "{body:#}");
    assert_eq!(buckets[1]["start"], json!("2026-12-01T00:00:00.000Z"));
    assert_eq!(buckets[1]["end"], json!("2026-12-02T00:00:00.000Z"));
    assert_eq!(buckets[1]["total"], json!(3), "{body:#}");
    assert_eq!(buckets[1]["outcomes"], json!({"failed": 1, "succeeded": 1}));

    // Empty buckets are present with zeros.
    let page = summary(
        &gh,
        &slug,
        &[
            ("from", "2026-11-28T00:00:00Z"),
            ("to", "2026-12-03T00:00:00Z"),
            ("bucket", "day"),
        ],
    )
    .await;
    let body = page.json();
    let totals: Vec<u64> = body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["total"].as_u64().unwrap())
        .collect();
    assert_eq!(totals, vec![0, 0, 3, 3, 0], "{body:#}");
}

async fn bad_parameters_are_problems(store: Store) {
    let gh = Gatehouse::start(store).await;
    let slug = unique("sum-");
    gh.create_tenant(&slug, "Summary", &format!("https://app.{slug}.test/"))
        .await;
    let (from, to) = ("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z");
    for (query, field) in [
        (vec![("from", from), ("to", to)], "/bucket"),
        (
            vec![("from", from), ("to", to), ("bucket", "week")],
            "/bucket",
        ),
        (vec![("to", to), ("bucket", "day")], "/from"),
        (vec![("from", from), ("bucket", "day")], "/to"),
        (vec![("from", to), ("to", from), ("bucket", "day")], "/to"),
        (
            vec![("from", "yesterday"), ("to", to), ("bucket", "day")],
            "/from",
        ),
        (
            vec![
                ("from", "2026-01-01T00:00:00Z"),
                ("to", to),
                ("bucket", "hour"),
            ],
            "/to",
        ),
        (
            vec![
                ("from", "2020-01-01T00:00:00Z"),
                ("to", to),
                ("bucket", "day"),
            ],
            "/to",
        ),
        (
            vec![
                ("from", from),
                ("to", to),
                ("bucket", "day"),
                ("limit", "5"),
            ],
            "/limit",
        ),
        (
            vec![
                ("from", from),
                ("to", to),
                ("bucket", "day"),
                ("cursor", "c1_AAAAAAAAAAE"),
            ],
            "/cursor",
        ),
        (
            vec![
                ("from", from),
                ("to", to),
                ("bucket", "day"),
                ("order", "oldest"),
            ],
            "/order",
        ),
        (
            vec![
                ("from", from),
                ("to", to),
                ("bucket", "day"),
                ("type", "LOGIN%"),
            ],
            "/type",
        ),
        (
            vec![
                ("from", from),
                ("to", to),
                ("bucket", "day"),
                ("group", "x"),
            ],
            "/group",
        ),
        (
            vec![
                ("from", from),
                ("to", to),
                ("bucket", "day"),
                ("bucket", "day"),
            ],
            "/bucket",
        ),
    ] {
        let page = summary(&gh, &slug, &query).await;
        page.assert_problem(422, Some(field));
    }
    // The largest range served: 1000 hours.
    let page = summary(
        &gh,
        &slug,
        &[
            ("from", "2026-10-21T08:00:00Z"),
            ("to", "2026-12-02T00:00:00Z"),
            ("bucket", "hour"),
        ],
    )
    .await;
    page.assert_status(200);
    assert_eq!(
        page.json()["buckets"]
            .as_array()
            .unwrap()
            .len(),
        1000
    );

    let query = [("from", from), ("to", to), ("bucket", "day")];
    summary(&gh, "no-such-tenant", &query)
        .await
        .assert_problem(404, None);
    let url = gh.url(&format!(
        "/api/v1/tenants/{slug}/audit/summary?from={from}&to={to}&bucket=day"
    ));
    get(&client(), &url)
        .await
        .assert_problem(401, None);
}
