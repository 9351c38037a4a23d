use gatehouse_plugin_sdk::{reason, PluginError, Protocol, ValidateConfigRequest};
use serde_json::{json, Value};

use gatehouse_plugin_sdk::config::normalize_domain;
use crate::Oidc;

fn good() -> Value {
    json!({
        "discovery_url": "https://idp.example/.well-known/openid-configuration",
        "client_id": "gatehouse",
        "client_secret": "s3cret",
        "allowed_domains": ["Example.COM."],
    })
}

fn validate(config: Value) -> Result<crate::ValidatedConfig, PluginError> {
    Oidc::new().validate_config(ValidateConfigRequest { config })
}

fn refused_field(config: Value) -> String {
    let error = validate(config).expect_err("config should be refused");
    assert_eq!(error.code, reason::INVALID_CONFIG);
    error
        .field
        .expect("a config error names its field")
}

fn with(field: &str, value: Value) -> Value {
    let mut config = good();
    config[field] = value;
    config
}

#[test]
fn good_config_is_normalised_with_defaults() {
    let validated = validate(good()).expect("valid");
    assert_eq!(
        validated.config,
        json!({
            "discovery_url": "https://idp.example/.well-known/openid-configuration",
            "client_id": "gatehouse",
            "client_secret": "s3cret",
            "allowed_domains": ["example.com"],
            "allow_subdomains": false,
            "require_verified_email": true,
            "id_token_signing_algs": ["RS256", "ES256", "PS256", "EdDSA"],
            "scopes": [],
        })
    );
    assert_eq!(validated.setup["scopes"], "openid profile email");
}

#[test]
fn public_client_and_extra_scopes() {
    let mut config = good();
    config["client_secret"] = Value::Null;
    config["scopes"] = json!(["groups", "email", "offline_access", "groups"]);
    config["allow_subdomains"] = json!(true);
    config["id_token_signing_algs"] = json!(["ES256"]);
    let validated = validate(config).expect("valid");
    assert!(validated
        .config
        .get("client_secret")
        .is_none());
    assert_eq!(
        validated.config["scopes"],
        json!(["groups", "offline_access"])
    );
    assert_eq!(validated.config["allow_subdomains"], json!(true));
    assert_eq!(validated.config["id_token_signing_algs"], json!(["ES256"]));
    assert_eq!(
        validated.setup["scopes"],
        "openid profile email groups offline_access"
    );
}

#[test]
fn idna_domain_is_converted_to_ascii() {
    let validated = validate(with(
        "allowed_domains",
        json!(["Bücher.Example", "xn--bcher-kva.example"]),
    ))
    .expect("valid");
    assert_eq!(
        validated.config["allowed_domains"],
        json!(["xn--bcher-kva.example"])
    );
    assert_eq!(
        normalize_domain("ÉCOLE.fr.").as_deref(),
        Ok("xn--cole-9oa.fr")
    );
}

#[test]
fn hs256_and_none_are_refused() {
    let field = refused_field(with("id_token_signing_algs", json!(["RS256", "HS256"])));
    assert_eq!(field, "/id_token_signing_algs/1");
    let field = refused_field(with("id_token_signing_algs", json!(["none"])));
    assert_eq!(field, "/id_token_signing_algs/0");
    let field = refused_field(with("id_token_signing_algs", json!(["RS1"])));
    assert_eq!(field, "/id_token_signing_algs/0");
    let field = refused_field(with("id_token_signing_algs", json!([])));
    assert_eq!(field, "/id_token_signing_algs");
}

#[test]
fn unknown_field_is_refused() {
    assert_eq!(
        refused_field(with("client_sercet", json!("x"))),
        "/client_sercet"
    );
    assert_eq!(refused_field(with("a/b", json!(1))), "/a~1b");
}

#[test]
fn bad_discovery_urls_are_refused() {
    for url in [
        "idp.example/.well-known/openid-configuration",
        "ftp://idp.example/.well-known/openid-configuration",
        "https://user:pw@idp.example/.well-known/openid-configuration",
        "https://idp.example/.well-known/openid-configuration#frag",
        "https://idp.example/.well-known/openid-configuration?x=1",
        "https://idp.example/somewhere-else",
        " https://idp.example/.well-known/openid-configuration",
    ] {
        assert_eq!(
            refused_field(with("discovery_url", json!(url))),
            "/discovery_url",
            "{url}"
        );
    }
    let validated = validate(with(
        "discovery_url",
        json!("http://idp.internal:8080/realms/a/.well-known/openid-configuration"),
    ));
    assert!(validated.is_ok(), "http and a path are allowed");
}

#[test]
fn bad_client_ids_are_refused() {
    assert_eq!(refused_field(with("client_id", json!(""))), "/client_id");
    assert_eq!(
        refused_field(with("client_id", json!("x".repeat(256)))),
        "/client_id"
    );
    assert_eq!(refused_field(with("client_id", json!(12))), "/client_id");
    let mut config = good();
    config
        .as_object_mut()
        .expect("object")
        .remove("client_id");
    assert_eq!(refused_field(config), "/client_id");
    assert!(validate(with("client_id", json!("x".repeat(255)))).is_ok());
}

#[test]
fn bad_domains_are_refused() {
    assert_eq!(
        refused_field(with("allowed_domains", json!([]))),
        "/allowed_domains"
    );
    assert_eq!(
        refused_field(with("allowed_domains", json!("example.com"))),
        "/allowed_domains"
    );
    for (bad, index) in [
        (json!(["example.com", "user@example.com"]), 1),
        (json!(["*.example.com"]), 0),
        (json!(["example.com/path"]), 0),
        (json!(["exa mple.com"]), 0),
        (json!(["exa_mple.com"]), 0),
        (json!([""]), 0),
        (json!(["a..b"]), 0),
        (json!([7]), 0),
    ] {
        let field = refused_field(with("allowed_domains", bad.clone()));
        assert_eq!(field, format!("/allowed_domains/{index}"), "{bad}");
    }
}

#[test]
fn other_bad_fields_are_named() {
    assert_eq!(
        refused_field(with("client_secret", json!(""))),
        "/client_secret"
    );
    assert_eq!(
        refused_field(with("client_secret", json!(5))),
        "/client_secret"
    );
    assert_eq!(
        refused_field(with("allow_subdomains", json!("yes"))),
        "/allow_subdomains"
    );
    assert_eq!(
        refused_field(with("require_verified_email", json!(1))),
        "/require_verified_email"
    );
    assert_eq!(refused_field(with("scopes", json!(["a b"]))), "/scopes/0");
    assert_eq!(refused_field(with("scopes", json!("groups"))), "/scopes");
    assert_eq!(refused_field(json!([1])), "");
}

#[test]
fn secret_is_not_in_debug_output() {
    let config = super::Config::parse(&good()).expect("valid");
    assert!(!format!("{config:?}").contains("s3cret"));
}
