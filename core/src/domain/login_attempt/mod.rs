//! The `LoginAttempt` aggregate: one per attempt, from start to its single outcome.
//!
//! Aggregate id: the attempt id. The outcome is written once; an attempt that has ended
//! refuses every later outcome, so a replayed callback can never turn a failure into a success.
//!
//! An email-code attempt also records its steps: the code requested, sent, each wrong code, and
//! the lock after [`MAX_CODE_TRIES`] wrong codes (a failure with reason `code_locked`).

mod events;
#[cfg(test)]
mod tests;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

pub use events::{LoginAttemptEvent, LoginStarted, LoginSucceeded};

use super::NoServices;
use crate::ids::{ConnectionId, TenantSlug};

/// Wrong codes an email-code attempt survives; the last one locks it.
pub const MAX_CODE_TRIES: u32 = 5;

/// Reason code of the failure recorded when the last try is used up.
pub const CODE_LOCKED: &str = "code_locked";

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
    /// Email a code was requested for (email-code attempts).
    #[serde(default)]
    pub code_email: Option<String>,
    /// True once the code's message was handed on.
    #[serde(default)]
    pub code_sent: bool,
    /// Wrong codes entered so far.
    #[serde(default)]
    pub wrong_codes: u32,
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
    /// Records that a person asked for an email code for `email`.
    RequestCode {
        /// The address.
        email: String,
    },
    /// Records that the code's message was handed on (`smtp` or `outbox`).
    RecordCodeSent {
        /// How it went out.
        delivery: String,
    },
    /// Records a wrong code; the last allowed one also fails the attempt as `code_locked`.
    RejectCode,
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
    /// A code step out of order: a second request, a send before a request, a wrong code or
    /// an email-code success before the code was sent.
    #[error("the email code step is out of order")]
    CodeOutOfOrder,
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
                // An email-code attempt signs in only with a code that was sent.
                if self.code_email.is_some() && !self.code_sent {
                    return Err(LoginAttemptError::CodeOutOfOrder);
                }
                sink.write(LoginAttemptEvent::Succeeded(succeeded), self).await;
            }
            (LoginAttemptCommand::RequestCode { email }, Outcome::Pending) => {
                if self.code_email.is_some() {
                    return Err(LoginAttemptError::CodeOutOfOrder);
                }
                sink.write(LoginAttemptEvent::CodeRequested { email }, self).await;
            }
            (LoginAttemptCommand::RecordCodeSent { delivery }, Outcome::Pending) => {
                let Some(email) = self.code_email.clone().filter(|_| !self.code_sent) else {
                    return Err(LoginAttemptError::CodeOutOfOrder);
                };
                sink.write(LoginAttemptEvent::CodeSent { email, delivery }, self).await;
            }
            (LoginAttemptCommand::RejectCode, Outcome::Pending) => {
                if !self.code_sent {
                    return Err(LoginAttemptError::CodeOutOfOrder);
                }
                let tries_left = MAX_CODE_TRIES.saturating_sub(self.wrong_codes + 1);
                let email = self.code_email.clone();
                sink.write(LoginAttemptEvent::CodeWrong { tries_left, email }, self).await;
                if tries_left == 0 {
                    let event = LoginAttemptEvent::Failed {
                        reason: CODE_LOCKED.to_owned(),
                        detail: format!("{MAX_CODE_TRIES} wrong codes were entered"),
                        email: self.code_email.clone(),
                    };
                    sink.write(event, self).await;
                }
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
            LoginAttemptEvent::CodeRequested { email } => self.code_email = Some(email),
            LoginAttemptEvent::CodeSent { .. } => self.code_sent = true,
            LoginAttemptEvent::CodeWrong { .. } => self.wrong_codes += 1,
        }
    }
}
