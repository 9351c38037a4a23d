//! Start-up: logging, store, keys, plugins, credentials, and the HTTP server.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpMessage, HttpResponse, HttpServer};
use anyhow::{bail, Context};
use async_trait::async_trait;
use gatehouse_core::crypto::SecretKey;
use gatehouse_core::plugins::{Outbound, PluginHost};
use gatehouse_core::projections::{Projector, ProjectorSettings};
use gatehouse_core::store::{Db, HttpCache};
use gatehouse_core::service::{MailDelivery, Mailer, SmtpSettings};
use gatehouse_core::{Gatehouse, Settings};
use gatehouse_plugin_sdk::{HttpError, HttpRequest, HttpResponse as PluginHttpResponse};
use tracing::Instrument;
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::config::{Config, EmailCodeConfig, LogFormat};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::outbound::{OutboundClient, OutboundPolicy};
use crate::openapi::ApiDoc;
use crate::pages;
use crate::state::{AppState, RequestId};

/// Largest JSON body the API accepts.
const JSON_LIMIT: usize = 64 * 1024;

/// Installs the tracing subscriber: human-readable text by default, JSON on request.
pub fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Runs the service until it is stopped.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let mut gatehouse = assemble(&config, &metrics).await?;
    {
        let observer = metrics.clone();
        gatehouse.observe_logins(Arc::new(move |protocol, outcome, reason| {
            observer.login(protocol, outcome, reason)
        }));
    }
    let openapi = crate::openapi::document();
    let state = web::Data::new(AppState {
        gatehouse,
        metrics,
        secure_cookies: config.secure_cookies(),
        trust_proxy_headers: config.trust_proxy_headers,
        openapi_json: openapi.to_json().context("cannot render the OpenAPI document")?,
    });
    bootstrap_credentials(&state.gatehouse, &config).await?;
    let projector = Projector::new(
        state.gatehouse.projections().clone(),
        ProjectorSettings::default(),
    );
    tokio::spawn(projector.run());

    let listen = config.listen;
    tracing::info!(%listen, public_url = %config.public_url, store = state.gatehouse.db().kind(), "gatehouse listening");
    let server = HttpServer::new(move || {
        let (app, _api) = App::new()
            .into_utoipa_app()
            .openapi(ApiDoc::openapi())
            .app_data(state.clone())
            .app_data(json_config())
            .app_data(query_config())
            .configure(crate::routes::configure)
            .split_for_parts();
        app.wrap(from_fn(observe))
            .route("/api/openapi.json", web::get().to(openapi_json))
            .service(SwaggerUi::new("/api/docs/{_:.*}").url("/api/docs/openapi.json", openapi.clone()))
            .default_service(web::to(not_found))
    })
    .bind(listen)
    .with_context(|| format!("cannot listen on {listen}"))?
    .run();
    server.await?;
    Ok(())
}

/// Empties and rebuilds every read model, printing progress (events applied, rate) to stderr.
pub async fn rebuild_projections(config: Config) -> anyhow::Result<()> {
    let db = Db::connect(&config.database_url).await?;
    let started = Instant::now();
    let mut last_report = Instant::now();
    let total = gatehouse_core::projections::rebuild(&db, |applied| {
        if last_report.elapsed() >= Duration::from_secs(1) {
            let rate = applied as f64 / started.elapsed().as_secs_f64();
            eprintln!("projections: {applied} events applied ({rate:.0} events/s)");
            last_report = Instant::now();
        }
    })
    .await?;
    let elapsed = started.elapsed();
    let rate = total as f64 / elapsed.as_secs_f64().max(1e-9);
    eprintln!("projections: {total} events applied ({rate:.0} events/s)");
    eprintln!("projections rebuilt from {total} events in {elapsed:.1?}");
    Ok(())
}

