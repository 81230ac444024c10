//! The operator's secp256k1 anchoring key: generation, the key file (WIF text, mode 0600, written
//! atomically), and its P2TR / P2WPKH scripts and addresses for a network.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use bitcoin::key::{CompressedPublicKey, Keypair, TapTweak, TweakedKeypair, UntweakedPublicKey};
use bitcoin::secp256k1::{All, Secp256k1, SecretKey};
use bitcoin::{Address, Network, NetworkKind, PrivateKey, Script, ScriptBuf};
use rand_core::{CryptoRng, RngCore};

/// How the operator's outputs are locked and its anchor inputs signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyKind {
    /// Taproot key path (BIP 341, untweaked internal key with no script tree): the default.
    #[default]
    P2tr,
    /// Segwit v0 pay-to-witness-public-key-hash (BIP 143).
    P2wpkh,
}

impl KeyKind {
    /// `p2tr` or `p2wpkh`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::P2tr => "p2tr",
            KeyKind::P2wpkh => "p2wpkh",
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyKind {
    type Err = OperatorKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "p2tr" => Ok(KeyKind::P2tr),
            "p2wpkh" => Ok(KeyKind::P2wpkh),
            other => Err(OperatorKeyError::UnknownKind(other.to_owned())),
        }
    }
}

/// The operator key could not be made, read or written.
#[derive(Debug, thiserror::Error)]
pub enum OperatorKeyError {
    /// Reading or writing the key file failed.
    #[error("operator key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file is readable or writable by group or others.
    #[error("operator key file {path} has mode {mode:o}; it must not be accessible by group or others (chmod 600)")]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file does not hold a compressed WIF private key.
    #[error("operator key file {path} does not hold a compressed WIF private key")]
    Malformed {
        /// The key file.
        path: PathBuf,
    },
    /// The key file is for another network kind.
    #[error("operator key file {path} is for {found:?} networks, expected a key for {expected}")]
    WrongNetwork {
        /// The key file.
        path: PathBuf,
        /// The network asked for.
        expected: Network,
        /// The kind found in the file.
        found: NetworkKind,
    },
    /// 32 bytes that are not a valid secp256k1 secret key (zero or >= n).
    #[error("not a valid secp256k1 secret key")]
    InvalidSecret,
    /// Not `p2tr` or `p2wpkh`.
    #[error("unknown operator key kind {0:?} (expected p2tr or p2wpkh)")]
    UnknownKind(String),
}

/// The operator's secp256k1 key. Its `Debug` output never shows the secret.
#[derive(Clone)]
pub struct OperatorKey {
    secp: Secp256k1<All>,
    keypair: Keypair,
}

