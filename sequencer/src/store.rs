//! Durable storage of the sequencer in redb (DESIGN §10): accepted transfers, the mempool order,
//! sealed batches, proofs, published notes, Bitcoin anchors and metadata. Records are
//! postcard-encoded.
//!
//! Every mutation is one write transaction committed with redb's default
//! `Durability::Immediate`, so a caller that got `Ok` knows the change survives a crash.
//! Accepted transfers are stored in groups ([`Store::insert_pending_group`]): one transaction,
//! one fsync, for every transfer the node's writer found queued. The
//! trees are not stored node by node: on start the node replays every proven batch's public data
//! (`apply_published`) and every sealed, unproven batch's transfers through `build_batch` (see
//! `node.rs`). That costs O(history) hashing per restart; a node-table snapshot is the obvious
//! next step once histories get long. Batches restored from Bitcoin ([`restored`]) are stored
//! proven, without transfer records.

pub mod bridge;
mod restored;

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use veil_circuits::batch::{BatchPublicInputs, BatchShape};
use veil_circuits::eddsa::{PublicKey, Signature};
use veil_circuits::field;
use veil_circuits::keys::ProofGenerationKey;
use veil_circuits::note::{output_rho, Note};
use veil_circuits::transfer::{SpentNote, Transfer, TransferPublic};
use veil_circuits::StateSummary;

/// id (hex SHA-256 of the public data) -> [`TransferRecord`].
const TRANSFERS: TableDefinition<&str, &[u8]> = TableDefinition::new("transfers");
/// Arrival sequence number -> transfer id, for transfers not yet batched.
const MEMPOOL: TableDefinition<u64, &str> = TableDefinition::new("mempool");
/// Batch number -> [`BatchRecord`].
const BATCHES: TableDefinition<u64, &[u8]> = TableDefinition::new("batches");
/// Batch number -> 128-byte compressed Groth16 proof.
const PROOFS: TableDefinition<u64, &[u8]> = TableDefinition::new("proofs");
/// Note position -> [`NoteEntry`] (published commitments and ciphertexts, for wallet scanning).
const NOTES: TableDefinition<u64, &[u8]> = TableDefinition::new("notes");
/// Batch number -> [`AnchorRecord`] (the Bitcoin anchor of a proven batch, DESIGN §11).
const ANCHORS: TableDefinition<u64, &[u8]> = TableDefinition::new("anchors");
/// Batch number -> postcard [`ProofTiming`]: when its proof was stored and how long proving took
/// (written with the proof; batches proven before this table existed have none).
const PROOF_TIMINGS: TableDefinition<u64, &[u8]> = TableDefinition::new("proof_timings");
/// Named metadata values (postcard).
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const META_SHAPE: &str = "shape";
const META_FORMAT: &str = "format";

/// The record format this build reads and writes (2: a transfer's public data carries its
/// `ciphertext_hash`; 3: compact note ciphertexts, a published note carries its `rho`, and an
/// anchor record covers a range of batches and keeps the transactions that carry their data;
/// 4: an anchor record keeps the peg-in outputs its commit sweeps, and the bridge's tables).
/// A store of another format is refused at open, never misread.
pub const STORE_FORMAT: u32 = 4;
const META_NEXT_SEQ: &str = "next_seq";
const META_BATCH_HEIGHT: &str = "batch_height";
const META_PROVEN_HEIGHT: &str = "proven_height";
const META_STATE: &str = "state";

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed.
    #[error("database: {0}")]
    Db(Box<redb::Error>),
    /// A record does not decode, or contradicts another.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The data directory was created for another circuit shape.
    #[error("data directory holds shape {stored}, configured {configured}")]
    ShapeMismatch {
        /// Shape in the store.
        stored: BatchShape,
        /// Shape configured.
        configured: BatchShape,
    },
    /// The data directory was written by a build with another record format.
    #[error(
        "data directory has store format {found}, this build reads format {STORE_FORMAT}: \
             keep it for the build that wrote it, or start from an empty data directory"
    )]
    Format {
        /// Format found (1: before formats were recorded).
        found: u32,
    },
    /// A transfer with this id is already stored.
    #[error("transfer {0} already stored")]
    Duplicate(String),
    /// The group write this transfer was part of failed (one error shared by the group).
    #[error("group commit: {0}")]
    Group(Arc<StoreError>),
}

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        StoreError::Db(Box::new(e))
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(Box::new(e.into()))
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// A transfer in storage form: field elements as 32-byte big-endian arrays.
/// When a batch's proof was stored and how long proving it took (the explorer's proving times).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofTiming {
    /// Unix time in milliseconds at which the proof was stored.
    pub proven_at_ms: u64,
    /// Proving time in milliseconds (in-process, or a worker's job from claim to result).
    pub proving_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTransfer {
    public: TransferPublic,
    ak: [[u8; 32]; 2],
    nk: [u8; 32],
    inputs: [SpentNote; 2],
    outputs: [Note; 2],
    signature: Vec<u8>,
    ciphertexts: [Vec<u8>; 2],
}

