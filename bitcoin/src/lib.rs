//! Veil on Bitcoin (`veil-bitcoin`): anchoring of proven batches (DESIGN §11, `docs/data-on-bitcoin.md`): the `OP_RETURN`
//! payloads ([`payload`]: version 1 for one batch, version 2 for a range of batches), the
//! single-transaction version 1 anchor ([`tx`]), the Taproot envelopes that carry a range's data
//! ([`envelope`]) and the commit / reveal / anchor transactions that publish them ([`package`]),
//! the operator's secp256k1 key ([`operator`]) and an async Bitcoin Core JSON-RPC client
//! ([`rpc`]), the bridge's pay-to-contract peg-in addresses ([`bridge`], issue 15), and a plain
//! user's key-path P2TR payment ([`spend`]).
//!
//! # Payload, version 1
//!
//! The first output of the anchor for batch `n` is `OP_RETURN OP_PUSHDATA1 77 <payload>` (an
//! 80-byte script) with
//!
//! ```text
//! offset len  field
//!      0   4  magic "VEIL" (0x5645494c)
//!      4   1  version, 1
//!      5   8  n, the batch number, big-endian u64
//!     13  32  new_state_root, 32-byte big-endian canonical BN254 Fr
//!     45  32  proof_commitment = SHA-256(proof || batch_hash)
//! ```
//!
//! where the hashed message is exactly 160 bytes:
//!
//! - `proof`: the 128-byte arkworks *compressed* Groth16 proof as the node stores and publishes
//!   it (`veil_prover::proof::proof_to_bytes`, the hex `proof` of a proof file): `A` (G1, 32
//!   bytes) `|| B` (G2, 64 bytes) `|| C` (G1, 32 bytes), each in `CanonicalSerialize` compressed
//!   form;
//! - `batch_hash`: the batch's third public input as a 32-byte big-endian canonical field
//!   element (`veil_circuits::field::to_bytes_be`, the same bytes as the `0x` hex in JSON).
//!
//! Field elements are always canonical (`< r`); decoding rejects non-canonical roots.
//!
//! # Payload, version 2
//!
//! A range anchor covers batches `first_batch ..= first_batch + count - 1` and its envelopes
//! carry their data (`crate::da::AnchorData::encode`). Its first output is
//! `OP_RETURN OP_PUSHDATA1 79 <payload>` (82 bytes) with
//!
//! ```text
//! offset len  field
//!      0   4  magic "VEIL"
//!      4   1  version, 2
//!      5   8  first_batch, big-endian u64
//!     13   2  count >= 1, big-endian u16
//!     15  32  new_state_root after the last batch, canonical BN254 Fr
//!     47  32  commitment = SHA-256("veil/anchor-v2" || data_hash
//!                                  || proof_commitment_1 || ... || proof_commitment_count)
//! ```
//!
//! with `data_hash` the SHA-256 of the envelope data and `proof_commitment_i` batch `i`'s
//! version 1 commitment. [`AnchorPayloadAny`] reads both versions.
//!
//! # Version 1 transaction
//!
//! Version 2, lock time 0, one input spending the previous anchor's change (or the genesis
//! outpoint) with an RBF-signalling sequence, outputs `[OP_RETURN payload (0 sat), change to
//! the operator]`. The input is signed with the operator key: P2TR key path (BIP 341,
//! `SIGHASH_DEFAULT`) by default, or P2WPKH (BIP 143, `SIGHASH_ALL`, low-R ECDSA). The change
//! output of anchor `n` is output index 1 and is what anchor `n + 1` spends, so the anchors form
//! one chain and a fork shows as a double spend.
//!
//! # Range anchor package
//!
//! A commit spends the previous change into one envelope output per chunk of data (at most
//! [`MAX_ENVELOPE_DATA`] bytes each); a reveal transaction spends each envelope but the last by
//! its script path (output `OP_RETURN "VEIL"`), and the anchor spends the last one, carrying the
//! version 2 payload and the next change at output 1. Layouts, sizes, mempool limits and fee
//! bumping are in [`package`] and `docs/data-on-bitcoin.md`.

pub mod bridge;
pub mod chain;
pub mod envelope;
pub mod operator;
pub mod package;
pub mod payload;
pub mod refs;
pub mod rpc;
pub mod spend;
pub mod tx;

pub use envelope::{Envelope, EnvelopeError, MAX_ENVELOPE_DATA};
pub use operator::{KeyKind, OperatorKey, OperatorKeyError};
pub use package::{
    build_anchor_package, extract_data, read_package, read_package_by_spends, AnchorPackage,
    BumpScope, PackageContents, PackageError,
};
pub use payload::{
    proof_commitment, range_commitment, AnchorPayload, AnchorPayloadAny, AnchorPayloadV2,
    PayloadError, PAYLOAD_LEN, PAYLOAD_V2_LEN,
};
pub use rpc::{BitcoinRpc, FeePolicy, RpcAuth, RpcConfig, RpcError};
pub use tx::{build_anchor_tx, AnchorTx, AnchorTxError, PrevOut};
