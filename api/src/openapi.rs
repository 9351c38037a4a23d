//! The OpenAPI document: built from the route annotations, committed as
//! `openapi/openapi.json`, served at `/api/openapi.json` with a docs page at `/api/docs/`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

/// Info, tags and security scheme of the document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gatehouse",
        description = "Multi-tenant single sign-on. Browser flows under `/{slug}`, \
                       tenant administration and audit under `/api/v1` (bearer token).",
        license(name = "Apache-2.0")
    ),
    tags(
        (name = "browser", description = "Pages and redirects of the sign-in flow"),
        (name = "session", description = "The signed-in browser"),
        (name = "tenants", description = "Tenant administration"),
        (name = "connections", description = "SSO connections of a tenant"),
        (name = "plugins", description = "Protocol plugins loaded by this node"),
        (name = "audit", description = "Who signed in, when, how, and why attempts failed"),
        (name = "credentials", description = "Admin API credentials and their roles"),
        (name = "operations", description = "Health and metrics")
    ),
    modifiers(&BearerScheme)
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("Admin API token"))
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The document as the running service serves it.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, api) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(crate::routes::configure)
        .split_for_parts();
    api
}
