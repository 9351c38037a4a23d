//! Admin API credentials with roles: authentication, creation, listing, revocation, and the
//! recording of audit reads.
//!
//! Who may do what (the API layer adds the per-route checks):
//! - a platform admin: anything, for every tenant;
//! - a tenant admin: its tenant's setup and audit, and the auditors of its tenant (create,
//!   list, revoke); never another tenant admin or a platform admin;
//! - an auditor: its tenant's audit, read only; no credential management.
//!
//! A credential of another tenant, or a tenant that does not exist, is "not found" alike, so a
//! tenant-scoped caller can never learn whether another tenant exists.

use chrono::{DateTime, Utc};
use sqlx::Row;
use zeroize::Zeroizing;

use super::Gatehouse;
use crate::domain::audit_read::{AuditRead, AuditReadCommand, AuditReadRecorded};
use crate::domain::credential::{
    Credential, CredentialCommand, CredentialCreated, CredentialError, CredentialRole,
};
use crate::domain::tenant::Tenant;
use crate::ids::{Actor, TenantSlug};
use crate::on_db;
use crate::projections::Projections;
use crate::store::{
    new_token, CommandError, Credentials, Executor, Metadata, StoreError, StoredCredential,
    BOOTSTRAP_ID, CONFIG_ID,
};

/// Longest wait of [`Gatehouse::record_audit_read`] for its entry to be chained.
pub const READ_CHAINED_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// What an authenticated credential may do, from its events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Credential id.
    pub credential_id: String,
    /// Its role.
    pub role: CredentialRole,
    /// Its tenant (tenant admins and auditors).
    pub tenant: Option<String>,
}

impl Grant {
    /// The actor recorded on events this credential causes.
    pub fn actor(&self) -> Actor {
        Actor::admin(&self.credential_id)
    }

    /// True when this credential may administer `tenant` (platform admin, or its tenant admin).
    pub fn administers(&self, tenant: &str) -> bool {
        match self.role {
            CredentialRole::PlatformAdmin => true,
            CredentialRole::TenantAdmin => self.tenant.as_deref() == Some(tenant),
            CredentialRole::Auditor => false,
        }
    }

    /// True when this credential is bound to `tenant` (or is a platform admin).
    pub fn sees(&self, tenant: &str) -> bool {
        match self.role {
            CredentialRole::PlatformAdmin => true,
            _ => self.tenant.as_deref() == Some(tenant),
        }
    }
}

/// Who asks for a credential change: the CLI (the system, with the store in hand) or a
/// credential through the API.
#[derive(Clone, Debug)]
pub enum Issuer {
    /// `gatehouse credentials ...` on the store itself.
    System,
    /// An authenticated API credential.
    Credential(Grant),
}

impl Issuer {
    fn actor(&self) -> Actor {
        match self {
            Issuer::System => Actor::system(),
            Issuer::Credential(grant) => grant.actor(),
        }
    }
}

/// A credential to create, as received (checked here).
#[derive(Clone, Debug, Default)]
pub struct NewCredential {
    /// `platform_admin`, `tenant_admin` or `auditor`.
    pub role: String,
    /// Tenant slug; required for tenant roles, refused for platform admins.
    pub tenant: Option<String>,
    /// What it is for (up to 100 printable characters).
    pub label: Option<String>,
    /// RFC 3339 time after which it no longer works.
    pub expires_at: Option<String>,
}

/// A credential as listed: never its token or hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialView {
    /// Credential id.
    pub id: String,
    /// Its role.
    pub role: CredentialRole,
    /// Its tenant.
    pub tenant: Option<String>,
    /// Label.
    pub label: String,
    /// Creation time (Unix ms).
    pub created_at: i64,
    /// Who created it (`admin:<id>` or `system`).
    pub created_by: String,
    /// Expiry, if any.
    pub expires_at: Option<DateTime<Utc>>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A created credential and its token, which is shown this once and never stored.
pub struct IssuedCredential {
    /// The credential.
    pub credential: CredentialView,
    /// The bearer token.
    pub token: Zeroizing<String>,
}

/// Why a credential request was refused.
#[derive(Debug, thiserror::Error)]
pub enum CredentialAdminError {
    /// A field is invalid; `field` is a JSON pointer into the request.
    #[error("{field}: {detail}")]
    Invalid {
        /// JSON pointer.
        field: String,
        /// What is wrong.
        detail: String,
    },
    /// The tenant or credential does not exist, or is not the caller's to see.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller's role does not allow this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &str, detail: &str) -> CredentialAdminError {
    CredentialAdminError::Invalid {
        field: field.to_owned(),
        detail: detail.to_owned(),
    }
}

