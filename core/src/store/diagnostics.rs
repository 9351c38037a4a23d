use sqlx::Row;

use super::{now_millis, Db, StoreError};
use crate::on_db;

/// How long the decoded answer of a refused attempt is kept.
pub const DIAGNOSTICS_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// Sealed diagnostics of refused attempts (`attempt_diagnostics`), kept for a limited time.
pub struct Diagnostics {
    db: Db,
}

/// Stored diagnostics, still sealed.
pub struct StoredDiagnostics {
    /// Sealed payload (JSON of a `SealedSecret`).
    pub payload: String,
    /// Expiry, Unix ms.
    pub expires_at: i64,
}

impl Diagnostics {
    /// Diagnostics over `db`.
    pub fn new(db: Db) -> Self {
        Diagnostics { db }
    }

    /// Keeps the sealed `payload` for `attempt_id`; expired entries are deleted on the way.
    pub async fn put(&self, attempt_id: &str, tenant: &str, payload: &str) -> Result<(), StoreError> {
        let now = now_millis();
        on_db!(&self.db, |pool| {
            sqlx::query("DELETE FROM attempt_diagnostics WHERE expires_at < $1")
                .bind(now)
                .execute(pool)
                .await?;
            sqlx::query(
                "INSERT INTO attempt_diagnostics (attempt_id, tenant, payload, expires_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (attempt_id) DO NOTHING",
            )
            .bind(attempt_id)
            .bind(tenant)
            .bind(payload)
            .bind(now + DIAGNOSTICS_TTL_MS)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The unexpired diagnostics of an attempt of `tenant`.
    pub async fn get(&self, tenant: &str, attempt_id: &str) -> Result<Option<StoredDiagnostics>, StoreError> {
        let sql = "SELECT payload, expires_at FROM attempt_diagnostics \
                   WHERE attempt_id = $1 AND tenant = $2 AND expires_at >= $3";
        on_db!(&self.db, |pool| {
            let row = sqlx::query(sql)
                .bind(attempt_id)
                .bind(tenant)
                .bind(now_millis())
                .fetch_optional(pool)
                .await?;
            Ok(match row {
                Some(row) => Some(StoredDiagnostics {
                    payload: row.try_get("payload")?,
                    expires_at: row.try_get("expires_at")?,
                }),
                None => None,
            })
        })
    }
}
