use std::collections::BTreeMap;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gatehouse_plugin_sdk::abi::{HostApi, RBuf, ABI_VERSION, STATUS_ERROR, STATUS_OK};
use gatehouse_plugin_sdk::{
    capability, reason, HttpError, HttpErrorKind, HttpRequest, HttpResponse, Method, PluginError, PluginInfo,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::loader::LoadedLibrary;
use crate::crypto::sha256_hex;
use crate::store::{now_millis, HttpCache};

/// Outbound HTTP as the deployment allows it (network policy, timeouts, size limits).
#[async_trait]
pub trait Outbound: Send + Sync {
    /// Sends one request.
    async fn fetch(&self, request: HttpRequest) -> Result<HttpResponse, HttpError>;

    /// Checks a URL without any network access: scheme, and a literal IP host against the
    /// network policy. Hostnames are checked after resolution, in `fetch`.
    fn check_destination(&self, url: &str) -> Result<(), HttpError>;
}

/// Receives the duration and outcome (`ok`, `error`, `panic`, `timeout`, `malformed`,
/// `too_large`, `busy`) of every
/// plugin call, for metrics.
pub type PluginCallObserver = Arc<dyn Fn(&str, &str, Duration, &str) + Send + Sync>;

/// Who a call is made for; scopes the fetch cache and the logs.
#[derive(Clone, Debug)]
pub struct CallContext {
    /// Tenant slug.
    pub tenant: String,
    /// Connection id.
    pub connection_id: String,
}

/// A plugin accepted by the host.
pub struct LoadedPlugin {
    /// The library.
    pub library: LoadedLibrary,
    /// What it said about itself.
    pub info: PluginInfo,
    /// Its connection config schema, compiled; `None` for a plugin that publishes none.
    pub schema: Option<jsonschema::Validator>,
    /// One permit per call in progress. A call holds its permit until the plugin returns, even
    /// after the host stopped waiting for it, so a plugin that hangs can tie up at most
    /// [`MAX_CONCURRENT_CALLS`] threads and other plugins keep theirs.
    permits: Arc<tokio::sync::Semaphore>,
}

/// Calls one plugin may have in progress at once on this node; more fail at once as busy.
pub const MAX_CONCURRENT_CALLS: usize = 64;

/// A place where a connection config breaks its plugin's schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaViolation {
    /// JSON pointer (RFC 6901) into the config; `""` for the config itself.
    pub pointer: String,
    /// What is wrong, without the offending value (it may be a secret).
    pub detail: String,
}

/// At most this many violations are reported for one config.
const MAX_VIOLATIONS: usize = 20;

/// The largest answer the host accepts from one plugin call (4 MiB). A larger answer is freed
/// uncopied and the call fails with `plugin_failure`.
pub const DEFAULT_MAX_OUTPUT: usize = 4 * 1024 * 1024;

/// Longest secret field name a plugin may declare.
const MAX_SECRET_FIELD_CHARS: usize = 64;

/// Loaded plugins by protocol id, and the services they get.
pub struct PluginHost {
    plugins: BTreeMap<String, Arc<LoadedPlugin>>,
    outbound: Arc<dyn Outbound>,
    cache: Option<Arc<HttpCache>>,
    call_timeout: Duration,
    max_output: usize,
    observer: Option<PluginCallObserver>,
    runtime: tokio::runtime::Handle,
}

/// What the host callback needs during one call. Owned by the blocking task, so it outlives
/// the call even when the caller stopped waiting.
struct HostCallContext {
    runtime: tokio::runtime::Handle,
    outbound: Arc<dyn Outbound>,
    cache: Option<Arc<HttpCache>>,
    scope: String,
}

impl PluginHost {
    /// A host with no plugins yet. Plugin HTTP requests run on `runtime`, which must be a
    /// multi-threaded runtime (its workers drive the I/O while a plugin call blocks).
    pub fn new(
        outbound: Arc<dyn Outbound>,
        cache: HttpCache,
        call_timeout: Duration,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        PluginHost {
            plugins: BTreeMap::new(),
            outbound,
            cache: Some(Arc::new(cache)),
            call_timeout,
            max_output: DEFAULT_MAX_OUTPUT,
            observer: None,
            runtime,
        }
    }

