//! Unit tests of the chain on SQLite: hashing, keys, and each kind of tampering.

use super::*;
use crate::crypto::SecretKey;
use crate::on_db;
use crate::store::Db;
use std::sync::Arc;

fn row(tenant: &str, n: i64) -> AuditRow {
    AuditRow {
        event_key: format!("login_attempt:{tenant}-{n}:0"),
        tenant: tenant.to_owned(),
        time: 1_700_000_000_000 + n,
        kind: "login.failed".to_owned(),
        attempt_id: Some(format!("{tenant}-{n}")),
        outcome: Some("failed".to_owned()),
        reason: Some("state_missing".to_owned()),
        email: Some(format!("User{n}@Example.test")),
        ..AuditRow::default()
    }
}

async fn sqlite() -> (Db, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::connect(&Db::sqlite_url(dir.path()))
        .await
        .expect("connect");
    (db, dir)
}

fn policy(key: Arc<CheckpointKey>, every: i64) -> CheckpointPolicy {
    CheckpointPolicy {
        key,
        every_entries: every,
        every_ms: i64::MAX / 2,
    }
}

#[test]
fn canonical_form_separates_fields() {
    let a = row("t", 1);
    let mut b = row("t", 1);
    // Moving text from one field to the next must change the hash.
    b.reason = Some("state_missin".to_owned());
    b.detail = Some("g".to_owned());
    assert_ne!(content_of(&a, None).hash(), content_of(&b, None).hash());
    let mut c = row("t", 1);
    c.detail = Some(String::new());
    assert_ne!(
        content_of(&a, None).hash(),
        content_of(&c, None).hash(),
        "empty is not absent"
    );
    assert_eq!(
        content_of(&a, None).hash(),
        content_of(&row("t", 1), None).hash()
    );
}

#[test]
fn keys_round_trip_and_sign() {
    let key = CheckpointKey::generate();
    let again = CheckpointKey::from_base64(&key.to_base64()).expect("parse");
    assert_eq!(key.key_id(), again.key_id());
    let public = PublicKey::from_base64(&key.public().to_base64()).expect("public");
    assert_eq!(public.key_id(), key.key_id());
    assert!(CheckpointKey::from_base64("c2hvcnQ=").is_err());
    let secret = SecretKey::generate();
    assert_eq!(
        CheckpointKey::derived_from(&secret).key_id(),
        CheckpointKey::derived_from(&secret).key_id()
    );
    assert_ne!(CheckpointKey::derived_from(&secret).key_id(), key.key_id());
}

