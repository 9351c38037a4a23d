//! Tenant administration: create tenants, configure and remove connections.

use std::collections::BTreeMap;

use gatehouse_plugin_sdk::{
    CallbackBinding, InspectReport, InspectRequest, Method, PluginError, ValidateConfigRequest,
    ValidatedConfig,
};
use serde_json::Value;
use url::Url;

use super::{config_secrets, Gatehouse};
use crate::domain::tenant::{Connection, Tenant, TenantCommand, TenantError};
use crate::ids::{Actor, ConnectionId, TenantSlug};
use crate::plugins::CallContext;
use crate::store::{CommandError, Metadata, StoreError};

/// Why an admin request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A field is invalid; `field` is a JSON pointer into the request body.
    #[error("{field}: {detail}")]
    Invalid {
        /// JSON pointer of the offending field.
        field: String,
        /// What is wrong.
        detail: String,
    },
    /// The config breaks its plugin's schema: (JSON pointer into the request body, what is
    /// wrong) for each violation, at least one.
    #[error("the config does not match the plugin's schema")]
    Schema(Vec<(String, String)>),
    /// The plugin could not answer (it panicked, timed out, answered malformed output or is
    /// busy): nothing was recorded, and the request may be retried.
    #[error("plugin unavailable: {0}")]
    PluginUnavailable(String),
    /// The tenant or connection does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The tenant already exists.
    #[error("{0}")]
    Conflict(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something that is Gatehouse's fault (a broken plugin, an unreadable sealed secret).
    #[error("{0}")]
    Internal(String),
}

fn invalid(field: &str, detail: impl Into<String>) -> AdminError {
    AdminError::Invalid {
        field: field.to_owned(),
        detail: detail.into(),
    }
}

/// A tenant to create.
#[derive(Clone, Debug)]
pub struct NewTenant {
    /// URL name.
    pub slug: String,
    /// Company name.
    pub display_name: String,
    /// Landing URL after sign-in.
    pub app_url: String,
    /// Extra exact origins allowed for `return_to`.
    pub return_origins: Vec<String>,
}

/// A tenant as the admin API shows it.
#[derive(Clone, Debug)]
pub struct TenantView {
    /// URL name.
    pub slug: String,
    /// Company name.
    pub display_name: String,
    /// Landing URL.
    pub app_url: String,
    /// Extra origins for `return_to`.
    pub return_origins: Vec<String>,
    /// Connections.
    pub connections: Vec<ConnectionView>,
}

/// A connection to configure.
#[derive(Clone, Debug)]
pub struct ConnectionInput {
    /// Plugin protocol id.
    pub protocol: String,
    /// Button label.
    pub label: String,
    /// Plugin config; secret fields in plain text, or omitted to keep the stored secret.
    pub config: Value,
}

/// A connection as the admin API shows it: never a secret.
#[derive(Clone, Debug)]
pub struct ConnectionView {
    /// Connection id.
    pub id: String,
    /// Protocol.
    pub protocol: String,
    /// Label.
    pub label: String,
    /// Config with secrets replaced by `<field>_set` flags.
    pub config: Value,
    /// What the identity provider's administrator needs: redirect URL, scopes, ...
    pub setup: BTreeMap<String, String>,
    /// Things to act on soon, such as an IdP certificate about to expire.
    pub warnings: Vec<String>,
}

impl Gatehouse {
    /// Creates a tenant.
    pub async fn create_tenant(
        &self,
        input: NewTenant,
        actor: Actor,
        request_id: Option<String>,
    ) -> Result<TenantView, AdminError> {
        let slug = TenantSlug::parse(&input.slug).map_err(|e| invalid("/slug", e.to_string()))?;
        let display_name = input.display_name.trim().to_owned();
        if !printable(&display_name, 100) {
            return Err(invalid("/display_name", "must be 1 to 100 printable characters"));
        }
        let app_url = check_app_url(&input.app_url).map_err(|e| invalid("/app_url", e))?;
        let mut return_origins = Vec::new();
        for (index, origin) in input.return_origins.iter().enumerate() {
            let parsed = check_origin(origin)
                .map_err(|e| invalid(&format!("/return_origins/{index}"), e))?;
            return_origins.push(parsed);
        }

        let command = TenantCommand::Create {
            slug: slug.clone(),
            display_name,
            app_url,
            return_origins,
            actor: actor.clone(),
        };
        let metadata = Metadata { actor, request_id };
        let tenant = self
            .executor
            .execute::<Tenant>(slug.as_str(), command, &metadata)
            .await
            .map_err(|e| match e {
                CommandError::Rejected(TenantError::AlreadyExists) => {
                    AdminError::Conflict("a tenant with this slug already exists".into())
                }
                CommandError::Rejected(other) => AdminError::Internal(other.to_string()),
                CommandError::Store(store) => AdminError::Store(store),
            })?;
        Ok(self.tenant_view(&tenant))
    }

