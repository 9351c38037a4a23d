//! The pages and redirects a browser goes through to sign in.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use gatehouse_core::domain::tenant::StandardMethod;
use gatehouse_core::ids::{ConnectionId, TenantSlug};
use gatehouse_core::domain::tenant::Tenant;
use gatehouse_core::service::{
    email_reasons, standard_connection, standard_label, standard_method_of, Discovery,
    EmailCodeError, EmailCodeRequestError, LoginFailure, RefusalClass,
};
use serde::Deserialize;
use utoipa::IntoParams;

use super::session::SESSION_COOKIE;
use crate::pages::{self, Choice};
use crate::state::{client_info, AppState};

/// Cookie binding a login flow to the browser that started it.
const FLOW_COOKIE: &str = "gatehouse_flow";

/// Cookie binding an email code (and its link) to the browser that asked for it.
const EMAIL_CODE_COOKIE: &str = "gatehouse_email_code";

/// Largest standard-login form a browser may post.
const FORM_LIMIT: usize = 8 * 1024;

/// Query of the tenant page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantPageQuery {
    /// `sso` goes straight to the identity provider (when the tenant has exactly one
    /// connection); `standard` goes to standard login.
    pub login: Option<String>,
    /// Where to land after sign-in: a path on the tenant's app URL or a URL on an allowed
    /// origin; anything else is ignored.
    pub return_to: Option<String>,
}

/// Query of the start route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartQuery {
    /// Where to land after sign-in (see the tenant page).
    pub return_to: Option<String>,
}

/// The tenant's sign-in page: a choice of connections and standard login. `?login=sso` goes
/// straight to the identity provider; `?login=standard` to standard login.
#[utoipa::path(tag = "browser",
    params(("slug" = String, Path, description = "Tenant slug"), TenantPageQuery),
    responses(
        (status = 200, description = "Choice page", content_type = "text/html", body = String),
        (status = 302, description = "Redirect to the identity provider"),
        (status = 404, description = "Unknown tenant", content_type = "text/html", body = String)))]
#[get("/{slug}")]
pub async fn tenant_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    query: web::Query<TenantPageQuery>,
) -> HttpResponse {
    let Ok(slug) = TenantSlug::parse(&slug) else {
        return pages::respond(StatusCode::NOT_FOUND, pages::not_found());
    };
    let tenant = match state.gatehouse.tenant_for_login(&slug).await {
        Ok(tenant) => tenant,
        Err(failure) => return failure_page(&slug, failure),
    };
    match query.login.as_deref() {
        Some("sso") if tenant.connections.len() == 1 => {
            let connection_id = tenant.connections.keys().next().cloned();
            if let Some(connection_id) = connection_id {
                return start_login(&state, &req, &slug, &connection_id, query.return_to.as_deref())
                    .await;
            }
        }
        Some("standard") => {
            let page = standard_page(&state, &tenant, &slug, query.return_to.as_deref(), "", None);
            return pages::respond(StatusCode::OK, page);
        }
        _ => {}
    }
    let page = choice_page(&state, &tenant, &slug, query.return_to.as_deref(), "", None);
    pages::respond(StatusCode::OK, page)
}

/// `?return_to=...` for a link, or nothing.
fn return_param(return_to: Option<&str>) -> String {
    return_to
        .map(|r| format!("?return_to={}", url::form_urlencoded::byte_serialize(r.as_bytes()).collect::<String>()))
        .unwrap_or_default()
}

/// The standard methods the tenant's policy switches on and this deployment offers.
fn standard_methods(state: &AppState, tenant: &Tenant) -> Vec<StandardMethod> {
    StandardMethod::ALL
        .into_iter()
        .filter(|m| tenant.login_policy.allows(*m) && state.gatehouse.offers(*m))
        .collect()
}

/// The standard-login page: the email-code form and a button per provider (Google,
/// Facebook), as the policy and the deployment allow.
fn standard_page(
    state: &AppState,
    tenant: &Tenant,
    slug: &TenantSlug,
    return_to: Option<&str>,
    email: &str,
    error: Option<&str>,
) -> maud::Markup {
    let base = format!("/{slug}");
    let methods = standard_methods(state, tenant);
    let action = format!("{base}/email-code");
    let email_code = methods.contains(&StandardMethod::EmailCode);
    let providers: Vec<Choice> = methods
        .iter()
        .filter(|m| standard_connection(**m).is_some())
        .map(|m| Choice {
            label: standard_label(*m).to_owned(),
            href: format!("{base}/standard/{}{}", m.as_str(), return_param(return_to)),
        })
        .collect();
    pages::standard_login(
        &tenant.display_name,
        email_code.then_some(action.as_str()),
        &providers,
        return_to,
        email,
        error,
        &base,
    )
}

/// The choice page: a button per connection, "Sign in with Gatehouse", and with several
/// connections the home-realm discovery form (`message` answers its last post).
fn choice_page(
    state: &AppState,
    tenant: &Tenant,
    slug: &TenantSlug,
    return_to: Option<&str>,
    email: &str,
    message: Option<&str>,
) -> maud::Markup {
    let base = format!("/{slug}");
    let param = return_param(return_to);
    let choices: Vec<Choice> = tenant
        .connections
        .iter()
        .map(|(id, connection)| Choice {
            label: connection.label.clone(),
            href: format!("{base}/sso/{id}/start{param}"),
        })
        .collect();
    // return_to travels to standard login too (GET /{slug} reads it there).
    let standard_href = match return_to {
        Some(_) => format!("{base}?login=standard&{}", &param[1..]),
        None => format!("{base}?login=standard"),
    };
    let offers_standard = !standard_methods(state, tenant).is_empty();
    let action = format!("{base}/discover");
    let form = pages::Discover {
        action: &action,
        return_to,
        email,
        message,
        standard_href: offers_standard.then_some(standard_href.as_str()),
    };
    pages::choice(
        &tenant.display_name,
        &choices,
        offers_standard.then_some(standard_href.as_str()),
        (tenant.connections.len() >= 2).then_some(&form),
    )
}

