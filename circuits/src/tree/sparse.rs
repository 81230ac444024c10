//! A sparse binary Poseidon Merkle tree of depth up to `MAX_DEPTH`: only nodes that differ from
//! the empty-subtree root of their level are stored, so a 2^32-leaf tree costs memory in
//! proportion to the leaves written, and every update rehashes one path, never the tree.

use std::collections::HashMap;

use ark_bn254::Fr;

use super::{empty_roots, MerklePath, TreeError};
use crate::constants::MAX_DEPTH;

#[cfg(test)]
thread_local! {
    static HASHES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The node hash; tests count its calls.
fn hash2(left: Fr, right: Fr) -> Fr {
    #[cfg(test)]
    HASHES.with(|h| h.set(h.get() + 1));
    crate::poseidon::hash2(left, right)
}

/// A binary Merkle tree with `2^depth` leaves, stored sparsely as `(level, index) -> node`.
#[derive(Clone, Debug)]
pub struct SparseMerkleTree {
    depth: usize,
    /// Non-empty nodes; an absent node is the empty-subtree root of its level.
    nodes: HashMap<(u8, u64), Fr>,
}

impl SparseMerkleTree {
    /// An empty tree of the given depth (`1..=MAX_DEPTH`; panics otherwise).
    pub fn new(depth: usize) -> Self {
        assert!(
            (1..=MAX_DEPTH).contains(&depth),
            "tree depth must be in 1..={MAX_DEPTH}, got {depth}"
        );
        SparseMerkleTree {
            depth,
            nodes: HashMap::new(),
        }
    }

    /// The depth `D`: the number of hashes from a leaf to the root.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The number of leaf positions, `2^D`.
    pub fn capacity(&self) -> u64 {
        1u64 << self.depth
    }

    /// The root.
    pub fn root(&self) -> Fr {
        self.node(self.depth, 0)
    }

    /// The node at `level` (0 = leaves) and `index`; empty nodes (and indices beyond the level's
    /// width) read as the empty-subtree root of the level.
    pub fn node(&self, level: usize, index: u64) -> Fr {
        assert!(level <= self.depth, "level {level} above the root");
        self.nodes
            .get(&(level as u8, index))
            .copied()
            .unwrap_or_else(|| empty_roots(self.depth)[level])
    }

    /// The leaf at `pos` (`0` if never written or beyond the capacity).
    pub fn leaf(&self, pos: u64) -> Fr {
        self.node(0, pos)
    }

    /// How many nodes are stored (for checking sparsity).
    pub fn stored_nodes(&self) -> usize {
        self.nodes.len()
    }

    fn check_position(&self, pos: u64) -> Result<(), TreeError> {
        if pos >= self.capacity() {
            return Err(TreeError::PositionOutOfRange {
                position: pos,
                capacity: self.capacity(),
            });
        }
        Ok(())
    }

    fn store(&mut self, level: usize, index: u64, value: Fr) {
        if value == empty_roots(self.depth)[level] {
            self.nodes.remove(&(level as u8, index));
        } else {
            self.nodes.insert((level as u8, index), value);
        }
    }

    /// Recomputes the nodes above `(level, index)` up to the root: `D - level` hashes.
    fn rehash_above(&mut self, mut level: usize, mut index: u64) {
        while level < self.depth {
            let (left, right) = (self.node(level, index & !1), self.node(level, index | 1));
            level += 1;
            index >>= 1;
            self.store(level, index, hash2(left, right));
        }
    }

    /// Writes one leaf and updates the `D` nodes above it.
    pub fn set_leaf(&mut self, pos: u64, leaf: Fr) -> Result<(), TreeError> {
        self.check_position(pos)?;
        self.store(0, pos, leaf);
        self.rehash_above(0, pos);
        Ok(())
    }

    /// The authentication path of the leaf at `pos` (`D` siblings).
    pub fn path(&self, pos: u64) -> Result<MerklePath, TreeError> {
        self.check_position(pos)?;
        Ok(self.path_from(0, pos))
    }

    fn path_from(&self, level: usize, index: u64) -> MerklePath {
        let siblings = (level..self.depth)
            .map(|l| self.node(l, (index >> (l - level)) ^ 1))
            .collect();
        MerklePath { siblings }
    }

    /// Checks that `len` leaves at `start` form an aligned subtree; returns its height `k`.
    pub fn check_subtree(&self, start: u64, len: usize) -> Result<usize, TreeError> {
        if len == 0 || !len.is_power_of_two() || len as u64 > self.capacity() {
            return Err(TreeError::BadSubtreeLength { len });
        }
        let len = len as u64;
        if start & (len - 1) != 0 {
            return Err(TreeError::MisalignedSubtree { start, len });
        }
        self.check_position(start)?;
        Ok(len.trailing_zeros() as usize)
    }

    /// Writes `leaves` (a power-of-two count `2^k`) at `start` (a multiple of `2^k`): hashes the
    /// subtree (`2^k - 1` hashes) and then the path above it once (`D - k` hashes).
    pub fn set_subtree(&mut self, start: u64, leaves: &[Fr]) -> Result<(), TreeError> {
        let k = self.check_subtree(start, leaves.len())?;
        let mut level_nodes = leaves.to_vec();
        let mut index = start;
        for (i, leaf) in level_nodes.iter().enumerate() {
            self.store(0, index + i as u64, *leaf);
        }
        for level in 1..=k {
            level_nodes = level_nodes
                .chunks_exact(2)
                .map(|p| hash2(p[0], p[1]))
                .collect();
            index >>= 1;
            for (i, node) in level_nodes.iter().enumerate() {
                self.store(level, index + i as u64, *node);
            }
        }
        self.rehash_above(k, index);
        Ok(())
    }

    /// The `D - k` siblings above the aligned subtree of height `k` starting at leaf `start`:
    /// `subtree_path(start, k).root(subtree_root, start >> k)` is the tree root.
    pub fn subtree_path(&self, start: u64, k: usize) -> Result<MerklePath, TreeError> {
        if k > self.depth {
            return Err(TreeError::BadSubtreeLength {
                len: 1usize << k.min(63),
            });
        }
        self.check_subtree(start, 1usize << k)?;
        Ok(self.path_from(k, start >> k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::Zero;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn empty_tree_root_is_empty_root() {
        for depth in [1, 8, 16, 32, MAX_DEPTH] {
            let t = SparseMerkleTree::new(depth);
            assert_eq!(t.root(), empty_roots(depth)[depth]);
            let last = t.capacity() - 1;
            assert_eq!(t.leaf(last), Fr::zero());
            assert_eq!(t.path(last).unwrap().root(Fr::zero(), last), t.root());
        }
    }

    #[test]
    fn set_get_and_depth_two_by_hand() {
        let mut t = SparseMerkleTree::new(2);
        let (a, b) = (Fr::from(11u64), Fr::from(22u64));
        t.set_leaf(1, a).unwrap();
        t.set_leaf(2, b).unwrap();
        assert_eq!(t.leaf(1), a);
        assert_eq!(t.leaf(2), b);
        assert_eq!(t.leaf(0), Fr::zero());
        let z = Fr::zero();
        assert_eq!(t.root(), hash2(hash2(z, a), hash2(b, z)));
        assert_eq!(t.node(1, 0), hash2(z, a));
        assert_eq!(
            t.set_leaf(4, a),
            Err(TreeError::PositionOutOfRange {
                position: 4,
                capacity: 4
            })
        );
        // clearing a leaf restores emptiness and the storage
        t.set_leaf(1, z).unwrap();
        t.set_leaf(2, z).unwrap();
        assert_eq!(t.root(), empty_roots(2)[2]);
        assert_eq!(t.stored_nodes(), 0);
    }

    #[test]
    fn subtree_argument_checks() {
        let mut t = SparseMerkleTree::new(4);
        let l = [Fr::from(1u64); 4];
        assert_eq!(
            t.set_subtree(2, &l),
            Err(TreeError::MisalignedSubtree { start: 2, len: 4 })
        );
        assert_eq!(
            t.set_subtree(0, &l[..3]),
            Err(TreeError::BadSubtreeLength { len: 3 })
        );
        assert_eq!(
            t.set_subtree(0, &[]),
            Err(TreeError::BadSubtreeLength { len: 0 })
        );
        assert!(matches!(
            t.set_subtree(16, &l),
            Err(TreeError::PositionOutOfRange { .. })
        ));
        assert!(matches!(
            t.set_subtree(0, &[Fr::from(1u64); 32]),
            Err(TreeError::BadSubtreeLength { .. })
        ));
        t.set_subtree(0, &[Fr::from(1u64); 16]).unwrap();
        assert_eq!(t.subtree_path(0, 4).unwrap().siblings.len(), 0);
        assert!(t.subtree_path(0, 5).is_err());
    }

    #[test]
    fn sparse_at_depth_32() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut t = SparseMerkleTree::new(32);
        let n = 100;
        for _ in 0..n {
            t.set_leaf(rng.gen::<u32>() as u64, rng.gen()).unwrap();
        }
        assert!(t.stored_nodes() <= n * 33, "{} nodes", t.stored_nodes());
        assert!(t.stored_nodes() >= n * 20);
    }

    #[test]
    fn batch_of_32_at_depth_32_is_fast() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        let mut t = SparseMerkleTree::new(32);
        let leaves: Vec<Fr> = (0..32).map(|_| rng.gen()).collect();
        let rounds = 20u64;
        let t0 = std::time::Instant::now();
        for i in 0..rounds {
            t.set_subtree(i * 32, &leaves).unwrap();
        }
        let per = t0.elapsed() / rounds as u32;
        let t1 = std::time::Instant::now();
        t.set_leaf(12345, leaves[0]).unwrap();
        let one = t1.elapsed();
        eprintln!("set_subtree(32 leaves, D = 32): {per:?}; set_leaf: {one:?}");
        assert!(per < std::time::Duration::from_millis(20));

        // the cost is exactly 2^k - 1 + (D - k) hashes, and D for one leaf
        let before = HASHES.with(|h| h.get());
        t.set_subtree(64 * 32, &leaves).unwrap();
        assert_eq!(HASHES.with(|h| h.get()) - before, 31 + (32 - 5));
        let before = HASHES.with(|h| h.get());
        t.set_leaf(7, leaves[1]).unwrap();
        assert_eq!(HASHES.with(|h| h.get()) - before, 32);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn paths_open_to_the_root(seed in any::<u64>(), depth in 1usize..=20, n in 1usize..20) {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut t = SparseMerkleTree::new(depth);
            let cap = 1u64 << depth;
            let mut positions = vec![];
            for _ in 0..n {
                let pos = rng.gen_range(0..cap);
                let leaf: Fr = rng.gen();
                t.set_leaf(pos, leaf).unwrap();
                positions.push(pos);
                prop_assert_eq!(t.leaf(pos), leaf);
            }
            positions.push(rng.gen_range(0..cap)); // probably empty
            for pos in positions {
                let path = t.path(pos).unwrap();
                prop_assert_eq!(path.len(), depth);
                prop_assert_eq!(path.root(t.leaf(pos), pos), t.root());
            }
        }

        #[test]
        fn set_subtree_equals_leaf_by_leaf(seed in any::<u64>(), depth in 1usize..=16, k in 0usize..=5, prefill in 0usize..8) {
            let k = k.min(depth);
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut a = SparseMerkleTree::new(depth);
            for _ in 0..prefill {
                let (pos, leaf) = (rng.gen_range(0..a.capacity()), rng.gen());
                a.set_leaf(pos, leaf).unwrap();
            }
            let mut b = a.clone();
            let len = 1u64 << k;
            let start = rng.gen_range(0..(a.capacity() / len)) * len;
            // some leaves zero, to exercise empty storage
            let leaves: Vec<Fr> = (0..len).map(|_| if rng.gen_bool(0.2) { Fr::zero() } else { rng.gen() }).collect();
            a.set_subtree(start, &leaves).unwrap();
            for (i, leaf) in leaves.iter().enumerate() {
                b.set_leaf(start + i as u64, *leaf).unwrap();
            }
            prop_assert_eq!(a.root(), b.root());
            prop_assert_eq!(&a.nodes, &b.nodes);
            let sub = a.subtree_path(start, k).unwrap();
            prop_assert_eq!(sub.len(), depth - k);
            prop_assert_eq!(sub.root(a.node(k, start >> k), start >> k), a.root());
        }
    }
}
