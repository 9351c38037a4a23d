//! The connection config: parsing, validation and normalisation.
//!
//! The same checks run when an administrator saves a connection (`validate_config`) and each
//! time a login uses the stored config. A connection without a usable IdP signing certificate
//! never validates: samael skips signature verification when it has no certificate, so "no
//! certificate" must be impossible by construction.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use gatehouse_plugin_sdk::config::{
    allowed_domains, optional_bool, pointer, reject_unknown_fields, required_string,
};
use gatehouse_plugin_sdk::{reason, PluginError};
use openssl::asn1::Asn1Time;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use serde_json::{Map, Value};
use url::Url;

use crate::idp_metadata::IdpMetadata;
use crate::sp_key;

/// A validated connection config.
///
/// With `idp_metadata_url`, the IdP fields (`idp_entity_id`, `sso_url`, `certificates`) stay
/// empty until a login reads the metadata and [`Config::with_metadata`] fills them in; an
/// empty certificate list verifies nothing (see `acs::verify`), so an unread config fails
/// closed.
#[derive(Clone)]
pub struct Config {
    /// The IdP's entity ID; must equal every `Issuer` (SAML Core §2.2.5).
    pub idp_entity_id: String,
    /// The IdP's HTTP-Redirect SingleSignOnService location.
    pub sso_url: String,
    /// IdP signing certificates (1..=4 during a rollover), DER.
    pub certificates: Vec<Vec<u8>>,
    /// Where the IdP publishes its metadata (https), read at each login through the host's
    /// shared cache instead of fixed IdP fields.
    pub idp_metadata_url: Option<String>,
    /// Email domains the host accepts, lowercase ASCII (IDNA A-labels).
    pub allowed_domains: Vec<String>,
    /// Whether subdomains of `allowed_domains` are accepted too (enforced by the host).
    pub allow_subdomains: bool,
    /// Whether the host requires a verified email (SAML never asserts one).
    pub require_verified_email: bool,
    /// Whether unsolicited (IdP-initiated) responses are accepted.
    pub allow_idp_initiated: bool,
    /// Whether SHA-1 signatures and digests are accepted.
    pub allow_sha1: bool,
    /// Clock skew tolerated on every time check.
    pub clock_skew_secs: i64,
    /// Attribute that carries the email, overriding the usual names.
    pub email_attribute: Option<String>,
    /// Attribute that carries the display name, overriding the usual names.
    pub name_attribute: Option<String>,
    /// Our RSA key: signs AuthnRequests and decrypts encrypted assertions.
    pub sp_private_key: Option<SpKey>,
    /// Our certificate matching `sp_private_key`, PEM.
    pub sp_certificate: Option<String>,
}

/// The SP private key, kept as given (PEM) and parsed.
#[derive(Clone)]
pub struct SpKey {
    /// The PEM text, stored back into the config.
    pub pem: String,
    /// The parsed RSA key.
    pub key: PKey<Private>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The SP private key is left out on purpose.
        f.debug_struct("Config")
            .field("idp_entity_id", &self.idp_entity_id)
            .field("idp_metadata_url", &self.idp_metadata_url)
            .field("sso_url", &self.sso_url)
            .field("certificates", &self.certificates.len())
            .field("allowed_domains", &self.allowed_domains)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Validates a config as an administrator sent it, through `validate_config`.
    ///
    /// Beyond [`Config::parse_with_warnings`], this honours `"sp_key": "generate"`: a fresh SP
    /// key pair replaces whatever `sp_private_key` and `sp_certificate` came with the config
    /// (the host fills in the stored key when the administrator omits it, so sending
    /// `generate` again rotates the key). `sp_key` itself is never stored, so a stored config
    /// never generates anything when a login reads it.
    pub fn from_admin(value: &Value) -> Result<(Config, Vec<String>), PluginError> {
        let mut value = value.clone();
        let object = value
            .as_object_mut()
            .ok_or_else(|| PluginError::invalid_config("", "the config must be a JSON object"))?;
        let mut warnings = Vec::new();
        match object.remove("sp_key") {
            None | Some(Value::Null) => {}
            Some(Value::String(request)) if request == "generate" => {
                let pair = sp_key::generate().map_err(|_| {
                    PluginError::new(reason::PLUGIN_FAILURE, "cannot generate an SP key")
                })?;
                object.insert("sp_private_key".into(), pair.private_key_pem.into());
                object.insert("sp_certificate".into(), pair.certificate_pem.into());
                warnings.push(
                    "a new SP key and certificate were generated: give the IdP the connection's \
                     SP metadata again, or it cannot verify signed requests or encrypt to us"
                        .to_owned(),
                );
            }
            Some(_) => {
                return Err(PluginError::invalid_config(
                    "/sp_key",
                    "must be \"generate\" (to create or rotate the SP key) or absent",
                ))
            }
        }

        let (config, more) = Config::parse_with_warnings(&value)?;
        warnings.extend(more);
        Ok((config, warnings))
    }

