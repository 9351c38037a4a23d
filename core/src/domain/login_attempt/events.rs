use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::ids::{ConnectionId, TenantSlug, UserId};

/// `login.started`: who tried, where and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginStarted {
    /// Tenant signed in to.
    pub tenant: TenantSlug,
    /// Connection used (absent when the attempt failed before one was known).
    pub connection_id: Option<ConnectionId>,
    /// Protocol of the connection (`oidc`).
    pub protocol: Option<String>,
    /// Method: `sso` for a tenant connection.
    pub method: String,
    /// Client IP address as seen by Gatehouse.
    pub client_ip: Option<String>,
    /// Browser user agent, truncated.
    pub user_agent: Option<String>,
}

/// `login.succeeded`: the verified identity and the Gatehouse user it maps to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginSucceeded {
    /// Identity provider issuer.
    pub issuer: String,
    /// Subject at that provider.
    pub subject: String,
    /// Verified email.
    pub email: String,
    /// Display name, if the provider gave one.
    pub name: Option<String>,
    /// The Gatehouse user.
    pub user_id: UserId,
}

/// Facts about a login attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LoginAttemptEvent {
    /// `login.started`
    Started(LoginStarted),
    /// `login.succeeded`
    Succeeded(LoginSucceeded),
    /// `login.failed`, with a stable reason code and a safe detail.
    Failed {
        /// Stable reason code.
        reason: String,
        /// Safe explanation.
        detail: String,
        /// Email the identity provider asserted, if the refusal came after it was known.
        email: Option<String>,
    },
}

impl DomainEvent for LoginAttemptEvent {
    fn event_type(&self) -> String {
        match self {
            LoginAttemptEvent::Started(_) => "login.started",
            LoginAttemptEvent::Succeeded(_) => "login.succeeded",
            LoginAttemptEvent::Failed { .. } => "login.failed",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
