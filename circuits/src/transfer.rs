//! Private transfers: 2-in/2-out join-splits with public deposit, withdrawal and fee (DESIGN §6),
//! their construction by a wallet, and native validation of every rule with a typed error each.

use ark_bn254::Fr;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::constants::{domain, DOM_SIG, SLOT_PUBLIC_FIELDS};
use crate::eddsa::{PublicKey, Signature};
use crate::field;
use crate::keys::{owner_tag, PaymentAddress, ProofGenerationKey, SpendingKey};
use crate::note::{ciphertext_hash, create_note, nullifier, output_rho, Note, Rseed, MEMO_LEN};
use crate::poseidon::hash_many;
use crate::state::RollupState;

/// An input note being spent, with its note-tree position. A note of value 0 is a *dummy*: it
/// skips the membership check (its position is still bound into its nullifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpentNote {
    /// The note's opening.
    pub note: Note,
    /// Its leaf position in the note tree (any value for a dummy).
    pub position: u64,
}

impl SpentNote {
    /// Whether this input is a dummy (value 0).
    pub fn is_dummy(&self) -> bool {
        self.note.value == 0
    }
}

/// What a transfer publishes (and what the batch hash commits to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferPublic {
    /// Nullifiers of the two inputs.
    #[serde(with = "field::serde_hex_array2")]
    pub nullifiers: [Fr; 2],
    /// Commitments of the two outputs.
    #[serde(with = "field::serde_hex_array2")]
    pub commitments: [Fr; 2],
    /// Deposit amount (operator only).
    pub public_in: u64,
    /// Withdrawal amount.
    pub public_out: u64,
    /// Fee to the operator.
    pub fee: u64,
    /// Hash of the withdrawal scriptPubKey, else 0.
    #[serde(with = "field::serde_hex")]
    pub dest: Fr,
    /// Hash of the deposit outpoint, else 0.
    #[serde(with = "field::serde_hex")]
    pub deposit_ref: Fr,
    /// [`ciphertext_hash`] of the two note ciphertexts: binds them into the sighash.
    #[serde(with = "field::serde_hex")]
    pub ciphertext_hash: Fr,
}

/// A slot's public field elements, in sighash and batch-hash order.
pub type SlotFields = [Fr; SLOT_PUBLIC_FIELDS];

impl TransferPublic {
    /// The ten public field elements of a slot, in batch-hash order.
    pub fn fields(&self) -> SlotFields {
        [
            self.nullifiers[0],
            self.nullifiers[1],
            self.commitments[0],
            self.commitments[1],
            Fr::from(self.public_in),
            Fr::from(self.public_out),
            Fr::from(self.fee),
            self.dest,
            self.deposit_ref,
            self.ciphertext_hash,
        ]
    }

    /// The public data whose [`TransferPublic::fields`] are `f`; `Err(name)` names the first
    /// amount (`public_in`, `public_out`, `fee`) that is not a `u64`, which no valid transfer
    /// publishes.
    pub fn from_fields(f: &SlotFields) -> Result<TransferPublic, &'static str> {
        let amount = |i: usize, name: &'static str| {
            use ark_ff::PrimeField;
            let limbs = f[i].into_bigint().0;
            limbs[1..]
                .iter()
                .all(|&l| l == 0)
                .then_some(limbs[0])
                .ok_or(name)
        };
        Ok(TransferPublic {
            nullifiers: [f[0], f[1]],
            commitments: [f[2], f[3]],
            public_in: amount(4, "public_in")?,
            public_out: amount(5, "public_out")?,
            fee: amount(6, "fee")?,
            dest: f[7],
            deposit_ref: f[8],
            ciphertext_hash: f[9],
        })
    }

    /// See [`sighash`].
    pub fn sighash(&self) -> Fr {
        sighash(&self.fields())
    }
}

/// The message the spender signs: `H(DOM_SIG, nf_1, nf_2, cm_1, cm_2, public_in, public_out,
/// H(fee, dest, deposit_ref, ciphertext_hash))`. Eleven inputs do not fit one circomlib
/// Poseidon (at most 8): [`hash_many`] hashes the last four first.
pub fn sighash(fields: &SlotFields) -> Fr {
    let mut xs = Vec::with_capacity(1 + SLOT_PUBLIC_FIELDS);
    xs.push(domain(DOM_SIG));
    xs.extend_from_slice(fields);
    hash_many(&xs)
}