/// Home-realm discovery: the posted `email` (and `return_to`) leads to the SSO connection
/// whose allowed domains take it; an address none takes gets the choice page with a plain
/// message (and standard login, when the tenant offers it). No account is looked up.
#[utoipa::path(tag = "browser",
    params(("slug" = String, Path, description = "Tenant slug")),
    request_body(content_type = "application/x-www-form-urlencoded", description = "email, return_to", content = String),
    responses(
        (status = 200, description = "A page that moves on to the start of the connection that takes the address (`a#continue`), or, when none takes it, the choice page saying so (recorded as `domain_not_found`)", content_type = "text/html", body = String),
        (status = 400, description = "Not an address, or an unusable form", content_type = "text/html", body = String),
        (status = 403, description = "A cross-origin post", content_type = "text/html", body = String),
        (status = 404, description = "Unknown tenant", content_type = "text/html", body = String)))]
#[post("/{slug}/discover")]
pub async fn discover(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    body: web::Payload,
) -> HttpResponse {
    let Ok(slug) = TenantSlug::parse(&slug) else {
        return pages::respond(StatusCode::NOT_FOUND, pages::not_found());
    };
    let form = match read_form(&state, &req, body).await {
        Ok(form) => form,
        Err(page) => return page,
    };
    let email = field(&form, "email").unwrap_or_default();
    let return_to = field(&form, "return_to").filter(|r| r.len() <= 2048);
    let client = client_info(&req, &state);
    let (status, message) = match state.gatehouse.discover(&slug, email, &client).await {
        Discovery::Connection(connection_id) => {
            // The start redirects to the identity provider, another origin: see continue_to.
            let location = format!("/{slug}/sso/{connection_id}/start{}", return_param(return_to));
            let page = pages::continue_to(
                "Continue to sign in",
                "Taking you to your organisation's sign-in.",
                &location,
            );
            return pages::respond(StatusCode::OK, page);
        }
        Discovery::NoMatch { domain, .. } => (
            StatusCode::OK,
            format!("No sign-in service of this organisation takes addresses at {domain}."),
        ),
        Discovery::InvalidEmail(message) => (StatusCode::BAD_REQUEST, message.to_owned()),
        Discovery::Refused(failure) => return failure_page(&slug, failure),
    };
    let tenant = match state.gatehouse.tenant_for_login(&slug).await {
        Ok(tenant) => tenant,
        Err(failure) => return failure_page(&slug, failure),
    };
    let email = if email.len() <= 254 { email } else { "" };
    pages::respond(status, choice_page(&state, &tenant, &slug, return_to, email, Some(&message)))
}

/// Standard login with Google or Facebook: starts the login at the provider (when the tenant
/// offers the method and this deployment has a client for it).
#[utoipa::path(tag = "browser",
    params(("slug" = String, Path, description = "Tenant slug"),
           ("method" = String, Path, description = "`google` or `facebook`"), StartQuery),
    responses(
        (status = 302, description = "Redirect to the provider; sets the flow cookie"),
        (status = 403, description = "The tenant or the deployment does not offer the method (recorded as `method_disabled`)", content_type = "text/html", body = String),
        (status = 404, description = "Unknown tenant or method", content_type = "text/html", body = String),
        (status = 502, description = "Provider unavailable", content_type = "text/html", body = String)))]
#[get("/{slug}/standard/{method}")]
pub async fn standard_start(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<StartQuery>,
) -> HttpResponse {
    let (slug, method) = path.into_inner();
    let Ok(slug) = TenantSlug::parse(&slug) else {
        return pages::respond(StatusCode::NOT_FOUND, pages::not_found());
    };
    let Some((method, connection_id)) = StandardMethod::parse(&method)
        .and_then(|m| standard_connection(m).map(|c| (m, c)))
    else {
        return pages::respond(StatusCode::NOT_FOUND, pages::not_found());
    };
    let binding = req.cookie(FLOW_COOKIE);
    let client = client_info(&req, &state);
    let result = state
        .gatehouse
        .start_login(&slug, &connection_id, query.return_to.as_deref(), binding.as_ref().map(|c| c.value()), &client)
        .await;
    match result {
        Ok(redirect) => flow_redirect(&state, redirect),
        Err(failure) => standard_failure_page(&slug, method, failure),
    }
}

/// The redirect URL to register at Google (`/login/google/callback`) or Facebook
/// (`/login/facebook/callback`): one for the whole deployment. The `state` names the tenant.
/// On success sets the session cookie and redirects to the tenant's app; an address of the
/// tenant's SSO domains is sent to SSO (`sso_enforced`).
#[utoipa::path(tag = "browser",
    params(("method" = String, Path, description = "`google` or `facebook`")),
    responses(
        (status = 302, description = "Signed in; redirect to the app URL with the session cookie"),
        (status = 400, description = "No, a forged, replayed or expired state, or a malformed callback", content_type = "text/html", body = String),
        (status = 403, description = "Refused by the tenant's policy or for the email (missing, not verified, a member's)", content_type = "text/html", body = String),
        (status = 404, description = "Unknown method", content_type = "text/html", body = String),
        (status = 502, description = "Provider failure", content_type = "text/html", body = String)))]
