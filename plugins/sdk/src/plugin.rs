//! The safe side of the contract: the trait a plugin author implements, the host services it
//! may use, and the dispatcher that [`crate::export_plugin!`] wires to the C entry point.

use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::abi::{HostApi, RBuf, STATUS_ERROR, STATUS_OK, STATUS_PANIC};
use crate::messages::{
    reason, BeginLoginRequest, BeginLoginResponse, ExternalIdentity, FinishLoginRequest,
    HttpError, HttpErrorKind, HttpRequest, HttpResponse, InspectReport, InspectRequest,
    MetadataRequest, MetadataResponse, Method,
    PluginError, PluginInfo, ValidateConfigRequest, ValidatedConfig,
};

/// A redirect-and-callback login protocol.
///
/// Implementations must be stateless across calls (the host may run several Gatehouse nodes
/// and calls plugins from many threads at once) and must never log secrets, tokens or codes.
pub trait Protocol: Send + Sync + 'static {
    /// Describes the plugin. Called once at load time.
    fn describe(&self) -> PluginInfo;

    /// Checks a connection config and returns it normalised. Errors name the field.
    fn validate_config(&self, request: ValidateConfigRequest)
        -> Result<ValidatedConfig, PluginError>;

    /// Builds the identity provider URL that starts a login.
    fn begin_login(
        &self,
        host: &Host<'_>,
        request: BeginLoginRequest,
    ) -> Result<BeginLoginResponse, PluginError>;

    /// Verifies the identity provider's callback and returns the verified identity.
    fn finish_login(
        &self,
        host: &Host<'_>,
        request: FinishLoginRequest,
    ) -> Result<ExternalIdentity, PluginError>;

    /// The service provider metadata of a connection, for protocols that publish one.
    fn metadata(&self, request: MetadataRequest) -> Result<MetadataResponse, PluginError> {
        let _ = request;
        Err(PluginError::new(reason::UNSUPPORTED, "this protocol publishes no metadata"))
    }

    /// Warnings about a stored connection that need the network, such as a certificate in
    /// metadata read from a URL that expires soon. The host calls it when an administrator
    /// looks at the connection. Plugins with nothing to add keep this default.
    fn inspect_connection(
        &self,
        host: &Host<'_>,
        request: InspectRequest,
    ) -> Result<InspectReport, PluginError> {
        let _ = (host, request);
        Ok(InspectReport::default())
    }
}

/// Host services available during one call.
pub struct Host<'a> {
    api: Option<&'a HostApi>,
}

impl<'a> Host<'a> {
    /// A host that offers no services: every HTTP request fails. Useful in unit tests of
    /// code paths that must not touch the network.
    pub fn offline() -> Host<'static> {
        Host { api: None }
    }

    /// Sends one HTTP request through the host, which enforces the deployment's network
    /// policy (no loopback, private or link-local destinations unless allowed), timeouts and
    /// a response size limit.
    pub fn http(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        let Some(api) = self.api else {
            return Err(HttpError {
                kind: HttpErrorKind::Connect,
                detail: "no host network available".into(),
            });
        };
        let body = serde_json::to_vec(request).map_err(|e| HttpError {
            kind: HttpErrorKind::InvalidRequest,
            detail: e.to_string(),
        })?;
        let mut out = RBuf::empty();
        // SAFETY: `api` was handed to us by the host for the duration of this call; `body`
        // outlives the call; `out` is a valid place for the host to write its buffer.
        let status = unsafe { (api.http)(api.ctx, body.as_ptr(), body.len(), &mut out) };
        // SAFETY: the host filled `out` with a buffer it owns, which we copy then return.
        let bytes = unsafe { out.to_vec() };
        // SAFETY: the buffer came from the host and is returned to the host exactly once.
        unsafe { (api.free_buf)(out) };
        let malformed = |e: serde_json::Error| HttpError {
            kind: HttpErrorKind::Connect,
            detail: format!("malformed answer from host: {e}"),
        };
        if status == STATUS_OK {
            serde_json::from_slice(&bytes).map_err(malformed)
        } else {
            Err(serde_json::from_slice(&bytes).map_err(malformed)?)
        }
    }
}

