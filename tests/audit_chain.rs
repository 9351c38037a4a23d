//! Tamper evidence: each tenant's audit entries form a hash chain with signed checkpoints.
//! Real activity (a tenant, a connection, refused logins through forged callbacks) makes the
//! entries; the tests then alter, delete and insert rows directly in the database (sqlite3 or
//! psql) and show that `GET /api/v1/tenants/{slug}/audit/verify` and `gatehouse audit verify`
//! name each change. Two nodes writing to one PostgreSQL at once keep one valid chain.

#[macro_use]
mod common;

use common::*;
use serde_json::{json, Value};

on_both_stores!(
    activity_forms_a_chain_that_verifies,
    an_altered_entry_is_named,
    a_removed_entry_is_named,
    an_inserted_entry_is_named,
    a_forged_row_is_not_chained_by_a_forged_backfill,
    a_row_moved_from_another_tenant_is_named,
    reordered_entries_are_named,
    tampered_checkpoints_are_reported,
    a_truncated_tail_is_reported,
    an_unprojected_event_is_reported_and_rebuild_chains_it,
    rows_from_before_the_chain_are_chained_at_start,
);

/// A checkpoint every 3 entries, so a handful of logins has several.
fn options() -> Options {
    Options {
        env: vec![("GATEHOUSE_AUDIT_CHECKPOINT_EVERY".into(), "3".into())],
        ..Options::default()
    }
}

/// A tenant with an OAuth 2.0 connection (no IdP is contacted), and `failures` refused logins
/// through forged callbacks. Returns the slug.
async fn tenant_with_failures(gh: &Gatehouse, failures: usize) -> String {
    let slug = unique("chain-");
    gh.create_tenant(&slug, "Chain Test", &format!("https://app.{slug}.test/"))
        .await;
    let page = gh
        .admin_put(
            &format!("/api/v1/tenants/{slug}/connections/fb"),
            &json!({
                "protocol": "oauth2",
                "label": "Facebook",
                "config": {
                    "preset": "facebook",
                    "client_id": "1234",
                    "client_secret": "fb-secret",
                    "allowed_domains": ["good.test"],
                },
            }),
        )
        .await;
    page.assert_status(200);
    forged_callbacks(gh, &slug, failures).await;
    slug
}

async fn forged_callbacks(gh: &Gatehouse, slug: &str, count: usize) {
    for n in 0..count {
        let url = gh.url(&format!(
            "/{slug}/sso/fb/callback?code=c{n}&state=forged-{n}"
        ));
        get(&browser(), &url)
            .await
            .assert_error_page(&[400]);
    }
}

async fn verify(gh: &Gatehouse, slug: &str) -> Value {
    let page = gh
        .admin_get(&format!("/api/v1/tenants/{slug}/audit/verify"))
        .await;
    page.assert_status(200);
    page.json()
}

async fn assert_intact(gh: &Gatehouse, slug: &str) -> Value {
    let report = verify(gh, slug).await;
    assert_eq!(report["ok"], json!(true), "{report:#}");
    assert_eq!(report["problem"], Value::Null, "{report:#}");
    report
}

/// The verification's problem, after checking it names `kind`.
async fn assert_problem(gh: &Gatehouse, slug: &str, kind: &str) -> Value {
    let report = verify(gh, slug).await;
    assert_eq!(report["ok"], json!(false), "{report:#}");
    assert_eq!(report["problem"]["kind"], json!(kind), "{report:#}");
    report["problem"].clone()
}

/// Audit events of the tenant, oldest first.
async fn oldest_first(gh: &Gatehouse, slug: &str) -> Vec<Value> {
    let mut events = gh.audit(slug, &[]).await;
    events.reverse();
    events
}

/// One value of an SQL query (trimmed).
fn sql1(gh: &Gatehouse, query: &str) -> String {
    gh.sql(query).trim().to_owned()
}

/// Chain position of an event key.
fn position_of(gh: &Gatehouse, event_key: &str) -> i64 {
    sql1(
        gh,
        &format!("SELECT position FROM audit_chain WHERE event_key = '{event_key}'"),
    )
    .parse()
    .unwrap_or_else(|e| panic!("no chain position for {event_key}: {e}"))
}

