use gatehouse_core::projections::{ActorKind, AuditEntry, TargetKind};
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
    /// `newest` (default) or `oldest` first by time, or `commit`: oldest first in the order
    /// the entries were committed (their `position`). `commit` with a `cursor` lists what was
    /// recorded after that cursor, whatever its time: a SIEM polls with the `next_cursor` of its
    /// last answer and never misses an entry, whatever order concurrent writers commit in.
    pub order: Option<String>,
    /// `next_cursor` of the previous answer, or an event's `cursor` to continue after that
    /// event (opaque).
    pub cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
}

/// The value of `schema` in every audit event of this shape.
pub const AUDIT_EVENT_SCHEMA: &str = "gatehouse.audit.event/1";

/// One audit event, in the stable, versioned shape shared by the listing and the exports.
/// Fields are only ever added to a version; a renamed or removed field, or a changed meaning,
/// is a new `schema` version. Absent values are `null`, never omitted.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    /// Version of this shape: `gatehouse.audit.event/1`.
    #[schema(example = "gatehouse.audit.event/1")]
    pub schema: &'static str,
    /// Unique, stable id of the event (`aggregate:id:sequence`).
    #[schema(example = "login_attempt:4f6c2a51-8a3e-4a0f-9d0e-2b7f5d0c9b1e:2")]
    pub id: String,
    /// Position in the tenant's audit hash chain (1, 2, 3... with no gaps, in commit order); the
    /// position `audit/verify` reports problems at.
    pub position: i64,
    /// Cursor just past this event: as `cursor`, a listing continues after it (with
    /// `order=commit`, from everything recorded after it).
    pub cursor: String,
    /// When it happened (RFC 3339, UTC, milliseconds).
    #[schema(example = "2026-12-04T10:15:30.123Z")]
    pub time: String,
    /// Tenant slug.
    pub tenant: String,
    /// Dotted, past-tense type. Logins: `login.started`, `login.succeeded`, `login.failed`,
    /// `login.code_requested`, `login.code_sent`, `login.code_wrong`. Sessions:
    /// `session.started`, `session.ended`. Users: `user.provisioned`, `user.profile_updated`.
    /// Configuration: `tenant.created`, `tenant.connection.configured`,
    /// `tenant.connection.warning_raised`, `tenant.connection.removed`,
    /// `tenant.login_policy.changed`. Credentials: `credential.created`, `credential.revoked`.
    #[serde(rename = "type")]
    #[schema(example = "login.failed")]
    pub kind: String,
    /// Who caused it.
    pub actor: AuditActor,
    /// What it acted on.
    pub target: AuditTarget,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// Protocol of the connection (`oidc`, `saml`, `oauth2`, `cas`...).
    pub protocol: Option<String>,
    /// Connection id.
    pub connection_id: Option<String>,
    /// Email of the person involved (lowercased).
    pub email: Option<String>,
    /// Gatehouse user id of the person involved.
    pub user_id: Option<String>,
    /// Client IP of the browser (login and session events).
    pub client_ip: Option<String>,
    /// Browser user agent (login and session events).
    pub user_agent: Option<String>,
    /// Login attempt id (login and session events): ties every step of one sign-in together,
    /// and is the id shown to the person on an error page.
    pub attempt_id: Option<String>,
    /// Id of the API or browser request that caused it (the `X-Request-Id` answer header).
    pub request_id: Option<String>,
}

/// Who caused an audit event.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditActor {
    /// `person` (someone signing in, or a signed-in user), `admin_credential` (an admin API
    /// credential) or `system` (Gatehouse itself: expiries, start-up work).
    #[schema(value_type = ActorKindSchema)]
    pub kind: ActorKind,
    /// The credential id for `admin_credential`; the user id for a `person` once known (a
    /// person not signed in yet is known by `email` and `attempt_id`); null for `system`.
    pub id: Option<String>,
}

/// What an audit event acted on.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditTarget {
    /// `tenant` (its settings), `connection` (an SSO connection; also what a login signs in
    /// through), `user`, `session`, `credential` or `audit_log`.
    #[schema(value_type = TargetKindSchema)]
    pub kind: TargetKind,
    /// Its id: tenant slug, connection id, user id, session id, credential id, or the slug of
    /// the audit log read.
    pub id: Option<String>,
}

/// The kinds of actor (the OpenAPI view of `ActorKind`).
#[derive(ToSchema)]
#[schema(as = AuditActorKind)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // documentation only
pub enum ActorKindSchema {
    Person,
    AdminCredential,
    System,
}

/// The kinds of target (the OpenAPI view of `TargetKind`).
#[derive(ToSchema)]
#[schema(as = AuditTargetKind)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // documentation only
pub enum TargetKindSchema {
    Tenant,
    Connection,
    User,
    Session,
    Credential,
    AuditLog,
}

/// How an audit event ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditOutcome {
    /// `succeeded` or `failed` on the events that end a login attempt (`login.succeeded`,
    /// `login.failed`); null on events that record a step or a change.
    #[schema(example = "failed")]
    pub result: Option<String>,
    /// Stable reason code: why a login failed (`email_domain_not_allowed`, `state_mismatch`,
    /// `state_reused`, `id_token_invalid`, `idp_error`, `idp_unreachable`, `expired`...), why a
    /// session ended, or `code_wrong`.
    pub reason: Option<String>,
    /// Safe, human-readable detail (never a secret or a token).
    pub detail: Option<String>,
}

impl From<AuditEntry> for AuditEvent {
    fn from(entry: AuditEntry) -> Self {
        let time = chrono::DateTime::from_timestamp_millis(entry.time_ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let (actor_kind, actor_id) = entry.actor_parts();
        let (target_kind, target_id) = entry.target();
        AuditEvent {
            schema: AUDIT_EVENT_SCHEMA,
            cursor: entry.cursor().encode(),
            id: entry.event_key,
            position: entry.position,
            time,
            tenant: entry.tenant,
            kind: entry.kind,
            actor: AuditActor {
                kind: actor_kind,
                id: actor_id,
            },
            target: AuditTarget {
                kind: target_kind,
                id: target_id,
            },
            outcome: AuditOutcome {
                result: entry.outcome,
                reason: entry.reason,
                detail: entry.detail,
            },
            protocol: entry.protocol,
            connection_id: entry.connection_id,
            email: entry.email,
            user_id: entry.user_id,
            client_ip: entry.client_ip,
            user_agent: entry.user_agent,
            attempt_id: entry.attempt_id,
            request_id: entry.request_id,
        }
    }
}

/// A page of audit events.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Events, in the requested order.
    pub events: Vec<AuditEvent>,
    /// Pass as `cursor` for the next page. By time (`newest`, `oldest`): null on the last page.
    /// In commit order: always set, to poll for what is recorded later.
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
