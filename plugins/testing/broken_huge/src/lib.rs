//! A plugin whose `begin_login` answers a 64 MiB JSON string. The host must refuse output
//! over its size limit with `plugin_failure`.

#[path = "../../fixture.rs"]
mod fixture;

use gatehouse_plugin_sdk::{
    BeginLoginRequest, BeginLoginResponse, ExternalIdentity, FinishLoginRequest, Host,
    PluginError, PluginInfo, Protocol, ValidateConfigRequest, ValidatedConfig,
};

struct Huge;

fn huge() -> String {
    format!("https://idp.invalid/{}", "a".repeat(64 * 1024 * 1024))
}

impl Protocol for Huge {
    fn describe(&self) -> PluginInfo {
        fixture::info("broken_huge")
    }

    fn validate_config(&self, request: ValidateConfigRequest) -> Result<ValidatedConfig, PluginError> {
        fixture::accept(request)
    }

    fn begin_login(&self, _: &Host<'_>, _: BeginLoginRequest) -> Result<BeginLoginResponse, PluginError> {
        Ok(BeginLoginResponse { redirect_url: huge() })
    }

    fn finish_login(&self, _: &Host<'_>, _: FinishLoginRequest) -> Result<ExternalIdentity, PluginError> {
        Err(PluginError::new("plugin_failure", huge()))
    }
}

gatehouse_plugin_sdk::export_plugin!(Huge, "broken_huge", || Huge);