/// The audit log row id of an audit event (whose API `id` is its event key), for SQL.
fn id_of(gh: &Gatehouse, event: &Value) -> i64 {
    let key = event["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {event:#}"));
    sql1(
        gh,
        &format!("SELECT id FROM audit_log WHERE event_key = '{key}'"),
    )
    .parse()
    .unwrap_or_else(|e| panic!("no row for {key}: {e}"))
}

fn event_key_of(gh: &Gatehouse, id: i64) -> String {
    sql1(
        gh,
        &format!("SELECT event_key FROM audit_log WHERE id = {id}"),
    )
}

fn cli_verify(gh: &Gatehouse, slug: &str) -> RunOutput {
    gh.run(&["audit", "verify", "--tenant", slug])
}

async fn activity_forms_a_chain_that_verifies(store: Store) {
    let gh = Gatehouse::start_with(store, options()).await;
    let slug = tenant_with_failures(&gh, 4).await;
    let other = tenant_with_failures(&gh, 2).await;
    let events = gh.audit(&slug, &[]).await;
    let report = assert_intact(&gh, &slug).await;
    assert_eq!(
        report["entries_checked"],
        json!(events.len()),
        "every audit entry is chained: {report:#}"
    );
    assert_eq!(report["head_position"], json!(events.len()), "{report:#}");
    let checkpoints = events.len() / 3;
    assert_eq!(
        report["checkpoints_checked"],
        json!(checkpoints),
        "{report:#}"
    );
    assert_eq!(
        report["last_checkpoint_position"],
        json!(checkpoints * 3),
        "{report:#}"
    );
    assert_eq!(
        report["head_hash"]
            .as_str()
            .map(str::len),
        Some(64),
        "{report:#}"
    );
    // Each tenant has its own chain.
    let report = assert_intact(&gh, &other).await;
    assert_eq!(
        report["entries_checked"],
        json!(gh.audit(&other, &[]).await.len()),
        "{report:#}"
    );

    // The CLI agrees, for one tenant and for all.
    let out = cli_verify(&gh, &slug);
    out.assert_success();
    assert!(
        out.stdout
            .starts_with(&format!("ok {slug}: {} entries", events.len())),
        "{}",
        out.describe()
    );
    let out = gh.run(&["audit", "verify"]);
    out.assert_success();
    assert!(
        out.stdout
            .contains(&format!("ok {slug}:")),
        "{}",
        out.describe()
    );
    assert!(
        out.stdout
            .contains(&format!("ok {other}:")),
        "{}",
        out.describe()
    );
    let out = gh.run(&["audit", "verify", "--tenant", &slug, "--json"]);
    out.assert_success();
    let line: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON report");
    assert_eq!(line["ok"], json!(true), "{}", out.describe());
    // An unknown tenant is an error, not a pass.
    let out = gh.run(&["audit", "verify", "--tenant", "no-such-tenant"]);
    assert!(!out.status.success(), "{}", out.describe());

    // The API's refusals are problems.
    gh.admin_get("/api/v1/tenants/no-such-tenant/audit/verify")
        .await
        .assert_problem(404, None);
    let page = get(
        &client(),
        &gh.url(&format!("/api/v1/tenants/{slug}/audit/verify")),
    )
    .await;
    page.assert_problem(401, None);

    // A projection rebuild leaves the chain as it was, and the rebuilt rows still fit it.
    let before = assert_intact(&gh, &slug).await;
    let mut gh = gh;
    gh.stop();
    gh.run(&["projections", "rebuild"])
        .assert_success();
    gh.restart().await;
    let again = assert_intact(&gh, &slug).await;
    assert_eq!(again, before);
    forged_callbacks(&gh, &slug, 1).await;
    assert_intact(&gh, &slug).await;
}

