//! `gatehouse projections rebuild`: with the server stopped, the read models are emptied and
//! replayed from the event store; after a restart on the same data, the audit log, tenants and
//! connections read exactly as before (audit ids may be renumbered). A rebuild while serving
//! leaves every read-model table equal to what the live projector wrote. On PostgreSQL, two
//! transactions that commit out of position order are both projected, once each.

#[macro_use]
mod common;

use common::*;
use serde_json::{json, Value};

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

on_both_stores!(
    rebuild_keeps_the_read_models,
    rebuild_of_an_empty_store,
    rebuild_while_serving,
    rebuilt_tables_equal_the_live_ones,
    a_crash_mid_projection_leaves_no_gap_and_no_duplicate,
);

/// An audit event without its `id` (a rebuild may renumber it).
fn without_id(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if let Some(map) = e.as_object_mut() {
                map.remove("id");
            }
            e
        })
        .collect()
}

async fn account(idp: &Idp, domain: &str) -> String {
    let login = unique("proj-");
    idp.set_account(
        &login,
        json!({
            "sub": format!("{login}-sub"),
            "email": format!("{login}@{domain}"),
            "email_verified": true,
            "name": format!("Name of {login}"),
        }),
    )
    .await;
    login
}

/// Everything the API shows of a tenant: the tenant, its connection and its audit log.
async fn snapshot(gh: &Gatehouse, tenant: &Tenant) -> (Value, Value, Vec<Value>) {
    let page = gh
        .admin_get(&format!("/api/v1/tenants/{}", tenant.slug))
        .await;
    page.assert_status(200);
    let t = page.json();
    let page = gh
        .admin_get(&format!(
            "/api/v1/tenants/{}/connections/{}",
            tenant.slug, tenant.connection_id
        ))
        .await;
    page.assert_status(200);
    let c = page.json();
    let events = gh.audit(&tenant.slug, &[]).await;
    (t, c, events)
}

