//! Reorgs that take anchors out of Bitcoin's best chain, at any depth: which stored anchors a
//! reorg took out (found from the newest anchor in a block back, [`Anchorer::find_reorged`]),
//! and the report of the reorgs seen ([`ReorgLog`], [`ReorgReport`]) for `POST /v1/anchor`,
//! `/metrics` and the log.
//!
//! Soundness: anchor `n + 1` spends anchor `n`'s change, so a block holding anchor `n + 1` can
//! only be in the best chain if anchor `n` is in it too, at the same or an earlier height. While
//! the newest anchor in a block is in the best chain, every older one is, however deep; a reorg
//! that took out an older anchor took out every anchor after it, the newest included. One
//! `getblockheader` per pass therefore guards the whole chain of anchors, and only when it fails
//! are the older anchors' blocks looked at, newest first, down to the first one still in the
//! best chain.

use bitcoin::hashes::Hash;
use bitcoin::BlockHash;
use serde_json::{json, Value};
use veil_bitcoin::rpc::BlockHeaderInfo;

use super::{AnchorError, Anchorer, REORG_WATCH};
use crate::store::{AnchorRecord, AnchorStatus};

/// One reorg that took anchors out of the best chain, as the anchorer noticed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReorgReport {
    /// The oldest batch whose anchor's block left the best chain.
    pub first_batch: u64,
    /// The newest such batch (the newest anchor that was in a block).
    pub last_batch: u64,
    /// An anchor buried `confirmations + REORG_WATCH` deep or more was taken out.
    pub deep: bool,
    /// Blocks of the chain the anchorer last saw that left the best chain (that chain's tip
    /// height minus the fork height); `None` if the node does not know the fork point.
    pub depth: Option<u64>,
    /// Height of the newest block the old and the new chain share.
    pub fork_height: Option<u64>,
    /// The best chain's height when the reorg was noticed.
    pub bitcoin_height: u64,
    /// The block that held the oldest anchor taken out.
    pub stale_block: BlockHash,
}

impl ReorgReport {
    /// The report as served in `POST /v1/anchor` (`reorgs.last`).
    pub fn json(&self) -> Value {
        json!({
            "deep": self.deep,
            "first_batch": self.first_batch,
            "last_batch": self.last_batch,
            "depth": self.depth,
            "fork_height": self.fork_height,
            "bitcoin_height": self.bitcoin_height,
            "stale_block": self.stale_block.to_string(),
        })
    }

    /// The same reorg noticed again (a pass that failed before storing what it found).
    fn same_reorg(&self, other: &ReorgReport) -> bool {
        self.stale_block == other.stale_block
            && self.first_batch == other.first_batch
            && other.last_batch <= self.last_batch
    }

    /// `other` is this reorg seen going deeper: it took out the anchors just before this one's
    /// (while this one's are not back in a block: once they are, a reorg taking out older
    /// anchors takes them out too), from the same or an older fork point. A reorg in progress
    /// disconnects blocks one at a time, and a pass in between sees only the newest anchors
    /// gone.
    fn continued_by(&self, other: &ReorgReport) -> bool {
        other.last_batch + 1 == self.first_batch
            && match (other.fork_height, self.fork_height) {
                (Some(new), Some(old)) => new <= old,
                _ => true,
            }
    }

    /// This reorg extended down to `deeper`'s anchors: depth counted from the tip seen before
    /// either was noticed.
    fn extend(&mut self, deeper: ReorgReport) {
        let from_first_tip = self
            .depth
            .zip(self.fork_height)
            .zip(deeper.fork_height)
            .map(|((d, f), nf)| (d + f).saturating_sub(nf));
        *self = ReorgReport {
            last_batch: self.last_batch,
            deep: self.deep || deeper.deep,
            depth: from_first_tip.max(deeper.depth),
            ..deeper
        };
    }
}

/// What [`ReorgLog::record`] made of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The last reorg noticed again: nothing new.
    Again,
    /// A new reorg.
    New,
    /// The last reorg, found to go deeper (it now starts at an older batch).
    Deeper,
}

/// The reorgs seen since the node started.
#[derive(Debug, Default, Clone)]
pub struct ReorgLog {
    /// Reorgs that took anchors out of the best chain.
    pub seen: u64,
    /// Of those, the ones that took out an anchor buried past the watch.
    pub deep: u64,
    /// The last one.
    pub last: Option<ReorgReport>,
    /// The block of the newest anchor in a block, and the highest tip seen above it while it
    /// was in the best chain (a reorg in progress shortens the chain before it takes the block
    /// out; the report counts from the tip before).
    top_seen: Option<(BlockHash, u64)>,
}

