//! Plugins describe their connection config with a JSON Schema and their capabilities; the
//! admin API checks every config against the schema before the plugin sees it, and names each
//! field at fault. Black box, SQLite only (nothing here depends on the store), no IdP needed:
//! config checks are local.

mod common;

use common::*;
use serde_json::{json, Value};

const KNOWN_CAPABILITIES: [&str; 9] = [
    "metadata",
    "inspect_connection",
    "pkce",
    "nonce",
    "idp_initiated",
    "signed_requests",
    "encrypted_assertions",
    "remote_metadata",
    "replay_claim",
];

/// A config each bundled plugin accepts, as an administrator would send it.
fn good_config(protocol: &str) -> Value {
    match protocol {
        "oidc" => json!({
            "discovery_url": "https://idp.good.test/.well-known/openid-configuration",
            "client_id": "gatehouse",
            "client_secret": "a-client-secret",
            "allowed_domains": ["good.test"],
            "scopes": ["offline_access"],
        }),
        "oauth2" => json!({
            "preset": "facebook",
            "client_id": "1234567890",
            "client_secret": "a-client-secret",
            "allowed_domains": ["good.test"],
        }),
        "saml" => json!({
            "idp_entity_id": "https://idp.good.test/metadata",
            "sso_url": "https://idp.good.test/sso",
            "certificates": [common::saml::unrelated_certificate().cert_pem],
            "allowed_domains": ["good.test"],
            "sp_key": "generate",
        }),
        "cas" => json!({
            "server_url": "https://cas.good.test/cas",
            "allowed_domains": ["good.test"],
        }),
        other => panic!("no sample config for {other}"),
    }
}

async fn plugins(gh: &Gatehouse) -> Vec<Value> {
    let page = gh.admin_get("/api/v1/plugins").await;
    page.assert_status(200);
    page.json()["plugins"]
        .as_array()
        .unwrap_or_else(|| panic!("no plugins list: {}", page.describe()))
        .clone()
}

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors list: {problem}"))
        .iter()
        .map(|e| e["field"].as_str().expect("field").to_owned())
        .collect()
}

#[tokio::test]
async fn every_plugin_publishes_a_schema_that_admits_its_own_configs() {
    let gh = Gatehouse::start(Store::Sqlite).await;
    let listed = plugins(&gh).await;
    let protocols: Vec<&str> = listed.iter().filter_map(|p| p["protocol"].as_str()).collect();
    for expected in ["oidc", "oauth2", "saml", "cas"] {
        assert!(protocols.contains(&expected), "{expected} listed: {protocols:?}");
    }
    for plugin in &listed {
        let protocol = plugin["protocol"].as_str().expect("protocol");
        let schema = &plugin["config_schema"];
        assert_eq!(schema["$schema"], json!("https://json-schema.org/draft/2020-12/schema"), "{protocol}");
        assert_eq!(schema["type"], json!("object"), "{protocol}");
        assert_eq!(schema["additionalProperties"], json!(false), "{protocol}: unknown fields refused");
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(schema)
            .unwrap_or_else(|e| panic!("{protocol}'s schema compiles: {e}"));
        let config = good_config(protocol);
        let errors: Vec<String> = validator.iter_errors(&config).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{protocol}: its sample config fits its schema: {errors:?}");
        for pointer in plugin["secret_fields"].as_array().expect("secret_fields") {
            let name = pointer.as_str().expect("pointer").trim_start_matches('/');
            assert_eq!(
                schema["properties"][name]["writeOnly"],
                json!(true),
                "{protocol}: secret {name} is writeOnly in the schema"
            );
        }
        let capabilities = plugin["capabilities"].as_array().expect("capabilities");
        for capability in capabilities {
            let name = capability.as_str().expect("a name");
            assert!(KNOWN_CAPABILITIES.contains(&name), "{protocol}: unknown capability {name}");
        }
        println!("{protocol}: schema with {} properties, capabilities {capabilities:?}",
            schema["properties"].as_object().map_or(0, |p| p.len()));
    }
    let capabilities = |protocol: &str| -> Vec<String> {
        let plugin = listed.iter().find(|p| p["protocol"] == json!(protocol)).expect("listed");
        plugin["capabilities"].as_array().expect("list").iter().map(|c| c.to_string()).collect()
    };
    assert!(capabilities("saml").contains(&"\"metadata\"".to_owned()));
    assert!(capabilities("oidc").contains(&"\"nonce\"".to_owned()));
    assert!(!capabilities("oidc").contains(&"\"metadata\"".to_owned()));

    // The same configs go through the admin API.
    gh.create_tenant("acme", "Acme", "https://app.good.test/").await;
    for protocol in ["oidc", "oauth2", "saml", "cas"] {
        let page = gh
            .admin_put(
                &format!("/api/v1/tenants/acme/connections/{protocol}-corp"),
                &json!({ "protocol": protocol, "label": "Corp", "config": good_config(protocol) }),
            )
            .await;
        assert!(matches!(page.status.as_u16(), 200 | 201), "{protocol} accepted: {}", page.describe());
    }
    // Metadata is served for the plugin that declares it, and for no other.
    get(&client(), &gh.url("/acme/sso/saml-corp/metadata")).await.assert_status(200);
    get(&client(), &gh.url("/acme/sso/oidc-corp/metadata")).await.assert_status(404);
}

