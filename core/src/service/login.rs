//! The browser login flow: start at the identity provider, finish from its callback, and the
//! session that follows. Every attempt is a `LoginAttempt` with exactly one outcome.

use gatehouse_plugin_sdk::{
    reason, BeginLoginRequest, BeginLoginResponse, CallbackBinding, ExternalIdentity,
    FinishLoginRequest, Method, PluginError,
};
use serde_json::Value;

use super::email_login::email_reasons::METHOD_DISABLED;
use super::standard_login::{standard_label, standard_method_of};
use super::{config_secrets, return_to, Gatehouse};
use crate::crypto::{random_token, sha256_hex};
use crate::domain::login_attempt::{LoginAttempt, LoginAttemptCommand, LoginStarted, LoginSucceeded};
use crate::domain::session::{Session, SessionCommand, SessionStarted};
use crate::domain::tenant::{Connection, StandardMethod, Tenant};
use crate::domain::user::{User, UserCommand};
use crate::email::{check_domain, normalize_domain, EmailError};
use crate::ids::{Actor, AttemptId, ConnectionId, TenantSlug, UserId};
use crate::plugins::CallContext;
use crate::store::{ConsumeError, Metadata, NewFlow, StoreError};

/// Reason codes the host itself records (plugins add theirs, see the SDK's `reason`).
pub mod reasons {
    /// The callback carried no `state`.
    pub const STATE_MISSING: &str = "state_missing";
    /// Unknown `state`, or one issued for another tenant, connection or browser.
    pub const STATE_MISMATCH: &str = "state_mismatch";
    /// A `state` that was already used.
    pub const STATE_REUSED: &str = "state_reused";
    /// The login took longer than the flow lifetime.
    pub const EXPIRED: &str = "expired";
    /// The provider asserted no email.
    pub const EMAIL_MISSING: &str = "email_missing";
    /// The email's domain is not allowed for the connection.
    pub const EMAIL_DOMAIN_NOT_ALLOWED: &str = "email_domain_not_allowed";
    /// The provider asserted an address that is not one (standard methods).
    pub const EMAIL_MALFORMED: &str = "email_malformed";
    /// The provider did not assert the email as verified.
    pub const EMAIL_NOT_VERIFIED: &str = "email_not_verified";
    /// The connection was removed or cannot be used.
    pub const CONNECTION_UNAVAILABLE: &str = "connection_unavailable";
    /// Gatehouse failed (storage, sealed secret).
    pub const INTERNAL_ERROR: &str = "internal_error";
    /// An answer nobody asked for, at a connection that does not accept those.
    pub const UNSOLICITED: &str = "unsolicited_response";
    /// An answer (SAML assertion) that was already used.
    pub const ASSERTION_REPLAYED: &str = "assertion_replayed";
}

/// Request facts recorded on an attempt.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    /// Client IP address.
    pub ip: Option<String>,
    /// User agent, as sent (truncated before storing).
    pub user_agent: Option<String>,
    /// Request id for log correlation.
    pub request_id: Option<String>,
}

/// A started login: send the browser to `url` and set the binding cookie.
#[derive(Debug)]
pub struct LoginRedirect {
    /// Identity provider URL.
    pub url: String,
    /// Value of the browser binding cookie for this flow.
    pub binding: String,
    /// The attempt.
    pub attempt_id: AttemptId,
}

/// A finished login: set the session cookie and send the browser to `redirect_to`.
#[derive(Debug)]
pub struct LoginSuccess {
    /// Session cookie value (shown to nobody else, stored only as a hash).
    pub session_token: String,
    /// Where to send the browser.
    pub redirect_to: String,
    /// The attempt.
    pub attempt_id: AttemptId,
    /// The signed-in user.
    pub user_id: UserId,
    /// Session lifetime in seconds.
    pub max_age_secs: i64,
}

/// Who is to blame for a refused login, which decides how the page answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalClass {
    /// The request was malformed, forged, replayed or expired.
    BadRequest,
    /// The identity was fine but the tenant's policy refuses it.
    Forbidden,
    /// The identity provider or the network failed.
    Upstream,
    /// Gatehouse failed.
    Internal,
}

