//! Admin API credentials (create, list, revoke), the platform log, and the access logs that
//! record every read of an audit log.

use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use gatehouse_core::projections::{access_scope, scope_page, PLATFORM_SCOPE};
use gatehouse_core::service::{audit_read_filters, CredentialAdminError, Issuer, NewCredential};

use crate::auth::{AuditReader, Caller, PlatformAdmin, ReadFacts};
use crate::dto::credentials::{
    CreateCredential, Credential, CredentialQuery, Credentials, IssuedCredential, LogPage, LogQuery,
};
use crate::error::{ApiError, Problem};
use crate::state::{AppState, RequestId};

impl From<CredentialAdminError> for ApiError {
    fn from(error: CredentialAdminError) -> Self {
        match error {
            CredentialAdminError::Invalid { field, detail } => ApiError::Invalid { field, detail },
            CredentialAdminError::NotFound(what) => ApiError::NotFound(what),
            CredentialAdminError::Forbidden(why) => ApiError::Forbidden(why),
            CredentialAdminError::Store(store) => ApiError::Unavailable(store),
        }
    }
}

/// Creates an admin API credential and returns its token, shown this once (only its SHA-256 is
/// stored). A platform admin may create any role; a tenant admin only `auditor` credentials of
/// its own tenant (another role is a 403, another tenant a 404); an auditor nothing (403).
/// Recorded as `credential.created` in the tenant's audit log (platform admins: the platform
/// log).
#[utoipa::path(tag = "credentials", request_body = CreateCredential, security(("bearer" = [])),
    responses(
        (status = 201, body = IssuedCredential),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
#[post("/api/v1/credentials")]
pub async fn create_credential(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    body: web::Json<CreateCredential>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let input = NewCredential {
        role: body.role,
        tenant: body.tenant,
        label: body.label,
        expires_at: body.expires_at,
    };
    let issued = state
        .gatehouse
        .credential_admin()
        .create(&Issuer::Credential(caller.grant), input, Some(request_id.0))
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(IssuedCredential {
            credential: Credential::from(issued.credential),
            token: issued.token.to_string(),
        }))
}

/// The credentials the caller may manage, oldest first, without tokens: all (or one tenant's)
/// for a platform admin, its own tenant's for a tenant admin; auditors get 403.
#[utoipa::path(tag = "credentials", security(("bearer" = [])), params(CredentialQuery),
    responses(
        (status = 200, body = Credentials),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
#[get("/api/v1/credentials")]
pub async fn list_credentials(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<CredentialQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let credentials = state
        .gatehouse
        .credential_admin()
        .list(&Issuer::Credential(caller.grant), query.tenant.as_deref())
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(Credentials {
            credentials: credentials
                .into_iter()
                .map(Credential::from)
                .collect(),
        }))
}

/// Revokes a credential: its token is refused from the next request on, on every node.
/// Revoking a revoked credential changes nothing. A tenant admin may revoke its tenant's
/// auditors only (another of its tenant's credentials is a 403; any other credential a 404).
/// Recorded as `credential.revoked`.
#[utoipa::path(tag = "credentials", security(("bearer" = [])),
    params(("id" = String, Path, description = "Credential id")),
    responses(
        (status = 204),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
#[delete("/api/v1/credentials/{id}")]
pub async fn revoke_credential(
    state: web::Data<AppState>,
    caller: Caller,
    request_id: RequestId,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .gatehouse
        .credential_admin()
        .revoke(&Issuer::Credential(caller.grant), &id, Some(request_id.0))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The tenant's access log, newest first: one `audit.read` entry per call of an audit read
/// route of this tenant (this one included) with the credential, the route and its filters.
#[utoipa::path(tag = "audit", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Tenant slug"), LogQuery),
    responses(
        (status = 200, body = LogPage),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
#[get("/api/v1/tenants/{slug}/audit/reads")]
pub async fn tenant_reads(
    state: web::Data<AppState>,
    reader: AuditReader,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    reader.record(&state).await?;
    page(&state, &access_scope(reader.slug()), query.into_inner()).await
}

/// The platform log, newest first: `credential.created` and `credential.revoked` of platform
/// admin credentials. Platform admins only.
#[utoipa::path(tag = "audit", security(("bearer" = [])), params(LogQuery),
    responses(
        (status = 200, body = LogPage),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
#[get("/api/v1/platform/audit/events")]
pub async fn platform_events(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    req: HttpRequest,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    record_platform_read(&state, &admin, &req).await?;
    page(&state, PLATFORM_SCOPE, query.into_inner()).await
}

/// The platform log's access log, newest first: every read of the platform log and of this
/// log. Platform admins only.
#[utoipa::path(tag = "audit", security(("bearer" = [])), params(LogQuery),
    responses(
        (status = 200, body = LogPage),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
#[get("/api/v1/platform/audit/reads")]
pub async fn platform_reads(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    req: HttpRequest,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    record_platform_read(&state, &admin, &req).await?;
    page(&state, &access_scope(PLATFORM_SCOPE), query.into_inner()).await
}

async fn record_platform_read(
    state: &AppState,
    admin: &PlatformAdmin,
    req: &HttpRequest,
) -> Result<(), ApiError> {
    let read = ReadFacts::of(req);
    state
        .gatehouse
        .record_audit_read(
            &admin.grant,
            PLATFORM_SCOPE,
            &read.route,
            audit_read_filters(&read.filters),
            read.request_id,
        )
        .await?;
    Ok(())
}

async fn page(state: &AppState, scope: &str, query: LogQuery) -> Result<HttpResponse, ApiError> {
    let before = match query.cursor.as_deref() {
        None => None,
        Some(cursor) => Some(
            cursor
                .parse::<i64>()
                .ok()
                .filter(|c| *c > 0)
                .ok_or_else(|| ApiError::invalid("/cursor", "not a cursor from this API"))?,
        ),
    };
    let limit = match query.limit {
        None => 50,
        Some(limit @ 1..=200) => limit,
        Some(_) => return Err(ApiError::invalid("/limit", "must be between 1 and 200")),
    };
    let (entries, next) = scope_page(state.gatehouse.db(), scope, before, limit).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(LogPage {
            entries: entries
                .into_iter()
                .map(Into::into)
                .collect(),
            next_cursor: next.map(|id| id.to_string()),
        }))
}
