use chrono::Duration;
use cqrs_es::test::TestFramework;

use super::*;

fn auditor_of(tenant: &str) -> CredentialCreated {
    CredentialCreated {
        role: CredentialRole::Auditor,
        tenant: Some(TenantSlug::parse(tenant).unwrap()),
        label: "SIEM".into(),
        expires_at: None,
        actor: Actor::admin("root"),
    }
}

#[test]
fn a_credential_is_created_once() {
    let created = auditor_of("acme");
    TestFramework::<Credential>::with(NoServices)
        .given_no_previous_events()
        .when(CredentialCommand::Create(created.clone()))
        .then_expect_events(vec![CredentialEvent::Created(created.clone())]);
    TestFramework::<Credential>::with(NoServices)
        .given(vec![CredentialEvent::Created(created.clone())])
        .when(CredentialCommand::Create(created))
        .then_expect_error(CredentialError::AlreadyExists);
}

#[test]
fn a_tenant_role_needs_a_tenant_and_a_platform_admin_has_none() {
    let mut created = auditor_of("acme");
    created.tenant = None;
    TestFramework::<Credential>::with(NoServices)
        .given_no_previous_events()
        .when(CredentialCommand::Create(created))
        .then_expect_error(CredentialError::ScopeMismatch);
    let mut created = auditor_of("acme");
    created.role = CredentialRole::PlatformAdmin;
    TestFramework::<Credential>::with(NoServices)
        .given_no_previous_events()
        .when(CredentialCommand::Create(created))
        .then_expect_error(CredentialError::ScopeMismatch);
}

#[test]
fn revocation_is_recorded_once_with_the_scope() {
    let created = auditor_of("acme");
    let at = Utc::now();
    let revoked = CredentialEvent::Revoked {
        role: CredentialRole::Auditor,
        tenant: created.tenant.clone(),
        actor: Actor::system(),
        at,
    };
    TestFramework::<Credential>::with(NoServices)
        .given(vec![CredentialEvent::Created(created.clone())])
        .when(CredentialCommand::Revoke {
            actor: Actor::system(),
            at,
        })
        .then_expect_events(vec![revoked.clone()]);
    TestFramework::<Credential>::with(NoServices)
        .given(vec![CredentialEvent::Created(created), revoked])
        .when(CredentialCommand::Revoke {
            actor: Actor::system(),
            at,
        })
        .then_expect_events(vec![]);
}

#[test]
fn an_unknown_credential_cannot_be_revoked() {
    TestFramework::<Credential>::with(NoServices)
        .given_no_previous_events()
        .when(CredentialCommand::Revoke {
            actor: Actor::system(),
            at: Utc::now(),
        })
        .then_expect_error(CredentialError::NotFound);
}

#[test]
fn revoked_and_expired_credentials_are_not_usable() {
    let now = Utc::now();
    let mut credential = Credential::default();
    assert!(credential.usable(now).is_none(), "never created");
    let mut created = auditor_of("acme");
    created.expires_at = Some(now + Duration::minutes(5));
    credential.apply(CredentialEvent::Created(created.clone()));
    assert!(credential.usable(now).is_some());
    assert!(
        credential
            .usable(now + Duration::minutes(5))
            .is_none(),
        "expired at its expiry time"
    );
    credential.apply(CredentialEvent::Revoked {
        role: created.role,
        tenant: created.tenant,
        actor: Actor::system(),
        at: now,
    });
    assert!(credential.usable(now).is_none(), "revoked");
}
