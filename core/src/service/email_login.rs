//! Standard login with an email one-time code: a person types an address, receives a 6-digit
//! code and a one-click link, and is signed in as a guest of the tenant (an account per tenant,
//! created on first sign-in).
//!
//! Every step is recorded on the `LoginAttempt`. The code is stored only as a keyed hash bound
//! to its row, compared in constant time, used once, expires, and is locked after
//! [`MAX_CODE_TRIES`] wrong tries counted by the database. The link only opens a confirmation
//! page; the POST behind its button must come from the browser that asked for the code (its
//! handle cookie), so a mail scanner that fetches the link signs nobody in. Sending is limited
//! per address and per client IP with counters in the database, shared by every node. The
//! answer to a request never depends on whether an account exists: none is looked up.

use super::login::{sso_connection_for, ClientInfo, LoginFailure, LoginSuccess, RefusalClass};
use super::mail::Mailer;
use super::{return_to, Gatehouse};
use crate::crypto::{random_digits, random_token, sha256_hex};
use crate::domain::login_attempt::{LoginAttempt, LoginAttemptCommand, MAX_CODE_TRIES};
use crate::domain::tenant::{StandardMethod, Tenant};
use crate::email::normalize_domain;
use crate::ids::{Actor, AttemptId, ConnectionId, TenantSlug};
use crate::store::{EmailCode, Metadata, NewEmailCode};

/// Reason codes of email-code attempts (see also [`super::login::reasons`]).
pub mod email_reasons {
    /// A code that is not the one sent.
    pub const CODE_WRONG: &str = "code_wrong";
    /// The code or link outlived its lifetime.
    pub const CODE_EXPIRED: &str = "code_expired";
    /// Too many wrong codes.
    pub const CODE_LOCKED: &str = crate::domain::login_attempt::CODE_LOCKED;
    /// A code or link that was already used.
    pub const CODE_REUSED: &str = "code_reused";
    /// A code entered in a browser that asked for none (no or an unknown handle cookie).
    pub const CODE_MISSING: &str = "code_missing";
    /// An unknown link token.
    pub const LINK_INVALID: &str = "link_invalid";
    /// A link confirmed in another browser than the one that asked for the code.
    pub const LINK_OTHER_BROWSER: &str = "link_other_browser";
    /// Too many codes requested for this address or from this IP.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// The tenant does not let guests sign in.
    pub const GUESTS_DISABLED: &str = "guests_disabled";
    /// The tenant (or the deployment) does not offer this method.
    pub const METHOD_DISABLED: &str = "method_disabled";
    /// The address belongs to one of the tenant's SSO domains, and members must use SSO.
    pub const SSO_ENFORCED: &str = "sso_enforced";
    /// The message could not be sent.
    pub const DELIVERY_FAILED: &str = "delivery_failed";
}

use email_reasons as reasons;

/// The protocol and method name of email-code attempts, as recorded and in metrics.
pub const EMAIL_CODE: &str = "email_code";

/// Issuer recorded for identities proven by an email code.
const ISSUER: &str = "gatehouse:email_code";

/// Digits of a code.
const CODE_DIGITS: u32 = 6;

/// Deployment settings of the email-code method.
#[derive(Clone, Debug)]
pub struct EmailCodeSettings {
    /// Lifetime of a code and its link, in seconds.
    pub code_ttl_secs: i64,
    /// Codes one address may be sent per window.
    pub max_per_email: i64,
    /// Codes one client IP may request per window.
    pub max_per_ip: i64,
    /// Length of a rate-limit window, in seconds.
    pub window_secs: i64,
}

impl Default for EmailCodeSettings {
    fn default() -> Self {
        EmailCodeSettings {
            code_ttl_secs: 600,
            max_per_email: 5,
            max_per_ip: 20,
            window_secs: 900,
        }
    }
}

/// The email-code method as this deployment runs it.
pub(super) struct EmailLogin {
    pub(super) settings: EmailCodeSettings,
    pub(super) mailer: Mailer,
}

