//! What a function's build may contain: no crate that a function links holds the demo
//! organization's public secrets. `tools/check-build.py` checks the same on the bootstraps
//! that `sam build` makes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The functions that template.yaml deploys (`template::every_function_is_a_crate_of_the_workspace_serving_its_handler`
/// checks the list against it).
pub(crate) const FUNCTIONS: [&str; 9] = [
    "get-key",
    "list-keys",
    "create-key",
    "update-key",
    "roll-key",
    "delete-key",
    "list-events",
    "verify-key",
    "revoke-leaked",
];

/// Text that only the demo's secrets contain: the bytes they are made of, and the admin's.
fn demo_markers() -> [String; 2] {
    [
        "apikeys-local-demo-".to_owned(),
        apikeys_demo::ADMIN_SECRET.to_owned(),
    ]
}

/// `cargo metadata` of the workspace: every package, the resolved dependency graph and the
/// workspace's metadata (the local router of `make run`).
pub(crate) fn metadata() -> Value {
    let root = crate::repo_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
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

/// The packages a package links: its normal (not dev, not build) dependencies, transitively.
fn linked(meta: &Value, root: &str) -> BTreeSet<String> {
    let nodes: BTreeMap<&str, Vec<&str>> = meta["resolve"]["nodes"]
        .as_array()
        .expect("resolve.nodes")
        .iter()
        .map(|node| {
            let deps = node["deps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|k| k["kind"].is_null())
                })
                .filter_map(|d| d["pkg"].as_str())
                .collect();
            (node["id"].as_str().unwrap_or_default(), deps)
        })
        .collect();
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_owned()];
    while let Some(id) = todo.pop() {
        if seen.insert(id.clone()) {
            todo.extend(
                nodes
                    .get(id.as_str())
                    .into_iter()
                    .flatten()
                    .map(|d| d.to_string()),
            );
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
    let id_of = |name: &str| {
        packages
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["id"].as_str())
            .unwrap_or_else(|| panic!("no package {name}"))
            .to_owned()
    };
    for function in FUNCTIONS {
        let linked = linked(&meta, &id_of(function));
        // Crates from a registry are not ours; the workspace's own ones have no source.
        let local = packages
            .iter()
            .filter(|p| p["source"].is_null())
            .filter(|p| p["id"].as_str().is_some_and(|id| linked.contains(id)));
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
