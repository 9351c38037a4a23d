//! Outbound HTTP: everything the plugin sends leaves through the host.
//!
//! The login code talks to a [`Fetch`] trait object: in production the SDK's [`Host`], which
//! applies the deployment's network policy, timeouts and size limits; in tests an in-memory
//! CAS server.

use gatehouse_plugin_sdk::{Host, HttpError, HttpRequest, HttpResponse};

/// Performs one HTTP request on behalf of the plugin.
pub trait Fetch {
    /// Sends `request` and returns the answer, or why none was delivered.
    fn fetch(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError>;
}

impl Fetch for Host<'_> {
    fn fetch(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        self.http(request)
    }
}
