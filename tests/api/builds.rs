//! What a function's build may contain: no crate that a function links holds the demo
//! organization's public secrets. `tools/check-build.py` checks the same on the bootstraps
//! that `sam build` makes.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The functions that template.yaml deploys (`template::every_function_is_a_crate_of_the_workspace_serving_its_handler`
/// checks the list against it).
pub(crate) const FUNCTIONS: [&str; 12] = [
    "get-key",
    "list-keys",
    "create-key",
    "update-key",
    "roll-key",
    "delete-key",
    "list-events",
    "verify-key",
    "revoke-leaked",
    "publish-events",
    "expiry-notices",
    "owner",
];

/// Text that only the demo's secrets contain: the bytes they are made of, and the admin's.
fn demo_markers() -> [String; 2] {
    [
        "apikeys-local-demo-".to_owned(),
        apikeys_demo::ADMIN_SECRET.to_owned(),
    ]
}

/// `cargo metadata --no-deps` of the workspace: its own packages with the dependencies they
/// declare, and the workspace's metadata (the local router of `make run`). Without `--no-deps`,
/// cargo resolves for every platform and wants crates no Linux build downloads (chrono's
/// `android_system_properties`), so the tests failed on a fresh machine's registry.
pub(crate) fn metadata() -> Value {
    let root = crate::repo_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(&root)
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// The workspace packages a package links: the local (path) crates among its normal
/// dependencies, transitively. Declared rather than resolved, so optional and
/// platform-specific ones count too: a stricter list than any one build's. A crate from a
/// registry cannot depend on a local one (the workspace patches none), so none is missed.
fn linked<'a>(packages: &'a [Value], root: &'a Value) -> Vec<&'a Value> {
    let by_dir = |dir: &str| {
        packages.iter().find(|p| {
            Path::new(p["manifest_path"].as_str().unwrap_or_default()).parent()
                == Some(Path::new(dir))
        })
    };
    let mut seen: Vec<&Value> = Vec::new();
    let mut todo = vec![root];
    while let Some(package) = todo.pop() {
        if seen.iter().any(|p| p["id"] == package["id"]) {
            continue;
        }
        seen.push(package);
        for dep in package["dependencies"].as_array().into_iter().flatten() {
            if !dep["kind"].is_null() {
                continue;
            }
            if let Some(dir) = dep["path"].as_str() {
                let name = package["name"].as_str().unwrap_or_default();
                todo.push(by_dir(dir).unwrap_or_else(|| panic!("{name}: no package at {dir}")));
            }
        }
    }
    seen
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_crate_a_function_links_holds_the_demo_secrets() {
    let meta = metadata();
    let packages = meta["packages"].as_array().expect("packages");
    // `linked` follows declared path dependencies: a [patch] could slip a local crate in
    // behind a registry one's name.
    let manifest = std::fs::read_to_string(crate::repo_root().join("Cargo.toml"))
        .expect("read the workspace's Cargo.toml");
    assert!(
        !manifest.contains("[patch"),
        "Cargo.toml patches a crate: follow the resolved graph in `linked`"
    );
    for function in FUNCTIONS {
        let root = packages
            .iter()
            .find(|p| p["name"] == function)
            .unwrap_or_else(|| panic!("no package {function}"));
        let local = linked(packages, root);
        let mut names = Vec::new();
        for package in local {
            let name = package["name"].as_str().unwrap_or_default();
            names.push(name.to_owned());
            assert_ne!(name, "apikeys-demo", "{function} depends on the demo crate");
            let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap_or_default());
            let mut files = Vec::new();
            rust_files(&manifest.with_file_name("src"), &mut files);
            assert!(!files.is_empty(), "{name}: no sources found");
            for file in files {
                let text = std::fs::read_to_string(&file).expect("read a source file");
                for marker in demo_markers() {
                    assert!(
                        !text.contains(&marker),
                        "{function} links {name}, whose {} holds a demo secret",
                        file.display()
                    );
                }
            }
        }
        names.sort();
        assert_eq!(names, ["apikeys", function], "{function}'s own crates");
    }
}
