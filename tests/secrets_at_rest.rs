//! Secrets at rest and in logs: a connection's client_secret never appears in plain text (nor
//! plainly base64-encoded) in the `events` table, in any other table, or in the Gatehouse log;
//! the log never holds an authorization code, a state, a session or flow cookie value, or the
//! admin token; and the browser-held tokens are stored only as hashes.

mod common;

use base64::Engine as _;
use common::*;
use serde_json::json;

macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::Store::Sqlite, None).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::Store::Postgres, None).await
                }
            )*
        }
        /// The same with GATEHOUSE_LOG=debug: more logging must not mean more secrets.
        mod sqlite_debug_log {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::Store::Sqlite, Some("debug")).await
                }
            )*
        }
    };
}

on_both_stores!(secrets_stay_out_of_the_store_and_the_log);

/// The secret and the forms it would take if merely base64-encoded (any alignment, standard or
/// URL-safe alphabet), so that "encoded, not encrypted" is caught too.
fn forms_of(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_string()];
    for engine in [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ] {
        for skip in 0..3 {
            let encoded = engine.encode(&secret.as_bytes()[skip..]);
            // Drop the padding and the last (partial) characters: they depend on what follows.
            let core: String = encoded
                .trim_end_matches('=')
                .chars()
                .collect();
            let keep = core.len().saturating_sub(4);
            if keep >= 16 {
                forms.push(core[..keep].to_string());
            }
        }
    }
    forms
}

fn assert_absent(haystack: &str, what: &str, needle: &str, place: &str) {
    for form in forms_of(needle) {
        if let Some(at) = haystack.find(&form) {
            let start = haystack[..at]
                .char_indices()
                .rev()
                .nth(200)
                .map_or(0, |(i, _)| i);
            let end = (at + form.len() + 200).min(haystack.len());
            let end = (end..=haystack.len())
                .find(|i| haystack.is_char_boundary(*i))
                .unwrap_or(haystack.len());
            panic!(
                "{what} ({form:?}) found in {place}:\n…{}…",
                &haystack[start..end]
            );
        }
    }
}

fn cookie_value(page: &Page, name: &str) -> String {
    let cookie = page
        .set_cookie(name)
        .unwrap_or_else(|| panic!("no {name} cookie: {}", page.describe()));
    cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| panic!("malformed {name} cookie: {}", page.describe()))
}

