//! The decoder-fuzzing harness: which decoders a stranger can reach ([`Target`]), valid seed
//! encodings of each made by the code itself ([`seeds`]), and the property every decoder must
//! keep on arbitrary bytes ([`Decoders::check`]): it returns `Ok` or its typed error, never
//! panics, and an accepted input re-encodes to itself (byte for byte where the format is
//! canonical, to the same value where it is not).
//!
//! The same [`Decoders::check`] runs under proptest mutation in `tests/fuzz_decoders.rs` and
//! under libFuzzer in `fuzz/fuzz_targets/*.rs`, so both layers test one property.

mod api;
mod decoders;
pub mod seeds;

use std::sync::OnceLock;

pub use api::{ApiHarness, OPERATOR_TOKEN};
pub use decoders::{is_snake_case, key_context, KeyContext};

/// A decoder reachable by a stranger, named as its `cargo fuzz` target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// `POST /v1/transfers` body: JSON, then `TransferRequest`, then `Transfer`.
    TransferJson,
    /// `POST /v1/deposits` body: the same decoder, seeded with deposits.
    DepositJson,
    /// Any HTTP request to the API's routes: method, path and query, body.
    ApiRequest,
    /// A hex field element (`GET /v1/nullifiers/{nf}`, every JSON field element) and the
    /// 32-byte big-endian encoding.
    FieldHex,
    /// A JSON batch file and its loaders' checks.
    BatchFile,
    /// A JSON proof file and the proof it carries.
    ProofFile,
    /// A 128-byte compressed proof, raw or as hex.
    ProofBytes,
    /// A verifying-key file (header and compressed key).
    VkFile,
    /// A proving-key file (header and uncompressed key).
    PkFile,
    /// A 77-byte anchor payload, bare or as its `OP_RETURN` script.
    AnchorPayload,
    /// A consensus-encoded Bitcoin transaction read back as an anchor.
    AnchorTx,
    /// The anchor data an envelope carries (`veil_verifier::da`).
    AnchorData,
    /// A Taproot envelope leaf script, as revealed in a witness.
    EnvelopeLeaf,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 13] = [
        Target::TransferJson,
        Target::DepositJson,
        Target::ApiRequest,
        Target::FieldHex,
        Target::BatchFile,
        Target::ProofFile,
        Target::ProofBytes,
        Target::VkFile,
        Target::PkFile,
        Target::AnchorPayload,
        Target::AnchorTx,
        Target::AnchorData,
        Target::EnvelopeLeaf,
    ];

    /// The `cargo fuzz` target name (and corpus directory).
    pub fn name(self) -> &'static str {
        match self {
            Target::TransferJson => "transfer_json",
            Target::DepositJson => "deposit_json",
            Target::ApiRequest => "api_request",
            Target::FieldHex => "field_hex",
            Target::BatchFile => "batch_file",
            Target::ProofFile => "proof_file",
            Target::ProofBytes => "proof_bytes",
            Target::VkFile => "vk_file",
            Target::PkFile => "pk_file",
            Target::AnchorPayload => "anchor_payload",
            Target::AnchorTx => "anchor_tx",
            Target::AnchorData => "anchor_data",
            Target::EnvelopeLeaf => "envelope_leaf",
        }
    }

    /// Whether the seeds are JSON documents (structure-aware mutations apply).
    pub fn is_json(self) -> bool {
        matches!(
            self,
            Target::TransferJson | Target::DepositJson | Target::BatchFile | Target::ProofFile
        )
    }
}

/// Runs decoders on arbitrary bytes and checks their property; holds what some decoders need
/// (the API's node), made on first use.
#[derive(Default)]
pub struct Decoders {
    api: OnceLock<ApiHarness>,
}

impl Decoders {
    /// A checker; nothing is built until a target needs it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `data` to `target`'s decoder. Panics if the decoder panics or breaks its property
    /// (an accepted input that does not re-encode to itself, two entry points that disagree, an
    /// HTTP error that is a 500 or not the API's error JSON).
    pub fn check(&self, target: Target, data: &[u8]) {
        match target {
            Target::TransferJson | Target::DepositJson => decoders::transfer_body(data),
            Target::ApiRequest => {
                self.api.get_or_init(ApiHarness::new).check(data);
            }
            Target::FieldHex => decoders::field_hex(data),
            Target::BatchFile => decoders::batch_file(data),
            Target::ProofFile => decoders::proof_file(data),
            Target::ProofBytes => decoders::proof_bytes(data),
            Target::VkFile => decoders::vk_file(decoders::key_context(), data),
            Target::PkFile => decoders::pk_file(decoders::key_context(), data),
            Target::AnchorPayload => decoders::anchor_payload(data),
            Target::AnchorTx => decoders::anchor_tx(data),
            Target::AnchorData => decoders::anchor_data(data),
            Target::EnvelopeLeaf => decoders::envelope_leaf(data),
        }
    }

    /// Whether `target`'s decoder accepts `data` as a whole: for the API, whether the request
    /// gets past the decoders to a handler: a success, a refusal by the node (403, 409, 422)
    /// or a lookup that found nothing (a 404 other than `not_found`, no such route).
    pub fn accepts(&self, target: Target, data: &[u8]) -> bool {
        match target {
            Target::ApiRequest => self
                .api
                .get_or_init(ApiHarness::new)
                .check(data)
                .is_some_and(|(status, code)| {
                    status.is_success()
                        || matches!(status.as_u16(), 403 | 409 | 422)
                        || (status == 404 && code.as_deref() != Some("not_found"))
                }),
            _ => decoders::accepts(target, data),
        }
    }
}