impl ReorgLog {
    /// The tip height `tip` was seen with `block`, the newest anchor's, in the best chain.
    fn saw_top(&mut self, block: BlockHash, tip: u64) {
        self.top_seen = match self.top_seen {
            Some((b, t)) if b == block => Some((b, t.max(tip))),
            _ => Some((block, tip)),
        };
    }

    /// The highest tip seen while `block` was in the best chain, if it was seen this run.
    fn top_seen(&self, block: BlockHash) -> Option<u64> {
        self.top_seen.filter(|(b, _)| *b == block).map(|(_, t)| t)
    }

    /// Adds `report`: a new reorg, the last one going deeper (merged into it), or the last
    /// one noticed again (ignored).
    pub fn record(&mut self, report: ReorgReport) -> Recorded {
        if let Some(last) = &mut self.last {
            if last.same_reorg(&report) {
                return Recorded::Again;
            }
            if last.continued_by(&report) {
                let was_deep = last.deep;
                last.extend(report);
                if last.deep && !was_deep {
                    self.deep += 1;
                }
                return Recorded::Deeper;
            }
        }
        self.seen += 1;
        if report.deep {
            self.deep += 1;
        }
        self.last = Some(report);
        Recorded::New
    }

    /// `{seen, deep, anchors_left_chain, last}` for `POST /v1/anchor`; `anchors_left_chain` is
    /// the count of anchors seen leaving the best chain (`veil_anchor_reorgs_total`).
    pub fn json(&self, anchors_left_chain: u64) -> Value {
        json!({
            "seen": self.seen,
            "deep": self.deep,
            "anchors_left_chain": anchors_left_chain,
            "last": self.last.as_ref().map(ReorgReport::json),
        })
    }
}

/// Confirmed or anchored: in a block of the best chain when last refreshed.
/// The anchors up to the newest one in `left` (index, record before the pass followed it), as
/// they were before the pass found them out of the best chain: what [`Anchorer::find_reorged`]
/// needs to report a reorg that came between its own check and the pass's refresh of each
/// anchor (after which those anchors are no longer recorded in a block).
pub(super) fn view_before_refresh(
    records: &[AnchorRecord],
    left: Vec<(usize, AnchorRecord)>,
) -> Vec<AnchorRecord> {
    let end = left.iter().map(|(i, _)| i + 1).max().unwrap_or(0);
    let mut view = records[..end.min(records.len())].to_vec();
    for (i, before) in left {
        if let Some(slot) = view.get_mut(i) {
            *slot = before;
        }
    }
    view
}

fn in_a_block(rec: &AnchorRecord) -> bool {
    rec.block_hash.is_some()
        && matches!(rec.status, AnchorStatus::Confirmed | AnchorStatus::Anchored)
}

fn block_of(rec: &AnchorRecord) -> BlockHash {
    BlockHash::from_byte_array(rec.block_hash.unwrap_or_default())
}

impl Anchorer {
    /// Indices into `records` (oldest first) of the anchors a reorg took out of the best chain;
    /// empty while the newest anchor in a block is still in it. Keeps that anchor's stored
    /// confirmations current at any depth (the watch refreshes the younger ones).
    pub(super) async fn find_reorged(
        &self,
        records: &mut [AnchorRecord],
        tip: u64,
    ) -> Result<Vec<usize>, AnchorError> {
        let Some(top) = records.iter().rposition(in_a_block) else {
            return Ok(Vec::new());
        };
        let top_block = block_of(&records[top]);
        if let Some(h) = self.header_in_best_chain(&top_block).await? {
            let confirmations = u64::try_from(h.confirmations).unwrap_or(0);
            self.set_state(|s| {
                s.reorgs
                    .saw_top(top_block, h.height + confirmations.saturating_sub(1))
            });
            let rec = &mut records[top];
            if self.buried(rec)
                && (rec.confirmations, rec.block_height) != (confirmations, Some(h.height))
            {
                rec.confirmations = confirmations;
                rec.block_height = Some(h.height);
                self.store(rec).await?;
            }
            return Ok(Vec::new());
        }
        // The newest anchor's block left the best chain: walk back to the newest anchor still
        // in it; every one after it was taken out.
        let mut taken = vec![top];
        for i in (0..top).rev() {
            if !in_a_block(&records[i]) {
                // Not in a block when last seen: the watch refreshes it anyway.
                continue;
            }
            if self
                .header_in_best_chain(&block_of(&records[i]))
                .await?
                .is_some()
            {
                break;
            }
            taken.push(i);
        }
        taken.reverse();
        let oldest = &records[taken[0]];
        let newest = &records[top];
        let stale_block = block_of(oldest);
        let fork_height = self.fork_height(stale_block).await?;
        // The highest tip seen above the newest anchor: kept in memory, and stored with that
        // anchor's height and confirmations (kept current from one header) for a restart.
        let stored_tip = newest
            .block_height
            .map(|h| h + newest.confirmations.saturating_sub(1));
        let seen_tip = self.read_state(|s| s.reorgs.top_seen(top_block));
        let last_seen_tip = stored_tip.max(seen_tip);
        // Deep: an anchor it took out was buried past the watch (the old chain's tip counts,
        // not what was left of it while the reorg was in progress).
        let watch = self.settings.confirmations + REORG_WATCH;
        let deep = taken.iter().any(|&i| self.buried(&records[i]))
            || oldest
                .block_height
                .zip(last_seen_tip)
                .is_some_and(|(h, t)| t + 1 >= h + watch);
        let report = ReorgReport {
            first_batch: oldest.batch,
            last_batch: newest.last_batch(),
            deep,
            depth: last_seen_tip
                .zip(fork_height)
                .map(|(t, f)| t.saturating_sub(f)),
            fork_height,
            bitcoin_height: tip,
            stale_block,
        };
        self.report_reorg(report);
        Ok(taken)
    }