/// Runs one call of `plugin`: decodes the request, catches any panic, encodes the answer.
///
/// # Safety
/// Pointers and lengths must describe readable memory for the duration of the call; `host` is
/// null or valid for the call; `out` is writable. [`crate::export_plugin!`] is the only
/// intended caller.
#[doc(hidden)]
pub unsafe fn dispatch<P: Protocol>(
    plugin: &P,
    host: *const HostApi,
    method: *const u8,
    method_len: usize,
    request: *const u8,
    request_len: usize,
    out: *mut RBuf,
) -> i32 {
    quiet_panics_in_calls();
    IN_CALL.with(|flag| flag.set(true));
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: guaranteed by this function's contract.
        let method = unsafe { bytes(method, method_len) };
        // SAFETY: as above.
        let request = unsafe { bytes(request, request_len) };
        // SAFETY: the host pointer is null or valid for this call.
        let host = Host {
            api: unsafe { host.as_ref() },
        };
        call(plugin, &host, method, request)
    }));
    IN_CALL.with(|flag| flag.set(false));
    let (status, body) = match result {
        Ok(Ok(body)) => (STATUS_OK, body),
        Ok(Err(error)) => (STATUS_ERROR, encode_error(&error)),
        Err(_) => {
            // The panic message may quote anything the plugin held (a token in an `unwrap` of
            // an error, say), so only where it happened leaves the plugin.
            let place = PANIC_PLACE.with(|place| place.take()).unwrap_or_else(|| "unknown place".into());
            let error = PluginError::new(reason::PLUGIN_PANIC, format!("plugin panicked at {place}"));
            (STATUS_PANIC, encode_error(&error))
        }
    };
    if !out.is_null() {
        // SAFETY: `out` is writable per the contract.
        unsafe { out.write(RBuf::from_vec(body)) };
    }
    status
}

thread_local! {
    /// Whether this thread is inside a host call (panics there are contained and reported).
    static IN_CALL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Where the last contained panic on this thread happened (`file:line`).
    static PANIC_PLACE: std::cell::Cell<Option<String>> = const { std::cell::Cell::new(None) };
}

/// Installs, once per plugin library, a panic hook that keeps contained panics off stderr (the
/// host logs them as one structured line) and remembers where they happened; panics outside a
/// host call go to the previous hook as before.
fn quiet_panics_in_calls() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_CALL.with(|flag| flag.get()) {
                let place = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()))
                    .unwrap_or_else(|| "unknown place".into());
                PANIC_PLACE.with(|slot| slot.set(Some(place)));
            } else {
                previous(info);
            }
        }));
    });
}

/// Frees a buffer returned by [`dispatch`].
///
/// # Safety
/// `buf` must come from this library's `dispatch` and be freed once.
#[doc(hidden)]
pub unsafe fn free(buf: RBuf) {
    // SAFETY: per the contract, the buffer was made by RBuf::from_vec in this library.
    unsafe { buf.free() }
}

fn call<P: Protocol>(
    plugin: &P,
    host: &Host<'_>,
    method: &[u8],
    request: &[u8],
) -> Result<Vec<u8>, PluginError> {
    let name = std::str::from_utf8(method).unwrap_or("");
    let method = Method::parse(name).ok_or_else(|| {
        PluginError::new(reason::PLUGIN_FAILURE, format!("unknown method {name:?}"))
    })?;
    match method {
        Method::Describe => encode(&plugin.describe()),
        Method::ValidateConfig => encode(&plugin.validate_config(decode(request)?)?),
        Method::BeginLogin => encode(&plugin.begin_login(host, decode(request)?)?),
        Method::FinishLogin => encode(&plugin.finish_login(host, decode(request)?)?),
        Method::Metadata => encode(&plugin.metadata(decode(request)?)?),
        Method::InspectConnection => encode(&plugin.inspect_connection(host, decode(request)?)?),
    }
}

