//! Admin API authentication and authorization: `Authorization: Bearer <token>`, then the
//! credential's role and tenant against the route.
//!
//! Each admin handler takes one of these extractors, which decides before the handler runs:
//!
//! | extractor | platform admin | tenant admin of `{slug}` | auditor of `{slug}` | credential of another tenant |
//! | --- | --- | --- | --- | --- |
//! | [`PlatformAdmin`] (alias [`Admin`]) | yes | 403 | 403 | 403 |
//! | [`TenantAdmin`] | yes | yes | 403 | 404 |
//! | [`AuditReader`] | yes | yes | yes | 404 |
//! | [`AnyAdmin`] | yes | yes (any tenant) | 403 | |
//!
//! A tenant-scoped credential gets the very same 404 problem for another tenant's routes as
//! for a tenant that does not exist, so it can never learn whether another tenant exists; 403
//! answers only what the caller's own role does not allow. No or an unknown, revoked or
//! expired token is a 401. Nothing is cached: every request reads the credential's events.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use gatehouse_core::domain::credential::CredentialRole;
use gatehouse_core::ids::Actor;
use gatehouse_core::service::{audit_read_filters, Grant};

use crate::error::ApiError;
use crate::state::{AppState, RequestId};

/// An authenticated admin credential of any role.
pub struct Caller {
    /// What it may do.
    pub grant: Grant,
}

type Extracted<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

fn bearer(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        })
        .filter(|t| !t.is_empty() && t.len() <= 256)
}

async fn authenticate(
    state: Option<web::Data<AppState>>,
    token: Option<String>,
) -> Result<Grant, ApiError> {
    let (Some(state), Some(token)) = (state, token) else {
        return Err(ApiError::Unauthorized);
    };
    match state
        .gatehouse
        .authenticate(&token)
        .await?
    {
        Some(grant) => Ok(grant),
        None => {
            tracing::warn!("admin request with an unknown, revoked or expired token");
            Err(ApiError::Unauthorized)
        }
    }
}

fn authenticated(req: &HttpRequest) -> Extracted<Grant> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned();
    let token = bearer(req);
    Box::pin(authenticate(state, token))
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Extracted<Caller>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let grant = authenticated(req);
        Box::pin(async move {
            Ok(Caller {
                grant: grant.await?,
            })
        })
    }
}

/// A platform admin: every tenant, tenant creation, every credential. The other roles get 403.
pub struct PlatformAdmin {
    /// What it may do.
    pub grant: Grant,
}

/// The extractor of routes that only platform admins may call (the secure default for a new
/// admin route: tenant-scoped credentials are refused until the route says otherwise).
#[allow(dead_code)] // For routes being written elsewhere; the existing ones name their role.
pub type Admin = PlatformAdmin;

impl PlatformAdmin {
    /// The actor recorded on events this admin causes.
    pub fn actor(&self) -> Actor {
        self.grant.actor()
    }
}

impl FromRequest for PlatformAdmin {
    type Error = ApiError;
    type Future = Extracted<PlatformAdmin>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let grant = authenticated(req);
        Box::pin(async move {
            let grant = grant.await?;
            if grant.role != CredentialRole::PlatformAdmin {
                return Err(ApiError::Forbidden("this route is for platform admins"));
            }
            Ok(PlatformAdmin { grant })
        })
    }
}

/// A platform admin or a tenant admin of any tenant, for routes that show no tenant's data
/// (the loaded plugins). Auditors get 403.
pub struct AnyAdmin;

impl FromRequest for AnyAdmin {
    type Error = ApiError;
    type Future = Extracted<AnyAdmin>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let grant = authenticated(req);
        Box::pin(async move {
            let grant = grant.await?;
            if grant.role == CredentialRole::Auditor {
                return Err(ApiError::Forbidden("auditors may only read the audit log"));
            }
            Ok(AnyAdmin)
        })
    }
}

/// The tenant of the route (`{slug}`) against a tenant-scoped grant: another tenant is "not
/// found", exactly as a tenant that does not exist.
fn check_tenant(grant: &Grant, slug: Option<&str>) -> Result<(), ApiError> {
    if grant.role == CredentialRole::PlatformAdmin {
        return Ok(());
    }
    match slug {
        Some(slug) if grant.tenant.as_deref() == Some(slug) => Ok(()),
        Some(_) => Err(ApiError::NotFound("tenant")),
        // A tenant-scoped credential on a route that names no tenant: not its business.
        None => Err(ApiError::Forbidden("this route is for platform admins")),
    }
}

