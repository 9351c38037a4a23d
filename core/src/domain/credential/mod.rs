//! The `Credential` aggregate: an admin API credential with a role, and its revocation.
//!
//! Aggregate id: the credential id (`config` and `bootstrap` for the two credentials Gatehouse
//! makes itself, a UUID for the others). The events are the authority on what a credential may
//! do: authentication finds the id by the token's hash (`admin_credentials`, the only place the
//! hash lives) and then folds these events, so a revocation takes effect on every node at the
//! next request. Neither the token nor its hash is ever part of an event.

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::NoServices;
use crate::ids::{Actor, TenantSlug};

/// What a credential may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialRole {
    /// Every tenant, tenant creation, and every credential.
    PlatformAdmin,
    /// One tenant's setup and audit; may mint and revoke auditors of that tenant.
    TenantAdmin,
    /// One tenant's audit, read only.
    Auditor,
}

impl CredentialRole {
    /// The wire name (`platform_admin`, `tenant_admin`, `auditor`).
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialRole::PlatformAdmin => "platform_admin",
            CredentialRole::TenantAdmin => "tenant_admin",
            CredentialRole::Auditor => "auditor",
        }
    }

    /// Parses a wire name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "platform_admin" => Some(CredentialRole::PlatformAdmin),
            "tenant_admin" => Some(CredentialRole::TenantAdmin),
            "auditor" => Some(CredentialRole::Auditor),
            _ => None,
        }
    }

    /// True for the roles bound to one tenant.
    pub fn is_tenant_scoped(self) -> bool {
        !matches!(self, CredentialRole::PlatformAdmin)
    }
}

/// `credential.created`: what the credential is, never its token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialCreated {
    /// Its role.
    pub role: CredentialRole,
    /// Its tenant; `None` exactly for platform admins.
    pub tenant: Option<TenantSlug>,
    /// A name for people (what it is for).
    pub label: String,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// Who made it: a credential, or the system (the CLI and the start-up).
    pub actor: Actor,
}

/// State folded from a credential's events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Credential {
    /// Set once created.
    pub created: Option<CredentialCreated>,
    /// Set once revoked: when.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Credential {
    /// The credential's grant if it is usable at `now`: created, not revoked, not expired.
    pub fn usable(&self, now: DateTime<Utc>) -> Option<&CredentialCreated> {
        let created = self.created.as_ref()?;
        if self.revoked_at.is_some() {
            return None;
        }
        match created.expires_at {
            Some(expires_at) if expires_at <= now => None,
            _ => Some(created),
        }
    }
}

/// Commands on a credential.
#[derive(Debug, Clone)]
pub enum CredentialCommand {
    /// Records a new credential. The caller has checked the role and tenant rules and stored
    /// the token's hash under the same id.
    Create(CredentialCreated),
    /// Revokes it. Revoking a revoked credential writes nothing.
    Revoke {
        /// Who revokes it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
}

/// A credential command that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The id is taken.
    #[error("a credential with this id already exists")]
    AlreadyExists,
    /// No such credential.
    #[error("no such credential")]
    NotFound,
    /// A platform admin with a tenant, or a tenant role without one.
    #[error("the role and the tenant do not fit together")]
    ScopeMismatch,
}

/// Facts about a credential. Wire names are frozen; a new shape gets a new version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CredentialEvent {
    /// `credential.created`
    Created(CredentialCreated),
    /// `credential.revoked`
    Revoked {
        /// Its role, repeated so that the audit entry needs no lookup.
        role: CredentialRole,
        /// Its tenant, repeated likewise.
        tenant: Option<TenantSlug>,
        /// Who revoked it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for CredentialEvent {
    fn event_type(&self) -> String {
        match self {
            CredentialEvent::Created(_) => "credential.created",
            CredentialEvent::Revoked { .. } => "credential.revoked",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl Aggregate for Credential {
    const TYPE: &'static str = "credential";
    type Command = CredentialCommand;
    type Event = CredentialEvent;
    type Error = CredentialError;
    type Services = NoServices;

    async fn handle(
        &mut self,
        command: CredentialCommand,
        _services: &NoServices,
        sink: &EventSink<Self>,
    ) -> Result<(), CredentialError> {
        match command {
            CredentialCommand::Create(created) => {
                if self.created.is_some() {
                    return Err(CredentialError::AlreadyExists);
                }
                if created.role.is_tenant_scoped() != created.tenant.is_some() {
                    return Err(CredentialError::ScopeMismatch);
                }
                sink.write(CredentialEvent::Created(created), self)
                    .await;
            }
            CredentialCommand::Revoke { actor, at } => {
                let Some(created) = &self.created else {
                    return Err(CredentialError::NotFound);
                };
                if self.revoked_at.is_none() {
                    let event = CredentialEvent::Revoked {
                        role: created.role,
                        tenant: created.tenant.clone(),
                        actor,
                        at,
                    };
                    sink.write(event, self).await;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: CredentialEvent) {
        match event {
            CredentialEvent::Created(created) => self.created = Some(created),
            CredentialEvent::Revoked { at, .. } => self.revoked_at = Some(at),
        }
    }
}