async fn an_altered_entry_is_named(store: Store) {
    let gh = Gatehouse::start_with(store, options()).await;
    let slug = tenant_with_failures(&gh, 4).await;
    assert_intact(&gh, &slug).await;
    let events = oldest_first(&gh, &slug).await;
    let target = events
        .iter()
        .filter(|e| e["type"] == json!("login.failed"))
        .nth(1)
        .expect("a second failure");
    let id = id_of(&gh, target);
    let key = event_key_of(&gh, id);
    // A refused login made to look like a success.
    gh.sql(&format!(
        "UPDATE audit_log SET outcome = 'succeeded', type = 'login.succeeded' WHERE id = {id}"
    ));
    let problem = assert_problem(&gh, &slug, "altered").await;
    assert_eq!(problem["entry_id"], json!(key), "{problem:#}");
    assert_eq!(problem["event_key"], json!(key), "{problem:#}");
    assert_eq!(
        problem["position"],
        json!(position_of(&gh, &key)),
        "{problem:#}"
    );

    let out = cli_verify(&gh, &slug);
    assert_eq!(out.status.code(), Some(1), "{}", out.describe());
    assert!(
        out.stdout.starts_with(&format!(
            "FAILED {slug}: altered at position {}",
            position_of(&gh, &key)
        )),
        "{}",
        out.describe()
    );
    assert!(
        out.stdout
            .contains(&format!("entry {id}")),
        "{}",
        out.describe()
    );

    // Put back, it verifies again; a one-character change in another field is caught too.
    gh.sql(&format!(
        "UPDATE audit_log SET outcome = 'failed', type = 'login.failed' WHERE id = {id}"
    ));
    assert_intact(&gh, &slug).await;
    gh.sql(&format!(
        "UPDATE audit_log SET time = time + 1 WHERE id = {id}"
    ));
    let problem = assert_problem(&gh, &slug, "altered").await;
    assert_eq!(problem["entry_id"], json!(key), "{problem:#}");
}

async fn a_removed_entry_is_named(store: Store) {
    let gh = Gatehouse::start_with(store, options()).await;
    let slug = tenant_with_failures(&gh, 4).await;
    let events = oldest_first(&gh, &slug).await;
    let middle = &events[events.len() / 2];
    let id = id_of(&gh, middle);
    let key = event_key_of(&gh, id);
    let position = position_of(&gh, &key);

    // From the audit log only.
    gh.sql(&format!("DELETE FROM audit_log WHERE id = {id}"));
    let problem = assert_problem(&gh, &slug, "removed").await;
    assert_eq!(problem["position"], json!(position), "{problem:#}");
    assert_eq!(problem["event_key"], json!(key), "{problem:#}");
    let out = cli_verify(&gh, &slug);
    assert_eq!(out.status.code(), Some(1), "{}", out.describe());
    assert!(
        out.stdout
            .contains(&format!("removed at position {position}")),
        "{}",
        out.describe()
    );

    // And from the chain as well: a gap.
    gh.sql(&format!(
        "DELETE FROM audit_chain WHERE event_key = '{key}'"
    ));
    let problem = assert_problem(&gh, &slug, "removed").await;
    assert_eq!(problem["position"], json!(position), "{problem:#}");

    // And with every later position moved down to close the gap: the next entry no longer
    // follows its predecessor.
    gh.sql(&format!(
        "UPDATE audit_chain SET position = position + 1000000 WHERE tenant = '{slug}' AND position > {position}"
    ));
    gh.sql(&format!(
        "UPDATE audit_chain SET position = position - 1000001 WHERE tenant = '{slug}' AND position > 1000000"
    ));
    let problem = assert_problem(&gh, &slug, "removed").await;
    assert_eq!(problem["position"], json!(position), "{problem:#}");
}

