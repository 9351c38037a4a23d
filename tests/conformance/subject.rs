//! What the cases need from a protocol plugin under test: a [`Subject`] configures a tenant
//! connection to its real IdP (or to a [`FaultProxy`] in front of it) and drives that IdP from
//! Gatehouse's redirect until the IdP sends the browser back, handing over that [`Callback`]
//! undelivered. Everything else — what to deliver, in which browser, and what must come of
//! it — is the cases' business, the same for every plugin.

use serde_json::{json, Value};

use crate::common::saml::{post_to_acs, AcsOutcome};
use crate::common::{get, Gatehouse, Page};
use crate::proxy::{FaultProxy, Malformed};

/// A tenant with one connection of the subject's protocol.
#[derive(Debug, Clone)]
pub struct Connection {
    pub slug: String,
    pub app_url: String,
    pub connection_id: String,
    /// The IdP's origin as this connection reaches it (the proxy's, when proxied).
    pub idp_url: String,
}

/// A fault proxy made by a subject: forwarding to its IdP, and knowing which path is the back
/// channel the plugin calls.
pub struct SubjectProxy {
    pub proxy: FaultProxy,
    /// The path the proxy sabotages (the plugin's back-channel request).
    pub back_channel_path: String,
    /// Whatever must live as long as the proxy (OIDC: an IdP whose issuer is the proxy).
    #[allow(dead_code)] // held, never read
    pub keep_alive: Option<Box<dyn std::any::Any + Send + Sync>>,
}

/// How far a login got before the callback.
pub enum Started {
    /// The IdP answered; this is what it sends the browser back with, not yet delivered.
    Callback(SignedIn),
    /// Gatehouse refused to start the login (`?login=sso` answered this page).
    Refused(Page),
}

impl Started {
    pub fn expect_callback(self, what: &str) -> SignedIn {
        match self {
            Started::Callback(signed) => signed,
            Started::Refused(page) => {
                panic!(
                    "[{what}] the login did not reach the IdP: {}",
                    page.describe()
                )
            }
        }
    }
}

/// The IdP's answer for one person.
pub struct SignedIn {
    pub callback: Callback,
    /// The email the IdP asserts.
    pub email: String,
}

/// What the cases expect of a subject where plugins legitimately differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    SignsIn,
    Refused { reason: &'static str, status: u16 },
}

pub const fn refused(reason: &'static str, status: u16) -> Expect {
    Expect::Refused { reason, status }
}

/// The hostile situations whose outcome depends on the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Situation {
    /// Login B's IdP answer delivered with login A's state in A's browser.
    ForeignAnswer,
    /// An answer already used once, delivered with a fresh login's state.
    ReplayedAnswer,
    /// The answer parameter blown up to just under the route's size limit.
    OversizedAnswer,
    /// The back channel answers after the host's outbound time limit.
    SlowUpstream,
    /// The back channel answers 200 with something malformed.
    Malformed(Malformed),
}

/// One protocol plugin under test, with its real IdP.
#[allow(async_fn_in_trait)]
pub trait Subject: Sized {
    /// The protocol id (connection `protocol`, audit `protocol`).
    const PROTOCOL: &'static str;
    /// The callback parameter that carries the IdP's answer.
    const ANSWER_PARAM: &'static str;
    /// What the fault proxy sabotages, for the report.
    const BACK_CHANNEL: &'static str;

    /// The subject with its IdP running (one IdP per test binary where possible).
    async fn shared() -> Self;

    /// A new tenant with one connection to the IdP, straight or through `via`.
    async fn tenant(&self, gh: &Gatehouse, via: Option<&SubjectProxy>) -> Connection;

    /// A fault proxy in front of this subject's IdP, forwarding everything for now.
    async fn proxy(&self) -> SubjectProxy;

    /// Starts a login at `connection` in `browser` and signs in at the IdP as person
    /// `person` (0, 1, 2: different people where the IdP has several), returning the answer
    /// the IdP sends the browser back with. Use a fresh browser per login: IdP sessions live
    /// in its cookies.
    async fn sign_in(
        &self,
        gh: &Gatehouse,
        connection: &Connection,
        browser: &reqwest::Client,
        person: usize,
    ) -> Started;

    /// The outcome this protocol must give in `situation`.
    fn expect(&self, situation: Situation) -> Expect;

    /// Extra environment for `gatehouse serve`: a plugin built outside this workspace sets
    /// `GATEHOUSE_PLUGIN_DIR` to a directory holding its library.
    fn gatehouse_env(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

// ---------------------------------------------------------------------------------------------
// Callbacks

/// The browser's way back to Gatehouse, as the IdP sent it.
#[derive(Debug, Clone)]
pub enum Callback {
    /// A redirect to `/callback` (OIDC, OAuth 2.0, CAS): everything is in the query.
    Query { url: String },
    /// An auto-posted form to `/acs` (SAML HTTP-POST): `SAMLResponse` and `RelayState`.
    FormPost {
        url: String,
        fields: Vec<(String, String)>,
    },
}

/// What delivering a callback gave: every answer in order (a form post's 303 to the ACS
/// follow-up, then the follow-up's).
#[derive(Debug)]
pub struct Delivery {
    pub pages: Vec<Page>,
}

impl Delivery {
    pub fn last(&self) -> &Page {
        self.pages
            .last()
            .expect("a delivery has at least one answer")
    }

    pub fn describe(&self) -> String {
        self.pages
            .iter()
            .map(Page::describe)
            .collect::<Vec<_>>()
            .join("\nthen: ")
    }
}

impl Callback {
    fn state_name(&self) -> &'static str {
        match self {
            Callback::Query { .. } => "state",
            Callback::FormPost { .. } => "RelayState",
        }
    }

    pub fn param(&self, name: &str) -> Option<String> {
        match self {
            Callback::Query { url } => crate::common::query_param(url, name),
            Callback::FormPost { fields, .. } => fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone()),
        }
    }