    /// A throwaway host without database or network, for checking a plugin library
    /// (`gatehouse plugins check`): every HTTP request of a plugin fails, nothing is cached.
    pub fn offline(call_timeout: Duration, runtime: tokio::runtime::Handle) -> Self {
        PluginHost {
            plugins: BTreeMap::new(),
            outbound: Arc::new(NoNetwork),
            cache: None,
            call_timeout,
            max_output: DEFAULT_MAX_OUTPUT,
            observer: None,
            runtime,
        }
    }

    /// The per-call time limit.
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// Reports every call to `observer`.
    pub fn observe(&mut self, observer: PluginCallObserver) {
        self.observer = Some(observer);
    }

    /// Loads the plugin libraries found in `dirs`. With
    /// `name_prefix`, only files named `lib{prefix}*` are tried (used for the default
    /// directories, which also hold unrelated build output). Every refusal is logged with its
    /// reason; a bad library never stops the host.
    pub async fn load_dirs(&mut self, dirs: &[PathBuf], name_prefix: Option<&str>) {
        // The same library name can sit in several of the directories (cargo leaves a plugin
        // both next to the binary and in `deps/`, and only one of them may be fresh): of
        // equally named files the most recently modified one is loaded.
        // Keyed by (not shipped with Gatehouse, file name): Gatehouse's own `libgatehouse_*`
        // libraries load first, so a third-party library claiming one of their protocol ids
        // is the one refused as a duplicate; the rest load in file name order.
        let mut newest: BTreeMap<(bool, std::ffi::OsString), (std::time::SystemTime, PathBuf)> =
            BTreeMap::new();
        let mut passed_over = 0usize;
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
                if !is_library(&path, name_prefix) {
                    passed_over += usize::from(name_prefix.is_some() && is_library(&path, None));
                    continue;
                }
                let (Some(name), Ok(modified)) = (
                    path.file_name().map(|name| {
                        let own = name.to_string_lossy().starts_with("libgatehouse_");
                        (!own, name.to_owned())
                    }),
                    std::fs::metadata(&path).and_then(|m| m.modified()),
                ) else {
                    continue;
                };
                match newest.get(&name) {
                    Some((seen, _)) if *seen >= modified => {}
                    _ => {
                        newest.insert(name, (modified, path));
                    }
                }
            }
        }
        if passed_over > 0 {
            tracing::info!(
                libraries = passed_over,
                prefix = name_prefix.unwrap_or_default(),
                "other libraries in the default plugin directories were not tried: only lib<prefix>* load there; set GATEHOUSE_PLUGIN_DIR to load a plugin of your own"
            );
        }
        for (_, path) in newest.into_values() {
            if let Err(error) = self.load(&path).await {
                tracing::warn!(path = %path.display(), %error, "plugin refused");
            }
        }
    }

    /// Loads one library and registers it under its protocol id.
    pub async fn load(&mut self, path: &Path) -> Result<(), PluginError> {
        let refuse = |detail: String| PluginError::new(reason::PLUGIN_FAILURE, detail);
        let library = LoadedLibrary::open(path).map_err(|e| refuse(e.to_string()))?;
        if let Some(existing) = self.plugins.get(library.protocol()) {
            let same_file = existing.library.path().file_name() == path.file_name();
            if same_file {
                tracing::debug!(path = %path.display(), "same plugin already loaded");
                return Ok(());
            }
            return Err(refuse(format!(
                "duplicate protocol id {:?}, already served by {}",
                library.protocol(),
                existing.library.path().display()
            )));
        }
        let plugin = Arc::new(LoadedPlugin {
            info: PluginInfo {
                protocol: library.protocol().to_owned(),
                version: library.version().to_owned(),
                ..PluginInfo::default()
            },
            library,
            schema: None,
            permits: Arc::new(tokio::sync::Semaphore::new(1)),
        });
        let context = CallContext {
            tenant: String::new(),
            connection_id: String::new(),
        };
        let info: PluginInfo = self
            .call_plugin(plugin.clone(), Method::Describe, &(), &context)
            .await
            .1?;
        if info.protocol != plugin.info.protocol {
            return Err(refuse(format!(
                "describe() names protocol {:?} but the descriptor says {:?}",
                info.protocol, plugin.info.protocol
            )));
        }
        let schema = compile_schema(&info.config_schema)
            .map_err(|detail| refuse(format!("config schema {detail}")))?;
        if schema.is_none() {
            tracing::warn!(
                protocol = %info.protocol,
                path = %path.display(),
                "plugin publishes no config schema: connection configs are checked by the plugin alone"
            );
        }
        let unknown: Vec<&str> = info
            .capabilities
            .iter()
            .map(String::as_str)
            .filter(|name| !capability::ALL.contains(name))
            .collect();
        if !unknown.is_empty() {
            return Err(refuse(format!(
                "unknown capabilities {}; known: {}",
                truncate(&format!("{unknown:?}"), 200),
                capability::ALL.join(", ")
            )));
        }
        // The host seals and redacts secrets as top-level members of the config only.
        if let Some(bad) = info.secret_fields.iter().find(|field| !is_member_pointer(field)) {
            return Err(refuse(format!(
                "secret field {} is not a top-level member pointer such as \"/client_secret\"",
                truncate(&format!("{bad:?}"), 80)
            )));
        }
        let Ok(plugin) = Arc::try_unwrap(plugin) else {
            return Err(refuse("plugin call still running after describe()".into()));
        };
        tracing::info!(
            protocol = %info.protocol,
            version = %info.version,
            path = %path.display(),
            "plugin loaded"
        );
        let loaded = LoadedPlugin {
            library: plugin.library,
            info,
            schema,
            permits: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_CALLS)),
        };
        self.plugins.insert(loaded.info.protocol.clone(), Arc::new(loaded));
        Ok(())
    }

    /// Checks a configured URL against the outbound network policy, without fetching it.
    pub fn check_destination(&self, url: &str) -> Result<(), HttpError> {
        self.outbound.check_destination(url)
    }

    /// Protocol ids of the plugins whose every call slot is taken (calls in progress, or
    /// timed out and still running): new calls to them fail at once until one returns.
    pub fn saturated(&self) -> Vec<String> {
        self.plugins
            .values()
            .filter(|p| p.permits.available_permits() == 0)
            .map(|p| p.info.protocol.clone())
            .collect()
    }

    /// Protocol ids and descriptions of the loaded plugins.
    pub fn plugins(&self) -> impl Iterator<Item = &PluginInfo> {
        self.plugins.values().map(|p| &p.info)
    }

    /// The plugin for `protocol`, if loaded.
    pub fn plugin(&self, protocol: &str) -> Option<&PluginInfo> {
        self.plugins.get(protocol).map(|p| &p.info)
    }

    /// Whether the plugin for `protocol` is loaded and declares `capability`.
    pub fn has_capability(&self, protocol: &str, capability: &str) -> bool {
        self.plugins
            .get(protocol)
            .is_some_and(|p| p.info.capabilities.iter().any(|c| c == capability))
    }

    /// Checks `config` against the config schema of the plugin for `protocol`. Returns the
    /// violations (at most 20), none when the config fits or the plugin publishes no schema.
    /// Details never repeat the offending value: it may be a secret.
    pub fn check_config(&self, protocol: &str, config: &serde_json::Value) -> Vec<SchemaViolation> {
        let Some(schema) = self.plugins.get(protocol).and_then(|p| p.schema.as_ref()) else {
            return Vec::new();
        };
        let mut violations: Vec<SchemaViolation> = Vec::new();
        for error in schema.iter_errors(config) {
            let at = error.instance_path().to_string();
            // Exact pointers (control characters included: the problem document is JSON), cut
            // only when absurdly long.
            let member = |name: &str| {
                let pointer = format!("{at}{}", gatehouse_plugin_sdk::config::pointer(name));
                match pointer.char_indices().nth(1024) {
                    Some((cut, _)) => format!("{}…", &pointer[..cut]),
                    None => pointer,
                }
            };
            // Name the member itself for unknown and missing members, as the plugins' own
            // checks do; otherwise the library's message, with the value masked.
            let found: Vec<SchemaViolation> = match error.kind() {
                jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected }
                | jsonschema::error::ValidationErrorKind::UnevaluatedProperties { unexpected } => unexpected
                    .iter()
                    .map(|name| SchemaViolation {
                        pointer: member(name),
                        detail: "unknown field".into(),
                    })
                    .collect(),
                jsonschema::error::ValidationErrorKind::Required { property } => vec![SchemaViolation {
                    pointer: member(property.as_str().unwrap_or_default()),
                    detail: "is required".into(),
                }],
                _ => vec![SchemaViolation {
                    pointer: at.clone(),
                    detail: truncate(&error.masked_with("the value").to_string(), 300),
                }],
            };
            for violation in found {
                if !violations.contains(&violation) && violations.len() < MAX_VIOLATIONS {
                    violations.push(violation);
                }
            }
            if violations.len() == MAX_VIOLATIONS {
                break;
            }
        }
        violations
    }

    /// Calls `method` on the plugin for `protocol`. A missing plugin, a panic, malformed
    /// output or a call over the time limit all come back as a [`PluginError`] with a reason
    /// code; the host keeps serving.
    pub async fn call<Req, Resp>(
        &self,
        protocol: &str,
        method: Method,
        request: &Req,
        context: &CallContext,
    ) -> Result<Resp, PluginError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let plugin = self.plugins.get(protocol).cloned().ok_or_else(|| {
            PluginError::new(reason::PLUGIN_FAILURE, format!("no plugin for protocol {protocol:?}"))
        })?;
        self.call_plugin(plugin, method, request, context).await.1
    }

    /// Like [`PluginHost::call`], but tells a plugin's own answer (`Ok`, which may be a
    /// refusal) from a misbehaviour the host contained (`Err`: a panic, malformed or oversized
    /// output, a call over the time limit, or no such plugin). Used by `gatehouse plugins check`.
    pub async fn probe<Req, Resp>(
        &self,
        protocol: &str,
        method: Method,
        request: &Req,
        context: &CallContext,
    ) -> Result<Result<Resp, PluginError>, PluginError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let plugin = self.plugins.get(protocol).cloned().ok_or_else(|| {
            PluginError::new(reason::PLUGIN_FAILURE, format!("no plugin for protocol {protocol:?}"))
        })?;
        match self.call_plugin(plugin, method, request, context).await {
            ("ok" | "error", answer) => Ok(answer),
            (_, Err(error)) => Err(error),
            (_, Ok(answer)) => Ok(Ok(answer)),
        }
    }

    async fn call_plugin<Req, Resp>(
        &self,
        plugin: Arc<LoadedPlugin>,
        method: Method,
        request: &Req,
        context: &CallContext,
    ) -> (&'static str, Result<Resp, PluginError>)
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let body = match serde_json::to_vec(request) {
            Ok(body) => body,
            Err(e) => {
                let error =
                    PluginError::new(reason::PLUGIN_FAILURE, format!("cannot encode request: {e}"));
                return ("error", Err(error));
            }
        };
        let max_output = self.max_output;
        let host_context = HostCallContext {
            runtime: self.runtime.clone(),
            outbound: self.outbound.clone(),
            cache: self.cache.clone(),
            scope: format!("{}/{}", context.tenant, context.connection_id),
        };
        let protocol = plugin.info.protocol.clone();
        let started = Instant::now();
        // Plugin calls run on the host runtime's blocking threads, which the binary gives a
        // large stack: a plugin that recurses on hostile input aborts the whole process if it
        // overflows (Rust cannot catch that), so plugins must bound depth themselves and the
        // host leaves them ample room.
        let Ok(permit) = plugin.permits.clone().try_acquire_owned() else {
            let error = PluginError::new(
                reason::PLUGIN_FAILURE,
                "plugin busy: every call slot is in use (calls that timed out keep theirs until the plugin returns)",
            );
            if let Some(observer) = &self.observer {
                observer(&plugin.info.protocol, method.as_str(), Duration::ZERO, "busy");
            }
            return ("busy", Err(error));
        };
        let task = self.runtime.spawn_blocking(move || {
            let _permit = permit;
            let host_context = host_context;
            let api = HostApi {
                abi_version: ABI_VERSION,
                ctx: (&host_context as *const HostCallContext).cast::<c_void>(),
                http: host_http,
                free_buf: host_free,
            };
            plugin.library.call(&api, method.as_str(), &body, max_output)
        });
        let outcome = tokio::time::timeout(self.call_timeout, task).await;
        let (label, result) = match outcome {
            Err(_) => (
                "timeout",
                Err(PluginError::new(
                    reason::PLUGIN_FAILURE,
                    format!("plugin call {} exceeded {:?}", method.as_str(), self.call_timeout),
                )),
            ),
            Ok(Err(join_error)) => (
                "panic",
                Err(PluginError::new(
                    reason::PLUGIN_PANIC,
                    format!("plugin call aborted: {join_error}"),
                )),
            ),
            Ok(Ok(Err(len))) => (
                "too_large",
                Err(PluginError::new(
                    reason::PLUGIN_FAILURE,
                    format!(
                        "plugin call {} answered {len} bytes, output larger than the limit of {max_output} bytes",
                        method.as_str()
                    ),
                )),
            ),
            Ok(Ok(Ok((status, bytes)))) => decode(status, &bytes),
        };
        let elapsed = started.elapsed();
        if let Some(observer) = &self.observer {
            observer(&protocol, method.as_str(), elapsed, label);
        }
        if let Err(error) = &result {
            tracing::debug!(
                plugin = %protocol,
                method = method.as_str(),
                code = %error.code,
                elapsed_ms = elapsed.as_millis() as u64,
                "plugin call refused"
            );
        }
        (label, result)
    }
}

