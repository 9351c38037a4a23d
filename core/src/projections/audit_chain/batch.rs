//! Chaining a projection batch's audit rows at once.
//!
//! The batch locks the head of each tenant it touches once (in tenant order, so two batches
//! cannot deadlock), reads which of its events are already chained (a replay, or a rebuild of the
//! read model: those keep their position and are not chained again), computes the new links and
//! the checkpoints due in memory in event order, exactly as one append after another would, and
//! writes links, checkpoints, heads and audit rows with one multi-row statement each (UNNEST
//! arrays on PostgreSQL, multi-row VALUES on SQLite). It all happens in the projection's
//! transaction, which also records the batch's position.

use std::collections::HashMap;

use sqlx::{QueryBuilder, Row};

use super::append::{INSERT_CHECKPOINT, LOCK_HEAD, UPDATE_HEAD};
use super::{
    checkpoint_message, current_hash, installed, link_hash, to32, AuditRow, CheckpointPolicy,
    CURRENT_FORM, GENESIS,
};
use crate::projections::batch::SQLITE_ROWS;
use crate::projections::Conn;
use crate::store::{now_millis, StoreError};

/// Inserts `rows` (in event order) into the audit log and chains those not chained yet, in the
/// caller's projection transaction. Returns how many entries it chained.
pub(crate) async fn insert_chained_batch(
    conn: &mut Conn<'_>,
    rows: &[AuditRow],
) -> Result<usize, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let now = now_millis();
    let policy = installed().map(|c| &c.policy);
    let emails: Vec<Option<String>> = rows
        .iter()
        .map(|r| {
            r.email
                .as_ref()
                .map(|e| e.to_lowercase())
        })
        .collect();
    let mut tenants: Vec<&str> = rows
        .iter()
        .map(|r| r.tenant.as_str())
        .collect();
    tenants.sort_unstable();
    tenants.dedup();
    let keys: Vec<&str> = rows
        .iter()
        .map(|r| r.event_key.as_str())
        .collect();

    let mut heads = lock_heads(conn, &tenants, now).await?;
    let chained = chained_positions(conn, &keys).await?;
    let plan = plan(rows, &emails, &mut heads, chained, policy, now);

    write_links(conn, &plan.links).await?;
    write_checkpoints(conn, &plan.checkpoints, policy, now).await?;
    write_heads(conn, &heads).await?;
    write_rows(conn, rows, &emails, &plan.positions).await?;
    Ok(plan.links.len())
}

/// A tenant's head, read under its lock and moved in memory.
struct Head {
    position: i64,
    link: [u8; 32],
    checkpoint_position: i64,
    checkpoint_time: i64,
    moved: bool,
}

/// A new link of the chain.
struct NewLink<'a> {
    tenant: &'a str,
    position: i64,
    event_key: &'a str,
    entry: [u8; 32],
    link: [u8; 32],
}

/// A signed checkpoint (at the batch's time, by the installed key).
struct NewCheckpoint<'a> {
    tenant: &'a str,
    position: i64,
    head: [u8; 32],
    signature: Vec<u8>,
}

struct Plan<'a> {
    links: Vec<NewLink<'a>>,
    checkpoints: Vec<NewCheckpoint<'a>>,
    /// The chain position of each row.
    positions: Vec<i64>,
}

/// Chains, in order, the rows whose event is not chained yet, after the locked heads.
fn plan<'a>(
    rows: &'a [AuditRow],
    emails: &[Option<String>],
    heads: &mut HashMap<String, Head>,
    mut chained: HashMap<String, i64>,
    policy: Option<&CheckpointPolicy>,
    now: i64,
) -> Plan<'a> {
    let mut plan = Plan {
        links: Vec::new(),
        checkpoints: Vec::new(),
        positions: Vec::with_capacity(rows.len()),
    };
    for (row, email) in rows.iter().zip(emails) {
        if let Some(position) = chained.get(&row.event_key) {
            plan.positions.push(*position);
            continue;
        }
        let head = heads
            .get_mut(&row.tenant)
            .expect("every tenant of the batch has its head locked");
        let entry = current_hash(row, email.as_deref());
        let position = head.position + 1;
        let link = link_hash(&head.link, position, &entry);
        head.position = position;
        head.link = link;
        head.moved = true;
        if let Some(policy) = policy {
            if policy.due(
                position,
                head.checkpoint_position,
                head.checkpoint_time,
                now,
            ) {
                let key_id = policy.key.key_id();
                let message = checkpoint_message(&row.tenant, position, &link, now, key_id);
                plan.checkpoints.push(NewCheckpoint {
                    tenant: &row.tenant,
                    position,
                    head: link,
                    signature: policy.key.sign(&message).to_vec(),
                });
                head.checkpoint_position = position;
                head.checkpoint_time = now;
            }
        }
        plan.links.push(NewLink {
            tenant: &row.tenant,
            position,
            event_key: &row.event_key,
            entry,
            link,
        });
        plan.positions.push(position);
        chained.insert(row.event_key.clone(), position);
    }
    plan
}

