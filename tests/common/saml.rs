//! A real SAML 2.0 identity provider for the black-box tests: `saml-idp` (npm, pinned in
//! tests/saml-idp/package.json) started once per test binary by tests/saml-idp/saml-idp.mjs,
//! with a fresh self-signed RSA-2048 certificate made by the `openssl` CLI.
//!
//! saml-idp has ONE global audience (and ACS fallback, and "sign the Response" switch), set
//! over `POST /settings`. [`SamlIdp::sign_in`] sets them and signs under one process-wide
//! async mutex, so logins of concurrent tests never see each other's settings. The audience it
//! sets is the AuthnRequest's `<Issuer>` (what a real IdP would look up), unless
//! [`SignInOptions::audience`] says otherwise.
//!
//! Needs `node`/`npm` (the first use runs `npm ci` in tests/saml-idp under a file lock) and
//! `openssl`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tokio::sync::{Mutex, OnceCell};
use url::Url;

use super::{
    client, get, npm_ci_once, post_form, query_param, repo_root, start_node_fixture, Gatehouse,
    Page,
};

/// The emailAddress NameID format saml-idp uses by default.
pub const NAMEID_EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";

// ---------------------------------------------------------------------------------------------
// Certificates

/// A fresh self-signed RSA-2048 certificate and its key, both PEM (`openssl req -x509`).
#[derive(Debug, Clone)]
pub struct Certificate {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Makes a fresh self-signed certificate with this common name in `dir` (files
/// `<name>-cert.pem` and `<name>-key.pem`) and returns it with the two paths.
pub fn generate_certificate_in(
    dir: &Path,
    name: &str,
    common_name: &str,
) -> (Certificate, PathBuf, PathBuf) {
    let cert_path = dir.join(format!("{name}-cert.pem"));
    let key_path = dir.join(format!("{name}-key.pem"));
    let output = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
        ])
        .arg("-subj")
        .arg(format!("/CN={common_name}"))
        .arg("-keyout")
        .arg(&key_path)
        .arg("-out")
        .arg(&cert_path)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run openssl (needed for the SAML IdP's certificate): {e}"));
    assert!(
        output.status.success(),
        "openssl req -x509 failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let cert_pem = fs::read_to_string(&cert_path).expect("read the new certificate");
    let key_pem = fs::read_to_string(&key_path).expect("read the new key");
    (Certificate { cert_pem, key_pem }, cert_path, key_path)
}

/// A fresh self-signed certificate that nothing signs with (for rollover and wrong-key tests).
pub fn unrelated_certificate() -> Certificate {
    let dir = tempfile::Builder::new()
        .prefix("gatehouse-test-cert-")
        .tempdir()
        .expect("create a temporary dir");
    generate_certificate_in(dir.path(), "unrelated", "Unrelated test certificate").0
}

// ---------------------------------------------------------------------------------------------
// The IdP process

#[derive(Debug)]
pub struct SamlIdp {
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    pub port: u16,
    pub sso_url: String,
    pub entity_id: String,
    pub metadata_url: String,
    /// Its stderr (saml-idp logs every request and every response it signs).
    pub log: PathBuf,
    certificate: Certificate,
}

struct SamlIdpProcess {
    idp: SamlIdp,
    _child: Child,
    // Never dropped: the IdP exits when the test binary exits and this pipe closes.
    _stdin: ChildStdin,
    _dir: tempfile::TempDir,
}

static SAML_IDP: OnceCell<SamlIdpProcess> = OnceCell::const_new();
/// Serialises everything that touches saml-idp's global settings and its global user.
static SIGN_IN: Mutex<()> = Mutex::const_new(());

/// The profile the sign-in form posts (saml-idp signs whatever it is given).
#[derive(Debug, Clone)]
pub struct SamlProfile {
    pub name_id: String,
    pub name_id_format: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub display_name: String,
    pub groups: Vec<String>,
}

impl SamlProfile {
    /// NameID = email (emailAddress format), displayName = "first last", one group.
    pub fn new(email: &str, first_name: &str, last_name: &str) -> SamlProfile {
        SamlProfile {
            name_id: email.to_string(),
            name_id_format: NAMEID_EMAIL.to_string(),
            email: email.to_string(),
            first_name: first_name.to_string(),
            last_name: last_name.to_string(),
            display_name: format!("{first_name} {last_name}"),
            groups: vec!["Everyone".to_string()],
        }
    }

    pub fn name(&self) -> String {
        self.display_name.clone()
    }
}

/// Knobs of one sign-in; every one is set again at each sign-in (under the lock).
#[derive(Debug, Clone, Default)]
pub struct SignInOptions {
    /// The `<Audience>`; default: the AuthnRequest's `<Issuer>`.
    pub audience: Option<String>,
    /// Where to post when the AuthnRequest carries no AssertionConsumerServiceURL (saml-idp
    /// prefers the request's). Default: a URL that goes nowhere.
    pub acs_url_fallback: Option<String>,
    /// Sign only the Assertion (default: the Response and the Assertion).
    pub assertion_only: bool,
}

/// What saml-idp showed of the AuthnRequest it parsed.
#[derive(Debug, Clone, Default)]
pub struct AuthnRequestSeen {
    pub id: Option<String>,
    pub issuer: Option<String>,
    pub acs_url: Option<String>,
    pub destination: Option<String>,
    pub relay_state: Option<String>,
}

/// The IdP's auto-post page, read like a browser would: where it posts and what.
#[derive(Debug, Clone)]
pub struct SamlPost {
    pub acs_url: String,
    pub fields: Vec<(String, String)>,
    pub request: AuthnRequestSeen,
    /// The auto-post page itself.
    pub page: Page,
}

impl SamlPost {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn saml_response(&self) -> &str {
        self.field("SAMLResponse")
            .unwrap_or_else(|| {
                panic!(
                    "no SAMLResponse in the IdP's form: {}",
                    self.page.describe()
                )
            })
    }

    /// The RelayState field, None when absent or empty.
    pub fn relay_state(&self) -> Option<&str> {
        self.field("RelayState")
            .filter(|v| !v.is_empty())
    }

    /// The SAMLResponse, base64-decoded (the XML the IdP signed).
    pub fn response_xml(&self) -> String {
        decode_saml_response(self.saml_response())
    }

    /// The form fields as `&str` pairs for [`post_form`].
    pub fn form(&self) -> Vec<(&str, &str)> {
        self.fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

pub fn decode_saml_response(b64: &str) -> String {
    let compact: String = b64
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .unwrap_or_else(|e| panic!("SAMLResponse is not base64 ({e}): {b64}"));
    String::from_utf8(bytes).expect("SAMLResponse is UTF-8 XML")
}

pub fn encode_saml_response(xml: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(xml.as_bytes())
}

impl SamlIdp {
    /// Starts the IdP on first use in this test binary.
    pub async fn shared() -> &'static SamlIdp {
        let process = SAML_IDP
            .get_or_init(|| async {
                tokio::task::spawn_blocking(start_saml_idp)
                    .await
                    .expect("SAML IdP start-up thread panicked")
            })
            .await;
        &process.idp
    }

    pub fn certificate_pem(&self) -> &str {
        &self.certificate.cert_pem
    }

    pub fn entity_id(&self) -> &str {
        &self.entity_id
    }

    pub fn sso_url(&self) -> &str {
        &self.sso_url
    }

    /// GET its metadata (an `<EntityDescriptor>` with the signing certificate and the SSO
    /// endpoints, both bindings at `sso_url`).
    pub async fn metadata_xml(&self) -> String {
        let page = get(&client(), &self.metadata_url).await;
        page.assert_status(200);
        assert!(
            page.body.contains("EntityDescriptor"),
            "IdP metadata: {}",
            page.describe()
        );
        page.body
    }

    /// POST /settings (saml-idp answers 302 to /). Global: call with the lock held.
    async fn settings(&self, settings: &[(&str, &str)]) {
        let page = post_form(&client(), &format!("{}/settings", self.base_url), settings).await;
        assert!(
            matches!(page.status.as_u16(), 302 | 303),
            "saml-idp settings {settings:?}: {}",
            page.describe()
        );
    }

    /// Sets the global audience (held under the sign-in lock for the call only; a later
    /// [`SamlIdp::sign_in`] sets it again).
    pub async fn set_audience(&self, audience: &str) {
        let _guard = SIGN_IN.lock().await;
        self.settings(&[("audience", audience)])
            .await;
    }

    /// [`SamlIdp::sign_in_with`] with default options.
    pub async fn sign_in(
        &self,
        browser: &reqwest::Client,
        authorize_url: &str,
        profile: &SamlProfile,
    ) -> SamlPost {
        self.sign_in_with(browser, authorize_url, profile, &SignInOptions::default())
            .await
    }

    /// Drives the IdP like a browser: GET the SSO URL Gatehouse redirected to (the
    /// AuthnRequest), read the profile form, post it with this profile to /signin, and read the
    /// auto-post page. Returns where that page posts and its fields, without posting.
    pub async fn sign_in_with(
        &self,
        browser: &reqwest::Client,
        authorize_url: &str,
        profile: &SamlProfile,
        options: &SignInOptions,
    ) -> SamlPost {
        let _guard = SIGN_IN.lock().await;

        let page = get(browser, authorize_url).await;
        page.assert_status(200);
        let request = AuthnRequestSeen {
            id: static_text(&page.body, "requestId"),
            issuer: static_text(&page.body, "issuer"),
            acs_url: static_text(&page.body, "acsUrl"),
            destination: static_text(&page.body, "destination"),
            relay_state: static_text(&page.body, "relayState"),
        };
        assert!(
            request.id.is_some(),
            "saml-idp did not show a parsed AuthnRequest (no Request ID) for {authorize_url}: {}",
            page.describe()
        );
        let audience = options
            .audience
            .clone()
            .or_else(|| request.issuer.clone())
            .unwrap_or_else(|| {
                panic!(
                    "the AuthnRequest has no <Issuer> and no audience was given: {}",
                    page.describe()
                )
            });
        let fallback = options
            .acs_url_fallback
            .clone()
            .unwrap_or_else(|| "http://127.0.0.1:1/no-acs-url-in-authn-request".to_string());
        let sign_response = if options.assertion_only {
            "false"
        } else {
            "true"
        };
        self.settings(&[
            ("audience", &audience),
            ("acsUrl", &fallback),
            ("recipient", &fallback),
            ("destination", &fallback),
            ("signResponse", sign_response),
        ])
        .await;

        let form = parse_forms(&page.body)
            .into_iter()
            .find(|f| f.action.ends_with("/signin"))
            .unwrap_or_else(|| panic!("no sign-in form at the IdP: {}", page.describe()));
        let mut fields = form.fields.clone();
        let groups = profile.groups.join(",");
        for (name, value) in [
            ("userName", profile.name_id.as_str()),
            ("nameIdFormat", profile.name_id_format.as_str()),
            ("email", profile.email.as_str()),
            ("firstName", profile.first_name.as_str()),
            ("lastName", profile.last_name.as_str()),
            ("displayName", profile.display_name.as_str()),
            ("groups", groups.as_str()),
        ] {
            set_field(&mut fields, name, value);
        }
        assert!(
            fields
                .iter()
                .any(|(k, _)| k == "_authnRequest"),
            "the sign-in form does not carry the AuthnRequest: {}",
            page.describe()
        );
        let signin_url = resolve(&page.url, &form.action);
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let posted = post_form(browser, &signin_url, &pairs).await;
        posted.assert_status(200);
        let form = parse_forms(&posted.body)
            .into_iter()
            .find(|f| {
                f.fields
                    .iter()
                    .any(|(k, _)| k == "SAMLResponse")
            })
            .unwrap_or_else(|| {
                panic!(
                    "the IdP did not answer an auto-post form with SAMLResponse (log: {}): {}",
                    self.log.display(),
                    posted.describe()
                )
            });
        SamlPost {
            acs_url: resolve(&posted.url, &form.action),
            fields: form.fields,
            request,
            page: posted,
        }
    }
}

fn set_field(fields: &mut Vec<(String, String)>, name: &str, value: &str) {
    fields.retain(|(k, _)| k != name);
    fields.push((name.to_string(), value.to_string()));
}

fn resolve(base: &str, action: &str) -> String {
    Url::parse(base)
        .and_then(|b| b.join(action))
        .map(|u| u.to_string())
        .unwrap_or_else(|e| panic!("resolve form action {action:?} against {base}: {e}"))
}

/// The text of saml-idp's `<p class="form-control-static" id="ID">TEXT</p>`.
fn static_text(html: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\">");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('<')? + start;
    let text = decode_entities(html[start..end].trim());
    (!text.is_empty()).then_some(text)
}

fn start_saml_idp() -> SamlIdpProcess {
    let dir = repo_root().join("tests/saml-idp");
    npm_ci_once(&dir, &["saml-idp", "samlp"]);
    let keys = tempfile::Builder::new()
        .prefix("gatehouse-test-saml-idp-")
        .tempdir()
        .expect("create a temporary dir for the IdP's key");
    let (certificate, cert_path, key_path) =
        generate_certificate_in(keys.path(), "idp", "Gatehouse test SAML IdP");
    let entity_id = format!(
        "urn:gatehouse:test:saml-idp:{}",
        &uuid::Uuid::new_v4()
            .simple()
            .to_string()[..8]
    );

    let args: [&std::ffi::OsStr; 8] = [
        "--cert".as_ref(),
        cert_path.as_os_str(),
        "--key".as_ref(),
        key_path.as_os_str(),
        "--port".as_ref(),
        "0".as_ref(),
        "--issuer".as_ref(),
        entity_id.as_ref(),
    ];
    let fixture = start_node_fixture(&dir, "saml-idp.mjs", &args, "sso_url");
    let (ready, log, child, stdin) = (fixture.ready, fixture.log, fixture.child, fixture.stdin);
    let text = |key: &str| {
        ready[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} in the ready line {ready}"))
            .to_string()
    };
    let port = ready["port"]
        .as_u64()
        .expect("port in the ready line") as u16;
    let idp = SamlIdp {
        base_url: format!("http://127.0.0.1:{port}"),
        port,
        sso_url: text("sso_url"),
        entity_id: text("entity_id"),
        metadata_url: text("metadata_url"),
        log,
        certificate,
    };
    assert_eq!(idp.entity_id, entity_id, "the IdP's entity id");
    SamlIdpProcess {
        idp,
        _child: child,
        _stdin: stdin,
        _dir: keys,
    }
}

// ---------------------------------------------------------------------------------------------
// Gatehouse side of a SAML login

/// `GET {gh}/{slug}?login=sso`: asserts the 302 to the IdP's SSO URL with SAMLRequest and
/// RelayState and the flow cookie; returns the redirect URL.
pub async fn start_saml_login(
    browser: &reqwest::Client,
    gh: &Gatehouse,
    slug: &str,
    idp: &SamlIdp,
) -> String {
    let page = get(browser, &gh.url(&format!("/{slug}?login=sso"))).await;
    page.assert_status(302);
    let location = page.location().expect("Location");
    let without_query = location.split('?').next().unwrap_or("");
    assert_eq!(
        without_query,
        idp.sso_url,
        "?login=sso should redirect to the IdP's SSO URL: {}",
        page.describe()
    );
    for param in ["SAMLRequest", "RelayState"] {
        assert!(
            query_param(&location, param).is_some_and(|v| !v.is_empty()),
            "the redirect to the IdP has no {param}: {}",
            page.describe()
        );
    }
    assert!(
        page.set_cookie("gatehouse_flow")
            .is_some(),
        "?login=sso should set the gatehouse_flow cookie: {}",
        page.describe()
    );
    location
}

/// What posting to the ACS gave: the POST's answer and, when it was the 303 to
/// `/acs/continue`, the answer of following it with the same browser.
#[derive(Debug)]
pub struct AcsOutcome {
    pub post: Page,
    pub continued: Option<Page>,
}

impl AcsOutcome {
    /// The page that ends the exchange: the follow-up's, or the POST's own if it did not
    /// redirect to the follow-up.
    pub fn last(&self) -> &Page {
        self.continued
            .as_ref()
            .unwrap_or(&self.post)
    }

    pub fn describe(&self) -> String {
        match &self.continued {
            Some(c) => format!("POST: {}\nthen GET: {}", self.post.describe(), c.describe()),
            None => format!("POST: {}", self.post.describe()),
        }
    }
}

/// POSTs these form fields to `acs_url` with this browser (as the auto-post page would) and
/// follows the 303 to `/acs/continue` when there is one.
pub async fn post_to_acs(
    browser: &reqwest::Client,
    acs_url: &str,
    fields: &[(&str, &str)],
) -> AcsOutcome {
    let post = post_form(browser, acs_url, fields).await;
    let continue_prefix = format!("{}/continue?", acs_url.trim_end_matches('/'));
    let continued = match post.location() {
        Some(next) if post.status.as_u16() == 303 && next.starts_with(&continue_prefix) => {
            Some(get(browser, &next).await)
        }
        _ => None,
    };
    AcsOutcome { post, continued }
}

// ---------------------------------------------------------------------------------------------
// A small, tolerant HTML form reader (and XML tag reader) for known markup

#[derive(Debug, Clone)]
pub struct HtmlForm {
    pub action: String,
    pub method: String,
    /// What a browser would submit: named inputs (checked ones only for checkbox/radio, no
    /// buttons), selects (selected or first option), textareas.
    pub fields: Vec<(String, String)>,
}

fn find_ci(haystack: &str, needle: &str, from: usize) -> Option<usize> {
    let lower = haystack[from..].to_ascii_lowercase();
    lower
        .find(&needle.to_ascii_lowercase())
        .map(|i| i + from)
}

/// The end (exclusive, after `>`) of the tag starting at `start`, skipping quoted values.
fn tag_end(text: &str, start: usize) -> usize {
    let bytes = text.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = start;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'>' => return i + 1,
            None => {}
        }
        i += 1;
    }
    bytes.len()
}

