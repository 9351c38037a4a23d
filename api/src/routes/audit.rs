//! The audit log API for compliance readers.

use std::net::IpAddr;

use actix_web::{get, web, HttpRequest, HttpResponse};
use gatehouse_core::ids::ConnectionId;
use gatehouse_core::projections::{
    audit_chain, AuditCursor, AuditFilter, AuditOrder, KindFilter, MAX_PAGE,
};

use crate::auth::AuditReader;
use crate::dto::audit::{AuditEvent, AuditPage, AuditQuery};
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// A tenant's audit events in the shape `gatehouse.audit.event/1`, newest first by default:
/// login attempts with their outcome and reason, sessions, and configuration and credential
/// changes with the acting credential. Served from the audit read model with cursor
/// pagination; `order=commit` lists oldest first in commit order, and with the `next_cursor`
/// of the previous answer gives what was recorded since (the tail a SIEM polls with).
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
    reader: AuditReader,
    slug: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    reader.record(&state).await?;
    state.gatehouse.tenant(&slug).await?;
    let (filter, _) = audit_filter(&slug, request.query_string(), &[])?;

    let page = state
        .gatehouse
        .audit()
        .page(&filter)
        .await?;
    Ok(HttpResponse::Ok().json(AuditPage {
        events: page
            .entries
            .into_iter()
            .map(AuditEvent::from)
            .collect(),
        next_cursor: page.next.map(AuditCursor::encode),
    }))
}

/// The query parameters [`audit_filter`] reads (documented by [`AuditQuery`]).
pub const FILTER_PARAMETERS: &[&str] = &[
    "from",
    "to",
    "type",
    "outcome",
    "reason",
    "email",
    "user",
    "connection",
    "protocol",
    "client_ip",
    "order",
    "cursor",
    "limit",
];

/// Reads an audit filter for `tenant` from a raw query string (the parameters of
/// [`AuditQuery`]), checking every value. Parameters named in `extra` are not filters: their
/// raw values are returned, in order, for the caller to check. Any other parameter, a parameter
/// given twice, or a bad value is a 422 problem naming each field at fault (`/type`,
/// `/cursor`...); nothing a client sends leads to a 500.
pub fn audit_filter(
    tenant: &str,
    query: &str,
    extra: &[&str],
) -> Result<(AuditFilter, Vec<(String, String)>), ApiError> {
    let mut filter = AuditFilter::tenant(tenant);
    let mut extras = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut problems: Vec<(String, String)> = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let field = pointer(&key);
        if seen.contains(&key.to_string()) {
            problems.push((field, "given more than once".into()));
            continue;
        }
        seen.push(key.to_string());
        if extra.contains(&key.as_ref()) {
            extras.push((key.into_owned(), value.into_owned()));
            continue;
        }
        if let Err(detail) = read_parameter(&mut filter, &key, &value) {
            problems.push((field, detail));
        }
    }
    if let (Some(from), Some(to)) = (filter.from_ms, filter.to_ms) {
        if to <= from {
            problems.push(("/to".into(), "must be later than from".into()));
        }
    }

    match problems.len() {
        0 => Ok((filter, extras)),
        1 => {
            let (field, detail) = problems.remove(0);
            Err(ApiError::invalid(&field, detail))
        }
        _ => Err(ApiError::InvalidFields(problems)),
    }
}

/// Longest text accepted in a filter value (emails are at most 320 characters).
const MAX_VALUE: usize = 320;

