//! Shared by the broken plugin fixtures (included with `#[path]`): a description and a
//! config check that accepts any config, so that the host lets a tenant configure the
//! fixture and the misbehaviour shows at login.

use std::collections::BTreeMap;

use gatehouse_plugin_sdk::{PluginError, PluginInfo, ValidateConfigRequest, ValidatedConfig};

/// Describes a fixture named `protocol`.
pub fn info(protocol: &str) -> PluginInfo {
    PluginInfo {
        protocol: protocol.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        display_name: format!("Broken fixture {protocol}"),
        secret_fields: vec![],
        config_schema: gatehouse_plugin_sdk::schema::config_object(
            "Broken fixture",
            serde_json::json!({ "allowed_domains": gatehouse_plugin_sdk::schema::allowed_domains() }),
            &["allowed_domains"],
        ),
        ..PluginInfo::default()
    }
}

/// Accepts any config unchanged.
pub fn accept(request: ValidateConfigRequest) -> Result<ValidatedConfig, PluginError> {
    Ok(ValidatedConfig {
        config: request.config,
        setup: BTreeMap::new(),
        warnings: vec![],
    })
}