    /// A tenant, read from its aggregate.
    pub async fn tenant(&self, slug: &str) -> Result<TenantView, AdminError> {
        let tenant = self.load_tenant(slug).await?;
        Ok(self.tenant_view(&tenant))
    }

    /// Adds or replaces a connection after its plugin validated the config. Secret fields are
    /// sealed before the event is written; an omitted secret keeps the stored one.
    pub async fn configure_connection(
        &self,
        slug: &str,
        connection_id: &str,
        input: ConnectionInput,
        actor: Actor,
        request_id: Option<String>,
    ) -> Result<ConnectionView, AdminError> {
        let tenant = self.load_tenant(slug).await?;
        let connection_id = ConnectionId::parse(connection_id)
            .map_err(|e| invalid("/connection_id", e.to_string()))?;
        // Standard methods (email code, Google, Facebook) and email claims are recorded under
        // these ids in every tenant; a connection of the same id would share their identities.
        if super::is_reserved_connection_id(connection_id.as_str()) && !tenant.connections.contains_key(&connection_id) {
            return Err(invalid(
                "/connection_id",
                "is reserved for the service's own sign-in methods (email-code, verified-email, standard-*)",
            ));
        }
        let Some(plugin) = self.plugins.plugin(&input.protocol) else {
            let known: Vec<&str> = self.plugins.plugins().map(|p| p.protocol.as_str()).collect();
            return Err(invalid(
                "/protocol",
                format!("no plugin serves this protocol; loaded: {}", known.join(", ")),
            ));
        };
        let secret_fields = plugin.secret_fields.clone();
        let label = input.label.trim().to_owned();
        if !printable(&label, 80) {
            return Err(invalid("/label", "must be 1 to 80 printable characters"));
        }
        let Value::Object(mut members) = input.config else {
            return Err(invalid("/config", "must be a JSON object"));
        };
        // The config travels inside events, which are read back with serde_json's recursion
        // limit (128 levels including the event envelope): a deeper config would make the
        // tenant unreadable for good. No protocol needs more than a few levels.
        if depth(&Value::Object(members.clone())) > MAX_CONFIG_DEPTH {
            return Err(invalid(
                "/config",
                format!("is nested more than {MAX_CONFIG_DEPTH} levels deep"),
            ));
        }
        // A config read with GET carries `<secret>_set: true` in place of each secret; sent
        // back unchanged, that flag means "keep the stored secret".
        for pointer in &secret_fields {
            let name = pointer.trim_start_matches('/');
            let flag = format!("{name}_set");
            if matches!(members.get(&flag), Some(Value::Bool(_))) && !members.contains_key(name) {
                members.remove(&flag);
            }
        }
        let mut config = Value::Object(members);
        let existing = tenant
            .connections
            .get(&connection_id)
            .filter(|existing| existing.protocol == input.protocol);
        // The schema sees the config as sent, before anything else: a secret the stored
        // connection has may be left out even where the schema requires it.
        let violations: Vec<(String, String)> = self
            .plugins
            .check_config(&input.protocol, &config)
            .into_iter()
            .filter(|v| {
                let kept_secret = existing.is_some()
                    && v.detail == "is required"
                    && secret_fields.contains(&v.pointer);
                !kept_secret
            })
            .map(|v| (format!("/config{}", v.pointer), v.detail))
            .collect();
        if !violations.is_empty() {
            return Err(AdminError::Schema(violations));
        }
        let context = CallContext {
            tenant: slug.to_owned(),
            connection_id: connection_id.to_string(),
        };
        if let Some(existing) = existing {
            self.keep_omitted_secrets(&mut config, existing, &secret_fields, &input.protocol, &context)
                .await?;
        }
        let request = ValidateConfigRequest { config };
        let validated: ValidatedConfig = self
            .plugins
            .call(&input.protocol, Method::ValidateConfig, &request, &context)
            .await
            .map_err(config_error)?;
        let mut config = validated.config;
        check_urls(self, &config)?;
        check_allowed_domains(&config)?;
        config_secrets::seal(&self.key, &mut config, &secret_fields, slug, connection_id.as_str());

        let connection = Connection {
            protocol: input.protocol,
            label,
            config,
        };
        let command = TenantCommand::ConfigureConnection {
            connection_id: connection_id.clone(),
            connection: connection.clone(),
            actor: actor.clone(),
        };
        let metadata = Metadata { actor, request_id };
        self.executor
            .execute::<Tenant>(slug, command, &metadata)
            .await
            .map_err(tenant_error)?;
        self.raise_warnings(slug, &connection_id, &validated.warnings, &metadata)
            .await?;
        let mut view = self.connection_view(slug, &connection_id, &connection, &validated.warnings);
        add_plugin_setup(&mut view.setup, validated.setup);
        Ok(view)
    }

