//! Isolation from bad plugins, black box: the deliberately broken libraries of
//! `plugins/testing/` (built as dev-dependencies, so they sit in `target/debug/deps/`) are
//! refused by `gatehouse plugins check` with the reason, refused at start-up with one log line
//! each, or — when they load but misbehave at login — contained: the attempt fails with
//! `plugin_panic` / `plugin_failure`, and other tenants keep signing in. SQLite only: nothing
//! here depends on the store.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::json;

/// The per-call time limit the tests run with (the hanging plugin costs this much).
const PLUGIN_TIMEOUT_SECS: &str = "2";

/// `target/debug/deps/lib{name}.so`, where cargo leaves dev-dependency cdylibs (and the test
/// binary itself).
fn library(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let deps = exe.parent().expect("deps dir").to_path_buf();
    let file = format!("lib{name}.so");
    for dir in [deps.clone(), deps.parent().expect("target dir").to_path_buf()] {
        let path = dir.join(&file);
        if path.is_file() {
            return path;
        }
    }
    panic!("{file} not built in {}: is it a dev-dependency of gatehouse?", deps.display());
}

/// A plugin directory with a copy of each library (`(file name, source)`), plus `libx.so`, a
/// text file that is not a library at all.
fn plugin_dir(libraries: &[(&str, PathBuf)]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("gatehouse-plugins-")
        .tempdir()
        .expect("plugin dir");
    for (name, source) in libraries {
        std::fs::copy(source, dir.path().join(name))
            .unwrap_or_else(|e| panic!("copy {} into the plugin dir: {e}", source.display()));
    }
    std::fs::write(dir.path().join("libx.so"), "this is a text file, not a library\n")
        .expect("write libx.so");
    dir
}

/// The broken libraries that load (a valid descriptor) but misbehave at login, with the reason
/// the failed attempt must record.
const MISBEHAVING: &[(&str, &str)] = &[
    ("broken_panic", "plugin_panic"),
    ("broken_hang", "plugin_failure"),
    ("broken_malformed", "plugin_failure"),
    ("broken_huge", "plugin_failure"),
];

/// The libraries refused at load, with (file name in the plugin dir, what the refusal says).
const REFUSED_AT_LOAD: &[(&str, &str)] = &[
    ("libbroken_abi.so", "wrong ABI version: the plugin was built for ABI version 999"),
    ("libbroken_duplicate.so", "duplicate protocol id \"oidc\""),
    ("libbroken_nosymbol.so", "missing entry symbol gatehouse_plugin_entry"),
    ("libbroken_schema.so", "config schema does not compile"),
    ("libbroken_secret.so", "secret field \"/credentials/1\" is not a top-level member pointer"),
    ("libx.so", "not a plugin library"),
];

fn check(plugin_dir: &Path, library: &Path) -> RunOutput {
    let env = vec![
        ("GATEHOUSE_PLUGIN_DIR".to_string(), plugin_dir.display().to_string()),
        ("GATEHOUSE_PLUGIN_TIMEOUT_SECS".to_string(), PLUGIN_TIMEOUT_SECS.to_string()),
    ];
    let path = library.display().to_string();
    run_gatehouse(&env, plugin_dir, &["plugins", "check", &path], Duration::from_secs(60))
}

