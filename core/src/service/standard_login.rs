//! Google and Facebook as standard login methods: one client per deployment, served by the
//! OIDC and OAuth 2.0 plugins like any SSO connection, but owned by no tenant.
//!
//! - **Config and secrets** live in memory only, from the deployment's configuration: never in
//!   an event, a table or a log line (the `Debug` form leaves the config out).
//! - **Connection id**: `standard-google` / `standard-facebook` within each tenant. Identities,
//!   users, sessions and attempts are recorded under it, per tenant, like any connection's.
//!   Administrators cannot give a tenant connection one of these ids.
//! - **Callback URL**: one per deployment, `{public_url}/login/{google|facebook}/callback`, so
//!   the provider needs one redirect URL, not one per tenant. Which tenant a callback belongs
//!   to comes from its `state`, a flow issued to this browser for exactly one tenant.
//! - **Flow state** is the ordinary login flow (state, nonce, PKCE verifier, browser binding,
//!   used once), kept in the database like an SSO login's.
//! - **Who may sign in**: a verified email is required (`email_missing`,
//!   `email_not_verified`); the tenant must offer the method (`method_disabled`); an address in
//!   one of the tenant's SSO domains is refused and sent to SSO when `enforce_sso` is on
//!   (`sso_enforced`); any other address is a guest (`guests_disabled` when guests are off).

use std::collections::BTreeMap;

use gatehouse_plugin_sdk::{
    ExternalIdentity, Method, PluginError, ValidateConfigRequest, ValidatedConfig,
};
use serde_json::{json, Value};

use super::email_login::email_reasons::{GUESTS_DISABLED, METHOD_DISABLED, SSO_ENFORCED};
use super::email_login::normalize_email;
use super::login::{
    reasons, sso_connection_for, truncate, ClientInfo, LoginFailure, LoginSuccess, SsoRedirect,
};
use super::Gatehouse;
use crate::domain::tenant::{StandardMethod, Tenant};
use crate::ids::{AttemptId, ConnectionId, TenantSlug};
use crate::plugins::CallContext;

/// Google's discovery document, the default for the Google method.
pub const GOOGLE_DISCOVERY_URL: &str =
    "https://accounts.google.com/.well-known/openid-configuration";

/// The plugins require `allowed_domains`; the host does not apply a standard method's domains
/// (every address outside the tenant's SSO domains is a guest), so a reserved name (RFC 2606)
/// fills the field.
const UNUSED_DOMAIN: &str = "standard-login.invalid";

/// How this deployment reaches Google or Facebook, as configured.
#[derive(Clone)]
pub enum StandardProviderConfig {
    /// Google through the OIDC plugin.
    Google {
        /// OAuth client id.
        client_id: String,
        /// OAuth client secret.
        client_secret: String,
        /// Discovery document ([`GOOGLE_DISCOVERY_URL`] unless overridden).
        discovery_url: String,
    },
    /// Facebook through the OAuth 2.0 plugin's `facebook` preset.
    Facebook {
        /// App id.
        client_id: String,
        /// App secret.
        client_secret: String,
        /// Overrides of the preset's endpoints (tests point them at a local provider).
        authorization_url: Option<String>,
        /// Token endpoint override.
        token_url: Option<String>,
        /// User-info endpoint override.
        userinfo_url: Option<String>,
    },
}

impl std::fmt::Debug for StandardProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret; the client id is not secret but has no use in a log either.
        f.write_str(match self {
            StandardProviderConfig::Google { .. } => "Google { .. }",
            StandardProviderConfig::Facebook { .. } => "Facebook { .. }",
        })
    }
}

impl StandardProviderConfig {
    /// The method this provider serves.
    pub fn method(&self) -> StandardMethod {
        match self {
            StandardProviderConfig::Google { .. } => StandardMethod::Google,
            StandardProviderConfig::Facebook { .. } => StandardMethod::Facebook,
        }
    }

