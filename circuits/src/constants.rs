//! Protocol constants and domain separators (DESIGN §2), defined once for native code and gadgets.

use ark_bn254::Fr;

/// Domain tag of the nullifier key `nk = H(DOM_NK, s)`.
pub const DOM_NK: u64 = 1;
/// Domain tag of the owner tag `addr = H(DOM_ADDR, A.x, A.y, nk)`.
pub const DOM_ADDR: u64 = 2;
/// Domain tag of note commitments `cm = H(DOM_CM, addr, value, rho, r)`.
pub const DOM_CM: u64 = 3;
/// Domain tag of nullifiers `nf = H(DOM_NF, nk, cm, pos)`.
pub const DOM_NF: u64 = 4;
/// Domain tag of the transfer sighash.
pub const DOM_SIG: u64 = 5;
/// Domain tag of indexed-nullifier-tree leaves `H(DOM_LEAF, value, next_index, next_value)`.
pub const DOM_LEAF: u64 = 6;
/// Domain tag of the state root.
pub const DOM_STATE: u64 = 7;
/// Domain tag of the batch hash chain.
pub const DOM_BATCH: u64 = 8;

/// Domain tag (SHA-256 prefix) of a transfer's `ciphertext_hash`, which binds its two note
/// ciphertexts into the sighash (`docs/design-changes.md`, "Ciphertexts bound by the sighash").
pub const CIPHERTEXT_HASH_TAG: &[u8] = b"veil/note-ciphertexts";

/// SHA-512 prefix deriving a note's commitment randomness from its seed:
/// `r = SHA-512(NOTE_RCM_TAG || rseed)` read little-endian, reduced mod r (`docs/design-changes.md`,
/// "Compact note plaintext").
pub const NOTE_RCM_TAG: &[u8] = b"veil/note-rcm";
/// SHA-512 prefix deriving a note's ephemeral X25519 secret from its seed:
/// `esk = SHA-512(NOTE_ESK_TAG || rseed)[..32]`.
pub const NOTE_ESK_TAG: &[u8] = b"veil/note-esk";
/// HKDF-SHA256 info string of the note encryption key (salt `epk || pk_enc`).
pub const NOTE_KEY_INFO: &[u8] = b"veil/note-key";
/// First plaintext byte of a note ciphertext without a memo.
pub const NOTE_LEAD_BYTE: u8 = 0x10;
/// First plaintext byte of a note ciphertext whose plaintext ends with a memo.
pub const NOTE_LEAD_BYTE_MEMO: u8 = 0x11;

/// Public field elements per batch slot: `nf_1, nf_2, cm_1, cm_2, public_in, public_out, fee,
/// dest, deposit_ref, ciphertext_hash` (the sighash covers all of them, then the batch hash chain).
pub const SLOT_PUBLIC_FIELDS: usize = 10;

/// Largest number of inputs a single circomlib Poseidon permutation takes (width 9).
pub const POSEIDON_MAX_INPUTS: usize = 8;

/// Number of bits of every amount (values, `public_in`, `public_out`, `fee`): DESIGN §6 rule 5.
pub const VALUE_BITS: usize = 64;

/// Input notes per transfer.
pub const INPUTS_PER_TRANSFER: usize = 2;
/// Output notes per transfer.
pub const OUTPUTS_PER_TRANSFER: usize = 2;

/// Largest tree depth supported (positions are `u64`; DESIGN §5 default is 32).
pub const MAX_DEPTH: usize = 48;

/// Human-readable part of mainnet payment addresses.
pub const ADDRESS_HRP: &str = "veil";
/// Human-readable part of regtest/test payment addresses.
pub const ADDRESS_HRP_REGTEST: &str = "veilrt";
/// HKDF info string deriving the X25519 encryption secret from the spending key.
pub const ENC_KEY_INFO: &[u8] = b"veil/enc";

/// A domain tag as a field element.
pub fn domain(tag: u64) -> Fr {
    Fr::from(tag)
}