#[test]
fn plugins_check_names_what_is_wrong_with_each_library() {
    let oidc = library("gatehouse_oidc");
    let dir = plugin_dir(&[("libgatehouse_oidc.so", oidc.clone())]);
    let cases: Vec<(PathBuf, &str)> = vec![
        (library("broken_panic"), "refused: begin_login: plugin_panic: plugin panicked"),
        (
            library("broken_hang"),
            "refused: begin_login: plugin_failure: plugin call begin_login exceeded 2s",
        ),
        (
            library("broken_malformed"),
            "refused: begin_login: plugin_failure: plugin returned malformed output",
        ),
        (library("broken_huge"), "output larger than the limit of 4194304 bytes"),
        (
            library("broken_abi"),
            "refused: wrong ABI version: the plugin was built for ABI version 999, this host implements 1",
        ),
        (library("broken_duplicate"), "refused: duplicate protocol id \"oidc\", already served by"),
        (library("broken_nosymbol"), "refused: missing entry symbol gatehouse_plugin_entry"),
        (
            library("broken_schema"),
            "refused: config schema does not compile: ",
        ),
        (library("broken_secret"), "refused: secret field \"/credentials/1\" is not a top-level member pointer"),
        (dir.path().join("libx.so"), "refused: not a plugin library"),
    ];
    for (path, expected) in cases {
        let output = check(dir.path(), &path);
        assert_eq!(output.status.code(), Some(1), "{}", output.describe());
        let lines: Vec<&str> = output.stdout.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {}", output.describe());
        assert!(lines[0].starts_with("refused: "), "{}", output.describe());
        assert!(lines[0].contains(expected), "expected {expected:?}: {}", output.describe());
    }
    // The real plugin passes, also when it is the one installed in the plugin directory.
    for path in [oidc, dir.path().join("libgatehouse_oidc.so")] {
        let output = check(dir.path(), &path);
        output.assert_success();
        assert!(output.stdout.starts_with("ok: oidc "), "{}", output.describe());
        assert_eq!(output.stdout.lines().count(), 1, "{}", output.describe());
    }
}

