//! The connection config: parsing, validation and normalisation.
//!
//! The same checks run when an administrator saves a connection (`validate_config`) and each
//! time a login uses the stored config, so a config that was valid under an older plugin
//! version cannot slip past a newer rule.

use std::collections::BTreeMap;

use gatehouse_plugin_sdk::config::{
    allowed_domains, client_id, client_secret, optional_bool, reject_unknown_fields,
    required_string,
};
use gatehouse_plugin_sdk::PluginError;
use openidconnect::core::CoreJwsSigningAlgorithm;
use serde_json::{Map, Value};
use url::Url;

/// Scopes always requested (OIDC Core §3.1.2.1 requires `openid`; §5.4 defines the others).
pub const BASE_SCOPES: [&str; 3] = ["openid", "profile", "email"];

/// A validated connection config.
#[derive(Clone)]
pub struct Config {
    /// Where the OpenID Provider's metadata lives (OIDC Discovery 1.0 §4).
    pub discovery_url: String,
    /// Our client id at the provider.
    pub client_id: String,
    /// Our client secret; `None` for a public client relying on PKCE only.
    pub client_secret: Option<String>,
    /// Email domains the host accepts, lowercase ASCII (IDNA A-labels).
    pub allowed_domains: Vec<String>,
    /// Whether subdomains of `allowed_domains` are accepted too (enforced by the host).
    pub allow_subdomains: bool,
    /// Whether the host requires a verified email.
    pub require_verified_email: bool,
    /// ID token signature algorithms we accept, asymmetric only.
    pub id_token_signing_algs: Vec<SigningAlg>,
    /// Scopes requested besides [`BASE_SCOPES`].
    pub extra_scopes: Vec<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client secret is left out on purpose.
        f.debug_struct("Config")
            .field("discovery_url", &self.discovery_url)
            .field("client_id", &self.client_id)
            .field("allowed_domains", &self.allowed_domains)
            .finish_non_exhaustive()
    }
}

/// An asymmetric JWS algorithm (RFC 7518 §3.1, RFC 8037 §3.1) that openidconnect can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningAlg {
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
    /// Ed25519.
    EdDsa,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
}

impl SigningAlg {
    const ALL: [SigningAlg; 9] = [
        SigningAlg::Rs256,
        SigningAlg::Rs384,
        SigningAlg::Rs512,
        SigningAlg::Ps256,
        SigningAlg::Ps384,
        SigningAlg::Ps512,
        SigningAlg::Es256,
        SigningAlg::Es384,
        SigningAlg::EdDsa,
    ];

    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Es256 => "ES256",
            SigningAlg::Es384 => "ES384",
            SigningAlg::EdDsa => "EdDSA",
            SigningAlg::Ps256 => "PS256",
            SigningAlg::Ps384 => "PS384",
            SigningAlg::Ps512 => "PS512",
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Rs384 => "RS384",
            SigningAlg::Rs512 => "RS512",
        }
    }

    /// The openidconnect value, for `IdTokenVerifier::set_allowed_algs`.
    pub fn to_core(self) -> CoreJwsSigningAlgorithm {
        match self {
            SigningAlg::Es256 => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            SigningAlg::Es384 => CoreJwsSigningAlgorithm::EcdsaP384Sha384,
            SigningAlg::EdDsa => CoreJwsSigningAlgorithm::EdDsa,
            SigningAlg::Ps256 => CoreJwsSigningAlgorithm::RsaSsaPssSha256,
            SigningAlg::Ps384 => CoreJwsSigningAlgorithm::RsaSsaPssSha384,
            SigningAlg::Ps512 => CoreJwsSigningAlgorithm::RsaSsaPssSha512,
            SigningAlg::Rs256 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            SigningAlg::Rs384 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
            SigningAlg::Rs512 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
        }
    }

    fn parse(name: &str) -> Option<SigningAlg> {
        SigningAlg::ALL
            .into_iter()
            .find(|alg| alg.as_str() == name)
    }
}

impl Config {
    /// Validates a config as sent by an administrator or as stored by the host.
    pub fn parse(value: &Value) -> Result<Config, PluginError> {
        let object = value
            .as_object()
            .ok_or_else(|| PluginError::invalid_config("", "the config must be a JSON object"))?;
        reject_unknown_fields(object, &KNOWN_FIELDS, "")?;

        let discovery_url = discovery_url(required_string(object, "discovery_url")?)?;
        let client_id = client_id(required_string(object, "client_id")?)?;
        let client_secret = client_secret(object.get("client_secret"))?;
        let allowed_domains = allowed_domains(object.get("allowed_domains"))?;
        let allow_subdomains = optional_bool(object, "allow_subdomains", false)?;
        let require_verified_email = optional_bool(object, "require_verified_email", true)?;
        let id_token_signing_algs = signing_algs(object.get("id_token_signing_algs"))?;
        let extra_scopes = extra_scopes(object.get("scopes"))?;

        Ok(Config {
            discovery_url,
            client_id,
            client_secret,
            allowed_domains,
            allow_subdomains,
            require_verified_email,
            id_token_signing_algs,
            extra_scopes,
        })
    }

