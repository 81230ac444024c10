//! circomlib-compatible Poseidon over the BN254 scalar field (DESIGN §2), natively.
//!
//! The round constants and MDS matrices are circomlib's, taken from the `light-poseidon` crate once
//! and cached per width in [`PoseidonConstants`]; the gadget in [`gadget`] uses the very same
//! constants, so native and in-circuit hashes agree by construction (and by property tests).

pub mod gadget;
mod sparse;

use std::sync::OnceLock;

use ark_bn254::Fr;
use ark_ff::Zero;

use crate::constants::POSEIDON_MAX_INPUTS;
use sparse::SparsePermutation;

/// Round constants and MDS matrix of one circomlib Poseidon width (`t = inputs + 1`).
#[derive(Debug)]
pub struct PoseidonConstants {
    /// State width `t`.
    pub width: usize,
    /// Full rounds (always 8: 4 before and 4 after the partial rounds).
    pub full_rounds: usize,
    /// Partial rounds (56/57/56/60/60/63/64/63 for t = 2..9).
    pub partial_rounds: usize,
    /// Round constants, `width` per round, round-major.
    pub round_constants: Vec<Fr>,
    /// MDS matrix, `mds[i][j]` multiplies state element `j` into output `i`.
    pub mds: Vec<Vec<Fr>>,
}

impl PoseidonConstants {
    /// Total number of rounds.
    pub fn rounds(&self) -> usize {
        self.full_rounds + self.partial_rounds
    }

    /// Whether `round` applies the S-box to every state element.
    pub fn is_full_round(&self, round: usize) -> bool {
        let half = self.full_rounds / 2;
        round < half || round >= half + self.partial_rounds
    }

    /// Round constant for state element `i` in `round`.
    pub fn round_constant(&self, round: usize, i: usize) -> Fr {
        self.round_constants[round * self.width + i]
    }
}

/// The constants for `n_inputs` inputs (1..=8). Panics on an unsupported arity, which is a
/// programming error: every call site hashes a fixed number of elements.
pub fn constants(n_inputs: usize) -> &'static PoseidonConstants {
    static TABLE: [OnceLock<PoseidonConstants>; POSEIDON_MAX_INPUTS] =
        [const { OnceLock::new() }; POSEIDON_MAX_INPUTS];
    assert!(
        (1..=POSEIDON_MAX_INPUTS).contains(&n_inputs),
        "Poseidon takes 1..=8 inputs, got {n_inputs}"
    );
    TABLE[n_inputs - 1].get_or_init(|| {
        let width = n_inputs + 1;
        let p = light_poseidon::parameters::bn254_x5::get_poseidon_parameters::<Fr>(width as u8)
            .expect("circomlib parameters exist for widths 2..=9");
        assert_eq!(p.alpha, 5);
        assert_eq!(p.width, width);
        PoseidonConstants {
            width,
            full_rounds: p.full_rounds,
            partial_rounds: p.partial_rounds,
            round_constants: p.ark,
            mds: p.mds,
        }
    })
}

/// The sparse-round form of the permutation for `n_inputs` inputs, cached.
fn sparse_permutation(n_inputs: usize) -> &'static SparsePermutation {
    static TABLE: [OnceLock<SparsePermutation>; POSEIDON_MAX_INPUTS] =
        [const { OnceLock::new() }; POSEIDON_MAX_INPUTS];
    TABLE[n_inputs - 1].get_or_init(|| SparsePermutation::new(constants(n_inputs)))
}

fn hash_width<const T: usize>(inputs: &[Fr], trace: &mut impl FnMut([Fr; 3])) -> Fr {
    let mut state = [Fr::zero(); T];
    state[1..].copy_from_slice(inputs);
    sparse_permutation(T - 1).permute_traced(&mut state, trace);
    state[0]
}

/// [`poseidon`], reporting `[x^2, x^4, x^5]` of every S-box to `trace` in the gadget's order
/// (see `SparsePermutation::permute_traced`): the witness of [`gadget::poseidon_var`].
pub(crate) fn poseidon_traced(inputs: &[Fr], trace: &mut impl FnMut([Fr; 3])) -> Fr {
    match inputs.len() {
        1 => hash_width::<2>(inputs, trace),
        2 => hash_width::<3>(inputs, trace),
        3 => hash_width::<4>(inputs, trace),
        4 => hash_width::<5>(inputs, trace),
        5 => hash_width::<6>(inputs, trace),
        6 => hash_width::<7>(inputs, trace),
        7 => hash_width::<8>(inputs, trace),
        8 => hash_width::<9>(inputs, trace),
        n => panic!("Poseidon takes 1..=8 inputs, got {n}"),
    }
}

