//! Mutations of seed inputs for `fuzz_decoders.rs`, as proptest strategies (so failures shrink
//! to a short list of small mutations): byte-level ones for every format (bit flips, byte
//! insertion, deletion and replacement, overwriting with interesting integers, truncation,
//! splicing two seeds) and, for JSON seeds, structure-aware ones applied first (a value
//! replaced by another JSON type or by another value of the document, huge and odd numbers, deep nesting, duplicate, removed and
//! unknown keys, unicode, very long strings).

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use serde_json::{Map, Value};

/// Bytes a parser treats specially (JSON punctuation, digits, hex letters, controls, edges).
const INTERESTING_BYTES: &[u8] = b"\x00\x01\x7f\x80\xfe\xff\"\\{}[]:,-+.0123456789eExXaAfF \n\t";

/// Integers at edges of lengths, flags and ranges (written little- or big-endian).
const INTERESTING_INTS: &[u64] = &[
    0,
    1,
    2,
    0x3f,
    0x40,
    0x7f,
    0x80,
    0xfc,
    0xfd,
    0xfe,
    0xff,
    0x100,
    0x7fff,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0xffff_ffff,
    0x1_0000_0000,
    1 << 40,
    1 << 56,
    i64::MAX as u64,
    1 << 63,
    u64::MAX - 1,
    u64::MAX,
];

/// Number literals around the decoders' ranges, and things that are not JSON numbers at all.
const ODD_NUMBERS: &[&str] = &[
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "9223372036854775808",
    "-9223372036854775809",
    "-1",
    "-0",
    "0.0",
    "1.5",
    "1e19",
    "1E2",
    "1e400",
    "-1e400",
    "1e-400",
    "00",
    "0x10",
    "NaN",
    "Infinity",
    "99999999999999999999999999999999999999999999999999999999999999999999999999999999",
];

/// Unicode and escapes inside strings (raw JSON string contents).
const UNICODE: &[&str] = &[
    "é",
    "\\u0000",
    "\\ud800",
    "\\udc00\\ud800",
    "\\ud83d\\ude00",
    "😀",
    "\u{202e}",
    "０ｘ１",
    "\u{feff}",
    "ﬀ",
    "\\\"",
    "\\n",
];

/// Keys for added members: unknown, near-duplicates of real ones, unicode.
const KEYS: &[&str] = &["extra", "fee ", "Fee", "fée", "", "__proto__", "version"];

/// One byte-level mutation. Positions are [`Index`]es, scaled to the data's length.
#[derive(Debug, Clone)]
pub enum ByteMutation {
    /// Flips one bit.
    FlipBit { at: Index, bit: u8 },
    /// Inserts bytes.
    Insert { at: Index, bytes: Vec<u8> },
    /// Deletes up to `len` bytes.
    Delete { at: Index, len: usize },
    /// Replaces one byte.
    Replace { at: Index, byte: u8 },
    /// Overwrites `width` bytes with an integer.
    Overwrite {
        at: Index,
        value: u64,
        width: usize,
        big_endian: bool,
    },
    /// Cuts the data.
    Truncate { at: Index },
    /// Keeps the data up to `at`, then another seed from `from` on.
    Splice {
        other: Index,
        at: Index,
        from: Index,
    },
}

fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![any::<u8>(), select(INTERESTING_BYTES)]
}

fn byte_mutation() -> impl Strategy<Value = ByteMutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(at, bit)| ByteMutation::FlipBit { at, bit }),
        (any::<Index>(), vec(interesting_byte(), 1..=8))
            .prop_map(|(at, bytes)| ByteMutation::Insert { at, bytes }),
        (any::<Index>(), 1usize..=16).prop_map(|(at, len)| ByteMutation::Delete { at, len }),
        (any::<Index>(), interesting_byte())
            .prop_map(|(at, byte)| ByteMutation::Replace { at, byte }),
        (
            any::<Index>(),
            prop_oneof![select(INTERESTING_INTS), any::<u64>()],
            select(&[1usize, 2, 4, 8][..]),
            any::<bool>()
        )
            .prop_map(|(at, value, width, big_endian)| ByteMutation::Overwrite {
                at,
                value,
                width,
                big_endian
            }),
        any::<Index>().prop_map(|at| ByteMutation::Truncate { at }),
        (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(other, at, from)| ByteMutation::Splice { other, at, from }),
    ]
}

