//! The nullifier set as an indexed Merkle tree (DESIGN §5, Aztec style). Leaves form a linked list
//! sorted by value: each leaf `(value, next_index, next_value)` points at the next larger value,
//! and `next_value == 0` marks the largest. Leaf 0 is the genesis leaf `(0, 0, 0)`.
//!
//! Inserting `x` finds the *low leaf* (the largest value below `x`), rewrites it to point at `x`,
//! and writes `x`'s leaf, inheriting the low leaf's old pointer, at a fresh index. Non-membership
//! of `x` is the low leaf's `value < x < next_value` (or `next_value == 0`).

use std::collections::{BTreeMap, HashMap};

use ark_bn254::Fr;
use ark_ff::Zero;

use super::{MerklePath, SparseMerkleTree, TreeError};
use crate::constants::DOM_LEAF;
use crate::poseidon::poseidon;

/// One leaf of the indexed tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NullifierLeaf {
    /// The nullifier (0 only for the genesis leaf).
    pub value: Fr,
    /// Index of the leaf holding the next larger value (0 if none).
    pub next_index: u64,
    /// The next larger value (0 if none).
    pub next_value: Fr,
}

impl NullifierLeaf {
    /// `H(DOM_LEAF, value, next_index, next_value)`.
    pub fn hash(&self) -> Fr {
        poseidon(&[
            Fr::from(DOM_LEAF),
            self.value,
            Fr::from(self.next_index),
            self.next_value,
        ])
    }

    /// Whether this leaf proves `x` absent: `value < x` and (`x < next_value` or
    /// `next_value == 0`).
    pub fn is_low_leaf_of(&self, x: Fr) -> bool {
        self.value < x && (x < self.next_value || self.next_value.is_zero())
    }
}

/// The indexed nullifier tree: the Merkle tree of leaf hashes, the leaves themselves, and an
/// index from value to leaf index.
#[derive(Clone, Debug)]
pub struct NullifierTree {
    tree: SparseMerkleTree,
    leaves: HashMap<u64, NullifierLeaf>,
    /// `Fr`'s `Ord` compares canonical integers, as the circuit does.
    by_value: BTreeMap<Fr, u64>,
    count: u64,
}

impl NullifierTree {
    /// The genesis tree of depth `depth` (even, `2..=MAX_DEPTH`): leaf 0 is `(0, 0, 0)`, count 1.
    pub fn try_new(depth: usize) -> Result<Self, TreeError> {
        let mut tree = SparseMerkleTree::try_new(depth)?;
        let genesis = NullifierLeaf::default();
        tree.set_leaf(0, genesis.hash())?;
        Ok(NullifierTree {
            tree,
            leaves: HashMap::from([(0, genesis)]),
            by_value: BTreeMap::from([(Fr::zero(), 0)]),
            count: 1,
        })
    }

