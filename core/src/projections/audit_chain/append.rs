//! Appending to a tenant's chain under its head lock, and signing checkpoints.

use std::collections::HashMap;

use sqlx::Row;

use super::CheckpointPolicy;
use super::{
    checkpoint_message, current_hash, installed, link_hash, to32, AuditRow, CURRENT_FORM, GENESIS,
};
use crate::on_db;
use crate::store::{now_millis, Db, StoreError};

// Appending

/// Creates the tenant's head if needed and returns it, locked: on PostgreSQL the upsert takes the
/// row lock (a concurrent writer waits for it, then reads the committed head); on SQLite it is
/// the transaction's first write, so the transaction holds the database's write lock.
pub(super) const LOCK_HEAD: &str = "INSERT INTO audit_chain_heads (tenant, position, link_hash, \
     checkpoint_position, checkpoint_time) VALUES ($1, 0, $2, 0, $3) ON CONFLICT (tenant) \
     DO UPDATE SET tenant = excluded.tenant \
     RETURNING position, link_hash, checkpoint_position, checkpoint_time";
/// Written after the entry is chained, in the same transaction: the row takes its chain
/// position (a new one, or the one a replayed event was chained at).
const INSERT_ROW: &str = "INSERT INTO audit_log (event_key, tenant, time, type, attempt_id, \
     connection_id, protocol, outcome, reason, detail, email, user_id, actor, client_ip, \
     user_agent, request_id, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
     $12, $13, $14, $15, $16, (SELECT position FROM audit_chain WHERE event_key = $1)) \
     ON CONFLICT (event_key) DO NOTHING";
/// An event already chained (a replay, or a rebuild of the read model) is not chained again.
const INSERT_LINK: &str = "INSERT INTO audit_chain (tenant, position, event_key, entry_hash, \
     link_hash, form) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_key) DO NOTHING";
pub(super) const UPDATE_HEAD: &str = "UPDATE audit_chain_heads SET position = $2, link_hash = $3, \
     checkpoint_position = $4, checkpoint_time = $5 WHERE tenant = $1";
pub(super) const INSERT_CHECKPOINT: &str = "INSERT INTO audit_checkpoints (tenant, position, head_hash, \
     time, key_id, signature) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, position) \
     DO NOTHING";

/// A head as read under its lock.
struct Head {
    position: i64,
    link: [u8; 32],
    checkpoint_position: i64,
    checkpoint_time: i64,
}

/// Ensures and locks `$tenant`'s head inside `$tx` (see LOCK_HEAD).
macro_rules! lock_head {
    ($tx:ident, $tenant:expr, $now:expr) => {{
        let row = sqlx::query(LOCK_HEAD)
            .bind($tenant)
            .bind(&GENESIS[..])
            .bind($now)
            .fetch_one(&mut *$tx)
            .await?;
        let link: Vec<u8> = row.try_get(1)?;
        Head {
            position: row.try_get(0)?,
            link: to32(&link)
                .ok_or_else(|| StoreError::Corrupt("audit chain head is not 32 bytes".into()))?,
            checkpoint_position: row.try_get(2)?,
            checkpoint_time: row.try_get(3)?,
        }
    }};
}

/// Appends an entry after the locked `$head` (and signs a checkpoint when due), updating
/// `$head` in memory; the caller writes it back with UPDATE_HEAD. Evaluates to false when the
/// event was already chained.
macro_rules! append_link {
    ($tx:ident, $head:ident, $tenant:expr, $event_key:expr, $entry:expr, $policy:expr, $now:expr) => {{
        let position = $head.position + 1;
        let link = link_hash(&$head.link, position, &$entry);
        let added = sqlx::query(INSERT_LINK)
            .bind($tenant)
            .bind(position)
            .bind($event_key)
            .bind(&$entry[..])
            .bind(&link[..])
            .bind(CURRENT_FORM)
            .execute(&mut *$tx)
            .await?
            .rows_affected()
            == 1;
        if added {
            $head.position = position;
        $head.link = link;
        if let Some(policy) = $policy {
            let policy: &CheckpointPolicy = policy;
            if policy.due(
                position,
                $head.checkpoint_position,
                $head.checkpoint_time,
                $now,
            ) {
                let key_id = policy.key.key_id();
                let message = checkpoint_message($tenant, position, &link, $now, key_id);
                let signature = policy.key.sign(&message);
                sqlx::query(INSERT_CHECKPOINT)
                    .bind($tenant)
                    .bind(position)
                    .bind(&link[..])
                    .bind($now)
                    .bind(key_id)
                    .bind(&signature[..])
                    .execute(&mut *$tx)
                    .await?;
                    $head.checkpoint_position = position;
                    $head.checkpoint_time = $now;
                }
            }
        }
        added
    }};
}

