//! The batch circuit's R1CS in a compact form: each of A, B and C as compressed sparse rows of
//! `(variable, coefficient)` pairs of `u32`s, the coefficient an index into one table of the
//! distinct field elements (index 0 is one, 1 is minus one). Eight bytes per non-zero entry
//! instead of the 40 of arkworks' `ConstraintMatrices` (plus a heap block per row), and a row's
//! value sums with fewer multiplications.
//!
//! Synthesising the matrices through arkworks' constraint system is the largest memory peak a
//! prover has (every linear combination of every gadget, then their inlining): [`R1cs::cached`]
//! does it once per shape and build, and keeps the result in a cache file beside the keys,
//! trusted only when it was written by a build of the same circuit sources
//! ([`veil_circuits::SOURCE_SHA256`]) and its body matches the SHA-256 checksum at its end; the
//! shape hash ([`R1cs::hash`]) is stored in its header, computed by the build that wrote it.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use ark_bn254::Fr;
use ark_ff::{BigInteger, One, PrimeField, Zero};
use ark_relations::r1cs::ConstraintMatrices;
use sha2::{Digest, Sha256};
use veil_circuits::batch::BatchShape;

/// Domain separator of [`R1cs::hash`] (the key files' shape hash).
const HASH_DOMAIN: &[u8] = b"veil/r1cs-shape/v1";
/// Magic of the cache file.
const CACHE_MAGIC: &[u8; 8] = b"VEILR1CS";
/// Version of the cache file's layout.
const CACHE_VERSION: u32 = 2;

/// Why a constraint system could not be converted or a cache file not used.
#[derive(Debug, thiserror::Error)]
pub enum R1csError {
    /// More variables or entries than `u32` indices address.
    #[error("the constraint system is too large for 32-bit indices ({0})")]
    TooLarge(&'static str),
    /// The cache file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The cache file is not a valid cache of this build's circuit.
    #[error("{path}: {reason}")]
    Stale {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// One of the three matrices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matrix {
    /// A.
    A,
    /// B.
    B,
    /// C.
    C,
}

/// One non-zero entry: a variable (0 is the constant one, then the instance, then the witness)
/// and the index of its coefficient in [`R1cs::coefficients`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Term {
    /// The variable.
    pub var: u32,
    /// The coefficient's index.
    pub coeff: u32,
}

/// One matrix as compressed sparse rows: row `i`'s terms are `terms[starts[i]..starts[i + 1]]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct SparseRows {
    starts: Vec<u32>,
    terms: Vec<Term>,
}

impl SparseRows {
    fn row(&self, i: usize) -> &[Term] {
        &self.terms[self.starts[i] as usize..self.starts[i + 1] as usize]
    }
}

/// A rank-1 constraint system `<A_i, z> · <B_i, z> = <C_i, z>`, compactly (see the module doc).
#[derive(Clone, Debug)]
pub struct R1cs {
    num_instance_variables: usize,
    num_witness_variables: usize,
    num_constraints: usize,
    coefficients: Vec<Fr>,
    matrices: [SparseRows; 3],
    /// [`R1cs::hash`], computed once (or read from the cache's header).
    hash: std::sync::OnceLock<[u8; 32]>,
}

/// Equal constraint systems: the memoised hash is not part of it.
impl PartialEq for R1cs {
    fn eq(&self, other: &Self) -> bool {
        self.num_instance_variables == other.num_instance_variables
            && self.num_witness_variables == other.num_witness_variables
            && self.num_constraints == other.num_constraints
            && self.coefficients == other.coefficients
            && self.matrices == other.matrices
    }
}

impl Eq for R1cs {}

/// Index of the coefficient one.
const ONE: u32 = 0;
/// Index of the coefficient minus one.
const MINUS_ONE: u32 = 1;

