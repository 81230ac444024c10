//! Note encryption: round trips with and without a memo, and one test per rejection rule, each
//! built so that only the rule it targets is broken.

use super::*;
use crate::constants::NOTE_LEAD_BYTE_MEMO;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

struct Fixture {
    alice: SpendingKey,
    bob: SpendingKey,
    rseed: Rseed,
    rho: Fr,
}

fn fixture(seed: u64) -> Fixture {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    Fixture {
        alice: SpendingKey::random(&mut rng),
        bob: SpendingKey::random(&mut rng),
        rseed: Rseed::random(&mut rng),
        rho: Fr::from(9u64),
    }
}

#[test]
fn round_trip_without_memo() {
    let f = fixture(3);
    let to = f.alice.payment_address();
    let (note, ct) = create_note(&to, 42, f.rho, &f.rseed, None);
    assert_eq!(ct.len(), NOTE_CIPHERTEXT_LEN_COMPACT);
    assert_eq!(ct.len(), 89);
    assert_eq!(note, Note::from_rseed(to.addr, 42, f.rho, &f.rseed));
    assert_eq!(&ct[..32], &f.rseed.epk());
    // Deterministic in its arguments: the ephemeral key comes from the seed.
    assert_eq!(encrypt_note(&to, 42, &f.rseed, None), ct);
    let (opened, memo) = decrypt_note(&f.alice, &ct, f.rho, note.commitment()).unwrap();
    assert_eq!((opened, memo), (note, None));
}

#[test]
fn round_trip_with_memo() {
    let f = fixture(4);
    let to = f.alice.payment_address();
    let memo = [5u8; MEMO_LEN];
    let (note, ct) = create_note(&to, u64::MAX, f.rho, &f.rseed, Some(&memo));
    assert_eq!(ct.len(), NOTE_CIPHERTEXT_LEN_MEMO);
    assert_eq!(ct.len(), 121);
    let (opened, m) = decrypt_note(&f.alice, &ct, f.rho, note.commitment()).unwrap();
    assert_eq!((opened, m), (note, Some(memo)));
    // A memo does not change the note, only the ciphertext.
    let (plain, plain_ct) = create_note(&to, u64::MAX, f.rho, &f.rseed, None);
    assert_eq!(plain, note);
    assert_ne!(plain_ct[..], ct[..NOTE_CIPHERTEXT_LEN_COMPACT]);
}

#[test]
fn another_key_cannot_decrypt() {
    let f = fixture(5);
    let to = f.alice.payment_address();
    for memo in [None, Some(&[1u8; MEMO_LEN])] {
        let (note, ct) = create_note(&to, 7, f.rho, &f.rseed, memo);
        assert_eq!(
            decrypt_note(&f.bob, &ct, f.rho, note.commitment()),
            Err(NoteDecryptionError::Aead)
        );
    }
}

#[test]
fn every_tampered_byte_fails_the_aead() {
    let f = fixture(6);
    let (note, ct) = create_note(&f.alice.payment_address(), 7, f.rho, &f.rseed, None);
    for i in 0..ct.len() {
        let mut tampered = ct.clone();
        tampered[i] ^= 0x01;
        assert_eq!(
            decrypt_note(&f.alice, &tampered, f.rho, note.commitment()),
            Err(NoteDecryptionError::Aead),
            "byte {i}"
        );
    }
}

#[test]
fn wrong_rho_or_commitment_is_refused() {
    let f = fixture(7);
    let (note, ct) = create_note(&f.alice.payment_address(), 7, f.rho, &f.rseed, None);
    assert_eq!(
        decrypt_note(&f.alice, &ct, f.rho + Fr::from(1u64), note.commitment()),
        Err(NoteDecryptionError::Commitment)
    );
    assert_eq!(
        decrypt_note(&f.alice, &ct, f.rho, note.commitment() + Fr::from(1u64)),
        Err(NoteDecryptionError::Commitment)
    );
}