async fn an_inserted_entry_is_named(store: Store) {
    let gh = Gatehouse::start_with(store, options()).await;
    let slug = tenant_with_failures(&gh, 4).await;
    assert_intact(&gh, &slug).await;
    // A success nobody had, written straight into the audit log.
    let time = sql1(
        &gh,
        &format!("SELECT max(time) FROM audit_log WHERE tenant = '{slug}'"),
    );
    let head: i64 = sql1(
        &gh,
        &format!("SELECT max(position) FROM audit_chain WHERE tenant = '{slug}'"),
    )
    .parse()
    .expect("head");
    // Without a position it is not even listed.
    gh.sql(&format!(
        "INSERT INTO audit_log (event_key, tenant, time, type, outcome, email, connection_id, \
         protocol) VALUES ('login_attempt:forged-1:1', '{slug}', {time}, 'login.succeeded', \
         'succeeded', 'mallory@good.test', 'fb', 'oauth2')"
    ));
    let unlisted = gh
        .audit(&slug, &[("email", "mallory@good.test")])
        .await;
    assert!(unlisted.is_empty(), "{unlisted:#?}");
    gh.sql(&format!(
        "UPDATE audit_log SET position = {} WHERE event_key = 'login_attempt:forged-1:1'",
        head + 1
    ));
    let id: i64 = sql1(
        &gh,
        "SELECT id FROM audit_log WHERE event_key = 'login_attempt:forged-1:1'",
    )
    .parse()
    .expect("id");
    let forged = gh
        .audit(&slug, &[("email", "mallory@good.test")])
        .await;
    assert_eq!(forged.len(), 1, "the forged entry is served: {forged:#?}");
    let problem = assert_problem(&gh, &slug, "inserted").await;
    assert_eq!(problem["entry_id"], json!("login_attempt:forged-1:1"), "{problem:#}");
    assert_eq!(
        problem["event_key"],
        json!("login_attempt:forged-1:1"),
        "{problem:#}"
    );
    let out = cli_verify(&gh, &slug);
    assert_eq!(out.status.code(), Some(1), "{}", out.describe());
    assert!(out.stdout.contains("inserted"), "{}", out.describe());
    // The CLI's JSON is the API's document: the entry is named by its event key there too.
    let out = gh.run(&["audit", "verify", "--tenant", &slug, "--json"]);
    let line: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON report");
    assert_eq!(line["problem"]["kind"], json!("inserted"), "{}", out.describe());
    assert_eq!(
        line["problem"]["entry_id"],
        json!("login_attempt:forged-1:1"),
        "{}",
        out.describe()
    );

    // Chained as well, after the head, with made-up hashes: its link does not fit, and no
    // event recorded it.
    let zeros = match gh.store {
        Store::Sqlite => "zeroblob(32)",
        Store::Postgres => "decode(repeat('00', 32), 'hex')",
    };
    gh.sql(&format!(
        "INSERT INTO audit_chain (tenant, position, event_key, entry_hash, link_hash) VALUES \
         ('{slug}', {}, 'login_attempt:forged-1:1', {zeros}, {zeros})",
        head + 1
    ));
    let problem = assert_problem(&gh, &slug, "inserted").await;
    assert_eq!(problem["position"], json!(head + 1), "{problem:#}");
    assert_eq!(problem["entry_id"], json!("login_attempt:forged-1:1"), "{problem:#}");
}

/// The one-time chaining of rows from before the chain can be asked for again by writing its
/// marker row; it must still not take in a row that no event accounts for, nor rows of a tenant
/// that already has a chain.
async fn a_forged_row_is_not_chained_by_a_forged_backfill(store: Store) {
    let gh = Gatehouse::start_with(store, options()).await;
    let slug = tenant_with_failures(&gh, 2).await;
    assert_intact(&gh, &slug).await;
    let time = sql1(
        &gh,
        &format!("SELECT max(time) FROM audit_log WHERE tenant = '{slug}'"),
    );
    gh.sql(&format!(
        "INSERT INTO audit_log (event_key, tenant, time, type, outcome, email) VALUES \
         ('login_attempt:00000000-0000-0000-0000-000000000002:3', '{slug}', {time}, \
         'login.succeeded', 'succeeded', 'ceo@good.test'); \
         INSERT INTO audit_chain_backfill (pending) VALUES (1)"
    ));
    // `audit verify` runs the backfill first, as a node's start does.
    let out = cli_verify(&gh, &slug);
    assert_eq!(out.status.code(), Some(1), "{}", out.describe());
    assert!(out.stdout.contains("inserted"), "{}", out.describe());
    let chained = sql1(
        &gh,
        "SELECT count(*) FROM audit_chain WHERE event_key = \
         'login_attempt:00000000-0000-0000-0000-000000000002:3'",
    );
    assert_eq!(chained, "0", "the forged row was chained");
    let problem = assert_problem(&gh, &slug, "inserted").await;
    assert_eq!(
        problem["event_key"],
        json!("login_attempt:00000000-0000-0000-0000-000000000002:3"),
        "{problem:#}"
    );
}

