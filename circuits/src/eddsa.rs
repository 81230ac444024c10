//! EdDSA-Poseidon over Baby Jubjub (DESIGN §3, §6 rule 7), natively.
//!
//! Curve: ark-ed-on-bn254, whose base field is the circuit field `Fr`. Its model is the
//! a = 1 rescaling of circomlib's Baby Jubjub (`x^2 + y^2 = 1 + (168696/168700) x^2 y^2`), so
//! coordinates differ from circomlib's by a constant factor on `x`; the verification equation is
//! circomlib's cofactored one. `G` is ark's generator, which lies in the prime-order subgroup of
//! order `l` (checked by a test); the curve has order `8 l`.
//!
//! - Keys: `s = sk mod l` (non-zero), `A = s G`.
//! - Sign: `r = Blake2b-512("veil/eddsa-nonce" || sk || msg) mod l`, `R = r G`,
//!   `h = Poseidon(R.x, R.y, A.x, A.y, msg)`, `S = r + 8 h s mod l`.
//! - Verify: `A` and `R` on the curve, `8 A != O`, then `S G == R + h (8 A)` with `h` the 254-bit
//!   integer. Since `8 A` lies in the prime-order subgroup, `h` acts modulo `l`. Keys with a
//!   small-order component verify as their prime-order part (cofactored verification).
//!
//! The gadget in [`gadget`] checks the same equation in-circuit.

pub mod gadget;

use ark_bn254::Fr;
use ark_ec::{AffineRepr, CurveGroup, PrimeGroup};
use ark_ed_on_bn254::{EdwardsAffine, EdwardsProjective, Fr as JubjubScalar};
use ark_ff::{BigInteger, PrimeField, Zero};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use blake2::{Blake2b512, Digest};
use std::sync::OnceLock;
use zeroize::Zeroize;

use crate::poseidon::poseidon;

/// Bits of a canonical Baby Jubjub scalar (`l < 2^251`).
pub const SCALAR_BITS: usize = 251;
/// Length of [`Signature::to_bytes`]: compressed `R` (32) then `S` little-endian (32).
pub const SIGNATURE_BYTES: usize = 64;
/// Domain separator of the deterministic nonce.
const NONCE_DOMAIN: &[u8] = b"veil/eddsa-nonce";

/// Why a key or signature was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The secret key reduces to the zero scalar.
    #[error("secret key reduces to zero modulo l")]
    ZeroSecretKey,
    /// The public key is not on the curve.
    #[error("public key is not on the curve")]
    PublicKeyNotOnCurve,
    /// `8 A` is the identity: the public key has small order.
    #[error("public key has small order")]
    SmallOrderPublicKey,
    /// `R` is not on the curve.
    #[error("signature point R is not on the curve")]
    RNotOnCurve,
    /// `R` has a small-order component (such an `R` can never satisfy the equation).
    #[error("signature point R is not in the prime-order subgroup")]
    RNotInSubgroup,
    /// The encoding of `R` is malformed (not a canonical compressed curve point).
    #[error("malformed encoding of R")]
    MalformedR,
    /// `S` is not below the group order `l`.
    #[error("S is not canonical (S >= l)")]
    NonCanonicalS,
    /// `S G != R + h (8 A)`.
    #[error("signature equation does not hold")]
    InvalidSignature,
}

/// The prime-order subgroup generator `G`.
pub fn generator() -> EdwardsAffine {
    EdwardsAffine::generator()
}

/// Windows of [`generator_times`]: 4 bits each, covering 256 bits.
const GENERATOR_WINDOWS: usize = 64;

