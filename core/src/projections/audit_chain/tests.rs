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
