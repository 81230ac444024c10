//! The state trees (DESIGN §5, with the 4-ary change of `docs/design-changes.md`): the
//! append-only note tree and the indexed nullifier tree, both 4-ary Poseidon Merkle trees over a
//! [`SparseMerkleTree`] that stores only touched nodes, plus the Merkle-path gadgets in
//! [`gadget`].
//!
//! A tree of depth `D` (even) has `2^D` leaves and `D / 2` levels of 4-ary nodes
//! `H(c0, c1, c2, c3)` (circomlib Poseidon with 4 inputs, no domain tag). Levels count from the
//! leaves: level 0 holds the leaves, level `D / 2` the root; a position's little-endian base-4
//! digits pick the child at each level. An empty leaf is `0` and an empty subtree of `i` levels
//! has the precomputed root [`empty_roots`]`[i]`.

pub mod gadget;
pub mod note_tree;
pub mod nullifier_tree;
pub mod sparse;

use std::sync::OnceLock;

use ark_bn254::Fr;
use ark_ff::{BigInteger, PrimeField, Zero};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::constants::MAX_DEPTH;
use crate::poseidon::poseidon;

pub use note_tree::NoteTree;
pub use nullifier_tree::{NullifierLeaf, NullifierTree};
pub use sparse::SparseMerkleTree;

/// Children per node.
pub const ARITY: usize = 4;

/// The most 4-ary levels a tree can have: `MAX_DEPTH / 2`.
pub const MAX_LEVELS: usize = MAX_DEPTH / 2;

/// Errors of the native trees. All are caller errors: the tree is left unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// A depth that is odd, zero or above `MAX_DEPTH` (a 4-ary tree has `D / 2` levels).
    #[error("tree depth must be even and in 2..={MAX_DEPTH}, got {depth}")]
    BadDepth { depth: usize },
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

/// Checks that `depth` is a valid tree depth (even, `2..=MAX_DEPTH`); returns its level count.
pub fn levels_of(depth: usize) -> Result<usize, TreeError> {
    if depth == 0 || !depth.is_multiple_of(2) || depth > MAX_DEPTH {
        return Err(TreeError::BadDepth { depth });
    }
    Ok(depth / 2)
}

/// The node hash `H(c0, c1, c2, c3)`.
pub fn node_hash(children: &[Fr; ARITY]) -> Fr {
    poseidon(children)
}

/// The four children of a node whose child `digit` is `cur` and whose other children are
/// `siblings`, left to right.
pub fn arrange(cur: Fr, siblings: &[Fr; 3], digit: usize) -> [Fr; ARITY] {
    assert!(digit < ARITY, "a base-4 digit, got {digit}");
    let mut children = [Fr::zero(); ARITY];
    let mut s = siblings.iter();
    for (j, c) in children.iter_mut().enumerate() {
        *c = if j == digit {
            cur
        } else {
            *s.next().expect("three siblings")
        };
    }
    children
}

/// Roots of empty subtrees: `e[0] = 0`, `e[i + 1] = H(e[i], e[i], e[i], e[i])`, for `0..=levels`
/// 4-ary levels (`levels <= MAX_LEVELS`). Computed once and cached.
pub fn empty_roots(levels: usize) -> &'static [Fr] {
    static ROOTS: OnceLock<Vec<Fr>> = OnceLock::new();
    assert!(
        levels <= MAX_LEVELS,
        "{levels} levels exceed MAX_LEVELS = {MAX_LEVELS}"
    );
    let all = ROOTS.get_or_init(|| {
        let mut e = Vec::with_capacity(MAX_LEVELS + 1);
        e.push(Fr::zero());
        for i in 0..MAX_LEVELS {
            e.push(node_hash(&[e[i]; ARITY]));
        }
        e
    });
    &all[..=levels]
}

/// The root of an empty subtree of `level` 4-ary levels.
pub fn empty_root(level: usize) -> Fr {
    empty_roots(level)[level]
}

