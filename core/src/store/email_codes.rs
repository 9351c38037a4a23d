//! Email one-time codes waiting to be entered (`email_codes`), shared by every node.
//!
//! A row is found by the browser's handle (the cookie set when the code was requested) or by
//! the one-click link's token; both are stored only as SHA-256 (they are 256-bit random
//! values). The code itself is stored only as a keyed hash made by the caller. Tries are
//! counted by the database, so parallel guesses on several nodes share one budget.

use sqlx::Row;

use super::{now_millis, Db, StoreError};
use crate::crypto::{secret_eq, sha256_hex};
use crate::ids::{AttemptId, TenantSlug};
use crate::on_db;

/// A code to remember until it is entered or expires.
pub struct NewEmailCode<'a> {
    /// Browser handle (cookie value).
    pub handle: &'a str,
    /// One-click link token.
    pub link_token: &'a str,
    /// Tenant.
    pub tenant: &'a TenantSlug,
    /// Attempt the code belongs to.
    pub attempt_id: AttemptId,
    /// Address the code was sent to.
    pub email: &'a str,
    /// Keyed hash of the code.
    pub code_mac: &'a str,
    /// Checked `return_to`, if any.
    pub return_to: Option<&'a str>,
    /// Lifetime in seconds.
    pub ttl_secs: i64,
}

/// A stored code, read back when a code or a link is presented.
#[derive(Debug)]
pub struct EmailCode {
    /// Row key (SHA-256 of the browser handle); not a secret.
    pub id: String,
    /// Tenant the code was requested at.
    pub tenant: String,
    /// Attempt.
    pub attempt_id: AttemptId,
    /// Address the code went to.
    pub email: String,
    /// Checked `return_to`.
    pub return_to: Option<String>,
    /// Tries used so far.
    pub tries: i64,
    /// True once used (signed in, or given up on).
    pub consumed: bool,
    code_mac: String,
    expires_at: i64,
}

impl EmailCode {
    /// True when the code outlived its lifetime.
    pub fn expired(&self) -> bool {
        now_millis() >= self.expires_at
    }

    /// True when `handle` is the cookie value of the browser that asked for this code.
    pub fn bound_to(&self, handle: Option<&str>) -> bool {
        match handle {
            Some(value) => secret_eq(&sha256_hex(value), &self.id),
            None => false,
        }
    }

    /// True when `mac` (the caller's keyed hash of an entered code) is this code's, compared
    /// in constant time.
    pub fn matches(&self, mac: &str) -> bool {
        secret_eq(mac, &self.code_mac)
    }
}

/// Email codes over one database.
pub struct EmailCodes {
    db: Db,
}

const COLUMNS: &str = "handle_hash, tenant, attempt_id, email, code_mac, return_to, tries, \
                       expires_at, consumed_at";

impl EmailCodes {
    /// Email codes over `db`.
    pub fn new(db: Db) -> Self {
        EmailCodes { db }
    }

    /// Stores a new code, and deletes codes that expired more than a day ago.
    pub async fn insert(&self, code: NewEmailCode<'_>) -> Result<(), StoreError> {
        let now = now_millis();
        let sql = "INSERT INTO email_codes (handle_hash, link_hash, tenant, attempt_id, email, \
                   code_mac, return_to, tries, created_at, expires_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9)";
        on_db!(&self.db, |pool| {
            sqlx::query("DELETE FROM email_codes WHERE expires_at < $1")
                .bind(now - 86_400_000)
                .execute(pool)
                .await?;
            sqlx::query(sql)
                .bind(sha256_hex(code.handle))
                .bind(sha256_hex(code.link_token))
                .bind(code.tenant.as_str())
                .bind(code.attempt_id.to_string())
                .bind(code.email)
                .bind(code.code_mac)
                .bind(code.return_to)
                .bind(now)
                .bind(now + code.ttl_secs * 1000)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The code a browser handle (cookie value) stands for.
    pub async fn by_handle(&self, handle: &str) -> Result<Option<EmailCode>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM email_codes WHERE handle_hash = $1");
        self.fetch(&sql, sha256_hex(handle))
            .await
    }

    /// The code a one-click link token stands for.
    pub async fn by_link(&self, token: &str) -> Result<Option<EmailCode>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM email_codes WHERE link_hash = $1");
        self.fetch(&sql, sha256_hex(token))
            .await
    }

    /// Takes one try of an unused code if fewer than `max` were taken, across every node.
    /// Returns the number of tries now used, or `None` when the code is used up or consumed.
    pub async fn take_try(&self, id: &str, max: i64) -> Result<Option<i64>, StoreError> {
        let sql = "UPDATE email_codes SET tries = tries + 1 WHERE handle_hash = $1 \
                   AND consumed_at IS NULL AND tries < $2 RETURNING tries";
        on_db!(&self.db, |pool| {
            let row = sqlx::query(sql)
                .bind(id)
                .bind(max)
                .fetch_optional(pool)
                .await?;
            Ok(match row {
                Some(row) => Some(row.try_get("tries")?),
                None => None,
            })
        })
    }

    /// Marks the code used. Exactly one caller, on any node, gets `true`.
    pub async fn consume(&self, id: &str) -> Result<bool, StoreError> {
        let sql = "UPDATE email_codes SET consumed_at = $1 WHERE handle_hash = $2 \
                   AND consumed_at IS NULL";
        let updated = on_db!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(now_millis())
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(updated == 1)
    }

    async fn fetch(&self, sql: &str, key: String) -> Result<Option<EmailCode>, StoreError> {
        on_db!(&self.db, |pool| {
            let Some(row) = sqlx::query(sql)
                .bind(key)
                .fetch_optional(pool)
                .await?
            else {
                return Ok(None);
            };
            let attempt: String = row.try_get("attempt_id")?;
            let consumed: Option<i64> = row.try_get("consumed_at")?;
            Ok(Some(EmailCode {
                id: row.try_get("handle_hash")?,
                tenant: row.try_get("tenant")?,
                attempt_id: AttemptId::parse(&attempt)
                    .ok_or_else(|| StoreError::Corrupt("email code attempt id".into()))?,
                email: row.try_get("email")?,
                return_to: row.try_get("return_to")?,
                tries: row.try_get("tries")?,
                consumed: consumed.is_some(),
                code_mac: row.try_get("code_mac")?,
                expires_at: row.try_get("expires_at")?,
            }))
        })
    }
}
