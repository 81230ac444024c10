//! The note-commitment tree (DESIGN §5): append-only, leaves are note commitments. A batch's
//! output commitments are appended as one aligned subtree (DESIGN §7), skipping (leaving empty)
//! the positions needed to align it.

use ark_bn254::Fr;

use super::{MerklePath, SparseMerkleTree, SubtreePath, TreeError};

/// The append-only note tree: a sparse tree plus the count of used positions.
#[derive(Clone, Debug)]
pub struct NoteTree {
    tree: SparseMerkleTree,
    count: u64,
}

impl NoteTree {
    /// An empty note tree of depth `depth` (even, `2..=MAX_DEPTH`).
    pub fn try_new(depth: usize) -> Result<Self, TreeError> {
        Ok(NoteTree {
            tree: SparseMerkleTree::try_new(depth)?,
            count: 0,
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

    /// The next free position: every position below it is used or was skipped for alignment.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The tree depth.
    pub fn depth(&self) -> usize {
        self.tree.depth()
    }

    /// The underlying sparse tree (for subtree paths and nodes).
    pub fn tree(&self) -> &SparseMerkleTree {
        &self.tree
    }

    /// Appends one commitment; returns its position.
    pub fn append(&mut self, cm: Fr) -> Result<u64, TreeError> {
        if self.count >= self.tree.capacity() {
            return Err(TreeError::TreeFull {
                depth: self.depth(),
            });
        }
        let pos = self.count;
        self.tree.set_leaf(pos, cm)?;
        self.count += 1;
        Ok(pos)
    }

    /// Where [`Self::append_subtree`] would write `len` leaves: `count` rounded up to a multiple
    /// of `len` (a power of two).
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

    /// Appends `leaves` (a power-of-two count) as one aligned subtree at
    /// [`Self::next_subtree_start`]; returns the start. The count becomes `start + leaves.len()`.
    pub fn append_subtree(&mut self, leaves: &[Fr]) -> Result<u64, TreeError> {
        let start = self.next_subtree_start(leaves.len())?;
        self.tree.set_subtree(start, leaves)?;
        self.count = start + leaves.len() as u64;
        Ok(start)
    }

    /// The authentication path of position `pos`.
    pub fn path(&self, pos: u64) -> Result<MerklePath, TreeError> {
        self.tree.path(pos)
    }

    /// The path above the aligned subtree of `2^m` leaves at `start`.
    pub fn subtree_path(&self, start: u64, m: usize) -> Result<SubtreePath, TreeError> {
        self.tree.subtree_path(start, m)
    }

    /// The commitment at `pos` (`0` if empty).
    pub fn leaf(&self, pos: u64) -> Fr {
        self.tree.leaf(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{empty_roots, sparse::naive_root, subtree_roots};
    use ark_ff::Zero;

    fn cms(from: u64, n: u64) -> Vec<Fr> {
        (from..from + n).map(|i| Fr::from(1000 + i)).collect()
    }

    #[test]
    fn append_and_paths() {
        let mut t = NoteTree::new(8);
        assert_eq!(t.root(), empty_roots(4)[4]);
        assert_eq!(
            NoteTree::try_new(7).map(|t| t.depth()),
            Err(TreeError::BadDepth { depth: 7 })
        );
        for (i, cm) in cms(0, 5).into_iter().enumerate() {
            assert_eq!(t.append(cm).unwrap(), i as u64);
        }
        assert_eq!(t.count(), 5);
        for pos in 0..6 {
            assert_eq!(t.path(pos).unwrap().root(t.leaf(pos), pos), t.root());
        }
    }

    #[test]
    fn append_subtree_aligns_up() {
        let mut t = NoteTree::new(8);
        t.append(Fr::from(7u64)).unwrap();
        let start = t.append_subtree(&cms(0, 4)).unwrap();
        assert_eq!(start, 4);
        assert_eq!(t.count(), 8);
        for pos in 1..4 {
            assert_eq!(t.leaf(pos), Fr::zero());
        }
        // an already aligned count is not moved
        assert_eq!(t.append_subtree(&cms(4, 8)).unwrap(), 8);
        assert_eq!(t.count(), 16);
        assert_eq!(t.append_subtree(&cms(12, 1)).unwrap(), 16);

        let mut by_hand = NoteTree::new(8);
        by_hand.append(Fr::from(7u64)).unwrap();
        for _ in 1..4 {
            by_hand.append(Fr::zero()).unwrap();
        }
        for cm in cms(0, 4).into_iter().chain(cms(4, 8)).chain(cms(12, 1)) {
            by_hand.append(cm).unwrap();
        }
        assert_eq!(t.root(), by_hand.root());
        assert_eq!(t.count(), by_hand.count());
        let mut dense = vec![Fr::zero(); 17];
        dense[0] = Fr::from(7u64);
        dense[4..17].copy_from_slice(&[cms(0, 4), cms(4, 8), cms(12, 1)].concat());
        assert_eq!(t.root(), naive_root(4, &dense));
        // 8 leaves at 8: two halves (nodes 2 and 3 of level 1), children (2, 3) of their parent
        let sub = t.subtree_path(8, 3).unwrap();
        assert_eq!(sub.pair, Some([t.tree().node(1, 0), t.tree().node(1, 1)]));
        assert_eq!(sub.root(&subtree_roots(&cms(4, 8)), 1), t.root());
    }

    #[test]
    fn full_tree_is_rejected() {
        let mut t = NoteTree::new(4);
        assert_eq!(t.append_subtree(&cms(0, 8)).unwrap(), 0);
        t.append(Fr::from(1u64)).unwrap();
        assert_eq!(
            t.append_subtree(&cms(0, 8)),
            Err(TreeError::TreeFull { depth: 4 })
        );
        assert_eq!(
            t.append_subtree(&cms(0, 3)),
            Err(TreeError::BadSubtreeLength { len: 3 })
        );
        assert_eq!(t.append_subtree(&cms(0, 4)).unwrap(), 12);
        let root = t.root();
        assert_eq!(
            t.append(Fr::from(3u64)),
            Err(TreeError::TreeFull { depth: 4 })
        );
        assert_eq!(t.root(), root);
        assert_eq!(t.count(), 16);
    }
}
