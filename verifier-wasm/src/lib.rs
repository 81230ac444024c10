//! Veil's batch-proof verifier for web browsers: [`veil_verifier`]'s Groth16 check and its
//! recomputation of the public inputs from a batch's published data, behind a small C ABI that
//! hand-written JavaScript can call once this crate is built for `wasm32-unknown-unknown` (the
//! node's batch explorer embeds that build; see `sequencer/build.rs`).
//!
//! The ABI: [`veil_alloc`] / [`veil_free`] manage buffers in the module's memory; [`veil_verify`]
//! takes a verifying-key file and a batch as `GET /v1/batches/{n}` serves it (JSON), returns 1
//! (verified), 0 (checked and invalid) or -1 (could not be checked), and leaves a JSON
//! [`Report`] that [`veil_report_ptr`] / [`veil_report_len`] expose until the next call;
//! [`veil_vk_info`] reports a key file's shape and SHA-256 the same way. The checks themselves
//! are plain Rust ([`verify_batch_json`], [`vk_info`]) and are unit-tested on the host.

use std::cell::RefCell;

use ark_bn254::{Bn254, Fr};
use ark_groth16::{PreparedVerifyingKey, Proof, VerifyingKey};
use ark_serialize::CanonicalDeserialize;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use veil_circuits::batch::BatchPublicInputs;
use veil_circuits::field;
use veil_circuits::{StateSummary, TransferPublic};

/// Key-file magic (`veil_prover::keys::KEY_MAGIC`).
const KEY_MAGIC: &[u8; 8] = b"VEILKEY\0";
/// Key-file format version this verifier reads (`veil_prover::keys::KEY_FORMAT_VERSION`).
const KEY_FORMAT_VERSION: u16 = 2;
/// Key-file header: magic, version, kind, B, D, shape hash (`veil_prover::keys::HEADER_LEN`).
const HEADER_LEN: usize = 8 + 2 + 1 + 4 + 4 + 32;
/// A batch proof's public inputs.
const PUBLIC_INPUTS: usize = 3;
/// A compressed BN254 Groth16 proof.
const PROOF_LEN: usize = 128;

/// What a verifying-key file says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VkInfo {
    /// SHA-256 of the whole file, lowercase hex: the key's identity (`veil verify` prints it).
    pub sha256: String,
    /// Batch size `B` of the circuit.
    pub batch_size: u32,
    /// Tree depth `D` of the circuit.
    pub depth: u32,
}

/// The outcome of [`verify_batch_json`], serialised as JSON for the page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The proof verifies against public inputs recomputed from the published data, and every
    /// stated value agrees with its recomputation.
    pub verified: bool,
    /// Why the batch could not be checked (bad key, malformed batch): `verified` is false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The key's shape and identity, once it parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vk: Option<VkInfo>,
    /// The public inputs recomputed here: state roots from the published summaries (or taken as
    /// stated when no summaries are given) and `batch_hash` from the batch's transfers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_inputs: Option<BatchPublicInputs>,
    /// Whether the Groth16 check passed (absent when it was not reached).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof_valid: Option<bool>,
    /// Stated values that differ from their recomputation, one line each.
    pub mismatches: Vec<String>,
}

/// The parts of a served batch (`GET /v1/batches/{n}`) the check reads; other fields are
/// ignored.
#[derive(Debug, Deserialize)]
struct PublishedBatch {
    number: u64,
    public_data: Vec<TransferPublic>,
    public_inputs: BatchPublicInputs,
    #[serde(default)]
    old_state: Option<StateSummary>,
    #[serde(default)]
    new_state: Option<StateSummary>,
    proof: Option<String>,
}

/// Parses a verifying-key file (header and compressed arkworks key, every point checked).
pub fn parse_vk_file(bytes: &[u8]) -> Result<(VkInfo, VerifyingKey<Bn254>), String> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != KEY_MAGIC {
        return Err("not a Veil key file".into());
    }
    let version = u16::from_be_bytes([bytes[8], bytes[9]]);
    if version != KEY_FORMAT_VERSION {
        return Err(format!(
            "key file format version {version} is not supported"
        ));
    }
    if bytes[10] != 1 {
        return Err("not a verifying-key file".into());
    }
    let be32 = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let info = VkInfo {
        sha256: hex::encode(Sha256::digest(bytes)),
        batch_size: be32(11),
        depth: be32(15),
    };
    // alpha (G1), beta, gamma, delta (G2), then a u64 count and that many G1 points; checked
    // before decoding so a corrupt count cannot make arkworks reserve a huge vector.
    let body = &bytes[HEADER_LEN..];
    let expected = 32 + 3 * 64 + 8 + (PUBLIC_INPUTS + 1) * 32;
    if body.len() != expected || body[32 + 3 * 64..32 + 3 * 64 + 8] != [4, 0, 0, 0, 0, 0, 0, 0] {
        return Err(format!(
            "verifying key is {} bytes, expected {expected} for {PUBLIC_INPUTS} public inputs",
            body.len()
        ));
    }
    let vk = VerifyingKey::<Bn254>::deserialize_compressed(body)
        .map_err(|e| format!("verifying key does not decode: {e}"))?;
    Ok((info, vk))
}