impl R1cs {
    /// The compact form of arkworks' matrices.
    pub fn from_matrices(m: &ConstraintMatrices<Fr>) -> Result<Self, R1csError> {
        let vars = m.num_instance_variables + m.num_witness_variables;
        u32::try_from(vars).map_err(|_| R1csError::TooLarge("variables"))?;
        let mut coefficients = vec![Fr::one(), -Fr::one()];
        let mut index = std::collections::HashMap::<Fr, u32>::new();
        index.insert(Fr::one(), ONE);
        index.insert(-Fr::one(), MINUS_ONE);
        let mut convert = |rows: &[Vec<(Fr, usize)>]| -> Result<SparseRows, R1csError> {
            let nnz: usize = rows.iter().map(Vec::len).sum();
            u32::try_from(nnz).map_err(|_| R1csError::TooLarge("non-zero entries"))?;
            let mut starts = Vec::with_capacity(rows.len() + 1);
            let mut terms = Vec::with_capacity(nnz);
            starts.push(0);
            for row in rows {
                for (c, var) in row {
                    let next = coefficients.len() as u32;
                    let coeff = *index.entry(*c).or_insert_with(|| {
                        coefficients.push(*c);
                        next
                    });
                    terms.push(Term {
                        var: *var as u32,
                        coeff,
                    });
                }
                starts.push(terms.len() as u32);
            }
            Ok(SparseRows { starts, terms })
        };
        let matrices = [convert(&m.a)?, convert(&m.b)?, convert(&m.c)?];
        u32::try_from(coefficients.len()).map_err(|_| R1csError::TooLarge("coefficients"))?;
        Ok(R1cs {
            num_instance_variables: m.num_instance_variables,
            num_witness_variables: m.num_witness_variables,
            num_constraints: m.num_constraints,
            coefficients,
            matrices,
            hash: Default::default(),
        })
    }

    /// Synthesises `shape`'s batch circuit in setup mode (as Groth16's setup does) and converts
    /// its matrices. The memory arkworks' synthesis used is given back to the OS afterwards.
    pub fn synthesize(shape: BatchShape) -> Self {
        let r1cs = Self::from_matrices(&crate::keys::constraint_matrices(shape))
            .expect("batch circuits fit 32-bit indices");
        release_freed_memory();
        r1cs
    }

