//! The wallet proper: a directory holding `key.json` and `wallet.json`, scanning the node's notes
//! (trial decryption), tracking spends by nullifier, and building, signing and submitting
//! payments and withdrawals locally. The node receives `A`, `nk` and the input openings (DESIGN
//! §3 delegated proving), never the spending key.

use std::path::{Path, PathBuf};

use ark_bn254::Fr;
use rand_core::{CryptoRng, RngCore};
use serde::Serialize;
use veil_circuits::keys::KeyError;
use veil_circuits::note::decrypt_note;
use veil_circuits::transfer::{OutputSpec, PublicAmounts, Transfer};
use veil_circuits::{field, Network, PaymentAddress, SpendingKey};
use veil_wire::transfer_id;
use veil_wire::TransferRequest;

use crate::btc::{self, BitcoinRefError};
use crate::client::{ClientError, NodeClient, TransferStatus};
use crate::keyfile::{KeyFile, KeyFileError};
use crate::select::{select_notes, SelectionError};
use crate::state::{OwnedNote, StateError, SubmittedTransfer, TransferKind, WalletState};

/// Key file name inside the wallet directory.
pub const KEY_FILE: &str = "key.json";
/// State file name inside the wallet directory.
pub const STATE_FILE: &str = "wallet.json";
/// Notes asked for per `GET /v1/notes` page.
pub const SCAN_PAGE: usize = 500;
/// `pending_spend` of a note whose nullifier is pending at the node by someone else's transfer
/// (another copy of this wallet).
pub const UNKNOWN_SPENDER: &str = "unknown";

