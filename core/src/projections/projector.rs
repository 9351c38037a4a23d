//! The projector: applies the event store to the read models in commit order, off the request
//! path, and records its position in the same transaction as the writes.
//!
//! Each node runs one ([`Projector::run`]); it is woken at once by its own appends and polls for
//! other nodes' appends. On PostgreSQL every batch takes a transaction-level advisory lock, so
//! nodes sharing a database never apply at the same time: one applies, the others find the lock
//! taken and try again at their next poll, and when a node dies mid-batch its transaction rolls
//! back and another one carries on from the recorded position. SQLite has one writer at a time:
//! the batch's first statement takes the write lock.
//!
//! Commit order: on PostgreSQL `position` is drawn before the appending transaction commits, so
//! "position > last" alone would pass over a transaction that commits after a higher-numbered
//! one. Every statement that appends events takes a shared advisory lock first (a trigger,
//! migration 0009); before a batch the projector takes that lock exclusively for an instant, in
//! a transaction of its own, and reads the highest position: the appends in flight in this
//! database have then committed or rolled back, and later ones draw higher positions, so every
//! event up to that mark is visible for good. The batch applies events in position order up to
//! the mark. Only this database's appends are waited for (a long transaction elsewhere on the
//! server does not hold the projection back), and an append waits at most for one such instant.
//! On SQLite rowid order is commit order (one writer; events are never deleted).

use std::time::Duration;

use sqlx::Row;

use super::batch::Pending;
use super::{Conn, Projections, StoredEvent};
use crate::on_conn;
use crate::on_db;
use crate::store::{now_millis, Db, StoreError};

/// The row of `projection_positions` shared by every read model (they are applied together).
pub(crate) const READ_MODELS: &str = "read_models";
/// The advisory lock that admits one applier at a time on PostgreSQL ("gatehous" in ASCII).
const LOCK_KEY: i64 = 0x6761_7465_686f_7573;
/// The advisory lock every append holds shared until it commits ("gatefenc"; migration 0009).
const APPEND_FENCE_KEY: i64 = 0x6761_7465_6665_6e63;
/// How long the projector waits for the appends in flight before trying again at its next poll.
const FENCE_WAIT: &str = "SET LOCAL lock_timeout = '250ms'";
/// How long a rebuild's fence holds without being renewed.
pub(crate) const LEASE_MS: i64 = 60_000;

/// Tuning of a node's projector.
#[derive(Clone, Debug)]
pub struct ProjectorSettings {
    /// Most events applied in one transaction.
    pub batch: i64,
    /// How often to look for other nodes' appends (and retry while another node applies).
    pub poll: Duration,
    /// Longest pause between retries after a failed batch.
    pub max_backoff: Duration,
}

