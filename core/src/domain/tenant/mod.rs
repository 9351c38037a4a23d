//! The `Tenant` aggregate: a company reached at `/{slug}`, with its SSO connections.
//!
//! Aggregate id: the slug. Connections live inside the tenant so that a login reads them from
//! the aggregate itself, never from a projection that may lag.

mod commands;
mod error;
mod events;
mod policy;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use commands::TenantCommand;
pub use error::TenantError;
pub use events::TenantEvent;
pub use policy::{LoginPolicy, StandardMethod};

use super::NoServices;
use crate::ids::{ConnectionId, TenantSlug};

/// A connection as stored: protocol, label and config, with secret fields sealed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    /// Protocol id of the plugin that serves it (`oidc`).
    pub protocol: String,
    /// Button label on the choice page.
    pub label: String,
    /// Config as validated by the plugin; secret fields hold sealed values.
    pub config: Value,
}

/// State folded from a tenant's events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    /// Set once the tenant exists.
    pub slug: Option<TenantSlug>,
    /// Company name shown on pages.
    pub display_name: String,
    /// Where people land after signing in.
    pub app_url: String,
    /// Extra origins a `return_to` may point at.
    pub return_origins: Vec<String>,
    /// SSO connections by id.
    pub connections: BTreeMap<ConnectionId, Connection>,
    /// Warnings on record for each connection's current configuration.
    #[serde(default)]
    pub warnings: BTreeMap<ConnectionId, Vec<String>>,
    /// Standard methods, guests and enforced SSO; the default until a policy is set.
    #[serde(default)]
    pub login_policy: LoginPolicy,
}

impl Tenant {
    /// True once `TenantCreated` has been applied.
    pub fn exists(&self) -> bool {
        self.slug.is_some()
    }
}

impl Aggregate for Tenant {
    const TYPE: &'static str = "tenant";
    type Command = TenantCommand;
    type Event = TenantEvent;
    type Error = TenantError;
    type Services = NoServices;

    async fn handle(
        &mut self,
        command: TenantCommand,
        _services: &NoServices,
        sink: &EventSink<Self>,
    ) -> Result<(), TenantError> {
        match command {
            TenantCommand::Create {
                slug,
                display_name,
                app_url,
                return_origins,
                actor,
            } => {
                if self.exists() {
                    return Err(TenantError::AlreadyExists);
                }
                let event = TenantEvent::Created {
                    slug,
                    display_name,
                    app_url,
                    return_origins,
                    actor,
                };
                sink.write(event, self).await;
            }
            TenantCommand::ConfigureConnection {
                connection_id,
                connection,
                actor,
            } => {
                if !self.exists() {
                    return Err(TenantError::NotFound);
                }
                let created = !self.connections.contains_key(&connection_id);
                if self.connections.get(&connection_id) == Some(&connection) {
                    return Ok(());
                }
                let event = TenantEvent::ConnectionConfigured {
                    connection_id,
                    protocol: connection.protocol,
                    label: connection.label,
                    config: connection.config,
                    created,
                    actor,
                };
                sink.write(event, self).await;
            }
            TenantCommand::RaiseConnectionWarning {
                connection_id,
                warning,
                actor,
            } => {
                if !self.connections.contains_key(&connection_id) {
                    return Err(TenantError::ConnectionNotFound);
                }
                let known = self.warnings.get(&connection_id).is_some_and(|w| w.contains(&warning));
                if !known {
                    let event = TenantEvent::ConnectionWarningRaised {
                        connection_id,
                        warning,
                        actor,
                    };
                    sink.write(event, self).await;
                }
            }
            TenantCommand::RemoveConnection {
                connection_id,
                actor,
            } => {
                if !self.exists() {
                    return Err(TenantError::NotFound);
                }
                if !self.connections.contains_key(&connection_id) {
                    return Err(TenantError::ConnectionNotFound);
                }
                let event = TenantEvent::ConnectionRemoved {
                    connection_id,
                    actor,
                };
                sink.write(event, self).await;
            }
            TenantCommand::SetLoginPolicy { policy, actor } => {
                if !self.exists() {
                    return Err(TenantError::NotFound);
                }
                if self.login_policy != policy {
                    sink.write(TenantEvent::LoginPolicyChanged { policy, actor }, self).await;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: TenantEvent) {
        match event {
            TenantEvent::Created {
                slug,
                display_name,
                app_url,
                return_origins,
                ..
            } => {
                self.slug = Some(slug);
                self.display_name = display_name;
                self.app_url = app_url;
                self.return_origins = return_origins;
            }
            TenantEvent::ConnectionConfigured {
                connection_id,
                protocol,
                label,
                config,
                ..
            } => {
                let connection = Connection {
                    protocol,
                    label,
                    config,
                };
                self.warnings.remove(&connection_id);
                self.connections.insert(connection_id, connection);
            }
            TenantEvent::ConnectionWarningRaised {
                connection_id,
                warning,
                ..
            } => {
                self.warnings.entry(connection_id).or_default().push(warning);
            }
            TenantEvent::ConnectionRemoved { connection_id, .. } => {
                self.warnings.remove(&connection_id);
                self.connections.remove(&connection_id);
            }
            TenantEvent::LoginPolicyChanged { policy, .. } => self.login_policy = policy,
        }
    }
}
