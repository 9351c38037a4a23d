//! A plugin that panics in `begin_login` and `finish_login`. The SDK's export macro catches
//! the panic at the boundary; the host must fail the attempt with `plugin_panic`.

#[path = "../../fixture.rs"]
mod fixture;

use gatehouse_plugin_sdk::{
    BeginLoginRequest, BeginLoginResponse, ExternalIdentity, FinishLoginRequest, Host,
    PluginError, PluginInfo, Protocol, ValidateConfigRequest, ValidatedConfig,
};

struct Panicking;

impl Protocol for Panicking {
    fn describe(&self) -> PluginInfo {
        fixture::info("broken_panic")
    }

    fn validate_config(&self, request: ValidateConfigRequest) -> Result<ValidatedConfig, PluginError> {
        fixture::accept(request)
    }

    fn begin_login(&self, _: &Host<'_>, _: BeginLoginRequest) -> Result<BeginLoginResponse, PluginError> {
        panic!("broken_panic: deliberate panic in begin_login")
    }

    fn finish_login(&self, _: &Host<'_>, _: FinishLoginRequest) -> Result<ExternalIdentity, PluginError> {
        panic!("broken_panic: deliberate panic in finish_login")
    }
}

gatehouse_plugin_sdk::export_plugin!(Panicking, "broken_panic", || Panicking);