    /// Validates a config as sent by an administrator or as stored by the host.
    pub fn parse(value: &Value) -> Result<Config, PluginError> {
        Self::parse_with_warnings(value).map(|(config, _)| config)
    }

    /// Validates a config and also returns the warnings for the administrator (certificates
    /// about to expire).
    pub fn parse_with_warnings(value: &Value) -> Result<(Config, Vec<String>), PluginError> {
        let object = value
            .as_object()
            .ok_or_else(|| PluginError::invalid_config("", "the config must be a JSON object"))?;
        reject_unknown_fields(object, &KNOWN_FIELDS, "")?;

        let (idp_entity_id, sso_url, certificates, idp_metadata_url, warnings) =
            match idp_source(object)? {
                IdpSource::Fixed {
                    entity_id: id,
                    sso_url,
                    certificates: raw,
                } => {
                    let (certificates, warnings) = certificates(&raw)?;
                    (
                        entity_id(&id, "/idp_entity_id")?,
                        http_url(&sso_url, "/sso_url")?,
                        certificates,
                        None,
                        warnings,
                    )
                }
                IdpSource::MetadataUrl(url) => {
                    let url = metadata_url(&url)?;
                    (String::new(), String::new(), Vec::new(), Some(url), Vec::new())
                }
            };
        let allowed_domains = allowed_domains(object.get("allowed_domains"))?;
        let allow_subdomains = optional_bool(object, "allow_subdomains", false)?;
        let require_verified_email = optional_bool(object, "require_verified_email", false)?;
        let allow_idp_initiated = optional_bool(object, "allow_idp_initiated", false)?;
        let allow_sha1 = optional_bool(object, "allow_sha1", false)?;
        let clock_skew_secs = clock_skew(object.get("clock_skew_secs"))?;
        let email_attribute = optional_name(object, "email_attribute")?;
        let name_attribute = optional_name(object, "name_attribute")?;
        let sp_private_key = sp_private_key(object.get("sp_private_key"))?;
        let sp_certificate = sp_certificate(object.get("sp_certificate"), sp_private_key.as_ref())?;

        let config = Config {
            idp_entity_id,
            sso_url,
            certificates,
            idp_metadata_url,
            allowed_domains,
            allow_subdomains,
            require_verified_email,
            allow_idp_initiated,
            allow_sha1,
            clock_skew_secs,
            email_attribute,
            name_attribute,
            sp_private_key,
            sp_certificate,
        };
        Ok((config, warnings))
    }

