//! `veil export solidity` / `veil export solidity-calldata`: the Solidity Groth16 verifier of
//! Veil's proofs, checked on a real EVM.
//!
//! Always: the contract exported for the committed B2-D8 verifying key embeds the same points as
//! `veil export snarkjs`'s `verification_key.json` (which snarkjs itself verifies against, see
//! `export.rs`), G2 coordinates in the EVM's (c1, c0) order; the calldata JSON of a committed
//! proof is its points and public inputs in the ABI order; bad input is refused in one line and
//! writes nothing.
//!
//! With Node.js and the npm tools (`make snarkjs` installs solc-js and @ethereumjs/evm beside
//! snarkjs into `target/npm`; `.ci/run` does): `scripts/evm-verify.mjs` compiles the contract
//! with solc, deploys it on an in-process EVM (the BN254 precompiles 0x06-0x08) and calls
//! `verifyProof`: the committed proof is accepted (its gas is printed), and a changed or swapped
//! public input, a tampered proof (-A, a point off the curve, B's coordinates in the wrong order,
//! a coordinate + q) and an input + r are refused. The same harness fails when the "valid" proof
//! is not. Without the tools these checks are skipped with a notice, unless
//! `VEIL_REQUIRE_SNARKJS=1`. The npm directory is `VEIL_NPM_DIR`, else `target/npm`; node is
//! `VEIL_NODE`, else `node` on PATH.

mod export_support;

use export_support::{decimal, fixture, text, veil, workspace};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Node.js and the npm directory holding solc and @ethereumjs/evm, or `None` (with a notice)
/// when either is missing and `VEIL_REQUIRE_SNARKJS` is not `1`.
fn evm_tools() -> Option<(PathBuf, PathBuf)> {
    let npm_dir = std::env::var_os("VEIL_NPM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/npm"));
    let node = std::env::var_os("VEIL_NODE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("node"));
    let node_runs = Command::new(&node)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let missing: Vec<String> = ["solc", "@ethereumjs/evm", "@ethereumjs/util"]
        .iter()
        .filter(|p| {
            !npm_dir
                .join("node_modules")
                .join(p)
                .join("package.json")
                .exists()
        })
        .map(|p| p.to_string())
        .collect();
    if node_runs && missing.is_empty() {
        return Some((node, npm_dir));
    }
    let why = if node_runs {
        format!(
            "{} missing under {} (run `make snarkjs`)",
            missing.join(", "),
            npm_dir.display()
        )
    } else {
        format!("no Node.js ({} does not run)", node.display())
    };
    assert!(
        std::env::var("VEIL_REQUIRE_SNARKJS").as_deref() != Ok("1"),
        "VEIL_REQUIRE_SNARKJS=1 but {why}"
    );
    eprintln!("NOTICE: skipping the EVM checks of the Solidity verifier: {why}");
    None
}

/// Exports the contract for the committed key into `dir/VeilVerifier.sol`.
fn export_contract(dir: &Path) -> PathBuf {
    let sol = dir.join("VeilVerifier.sol");
    let out = veil(&[
        "export",
        "solidity",
        "--vk",
        &fixture("vk-B2-D8.bin"),
        sol.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stdout).starts_with("B2-D8: contract VeilVerifier"),
        "{out:?}"
    );
    sol
}

/// The calldata JSON of committed proof `n`, written to `dir/calldata-n.json`.
fn export_calldata(dir: &Path, n: usize) -> (PathBuf, Value) {
    let out = veil(&[
        "export",
        "solidity-calldata",
        "--proof",
        &fixture(&format!("proof-{n}.json")),
        "--vk",
        &fixture("vk-B2-D8.bin"),
    ]);
    assert!(out.status.success(), "{out:?}");
    let value: Value = serde_json::from_slice(&out.stdout).expect("calldata JSON");
    let path = dir.join(format!("calldata-{n}.json"));
    std::fs::write(&path, &out.stdout).unwrap();
    (path, value)
}