/// A row of one tenant's log moved into another's is named by the second tenant's verify
/// alone (its auditor may verify no other tenant).
async fn a_row_moved_from_another_tenant_is_named(store: Store) {
    let gh = Gatehouse::start_with(store, options()).await;
    let from = tenant_with_failures(&gh, 2).await;
    let to = tenant_with_failures(&gh, 2).await;
    assert_intact(&gh, &to).await;
    let moved = sql1(
        &gh,
        &format!("SELECT max(event_key) FROM audit_log WHERE tenant = '{from}' AND type = 'login.failed'"),
    );
    gh.sql(&format!(
        "UPDATE audit_log SET tenant = '{to}', position = NULL WHERE event_key = '{moved}'"
    ));
    let problem = assert_problem(&gh, &to, "inserted").await;
    assert_eq!(problem["event_key"], json!(moved), "{problem:#}");
}

async fn reordered_entries_are_named(store: Store) {
    let gh = Gatehouse::start_with(store, options()).await;
    let slug = tenant_with_failures(&gh, 4).await;
    let events = oldest_first(&gh, &slug).await;
    let id = id_of(&gh, &events[3]);
    let position = position_of(&gh, &event_key_of(&gh, id));
    let swap = |a: i64, b: i64| {
        gh.sql(&format!(
            "UPDATE audit_chain SET position = 1000000 WHERE tenant = '{slug}' AND position = {a}"
        ));
        gh.sql(&format!(
            "UPDATE audit_chain SET position = {a} WHERE tenant = '{slug}' AND position = {b}"
        ));
        gh.sql(&format!(
            "UPDATE audit_chain SET position = {b} WHERE tenant = '{slug}' AND position = 1000000"
        ));
    };
    swap(position, position + 1);
    let problem = assert_problem(&gh, &slug, "reordered").await;
    assert_eq!(problem["position"], json!(position), "{problem:#}");
    swap(position, position + 1);
    assert_intact(&gh, &slug).await;
}

