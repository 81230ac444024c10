//! Fingerprints the circuit's sources for caches of its synthesised constraint system: the
//! SHA-256 of every file under `src/` (path and contents, in sorted order) and of the workspace's
//! `Cargo.lock` (the gadget libraries' versions), exported as `VEIL_CIRCUIT_SOURCE_SHA256`. A
//! cache written by a build with another fingerprint is not trusted.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let mut paths = Vec::new();
    files(&manifest.join("src"), &mut paths);
    paths.sort();
    let lock = manifest.join("../Cargo.lock");
    let mut h = Sha256::new();
    h.update(b"veil/circuit-source/v1");
    for path in paths.iter().chain(std::iter::once(&lock)) {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        let name = match path.strip_prefix(&manifest) {
            Ok(relative) if path != &lock => relative,
            _ => Path::new("Cargo.lock"),
        };
        h.update((name.as_os_str().len() as u64).to_be_bytes());
        h.update(name.as_os_str().as_encoded_bytes());
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(&bytes);
    }
    let digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    println!("cargo:rustc-env=VEIL_CIRCUIT_SOURCE_SHA256={digest}");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed={}", lock.display());
}
