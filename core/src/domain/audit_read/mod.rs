//! The `AuditRead` aggregate: one read of an audit log (a listing, a verification, an export,
//! a summary, a diagnostics lookup) by an admin API credential.
//!
//! Aggregate id: a fresh UUID per read, so recording never contends. Its one event lands in the
//! access log of the tenant whose audit log was read (see `projections::credentials`), kept
//! apart from the tenant's activity log so that reading a log does not change what is read.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::NoServices;

/// `audit.read`: who read which log, through which route and with which filters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditReadRecorded {
    /// The log read: a tenant slug, or `_platform` for the platform log.
    pub scope: String,
    /// The credential that read it (also the event's actor).
    pub credential_id: String,
    /// Method and route pattern, such as `GET /api/v1/tenants/{slug}/audit/events`.
    pub route: String,
    /// The filters as `name=value` pairs joined by `&`, with the value of every filter that
    /// may name a person (email, user, IP address, anything not known to be safe) withheld
    /// as `*`; path parameters other than the slug are included likewise.
    pub filters: String,
}

/// State: whether the read was recorded.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditRead {
    /// Set once recorded.
    pub recorded: bool,
}

/// The one command.
#[derive(Debug, Clone)]
pub enum AuditReadCommand {
    /// Records the read.
    Record(AuditReadRecorded),
}

/// A read recorded twice under one id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditReadError {
    /// The id is taken.
    #[error("this read is already recorded")]
    AlreadyRecorded,
}

/// Facts about a read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AuditReadEvent {
    /// `audit.read`
    Recorded(AuditReadRecorded),
}

impl DomainEvent for AuditReadEvent {
    fn event_type(&self) -> String {
        "audit.read".to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl Aggregate for AuditRead {
    const TYPE: &'static str = "audit_read";
    type Command = AuditReadCommand;
    type Event = AuditReadEvent;
    type Error = AuditReadError;
    type Services = NoServices;

    async fn handle(
        &mut self,
        command: AuditReadCommand,
        _services: &NoServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AuditReadError> {
        let AuditReadCommand::Record(read) = command;
        if self.recorded {
            return Err(AuditReadError::AlreadyRecorded);
        }
        sink.write(AuditReadEvent::Recorded(read), self)
            .await;
        Ok(())
    }

    fn apply(&mut self, event: AuditReadEvent) {
        let AuditReadEvent::Recorded(_) = event;
        self.recorded = true;
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;

    fn read() -> AuditReadRecorded {
        AuditReadRecorded {
            scope: "acme".into(),
            credential_id: "c1".into(),
            route: "GET /api/v1/tenants/{slug}/audit/events".into(),
            filters: "type=login.&email=*".into(),
        }
    }

    #[test]
    fn a_read_is_recorded_once() {
        TestFramework::<AuditRead>::with(NoServices)
            .given_no_previous_events()
            .when(AuditReadCommand::Record(read()))
            .then_expect_events(vec![AuditReadEvent::Recorded(read())]);
        TestFramework::<AuditRead>::with(NoServices)
            .given(vec![AuditReadEvent::Recorded(read())])
            .when(AuditReadCommand::Record(read()))
            .then_expect_error(AuditReadError::AlreadyRecorded);
    }
}