#[get("/login/{method}/callback")]
pub async fn standard_callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    method: web::Path<String>,
) -> HttpResponse {
    let Some((method, connection_id)) = StandardMethod::parse(&method)
        .and_then(|m| standard_connection(m).map(|c| (m, c)))
    else {
        return pages::respond(StatusCode::NOT_FOUND, pages::not_found());
    };
    let query = req.query_string();
    if query.len() > 16 * 1024 {
        return pages::respond(StatusCode::BAD_REQUEST, pages::bad_request("The request is too large."));
    }
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let Some(slug) = state.gatehouse.standard_callback_tenant(method, &params).await else {
        // No tenant to record it for: a state this service never issued for this method.
        tracing::warn!(method = method.as_str(), "standard login callback without a known state refused");
        return pages::respond(
            StatusCode::BAD_REQUEST,
            pages::login_failed(
                "This sign-in link is no longer valid, or it was not started in this browser. Please start again.",
                None,
                None,
            ),
        );
    };
    let binding = req.cookie(FLOW_COOKIE);
    let client = client_info(&req, &state);
    let result = state
        .gatehouse
        .finish_login(&slug, &connection_id, params, binding.as_ref().map(|c| c.value()), &client)
        .await;
    match result {
        Err(LoginFailure { sso: Some(sso), attempt_id, .. }) => {
            let name = match state.gatehouse.tenant_for_login(&slug).await {
                Ok(tenant) => tenant.display_name,
                Err(_) => slug.to_string(),
            };
            let href = format!("/{slug}/sso/{}/start", sso.connection_id);
            let attempt = attempt_id.map(|id| id.to_string()).unwrap_or_default();
            let page = pages::sso_required(&name, &sso.label, &href, &attempt, standard_label(method));
            pages::respond(StatusCode::FORBIDDEN, page)
        }
        Err(failure) => standard_failure_page(&slug, method, failure),
        result => signed_in_or_failed(&state, &slug, result),
    }
}

/// Starts a login at one connection: redirects to its identity provider.
#[utoipa::path(tag = "browser",
    params(("slug" = String, Path, description = "Tenant slug"),
           ("connection_id" = String, Path, description = "Connection id"), StartQuery),
    responses(
        (status = 302, description = "Redirect to the identity provider; sets the flow cookie"),
        (status = 404, description = "Unknown tenant", content_type = "text/html", body = String),
        (status = 502, description = "Identity provider unavailable", content_type = "text/html", body = String)))]
#[get("/{slug}/sso/{connection_id}/start")]
pub async fn start(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<StartQuery>,
) -> HttpResponse {
    let Some((slug, connection_id)) = connection_path(path) else {
        return pages::respond(StatusCode::NOT_FOUND, pages::not_found());
    };
    start_login(&state, &req, &slug, &connection_id, query.return_to.as_deref()).await
}

/// The sign-in redirect URL given to the identity provider. On success sets the session
/// cookie and redirects to the app; on failure shows the attempt id to quote to support.
#[utoipa::path(tag = "browser",
    params(("slug" = String, Path, description = "Tenant slug"),
           ("connection_id" = String, Path, description = "Connection id")),
    responses(
        (status = 302, description = "Signed in; redirect to the app URL with the session cookie"),
        (status = 400, description = "Forged, replayed, expired or malformed callback", content_type = "text/html", body = String),
        (status = 403, description = "Refused by the tenant's policy", content_type = "text/html", body = String),
        (status = 502, description = "Identity provider failure", content_type = "text/html", body = String)))]
#[get("/{slug}/sso/{connection_id}/callback")]
pub async fn callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let Some((slug, connection_id)) = connection_path(path) else {
        return pages::respond(StatusCode::NOT_FOUND, pages::not_found());
    };
    let query = req.query_string();
    if query.len() > 16 * 1024 {
        return pages::respond(StatusCode::BAD_REQUEST, pages::bad_request("The request is too large."));
    }
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let binding = req.cookie(FLOW_COOKIE);
    let client = client_info(&req, &state);
    let result = state
        .gatehouse
        .finish_login(&slug, &connection_id, params, binding.as_ref().map(|c| c.value()), &client)
        .await;
    signed_in_or_failed(&state, &slug, result)
}

fn signed_in_or_failed(
    state: &AppState,
    slug: &TenantSlug,
    result: Result<gatehouse_core::service::LoginSuccess, LoginFailure>,
) -> HttpResponse {
    signed_in_or_failed_by(state, slug, result, Answering::Redirect)
}

/// How a successful sign-in sends the browser on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answering {
    /// A redirect (answers to GET requests).
    Redirect,
    /// A page that moves on by itself (answers to form posts: see `pages::continue_to`).
    Page,
}

