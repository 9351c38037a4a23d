//! The connection config: presets, parsing, validation and normalisation.
//!
//! The same checks run when an administrator saves a connection (`validate_config`) and each
//! time a login uses the stored config, so a config that was valid under an older plugin
//! version cannot slip past a newer rule. A preset only fills fields the administrator left
//! out; the stored config has every preset value written out, so re-validating it gives the
//! same config.

use std::collections::BTreeMap;

use gatehouse_plugin_sdk::config::{
    allowed_domains, client_id, client_secret, optional_bool, optional_bool_in, pointer,
    reject_unknown_fields, required_string,
};
use gatehouse_plugin_sdk::PluginError;
use serde_json::{json, Map, Value};
use url::Url;

/// A validated connection config.
#[derive(Clone)]
pub struct Config {
    /// The preset the defaults came from, if any.
    pub preset: Option<Preset>,
    /// The provider's authorization endpoint (RFC 6749 §3.1).
    pub authorization_url: String,
    /// The provider's token endpoint (RFC 6749 §3.2).
    pub token_url: String,
    /// The resource that describes the signed-in user (Facebook's `/me`, GitHub's `/user`).
    pub userinfo_url: String,
    /// Our client id at the provider.
    pub client_id: String,
    /// Our client secret; `None` for a public client relying on PKCE only.
    pub client_secret: Option<String>,
    /// Scopes requested, in order, without duplicates.
    pub scopes: Vec<String>,
    /// Whether to send a PKCE S256 challenge and verifier (RFC 7636).
    pub pkce: bool,
    /// How a configured client secret is sent to the token endpoint.
    pub token_auth: TokenAuth,
    /// Where the identity lives in the user-info document.
    pub mapping: Mapping,
    /// Email domains the host accepts, lowercase ASCII (IDNA A-labels).
    pub allowed_domains: Vec<String>,
    /// Whether subdomains of `allowed_domains` are accepted too (enforced by the host).
    pub allow_subdomains: bool,
    /// Whether the host requires a verified email.
    pub require_verified_email: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client secret is left out on purpose.
        f.debug_struct("Config")
            .field("preset", &self.preset)
            .field("authorization_url", &self.authorization_url)
            .field("client_id", &self.client_id)
            .field("allowed_domains", &self.allowed_domains)
            .finish_non_exhaustive()
    }
}

/// A known provider whose endpoints, scopes and mapping are filled in for the administrator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// Facebook Login (Graph API v19.0).
    Facebook,
    /// GitHub OAuth apps.
    Github,
}

impl Preset {
    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Facebook => "facebook",
            Preset::Github => "github",
        }
    }

    fn parse(name: &str) -> Option<Preset> {
        [Preset::Facebook, Preset::Github]
            .into_iter()
            .find(|preset| preset.as_str() == name)
    }

    /// The fields this preset fills in when the administrator leaves them out.
    fn defaults(self) -> Value {
        match self {
            // Facebook only returns an email the person has confirmed, so its emails count as
            // verified. Its token endpoint expects the secret in the body.
            Preset::Facebook => json!({
                "authorization_url": "https://www.facebook.com/v19.0/dialog/oauth",
                "token_url": "https://graph.facebook.com/v19.0/oauth/access_token",
                "userinfo_url": "https://graph.facebook.com/me?fields=id,name,email",
                "scopes": ["email", "public_profile"],
                "token_auth": "post",
                "mapping": {
                    "subject": "/id",
                    "email": "/email",
                    "name": "/name",
                    "email_verified_default": true,
                },
            }),
            // GitHub's /user has a numeric id and the public email only (often null), with no
            // statement about verification; /user/emails would be needed for that.
            Preset::Github => json!({
                "authorization_url": "https://github.com/login/oauth/authorize",
                "token_url": "https://github.com/login/oauth/access_token",
                "userinfo_url": "https://api.github.com/user",
                "scopes": ["read:user", "user:email"],
                "token_auth": "basic",
                "mapping": {
                    "subject": "/id",
                    "email": "/email",
                    "name": "/name",
                    "email_verified_default": false,
                },
            }),
        }
    }
}

