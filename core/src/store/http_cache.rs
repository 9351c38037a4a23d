use sqlx::Row;

use super::{now_millis, Db, StoreError};
use crate::on_db;

/// A stored answer to an outbound GET.
#[derive(Clone, Debug)]
pub struct CachedResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// When it was fetched, in Unix milliseconds.
    pub fetched_at: i64,
}

/// Outbound fetch cache in the `http_cache` table, shared by every node, so that limits such
/// as "refetch a JWKS at most once per 30 s" hold across the deployment.
pub struct HttpCache {
    db: Db,
}

impl HttpCache {
    /// Cache over `db`.
    pub fn new(db: Db) -> Self {
        HttpCache { db }
    }

    /// The stored answer for `key`.
    pub async fn get(&self, key: &str) -> Result<Option<CachedResponse>, StoreError> {
        let sql = "SELECT status, headers, body, fetched_at FROM http_cache WHERE cache_key = $1";
        on_db!(&self.db, |pool| {
            let Some(row) = sqlx::query(sql).bind(key).fetch_optional(pool).await? else {
                return Ok(None);
            };
            let headers: String = row.try_get("headers")?;
            let status: i64 = row.try_get("status")?;
            Ok(Some(CachedResponse {
                status: u16::try_from(status).map_err(|_| StoreError::Corrupt("status".into()))?,
                headers: serde_json::from_str(&headers)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                body: row.try_get("body")?,
                fetched_at: row.try_get("fetched_at")?,
            }))
        })
    }

    /// Stores the answer for `key`, replacing any older one.
    pub async fn put(
        &self,
        key: &str,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<(), StoreError> {
        let headers =
            serde_json::to_string(headers).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let sql = "INSERT INTO http_cache (cache_key, status, headers, body, fetched_at) \
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT (cache_key) DO UPDATE SET \
                   status = excluded.status, headers = excluded.headers, body = excluded.body, \
                   fetched_at = excluded.fetched_at";
        on_db!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(key)
                .bind(i64::from(status))
                .bind(headers)
                .bind(body)
                .bind(now_millis())
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
