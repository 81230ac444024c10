//! Merkle-path gadgets for the 4-ary trees over [`poseidon_var`] with 4 inputs: the root from a
//! leaf, its position bits and siblings; two roots (old and new leaf) over the same path; and
//! the old and new roots around an aligned subtree append.
//!
//! A level takes the position's two little-endian bits `(b0, b1)` (its base-4 digit) and the
//! three siblings `(s0, s1, s2)` in child order. With `p = b0 b1` (one constraint, shared by
//! the paths of [`roots_from_path_var`]) and `i0 = (1 - b0)(1 - b1) = 1 - b0 - b1 + p`:
//!
//! ```text
//! c0 = s0 + i0 (cur - s0)            1 constraint
//! c3 = s2 + p (cur - s2)             1
//! c1 = s0 - c0 + cur + b1 (s1 - cur) 1
//! c2 = cur + s0 + s1 + s2 - c0 - c1 - c3   free
//! ```
//!
//! so a level costs 1 + 3 + 297 constraints (Poseidon with 4 inputs), against 2 (1 + 240) for
//! the two binary levels it replaces. Constant bits cost no select constraint (products with a
//! constant are linear). Callers own the position bits: they must be booleans tied to the
//! position, e.g. by [`crate::gadgets::comparison::enforce_range_bits`].

use ark_bn254::Fr;
use ark_r1cs_std::{boolean::Boolean, fields::fp::FpVar, fields::FieldVar};
use ark_relations::r1cs::SynthesisError;

use super::{empty_root, ARITY};
use crate::poseidon::gadget::poseidon_var;

/// `x` if `b`, else `y`: `y + b (x - y)`, one constraint unless `b` or `x - y` is constant.
pub fn select_var(
    b: &Boolean<Fr>,
    x: &FpVar<Fr>,
    y: &FpVar<Fr>,
) -> Result<FpVar<Fr>, SynthesisError> {
    match b {
        Boolean::Constant(true) => Ok(x.clone()),
        Boolean::Constant(false) => Ok(y.clone()),
        Boolean::Var(_) => Ok(y + FpVar::from(b.clone()) * (x - y)),
    }
}

/// The children of a level whose digit has bits `(b0, b1)` and `p = b0 b1`: `cur` at child
/// `b0 + 2 b1`, the siblings around it in order. Three constraints (none for constant bits).
pub fn arrange_var(
    cur: &FpVar<Fr>,
    siblings: &[FpVar<Fr>; 3],
    b0: &Boolean<Fr>,
    b1: &Boolean<Fr>,
    p: &Boolean<Fr>,
) -> Result<[FpVar<Fr>; ARITY], SynthesisError> {
    let [s0, s1, s2] = siblings;
    if let (Boolean::Constant(x), Boolean::Constant(y)) = (b0, b1) {
        let digit = *x as usize + 2 * *y as usize;
        let mut others = siblings.iter();
        return Ok([0, 1, 2, 3].map(|j| {
            if j == digit {
                cur.clone()
            } else {
                others.next().expect("three siblings").clone()
            }
        }));
    }
    let (b1f, pf) = (FpVar::from(b1.clone()), FpVar::from(p.clone()));
    let i0 = FpVar::one() - FpVar::from(b0.clone()) - &b1f + &pf;
    let c0 = s0 + i0 * (cur - s0);
    let c3 = s2 + pf * (cur - s2);
    let c1 = s0 - &c0 + cur + b1f * (s1 - cur);
    let c2 = cur + s0 + s1 + s2 - &c0 - &c1 - &c3;
    Ok([c0, c1, c2, c3])
}

/// Per level: the digit's bits `(b0, b1)` and `p = b0 b1` (one constraint for two variables).
fn digits(bits: &[Boolean<Fr>]) -> impl Iterator<Item = [Boolean<Fr>; 3]> + '_ {
    bits.chunks_exact(2)
        .map(|b| [b[0].clone(), b[1].clone(), &b[0] & &b[1]])
}

fn check_lengths(bits: &[Boolean<Fr>], siblings: &[[FpVar<Fr>; 3]]) {
    assert_eq!(
        bits.len(),
        2 * siblings.len(),
        "two position bits per level"
    );
}

