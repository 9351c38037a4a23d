use crate::ids::{Actor, ConnectionId, TenantSlug};

use super::{Connection, LoginPolicy};

/// What an administrator asks of a tenant.
#[derive(Debug, Clone)]
pub enum TenantCommand {
    /// Creates the tenant. Fails if the slug is taken.
    Create {
        /// URL name, also the aggregate id.
        slug: TenantSlug,
        /// Company name.
        display_name: String,
        /// Landing URL after sign-in (absolute http(s), checked by the caller).
        app_url: String,
        /// Extra exact origins allowed for `return_to`.
        return_origins: Vec<String>,
        /// The admin credential acting.
        actor: Actor,
    },
    /// Adds or replaces a connection. The config must already be validated by its plugin and
    /// have its secrets sealed.
    ConfigureConnection {
        /// Connection id.
        connection_id: ConnectionId,
        /// The new connection.
        connection: Connection,
        /// The admin credential acting.
        actor: Actor,
    },
    /// Records a warning about a connection (a certificate about to expire) unless the same
    /// warning is already on record for its current configuration.
    RaiseConnectionWarning {
        /// Connection id.
        connection_id: ConnectionId,
        /// The warning, as shown to administrators.
        warning: String,
        /// Who noticed: an admin credential or the system.
        actor: Actor,
    },
    /// Removes a connection.
    RemoveConnection {
        /// Connection id.
        connection_id: ConnectionId,
        /// The admin credential acting.
        actor: Actor,
    },
    /// Replaces the login policy. Writes nothing when the policy is unchanged.
    SetLoginPolicy {
        /// The new policy, whole.
        policy: LoginPolicy,
        /// The admin credential acting.
        actor: Actor,
    },
}
