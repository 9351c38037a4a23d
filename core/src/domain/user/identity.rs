use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::crypto::sha256_hex;
use crate::domain::NoServices;
use crate::ids::{ConnectionId, TenantSlug, UserId};

/// Link between (tenant, connection, issuer, subject) and a Gatehouse user.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// The linked user, once linked.
    pub user_id: Option<UserId>,
}

impl Identity {
    /// Aggregate id for an external identity.
    pub fn aggregate_id(
        tenant: &TenantSlug,
        connection: &ConnectionId,
        issuer: &str,
        subject: &str,
    ) -> String {
        // Length-prefix the parts so no two (issuer, subject) pairs hash the same input.
        let key = format!("{}:{issuer}{}:{subject}", issuer.len(), subject.len());
        format!("{tenant}:{connection}:{}", sha256_hex(&key))
    }
}

/// Commands on an identity link.
#[derive(Debug, Clone)]
pub enum IdentityCommand {
    /// Links the identity to `user_id` unless it is already linked (then nothing is written
    /// and the existing link stands).
    Link {
        /// Tenant.
        tenant: TenantSlug,
        /// Connection.
        connection_id: ConnectionId,
        /// Provider issuer.
        issuer: String,
        /// Subject at the provider.
        subject: String,
        /// User to link to.
        user_id: UserId,
    },
}

/// Facts about an identity link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum IdentityEvent {
    /// `identity.linked`
    Linked {
        /// Tenant.
        tenant: TenantSlug,
        /// Connection.
        connection_id: ConnectionId,
        /// Provider issuer.
        issuer: String,
        /// Subject at the provider.
        subject: String,
        /// Linked user.
        user_id: UserId,
    },
}

impl DomainEvent for IdentityEvent {
    fn event_type(&self) -> String {
        "identity.linked".to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// Identity commands cannot fail; the type exists for the aggregate contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("identity error")]
pub struct IdentityError;

impl Aggregate for Identity {
    const TYPE: &'static str = "identity";
    type Command = IdentityCommand;
    type Event = IdentityEvent;
    type Error = IdentityError;
    type Services = NoServices;

    async fn handle(
        &mut self,
        command: IdentityCommand,
        _services: &NoServices,
        sink: &EventSink<Self>,
    ) -> Result<(), IdentityError> {
        let IdentityCommand::Link {
            tenant,
            connection_id,
            issuer,
            subject,
            user_id,
        } = command;
        if self.user_id.is_none() {
            let event = IdentityEvent::Linked {
                tenant,
                connection_id,
                issuer,
                subject,
                user_id,
            };
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: IdentityEvent) {
        let IdentityEvent::Linked { user_id, .. } = event;
        self.user_id = Some(user_id);
    }
}