    fn protocol(&self) -> &'static str {
        match self {
            StandardProviderConfig::Google { .. } => "oidc",
            StandardProviderConfig::Facebook { .. } => "oauth2",
        }
    }

    /// The plugin connection config, secret in plain text (kept in memory only).
    fn plugin_config(&self) -> Value {
        match self {
            StandardProviderConfig::Google {
                client_id,
                client_secret,
                discovery_url,
            } => json!({
                "discovery_url": discovery_url,
                "client_id": client_id,
                "client_secret": client_secret,
                "allowed_domains": [UNUSED_DOMAIN],
                "require_verified_email": true,
            }),
            StandardProviderConfig::Facebook {
                client_id,
                client_secret,
                authorization_url,
                token_url,
                userinfo_url,
            } => {
                let mut config = json!({
                    "preset": "facebook",
                    "client_id": client_id,
                    "client_secret": client_secret,
                    "allowed_domains": [UNUSED_DOMAIN],
                    "require_verified_email": true,
                    // Facebook returns confirmed emails only, so an absent flag counts as
                    // verified (the preset's default); an answer that does say `false` is
                    // believed.
                    "mapping": {
                        "subject": "/id",
                        "email": "/email",
                        "name": "/name",
                        "email_verified": "/email_verified",
                        "email_verified_default": true,
                    },
                });
                for (key, value) in [
                    ("authorization_url", authorization_url),
                    ("token_url", token_url),
                    ("userinfo_url", userinfo_url),
                ] {
                    if let Some(url) = value {
                        config[key] = Value::String(url.clone());
                    }
                }
                config
            }
        }
    }
}

/// A standard provider ready to use: its plugin and its validated config.
pub(super) struct StandardProvider {
    pub(super) protocol: &'static str,
    pub(super) config: Value,
}

impl std::fmt::Debug for StandardProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandardProvider")
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

/// The deployment's standard providers by method.
pub(super) type StandardProviders = BTreeMap<StandardMethod, StandardProvider>;

/// The connection id a standard method's logins are recorded under in every tenant; `None`
/// for the email code, which has its own.
pub fn standard_connection(method: StandardMethod) -> Option<ConnectionId> {
    let id = match method {
        StandardMethod::Google => "standard-google",
        StandardMethod::Facebook => "standard-facebook",
        StandardMethod::EmailCode => return None,
    };
    ConnectionId::parse(id).ok()
}

/// The standard method whose logins are recorded under `connection_id`, if any.
pub fn standard_method_of(connection_id: &ConnectionId) -> Option<StandardMethod> {
    [StandardMethod::Google, StandardMethod::Facebook]
        .into_iter()
        .find(|m| standard_connection(*m).as_ref() == Some(connection_id))
}

/// True for connection ids the service records its own methods under, which a tenant's
/// connection may not take.
pub fn is_reserved_connection_id(connection_id: &str) -> bool {
    connection_id.starts_with("standard-")
        || matches!(connection_id, "email-code" | super::linking::VERIFIED_EMAIL)
}

/// The button label of a standard method.
pub fn standard_label(method: StandardMethod) -> &'static str {
    match method {
        StandardMethod::Google => "Google",
        StandardMethod::Facebook => "Facebook",
        StandardMethod::EmailCode => "an email code",
    }
}

