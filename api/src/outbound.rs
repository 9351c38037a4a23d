//! The host's outbound HTTP client, used by protocol plugins for discovery documents, JWKS,
//! token and user-info calls.
//!
//! Plugin configs are written by tenant administrators, so every URL fetched here is
//! attacker-influenced. Each request is held to an [`OutboundPolicy`]: http(s) only, `GET` and
//! `POST` only, one time limit for the whole exchange, a hard cap on the response body and,
//! unless the deployment allows private networks, no connection to an address that is not
//! globally routable (loopback, RFC 1918, link-local, unique-local, and so on).
//!
//! The address check runs on what DNS returns, inside the resolver reqwest connects through, so
//! a name that resolves to a private address (including one that starts to, as in DNS
//! rebinding) is refused on the very addresses that would be dialled. IP-literal hosts never
//! reach a resolver, so they are checked before sending and again on every redirect hop.

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_plugin_sdk::{HttpError, HttpErrorKind, HttpRequest, HttpResponse};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{redirect, Method};
use tracing::{debug, warn};
use url::{Host, Url};

use self::address::is_blocked;

mod address;

/// Limits applied to every outbound request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundPolicy {
    /// Allow loopback, private, link-local and other non-public destinations. Meant for
    /// development and for deployments whose identity providers live on an internal network.
    pub allow_private_networks: bool,
    /// Time limit for one request: connecting, redirects, headers and the whole body.
    pub timeout: Duration,
    /// Largest response body accepted, in bytes.
    pub max_response_bytes: usize,
    /// Redirects followed before the request fails; `0` refuses every redirect.
    pub max_redirects: usize,
    /// Refuse plain `http` URLs: secrets, codes and identities travel on these requests.
    pub require_https: bool,
}

impl Default for OutboundPolicy {
    fn default() -> Self {
        OutboundPolicy {
            allow_private_networks: false,
            timeout: Duration::from_secs(10),
            max_response_bytes: 1024 * 1024,
            max_redirects: 3,
            require_https: true,
        }
    }
}