    /// The normalised config to store, with every default written out. IdP metadata XML, when
    /// given, is replaced by what was read from it; a metadata URL is stored as the URL only,
    /// never with what a login read from it.
    pub fn to_value(&self) -> Value {
        let mut object = Map::new();
        if let Some(url) = &self.idp_metadata_url {
            object.insert("idp_metadata_url".into(), url.clone().into());
        } else {
            object.insert("idp_entity_id".into(), self.idp_entity_id.clone().into());
            object.insert("sso_url".into(), self.sso_url.clone().into());
            let certificates: Vec<Value> = self
                .certificates
                .iter()
                .map(|der| STANDARD.encode(der).into())
                .collect();
            object.insert("certificates".into(), certificates.into());
        }
        object.insert("allowed_domains".into(), self.allowed_domains.clone().into());
        object.insert("allow_subdomains".into(), self.allow_subdomains.into());
        object.insert("require_verified_email".into(), self.require_verified_email.into());
        object.insert("allow_idp_initiated".into(), self.allow_idp_initiated.into());
        object.insert("allow_sha1".into(), self.allow_sha1.into());
        object.insert("clock_skew_secs".into(), self.clock_skew_secs.into());
        if let Some(name) = &self.email_attribute {
            object.insert("email_attribute".into(), name.clone().into());
        }
        if let Some(name) = &self.name_attribute {
            object.insert("name_attribute".into(), name.clone().into());
        }
        if let Some(key) = &self.sp_private_key {
            object.insert("sp_private_key".into(), key.pem.clone().into());
        }
        if let Some(cert) = &self.sp_certificate {
            object.insert("sp_certificate".into(), cert.clone().into());
        }
        Value::Object(object)
    }

    /// This config with the IdP's entity ID, SSO URL and signing certificates taken from
    /// metadata read at `idp_metadata_url`, checked as if an administrator had pasted them.
    /// Expired certificates are left out, since an IdP may keep listing its previous one for a
    /// while; at least one must remain. The error is a detail for the administrator.
    pub fn with_metadata(&self, metadata: IdpMetadata) -> Result<Config, String> {
        let entity_id = entity_id(&metadata.entity_id, "/idp_entity_id")
            .map_err(|e| format!("has an unusable entityID: it {}", e.detail))?;
        let sso_url = http_url(&metadata.sso_url, "/sso_url")
            .map_err(|e| format!("has an unusable SingleSignOnService Location: it {}", e.detail))?;
        let now = unix_now();
        let mut certificates = Vec::new();
        for text in &metadata.certificates {
            let cert = parse_certificate(text)
                .ok_or("lists a signing certificate that is not base64 DER X.509")?;
            if not_after_unix(&cert).is_some_and(|expires| expires > now) {
                let der = cert
                    .to_der()
                    .map_err(|_| "lists a certificate that cannot be re-encoded")?;
                certificates.push(der);
            }
        }
        if certificates.is_empty() {
            return Err("lists no signing certificate that is still valid".into());
        }
        if certificates.len() > MAX_CERTIFICATES {
            return Err(format!("lists more than {MAX_CERTIFICATES} valid signing certificates"));
        }
        Ok(Config {
            idp_entity_id: entity_id,
            sso_url,
            certificates,
            ..self.clone()
        })
    }

    /// Warnings for trusted certificates that expire within 30 days (used for certificates read
    /// from a metadata URL, which validation cannot see).
    pub fn expiry_warnings(&self) -> Vec<String> {
        let now = unix_now();
        self.certificates
            .iter()
            .filter_map(|der| X509::from_der(der).ok())
            .filter_map(|cert| not_after_unix(&cert).map(|expires| (cert, expires)))
            .filter(|(_, expires)| *expires - now <= EXPIRY_WARNING_SECS)
            .map(|(cert, expires)| {
                format!("IdP signing certificate {} expires on {}", common_name(&cert), date(expires))
            })
            .collect()
    }

    /// What the IdP administrator must configure, besides the ACS URL, SP entity ID and
    /// metadata URL the host adds.
    pub fn setup(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("nameid_format".to_owned(), NAMEID_FORMAT_EMAIL.to_owned())])
    }
}

/// SAML Core §8.3.2.
pub const NAMEID_FORMAT_EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";