async fn tampered_checkpoints_are_reported(store: Store) {
    let mut gh = Gatehouse::start_with(store, options()).await;
    let slug = tenant_with_failures(&gh, 4).await;
    let report = assert_intact(&gh, &slug).await;
    assert!(
        report["checkpoints_checked"].as_u64() >= Some(2),
        "{report:#}"
    );
    let hex = match gh.store {
        Store::Sqlite => "lower(hex(signature))",
        Store::Postgres => "encode(signature, 'hex')",
    };
    let original = sql1(
        &gh,
        &format!("SELECT {hex} FROM audit_checkpoints WHERE tenant = '{slug}' AND position = 3"),
    );
    assert_eq!(original.len(), 128, "a 64-byte signature: {original}");
    // One bit of the signature flipped.
    let mut flipped = original.clone().into_bytes();
    flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).expect("hex");
    let set = |value: &str| {
        let arg = match gh.store {
            Store::Sqlite => format!("X'{value}'"),
            Store::Postgres => format!("decode('{value}', 'hex')"),
        };
        gh.sql(&format!(
            "UPDATE audit_checkpoints SET signature = {arg} WHERE tenant = '{slug}' AND position = 3"
        ));
    };
    set(&flipped);
    let problem = assert_problem(&gh, &slug, "checkpoint_signature_invalid").await;
    assert_eq!(problem["position"], json!(3), "{problem:#}");
    let out = cli_verify(&gh, &slug);
    assert_eq!(out.status.code(), Some(1), "{}", out.describe());
    assert!(
        out.stdout
            .contains("checkpoint_signature_invalid at position 3"),
        "{}",
        out.describe()
    );
    set(&original);
    assert_intact(&gh, &slug).await;

    // A checkpoint whose time was moved no longer matches its signature either.
    gh.sql(&format!(
        "UPDATE audit_checkpoints SET time = time + 1 WHERE tenant = '{slug}' AND position = 6"
    ));
    let problem = assert_problem(&gh, &slug, "checkpoint_signature_invalid").await;
    assert_eq!(problem["position"], json!(6), "{problem:#}");
    gh.sql(&format!(
        "UPDATE audit_checkpoints SET time = time - 1 WHERE tenant = '{slug}' AND position = 6"
    ));

    // A key nobody trusts.
    gh.sql(&format!(
        "UPDATE audit_checkpoints SET key_id = '0123456789abcdef' WHERE tenant = '{slug}' AND position = 3"
    ));
    assert_problem(&gh, &slug, "checkpoint_unknown_key").await;
    let key_id = sql1(
        &gh,
        &format!("SELECT key_id FROM audit_checkpoints WHERE tenant = '{slug}' AND position = 6"),
    );
    gh.sql(&format!(
        "UPDATE audit_checkpoints SET key_id = '{key_id}' WHERE tenant = '{slug}' AND position = 3"
    ));
    assert_intact(&gh, &slug).await;

    // Key rotation: a new signing key, with the old public key kept for verification.
    let old_public = {
        let out = gh.run(&["audit", "public-key"]);
        out.assert_success();
        out.stdout.trim().to_owned()
    };
    let out = gh.run(&["audit", "keygen"]);
    out.assert_success();
    let new_key = out.stdout.trim().to_owned();
    assert!(out.stderr.contains("public key: "), "{}", out.describe());
    gh.stop();
    gh.env
        .push(("GATEHOUSE_AUDIT_SIGNING_KEY".into(), new_key));
    gh.restart().await;
    // The old checkpoints now name an untrusted key.
    assert_problem(&gh, &slug, "checkpoint_unknown_key").await;
    gh.stop();
    gh.env
        .push(("GATEHOUSE_AUDIT_VERIFY_KEYS".into(), old_public));
    gh.restart().await;
    forged_callbacks(&gh, &slug, 3).await;
    let report = assert_intact(&gh, &slug).await;
    let key_ids = sql1(
        &gh,
        &format!("SELECT count(DISTINCT key_id) FROM audit_checkpoints WHERE tenant = '{slug}'"),
    );
    assert_eq!(
        key_ids, "2",
        "checkpoints by the old and the new key: {report:#}"
    );
    cli_verify(&gh, &slug).assert_success();
}

async fn a_truncated_tail_is_reported(store: Store) {
    let gh = Gatehouse::start_with(store, options()).await;
    let slug = tenant_with_failures(&gh, 4).await;
    let report = assert_intact(&gh, &slug).await;
    let head = report["head_position"]
        .as_i64()
        .expect("head");
    let last_checkpoint = report["last_checkpoint_position"]
        .as_i64()
        .expect("a checkpoint");
    // The newest entries, from both tables, as someone hiding the last events would.
    let cut = last_checkpoint - 1;
    gh.sql(&format!(
        "DELETE FROM audit_log WHERE event_key IN (SELECT event_key FROM audit_chain WHERE \
         tenant = '{slug}' AND position >= {cut})"
    ));
    gh.sql(&format!(
        "DELETE FROM audit_chain WHERE tenant = '{slug}' AND position >= {cut}"
    ));
    let problem = assert_problem(&gh, &slug, "truncated").await;
    assert_eq!(problem["position"], json!(cut), "{problem:#}");
    assert!(head >= cut);
    // Moving the recorded head back does not hide it: the signed checkpoint still covers it.
    gh.sql(&format!(
        "UPDATE audit_chain_heads SET position = {} WHERE tenant = '{slug}'",
        cut - 1
    ));
    let problem = assert_problem(&gh, &slug, "truncated").await;
    assert_eq!(problem["position"], json!(cut), "{problem:#}");
}