/// A complete transfer: public data, the prover's witness (no spending key) and note ciphertexts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// Public data.
    pub public: TransferPublic,
    /// Spend-authorisation key `A` and nullifier key `nk` of the spender.
    pub pgk: ProofGenerationKey,
    /// The two inputs.
    pub inputs: [SpentNote; 2],
    /// The two output notes.
    pub outputs: [Note; 2],
    /// EdDSA-Poseidon signature by `A` over the sighash.
    pub signature: Signature,
    /// `epk || ciphertext` for each output.
    pub ciphertexts: [Vec<u8>; 2],
}

/// One output of a transfer being built.
#[derive(Debug, Clone, Copy)]
pub struct OutputSpec {
    /// Recipient.
    pub to: PaymentAddress,
    /// Amount.
    pub value: u64,
}

/// Public amounts of a transfer being built.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicAmounts {
    /// Deposit.
    pub public_in: u64,
    /// Withdrawal.
    pub public_out: u64,
    /// Fee.
    pub fee: u64,
    /// Withdrawal destination hash.
    pub dest: Fr,
    /// Deposit outpoint hash.
    pub deposit_ref: Fr,
}

impl Transfer {
    /// Builds and signs a transfer spending `inputs` (owned by `sk`) into `outputs`, without
    /// memos (89-byte note ciphertexts). Balance is not checked here; [`Transfer::validate`]
    /// does.
    pub fn create<R: RngCore + CryptoRng>(
        sk: &SpendingKey,
        inputs: [SpentNote; 2],
        outputs: [OutputSpec; 2],
        amounts: PublicAmounts,
        rng: &mut R,
    ) -> Transfer {
        Transfer::build(sk, inputs, outputs, None, amounts, rng)
    }

    /// [`Transfer::create`] with a memo in each output's ciphertext (121 bytes each). Both
    /// outputs carry one because the node refuses a transfer whose two ciphertexts differ in
    /// length (it would tell which output has a memo): give the other output zeros.
    pub fn create_with_memos<R: RngCore + CryptoRng>(
        sk: &SpendingKey,
        inputs: [SpentNote; 2],
        outputs: [OutputSpec; 2],
        memos: &[[u8; MEMO_LEN]; 2],
        amounts: PublicAmounts,
        rng: &mut R,
    ) -> Transfer {
        Transfer::build(sk, inputs, outputs, Some(memos), amounts, rng)
    }

    fn build<R: RngCore + CryptoRng>(
        sk: &SpendingKey,
        inputs: [SpentNote; 2],
        outputs: [OutputSpec; 2],
        memos: Option<&[[u8; MEMO_LEN]; 2]>,
        amounts: PublicAmounts,
        rng: &mut R,
    ) -> Transfer {
        let pgk = sk.proof_generation_key();
        let nullifiers = [
            inputs[0].note.nullifier(pgk.nk, inputs[0].position),
            inputs[1].note.nullifier(pgk.nk, inputs[1].position),
        ];
        let [(n1, c1), (n2, c2)] = [0, 1].map(|j| {
            create_note(
                &outputs[j].to,
                outputs[j].value,
                output_rho(nullifiers[0], j as u64 + 1),
                &Rseed::random(rng),
                memos.map(|m| &m[j]),
            )
        });
        let (notes, ciphertexts) = ([n1, n2], [c1, c2]);
        let public = TransferPublic {
            nullifiers,
            commitments: [notes[0].commitment(), notes[1].commitment()],
            public_in: amounts.public_in,
            public_out: amounts.public_out,
            fee: amounts.fee,
            dest: amounts.dest,
            deposit_ref: amounts.deposit_ref,
            ciphertext_hash: ciphertext_hash(&ciphertexts),
        };
        let signature = sk.sign(public.sighash());
        Transfer {
            public,
            pgk,
            inputs,
            outputs: notes,
            signature,
            ciphertexts,
        }
    }