#[tokio::test]
async fn the_service_refuses_or_contains_every_broken_plugin_and_keeps_serving() {
    let mut libraries = vec![("libgatehouse_oidc.so", library("gatehouse_oidc"))];
    for (name, _) in MISBEHAVING {
        libraries.push((leak(format!("lib{name}.so")), library(name)));
    }
    for name in ["broken_abi", "broken_duplicate", "broken_nosymbol", "broken_schema", "broken_secret"] {
        libraries.push((leak(format!("lib{name}.so")), library(name)));
    }
    let dir = plugin_dir(&libraries);
    let gh = Gatehouse::start_with(
        Store::Sqlite,
        Options {
            env: vec![
                ("GATEHOUSE_PLUGIN_DIR".into(), dir.path().display().to_string()),
                ("GATEHOUSE_PLUGIN_TIMEOUT_SECS".into(), PLUGIN_TIMEOUT_SECS.into()),
            ],
            ..Options::default()
        },
    )
    .await;

    // Started and ready, with the real OIDC plugin (not the impostor) and the loadable fixtures.
    let ready = get(&client(), &gh.url("/readyz")).await;
    ready.assert_status(200);
    let loaded: Vec<String> = ready.json()["plugins"]
        .as_array()
        .unwrap_or_else(|| panic!("no plugins list: {}", ready.describe()))
        .iter()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    for expected in ["oidc", "broken_panic", "broken_hang", "broken_malformed", "broken_huge"] {
        assert!(loaded.iter().any(|p| p == expected), "{expected} not loaded: {}", ready.describe());
    }
    assert_eq!(loaded.len(), 5, "only these load: {}", ready.describe());

    // One log line per refused library, naming the file and the case.
    let log = gh.log_text();
    let refusals: Vec<&str> = log.lines().filter(|l| l.contains("plugin refused")).collect();
    assert_eq!(refusals.len(), REFUSED_AT_LOAD.len(), "refusal lines:\n{}", refusals.join("\n"));
    for (file, reason) in REFUSED_AT_LOAD {
        let lines: Vec<&&str> = refusals.iter().filter(|l| l.contains(&format!("/{file}"))).collect();
        assert_eq!(lines.len(), 1, "one refusal line for {file}:\n{}", refusals.join("\n"));
        assert!(lines[0].contains(reason), "{file} refused for {reason:?}: {}", lines[0]);
    }
    let impostor = refusals
        .iter()
        .find(|l| l.contains("libbroken_duplicate.so"))
        .expect("checked above");
    assert!(impostor.contains("libgatehouse_oidc.so"), "names the plugin kept: {impostor}");

    // A tenant on the real OIDC plugin signs in before, between and after the bad plugins.
    let idp = Idp::shared().await;
    let good = tenant_with_idp(&gh, idp, false).await;
    start_login(&browser(), &gh, &good.slug, idp).await;

    let mut slugs = std::collections::BTreeMap::new();
    for (protocol, reason) in MISBEHAVING {
        let slug = unique("bad-");
        slugs.insert(*protocol, slug.clone());
        gh.create_tenant(&slug, &format!("Tenant on {protocol}"), &format!("https://app.{slug}.test/"))
            .await;
        let page = gh
            .admin_put(
                &format!("/api/v1/tenants/{slug}/connections/main"),
                &json!({
                    "protocol": protocol,
                    "label": format!("{protocol} fixture"),
                    "config": { "allowed_domains": ["good.test"] },
                }),
            )
            .await;
        page.assert_status(200);

        let started = std::time::Instant::now();
        let page = get(&browser(), &gh.url(&format!("/{slug}?login=sso"))).await;
        let attempt = page.assert_error_page(&[500, 502, 503]);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{protocol}: the refusal took {:?}",
            started.elapsed()
        );
        // A plain page: nothing of the plugin's own words (panic message, garbage, 64 MiB).
        assert!(page.body.len() < 64 * 1024, "{protocol}: page of {} bytes", page.body.len());
        for leak in ["deliberate panic", "broken_", "panicked", "malformed", "aaaaaaaa"] {
            assert!(!page.body.contains(leak), "{protocol}: the page shows {leak:?}: {}", page.describe());
        }
        let event = gh.assert_login_failed(&slug, reason, Some(&attempt)).await;
        assert_eq!(event["connection_id"], json!("main"), "{event:#}");

        // The service keeps serving: the OIDC tenant still gets its redirect to the IdP.
        start_login(&browser(), &gh, &good.slug, idp).await;
        let ready = get(&client(), &gh.url("/readyz")).await;
        ready.assert_status(200);
    }

    // Metadata from a plugin is served only as XML metadata: the fixture's HTML with a script
    // and a header-splitting content type get a plain 503 page instead.
    let page = get(&client(), &gh.url(&format!("/{}/sso/main/metadata", slugs["broken_malformed"]))).await;
    page.assert_status(503);
    assert!(!page.body.contains("planted"), "{}", page.describe());
    assert!(page.set_cookie("planted").is_none(), "{}", page.describe());
    assert!(page.content_type().starts_with("text/html"), "Gatehouse's own page: {}", page.describe());

    // A hanging plugin ties up at most its own call slots (64): once they are all held by
    // calls that timed out, more calls fail at once, readiness says so, and the other
    // plugins keep serving.
    let hang = slugs["broken_hang"].clone();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..70 {
        let url = gh.url(&format!("/{hang}?login=sso"));
        calls.spawn(async move { get(&browser(), &url).await.status.as_u16() });
    }
    let started = std::time::Instant::now();
    let mut statuses = Vec::new();
    while let Some(status) = calls.join_next().await {
        statuses.push(status.expect("request task"));
    }
    assert!(statuses.iter().all(|s| (500..600).contains(s)), "all refused: {statuses:?}");
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    let ready = get(&client(), &gh.url("/readyz")).await;
    ready.assert_status(200);
    assert_eq!(ready.json()["status"], json!("degraded"), "{}", ready.describe());
    assert_eq!(ready.json()["saturated_plugins"], json!(["broken_hang"]), "{}", ready.describe());
    let started = std::time::Instant::now();
    let page = get(&browser(), &gh.url(&format!("/{hang}?login=sso"))).await;
    let attempt = page.assert_error_page(&[500, 502, 503]);
    assert!(started.elapsed() < Duration::from_secs(1), "busy fails at once: {:?}", started.elapsed());
    gh.assert_login_failed(&hang, "plugin_failure", Some(&attempt)).await;
    start_login(&browser(), &gh, &good.slug, idp).await;
    // An admin request that needs the saturated plugin is a 503 problem, not a 500.
    let page = gh
        .admin_put(
            &format!("/api/v1/tenants/{hang}/connections/main"),
            &json!({ "protocol": "broken_hang", "label": "again", "config": { "allowed_domains": ["good.test"] } }),
        )
        .await;
    page.assert_problem(503, None);
}

fn leak(name: String) -> &'static str {
    Box::leak(name.into_boxed_str())
}
