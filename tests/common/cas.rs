//! A real CAS 3.0 server for the black-box tests: `django-cas-server` (PyPI, pinned in
//! tests/cas-server/requirements.txt) started once per test binary by
//! tests/cas-server/cas-server.py, which creates its virtual environment on first use, and
//! serves `/cas/login` and `/cas/p3/serviceValidate` on 127.0.0.1. Its users
//! (tests/cas-server/users.json) are Django users; the service sees `mail` and `displayName`.
//!
//! Needs `python3` (and PyPI on the first run).

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::OnceCell;

use super::{get, post_form, query_param, repo_root, Gatehouse, Page};

// The first start may create the virtual environment and install Django.
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// The test CAS server, one per test binary.
#[derive(Debug)]
pub struct CasServer {
    /// `http://127.0.0.1:PORT/cas`: the `server_url` of a connection.
    pub cas_url: String,
    /// What it is: `django-cas-server X, Django Y`.
    pub version: String,
    pub log: PathBuf,
}

struct CasProcess {
    server: CasServer,
    _child: Child,
    // Never dropped: the server exits when the test binary exits and this pipe closes.
    _stdin: ChildStdin,
}

static CAS: OnceCell<CasProcess> = OnceCell::const_new();

impl CasServer {
    /// Starts the server on first use.
    pub async fn shared() -> &'static CasServer {
        let process = CAS
            .get_or_init(|| async {
                tokio::task::spawn_blocking(start)
                    .await
                    .expect("CAS server start-up thread panicked")
            })
            .await;
        &process.server
    }

    pub fn login_url(&self) -> String {
        format!("{}/login", self.cas_url)
    }

    /// On the CAS login page Gatehouse redirected to, submits the form (with its CSRF token
    /// and login ticket) as `username`/`password`; returns the answer, not followed.
    pub async fn submit_login(
        &self,
        browser: &reqwest::Client,
        login_url: &str,
        username: &str,
        password: &str,
    ) -> Page {
        let page = get(browser, login_url).await;
        page.assert_status(200);
        let mut form = hidden_inputs(&page.body);
        assert!(
            form.iter()
                .any(|(name, _)| name == "lt")
                && form
                    .iter()
                    .any(|(name, _)| name == "csrfmiddlewaretoken"),
            "the CAS login page has no login ticket or CSRF token: {}",
            page.describe()
        );
        form.push(("username".into(), username.into()));
        form.push(("password".into(), password.into()));
        let form: Vec<(&str, &str)> = form
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        post_form(browser, login_url, &form).await
    }

    /// Signs in at CAS and returns the callback URL CAS sends the browser to, not called.
    pub async fn sign_in(
        &self,
        browser: &reqwest::Client,
        gh: &Gatehouse,
        login_url: &str,
        username: &str,
        password: &str,
    ) -> String {
        let page = self
            .submit_login(browser, login_url, username, password)
            .await;
        let callback = page.assert_redirect();
        assert!(
            callback.starts_with(&gh.url),
            "CAS should send the browser back to {}: {}",
            gh.url,
            page.describe()
        );
        assert!(
            query_param(&callback, "ticket").is_some(),
            "no ticket: {callback}"
        );
        assert!(
            query_param(&callback, "state").is_some(),
            "no state: {callback}"
        );
        callback
    }
}

/// `name`/`value` of the `<input type="hidden">` elements of a page (Django renders
/// attributes with double quotes and escapes values as HTML).
fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for tag in html.split("<input").skip(1) {
        let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
        if !tag.contains(r#"type="hidden""#) {
            continue;
        }
        let attr = |name: &str| {
            let key = format!(" {name}=\"");
            tag.find(&key).map(|start| {
                let rest = &tag[start + key.len()..];
                let value = &rest[..rest.find('"').unwrap_or(rest.len())];
                value
                    .replace("&amp;", "&")
                    .replace("&quot;", "\"")
                    .replace("&#x27;", "'")
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
            })
        };
        if let Some(name) = attr("name") {
            found.push((name, attr("value").unwrap_or_default()));
        }
    }
    found
}

/// The connection config for the shared server, allowed domain `good.test`.
pub fn cas_config(cas: &CasServer) -> Value {
    json!({ "server_url": cas.cas_url, "allowed_domains": ["good.test"] })
}

fn start() -> CasProcess {
    let dir = repo_root().join("tests/cas-server");
    let log = std::env::temp_dir().join(format!(
        "gatehouse-test-cas-server-{}.log",
        std::process::id()
    ));
    let stderr = File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
    let mut child = Command::new("python3")
        .args(["cas-server.py", "--port", "0"])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("start python3 cas-server.py in {}: {e}", dir.display()));
    let stdin = child
        .stdin
        .take()
        .expect("CAS server stdin");
    let stdout = child
        .stdout
        .take()
        .expect("CAS server stdout");
    let (tx, rx) = mpsc::channel::<Value>();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    if value.get("cas_url").is_some() {
                        let _ = tx.send(value);
                        sent = true;
                    }
                }
            }
        }
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(ready) => {
            let server = CasServer {
                cas_url: ready["cas_url"]
                    .as_str()
                    .expect("cas_url")
                    .to_owned(),
                version: ready["version"]
                    .as_str()
                    .unwrap_or("unknown")
                    .to_owned(),
                log,
            };
            eprintln!("CAS server: {} at {}", server.version, server.cas_url);
            CasProcess {
                server,
                _child: child,
                _stdin: stdin,
            }
        }
        Err(e) => {
            let _ = child.kill();
            panic!(
                "cas-server.py did not print its ready line within {START_TIMEOUT:?} ({e}); its log:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
    }
}
