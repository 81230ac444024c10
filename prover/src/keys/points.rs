//! Fast decoding of the proving key's uncompressed points, and reading a key file with every
//! core.
//!
//! arkworks decodes an uncompressed coordinate through its portable `from_bigint` and its
//! generic reader, point by point; a key at B = 16, D = 32 holds 2.8 million points (9 million
//! coordinates). Here a plain point (not the identity, canonical coordinates) is parsed straight
//! from its bytes and each coordinate brought to Montgomery form with one product by `R²` in
//! [`crate::field`]'s arithmetic; anything else (the identity, a coordinate not below the
//! modulus, a bad flag) goes to arkworks' own decoder, so the result, errors included, is
//! exactly arkworks'.

use std::path::Path;

use ark_bn254::{Fq, Fq2, G1Affine, G2Affine};
use ark_ec::short_weierstrass::Affine;
use ark_ec::AffineRepr;
use ark_ff::fields::MontConfig;
use ark_ff::{BigInt, PrimeField};
use rayon::prelude::*;

use crate::field::{mul_on, FieldPath};

/// Bytes per parallel read of [`read_file`].
const READ_CHUNK: usize = 8 << 20;

/// A curve point type whose uncompressed arkworks encoding [`decode`] parses directly.
pub(crate) trait PlainPoint: AffineRepr {
    /// The point encoded in `bytes` (its uncompressed encoding, exactly), when it is a plain
    /// point with canonical coordinates; `None` for anything else.
    fn parse_plain(bytes: &[u8], path: FieldPath) -> Option<Self>;
}

/// The flag bits of arkworks' short-Weierstrass encoding, in the top of the last byte: bit 7 the
/// sign of y (ignored when uncompressed), bit 6 the point at infinity.
const INFINITY_FLAG: u8 = 1 << 6;

/// A base-field element from 32 little-endian bytes (with the two flag bits cleared when
/// `flags`), in Montgomery form; `None` unless below the modulus.
#[inline]
fn fq(bytes: &[u8], flags: bool, path: FieldPath) -> Option<Fq> {
    let mut limbs: [u64; 4] =
        std::array::from_fn(|i| u64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().unwrap()));
    if flags {
        limbs[3] &= u64::MAX >> 2;
    }
    let canonical = BigInt(limbs);
    if canonical >= Fq::MODULUS {
        return None;
    }
    // x·R²·R⁻¹ = x·R: the Montgomery form of x.
    let r2 = Fq::new_unchecked(<ark_bn254::FqConfig as MontConfig<4>>::R2);
    Some(mul_on(path, &Fq::new_unchecked(canonical), &r2))
}

impl PlainPoint for Affine<ark_bn254::g1::Config> {
    #[inline]
    fn parse_plain(b: &[u8], path: FieldPath) -> Option<Self> {
        if b.len() != 64 || b[63] & INFINITY_FLAG != 0 {
            return None;
        }
        Some(G1Affine::new_unchecked(
            fq(&b[..32], false, path)?,
            fq(&b[32..], true, path)?,
        ))
    }
}

impl PlainPoint for Affine<ark_bn254::g2::Config> {
    #[inline]
    fn parse_plain(b: &[u8], path: FieldPath) -> Option<Self> {
        if b.len() != 128 || b[127] & INFINITY_FLAG != 0 {
            return None;
        }
        let x = Fq2::new(fq(&b[..32], false, path)?, fq(&b[32..64], false, path)?);
        let y = Fq2::new(fq(&b[64..96], false, path)?, fq(&b[96..], true, path)?);
        Some(G2Affine::new_unchecked(x, y))
    }
}

/// The whole file, read by every core (each reads its own 8 MiB chunks into its part of the
/// buffer), for large key files: one thread's copy out of the page cache was most of a key's
/// loading time.
pub(crate) fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        let file = std::fs::File::open(path)?;
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| std::io::Error::other("file larger than memory"))?;
        let mut buf = vec![0u8; 0];
        buf.try_reserve_exact(len)
            .map_err(|_| std::io::Error::other("file larger than memory"))?;
        buf.spare_capacity_mut()[..len]
            .par_chunks_mut(READ_CHUNK)
            .enumerate()
            .try_for_each(|(k, chunk)| {
                // SAFETY: `u8` has no invalid values and `read_exact_at` only writes; the chunk
                // is fully written before `set_len` below (or the error returns first).
                let chunk =
                    unsafe { &mut *(chunk as *mut [std::mem::MaybeUninit<u8>] as *mut [u8]) };
                file.read_exact_at(chunk, (k * READ_CHUNK) as u64)
            })?;
        // SAFETY: every byte of `..len` was written by the reads above.
        unsafe { buf.set_len(len) };
        // A file that grew while being read is read again whole: the caller sees one version.
        if file.metadata()?.len() != len as u64 {
            return std::fs::read(path);
        }
        Ok(buf)
    }
    #[cfg(not(unix))]
    std::fs::read(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ec::CurveGroup;
    use ark_ff::Zero;
    use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
    use ark_std::UniformRand;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// The fast parse agrees with arkworks on plain points and declines everything else.
    fn check<G: PlainPoint + CanonicalSerialize + CanonicalDeserialize>(points: &[G]) {
        for path in [FieldPath::Portable, FieldPath::Adx] {
            if !path.available() {
                continue;
            }
            for p in points {
                let mut b = Vec::new();
                p.serialize_uncompressed(&mut b).unwrap();
                let fast = G::parse_plain(&b, path);
                if p.is_zero() {
                    assert!(fast.is_none());
                } else {
                    assert_eq!(fast.as_ref(), Some(p));
                }
                // Every coordinate pushed to at or past the modulus: declined (arkworks errs).
                for at in (0..b.len()).step_by(32) {
                    let mut bad = b.clone();
                    bad[at..at + 31].fill(0xff);
                    bad[at + 31] |= 0x3f;
                    assert!(G::parse_plain(&bad, path).is_none());
                    assert!(G::deserialize_uncompressed_unchecked(&bad[..]).is_err());
                }
                // The infinity flag: declined (arkworks reads the identity).
                let mut inf = b.clone();
                *inf.last_mut().unwrap() |= INFINITY_FLAG;
                assert!(G::parse_plain(&inf, path).is_none());
                assert!(G::parse_plain(&b[1..], path).is_none());
            }
        }
    }

    /// Random points, the identity, the generator and its negative.
    fn samples<G: AffineRepr>(rng: &mut ChaCha20Rng) -> Vec<G> {
        let g = G::generator().into_group();
        (0..20)
            .map(|_| G::Group::rand(rng))
            .chain([G::Group::zero(), g, -g])
            .map(|p| p.into_affine())
            .collect()
    }

    #[test]
    fn plain_points_parse_as_arkworks_reads_them() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        check(&samples::<G1Affine>(&mut rng));
        check(&samples::<G2Affine>(&mut rng));
    }

    #[test]
    fn parallel_read_reads_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0usize, 1, READ_CHUNK - 1, READ_CHUNK, 2 * READ_CHUNK + 7] {
            let path = dir.path().join(format!("f{len}"));
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
            std::fs::write(&path, &data).unwrap();
            assert!(read_file(&path).unwrap() == data, "len {len}");
        }
        assert!(read_file(&dir.path().join("missing")).is_err());
    }
}