    /// [`Self::try_new`] for a depth known to be valid; panics otherwise.
    pub fn new(depth: usize) -> Self {
        Self::try_new(depth).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The root.
    pub fn root(&self) -> Fr {
        self.tree.root()
    }

    /// The next free index (indices below it hold leaves or were skipped for alignment).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The tree depth.
    pub fn depth(&self) -> usize {
        self.tree.depth()
    }

    /// The underlying sparse tree of leaf hashes.
    pub fn tree(&self) -> &SparseMerkleTree {
        &self.tree
    }

    /// Whether `value` is in the set (the genesis value 0 always is).
    pub fn contains(&self, value: Fr) -> bool {
        self.by_value.contains_key(&value)
    }

    /// The leaf at `index`, if any.
    pub fn leaf(&self, index: u64) -> Option<&NullifierLeaf> {
        self.leaves.get(&index)
    }

    /// The index of the leaf holding `value`.
    pub fn index_of(&self, value: Fr) -> Option<u64> {
        self.by_value.get(&value).copied()
    }

    /// The low leaf of `value`: the leaf with the largest value below it, with its index. Fails if
    /// `value` is 0 or already present.
    pub fn low_leaf(&self, value: Fr) -> Result<(u64, NullifierLeaf), TreeError> {
        if value.is_zero() {
            return Err(TreeError::ZeroValue);
        }
        if self.contains(value) {
            return Err(TreeError::AlreadyPresent(value));
        }
        let (_, &index) = self
            .by_value
            .range(..value)
            .next_back()
            .expect("the genesis value 0 is below every other value");
        Ok((index, self.leaves[&index]))
    }

    /// The authentication path of the leaf at `index`.
    pub fn path(&self, index: u64) -> Result<MerklePath, TreeError> {
        self.tree.path(index)
    }

    /// Rewrites the existing leaf at `index` (typically a low leaf's pointer), keeping the
    /// value index in step. Fails if `index` holds no leaf or the new value is held elsewhere.
    pub fn update_leaf(&mut self, index: u64, leaf: NullifierLeaf) -> Result<(), TreeError> {
        let old = *self.leaves.get(&index).ok_or(TreeError::NoLeaf(index))?;
        if old.value != leaf.value {
            if self.contains(leaf.value) {
                return Err(TreeError::AlreadyPresent(leaf.value));
            }
            self.by_value.remove(&old.value);
            self.by_value.insert(leaf.value, index);
        }
        self.tree.set_leaf(index, leaf.hash())?;
        self.leaves.insert(index, leaf);
        Ok(())
    }

    /// Where a subtree of `len` new leaves goes: `count` rounded up to a multiple of `len`.
    pub fn next_subtree_start(&self, len: usize) -> Result<u64, TreeError> {
        if len == 0 || !len.is_power_of_two() || len as u64 > self.tree.capacity() {
            return Err(TreeError::BadSubtreeLength { len });
        }
        let start = self.count.next_multiple_of(len as u64);
        if start + len as u64 > self.tree.capacity() {
            return Err(TreeError::TreeFull {
                depth: self.depth(),
            });
        }
        Ok(start)
    }

    /// Writes a batch of new leaves as one aligned subtree at `start` (at or after `count`);
    /// `None` is an empty slot hashing to 0. Sets `count = start + leaves.len()`. The new values
    /// must be distinct, nonzero and absent; keeping the linked list consistent (the low-leaf
    /// updates via [`Self::update_leaf`]) is the caller's job.
    pub fn write_subtree(
        &mut self,
        start: u64,
        leaves: &[Option<NullifierLeaf>],
    ) -> Result<(), TreeError> {
        self.tree.check_subtree(start, leaves.len())?;
        if start < self.count {
            return Err(TreeError::SubtreeOverlapsUsed {
                start,
                count: self.count,
            });
        }
        let mut fresh = std::collections::BTreeSet::new();
        for leaf in leaves.iter().flatten() {
            if leaf.value.is_zero() {
                return Err(TreeError::ZeroValue);
            }
            if self.contains(leaf.value) || !fresh.insert(leaf.value) {
                return Err(TreeError::AlreadyPresent(leaf.value));
            }
        }
        self.write_subtree_unchecked(start, leaves)
    }

    /// [`Self::write_subtree`] without the value checks: what a cheating prover's witness
    /// builder does (duplicates included), so adversarial tests can hand the circuit such a
    /// batch. Alignment and range are still checked.
    pub fn write_subtree_unchecked(
        &mut self,
        start: u64,
        leaves: &[Option<NullifierLeaf>],
    ) -> Result<(), TreeError> {
        self.tree.check_subtree(start, leaves.len())?;
        let hashes: Vec<Fr> = leaves
            .iter()
            .map(|l| l.map_or(Fr::zero(), |l| l.hash()))
            .collect();
        self.tree.set_subtree(start, &hashes)?;
        for (i, leaf) in leaves.iter().enumerate() {
            if let Some(leaf) = leaf {
                let index = start + i as u64;
                self.leaves.insert(index, *leaf);
                self.by_value.insert(leaf.value, index);
            }
        }
        self.count = start + leaves.len() as u64;
        Ok(())
    }

    /// Inserts `value` at index `count`: rewrites its low leaf and appends the new leaf (two
    /// paths). Returns the new leaf's index.
    pub fn insert(&mut self, value: Fr) -> Result<u64, TreeError> {
        let (low_index, low) = self.low_leaf(value)?;
        let index = self.count;
        if index >= self.tree.capacity() {
            return Err(TreeError::TreeFull {
                depth: self.depth(),
            });
        }
        let new = NullifierLeaf {
            value,
            next_index: low.next_index,
            next_value: low.next_value,
        };
        self.update_leaf(
            low_index,
            NullifierLeaf {
                value: low.value,
                next_index: index,
                next_value: value,
            },
        )?;
        self.tree.set_leaf(index, new.hash())?;
        self.leaves.insert(index, new);
        self.by_value.insert(value, index);
        self.count += 1;
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    /// The linked list visits every leaf once in increasing order and ends at `next_value == 0`;
    /// every leaf's hash is in the tree and the value index agrees.
    fn check_invariants(t: &NullifierTree) {
        let mut index = 0u64;
        let mut seen = 0usize;
        let mut prev: Option<Fr> = None;
        loop {
            let leaf = t.leaves[&index];
            if let Some(p) = prev {
                assert!(p < leaf.value, "list not increasing");
            }
            assert_eq!(t.by_value[&leaf.value], index);
            assert_eq!(t.tree.leaf(index), leaf.hash());
            assert!(index < t.count);
            seen += 1;
            prev = Some(leaf.value);
            if leaf.next_value.is_zero() {
                assert_eq!(leaf.next_index, 0);
                break;
            }
            assert_eq!(t.leaves[&leaf.next_index].value, leaf.next_value);
            index = leaf.next_index;
        }
        assert_eq!(seen, t.leaves.len());
        assert_eq!(seen, t.by_value.len());
        for i in 0..t.count {
            if !t.leaves.contains_key(&i) {
                assert!(t.tree.leaf(i).is_zero());
            }
        }
        for i in 0..t.count {
            assert_eq!(t.path(i).unwrap().root(t.tree.leaf(i), i), t.root());
        }
    }

    #[test]
    fn genesis() {
        let t = NullifierTree::new(8);
        assert_eq!(t.count(), 1);
        assert_eq!(t.leaf(0), Some(&NullifierLeaf::default()));
        assert!(t.contains(Fr::zero()));
        let mut by_hand = SparseMerkleTree::new(8);
        by_hand
            .set_leaf(
                0,
                poseidon(&[Fr::from(DOM_LEAF), Fr::zero(), Fr::zero(), Fr::zero()]),
            )
            .unwrap();
        assert_eq!(t.root(), by_hand.root());
        check_invariants(&t);
    }

    #[test]
    fn first_insert_by_hand() {
        let mut t = NullifierTree::new(8);
        let x = Fr::from(42u64);
        assert_eq!(t.insert(x).unwrap(), 1);
        assert_eq!(
            t.leaf(0),
            Some(&NullifierLeaf {
                value: Fr::zero(),
                next_index: 1,
                next_value: x
            })
        );
        assert_eq!(
            t.leaf(1),
            Some(&NullifierLeaf {
                value: x,
                next_index: 0,
                next_value: Fr::zero()
            })
        );
        check_invariants(&t);
    }

    #[test]
    fn two_hundred_random_inserts() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut t = NullifierTree::new(16);
        let mut values = vec![-Fr::from(1u64), Fr::from(1u64)]; // p - 1 and 1: the extremes
        values.extend((0..198).map(|_| rng.gen::<Fr>()));
        for (i, v) in values.iter().enumerate() {
            let (li, low) = t.low_leaf(*v).unwrap();
            assert!(low.is_low_leaf_of(*v));
            assert_eq!(t.index_of(low.value), Some(li));
            assert_eq!(t.insert(*v).unwrap(), i as u64 + 1);
        }
        check_invariants(&t);
        let root = t.root();
        for v in &values {
            assert_eq!(t.insert(*v), Err(TreeError::AlreadyPresent(*v)));
            assert_eq!(t.low_leaf(*v), Err(TreeError::AlreadyPresent(*v)));
        }
        assert_eq!(t.insert(Fr::zero()), Err(TreeError::ZeroValue));
        assert_eq!(t.root(), root);
        // low leaves of fresh values by brute force
        for _ in 0..50 {
            let x: Fr = rng.gen();
            let (li, low) = t.low_leaf(x).unwrap();
            let expected = t
                .leaves
                .values()
                .filter(|l| l.value < x)
                .map(|l| l.value)
                .max()
                .unwrap();
            assert_eq!(low.value, expected);
            assert_eq!(t.leaf(li), Some(&low));
            assert!(low.is_low_leaf_of(x));
        }
    }

    #[test]
    fn full_tree_and_update_errors() {
        let mut t = NullifierTree::new(2);
        for v in 1..=3u64 {
            t.insert(Fr::from(v * 10)).unwrap();
        }
        let root = t.root();
        assert_eq!(
            t.insert(Fr::from(5u64)),
            Err(TreeError::TreeFull { depth: 2 })
        );
        assert_eq!(t.root(), root);
        check_invariants(&t);
        assert_eq!(
            t.update_leaf(9, NullifierLeaf::default()),
            Err(TreeError::NoLeaf(9))
        );
        let dup = NullifierLeaf {
            value: Fr::from(10u64),
            ..NullifierLeaf::default()
        };
        assert_eq!(
            t.update_leaf(2, dup),
            Err(TreeError::AlreadyPresent(Fr::from(10u64)))
        );
    }

    #[test]
    fn depth_32_is_sparse() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let mut t = NullifierTree::new(32);
        let n = 300;
        for _ in 0..n {
            t.insert(rng.gen()).unwrap();
        }
        // sequential indices share their upper paths: about 4n / 3 + D / 2 nodes
        let stored = t.tree().stored_nodes();
        eprintln!("{n} nullifiers at depth 32: {stored} stored nodes");
        assert!(stored <= (n + 1) * 17);
        assert!(stored <= 4 * (n + 1) / 3 + 2 * 16);
    }