/// A refused login, recorded on its attempt.
#[derive(Clone, Debug)]
pub struct LoginFailure {
    /// The attempt to quote to support; `None` when no tenant matched.
    pub attempt_id: Option<AttemptId>,
    /// Stable reason code.
    pub reason: String,
    /// Safe detail.
    pub detail: String,
    /// Blame class.
    pub class: RefusalClass,
    /// Where to send the person instead (`sso_enforced`): the tenant's connection for the
    /// address's domain.
    pub sso: Option<SsoRedirect>,
}

/// The SSO connection a refused standard login sends the person to.
#[derive(Clone, Debug)]
pub struct SsoRedirect {
    /// Connection id.
    pub connection_id: ConnectionId,
    /// Its button label.
    pub label: String,
}

/// A live session.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    /// Tenant.
    pub tenant: String,
    /// User.
    pub user_id: UserId,
    /// Connection used.
    pub connection_id: String,
    /// Email at sign-in.
    pub email: String,
    /// Name at sign-in.
    pub name: Option<String>,
    /// Expiry.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

fn class_of(reason: &str) -> RefusalClass {
    match reason {
        reasons::EMAIL_MISSING
        | reasons::EMAIL_MALFORMED
        | reasons::EMAIL_DOMAIN_NOT_ALLOWED
        | reasons::EMAIL_NOT_VERIFIED
        | super::email_login::email_reasons::METHOD_DISABLED
        | super::email_login::email_reasons::GUESTS_DISABLED
        | super::email_login::email_reasons::SSO_ENFORCED => RefusalClass::Forbidden,
        reasons::STATE_MISSING
        | reasons::STATE_MISMATCH
        | reasons::STATE_REUSED
        | reasons::EXPIRED
        | reasons::UNSOLICITED
        | reasons::ASSERTION_REPLAYED
        | reason::CALLBACK_INVALID
        | reason::IDP_ERROR
        | reason::ID_TOKEN_INVALID
        | reason::NONCE_MISMATCH
        | reason::ISSUER_MISMATCH => RefusalClass::BadRequest,
        reasons::INTERNAL_ERROR | reason::PLUGIN_FAILURE | reason::PLUGIN_PANIC => {
            RefusalClass::Internal
        }
        // Every SAML check refuses a forged, tampered, misdirected or stale answer.
        saml if saml.starts_with("saml_") => RefusalClass::BadRequest,
        _ => RefusalClass::Upstream,
    }
}

/// What a login goes through: a plugin and its config (secrets opened), or why the config
/// cannot be used.
struct LoginTarget {
    protocol: String,
    config: Result<Value, String>,
}

/// Host-level connection settings every SSO protocol shares.
struct DomainPolicy {
    allowed: Vec<String>,
    allow_subdomains: bool,
    require_verified: bool,
}

impl DomainPolicy {
    fn from_config(config: &Value) -> Self {
        let allowed = config
            .get("allowed_domains")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(Value::as_str)
                    .filter_map(normalize_domain)
                    .collect()
            })
            .unwrap_or_default();
        DomainPolicy {
            allowed,
            allow_subdomains: config.get("allow_subdomains") == Some(&Value::Bool(true)),
            require_verified: config.get("require_verified_email") != Some(&Value::Bool(false)),
        }
    }
}

const USER_AGENT_MAX: usize = 512;

/// The tenant's SSO connection whose allowed domains take `email`, if any: the login policy
/// hook that keeps members on SSO. `email` must already be well-formed.
pub(super) fn sso_connection_for(tenant: &Tenant, email: &str) -> Option<ConnectionId> {
    tenant.connections.iter().find_map(|(id, connection)| {
        let policy = DomainPolicy::from_config(&connection.config);
        check_domain(email, &policy.allowed, policy.allow_subdomains)
            .ok()
            .map(|_| id.clone())
    })
}

