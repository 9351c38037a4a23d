//! The C ABI shared by the host and every plugin library.
//!
//! Only `#[repr(C)]` data and serialized JSON bytes cross this boundary. The host reads
//! [`PluginDescriptor::abi_version`] before it touches any other field: a library built for
//! another ABI version is refused without reading the rest of its descriptor.

use std::ffi::{c_char, c_void};

/// ABI version implemented by this SDK. The host loads only plugins that report exactly this
/// value; see the ABI policy in `plugins/sdk/README.md`.
pub const ABI_VERSION: u32 = 1;

/// Name of the symbol every plugin library exports (see [`EntryFn`]).
pub const ENTRY_SYMBOL: &[u8] = b"gatehouse_plugin_entry\0";

/// Status returned by [`CallFn`] when the call succeeded; `out` holds the JSON result.
pub const STATUS_OK: i32 = 0;
/// Status returned when the plugin refused the request; `out` holds a JSON `PluginError`.
pub const STATUS_ERROR: i32 = 1;
/// Status returned when the plugin panicked; `out` holds a JSON `PluginError` naming the panic.
pub const STATUS_PANIC: i32 = 2;

/// A byte buffer owned by the side that allocated it. The receiver copies the bytes and hands
/// the buffer back to its owner's free function, because host and plugin have separate
/// allocators.
#[repr(C)]
pub struct RBuf {
    /// Start of the bytes; null for an empty buffer.
    pub ptr: *mut u8,
    /// Number of initialised bytes.
    pub len: usize,
    /// Capacity of the allocation, needed to rebuild the `Vec` when freeing.
    pub cap: usize,
}

impl RBuf {
    /// An empty buffer that owns nothing.
    pub const fn empty() -> Self {
        RBuf {
            ptr: std::ptr::null_mut(),
            len: 0,
            cap: 0,
        }
    }

    /// Gives up ownership of `bytes`; the buffer must later reach [`RBuf::free`] in the same
    /// library that created it.
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        let mut bytes = std::mem::ManuallyDrop::new(bytes);
        RBuf {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
            cap: bytes.capacity(),
        }
    }

    /// Copies the bytes out without taking ownership.
    ///
    /// # Safety
    /// `self` must describe a live allocation of at least `len` initialised bytes, or be empty.
    pub unsafe fn to_vec(&self) -> Vec<u8> {
        if self.ptr.is_null() || self.len == 0 {
            return Vec::new();
        }
        // SAFETY: the caller guarantees ptr/len describe initialised bytes.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }.to_vec()
    }

    /// Frees a buffer made by [`RBuf::from_vec`] in this same library.
    ///
    /// # Safety
    /// `self` must come from `RBuf::from_vec` in the calling library and be freed only once.
    pub unsafe fn free(self) {
        if !self.ptr.is_null() {
            // SAFETY: ptr/len/cap were produced by Vec::into parts in `from_vec`.
            drop(unsafe { Vec::from_raw_parts(self.ptr, self.len, self.cap) });
        }
    }
}

/// Services the host offers to a plugin during one call. Valid only for the duration of that
/// call; a plugin must not keep the pointer.
#[repr(C)]
pub struct HostApi {
    /// ABI version of the host; equal to [`ABI_VERSION`] for a host that loaded the plugin.
    pub abi_version: u32,
    /// Opaque host context passed back to every function below.
    pub ctx: *const c_void,
    /// Performs one outbound HTTP request described by a JSON `HttpRequest`. Returns
    /// [`STATUS_OK`] with a JSON `HttpResponse` in `out`, or [`STATUS_ERROR`] with a JSON
    /// `HttpError`. The host applies its network policy, timeouts and size limits.
    pub http: unsafe extern "C" fn(
        ctx: *const c_void,
        request: *const u8,
        request_len: usize,
        out: *mut RBuf,
    ) -> i32,
    /// Frees a buffer the host wrote into `out`.
    pub free_buf: unsafe extern "C" fn(buf: RBuf),
}

/// One call into a plugin: `method` is a UTF-8 method name (see `crate::Method`), `request` is
/// JSON. The plugin writes its JSON answer into `out` and returns a `STATUS_*` value.
pub type CallFn = unsafe extern "C" fn(
    host: *const HostApi,
    method: *const u8,
    method_len: usize,
    request: *const u8,
    request_len: usize,
    out: *mut RBuf,
) -> i32;

/// Frees a buffer the plugin wrote into `out`.
pub type FreeFn = unsafe extern "C" fn(buf: RBuf);

/// What the entry symbol returns: a pointer to a static descriptor that lives as long as the
/// library stays loaded.
#[repr(C)]
pub struct PluginDescriptor {
    /// Always the first field, and never moved in any future ABI version.
    pub abi_version: u32,
    /// `size_of::<PluginDescriptor>()` in the plugin, a second guard against layout drift.
    pub struct_size: u32,
    /// NUL-terminated protocol id, such as `oidc`.
    pub protocol: *const c_char,
    /// NUL-terminated plugin version, such as `0.1.0`.
    pub plugin_version: *const c_char,
    /// Dispatches every call.
    pub call: CallFn,
    /// Frees buffers returned by `call`.
    pub free_buf: FreeFn,
}

// SAFETY: the descriptor is immutable static data: two pointers to static C strings and two
// function pointers. Sharing it between threads reads nothing that can change.
unsafe impl Sync for PluginDescriptor {}

/// Signature of [`ENTRY_SYMBOL`].
pub type EntryFn = unsafe extern "C" fn() -> *const PluginDescriptor;