impl fmt::Debug for OperatorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorKey")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl OperatorKey {
    /// A fresh random key.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        loop {
            let mut bytes = [0u8; 32];
            rng.fill_bytes(&mut bytes);
            if let Ok(key) = Self::from_secret_bytes(&bytes) {
                return key;
            }
        }
    }

    /// The key with this 32-byte big-endian secret.
    pub fn from_secret_bytes(bytes: &[u8; 32]) -> Result<Self, OperatorKeyError> {
        let secret = SecretKey::from_slice(bytes).map_err(|_| OperatorKeyError::InvalidSecret)?;
        let secp = Secp256k1::new();
        let keypair = Keypair::from_secret_key(&secp, &secret);
        Ok(Self { secp, keypair })
    }

    /// Reads a key file written by [`Self::save`], refusing files that group or others can access
    /// and keys for another network kind (mainnet vs. test networks).
    pub fn load(path: &Path, network: Network) -> Result<Self, OperatorKeyError> {
        let io = |source| OperatorKeyError::Io {
            path: path.to_owned(),
            source,
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(OperatorKeyError::Permissions {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        let text = fs::read_to_string(path).map_err(io)?;
        let malformed = || OperatorKeyError::Malformed {
            path: path.to_owned(),
        };
        let key = PrivateKey::from_wif(text.trim()).map_err(|_| malformed())?;
        if !key.compressed {
            return Err(malformed());
        }
        if key.network != NetworkKind::from(network) {
            return Err(OperatorKeyError::WrongNetwork {
                path: path.to_owned(),
                expected: network,
                found: key.network,
            });
        }
        Self::from_secret_bytes(&key.inner.secret_bytes())
    }

    /// Writes the key as WIF for `network` to `path`: mode 0600, through a temporary file in the
    /// same directory that is synced and renamed into place.
    pub fn save(&self, path: &Path, network: Network) -> Result<(), OperatorKeyError> {
        let io = |source| OperatorKeyError::Io {
            path: path.to_owned(),
            source,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .ok_or_else(|| io(std::io::Error::other("not a file path")))?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let wif = PrivateKey::new(self.keypair.secret_key(), network).to_wif();
        let write = || -> std::io::Result<()> {
            let mut opts = fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut file = opts.open(&tmp)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(fs::Permissions::from_mode(0o600))?;
            }
            file.write_all(wif.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            fs::rename(&tmp, path)?;
            fs::File::open(&dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io(e)
        })
    }

    /// Loads the key at `path`, or generates one and saves it there if the file does not exist.
    pub fn load_or_generate<R: RngCore + CryptoRng>(
        path: &Path,
        network: Network,
        rng: &mut R,
    ) -> Result<Self, OperatorKeyError> {
        if path.exists() {
            return Self::load(path, network);
        }
        let key = Self::generate(rng);
        key.save(path, network)?;
        tracing::info!(path = %path.display(), pubkey = %key.public_key(), "generated operator key");
        Ok(key)
    }

    /// The compressed public key (P2WPKH).
    pub fn public_key(&self) -> CompressedPublicKey {
        CompressedPublicKey(self.keypair.public_key())
    }

    /// The untweaked x-only internal key (P2TR).
    pub fn internal_key(&self) -> UntweakedPublicKey {
        self.keypair.x_only_public_key().0
    }

    /// The output script locking the operator's change of this kind.
    pub fn script_pubkey(&self, kind: KeyKind) -> ScriptBuf {
        match kind {
            KeyKind::P2tr => ScriptBuf::new_p2tr(&self.secp, self.internal_key(), None),
            KeyKind::P2wpkh => ScriptBuf::new_p2wpkh(&self.public_key().wpubkey_hash()),
        }
    }

    /// The operator's address of this kind on `network`.
    pub fn address(&self, kind: KeyKind, network: Network) -> Address {
        match kind {
            KeyKind::P2tr => Address::p2tr(&self.secp, self.internal_key(), None, network),
            KeyKind::P2wpkh => Address::p2wpkh(&self.public_key(), network),
        }
    }

    /// Which of the operator's scripts `script` is, if any.
    pub fn kind_of(&self, script: &Script) -> Option<KeyKind> {
        [KeyKind::P2tr, KeyKind::P2wpkh]
            .into_iter()
            .find(|k| self.script_pubkey(*k).as_script() == script)
    }

    pub(crate) fn secp(&self) -> &Secp256k1<All> {
        &self.secp
    }

    pub(crate) fn keypair(&self) -> &Keypair {
        &self.keypair
    }

    pub(crate) fn tweaked_keypair(&self) -> TweakedKeypair {
        self.keypair.tap_tweak(&self.secp, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn key_file_round_trip_mode_and_network() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("operator.key");
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let key = OperatorKey::load_or_generate(&path, Network::Regtest, &mut rng).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let again = OperatorKey::load_or_generate(&path, Network::Regtest, &mut rng).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        // Testnet and signet share the test WIF prefix; mainnet does not.
        assert!(OperatorKey::load(&path, Network::Signet).is_ok());
        assert!(matches!(
            OperatorKey::load(&path, Network::Bitcoin),
            Err(OperatorKeyError::WrongNetwork { .. })
        ));
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }

    #[cfg(unix)]
    #[test]
    fn refuses_world_readable_and_malformed_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("operator.key");
        let key = OperatorKey::generate(&mut ChaCha20Rng::seed_from_u64(1));
        key.save(&path, Network::Regtest).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            OperatorKey::load(&path, Network::Regtest),
            Err(OperatorKeyError::Permissions { mode: 0o644, .. })
        ));
        fs::write(&path, "not a key\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            OperatorKey::load(&path, Network::Regtest),
            Err(OperatorKeyError::Malformed { .. })
        ));
    }

    #[test]
    fn addresses_and_scripts_agree() {
        let key = OperatorKey::generate(&mut ChaCha20Rng::seed_from_u64(2));
        for kind in [KeyKind::P2tr, KeyKind::P2wpkh] {
            let addr = key.address(kind, Network::Regtest);
            assert_eq!(addr.script_pubkey(), key.script_pubkey(kind));
            assert_eq!(key.kind_of(&addr.script_pubkey()), Some(kind));
            assert!(addr.to_string().starts_with("bcrt1"));
            assert_eq!(kind.as_str().parse::<KeyKind>().unwrap(), kind);
        }
        assert!(key
            .address(KeyKind::P2tr, Network::Regtest)
            .to_string()
            .starts_with("bcrt1p"));
        let other = OperatorKey::generate(&mut ChaCha20Rng::seed_from_u64(3));
        assert_eq!(key.kind_of(&other.script_pubkey(KeyKind::P2tr)), None);
        assert!(!format!("{key:?}").contains(&hex_secret(&key)));
        assert!("p2sh".parse::<KeyKind>().is_err());
        assert!(OperatorKey::from_secret_bytes(&[0u8; 32]).is_err());
    }

    fn hex_secret(key: &OperatorKey) -> String {
        key.keypair
            .secret_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
