//! The audit log read model: one row per event worth auditing, in the order of each tenant's
//! hash chain.
//!
//! Listings go by (time, position), newest or oldest first, served by the indexes
//! (tenant[, email or outcome], time, position) whatever the time range. The tail goes by the
//! chain position alone (`audit_log.position`, [`AuditOrder::Commit`]), never by the row id: the
//! position is taken under the tenant's chain head lock inside the transaction that inserts the
//! row, so within a tenant positions are gapless and become visible in order. A reader that has
//! seen position n has therefore seen every entry below n, whatever order concurrent writers
//! commit in, and a cursor past n never skips one. Row ids are drawn before commit (a lower id
//! can appear after a higher one) and are renumbered by a projection rebuild; times are taken
//! before commit too.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
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
    /// The API request that caused the event (from the event metadata).
    pub request_id: Option<String>,
}

impl AuditRow {
    /// A row for `event`: its key, time, actor and request id from the envelope and metadata.
    pub(crate) fn for_event<A: cqrs_es::Aggregate>(
        event: &cqrs_es::EventEnvelope<A>,
        tenant: &str,
        kind: &str,
    ) -> Self {
        let time = event
            .metadata
            .get("time")
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis())
            .unwrap_or_else(crate::store::now_millis);
        AuditRow {
            event_key: format!("{}:{}:{}", A::TYPE, event.aggregate_id, event.sequence),
            tenant: tenant.to_owned(),
            time,
            kind: kind.to_owned(),
            actor: event.metadata.get("actor").cloned(),
            request_id: event
                .metadata
                .get("request_id")
                .cloned(),
            ..AuditRow::default()
        }
    }
}

/// One stored audit entry.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AuditEntry {
    /// Row id (renumbered by a projection rebuild; not for clients).
    pub id: i64,
    /// Position in the tenant's hash chain: gapless, in commit order, stable.
    pub position: i64,
    /// `aggregate:id:sequence` of the event: unique and stable.
    pub event_key: String,
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
    /// Who caused it: `admin:<credential>`, `attempt:<id>`, `user:<id>` or `system`.
    pub actor: Option<String>,
    /// Client IP of the login.
    pub client_ip: Option<String>,
    /// User agent of the login.
    pub user_agent: Option<String>,
    /// API request that caused it.
    pub request_id: Option<String>,
}

/// Who caused an entry, as the audit shape names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A person: someone signing in, or a signed-in user.
    Person,
    /// An admin API credential.
    AdminCredential,
    /// Gatehouse itself.
    System,
}

/// What an entry acted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// A tenant's own settings (creation, login policy).
    Tenant,
    /// An SSO connection of the tenant.
    Connection,
    /// A Gatehouse user account.
    User,
    /// A browser session.
    Session,
    /// An admin API credential.
    Credential,
    /// An audit log (reads of it).
    AuditLog,
}

impl AuditEntry {
    /// Reads an entry from a row selected with [`ENTRY_COLUMNS`].
    pub fn from_row<R>(row: &R) -> Result<Self, sqlx::Error>
    where
        R: Row,
        for<'c> &'c str: sqlx::ColumnIndex<R>,
        for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(AuditEntry {
            id: row.try_get("id")?,
            position: row.try_get("position")?,
            event_key: row.try_get("event_key")?,
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
            request_id: row.try_get("request_id")?,
        })
    }

    /// The cursor just past this entry.
    pub fn cursor(&self) -> AuditCursor {
        AuditCursor::after(self.time_ms, self.position)
    }

    /// Who caused it, and their id: the credential id for an admin, the user id for a person
    /// when known (a person who has not signed in yet is known by the attempt and email).
    pub fn actor_parts(&self) -> (ActorKind, Option<String>) {
        let actor = self
            .actor
            .as_deref()
            .unwrap_or("system");
        if let Some(id) = actor.strip_prefix("admin:") {
            (ActorKind::AdminCredential, Some(id.to_owned()))
        } else if let Some(id) = actor.strip_prefix("user:") {
            (ActorKind::Person, Some(id.to_owned()))
        } else if actor.starts_with("attempt:") {
            (ActorKind::Person, self.user_id.clone())
        } else {
            (ActorKind::System, None)
        }
    }

    /// What it acted on, derived from the event's aggregate and type.
    pub fn target(&self) -> (TargetKind, Option<String>) {
        let mut parts = self.event_key.splitn(2, ':');
        let aggregate = parts.next().unwrap_or_default();
        let aggregate_id = parts
            .next()
            .and_then(|rest| rest.rsplit_once(':'))
            .map(|(id, _sequence)| id.to_owned());
        match aggregate {
            "tenant"
                if self
                    .kind
                    .starts_with("tenant.connection.") =>
            {
                (TargetKind::Connection, self.connection_id.clone())
            }
            "login_attempt" if self.connection_id.is_some() => {
                (TargetKind::Connection, self.connection_id.clone())
            }
            "user" => (TargetKind::User, aggregate_id),
            "session" => (TargetKind::Session, aggregate_id),
            "credential" => (TargetKind::Credential, aggregate_id),
            "audit_read" => {
                let log = self
                    .tenant
                    .strip_suffix(".access") // an access log (see projections::credentials)
                    .unwrap_or(&self.tenant);
                (TargetKind::AuditLog, Some(log.to_owned()))
            }
            _ => (TargetKind::Tenant, Some(self.tenant.clone())),
        }
    }
}

