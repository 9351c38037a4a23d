//! Audit export: `GET /api/v1/tenants/{slug}/audit/export?format=ndjson|csv` with the filters of
//! `GET .../audit/events`. The export holds exactly what the paginated listing holds for the
//! same filters (NDJSON line for line, CSV cell for cell), across several read batches; CSV
//! parses back with the `csv` crate; quotes, commas, newlines, formula prefixes and non-ASCII
//! text survive (formula prefixes behind a `'` in CSV only); bad parameters are 422 problems.

#[macro_use]
mod common;

use common::*;
use serde_json::{json, Map, Value};

on_both_stores!(
    exports_equal_the_listing_for_the_same_filters,
    hostile_values_survive_both_formats,
    bad_parameters_are_problems,
);

/// More than two read batches of the export (1000 entries each).
const BULK: usize = 2500;

/// Values a spreadsheet or a naive CSV writer would mangle.
const HOSTILE: &[&str] = &[
    "He said \"hi\", then left",
    "line one\nline two",
    "carriage\r\nreturn",
    "=HYPERLINK(\"http://evil.test\",\"click\")",
    "+SUM(1,2)",
    "-2+3",
    "@cmd",
    "\tleading tab",
    "\rleading return",
    "naïve façade — 日本語 🎉",
    "'already quoted",
    "semi;colon,comma",
];

async fn export(gh: &Gatehouse, slug: &str, query: &[(&str, &str)]) -> Page {
    gh.projected().await;
    let url = gh.url(&format!("/api/v1/tenants/{slug}/audit/export"));
    let response = gh
        .admin()
        .get(&url)
        .query(query)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    Page::read(&url, response).await
}

/// Every event the listing gives for `query`, page after page of 200 (each next page asked
/// with the `next_cursor` of the one before, in place of any `cursor` of the query).
async fn listed(gh: &Gatehouse, slug: &str, query: &[(&str, &str)]) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut page_query: Vec<(&str, &str)> = query
            .iter()
            .filter(|(k, _)| cursor.is_none() || *k != "cursor")
            .cloned()
            .collect();
        page_query.push(("limit", "200"));
        if let Some(cursor) = &cursor {
            page_query.push(("cursor", cursor));
        }
        let page = gh.audit_page(slug, &page_query).await;
        page.assert_status(200);
        let body = page.json();
        let batch = body["events"]
            .as_array()
            .unwrap()
            .clone();
        // Oldest first (and in commit order) the last page may still carry a cursor to poll with.
        let oldest_first =
            query.contains(&("order", "oldest")) || query.contains(&("order", "commit"));
        let next = body["next_cursor"]
            .as_str()
            .map(str::to_owned);
        let done = batch.is_empty() || next.is_none() || (oldest_first && batch.len() < 200);
        events.extend(batch);
        if done {
            return events;
        }
        cursor = next;
    }
}

fn ndjson_lines(page: &Page) -> Vec<Value> {
    page.assert_status(200);
    assert_eq!(
        page.content_type(),
        "application/x-ndjson",
        "{}",
        page.describe()
    );
    assert!(
        page.body.is_empty() || page.body.ends_with('\n'),
        "{}",
        page.describe()
    );
    page.body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("line {line:?}: {e}")))
        .collect()
}

/// The header and the rows of a CSV export, parsed with the `csv` crate.
fn csv_rows(page: &Page) -> (Vec<String>, Vec<Vec<String>>) {
    page.assert_status(200);
    assert!(
        page.content_type()
            .starts_with("text/csv"),
        "{}",
        page.describe()
    );
    let mut reader = csv::Reader::from_reader(page.body.as_bytes());
    let header = reader
        .headers()
        .unwrap_or_else(|e| panic!("CSV header: {e}"))
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| {
            r.unwrap_or_else(|e| panic!("CSV record: {e}"))
                .iter()
                .map(str::to_owned)
                .collect()
        })
        .collect();
    (header, rows)
}