/// The root reached from `leaf` at the position with little-endian `position_bits` (two per
/// level) through `siblings` (leaf-to-root order, three per level).
pub fn root_from_path_var(
    leaf: &FpVar<Fr>,
    position_bits: &[Boolean<Fr>],
    siblings: &[[FpVar<Fr>; 3]],
) -> Result<FpVar<Fr>, SynthesisError> {
    check_lengths(position_bits, siblings);
    let mut cur = leaf.clone();
    for (d, sibs) in digits(position_bits).zip(siblings) {
        let [b0, b1, p] = d;
        cur = poseidon_var(&arrange_var(&cur, sibs, &b0, &b1, &p)?)?;
    }
    Ok(cur)
}

/// The roots reached from `old_leaf` and from `new_leaf` at the same position through the same
/// siblings: verifying a leaf and computing the root after rewriting it. The bits, siblings and
/// each level's `p = b0 b1` are shared.
pub fn roots_from_path_var(
    old_leaf: &FpVar<Fr>,
    new_leaf: &FpVar<Fr>,
    position_bits: &[Boolean<Fr>],
    siblings: &[[FpVar<Fr>; 3]],
) -> Result<(FpVar<Fr>, FpVar<Fr>), SynthesisError> {
    check_lengths(position_bits, siblings);
    let (mut old, mut new) = (old_leaf.clone(), new_leaf.clone());
    for (d, sibs) in digits(position_bits).zip(siblings) {
        let [b0, b1, p] = d;
        old = poseidon_var(&arrange_var(&old, sibs, &b0, &b1, &p)?)?;
        new = poseidon_var(&arrange_var(&new, sibs, &b0, &b1, &p)?)?;
    }
    Ok((old, new))
}

/// In-circuit [`super::subtree_roots`]: the 4-ary roots of `2^m` leaves, one node (`m` even) or
/// two halves (`m` odd).
pub fn subtree_roots_var(leaves: &[FpVar<Fr>]) -> Result<Vec<FpVar<Fr>>, SynthesisError> {
    assert!(
        !leaves.is_empty() && leaves.len().is_power_of_two(),
        "a subtree has a power-of-two number of leaves, got {}",
        leaves.len()
    );
    let mut level = leaves.to_vec();
    while level.len() >= ARITY {
        level = level
            .chunks_exact(ARITY)
            .map(poseidon_var)
            .collect::<Result<_, _>>()?;
    }
    Ok(level)
}

