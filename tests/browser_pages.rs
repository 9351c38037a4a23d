//! Gatehouse's sign-in pages in a real browser: Debian's Chromium (`/usr/bin/chromium`,
//! headless) driven by playwright-core from `tests/browser/journeys.mjs`. Each test starts
//! Gatehouse on SQLite with a tenant that has an OIDC connection to the test IdP and the email
//! code switched on, sends mail through the test SMTP server, and has the script click through
//! one whole sign-in. The script takes a full-page screenshot of every page it sees, kept under
//! `target/browser-artifacts/<journey>/<nn>-<page>.png`, and checks each Gatehouse page's
//! visible text and forms; this side checks the screenshots, the console, the requests and the
//! session the browser ends with.
//!
//! Needs Debian's `chromium` package (`GATEHOUSE_TEST_CHROMIUM` names another binary) and, on
//! the first run, npm to install playwright-core into `tests/browser/node_modules`.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::smtp::SmtpServer;
use common::*;
use serde_json::{json, Value};

// The browser runs one journey at a time: the machines have two cores.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const JOURNEY_TIMEOUT: Duration = Duration::from_secs(90);
/// Screenshots are as wide as the window and at least as high. A blank one is under 4 KB (2 KB
/// narrow), one with a lone heading about 6 KB (5 KB); a page with a form is several times that.
const WIDE: Shot = Shot {
    width: 1024,
    height: 720,
    min_bytes: 12 * 1024,
};
/// Each Gatehouse page again, as a phone shows it.
const NARROW: Shot = Shot {
    width: 360,
    height: 720,
    min_bytes: 8 * 1024,
};

struct Shot {
    width: u32,
    height: u32,
    min_bytes: usize,
}

// ---------------------------------------------------------------------------------------------
// journeys

#[tokio::test]
async fn email_code_journey() {
    let site = Site::start().await;
    let email = format!("{}@guests.example", unique("guest-"));

    let result = site
        .journey("email-code", &email, "")
        .await;

    assert_pages(
        &result,
        &[
            "choice",
            "standard-login",
            "code-sent",
            "wrong-code",
            "signed-in",
        ],
    );
    site.assert_signed_in(&result, &email, "email-code")
        .await;
}

#[tokio::test]
async fn email_link_journey() {
    let site = Site::start().await;
    // A long address with no place to break a line: it must still fit a phone's screen.
    let email = format!("{}@guests.example", unique("alexandra.konstantinopoulou."));

    let result = site
        .journey("email-link", &email, "")
        .await;

    assert_pages(
        &result,
        &[
            "choice",
            "standard-login",
            "code-sent",
            "confirm-link",
            "signed-in",
        ],
    );
    site.assert_signed_in(&result, &email, "email-code")
        .await;
}

#[tokio::test]
async fn sso_journey() {
    let site = Site::start().await;
    let login = unique("member-");

    let result = site.journey("sso", "", &login).await;

    assert_pages(&result, &["choice", "idp-login", "signed-in"]);
    site.assert_signed_in(&result, &format!("{login}@good.test"), "okta")
        .await;
}

#[tokio::test]
async fn sso_required_journey() {
    let site = Site::start().await;
    let login = unique("member-");
    let email = format!("{login}@good.test");

    let result = site
        .journey("sso-required", &email, &login)
        .await;

    assert_pages(
        &result,
        &[
            "choice",
            "standard-login",
            "sso-required",
            "idp-login",
            "signed-in",
        ],
    );
    site.assert_signed_in(&result, &email, "okta")
        .await;
}

#[tokio::test]
async fn email_code_journey_to_an_app_elsewhere() {
    let site = Site::start().await;
    // The same Gatehouse under another host name is another origin for the browser.
    let app_url = format!("{}/healthz", site.gh.url.replace("127.0.0.1", "localhost"));
    let slug = site
        .tenant_like_this_one(&app_url, &[])
        .await;
    let email = format!("{}@guests.example", unique("guest-"));

    let result = site
        .journey_at(&slug, &app_url, "email-code-elsewhere", &email, "")
        .await;

    assert_pages(&result, &["choice", "standard-login", "code-sent"]);
    assert_eq!(result["outcome"]["landed"], json!(app_url), "{result:#}");
    assert_eq!(result["outcome"]["status"], json!(200), "{result:#}");
    site.gh
        .audit_until(&slug, &[("type", "login.succeeded")], "the sign-in", |e| e.len() == 1)
        .await;
}

