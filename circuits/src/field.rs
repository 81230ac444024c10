//! Encoding of BN254 scalar-field elements: canonical big-endian hex (`0x` + 64 digits) for JSON
//! and 32-byte big-endian arrays, rejecting non-canonical encodings (values >= r) everywhere.

use ark_bn254::Fr;
use ark_ff::{BigInteger, PrimeField};
use sha2::{Digest, Sha256};

/// A field element could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// Not hexadecimal, or longer than 32 bytes.
    #[error("not a 0x-prefixed hex field element of at most 32 bytes")]
    BadHex,
    /// The integer is not below the field modulus r.
    #[error("field element is not canonical (>= the BN254 scalar field modulus)")]
    NonCanonical,
}

/// 32-byte big-endian encoding.
pub fn to_bytes_be(x: &Fr) -> [u8; 32] {
    let v = x.into_bigint().to_bytes_be();
    let mut out = [0u8; 32];
    out[32 - v.len()..].copy_from_slice(&v);
    out
}

/// Decodes 32 big-endian bytes, rejecting values >= r.
pub fn from_bytes_be(bytes: &[u8; 32]) -> Result<Fr, FieldError> {
    let x = Fr::from_be_bytes_mod_order(bytes);
    if to_bytes_be(&x) != *bytes {
        return Err(FieldError::NonCanonical);
    }
    Ok(x)
}

/// `F(SHA-256(tag || parts...))`: the digest read big-endian with its first byte cleared (248
/// bits, always canonical, non-zero except with probability 2^-248). Veil's one way of turning
/// bytes into a public field element (`dest`, `deposit_ref`, `ciphertext_hash`).
pub fn tagged_sha256(tag: &[u8], parts: &[&[u8]]) -> Fr {
    let mut h = Sha256::new();
    h.update(tag);
    for p in parts {
        h.update(p);
    }
    let mut digest: [u8; 32] = h.finalize().into();
    digest[0] = 0;
    from_bytes_be(&digest).expect("248-bit values are canonical")
}

/// `0x`-prefixed, 64 lowercase hex digits.
pub fn to_hex(x: &Fr) -> String {
    format!("0x{}", hex::encode(to_bytes_be(x)))
}

/// Parses `0x`-prefixed (or bare) hex of at most 64 digits, rejecting values >= r.
pub fn from_hex(s: &str) -> Result<Fr, FieldError> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    if digits.is_empty() || digits.len() > 64 {
        return Err(FieldError::BadHex);
    }
    let padded = format!("{digits:0>64}");
    let bytes = hex::decode(padded).map_err(|_| FieldError::BadHex)?;
    from_bytes_be(&bytes.try_into().expect("64 hex digits"))
}

/// Serde adapter: a field element as canonical hex.
pub mod serde_hex {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as `0x` hex.
    pub fn serialize<S: Serializer>(x: &Fr, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(x))
    }

    /// Deserializes canonical hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Fr, D::Error> {
        let s = String::deserialize(d)?;
        from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// Serde adapter for arrays of field elements.
pub mod serde_hex_vec {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as a list of `0x` hex strings.
    pub fn serialize<S: Serializer>(xs: &[Fr], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(xs.iter().map(to_hex))
    }

    /// Deserializes a list of canonical hex strings.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Fr>, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        v.iter()
            .map(|s| from_hex(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// Serde adapter for `[Fr; 2]`.
pub mod serde_hex_array2 {
    use super::*;
    use serde::{Deserializer, Serializer};

    /// Serializes as a list of two `0x` hex strings.
    pub fn serialize<S: Serializer>(xs: &[Fr; 2], s: S) -> Result<S::Ok, S::Error> {
        super::serde_hex_vec::serialize(xs, s)
    }

    /// Deserializes exactly two canonical hex strings.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[Fr; 2], D::Error> {
        let v = super::serde_hex_vec::deserialize(d)?;
        v.try_into()
            .map_err(|_| serde::de::Error::custom("expected exactly two field elements"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::Field;

    #[test]
    fn hex_round_trip_and_canonicity() {
        let x = Fr::from(123456789u64).inverse().unwrap();
        assert_eq!(from_hex(&to_hex(&x)).unwrap(), x);
        assert_eq!(from_hex("0x1").unwrap(), Fr::from(1u64));
        let r = "0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001";
        assert_eq!(from_hex(r), Err(FieldError::NonCanonical));
        let r_minus_1 = "0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000000";
        assert_eq!(from_hex(r_minus_1).unwrap(), -Fr::from(1u64));
        assert_eq!(from_hex("0xzz"), Err(FieldError::BadHex));
        assert_eq!(
            from_hex(&format!("0x{}", "1".repeat(65))),
            Err(FieldError::BadHex)
        );
        assert_eq!(from_hex("0x"), Err(FieldError::BadHex));
    }
}
