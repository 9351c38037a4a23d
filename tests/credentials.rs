//! Admin API credentials with roles (platform admin, tenant admin, auditor), on both stores.
//!
//! The isolation test enumerates every route of the OpenAPI document that `gatehouse openapi`
//! prints, so a route added later without the right check fails here: each admin route is
//! classed by its path (a tenant route, an audit read route, a credential route, a
//! platform route) and called by every (role, tenant) combination, whose status is asserted.
//! The other tests show a token shown once and stored only as a hash, revocation on the next
//! request (and on another node), the CLI, the `audit.read` access log, and credential events
//! in the audit log with `audit verify` still intact.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

on_both_stores!(
    every_route_checks_role_and_tenant,
    a_token_is_shown_once_and_stored_as_a_hash,
    a_revoked_or_expired_token_is_refused,
    tenant_admins_manage_only_their_auditors,
    the_cli_creates_lists_and_revokes,
    audit_reads_are_recorded_with_the_credential,
    credential_changes_are_audited_and_the_chains_verify,
    existing_tokens_are_platform_admins,
    a_revoked_config_credential_stays_revoked,
);

/// A credential the test holds: its id and token.
#[derive(Clone, Debug)]
struct Cred {
    id: String,
    token: String,
}

async fn call(
    gh: &Gatehouse,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Page {
    let url = gh.url(path);
    let method = Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut request = client().request(method.clone(), &url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    Page::read(&format!("{method} {url}"), response).await
}

/// POST /api/v1/credentials as `token`, asserting 201; the new credential.
async fn create(gh: &Gatehouse, token: &str, role: &str, tenant: Option<&str>) -> Cred {
    let mut body = json!({ "role": role, "label": format!("{role} for tests") });
    if let Some(tenant) = tenant {
        body["tenant"] = json!(tenant);
    }
    let page = call(gh, Some(token), "POST", "/api/v1/credentials", Some(&body)).await;
    page.assert_status(201);
    let issued = page.json();
    let token = issued["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {}", page.describe()))
        .to_owned();
    assert!(token.starts_with("gh_"), "{}", page.describe());
    assert_eq!(
        issued["credential"]["role"],
        json!(role),
        "{}",
        page.describe()
    );
    Cred {
        id: issued["credential"]["id"]
            .as_str()
            .expect("an id")
            .to_owned(),
        token,
    }
}

async fn revoke(gh: &Gatehouse, token: &str, id: &str) -> Page {
    call(
        gh,
        Some(token),
        "DELETE",
        &format!("/api/v1/credentials/{id}"),
        None,
    )
    .await
}

fn facebook_connection() -> Value {
    json!({
        "protocol": "oauth2",
        "label": "Facebook",
        "config": {
            "preset": "facebook",
            "client_id": "1234",
            "client_secret": "fb-secret",
            "allowed_domains": ["good.test"],
        },
    })
}

async fn tenant(gh: &Gatehouse, prefix: &str) -> String {
    let slug = unique(prefix);
    gh.create_tenant(
        &slug,
        "Credential Test",
        &format!("https://app.{slug}.test/"),
    )
    .await;
    gh.admin_put(
        &format!("/api/v1/tenants/{slug}/connections/fb"),
        &facebook_connection(),
    )
    .await
    .assert_status(200);
    slug
}

/// The acting credential or `system` of a tenant audit event, as `admin:<id>` or `system`
/// (the event shape gives the actor as `{kind, id}`; an older one as a string).
fn actor_of(event: &Value) -> String {
    match &event["actor"] {
        Value::String(actor) => actor.clone(),
        actor => match (actor["kind"].as_str(), actor["id"].as_str()) {
            (Some("admin_credential"), Some(id)) => format!("admin:{id}"),
            (Some(kind), _) => kind.to_owned(),
            _ => String::new(),
        },
    }
}

/// The detail of a tenant audit event (under `outcome`, or at the top in an older shape).
fn detail_of(event: &Value) -> String {
    event["outcome"]["detail"]
        .as_str()
        .or(event["detail"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One value of an SQL query (trimmed).
fn sql1(gh: &Gatehouse, query: &str) -> String {
    gh.sql(query).trim().to_owned()
}

/// Waits until `query` (a count) reaches `expected`: read models are applied off the request
/// path.
async fn wait_count(gh: &Gatehouse, query: &str, expected: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found: i64 = sql1(gh, query).parse().unwrap_or(-1);
        if found == expected {
            return;
        }
        if Instant::now() > deadline {
            panic!("{query} gave {found}, expected {expected}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `audit.read` entries of `credential` for `route` (`GET /api/v1/...{slug}...`) in the access
/// log of `scope`.
fn reads_query(scope: &str, credential: &str, route: &str) -> String {
    format!(
        "SELECT count(*) FROM audit_log WHERE tenant = '{scope}.access' AND type = 'audit.read' \
         AND actor = 'admin:{credential}' AND (detail = '{route}' OR substr(detail, 1, {}) = '{route} ')",
        route.len() + 1
    )
}

// ---------------------------------------------------------------------------------------------
// Isolation of every route

/// Who a route is for, from its path (a new route falls into one of these by its path alone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// A tenant's setup: platform admins and that tenant's admins.
    TenantAdmin,
    /// A tenant's audit log (events, verification, diagnostics, export, summary, config
    /// history): platform admins, that tenant's admins and auditors. Each call is recorded.
    AuditRead,
    /// Platform admins only (tenant creation, the platform log).
    Platform,
    /// Platform admins and every tenant admin: data of no tenant (the loaded plugins).
    AnyAdmin,
    /// `/api/v1/credentials...`: checked per route below.
    Credentials,
}

fn class_of(path: &str) -> Class {
    if path.starts_with("/api/v1/credentials") {
        Class::Credentials
    } else if path == "/api/v1/plugins" {
        Class::AnyAdmin
    } else if path.contains("{slug}") {
        let audit = path.contains("/audit")
            || path.contains("/diagnostics")
            || path.starts_with("/api/v1/tenants/{slug}/config");
        if audit {
            Class::AuditRead
        } else {
            Class::TenantAdmin
        }
    } else {
        Class::Platform
    }
}

/// What a principal must get on a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Past the checks: never 401/403, never the missing-tenant 404, never a 5xx.
    Allowed,
    /// 403 forbidden.
    Forbidden,
    /// The very 404 of a tenant that does not exist.
    Hidden,
    /// 401.
    Unauthorized,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Nobody,
    Revoked,
    Platform,
    AdminA,
    AuditorA,
    AdminB,
    AuditorB,
}

const EVERYONE: [Who; 7] = [
    Who::Nobody,
    Who::Revoked,
    Who::Platform,
    Who::AdminA,
    Who::AuditorA,
    Who::AdminB,
    Who::AuditorB,
];

fn expectation(class: Class, method: &str, who: Who) -> Expect {
    use Expect::*;
    match who {
        Who::Nobody | Who::Revoked => return Unauthorized,
        Who::Platform => return Allowed,
        _ => {}
    }
    let own = matches!(who, Who::AdminA | Who::AuditorA);
    let admin = matches!(who, Who::AdminA | Who::AdminB);
    match class {
        Class::TenantAdmin => match (own, admin) {
            (true, true) => Allowed,
            (true, false) => Forbidden,
            (false, _) => Hidden,
        },
        Class::AuditRead => {
            if own {
                Allowed
            } else {
                Hidden
            }
        }
        Class::Platform => Forbidden,
        Class::AnyAdmin => {
            if admin {
                Allowed
            } else {
                Forbidden
            }
        }
        // Tenant A's auditor is created, listed and revoked: its tenant admin may, the other
        // tenant's admin sees no tenant A (404), auditors manage nothing (403). A listing is
        // the caller's own tenant's.
        Class::Credentials => match (method, own, admin) {
            (_, _, false) => Forbidden,
            ("GET", _, true) => Allowed,
            (_, true, true) => Allowed,
            (_, false, true) => Hidden,
        },
    }
}

struct World {
    a: String,
    b: String,
    platform: String,
    creds: Vec<(Who, Cred)>,
}

impl World {
    fn token(&self, who: Who) -> Option<&str> {
        match who {
            Who::Nobody => None,
            Who::Platform => Some(&self.platform),
            _ => self
                .creds
                .iter()
                .find(|(w, _)| *w == who)
                .map(|(_, c)| c.token.as_str()),
        }
    }

    fn id(&self, who: Who) -> String {
        match who {
            Who::Platform => "config".to_owned(),
            _ => self
                .creds
                .iter()
                .find(|(w, _)| *w == who)
                .map(|(_, c)| c.id.clone())
                .expect("a credential"),
        }
    }
}

/// The request for `method path` with tenant `slug`: the path with its parameters filled in,
/// and a valid body where the route takes one (so that only the checks can refuse it).
async fn request_for(
    gh: &Gatehouse,
    world: &World,
    method: &str,
    path: &str,
    slug: &str,
) -> (String, Option<Value>) {
    let mut filled = path.replace("{slug}", slug);
    if path.starts_with("/api/v1/credentials/{id}") {
        // A fresh auditor of tenant A each time, so that every allowed call revokes one.
        let target = create(gh, &world.platform, "auditor", Some(&world.a)).await;
        filled = filled.replace("{id}", &target.id);
    }
    filled = filled
        .replace("{id}", "fb")
        .replace("{attempt_id}", &uuid::Uuid::new_v4().to_string());
    while let (Some(start), Some(end)) = (filled.find('{'), filled.find('}')) {
        filled.replace_range(start..=end, "x");
    }
    let body = match (method, path) {
        ("POST", "/api/v1/tenants") => Some(json!({
            "slug": unique("made-"),
            "display_name": "Made",
            "app_url": "https://app.made.test/",
        })),
        ("PUT", p) if p.ends_with("/connections/{id}") => Some(facebook_connection()),
        ("PUT", p) if p.ends_with("/login-policy") => Some(json!({
            "standard_methods": [],
            "guests_allowed": true,
            "enforce_sso": true,
        })),
        ("POST", "/api/v1/credentials") => Some(json!({ "role": "auditor", "tenant": world.a })),
        ("POST" | "PUT" | "PATCH", _) => Some(json!({})),
        _ => None,
    };
    (filled, body)
}

/// Routes known to answer 200 (or 201/204) to an allowed caller with the request above.
fn strictly_ok(method: &str, path: &str) -> bool {
    matches!(
        (method, path),
        ("GET", "/api/v1/tenants/{slug}")
            | ("GET", "/api/v1/tenants/{slug}/connections/{id}")
            | ("GET", "/api/v1/tenants/{slug}/login-policy")
            | ("PUT", "/api/v1/tenants/{slug}/login-policy")
            | ("PUT", "/api/v1/tenants/{slug}/connections/{id}")
            | ("GET", "/api/v1/tenants/{slug}/audit/events")
            | ("GET", "/api/v1/tenants/{slug}/audit/verify")
            | ("GET", "/api/v1/tenants/{slug}/audit/reads")
            | ("GET", "/api/v1/tenants/{slug}/audit/reads/verify")
            | ("GET", "/api/v1/plugins")
            | ("GET", "/api/v1/credentials")
            | ("POST", "/api/v1/credentials")
            | ("DELETE", "/api/v1/credentials/{id}")
            | ("POST", "/api/v1/tenants")
            | ("GET", "/api/v1/platform/audit/events")
            | ("GET", "/api/v1/platform/audit/reads")
    )
}

async fn every_route_checks_role_and_tenant(store: Store) {
    let gh = Gatehouse::start(store).await;
    let a = tenant(&gh, "iso-a-").await;
    let b = tenant(&gh, "iso-b-").await;
    let platform = gh.admin_token.clone();
    let revoked = create(&gh, &platform, "tenant_admin", Some(&a)).await;
    revoke(&gh, &platform, &revoked.id)
        .await
        .assert_status(204);
    let world = World {
        creds: vec![
            (Who::Revoked, revoked),
            (
                Who::AdminA,
                create(&gh, &platform, "tenant_admin", Some(&a)).await,
            ),
            (
                Who::AuditorA,
                create(&gh, &platform, "auditor", Some(&a)).await,
            ),
            (
                Who::AdminB,
                create(&gh, &platform, "tenant_admin", Some(&b)).await,
            ),
            (
                Who::AuditorB,
                create(&gh, &platform, "auditor", Some(&b)).await,
            ),
        ],
        a,
        b,
        platform,
    };
    // The answer for a tenant that does not exist, which hides another tenant's routes.
    let missing = gh
        .admin_get("/api/v1/tenants/no-such-tenant-here")
        .await;
    let hidden = missing.assert_problem(404, None);

    let out = gh.run(&["openapi"]);
    out.assert_success();
    let document: Value = serde_json::from_str(&out.stdout).expect("the OpenAPI document");
    let paths = document["paths"]
        .as_object()
        .expect("paths");
    let mut checked = 0;
    let mut audit_routes = Vec::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("a path item") {
            let method = method.to_uppercase();
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                continue;
            }
            let secured = operation
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|s| !s.is_empty());
            let public = !path.starts_with("/api/") || path == "/api/v1/session";
            assert_eq!(
                secured, !public,
                "{method} {path}: every /api route but the session must require the bearer token, \
                 and only those"
            );
            if public {
                continue;
            }
            let class = class_of(path);
            eprintln!("{method} {path}: {class:?}");
            if class == Class::AuditRead {
                audit_routes.push((method.clone(), path.clone()));
            }
            for who in EVERYONE {
                let expect = expectation(class, &method, who);
                let (url, body) = request_for(&gh, &world, &method, path, &world.a).await;
                let before = (class == Class::AuditRead && expect == Expect::Allowed).then(|| {
                    sql1(
                        &gh,
                        &reads_query(&world.a, &world.id(who), &format!("{method} {path}")),
                    )
                });
                let page = call(&gh, world.token(who), &method, &url, body.as_ref()).await;
                let what = format!("{who:?} on {method} {path} ({class:?}, expected {expect:?})");
                match expect {
                    Expect::Unauthorized => {
                        page.assert_problem(401, None);
                    }
                    Expect::Forbidden => {
                        let problem = page.assert_problem(403, None);
                        assert_eq!(
                            problem["type"],
                            json!("urn:gatehouse:problem:forbidden"),
                            "{what}: {}",
                            page.describe()
                        );
                    }
                    Expect::Hidden => {
                        let problem = page.assert_problem(404, None);
                        if path.starts_with("/api/v1/credentials/{") {
                            // Another tenant's credential: as one that does not exist.
                            let other = call(
                                &gh,
                                world.token(who),
                                &method,
                                &path.replace("{id}", "no-such-credential"),
                                None,
                            )
                            .await;
                            assert_eq!(other.status, page.status, "{what}: {}", other.describe());
                            assert_eq!(other.json(), problem, "{what}: {}", other.describe());
                        } else {
                            assert_eq!(problem, hidden, "{what}: {}", page.describe());
                        }
                        // The same caller on a tenant that does not exist: the same answer.
                        if path.contains("{slug}") {
                            let (url, body) =
                                request_for(&gh, &world, &method, path, "no-such-tenant-here")
                                    .await;
                            let other =
                                call(&gh, world.token(who), &method, &url, body.as_ref()).await;
                            assert_eq!(other.status, page.status, "{what}: {}", other.describe());
                            assert_eq!(other.json(), problem, "{what}: {}", other.describe());
                        }
                    }
                    Expect::Allowed => {
                        let status = page.status.as_u16();
                        assert!(
                            !matches!(status, 401 | 403) && status < 500,
                            "{what}: {}",
                            page.describe()
                        );
                        if status == 404 {
                            assert_ne!(page.json(), hidden, "{what}: {}", page.describe());
                        }
                        if strictly_ok(&method, path) {
                            assert!(page.status.is_success(), "{what}: {}", page.describe());
                        }
                        if let Some(before) = before {
                            // The read is recorded with the credential that made it.
                            let before: i64 = before.parse().expect("a count");
                            wait_count(
                                &gh,
                                &reads_query(&world.a, &world.id(who), &format!("{method} {path}")),
                                before + 1,
                            )
                            .await;
                        }
                    }
                }
                if method == "DELETE" && path.ends_with("/connections/{id}") {
                    gh.admin_put(
                        &format!("/api/v1/tenants/{}/connections/fb", world.a),
                        &facebook_connection(),
                    )
                    .await
                    .assert_status(200);
                }
                checked += 1;
            }
        }
    }
    // The document has every kind of route, so the classification above was exercised.
    assert!(checked >= 7 * 15, "only {checked} calls");
    for route in [
        ("GET", "/api/v1/tenants/{slug}/audit/events"),
        ("GET", "/api/v1/tenants/{slug}/audit/verify"),
        (
            "GET",
            "/api/v1/tenants/{slug}/attempts/{attempt_id}/diagnostics",
        ),
        ("GET", "/api/v1/tenants/{slug}/audit/reads"),
    ] {
        assert!(
            audit_routes.contains(&(route.0.to_owned(), route.1.to_owned())),
            "{route:?} is not in the document"
        );
    }

    // Listings are the caller's own tenant's.
    let page = call(
        &gh,
        world.token(Who::AdminB),
        "GET",
        "/api/v1/credentials",
        None,
    )
    .await;
    page.assert_status(200);
    let listed = page.json()["credentials"]
        .as_array()
        .expect("credentials")
        .clone();
    assert!(!listed.is_empty(), "{}", page.describe());
    for credential in &listed {
        assert_eq!(credential["tenant"], json!(world.b), "{}", page.describe());
        assert!(credential.get("token").is_none(), "{}", page.describe());
    }
    let page = call(
        &gh,
        world.token(Who::AdminB),
        "GET",
        &format!("/api/v1/credentials?tenant={}", world.a),
        None,
    )
    .await;
    assert_eq!(page.assert_problem(404, None), hidden);
}

// ---------------------------------------------------------------------------------------------
// Tokens

async fn a_token_is_shown_once_and_stored_as_a_hash(store: Store) {
    let gh = Gatehouse::start(store).await;
    let slug = tenant(&gh, "hash-").await;
    let cred = create(&gh, &gh.admin_token, "auditor", Some(&slug)).await;
    assert_eq!(cred.token.len(), 3 + 43, "gh_ and 256 bits in base64url");

    // Shown once: never in a listing.
    let page = gh
        .admin_get("/api/v1/credentials")
        .await;
    page.assert_status(200);
    assert!(!page.body.contains(&cred.token), "{}", page.describe());
    let listed = page.json()["credentials"]
        .as_array()
        .expect("credentials")
        .iter()
        .find(|c| c["id"] == json!(cred.id))
        .cloned()
        .expect("listed");
    assert_eq!(listed["tenant"], json!(slug));
    assert_eq!(listed["status"], json!("active"));
    assert_eq!(listed["created_by"], json!("admin:config"));

    // Stored as its SHA-256 only: in the credentials table, nowhere else, never the token.
    let hash = sha256_hex(&cred.token);
    assert_eq!(
        sql1(
            &gh,
            &format!(
                "SELECT token_hash FROM admin_credentials WHERE id = '{}'",
                cred.id
            )
        ),
        hash
    );
    wait_count(
        &gh,
        &format!(
            "SELECT count(*) FROM audit_log WHERE type = 'credential.created' AND detail LIKE \
             'credential {}%'",
            cred.id
        ),
        1,
    )
    .await;
    let dump = gh.dump_database();
    assert!(!dump.contains(&cred.token), "the token is in the database");
    assert_eq!(
        dump.matches(&hash).count(),
        1,
        "the hash is only in admin_credentials"
    );
    assert!(
        !gh.log_text().contains(&cred.token),
        "the token is in the log"
    );

    // It works, for what its role allows.
    call(
        &gh,
        Some(&cred.token),
        "GET",
        &format!("/api/v1/tenants/{slug}/audit/events"),
        None,
    )
    .await
    .assert_status(200);
}

async fn a_revoked_or_expired_token_is_refused(store: Store) {
    let gh = Gatehouse::start(store).await;
    let slug = tenant(&gh, "revoke-").await;
    let cred = create(&gh, &gh.admin_token, "tenant_admin", Some(&slug)).await;
    let path = format!("/api/v1/tenants/{slug}");
    call(&gh, Some(&cred.token), "GET", &path, None)
        .await
        .assert_status(200);
    revoke(&gh, &gh.admin_token, &cred.id)
        .await
        .assert_status(204);
    // At once: the very next request.
    call(&gh, Some(&cred.token), "GET", &path, None)
        .await
        .assert_problem(401, None);
    // Revoking again changes nothing; an unknown id is a 404.
    revoke(&gh, &gh.admin_token, &cred.id)
        .await
        .assert_status(204);
    revoke(&gh, &gh.admin_token, "no-such-credential")
        .await
        .assert_problem(404, None);
    let page = gh
        .admin_get("/api/v1/credentials")
        .await;
    let listed = page.json()["credentials"]
        .as_array()
        .expect("credentials")
        .iter()
        .find(|c| c["id"] == json!(cred.id))
        .cloned()
        .expect("listed");
    assert_eq!(listed["status"], json!("revoked"));

    // Expiry: a past time is refused, a near one stops the token when it comes.
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    gh.admin_post(
        "/api/v1/credentials",
        &json!({ "role": "auditor", "tenant": slug, "expires_at": past }),
    )
    .await
    .assert_problem(422, Some("/expires_at"));
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let page = gh
        .admin_post(
            "/api/v1/credentials",
            &json!({ "role": "auditor", "tenant": slug, "expires_at": soon }),
        )
        .await;
    page.assert_status(201);
    let token = page.json()["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let audit = format!("/api/v1/tenants/{slug}/audit/events");
    call(&gh, Some(&token), "GET", &audit, None)
        .await
        .assert_status(200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    call(&gh, Some(&token), "GET", &audit, None)
        .await
        .assert_problem(401, None);

    // Bad input is a precise problem.
    for (body, field) in [
        (json!({ "role": "root" }), "/role"),
        (json!({ "role": "auditor" }), "/tenant"),
        (
            json!({ "role": "platform_admin", "tenant": slug }),
            "/tenant",
        ),
        (
            json!({ "role": "auditor", "tenant": slug, "expires_at": "tomorrow" }),
            "/expires_at",
        ),
        (
            json!({ "role": "auditor", "tenant": slug, "label": "x".repeat(101) }),
            "/label",
        ),
    ] {
        gh.admin_post("/api/v1/credentials", &body)
            .await
            .assert_problem(422, Some(field));
    }
    gh.admin_post(
        "/api/v1/credentials",
        &json!({ "role": "auditor", "tenant": "no-such-tenant-here" }),
    )
    .await
    .assert_problem(404, None);

    // On PostgreSQL, a revocation holds on every node at once.
    if store == Store::Postgres {
        let other = gh.another_node(&[]).await;
        let cred = create(&gh, &gh.admin_token, "tenant_admin", Some(&slug)).await;
        call(&other, Some(&cred.token), "GET", &path, None)
            .await
            .assert_status(200);
        revoke(&gh, &gh.admin_token, &cred.id)
            .await
            .assert_status(204);
        call(&other, Some(&cred.token), "GET", &path, None)
            .await
            .assert_problem(401, None);
    }
}

async fn tenant_admins_manage_only_their_auditors(store: Store) {
    let gh = Gatehouse::start(store).await;
    let slug = tenant(&gh, "ta-").await;
    let other = tenant(&gh, "ta-other-").await;
    let admin = create(&gh, &gh.admin_token, "tenant_admin", Some(&slug)).await;
    let fellow = create(&gh, &gh.admin_token, "tenant_admin", Some(&slug)).await;
    let foreign = create(&gh, &gh.admin_token, "auditor", Some(&other)).await;

    // It mints an auditor of its tenant, which reads the audit log and nothing else.
    let auditor = create(&gh, &admin.token, "auditor", Some(&slug)).await;
    call(
        &gh,
        Some(&auditor.token),
        "GET",
        &format!("/api/v1/tenants/{slug}/audit/events"),
        None,
    )
    .await
    .assert_status(200);
    call(
        &gh,
        Some(&auditor.token),
        "GET",
        &format!("/api/v1/tenants/{slug}"),
        None,
    )
    .await
    .assert_problem(403, None);
    // No other role, no other tenant.
    for (role, tenant, status) in [
        ("tenant_admin", Some(slug.as_str()), 403),
        ("platform_admin", None, 403),
        ("auditor", Some(other.as_str()), 404),
    ] {
        let mut body = json!({ "role": role });
        if let Some(tenant) = tenant {
            body["tenant"] = json!(tenant);
        }
        call(
            &gh,
            Some(&admin.token),
            "POST",
            "/api/v1/credentials",
            Some(&body),
        )
        .await
        .assert_problem(status, None);
    }
    // It revokes its auditors only: a fellow admin is 403, another tenant's or a platform
    // credential 404.
    revoke(&gh, &admin.token, &fellow.id)
        .await
        .assert_problem(403, None);
    revoke(&gh, &admin.token, &foreign.id)
        .await
        .assert_problem(404, None);
    revoke(&gh, &admin.token, "config")
        .await
        .assert_problem(404, None);
    revoke(&gh, &admin.token, &auditor.id)
        .await
        .assert_status(204);
    call(
        &gh,
        Some(&auditor.token),
        "GET",
        &format!("/api/v1/tenants/{slug}/audit/events"),
        None,
    )
    .await
    .assert_problem(401, None);
    // The auditor manages nothing, and its token (revoked) is refused anyway: another one.
    let auditor = create(&gh, &admin.token, "auditor", Some(&slug)).await;
    call(
        &gh,
        Some(&auditor.token),
        "GET",
        "/api/v1/credentials",
        None,
    )
    .await
    .assert_problem(403, None);
    revoke(&gh, &auditor.token, &auditor.id)
        .await
        .assert_problem(403, None);
}

// ---------------------------------------------------------------------------------------------
// CLI

async fn the_cli_creates_lists_and_revokes(store: Store) {
    let gh = Gatehouse::start(store).await;
    let slug = tenant(&gh, "cli-").await;

    let out = gh.run(&[
        "credentials",
        "create",
        "--role",
        "auditor",
        "--tenant",
        &slug,
        "--label",
        "SIEM",
    ]);
    out.assert_success();
    let token = out.stdout.trim().to_owned();
    assert!(
        token.starts_with("gh_") && !token.contains('\n'),
        "{}",
        out.describe()
    );
    let id = out
        .stderr
        .split_whitespace()
        .nth(2)
        .expect("created credential ID ...")
        .to_owned();
    assert_eq!(
        sql1(
            &gh,
            &format!("SELECT token_hash FROM admin_credentials WHERE id = '{id}'")
        ),
        sha256_hex(&token)
    );
    let events = format!("/api/v1/tenants/{slug}/audit/events");
    call(&gh, Some(&token), "GET", &events, None)
        .await
        .assert_status(200);

    let out = gh.run(&["credentials", "list", "--tenant", &slug]);
    out.assert_success();
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{}", out.describe()));
    assert!(
        line.contains(&format!("auditor of {slug}")) && line.contains("active"),
        "{line}"
    );
    assert!(line.ends_with("SIEM"), "{line}");
    assert!(!out.stdout.contains(&token), "{}", out.describe());
    let out = gh.run(&["credentials", "list", "--json"]);
    out.assert_success();
    let all: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(
        all.iter()
            .any(|c| c["id"] == json!("config") && c["role"] == json!("platform_admin")),
        "{}",
        out.describe()
    );

    // Refusals name the option.
    let out = gh.run(&["credentials", "create", "--role", "auditor"]);
    assert!(!out.status.success(), "{}", out.describe());
    assert!(out.stderr.contains("--tenant"), "{}", out.describe());

    let out = gh.run(&["credentials", "revoke", &id]);
    out.assert_success();
    call(&gh, Some(&token), "GET", &events, None)
        .await
        .assert_problem(401, None);
    let out = gh.run(&["credentials", "revoke", "no-such-credential"]);
    assert!(!out.status.success(), "{}", out.describe());

    // Both changes are in the tenant's audit log, by the system.
    wait_count(
        &gh,
        &format!(
            "SELECT count(*) FROM audit_log WHERE tenant = '{slug}' AND actor = 'system' AND \
             type IN ('credential.created', 'credential.revoked') AND detail LIKE 'credential {id} %'"
        ),
        2,
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Audit reads

async fn audit_reads_are_recorded_with_the_credential(store: Store) {
    let gh = Gatehouse::start(store).await;
    let slug = tenant(&gh, "reads-").await;
    let auditor = create(&gh, &gh.admin_token, "auditor", Some(&slug)).await;
    let email = "someone.private@good.test";
    let path = format!(
        "/api/v1/tenants/{slug}/audit/events?type=login.&email={}",
        email.replace('@', "%40")
    );
    call(&gh, Some(&auditor.token), "GET", &path, None)
        .await
        .assert_status(200);

    // The access log shows who read what, when; the email's value is withheld. Listing it is
    // itself a read (recorded before it answers, listed once the projector applied it).
    let reads = format!("/api/v1/tenants/{slug}/audit/reads");
    let entries = access_log_until(&gh, &auditor.token, &reads, |entries| {
        entries
            .iter()
            .any(|e| detail_of(e) == "GET /api/v1/tenants/{slug}/audit/reads")
    })
    .await;
    let read = entries
        .iter()
        .find(|e| detail_of(e).starts_with("GET /api/v1/tenants/{slug}/audit/events "))
        .unwrap_or_else(|| panic!("no read of the events: {entries:#?}"));
    assert_eq!(read["type"], json!("audit.read"));
    assert_eq!(actor_of(read), format!("admin:{}", auditor.id));
    assert_eq!(
        detail_of(read),
        "GET /api/v1/tenants/{slug}/audit/events type=login.&email=*"
    );
    // The target is the log that was read.
    assert_eq!(read["target"], json!({ "kind": "audit_log", "id": slug }));
    assert!(read["time"]
        .as_str()
        .is_some_and(|t| t.starts_with("20")));
    assert!(
        !gh.dump_database().contains(email),
        "the filter's email is stored"
    );

    // Reads stay out of the tenant's own log: reading it twice gives the same entries.
    let first = gh.audit(&slug, &[]).await;
    let second = gh.audit(&slug, &[]).await;
    assert_eq!(first, second);
    assert!(first
        .iter()
        .all(|e| e["type"] != json!("audit.read")));

    // Platform log reads are recorded in its own access log.
    gh.admin_get("/api/v1/platform/audit/events")
        .await
        .assert_status(200);
    access_log_until(
        &gh,
        &gh.admin_token,
        "/api/v1/platform/audit/reads",
        |entries| {
            entries.iter().any(|e| {
                detail_of(e) == "GET /api/v1/platform/audit/events" && actor_of(e) == "admin:config"
            })
        },
    )
    .await;
}

/// Polls an access log (or the platform log) as `token` until `ready` holds of its entries.
async fn access_log_until(
    gh: &Gatehouse,
    token: &str,
    path: &str,
    ready: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = call(gh, Some(token), "GET", path, None).await;
        page.assert_status(200);
        let entries = page.json()["events"]
            .as_array()
            .expect("entries")
            .clone();
        if ready(&entries) {
            return entries;
        }
        assert!(Instant::now() < deadline, "{}", page.describe());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Credential events in the audit log

async fn credential_changes_are_audited_and_the_chains_verify(store: Store) {
    let gh = Gatehouse::start(store).await;
    let slug = tenant(&gh, "events-").await;
    let admin = create(&gh, &gh.admin_token, "tenant_admin", Some(&slug)).await;
    let auditor = create(&gh, &admin.token, "auditor", Some(&slug)).await;
    revoke(&gh, &admin.token, &auditor.id)
        .await
        .assert_status(204);
    let platform = create(&gh, &gh.admin_token, "platform_admin", None).await;
    revoke(&gh, &platform.token, &platform.id)
        .await
        .assert_status(204);

    // In the tenant's log, with the acting credential.
    let events = gh
        .audit_until(
            &slug,
            &[("type", "credential.")],
            "three credential events",
            |e| e.len() == 3,
        )
        .await;
    let find = |kind: &str, id: &str| {
        events
            .iter()
            .find(|e| {
                e["type"] == json!(kind) && detail_of(e).starts_with(&format!("credential {id} "))
            })
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} of {id}: {events:#?}"))
    };
    assert_eq!(
        actor_of(&find("credential.created", &admin.id)),
        "admin:config"
    );
    let created = find("credential.created", &auditor.id);
    assert_eq!(actor_of(&created), format!("admin:{}", admin.id));
    assert!(detail_of(&created).contains("role=auditor"), "{created:#}");
    assert_eq!(
        actor_of(&find("credential.revoked", &auditor.id)),
        format!("admin:{}", admin.id)
    );
    for token in [&admin.token, &auditor.token, &platform.token] {
        assert!(!serde_json::to_string(&events)
            .unwrap()
            .contains(token.as_str()));
    }

    // A platform admin's changes are in the platform log.
    let has = |entries: &[Value], kind: &str, actor: Option<&str>, prefix: &str| {
        entries.iter().any(|e| {
            e["type"] == json!(kind)
                && actor.is_none_or(|a| actor_of(e) == a)
                && detail_of(e).starts_with(prefix)
        })
    };
    let mine = format!("credential {} ", platform.id);
    access_log_until(
        &gh,
        &gh.admin_token,
        "/api/v1/platform/audit/events",
        |entries| {
            has(entries, "credential.created", Some("admin:config"), &mine)
                && has(entries, "credential.revoked", None, &mine)
        },
    )
    .await;
    // Tenant credentials read no platform log.
    call(
        &gh,
        Some(&admin.token),
        "GET",
        "/api/v1/platform/audit/events",
        None,
    )
    .await
    .assert_problem(403, None);

    // Every chain (the tenant's, its access log, the platform log and its access log) verifies.
    let page = gh
        .admin_get(&format!("/api/v1/tenants/{slug}/audit/verify"))
        .await;
    page.assert_status(200);
    assert_eq!(page.json()["ok"], json!(true), "{}", page.describe());
    let page = call(
        &gh,
        Some(&admin.token),
        "GET",
        &format!("/api/v1/tenants/{slug}/audit/reads/verify"),
        None,
    )
    .await;
    page.assert_status(200);
    let report = page.json();
    assert_eq!(report["ok"], json!(true), "{}", page.describe());
    assert_eq!(report["tenant"], json!(format!("{slug}.access")));
    assert!(
        report["entries_checked"].as_u64() >= Some(1),
        "{}",
        page.describe()
    );
    let out = gh.run(&["audit", "verify"]);
    out.assert_success();
    for scope in [
        slug.clone(),
        format!("{slug}.access"),
        "_platform".to_owned(),
        "_platform.access".to_owned(),
    ] {
        assert!(
            out.stdout
                .contains(&format!("ok {scope}:")),
            "{scope}: {}",
            out.describe()
        );
    }

    let access = format!("{slug}.access");
    let out = gh.run(&["audit", "verify", "--tenant", &access]);
    out.assert_success();
    assert!(
        out.stdout
            .starts_with(&format!("ok {access}:")),
        "{}",
        out.describe()
    );

    // And they survive a projection rebuild.
    let before = gh
        .audit(&slug, &[("type", "credential.")])
        .await;
    let out = gh.run(&["projections", "rebuild"]);
    out.assert_success();
    let after = gh
        .audit_until(
            &slug,
            &[("type", "credential.")],
            "the rebuilt entries",
            |e| e.len() == before.len(),
        )
        .await;
    let strip = |events: &[Value]| -> Vec<Value> {
        events
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e.as_object_mut()
                    .map(|m| m.remove("id"));
                e
            })
            .collect()
    };
    assert_eq!(strip(&before), strip(&after));
    gh.run(&["audit", "verify"])
        .assert_success();
}

// ---------------------------------------------------------------------------------------------
// Existing tokens

async fn existing_tokens_are_platform_admins(store: Store) {
    let gh = Gatehouse::start_with(
        store,
        Options {
            generated_admin_token: true,
            ..Options::default()
        },
    )
    .await;
    // The token printed at the first start is a platform admin: it creates tenants and
    // credentials, and is listed as `bootstrap`.
    let slug = tenant(&gh, "boot-").await;
    let cred = create(&gh, &gh.admin_token, "auditor", Some(&slug)).await;
    let page = gh
        .admin_get("/api/v1/credentials")
        .await;
    page.assert_status(200);
    let listed = page.json()["credentials"].clone();
    let bootstrap = listed
        .as_array()
        .expect("credentials")
        .iter()
        .find(|c| c["id"] == json!("bootstrap"))
        .cloned()
        .unwrap_or_else(|| panic!("{}", page.describe()));
    assert_eq!(bootstrap["role"], json!("platform_admin"));
    assert_eq!(bootstrap["tenant"], Value::Null);
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == json!(cred.id)));
    // It survives a restart. It has no events until its first change: a revocation records
    // its creation (by the system) first, then the revocation.
    let mut gh = gh;
    gh.restart().await;
    gh.admin_get(&format!("/api/v1/tenants/{slug}"))
        .await
        .assert_status(200);
    let events = "SELECT count(*) FROM events WHERE aggregate_type = 'credential' AND \
                  aggregate_id = 'bootstrap'";
    assert_eq!(sql1(&gh, events), "0");
    let successor = create(&gh, &gh.admin_token, "platform_admin", None).await;
    revoke(&gh, &successor.token, "bootstrap")
        .await
        .assert_status(204);
    call(
        &gh,
        Some(&gh.admin_token),
        "GET",
        &format!("/api/v1/tenants/{slug}"),
        None,
    )
    .await
    .assert_problem(401, None);
    assert_eq!(sql1(&gh, events), "2");
    let by = format!("admin:{}", successor.id);
    access_log_until(
        &gh,
        &successor.token,
        "/api/v1/platform/audit/events",
        |entries| {
            let of = |kind: &str, actor: &str| {
                entries.iter().any(|e| {
                    e["type"] == json!(kind)
                        && actor_of(e) == actor
                        && detail_of(e).starts_with("credential bootstrap role=platform_admin")
                })
            };
            of("credential.created", "system") && of("credential.revoked", &by)
        },
    )
    .await;
}

async fn a_revoked_config_credential_stays_revoked(store: Store) {
    let mut gh = Gatehouse::start(store).await;
    let successor = create(&gh, &gh.admin_token, "platform_admin", None).await;
    revoke(&gh, &successor.token, "config")
        .await
        .assert_status(204);
    gh.admin_get("/api/v1/credentials")
        .await
        .assert_problem(401, None);

    // Another configured token is still the revoked `config` credential.
    let replacement = format!("adm-{}", uuid::Uuid::new_v4().simple());
    for (key, value) in gh.env.iter_mut() {
        if key == "GATEHOUSE_ADMIN_TOKEN" {
            *value = replacement.clone();
        }
    }
    gh.restart().await;
    assert_eq!(
        sql1(
            &gh,
            "SELECT token_hash FROM admin_credentials WHERE id = 'config'"
        ),
        sha256_hex(&replacement),
        "the new token is the configured one"
    );
    call(&gh, Some(&replacement), "GET", "/api/v1/credentials", None)
        .await
        .assert_problem(401, None);
    call(
        &gh,
        Some(&successor.token),
        "GET",
        "/api/v1/credentials",
        None,
    )
    .await
    .assert_status(200);
}