macro_rules! write_head {
    ($tx:ident, $tenant:expr, $head:ident) => {{
        sqlx::query(UPDATE_HEAD)
            .bind($tenant)
            .bind($head.position)
            .bind(&$head.link[..])
            .bind($head.checkpoint_position)
            .bind($head.checkpoint_time)
            .execute(&mut *$tx)
            .await?;
    }};
}

macro_rules! bind_row {
    ($query:expr, $row:expr, $email:expr) => {
        $query
            .bind(&$row.event_key)
            .bind(&$row.tenant)
            .bind($row.time)
            .bind(&$row.kind)
            .bind(&$row.attempt_id)
            .bind(&$row.connection_id)
            .bind(&$row.protocol)
            .bind(&$row.outcome)
            .bind(&$row.reason)
            .bind(&$row.detail)
            .bind($email)
            .bind(&$row.user_id)
            .bind(&$row.actor)
            .bind(&$row.client_ip)
            .bind(&$row.user_agent)
            .bind(&$row.request_id)
    };
}

/// Inserts and chains many new rows in one transaction (benchmark data, bulk loads), signing
/// checkpoints by `policy`. The rows' events must not be chained yet.
pub async fn append_batch(
    db: &Db,
    rows: &[AuditRow],
    policy: Option<&CheckpointPolicy>,
) -> Result<(), StoreError> {
    append_many(db, rows, policy, true).await
}