/// The order of a listing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuditOrder {
    /// Newest first by time (the default; ties by position): a cursor pages back into older
    /// entries.
    #[default]
    NewestFirst,
    /// Oldest first by time (ties by position).
    OldestFirst,
    /// Oldest first in commit order (chain position): the tail mode. A cursor gives every entry
    /// recorded after it, whatever its time, so a poller never misses one.
    Commit,
}

/// The type filter: one exact type, or every type under a dotted prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KindFilter {
    /// Exactly this type (`login.failed`).
    Exact(String),
    /// Every type starting with this prefix, which ends in `.` (`login.`).
    Prefix(String),
}

/// A place in a tenant's audit log, just after one entry: its time and its position, opaque to
/// clients. A listing by time continues strictly after (or, newest first, before) the pair
/// (time, position); the commit-order tail continues after the position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditCursor {
    time: i64,
    position: i64,
}

const CURSOR_PREFIX: &str = "c2_";
/// Base64 (URL alphabet, unpadded) of 16 bytes.
const CURSOR_BODY: usize = 22;

impl AuditCursor {
    /// The cursor just after the entry at `time` and `position`.
    pub fn after(time: i64, position: i64) -> Self {
        AuditCursor { time, position }
    }

    /// The cursor before the first entry of a log, for a tail that starts at the beginning.
    pub fn start() -> Self {
        AuditCursor {
            time: i64::MIN,
            position: 0,
        }
    }

    /// The chain position the cursor stands at.
    pub fn position(self) -> i64 {
        self.position
    }

    /// The time (Unix ms) of the entry the cursor stands at.
    pub fn time(self) -> i64 {
        self.time
    }

    /// The opaque text handed to clients.
    pub fn encode(self) -> String {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.time.to_be_bytes());
        bytes[8..].copy_from_slice(&self.position.to_be_bytes());
        format!("{CURSOR_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Reads a cursor made by [`AuditCursor::encode`]; `None` for anything else (never panics,
    /// whatever the input).
    pub fn decode(text: &str) -> Option<Self> {
        let body = text.strip_prefix(CURSOR_PREFIX)?;
        if body.len() != CURSOR_BODY {
            return None;
        }
        let bytes: [u8; 16] = URL_SAFE_NO_PAD
            .decode(body)
            .ok()?
            .try_into()
            .ok()?;
        let (time, position) = bytes.split_at(8);
        let time = i64::from_be_bytes(time.try_into().ok()?);
        let position = i64::from_be_bytes(position.try_into().ok()?);
        (position >= 0).then_some(AuditCursor { time, position })
    }
}

/// Filters over one tenant's audit log, shared by the page, export and summary readers. Every
/// field is ANDed; values are bound as SQL parameters, never spliced into the text.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Tenant slug (always required).
    pub tenant: String,
    /// Only entries at or after this time (Unix ms).
    pub from_ms: Option<i64>,
    /// Only entries before this time (Unix ms).
    pub to_ms: Option<i64>,
    /// Exact type, or every type under a prefix.
    pub kind: Option<KindFilter>,
    /// Outcome (`succeeded` or `failed`).
    pub outcome: Option<String>,
    /// Stable reason code.
    pub reason: Option<String>,
    /// Email, compared lowercased.
    pub email: Option<String>,
    /// Gatehouse user id.
    pub user_id: Option<String>,
    /// Connection id.
    pub connection_id: Option<String>,
    /// Protocol of the connection.
    pub protocol: Option<String>,
    /// Client IP, in the canonical text form (`std::net::IpAddr`'s `Display`).
    pub client_ip: Option<String>,
    /// Newest or oldest first.
    pub order: AuditOrder,
    /// Continue after this cursor, in `order`.
    pub cursor: Option<AuditCursor>,
    /// Page size, 1..=200; `None` is the default page of 50 (an export reads without a limit).
    pub limit: Option<i64>,
}

