//! Audit counts per hour or day, for a dashboard.

use actix_web::{get, web, HttpRequest, HttpResponse};
use gatehouse_core::projections::audit_summary::{
    summarize, SummaryBucket, SummaryError, MAX_BUCKETS,
};

use crate::auth::AuditReader;
use crate::dto::audit_summary::{Summary, SummaryQuery};
use crate::error::{ApiError, Problem};
use crate::routes::audit::audit_filter;
use crate::state::AppState;

/// Parameters of `GET .../audit/events` that do not apply to a summary.
const PAGING: &[&str] = &["order", "cursor", "limit"];

/// Counts of the tenant's audit entries per hour or per day over `from`..`to`, by outcome, by
/// reason code and by connection, with totals: grouped by the database, every bucket present.
/// Buckets are aligned to UTC (whole hours, midnight UTC); the first and last may be partial,
/// counting only entries inside the range. At most 1000 buckets per request. The filters of
/// `GET .../audit/events` (`type` exact or prefix, `outcome`, `reason`, `email`, `user`,
/// `connection`, `protocol`, `client_ip`) narrow what is counted.
#[utoipa::path(tag = "audit", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Tenant slug"), SummaryQuery),
    responses(
        (status = 200, body = Summary),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
#[get("/api/v1/tenants/{slug}/audit/summary")]
pub async fn audit_summary(
    state: web::Data<AppState>,
    reader: AuditReader,
    slug: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    reader.record(&state).await?;
    state.gatehouse.tenant(&slug).await?;
    let mut extra = vec!["bucket"];
    extra.extend_from_slice(PAGING);
    let (filter, extras) = audit_filter(&slug, request.query_string(), &extra)?;
    if let Some((name, _)) = extras
        .iter()
        .find(|(k, _)| PAGING.contains(&k.as_str()))
    {
        return Err(ApiError::invalid(
            &format!("/{name}"),
            "a summary counts the whole range; paging parameters do not apply",
        ));
    }
    let bucket = match extras
        .iter()
        .find(|(k, _)| k == "bucket")
    {
        None => return Err(ApiError::invalid("/bucket", "is required: hour or day")),
        Some((_, value)) => SummaryBucket::parse(value)
            .ok_or_else(|| ApiError::invalid("/bucket", "must be hour or day"))?,
    };
    let (Some(from_ms), Some(to_ms)) = (filter.from_ms, filter.to_ms) else {
        let missing = if filter.from_ms.is_none() {
            "/from"
        } else {
            "/to"
        };
        return Err(ApiError::invalid(missing, "is required: an RFC 3339 time"));
    };
    let buckets = bucket.count(from_ms, to_ms);
    if buckets > MAX_BUCKETS {
        return Err(ApiError::invalid(
            "/to",
            format!(
                "the range spans {buckets} buckets of one {}; at most {MAX_BUCKETS} are served \
                 (narrow the range, or count by day)",
                bucket.as_str()
            ),
        ));
    }

    let summary = summarize(state.gatehouse.db(), &filter, bucket)
        .await
        .map_err(|e| match e {
            SummaryError::Store(store) => ApiError::Unavailable(store),
            other => ApiError::invalid("/to", other.to_string()),
        })?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(Summary::new(slug.into_inner(), from_ms, to_ms, summary)))
}