/// An authentication path, leaf-to-root: per level, the three other children of the node's
/// parent in child order. A full leaf path has `D / 2` levels; a subtree path
/// ([`SparseMerkleTree::subtree_path`]) fewer.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MerklePath {
    /// `siblings[i]`: the other three children at level `i` above the starting node.
    #[serde(with = "serde_hex_levels")]
    pub siblings: Vec<[Fr; 3]>,
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

    /// The root reached from `leaf` at `position`: base-4 digit `i` of `position` (bits `2i` and
    /// `2i + 1`) is the node's child index at level `i`. Digits above the path are ignored.
    pub fn root(&self, leaf: Fr, position: u64) -> Fr {
        self.siblings
            .iter()
            .enumerate()
            .fold(leaf, |cur, (i, sibs)| {
                let digit = if 2 * i < 64 {
                    ((position >> (2 * i)) & 3) as usize
                } else {
                    0
                };
                node_hash(&arrange(cur, sibs, digit))
            })
    }
}

/// The roots of an aligned subtree of `2^m` leaves (a power-of-two count) as 4-ary nodes: one
/// node at level `m / 2` if `m` is even, two adjacent nodes (its halves) at level `(m - 1) / 2`
/// if `m` is odd. `(4^(m/2) - 1) / 3` resp. `2 (4^((m-1)/2) - 1) / 3` hashes.
pub fn subtree_roots(leaves: &[Fr]) -> Vec<Fr> {
    assert!(
        !leaves.is_empty() && leaves.len().is_power_of_two(),
        "a subtree has a power-of-two number of leaves, got {}",
        leaves.len()
    );
    let mut level = leaves.to_vec();
    while level.len() >= ARITY {
        level = level
            .chunks_exact(ARITY)
            .map(|c| node_hash(&[c[0], c[1], c[2], c[3]]))
            .collect();
    }
    level
}

/// The path above an aligned subtree of `2^m` leaves: for odd `m` (two half nodes at level
/// `k = (m - 1) / 2`, children `(0, 1)` or `(2, 3)` of their parent) the parent's other two
/// children in child order, then the ordinary 4-ary path from the subtree's top node (`m` even)
/// or that parent (`m` odd) to the root.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubtreePath {
    /// Odd `m` only: the parent's two children that are not the subtree's halves.
    #[serde(
        default,
        with = "serde_hex_opt_pair",
        skip_serializing_if = "Option::is_none"
    )]
    pub pair: Option<[Fr; 2]>,
    /// The 4-ary path above.
    pub path: MerklePath,
}

impl SubtreePath {
    /// The tree root with `roots` ([`subtree_roots`] of the leaves: one node, or two halves)
    /// written as subtree number `index` (`start >> m`).
    pub fn root(&self, roots: &[Fr], index: u64) -> Fr {
        match (self.pair, roots) {
            (None, [top]) => self.path.root(*top, index),
            (Some([x0, x1]), [s0, s1]) => {
                let children = if index & 1 == 0 {
                    [*s0, *s1, x0, x1]
                } else {
                    [x0, x1, *s0, *s1]
                };
                self.path.root(node_hash(&children), index >> 1)
            }
            _ => {
                panic!("a subtree path with a pair takes two half roots, without one a single root")
            }
        }
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

fn parse_fixed<const N: usize, E: serde::de::Error>(strings: &[String]) -> Result<[Fr; N], E> {
    let xs = strings
        .iter()
        .map(|s| fr_from_hex(s).ok_or_else(|| E::custom(format!("bad field element {s}"))))
        .collect::<Result<Vec<_>, E>>()?;
    xs.try_into()
        .map_err(|_| E::custom(format!("expected exactly {N} field elements")))
}

/// Serde adapter for a path's levels: a list of levels, each a list of three `0x` hex strings.
pub mod serde_hex_levels {
    use super::*;

    /// Serializes as `[[hex, hex, hex], ...]`.
    pub fn serialize<S: Serializer>(levels: &[[Fr; 3]], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            levels
                .iter()
                .map(|l| l.iter().map(fr_to_hex).collect::<Vec<_>>()),
        )
    }

    /// Deserializes levels of exactly three canonical hex strings.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[Fr; 3]>, D::Error> {
        let levels = Vec::<Vec<String>>::deserialize(d)?;
        levels.iter().map(|l| parse_fixed::<3, _>(l)).collect()
    }
}

mod serde_hex_opt_pair {
    use super::*;

