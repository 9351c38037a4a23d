use gatehouse_core::projections::AuditEntry;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

/// Filters of the audit listing (read by `routes::audit::audit_filter`; documentation only).
/// Every filter is optional and they combine with AND. A bad value, an unknown parameter or one
/// given twice is a 422 problem whose `field` names the parameter (`/type`, `/cursor`...).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // read field by field from the query string, so no field is read here
pub struct AuditQuery {
    /// Only events at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Only events before this time (RFC 3339); must be later than `from`.
    pub to: Option<String>,
    /// Event type, exact (`login.failed`) or a prefix ending in `.` (`login.`,
    /// `tenant.connection.`).
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// `succeeded` or `failed`.
    pub outcome: Option<String>,
    /// Reason code, such as `state_mismatch` or `email_domain_not_allowed`.
    pub reason: Option<String>,
    /// Email, exact match, case-insensitive.
    pub email: Option<String>,
    /// Gatehouse user id (UUID).
    pub user: Option<String>,
    /// Connection id.
    pub connection: Option<String>,
    /// Protocol of the connection (`oidc`, `saml`, `oauth2`, `cas`...).
    pub protocol: Option<String>,
    /// Client IP address (IPv4 or IPv6, any notation).
    pub client_ip: Option<String>,
    /// `newest` (default) or `oldest` first. Oldest first with a `cursor` lists what was
    /// recorded after that cursor: a SIEM polls with the `next_cursor` of its last answer and
    /// never misses an entry, whatever order concurrent writers commit in.
    pub order: Option<String>,
    /// `next_cursor` of the previous answer (opaque).
    pub cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
}

/// One audit event.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    /// Position in the tenant's log.
    pub id: String,
    /// When it happened (RFC 3339, UTC).
    pub time: String,
    /// Tenant slug.
    pub tenant: String,
    /// Dotted past-tense type: `tenant.created`, `tenant.connection.configured`,
    /// `tenant.connection.warning_raised`, `tenant.connection.removed`, `login.started`,
    /// `login.succeeded`, `login.failed`,
    /// `user.provisioned`, `user.profile_updated`, `session.started`, `session.ended`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Login attempt id (login and session events).
    pub attempt_id: Option<String>,
    /// Connection id.
    pub connection_id: Option<String>,
    /// Protocol of the connection.
    pub protocol: Option<String>,
    /// `succeeded` or `failed` on login outcomes.
    pub outcome: Option<String>,
    /// Stable reason code of a failure, such as `email_domain_not_allowed`, `state_mismatch`,
    /// `state_reused`, `id_token_invalid`, `idp_error`, `idp_unreachable`, `expired`.
    pub reason: Option<String>,
    /// Safe, human-readable detail of a failure.
    pub detail: Option<String>,
    /// Email involved.
    pub email: Option<String>,
    /// Gatehouse user id.
    pub user_id: Option<String>,
    /// Who caused it: `admin:<credential>`, `attempt:<id>`, `user:<id>` or `system`.
    pub actor: Option<String>,
    /// Client IP of the login.
    pub client_ip: Option<String>,
    /// Browser user agent of the login.
    pub user_agent: Option<String>,
}

impl From<AuditEntry> for AuditEvent {
    fn from(entry: AuditEntry) -> Self {
        let time = chrono::DateTime::from_timestamp_millis(entry.time_ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        AuditEvent {
            id: entry.id.to_string(),
            time,
            tenant: entry.tenant,
            kind: entry.kind,
            attempt_id: entry.attempt_id,
            connection_id: entry.connection_id,
            protocol: entry.protocol,
            outcome: entry.outcome,
            reason: entry.reason,
            detail: entry.detail,
            email: entry.email,
            user_id: entry.user_id,
            actor: entry.actor,
            client_ip: entry.client_ip,
            user_agent: entry.user_agent,
        }
    }
}

/// A page of audit events.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Events, in the requested order.
    pub events: Vec<AuditEvent>,
    /// Pass as `cursor` for the next page. Newest first: null on the last page. Oldest first:
    /// set once anything matched, to poll for what is recorded later.
    pub next_cursor: Option<String>,
}

/// The decoded, redacted answer of a refused attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptDiagnostics {
    /// The attempt.
    pub attempt_id: String,
    /// What the identity provider sent, decoded, with secrets and personal values masked.
    pub diagnostics: String,
    /// When it will be deleted (RFC 3339).
    pub expires_at: String,
}

impl From<gatehouse_core::service::AttemptDiagnostics> for AttemptDiagnostics {
    fn from(found: gatehouse_core::service::AttemptDiagnostics) -> Self {
        let expires_at = chrono::DateTime::from_timestamp_millis(found.expires_at_ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        AttemptDiagnostics {
            attempt_id: found.attempt_id,
            diagnostics: found.diagnostics,
            expires_at,
        }
    }
}