async fn rebuild_keeps_the_read_models(store: Store) {
    let idp = Idp::shared().await;
    let mut gh = Gatehouse::start(store).await;
    let first = tenant_with_idp(&gh, idp, false).await;
    let second = tenant_with_idp(&gh, idp, true).await;

    // At the first tenant: a success, a refusal, a replay, a logout.
    let browser1 = browser();
    let login = account(idp, "good.test").await;
    let callback = login_via_idp(&browser1, &gh, idp, &first.slug, &login).await;
    let page = call_callback(&browser1, &callback).await;
    assert_login_succeeded(&page, &first);
    call_callback(&browser1, &callback)
        .await
        .assert_error_page(&[400]);
    gh.logout(&browser1, &first.slug).await;

    let browser2 = browser();
    let bad = account(idp, "bad.test").await;
    let callback = login_via_idp(&browser2, &gh, idp, &first.slug, &bad).await;
    call_callback(&browser2, &callback)
        .await
        .assert_error_page(&[403]);

    // At the second tenant: a success whose session stays open.
    let browser3 = browser();
    let login3 = account(idp, "good.test").await;
    let callback = login_via_idp(&browser3, &gh, idp, &second.slug, &login3).await;
    let page = call_callback(&browser3, &callback).await;
    assert_login_succeeded(&page, &second);
    let session = gh.assert_session(&browser3).await;

    gh.audit_until(
        &first.slug,
        &[],
        "the success, two failures and the logout",
        |events| {
            let count = |kind: &str| {
                events
                    .iter()
                    .filter(|e| e["type"] == json!(kind))
                    .count()
            };
            count("login.succeeded") == 1
                && count("login.failed") == 2
                && count("session.ended") == 1
        },
    )
    .await;
    gh.audit_until(&second.slug, &[], "the success", |events| {
        events
            .iter()
            .any(|e| e["type"] == json!("session.started"))
    })
    .await;

    let before1 = snapshot(&gh, &first).await;
    let before2 = snapshot(&gh, &second).await;
    let failed_before = gh
        .audit(&first.slug, &[("outcome", "failed")])
        .await;
    assert_eq!(failed_before.len(), 2, "{failed_before:#?}");

    gh.stop();
    let output = gh.run(&["projections", "rebuild"]);
    output.assert_success();
    let all_output = format!("{}{}", output.stdout, output.stderr);
    assert!(
        all_output.contains("events applied") && all_output.contains("rebuilt from"),
        "the rebuild should print its progress:\n{}",
        output.describe()
    );
    // It says how many events it replayed, and that is at least what the audit log shows.
    let total: Option<u64> = all_output
        .split("rebuilt from ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok());
    let total = total.unwrap_or_else(|| {
        panic!(
            "no \"rebuilt from N events\" in the output:\n{}",
            output.describe()
        )
    });
    assert!(
        total as usize >= before1.2.len() + before2.2.len(),
        "the rebuild replayed {total} events, fewer than the {} audit events:\n{}",
        before1.2.len() + before2.2.len(),
        output.describe()
    );

    gh.restart().await;
    let after1 = snapshot(&gh, &first).await;
    let after2 = snapshot(&gh, &second).await;
    for ((before, after), tenant) in [(&before1, &after1), (&before2, &after2)]
        .into_iter()
        .zip([&first, &second])
    {
        assert_eq!(
            before.0, after.0,
            "GET tenant {} changed across the rebuild",
            tenant.slug
        );
        assert_eq!(
            before.1, after.1,
            "GET connection of {} changed across the rebuild",
            tenant.slug
        );
        assert_eq!(
            without_id(&before.2),
            without_id(&after.2),
            "the audit log of {} changed across the rebuild.\nbefore:\n{}\nafter:\n{}",
            tenant.slug,
            serde_json::to_string_pretty(&before.2).unwrap_or_default(),
            serde_json::to_string_pretty(&after.2).unwrap_or_default()
        );
    }
    // Filters still work on the rebuilt log.
    let failed_after = gh
        .audit(&first.slug, &[("outcome", "failed")])
        .await;
    assert_eq!(without_id(&failed_before), without_id(&failed_after));
    let email = format!("{login}@good.test");
    let by_email = gh
        .audit(&first.slug, &[("email", email.as_str())])
        .await;
    assert!(
        by_email
            .iter()
            .any(|e| e["type"] == json!("login.succeeded")),
        "email filter after the rebuild: {by_email:#?}"
    );

    // The open session still stands, and new logins are recorded after the rebuilt ones.
    let again = gh.assert_session(&browser3).await;
    assert_eq!(again, session, "the session changed across the rebuild");
    let login4 = account(idp, "good.test").await;
    let browser4 = browser();
    let callback = login_via_idp(&browser4, &gh, idp, &first.slug, &login4).await;
    let page = call_callback(&browser4, &callback).await;
    assert_login_succeeded(&page, &first);
    let events = gh
        .audit_until(&first.slug, &[], "the new login", |events| {
            events
                .iter()
                .filter(|e| e["type"] == json!("login.succeeded"))
                .count()
                == 2
        })
        .await;
    assert_eq!(
        events[0]["type"],
        json!("session.started"),
        "the newest event should be the new session: {events:#?}"
    );
    assert_eq!(
        without_id(&events[events.len() - before1.2.len()..]),
        without_id(&before1.2),
        "the old events should follow the new ones unchanged: {events:#?}"
    );

    // A second rebuild of the same events is idempotent.
    gh.stop();
    gh.run(&["projections", "rebuild"])
        .assert_success();
    let events_before = events;
    gh.restart().await;
    let events_after = gh.audit(&first.slug, &[]).await;
    assert_eq!(
        without_id(&events_before),
        without_id(&events_after),
        "a second rebuild changed the audit log"
    );
}

async fn rebuild_of_an_empty_store(store: Store) {
    let mut gh = Gatehouse::start(store).await;
    gh.stop();
    let output = gh.run(&["projections", "rebuild"]);
    output.assert_success();
    assert!(
        output
            .stderr
            .contains("rebuilt from 0 events")
            || output
                .stdout
                .contains("rebuilt from 0 events"),
        "{}",
        output.describe()
    );
    gh.restart().await;
    let slug = unique("t-");
    gh.create_tenant(&slug, "After an empty rebuild", "https://app.example.test/")
        .await;
}

/// A rebuild while the server runs (and keeps serving) succeeds and leaves the same audit log.
async fn rebuild_while_serving(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    let browser = browser();
    let login = account(idp, "good.test").await;
    let callback = login_via_idp(&browser, &gh, idp, &tenant.slug, &login).await;
    assert_login_succeeded(&call_callback(&browser, &callback).await, &tenant);
    let before = gh
        .audit_until(&tenant.slug, &[], "session.started", |events| {
            events
                .iter()
                .any(|e| e["type"] == json!("session.started"))
        })
        .await;
    let output = gh.run(&["projections", "rebuild"]);
    output.assert_success();
    let after = gh.audit(&tenant.slug, &[]).await;
    assert_eq!(
        without_id(&before),
        without_id(&after),
        "the audit log changed across a rebuild while serving:\n{}",
        output.describe()
    );
    gh.assert_session(&browser).await;
    // The server keeps working and recording.
    let second = account(idp, "good.test").await;
    let browser2 = common::browser();
    let callback = login_via_idp(&browser2, &gh, idp, &tenant.slug, &second).await;
    assert_login_succeeded(&call_callback(&browser2, &callback).await, &tenant);
    gh.audit_until(
        &tenant.slug,
        &[("type", "login.succeeded")],
        "two successes",
        |e| e.len() == 2,
    )
    .await;
}

/// Every read-model table: the audit log and each `*_view` table, whatever their columns.
fn read_model_tables(gh: &Gatehouse) -> Vec<String> {
    let sql = match gh.store {
        Store::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND \
                          (name = 'audit_log' OR name LIKE '%\\_view' ESCAPE '\\') ORDER BY name"
        }
        Store::Postgres => {
            "SELECT table_name FROM information_schema.tables WHERE \
                            table_schema = 'public' AND (table_name = 'audit_log' OR \
                            table_name LIKE '%\\_view' ESCAPE '\\') ORDER BY table_name"
        }
    };
    gh.sql(sql)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The rows of `table` as text, without the audit log's row id (a rebuild renumbers it): the
/// audit log in id order (its order matters), the others sorted.
fn table_rows(gh: &Gatehouse, table: &str) -> Vec<String> {
    let columns_sql = match gh.store {
        Store::Sqlite => format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"),
        Store::Postgres => format!(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' \
             AND table_name = '{table}' ORDER BY ordinal_position"
        ),
    };
    let columns: Vec<String> = gh
        .sql(&columns_sql)
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(!columns.is_empty(), "{table} has no columns");
    let kept: Vec<&str> = columns
        .iter()
        .map(String::as_str)
        .filter(|c| !(table == "audit_log" && *c == "id"))
        .collect();
    let order = if table == "audit_log" { "id" } else { "1" };
    let mut rows: Vec<String> = gh
        .sql(&format!(
            "SELECT {} FROM {table} ORDER BY {order}",
            kept.join(", ")
        ))
        .lines()
        .map(str::to_owned)
        .collect();
    if table != "audit_log" {
        rows.sort();
    }
    rows
}

fn read_models(gh: &Gatehouse) -> Vec<(String, Vec<String>)> {
    read_model_tables(gh)
        .into_iter()
        .map(|table| {
            let rows = table_rows(gh, &table);
            (table, rows)
        })
        .collect()
}

/// Logins of every kind at two tenants, a connection removed and one renamed: rows in every
/// read model.
async fn varied_activity(gh: &Gatehouse, idp: &Idp) {
    let first = tenant_with_idp(gh, idp, false).await;
    let second = tenant_with_idp(gh, idp, true).await;
    for (tenant, domain) in [
        (&first, "good.test"),
        (&second, "good.test"),
        (&first, "bad.test"),
    ] {
        let browser = browser();
        let login = account(idp, domain).await;
        let callback = login_via_idp(&browser, gh, idp, &tenant.slug, &login).await;
        let page = call_callback(&browser, &callback).await;
        if domain == "good.test" {
            assert_login_succeeded(&page, tenant);
            gh.logout(&browser, &tenant.slug).await;
        }
    }
    // A flow abandoned at the IdP; a connection renamed, another configured and removed.
    start_login(&browser(), gh, &second.slug, idp).await;
    let config = json!({
        "discovery_url": idp.discovery_url(),
        "client_id": second.client_id,
        "allowed_domains": ["good.test"],
    });
    let (kept, removed) = (unique("c-"), unique("c-"));
    for (id, label) in [
        (&kept, "Extra"),
        (&kept, "Extra renamed"),
        (&removed, "Removed"),
    ] {
        gh.put_oidc_connection(&second.slug, id, label, config.clone())
            .await;
    }
    let url = gh.url(&format!(
        "/api/v1/tenants/{}/connections/{removed}",
        second.slug
    ));
    let response = gh
        .admin()
        .delete(&url)
        .send()
        .await
        .expect("DELETE the connection");
    assert!(
        response.status().is_success(),
        "DELETE {url}: {}",
        response.status()
    );
}

/// A rebuild while serving leaves every read-model table exactly as the live projector wrote
/// it, the projection position where it was, and the audit chain untouched.
async fn rebuilt_tables_equal_the_live_ones(store: Store) {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(store).await;
    varied_activity(&gh, idp).await;
    gh.projected().await;
    let live = read_models(&gh);
    let names: Vec<&str> = live
        .iter()
        .map(|(t, _)| t.as_str())
        .collect();
    for expected in [
        "audit_log",
        "tenants_view",
        "connections_view",
        "users_view",
        "login_attempts_view",
    ] {
        assert!(names.contains(&expected), "read models found: {names:?}");
    }
    for (table, rows) in &live {
        assert!(
            !rows.is_empty(),
            "the activity should leave rows in {table}"
        );
    }
    let chain_sql = "SELECT tenant, position, event_key FROM audit_chain ORDER BY tenant, position";
    let chain = gh.sql(chain_sql);
    let position_sql = "SELECT txid, position FROM projection_positions";
    let position = gh.sql(position_sql);

    let output = gh.run(&["projections", "rebuild"]);
    output.assert_success();
    assert!(
        output.stderr.contains("events/s"),
        "the rebuild should print its rate: {}",
        output.describe()
    );
    gh.projected().await;
    let rebuilt = read_models(&gh);
    for ((table, before), (_, after)) in live.iter().zip(&rebuilt) {
        assert_eq!(
            before,
            after,
            "{table} differs after the rebuild.\nlive:\n{}\nrebuilt:\n{}",
            before.join("\n"),
            after.join("\n")
        );
    }
    assert_eq!(live.len(), rebuilt.len());
    assert_eq!(
        gh.sql(chain_sql),
        chain,
        "the rebuild changed the audit chain"
    );
    assert_eq!(
        gh.sql(position_sql),
        position,
        "the rebuild ended elsewhere"
    );
    assert!(
        gh.sql("SELECT paused_by FROM projection_positions")
            .trim()
            .is_empty(),
        "the rebuild left its fence"
    );
}

/// A `psql` session kept open, to hold a transaction across steps.
struct PsqlSession {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl PsqlSession {
    fn open(url: &str) -> PsqlSession {
        let mut child = Command::new("psql")
            .arg(url)
            .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start psql");
        let stdin = child.stdin.take().expect("psql stdin");
        let stdout = child
            .stdout
            .take()
            .expect("psql stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        PsqlSession {
            child,
            stdin,
            lines,
        }
    }

    /// Runs `sql` and returns its output lines once it has run.
    fn run(&mut self, sql: &str) -> Vec<String> {
        writeln!(self.stdin, "{sql}\n\\echo __done__").expect("write to psql");
        self.stdin.flush().expect("flush psql");
        let mut out = Vec::new();
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("psql did not finish {sql:?}; got {out:?}"));
            if line == "__done__" {
                return out;
            }
            out.push(line);
        }
    }
}