async fn an_unprojected_event_is_reported_and_rebuild_chains_it(store: Store) {
    // No checkpoints in the way: only the gap itself is looked at.
    let mut gh = Gatehouse::start(store).await;
    let slug = tenant_with_failures(&gh, 3).await;
    let report = assert_intact(&gh, &slug).await;
    let head = report["head_position"]
        .as_i64()
        .expect("head");
    let key = sql1(
        &gh,
        &format!("SELECT event_key FROM audit_chain WHERE tenant = '{slug}' AND position = {head}"),
    );
    // As if the node had stopped between committing the newest event and projecting it: no
    // audit row, no chain link, the head one step back.
    gh.sql(&format!("DELETE FROM audit_log WHERE event_key = '{key}'"));
    gh.sql(&format!(
        "DELETE FROM audit_chain WHERE event_key = '{key}'"
    ));
    gh.sql(&format!(
        "UPDATE audit_chain_heads SET position = {}, link_hash = (SELECT link_hash FROM \
         audit_chain WHERE tenant = '{slug}' AND position = {}) WHERE tenant = '{slug}'",
        head - 1,
        head - 1
    ));
    let problem = assert_problem(&gh, &slug, "unprojected").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("1 committed event"),
        "{problem:#}"
    );
    let out = cli_verify(&gh, &slug);
    assert_eq!(out.status.code(), Some(1), "{}", out.describe());

    gh.stop();
    gh.run(&["projections", "rebuild"])
        .assert_success();
    gh.restart().await;
    let report = assert_intact(&gh, &slug).await;
    assert_eq!(report["head_position"], json!(head), "{report:#}");
    assert_eq!(
        position_of(&gh, &key),
        head,
        "the missing event is chained again"
    );
}

async fn rows_from_before_the_chain_are_chained_at_start(store: Store) {
    let mut gh = Gatehouse::start_with(store, options()).await;
    let slug = tenant_with_failures(&gh, 3).await;
    let count = gh.audit(&slug, &[]).await.len();
    // The state of a store upgraded from before migration 0004: rows, no chain.
    gh.stop();
    gh.sql("DELETE FROM audit_chain");
    gh.sql("DELETE FROM audit_chain_heads");
    gh.sql("DELETE FROM audit_checkpoints");
    gh.sql("INSERT INTO audit_chain_backfill (pending) VALUES (1)");
    gh.sql("UPDATE audit_log SET position = NULL");
    gh.restart().await;
    let report = assert_intact(&gh, &slug).await;
    assert_eq!(report["entries_checked"], json!(count), "{report:#}");
    assert_eq!(sql1(&gh, "SELECT count(*) FROM audit_chain_backfill"), "0");
    // In row id order.
    let events = oldest_first(&gh, &slug).await;
    let positions: Vec<i64> = events
        .iter()
        .map(|e| position_of(&gh, &event_key_of(&gh, id_of(&gh, e))))
        .collect();
    assert_eq!(positions, (1..=count as i64).collect::<Vec<_>>());
}

#[tokio::test]
async fn two_nodes_writing_at_once_keep_one_chain() {
    let a = Gatehouse::start_with(Store::Postgres, options()).await;
    let b = a.another_node(&[]).await;
    let slug = tenant_with_failures(&a, 0).await;
    // 40 refused logins for one tenant, half at each node, all at once.
    let mut tasks = Vec::new();
    for n in 0..40 {
        let url = if n % 2 == 0 { a.url("") } else { b.url("") };
        let slug = slug.clone();
        tasks.push(tokio::spawn(async move {
            let page = get(
                &browser(),
                &format!("{url}/{slug}/sso/fb/callback?code=c&state=race-{n}"),
            )
            .await;
            page.assert_error_page(&[400]);
        }));
    }
    for task in tasks {
        task.await.expect("a forged callback");
    }
    let events = a.audit(&slug, &[]).await;
    let failed = events
        .iter()
        .filter(|e| e["type"] == json!("login.failed"))
        .count();
    assert_eq!(failed, 40, "{events:#?}");
    let from_a = assert_intact(&a, &slug).await;
    let from_b = assert_intact(&b, &slug).await;
    assert_eq!(from_a, from_b);
    assert_eq!(from_a["entries_checked"], json!(events.len()), "{from_a:#}");
    // Checkpoints from both nodes, each at its own position.
    let checkpoints: i64 = a
        .sql(&format!(
            "SELECT count(*) FROM audit_checkpoints WHERE tenant = '{slug}'"
        ))
        .trim()
        .parse()
        .expect("count");
    assert_eq!(checkpoints, events.len() as i64 / 3, "{from_a:#}");
    a.run(&["audit", "verify", "--tenant", &slug])
        .assert_success();
}