/// A code was sent: keep `handle` in the browser (it is what binds the code to it).
#[derive(Debug)]
pub struct EmailCodeSent {
    /// Browser handle: the cookie value that the code and the link are bound to.
    pub handle: String,
    /// The address the code went to (normalised).
    pub email: String,
    /// The attempt.
    pub attempt_id: AttemptId,
    /// Lifetime of the code, in seconds.
    pub ttl_secs: i64,
}

/// Why no code was sent.
#[derive(Debug)]
pub enum EmailCodeRequestError {
    /// The address is not usable; nothing was recorded. Carries what to tell the person.
    InvalidEmail(&'static str),
    /// The address belongs to an SSO connection and members must use it (recorded as
    /// `sso_enforced`).
    SsoRequired {
        /// The attempt, failed.
        attempt_id: AttemptId,
        /// The connection to use.
        connection_id: ConnectionId,
        /// Its button label.
        label: String,
    },
    /// Refused and recorded (policy, rate limit, delivery), or the tenant is unknown.
    Refused(LoginFailure),
}

/// Why a code or link did not sign anyone in.
#[derive(Debug)]
pub enum EmailCodeError {
    /// A wrong code, with tries left (recorded as `login.code_wrong`).
    Wrong {
        /// The attempt.
        attempt_id: AttemptId,
        /// The address the code went to.
        email: String,
        /// Tries left before the code locks.
        tries_left: u32,
    },
    /// Not a 6-digit code (a slip, not a guess): no try is taken and nothing is recorded.
    Malformed {
        /// The address the code went to.
        email: String,
    },
    /// Refused (recorded when an attempt is known).
    Refused(LoginFailure),
}

impl Gatehouse {
    /// Switches the email-code method on for this deployment (tenants still choose).
    pub fn enable_email_code(&mut self, settings: EmailCodeSettings, mailer: Mailer) {
        self.email_login = Some(EmailLogin { settings, mailer });
    }

    /// True when this deployment offers `method`: the email code unless switched off, Google
    /// and Facebook when their client is configured.
    pub fn offers(&self, method: StandardMethod) -> bool {
        match method {
            StandardMethod::EmailCode => self.email_login.is_some(),
            StandardMethod::Facebook | StandardMethod::Google => self.standard.contains_key(&method),
        }
    }

    /// The mailer, when the email-code method is on.
    pub fn mailer(&self) -> Option<&Mailer> {
        self.email_login
            .as_ref()
            .map(|e| &e.mailer)
    }

