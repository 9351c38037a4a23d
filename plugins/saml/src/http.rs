//! Outbound HTTP: the only request this plugin makes, reading IdP metadata, leaves through the
//! host.
//!
//! The protocol code talks to a [`Fetch`] trait object. In production it is the SDK's
//! [`Host`], which applies the deployment's network policy, timeouts, size limit and shared
//! cache; in tests it is an in-memory metadata server.

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
