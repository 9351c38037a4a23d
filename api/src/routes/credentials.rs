//! Admin API credentials (create, list, revoke), the platform log, and the access logs that
//! record every read of an audit log.

use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use gatehouse_core::projections::{access_scope, audit_chain, AuditCursor, PLATFORM_SCOPE};
use gatehouse_core::service::{audit_read_filters, CredentialAdminError, Issuer, NewCredential};
use gatehouse_core::store::StoreError;

use crate::auth::{AuditReader, Caller, PlatformAdmin, ReadFacts};
use crate::dto::audit::{AuditEvent, AuditPage, AuditQuery};
use crate::dto::credentials::{
    CreateCredential, Credential, CredentialQuery, Credentials, IssuedCredential,
};
use crate::error::{ApiError, Problem};
use crate::routes::audit::{audit_filter, ChainVerification};
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

/// The tenant's access log, in the shape and with the filters, order and cursors of
/// `.../audit/events`: one `audit.read` entry per call of an audit read route of this tenant
/// (this one included), with the credential (`actor`), the log read (`target`) and, in
/// `outcome.detail`, the method, route and filters (values that may name a person withheld as
/// `*`).
#[utoipa::path(tag = "audit", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Tenant slug"), AuditQuery),
    responses(
        (status = 200, body = AuditPage),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
#[get("/api/v1/tenants/{slug}/audit/reads")]
pub async fn tenant_reads(
    state: web::Data<AppState>,
    reader: AuditReader,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    reader.record(&state).await?;
    page(&state, &access_scope(reader.slug()), &req).await
}

/// Verifies the tenant's access log: its own hash chain and signed checkpoints, exactly as
/// `.../audit/verify` does for the tenant's log (the `tenant` of the answer is `<slug>.access`).
#[utoipa::path(tag = "audit", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Tenant slug")),
    responses(
        (status = 200, body = ChainVerification),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json")))]
#[get("/api/v1/tenants/{slug}/audit/reads/verify")]
pub async fn verify_tenant_reads(
    state: web::Data<AppState>,
    reader: AuditReader,
) -> Result<HttpResponse, ApiError> {
    reader.record(&state).await?;
    let Some(chain) = audit_chain::installed() else {
        return Err(ApiError::Unavailable(StoreError::Database(
            "the audit chain configuration is not installed".into(),
        )));
    };
    let scope = access_scope(reader.slug());
    let report = audit_chain::verify(state.gatehouse.db(), &scope, &chain.trusted).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(ChainVerification::from(report)))
}

/// The platform log, as `.../audit/events`: `credential.created` and `credential.revoked` of
/// platform admin credentials. Platform admins only.
#[utoipa::path(tag = "audit", security(("bearer" = [])), params(AuditQuery),
    responses(
        (status = 200, body = AuditPage),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
#[get("/api/v1/platform/audit/events")]
pub async fn platform_events(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    record_platform_read(&state, &admin, &req).await?;
    page(&state, PLATFORM_SCOPE, &req).await
}

/// The platform log's access log, as `.../audit/events`: every read of the platform log and of
/// this log. Platform admins only.
#[utoipa::path(tag = "audit", security(("bearer" = [])), params(AuditQuery),
    responses(
        (status = 200, body = AuditPage),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
#[get("/api/v1/platform/audit/reads")]
pub async fn platform_reads(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    record_platform_read(&state, &admin, &req).await?;
    page(&state, &access_scope(PLATFORM_SCOPE), &req).await
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

/// One page of the log whose tenant key is `scope`, read like a tenant's audit events.
async fn page(state: &AppState, scope: &str, req: &HttpRequest) -> Result<HttpResponse, ApiError> {
    let (filter, _) = audit_filter(scope, req.query_string(), &[])?;
    let page = state
        .gatehouse
        .audit()
        .page(&filter)
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(AuditPage {
            events: page
                .entries
                .into_iter()
                .map(AuditEvent::from)
                .collect(),
            next_cursor: page.next.map(AuditCursor::encode),
        }))
}