    /// Sends a code and a link for `email`, after the tenant's policy and the rate limits.
    pub async fn request_email_code(
        &self,
        slug: &TenantSlug,
        email: &str,
        return_to: Option<&str>,
        client: &ClientInfo,
    ) -> Result<EmailCodeSent, EmailCodeRequestError> {
        let tenant = self
            .tenant_for_login(slug)
            .await
            .map_err(EmailCodeRequestError::Refused)?;
        let email = normalize_email(email).map_err(EmailCodeRequestError::InvalidEmail)?;

        // 1. On record from here on: who asked, for which address.
        let attempt_id = self
            .start_attempt_by(slug, Some(&email_code_connection()), Some(EMAIL_CODE), EMAIL_CODE, client)
            .await
            .map_err(EmailCodeRequestError::Refused)?;
        let request = LoginAttemptCommand::RequestCode {
            email: email.clone(),
        };
        if let Err(failure) = self
            .record(attempt_id, request, client)
            .await
        {
            return Err(EmailCodeRequestError::Refused(failure));
        }

        // 2. The tenant's policy: the method, members held to SSO, guests.
        let refuse = |reason: &'static str, detail: &'static str| {
            let email = email.clone();
            async move {
                let failure = self
                    .fail(attempt_id, reason, detail, Some(email), client)
                    .await;
                EmailCodeRequestError::Refused(forbidden(failure))
            }
        };
        let policy = &tenant.login_policy;
        let Some(login) = self.email_login.as_ref() else {
            return Err(refuse(
                reasons::METHOD_DISABLED,
                "this deployment does not send email codes",
            )
            .await);
        };
        if !policy.allows(StandardMethod::EmailCode) {
            return Err(refuse(
                reasons::METHOD_DISABLED,
                "the tenant does not offer email codes",
            )
            .await);
        }
        let member_of = sso_connection_for(&tenant, &email);
        if let (Some(connection_id), true) = (&member_of, policy.enforce_sso) {
            let detail = format!("the address belongs to SSO connection {connection_id}");
            self.fail(
                attempt_id,
                reasons::SSO_ENFORCED,
                &detail,
                Some(email.clone()),
                client,
            )
            .await;
            let label = tenant
                .connections
                .get(connection_id)
                .map(|c| c.label.clone())
                .unwrap_or_default();
            return Err(EmailCodeRequestError::SsoRequired {
                attempt_id,
                connection_id: connection_id.clone(),
                label,
            });
        }
        if member_of.is_none() && !policy.guests_allowed {
            return Err(refuse(
                reasons::GUESTS_DISABLED,
                "the tenant does not let guests sign in",
            )
            .await);
        }

        // 3. Rate limits, counted in the database so that every node shares them.
        match self
            .within_rate_limits(&login.settings, &email, client)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                let failure = self
                    .fail(
                        attempt_id,
                        reasons::RATE_LIMITED,
                        "too many codes were requested",
                        Some(email.clone()),
                        client,
                    )
                    .await;
                return Err(EmailCodeRequestError::Refused(LoginFailure {
                    class: RefusalClass::Forbidden,
                    ..failure
                }));
            }
            Err(failure) => return Err(EmailCodeRequestError::Refused(failure)),
        }

        // 4. The code, the link and the browser handle; the code is kept only as a keyed hash.
        let handle = random_token(32);
        let link_token = random_token(32);
        let code = random_digits(CODE_DIGITS);
        let return_to = return_to
            .and_then(|target| return_to::check(target, &tenant.app_url, &tenant.return_origins));
        let row = NewEmailCode {
            handle: &handle,
            link_token: &link_token,
            tenant: slug,
            attempt_id,
            email: &email,
            code_mac: &self.code_mac(&sha256_hex(&handle), &code),
            return_to: return_to.as_deref(),
            ttl_secs: login.settings.code_ttl_secs,
        };
        if let Err(error) = self.email_codes.insert(row).await {
            tracing::error!(%error, "cannot store the email code");
            let detail = "the code could not be stored";
            return Err(EmailCodeRequestError::Refused(
                self.fail(
                    attempt_id,
                    super::login::reasons::INTERNAL_ERROR,
                    detail,
                    Some(email),
                    client,
                )
                .await,
            ));
        }