/// circomlib `Poseidon(n)` of 1..=8 field elements: one permutation of width `n + 1`, state
/// `[0, inputs..]`, output the first state element. Computed with sparse partial rounds
/// ([`sparse`]); the gadget uses the textbook rounds of [`constants`].
pub fn poseidon(inputs: &[Fr]) -> Fr {
    poseidon_traced(inputs, &mut |_| {})
}

/// `H(a, b)`: two-input Poseidon, the tree node hash.
pub fn hash2(a: Fr, b: Fr) -> Fr {
    poseidon(&[a, b])
}

/// `H(x1..xn)` for any `n >= 1` (DESIGN §2): one permutation for `n <= 8`; beyond, the first
/// seven inputs and the hash of the rest, `H(x1..x7, H(x8..xn))` (recursively). For the
/// 10-input sighash that is one width-9 and one width-4 permutation (669 constraints) rather
/// than hashing two chunks and then their hashes (885).
pub fn hash_many(inputs: &[Fr]) -> Fr {
    assert!(!inputs.is_empty(), "hash_many takes at least one input");
    if inputs.len() <= POSEIDON_MAX_INPUTS {
        return poseidon(inputs);
    }
    let mut outer = [Fr::zero(); POSEIDON_MAX_INPUTS];
    outer[..POSEIDON_MAX_INPUTS - 1].copy_from_slice(&inputs[..POSEIDON_MAX_INPUTS - 1]);
    outer[POSEIDON_MAX_INPUTS - 1] = hash_many(&inputs[POSEIDON_MAX_INPUTS - 1..]);
    poseidon(&outer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::{BigInteger, PrimeField};
    use light_poseidon::{Poseidon, PoseidonHasher};
    use proptest::prelude::*;

    /// Parses a hex field element. Inputs are reduced modulo r as circomlibjs' `F.e` does (one
    /// vector's "p - 1" input, 0x30644e..725500, is above r); outputs must be canonical.
    pub(crate) fn fr_from_hex_reduced(s: &str) -> Fr {
        let s = s.trim_start_matches("0x");
        let s = if s.len() % 2 == 1 {
            format!("0{s}")
        } else {
            s.to_string()
        };
        Fr::from_be_bytes_mod_order(&hex::decode(&s).unwrap())
    }

    pub(crate) fn fr_from_hex(s: &str) -> Fr {
        let s = s.trim_start_matches("0x");
        let s = if s.len() % 2 == 1 {
            format!("0{s}")
        } else {
            s.to_string()
        };
        let bytes = hex::decode(&s).unwrap();
        assert!(bytes.len() <= 32);
        let mut padded = vec![0u8; 32 - bytes.len()];
        padded.extend_from_slice(&bytes);
        let f = Fr::from_be_bytes_mod_order(&padded);
        // the vectors are canonical: reject anything that wrapped
        assert_eq!(
            f.into_bigint().to_bytes_be(),
            padded,
            "non-canonical vector {s}"
        );
        f
    }

    #[test]
    fn issue_vector_poseidon_1_2() {
        assert_eq!(
            poseidon(&[Fr::from(1u64), Fr::from(2u64)]),
            fr_from_hex("0x115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a")
        );
    }

    #[test]
    fn circomlibjs_reference_vectors() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/poseidon.json");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let vectors = json["vectors"].as_array().unwrap();
        assert!(vectors.len() >= 32);
        let mut widths = std::collections::BTreeSet::new();
        for v in vectors {
            let inputs: Vec<Fr> = v["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| fr_from_hex_reduced(x.as_str().unwrap()))
                .collect();
            let expected = fr_from_hex(v["output"].as_str().unwrap());
            assert_eq!(poseidon(&inputs), expected, "inputs {:?}", v["inputs"]);
            widths.insert(inputs.len());
        }
        assert_eq!(
            widths.into_iter().collect::<Vec<_>>(),
            (1..=8).collect::<Vec<_>>()
        );
    }

    #[test]
    fn hash_many_splits_beyond_eight() {
        let xs: Vec<Fr> = (1..=10u64).map(Fr::from).collect();
        let mut outer = xs[..7].to_vec();
        outer.push(poseidon(&xs[7..]));
        let expected = poseidon(&outer);
        assert_eq!(hash_many(&xs), expected);
        assert_eq!(hash_many(&xs[..3]), poseidon(&xs[..3]));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn agrees_with_light_poseidon(seed in any::<u64>(), n in 1usize..=8) {
            use rand::{Rng, SeedableRng};
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let xs: Vec<Fr> = (0..n).map(|_| rng.gen()).collect();
            let mut reference = Poseidon::<Fr>::new_circom(n).unwrap();
            prop_assert_eq!(poseidon(&xs), reference.hash(&xs).unwrap());
        }
    }
}