impl Gatehouse {
    /// Starts a login at `connection_id` (or the tenant's only connection). `binding` is the
    /// browser's existing binding cookie, reused so that parallel tabs keep working.
    pub async fn start_login(
        &self,
        slug: &TenantSlug,
        connection_id: &ConnectionId,
        return_to: Option<&str>,
        binding: Option<&str>,
        client: &ClientInfo,
    ) -> Result<LoginRedirect, LoginFailure> {
        let tenant = self.tenant_for_login(slug).await?;
        let standard = standard_method_of(connection_id);
        let target = self.login_target(&tenant, connection_id);
        let method = standard.map_or("sso", StandardMethod::as_str);
        if standard.is_none() && !tenant.connections.contains_key(connection_id) {
            // A made-up connection id is not an attempt: nothing is recorded under it.
            return Err(LoginFailure {
                attempt_id: None,
                reason: "connection_not_found".to_owned(),
                detail: "no such connection".to_owned(),
                class: RefusalClass::BadRequest,
                sso: None,
            });
        }
        let protocol = target.as_ref().map(|t| t.protocol.clone());
        let attempt_id = self
            .start_attempt_by(slug, Some(connection_id), protocol.as_deref(), method, client)
            .await?;
        if let Some(method) = standard {
            if !tenant.login_policy.allows(method) || target.is_none() {
                let detail = format!("the tenant does not offer {}", standard_label(method));
                let failure = self.fail(attempt_id, METHOD_DISABLED, &detail, None, client).await;
                return Err(failure);
            }
        }
        let Some(target) = target else {
            return Err(self
                .fail(attempt_id, reasons::CONNECTION_UNAVAILABLE, "no such connection", None, client)
                .await);
        };
        let config = match target.config {
            Ok(config) => config,
            Err(detail) => {
                return Err(self.fail(attempt_id, reasons::INTERNAL_ERROR, &detail, None, client).await)
            }
        };

        let state = random_token(32);
        let nonce = random_token(32);
        let pkce_verifier = random_token(32);
        let binding = match binding {
            Some(value) if value.len() >= 40 && value.len() <= 64 => value.to_owned(),
            _ => random_token(32),
        };
        let redirect_uri = match standard {
            Some(method) => self.standard_callback_uri(method),
            None => {
                let callback = self.binding_of(&target.protocol);
                self.callback_uri(slug.as_str(), connection_id.as_str(), callback)
            }
        };
        // An XML NCName (SAML `ID`): a letter or underscore first, then URL-safe characters.
        let request_id = format!("_{}", random_token(20));
        let request = BeginLoginRequest {
            tenant: slug.to_string(),
            connection_id: connection_id.to_string(),
            config,
            redirect_uri: redirect_uri.clone(),
            state: state.clone(),
            nonce: nonce.clone(),
            pkce_verifier: pkce_verifier.clone(),
            request_id: request_id.clone(),
            sp_entity_id: self.sp_entity_id(slug.as_str(), connection_id.as_str()),
        };
        let context = call_context(slug, connection_id);
        let begun: Result<BeginLoginResponse, PluginError> = self
            .plugins
            .call(&target.protocol, Method::BeginLogin, &request, &context)
            .await;
        let begun = match begun {
            Ok(begun) => begun,
            Err(error) => {
                return Err(self.fail(attempt_id, &error.code, &error.detail, None, client).await)
            }
        };

        let return_to = return_to
            .and_then(|target| return_to::check(target, &tenant.app_url, &tenant.return_origins));
        let flow = NewFlow {
            state: &state,
            tenant: slug,
            connection_id,
            attempt_id,
            binding: &binding,
            nonce: &nonce,
            pkce_verifier: &pkce_verifier,
            redirect_uri: &redirect_uri,
            return_to: return_to.as_deref(),
            request_id: &request_id,
            ttl_secs: self.settings.flow_ttl_secs,
        };
        if let Err(error) = self.flows.insert(flow).await {
            tracing::error!(%error, "cannot store login flow");
            let detail = "login state could not be stored";
            return Err(self.fail(attempt_id, reasons::INTERNAL_ERROR, detail, None, client).await);
        }
        tracing::info!(tenant = %slug, connection = %connection_id, attempt = %attempt_id, "login started");
        Ok(LoginRedirect {
            url: begun.redirect_url,
            binding,
            attempt_id,
        })
    }

