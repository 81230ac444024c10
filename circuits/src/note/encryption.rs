//! Note encryption (DESIGN §4, compact plaintext of `docs/design-changes.md`): the ciphertext
//! format, [`encrypt_note`] / [`create_note`] for senders and [`decrypt_note`] for recipients.
//!
//! ```text
//! plaintext  = lead:u8 value:u64be rseed:[u8; 32] [memo:[u8; 32]]   (memo iff lead = 0x11)
//! ciphertext = epk:[u8; 32] ChaCha20-Poly1305(key, nonce 0, plaintext) tag:[u8; 16]
//! ```
//!
//! `epk = esk * G` with `esk` derived from `rseed` ([`Rseed::esk`]); `key = HKDF-SHA256(salt
//! epk || pk_enc, ikm esk * pk_enc, info "veil/note-key")`. Each note has its own `esk`, so a zero
//! nonce is safe. `rho` is not encrypted: the recipient derives it from public data
//! (`rho_j = H(nf_1, j)`) and passes it in. The recipient re-derives `esk` from the decrypted
//! seed and requires `esk * G = epk`, so a ciphertext opens to one note only, whoever decrypts it
//! (a sender cannot craft one that two recipients read differently), then requires the note to
//! open the published commitment. 89 bytes without a memo, 121 with one (152 before).

use ark_bn254::Fr;
use chacha20poly1305::{aead::Aead, ChaCha20Poly1305, KeyInit, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{Note, Rseed};
use crate::constants::{NOTE_KEY_INFO, NOTE_LEAD_BYTE, NOTE_LEAD_BYTE_MEMO};
use crate::keys::{PaymentAddress, SpendingKey};

/// Length of an optional memo.
pub const MEMO_LEN: usize = 32;
/// `epk` length.
const EPK_LEN: usize = 32;
/// Poly1305 tag length.
const TAG_LEN: usize = 16;
/// Plaintext without a memo: lead (1) || value (8) || rseed (32).
const PLAINTEXT_LEN_COMPACT: usize = 1 + 8 + 32;
/// Published length of a ciphertext without a memo: epk || AEAD(41-byte plaintext) || tag.
pub const NOTE_CIPHERTEXT_LEN_COMPACT: usize = EPK_LEN + PLAINTEXT_LEN_COMPACT + TAG_LEN;
/// Published length of a ciphertext with a memo.
pub const NOTE_CIPHERTEXT_LEN_MEMO: usize = NOTE_CIPHERTEXT_LEN_COMPACT + MEMO_LEN;

/// Whether `len` is the length of a note ciphertext (with or without a memo).
pub fn is_note_ciphertext_len(len: usize) -> bool {
    len == NOTE_CIPHERTEXT_LEN_COMPACT || len == NOTE_CIPHERTEXT_LEN_MEMO
}

/// Why a ciphertext does not give this key a note: not addressed to it, tampered, or malformed
/// by its sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteDecryptionError {
    /// Neither of the two ciphertext lengths.
    #[error(
        "note ciphertext must be {NOTE_CIPHERTEXT_LEN_COMPACT} or {NOTE_CIPHERTEXT_LEN_MEMO} bytes"
    )]
    Length,
    /// AEAD failure (not addressed to this key, or modified).
    #[error("note ciphertext does not decrypt under this key")]
    Aead,
    /// The plaintext's lead byte is unknown or does not match its length.
    #[error("note plaintext has a bad lead byte")]
    LeadByte,
    /// The published `epk` is not the ephemeral key derived from the plaintext's seed.
    #[error("note ciphertext's ephemeral key is not derived from its seed")]
    EphemeralKey,
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

/// Seals `plaintext` to `pk_enc` under the ephemeral secret `esk`: `epk || AEAD || tag`.
fn seal(esk: &x25519_dalek::StaticSecret, pk_enc: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
    let epk = x25519_dalek::PublicKey::from(esk).to_bytes();
    let shared = esk.diffie_hellman(&x25519_dalek::PublicKey::from(*pk_enc));
    let key = note_key(shared.as_bytes(), &epk, pk_enc);
    let ct = ChaCha20Poly1305::new(&key)
        .encrypt(Nonce::from_slice(&[0u8; 12]), plaintext)
        .expect("in-memory encryption cannot fail");
    let mut out = Vec::with_capacity(EPK_LEN + ct.len());
    out.extend_from_slice(&epk);
    out.extend_from_slice(&ct);
    out
}