fn signed_in_or_failed_by(
    state: &AppState,
    slug: &TenantSlug,
    result: Result<gatehouse_core::service::LoginSuccess, LoginFailure>,
    answering: Answering,
) -> HttpResponse {
    match result {
        Ok(success) if answering == Answering::Page => {
            let mut response = pages::respond(
                StatusCode::OK,
                pages::continue_to("Signed in", "Taking you on.", &success.redirect_to),
            );
            for cookie in signed_in_cookies(state, success.session_token, success.max_age_secs) {
                if let Err(error) = response.add_cookie(&cookie) {
                    tracing::error!(%error, "cannot set a sign-in cookie");
                    return pages::respond(
                        StatusCode::SERVICE_UNAVAILABLE,
                        pages::bad_request("Signing in failed; please try again."),
                    );
                }
            }
            response
        }
        Ok(success) => {
            let [cookie, flow] =
                signed_in_cookies(state, success.session_token, success.max_age_secs);
            HttpResponse::Found()
                .insert_header(("Location", success.redirect_to))
                .insert_header(("Cache-Control", "no-store"))
                .insert_header(("Referrer-Policy", "no-referrer"))
                .cookie(cookie)
                .cookie(flow)
                .finish()
        }
        Err(failure) => failure_page(slug, failure),
    }
}

/// The session cookie, and the removal of the flow cookie.
fn signed_in_cookies(state: &AppState, token: String, max_age_secs: i64) -> [Cookie<'static>; 2] {
    let session = Cookie::build(SESSION_COOKIE, token)
        .http_only(true)
        .secure(state.secure_cookies)
        .same_site(SameSite::Lax)
        .path("/")
        .max_age(CookieDuration::seconds(max_age_secs))
        .finish();
    let mut flow = Cookie::build(FLOW_COOKIE, "").path("/").finish();
    flow.make_removal();
    [session, flow]
}

/// Largest form an identity provider may post to an ACS.
const ACS_BODY_LIMIT: usize = 320 * 1024;

/// Query of the ACS follow-up.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContinueQuery {
    /// One-time handle issued by the ACS.
    pub handle: String,
}

/// The assertion consumer service (SAML HTTP-POST binding): keeps the posted answer for a
/// minute and redirects to a same-site follow-up, where the browser's flow cookie is sent
/// and the login is finished.
#[utoipa::path(tag = "browser",
    params(("slug" = String, Path, description = "Tenant slug"),
           ("connection_id" = String, Path, description = "Connection id")),
    request_body(content_type = "application/x-www-form-urlencoded", description = "SAMLResponse and RelayState", content = String),
    responses(
        (status = 303, description = "Redirect to the follow-up that finishes the login"),
        (status = 400, description = "Not a form, or too large", content_type = "text/html", body = String),
        (status = 404, description = "Unknown tenant", content_type = "text/html", body = String)))]
#[post("/{slug}/sso/{connection_id}/acs")]
pub async fn acs(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    mut body: web::Payload,
) -> HttpResponse {
    let Some((slug, connection_id)) = connection_path(path) else {
        return pages::respond(StatusCode::NOT_FOUND, pages::not_found());
    };
    let is_form = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return pages::respond(StatusCode::BAD_REQUEST, pages::bad_request("Expected a form post."));
    }
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
        let Ok(chunk) = chunk else {
            return pages::respond(StatusCode::BAD_REQUEST, pages::bad_request("The form could not be read."));
        };
        if bytes.len() + chunk.len() > ACS_BODY_LIMIT {
            return pages::respond(StatusCode::PAYLOAD_TOO_LARGE, pages::bad_request("The form is too large."));
        }
        bytes.extend_from_slice(&chunk);
    }
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if let Err(failure) = state.gatehouse.tenant_for_login(&slug).await {
        return failure_page(&slug, failure);
    }
    match state.gatehouse.accept_form_post(&slug, &connection_id, params).await {
        Ok(handle) => HttpResponse::SeeOther()
            .insert_header(("Location", format!("/{slug}/sso/{connection_id}/acs/continue?handle={handle}")))
            .insert_header(("Cache-Control", "no-store"))
            .insert_header(("Referrer-Policy", "no-referrer"))
            .finish(),
        Err(failure) => failure_page(&slug, failure),
    }
}

/// Finishes a login posted to the ACS. On success sets the session cookie and redirects to
/// the app; on failure shows the attempt id to quote to support.
#[utoipa::path(tag = "browser",
    params(("slug" = String, Path, description = "Tenant slug"),
           ("connection_id" = String, Path, description = "Connection id"), ContinueQuery),
    responses(
        (status = 302, description = "Signed in; redirect to the app URL with the session cookie"),
        (status = 400, description = "Forged, replayed, expired or malformed answer", content_type = "text/html", body = String),
        (status = 403, description = "Refused by the tenant's policy", content_type = "text/html", body = String),
        (status = 502, description = "Identity provider failure", content_type = "text/html", body = String)))]
#[get("/{slug}/sso/{connection_id}/acs/continue")]
pub async fn acs_continue(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<ContinueQuery>,
) -> HttpResponse {
    let Some((slug, connection_id)) = connection_path(path) else {
        return pages::respond(StatusCode::NOT_FOUND, pages::not_found());
    };
    let binding = req.cookie(FLOW_COOKIE);
    let client = client_info(&req, &state);
    let result = state
        .gatehouse
        .finish_form_post(&slug, &connection_id, &query.handle, binding.as_ref().map(|c| c.value()), &client)
        .await;
    signed_in_or_failed(&state, &slug, result)
}