    /// A dummy input owned by `sk` (value 0, fresh randomness).
    pub fn dummy_input<R: RngCore + CryptoRng>(sk: &SpendingKey, rng: &mut R) -> SpentNote {
        use ark_ff::UniformRand;
        SpentNote {
            note: Note::new(sk.owner_tag(), 0, Fr::rand(rng), rng),
            position: 0,
        }
    }

    /// Checks every rule of DESIGN §6 against `state` (plus the policy that deposits carry a
    /// reference and withdrawals a destination). `pending` says whether a nullifier is already
    /// spent by a transfer not yet in `state` (a mempool); pass `|_| false` when there is none.
    pub fn validate(
        &self,
        state: &RollupState,
        pending: impl Fn(&Fr) -> bool,
    ) -> Result<(), TransferError> {
        let addr = owner_tag(&self.pgk.ak, self.pgk.nk);
        // Rule 5 is carried by the types (u64); sums are done in u128 so nothing wraps.
        for (i, input) in self.inputs.iter().enumerate() {
            // Rule 1: owned by the signer.
            if input.note.addr != addr {
                return Err(TransferError::NotOwner { input: i });
            }
            // Rule 2: membership at the current root.
            if !input.is_dummy() {
                let present = input.position < state.notes.count()
                    && state.notes.leaf(input.position) == input.note.commitment();
                if !present {
                    return Err(TransferError::UnknownNote { input: i });
                }
            }
            // Rule 3: correct nullifier, not yet spent.
            let nf = nullifier(self.pgk.nk, input.note.commitment(), input.position);
            if nf != self.public.nullifiers[i] {
                return Err(TransferError::WrongNullifier { input: i });
            }
            if state.nullifiers.contains(nf) || pending(&nf) {
                return Err(TransferError::AlreadySpent { input: i });
            }
        }
        self.validate_state_free()
    }

    /// The rules [`Transfer::validate`] checks after its per-input loop, in its order: distinct
    /// nullifiers, output rhos and commitments, the ciphertext hash, balance, deposit/withdrawal
    /// policy, signature.
    /// None depends on the state, so a sequencer can run them before taking its state lock.
    pub fn validate_state_free(&self) -> Result<(), TransferError> {
        if self.public.nullifiers[0] == self.public.nullifiers[1] {
            return Err(TransferError::DuplicateNullifier);
        }
        // Rule 4: outputs commit to their notes with rho_j = H(nf_1, j).
        for (j, out) in self.outputs.iter().enumerate() {
            if out.rho != output_rho(self.public.nullifiers[0], j as u64 + 1) {
                return Err(TransferError::WrongOutputRho { output: j });
            }
            if out.commitment() != self.public.commitments[j] {
                return Err(TransferError::WrongCommitment { output: j });
            }
        }
        // The signed ciphertext hash names exactly these ciphertexts.
        let p = &self.public;
        if p.ciphertext_hash != ciphertext_hash(&self.ciphertexts) {
            return Err(TransferError::CiphertextMismatch);
        }
        // Rule 6: balance.
        let ins = self.inputs[0].note.value as u128
            + self.inputs[1].note.value as u128
            + p.public_in as u128;
        let outs = self.outputs[0].value as u128
            + self.outputs[1].value as u128
            + p.public_out as u128
            + p.fee as u128;
        if ins != outs {
            return Err(TransferError::Unbalanced {
                inputs: ins,
                outputs: outs,
            });
        }
        // Policy: deposits need a reference, withdrawals a destination.
        if (p.public_in > 0) != (p.deposit_ref != Fr::from(0u64)) {
            return Err(TransferError::DepositReference);
        }
        if (p.public_out > 0) != (p.dest != Fr::from(0u64)) {
            return Err(TransferError::WithdrawalDestination);
        }
        // Rule 7: signature by A over the sighash.
        self.pgk
            .ak
            .verify(p.sighash(), &self.signature)
            .map_err(|_| TransferError::BadSignature)?;
        Ok(())
    }

    /// The spender's spend-authorisation key.
    pub fn ak(&self) -> &PublicKey {
        &self.pgk.ak
    }
}