impl ByteMutation {
    fn apply(&self, data: &mut Vec<u8>, seeds: &[Vec<u8>]) {
        let len = data.len();
        match self {
            ByteMutation::FlipBit { at, bit } if len > 0 => data[at.index(len)] ^= 1 << bit,
            ByteMutation::Insert { at, bytes } => {
                let i = at.index(len + 1);
                data.splice(i..i, bytes.iter().copied());
            }
            ByteMutation::Delete { at, len: n } if len > 0 => {
                let i = at.index(len);
                data.drain(i..(i + n).min(len));
            }
            ByteMutation::Replace { at, byte } if len > 0 => data[at.index(len)] = *byte,
            ByteMutation::Overwrite {
                at,
                value,
                width,
                big_endian,
            } if len >= *width => {
                let i = at.index(len - width + 1);
                let bytes = if *big_endian {
                    value.to_be_bytes()[8 - width..].to_vec()
                } else {
                    value.to_le_bytes()[..*width].to_vec()
                };
                data[i..i + width].copy_from_slice(&bytes);
            }
            ByteMutation::Truncate { at } => data.truncate(at.index(len + 1)),
            ByteMutation::Splice { other, at, from } => {
                let other = &seeds[other.index(seeds.len())];
                data.truncate(at.index(len + 1));
                data.extend_from_slice(&other[from.index(other.len() + 1)..]);
            }
            _ => {}
        }
    }
}

/// A JSON value of some type, as text.
#[derive(Debug, Clone, Copy)]
pub enum JsonKind {
    Null,
    True,
    Zero,
    Negative,
    Float,
    EmptyString,
    HexString,
    EmptyArray,
    EmptyObject,
    PairOfHex,
}

impl JsonKind {
    const ALL: [JsonKind; 10] = [
        JsonKind::Null,
        JsonKind::True,
        JsonKind::Zero,
        JsonKind::Negative,
        JsonKind::Float,
        JsonKind::EmptyString,
        JsonKind::HexString,
        JsonKind::EmptyArray,
        JsonKind::EmptyObject,
        JsonKind::PairOfHex,
    ];

    fn text(self) -> &'static str {
        match self {
            JsonKind::Null => "null",
            JsonKind::True => "true",
            JsonKind::Zero => "0",
            JsonKind::Negative => "-1",
            JsonKind::Float => "1.5",
            JsonKind::EmptyString => "\"\"",
            JsonKind::HexString => "\"0x1\"",
            JsonKind::EmptyArray => "[]",
            JsonKind::EmptyObject => "{}",
            JsonKind::PairOfHex => "[\"0x1\",\"0x2\"]",
        }
    }
}

/// One structure-aware mutation of a JSON document; `node` picks among the nodes it applies
/// to (all, objects, object members or strings), in document order.
#[derive(Debug, Clone)]
pub enum JsonMutation {
    /// A node replaced by a value of another type.
    ChangeType { node: Index, to: JsonKind },
    /// A leaf replaced by another leaf's value (a well-typed, valid but wrong value: another
    /// field element, amount or flag).
    CopyValue { node: Index, from: Index },
    /// A node replaced by an odd number literal.
    OddNumber { node: Index, text: &'static str },
    /// A node replaced by `depth` nested arrays or objects.
    DeepNesting {
        node: Index,
        depth: usize,
        arrays: bool,
    },
    /// An object member repeated with another value.
    DuplicateKey { node: Index, to: JsonKind },
    /// An object member removed.
    RemoveKey { node: Index },
    /// A member added to an object.
    AddKey {
        node: Index,
        key: &'static str,
        to: JsonKind,
    },
    /// Unicode or an escape inserted into a string.
    Unicode {
        node: Index,
        text: &'static str,
        at: Index,
    },
    /// A string replaced by `len` copies of `fill`.
    LongString { node: Index, len: usize, fill: char },
}

fn json_mutation() -> impl Strategy<Value = JsonMutation> {
    let kind = select(&JsonKind::ALL[..]);
    prop_oneof![
        (any::<Index>(), kind.clone()).prop_map(|(node, to)| JsonMutation::ChangeType { node, to }),
        (any::<Index>(), any::<Index>())
            .prop_map(|(node, from)| JsonMutation::CopyValue { node, from }),
        (any::<Index>(), select(ODD_NUMBERS))
            .prop_map(|(node, text)| JsonMutation::OddNumber { node, text }),
        (
            any::<Index>(),
            select(&[2usize, 64, 127, 128, 129, 1000, 20_000][..]),
            any::<bool>()
        )
            .prop_map(|(node, depth, arrays)| JsonMutation::DeepNesting {
                node,
                depth,
                arrays
            }),
        (any::<Index>(), kind.clone())
            .prop_map(|(node, to)| JsonMutation::DuplicateKey { node, to }),
        any::<Index>().prop_map(|node| JsonMutation::RemoveKey { node }),
        (any::<Index>(), select(KEYS), kind).prop_map(|(node, key, to)| JsonMutation::AddKey {
            node,
            key,
            to
        }),
        (any::<Index>(), select(UNICODE), any::<Index>())
            .prop_map(|(node, text, at)| JsonMutation::Unicode { node, text, at }),
        (
            any::<Index>(),
            select(&[63usize, 65, 66, 127, 129, 130, 1_000, 70_000][..]),
            select(&['0', 'f', 'a', 'é'][..])
        )
            .prop_map(|(node, len, fill)| JsonMutation::LongString { node, len, fill }),
    ]
}

/// A step of a path into a JSON document.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    At(usize),
}