/// Creates the heads that do not exist yet and locks them all, in tenant order.
async fn lock_heads(
    conn: &mut Conn<'_>,
    tenants: &[&str],
    now: i64,
) -> Result<HashMap<String, Head>, StoreError> {
    let rows = match conn {
        Conn::Postgres(c) => sqlx::query(
            "INSERT INTO audit_chain_heads (tenant, position, link_hash, \
                 checkpoint_position, checkpoint_time) \
                 SELECT t, 0, $2, 0, $3 FROM UNNEST($1::text[]) AS u(t) ORDER BY t \
                 ON CONFLICT (tenant) DO UPDATE SET tenant = excluded.tenant \
                 RETURNING tenant, position, link_hash, checkpoint_position, checkpoint_time",
        )
        .bind(tenants)
        .bind(&GENESIS[..])
        .bind(now)
        .fetch_all(&mut **c)
        .await?
        .iter()
        .map(head_row)
        .collect::<Result<Vec<_>, _>>()?,
        Conn::Sqlite(c) => {
            // One writer at a time: the first write took the database's write lock already.
            let mut heads = Vec::with_capacity(tenants.len());
            for tenant in tenants {
                let row = sqlx::query(LOCK_HEAD)
                    .bind(tenant)
                    .bind(&GENESIS[..])
                    .bind(now)
                    .fetch_one(&mut **c)
                    .await?;
                heads.push((
                    (*tenant).to_owned(),
                    row.try_get(0)?,
                    row.try_get::<Vec<u8>, _>(1)?,
                    row.try_get(2)?,
                    row.try_get(3)?,
                ));
            }
            heads
        }
    };
    let mut heads = HashMap::with_capacity(rows.len());
    for (tenant, position, link, checkpoint_position, checkpoint_time) in rows {
        let link = to32(&link)
            .ok_or_else(|| StoreError::Corrupt("audit chain head is not 32 bytes".into()))?;
        heads.insert(
            tenant,
            Head {
                position,
                link,
                checkpoint_position,
                checkpoint_time,
                moved: false,
            },
        );
    }
    Ok(heads)
}

type HeadRow = (String, i64, Vec<u8>, i64, i64);

fn head_row(row: &sqlx::postgres::PgRow) -> Result<HeadRow, sqlx::Error> {
    Ok((
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
        row.try_get(4)?,
    ))
}

/// The chain positions of the events among `keys` that are already chained.
async fn chained_positions(
    conn: &mut Conn<'_>,
    keys: &[&str],
) -> Result<HashMap<String, i64>, StoreError> {
    let rows: Vec<(String, i64)> = match conn {
        Conn::Postgres(c) => {
            sqlx::query_as("SELECT event_key, position FROM audit_chain WHERE event_key = ANY($1)")
                // Planned at each call, for the chain's current size.
                .persistent(false)
                .bind(keys)
                .fetch_all(&mut **c)
                .await?
        }
        Conn::Sqlite(c) => {
            let keys =
                serde_json::to_string(keys).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query_as(
                "SELECT event_key, position FROM audit_chain \
                 WHERE event_key IN (SELECT value FROM json_each($1))",
            )
            .bind(keys)
            .fetch_all(&mut **c)
            .await?
        }
    };
    Ok(rows.into_iter().collect())
}