async fn assemble(config: &Config, metrics: &Arc<Metrics>) -> anyhow::Result<Gatehouse> {
    let db = Db::connect(&config.database_url)
        .await
        .with_context(|| format!("cannot open the {} store", store_name(config)))?;
    let key = secret_key(config)?;
    crate::audit_cli::start_chain(config, &key, &db).await?;
    let outbound = OutboundClient::new(OutboundPolicy {
        allow_private_networks: config.allow_private_networks,
        // Plain http only in the local testing mode that also opens private networks.
        require_https: !config.allow_private_networks,
        timeout: Duration::from_secs(config.outbound_timeout_secs),
        ..OutboundPolicy::default()
    })?;
    if config.allow_private_networks {
        tracing::warn!("outbound requests to private and loopback addresses are allowed");
    }
    let mut plugins = PluginHost::new(
        Arc::new(HostOutbound(outbound)),
        HttpCache::new(db.clone()),
        Duration::from_secs(config.plugin_timeout_secs),
        tokio::runtime::Handle::current(),
    );
    let observer = metrics.clone();
    plugins.observe(Arc::new(move |protocol, method, elapsed, outcome| {
        observer.plugin_call(protocol, method, elapsed, outcome)
    }));
    let prefix = config.plugin_dir_is_default.then_some("gatehouse_");
    plugins.load_dirs(&config.plugin_dirs, prefix).await;
    if plugins.plugins().next().is_none() {
        tracing::warn!(dirs = ?config.plugin_dirs, "no protocol plugin loaded; build them with `cargo build --workspace`");
    }
    let settings = Settings {
        public_url: config.public_url.clone(),
        flow_ttl_secs: config.login_timeout_secs,
        session_ttl_secs: config.session_ttl_secs,
    };
    let mut gatehouse = Gatehouse::new(db, plugins, key, settings);
    if let Some(email_code) = &config.email_code {
        enable_email_code(&mut gatehouse, email_code)?;
    }
    for provider in &config.standard_providers {
        let method = provider.method();
        gatehouse
            .enable_standard_provider(provider.clone())
            .await
            .map_err(|detail| anyhow::anyhow!("cannot offer {}: {detail}", method.as_str()))?;
        tracing::info!(
            method = method.as_str(),
            redirect_url = %gatehouse.standard_callback_uri(method),
            "standard login method offered"
        );
    }
    Ok(gatehouse)
}

/// Switches the email-code method on with its mailer. Without an SMTP host, messages go to the
/// outbox folder, whose path (never a message) is logged.
fn enable_email_code(gatehouse: &mut Gatehouse, config: &EmailCodeConfig) -> anyhow::Result<()> {
    let delivery = match &config.delivery {
        MailDelivery::Outbox(dir) => MailDelivery::Outbox(dir.clone()),
        MailDelivery::Smtp(smtp) => MailDelivery::Smtp(SmtpSettings {
            host: smtp.host.clone(),
            port: smtp.port,
            tls: smtp.tls,
            username: smtp.username.clone(),
            password: smtp.password.clone(),
            timeout: smtp.timeout,
        }),
    };
    let mailer = Mailer::new(delivery, &config.from).context("cannot set up sign-in mail")?;
    match mailer.outbox() {
        Some(outbox) => tracing::warn!(
            outbox = %outbox.display(),
            "no SMTP server configured: sign-in emails are written to the outbox folder"
        ),
        None => match &config.delivery {
            MailDelivery::Smtp(smtp) => tracing::info!(host = %smtp.host, port = smtp.port, tls = ?smtp.tls, "sign-in emails go out over SMTP"),
            MailDelivery::Outbox(_) => {}
        },
    }
    gatehouse.enable_email_code(config.settings.clone(), mailer);
    Ok(())
}

fn store_name(config: &Config) -> &'static str {
    if config.is_postgres() {
        "PostgreSQL"
    } else {
        "SQLite"
    }
}

/// The key for connection secrets: from configuration, or (SQLite only) from the data dir,
/// generated there on first start.
pub(crate) fn secret_key(config: &Config) -> anyhow::Result<SecretKey> {
    if let Some(text) = &config.secret_key {
        return SecretKey::from_base64(text).context("GATEHOUSE_SECRET_KEY is invalid");
    }
    if config.is_postgres() {
        bail!(
            "GATEHOUSE_SECRET_KEY is required with PostgreSQL, and every node must use the same \
             one; create one with `gatehouse keygen`"
        );
    }
    let path = config.data_dir.join("secret.key");
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return SecretKey::from_base64(&text).with_context(|| format!("{} is invalid", path.display()));
    }
    let key = SecretKey::generate();
    write_private(&path, key.to_base64().as_bytes())?;
    tracing::info!(path = %path.display(), "generated the secret key for connection secrets; back it up");
    Ok(key)
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}

