//! The `User` aggregate and the `Identity` aggregate that links an external identity to it.
//!
//! `Identity` id: `{tenant}:{connection}:{sha256(issuer, subject)}`, so a login finds its user
//! by loading one aggregate, never through a projection. `User` id: the user's UUID.

mod identity;
#[cfg(test)]
mod tests;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

pub use identity::{Identity, IdentityCommand, IdentityEvent};

use super::NoServices;
use crate::ids::{ConnectionId, TenantSlug};

/// State folded from a user's events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Tenant the account belongs to; accounts are per tenant.
    pub tenant: Option<TenantSlug>,
    /// Email from the identity provider.
    pub email: String,
    /// Display name from the identity provider.
    pub name: Option<String>,
}

/// Commands on a user.
#[derive(Debug, Clone)]
pub enum UserCommand {
    /// Records a verified sign-in: provisions the account the first time, updates the profile
    /// when the provider's email or name changed, and otherwise writes nothing.
    RecordSignIn {
        /// Tenant.
        tenant: TenantSlug,
        /// Connection the identity came through.
        connection_id: ConnectionId,
        /// Subject at the provider.
        subject: String,
        /// Verified email.
        email: String,
        /// Display name.
        name: Option<String>,
    },
}

/// A user command that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// The account belongs to another tenant.
    #[error("the account belongs to another tenant")]
    WrongTenant,
}

/// Facts about a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UserEvent {
    /// `user.provisioned`: created on first sign-in.
    Provisioned {
        /// Tenant.
        tenant: TenantSlug,
        /// Connection of the first sign-in.
        connection_id: ConnectionId,
        /// Subject at the provider.
        subject: String,
        /// Email.
        email: String,
        /// Display name.
        name: Option<String>,
    },
    /// `user.profile_updated`: the provider reported a new email or name.
    ProfileUpdated {
        /// New email.
        email: String,
        /// New display name.
        name: Option<String>,
    },
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        match self {
            UserEvent::Provisioned { .. } => "user.provisioned",
            UserEvent::ProfileUpdated { .. } => "user.profile_updated",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl Aggregate for User {
    const TYPE: &'static str = "user";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;
    type Services = NoServices;

    async fn handle(
        &mut self,
        command: UserCommand,
        _services: &NoServices,
        sink: &EventSink<Self>,
    ) -> Result<(), UserError> {
        let UserCommand::RecordSignIn {
            tenant,
            connection_id,
            subject,
            email,
            name,
        } = command;
        match &self.tenant {
            None => {
                let event = UserEvent::Provisioned {
                    tenant,
                    connection_id,
                    subject,
                    email,
                    name,
                };
                sink.write(event, self).await;
            }
            Some(existing) if *existing != tenant => return Err(UserError::WrongTenant),
            Some(_) if self.email != email || (name.is_some() && self.name != name) => {
                let name = name.or_else(|| self.name.clone());
                sink.write(UserEvent::ProfileUpdated { email, name }, self).await;
            }
            Some(_) => {}
        }
        Ok(())
    }

    fn apply(&mut self, event: UserEvent) {
        match event {
            UserEvent::Provisioned {
                tenant,
                email,
                name,
                ..
            } => {
                self.tenant = Some(tenant);
                self.email = email;
                self.name = name;
            }
            UserEvent::ProfileUpdated { email, name } => {
                self.email = email;
                self.name = name;
            }
        }
    }
}