/// Compiles a plugin's config schema: `null` means none; anything else must be a draft
/// 2020-12 schema of a JSON object that compiles without fetching anything (the host has no
/// resolver for remote `$ref`).
fn compile_schema(schema: &serde_json::Value) -> Result<Option<jsonschema::Validator>, String> {
    if schema.is_null() {
        return Ok(None);
    }
    if let Some(dialect) = schema.get("$schema") {
        if dialect.as_str() != Some(gatehouse_plugin_sdk::schema::DIALECT) {
            return Err(format!(
                "must use JSON Schema draft 2020-12 ($schema {:?})",
                gatehouse_plugin_sdk::schema::DIALECT
            ));
        }
    }
    if schema.get("type").and_then(|t| t.as_str()) != Some("object") {
        return Err("must describe a JSON object (\"type\": \"object\")".into());
    }
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(schema)
        .map(Some)
        .map_err(|error| format!("does not compile: {}", truncate(&error.to_string(), 300)))
}

fn decode<Resp: DeserializeOwned>(
    status: i32,
    bytes: &[u8],
) -> (&'static str, Result<Resp, PluginError>) {
    let malformed = |what: &str| {
        PluginError::new(reason::PLUGIN_FAILURE, format!("plugin returned malformed {what}"))
    };
    match status {
        STATUS_OK => match serde_json::from_slice(bytes) {
            Ok(value) => ("ok", Ok(value)),
            Err(_) => ("malformed", Err(malformed("output"))),
        },
        STATUS_ERROR => match serde_json::from_slice::<PluginError>(bytes) {
            Ok(error) => ("error", Err(sanitize(error))),
            Err(_) => ("malformed", Err(malformed("error"))),
        },
        _ => match serde_json::from_slice::<PluginError>(bytes) {
            Ok(error) => (
                "panic",
                Err(PluginError::new(reason::PLUGIN_PANIC, truncate(&error.detail, 300))),
            ),
            Err(_) => ("panic", Err(PluginError::new(reason::PLUGIN_PANIC, "plugin panicked"))),
        },
    }
}

