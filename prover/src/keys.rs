//! Groth16 key files (DESIGN §8): `pk-B{B}-D{D}.bin` / `vk-B{B}-D{D}.bin`, a fixed header (magic,
//! format version, kind, B, D, SHA-256 of the constraint-system shape) followed by the arkworks
//! key: the verifying key compressed, the proving key **uncompressed** (format version 2), so
//! loading it costs no square root per point (B = 16, D = 32: 293 MB instead of 147 MB, loaded
//! in under a second instead of most of a minute: the file read by every core, plain points
//! parsed directly, [`points`]). Files are written atomically (temp file + rename),
//! the proving key with mode 0600; loading checks the header against the expected shape and
//! refuses a mismatch.
//!
//! A verifying key's identity is the SHA-256 of its whole file (header and key): [`vk_sha256`].
//! The encoding is canonical, so a prover holding only the proving key can compute it too
//! ([`vk_sha256_of`]).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ark_bn254::{Bn254, Fr, G1Affine, G2Affine};
use ark_groth16::{ProvingKey, VerifyingKey};
use ark_relations::r1cs::{
    ConstraintMatrices, ConstraintSynthesizer, ConstraintSystem, OptimizationGoal, SynthesisMode,
};
use ark_serialize::{
    CanonicalDeserialize, CanonicalSerialize, Compress, SerializationError, Validate,
};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use veil_circuits::batch::{BatchCircuit, BatchShape};

use crate::field::FieldPath;
use crate::r1cs::R1cs;

mod points;

use points::PlainPoint;

/// File magic.
pub const KEY_MAGIC: &[u8; 8] = b"VEILKEY\0";
/// Current key-file format version. 1: both keys compressed; 2: the proving key uncompressed.
pub const KEY_FORMAT_VERSION: u16 = 2;
/// Header length in bytes.
pub const HEADER_LEN: usize = 8 + 2 + 1 + 4 + 4 + 32;

/// Which key a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Groth16 proving key.
    Proving,
    /// Groth16 verifying key.
    Verifying,
}

impl KeyKind {
    fn byte(self) -> u8 {
        match self {
            KeyKind::Proving => 0,
            KeyKind::Verifying => 1,
        }
    }

    /// `pk` or `vk`.
    pub fn prefix(self) -> &'static str {
        match self {
            KeyKind::Proving => "pk",
            KeyKind::Verifying => "vk",
        }
    }

    /// How the key is encoded after the header: a verifying key compressed (small, published,
    /// fully validated on load), a proving key uncompressed (large, private, loaded often).
    pub fn compression(self) -> Compress {
        match self {
            KeyKind::Proving => Compress::No,
            KeyKind::Verifying => Compress::Yes,
        }
    }
}

/// Key-file errors.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// I/O.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Not a Veil key file, or truncated.
    #[error("{0}: not a Veil key file (bad magic or truncated header)")]
    NotAKeyFile(PathBuf),
    /// Unknown format version.
    #[error("{path}: key format version {found}, this build reads version {KEY_FORMAT_VERSION}")]
    Version {
        /// File.
        path: PathBuf,
        /// Version found.
        found: u16,
    },
    /// A proving key where a verifying key was expected, or the reverse.
    #[error("{path}: holds a {found:?} key, expected a {expected:?} key")]
    WrongKind {
        /// File.
        path: PathBuf,
        /// Found.
        found: KeyKind,
        /// Expected.
        expected: KeyKind,
    },
    /// The key was made for another circuit shape.
    #[error(
        "{path}: key is for B = {found_b}, D = {found_d}, but the circuit is B = {b}, D = {d}"
    )]
    WrongShape {
        /// File.
        path: PathBuf,
        /// B in the file.
        found_b: u32,
        /// D in the file.
        found_d: u32,
        /// Expected B.
        b: usize,
        /// Expected D.
        d: usize,
    },
    /// Same (B, D) but another constraint system (the circuit changed since the key was made).
    #[error("{path}: key was made for a different constraint system (shape hash {found}, this build's circuit has {expected}); regenerate it with `veil setup`")]
    WrongCircuit {
        /// File.
        path: PathBuf,
        /// Hash in the file.
        found: String,
        /// Hash of this build's circuit.
        expected: String,
    },
    /// The key body does not deserialize.
    #[error("{path}: corrupt key body: {reason}")]
    Corrupt {
        /// File.
        path: PathBuf,
        /// Cause.
        reason: String,
    },
}