#[tokio::test]
async fn discovery_journey() {
    let site = Site::start().await;
    // A second connection, so the choice page offers the email field.
    let slug = site
        .tenant_like_this_one(&site.app_url, &["eu.good.test"])
        .await;
    let login = unique("member-");
    let email = format!("{login}@good.test");

    let result = site
        .journey_at(&slug, &site.app_url, "discover", &email, &login)
        .await;

    assert_pages(&result, &["choice", "idp-login", "signed-in"]);
    let session = &result["outcome"];
    assert_eq!(session["tenant"], json!(slug), "{session:#}");
    assert_eq!(session["email"], json!(email), "{session:#}");
    assert_eq!(session["connection_id"], json!("okta"), "{session:#}");
}

/// The script's page checks, run on a page built to break each of them, report each.
#[tokio::test]
async fn page_checks_catch_a_broken_page() {
    let result = run_script(&json!({ "journey": "self-check" }), None).await;

    let problems: Vec<String> = result["outcome"]["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            p.as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let expected = [
        "the html element has no lang",
        "the page has no title",
        "2 h1 headings",
        "<input name=\"email\"> has no label",
        "<input> has no label",
        "<input> has no name",
        "a button without text",
        "goes nowhere",
        "an error with markup inside",
        "sticks out of the page's card",
        "template marker",
        "unfilled value",
        "Rust debug text",
        "markup shown as text",
    ];
    for wanted in expected {
        assert!(
            problems
                .iter()
                .any(|p| p.contains(wanted)),
            "the checks missed {wanted:?}; they reported {problems:#?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// the site under test

/// Gatehouse on SQLite sending mail to the test SMTP server, with one tenant that has an OIDC
/// connection to the test IdP (members: `good.test`) and the email code for guests.
struct Site {
    gh: Gatehouse,
    idp: &'static Idp,
    smtp: &'static SmtpServer,
    slug: String,
    tenant: String,
    label: String,
    app_url: String,
}

impl Site {
    async fn start() -> Site {
        let smtp = SmtpServer::shared().await;
        let idp = Idp::shared().await;
        let gh = Gatehouse::start_with(
            Store::Sqlite,
            Options {
                env: smtp.env(),
                ..Options::default()
            },
        )
        .await;

        let slug = unique("b-");
        // An ampersand and quotes, to see them shown as typed and never as entities.
        let tenant = "Acme & Söhne \"Test\"".to_owned();
        // The session API as the app (as in the README's quickstart): landing there shows who
        // the browser signed in as.
        let app_url = gh.url("/api/v1/session");
        gh.create_tenant(&slug, &tenant, &app_url)
            .await;
        let label = "Acme Okta".to_owned();
        let (client_id, secret) = idp
            .register_client(&[gh.callback_url(&slug, "okta")], false)
            .await;
        let config = json!({
            "discovery_url": idp.discovery_url(),
            "client_id": client_id,
            "client_secret": secret,
            "allowed_domains": ["good.test"],
        });
        gh.put_oidc_connection(&slug, "okta", &label, config)
            .await;
        let policy = json!({
            "standard_methods": ["email_code"],
            "guests_allowed": true,
            "enforce_sso": true,
        });
        gh.admin_put(&format!("/api/v1/tenants/{slug}/login-policy"), &policy)
            .await
            .assert_status(200);

        Site {
            gh,
            idp,
            smtp,
            slug,
            tenant,
            label,
            app_url,
        }
    }

    /// Another tenant like the site's (same name, OIDC connection `okta` and policy) with
    /// this app URL; with `more_domains`, a second connection `okta-more` taking them.
    async fn tenant_like_this_one(&self, app_url: &str, more_domains: &[&str]) -> String {
        let slug = unique("b-");
        self.gh
            .create_tenant(&slug, &self.tenant, app_url)
            .await;
        let mut connections = vec![("okta", self.label.clone(), vec!["good.test"])];
        if !more_domains.is_empty() {
            connections.push(("okta-more", format!("{} More", self.label), more_domains.to_vec()));
        }
        for (id, label, domains) in connections {
            let (client_id, secret) = self
                .idp
                .register_client(&[self.gh.callback_url(&slug, id)], false)
                .await;
            let config = json!({
                "discovery_url": self.idp.discovery_url(),
                "client_id": client_id,
                "client_secret": secret,
                "allowed_domains": domains,
            });
            self.gh
                .put_oidc_connection(&slug, id, &label, config)
                .await;
        }
        let policy = json!({
            "standard_methods": ["email_code"],
            "guests_allowed": true,
            "enforce_sso": true,
        });
        self.gh
            .admin_put(&format!("/api/v1/tenants/{slug}/login-policy"), &policy)
            .await
            .assert_status(200);
        slug
    }

    /// Runs one journey of the script against this site and returns its result.
    async fn journey(&self, journey: &str, email: &str, idp_login: &str) -> Value {
        self.journey_at(&self.slug, &self.app_url, journey, email, idp_login)
            .await
    }

    /// [`Site::journey`] at another tenant of the site's Gatehouse.
    async fn journey_at(
        &self,
        slug: &str,
        app_url: &str,
        journey: &str,
        email: &str,
        idp_login: &str,
    ) -> Value {
        let config = json!({
            "journey": journey,
            "gatehouse": self.gh.url,
            "slug": slug,
            "tenant": self.tenant,
            "ssoLabel": self.label,
            "appUrl": app_url,
            "email": email,
            "idpLogin": idp_login,
            "idpOrigin": self.idp.issuer,
        });
        run_script(&config, Some(self.smtp)).await
    }

    /// The browser ended on Gatehouse's session API as this person, and its session cookie
    /// (HttpOnly, SameSite=Lax) works from outside the browser too.
    async fn assert_signed_in(&self, result: &Value, email: &str, connection: &str) {
        let session = &result["outcome"];
        assert_eq!(session["tenant"], json!(self.slug), "{session:#}");
        assert_eq!(session["email"], json!(email), "{session:#}");
        assert_eq!(session["connection_id"], json!(connection), "{session:#}");

        let cookie = &result["session_cookie"];
        assert_eq!(
            cookie["httpOnly"],
            json!(true),
            "session cookie: {cookie:#}"
        );
        assert_eq!(
            cookie["sameSite"],
            json!("Lax"),
            "session cookie: {cookie:#}"
        );
        let value = cookie["value"]
            .as_str()
            .expect("a session cookie in the browser");
        let response = client()
            .get(self.gh.url("/api/v1/session"))
            .header("Cookie", format!("gatehouse_session={value}"))
            .send()
            .await
            .expect("GET /api/v1/session");
        let page = Page::read(&self.gh.url("/api/v1/session"), response).await;
        page.assert_status(200);
        assert_eq!(
            page.json()["user_id"],
            session["user_id"],
            "{}",
            page.describe()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// running the script

/// Runs tests/browser/journeys.mjs with `config` (plus the browser and the artifacts folder),
/// answering its mail requests from `smtp`; panics with its report unless it succeeds.
async fn run_script(config: &Value, smtp: Option<&SmtpServer>) -> Value {
    let dir = repo_root().join("tests/browser");
    npm_ci_once(&dir, &["playwright-core"]);
    let journey = config["journey"]
        .as_str()
        .expect("journey")
        .to_owned();
    let artifacts = artifacts_dir().join(&journey);
    let mut config = config.clone();
    config["chromium"] = json!(chromium());
    config["artifacts"] = json!(artifacts);

    let _one_at_a_time = BROWSER.lock().await;
    // A fresh folder: no screenshot of an earlier run may stand in for one of this run.
    let _ = fs::remove_dir_all(&artifacts);
    fs::create_dir_all(&artifacts).expect("create the artifacts folder");
    let log = artifacts.join("journey.log");
    let mut child = Command::new(std::env::var("GATEHOUSE_TEST_NODE").unwrap_or("node".into()))
        .arg("journeys.mjs")
        .arg(config.to_string())
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(fs::File::create(&log).expect("create the journey log"))
        .spawn()
        .expect("start node journeys.mjs");
    let mut stdin = child
        .stdin
        .take()
        .expect("script stdin");
    let stdout = child
        .stdout
        .take()
        .expect("script stdout");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let deadline = Instant::now() + JOURNEY_TIMEOUT;
    let mut outcome: Option<Value> = None;
    loop {
        let line = match rx.try_recv() {
            Ok(line) => line,
            Err(mpsc::TryRecvError::Disconnected) => break,
            Err(mpsc::TryRecvError::Empty) => {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!(
                        "journey {journey} did not finish within {JOURNEY_TIMEOUT:?}; its log:\n{}",
                        fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            eprintln!("journey {journey}: {line}");
            continue;
        };
        if message["need"] == json!("mail") {
            let to = message["to"]
                .as_str()
                .expect("mail recipient");
            let mail = smtp
                .expect("this journey needs no mail")
                .mail_to(to)
                .await;
            let answer = json!({ "code": mail.code(), "link": mail.link() });
            writeln!(stdin, "{answer}").expect("answer the script");
        } else {
            outcome = Some(message);
        }
    }
    let status = child
        .wait()
        .expect("wait for the script");
    let log_text = fs::read_to_string(&log).unwrap_or_default();
    let message = outcome.unwrap_or_else(|| {
        panic!("journey {journey} ended ({status}) without a report; its log:\n{log_text}")
    });
    if let Some(error) = message.get("error") {
        panic!(
            "journey {journey} failed at {}: {}\nscreenshot: {}\npage text:\n{}\nreport: {:#}\n\
             log:\n{log_text}",
            message["at"],
            error.as_str().unwrap_or_default(),
            message["failure_screenshot"],
            message["text"]
                .as_str()
                .unwrap_or_default(),
            json!({
                "pages": message["pages"],
                "console_errors": message["console_errors"],
                "failed_requests": message["failed_requests"],
                "unexpected_responses": message["unexpected_responses"],
            }),
        );
    }
    assert!(
        status.success(),
        "journey {journey} exited with {status}; log:\n{log_text}"
    );
    message["result"].clone()
}

/// The pages were these, in this order, each with a real screenshot and no problem; no console
/// error, no failed request and no unexpected error answer from Gatehouse on the way.
fn assert_pages(result: &Value, labels: &[&str]) {
    let pages = result["pages"]
        .as_array()
        .expect("pages");
    let seen: Vec<&str> = pages
        .iter()
        .map(|p| p["label"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(seen, labels, "pages seen: {pages:#?}");

    let mut shots = Vec::new();
    for (i, page) in pages.iter().enumerate() {
        let path = PathBuf::from(
            page["screenshot"]
                .as_str()
                .expect("screenshot path"),
        );
        let name = format!("{:02}-{}.png", i + 1, labels[i]);
        assert_eq!(
            path.file_name()
                .and_then(|n| n.to_str()),
            Some(name.as_str()),
            "{page:#}"
        );
        assert_eq!(
            page["problems"],
            json!([]),
            "problems on {}: {page:#}",
            labels[i]
        );
        assert_screenshot(&path, &WIDE);
        shots.push(path);
        // Gatehouse's own pages (not the IdP's, not the JSON it lands on) also narrow.
        if let Some(narrow) = page["narrow_screenshot"].as_str() {
            let narrow = PathBuf::from(narrow);
            assert_screenshot(&narrow, &NARROW);
            shots.push(narrow);
        }
    }
    shots.sort();
    // Nothing else (an older run's screenshot) sits beside them.
    let folder = shots[0]
        .parent()
        .expect("artifacts folder");
    let mut on_disk: Vec<PathBuf> = fs::read_dir(folder)
        .expect("read the artifacts folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "png")
        })
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, shots, "screenshots in {}", folder.display());

    assert_eq!(
        result["console_errors"],
        json!([]),
        "console errors: {result:#}"
    );
    let gatehouse_failures: Vec<&Value> = result["failed_requests"]
        .as_array()
        .expect("failed_requests")
        .iter()
        .filter(|r| r["gatehouse"] == json!(true))
        .collect();
    assert!(
        gatehouse_failures.is_empty(),
        "failed requests to Gatehouse: {gatehouse_failures:#?}"
    );
    assert_eq!(
        result["unexpected_responses"],
        json!([]),
        "Gatehouse answered an error no step expected: {result:#}"
    );
}

/// A PNG of the window's width, at least its height, and not close to blank.
fn assert_screenshot(path: &Path, shot: &Shot) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
        "{} is not a PNG",
        path.display()
    );
    let width = u32::from_be_bytes(
        bytes[16..20]
            .try_into()
            .expect("4 bytes"),
    );
    let height = u32::from_be_bytes(
        bytes[20..24]
            .try_into()
            .expect("4 bytes"),
    );
    assert!(
        width == shot.width && height >= shot.height,
        "{} is {width}x{height}, expected {}x{} or taller",
        path.display(),
        shot.width,
        shot.height
    );
    assert!(
        bytes.len() >= shot.min_bytes,
        "{} has only {} bytes: a blank page?",
        path.display(),
        bytes.len()
    );
}

/// `target/browser-artifacts`, beside the binaries under test.
fn artifacts_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_gatehouse"))
        .parent()
        .and_then(Path::parent)
        .expect("the gatehouse binary lives in target/<profile>/")
        .join("browser-artifacts")
}

/// Debian's Chromium, or the binary GATEHOUSE_TEST_CHROMIUM names.
fn chromium() -> String {
    let path = std::env::var("GATEHOUSE_TEST_CHROMIUM").unwrap_or("/usr/bin/chromium".into());
    assert!(
        Path::new(&path).exists(),
        "{path} is missing: these tests need Debian's Chromium \
         (sudo apt-get install -y chromium), or GATEHOUSE_TEST_CHROMIUM set to a Chromium binary"
    );
    path
}