    /// The header of `hash` if that block is in the best chain.
    async fn header_in_best_chain(
        &self,
        hash: &BlockHash,
    ) -> Result<Option<BlockHeaderInfo>, AnchorError> {
        Ok(self
            .rpc
            .get_block_header(hash)
            .await?
            .filter(BlockHeaderInfo::in_best_chain))
    }

    /// Height of the newest ancestor of `stale` in the best chain (the fork point); `None` if
    /// the node does not know the stale branch.
    async fn fork_height(&self, stale: BlockHash) -> Result<Option<u64>, AnchorError> {
        let mut hash = stale;
        loop {
            match self.rpc.get_block_header(&hash).await? {
                Some(h) if h.in_best_chain() => return Ok(Some(h.height)),
                Some(BlockHeaderInfo {
                    previous: Some(p), ..
                }) => hash = p,
                _ => return Ok(None),
            }
        }
    }

    fn report_reorg(&self, r: ReorgReport) {
        let mut recorded = Recorded::Again;
        let mut merged = None;
        self.set_state(|s| {
            recorded = s.reorgs.record(r);
            merged = s.reorgs.last.clone();
        });
        let Some(r) = merged.filter(|_| recorded != Recorded::Again) else {
            return;
        };
        if recorded == Recorded::Deeper {
            tracing::warn!(
                first_batch = r.first_batch,
                "the last reorg goes deeper than first seen: it took out older anchors too"
            );
        }
        let batches = format!("{}..={}", r.first_batch, r.last_batch);
        if r.deep {
            tracing::warn!(
                batches = %batches,
                depth = ?r.depth,
                fork_height = ?r.fork_height,
                bitcoin_height = r.bitcoin_height,
                stale_block = %r.stale_block,
                "deep reorg: anchors buried past the reorg watch left the best chain; \
                 re-checking them and re-broadcasting any the bitcoin node lost, in batch order"
            );
        } else {
            tracing::warn!(
                batches = %batches,
                depth = ?r.depth,
                fork_height = ?r.fork_height,
                bitcoin_height = r.bitcoin_height,
                stale_block = %r.stale_block,
                "reorg: anchors left the best chain; re-checking them"
            );
        }
    }