/// `k G` from a table of `d 16^i G` (`d < 16`, one window per 4 bits of `k`): at most 64 mixed
/// additions and no doubling, about 5x faster than double-and-add. Variable time, like every
/// native scalar multiplication here: it runs on public data (signature checks) or once per key.
fn generator_times(k: &JubjubScalar) -> EdwardsProjective {
    static TABLE: OnceLock<Vec<[EdwardsAffine; 16]>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut base = generator().into_group();
        (0..GENERATOR_WINDOWS)
            .map(|_| {
                let mut multiples = [EdwardsProjective::zero(); 16];
                for d in 1..16 {
                    multiples[d] = multiples[d - 1] + base;
                }
                base = multiples[15] + base;
                let affine = EdwardsProjective::normalize_batch(&multiples);
                std::array::from_fn(|d| affine[d])
            })
            .collect()
    });
    let limbs = k.into_bigint().0;
    let mut acc = EdwardsProjective::zero();
    for (i, multiples) in table.iter().enumerate() {
        let nibble = (limbs[i / 16] >> ((i % 16) * 4)) & 0xf;
        if nibble != 0 {
            acc += &multiples[nibble as usize];
        }
    }
    acc
}

/// The challenge `h = Poseidon(R.x, R.y, A.x, A.y, msg)`.
pub fn challenge(r: &EdwardsAffine, a: &EdwardsAffine, msg: Fr) -> Fr {
    poseidon(&[r.x, r.y, a.x, a.y, msg])
}

/// `h mod l`.
fn challenge_scalar(h: Fr) -> JubjubScalar {
    JubjubScalar::from_le_bytes_mod_order(&h.into_bigint().to_bytes_le())
}

/// A spending key: the 32 secret bytes and `s = sk mod l`. Zeroised on drop; `Debug` prints no
/// secret.
#[derive(Clone)]
pub struct SigningKey {
    bytes: [u8; 32],
    s: JubjubScalar,
}

impl SigningKey {
    /// `s = sk mod l`; rejects keys that reduce to zero.
    pub fn from_bytes(sk: &[u8; 32]) -> Result<Self, SignatureError> {
        let s = JubjubScalar::from_le_bytes_mod_order(sk);
        if s.is_zero() {
            return Err(SignatureError::ZeroSecretKey);
        }
        Ok(SigningKey { bytes: *sk, s })
    }

    /// A fresh random key.
    pub fn random<R: rand_core::RngCore + rand_core::CryptoRng>(rng: &mut R) -> Self {
        loop {
            let mut sk = [0u8; 32];
            rng.fill_bytes(&mut sk);
            let key = Self::from_bytes(&sk);
            sk.zeroize();
            if let Ok(key) = key {
                return key;
            }
        }
    }

    /// The secret bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.bytes
    }

    /// The secret scalar `s` (DESIGN §3 derives `nk` from it).
    pub fn scalar(&self) -> JubjubScalar {
        self.s
    }

    /// `A = s G`.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(generator_times(&self.s).into_affine())
    }

    /// Signs `msg` with the deterministic nonce `r = Blake2b-512(domain || sk || msg) mod l`.
    pub fn sign(&self, msg: Fr) -> Signature {
        let mut digest: [u8; 64] = Blake2b512::new()
            .chain_update(NONCE_DOMAIN)
            .chain_update(self.bytes)
            .chain_update(msg.into_bigint().to_bytes_le())
            .finalize()
            .into();
        let mut r = JubjubScalar::from_le_bytes_mod_order(&digest);
        digest.zeroize();
        let big_r = generator_times(&r).into_affine();
        let a = self.public_key().0;
        let h = challenge_scalar(challenge(&big_r, &a, msg));
        let s = r + h * JubjubScalar::from(8u64) * self.s;
        r.zeroize();
        Signature { r: big_r, s }
    }
}

impl Drop for SigningKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
        self.s.zeroize();
    }
}

impl zeroize::ZeroizeOnDrop for SigningKey {}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

/// A spend-authorisation key `A`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey(pub EdwardsAffine);

impl PublicKey {
    /// `A.x` in the circuit field.
    pub fn x(&self) -> Fr {
        self.0.x
    }

    /// `A.y` in the circuit field.
    pub fn y(&self) -> Fr {
        self.0.y
    }