/// Why an [`OutboundClient`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboundError {
    /// The policy cannot be enforced as given.
    #[error("invalid outbound policy: {0}")]
    InvalidPolicy(&'static str),
    /// The HTTP client failed to initialise (TLS roots, for instance).
    #[error("cannot build the outbound HTTP client")]
    Build(#[source] reqwest::Error),
}

/// An HTTP client that enforces an [`OutboundPolicy`]. Cheap to share: keep one per process
/// and call [`OutboundClient::fetch`] from any task.
#[derive(Debug)]
pub struct OutboundClient {
    http: reqwest::Client,
    filter: Arc<AddressFilter>,
    policy: OutboundPolicy,
}

impl OutboundClient {
    /// Builds a client for `policy`.
    ///
    /// The client keeps no cookies, ignores proxy settings from the environment, sends no
    /// `Referer`, and identifies itself as `Gatehouse/<version>`.
    pub fn new(policy: OutboundPolicy) -> Result<Self, OutboundError> {
        let filter = AddressFilter {
            allow_private_networks: policy.allow_private_networks,
            exempt: Vec::new(),
        };
        Self::build(policy, filter)
    }

    /// Sends `request` and returns the whole response, whatever its status.
    ///
    /// Fails with [`HttpErrorKind::InvalidRequest`] for a malformed URL, a scheme other than
    /// http(s), credentials in the URL, a method other than `GET`/`POST` or an unusable header;
    /// [`HttpErrorKind::Blocked`] when the destination (or a redirect target) is a forbidden
    /// address; [`HttpErrorKind::Timeout`] past [`OutboundPolicy::timeout`];
    /// [`HttpErrorKind::TooLarge`] when the body passes [`OutboundPolicy::max_response_bytes`];
    /// [`HttpErrorKind::Connect`] for any other transport failure, including too many
    /// redirects. `request.cache` is ignored: caching belongs to the caller.
    ///
    /// `Host`, `Cookie`, `User-Agent`, `Content-Length` and hop-by-hop request headers are
    /// dropped; `Set-Cookie` is dropped from the response.
    pub async fn fetch(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let started = Instant::now();

        let (method, url, headers) = match self.prepare(&request) {
            Ok(prepared) => prepared,
            Err(error) => {
                log_refusal(&error, None, None, started);
                return Err(error);
            }
        };
        // `prepare` only returns URLs with a host, checked by `check_target`.
        let host = url
            .host_str()
            .unwrap_or_default()
            .to_owned();

        let exchange = self.exchange(method.clone(), url, headers, request.body, &host);
        let outcome = match tokio::time::timeout(self.policy.timeout, exchange).await {
            Ok(outcome) => outcome,
            Err(_elapsed) => Err(timed_out(&host, self.policy.timeout)),
        };

        match &outcome {
            Ok(response) => debug!(
                method = %method,
                host = %host,
                status = response.status,
                elapsed_ms = elapsed_ms(started),
                "outbound request finished"
            ),
            Err(error) => log_refusal(error, Some(&method), Some(&host), started),
        }
        outcome
    }

    /// Checks a URL without resolving it: it must parse, use http or https, carry no
    /// credentials, and, if its host is an IP literal, that address must be allowed.
    ///
    /// Meant for config validation. A hostname passes here and is checked after resolution,
    /// when [`OutboundClient::fetch`] connects.
    pub fn check_url_literal(&self, url: &str) -> Result<Url, HttpError> {
        let url = Url::parse(url).map_err(|e| invalid(format!("invalid URL: {e}")))?;
        check_target(&url, &self.filter)?;
        // Client secrets, codes and the identities themselves travel on these requests: plain
        // http is only for the local testing mode that also opens private networks.
        if url.scheme() == "http" && self.policy.require_https {
            return Err(HttpError {
                kind: HttpErrorKind::Blocked,
                detail: format!(
                    "plain http to {} is refused; use https",
                    url.host_str().unwrap_or_default()
                ),
            });
        }
        Ok(url)
    }

    fn build(policy: OutboundPolicy, filter: AddressFilter) -> Result<Self, OutboundError> {
        if policy.timeout.is_zero() {
            return Err(OutboundError::InvalidPolicy(
                "timeout must be longer than zero",
            ));
        }

        let filter = Arc::new(filter);
        let resolver = FilteringResolver {
            filter: Arc::clone(&filter),
        };
        let redirect_filter = Arc::clone(&filter);
        let max_redirects = policy.max_redirects;
        let redirects = redirect::Policy::custom(move |attempt| {
            check_redirect(attempt, &redirect_filter, max_redirects)
        });
        // Cookies stay off: reqwest keeps no cookie store unless one is configured.
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .no_proxy()
            .referer(false)
            .redirect(redirects)
            .dns_resolver(Arc::new(resolver))
            .connect_timeout(policy.timeout)
            .timeout(policy.timeout)
            .build()
            .map_err(OutboundError::Build)?;

        Ok(OutboundClient {
            http,
            filter,
            policy,
        })
    }

    fn prepare(&self, request: &HttpRequest) -> Result<(Method, Url, HeaderMap), HttpError> {
        let method = match request.method.as_str() {
            "GET" => Method::GET,
            "POST" => Method::POST,
            _ => return Err(invalid("only GET and POST are allowed")),
        };
        let url = self.check_url_literal(&request.url)?;
        let headers = forward_headers(&request.headers)?;
        Ok((method, url, headers))
    }

    async fn exchange(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Vec<u8>,
        host: &str,
    ) -> Result<HttpResponse, HttpError> {
        let mut builder = self
            .http
            .request(method.clone(), url)
            .headers(headers);
        if method == Method::POST || !body.is_empty() {
            builder = builder.body(body);
        }
        let mut response = builder
            .send()
            .await
            .map_err(|e| classify(&e, host))?;

        // A redirect still carrying its `Location` was not followed: reqwest gives the policy
        // only targets it can express as an http URI, and hands back the 3xx for others
        // (`file:` and similar). Surface that as a refusal rather than as a normal answer.
        let unfollowed = FOLLOWED_REDIRECTS.contains(&response.status().as_u16())
            && response
                .headers()
                .contains_key(reqwest::header::LOCATION);
        if unfollowed {
            return Err(invalid(format!(
                "{host} redirects to an unsupported location"
            )));
        }

        let limit = self.policy.max_response_bytes;
        // Refuse at once when the server announces too much; the streaming cap below still
        // applies, since the header may be absent (chunked) or wrong.
        let announced = response.content_length();
        if announced.is_some_and(|len| len > u64::try_from(limit).unwrap_or(u64::MAX)) {
            return Err(too_large(host, limit));
        }

        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter(|(name, _)| *name != reqwest::header::SET_COOKIE)
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect();

        let initial = announced.map_or(0, |len| usize::try_from(len).unwrap_or(limit));
        let mut body = Vec::with_capacity(initial.min(limit).min(PREALLOCATE_MAX));
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| classify(&e, host))?
        {
            if chunk.len() > limit - body.len() {
                return Err(too_large(host, limit));
            }
            body.extend_from_slice(&chunk);
        }

        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

/// Decides whether an address may be connected to.
#[derive(Debug)]
struct AddressFilter {
    allow_private_networks: bool,
    /// Addresses allowed despite being non-public. Always empty in production; tests use it to
    /// allow their own 127.0.0.1 servers while every other loopback address stays blocked.
    exempt: Vec<IpAddr>,
}

impl AddressFilter {
    fn permits(&self, ip: IpAddr) -> bool {
        self.allow_private_networks || !is_blocked(ip) || self.exempt.contains(&ip)
    }
}

/// Resolves names with the system resolver and drops every answer the filter refuses, so the
/// connector only ever sees allowed addresses.
struct FilteringResolver {
    filter: Arc<AddressFilter>,
}

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let filter = Arc::clone(&self.filter);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let answers: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .collect();
            let total = answers.len();
            let allowed: Vec<SocketAddr> = answers
                .into_iter()
                .filter(|addr| filter.permits(addr.ip()))
                .collect();

            if allowed.is_empty() && total > 0 {
                let refusal = Refusal(blocked(&host, "resolves only to blocked addresses"));
                return Err(Box::new(refusal) as BoxError);
            }
            if allowed.len() < total {
                debug!(
                    host = %host,
                    dropped = total - allowed.len(),
                    "blocked addresses removed from DNS answer"
                );
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// A policy decision carried through reqwest's error chain (from the resolver or the redirect
/// policy) so that [`classify`] can return it unchanged.
#[derive(Debug)]
struct Refusal(HttpError);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl StdError for Refusal {}

type BoxError = Box<dyn StdError + Send + Sync>;

fn check_redirect(
    attempt: redirect::Attempt<'_>,
    filter: &AddressFilter,
    max_redirects: usize,
) -> redirect::Action {
    // `previous` holds the original URL and every URL already followed, so its length is the
    // number of this hop.
    let hop = attempt.previous().len();
    let verdict = if hop > max_redirects {
        let host = attempt
            .url()
            .host_str()
            .unwrap_or_default();
        Err(HttpError {
            kind: HttpErrorKind::Connect,
            detail: format!("more than {max_redirects} redirects, last towards {host}"),
        })
    } else {
        check_target(attempt.url(), filter).and_then(|()| {
            // A downgrade would send the rest of the exchange, credentials included, in clear.
            let from_https = attempt
                .previous()
                .last()
                .is_some_and(|url| url.scheme() == "https");
            if from_https && attempt.url().scheme() != "https" {
                Err(invalid("redirect from https to http refused"))
            } else {
                Ok(())
            }
        })
    };

    match verdict {
        Ok(()) => attempt.follow(),
        Err(error) => attempt.error(Refusal(error)),
    }
}

/// The checks that need no DNS: scheme, credentials, host present, IP literal allowed.
fn check_target(url: &Url, filter: &AddressFilter) -> Result<(), HttpError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!("scheme {} is not allowed", url.scheme())));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("credentials in the URL are not allowed"));
    }
    let ip = match url.host() {
        None => return Err(invalid("URL has no host")),
        Some(Host::Domain(_)) => return Ok(()),
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
    };
    if filter.permits(ip) {
        Ok(())
    } else {
        Err(blocked(&ip.to_string(), "is a blocked address"))
    }
}

