//! Loading plugin libraries. This is the only module of Gatehouse with `unsafe` code: every
//! block says why it is sound.

use std::ffi::CStr;
use std::path::{Path, PathBuf};

use gatehouse_plugin_sdk::abi::{
    EntryFn, HostApi, PluginDescriptor, RBuf, ABI_VERSION, ENTRY_SYMBOL,
};
use libloading::Library;

/// Why a library was not accepted as a plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be opened as a shared library.
    #[error("not a plugin library: cannot load it ({0})")]
    Open(String),
    /// The library has no Gatehouse entry symbol.
    #[error("missing entry symbol gatehouse_plugin_entry: not a Gatehouse plugin")]
    MissingEntry,
    /// The entry returned null.
    #[error("plugin entry returned no descriptor")]
    NullDescriptor,
    /// Built for another ABI version.
    #[error("wrong ABI version: the plugin was built for ABI version {found}, this host implements {expected}")]
    AbiMismatch {
        /// Version in the library.
        found: u32,
        /// Version of this host.
        expected: u32,
    },
    /// The descriptor's size or strings are unusable.
    #[error("plugin descriptor is malformed: {0}")]
    Malformed(&'static str),
}

/// A loaded plugin library. The library stays loaded as long as this value lives, so the
/// descriptor and its functions stay valid.
pub struct LoadedLibrary {
    descriptor: *const PluginDescriptor,
    protocol: String,
    version: String,
    path: PathBuf,
    // Dropped last: the descriptor points into it.
    _library: Library,
}

// SAFETY: the descriptor is immutable static data inside the library, and its functions are
// required by the ABI contract to be callable from any thread (plugins are `Send + Sync`).
unsafe impl Send for LoadedLibrary {}
// SAFETY: as above; nothing in LoadedLibrary is mutated after loading.
unsafe impl Sync for LoadedLibrary {}

impl LoadedLibrary {
    /// Loads `path`, checking the ABI version before reading anything else.
    pub fn open(path: &Path) -> Result<Self, LoadError> {
        // SAFETY: loading a library runs its initialisers. The host loads only from the
        // plugin directory the operator configured (or the host's own build directory).
        let library = unsafe { Library::new(path) }.map_err(|e| LoadError::Open(with_source(&e)))?;
        // SAFETY: the symbol, when present, has the EntryFn signature by the ABI contract.
        let entry: EntryFn = unsafe { library.get::<EntryFn>(ENTRY_SYMBOL) }
            .map(|symbol| *symbol)
            .map_err(|_| LoadError::MissingEntry)?;
        // SAFETY: calling the entry is the documented first step; it returns a pointer to
        // static data or null.
        let descriptor = unsafe { entry() };
        if descriptor.is_null() {
            return Err(LoadError::NullDescriptor);
        }
        // SAFETY: `abi_version` is the first field in every ABI version, so reading this u32
        // is valid whatever layout the rest of the descriptor has.
        let found = unsafe { std::ptr::read(descriptor.cast::<u32>()) };
        if found != ABI_VERSION {
            return Err(LoadError::AbiMismatch {
                found,
                expected: ABI_VERSION,
            });
        }
        // SAFETY: the ABI version matches, so the pointer is a PluginDescriptor of this layout.
        let described = unsafe { &*descriptor };
        if described.struct_size as usize != std::mem::size_of::<PluginDescriptor>() {
            return Err(LoadError::Malformed("descriptor size differs from the ABI's"));
        }
        let protocol = c_string(described.protocol).ok_or(LoadError::Malformed("protocol"))?;
        let version = c_string(described.plugin_version).ok_or(LoadError::Malformed("version"))?;
        if protocol.is_empty()
            || protocol.len() > 32
            || !protocol.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(LoadError::Malformed("protocol id must be [a-z0-9_]{1,32}"));
        }
        Ok(LoadedLibrary {
            descriptor,
            protocol,
            version,
            path: path.to_owned(),
            _library: library,
        })
    }

    /// Protocol id the library declares.
    pub fn protocol(&self) -> &str {
        &self.protocol
    }

    /// Plugin version the library declares.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// File the library was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Calls `method` with a JSON request; returns the status and the copied answer bytes, or
    /// `Err(len)` when the answer is larger than `max_output` bytes (it is freed uncopied).
    pub fn call(
        &self,
        host: &HostApi,
        method: &str,
        request: &[u8],
        max_output: usize,
    ) -> Result<(i32, Vec<u8>), usize> {
        // SAFETY: the library is loaded for as long as `self` lives and the ABI was checked.
        let descriptor = unsafe { &*self.descriptor };
        let mut out = RBuf::empty();
        // SAFETY: all pointers are valid for the call: `host` and the byte slices are
        // borrowed for its duration and `out` is a local the plugin writes into.
        let status = unsafe {
            (descriptor.call)(
                host,
                method.as_ptr(),
                method.len(),
                request.as_ptr(),
                request.len(),
                &mut out,
            )
        };
        let len = out.len;
        if len > max_output {
            // SAFETY: the buffer goes back, uncopied, to the library that allocated it, once.
            unsafe { (descriptor.free_buf)(out) };
            return Err(len);
        }
        // SAFETY: the plugin filled `out` with a buffer it allocated (or left it empty).
        let bytes = unsafe { out.to_vec() };
        // SAFETY: the buffer goes back to the library that allocated it, once.
        unsafe { (descriptor.free_buf)(out) };
        Ok((status, bytes))
    }
}

/// The error and its source: libloading says only "dlopen failed" and keeps the loader's own
/// words ("file too short", "invalid ELF header") in the source.
fn with_source(error: &libloading::Error) -> String {
    match std::error::Error::source(error) {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}

fn c_string(ptr: *const std::ffi::c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the descriptor points at NUL-terminated static strings inside the library.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str().ok().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_a_library_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libgatehouse_fake.so");
        std::fs::write(&path, b"not an ELF file").unwrap();
        assert!(matches!(LoadedLibrary::open(&path), Err(LoadError::Open(_))));
    }

    #[test]
    fn a_library_without_the_entry_symbol_is_refused() {
        // Any shared library of the system that is not a Gatehouse plugin.
        let candidates = ["/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1"];
        let Some(path) = candidates.iter().map(Path::new).find(|p| p.exists()) else {
            eprintln!("no system libz found; skipping");
            return;
        };
        assert!(matches!(LoadedLibrary::open(path), Err(LoadError::MissingEntry)));
    }
}
