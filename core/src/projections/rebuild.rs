//! Rebuilding every read model from the event store.

use std::collections::HashMap;

use cqrs_es::{Aggregate, EventEnvelope};
use sqlx::Row;

use super::{Project, Projections};
use crate::domain::login_attempt::LoginAttempt;
use crate::domain::session::Session;
use crate::domain::tenant::Tenant;
use crate::domain::user::{Identity, User};
use crate::on_db;
use crate::store::{Db, StoreError};

const TABLES: &[&str] = &[
    "audit_log",
    "tenants_view",
    "connections_view",
    "users_view",
    "login_attempts_view",
];

/// Empties the read models and replays every event in append order, calling `progress` with
/// the number of events applied so far. Returns the total.
pub async fn rebuild(db: &Db, mut progress: impl FnMut(u64)) -> Result<u64, StoreError> {
    let projections = Projections::new(db.clone());
    on_db!(db, |pool| {
        let mut tx = pool.begin().await?;
        for table in TABLES {
            sqlx::query(&format!("DELETE FROM {table}")).execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    // SQLite keeps insertion order in rowid; PostgreSQL in the `position` column.
    let order = match db {
        Db::Sqlite(_) => "rowid",
        Db::Postgres(_) => "position",
    };
    let sql = format!(
        "SELECT aggregate_type, aggregate_id, sequence, CAST(payload AS TEXT) AS payload, \
         CAST(metadata AS TEXT) AS metadata FROM events ORDER BY {order}"
    );
    let rows = on_db!(db, |pool| {
        let rows = sqlx::query(&sql).fetch_all(pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push((
                row.try_get::<String, _>("aggregate_type")?,
                row.try_get::<String, _>("aggregate_id")?,
                row.try_get::<i64, _>("sequence")?,
                row.try_get::<String, _>("payload")?,
                row.try_get::<String, _>("metadata")?,
            ));
        }
        out
    });
    let mut applied = 0u64;
    for (kind, id, sequence, payload, metadata) in rows {
        let metadata: HashMap<String, String> =
            serde_json::from_str(&metadata).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        match kind.as_str() {
            "tenant" => apply::<Tenant>(&projections, id, sequence, &payload, metadata).await?,
            "login_attempt" => {
                apply::<LoginAttempt>(&projections, id, sequence, &payload, metadata).await?
            }
            "user" => apply::<User>(&projections, id, sequence, &payload, metadata).await?,
            "identity" => apply::<Identity>(&projections, id, sequence, &payload, metadata).await?,
            "session" => apply::<Session>(&projections, id, sequence, &payload, metadata).await?,
            other => return Err(StoreError::Corrupt(format!("unknown aggregate type {other}"))),
        }
        applied += 1;
        if applied % 1000 == 0 {
            progress(applied);
        }
    }
    progress(applied);
    Ok(applied)
}

async fn apply<A>(
    projections: &Projections,
    aggregate_id: String,
    sequence: i64,
    payload: &str,
    metadata: HashMap<String, String>,
) -> Result<(), StoreError>
where
    A: Aggregate,
    Projections: Project<A>,
{
    let payload: A::Event = serde_json::from_str(payload)
        .map_err(|e| StoreError::Corrupt(format!("{} {aggregate_id}: {e}", A::TYPE)))?;
    let envelope = EventEnvelope::<A> {
        aggregate_id,
        sequence: usize::try_from(sequence).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        payload,
        metadata,
    };
    projections.project(&envelope).await
}
