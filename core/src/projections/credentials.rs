//! Where credential changes and audit reads land in the audit log.
//!
//! - `credential.created` and `credential.revoked` of a tenant-scoped credential (tenant admin,
//!   auditor) are entries of that tenant's log. Those of a platform admin belong to no tenant:
//!   they are entries of the platform log, whose tenant key is [`PLATFORM_SCOPE`] (`_platform`,
//!   which no tenant slug can be).
//! - `audit.read` entries go to the access log of the log that was read: the tenant key is the
//!   read log's key followed by [`ACCESS_SUFFIX`] (`acme.access`, `_platform.access`; slugs
//!   have no dot). Each access log is a hash chain of its own, verified by
//!   `gatehouse audit verify` like any tenant's. Keeping reads apart means that reading a log
//!   never changes what is read: a listing, a verification or an export can be repeated with
//!   the same result, and a SIEM polling the log does not see its own polls as new entries.

use async_trait::async_trait;
use cqrs_es::{Aggregate, DomainEvent, EventEnvelope};

use super::audit::AuditRow;
use super::batch::Pending;
use super::{Conn, Project, Projections};
use crate::domain::audit_read::{AuditRead, AuditReadEvent};
use crate::domain::credential::{Credential, CredentialEvent, CredentialRole};
use crate::ids::TenantSlug;
use crate::store::StoreError;

/// Tenant key of the platform log (platform admins' credential changes).
pub const PLATFORM_SCOPE: &str = "_platform";

/// Appended to a log's tenant key to name its access log.
pub const ACCESS_SUFFIX: &str = ".access";

/// The tenant key of the access log of `scope` (a slug or [`PLATFORM_SCOPE`]).
pub fn access_scope(scope: &str) -> String {
    format!("{scope}{ACCESS_SUFFIX}")
}

/// The tenant key of a credential's entries: its tenant, or the platform log.
pub fn credential_scope(tenant: Option<&TenantSlug>) -> String {
    tenant
        .map(|t| t.as_str().to_owned())
        .unwrap_or_else(|| PLATFORM_SCOPE.to_owned())
}

/// Key, time, actor and request id from the envelope, as for every audit entry.
fn row<A: Aggregate>(event: &EventEnvelope<A>, scope: String, kind: String) -> AuditRow {
    AuditRow::for_event(event, &scope, &kind)
}

fn describe(id: &str, role: CredentialRole) -> String {
    format!("credential {id} role={}", role.as_str())
}

#[async_trait]
impl Project<Credential> for Projections {
    async fn project(
        &self,
        _conn: &mut Conn<'_>,
        pending: &mut Pending,
        event: &EventEnvelope<Credential>,
    ) -> Result<(), StoreError> {
        let id = event.aggregate_id.as_str();
        let kind = event.payload.event_type();
        let row = match &event.payload {
            CredentialEvent::Created(created) => {
                let mut row = row(event, credential_scope(created.tenant.as_ref()), kind);
                row.actor = Some(created.actor.0.clone());
                let mut detail = describe(id, created.role);
                // The label is the administrator's own text, quoted as JSON so it cannot pose
                // as another field.
                detail.push_str(&format!(
                    " label={}",
                    serde_json::to_string(&created.label).unwrap_or_default()
                ));
                if let Some(expires_at) = created.expires_at {
                    detail.push_str(&format!(" expires_at={}", expires_at.to_rfc3339()));
                }
                row.detail = Some(detail);
                row
            }
            CredentialEvent::Revoked {
                role,
                tenant,
                actor,
                ..
            } => {
                let mut row = row(event, credential_scope(tenant.as_ref()), kind);
                row.actor = Some(actor.0.clone());
                row.detail = Some(describe(id, *role));
                row
            }
        };
        pending.audit(row);
        Ok(())
    }
}

#[async_trait]
impl Project<AuditRead> for Projections {
    async fn project(
        &self,
        _conn: &mut Conn<'_>,
        pending: &mut Pending,
        event: &EventEnvelope<AuditRead>,
    ) -> Result<(), StoreError> {
        let AuditReadEvent::Recorded(read) = &event.payload;
        let mut row = row(event, access_scope(&read.scope), event.payload.event_type());
        row.detail = Some(if read.filters.is_empty() {
            read.route.clone()
        } else {
            format!("{} {}", read.route, read.filters)
        });
        pending.audit(row);
        Ok(())
    }
}
