//! Building blocks for the JSON Schema a plugin publishes for its connection config
//! ([`crate::PluginInfo::config_schema`]).
//!
//! The host compiles the schema when it loads the plugin (a schema that does not compile makes
//! it refuse the plugin) and checks every config an administrator sends against it before
//! calling `validate_config`, answering with a problem document that names each offending
//! field. The schema describes the *shape* of a config (types, required members, lengths,
//! enumerations, no unknown members); rules the schema language cannot say well (a URL's
//! scheme, a certificate that parses, a domain in IDNA form) stay in `validate_config`.
//!
//! Schemas use JSON Schema draft 2020-12. They must be self-contained: the host resolves no
//! remote `$ref`.

use serde_json::{json, Value};

/// The `$schema` URI of the dialect the host understands.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// A connection config object: `properties` (member name → schema), the names that must be
/// present, and no other members (a misspelt setting is an error, never silently ignored).
pub fn config_object(title: &str, properties: Value, required: &[&str]) -> Value {
    json!({
        "$schema": DIALECT,
        "title": title,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// A nested object with the given members, `required` of them mandatory, nothing else.
pub fn object(description: &str, properties: Value, required: &[&str]) -> Value {
    json!({
        "description": description,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// A non-empty string of at most `max_length` characters.
pub fn string(description: &str, max_length: u64) -> Value {
    json!({
        "description": description,
        "type": "string",
        "minLength": 1,
        "maxLength": max_length,
    })
}

/// An absolute `http(s)` URL (the plugin still checks it in full).
pub fn url(description: &str) -> Value {
    json!({
        "description": description,
        "type": "string",
        "minLength": 1,
        "maxLength": 2048,
        "pattern": "^[hH][tT][tT][pP][sS]?://",
    })
}

/// A boolean with its default; null (like absence) means the default, as
/// [`crate::config::optional_bool`] reads it.
pub fn boolean(description: &str, default: bool) -> Value {
    json!({
        "description": description,
        "type": ["boolean", "null"],
        "default": default,
    })
}

/// One of `values`.
pub fn one_of_strings(description: &str, values: &[&str]) -> Value {
    json!({
        "description": description,
        "type": "string",
        "enum": values,
    })
}

/// `allowed_domains`, as read by [`crate::config::allowed_domains`].
pub fn allowed_domains() -> Value {
    json!({
        "description": "Email domains whose members may sign in through this connection.",
        "type": "array",
        "minItems": 1,
        "maxItems": 100,
        "items": {"type": "string", "minLength": 1, "maxLength": 253},
    })
}

/// `client_id`, as read by [`crate::config::client_id`].
pub fn client_id() -> Value {
    json!({
        "description": "Gatehouse's client id at the identity provider.",
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": "^[\\x20-\\x7E]+$",
    })
}

/// `client_secret`, as read by [`crate::config::client_secret`]: a secret (list it in
/// [`crate::PluginInfo::secret_fields`]), or null for a public client.
pub fn client_secret() -> Value {
    json!({
        "description": "Client secret; null or absent for a public client. Stored encrypted, never returned.",
        "type": ["string", "null"],
        "minLength": 1,
        "maxLength": 4096,
        "writeOnly": true,
    })
}

/// An optional list of short strings (scopes); null means none.
pub fn string_list(description: &str, max_items: u64) -> Value {
    json!({
        "description": description,
        "type": ["array", "null"],
        "maxItems": max_items,
        "items": {"type": "string", "minLength": 1, "maxLength": 255},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validator(schema: &Value) -> jsonschema::Validator {
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(schema)
            .expect("the schema compiles")
    }

    #[test]
    fn building_blocks_compile_and_say_what_the_config_readers_say() {
        let schema = config_object(
            "test",
            json!({
                "client_id": client_id(),
                "client_secret": client_secret(),
                "allowed_domains": allowed_domains(),
                "flag": boolean("a flag", false),
                "url": url("a URL"),
                "kind": one_of_strings("a kind", &["a", "b"]),
                "scopes": string_list("scopes", 3),
                "nested": object("nested", json!({"name": string("a name", 5)}), &["name"]),
            }),
            &["client_id", "allowed_domains"],
        );
        let validator = validator(&schema);
        let good = json!({
            "client_id": "gatehouse", "client_secret": null, "allowed_domains": ["good.test"],
            "flag": null, "url": "https://idp.test/x", "kind": "b", "scopes": ["a"],
            "nested": {"name": "n"},
        });
        assert!(validator.is_valid(&good));
        let bad = [
            json!({"allowed_domains": ["good.test"]}),
            json!({"client_id": "", "allowed_domains": ["good.test"]}),
            json!({"client_id": "tab\there", "allowed_domains": ["good.test"]}),
            json!({"client_id": "x", "allowed_domains": []}),
            json!({"client_id": "x", "allowed_domains": ["good.test"], "client_secret": ""}),
            json!({"client_id": "x", "allowed_domains": ["good.test"], "flag": "yes"}),
            json!({"client_id": "x", "allowed_domains": ["good.test"], "url": "ftp://x"}),
            json!({"client_id": "x", "allowed_domains": ["good.test"], "kind": "c"}),
            json!({"client_id": "x", "allowed_domains": ["good.test"], "scopes": ["a", "b", "c", "d"]}),
            json!({"client_id": "x", "allowed_domains": ["good.test"], "nested": {}}),
            json!({"client_id": "x", "allowed_domains": ["good.test"], "nested": {"name": "n", "x": 1}}),
            json!({"client_id": "x", "allowed_domains": ["good.test"], "unknown": 1}),
        ];
        for config in bad {
            assert!(!validator.is_valid(&config), "{config}");
        }
    }
}
