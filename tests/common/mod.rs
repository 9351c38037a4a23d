//! Black-box harness: a real OpenID Connect provider (tests/idp, oidc-provider on Node) and a
//! real `gatehouse serve` process per test, on SQLite or on a fresh Postgres database, driven
//! over HTTP only.
//!
//! Environment knobs (all optional):
//! - `GATEHOUSE_TEST_POSTGRES_URL`: server URL without a database name
//!   (default `postgres://postgres@127.0.0.1:5432`); `psql` must be on PATH.
//! - `GATEHOUSE_TEST_NODE`: the `node` binary (default `node` on PATH).
//! - `GATEHOUSE_TEST_SHOW_LOGS=1`: print the Gatehouse log even when the test passes.
//!
//! A failed test prints the tail of its Gatehouse log and copies the whole of it to
//! `tests/artifacts/` (git-ignored).
#![allow(dead_code)]

/// Generates `sqlite::NAME` and `postgres::NAME` tests from `async fn NAME(store: Store)`
/// scenarios, so every scenario runs on both stores.
#[allow(unused_macros)]
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::Store::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::Store::Postgres).await
                }
            )*
        }
    };
}

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, LOCATION, SET_COOKIE};
use reqwest::{redirect, StatusCode};
use serde_json::{json, Value};
use tokio::sync::OnceCell;
use url::Url;

pub mod cas;
/// The plain OAuth 2.0 provider (tests/oauth2-idp) and OAuth 2.0 login helpers.
pub mod oauth2;
/// The SAML 2.0 IdP (tests/saml-idp) and SAML login helpers.
pub mod saml;
pub mod saml_xml;
/// A real SMTP server (tests/smtp-server, aiosmtpd) that collects the messages it receives.
pub mod smtp;

/// Every HTTP call of the harness gives up after this long.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(20);
// Generous: CI machines have 2 cores and the first start of a process may wait on disk.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
const IDP_START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long an audit assertion waits for events that may be projected asynchronously.
const AUDIT_WAIT: Duration = Duration::from_secs(5);

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the gatehouse package lives one level below the workspace root")
        .to_path_buf()
}

/// A short random suffix for slugs, login ids and subjects, so tests never share state.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4()
            .simple()
            .to_string()[..10]
    )
}

/// A port that was free a moment ago (bound to 127.0.0.1:0, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

fn http_client(builder: reqwest::ClientBuilder) -> reqwest::Client {
    builder
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .redirect(redirect::Policy::none())
        .build()
        .expect("build HTTP client")
}

/// A plain client: no cookies, no redirects followed.
pub fn client() -> reqwest::Client {
    http_client(reqwest::Client::builder())
}

/// A browser: a cookie store (one jar for every host and port: cookies of the IdP and of
/// Gatehouse are sent to both, which does not matter here) and no redirects followed.
pub fn browser() -> reqwest::Client {
    http_client(
        reqwest::Client::builder()
            .cookie_store(true)
            .user_agent("Mozilla/5.0 (gatehouse black-box tests)"),
    )
}

// ---------------------------------------------------------------------------------------------
// Responses

/// A response read whole, so assertions can quote it.
#[derive(Debug, Clone)]
pub struct Page {
    pub url: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub async fn read(url: &str, response: reqwest::Response) -> Page {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .text()
            .await
            .unwrap_or_else(|e| format!("<body unreadable: {e}>"));
        Page {
            url: url.to_string(),
            status,
            headers,
            body,
        }
    }

    /// The Location header resolved against the request URL.
    /// Where this answer sends the browser: the Location of a redirect, or the target of
    /// Gatehouse's "continue" page (the answer to a form post that leads elsewhere, which moves
    /// on by itself through a meta refresh and offers `a#continue`).
    pub fn location(&self) -> Option<String> {
        let raw = match self.headers.get(LOCATION) {
            Some(value) => value.to_str().ok()?.to_owned(),
            None => self.continue_target()?,
        };
        let base = Url::parse(&self.url).ok()?;
        Some(base.join(&raw).ok()?.to_string())
    }