    /// Finishes a login from the identity provider's callback at `connection_id`.
    pub async fn finish_login(
        &self,
        slug: &TenantSlug,
        connection_id: &ConnectionId,
        params: Vec<(String, String)>,
        binding: Option<&str>,
        client: &ClientInfo,
    ) -> Result<LoginSuccess, LoginFailure> {
        let tenant = self.tenant_for_login(slug).await?;
        let standard = standard_method_of(connection_id);
        let target = self.login_target(&tenant, connection_id);
        let protocol = target.as_ref().map(|t| t.protocol.clone());
        let callback = protocol.as_deref().map(|p| self.binding_of(p)).unwrap_or_default();
        // An answer nobody asked for (SAML IdP-initiated) is taken only where the connection
        // opted in, and then any correlation id in it is refused by the plugin.
        let allow_unsolicited = callback == CallbackBinding::FormPost
            && tenant
                .connections
                .get(connection_id)
                .is_some_and(|c| c.config.get("allow_idp_initiated") == Some(&Value::Bool(true)));
        let state_name = match callback {
            CallbackBinding::Query => "state",
            CallbackBinding::FormPost => "RelayState",
        };

        // 1. The state must be present once, and must name a flow nobody used yet.
        let states: Vec<&str> = params
            .iter()
            .filter(|(k, _)| k == state_name)
            .map(|(_, v)| v.as_str())
            .collect();
        let state = match states.as_slice() {
            [] if allow_unsolicited => None,
            [] if callback == CallbackBinding::FormPost => {
                let detail = "an unsolicited response, and this connection accepts only answers to its own requests";
                return Err(self.refuse_new(slug, connection_id, protocol, reasons::UNSOLICITED, detail, client).await);
            }
            [] => {
                let detail = "the callback carried no state";
                return Err(self.refuse_new(slug, connection_id, protocol, reasons::STATE_MISSING, detail, client).await);
            }
            [state] if !state.is_empty() && state.len() <= 512 => Some(*state),
            _ => {
                let detail = "the callback carried a malformed state";
                return Err(self.refuse_new(slug, connection_id, protocol, reasons::STATE_MISMATCH, detail, client).await);
            }
        };
        let flow = match state.map(|s| (s, ())) {
            None => None,
            Some((state, ())) => match self.flows.peek(state).await {
                Ok(flow) => Some(flow),
                Err(ConsumeError::Unknown) if allow_unsolicited => None,
                Err(ConsumeError::Unknown) => {
                    let detail = "the state was not issued by this service";
                    return Err(self.refuse_new(slug, connection_id, protocol, reasons::STATE_MISMATCH, detail, client).await);
                }
                Err(ConsumeError::Reused(original)) => {
                    let detail = format!("the state of attempt {original} was already used");
                    return Err(self.refuse_new(slug, connection_id, protocol, reasons::STATE_REUSED, &detail, client).await);
                }
                Err(ConsumeError::Store(error)) => {
                    tracing::error!(%error, "cannot read login flow");
                    let detail = "login state could not be read";
                    return Err(self.refuse_new(slug, connection_id, protocol, reasons::INTERNAL_ERROR, detail, client).await);
                }
            },
        };

        let solicited = match (flow, state) {
            (Some(flow), Some(state)) => {
                // 2. It must have been issued for this tenant and connection, to this browser.
                //    A mismatch is recorded as its own attempt and leaves the flow usable, so
                //    whoever sees a callback URL cannot spoil the real browser's login with it.
                if flow.tenant != slug.as_str() || flow.connection_id != connection_id.as_str() {
                    let detail = "the state was issued for another tenant or connection";
                    return Err(self.refuse_new(slug, connection_id, protocol, reasons::STATE_MISMATCH, detail, client).await);
                }
                if !flow.bound_to(binding) {
                    let detail = "the callback came from a browser that did not start this login";
                    return Err(self.refuse_new(slug, connection_id, protocol, reasons::STATE_MISMATCH, detail, client).await);
                }

                // 3. It is used once, across every node: only one caller wins the update.
                let attempt_id = flow.attempt_id;
                match self.flows.consume(state, attempt_id).await {
                    Ok(()) => {}
                    Err(ConsumeError::Store(error)) => {
                        tracing::error!(%error, "cannot consume login flow");
                        let detail = "login state could not be stored";
                        return Err(self.fail(attempt_id, reasons::INTERNAL_ERROR, detail, None, client).await);
                    }
                    Err(_) => {
                        let detail = format!("the state of attempt {attempt_id} was already used");
                        return Err(self.refuse_new(slug, connection_id, protocol, reasons::STATE_REUSED, &detail, client).await);
                    }
                }
                if flow.expired() {
                    let detail = "the login took longer than allowed";
                    return Err(self.fail(attempt_id, reasons::EXPIRED, detail, None, client).await);
                }
                Some((flow, state.to_owned()))
            }
            _ => None,
        };
        let attempt_id = match &solicited {
            Some((flow, _)) => flow.attempt_id,
            None => {
                let protocol = protocol.as_deref();
                self.start_attempt(slug, Some(connection_id), protocol, client).await?
            }
        };
        let Some(target) = target else {
            let detail = "the connection was removed during the login";
            return Err(self.fail(attempt_id, reasons::CONNECTION_UNAVAILABLE, detail, None, client).await);
        };
        let config = match target.config {
            Ok(config) => config,
            Err(detail) => {
                return Err(self.fail(attempt_id, reasons::INTERNAL_ERROR, &detail, None, client).await)
            }
        };
        let policy = DomainPolicy::from_config(&config);

        // 4. The plugin verifies the provider's answer against the values we stored.
        let (request_id, redirect_uri, nonce, pkce_verifier, return_to, state) = match solicited {
            Some((flow, state)) => (
                Some(flow.request_id.clone()).filter(|id| !id.is_empty()),
                flow.redirect_uri.clone(),
                flow.nonce.clone(),
                flow.pkce_verifier.clone(),
                flow.return_to.clone(),
                state,
            ),
            None => (
                None,
                self.callback_uri(slug.as_str(), connection_id.as_str(), callback),
                String::new(),
                String::new(),
                None,
                String::new(),
            ),
        };
        let request = FinishLoginRequest {
            tenant: slug.to_string(),
            connection_id: connection_id.to_string(),
            config,
            redirect_uri,
            state,
            nonce,
            pkce_verifier,
            params,
            request_id,
            sp_entity_id: self.sp_entity_id(slug.as_str(), connection_id.as_str()),
        };
        let context = call_context(slug, connection_id);
        let identity: ExternalIdentity = match self
            .plugins
            .call(&target.protocol, Method::FinishLogin, &request, &context)
            .await
        {
            Ok(identity) => identity,
            Err(error) => {
                if let Some(diagnostics) = &error.diagnostics {
                    self.keep_diagnostics(slug, attempt_id, diagnostics).await;
                }
                return Err(self.fail(attempt_id, &error.code, &error.detail, None, client).await);
            }
        };
        if identity.subject.is_empty() || identity.subject.len() > 255 {
            let detail = "the provider returned an unusable subject";
            return Err(self.fail(attempt_id, reason::ID_TOKEN_INVALID, detail, None, client).await);
        }
        if let Some(replay) = &identity.replay {
            match self.replays.claim(&identity.issuer, &replay.id, replay.expires_at).await {
                Ok(true) => {}
                Ok(false) => {
                    let detail = "this answer of the identity provider was already used";
                    return Err(self.fail(attempt_id, reasons::ASSERTION_REPLAYED, detail, None, client).await);
                }
                Err(error) => {
                    tracing::error!(%error, "cannot record the answer id");
                    let detail = "the answer could not be checked for replay";
                    return Err(self.fail(attempt_id, reasons::INTERNAL_ERROR, detail, None, client).await);
                }
            }
        }

        // 5. Google, Facebook: the tenant's login policy decides (see `standard_login`).
        if let Some(method) = standard {
            let signed_in = (target.protocol.as_str(), slug, connection_id, attempt_id);
            return self
                .finish_standard(method, signed_in, &tenant, identity, return_to, client)
                .await;
        }

        // 5. The tenant's rules: an email, verified, in one of the connection's domains.
        let Some(email) = identity.email.clone().filter(|e| !e.is_empty()) else {
            let detail = "the provider did not assert an email address";
            return Err(self.fail(attempt_id, reasons::EMAIL_MISSING, detail, None, client).await);
        };
        let email = truncate(&email, 320);
        let email = match check_domain(&email, &policy.allowed, policy.allow_subdomains) {
            // Keep the address in the form that was checked (domain lowercased, ASCII, no
            // trailing dot), so every consumer sees one spelling of it.
            Ok(domain) => match email.split_once('@') {
                Some((local, _)) => format!("{local}@{domain}"),
                None => email,
            },
            Err(EmailError::Malformed) => {
                let detail = "the email address is malformed";
                return Err(self
                    .fail(attempt_id, reasons::EMAIL_DOMAIN_NOT_ALLOWED, detail, Some(email), client)
                    .await);
            }
            Err(EmailError::DomainNotAllowed(domain)) => {
                let detail = format!("the domain {domain} is not allowed for this connection");
                return Err(self
                    .fail(attempt_id, reasons::EMAIL_DOMAIN_NOT_ALLOWED, &detail, Some(email), client)
                    .await);
            }
        };
        if policy.require_verified && !identity.email_verified {
            let detail = "the provider did not assert the email as verified";
            return Err(self
                .fail(attempt_id, reasons::EMAIL_NOT_VERIFIED, detail, Some(email), client)
                .await);
        }

        // 6. Find or provision the user, then record the success and open a session.
        let name = identity.name.as_deref().map(|n| truncate(n, 200));
        let outcome = self
            .sign_in(
                slug,
                connection_id,
                attempt_id,
                (&identity.issuer, &identity.subject),
                (&email, identity.email_verified),
                name,
                &tenant,
                return_to,
                client,
            )
            .await;
        match outcome {
            Ok(success) => {
                self.observe(&target.protocol, "succeeded", "");
                Ok(success)
            }
            Err(error) => {
                tracing::error!(%error, attempt = %attempt_id, "sign-in could not be recorded");
                let detail = "the sign-in could not be recorded";
                Err(self.fail(attempt_id, reasons::INTERNAL_ERROR, detail, Some(email), client).await)
            }
        }
    }

