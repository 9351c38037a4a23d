//! A plugin that declares a secret inside an array (`/credentials/1`). The host seals, keeps
//! and redacts secrets as top-level members only, so it refuses the plugin at load rather than
//! store that value in clear ("secret field ...").

#[path = "../../fixture.rs"]
mod fixture;

use gatehouse_plugin_sdk::{
    reason, BeginLoginRequest, BeginLoginResponse, ExternalIdentity, FinishLoginRequest, Host,
    PluginError, PluginInfo, Protocol, ValidateConfigRequest, ValidatedConfig,
};

struct NestedSecret;

impl Protocol for NestedSecret {
    fn describe(&self) -> PluginInfo {
        PluginInfo {
            secret_fields: vec!["/credentials/1".to_owned()],
            ..fixture::info("broken_secret")
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

gatehouse_plugin_sdk::export_plugin!(NestedSecret, "broken_secret", || NestedSecret);