    /// Deep reorgs seen since the node started (`veil_anchor_deep_reorgs_total`).
    pub fn deep_reorgs(&self) -> u64 {
        self.read_state(|s| s.reorgs.deep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(first: u64, last: u64, deep: bool, block: u8) -> ReorgReport {
        ReorgReport {
            first_batch: first,
            last_batch: last,
            deep,
            depth: Some(14),
            fork_height: Some(103),
            bitcoin_height: 103,
            stale_block: BlockHash::from_byte_array([block; 32]),
        }
    }

    #[test]
    fn a_reorg_noticed_again_is_counted_once() {
        let mut log = ReorgLog::default();
        assert_eq!(log.record(report(1, 2, true, 7)), Recorded::New);
        // The same reorg again (a pass that failed before storing): not a new one.
        assert_eq!(log.record(report(1, 2, true, 7)), Recorded::Again);
        assert_eq!((log.seen, log.deep), (1, 1));
        // A shallow one, then another deep one.
        assert_eq!(log.record(report(3, 3, false, 8)), Recorded::New);
        assert_eq!(log.record(report(3, 4, true, 9)), Recorded::New);
        assert_eq!((log.seen, log.deep), (3, 2));
        let v = log.json(5);
        assert_eq!(v["seen"], 3);
        assert_eq!(v["deep"], 2);
        assert_eq!(v["anchors_left_chain"], 5);
        assert_eq!(v["last"]["first_batch"], 3);
        assert_eq!(v["last"]["last_batch"], 4);
        assert_eq!(v["last"]["depth"], 14);
        assert_eq!(v["last"]["fork_height"], 103);
        assert_eq!(v["last"]["deep"], true);
        assert_eq!(
            v["last"]["stale_block"],
            BlockHash::from_byte_array([9; 32]).to_string()
        );
        assert_eq!(ReorgLog::default().json(0)["last"], Value::Null);
    }

    #[test]
    fn a_reorg_seen_going_deeper_is_one_reorg() {
        let mut log = ReorgLog::default();
        // Mid-way through the reorg only anchor 2's block (104) is gone; fork at 103, tip 115.
        let mut first = report(2, 2, false, 4);
        first.fork_height = Some(103);
        first.depth = Some(12);
        assert_eq!(log.record(first), Recorded::New);
        assert_eq!((log.seen, log.deep), (1, 0));
        // Then anchor 1's (103) goes too: fork at 102, same reorg, deeper.
        let mut deeper = report(1, 1, true, 3);
        deeper.fork_height = Some(102);
        deeper.depth = Some(5);
        assert_eq!(log.record(deeper), Recorded::Deeper);
        assert_eq!((log.seen, log.deep), (1, 1));
        let last = log.last.clone().unwrap();
        assert_eq!((last.first_batch, last.last_batch), (1, 2));
        assert_eq!(last.fork_height, Some(102));
        assert_eq!(last.depth, Some(13), "from the tip seen first, 115");
        assert!(last.deep);
        assert_eq!(last.stale_block, BlockHash::from_byte_array([3; 32]));
        // Not contiguous (anchor 2 back in a block, then 0 to 2 taken out): a new reorg.
        assert_eq!(log.record(report(0, 2, true, 2)), Recorded::New);
        assert_eq!((log.seen, log.deep), (2, 2));
    }

    fn anchor(batch: u64, block: Option<u8>) -> AnchorRecord {
        AnchorRecord {
            batch,
            count: 1,
            prev_value_sat: 0,
            prev_script: Vec::new(),
            sweeps: Vec::new(),
            prelude: Vec::new(),
            versions: Vec::new(),
            status: if block.is_some() {
                AnchorStatus::Confirmed
            } else {
                AnchorStatus::Unconfirmed
            },
            confirmed: block.map(|_| 0),
            block_hash: block.map(|b| [b; 32]),
            block_height: block.map(u64::from),
            confirmations: u64::from(block.is_some()),
            broadcast_height: Some(100),
        }
    }

    #[test]
    fn a_reorg_found_while_refreshing_is_looked_for_in_the_records_as_they_were() {
        // Anchors 1 and 2 were in block 104 when the pass began; refreshing found them in the
        // mempool (the reorg came after the pass's own check) and recorded them unconfirmed.
        let now = vec![
            anchor(0, Some(103)),
            anchor(1, None),
            anchor(2, None),
            anchor(3, None),
        ];
        let left = vec![(1, anchor(1, Some(104))), (2, anchor(2, Some(104)))];
        let view = view_before_refresh(&now, left);
        // Up to the newest that left, the two of them back in their block: the newest anchor in
        // a block is anchor 2, whose block is the one to check.
        assert_eq!(view.len(), 3);
        assert_eq!(view.iter().rposition(in_a_block), Some(2));
        assert_eq!(block_of(&view[2]), BlockHash::from_byte_array([104; 32]));
        assert!(in_a_block(&view[1]));
        assert_eq!(view[0], now[0]);
        assert!(view_before_refresh(&now, Vec::new()).is_empty());
    }

    #[test]
    fn the_highest_tip_seen_above_the_newest_anchor_is_kept_until_it_changes() {
        let (a, b) = (
            BlockHash::from_byte_array([1; 32]),
            BlockHash::from_byte_array([2; 32]),
        );
        let mut log = ReorgLog::default();
        assert_eq!(log.top_seen(a), None);
        log.saw_top(a, 115);
        // A reorg in progress: the chain above the anchor shrinks before its block goes.
        log.saw_top(a, 110);
        assert_eq!(log.top_seen(a), Some(115));
        assert_eq!(log.top_seen(b), None);
        // A newer anchor is now the newest in a block.
        log.saw_top(b, 104);
        assert_eq!(log.top_seen(b), Some(104));
        assert_eq!(log.top_seen(a), None);
    }
}
