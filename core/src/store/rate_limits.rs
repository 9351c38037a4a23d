//! Rate limits in the database (`rate_limits`), so that every node counts against the same
//! budget: fixed windows of a configured length, one counter per bucket and window.

use sqlx::Row;

use super::{now_millis, Db, StoreError};
use crate::on_db;

/// Rate-limit counters over one database.
pub struct RateLimits {
    db: Db,
}

impl RateLimits {
    /// Counters over `db`.
    pub fn new(db: Db) -> Self {
        RateLimits { db }
    }

    /// Counts one hit in `bucket` for the current window of `window_secs` and returns the
    /// hits in that window so far, this one included. The caller refuses when it exceeds
    /// its limit. A fixed window lets up to twice the limit through around a window's edge.
    pub async fn hit(&self, bucket: &str, window_secs: i64) -> Result<i64, StoreError> {
        let now = now_millis();
        let window_ms = window_secs.max(1) * 1000;
        let window_start = now - now.rem_euclid(window_ms);
        let sql = "INSERT INTO rate_limits (bucket, window_start, hits) VALUES ($1, $2, 1) \
                   ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limits.hits + 1 \
                   RETURNING hits";
        on_db!(&self.db, |pool| {
            // Windows that ended long ago protect nothing any more.
            sqlx::query("DELETE FROM rate_limits WHERE window_start < $1")
                .bind(now - window_ms - 86_400_000)
                .execute(pool)
                .await?;
            let row = sqlx::query(sql)
                .bind(bucket)
                .bind(window_start)
                .fetch_one(pool)
                .await?;
            Ok(row.try_get("hits")?)
        })
    }
}