    /// `shape`'s R1CS from the cache file in `dir` when it holds this build's circuit, else
    /// synthesised ([`R1cs::synthesize`]) and written there (best effort: a directory that cannot
    /// be written only costs the next start the synthesis again).
    pub fn cached(dir: &Path, shape: BatchShape) -> Self {
        let path = cache_path(dir, shape);
        match Self::read_cache(&path, shape) {
            Ok(r1cs) => return r1cs,
            Err(R1csError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::info!(error = %e, "synthesising the circuit instead of the cache"),
        }
        let r1cs = Self::synthesize(shape);
        if let Err(e) = r1cs.write_cache(&path, shape) {
            tracing::debug!(error = %e, "not caching the circuit's matrices");
        }
        r1cs
    }

    /// Whether `dir` holds a cache of `shape`'s matrices written by this build (judged by its
    /// header: [`R1cs::cached`] still checks the body), so that loading it is a read, not a
    /// synthesis.
    pub fn has_current_cache(dir: &Path, shape: BatchShape) -> bool {
        current_cache_header(dir, shape).is_some()
    }

    /// The shape hash of `shape`'s circuit as [`R1cs::cached`] would give it, from the cache
    /// file's header alone when it is this build's, else by synthesis (writing the cache).
    pub fn cached_hash(dir: &Path, shape: BatchShape) -> [u8; 32] {
        match current_cache_header(dir, shape) {
            Some(h) => h.hash,
            None => Self::cached(dir, shape).hash(),
        }
    }

    /// Variables with the constant one: instance (the one and the public inputs) then witness.
    pub fn num_variables(&self) -> usize {
        self.num_instance_variables + self.num_witness_variables
    }

    /// The constant one and the public inputs.
    pub fn num_instance_variables(&self) -> usize {
        self.num_instance_variables
    }

    /// The witness variables.
    pub fn num_witness_variables(&self) -> usize {
        self.num_witness_variables
    }

    /// Constraints.
    pub fn num_constraints(&self) -> usize {
        self.num_constraints
    }

    /// Non-zero entries of A, B and C together.
    pub fn num_nonzeros(&self) -> usize {
        self.matrices.iter().map(|m| m.terms.len()).sum()
    }

    /// The distinct coefficients (index 0 is one, 1 is minus one).
    pub fn coefficients(&self) -> &[Fr] {
        &self.coefficients
    }

    /// Row `i` of `matrix`.
    pub fn row(&self, matrix: Matrix, i: usize) -> &[Term] {
        self.matrices[matrix as usize].row(i)
    }

    /// Bytes held (the arrays, not counting their spare capacity).
    pub fn heap_bytes(&self) -> usize {
        self.coefficients.len() * 32
            + self
                .matrices
                .iter()
                .map(|m| m.starts.len() * 4 + m.terms.len() * 8)
                .sum::<usize>()
    }

    /// `<row, z>`.
    #[inline]
    pub fn row_value(&self, matrix: Matrix, i: usize, z: &[Fr]) -> Fr {
        let mut acc = Fr::zero();
        for t in self.row(matrix, i) {
            let v = z[t.var as usize];
            match t.coeff {
                ONE => acc += v,
                MINUS_ONE => acc -= v,
                c => acc += v * self.coefficients[c as usize],
            }
        }
        acc
    }

    /// SHA-256 of the constraint system, as the key files' header carries it: the counts, then
    /// every (row, column, coefficient) of A, B and C. Two builds agree on it exactly when their
    /// circuits are the same R1CS. Computed once per `R1cs`; one read from the cache carries the
    /// hash its writer computed.
    pub fn hash(&self) -> [u8; 32] {
        *self.hash.get_or_init(|| self.compute_hash())
    }

    fn compute_hash(&self) -> [u8; 32] {
        let coeff_bytes: Vec<Vec<u8>> = self
            .coefficients
            .iter()
            .map(|c| c.into_bigint().to_bytes_be())
            .collect();
        let mut h = Sha256::new();
        h.update(HASH_DOMAIN);
        for n in [
            self.num_instance_variables,
            self.num_witness_variables,
            self.num_constraints,
        ] {
            h.update((n as u64).to_be_bytes());
        }
        let mut buf = Vec::with_capacity(1 << 16);
        for m in &self.matrices {
            for row in 0..self.num_constraints {
                let terms = m.row(row);
                buf.extend_from_slice(&(row as u64).to_be_bytes());
                buf.extend_from_slice(&(terms.len() as u64).to_be_bytes());
                for t in terms {
                    buf.extend_from_slice(&u64::from(t.var).to_be_bytes());
                    buf.extend_from_slice(&coeff_bytes[t.coeff as usize]);
                }
                if buf.len() > 1 << 15 {
                    h.update(&buf);
                    buf.clear();
                }
            }
        }
        h.update(&buf);
        h.finalize().into()
    }

    /// Writes the cache file (atomically, 0600).
    fn write_cache(&self, path: &Path, shape: BatchShape) -> Result<(), R1csError> {
        let io = |source| R1csError::Io {
            path: path.to_owned(),
            source,
        };
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = path.with_extension(format!("{}-{n}.tmp", std::process::id()));
        let file = open_private(&tmp).map_err(io)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let header = CacheHeader {
            batch_size: shape.batch_size as u32,
            depth: shape.depth as u32,
            source: source_fingerprint(),
            hash: self.hash(),
        };
        let mut body = || -> std::io::Result<()> {
            header.write(&mut w)?;
            let mut w = HashingWriter {
                inner: &mut w,
                hasher: Sha256::new(),
            };
            for n in [
                self.num_instance_variables,
                self.num_witness_variables,
                self.num_constraints,
                self.coefficients.len(),
            ] {
                w.write_all(&(n as u64).to_le_bytes())?;
            }
            for c in &self.coefficients {
                w.write_all(&c.into_bigint().to_bytes_le())?;
            }
            for m in &self.matrices {
                w.write_all(&(m.terms.len() as u64).to_le_bytes())?;
                for s in &m.starts {
                    w.write_all(&s.to_le_bytes())?;
                }
                for t in &m.terms {
                    w.write_all(&t.var.to_le_bytes())?;
                    w.write_all(&t.coeff.to_le_bytes())?;
                }
            }
            let HashingWriter { inner, hasher } = w;
            inner.write_all(&hasher.finalize())?;
            inner.flush()?;
            inner.get_ref().sync_all()
        };
        let written = body().and_then(|()| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(io)
    }

    /// Reads a cache file: refused unless written by this build's circuit sources for `shape`,
    /// well formed, and its body matching the SHA-256 after it. The shape hash is then the one
    /// its header carries, computed by the build that wrote it (recomputing it would hash 40
    /// bytes per entry, 0.7 GB at B = 16, D = 32).
    fn read_cache(path: &Path, shape: BatchShape) -> Result<Self, R1csError> {
        let stale = |reason: String| R1csError::Stale {
            path: path.to_owned(),
            reason,
        };
        let mut f = File::open(path)?;
        let header = CacheHeader::read(&mut f.reader, path)?;
        if !header.matches(shape) {
            return Err(stale("written for another shape or circuit build".into()));
        }
        let mut counts = [0usize; 4];
        for n in &mut counts {
            *n = f.u64()? as usize;
        }
        let [instance, witness, constraints, ncoeff] = counts;
        let vars = instance.saturating_add(witness);
        if vars > u32::MAX as usize || constraints > u32::MAX as usize || ncoeff > u32::MAX as usize
        {
            return Err(stale("counts out of range".into()));
        }
        if (ncoeff as u64).saturating_mul(32) > f.size {
            return Err(stale("counts larger than the file".into()));
        }
        let mut coefficients = Vec::with_capacity(ncoeff);
        for _ in 0..ncoeff {
            let mut b = [0u8; 32];
            f.bytes(&mut b)?;
            let c = Fr::from_bigint(ark_ff::BigInt::new(std::array::from_fn(|i| {
                u64::from_le_bytes(b[8 * i..8 * i + 8].try_into().expect("8 bytes"))
            })))
            .ok_or_else(|| stale("a coefficient is not a field element".into()))?;
            coefficients.push(c);
        }
        if coefficients.get(ONE as usize) != Some(&Fr::one())
            || coefficients.get(MINUS_ONE as usize) != Some(&-Fr::one())
        {
            return Err(stale(
                "the coefficient table does not start with 1, -1".into(),
            ));
        }
        let mut read_matrix = || -> Result<SparseRows, R1csError> {
            let nnz = f.u64()?;
            if nnz > u64::from(u32::MAX) {
                return Err(stale("too many entries".into()));
            }
            let starts = f.u32s(constraints + 1)?;
            if starts.first() != Some(&0)
                || starts.last() != Some(&(nnz as u32))
                || starts.windows(2).any(|w| w[0] > w[1])
            {
                return Err(stale("row offsets out of order".into()));
            }
            let flat = f.u32s(2 * nnz as usize)?;
            let terms: Vec<Term> = flat
                .chunks_exact(2)
                .map(|p| Term {
                    var: p[0],
                    coeff: p[1],
                })
                .collect();
            if terms
                .iter()
                .any(|t| t.var as usize >= vars || t.coeff as usize >= ncoeff)
            {
                return Err(stale("an entry out of range".into()));
            }
            Ok(SparseRows { starts, terms })
        };
        let matrices = [read_matrix()?, read_matrix()?, read_matrix()?];
        let digest: [u8; 32] = std::mem::take(&mut f.hasher).finalize().into();
        let mut claimed = [0u8; 32];
        f.reader
            .read_exact(&mut claimed)
            .map_err(|source| R1csError::Io {
                path: path.to_owned(),
                source,
            })?;
        if digest != claimed {
            return Err(stale("its body does not hash to its checksum".into()));
        }
        if !f.at_end()? {
            return Err(stale("trailing bytes".into()));
        }
        Ok(R1cs {
            num_instance_variables: instance,
            num_witness_variables: witness,
            num_constraints: constraints,
            coefficients,
            matrices,
            hash: header.hash.into(),
        })
    }
}

/// Where [`R1cs::cached`] keeps `shape`'s matrices in `dir`.
pub fn cache_path(dir: &Path, shape: BatchShape) -> PathBuf {
    dir.join(format!("r1cs-B{}-D{}.cache", shape.batch_size, shape.depth))
}

/// The header of the cache of `shape` in `dir` when it is this build's.
fn current_cache_header(dir: &Path, shape: BatchShape) -> Option<CacheHeader> {
    let path = cache_path(dir, shape);
    File::open(&path)
        .and_then(|mut f| CacheHeader::read(&mut f.reader, &path))
        .ok()
        .filter(|h| h.matches(shape))
}

/// This build's circuit fingerprint as bytes.
fn source_fingerprint() -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(veil_circuits::SOURCE_SHA256, &mut out)
        .expect("build.rs writes 64 hex digits");
    out
}

/// The cache file's header.
struct CacheHeader {
    batch_size: u32,
    depth: u32,
    source: [u8; 32],
    hash: [u8; 32],
}

impl CacheHeader {
    fn matches(&self, shape: BatchShape) -> bool {
        self.batch_size as usize == shape.batch_size
            && self.depth as usize == shape.depth
            && self.source == source_fingerprint()
    }

    fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        w.write_all(CACHE_MAGIC)?;
        w.write_all(&CACHE_VERSION.to_le_bytes())?;
        w.write_all(&self.batch_size.to_le_bytes())?;
        w.write_all(&self.depth.to_le_bytes())?;
        w.write_all(&self.source)?;
        w.write_all(&self.hash)
    }

    fn read(r: &mut impl Read, path: &Path) -> Result<Self, R1csError> {
        let mut b = [0u8; 8 + 12 + 64];
        r.read_exact(&mut b).map_err(|source| R1csError::Io {
            path: path.to_owned(),
            source,
        })?;
        let word = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        if &b[..8] != CACHE_MAGIC || word(8) != CACHE_VERSION {
            return Err(R1csError::Stale {
                path: path.to_owned(),
                reason: "not a Veil R1CS cache of this version".into(),
            });
        }
        Ok(CacheHeader {
            batch_size: word(12),
            depth: word(16),
            source: b[20..52].try_into().expect("32 bytes"),
            hash: b[52..84].try_into().expect("32 bytes"),
        })
    }
}

/// A cache file being read, with its path for errors.
struct File {
    path: PathBuf,
    size: u64,
    reader: BufReader<std::fs::File>,
    /// Of everything read through [`File::bytes`].
    hasher: Sha256,
}