async fn secrets_stay_out_of_the_store_and_the_log(store: Store, log_level: Option<&str>) {
    let idp = Idp::shared().await;
    let mut options = Options::default();
    if let Some(level) = log_level {
        options
            .env
            .push(("GATEHOUSE_LOG".into(), level.into()));
    }
    let gh = Gatehouse::start_with(store, options).await;
    if store == Store::Sqlite {
        // The database holds addresses, IP addresses and credential hashes: owner only.
        use std::os::unix::fs::PermissionsExt;
        for name in ["gatehouse.sqlite", "gatehouse.sqlite-wal", "gatehouse.sqlite-shm"] {
            let path = gh.data_dir.path().join(name);
            let mode = std::fs::metadata(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{} has mode {:o}", path.display(), mode & 0o777);
        }
    }

    // A tenant whose connection first gets a marker secret, then the IdP's real one; a second
    // connection keeps another marker secret.
    let slug = unique("t-");
    let app_url = format!("https://app.{slug}.test/home");
    gh.create_tenant(&slug, "Secrets", &app_url)
        .await;
    let (client_id, client_secret) = idp
        .register_client(&[gh.callback_url(&slug, "okta")], false)
        .await;
    let real_secret = client_secret.expect("a confidential client");
    let marker = format!("SECRET-marker-{}", uuid::Uuid::new_v4().simple());
    let other_marker = format!("SECRET-other-{}", uuid::Uuid::new_v4().simple());
    let config = |secret: &str| {
        json!({
            "discovery_url": idp.discovery_url(),
            "client_id": client_id,
            "client_secret": secret,
            "allowed_domains": ["good.test"],
        })
    };
    gh.put_oidc_connection(&slug, "okta", "Okta", config(&marker))
        .await;
    gh.put_oidc_connection(&slug, "okta", "Okta", config(&real_secret))
        .await;
    gh.put_oidc_connection(&slug, "other", "Other", config(&other_marker))
        .await;
    // The update without a secret keeps the stored one (and must not echo it).
    let kept = gh
        .put_oidc_connection(
            &slug,
            "okta",
            "Okta",
            json!({
                "discovery_url": idp.discovery_url(),
                "client_id": client_id,
                "allowed_domains": ["good.test"],
            }),
        )
        .await;
    assert_eq!(
        kept["config"]["client_secret_set"],
        json!(true),
        "{kept:#}"
    );
    let secrets = [
        ("the IdP client secret", real_secret.as_str()),
        ("the first (replaced) client secret", marker.as_str()),
        ("the other connection's client secret", other_marker.as_str()),
    ];

    // One login with the real secret (the two-connection tenant shows a choice page, so start
    // at the connection).
    let login = unique("secret-");
    idp.set_account(
        &login,
        json!({ "sub": format!("{login}-sub"), "email": format!("{login}@good.test"), "email_verified": true }),
    )
    .await;
    let browser = browser();
    let start = get(&browser, &gh.url(&format!("/{slug}/sso/okta/start"))).await;
    let authorize = start.assert_redirect();
    let flow_cookie = cookie_value(&start, "gatehouse_flow");
    let callback = idp_sign_in(&browser, &gh, idp, &authorize, &login).await;
    let code = query_param(&callback, "code").expect("code in the callback");
    let state = query_param(&callback, "state").expect("state in the callback");
    let page = call_callback(&browser, &callback).await;
    page.assert_status(302);
    assert_eq!(
        page.location().as_deref(),
        Some(app_url.as_str()),
        "{}",
        page.describe()
    );
    let session_cookie = cookie_value(&page, "gatehouse_session");
    gh.assert_session(&browser).await;
    // And a refused replay, so a failure path is logged too.
    call_callback(&browser, &callback)
        .await
        .assert_error_page(&[400]);
    gh.audit_until(&slug, &[("type", "login.")], "the login and the replay", |events| {
        events
            .iter()
            .any(|e| e["type"] == json!("login.failed"))
            && events
                .iter()
                .any(|e| e["type"] == json!("login.succeeded"))
    })
    .await;

    // The API never shows the secrets.
    let tenant_page = gh
        .admin_get(&format!("/api/v1/tenants/{slug}"))
        .await;
    tenant_page.assert_status(200);
    let audit = serde_json::to_string(&gh.audit(&slug, &[]).await).unwrap_or_default();
    for (what, secret) in secrets {
        assert_absent(&tenant_page.body, what, secret, "GET /api/v1/tenants/{slug}");
        assert_absent(&audit, what, secret, "the audit API");
    }

    // The events table, row by row.
    let events = gh.sql("SELECT event_type, payload, metadata FROM events");
    assert!(
        events.contains("ConnectionConfigured") || events.lines().count() >= 4,
        "the events table looks empty:\n{events}"
    );
    // Control: the non-secret parts of the config are there in the clear, so the search
    // really reads the payloads.
    assert!(
        events.contains(&client_id),
        "the events table should hold the client_id {client_id}:\n{events}"
    );
    for (what, secret) in secrets {
        assert_absent(&events, what, secret, "the events table (payload, metadata)");
    }
    // Every table: a full dump.
    let dump = gh.dump_database();
    assert!(dump.contains(&slug), "the dump does not even hold the tenant:\n{dump}");
    for (what, secret) in secrets {
        assert_absent(&dump, what, secret, "the database dump");
    }
    // Browser-held tokens and the admin token are stored only as hashes, if at all.
    for (what, token) in [
        ("the state", state.as_str()),
        ("the authorization code", code.as_str()),
        ("the flow cookie value", flow_cookie.as_str()),
        ("the session cookie value", session_cookie.as_str()),
        ("the admin token", gh.admin_token.as_str()),
    ] {
        assert_absent(&dump, what, token, "the database dump");
    }
    // SQLite: the raw files too (WAL, journal), byte for byte.
    if store == Store::Sqlite {
        for entry in std::fs::read_dir(gh.data_dir.path()).expect("read the data dir") {
            let path = entry.expect("dir entry").path();
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            if !name.starts_with("gatehouse.sqlite") {
                continue;
            }
            let bytes = std::fs::read(&path).expect("read a database file");
            let text = String::from_utf8_lossy(&bytes);
            for (what, secret) in secrets {
                assert_absent(&text, what, secret, &format!("the raw file {name}"));
            }
        }
    }

    // The log.
    let log = gh.log_text();
    assert!(
        log.contains("login succeeded") || log.contains(&slug),
        "the log looks empty:\n{log}"
    );
    if log_level == Some("debug") {
        assert!(log.contains("DEBUG"), "GATEHOUSE_LOG=debug gave no debug lines:\n{log}");
    }
    for (what, secret) in secrets {
        assert_absent(&log, what, secret, "the Gatehouse log");
    }
    for (what, token) in [
        ("the state", state.as_str()),
        ("the authorization code", code.as_str()),
        ("the flow cookie value", flow_cookie.as_str()),
        ("the session cookie value", session_cookie.as_str()),
        ("the admin token", gh.admin_token.as_str()),
    ] {
        assert_absent(&log, what, token, "the Gatehouse log");
    }
}