        // 5. The message.
        let link = format!(
            "{}/{slug}/email-code/link?token={link_token}",
            self.settings.public_url
        );
        let lifetime = lifetime_words(login.settings.code_ttl_secs);
        let subject = format!("Your sign-in code for {}", tenant.display_name);
        let body = format!(
            "Hello,\r\n\r\nyour code to sign in to {name} is:\r\n\r\n    {code}\r\n\r\n\
             Or open this link in the browser where you asked for the code, and confirm:\r\n\r\n\
             {link}\r\n\r\nThe code and the link work once, for {lifetime}. If you did not \
             ask to sign in, ignore this message.\r\n",
            name = tenant.display_name,
            code = code.as_str(),
        );
        drop(code);
        if let Err(error) = login
            .mailer
            .send(&email, &subject, body)
            .await
        {
            tracing::error!(%error, attempt = %attempt_id, "the sign-in message could not be sent");
            let detail = "the message could not be sent";
            let failure = self
                .fail(
                    attempt_id,
                    reasons::DELIVERY_FAILED,
                    detail,
                    Some(email),
                    client,
                )
                .await;
            return Err(EmailCodeRequestError::Refused(LoginFailure {
                class: RefusalClass::Internal,
                ..failure
            }));
        }
        if let Some(outbox) = login.mailer.outbox() {
            tracing::info!(outbox = %outbox.display(), attempt = %attempt_id, "sign-in message written to the outbox folder");
        }
        let sent = LoginAttemptCommand::RecordCodeSent {
            delivery: login.mailer.delivery().to_owned(),
        };
        if let Err(failure) = self
            .record(attempt_id, sent, client)
            .await
        {
            return Err(EmailCodeRequestError::Refused(failure));
        }
        tracing::info!(tenant = %slug, attempt = %attempt_id, "email code sent");
        Ok(EmailCodeSent {
            handle,
            email,
            attempt_id,
            ttl_secs: login.settings.code_ttl_secs,
        })
    }

    /// Signs in with the code typed in the browser whose handle cookie is `handle`.
    pub async fn verify_email_code(
        &self,
        slug: &TenantSlug,
        handle: Option<&str>,
        code: &str,
        client: &ClientInfo,
    ) -> Result<LoginSuccess, EmailCodeError> {
        let tenant = self
            .tenant_for_login(slug)
            .await
            .map_err(EmailCodeError::Refused)?;
        let row = match handle.filter(|h| h.len() <= 128) {
            Some(handle) => self
                .email_codes
                .by_handle(handle)
                .await
                .map_err(|error| {
                    tracing::error!(%error, "cannot read the email code");
                    EmailCodeError::Refused(unavailable())
                })?,
            None => None,
        };
        // 1. A code is checked only in the browser that asked for it, at its tenant.
        let Some(row) = row.filter(|r| r.tenant == slug.as_str()) else {
            return Err(EmailCodeError::Refused(unrecorded(
                reasons::CODE_MISSING,
                "no code was requested in this browser",
            )));
        };
        // 2. Used, locked or expired codes are not compared at all.
        self.check_usable(slug, &row, client)
            .await?;
        let entered: String = code
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let well_formed = entered.len() == CODE_DIGITS as usize
            && entered
                .bytes()
                .all(|b| b.is_ascii_digit());
        if !well_formed {
            return Err(EmailCodeError::Malformed { email: row.email });
        }

        // 3. Each comparison takes one try first, across every node: parallel guesses share
        //    the same five.
        let tries = match self
            .email_codes
            .take_try(&row.id, i64::from(MAX_CODE_TRIES))
            .await
        {
            Ok(Some(tries)) => tries,
            Ok(None) => {
                // Another request took the last try or used the code since `row` was read:
                // decide on the row as it is now.
                let now = match handle {
                    Some(handle) => self
                        .email_codes
                        .by_handle(handle)
                        .await
                        .ok()
                        .flatten(),
                    None => None,
                };
                let now = now.unwrap_or(row);
                return Err(EmailCodeError::Refused(
                    self.locked_or_used(slug, &now, client)
                        .await,
                ));
            }
            Err(error) => {
                tracing::error!(%error, "cannot count the code try");
                return Err(EmailCodeError::Refused(unavailable()));
            }
        };
        let mac = self.code_mac(&row.id, &entered);
        if !row.matches(&mac) {
            let state = self
                .record(row.attempt_id, LoginAttemptCommand::RejectCode, client)
                .await;
            let tries_left = u32::try_from(i64::from(MAX_CODE_TRIES) - tries).unwrap_or(0);
            tracing::warn!(attempt = %row.attempt_id, tries_left, "wrong email code");
            if tries_left == 0 {
                self.observe(EMAIL_CODE, "failed", reasons::CODE_LOCKED);
                return Err(EmailCodeError::Refused(LoginFailure {
                    attempt_id: Some(row.attempt_id),
                    reason: reasons::CODE_LOCKED.to_owned(),
                    detail: "too many wrong codes".to_owned(),
                    class: RefusalClass::Forbidden,
                    sso: None,
                }));
            }
            if let Err(failure) = state {
                return Err(EmailCodeError::Refused(failure));
            }
            return Err(EmailCodeError::Wrong {
                attempt_id: row.attempt_id,
                email: row.email,
                tries_left,
            });
        }

        // 4. Right: used once, then signed in.
        self.redeem(slug, &tenant, row, client)
            .await
    }

    /// Signs in through the one-click link, confirmed (POST) in the browser whose handle cookie
    /// is `handle`.
    pub async fn confirm_email_link(
        &self,
        slug: &TenantSlug,
        token: &str,
        handle: Option<&str>,
        client: &ClientInfo,
    ) -> Result<LoginSuccess, EmailCodeError> {
        let tenant = self
            .tenant_for_login(slug)
            .await
            .map_err(EmailCodeError::Refused)?;
        let row = if token.is_empty() || token.len() > 128 {
            None
        } else {
            self.email_codes
                .by_link(token)
                .await
                .map_err(|error| {
                    tracing::error!(%error, "cannot read the email code");
                    EmailCodeError::Refused(unavailable())
                })?
        };
        let Some(row) = row.filter(|r| r.tenant == slug.as_str()) else {
            return Err(EmailCodeError::Refused(unrecorded(
                reasons::LINK_INVALID,
                "the link is not valid",
            )));
        };
        // The link alone is not enough: a mail scanner or anyone the message was forwarded to
        // has it too. Only the browser that asked for the code may confirm it.
        if !row.bound_to(handle) {
            tracing::warn!(attempt = %row.attempt_id, "email link confirmed in another browser");
            return Err(EmailCodeError::Refused(unrecorded(
                reasons::LINK_OTHER_BROWSER,
                "the link was opened in another browser than the one that asked for it",
            )));
        }
        self.check_usable(slug, &row, client)
            .await?;
        self.redeem(slug, &tenant, row, client)
            .await
    }

    async fn check_usable(
        &self,
        slug: &TenantSlug,
        row: &EmailCode,
        client: &ClientInfo,
    ) -> Result<(), EmailCodeError> {
        if row.consumed || row.tries >= i64::from(MAX_CODE_TRIES) {
            return Err(EmailCodeError::Refused(
                self.locked_or_used(slug, row, client)
                    .await,
            ));
        }
        if row.expired() {
            // A dead code is marked used so it is never compared again.
            let _ = self.email_codes.consume(&row.id).await;
            let detail = "the code was entered after it expired";
            let failure = self
                .fail(
                    row.attempt_id,
                    reasons::CODE_EXPIRED,
                    detail,
                    Some(row.email.clone()),
                    client,
                )
                .await;
            return Err(EmailCodeError::Refused(LoginFailure {
                class: RefusalClass::BadRequest,
                ..failure
            }));
        }
        Ok(())
    }

    /// A code that takes no more tries: locked (its attempt already failed as such) or used,
    /// which is recorded as its own failed attempt, like a reused `state`.
    async fn locked_or_used(
        &self,
        slug: &TenantSlug,
        row: &EmailCode,
        client: &ClientInfo,
    ) -> LoginFailure {
        if !row.consumed && row.tries >= i64::from(MAX_CODE_TRIES) {
            return LoginFailure {
                attempt_id: Some(row.attempt_id),
                reason: reasons::CODE_LOCKED.to_owned(),
                detail: "too many wrong codes".to_owned(),
                class: RefusalClass::Forbidden,
                sso: None,
            };
        }
        let attempt_id = match self
            .start_attempt_by(slug, Some(&email_code_connection()), Some(EMAIL_CODE), EMAIL_CODE, client)
            .await
        {
            Ok(id) => id,
            Err(failure) => return failure,
        };
        let detail = format!("the code of attempt {} was already used", row.attempt_id);
        let failure = self
            .fail(
                attempt_id,
                reasons::CODE_REUSED,
                &detail,
                Some(row.email.clone()),
                client,
            )
            .await;
        LoginFailure {
            class: RefusalClass::BadRequest,
            ..failure
        }
    }

    async fn redeem(
        &self,
        slug: &TenantSlug,
        tenant: &Tenant,
        row: EmailCode,
        client: &ClientInfo,
    ) -> Result<LoginSuccess, EmailCodeError> {
        match self.email_codes.consume(&row.id).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(EmailCodeError::Refused(
                    self.locked_or_used(slug, &row, client)
                        .await,
                ))
            }
            Err(error) => {
                tracing::error!(%error, "cannot mark the email code used");
                return Err(EmailCodeError::Refused(unavailable()));
            }
        }
        // The policy again: it may have changed since the code was sent (the code is used up
        // either way).
        if let Some((reason, detail)) = policy_refusal(tenant, &row.email) {
            let failure = self
                .fail(row.attempt_id, reason, &detail, Some(row.email), client)
                .await;
            return Err(EmailCodeError::Refused(forbidden(failure)));
        }
        let connection_id = email_code_connection();
        let subject = row.email.to_lowercase();
        let signed_in = self
            .sign_in(
                slug,
                &connection_id,
                row.attempt_id,
                (ISSUER, &subject),
                // The code proved the mailbox.
                (&row.email, true),
                None,
                tenant,
                row.return_to.clone(),
                client,
            )
            .await;
        match signed_in {
            Ok(success) => {
                self.observe(EMAIL_CODE, "succeeded", "");
                Ok(success)
            }
            Err(error) => {
                tracing::error!(%error, attempt = %row.attempt_id, "sign-in could not be recorded");
                let detail = "the sign-in could not be recorded";
                let reason = super::login::reasons::INTERNAL_ERROR;
                Err(EmailCodeError::Refused(
                    self.fail(row.attempt_id, reason, detail, Some(row.email), client)
                        .await,
                ))
            }
        }
    }

    async fn within_rate_limits(
        &self,
        settings: &EmailCodeSettings,
        email: &str,
        client: &ClientInfo,
    ) -> Result<bool, LoginFailure> {
        // Buckets are keyed hashes: the table never holds an address.
        let mut buckets = vec![(
            self.key
                .mac_hex("rate-limit", &format!("email:{}", email.to_lowercase())),
            settings.max_per_email,
        )];
        if let Some(ip) = &client.ip {
            buckets.push((
                self.key
                    .mac_hex("rate-limit", &format!("ip:{ip}")),
                settings.max_per_ip,
            ));
        }
        let mut within = true;
        for (bucket, limit) in buckets {
            match self
                .rate_limits
                .hit(&bucket, settings.window_secs)
                .await
            {
                Ok(hits) => within &= hits <= limit,
                Err(error) => {
                    tracing::error!(%error, "cannot count the rate limit");
                    return Err(unavailable());
                }
            }
        }
        Ok(within)
    }

    /// The keyed hash of `code` for the row `row_id`: a code hash is useless for any other row,
    /// and without the deployment key it cannot be brute-forced offline.
    fn code_mac(&self, row_id: &str, code: &str) -> String {
        self.key
            .mac_hex("email-code", &format!("{row_id}:{code}"))
    }

    /// Runs an attempt command, turning a storage failure into the failure to show.
    async fn record(
        &self,
        attempt_id: AttemptId,
        command: LoginAttemptCommand,
        client: &ClientInfo,
    ) -> Result<LoginAttempt, LoginFailure> {
        let metadata = Metadata {
            actor: Actor::person(attempt_id),
            request_id: client.request_id.clone(),
        };
        self.executor
            .execute::<LoginAttempt>(&attempt_id.to_string(), command, &metadata)
            .await
            .map_err(|error| {
                tracing::error!(%error, attempt = %attempt_id, "cannot record the email code step");
                unavailable()
            })
    }
}

