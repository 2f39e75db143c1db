//! Says, in the build output, when the external test corpus is missing.
//!
//! Tests that need the corpus (Zeek traces and baselines, tshark facts, QUIC
//! and misc traces) find it through `TLSTAP_CORPUS`, else `../shared/corpus`
//! beside the repository (`tests/support/mod.rs`, `corpus_dir`), and pass
//! without running when it is absent. Cargo hides what a passing test prints
//! but shows a build script's warnings (also when the build is cached), so
//! this is where a contributor on a plain clone learns that those tests were
//! skipped. Nothing here affects the library or the binary.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=TLSTAP_CORPUS");
    println!("cargo:rerun-if-env-changed=PATH");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let corpus = match std::env::var_os("TLSTAP_CORPUS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => manifest.join("../shared/corpus"),
    };
    warn_without_tansu(&manifest);
    if corpus.is_dir() {
        // Watching a folder that exists is cheap; watching a missing one would
        // rebuild the crate on every run, so a corpus added later is noticed
        // only when TLSTAP_CORPUS is set or build.rs changes.
        println!("cargo:rerun-if-changed={}", corpus.display());
        return;
    }
    let tests = corpus_tests(&manifest.join("tests"));
    println!(
        "cargo:warning=no test corpus at {}: {tests} corpus tests in tests/ will pass without \
         running; set TLSTAP_CORPUS=DIR to run them (docs/testing.md)",
        corpus.display()
    );
}

/// Calls of `corpus_or_skip` in `tests/*.rs`: one per corpus test.
fn corpus_tests(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|text| text.matches("corpus_or_skip(").count())
        .sum()
}

/// The Kafka tests (`tests/kafka.rs`) need the tansu broker; say when they
/// will pass without running.
fn warn_without_tansu(manifest: &Path) {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    dirs.push(home.join(".cargo/bin"));
    if dirs.iter().any(|dir| dir.join("tansu").is_file()) {
        return;
    }
    let tests = std::fs::read_to_string(manifest.join("tests/kafka.rs"))
        .map(|text| text.matches("tansu_or_skip(").count())
        .unwrap_or(0);
    println!(
        "cargo:warning=tansu is not installed: {tests} Kafka tests in tests/kafka.rs will pass \
         without running; scripts/kafka-broker.sh installs it (docs/appliance.md, \"Several sensors\")"
    );
}