impl Drop for PsqlSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A copy of a real `login.started` event under a new attempt id, inserted in the session's
/// open transaction; returns its position.
fn insert_started(session: &mut PsqlSession, attempt: &str, template: &str) -> i64 {
    let out = session.run(&format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
         payload, metadata) SELECT aggregate_type, '{attempt}', sequence, event_type, \
         event_version, payload, metadata FROM events WHERE aggregate_type = 'login_attempt' \
         AND aggregate_id = '{template}' AND sequence = 1 RETURNING position;"
    ));
    out.iter()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no position returned: {out:?}"))
}

/// PostgreSQL draws `position` before commit, so a transaction can commit after a
/// higher-numbered one. The projector must neither skip the late one nor apply anything twice.
#[tokio::test]
async fn out_of_order_commits_are_projected_once() {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(Store::Postgres).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    start_login(&browser(), &gh, &tenant.slug, idp).await;
    gh.projected().await;
    let template = gh
        .sql(&format!(
            "SELECT attempt_id FROM login_attempts_view WHERE tenant = '{}'",
            tenant.slug
        ))
        .trim()
        .to_owned();
    assert!(
        !template.is_empty(),
        "the login should have started an attempt"
    );
    let url = gh
        .database_url
        .clone()
        .expect("a Postgres URL");
    let (early, late) = (unique("ooo-early-"), unique("ooo-late-"));

    // The early transaction takes the lower position, the late one commits first.
    let mut a = PsqlSession::open(&url);
    let mut b = PsqlSession::open(&url);
    a.run("BEGIN;");
    let early_position = insert_started(&mut a, &early, &template);
    b.run("BEGIN;");
    let late_position = insert_started(&mut b, &late, &template);
    b.run("COMMIT;");
    assert!(early_position < late_position);

    // While the early transaction is open, the later commit waits: applying it would move
    // the position past the early event for good.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let projected = |attempt: &str| {
        gh.sql(&format!(
            "SELECT count(*) FROM audit_log WHERE attempt_id = '{attempt}'"
        ))
        .trim()
        .to_owned()
    };
    assert_eq!(projected(&late), "0", "applied past an open transaction");
    a.run("COMMIT;");

    gh.projected().await;
    for attempt in [&early, &late] {
        assert_eq!(
            projected(attempt),
            "1",
            "{attempt} should be in the audit log once"
        );
        let chained = gh.sql(&format!(
            "SELECT count(*) FROM audit_chain WHERE event_key = 'login_attempt:{attempt}:1'"
        ));
        assert_eq!(chained.trim(), "1", "{attempt} should be chained once");
        let view = gh.sql(&format!(
            "SELECT count(*) FROM login_attempts_view WHERE attempt_id = '{attempt}'"
        ));
        assert_eq!(view.trim(), "1");
    }
    // The chain took one position per audit row, with no gap, and the projection's position
    // is the last event in commit order.
    let counts = gh.sql(&format!(
        "SELECT (SELECT count(*) FROM audit_chain WHERE tenant = '{0}'), \
         (SELECT position FROM audit_chain_heads WHERE tenant = '{0}'), \
         (SELECT count(*) FROM audit_log WHERE tenant = '{0}')",
        tenant.slug
    ));
    let counts: Vec<&str> = counts.trim().split('|').collect();
    assert_eq!(counts[0], counts[1], "chain rows vs head: {counts:?}");
    assert_eq!(counts[0], counts[2], "chain rows vs audit rows: {counts:?}");
    let last = gh.sql("SELECT max(position) FROM events");
    let recorded = gh.sql("SELECT position FROM projection_positions");
    assert_eq!(last, recorded);
    gh.audit_until(
        &tenant.slug,
        &[("type", "login.started")],
        "both copies",
        |events| events.len() == 3,
    )
    .await;
}