/// A value bound to a `$n` placeholder of [`AuditFilter::where_clause`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SqlParam {
    /// A bigint.
    Int(i64),
    /// A text value.
    Text(String),
}

/// The column of the commit order (see the module docs).
const ORDER_COLUMN: &str = "position";

impl AuditFilter {
    /// A filter for every entry of `tenant`, newest first.
    pub fn tenant(tenant: impl Into<String>) -> Self {
        AuditFilter {
            tenant: tenant.into(),
            ..AuditFilter::default()
        }
    }

    /// The SQL condition over `audit_log`'s columns, starting with ` WHERE tenant = $n` where
    /// `n` is `first_param`, and the values to bind to `$first_param`.. in order (bind them with
    /// [`bind_params`]). Includes the cursor; not the order or the limit (see
    /// [`AuditFilter::order_by`]). Valid SQL on both stores.
    pub fn where_clause(&self, first_param: usize) -> (String, Vec<SqlParam>) {
        let mut sql = String::new();
        let mut params = Vec::new();
        let mut push = |clause: &str, param: SqlParam| {
            let n = first_param + params.len();
            params.push(param);
            if n == first_param {
                // An entry is listed once it is chained (rows from before the chain get their
                // position when they are chained at start).
                sql.push_str(&format!(
                    " WHERE {clause} ${n} AND {ORDER_COLUMN} IS NOT NULL"
                ));
            } else {
                sql.push_str(&format!(" AND {clause} ${n}"));
            }
        };
        push("tenant =", SqlParam::Text(self.tenant.clone()));
        if let Some(from) = self.from_ms {
            push("time >=", SqlParam::Int(from));
        }
        if let Some(to) = self.to_ms {
            push("time <", SqlParam::Int(to));
        }
        match &self.kind {
            Some(KindFilter::Exact(kind)) => push("type =", SqlParam::Text(kind.clone())),
            Some(KindFilter::Prefix(prefix)) => {
                // `_` and `%` are LIKE wildcards: escape them (and the escape character).
                let escaped = prefix
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_");
                let n = first_param + params.len();
                params.push(SqlParam::Text(format!("{escaped}%")));
                sql.push_str(&format!(" AND type LIKE ${n} ESCAPE '\\'"));
            }
            None => {}
        }
        let mut push = |clause: &str, param: SqlParam| {
            let n = first_param + params.len();
            params.push(param);
            sql.push_str(&format!(" AND {clause} ${n}"));
        };
        for (column, value) in [
            ("outcome", &self.outcome),
            ("reason", &self.reason),
            ("user_id", &self.user_id),
            ("connection_id", &self.connection_id),
            ("protocol", &self.protocol),
            ("client_ip", &self.client_ip),
        ] {
            if let Some(value) = value {
                push(&format!("{column} ="), SqlParam::Text(value.clone()));
            }
        }
        if let Some(email) = &self.email {
            push("email =", SqlParam::Text(email.to_lowercase()));
        }
        if let Some(cursor) = self.cursor {
            // Row values: one index range over (time, position) on both stores.
            let n = first_param + params.len();
            let pair = [
                SqlParam::Int(cursor.time()),
                SqlParam::Int(cursor.position()),
            ];
            match self.order {
                AuditOrder::NewestFirst => {
                    sql.push_str(&format!(" AND (time, {ORDER_COLUMN}) < (${n}, ${})", n + 1));
                    params.extend(pair);
                }
                AuditOrder::OldestFirst => {
                    sql.push_str(&format!(" AND (time, {ORDER_COLUMN}) > (${n}, ${})", n + 1));
                    params.extend(pair);
                }
                AuditOrder::Commit => {
                    sql.push_str(&format!(" AND {ORDER_COLUMN} > ${n}"));
                    params.push(SqlParam::Int(cursor.position()));
                }
            }
        }
        (sql, params)
    }

