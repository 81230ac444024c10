//! Notes, their randomness seeds, note commitments and nullifiers (DESIGN §4); note encryption
//! lives in [`encryption`].
//!
//! `cm = H(DOM_CM, addr, value, rho, r)`, `nf = H(DOM_NF, nk, cm, pos)`, output `rho_j =
//! H(nf_1, j)` for `j = 1, 2`. A note's `r` is derived from a 32-byte seed [`Rseed`], which also
//! gives the ephemeral key of its ciphertext, so the ciphertext carries the seed instead of `r`
//! (`docs/design-changes.md`, "Compact note plaintext").

pub mod encryption;
pub mod gadget;

use ark_bn254::Fr;
use ark_ff::PrimeField;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::constants::{domain, CIPHERTEXT_HASH_TAG, DOM_CM, DOM_NF, NOTE_ESK_TAG, NOTE_RCM_TAG};
use crate::field;
use crate::poseidon::poseidon;

pub use encryption::{
    create_note, decrypt_note, encrypt_note, is_note_ciphertext_len, NoteDecryptionError, MEMO_LEN,
    NOTE_CIPHERTEXT_LEN_COMPACT, NOTE_CIPHERTEXT_LEN_MEMO,
};

/// A shielded note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Note {
    /// Owner tag.
    #[serde(with = "field::serde_hex")]
    pub addr: Fr,
    /// Amount in satoshis.
    pub value: u64,
    /// Uniqueness seed (`H(nf_1, j)` for transfer outputs).
    #[serde(with = "field::serde_hex")]
    pub rho: Fr,
    /// Commitment randomness ([`Rseed::rcm`] of the note's seed).
    #[serde(with = "field::serde_hex")]
    pub r: Fr,
}

/// The 32-byte seed of a note: its commitment randomness `r` ([`Rseed::rcm`]) and the ephemeral
/// secret of its ciphertext both derive from it. Draw a fresh one per note ([`Rseed::random`]):
/// two notes to one recipient under one seed would reuse an encryption key and nonce.
/// `Debug` prints nothing secret.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Rseed([u8; 32]);

impl std::fmt::Debug for Rseed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rseed(..)")
    }
}

impl Rseed {
    /// Wraps 32 bytes (every value is a seed).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Rseed(bytes)
    }

    /// A fresh random seed.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        Rseed(b)
    }

    /// The raw bytes (what a note ciphertext carries).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// `r = SHA-512(NOTE_RCM_TAG || rseed)` read little-endian and reduced mod the BN254 scalar
    /// modulus (a 512-bit wide reduction: statistically uniform).
    pub fn rcm(&self) -> Fr {
        let mut wide: [u8; 64] = Sha512::new()
            .chain_update(NOTE_RCM_TAG)
            .chain_update(self.0)
            .finalize()
            .into();
        let r = Fr::from_le_bytes_mod_order(&wide);
        wide.zeroize();
        r
    }

    /// The ephemeral X25519 secret `esk = SHA-512(NOTE_ESK_TAG || rseed)[..32]` (clamped by
    /// X25519).
    pub fn esk(&self) -> x25519_dalek::StaticSecret {
        let mut wide: [u8; 64] = Sha512::new()
            .chain_update(NOTE_ESK_TAG)
            .chain_update(self.0)
            .finalize()
            .into();
        let mut okm = [0u8; 32];
        okm.copy_from_slice(&wide[..32]);
        let esk = x25519_dalek::StaticSecret::from(okm);
        okm.zeroize();
        wide.zeroize();
        esk
    }

    /// `epk = esk * G`, what a ciphertext made from this seed starts with.
    pub fn epk(&self) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&self.esk()).to_bytes()
    }
}

impl Note {
    /// The note to `addr` whose randomness derives from `rseed` (`r = rseed.rcm()`).
    pub fn from_rseed(addr: Fr, value: u64, rho: Fr, rseed: &Rseed) -> Self {
        Note {
            addr,
            value,
            rho,
            r: rseed.rcm(),
        }
    }

