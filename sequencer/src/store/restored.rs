//! Batches written by `veil restore --from-bitcoin` (issue 14, [`crate::restore`]): what Bitcoin
//! carries of a batch is its public data, its notes' ciphertexts and its proof, not the
//! transfers' private parts, so a restored batch is stored proven, without transfer records;
//! its transfers' ids map to the batch in their own table so `GET /v1/transfers/{id}` still
//! answers for them.

use redb::{ReadableTable, TableDefinition};

use super::{
    decode, encode, BatchRecord, NoteEntry, Store, StoreError, BATCHES, META, META_BATCH_HEIGHT,
    META_PROVEN_HEIGHT, META_STATE, NOTES, PROOFS,
};

/// Transfer id -> number of the restored batch holding it.
pub(super) const RESTORED: TableDefinition<&str, u64> = TableDefinition::new("restored_transfers");

impl Store {
    /// Appends a batch read from Bitcoin, proven (its proof verified by the caller), in one
    /// transaction: the record, its notes, its proof, its transfers' ids, both heights and the
    /// state summary. It must be the next batch and every earlier one must be proven: restored
    /// batches are written in order into a store that has nothing else.
    pub fn append_restored(
        &self,
        batch: &BatchRecord,
        notes: &[(u64, NoteEntry)],
        proof: &[u8],
    ) -> Result<(), StoreError> {
        let n = batch.number;
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let height = |key: &str| -> Result<u64, StoreError> {
                Ok(match meta.get(key)? {
                    Some(v) => decode(v.value(), key)?,
                    None => 0,
                })
            };
            let (sealed, proven) = (height(META_BATCH_HEIGHT)?, height(META_PROVEN_HEIGHT)?);
            if (sealed, proven) != (n, n) {
                return Err(StoreError::Corrupt(format!(
                    "restoring batch {n} at batch height {sealed}, proven height {proven}"
                )));
            }
            meta.insert(META_BATCH_HEIGHT, encode(&(n + 1)).as_slice())?;
            meta.insert(META_PROVEN_HEIGHT, encode(&(n + 1)).as_slice())?;
            meta.insert(META_STATE, encode(&batch.new_state).as_slice())?;
            txn.open_table(BATCHES)?
                .insert(n, encode(batch).as_slice())?;
            txn.open_table(PROOFS)?.insert(n, proof)?;
            let mut table = txn.open_table(NOTES)?;
            for (pos, entry) in notes {
                table.insert(*pos, encode(entry).as_slice())?;
            }
            let mut ids = txn.open_table(RESTORED)?;
            for id in &batch.transfer_ids {
                ids.insert(id.as_str(), n)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// The restored batch holding transfer `id`, if it is one (see the module doc).
    pub fn restored_batch_of(&self, id: &str) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(RESTORED)?;
        let v = t.get(id)?;
        Ok(v.map(|v| v.value()))
    }
}

#[cfg(test)]
mod tests {
    use veil_circuits::batch::{apply_published, BatchShape};
    use veil_circuits::RollupState;
    use veil_fixtures::Scenario;
    use veil_wire::public_transfer_id;

    use super::*;

    #[test]
    fn restored_batches_are_appended_in_order_proven_and_their_ids_resolve() {
        let shape = BatchShape::new(2, 8).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), shape).unwrap();
        let mut sc = Scenario::new(shape, 9);
        let alice = sc.new_key();
        let mut state = RollupState::genesis(shape.depth);
        let mut records = Vec::new();
        for n in 0..2u64 {
            let t = sc.deposit(&alice, 10 + n);
            sc.apply(std::slice::from_ref(&t)).unwrap();
            let applied = apply_published(&mut state, shape, n, &[t.public]).unwrap();
            let record = BatchRecord {
                number: n,
                transfer_ids: vec![public_transfer_id(&t.public)],
                public: vec![t.public],
                public_inputs: applied.public_inputs,
                old_state: applied.old_state,
                new_state: applied.new_state,
                note_start: applied.note_start,
            };
            let notes = NoteEntry::of_batch(applied.note_start, [(&t.public, &t.ciphertexts)]);
            records.push((record, notes));
        }
        // Out of order: refused, nothing written.
        let (r1, n1) = &records[1];
        assert!(matches!(
            store.append_restored(r1, n1, &[1; 128]),
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(store.meta().unwrap().batch_height, 0);
        for (i, (r, n)) in records.iter().enumerate() {
            store.append_restored(r, n, &[i as u8; 128]).unwrap();
        }
        // Twice: refused.
        assert!(store.append_restored(r1, n1, &[1; 128]).is_err());
        let meta = store.meta().unwrap();
        assert_eq!((meta.batch_height, meta.proven_height), (2, 2));
        assert_eq!(store.state_summary().unwrap(), Some(state.summary()));
        assert_eq!(store.batch(1).unwrap().as_ref(), Some(r1));
        assert_eq!(store.proof(1).unwrap(), Some(vec![1; 128]));
        assert_eq!(store.notes(0, 10).unwrap().len(), 4);
        assert_eq!(store.notes(n1[0].0, 2).unwrap(), *n1);
        assert_eq!(
            store.restored_batch_of(&r1.transfer_ids[0]).unwrap(),
            Some(1)
        );
        assert_eq!(store.restored_batch_of("00").unwrap(), None);
        // No transfer records: Bitcoin carries no private parts.
        assert_eq!(store.transfer_count().unwrap(), 0);
    }
}
