//! The cases, written once and run for every [`Subject`]. Each starts its own Gatehouse
//! (SQLite: the protocol suites already cover both stores) and its own tenants, and prints one
//! report line per outcome.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use serde_json::{json, Value};

use crate::common::{browser, get, Gatehouse, Options, Store};
use crate::proxy::{Fault, Malformed};
use crate::subject::*;

/// Gatehouse's outbound time limit in the slow-upstream case (GATEHOUSE_OUTBOUND_TIMEOUT_SECS).
const OUTBOUND_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the slow upstream takes: far past the limit and past the harness's own HTTP
/// timeout, so a host that does not give up shows as a hung request, not as a late success.
const SLOW_UPSTREAM_DELAY: Duration = Duration::from_secs(40);
/// Slack for the host between its time limit and its answer to the browser.
const TIMEOUT_SLACK: Duration = Duration::from_secs(4);
/// "Enormous": 1 MiB in a form body. A query cannot carry that much: the `http` crate (under
/// reqwest, as under most servers) refuses URIs of 64 KiB or more, so a query callback gets
/// 60 KiB, still far past the callback route's 16 KiB limit.
const ENORMOUS_FORM: usize = 1024 * 1024;
const ENORMOUS_QUERY: usize = 60 * 1024;

/// One line of the conformance report.
pub fn report<S: Subject>(case: &str, outcome: impl AsRef<str>) {
    println!(
        "conformance | {:<6} | {:<26} | {}",
        S::PROTOCOL,
        case,
        outcome.as_ref()
    );
}

// ---------------------------------------------------------------------------------------------
// 1. normal