async fn bootstrap_credentials(gatehouse: &Gatehouse, config: &Config) -> anyhow::Result<()> {
    if let Some(token) = &config.admin_token {
        gatehouse.credentials().set_configured(token).await?;
    } else if let Some(token) = gatehouse.credentials().bootstrap().await? {
        // Printed once, to the terminal only; only its hash is stored.
        eprintln!(
            "\n  Admin API token (shown once, store it now):\n\n    {token}\n\n  \
             Use it as `Authorization: Bearer <token>`.\n"
        );
    }
    Ok(())
}

/// The plugin host's outbound HTTP, served by the SSRF-safe client.
struct HostOutbound(OutboundClient);

#[async_trait]
impl Outbound for HostOutbound {
    async fn fetch(&self, request: HttpRequest) -> Result<PluginHttpResponse, HttpError> {
        self.0.fetch(request).await
    }

    fn check_destination(&self, url: &str) -> Result<(), HttpError> {
        self.0.check_url_literal(url).map(|_| ())
    }
}

/// Request id, a span without the query string (it may carry codes), and metrics.
async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(request_id.clone()));
    // Only standard methods become label values; anything else would let a client create
    // metric series at will.
    let method = match req.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS") => m.to_owned(),
        _ => "other".to_owned(),
    };
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let span = tracing::info_span!("request", request_id = %request_id, %method, route = %route);
    let mut response = next.call(req).instrument(span.clone()).await?;
    let status = response.status();
    let elapsed = started.elapsed();
    if let Some(state) = state {
        state.metrics.request(&method, &route, status.as_u16(), elapsed);
    }
    span.in_scope(|| {
        tracing::info!(status = status.as_u16(), elapsed_ms = elapsed.as_millis() as u64, "request done")
    });
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(actix_web::http::header::HeaderName::from_static("x-request-id"), value);
    }
    Ok(response)
}

async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi_json.clone())
}

async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    if req.path().starts_with("/api/") {
        return Err(ApiError::NotFound("route"));
    }
    Ok(pages::respond(StatusCode::NOT_FOUND, pages::not_found()))
}

fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(JSON_LIMIT)
        .error_handler(|error, _req| {
            match &error {
                actix_web::error::JsonPayloadError::ContentType => {
                    ApiError::BadRequest("the body must be application/json".to_owned())
                }
                actix_web::error::JsonPayloadError::Overflow { .. }
                | actix_web::error::JsonPayloadError::OverflowKnownLength { .. } => {
                    ApiError::TooLarge(format!("the body is larger than {JSON_LIMIT} bytes"))
                }
                actix_web::error::JsonPayloadError::Deserialize(e) => match unknown_field(e) {
                    // serde names an unknown member but not where a wrong type was.
                    Some(name) => ApiError::invalid(&format!("/{name}"), format!("invalid JSON body: {e}")),
                    None => ApiError::BadRequest(format!("invalid JSON body: {e}")),
                },
                _ => ApiError::BadRequest("the body could not be read".to_owned()),
            }
            .into()
        })
}

/// The member serde refused as unknown at the top level of a body, as a JSON pointer token.
fn unknown_field(error: &serde_json::Error) -> Option<String> {
    let text = error.to_string();
    let rest = text.strip_prefix("unknown field `")?;
    let name = &rest[..rest.find('`')?];
    Some(name.replace('~', "~0").replace('/', "~1"))
}

fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error, req| {
        if req.path().starts_with("/api/") {
            ApiError::BadRequest(format!("invalid query: {error}")).into()
        } else {
            let page = pages::respond(StatusCode::BAD_REQUEST, pages::bad_request("The link is malformed."));
            actix_web::error::InternalError::from_response(error, page).into()
        }
    })
}
