//! The wallet state file (`wallet.json`, mode 0600 because it holds note openings, written
//! atomically): the node URL, where scanning resumes, the notes found with their positions and
//! nullifiers, and the transfers this wallet submitted.

use std::path::{Path, PathBuf};

use ark_bn254::Fr;
use serde::{Deserialize, Serialize};
use veil_circuits::field;
use veil_circuits::transfer::SpentNote;
use veil_circuits::{Network, Note};

use crate::fs::{write_private_atomic, FileError};

/// Current state file format version.
pub const STATE_FILE_VERSION: u32 = 1;

/// State file errors.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error(transparent)]
    File(#[from] FileError),
    /// Not a wallet state file.
    #[error("{path}: not a Veil wallet state file: {reason}")]
    Malformed {
        /// File.
        path: PathBuf,
        /// Parser message.
        reason: String,
    },
    /// Another format version.
    #[error("{path}: wallet state version {found}, this build reads version {STATE_FILE_VERSION}")]
    Version {
        /// File.
        path: PathBuf,
        /// Version found.
        found: u32,
    },
}

/// A note owned by this wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnedNote {
    /// Leaf position in the note tree.
    pub position: u64,
    /// The opening (private).
    pub note: Note,
    /// `cm`.
    #[serde(with = "field::serde_hex")]
    pub commitment: Fr,
    /// `nf = H(DOM_NF, nk, cm, pos)`.
    #[serde(with = "field::serde_hex")]
    pub nullifier: Fr,
    /// In the node's nullifier set.
    pub spent: bool,
    /// Spent by a transfer that is not final yet: this wallet's (its id) or seen pending at the
    /// node (`"unknown"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_spend: Option<String>,
}

impl OwnedNote {
    /// Spendable now: neither spent nor being spent.
    pub fn is_spendable(&self) -> bool {
        !self.spent && self.pending_spend.is_none()
    }

    /// As a transfer input.
    pub fn spent_note(&self) -> SpentNote {
        SpentNote {
            note: self.note,
            position: self.position,
        }
    }
}

/// What a submitted transfer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// A private payment.
    Send,
    /// A withdrawal to Bitcoin.
    Withdraw,
}

/// A transfer this wallet submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmittedTransfer {
    /// The node's id.
    pub id: String,
    /// Payment or withdrawal.
    pub kind: TransferKind,
    /// Paid (or withdrawn) amount.
    pub amount: u64,
    /// Fee.
    pub fee: u64,
    /// Recipient: payment address or Bitcoin address.
    pub to: String,
    /// Positions of the notes it spends.
    pub spends: Vec<u64>,
    /// Change expected back, and its commitment (recognised when scanned).
    pub change: u64,
    /// `cm` of the change note.
    #[serde(with = "field::serde_hex")]
    pub change_commitment: Fr,
    /// Last status seen: `pending`, `batched`, `proven` or `rejected`.
    pub status: String,
    /// Batch once batched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<u64>,
    /// Rejection reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl SubmittedTransfer {
    /// Whether the transfer can still change state (not proven, not rejected).
    pub fn is_open(&self) -> bool {
        self.status == "pending" || self.status == "batched"
    }
}

/// The wallet state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletState {
    /// Format version.
    pub version: u32,
    /// Address network.
    pub network: Network,
    /// Node URL.
    pub node_url: String,
    /// First note position not scanned yet.
    pub next_position: u64,
    /// Notes found, in position order.
    pub notes: Vec<OwnedNote>,
    /// Transfers submitted, oldest first.
    pub transfers: Vec<SubmittedTransfer>,
}

impl WalletState {
    /// An empty state.
    pub fn new(network: Network, node_url: &str) -> Self {
        WalletState {
            version: STATE_FILE_VERSION,
            network,
            node_url: node_url.to_owned(),
            next_position: 0,
            notes: Vec::new(),
            transfers: Vec::new(),
        }
    }

    /// Reads a state file.
    pub fn load(path: &Path) -> Result<Self, StateError> {
        let text = std::fs::read(path).map_err(FileError::new(path))?;
        let state: WalletState =
            serde_json::from_slice(&text).map_err(|e| StateError::Malformed {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        if state.version != STATE_FILE_VERSION {
            return Err(StateError::Version {
                path: path.to_owned(),
                found: state.version,
            });
        }
        Ok(state)
    }

    /// Writes the state file (0600, atomic).
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let mut text = serde_json::to_vec_pretty(self).expect("state serialises");
        text.push(b'\n');
        Ok(write_private_atomic(path, &text)?)
    }

    /// Notes that can be spent now.
    pub fn spendable(&self) -> impl Iterator<Item = &OwnedNote> {
        self.notes.iter().filter(|n| n.is_spendable())
    }

    /// The submitted transfer `id`.
    pub fn transfer_mut(&mut self, id: &str) -> Option<&mut SubmittedTransfer> {
        self.transfers.iter_mut().find(|t| t.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn state_round_trips_through_its_file() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let note = Note::new(Fr::from(9u64), 1500, Fr::from(4u64), &mut rng);
        let mut st = WalletState::new(Network::Regtest, "http://127.0.0.1:8080");
        st.next_position = 6;
        st.notes.push(OwnedNote {
            position: 3,
            note,
            commitment: note.commitment(),
            nullifier: note.nullifier(Fr::from(77u64), 3),
            spent: false,
            pending_spend: Some("ab".into()),
        });
        st.transfers.push(SubmittedTransfer {
            id: "ab".into(),
            kind: TransferKind::Withdraw,
            amount: 500,
            fee: 10,
            to: "bcrt1q...".into(),
            spends: vec![3],
            change: 990,
            change_commitment: Fr::from(12u64),
            status: "batched".into(),
            batch: Some(2),
            reason: None,
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.json");
        st.save(&path).unwrap();
        assert_eq!(WalletState::load(&path).unwrap(), st);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(st.spendable().count(), 0);
        assert!(st.transfers[0].is_open());

        // Unknown fields and other versions are refused.
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        v["version"] = 9.into();
        std::fs::write(&path, v.to_string()).unwrap();
        assert!(matches!(
            WalletState::load(&path),
            Err(StateError::Version { found: 9, .. })
        ));
        v["version"] = 1.into();
        v["extra"] = true.into();
        std::fs::write(&path, v.to_string()).unwrap();
        assert!(matches!(
            WalletState::load(&path),
            Err(StateError::Malformed { .. })
        ));
    }
}