/// The connection id that email-code identities, users and sessions are recorded under.
pub fn email_code_connection() -> ConnectionId {
    // A constant that passes the id rules.
    ConnectionId::parse("email-code").expect("email-code is a valid connection id")
}

/// Trims and checks an address typed by a person; the domain is lowercased and converted to
/// ASCII (IDNA), the local part kept as typed.
pub fn normalize_email(input: &str) -> Result<String, &'static str> {
    let input = input.trim();
    if input.is_empty() {
        return Err("Enter your email address.");
    }
    if input.len() > 254
        || input
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("This email address is not valid.");
    }
    let mut parts = input.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err("This email address is not valid.");
    };
    // A dot-atom local part only (RFC 5322 section 3.2.3): no quoted strings, comments or
    // empty labels, which mail systems read in different ways.
    let atom = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    if local.is_empty()
        || local.len() > 64
        || local
            .split('.')
            .any(|label| label.is_empty() || !label.chars().all(atom))
    {
        return Err("This email address is not valid.");
    }
    let Some(domain) = normalize_domain(domain).filter(|d| d.contains('.')) else {
        return Err("This email address is not valid.");
    };
    // The mail library must accept it too (no quoting tricks in the local part).
    if lettre::Address::new(local, &domain).is_err() {
        return Err("This email address is not valid.");
    }
    Ok(format!("{local}@{domain}"))
}