/// Keeps plugin-supplied reason codes and details within bounds before they reach events.
fn sanitize(mut error: PluginError) -> PluginError {
    let code_ok = !error.code.is_empty()
        && error.code.len() <= 64
        && error.code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit());
    if !code_ok {
        error.code = reason::PLUGIN_FAILURE.to_owned();
    }
    error.detail = truncate(&error.detail, 500);
    error
}

/// `/name`: one reference token, no nesting, at most 64 characters.
fn is_member_pointer(field: &str) -> bool {
    field
        .strip_prefix('/')
        .is_some_and(|name| !name.is_empty() && !name.contains('/') && name.chars().count() <= MAX_SECRET_FIELD_CHARS)
}

fn truncate(text: &str, max: usize) -> String {
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    match clean.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &clean[..cut]),
        None => clean,
    }
}

fn is_library(path: &Path, name_prefix: Option<&str>) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let extension_ok = name.ends_with(".so") || name.ends_with(".dylib");
    let prefix_ok = match name_prefix {
        Some(prefix) => name.starts_with(&format!("lib{prefix}")),
        None => true,
    };
    extension_ok && prefix_ok && path.is_file()
}

/// The `http` function of [`HostApi`]: runs on the plugin call's blocking thread.
unsafe extern "C" fn host_http(
    ctx: *const c_void,
    request: *const u8,
    request_len: usize,
    out: *mut RBuf,
) -> i32 {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` is the HostCallContext owned by the blocking task making this call.
        let context = unsafe { &*ctx.cast::<HostCallContext>() };
        let bytes = if request.is_null() || request_len == 0 {
            &[][..]
        } else {
            // SAFETY: the plugin passes a buffer it owns for the duration of the call.
            unsafe { std::slice::from_raw_parts(request, request_len) }
        };
        let request: HttpRequest = serde_json::from_slice(bytes).map_err(|e| HttpError {
            kind: HttpErrorKind::InvalidRequest,
            detail: format!("malformed request: {e}"),
        })?;
        context.runtime.block_on(fetch(context, request))
    }));
    let (status, body) = match result {
        Ok(Ok(response)) => (STATUS_OK, serde_json::to_vec(&response)),
        Ok(Err(error)) => (STATUS_ERROR, serde_json::to_vec(&error)),
        Err(_) => {
            let error = HttpError {
                kind: HttpErrorKind::Connect,
                detail: "host failure".into(),
            };
            (STATUS_ERROR, serde_json::to_vec(&error))
        }
    };
    let body = body.unwrap_or_default();
    if !out.is_null() {
        // SAFETY: the plugin passes a writable RBuf and frees it with host_free.
        unsafe { out.write(RBuf::from_vec(body)) };
    }
    status
}

/// The `free_buf` function of [`HostApi`].
unsafe extern "C" fn host_free(buf: RBuf) {
    // SAFETY: the buffer was made by RBuf::from_vec in host_http and is returned once.
    unsafe { buf.free() }
}

async fn fetch(context: &HostCallContext, request: HttpRequest) -> Result<HttpResponse, HttpError> {
    let Some(policy) = request.cache.clone().filter(|_| request.method == "GET") else {
        return context.outbound.fetch(request).await;
    };
    let Some(cache) = &context.cache else {
        return context.outbound.fetch(request).await;
    };
    let key = sha256_hex(&format!("{}\n{}\n{}", context.scope, policy.scope, request.url));
    let cached = cache.get(&key).await.ok().flatten();
    if let Some(cached) = &cached {
        let age_ms = now_millis() - cached.fetched_at;
        let fresh = age_ms < (policy.max_age_secs as i64) * 1000;
        let refresh_too_soon = age_ms < (policy.min_refresh_secs as i64) * 1000;
        if (!policy.refresh && fresh) || (policy.refresh && refresh_too_soon) {
            return Ok(HttpResponse {
                status: cached.status,
                headers: cached.headers.clone(),
                body: cached.body.clone(),
            });
        }
    }
    let response = context.outbound.fetch(request).await?;
    if (200..300).contains(&response.status) {
        if let Err(error) = cache
            .put(&key, response.status, &response.headers, &response.body)
            .await
        {
            tracing::warn!(%error, "fetch cache write failed");
        }
    }
    Ok(response)
}

/// The outbound side of an offline host: no network at all.
struct NoNetwork;

#[async_trait]
impl Outbound for NoNetwork {
    async fn fetch(&self, _request: HttpRequest) -> Result<HttpResponse, HttpError> {
        Err(HttpError {
            kind: HttpErrorKind::Blocked,
            detail: "no network while checking a plugin".into(),
        })
    }

    fn check_destination(&self, _url: &str) -> Result<(), HttpError> {
        Ok(())
    }
}
