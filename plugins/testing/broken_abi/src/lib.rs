//! A library that reports ABI version 999. The host reads only the version and refuses it
//! ("wrong ABI version") before it touches any other field of the descriptor.
//!
//! The descriptor is written by hand, as a plugin built against a future SDK would have it;
//! its call function is never reached.

use gatehouse_plugin_sdk::abi::{HostApi, PluginDescriptor, RBuf, STATUS_ERROR};

unsafe extern "C" fn call(
    _host: *const HostApi,
    _method: *const u8,
    _method_len: usize,
    _request: *const u8,
    _request_len: usize,
    _out: *mut RBuf,
) -> i32 {
    STATUS_ERROR
}

unsafe extern "C" fn free_buf(_buf: RBuf) {}

static DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    abi_version: 999,
    struct_size: std::mem::size_of::<PluginDescriptor>() as u32,
    protocol: c"broken_abi".as_ptr(),
    plugin_version: c"0.1.0".as_ptr(),
    call,
    free_buf,
};

/// The entry point the host looks up.
#[unsafe(no_mangle)]
pub extern "C" fn gatehouse_plugin_entry() -> *const PluginDescriptor {
    &DESCRIPTOR
}