fn read_parameter(filter: &mut AuditFilter, key: &str, value: &str) -> Result<(), String> {
    if value.len() > MAX_VALUE {
        return Err(format!("longer than {MAX_VALUE} characters"));
    }
    match key {
        "from" => filter.from_ms = Some(parse_time(value)?),
        "to" => filter.to_ms = Some(parse_time(value)?),
        "type" => {
            filter.kind = Some(parse_kind(value).ok_or(
                "an event type such as login.failed, or a prefix ending in a dot such as login.",
            )?)
        }
        "outcome" => {
            filter.outcome = match value {
                "succeeded" | "failed" => Some(value.to_owned()),
                _ => return Err("must be succeeded or failed".into()),
            }
        }
        "reason" => {
            filter.reason = Some(
                code(value, 64)
                    .ok_or("a reason code: 1 to 64 lowercase letters, digits and underscores")?,
            )
        }
        "email" => {
            if value.is_empty() || value.chars().any(char::is_control) {
                return Err("an email address".into());
            }
            filter.email = Some(value.to_lowercase());
        }
        "user" => {
            let id = uuid::Uuid::parse_str(value).map_err(|_| "a user id (UUID)")?;
            filter.user_id = Some(id.hyphenated().to_string());
        }
        "connection" => {
            let id = ConnectionId::parse(value).map_err(|e| format!("a connection id: {e}"))?;
            filter.connection_id = Some(id.to_string());
        }
        "protocol" => {
            filter.protocol = Some(
                code(value, 32)
                    .ok_or("a protocol name: 1 to 32 lowercase letters, digits and underscores")?,
            )
        }
        "client_ip" => {
            let ip: IpAddr = value
                .parse()
                .map_err(|_| "an IPv4 or IPv6 address")?;
            filter.client_ip = Some(ip.to_string());
        }
        "order" => {
            filter.order = match value {
                "newest" => AuditOrder::NewestFirst,
                "oldest" => AuditOrder::OldestFirst,
                "commit" => AuditOrder::Commit,
                _ => return Err("must be newest, oldest or commit".into()),
            }
        }
        "cursor" => {
            filter.cursor = Some(
                AuditCursor::decode(value)
                    .ok_or("not a cursor from this API (pass next_cursor unchanged)")?,
            )
        }
        "limit" => {
            filter.limit = match value.parse::<i64>() {
                Ok(limit @ 1..=MAX_PAGE) => Some(limit),
                _ => return Err(format!("a page size from 1 to {MAX_PAGE}")),
            }
        }
        _ => {
            return Err(format!(
                "not a parameter of this route; known: {}",
                FILTER_PARAMETERS.join(", ")
            ))
        }
    }
    Ok(())
}

/// The JSON pointer naming a query parameter (RFC 6901 escapes; a hostile name is cut short).
fn pointer(key: &str) -> String {
    let short: String = key.chars().take(64).collect();
    format!(
        "/{}",
        short
            .replace('~', "~0")
            .replace('/', "~1")
    )
}

fn parse_time(text: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| "an RFC 3339 time such as 2026-12-04T10:00:00Z".into())
}

/// An exact type (`login.failed`) or a prefix ending in a dot (`login.`, `tenant.connection.`):
/// dot-separated words of lowercase letters, digits and underscores, each starting with a
/// letter.
fn parse_kind(text: &str) -> Option<KindFilter> {
    let (body, prefix) = match text.strip_suffix('.') {
        Some(body) => (body, true),
        None => (text, false),
    };
    let words_ok = !body.is_empty()
        && text.len() <= 64
        && body.split('.').all(|word| {
            word.starts_with(|c: char| c.is_ascii_lowercase()) && code(word, 64).is_some()
        });
    match (words_ok, prefix) {
        (false, _) => None,
        (true, true) => Some(KindFilter::Prefix(text.to_owned())),
        (true, false) => Some(KindFilter::Exact(text.to_owned())),
    }
}

/// `text` when it is 1 to `max` lowercase ASCII letters, digits and underscores.
fn code(text: &str, max: usize) -> Option<String> {
    let ok = !text.is_empty()
        && text.len() <= max
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    ok.then(|| text.to_owned())
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
    reader: AuditReader,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    reader.record(&state).await?;
    let (slug, attempt_id) = path.into_inner();
    let found = state
        .gatehouse
        .attempt_diagnostics(&slug, &attempt_id)
        .await?;
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
    /// Its `id` in the events list (its event key), when the entry is in the audit log.
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
    reader: AuditReader,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    reader.record(&state).await?;
    state.gatehouse.tenant(&slug).await?;
    let Some(chain) = audit_chain::installed() else {
        return Err(ApiError::Unavailable(
            gatehouse_core::store::StoreError::Database(
                "the audit chain configuration is not installed".into(),
            ),
        ));
    };
    let report = audit_chain::verify(state.gatehouse.db(), &slug, &chain.trusted).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(ChainVerification::from(report)))
}

impl From<audit_chain::VerifyReport> for ChainVerification {
    fn from(report: audit_chain::VerifyReport) -> Self {
        let problem = report.problem.map(|p| ChainProblem {
            kind: serde_json::to_value(p.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            position: p.position,
            // The entry's `id` in the events list is its event key.
            entry_id: p.entry_id.and(p.event_key.clone()),
            event_key: p.event_key,
            detail: p.detail,
        });
        ChainVerification {
            tenant: report.tenant,
            ok: report.ok,
            entries_checked: report.entries_checked,
            checkpoints_checked: report.checkpoints_checked,
            head_position: report.head_position,
            head_hash: report.head_hash,
            last_checkpoint_position: report.last_checkpoint_position,
            problem,
        }
    }
}
