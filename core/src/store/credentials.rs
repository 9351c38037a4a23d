use sqlx::Row;

use super::{now_millis, Db, StoreError};
use crate::crypto::{random_token, sha256_hex};
use crate::on_db;

/// An admin API credential that authenticated a request: its id and what the table says of
/// its role and tenant. The `credential` aggregate has the last word on both (and on
/// revocation and expiry); see `service::credentials`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminCredential {
    /// Credential id, recorded as the actor of admin events.
    pub id: String,
    /// Role wire name (`platform_admin`, `tenant_admin`, `auditor`).
    pub role: String,
    /// Tenant of a tenant-scoped credential.
    pub tenant: Option<String>,
}

/// A credential row, for listings (never the hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCredential {
    /// Credential id.
    pub id: String,
    /// Label given at creation.
    pub label: String,
    /// Role wire name.
    pub role: String,
    /// Tenant of a tenant-scoped credential.
    pub tenant: Option<String>,
    /// Creation time (Unix ms).
    pub created_at: i64,
}

/// Every token Gatehouse generates starts with this, so that secret scanners and people
/// recognise one (a token set in GATEHOUSE_ADMIN_TOKEN is whatever the operator chose).
pub const TOKEN_PREFIX: &str = "gh_";

/// A fresh token: the prefix and 256 random bits, base64url.
pub fn new_token() -> String {
    format!("{TOKEN_PREFIX}{}", random_token(32))
}

/// Admin API credentials. Tokens are random 256-bit values, so a SHA-256 of each is all that
/// is stored and a lookup by hash is the comparison.
pub struct Credentials {
    db: Db,
}

/// Id of the credential whose token comes from GATEHOUSE_ADMIN_TOKEN.
pub const CONFIG_ID: &str = "config";
/// Id of the credential generated and printed at the first start.
pub const BOOTSTRAP_ID: &str = "bootstrap";

impl Credentials {
    /// Credentials over `db`.
    pub fn new(db: Db) -> Self {
        Credentials { db }
    }

    /// Makes `token` (from configuration) the `config` credential, replacing an older one.
    pub async fn set_configured(&self, token: &str) -> Result<(), StoreError> {
        // The printed bootstrap token (or any other credential's) configured as the admin token:
        // it already works as that credential, which is kept as it is.
        let holder: Option<String> = on_db!(&self.db, |pool| {
            sqlx::query("SELECT id FROM admin_credentials WHERE token_hash = $1 AND id <> $2")
                .bind(sha256_hex(token))
                .bind(CONFIG_ID)
                .fetch_optional(pool)
                .await?
                .map(|row| row.try_get("id"))
                .transpose()?
        });
        if let Some(id) = holder {
            tracing::info!(credential = %id, "the configured admin token is an existing credential");
            return Ok(());
        }
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
        let token = new_token();
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
        let sql = "SELECT id, role, tenant FROM admin_credentials WHERE token_hash = $1";
        on_db!(&self.db, |pool| {
            let row = sqlx::query(sql)
                .bind(sha256_hex(token))
                .fetch_optional(pool)
                .await?;
            Ok(match row {
                Some(row) => Some(AdminCredential {
                    id: row.try_get("id")?,
                    role: row.try_get("role")?,
                    tenant: row.try_get("tenant")?,
                }),
                None => None,
            })
        })
    }

    /// Stores the hash of `token` under `id` with its role and tenant. The credential works
    /// only once its `credential.created` event exists.
    pub async fn insert(
        &self,
        id: &str,
        token: &str,
        label: &str,
        role: &str,
        tenant: Option<&str>,
    ) -> Result<(), StoreError> {
        let sql =
            "INSERT INTO admin_credentials (id, token_hash, label, created_at, role, tenant) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        on_db!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(id)
                .bind(sha256_hex(token))
                .bind(label)
                .bind(now_millis())
                .bind(role)
                .bind(tenant)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Credential rows, oldest first: all, or those of one tenant.
    pub async fn list(&self, tenant: Option<&str>) -> Result<Vec<StoredCredential>, StoreError> {
        let sql = match tenant {
            Some(_) => {
                "SELECT id, label, role, tenant, created_at FROM admin_credentials \
                 WHERE tenant = $1 ORDER BY created_at, id"
            }
            None => {
                "SELECT id, label, role, tenant, created_at FROM admin_credentials \
                 ORDER BY created_at, id"
            }
        };
        on_db!(&self.db, |pool| {
            let mut query = sqlx::query(sql);
            if let Some(tenant) = tenant {
                query = query.bind(tenant);
            }
            let rows = query.fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(StoredCredential {
                    id: row.try_get("id")?,
                    label: row.try_get("label")?,
                    role: row.try_get("role")?,
                    tenant: row.try_get("tenant")?,
                    created_at: row.try_get("created_at")?,
                });
            }
            Ok(out)
        })
    }

    /// One credential row.
    pub async fn get(&self, id: &str) -> Result<Option<StoredCredential>, StoreError> {
        let sql = "SELECT id, label, role, tenant, created_at FROM admin_credentials WHERE id = $1";
        on_db!(&self.db, |pool| {
            let row = sqlx::query(sql)
                .bind(id)
                .fetch_optional(pool)
                .await?;
            Ok(match row {
                Some(row) => Some(StoredCredential {
                    id: row.try_get("id")?,
                    label: row.try_get("label")?,
                    role: row.try_get("role")?,
                    tenant: row.try_get("tenant")?,
                    created_at: row.try_get("created_at")?,
                }),
                None => None,
            })
        })
    }
}
