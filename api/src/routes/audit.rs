//! The audit log API for compliance readers.

use actix_web::{get, web, HttpResponse};
use gatehouse_core::projections::AuditFilter;

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