/// The value of `uint256 internal constant NAME = ...;` in the contract, as a decimal string.
fn constant(contract: &str, name: &str) -> String {
    let prefix = format!("uint256 internal constant {name} = ");
    let value = contract
        .lines()
        .find_map(|l| l.trim().strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no constant {name}"))
        .trim_end_matches(';');
    match value.strip_prefix("0x") {
        Some(hex) => decimal(hex),
        None => value.to_string(),
    }
}

#[test]
fn the_contract_embeds_the_same_key_as_the_snarkjs_export_in_the_evm_order() {
    let dir = tempfile::tempdir().unwrap();
    let sol = export_contract(dir.path());
    let contract = std::fs::read_to_string(&sol).unwrap();
    assert!(contract.starts_with("// SPDX-License-Identifier: "));
    assert!(contract.contains("contract VeilVerifier {"));
    assert!(
        contract.contains("B2-D8"),
        "the header names the key's shape"
    );

    let out = veil(&[
        "export",
        "snarkjs",
        "--vk",
        &fixture("vk-B2-D8.bin"),
        "--out-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let key = read_json(&dir.path().join("verification_key.json"));
    let s = |v: &Value| v.as_str().unwrap().to_string();
    // snarkjs: G1 [x, y, "1"], G2 [[x.c0, x.c1], [y.c0, y.c1], ["1", "0"]].
    assert_eq!(constant(&contract, "ALPHA_X"), s(&key["vk_alpha_1"][0]));
    assert_eq!(constant(&contract, "ALPHA_Y"), s(&key["vk_alpha_1"][1]));
    for (name, field) in [
        ("BETA", "vk_beta_2"),
        ("GAMMA", "vk_gamma_2"),
        ("DELTA", "vk_delta_2"),
    ] {
        let p = &key[field];
        assert_eq!(constant(&contract, &format!("{name}_X1")), s(&p[0][1]));
        assert_eq!(constant(&contract, &format!("{name}_X0")), s(&p[0][0]));
        assert_eq!(constant(&contract, &format!("{name}_Y1")), s(&p[1][1]));
        assert_eq!(constant(&contract, &format!("{name}_Y0")), s(&p[1][0]));
    }
    let ic = key["IC"].as_array().unwrap();
    assert_eq!(ic.len(), 4);
    for (i, p) in ic.iter().enumerate() {
        assert_eq!(constant(&contract, &format!("IC{i}_X")), s(&p[0]));
        assert_eq!(constant(&contract, &format!("IC{i}_Y")), s(&p[1]));
    }

    // The calldata of proof 1 is snarkjs's proof and public inputs, B in the EVM order.
    let out = veil(&[
        "export",
        "snarkjs",
        "--vk",
        &fixture("vk-B2-D8.bin"),
        "--proof",
        &fixture("proof-1.json"),
        "--out-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let proof = read_json(&dir.path().join("proof.json"));
    let public = read_json(&dir.path().join("public.json"));
    let (_, call) = export_calldata(dir.path(), 1);
    let d = |v: &Value| decimal(v.as_str().unwrap());
    assert_eq!(d(&call["a"][0]), s(&proof["pi_a"][0]));
    assert_eq!(d(&call["a"][1]), s(&proof["pi_a"][1]));
    assert_eq!(d(&call["b"][0][0]), s(&proof["pi_b"][0][1]));
    assert_eq!(d(&call["b"][0][1]), s(&proof["pi_b"][0][0]));
    assert_eq!(d(&call["b"][1][0]), s(&proof["pi_b"][1][1]));
    assert_eq!(d(&call["b"][1][1]), s(&proof["pi_b"][1][0]));
    assert_eq!(d(&call["c"][0]), s(&proof["pi_c"][0]));
    assert_eq!(d(&call["c"][1]), s(&proof["pi_c"][1]));
    for i in 0..3 {
        assert_eq!(d(&call["input"][i]), s(&public[i]));
    }
    let data = call["calldata"].as_str().unwrap();
    assert!(
        data.starts_with("0x11479fea") && data.len() == 10 + 11 * 64,
        "{data}"
    );
}

#[test]
fn export_solidity_refuses_bad_input_in_one_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sol = dir.path().join("out.sol");
    let one_line = |out: &Output, needle: &str| {
        assert!(!out.status.success(), "{out:?}");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: ") && err.contains(needle), "{err}");
        assert!(!sol.exists());
    };
    // Not a verifying key (a proof file).
    let out = veil(&[
        "export",
        "solidity",
        "--vk",
        &fixture("proof-1.json"),
        sol.to_str().unwrap(),
    ]);
    one_line(&out, "proof-1.json");
    // A missing key.
    let missing = dir.path().join("missing.bin");
    let out = veil(&[
        "export",
        "solidity",
        "--vk",
        missing.to_str().unwrap(),
        sol.to_str().unwrap(),
    ]);
    one_line(&out, "missing.bin");
    // A proof for another verifying key.
    let mut other = read_json(Path::new(&fixture("proof-1.json")));
    other["vk_sha256"] = Value::String("00".repeat(32));
    let other_path = dir.path().join("other-proof.json");
    std::fs::write(&other_path, other.to_string()).unwrap();
    let out = veil(&[
        "export",
        "solidity-calldata",
        "--proof",
        other_path.to_str().unwrap(),
        "--vk",
        &fixture("vk-B2-D8.bin"),
    ]);
    one_line(&out, "verifying key");
    assert!(out.stdout.is_empty(), "{out:?}");
}

/// Runs `scripts/evm-verify.mjs CONTRACT CALLDATA`.
fn evm_verify(node: &Path, npm_dir: &Path, sol: &Path, calldata: &Path) -> Output {
    let mut cmd = Command::new(node);
    cmd.arg(workspace().join("scripts/evm-verify.mjs"))
        .arg(sol)
        .arg(calldata)
        .env("VEIL_NPM_DIR", npm_dir);
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

#[test]
fn the_contract_accepts_committed_proofs_on_an_evm_and_refuses_altered_ones() {
    let dir = tempfile::tempdir().unwrap();
    let sol = export_contract(dir.path());
    let Some((node, npm_dir)) = evm_tools() else {
        return;
    };
    for n in [1, 3] {
        let (calldata, _) = export_calldata(dir.path(), n);
        let out = evm_verify(&node, &npm_dir, &sol, &calldata);
        let log = text(&out.stdout);
        assert!(out.status.success(), "proof {n}: {out:?}");
        for case in [
            "ok   the proof: true",
            "ok   public input 0 + 1: false",
            "ok   old and new state roots swapped: false",
            "ok   public input 2 + r (same value mod r): false",
            "ok   -A for A (a point on the curve): false",
            "ok   A.x + 1 (off the curve): false",
            "ok   C.y + q (same value mod q): false",
            "ok   B.x as (c0, c1): false",
            "all 8 calls gave the expected answer",
        ] {
            assert!(log.contains(case), "proof {n}: no {case:?} in\n{log}");
        }
        let gas: u64 = log
            .lines()
            .find_map(|l| l.strip_prefix("verifyProof gas: "))
            .and_then(|l| l.split(' ').next())
            .and_then(|g| g.parse().ok())
            .unwrap_or_else(|| panic!("no gas line in\n{log}"));
        // Four pairings alone cost 45,000 + 4 × 34,000 gas (EIP-1108).
        assert!((181_000..400_000).contains(&gas), "{gas} gas\n{log}");
        eprintln!("proof {n}: verifyProof on the EVM: {gas} gas");
    }

    // The harness itself fails when "the proof" is not valid: proof 1 with public input 0
    // changed in its calldata JSON.
    let (_, mut call) = export_calldata(dir.path(), 1);
    call["input"][0] = call["input"][1].clone();
    let words: Vec<String> = [
        &call["a"],
        &call["b"][0],
        &call["b"][1],
        &call["c"],
        &call["input"],
    ]
    .iter()
    .flat_map(|a| a.as_array().unwrap().clone())
    .map(|w| w.as_str().unwrap()[2..].to_string())
    .collect();
    call["calldata"] = Value::String(format!("0x11479fea{}", words.concat()));
    let bad = dir.path().join("bad-calldata.json");
    std::fs::write(&bad, call.to_string()).unwrap();
    let out = evm_verify(&node, &npm_dir, &sol, &bad);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stdout).contains("FAIL the proof: false (expected true)"),
        "{out:?}"
    );
}