#[tokio::test]
async fn a_config_that_breaks_the_schema_is_refused_naming_every_field() {
    let gh = Gatehouse::start(Store::Sqlite).await;
    gh.create_tenant("acme", "Acme", "https://app.good.test/").await;
    let put = |id: &'static str, protocol: &'static str, config: Value| {
        let gh = &gh;
        async move {
            gh.admin_put(
                &format!("/api/v1/tenants/acme/connections/{id}"),
                &json!({ "protocol": protocol, "label": "Corp", "config": config }),
            )
            .await
        }
    };

    // Several faults at once, one of them a secret of the wrong type: all named, none echoed.
    let page = put(
        "corp",
        "oidc",
        json!({
            "discovery_url": 5,
            "client_id": "",
            "client_secret": {"value": "topsecret-value-7731"},
            "allowed_domains": [],
            "allow_subdomains": "yes",
            "bogus": true,
        }),
    )
    .await;
    let problem = page.assert_problem(422, None);
    assert_eq!(problem["type"], json!("urn:gatehouse:problem:invalid-field"));
    let named = fields(&problem);
    for field in [
        "/config/discovery_url",
        "/config/client_id",
        "/config/client_secret",
        "/config/allowed_domains",
        "/config/allow_subdomains",
        "/config/bogus",
    ] {
        assert!(named.contains(&field.to_owned()), "{field} named: {named:?}");
    }
    assert_eq!(problem["field"], json!(named[0]), "field repeats the first error");
    assert!(!page.body.contains("topsecret-value-7731"), "the secret is not echoed: {}", page.body);
    let bogus = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .find(|e| e["field"] == json!("/config/bogus"))
        .expect("bogus");
    assert_eq!(bogus["detail"], json!("unknown field"));

    // Missing members are named one by one.
    let problem = put("corp", "oidc", json!({})).await.assert_problem(422, None);
    let named = fields(&problem);
    for field in ["/config/discovery_url", "/config/client_id", "/config/allowed_domains"] {
        assert!(named.contains(&field.to_owned()), "{field} required: {named:?}");
    }

    // OAuth 2.0 without a preset needs its endpoints and mapping; with one it does not.
    let problem = put(
        "fb",
        "oauth2",
        json!({ "client_id": "1", "allowed_domains": ["good.test"] }),
    )
    .await
    .assert_problem(422, None);
    let named = fields(&problem);
    for field in ["/config/authorization_url", "/config/token_url", "/config/userinfo_url", "/config/mapping"] {
        assert!(named.contains(&field.to_owned()), "{field} required without preset: {named:?}");
    }
    let problem = put(
        "fb",
        "oauth2",
        json!({ "preset": "myspace", "client_id": "1", "allowed_domains": ["good.test"],
                "mapping": { "subject": "id", "extra": "/x" } }),
    )
    .await
    .assert_problem(422, None);
    let named = fields(&problem);
    for field in ["/config/preset", "/config/mapping/subject", "/config/mapping/extra"] {
        assert!(named.contains(&field.to_owned()), "{field} named: {named:?}");
    }

    // SAML: an unknown key request and an out-of-range skew.
    let mut config = good_config("saml");
    config["sp_key"] = json!("rotate");
    config["clock_skew_secs"] = json!(9999);
    let problem = put("idp", "saml", config).await.assert_problem(422, None);
    let named = fields(&problem);
    for field in ["/config/sp_key", "/config/clock_skew_secs"] {
        assert!(named.contains(&field.to_owned()), "{field} named: {named:?}");
    }

    // Nothing was stored by any refusal.
    let page = gh.admin_get("/api/v1/tenants/acme/connections/corp").await;
    page.assert_status(404);
    // The plugin's own checks still run after the schema: a well-shaped but wrong URL.
    let page = put(
        "corp",
        "oidc",
        json!({
            "discovery_url": "https://idp.good.test/not-discovery",
            "client_id": "gatehouse",
            "allowed_domains": ["good.test"],
        }),
    )
    .await;
    page.assert_problem(422, Some("/config/discovery_url"));
}

