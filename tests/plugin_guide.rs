//! Follows docs/writing-a-plugin.md: extracts the example plugin's `Cargo.toml` and
//! `src/lib.rs` from the guide's ```` ```toml file=Cargo.toml ```` and
//! ```` ```rust file=src/lib.rs ```` blocks, builds it outside the workspace (the SDK path
//! dependency rewritten to this checkout's `plugins/sdk`), and checks the library with
//! `gatehouse plugins check`, as the guide tells its reader to.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::cas::{cas_config, CasServer};
use common::*;
use serde_json::json;

/// Fenced blocks whose info string carries `file=NAME`, as (NAME, contents).
fn file_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in markdown.lines() {
        match current.as_mut() {
            None => {
                if let Some(info) = line.strip_prefix("```") {
                    if let Some(name) = info
                        .split_whitespace()
                        .find_map(|word| word.strip_prefix("file="))
                    {
                        current = Some((name.to_owned(), String::new()));
                    }
                }
            }
            Some((_, text)) => {
                if line.trim_end() == "```" {
                    blocks.push(current.take().expect("inside a block"));
                } else {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
    }
    assert!(current.is_none(), "unterminated file= block in the guide");
    blocks
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

fn build(crate_dir: &Path, target_dir: &Path, offline: bool) -> Output {
    let mut command = Command::new(cargo());
    command.arg("build").current_dir(crate_dir).env("CARGO_TARGET_DIR", target_dir);
    if offline {
        command.arg("--offline");
    }
    command.output().expect("cargo runs")
}

#[test]
fn the_guide_plugin_builds_and_passes_plugins_check() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned();
    let guide = std::fs::read_to_string(repo.join("docs/writing-a-plugin.md")).expect("guide");
    let blocks: Vec<(String, String)> =
        file_blocks(&guide).into_iter().filter(|(name, _)| !name.starts_with("cas/")).collect();
    let names: Vec<&str> = blocks.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["Cargo.toml", "src/lib.rs"], "the guide's file= blocks");

    let tmp = tempfile::tempdir().expect("temp dir");
    let crate_dir = tmp.path().join("my-plugin");
    let sdk = repo.join("plugins/sdk");
    let sdk = sdk.to_str().expect("UTF-8 path");
    for (name, text) in &blocks {
        let text = if name == "Cargo.toml" {
            let relative = r#"gatehouse-plugin-sdk = { path = "../../plugins/sdk" }"#;
            assert!(text.contains(relative), "the guide's Cargo.toml uses {relative}");
            assert!(text.contains("crate-type = [\"cdylib\"]"), "a cdylib");
            assert!(text.lines().any(|l| l.trim() == "[workspace]"), "its own workspace");
            text.replace(relative, &format!("gatehouse-plugin-sdk = {{ path = {sdk:?} }}"))
        } else {
            text.clone()
        };
        let path = crate_dir.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
    }

    // A separate target dir, kept between runs, so only the plugin itself is rebuilt.
    let target_dir: PathBuf = repo.join("target/plugin-guide");
    let mut output = build(&crate_dir, &target_dir, true);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        eprintln!("offline build failed, retrying online:\n{stderr}");
        output = build(&crate_dir, &target_dir, false);
    }
    assert!(
        output.status.success(),
        "the guide's plugin does not build:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("warning:"), "the guide's plugin builds with warnings:\n{stderr}");

    let library = target_dir.join("debug").join(format!(
        "{}my_plugin{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(library.is_file(), "{} was not built", library.display());

    let output = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["plugins", "check"])
        .arg(&library)
        .env_remove("GATEHOUSE_PLUGIN_DIR")
        .output()
        .expect("gatehouse runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "plugins check failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.starts_with("ok: whoami "), "plugins check printed {stdout:?}");
}

/// Follows the guide's last section: copies `plugins/cas/src` out of the workspace, gives it the
/// guide's `Cargo.toml` and its own protocol id, builds it on its own, checks it, installs it as
/// the only library of a plugin directory, configures a tenant connection with it, and signs in
/// against a real CAS server (django-cas-server).
#[tokio::test]
async fn the_guide_cas_example_builds_installs_and_signs_in() {
    let repo = repo_root();
    let guide = std::fs::read_to_string(repo.join("docs/writing-a-plugin.md")).expect("guide");
    let manifest = file_blocks(&guide)
        .into_iter()
        .find(|(name, _)| name == "cas/Cargo.toml")
        .map(|(_, text)| text)
        .expect("the guide's cas/Cargo.toml block");
    assert!(guide.contains("cp -r plugins/cas/src examples/campus-cas/"), "the guide copies the source");
    let rename = r#"sed -i 's/"cas"/"campus_cas"/' src/lib.rs src/tests.rs"#;
    assert!(guide.contains(rename), "the guide renames the protocol id with {rename}");
    let rename_display = r#"sed -i 's/"CAS 3.0"/"Campus CAS"/' src/lib.rs"#;
    assert!(guide.contains(rename_display), "the guide renames the display name with {rename_display}");

    let tmp = tempfile::tempdir().expect("temp dir");
    let crate_dir = tmp.path().join("campus-cas");
    std::fs::create_dir_all(crate_dir.join("src")).expect("mkdir");
    for entry in std::fs::read_dir(repo.join("plugins/cas/src")).expect("plugins/cas/src") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, crate_dir.join("src").join(path.file_name().expect("name"))).expect("copy");
    }
    let relative = r#"gatehouse-plugin-sdk = { path = "../../plugins/sdk" }"#;
    assert!(manifest.contains(relative), "the guide's manifest uses {relative}");
    let sdk = repo.join("plugins/sdk");
    let manifest = manifest.replace(
        relative,
        &format!("gatehouse-plugin-sdk = {{ path = {:?} }}", sdk.to_str().expect("UTF-8 path")),
    );
    std::fs::write(crate_dir.join("Cargo.toml"), manifest).expect("write manifest");
    // The guide's sed lines, done here: the id appears twice in lib.rs and once in tests.rs.
    let lib = crate_dir.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).expect("lib.rs");
    assert_eq!(source.matches("\"cas\"").count(), 2, "PROTOCOL and export_plugin! name the id");
    assert_eq!(source.matches("\"CAS 3.0\"").count(), 1, "the display name");
    let source = source.replace("\"cas\"", "\"campus_cas\"").replace("\"CAS 3.0\"", "\"Campus CAS\"");
    std::fs::write(&lib, source).expect("write lib.rs");
    let tests = crate_dir.join("src/tests.rs");
    let source = std::fs::read_to_string(&tests).expect("tests.rs");
    std::fs::write(&tests, source.replace("\"cas\"", "\"campus_cas\"")).expect("write tests.rs");

    let target_dir = repo.join("target/plugin-guide");
    let mut output = build(&crate_dir, &target_dir, true);
    if !output.status.success() {
        eprintln!("offline build failed, retrying online:\n{}", String::from_utf8_lossy(&output.stderr));
        output = build(&crate_dir, &target_dir, false);
    }
    assert!(
        output.status.success(),
        "the CAS example does not build on its own:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // `cargo test` in the copy, as the guide says: its own unit tests pass under the new id.
    let output = Command::new(cargo())
        .args(["test", "--offline"])
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "the CAS example's unit tests fail after the guide's rename:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let library = target_dir.join("debug").join(format!(
        "{}campus_cas{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(library.is_file(), "{} was not built", library.display());

    let plugin_dir = tmp.path().join("plugins");
    std::fs::create_dir_all(&plugin_dir).expect("mkdir plugins");
    let installed = plugin_dir.join(library.file_name().expect("name"));
    std::fs::copy(&library, &installed).expect("install");
    let output = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["plugins", "check"])
        .arg(&installed)
        .env("GATEHOUSE_PLUGIN_DIR", &plugin_dir)
        .output()
        .expect("gatehouse runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "plugins check failed: {stdout}");
    assert_eq!(stdout.trim(), "ok: campus_cas 0.1.0", "plugins check printed {stdout:?}");

    let cas = CasServer::shared().await;
    let gh = Gatehouse::start_with(
        Store::Sqlite,
        Options {
            env: vec![("GATEHOUSE_PLUGIN_DIR".into(), plugin_dir.display().to_string())],
            ..Options::default()
        },
    )
    .await;
    let plugins = gh.admin_get("/api/v1/plugins").await;
    plugins.assert_status(200);
    let listed: Vec<String> = plugins.json()["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .filter_map(|p| p["protocol"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(listed, ["campus_cas"], "only the installed plugin: {}", plugins.describe());

    let slug = unique("uni-");
    let app_url = format!("https://app.{slug}.test/home");
    gh.create_tenant(&slug, "Example University", &app_url).await;
    let page = gh
        .admin_put(
            &format!("/api/v1/tenants/{slug}/connections/cas"),
            &json!({ "protocol": "campus_cas", "label": "University CAS", "config": cas_config(cas) }),
        )
        .await;
    page.assert_status(200);
    let tenant = Tenant {
        slug: slug.clone(),
        app_url,
        connection_id: "cas".into(),
        label: "University CAS".into(),
        client_id: String::new(),
        client_secret: None,
    };

    let browser = browser();
    let start = get(&browser, &gh.url(&format!("/{slug}?login=sso"))).await;
    let login = start.assert_redirect();
    assert!(login.starts_with(&cas.login_url()), "sent to CAS: {}", start.describe());
    let callback = cas.sign_in(&browser, &gh, &login, "alice", "alice-password").await;
    let page = call_callback(&browser, &callback).await;
    assert_login_succeeded(&page, &tenant);
    let session = gh.assert_session(&browser).await;
    assert_eq!(session["email"], json!("alice@good.test"), "{session:#}");
    let events = gh
        .audit_until(&slug, &[], "login.succeeded", |events| {
            events.iter().any(|e| e["type"] == json!("login.succeeded"))
        })
        .await;
    let succeeded = events.iter().find(|e| e["type"] == json!("login.succeeded")).expect("found");
    assert_eq!(succeeded["protocol"], json!("campus_cas"), "{succeeded:#}");
}