/// Credential administration over an executor and the credentials table. The API uses the
/// node's own executor ([`Gatehouse::credential_admin`]); the CLI builds one on the store
/// ([`CredentialAdmin::on_store`]), whose events the serving nodes' projectors pick up.
pub struct CredentialAdmin<'a> {
    executor: &'a Executor<Projections>,
    table: &'a Credentials,
}

impl Gatehouse {
    /// Credential administration through this node.
    pub fn credential_admin(&self) -> CredentialAdmin<'_> {
        CredentialAdmin {
            executor: &self.executor,
            table: &self.credentials,
        }
    }

    /// The grant of the credential whose token is `token`, if it is usable now.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Grant>, StoreError> {
        self.credential_admin()
            .authenticate(token)
            .await
    }

    /// Records one read of the audit log `scope` (a tenant slug or `_platform`) by `grant`:
    /// an `audit.read` entry in that log's access log. Callers refuse the read when this fails,
    /// so no read goes unrecorded. Returns once the entry is chained in the access log, or after
    /// at most [`READ_CHAINED_WAIT`] (the event is committed either way and the projector
    /// chains it soon after), so a reader normally finds its read listed, and a verification
    /// does not find it still pending.
    pub async fn record_audit_read(
        &self,
        grant: &Grant,
        scope: &str,
        route: &str,
        filters: String,
        request_id: Option<String>,
    ) -> Result<(), StoreError> {
        let read = AuditReadRecorded {
            scope: scope.to_owned(),
            credential_id: grant.credential_id.clone(),
            route: route.to_owned(),
            filters,
        };
        let metadata = Metadata {
            actor: grant.actor(),
            request_id,
        };
        let id = uuid::Uuid::new_v4().to_string();
        self.executor
            .execute::<AuditRead>(&id, AuditReadCommand::Record(read), &metadata)
            .await
            .map_err(|e| match e {
                CommandError::Store(store) => store,
                CommandError::Rejected(e) => StoreError::Database(e.to_string()),
            })?;

        // Its one event has sequence 1.
        let key = format!("{}:{id}:1", <AuditRead as cqrs_es::Aggregate>::TYPE);
        let deadline = std::time::Instant::now() + READ_CHAINED_WAIT;
        while std::time::Instant::now() < deadline {
            let chained: i64 = on_db!(&self.db, |pool| {
                sqlx::query("SELECT count(*) FROM audit_chain WHERE event_key = $1")
                    .bind(&key)
                    .fetch_one(pool)
                    .await?
                    .try_get(0)?
            });
            if chained > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// True when a tenant with this slug exists (read from its aggregate).
    pub async fn tenant_exists(&self, slug: &str) -> Result<bool, StoreError> {
        if TenantSlug::parse(slug).is_err() {
            return Ok(false);
        }
        Ok(self
            .executor
            .load::<Tenant>(slug)
            .await?
            .exists())
    }
}

impl<'a> CredentialAdmin<'a> {
    /// Administration over `executor` and `table` (the CLI's, on the store).
    pub fn on_store(executor: &'a Executor<Projections>, table: &'a Credentials) -> Self {
        CredentialAdmin { executor, table }
    }

    /// The grant of the credential whose token is `token`, if it is usable now: known by its
    /// hash, created, not revoked, not expired. Nothing is cached: a revocation holds from the
    /// next request on every node.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Grant>, StoreError> {
        let Some(row) = self.table.authenticate(token).await? else {
            return Ok(None);
        };
        let credential = self
            .executor
            .load::<Credential>(&row.id)
            .await?;
        if credential.created.is_none() {
            // `config` and `bootstrap` predate credential events: platform admins, registered
            // by their first change. Any other row without events was never completed.
            if is_legacy_id(&row.id, &row.role, row.tenant.as_deref()) {
                return Ok(Some(Grant {
                    credential_id: row.id,
                    role: CredentialRole::PlatformAdmin,
                    tenant: None,
                }));
            }
            tracing::warn!(credential_id = %row.id, "credential without events refused");
            return Ok(None);
        }
        let Some(created) = credential.usable(Utc::now()) else {
            let why = if credential.revoked_at.is_some() {
                "revoked"
            } else {
                "expired"
            };
            tracing::warn!(credential_id = %row.id, why, "unusable admin credential refused");
            return Ok(None);
        };
        let role = created.role;
        let tenant = created
            .tenant
            .as_ref()
            .map(|t| t.as_str().to_owned());
        if row.role != role.as_str() || row.tenant != tenant {
            tracing::error!(
                credential_id = %row.id,
                "the credentials table disagrees with the credential's events; refused"
            );
            return Ok(None);
        }
        Ok(Some(Grant {
            credential_id: row.id,
            role,
            tenant,
        }))
    }

    /// Records `credential.created` for `config` or `bootstrap`, which predate credential
    /// events, before their first change (a revocation). Returns false when it exists already.
    async fn register(&self, row: &StoredCredential) -> Result<bool, StoreError> {
        let created = CredentialCreated {
            role: CredentialRole::PlatformAdmin,
            tenant: None,
            label: row.label.clone(),
            expires_at: None,
            actor: Actor::system(),
        };
        let metadata = Metadata {
            actor: Actor::system(),
            request_id: None,
        };
        match self
            .executor
            .execute::<Credential>(&row.id, CredentialCommand::Create(created), &metadata)
            .await
        {
            Ok(_) => Ok(true),
            // Another node registered it first.
            Err(CommandError::Rejected(CredentialError::AlreadyExists)) => Ok(false),
            Err(CommandError::Rejected(other)) => Err(StoreError::Database(other.to_string())),
            Err(CommandError::Store(store)) => Err(store),
        }
    }

    /// Creates a credential and returns it with its token (shown once). A tenant admin may
    /// create auditors of its own tenant only; the CLI and platform admins anything.
    pub async fn create(
        &self,
        issuer: &Issuer,
        input: NewCredential,
        request_id: Option<String>,
    ) -> Result<IssuedCredential, CredentialAdminError> {
        let role = CredentialRole::parse(&input.role)
            .ok_or_else(|| invalid("/role", "must be platform_admin, tenant_admin or auditor"))?;
        let tenant = match (role.is_tenant_scoped(), input.tenant.as_deref()) {
            (true, None) => return Err(invalid("/tenant", "a tenant role needs a tenant")),
            (false, Some(_)) => {
                return Err(invalid("/tenant", "a platform admin belongs to no tenant"))
            }
            (false, None) => None,
            (true, Some(slug)) => Some(slug),
        };
        if let Issuer::Credential(grant) = issuer {
            match grant.role {
                CredentialRole::PlatformAdmin => {}
                CredentialRole::TenantAdmin => {
                    // The role first: refusing it says nothing of any tenant.
                    if role != CredentialRole::Auditor {
                        return Err(CredentialAdminError::Forbidden(
                            "a tenant admin may create auditors of its own tenant only",
                        ));
                    }
                    if tenant != grant.tenant.as_deref() {
                        return Err(CredentialAdminError::NotFound("tenant"));
                    }
                }
                CredentialRole::Auditor => {
                    return Err(CredentialAdminError::Forbidden(
                        "an auditor cannot manage credentials",
                    ))
                }
            }
        }
        let tenant = match tenant {
            None => None,
            Some(slug) => {
                let slug = TenantSlug::parse(slug)
                    .map_err(|_| CredentialAdminError::NotFound("tenant"))?;
                if !self
                    .executor
                    .load::<Tenant>(slug.as_str())
                    .await?
                    .exists()
                {
                    return Err(CredentialAdminError::NotFound("tenant"));
                }
                Some(slug)
            }
        };
        let label = input
            .label
            .unwrap_or_default()
            .trim()
            .to_owned();
        if label.chars().count() > 100 || label.chars().any(char::is_control) {
            return Err(invalid(
                "/label",
                "must be at most 100 printable characters",
            ));
        }
        let expires_at = match input.expires_at.as_deref() {
            None => None,
            Some(text) => {
                let at = DateTime::parse_from_rfc3339(text)
                    .map_err(|_| invalid("/expires_at", "must be an RFC 3339 time"))?
                    .with_timezone(&Utc);
                if at <= Utc::now() {
                    return Err(invalid("/expires_at", "must be in the future"));
                }
                Some(at)
            }
        };

        let id = uuid::Uuid::new_v4().to_string();
        let token = Zeroizing::new(new_token());
        let tenant_text = tenant
            .as_ref()
            .map(|t| t.as_str().to_owned());
        // The hash first: without its event the row grants nothing (see `authenticate`), so a
        // failure between the two leaves no working credential that the log does not show.
        self.table
            .insert(&id, &token, &label, role.as_str(), tenant_text.as_deref())
            .await?;
        let created = CredentialCreated {
            role,
            tenant,
            label,
            expires_at,
            actor: issuer.actor(),
        };
        let metadata = Metadata {
            actor: issuer.actor(),
            request_id,
        };
        self.executor
            .execute::<Credential>(&id, CredentialCommand::Create(created), &metadata)
            .await
            .map_err(command_error)?;
        let credential = self
            .view(&id)
            .await?
            .ok_or(CredentialAdminError::NotFound("credential"))?;
        Ok(IssuedCredential { credential, token })
    }

    /// Credentials the issuer may see, oldest first: every one (or one tenant's) for the CLI
    /// and platform admins, its own tenant's for a tenant admin.
    pub async fn list(
        &self,
        issuer: &Issuer,
        tenant: Option<&str>,
    ) -> Result<Vec<CredentialView>, CredentialAdminError> {
        let tenant = match issuer {
            Issuer::System => tenant,
            Issuer::Credential(grant) => match grant.role {
                CredentialRole::PlatformAdmin => tenant,
                CredentialRole::TenantAdmin => {
                    if tenant.is_some() && tenant != grant.tenant.as_deref() {
                        return Err(CredentialAdminError::NotFound("tenant"));
                    }
                    grant.tenant.as_deref()
                }
                CredentialRole::Auditor => {
                    return Err(CredentialAdminError::Forbidden(
                        "an auditor cannot manage credentials",
                    ))
                }
            },
        };
        let mut out = Vec::new();
        for row in self.table.list(tenant).await? {
            if let Some(view) = self.view_of(row).await? {
                out.push(view);
            }
        }
        Ok(out)
    }

    /// Revokes a credential: at once, on every node. A tenant admin may revoke the auditors of
    /// its own tenant only; another tenant's credential or a platform one is "not found".
    pub async fn revoke(
        &self,
        issuer: &Issuer,
        id: &str,
        request_id: Option<String>,
    ) -> Result<CredentialView, CredentialAdminError> {
        let not_found = CredentialAdminError::NotFound("credential");
        if id.is_empty() || id.len() > 64 {
            return Err(not_found);
        }
        let Some(row) = self.table.get(id).await? else {
            return Err(not_found);
        };
        if let Issuer::Credential(grant) = issuer {
            match grant.role {
                CredentialRole::PlatformAdmin => {}
                CredentialRole::TenantAdmin => {
                    if row.tenant.is_none() || row.tenant != grant.tenant {
                        return Err(not_found);
                    }
                    if row.role != CredentialRole::Auditor.as_str() {
                        return Err(CredentialAdminError::Forbidden(
                            "a tenant admin may revoke auditors of its own tenant only",
                        ));
                    }
                }
                CredentialRole::Auditor => {
                    return Err(CredentialAdminError::Forbidden(
                        "an auditor cannot manage credentials",
                    ))
                }
            }
        }
        if is_legacy(&row) {
            self.register(&row).await?;
        }
        let command = CredentialCommand::Revoke {
            actor: issuer.actor(),
            at: Utc::now(),
        };
        let metadata = Metadata {
            actor: issuer.actor(),
            request_id,
        };
        self.executor
            .execute::<Credential>(id, command, &metadata)
            .await
            .map_err(command_error)?;
        self.view(id)
            .await?
            .ok_or(CredentialAdminError::NotFound("credential"))
    }

    async fn view(&self, id: &str) -> Result<Option<CredentialView>, StoreError> {
        match self.table.get(id).await? {
            Some(row) => self.view_of(row).await,
            None => Ok(None),
        }
    }

    async fn view_of(&self, row: StoredCredential) -> Result<Option<CredentialView>, StoreError> {
        let credential = self
            .executor
            .load::<Credential>(&row.id)
            .await?;
        let view = match credential.created {
            Some(created) => CredentialView {
                id: row.id,
                role: created.role,
                tenant: created.tenant.map(String::from),
                label: created.label,
                created_at: row.created_at,
                created_by: created.actor.0,
                expires_at: created.expires_at,
                revoked_at: credential.revoked_at,
            },
            None if is_legacy(&row) => CredentialView {
                id: row.id,
                role: CredentialRole::PlatformAdmin,
                tenant: None,
                label: row.label,
                created_at: row.created_at,
                created_by: Actor::system().0,
                expires_at: None,
                revoked_at: None,
            },
            // Never completed: grants nothing, shown nowhere.
            None => return Ok(None),
        };
        Ok(Some(view))
    }
}