    /// The target of a "continue" page, checked to be the same in its meta refresh and its link.
    fn continue_target(&self) -> Option<String> {
        if self.status.as_u16() != 200
            || !self
                .content_type()
                .starts_with("text/html")
        {
            return None;
        }
        let unescape = |v: &str| {
            v.replace("&quot;", "\"")
                .replace("&#x27;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
        };
        let after = |marker: &str| {
            let start = self.body.find(marker)? + marker.len();
            let rest = &self.body[start..];
            Some(unescape(&rest[..rest.find('"')?]))
        };
        let link = after(r#"id="continue" href=""#)?;
        let refresh = after(r#"http-equiv="refresh" content="0;url="#)?;
        assert_eq!(
            link,
            refresh,
            "the continue page's link and refresh differ: {}",
            self.describe()
        );
        Some(link)
    }

    pub fn content_type(&self) -> String {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    }

    /// The Set-Cookie header that sets `name`, if any.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find(|c| {
                c.trim_start()
                    .starts_with(&format!("{name}="))
            })
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("expected JSON ({e}) from {}", self.describe()))
    }

    /// The attempt id an error page shows in `<code id="attempt-id">UUID</code>`.
    pub fn attempt_id(&self) -> Option<String> {
        let marker = "<code id=\"attempt-id\">";
        let start = self.body.find(marker)? + marker.len();
        let end = self.body[start..].find("</code>")? + start;
        let id = self.body[start..end].trim().to_string();
        uuid::Uuid::parse_str(&id)
            .ok()
            .map(|_| id)
    }

    pub fn describe(&self) -> String {
        let mut body = self.body.clone();
        if body.len() > 4000 {
            let mut cut = 4000;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(cut);
            body.push('…');
        }
        format!(
            "{} {} (location: {:?}, content-type: {:?}, set-cookie: {:?})\n{}",
            self.url,
            self.status,
            self.headers.get(LOCATION),
            self.content_type(),
            self.set_cookies(),
            body
        )
    }

    pub fn assert_status(&self, expected: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            expected,
            "unexpected status: {}",
            self.describe()
        );
        self
    }

    /// A redirect, or a "continue" page (see [`Page::location`]): where it sends the browser.
    pub fn assert_redirect(&self) -> String {
        assert!(
            matches!(self.status.as_u16(), 302 | 303 | 307) || self.continue_target().is_some(),
            "expected a redirect: {}",
            self.describe()
        );
        self.location()
            .unwrap_or_else(|| panic!("redirect without a usable Location: {}", self.describe()))
    }

    /// An RFC 9457 problem with this status (and this JSON pointer in `field`, when given).
    pub fn assert_problem(&self, status: u16, field: Option<&str>) -> Value {
        self.assert_status(status);
        assert!(
            self.content_type()
                .starts_with("application/problem+json"),
            "expected application/problem+json: {}",
            self.describe()
        );
        let problem = self.json();
        for key in ["type", "title", "status", "detail"] {
            assert!(
                problem.get(key).is_some(),
                "problem without {key:?}: {}",
                self.describe()
            );
        }
        assert_eq!(
            problem["status"],
            json!(status),
            "problem status: {}",
            self.describe()
        );
        if let Some(field) = field {
            assert_eq!(
                problem["field"],
                json!(field),
                "problem field: {}",
                self.describe()
            );
        }
        problem
    }

    /// A Gatehouse error page: HTML, this status, an attempt id, and no session cookie.
    /// Returns the attempt id.
    pub fn assert_error_page(&self, statuses: &[u16]) -> String {
        assert!(
            statuses.contains(&self.status.as_u16()),
            "expected an error page with status in {statuses:?}: {}",
            self.describe()
        );
        assert!(
            self.content_type()
                .starts_with("text/html"),
            "expected an HTML error page: {}",
            self.describe()
        );
        self.assert_no_session_cookie();
        self.attempt_id().unwrap_or_else(|| {
            panic!(
                "error page without <code id=\"attempt-id\">UUID</code>: {}",
                self.describe()
            )
        })
    }

    pub fn assert_no_session_cookie(&self) {
        if let Some(cookie) = self.set_cookie("gatehouse_session") {
            // Clearing the cookie is fine; setting one is not.
            let value = cookie
                .split(';')
                .next()
                .unwrap_or("")
                .trim();
            let clears = value == "gatehouse_session="
                || value == "gatehouse_session=\"\""
                || cookie
                    .to_ascii_lowercase()
                    .contains("max-age=0");
            assert!(clears, "an error set a session cookie: {}", self.describe());
        }
    }
}

pub async fn get(client: &reqwest::Client, url: &str) -> Page {
    let response = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    Page::read(url, response).await
}

