//! Spending keys, proof-generation keys, owner tags and bech32m payment addresses (DESIGN §3).
//!
//! `sk` (32 random bytes) yields the Baby Jubjub signing scalar `s` and `A = s * G`, the nullifier
//! key `nk = H(DOM_NK, s)`, the owner tag `addr = H(DOM_ADDR, A.x, A.y, nk)` and an X25519
//! encryption key derived with HKDF-SHA256 (info `veil/enc`). A [`PaymentAddress`] is
//! `addr || pk_enc` in bech32m with HRP `veil` (`veilrt` on regtest). The prover receives a
//! [`ProofGenerationKey`] (`A`, `nk`), never `s`.

use ark_bn254::Fr;
use ark_ff::{BigInteger, PrimeField};
use bech32::{primitives::decode::CheckedHrpstring, Bech32m, Hrp};
use hkdf::Hkdf;
use rand_core::{CryptoRng, RngCore};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::constants::{domain, ADDRESS_HRP, ADDRESS_HRP_REGTEST, DOM_ADDR, DOM_NK, ENC_KEY_INFO};
use crate::eddsa::{PublicKey, Signature, SigningKey};
use crate::field;
use crate::poseidon::poseidon;

/// Key errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The spending key reduces to the zero scalar.
    #[error("spending key reduces to zero")]
    ZeroKey,
    /// Not a bech32m string, or its checksum is wrong.
    #[error("invalid payment address encoding: {0}")]
    Encoding(String),
    /// Wrong human-readable part.
    #[error("payment address has prefix {found:?}, expected {expected:?}")]
    WrongNetwork {
        /// HRP found.
        found: String,
        /// HRP expected.
        expected: String,
    },
    /// Payload is not 64 bytes or the owner tag is not a canonical field element.
    #[error("payment address payload is malformed")]
    Payload,
}

/// Which network's address prefix to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// `veil1...`
    Mainnet,
    /// `veilrt1...` (regtest, tests and development).
    Regtest,
}

impl Network {
    /// The bech32m human-readable part.
    pub fn hrp(self) -> &'static str {
        match self {
            Network::Mainnet => ADDRESS_HRP,
            Network::Regtest => ADDRESS_HRP_REGTEST,
        }
    }
}

/// The 32-byte spending key. Never logged: `Debug` prints nothing secret.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SpendingKey([u8; 32]);

impl std::fmt::Debug for SpendingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpendingKey(..)")
    }
}

impl SpendingKey {
    /// Wraps 32 bytes, rejecting a key whose scalar is zero.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, KeyError> {
        SigningKey::from_bytes(&bytes).map_err(|_| KeyError::ZeroKey)?;
        Ok(SpendingKey(bytes))
    }

    /// A fresh random key.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        loop {
            let mut b = [0u8; 32];
            rng.fill_bytes(&mut b);
            if let Ok(k) = Self::from_bytes(b) {
                return k;
            }
        }
    }

    /// The raw bytes (for key files only).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The EdDSA signing key (`s`).
    pub fn signing_key(&self) -> SigningKey {
        SigningKey::from_bytes(&self.0).expect("checked at construction")
    }

    /// `A = s * G`.
    pub fn spend_auth_key(&self) -> PublicKey {
        self.signing_key().public_key()
    }

    /// `nk = H(DOM_NK, s)` with `s` embedded as an integer (< l < r).
    pub fn nullifier_key(&self) -> Fr {
        let s = self.signing_key().scalar();
        let s_field = Fr::from_le_bytes_mod_order(&s.into_bigint().to_bytes_le());
        poseidon(&[domain(DOM_NK), s_field])
    }

    /// What the prover needs: `A` and `nk`.
    pub fn proof_generation_key(&self) -> ProofGenerationKey {
        ProofGenerationKey {
            ak: self.spend_auth_key(),
            nk: self.nullifier_key(),
        }
    }

    /// The owner tag `addr`.
    pub fn owner_tag(&self) -> Fr {
        self.proof_generation_key().owner_tag()
    }

    /// The X25519 secret (HKDF-SHA256 of `sk`, info `veil/enc`).
    pub fn encryption_secret(&self) -> x25519_dalek::StaticSecret {
        let hk = Hkdf::<Sha256>::new(None, &self.0);
        let mut okm = [0u8; 32];
        hk.expand(ENC_KEY_INFO, &mut okm)
            .expect("32 bytes is a valid HKDF length");
        let secret = x25519_dalek::StaticSecret::from(okm);
        okm.zeroize();
        secret
    }

    /// The payment address.
    pub fn payment_address(&self) -> PaymentAddress {
        PaymentAddress {
            addr: self.owner_tag(),
            pk_enc: x25519_dalek::PublicKey::from(&self.encryption_secret()).to_bytes(),
        }
    }

    /// Signs a transfer sighash.
    pub fn sign(&self, sighash: Fr) -> Signature {
        self.signing_key().sign(sighash)
    }
}

