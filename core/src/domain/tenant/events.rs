use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::LoginPolicy;
use crate::ids::{Actor, ConnectionId, TenantSlug};

/// Facts about a tenant. Wire names are frozen; a new shape gets a new version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TenantEvent {
    /// `tenant.created`
    Created {
        /// URL name.
        slug: TenantSlug,
        /// Company name.
        display_name: String,
        /// Landing URL after sign-in.
        app_url: String,
        /// Extra origins allowed for `return_to`.
        return_origins: Vec<String>,
        /// Who created it.
        actor: Actor,
    },
    /// `tenant.connection.configured`: added (`created`) or replaced.
    ConnectionConfigured {
        /// Connection id.
        connection_id: ConnectionId,
        /// Plugin protocol id.
        protocol: String,
        /// Button label.
        label: String,
        /// Config with secret fields sealed, never in plain text.
        config: Value,
        /// True when the connection did not exist before.
        created: bool,
        /// Who configured it.
        actor: Actor,
    },
    /// `tenant.connection.warning_raised`: something an administrator must act on soon.
    ConnectionWarningRaised {
        /// Connection id.
        connection_id: ConnectionId,
        /// The warning.
        warning: String,
        /// Who noticed.
        actor: Actor,
    },
    /// `tenant.connection.removed`
    ConnectionRemoved {
        /// Connection id.
        connection_id: ConnectionId,
        /// Who removed it.
        actor: Actor,
    },
    /// `tenant.login_policy.changed`: the whole new policy (standard methods, guests,
    /// enforced SSO).
    LoginPolicyChanged {
        /// The policy in force from now on.
        policy: LoginPolicy,
        /// Who changed it.
        actor: Actor,
    },
}

impl DomainEvent for TenantEvent {
    fn event_type(&self) -> String {
        match self {
            TenantEvent::Created { .. } => "tenant.created",
            TenantEvent::ConnectionConfigured { .. } => "tenant.connection.configured",
            TenantEvent::ConnectionWarningRaised { .. } => "tenant.connection.warning_raised",
            TenantEvent::ConnectionRemoved { .. } => "tenant.connection.removed",
            TenantEvent::LoginPolicyChanged { .. } => "tenant.login_policy.changed",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
