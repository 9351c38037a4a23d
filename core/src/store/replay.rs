use super::{now_millis, Db, StoreError};
use crate::crypto::sha256_hex;
use crate::on_db;

/// One-time answer identifiers (SAML assertion IDs) in the `replay_records` table, shared by
/// every node.
pub struct Replays {
    db: Db,
}

impl Replays {
    /// Replay records over `db`.
    pub fn new(db: Db) -> Self {
        Replays { db }
    }

    /// Records `id` within `scope` (the issuer) until `expires_at` (Unix seconds). Returns
    /// false when it was already recorded and has not expired: the answer is a replay.
    pub async fn claim(&self, scope: &str, id: &str, expires_at: i64) -> Result<bool, StoreError> {
        let now = now_millis();
        let expires_ms = expires_at.saturating_mul(1000).max(now);
        let hash = sha256_hex(id);
        let inserted = on_db!(&self.db, |pool| {
            // An expired record no longer protects anything (the answer itself is expired),
            // so it may be replaced; everything else conflicts.
            sqlx::query("DELETE FROM replay_records WHERE expires_at < $1")
                .bind(now)
                .execute(pool)
                .await?;
            sqlx::query(
                "INSERT INTO replay_records (scope, id_hash, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (scope, id_hash) DO NOTHING",
            )
            .bind(scope)
            .bind(&hash)
            .bind(expires_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(inserted == 1)
    }
}