/// Why a transfer is invalid; one variant per rule of DESIGN §6.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// Rule 1.
    #[error("input {input} is not owned by the signing key")]
    NotOwner {
        /// Input index.
        input: usize,
    },
    /// Rule 2.
    #[error("input {input} is not in the note tree at its position")]
    UnknownNote {
        /// Input index.
        input: usize,
    },
    /// Rule 3: the published nullifier is not `H(DOM_NF, nk, cm, pos)`.
    #[error("nullifier {input} does not match its note")]
    WrongNullifier {
        /// Input index.
        input: usize,
    },
    /// Rule 3: already in the nullifier set (or pending).
    #[error("input {input} is already spent")]
    AlreadySpent {
        /// Input index.
        input: usize,
    },
    /// Rule 3: both inputs have the same nullifier.
    #[error("both inputs have the same nullifier")]
    DuplicateNullifier,
    /// Rule 4: `rho_j != H(nf_1, j)`.
    #[error("output {output} has the wrong rho")]
    WrongOutputRho {
        /// Output index.
        output: usize,
    },
    /// Rule 4: the published commitment does not open to the output note.
    #[error("output commitment {output} does not match its note")]
    WrongCommitment {
        /// Output index.
        output: usize,
    },
    /// Rule 6.
    #[error("inputs ({inputs}) do not equal outputs ({outputs})")]
    Unbalanced {
        /// Sum of inputs and deposit.
        inputs: u128,
        /// Sum of outputs, withdrawal and fee.
        outputs: u128,
    },
    /// Rule 7.
    #[error("signature does not verify")]
    BadSignature,
    /// The published `ciphertext_hash` is not the hash of the transfer's ciphertexts.
    #[error("ciphertext_hash does not match the note ciphertexts")]
    CiphertextMismatch,
    /// Policy: `public_in > 0` if and only if `deposit_ref != 0`.
    #[error("a deposit must carry a deposit reference, and only a deposit may")]
    DepositReference,
    /// Policy: `public_out > 0` if and only if `dest != 0`.
    #[error("a withdrawal must carry a destination, and only a withdrawal may")]
    WithdrawalDestination,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{decrypt_note, NOTE_CIPHERTEXT_LEN_COMPACT, NOTE_CIPHERTEXT_LEN_MEMO};
    use rand::SeedableRng;

    /// A transfer from `alice`'s two dummies paying `bob` 0 and `alice` 0, optionally with memos;
    /// each recipient finds its note with the rho it derives from the public `nf_1`.
    #[test]
    fn outputs_decrypt_with_their_public_rho_with_and_without_memos() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(21);
        let alice = SpendingKey::random(&mut rng);
        let bob = SpendingKey::random(&mut rng);
        let inputs = [
            Transfer::dummy_input(&alice, &mut rng),
            Transfer::dummy_input(&alice, &mut rng),
        ];
        let outputs = [
            OutputSpec {
                to: bob.payment_address(),
                value: 0,
            },
            OutputSpec {
                to: alice.payment_address(),
                value: 0,
            },
        ];
        let memos = [[1u8; MEMO_LEN], [2u8; MEMO_LEN]];
        let plain = Transfer::create(&alice, inputs, outputs, PublicAmounts::default(), &mut rng);
        let memo = Transfer::create_with_memos(
            &alice,
            inputs,
            outputs,
            &memos,
            PublicAmounts::default(),
            &mut rng,
        );
        for (t, len, expected) in [
            (&plain, NOTE_CIPHERTEXT_LEN_COMPACT, [None, None]),
            (&memo, NOTE_CIPHERTEXT_LEN_MEMO, memos.map(Some)),
        ] {
            assert_eq!(t.validate_state_free(), Ok(()));
            for (j, owner) in [&bob, &alice].into_iter().enumerate() {
                assert_eq!(t.ciphertexts[j].len(), len);
                let rho = output_rho(t.public.nullifiers[0], j as u64 + 1);
                let (note, m) =
                    decrypt_note(owner, &t.ciphertexts[j], rho, t.public.commitments[j]).unwrap();
                assert_eq!((note, m), (t.outputs[j], expected[j]));
            }
        }
    }
}