    /// Inserts `values` as one subtree the way a batch does: new leaves point to their successor
    /// in the union, existing leaves whose successor changed are rewritten.
    fn batch_insert(t: &mut NullifierTree, values: &[Fr], len: usize) -> u64 {
        let start = t.next_subtree_start(len).unwrap();
        let mut union: BTreeMap<Fr, u64> = t.by_value.clone();
        for (j, v) in values.iter().enumerate() {
            assert!(union.insert(*v, start + j as u64).is_none());
        }
        let successor = |x: &Fr| {
            union
                .range((std::ops::Bound::Excluded(*x), std::ops::Bound::Unbounded))
                .next()
                .map(|(v, i)| (*i, *v))
                .unwrap_or((0, Fr::zero()))
        };
        let mut slots = vec![None; len];
        for (j, v) in values.iter().enumerate() {
            let (next_index, next_value) = successor(v);
            slots[j] = Some(NullifierLeaf {
                value: *v,
                next_index,
                next_value,
            });
        }
        let updates: Vec<(u64, NullifierLeaf)> = t
            .leaves
            .iter()
            .filter_map(|(i, l)| {
                let (next_index, next_value) = successor(&l.value);
                let new = NullifierLeaf {
                    value: l.value,
                    next_index,
                    next_value,
                };
                (new != *l).then_some((*i, new))
            })
            .collect();
        for (i, l) in updates {
            t.update_leaf(i, l).unwrap();
        }
        t.write_subtree(start, &slots).unwrap();
        start
    }

