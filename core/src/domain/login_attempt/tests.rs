use cqrs_es::test::TestFramework;

use super::*;
use crate::ids::UserId;

type Given = TestFramework<LoginAttempt>;

fn started() -> LoginStarted {
    LoginStarted {
        tenant: TenantSlug::parse("acme").unwrap(),
        connection_id: Some(ConnectionId::parse("okta").unwrap()),
        protocol: Some("oidc".into()),
        method: "sso".into(),
        client_ip: Some("192.0.2.1".into()),
        user_agent: None,
    }
}

fn succeeded() -> LoginSucceeded {
    LoginSucceeded {
        issuer: "https://idp.test".into(),
        subject: "s1".into(),
        email: "a@acme.test".into(),
        name: None,
        user_id: UserId::new(),
    }
}

fn failed() -> LoginAttemptEvent {
    LoginAttemptEvent::Failed {
        reason: "state_mismatch".into(),
        detail: "x".into(),
        email: None,
    }
}

#[test]
fn a_started_attempt_can_succeed() {
    let ok = succeeded();
    Given::with(NoServices)
        .given(vec![LoginAttemptEvent::Started(started())])
        .when(LoginAttemptCommand::Succeed(ok.clone()))
        .then_expect_events(vec![LoginAttemptEvent::Succeeded(ok)]);
}

#[test]
fn an_attempt_has_one_outcome() {
    Given::with(NoServices)
        .given(vec![LoginAttemptEvent::Started(started()), failed()])
        .when(LoginAttemptCommand::Succeed(succeeded()))
        .then_expect_error(LoginAttemptError::AlreadyEnded);
}

#[test]
fn an_outcome_needs_a_start() {
    Given::with(NoServices)
        .given_no_previous_events()
        .when(LoginAttemptCommand::Fail {
            reason: "expired".into(),
            detail: String::new(),
            email: None,
        })
        .then_expect_error(LoginAttemptError::NotStarted);
}

#[test]
fn an_attempt_starts_once() {
    Given::with(NoServices)
        .given(vec![LoginAttemptEvent::Started(started())])
        .when(LoginAttemptCommand::Start(started()))
        .then_expect_error(LoginAttemptError::AlreadyStarted);
}
