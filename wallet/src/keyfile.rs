//! The wallet's key file: the 32-byte spending key and its network, as JSON
//! (`{"version": 1, "network": "regtest", "spending_key": "<64 hex digits>"}`), written 0600 and
//! atomically. The key never leaves this file and the process that signs with it.

use std::path::{Path, PathBuf};

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use veil_circuits::keys::KeyError;
use veil_circuits::{Network, PaymentAddress, SpendingKey};
use zeroize::Zeroize;

use crate::fs::{write_private_atomic, FileError};

/// Current key file format version.
pub const KEY_FILE_VERSION: u32 = 1;

/// Key file errors.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or writing failed.
    #[error(transparent)]
    File(#[from] FileError),
    /// The file exists and overwriting was not asked for.
    #[error("{0} already exists; refusing to overwrite a spending key")]
    Exists(PathBuf),
    /// Not a key file (bad JSON, unknown fields, bad hex).
    #[error("{path}: not a Veil key file: {reason}")]
    Malformed {
        /// File.
        path: PathBuf,
        /// What is wrong (never the key).
        reason: String,
    },
    /// Another format version.
    #[error("{path}: key file version {found}, this build reads version {KEY_FILE_VERSION}")]
    Version {
        /// File.
        path: PathBuf,
        /// Version found.
        found: u32,
    },
    /// The bytes are not a valid spending key.
    #[error("{path}: invalid spending key")]
    Key {
        /// File.
        path: PathBuf,
        /// Cause.
        source: KeyError,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileJson {
    version: u32,
    network: Network,
    spending_key: String,
}

impl Drop for KeyFileJson {
    fn drop(&mut self) {
        self.spending_key.zeroize();
    }
}

/// A spending key with the network its addresses are for.
#[derive(Clone)]
pub struct KeyFile {
    /// The key.
    pub key: SpendingKey,
    /// Address network.
    pub network: Network,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("key", &self.key)
            .field("network", &self.network)
            .finish()
    }
}

impl KeyFile {
    /// A new key from `rng` (the OS generator in the wallet).
    pub fn generate<R: RngCore + CryptoRng>(network: Network, rng: &mut R) -> Self {
        KeyFile {
            key: SpendingKey::random(rng),
            network,
        }
    }

    /// The payment address, bech32m-encoded for the network.
    pub fn address(&self) -> String {
        self.payment_address().encode(self.network)
    }

    /// The payment address.
    pub fn payment_address(&self) -> PaymentAddress {
        self.key.payment_address()
    }

    /// Writes the key file (0600, atomic). Refuses to replace an existing file unless
    /// `overwrite`.
    pub fn save(&self, path: &Path, overwrite: bool) -> Result<(), KeyFileError> {
        if !overwrite && path.exists() {
            return Err(KeyFileError::Exists(path.to_owned()));
        }
        let mut bytes = self.key.to_bytes();
        let json = KeyFileJson {
            version: KEY_FILE_VERSION,
            network: self.network,
            spending_key: hex::encode(bytes),
        };
        bytes.zeroize();
        let mut text = serde_json::to_vec_pretty(&json).expect("key file serialises");
        text.push(b'\n');
        let result = write_private_atomic(path, &text);
        text.zeroize();
        Ok(result?)
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<Self, KeyFileError> {
        let mut text = std::fs::read(path).map_err(FileError::new(path))?;
        let parsed = serde_json::from_slice::<KeyFileJson>(&text);
        text.zeroize();
        let malformed = |reason: String| KeyFileError::Malformed {
            path: path.to_owned(),
            reason,
        };
        // serde_json's messages quote no input values, so they cannot leak the key.
        let json = parsed.map_err(|e| malformed(e.to_string()))?;
        if json.version != KEY_FILE_VERSION {
            return Err(KeyFileError::Version {
                path: path.to_owned(),
                found: json.version,
            });
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&json.spending_key, &mut bytes)
            .map_err(|_| malformed("spending_key must be 64 hex digits".into()))?;
        let key = SpendingKey::from_bytes(bytes).map_err(|source| KeyFileError::Key {
            path: path.to_owned(),
            source,
        });
        bytes.zeroize();
        Ok(KeyFile {
            key: key?,
            network: json.network,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn save_load_round_trip_mode_and_no_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let kf = KeyFile::generate(Network::Regtest, &mut rng);
        kf.save(&path, false).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "key file mode {mode:o}");
        }
        let back = KeyFile::load(&path).unwrap();
        assert_eq!(back.key.to_bytes(), kf.key.to_bytes());
        assert_eq!(back.network, Network::Regtest);
        assert!(back.address().starts_with("veilrt1"));
        // Debug never shows the key.
        let dbg = format!("{back:?}");
        assert!(!dbg.contains(&hex::encode(kf.key.to_bytes())), "{dbg}");

        let other = KeyFile::generate(Network::Regtest, &mut rng);
        assert!(matches!(
            other.save(&path, false),
            Err(KeyFileError::Exists(_))
        ));
        assert_eq!(
            KeyFile::load(&path).unwrap().key.to_bytes(),
            kf.key.to_bytes()
        );
        other.save(&path, true).unwrap();
        assert_eq!(
            KeyFile::load(&path).unwrap().key.to_bytes(),
            other.key.to_bytes()
        );
    }

    #[test]
    fn bad_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        let write = |s: &str| std::fs::write(&path, s).unwrap();
        write("not json");
        assert!(matches!(
            KeyFile::load(&path),
            Err(KeyFileError::Malformed { .. })
        ));
        write(r#"{"version":1,"network":"regtest","spending_key":"abcd"}"#);
        assert!(matches!(
            KeyFile::load(&path),
            Err(KeyFileError::Malformed { .. })
        ));
        write(&format!(
            r#"{{"version":2,"network":"regtest","spending_key":"{}"}}"#,
            "07".repeat(32)
        ));
        assert!(matches!(
            KeyFile::load(&path),
            Err(KeyFileError::Version { found: 2, .. })
        ));
        write(&format!(
            r#"{{"version":1,"network":"regtest","spending_key":"{}"}}"#,
            "00".repeat(32)
        ));
        assert!(matches!(
            KeyFile::load(&path),
            Err(KeyFileError::Key { .. })
        ));
        assert!(matches!(
            KeyFile::load(&dir.path().join("missing.json")),
            Err(KeyFileError::File(_))
        ));
    }
}
