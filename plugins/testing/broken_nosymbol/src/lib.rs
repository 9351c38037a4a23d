//! A shared library without the Gatehouse entry symbol: the host must refuse it as "missing
//! entry symbol".

/// Some exported function, so the library is not empty.
#[unsafe(no_mangle)]
pub extern "C" fn broken_nosymbol_hello() -> u32 {
    42
}
