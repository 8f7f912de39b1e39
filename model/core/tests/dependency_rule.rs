//! The dependency rule of the protocol core, checked on every test run: verdis-core depends on
//! no async runtime, no model checker and no networking crate, and its sources read no clock,
//! open no socket and spawn no thread. What the model checks must be what the server runs,
//! and only a pure core can be both.

use std::path::Path;

const ALLOWED_DEPENDENCIES: &[&str] = &["bytes", "serde"];
const FORBIDDEN_IN_SOURCES: &[&str] = &[
    "SystemTime::now",
    "Instant::now",
    "std::net",
    "std::thread",
    "tokio",
    "stateright",
    "thread_rng",
];

#[test]
fn the_core_depends_only_on_plain_data_crates() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .expect("read Cargo.toml");
    let mut in_deps = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if !in_deps || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name = line.split(['=', '.', ' ']).next().unwrap_or("");
        assert!(
            ALLOWED_DEPENDENCIES.contains(&name),
            "verdis-core must not depend on `{name}` (allowed: {ALLOWED_DEPENDENCIES:?})"
        );
    }
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let p = entry.expect("dir entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn the_core_reads_no_clock_and_opens_no_socket() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(!files.is_empty());
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read source");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for bad in FORBIDDEN_IN_SOURCES {
                assert!(
                    !code.contains(bad),
                    "{}:{}: the core must not use `{bad}`",
                    f.display(),
                    n + 1
                );
            }
        }
    }
}
