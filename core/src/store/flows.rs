use sqlx::Row;

use super::{now_millis, Db, StoreError};
use crate::crypto::{secret_eq, sha256_hex};
use crate::ids::{AttemptId, ConnectionId, TenantSlug};
use crate::on_db;

/// A login flow to remember until the identity provider calls back.
pub struct NewFlow<'a> {
    /// The `state` value given to the browser (stored only as a hash).
    pub state: &'a str,
    /// Tenant.
    pub tenant: &'a TenantSlug,
    /// Connection.
    pub connection_id: &'a ConnectionId,
    /// Attempt this flow belongs to.
    pub attempt_id: AttemptId,
    /// Browser binding cookie value (stored only as a hash).
    pub binding: &'a str,
    /// Nonce sent to the provider.
    pub nonce: &'a str,
    /// PKCE verifier.
    pub pkce_verifier: &'a str,
    /// Redirect URI used.
    pub redirect_uri: &'a str,
    /// Checked `return_to`, if any.
    pub return_to: Option<&'a str>,
    /// Request id sent to the provider (SAML `ID`), empty when the protocol has none.
    pub request_id: &'a str,
    /// Lifetime in seconds.
    pub ttl_secs: i64,
}

/// A flow read back at the callback.
pub struct Flow {
    /// Tenant the flow was started for.
    pub tenant: String,
    /// Connection the flow was started for.
    pub connection_id: String,
    /// Attempt id.
    pub attempt_id: AttemptId,
    /// Nonce sent to the provider.
    pub nonce: String,
    /// PKCE verifier.
    pub pkce_verifier: String,
    /// Redirect URI used.
    pub redirect_uri: String,
    /// Checked `return_to`.
    pub return_to: Option<String>,
    /// Request id sent to the provider (empty when none).
    pub request_id: String,
    binding_hash: String,
    expires_at: i64,
}

impl Flow {
    /// True when `binding` is the cookie value this flow was started with.
    pub fn bound_to(&self, binding: Option<&str>) -> bool {
        match binding {
            Some(value) => secret_eq(&sha256_hex(value), &self.binding_hash),
            None => false,
        }
    }

    /// True when the flow outlived its lifetime.
    pub fn expired(&self) -> bool {
        now_millis() >= self.expires_at
    }
}

/// Why a `state` did not lead to a flow.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// No flow was ever stored for this `state`.
    #[error("unknown state")]
    Unknown,
    /// The flow was already used. Carries the attempt it belonged to.
    #[error("state already used")]
    Reused(AttemptId),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Flow state in the `login_flows` table, shared by every node.
pub struct Flows {
    db: Db,
}

impl Flows {
    /// Flow storage over `db`.
    pub fn new(db: Db) -> Self {
        Flows { db }
    }

    /// Stores a new flow and deletes flows that expired more than a day ago.
    pub async fn insert(&self, flow: NewFlow<'_>) -> Result<(), StoreError> {
        let now = now_millis();
        let sql = "INSERT INTO login_flows (state_hash, tenant, connection_id, attempt_id, \
                   binding_hash, nonce, pkce_verifier, redirect_uri, return_to, created_at, \
                   expires_at, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
                   $12)";
        on_db!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(sha256_hex(flow.state))
                .bind(flow.tenant.as_str())
                .bind(flow.connection_id.as_str())
                .bind(flow.attempt_id.to_string())
                .bind(sha256_hex(flow.binding))
                .bind(flow.nonce)
                .bind(flow.pkce_verifier)
                .bind(flow.redirect_uri)
                .bind(flow.return_to)
                .bind(now)
                .bind(now + flow.ttl_secs * 1000)
                .bind(flow.request_id)
                .execute(pool)
                .await?;
            sqlx::query("DELETE FROM login_flows WHERE expires_at < $1")
                .bind(now - 86_400_000)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Reads the unused flow for `state` without consuming it, so that a callback presented at
    /// the wrong tenant or from the wrong browser cannot spoil the real one.
    pub async fn peek(&self, state: &str) -> Result<Flow, ConsumeError> {
        let sql = "SELECT tenant, connection_id, attempt_id, binding_hash, nonce, pkce_verifier, \
                   redirect_uri, return_to, expires_at, consumed_at, request_id FROM login_flows \
                   WHERE state_hash = $1";
        let row = on_db!(&self.db, |pool| {
            match sqlx::query(sql)
                .bind(sha256_hex(state))
                .fetch_optional(pool)
                .await
                .map_err(StoreError::from)?
            {
                Some(row) => {
                    let consumed: Option<i64> =
                        row.try_get("consumed_at").map_err(StoreError::from)?;
                    Some((read_flow(&row)?, consumed.is_some()))
                }
                None => None,
            }
        });
        match row {
            None => Err(ConsumeError::Unknown),
            Some((flow, true)) => Err(ConsumeError::Reused(flow.attempt_id)),
            Some((flow, false)) => Ok(flow),
        }
    }

    /// The tenant and connection the flow for `state` was issued for, used or not: where a
    /// deployment-level callback (Google, Facebook) is to be checked and recorded.
    pub async fn owner(&self, state: &str) -> Result<Option<(String, String)>, StoreError> {
        let sql = "SELECT tenant, connection_id FROM login_flows WHERE state_hash = $1";
        Ok(on_db!(&self.db, |pool| {
            match sqlx::query(sql)
                .bind(sha256_hex(state))
                .fetch_optional(pool)
                .await?
            {
                Some(row) => Some((
                    row.try_get::<String, _>("tenant")?,
                    row.try_get::<String, _>("connection_id")?,
                )),
                None => None,
            }
        }))
    }

    /// Marks the flow for `state` used. Exactly one caller, on any node, succeeds; every later
    /// call gets [`ConsumeError::Reused`]. The flow's secrets are blanked, since a used flow
    /// only needs to be remembered as used until it expires.
    pub async fn consume(&self, state: &str, attempt_id: AttemptId) -> Result<(), ConsumeError> {
        let sql = "UPDATE login_flows SET consumed_at = $1, nonce = '', pkce_verifier = '' \
                   WHERE state_hash = $2 AND consumed_at IS NULL";
        let updated = on_db!(&self.db, |pool| {
            sqlx::query(sql)
                .bind(now_millis())
                .bind(sha256_hex(state))
                .execute(pool)
                .await
                .map_err(StoreError::from)?
                .rows_affected()
        });
        if updated == 1 {
            Ok(())
        } else {
            Err(ConsumeError::Reused(attempt_id))
        }
    }
}

fn read_flow<R>(row: &R) -> Result<Flow, StoreError>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let attempt: String = row.try_get("attempt_id")?;
    Ok(Flow {
        tenant: row.try_get("tenant")?,
        connection_id: row.try_get("connection_id")?,
        attempt_id: AttemptId::parse(&attempt)
            .ok_or_else(|| StoreError::Corrupt("flow attempt id".into()))?,
        nonce: row.try_get("nonce")?,
        pkce_verifier: row.try_get("pkce_verifier")?,
        redirect_uri: row.try_get("redirect_uri")?,
        return_to: row.try_get("return_to")?,
        request_id: row.try_get("request_id")?,
        binding_hash: row.try_get("binding_hash")?,
        expires_at: row.try_get("expires_at")?,
    })
}