    /// One connection, read from the tenant aggregate.
    pub async fn connection(&self, slug: &str, id: &str) -> Result<ConnectionView, AdminError> {
        let tenant = self.load_tenant(slug).await?;
        let id = ConnectionId::parse(id).map_err(|_| AdminError::NotFound("connection"))?;
        let connection = tenant
            .connections
            .get(&id)
            .ok_or(AdminError::NotFound("connection"))?;
        // Warnings depend on the clock (a certificate nearing its end), so they are worked out
        // afresh and any new one is put on record.
        let (warnings, setup) = self.current_warnings(slug, &id, connection).await;
        let metadata = Metadata {
            actor: Actor::system(),
            request_id: None,
        };
        self.raise_warnings(slug, &id, &warnings, &metadata).await?;
        let mut view = self.connection_view(slug, &id, connection, &warnings);
        add_plugin_setup(&mut view.setup, setup);
        Ok(view)
    }

    /// The warnings about a stored connection as of now, and the plugin's setup notes.
    async fn current_warnings(
        &self,
        slug: &str,
        id: &ConnectionId,
        connection: &Connection,
    ) -> (Vec<String>, BTreeMap<String, String>) {
        let Ok(slug_id) = TenantSlug::parse(slug) else {
            return (Vec::new(), BTreeMap::new());
        };
        let Ok(config) = self.open_config(&slug_id, id, connection) else {
            return (
                vec!["the connection's secret cannot be opened with the configured key".into()],
                BTreeMap::new(),
            );
        };
        let context = CallContext {
            tenant: slug.to_owned(),
            connection_id: id.to_string(),
        };
        let request = ValidateConfigRequest { config };
        let validated: Result<ValidatedConfig, PluginError> = self
            .plugins
            .call(&connection.protocol, Method::ValidateConfig, &request, &context)
            .await;
        let (mut warnings, setup) = match validated {
            Ok(validated) => (validated.warnings, validated.setup),
            Err(error) => {
                return (
                    vec![format!("the stored configuration no longer validates: {}", error.detail)],
                    BTreeMap::new(),
                )
            }
        };
        if !self
            .plugins
            .has_capability(&connection.protocol, gatehouse_plugin_sdk::capability::INSPECT_CONNECTION)
        {
            return (warnings, setup);
        }
        let inspect = InspectRequest {
            tenant: slug.to_owned(),
            connection_id: id.to_string(),
            config: request.config,
        };
        let report: Result<InspectReport, PluginError> = self
            .plugins
            .call(&connection.protocol, Method::InspectConnection, &inspect, &context)
            .await;
        match report {
            Ok(report) => warnings.extend(report.warnings),
            Err(error) => warnings.push(format!("the connection could not be inspected: {}", error.detail)),
        }
        (warnings, setup)
    }

    async fn raise_warnings(
        &self,
        slug: &str,
        id: &ConnectionId,
        warnings: &[String],
        metadata: &Metadata,
    ) -> Result<(), AdminError> {
        for warning in warnings {
            let command = TenantCommand::RaiseConnectionWarning {
                connection_id: id.clone(),
                warning: warning.clone(),
                actor: metadata.actor.clone(),
            };
            self.executor
                .execute::<Tenant>(slug, command, metadata)
                .await
                .map_err(tenant_error)?;
        }
        Ok(())
    }

    /// Removes a connection.
    pub async fn remove_connection(
        &self,
        slug: &str,
        id: &str,
        actor: Actor,
        request_id: Option<String>,
    ) -> Result<(), AdminError> {
        self.load_tenant(slug).await?;
        let connection_id = ConnectionId::parse(id).map_err(|_| AdminError::NotFound("connection"))?;
        let command = TenantCommand::RemoveConnection {
            connection_id,
            actor: actor.clone(),
        };
        let metadata = Metadata { actor, request_id };
        self.executor
            .execute::<Tenant>(slug, command, &metadata)
            .await
            .map_err(tenant_error)?;
        Ok(())
    }