/// Client authentication at the token endpoint (RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenAuth {
    /// HTTP Basic with the form-encoded id and secret (`client_secret_basic`).
    Basic,
    /// `client_id` and `client_secret` in the request body (`client_secret_post`).
    Post,
}

impl TokenAuth {
    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenAuth::Basic => "basic",
            TokenAuth::Post => "post",
        }
    }
}

/// Where subject, email, name and email verification live in the user-info document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// JSON pointer to the stable user id: a string, or an integer (GitHub).
    pub subject: String,
    /// JSON pointer to the email, if the provider has one.
    pub email: Option<String>,
    /// JSON pointer to the display name.
    pub name: Option<String>,
    /// JSON pointer to a boolean saying the email is verified.
    pub email_verified: Option<String>,
    /// Whether an email counts as verified when the document says nothing about it.
    pub email_verified_default: bool,
}

impl Config {
    /// Validates a config as sent by an administrator or as stored by the host.
    pub fn parse(value: &Value) -> Result<Config, PluginError> {
        let object = value
            .as_object()
            .ok_or_else(|| PluginError::invalid_config("", "the config must be a JSON object"))?;
        reject_unknown_fields(object, &KNOWN_FIELDS, "")?;

        let preset = preset(object.get("preset"))?;
        let object = match preset {
            Some(preset) => with_defaults(object, preset),
            None => object.clone(),
        };

        let authorization_url = endpoint(&object, "authorization_url")?;
        reject_reserved_query(&authorization_url)?;
        let token_url = endpoint(&object, "token_url")?;
        let userinfo_url = endpoint(&object, "userinfo_url")?;
        let client_id = client_id(required_string(&object, "client_id")?)?;
        let client_secret = client_secret(object.get("client_secret"))?;
        let scopes = scopes(object.get("scopes"))?;
        let pkce = optional_bool(&object, "pkce", true)?;
        let token_auth = token_auth(object.get("token_auth"))?;
        let mapping = mapping(object.get("mapping"))?;
        let allowed_domains = allowed_domains(object.get("allowed_domains"))?;
        let allow_subdomains =
            optional_bool(&object, "allow_subdomains", false)?;
        let require_verified_email = optional_bool(&object, "require_verified_email", true)?;

        Ok(Config {
            preset,
            authorization_url,
            token_url,
            userinfo_url,
            client_id,
            client_secret,
            scopes,
            pkce,
            token_auth,
            mapping,
            allowed_domains,
            allow_subdomains,
            require_verified_email,
        })
    }

    /// The normalised config to store, with every default and preset value written out.
    pub fn to_value(&self) -> Value {
        let mut object = Map::new();
        if let Some(preset) = self.preset {
            object.insert("preset".into(), preset.as_str().into());
        }
        object.insert(
            "authorization_url".into(),
            self.authorization_url.clone().into(),
        );
        object.insert("token_url".into(), self.token_url.clone().into());
        object.insert("userinfo_url".into(), self.userinfo_url.clone().into());
        object.insert("client_id".into(), self.client_id.clone().into());
        if let Some(secret) = &self.client_secret {
            object.insert("client_secret".into(), secret.clone().into());
        }
        object.insert("scopes".into(), self.scopes.clone().into());
        object.insert("pkce".into(), self.pkce.into());
        object.insert("token_auth".into(), self.token_auth.as_str().into());
        let mut mapping = Map::new();
        mapping.insert("subject".into(), self.mapping.subject.clone().into());
        for (key, pointer) in [
            ("email", &self.mapping.email),
            ("name", &self.mapping.name),
            ("email_verified", &self.mapping.email_verified),
        ] {
            if let Some(pointer) = pointer {
                mapping.insert(key.into(), pointer.clone().into());
            }
        }
        mapping.insert(
            "email_verified_default".into(),
            self.mapping
                .email_verified_default
                .into(),
        );
        object.insert("mapping".into(), Value::Object(mapping));
        object.insert(
            "allowed_domains".into(),
            self.allowed_domains.clone().into(),
        );
        object.insert("allow_subdomains".into(), self.allow_subdomains.into());
        object.insert(
            "require_verified_email".into(),
            self.require_verified_email.into(),
        );
        Value::Object(object)
    }

