//! Standard login with an email one-time code, black box: a real `gatehouse serve` sending
//! through a real SMTP server on loopback (tests/smtp-server, aiosmtpd), from which each test
//! reads the code and the link. Every scenario runs on SQLite and on Postgres
//! (`sqlite::NAME`, `postgres::NAME`) in its own Gatehouse process with its own tenant.

#[macro_use]
mod common;

use std::time::Duration;

use common::smtp::{link_in, SmtpServer};
use common::*;
use serde_json::{json, Value};

on_both_stores!(
    login_policy_api_checks_and_records,
    code_signs_in_a_guest,
    link_signs_in_only_after_a_confirm_in_the_same_browser,
    wrong_code_counts_then_the_right_one_works,
    five_wrong_codes_lock_the_code,
    expired_code_is_refused,
    used_code_and_link_are_refused,
    sending_is_rate_limited_per_email,
    sending_is_rate_limited_per_ip,
    sso_domain_is_sent_to_sso,
    guests_disabled_are_refused,
    disabled_method_is_refused,
    policy_is_checked_again_when_the_code_is_used,
    outbox_without_smtp_writes_the_mail,
    answer_is_the_same_for_known_and_unknown_addresses,
    cross_origin_posts_are_refused,
    no_code_or_link_in_logs_or_events,
    parallel_guesses_share_five_tries,
    audit_survives_a_projection_rebuild,
);

// ---------------------------------------------------------------------------------------------
// helpers local to these scenarios

const EMAIL_CODE_COOKIE: &str = "gatehouse_email_code";

/// Gatehouse sending through the shared SMTP server, with extra environment.
async fn start(store: Store, smtp: &SmtpServer, extra: &[(&str, &str)]) -> Gatehouse {
    let mut env = smtp.env();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Gatehouse::start_with(
        store,
        Options {
            env,
            ..Options::default()
        },
    )
    .await
}

/// A tenant with this login policy; returns its slug.
async fn tenant_with_policy(gh: &Gatehouse, policy: Value) -> String {
    let slug = unique("e-");
    gh.create_tenant(&slug, &format!("Tenant {slug}"), &app_url(&slug))
        .await;
    let page = gh
        .admin_put(&format!("/api/v1/tenants/{slug}/login-policy"), &policy)
        .await;
    page.assert_status(200);
    assert_eq!(page.json(), policy, "{}", page.describe());
    slug
}

fn app_url(slug: &str) -> String {
    format!("https://app.{slug}.test/home")
}

fn email_code_policy() -> Value {
    json!({ "standard_methods": ["email_code"], "guests_allowed": true, "enforce_sso": true, "link_verified_email": false })
}

/// A unique guest address.
fn guest() -> String {
    format!("{}@guests.example", unique("g"))
}

/// A same-origin form post, as the browser sends it from Gatehouse's own page.
async fn post(gh: &Gatehouse, client: &reqwest::Client, path: &str, form: &[(&str, &str)]) -> Page {
    let url = gh.url(path);
    let response = client
        .post(&url)
        .header("Origin", &gh.url)
        .form(form)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    Page::read(&url, response).await
}

async fn request_code(gh: &Gatehouse, browser: &reqwest::Client, slug: &str, email: &str) -> Page {
    post(gh, browser, &format!("/{slug}/email-code"), &[("email", email)]).await
}

/// Requests a code and asserts the "check your email" page and the binding cookie; returns
/// the cookie value.
async fn request_code_ok(gh: &Gatehouse, browser: &reqwest::Client, slug: &str, email: &str) -> String {
    let page = request_code(gh, browser, slug, email).await;
    page.assert_status(200);
    assert!(page.body.contains("Check your email"), "{}", page.describe());
    page.assert_no_session_cookie();
    let cookie = page
        .set_cookie(EMAIL_CODE_COOKIE)
        .unwrap_or_else(|| panic!("no {EMAIL_CODE_COOKIE} cookie: {}", page.describe()));
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, value)| value.to_owned())
        .expect("cookie value")
}

async fn enter_code(gh: &Gatehouse, browser: &reqwest::Client, slug: &str, code: &str) -> Page {
    post(gh, browser, &format!("/{slug}/email-code/verify"), &[("code", code)]).await
}

/// The token of a one-click link.
fn token_of(link: &str) -> String {
    query_param(link, "token").unwrap_or_else(|| panic!("no token in {link}"))
}

/// A client that sends only this email-code cookie (a browser whose jar we control).
fn client_with_cookie(value: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::COOKIE,
        format!("{EMAIL_CODE_COOKIE}={value}").parse().expect("cookie header"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(HTTP_TIMEOUT)
        .build()
        .expect("client")
}

/// Asserts a sign-in: 302 to the app with a session cookie; returns the session.
async fn assert_signed_in(gh: &Gatehouse, browser: &reqwest::Client, page: &Page, slug: &str, email: &str) -> Value {
    let location = page.assert_redirect();
    assert_eq!(location, app_url(slug), "{}", page.describe());
    assert!(page.set_cookie("gatehouse_session").is_some(), "{}", page.describe());
    let session = gh.assert_session(browser).await;
    assert_eq!(session["tenant"], json!(slug), "{session:#}");
    assert_eq!(session["connection_id"], json!("email-code"), "{session:#}");
    assert_eq!(session["email"], json!(email), "{session:#}");
    session
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == json!(kind)).collect()
}

