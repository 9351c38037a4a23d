//! Google and Facebook as standard login methods, black box: one deployment-wide client each,
//! given to `gatehouse serve` in its environment. The OIDC provider of tests/idp
//! (oidc-provider) stands in for Google through its discovery document; the OAuth 2.0 provider
//! of tests/oauth2-idp (oauth2-mock-server, Facebook's paths) stands in for Facebook. Every
//! scenario runs on SQLite and on Postgres in its own Gatehouse process.

#[macro_use]
mod common;

use common::oauth2::OAuth2Idp;
use common::*;
use serde_json::{json, Value};

on_both_stores!(
    google_signs_in_a_guest,
    google_unverified_email_is_refused,
    google_member_domain_is_sent_to_sso,
    facebook_signs_in_a_guest,
    facebook_without_email_is_refused,
    facebook_unverified_email_is_refused,
    method_off_for_the_tenant_is_refused,
    forged_and_replayed_callbacks_are_refused,
);

// ---------------------------------------------------------------------------------------------
// helpers local to these scenarios

/// Gatehouse offering Google (a client registered at the test OIDC provider for the
/// deployment's one redirect URL) and Facebook (the test OAuth 2.0 provider). The redirect URL
/// depends on the port, so the Google client is registered once the process runs, then the
/// process is restarted with it.
struct Deployment {
    gh: Gatehouse,
    idp: &'static Idp,
    fb: &'static OAuth2Idp,
    google_secret: String,
    facebook_secret: String,
}

async fn deployment(store: Store) -> Deployment {
    let idp = Idp::shared().await;
    let fb = OAuth2Idp::shared().await;
    let facebook_secret = unique("fb-secret-");
    let env = vec![
        (
            "GATEHOUSE_FACEBOOK_CLIENT_ID".to_string(),
            unique("fb-app-"),
        ),
        (
            "GATEHOUSE_FACEBOOK_CLIENT_SECRET".to_string(),
            facebook_secret.clone(),
        ),
        (
            "GATEHOUSE_FACEBOOK_AUTHORIZATION_URL".to_string(),
            fb.authorization_url(),
        ),
        ("GATEHOUSE_FACEBOOK_TOKEN_URL".to_string(), fb.token_url()),
        (
            "GATEHOUSE_FACEBOOK_USERINFO_URL".to_string(),
            fb.userinfo_url(),
        ),
    ];
    let mut gh = Gatehouse::start_with(
        store,
        Options {
            env,
            ..Options::default()
        },
    )
    .await;
    let redirect = gh.url("/login/google/callback");
    let (client_id, secret) = idp
        .register_client(&[redirect], false)
        .await;
    let google_secret = secret.expect("a confidential client");
    gh.env
        .push(("GATEHOUSE_GOOGLE_CLIENT_ID".into(), client_id));
    gh.env.push((
        "GATEHOUSE_GOOGLE_CLIENT_SECRET".into(),
        google_secret.clone(),
    ));
    gh.env
        .push(("GATEHOUSE_GOOGLE_DISCOVERY_URL".into(), idp.discovery_url()));
    gh.restart().await;
    Deployment {
        gh,
        idp,
        fb,
        google_secret,
        facebook_secret,
    }
}

fn app_url(slug: &str) -> String {
    format!("https://app.{slug}.test/home")
}

/// A tenant with this login policy; returns its slug.
async fn tenant_with_policy(gh: &Gatehouse, policy: Value) -> String {
    let slug = unique("s-");
    gh.create_tenant(&slug, &format!("Tenant {slug}"), &app_url(&slug))
        .await;
    let page = gh
        .admin_put(&format!("/api/v1/tenants/{slug}/login-policy"), &policy)
        .await;
    page.assert_status(200);
    assert_eq!(page.json(), policy, "{}", page.describe());
    slug
}

fn policy(methods: &[&str]) -> Value {
    json!({
        "standard_methods": methods,
        "guests_allowed": true,
        "enforce_sso": true,
        "link_verified_email": false,
    })
}