    /// The normalised config to store, with every default written out.
    pub fn to_value(&self) -> Value {
        let mut object = Map::new();
        object.insert("discovery_url".into(), self.discovery_url.clone().into());
        object.insert("client_id".into(), self.client_id.clone().into());
        if let Some(secret) = &self.client_secret {
            object.insert("client_secret".into(), secret.clone().into());
        }
        object.insert(
            "allowed_domains".into(),
            self.allowed_domains.clone().into(),
        );
        object.insert("allow_subdomains".into(), self.allow_subdomains.into());
        object.insert(
            "require_verified_email".into(),
            self.require_verified_email.into(),
        );
        let algs: Vec<Value> = self
            .id_token_signing_algs
            .iter()
            .map(|alg| alg.as_str().into())
            .collect();
        object.insert("id_token_signing_algs".into(), algs.into());
        object.insert("scopes".into(), self.extra_scopes.clone().into());
        Value::Object(object)
    }

    /// All scopes requested, space-separated (RFC 6749 §3.3).
    pub fn scope_string(&self) -> String {
        self.scopes()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// All scopes requested, base scopes first.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        BASE_SCOPES.into_iter().chain(
            self.extra_scopes
                .iter()
                .map(String::as_str),
        )
    }

    /// What the IdP administrator must configure, besides the redirect URI the host adds.
    pub fn setup(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("scopes".to_owned(), self.scope_string())])
    }
}




/// OIDC Discovery 1.0 §4: the document lives at the issuer followed by
/// `/.well-known/openid-configuration`; §2 forbids a query or fragment in the issuer.
fn discovery_url(text: &str) -> Result<String, PluginError> {
    let error = |detail: &str| PluginError::invalid_config("/discovery_url", detail);
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
        return Err(error("must not contain a fragment"));
    }
    if url.query().is_some() {
        return Err(error("must not contain a query"));
    }
    if !url.path().ends_with(WELL_KNOWN_SUFFIX) {
        return Err(error(
            "must end with /.well-known/openid-configuration (OIDC Discovery 1.0 section 4)",
        ));
    }
    Ok(text.to_owned())
}





fn signing_algs(value: Option<&Value>) -> Result<Vec<SigningAlg>, PluginError> {
    let list = match value {
        None | Some(Value::Null) => return Ok(DEFAULT_ALGS.to_vec()),
        Some(Value::Array(list)) if !list.is_empty() => list,
        Some(_) => {
            return Err(PluginError::invalid_config(
                "/id_token_signing_algs",
                "must be a non-empty list of JWS algorithm names",
            ))
        }
    };
    let mut algs = Vec::with_capacity(list.len());
    for (index, entry) in list.iter().enumerate() {
        let field = format!("/id_token_signing_algs/{index}");
        let Value::String(name) = entry else {
            return Err(PluginError::invalid_config(&field, "must be a string"));
        };
        // OIDC Core §10.1 and §16.19: a MAC "signature" keyed with the client secret, or none
        // at all, proves nothing about the issuer, so only asymmetric algorithms are accepted.
        if name.eq_ignore_ascii_case("none")
            || name
                .to_ascii_uppercase()
                .starts_with("HS")
        {
            return Err(PluginError::invalid_config(
                &field,
                "symmetric (HS*) and unsigned (none) ID tokens are not accepted",
            ));
        }
        let alg = SigningAlg::parse(name).ok_or_else(|| {
            PluginError::invalid_config(
                &field,
                "unsupported algorithm; use RS256/384/512, PS256/384/512, ES256/384 or EdDSA",
            )
        })?;
        if !algs.contains(&alg) {
            algs.push(alg);
        }
    }
    Ok(algs)
}

fn extra_scopes(value: Option<&Value>) -> Result<Vec<String>, PluginError> {
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
        if !BASE_SCOPES.contains(&scope.as_str()) && !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    Ok(scopes)
}


/// The JSON Schema of the config (the shape; [`Config::parse`] checks the rest).
pub fn schema() -> Value {
    use gatehouse_plugin_sdk::schema;
    let algs: Vec<&str> = SigningAlg::ALL.iter().map(|alg| alg.as_str()).collect();
    schema::config_object(
        "OpenID Connect connection",
        serde_json::json!({
            "discovery_url": schema::url(
                "The provider's discovery document: the issuer followed by /.well-known/openid-configuration."
            ),
            "client_id": schema::client_id(),
            "client_secret": schema::client_secret(),
            "allowed_domains": schema::allowed_domains(),
            "allow_subdomains": schema::boolean(
                "Whether subdomains of the allowed domains are accepted too.",
                false
            ),
            "require_verified_email": schema::boolean(
                "Whether the provider must say the email is verified.",
                true
            ),
            "id_token_signing_algs": {
                "description": "ID token signature algorithms accepted (asymmetric only).",
                "type": ["array", "null"],
                "minItems": 1,
                "items": { "type": "string", "enum": algs },
            },
            "scopes": schema::string_list(
                "Scopes requested besides openid, profile and email.",
                50
            ),
        }),
        &["discovery_url", "client_id", "allowed_domains"],
    )
}

const KNOWN_FIELDS: [&str; 8] = [
    "discovery_url",
    "client_id",
    "client_secret",
    "allowed_domains",
    "allow_subdomains",
    "require_verified_email",
    "id_token_signing_algs",
    "scopes",
];

const DEFAULT_ALGS: [SigningAlg; 4] = [
    SigningAlg::Rs256,
    SigningAlg::Es256,
    SigningAlg::Ps256,
    SigningAlg::EdDsa,
];


/// OIDC Discovery 1.0 §4.1.
pub const WELL_KNOWN_SUFFIX: &str = "/.well-known/openid-configuration";

#[cfg(test)]
mod tests;