/// The connection's service provider metadata (SAML), at the URL that is also its entity ID.
#[utoipa::path(tag = "browser",
    params(("slug" = String, Path, description = "Tenant slug"),
           ("connection_id" = String, Path, description = "Connection id")),
    responses(
        (status = 200, description = "SAML metadata", content_type = "application/samlmetadata+xml", body = String),
        (status = 404, description = "Unknown tenant or connection, or a protocol without metadata")))]
#[get("/{slug}/sso/{connection_id}/metadata")]
pub async fn metadata(state: web::Data<AppState>, path: web::Path<(String, String)>) -> HttpResponse {
    let (slug, connection_id) = path.into_inner();
    match state.gatehouse.sp_metadata(&slug, &connection_id).await {
        Ok(document) => HttpResponse::Ok()
            .content_type(document.content_type)
            .insert_header(("X-Content-Type-Options", "nosniff"))
            .body(document.body),
        Err(gatehouse_core::service::AdminError::NotFound(_)) => {
            pages::respond(StatusCode::NOT_FOUND, pages::not_found())
        }
        Err(error) => {
            tracing::error!(%error, "metadata failed");
            pages::respond(StatusCode::SERVICE_UNAVAILABLE, pages::bad_request("Metadata is unavailable."))
        }
    }
}

/// Ends this browser's session at the tenant.
#[utoipa::path(tag = "browser",
    params(("slug" = String, Path, description = "Tenant slug")),
    responses((status = 303, description = "Signed out; redirect to the tenant page")))]
#[post("/{slug}/logout")]
pub async fn logout(state: web::Data<AppState>, req: HttpRequest, slug: web::Path<String>) -> HttpResponse {
    let Ok(slug) = TenantSlug::parse(&slug) else {
        return pages::respond(StatusCode::NOT_FOUND, pages::not_found());
    };
    if !same_origin(&req, &state.gatehouse.settings().public_url) {
        tracing::warn!(tenant = %slug, "cross-origin logout refused");
        return pages::respond(
            StatusCode::FORBIDDEN,
            pages::bad_request("Sign out from the page of this service."),
        );
    }
    if let Some(cookie) = req.cookie(SESSION_COOKIE) {
        let client = client_info(&req, &state);
        if let Err(error) = state.gatehouse.logout(&slug, cookie.value(), &client).await {
            tracing::error!(%error, "logout could not be recorded");
            return pages::respond(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::bad_request("Signing out failed; please try again."),
            );
        }
    }
    let mut removal = Cookie::build(SESSION_COOKIE, "")
        .http_only(true)
        .secure(state.secure_cookies)
        .same_site(SameSite::Lax)
        .path("/")
        .finish();
    removal.make_removal();
    HttpResponse::SeeOther()
        .insert_header(("Location", format!("/{slug}")))
        .insert_header(("Cache-Control", "no-store"))
        .cookie(removal)
        .finish()
}

/// Query of the one-click link.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkQuery {
    /// The link token from the email.
    pub token: Option<String>,
}

/// Standard login, email code: sends a 6-digit code and a one-click link to the posted
/// `email` (form fields `email`, optional `return_to`) and shows where to type the code. The
/// answer is the same whether or not an account exists for the address.
#[utoipa::path(tag = "browser",
    params(("slug" = String, Path, description = "Tenant slug")),
    request_body(content_type = "application/x-www-form-urlencoded", description = "email, return_to", content = String),
    responses(
        (status = 200, description = "Code sent: the code form, and the binding cookie", content_type = "text/html", body = String),
        (status = 400, description = "Unusable address or form", content_type = "text/html", body = String),
        (status = 403, description = "Refused by the tenant's policy, or a cross-origin post", content_type = "text/html", body = String),
        (status = 429, description = "Too many codes for this address or client", content_type = "text/html", body = String)))]
#[post("/{slug}/email-code")]
pub async fn email_code_request(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    body: web::Payload,
) -> HttpResponse {
    let Ok(slug) = TenantSlug::parse(&slug) else {
        return pages::respond(StatusCode::NOT_FOUND, pages::not_found());
    };
    let form = match read_form(&state, &req, body).await {
        Ok(form) => form,
        Err(page) => return page,
    };
    let email = field(&form, "email").unwrap_or_default();
    let return_to = field(&form, "return_to");
    let client = client_info(&req, &state);
    let result = state
        .gatehouse
        .request_email_code(&slug, email, return_to, &client)
        .await;
    let base = format!("/{slug}");
    match result {
        Ok(sent) => {
            let tenant = state.gatehouse.tenant_for_login(&slug).await;
            let name = tenant.map(|t| t.display_name).unwrap_or_else(|_| slug.to_string());
            let cookie = Cookie::build(EMAIL_CODE_COOKIE, sent.handle)
                .http_only(true)
                .secure(state.secure_cookies)
                .same_site(SameSite::Lax)
                .path("/")
                // Outlives the code, so that a late entry is told "expired", not "no code".
                .max_age(CookieDuration::seconds(sent.ttl_secs + 3600))
                .finish();
            let page = pages::code_sent(
                &name,
                &sent.email,
                &format!("{base}/email-code/verify"),
                Some(&gatehouse_core::service::lifetime_words(sent.ttl_secs)),
                None,
                &format!("{base}?login=standard"),
            );
            let mut response = pages::respond(StatusCode::OK, page);
            if let Err(error) = response.add_cookie(&cookie) {
                tracing::error!(%error, "cannot set the email code cookie");
            }
            response
        }
        Err(EmailCodeRequestError::InvalidEmail(message)) => {
            let Ok(tenant) = state.gatehouse.tenant_for_login(&slug).await else {
                return pages::respond(StatusCode::NOT_FOUND, pages::not_found());
            };
            let page = standard_page(&state, &tenant, &slug, return_to, email, Some(message));
            pages::respond(StatusCode::BAD_REQUEST, page)
        }
        Err(EmailCodeRequestError::SsoRequired {
            attempt_id,
            connection_id,
            label,
        }) => {
            let name = match state.gatehouse.tenant_for_login(&slug).await {
                Ok(tenant) => tenant.display_name,
                Err(_) => slug.to_string(),
            };
            let mut href = format!("{base}/sso/{connection_id}/start");
            if let Some(target) = return_to {
                let encoded: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
                href.push_str(&format!("?return_to={encoded}"));
            }
            let page = pages::sso_required(&name, &label, &href, &attempt_id.to_string(), "an email code");
            pages::respond(StatusCode::FORBIDDEN, page)
        }
        Err(EmailCodeRequestError::Refused(failure)) => email_failure_page(&slug, failure),
    }
}

