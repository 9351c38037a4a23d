//! The OpenAPI document: `gatehouse openapi` matches the committed `openapi/openapi.json`, the
//! running service serves the same document, and the docs page works offline.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const REGENERATE: &str = "regenerate it with `cargo run -q -- openapi > openapi/openapi.json` \
                          (from the workspace root) and commit it";

fn committed_path() -> std::path::PathBuf {
    repo_root().join("openapi/openapi.json")
}

/// `gatehouse openapi` as text, asserting it succeeds and prints JSON.
fn generated() -> (String, Value) {
    let output = run_gatehouse(
        &[],
        &repo_root(),
        &["openapi"],
        Duration::from_secs(30),
    );
    output.assert_success();
    let value: Value = serde_json::from_str(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "`gatehouse openapi` did not print JSON ({e}):\n{}",
            output.describe()
        )
    });
    (output.stdout, value)
}

#[test]
fn committed_document_is_up_to_date() {
    let (text, value) = generated();
    let path = committed_path();
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{} cannot be read ({e}); {REGENERATE}",
            path.display()
        )
    });
    if committed == text {
        return;
    }
    // Same document but different bytes (e.g. a missing final newline) is still stale.
    let committed_value: Result<Value, _> = serde_json::from_str(&committed);
    let first_difference = committed
        .lines()
        .zip(text.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| format!("line {}:\n  committed: {a}\n  generated: {b}", i + 1))
        .unwrap_or_else(|| {
            format!(
                "the files differ in length ({} vs {} lines) or line endings",
                committed.lines().count(),
                text.lines().count()
            )
        });
    panic!(
        "{} differs from `gatehouse openapi` (same JSON value: {}); first difference at {first_difference}\n{REGENERATE}",
        path.display(),
        committed_value
            .as_ref()
            .is_ok_and(|v| *v == value)
    );
}

#[tokio::test]
async fn served_document_and_offline_docs() {
    let (_, generated) = generated();
    let gh = Gatehouse::start(Store::Sqlite).await;

    let page = get(&client(), &gh.url("/api/openapi.json")).await;
    page.assert_status(200);
    assert!(
        page.content_type()
            .starts_with("application/json"),
        "{}",
        page.describe()
    );
    let served = page.json();
    assert!(
        served == generated,
        "GET /api/openapi.json differs from `gatehouse openapi`: {}",
        page.describe()
    );
    for path in [
        "/api/v1/tenants",
        "/api/v1/session",
        "/{slug}/sso/{connection_id}/callback",
    ] {
        assert!(
            served["paths"]
                .get(path)
                .is_some(),
            "the document has no {path}: {}",
            page.describe()
        );
    }

    // The copy the docs page loads is the same document.
    let page = get(&client(), &gh.url("/api/docs/openapi.json")).await;
    page.assert_status(200);
    assert!(
        page.json() == generated,
        "GET /api/docs/openapi.json differs from `gatehouse openapi`: {}",
        page.describe()
    );

    // The docs page: HTML, and nothing loaded from another site.
    let page = get(&client(), &gh.url("/api/docs/")).await;
    page.assert_status(200);
    assert!(
        page.content_type()
            .starts_with("text/html"),
        "{}",
        page.describe()
    );
    let external = external_assets(&page.body);
    assert!(
        external.is_empty(),
        "the docs page loads external assets {external:?}: {}",
        page.describe()
    );
    // The assets it does reference are served here.
    for asset in local_assets(&page.body) {
        let url = url::Url::parse(&page.url)
            .and_then(|base| base.join(&asset))
            .expect("asset URL")
            .to_string();
        let page = get(&client(), &url).await;
        page.assert_status(200);
        // The initializer must point at a local document, not petstore or another site.
        if asset.contains("initializer") {
            assert!(
                !page.body.contains("petstore")
                    && !page.body.contains("url: \"http")
                    && !page.body.contains("\"url\": \"http"),
                "the docs initializer points elsewhere: {}",
                page.describe()
            );
        }
    }
}

/// The `src`/`href` values of `<script>` and `<link>` tags.
fn asset_urls(html: &str) -> Vec<String> {
    let mut urls = Vec::new();
    let lower = html.to_ascii_lowercase();
    for tag in ["<script", "<link"] {
        let mut from = 0;
        while let Some(start) = lower[from..].find(tag) {
            let start = from + start;
            let end = lower[start..]
                .find('>')
                .map_or(lower.len(), |e| start + e);
            let element = &html[start..end];
            for attr in ["src=", "href="] {
                if let Some(at) = element
                    .to_ascii_lowercase()
                    .find(attr)
                {
                    let rest = &element[at + attr.len()..];
                    let value: String = match rest.chars().next() {
                        Some(q @ ('"' | '\'')) => rest[1..]
                            .chars()
                            .take_while(|c| *c != q)
                            .collect(),
                        _ => rest
                            .chars()
                            .take_while(|c| !c.is_whitespace())
                            .collect(),
                    };
                    urls.push(value);
                }
            }
            from = end;
        }
    }
    urls
}

fn is_external(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("//")
}

fn external_assets(html: &str) -> Vec<String> {
    let mut found: Vec<String> = asset_urls(html)
        .into_iter()
        .filter(|u| is_external(u))
        .collect();
    // Stylesheet imports and the like, outside tags.
    for marker in ["@import url(\"http", "@import \"http", "url(http", "url(\"http"] {
        if html.contains(marker) {
            found.push(marker.to_string());
        }
    }
    found
}

fn local_assets(html: &str) -> Vec<String> {
    asset_urls(html)
        .into_iter()
        .filter(|u| !is_external(u) && !u.is_empty() && !u.starts_with("data:"))
        .collect()
}

/// A reader that stops early (`gatehouse openapi | head`) ends the command quietly: no panic
/// about a broken pipe.
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    use std::io::Read;
    use std::process::{Command, Stdio};

    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("openapi")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gatehouse openapi");
    let mut first = [0u8; 16];
    child
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut first)
        .expect("the first bytes");
    // The pipe is closed here, long before the 100 KiB document is written.
    let output = child
        .wait_with_output()
        .expect("wait for gatehouse openapi");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}
