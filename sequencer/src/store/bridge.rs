//! The bridge's records (issue 15, `docs/bridge.md`): the peg-in scripts the node watches on
//! Bitcoin (with the Veil address each commits to), every deposit output it found and what
//! became of it, how far it has scanned, and withdrawal scripts by their `dest` hash (a
//! withdrawal's transfer carries only the hash; the anchor pays the script).

use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{decode, encode, Store, StoreError, META};

/// scriptPubKey -> [`WatchedAddress`].
pub(super) const WATCHED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bridge_watched");
/// Outpoint (36 bytes, consensus encoding) -> [`DepositRecord`].
pub(super) const DEPOSITS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bridge_deposits");
/// `deposit_ref` (32 bytes big-endian) -> outpoint (36 bytes).
pub(super) const DEPOSIT_REFS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("bridge_deposit_refs");
/// `dest` (32 bytes big-endian) -> scriptPubKey.
pub(super) const WITHDRAWAL_SCRIPTS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("bridge_withdrawal_scripts");

const META_SCAN: &str = "bridge_scan";

/// The Veil address a watched peg-in script commits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchedAddress {
    /// Owner tag, 32 bytes big-endian.
    pub addr: [u8; 32],
    /// Encryption key.
    pub pk_enc: [u8; 32],
}

/// What became of a deposit output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DepositStatus {
    /// In a block of the best chain, waiting for its confirmations.
    Seen,
    /// Its deposit transfer is built (its id recorded) and is being submitted.
    Crediting,
    /// Its deposit transfer is accepted by the node.
    Credited,
    /// Credited, then a reorg took its block out and it is not in the best chain any more: it
    /// stays credited and is reported (the reserve is short by its value until it confirms
    /// again).
    ReorgedAfterCredit,
}

impl DepositStatus {
    /// `seen`, `crediting`, `credited` or `reorged_after_credit`.
    pub fn as_str(self) -> &'static str {
        match self {
            DepositStatus::Seen => "seen",
            DepositStatus::Crediting => "crediting",
            DepositStatus::Credited => "credited",
            DepositStatus::ReorgedAfterCredit => "reorged_after_credit",
        }
    }
}

/// A deposit output found on Bitcoin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositRecord {
    /// Its transaction (internal byte order).
    pub txid: [u8; 32],
    /// Its output index.
    pub vout: u32,
    /// Its value in sat.
    pub value: u64,
    /// Its scriptPubKey (a watched script).
    pub script: Vec<u8>,
    /// The Veil address the script commits to.
    pub owner: WatchedAddress,
    /// The block holding it (internal byte order), while in the best chain.
    pub block_hash: Option<[u8; 32]>,
    /// That block's height.
    pub block_height: Option<u64>,
    /// Status.
    pub status: DepositStatus,
    /// The id of its deposit transfer, once built.
    pub transfer_id: Option<String>,
}

impl DepositRecord {
    /// The outpoint's 36-byte key: txid then vout little-endian (Bitcoin's encoding).
    pub fn key(&self) -> [u8; 36] {
        outpoint_key(&self.txid, self.vout)
    }
}

/// The 36-byte key of an outpoint.
pub fn outpoint_key(txid: &[u8; 32], vout: u32) -> [u8; 36] {
    let mut k = [0u8; 36];
    k[..32].copy_from_slice(txid);
    k[32..].copy_from_slice(&vout.to_le_bytes());
    k
}

/// The last block scanned for deposits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanCursor {
    /// Its height.
    pub height: u64,
    /// Its hash (internal byte order).
    pub hash: [u8; 32],
}

impl Store {
    /// Adds `script` (committing to `owner`) to the watched peg-in scripts; `false` if it was
    /// already watched.
    pub fn watch(&self, script: &[u8], owner: &WatchedAddress) -> Result<bool, StoreError> {
        let txn = self.db.begin_write()?;
        let new = {
            let mut t = txn.open_table(WATCHED)?;
            let new = t.get(script)?.is_none();
            if new {
                t.insert(script, encode(owner).as_slice())?;
            }
            new
        };
        txn.commit()?;
        Ok(new)
    }

