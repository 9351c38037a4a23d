//! What every handler shares, and the request facts handlers extract.

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use gatehouse_core::service::ClientInfo;
use gatehouse_core::Gatehouse;

use crate::metrics::Metrics;

/// Shared application state.
pub struct AppState {
    /// The services.
    pub gatehouse: Gatehouse,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// `Secure` flag for cookies (public URL is https).
    pub secure_cookies: bool,
    /// Read the client IP from `X-Forwarded-For`.
    pub trust_proxy_headers: bool,
    /// The generated OpenAPI document.
    pub openapi_json: String,
}

/// The id of the current request, from a well-formed `X-Request-Id` or generated.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

impl FromRequest for RequestId {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let id = req
            .extensions()
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId(uuid::Uuid::new_v4().to_string()));
        ready(Ok(id))
    }
}

/// Client facts recorded on login attempts.
pub fn client_info(req: &HttpRequest, state: &AppState) -> ClientInfo {
    let forwarded = state
        .trust_proxy_headers
        .then(|| {
            req.headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(str::trim)
                .and_then(|v| v.parse::<std::net::IpAddr>().ok())
        })
        .flatten();
    let ip = forwarded.or_else(|| req.peer_addr().map(|a| a.ip()));
    ClientInfo {
        ip: ip.map(|ip| ip.to_string()),
        user_agent: req
            .headers()
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
    }
}