/// Wallet errors.
/// Where a spend's value goes.
enum Spend {
    /// To a Veil payment address.
    Send(PaymentAddress),
    /// Out to Bitcoin: `dest` is the hash of `script`.
    Withdraw {
        dest: Fr,
        script: bitcoin::ScriptBuf,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// No wallet in the directory.
    #[error("no wallet in {0}: create one with `veil wallet new`")]
    NoWallet(PathBuf),
    /// Key file problem.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// State file problem.
    #[error(transparent)]
    State(#[from] StateError),
    /// Key and state disagree on the network.
    #[error("key file is for {key:?} but the wallet state is for {state:?}")]
    NetworkMismatch {
        /// Key file's network.
        key: Network,
        /// State file's network.
        state: Network,
    },
    /// Talking to the node failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Bad recipient payment address.
    #[error("recipient {address:?}")]
    Recipient {
        /// What was given.
        address: String,
        /// Cause.
        source: KeyError,
    },
    /// Bad Bitcoin address.
    #[error(transparent)]
    Bitcoin(#[from] BitcoinRefError),
    /// The node has no Bitcoin bridge.
    #[error("the node at {0} is not on Bitcoin (no anchoring configured): it has no peg-in addresses; deposits there are attested by the operator")]
    NoBridge(String),
    /// The node's bridge is on another network than the wallet.
    #[error("the node's bridge is on {node}, the wallet is for {wallet}")]
    BridgeNetwork {
        /// The node's network.
        node: String,
        /// The wallet's.
        wallet: String,
    },
    /// The node served an unusable bridge key.
    #[error("the node's bridge key is unusable: {0}")]
    BridgeKey(String),
    /// No notes cover the amount.
    #[error(transparent)]
    Selection(#[from] SelectionError),
    /// An amount of zero.
    #[error("the amount must be greater than zero")]
    ZeroAmount,
    /// The node published a note that is not hex or not a field element.
    #[error("node published a malformed note at position {position}: {reason}")]
    MalformedNote {
        /// Position.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// The node's Merkle path does not lead from the note to the root it states.
    #[error("node's Merkle path for position {position} does not prove the note is in the tree")]
    BadPath {
        /// Position.
        position: u64,
    },
    /// Waiting for a transfer ended without it getting there (rejected, timed out).
    #[error(transparent)]
    Wait(crate::wait::WaitError),
    /// The node's transfer id is not the one computed locally.
    #[error("node accepted the transfer under id {node}, expected {local}")]
    IdMismatch {
        /// Id computed here.
        local: String,
        /// Id the node returned.
        node: String,
    },
}

/// Balances in satoshis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Balance {
    /// Unspent notes not being spent.
    pub spendable: u64,
    /// Notes being spent by transfers not final yet.
    pub outgoing: u64,
    /// Change expected back from this wallet's open transfers, not yet scanned.
    pub incoming_change: u64,
    /// Number of spendable notes.
    pub notes: usize,
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Notes scanned.
    pub scanned: u64,
    /// Notes found for this wallet: (position, value).
    pub found: Vec<(u64, u64)>,
    /// Notes newly seen spent.
    pub newly_spent: usize,
    /// Where the next scan starts.
    pub next_position: u64,
}

/// Scan progress for a progress display: notes scanned, notes at the node.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// A wallet opened from its directory.
pub struct Wallet {
    dir: PathBuf,
    keys: KeyFile,
    /// The wallet's state (saved after every change).
    pub state: WalletState,
    client: NodeClient,
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallet")
            .field("dir", &self.dir)
            .field("network", &self.keys.network)
            .field("node", &self.state.node_url)
            .finish_non_exhaustive()
    }
}

impl Wallet {
    /// Creates a wallet in `dir` with a key from `rng` (the OS generator in the CLI). Refuses a
    /// directory that already holds a key.
    pub fn create<R: RngCore + CryptoRng>(
        dir: &Path,
        network: Network,
        node_url: &str,
        rng: &mut R,
    ) -> Result<Wallet, WalletError> {
        let client = NodeClient::new(node_url)?;
        let keys = KeyFile::generate(network, rng);
        keys.save(&dir.join(KEY_FILE), false)?;
        let state = WalletState::new(network, client.url());
        state.save(&dir.join(STATE_FILE))?;
        tracing::info!(dir = %dir.display(), "wallet created");
        Ok(Wallet {
            dir: dir.to_owned(),
            keys,
            state,
            client,
        })
    }

    /// Opens the wallet in `dir`; `node_url` overrides (and replaces) the stored node URL.
    pub fn open(dir: &Path, node_url: Option<&str>) -> Result<Wallet, WalletError> {
        let key_path = dir.join(KEY_FILE);
        if !key_path.exists() {
            return Err(WalletError::NoWallet(dir.to_owned()));
        }
        let keys = KeyFile::load(&key_path)?;
        let mut state = WalletState::load(&dir.join(STATE_FILE))?;
        if state.network != keys.network {
            return Err(WalletError::NetworkMismatch {
                key: keys.network,
                state: state.network,
            });
        }
        let client = NodeClient::new(node_url.unwrap_or(&state.node_url))?;
        state.node_url = client.url().to_owned();
        Ok(Wallet {
            dir: dir.to_owned(),
            keys,
            state,
            client,
        })
    }

    /// The payment address.
    pub fn address(&self) -> String {
        self.keys.address()
    }

    /// This wallet's Bitcoin peg-in address under the node's bridge key (`docs/bridge.md`):
    /// derived here from the key `GET /v1/bridge` serves and the wallet's own payment address,
    /// so the node cannot substitute another destination. Returns the address and the key.
    pub fn deposit_address(&self) -> Result<(String, String), WalletError> {
        let info = self.client.bridge()?;
        let (true, Some(network), Some(key)) = (info.bitcoin, info.network, info.bridge_key) else {
            return Err(WalletError::NoBridge(self.state.node_url.clone()));
        };
        let want = btc::bitcoin_network(self.network());
        if network != want.to_string() {
            return Err(WalletError::BridgeNetwork {
                node: network,
                wallet: want.to_string(),
            });
        }
        let bridge = key
            .parse::<bitcoin::key::XOnlyPublicKey>()
            .map_err(|e| WalletError::BridgeKey(e.to_string()))?;
        let address =
            veil_bitcoin::bridge::deposit_address(&bridge, &self.keys.payment_address(), want)
                .map_err(|e| WalletError::BridgeKey(e.to_string()))?;
        // A node crediting peg-ins follows the address from now on; it must be this very one.
        if info.deposits.contains("peg-in") {
            let watched = self.client.watch(&self.address())?;
            if watched.deposit_address != address.to_string() {
                return Err(WalletError::BridgeKey(format!(
                    "the node follows {} instead of {address}",
                    watched.deposit_address
                )));
            }
        }
        Ok((address.to_string(), key))
    }

    /// This wallet's peg-ins as the node follows them (with their confirmations).
    pub fn peg_ins(&self) -> Result<Vec<crate::client::PegIn>, WalletError> {
        Ok(self.client.peg_ins(&self.address())?)
    }

    /// The network.
    pub fn network(&self) -> Network {
        self.keys.network
    }

    /// The node client.
    pub fn client(&self) -> &NodeClient {
        &self.client
    }

    fn key(&self) -> &SpendingKey {
        &self.keys.key
    }

    pub(crate) fn save(&self) -> Result<(), WalletError> {
        Ok(self.state.save(&self.dir.join(STATE_FILE))?)
    }

    /// Scans new notes, refreshes this wallet's open transfers and marks spent notes.
    pub fn sync(&mut self, progress: Progress<'_>) -> Result<SyncReport, WalletError> {
        let total = self.client.state()?.note_count;
        let nk = self.key().nullifier_key();
        let mut report = SyncReport {
            scanned: 0,
            found: Vec::new(),
            newly_spent: 0,
            next_position: self.state.next_position,
        };
        progress(self.state.next_position, total);
        loop {
            let from = self.state.next_position;
            let page = self.client.notes(from, SCAN_PAGE)?;
            if page.notes.is_empty() {
                break;
            }
            for published in &page.notes {
                let position = published.position;
                let bad = |reason: String| WalletError::MalformedNote { position, reason };
                let cm = field::from_hex(&published.commitment)
                    .map_err(|e| bad(format!("commitment: {e}")))?;
                let rho = field::from_hex(&published.rho).map_err(|e| bad(format!("rho: {e}")))?;
                let ct = hex::decode(&published.ciphertext)
                    .map_err(|e| bad(format!("ciphertext: {e}")))?;
                report.scanned += 1;
                // decrypt_note checks the opening against the published commitment.
                let Ok((note, _memo)) = decrypt_note(self.key(), &ct, rho, cm) else {
                    continue;
                };
                if note.value == 0 || self.state.notes.iter().any(|n| n.position == position) {
                    continue;
                }
                self.state.notes.push(OwnedNote {
                    position,
                    note,
                    commitment: cm,
                    nullifier: note.nullifier(nk, position),
                    spent: false,
                    pending_spend: None,
                });
                report.found.push((position, note.value));
            }
            let next = page
                .next
                .max(page.notes.last().map_or(from, |n| n.position + 1));
            if next <= from {
                return Err(WalletError::MalformedNote {
                    position: from,
                    reason: format!("notes page from {from} does not advance (next = {next})"),
                });
            }
            self.state.next_position = next;
            self.state.notes.sort_by_key(|n| n.position);
            self.save()?;
            progress(next, total.max(next));
        }
        report.next_position = self.state.next_position;

        let open: Vec<String> = self
            .state
            .transfers
            .iter()
            .filter(|t| t.is_open())
            .map(|t| t.id.clone())
            .collect();
        for id in open {
            let status = self.client.transfer_status(&id)?;
            self.record_status(&status);
        }

        let still_open =
            |st: &WalletState, id: &str| st.transfers.iter().any(|t| t.id == id && t.is_open());
        for i in 0..self.state.notes.len() {
            if self.state.notes[i].spent {
                continue;
            }
            let nf = self.state.notes[i].nullifier;
            let status = self.client.nullifier(&nf)?;
            let own = self.state.notes[i]
                .pending_spend
                .clone()
                .filter(|id| id != UNKNOWN_SPENDER && still_open(&self.state, id));
            let n = &mut self.state.notes[i];
            if status.spent {
                n.spent = true;
                n.pending_spend = None;
                report.newly_spent += 1;
            } else if status.pending {
                n.pending_spend = Some(own.unwrap_or_else(|| UNKNOWN_SPENDER.to_owned()));
            } else {
                n.pending_spend = own;
            }
        }
        self.save()?;
        tracing::info!(
            scanned = report.scanned,
            found = report.found.len(),
            newly_spent = report.newly_spent,
            "wallet synced"
        );
        Ok(report)
    }

    pub(crate) fn record_status(&mut self, status: &TransferStatus) {
        let Some(t) = self.state.transfer_mut(&status.id) else {
            return;
        };
        t.status = status.status.clone();
        t.batch = status.batch;
        t.reason = status.reason.clone();
        if status.status == "rejected" {
            for n in &mut self.state.notes {
                if n.pending_spend.as_deref() == Some(status.id.as_str()) {
                    n.pending_spend = None;
                }
            }
        }
    }

    /// Balances from the local state (run [`Wallet::sync`] first for fresh numbers).
    pub fn balance(&self) -> Balance {
        let spendable: Vec<&OwnedNote> = self.state.spendable().collect();
        let outgoing = self
            .state
            .notes
            .iter()
            .filter(|n| !n.spent && n.pending_spend.is_some())
            .map(|n| n.note.value)
            .sum();
        let incoming_change = self
            .state
            .transfers
            .iter()
            .filter(|t| t.is_open() && t.change > 0)
            .filter(|t| {
                !self
                    .state
                    .notes
                    .iter()
                    .any(|n| n.commitment == t.change_commitment)
            })
            .map(|t| t.change)
            .sum();
        Balance {
            spendable: spendable.iter().map(|n| n.note.value).sum(),
            outgoing,
            incoming_change,
            notes: spendable.len(),
        }
    }

    /// Pays `amount` to the payment address `to` with `fee`, change back to this wallet.
    pub fn send<R: RngCore + CryptoRng>(
        &mut self,
        to: &str,
        amount: u64,
        fee: u64,
        rng: &mut R,
    ) -> Result<SubmittedTransfer, WalletError> {
        let recipient = PaymentAddress::decode(to.trim(), self.network()).map_err(|source| {
            WalletError::Recipient {
                address: to.to_owned(),
                source,
            }
        })?;
        self.spend(
            TransferKind::Send,
            to,
            amount,
            fee,
            Spend::Send(recipient),
            rng,
        )
    }

    /// Withdraws `amount` to the Bitcoin address `to` (of the wallet's network) with `fee`.
    pub fn withdraw<R: RngCore + CryptoRng>(
        &mut self,
        to: &str,
        amount: u64,
        fee: u64,
        rng: &mut R,
    ) -> Result<SubmittedTransfer, WalletError> {
        let script = btc::parse_address(to, self.network())?;
        let dest = btc::withdrawal_dest(&script);
        self.spend(
            TransferKind::Withdraw,
            to,
            amount,
            fee,
            Spend::Withdraw { dest, script },
            rng,
        )
    }

    fn spend<R: RngCore + CryptoRng>(
        &mut self,
        kind: TransferKind,
        to: &str,
        amount: u64,
        fee: u64,
        spend: Spend,
        rng: &mut R,
    ) -> Result<SubmittedTransfer, WalletError> {
        let (recipient, dest, script) = match spend {
            Spend::Send(to) => (Some(to), Fr::from(0u64), None),
            Spend::Withdraw { dest, script } => (None, dest, Some(script)),
        };
        if amount == 0 {
            return Err(WalletError::ZeroAmount);
        }
        let target = amount.checked_add(fee).ok_or(SelectionError::Overflow)?;
        let candidates: Vec<OwnedNote> = self.state.spendable().cloned().collect();
        let values: Vec<u64> = candidates.iter().map(|n| n.note.value).collect();
        let picks = select_notes(&values, target)?;
        let chosen: Vec<&OwnedNote> = picks.iter().map(|&i| &candidates[i]).collect();
        // The node's path must prove each input is in the tree it proves against.
        for n in &chosen {
            let p = self.client.note_path(n.position)?;
            if p.position != n.position
                || p.leaf != n.commitment
                || p.path.root(n.commitment, n.position) != p.root
            {
                return Err(WalletError::BadPath {
                    position: n.position,
                });
            }
        }
        let total: u64 = chosen.iter().map(|n| n.note.value).sum();
        let change = total - target;
        let me = self.keys.payment_address();
        let inputs = [
            chosen[0].spent_note(),
            match chosen.get(1) {
                Some(n) => n.spent_note(),
                None => Transfer::dummy_input(self.key(), rng),
            },
        ];
        let outputs = match recipient {
            Some(to) => [
                OutputSpec { to, value: amount },
                OutputSpec {
                    to: me,
                    value: change,
                },
            ],
            None => [
                OutputSpec {
                    to: me,
                    value: change,
                },
                OutputSpec { to: me, value: 0 },
            ],
        };
        let change_index = if recipient.is_some() { 1 } else { 0 };
        let public_out = if recipient.is_some() { 0 } else { amount };
        let transfer = Transfer::create(
            self.key(),
            inputs,
            outputs,
            PublicAmounts {
                public_out,
                fee,
                dest,
                ..Default::default()
            },
            rng,
        );
        let local = transfer_id(&transfer);
        let mut req = TransferRequest::from(&transfer);
        req.withdrawal_script = script.map(|s| hex::encode(s.as_bytes()));
        let id = self.client.submit(&req)?;
        if id != local {
            return Err(WalletError::IdMismatch { local, node: id });
        }
        for n in &mut self.state.notes {
            if chosen.iter().any(|c| c.position == n.position) {
                n.pending_spend = Some(id.clone());
            }
        }
        let record = SubmittedTransfer {
            id: id.clone(),
            kind,
            amount,
            fee,
            to: to.trim().to_owned(),
            spends: chosen.iter().map(|n| n.position).collect(),
            change,
            change_commitment: transfer.public.commitments[change_index],
            status: "pending".into(),
            batch: None,
            reason: None,
        };
        self.state.transfers.push(record.clone());
        self.save()?;
        tracing::info!(%id, ?kind, amount, fee, "transfer submitted");
        Ok(record)
    }

    /// Asks the node for a transfer's status and records it if it is this wallet's.
    pub fn status(&mut self, id: &str) -> Result<TransferStatus, WalletError> {
        let status = self.client.transfer_status(id)?;
        if self.state.transfer_mut(id).is_some() {
            self.record_status(&status);
            self.save()?;
        }
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use veil_circuits::note::{create_note, Note, Rseed};

    use super::*;

    /// What the stub node serves.
    #[derive(Default)]
    struct StubData {
        /// (commitment hex, rho hex, ciphertext hex) by position.
        notes: Vec<(String, String, String)>,
        /// Spent nullifiers (hex).
        spent: HashSet<String>,
        /// Pending nullifiers (hex).
        pending: HashSet<String>,
        /// Largest page served (a node may cap `limit`).
        page_cap: usize,
        /// Request paths seen.
        requests: Vec<String>,
    }

    fn respond(data: &Mutex<StubData>, path: &str) -> (u16, String) {
        let mut d = data.lock().unwrap();
        d.requests.push(path.to_owned());
        if path == "/v1/state" {
            return (
                200,
                serde_json::json!({"state_root": "0x0", "note_root": "0x0",
                    "note_count": d.notes.len(), "nullifier_root": "0x0", "nullifier_count": 1,
                    "batch_height": 0, "proven_height": 0, "mempool_size": 0})
                .to_string(),
            );
        }
        if let Some(q) = path.strip_prefix("/v1/notes?") {
            let mut from = 0usize;
            let mut limit = 100usize;
            for kv in q.split('&') {
                match kv.split_once('=') {
                    Some(("from", v)) => from = v.parse().unwrap(),
                    Some(("limit", v)) => limit = v.parse().unwrap(),
                    _ => {}
                }
            }
            let end = d.notes.len().min(from + limit.min(d.page_cap));
            let items: Vec<_> = (from.min(end)..end)
                .map(|p| {
                    serde_json::json!({"position": p, "commitment": d.notes[p].0,
                    "rho": d.notes[p].1, "ciphertext": d.notes[p].2})
                })
                .collect();
            return (
                200,
                serde_json::json!({"notes": items, "next": end.max(from)}).to_string(),
            );
        }
        if let Some(nf) = path.strip_prefix("/v1/nullifiers/") {
            return (
                200,
                serde_json::json!({"spent": d.spent.contains(nf), "pending": d.pending.contains(nf)})
                    .to_string(),
            );
        }
        (
            404,
            r#"{"error":{"code":"not_found","message":"no such route"}}"#.to_owned(),
        )
    }

    /// A minimal HTTP/1.1 server on loopback answering GETs from `data`.
    fn stub_node(data: Arc<Mutex<StubData>>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                // Skip the headers.
                let mut h = String::new();
                while reader.read_line(&mut h).is_ok() && h != "\r\n" && !h.is_empty() {
                    h.clear();
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (status, body) = respond(&data, &path);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        format!("http://{addr}")
    }

    /// Publishes a new note of `value` to `to` with uniqueness seed `rho`, as a node would.
    fn publish(
        data: &Mutex<StubData>,
        to: &PaymentAddress,
        value: u64,
        rho: Fr,
        rng: &mut ChaCha20Rng,
    ) -> Note {
        let (note, ct) = create_note(to, value, rho, &Rseed::random(rng), None);
        data.lock().unwrap().notes.push((
            field::to_hex(&note.commitment()),
            field::to_hex(&rho),
            hex::encode(ct),
        ));
        note
    }

    #[test]
    fn sync_finds_own_notes_pages_and_marks_spent() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let data = Arc::new(Mutex::new(StubData {
            page_cap: 2,
            ..Default::default()
        }));
        let url = stub_node(data.clone());
        let dir = tempfile::tempdir().unwrap();
        let mut alice = Wallet::create(dir.path(), Network::Regtest, &url, &mut rng).unwrap();
        let a = alice.keys.payment_address();
        let bob = SpendingKey::random(&mut rng);
        let b = bob.payment_address();
        let rho = |i: u64| Fr::from(1000 + i);

        // 0: Alice 100; 1: Bob 50; 2: Alice 0 (a dummy change note); 3: a ciphertext for Alice
        // whose published commitment is another note's; 4: garbage; 5: Alice 30, spent.
        let n0 = publish(&data, &a, 100, rho(0), &mut rng);
        publish(&data, &b, 50, rho(1), &mut rng);
        publish(&data, &a, 0, rho(2), &mut rng);
        let (n3, ct3) = create_note(&a, 70, rho(3), &Rseed::random(&mut rng), None);
        data.lock().unwrap().notes.push((
            field::to_hex(&(n3.commitment() + Fr::from(1u64))),
            field::to_hex(&rho(3)),
            hex::encode(ct3),
        ));
        data.lock().unwrap().notes.push((
            field::to_hex(&Fr::from(5u64)),
            field::to_hex(&rho(4)),
            "00".repeat(89),
        ));
        let n5 = publish(&data, &a, 30, rho(5), &mut rng);
        let nk = alice.key().nullifier_key();
        data.lock()
            .unwrap()
            .spent
            .insert(field::to_hex(&n5.nullifier(nk, 5)));

        let mut calls = Vec::new();
        let report = alice
            .sync(&mut |done, total| calls.push((done, total)))
            .unwrap();
        assert_eq!(report.scanned, 6);
        assert_eq!(report.found, vec![(0, 100), (5, 30)]);
        assert_eq!(report.newly_spent, 1);
        assert_eq!(report.next_position, 6);
        assert_eq!(calls.first(), Some(&(0, 6)));
        assert_eq!(calls.last(), Some(&(6, 6)));
        // Three pages of two notes, then an empty one.
        let pages = data
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|p| p.starts_with("/v1/notes?"))
            .count();
        assert_eq!(pages, 4);
        assert_eq!(alice.state.notes[0].nullifier, n0.nullifier(nk, 0));
        assert_eq!(
            alice.balance(),
            Balance {
                spendable: 100,
                outgoing: 0,
                incoming_change: 0,
                notes: 1
            }
        );

        // The state was saved: a reopened wallet resumes at 6 and sees only new notes; a note
        // spent by someone else's pending transfer is not spendable.
        let mut again = Wallet::open(dir.path(), None).unwrap();
        assert_eq!(again.state.next_position, 6);
        publish(&data, &a, 45, rho(6), &mut rng);
        data.lock()
            .unwrap()
            .pending
            .insert(field::to_hex(&n0.nullifier(nk, 0)));
        let report = again.sync(&mut |_, _| {}).unwrap();
        assert_eq!(report.scanned, 1);
        assert_eq!(report.found, vec![(6, 45)]);
        assert_eq!(
            again.state.notes[0].pending_spend.as_deref(),
            Some(UNKNOWN_SPENDER)
        );
        let bal = again.balance();
        assert_eq!((bal.spendable, bal.outgoing, bal.notes), (45, 100, 1));

        // The pending spend disappears (rejected elsewhere): the note is spendable again.
        data.lock().unwrap().pending.clear();
        again.sync(&mut |_, _| {}).unwrap();
        assert_eq!(again.balance().spendable, 145);

        // Selection failures happen before anything is sent.
        let err = again
            .send(&b.encode(Network::Regtest), 500, 1, &mut rng)
            .unwrap_err();
        assert!(
            matches!(
                err,
                WalletError::Selection(SelectionError::Insufficient {
                    needed: 501,
                    spendable: 145
                })
            ),
            "{err}"
        );
        let err = again
            .send(&b.encode(Network::Mainnet), 5, 0, &mut rng)
            .unwrap_err();
        assert!(matches!(err, WalletError::Recipient { .. }), "{err}");
        let err = again
            .withdraw("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", 5, 0, &mut rng)
            .unwrap_err();
        assert!(matches!(err, WalletError::Bitcoin(_)), "{err}");
        assert!(matches!(
            again.send(&b.encode(Network::Regtest), 0, 0, &mut rng),
            Err(WalletError::ZeroAmount)
        ));
        assert!(matches!(
            again.status("abc"),
            Err(WalletError::Client(ClientError::BadId(_)))
        ));
        // The node's error JSON comes through typed.
        let err = again.status(&"ab".repeat(32)).unwrap_err();
        match err {
            WalletError::Client(ClientError::Api { status, code, .. }) => {
                assert_eq!((status, code.as_str()), (404, "not_found"))
            }
            e => panic!("{e}"),
        }
    }

    #[test]
    fn rejection_releases_notes_and_pending_change_counts_until_scanned() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let dir = tempfile::tempdir().unwrap();
        let mut w =
            Wallet::create(dir.path(), Network::Regtest, "http://127.0.0.1:9", &mut rng).unwrap();
        let a = w.keys.payment_address();
        let nk = w.key().nullifier_key();
        let id = "cd".repeat(32);
        for (pos, value) in [(0u64, 700u64), (1, 300)] {
            let note = Note::new(a.addr, value, Fr::from(pos + 50), &mut rng);
            w.state.notes.push(OwnedNote {
                position: pos,
                note,
                commitment: note.commitment(),
                nullifier: note.nullifier(nk, pos),
                spent: false,
                pending_spend: (pos == 0).then(|| id.clone()),
            });
        }
        w.state.transfers.push(SubmittedTransfer {
            id: id.clone(),
            kind: TransferKind::Send,
            amount: 600,
            fee: 20,
            to: "veilrt1...".into(),
            spends: vec![0],
            change: 80,
            change_commitment: Fr::from(424242u64),
            status: "pending".into(),
            batch: None,
            reason: None,
        });
        assert_eq!(
            w.balance(),
            Balance {
                spendable: 300,
                outgoing: 700,
                incoming_change: 80,
                notes: 1
            }
        );
        // Batched: still open, still pending.
        w.record_status(&TransferStatus {
            id: id.clone(),
            status: "batched".into(),
            batch: Some(4),
            reason: None,
            txid: None,
        });
        assert_eq!(w.balance().outgoing, 700);
        assert_eq!(w.state.transfers[0].batch, Some(4));
        // Rejected: the note is spendable again and no change is expected.
        w.record_status(&TransferStatus {
            id: id.clone(),
            status: "rejected".into(),
            batch: None,
            reason: Some("already_spent".into()),
            txid: None,
        });
        assert_eq!(
            w.balance(),
            Balance {
                spendable: 1000,
                outgoing: 0,
                incoming_change: 0,
                notes: 2
            }
        );
        assert!(!w.state.transfers[0].is_open());
    }

    #[test]
    fn open_and_create_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Wallet::open(dir.path(), None),
            Err(WalletError::NoWallet(_))
        ));
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        assert!(matches!(
            Wallet::create(dir.path(), Network::Regtest, "not a url", &mut rng),
            Err(WalletError::Client(ClientError::BadUrl(_)))
        ));
        Wallet::create(dir.path(), Network::Regtest, "http://127.0.0.1:9", &mut rng).unwrap();
        assert!(matches!(
            Wallet::create(dir.path(), Network::Regtest, "http://127.0.0.1:9", &mut rng),
            Err(WalletError::KeyFile(KeyFileError::Exists(_)))
        ));
        // Nothing listens on port 9: a transport error naming the URL.
        let mut w = Wallet::open(dir.path(), None).unwrap();
        let err = w.sync(&mut |_, _| {}).unwrap_err();
        assert!(
            matches!(err, WalletError::Client(ClientError::Transport { .. })),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("127.0.0.1:9") && msg.contains("connection failed"),
            "{msg}"
        );
    }
}