    pub(super) async fn load_tenant(&self, slug: &str) -> Result<Tenant, AdminError> {
        if TenantSlug::parse(slug).is_err() {
            return Err(AdminError::NotFound("tenant"));
        }
        let tenant: Tenant = self.executor.load(slug).await?;
        if !tenant.exists() {
            return Err(AdminError::NotFound("tenant"));
        }
        Ok(tenant)
    }

    /// Puts the stored secrets back into a config that omits them, as long as the connection
    /// keeps talking to the same identity provider as the same client. The comparison is made
    /// on the plugin's normalised form of the new config (an admin may paste metadata where
    /// the stored config holds the URLs it yielded), falling back to the config as sent.
    async fn keep_omitted_secrets(
        &self,
        config: &mut Value,
        existing: &Connection,
        secret_fields: &[String],
        protocol: &str,
        context: &CallContext,
    ) -> Result<(), AdminError> {
        let mut previous = existing.config.clone();
        config_secrets::open(&self.key, &mut previous, secret_fields, &context.tenant, &context.connection_id)
            .map_err(|e| AdminError::Internal(format!("stored secret unreadable: {e}")))?;
        let omitted: Vec<&String> = secret_fields
            .iter()
            .filter(|p| config.pointer(p).is_none() && previous.pointer(p).is_some_and(|v| !v.is_null()))
            .collect();
        if omitted.is_empty() {
            return Ok(());
        }
        // Validation is local (no network), so the merged config can be normalised safely
        // before deciding whether the secrets may stay.
        let mut merged = config.clone();
        for pointer in &omitted {
            let (Some(old), Some(field), Value::Object(map)) = (
                previous.pointer(pointer),
                pointer.strip_prefix('/').filter(|f| !f.contains('/')),
                &mut merged,
            ) else {
                continue;
            };
            map.insert(field.to_owned(), old.clone());
        }
        let request = ValidateConfigRequest {
            config: merged.clone(),
        };
        let normalised: Value = match self
            .plugins
            .call::<_, ValidatedConfig>(protocol, Method::ValidateConfig, &request, context)
            .await
        {
            Ok(validated) => validated.config,
            Err(_) => merged.clone(),
        };
        let peer_unchanged = match &previous {
            Value::Object(map) => map
                .keys()
                .filter(|k| k.ends_with("_url") || *k == "client_id" || *k == "idp_entity_id")
                .all(|k| previous.get(k) == normalised.get(k)),
            _ => true,
        };
        if !peer_unchanged {
            return Err(invalid(
                &format!("/config{}", omitted[0]),
                "the identity provider or client changed: send the secret again, or null for none",
            ));
        }
        *config = merged;
        Ok(())
    }

    fn tenant_view(&self, tenant: &Tenant) -> TenantView {
        let slug = tenant.slug.as_ref().map(ToString::to_string).unwrap_or_default();
        let connections = tenant
            .connections
            .iter()
            .map(|(id, connection)| {
                let warnings = tenant.warnings.get(id).cloned().unwrap_or_default();
                self.connection_view(&slug, id, connection, &warnings)
            })
            .collect();
        TenantView {
            display_name: tenant.display_name.clone(),
            app_url: tenant.app_url.clone(),
            return_origins: tenant.return_origins.clone(),
            connections,
            slug,
        }
    }

    fn connection_view(
        &self,
        slug: &str,
        id: &ConnectionId,
        connection: &Connection,
        warnings: &[String],
    ) -> ConnectionView {
        let secret_fields = self
            .plugins
            .plugin(&connection.protocol)
            .map(|p| p.secret_fields.clone())
            .unwrap_or_default();
        let mut setup = BTreeMap::new();
        match self.binding_of(&connection.protocol) {
            CallbackBinding::Query => {
                let redirect = self.callback_uri(slug, id.as_str(), CallbackBinding::Query);
                setup.insert("redirect_url".to_owned(), redirect);
            }
            CallbackBinding::FormPost => {
                let acs = self.callback_uri(slug, id.as_str(), CallbackBinding::FormPost);
                let entity_id = self.sp_entity_id(slug, id.as_str());
                setup.insert("acs_url".to_owned(), acs);
                setup.insert("metadata_url".to_owned(), entity_id.clone());
                setup.insert("sp_entity_id".to_owned(), entity_id);
            }
        }
        if connection.protocol == "oidc" {
            setup.insert("scopes".to_owned(), "openid profile email".to_owned());
        }
        ConnectionView {
            id: id.to_string(),
            protocol: connection.protocol.clone(),
            label: connection.label.clone(),
            config: config_secrets::redact(&connection.config, &secret_fields),
            setup,
            warnings: warnings.to_vec(),
        }
    }
}