/// Turns a reqwest failure into a safe [`HttpError`]. reqwest's own `Display` includes the URL
/// (and so the query string), so it is never used here.
fn classify(error: &reqwest::Error, host: &str) -> HttpError {
    let mut source = error.source();
    let mut root: Option<&(dyn StdError + 'static)> = None;
    while let Some(cause) = source {
        if let Some(refusal) = cause.downcast_ref::<Refusal>() {
            return refusal.0.clone();
        }
        root = Some(cause);
        source = cause.source();
    }
    // The innermost cause is an I/O, TLS or protocol error, which names no URL or header.
    if let Some(root) = root {
        debug!(host = %host, cause = %root, "outbound transport error");
    }

    if error.is_timeout() {
        return HttpError {
            kind: HttpErrorKind::Timeout,
            detail: format!("{host} did not answer in time"),
        };
    }
    if error.is_builder() {
        return invalid("request could not be built");
    }
    let detail = if error.is_connect() {
        format!("cannot connect to {host}")
    } else {
        format!("connection to {host} failed")
    };
    HttpError {
        kind: HttpErrorKind::Connect,
        detail,
    }
}

/// Copies the caller's headers, minus those the client owns or that apply to one hop only
/// (RFC 9110, section 7.6.1), including any named in the caller's `Connection` header.
fn forward_headers(pairs: &[(String, String)]) -> Result<HeaderMap, HttpError> {
    let connection_options: Vec<String> = pairs
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, value)| value.split(','))
        .map(|option| option.trim().to_ascii_lowercase())
        .collect();

    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid("a request header name is invalid"))?;
        let dropped = DROPPED_REQUEST_HEADERS.contains(&name.as_str())
            || connection_options
                .iter()
                .any(|option| option == name.as_str());
        if dropped {
            continue;
        }
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| invalid(format!("the value of request header {name} is invalid")))?;
        // Any header may carry a credential; keep values out of `Debug` output.
        value.set_sensitive(true);
        headers.append(name, value);
    }
    Ok(headers)
}