/// Standard login, email code: checks the posted `code` for the code this browser asked for
/// (its binding cookie). Right: signed in; wrong: the form again with the tries left (five
/// wrong codes lock it).
#[utoipa::path(tag = "browser",
    params(("slug" = String, Path, description = "Tenant slug")),
    request_body(content_type = "application/x-www-form-urlencoded", description = "code", content = String),
    responses(
        (status = 200, description = "Signed in: the session cookie, and a page that moves on to the app URL (`a#continue`)", content_type = "text/html", body = String),
        (status = 400, description = "Wrong, expired or used code, or none requested in this browser", content_type = "text/html", body = String),
        (status = 403, description = "Locked after too many wrong codes, or a cross-origin post", content_type = "text/html", body = String)))]
#[post("/{slug}/email-code/verify")]
pub async fn email_code_verify(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    body: web::Payload,
) -> HttpResponse {
    let Ok(slug) = TenantSlug::parse(&slug) else {
        return pages::respond(StatusCode::NOT_FOUND, pages::not_found());
    };
    let form = match read_form(&state, &req, body).await {
        Ok(form) => form,
        Err(page) => return page,
    };
    let code = field(&form, "code").unwrap_or_default();
    let handle = req.cookie(EMAIL_CODE_COOKIE);
    let client = client_info(&req, &state);
    let result = state
        .gatehouse
        .verify_email_code(&slug, handle.as_ref().map(|c| c.value()), code, &client)
        .await;
    email_code_outcome(&state, &slug, result).await
}

/// The one-click link of the email: a page whose button confirms the sign-in. Fetching it
/// changes nothing, so a mail scanner that opens links signs nobody in.
#[utoipa::path(tag = "browser",
    params(("slug" = String, Path, description = "Tenant slug"), LinkQuery),
    responses(
        (status = 200, description = "Confirmation page", content_type = "text/html", body = String),
        (status = 400, description = "No token", content_type = "text/html", body = String),
        (status = 404, description = "Unknown tenant", content_type = "text/html", body = String)))]
#[get("/{slug}/email-code/link")]
pub async fn email_code_link(
    state: web::Data<AppState>,
    slug: web::Path<String>,
    query: web::Query<LinkQuery>,
) -> HttpResponse {
    let Ok(slug) = TenantSlug::parse(&slug) else {
        return pages::respond(StatusCode::NOT_FOUND, pages::not_found());
    };
    let tenant = match state.gatehouse.tenant_for_login(&slug).await {
        Ok(tenant) => tenant,
        Err(failure) => return failure_page(&slug, failure),
    };
    let token = query.token.as_deref().unwrap_or_default();
    if token.is_empty() || token.len() > 128 || !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return pages::respond(StatusCode::BAD_REQUEST, pages::bad_request("The sign-in link is incomplete. Copy the whole link from the email, or type the code."));
    }
    let action = format!("/{slug}/email-code/link");
    pages::respond(StatusCode::OK, pages::confirm_link(&tenant.display_name, &action, token))
}

/// Confirms the one-click link (form field `token`) in the browser that asked for the code.
#[utoipa::path(tag = "browser",
    params(("slug" = String, Path, description = "Tenant slug")),
    request_body(content_type = "application/x-www-form-urlencoded", description = "token", content = String),
    responses(
        (status = 200, description = "Signed in: the session cookie, and a page that moves on to the app URL (`a#continue`)", content_type = "text/html", body = String),
        (status = 400, description = "Unknown, expired or used link, or another browser", content_type = "text/html", body = String),
        (status = 403, description = "A cross-origin post", content_type = "text/html", body = String)))]
#[post("/{slug}/email-code/link")]
pub async fn email_code_link_confirm(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    body: web::Payload,
) -> HttpResponse {
    let Ok(slug) = TenantSlug::parse(&slug) else {
        return pages::respond(StatusCode::NOT_FOUND, pages::not_found());
    };
    let form = match read_form(&state, &req, body).await {
        Ok(form) => form,
        Err(page) => return page,
    };
    let token = field(&form, "token").unwrap_or_default();
    let handle = req.cookie(EMAIL_CODE_COOKIE);
    let client = client_info(&req, &state);
    let result = state
        .gatehouse
        .confirm_email_link(&slug, token, handle.as_ref().map(|c| c.value()), &client)
        .await;
    email_code_outcome(&state, &slug, result).await
}