/// A transaction left open in another database of the same server (a report, a dump, a stuck
/// session) does not hold Gatehouse's projection back: only appends to this database's event
/// store are waited for.
#[tokio::test]
async fn a_long_transaction_elsewhere_does_not_hold_the_projection() {
    let idp = Idp::shared().await;
    let gh = Gatehouse::start(Store::Postgres).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    gh.projected().await;
    let url = gh
        .database_url
        .clone()
        .expect("a Postgres URL");
    let elsewhere = match url.rfind('/') {
        Some(i) => format!("{}/postgres", &url[..i]),
        None => panic!("no database in {url}"),
    };
    let mut other = PsqlSession::open(&elsewhere);
    other.run("BEGIN;");
    // An assigned transaction id: the server's oldest running transaction from now on.
    other.run("SELECT pg_current_xact_id();");

    let started = Instant::now();
    start_login(&browser(), &gh, &tenant.slug, idp).await;
    gh.audit_until(
        &tenant.slug,
        &[("type", "login.started")],
        "the login's start, while another database holds a transaction open",
        |events| !events.is_empty(),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the projection waited for another database's transaction"
    );
    other.run("ROLLBACK;");
}

/// One count by SQL.
fn sql_count(gh: &Gatehouse, sql: &str) -> i64 {
    gh.sql(sql)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Kills the server with SIGKILL (no shutdown at all), found by its listening port.
fn kill_hard(gh: &Gatehouse) {
    let out = Command::new("ss")
        .args(["-Htlnp", &format!("sport = :{}", gh.port)])
        .output()
        .expect("run ss");
    let text = String::from_utf8_lossy(&out.stdout);
    let pid = text
        .split("pid=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("no process listens on {}: {text}", gh.port));
    let status = Command::new("kill")
        .args(["-KILL", pid])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -KILL {pid}");
}

/// A node killed while it projects a long run of events leaves exactly the events up to its
/// recorded position in the read models (the batch in flight rolls back with its position), and
/// after a restart every event is there once, with an unbroken audit chain.
async fn a_crash_mid_projection_leaves_no_gap_and_no_duplicate(store: Store) {
    const EVENTS: i64 = 6_000;
    let idp = Idp::shared().await;
    let mut gh = Gatehouse::start(store).await;
    let tenant = tenant_with_idp(&gh, idp, false).await;
    start_login(&browser(), &gh, &tenant.slug, idp).await;
    gh.projected().await;
    let template = gh
        .sql(&format!(
            "SELECT attempt_id FROM login_attempts_view WHERE tenant = '{}'",
            tenant.slug
        ))
        .trim()
        .to_owned();
    assert!(
        !template.is_empty(),
        "the login should have started an attempt"
    );

    // Copies of the login.started event, appended at once behind the server's back.
    let (series, from) = match store {
        Store::Sqlite => (
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {EVENTS}) "
            ),
            "events, n",
        ),
        Store::Postgres => (String::new(), "events, generate_series(1, 6000) AS n(i)"),
    };
    gh.sql(&format!(
        "{series}INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
         event_version, payload, metadata) SELECT aggregate_type, 'crash-' || i, sequence, \
         event_type, event_version, payload, metadata FROM {from} \
         WHERE aggregate_type = 'login_attempt' AND aggregate_id = '{template}' AND sequence = 1"
    ));

    // Killed once the projector is under way (some batches committed).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while sql_count(
        &gh,
        "SELECT count(*) FROM audit_log WHERE attempt_id LIKE 'crash-%'",
    ) == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the projector never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    kill_hard(&gh);
    gh.stop();

    let position_filter = match store {
        Store::Sqlite => "rowid <= (SELECT position FROM projection_positions)",
        Store::Postgres => "(txid, position) <= (SELECT txid, position FROM projection_positions)",
    };
    let covered: i64 = gh
        .sql(&format!(
            "SELECT count(*) FROM events WHERE aggregate_id LIKE 'crash-%' AND {position_filter}"
        ))
        .trim()
        .parse()
        .expect("a count");
    let rows = sql_count(
        &gh,
        "SELECT count(*) FROM audit_log WHERE attempt_id LIKE 'crash-%'",
    );
    let links = sql_count(
        &gh,
        "SELECT count(*) FROM audit_chain WHERE event_key LIKE 'login_attempt:crash-%'",
    );
    let views = sql_count(
        &gh,
        "SELECT count(*) FROM login_attempts_view WHERE attempt_id LIKE 'crash-%'",
    );
    assert!(
        covered > 0 && covered < EVENTS,
        "the kill should land mid-way ({covered} of {EVENTS} projected)"
    );
    assert_eq!(rows, covered, "audit rows vs the recorded position");
    assert_eq!(links, covered, "chain links vs the recorded position");
    assert_eq!(views, covered, "attempt rows vs the recorded position");

    gh.restart().await;
    // The rest is applied after the restart (longer than the harness's usual wait).
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let page = get(&client(), &gh.url("/readyz")).await;
        if page.json()["projection_lag"] == json!(0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", page.describe());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = sql_count(
        &gh,
        "SELECT count(*) FROM audit_log WHERE attempt_id LIKE 'crash-%'",
    );
    let distinct = sql_count(
        &gh,
        "SELECT count(DISTINCT event_key) FROM audit_log WHERE attempt_id LIKE 'crash-%'",
    );
    assert_eq!((rows, distinct), (EVENTS, EVENTS));
    let chain = gh.sql(&format!(
        "SELECT (SELECT count(*) FROM audit_chain WHERE tenant = '{0}'), \
         (SELECT position FROM audit_chain_heads WHERE tenant = '{0}'), \
         (SELECT count(*) FROM audit_log WHERE tenant = '{0}')",
        tenant.slug
    ));
    let chain: Vec<&str> = chain.trim().split('|').collect();
    assert_eq!(chain[0], chain[1], "chain rows vs head: {chain:?}");
    assert_eq!(chain[0], chain[2], "chain rows vs audit rows: {chain:?}");
    let verify = gh
        .admin_get(&format!("/api/v1/tenants/{}/audit/verify", tenant.slug))
        .await;
    verify.assert_status(200);
    assert_eq!(verify.json()["ok"], json!(true), "{}", verify.describe());
}
