//! The `LoginAttempt` aggregate: one per attempt, from start to its single outcome.
//!
//! Aggregate id: the attempt id. The outcome is written once; an attempt that has ended
//! refuses every later outcome, so a replayed callback can never turn a failure into a success.

mod events;
#[cfg(test)]
mod tests;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate};
use serde::{Deserialize, Serialize};

pub use events::{LoginAttemptEvent, LoginStarted, LoginSucceeded};

use super::NoServices;
use crate::ids::{ConnectionId, TenantSlug};

/// What happened to an attempt so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Not started.
    #[default]
    None,
    /// Started, waiting for the identity provider.
    Pending,
    /// Signed in.
    Succeeded,
    /// Refused.
    Failed,
}

/// State folded from an attempt's events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoginAttempt {
    /// Where the attempt stands.
    pub outcome: Outcome,
    /// Tenant of the attempt.
    pub tenant: Option<TenantSlug>,
    /// Connection used, if any.
    pub connection_id: Option<ConnectionId>,
    /// Protocol of that connection.
    pub protocol: Option<String>,
}

/// Commands on an attempt.
#[derive(Debug, Clone)]
pub enum LoginAttemptCommand {
    /// Records the start.
    Start(LoginStarted),
    /// Records a success.
    Succeed(LoginSucceeded),
    /// Records a refusal with a stable reason code and a safe detail.
    Fail {
        /// Stable reason code such as `state_mismatch`.
        reason: String,
        /// Explanation safe for administrators: no tokens, codes or assertions.
        detail: String,
        /// Email the identity provider asserted, when the refusal came after it was known.
        email: Option<String>,
    },
}

/// An attempt command that breaks the attempt's life cycle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginAttemptError {
    /// Start on an attempt that already started.
    #[error("the attempt has already started")]
    AlreadyStarted,
    /// An outcome for an attempt that never started.
    #[error("the attempt has not started")]
    NotStarted,
    /// A second outcome.
    #[error("the attempt has already ended")]
    AlreadyEnded,
}

impl Aggregate for LoginAttempt {
    const TYPE: &'static str = "login_attempt";
    type Command = LoginAttemptCommand;
    type Event = LoginAttemptEvent;
    type Error = LoginAttemptError;
    type Services = NoServices;

    async fn handle(
        &mut self,
        command: LoginAttemptCommand,
        _services: &NoServices,
        sink: &EventSink<Self>,
    ) -> Result<(), LoginAttemptError> {
        match (command, self.outcome) {
            (LoginAttemptCommand::Start(started), Outcome::None) => {
                sink.write(LoginAttemptEvent::Started(started), self).await;
            }
            (LoginAttemptCommand::Start(_), _) => return Err(LoginAttemptError::AlreadyStarted),
            (_, Outcome::None) => return Err(LoginAttemptError::NotStarted),
            (_, Outcome::Succeeded | Outcome::Failed) => {
                return Err(LoginAttemptError::AlreadyEnded)
            }
            (LoginAttemptCommand::Succeed(succeeded), Outcome::Pending) => {
                sink.write(LoginAttemptEvent::Succeeded(succeeded), self).await;
            }
            (LoginAttemptCommand::Fail { reason, detail, email }, Outcome::Pending) => {
                let event = LoginAttemptEvent::Failed {
                    reason,
                    detail,
                    email,
                };
                sink.write(event, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: LoginAttemptEvent) {
        match event {
            LoginAttemptEvent::Started(started) => {
                self.outcome = Outcome::Pending;
                self.tenant = Some(started.tenant);
                self.connection_id = started.connection_id;
                self.protocol = started.protocol;
            }
            LoginAttemptEvent::Succeeded(_) => self.outcome = Outcome::Succeeded,
            LoginAttemptEvent::Failed { .. } => self.outcome = Outcome::Failed,
        }
    }
}