    /// ` ORDER BY ...` for this filter's order: by (time, position), which the indexes
    /// (tenant, [email or outcome,] time, position) serve, or by position for the commit order.
    pub fn order_by(&self) -> String {
        match self.order {
            AuditOrder::NewestFirst => format!(" ORDER BY time DESC, {ORDER_COLUMN} DESC"),
            AuditOrder::OldestFirst => format!(" ORDER BY time ASC, {ORDER_COLUMN} ASC"),
            AuditOrder::Commit => format!(" ORDER BY {ORDER_COLUMN} ASC"),
        }
    }
}

/// Binds `params` to `query` in order, on either store.
pub fn bind_params<'q, DB>(
    mut query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    params: &'q [SqlParam],
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for param in params {
        query = match param {
            SqlParam::Int(value) => query.bind(*value),
            SqlParam::Text(value) => query.bind(value.as_str()),
        };
    }
    query
}

/// A page and the cursor to continue from.
#[derive(Clone, Debug)]
pub struct AuditPage {
    /// Entries, in the filter's order.
    pub entries: Vec<AuditEntry>,
    /// Where the next page starts. By time: `None` once the last entry was served. In commit
    /// order (the tail): always set (the last entry served, else the filter's cursor, else the
    /// start), so a poller keeps it and asks again.
    pub next: Option<AuditCursor>,
}

/// Reads the audit log.
pub struct AuditReader {
    db: Db,
}

/// The columns of [`AuditEntry`], in `audit_log` (read them with [`AuditEntry::from_row`]).
pub const ENTRY_COLUMNS: &str = "id, position, event_key, time, tenant, type, attempt_id, \
     connection_id, protocol, outcome, reason, detail, email, user_id, actor, client_ip, \
     user_agent, request_id";

impl AuditReader {
    /// A reader over `db`.
    pub fn new(db: Db) -> Self {
        AuditReader { db }
    }

    /// One page in the filter's order. Served by the `audit_log` indexes; no event replay.
    pub async fn page(&self, filter: &AuditFilter) -> Result<AuditPage, StoreError> {
        let limit = filter
            .limit
            .unwrap_or(DEFAULT_PAGE)
            .clamp(1, MAX_PAGE);
        let (condition, params) = filter.where_clause(1);
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM audit_log{condition}{} LIMIT {}",
            filter.order_by(),
            limit + 1
        );

        let mut entries = on_db!(&self.db, |pool| {
            let rows = bind_params(sqlx::query(&sql), &params)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(AuditEntry::from_row)
                .collect::<Result<Vec<_>, _>>()?
        });
        let more = entries.len() as i64 > limit;
        entries.truncate(limit as usize);
        if filter.order == AuditOrder::Commit {
            self.cut_at_gap(filter, &mut entries)
                .await?;
        }

        let last = entries.last().map(AuditEntry::cursor);
        let next = match filter.order {
            AuditOrder::NewestFirst | AuditOrder::OldestFirst if more => last,
            AuditOrder::NewestFirst | AuditOrder::OldestFirst => None,
            AuditOrder::Commit => last
                .or(filter.cursor)
                .or(Some(AuditCursor::start())),
        };
        Ok(AuditPage { entries, next })
    }

    /// In commit order, a page must not run past an entry that is chained but not (yet) in the
    /// audit log: that happens only while `gatehouse projections rebuild` refills the log (or
    /// if a row was deleted, which `audit verify` names). A poller holding the cursor would
    /// otherwise pass over it for good. The page stops before the first such entry; the next
    /// poll carries on once it is back. One index range count on each table, over the page's
    /// span of positions.
    async fn cut_at_gap(
        &self,
        filter: &AuditFilter,
        entries: &mut Vec<AuditEntry>,
    ) -> Result<(), StoreError> {
        let Some(last) = entries.last().map(|e| e.position) else {
            return Ok(());
        };
        let after = filter
            .cursor
            .map_or(0, AuditCursor::position);
        let missing: Option<i64> = on_db!(&self.db, |pool| {
            let counts = sqlx::query(
                "SELECT (SELECT COUNT(*) FROM audit_chain WHERE tenant = $1 AND position > $2 \
                 AND position <= $3), (SELECT COUNT(*) FROM audit_log WHERE tenant = $1 \
                 AND position > $2 AND position <= $3)",
            )
            .bind(&filter.tenant)
            .bind(after)
            .bind(last)
            .fetch_one(pool)
            .await?;
            let chained: i64 = counts.try_get(0)?;
            let listed: i64 = counts.try_get(1)?;
            if chained == listed {
                None
            } else {
                sqlx::query(
                    "SELECT MIN(c.position) FROM audit_chain c WHERE c.tenant = $1 \
                     AND c.position > $2 AND c.position <= $3 AND NOT EXISTS (SELECT 1 \
                     FROM audit_log a WHERE a.tenant = c.tenant AND a.position = c.position)",
                )
                .bind(&filter.tenant)
                .bind(after)
                .bind(last)
                .fetch_one(pool)
                .await?
                .try_get(0)?
            }
        });
        if let Some(missing) = missing {
            entries.retain(|e| e.position < missing);
        }
        Ok(())
    }
}