    pub fn serialize<S: Serializer>(pair: &Option<[Fr; 2]>, s: S) -> Result<S::Ok, S::Error> {
        match pair {
            Some(p) => s.serialize_some(&p.iter().map(fr_to_hex).collect::<Vec<_>>()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[Fr; 2]>, D::Error> {
        Option::<Vec<String>>::deserialize(d)?
            .map(|p| parse_fixed::<2, _>(&p))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_roots_chain() {
        let e = empty_roots(MAX_LEVELS);
        assert_eq!(e.len(), MAX_LEVELS + 1);
        assert_eq!(e[0], Fr::zero());
        for i in 0..MAX_LEVELS {
            assert_eq!(e[i + 1], poseidon(&[e[i], e[i], e[i], e[i]]));
        }
        assert_eq!(empty_roots(3), &e[..4]);
        assert_eq!(empty_root(7), e[7]);
    }

    #[test]
    fn depths_must_be_even() {
        assert_eq!(levels_of(32), Ok(16));
        assert_eq!(levels_of(2), Ok(1));
        for bad in [0, 1, 9, MAX_DEPTH + 1, MAX_DEPTH + 2] {
            assert_eq!(levels_of(bad), Err(TreeError::BadDepth { depth: bad }));
        }
    }

    #[test]
    fn arrange_puts_cur_at_its_digit() {
        let (c, s) = (Fr::from(9u64), [1u64, 2, 3].map(Fr::from));
        let f = |xs: [u64; 4]| xs.map(Fr::from);
        assert_eq!(arrange(c, &s, 0), f([9, 1, 2, 3]));
        assert_eq!(arrange(c, &s, 1), f([1, 9, 2, 3]));
        assert_eq!(arrange(c, &s, 2), f([1, 2, 9, 3]));
        assert_eq!(arrange(c, &s, 3), f([1, 2, 3, 9]));
    }

    #[test]
    fn path_serde_roundtrip() {
        let path = MerklePath {
            siblings: vec![
                [Fr::zero(), -Fr::from(1u64), Fr::from(255u64)],
                [Fr::from(1u64); 3],
            ],
        };
        let json = serde_json::to_string(&path).unwrap();
        assert!(json.starts_with("{\"siblings\":[[\"0x"));
        assert!(
            json.contains("\"0x00000000000000000000000000000000000000000000000000000000000000ff\"")
        );
        let back: MerklePath = serde_json::from_str(&json).unwrap();
        assert_eq!(back, path);
        // the modulus itself is not canonical; a level needs exactly three elements
        let p = "0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001";
        assert!(fr_from_hex(p).is_none());
        assert!(serde_json::from_str::<MerklePath>(&format!(
            "{{\"siblings\":[[\"{p}\",\"0x1\",\"0x2\"]]}}"
        ))
        .is_err());
        assert!(serde_json::from_str::<MerklePath>("{\"siblings\":[[\"0x1\",\"0x2\"]]}").is_err());
        assert!(serde_json::from_str::<MerklePath>("{\"siblings\":[\"0x1\"]}").is_err());

        let sub = SubtreePath {
            pair: Some([Fr::from(5u64), Fr::from(6u64)]),
            path: path.clone(),
        };
        let json = serde_json::to_string(&sub).unwrap();
        assert_eq!(serde_json::from_str::<SubtreePath>(&json).unwrap(), sub);
        let even = SubtreePath { pair: None, path };
        let json = serde_json::to_string(&even).unwrap();
        assert!(!json.contains("pair"));
        assert_eq!(serde_json::from_str::<SubtreePath>(&json).unwrap(), even);
    }

    #[test]
    fn subtree_roots_shapes() {
        let leaves: Vec<Fr> = (1..=8u64).map(Fr::from).collect();
        assert_eq!(subtree_roots(&leaves[..1]), vec![leaves[0]]);
        assert_eq!(subtree_roots(&leaves[..2]), leaves[..2].to_vec());
        let h = |c: &[Fr]| node_hash(&[c[0], c[1], c[2], c[3]]);
        assert_eq!(subtree_roots(&leaves[..4]), vec![h(&leaves[..4])]);
        assert_eq!(
            subtree_roots(&leaves),
            vec![h(&leaves[..4]), h(&leaves[4..])]
        );
    }
}