/// The standard-login page lists `label` as a button; follows it and returns the provider's
/// authorization URL (asserting the flow cookie and the deployment's redirect URL).
async fn start_standard(
    gh: &Gatehouse,
    browser: &reqwest::Client,
    slug: &str,
    method: &str,
    label: &str,
) -> String {
    let page = get(browser, &gh.url(&format!("/{slug}?login=standard"))).await;
    page.assert_status(200);
    let href = format!("/{slug}/standard/{method}");
    assert!(
        page.body
            .contains(&format!("href=\"{href}\""))
            && page
                .body
                .contains(&format!("Sign in with {label}")),
        "the standard-login page should offer {label}: {}",
        page.describe()
    );
    let page = get(browser, &gh.url(&href)).await;
    let authorize = page.assert_redirect();
    assert!(
        page.set_cookie("gatehouse_flow")
            .is_some(),
        "{}",
        page.describe()
    );
    let redirect_uri = query_param(&authorize, "redirect_uri").unwrap_or_default();
    assert_eq!(
        redirect_uri,
        gh.url(&format!("/login/{method}/callback")),
        "{authorize}"
    );
    authorize
}

/// A Google account at the test provider with these claims; returns its login id.
async fn google_account(idp: &Idp, email: &str, verified: Value) -> String {
    let login = unique("goo-");
    let mut claims = json!({ "sub": format!("{login}-sub"), "name": "Gina Google" });
    claims["email"] = json!(email);
    if !verified.is_null() {
        claims["email_verified"] = verified;
    }
    idp.set_account(&login, claims).await;
    login
}

/// Signs in at Google as `login` and returns the page the callback answers.
async fn google_login(d: &Deployment, browser: &reqwest::Client, slug: &str, login: &str) -> Page {
    let authorize = start_standard(&d.gh, browser, slug, "google", "Google").await;
    let callback = idp_sign_in(browser, &d.gh, d.idp, &authorize, login).await;
    assert!(
        callback.starts_with(&d.gh.url("/login/google/callback?")),
        "{callback}"
    );
    get(browser, &callback).await
}

/// Signs in at Facebook as `login` and returns the page the callback answers.
async fn facebook_login(
    d: &Deployment,
    browser: &reqwest::Client,
    slug: &str,
    login: &str,
) -> Page {
    let authorize = start_standard(&d.gh, browser, slug, "facebook", "Facebook").await;
    assert!(
        authorize.starts_with(&d.fb.authorization_url()),
        "{authorize}"
    );
    let callback =
        d.fb.sign_in(browser, &d.gh, &authorize, login)
            .await;
    assert!(
        callback.starts_with(&d.gh.url("/login/facebook/callback?")),
        "{callback}"
    );
    get(browser, &callback).await
}

/// A refusal page with this status that says `text`, with no session.
fn assert_refused(page: &Page, status: u16, text: &str) -> String {
    page.assert_status(status);
    assert!(
        page.content_type()
            .starts_with("text/html"),
        "{}",
        page.describe()
    );
    assert!(
        page.body.contains(text),
        "the page should say {text:?}: {}",
        page.describe()
    );
    page.assert_no_session_cookie();
    page.attempt_id()
        .unwrap_or_else(|| panic!("no attempt reference: {}", page.describe()))
}

/// Asserts a sign-in at `slug` as `email` through `connection_id`; returns the session.
async fn assert_signed_in(
    gh: &Gatehouse,
    browser: &reqwest::Client,
    page: &Page,
    slug: &str,
    connection_id: &str,
    email: &str,
) -> Value {
    assert_eq!(page.assert_redirect(), app_url(slug), "{}", page.describe());
    assert!(
        page.set_cookie("gatehouse_session")
            .is_some(),
        "{}",
        page.describe()
    );
    let session = gh.assert_session(browser).await;
    assert_eq!(session["tenant"], json!(slug), "{session:#}");
    assert_eq!(
        session["connection_id"],
        json!(connection_id),
        "{session:#}"
    );
    assert_eq!(session["email"], json!(email), "{session:#}");
    session
}