impl File {
    fn open(path: &Path) -> Result<Self, R1csError> {
        let io = |source| R1csError::Io {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        Ok(File {
            path: path.to_owned(),
            size,
            reader: BufReader::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
        })
    }

    fn bytes(&mut self, out: &mut [u8]) -> Result<(), R1csError> {
        self.reader
            .read_exact(out)
            .map_err(|source| R1csError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.hasher.update(&*out);
        Ok(())
    }

    fn u64(&mut self) -> Result<u64, R1csError> {
        let mut b = [0u8; 8];
        self.bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// `n` little-endian `u32`s, read in blocks (the count is checked against the file's size
    /// first, so a corrupt count cannot allocate more than the file holds).
    fn u32s(&mut self, n: usize) -> Result<Vec<u32>, R1csError> {
        if (n as u64).saturating_mul(4) > self.size {
            return Err(R1csError::Stale {
                path: self.path.clone(),
                reason: "counts larger than the file".into(),
            });
        }
        let mut out = Vec::with_capacity(n);
        let mut buf = vec![0u8; 1 << 16];
        while out.len() < n {
            let take = ((n - out.len()) * 4).min(buf.len());
            self.bytes(&mut buf[..take])?;
            out.extend(
                buf[..take]
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))),
            );
        }
        Ok(out)
    }

