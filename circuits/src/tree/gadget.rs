//! Merkle-path gadgets over [`hash2_var`]: the root from a leaf, its position bits and siblings;
//! two roots (old and new leaf) over the same path; and the root of an aligned subtree.
//!
//! At each level the (left, right) pair is selected with one constraint,
//! `bit * (sib - cur) = left - cur`, and `right = cur + sib - left` for free; a level costs
//! 1 + 240 constraints (a constant bit costs none). Callers own the position bits: they must be
//! booleans tied to the position, e.g. by [`crate::gadgets::comparison::enforce_range_bits`].

use ark_bn254::Fr;
use ark_r1cs_std::{boolean::Boolean, fields::fp::AllocatedFp, fields::fp::FpVar, R1CSVar};
use ark_relations::r1cs::{LinearCombination, SynthesisError};

use crate::gadgets::{lc_of, var_of_lc};
use crate::poseidon::gadget::hash2_var;

/// `(left, right)` = `(cur, sib)` if `bit` is 0, `(sib, cur)` if it is 1: at most one constraint.
pub fn order_pair(
    cur: &FpVar<Fr>,
    sib: &FpVar<Fr>,
    bit: &Boolean<Fr>,
) -> Result<(FpVar<Fr>, FpVar<Fr>), SynthesisError> {
    let cs = cur.cs().or(sib.cs()).or(bit.cs());
    let value = |v: &FpVar<Fr>| v.value().ok();
    match bit {
        Boolean::Constant(false) => return Ok((cur.clone(), sib.clone())),
        Boolean::Constant(true) => return Ok((sib.clone(), cur.clone())),
        Boolean::Var(_) => {}
    }
    let (cur_v, sib_v, bit_v) = (value(cur), value(sib), bit.value().ok());
    let left_v = bit_v
        .zip(cur_v)
        .zip(sib_v)
        .map(|((b, c), s)| if b { s } else { c });
    let right_v = bit_v
        .zip(cur_v)
        .zip(sib_v)
        .map(|((b, c), s)| if b { c } else { s });
    let (cur_lc, sib_lc) = (lc_of(cur), lc_of(sib));
    if let (FpVar::Constant(c), FpVar::Constant(s)) = (cur, sib) {
        // bit * (s - c) is linear in the bit
        let left_lc = cur_lc.clone() + bit.lc() * (*s - c);
        let left = var_of_lc(&cs, left_lc.clone(), left_v)?;
        let right = var_of_lc(&cs, cur_lc + &sib_lc - &left_lc, right_v)?;
        return Ok((left, right));
    }
    let left_var = cs.new_witness_variable(|| left_v.ok_or(SynthesisError::AssignmentMissing))?;
    cs.enforce_constraint(
        bit.lc(),
        sib_lc.clone() - &cur_lc,
        LinearCombination::from(left_var) - &cur_lc,
    )?;
    let left = FpVar::Var(AllocatedFp::new(left_v, left_var, cs.clone()));
    let right = var_of_lc(&cs, cur_lc + &sib_lc - left_var, right_v)?;
    Ok((left, right))
}

/// The root reached from `leaf` at the position with little-endian `position_bits` (one per
/// level) through `siblings` (leaf-to-root order).
pub fn root_from_path_var(
    leaf: &FpVar<Fr>,
    position_bits: &[Boolean<Fr>],
    siblings: &[FpVar<Fr>],
) -> Result<FpVar<Fr>, SynthesisError> {
    assert_eq!(
        position_bits.len(),
        siblings.len(),
        "one position bit per sibling"
    );
    let mut cur = leaf.clone();
    for (bit, sib) in position_bits.iter().zip(siblings) {
        let (left, right) = order_pair(&cur, sib, bit)?;
        cur = hash2_var(&left, &right)?;
    }
    Ok(cur)
}