impl Gatehouse {
    /// Offers Google or Facebook to this deployment's tenants. The config is checked against
    /// the plugin's schema and validated by the plugin now, so a mistake stops the start-up
    /// instead of the first login. The secret stays in memory.
    pub async fn enable_standard_provider(
        &mut self,
        provider: StandardProviderConfig,
    ) -> Result<(), String> {
        let method = provider.method();
        let protocol = provider.protocol();
        if self.plugins.plugin(protocol).is_none() {
            return Err(format!(
                "{} needs the {protocol} plugin, which is not loaded",
                standard_label(method)
            ));
        }
        let config = provider.plugin_config();
        let violations = self
            .plugins
            .check_config(protocol, &config);
        if let Some(violation) = violations.first() {
            return Err(format!(
                "{} configuration: {} {}",
                standard_label(method),
                violation.pointer,
                violation.detail
            ));
        }
        let context = CallContext {
            tenant: String::new(),
            connection_id: standard_connection(method)
                .map(|c| c.to_string())
                .unwrap_or_default(),
        };
        let validated: Result<ValidatedConfig, PluginError> = self
            .plugins
            .call(
                protocol,
                Method::ValidateConfig,
                &ValidateConfigRequest { config },
                &context,
            )
            .await;
        let validated = validated.map_err(|error| {
            format!(
                "{} configuration: {}{}",
                standard_label(method),
                error.field.as_deref().unwrap_or(""),
                if error.detail.is_empty() {
                    String::new()
                } else {
                    format!(" {}", error.detail)
                }
            )
        })?;
        if let Value::Object(map) = &validated.config {
            for (key, value) in map {
                if let (true, Value::String(url)) = (key.ends_with("_url"), value) {
                    self.plugins
                        .check_destination(url)
                        .map_err(|e| {
                            format!(
                                "{} configuration: {key}: {}",
                                standard_label(method),
                                e.detail
                            )
                        })?;
                }
            }
        }
        self.standard.insert(
            method,
            StandardProvider {
                protocol,
                config: validated.config,
            },
        );
        Ok(())
    }

    /// The redirect URL to register at Google or Facebook: one for the whole deployment.
    pub fn standard_callback_uri(&self, method: StandardMethod) -> String {
        format!(
            "{}/login/{}/callback",
            self.settings.public_url,
            method.as_str()
        )
    }

    /// The tenant a deployment-level callback belongs to, from the flow its `state` names.
    /// `None` for a callback without one usable state, or a state this service never issued
    /// for `method`; nothing is recorded then (no tenant to record it for).
    pub async fn standard_callback_tenant(
        &self,
        method: StandardMethod,
        params: &[(String, String)],
    ) -> Option<TenantSlug> {
        let connection_id = standard_connection(method)?;
        let mut states = params
            .iter()
            .filter(|(k, _)| k == "state")
            .map(|(_, v)| v.as_str());
        let state = match (states.next(), states.next()) {
            (Some(state), None) if !state.is_empty() && state.len() <= 512 => state,
            _ => return None,
        };
        let (tenant, flow_connection) = match self.flows.owner(state).await {
            Ok(Some(owner)) => owner,
            Ok(None) => return None,
            Err(error) => {
                tracing::error!(%error, "cannot read login flow");
                return None;
            }
        };
        if flow_connection != connection_id.as_str() {
            return None;
        }
        TenantSlug::parse(&tenant).ok()
    }
}

