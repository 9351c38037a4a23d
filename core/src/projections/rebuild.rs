//! Rebuilding every read model from the event store.
//!
//! A rebuild fences the live projectors (a lease in `projection_positions`, renewed by each of its
//! batches), empties the read models and moves the position back to the start in one
//! transaction, then replays the event store through the projector's own batches: the same
//! commit order, the same position bookkeeping. Events appended meanwhile are applied too; the
//! rebuild ends when it has caught up and lifts the fence. If it dies half-way, its lease runs
//! out and the live projectors carry on from the position it reached, so the read models still
//! end up whole. The audit chain is not emptied: rebuilt audit rows must fit it.

use super::projector::READ_MODELS;
use super::projector::{apply_batch, read_position, take_lock, Applier, Outcome, LEASE_MS};
use super::{Conn, Projections};
use crate::on_db;
use crate::store::{now_millis, Db, StoreError};

/// Every read-model table, emptied before the replay.
const TABLES: &[&str] = &[
    "audit_log",
    "tenants_view",
    "connections_view",
    "users_view",
    "login_attempts_view",
];
/// Events applied per transaction (more than a live projector's: fewer round trips and commits
/// per event; a batch's events, rows and chain links are held in memory until it commits).
const BATCH: i64 = 5_000;
/// Batches between two progress reports.
const REPORT_EVERY: u64 = 4;

/// Empties the read models and replays every event in commit order, calling `progress` with the
/// number of events applied so far (every few thousand events and at the end). Returns the
/// total. Fails at once if another rebuild holds the fence.
pub async fn rebuild(db: &Db, mut progress: impl FnMut(u64)) -> Result<u64, StoreError> {
    let projections = Projections::new(db.clone());
    let lease = uuid::Uuid::new_v4().to_string();
    reset(db, &lease).await?;

    let mut applied = 0u64;
    let mut batches = 0u64;
    let result = loop {
        match apply_batch(&projections, BATCH, Applier::Rebuild { lease: &lease }).await {
            Ok(Outcome::Applied(n)) => {
                applied += n as u64;
                batches += 1;
                if (n as i64) < BATCH {
                    break Ok(applied);
                }
                if batches % REPORT_EVERY == 0 {
                    progress(applied);
                }
            }
            Ok(Outcome::Busy) => {
                break Err(StoreError::Database(
                    "another rebuild took over the read models".into(),
                ))
            }
            Err(e) => break Err(e),
        }
    };

    // Lifted on failure too: the live projectors then finish the replay from where it stopped.
    release(db, &lease).await?;
    progress(applied);
    result
}

/// Takes the fence, empties the read models and moves their position to the start, at once.
async fn reset(db: &Db, lease: &str) -> Result<(), StoreError> {
    on_db!(db, |pool| {
        let mut tx = pool.begin().await?;
        let mut conn = Conn::from(&mut *tx);
        take_lock(&mut conn, Applier::Rebuild { lease }).await?;
        let (_, _, paused_by, paused_until) = read_position(&mut conn).await?;
        let now = now_millis();
        if paused_until > now {
            return Err(StoreError::Database(format!(
                "another rebuild ({}) is running",
                paused_by.unwrap_or_default()
            )));
        }
        match &mut conn {
            Conn::Postgres(c) => {
                // One TRUNCATE of every table: far quicker than DELETE on a large audit log.
                sqlx::query(&format!("TRUNCATE {}", TABLES.join(", ")))
                    .execute(&mut **c)
                    .await?;
            }
            Conn::Sqlite(c) => {
                for table in TABLES {
                    sqlx::query(&format!("DELETE FROM {table}"))
                        .execute(&mut **c)
                        .await?;
                }
            }
        }
        crate::on_conn!(&mut conn, |c| {
            sqlx::query(
                "UPDATE projection_positions SET txid = 0, position = 0, paused_by = $2, \
                 paused_until = $3, updated_at = $4 WHERE projection = $1",
            )
            .bind(READ_MODELS)
            .bind(lease)
            .bind(now + LEASE_MS)
            .bind(now)
            .execute(&mut **c)
            .await?;
        });
        drop(conn);
        tx.commit().await?;
    });
    Ok(())
}

/// Lifts the fence if it is still this rebuild's.
async fn release(db: &Db, lease: &str) -> Result<(), StoreError> {
    on_db!(db, |pool| {
        sqlx::query(
            "UPDATE projection_positions SET paused_by = NULL, paused_until = 0 \
             WHERE projection = $1 AND paused_by = $2",
        )
        .bind(READ_MODELS)
        .bind(lease)
        .execute(pool)
        .await?;
    });
    Ok(())
}