/// Attributes of a start tag `<name a="1" b='2' c=3 d>` (names lowercased, values decoded).
pub fn tag_attributes(tag: &str) -> Vec<(String, String)> {
    let inner = tag
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim_end_matches('/');
    let chars: Vec<char> = inner.chars().collect();
    let mut i = 0;
    // Skip the tag name.
    while i < chars.len() && !chars[i].is_whitespace() {
        i += 1;
    }
    let mut attributes = Vec::new();
    loop {
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == '/') {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '=' {
            i += 1;
        }
        let name: String = chars[start..i]
            .iter()
            .collect::<String>()
            .to_ascii_lowercase();
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < chars.len() && chars[i] == '=' {
            i += 1;
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            if i < chars.len() && (chars[i] == '"' || chars[i] == '\'') {
                let quote = chars[i];
                i += 1;
                let vstart = i;
                while i < chars.len() && chars[i] != quote {
                    i += 1;
                }
                value = chars[vstart..i.min(chars.len())]
                    .iter()
                    .collect();
                i += 1;
            } else {
                let vstart = i;
                while i < chars.len() && !chars[i].is_whitespace() {
                    i += 1;
                }
                value = chars[vstart..i].iter().collect();
            }
        }
        if !name.is_empty() {
            attributes.push((name, decode_entities(&value)));
        }
    }
    attributes
}

