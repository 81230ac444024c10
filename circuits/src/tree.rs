//! The state trees (DESIGN §5): the append-only note tree and the indexed nullifier tree, both
//! binary Poseidon Merkle trees over a [`SparseMerkleTree`] that stores only touched nodes, plus
//! the Merkle-path gadgets in [`gadget`].
//!
//! Levels count from the leaves: level 0 holds the leaves, level `D` the root. An empty leaf is
//! `0` and an empty subtree of height `i` has the precomputed root [`empty_roots`]`[i]`.

pub mod gadget;
pub mod note_tree;
pub mod nullifier_tree;
pub mod sparse;

use std::sync::OnceLock;

use ark_bn254::Fr;
use ark_ff::{BigInteger, PrimeField, Zero};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::constants::MAX_DEPTH;
use crate::poseidon::hash2;

pub use note_tree::NoteTree;
pub use nullifier_tree::{NullifierLeaf, NullifierTree};
pub use sparse::SparseMerkleTree;

/// Errors of the native trees. All are caller errors: the tree is left unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// A leaf position (or node index) beyond the tree's capacity.
    #[error("position {position} out of range for a tree of {capacity} leaves")]
    PositionOutOfRange { position: u64, capacity: u64 },
    /// No room left for the leaves being appended.
    #[error("tree of depth {depth} is full")]
    TreeFull { depth: usize },
    /// A subtree whose length is not a power of two (or is zero, or taller than the tree).
    #[error("subtree of {len} leaves is not a power of two fitting the tree")]
    BadSubtreeLength { len: usize },
    /// A subtree whose start is not a multiple of its length.
    #[error("subtree of {len} leaves at {start} is not aligned")]
    MisalignedSubtree { start: u64, len: u64 },
    /// A subtree that would overwrite already used slots.
    #[error("subtree at {start} overlaps the {count} used slots")]
    SubtreeOverlapsUsed { start: u64, count: u64 },
    /// A nullifier already in the set.
    #[error("value {0} already present")]
    AlreadyPresent(Fr),
    /// `0` is the genesis leaf's value and can never be inserted.
    #[error("value 0 cannot be inserted")]
    ZeroValue,
    /// An index of the nullifier tree holding no leaf.
    #[error("no leaf at index {0}")]
    NoLeaf(u64),
}

/// Roots of empty subtrees: `e[0] = 0`, `e[i + 1] = H(e[i], e[i])`, for heights `0..=depth`
/// (`depth <= MAX_DEPTH`). Computed once and cached.
pub fn empty_roots(depth: usize) -> &'static [Fr] {
    static ROOTS: OnceLock<Vec<Fr>> = OnceLock::new();
    assert!(
        depth <= MAX_DEPTH,
        "depth {depth} exceeds MAX_DEPTH = {MAX_DEPTH}"
    );
    let all = ROOTS.get_or_init(|| {
        let mut e = Vec::with_capacity(MAX_DEPTH + 1);
        e.push(Fr::zero());
        for i in 0..MAX_DEPTH {
            e.push(hash2(e[i], e[i]));
        }
        e
    });
    &all[..=depth]
}

/// The root of an empty subtree of height `level`.
pub fn empty_root(level: usize) -> Fr {
    empty_roots(level)[level]
}

/// An authentication path: the siblings from the leaf's level upwards (leaf-to-root order). A full
/// leaf path has `D` siblings; a subtree path ([`SparseMerkleTree::subtree_path`]) has `D - k`.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MerklePath {
    /// `siblings[i]` is the sibling at height `i` above the starting node.
    #[serde(with = "fr_hex_vec")]
    pub siblings: Vec<Fr>,
}

impl MerklePath {
    /// Number of levels the path climbs.
    pub fn len(&self) -> usize {
        self.siblings.len()
    }

    /// Whether the path climbs no level (the node is the root).
    pub fn is_empty(&self) -> bool {
        self.siblings.is_empty()
    }

    /// The root reached from `leaf` at `position` (bit `i` of `position` says whether the node at
    /// height `i` is a right child). Bits above the path's length are ignored.
    pub fn root(&self, leaf: Fr, position: u64) -> Fr {
        self.siblings
            .iter()
            .enumerate()
            .fold(leaf, |cur, (i, sib)| {
                if i < 64 && (position >> i) & 1 == 1 {
                    hash2(*sib, cur)
                } else {
                    hash2(cur, *sib)
                }
            })
    }
}

/// A field element as a `0x`-prefixed, 64-digit big-endian hex string.
pub fn fr_to_hex(x: &Fr) -> String {
    format!("0x{}", hex::encode(x.into_bigint().to_bytes_be()))
}

/// Parses [`fr_to_hex`]'s format (the `0x` and leading zeros are optional); rejects non-canonical
/// values.
pub fn fr_from_hex(s: &str) -> Option<Fr> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    let padded = format!("{s:0>64}");
    let bytes = hex::decode(padded).ok()?;
    let x = Fr::from_be_bytes_mod_order(&bytes);
    (x.into_bigint().to_bytes_be() == bytes).then_some(x)
}

mod fr_hex_vec {
    use super::*;

    pub fn serialize<S: Serializer>(xs: &[Fr], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(xs.iter().map(fr_to_hex))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Fr>, D::Error> {
        let strings = Vec::<String>::deserialize(d)?;
        strings
            .iter()
            .map(|s| {
                fr_from_hex(s)
                    .ok_or_else(|| serde::de::Error::custom(format!("bad field element {s}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_roots_chain() {
        let e = empty_roots(MAX_DEPTH);
        assert_eq!(e.len(), MAX_DEPTH + 1);
        assert_eq!(e[0], Fr::zero());
        for i in 0..MAX_DEPTH {
            assert_eq!(e[i + 1], hash2(e[i], e[i]));
        }
        assert_eq!(empty_roots(3), &e[..4]);
        assert_eq!(empty_root(7), e[7]);
    }

    #[test]
    fn path_serde_roundtrip() {
        let path = MerklePath {
            siblings: vec![Fr::zero(), -Fr::from(1u64), Fr::from(255u64)],
        };
        let json = serde_json::to_string(&path).unwrap();
        assert!(
            json.contains("\"0x00000000000000000000000000000000000000000000000000000000000000ff\"")
        );
        let back: MerklePath = serde_json::from_str(&json).unwrap();
        assert_eq!(back, path);
        // the modulus itself is not canonical
        let p = "0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001";
        assert!(fr_from_hex(p).is_none());
        assert!(
            serde_json::from_str::<MerklePath>(&format!("{{\"siblings\":[\"{p}\"]}}")).is_err()
        );
    }
}