fn slug_of(req: &HttpRequest) -> Option<String> {
    req.match_info()
        .get("slug")
        .map(str::to_owned)
}

/// A credential that may administer the route's tenant (`{slug}`): a platform admin or that
/// tenant's admin. Its auditors get 403; another tenant's credentials 404.
pub struct TenantAdmin {
    /// What it may do.
    pub grant: Grant,
}

impl TenantAdmin {
    /// The actor recorded on events this admin causes.
    pub fn actor(&self) -> Actor {
        self.grant.actor()
    }
}

impl FromRequest for TenantAdmin {
    type Error = ApiError;
    type Future = Extracted<TenantAdmin>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let grant = authenticated(req);
        let slug = slug_of(req);
        Box::pin(async move {
            let grant = grant.await?;
            check_tenant(&grant, slug.as_deref())?;
            if !grant.administers(slug.as_deref().unwrap_or_default()) {
                return Err(ApiError::Forbidden("auditors may only read the audit log"));
            }
            Ok(TenantAdmin { grant })
        })
    }
}

/// A credential that may read the route's tenant's audit log (`{slug}`): a platform admin, or
/// that tenant's admin or auditor; another tenant's credentials get 404.
///
/// Every audit read route calls [`AuditReader::record`] first (one line), which records who
/// read what, when, in the tenant's access log, and refuses the read if that fails.
pub struct AuditReader {
    /// What it may do.
    pub grant: Grant,
    slug: String,
    route: String,
    filters: Vec<(String, String)>,
    request_id: Option<String>,
}

impl FromRequest for AuditReader {
    type Error = ApiError;
    type Future = Extracted<AuditReader>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let grant = authenticated(req);
        let slug = slug_of(req);
        let read = ReadFacts::of(req);
        Box::pin(async move {
            let grant = grant.await?;
            check_tenant(&grant, slug.as_deref())?;
            let Some(slug) = slug else {
                return Err(ApiError::NotFound("tenant"));
            };
            Ok(AuditReader {
                grant,
                slug,
                route: read.route,
                filters: read.filters,
                request_id: read.request_id,
            })
        })
    }
}

impl AuditReader {
    /// Records this read (`audit.read` in the tenant's access log: credential id, method and
    /// route, filters with personal values withheld). A tenant that does not exist is a 404
    /// (nothing is recorded); a failed recording refuses the read (503).
    pub async fn record(&self, state: &AppState) -> Result<(), ApiError> {
        if !state
            .gatehouse
            .tenant_exists(&self.slug)
            .await?
        {
            return Err(ApiError::NotFound("tenant"));
        }
        state
            .gatehouse
            .record_audit_read(
                &self.grant,
                &self.slug,
                &self.route,
                audit_read_filters(&self.filters),
                self.request_id.clone(),
            )
            .await?;
        Ok(())
    }

    /// The tenant whose log is read.
    pub fn slug(&self) -> &str {
        &self.slug
    }
}

/// What a read's record names, taken from the request.
pub struct ReadFacts {
    /// `METHOD /route/{pattern}`.
    pub route: String,
    /// Path parameters other than the slug, then the query pairs.
    pub filters: Vec<(String, String)>,
    /// The request id.
    pub request_id: Option<String>,
}

impl ReadFacts {
    /// The facts of `req`.
    pub fn of(req: &HttpRequest) -> ReadFacts {
        let pattern = req
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let mut filters: Vec<(String, String)> = req
            .match_info()
            .iter()
            .filter(|(name, _)| *name != "slug")
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        filters.extend(
            url::form_urlencoded::parse(req.query_string().as_bytes())
                .map(|(name, value)| (name.into_owned(), value.into_owned())),
        );
        ReadFacts {
            route: format!("{} {pattern}", req.method()),
            filters,
            request_id: req
                .extensions()
                .get::<RequestId>()
                .map(|r| r.0.clone()),
        }
    }
}
