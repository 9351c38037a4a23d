//! Tenant administration.

use actix_web::{delete, get, post, put, web, HttpResponse};
use gatehouse_core::service::{ConnectionInput, LoginPolicyInput, NewTenant};

use crate::auth::{PlatformAdmin, TenantAdmin};
use crate::dto::tenants::{Connection, CreateTenant, LoginPolicy, PutConnection, Tenant};
use crate::error::{ApiError, Problem};
use crate::state::{AppState, RequestId};

/// Creates a tenant reachable at `/{slug}`.
#[utoipa::path(tag = "tenants", request_body = CreateTenant, security(("bearer" = [])),
    responses(
        (status = 201, body = Tenant),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
#[post("/api/v1/tenants")]
pub async fn create_tenant(
    state: web::Data<AppState>,
    admin: PlatformAdmin,
    request_id: RequestId,
    body: web::Json<CreateTenant>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let input = NewTenant {
        slug: body.slug,
        display_name: body.display_name,
        app_url: body.app_url,
        return_origins: body.return_origins,
    };
    let tenant = state
        .gatehouse
        .create_tenant(input, admin.actor(), Some(request_id.0))
        .await?;
    Ok(HttpResponse::Created().json(Tenant::from(tenant)))
}

/// A tenant and its connections (never their secrets).
#[utoipa::path(tag = "tenants", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Tenant slug")),
    responses(
        (status = 200, body = Tenant),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
#[get("/api/v1/tenants/{slug}")]
pub async fn get_tenant(
    state: web::Data<AppState>,
    _admin: TenantAdmin,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = state.gatehouse.tenant(&slug).await?;
    Ok(HttpResponse::Ok().json(Tenant::from(tenant)))
}

/// Creates or replaces an SSO connection. The config is validated by the protocol's plugin
/// before anything is recorded; secrets are encrypted before they reach the event store.
#[utoipa::path(tag = "connections", request_body = PutConnection, security(("bearer" = [])),
    params(
        ("slug" = String, Path, description = "Tenant slug"),
        ("id" = String, Path, description = "Connection id: 1-63 lowercase letters, digits, hyphens")),
    responses(
        (status = 200, body = Connection),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
#[put("/api/v1/tenants/{slug}/connections/{id}")]
pub async fn put_connection(
    state: web::Data<AppState>,
    admin: TenantAdmin,
    request_id: RequestId,
    path: web::Path<(String, String)>,
    body: web::Json<PutConnection>,
) -> Result<HttpResponse, ApiError> {
    let (slug, id) = path.into_inner();
    let body = body.into_inner();
    let input = ConnectionInput {
        protocol: body.protocol,
        label: body.label,
        config: body.config,
    };
    let connection = state
        .gatehouse
        .configure_connection(&slug, &id, input, admin.actor(), Some(request_id.0))
        .await?;
    Ok(HttpResponse::Ok().json(Connection::from(connection)))
}

/// A connection, with what the identity provider's administrator needs (redirect URL,
/// scopes). The secret is never returned.
#[utoipa::path(tag = "connections", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Tenant slug"), ("id" = String, Path, description = "Connection id")),
    responses(
        (status = 200, body = Connection),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
#[get("/api/v1/tenants/{slug}/connections/{id}")]
pub async fn get_connection(
    state: web::Data<AppState>,
    _admin: TenantAdmin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (slug, id) = path.into_inner();
    let connection = state.gatehouse.connection(&slug, &id).await?;
    Ok(HttpResponse::Ok().json(Connection::from(connection)))
}

/// Removes a connection.
#[utoipa::path(tag = "connections", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Tenant slug"), ("id" = String, Path, description = "Connection id")),
    responses(
        (status = 204),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
#[delete("/api/v1/tenants/{slug}/connections/{id}")]
pub async fn delete_connection(
    state: web::Data<AppState>,
    admin: TenantAdmin,
    request_id: RequestId,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (slug, id) = path.into_inner();
    state
        .gatehouse
        .remove_connection(&slug, &id, admin.actor(), Some(request_id.0))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The tenant's login policy: standard methods offered, guests, enforced SSO for members.
/// A tenant that never set one has the default: no standard method, guests allowed, SSO
/// enforced.
#[utoipa::path(tag = "tenants", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Tenant slug")),
    responses(
        (status = 200, body = LoginPolicy),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
#[get("/api/v1/tenants/{slug}/login-policy")]
pub async fn get_login_policy(
    state: web::Data<AppState>,
    _admin: TenantAdmin,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let policy = state.gatehouse.login_policy(&slug).await?;
    Ok(HttpResponse::Ok().json(LoginPolicy::from(policy)))
}

/// Replaces the tenant's login policy. Each change is recorded as a
/// `tenant.login_policy.changed` audit event; an unchanged policy records nothing.
#[utoipa::path(tag = "tenants", request_body = LoginPolicy, security(("bearer" = [])),
    params(("slug" = String, Path, description = "Tenant slug")),
    responses(
        (status = 200, body = LoginPolicy),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
#[put("/api/v1/tenants/{slug}/login-policy")]
pub async fn put_login_policy(
    state: web::Data<AppState>,
    admin: TenantAdmin,
    request_id: RequestId,
    slug: web::Path<String>,
    body: web::Json<LoginPolicy>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let input = LoginPolicyInput {
        standard_methods: body.standard_methods,
        guests_allowed: body.guests_allowed,
        enforce_sso: body.enforce_sso,
        link_verified_email: body.link_verified_email,
    };
    let policy = state
        .gatehouse
        .set_login_policy(&slug, input, admin.actor(), Some(request_id.0))
        .await?;
    Ok(HttpResponse::Ok().json(LoginPolicy::from(policy)))
}