impl Gatehouse {
    /// The tenant's rules for an identity that Google or Facebook verified: a verified email,
    /// the method on, members held to SSO, guests allowed. Then the account (see
    /// [`super::linking`]) and the session.
    pub(super) async fn finish_standard(
        &self,
        method: StandardMethod,
        (protocol, slug, connection_id, attempt_id): (&str, &TenantSlug, &ConnectionId, AttemptId),
        tenant: &Tenant,
        identity: ExternalIdentity,
        return_to: Option<String>,
        client: &ClientInfo,
    ) -> Result<LoginSuccess, LoginFailure> {
        let Some(asserted) = identity
            .email
            .as_deref()
            .filter(|e| !e.is_empty())
        else {
            let detail = format!("{} did not return an email address", standard_label(method));
            return Err(self
                .fail(attempt_id, reasons::EMAIL_MISSING, &detail, None, client)
                .await);
        };
        let email = match normalize_email(asserted) {
            Ok(email) => email,
            Err(_) => {
                let detail = format!(
                    "{} returned an unusable email address",
                    standard_label(method)
                );
                let shown = Some(truncate(asserted, 320));
                return Err(self
                    .fail(attempt_id, reasons::EMAIL_MALFORMED, &detail, shown, client)
                    .await);
            }
        };
        if !identity.email_verified {
            let detail = format!(
                "{} did not assert the email as verified",
                standard_label(method)
            );
            return Err(self
                .fail(
                    attempt_id,
                    reasons::EMAIL_NOT_VERIFIED,
                    &detail,
                    Some(email),
                    client,
                )
                .await);
        }
        let policy = &tenant.login_policy;
        if !policy.allows(method) {
            let detail = format!("the tenant does not offer {}", standard_label(method));
            return Err(self
                .fail(attempt_id, METHOD_DISABLED, &detail, Some(email), client)
                .await);
        }
        let member_of = sso_connection_for(tenant, &email);
        if let (Some(sso), true) = (&member_of, policy.enforce_sso) {
            let detail = format!("the address belongs to SSO connection {sso}");
            let mut failure = self
                .fail(attempt_id, SSO_ENFORCED, &detail, Some(email), client)
                .await;
            failure.sso = Some(SsoRedirect {
                connection_id: sso.clone(),
                label: tenant
                    .connections
                    .get(sso)
                    .map(|c| c.label.clone())
                    .unwrap_or_default(),
            });
            return Err(failure);
        }
        if member_of.is_none() && !policy.guests_allowed {
            let detail = "the tenant does not let guests sign in";
            return Err(self
                .fail(attempt_id, GUESTS_DISABLED, detail, Some(email), client)
                .await);
        }
        let name = identity
            .name
            .as_deref()
            .map(|n| truncate(n, 200));
        let outcome = self
            .sign_in(
                slug,
                connection_id,
                attempt_id,
                (&identity.issuer, &identity.subject),
                (&email, true),
                name,
                tenant,
                return_to,
                client,
            )
            .await;
        match outcome {
            Ok(success) => {
                self.observe(protocol, "succeeded", "");
                Ok(success)
            }
            Err(error) => {
                tracing::error!(%error, attempt = %attempt_id, "sign-in could not be recorded");
                let detail = "the sign-in could not be recorded";
                Err(self
                    .fail(
                        attempt_id,
                        reasons::INTERNAL_ERROR,
                        detail,
                        Some(email),
                        client,
                    )
                    .await)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_ids_round_trip_and_are_reserved() {
        for method in [StandardMethod::Google, StandardMethod::Facebook] {
            let id = standard_connection(method).expect("an id");
            assert_eq!(standard_method_of(&id), Some(method));
            assert!(is_reserved_connection_id(id.as_str()));
        }
        assert_eq!(standard_connection(StandardMethod::EmailCode), None);
        for id in ["email-code", "verified-email", "standard-github"] {
            assert!(is_reserved_connection_id(id), "{id}");
        }
        for id in ["google", "okta", "standard", "my-standard-google"] {
            assert!(!is_reserved_connection_id(id), "{id}");
            let id = ConnectionId::parse(id).expect("valid");
            assert_eq!(standard_method_of(&id), None);
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let google = StandardProviderConfig::Google {
            client_id: "id-123".into(),
            client_secret: "very-secret".into(),
            discovery_url: GOOGLE_DISCOVERY_URL.into(),
        };
        let facebook = StandardProviderConfig::Facebook {
            client_id: "app-123".into(),
            client_secret: "very-secret".into(),
            authorization_url: None,
            token_url: None,
            userinfo_url: None,
        };
        for provider in [google, facebook] {
            assert!(!format!("{provider:?}").contains("very-secret"));
            let ready = StandardProvider {
                protocol: provider.protocol(),
                config: provider.plugin_config(),
            };
            assert!(!format!("{ready:?}").contains("very-secret"));
            assert_eq!(ready.config["client_secret"], "very-secret");
        }
    }

    #[test]
    fn facebook_endpoints_may_be_overridden_and_emails_must_be_verified() {
        let facebook = StandardProviderConfig::Facebook {
            client_id: "app".into(),
            client_secret: "s".into(),
            authorization_url: Some("https://fb.test/dialog".into()),
            token_url: None,
            userinfo_url: None,
        };
        let config = facebook.plugin_config();
        assert_eq!(config["preset"], "facebook");
        assert_eq!(config["authorization_url"], "https://fb.test/dialog");
        assert!(config.get("token_url").is_none(), "the preset's");
        assert_eq!(config["require_verified_email"], true);
        assert_eq!(config["mapping"]["email_verified"], "/email_verified");
    }
}
