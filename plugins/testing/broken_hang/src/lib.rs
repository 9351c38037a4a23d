//! A plugin whose `begin_login` never returns. The host must give up after its per-call time
//! limit, fail the attempt with `plugin_failure` and keep serving (the blocked thread is lost).

#[path = "../../fixture.rs"]
mod fixture;

use gatehouse_plugin_sdk::{
    BeginLoginRequest, BeginLoginResponse, ExternalIdentity, FinishLoginRequest, Host,
    PluginError, PluginInfo, Protocol, ValidateConfigRequest, ValidatedConfig,
};

struct Hanging;

impl Protocol for Hanging {
    fn describe(&self) -> PluginInfo {
        fixture::info("broken_hang")
    }

    fn validate_config(&self, request: ValidateConfigRequest) -> Result<ValidatedConfig, PluginError> {
        fixture::accept(request)
    }

    fn begin_login(&self, _: &Host<'_>, _: BeginLoginRequest) -> Result<BeginLoginResponse, PluginError> {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }

    fn finish_login(&self, _: &Host<'_>, _: FinishLoginRequest) -> Result<ExternalIdentity, PluginError> {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

gatehouse_plugin_sdk::export_plugin!(Hanging, "broken_hang", || Hanging);
