//! Starting a login and validating the service ticket that comes back.

use gatehouse_plugin_sdk::{
    reason, BeginLoginRequest, BeginLoginResponse, ExternalIdentity, FinishLoginRequest, Host,
    HttpErrorKind, HttpRequest, PluginError,
};
use url::Url;

use crate::config::Config;
use crate::http::Fetch;
use crate::response::{sanitize, Answer};
use crate::CAS_RESPONSE_INVALID;

/// The service URL of one login: the host's callback URL with the host's `state` appended to
/// its query. CAS sends the browser back to exactly this URL (adding `ticket`), and the ticket
/// is bound to it, so `begin_login` and `finish_login` must build it identically.
pub fn service_url(redirect_uri: &str, state: &str) -> Result<String, PluginError> {
    let contract = |detail: &str| PluginError::new(reason::PLUGIN_FAILURE, detail);
    let mut url = Url::parse(redirect_uri)
        .map_err(|_| contract("the host passed a redirect URI that is not an absolute URL"))?;
    if state.is_empty() {
        return Err(contract("the host passed an empty state"));
    }
    if url.query_pairs().any(|(name, _)| name == "state" || name == "ticket") {
        return Err(contract("the host's redirect URI already carries state or ticket"));
    }
    if url.fragment().is_some() {
        return Err(contract("the host's redirect URI carries a fragment"));
    }
    url.query_pairs_mut().append_pair("state", state);
    Ok(url.into())
}

/// `{server_url}/login?service=<service URL>`.
pub fn begin_login(request: BeginLoginRequest) -> Result<BeginLoginResponse, PluginError> {
    let config = Config::parse(&request.config)?;
    let service = service_url(&request.redirect_uri, &request.state)?;
    let mut login = Url::parse(&config.endpoint("/login"))
        .map_err(|_| PluginError::invalid_config("/server_url", "must be an absolute URL"))?;
    login.query_pairs_mut().append_pair("service", &service);
    Ok(BeginLoginResponse {
        redirect_url: login.into(),
    })
}

/// Validates the ticket through the host's HTTP client.
pub fn finish_login(
    host: &Host<'_>,
    request: FinishLoginRequest,
) -> Result<ExternalIdentity, PluginError> {
    finish_login_with(host, request)
}

/// [`finish_login`] with any [`Fetch`], for tests.
pub fn finish_login_with(
    fetch: &dyn Fetch,
    request: FinishLoginRequest,
) -> Result<ExternalIdentity, PluginError> {
    let config = Config::parse(&request.config)?;
    let ticket = ticket(&request.params)?;
    let service = service_url(&request.redirect_uri, &request.state)?;

    // CAS 3.0 section 2.5 / 2.6: /p3/serviceValidate with the same service URL the ticket
    // was issued for. Never cached: a ticket is valid once.
    let mut validate = Url::parse(&config.endpoint("/p3/serviceValidate"))
        .map_err(|_| PluginError::invalid_config("/server_url", "must be an absolute URL"))?;
    validate
        .query_pairs_mut()
        .append_pair("service", &service)
        .append_pair("ticket", ticket);
    let http = HttpRequest {
        method: "GET".to_owned(),
        url: validate.into(),
        headers: vec![("Accept".to_owned(), "application/xml, text/xml".to_owned())],
        body: Vec::new(),
        cache: None,
    };
    let response = fetch.fetch(&http).map_err(|error| {
        let code = match error.kind {
            HttpErrorKind::Blocked => reason::DESTINATION_BLOCKED,
            _ => reason::IDP_UNREACHABLE,
        };
        PluginError::new(
            code,
            format!("the CAS validation endpoint could not be reached: {:?}: {}", error.kind, error.detail),
        )
    })?;
    if response.status != 200 {
        return Err(PluginError::new(
            reason::IDP_UNREACHABLE,
            format!("the CAS validation endpoint answered HTTP {}", response.status),
        ));
    }

    match crate::response::parse(&response.body)? {
        Answer::Failure { code } => Err(PluginError::new(
            reason::IDP_ERROR,
            format!("the CAS server refused the service ticket: {code}"),
        )),
        Answer::Success { user, attributes } => {
            let values = |name: &str| -> Vec<&str> {
                let mut found: Vec<&str> = Vec::new();
                for (key, value) in &attributes {
                    let value = value.trim();
                    if key == name && !value.is_empty() && !found.contains(&value) {
                        found.push(value);
                    }
                }
                found
            };
            let email = match values(&config.email_attribute).as_slice() {
                [] => None,
                [one] => Some((*one).to_owned()),
                several => {
                    return Err(PluginError::new(
                        CAS_RESPONSE_INVALID,
                        format!(
                            "the {} attribute has {} different values; Gatehouse cannot tell \
                             which email to check",
                            sanitize(&config.email_attribute, 64),
                            several.len()
                        ),
                    ))
                }
            };
            let name = values(&config.name_attribute)
                .first()
                .map(|name| (*name).to_owned());
            Ok(ExternalIdentity {
                issuer: config.server_url.clone(),
                subject: user,
                email,
                // CAS 3.0 says nothing about email verification.
                email_verified: false,
                name,
                replay: None,
            })
        }
    }
}

/// The `ticket` callback parameter: present once, no parameter repeated, a CAS service ticket
/// (`ST-`, printable ASCII, at most 256 characters: CAS 3.0 section 3.1.1 and 3.1.2).
fn ticket(params: &[(String, String)]) -> Result<&str, PluginError> {
    let invalid = |detail: String| PluginError::new(reason::CALLBACK_INVALID, detail);
    for (index, (name, _)) in params.iter().enumerate() {
        if params[..index].iter().any(|(seen, _)| seen == name) {
            return Err(invalid(format!(
                "the callback repeats the parameter {:?}",
                sanitize(name, 40)
            )));
        }
    }
    let Some((_, ticket)) = params.iter().find(|(name, _)| name == "ticket") else {
        return Err(invalid("the callback carries no service ticket".to_owned()));
    };
    let shape_ok = ticket.starts_with("ST-")
        && ticket.len() > 3
        && ticket.len() <= MAX_TICKET_CHARS
        && ticket.bytes().all(|b| b.is_ascii_graphic());
    if !shape_ok {
        return Err(invalid(
            "the ticket parameter is not a CAS service ticket (ST-, printable ASCII, at most \
             256 characters)"
                .to_owned(),
        ));
    }
    Ok(ticket)
}

const MAX_TICKET_CHARS: usize = 256;
