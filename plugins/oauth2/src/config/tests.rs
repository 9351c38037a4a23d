use gatehouse_plugin_sdk::{reason, PluginError, Protocol, ValidateConfigRequest, ValidatedConfig};
use serde_json::{json, Value};

use gatehouse_plugin_sdk::config::normalize_domain;
use crate::OAuth2;

fn good() -> Value {
    json!({
        "authorization_url": "https://idp.example/oauth/authorize",
        "token_url": "https://idp.example/oauth/token",
        "userinfo_url": "https://api.idp.example/me?fields=id,email",
        "client_id": "gatehouse",
        "client_secret": "s3cret",
        "mapping": { "subject": "/id", "email": "/email" },
        "allowed_domains": ["Example.COM."],
    })
}

fn validate(config: Value) -> Result<ValidatedConfig, PluginError> {
    OAuth2::new().validate_config(ValidateConfigRequest { config })
}

fn refused_field(config: Value) -> String {
    let error = validate(config).expect_err("config should be refused");
    assert_eq!(error.code, reason::INVALID_CONFIG);
    assert!(!error.detail.contains("s3cret"), "{}", error.detail);
    error
        .field
        .expect("a config error names its field")
}

fn with(field: &str, value: Value) -> Value {
    let mut config = good();
    config[field] = value;
    config
}

fn with_mapping(member: &str, value: Value) -> Value {
    let mut config = good();
    config["mapping"][member] = value;
    config
}

#[test]
fn good_config_is_normalised_with_defaults() {
    let validated = validate(good()).expect("valid");
    assert_eq!(
        validated.config,
        json!({
            "authorization_url": "https://idp.example/oauth/authorize",
            "token_url": "https://idp.example/oauth/token",
            "userinfo_url": "https://api.idp.example/me?fields=id,email",
            "client_id": "gatehouse",
            "client_secret": "s3cret",
            "scopes": [],
            "pkce": true,
            "token_auth": "basic",
            "mapping": { "subject": "/id", "email": "/email", "email_verified_default": false },
            "allowed_domains": ["example.com"],
            "allow_subdomains": false,
            "require_verified_email": true,
        })
    );
    assert_eq!(
        validated.setup["client_authentication"],
        "client_secret_basic"
    );
    assert_eq!(validated.setup["pkce"], "S256");
    assert!(!validated.setup.contains_key("scopes"));
    // Nothing can mark an email verified, yet verified emails are required.
    assert_eq!(validated.warnings.len(), 1, "{:?}", validated.warnings);
    assert!(validated.warnings[0].contains("every login will be refused"));
}

#[test]
fn normalised_config_validates_to_itself() {
    for config in [
        good(),
        json!({ "preset": "facebook", "client_id": "1", "client_secret": "s3cret",
                "allowed_domains": ["good.test"] }),
        json!({ "preset": "github", "client_id": "Iv1.x", "allowed_domains": ["good.test"],
                "mapping": { "email_verified": "/verified" } }),
    ] {
        let once = validate(config).expect("valid").config;
        let twice = validate(once.clone())
            .expect("valid again")
            .config;
        assert_eq!(once, twice);
    }
}

#[test]
fn facebook_preset_is_expanded() {
    let validated = validate(json!({
        "preset": "facebook",
        "client_id": "1234",
        "client_secret": "s3cret",
        "allowed_domains": ["good.test"],
    }))
    .expect("valid");
    assert_eq!(
        validated.config,
        json!({
            "preset": "facebook",
            "authorization_url": "https://www.facebook.com/v19.0/dialog/oauth",
            "token_url": "https://graph.facebook.com/v19.0/oauth/access_token",
            "userinfo_url": "https://graph.facebook.com/me?fields=id,name,email",
            "client_id": "1234",
            "client_secret": "s3cret",
            "scopes": ["email", "public_profile"],
            "pkce": true,
            "token_auth": "post",
            "mapping": {
                "subject": "/id",
                "email": "/email",
                "name": "/name",
                "email_verified_default": true,
            },
            "allowed_domains": ["good.test"],
            "allow_subdomains": false,
            "require_verified_email": true,
        })
    );
    assert_eq!(validated.setup["scopes"], "email public_profile");
    assert_eq!(
        validated.setup["client_authentication"],
        "client_secret_post"
    );
    assert!(validated.warnings.is_empty(), "{:?}", validated.warnings);
}

#[test]
fn github_preset_is_expanded_and_overridable() {
    let validated = validate(json!({
        "preset": "github",
        "client_id": "Iv1.abc",
        "client_secret": "s3cret",
        "scopes": ["read:user"],
        "mapping": { "email_verified": "/email_verified" },
        "allowed_domains": ["good.test"],
    }))
    .expect("valid");
    let config = &validated.config;
    assert_eq!(
        config["authorization_url"],
        "https://github.com/login/oauth/authorize"
    );
    assert_eq!(
        config["token_url"],
        "https://github.com/login/oauth/access_token"
    );
    assert_eq!(config["userinfo_url"], "https://api.github.com/user");
    assert_eq!(config["token_auth"], "basic");
    // Given fields win; the mapping merges member by member.
    assert_eq!(config["scopes"], json!(["read:user"]));
    assert_eq!(
        config["mapping"],
        json!({
            "subject": "/id",
            "email": "/email",
            "name": "/name",
            "email_verified": "/email_verified",
            "email_verified_default": false,
        })
    );

    let defaults = validate(json!({
        "preset": "github", "client_id": "Iv1.abc", "allowed_domains": ["good.test"],
    }))
    .expect("valid");
    assert_eq!(
        defaults.config["scopes"],
        json!(["read:user", "user:email"])
    );
    assert_eq!(
        defaults.config["mapping"]["email_verified_default"],
        json!(false)
    );
    assert!(defaults
        .config
        .get("client_secret")
        .is_none());
    assert_eq!(
        defaults.setup["client_authentication"],
        "none (public client)"
    );
}