    /// Cofactored verification of `sig` on `msg` (module doc).
    pub fn verify(&self, msg: Fr, sig: &Signature) -> Result<(), SignatureError> {
        let a = self.0;
        if !a.is_on_curve() {
            return Err(SignatureError::PublicKeyNotOnCurve);
        }
        let a8 = a.mul_by_cofactor_to_group();
        if a8.is_zero() {
            return Err(SignatureError::SmallOrderPublicKey);
        }
        if !sig.r.is_on_curve() {
            return Err(SignatureError::RNotOnCurve);
        }
        let h = challenge(&sig.r, &a, msg);
        let left = generator_times(&sig.s);
        let right = a8.mul_bigint(h.into_bigint()) + sig.r;
        // `S G - h 8A` lies in the prime-order subgroup, so the equation holding implies that
        // `R` does too: the (costly) subgroup check only names the reason of a failure.
        if left == right {
            Ok(())
        } else if !sig.r.is_in_correct_subgroup_assuming_on_curve() {
            Err(SignatureError::RNotInSubgroup)
        } else {
            Err(SignatureError::InvalidSignature)
        }
    }
}

/// [`PublicKey::verify`] as a free function.
pub fn verify(pk: &PublicKey, msg: Fr, sig: &Signature) -> Result<(), SignatureError> {
    pk.verify(msg, sig)
}

/// A signature `(R, S)`; `S` is canonical by type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    /// The nonce point `R = r G`.
    pub r: EdwardsAffine,
    /// `S = r + 8 h s mod l`.
    pub s: JubjubScalar,
}

impl Signature {
    /// Compressed `R` (ark's `CanonicalSerialize`, 32 bytes) followed by `S` in 32 little-endian
    /// bytes.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_BYTES] {
        let mut out = [0u8; SIGNATURE_BYTES];
        self.r
            .serialize_compressed(&mut out[..32])
            .expect("a compressed Baby Jubjub point is 32 bytes");
        out[32..].copy_from_slice(&self.s.into_bigint().to_bytes_le());
        out
    }

    /// Parses [`Self::to_bytes`]; rejects an `R` that is not a canonical encoding of a point in
    /// the prime-order subgroup and any `S >= l`.
    pub fn from_bytes(bytes: &[u8; SIGNATURE_BYTES]) -> Result<Self, SignatureError> {
        let r = EdwardsAffine::deserialize_compressed(&bytes[..32])
            .map_err(|_| SignatureError::MalformedR)?;
        let mut limbs = [0u64; 4];
        for (limb, chunk) in limbs.iter_mut().zip(bytes[32..].chunks_exact(8)) {
            *limb = u64::from_le_bytes(chunk.try_into().expect("8-byte chunk"));
        }
        let s = JubjubScalar::from_bigint(ark_ff::BigInt(limbs))
            .ok_or(SignatureError::NonCanonicalS)?;
        Ok(Signature { r, s })
    }
}