fn attribute<'a>(attributes: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Decodes the HTML/XML character references that templates produce.
pub fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let Some(semi) = after.find(';').filter(|&s| s <= 10) else {
            out.push('&');
            rest = after;
            continue;
        };
        let entity = &after[..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if entity.starts_with("#x") || entity.starts_with("#X") => {
                u32::from_str_radix(&entity[2..], 16)
                    .ok()
                    .and_then(char::from_u32)
            }
            _ if entity.starts_with('#') => entity[1..]
                .parse::<u32>()
                .ok()
                .and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every `<form>` of an HTML page with the fields a browser would submit.
pub fn parse_forms(html: &str) -> Vec<HtmlForm> {
    let mut forms = Vec::new();
    let mut from = 0;
    while let Some(start) = find_ci(html, "<form", from) {
        let open_end = tag_end(html, start);
        let attrs = tag_attributes(&html[start..open_end]);
        let close = find_ci(html, "</form", open_end).unwrap_or(html.len());
        let body = &html[open_end..close];
        forms.push(HtmlForm {
            action: attribute(&attrs, "action")
                .unwrap_or("")
                .to_string(),
            method: attribute(&attrs, "method")
                .unwrap_or("get")
                .to_ascii_lowercase(),
            fields: form_fields(body),
        });
        from = close.max(start + 5);
    }
    forms
}

fn form_fields(body: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let mut i = 0;
    while let Some(lt) = body[i..].find('<').map(|p| p + i) {
        let rest_lower = body[lt..(lt + 10).min(body.len())].to_ascii_lowercase();
        let end = tag_end(body, lt);
        if rest_lower.starts_with("<input") {
            let attrs = tag_attributes(&body[lt..end]);
            let kind = attribute(&attrs, "type")
                .unwrap_or("text")
                .to_ascii_lowercase();
            if let Some(name) = attribute(&attrs, "name") {
                let checked = attribute(&attrs, "checked").is_some();
                let include = match kind.as_str() {
                    "submit" | "button" | "image" | "reset" | "file" => false,
                    "checkbox" | "radio" => checked,
                    _ => true,
                };
                if include {
                    let default = if matches!(kind.as_str(), "checkbox" | "radio") {
                        "on"
                    } else {
                        ""
                    };
                    fields.push((
                        name.to_string(),
                        attribute(&attrs, "value")
                            .unwrap_or(default)
                            .to_string(),
                    ));
                }
            }
            i = end;
        } else if rest_lower.starts_with("<select") {
            let attrs = tag_attributes(&body[lt..end]);
            let close = find_ci(body, "</select", end).unwrap_or(body.len());
            if let Some(name) = attribute(&attrs, "name") {
                let options = select_options(&body[end..close]);
                let chosen = options
                    .iter()
                    .find(|(_, selected)| *selected)
                    .or(options.first())
                    .map(|(v, _)| v.clone());
                if let Some(value) = chosen {
                    fields.push((name.to_string(), value));
                }
            }
            i = close.max(end);
        } else if rest_lower.starts_with("<textarea") {
            let attrs = tag_attributes(&body[lt..end]);
            let close = find_ci(body, "</textarea", end).unwrap_or(body.len());
            if let Some(name) = attribute(&attrs, "name") {
                fields.push((name.to_string(), decode_entities(&body[end..close])));
            }
            i = close.max(end);
        } else {
            i = lt + 1;
        }
        if i >= body.len() {
            break;
        }
    }
    fields
}

/// (value, selected) of each `<option>`.
fn select_options(body: &str) -> Vec<(String, bool)> {
    let mut options = Vec::new();
    let mut from = 0;
    while let Some(start) = find_ci(body, "<option", from) {
        let end = tag_end(body, start);
        let attrs = tag_attributes(&body[start..end]);
        let text_end = body[end..]
            .find('<')
            .map(|p| p + end)
            .unwrap_or(body.len());
        let value = attribute(&attrs, "value")
            .map(str::to_string)
            .unwrap_or_else(|| decode_entities(body[end..text_end].trim()));
        options.push((value, attribute(&attrs, "selected").is_some()));
        from = end;
    }
    options
}

/// Attributes of every start tag whose local name (after any `prefix:`) is `local_name`, in
/// document order. Good enough for metadata and SAML messages of known shape.
pub fn xml_tags(xml: &str, local_name: &str) -> Vec<Vec<(String, String)>> {
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(lt) = xml[i..].find('<').map(|p| p + i) {
        let end = tag_end(xml, lt);
        let tag = &xml[lt..end];
        let name: String = tag[1..]
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
            .collect();
        let local = name.rsplit(':').next().unwrap_or("");
        if local == local_name && !name.starts_with('/') {
            // Keep attribute names' case for XML.
            let attrs = tag_attributes(tag);
            let original: Vec<(String, String)> = attrs
                .into_iter()
                .map(|(k, v)| {
                    let original = find_original_case(tag, &k).unwrap_or(k);
                    (original, v)
                })
                .collect();
            found.push(original);
        }
        i = lt + 1;
    }
    found
}

fn find_original_case(tag: &str, lower: &str) -> Option<String> {
    let lowered = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(p) = lowered[from..]
        .find(lower)
        .map(|p| p + from)
    {
        let before_ok = p > 0 && tag.as_bytes()[p - 1].is_ascii_whitespace();
        let after = tag[p + lower.len()..].trim_start();
        if before_ok && after.starts_with('=') {
            return Some(tag[p..p + lower.len()].to_string());
        }
        from = p + 1;
    }
    None
}

/// The value of attribute `name` (case-sensitive XML name) of the first `local_name` tag.
pub fn xml_attribute(xml: &str, local_name: &str, name: &str) -> Option<String> {
    xml_tags(xml, local_name)
        .into_iter()
        .next()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The text content of the first `local_name` element (no nested elements expected).
pub fn xml_text(xml: &str, local_name: &str) -> Option<String> {
    let (start, end) = xml_text_range(xml, local_name)?;
    Some(decode_entities(&xml[start..end]))
}

/// The byte range of the text content of the first `local_name` element.
pub fn xml_text_range(xml: &str, local_name: &str) -> Option<(usize, usize)> {
    let mut i = 0;
    while let Some(lt) = xml[i..].find('<').map(|p| p + i) {
        let end = tag_end(xml, lt);
        let name: String = xml[lt + 1..]
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
            .collect();
        if name.rsplit(':').next() == Some(local_name) && !xml[lt..end].ends_with("/>") {
            let close = xml[end..].find('<')? + end;
            return Some((end, close));
        }
        i = lt + 1;
    }
    None
}

// ---------------------------------------------------------------------------------------------
// HTTP-Redirect encoding without a compression library

/// Raw DEFLATE (RFC 1951) of `data` in stored (uncompressed) blocks: valid input for any
/// inflater, which is all the HTTP-Redirect binding needs.
pub fn deflate_stored(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 65535 * 5 + 5);
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[][..]]
    } else {
        data.chunks(65535).collect()
    };
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        out.push(if i == last { 1 } else { 0 });
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// The `SAMLRequest` query value of the HTTP-Redirect binding for this XML (not URL-encoded).
pub fn redirect_binding_value(xml: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(deflate_stored(xml.as_bytes()))
}

