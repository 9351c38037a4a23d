//! Which account a sign-in lands on, and where an email leads, black box: home-realm
//! discovery between two SSO connections, accounts per tenant, linking by verified email only
//! when the tenant's policy says so, and the README's newcomer path (a guest through the
//! outbox, then a member through SSO, both in the audit API). Email codes go to the outbox
//! (no SMTP), SSO to the test OIDC provider (tests/idp). Every scenario runs on SQLite and on
//! Postgres in its own Gatehouse process.

#[macro_use]
mod common;

use std::path::Path;

use common::*;
use serde_json::{json, Value};

on_both_stores!(
    discovery_sends_each_domain_to_its_connection,
    guest_by_outbox_then_member_by_sso_at_the_same_url,
    guest_in_one_tenant_and_member_in_another,
    linking_off_keeps_one_account_per_method,
    linking_on_joins_verified_emails_only,
);

// ---------------------------------------------------------------------------------------------
// helpers local to these scenarios

fn app_url(slug: &str) -> String {
    format!("https://app.{slug}.test/home")
}

fn policy(methods: &[&str], enforce_sso: bool, link: bool) -> Value {
    json!({
        "standard_methods": methods,
        "guests_allowed": true,
        "enforce_sso": enforce_sso,
        "link_verified_email": link,
    })
}

async fn put_policy(gh: &Gatehouse, slug: &str, policy: &Value) {
    let page = gh
        .admin_put(&format!("/api/v1/tenants/{slug}/login-policy"), policy)
        .await;
    page.assert_status(200);
    assert_eq!(&page.json(), policy, "{}", page.describe());
}

