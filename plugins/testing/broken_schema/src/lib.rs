//! A plugin whose config schema points at a remote document. The host resolves no remote
//! `$ref` (a plugin must not make it fetch anything at load time), so the schema does not
//! compile and the host refuses the plugin ("config schema ...").

#[path = "../../fixture.rs"]
mod fixture;

use gatehouse_plugin_sdk::{
    reason, BeginLoginRequest, BeginLoginResponse, ExternalIdentity, FinishLoginRequest, Host,
    PluginError, PluginInfo, Protocol, ValidateConfigRequest, ValidatedConfig,
};

struct RemoteSchema;

impl Protocol for RemoteSchema {
    fn describe(&self) -> PluginInfo {
        PluginInfo {
            config_schema: serde_json::json!({
                "$schema": gatehouse_plugin_sdk::schema::DIALECT,
                "type": "object",
                "properties": {
                    "allowed_domains": { "$ref": "https://schemas.attacker.test/domains.json" }
                }
            }),
            ..fixture::info("broken_schema")
        }
    }

    fn validate_config(&self, request: ValidateConfigRequest) -> Result<ValidatedConfig, PluginError> {
        fixture::accept(request)
    }

    fn begin_login(&self, _: &Host<'_>, _: BeginLoginRequest) -> Result<BeginLoginResponse, PluginError> {
        Err(PluginError::new(reason::UNSUPPORTED, "never loaded"))
    }

    fn finish_login(&self, _: &Host<'_>, _: FinishLoginRequest) -> Result<ExternalIdentity, PluginError> {
        Err(PluginError::new(reason::UNSUPPORTED, "never loaded"))
    }
}

gatehouse_plugin_sdk::export_plugin!(RemoteSchema, "broken_schema", || RemoteSchema);
