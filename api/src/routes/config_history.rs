//! A tenant's SSO configuration at any past moment, and what changed between two moments with
//! who changed it: computed from the tenant's events, never from a read model.

use actix_web::{get, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use gatehouse_core::service::ConfigHistoryError;

use crate::auth::AuditReader;
use crate::dto::config_history::{ConfigAt, ConfigAtQuery, ConfigDiffBody, ConfigDiffQuery};
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// The tenant's SSO configuration as it was at a moment: tenant settings, connections and
/// login policy, folded from the tenant's events recorded up to `at` (now by default). Secret
/// fields are never shown: each appears as `<field>_set: true|false`, as in
/// `GET .../connections/{id}`. A moment before the tenant was created, or in the future, is a
/// 422 problem on `/at` (the detail gives the creation time).
#[utoipa::path(tag = "tenants", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Tenant slug"), ConfigAtQuery),
    responses(
        (status = 200, body = ConfigAt),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
#[get("/api/v1/tenants/{slug}/config")]
pub async fn config_at(
    state: web::Data<AppState>,
    reader: AuditReader,
    slug: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    reader.record(&state).await?;
    let now = Utc::now();
    let params = read_query(request.query_string(), &["at"])?;
    let at = moment(&params, "at", now)?.unwrap_or(now);

    let snapshot = state
        .gatehouse
        .config_at(&slug, at)
        .await
        .map_err(|e| history_error(e, "/at"))?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(ConfigAt::from(snapshot)))
}

/// What changed in the tenant's SSO configuration after `from` and up to `to` (now by
/// default), field by field as JSON pointers into the document of `GET .../config`, each with
/// its old and new value and the event that made it: who (the admin credential id) and when.
/// Secrets show only as `added`, `changed` or `removed`, with `secret: true` and no value. A
/// `from` before the tenant existed starts from nothing (its creation shows as added fields); a
/// `to` before it, a `to` before `from`, or a moment in the future is a 422 problem.
#[utoipa::path(tag = "tenants", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Tenant slug"), ConfigDiffQuery),
    responses(
        (status = 200, body = ConfigDiffBody),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
#[get("/api/v1/tenants/{slug}/config/diff")]
pub async fn config_diff(
    state: web::Data<AppState>,
    reader: AuditReader,
    slug: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    reader.record(&state).await?;
    let now = Utc::now();
    let params = read_query(request.query_string(), &["from", "to"])?;
    let from = moment(&params, "from", now)?
        .ok_or_else(|| ApiError::invalid("/from", "is required: an RFC 3339 time"))?;
    let to = moment(&params, "to", now)?.unwrap_or(now);
    if to < from {
        return Err(ApiError::invalid("/to", "must not be before from"));
    }

    let diff = state
        .gatehouse
        .config_diff(&slug, from, to)
        .await
        .map_err(|e| history_error(e, "/to"))?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(ConfigDiffBody::from(diff)))
}

/// Reads the query string: each of `known` at most once, nothing else.
fn read_query(query: &str, known: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let mut params: Vec<(String, String)> = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let field = format!(
            "/{}",
            key.chars()
                .take(64)
                .collect::<String>()
                .replace('~', "~0")
                .replace('/', "~1")
        );
        if !known.contains(&key.as_ref()) {
            let detail = format!("not a parameter of this route; known: {}", known.join(", "));
            return Err(ApiError::invalid(&field, detail));
        }
        if params.iter().any(|(k, _)| *k == key) {
            return Err(ApiError::invalid(&field, "given more than once"));
        }
        params.push((key.into_owned(), value.into_owned()));
    }
    Ok(params)
}

/// The RFC 3339 time in parameter `name`, if given; never after `now`.
fn moment(
    params: &[(String, String)],
    name: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some((_, text)) = params.iter().find(|(k, _)| k == name) else {
        return Ok(None);
    };
    let field = format!("/{name}");
    let time = DateTime::parse_from_rfc3339(text)
        .map_err(|_| ApiError::invalid(&field, "an RFC 3339 time such as 2026-12-04T10:00:00Z"))?
        .with_timezone(&Utc);
    if time > now {
        return Err(ApiError::invalid(
            &field,
            "is in the future; omit it for now",
        ));
    }
    Ok(Some(time))
}

fn history_error(error: ConfigHistoryError, field: &str) -> ApiError {
    match error {
        ConfigHistoryError::TenantNotFound => ApiError::NotFound("tenant"),
        ConfigHistoryError::BeforeCreation { created } => ApiError::invalid(
            field,
            format!(
                "the tenant did not exist yet at this time; it was created at {}",
                created.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            ),
        ),
        ConfigHistoryError::Store(store) => ApiError::Unavailable(store),
    }
}