    /// All scopes requested, space-separated (RFC 6749 §3.3).
    pub fn scope_string(&self) -> String {
        self.scopes.join(" ")
    }

    /// What the provider's administrator must configure, besides the redirect URI the host
    /// adds.
    pub fn setup(&self) -> BTreeMap<String, String> {
        let mut setup = BTreeMap::new();
        if !self.scopes.is_empty() {
            setup.insert("scopes".to_owned(), self.scope_string());
        }
        let client_authentication = match (&self.client_secret, self.token_auth) {
            (None, _) => "none (public client)",
            (Some(_), TokenAuth::Basic) => "client_secret_basic",
            (Some(_), TokenAuth::Post) => "client_secret_post",
        };
        setup.insert(
            "client_authentication".to_owned(),
            client_authentication.to_owned(),
        );
        setup.insert(
            "pkce".to_owned(),
            if self.pkce { "S256" } else { "off" }.to_owned(),
        );
        setup
    }

    /// Settings that save fine but will refuse logins or weaken them.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.mapping.email.is_none() {
            warnings.push(
                "mapping.email is not set: logins carry no email, and the host refuses them"
                    .to_owned(),
            );
        } else if self.require_verified_email
            && self.mapping.email_verified.is_none()
            && !self.mapping.email_verified_default
        {
            warnings.push(
                "nothing marks an email as verified (no mapping.email_verified, \
                 email_verified_default false) while require_verified_email is on: \
                 every login will be refused"
                    .to_owned(),
            );
        }
        if self.client_secret.is_none() && !self.pkce {
            warnings.push(
                "a public client without PKCE: a stolen authorization code can be redeemed \
                 by anyone (RFC 7636 section 1)"
                    .to_owned(),
            );
        }
        warnings
    }
}

/// Overlays the administrator's fields on a preset's defaults; `mapping` merges per member.
fn with_defaults(object: &Map<String, Value>, preset: Preset) -> Map<String, Value> {
    // The defaults are object literals above; the empty fallback is never taken.
    let mut merged = match preset.defaults() {
        Value::Object(defaults) => defaults,
        _ => Map::new(),
    };
    for (key, value) in object {
        match (key.as_str(), merged.get_mut(key), value) {
            ("mapping", Some(Value::Object(defaults)), Value::Object(given)) => {
                for (member, value) in given {
                    defaults.insert(member.clone(), value.clone());
                }
            }
            _ => {
                merged.insert(key.clone(), value.clone());
            }
        }
    }
    merged
}

fn preset(value: Option<&Value>) -> Result<Option<Preset>, PluginError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(name)) => Preset::parse(name)
            .map(Some)
            .ok_or_else(|| {
                PluginError::invalid_config("/preset", "must be \"facebook\" or \"github\"")
            }),
        Some(_) => Err(PluginError::invalid_config(
            "/preset",
            "must be \"facebook\" or \"github\"",
        )),
    }
}