/// The IdP's answer, delivered in the browser that started the login, signs a new (JIT) user
/// in; exactly one login.succeeded, user.provisioned and session.started are recorded.
pub async fn normal_login<S: Subject>() {
    let subject = S::shared().await;
    let gh = start_gatehouse(&subject, Vec::new()).await;
    let connection = subject.tenant(&gh, None).await;

    let browser = browser();
    let signed = subject
        .sign_in(&gh, &connection, &browser, 0)
        .await
        .expect_callback("normal");
    let delivery = signed.callback.deliver(&browser).await;
    let session = assert_signed_in::<S>(&gh, &connection, &browser, &delivery, &signed.email).await;

    let succeeded = exactly_one(&gh, &connection, "login.succeeded").await;
    assert_eq!(succeeded["protocol"], json!(S::PROTOCOL), "{succeeded:#}");
    assert_eq!(succeeded["user_id"], session["user_id"], "{succeeded:#}");
    exactly_one(&gh, &connection, "user.provisioned").await;
    exactly_one(&gh, &connection, "session.started").await;
    assert_eq!(count(&gh, &connection, "login.failed").await, 0);
    report::<S>(
        "normal",
        format!(
            "signed in {} (JIT user), 1 login.succeeded, 1 session",
            signed.email
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// 2. state and nonce mismatch

/// Logins A and B in two browsers; B's IdP answer delivered with A's state in A's browser
/// (code, ticket or assertion injection). The host's state checks pass (A's state, A's
/// browser), so the plugin must notice that the answer belongs to another login.
pub async fn answer_from_another_login<S: Subject>() {
    let subject = S::shared().await;
    let gh = start_gatehouse(&subject, Vec::new()).await;
    let connection = subject.tenant(&gh, None).await;

    let victim = browser();
    let a = subject
        .sign_in(&gh, &connection, &victim, 0)
        .await
        .expect_callback("login A");
    let attacker = browser();
    let b = subject
        .sign_in(&gh, &connection, &attacker, 1)
        .await
        .expect_callback("login B");
    let injected = b
        .callback
        .with_state(&a.callback.state());
    let delivery = injected.deliver(&victim).await;

    let expect = subject.expect(Situation::ForeignAnswer);
    let event = assert_outcome::<S>(&gh, &connection, &delivery, expect, "").await;
    // Refused on login A's own attempt (the first started): the host let the state through and
    // the plugin caught the foreign answer.
    let started = gh
        .audit(&connection.slug, &[("type", "login.started")])
        .await;
    assert_eq!(
        started.last().map(|e| &e["attempt_id"]),
        Some(&event["attempt_id"]),
        "the refusal should be login A's attempt: {started:#?}"
    );
    gh.assert_no_session(&victim).await;
    assert_eq!(count(&gh, &connection, "login.succeeded").await, 0);
    assert_eq!(count(&gh, &connection, "user.provisioned").await, 0);
    assert_eq!(count(&gh, &connection, "session.started").await, 0);
    report::<S>(
        "answer_from_another_login",
        format!("{} on login A's attempt", refusal_line(&delivery, &event)),
    );
}

/// A genuine answer with a state Gatehouse never issued is refused by the host
/// (`state_mismatch`) before the plugin sees it, and does not spoil the real login: the
/// genuine callback still signs in afterwards.
pub async fn forged_state<S: Subject>() {
    let subject = S::shared().await;
    let gh = start_gatehouse(&subject, Vec::new()).await;
    let connection = subject.tenant(&gh, None).await;

    let browser = browser();
    let signed = subject
        .sign_in(&gh, &connection, &browser, 0)
        .await
        .expect_callback("forged state");
    let forged = signed
        .callback
        .with_state("Zm9yZ2VkLXN0YXRlLW5vYm9keS1pc3N1ZWQtdGhpcy0wMTIzNDU2");
    let delivery = forged.deliver(&browser).await;
    let event = assert_outcome::<S>(
        &gh,
        &connection,
        &delivery,
        refused("state_mismatch", 400),
        "",
    )
    .await;
    gh.assert_no_session(&browser).await;
    let line = refusal_line(&delivery, &event);

    let delivery = signed.callback.deliver(&browser).await;
    assert_signed_in::<S>(&gh, &connection, &browser, &delivery, &signed.email).await;
    exactly_one(&gh, &connection, "login.succeeded").await;
    report::<S>(
        "forged_state",
        format!("{line}; the genuine callback then signs in"),
    );
}

// ---------------------------------------------------------------------------------------------
// 3. replayed callbacks

/// The same callback twice in the same browser: the first signs in, the second is refused
/// (`state_reused`). Then the used answer under a fresh login's state, in another browser:
/// refused by the plugin or the IdP. One session in all.
pub async fn replayed_callback<S: Subject>() {
    let subject = S::shared().await;
    let gh = start_gatehouse(&subject, Vec::new()).await;
    let connection = subject.tenant(&gh, None).await;

    let browser = browser();
    let signed = subject
        .sign_in(&gh, &connection, &browser, 0)
        .await
        .expect_callback("replay");
    let first = signed.callback.deliver(&browser).await;
    assert_signed_in::<S>(&gh, &connection, &browser, &first, &signed.email).await;
    let again = signed.callback.deliver(&browser).await;
    let event =
        assert_outcome::<S>(&gh, &connection, &again, refused("state_reused", 400), "").await;
    let same_browser = refusal_line(&again, &event);

    let thief = crate::common::browser();
    let fresh = subject
        .sign_in(&gh, &connection, &thief, 1)
        .await
        .expect_callback("a second login");
    let replayed = signed
        .callback
        .with_state(&fresh.callback.state());
    let delivery = replayed.deliver(&thief).await;
    let expect = subject.expect(Situation::ReplayedAnswer);
    let event = assert_outcome::<S>(&gh, &connection, &delivery, expect, "").await;
    gh.assert_no_session(&thief).await;

    exactly_one(&gh, &connection, "login.succeeded").await;
    exactly_one(&gh, &connection, "session.started").await;
    report::<S>(
        "replayed_callback",
        format!(
            "again: {same_browser}; at a second login: {}; 1 session",
            refusal_line(&delivery, &event)
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// 4. oversized input

/// A callback with an enormous parameter (1 MiB of form, 60 KiB of query) gets a clean 4xx
/// (never a 500, never a dropped connection) and consumes nothing; the answer parameter blown
/// up to just under the route's limit is refused with a reason; and the genuine callback
/// still signs in afterwards.
pub async fn oversized_input<S: Subject>() {
    let subject = S::shared().await;
    let gh = start_gatehouse(&subject, Vec::new()).await;
    let connection = subject.tenant(&gh, None).await;

    let browser = browser();
    let signed = subject
        .sign_in(&gh, &connection, &browser, 0)
        .await
        .expect_callback("oversized");
    let enormous_size = match signed.callback {
        Callback::Query { .. } => ENORMOUS_QUERY,
        Callback::FormPost { .. } => ENORMOUS_FORM,
    };
    let enormous = signed
        .callback
        .with_param("padding", &"A".repeat(enormous_size));
    let delivery = enormous
        .try_deliver(&browser)
        .await
        .unwrap_or_else(|e| {
            panic!("a callback with {enormous_size} bytes of padding got {e}, not a clean 4xx")
        });
    let page = delivery.last();
    assert!(
        page.status.is_client_error(),
        "a callback with {enormous_size} bytes of padding should get a 4xx: {}",
        delivery.describe()
    );
    for page in &delivery.pages {
        page.assert_no_session_cookie();
    }
    gh.assert_no_session(&browser).await;
    let enormous_line = format!(
        "{} KiB parameter: {} {:?}",
        enormous_size / 1024,
        page.status.as_u16(),
        visible_text(&page.body)
    );

    let other = crate::common::browser();
    let second = subject
        .sign_in(&gh, &connection, &other, 1)
        .await
        .expect_callback("oversized answer");
    // Just under the route's limit: 12 KiB of query (the callback takes 16 KiB), 300 KiB of
    // form (the ACS takes 320 KiB).
    let size: usize = match second.callback {
        Callback::Query { .. } => 12 * 1024,
        Callback::FormPost { .. } => 300 * 1024,
    };
    // The real answer, padded: it still looks like one (an `ST-` ticket, base64) up front.
    let answer = second
        .callback
        .param(S::ANSWER_PARAM)
        .unwrap_or_else(|| panic!("no {} in the callback", S::ANSWER_PARAM));
    let padded = format!("{answer}{}", "A".repeat(size.saturating_sub(answer.len())));
    let oversized = second
        .callback
        .with_param(S::ANSWER_PARAM, &padded);
    let delivery = oversized.deliver(&other).await;
    let expect = subject.expect(Situation::OversizedAnswer);
    let event = assert_outcome::<S>(&gh, &connection, &delivery, expect, "").await;
    gh.assert_no_session(&other).await;
    let oversized_line = format!(
        "{} KiB {}: {}",
        size / 1024,
        S::ANSWER_PARAM,
        refusal_line(&delivery, &event)
    );

    let delivery = signed.callback.deliver(&browser).await;
    assert_signed_in::<S>(&gh, &connection, &browser, &delivery, &signed.email).await;
    exactly_one(&gh, &connection, "login.succeeded").await;
    report::<S>(
        "oversized_input",
        format!("{enormous_line}; {oversized_line}; the genuine callback then signs in"),
    );
}

// ---------------------------------------------------------------------------------------------
// 5. slow upstream

/// The back channel answers only after far longer than Gatehouse's outbound limit (2 s here):
/// the attempt fails within the limit plus slack, as `idp_unreachable`, and the service keeps
/// serving. A login through the same proxy before the fault shows the proxy itself is
/// transparent.
pub async fn slow_upstream<S: Subject>() {
    let subject = S::shared().await;
    let timeout = (
        "GATEHOUSE_OUTBOUND_TIMEOUT_SECS".to_string(),
        OUTBOUND_TIMEOUT.as_secs().to_string(),
    );
    let gh = start_gatehouse(&subject, vec![timeout]).await;
    let proxied = subject.proxy().await;
    control_login(&subject, &gh, &proxied).await;

    proxied.proxy.set_fault(
        &proxied.back_channel_path,
        Fault::Delay(SLOW_UPSTREAM_DELAY),
    );
    let connection = subject
        .tenant(&gh, Some(&proxied))
        .await;
    let browser = browser();
    let Attempt {
        delivery, elapsed, ..
    } = attempt(&subject, &gh, &connection, &browser).await;
    assert!(
        proxied.proxy.hits() >= 1,
        "the plugin never called {} through the proxy",
        proxied.back_channel_path
    );
    assert!(
        elapsed >= OUTBOUND_TIMEOUT - Duration::from_millis(200)
            && elapsed < OUTBOUND_TIMEOUT + TIMEOUT_SLACK,
        "the attempt took {elapsed:?}; expected the outbound limit {OUTBOUND_TIMEOUT:?} \
         (+ at most {TIMEOUT_SLACK:?}): {}",
        delivery.describe()
    );
    let expect = subject.expect(Situation::SlowUpstream);
    let event = assert_outcome::<S>(&gh, &connection, &delivery, expect, "").await;
    gh.assert_no_session(&browser).await;
    get(&crate::common::client(), &gh.url("/readyz"))
        .await
        .assert_status(200);
    report::<S>(
        "slow_upstream",
        format!(
            "{} {:.1}s late: {} after {:.1}s; still serving",
            S::BACK_CHANNEL,
            SLOW_UPSTREAM_DELAY.as_secs_f32(),
            refusal_line(&delivery, &event),
            elapsed.as_secs_f32()
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// 6. malformed upstream

/// The back channel answers 200 with each [`Malformed`] body in turn (garbage, truncated,
/// wrong content type, an HTML page, invalid XML, empty, JSON of the wrong shape): each
/// attempt gets the subject's expected outcome, never a 500 or a panic. Every variant runs
/// (on its own fresh connection) and is reported before the case fails on any of them.
pub async fn malformed_upstream<S: Subject>() {
    let subject = S::shared().await;
    let gh = start_gatehouse(&subject, Vec::new()).await;
    let proxied = subject.proxy().await;
    control_login(&subject, &gh, &proxied).await;

    let mut failures = Vec::new();
    for malformed in Malformed::ALL {
        let variant = format!("malformed:{}", malformed.name());
        let outcome = AssertUnwindSafe(async {
            proxied
                .proxy
                .set_fault(&proxied.back_channel_path, malformed.fault());
            let connection = subject
                .tenant(&gh, Some(&proxied))
                .await;
            let browser = browser();
            let Attempt {
                delivery, email, ..
            } = attempt(&subject, &gh, &connection, &browser).await;
            assert!(
                proxied.proxy.hits() >= 1,
                "the plugin never called {} through the proxy",
                proxied.back_channel_path
            );
            let expect = subject.expect(Situation::Malformed(malformed));
            match expect {
                Expect::SignsIn => {
                    assert_signed_in::<S>(&gh, &connection, &browser, &delivery, &email).await;
                    format!("signed in {email} (the body itself is valid)")
                }
                Expect::Refused { .. } => {
                    let event =
                        assert_outcome::<S>(&gh, &connection, &delivery, expect, &variant).await;
                    gh.assert_no_session(&browser).await;
                    refusal_line(&delivery, &event)
                }
            }
        })
        .catch_unwind()
        .await;
        match outcome {
            Ok(line) => report::<S>(&variant, line),
            Err(panic) => {
                let message = panic_message(&panic);
                report::<S>(&variant, format!("FAILED: {}", first_line(&message)));
                failures.push(format!("{variant}: {message}"));
            }
        }
    }
    proxied.proxy.clear_fault();
    get(&crate::common::client(), &gh.url("/readyz"))
        .await
        .assert_status(200);
    assert!(
        failures.is_empty(),
        "{} malformed-upstream variants failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Shared steps and assertions

/// `gatehouse serve` on SQLite with the subject's environment and `env`.
async fn start_gatehouse<S: Subject>(subject: &S, mut env: Vec<(String, String)>) -> Gatehouse {
    env.extend(subject.gatehouse_env());
    let options = Options {
        env,
        ..Options::default()
    };
    Gatehouse::start_with(Store::Sqlite, options).await
}

/// A login through the subject's proxy before any fault is set must sign in: the proxy
/// forwards faithfully, so what the fault cases see is the fault.
async fn control_login<S: Subject>(subject: &S, gh: &Gatehouse, proxied: &SubjectProxy) {
    let connection = subject.tenant(gh, Some(proxied)).await;
    let browser = browser();
    let signed = subject
        .sign_in(gh, &connection, &browser, 0)
        .await
        .expect_callback("control login through the proxy");
    let delivery = signed.callback.deliver(&browser).await;
    assert_signed_in::<S>(gh, &connection, &browser, &delivery, &signed.email).await;
}

/// Runs a login to its end: the start page when Gatehouse refuses to start it (a back channel
/// used at start, such as SAML metadata), otherwise the delivered callback. Returns what
/// the browser got and how long the step that met the back channel took.
async fn attempt<S: Subject>(
    subject: &S,
    gh: &Gatehouse,
    connection: &Connection,
    browser: &reqwest::Client,
) -> Attempt {
    let started = Instant::now();
    match subject
        .sign_in(gh, connection, browser, 0)
        .await
    {
        Started::Refused(page) => Attempt {
            delivery: Delivery { pages: vec![page] },
            elapsed: started.elapsed(),
            email: String::new(),
        },
        Started::Callback(signed) => {
            let delivering = Instant::now();
            let delivery = signed.callback.deliver(browser).await;
            Attempt {
                delivery,
                elapsed: delivering.elapsed(),
                email: signed.email,
            }
        }
    }
}

/// What [`attempt`] saw.
struct Attempt {
    delivery: Delivery,
    /// Time of the step that met the back channel.
    elapsed: Duration,
    /// Whom the IdP signed in (empty when the login never reached it).
    email: String,
}

/// The delivery ended signed in: 302 to the app URL with a session cookie, and the session
/// API knows the browser as `email` at this tenant and connection.
async fn assert_signed_in<S: Subject>(
    gh: &Gatehouse,
    connection: &Connection,
    browser: &reqwest::Client,
    delivery: &Delivery,
    email: &str,
) -> Value {
    let page = delivery.last();
    assert_eq!(
        page.status.as_u16(),
        302,
        "expected a sign-in: {}",
        delivery.describe()
    );
    assert_eq!(
        page.location().as_deref(),
        Some(connection.app_url.as_str()),
        "{}",
        delivery.describe()
    );
    assert!(
        page.set_cookie("gatehouse_session")
            .is_some(),
        "no session cookie: {}",
        delivery.describe()
    );
    let session = gh.assert_session(browser).await;
    assert_eq!(session["tenant"], json!(connection.slug), "{session:#}");
    assert_eq!(
        session["connection_id"],
        json!(connection.connection_id),
        "{session:#}"
    );
    assert_eq!(session["email"], json!(email), "{session:#}");
    session
}

/// The delivery ended as `expect` says. For a refusal: no session cookie in any answer, an
/// HTML error page with this status (never 500) and an attempt id, and a `login.failed` event
/// of that attempt with exactly this reason and this protocol. Returns the event.
async fn assert_outcome<S: Subject>(
    gh: &Gatehouse,
    connection: &Connection,
    delivery: &Delivery,
    expect: Expect,
    what: &str,
) -> Value {
    let Expect::Refused { reason, status } = expect else {
        panic!("[{what}] assert_outcome checks refusals; a sign-in is assert_signed_in");
    };
    for page in &delivery.pages {
        assert_ne!(
            page.status.as_u16(),
            500,
            "[{what}] a 500: {}",
            delivery.describe()
        );
        page.assert_no_session_cookie();
    }
    let page = delivery.last();
    let attempt = page.assert_error_page(&[page.status.as_u16()]);
    let event = failed_event(gh, connection, &attempt).await;
    assert_eq!(
        (event["outcome"]["reason"].as_str(), page.status.as_u16()),
        (Some(reason), status),
        "[{what}] expected {reason} with status {status}; got {} with {}; event {event:#}\n{}",
        event["outcome"]["reason"],
        page.status,
        delivery.describe()
    );
    assert_eq!(event["protocol"], json!(S::PROTOCOL), "{event:#}");
    assert_eq!(
        event["connection_id"],
        json!(connection.connection_id),
        "{event:#}"
    );
    assert!(
        event["user_id"].is_null(),
        "a refusal with a user: {event:#}"
    );
    event
}

/// The `login.failed` event of this attempt (projections may lag a moment).
async fn failed_event(gh: &Gatehouse, connection: &Connection, attempt: &str) -> Value {
    let events = gh
        .audit_until(
            &connection.slug,
            &[("type", "login.failed")],
            &format!("login.failed of attempt {attempt}"),
            |events| {
                events
                    .iter()
                    .any(|e| e["attempt_id"] == json!(attempt))
            },
        )
        .await;
    events
        .into_iter()
        .find(|e| e["attempt_id"] == json!(attempt))
        .expect("found above")
}

async fn count(gh: &Gatehouse, connection: &Connection, kind: &str) -> usize {
    gh.audit(&connection.slug, &[("type", kind)])
        .await
        .len()
}

/// Waits for an event of this type and asserts it is the only one; returns it.
async fn exactly_one(gh: &Gatehouse, connection: &Connection, kind: &str) -> Value {
    let events = gh
        .audit_until(&connection.slug, &[("type", kind)], kind, |events| {
            !events.is_empty()
        })
        .await;
    assert_eq!(
        events.len(),
        1,
        "expected exactly one {kind} at {}: {events:#?}",
        connection.slug
    );
    events.into_iter().next().expect("one")
}

fn refusal_line(delivery: &Delivery, event: &Value) -> String {
    format!(
        "refused {} {}",
        delivery.last().status.as_u16(),
        event["outcome"]["reason"].as_str().unwrap_or("?")
    )
}

/// The text of a small error page's body (no head, styles or tags), for the report.
fn visible_text(html: &str) -> String {
    let body = html
        .find("<body")
        .map_or(html, |start| &html[start..]);
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(100)
        .collect()
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| {
            panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
        })
        .unwrap_or_else(|| "a panic without a message".to_string())
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}
