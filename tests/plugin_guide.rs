//! Follows docs/writing-a-plugin.md: extracts the example plugin's `Cargo.toml` and
//! `src/lib.rs` from the guide's ```` ```toml file=Cargo.toml ```` and
//! ```` ```rust file=src/lib.rs ```` blocks, builds it outside the workspace (the SDK path
//! dependency rewritten to this checkout's `plugins/sdk`), and checks the library with
//! `gatehouse plugins check`, as the guide tells its reader to.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
    let blocks = file_blocks(&guide);
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