/// Where the IdP's entity ID, SSO URL and certificates come from.
enum IdpSource {
    /// Given by the administrator, as fields or as a metadata document.
    Fixed {
        entity_id: String,
        sso_url: String,
        certificates: Vec<Value>,
    },
    /// Read from the IdP's metadata URL at each login.
    MetadataUrl(String),
}

/// Exactly one of: the three explicit fields, `idp_metadata_xml`, or `idp_metadata_url`.
fn idp_source(object: &Map<String, Value>) -> Result<IdpSource, PluginError> {
    let present = |field: &str| object.get(field).is_some_and(|v| !v.is_null());
    let explicit = ["idp_entity_id", "sso_url", "certificates"]
        .iter()
        .any(|field| present(field));
    let ways = [explicit, present("idp_metadata_xml"), present("idp_metadata_url")];
    if ways.iter().filter(|way| **way).count() > 1 {
        let field = if present("idp_metadata_url") {
            "/idp_metadata_url"
        } else {
            "/idp_metadata_xml"
        };
        return Err(PluginError::invalid_config(
            field,
            "give exactly one of: idp_metadata_url, idp_metadata_xml, or idp_entity_id, sso_url \
             and certificates",
        ));
    }
    match object.get("idp_metadata_url") {
        None | Some(Value::Null) => {}
        Some(Value::String(url)) => return Ok(IdpSource::MetadataUrl(url.clone())),
        Some(_) => {
            return Err(PluginError::invalid_config("/idp_metadata_url", "must be a string"))
        }
    }
    match object.get("idp_metadata_xml") {
        None | Some(Value::Null) => {}
        Some(Value::String(xml)) => {
            let metadata = IdpMetadata::parse(xml)
                .map_err(|detail| PluginError::invalid_config("/idp_metadata_xml", detail))?;
            let certificates = metadata
                .certificates
                .into_iter()
                .map(Value::String)
                .collect();
            return Ok(IdpSource::Fixed {
                entity_id: metadata.entity_id,
                sso_url: metadata.sso_url,
                certificates,
            });
        }
        Some(_) => {
            return Err(PluginError::invalid_config("/idp_metadata_xml", "must be a string"))
        }
    }
    let entity_id = required_string(object, "idp_entity_id")?.to_owned();
    let sso_url = required_string(object, "sso_url")?.to_owned();
    let certificates = match object.get("certificates") {
        Some(Value::Array(list)) => list.clone(),
        Some(_) => {
            return Err(PluginError::invalid_config(
                "/certificates",
                "must be a list of PEM or base64 DER certificates",
            ))
        }
        None => {
            return Err(PluginError::invalid_config(
                "/certificates",
                "is required: a connection without an IdP signing certificate cannot verify anything",
            ))
        }
    };
    Ok(IdpSource::Fixed {
        entity_id,
        sso_url,
        certificates,
    })
}

