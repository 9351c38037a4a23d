//! Home-realm discovery: a person types an email on the choice page and is sent to the SSO
//! connection whose allowed domains take it.
//!
//! Only the tenant's connection config is read, never an account, so the answer says nothing
//! about who has one. An address no connection takes is recorded as a failed attempt
//! (`domain_not_found`), so support can see what people typed and where they got stuck; past
//! [`MAX_MISSES_PER_IP`] misses per client IP in a window the answer stays the same but is no
//! longer recorded, so the form cannot flood the audit log.

use super::email_login::normalize_email;
use super::login::{sso_connection_for, ClientInfo, LoginFailure};
use super::Gatehouse;
use crate::ids::{AttemptId, ConnectionId, TenantSlug};

/// Reason code of an address that no connection of the tenant takes.
pub const DOMAIN_NOT_FOUND: &str = "domain_not_found";

/// Misses one client IP may have recorded per window.
const MAX_MISSES_PER_IP: i64 = 30;

/// Length of that window, in seconds.
const MISS_WINDOW_SECS: i64 = 900;

/// Where an address leads.
#[derive(Debug)]
pub enum Discovery {
    /// The connection whose allowed domains take the address.
    Connection(ConnectionId),
    /// No connection takes it (recorded as `domain_not_found`).
    NoMatch {
        /// The address's domain, as normalised.
        domain: String,
        /// The failed attempt; `None` when the client is over the limit of recorded misses.
        attempt_id: Option<AttemptId>,
    },
    /// Not an address; nothing recorded. Carries what to tell the person.
    InvalidEmail(&'static str),
    /// Unknown tenant, or the store failed.
    Refused(LoginFailure),
}

impl Gatehouse {
    /// Finds the SSO connection for `email` at `slug`.
    pub async fn discover(&self, slug: &TenantSlug, email: &str, client: &ClientInfo) -> Discovery {
        let tenant = match self.tenant_for_login(slug).await {
            Ok(tenant) => tenant,
            Err(failure) => return Discovery::Refused(failure),
        };
        let email = match normalize_email(email) {
            Ok(email) => email,
            Err(message) => return Discovery::InvalidEmail(message),
        };
        if let Some(connection_id) = sso_connection_for(&tenant, &email) {
            return Discovery::Connection(connection_id);
        }
        let domain = email
            .rsplit_once('@')
            .map(|(_, d)| d.to_owned())
            .unwrap_or_default();

        if let Some(ip) = &client.ip {
            let bucket = self
                .key
                .mac_hex("rate-limit", &format!("discovery-ip:{ip}"));
            match self
                .rate_limits
                .hit(&bucket, MISS_WINDOW_SECS)
                .await
            {
                Ok(hits) if hits > MAX_MISSES_PER_IP => {
                    tracing::warn!(tenant = %slug, "home-realm discovery misses over the limit; not recorded");
                    return Discovery::NoMatch {
                        domain,
                        attempt_id: None,
                    };
                }
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "cannot count the discovery rate limit"),
            }
        }
        let attempt_id = match self
            .start_attempt_by(slug, None, None, "discovery", client)
            .await
        {
            Ok(id) => id,
            Err(failure) => return Discovery::Refused(failure),
        };
        let detail = format!("no SSO connection of the tenant takes the domain {domain}");
        self.fail(attempt_id, DOMAIN_NOT_FOUND, &detail, Some(email), client)
            .await;
        Discovery::NoMatch {
            domain,
            attempt_id: Some(attempt_id),
        }
    }
}