/// An absolute http(s) URL without credentials or fragment. RFC 6749 §3.1 and §3.2 allow a
/// query on the endpoints (Facebook's `/me?fields=...` needs one) and forbid a fragment.
fn endpoint(object: &Map<String, Value>, field: &str) -> Result<String, PluginError> {
    let text = required_string(object, field)?;
    let field = pointer(field);
    let error = |detail: &str| PluginError::invalid_config(&field, detail);
    if text.trim() != text || text.is_empty() {
        return Err(error("must be an absolute URL without surrounding spaces"));
    }
    let url = Url::parse(text).map_err(|_| error("must be an absolute URL"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(error("must use https (or http)"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(error("must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(error("must not contain credentials"));
    }
    if url.fragment().is_some() || text.contains('#') {
        return Err(error("must not contain a fragment (RFC 6749 section 3.1)"));
    }
    Ok(text.to_owned())
}

/// The authorization URL may carry fixed parameters, but not ones the login sets itself: a
/// second `state` or `redirect_uri` would make the request ambiguous (RFC 6749 §3.1).
fn reject_reserved_query(authorization_url: &str) -> Result<(), PluginError> {
    let url = Url::parse(authorization_url)
        .map_err(|_| PluginError::invalid_config("/authorization_url", "must be a URL"))?;
    match url
        .query_pairs()
        .find(|(name, _)| RESERVED_PARAMETERS.contains(&name.as_ref()))
    {
        Some((name, _)) => Err(PluginError::invalid_config(
            "/authorization_url",
            format!("must not carry the {name} parameter; Gatehouse sets it for each login"),
        )),
        None => Ok(()),
    }
}



fn scopes(value: Option<&Value>) -> Result<Vec<String>, PluginError> {
    let list = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(PluginError::invalid_config(
                "/scopes",
                "must be a list of scope names",
            ))
        }
    };
    let mut scopes: Vec<String> = Vec::new();
    for (index, entry) in list.iter().enumerate() {
        let field = format!("/scopes/{index}");
        let Value::String(scope) = entry else {
            return Err(PluginError::invalid_config(&field, "must be a string"));
        };
        // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
        let valid = !scope.is_empty()
            && scope
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        if !valid {
            return Err(PluginError::invalid_config(
                &field,
                "must be a scope token (RFC 6749 section 3.3: no spaces, quotes or backslashes)",
            ));
        }
        if !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    Ok(scopes)
}

fn token_auth(value: Option<&Value>) -> Result<TokenAuth, PluginError> {
    match value {
        None | Some(Value::Null) => Ok(TokenAuth::Basic),
        Some(Value::String(name)) if name == "basic" => Ok(TokenAuth::Basic),
        Some(Value::String(name)) if name == "post" => Ok(TokenAuth::Post),
        Some(_) => Err(PluginError::invalid_config(
            "/token_auth",
            "must be \"basic\" (client_secret_basic) or \"post\" (client_secret_post)",
        )),
    }
}

fn mapping(value: Option<&Value>) -> Result<Mapping, PluginError> {
    let object = match value {
        Some(Value::Object(object)) => object,
        Some(_) => {
            return Err(PluginError::invalid_config(
                "/mapping",
                "must be an object of JSON pointers",
            ))
        }
        None => {
            return Err(PluginError::invalid_config(
                "/mapping",
                "is required (or use a preset)",
            ))
        }
    };
    reject_unknown_fields(object, &MAPPING_FIELDS, "/mapping")?;

    let subject = match object.get("subject") {
        Some(value) => json_pointer("/mapping/subject", value)?,
        None => {
            return Err(PluginError::invalid_config(
                "/mapping/subject",
                "is required",
            ))
        }
    };
    let optional = |key: &str| -> Result<Option<String>, PluginError> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => json_pointer(&format!("/mapping/{key}"), value).map(Some),
        }
    };
    let email = optional("email")?;
    let name = optional("name")?;
    let email_verified = optional("email_verified")?;
    let email_verified_default = optional_bool_in(object, "/mapping", "email_verified_default", false)?;

    Ok(Mapping {
        subject,
        email,
        name,
        email_verified,
        email_verified_default,
    })
}

/// RFC 6901 §3: a pointer is empty or a sequence of `/`-prefixed reference tokens in which
/// `~` appears only as `~0` or `~1`. The empty pointer (the whole document) is refused: no
/// user-info document is a bare string.
fn json_pointer(field: &str, value: &Value) -> Result<String, PluginError> {
    let Value::String(text) = value else {
        return Err(PluginError::invalid_config(
            field,
            "must be a JSON pointer string such as \"/id\"",
        ));
    };
    if !text.starts_with('/') {
        return Err(PluginError::invalid_config(
            field,
            "must be a JSON pointer starting with '/' (RFC 6901), such as \"/id\"",
        ));
    }
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(PluginError::invalid_config(
                field,
                "'~' must be followed by 0 or 1 (RFC 6901 section 3)",
            ));
        }
    }
    Ok(text.clone())
}