#[tokio::test]
async fn a_chain_verifies_and_each_tampering_is_named() {
    let (db, _dir) = sqlite().await;
    let key = Arc::new(CheckpointKey::generate());
    let trusted = TrustedKeys::new([key.public()]);
    let rows: Vec<AuditRow> = (1..=10)
        .map(|n| row("acme", n))
        .chain((1..=3).map(|n| row("other", n)))
        .collect();
    append_batch(&db, &rows, Some(&policy(key.clone(), 4)))
        .await
        .expect("append");
    // The events behind the entries (only their keys matter here).
    on_db!(&db, |pool| {
        for n in 1..=10 {
            sqlx::query(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                 event_version, payload, metadata) VALUES ('login_attempt', $1, 0, 'x', '1', '{}', '{}')",
            )
            .bind(format!("acme-{n}"))
            .execute(pool)
            .await
            .expect("event");
        }
    });
    let report = verify(&db, "acme", &trusted)
        .await
        .expect("verify");
    assert!(report.ok, "{report:?}");
    assert_eq!(report.entries_checked, 10);
    assert_eq!(report.checkpoints_checked, 2);
    assert_eq!(report.last_checkpoint_position, Some(8));

    let exec = |sql: &'static str| {
        let db = db.clone();
        async move {
            on_db!(&db, |pool| {
                sqlx::query(sql)
                    .execute(pool)
                    .await
                    .expect(sql);
            });
        }
    };
    // Altered.
    exec("UPDATE audit_log SET reason = 'x' WHERE event_key = 'login_attempt:acme-3:0'").await;
    let report = verify(&db, "acme", &trusted)
        .await
        .expect("verify");
    let problem = report.problem.expect("a problem");
    assert_eq!(
        (problem.kind, problem.position),
        (ProblemKind::Altered, Some(3)),
        "{problem:?}"
    );
    exec(
        "UPDATE audit_log SET reason = 'state_missing' WHERE event_key = 'login_attempt:acme-3:0'",
    )
    .await;
    assert!(
        verify(&db, "acme", &trusted)
            .await
            .expect("verify")
            .ok
    );

    // Swapped positions.
    exec("UPDATE audit_chain SET position = 100005 WHERE tenant = 'acme' AND position = 5").await;
    exec("UPDATE audit_chain SET position = 5 WHERE tenant = 'acme' AND position = 6").await;
    exec("UPDATE audit_chain SET position = 6 WHERE tenant = 'acme' AND position = 100005").await;
    let problem = verify(&db, "acme", &trusted)
        .await
        .expect("verify")
        .problem
        .expect("a problem");
    assert_eq!(
        (problem.kind, problem.position),
        (ProblemKind::Reordered, Some(5)),
        "{problem:?}"
    );
    exec("UPDATE audit_chain SET position = 100005 WHERE tenant = 'acme' AND position = 5").await;
    exec("UPDATE audit_chain SET position = 5 WHERE tenant = 'acme' AND position = 6").await;
    exec("UPDATE audit_chain SET position = 6 WHERE tenant = 'acme' AND position = 100005").await;
    assert!(
        verify(&db, "acme", &trusted)
            .await
            .expect("verify")
            .ok
    );

    // A forged entry, chained at the end with made-up hashes: no event recorded it.
    exec("INSERT INTO audit_log (event_key, tenant, time, type) VALUES ('login_attempt:forged:0', 'acme', 1, 'login.succeeded')").await;
    exec("INSERT INTO audit_chain (tenant, position, event_key, entry_hash, link_hash) VALUES ('acme', 11, 'login_attempt:forged:0', zeroblob(32), zeroblob(32))").await;
    let problem = verify(&db, "acme", &trusted)
        .await
        .expect("verify")
        .problem
        .expect("a problem");
    assert_eq!(
        (problem.kind, problem.position),
        (ProblemKind::Inserted, Some(11)),
        "{problem:?}"
    );
    exec("DELETE FROM audit_chain WHERE event_key = 'login_attempt:forged:0'").await;
    let problem = verify(&db, "acme", &trusted)
        .await
        .expect("verify")
        .problem
        .expect("a problem");
    assert_eq!(
        (problem.kind, problem.position),
        (ProblemKind::Inserted, None),
        "{problem:?}"
    );
    exec("DELETE FROM audit_log WHERE event_key = 'login_attempt:forged:0'").await;

    // Removed: the audit row only, then the chain row too.
    exec("DELETE FROM audit_log WHERE event_key = 'login_attempt:acme-4:0'").await;
    let problem = verify(&db, "acme", &trusted)
        .await
        .expect("verify")
        .problem
        .expect("a problem");
    assert_eq!(
        (problem.kind, problem.position),
        (ProblemKind::Removed, Some(4)),
        "{problem:?}"
    );
    exec("DELETE FROM audit_chain WHERE event_key = 'login_attempt:acme-4:0'").await;
    let problem = verify(&db, "acme", &trusted)
        .await
        .expect("verify")
        .problem
        .expect("a problem");
    assert_eq!(
        (problem.kind, problem.position),
        (ProblemKind::Removed, Some(4)),
        "{problem:?}"
    );

    // The event of the removed entry is now in no chain: as after a crash between commit
    // and projection, every verification says so.
    let problem = verify(&db, "other", &trusted)
        .await
        .expect("verify")
        .problem
        .expect("a problem");
    assert_eq!(problem.kind, ProblemKind::Unprojected, "{problem:?}");
    exec("DELETE FROM events WHERE aggregate_id = 'acme-4'").await;

    // Truncated after the last checkpoint is caught through the head; before, through it.
    let (db2, _dir2) = sqlite().await;
    append_batch(&db2, &rows, Some(&policy(key.clone(), 4)))
        .await
        .expect("append");
    on_db!(&db2, |pool| {
        sqlx::query("DELETE FROM audit_chain WHERE tenant = 'acme' AND position >= 7")
            .execute(pool)
            .await
            .expect("delete");
    });
    let problem = verify(&db2, "acme", &trusted)
        .await
        .expect("verify")
        .problem
        .expect("a problem");
    assert_eq!(
        (problem.kind, problem.position),
        (ProblemKind::Truncated, Some(7)),
        "{problem:?}"
    );

    // Unknown key.
    let other = TrustedKeys::new([CheckpointKey::generate().public()]);
    let problem = verify(&db, "other", &other)
        .await
        .expect("verify");
    assert!(problem.ok, "no checkpoint yet for 3 entries: {problem:?}");
    let problem = verify(&db2, "acme", &other)
        .await
        .expect("verify")
        .problem
        .expect("a problem");
    assert_eq!(
        problem.kind,
        ProblemKind::CheckpointUnknownKey,
        "{problem:?}"
    );
}

