//! A sparse 4-ary Poseidon Merkle tree of depth `D` (`2^D` leaves, `D / 2` levels, `D` even, up
//! to `MAX_DEPTH`): only nodes that differ from the empty-subtree root of their level are
//! stored, so a 2^32-leaf tree costs memory in proportion to the leaves written, and every
//! update rehashes one path, never the tree.

use std::collections::HashMap;

use ark_bn254::Fr;

use super::{empty_roots, levels_of, MerklePath, SubtreePath, TreeError, ARITY};

#[cfg(test)]
thread_local! {
    static HASHES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The node hash; tests count its calls.
fn hash4(children: [Fr; ARITY]) -> Fr {
    #[cfg(test)]
    HASHES.with(|h| h.set(h.get() + 1));
    super::node_hash(&children)
}

/// A 4-ary Merkle tree with `2^depth` leaves, stored sparsely as `(level, index) -> node`.
#[derive(Clone, Debug)]
pub struct SparseMerkleTree {
    depth: usize,
    levels: usize,
    /// Non-empty nodes; an absent node is the empty-subtree root of its level.
    nodes: HashMap<(u8, u64), Fr>,
}

impl SparseMerkleTree {
    /// An empty tree of the given depth (even, `2..=MAX_DEPTH`).
    pub fn try_new(depth: usize) -> Result<Self, TreeError> {
        Ok(SparseMerkleTree {
            depth,
            levels: levels_of(depth)?,
            nodes: HashMap::new(),
        })
    }

    /// [`Self::try_new`] for a depth known to be valid (e.g. a checked `BatchShape`'s); panics
    /// on an odd or out-of-range depth.
    pub fn new(depth: usize) -> Self {
        Self::try_new(depth).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The depth `D`: `log2` of the capacity.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The number of 4-ary levels, `D / 2`: the number of hashes from a leaf to the root.
    pub fn levels(&self) -> usize {
        self.levels
    }

    /// The number of leaf positions, `2^D`.
    pub fn capacity(&self) -> u64 {
        1u64 << self.depth
    }

    /// The root.
    pub fn root(&self) -> Fr {
        self.node(self.levels, 0)
    }

    /// The node at 4-ary `level` (0 = leaves) and `index`; empty nodes (and indices beyond the
    /// level's width) read as the empty-subtree root of the level.
    pub fn node(&self, level: usize, index: u64) -> Fr {
        assert!(level <= self.levels, "level {level} above the root");
        self.nodes
            .get(&(level as u8, index))
            .copied()
            .unwrap_or_else(|| empty_roots(self.levels)[level])
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
        if value == empty_roots(self.levels)[level] {
            self.nodes.remove(&(level as u8, index));
        } else {
            self.nodes.insert((level as u8, index), value);
        }
    }

    fn children(&self, level: usize, index: u64) -> [Fr; ARITY] {
        let first = index & !3;
        [0, 1, 2, 3].map(|j| self.node(level, first + j))
    }

    /// Recomputes the nodes above `(level, index)` up to the root: `D / 2 - level` hashes.
    fn rehash_above(&mut self, mut level: usize, mut index: u64) {
        while level < self.levels {
            let children = self.children(level, index);
            level += 1;
            index >>= 2;
            self.store(level, index, hash4(children));
        }
    }

    /// Writes one leaf and updates the `D / 2` nodes above it.
    pub fn set_leaf(&mut self, pos: u64, leaf: Fr) -> Result<(), TreeError> {
        self.check_position(pos)?;
        self.store(0, pos, leaf);
        self.rehash_above(0, pos);
        Ok(())
    }

    /// The authentication path of the leaf at `pos` (`D / 2` levels of three siblings).
    pub fn path(&self, pos: u64) -> Result<MerklePath, TreeError> {
        self.check_position(pos)?;
        Ok(self.path_from(0, pos))
    }

    /// The three other children at each level from `(level, index)` up.
    fn path_from(&self, level: usize, index: u64) -> MerklePath {
        let siblings = (level..self.levels)
            .map(|l| {
                let i = index >> (2 * (l - level));
                let c = self.children(l, i);
                let digit = (i & 3) as usize;
                let mut s = c.iter().enumerate().filter(|(j, _)| *j != digit);
                [0, 1, 2].map(|_| *s.next().expect("three others").1)
            })
            .collect();
        MerklePath { siblings }
    }

    /// Checks that `len` leaves at `start` form an aligned subtree; returns its binary height
    /// `m` (`len = 2^m`).
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

    /// Writes `leaves` (a power-of-two count `2^m`) at `start` (a multiple of `2^m`): hashes the
    /// subtree as 4-ary nodes up to level `⌊m / 2⌋` (one node, or two halves for odd `m`) and
    /// then the path above it once (`D / 2 - ⌊m / 2⌋` hashes).
    pub fn set_subtree(&mut self, start: u64, leaves: &[Fr]) -> Result<(), TreeError> {
        self.check_subtree(start, leaves.len())?;
        let mut level_nodes = leaves.to_vec();
        let mut index = start;
        let mut level = 0;
        for (i, leaf) in level_nodes.iter().enumerate() {
            self.store(0, index + i as u64, *leaf);
        }
        while level_nodes.len() >= ARITY {
            level_nodes = level_nodes
                .chunks_exact(ARITY)
                .map(|c| hash4([c[0], c[1], c[2], c[3]]))
                .collect();
            index >>= 2;
            level += 1;
            for (i, node) in level_nodes.iter().enumerate() {
                self.store(level, index + i as u64, *node);
            }
        }
        self.rehash_above(level, index);
        Ok(())
    }

    /// The path above the aligned subtree of `2^m` leaves at leaf `start` ([`SubtreePath`]):
    /// `subtree_path(start, m).root(&subtree_roots(leaves), start >> m)` is the root with those
    /// leaves written.
    pub fn subtree_path(&self, start: u64, m: usize) -> Result<SubtreePath, TreeError> {
        if m > self.depth {
            return Err(TreeError::BadSubtreeLength {
                len: 1usize << m.min(63),
            });
        }
        self.check_subtree(start, 1usize << m)?;
        let k = m / 2;
        let index = start >> (2 * k);
        if m.is_multiple_of(2) {
            return Ok(SubtreePath {
                pair: None,
                path: self.path_from(k, index),
            });
        }
        // The halves are children (0, 1) or (2, 3) of their parent; the pair is the other two.
        let other = (index ^ 2) & !1;
        Ok(SubtreePath {
            pair: Some([self.node(k, other), self.node(k, other + 1)]),
            path: self.path_from(k + 1, index >> 2),
        })
    }
}

/// The root of a tree of `levels` 4-ary levels over `leaves` (the rest empty), hashing every
/// node of the full tree: the independent reference the sparse tree is tested against.
#[cfg(test)]
pub(crate) fn naive_root(levels: usize, leaves: &[Fr]) -> Fr {
    use ark_ff::Zero;
    let mut level: Vec<Fr> = (0..1usize << (2 * levels))
        .map(|i| leaves.get(i).copied().unwrap_or_else(Fr::zero))
        .collect();
    for _ in 0..levels {
        level = level.chunks(4).map(crate::poseidon::poseidon).collect();
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::MAX_DEPTH;
    use crate::tree::{node_hash, subtree_roots};
    use ark_ff::Zero;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn empty_tree_root_is_empty_root() {
        for depth in [2, 8, 16, 32, MAX_DEPTH] {
            let t = SparseMerkleTree::new(depth);
            assert_eq!(t.levels(), depth / 2);
            assert_eq!(t.root(), empty_roots(depth / 2)[depth / 2]);
            let last = t.capacity() - 1;
            assert_eq!(t.leaf(last), Fr::zero());
            assert_eq!(t.path(last).unwrap().root(Fr::zero(), last), t.root());
        }
    }

    #[test]
    fn odd_or_bad_depths_are_refused() {
        for depth in [0, 1, 3, 9, 33, MAX_DEPTH + 2] {
            assert_eq!(
                SparseMerkleTree::try_new(depth).map(|t| t.depth()),
                Err(TreeError::BadDepth { depth })
            );
        }
    }

    #[test]
    fn set_get_and_depth_four_by_hand() {
        let mut t = SparseMerkleTree::new(4);
        let (a, b) = (Fr::from(11u64), Fr::from(22u64));
        t.set_leaf(1, a).unwrap();
        t.set_leaf(6, b).unwrap();
        assert_eq!(t.leaf(1), a);
        assert_eq!(t.leaf(6), b);
        assert_eq!(t.leaf(0), Fr::zero());
        let z = Fr::zero();
        let e1 = node_hash(&[z; 4]);
        let n0 = node_hash(&[z, a, z, z]);
        let n1 = node_hash(&[z, z, b, z]);
        assert_eq!(t.node(1, 0), n0);
        assert_eq!(t.root(), node_hash(&[n0, n1, e1, e1]));
        assert_eq!(t.path(6).unwrap().siblings, vec![[z, z, z], [n0, e1, e1]]);
        assert_eq!(
            t.set_leaf(16, a),
            Err(TreeError::PositionOutOfRange {
                position: 16,
                capacity: 16
            })
        );
        // clearing a leaf restores emptiness and the storage
        t.set_leaf(1, z).unwrap();
        t.set_leaf(6, z).unwrap();
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
        assert_eq!(t.subtree_path(0, 4).unwrap().path.len(), 0);
        assert!(t.subtree_path(0, 5).is_err());
        // an odd height: two halves and the pair
        let p = t.subtree_path(8, 3).unwrap();
        assert_eq!(p.pair, Some([t.node(1, 0), t.node(1, 1)]));
        assert_eq!(p.path.len(), 0);
    }

    #[test]
    fn sparse_at_depth_32() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut t = SparseMerkleTree::new(32);
        let n = 100;
        for _ in 0..n {
            t.set_leaf(rng.gen::<u32>() as u64, rng.gen()).unwrap();
        }
        assert!(t.stored_nodes() <= n * 17, "{} nodes", t.stored_nodes());
        assert!(t.stored_nodes() >= n * 10);
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

        // 32 leaves = 2 halves of 16: 2 * (4 + 1) subtree hashes, then 16 - 2 levels; and
        // D / 2 for one leaf
        let before = HASHES.with(|h| h.get());
        t.set_subtree(64 * 32, &leaves).unwrap();
        assert_eq!(HASHES.with(|h| h.get()) - before, 10 + (16 - 2));
        let before = HASHES.with(|h| h.get());
        t.set_subtree(64 * 64, &[leaves.clone(), leaves.clone()].concat())
            .unwrap();
        assert_eq!(HASHES.with(|h| h.get()) - before, 21 + (16 - 3));
        let before = HASHES.with(|h| h.get());
        t.set_leaf(7, leaves[1]).unwrap();
        assert_eq!(HASHES.with(|h| h.get()) - before, 16);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn paths_open_to_the_root(seed in any::<u64>(), levels in 1usize..=10, n in 1usize..20) {
            let depth = 2 * levels;
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
                prop_assert_eq!(path.len(), levels);
                prop_assert_eq!(path.root(t.leaf(pos), pos), t.root());
            }
        }

        #[test]
        fn matches_the_naive_full_tree(seed in any::<u64>(), levels in 1usize..=4, n in 0usize..12) {
            let depth = 2 * levels;
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut t = SparseMerkleTree::new(depth);
            let mut dense = vec![Fr::zero(); 1 << depth];
            for _ in 0..n {
                let (pos, leaf) = (rng.gen_range(0..t.capacity()), rng.gen());
                t.set_leaf(pos, leaf).unwrap();
                dense[pos as usize] = leaf;
            }
            prop_assert_eq!(t.root(), naive_root(levels, &dense));
            // a subtree write, too
            let m = rng.gen_range(0..=depth);
            let len = 1usize << m;
            let start = rng.gen_range(0..(1usize << depth) / len) * len;
            let leaves: Vec<Fr> = (0..len).map(|_| rng.gen()).collect();
            t.set_subtree(start as u64, &leaves).unwrap();
            dense[start..start + len].copy_from_slice(&leaves);
            prop_assert_eq!(t.root(), naive_root(levels, &dense));
        }

        #[test]
        fn set_subtree_equals_leaf_by_leaf(seed in any::<u64>(), levels in 1usize..=8, m in 0usize..=6, prefill in 0usize..8) {
            let depth = 2 * levels;
            let m = m.min(depth);
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut a = SparseMerkleTree::new(depth);
            for _ in 0..prefill {
                let (pos, leaf) = (rng.gen_range(0..a.capacity()), rng.gen());
                a.set_leaf(pos, leaf).unwrap();
            }
            let mut b = a.clone();
            let len = 1u64 << m;
            let start = rng.gen_range(0..(a.capacity() / len)) * len;
            let sub = a.subtree_path(start, m).unwrap();
            // some leaves zero, to exercise empty storage
            let leaves: Vec<Fr> = (0..len).map(|_| if rng.gen_bool(0.2) { Fr::zero() } else { rng.gen() }).collect();
            a.set_subtree(start, &leaves).unwrap();
            for (i, leaf) in leaves.iter().enumerate() {
                b.set_leaf(start + i as u64, *leaf).unwrap();
            }
            prop_assert_eq!(a.root(), b.root());
            prop_assert_eq!(&a.nodes, &b.nodes);
            // the path taken before the write opens the new root with the subtree's roots
            prop_assert_eq!(sub.pair.is_some(), m % 2 == 1);
            prop_assert_eq!(sub.path.len(), (depth - m) / 2);
            prop_assert_eq!(sub.root(&subtree_roots(&leaves), start >> m), a.root());
            prop_assert_eq!(a.subtree_path(start, m).unwrap(), sub);
        }
    }
}
