//! HTTP routes, one file per resource. Registration order matters: fixed paths first, the
//! tenant catch-all `/{slug}` last.

pub mod audit;
pub mod audit_export;
pub mod audit_summary;
pub mod browser;
pub mod config_history;
pub mod credentials;
pub mod health;
pub mod plugins;
pub mod session;
pub mod tenants;

use utoipa_actix_web::service_config::ServiceConfig;

/// Registers every documented route.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(session::get_session)
        .service(plugins::list_plugins)
        .service(tenants::create_tenant)
        .service(tenants::get_tenant)
        .service(tenants::put_connection)
        .service(tenants::get_connection)
        .service(tenants::delete_connection)
        .service(tenants::get_login_policy)
        .service(tenants::put_login_policy)
        .service(config_history::config_at)
        .service(config_history::config_diff)
        .service(audit::list_events)
        .service(audit_export::export_events)
        .service(audit_summary::audit_summary)
        .service(audit::verify_chain)
        .service(audit::attempt_diagnostics)
        .service(credentials::tenant_reads)
        .service(credentials::verify_tenant_reads)
        .service(credentials::platform_events)
        .service(credentials::platform_reads)
        .service(credentials::create_credential)
        .service(credentials::list_credentials)
        .service(credentials::revoke_credential)
        .service(browser::start)
        .service(browser::callback)
        .service(browser::acs)
        .service(browser::acs_continue)
        .service(browser::metadata)
        .service(browser::logout)
        .service(browser::email_code_request)
        .service(browser::email_code_verify)
        .service(browser::email_code_link)
        .service(browser::email_code_link_confirm)
        .service(browser::discover)
        .service(browser::standard_start)
        .service(browser::standard_callback)
        .service(browser::tenant_page);
}