pub async fn post_form(client: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> Page {
    let response = client
        .post(url)
        .form(form)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    Page::read(url, response).await
}

// ---------------------------------------------------------------------------------------------
// The IdP

/// The test OpenID Connect provider, one per test binary.
#[derive(Debug)]
pub struct Idp {
    pub issuer: String,
    pub port: u16,
    pub log: PathBuf,
}

struct IdpProcess {
    idp: Idp,
    _child: Child,
    // Never dropped: the IdP exits when the test binary exits and this pipe closes.
    _stdin: ChildStdin,
}

static IDP: OnceCell<IdpProcess> = OnceCell::const_new();

impl Idp {
    /// Starts the IdP on first use (installing its npm packages if needed).
    pub async fn shared() -> &'static Idp {
        let process = IDP
            .get_or_init(|| async {
                tokio::task::spawn_blocking(start_idp)
                    .await
                    .expect("IdP start-up thread panicked")
            })
            .await;
        &process.idp
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// Registers a client (open dynamic registration). A public client authenticates with
    /// `none` (PKCE only); otherwise `client_secret_basic`.
    pub async fn register_client(
        &self,
        redirect_uris: &[String],
        public: bool,
    ) -> (String, Option<String>) {
        let method = if public {
            "none"
        } else {
            "client_secret_basic"
        };
        let url = format!("{}/reg", self.issuer);
        let response = client()
            .post(&url)
            .json(&json!({
                "redirect_uris": redirect_uris,
                "token_endpoint_auth_method": method,
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
            }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let page = Page::read(&url, response).await;
        page.assert_status(201);
        let client = page.json();
        let id = client["client_id"]
            .as_str()
            .expect("client_id")
            .to_string();
        let secret = client["client_secret"]
            .as_str()
            .map(str::to_string);
        assert_eq!(
            secret.is_none(),
            public,
            "client secret presence: {}",
            page.describe()
        );
        (id, secret)
    }

    /// Sets the claims a login id gets (they replace the defaults whole; `sub` defaults to the
    /// login id).
    pub async fn set_account(&self, login: &str, claims: Value) {
        let url = format!("{}/test/accounts", self.issuer);
        let response = client()
            .post(&url)
            .json(&json!({ "login": login, "claims": claims }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        Page::read(&url, response)
            .await
            .assert_status(200);
    }
}

fn node() -> String {
    std::env::var("GATEHOUSE_TEST_NODE").unwrap_or_else(|_| "node".to_string())
}

/// `npm ci` in `dir` unless `node_modules/<package>` is there, under a file lock shared by
/// every test binary (each fixture has its own lock file, named after its folder).
pub fn npm_ci_once(dir: &Path, packages: &[&str]) {
    let installed = || {
        packages.iter().all(|p| {
            dir.join(format!("node_modules/{p}/package.json"))
                .exists()
        })
    };
    if installed() {
        return;
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lock_path = std::env::temp_dir().join(format!("gatehouse-test-{name}-npm.lock"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("open {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
    if !installed() {
        let output = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run npm ci in {}: {e}", dir.display()));
        assert!(
            output.status.success(),
            "npm ci in {} failed ({}):\n{}\n{}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let _ = lock.unlock();
}

/// A fixture server run by a Node launcher that prints one JSON "ready" line on stdout and
/// exits when its stdin closes (so it never outlives the test process).
pub struct FixtureProcess {
    /// The ready line.
    pub ready: Value,
    /// Its stderr.
    pub log: PathBuf,
    pub child: Child,
    pub stdin: ChildStdin,
}

/// Starts `node <script> <args>` in `dir` and waits for a JSON line holding `ready_key`.
pub fn start_node_fixture(
    dir: &Path,
    script: &str,
    args: &[&std::ffi::OsStr],
    ready_key: &str,
) -> FixtureProcess {
    let log = std::env::temp_dir().join(format!(
        "gatehouse-test-{}-{}.log",
        script.trim_end_matches(".mjs"),
        std::process::id()
    ));
    let stderr = File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
    let mut child = Command::new(node())
        .arg(script)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("start {} {script} in {}: {e}", node(), dir.display()));
    let stdin = child
        .stdin
        .take()
        .expect("fixture stdin");
    let stdout = child
        .stdout
        .take()
        .expect("fixture stdout");

    // Read the ready line, then keep draining stdout so the fixture never writes to a closed
    // pipe.
    let (tx, rx) = mpsc::channel::<Value>();
    let key = ready_key.to_owned();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    if value.get(&key).is_some() {
                        let _ = tx.send(value);
                        sent = true;
                    }
                }
            }
        }
    });
    match rx.recv_timeout(IDP_START_TIMEOUT) {
        Ok(ready) => FixtureProcess {
            ready,
            log,
            child,
            stdin,
        },
        Err(e) => {
            let _ = child.kill();
            panic!(
                "{script} did not print its ready line within {IDP_START_TIMEOUT:?} ({e}); its log:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
    }
}

fn start_idp() -> IdpProcess {
    let dir = repo_root().join("tests/idp");
    npm_ci_once(&dir, &["oidc-provider"]);
    let fixture = start_node_fixture(
        &dir,
        "oidc-idp.mjs",
        &["--port".as_ref(), "0".as_ref()],
        "issuer",
    );
    let issuer = fixture.ready["issuer"]
        .as_str()
        .expect("issuer in the ready line")
        .to_string();
    let port = fixture.ready["port"]
        .as_u64()
        .expect("port in the ready line") as u16;
    IdpProcess {
        idp: Idp {
            issuer,
            port,
            log: fixture.log,
        },
        _child: fixture.child,
        _stdin: fixture.stdin,
    }
}

// ---------------------------------------------------------------------------------------------
// Gatehouse

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// GATEHOUSE_ALLOW_PRIVATE_NETWORKS (true: the tests' IdP is on 127.0.0.1).
    pub allow_private_networks: bool,
    /// Extra environment variables for `gatehouse serve`.
    pub env: Vec<(String, String)>,
    /// Leave GATEHOUSE_ADMIN_TOKEN unset, so Gatehouse generates a token and prints it once;
    /// `Gatehouse::admin_token` is then read from that banner in the log.
    pub generated_admin_token: bool,
    /// GATEHOUSE_PUBLIC_URL `https://127.0.0.1:PORT` (cookies become Secure) while the
    /// server still listens on plain http at `Gatehouse::url`.
    pub https_public_url: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            allow_private_networks: true,
            env: Vec::new(),
            generated_admin_token: false,
            https_public_url: false,
        }
    }
}

/// A running `gatehouse serve`, stopped (and its Postgres database dropped) on Drop.
pub struct Gatehouse {
    /// `http://127.0.0.1:PORT`, also its GATEHOUSE_PUBLIC_URL.
    pub url: String,
    pub port: u16,
    pub admin_token: String,
    pub store: Store,
    pub data_dir: tempfile::TempDir,
    pub log: PathBuf,
    database: Option<String>,
    child: Option<Child>,
    /// GATEHOUSE_SECRET_KEY of this process.
    pub secret_key: String,
    /// GATEHOUSE_DATABASE_URL (Postgres only; SQLite lives in the data dir).
    pub database_url: Option<String>,
    /// Every environment variable `gatehouse` is started with (see [`Gatehouse::run`]).
    pub env: Vec<(String, String)>,
}

fn postgres_server_url() -> String {
    std::env::var("GATEHOUSE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string())
        .trim_end_matches('/')
        .to_string()
}

fn psql(sql: &str) -> Result<(), String> {
    let output = Command::new("psql")
        .arg(format!("{}/postgres", postgres_server_url()))
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run psql: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "psql {sql:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

impl Gatehouse {
    pub async fn start(store: Store) -> Gatehouse {
        Gatehouse::start_with(store, Options::default()).await
    }

    pub async fn start_with(store: Store, options: Options) -> Gatehouse {
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let data_dir = tempfile::Builder::new()
            .prefix("gatehouse-test-")
            .tempdir()
            .expect("create a temporary data dir");
        let log = data_dir.path().join("gatehouse.log");
        let admin_token = format!("adm-{}", uuid::Uuid::new_v4().simple());
        let secret_key =
            base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());

        let database = match store {
            Store::Sqlite => None,
            Store::Postgres => {
                let name = format!("gh_test_{}", uuid::Uuid::new_v4().simple());
                psql(&format!("CREATE DATABASE {name}")).unwrap_or_else(|e| {
                    panic!(
                        "cannot create a Postgres test database on {} (set GATEHOUSE_TEST_POSTGRES_URL): {e}",
                        postgres_server_url()
                    )
                });
                Some(name)
            }
        };

        let database_url = database
            .as_ref()
            .map(|name| format!("{}/{name}", postgres_server_url()));
        let mut env: Vec<(String, String)> = vec![
            ("GATEHOUSE_LISTEN".into(), format!("127.0.0.1:{port}")),
            (
                "GATEHOUSE_PUBLIC_URL".into(),
                if options.https_public_url {
                    format!("https://127.0.0.1:{port}")
                } else {
                    url.clone()
                },
            ),
            (
                "GATEHOUSE_DATA_DIR".into(),
                data_dir.path().display().to_string(),
            ),
            ("GATEHOUSE_SECRET_KEY".into(), secret_key.clone()),
            (
                "GATEHOUSE_ALLOW_PRIVATE_NETWORKS".into(),
                if options.allow_private_networks {
                    "true"
                } else {
                    "false"
                }
                .into(),
            ),
            (
                "RUST_LOG".into(),
                std::env::var("GATEHOUSE_TEST_RUST_LOG").unwrap_or("info".into()),
            ),
        ];
        if !options.generated_admin_token {
            env.push(("GATEHOUSE_ADMIN_TOKEN".into(), admin_token.clone()));
        }
        if let Some(database_url) = &database_url {
            env.push(("GATEHOUSE_DATABASE_URL".into(), database_url.clone()));
        }
        env.extend(options.env.iter().cloned());
        let child = spawn_serve(&env, data_dir.path(), &log, false);

        let mut gatehouse = Gatehouse {
            url,
            port,
            admin_token,
            store,
            data_dir,
            log,
            database,
            child: Some(child),
            secret_key,
            database_url,
            env,
        };
        gatehouse.wait_ready().await;
        if options.generated_admin_token {
            gatehouse.admin_token = gatehouse
                .printed_admin_token()
                .unwrap_or_else(|| {
                    panic!(
                        "no admin token banner in the log:\n{}",
                        gatehouse.log_text()
                    )
                });
        }
        gatehouse
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let probe = http_client(reqwest::Client::builder().timeout(Duration::from_secs(2)));
        let url = self.url("/readyz");
        let mut last;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "gatehouse serve exited ({status}) before it was ready; its log:\n{}",
                        self.log_text()
                    );
                }
            }
            match probe.get(&url).send().await {
                Ok(response) if response.status() == StatusCode::OK => return,
                Ok(response) => last = format!("status {}", response.status()),
                Err(e) => last = e.to_string(),
            }
            if Instant::now() > deadline {
                panic!(
                    "gatehouse ({:?}) was not ready at {url} within {READY_TIMEOUT:?} (last: {last}); its log:\n{}",
                    self.store,
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_else(|e| format!("<no log: {e}>"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The callback URL Gatehouse should announce for a connection.
    pub fn callback_url(&self, slug: &str, connection_id: &str) -> String {
        self.url(&format!("/{slug}/sso/{connection_id}/callback"))
    }

    /// A client that sends the admin bearer token.
    pub fn admin(&self) -> reqwest::Client {
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            format!("Bearer {}", self.admin_token)
                .parse()
                .expect("header value"),
        );
        http_client(reqwest::Client::builder().default_headers(headers))
    }

    pub async fn admin_post(&self, path: &str, body: &Value) -> Page {
        let url = self.url(path);
        let response = self
            .admin()
            .post(&url)
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        Page::read(&url, response).await
    }

    pub async fn admin_put(&self, path: &str, body: &Value) -> Page {
        let url = self.url(path);
        let response = self
            .admin()
            .put(&url)
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("PUT {url}: {e}"));
        Page::read(&url, response).await
    }

    /// GET as the bootstrap admin; a read of the audit API first waits for the projection.
    pub async fn admin_get(&self, path: &str) -> Page {
        if path.contains("/audit/") {
            self.projected().await;
        }
        get(&self.admin(), &self.url(path)).await
    }

    /// POST /api/v1/tenants, asserting 201 and the echoed fields.
    pub async fn create_tenant(&self, slug: &str, display_name: &str, app_url: &str) -> Value {
        let page = self
            .admin_post(
                "/api/v1/tenants",
                &json!({ "slug": slug, "display_name": display_name, "app_url": app_url }),
            )
            .await;
        page.assert_status(201);
        let tenant = page.json();
        assert_eq!(tenant["slug"], json!(slug), "{}", page.describe());
        assert_eq!(
            tenant["display_name"],
            json!(display_name),
            "{}",
            page.describe()
        );
        assert_eq!(tenant["app_url"], json!(app_url), "{}", page.describe());
        tenant
    }

    /// PUT an OIDC connection and return the response whatever it is.
    pub async fn try_put_oidc_connection(
        &self,
        slug: &str,
        id: &str,
        label: &str,
        config: Value,
    ) -> Page {
        self.admin_put(
            &format!("/api/v1/tenants/{slug}/connections/{id}"),
            &json!({ "protocol": "oidc", "label": label, "config": config }),
        )
        .await
    }

    /// PUT an OIDC connection, asserting 200, the shape of the answer and that the secret is
    /// never echoed.
    pub async fn put_oidc_connection(
        &self,
        slug: &str,
        id: &str,
        label: &str,
        config: Value,
    ) -> Value {
        let page = self
            .try_put_oidc_connection(slug, id, label, config.clone())
            .await;
        page.assert_status(200);
        let connection = page.json();
        assert_eq!(connection["id"], json!(id), "{}", page.describe());
        assert_eq!(connection["protocol"], json!("oidc"), "{}", page.describe());
        assert_eq!(connection["label"], json!(label), "{}", page.describe());
        assert!(
            connection["config"]
                .get("client_secret")
                .is_none(),
            "the connection echoed its client secret: {}",
            page.describe()
        );
        if let Some(secret) = config
            .get("client_secret")
            .and_then(Value::as_str)
        {
            assert!(
                !page.body.contains(secret),
                "the secret leaked: {}",
                page.describe()
            );
            assert_eq!(
                connection["config"]["client_secret_set"],
                json!(true),
                "{}",
                page.describe()
            );
        }
        assert_eq!(
            connection["setup"]["redirect_url"],
            json!(self.callback_url(slug, id)),
            "{}",
            page.describe()
        );
        connection
    }

    /// Waits until the read models hold every event committed so far (`projection_lag` 0 in
    /// /readyz): the projector applies events after the request that appended them answered.
    pub async fn projected(&self) {
        let url = self.url("/readyz");
        let deadline = Instant::now() + AUDIT_WAIT;
        loop {
            let lag = match client().get(&url).send().await {
                Ok(response) => response
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|body| body["projection_lag"].as_i64()),
                Err(_) => None,
            };
            if lag == Some(0) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the projection still lags ({lag:?} events) after {AUDIT_WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// One page of GET /api/v1/tenants/{slug}/audit/events, once the projection caught up.
    pub async fn audit_page(&self, slug: &str, query: &[(&str, &str)]) -> Page {
        self.projected().await;
        let url = self.url(&format!("/api/v1/tenants/{slug}/audit/events"));
        let response = self
            .admin()
            .get(&url)
            .query(query)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}?{query:?}: {e}"));
        Page::read(&url, response).await
    }

    /// Every audit event matching the query, newest first (follows next_cursor).
    pub async fn audit(&self, slug: &str, query: &[(&str, &str)]) -> Vec<Value> {
        let mut events = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..50 {
            let mut q: Vec<(&str, &str)> = query.to_vec();
            if let Some(c) = &cursor {
                q.push(("cursor", c.as_str()));
            }
            let page = self.audit_page(slug, &q).await;
            page.assert_status(200);
            let body = page.json();
            let batch = body["events"]
                .as_array()
                .unwrap_or_else(|| panic!("no events array: {}", page.describe()));
            events.extend(batch.iter().cloned());
            match body.get("next_cursor") {
                Some(Value::String(next)) if !batch.is_empty() => cursor = Some(next.clone()),
                Some(Value::Null) | Some(Value::String(_)) => return events,
                _ => panic!(
                    "next_cursor missing (must be a string or null): {}",
                    page.describe()
                ),
            }
        }
        panic!("audit of {slug} did not end after 50 pages");
    }

    /// Polls the audit log until `ready` holds (events may be projected asynchronously), and
    /// panics with `what` and every event of the tenant otherwise.
    pub async fn audit_until(
        &self,
        slug: &str,
        query: &[(&str, &str)],
        what: &str,
        ready: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + AUDIT_WAIT;
        loop {
            let events = self.audit(slug, query).await;
            if ready(&events) {
                return events;
            }
            if Instant::now() > deadline {
                let all = self.audit(slug, &[]).await;
                panic!(
                    "audit of {slug} ({query:?}) never showed {what} within {AUDIT_WAIT:?}; events:\n{}",
                    serde_json::to_string_pretty(&all).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for a `login.failed` event with this reason (and attempt id, when given).
    pub async fn assert_login_failed(
        &self,
        slug: &str,
        reason: &str,
        attempt_id: Option<&str>,
    ) -> Value {
        let events = self
            .audit_until(
                slug,
                &[("type", "login.failed")],
                &format!("login.failed with reason {reason} (attempt {attempt_id:?})"),
                |events| {
                    events
                        .iter()
                        .any(|e| failed_with(e, reason, attempt_id))
                },
            )
            .await;
        let event = events
            .into_iter()
            .find(|e| failed_with(e, reason, attempt_id))
            .expect("found above");
        assert_eq!(event["outcome"]["result"], json!("failed"), "{event:#}");
        assert_eq!(event["tenant"], json!(slug), "{event:#}");
        event
    }

    /// The session the browser's cookie stands for: (status, body).
    pub async fn session(&self, browser: &reqwest::Client) -> Page {
        get(browser, &self.url("/api/v1/session")).await
    }

    pub async fn assert_session(&self, browser: &reqwest::Client) -> Value {
        let page = self.session(browser).await;
        page.assert_status(200);
        let session = page.json();
        for key in [
            "user_id",
            "tenant",
            "connection_id",
            "email",
            "name",
            "expires_at",
        ] {
            assert!(
                session.get(key).is_some(),
                "session without {key:?}: {}",
                page.describe()
            );
        }
        session
    }

    pub async fn assert_no_session(&self, browser: &reqwest::Client) {
        self.session(browser)
            .await
            .assert_problem(401, None);
    }

    /// POST /{slug}/logout, asserting 303.
    pub async fn logout(&self, browser: &reqwest::Client, slug: &str) -> Page {
        let url = self.url(&format!("/{slug}/logout"));
        let response = browser
            .post(&url)
            .header("Origin", &self.url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let page = Page::read(&url, response).await;
        page.assert_status(303);
        page
    }
}

fn failed_with(event: &Value, reason: &str, attempt_id: Option<&str>) -> bool {
    event["type"] == json!("login.failed")
        && event["outcome"]["reason"] == json!(reason)
        && attempt_id.is_none_or(|id| event["attempt_id"] == json!(id))
}

impl Drop for Gatehouse {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
        let failed = std::thread::panicking();
        if failed || std::env::var_os("GATEHOUSE_TEST_SHOW_LOGS").is_some() {
            let text = self.log_text();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(200)..];
            eprintln!(
                "----- gatehouse ({:?}, {}) log, last {} lines -----\n{}\n----- end of log -----",
                self.store,
                self.url,
                tail.len(),
                tail.join("\n")
            );
        }
        if failed {
            let dir = repo_root().join("tests/artifacts");
            let name = std::thread::current()
                .name()
                .unwrap_or("test")
                .replace("::", "-");
            if fs::create_dir_all(&dir).is_ok() {
                let path = dir.join(format!("{name}-{}.log", self.port));
                if fs::copy(&self.log, &path).is_ok() {
                    eprintln!("full log: {}", path.display());
                }
            }
        }
        if let Some(name) = self.database.take() {
            if let Err(e) = psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")) {
                eprintln!("could not drop the test database {name}: {e}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A tenant wired to the IdP

/// A tenant with one OIDC connection to the shared IdP.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub slug: String,
    pub app_url: String,
    pub connection_id: String,
    pub label: String,
    pub client_id: String,
    pub client_secret: Option<String>,
}

/// Creates a tenant with a unique slug, registers a client at the IdP for its callback, and
/// configures the connection (allowed domain `good.test`).
pub async fn tenant_with_idp(gh: &Gatehouse, idp: &Idp, public_client: bool) -> Tenant {
    let slug = unique("t-");
    let app_url = format!("https://app.{slug}.test/home");
    gh.create_tenant(&slug, &format!("Tenant {slug}"), &app_url)
        .await;
    let connection_id = "okta".to_string();
    let label = format!("{slug} Okta");
    let (client_id, client_secret) = idp
        .register_client(&[gh.callback_url(&slug, &connection_id)], public_client)
        .await;
    let mut config = json!({
        "discovery_url": idp.discovery_url(),
        "client_id": client_id,
        "allowed_domains": ["good.test"],
    });
    if let Some(secret) = &client_secret {
        config["client_secret"] = json!(secret);
    }
    let connection = gh
        .put_oidc_connection(&slug, &connection_id, &label, config)
        .await;
    assert_eq!(
        connection["config"]["client_secret_set"],
        json!(client_secret.is_some()),
        "client_secret_set: {connection:#}"
    );
    Tenant {
        slug,
        app_url,
        connection_id,
        label,
        client_id,
        client_secret,
    }
}

// ---------------------------------------------------------------------------------------------
// Browser flows

/// `GET {gh}/{slug}?login=sso`: asserts the redirect to the IdP and the flow-binding cookie,
/// and returns the authorization URL.
pub async fn start_login(
    browser: &reqwest::Client,
    gh: &Gatehouse,
    slug: &str,
    idp: &Idp,
) -> String {
    let page = get(browser, &gh.url(&format!("/{slug}?login=sso"))).await;
    page.assert_status(302);
    let authorize = page.location().expect("Location");
    assert!(
        authorize.starts_with(&idp.issuer),
        "?login=sso should redirect to the IdP {}: {}",
        idp.issuer,
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

fn returns_to(url: &str, base: &str) -> bool {
    url.starts_with(&format!("{}/", base.trim_end_matches('/')))
}

/// Runs the IdP side of a login (authorization request, login form, resume) and returns the
/// URL the IdP sends the browser back to, without calling it.
pub async fn idp_sign_in(
    browser: &reqwest::Client,
    gh: &Gatehouse,
    idp: &Idp,
    authorize_url: &str,
    login: &str,
) -> String {
    idp_sign_in_to(browser, &gh.url, idp, authorize_url, login).await
}

/// [`idp_sign_in`] for any relying party whose callbacks start with `back_to`.
pub async fn idp_sign_in_to(
    browser: &reqwest::Client,
    back_to: &str,
    idp: &Idp,
    authorize_url: &str,
    login: &str,
) -> String {
    let page = get(browser, authorize_url).await;
    let next = page.assert_redirect();
    if returns_to(&next, back_to) {
        // The IdP already had a session in this browser and answered at once.
        return next;
    }
    let uid = interaction_uid(&next, idp, &page);
    let page = post_form(
        browser,
        &format!("{}/interaction/{uid}/login", idp.issuer),
        &[("login", login), ("password", "x")],
    )
    .await;
    let resume = page.assert_redirect();
    assert!(
        resume.starts_with(&format!("{}/auth/{uid}", idp.issuer)),
        "the login should resume {}/auth/{uid}: {}",
        idp.issuer,
        page.describe()
    );
    let page = get(browser, &resume).await;
    let callback = page.assert_redirect();
    assert!(
        returns_to(&callback, back_to),
        "the IdP should send the browser back to {back_to}: {}",
        page.describe()
    );
    callback
}

/// Starts the IdP login and then aborts it (`GET /interaction/<uid>/abort`); returns the
/// callback URL carrying `error=access_denied`.
pub async fn idp_abort(
    browser: &reqwest::Client,
    gh: &Gatehouse,
    idp: &Idp,
    authorize_url: &str,
) -> String {
    idp_abort_to(browser, &gh.url, idp, authorize_url).await
}

/// [`idp_abort`] for any relying party whose callbacks start with `back_to`.
pub async fn idp_abort_to(
    browser: &reqwest::Client,
    back_to: &str,
    idp: &Idp,
    authorize_url: &str,
) -> String {
    let page = get(browser, authorize_url).await;
    let next = page.assert_redirect();
    let uid = interaction_uid(&next, idp, &page);
    let page = get(browser, &format!("{}/interaction/{uid}/abort", idp.issuer)).await;
    let resume = page.assert_redirect();
    let page = get(browser, &resume).await;
    let callback = page.assert_redirect();
    assert!(
        returns_to(&callback, back_to)
            && query_param(&callback, "error").as_deref() == Some("access_denied"),
        "the abort should reach {back_to} with error=access_denied: {}",
        page.describe()
    );
    callback
}

fn interaction_uid(location: &str, idp: &Idp, page: &Page) -> String {
    let prefix = format!("{}/interaction/", idp.issuer);
    let uid = location
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("expected a redirect to {prefix}<uid>: {}", page.describe()));
    uid.trim_end_matches('/').to_string()
}

/// `?login=sso`, then the IdP login as `idp_login`; returns the callback URL without calling
/// it, so a test can tamper with it first.
pub async fn login_via_idp(
    browser: &reqwest::Client,
    gh: &Gatehouse,
    idp: &Idp,
    slug: &str,
    idp_login: &str,
) -> String {
    let authorize = start_login(browser, gh, slug, idp).await;
    idp_sign_in(browser, gh, idp, &authorize, idp_login).await
}

/// Calls a callback URL with this browser.
pub async fn call_callback(browser: &reqwest::Client, callback_url: &str) -> Page {
    get(browser, callback_url).await
}

/// Asserts a successful callback: 302 to the tenant's app, with a proper session cookie.
pub fn assert_login_succeeded(page: &Page, tenant: &Tenant) {
    page.assert_status(302);
    assert_eq!(
        page.location().as_deref(),
        Some(tenant.app_url.as_str()),
        "{}",
        page.describe()
    );
    let cookie = page
        .set_cookie("gatehouse_session")
        .unwrap_or_else(|| panic!("no gatehouse_session cookie: {}", page.describe()));
    let attrs: Vec<String> = cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    for wanted in ["httponly", "samesite=lax", "path=/"] {
        assert!(
            attrs.iter().any(|a| a == wanted),
            "session cookie without {wanted}: {cookie}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// URL surgery for hostile callbacks

pub fn query_param(url: &str, name: &str) -> Option<String> {
    Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The same URL with `name` set to `value` (or removed when `value` is None); the other
/// parameters keep their order.
pub fn with_query_param(url: &str, name: &str, value: Option<&str>) -> String {
    let mut parsed = Url::parse(url).unwrap_or_else(|e| panic!("parse {url}: {e}"));
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut found = false;
    {
        let mut query = parsed.query_pairs_mut();
        query.clear();
        for (k, v) in &pairs {
            if k == name {
                found = true;
                if let Some(value) = value {
                    query.append_pair(k, value);
                }
            } else {
                query.append_pair(k, v);
            }
        }
        if !found {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
    }
    parsed.to_string()
}

/// The same URL with a different path (query kept).
pub fn with_path(url: &str, path: &str) -> String {
    let mut parsed = Url::parse(url).unwrap_or_else(|e| panic!("parse {url}: {e}"));
    parsed.set_path(path);
    parsed.to_string()
}

/// Changes one character in the middle of a token, keeping it in the same alphabet.
pub fn flip_one_char(token: &str) -> String {
    assert!(!token.is_empty(), "cannot tamper with an empty token");
    let mut chars: Vec<char> = token.chars().collect();
    let i = chars.len() / 2;
    chars[i] = match chars[i] {
        'a' => 'b',
        'A' => 'B',
        '0' => '1',
        _ => 'a',
    };
    chars.into_iter().collect()
}

// ---------------------------------------------------------------------------------------------
// More processes on the same data: restarts, subcommands, a second node

/// Starts `gatehouse serve` with exactly this environment, its output going to `log`
/// (appended when `append`).
fn spawn_serve(env: &[(String, String)], cwd: &Path, log: &Path, append: bool) -> Child {
    let log_file = OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .open(log)
        .unwrap_or_else(|e| panic!("open the Gatehouse log {}: {e}", log.display()));
    let mut command = gatehouse_command(env, cwd);
    command
        .arg("serve")
        // Its own process group, so Drop can stop anything it started as well.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(
            log_file
                .try_clone()
                .expect("clone the log file handle"),
        )
        .stderr(log_file);
    command
        .spawn()
        .unwrap_or_else(|e| panic!("start {} serve: {e}", env!("CARGO_BIN_EXE_gatehouse")))
}

/// The `gatehouse` binary with this environment (and never the test's own
/// GATEHOUSE_DATABASE_URL).
fn gatehouse_command(env: &[(String, String)], cwd: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    command
        .env_remove("GATEHOUSE_DATABASE_URL")
        .current_dir(cwd);
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// The output of a finished subcommand, for assertions.
#[derive(Debug)]
pub struct RunOutput {
    pub args: Vec<String>,
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl RunOutput {
    pub fn describe(&self) -> String {
        format!(
            "gatehouse {} exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args.join(" "),
            self.status,
            self.stdout,
            self.stderr
        )
    }

    pub fn assert_success(&self) -> &Self {
        assert!(self.status.success(), "{}", self.describe());
        self
    }
}

/// Runs `gatehouse ARGS` with this environment and waits for it (at most `timeout`).
pub fn run_gatehouse(
    env: &[(String, String)],
    cwd: &Path,
    args: &[&str],
    timeout: Duration,
) -> RunOutput {
    let mut child = gatehouse_command(env, cwd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run gatehouse {args:?}: {e}"));
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut text);
        text
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .expect("wait for gatehouse")
        {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gatehouse {args:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    RunOutput {
        args: args
            .iter()
            .map(|a| a.to_string())
            .collect(),
        status,
        stdout: String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
    }
}

impl Gatehouse {
    /// The token of the one-time "Admin API token" banner in the log, if there is one.
    pub fn printed_admin_token(&self) -> Option<String> {
        let text = self.log_text();
        let mut lines = text.lines();
        lines.find(|l| l.contains("Admin API token"))?;
        lines
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
    }

    /// Runs `gatehouse ARGS` (e.g. `projections rebuild`) with the same environment as this
    /// server, in its data dir.
    pub fn run(&self, args: &[&str]) -> RunOutput {
        run_gatehouse(
            &self.env,
            self.data_dir.path(),
            args,
            Duration::from_secs(60),
        )
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Stops the server (SIGTERM to its process group, SIGKILL after 10 s); the data stays.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = format!("-{}", child.id());
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    let _ = Command::new("kill")
                        .args(["-KILL", "--", &group])
                        .stderr(Stdio::null())
                        .status();
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Starts the server again with the same environment, port and data (log appended).
    pub async fn restart(&mut self) {
        self.stop();
        let child = spawn_serve(&self.env, self.data_dir.path(), &self.log, true);
        self.child = Some(child);
        self.wait_ready().await;
    }

    /// A second `gatehouse serve` on the same database, with the same secret key, admin token
    /// (configured or generated) and GATEHOUSE_PUBLIC_URL (this node's URL, so redirect URIs
    /// match), but its own port and data dir. `url` is its real address. Postgres only: on
    /// SQLite it would get a database of its own. It never drops the database.
    pub async fn another_node(&self, extra_env: &[(&str, &str)]) -> Gatehouse {
        assert_eq!(
            self.store,
            Store::Postgres,
            "a second node needs a shared (Postgres) database"
        );
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let data_dir = tempfile::Builder::new()
            .prefix("gatehouse-test-node-")
            .tempdir()
            .expect("create a temporary data dir");
        let log = data_dir.path().join("gatehouse.log");
        let mut env: Vec<(String, String)> = self
            .env
            .iter()
            .filter(|(k, _)| k != "GATEHOUSE_LISTEN" && k != "GATEHOUSE_DATA_DIR")
            .cloned()
            .collect();
        env.push(("GATEHOUSE_LISTEN".into(), format!("127.0.0.1:{port}")));
        env.push((
            "GATEHOUSE_DATA_DIR".into(),
            data_dir.path().display().to_string(),
        ));
        for (key, value) in extra_env {
            env.retain(|(k, _)| k != key);
            env.push((key.to_string(), value.to_string()));
        }
        let child = spawn_serve(&env, data_dir.path(), &log, false);
        let mut node = Gatehouse {
            url,
            port,
            admin_token: self.admin_token.clone(),
            store: self.store,
            data_dir,
            log,
            database: None,
            child: Some(child),
            secret_key: self.secret_key.clone(),
            database_url: self.database_url.clone(),
            env,
        };
        node.wait_ready().await;
        node
    }

    /// The SQLite database file (SQLite only).
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir
            .path()
            .join("gatehouse.sqlite")
    }

    /// Runs one SQL query on the store with the `sqlite3` or `psql` CLI and returns its
    /// output (tab/pipe-separated rows, no headers).
    pub fn sql(&self, query: &str) -> String {
        let output = match self.store {
            // Waits for the write lock while Gatehouse's projector holds it.
            Store::Sqlite => Command::new("sqlite3")
                .args(["-cmd", ".timeout 10000"])
                .arg(self.sqlite_path())
                .arg(query)
                .stdin(Stdio::null())
                .output(),
            Store::Postgres => Command::new("psql")
                .arg(
                    self.database_url
                        .as_deref()
                        .expect("a Postgres URL"),
                )
                .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-c", query])
                .stdin(Stdio::null())
                .output(),
        }
        .unwrap_or_else(|e| panic!("run the SQL CLI for {:?}: {e}", self.store));
        assert!(
            output.status.success(),
            "SQL {query:?} on {:?} failed ({}): {}",
            self.store,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// A full dump of the store (every table, schema and rows) as text.
    pub fn dump_database(&self) -> String {
        let output = match self.store {
            Store::Sqlite => Command::new("sqlite3")
                .arg(self.sqlite_path())
                .arg(".dump")
                .stdin(Stdio::null())
                .output(),
            Store::Postgres => Command::new("pg_dump")
                .arg(
                    self.database_url
                        .as_deref()
                        .expect("a Postgres URL"),
                )
                .stdin(Stdio::null())
                .output(),
        }
        .unwrap_or_else(|e| panic!("dump the {:?} database: {e}", self.store));
        assert!(
            output.status.success(),
            "dumping the {:?} database failed ({}): {}",
            self.store,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}