    /// The state Gatehouse issued for this login (`state`, or `RelayState` for SAML).
    pub fn state(&self) -> String {
        self.param(self.state_name())
            .unwrap_or_else(|| panic!("a callback without {}: {self:?}", self.state_name()))
    }

    /// The same callback carrying another login's state.
    pub fn with_state(&self, state: &str) -> Callback {
        self.with_param(self.state_name(), state)
    }

    /// The same callback with `name` set to `value` (added when absent).
    pub fn with_param(&self, name: &str, value: &str) -> Callback {
        match self {
            Callback::Query { url } => Callback::Query {
                url: crate::common::with_query_param(url, name, Some(value)),
            },
            Callback::FormPost { url, fields } => {
                let mut fields = fields.clone();
                match fields
                    .iter_mut()
                    .find(|(k, _)| k == name)
                {
                    Some(field) => field.1 = value.to_string(),
                    None => fields.push((name.to_string(), value.to_string())),
                }
                Callback::FormPost {
                    url: url.clone(),
                    fields,
                }
            }
        }
    }

    /// Delivers the callback in `browser` as the browser would (GET, or POST and follow the
    /// ACS's 303 to its same-site follow-up).
    pub async fn deliver(&self, browser: &reqwest::Client) -> Delivery {
        match self {
            Callback::Query { url } => Delivery {
                pages: vec![get(browser, url).await],
            },
            Callback::FormPost { url, fields } => {
                let form: Vec<(&str, &str)> = fields
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let AcsOutcome { post, continued } = post_to_acs(browser, url, &form).await;
                let mut pages = vec![post];
                pages.extend(continued);
                Delivery { pages }
            }
        }
    }

    /// [`Callback::deliver`] that reports a transport failure (no HTTP answer at all) instead
    /// of panicking.
    pub async fn try_deliver(&self, browser: &reqwest::Client) -> Result<Delivery, String> {
        let (url, response) = match self {
            Callback::Query { url } => (url, browser.get(url).send().await),
            Callback::FormPost { url, fields } => (
                url,
                browser
                    .post(url)
                    .form(fields)
                    .send()
                    .await,
            ),
        };
        match response {
            Ok(response) => {
                let first = Page::read(url, response).await;
                if matches!(self, Callback::FormPost { .. }) && first.status.as_u16() == 303 {
                    // A form that got through: finish the exchange like `deliver`.
                    let next = first
                        .location()
                        .expect("a 303 with a Location");
                    let second = get(browser, &next).await;
                    return Ok(Delivery {
                        pages: vec![first, second],
                    });
                }
                Ok(Delivery { pages: vec![first] })
            }
            // Without the URL: it is the enormous part.
            Err(e) => Err(format!("no HTTP answer: {}", e.without_url())),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the subjects

/// A tenant with a unique slug (no connection yet).
pub async fn new_tenant(gh: &Gatehouse) -> (String, String) {
    let slug = crate::common::unique("c-");
    let app_url = format!("https://app.{slug}.test/home");
    gh.create_tenant(&slug, &format!("Conformance {slug}"), &app_url)
        .await;
    (slug, app_url)
}

/// PUT a connection, asserting 200 and the protocol.
pub async fn put_connection(
    gh: &Gatehouse,
    slug: &str,
    id: &str,
    protocol: &str,
    config: Value,
) -> Value {
    let body = json!({
        "protocol": protocol,
        "label": format!("{protocol} under test"),
        "config": config,
    });
    let page = gh
        .admin_put(&format!("/api/v1/tenants/{slug}/connections/{id}"), &body)
        .await;
    page.assert_status(200);
    let connection = page.json();
    assert_eq!(
        connection["protocol"],
        json!(protocol),
        "{}",
        page.describe()
    );
    connection
}

/// `GET /{slug}?login=sso`: the IdP URL Gatehouse redirects to (with the flow cookie set), or
/// the page it answered instead.
pub async fn start_login(
    browser: &reqwest::Client,
    gh: &Gatehouse,
    connection: &Connection,
) -> Result<String, Page> {
    let page = get(browser, &gh.url(&format!("/{}?login=sso", connection.slug))).await;
    if page.status.as_u16() != 302 {
        return Err(page);
    }
    assert!(
        page.set_cookie("gatehouse_flow")
            .is_some(),
        "?login=sso should set the gatehouse_flow cookie: {}",
        page.describe()
    );
    Ok(page
        .location()
        .unwrap_or_else(|| panic!("a 302 without Location: {}", page.describe())))
}