/// The JSON Schema of the config (the shape; [`Config::parse`] checks the rest). Without a
/// preset, the endpoints and the mapping are required.
pub fn schema() -> Value {
    use gatehouse_plugin_sdk::schema;
    let pointer = |description: &str| {
        serde_json::json!({
            "description": description,
            "type": ["string", "null"],
            "pattern": "^/",
            "maxLength": 255,
        })
    };
    let mut config = schema::config_object(
        "OAuth 2.0 connection",
        serde_json::json!({
            "preset": {
                "description": "Endpoints and mapping of a known provider.",
                "type": ["string", "null"],
                "enum": ["facebook", "github", null],
            },
            "authorization_url": schema::url("The provider's authorization endpoint."),
            "token_url": schema::url("The provider's token endpoint."),
            "userinfo_url": schema::url("The endpoint that describes the signed-in user (JSON)."),
            "client_id": schema::client_id(),
            "client_secret": schema::client_secret(),
            "scopes": schema::string_list("Scopes requested.", 50),
            "pkce": schema::boolean("Whether to send a PKCE challenge (RFC 7636).", true),
            "token_auth": {
                "description": "How the client authenticates at the token endpoint.",
                "type": ["string", "null"],
                "enum": ["basic", "post", null],
            },
            "mapping": schema::object(
                "JSON pointers (RFC 6901) into the user-info document.",
                serde_json::json!({
                    "subject": {
                        "description": "The user's stable id.",
                        "type": "string",
                        "pattern": "^/",
                        "maxLength": 255,
                    },
                    "email": pointer("The email address."),
                    "name": pointer("The display name."),
                    "email_verified": pointer("A boolean saying the email is verified."),
                    "email_verified_default": schema::boolean(
                        "Whether an email is taken as verified when the provider says nothing.",
                        false
                    ),
                }),
                &["subject"],
            ),
            "allowed_domains": schema::allowed_domains(),
            "allow_subdomains": schema::boolean(
                "Whether subdomains of the allowed domains are accepted too.",
                false
            ),
            "require_verified_email": schema::boolean(
                "Whether the email must be verified.",
                true
            ),
        }),
        &["client_id", "allowed_domains"],
    );
    if let Value::Object(map) = &mut config {
        map.insert(
            "if".into(),
            serde_json::json!({ "required": ["preset"], "properties": { "preset": { "type": "string" } } }),
        );
        map.insert(
            "else".into(),
            serde_json::json!({ "required": ["authorization_url", "token_url", "userinfo_url", "mapping"] }),
        );
    }
    config
}

const KNOWN_FIELDS: [&str; 13] = [
    "preset",
    "authorization_url",
    "token_url",
    "userinfo_url",
    "client_id",
    "client_secret",
    "scopes",
    "pkce",
    "token_auth",
    "mapping",
    "allowed_domains",
    "allow_subdomains",
    "require_verified_email",
];

const MAPPING_FIELDS: [&str; 5] = [
    "subject",
    "email",
    "name",
    "email_verified",
    "email_verified_default",
];

/// Authorization request parameters Gatehouse sets (RFC 6749 §4.1.1, RFC 7636 §4.3).
const RESERVED_PARAMETERS: [&str; 7] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];


#[cfg(test)]
mod tests;
