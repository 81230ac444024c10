//! Native validation of transfers (DESIGN §6): each rule broken in turn yields its own typed
//! error, and a batch containing such a transfer is refused without touching the state.

use ark_bn254::Fr;
use ark_ff::One;
use veil_circuits::batch::{build_batch, BatchError, BatchShape};
use veil_circuits::note::output_rho;
use veil_circuits::transfer::{TransferError, TransferPublic};
use veil_circuits::{SpendingKey, Transfer};
use veil_fixtures::Scenario;

fn funded() -> (Scenario, SpendingKey, SpendingKey) {
    let mut sc = Scenario::new(BatchShape::new(2, 8).unwrap(), 5);
    let alice = sc.new_key();
    let bob = sc.new_key();
    let d1 = sc.deposit(&alice, 1_000);
    let d2 = sc.deposit(&bob, 200);
    sc.apply(&[d1, d2]).unwrap();
    (sc, alice, bob)
}

fn check(sc: &Scenario, t: &Transfer) -> Result<(), TransferError> {
    t.validate(&sc.state, |_| false)
}

fn resign(t: &mut Transfer, sk: &SpendingKey) {
    t.signature = sk.sign(t.public.sighash());
}

#[test]
fn a_valid_transfer_passes() {
    let (mut sc, alice, bob) = funded();
    let t = sc.pay(&alice, &bob, 300, 100, 7);
    assert_eq!(check(&sc, &t), Ok(()));
}

#[test]
fn each_rule_has_its_own_error() {
    let (mut sc, alice, bob) = funded();
    let good = sc.pay(&alice, &bob, 300, 0, 7);

    // Rule 1: an input owned by someone else.
    let mut t = good.clone();
    t.inputs[1] = sc.unspent(&bob)[0];
    assert_eq!(check(&sc, &t), Err(TransferError::NotOwner { input: 1 }));

    // Rule 2: a note that is not in the tree (or not at that position).
    let mut t = good.clone();
    t.inputs[0].position += 1;
    assert_eq!(check(&sc, &t), Err(TransferError::UnknownNote { input: 0 }));
    let mut t = good.clone();
    t.inputs[0].note.r += Fr::one();
    assert_eq!(check(&sc, &t), Err(TransferError::UnknownNote { input: 0 }));

    // Rule 3: a nullifier that is not the note's, one already spent, one repeated.
    let mut t = good.clone();
    t.public.nullifiers[1] += Fr::one();
    assert_eq!(
        check(&sc, &t),
        Err(TransferError::WrongNullifier { input: 1 })
    );
    let spent = good.public.nullifiers[0];
    assert_eq!(
        good.validate(&sc.state, |nf| *nf == spent),
        Err(TransferError::AlreadySpent { input: 0 })
    );
    let mut t = good.clone();
    t.inputs[1] = t.inputs[0];
    t.public.nullifiers[1] = t.public.nullifiers[0];
    assert_eq!(check(&sc, &t), Err(TransferError::DuplicateNullifier));

    // Rule 4: outputs must use rho_j = H(nf_1, j) and match their commitments.
    let mut t = good.clone();
    t.outputs[1].rho = output_rho(t.public.nullifiers[0], 1);
    assert_eq!(
        check(&sc, &t),
        Err(TransferError::WrongOutputRho { output: 1 })
    );
    let mut t = good.clone();
    t.public.commitments[0] += Fr::one();
    assert_eq!(
        check(&sc, &t),
        Err(TransferError::WrongCommitment { output: 0 })
    );

    // Rule 6: balance (inflation and deflation), computed without wrap-around.
    let mut t = good.clone();
    t.public.fee -= 1;
    resign(&mut t, &alice);
    assert!(matches!(
        check(&sc, &t),
        Err(TransferError::Unbalanced { .. })
    ));
    let mut t = good.clone();
    t.public.public_out = u64::MAX;
    t.public.dest = Fr::from(9u64);
    resign(&mut t, &alice);
    assert!(matches!(
        check(&sc, &t),
        Err(TransferError::Unbalanced { .. })
    ));

    // Rule 7: signature over exactly this public data, by the spender.
    let mut t = good.clone();
    t.signature = alice.sign(t.public.sighash() + Fr::one());
    assert_eq!(check(&sc, &t), Err(TransferError::BadSignature));
    let mut t = good.clone();
    t.signature = bob.sign(t.public.sighash());
    assert_eq!(check(&sc, &t), Err(TransferError::BadSignature));

    // Rule 7 covers the ciphertexts: other ciphertexts than the signed ones are refused, and
    // re-hashing them breaks the signature.
    let mut t = good.clone();
    t.ciphertexts = [
        vec![0u8; t.ciphertexts[0].len()],
        vec![0u8; t.ciphertexts[1].len()],
    ];
    assert_eq!(check(&sc, &t), Err(TransferError::CiphertextMismatch));
    t.public.ciphertext_hash = veil_circuits::note::ciphertext_hash(&t.ciphertexts);
    assert_eq!(check(&sc, &t), Err(TransferError::BadSignature));
    resign(&mut t, &alice);
    assert_eq!(check(&sc, &t), Ok(()));

    // Policy: deposits carry a reference, withdrawals a destination, and only they do.
    let mut t = good.clone();
    t.public.deposit_ref = Fr::from(3u64);
    resign(&mut t, &alice);
    assert_eq!(check(&sc, &t), Err(TransferError::DepositReference));
    let mut t = good.clone();
    t.public.dest = Fr::from(3u64);
    resign(&mut t, &alice);
    assert_eq!(check(&sc, &t), Err(TransferError::WithdrawalDestination));
}

#[test]
fn a_batch_with_an_invalid_transfer_changes_nothing() {
    let (mut sc, alice, bob) = funded();
    let good = sc.pay(&bob, &alice, 50, 0, 0);
    let mut bad = sc.pay(&alice, &bob, 300, 0, 7);
    bad.public = TransferPublic {
        fee: bad.public.fee + 1,
        ..bad.public
    };
    resign(&mut bad, &alice);
    let before = sc.state.summary();
    let shape = sc.shape;
    let err = build_batch(&mut sc.state, shape, 2, &[good, bad]).unwrap_err();
    assert!(matches!(
        err,
        BatchError::Transfer {
            index: 1,
            error: TransferError::Unbalanced { .. }
        }
    ));
    assert_eq!(sc.state.summary(), before);
}