    #[test]
    fn write_subtree_checks() {
        let mut t = NullifierTree::new(8);
        t.insert(Fr::from(5u64)).unwrap();
        let leaf = |v: u64| {
            Some(NullifierLeaf {
                value: Fr::from(v),
                ..NullifierLeaf::default()
            })
        };
        assert_eq!(
            t.write_subtree(0, &[None, None]),
            Err(TreeError::SubtreeOverlapsUsed { start: 0, count: 2 })
        );
        assert_eq!(
            t.write_subtree(3, &[None, None]),
            Err(TreeError::MisalignedSubtree { start: 3, len: 2 })
        );
        assert_eq!(
            t.write_subtree(2, &[leaf(5), None]),
            Err(TreeError::AlreadyPresent(Fr::from(5u64)))
        );
        assert_eq!(
            t.write_subtree(2, &[leaf(6), leaf(6)]),
            Err(TreeError::AlreadyPresent(Fr::from(6u64)))
        );
        assert_eq!(
            t.write_subtree(2, &[leaf(0), None]),
            Err(TreeError::ZeroValue)
        );
        assert_eq!(t.count(), 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn batches_keep_the_invariants(seed in any::<u64>(), batches in proptest::collection::vec((0usize..=3, 0usize..=8), 1..5)) {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut t = NullifierTree::new(10);
            for (log_len, n) in batches {
                let len = 1usize << log_len;
                let n = n.min(len);
                if rng.gen_bool(0.3) {
                    t.insert(rng.gen()).unwrap();
                }
                // small values collide with each other and with earlier ones: skip those
                let mut values = vec![];
                while values.len() < n {
                    let v = Fr::from(rng.gen_range(1u64..64));
                    if !t.contains(v) && !values.contains(&v) { values.push(v); }
                }
                let start = batch_insert(&mut t, &values, len);
                prop_assert_eq!(start % len as u64, 0);
                prop_assert_eq!(t.count(), start + len as u64);
                check_invariants(&t);
            }
        }
    }
}