impl From<&Transfer> for StoredTransfer {
    fn from(t: &Transfer) -> Self {
        StoredTransfer {
            public: t.public,
            ak: [
                field::to_bytes_be(&t.pgk.ak.x()),
                field::to_bytes_be(&t.pgk.ak.y()),
            ],
            nk: field::to_bytes_be(&t.pgk.nk),
            inputs: t.inputs,
            outputs: t.outputs,
            signature: t.signature.to_bytes().to_vec(),
            ciphertexts: t.ciphertexts.clone(),
        }
    }
}

impl StoredTransfer {
    /// Decodes back into a transfer.
    pub fn to_transfer(&self) -> Result<Transfer, StoreError> {
        let bad = |what: &str| StoreError::Corrupt(format!("stored transfer: bad {what}"));
        let fe = |b: &[u8; 32], what: &str| field::from_bytes_be(b).map_err(|_| bad(what));
        let ak = ark_ed_on_bn254::EdwardsAffine::new_unchecked(
            fe(&self.ak[0], "ak")?,
            fe(&self.ak[1], "ak")?,
        );
        let sig: [u8; 64] = self
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| bad("signature"))?;
        Ok(Transfer {
            public: self.public,
            pgk: ProofGenerationKey {
                ak: PublicKey(ak),
                nk: fe(&self.nk, "nk")?,
            },
            inputs: self.inputs,
            outputs: self.outputs,
            signature: Signature::from_bytes(&sig).map_err(|_| bad("signature"))?,
            ciphertexts: self.ciphertexts.clone(),
        })
    }
}

/// Where an accepted transfer is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransferState {
    /// In the mempool with this arrival sequence number.
    Pending {
        /// Sequence number (mempool key).
        seq: u64,
    },
    /// Sealed in this batch (proven once the proven height passes it).
    Batched(u64),
    /// Dropped when sealing (it no longer applied).
    Rejected(String),
}

/// A stored transfer and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRecord {
    /// The transfer.
    pub transfer: StoredTransfer,
    /// Its state.
    pub state: TransferState,
}

/// A sealed batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRecord {
    /// Batch number.
    pub number: u64,
    /// Ids of its transfers, in slot order.
    pub transfer_ids: Vec<String>,
    /// Their public data, in slot order.
    pub public: Vec<TransferPublic>,
    /// The proof's public inputs.
    pub public_inputs: BatchPublicInputs,
    /// State before.
    pub old_state: StateSummary,
    /// State after.
    pub new_state: StateSummary,
    /// First note position of the batch's subtree.
    pub note_start: u64,
}

/// A published output note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteEntry {
    /// Commitment, 32 bytes big-endian.
    pub commitment: [u8; 32],
    /// `rho = H(nf_1, j)` of the output, 32 bytes big-endian: the recipient needs it to decrypt
    /// (it is not in the ciphertext).
    pub rho: [u8; 32],
    /// `epk || ciphertext`.
    pub ciphertext: Vec<u8>,
}

impl NoteEntry {
    /// The `2·k` notes a batch of `k` transfers publishes from `note_start` on: `(position,
    /// entry)`, output `j` of slot `s` at `note_start + 2s + j`. One rule for sealing and for
    /// restoring from Bitcoin.
    pub fn of_batch<'a>(
        note_start: u64,
        transfers: impl IntoIterator<Item = (&'a TransferPublic, &'a [Vec<u8>; 2])>,
    ) -> Vec<(u64, NoteEntry)> {
        let mut out = Vec::new();
        for (s, (public, ciphertexts)) in transfers.into_iter().enumerate() {
            for (j, ciphertext) in ciphertexts.iter().enumerate() {
                out.push((
                    note_start + (2 * s + j) as u64,
                    NoteEntry {
                        commitment: field::to_bytes_be(&public.commitments[j]),
                        rho: field::to_bytes_be(&output_rho(public.nullifiers[0], j as u64 + 1)),
                        ciphertext: ciphertext.clone(),
                    },
                ));
            }
        }
        out
    }
}

/// Where an anchor transaction is, as the anchorer last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnchorStatus {
    /// Signed and persisted, not (yet) seen by the Bitcoin node: broadcast it.
    Signed,
    /// In the Bitcoin node's mempool, not in the best chain.
    Unconfirmed,
    /// In the best chain with fewer confirmations than required.
    Confirmed,
    /// In the best chain with at least the required confirmations.
    Anchored,
    /// Was in the best chain; a reorg took it out, and the Bitcoin node has it neither in a
    /// block nor in its mempool: re-broadcast it (the confirmed version, which the next anchor
    /// spends). Last, so records stored before it existed still decode.
    Reorged,
}

impl AnchorStatus {
    /// `signed`, `unconfirmed`, `confirmed`, `anchored` or `reorged`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnchorStatus::Signed => "signed",
            AnchorStatus::Unconfirmed => "unconfirmed",
            AnchorStatus::Confirmed => "confirmed",
            AnchorStatus::Anchored => "anchored",
            AnchorStatus::Reorged => "reorged",
        }
    }
}

