//! A batch applied from its published data alone (DESIGN §7): what a verifier, or a node
//! restored from Bitcoin, does with a batch it did not build. The trees change exactly as the
//! sequencer's builder changed them (the same code path, with placeholder witnesses), and the
//! result names the public inputs the batch's proof must verify against.

use ark_bn254::Fr;
use ark_ed_on_bn254::{EdwardsAffine, Fr as JubjubScalar};
use ark_ff::Zero;

use super::{
    build_with_fields, BatchError, BatchPublicInputs, BatchShape, InputSpec, OutputWitness,
    SlotSpec,
};
use crate::eddsa::Signature;
use crate::state::{RollupState, StateSummary};
use crate::transfer::TransferPublic;

/// What applying a published batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedBatch {
    /// The public inputs the batch's proof must verify against.
    pub public_inputs: BatchPublicInputs,
    /// The state before the batch.
    pub old_state: StateSummary,
    /// The state after it.
    pub new_state: StateSummary,
    /// Position of the batch's first note (slot `s`'s output `j` is at `note_start + 2s + j`).
    pub note_start: u64,
}

/// Applies batch `batch_number`'s published transfers (`slots`, the real ones in slot order)
/// to `state`: appends the `2B` output commitments and inserts the nullifiers. Nothing is
/// validated but the shape: the batch's proof, checked against the returned public inputs,
/// is what says the data is a valid batch. On error `state` is left untouched.
pub fn apply_published(
    state: &mut RollupState,
    shape: BatchShape,
    batch_number: u64,
    slots: &[TransferPublic],
) -> Result<AppliedBatch, BatchError> {
    let old_state = state.summary();
    let note_start = shape.subtree_start(state.notes.count());
    let specs = vec![placeholder_spec(); slots.len()];
    let fields = slots.iter().map(TransferPublic::fields).collect();
    // The builder refuses a bad shape or a full tree before it touches the trees; placeholder
    // inputs (value 0, position 0) need no path, so nothing can fail half-way.
    let built = build_with_fields(state, shape, batch_number, &specs, fields)?;
    Ok(AppliedBatch {
        public_inputs: built.public_inputs,
        old_state,
        new_state: built.new_state,
        note_start,
    })
}

/// A slot spec whose inputs need no tree path (value 0): only the public fields matter here.
fn placeholder_spec() -> SlotSpec {
    let input = InputSpec {
        addr: Fr::zero(),
        value: Fr::zero(),
        rho: Fr::zero(),
        r: Fr::zero(),
        position: 0,
    };
    let output = OutputWitness {
        addr: Fr::zero(),
        value: Fr::zero(),
        r: Fr::zero(),
    };
    SlotSpec {
        ak: EdwardsAffine::zero(),
        nk: Fr::zero(),
        inputs: [input, input],
        outputs: [output, output],
        public_in: Fr::zero(),
        public_out: Fr::zero(),
        fee: Fr::zero(),
        dest: Fr::zero(),
        deposit_ref: Fr::zero(),
        ciphertext_hash: Fr::zero(),
        signature: Signature {
            r: EdwardsAffine::zero(),
            s: JubjubScalar::zero(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{build_batch, BatchShape};
    use crate::transfer::{OutputSpec, PublicAmounts, Transfer};
    use crate::SpendingKey;
    use rand::SeedableRng;

    fn deposit(rng: &mut rand_chacha::ChaCha20Rng, to: &SpendingKey, v: u64, r: u64) -> Transfer {
        let signer = SpendingKey::random(rng);
        let inputs = [
            Transfer::dummy_input(&signer, rng),
            Transfer::dummy_input(&signer, rng),
        ];
        let out = |value| OutputSpec {
            to: to.payment_address(),
            value,
        };
        let amounts = PublicAmounts {
            public_in: v,
            deposit_ref: Fr::from(r),
            ..Default::default()
        };
        Transfer::create(&signer, inputs, [out(v), out(0)], amounts, rng)
    }

    #[test]
    fn published_data_rebuilds_the_builders_state() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let shape = BatchShape::new(2, 8).unwrap();
        let alice = SpendingKey::random(&mut rng);
        let mut built_state = RollupState::genesis(8);
        let mut replayed = RollupState::genesis(8);
        let batches = [
            vec![
                deposit(&mut rng, &alice, 5, 1),
                deposit(&mut rng, &alice, 6, 2),
            ],
            vec![],
            vec![deposit(&mut rng, &alice, 7, 3)],
        ];
        for (n, transfers) in batches.iter().enumerate() {
            let built = build_batch(&mut built_state, shape, n as u64, transfers).unwrap();
            let public: Vec<TransferPublic> = transfers.iter().map(|t| t.public).collect();
            let applied = apply_published(&mut replayed, shape, n as u64, &public).unwrap();
            assert_eq!(applied.public_inputs, built.public_inputs, "batch {n}");
            assert_eq!(applied.new_state, built.new_state);
            assert_eq!(applied.note_start, built.witness.note_subtree_start);
        }
        assert_eq!(replayed.state_root(), built_state.state_root());
        // Other data gives another root; too many slots is refused and changes nothing.
        let mut other = RollupState::genesis(8);
        let mut public: Vec<TransferPublic> = batches[0].iter().map(|t| t.public).collect();
        public[1].commitments[0] += Fr::from(1u64);
        let applied = apply_published(&mut other, shape, 0, &public).unwrap();
        let first = apply_published(
            &mut RollupState::genesis(8),
            shape,
            0,
            &batches[0].iter().map(|t| t.public).collect::<Vec<_>>(),
        )
        .unwrap();
        assert_ne!(applied.new_state, first.new_state);
        let before = replayed.summary();
        let three = vec![public[0]; 3];
        assert!(apply_published(&mut replayed, shape, 3, &three).is_err());
        assert_eq!(replayed.summary(), before);
    }
}