#[tokio::test]
async fn hostile_and_round_tripped_configs_are_handled_without_harm() {
    let gh = Gatehouse::start(Store::Sqlite).await;
    gh.create_tenant("acme", "Acme", "https://app.good.test/").await;
    let path = "/api/v1/tenants/acme/connections/corp";

    // A config nested deeper than events can be read back is refused before anything is
    // recorded, and the tenant stays readable.
    let mut deep = json!("leaf");
    for _ in 0..124 {
        deep = json!({ "x": deep });
    }
    let mut config = good_config("cas");
    config["deep"] = deep;
    let page = gh
        .admin_put(path, &json!({ "protocol": "cas", "label": "Corp", "config": config }))
        .await;
    let problem = page.assert_problem(422, Some("/config"));
    assert!(problem["detail"].as_str().unwrap_or_default().contains("nested"), "{problem}");
    gh.admin_get("/api/v1/tenants/acme").await.assert_status(200);

    // What GET shows can be sent back as is: `client_secret_set` keeps the stored secret.
    let put = gh
        .admin_put(path, &json!({ "protocol": "oidc", "label": "Corp", "config": good_config("oidc") }))
        .await;
    put.assert_status(200);
    let shown = gh.admin_get(path).await;
    shown.assert_status(200);
    let shown = shown.json();
    assert_eq!(shown["config"]["client_secret_set"], json!(true), "{shown:#}");
    assert!(!shown.to_string().contains("a-client-secret"), "{shown:#}");
    let again = gh
        .admin_put(path, &json!({ "protocol": "oidc", "label": "Corp", "config": shown["config"] }))
        .await;
    again.assert_status(200);
    assert_eq!(again.json()["config"]["client_secret_set"], json!(true), "{}", again.describe());

    // With the secret left out, a wrong field is named by the schema (not as a secret problem).
    let mut config = good_config("oidc");
    config.as_object_mut().expect("object").remove("client_secret");
    config["client_id"] = json!(12345);
    let problem = gh
        .admin_put(path, &json!({ "protocol": "oidc", "label": "Corp", "config": config }))
        .await
        .assert_problem(422, Some("/config/client_id"));
    assert_eq!(fields(&problem), ["/config/client_id"], "{problem}");

    // GET shows the plugin's setup notes too, next to the host's redirect URL.
    gh.admin_put(
        "/api/v1/tenants/acme/connections/cas",
        &json!({ "protocol": "cas", "label": "CAS", "config": good_config("cas") }),
    )
    .await
    .assert_status(200);
    let view = gh.admin_get("/api/v1/tenants/acme/connections/cas").await.json();
    for key in ["redirect_url", "service_url", "attributes"] {
        assert!(view["setup"][key].is_string(), "setup.{key}: {view:#}");
    }
    assert_eq!(
        view["setup"]["redirect_url"],
        json!(gh.callback_url("acme", "cas")),
        "the host's redirect URL: {view:#}"
    );
}