/// One signed version of an anchor transaction (the first, or an RBF fee bump of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorVersion {
    /// Transaction id, in Bitcoin's internal byte order.
    pub txid: [u8; 32],
    /// The signed transaction, consensus-encoded.
    pub raw_tx: Vec<u8>,
    /// Absolute fee in satoshis.
    pub fee_sat: u64,
    /// The fee rate it was built for, sat/kwu.
    pub target_sat_per_kwu: u64,
}

/// The anchor of a range of proven batches `batch ..= batch + count - 1` (DESIGN §11,
/// docs/data-on-bitcoin.md): the transactions that put the range's data on Bitcoin
/// (`prelude`: the commit transaction, then any reveals), every signed version of the anchor
/// transaction that reveals the last envelope and carries the payload (oldest first; each
/// persisted before it was broadcast), and where it is on Bitcoin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorRecord {
    /// The first batch it anchors.
    pub batch: u64,
    /// How many batches it anchors (at least one).
    pub count: u64,
    /// Value (sat) of the output the commit transaction spends (the previous anchor's change,
    /// or the genesis outpoint).
    pub prev_value_sat: u64,
    /// Script of that output.
    pub prev_script: Vec<u8>,
    /// The peg-in outputs the commit sweeps after it, in input order (the bridge's deposits
    /// credited in the range).
    pub sweeps: Vec<SweptOutput>,
    /// The commit transaction and the reveals before the anchor, consensus-encoded, in
    /// broadcast order. A fee bump re-signs only the anchor transaction, so every version shares
    /// them.
    pub prelude: Vec<Vec<u8>>,
    /// Signed versions of the anchor transaction, oldest first; the last is the one broadcast
    /// now.
    pub versions: Vec<AnchorVersion>,
    /// Status.
    pub status: AnchorStatus,
    /// Index into `versions` of the version in the best chain, when confirmed.
    pub confirmed: Option<usize>,
    /// Hash (internal byte order) of the block holding it, when confirmed.
    pub block_hash: Option<[u8; 32]>,
    /// Height of that block.
    pub block_height: Option<u64>,
    /// Confirmations when last checked (0 unless confirmed).
    pub confirmations: u64,
    /// Bitcoin tip height when the current version was broadcast (for fee bumps).
    pub broadcast_height: Option<u64>,
}

/// A peg-in output an anchor's commit sweeps into the reserve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweptOutput {
    /// Its transaction (internal byte order).
    pub txid: [u8; 32],
    /// Its index.
    pub vout: u32,
    /// Its value in sat.
    pub value: u64,
    /// Its script.
    pub script: Vec<u8>,
    /// The Veil address its key commits to (unknown for anchors restored from Bitcoin).
    pub owner: Option<bridge::WatchedAddress>,
}

impl AnchorRecord {
    /// Sum of the swept outputs' values.
    pub fn swept_sat(&self) -> u64 {
        self.sweeps.iter().map(|s| s.value).sum()
    }

    /// The version confirmed, else the latest.
    pub fn current(&self) -> &AnchorVersion {
        let i = self.confirmed.unwrap_or(self.versions.len() - 1);
        &self.versions[i]
    }

    /// The last batch it anchors.
    pub fn last_batch(&self) -> u64 {
        self.batch + self.count - 1
    }

    /// The batch after its range (where the next anchor starts).
    pub fn end(&self) -> u64 {
        self.batch + self.count
    }

    /// Whether it anchors batch `n`.
    pub fn covers(&self, n: u64) -> bool {
        (self.batch..self.end()).contains(&n)
    }
}

/// Counters kept in the meta table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meta {
    /// Next mempool sequence number.
    pub next_seq: u64,
    /// Number of sealed batches.
    pub batch_height: u64,
    /// Number of proven batches (proofs are made in order).
    pub proven_height: u64,
}

/// A batch being sealed, with everything its write transaction stores.
pub struct SealWrite<'a> {
    /// The batch.
    pub batch: &'a BatchRecord,
    /// Mempool sequence numbers of its transfers.
    pub seqs: &'a [u64],
    /// New published notes: `(position, entry)`.
    pub notes: &'a [(u64, NoteEntry)],
}

/// The database file inside the data directory.
pub const DB_FILE: &str = "veil.redb";

/// Creates `dir` (mode 0700) if missing; otherwise tightens it to 0700 and every file in it to
/// 0600, with a warning per change. A data directory holds nullifier keys, note openings and the
/// operator's keys: nobody but its owner may read it.
pub fn secure_data_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let tighten = |path: &Path, mode: u32| -> std::io::Result<()> {
        let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if current & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                from = format!("{current:o}"),
                to = format!("{mode:o}"),
                "data directory entry was readable by others; tightened"
            );
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
        Ok(())
    };
    tighten(dir, 0o700)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_file() {
            tighten(&entry.path(), 0o600)?;
        } else if kind.is_dir() {
            tighten(&entry.path(), 0o700)?;
        }
    }
    Ok(())
}