/// Every node's path, in document order.
fn paths(v: &Value, path: &mut Vec<Seg>, out: &mut Vec<(Vec<Seg>, Value)>) {
    out.push((path.clone(), v.clone()));
    match v {
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                path.push(Seg::At(i));
                paths(x, path, out);
                path.pop();
            }
        }
        Value::Object(members) => {
            for (k, x) in members {
                path.push(Seg::Key(k.clone()));
                paths(x, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn node_mut<'a>(v: &'a mut Value, path: &[Seg]) -> &'a mut Value {
    path.iter().fold(v, |v, seg| match seg {
        Seg::Key(k) => &mut v[k.as_str()],
        Seg::At(i) => &mut v[*i],
    })
}

/// Writes `v` compactly, with the node at `target` written as `raw`.
fn render(v: &Value, path: &mut Vec<Seg>, target: &[Seg], raw: &str, out: &mut String) {
    if path == target {
        out.push_str(raw);
        return;
    }
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                path.push(Seg::At(i));
                render(x, path, target, raw, out);
                path.pop();
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (k, x)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                path.push(Seg::Key(k.clone()));
                render(x, path, target, raw, out);
                path.pop();
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Picks the `index`-th of the nodes that `keep` selects, if any.
fn pick(
    nodes: &[(Vec<Seg>, Value)],
    index: &Index,
    keep: impl Fn(&(Vec<Seg>, Value)) -> bool,
) -> Option<(Vec<Seg>, Value)> {
    let chosen: Vec<_> = nodes.iter().filter(|n| keep(n)).collect();
    (!chosen.is_empty()).then(|| chosen[index.index(chosen.len())].clone())
}

impl JsonMutation {
    /// The mutated document's text, `None` if the mutation does not apply (no such node).
    fn apply(&self, doc: &Value) -> Option<String> {
        let mut nodes = Vec::new();
        paths(doc, &mut Vec::new(), &mut nodes);
        let with_raw = |path: &[Seg], raw: &str| {
            let mut out = String::new();
            render(doc, &mut Vec::new(), path, raw, &mut out);
            out
        };
        let is_member = |n: &(Vec<Seg>, Value)| matches!(n.0.last(), Some(Seg::Key(_)));
        let is_object = |n: &(Vec<Seg>, Value)| n.1.is_object();
        let is_string = |n: &(Vec<Seg>, Value)| n.1.is_string();
        match self {
            JsonMutation::ChangeType { node, to } => {
                let (path, _) = pick(&nodes, node, |_| true)?;
                Some(with_raw(&path, to.text()))
            }
            JsonMutation::CopyValue { node, from } => {
                let is_leaf = |n: &(Vec<Seg>, Value)| !n.1.is_object() && !n.1.is_array();
                let (path, _) = pick(&nodes, node, is_leaf)?;
                let (_, value) = pick(&nodes, from, is_leaf)?;
                Some(with_raw(&path, &value.to_string()))
            }
            JsonMutation::OddNumber { node, text } => {
                let (path, _) = pick(&nodes, node, |_| true)?;
                Some(with_raw(&path, text))
            }
            JsonMutation::DeepNesting {
                node,
                depth,
                arrays,
            } => {
                let (path, _) = pick(&nodes, node, |_| true)?;
                let (open, close) = if *arrays {
                    ("[", "]")
                } else {
                    ("{\"a\":", "}")
                };
                let raw = format!("{}0{}", open.repeat(*depth), close.repeat(*depth));
                Some(with_raw(&path, &raw))
            }
            JsonMutation::DuplicateKey { node, to } => {
                let (path, value) = pick(&nodes, node, is_member)?;
                let Some(Seg::Key(key)) = path.last() else {
                    return None;
                };
                let parent = &path[..path.len() - 1];
                let mut object: Map<String, Value> =
                    node_mut(&mut doc.clone(), parent).as_object()?.clone();
                object.remove(key);
                let mut raw = Value::Object(object).to_string();
                raw.pop();
                if raw.len() > 1 {
                    raw.push(',');
                }
                let key = Value::String(key.clone()).to_string();
                raw.push_str(&format!("{key}:{value},{key}:{}}}", to.text()));
                Some(with_raw(parent, &raw))
            }
            JsonMutation::RemoveKey { node } => {
                let (path, _) = pick(&nodes, node, is_member)?;
                let Some(Seg::Key(key)) = path.last() else {
                    return None;
                };
                let mut doc = doc.clone();
                node_mut(&mut doc, &path[..path.len() - 1])
                    .as_object_mut()?
                    .remove(key);
                Some(doc.to_string())
            }
            JsonMutation::AddKey { node, key, to } => {
                let (path, _) = pick(&nodes, node, is_object)?;
                let mut doc = doc.clone();
                let value: Value = serde_json::from_str(to.text()).expect("kinds are JSON");
                node_mut(&mut doc, &path)
                    .as_object_mut()?
                    .insert((*key).to_owned(), value);
                Some(doc.to_string())
            }
            JsonMutation::Unicode { node, text, at } => {
                let (path, value) = pick(&nodes, node, is_string)?;
                let quoted = value.to_string();
                let inner = &quoted[1..quoted.len() - 1];
                let boundaries: Vec<usize> = (0..=inner.len())
                    .filter(|&i| inner.is_char_boundary(i))
                    .collect();
                let i = boundaries[at.index(boundaries.len())];
                let raw = format!("\"{}{text}{}\"", &inner[..i], &inner[i..]);
                Some(with_raw(&path, &raw))
            }
            JsonMutation::LongString { node, len, fill } => {
                let (path, _) = pick(&nodes, node, is_string)?;
                let raw = Value::String(std::iter::repeat_n(*fill, *len).collect()).to_string();
                Some(with_raw(&path, &raw))
            }
        }
    }
}

/// Bytes shown escaped, so a failing input prints as something one can paste.
#[derive(Clone)]
pub struct Bytes(pub Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b\"{}\" ({} bytes)", self.0.escape_ascii(), self.0.len())
    }
}

/// Inputs made from `seeds`: a seed, then (JSON seeds only) up to two structure-aware
/// mutations, then up to `max_byte_mutations` byte-level ones (none at all now and then, so
/// the seeds themselves are checked too).
pub fn inputs(
    seeds: Vec<Vec<u8>>,
    json: bool,
    max_byte_mutations: usize,
) -> impl Strategy<Value = Bytes> {
    let json_mutations = if json { 0..=2usize } else { 0..=0 };
    (
        any::<Index>(),
        vec(json_mutation(), json_mutations),
        vec(byte_mutation(), 0..=max_byte_mutations),
    )
        .prop_map(move |(seed, json_mutations, byte_mutations)| {
            let mut data = seeds[seed.index(seeds.len())].clone();
            for m in &json_mutations {
                let Ok(doc) = serde_json::from_slice::<Value>(&data) else {
                    break;
                };
                if let Some(text) = m.apply(&doc) {
                    data = text.into_bytes();
                }
            }
            for m in &byte_mutations {
                m.apply(&mut data, &seeds);
            }
            Bytes(data)
        })
}
