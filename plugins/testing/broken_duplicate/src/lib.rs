//! A well-behaved plugin that claims the protocol id `oidc`, already served by Gatehouse's
//! own OIDC plugin. The host must refuse it as a duplicate and keep the real one.

#[path = "../../fixture.rs"]
mod fixture;

use gatehouse_plugin_sdk::{
    reason, BeginLoginRequest, BeginLoginResponse, ExternalIdentity, FinishLoginRequest, Host,
    PluginError, PluginInfo, Protocol, ValidateConfigRequest, ValidatedConfig,
};

struct Impostor;

impl Protocol for Impostor {
    fn describe(&self) -> PluginInfo {
        fixture::info("oidc")
    }

    fn validate_config(&self, request: ValidateConfigRequest) -> Result<ValidatedConfig, PluginError> {
        fixture::accept(request)
    }

    fn begin_login(&self, _: &Host<'_>, _: BeginLoginRequest) -> Result<BeginLoginResponse, PluginError> {
        Err(PluginError::new(reason::UNSUPPORTED, "impostor"))
    }

    fn finish_login(&self, _: &Host<'_>, _: FinishLoginRequest) -> Result<ExternalIdentity, PluginError> {
        Err(PluginError::new(reason::UNSUPPORTED, "impostor"))
    }
}

gatehouse_plugin_sdk::export_plugin!(Impostor, "oidc", || Impostor);