/// The metadata URL: no credentials, which would be sent to the IdP and stored in clear; no
/// fragment, which HTTP never sends. The certificates it yields decide whom we trust (SAML
/// Metadata §4.1 leaves integrity to the transport when metadata is unsigned), so it must be
/// https: the host's network policy refuses plain http for every `*_url` of a config, here as
/// for the other protocols, except in local testing mode (private networks allowed), where a
/// test IdP on loopback speaks http.
fn metadata_url(text: &str) -> Result<String, PluginError> {
    let error = |detail: &str| PluginError::invalid_config("/idp_metadata_url", detail);
    if text.trim() != text || text.is_empty() {
        return Err(error("must be an absolute https URL without surrounding spaces"));
    }
    if text.len() > MAX_URL_BYTES {
        return Err(error("must be at most 2048 characters"));
    }
    let url = Url::parse(text).map_err(|_| error("must be an absolute https URL"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(error("must use https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(error("must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(error("must not contain credentials"));
    }
    if url.fragment().is_some() {
        return Err(error("must not contain a fragment"));
    }
    Ok(text.to_owned())
}

/// SAML Core §8.3.6: an entity identifier is a URI of at most 1024 characters.
fn entity_id(text: &str, field: &str) -> Result<String, PluginError> {
    if text.is_empty() || text.trim() != text {
        return Err(PluginError::invalid_config(field, "must be a non-empty URI without surrounding spaces"));
    }
    if text.chars().count() > 1024 {
        return Err(PluginError::invalid_config(field, "must be at most 1024 characters (SAML Core section 8.3.6)"));
    }
    if text.chars().any(char::is_control) {
        return Err(PluginError::invalid_config(field, "must not contain control characters"));
    }
    Ok(text.to_owned())
}

fn http_url(text: &str, field: &str) -> Result<String, PluginError> {
    let error = |detail: &str| PluginError::invalid_config(field, detail);
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
    if url.fragment().is_some() {
        return Err(error("must not contain a fragment"));
    }
    Ok(text.to_owned())
}

/// Parses each certificate, refuses expired ones, and warns about those expiring soon.
fn certificates(list: &[Value]) -> Result<(Vec<Vec<u8>>, Vec<String>), PluginError> {
    if list.is_empty() {
        return Err(PluginError::invalid_config(
            "/certificates",
            "must list at least one IdP signing certificate",
        ));
    }
    if list.len() > MAX_CERTIFICATES {
        return Err(PluginError::invalid_config(
            "/certificates",
            "must list at most 4 certificates",
        ));
    }
    let now = unix_now();
    let mut ders: Vec<Vec<u8>> = Vec::with_capacity(list.len());
    let mut warnings = Vec::new();
    for (index, entry) in list.iter().enumerate() {
        let field = format!("/certificates/{index}");
        let Value::String(text) = entry else {
            return Err(PluginError::invalid_config(&field, "must be a string"));
        };
        if text.matches("-----BEGIN").count() > 1 {
            // openssl reads only the first block; a second certificate would silently vanish.
            return Err(PluginError::invalid_config(
                &field,
                "holds several PEM blocks; give each certificate as its own list entry",
            ));
        }
        let cert = parse_certificate(text)
            .ok_or_else(|| PluginError::invalid_config(&field, "is not a PEM or base64 DER X.509 certificate"))?;
        check_key_strength(&cert).map_err(|detail| PluginError::invalid_config(&field, detail))?;
        if not_before_unix(&cert).is_some_and(|starts| starts > now) {
            warnings.push(format!(
                "IdP signing certificate {} is not valid before {}",
                common_name(&cert),
                date(not_before_unix(&cert).unwrap_or(now))
            ));
        }
        let der = cert
            .to_der()
            .map_err(|_| PluginError::invalid_config(&field, "cannot be re-encoded as DER"))?;
        let expires = not_after_unix(&cert)
            .ok_or_else(|| PluginError::invalid_config(&field, "has an unreadable expiry date"))?;
        let name = common_name(&cert);
        if expires <= now {
            return Err(PluginError::invalid_config(
                &field,
                format!("IdP signing certificate {name} expired on {}", date(expires)),
            ));
        }
        if expires - now <= EXPIRY_WARNING_SECS {
            warnings.push(format!(
                "IdP signing certificate {name} expires on {}",
                date(expires)
            ));
        }
        if !ders.contains(&der) {
            ders.push(der);
        }
    }
    Ok((ders, warnings))
}

/// Accepts PEM or bare base64 DER (as found in metadata `ds:X509Certificate`).
pub fn parse_certificate(text: &str) -> Option<X509> {
    if text.contains("-----BEGIN") {
        return X509::from_pem(text.as_bytes()).ok();
    }
    let compact: String = text
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = STANDARD.decode(compact).ok()?;
    X509::from_der(&der).ok()
}

/// RSA keys under 2048 bits are factorable with public means; refuse them (NIST SP 800-131A).
fn check_key_strength(cert: &X509) -> Result<(), String> {
    let key = cert.public_key().map_err(|_| "has an unreadable public key".to_owned())?;
    if let Ok(rsa) = key.rsa() {
        let bits = rsa.size() * 8;
        if bits < 2048 {
            return Err(format!("has a {bits}-bit RSA key; at least 2048 bits are required"));
        }
    }
    Ok(())
}

fn not_before_unix(cert: &X509) -> Option<i64> {
    let epoch = Asn1Time::from_unix(0).ok()?;
    let diff = epoch.diff(cert.not_before()).ok()?;
    Some(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
}

fn not_after_unix(cert: &X509) -> Option<i64> {
    let epoch = Asn1Time::from_unix(0).ok()?;
    let diff = epoch.diff(cert.not_after()).ok()?;
    Some(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
}

fn common_name(cert: &X509) -> String {
    let cn = cert
        .subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .and_then(|entry| entry.data().to_string().ok());
    match cn {
        Some(cn) => format!("CN={cn}"),
        None => "(no CN)".to_owned(),
    }
}

fn date(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "an unrepresentable date".to_owned())
}

fn sp_private_key(value: Option<&Value>) -> Result<Option<SpKey>, PluginError> {
    let field = "/sp_private_key";
    let pem = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(pem)) => pem.trim(),
        Some(_) => return Err(PluginError::invalid_config(field, "must be a PEM string or null")),
    };
    // Never echo the key, not even in part.
    let key = PKey::private_key_from_pem(pem.as_bytes())
        .map_err(|_| PluginError::invalid_config(field, "is not a PEM private key"))?;
    let bits = key
        .rsa()
        .map_err(|_| PluginError::invalid_config(field, "must be an RSA key"))?
        .size()
        * 8;
    if bits < 2048 {
        return Err(PluginError::invalid_config(field, "must be an RSA key of at least 2048 bits"));
    }
    Ok(Some(SpKey {
        pem: pem.to_owned(),
        key,
    }))
}

fn sp_certificate(value: Option<&Value>, key: Option<&SpKey>) -> Result<Option<String>, PluginError> {
    let field = "/sp_certificate";
    let pem = match value {
        None | Some(Value::Null) => None,
        Some(Value::String(pem)) => Some(pem.trim()),
        Some(_) => return Err(PluginError::invalid_config(field, "must be a PEM string or null")),
    };
    match (pem, key) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(PluginError::invalid_config(
            field,
            "is required with sp_private_key: the IdP needs it to verify requests and encrypt",
        )),
        (Some(_), None) => Err(PluginError::invalid_config(
            "/sp_private_key",
            "is required with sp_certificate",
        )),
        (Some(pem), Some(key)) => {
            let cert = X509::from_pem(pem.as_bytes())
                .map_err(|_| PluginError::invalid_config(field, "is not a PEM certificate"))?;
            let matches = cert
                .public_key()
                .map(|public| public.public_eq(&key.key))
                .unwrap_or(false);
            if !matches {
                return Err(PluginError::invalid_config(field, "does not match sp_private_key"));
            }
            Ok(Some(pem.to_owned()))
        }
    }
}

fn clock_skew(value: Option<&Value>) -> Result<i64, PluginError> {
    match value {
        None | Some(Value::Null) => Ok(DEFAULT_CLOCK_SKEW_SECS),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(secs) if (0..=MAX_CLOCK_SKEW_SECS).contains(&secs) => Ok(secs),
            _ => Err(PluginError::invalid_config("/clock_skew_secs", "must be an integer from 0 to 600")),
        },
        Some(_) => Err(PluginError::invalid_config("/clock_skew_secs", "must be an integer from 0 to 600")),
    }
}

