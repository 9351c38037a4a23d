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

fn email_started() -> LoginStarted {
    LoginStarted {
        connection_id: None,
        protocol: Some("email_code".into()),
        method: "email_code".into(),
        ..started()
    }
}

fn requested() -> LoginAttemptEvent {
    LoginAttemptEvent::CodeRequested {
        email: "guest@example.test".into(),
    }
}

fn sent() -> LoginAttemptEvent {
    LoginAttemptEvent::CodeSent {
        email: "guest@example.test".into(),
        delivery: "smtp".into(),
    }
}

#[test]
fn a_code_is_requested_once_per_attempt() {
    Given::with(NoServices)
        .given(vec![LoginAttemptEvent::Started(email_started())])
        .when(LoginAttemptCommand::RequestCode {
            email: "guest@example.test".into(),
        })
        .then_expect_events(vec![requested()]);
    Given::with(NoServices)
        .given(vec![LoginAttemptEvent::Started(email_started()), requested()])
        .when(LoginAttemptCommand::RequestCode {
            email: "other@example.test".into(),
        })
        .then_expect_error(LoginAttemptError::CodeOutOfOrder);
}

#[test]
fn a_code_is_sent_to_the_requested_address() {
    Given::with(NoServices)
        .given(vec![LoginAttemptEvent::Started(email_started()), requested()])
        .when(LoginAttemptCommand::RecordCodeSent {
            delivery: "smtp".into(),
        })
        .then_expect_events(vec![sent()]);
}

#[test]
fn nothing_is_sent_before_a_request() {
    Given::with(NoServices)
        .given(vec![LoginAttemptEvent::Started(email_started())])
        .when(LoginAttemptCommand::RecordCodeSent {
            delivery: "smtp".into(),
        })
        .then_expect_error(LoginAttemptError::CodeOutOfOrder);
}

#[test]
fn a_wrong_code_counts_down_the_tries() {
    Given::with(NoServices)
        .given(vec![LoginAttemptEvent::Started(email_started()), requested(), sent()])
        .when(LoginAttemptCommand::RejectCode)
        .then_expect_events(vec![LoginAttemptEvent::CodeWrong {
            tries_left: MAX_CODE_TRIES - 1,
            email: Some("guest@example.test".into()),
        }]);
}

#[test]
fn the_fifth_wrong_code_locks_the_attempt() {
    let mut given = vec![LoginAttemptEvent::Started(email_started()), requested(), sent()];
    for left in (1..MAX_CODE_TRIES).rev() {
        given.push(LoginAttemptEvent::CodeWrong {
            tries_left: left,
            email: None,
        });
    }
    Given::with(NoServices)
        .given(given)
        .when(LoginAttemptCommand::RejectCode)
        .then_expect_events(vec![
            LoginAttemptEvent::CodeWrong {
                tries_left: 0,
                email: Some("guest@example.test".into()),
            },
            LoginAttemptEvent::Failed {
                reason: CODE_LOCKED.into(),
                detail: "5 wrong codes were entered".into(),
                email: Some("guest@example.test".into()),
            },
        ]);
}

#[test]
fn a_locked_attempt_takes_no_more_codes() {
    let locked = LoginAttemptEvent::Failed {
        reason: CODE_LOCKED.into(),
        detail: String::new(),
        email: None,
    };
    Given::with(NoServices)
        .given(vec![LoginAttemptEvent::Started(email_started()), requested(), sent(), locked])
        .when(LoginAttemptCommand::Succeed(succeeded()))
        .then_expect_error(LoginAttemptError::AlreadyEnded);
}

#[test]
fn an_email_code_attempt_signs_in_only_after_the_code_was_sent() {
    Given::with(NoServices)
        .given(vec![LoginAttemptEvent::Started(email_started()), requested()])
        .when(LoginAttemptCommand::Succeed(succeeded()))
        .then_expect_error(LoginAttemptError::CodeOutOfOrder);
    let ok = succeeded();
    Given::with(NoServices)
        .given(vec![LoginAttemptEvent::Started(email_started()), requested(), sent()])
        .when(LoginAttemptCommand::Succeed(ok.clone()))
        .then_expect_events(vec![LoginAttemptEvent::Succeeded(ok)]);
}

#[test]
fn a_wrong_code_needs_a_sent_code() {
    Given::with(NoServices)
        .given(vec![LoginAttemptEvent::Started(email_started()), requested()])
        .when(LoginAttemptCommand::RejectCode)
        .then_expect_error(LoginAttemptError::CodeOutOfOrder);
}