/// A key file's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyHeader {
    /// Format version.
    pub version: u16,
    /// Proving or verifying key.
    pub kind: KeyKind,
    /// Batch size.
    pub batch_size: u32,
    /// Tree depth.
    pub depth: u32,
    /// SHA-256 of the constraint-system shape.
    pub shape_hash: [u8; 32],
}

impl KeyHeader {
    /// The header's [`HEADER_LEN`]-byte encoding.
    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(KEY_MAGIC);
        out[8..10].copy_from_slice(&self.version.to_be_bytes());
        out[10] = self.kind.byte();
        out[11..15].copy_from_slice(&self.batch_size.to_be_bytes());
        out[15..19].copy_from_slice(&self.depth.to_be_bytes());
        out[19..51].copy_from_slice(&self.shape_hash);
        out
    }

    /// Parses the header at the start of `b` (a whole key file or its first [`HEADER_LEN`]
    /// bytes); `path` only names the source in errors.
    pub fn parse(path: &Path, b: &[u8]) -> Result<Self, KeyFileError> {
        if b.len() < HEADER_LEN || &b[..8] != KEY_MAGIC {
            return Err(KeyFileError::NotAKeyFile(path.to_path_buf()));
        }
        let version = u16::from_be_bytes([b[8], b[9]]);
        if version != KEY_FORMAT_VERSION {
            return Err(KeyFileError::Version {
                path: path.to_path_buf(),
                found: version,
            });
        }
        let kind = match b[10] {
            0 => KeyKind::Proving,
            1 => KeyKind::Verifying,
            _ => return Err(KeyFileError::NotAKeyFile(path.to_path_buf())),
        };
        Ok(KeyHeader {
            version,
            kind,
            batch_size: u32::from_be_bytes(b[11..15].try_into().expect("4 bytes")),
            depth: u32::from_be_bytes(b[15..19].try_into().expect("4 bytes")),
            shape_hash: b[19..51].try_into().expect("32 bytes"),
        })
    }
}

/// SHA-256 of the constraint system of `shape` ([`R1cs::hash`]): counts, then every (row,
/// column, coefficient) of A, B and C. Two builds agree on it exactly when their circuits are the
/// same R1CS. Synthesises the circuit; [`shape_hash_cached`] reads it from a cache when it can.
pub fn shape_hash(shape: BatchShape) -> [u8; 32] {
    R1cs::synthesize(shape).hash()
}

/// [`shape_hash`] through the R1CS cache in `keys_dir` ([`R1cs::cached_hash`]).
pub fn shape_hash_cached(keys_dir: &Path, shape: BatchShape) -> [u8; 32] {
    R1cs::cached_hash(keys_dir, shape)
}

/// The R1CS matrices of `shape` in arkworks' form, synthesised in setup mode (as Groth16's
/// setup does).
pub fn constraint_matrices(shape: BatchShape) -> ConstraintMatrices<Fr> {
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(OptimizationGoal::Constraints);
    cs.set_mode(SynthesisMode::Setup);
    BatchCircuit::blank(shape)
        .generate_constraints(cs.clone())
        .expect("the blank circuit synthesises");
    cs.finalize();
    cs.to_matrices().expect("setup mode builds matrices")
}

/// [`shape_hash`] of matrices in arkworks' form.
pub fn matrices_hash(m: &ConstraintMatrices<Fr>) -> [u8; 32] {
    R1cs::from_matrices(m)
        .expect("a constraint system with 32-bit indices")
        .hash()
}

/// The file name of a key: `pk-B16-D32.bin`.
pub fn key_file_name(kind: KeyKind, shape: BatchShape) -> String {
    format!(
        "{}-B{}-D{}.bin",
        kind.prefix(),
        shape.batch_size,
        shape.depth
    )
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `header || key` ([`key_file_bytes`]) atomically: a temp file in the same directory, fsync,
/// rename. Proving keys are created with mode 0600.
pub fn write_key_file<K: CanonicalSerialize>(
    path: &Path,
    header: KeyHeader,
    key: &K,
) -> Result<(), KeyFileError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = dir {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if header.kind == KeyKind::Proving {
            0o600
        } else {
            0o644
        });
    }
    let body = key_file_bytes(header, key);
    let mut file = opts.open(&tmp).map_err(io_err(&tmp))?;
    file.write_all(&body).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io_err(path))?;
    Ok(())
}

