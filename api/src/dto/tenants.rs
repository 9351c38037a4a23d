use std::collections::BTreeMap;

use gatehouse_core::service::{ConnectionView, TenantView};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A tenant to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// URL name: 2–63 lowercase letters, digits and hyphens; not a reserved route name.
    #[schema(example = "acme")]
    pub slug: String,
    /// Company name shown on sign-in pages.
    #[schema(example = "Acme Corp")]
    pub display_name: String,
    /// Where people land after signing in (absolute http(s) URL).
    #[schema(example = "https://app.acme.example/home")]
    pub app_url: String,
    /// Extra exact origins a `return_to` may point at.
    #[serde(default)]
    pub return_origins: Vec<String>,
}

/// A tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct Tenant {
    /// URL name.
    pub slug: String,
    /// Company name.
    pub display_name: String,
    /// Landing URL after sign-in.
    pub app_url: String,
    /// Extra origins allowed for `return_to`.
    pub return_origins: Vec<String>,
    /// SSO connections.
    pub connections: Vec<Connection>,
}

impl From<TenantView> for Tenant {
    fn from(view: TenantView) -> Self {
        Tenant {
            slug: view.slug,
            display_name: view.display_name,
            app_url: view.app_url,
            return_origins: view.return_origins,
            connections: view.connections.into_iter().map(Connection::from).collect(),
        }
    }
}

/// A connection to create or replace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutConnection {
    /// Protocol plugin id.
    #[schema(example = "oidc")]
    pub protocol: String,
    /// Button label ("Sign in with {label}").
    #[schema(example = "Acme Okta SSO")]
    pub label: String,
    /// Protocol-specific config. For `oidc`: `discovery_url`, `client_id`, optional
    /// `client_secret` (omit it on update to keep the stored one), `allowed_domains`, and
    /// optional `allow_subdomains`, `require_verified_email`, `id_token_signing_algs`, `scopes`.
    #[schema(value_type = Object, example = json!({
        "discovery_url": "https://acme.okta.com/.well-known/openid-configuration",
        "client_id": "0oa1example",
        "client_secret": "example-secret",
        "allowed_domains": ["acme.example"]
    }))]
    pub config: Value,
}

/// A connection. Secrets are never returned: each secret field is replaced by
/// `<field>_set: true|false`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Connection {
    /// Connection id.
    pub id: String,
    /// Protocol plugin id.
    pub protocol: String,
    /// Button label.
    pub label: String,
    /// Config without secrets.
    #[schema(value_type = Object)]
    pub config: Value,
    /// What the identity provider's administrator needs from Gatehouse: `redirect_url`
    /// and, for OIDC, `scopes`; for SAML `acs_url`, `sp_entity_id` and `metadata_url`.
    pub setup: BTreeMap<String, String>,
    /// Things to act on soon, such as an IdP signing certificate that expires within 30 days.
    /// Each new warning is also recorded as a `tenant.connection.warning_raised` audit event.
    pub warnings: Vec<String>,
}

impl From<ConnectionView> for Connection {
    fn from(view: ConnectionView) -> Self {
        Connection {
            id: view.id,
            protocol: view.protocol,
            label: view.label,
            config: view.config,
            setup: view.setup,
            warnings: view.warnings,
        }
    }
}

/// A tenant's login policy: what its sign-in page offers besides SSO. `PUT` replaces it whole.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginPolicy {
    /// Standard methods on the tenant's standard-login page (`/{slug}?login=standard`):
    /// `email_code`, `google`, `facebook`; a method this deployment does not offer (Google or
    /// Facebook without a deployment client, the email code switched off) is refused.
    #[schema(example = json!(["email_code"]))]
    pub standard_methods: Vec<String>,
    /// Whether guests (addresses outside every SSO connection's allowed domains) may sign in.
    pub guests_allowed: bool,
    /// Whether an address in an SSO connection's allowed domains is refused standard login and
    /// sent to that connection (recorded as `login.failed` with reason `sso_enforced`).
    pub enforce_sso: bool,
    /// Whether a sign-in by another method with the same verified email (an email code, then
    /// Google or SSO) joins the account that first proved that email in this tenant. Off (the
    /// default, also when omitted): every method's identity gets its own account. Unverified
    /// emails never link.
    #[serde(default)]
    pub link_verified_email: bool,
}

impl From<gatehouse_core::domain::tenant::LoginPolicy> for LoginPolicy {
    fn from(policy: gatehouse_core::domain::tenant::LoginPolicy) -> Self {
        LoginPolicy {
            standard_methods: policy
                .standard_methods
                .iter()
                .map(|m| m.as_str().to_owned())
                .collect(),
            guests_allowed: policy.guests_allowed,
            enforce_sso: policy.enforce_sso,
            link_verified_email: policy.link_verified_email,
        }
    }
}
