//! Outbound HTTP: everything the plugin sends leaves through the host.
//!
//! The protocol code talks to a [`Fetch`] trait object. In production it is the SDK's [`Host`],
//! which applies the deployment's network policy, timeouts and size limits; in tests it is an
//! in-memory identity provider. [`HostHttpClient`] adapts a `Fetch` to the `SyncHttpClient`
//! trait of oauth2 5 / openidconnect 4 so their request builders can be used unchanged.

use gatehouse_plugin_sdk::{
    CachePolicy, Host, HttpError, HttpErrorKind, HttpRequest, HttpResponse,
};
use oauth2::http;

use crate::error::LoginError;

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

        let malformed = |what: &str| HttpError {
            kind: HttpErrorKind::Connect,
            detail: format!("the host returned a response with {what}"),
        };
        let mut builder = http::Response::builder().status(response.status);
        for (name, value) in &response.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder
            .body(response.body)
            .map_err(|_| malformed("an invalid status or header"))
    }
}

/// Sends a GET for a JSON document and returns the 2xx answer.
///
/// `what` names the document in error details ("discovery document", "JWKS"); it must not
/// contain anything secret. Transport failures map to [`LoginError::Transport`]; a non-2xx
/// status to `on_status`.
pub fn get_json(
    fetch: &dyn Fetch,
    url: &str,
    headers: Vec<(String, String)>,
    cache: Option<CachePolicy>,
    what: &'static str,
    on_status: impl FnOnce(String) -> LoginError,
) -> Result<HttpResponse, LoginError> {
    let mut all_headers = vec![("accept".to_owned(), "application/json".to_owned())];
    all_headers.extend(headers);
    let request = HttpRequest {
        method: "GET".to_owned(),
        url: url.to_owned(),
        headers: all_headers,
        body: Vec::new(),
        cache,
    };

    let response = fetch
        .fetch(&request)
        .map_err(|error| LoginError::transport(what, &error))?;

    if !(200..300).contains(&response.status) {
        return Err(on_status(format!(
            "{what} request answered with HTTP status {}",
            response.status
        )));
    }
    Ok(response)
}

/// Returns the value of header `name` (case-insensitive), if present once or more.
pub fn header<'r>(response_headers: &'r [(String, String)], name: &str) -> Option<&'r str> {
    response_headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}