/// The bytes of a key file: `header || key`, the key compressed for a verifying key and
/// uncompressed for a proving key ([`KeyKind::compression`]).
pub fn key_file_bytes<K: CanonicalSerialize>(header: KeyHeader, key: &K) -> Vec<u8> {
    let compress = header.kind.compression();
    let mut body = Vec::with_capacity(key.serialized_size(compress) + HEADER_LEN);
    body.extend_from_slice(&header.to_bytes());
    key.serialize_with_mode(&mut body, compress)
        .expect("serialising into a Vec cannot fail");
    body
}

/// A verifying key's identity: the SHA-256 of its key file's bytes, as lowercase hex.
pub fn vk_sha256(vk_file_bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(vk_file_bytes))
}

/// [`vk_sha256`] of the vk file that `vk` of `shape` is (or would be) written as; a prover can
/// compute it from the verifying key inside its proving key.
pub fn vk_sha256_of(vk: &VerifyingKey<Bn254>, shape: BatchShape, shape_hash: [u8; 32]) -> String {
    vk_sha256(&key_file_bytes(
        header(KeyKind::Verifying, shape, shape_hash),
        vk,
    ))
}

/// Reads a key file's header and checks its kind and `(B, D)`: the cheap checks, before the
/// circuit is synthesised for its shape hash.
pub fn expect_header(
    path: &Path,
    kind: KeyKind,
    shape: BatchShape,
) -> Result<KeyHeader, KeyFileError> {
    let header = read_header(path)?;
    check_header(path, &header, kind, shape)?;
    Ok(header)
}

fn check_header(
    path: &Path,
    header: &KeyHeader,
    kind: KeyKind,
    shape: BatchShape,
) -> Result<(), KeyFileError> {
    if header.kind != kind {
        return Err(KeyFileError::WrongKind {
            path: path.to_path_buf(),
            found: header.kind,
            expected: kind,
        });
    }
    if header.batch_size as usize != shape.batch_size || header.depth as usize != shape.depth {
        return Err(KeyFileError::WrongShape {
            path: path.to_path_buf(),
            found_b: header.batch_size,
            found_d: header.depth,
            b: shape.batch_size,
            d: shape.depth,
        });
    }
    Ok(())
}

/// Reads a key file's header only.
pub fn read_header(path: &Path) -> Result<KeyHeader, KeyFileError> {
    let mut f = fs::File::open(path).map_err(io_err(path))?;
    let mut buf = [0u8; HEADER_LEN];
    f.read_exact(&mut buf)
        .map_err(|_| KeyFileError::NotAKeyFile(path.to_path_buf()))?;
    KeyHeader::parse(path, &buf)
}

/// Checks the header of the key file `bytes` (kind, shape, circuit) and returns the key bytes
/// after it; `path` only names the source in errors.
fn checked_body<'a>(
    path: &Path,
    bytes: &'a [u8],
    kind: KeyKind,
    shape: BatchShape,
    expected_hash: &[u8; 32],
) -> Result<&'a [u8], KeyFileError> {
    let header = KeyHeader::parse(path, bytes)?;
    check_header(path, &header, kind, shape)?;
    if &header.shape_hash != expected_hash {
        return Err(KeyFileError::WrongCircuit {
            path: path.to_path_buf(),
            found: hex::encode(header.shape_hash),
            expected: hex::encode(expected_hash),
        });
    }
    Ok(&bytes[HEADER_LEN..])
}

fn corrupt(path: &Path) -> impl FnOnce(SerializationError) -> KeyFileError + '_ {
    move |e| KeyFileError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Loads a proving key for `shape`, refusing one made for another shape or circuit.
///
/// Its points are decompressed but not subgroup-checked: the subgroup checks of its ~2 points
/// per variable (G2 ones especially) would dominate loading, and a bad proving key cannot make
/// a false proof verify, only a proof that fails (which `Prover` checks before returning it).
/// Decompression (a square root per point) runs on every core; see [`decode_proving_key`].
pub fn read_proving_key(
    path: &Path,
    shape: BatchShape,
    expected_hash: &[u8; 32],
) -> Result<ProvingKey<Bn254>, KeyFileError> {
    let bytes = points::read_file(path).map_err(io_err(path))?;
    proving_key_from_bytes(path, &bytes, shape, expected_hash)
}