/// Inserts the new links. Every one must be new: the heads are locked, so an event chained
/// meanwhile by another writer would be a fault, and the batch fails (and rolls back) rather
/// than leave a link out of its chain.
async fn write_links(conn: &mut Conn<'_>, links: &[NewLink<'_>]) -> Result<(), StoreError> {
    if links.is_empty() {
        return Ok(());
    }
    let mut added = 0;
    match conn {
        Conn::Postgres(c) => {
            added += sqlx::query(
                "INSERT INTO audit_chain (tenant, position, event_key, entry_hash, link_hash, \
                 form) SELECT t, p, k, e, l, $6 FROM UNNEST($1::text[], $2::bigint[], \
                 $3::text[], $4::bytea[], $5::bytea[]) AS u(t, p, k, e, l) \
                 ON CONFLICT (event_key) DO NOTHING",
            )
            .bind(
                links
                    .iter()
                    .map(|l| l.tenant)
                    .collect::<Vec<_>>(),
            )
            .bind(
                links
                    .iter()
                    .map(|l| l.position)
                    .collect::<Vec<_>>(),
            )
            .bind(
                links
                    .iter()
                    .map(|l| l.event_key)
                    .collect::<Vec<_>>(),
            )
            .bind(
                links
                    .iter()
                    .map(|l| &l.entry[..])
                    .collect::<Vec<_>>(),
            )
            .bind(
                links
                    .iter()
                    .map(|l| &l.link[..])
                    .collect::<Vec<_>>(),
            )
            .bind(CURRENT_FORM)
            .execute(&mut **c)
            .await?
            .rows_affected();
        }
        Conn::Sqlite(c) => {
            for chunk in links.chunks(SQLITE_ROWS) {
                let mut query = QueryBuilder::new(
                    "INSERT INTO audit_chain (tenant, position, event_key, entry_hash, \
                     link_hash, form) ",
                );
                query.push_values(chunk, |mut b, l| {
                    b.push_bind(l.tenant)
                        .push_bind(l.position)
                        .push_bind(l.event_key)
                        .push_bind(&l.entry[..])
                        .push_bind(&l.link[..])
                        .push_bind(CURRENT_FORM);
                });
                query.push(" ON CONFLICT (event_key) DO NOTHING");
                added += query
                    .build()
                    .execute(&mut **c)
                    .await?
                    .rows_affected();
            }
        }
    }
    if added != links.len() as u64 {
        return Err(StoreError::Database(format!(
            "{} of {} audit entries were chained by another writer while their tenants' heads \
             were locked",
            links.len() as u64 - added,
            links.len()
        )));
    }
    Ok(())
}