    /// Every watched script and the address it commits to.
    pub fn watched(&self) -> Result<Vec<(Vec<u8>, WatchedAddress)>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(WATCHED)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push((k.value().to_vec(), decode(v.value(), "watched address")?));
        }
        Ok(out)
    }

    /// Every deposit record.
    pub fn deposits(&self) -> Result<Vec<DepositRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(DEPOSITS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            out.push(decode(row?.1.value(), "deposit")?);
        }
        Ok(out)
    }

    /// Writes a deposit record (and indexes it by `deposit_ref`), durably.
    pub fn put_deposit(&self, d: &DepositRecord, deposit_ref: &[u8; 32]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            txn.open_table(DEPOSITS)?
                .insert(d.key().as_slice(), encode(d).as_slice())?;
            txn.open_table(DEPOSIT_REFS)?
                .insert(deposit_ref.as_slice(), d.key().as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Forgets a deposit that was never credited (a reorg took it out before its
    /// confirmations).
    pub fn remove_deposit(
        &self,
        d: &DepositRecord,
        deposit_ref: &[u8; 32],
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            txn.open_table(DEPOSITS)?.remove(d.key().as_slice())?;
            txn.open_table(DEPOSIT_REFS)?
                .remove(deposit_ref.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The deposit whose outpoint hashes to `deposit_ref`.
    pub fn deposit_by_ref(
        &self,
        deposit_ref: &[u8; 32],
    ) -> Result<Option<DepositRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let refs = txn.open_table(DEPOSIT_REFS)?;
        let Some(key) = refs.get(deposit_ref.as_slice())? else {
            return Ok(None);
        };
        let deposits = txn.open_table(DEPOSITS)?;
        let v = deposits.get(key.value())?;
        v.map(|v| decode(v.value(), "deposit")).transpose()
    }

    /// The last block scanned for deposits.
    pub fn scan_cursor(&self) -> Result<Option<ScanCursor>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(META)?;
        let v = t.get(META_SCAN)?;
        v.map(|v| decode(v.value(), "scan cursor")).transpose()
    }

    /// Records the last block scanned.
    pub fn set_scan_cursor(&self, c: &ScanCursor) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        txn.open_table(META)?
            .insert(META_SCAN, encode(c).as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// Remembers the script a withdrawal's `dest` is the hash of (the caller checked the hash).
    pub fn put_withdrawal_script(&self, dest: &[u8; 32], script: &[u8]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        txn.open_table(WITHDRAWAL_SCRIPTS)?
            .insert(dest.as_slice(), script)?;
        txn.commit()?;
        Ok(())
    }

    /// The script whose hash is `dest`, if a withdrawal to it was submitted.
    pub fn withdrawal_script(&self, dest: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(WITHDRAWAL_SCRIPTS)?;
        let v = t.get(dest.as_slice())?;
        Ok(v.map(|v| v.value().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use veil_circuits::batch::BatchShape;

    use super::*;

    fn record(vout: u32) -> DepositRecord {
        DepositRecord {
            txid: [7; 32],
            vout,
            value: 50_000,
            script: vec![0x51, 0x20],
            owner: WatchedAddress {
                addr: [1; 32],
                pk_enc: [2; 32],
            },
            block_hash: Some([3; 32]),
            block_height: Some(120),
            status: DepositStatus::Seen,
            transfer_id: None,
        }
    }

    #[test]
    fn bridge_records_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let shape = BatchShape::new(2, 8).unwrap();
        {
            let store = Store::open(dir.path(), shape).unwrap();
            let owner = record(0).owner;
            assert!(store.watch(b"script", &owner).unwrap());
            assert!(!store.watch(b"script", &owner).unwrap());
            store.put_deposit(&record(0), &[9; 32]).unwrap();
            store.put_deposit(&record(1), &[8; 32]).unwrap();
            store.remove_deposit(&record(1), &[8; 32]).unwrap();
            store
                .set_scan_cursor(&ScanCursor {
                    height: 5,
                    hash: [4; 32],
                })
                .unwrap();
            store.put_withdrawal_script(&[6; 32], b"spk").unwrap();
        }
        let store = Store::open(dir.path(), shape).unwrap();
        assert_eq!(
            store.watched().unwrap(),
            vec![(b"script".to_vec(), record(0).owner)]
        );
        assert_eq!(store.deposits().unwrap(), vec![record(0)]);
        assert_eq!(store.deposit_by_ref(&[9; 32]).unwrap(), Some(record(0)));
        assert_eq!(store.deposit_by_ref(&[8; 32]).unwrap(), None);
        assert_eq!(store.scan_cursor().unwrap().unwrap().height, 5);
        assert_eq!(
            store.withdrawal_script(&[6; 32]).unwrap(),
            Some(b"spk".to_vec())
        );
        assert_eq!(store.withdrawal_script(&[5; 32]).unwrap(), None);
    }
}
