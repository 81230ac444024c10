//! Builds the batch explorer's in-browser verifier (`verifier-wasm/`, Veil's own verifier for
//! `wasm32-unknown-unknown`) so the node can embed it (`src/api/explorer.rs`).
//!
//! A nested `cargo build --release --target wasm32-unknown-unknown -p veil-verifier-wasm`
//! (offline first, see [`build_wasm`]) into `<target dir>/wasm` (its own directory, so its lock
//! and artifacts never meet the outer build's), with the outer build's compiler flags cleared
//! (`.cargo/config.toml`'s `target-cpu=native` means nothing on wasm32) and a size-optimised
//! profile (`opt-level = "s"`, no debug info). It writes `$OUT_DIR/veil_verifier.wasm`, empty
//! when the wasm could not be built, and `$OUT_DIR/veil_verifier_wasm.txt`, the reason shown by
//! the page in that case.
//!
//! Without the `wasm32-unknown-unknown` target installed (a newcomer's `make run`), nothing is
//! built and the explorer says in-browser verification is unavailable. A failing nested build is
//! a warning, or an error with `VEIL_REQUIRE_WASM=1` (CI); `VEIL_EXPLORER_WASM=0` skips it.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-unknown-unknown";
const WASM_CRATE: &str = "veil-verifier-wasm";
const WASM_FILE: &str = "veil_verifier_wasm.wasm";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .expect("sequencer/ is in the workspace")
        .to_owned();
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    for path in [
        "verifier-wasm/src",
        "verifier-wasm/Cargo.toml",
        "verifier/src",
        "verifier/Cargo.toml",
        "circuits/src",
        "circuits/build.rs",
        "circuits/Cargo.toml",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(path).display());
    }
    println!("cargo:rerun-if-env-changed=VEIL_EXPLORER_WASM");
    println!("cargo:rerun-if-env-changed=VEIL_REQUIRE_WASM");
    let required = env::var("VEIL_REQUIRE_WASM").is_ok_and(|v| v == "1");

    let (wasm, reason) = match build_wasm(&workspace) {
        Ok(wasm) => (wasm, String::new()),
        Err(reason) => {
            if required {
                panic!("VEIL_REQUIRE_WASM=1: {reason}");
            }
            println!("cargo:warning=batch explorer: {reason}");
            (Vec::new(), reason)
        }
    };
    write_if_changed(&out_dir.join("veil_verifier.wasm"), &wasm);
    write_if_changed(&out_dir.join("veil_verifier_wasm.txt"), reason.as_bytes());
}

/// The built verifier's bytes, or why there are none (one line, shown by the page).
fn build_wasm(workspace: &Path) -> Result<Vec<u8>, String> {
    if env::var("VEIL_EXPLORER_WASM").is_ok_and(|v| v == "0") {
        return Err("this node was built with VEIL_EXPLORER_WASM=0".into());
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    if !target_installed(&rustc) {
        return Err(format!(
            "this node was built without the {WASM_TARGET} target \
             (`rustup target add {WASM_TARGET}`, then rebuild)"
        ));
    }
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("wasm");
    // Offline first: the verifier's dependencies are a subset of the node's own (getrandom's
    // `custom` is a feature, not a crate), so the outer build has already downloaded them and
    // the nested build needs no network. Should one be missing anyway (a lockfile change that
    // adds a wasm-only crate, a partly filled cache), retry once with the network allowed;
    // `CARGO_NET_OFFLINE` from an offline outer build still applies to that retry.
    let output = match nested_build(workspace, &target_dir, true)? {
        out if !out.status.success() && mentions_offline(&out.stderr) => {
            println!(
                "cargo:warning=batch explorer: the wasm verifier's crates are not all cached; \
                 retrying its build with the network allowed"
            );
            nested_build(workspace, &target_dir, false)?
        }
        out => out,
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "building the wasm verifier failed ({}):\n{}",
            output.status,
            tail.join("\n")
        ));
    }
    let wasm = target_dir.join(WASM_TARGET).join("release").join(WASM_FILE);
    fs::read(&wasm).map_err(|e| format!("{}: {e}", wasm.display()))
}

/// Runs the nested `cargo build` of the verifier for [`WASM_TARGET`] into `target_dir`.
fn nested_build(
    workspace: &Path,
    target_dir: &Path,
    offline: bool,
) -> Result<std::process::Output, String> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--release",
            "--target",
            WASM_TARGET,
            "-p",
            WASM_CRATE,
        ])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    if offline {
        cmd.arg("--offline");
    }
    // What the outer build passes down that would change or break this one: its compiler flags
    // (set, but empty, so `.cargo/config.toml`'s `build.rustflags` are not used either), clippy's
    // wrapper, its target selection. The jobserver (`CARGO_MAKEFLAGS`) is kept, so the nested
    // build shares the outer build's job slots instead of adding its own.
    for var in [
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_ENCODED_RUSTFLAGS", "")
        .env("CARGO_INCREMENTAL", "0")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "s")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
        .env("CARGO_TERM_COLOR", "never");
    cmd.output()
        .map_err(|e| format!("could not run cargo for the wasm verifier: {e}"))
}

/// Whether a failed offline build failed for want of the network (a crate not in the cache).
fn mentions_offline(stderr: &[u8]) -> bool {
    let stderr = String::from_utf8_lossy(stderr);
    stderr.contains("--offline") || stderr.contains("offline mode")
}

/// Whether the toolchain has the standard library for [`WASM_TARGET`].
fn target_installed(rustc: &str) -> bool {
    let Ok(out) = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output()
    else {
        return false;
    };
    if !out.status.success() {
        return false;
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
    })
}

/// Writes `bytes` unless the file already holds them (keeps its mtime, so nothing downstream
/// rebuilds for nothing).
fn write_if_changed(path: &Path, bytes: &[u8]) {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return;
    }
    fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
