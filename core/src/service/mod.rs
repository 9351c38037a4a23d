//! Application services: what the API asks of Gatehouse, in domain terms. No HTTP here; the
//! `api` crate turns these results into pages, redirects and problem documents.

mod admin;
mod config_history;
mod config_secrets;
mod credentials;
mod diagnostics;
mod discovery;
mod email_login;
mod form_post;
mod linking;
mod login;
mod login_policy;
mod mail;
mod return_to;
mod standard_login;

use std::sync::Arc;

use gatehouse_plugin_sdk::CallbackBinding;

pub use admin::{AdminError, ConnectionInput, ConnectionView, NewTenant, TenantView};
pub use config_history::{
    ChangeAuthor, ChangeKind, ConfigChange, ConfigDiff, ConfigHistoryError, ConfigSnapshot,
};
pub use credentials::{
    audit_read_filters, CredentialAdmin, CredentialAdminError, CredentialView, Grant,
    IssuedCredential, Issuer, NewCredential,
};
pub use diagnostics::AttemptDiagnostics;
pub use discovery::{Discovery, DOMAIN_NOT_FOUND};
pub use email_login::{
    email_code_connection, email_reasons, lifetime_words, normalize_email, EmailCodeError,
    EmailCodeRequestError, EmailCodeSent, EmailCodeSettings, EMAIL_CODE,
};
pub use login::{
    ClientInfo, LoginFailure, LoginRedirect, LoginSuccess, RefusalClass, SessionInfo, SsoRedirect,
};
pub use standard_login::{
    is_reserved_connection_id, standard_connection, standard_label, standard_method_of,
    StandardProviderConfig, GOOGLE_DISCOVERY_URL,
};
pub use login_policy::LoginPolicyInput;
pub use mail::{MailDelivery, MailError, Mailer, SmtpSettings, SmtpTls};

use crate::crypto::SecretKey;
use crate::plugins::PluginHost;
use crate::projections::{AuditReader, Projections};
use crate::store::{
    Credentials, Db, Diagnostics, EmailCodes, Executor, Flows, Handoffs, RateLimits, Replays,
};

/// Deployment settings the services need.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Public base URL, without a trailing slash (`https://sso.example.com`).
    pub public_url: String,
    /// How long a login may take at the identity provider, in seconds.
    pub flow_ttl_secs: i64,
    /// Session lifetime in seconds.
    pub session_ttl_secs: i64,
}

/// Observes login outcomes (protocol, `succeeded`/`failed`, reason), for metrics.
pub type LoginObserver = Arc<dyn Fn(&str, &str, &str) + Send + Sync>;

/// Gatehouse's services over one store and one set of plugins.
pub struct Gatehouse {
    db: Db,
    executor: Executor<Projections>,
    flows: Flows,
    replays: Replays,
    handoffs: Handoffs,
    diagnostics: Diagnostics,
    credentials: Credentials,
    audit: AuditReader,
    plugins: PluginHost,
    key: SecretKey,
    settings: Settings,
    login_observer: Option<LoginObserver>,
    email_codes: EmailCodes,
    rate_limits: RateLimits,
    email_login: Option<email_login::EmailLogin>,
    standard: standard_login::StandardProviders,
}

impl Gatehouse {
    /// Assembles the services.
    pub fn new(db: Db, plugins: PluginHost, key: SecretKey, settings: Settings) -> Self {
        Gatehouse {
            executor: Executor::new(db.clone(), Projections::new(db.clone())),
            flows: Flows::new(db.clone()),
            replays: Replays::new(db.clone()),
            handoffs: Handoffs::new(db.clone()),
            diagnostics: Diagnostics::new(db.clone()),
            credentials: Credentials::new(db.clone()),
            email_codes: EmailCodes::new(db.clone()),
            rate_limits: RateLimits::new(db.clone()),
            email_login: None,
            standard: standard_login::StandardProviders::new(),
            audit: AuditReader::new(db.clone()),
            db,
            plugins,
            key,
            settings,
            login_observer: None,
        }
    }

    /// Reports every login outcome to `observer`.
    pub fn observe_logins(&mut self, observer: LoginObserver) {
        self.login_observer = Some(observer);
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Admin API credentials.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The read models' projections (run a [`crate::projections::Projector`] over them).
    pub fn projections(&self) -> &Projections {
        self.executor.projections()
    }

    /// The audit log reader.
    pub fn audit(&self) -> &AuditReader {
        &self.audit
    }

    /// The plugin host.
    pub fn plugins(&self) -> &PluginHost {
        &self.plugins
    }

    /// Deployment settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Where the identity provider sends the browser back: `/callback` (GET) or `/acs`
    /// (form POST), as the connection's plugin declares.
    pub fn callback_uri(&self, tenant: &str, connection_id: &str, binding: CallbackBinding) -> String {
        let endpoint = match binding {
            CallbackBinding::Query => "callback",
            CallbackBinding::FormPost => "acs",
        };
        format!("{}/{tenant}/sso/{connection_id}/{endpoint}", self.settings.public_url)
    }

    /// Gatehouse's identifier for a connection (the SAML SP entity ID): the URL of its
    /// metadata document.
    pub fn sp_entity_id(&self, tenant: &str, connection_id: &str) -> String {
        format!("{}/{tenant}/sso/{connection_id}/metadata", self.settings.public_url)
    }

    /// How the plugin for `protocol` receives answers (unknown plugins: query).
    pub fn binding_of(&self, protocol: &str) -> CallbackBinding {
        self.plugins.plugin(protocol).map(|p| p.callback).unwrap_or_default()
    }
}
