//! Config rules every SSO protocol shares, so plugins apply them the same way.

use serde_json::{Map, Value};

use crate::PluginError;

/// Reads `allowed_domains`: a non-empty list of domain names, each normalised with
/// [`normalize_domain`], duplicates dropped. Errors name the field (`/allowed_domains/1`).
pub fn allowed_domains(value: Option<&Value>) -> Result<Vec<String>, PluginError> {
    let list = match value {
        Some(Value::Array(list)) if !list.is_empty() => list,
        Some(Value::Array(_)) => {
            return Err(PluginError::invalid_config(
                "/allowed_domains",
                "must list at least one domain",
            ))
        }
        Some(_) => {
            return Err(PluginError::invalid_config(
                "/allowed_domains",
                "must be a list of domain names",
            ))
        }
        None => {
            return Err(PluginError::invalid_config(
                "/allowed_domains",
                "is required",
            ))
        }
    };
    let mut domains: Vec<String> = Vec::with_capacity(list.len());
    for (index, entry) in list.iter().enumerate() {
        let field = format!("/allowed_domains/{index}");
        let Value::String(text) = entry else {
            return Err(PluginError::invalid_config(&field, "must be a string"));
        };
        let domain =
            normalize_domain(text).map_err(|detail| PluginError::invalid_config(&field, detail))?;
        if !domains.contains(&domain) {
            domains.push(domain);
        }
    }
    Ok(domains)
}

/// Lowercases, drops one trailing dot and converts to IDNA A-labels (UTS #46, STD3 rules), so
/// the host can compare the domain of an email with these values byte for byte. A single
/// label (`com`, `localhost`) is refused: allowing it would admit a whole top-level domain.
pub fn normalize_domain(text: &str) -> Result<String, &'static str> {
    if text.is_empty() {
        return Err("must not be empty");
    }
    if text.contains(['@', '/', '*', '\\', ':']) || text.chars().any(char::is_whitespace) {
        return Err("must be a bare domain name (no '@', '/', ':', spaces or wildcards)");
    }
    let lower = text.to_lowercase();
    let trimmed = lower
        .strip_suffix('.')
        .unwrap_or(&lower);
    let ascii = idna::domain_to_ascii_strict(trimmed)
        .map_err(|_| "is not a valid internationalised domain name")?;
    if ascii.is_empty() || ascii.len() > 253 {
        return Err("must be between 1 and 253 characters long");
    }
    let labels_ok = ascii.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    if !labels_ok {
        return Err("is not a valid domain name");
    }
    if !ascii.contains('.') {
        return Err(
            "must have at least two labels (a single label names a whole top-level domain)",
        );
    }
    if ascii
        .parse::<std::net::Ipv4Addr>()
        .is_ok()
    {
        return Err("must be a domain name, not an IP address");
    }
    Ok(ascii)
}

/// Longest client id accepted.
const MAX_CLIENT_ID_CHARS: usize = 255;

/// Checks an OAuth 2.0 client id (`/client_id`): 1 to 255 characters of RFC 6749 Appendix A.1
/// VSCHAR (printable ASCII and space).
pub fn client_id(text: &str) -> Result<String, PluginError> {
    let error = |detail: &str| PluginError::invalid_config("/client_id", detail);
    if text.is_empty() {
        return Err(error("must not be empty"));
    }
    if text.chars().count() > MAX_CLIENT_ID_CHARS {
        return Err(error("must be at most 255 characters"));
    }
    if !text.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
        return Err(error("must contain only printable ASCII characters"));
    }
    Ok(text.to_owned())
}

/// Reads an optional OAuth 2.0 client secret (`/client_secret`): absent or null means a public
/// client; an empty string is refused rather than taken for "no secret".
pub fn client_secret(value: Option<&Value>) -> Result<Option<String>, PluginError> {
    let error = |detail: &str| PluginError::invalid_config("/client_secret", detail);
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(secret)) if secret.is_empty() => {
            Err(error("must not be empty; omit it or use null for a public client"))
        }
        Some(Value::String(secret)) => Ok(Some(secret.clone())),
        Some(_) => Err(error("must be a string or null")),
    }
}

/// RFC 6901 §3: the JSON pointer of the member `key` (`~` and `/` escaped).
pub fn pointer(key: &str) -> String {
    format!("/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// Refuses the first member of `object` not in `known`, naming it under `parent` (a JSON
/// pointer, `""` for the top level). Unknown fields are refused rather than ignored, so a
/// misspelt security setting never silently falls back to its default.
pub fn reject_unknown_fields(
    object: &Map<String, Value>,
    known: &[&str],
    parent: &str,
) -> Result<(), PluginError> {
    match object.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err(PluginError::invalid_config(
            &format!("{parent}{}", pointer(key)),
            "unknown field",
        )),
        None => Ok(()),
    }
}

/// The top-level string member `key`, which must be present.
pub fn required_string<'v>(object: &'v Map<String, Value>, key: &str) -> Result<&'v str, PluginError> {
    match object.get(key) {
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(PluginError::invalid_config(&pointer(key), "must be a string")),
        None => Err(PluginError::invalid_config(&pointer(key), "is required")),
    }
}

/// The top-level boolean member `key`; absent or null gives `default`.
pub fn optional_bool(object: &Map<String, Value>, key: &str, default: bool) -> Result<bool, PluginError> {
    optional_bool_in(object, "", key, default)
}

/// The boolean member `key` of an object found at `parent` (a JSON pointer); absent or null
/// gives `default`.
pub fn optional_bool_in(
    object: &Map<String, Value>,
    parent: &str,
    key: &str,
    default: bool,
) -> Result<bool, PluginError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(value)) => Ok(*value),
        Some(_) => Err(PluginError::invalid_config(
            &format!("{parent}{}", pointer(key)),
            "must be true or false",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_normalised_and_checked() {
        assert_eq!(normalize_domain("Good.Test."), Ok("good.test".to_owned()));
        assert_eq!(normalize_domain("bücher.example"), Ok("xn--bcher-kva.example".to_owned()));
        for bad in ["localhost", "com", "10.0.0.1", "a..b", "user@good.test", "*.good.test", ""] {
            assert!(normalize_domain(bad).is_err(), "{bad}");
        }
        let list = serde_json::json!(["good.test", "GOOD.test", "com"]);
        let error = allowed_domains(Some(&list)).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("/allowed_domains/2"));
        assert!(allowed_domains(None).is_err());
    }

    #[test]
    fn field_errors_name_the_field() {
        let object = serde_json::json!({"a/b": 1, "flag": "yes"});
        let object = object.as_object().unwrap();
        let error = reject_unknown_fields(object, &["flag"], "/mapping").unwrap_err();
        assert_eq!(error.field.as_deref(), Some("/mapping/a~1b"));
        let error = optional_bool_in(object, "/mapping", "flag", false).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("/mapping/flag"));
        assert_eq!(optional_bool(object, "absent", true).unwrap(), true);
        assert_eq!(required_string(object, "absent").unwrap_err().field.as_deref(), Some("/absent"));
    }
}
