use cqrs_es::test::TestFramework;
use serde_json::json;

use super::*;
use crate::ids::Actor;

type Given = TestFramework<Tenant>;

fn slug() -> TenantSlug {
    TenantSlug::parse("acme").unwrap()
}

fn created() -> TenantEvent {
    TenantEvent::Created {
        slug: slug(),
        display_name: "Acme".into(),
        app_url: "https://app.acme.test/".into(),
        return_origins: vec![],
        actor: Actor::admin("root"),
    }
}

fn okta() -> Connection {
    Connection {
        protocol: "oidc".into(),
        label: "Acme Okta".into(),
        config: json!({"client_id": "abc"}),
    }
}

fn conn_id() -> ConnectionId {
    ConnectionId::parse("okta").unwrap()
}

#[test]
fn a_tenant_is_created_once() {
    let create = TenantCommand::Create {
        slug: slug(),
        display_name: "Acme".into(),
        app_url: "https://app.acme.test/".into(),
        return_origins: vec![],
        actor: Actor::admin("root"),
    };
    Given::with(NoServices)
        .given_no_previous_events()
        .when(create.clone())
        .then_expect_events(vec![created()]);
    Given::with(NoServices)
        .given(vec![created()])
        .when(create)
        .then_expect_error(TenantError::AlreadyExists);
}

#[test]
fn a_new_connection_is_recorded_as_created() {
    let command = TenantCommand::ConfigureConnection {
        connection_id: conn_id(),
        connection: okta(),
        actor: Actor::admin("root"),
    };
    Given::with(NoServices)
        .given(vec![created()])
        .when(command)
        .then_expect_events(vec![TenantEvent::ConnectionConfigured {
            connection_id: conn_id(),
            protocol: "oidc".into(),
            label: "Acme Okta".into(),
            config: json!({"client_id": "abc"}),
            created: true,
            actor: Actor::admin("root"),
        }]);
}

#[test]
fn an_unchanged_connection_writes_nothing() {
    let configured = TenantEvent::ConnectionConfigured {
        connection_id: conn_id(),
        protocol: "oidc".into(),
        label: "Acme Okta".into(),
        config: json!({"client_id": "abc"}),
        created: true,
        actor: Actor::admin("root"),
    };
    Given::with(NoServices)
        .given(vec![created(), configured])
        .when(TenantCommand::ConfigureConnection {
            connection_id: conn_id(),
            connection: okta(),
            actor: Actor::admin("other"),
        })
        .then_expect_events(vec![]);
}

#[test]
fn connections_need_an_existing_tenant() {
    Given::with(NoServices)
        .given_no_previous_events()
        .when(TenantCommand::ConfigureConnection {
            connection_id: conn_id(),
            connection: okta(),
            actor: Actor::admin("root"),
        })
        .then_expect_error(TenantError::NotFound);
}

#[test]
fn removing_an_unknown_connection_fails() {
    Given::with(NoServices)
        .given(vec![created()])
        .when(TenantCommand::RemoveConnection {
            connection_id: conn_id(),
            actor: Actor::admin("root"),
        })
        .then_expect_error(TenantError::ConnectionNotFound);
}

#[test]
fn a_warning_is_recorded_once_per_configuration() {
    let configured = TenantEvent::ConnectionConfigured {
        connection_id: conn_id(),
        protocol: "saml".into(),
        label: "Acme".into(),
        config: json!({}),
        created: true,
        actor: Actor::admin("root"),
    };
    let warned = TenantEvent::ConnectionWarningRaised {
        connection_id: conn_id(),
        warning: "certificate expires soon".into(),
        actor: Actor::system(),
    };
    let raise = TenantCommand::RaiseConnectionWarning {
        connection_id: conn_id(),
        warning: "certificate expires soon".into(),
        actor: Actor::system(),
    };
    Given::with(NoServices)
        .given(vec![created(), configured.clone()])
        .when(raise.clone())
        .then_expect_events(vec![warned.clone()]);
    Given::with(NoServices)
        .given(vec![created(), configured.clone(), warned.clone()])
        .when(raise.clone())
        .then_expect_events(vec![]);
    // A new configuration clears what was on record.
    Given::with(NoServices)
        .given(vec![created(), configured.clone(), warned, configured])
        .when(raise)
        .then_expect_events(vec![TenantEvent::ConnectionWarningRaised {
            connection_id: conn_id(),
            warning: "certificate expires soon".into(),
            actor: Actor::system(),
        }]);
}

fn email_code_policy() -> LoginPolicy {
    LoginPolicy {
        standard_methods: [StandardMethod::EmailCode].into(),
        guests_allowed: true,
        enforce_sso: true,
        link_verified_email: false,
    }
}

#[test]
fn a_new_login_policy_is_recorded() {
    Given::with(NoServices)
        .given(vec![created()])
        .when(TenantCommand::SetLoginPolicy {
            policy: email_code_policy(),
            actor: Actor::admin("root"),
        })
        .then_expect_events(vec![TenantEvent::LoginPolicyChanged {
            policy: email_code_policy(),
            actor: Actor::admin("root"),
        }]);
}

#[test]
fn an_unchanged_login_policy_writes_nothing() {
    let changed = TenantEvent::LoginPolicyChanged {
        policy: email_code_policy(),
        actor: Actor::admin("root"),
    };
    Given::with(NoServices)
        .given(vec![created(), changed])
        .when(TenantCommand::SetLoginPolicy {
            policy: email_code_policy(),
            actor: Actor::admin("other"),
        })
        .then_expect_events(vec![]);
    // The default policy is in force before any is set: setting it again changes nothing.
    Given::with(NoServices)
        .given(vec![created()])
        .when(TenantCommand::SetLoginPolicy {
            policy: LoginPolicy::default(),
            actor: Actor::admin("root"),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_login_policy_needs_an_existing_tenant() {
    Given::with(NoServices)
        .given_no_previous_events()
        .when(TenantCommand::SetLoginPolicy {
            policy: email_code_policy(),
            actor: Actor::admin("root"),
        })
        .then_expect_error(TenantError::NotFound);
}

#[test]
fn the_default_policy_offers_no_standard_method() {
    let policy = LoginPolicy::default();
    assert!(!policy.allows(StandardMethod::EmailCode));
    assert!(policy.guests_allowed);
    assert!(policy.enforce_sso);
    let json = serde_json::to_value(email_code_policy()).unwrap();
    assert_eq!(json["standard_methods"], json!(["email_code"]));
}

#[test]
fn a_policy_recorded_before_linking_existed_reads_as_not_linking() {
    let old = serde_json::json!({
        "standard_methods": ["email_code"], "guests_allowed": true, "enforce_sso": true
    });
    let policy: LoginPolicy = serde_json::from_value(old).unwrap();
    assert!(!policy.link_verified_email);
    assert_eq!(policy.standard_methods.len(), 1);
}