async fn email_code_outcome(
    state: &AppState,
    slug: &TenantSlug,
    result: Result<gatehouse_core::service::LoginSuccess, EmailCodeError>,
) -> HttpResponse {
    match result {
        Ok(success) => {
            let mut response = signed_in_or_failed_by(state, slug, Ok(success), Answering::Page);
            let mut handle = Cookie::build(EMAIL_CODE_COOKIE, "").path("/").finish();
            handle.make_removal();
            if let Err(error) = response.add_cookie(&handle) {
                tracing::error!(%error, "cannot clear the email code cookie");
            }
            response
        }
        Err(EmailCodeError::Wrong {
            email, tries_left, ..
        }) => {
            let message = match tries_left {
                1 => "That code is not right. 1 try left.".to_owned(),
                n => format!("That code is not right. {n} tries left."),
            };
            code_again_page(state, slug, &email, &message).await
        }
        Err(EmailCodeError::Malformed { email }) => {
            code_again_page(state, slug, &email, "Enter the 6-digit code from the email.").await
        }
        Err(EmailCodeError::Refused(failure)) => email_failure_page(slug, failure),
    }
}

/// The code form again, with what was wrong with the last entry.
async fn code_again_page(state: &AppState, slug: &TenantSlug, email: &str, message: &str) -> HttpResponse {
    let name = match state.gatehouse.tenant_for_login(slug).await {
        Ok(tenant) => tenant.display_name,
        Err(_) => slug.to_string(),
    };
    let page = pages::code_sent(
        &name,
        email,
        &format!("/{slug}/email-code/verify"),
        None,
        Some(message),
        &format!("/{slug}?login=standard"),
    );
    pages::respond(StatusCode::BAD_REQUEST, page)
}

/// The page for a refused Google or Facebook login: plain words for the reasons a person can
/// act on, else the common failure page.
fn standard_failure_page(slug: &TenantSlug, method: StandardMethod, failure: LoginFailure) -> HttpResponse {
    let provider = standard_label(method);
    let message = match failure.reason.as_str() {
        "email_missing" => format!(
            "{provider} did not share an email address. Allow access to your email there, or use another way to sign in."
        ),
        "email_not_verified" => format!(
            "Your email address is not verified at {provider}. Verify it there, or use another way to sign in."
        ),
        "email_malformed" => format!("{provider} sent an email address that cannot be used here."),
        email_reasons::METHOD_DISABLED => format!("Sign-in with {provider} is not enabled for this organisation."),
        email_reasons::GUESTS_DISABLED => "This organisation does not let guests sign in. Use your organisation's sign-in, or ask your administrator.".to_owned(),
        _ => return failure_page(slug, failure),
    };
    let attempt = failure.attempt_id.map(|id| id.to_string());
    let retry = format!("/{slug}?login=standard");
    pages::respond(StatusCode::FORBIDDEN, pages::login_failed(&message, attempt.as_deref(), Some(&retry)))
}

/// The page for a refused email-code step: plain words per reason, the attempt to quote, and
/// the way back to standard login.
fn email_failure_page(slug: &TenantSlug, failure: LoginFailure) -> HttpResponse {
    use email_reasons as r;
    let (status, message) = match failure.reason.as_str() {
        r::METHOD_DISABLED => (StatusCode::FORBIDDEN, "Sign-in with an email code is not enabled for this organisation."),
        r::GUESTS_DISABLED => (
            StatusCode::FORBIDDEN,
            "This organisation does not let guests sign in. Use your organisation's sign-in, or ask your administrator.",
        ),
        r::RATE_LIMITED => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many codes were requested. Wait a few minutes, then ask for a new code.",
        ),
        r::CODE_LOCKED => (
            StatusCode::FORBIDDEN,
            "Too many wrong codes were entered. Ask for a new code.",
        ),
        r::CODE_EXPIRED => (StatusCode::BAD_REQUEST, "This code has expired. Ask for a new code."),
        r::CODE_REUSED => (StatusCode::BAD_REQUEST, "This code or link was already used. Ask for a new code if you need one."),
        r::CODE_MISSING => (
            StatusCode::BAD_REQUEST,
            "No code was requested in this browser, or it was replaced by a newer one. Ask for a new code.",
        ),
        r::LINK_INVALID => (StatusCode::BAD_REQUEST, "This sign-in link is not valid. Ask for a new code."),
        r::LINK_OTHER_BROWSER => (
            StatusCode::BAD_REQUEST,
            "Open the link in the browser where you asked for the code, or type the code from the email there.",
        ),
        r::DELIVERY_FAILED => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The email could not be sent. Please try again later.",
        ),
        _ => return failure_page(slug, failure),
    };
    let attempt = failure.attempt_id.map(|id| id.to_string());
    let retry = format!("/{slug}?login=standard");
    pages::respond(status, pages::login_failed(message, attempt.as_deref(), Some(&retry)))
}