    fn at_end(&mut self) -> Result<bool, R1csError> {
        let mut b = [0u8; 1];
        match self.reader.read(&mut b) {
            Ok(n) => Ok(n == 0),
            Err(source) => Err(R1csError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }
}

/// A writer that hashes what passes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Creates `path` for writing, owner-only.
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Gives the heap's freed pages back to the OS (glibc keeps them otherwise: after arkworks'
/// synthesis that is most of the process's resident memory).
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own free lists; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> BatchShape {
        BatchShape::new(1, 8).unwrap()
    }

    fn arkworks_matrices(shape: BatchShape) -> ConstraintMatrices<Fr> {
        crate::keys::constraint_matrices(shape)
    }

    #[test]
    fn the_compact_form_holds_every_entry_of_arkworks_matrices() {
        let m = arkworks_matrices(small());
        let r = R1cs::from_matrices(&m).unwrap();
        assert_eq!(r.num_constraints(), m.num_constraints);
        assert_eq!(r.num_instance_variables(), m.num_instance_variables);
        assert_eq!(r.num_witness_variables(), m.num_witness_variables);
        for (matrix, rows) in [(Matrix::A, &m.a), (Matrix::B, &m.b), (Matrix::C, &m.c)] {
            for (i, row) in rows.iter().enumerate() {
                let ours: Vec<(Fr, usize)> = r
                    .row(matrix, i)
                    .iter()
                    .map(|t| (r.coefficients()[t.coeff as usize], t.var as usize))
                    .collect();
                assert_eq!(&ours, row, "{matrix:?} row {i}");
            }
        }
        assert!(r.coefficients().len() < r.num_nonzeros() / 4);
    }

    #[test]
    fn the_cache_round_trips_and_refuses_what_it_must() {
        let dir = tempfile::tempdir().unwrap();
        let shape = small();
        assert!(!R1cs::has_current_cache(dir.path(), shape));
        let fresh = R1cs::cached(dir.path(), shape);
        let path = cache_path(dir.path(), shape);
        assert!(path.exists());
        assert!(R1cs::has_current_cache(dir.path(), shape));
        assert!(!R1cs::has_current_cache(
            dir.path(),
            BatchShape::new(2, 8).unwrap()
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let read = R1cs::read_cache(&path, shape).unwrap();
        assert_eq!(read, fresh);
        assert_eq!(
            read.hash(),
            read.compute_hash(),
            "the header's hash is the content's"
        );
        assert_eq!(R1cs::cached_hash(dir.path(), shape), fresh.hash());

        // Another shape's name: refused by its header.
        let other = BatchShape::new(2, 8).unwrap();
        assert!(matches!(
            R1cs::read_cache(&path, other),
            Err(R1csError::Stale { .. })
        ));
        // A flipped bit in the last entry's coefficient index (still in range), and one in the
        // checksum itself: refused by the checksum.
        let bytes = std::fs::read(&path).unwrap();
        for back in [32 + 4, 5] {
            let mut bad = bytes.clone();
            let at = bad.len() - back;
            bad[at] ^= 1;
            std::fs::write(&path, &bad).unwrap();
            let err = R1cs::read_cache(&path, shape).unwrap_err().to_string();
            assert!(err.contains("checksum"), "{err}");
        }
        // Another build's circuit sources.
        let mut bad = bytes.clone();
        bad[20] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        assert!(!R1cs::has_current_cache(dir.path(), shape));
        assert!(R1cs::read_cache(&path, shape)
            .unwrap_err()
            .to_string()
            .contains("circuit build"));
        // Truncated.
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(R1cs::read_cache(&path, shape).is_err());
        // `cached` replaces a bad cache with a good one.
        assert_eq!(R1cs::cached(dir.path(), shape), fresh);
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }
}