/// [`read_proving_key`] on the bytes of a key file; `path` only names the source in errors.
pub fn proving_key_from_bytes(
    path: &Path,
    bytes: &[u8],
    shape: BatchShape,
    expected_hash: &[u8; 32],
) -> Result<ProvingKey<Bn254>, KeyFileError> {
    let body = checked_body(path, bytes, KeyKind::Proving, shape, expected_hash)?;
    decode_proving_key(body, KeyKind::Proving.compression()).map_err(corrupt(path))
}

/// Decodes a `ProvingKey<Bn254>` in arkworks' encoding (exactly the bytes
/// `CanonicalSerialize::serialize_with_mode(_, compress)` writes), decoding the point vectors
/// in parallel chunks. Points are not subgroup-checked (see [`read_proving_key`]); trailing
/// bytes are an error.
pub fn decode_proving_key(
    bytes: &[u8],
    compress: Compress,
) -> Result<ProvingKey<Bn254>, SerializationError> {
    let mut reader = bytes;
    let r = &mut reader;
    let vk = read_verifying_key_body(r, compress, Validate::No)?;
    let beta_g1 = G1Affine::deserialize_with_mode(&mut *r, compress, Validate::No)?;
    let delta_g1 = G1Affine::deserialize_with_mode(&mut *r, compress, Validate::No)?;
    let a_query = decode_points::<G1Affine>(r, compress, Validate::No)?;
    let b_g1_query = decode_points::<G1Affine>(r, compress, Validate::No)?;
    let b_g2_query = decode_points::<G2Affine>(r, compress, Validate::No)?;
    let h_query = decode_points::<G1Affine>(r, compress, Validate::No)?;
    let l_query = decode_points::<G1Affine>(r, compress, Validate::No)?;
    if !reader.is_empty() {
        return Err(SerializationError::InvalidData);
    }
    Ok(ProvingKey {
        vk,
        beta_g1,
        delta_g1,
        a_query,
        b_g1_query,
        b_g2_query,
        h_query,
        l_query,
    })
}

/// Decodes a `VerifyingKey<Bn254>` in arkworks' encoding (what
/// `CanonicalSerialize::serialize_with_mode(_, compress)` writes), refusing trailing bytes and
/// any other non-canonical encoding (arkworks reads any coordinate under a point's infinity
/// flag as the identity), so that one key has one encoding: its file's SHA-256 is its identity,
/// [`vk_sha256`].
///
/// Unlike arkworks' own decoder, which reserves a vector of the stated length before reading
/// it, the length of `gamma_abc_g1` is checked against the bytes present first: a corrupt
/// length panicked with a capacity overflow, or aborted the process on allocation failure.
pub fn decode_verifying_key(
    bytes: &[u8],
    compress: Compress,
    validate: Validate,
) -> Result<VerifyingKey<Bn254>, SerializationError> {
    let mut reader = bytes;
    let vk = read_verifying_key_body(&mut reader, compress, validate)?;
    if !reader.is_empty() {
        return Err(SerializationError::InvalidData);
    }
    let mut again = Vec::with_capacity(bytes.len());
    vk.serialize_with_mode(&mut again, compress)?;
    if again != bytes {
        return Err(SerializationError::InvalidData);
    }
    Ok(vk)
}

/// Reads a verifying key's fields in arkworks' order, advancing `r` past them.
fn read_verifying_key_body(
    r: &mut &[u8],
    compress: Compress,
    validate: Validate,
) -> Result<VerifyingKey<Bn254>, SerializationError> {
    Ok(VerifyingKey {
        alpha_g1: G1Affine::deserialize_with_mode(&mut *r, compress, validate)?,
        beta_g2: G2Affine::deserialize_with_mode(&mut *r, compress, validate)?,
        gamma_g2: G2Affine::deserialize_with_mode(&mut *r, compress, validate)?,
        delta_g2: G2Affine::deserialize_with_mode(&mut *r, compress, validate)?,
        gamma_abc_g1: decode_points::<G1Affine>(r, compress, validate)?,
    })
}

