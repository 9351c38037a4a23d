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
    /// Method: `sso` for a tenant connection, `email_code` for the email one-time code.
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
    /// `login.code_requested`: a person asked for an email one-time code.
    CodeRequested {
        /// The address the code is for, as typed (trimmed, domain lowercased).
        email: String,
    },
    /// `login.code_sent`: the message with the code and the link was handed on.
    CodeSent {
        /// The address it went to.
        email: String,
        /// `smtp`, or `outbox` when no SMTP server is configured.
        delivery: String,
    },
    /// `login.code_wrong`: a code was entered that is not the one sent.
    CodeWrong {
        /// Tries left before the code is locked.
        tries_left: u32,
        /// The address the code was sent to.
        #[serde(default)]
        email: Option<String>,
    },
}

impl DomainEvent for LoginAttemptEvent {
    fn event_type(&self) -> String {
        match self {
            LoginAttemptEvent::Started(_) => "login.started",
            LoginAttemptEvent::Succeeded(_) => "login.succeeded",
            LoginAttemptEvent::Failed { .. } => "login.failed",
            LoginAttemptEvent::CodeRequested { .. } => "login.code_requested",
            LoginAttemptEvent::CodeSent { .. } => "login.code_sent",
            LoginAttemptEvent::CodeWrong { .. } => "login.code_wrong",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
