//! Bodies of the credential routes.

use chrono::{DateTime, SecondsFormat, Utc};
use gatehouse_core::service::CredentialView;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A credential to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCredential {
    /// `platform_admin`, `tenant_admin` or `auditor`. A tenant admin may create `auditor`
    /// credentials of its own tenant only.
    #[schema(example = "auditor")]
    pub role: String,
    /// Tenant slug: required for `tenant_admin` and `auditor`, refused for `platform_admin`.
    pub tenant: Option<String>,
    /// What it is for, up to 100 printable characters.
    pub label: Option<String>,
    /// RFC 3339 time after which the token no longer works (optional).
    pub expires_at: Option<String>,
}

/// Filter of the credential listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CredentialQuery {
    /// Only this tenant's credentials (a tenant admin always sees only its own tenant's).
    pub tenant: Option<String>,
}

/// A credential: never its token or the token's hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct Credential {
    /// Credential id, the `admin:<id>` actor of what it does.
    pub id: String,
    /// `platform_admin`, `tenant_admin` or `auditor`.
    pub role: String,
    /// Its tenant (tenant admins and auditors).
    pub tenant: Option<String>,
    /// Label.
    pub label: String,
    /// `active`, `revoked` or `expired`.
    pub status: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Who created it: `admin:<credential>` or `system` (the CLI, the start-up).
    pub created_by: String,
    /// Expiry (RFC 3339), if any.
    pub expires_at: Option<String>,
    /// Revocation time (RFC 3339), if revoked.
    pub revoked_at: Option<String>,
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn from_ms(ms: i64) -> String {
    rfc3339(DateTime::from_timestamp_millis(ms).unwrap_or_default())
}

impl From<CredentialView> for Credential {
    fn from(view: CredentialView) -> Self {
        let status = if view.revoked_at.is_some() {
            "revoked"
        } else if view
            .expires_at
            .is_some_and(|at| at <= Utc::now())
        {
            "expired"
        } else {
            "active"
        };
        Credential {
            id: view.id,
            role: view.role.as_str().to_owned(),
            tenant: view.tenant,
            label: view.label,
            status: status.to_owned(),
            created_at: from_ms(view.created_at),
            created_by: view.created_by,
            expires_at: view.expires_at.map(rfc3339),
            revoked_at: view.revoked_at.map(rfc3339),
        }
    }
}

/// A new credential and its token. The token is shown this once: only its SHA-256 is kept.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedCredential {
    /// The credential.
    pub credential: Credential,
    /// Bearer token (`gh_` and 43 base64url characters).
    pub token: String,
}

/// The credentials the caller may see, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct Credentials {
    /// Credentials.
    pub credentials: Vec<Credential>,
}