fn tenant_error(error: CommandError<TenantError>) -> AdminError {
    match error {
        CommandError::Rejected(TenantError::NotFound) => AdminError::NotFound("tenant"),
        CommandError::Rejected(TenantError::ConnectionNotFound) => AdminError::NotFound("connection"),
        CommandError::Rejected(other) => AdminError::Conflict(other.to_string()),
        CommandError::Store(store) => AdminError::Store(store),
    }
}

fn config_error(error: PluginError) -> AdminError {
    use gatehouse_plugin_sdk::reason;
    match error.field {
        Some(field) if field.is_empty() || field.starts_with('/') => {
            invalid(&format!("/config{field}"), error.detail)
        }
        // A panic, a time-out, malformed output or a busy plugin: the config may be fine.
        _ if error.code == reason::PLUGIN_PANIC || error.code == reason::PLUGIN_FAILURE => {
            AdminError::PluginUnavailable(format!("{}: {}", error.code, error.detail))
        }
        // Any other refusal of a config is about the config.
        _ => invalid("/config", error.detail),
    }
}

/// Deepest config accepted (objects and arrays).
const MAX_CONFIG_DEPTH: usize = 32;

/// Nesting depth of a JSON value, without recursion (the value may be hostile).
fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((value, level)) = stack.pop() {
        match value {
            Value::Object(map) => {
                deepest = deepest.max(level);
                stack.extend(map.values().map(|v| (v, level + 1)));
            }
            Value::Array(list) => {
                deepest = deepest.max(level);
                stack.extend(list.iter().map(|v| (v, level + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// Adds a plugin's setup notes to the host's, never replacing the host's own (the redirect
/// URL and the SAML endpoints are the host's to say).
fn add_plugin_setup(setup: &mut BTreeMap<String, String>, plugin: BTreeMap<String, String>) {
    for (key, value) in plugin {
        setup.entry(key).or_insert(value);
    }
}

/// Refuses configured URLs whose host is a literal address the network policy forbids, so
/// the mistake shows at configuration time rather than at the first login.
fn check_urls(gatehouse: &Gatehouse, config: &Value) -> Result<(), AdminError> {
    let Value::Object(map) = config else {
        return Ok(());
    };
    for (key, value) in map {
        if let (true, Value::String(url)) = (key.ends_with("_url"), value) {
            gatehouse
                .plugins
                .check_destination(url)
                .map_err(|e| invalid(&format!("/config/{key}"), e.detail))?;
        }
    }
    Ok(())
}

fn check_app_url(text: &str) -> Result<String, &'static str> {
    let url = Url::parse(text).map_err(|_| "must be an absolute URL")?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err("must be an http or https URL");
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err("must not contain credentials or a fragment");
    }
    if url.host_str().is_none() {
        return Err("must have a host");
    }
    Ok(url.to_string())
}

fn check_origin(text: &str) -> Result<String, &'static str> {
    let url = Url::parse(text).map_err(|_| "must be an origin such as https://app.example.com")?;
    let origin = url.origin().ascii_serialization();
    if !matches!(url.scheme(), "https" | "http") || origin.trim_end_matches('/') != text.trim_end_matches('/') {
        return Err("must be an origin (scheme, host and optional port) only");
    }
    Ok(origin)
}

/// True for 1..=max characters with no control or bidirectional-override characters (which
/// could make a name display as something else).
fn printable(text: &str, max: usize) -> bool {
    let bidi = |c: char| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}');
    !text.is_empty()
        && text.chars().count() <= max
        && !text.chars().any(|c| c.is_control() || bidi(c))
}

/// Every SSO connection limits sign-in to email domains; a bare top-level domain would let
/// anyone in.
fn check_allowed_domains(config: &Value) -> Result<(), AdminError> {
    let Some(domains) = config.get("allowed_domains") else {
        return Err(invalid("/config/allowed_domains", "list the email domains allowed to sign in"));
    };
    let Some(domains) = domains.as_array().filter(|d| !d.is_empty()) else {
        return Err(invalid("/config/allowed_domains", "must be a non-empty list of domains"));
    };
    for (index, domain) in domains.iter().enumerate() {
        let normalized = domain.as_str().and_then(crate::email::normalize_domain);
        if !normalized.is_some_and(|d| d.contains('.')) {
            return Err(invalid(
                &format!("/config/allowed_domains/{index}"),
                "must be a registered domain name such as example.com, not a top-level domain",
            ));
        }
    }
    Ok(())
}
