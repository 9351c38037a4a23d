//! The `Session` aggregate: a signed-in browser.
//!
//! Aggregate id: SHA-256 of the session cookie value, so the cookie itself is never stored and
//! any node can find the session by loading one aggregate.

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::NoServices;
use crate::ids::{AttemptId, ConnectionId, TenantSlug, UserId};

/// State folded from a session's events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Details once started.
    pub started: Option<SessionStarted>,
    /// Set once ended.
    pub ended: bool,
}

impl Session {
    /// The session's details if it is live at `now`.
    pub fn live(&self, now: DateTime<Utc>) -> Option<&SessionStarted> {
        match &self.started {
            Some(started) if !self.ended && started.expires_at > now => Some(started),
            _ => None,
        }
    }
}

/// `session.started`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionStarted {
    /// Tenant.
    pub tenant: TenantSlug,
    /// Signed-in user.
    pub user_id: UserId,
    /// Attempt that created the session.
    pub attempt_id: AttemptId,
    /// Connection used.
    pub connection_id: ConnectionId,
    /// Email at sign-in.
    pub email: String,
    /// Name at sign-in.
    pub name: Option<String>,
    /// End of validity.
    pub expires_at: DateTime<Utc>,
}

/// Commands on a session.
#[derive(Debug, Clone)]
pub enum SessionCommand {
    /// Starts the session.
    Start(SessionStarted),
    /// Ends the session (logout). Ending an ended session writes nothing.
    End {
        /// Why: `logout`.
        reason: String,
    },
}

/// A session command that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The id is already in use.
    #[error("session already exists")]
    AlreadyStarted,
    /// No such session.
    #[error("no such session")]
    NotFound,
}

/// Facts about a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SessionEvent {
    /// `session.started`
    Started(SessionStarted),
    /// `session.ended`
    Ended {
        /// Tenant of the session.
        tenant: TenantSlug,
        /// User of the session.
        user_id: UserId,
        /// Why: `logout`.
        reason: String,
    },
}

impl DomainEvent for SessionEvent {
    fn event_type(&self) -> String {
        match self {
            SessionEvent::Started(_) => "session.started",
            SessionEvent::Ended { .. } => "session.ended",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl Aggregate for Session {
    const TYPE: &'static str = "session";
    type Command = SessionCommand;
    type Event = SessionEvent;
    type Error = SessionError;
    type Services = NoServices;

    async fn handle(
        &mut self,
        command: SessionCommand,
        _services: &NoServices,
        sink: &EventSink<Self>,
    ) -> Result<(), SessionError> {
        match command {
            SessionCommand::Start(started) => {
                if self.started.is_some() {
                    return Err(SessionError::AlreadyStarted);
                }
                sink.write(SessionEvent::Started(started), self).await;
            }
            SessionCommand::End { reason } => {
                let Some(started) = &self.started else {
                    return Err(SessionError::NotFound);
                };
                if !self.ended {
                    let event = SessionEvent::Ended {
                        tenant: started.tenant.clone(),
                        user_id: started.user_id,
                        reason,
                    };
                    sink.write(event, self).await;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: SessionEvent) {
        match event {
            SessionEvent::Started(started) => self.started = Some(started),
            SessionEvent::Ended { .. } => self.ended = true,
        }
    }
}
