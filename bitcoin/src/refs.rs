//! The Bitcoin side of transfers' public fields (DESIGN §6): a withdrawal's `dest` is the hash of
//! the destination address's scriptPubKey and a deposit's `deposit_ref` the hash of the funding
//! outpoint. DESIGN leaves the hash open; it is defined here, once:
//!
//! - `dest = F(SHA-256("veil/withdrawal-dest" || scriptPubKey))`
//! - `deposit_ref = F(SHA-256("veil/deposit-ref" || txid (32 bytes, internal byte order) ||
//!   vout (u32 little-endian)))`, i.e. the outpoint's consensus encoding,
//!
//! where `F` reads the digest big-endian with its first byte cleared (248 bits, always a canonical
//! field element, and non-zero except with probability 2^-248). The bridge recomputes `dest` from
//! the scriptPubKey it pays to. Addresses are parsed with rust-bitcoin and must be of the wallet's
//! network (regtest addresses for a regtest wallet).

use std::str::FromStr;

use ark_bn254::Fr;
use bitcoin::{Address, OutPoint, ScriptBuf};
use veil_circuits::field;
use veil_circuits::Network;

const DEST_TAG: &[u8] = b"veil/withdrawal-dest";
const DEPOSIT_REF_TAG: &[u8] = b"veil/deposit-ref";

/// A Bitcoin address or outpoint could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BitcoinRefError {
    /// Not a Bitcoin address.
    #[error("{input:?} is not a Bitcoin address: {reason}")]
    Address {
        /// What was given.
        input: String,
        /// Parser message.
        reason: String,
    },
    /// A valid address of another network.
    #[error("{input:?} is not a {expected} address")]
    WrongNetwork {
        /// What was given.
        input: String,
        /// Network wanted.
        expected: bitcoin::Network,
    },
    /// Not `TXID:VOUT`.
    #[error("{input:?} is not an outpoint TXID:VOUT: {reason}")]
    Outpoint {
        /// What was given.
        input: String,
        /// Parser message.
        reason: String,
    },
}

/// The Bitcoin network whose addresses a Veil network pays out to.
pub fn bitcoin_network(network: Network) -> bitcoin::Network {
    match network {
        Network::Mainnet => bitcoin::Network::Bitcoin,
        Network::Regtest => bitcoin::Network::Regtest,
    }
}

/// Parses `address` for `network` and returns its scriptPubKey.
pub fn parse_address(address: &str, network: Network) -> Result<ScriptBuf, BitcoinRefError> {
    let unchecked = Address::from_str(address.trim()).map_err(|e| BitcoinRefError::Address {
        input: address.to_owned(),
        reason: e.to_string(),
    })?;
    let expected = bitcoin_network(network);
    let checked =
        unchecked
            .require_network(expected)
            .map_err(|_| BitcoinRefError::WrongNetwork {
                input: address.to_owned(),
                expected,
            })?;
    Ok(checked.script_pubkey())
}

/// Parses `TXID:VOUT`.
pub fn parse_outpoint(s: &str) -> Result<OutPoint, BitcoinRefError> {
    OutPoint::from_str(s.trim()).map_err(|e| BitcoinRefError::Outpoint {
        input: s.to_owned(),
        reason: e.to_string(),
    })
}

fn tagged_field(tag: &[u8], data: &[u8]) -> Fr {
    field::tagged_sha256(tag, &[data])
}

/// `dest` of a withdrawal to `script_pubkey`.
pub fn withdrawal_dest(script_pubkey: &ScriptBuf) -> Fr {
    tagged_field(DEST_TAG, script_pubkey.as_bytes())
}

/// `deposit_ref` of a deposit funded by `outpoint`.
pub fn deposit_ref(outpoint: &OutPoint) -> Fr {
    tagged_field(
        DEPOSIT_REF_TAG,
        &bitcoin::consensus::encode::serialize(outpoint),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    // BIP-173/350 regtest and mainnet vectors.
    const BCRT_P2WPKH: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
    const BC_P2WPKH: &str = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";

    #[test]
    fn addresses_parse_for_their_network_only() {
        let spk = parse_address(BCRT_P2WPKH, Network::Regtest).unwrap();
        assert_eq!(
            hex::encode(spk.as_bytes()),
            "0014751e76e8199196d454941c45d1b3a323f1433bd6"
        );
        let main = parse_address(BC_P2WPKH, Network::Mainnet).unwrap();
        assert_eq!(main, spk, "same witness program, same script");
        assert!(matches!(
            parse_address(BC_P2WPKH, Network::Regtest),
            Err(BitcoinRefError::WrongNetwork { .. })
        ));
        assert!(matches!(
            parse_address(
                "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt081",
                Network::Regtest
            ),
            Err(BitcoinRefError::Address { .. })
        ));
        assert!(matches!(
            parse_address("hello", Network::Regtest),
            Err(BitcoinRefError::Address { .. })
        ));
    }

    #[test]
    fn dest_and_deposit_ref_are_tagged_sha256() {
        let spk = parse_address(BCRT_P2WPKH, Network::Regtest).unwrap();
        let dest = withdrawal_dest(&spk);
        let mut expected: [u8; 32] = Sha256::digest([DEST_TAG, spk.as_bytes()].concat()).into();
        expected[0] = 0;
        assert_eq!(field::to_bytes_be(&dest), expected);
        assert_ne!(dest, Fr::from(0u64));

        let txid = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b";
        let op = parse_outpoint(&format!("{txid}:1")).unwrap();
        assert_eq!(op.vout, 1);
        let r = deposit_ref(&op);
        let mut data = hex::decode(txid).unwrap();
        data.reverse(); // internal byte order
        data.extend_from_slice(&1u32.to_le_bytes());
        let mut expected: [u8; 32] = Sha256::digest([DEPOSIT_REF_TAG, &data].concat()).into();
        expected[0] = 0;
        assert_eq!(field::to_bytes_be(&r), expected);
        assert_ne!(
            deposit_ref(&parse_outpoint(&format!("{txid}:2")).unwrap()),
            r
        );
        assert!(parse_outpoint(txid).is_err());
        assert!(parse_outpoint(&format!("{txid}:x")).is_err());
    }
}