/// `s G` for a scalar, as an affine point.
pub fn mul_generator(s: JubjubScalar) -> EdwardsAffine {
    generator_times(&s).into_affine()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ec::CurveConfig;
    use ark_ed_on_bn254::EdwardsConfig;
    use ark_ff::UniformRand;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(0x5eed)
    }

    fn key(rng: &mut ChaCha8Rng) -> SigningKey {
        SigningKey::random(rng)
    }

    #[test]
    fn table_multiplication_equals_double_and_add() {
        let mut rng = rng();
        let edge = [
            JubjubScalar::zero(),
            JubjubScalar::from(1u64),
            JubjubScalar::from(15u64),
            JubjubScalar::from(16u64),
            -JubjubScalar::from(1u64),
        ];
        for k in edge.into_iter().chain((0..50).map(|_| rng.gen())) {
            assert_eq!(generator_times(&k), generator() * k, "k = {k}");
        }
    }

    #[test]
    fn generator_has_prime_order() {
        let g = generator();
        assert!(g.is_on_curve());
        assert!(!g.is_zero());
        assert!(g.mul_bigint(JubjubScalar::MODULUS).is_zero());
        assert!(g.is_in_correct_subgroup_assuming_on_curve());
        assert_eq!(JubjubScalar::MODULUS_BIT_SIZE as usize, SCALAR_BITS);
        assert_eq!(EdwardsConfig::COFACTOR, &[8]);
    }

    #[test]
    fn sign_verify_round_trip() {
        let mut rng = rng();
        for _ in 0..8 {
            let sk = key(&mut rng);
            let msg: Fr = rng.gen();
            let sig = sk.sign(msg);
            assert_eq!(sk.public_key().verify(msg, &sig), Ok(()));
            assert_eq!(verify(&sk.public_key(), msg, &sig), Ok(()));
            // deterministic
            assert_eq!(sk.sign(msg), sig);
        }
    }

    #[test]
    fn wrong_message_or_key_rejected() {
        let mut rng = rng();
        let sk = key(&mut rng);
        let other = key(&mut rng);
        let msg: Fr = rng.gen();
        let sig = sk.sign(msg);
        assert_eq!(
            sk.public_key().verify(msg + Fr::from(1u64), &sig),
            Err(SignatureError::InvalidSignature)
        );
        assert_eq!(
            other.public_key().verify(msg, &sig),
            Err(SignatureError::InvalidSignature)
        );
    }

    #[test]
    fn tampered_signature_rejected() {
        let mut rng = rng();
        let sk = key(&mut rng);
        let pk = sk.public_key();
        let msg: Fr = rng.gen();
        let sig = sk.sign(msg);
        let bad_s = Signature {
            s: sig.s + JubjubScalar::from(1u64),
            ..sig
        };
        assert_eq!(
            pk.verify(msg, &bad_s),
            Err(SignatureError::InvalidSignature)
        );
        let bad_r = Signature {
            r: (sig.r + generator()).into_affine(),
            ..sig
        };
        assert_eq!(
            pk.verify(msg, &bad_r),
            Err(SignatureError::InvalidSignature)
        );
        // R with a small-order component
        let t2 = EdwardsAffine::new_unchecked(Fr::zero(), -Fr::from(1u64));
        let torsion_r = Signature {
            r: (sig.r + t2).into_affine(),
            ..sig
        };
        assert_eq!(
            pk.verify(msg, &torsion_r),
            Err(SignatureError::RNotInSubgroup)
        );
        let off_curve = Signature {
            r: EdwardsAffine::new_unchecked(Fr::from(1u64), Fr::from(1u64)),
            ..sig
        };
        assert_eq!(pk.verify(msg, &off_curve), Err(SignatureError::RNotOnCurve));
    }

    #[test]
    fn small_order_keys_rejected() {
        // With A of small order, 8 A = O, so R = S G satisfies S G = R + h (8 A) for any S.
        let mut rng = rng();
        let msg: Fr = rng.gen();
        let s = JubjubScalar::rand(&mut rng);
        let forged = Signature {
            r: mul_generator(s),
            s,
        };
        let identity = EdwardsAffine::zero();
        let order2 = EdwardsAffine::new_unchecked(Fr::zero(), -Fr::from(1u64));
        assert!(order2.is_on_curve());
        for a in [identity, order2] {
            assert_eq!(
                PublicKey(a).verify(msg, &forged),
                Err(SignatureError::SmallOrderPublicKey)
            );
            // the plain (uncofactored) equation would have accepted the forgery
            let h = challenge(&forged.r, &a, msg);
            assert_eq!(
                generator() * forged.s,
                a.mul_by_cofactor_to_group().mul_bigint(h.into_bigint()) + forged.r
            );
        }
        let off_curve = PublicKey(EdwardsAffine::new_unchecked(Fr::from(2u64), Fr::from(3u64)));
        assert_eq!(
            off_curve.verify(msg, &forged),
            Err(SignatureError::PublicKeyNotOnCurve)
        );
    }

    #[test]
    fn torsioned_key_verifies_as_its_prime_part() {
        // cofactored verification: A + T (T of order 2) accepts A's signatures
        let mut rng = rng();
        let sk = key(&mut rng);
        let msg: Fr = rng.gen();
        let a = sk.public_key().0;
        let t2 = EdwardsAffine::new_unchecked(Fr::zero(), -Fr::from(1u64));
        let a_t = PublicKey((a + t2).into_affine());
        // the challenge hashes A itself, so a signature for A does not carry over
        assert_eq!(
            a_t.verify(msg, &sk.sign(msg)),
            Err(SignatureError::InvalidSignature)
        );
    }

    #[test]
    fn zero_secret_rejected() {
        assert_eq!(
            SigningKey::from_bytes(&[0u8; 32]).unwrap_err(),
            SignatureError::ZeroSecretKey
        );
        let l_bytes: [u8; 32] = JubjubScalar::MODULUS.to_bytes_le().try_into().unwrap();
        assert_eq!(
            SigningKey::from_bytes(&l_bytes).unwrap_err(),
            SignatureError::ZeroSecretKey
        );
        assert!(SigningKey::from_bytes(&[1u8; 32]).is_ok());
    }

    #[test]
    fn debug_hides_secret() {
        let sk = SigningKey::from_bytes(&[0x42u8; 32]).unwrap();
        let shown = format!("{sk:?}");
        assert_eq!(shown, "SigningKey(..)");
    }

    #[test]
    fn bytes_round_trip() {
        let mut rng = rng();
        for _ in 0..8 {
            let sk = key(&mut rng);
            let sig = sk.sign(rng.gen());
            let bytes = sig.to_bytes();
            assert_eq!(Signature::from_bytes(&bytes), Ok(sig));
        }
    }

    #[test]
    fn non_canonical_s_rejected() {
        let mut rng = rng();
        let sig = key(&mut rng).sign(rng.gen());
        let mut bytes = sig.to_bytes();
        // S + l still fits in 32 bytes
        let mut s_plus_l = sig.s.into_bigint();
        s_plus_l.add_with_carry(&JubjubScalar::MODULUS);
        bytes[32..].copy_from_slice(&s_plus_l.to_bytes_le());
        assert_eq!(
            Signature::from_bytes(&bytes),
            Err(SignatureError::NonCanonicalS)
        );
        bytes[32..].copy_from_slice(&JubjubScalar::MODULUS.to_bytes_le());
        assert_eq!(
            Signature::from_bytes(&bytes),
            Err(SignatureError::NonCanonicalS)
        );
        bytes[32..].fill(0xff);
        assert_eq!(
            Signature::from_bytes(&bytes),
            Err(SignatureError::NonCanonicalS)
        );
    }

    #[test]
    fn malformed_r_rejected() {
        let mut rng = rng();
        let sig = key(&mut rng).sign(rng.gen());
        let mut bytes = sig.to_bytes();
        // find a y with no curve point, keeping S valid
        let mut found = false;
        for y in 2u64..200 {
            let y = Fr::from(y);
            let mut enc = [0u8; 32];
            y.serialize_compressed(&mut enc[..]).unwrap();
            bytes[..32].copy_from_slice(&enc);
            if EdwardsAffine::get_point_from_y_unchecked(y, false).is_none() {
                assert_eq!(
                    Signature::from_bytes(&bytes),
                    Err(SignatureError::MalformedR)
                );
                found = true;
                break;
            }
        }
        assert!(found);
        // a point on the curve outside the prime-order subgroup
        let t2 = EdwardsAffine::new_unchecked(Fr::zero(), -Fr::from(1u64));
        let torsion = Signature {
            r: (sig.r + t2).into_affine(),
            ..sig
        };
        assert_eq!(
            Signature::from_bytes(&torsion.to_bytes()),
            Err(SignatureError::MalformedR)
        );
    }
}