/// An HTML page with this status that says `text`.
fn assert_page(page: &Page, status: u16, text: &str) {
    page.assert_status(status);
    assert!(page.content_type().starts_with("text/html"), "{}", page.describe());
    assert!(page.body.contains(text), "the page should say {text:?}: {}", page.describe());
    page.assert_no_session_cookie();
}

// ---------------------------------------------------------------------------------------------
// scenarios

async fn login_policy_api_checks_and_records(store: Store) {
    let smtp = SmtpServer::shared().await;
    let gh = start(store, smtp, &[]).await;
    let slug = unique("e-");
    gh.create_tenant(&slug, "Policy Co", &app_url(&slug)).await;
    let path = format!("/api/v1/tenants/{slug}/login-policy");

    // The default: no standard method, guests allowed, SSO enforced.
    let page = gh.admin_get(&path).await;
    page.assert_status(200);
    assert_eq!(
        page.json(),
        json!({ "standard_methods": [], "guests_allowed": true, "enforce_sso": true, "link_verified_email": false })
    );
    // Standard login says it is off.
    let page = get(&browser(), &gh.url(&format!("/{slug}?login=standard"))).await;
    assert_page(&page, 200, "not enabled");

    // Hostile and wrong input: RFC 7807 problems.
    let bad = json!({ "standard_methods": ["passwords"], "guests_allowed": true, "enforce_sso": true, "link_verified_email": false });
    gh.admin_put(&path, &bad).await.assert_problem(422, Some("/standard_methods/0"));
    let google = json!({ "standard_methods": ["email_code", "google"], "guests_allowed": true, "enforce_sso": true, "link_verified_email": false });
    let problem = gh.admin_put(&path, &google).await.assert_problem(422, Some("/standard_methods/1"));
    assert!(problem["detail"].as_str().unwrap_or("").contains("google"), "{problem:#}");
    gh.admin_put(&path, &json!({ "standard_methods": ["email_code"] })).await.assert_problem(400, None);
    gh.admin_put(&path, &json!({ "standard_methods": "email_code", "guests_allowed": true, "enforce_sso": true, "link_verified_email": false }))
        .await
        .assert_problem(400, None);
    gh.admin_put(&path, &json!({ "standard_methods": [], "guests_allowed": true, "enforce_sso": true, "x": 1 }))
        .await
        .assert_problem(422, Some("/x"));
    // A body over the 64 KiB limit is 413, not a parse error.
    let huge = json!({ "standard_methods": ["email_code"], "guests_allowed": true, "enforce_sso": true, "link_verified_email": false, "pad": "p".repeat(70 * 1024) });
    gh.admin_put(&path, &huge)
        .await
        .assert_problem(413, None);
    gh.admin_put("/api/v1/tenants/no-such-tenant/login-policy", &email_code_policy())
        .await
        .assert_problem(404, None);
    let anonymous = client().get(gh.url(&path)).send().await.expect("GET");
    Page::read(&gh.url(&path), anonymous).await.assert_problem(401, None);

    // A change is recorded once, with its actor; the same policy again records nothing.
    gh.admin_put(&path, &email_code_policy()).await.assert_status(200);
    gh.admin_put(&path, &email_code_policy()).await.assert_status(200);
    assert_eq!(gh.admin_get(&path).await.json(), email_code_policy());
    let events = gh
        .audit_until(&slug, &[("type", "tenant.login_policy.changed")], "the policy change", |e| !e.is_empty())
        .await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["actor"]["kind"], json!("admin_credential"), "{:#}", events[0]);
    assert!(events[0]["outcome"]["detail"].as_str().unwrap_or("").contains("email_code"), "{:#}", events[0]);

    // Now the standard-login page lists the method.
    let page = get(&browser(), &gh.url(&format!("/{slug}?login=standard"))).await;
    assert_page(&page, 200, "Email me a code");
    assert!(page.body.contains(&format!("action=\"/{slug}/email-code\"")), "{}", page.describe());
    // And the choice page still offers "Sign in with Gatehouse".
    let page = get(&browser(), &gh.url(&format!("/{slug}"))).await;
    assert_page(&page, 200, "Sign in with Gatehouse");
}