/// The version 1 bytes, written out from the documented format, for a known-answer check.
fn v1_bytes(row: &AuditRow) -> Vec<u8> {
    fn text(out: &mut Vec<u8>, value: Option<&str>) {
        match value {
            None => out.push(0),
            Some(t) => {
                out.push(1);
                out.extend((t.len() as u64).to_be_bytes());
                out.extend(t.as_bytes());
            }
        }
    }
    let mut out = b"gatehouse audit entry v1\0".to_vec();
    text(&mut out, Some(&row.event_key));
    text(&mut out, Some(&row.tenant));
    out.extend(row.time.to_be_bytes());
    text(&mut out, Some(&row.kind));
    let email = row
        .email
        .as_ref()
        .map(|e| e.to_lowercase());
    for field in [
        &row.attempt_id,
        &row.connection_id,
        &row.protocol,
        &row.outcome,
        &row.reason,
        &row.detail,
        &email,
        &row.user_id,
        &row.actor,
        &row.client_ip,
        &row.user_agent,
    ] {
        text(&mut out, field.as_deref());
    }
    out
}

#[test]
fn forms_one_and_two() {
    let mut a = row("t", 1);
    a.request_id = Some("req-1".to_owned());
    let email = a
        .email
        .as_ref()
        .map(|e| e.to_lowercase());
    let v2 = content_of(&a, email.as_deref());
    let v1 = EntryContent { form: 1, ..v2 };

    let expected: [u8; 32] = Sha256::digest(v1_bytes(&a)).into();
    assert_eq!(
        v1.hash(),
        Some(expected),
        "form 1 is the documented version 1"
    );
    let mut b = a.clone();
    b.request_id = Some("req-2".to_owned());
    let email_b = b
        .email
        .as_ref()
        .map(|e| e.to_lowercase());
    let v2_b = content_of(&b, email_b.as_deref());
    assert_eq!(
        EntryContent { form: 1, ..v2_b }.hash(),
        v1.hash(),
        "form 1 ignores it"
    );
    assert_ne!(v2_b.hash(), v2.hash(), "form 2 covers the request id");
    assert_ne!(v2.hash(), v1.hash(), "the tag tells the forms apart");
    assert_eq!(EntryContent { form: 3, ..v2 }.hash(), None);
}

