//! What a projection batch writes at its end: the audit rows (chained together, see
//! `audit_chain::insert_chained_batch`) and the login attempts' view rows, with multi-row
//! statements instead of a few statements per event.
//!
//! The projections of a batch's events push their writes here in event order; the projector
//! flushes them in the batch's transaction before it records the batch's position, so a crash
//! still loses or keeps the batch whole. What a later event of the batch reads back from these
//! writes (an attempt's start, for its outcome and its session) is kept in memory, and read
//! from the view only for attempts that started in an earlier batch: all of the batch's at once
//! ([`Pending::prefetch_attempts`]), then one by one for what the prefetch could not name.

use std::collections::{HashMap, HashSet};

use sqlx::{QueryBuilder, Row};

use super::audit::AuditRow;
use super::{Conn, StoredEvent};
use crate::domain::login_attempt::LoginAttempt;
use crate::store::StoreError;

/// An attempt's context kept from its start, for the audit rows of its outcome and session.
#[derive(Clone, Debug)]
pub(crate) struct AttemptContext {
    pub tenant: String,
    pub connection_id: Option<String>,
    pub protocol: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A `login_attempts_view` row to insert.
struct AttemptStart {
    attempt_id: String,
    context: AttemptContext,
    started_at: i64,
}

/// The writes a batch's projections have pushed and not flushed yet.
#[derive(Default)]
pub(crate) struct Pending {
    audit: Vec<AuditRow>,
    starts: Vec<AttemptStart>,
    /// Known attempt contexts: started in this batch, or read from the view.
    contexts: HashMap<String, AttemptContext>,
}

impl Pending {
    /// Queues an audit row (chained at the flush, in push order).
    pub(crate) fn audit(&mut self, row: AuditRow) {
        self.audit.push(row);
    }

    /// Queues an attempt's start. As `ON CONFLICT DO NOTHING` does, a start already known (a
    /// replay) keeps the context first recorded.
    pub(crate) fn start_attempt(
        &mut self,
        attempt_id: &str,
        context: AttemptContext,
        started_at: i64,
    ) {
        if self.contexts.contains_key(attempt_id) {
            return;
        }
        self.contexts
            .insert(attempt_id.to_owned(), context.clone());
        self.starts.push(AttemptStart {
            attempt_id: attempt_id.to_owned(),
            context,
            started_at,
        });
    }

    /// The context of an attempt: from this batch, or else from the view; `None` when the
    /// attempt's start was never projected.
    pub(crate) async fn attempt(
        &mut self,
        conn: &mut Conn<'_>,
        attempt_id: &str,
    ) -> Result<Option<AttemptContext>, StoreError> {
        if let Some(context) = self.contexts.get(attempt_id) {
            return Ok(Some(context.clone()));
        }
        self.fetch_attempts(conn, &[attempt_id])
            .await?;
        Ok(self.contexts.get(attempt_id).cloned())
    }