async fn code_signs_in_a_guest(store: Store) {
    let smtp = SmtpServer::shared().await;
    let gh = start(store, smtp, &[]).await;
    let slug = tenant_with_policy(&gh, email_code_policy()).await;
    let email = guest();

    let browser = browser();
    request_code_ok(&gh, &browser, &slug, &email).await;
    let mail = smtp.mail_to(&email).await;
    assert!(mail.subject.contains(&format!("Tenant {slug}")), "{mail:?}");
    assert!(!mail.subject.contains(&mail.code()), "the subject carries the code: {mail:?}");
    let page = enter_code(&gh, &browser, &slug, &mail.code()).await;
    let first = assert_signed_in(&gh, &browser, &page, &slug, &email).await;
    let cleared = page.set_cookie(EMAIL_CODE_COOKIE).expect("the handle cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    // The steps, on record for the compliance reader.
    let events = gh
        .audit_until(&slug, &[], "a signed-in email-code attempt", |e| !of_type(e, "session.started").is_empty())
        .await;
    for kind in ["login.started", "login.code_requested", "login.code_sent", "login.succeeded", "user.provisioned"] {
        assert_eq!(of_type(&events, kind).len(), 1, "{kind}: {events:#?}");
    }
    let sent = of_type(&events, "login.code_sent")[0];
    assert_eq!(sent["email"], json!(email), "{sent:#}");
    assert_eq!(sent["protocol"], json!("email_code"), "{sent:#}");
    assert_eq!(sent["outcome"]["detail"], json!("delivered to smtp"), "{sent:#}");
    let succeeded = of_type(&events, "login.succeeded")[0];
    assert_eq!(succeeded["outcome"]["result"], json!("succeeded"), "{succeeded:#}");
    assert_eq!(succeeded["user_id"], first["user_id"], "{succeeded:#}");

    // A second sign-in finds the same account.
    let again = common::browser();
    request_code_ok(&gh, &again, &slug, &email).await;
    let mail = smtp.nth_mail_to(&email, 2).await;
    let page = enter_code(&gh, &again, &slug, &mail.code()).await;
    let second = assert_signed_in(&gh, &again, &page, &slug, &email).await;
    assert_eq!(second["user_id"], first["user_id"]);
    let provisioned = gh.audit(&slug, &[("type", "user.provisioned")]).await;
    assert_eq!(provisioned.len(), 1, "{provisioned:#?}");
}

async fn link_signs_in_only_after_a_confirm_in_the_same_browser(store: Store) {
    let smtp = SmtpServer::shared().await;
    let gh = start(store, smtp, &[]).await;
    let slug = tenant_with_policy(&gh, email_code_policy()).await;
    let email = guest();
    let browser = browser();
    request_code_ok(&gh, &browser, &slug, &email).await;
    let link = smtp.mail_to(&email).await.link();
    assert!(link.starts_with(&gh.url(&format!("/{slug}/email-code/link?token="))), "{link}");
    let token = token_of(&link);

    // A mail scanner fetches the link: a page with a button, nobody signed in.
    let scanner = client();
    let page = get(&scanner, &link).await;
    assert_page(&page, 200, "Confirm that you want to sign in");
    assert!(page.body.contains("method=\"post\""), "{}", page.describe());
    // Even pressing the button from another browser does not sign it in.
    let page = post(&gh, &scanner, &format!("/{slug}/email-code/link"), &[("token", &token)]).await;
    assert_page(&page, 400, "Open the link in the browser where you asked for the code");

    // The browser that asked: confirm page, then the POST signs in.
    let page = get(&browser, &link).await;
    assert_page(&page, 200, "Confirm that you want to sign in");
    let page = post(&gh, &browser, &format!("/{slug}/email-code/link"), &[("token", &token)]).await;
    assert_signed_in(&gh, &browser, &page, &slug, &email).await;

    // A garbled link is a plain page, not a failure of the service.
    let page = get(&browser, &gh.url(&format!("/{slug}/email-code/link?token=%3Cscript%3E"))).await;
    assert_page(&page, 400, "incomplete");
    assert!(!page.body.contains("<script>"), "{}", page.describe());
    let page = post(&gh, &browser, &format!("/{slug}/email-code/link"), &[("token", "nope")]).await;
    assert_page(&page, 400, "not valid");
}

async fn wrong_code_counts_then_the_right_one_works(store: Store) {
    let smtp = SmtpServer::shared().await;
    let gh = start(store, smtp, &[]).await;
    let slug = tenant_with_policy(&gh, email_code_policy()).await;
    let email = guest();
    let browser = browser();
    request_code_ok(&gh, &browser, &slug, &email).await;
    let code = smtp.mail_to(&email).await.code();
    let wrong = if code == "000000" { "000001" } else { "000000" };

    let page = enter_code(&gh, &browser, &slug, wrong).await;
    assert_page(&page, 400, "4 tries left");
    // What cannot be a code (empty, letters, markup, too short or long) is a slip, not a
    // guess: it is answered plainly, takes no try and is not recorded.
    for slip in ["", "abcdef", "<b>12</b>", "12345", "1234567"] {
        let page = enter_code(&gh, &browser, &slug, slip).await;
        assert_page(&page, 400, "Enter the 6-digit code");
        assert!(!page.body.contains("<b>12</b>"), "{}", page.describe());
    }
    let wrong2 = if code == "000002" { "000003" } else { "000002" };
    let page = enter_code(&gh, &browser, &slug, wrong2).await;
    assert_page(&page, 400, "3 tries left");
    // Spaces inside the code are forgiven.
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    let page = enter_code(&gh, &browser, &slug, &spaced).await;
    assert_signed_in(&gh, &browser, &page, &slug, &email).await;

    let wrongs = gh
        .audit_until(&slug, &[("type", "login.code_wrong")], "two wrong codes", |e| e.len() == 2)
        .await;
    assert_eq!(wrongs[0]["outcome"]["reason"], json!("code_wrong"), "{wrongs:#?}");
    assert_eq!(wrongs[0]["outcome"]["detail"], json!("3 tries left"), "{wrongs:#?}");
    // Every step can be found by the address.
    let by_email = gh.audit(&slug, &[("email", &email)]).await;
    for kind in ["login.code_requested", "login.code_sent", "login.code_wrong", "login.succeeded"] {
        assert!(!of_type(&by_email, kind).is_empty(), "{kind} by email: {by_email:#?}");
    }
}

async fn five_wrong_codes_lock_the_code(store: Store) {
    let smtp = SmtpServer::shared().await;
    let gh = start(store, smtp, &[]).await;
    let slug = tenant_with_policy(&gh, email_code_policy()).await;
    let email = guest();
    let browser = browser();
    request_code_ok(&gh, &browser, &slug, &email).await;
    let code = smtp.mail_to(&email).await.code();
    let wrong = if code == "999999" { "999998" } else { "999999" };

    for left in (1..=4).rev() {
        let page = enter_code(&gh, &browser, &slug, wrong).await;
        assert_page(&page, 400, &format!("{left} tr"));
    }
    let page = enter_code(&gh, &browser, &slug, wrong).await;
    let attempt = page.assert_error_page(&[403]);
    assert!(page.body.contains("Too many wrong codes"), "{}", page.describe());
    // Locked: the right code no longer works either.
    let page = enter_code(&gh, &browser, &slug, &code).await;
    page.assert_error_page(&[403]);
    gh.assert_no_session(&browser).await;

    let failed = gh.assert_login_failed(&slug, "code_locked", Some(&attempt)).await;
    assert_eq!(failed["email"], json!(email), "{failed:#}");
    let wrongs = gh.audit(&slug, &[("type", "login.code_wrong")]).await;
    assert_eq!(wrongs.len(), 5, "{wrongs:#?}");
    assert!(gh.audit(&slug, &[("type", "login.succeeded")]).await.is_empty());
}

async fn expired_code_is_refused(store: Store) {
    let smtp = SmtpServer::shared().await;
    let gh = start(store, smtp, &[("GATEHOUSE_EMAIL_CODE_TTL_SECS", "1")]).await;
    let slug = tenant_with_policy(&gh, email_code_policy()).await;
    let email = guest();
    let browser = browser();
    request_code_ok(&gh, &browser, &slug, &email).await;
    let mail = smtp.mail_to(&email).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let page = enter_code(&gh, &browser, &slug, &mail.code()).await;
    let attempt = page.assert_error_page(&[400]);
    assert!(page.body.contains("expired"), "{}", page.describe());
    gh.assert_login_failed(&slug, "code_expired", Some(&attempt)).await;
    gh.assert_no_session(&browser).await;
}

async fn used_code_and_link_are_refused(store: Store) {
    let smtp = SmtpServer::shared().await;
    let gh = start(store, smtp, &[]).await;
    let slug = tenant_with_policy(&gh, email_code_policy()).await;
    let email = guest();
    let browser = browser();
    let handle = request_code_ok(&gh, &browser, &slug, &email).await;
    let mail = smtp.mail_to(&email).await;
    let page = enter_code(&gh, &browser, &slug, &mail.code()).await;
    assert_signed_in(&gh, &browser, &page, &slug, &email).await;

    // The same browser handle, code and link once more: refused, recorded as reuse.
    let replay = client_with_cookie(&handle);
    let page = enter_code(&gh, &replay, &slug, &mail.code()).await;
    let attempt = page.assert_error_page(&[400]);
    assert!(page.body.contains("already used"), "{}", page.describe());
    gh.assert_login_failed(&slug, "code_reused", Some(&attempt)).await;
    let token = token_of(&mail.link());
    let page = post(&gh, &replay, &format!("/{slug}/email-code/link"), &[("token", &token)]).await;
    let attempt = page.assert_error_page(&[400]);
    gh.assert_login_failed(&slug, "code_reused", Some(&attempt)).await;
    assert_eq!(gh.audit(&slug, &[("type", "login.succeeded")]).await.len(), 1);

    // A code entered in a browser that asked for none is refused without a sign-in.
    let page = enter_code(&gh, &common::browser(), &slug, &mail.code()).await;
    assert_page(&page, 400, "No code was requested in this browser");
}

async fn sending_is_rate_limited_per_email(store: Store) {
    let smtp = SmtpServer::shared().await;
    let gh = start(store, smtp, &[("GATEHOUSE_EMAIL_CODE_MAX_PER_EMAIL", "2")]).await;
    let slug = tenant_with_policy(&gh, email_code_policy()).await;
    let email = guest();
    request_code_ok(&gh, &browser(), &slug, &email).await;
    request_code_ok(&gh, &browser(), &slug, &email).await;
    // The address counts however it is spelled.
    let page = request_code(&gh, &browser(), &slug, &email.to_uppercase().replace("GUESTS.EXAMPLE", "guests.example")).await;
    let attempt = page.assert_error_page(&[429]);
    assert!(page.body.contains("Too many codes"), "{}", page.describe());
    gh.assert_login_failed(&slug, "rate_limited", Some(&attempt)).await;
    // Another address is not held back.
    request_code_ok(&gh, &browser(), &slug, &guest()).await;
    smtp.nth_mail_to(&email, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.mails_to(&email).len(), 2, "a refused request sent mail anyway");
}

async fn sending_is_rate_limited_per_ip(store: Store) {
    let smtp = SmtpServer::shared().await;
    let gh = start(store, smtp, &[("GATEHOUSE_EMAIL_CODE_MAX_PER_IP", "3")]).await;
    let slug = tenant_with_policy(&gh, email_code_policy()).await;
    for _ in 0..3 {
        request_code_ok(&gh, &browser(), &slug, &guest()).await;
    }
    let email = guest();
    let page = request_code(&gh, &browser(), &slug, &email).await;
    let attempt = page.assert_error_page(&[429]);
    let failed = gh.assert_login_failed(&slug, "rate_limited", Some(&attempt)).await;
    assert_eq!(failed["client_ip"], json!("127.0.0.1"), "{failed:#}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(smtp.mails_to(&email).is_empty(), "a refused request sent mail");
}

async fn sso_domain_is_sent_to_sso(store: Store) {
    let smtp = SmtpServer::shared().await;
    let idp = Idp::shared().await;
    let gh = start(store, smtp, &[]).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    let path = format!("/api/v1/tenants/{}/login-policy", tenant.slug);
    gh.admin_put(&path, &email_code_policy()).await.assert_status(200);

    // A member address (the connection allows good.test) is sent to SSO, with an explanation.
    let member = format!("{}@GOOD.test", unique("m"));
    let page = request_code(&gh, &browser(), &tenant.slug, &member).await;
    let attempt = page.assert_error_page(&[403]);
    assert!(page.body.contains(&format!("Sign in with {}", tenant.label)), "{}", page.describe());
    assert!(
        page.body.contains(&format!("href=\"/{}/sso/{}/start\"", tenant.slug, tenant.connection_id)),
        "{}",
        page.describe()
    );
    assert!(page.set_cookie(EMAIL_CODE_COOKIE).is_none(), "{}", page.describe());
    let failed = gh.assert_login_failed(&tenant.slug, "sso_enforced", Some(&attempt)).await;
    assert!(failed["outcome"]["detail"].as_str().unwrap_or("").contains(&tenant.connection_id), "{failed:#}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(smtp.mails_to(&member.to_lowercase()).is_empty() && smtp.mails_to(&member).is_empty());

    // A guest address at the same tenant gets a code.
    request_code_ok(&gh, &browser(), &tenant.slug, &guest()).await;

    // Without enforcement, a member may use the code too.
    let relaxed = json!({ "standard_methods": ["email_code"], "guests_allowed": false, "enforce_sso": false, "link_verified_email": false });
    gh.admin_put(&path, &relaxed).await.assert_status(200);
    let member = format!("{}@good.test", unique("m"));
    let browser = browser();
    request_code_ok(&gh, &browser, &tenant.slug, &member).await;
    let code = smtp.mail_to(&member).await.code();
    let page = enter_code(&gh, &browser, &tenant.slug, &code).await;
    page.assert_redirect();
}

async fn guests_disabled_are_refused(store: Store) {
    let smtp = SmtpServer::shared().await;
    let gh = start(store, smtp, &[]).await;
    let policy = json!({ "standard_methods": ["email_code"], "guests_allowed": false, "enforce_sso": true, "link_verified_email": false });
    let slug = tenant_with_policy(&gh, policy).await;
    let email = guest();
    let page = request_code(&gh, &browser(), &slug, &email).await;
    let attempt = page.assert_error_page(&[403]);
    assert!(page.body.contains("does not let guests sign in"), "{}", page.describe());
    let failed = gh.assert_login_failed(&slug, "guests_disabled", Some(&attempt)).await;
    assert_eq!(failed["email"], json!(email), "{failed:#}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(smtp.mails_to(&email).is_empty());
}

async fn policy_is_checked_again_when_the_code_is_used(store: Store) {
    let smtp = SmtpServer::shared().await;
    let gh = start(store, smtp, &[]).await;
    let slug = tenant_with_policy(&gh, email_code_policy()).await;
    let policy_url = format!("/api/v1/tenants/{slug}/login-policy");
    let (first, second) = (guest(), guest());
    let (browser1, browser2) = (browser(), browser());
    request_code_ok(&gh, &browser1, &slug, &first).await;
    request_code_ok(&gh, &browser2, &slug, &second).await;
    let code = smtp.mail_to(&first).await.code();
    let token = token_of(&smtp.mail_to(&second).await.link());

    // Guests switched off after the mail went out: the code no longer signs in.
    let guests_off = json!({ "standard_methods": ["email_code"], "guests_allowed": false, "enforce_sso": true, "link_verified_email": false });
    gh.admin_put(&policy_url, &guests_off)
        .await
        .assert_status(200);
    let page = enter_code(&gh, &browser1, &slug, &code).await;
    let attempt = page.assert_error_page(&[403]);
    page.assert_no_session_cookie();
    gh.assert_login_failed(&slug, "guests_disabled", Some(&attempt))
        .await;

    // The method switched off: the link no longer signs in either.
    let method_off = json!({ "standard_methods": [], "guests_allowed": true, "enforce_sso": true, "link_verified_email": false });
    gh.admin_put(&policy_url, &method_off)
        .await
        .assert_status(200);
    let page = post(&gh, &browser2, &format!("/{slug}/email-code/link"), &[("token", &token)]).await;
    let attempt2 = page.assert_error_page(&[403]);
    page.assert_no_session_cookie();
    gh.assert_login_failed(&slug, "method_disabled", Some(&attempt2))
        .await;

    // Switched back on, the refused code stays used up.
    gh.admin_put(&policy_url, &email_code_policy())
        .await
        .assert_status(200);
    let page = enter_code(&gh, &browser1, &slug, &code).await;
    page.assert_no_session_cookie();
    assert!(page.status.as_u16() >= 400, "{}", page.describe());
}

async fn disabled_method_is_refused(store: Store) {
    let smtp = SmtpServer::shared().await;
    let gh = start(store, smtp, &[]).await;
    let policy = json!({ "standard_methods": [], "guests_allowed": true, "enforce_sso": true, "link_verified_email": false });
    let slug = tenant_with_policy(&gh, policy).await;
    let email = guest();
    // The page offers no form, and a forged post is refused and recorded.
    let page = get(&browser(), &gh.url(&format!("/{slug}?login=standard"))).await;
    assert_page(&page, 200, "not enabled");
    assert!(!page.body.contains("<form"), "{}", page.describe());
    let page = request_code(&gh, &browser(), &slug, &email).await;
    let attempt = page.assert_error_page(&[403]);
    gh.assert_login_failed(&slug, "method_disabled", Some(&attempt)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(smtp.mails_to(&email).is_empty());

    // A deployment without the method refuses to enable it for a tenant.
    let off = Gatehouse::start_with(
        store,
        Options {
            env: vec![("GATEHOUSE_EMAIL_CODE".into(), "false".into())],
            ..Options::default()
        },
    )
    .await;
    let slug = unique("e-");
    off.create_tenant(&slug, "Off", &app_url(&slug)).await;
    off.admin_put(&format!("/api/v1/tenants/{slug}/login-policy"), &email_code_policy())
        .await
        .assert_problem(422, Some("/standard_methods/0"));
}

async fn outbox_without_smtp_writes_the_mail(store: Store) {
    // No SMTP settings at all: the zero-setup default.
    let gh = Gatehouse::start(store).await;
    let outbox = gh.data_dir.path().join("outbox");
    assert!(
        gh.log_text().contains(&outbox.display().to_string()),
        "the log should name the outbox folder {}:\n{}",
        outbox.display(),
        gh.log_text()
    );
    let slug = tenant_with_policy(&gh, email_code_policy()).await;
    let email = guest();
    let browser = browser();
    request_code_ok(&gh, &browser, &slug, &email).await;

    let files: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap_or_else(|e| panic!("read {}: {e}", outbox.display()))
        .filter_map(Result::ok)
        .filter(|f| f.path().extension().is_some_and(|x| x == "eml"))
        .collect();
    assert_eq!(files.len(), 1, "one .eml file in {}", outbox.display());
    let raw = std::fs::read_to_string(files[0].path()).expect("read the .eml file");
    assert!(raw.contains(&format!("To: {email}")), "{raw}");
    // The body may be quoted-printable: undo its soft line breaks and `=3D` before reading.
    let text = raw.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    let code = text
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in the outbox mail:\n{raw}"))
        .to_owned();
    assert!(link_in(&text).contains(&format!("/{slug}/email-code/link?token=")), "{text}");
    assert!(!gh.log_text().contains(&code), "the code is in the log");
    let page = enter_code(&gh, &browser, &slug, &code).await;
    assert_signed_in(&gh, &browser, &page, &slug, &email).await;
    let sent = gh.audit(&slug, &[("type", "login.code_sent")]).await;
    assert_eq!(sent[0]["outcome"]["detail"], json!("delivered to outbox"), "{sent:#?}");
}

async fn answer_is_the_same_for_known_and_unknown_addresses(store: Store) {
    let smtp = SmtpServer::shared().await;
    let gh = start(store, smtp, &[]).await;
    let slug = tenant_with_policy(&gh, email_code_policy()).await;
    // One address has an account, the other never signed in.
    let known = format!("{}@guests.example", unique("known"));
    let browser1 = browser();
    request_code_ok(&gh, &browser1, &slug, &known).await;
    let code = smtp.mail_to(&known).await.code();
    let page = enter_code(&gh, &browser1, &slug, &code).await;
    page.assert_redirect();
    let unknown = format!("{}@guests.example", unique("known"));
    assert_eq!(known.len(), unknown.len());

    let a = request_code(&gh, &browser(), &slug, &known).await;
    let b = request_code(&gh, &browser(), &slug, &unknown).await;
    assert_eq!(a.status, b.status);
    assert_eq!(a.body.replace(&known, "ADDRESS"), b.body.replace(&unknown, "ADDRESS"));
    let names = |p: &Page| -> Vec<String> {
        let mut names: Vec<String> = p.headers.keys().map(|k| k.to_string()).filter(|k| k != "x-request-id" && k != "date").collect();
        names.sort();
        names
    };
    assert_eq!(names(&a), names(&b));
    // Both get a message.
    smtp.nth_mail_to(&known, 2).await;
    smtp.mail_to(&unknown).await;
}

async fn cross_origin_posts_are_refused(store: Store) {
    let smtp = SmtpServer::shared().await;
    let gh = start(store, smtp, &[]).await;
    let slug = tenant_with_policy(&gh, email_code_policy()).await;
    let email = guest();
    let url = gh.url(&format!("/{slug}/email-code"));
    let response = browser()
        .post(&url)
        .header("Origin", "https://evil.example")
        .form(&[("email", email.as_str())])
        .send()
        .await
        .expect("POST");
    assert_page(&Page::read(&url, response).await, 403, "from the page of this service");
    let response = browser()
        .post(&url)
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[("email", email.as_str())])
        .send()
        .await
        .expect("POST");
    assert_page(&Page::read(&url, response).await, 403, "from the page of this service");
    // Not a form, too large, or an unusable address: plain pages, nothing sent.
    let response = browser()
        .post(&url)
        .header("Origin", &gh.url)
        .json(&json!({ "email": email }))
        .send()
        .await
        .expect("POST");
    assert_page(&Page::read(&url, response).await, 400, "Expected a form post");
    let huge = "a".repeat(20_000);
    let page = post(&gh, &browser(), &format!("/{slug}/email-code"), &[("email", huge.as_str())]).await;
    assert_page(&page, 413, "too large");
    let page = request_code(&gh, &browser(), &slug, "not-an-address").await;
    assert_page(&page, 400, "not valid");
    let page = request_code(&gh, &browser(), &slug, "a@b.example\r\nBcc: victim@example.test").await;
    assert_page(&page, 400, "not valid");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(smtp.mails_to(&email).is_empty());
    assert!(smtp.mails_to("victim@example.test").is_empty());
}

async fn no_code_or_link_in_logs_or_events(store: Store) {
    let smtp = SmtpServer::shared().await;
    let gh = start(store, smtp, &[("RUST_LOG", "debug")]).await;
    let slug = tenant_with_policy(&gh, email_code_policy()).await;

    // One sign-in by code (after a wrong code), one by link.
    let email = guest();
    let browser1 = browser();
    let handle1 = request_code_ok(&gh, &browser1, &slug, &email).await;
    let mail1 = smtp.mail_to(&email).await;
    let wrong = if mail1.code() == "123456" { "654321" } else { "123456" };
    enter_code(&gh, &browser1, &slug, wrong).await.assert_status(400);
    enter_code(&gh, &browser1, &slug, &mail1.code()).await.assert_redirect();
    let browser2 = browser();
    let handle2 = request_code_ok(&gh, &browser2, &slug, &email).await;
    let mail2 = smtp.nth_mail_to(&email, 2).await;
    let token2 = token_of(&mail2.link());
    get(&browser2, &mail2.link()).await.assert_status(200);
    post(&gh, &browser2, &format!("/{slug}/email-code/link"), &[("token", &token2)])
        .await
        .assert_redirect();
    gh.audit_until(&slug, &[("type", "login.succeeded")], "two sign-ins", |e| e.len() == 2).await;

    let log = gh.log_text();
    let database = gh.dump_database();
    let events = serde_json::to_string(&gh.audit(&slug, &[]).await).expect("events");
    let secrets = [
        ("code 1", mail1.code()),
        ("code 2", mail2.code()),
        ("link token 1", token_of(&mail1.link())),
        ("link token 2", token2),
        ("browser handle 1", handle1),
        ("browser handle 2", handle2),
    ];
    for (what, secret) in &secrets {
        for (place, text) in [("the log", &log), ("the database", &database), ("the audit events", &events)] {
            assert!(
                !contains_token(text, secret),
                "{what} ({secret}) appears in {place}"
            );
        }
    }
    assert!(!log.contains("email-code/link?token"), "a link appears in the log");
    assert!(!database.contains("email-code/link?token"), "a link appears in the database");
}

async fn parallel_guesses_share_five_tries(store: Store) {
    let smtp = SmtpServer::shared().await;
    let gh = start(store, smtp, &[]).await;
    let slug = tenant_with_policy(&gh, email_code_policy()).await;
    let email = guest();
    let handle = request_code_ok(&gh, &browser(), &slug, &email).await;
    let code = smtp.mail_to(&email).await.code();
    let wrong = if code == "111111" { "222222" } else { "111111" };

    // Twelve wrong guesses at once, from one browser handle: the database hands out five tries.
    let attacker = client_with_cookie(&handle);
    let guesses = (0..12).map(|_| enter_code(&gh, &attacker, &slug, wrong));
    let pages = futures_util::future::join_all(guesses).await;
    let statuses: Vec<u16> = pages.iter().map(|p| p.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 400).count(), 4, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 403).count(), 8, "{statuses:?}");
    enter_code(&gh, &attacker, &slug, &code).await.assert_error_page(&[403]);

    gh.assert_login_failed(&slug, "code_locked", None).await;
    assert_eq!(gh.audit(&slug, &[("type", "login.code_wrong")]).await.len(), 5);
    assert_eq!(gh.audit(&slug, &[("type", "login.failed")]).await.len(), 1);
    assert!(gh.audit(&slug, &[("type", "login.succeeded")]).await.is_empty());
}

async fn audit_survives_a_projection_rebuild(store: Store) {
    let smtp = SmtpServer::shared().await;
    let gh = start(store, smtp, &[]).await;
    let slug = tenant_with_policy(&gh, email_code_policy()).await;
    let email = guest();
    let browser = browser();
    request_code_ok(&gh, &browser, &slug, &email).await;
    let code = smtp.mail_to(&email).await.code();
    let wrong = if code == "111111" { "222222" } else { "111111" };
    enter_code(&gh, &browser, &slug, wrong).await.assert_status(400);
    enter_code(&gh, &browser, &slug, &code).await.assert_redirect();
    let before = gh
        .audit_until(&slug, &[], "the sign-in", |e| !of_type(e, "session.started").is_empty())
        .await;

    gh.run(&["projections", "rebuild"]).assert_success();
    let after = gh.audit(&slug, &[]).await;
    let without_id = |events: &[Value]| -> Vec<Value> {
        events
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e.as_object_mut().map(|m| m.remove("id"));
                e
            })
            .collect()
    };
    assert_eq!(without_id(&before), without_id(&after));
    for kind in ["tenant.login_policy.changed", "login.code_requested", "login.code_sent", "login.code_wrong"] {
        assert_eq!(of_type(&after, kind).len(), 1, "{kind} after the rebuild: {after:#?}");
    }
}