async fn write_checkpoints(
    conn: &mut Conn<'_>,
    checkpoints: &[NewCheckpoint<'_>],
    policy: Option<&CheckpointPolicy>,
    now: i64,
) -> Result<(), StoreError> {
    let Some(policy) = policy else {
        return Ok(());
    };
    if checkpoints.is_empty() {
        return Ok(());
    }
    let key_id = policy.key.key_id();
    match conn {
        Conn::Postgres(c) => {
            sqlx::query(
                "INSERT INTO audit_checkpoints (tenant, position, head_hash, time, key_id, \
                 signature) SELECT t, p, h, $5, $6, s FROM UNNEST($1::text[], $2::bigint[], \
                 $3::bytea[], $4::bytea[]) AS u(t, p, h, s) \
                 ON CONFLICT (tenant, position) DO NOTHING",
            )
            .bind(
                checkpoints
                    .iter()
                    .map(|k| k.tenant)
                    .collect::<Vec<_>>(),
            )
            .bind(
                checkpoints
                    .iter()
                    .map(|k| k.position)
                    .collect::<Vec<_>>(),
            )
            .bind(
                checkpoints
                    .iter()
                    .map(|k| &k.head[..])
                    .collect::<Vec<_>>(),
            )
            .bind(
                checkpoints
                    .iter()
                    .map(|k| &k.signature[..])
                    .collect::<Vec<_>>(),
            )
            .bind(now)
            .bind(key_id)
            .execute(&mut **c)
            .await?;
        }
        Conn::Sqlite(c) => {
            for k in checkpoints {
                sqlx::query(INSERT_CHECKPOINT)
                    .bind(k.tenant)
                    .bind(k.position)
                    .bind(&k.head[..])
                    .bind(now)
                    .bind(key_id)
                    .bind(&k.signature[..])
                    .execute(&mut **c)
                    .await?;
            }
        }
    }
    Ok(())
}

/// Writes back the heads that moved.
async fn write_heads(conn: &mut Conn<'_>, heads: &HashMap<String, Head>) -> Result<(), StoreError> {
    let moved: Vec<(&String, &Head)> = heads
        .iter()
        .filter(|(_, h)| h.moved)
        .collect();
    if moved.is_empty() {
        return Ok(());
    }
    match conn {
        Conn::Postgres(c) => {
            sqlx::query(
                "UPDATE audit_chain_heads AS h SET position = u.p, link_hash = u.l, \
                 checkpoint_position = u.cp, checkpoint_time = u.ct \
                 FROM UNNEST($1::text[], $2::bigint[], $3::bytea[], $4::bigint[], \
                 $5::bigint[]) AS u(t, p, l, cp, ct) WHERE h.tenant = u.t",
            )
            .bind(
                moved
                    .iter()
                    .map(|(t, _)| t.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                moved
                    .iter()
                    .map(|(_, h)| h.position)
                    .collect::<Vec<_>>(),
            )
            .bind(
                moved
                    .iter()
                    .map(|(_, h)| &h.link[..])
                    .collect::<Vec<_>>(),
            )
            .bind(
                moved
                    .iter()
                    .map(|(_, h)| h.checkpoint_position)
                    .collect::<Vec<_>>(),
            )
            .bind(
                moved
                    .iter()
                    .map(|(_, h)| h.checkpoint_time)
                    .collect::<Vec<_>>(),
            )
            .execute(&mut **c)
            .await?;
        }
        Conn::Sqlite(c) => {
            for (tenant, head) in moved {
                sqlx::query(UPDATE_HEAD)
                    .bind(tenant)
                    .bind(head.position)
                    .bind(&head.link[..])
                    .bind(head.checkpoint_position)
                    .bind(head.checkpoint_time)
                    .execute(&mut **c)
                    .await?;
            }
        }
    }
    Ok(())
}

/// Inserts the audit rows (emails lowercased) at their chain positions; a row already in the
/// log is left as it is.
async fn write_rows(
    conn: &mut Conn<'_>,
    rows: &[AuditRow],
    emails: &[Option<String>],
    positions: &[i64],
) -> Result<(), StoreError> {
    match conn {
        Conn::Postgres(c) => {
            let text = |f: fn(&AuditRow) -> Option<&String>| -> Vec<Option<&str>> {
                rows.iter()
                    .map(|r| f(r).map(String::as_str))
                    .collect()
            };
            sqlx::query(
                "INSERT INTO audit_log (event_key, tenant, time, type, attempt_id, \
                 connection_id, protocol, outcome, reason, detail, email, user_id, actor, \
                 client_ip, user_agent, request_id, position) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], \
                 $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
                 $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], \
                 $17::bigint[]) ON CONFLICT (event_key) DO NOTHING",
            )
            .bind(text(|r| Some(&r.event_key)))
            .bind(text(|r| Some(&r.tenant)))
            .bind(
                rows.iter()
                    .map(|r| r.time)
                    .collect::<Vec<_>>(),
            )
            .bind(text(|r| Some(&r.kind)))
            .bind(text(|r| r.attempt_id.as_ref()))
            .bind(text(|r| r.connection_id.as_ref()))
            .bind(text(|r| r.protocol.as_ref()))
            .bind(text(|r| r.outcome.as_ref()))
            .bind(text(|r| r.reason.as_ref()))
            .bind(text(|r| r.detail.as_ref()))
            .bind(
                emails
                    .iter()
                    .map(Option::as_deref)
                    .collect::<Vec<_>>(),
            )
            .bind(text(|r| r.user_id.as_ref()))
            .bind(text(|r| r.actor.as_ref()))
            .bind(text(|r| r.client_ip.as_ref()))
            .bind(text(|r| r.user_agent.as_ref()))
            .bind(text(|r| r.request_id.as_ref()))
            .bind(positions)
            .execute(&mut **c)
            .await?;
        }
        Conn::Sqlite(c) => {
            let all: Vec<(&AuditRow, &Option<String>, i64)> = rows
                .iter()
                .zip(emails)
                .zip(positions)
                .map(|((r, e), p)| (r, e, *p))
                .collect();
            for chunk in all.chunks(SQLITE_ROWS) {
                let mut query = QueryBuilder::new(
                    "INSERT INTO audit_log (event_key, tenant, time, type, attempt_id, \
                     connection_id, protocol, outcome, reason, detail, email, user_id, actor, \
                     client_ip, user_agent, request_id, position) ",
                );
                query.push_values(chunk, |mut b, (r, email, position)| {
                    b.push_bind(&r.event_key)
                        .push_bind(&r.tenant)
                        .push_bind(r.time)
                        .push_bind(&r.kind)
                        .push_bind(&r.attempt_id)
                        .push_bind(&r.connection_id)
                        .push_bind(&r.protocol)
                        .push_bind(&r.outcome)
                        .push_bind(&r.reason)
                        .push_bind(&r.detail)
                        .push_bind(*email)
                        .push_bind(&r.user_id)
                        .push_bind(&r.actor)
                        .push_bind(&r.client_ip)
                        .push_bind(&r.user_agent)
                        .push_bind(&r.request_id)
                        .push_bind(*position);
                });
                query.push(" ON CONFLICT (event_key) DO NOTHING");
                query.build().execute(&mut **c).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::projections::audit_chain::CheckpointKey;

    fn row(tenant: &str, n: i64) -> AuditRow {
        AuditRow {
            event_key: format!("login_attempt:a{n}:1"),
            tenant: tenant.to_owned(),
            time: 1_000 + n,
            kind: "login.started".to_owned(),
            email: Some(format!("Person{n}@Example.com")),
            ..AuditRow::default()
        }
    }

    fn head(position: i64, link: [u8; 32], checkpoint_position: i64) -> Head {
        Head {
            position,
            link,
            checkpoint_position,
            checkpoint_time: 0,
            moved: false,
        }
    }

    /// A batch's plan equals one append after another: positions and links in event order per
    /// tenant, an event already chained keeps its position and is skipped, and checkpoints fall
    /// where single appends would have signed them.
    #[test]
    fn a_batch_chains_as_single_appends_would() {
        let rows = vec![
            row("a", 1),
            row("b", 2),
            row("a", 3),
            row("a", 4),
            row("b", 5),
        ];
        let emails: Vec<Option<String>> = rows
            .iter()
            .map(|r| {
                r.email
                    .as_ref()
                    .map(|e| e.to_lowercase())
            })
            .collect();
        let mut heads = HashMap::from([
            ("a".to_owned(), head(0, GENESIS, 0)),
            ("b".to_owned(), head(7, [9; 32], 7)),
        ]);
        let chained = HashMap::from([("login_attempt:a3:1".to_owned(), 42)]);
        let policy = CheckpointPolicy {
            key: Arc::new(CheckpointKey::generate()),
            every_entries: 2,
            every_ms: i64::MAX / 2,
        };

        let plan = plan(&rows, &emails, &mut heads, chained, Some(&policy), 5_000);

        assert_eq!(plan.positions, vec![1, 8, 42, 2, 9]);
        let entry = |i: usize| current_hash(&rows[i], emails[i].as_deref());
        let a1 = link_hash(&GENESIS, 1, &entry(0));
        let a2 = link_hash(&a1, 2, &entry(3));
        let b8 = link_hash(&[9; 32], 8, &entry(1));
        let b9 = link_hash(&b8, 9, &entry(4));
        let links: Vec<(&str, i64, &str, [u8; 32], [u8; 32])> = plan
            .links
            .iter()
            .map(|l| (l.tenant, l.position, l.event_key, l.entry, l.link))
            .collect();
        assert_eq!(
            links,
            vec![
                ("a", 1, "login_attempt:a1:1", entry(0), a1),
                ("b", 8, "login_attempt:a2:1", entry(1), b8),
                ("a", 2, "login_attempt:a4:1", entry(3), a2),
                ("b", 9, "login_attempt:a5:1", entry(4), b9),
            ]
        );
        let key_id = policy.key.key_id();
        let checkpoints: Vec<(&str, i64, [u8; 32], Vec<u8>)> = plan
            .checkpoints
            .iter()
            .map(|k| (k.tenant, k.position, k.head, k.signature.clone()))
            .collect();
        let signed = |tenant: &str, position: i64, link: &[u8; 32]| {
            let message = checkpoint_message(tenant, position, link, 5_000, key_id);
            policy.key.sign(&message).to_vec()
        };
        assert_eq!(
            checkpoints,
            vec![
                ("a", 2, a2, signed("a", 2, &a2)),
                ("b", 9, b9, signed("b", 9, &b9))
            ]
        );
        let a = &heads["a"];
        assert_eq!(
            (a.position, a.link, a.checkpoint_position, a.moved),
            (2, a2, 2, true)
        );
        let b = &heads["b"];
        assert_eq!(
            (b.position, b.link, b.checkpoint_position, b.moved),
            (9, b9, 9, true)
        );
    }

    /// A batch whose events are all chained (a rebuild) moves no head and chains nothing.
    #[test]
    fn a_chained_batch_moves_nothing() {
        let rows = vec![row("a", 1), row("a", 2)];
        let emails = vec![None, None];
        let mut heads = HashMap::from([("a".to_owned(), head(5, [1; 32], 5))]);
        let chained = HashMap::from([
            ("login_attempt:a1:1".to_owned(), 4),
            ("login_attempt:a2:1".to_owned(), 5),
        ]);

        let plan = plan(&rows, &emails, &mut heads, chained, None, 5_000);

        assert_eq!(plan.positions, vec![4, 5]);
        assert!(plan.links.is_empty() && plan.checkpoints.is_empty());
        assert!(!heads["a"].moved);
        assert_eq!(heads["a"].position, 5);
    }
}
