//! `veil export r1cs` / `veil export wtns` / `veil export snarkjs` against the circom ecosystem's
//! own tools. `snarkjs groth16 verify` accepts a committed Veil proof exported to snarkjs's JSON
//! and refuses it for swapped public inputs. snarkjs
//! 0.7.6's `wtns check` accepts the exported circuit and a committed batch's witness (B = 2,
//! D = 8) and refuses the witness with one wire changed; where the rapidsnark peer kit is present
//! (`../shared/peers/rapidsnark`, or `VEIL_RAPIDSNARK_DIR`), rapidsnark proves the same pair and
//! snarkjs verifies its proof for the batch's own public inputs. Bad input is refused in one
//! line and writes nothing.
//!
//! snarkjs is looked up as `VEIL_SNARKJS`, else `target/npm/node_modules/.bin/snarkjs` (`make
//! snarkjs` installs it there; `.ci/run` does). Without it the snarkjs checks are skipped with a
//! notice, unless `VEIL_REQUIRE_SNARKJS=1`.

mod export_support;

use export_support::{decimal, fixture, text, veil, workspace};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn snarkjs() -> Option<PathBuf> {
    let path = std::env::var_os("VEIL_SNARKJS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/npm/node_modules/.bin/snarkjs"));
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("VEIL_REQUIRE_SNARKJS").as_deref() != Ok("1"),
        "VEIL_REQUIRE_SNARKJS=1 but no snarkjs at {} (run `make snarkjs`)",
        path.display()
    );
    eprintln!(
        "NOTICE: skipping the snarkjs checks: no snarkjs at {} (run `make snarkjs`)",
        path.display()
    );
    None
}

fn rapidsnark() -> Option<PathBuf> {
    let dir = std::env::var_os("VEIL_RAPIDSNARK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/peers/rapidsnark"));
    (dir.join("prover").exists() && dir.join("zkey").exists()).then_some(dir)
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// Exports the committed B2-D8 batch 1 and its circuit into `dir`.
fn export(dir: &Path) -> (PathBuf, PathBuf) {
    let r1cs = dir.join("batch.r1cs");
    let wtns = dir.join("batch-1.wtns");
    let out = veil(&[
        "export",
        "r1cs",
        "-b",
        "2",
        "-d",
        "8",
        r1cs.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stdout).starts_with("B2-D8: ") && text(&out.stdout).contains("3 public inputs"),
        "{out:?}"
    );
    let out = veil(&[
        "export",
        "wtns",
        "--batch",
        &fixture("batch-1.json"),
        wtns.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&wtns).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "a witness is private");
    }
    (r1cs, wtns)
}

#[test]
fn snarkjs_checks_the_exported_circuit_and_witness_and_rapidsnark_proves_them() {
    let dir = tempfile::tempdir().unwrap();
    let (r1cs, wtns) = export(dir.path());
    let Some(snarkjs) = snarkjs() else {
        return;
    };
    let check = |wtns: &Path| {
        run(Command::new(&snarkjs)
            .args(["wtns", "check"])
            .arg(&r1cs)
            .arg(wtns))
    };
    let out = check(&wtns);
    assert!(out.status.success(), "{out:?}");
    let log = text(&out.stdout) + &text(&out.stderr);
    assert!(log.contains("WITNESS IS CORRECT"), "{log}");
    assert!(log.contains("Public Inputs:  3"), "{log}");

    // One wire changed (the last, a low byte, so it stays a field element): refused.
    let mut bytes = std::fs::read(&wtns).unwrap();
    let at = bytes.len() - 32;
    bytes[at] ^= 1;
    let bad = dir.path().join("bad.wtns");
    std::fs::write(&bad, &bytes).unwrap();
    let out = check(&bad);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        (text(&out.stdout) + &text(&out.stderr)).contains("WITNESS IS NOT CORRECT"),
        "{out:?}"
    );

    let Some(peer) = rapidsnark() else {
        eprintln!("NOTICE: no rapidsnark peer kit: skipping the rapidsnark proof");
        return;
    };
    let zkey = dir.path().join("batch.zkey");
    let out = run(Command::new(peer.join("zkey"))
        .arg(&r1cs)
        .arg("16") // 2^16 > B2-D8's 47,026 constraints and 4 input rows
        .arg(&zkey));
    assert!(out.status.success(), "{out:?}");
    let (proof, public) = (
        dir.path().join("proof.json"),
        dir.path().join("public.json"),
    );
    let out = run(Command::new(peer.join("prover"))
        .arg(&zkey)
        .arg(&wtns)
        .arg(&proof)
        .arg(&public));
    assert!(out.status.success(), "{out:?}");
    let vk = dir.path().join("vk.json");
    let out = run(Command::new(&snarkjs)
        .args(["zkey", "export", "verificationkey"])
        .arg(&zkey)
        .arg(&vk));
    assert!(out.status.success(), "{out:?}");
    let out = run(Command::new(&snarkjs)
        .args(["groth16", "verify"])
        .arg(&vk)
        .arg(&public)
        .arg(&proof));
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).contains("OK"), "{out:?}");

    // rapidsnark's public inputs are the batch's own (as its committed proof file states them),
    // in Veil's order.
    let public: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(&public).unwrap()).unwrap();
    assert_eq!(public, committed_public_inputs());
}

