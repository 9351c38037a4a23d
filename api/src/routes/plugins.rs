//! The protocol plugins this node loaded.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AnyAdmin;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// A loaded protocol plugin.
#[derive(Debug, Serialize, ToSchema)]
pub struct Plugin {
    /// Protocol id used in connection configs (`"protocol": ...`).
    pub protocol: String,
    /// Human-readable protocol name.
    pub display_name: String,
    /// Version of the plugin library.
    pub version: String,
    /// ABI version the plugin was built for (always this host's: others are refused).
    pub abi_version: u32,
    /// How the identity provider answers: `query` (GET to `/callback`) or `form_post`
    /// (POST to `/acs`).
    pub callback: String,
    /// Config fields (JSON pointers) that are secrets: encrypted at rest, never returned.
    pub secret_fields: Vec<String>,
    /// What the plugin does beyond beginning and finishing logins: `metadata` (serves SP
    /// metadata), `inspect_connection`, `pkce`, `nonce`, `idp_initiated`, `signed_requests`,
    /// `encrypted_assertions`, `remote_metadata`, `replay_claim`.
    pub capabilities: Vec<String>,
    /// JSON Schema (draft 2020-12) of the connection `config`; `PUT .../connections/{id}`
    /// checks configs against it and names every field at fault. `null` when the plugin
    /// publishes none.
    #[schema(value_type = Object)]
    pub config_schema: serde_json::Value,
}

/// The plugins list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Plugins {
    /// Loaded plugins, by protocol id.
    pub plugins: Vec<Plugin>,
}

/// The protocol plugins loaded by this node; a connection's `protocol` must be one of them.
#[utoipa::path(tag = "plugins", security(("bearer" = [])),
    responses(
        (status = 200, body = Plugins),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json")))]
#[get("/api/v1/plugins")]
pub async fn list_plugins(state: web::Data<AppState>, _admin: AnyAdmin) -> Result<HttpResponse, ApiError> {
    let plugins = state
        .gatehouse
        .plugins()
        .plugins()
        .map(|info| Plugin {
            protocol: info.protocol.clone(),
            display_name: info.display_name.clone(),
            version: info.version.clone(),
            abi_version: gatehouse_plugin_sdk::abi::ABI_VERSION,
            callback: match info.callback {
                gatehouse_plugin_sdk::CallbackBinding::Query => "query",
                gatehouse_plugin_sdk::CallbackBinding::FormPost => "form_post",
            }
            .to_owned(),
            secret_fields: info.secret_fields.clone(),
            capabilities: info.capabilities.clone(),
            config_schema: info.config_schema.clone(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(Plugins { plugins }))
}