    /// Links the verified identity (issuer, subject) to its user (see [`super::linking`]),
    /// provisioning one on first sign-in, records the success and opens a session.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn sign_in(
        &self,
        slug: &TenantSlug,
        connection_id: &ConnectionId,
        attempt_id: AttemptId,
        (issuer, subject): (&str, &str),
        (email, email_verified): (&str, bool),
        name: Option<String>,
        tenant: &Tenant,
        return_to: Option<String>,
        client: &ClientInfo,
    ) -> Result<LoginSuccess, String> {
        let metadata = Metadata {
            actor: Actor::person(attempt_id),
            request_id: client.request_id.clone(),
        };
        let (user_id, joined) = self
            .user_for_sign_in(
                slug,
                connection_id,
                (issuer, subject),
                email,
                email_verified,
                tenant.login_policy.link_verified_email,
                &metadata,
            )
            .await?;
        if joined {
            tracing::info!(tenant = %slug, attempt = %attempt_id, user = %user_id, "new sign-in method joined the account of its verified email");
        }
        let record = UserCommand::RecordSignIn {
            tenant: slug.clone(),
            connection_id: connection_id.clone(),
            subject: subject.to_owned(),
            email: email.to_owned(),
            name: name.clone(),
        };
        self.executor
            .execute::<User>(&user_id.to_string(), record, &metadata)
            .await
            .map_err(|e| e.to_string())?;
        let succeeded = LoginSucceeded {
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
            email: email.to_owned(),
            name: name.clone(),
            user_id,
        };
        self.executor
            .execute::<LoginAttempt>(
                &attempt_id.to_string(),
                LoginAttemptCommand::Succeed(succeeded),
                &metadata,
            )
            .await
            .map_err(|e| e.to_string())?;

        let session_token = random_token(32);
        let expires_at =
            chrono::Utc::now() + chrono::Duration::seconds(self.settings.session_ttl_secs);
        let started = SessionStarted {
            tenant: slug.clone(),
            user_id,
            attempt_id,
            connection_id: connection_id.clone(),
            email: email.to_owned(),
            name,
            expires_at,
        };
        self.executor
            .execute::<Session>(&sha256_hex(&session_token), SessionCommand::Start(started), &metadata)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(tenant = %slug, attempt = %attempt_id, user = %user_id, "login succeeded");
        Ok(LoginSuccess {
            session_token,
            redirect_to: return_to.unwrap_or_else(|| tenant.app_url.clone()),
            attempt_id,
            user_id,
            max_age_secs: self.settings.session_ttl_secs,
        })
    }

    /// The live session for a session cookie value.
    pub async fn session(&self, token: &str) -> Result<Option<SessionInfo>, StoreError> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let session: Session = self.executor.load(&sha256_hex(token)).await?;
        Ok(session.live(chrono::Utc::now()).map(|s| SessionInfo {
            tenant: s.tenant.to_string(),
            user_id: s.user_id,
            connection_id: s.connection_id.to_string(),
            email: s.email.clone(),
            name: s.name.clone(),
            expires_at: s.expires_at,
        }))
    }

    /// Ends the session for `token` if it belongs to `slug`. Returns whether one ended.
    pub async fn logout(&self, slug: &TenantSlug, token: &str, client: &ClientInfo) -> Result<bool, StoreError> {
        let Some(session) = self.session(token).await? else {
            return Ok(false);
        };
        if session.tenant != slug.as_str() {
            return Ok(false);
        }
        let metadata = Metadata {
            actor: Actor(format!("user:{}", session.user_id)),
            request_id: client.request_id.clone(),
        };
        let end = SessionCommand::End {
            reason: "logout".to_owned(),
        };
        match self.executor.execute::<Session>(&sha256_hex(token), end, &metadata).await {
            Ok(_) => Ok(true),
            Err(crate::store::CommandError::Store(error)) => Err(error),
            Err(crate::store::CommandError::Rejected(_)) => Ok(false),
        }
    }

    /// The tenant for a browser request; unknown tenants are not recorded (there is nobody to
    /// record them for).
    pub async fn tenant_for_login(&self, slug: &TenantSlug) -> Result<Tenant, LoginFailure> {
        let tenant: Tenant = self.executor.load(slug.as_str()).await.map_err(|error| {
            tracing::error!(%error, "cannot load tenant");
            LoginFailure {
                attempt_id: None,
                reason: reasons::INTERNAL_ERROR.to_owned(),
                detail: "the service is unavailable".to_owned(),
                class: RefusalClass::Internal,
                sso: None,
            }
        })?;
        if !tenant.exists() {
            return Err(LoginFailure {
                attempt_id: None,
                reason: "tenant_not_found".to_owned(),
                detail: "no such tenant".to_owned(),
                class: RefusalClass::BadRequest,
                sso: None,
            });
        }
        Ok(tenant)
    }

    /// What a login at `connection_id` of `tenant` uses: one of its SSO connections, or a
    /// standard method this deployment offers. `None` when there is neither.
    fn login_target(&self, tenant: &Tenant, connection_id: &ConnectionId) -> Option<LoginTarget> {
        if let Some(method) = standard_method_of(connection_id) {
            let provider = self.standard.get(&method)?;
            return Some(LoginTarget {
                protocol: provider.protocol.to_owned(),
                config: Ok(provider.config.clone()),
            });
        }
        let connection = tenant.connections.get(connection_id)?;
        let slug = tenant.slug.as_ref()?;
        Some(LoginTarget {
            protocol: connection.protocol.clone(),
            config: self.open_config(slug, connection_id, connection),
        })
    }

    pub(super) fn open_config(
        &self,
        slug: &TenantSlug,
        connection_id: &ConnectionId,
        connection: &Connection,
    ) -> Result<Value, String> {
        let secret_fields = self
            .plugins
            .plugin(&connection.protocol)
            .map(|p| p.secret_fields.clone())
            .unwrap_or_default();
        let mut config = connection.config.clone();
        config_secrets::open(&self.key, &mut config, &secret_fields, slug.as_str(), connection_id.as_str())
            .map_err(|_| "the connection's secret cannot be opened with the configured key".to_owned())?;
        Ok(config)
    }

    async fn start_attempt(
        &self,
        slug: &TenantSlug,
        connection_id: Option<&ConnectionId>,
        protocol: Option<&str>,
        client: &ClientInfo,
    ) -> Result<AttemptId, LoginFailure> {
        let method = connection_id
            .and_then(standard_method_of)
            .map_or("sso", StandardMethod::as_str);
        self.start_attempt_by(slug, connection_id, protocol, method, client).await
    }

    /// Records the start of an attempt by `method` (`sso`, `email_code`).
    pub(super) async fn start_attempt_by(
        &self,
        slug: &TenantSlug,
        connection_id: Option<&ConnectionId>,
        protocol: Option<&str>,
        method: &str,
        client: &ClientInfo,
    ) -> Result<AttemptId, LoginFailure> {
        let attempt_id = AttemptId::new();
        let started = LoginStarted {
            tenant: slug.clone(),
            connection_id: connection_id.cloned(),
            protocol: protocol.map(str::to_owned),
            method: method.to_owned(),
            client_ip: client.ip.clone(),
            user_agent: client.user_agent.as_deref().map(|ua| truncate(ua, USER_AGENT_MAX)),
        };
        let metadata = Metadata {
            actor: Actor::person(attempt_id),
            request_id: client.request_id.clone(),
        };
        self.executor
            .execute::<LoginAttempt>(&attempt_id.to_string(), LoginAttemptCommand::Start(started), &metadata)
            .await
            .map_err(|error| {
                tracing::error!(%error, "cannot record login start");
                LoginFailure {
                    attempt_id: None,
                    reason: reasons::INTERNAL_ERROR.to_owned(),
                    detail: "the service is unavailable".to_owned(),
                    class: RefusalClass::Internal,
                    sso: None,
                }
            })?;
        Ok(attempt_id)
    }

    /// Records a refusal at a connection whose protocol is looked up here.
    pub(super) async fn refuse_unknown(
        &self,
        slug: &TenantSlug,
        connection_id: &ConnectionId,
        reason: &str,
        detail: &str,
        client: &ClientInfo,
    ) -> LoginFailure {
        let protocol = match self.executor.load::<Tenant>(slug.as_str()).await {
            Ok(tenant) => tenant.connections.get(connection_id).map(|c| c.protocol.clone()),
            Err(_) => None,
        };
        self.refuse_new(slug, connection_id, protocol, reason, detail, client).await
    }

    /// Records a refusal that has no attempt yet (a callback without a usable state): a new
    /// attempt is started and failed at once, so every refused callback is on record.
    async fn refuse_new(
        &self,
        slug: &TenantSlug,
        connection_id: &ConnectionId,
        protocol: Option<String>,
        reason: &str,
        detail: &str,
        client: &ClientInfo,
    ) -> LoginFailure {
        match self.start_attempt(slug, Some(connection_id), protocol.as_deref(), client).await {
            Ok(attempt_id) => self.fail(attempt_id, reason, detail, None, client).await,
            Err(failure) => failure,
        }
    }

    /// Records `reason` as the outcome of `attempt_id` and returns the failure to show.
    pub(super) async fn fail(
        &self,
        attempt_id: AttemptId,
        reason: &str,
        detail: &str,
        email: Option<String>,
        client: &ClientInfo,
    ) -> LoginFailure {
        let metadata = Metadata {
            actor: Actor::person(attempt_id),
            request_id: client.request_id.clone(),
        };
        let command = LoginAttemptCommand::Fail {
            reason: reason.to_owned(),
            detail: truncate(detail, 500),
            email,
        };
        let recorded = self
            .executor
            .execute::<LoginAttempt>(&attempt_id.to_string(), command, &metadata)
            .await;
        let protocol = match &recorded {
            Ok(attempt) => attempt.protocol.clone(),
            Err(_) => None,
        };
        if let Err(error) = recorded {
            // An attempt that already ended keeps its outcome (a replay cannot overwrite it).
            tracing::warn!(%error, attempt = %attempt_id, "login outcome not recorded");
        }
        tracing::warn!(attempt = %attempt_id, reason, "login refused");
        self.observe(protocol.as_deref().unwrap_or("unknown"), "failed", reason);
        LoginFailure {
            attempt_id: Some(attempt_id),
            reason: reason.to_owned(),
            detail: detail.to_owned(),
            class: class_of(reason),
            sso: None,
        }
    }

    pub(super) fn observe(&self, protocol: &str, outcome: &str, reason: &str) {
        if let Some(observer) = &self.login_observer {
            observer(protocol, outcome, reason);
        }
    }
}

fn call_context(slug: &TenantSlug, connection_id: &ConnectionId) -> CallContext {
    CallContext {
        tenant: slug.to_string(),
        connection_id: connection_id.to_string(),
    }
}

pub(super) fn truncate(text: &str, max_chars: usize) -> String {
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    match clean.char_indices().nth(max_chars) {
        Some((cut, _)) => clean[..cut].to_owned(),
        None => clean,
    }
}
