//! The audit log API for compliance readers.

use actix_web::{get, web, HttpResponse};
use gatehouse_core::projections::{audit_chain, AuditFilter};

use crate::auth::Admin;
use crate::dto::audit::{AuditEvent, AuditPage, AuditQuery};
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// A tenant's audit events, newest first: login attempts with their outcome and reason,
/// sessions, and configuration changes with the acting credential. Served from the audit
/// read model with cursor pagination.
#[utoipa::path(tag = "audit", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Tenant slug"), AuditQuery),
    responses(
        (status = 200, body = AuditPage),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
#[get("/api/v1/tenants/{slug}/audit/events")]
pub async fn list_events(
    state: web::Data<AppState>,
    _admin: Admin,
    slug: web::Path<String>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    state.gatehouse.tenant(&slug).await?;
    let filter = AuditFilter {
        tenant: slug.into_inner(),
        from_ms: parse_time(query.from.as_deref(), "from")?,
        to_ms: parse_time(query.to.as_deref(), "to")?,
        kind: match query.kind {
            Some(kind) if valid_kind(&kind) => Some(kind),
            Some(_) => return Err(ApiError::invalid("/type", "an event type such as login.failed, or a prefix such as login.")),
            None => None,
        },
        email: query.email.filter(|e| !e.is_empty()),
        outcome: match query.outcome.as_deref() {
            None => None,
            Some(o @ ("succeeded" | "failed")) => Some(o.to_owned()),
            Some(_) => return Err(ApiError::invalid("/outcome", "must be succeeded or failed")),
        },
        before_id: match query.cursor.as_deref() {
            None => None,
            Some(cursor) => Some(
                cursor
                    .parse::<i64>()
                    .ok()
                    .filter(|c| *c > 0)
                    .ok_or_else(|| ApiError::invalid("/cursor", "not a cursor from this API"))?,
            ),
        },
        limit: match query.limit {
            None => 50,
            Some(limit @ 1..=200) => limit,
            Some(_) => return Err(ApiError::invalid("/limit", "must be between 1 and 200")),
        },
    };
    let page = state.gatehouse.audit().page(&filter).await?;
    Ok(HttpResponse::Ok().json(AuditPage {
        events: page.entries.into_iter().map(AuditEvent::from).collect(),
        next_cursor: page.next_before_id.map(|id| id.to_string()),
    }))
}

fn parse_time(value: Option<&str>, field: &str) -> Result<Option<i64>, ApiError> {
    value
        .map(|text| {
            chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| t.timestamp_millis())
                .map_err(|_| ApiError::invalid(&format!("/{field}"), "must be an RFC 3339 time"))
        })
        .transpose()
}

fn valid_kind(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= 64
        && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
}

/// What the identity provider sent for a refused attempt, decoded by the protocol plugin with
/// signature values, certificates and attribute values masked; kept for 7 days after the
/// attempt. For the tenant's administrators only: never shown to the person signing in.
#[utoipa::path(tag = "audit", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Tenant slug"),
           ("attempt_id" = String, Path, description = "Login attempt id")),
    responses(
        (status = 200, body = crate::dto::audit::AttemptDiagnostics),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
#[get("/api/v1/tenants/{slug}/attempts/{attempt_id}/diagnostics")]
pub async fn attempt_diagnostics(
    state: web::Data<AppState>,
    _admin: Admin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (slug, attempt_id) = path.into_inner();
    let found = state.gatehouse.attempt_diagnostics(&slug, &attempt_id).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(crate::dto::audit::AttemptDiagnostics::from(found)))
}

/// The result of verifying a tenant's audit hash chain.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ChainVerification {
    /// Tenant slug.
    pub tenant: String,
    /// True when every entry, every checkpoint signature and the chain head are intact.
    pub ok: bool,
    /// Entries recomputed (up to the first problem).
    pub entries_checked: u64,
    /// Checkpoints whose Ed25519 signature and head were checked.
    pub checkpoints_checked: u64,
    /// Chain position of the last entry checked.
    pub head_position: i64,
    /// Hex SHA-256 link hash at that position.
    pub head_hash: String,
    /// Position of the last signed checkpoint. Entries removed from the end after it are
    /// detected only through the recorded chain head.
    pub last_checkpoint_position: Option<i64>,
    /// The first problem, when `ok` is false.
    pub problem: Option<ChainProblem>,
}

/// The first problem found in a chain.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ChainProblem {
    /// `altered` (content differs from what was chained), `removed` (missing entry or position
    /// gap), `inserted` (an entry in no chain, or whose link does not fit and that no event
    /// recorded), `reordered`, `truncated` (entries removed from the end),
    /// `checkpoint_signature_invalid`, `checkpoint_unknown_key`, `checkpoint_mismatch`, or
    /// `unprojected` (committed events of this store in no chain yet).
    #[schema(example = "altered")]
    pub kind: String,
    /// Chain position of the bad entry or checkpoint.
    pub position: Option<i64>,
    /// Its audit event id (`id` in the events list), when the entry exists.
    pub entry_id: Option<String>,
    /// Its event key, when known.
    pub event_key: Option<String>,
    /// What is wrong.
    pub detail: String,
}

/// Recomputes the tenant's audit hash chain from the stored entries, checks every signed
/// checkpoint (Ed25519, against the configured key and the older keys kept for rotation) and
/// that each checkpoint's head matches the recomputed chain, and names the first entry that
/// was altered, removed, inserted or reordered. A broken chain is a 200 answer with `ok: false`.
#[utoipa::path(tag = "audit", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Tenant slug")),
    responses(
        (status = 200, body = ChainVerification),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json")))]
#[get("/api/v1/tenants/{slug}/audit/verify")]
pub async fn verify_chain(
    state: web::Data<AppState>,
    _admin: Admin,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.gatehouse.tenant(&slug).await?;
    let Some(chain) = audit_chain::installed() else {
        return Err(ApiError::Unavailable(gatehouse_core::store::StoreError::Database(
            "the audit chain configuration is not installed".into(),
        )));
    };
    let report = audit_chain::verify(state.gatehouse.db(), &slug, &chain.trusted).await?;
    let problem = report.problem.map(|p| ChainProblem {
        kind: serde_json::to_value(p.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        position: p.position,
        entry_id: p.entry_id.map(|id| id.to_string()),
        event_key: p.event_key,
        detail: p.detail,
    });
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(ChainVerification {
            tenant: report.tenant,
            ok: report.ok,
            entries_checked: report.entries_checked,
            checkpoints_checked: report.checkpoints_checked,
            head_position: report.head_position,
            head_hash: report.head_hash,
            last_checkpoint_position: report.last_checkpoint_position,
            problem,
        }))
}
