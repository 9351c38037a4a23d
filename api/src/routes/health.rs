//! Liveness, readiness and metrics.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// Health answer.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: String,
    /// Store kind (`sqlite`, `postgres`), readiness only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// Loaded plugin protocols, readiness only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugins: Option<Vec<String>>,
}

/// The process is alive.
#[utoipa::path(tag = "operations", responses((status = 200, body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
        store: None,
        plugins: None,
    })
}

/// The store answers and at least one protocol plugin is loaded.
#[utoipa::path(tag = "operations", responses(
    (status = 200, body = Health), (status = 503, body = Health)))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let gatehouse = &state.gatehouse;
    let store_ok = gatehouse.db().ping().await.is_ok();
    let plugins: Vec<String> = gatehouse.plugins().plugins().map(|p| p.protocol.clone()).collect();
    let ready = store_ok && !plugins.is_empty();
    let body = Health {
        status: if ready { "ok" } else { "unavailable" }.into(),
        store: Some(if store_ok { gatehouse.db().kind() } else { "unreachable" }.into()),
        plugins: Some(plugins),
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(tag = "operations", responses((status = 200, content_type = "text/plain", body = String)))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