fn is_legacy(row: &StoredCredential) -> bool {
    is_legacy_id(&row.id, &row.role, row.tenant.as_deref())
}

fn is_legacy_id(id: &str, role: &str, tenant: Option<&str>) -> bool {
    (id == CONFIG_ID || id == BOOTSTRAP_ID)
        && role == CredentialRole::PlatformAdmin.as_str()
        && tenant.is_none()
}

fn command_error(error: CommandError<CredentialError>) -> CredentialAdminError {
    match error {
        CommandError::Rejected(CredentialError::NotFound) => {
            CredentialAdminError::NotFound("credential")
        }
        CommandError::Rejected(other) => {
            CredentialAdminError::Store(StoreError::Database(other.to_string()))
        }
        CommandError::Store(store) => CredentialAdminError::Store(store),
    }
}

/// The filters of an audit read as recorded: `name=value` pairs (form-encoded, joined by `&`)
/// in the order given. Values are kept only for filters known to name no person (times, types,
/// outcomes, reasons, connections, protocols, paging, formats, path ids); every other value,
/// such as an email, a user id or a client IP, is withheld as `*`, so the access log holds no
/// personal data beyond the fact that a filter was used; so is a value of a kept filter that
/// does not look like one (over 100 characters, or any character beyond letters, digits and
/// `.:_+-`). Names that are not plain identifiers are dropped and counted. At most 40 pairs.
pub fn audit_read_filters(pairs: &[(String, String)]) -> String {
    const KEPT: &[&str] = &[
        "from",
        "to",
        "type",
        "outcome",
        "reason",
        "connection",
        "connection_id",
        "protocol",
        "limit",
        "cursor",
        "order",
        "since",
        "format",
        "bucket",
        "interval",
        "group_by",
        "at",
        "from_time",
        "to_time",
        "a",
        "b",
        "attempt_id",
        "id",
    ];
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    let mut dropped = 0usize;
    for (index, (name, value)) in pairs.iter().enumerate() {
        let plain = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !plain || index >= 40 {
            dropped += 1;
            continue;
        }
        // A kept filter's value is kept only when it looks like one (times, type names, reason
        // codes, ids, cursors): anything else, such as an address typed into `reason`, which
        // the route then refuses, is withheld too.
        let looks_like_a_value = value.len() <= 100
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".:_+-".contains(&b));
        if KEPT.contains(&name.as_str()) && looks_like_a_value {
            out.append_pair(name, value);
        } else {
            out.append_pair(name, "*");
        }
    }
    if dropped > 0 {
        out.append_pair("dropped", &dropped.to_string());
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn personal_filter_values_are_withheld() {
        let recorded = audit_read_filters(&pairs(&[
            ("type", "login."),
            ("email", "alice@example.com"),
            ("client_ip", "10.0.0.1"),
            ("user", "6f1c"),
            ("outcome", "failed"),
        ]));
        assert_eq!(
            recorded,
            "type=login.&email=*&client_ip=*&user=*&outcome=failed"
        );
        assert!(!recorded.contains("alice"));
    }

    #[test]
    fn odd_names_are_dropped_and_values_encoded() {
        let recorded = audit_read_filters(&pairs(&[
            ("alice@example.com", "1"),
            ("from", "2026-01-01T00:00:00+01:00"),
            ("to", "2026-01-01T00:00:00+01:00&x=y"),
            ("reason", "alice@example.com"),
            ("type", "login.failed"),
        ]));
        assert_eq!(
            recorded,
            "from=2026-01-01T00%3A00%3A00%2B01%3A00&to=*&reason=*&type=login.failed&dropped=1"
        );
    }

    #[test]
    fn grants_follow_the_roles() {
        let admin = Grant {
            credential_id: "a".into(),
            role: CredentialRole::TenantAdmin,
            tenant: Some("acme".into()),
        };
        assert!(admin.administers("acme"));
        assert!(!admin.administers("other"));
        assert!(admin.sees("acme"));
        let auditor = Grant {
            role: CredentialRole::Auditor,
            ..admin.clone()
        };
        assert!(!auditor.administers("acme"));
        assert!(auditor.sees("acme"));
        assert!(!auditor.sees("other"));
        let platform = Grant {
            role: CredentialRole::PlatformAdmin,
            tenant: None,
            ..admin
        };
        assert!(platform.administers("anything"));
    }
}