/// The shape and identity of a verifying-key file.
pub fn vk_info(bytes: &[u8]) -> Result<VkInfo, String> {
    parse_vk_file(bytes).map(|(info, _)| info)
}

thread_local! {
    /// The last prepared key, by SHA-256: a page verifies many batches with one key.
    static PREPARED: RefCell<Option<(String, PreparedVerifyingKey<Bn254>)>> =
        const { RefCell::new(None) };
    /// The last call's JSON report.
    static REPORT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Verifies a served batch's proof with the key file `vk_file`: recomputes `batch_hash` from
/// the published transfers (batch size from the key), the state roots from the published
/// summaries, batch 0's old root from the genesis state, and checks the proof against those
/// recomputed inputs. Stated public inputs that disagree with the recomputation fail the batch.
pub fn verify_batch_json(vk_file: &[u8], batch_json: &[u8]) -> Report {
    let mut report = Report::default();
    if let Err(e) = check(vk_file, batch_json, &mut report) {
        report.verified = false;
        report.error = Some(e);
    }
    report
}

fn check(vk_file: &[u8], batch_json: &[u8], report: &mut Report) -> Result<(), String> {
    let (info, vk) = parse_vk_file(vk_file)?;
    report.vk = Some(info.clone());
    let batch: PublishedBatch =
        serde_json::from_slice(batch_json).map_err(|e| format!("batch JSON: {e}"))?;
    let proof_hex = batch
        .proof
        .as_deref()
        .ok_or("the batch has no proof yet (sealed, not proven)")?;
    let proof_bytes = hex::decode(proof_hex).map_err(|e| format!("proof hex: {e}"))?;
    if proof_bytes.len() != PROOF_LEN {
        return Err(format!(
            "proof is {} bytes, expected {PROOF_LEN}",
            proof_bytes.len()
        ));
    }
    let stated = batch.public_inputs;
    let mut mismatch = |what: &str, stated: &Fr, recomputed: &Fr| {
        if stated != recomputed {
            report.mismatches.push(format!(
                "{what}: stated {}, recomputed {}",
                field::to_hex(stated),
                field::to_hex(recomputed)
            ));
        }
    };
    let old_state_root = batch
        .old_state
        .map_or(stated.old_state_root, |s| s.state_root());
    let new_state_root = batch
        .new_state
        .map_or(stated.new_state_root, |s| s.state_root());
    mismatch("old_state_root", &stated.old_state_root, &old_state_root);
    mismatch("new_state_root", &stated.new_state_root, &new_state_root);
    if batch.number == 0 {
        let genesis = veil_verifier::genesis_state_root(info.depth as usize)
            .map_err(|e| format!("verifying key: {e}"))?;
        mismatch(
            "genesis state root (batch 0's old root)",
            &genesis,
            &old_state_root,
        );
    }
    let batch_hash = veil_verifier::batch_hash_from_published(
        batch.number,
        info.batch_size as usize,
        &batch.public_data,
    )
    .map_err(|e| e.to_string())?;
    mismatch("batch_hash", &stated.batch_hash, &batch_hash);
    let inputs = BatchPublicInputs {
        old_state_root,
        new_state_root,
        batch_hash,
    };
    report.public_inputs = Some(inputs);
    // A proof that does not decode (a point off the curve) is as invalid as a wrong one.
    let proof_valid = match Proof::<Bn254>::deserialize_compressed(proof_bytes.as_slice()) {
        Ok(proof) => PREPARED.with(|cell| {
            let mut cell = cell.borrow_mut();
            if cell.as_ref().map(|(sha, _)| sha) != Some(&info.sha256) {
                *cell = Some((info.sha256.clone(), veil_verifier::prepare(&vk)));
            }
            let (_, pvk) = cell.as_ref().expect("prepared above");
            veil_verifier::verify(pvk, &inputs, &proof).map_err(|e| e.to_string())
        })?,
        Err(_) => {
            report
                .mismatches
                .push("proof does not decode as a BN254 Groth16 proof".into());
            false
        }
    };
    report.proof_valid = Some(proof_valid);
    report.verified = proof_valid && report.mismatches.is_empty();
    Ok(())
}

fn store_report<T: Serialize>(value: &T) {
    let json = serde_json::to_vec(value).unwrap_or_else(|e| {
        format!("{{\"verified\":false,\"error\":\"report: {e}\"}}").into_bytes()
    });
    REPORT.with(|r| *r.borrow_mut() = json);
}

/// # Safety
/// `ptr` must be null with `len` 0, or point to `len` readable bytes that stay valid for the
/// returned lifetime.
unsafe fn slice<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: the caller guarantees `len` readable bytes at `ptr`.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

/// A buffer of `len` bytes in this module's memory for the caller to fill; give it back with
/// [`veil_free`]. Null for `len` 0.
#[no_mangle]
pub extern "C" fn veil_alloc(len: usize) -> *mut u8 {
    if len == 0 {
        return std::ptr::null_mut();
    }
    let mut buf = vec![0u8; len].into_boxed_slice();
    let ptr = buf.as_mut_ptr();
    std::mem::forget(buf);
    ptr
}

/// Frees a buffer from [`veil_alloc`].
///
/// # Safety
/// `ptr` and `len` must be exactly what one [`veil_alloc`] call returned and was given, freed
/// once.
#[no_mangle]
pub unsafe extern "C" fn veil_free(ptr: *mut u8, len: usize) {
    if !ptr.is_null() && len != 0 {
        // SAFETY: `ptr` came from a boxed slice of exactly `len` bytes leaked by `veil_alloc`.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
    }
}

/// Verifies a served batch (JSON) with a verifying-key file: 1 verified, 0 invalid (a wrong
/// proof or a stated value that is not what the data gives), -1 not checkable. The JSON
/// [`Report`] is at [`veil_report_ptr`] until the next call.
///
/// # Safety
/// Each pointer must address its length in readable bytes (or be null with length 0).
#[no_mangle]
pub unsafe extern "C" fn veil_verify(
    vk_ptr: *const u8,
    vk_len: usize,
    batch_ptr: *const u8,
    batch_len: usize,
) -> i32 {
    // SAFETY: forwarded from the caller's guarantee.
    let (vk, batch) = unsafe { (slice(vk_ptr, vk_len), slice(batch_ptr, batch_len)) };
    let report = verify_batch_json(vk, batch);
    store_report(&report);
    match (&report.error, report.verified) {
        (Some(_), _) => -1,
        (None, true) => 1,
        (None, false) => 0,
    }
}

/// A verifying-key file's [`VkInfo`] as JSON at [`veil_report_ptr`]: 1 when it parses, else -1
/// with `{"error": ...}`.
///
/// # Safety
/// `vk_ptr` must address `vk_len` readable bytes (or be null with length 0).
#[no_mangle]
pub unsafe extern "C" fn veil_vk_info(vk_ptr: *const u8, vk_len: usize) -> i32 {
    // SAFETY: forwarded from the caller's guarantee.
    match vk_info(unsafe { slice(vk_ptr, vk_len) }) {
        Ok(info) => {
            store_report(&info);
            1
        }
        Err(e) => {
            store_report(&serde_json::json!({ "error": e }));
            -1
        }
    }
}

/// Start of the last call's JSON report.
#[no_mangle]
pub extern "C" fn veil_report_ptr() -> *const u8 {
    REPORT.with(|r| r.borrow().as_ptr())
}

/// Length in bytes of the last call's JSON report.
#[no_mangle]
pub extern "C" fn veil_report_len() -> usize {
    REPORT.with(|r| r.borrow().len())
}

/// getrandom 0.2's source on wasm32-unknown-unknown: verification draws no randomness, so any
/// attempt is an error rather than a silent fallback.
#[cfg(target_arch = "wasm32")]
mod no_randomness {
    fn unavailable(_buf: &mut [u8]) -> Result<(), getrandom::Error> {
        Err(getrandom::Error::UNSUPPORTED)
    }
    getrandom::register_custom_getrandom!(unavailable);
}

#[cfg(test)]
mod tests;
