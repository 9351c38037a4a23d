use chrono::Duration;
use cqrs_es::test::TestFramework;

use super::*;

fn started(expires_at: DateTime<Utc>) -> SessionStarted {
    SessionStarted {
        tenant: TenantSlug::parse("acme").unwrap(),
        user_id: UserId::new(),
        attempt_id: AttemptId::new(),
        connection_id: ConnectionId::parse("okta").unwrap(),
        email: "a@acme.test".into(),
        name: None,
        expires_at,
    }
}

#[test]
fn logout_ends_a_session_once() {
    let details = started(Utc::now() + Duration::hours(1));
    let end = SessionEvent::Ended {
        tenant: details.tenant.clone(),
        user_id: details.user_id,
        reason: "logout".into(),
    };
    let start = SessionEvent::Started(details);
    TestFramework::<Session>::with(NoServices)
        .given(vec![start.clone()])
        .when(SessionCommand::End {
            reason: "logout".into(),
        })
        .then_expect_events(vec![end.clone()]);
    TestFramework::<Session>::with(NoServices)
        .given(vec![start, end])
        .when(SessionCommand::End {
            reason: "logout".into(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn expired_and_ended_sessions_are_not_live() {
    let now = Utc::now();
    let mut session = Session::default();
    session.apply(SessionEvent::Started(started(now + Duration::minutes(5))));
    assert!(session.live(now).is_some());
    assert!(session.live(now + Duration::minutes(6)).is_none());
    session.apply(SessionEvent::Ended {
        tenant: TenantSlug::parse("acme").unwrap(),
        user_id: UserId::new(),
        reason: "logout".into(),
    });
    assert!(session.live(now).is_none());
}

#[test]
fn a_session_id_is_used_once() {
    let start = SessionEvent::Started(started(Utc::now()));
    TestFramework::<Session>::with(NoServices)
        .given(vec![start])
        .when(SessionCommand::Start(started(Utc::now())))
        .then_expect_error(SessionError::AlreadyStarted);
}