/// The plaintext `lead || value || rseed || [memo]`.
fn plaintext(value: u64, rseed: &Rseed, memo: Option<&[u8; MEMO_LEN]>) -> Zeroizing<Vec<u8>> {
    let mut pt = Zeroizing::new(Vec::with_capacity(PLAINTEXT_LEN_COMPACT + MEMO_LEN));
    pt.push(match memo {
        None => NOTE_LEAD_BYTE,
        Some(_) => NOTE_LEAD_BYTE_MEMO,
    });
    pt.extend_from_slice(&value.to_be_bytes());
    pt.extend_from_slice(rseed.as_bytes());
    if let Some(m) = memo {
        pt.extend_from_slice(m);
    }
    pt
}

/// Encrypts the note of `value` to `to` whose randomness is `rseed` (the note itself is
/// `Note::from_rseed(to.addr, value, rho, rseed)`; `rho` is not encrypted). The ephemeral key
/// derives from `rseed`, so the same arguments give the same bytes.
pub fn encrypt_note(
    to: &PaymentAddress,
    value: u64,
    rseed: &Rseed,
    memo: Option<&[u8; MEMO_LEN]>,
) -> Vec<u8> {
    seal(&rseed.esk(), &to.pk_enc, &plaintext(value, rseed, memo))
}

/// A new note of `value` to `to` with uniqueness seed `rho` and its ciphertext, both from
/// `rseed` (fresh per note): what a sender commits to and publishes.
pub fn create_note(
    to: &PaymentAddress,
    value: u64,
    rho: Fr,
    rseed: &Rseed,
    memo: Option<&[u8; MEMO_LEN]>,
) -> (Note, Vec<u8>) {
    let note = Note::from_rseed(to.addr, value, rho, rseed);
    (note, encrypt_note(to, value, rseed, memo))
}

/// Trial-decrypts a ciphertext with `sk`: the note it carries (owned by `sk`, with the `rho` the
/// caller derived from public data) and its memo, if the ciphertext is for `sk`, its `epk`
/// derives from the plaintext's seed, and the note opens the published `cm`.
pub fn decrypt_note(
    sk: &SpendingKey,
    ciphertext: &[u8],
    rho: Fr,
    cm: Fr,
) -> Result<(Note, Option<[u8; MEMO_LEN]>), NoteDecryptionError> {
    if !is_note_ciphertext_len(ciphertext.len()) {
        return Err(NoteDecryptionError::Length);
    }
    let epk: [u8; EPK_LEN] = ciphertext[..EPK_LEN].try_into().expect("32 bytes");
    let secret = sk.encryption_secret();
    let pk_enc = x25519_dalek::PublicKey::from(&secret).to_bytes();
    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(epk));
    let key = note_key(shared.as_bytes(), &epk, &pk_enc);
    let pt = Zeroizing::new(
        ChaCha20Poly1305::new(&key)
            .decrypt(Nonce::from_slice(&[0u8; 12]), &ciphertext[EPK_LEN..])
            .map_err(|_| NoteDecryptionError::Aead)?,
    );
    let has_memo = match (pt[0], pt.len()) {
        (NOTE_LEAD_BYTE, PLAINTEXT_LEN_COMPACT) => false,
        (NOTE_LEAD_BYTE_MEMO, n) if n == PLAINTEXT_LEN_COMPACT + MEMO_LEN => true,
        _ => return Err(NoteDecryptionError::LeadByte),
    };
    let value = u64::from_be_bytes(pt[1..9].try_into().expect("8 bytes"));
    let rseed = Rseed::from_bytes(pt[9..41].try_into().expect("32 bytes"));
    let memo = has_memo.then(|| pt[41..].try_into().expect("memo length"));
    if rseed.epk() != epk {
        return Err(NoteDecryptionError::EphemeralKey);
    }
    let note = Note::from_rseed(sk.owner_tag(), value, rho, &rseed);
    if note.commitment() != cm {
        return Err(NoteDecryptionError::Commitment);
    }
    Ok((note, memo))
}

#[cfg(test)]
mod tests;
