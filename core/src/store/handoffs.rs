use sqlx::Row;

use super::{now_millis, Db, StoreError};
use crate::crypto::{random_token, sha256_hex};
use crate::on_db;

/// How long a posted answer waits for the browser's follow-up GET.
const HANDOFF_TTL_MS: i64 = 60_000;

/// Form posts from identity providers waiting for the same-site GET that carries the
/// browser's cookies (`acs_handoffs`). The caller seals the payload.
pub struct Handoffs {
    db: Db,
}

impl Handoffs {
    /// Handoffs over `db`.
    pub fn new(db: Db) -> Self {
        Handoffs { db }
    }

    /// Stores a sealed payload and returns the one-time handle for the follow-up request.
    pub async fn put(&self, tenant: &str, connection_id: &str, payload: &str) -> Result<String, StoreError> {
        let handle = random_token(32);
        let now = now_millis();
        on_db!(&self.db, |pool| {
            sqlx::query("DELETE FROM acs_handoffs WHERE expires_at < $1")
                .bind(now)
                .execute(pool)
                .await?;
            sqlx::query(
                "INSERT INTO acs_handoffs (handle_hash, tenant, connection_id, payload, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(sha256_hex(&handle))
            .bind(tenant)
            .bind(connection_id)
            .bind(payload)
            .bind(now + HANDOFF_TTL_MS)
            .execute(pool)
            .await?;
        });
        Ok(handle)
    }

    /// Takes (and deletes) the payload for `handle` if it belongs to this tenant and
    /// connection and has not expired.
    pub async fn take(&self, tenant: &str, connection_id: &str, handle: &str) -> Result<Option<String>, StoreError> {
        let sql = "DELETE FROM acs_handoffs WHERE handle_hash = $1 AND tenant = $2 \
                   AND connection_id = $3 AND expires_at >= $4 RETURNING payload";
        on_db!(&self.db, |pool| {
            let row = sqlx::query(sql)
                .bind(sha256_hex(handle))
                .bind(tenant)
                .bind(connection_id)
                .bind(now_millis())
                .fetch_optional(pool)
                .await?;
            Ok(match row {
                Some(row) => Some(row.try_get("payload")?),
                None => None,
            })
        })
    }
}