/// An aligned subtree append of `leaves` (`2^m`, a power of two) at subtree number `index`
/// (`start >> m`, little-endian `index_bits`, `D - m` of them) through a [`super::SubtreePath`]
/// (`pair` for odd `m`, then `siblings`): returns the root with the slot empty and the root with
/// `leaves` written, over the same siblings. The caller enforces the first to be the current
/// root.
///
/// For even `m` the subtree is one node at level `m / 2`. For odd `m` it is two halves at level
/// `k = (m - 1) / 2`, children `(0, 1)` (`index_bits[0] = 0`) or `(2, 3)` of their parent; the
/// parent was `H(E, E, E, E)` resp. `H(X0, X1, E, E)` and becomes `H(S0, S1, E, E)` resp.
/// `H(X0, X1, S0, S1)` (`E` the empty root of level `k`, `(X0, X1)` the pair): everything after
/// an append's start is empty in both trees, so children `(2, 3)` of a start at child 0 are too.
pub fn subtree_update_var(
    leaves: &[FpVar<Fr>],
    index_bits: &[Boolean<Fr>],
    pair: Option<&[FpVar<Fr>; 2]>,
    siblings: &[[FpVar<Fr>; 3]],
) -> Result<(FpVar<Fr>, FpVar<Fr>), SynthesisError> {
    let roots = subtree_roots_var(leaves)?;
    let m = leaves.len().trailing_zeros() as usize;
    match (m % 2, pair, roots.as_slice()) {
        (0, None, [top]) => {
            let empty = FpVar::Constant(empty_root(m / 2));
            roots_from_path_var(&empty, top, index_bits, siblings)
        }
        (1, Some([x0, x1]), [s0, s1]) => {
            let e = FpVar::Constant(empty_root(m / 2));
            let b = &index_bits[0];
            let old = poseidon_var(&[
                select_var(b, x0, &e)?,
                select_var(b, x1, &e)?,
                e.clone(),
                e.clone(),
            ])?;
            let new = poseidon_var(&[
                select_var(b, x0, s0)?,
                select_var(b, x1, s1)?,
                select_var(b, s0, &e)?,
                select_var(b, s1, &e)?,
            ])?;
            roots_from_path_var(&old, &new, &index_bits[1..], siblings)
        }
        _ => panic!("a subtree of 2^{m} leaves needs a pair exactly when {m} is odd"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{subtree_roots, SparseMerkleTree, SubtreePath};
    use ark_r1cs_std::{alloc::AllocVar, eq::EqGadget, R1CSVar};
    use ark_relations::r1cs::{ConstraintSystem, ConstraintSystemRef};
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    struct Alloc {
        leaf: FpVar<Fr>,
        bits: Vec<Boolean<Fr>>,
        siblings: Vec<[FpVar<Fr>; 3]>,
    }

    fn fr_var(cs: &ConstraintSystemRef<Fr>, x: Fr) -> FpVar<Fr> {
        FpVar::new_witness(cs.clone(), || Ok(x)).unwrap()
    }

    fn bits_var(cs: &ConstraintSystemRef<Fr>, x: u64, n: usize) -> Vec<Boolean<Fr>> {
        (0..n)
            .map(|i| Boolean::new_witness(cs.clone(), || Ok((x >> i) & 1 == 1)).unwrap())
            .collect()
    }

    fn levels_var(cs: &ConstraintSystemRef<Fr>, levels: &[[Fr; 3]]) -> Vec<[FpVar<Fr>; 3]> {
        levels.iter().map(|l| l.map(|s| fr_var(cs, s))).collect()
    }

    fn alloc(cs: &ConstraintSystemRef<Fr>, tree: &SparseMerkleTree, pos: u64) -> Alloc {
        let path = tree.path(pos).unwrap();
        Alloc {
            leaf: fr_var(cs, tree.leaf(pos)),
            bits: bits_var(cs, pos, tree.depth()),
            siblings: levels_var(cs, &path.siblings),
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
        let new_leaf = fr_var(&cs, Fr::from(9u64));
        let before = cs.num_constraints();
        let (old, _new) = roots_from_path_var(&a.leaf, &new_leaf, &a.bits, &a.siblings).unwrap();
        let two = cs.num_constraints() - before;
        let levels = depth / 2;
        eprintln!(
            "4-ary Merkle path, D = {depth}: {one} constraints ({} per level); old+new roots: {two}",
            one / levels
        );
        assert_eq!(one, levels * (1 + 3 + 297));
        assert_eq!(two, levels * (1 + 2 * (3 + 297)));
        assert_eq!(root.value().unwrap(), tree.root());
        assert_eq!(old.value().unwrap(), tree.root());
        assert!(cs.is_satisfied().unwrap());
    }

    #[test]
    fn every_digit_arranges_like_native() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let sibs = [1u64, 2, 3].map(Fr::from);
        let cur = Fr::from(9u64);
        for digit in 0..4usize {
            let bits = bits_var(&cs, digit as u64, 2);
            let p = &bits[0] & &bits[1];
            let sv = sibs.map(|s| fr_var(&cs, s));
            let got = arrange_var(&fr_var(&cs, cur), &sv, &bits[0], &bits[1], &p).unwrap();
            let want = crate::tree::arrange(cur, &sibs, digit);
            for j in 0..4 {
                assert_eq!(got[j].value().unwrap(), want[j], "digit {digit} child {j}");
            }
            // constant bits give the same arrangement without constraints
            let before = cs.num_constraints();
            let cb = [digit & 1 == 1, digit & 2 == 2].map(Boolean::constant);
            let got =
                arrange_var(&fr_var(&cs, cur), &sv, &cb[0], &cb[1], &(&cb[0] & &cb[1])).unwrap();
            assert_eq!(cs.num_constraints(), before);
            for j in 0..4 {
                assert_eq!(got[j].value().unwrap(), want[j]);
            }
        }
        assert!(cs.is_satisfied().unwrap());
    }

    #[test]
    fn subtree_roots_match_native() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        for m in 0..=5usize {
            let leaves: Vec<Fr> = (0..1 << m).map(|_| rng.gen()).collect();
            let cs = ConstraintSystem::<Fr>::new_ref();
            let vars: Vec<FpVar<Fr>> = leaves.iter().map(|x| fr_var(&cs, *x)).collect();
            let roots = subtree_roots_var(&vars).unwrap();
            let native = subtree_roots(&leaves);
            assert_eq!(roots.len(), native.len());
            for (r, n) in roots.iter().zip(&native) {
                assert_eq!(r.value().unwrap(), *n);
            }
            // (4^(m/2) - 1) / 3 nodes per root
            let per_root = ((1usize << (2 * (m / 2))) - 1) / 3;
            assert_eq!(cs.num_constraints(), native.len() * per_root * 297);
            assert!(cs.is_satisfied().unwrap());
        }
    }

    #[test]
    fn constant_bits_and_constants_need_no_select_constraint() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let tree = random_tree(&mut rng, 8, 5);
        let pos = 0b10_01_11_10u64;
        let path = tree.path(pos).unwrap();
        let cs = ConstraintSystem::<Fr>::new_ref();
        let leaf = fr_var(&cs, tree.leaf(pos));
        let bits: Vec<Boolean<Fr>> = (0..8)
            .map(|i| Boolean::constant((pos >> i) & 1 == 1))
            .collect();
        let sibs: Vec<[FpVar<Fr>; 3]> = path
            .siblings
            .iter()
            .map(|l| l.map(FpVar::Constant))
            .collect();
        let root = root_from_path_var(&leaf, &bits, &sibs).unwrap();
        assert_eq!(root.value().unwrap(), tree.root());
        // no select constraints; each hash has three constant inputs, whose first S-boxes fold
        assert_eq!(cs.num_constraints(), 4 * (297 - 3 * 3));
        assert!(cs.is_satisfied().unwrap());
        // fully constant: computed natively
        let root = root_from_path_var(&FpVar::Constant(tree.leaf(pos)), &bits, &sibs).unwrap();
        assert!(root.is_constant());
        assert_eq!(root.value().unwrap(), tree.root());
    }

    #[test]
    fn wrong_sibling_bit_or_order_is_unsatisfied() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
        let tree = random_tree(&mut rng, 8, 40);
        let pos = 0b01_10_11_01u64;
        for tamper in 0..6 {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let mut a = alloc(&cs, &tree, pos);
            match tamper {
                0 => {}
                1 => a.siblings[1][2] = fr_var(&cs, Fr::from(1u64)),
                // flip the low or the high bit of a digit
                2 => a.bits[4] = Boolean::new_witness(cs.clone(), || Ok(true)).unwrap(),
                3 => a.bits[3] = Boolean::new_witness(cs.clone(), || Ok(false)).unwrap(),
                // swap two siblings (children out of order)
                4 => a.siblings[2].swap(0, 1),
                _ => a.siblings.swap(0, 1),
            }
            let root = root_from_path_var(&a.leaf, &a.bits, &a.siblings).unwrap();
            let expected = FpVar::new_input(cs.clone(), || Ok(tree.root())).unwrap();
            root.enforce_equal(&expected).unwrap();
            assert_eq!(cs.is_satisfied().unwrap(), tamper == 0, "tamper {tamper}");
        }
    }

    /// Builds a tree with leaves below `start` filled, appends `2^m` leaves at `start` in the
    /// circuit and natively; checks the roots agree and the CS is satisfied iff `honest`.
    fn append_case(seed: u64, depth: usize, m: usize, start: u64, tamper: u8) -> bool {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut tree = SparseMerkleTree::new(depth);
        for pos in 0..start.min(64) {
            tree.set_leaf(start - 1 - pos, rng.gen()).unwrap();
        }
        let len = 1u64 << m;
        let leaves: Vec<Fr> = (0..len).map(|_| rng.gen()).collect();
        if tamper == 1 {
            // the slot is not empty
            tree.set_leaf(start + len - 1, Fr::from(5u64)).unwrap();
        }
        if tamper == 2 {
            // a node after the slot inside the parent is not empty (only caught for odd m)
            tree.set_leaf(start + len, Fr::from(5u64)).unwrap();
        }
        let SubtreePath { pair, path } = tree.subtree_path(start, m).unwrap();
        let old_root = tree.root();
        let cs = ConstraintSystem::<Fr>::new_ref();
        let vars: Vec<FpVar<Fr>> = leaves.iter().map(|x| fr_var(&cs, *x)).collect();
        let mut index = start >> m;
        if tamper == 3 {
            index ^= 1; // the wrong half / node
        }
        let bits = bits_var(&cs, index, depth - m);
        let mut pair_var = pair.map(|p| p.map(|x| fr_var(&cs, x)));
        if tamper == 4 {
            if let Some(p) = pair_var.as_mut() {
                p.swap(0, 1);
            }
        }
        let siblings = levels_var(&cs, &path.siblings);
        let (old, new) = subtree_update_var(&vars, &bits, pair_var.as_ref(), &siblings).unwrap();
        tree.set_subtree(start, &leaves).unwrap();
        if tamper == 0 {
            assert_eq!(old.value().unwrap(), old_root);
            assert_eq!(new.value().unwrap(), tree.root());
        }
        old.enforce_equal(&FpVar::new_input(cs.clone(), || Ok(old_root)).unwrap())
            .unwrap();
        new.enforce_equal(&FpVar::new_input(cs.clone(), || Ok(tree.root())).unwrap())
            .unwrap();
        cs.is_satisfied().unwrap()
    }

    #[test]
    fn appends_of_both_parities_and_start_digits() {
        // m even (one node), m odd at child 0 and at child 2 of the parent
        let depth = 10;
        for (m, start) in [
            (2, 8),
            (4, 0),
            (4, 256),
            (1, 0),
            (1, 6),
            (3, 16),
            (3, 24),
            (5, 64),
            (5, 96),
        ] {
            assert!(append_case(1, depth, m, start, 0), "m {m} start {start}");
            assert!(
                !append_case(1, depth, m, start, 1),
                "m {m} start {start}: slot used"
            );
            assert!(
                !append_case(1, depth, m, start, 3),
                "m {m} start {start}: wrong index"
            );
            if m % 2 == 1 {
                let child2 = (start >> m) & 1 == 1;
                // after the slot: at child 0 the parent's children (2, 3) must be empty
                if !child2 {
                    assert!(
                        !append_case(1, depth, m, start, 2),
                        "m {m} start {start}: after"
                    );
                }
                if child2 {
                    assert!(
                        !append_case(1, depth, m, start, 4),
                        "m {m} start {start}: pair"
                    );
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn gadget_agrees_with_native(seed in any::<u64>(), levels in 2usize..=8, n in 1usize..12) {
            let depth = 2 * levels;
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
            let new_leaf = fr_var(&cs, new_value);
            let (old, new) = roots_from_path_var(&a.leaf, &new_leaf, &a.bits, &a.siblings).unwrap();
            let old_root = tree.root();
            tree.set_leaf(pos, new_value).unwrap();
            prop_assert_eq!(old.value().unwrap(), old_root);
            prop_assert_eq!(new.value().unwrap(), tree.root());
            let expected = FpVar::new_input(cs.clone(), || Ok(tree.root())).unwrap();
            new.enforce_equal(&expected).unwrap();
            prop_assert!(cs.is_satisfied().unwrap());
        }

        #[test]
        fn append_gadget_agrees_with_native(seed in any::<u64>(), levels in 2usize..=6, m in 0usize..=5, slot in any::<u64>()) {
            let depth = 2 * levels;
            let m = m.min(depth - 1);
            let start = (slot % (1u64 << (depth - m))) << m;
            prop_assert!(append_case(seed, depth, m, start, 0));
            prop_assert!(!append_case(seed, depth, m, start, 1));
        }
    }
}
