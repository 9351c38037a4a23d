//! The connection config: parsing, validation and normalisation.
//!
//! The same checks run when an administrator saves a connection (`validate_config`) and each
//! time a login uses the stored config. The stored config has every default written out, so
//! re-validating it gives the same config, and the host reads `allowed_domains`,
//! `allow_subdomains` and `require_verified_email` from it.

use std::collections::BTreeMap;

use gatehouse_plugin_sdk::config::{allowed_domains, optional_bool, pointer};
use gatehouse_plugin_sdk::PluginError;
use serde_json::{Map, Value};
use url::Url;

/// A validated connection config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The CAS server's base URL, without a trailing slash (`https://cas.example.edu/cas`):
    /// `/login` and `/p3/serviceValidate` live under it. Also the issuer of identities.
    pub server_url: String,
    /// Email domains the host accepts, lowercase ASCII (IDNA A-labels).
    pub allowed_domains: Vec<String>,
    /// The CAS attribute holding the email address.
    pub email_attribute: String,
    /// The CAS attribute holding the display name.
    pub name_attribute: String,
    /// Whether the host requires a verified email. CAS asserts nothing about verification, so
    /// turning this on refuses every login; it exists so the host's rule is explicit.
    pub require_verified_email: bool,
    /// Whether subdomains of `allowed_domains` are accepted too (enforced by the host).
    pub allow_subdomains: bool,
}

impl Config {
    /// Validates a config as sent by an administrator or as stored by the host.
    pub fn parse(value: &Value) -> Result<Config, PluginError> {
        let object = value
            .as_object()
            .ok_or_else(|| PluginError::invalid_config("", "the config must be a JSON object"))?;
        if let Some(key) = object.keys().find(|key| !KNOWN_FIELDS.contains(&key.as_str())) {
            return Err(PluginError::invalid_config(&pointer(key), "unknown field"));
        }
        Ok(Config {
            server_url: server_url(object.get("server_url"))?,
            allowed_domains: allowed_domains(object.get("allowed_domains"))?,
            email_attribute: attribute(object.get("email_attribute"), "email_attribute", "mail")?,
            name_attribute: attribute(
                object.get("name_attribute"),
                "name_attribute",
                "displayName",
            )?,
            require_verified_email: optional_bool(object, "require_verified_email", false)?,
            allow_subdomains: optional_bool(object, "allow_subdomains", false)?,
        })
    }

    /// The normalised config to store, with every default written out.
    pub fn to_value(&self) -> Value {
        let mut object = Map::new();
        object.insert("server_url".into(), self.server_url.clone().into());
        object.insert("allowed_domains".into(), self.allowed_domains.clone().into());
        object.insert("email_attribute".into(), self.email_attribute.clone().into());
        object.insert("name_attribute".into(), self.name_attribute.clone().into());
        object.insert("require_verified_email".into(), self.require_verified_email.into());
        object.insert("allow_subdomains".into(), self.allow_subdomains.into());
        Value::Object(object)
    }

    /// What the CAS administrator must configure, besides the callback URL the host adds.
    pub fn setup(&self) -> BTreeMap<String, String> {
        let mut setup = BTreeMap::new();
        setup.insert(
            "service_url".to_owned(),
            "the callback URL followed by ?state=<any value>; register it as a service \
             pattern that allows that query"
                .to_owned(),
        );
        setup.insert(
            "attributes".to_owned(),
            format!(
                "release {} and {} to this service (CAS 3.0 /p3/serviceValidate)",
                self.email_attribute, self.name_attribute
            ),
        );
        setup
    }

    /// Settings that save fine but will refuse logins or weaken them.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.require_verified_email {
            warnings.push(
                "require_verified_email is on, but CAS never says an email is verified: \
                 every login will be refused"
                    .to_owned(),
            );
        }
        if self.server_url.starts_with("http:") {
            warnings.push(
                "server_url uses plain http: service tickets and the identity travel \
                 unencrypted and unauthenticated"
                    .to_owned(),
            );
        }
        warnings
    }

    /// `{server_url}{path}`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.server_url)
    }
}

/// An absolute http(s) URL naming a host, without credentials, query or fragment; the
/// trailing slash is dropped so `/login` can be appended.
fn server_url(value: Option<&Value>) -> Result<String, PluginError> {
    let error = |detail: &str| PluginError::invalid_config("/server_url", detail);
    let text = match value {
        Some(Value::String(text)) => text,
        Some(_) => return Err(error("must be a string")),
        None => return Err(error("is required")),
    };
    if text.is_empty() || text.trim() != text {
        return Err(error("must be an absolute URL without surrounding spaces"));
    }
    let url = Url::parse(text).map_err(|_| error("must be an absolute URL"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(error("must use https (or http where the deployment allows it)"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(error("must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(error("must not contain credentials"));
    }
    if url.fragment().is_some() || text.contains('#') {
        return Err(error("must not contain a fragment"));
    }
    if url.query().is_some() || text.contains('?') {
        return Err(error(
            "must not contain a query: it is the base URL under which /login and \
             /p3/serviceValidate live",
        ));
    }
    let normalised = url.as_str();
    Ok(normalised.trim_end_matches('/').to_owned())
}



/// A CAS attribute name: it becomes an XML element name in the CAS namespace
/// (`<cas:mail>`), so it must be an XML NCName; ASCII only, at most 64 characters.
fn attribute(value: Option<&Value>, key: &str, default: &str) -> Result<String, PluginError> {
    let field = pointer(key);
    let name = match value {
        None | Some(Value::Null) => return Ok(default.to_owned()),
        Some(Value::String(name)) => name,
        Some(_) => return Err(PluginError::invalid_config(&field, "must be a string")),
    };
    let mut bytes = name.bytes();
    let valid = name.len() <= 64
        && bytes
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !valid {
        return Err(PluginError::invalid_config(
            &field,
            "must be a CAS attribute name: ASCII letters, digits, '_', '-' or '.', starting \
             with a letter or '_', at most 64 characters",
        ));
    }
    Ok(name.clone())
}



/// The JSON Schema of the config: the host checks an administrator's config against it
/// before [`Config::parse`], which checks what a schema cannot (the URL's parts).
pub fn schema() -> Value {
    use gatehouse_plugin_sdk::schema;
    let attribute = |description: &str, default: &str| {
        serde_json::json!({
            "description": description,
            "type": ["string", "null"],
            "pattern": "^[A-Za-z_][A-Za-z0-9_.-]{0,63}$",
            "default": default,
        })
    };
    schema::config_object(
        "CAS 3.0 connection",
        serde_json::json!({
            "server_url": schema::url(
                "The CAS server's base URL, under which /login and /p3/serviceValidate live."
            ),
            "allowed_domains": schema::allowed_domains(),
            "email_attribute": attribute("The CAS attribute holding the email address.", "mail"),
            "name_attribute": attribute("The CAS attribute holding the display name.", "displayName"),
            "require_verified_email": schema::boolean(
                "Refuses every login when on: CAS never says an email is verified.",
                false
            ),
            "allow_subdomains": schema::boolean(
                "Whether subdomains of the allowed domains are accepted too.",
                false
            ),
        }),
        &["server_url", "allowed_domains"],
    )
}

const KNOWN_FIELDS: [&str; 6] = [
    "server_url",
    "allowed_domains",
    "email_attribute",
    "name_attribute",
    "require_verified_email",
    "allow_subdomains",
];