fn decode<T: DeserializeOwned>(request: &[u8]) -> Result<T, PluginError> {
    serde_json::from_slice(request)
        .map_err(|e| PluginError::new(reason::PLUGIN_FAILURE, format!("malformed request: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, PluginError> {
    serde_json::to_vec(value)
        .map_err(|e| PluginError::new(reason::PLUGIN_FAILURE, format!("cannot encode answer: {e}")))
}

fn encode_error(error: &PluginError) -> Vec<u8> {
    // Serialising a struct of strings cannot fail; fall back to a fixed document regardless.
    serde_json::to_vec(error).unwrap_or_else(|_| {
        br#"{"code":"plugin_failure","detail":"unencodable error"}"#.to_vec()
    })
}

unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: the caller guarantees ptr/len describe readable memory for 'a.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

/// Exports a [`Protocol`] implementation as a Gatehouse plugin library.
///
/// `export_plugin!(MyProtocol, "myproto", MyProtocol::new)` defines the entry symbol the host
/// looks for. The constructor runs once, on the first call.
#[macro_export]
macro_rules! export_plugin {
    ($ty:ty, $protocol:literal, $ctor:expr) => {
        static __GATEHOUSE_PLUGIN: ::std::sync::OnceLock<$ty> = ::std::sync::OnceLock::new();

        unsafe extern "C" fn __gatehouse_call(
            host: *const $crate::abi::HostApi,
            method: *const u8,
            method_len: usize,
            request: *const u8,
            request_len: usize,
            out: *mut $crate::abi::RBuf,
        ) -> i32 {
            let plugin = __GATEHOUSE_PLUGIN.get_or_init($ctor);
            // SAFETY: forwarded unchanged from the host, which upholds dispatch's contract.
            unsafe {
                $crate::plugin::dispatch(plugin, host, method, method_len, request, request_len, out)
            }
        }

        unsafe extern "C" fn __gatehouse_free(buf: $crate::abi::RBuf) {
            // SAFETY: the host returns each buffer from __gatehouse_call exactly once.
            unsafe { $crate::plugin::free(buf) }
        }

        static __GATEHOUSE_DESCRIPTOR: $crate::abi::PluginDescriptor =
            $crate::abi::PluginDescriptor {
                abi_version: $crate::abi::ABI_VERSION,
                struct_size: ::std::mem::size_of::<$crate::abi::PluginDescriptor>() as u32,
                protocol: concat!($protocol, "\0").as_ptr() as *const ::std::ffi::c_char,
                plugin_version: concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr()
                    as *const ::std::ffi::c_char,
                call: __gatehouse_call,
                free_buf: __gatehouse_free,
            };

        /// Entry point the Gatehouse host looks up.
        #[unsafe(no_mangle)]
        pub extern "C" fn gatehouse_plugin_entry() -> *const $crate::abi::PluginDescriptor {
            &__GATEHOUSE_DESCRIPTOR
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::STATUS_PANIC;

    struct Panicky;

    impl Protocol for Panicky {
        fn describe(&self) -> PluginInfo {
            PluginInfo {
                protocol: "panicky".into(),
                version: "0".into(),
                display_name: "Panicky".into(),
                ..PluginInfo::default()
            }
        }

        fn validate_config(&self, _: ValidateConfigRequest) -> Result<ValidatedConfig, PluginError> {
            Err(PluginError::invalid_config("/x", "bad x"))
        }

        fn begin_login(
            &self,
            _: &Host<'_>,
            _: BeginLoginRequest,
        ) -> Result<BeginLoginResponse, PluginError> {
            panic!("boom")
        }

        fn finish_login(
            &self,
            _: &Host<'_>,
            _: FinishLoginRequest,
        ) -> Result<ExternalIdentity, PluginError> {
            unreachable!("not called")
        }
    }

    fn run(method: &str, request: &[u8]) -> (i32, serde_json::Value) {
        let mut out = RBuf::empty();
        // SAFETY: the pointers describe live local buffers for the whole call.
        let status = unsafe {
            dispatch(
                &Panicky,
                std::ptr::null(),
                method.as_ptr(),
                method.len(),
                request.as_ptr(),
                request.len(),
                &mut out,
            )
        };
        // SAFETY: `out` was filled by dispatch in this library and is freed once.
        let bytes = unsafe { out.to_vec() };
        unsafe { free(out) };
        (status, serde_json::from_slice(&bytes).expect("dispatch answers JSON"))
    }

    #[test]
    fn a_panic_becomes_a_plugin_panic_error() {
        let request = serde_json::json!({
            "tenant": "t", "connection_id": "c", "config": {}, "redirect_uri": "r",
            "state": "s", "nonce": "n", "pkce_verifier": "v"
        });
        let (status, body) = run("begin_login", request.to_string().as_bytes());
        assert_eq!(status, STATUS_PANIC);
        assert_eq!(body["code"], "plugin_panic");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.starts_with("plugin panicked at ") && detail.contains("plugin.rs:"), "{detail}");
        assert!(!detail.contains("boom"), "the panic message stays inside: {detail}");
        // The plugin keeps answering after a panic.
        let (status, body) = run("describe", b"null");
        assert_eq!(status, STATUS_OK);
        assert_eq!(body["protocol"], "panicky");
    }

    #[test]
    fn refusals_and_bad_requests_are_errors_not_panics() {
        let (status, body) = run("validate_config", br#"{"config":{}}"#);
        assert_eq!(status, STATUS_ERROR);
        assert_eq!(body["field"], "/x");
        let (status, body) = run("begin_login", b"{not json");
        assert_eq!(status, STATUS_ERROR);
        assert_eq!(body["code"], "plugin_failure");
        let (status, body) = run("no_such_method", b"{}");
        assert_eq!(status, STATUS_ERROR);
        assert!(body["detail"].as_str().unwrap().contains("unknown method"));
    }
}