/// The roots reached from `old_leaf` and from `new_leaf` at the same position through the same
/// siblings: verifying a leaf and computing the root after rewriting it. The bits and siblings are
/// shared; each root costs what [`root_from_path_var`] does.
pub fn roots_from_path_var(
    old_leaf: &FpVar<Fr>,
    new_leaf: &FpVar<Fr>,
    position_bits: &[Boolean<Fr>],
    siblings: &[FpVar<Fr>],
) -> Result<(FpVar<Fr>, FpVar<Fr>), SynthesisError> {
    assert_eq!(
        position_bits.len(),
        siblings.len(),
        "one position bit per sibling"
    );
    let (mut old, mut new) = (old_leaf.clone(), new_leaf.clone());
    for (bit, sib) in position_bits.iter().zip(siblings) {
        let (l, r) = order_pair(&old, sib, bit)?;
        old = hash2_var(&l, &r)?;
        let (l, r) = order_pair(&new, sib, bit)?;
        new = hash2_var(&l, &r)?;
    }
    Ok((old, new))
}

/// The root of the subtree whose leaves are `leaves` (a power-of-two count): `len - 1` hashes.
pub fn subtree_root_var(leaves: &[FpVar<Fr>]) -> Result<FpVar<Fr>, SynthesisError> {
    assert!(
        !leaves.is_empty() && leaves.len().is_power_of_two(),
        "a subtree has a power-of-two number of leaves, got {}",
        leaves.len()
    );
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = level
            .chunks_exact(2)
            .map(|p| hash2_var(&p[0], &p[1]))
            .collect::<Result<_, _>>()?;
    }
    Ok(level.pop().expect("one root"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::SparseMerkleTree;
    use ark_r1cs_std::{alloc::AllocVar, eq::EqGadget};
    use ark_relations::r1cs::{ConstraintSystem, ConstraintSystemRef};
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    struct Alloc {
        leaf: FpVar<Fr>,
        bits: Vec<Boolean<Fr>>,
        siblings: Vec<FpVar<Fr>>,
    }

    fn alloc(cs: &ConstraintSystemRef<Fr>, tree: &SparseMerkleTree, pos: u64) -> Alloc {
        let path = tree.path(pos).unwrap();
        Alloc {
            leaf: FpVar::new_witness(cs.clone(), || Ok(tree.leaf(pos))).unwrap(),
            bits: (0..tree.depth())
                .map(|i| Boolean::new_witness(cs.clone(), || Ok((pos >> i) & 1 == 1)).unwrap())
                .collect(),
            siblings: path
                .siblings
                .iter()
                .map(|s| FpVar::new_witness(cs.clone(), || Ok(*s)).unwrap())
                .collect(),
        }
    }

    fn random_tree(rng: &mut impl Rng, depth: usize, n: usize) -> SparseMerkleTree {
        let mut t = SparseMerkleTree::new(depth);
        for _ in 0..n {
            let pos = rng.gen_range(0..t.capacity());
            t.set_leaf(pos, rng.gen()).unwrap();
        }
        t
    }

    #[test]
    fn per_level_cost() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let depth = 32;
        let tree = random_tree(&mut rng, depth, 10);
        let cs = ConstraintSystem::<Fr>::new_ref();
        let a = alloc(&cs, &tree, 12345);
        let before = cs.num_constraints();
        let root = root_from_path_var(&a.leaf, &a.bits, &a.siblings).unwrap();
        let one = cs.num_constraints() - before;
        let new_leaf = FpVar::new_witness(cs.clone(), || Ok(Fr::from(9u64))).unwrap();
        let before = cs.num_constraints();
        let (old, _new) = roots_from_path_var(&a.leaf, &new_leaf, &a.bits, &a.siblings).unwrap();
        let two = cs.num_constraints() - before;
        eprintln!(
            "Merkle path, D = {depth}: {one} constraints ({} per level); old+new roots: {two}",
            one / depth
        );
        assert_eq!(one, depth * (1 + 240));
        assert_eq!(two, 2 * one);
        assert_eq!(root.value().unwrap(), tree.root());
        assert_eq!(old.value().unwrap(), tree.root());
        assert!(cs.is_satisfied().unwrap());
    }

    #[test]
    fn subtree_root_matches_native() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        for k in 0..=4usize {
            let leaves: Vec<Fr> = (0..1 << k).map(|_| rng.gen()).collect();
            let mut t = SparseMerkleTree::new(6);
            t.set_subtree(0, &leaves).unwrap();
            let cs = ConstraintSystem::<Fr>::new_ref();
            let vars: Vec<FpVar<Fr>> = leaves
                .iter()
                .map(|x| FpVar::new_witness(cs.clone(), || Ok(*x)).unwrap())
                .collect();
            let root = subtree_root_var(&vars).unwrap();
            assert_eq!(root.value().unwrap(), t.node(k, 0));
            assert_eq!(cs.num_constraints(), ((1 << k) - 1) * 240);
            assert!(cs.is_satisfied().unwrap());
        }
    }

    #[test]
    fn constant_bits_and_constants_need_no_select_constraint() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let tree = random_tree(&mut rng, 4, 5);
        let pos = 6u64;
        let path = tree.path(pos).unwrap();
        let cs = ConstraintSystem::<Fr>::new_ref();
        let leaf = FpVar::new_witness(cs.clone(), || Ok(tree.leaf(pos))).unwrap();
        let bits: Vec<Boolean<Fr>> = (0..4)
            .map(|i| Boolean::constant((pos >> i) & 1 == 1))
            .collect();
        let sibs: Vec<FpVar<Fr>> = path.siblings.iter().map(|s| FpVar::Constant(*s)).collect();
        let root = root_from_path_var(&leaf, &bits, &sibs).unwrap();
        assert_eq!(root.value().unwrap(), tree.root());
        // no select constraints; each hash has one constant input, whose first S-box is folded
        assert_eq!(cs.num_constraints(), 4 * (240 - 3));
        assert!(cs.is_satisfied().unwrap());
        // fully constant: computed natively
        let root = root_from_path_var(&FpVar::Constant(tree.leaf(pos)), &bits, &sibs).unwrap();
        assert!(root.is_constant());
        assert_eq!(root.value().unwrap(), tree.root());
    }

    #[test]
    fn wrong_sibling_or_bit_is_unsatisfied() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
        let tree = random_tree(&mut rng, 8, 20);
        let pos = 77u64;
        for tamper in 0..3 {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let mut a = alloc(&cs, &tree, pos);
            match tamper {
                0 => {}
                1 => a.siblings[3] = FpVar::new_witness(cs.clone(), || Ok(Fr::from(1u64))).unwrap(),
                _ => {
                    a.bits[5] =
                        Boolean::new_witness(cs.clone(), || Ok((pos >> 5) & 1 == 0)).unwrap()
                }
            }
            let root = root_from_path_var(&a.leaf, &a.bits, &a.siblings).unwrap();
            let expected = FpVar::new_input(cs.clone(), || Ok(tree.root())).unwrap();
            root.enforce_equal(&expected).unwrap();
            assert_eq!(cs.is_satisfied().unwrap(), tamper == 0, "tamper {tamper}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn gadget_agrees_with_native(seed in any::<u64>(), depth in 4usize..=16, n in 1usize..12) {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut tree = random_tree(&mut rng, depth, n);
            let pos = if rng.gen_bool(0.5) { rng.gen_range(0..tree.capacity()) } else {
                let p = rng.gen_range(0..tree.capacity());
                tree.set_leaf(p, rng.gen()).unwrap();
                p
            };
            let cs = ConstraintSystem::<Fr>::new_ref();
            let a = alloc(&cs, &tree, pos);
            let root = root_from_path_var(&a.leaf, &a.bits, &a.siblings).unwrap();
            prop_assert_eq!(root.value().unwrap(), tree.root());

            let new_value: Fr = rng.gen();
            let new_leaf = FpVar::new_witness(cs.clone(), || Ok(new_value)).unwrap();
            let (old, new) = roots_from_path_var(&a.leaf, &new_leaf, &a.bits, &a.siblings).unwrap();
            let old_root = tree.root();
            tree.set_leaf(pos, new_value).unwrap();
            prop_assert_eq!(old.value().unwrap(), old_root);
            prop_assert_eq!(new.value().unwrap(), tree.root());
            let expected = FpVar::new_input(cs.clone(), || Ok(tree.root())).unwrap();
            new.enforce_equal(&expected).unwrap();
            prop_assert!(cs.is_satisfied().unwrap());
        }
    }
}