fn optional_name(object: &Map<String, Value>, field: &str) -> Result<Option<String>, PluginError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(name)) if !name.is_empty() && name.trim() == name && name.len() <= 1024 => {
            Ok(Some(name.clone()))
        }
        Some(_) => Err(PluginError::invalid_config(
            &pointer(field),
            "must be a non-empty attribute name without surrounding spaces",
        )),
    }
}







/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The JSON Schema of the config as an administrator sends it (the shape; the parser checks
/// the rest, including that exactly one IdP source is given). `sp_key` is accepted here
/// because [`Config::from_admin`] turns it into a key pair before parsing.
pub fn schema() -> Value {
    use gatehouse_plugin_sdk::schema;
    let optional_string = |description: &str, max: u64| {
        serde_json::json!({
            "description": description,
            "type": ["string", "null"],
            "minLength": 1,
            "maxLength": max,
        })
    };
    schema::config_object(
        "SAML 2.0 connection",
        serde_json::json!({
            "idp_entity_id": optional_string("The IdP's entity ID (with sso_url and certificates).", 1024),
            "sso_url": optional_string(
                "The IdP's SingleSignOnService URL for the HTTP-Redirect binding.",
                MAX_URL_BYTES as u64
            ),
            "certificates": {
                "description": "The IdP's signing certificates, PEM or base64 DER; two during a rollover.",
                "type": ["array", "null"],
                "minItems": 1,
                "maxItems": MAX_CERTIFICATES,
                "items": { "type": "string", "minLength": 1 },
            },
            "idp_metadata_xml": {
                "description": "The IdP's metadata document, pasted (instead of the three fields above).",
                "type": ["string", "null"],
                "minLength": 1,
            },
            "idp_metadata_url": optional_string(
                "Where the IdP publishes its metadata (https); read at login through a shared cache.",
                MAX_URL_BYTES as u64
            ),
            "allowed_domains": schema::allowed_domains(),
            "allow_subdomains": schema::boolean(
                "Whether subdomains of the allowed domains are accepted too.",
                false
            ),
            "require_verified_email": schema::boolean(
                "Refuses every login when on: SAML never says an email is verified.",
                false
            ),
            "allow_idp_initiated": schema::boolean(
                "Whether answers the IdP sends without a request (IdP-initiated) are accepted.",
                false
            ),
            "allow_sha1": schema::boolean("Whether SHA-1 signatures and digests are accepted.", false),
            "clock_skew_secs": {
                "description": "Clock skew tolerated on every time check, in seconds.",
                "type": ["integer", "null"],
                "minimum": 0,
                "maximum": MAX_CLOCK_SKEW_SECS,
                "default": DEFAULT_CLOCK_SKEW_SECS,
            },
            "email_attribute": optional_string("The attribute carrying the email, instead of the usual names.", 1024),
            "name_attribute": optional_string("The attribute carrying the display name, instead of the usual names.", 1024),
            "sp_key": {
                "description": "\"generate\" creates (or rotates) Gatehouse's SP key and certificate.",
                "type": ["string", "null"],
                "enum": ["generate", null],
            },
            "sp_private_key": {
                "description": "Gatehouse's RSA key for this connection, PEM. Stored encrypted, never returned.",
                "type": ["string", "null"],
                "minLength": 1,
                "writeOnly": true,
            },
            "sp_certificate": {
                "description": "The certificate of sp_private_key, PEM.",
                "type": ["string", "null"],
                "minLength": 1,
            },
        }),
        &["allowed_domains"],
    )
}

const KNOWN_FIELDS: [&str; 15] = [
    "idp_entity_id",
    "sso_url",
    "certificates",
    "idp_metadata_xml",
    "idp_metadata_url",
    "allowed_domains",
    "allow_subdomains",
    "require_verified_email",
    "allow_idp_initiated",
    "allow_sha1",
    "clock_skew_secs",
    "email_attribute",
    "name_attribute",
    "sp_private_key",
    "sp_certificate",
];

const MAX_CERTIFICATES: usize = 4;
const MAX_URL_BYTES: usize = 2048;
const EXPIRY_WARNING_SECS: i64 = 30 * 86_400;
const DEFAULT_CLOCK_SKEW_SECS: i64 = 120;
const MAX_CLOCK_SKEW_SECS: i64 = 600;

#[cfg(test)]
mod tests;
