//! A real plain OAuth 2.0 provider for the black-box tests: `oauth2-mock-server` (npm, pinned
//! in tests/oauth2-idp/package.json) started once per test binary by
//! tests/oauth2-idp/oauth2-idp.mjs, with Facebook's endpoint paths (`/dialog/oauth`,
//! `/oauth/access_token`, `/me`) and no login page.
//!
//! Who signs in is chosen per authorization request: [`OAuth2Idp::sign_in`] adds a
//! `login_hint` to the authorization URL Gatehouse redirected to, and the provider answers
//! `/me` with the profile set for that hint ([`OAuth2Idp::set_profile`]). Logins of concurrent
//! tests therefore never see each other's profiles.
//!
//! Needs `node`/`npm` (the first use runs `npm ci` in tests/oauth2-idp under a file lock).

use std::path::PathBuf;
use std::process::{Child, ChildStdin};

use serde_json::{json, Value};
use tokio::sync::OnceCell;

use super::{
    client, get, npm_ci_once, repo_root, returns_to, start_node_fixture, unique, with_query_param,
    Gatehouse, Page, Tenant,
};

/// The test OAuth 2.0 provider, one per test binary.
#[derive(Debug)]
pub struct OAuth2Idp {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    pub port: u16,
    pub log: PathBuf,
}

struct OAuth2IdpProcess {
    idp: OAuth2Idp,
    _child: Child,
    // Never dropped: the provider exits when the test binary exits and this pipe closes.
    _stdin: ChildStdin,
}

static OAUTH2_IDP: OnceCell<OAuth2IdpProcess> = OnceCell::const_new();

