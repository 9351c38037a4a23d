use sqlx::Row;

use super::{now_millis, Db, StoreError};
use crate::crypto::{random_token, sha256_hex};
use crate::on_db;

/// An admin API credential that authenticated a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminCredential {
    /// Credential id, recorded as the actor of admin events.
    pub id: String,
}

/// Admin API credentials. Tokens are random 256-bit values, so a SHA-256 of each is all that
/// is stored and a lookup by hash is the comparison.
pub struct Credentials {
    db: Db,
}

const CONFIG_ID: &str = "config";
const BOOTSTRAP_ID: &str = "bootstrap";

impl Credentials {
    /// Credentials over `db`.
    pub fn new(db: Db) -> Self {
        Credentials { db }
    }

    /// Makes `token` (from configuration) the `config` credential, replacing an older one.
    pub async fn set_configured(&self, token: &str) -> Result<(), StoreError> {
        let sql = "INSERT INTO admin_credentials (id, token_hash, label, created_at) \
                   VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET \
                   token_hash = excluded.token_hash";
        on_db!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(CONFIG_ID)
                .bind(sha256_hex(token))
                .bind("from configuration")
                .bind(now_millis())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// On a database with no credential at all, creates one and returns its token, which the
    /// caller prints once. Returns `None` when a credential exists; among several nodes
    /// starting together, exactly one gets the token.
    pub async fn bootstrap(&self) -> Result<Option<String>, StoreError> {
        let existing: i64 = on_db!(&self.db, |pool| {
            sqlx::query("SELECT COUNT(*) AS n FROM admin_credentials")
                .fetch_one(pool)
                .await?
                .try_get("n")?
        });
        if existing > 0 {
            return Ok(None);
        }
        let token = format!("gh_{}", random_token(32));
        let sql = "INSERT INTO admin_credentials (id, token_hash, label, created_at) \
                   VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING";
        let inserted = on_db!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(BOOTSTRAP_ID)
                .bind(sha256_hex(&token))
                .bind("generated at first start")
                .bind(now_millis())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok((inserted == 1).then_some(token))
    }

    /// The credential whose token is `token`.
    pub async fn authenticate(&self, token: &str) -> Result<Option<AdminCredential>, StoreError> {
        let sql = "SELECT id FROM admin_credentials WHERE token_hash = $1";
        on_db!(&self.db, |pool| {
            let row = sqlx::query(sql)
                .bind(sha256_hex(token))
                .fetch_optional(pool)
                .await?;
            Ok(match row {
                Some(row) => Some(AdminCredential {
                    id: row.try_get("id")?,
                }),
                None => None,
            })
        })
    }
}