/// Two nodes on one Postgres database share the codes and the rate limits: nothing is counted
/// in a process.
#[tokio::test]
async fn postgres_nodes_share_codes_and_limits() {
    let smtp = SmtpServer::shared().await;
    let a = start(Store::Postgres, smtp, &[("GATEHOUSE_EMAIL_CODE_MAX_PER_EMAIL", "2")]).await;
    let b = a.another_node(&[]).await;
    let slug = tenant_with_policy(&a, email_code_policy()).await;
    let email = guest();

    // Asked on node A, entered on node B.
    let browser = browser();
    request_code_ok(&a, &browser, &slug, &email).await;
    let code = smtp.mail_to(&email).await.code();
    let url = b.url(&format!("/{slug}/email-code/verify"));
    let response = browser
        .post(&url)
        .header("Origin", &a.url)
        .form(&[("code", code.as_str())])
        .send()
        .await
        .expect("POST");
    let page = Page::read(&url, response).await;
    assert_eq!(page.assert_redirect(), app_url(&slug), "{}", page.describe());

    // One more on node B is the second for this address; the third, on node A, is refused.
    let url = b.url(&format!("/{slug}/email-code"));
    let response = common::browser()
        .post(&url)
        .header("Origin", &a.url)
        .form(&[("email", email.as_str())])
        .send()
        .await
        .expect("POST");
    Page::read(&url, response).await.assert_status(200);
    request_code(&a, &common::browser(), &slug, &email)
        .await
        .assert_error_page(&[429]);
}

/// True when `needle` occurs in `text` as a whole token (not inside a longer run of letters or
/// digits, such as a timestamp that happens to contain the six digits of a code).
fn contains_token(text: &str, needle: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices(needle).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + needle.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}