/// A tenant with OIDC connections to the test provider, one per (id, allowed domain).
async fn tenant_with_connections(
    gh: &Gatehouse,
    idp: &Idp,
    connections: &[(&str, &str)],
) -> String {
    let slug = unique("l-");
    gh.create_tenant(&slug, &format!("Tenant {slug}"), &app_url(&slug))
        .await;
    for (id, domain) in connections {
        let (client_id, secret) = idp
            .register_client(&[gh.callback_url(&slug, id)], false)
            .await;
        let config = json!({
            "discovery_url": idp.discovery_url(),
            "client_id": client_id,
            "client_secret": secret,
            "allowed_domains": [domain],
            // SSO providers that do not vouch for emails (as SAML never does).
            "require_verified_email": false,
        });
        gh.put_oidc_connection(&slug, id, &format!("{id} sign-in"), config)
            .await;
    }
    slug
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

/// The newest code in the outbox folder for `email`.
fn code_from_outbox(outbox: &Path, email: &str) -> String {
    let mut mails: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(outbox)
        .unwrap_or_else(|e| panic!("read {}: {e}", outbox.display()))
        .filter_map(Result::ok)
        .filter(|f| {
            f.path()
                .extension()
                .is_some_and(|x| x == "eml")
        })
        .map(|f| {
            let time = f
                .metadata()
                .and_then(|m| m.modified())
                .expect("mtime");
            (time, std::fs::read_to_string(f.path()).expect("read .eml"))
        })
        .filter(|(_, raw)| raw.contains(&format!("To: {email}")))
        .collect();
    mails.sort();
    let (_, raw) = mails
        .pop()
        .unwrap_or_else(|| panic!("no mail to {email} in {}", outbox.display()));
    // The body may be quoted-printable: undo its soft line breaks before reading.
    let text = raw
        .replace("=\r\n", "")
        .replace("=\n", "");
    text.lines()
        .map(str::trim)
        .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in the mail:\n{raw}"))
        .to_owned()
}

/// A whole email-code sign-in through the outbox; returns the session.
async fn email_code_login(
    gh: &Gatehouse,
    browser: &reqwest::Client,
    slug: &str,
    email: &str,
) -> Value {
    let page = post(
        gh,
        browser,
        &format!("/{slug}/email-code"),
        &[("email", email)],
    )
    .await;
    page.assert_status(200);
    assert!(
        page.body.contains("Check your email"),
        "{}",
        page.describe()
    );
    let code = code_from_outbox(&gh.data_dir.path().join("outbox"), email);
    let page = post(
        gh,
        browser,
        &format!("/{slug}/email-code/verify"),
        &[("code", &code)],
    )
    .await;
    assert_eq!(page.assert_redirect(), app_url(slug), "{}", page.describe());
    let session = gh.assert_session(browser).await;
    assert_eq!(session["connection_id"], json!("email-code"), "{session:#}");
    assert_eq!(session["email"], json!(email), "{session:#}");
    session
}

/// A whole SSO sign-in at `connection` as the provider account `login`, starting from the
/// choice page's button; returns the session.
async fn sso_login(
    gh: &Gatehouse,
    idp: &Idp,
    browser: &reqwest::Client,
    slug: &str,
    connection: &str,
    login: &str,
) -> Value {
    let page = get(browser, &gh.url(&format!("/{slug}"))).await;
    page.assert_status(200);
    let href = format!("/{slug}/sso/{connection}/start");
    assert!(
        page.body
            .contains(&format!("href=\"{href}\"")),
        "{}",
        page.describe()
    );
    let page = get(browser, &gh.url(&href)).await;
    let authorize = page.assert_redirect();
    let callback = idp_sign_in(browser, gh, idp, &authorize, login).await;
    let page = get(browser, &callback).await;
    assert_eq!(page.assert_redirect(), app_url(slug), "{}", page.describe());
    let session = gh.assert_session(browser).await;
    assert_eq!(session["connection_id"], json!(connection), "{session:#}");
    session
}

/// A provider account with this email (and verification claim); returns its login id.
async fn account(idp: &Idp, email: &str, verified: bool) -> String {
    let login = unique("acct-");
    idp.set_account(
        &login,
        json!({ "sub": format!("{login}-sub"), "email": email, "email_verified": verified, "name": login }),
    )
    .await;
    login
}

// ---------------------------------------------------------------------------------------------
// scenarios

async fn discovery_sends_each_domain_to_its_connection(store: Store) {
    let gh = Gatehouse::start(store).await;
    let idp = Idp::shared().await;
    let slug = tenant_with_connections(
        &gh,
        idp,
        &[("north", "north.test"), ("south", "south.test")],
    )
    .await;
    put_policy(&gh, &slug, &policy(&["email_code"], true, false)).await;

    // Two connections: the choice page offers the email field besides the buttons.
    let page = get(&browser(), &gh.url(&format!("/{slug}"))).await;
    page.assert_status(200);
    assert!(
        page.body
            .contains(&format!("action=\"/{slug}/discover\"")),
        "{}",
        page.describe()
    );
    assert!(
        page.body
            .contains("Sign in with north sign-in"),
        "{}",
        page.describe()
    );
    assert!(
        page.body
            .contains("Sign in with Gatehouse"),
        "{}",
        page.describe()
    );

    // Each domain to its connection (case and a trailing dot do not matter); return_to travels.
    for (email, connection) in [("ann@north.test", "north"), ("Bo@SOUTH.test.", "south")] {
        let page = post(
            &gh,
            &browser(),
            &format!("/{slug}/discover"),
            &[("email", email), ("return_to", "/reports")],
        )
        .await;
        // A page that moves on (a redirect answering the post would break the browser's
        // form-action check on the way to the IdP).
        page.assert_status(200);
        assert_eq!(
            page.location().as_deref(),
            Some(
                gh.url(&format!(
                    "/{slug}/sso/{connection}/start?return_to=%2Freports"
                ))
                .as_str()
            ),
            "{}",
            page.describe()
        );
    }
    // And the whole way through for one of them.
    let login = account(idp, "cat@south.test", true).await;
    let browser = browser();
    let page = post(
        &gh,
        &browser,
        &format!("/{slug}/discover"),
        &[("email", "cat@south.test")],
    )
    .await;
    let start = page.assert_redirect();
    let authorize = get(&browser, &start)
        .await
        .assert_redirect();
    let callback = idp_sign_in(&browser, &gh, idp, &authorize, &login).await;
    assert!(
        callback.starts_with(&gh.callback_url(&slug, "south")),
        "{callback}"
    );
    let page = get(&browser, &callback).await;
    assert_eq!(
        page.assert_redirect(),
        app_url(&slug),
        "{}",
        page.describe()
    );

    // No connection takes the domain: a plain message, standard login offered, recorded.
    let page = post(
        &gh,
        &client(),
        &format!("/{slug}/discover"),
        &[("email", "dan@elsewhere.test")],
    )
    .await;
    page.assert_status(200);
    assert!(
        page.body
            .contains("No sign-in service of this organisation takes addresses at elsewhere.test"),
        "{}",
        page.describe()
    );
    assert!(
        page.body
            .contains("id=\"hrd-standard\""),
        "{}",
        page.describe()
    );
    page.assert_no_session_cookie();
    let events = gh
        .audit_until(
            &slug,
            &[("type", "login.failed")],
            "domain_not_found",
            |e| {
                e.iter()
                    .any(|e| e["outcome"]["reason"] == json!("domain_not_found"))
            },
        )
        .await;
    let event = events
        .iter()
        .find(|e| e["outcome"]["reason"] == json!("domain_not_found"))
        .expect("found above");
    assert_eq!(event["email"], json!("dan@elsewhere.test"), "{event:#}");

    // The answer is about domains only: a known member and an unknown one at the same domain
    // get the same redirect.
    let known = post(
        &gh,
        &client(),
        &format!("/{slug}/discover"),
        &[("email", "cat@south.test")],
    )
    .await;
    let unknown = post(
        &gh,
        &client(),
        &format!("/{slug}/discover"),
        &[("email", "zed@south.test")],
    )
    .await;
    assert_eq!(known.location(), unknown.location());

    // Hostile input: not an address, a cross-origin post, a duplicated field, no form.
    let page = post(
        &gh,
        &client(),
        &format!("/{slug}/discover"),
        &[("email", "not an address")],
    )
    .await;
    page.assert_status(400);
    assert!(page.body.contains("not valid"), "{}", page.describe());
    let url = gh.url(&format!("/{slug}/discover"));
    let response = client()
        .post(&url)
        .header("Origin", "https://evil.example")
        .form(&[("email", "ann@north.test")])
        .send()
        .await
        .expect("POST");
    Page::read(&url, response)
        .await
        .assert_status(403);
    let page = post(
        &gh,
        &client(),
        &format!("/{slug}/discover"),
        &[("email", "ann@north.test"), ("email", "x@south.test")],
    )
    .await;
    page.assert_status(400);
    let response = client()
        .post(&url)
        .header("Origin", &gh.url)
        .body("{}")
        .send()
        .await
        .expect("POST");
    Page::read(&url, response)
        .await
        .assert_status(400);
    let page = post(
        &gh,
        &client(),
        "/no-such-tenant/discover",
        &[("email", "ann@north.test")],
    )
    .await;
    page.assert_status(404);

    // Without standard login the message does not point there.
    put_policy(&gh, &slug, &policy(&[], true, false)).await;
    let page = post(
        &gh,
        &client(),
        &format!("/{slug}/discover"),
        &[("email", "dan@elsewhere.test")],
    )
    .await;
    page.assert_status(200);
    assert!(
        page.body.contains("No sign-in service"),
        "{}",
        page.describe()
    );
    assert!(!page.body.contains("hrd-standard"), "{}", page.describe());

    // A client that keeps typing unknown domains gets the same answer, but past 30 misses in
    // the window (2 so far) they are no longer recorded: the form cannot flood the audit log.
    for i in 0..35 {
        let email = format!("x{i}@unknown{i}.test");
        let page = post(&gh, &client(), &format!("/{slug}/discover"), &[("email", &email)]).await;
        page.assert_status(200);
        assert!(page.body.contains(&format!("takes addresses at unknown{i}.test")), "{}", page.describe());
    }
    let misses = gh
        .audit(&slug, &[("type", "login.failed")])
        .await
        .into_iter()
        .filter(|e| e["outcome"]["reason"] == json!("domain_not_found"))
        .count();
    assert_eq!(misses, 30, "recorded misses (a 15-minute window edge in the middle resets the count)");

    // One connection: no email field.
    let single = tenant_with_connections(&gh, idp, &[("only", "only.test")]).await;
    let page = get(&client(), &gh.url(&format!("/{single}"))).await;
    assert!(!page.body.contains("/discover"), "{}", page.describe());
}

async fn guest_by_outbox_then_member_by_sso_at_the_same_url(store: Store) {
    // The README's newcomer path: no SMTP server, the email code on, then SSO.
    let gh = Gatehouse::start(store).await;
    let idp = Idp::shared().await;
    let slug = tenant_with_connections(&gh, idp, &[("okta", "good.test")]).await;
    put_policy(&gh, &slug, &policy(&["email_code"], true, false)).await;

    let guest = format!("{}@guests.example", unique("guest"));
    let browser = browser();
    let page = get(&browser, &gh.url(&format!("/{slug}"))).await;
    assert!(
        page.body
            .contains(&format!("href=\"/{slug}?login=standard\"")),
        "{}",
        page.describe()
    );
    let as_guest = email_code_login(&gh, &browser, &slug, &guest).await;
    gh.logout(&browser, &slug).await;

    let member = format!("{}@good.test", unique("member"));
    let login = account(idp, &member, true).await;
    let as_member = sso_login(&gh, idp, &browser, &slug, "okta", &login).await;
    assert_eq!(as_member["email"], json!(member));
    assert_ne!(as_guest["user_id"], as_member["user_id"]);

    let events = gh
        .audit_until(
            &slug,
            &[("type", "login.succeeded")],
            "both sign-ins",
            |e| e.len() == 2,
        )
        .await;
    let seen: Vec<(Value, Value, Value)> = events
        .iter()
        .map(|e| {
            (
                e["protocol"].clone(),
                e["email"].clone(),
                e["user_id"].clone(),
            )
        })
        .collect();
    let guest_seen = (
        json!("email_code"),
        json!(guest),
        as_guest["user_id"].clone(),
    );
    let member_seen = (json!("oidc"), json!(member), as_member["user_id"].clone());
    assert!(seen.contains(&guest_seen), "{events:#?}");
    assert!(seen.contains(&member_seen), "{events:#?}");
    // Filtered by address, each person's own steps.
    let mine = gh
        .audit(&slug, &[("email", guest.as_str())])
        .await;
    assert!(
        mine.iter()
            .any(|e| e["type"] == json!("login.code_sent")),
        "{mine:#?}"
    );
}

async fn guest_in_one_tenant_and_member_in_another(store: Store) {
    let gh = Gatehouse::start(store).await;
    let idp = Idp::shared().await;
    // Tenant A has no SSO for good.test: its people are guests there. Tenant B's SSO owns it.
    let a = tenant_with_connections(&gh, idp, &[]).await;
    let b = tenant_with_connections(&gh, idp, &[("okta", "good.test")]).await;
    for slug in [&a, &b] {
        put_policy(&gh, slug, &policy(&["email_code"], true, true)).await;
    }
    let person = format!("{}@good.test", unique("both"));

    let browser = browser();
    let in_a = email_code_login(&gh, &browser, &a, &person).await;
    assert_eq!(in_a["tenant"], json!(a));
    // At B the same address is a member's: no email code, SSO instead.
    let page = post(
        &gh,
        &browser,
        &format!("/{b}/email-code"),
        &[("email", &person)],
    )
    .await;
    page.assert_status(403);
    assert!(
        page.body
            .contains(&format!("/{b}/sso/okta/start")),
        "{}",
        page.describe()
    );
    let login = account(idp, &person, true).await;
    let in_b = sso_login(&gh, idp, &browser, &b, "okta", &login).await;
    assert_eq!(in_b["tenant"], json!(b));
    // Two accounts, one per tenant, even with linking on in both.
    assert_ne!(in_a["user_id"], in_b["user_id"]);
    assert_eq!(
        gh.audit(&a, &[("type", "user.provisioned")])
            .await
            .len(),
        1
    );
    assert_eq!(
        gh.audit(&b, &[("type", "user.provisioned")])
            .await
            .len(),
        1
    );
}

async fn linking_off_keeps_one_account_per_method(store: Store) {
    let gh = Gatehouse::start(store).await;
    let idp = Idp::shared().await;
    let slug = tenant_with_connections(&gh, idp, &[("okta", "good.test")]).await;
    // Not enforcing SSO, so a member address may also use the email code.
    put_policy(&gh, &slug, &policy(&["email_code"], false, false)).await;
    let person = format!("{}@good.test", unique("off"));

    let by_code = email_code_login(&gh, &browser(), &slug, &person).await;
    let login = account(idp, &person, true).await;
    let by_sso = sso_login(&gh, idp, &browser(), &slug, "okta", &login).await;
    assert_ne!(
        by_code["user_id"], by_sso["user_id"],
        "linking is off: two accounts"
    );
    assert_eq!(
        gh.audit(&slug, &[("type", "user.provisioned")])
            .await
            .len(),
        2
    );

    // Switching linking on later does not move an identity that already has its account.
    put_policy(&gh, &slug, &policy(&["email_code"], false, true)).await;
    let again = sso_login(&gh, idp, &browser(), &slug, "okta", &login).await;
    assert_eq!(again["user_id"], by_sso["user_id"]);
    // But a new method's identity now joins the account that first proved the address: the
    // email code's.
    let other = account(idp, &person, true).await;
    let joined = sso_login(&gh, idp, &browser(), &slug, "okta", &other).await;
    assert_eq!(joined["user_id"], by_code["user_id"]);
}

async fn linking_on_joins_verified_emails_only(store: Store) {
    let gh = Gatehouse::start(store).await;
    let idp = Idp::shared().await;
    let slug = tenant_with_connections(&gh, idp, &[("okta", "good.test")]).await;
    put_policy(&gh, &slug, &policy(&["email_code"], false, true)).await;
    let person = format!("{}@good.test", unique("on"));

    // Email code first (the code proves the mailbox), then SSO with the address verified.
    let by_code = email_code_login(&gh, &browser(), &slug, &person).await;
    let verified = account(idp, &person, true).await;
    let by_sso = sso_login(&gh, idp, &browser(), &slug, "okta", &verified).await;
    assert_eq!(
        by_code["user_id"], by_sso["user_id"],
        "linked by the verified address"
    );

    // An SSO account that does not vouch for the address (this connection lets unverified
    // addresses sign in) never joins it, whatever it claims.
    let unverified = account(idp, &person, false).await;
    let separate = sso_login(&gh, idp, &browser(), &slug, "okta", &unverified).await;
    assert_ne!(
        separate["user_id"], by_code["user_id"],
        "an unverified address never links"
    );

    // Case does not make another address: Person@ and person@ are one.
    let upper = account(
        idp,
        &person
            .to_uppercase()
            .replace("GOOD.TEST", "good.test"),
        true,
    )
    .await;
    let by_upper = sso_login(&gh, idp, &browser(), &slug, "okta", &upper).await;
    assert_eq!(by_upper["user_id"], by_code["user_id"]);
    assert_eq!(
        gh.audit(&slug, &[("type", "user.provisioned")])
            .await
            .len(),
        2
    );
}