#[tokio::test]
async fn entries_of_form_one_still_verify_next_to_form_two() {
    let (db, _dir) = sqlite().await;
    let trusted = TrustedKeys::new([CheckpointKey::generate().public()]);
    let rows: Vec<AuditRow> = (1..=5)
        .map(|n| AuditRow {
            request_id: Some(format!("req-{n}")),
            ..row("acme", n)
        })
        .collect();
    append_batch(&db, &rows, None)
        .await
        .expect("append");
    on_db!(&db, |pool| {
        for n in 1..=5 {
            sqlx::query(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                 event_version, payload, metadata) VALUES ('login_attempt', $1, 0, 'x', '1', '{}', '{}')",
            )
            .bind(format!("acme-{n}"))
            .execute(pool)
            .await
            .expect("event");
        }
    });
    // Entries 1 to 3 as a store chained them before form 2: form 1 hashes, the links redone.
    let mut link = GENESIS;
    for (index, row) in rows.iter().enumerate() {
        let position = index as i64 + 1;
        let email = row
            .email
            .as_ref()
            .map(|e| e.to_lowercase());
        let form = if position <= 3 { 1 } else { 2 };
        let entry = EntryContent {
            form,
            ..content_of(row, email.as_deref())
        }
        .hash()
        .expect("known form");
        link = link_hash(&link, position, &entry);
        on_db!(&db, |pool| {
            sqlx::query(
                "UPDATE audit_chain SET entry_hash = $1, link_hash = $2, form = $3 \
                 WHERE tenant = 'acme' AND position = $4",
            )
            .bind(&entry[..])
            .bind(&link[..])
            .bind(form)
            .bind(position)
            .execute(pool)
            .await
            .expect("rewrite");
        });
    }
    let exec = |sql: &'static str| {
        let db = db.clone();
        async move {
            on_db!(&db, |pool| {
                sqlx::query(sql)
                    .execute(pool)
                    .await
                    .expect(sql);
            });
        }
    };
    exec("UPDATE audit_chain_heads SET link_hash = (SELECT link_hash FROM audit_chain WHERE tenant = 'acme' AND position = 5) WHERE tenant = 'acme'").await;
    let check = || async {
        verify(&db, "acme", &trusted)
            .await
            .expect("verify")
    };
    let report = check().await;
    assert!(report.ok, "{report:?}");
    assert_eq!(report.entries_checked, 5);

    // Form 2 covers the request id; form 1 never did.
    exec("UPDATE audit_log SET request_id = 'forged' WHERE event_key = 'login_attempt:acme-4:0'")
        .await;
    let problem = check()
        .await
        .problem
        .expect("a problem");
    assert_eq!(
        (problem.kind, problem.position),
        (ProblemKind::Altered, Some(4)),
        "{problem:?}"
    );
    exec("UPDATE audit_log SET request_id = 'req-4' WHERE event_key = 'login_attempt:acme-4:0'")
        .await;
    exec("UPDATE audit_log SET request_id = 'other' WHERE event_key = 'login_attempt:acme-2:0'")
        .await;
    assert!(check().await.ok, "form 1 does not cover the request id");

    // Claiming another form breaks the entry: downgraded, or unknown.
    exec("UPDATE audit_chain SET form = 1 WHERE event_key = 'login_attempt:acme-5:0'").await;
    let problem = check()
        .await
        .problem
        .expect("a problem");
    assert_eq!(
        (problem.kind, problem.position),
        (ProblemKind::Altered, Some(5)),
        "{problem:?}"
    );
    exec("UPDATE audit_chain SET form = 7 WHERE event_key = 'login_attempt:acme-5:0'").await;
    let problem = check()
        .await
        .problem
        .expect("a problem");
    assert_eq!(
        (problem.kind, problem.position),
        (ProblemKind::Altered, Some(5)),
        "{problem:?}"
    );
    assert!(problem.detail.contains("form 7"), "{problem:?}");
    exec("UPDATE audit_chain SET form = 2 WHERE event_key = 'login_attempt:acme-5:0'").await;
    assert!(check().await.ok);

    // The row's copy of its position, which readers page by, must be the chained one.
    exec("UPDATE audit_log SET position = 50 WHERE event_key = 'login_attempt:acme-3:0'").await;
    let problem = check()
        .await
        .problem
        .expect("a problem");
    assert_eq!(
        (problem.kind, problem.position),
        (ProblemKind::Reordered, Some(3)),
        "{problem:?}"
    );
}