/// `(A, nk)`: lets a prover build a spend's witness without the ability to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofGenerationKey {
    /// Spend-authorisation key `A`.
    pub ak: PublicKey,
    /// Nullifier key.
    pub nk: Fr,
}

impl ProofGenerationKey {
    /// `addr = H(DOM_ADDR, A.x, A.y, nk)`.
    pub fn owner_tag(&self) -> Fr {
        owner_tag(&self.ak, self.nk)
    }
}

/// `addr = H(DOM_ADDR, A.x, A.y, nk)`.
pub fn owner_tag(ak: &PublicKey, nk: Fr) -> Fr {
    poseidon(&[domain(DOM_ADDR), ak.x(), ak.y(), nk])
}

/// A payment address: owner tag and X25519 encryption public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentAddress {
    /// Owner tag that output notes commit to.
    pub addr: Fr,
    /// X25519 public key note ciphertexts are encrypted to.
    pub pk_enc: [u8; 32],
}

impl PaymentAddress {
    /// bech32m encoding with the network's HRP.
    pub fn encode(&self, network: Network) -> String {
        let mut payload = Vec::with_capacity(64);
        payload.extend_from_slice(&field::to_bytes_be(&self.addr));
        payload.extend_from_slice(&self.pk_enc);
        let hrp = Hrp::parse(network.hrp()).expect("static HRP is valid");
        bech32::encode::<Bech32m>(hrp, &payload).expect("64-byte payload fits bech32m")
    }

    /// Decodes a bech32m address of the given network.
    pub fn decode(s: &str, network: Network) -> Result<Self, KeyError> {
        let checked =
            CheckedHrpstring::new::<Bech32m>(s).map_err(|e| KeyError::Encoding(e.to_string()))?;
        let hrp = checked.hrp().to_lowercase();
        if hrp != network.hrp() {
            return Err(KeyError::WrongNetwork {
                found: hrp,
                expected: network.hrp().to_string(),
            });
        }
        let payload: Vec<u8> = checked.byte_iter().collect();
        if payload.len() != 64 {
            return Err(KeyError::Payload);
        }
        let addr = field::from_bytes_be(&payload[..32].try_into().expect("32 bytes"))
            .map_err(|_| KeyError::Payload)?;
        let pk_enc = payload[32..].try_into().expect("32 bytes");
        Ok(PaymentAddress { addr, pk_enc })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn address_round_trip_and_network_check() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let sk = SpendingKey::random(&mut rng);
        let pa = sk.payment_address();
        let s = pa.encode(Network::Regtest);
        assert!(s.starts_with("veilrt1"));
        assert_eq!(PaymentAddress::decode(&s, Network::Regtest).unwrap(), pa);
        assert!(matches!(
            PaymentAddress::decode(&s, Network::Mainnet),
            Err(KeyError::WrongNetwork { .. })
        ));
        // one flipped character breaks the checksum
        let mut bad: Vec<char> = s.chars().collect();
        let i = bad.len() - 3;
        bad[i] = if bad[i] == 'q' { 'p' } else { 'q' };
        let bad: String = bad.into_iter().collect();
        assert!(matches!(
            PaymentAddress::decode(&bad, Network::Regtest),
            Err(KeyError::Encoding(_))
        ));
        // bech32 (not bech32m) is rejected
        let hrp = Hrp::parse("veilrt").unwrap();
        let legacy = bech32::encode::<bech32::Bech32>(hrp, &[0u8; 64]).unwrap();
        assert!(PaymentAddress::decode(&legacy, Network::Regtest).is_err());
    }

    #[test]
    fn keys_are_deterministic_and_distinct() {
        let a = SpendingKey::from_bytes([7u8; 32]).unwrap();
        let b = SpendingKey::from_bytes([8u8; 32]).unwrap();
        assert_eq!(
            a.owner_tag(),
            SpendingKey::from_bytes([7u8; 32]).unwrap().owner_tag()
        );
        assert_ne!(a.owner_tag(), b.owner_tag());
        assert_ne!(a.nullifier_key(), b.nullifier_key());
        assert_eq!(a.proof_generation_key().owner_tag(), a.owner_tag());
        assert_eq!(format!("{a:?}"), "SpendingKey(..)");
        assert_eq!(
            SpendingKey::from_bytes([0u8; 32]).unwrap_err(),
            KeyError::ZeroKey
        );
    }
}