/// The committed proof file's public inputs, in decimal, in Veil's order.
fn committed_public_inputs() -> Vec<String> {
    let proof_file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("proof-1.json")).unwrap()).unwrap();
    ["old_state_root", "new_state_root", "batch_hash"]
        .iter()
        .map(|k| decimal(proof_file["public_inputs"][k].as_str().unwrap()))
        .collect()
}

#[test]
fn snarkjs_verifies_a_committed_veil_proof_exported_to_its_json() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_str().unwrap();
    let out = veil(&[
        "export",
        "snarkjs",
        "--vk",
        &fixture("vk-B2-D8.bin"),
        "--proof",
        &fixture("proof-1.json"),
        "--out-dir",
        out_dir,
    ]);
    assert!(out.status.success(), "{out:?}");
    let vk = dir.path().join("verification_key.json");
    let (proof, public) = (
        dir.path().join("proof.json"),
        dir.path().join("public.json"),
    );
    let inputs: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(&public).unwrap()).unwrap();
    assert_eq!(inputs, committed_public_inputs());
    let key: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&vk).unwrap()).unwrap();
    assert_eq!(key["nPublic"], 3);
    assert_eq!(key["IC"].as_array().unwrap().len(), 4);

    // A proof for another verifying key: refused in one line, nothing written.
    let mut other: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("proof-1.json")).unwrap()).unwrap();
    other["vk_sha256"] = serde_json::Value::String("00".repeat(32));
    let other_path = dir.path().join("other-proof.json");
    std::fs::write(&other_path, other.to_string()).unwrap();
    let elsewhere = dir.path().join("elsewhere");
    let out = veil(&[
        "export",
        "snarkjs",
        "--vk",
        &fixture("vk-B2-D8.bin"),
        "--proof",
        other_path.to_str().unwrap(),
        "--out-dir",
        elsewhere.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "{out:?}");
    assert_eq!(text(&out.stderr).lines().count(), 1, "{out:?}");
    assert!(text(&out.stderr).contains("verifying key"), "{out:?}");
    assert!(!elsewhere.exists());

    let Some(snarkjs) = snarkjs() else {
        return;
    };
    let verify = |public: &Path| {
        run(Command::new(&snarkjs)
            .args(["groth16", "verify"])
            .arg(&vk)
            .arg(public)
            .arg(&proof))
    };
    let out = verify(&public);
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).contains("OK"), "{out:?}");
    // The same proof for other public inputs (the roots swapped): snarkjs refuses it.
    let mut swapped = inputs.clone();
    swapped.swap(0, 1);
    let bad = dir.path().join("swapped-public.json");
    std::fs::write(&bad, serde_json::to_string(&swapped).unwrap()).unwrap();
    let out = verify(&bad);
    assert!(
        !out.status.success() && (text(&out.stdout) + &text(&out.stderr)).contains("Invalid proof"),
        "{out:?}"
    );
}

#[test]
fn export_refuses_bad_input_in_one_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("x.wtns");
    let one_line = |out: &Output, needle: &str| {
        assert!(!out.status.success(), "{out:?}");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: ") && err.contains(needle), "{err}");
        assert!(!out_path.exists());
    };
    // A batch file without its witness (the public part only).
    let mut batch: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("batch-1.json")).unwrap()).unwrap();
    let witness = batch.as_object_mut().unwrap().remove("witness").unwrap();
    let public_only = dir.path().join("public.json");
    std::fs::write(&public_only, batch.to_string()).unwrap();
    let out = veil(&[
        "export",
        "wtns",
        "--batch",
        public_only.to_str().unwrap(),
        out_path.to_str().unwrap(),
    ]);
    one_line(&out, "witness");
    // A witness for other public inputs: refused before anything is written.
    batch["witness"] = witness;
    let old = batch["old_state_root"].clone();
    batch["old_state_root"] = batch["new_state_root"].clone();
    batch["new_state_root"] = old;
    let swapped = dir.path().join("swapped.json");
    std::fs::write(&swapped, batch.to_string()).unwrap();
    let out = veil(&[
        "export",
        "wtns",
        "--batch",
        swapped.to_str().unwrap(),
        out_path.to_str().unwrap(),
    ]);
    one_line(&out, "swapped.json");
    // A shape that is not one.
    let out = veil(&["export", "r1cs", "-b", "3", "-d", "8", "x.r1cs"]);
    assert!(!out.status.success());
    assert_eq!(text(&out.stderr).lines().count(), 1, "{out:?}");
}
