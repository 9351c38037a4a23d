use cqrs_es::test::TestFramework;

use super::*;
use crate::ids::UserId;

fn tenant() -> TenantSlug {
    TenantSlug::parse("acme").unwrap()
}

fn connection() -> ConnectionId {
    ConnectionId::parse("okta").unwrap()
}

fn sign_in(email: &str, name: Option<&str>) -> UserCommand {
    UserCommand::RecordSignIn {
        tenant: tenant(),
        connection_id: connection(),
        subject: "s1".into(),
        email: email.into(),
        name: name.map(Into::into),
    }
}

fn provisioned() -> UserEvent {
    UserEvent::Provisioned {
        tenant: tenant(),
        connection_id: connection(),
        subject: "s1".into(),
        email: "a@acme.test".into(),
        name: Some("A".into()),
    }
}

#[test]
fn first_sign_in_provisions_the_user() {
    TestFramework::<User>::with(NoServices)
        .given_no_previous_events()
        .when(sign_in("a@acme.test", Some("A")))
        .then_expect_events(vec![provisioned()]);
}

#[test]
fn a_repeat_sign_in_writes_nothing() {
    TestFramework::<User>::with(NoServices)
        .given(vec![provisioned()])
        .when(sign_in("a@acme.test", Some("A")))
        .then_expect_events(vec![]);
}

#[test]
fn a_changed_email_updates_the_profile() {
    TestFramework::<User>::with(NoServices)
        .given(vec![provisioned()])
        .when(sign_in("b@acme.test", None))
        .then_expect_events(vec![UserEvent::ProfileUpdated {
            email: "b@acme.test".into(),
            name: Some("A".into()),
        }]);
}

#[test]
fn an_identity_links_once() {
    let first = UserId::new();
    let linked = IdentityEvent::Linked {
        tenant: tenant(),
        connection_id: connection(),
        issuer: "https://idp".into(),
        subject: "s1".into(),
        user_id: first,
    };
    TestFramework::<Identity>::with(NoServices)
        .given(vec![linked])
        .when(IdentityCommand::Link {
            tenant: tenant(),
            connection_id: connection(),
            issuer: "https://idp".into(),
            subject: "s1".into(),
            user_id: UserId::new(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn identity_ids_separate_issuer_and_subject() {
    let a = Identity::aggregate_id(&tenant(), &connection(), "https://idp", "x:y");
    let b = Identity::aggregate_id(&tenant(), &connection(), "https://idp:x", "y");
    assert_ne!(a, b);
}