impl Default for ProjectorSettings {
    fn default() -> Self {
        ProjectorSettings {
            batch: 200,
            poll: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// A node's projector task (see the module documentation).
pub struct Projector {
    projections: Projections,
    settings: ProjectorSettings,
}

/// What one batch did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Applied this many events (fewer than asked: caught up for now).
    Applied(usize),
    /// Another node holds the lock, or a rebuild fences the live projectors.
    Busy,
}

/// Who runs a batch: a live projector, or a rebuild holding the fence `lease`.
#[derive(Clone, Copy)]
pub(crate) enum Applier<'a> {
    Live,
    Rebuild { lease: &'a str },
}

impl Projector {
    /// A projector applying to `projections`' database.
    pub fn new(projections: Projections, settings: ProjectorSettings) -> Self {
        Projector {
            projections,
            settings,
        }
    }

    /// Runs until the task is dropped. A failed batch is rolled back, logged as an error and
    /// retried with a growing pause: the projection stops at that event (its lag shows in
    /// `/readyz`) rather than skip it.
    pub async fn run(self) {
        let mut failures: u32 = 0;
        loop {
            let outcome = if lag(&self.projections.db, 1)
                .await
                .unwrap_or(1)
                == 0
            {
                Ok(Outcome::Applied(0))
            } else {
                apply_batch(&self.projections, self.settings.batch, Applier::Live).await
            };
            match outcome {
                Ok(Outcome::Applied(n)) if n as i64 == self.settings.batch => {
                    failures = 0;
                }
                Ok(Outcome::Applied(_)) | Ok(Outcome::Busy) => {
                    failures = 0;
                    tokio::select! {
                        _ = self.projections.wake.notified() => {}
                        _ = tokio::time::sleep(self.settings.poll) => {}
                    }
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let pause = self
                        .settings
                        .poll
                        .saturating_mul(1 << failures.min(10))
                        .min(self.settings.max_backoff);
                    tracing::error!(%error, failures, ?pause, "projection batch failed; retrying");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
}

impl Projections {
    /// Applies every event committed so far (for tools and benchmarks that append through an
    /// executor with no projector running). Returns how many were applied; waits while another
    /// node or a rebuild holds the projection.
    pub async fn catch_up(&self) -> Result<u64, StoreError> {
        let mut applied = 0;
        loop {
            match apply_batch(self, 1000, Applier::Live).await? {
                Outcome::Applied(n) => {
                    applied += n as u64;
                    if n < 1000 && lag(&self.db, 1).await? == 0 {
                        return Ok(applied);
                    }
                }
                Outcome::Busy => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

/// How many committed events the read models have not applied yet, counted up to `cap`.
/// Zero means every event committed before the call is in the read models.
pub async fn lag(db: &Db, cap: i64) -> Result<i64, StoreError> {
    Ok(match db {
        Db::Postgres(pool) => {
            let mut c = pool.acquire().await?;
            let (_, position, ..) = read_position(&mut Conn::from(&mut *c)).await?;
            sqlx::query_scalar(
                "SELECT count(*) FROM (SELECT 1 FROM events WHERE position > $1 LIMIT $2) \
                 AS pending",
            )
            .bind(position)
            .bind(cap)
            .fetch_one(&mut *c)
            .await?
        }
        Db::Sqlite(pool) => {
            let mut c = pool.acquire().await?;
            let (_, position, ..) = read_position(&mut Conn::from(&mut *c)).await?;
            sqlx::query_scalar(
                "SELECT count(*) FROM (SELECT 1 FROM events WHERE rowid > $1 LIMIT $2) AS pending",
            )
            .bind(position)
            .bind(cap)
            .fetch_one(&mut *c)
            .await?
        }
    })
}

/// Applies up to `limit` events after the recorded position in one transaction that also moves
/// the position (and renews a rebuild's fence).
pub(crate) async fn apply_batch(
    projections: &Projections,
    limit: i64,
    applier: Applier<'_>,
) -> Result<Outcome, StoreError> {
    on_db!(&projections.db, |pool| {
        let mut tx = pool.begin().await?;
        let mut conn = Conn::from(&mut *tx);
        if !take_lock(&mut conn, applier).await? {
            return Ok(Outcome::Busy);
        }
        let (txid, position, paused_by, paused_until) = read_position(&mut conn).await?;
        let now = now_millis();
        let mine = match applier {
            Applier::Live => false,
            Applier::Rebuild { lease } => paused_by.as_deref() == Some(lease),
        };
        if paused_until > now && !mine {
            return Ok(Outcome::Busy);
        }
        if let Applier::Rebuild { .. } = applier {
            if !mine {
                return Err(StoreError::Database(
                    "the rebuild lost its fence (it paused for over a minute)".into(),
                ));
            }
        }

        let events = match &projections.db {
            Db::Postgres(pool) => {
                let Some(mark) = committed_mark(pool).await? else {
                    return Ok(Outcome::Busy);
                };
                read_events(&mut conn, txid, position, mark, limit).await?
            }
            Db::Sqlite(_) => read_events(&mut conn, txid, position, 0, limit).await?,
        };
        let Some(last) = events.last() else {
            return Ok(Outcome::Applied(0));
        };
        let mut pending = Pending::default();
        pending
            .prefetch_attempts(&mut conn, &events)
            .await?;
        for event in &events {
            projections
                .apply_stored(&mut conn, &mut pending, event)
                .await
                .map_err(|error| at_event(event, error))?;
        }
        let chained = pending
            .flush(&mut conn)
            .await
            .map_err(|error| at_batch(&events, error))?;
        if chained == 0 {
            // Nothing new in the chain (a rebuild, mostly): all the batch writes, its position
            // included, can be derived again, identically, from the events and the chain, so its
            // commit need not wait for the disk. A server crash may lose the last such batches;
            // they are then applied again. A batch that chains entries still waits, so a chain
            // link or checkpoint once seen never vanishes.
            if let Conn::Postgres(c) = &mut conn {
                sqlx::query("SET LOCAL synchronous_commit = off")
                    .execute(&mut **c)
                    .await?;
            }
        }

        let lease_until = match applier {
            Applier::Live => paused_until,
            Applier::Rebuild { .. } => now + LEASE_MS,
        };
        on_conn!(&mut conn, |c| {
            sqlx::query(
                "UPDATE projection_positions SET txid = $2, position = $3, paused_until = $4, \
                 updated_at = $5 WHERE projection = $1",
            )
            .bind(READ_MODELS)
            .bind(last.txid)
            .bind(last.position)
            .bind(lease_until)
            .bind(now)
            .execute(&mut **c)
            .await?;
        });
        drop(conn);
        tx.commit().await?;
        Ok(Outcome::Applied(events.len()))
    })
}

/// Names the event a projection failed on.
fn at_event(event: &StoredEvent, error: StoreError) -> StoreError {
    let key = format!(
        "{}:{}:{} (txid {}, position {})",
        event.aggregate_type, event.aggregate_id, event.sequence, event.txid, event.position
    );
    match error {
        StoreError::Corrupt(e) => StoreError::Corrupt(format!("event {key}: {e}")),
        StoreError::Database(e) => StoreError::Database(format!("event {key}: {e}")),
        StoreError::Conflict => StoreError::Conflict,
    }
}

/// Names the batch whose multi-row writes failed.
fn at_batch(events: &[StoredEvent], error: StoreError) -> StoreError {
    let (first, last) = match (events.first(), events.last()) {
        (Some(first), Some(last)) => (first.position, last.position),
        _ => (0, 0),
    };
    let range = format!("the batch of events at positions {first} to {last}");
    match error {
        StoreError::Corrupt(e) => StoreError::Corrupt(format!("{range}: {e}")),
        StoreError::Database(e) => StoreError::Database(format!("{range}: {e}")),
        StoreError::Conflict => StoreError::Conflict,
    }
}

/// Takes the right to apply for this transaction: PostgreSQL's advisory lock (a live projector
/// only tries; a rebuild waits for the batch in flight), SQLite's write lock.
pub(crate) async fn take_lock(
    conn: &mut Conn<'_>,
    applier: Applier<'_>,
) -> Result<bool, StoreError> {
    Ok(match conn {
        Conn::Postgres(c) => match applier {
            Applier::Live => {
                sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                    .bind(LOCK_KEY)
                    .fetch_one(&mut **c)
                    .await?
            }
            Applier::Rebuild { .. } => {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(LOCK_KEY)
                    .execute(&mut **c)
                    .await?;
                true
            }
        },
        Conn::Sqlite(c) => {
            // A write as the first statement: the transaction waits for, then holds, the
            // database's write lock, so what it reads next cannot change under it.
            sqlx::query("UPDATE projection_positions SET txid = txid WHERE projection = $1")
                .bind(READ_MODELS)
                .execute(&mut **c)
                .await?;
            true
        }
    })
}

/// (txid, position, paused_by, paused_until) of the read models.
pub(crate) async fn read_position(
    conn: &mut Conn<'_>,
) -> Result<(i64, i64, Option<String>, i64), StoreError> {
    on_conn!(conn, |c| {
        let row = sqlx::query(
            "SELECT txid, position, paused_by, paused_until FROM projection_positions \
             WHERE projection = $1",
        )
        .bind(READ_MODELS)
        .fetch_optional(&mut **c)
        .await?
        .ok_or_else(|| StoreError::Corrupt("projection_positions has no read_models row".into()))?;
        Ok((
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
        ))
    })
}

/// The highest position below which every event has committed for good (see the module
/// documentation), or `None` when the appends in flight did not finish within FENCE_WAIT.
async fn committed_mark(pool: &sqlx::PgPool) -> Result<Option<i64>, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query(FENCE_WAIT)
        .execute(&mut *tx)
        .await?;
    let fenced = sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(APPEND_FENCE_KEY)
        .execute(&mut *tx)
        .await;
    match fenced {
        Ok(_) => {}
        // 55P03: lock_timeout. An append is slow to commit: try again at the next poll.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    }
    let mark: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(mark))
}

/// Up to `limit` events after `position`, in commit order; on PostgreSQL only up to `mark`
/// (see [`committed_mark`]). `txid` is recorded for diagnosis only.
async fn read_events(
    conn: &mut Conn<'_>,
    _txid: i64,
    position: i64,
    mark: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, StoreError> {
    let rows = match conn {
        Conn::Postgres(c) => sqlx::query(
            "SELECT txid, position, aggregate_type, aggregate_id, sequence, \
                 CAST(payload AS TEXT), CAST(metadata AS TEXT) FROM events \
                 WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3",
        )
        .bind(position)
        .bind(mark)
        .bind(limit)
        .fetch_all(&mut **c)
        .await?
        .into_iter()
        .map(|row| stored_event(&row))
        .collect::<Result<Vec<_>, _>>()?,
        Conn::Sqlite(c) => sqlx::query(
            "SELECT 0, rowid, aggregate_type, aggregate_id, sequence, payload, metadata \
                 FROM events WHERE rowid > $1 ORDER BY rowid LIMIT $2",
        )
        .bind(position)
        .bind(limit)
        .fetch_all(&mut **c)
        .await?
        .into_iter()
        .map(|row| stored_event(&row))
        .collect::<Result<Vec<_>, _>>()?,
    };
    Ok(rows)
}

fn stored_event<R>(row: &R) -> Result<StoredEvent, sqlx::Error>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(StoredEvent {
        txid: row.try_get(0)?,
        position: row.try_get(1)?,
        aggregate_type: row.try_get(2)?,
        aggregate_id: row.try_get(3)?,
        sequence: row.try_get(4)?,
        payload: row.try_get(5)?,
        metadata: row.try_get(6)?,
    })
}
