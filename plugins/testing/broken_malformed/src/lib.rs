//! A plugin whose `begin_login` and `finish_login` return `STATUS_OK` with bytes that are not
//! JSON. The host must fail the attempt with `plugin_failure` ("malformed output").
//!
//! The SDK's export macro cannot produce such an answer, so this hostile fixture writes its
//! descriptor and `call` by hand, with `unsafe`. That is acceptable only here, in a test
//! fixture that is never shipped: real plugins use `export_plugin!` and contain no `unsafe`.
//! `describe` and `validate_config` go through the SDK's dispatcher (with its panic catching),
//! so the library loads and a tenant can be configured with it.

#[path = "../../fixture.rs"]
mod fixture;

use gatehouse_plugin_sdk::abi::{HostApi, PluginDescriptor, RBuf, ABI_VERSION, STATUS_OK};
use gatehouse_plugin_sdk::{
    reason, BeginLoginRequest, BeginLoginResponse, ExternalIdentity, FinishLoginRequest, Host,
    MetadataRequest, MetadataResponse, PluginError, PluginInfo, Protocol, ValidateConfigRequest,
    ValidatedConfig,
};

struct Malformed;

impl Protocol for Malformed {
    fn describe(&self) -> PluginInfo {
        PluginInfo {
            capabilities: vec![gatehouse_plugin_sdk::capability::METADATA.to_owned()],
            ..fixture::info("broken_malformed")
        }
    }

    /// Well-formed, but hostile: HTML with a script, and a content type that would split the
    /// header. The host must serve neither on its origin.
    fn metadata(&self, _: MetadataRequest) -> Result<MetadataResponse, PluginError> {
        Ok(MetadataResponse {
            content_type: "text/html\r\nSet-Cookie: planted=1".to_owned(),
            body: "<script>alert('planted')</script>".to_owned(),
        })
    }

    fn validate_config(&self, request: ValidateConfigRequest) -> Result<ValidatedConfig, PluginError> {
        fixture::accept(request)
    }

    fn begin_login(&self, _: &Host<'_>, _: BeginLoginRequest) -> Result<BeginLoginResponse, PluginError> {
        Err(PluginError::new(reason::PLUGIN_FAILURE, "not reached"))
    }

    fn finish_login(&self, _: &Host<'_>, _: FinishLoginRequest) -> Result<ExternalIdentity, PluginError> {
        Err(PluginError::new(reason::PLUGIN_FAILURE, "not reached"))
    }
}

/// Not JSON: a stray byte that is not even UTF-8, then half an object.
const GARBAGE: &[u8] = b"\xff{\"redirect_url\": ";

unsafe extern "C" fn call(
    host: *const HostApi,
    method: *const u8,
    method_len: usize,
    request: *const u8,
    request_len: usize,
    out: *mut RBuf,
) -> i32 {
    // SAFETY: the host passes a method name of `method_len` readable bytes.
    let name = unsafe { std::slice::from_raw_parts(method, method_len) };
    if name == b"begin_login" || name == b"finish_login" {
        // SAFETY: the host passes a writable `out` and frees it through `free_buf` below.
        unsafe { out.write(RBuf::from_vec(GARBAGE.to_vec())) };
        return STATUS_OK;
    }
    // SAFETY: forwarded unchanged from the host, which upholds dispatch's contract.
    unsafe {
        gatehouse_plugin_sdk::plugin::dispatch(
            &Malformed,
            host,
            method,
            method_len,
            request,
            request_len,
            out,
        )
    }
}

unsafe extern "C" fn free_buf(buf: RBuf) {
    // SAFETY: every buffer handed out by `call` was made by RBuf::from_vec in this library.
    unsafe { buf.free() }
}

static DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    abi_version: ABI_VERSION,
    struct_size: std::mem::size_of::<PluginDescriptor>() as u32,
    protocol: c"broken_malformed".as_ptr(),
    plugin_version: c"0.1.0".as_ptr(),
    call,
    free_buf,
};

/// The entry point the host looks up.
#[unsafe(no_mangle)]
pub extern "C" fn gatehouse_plugin_entry() -> *const PluginDescriptor {
    &DESCRIPTOR
}
