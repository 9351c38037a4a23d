//! `gatehouse plugins check PATH`: loads one plugin library in a throwaway host (no database,
//! no network) and calls each of its login methods once under the per-call time limit, so an
//! operator learns before a restart whether the service would accept the library and why not.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gatehouse_core::plugins::{CallContext, LoadedLibrary, PluginHost};
use gatehouse_plugin_sdk::{
    BeginLoginRequest, BeginLoginResponse, ExternalIdentity, FinishLoginRequest, Method,
    PluginError, ValidateConfigRequest, ValidatedConfig,
};
use serde_json::json;

use crate::config::{default_plugin_dirs, CheckOptions};

/// Checks the library; `Ok("<protocol> <version>")` or `Err(reason)`, one line either way.
pub async fn check(options: CheckOptions) -> Result<String, String> {
    let timeout = Duration::from_secs(options.plugin_timeout_secs.unwrap_or(30).max(1));
    let mut host = PluginHost::offline(timeout, tokio::runtime::Handle::current());
    // Loading reads the ABI version, the entry symbol and the descriptor, then calls describe.
    host.load(&options.path).await.map_err(|e| e.detail)?;
    let info = host
        .plugins()
        .next()
        .cloned()
        .ok_or_else(|| "the library loaded but registered no protocol".to_owned())?;

    let (dirs, prefix) = match &options.plugin_dir {
        Some(dir) => (vec![dir.clone()], None),
        None => (default_plugin_dirs(), Some("gatehouse_")),
    };
    if let Some(other) = serving_same_protocol(&options.path, &info.protocol, &dirs, prefix) {
        return Err(format!(
            "duplicate protocol id {:?}, already served by {}",
            info.protocol,
            other.display()
        ));
    }

    let protocol = info.protocol.as_str();
    let context = CallContext {
        tenant: "plugin-check".into(),
        connection_id: "check".into(),
    };
    let refused = |method: Method, error: PluginError| format!("{}: {error}", method.as_str());
    // The plugin may refuse these requests (an empty config is rarely valid); it must answer
    // them well-formed, in time and without panicking.
    let _own_answer = host.probe::<_, ValidatedConfig>(
        protocol,
        Method::ValidateConfig,
        &ValidateConfigRequest { config: json!({}) },
        &context,
    )
    .await
    .map_err(|e| refused(Method::ValidateConfig, e))?;
    let begin = BeginLoginRequest {
        tenant: context.tenant.clone(),
        connection_id: context.connection_id.clone(),
        config: json!({}),
        redirect_uri: "https://gatehouse.invalid/plugin-check/sso/check/callback".into(),
        state: "check-state".into(),
        nonce: "check-nonce".into(),
        pkce_verifier: "check-pkce-verifier-0123456789-0123456789-0123".into(),
        request_id: "_check".into(),
        sp_entity_id: "https://gatehouse.invalid/plugin-check/sso/check".into(),
    };
    let _own_answer = host.probe::<_, BeginLoginResponse>(protocol, Method::BeginLogin, &begin, &context)
        .await
        .map_err(|e| refused(Method::BeginLogin, e))?;
    let finish = FinishLoginRequest {
        tenant: begin.tenant,
        connection_id: begin.connection_id,
        config: json!({}),
        redirect_uri: begin.redirect_uri,
        state: begin.state,
        nonce: begin.nonce,
        pkce_verifier: begin.pkce_verifier,
        params: vec![],
        request_id: Some(begin.request_id),
        sp_entity_id: begin.sp_entity_id,
    };
    let _own_answer = host.probe::<_, ExternalIdentity>(protocol, Method::FinishLogin, &finish, &context)
        .await
        .map_err(|e| refused(Method::FinishLogin, e))?;
    // The optional calls, for plugins that declare them: the host will make them.
    if info.capabilities.iter().any(|c| c == gatehouse_plugin_sdk::capability::METADATA) {
        let request = gatehouse_plugin_sdk::MetadataRequest {
            tenant: context.tenant.clone(),
            connection_id: context.connection_id.clone(),
            config: json!({}),
            sp_entity_id: "https://gatehouse.invalid/plugin-check/sso/check".into(),
            acs_url: "https://gatehouse.invalid/plugin-check/sso/check/acs".into(),
        };
        let _own_answer = host
            .probe::<_, gatehouse_plugin_sdk::MetadataResponse>(protocol, Method::Metadata, &request, &context)
            .await
            .map_err(|e| refused(Method::Metadata, e))?;
    }
    if info.capabilities.iter().any(|c| c == gatehouse_plugin_sdk::capability::INSPECT_CONNECTION) {
        let request = gatehouse_plugin_sdk::InspectRequest {
            tenant: context.tenant.clone(),
            connection_id: context.connection_id.clone(),
            config: json!({}),
        };
        let _own_answer = host
            .probe::<_, gatehouse_plugin_sdk::InspectReport>(
                protocol,
                Method::InspectConnection,
                &request,
                &context,
            )
            .await
            .map_err(|e| refused(Method::InspectConnection, e))?;
    }
    if info.config_schema.is_null() {
        return Ok(format!(
            "{} {} (warning: no config schema; admins get no field-level checks before validate_config)",
            info.protocol, info.version
        ));
    }
    Ok(format!("{} {}", info.protocol, info.version))
}

/// Another library in the deployment's plugin directories that declares `protocol`. Files
/// with the checked library's own name are the same plugin (installed, or cargo's copy).
fn serving_same_protocol(
    path: &Path,
    protocol: &str,
    dirs: &[PathBuf],
    prefix: Option<&str>,
) -> Option<PathBuf> {
    let own_name = path.file_name()?;
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for candidate in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            let Some(name) = candidate.file_name() else {
                continue;
            };
            let text = name.to_string_lossy();
            let library = text.ends_with(".so") || text.ends_with(".dylib");
            let named = prefix.is_none_or(|p| text.starts_with(&format!("lib{p}")));
            if name == own_name || !library || !named || !candidate.is_file() {
                continue;
            }
            if let Ok(other) = LoadedLibrary::open(&candidate) {
                if other.protocol() == protocol {
                    return Some(candidate);
                }
            }
        }
    }
    None
}