/// An event's fields as CSV columns: nested members as `outer.inner`.
fn flatten(value: &Value, prefix: &str, out: &mut Map<String, Value>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(child, &name, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other.clone());
        }
    }
}

/// The CSV cell the documentation promises for a JSON value: text as is, numbers as JSON, a
/// missing value empty, and a `'` before a cell a spreadsheet would run as a formula.
fn expected_cell(value: &Value) -> String {
    let text = match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text
    }
}

fn assert_csv_matches(page: &Page, events: &[Value]) {
    let (header, rows) = csv_rows(page);
    assert_eq!(rows.len(), events.len(), "{} rows", rows.len());
    for (row, event) in rows.iter().zip(events) {
        let mut fields = Map::new();
        flatten(event, "", &mut fields);
        let mut columns: Vec<&String> = fields.keys().collect();
        let mut sorted_header: Vec<&String> = header.iter().collect();
        columns.sort();
        sorted_header.sort();
        assert_eq!(
            sorted_header, columns,
            "the CSV columns are the event's fields"
        );
        for (column, cell) in header.iter().zip(row) {
            assert_eq!(
                cell,
                &expected_cell(&fields[column]),
                "{column} of {event:#}"
            );
        }
    }
}

/// A tenant with real activity (configuration, started and refused logins, a hostile user
/// agent) and `bulk` entries written directly with set times (the API records only "now").
async fn tenant_with_entries(gh: &Gatehouse, bulk: usize) -> String {
    let slug = unique("exp-");
    gh.create_tenant(&slug, "Export", &format!("https://app.{slug}.test/"))
        .await;
    gh.admin_put(
        &format!("/api/v1/tenants/{slug}/connections/fb"),
        &json!({
            "protocol": "oauth2",
            "label": "Facebook",
            "config": {
                "preset": "facebook",
                "client_id": "1234",
                "client_secret": "export-secret",
                "allowed_domains": ["good.test"],
            },
        }),
    )
    .await
    .assert_status(200);
    for agent in [
        "=cmd|' /C calc'!A0",
        "Mozilla \"quoted\", with comma",
        "@SUM(1+1)*cmd",
    ] {
        let response = client()
            .get(gh.url(&format!("/{slug}/sso/fb/start")))
            .header("user-agent", agent)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302);
    }
    for n in 0..3 {
        let url = gh.url(&format!(
            "/{slug}/sso/fb/callback?code=c{n}&state=forged-{n}"
        ));
        get(&browser(), &url)
            .await
            .assert_error_page(&[400]);
    }
    gh.projected().await;
    insert_bulk(gh, &slug, bulk);
    slug
}

/// `count` rows after the tenant's last position, a minute apart from 2026-11-01, with the
/// hostile values in turn as failure details and user agents.
fn insert_bulk(gh: &Gatehouse, slug: &str, count: usize) {
    let last: i64 = gh
        .sql(&format!(
            "SELECT COALESCE(MAX(position), 0) FROM audit_log WHERE tenant = '{slug}'"
        ))
        .trim()
        .parse()
        .unwrap();
    let cases: Vec<String> = HOSTILE
        .iter()
        .enumerate()
        .map(|(k, v)| format!("WHEN {k} THEN '{}'", v.replace('\'', "''")))
        .collect();
    let hostile = format!("CASE (i % {}) {} END", HOSTILE.len(), cases.join(" "));
    let columns = "event_key, tenant, time, type, position, outcome, reason, detail, email, \
                   connection_id, protocol, user_agent, client_ip";
    let values = format!(
        "'bulk:{slug}:' || i, '{slug}', 1793491200000 + i * 60000, \
         CASE WHEN i % 3 = 0 THEN 'login.failed' ELSE 'login.succeeded' END, {last} + i, \
         CASE WHEN i % 3 = 0 THEN 'failed' ELSE 'succeeded' END, \
         CASE WHEN i % 3 = 0 THEN 'state_mismatch' END, {hostile}, \
         'user' || (i % 7) || '@good.test', CASE WHEN i % 2 = 0 THEN 'fb' ELSE 'okta' END, \
         'oauth2', {hostile}, '192.0.2.' || (i % 250)"
    );
    let sql = match gh.store {
        Store::Sqlite => format!(
            "PRAGMA busy_timeout = 10000; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL \
             SELECT i + 1 FROM n WHERE i < {count}) INSERT INTO audit_log ({columns}) \
             SELECT {values} FROM n"
        ),
        Store::Postgres => format!(
            "INSERT INTO audit_log ({columns}) SELECT {values} \
             FROM generate_series(1, {count}) AS i"
        ),
    };
    gh.sql(&sql);
}