#[test]
fn an_epk_not_derived_from_the_seed_is_refused() {
    // A well-formed plaintext sealed under another ephemeral secret: the AEAD opens (the key
    // agreement is honest) and the note opens cm, but epk is not the seed's.
    let f = fixture(8);
    let to = f.alice.payment_address();
    let note = Note::from_rseed(to.addr, 7, f.rho, &f.rseed);
    let other = Rseed::from_bytes([0xaa; 32]).esk();
    for memo in [None, Some(&[3u8; MEMO_LEN])] {
        let ct = seal(&other, &to.pk_enc, &plaintext(7, &f.rseed, memo));
        assert_eq!(
            decrypt_note(&f.alice, &ct, f.rho, note.commitment()),
            Err(NoteDecryptionError::EphemeralKey)
        );
    }
}

#[test]
fn a_bad_lead_byte_is_refused() {
    let f = fixture(9);
    let to = f.alice.payment_address();
    let note = Note::from_rseed(to.addr, 7, f.rho, &f.rseed);
    let esk = f.rseed.esk();
    let sealed_with_lead = |lead: u8, memo: Option<&[u8; MEMO_LEN]>| {
        let mut pt = plaintext(7, &f.rseed, memo);
        pt[0] = lead;
        seal(&esk, &to.pk_enc, &pt)
    };
    // The honest leads open.
    for (lead, memo) in [
        (NOTE_LEAD_BYTE, None),
        (NOTE_LEAD_BYTE_MEMO, Some(&[0u8; MEMO_LEN])),
    ] {
        let ct = sealed_with_lead(lead, memo);
        assert!(decrypt_note(&f.alice, &ct, f.rho, note.commitment()).is_ok());
    }
    // Unknown leads, and each known lead on the other length.
    for (lead, memo) in [
        (0x00, None),
        (0x12, None),
        (0x01, Some(&[0u8; MEMO_LEN])),
        (NOTE_LEAD_BYTE_MEMO, None),
        (NOTE_LEAD_BYTE, Some(&[0u8; MEMO_LEN])),
    ] {
        let ct = sealed_with_lead(lead, memo);
        assert_eq!(
            decrypt_note(&f.alice, &ct, f.rho, note.commitment()),
            Err(NoteDecryptionError::LeadByte),
            "lead {lead:#04x}, memo {}",
            memo.is_some()
        );
    }
}

#[test]
fn other_lengths_are_refused_before_decrypting() {
    let f = fixture(10);
    let (note, ct) = create_note(&f.alice.payment_address(), 7, f.rho, &f.rseed, None);
    for len in [0, 32, 88, 90, 120, 122, 152] {
        let mut bytes = ct.clone();
        bytes.resize(len, 0);
        assert_eq!(
            decrypt_note(&f.alice, &bytes, f.rho, note.commitment()),
            Err(NoteDecryptionError::Length),
            "{len}"
        );
        assert!(!is_note_ciphertext_len(len));
    }
    assert!(is_note_ciphertext_len(89) && is_note_ciphertext_len(121));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn round_trip_on_random_notes(
        key_seed in any::<u64>(),
        value in any::<u64>(),
        rseed in any::<[u8; 32]>(),
        rho in any::<u64>(),
        memo in proptest::option::of(any::<[u8; MEMO_LEN]>()),
    ) {
        let sk = SpendingKey::random(&mut ChaCha20Rng::seed_from_u64(key_seed));
        let to = sk.payment_address();
        let rseed = Rseed::from_bytes(rseed);
        let rho = Fr::from(rho);
        let (note, ct) = create_note(&to, value, rho, &rseed, memo.as_ref());
        let expected_len = if memo.is_some() { NOTE_CIPHERTEXT_LEN_MEMO } else { NOTE_CIPHERTEXT_LEN_COMPACT };
        prop_assert_eq!(ct.len(), expected_len);
        let (opened, m) = decrypt_note(&sk, &ct, rho, note.commitment()).unwrap();
        prop_assert_eq!(opened, note);
        prop_assert_eq!(m, memo);
    }
}