    /// A note to `addr` from a fresh seed that is then dropped: for notes that are never
    /// encrypted (dummy inputs, tests). Notes someone must receive come from
    /// [`create_note`], which also returns their ciphertext.
    pub fn new<R: RngCore + CryptoRng>(addr: Fr, value: u64, rho: Fr, rng: &mut R) -> Self {
        Note::from_rseed(addr, value, rho, &Rseed::random(rng))
    }

    /// `cm = H(DOM_CM, addr, value, rho, r)`.
    pub fn commitment(&self) -> Fr {
        commitment(self.addr, Fr::from(self.value), self.rho, self.r)
    }

    /// `nf = H(DOM_NF, nk, cm, pos)`.
    pub fn nullifier(&self, nk: Fr, position: u64) -> Fr {
        nullifier(nk, self.commitment(), position)
    }
}

/// `cm = H(DOM_CM, addr, value, rho, r)` on field elements.
pub fn commitment(addr: Fr, value: Fr, rho: Fr, r: Fr) -> Fr {
    poseidon(&[domain(DOM_CM), addr, value, rho, r])
}

/// `nf = H(DOM_NF, nk, cm, pos)`.
pub fn nullifier(nk: Fr, cm: Fr, position: u64) -> Fr {
    poseidon(&[domain(DOM_NF), nk, cm, Fr::from(position)])
}

/// `rho_j = H(nf_1, j)` for output `j` in `1..=2`.
pub fn output_rho(nf_1: Fr, j: u64) -> Fr {
    poseidon(&[nf_1, Fr::from(j)])
}

/// `ciphertext_hash = F(SHA-256("veil/note-ciphertexts" || len_1 || ct_1 || len_2 || ct_2))`, each
/// length a `u32` big-endian (see [`field::tagged_sha256`] for `F`). It is a public field of the
/// transfer, so the spender's signature and the batch hash cover the exact ciphertexts the
/// recipients will scan: nobody who relays a transfer can swap them without invalidating it.
pub fn ciphertext_hash(ciphertexts: &[Vec<u8>; 2]) -> Fr {
    let len = |c: &Vec<u8>| {
        u32::try_from(c.len())
            .expect("ciphertexts are small")
            .to_be_bytes()
    };
    let (l1, l2) = (len(&ciphertexts[0]), len(&ciphertexts[1]));
    field::tagged_sha256(
        CIPHERTEXT_HASH_TAG,
        &[&l1, &ciphertexts[0], &l2, &ciphertexts[1]],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn nullifier_depends_on_position() {
        let note = Note {
            addr: Fr::from(1u64),
            value: 5,
            rho: Fr::from(2u64),
            r: Fr::from(3u64),
        };
        assert_ne!(
            note.nullifier(Fr::from(4u64), 0),
            note.nullifier(Fr::from(4u64), 1)
        );
        assert_ne!(
            note.nullifier(Fr::from(4u64), 0),
            note.nullifier(Fr::from(5u64), 0)
        );
    }

    #[test]
    fn rseed_derivations_are_deterministic_and_seed_dependent() {
        let a = Rseed::from_bytes([7u8; 32]);
        let b = Rseed::from_bytes([8u8; 32]);
        assert_eq!(a.rcm(), Rseed::from_bytes([7u8; 32]).rcm());
        assert_eq!(a.epk(), Rseed::from_bytes([7u8; 32]).epk());
        assert_ne!(a.rcm(), b.rcm());
        assert_ne!(a.epk(), b.epk());
        // r is the wide reduction of SHA-512(tag || rseed), little-endian.
        let digest = Sha512::digest([NOTE_RCM_TAG, &[7u8; 32][..]].concat());
        assert_eq!(a.rcm(), Fr::from_le_bytes_mod_order(&digest));
        // The two derivations are domain-separated: esk is not the first half of r's digest.
        let rcm_half: [u8; 32] = digest[..32].try_into().unwrap();
        assert_ne!(
            x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(rcm_half)).to_bytes(),
            a.epk()
        );
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let n = Note::from_rseed(Fr::from(1u64), 9, Fr::from(2u64), &a);
        assert_eq!(n.r, a.rcm());
        assert_ne!(Rseed::random(&mut rng), Rseed::random(&mut rng));
        assert_eq!(format!("{a:?}"), "Rseed(..)");
    }
}
