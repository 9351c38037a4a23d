//! The plugin host: loads protocol plugins, calls them off the async executor with a time
//! limit, and serves their outbound HTTP under the deployment's network policy.

mod host;
mod loader;

pub use host::{
    CallContext, LoadedPlugin, Outbound, PluginCallObserver, PluginHost, SchemaViolation,
    DEFAULT_MAX_OUTPUT, MAX_CONCURRENT_CALLS,
};
pub use loader::{LoadError, LoadedLibrary};