/// A tenant of a SAML test, with what its connection tells the IdP.
#[derive(Debug, Clone)]
pub struct SamlTenant {
    pub slug: String,
    pub app_url: String,
    pub connection_id: String,
    pub acs_url: String,
    pub sp_entity_id: String,
}

/// Asserts the whole refusal contract and returns the `login.failed` event: no session cookie
/// anywhere in the exchange, an HTML error page with this status and an attempt id, a
/// `login.failed` event of that attempt with exactly this reason, protocol "saml", this
/// tenant and connection, and no session for the browser.
pub async fn assert_refused(
    gh: &Gatehouse,
    tenant: &SamlTenant,
    browser: &reqwest::Client,
    outcome: &AcsOutcome,
    reason: &str,
    status: u16,
    case: &str,
) -> Value {
    outcome.post.assert_no_session_cookie();
    let page = outcome.last();
    page.assert_no_session_cookie();
    assert!(
        page.content_type()
            .starts_with("text/html"),
        "[{case}] expected an HTML error page: {}",
        outcome.describe()
    );
    let attempt = page.attempt_id().unwrap_or_else(|| {
        panic!(
            "[{case}] error page without <code id=\"attempt-id\">UUID</code>: {}",
            outcome.describe()
        )
    });
    let event = failed_event(gh, &tenant.slug, &attempt, case).await;
    assert_eq!(
        event["outcome"]["reason"],
        json!(reason),
        "[{case}] login.failed of attempt {attempt} has the wrong reason: {event:#}\n{}",
        outcome.describe()
    );
    assert_eq!(event["protocol"], json!("saml"), "[{case}] {event:#}");
    assert_eq!(
        event["outcome"]["result"],
        json!("failed"),
        "[{case}] {event:#}"
    );
    assert_eq!(event["tenant"], json!(tenant.slug), "[{case}] {event:#}");
    assert_eq!(
        event["connection_id"],
        json!(tenant.connection_id),
        "[{case}] {event:#}"
    );
    assert_eq!(
        page.status.as_u16(),
        status,
        "[{case}] refusal ({reason}) with the wrong status: {}",
        outcome.describe()
    );
    gh.assert_no_session(browser).await;
    event
}

/// Waits for the `login.failed` event of this attempt.
pub async fn failed_event(gh: &Gatehouse, slug: &str, attempt: &str, case: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events = gh
            .audit(slug, &[("type", "login.failed")])
            .await;
        if let Some(event) = events
            .into_iter()
            .find(|e| e["attempt_id"] == json!(attempt))
        {
            return event;
        }
        if Instant::now() > deadline {
            panic!(
                "[{case}] no login.failed for attempt {attempt} at {slug}; events:\n{}",
                serde_json::to_string_pretty(&gh.audit(slug, &[]).await).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