/// Page size when the filter names none.
pub const DEFAULT_PAGE: i64 = 50;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_refuses_anything_else() {
        for (time, position) in [
            (0, 0),
            (-5, 1),
            (1_700_000_000_000, 42),
            (i64::MAX, i64::MAX),
        ] {
            let cursor = AuditCursor::after(time, position);
            assert_eq!(AuditCursor::decode(&cursor.encode()), Some(cursor));
        }
        assert_eq!(
            AuditCursor::decode(&AuditCursor::start().encode()),
            Some(AuditCursor::start())
        );
        let good = AuditCursor::after(1, 7).encode();
        for bad in [
            "",
            "7",
            "c2_",
            "c1_AAAAAAAAAAc",
            &good[..good.len() - 1],
            &format!("{good}A"),
            &good.replace("c2_", "c3_"),
            "c2_'; DROP TABLE audit_log;--",
            "c2_//////////////////////w",
            &AuditCursor::after(1, -1).encode(),
        ] {
            assert_eq!(AuditCursor::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn where_clause_numbers_every_parameter_in_order() {
        let filter = AuditFilter {
            from_ms: Some(10),
            to_ms: Some(20),
            kind: Some(KindFilter::Prefix("login.".into())),
            outcome: Some("failed".into()),
            reason: Some("state_mismatch".into()),
            email: Some("A@Example.COM".into()),
            user_id: Some("u".into()),
            connection_id: Some("c".into()),
            protocol: Some("oidc".into()),
            client_ip: Some("192.0.2.1".into()),
            order: AuditOrder::NewestFirst,
            cursor: Some(AuditCursor::after(15, 5)),
            ..AuditFilter::tenant("acme")
        };

        let (sql, params) = filter.where_clause(3);

        assert_eq!(
            sql,
            " WHERE tenant = $3 AND position IS NOT NULL AND time >= $4 AND time < $5 \
             AND type LIKE $6 ESCAPE '\\' AND outcome = $7 AND reason = $8 AND user_id = $9 \
             AND connection_id = $10 AND protocol = $11 AND client_ip = $12 AND email = $13 \
             AND (time, position) < ($14, $15)"
        );
        assert_eq!(params.len(), 13);
        assert_eq!(params[3], SqlParam::Text("login.%".into()));
        assert_eq!(params[10], SqlParam::Text("a@example.com".into()));
        assert_eq!(params[11..], [SqlParam::Int(15), SqlParam::Int(5)]);
        assert_eq!(filter.order_by(), " ORDER BY time DESC, position DESC");
    }

    #[test]
    fn each_order_has_its_cursor_condition() {
        let at = |order| AuditFilter {
            order,
            cursor: Some(AuditCursor::after(15, 5)),
            ..AuditFilter::tenant("acme")
        };

        let oldest = at(AuditOrder::OldestFirst);
        let commit = at(AuditOrder::Commit);

        assert!(oldest
            .where_clause(1)
            .0
            .ends_with(" AND (time, position) > ($2, $3)"));
        assert_eq!(oldest.order_by(), " ORDER BY time ASC, position ASC");
        let (sql, params) = commit.where_clause(1);
        assert!(sql.ends_with(" AND position > $2"), "{sql}");
        assert_eq!(params[1..], [SqlParam::Int(5)]);
        assert_eq!(commit.order_by(), " ORDER BY position ASC");
    }

    #[test]
    fn prefix_escapes_like_wildcards() {
        let filter = AuditFilter {
            kind: Some(KindFilter::Prefix("user_x.".into())),
            ..AuditFilter::tenant("acme")
        };

        let (_, params) = filter.where_clause(1);

        assert_eq!(params[1], SqlParam::Text("user\\_x.%".into()));
    }
}
