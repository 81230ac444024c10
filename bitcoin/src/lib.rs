//! Veil on Bitcoin (`veil-bitcoin`): anchoring of proven batches (DESIGN §11): the 77-byte `OP_RETURN` payload
//! ([`payload`]), the anchor transaction that carries it and chains each anchor to the previous
//! one ([`tx`]), the operator's secp256k1 key ([`operator`]) and an async Bitcoin Core JSON-RPC
//! client ([`rpc`]).
//!
//! # Payload
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
//! # Transaction
//!
//! Version 2, lock time 0, one input spending the previous anchor's change (or the genesis
//! outpoint) with an RBF-signalling sequence, outputs `[OP_RETURN payload (0 sat), change to
//! the operator]`. The input is signed with the operator key: P2TR key path (BIP 341,
//! `SIGHASH_DEFAULT`) by default, or P2WPKH (BIP 143, `SIGHASH_ALL`, low-R ECDSA). The change
//! output of anchor `n` is output index 1 and is what anchor `n + 1` spends, so the anchors form
//! one chain and a fork shows as a double spend.

pub mod chain;
pub mod operator;
pub mod payload;
pub mod rpc;
pub mod tx;

pub use operator::{KeyKind, OperatorKey, OperatorKeyError};
pub use payload::{proof_commitment, AnchorPayload, PayloadError, PAYLOAD_LEN};
pub use rpc::{BitcoinRpc, FeePolicy, RpcAuth, RpcConfig, RpcError};
pub use tx::{build_anchor_tx, AnchorTx, AnchorTxError, PrevOut};