/// A `Vec<G>` as arkworks writes it (u64 length, then fixed-size points), decoded in parallel;
/// the length is checked against the bytes left before anything is allocated.
fn decode_points<G: PlainPoint>(
    reader: &mut &[u8],
    compress: Compress,
    validate: Validate,
) -> Result<Vec<G>, SerializationError> {
    let len = u64::deserialize_compressed(&mut *reader)?;
    let size = G::generator().serialized_size(compress);
    let total = usize::try_from(len)
        .ok()
        .and_then(|n| n.checked_mul(size))
        .filter(|&t| t <= reader.len())
        .ok_or(SerializationError::InvalidData)?;
    let (body, rest) = reader.split_at(total);
    // An indexed parallel iterator writes each point straight into its slot of one vector
    // (collecting `Result`s would gather per-thread lists and copy them together); the first
    // failure is kept aside and returned after.
    let failure = std::sync::Mutex::new(None);
    let mut points = Vec::with_capacity(body.len() / size);
    // Unvalidated uncompressed points: plain ones parsed directly, the rest by arkworks.
    let fast = (compress == Compress::No && validate == Validate::No).then(FieldPath::current);
    body.par_chunks_exact(size)
        .map(|mut chunk| {
            if let Some(p) = fast.and_then(|path| G::parse_plain(chunk, path)) {
                return p;
            }
            G::deserialize_with_mode(&mut chunk, compress, validate).unwrap_or_else(|e| {
                failure
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get_or_insert(e);
                G::zero()
            })
        })
        .collect_into_vec(&mut points);
    if let Some(e) = failure
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        return Err(e);
    }
    *reader = rest;
    Ok(points)
}

/// Loads a verifying key for `shape`, refusing one made for another shape or circuit.
pub fn read_verifying_key(
    path: &Path,
    shape: BatchShape,
    expected_hash: &[u8; 32],
) -> Result<VerifyingKey<Bn254>, KeyFileError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    verifying_key_from_bytes(path, &bytes, shape, expected_hash)
}

/// [`read_verifying_key`] on the bytes of a key file; `path` only names the source in errors.
pub fn verifying_key_from_bytes(
    path: &Path,
    bytes: &[u8],
    shape: BatchShape,
    expected_hash: &[u8; 32],
) -> Result<VerifyingKey<Bn254>, KeyFileError> {
    let body = checked_body(path, bytes, KeyKind::Verifying, shape, expected_hash)?;
    // Verifying-key points are fully checked (on the curve, in the prime-order subgroup).
    decode_verifying_key(body, Compress::Yes, Validate::Yes).map_err(corrupt(path))
}

/// A verifying key loaded for verification, with its header and identity.
#[derive(Debug, Clone)]
pub struct LoadedVerifyingKey {
    /// The key.
    pub vk: VerifyingKey<Bn254>,
    /// The file's header.
    pub header: KeyHeader,
    /// [`vk_sha256`] of the file.
    pub sha256: String,
}

/// Loads a verifying key for verifying proofs of `shape`: checks magic, version, kind and
/// `(B, D)` but not the shape hash against this build's circuit (that would synthesise the
/// circuit; the key itself defines the statement, and its identity [`vk_sha256`] is returned).
pub fn load_verifying_key(
    path: &Path,
    shape: BatchShape,
) -> Result<LoadedVerifyingKey, KeyFileError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    load_verifying_key_bytes(path, &bytes, shape)
}

/// [`load_verifying_key`] on the bytes of a key file; `path` only names the source in errors.
pub fn load_verifying_key_bytes(
    path: &Path,
    bytes: &[u8],
    shape: BatchShape,
) -> Result<LoadedVerifyingKey, KeyFileError> {
    let header = KeyHeader::parse(path, bytes)?;
    check_header(path, &header, KeyKind::Verifying, shape)?;
    let vk = decode_verifying_key(&bytes[HEADER_LEN..], Compress::Yes, Validate::Yes)
        .map_err(corrupt(path))?;
    Ok(LoadedVerifyingKey {
        vk,
        header,
        sha256: vk_sha256(bytes),
    })
}

/// Header for a key of `shape`.
pub fn header(kind: KeyKind, shape: BatchShape, shape_hash: [u8; 32]) -> KeyHeader {
    KeyHeader {
        version: KEY_FORMAT_VERSION,
        kind,
        batch_size: shape.batch_size as u32,
        depth: shape.depth as u32,
        shape_hash,
    }
}
