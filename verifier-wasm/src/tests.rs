//! Host tests of the checks behind the wasm ABI, on the committed B = 2, D = 8 proof fixtures
//! (`fixtures/data`): the browser runs the same code (`sequencer/tests/explorer.rs`).

use serde_json::{json, Value};

use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/data/");
    std::fs::read(format!("{path}{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn json_fixture(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

/// Fixture batch `n` in the shape `GET /v1/batches/{n}` serves (without state summaries).
fn served(n: u64) -> Value {
    let batch = json_fixture(&format!("batch-{n}.json"));
    let proof = json_fixture(&format!("proof-{n}.json"));
    json!({
        "number": batch["batch_number"],
        "status": "proven",
        "public_data": batch["transfers"],
        "public_inputs": proof["public_inputs"],
        "proof": proof["proof"],
    })
}

fn verify(batch: &Value) -> Report {
    verify_batch_json(&fixture("vk-B2-D8.bin"), batch.to_string().as_bytes())
}

#[test]
fn fixture_proofs_verify_and_the_key_identity_matches() {
    for n in 0..4 {
        let report = verify(&served(n));
        assert!(report.verified, "batch {n}: {report:?}");
        assert_eq!(report.proof_valid, Some(true));
        assert!(report.mismatches.is_empty());
        let vk = report.vk.unwrap();
        assert_eq!((vk.batch_size, vk.depth), (2, 8));
        let stated = json_fixture(&format!("proof-{n}.json"))["vk_sha256"].clone();
        assert_eq!(json!(vk.sha256), stated);
    }
}

#[test]
fn a_flipped_proof_byte_fails() {
    let mut batch = served(1);
    let mut proof = hex::decode(batch["proof"].as_str().unwrap()).unwrap();
    proof[40] ^= 1;
    batch["proof"] = json!(hex::encode(proof));
    let report = verify(&batch);
    assert!(!report.verified);
    assert!(report.error.is_none(), "{report:?}");
    assert!(!report.proof_valid.unwrap_or(false));
}

#[test]
fn altered_public_data_fails_even_with_a_matching_stated_hash() {
    // The stated batch_hash is never trusted: change a fee and the recomputed hash differs.
    let mut batch = served(2);
    let fee = batch["public_data"][0]["fee"].as_u64().unwrap();
    batch["public_data"][0]["fee"] = json!(fee + 1);
    let report = verify(&batch);
    assert!(!report.verified);
    assert_eq!(report.proof_valid, Some(false));
    assert!(report.mismatches[0].starts_with("batch_hash"), "{report:?}");
}

#[test]
fn a_stated_root_unlike_its_summary_fails() {
    let mut batch = served(1);
    // A summary whose hash is not the stated old root.
    batch["old_state"] = json!({
        "note_root": "0x01", "note_count": 4, "nullifier_root": "0x02", "nullifier_count": 5
    });
    let report = verify(&batch);
    assert!(!report.verified);
    assert!(
        report.mismatches[0].starts_with("old_state_root"),
        "{report:?}"
    );
}

#[test]
fn batch_zero_must_start_from_genesis() {
    let mut batch = served(0);
    batch["public_inputs"]["old_state_root"] = json!("0x05");
    let report = verify(&batch);
    assert!(!report.verified);
    assert!(
        report.mismatches.iter().any(|m| m.starts_with("genesis")),
        "{report:?}"
    );
}

#[test]
fn unusable_inputs_are_errors_not_verdicts() {
    let vk = fixture("vk-B2-D8.bin");
    let good = served(0).to_string();
    let mut truncated_vk = vk.clone();
    truncated_vk.pop();
    let mut proving_kind = vk.clone();
    proving_kind[10] = 0;
    let mut unproven = served(0);
    unproven["proof"] = Value::Null;
    let cases: [(&[u8], String); 5] = [
        (b"", good.clone()),
        (&truncated_vk, good.clone()),
        (&proving_kind, good.clone()),
        (&vk, "{\"number\": 1".into()),
        (&vk, unproven.to_string()),
    ];
    for (vk, batch) in cases {
        let report = verify_batch_json(vk, batch.as_bytes());
        assert!(!report.verified);
        assert!(report.error.is_some(), "{report:?}");
    }
}

#[test]
fn the_c_abi_returns_codes_and_json_reports() {
    let vk = fixture("vk-B2-D8.bin");
    let call = |batch: &Value| -> (i32, Value) {
        let text = batch.to_string();
        // SAFETY: both slices outlive the call; the report is copied before the next call.
        let code = unsafe { veil_verify(vk.as_ptr(), vk.len(), text.as_ptr(), text.len()) };
        let report = unsafe { std::slice::from_raw_parts(veil_report_ptr(), veil_report_len()) };
        (code, serde_json::from_slice(report).unwrap())
    };
    let (code, report) = call(&served(3));
    assert_eq!(code, 1);
    assert_eq!(report["verified"], json!(true));
    let mut bad = served(3);
    bad["public_inputs"]["new_state_root"] = json!("0x07");
    assert_eq!(call(&bad).0, 0);
    assert_eq!(call(&json!({})).0, -1);
    // SAFETY: the key outlives the call.
    assert_eq!(unsafe { veil_vk_info(vk.as_ptr(), vk.len()) }, 1);
    let buf = veil_alloc(16);
    assert!(!buf.is_null());
    // SAFETY: exactly what veil_alloc returned.
    unsafe { veil_free(buf, 16) };
    assert!(veil_alloc(0).is_null());
}