/// A code's lifetime in words: "45 seconds", "1 minute", "10 minutes" (rounded up).
pub fn lifetime_words(secs: i64) -> String {
    let plural = |n: i64, unit: &str| match n {
        1 => format!("1 {unit}"),
        n => format!("{n} {unit}s"),
    };
    if secs < 60 {
        plural(secs.max(0), "second")
    } else {
        plural((secs + 59) / 60, "minute")
    }
}

/// Why the tenant's login policy refuses an email-code sign-in for `email` now, if it does.
fn policy_refusal(tenant: &Tenant, email: &str) -> Option<(&'static str, String)> {
    let policy = &tenant.login_policy;
    if !policy.allows(StandardMethod::EmailCode) {
        let detail = "the tenant does not offer email codes";
        return Some((reasons::METHOD_DISABLED, detail.to_owned()));
    }
    let member_of = sso_connection_for(tenant, email);
    if let (Some(connection_id), true) = (&member_of, policy.enforce_sso) {
        let detail = format!("the address belongs to SSO connection {connection_id}");
        return Some((reasons::SSO_ENFORCED, detail));
    }
    if member_of.is_none() && !policy.guests_allowed {
        let detail = "the tenant does not let guests sign in";
        return Some((reasons::GUESTS_DISABLED, detail.to_owned()));
    }
    None
}