async fn append_many(
    db: &Db,
    rows: &[AuditRow],
    policy: Option<&CheckpointPolicy>,
    insert_rows: bool,
) -> Result<(), StoreError> {
    on_db!(db, |pool| {
        let mut tx = pool.begin().await?;
        let now = now_millis();
        let mut heads: HashMap<&str, Head> = HashMap::new();
        for row in rows {
            let email = row
                .email
                .as_ref()
                .map(|e| e.to_lowercase());
            let entry = current_hash(row, email.as_deref());
            if !heads.contains_key(row.tenant.as_str()) {
                let head = lock_head!(tx, &row.tenant, now);
                heads.insert(row.tenant.as_str(), head);
            }
            let head = heads
                .get_mut(row.tenant.as_str())
                .expect("inserted above");
            append_link!(tx, head, &row.tenant, &row.event_key, entry, policy, now);
            if insert_rows {
                bind_row!(sqlx::query(INSERT_ROW), row, &email)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        for (tenant, head) in &heads {
            write_head!(tx, *tenant, head);
        }
        tx.commit().await?;
    });
    Ok(())
}

/// Chains the audit rows written before the chain existed, once, in row id order: run at start.
/// The first node to take the `audit_chain_backfill` marker does it; returns the rows chained.
/// Only rows of tenants that have no chain yet, and only rows an event in the store accounts
/// for, are chained.
pub async fn backfill(db: &Db) -> Result<u64, StoreError> {
    let pending = on_db!(db, |pool| {
        sqlx::query("SELECT pending FROM audit_chain_backfill")
            .fetch_optional(pool)
            .await?
            .is_some()
    });
    if !pending {
        return Ok(0);
    }
    let rows = on_db!(db, |pool| {
        let records = sqlx::query(
            "SELECT event_key, tenant, time, type, attempt_id, connection_id, protocol, outcome, \
             reason, detail, email, user_id, actor, client_ip, user_agent, request_id \
             FROM audit_log a WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.event_key = a.event_key) \
             AND NOT EXISTS (SELECT 1 FROM audit_chain_heads h WHERE h.tenant = a.tenant) \
             ORDER BY id",
        )
        .fetch_all(pool)
        .await?;
        let mut rows = Vec::with_capacity(records.len());
        for r in records {
            // Only a row that an event in the store accounts for: a row written straight into
            // the table (with the marker set again) stays out of the chain, so verify names it.
            let event_key: String = r.try_get(0)?;
            if !super::event_recorded(db, &event_key).await? {
                tracing::warn!(%event_key, "an audit row no event accounts for was not chained");
                continue;
            }
            rows.push(AuditRow {
                event_key: r.try_get(0)?,
                tenant: r.try_get(1)?,
                time: r.try_get(2)?,
                kind: r.try_get(3)?,
                attempt_id: r.try_get(4)?,
                connection_id: r.try_get(5)?,
                protocol: r.try_get(6)?,
                outcome: r.try_get(7)?,
                reason: r.try_get(8)?,
                detail: r.try_get(9)?,
                email: r.try_get(10)?,
                user_id: r.try_get(11)?,
                actor: r.try_get(12)?,
                client_ip: r.try_get(13)?,
                user_agent: r.try_get(14)?,
                request_id: r.try_get(15)?,
            });
        }
        rows
    });
    // The marker goes in the same transaction as the chaining: a second node waits for it and
    // then finds nothing to do.
    let policy = installed().map(|c| &c.policy);
    on_db!(db, |pool| {
        let mut tx = pool.begin().await?;
        let taken = sqlx::query("DELETE FROM audit_chain_backfill")
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if taken == 0 {
            return Ok(0);
        }
        let now = now_millis();
        let mut heads: HashMap<&str, Head> = HashMap::new();
        for row in &rows {
            let entry = current_hash(row, row.email.as_deref());
            if !heads.contains_key(row.tenant.as_str()) {
                let head = lock_head!(tx, &row.tenant, now);
                heads.insert(row.tenant.as_str(), head);
            }
            let head = heads
                .get_mut(row.tenant.as_str())
                .expect("inserted above");
            if append_link!(tx, head, &row.tenant, &row.event_key, entry, policy, now) {
                sqlx::query("UPDATE audit_log SET position = $2 WHERE event_key = $1")
                    .bind(&row.event_key)
                    .bind(head.position)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        for (tenant, head) in &heads {
            write_head!(tx, *tenant, head);
        }
        tx.commit().await?;
    });
    Ok(rows.len() as u64)
}

/// Signs a checkpoint for every tenant whose head moved since its last checkpoint and whose
/// last checkpoint is older than the policy's period (run periodically by each node; the
/// head lock keeps nodes from signing the same position twice). Returns how many were signed.
pub async fn checkpoint_stale(db: &Db, policy: &CheckpointPolicy) -> Result<u64, StoreError> {
    let cutoff = now_millis() - policy.every_ms;
    let tenants: Vec<String> = on_db!(db, |pool| {
        let rows = sqlx::query(
            "SELECT tenant FROM audit_chain_heads WHERE position > checkpoint_position \
             AND checkpoint_time <= $1",
        )
        .bind(cutoff)
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?
    });
    let mut signed = 0;
    for tenant in &tenants {
        on_db!(db, |pool| {
            let mut tx = pool.begin().await?;
            let now = now_millis();
            let mut head = lock_head!(tx, tenant.as_str(), now);
            if head.position > head.checkpoint_position
                && now - head.checkpoint_time >= policy.every_ms
            {
                let key_id = policy.key.key_id();
                let message = checkpoint_message(tenant, head.position, &head.link, now, key_id);
                let signature = policy.key.sign(&message);
                sqlx::query(INSERT_CHECKPOINT)
                    .bind(tenant.as_str())
                    .bind(head.position)
                    .bind(&head.link[..])
                    .bind(now)
                    .bind(key_id)
                    .bind(&signature[..])
                    .execute(&mut *tx)
                    .await?;
                head.checkpoint_position = head.position;
                head.checkpoint_time = now;
                write_head!(tx, tenant.as_str(), head);
                signed += 1;
            }
            tx.commit().await?;
        });
    }
    Ok(signed)
}