/// Creates an empty file with mode 0600 unless it exists (redb then initialises it).
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_stdvec(v).expect("postcard encoding of an in-memory value cannot fail")
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// The sequencer database.
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) `dir/veil.redb` for `shape`; fails if it was created for another shape.
    /// The directory is made private first (see [`secure_data_dir`]): the database holds
    /// nullifier keys and note openings.
    pub fn open(dir: &Path, shape: BatchShape) -> Result<Store, StoreError> {
        let io = |e| StoreError::from(redb::Error::Io(e));
        secure_data_dir(dir).map_err(io)?;
        let path = dir.join(DB_FILE);
        create_private_file(&path).map_err(io)?;
        let db = Database::create(&path)?;
        let txn = db.begin_write()?;
        {
            txn.open_table(TRANSFERS)?;
            txn.open_table(MEMPOOL)?;
            txn.open_table(BATCHES)?;
            txn.open_table(PROOFS)?;
            txn.open_table(NOTES)?;
            txn.open_table(ANCHORS)?;
            txn.open_table(PROOF_TIMINGS)?;
            txn.open_table(restored::RESTORED)?;
            txn.open_table(bridge::WATCHED)?;
            txn.open_table(bridge::DEPOSITS)?;
            txn.open_table(bridge::DEPOSIT_REFS)?;
            txn.open_table(bridge::WITHDRAWAL_SCRIPTS)?;
            let mut meta = txn.open_table(META)?;
            let stored = meta
                .get(META_SHAPE)?
                .map(|v| decode::<BatchShape>(v.value(), "shape"))
                .transpose()?;
            let format = meta
                .get(META_FORMAT)?
                .map(|v| decode::<u32>(v.value(), "format"))
                .transpose()?;
            match (stored, format) {
                (Some(_), found) if found != Some(STORE_FORMAT) => {
                    return Err(StoreError::Format {
                        found: found.unwrap_or(1),
                    })
                }
                (Some(stored), _) if stored != shape => {
                    return Err(StoreError::ShapeMismatch {
                        stored,
                        configured: shape,
                    })
                }
                (Some(_), _) => {}
                (None, _) => {
                    meta.insert(META_SHAPE, encode(&shape).as_slice())?;
                    meta.insert(META_FORMAT, encode(&STORE_FORMAT).as_slice())?;
                }
            }
        }
        txn.commit()?;
        Ok(Store { db })
    }

    /// The counters.
    pub fn meta(&self) -> Result<Meta, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(META)?;
        let get = |k: &str| -> Result<u64, StoreError> {
            Ok(match t.get(k)? {
                Some(v) => decode(v.value(), k)?,
                None => 0,
            })
        };
        Ok(Meta {
            next_seq: get(META_NEXT_SEQ)?,
            batch_height: get(META_BATCH_HEIGHT)?,
            proven_height: get(META_PROVEN_HEIGHT)?,
        })
    }

    /// The state summary after the last sealed batch, if any.
    pub fn state_summary(&self) -> Result<Option<StateSummary>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(META)?;
        let v = t.get(META_STATE)?;
        v.map(|v| decode(v.value(), "state")).transpose()
    }

    /// Whether a transfer with this id was ever accepted.
    pub fn contains_transfer(&self, id: &str) -> Result<bool, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(TRANSFERS)?.get(id)?.is_some())
    }

    /// A stored transfer.
    pub fn transfer(&self, id: &str) -> Result<Option<TransferRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(TRANSFERS)?;
        let v = t.get(id)?;
        v.map(|v| decode(v.value(), "transfer")).transpose()
    }

    /// Stores an accepted transfer as pending with sequence number `seq` (one transaction;
    /// durable when this returns `Ok`).
    pub fn insert_pending(
        &self,
        id: &str,
        seq: u64,
        transfer: &Transfer,
    ) -> Result<(), StoreError> {
        match self.insert_pending_group(&[(id, seq, transfer)])?[..] {
            [true] => Ok(()),
            _ => Err(StoreError::Duplicate(id.to_owned())),
        }
    }

    /// Stores accepted transfers `(id, seq, transfer)`, in increasing `seq` order, as pending in
    /// ONE write transaction (one fsync; durable when this returns `Ok`). Returns per row
    /// whether it was stored: `false` means a transfer with that id was already stored and the
    /// row was skipped. The stored next sequence number becomes one past the largest stored
    /// `seq`. On `Err` nothing was stored.
    pub fn insert_pending_group(
        &self,
        rows: &[(&str, u64, &Transfer)],
    ) -> Result<Vec<bool>, StoreError> {
        let mut stored = Vec::with_capacity(rows.len());
        if rows.is_empty() {
            return Ok(stored);
        }
        let mut last_seq = None;
        let txn = self.db.begin_write()?;
        {
            let mut transfers = txn.open_table(TRANSFERS)?;
            let mut pool = txn.open_table(MEMPOOL)?;
            for &(id, seq, transfer) in rows {
                if transfers.get(id)?.is_some() {
                    stored.push(false);
                    continue;
                }
                let record = TransferRecord {
                    transfer: StoredTransfer::from(transfer),
                    state: TransferState::Pending { seq },
                };
                transfers.insert(id, encode(&record).as_slice())?;
                pool.insert(seq, id)?;
                stored.push(true);
                last_seq = last_seq.max(Some(seq));
            }
            let Some(last_seq) = last_seq else {
                drop((transfers, pool));
                txn.abort()?;
                return Ok(stored);
            };
            let mut meta = txn.open_table(META)?;
            let next: u64 = match meta.get(META_NEXT_SEQ)? {
                Some(v) => decode(v.value(), "next seq")?,
                None => 0,
            };
            meta.insert(META_NEXT_SEQ, encode(&next.max(last_seq + 1)).as_slice())?;
        }
        txn.commit()?;
        Ok(stored)
    }

    /// The mempool in arrival order: `(seq, id, transfer)`.
    pub fn mempool(&self) -> Result<Vec<(u64, String, Transfer)>, StoreError> {
        let txn = self.db.begin_read()?;
        let pool = txn.open_table(MEMPOOL)?;
        let transfers = txn.open_table(TRANSFERS)?;
        let mut out = Vec::new();
        for entry in pool.iter()? {
            let (seq, id) = entry?;
            let id = id.value().to_owned();
            let rec: TransferRecord = match transfers.get(id.as_str())? {
                Some(v) => decode(v.value(), "transfer")?,
                None => return Err(StoreError::Corrupt(format!("mempool names unknown {id}"))),
            };
            out.push((seq.value(), id, rec.transfer.to_transfer()?));
        }
        Ok(out)
    }

    /// Marks a pending transfer rejected and drops it from the mempool.
    pub fn reject(&self, seq: u64, id: &str, reason: &str) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut transfers = txn.open_table(TRANSFERS)?;
            let mut rec: TransferRecord = match transfers.get(id)? {
                Some(v) => decode(v.value(), "transfer")?,
                None => return Err(StoreError::Corrupt(format!("unknown transfer {id}"))),
            };
            rec.state = TransferState::Rejected(reason.to_owned());
            transfers.insert(id, encode(&rec).as_slice())?;
            txn.open_table(MEMPOOL)?.remove(seq)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Seals a batch in one transaction: the batch record, its notes, its transfers' new state,
    /// their removal from the mempool, the batch height and the state summary.
    pub fn seal(&self, w: SealWrite<'_>) -> Result<(), StoreError> {
        let n = w.batch.number;
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let height: u64 = match meta.get(META_BATCH_HEIGHT)? {
                Some(v) => decode(v.value(), "batch height")?,
                None => 0,
            };
            if height != n {
                return Err(StoreError::Corrupt(format!(
                    "sealing batch {n} at batch height {height}"
                )));
            }
            meta.insert(META_BATCH_HEIGHT, encode(&(n + 1)).as_slice())?;
            meta.insert(META_STATE, encode(&w.batch.new_state).as_slice())?;
            txn.open_table(BATCHES)?
                .insert(n, encode(w.batch).as_slice())?;
            let mut pool = txn.open_table(MEMPOOL)?;
            for seq in w.seqs {
                pool.remove(*seq)?;
            }
            let mut transfers = txn.open_table(TRANSFERS)?;
            for id in &w.batch.transfer_ids {
                let mut rec: TransferRecord = match transfers.get(id.as_str())? {
                    Some(v) => decode(v.value(), "transfer")?,
                    None => return Err(StoreError::Corrupt(format!("unknown transfer {id}"))),
                };
                rec.state = TransferState::Batched(n);
                transfers.insert(id.as_str(), encode(&rec).as_slice())?;
            }
            let mut notes = txn.open_table(NOTES)?;
            for (pos, entry) in w.notes {
                notes.insert(*pos, encode(entry).as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// A sealed batch.
    pub fn batch(&self, n: u64) -> Result<Option<BatchRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(BATCHES)?;
        let v = t.get(n)?;
        v.map(|v| decode(v.value(), "batch")).transpose()
    }

    /// Stores batch `n`'s proof and returns the new proven height: proofs may arrive out of
    /// order (prover workers race), so the proven height advances over every consecutive batch
    /// that has its proof. `Ok(None)`: batch `n` already has a proof, which is kept (a batch is
    /// never proven twice into the store). A batch that is not sealed is refused.
    pub fn store_proof(
        &self,
        n: u64,
        proof: &[u8],
        timing: ProofTiming,
    ) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_write()?;
        let height;
        {
            let mut meta = txn.open_table(META)?;
            let get = |meta: &redb::Table<&str, &[u8]>, key, what| -> Result<u64, StoreError> {
                match meta.get(key)? {
                    Some(v) => decode(v.value(), what),
                    None => Ok(0),
                }
            };
            let proven = get(&meta, META_PROVEN_HEIGHT, "proven height")?;
            let sealed = get(&meta, META_BATCH_HEIGHT, "batch height")?;
            if n >= sealed {
                return Err(StoreError::Corrupt(format!(
                    "proof of batch {n}, but only {sealed} batches are sealed"
                )));
            }
            let mut proofs = txn.open_table(PROOFS)?;
            if n < proven || proofs.get(n)?.is_some() {
                return Ok(None);
            }
            proofs.insert(n, proof)?;
            txn.open_table(PROOF_TIMINGS)?
                .insert(n, encode(&timing).as_slice())?;
            let mut h = proven;
            while h < sealed && proofs.get(h)?.is_some() {
                h += 1;
            }
            height = h;
            meta.insert(META_PROVEN_HEIGHT, encode(&height).as_slice())?;
        }
        txn.commit()?;
        Ok(Some(height))
    }

    /// When batch `n`'s proof was stored and how long proving it took, if recorded.
    pub fn proof_timing(&self, n: u64) -> Result<Option<ProofTiming>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(PROOF_TIMINGS)?;
        let v = t.get(n)?;
        v.map(|v| decode(v.value(), "proof timing")).transpose()
    }

    /// Batch `n`'s proof, if proven.
    pub fn proof(&self, n: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(PROOFS)?;
        let v = t.get(n)?;
        Ok(v.map(|v| v.value().to_vec()))
    }

    /// Up to `limit` published notes from position `from` on: `(position, entry)`.
    pub fn notes(&self, from: u64, limit: usize) -> Result<Vec<(u64, NoteEntry)>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(NOTES)?;
        let mut out = Vec::new();
        for entry in t.range(from..)?.take(limit) {
            let (pos, v) = entry?;
            out.push((pos.value(), decode(v.value(), "note")?));
        }
        Ok(out)
    }

    /// The anchor record covering batch `n`.
    pub fn anchor(&self, n: u64) -> Result<Option<AnchorRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(ANCHORS)?;
        let Some(entry) = t.range(..=n)?.next_back() else {
            return Ok(None);
        };
        let rec: AnchorRecord = decode(entry?.1.value(), "anchor")?;
        Ok(rec.covers(n).then_some(rec))
    }

    /// Every anchor record covering batch `from` or later, in batch order.
    pub fn anchors_from(&self, from: u64) -> Result<Vec<AnchorRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(ANCHORS)?;
        let mut out = Vec::new();
        for entry in t.iter()? {
            let rec: AnchorRecord = decode(entry?.1.value(), "anchor")?;
            if rec.end() > from {
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// Number of batches covered by an anchor record (records are made in order from batch 0,
    /// without gaps).
    pub fn anchor_count(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(ANCHORS)?;
        let last = t.last()?;
        match last {
            None => Ok(0),
            Some((_, v)) => Ok(decode::<AnchorRecord>(v.value(), "anchor")?.end()),
        }
    }

    /// Stores a NEW anchor record (durable on `Ok`, before its transactions are broadcast). It
    /// must start at the first batch not yet anchored and cover only proven batches: a batch is
    /// never anchored twice nor skipped.
    pub fn insert_anchor(&self, rec: &AnchorRecord) -> Result<(), StoreError> {
        if rec.versions.is_empty() || rec.count == 0 {
            return Err(StoreError::Corrupt(
                "anchor record without a version or a batch".into(),
            ));
        }
        let next = self.anchor_count()?;
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(ANCHORS)?;
            if rec.batch != next {
                return Err(StoreError::Corrupt(format!(
                    "anchoring batch {} when the next batch to anchor is {next}",
                    rec.batch
                )));
            }
            let meta = txn.open_table(META)?;
            let proven: u64 = match meta.get(META_PROVEN_HEIGHT)? {
                Some(v) => decode(v.value(), "proven height")?,
                None => 0,
            };
            if rec.end() > proven {
                return Err(StoreError::Corrupt(format!(
                    "anchoring batches {}..={} at proven height {proven}",
                    rec.batch,
                    rec.last_batch()
                )));
            }
            t.insert(rec.batch, encode(rec).as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Replaces an existing anchor record (status updates, fee bumps). Versions are only ever
    /// appended: the stored versions must be a prefix of the new record's.
    pub fn update_anchor(&self, rec: &AnchorRecord) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(ANCHORS)?;
            let old: AnchorRecord = match t.get(rec.batch)? {
                Some(v) => decode(v.value(), "anchor")?,
                None => {
                    return Err(StoreError::Corrupt(format!(
                        "updating the missing anchor of batch {}",
                        rec.batch
                    )))
                }
            };
            if !rec.versions.starts_with(&old.versions)
                || (rec.count, &rec.prelude) != (old.count, &old.prelude)
            {
                return Err(StoreError::Corrupt(format!(
                    "update of batch {}'s anchor drops a signed version or changes its range \
                     or its data transactions",
                    rec.batch
                )));
            }
            t.insert(rec.batch, encode(rec).as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Number of stored transfers (all states).
    pub fn transfer_count(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(TRANSFERS)?.len()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_fixtures::Scenario;

    fn shape() -> BatchShape {
        BatchShape::new(2, 8).unwrap()
    }

    #[test]
    fn pending_transfers_survive_reopen_and_duplicates_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut sc = Scenario::new(shape(), 1);
        let alice = sc.new_key();
        let t = sc.deposit(&alice, 10);
        {
            let store = Store::open(dir.path(), shape()).unwrap();
            store.insert_pending("a", 0, &t).unwrap();
            assert!(matches!(
                store.insert_pending("a", 1, &t),
                Err(StoreError::Duplicate(_))
            ));
            assert_eq!(store.meta().unwrap().next_seq, 1);
        }
        let store = Store::open(dir.path(), shape()).unwrap();
        let pool = store.mempool().unwrap();
        assert_eq!(pool.len(), 1);
        assert_eq!(pool[0].0, 0);
        assert_eq!(pool[0].1, "a");
        assert_eq!(pool[0].2, t);
        assert!(store.contains_transfer("a").unwrap());
        assert!(!store.contains_transfer("b").unwrap());
        assert_eq!(store.transfer_count().unwrap(), 1);
    }

    #[test]
    fn a_group_is_one_transaction_and_skips_stored_ids() {
        let dir = tempfile::tempdir().unwrap();
        let mut sc = Scenario::new(shape(), 2);
        let alice = sc.new_key();
        let ts: Vec<Transfer> = (0..3).map(|i| sc.deposit(&alice, 10 + i)).collect();
        {
            let store = Store::open(dir.path(), shape()).unwrap();
            store.insert_pending("b", 4, &ts[1]).unwrap();
            let stored = store
                .insert_pending_group(&[("a", 5, &ts[0]), ("b", 6, &ts[1]), ("c", 7, &ts[2])])
                .unwrap();
            assert_eq!(stored, vec![true, false, true]);
            assert!(store.insert_pending_group(&[]).unwrap().is_empty());
            assert_eq!(store.meta().unwrap().next_seq, 8);
        }
        let store = Store::open(dir.path(), shape()).unwrap();
        let pool: Vec<(u64, String)> = store
            .mempool()
            .unwrap()
            .into_iter()
            .map(|(seq, id, _)| (seq, id))
            .collect();
        assert_eq!(
            pool,
            vec![
                (4, "b".to_owned()),
                (5, "a".to_owned()),
                (7, "c".to_owned())
            ]
        );
        assert_eq!(
            store
                .transfer("b")
                .unwrap()
                .unwrap()
                .transfer
                .to_transfer()
                .unwrap(),
            ts[1]
        );
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_data_directory_is_private() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        drop(Store::open(&dir, shape()).unwrap());
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(DB_FILE)), 0o600);
    }

    #[test]
    fn an_existing_readable_data_directory_is_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        drop(Store::open(&dir, shape()).unwrap());
        let set = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        let other = dir.join("operator.key");
        std::fs::write(&other, b"secret").unwrap();
        std::fs::create_dir(dir.join("sub")).unwrap();
        set(&dir, 0o755);
        set(&dir.join(DB_FILE), 0o644);
        set(&other, 0o604);
        set(&dir.join("sub"), 0o750);
        drop(Store::open(&dir, shape()).unwrap());
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(DB_FILE)), 0o600);
        assert_eq!(mode(&other), 0o600);
        assert_eq!(mode(&dir.join("sub")), 0o700);
        // Already private entries are left as they are (a 0400 file stays read-only).
        set(&other, 0o400);
        drop(Store::open(&dir, shape()).unwrap());
        assert_eq!(mode(&other), 0o400);
    }

    #[test]
    fn a_store_of_another_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path(), shape()).unwrap());
        let rewrite = |format: Option<u32>| {
            let db = Database::create(dir.path().join(DB_FILE)).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut meta = txn.open_table(META).unwrap();
                match format {
                    Some(f) => meta.insert(META_FORMAT, encode(&f).as_slice()).unwrap(),
                    None => meta.remove(META_FORMAT).unwrap(),
                };
            }
            txn.commit().unwrap();
        };
        // A store written before formats were recorded reads as format 1.
        rewrite(None);
        assert!(matches!(
            Store::open(dir.path(), shape()),
            Err(StoreError::Format { found: 1 })
        ));
        rewrite(Some(STORE_FORMAT + 1));
        let err = Store::open(dir.path(), shape()).err().unwrap();
        let want = format!("store format {}", STORE_FORMAT + 1);
        assert!(err.to_string().contains(&want), "{err}");
        rewrite(Some(STORE_FORMAT));
        assert!(Store::open(dir.path(), shape()).is_ok());
    }

    #[test]
    fn shape_is_checked_on_open() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path(), shape()).unwrap());
        let other = BatchShape::new(4, 8).unwrap();
        assert!(matches!(
            Store::open(dir.path(), other),
            Err(StoreError::ShapeMismatch { .. })
        ));
    }

    fn anchor(n: u64, count: u64, txid: u8) -> AnchorRecord {
        AnchorRecord {
            batch: n,
            count,
            prev_value_sat: 1000,
            prev_script: vec![0x51],
            sweeps: vec![],
            prelude: vec![vec![txid, 7]],
            versions: vec![AnchorVersion {
                txid: [txid; 32],
                raw_tx: vec![1, 2, 3],
                fee_sat: 200,
                target_sat_per_kwu: 250,
            }],
            status: AnchorStatus::Signed,
            confirmed: None,
            block_hash: None,
            block_height: None,
            confirmations: 0,
            broadcast_height: None,
        }
    }

    #[test]
    fn anchors_cover_proven_ranges_in_order_and_keep_versions() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), shape()).unwrap();
            // Not proven yet.
            assert!(store.insert_anchor(&anchor(0, 1, 1)).is_err());
            store.pretend_sealed(4);
            for n in 0..4 {
                store
                    .store_proof(n, &[n as u8; 128], ProofTiming::default())
                    .unwrap();
            }
            // Out of order, empty, or past the proven height.
            assert!(store.insert_anchor(&anchor(1, 1, 1)).is_err());
            assert!(store.insert_anchor(&anchor(0, 0, 1)).is_err());
            assert!(store.insert_anchor(&anchor(0, 5, 1)).is_err());
            store.insert_anchor(&anchor(0, 3, 1)).unwrap();
            // Twice, or overlapping.
            assert!(store.insert_anchor(&anchor(0, 1, 9)).is_err());
            assert!(store.insert_anchor(&anchor(2, 2, 9)).is_err());
            store.insert_anchor(&anchor(3, 1, 2)).unwrap();
            assert!(store.insert_anchor(&anchor(4, 1, 3)).is_err());
            let mut bumped = anchor(3, 1, 2);
            bumped.versions.push(anchor(3, 1, 4).versions[0].clone());
            bumped.status = AnchorStatus::Unconfirmed;
            store.update_anchor(&bumped).unwrap();
            // A version can never be dropped, nor the range or data transactions changed.
            assert!(store.update_anchor(&anchor(3, 1, 4)).is_err());
            assert!(store.update_anchor(&anchor(5, 1, 4)).is_err());
            let mut grown = bumped.clone();
            grown.count = 2;
            assert!(store.update_anchor(&grown).is_err());
            let mut other_data = bumped.clone();
            other_data.prelude[0][1] = 8;
            assert!(store.update_anchor(&other_data).is_err());
        }
        let store = Store::open(dir.path(), shape()).unwrap();
        assert_eq!(store.anchor_count().unwrap(), 4);
        let all = store.anchors_from(0).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0], anchor(0, 3, 1));
        assert_eq!(all[1].versions.len(), 2);
        assert_eq!(all[1].current().txid, [4u8; 32]);
        for n in 0..3 {
            assert_eq!(store.anchor(n).unwrap().unwrap(), all[0]);
        }
        assert_eq!(store.anchor(3).unwrap().unwrap(), all[1]);
        assert_eq!(store.anchors_from(2).unwrap().len(), 2);
        assert_eq!(store.anchors_from(3).unwrap().len(), 1);
        assert!(store.anchor(4).unwrap().is_none());
    }

    #[test]
    fn proofs_of_sealed_batches_come_in_any_order_and_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), shape()).unwrap();
        // Not sealed.
        assert!(matches!(
            store.store_proof(0, &[1u8; 128], ProofTiming::default()),
            Err(StoreError::Corrupt(_))
        ));
        store.pretend_sealed(3);
        let timing = |ms| ProofTiming {
            proven_at_ms: ms,
            proving_ms: ms * 10,
        };
        assert_eq!(
            store.store_proof(1, &[1u8; 128], timing(1)).unwrap(),
            Some(0)
        );
        assert_eq!(store.meta().unwrap().proven_height, 0);
        assert_eq!(store.store_proof(1, &[9u8; 128], timing(9)).unwrap(), None);
        assert_eq!(store.proof(1).unwrap().unwrap(), vec![1u8; 128]);
        // The first proof's timing stays with it.
        assert_eq!(store.proof_timing(1).unwrap(), Some(timing(1)));
        assert_eq!(store.proof_timing(0).unwrap(), None);
        assert_eq!(
            store
                .store_proof(0, &[0u8; 128], ProofTiming::default())
                .unwrap(),
            Some(2)
        );
        assert_eq!(store.meta().unwrap().proven_height, 2);
        assert_eq!(
            store
                .store_proof(0, &[9u8; 128], ProofTiming::default())
                .unwrap(),
            None
        );
        assert_eq!(store.proof(0).unwrap().unwrap(), vec![0u8; 128]);
        assert_eq!(store.proof(2).unwrap(), None);
        assert!(store
            .store_proof(3, &[3u8; 128], ProofTiming::default())
            .is_err());
    }

    impl Store {
        /// Sets the batch height without sealing (proof and anchor bookkeeping tests).
        fn pretend_sealed(&self, height: u64) {
            let txn = self.db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert(META_BATCH_HEIGHT, encode(&height).as_slice())
                .unwrap();
            txn.commit().unwrap();
        }
    }
}
