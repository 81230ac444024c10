//! Notes, note commitments, nullifiers and note encryption (DESIGN §4).
//!
//! `cm = H(DOM_CM, addr, value, rho, r)`, `nf = H(DOM_NF, nk, cm, pos)`, output `rho_j =
//! H(nf_1, j)` for `j = 1, 2`. A note ciphertext is `epk || ChaCha20-Poly1305(value || rho || r ||
//! memo)` under a key derived (HKDF-SHA256) from an ephemeral X25519 exchange with the
//! recipient's `pk_enc`; the recipient trial-decrypts and re-derives `cm` to accept it.

pub mod gadget;

use ark_bn254::Fr;
use ark_ff::UniformRand;
use chacha20poly1305::{aead::Aead, ChaCha20Poly1305, KeyInit, Nonce};
use hkdf::Hkdf;
use rand_core::{CryptoRng, RngCore};
use sha2::Sha256;

use crate::constants::{domain, CIPHERTEXT_HASH_TAG, DOM_CM, DOM_NF};
use crate::field;
use crate::keys::{PaymentAddress, SpendingKey};
use crate::poseidon::poseidon;

/// Memo bytes carried in every ciphertext.
pub const MEMO_LEN: usize = 32;
/// Plaintext length: value (8) || rho (32) || r (32) || memo (32).
pub const NOTE_PLAINTEXT_LEN: usize = 8 + 32 + 32 + MEMO_LEN;
/// Published ciphertext length: epk (32) || ciphertext || tag (16).
pub const NOTE_CIPHERTEXT_LEN: usize = 32 + NOTE_PLAINTEXT_LEN + 16;
const NOTE_KEY_INFO: &[u8] = b"veil/note-key";

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
    /// Commitment randomness.
    #[serde(with = "field::serde_hex")]
    pub r: Fr,
}

impl Note {
    /// A note to `addr` with fresh randomness.
    pub fn new<R: RngCore + CryptoRng>(addr: Fr, value: u64, rho: Fr, rng: &mut R) -> Self {
        Note {
            addr,
            value,
            rho,
            r: Fr::rand(rng),
        }
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

/// Decryption failed: not for us, or tampered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteDecryptionError {
    /// Wrong length.
    #[error("note ciphertext must be {NOTE_CIPHERTEXT_LEN} bytes")]
    Length,
    /// AEAD failure (not addressed to this key, or modified).
    #[error("note ciphertext does not decrypt under this key")]
    Aead,
    /// Decrypted, but the opening does not match the published commitment.
    #[error("decrypted note does not match its commitment")]
    Commitment,
}

fn note_key(shared: &[u8; 32], epk: &[u8; 32], pk_enc: &[u8; 32]) -> chacha20poly1305::Key {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(epk);
    salt[32..].copy_from_slice(pk_enc);
    let hk = Hkdf::<Sha256>::new(Some(&salt), shared);
    let mut key = [0u8; 32];
    hk.expand(NOTE_KEY_INFO, &mut key).expect("valid length");
    key.into()
}

/// Encrypts a note's opening to `to` (one fresh ephemeral key per note, so a zero nonce is safe).
pub fn encrypt_note<R: RngCore + CryptoRng>(
    note: &Note,
    memo: &[u8; MEMO_LEN],
    to: &PaymentAddress,
    rng: &mut R,
) -> Vec<u8> {
    let esk = x25519_dalek::StaticSecret::random_from_rng(&mut *rng);
    let epk = x25519_dalek::PublicKey::from(&esk).to_bytes();
    let shared = esk.diffie_hellman(&x25519_dalek::PublicKey::from(to.pk_enc));
    let key = note_key(shared.as_bytes(), &epk, &to.pk_enc);
    let mut pt = Vec::with_capacity(NOTE_PLAINTEXT_LEN);
    pt.extend_from_slice(&note.value.to_be_bytes());
    pt.extend_from_slice(&field::to_bytes_be(&note.rho));
    pt.extend_from_slice(&field::to_bytes_be(&note.r));
    pt.extend_from_slice(memo);
    let ct = ChaCha20Poly1305::new(&key)
        .encrypt(Nonce::from_slice(&[0u8; 12]), pt.as_slice())
        .expect("in-memory encryption cannot fail");
    let mut out = Vec::with_capacity(NOTE_CIPHERTEXT_LEN);
    out.extend_from_slice(&epk);
    out.extend_from_slice(&ct);
    out
}

/// Trial-decrypts a ciphertext with `sk` and checks it opens the published `cm`.
pub fn decrypt_note(
    sk: &SpendingKey,
    ciphertext: &[u8],
    cm: Fr,
) -> Result<(Note, [u8; MEMO_LEN]), NoteDecryptionError> {
    if ciphertext.len() != NOTE_CIPHERTEXT_LEN {
        return Err(NoteDecryptionError::Length);
    }
    let epk: [u8; 32] = ciphertext[..32].try_into().expect("32 bytes");
    let secret = sk.encryption_secret();
    let pk_enc = x25519_dalek::PublicKey::from(&secret).to_bytes();
    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(epk));
    let key = note_key(shared.as_bytes(), &epk, &pk_enc);
    let pt = ChaCha20Poly1305::new(&key)
        .decrypt(Nonce::from_slice(&[0u8; 12]), &ciphertext[32..])
        .map_err(|_| NoteDecryptionError::Aead)?;
    let value = u64::from_be_bytes(pt[..8].try_into().expect("8 bytes"));
    let rho = field::from_bytes_be(&pt[8..40].try_into().expect("32"))
        .map_err(|_| NoteDecryptionError::Commitment)?;
    let r = field::from_bytes_be(&pt[40..72].try_into().expect("32"))
        .map_err(|_| NoteDecryptionError::Commitment)?;
    let memo: [u8; MEMO_LEN] = pt[72..].try_into().expect("memo length");
    let note = Note {
        addr: sk.owner_tag(),
        value,
        rho,
        r,
    };
    if note.commitment() != cm {
        return Err(NoteDecryptionError::Commitment);
    }
    Ok((note, memo))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn encryption_round_trip_and_trial_decryption() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let alice = SpendingKey::random(&mut rng);
        let bob = SpendingKey::random(&mut rng);
        let note = Note::new(alice.owner_tag(), 42, Fr::from(9u64), &mut rng);
        let memo = [5u8; MEMO_LEN];
        let ct = encrypt_note(&note, &memo, &alice.payment_address(), &mut rng);
        assert_eq!(ct.len(), NOTE_CIPHERTEXT_LEN);
        let (opened, m) = decrypt_note(&alice, &ct, note.commitment()).unwrap();
        assert_eq!((opened, m), (note, memo));
        assert_eq!(
            decrypt_note(&bob, &ct, note.commitment()),
            Err(NoteDecryptionError::Aead)
        );
        let mut tampered = ct.clone();
        tampered[40] ^= 1;
        assert_eq!(
            decrypt_note(&alice, &tampered, note.commitment()),
            Err(NoteDecryptionError::Aead)
        );
        assert_eq!(
            decrypt_note(&alice, &ct, note.commitment() + Fr::from(1u64)),
            Err(NoteDecryptionError::Commitment)
        );
    }

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
}