impl OAuth2Idp {
    /// Starts the provider on first use (installing its npm packages if needed).
    pub async fn shared() -> &'static OAuth2Idp {
        let process = OAUTH2_IDP
            .get_or_init(|| async {
                tokio::task::spawn_blocking(start)
                    .await
                    .expect("OAuth 2.0 provider start-up thread panicked")
            })
            .await;
        &process.idp
    }

    pub fn authorization_url(&self) -> String {
        format!("{}/dialog/oauth", self.base_url)
    }

    pub fn token_url(&self) -> String {
        format!("{}/oauth/access_token", self.base_url)
    }

    pub fn userinfo_url(&self) -> String {
        format!("{}/me", self.base_url)
    }

    /// Sets the `/me` document a login hint gets (replacing the default
    /// `{"id": "<login>-id", "name": "<login>", "email": "<login>@good.test"}` whole).
    pub async fn set_profile(&self, login: &str, profile: Value) {
        let url = format!("{}/test/accounts", self.base_url);
        let response = client()
            .post(&url)
            .json(&json!({ "login": login, "profile": profile }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        Page::read(&url, response)
            .await
            .assert_status(200);
    }

    /// A fresh login hint with this profile; returns the hint.
    pub async fn account(&self, profile: Value) -> String {
        let login = unique("fb-");
        self.set_profile(&login, profile).await;
        login
    }

    /// The token requests the provider has seen (`auth_method`, `client_id`,
    /// `code_verifier`: bool, `redirect_uri`), oldest first.
    pub async fn token_requests(&self) -> Vec<Value> {
        let page = get(&client(), &format!("{}/test/requests", self.base_url)).await;
        page.assert_status(200);
        page.json()["token_requests"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Follows Gatehouse's authorization URL as the person `login` (the provider approves at
    /// once) and returns the callback URL it sends the browser back to, without calling it.
    pub async fn sign_in(
        &self,
        browser: &reqwest::Client,
        gh: &Gatehouse,
        authorize_url: &str,
        login: &str,
    ) -> String {
        let url = with_query_param(authorize_url, "login_hint", Some(login));
        let page = get(browser, &url).await;
        let callback = page.assert_redirect();
        assert!(
            returns_to(&callback, &gh.url),
            "the provider should send the browser back to {}: {}",
            gh.url,
            page.describe()
        );
        callback
    }
}

/// `GET {gh}/{slug}?login=sso`: asserts the redirect to the provider's authorization endpoint
/// and the flow-binding cookie, and returns the authorization URL.
pub async fn start_oauth2_login(
    browser: &reqwest::Client,
    gh: &Gatehouse,
    slug: &str,
    idp: &OAuth2Idp,
) -> String {
    let page = get(browser, &gh.url(&format!("/{slug}?login=sso"))).await;
    page.assert_status(302);
    let authorize = page.location().expect("Location");
    assert!(
        authorize.starts_with(&format!("{}?", idp.authorization_url())),
        "?login=sso should redirect to {}: {}",
        idp.authorization_url(),
        page.describe()
    );
    assert!(
        page.set_cookie("gatehouse_flow")
            .is_some(),
        "?login=sso should set the gatehouse_flow cookie: {}",
        page.describe()
    );
    authorize
}

/// `?login=sso`, then the provider's approval as `login`; returns the callback URL without
/// calling it, so a test can tamper with it first.
pub async fn login_via_oauth2(
    browser: &reqwest::Client,
    gh: &Gatehouse,
    idp: &OAuth2Idp,
    slug: &str,
    login: &str,
) -> String {
    let authorize = start_oauth2_login(browser, gh, slug, idp).await;
    idp.sign_in(browser, gh, &authorize, login)
        .await
}

/// The connection config for the shared provider: Facebook's paths, a confidential client
/// (basic auth), allowed domain `good.test`, and `mapping` as given.
pub fn oauth2_config(idp: &OAuth2Idp, client_id: &str, mapping: Value) -> Value {
    json!({
        "authorization_url": idp.authorization_url(),
        "token_url": idp.token_url(),
        "userinfo_url": idp.userinfo_url(),
        "client_id": client_id,
        "client_secret": format!("secret-{client_id}"),
        "mapping": mapping,
        "allowed_domains": ["good.test"],
    })
}

/// The Facebook-like mapping: `/id`, `/email`, `/name`, emails verified by default.
pub fn facebook_mapping() -> Value {
    json!({ "subject": "/id", "email": "/email", "name": "/name", "email_verified_default": true })
}

impl Gatehouse {
    /// PUT an OAuth 2.0 connection and return the response whatever it is.
    pub async fn try_put_oauth2_connection(
        &self,
        slug: &str,
        id: &str,
        label: &str,
        config: Value,
    ) -> Page {
        self.admin_put(
            &format!("/api/v1/tenants/{slug}/connections/{id}"),
            &json!({ "protocol": "oauth2", "label": label, "config": config }),
        )
        .await
    }
}

/// Creates a tenant with a unique slug and one OAuth 2.0 connection (`acme-oauth`) to the
/// shared provider with this mapping; asserts the answer never echoes the secret.
pub async fn tenant_with_oauth2(gh: &Gatehouse, idp: &OAuth2Idp, mapping: Value) -> Tenant {
    let slug = unique("t-");
    let app_url = format!("https://app.{slug}.test/home");
    gh.create_tenant(&slug, &format!("Tenant {slug}"), &app_url)
        .await;
    let connection_id = "acme-oauth".to_string();
    let label = "Acme OAuth".to_string();
    let client_id = unique("client-");
    let config = oauth2_config(idp, &client_id, mapping);
    let secret = config["client_secret"]
        .as_str()
        .expect("secret")
        .to_string();
    let page = gh
        .try_put_oauth2_connection(&slug, &connection_id, &label, config)
        .await;
    page.assert_status(200);
    let connection = page.json();
    assert_eq!(
        connection["protocol"],
        json!("oauth2"),
        "{}",
        page.describe()
    );
    assert!(
        !page.body.contains(&secret),
        "the secret leaked: {}",
        page.describe()
    );
    assert_eq!(
        connection["config"]["client_secret_set"],
        json!(true),
        "{}",
        page.describe()
    );
    assert_eq!(
        connection["setup"]["redirect_url"],
        json!(gh.callback_url(&slug, &connection_id)),
        "{}",
        page.describe()
    );
    Tenant {
        slug,
        app_url,
        connection_id,
        label,
        client_id,
        client_secret: Some(secret),
    }
}

fn start() -> OAuth2IdpProcess {
    let dir = repo_root().join("tests/oauth2-idp");
    npm_ci_once(&dir, &["oauth2-mock-server"]);
    let fixture = start_node_fixture(
        &dir,
        "oauth2-idp.mjs",
        &["--port".as_ref(), "0".as_ref()],
        "base_url",
    );
    let (ready, log, child, stdin) = (fixture.ready, fixture.log, fixture.child, fixture.stdin);
    let base_url = ready["base_url"]
        .as_str()
        .expect("base_url in the ready line")
        .to_string();
    let port = ready["port"]
        .as_u64()
        .expect("port in the ready line") as u16;
    OAuth2IdpProcess {
        idp: OAuth2Idp {
            base_url,
            port,
            log,
        },
        _child: child,
        _stdin: stdin,
    }
}