async fn exports_equal_the_listing_for_the_same_filters(store: Store) {
    let gh = Gatehouse::start(store).await;
    let slug = tenant_with_entries(&gh, BULK).await;
    let all = listed(&gh, &slug, &[]).await;
    assert!(all.len() > BULK, "{} events", all.len());
    let cursor = all[700]["cursor"]
        .as_str()
        .unwrap()
        .to_owned();

    let filters: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("order", "oldest")],
        vec![("order", "commit")],
        vec![("type", "login.failed")],
        vec![("type", "tenant.")],
        vec![
            ("from", "2026-11-01T10:00:00Z"),
            ("to", "2026-11-02T03:00:00Z"),
        ],
        vec![
            ("connection", "fb"),
            ("outcome", "failed"),
            ("order", "oldest"),
        ],
        vec![("email", "USER3@good.test")],
        vec![("client_ip", "192.0.2.7")],
        vec![("cursor", &cursor)],
        vec![
            ("cursor", &cursor),
            ("order", "oldest"),
            ("reason", "state_mismatch"),
        ],
        vec![("from", "2030-01-01T00:00:00Z")],
    ];
    for filter in filters {
        let expected = listed(&gh, &slug, &filter).await;
        let mut query = filter.clone();
        query.push(("format", "ndjson"));
        let page = export(&gh, &slug, &query).await;
        assert!(
            page.headers
                .get("content-length")
                .is_none(),
            "an export is streamed, not sized up front: {:?}",
            page.headers
        );
        let disposition = page.headers["content-disposition"]
            .to_str()
            .unwrap();
        assert!(disposition.starts_with("attachment") && disposition.contains(".ndjson"));
        let lines = ndjson_lines(&page);
        assert_eq!(lines.len(), expected.len(), "{filter:?}");
        assert!(
            lines == expected,
            "NDJSON differs from the listing for {filter:?}"
        );

        let mut query = filter.clone();
        query.push(("format", "csv"));
        let page = export(&gh, &slug, &query).await;
        assert!(page.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains(".csv"));
        assert_csv_matches(&page, &expected);
    }

    // An empty CSV export still has its header row.
    let page = export(
        &gh,
        &slug,
        &[("format", "csv"), ("from", "2030-01-01T00:00:00Z")],
    )
    .await;
    let (header, rows) = csv_rows(&page);
    assert!(header.contains(&"outcome.reason".to_owned()), "{header:?}");
    assert!(rows.is_empty());
    // Nothing of another tenant.
    let other = unique("exp-");
    gh.create_tenant(&other, "Other", &format!("https://app.{other}.test/"))
        .await;
    let lines = ndjson_lines(&export(&gh, &other, &[("format", "ndjson")]).await);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0]["tenant"], json!(other));
}

