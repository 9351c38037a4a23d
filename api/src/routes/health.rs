//! Liveness, readiness and metrics.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// Health answer.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `degraded` (ready, but some plugin has every call slot taken) or `unavailable`.
    pub status: String,
    /// Store kind (`sqlite`, `postgres`), readiness only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// Loaded plugin protocols, readiness only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugins: Option<Vec<String>>,
    /// Plugins whose every call slot is taken (calls in progress, or timed out and still
    /// running); calls to them fail at once until one returns. Readiness only, when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saturated_plugins: Option<Vec<String>>,
    /// Committed events the read models (audit log and views) have not applied yet, counted up
    /// to 10,000; 0 means every event committed before this request is in them. Readiness only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projection_lag: Option<i64>,
}

/// The process is alive.
#[utoipa::path(tag = "operations", responses((status = 200, body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
        store: None,
        plugins: None,
        projection_lag: None,
        saturated_plugins: None,
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
    let saturated = gatehouse.plugins().saturated();
    let projection_lag = gatehouse_core::projections::lag(gatehouse.db(), 10_000)
        .await
        .ok();
    let ready = store_ok && !plugins.is_empty();
    let status = match (ready, saturated.is_empty()) {
        (false, _) => "unavailable",
        (true, true) => "ok",
        (true, false) => "degraded",
    };
    let body = Health {
        status: status.into(),
        store: Some(if store_ok { gatehouse.db().kind() } else { "unreachable" }.into()),
        plugins: Some(plugins),
        saturated_plugins: (!saturated.is_empty()).then_some(saturated),
        projection_lag,
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
