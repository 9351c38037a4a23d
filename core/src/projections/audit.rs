//! The audit log read model: one row per event worth auditing, newest first by row id.

use serde::Serialize;
use sqlx::Row;

use crate::on_db;
use crate::store::{Db, StoreError};

/// Largest page the audit API serves.
pub const MAX_PAGE: i64 = 200;

/// A row to write; `event_key` makes the write idempotent.
#[derive(Clone, Debug, Default)]
pub struct AuditRow {
    pub event_key: String,
    pub tenant: String,
    pub time: i64,
    pub kind: String,
    pub attempt_id: Option<String>,
    pub connection_id: Option<String>,
    pub protocol: Option<String>,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub detail: Option<String>,
    pub email: Option<String>,
    pub user_id: Option<String>,
    pub actor: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

impl AuditRow {
    /// Inserts the row (email lowercased) and appends it to its tenant's hash chain, in one
    /// transaction (see `audit_chain`).
    pub(crate) async fn insert(&self, db: &Db) -> Result<(), StoreError> {
        super::audit_chain::insert_chained(db, self).await
    }
}

/// One audit entry as the API returns it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AuditEntry {
    /// Position in the log; also the pagination cursor.
    pub id: i64,
    /// When the event happened (Unix milliseconds).
    pub time_ms: i64,
    /// Tenant slug.
    pub tenant: String,
    /// Dotted past-tense type, such as `login.failed`.
    pub kind: String,
    /// Login attempt, for login and session events.
    pub attempt_id: Option<String>,
    /// Connection involved.
    pub connection_id: Option<String>,
    /// Protocol of the connection.
    pub protocol: Option<String>,
    /// `succeeded` or `failed` for login outcomes.
    pub outcome: Option<String>,
    /// Stable reason code of a failure (or why a session ended).
    pub reason: Option<String>,
    /// Safe detail of a failure.
    pub detail: Option<String>,
    /// Email involved (lowercased).
    pub email: Option<String>,
    /// User involved.
    pub user_id: Option<String>,
    /// Who caused it: `admin:<credential>`, `attempt:<id>` or `system`.
    pub actor: Option<String>,
    /// Client IP of the login.
    pub client_ip: Option<String>,
    /// User agent of the login.
    pub user_agent: Option<String>,
}

/// Filters for one page of a tenant's audit log, newest first.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Tenant slug (always required).
    pub tenant: String,
    /// Only entries at or after this time (Unix ms).
    pub from_ms: Option<i64>,
    /// Only entries before this time (Unix ms).
    pub to_ms: Option<i64>,
    /// Exact type, or a prefix when it ends with `.` (`login.`).
    pub kind: Option<String>,
    /// Exact email, compared lowercased.
    pub email: Option<String>,
    /// `succeeded` or `failed`.
    pub outcome: Option<String>,
    /// Only entries older than this cursor (an entry id).
    pub before_id: Option<i64>,
    /// Page size, 1..=200.
    pub limit: i64,
}

/// A page and the cursor of the next, older page.
#[derive(Clone, Debug)]
pub struct AuditPage {
    /// Entries, newest first.
    pub entries: Vec<AuditEntry>,
    /// Cursor for the next page, if there may be more.
    pub next_before_id: Option<i64>,
}

/// Reads the audit log.
pub struct AuditReader {
    db: Db,
}

enum Param {
    Int(i64),
    Text(String),
}

impl AuditReader {
    /// A reader over `db`.
    pub fn new(db: Db) -> Self {
        AuditReader { db }
    }

    /// One page, newest first. Served by the `audit_log` indexes; no event replay.
    pub async fn page(&self, filter: &AuditFilter) -> Result<AuditPage, StoreError> {
        let limit = filter.limit.clamp(1, MAX_PAGE);
        let mut sql = String::from(
            "SELECT id, time, tenant, type, attempt_id, connection_id, protocol, outcome, \
             reason, detail, email, user_id, actor, client_ip, user_agent FROM audit_log \
             WHERE tenant = $1",
        );
        let mut params = vec![Param::Text(filter.tenant.clone())];
        let mut push = |clause: &str, param: Param| {
            params.push(param);
            sql.push_str(&format!(" AND {clause} ${}", params.len()));
        };
        if let Some(from) = filter.from_ms {
            push("time >=", Param::Int(from));
        }
        if let Some(to) = filter.to_ms {
            push("time <", Param::Int(to));
        }
        match filter.kind.as_deref() {
            Some(prefix) if prefix.ends_with('.') => {
                // Type names are [a-z._] only (checked by the API), so LIKE wildcards cannot
                // appear in them.
                push("type LIKE", Param::Text(format!("{prefix}%")));
            }
            Some(kind) => push("type =", Param::Text(kind.to_owned())),
            None => {}
        }
        if let Some(email) = &filter.email {
            push("email =", Param::Text(email.to_lowercase()));
        }
        if let Some(outcome) = &filter.outcome {
            push("outcome =", Param::Text(outcome.clone()));
        }
        if let Some(before) = filter.before_id {
            push("id <", Param::Int(before));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", limit + 1));

        let mut entries = on_db!(&self.db, |pool| {
            let mut query = sqlx::query(&sql);
            for param in &params {
                query = match param {
                    Param::Int(value) => query.bind(*value),
                    Param::Text(value) => query.bind(value.as_str()),
                };
            }
            let rows = query.fetch_all(pool).await?;
            let mut entries = Vec::with_capacity(rows.len());
            for row in rows {
                entries.push(AuditEntry {
                    id: row.try_get("id")?,
                    time_ms: row.try_get("time")?,
                    tenant: row.try_get("tenant")?,
                    kind: row.try_get("type")?,
                    attempt_id: row.try_get("attempt_id")?,
                    connection_id: row.try_get("connection_id")?,
                    protocol: row.try_get("protocol")?,
                    outcome: row.try_get("outcome")?,
                    reason: row.try_get("reason")?,
                    detail: row.try_get("detail")?,
                    email: row.try_get("email")?,
                    user_id: row.try_get("user_id")?,
                    actor: row.try_get("actor")?,
                    client_ip: row.try_get("client_ip")?,
                    user_agent: row.try_get("user_agent")?,
                });
            }
            entries
        });
        let more = entries.len() as i64 > limit;
        entries.truncate(limit as usize);
        let next_before_id = if more {
            entries.last().map(|e| e.id)
        } else {
            None
        };
        Ok(AuditPage {
            entries,
            next_before_id,
        })
    }
}
