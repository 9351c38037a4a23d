//! Secret fields of connection configs: sealed before they enter an event, opened only to be
//! handed to the plugin, and never shown through the API.

use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::crypto::{CryptoError, SealedSecret, SecretKey};

const SEALED: &str = "$sealed";

fn context(tenant: &str, connection: &str, pointer: &str) -> String {
    format!("connection-secret/{tenant}/{connection}{pointer}")
}

/// Replaces each secret field (JSON pointer) holding a string with its sealed form.
pub fn seal(key: &SecretKey, config: &mut Value, pointers: &[String], tenant: &str, conn: &str) {
    for pointer in pointers {
        if let Some(slot) = config.pointer_mut(pointer) {
            if let Value::String(plain) = slot {
                let plain = Zeroizing::new(std::mem::take(plain));
                let sealed = key.seal(&plain, &context(tenant, conn, pointer));
                *slot = json!({ SEALED: sealed });
            }
        }
    }
}

/// Replaces each sealed secret field with its plain text, for a plugin call.
pub fn open(
    key: &SecretKey,
    config: &mut Value,
    pointers: &[String],
    tenant: &str,
    conn: &str,
) -> Result<(), CryptoError> {
    for pointer in pointers {
        if let Some(slot) = config.pointer_mut(pointer) {
            if let Some(sealed) = slot.get(SEALED) {
                let sealed: SealedSecret =
                    serde_json::from_value(sealed.clone()).map_err(|_| CryptoError::Open)?;
                let plain = key.open(&sealed, &context(tenant, conn, pointer))?;
                *slot = Value::String(plain.to_string());
            }
        }
    }
    Ok(())
}

/// Opens one stored secret field value (`{"$sealed": ...}`) of `tenant`'s connection `conn`
/// at `pointer`; `None` when it is not a sealed value or does not open with `key`.
pub fn open_value(
    key: &SecretKey,
    value: &Value,
    tenant: &str,
    conn: &str,
    pointer: &str,
) -> Option<Zeroizing<String>> {
    let sealed: SealedSecret = serde_json::from_value(value.get(SEALED)?.clone()).ok()?;
    key.open(&sealed, &context(tenant, conn, pointer)).ok()
}

#[cfg(test)]
/// True when the field at `pointer` holds a sealed secret.
pub fn is_sealed(config: &Value, pointer: &str) -> bool {
    config.pointer(pointer).and_then(|v| v.get(SEALED)).is_some()
}

/// Removes secret fields for display, adding `<field>_set: true|false` beside each.
pub fn redact(config: &Value, pointers: &[String]) -> Value {
    let mut shown = config.clone();
    for pointer in pointers {
        let present = shown.pointer(pointer).is_some_and(|v| !v.is_null());
        let (parent, field) = match pointer.rfind('/') {
            Some(cut) => (&pointer[..cut], &pointer[cut + 1..]),
            None => continue,
        };
        let parent = if parent.is_empty() {
            Some(&mut shown)
        } else {
            shown.pointer_mut(parent)
        };
        if let Some(Value::Object(map)) = parent {
            map.remove(field);
            map.insert(format!("{field}_set"), Value::Bool(present));
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_and_never_show() {
        let key = SecretKey::generate();
        let pointers = vec!["/client_secret".to_owned()];
        let mut config = json!({"client_id": "abc", "client_secret": "s3cret"});
        seal(&key, &mut config, &pointers, "acme", "okta");
        assert!(!config.to_string().contains("s3cret"));
        assert!(is_sealed(&config, "/client_secret"));
        let shown = redact(&config, &pointers);
        assert_eq!(shown, json!({"client_id": "abc", "client_secret_set": true}));
        let mut opened = config.clone();
        open(&key, &mut opened, &pointers, "acme", "okta").unwrap();
        assert_eq!(opened["client_secret"], "s3cret");
        let mut elsewhere = config;
        assert!(open(&key, &mut elsewhere, &pointers, "other", "okta").is_err());
    }
}