fn log_refusal(error: &HttpError, method: Option<&Method>, host: Option<&str>, started: Instant) {
    let method = method.map_or("-", Method::as_str);
    let host = host.unwrap_or("-");
    let elapsed_ms = elapsed_ms(started);
    if error.kind == HttpErrorKind::Blocked {
        warn!(method, host, kind = ?error.kind, elapsed_ms, "outbound request blocked");
    } else {
        debug!(method, host, kind = ?error.kind, elapsed_ms, "outbound request failed");
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn invalid(detail: impl Into<String>) -> HttpError {
    HttpError {
        kind: HttpErrorKind::InvalidRequest,
        detail: detail.into(),
    }
}

fn blocked(host: &str, why: &str) -> HttpError {
    HttpError {
        kind: HttpErrorKind::Blocked,
        detail: format!("destination {host} {why}"),
    }
}

fn timed_out(host: &str, limit: Duration) -> HttpError {
    HttpError {
        kind: HttpErrorKind::Timeout,
        detail: format!("{host} did not answer within {} ms", limit.as_millis()),
    }
}

fn too_large(host: &str, limit: usize) -> HttpError {
    HttpError {
        kind: HttpErrorKind::TooLarge,
        detail: format!("response from {host} exceeds {limit} bytes"),
    }
}

const USER_AGENT: &str = concat!("Gatehouse/", env!("CARGO_PKG_VERSION"));

/// Request headers never forwarded: those the client sets itself, cookies, and hop-by-hop
/// headers (RFC 9110, section 7.6.1; `Proxy-Connection` and `Keep-Alive` from older practice).
const DROPPED_REQUEST_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "cookie",
    "host",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
];

/// Statuses reqwest's redirect handling follows (RFC 9110, section 15.4).
const FOLLOWED_REDIRECTS: &[u16] = &[301, 302, 303, 307, 308];

/// Upper bound on the buffer reserved from an announced `Content-Length`.
const PREALLOCATE_MAX: usize = 64 * 1024;

#[cfg(test)]
mod tests;