/// Neither client secret is in the log or the database.
fn assert_no_secrets(d: &Deployment) {
    let log = d.gh.log_text();
    let db = d.gh.dump_database();
    for secret in [&d.google_secret, &d.facebook_secret] {
        assert!(
            !log.contains(secret.as_str()),
            "a client secret is in the log"
        );
        assert!(
            !db.contains(secret.as_str()),
            "a client secret is in the database"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// scenarios

async fn google_signs_in_a_guest(store: Store) {
    let d = deployment(store).await;
    let gh = &d.gh;
    assert!(
        gh.log_text()
            .contains("/login/google/callback"),
        "the start-up log names the redirect URL"
    );
    let slug = tenant_with_policy(gh, policy(&["email_code", "facebook", "google"])).await;
    let email = format!("{}@gmail.example", unique("gina"));
    let login = google_account(d.idp, &email, json!(true)).await;

    let browser = browser();
    let page = google_login(&d, &browser, &slug, &login).await;
    let first = assert_signed_in(gh, &browser, &page, &slug, "standard-google", &email).await;
    assert_eq!(first["name"], json!("Gina Google"), "{first:#}");

    // The same Google account again (a fresh browser): the same account, not a new one.
    let again = browser_for_another_login();
    let page = google_login(&d, &again, &slug, &login).await;
    let second = assert_signed_in(gh, &again, &page, &slug, "standard-google", &email).await;
    assert_eq!(first["user_id"], second["user_id"]);

    let events = gh
        .audit_until(
            &slug,
            &[("type", "login.succeeded")],
            "two Google sign-ins",
            |e| e.len() == 2,
        )
        .await;
    for event in &events {
        assert_eq!(
            event["connection_id"],
            json!("standard-google"),
            "{event:#}"
        );
        assert_eq!(event["email"], json!(email), "{event:#}");
    }
    let provisioned = gh
        .audit(&slug, &[("type", "user.provisioned")])
        .await;
    assert_eq!(provisioned.len(), 1, "one guest account: {provisioned:#?}");
    assert_no_secrets(&d);
}

async fn google_unverified_email_is_refused(store: Store) {
    let d = deployment(store).await;
    let slug = tenant_with_policy(&d.gh, policy(&["google"])).await;
    // Asserted false, or not asserted at all.
    for (i, verified) in [json!(false), Value::Null]
        .into_iter()
        .enumerate()
    {
        let email = format!("{}@gmail.example", unique(&format!("u{i}")));
        let login = google_account(d.idp, &email, verified.clone()).await;
        let page = google_login(&d, &browser(), &slug, &login).await;
        let attempt = assert_refused(&page, 403, "not verified at Google");
        let event =
            d.gh.assert_login_failed(&slug, "email_not_verified", Some(&attempt))
                .await;
        assert_eq!(
            event["connection_id"],
            json!("standard-google"),
            "{verified}: {event:#}"
        );
    }
    let provisioned =
        d.gh.audit(&slug, &[("type", "user.provisioned")])
            .await;
    assert!(provisioned.is_empty(), "{provisioned:#?}");
}

async fn google_member_domain_is_sent_to_sso(store: Store) {
    let d = deployment(store).await;
    let tenant = tenant_with_idp(&d.gh, d.idp, false).await;
    let path = format!("/api/v1/tenants/{}/login-policy", tenant.slug);
    d.gh.admin_put(&path, &policy(&["google"]))
        .await
        .assert_status(200);

    // A Google account whose verified address is in the tenant's SSO domain (good.test).
    let email = format!("{}@good.test", unique("member"));
    let login = google_account(d.idp, &email, json!(true)).await;
    let page = google_login(&d, &browser(), &tenant.slug, &login).await;
    let attempt = assert_refused(&page, 403, "Use your organisation's sign-in");
    assert!(page.body.contains("not with Google"), "{}", page.describe());
    let sso = format!(
        "href=\"/{}/sso/{}/start\"",
        tenant.slug, tenant.connection_id
    );
    assert!(
        page.body.contains(&sso),
        "the page should send the person to SSO: {}",
        page.describe()
    );
    assert!(
        page.body
            .contains(&format!("Sign in with {}", tenant.label)),
        "{}",
        page.describe()
    );
    let event =
        d.gh.assert_login_failed(&tenant.slug, "sso_enforced", Some(&attempt))
            .await;
    assert_eq!(event["email"], json!(email), "{event:#}");

    // Without enforcement the same person may use Google (and is no guest: no guests needed).
    let relaxed = json!({
        "standard_methods": ["google"], "guests_allowed": false, "enforce_sso": false,
        "link_verified_email": false,
    });
    d.gh.admin_put(&path, &relaxed)
        .await
        .assert_status(200);
    let browser = browser();
    let page = google_login(&d, &browser, &tenant.slug, &login).await;
    assert_eq!(
        page.assert_redirect(),
        tenant.app_url,
        "{}",
        page.describe()
    );

    // But a guest is refused when guests are off.
    let guest = format!("{}@gmail.example", unique("g"));
    let login = google_account(d.idp, &guest, json!(true)).await;
    let page = google_login(&d, &browser_for_another_login(), &tenant.slug, &login).await;
    let attempt = assert_refused(&page, 403, "does not let guests sign in");
    d.gh.assert_login_failed(&tenant.slug, "guests_disabled", Some(&attempt))
        .await;
}

async fn facebook_signs_in_a_guest(store: Store) {
    let d = deployment(store).await;
    let slug = tenant_with_policy(&d.gh, policy(&["facebook"])).await;
    let email = format!("{}@facebook.example", unique("fred"));
    let login =
        d.fb.account(json!({ "id": unique("fbid-"), "name": "Fred Facebook", "email": email }))
            .await;
    let browser = browser();
    let page = facebook_login(&d, &browser, &slug, &login).await;
    let session =
        assert_signed_in(&d.gh, &browser, &page, &slug, "standard-facebook", &email).await;
    assert_eq!(session["name"], json!("Fred Facebook"), "{session:#}");
    // The preset's token authentication: the secret in the body, and PKCE.
    let requests = d.fb.token_requests().await;
    let mine: Vec<&Value> = requests
        .iter()
        .filter(|r| r["redirect_uri"] == json!(d.gh.url("/login/facebook/callback")))
        .collect();
    assert!(!mine.is_empty(), "{requests:#?}");
    assert_eq!(
        mine[0]["auth_method"],
        json!("client_secret_post"),
        "{requests:#?}"
    );
    let page = get(
        &browser,
        &d.gh
            .url(&format!("/{slug}?login=standard")),
    )
    .await;
    assert!(
        !page
            .body
            .contains("Sign in with Google"),
        "Google is not on for this tenant: {}",
        page.describe()
    );
    assert_no_secrets(&d);
}

async fn facebook_without_email_is_refused(store: Store) {
    let d = deployment(store).await;
    let slug = tenant_with_policy(&d.gh, policy(&["facebook"])).await;
    for profile in [
        json!({ "id": unique("fbid-"), "name": "No Mail" }),
        json!({ "id": unique("fbid-"), "name": "Null Mail", "email": null }),
    ] {
        let login = d.fb.account(profile).await;
        let page = facebook_login(&d, &browser(), &slug, &login).await;
        let attempt = assert_refused(&page, 403, "Facebook did not share an email address");
        let event =
            d.gh.assert_login_failed(&slug, "email_missing", Some(&attempt))
                .await;
        assert_eq!(
            event["connection_id"],
            json!("standard-facebook"),
            "{event:#}"
        );
    }
}

async fn facebook_unverified_email_is_refused(store: Store) {
    let d = deployment(store).await;
    let slug = tenant_with_policy(&d.gh, policy(&["facebook"])).await;
    let email = format!("{}@facebook.example", unique("unv"));
    let login = d
        .fb
        .account(json!({ "id": unique("fbid-"), "name": "Una", "email": email, "email_verified": false }))
        .await;
    let page = facebook_login(&d, &browser(), &slug, &login).await;
    let attempt = assert_refused(&page, 403, "not verified at Facebook");
    let event =
        d.gh.assert_login_failed(&slug, "email_not_verified", Some(&attempt))
            .await;
    assert_eq!(event["email"], json!(email), "{event:#}");
}

async fn method_off_for_the_tenant_is_refused(store: Store) {
    let d = deployment(store).await;
    let slug = tenant_with_policy(&d.gh, policy(&["email_code"])).await;
    let page = get(
        &browser(),
        &d.gh
            .url(&format!("/{slug}?login=standard")),
    )
    .await;
    assert!(
        !page
            .body
            .contains("Sign in with Google"),
        "{}",
        page.describe()
    );
    assert!(
        !page
            .body
            .contains("Sign in with Facebook"),
        "{}",
        page.describe()
    );
    let page = get(
        &browser(),
        &d.gh
            .url(&format!("/{slug}/standard/google")),
    )
    .await;
    let attempt = assert_refused(&page, 403, "Sign-in with Google is not enabled");
    d.gh.assert_login_failed(&slug, "method_disabled", Some(&attempt))
        .await;
    // Unknown methods and the reserved ids are no connections of the tenant.
    for path in [
        format!("/{slug}/standard/email_code"),
        format!("/{slug}/standard/github"),
        format!("/{slug}/sso/standard-google/start"),
        "/login/github/callback?state=x&code=y".to_string(),
    ] {
        get(&browser(), &d.gh.url(&path))
            .await
            .assert_status(404);
    }
    // Nor can an administrator create a connection under a reserved id.
    for id in [
        "standard-google",
        "standard-x",
        "email-code",
        "verified-email",
    ] {
        let config = json!({ "discovery_url": d.idp.discovery_url(), "client_id": "c", "allowed_domains": ["good.test"] });
        d.gh.admin_put(
            &format!("/api/v1/tenants/{slug}/connections/{id}"),
            &json!({ "protocol": "oidc", "label": "Mine", "config": config }),
        )
        .await
        .assert_problem(422, Some("/connection_id"));
    }
}

async fn forged_and_replayed_callbacks_are_refused(store: Store) {
    let d = deployment(store).await;
    let slug = tenant_with_policy(&d.gh, policy(&["google"])).await;

    // No state, a state nobody issued, a state twice: a plain page, no session, no tenant.
    for query in ["code=x", "state=forged&code=x", "state=a&state=b&code=x"] {
        let page = get(
            &browser(),
            &d.gh
                .url(&format!("/login/google/callback?{query}")),
        )
        .await;
        page.assert_status(400);
        page.assert_no_session_cookie();
    }

    // A real callback presented by another browser: recorded at the tenant, the real one
    // still works once, and a replay of it is refused.
    let email = format!("{}@gmail.example", unique("r"));
    let login = google_account(d.idp, &email, json!(true)).await;
    let browser = browser();
    let authorize = start_standard(&d.gh, &browser, &slug, "google", "Google").await;
    let callback = idp_sign_in(&browser, &d.gh, d.idp, &authorize, &login).await;
    let stranger = get(&client(), &callback).await;
    let attempt = assert_refused(&stranger, 400, "not started in this browser");
    d.gh.assert_login_failed(&slug, "state_mismatch", Some(&attempt))
        .await;
    let page = get(&browser, &callback).await;
    assert_signed_in(&d.gh, &browser, &page, &slug, "standard-google", &email).await;
    let replay = get(&browser, &callback).await;
    let attempt = assert_refused(&replay, 400, "not started in this browser");
    d.gh.assert_login_failed(&slug, "state_reused", Some(&attempt))
        .await;
}

/// A browser with its own cookie jar, so the test provider asks for a login again.
fn browser_for_another_login() -> reqwest::Client {
    browser()
}

/// A Google or Facebook client given half, its secret in the shared TOML file, or an endpoint
/// the network policy refuses: `gatehouse serve` stops at once and says why.
#[test]
fn misconfigured_clients_stop_the_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut env = vec![
            ("GATEHOUSE_LISTEN".to_string(), format!("127.0.0.1:{}", free_port())),
            ("GATEHOUSE_DATA_DIR".to_string(), dir.path().display().to_string()),
            ("GATEHOUSE_ADMIN_TOKEN".to_string(), "adm-misconfigured-clients".to_string()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    };
    let toml = dir.path().join("gatehouse.toml");
    std::fs::write(&toml, "google_client_id = \"id\"\ngoogle_client_secret = \"in-the-file\"\n").expect("write toml");
    let toml_arg = toml.display().to_string();
    let cases: Vec<(Vec<(String, String)>, Vec<&str>, &str)> = vec![
        (base(&[("GATEHOUSE_GOOGLE_CLIENT_ID", "id")]), vec!["serve"], "GATEHOUSE_GOOGLE_CLIENT_SECRET is not"),
        (base(&[("GATEHOUSE_FACEBOOK_CLIENT_SECRET", "s3cr3t-value")]), vec!["serve"], "GATEHOUSE_FACEBOOK_CLIENT_ID is not"),
        (base(&[]), vec!["--config", &toml_arg, "serve"], "google_client_secret"),
        (
            base(&[
                ("GATEHOUSE_GOOGLE_CLIENT_ID", "id"),
                ("GATEHOUSE_GOOGLE_CLIENT_SECRET", "s3cr3t-value"),
                ("GATEHOUSE_GOOGLE_DISCOVERY_URL", "http://127.0.0.1:9/.well-known/openid-configuration"),
            ]),
            vec!["serve"],
            "cannot offer google",
        ),
    ];
    for (env, args, says) in cases {
        let out = run_gatehouse(&env, dir.path(), &args, std::time::Duration::from_secs(60));
        assert!(!out.status.success(), "{}", out.describe());
        assert!(out.stderr.contains(says), "should say {says:?}: {}", out.describe());
        assert!(!out.stderr.contains("s3cr3t-value") && !out.stderr.contains("in-the-file"), "a secret is in the output: {}", out.describe());
    }
}
