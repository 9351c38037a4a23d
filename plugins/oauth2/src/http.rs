//! Outbound HTTP: everything the plugin sends leaves through the host.
//!
//! The protocol code talks to a [`Fetch`] trait object. In production it is the SDK's [`Host`],
//! which applies the deployment's network policy, timeouts and size limits; in tests it is an
//! in-memory provider. [`HostHttpClient`] adapts a `Fetch` to oauth2's `SyncHttpClient` so its
//! token request builder can be used unchanged.

use gatehouse_plugin_sdk::{Host, HttpError, HttpErrorKind, HttpRequest, HttpResponse};
use oauth2::http;

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

/// Lets oauth2's request builders send their requests through a [`Fetch`].
///
/// The error type is the SDK's [`HttpError`] itself, so callers still see its
/// [`HttpErrorKind`] (and can tell a blocked destination from an unreachable one).
pub struct HostHttpClient<'a> {
    fetch: &'a dyn Fetch,
}

impl<'a> HostHttpClient<'a> {
    /// Wraps `fetch`.
    pub fn new(fetch: &'a dyn Fetch) -> Self {
        HostHttpClient { fetch }
    }
}

impl oauth2::SyncHttpClient for HostHttpClient<'_> {
    type Error = HttpError;

    fn call(&self, request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, HttpError> {
        let (parts, body) = request.into_parts();
        let mut headers = Vec::with_capacity(parts.headers.len());
        for (name, value) in &parts.headers {
            let value = value.to_str().map_err(|_| HttpError {
                kind: HttpErrorKind::InvalidRequest,
                detail: format!("header {name} is not visible ASCII"),
            })?;
            headers.push((name.as_str().to_owned(), value.to_owned()));
        }
        let request = HttpRequest {
            method: parts.method.as_str().to_owned(),
            url: parts.uri.to_string(),
            headers,
            body,
            cache: None,
        };

        let response = self.fetch.fetch(&request)?;

        let mut builder = http::Response::builder().status(response.status);
        for (name, value) in &response.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder
            .body(response.body)
            .map_err(|_| HttpError {
                kind: HttpErrorKind::Connect,
                detail: "the host returned a response with an invalid status or header".into(),
            })
    }
}