#[test]
fn public_client_without_pkce_is_accepted_with_a_warning() {
    let mut config = with("client_secret", Value::Null);
    config["pkce"] = json!(false);
    config["mapping"]["email_verified_default"] = json!(true);
    let validated = validate(config).expect("valid");
    assert!(validated
        .config
        .get("client_secret")
        .is_none());
    assert_eq!(validated.setup["pkce"], "off");
    assert_eq!(validated.warnings.len(), 1, "{:?}", validated.warnings);
    assert!(validated.warnings[0].contains("PKCE"));
}

#[test]
fn bad_fields_are_named() {
    let cases: Vec<(Value, &str)> = vec![
        (json!("not an object"), ""),
        (
            with("discovery_url", json!("https://x.test")),
            "/discovery_url",
        ),
        (with("preset", json!("myspace")), "/preset"),
        (with("preset", json!(1)), "/preset"),
        (
            with("authorization_url", json!("ftp://idp.example/a")),
            "/authorization_url",
        ),
        (
            with("authorization_url", json!("/relative")),
            "/authorization_url",
        ),
        (
            with("authorization_url", json!("https://idp.example/a#f")),
            "/authorization_url",
        ),
        (
            with("authorization_url", json!("https://idp.example/a?state=x")),
            "/authorization_url",
        ),
        (
            with("token_url", json!("https://user:pw@idp.example/t")),
            "/token_url",
        ),
        (
            with("token_url", json!(" https://idp.example/t")),
            "/token_url",
        ),
        (with("userinfo_url", json!(42)), "/userinfo_url"),
        (with("client_id", json!("")), "/client_id"),
        (with("client_id", json!("tab\there")), "/client_id"),
        (with("client_secret", json!("")), "/client_secret"),
        (with("client_secret", json!(7)), "/client_secret"),
        (with("scopes", json!("email")), "/scopes"),
        (with("scopes", json!(["email", "two words"])), "/scopes/1"),
        (with("pkce", json!("yes")), "/pkce"),
        (with("token_auth", json!("jwt")), "/token_auth"),
        (with("mapping", json!(["/id"])), "/mapping"),
        (with_mapping("subject", json!("id")), "/mapping/subject"),
        (with_mapping("subject", json!("")), "/mapping/subject"),
        (with_mapping("subject", json!(null)), "/mapping/subject"),
        (with_mapping("email", json!("/a~2b")), "/mapping/email"),
        (with_mapping("name", json!(5)), "/mapping/name"),
        (
            with_mapping("email_verified", json!(true)),
            "/mapping/email_verified",
        ),
        (
            with_mapping("email_verified_default", json!("true")),
            "/mapping/email_verified_default",
        ),
        (
            with_mapping("picture", json!("/picture")),
            "/mapping/picture",
        ),
        (with("allowed_domains", json!([])), "/allowed_domains"),
        (
            with("allowed_domains", json!("good.test")),
            "/allowed_domains",
        ),
        (
            with("allowed_domains", json!(["good.test", "*.bad.test"])),
            "/allowed_domains/1",
        ),
        (
            with("allowed_domains", json!(["com"])),
            "/allowed_domains/0",
        ),
        (with("allow_subdomains", json!(1)), "/allow_subdomains"),
        (
            with("require_verified_email", json!("no")),
            "/require_verified_email",
        ),
    ];
    for (config, field) in cases {
        assert_eq!(refused_field(config.clone()), field, "config: {config}");
    }

    let mut missing = good();
    missing
        .as_object_mut()
        .expect("object")
        .remove("mapping");
    assert_eq!(refused_field(missing), "/mapping");
    for field in [
        "authorization_url",
        "token_url",
        "userinfo_url",
        "client_id",
        "allowed_domains",
    ] {
        let mut missing = good();
        missing
            .as_object_mut()
            .expect("object")
            .remove(field);
        assert_eq!(refused_field(missing), format!("/{field}"));
    }
    let mut no_subject = good();
    no_subject["mapping"] = json!({ "email": "/email" });
    assert_eq!(refused_field(no_subject), "/mapping/subject");
}

#[test]
fn escaped_pointers_and_queries_are_kept() {
    let mut config = good();
    config["mapping"] = json!({ "subject": "/data/0/a~1b", "email": "/emails/0/value" });
    config["authorization_url"] = json!("https://idp.example/authorize?prompt=login");
    let validated = validate(config).expect("valid");
    assert_eq!(validated.config["mapping"]["subject"], "/data/0/a~1b");
    assert_eq!(
        validated.config["authorization_url"],
        "https://idp.example/authorize?prompt=login"
    );
}

#[test]
fn domains_are_normalised() {
    assert_eq!(normalize_domain("Good.Test."), Ok("good.test".to_owned()));
    assert_eq!(
        normalize_domain("bücher.example"),
        Ok("xn--bcher-kva.example".to_owned())
    );
    assert!(normalize_domain("localhost").is_err());
    assert!(normalize_domain("10.0.0.1").is_err());
    assert!(normalize_domain("a..b").is_err());
    assert!(normalize_domain("user@good.test").is_err());
    let validated = validate(with(
        "allowed_domains",
        json!(["Good.Test", "good.test.", "other.test"]),
    ))
    .expect("valid");
    assert_eq!(
        validated.config["allowed_domains"],
        json!(["good.test", "other.test"])
    );
}