/// Reads a posted form: same origin only (CSRF), `application/x-www-form-urlencoded`, at most
/// [`FORM_LIMIT`] bytes. Anything else is answered with a plain page.
async fn read_form(
    state: &AppState,
    req: &HttpRequest,
    mut body: web::Payload,
) -> Result<Vec<(String, String)>, HttpResponse> {
    if !same_origin(req, &state.gatehouse.settings().public_url) {
        tracing::warn!(path = req.path(), "cross-origin form post refused");
        return Err(pages::respond(
            StatusCode::FORBIDDEN,
            pages::bad_request("Sign in from the page of this service."),
        ));
    }
    let is_form = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(pages::respond(StatusCode::BAD_REQUEST, pages::bad_request("Expected a form post.")));
    }
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
        let Ok(chunk) = chunk else {
            return Err(pages::respond(StatusCode::BAD_REQUEST, pages::bad_request("The form could not be read.")));
        };
        if bytes.len() + chunk.len() > FORM_LIMIT {
            return Err(pages::respond(StatusCode::PAYLOAD_TOO_LARGE, pages::bad_request("The form is too large.")));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(url::form_urlencoded::parse(&bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect())
}

/// The one value of a form field; `None` when it is missing or sent more than once.
fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let mut values = form.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match (values.next(), values.next()) {
        (Some(value), None) => Some(value),
        _ => None,
    }
}

/// The tenant slug and connection id of a `/{slug}/sso/{connection_id}/...` path, if both
/// are well-formed. The ids of standard methods (Google, Facebook) are not connections of the
/// tenant: their logins start at `/{slug}/standard/{method}` and end at the deployment's
/// `/login/{method}/callback`.
fn connection_path(path: web::Path<(String, String)>) -> Option<(TenantSlug, ConnectionId)> {
    let (slug, connection_id) = path.into_inner();
    let connection_id = ConnectionId::parse(&connection_id).ok()?;
    if standard_method_of(&connection_id).is_some() {
        return None;
    }
    Some((TenantSlug::parse(&slug).ok()?, connection_id))
}

async fn start_login(
    state: &AppState,
    req: &HttpRequest,
    slug: &TenantSlug,
    connection_id: &ConnectionId,
    return_to: Option<&str>,
) -> HttpResponse {
    let binding = req.cookie(FLOW_COOKIE);
    let client = client_info(req, state);
    let result = state
        .gatehouse
        .start_login(slug, connection_id, return_to, binding.as_ref().map(|c| c.value()), &client)
        .await;
    match result {
        Ok(redirect) => flow_redirect(state, redirect),
        Err(failure) => failure_page(slug, failure),
    }
}

/// Sends the browser to the identity provider with the flow-binding cookie.
fn flow_redirect(state: &AppState, redirect: gatehouse_core::service::LoginRedirect) -> HttpResponse {
    let ttl = state.gatehouse.settings().flow_ttl_secs;
    let cookie = Cookie::build(FLOW_COOKIE, redirect.binding)
        .http_only(true)
        .secure(state.secure_cookies)
        .same_site(SameSite::Lax)
        .path("/")
        .max_age(CookieDuration::seconds(ttl))
        .finish();
    HttpResponse::Found()
        .insert_header(("Location", redirect.url))
        .insert_header(("Cache-Control", "no-store"))
        .cookie(cookie)
        .finish()
}

fn failure_page(slug: &TenantSlug, failure: LoginFailure) -> HttpResponse {
    let not_found = matches!(failure.reason.as_str(), "tenant_not_found" | "connection_not_found");
    if failure.attempt_id.is_none() && not_found {
        return pages::respond(StatusCode::NOT_FOUND, pages::not_found());
    }
    let (status, message) = match failure.class {
        _ if failure.reason == gatehouse_plugin_sdk::reason::IDP_ERROR
            || failure.reason == "saml_status_not_success" =>
        {
            (
                StatusCode::BAD_REQUEST,
                "The sign-in was cancelled or refused at your organisation's sign-in service.",
            )
        }
        _ if failure.reason.starts_with("saml_") => (
            StatusCode::BAD_REQUEST,
            "Your organisation's sign-in service sent an answer that could not be accepted. \
             Please try again; if it keeps happening, give your administrator the reference below.",
        ),
        RefusalClass::BadRequest => (
            StatusCode::BAD_REQUEST,
            "This sign-in link is no longer valid, or it was not started in this browser. Please start again.",
        ),
        RefusalClass::Forbidden => (
            StatusCode::FORBIDDEN,
            "Your account is not allowed to sign in here. Use your work account, or ask your administrator.",
        ),
        RefusalClass::Upstream => (
            StatusCode::BAD_GATEWAY,
            "Your organisation's sign-in service could not complete the sign-in. Please try again later.",
        ),
        RefusalClass::Internal => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is temporarily unavailable. Please try again later.",
        ),
    };
    let attempt = failure.attempt_id.map(|id| id.to_string());
    let retry = format!("/{slug}");
    pages::respond(status, pages::login_failed(message, attempt.as_deref(), Some(&retry)))
}

/// True unless the browser says the request came from another origin (`Origin`, or Fetch
/// Metadata's `Sec-Fetch-Site`). SameSite=Lax cookies already stop cross-site posts; this also
/// stops same-site ones (a sibling subdomain, another port).
fn same_origin(req: &HttpRequest, public_url: &str) -> bool {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        if !matches!(site, "same-origin" | "none") {
            return false;
        }
    }
    match header("origin") {
        // Under `Referrer-Policy: no-referrer` (every page here) browsers send `Origin: null`
        // with the forms of those very pages; Fetch Metadata vouches for them, or nothing does.
        Some("null") => header("sec-fetch-site") == Some("same-origin"),
        Some(origin) => origin.trim_end_matches('/') == public_url.trim_end_matches('/'),
        None => true,
    }
}
