//! `gatehouse projections rebuild`: with the server stopped, the read models are emptied and
//! replayed from the event store; after a restart on the same data, the audit log, tenants and
//! connections read exactly as before (audit ids may be renumbered).

#[macro_use]
mod common;

use common::*;
use serde_json::{json, Value};

on_both_stores!(
    rebuild_keeps_the_read_models,
    rebuild_of_an_empty_store,
    rebuild_while_serving,
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
            count("login.succeeded") == 1 && count("login.failed") == 2 && count("session.ended") == 1
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
    gh.audit_until(&tenant.slug, &[("type", "login.succeeded")], "two successes", |e| {
        e.len() == 2
    })
    .await;
}