    /// Reads at once the contexts of the attempts whose later events are in `events` (one
    /// statement instead of one per outcome).
    pub(crate) async fn prefetch_attempts(
        &mut self,
        conn: &mut Conn<'_>,
        events: &[StoredEvent],
    ) -> Result<(), StoreError> {
        let attempts = events
            .iter()
            .filter(|e| e.aggregate_type == <LoginAttempt as cqrs_es::Aggregate>::TYPE);
        let started_here: HashSet<&str> = attempts
            .clone()
            .filter(|e| e.sequence == 1)
            .map(|e| e.aggregate_id.as_str())
            .collect();
        let mut ids: Vec<&str> = attempts
            .filter(|e| e.sequence > 1)
            .map(|e| e.aggregate_id.as_str())
            .filter(|id| !started_here.contains(id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        self.fetch_attempts(conn, &ids).await
    }

    async fn fetch_attempts(
        &mut self,
        conn: &mut Conn<'_>,
        ids: &[&str],
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let rows = match conn {
            Conn::Postgres(c) => sqlx::query(
                "SELECT attempt_id, tenant, connection_id, protocol, client_ip, user_agent \
                     FROM login_attempts_view WHERE attempt_id = ANY($1)",
            )
            // Planned at each call: a plan kept from when the view was small (just after a
            // rebuild emptied it) would scan the whole view.
            .persistent(false)
            .bind(ids)
            .fetch_all(&mut **c)
            .await?
            .iter()
            .map(context_row)
            .collect::<Result<Vec<_>, _>>()?,
            Conn::Sqlite(c) => {
                let ids =
                    serde_json::to_string(ids).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                sqlx::query(
                    "SELECT attempt_id, tenant, connection_id, protocol, client_ip, user_agent \
                     FROM login_attempts_view \
                     WHERE attempt_id IN (SELECT value FROM json_each($1))",
                )
                .persistent(false)
                .bind(ids)
                .fetch_all(&mut **c)
                .await?
                .iter()
                .map(context_row)
                .collect::<Result<Vec<_>, _>>()?
            }
        };
        for (attempt_id, context) in rows {
            self.contexts
                .entry(attempt_id)
                .or_insert(context);
        }
        Ok(())
    }

    /// Writes everything pushed so far through `conn` (the batch's transaction). Returns how many
    /// audit entries were chained (the others were chained before: a replay or a rebuild).
    pub(crate) async fn flush(&mut self, conn: &mut Conn<'_>) -> Result<usize, StoreError> {
        let starts = std::mem::take(&mut self.starts);
        insert_starts(conn, &starts).await?;

        let audit = std::mem::take(&mut self.audit);
        super::audit_chain::insert_chained_batch(conn, &audit).await
    }
}

fn context_row<R>(row: &R) -> Result<(String, AttemptContext), sqlx::Error>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok((
        row.try_get(0)?,
        AttemptContext {
            tenant: row.try_get(1)?,
            connection_id: row.try_get(2)?,
            protocol: row.try_get(3)?,
            client_ip: row.try_get(4)?,
            user_agent: row.try_get(5)?,
        },
    ))
}

/// Inserts attempts' starts; one already in the view is left as it is.
async fn insert_starts(conn: &mut Conn<'_>, starts: &[AttemptStart]) -> Result<(), StoreError> {
    if starts.is_empty() {
        return Ok(());
    }
    match conn {
        Conn::Postgres(c) => {
            let text = |f: fn(&AttemptStart) -> Option<&String>| -> Vec<Option<&str>> {
                starts
                    .iter()
                    .map(|s| f(s).map(String::as_str))
                    .collect()
            };
            sqlx::query(
                "INSERT INTO login_attempts_view (attempt_id, tenant, connection_id, protocol, \
                 client_ip, user_agent, started_at) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], \
                 $5::text[], $6::text[], $7::bigint[]) ON CONFLICT (attempt_id) DO NOTHING",
            )
            .bind(text(|s| Some(&s.attempt_id)))
            .bind(text(|s| Some(&s.context.tenant)))
            .bind(text(|s| s.context.connection_id.as_ref()))
            .bind(text(|s| s.context.protocol.as_ref()))
            .bind(text(|s| s.context.client_ip.as_ref()))
            .bind(text(|s| s.context.user_agent.as_ref()))
            .bind(
                starts
                    .iter()
                    .map(|s| s.started_at)
                    .collect::<Vec<i64>>(),
            )
            .execute(&mut **c)
            .await?;
        }
        Conn::Sqlite(c) => {
            for chunk in starts.chunks(SQLITE_ROWS) {
                let mut query = QueryBuilder::new(
                    "INSERT INTO login_attempts_view (attempt_id, tenant, connection_id, \
                     protocol, client_ip, user_agent, started_at) ",
                );
                query.push_values(chunk, |mut b, s| {
                    b.push_bind(&s.attempt_id)
                        .push_bind(&s.context.tenant)
                        .push_bind(&s.context.connection_id)
                        .push_bind(&s.context.protocol)
                        .push_bind(&s.context.client_ip)
                        .push_bind(&s.context.user_agent)
                        .push_bind(s.started_at);
                });
                query.push(" ON CONFLICT (attempt_id) DO NOTHING");
                query.build().execute(&mut **c).await?;
            }
        }
    }
    Ok(())
}

/// Rows per multi-row INSERT on SQLite (its statements take at most 32,766 parameters).
pub(crate) const SQLITE_ROWS: usize = 500;