async fn hostile_values_survive_both_formats(store: Store) {
    let gh = Gatehouse::start(store).await;
    let slug = tenant_with_entries(&gh, HOSTILE.len() * 2).await;
    let listed = listed(&gh, &slug, &[]).await;

    let lines = ndjson_lines(&export(&gh, &slug, &[("format", "ndjson")]).await);
    assert!(lines == listed, "NDJSON differs from the listing");
    for value in HOSTILE {
        let found = lines
            .iter()
            .filter(|e| e["outcome"]["detail"] == json!(value) || e["user_agent"] == json!(value))
            .count();
        assert!(found >= 2, "{value:?} did not survive NDJSON");
    }
    for agent in [
        "=cmd|' /C calc'!A0",
        "Mozilla \"quoted\", with comma",
        "@SUM(1+1)*cmd",
    ] {
        assert!(
            lines
                .iter()
                .any(|e| e["user_agent"] == json!(agent)),
            "user agent {agent:?} not exported"
        );
    }

    let page = export(&gh, &slug, &[("format", "csv")]).await;
    assert_csv_matches(&page, &listed);
    let (header, rows) = csv_rows(&page);
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let details: Vec<&str> = rows
        .iter()
        .map(|r| r[column("outcome.detail")].as_str())
        .collect();
    for (value, shown) in [
        ("He said \"hi\", then left", "He said \"hi\", then left"),
        ("line one\nline two", "line one\nline two"),
        ("carriage\r\nreturn", "carriage\r\nreturn"),
        (
            "=HYPERLINK(\"http://evil.test\",\"click\")",
            "'=HYPERLINK(\"http://evil.test\",\"click\")",
        ),
        ("+SUM(1,2)", "'+SUM(1,2)"),
        ("-2+3", "'-2+3"),
        ("@cmd", "'@cmd"),
        ("\tleading tab", "'\tleading tab"),
        ("\rleading return", "'\rleading return"),
        ("naïve façade — 日本語 🎉", "naïve façade — 日本語 🎉"),
        ("'already quoted", "'already quoted"),
        ("semi;colon,comma", "semi;colon,comma"),
    ] {
        assert!(
            details.contains(&shown),
            "{value:?} should read {shown:?} in CSV: {details:?}"
        );
    }
    let agents: Vec<&str> = rows
        .iter()
        .map(|r| r[column("user_agent")].as_str())
        .collect();
    assert!(agents.contains(&"'=cmd|' /C calc'!A0"), "{agents:?}");
    assert!(agents.contains(&"'@SUM(1+1)*cmd"), "{agents:?}");
    // No cell a spreadsheet would run.
    for row in &rows {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{cell:?}"
            );
        }
    }
}

async fn bad_parameters_are_problems(store: Store) {
    let gh = Gatehouse::start(store).await;
    let slug = unique("exp-");
    gh.create_tenant(&slug, "Export", &format!("https://app.{slug}.test/"))
        .await;
    for (query, field) in [
        (vec![], "/format"),
        (vec![("format", "xml")], "/format"),
        (vec![("format", "CSV")], "/format"),
        (vec![("format", "csv"), ("format", "ndjson")], "/format"),
        (vec![("format", "csv"), ("limit", "10")], "/limit"),
        (vec![("format", "csv"), ("page", "2")], "/page"),
        (vec![("format", "csv"), ("from", "last week")], "/from"),
        (
            vec![
                ("format", "csv"),
                ("from", "2026-12-02T00:00:00Z"),
                ("to", "2026-12-01T00:00:00Z"),
            ],
            "/to",
        ),
        (vec![("format", "csv"), ("cursor", "42")], "/cursor"),
        (vec![("format", "csv"), ("type", "login%")], "/type"),
        (vec![("format", "csv"), ("outcome", "maybe")], "/outcome"),
        (
            vec![("format", "csv"), ("client_ip", "localhost")],
            "/client_ip",
        ),
        (vec![("format", "csv"), ("order", "random")], "/order"),
    ] {
        export(&gh, &slug, &query)
            .await
            .assert_problem(422, Some(field));
    }
    export(&gh, "no-such-tenant", &[("format", "csv")])
        .await
        .assert_problem(404, None);
    let url = gh.url(&format!("/api/v1/tenants/{slug}/audit/export?format=csv"));
    get(&client(), &url)
        .await
        .assert_problem(401, None);
}