fn forbidden(failure: LoginFailure) -> LoginFailure {
    LoginFailure {
        class: RefusalClass::Forbidden,
        ..failure
    }
}

fn unrecorded(reason: &str, detail: &str) -> LoginFailure {
    LoginFailure {
        attempt_id: None,
        reason: reason.to_owned(),
        detail: detail.to_owned(),
        class: RefusalClass::BadRequest,
        sso: None,
    }
}

fn unavailable() -> LoginFailure {
    LoginFailure {
        attempt_id: None,
        reason: super::login::reasons::INTERNAL_ERROR.to_owned(),
        detail: "the service is unavailable".to_owned(),
        class: RefusalClass::Internal,
        sso: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_are_said_in_words() {
        assert_eq!(lifetime_words(15), "15 seconds");
        assert_eq!(lifetime_words(1), "1 second");
        assert_eq!(lifetime_words(60), "1 minute");
        assert_eq!(lifetime_words(61), "2 minutes");
        assert_eq!(lifetime_words(600), "10 minutes");
    }

    #[test]
    fn addresses_are_trimmed_and_their_domain_normalised() {
        assert_eq!(
            normalize_email("  Alice@Example.TEST. "),
            Ok("Alice@example.test".into())
        );
        assert_eq!(
            normalize_email("a@bücher.test"),
            Ok("a@xn--bcher-kva.test".into())
        );
    }

    #[test]
    fn unusable_addresses_are_refused() {
        for bad in [
            "",
            "alice",
            "@example.test",
            "a@b@example.test",
            "a b@example.test",
            "a@localhost",
            "a@example..test",
            "a@example.test\r\nBcc: x@example.test",
            "\"a\"@example.test",
            "a..b@example.test",
            ".a@example.test",
            "a(comment)@example.test",
            "ä@example.test",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(normalize_email(&format!("{}@example.test", "a".repeat(65))).is_err());
    }
}
