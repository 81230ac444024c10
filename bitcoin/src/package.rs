//! The transactions of one range anchor (`docs/data-on-bitcoin.md`, "Transactions"): the commit
//! that spends the previous anchor's change into `k` envelope outputs, `k - 1` sibling reveal
//! transactions, and the anchor transaction that reveals the last chunk and carries the
//! version 2 payload and the next change; fee bumps of the anchor and replacement of the whole
//! package; and reading the data back from the three kinds of transaction.
//!
//! ```text
//! prev change ──> commit ─┬─ env_0 ──> reveal_0: [OP_RETURN "VEIL"]
//!                         ├─ ...
//!                         ├─ env_{k-2} ──> reveal_{k-2}
//!                         └─ env_{k-1} ──> anchor: [OP_RETURN payload v2, change] ──> next commit
//! ```
//!
//! Every chunk but the last holds [`MAX_ENVELOPE_DATA`] bytes. `env_i` for a reveal holds exactly
//! that reveal's fee; `env_{k-1}` holds the rest, the anchor's fee and the change.
//!
//! Reveals are siblings rather than a chain so that, once the commit has confirmed, they and the
//! anchor are unrelated in the mempool and all confirm in one block; a chain would hit Core's
//! 101 kvB limit on related unconfirmed transactions at every link. The same limit keeps a large
//! package from waiting whole beside its unconfirmed commit: see
//! [`AnchorPackage::fits_mempool_at_once`] for the broadcast order. Reveals cannot be fee-bumped
//! (fixed fee, no spendable output); the anchor can ([`AnchorPackage::bump_anchor`]), and the
//! whole package can be replaced while the commit is unconfirmed ([`AnchorPackage::rebuild`]).

use bitcoin::absolute::LockTime;
use bitcoin::key::XOnlyPublicKey;
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, FeeRate, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Weight, Witness,
};
use sha2::{Digest, Sha256};

use super::bridge::flows::BridgeFlows;
use super::envelope::{data_from_witness, Envelope, EnvelopeError, MAX_ENVELOPE_DATA};
use super::operator::{KeyKind, OperatorKey};
use super::payload::{AnchorPayloadV2, PayloadError, MAGIC};
use super::tx::{
    check_fee_rate, check_relay_policy, fee_for_vsize, input_kind, key_path_witness, max_witness,
    sign_input_at, AnchorTxError, PrevOut, CHANGE_VOUT, INCREMENTAL_RELAY_FEE,
};

/// Core's default limit on the virtual size of a set of related unconfirmed transactions (the
/// cluster size limit since v31, the descendant size limit before): 101 kvB. A package larger
/// than this cannot be in the mempool at once; its commit must confirm before the reveals are
/// relayed (see [`AnchorPackage::fits_mempool_at_once`]).
pub const MAX_UNCONFIRMED_PACKAGE_VSIZE: u64 = 101_000;

/// The reveal transactions' only output script: `OP_RETURN "VEIL"` (6 bytes), which brings a
/// reveal's non-witness size to 66 bytes, above Core's 65-byte minimum.
pub fn reveal_script() -> ScriptBuf {
    ScriptBuf::new_op_return(MAGIC)
}

/// A package could not be built, bumped or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    /// Building or signing a transaction failed (fee rate, foreign input, dust change, policy).
    #[error(transparent)]
    Tx(#[from] AnchorTxError),
    /// A witness is not an envelope spend.
    #[error("envelope {index}: {source}")]
    Envelope {
        /// Which envelope (commit output index).
        index: usize,
        /// Why.
        source: EnvelopeError,
    },
    /// The anchor's first output is not a version 2 payload.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The key given is not the one the package's envelopes are for.
    #[error("the key given is not the package's operator key")]
    ForeignKey,
    /// The commit does not have one output per envelope.
    #[error("commit has {found} outputs, expected {expected} (one per envelope)")]
    CommitOutputs {
        /// Outputs found.
        found: usize,
        /// Reveals plus one.
        expected: usize,
    },
    /// A reveal or the anchor does not spend exactly its envelope output of the commit.
    #[error("{tx} does not spend exactly commit output {vout}")]
    WrongSpend {
        /// `reveal i` or `anchor`.
        tx: String,
        /// The commit output it should spend.
        vout: u32,
    },
    /// The envelopes are not all for the same key.
    #[error("envelope {index} is for another key than envelope 0")]
    KeyMismatch {
        /// Which envelope.
        index: usize,
    },
    /// A chunk before the last is not full (the data is split one way only).
    #[error("chunk {index} holds {len} bytes; every chunk but the last holds {MAX_ENVELOPE_DATA}")]
    ChunkLength {
        /// Which chunk.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// The anchor has no change output.
    #[error("anchor has {found} outputs, expected at least 2 (payload, change)")]
    AnchorOutputs {
        /// Outputs found.
        found: usize,
    },
    /// A sweep input's deposit address cannot be derived (see [`crate::bridge`]).
    #[error("sweep {index}: {source}")]
    Sweep {
        /// Which sweep (commit input index minus one).
        index: usize,
        /// Why.
        source: crate::bridge::BridgeKeyError,
    },
    /// The package's sweeps are not the commit's inputs after the first.
    #[error("the sweeps given are not the commit's inputs after the first")]
    SweepMismatch,
    /// No transaction spends a commit output (a reveal or the anchor is missing).
    #[error("no transaction spends commit output {vout}")]
    MissingSpender {
        /// The commit output.
        vout: u32,
    },
}

/// What [`AnchorPackage::bump_anchor`] pays for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BumpScope {
    /// The new rate on the anchor alone (the commit has confirmed).
    Anchor,
    /// The new rate on the commit and the anchor together: the anchor pays what the commit
    /// lacks, so miners take both (child pays for parent). For a commit still unconfirmed.
    AnchorAndCommit,
}

/// The signed transactions of one anchor and what they were built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorPackage {
    /// Spends [`Self::prev`] and the sweeps into the envelope outputs.
    pub commit: Transaction,
    /// Reveal `i` spends commit output `i` (chunks `0 .. k - 1`).
    pub reveals: Vec<Transaction>,
    /// Spends commit output `k - 1`; outputs `[OP_RETURN payload v2, change, payouts...]`.
    pub anchor: Transaction,
    /// The output the commit spends first.
    pub prev: PrevOut,
    /// The peg-ins the commit sweeps and the withdrawals the anchor pays.
    pub flows: BridgeFlows,
    /// The anchor's payload.
    pub payload: AnchorPayloadV2,
    /// How the change is locked.
    pub change_kind: KeyKind,
    /// The fee rate asked for.
    pub fee_rate: FeeRate,
    /// Fee of the commit.
    pub commit_fee: Amount,
    /// Fee of each reveal (the value of its envelope output).
    pub reveal_fees: Vec<Amount>,
    /// Fee of the anchor.
    pub anchor_fee: Amount,
    data: Vec<u8>,
    last_envelope: Envelope,
}

/// Lengths of the chunks `data_len` bytes are split into: full chunks of [`MAX_ENVELOPE_DATA`]
/// and a last one with the rest (the only chunk, possibly empty, for small data).
pub fn chunk_lengths(data_len: usize) -> Vec<usize> {
    let k = data_len.div_ceil(MAX_ENVELOPE_DATA).max(1);
    let mut out = vec![MAX_ENVELOPE_DATA; k - 1];
    out.push(data_len - (k - 1) * MAX_ENVELOPE_DATA);
    out
}

/// Builds and signs the package anchoring `payload` with `data` in its envelopes, spending
/// `prev` (the previous anchor's change or the genesis outpoint, locked to `key`) with change
/// to `key` as `change_kind`, every transaction paying `fee_rate` on its size.
pub fn build_anchor_package(
    key: &OperatorKey,
    prev: &PrevOut,
    payload: &AnchorPayloadV2,
    data: &[u8],
    change_kind: KeyKind,
    fee_rate: FeeRate,
) -> Result<AnchorPackage, PackageError> {
    build_bridge_package(
        key,
        prev,
        payload,
        data,
        change_kind,
        fee_rate,
        &BridgeFlows::default(),
    )
}

/// [`build_anchor_package`] that also moves bridge funds: the commit sweeps `flows.sweeps` into
/// the reserve after spending `prev`, and the anchor pays `flows.payouts` after its change
/// (`crate::bridge::flows`). The operator pays every Bitcoin fee from the change.
#[allow(clippy::too_many_arguments)]
pub fn build_bridge_package(
    key: &OperatorKey,
    prev: &PrevOut,
    payload: &AnchorPayloadV2,
    data: &[u8],
    change_kind: KeyKind,
    fee_rate: FeeRate,
    flows: &BridgeFlows,
) -> Result<AnchorPackage, PackageError> {
    build(key, prev, payload, data, change_kind, fee_rate, flows, None)
}

fn unsigned_tx(input: OutPoint, witness: Witness, output: Vec<TxOut>) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: input,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness,
        }],
        output,
    }
}

/// A script-path witness of the final size for `env` (the signature is always 64 bytes).
fn sized_witness(env: &Envelope) -> Witness {
    let sig = bitcoin::taproot::Signature {
        signature: bitcoin::secp256k1::schnorr::Signature::from_slice(&[1u8; 64])
            .expect("64 bytes"),
        sighash_type: bitcoin::sighash::TapSighashType::Default,
    };
    env.witness(&sig)
}

fn reveal_tx(env: &Envelope, input: OutPoint) -> Transaction {
    unsigned_tx(
        input,
        sized_witness(env),
        vec![TxOut {
            value: Amount::ZERO,
            script_pubkey: reveal_script(),
        }],
    )
}

fn anchor_tx(
    env: &Envelope,
    input: OutPoint,
    payload: &AnchorPayloadV2,
    change_script: ScriptBuf,
    payouts: &[TxOut],
) -> Transaction {
    let mut outputs = vec![
        TxOut {
            value: Amount::ZERO,
            script_pubkey: payload.script_pubkey(),
        },
        TxOut {
            value: Amount::ZERO,
            script_pubkey: change_script,
        },
    ];
    outputs.extend_from_slice(payouts);
    unsigned_tx(input, sized_witness(env), outputs)
}

/// Signs the anchor's envelope input and checks the result; `anchor` has its change set.
fn sign_anchor(
    key: &OperatorKey,
    env: &Envelope,
    anchor: &mut Transaction,
    spent: &TxOut,
    fee: Amount,
) -> Result<(), PackageError> {
    env.sign(key, anchor, 0, std::slice::from_ref(spent))
        .map_err(|e| AnchorTxError::Sighash(e.to_string()))?;
    expect_fee(
        check_relay_policy(anchor, std::slice::from_ref(spent))?,
        fee,
    )
}

fn expect_fee(paid: Amount, fee: Amount) -> Result<(), PackageError> {
    if paid != fee {
        return Err(AnchorTxError::NonStandard(format!("pays {paid}, expected {fee}")).into());
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn build(
    key: &OperatorKey,
    prev: &PrevOut,
    payload: &AnchorPayloadV2,
    data: &[u8],
    change_kind: KeyKind,
    fee_rate: FeeRate,
    flows: &BridgeFlows,
    evicted_fee: Option<Amount>,
) -> Result<AnchorPackage, PackageError> {
    check_fee_rate(fee_rate)?;
    let input_kind = input_kind(key, prev)?;
    let operator = key.internal_key();
    let mut envelopes = Vec::new();
    let mut at = 0;
    for len in chunk_lengths(data.len()) {
        envelopes.push(Envelope::new(operator, &data[at..at + len]));
        at += len;
    }
    let k = envelopes.len();
    let change_script = key.script_pubkey(change_kind);
    let placeholder = OutPoint::null();

    // Sizes do not depend on the values or the commit's txid, so every fee is known up front.
    let mut reveals: Vec<Transaction> = envelopes[..k - 1]
        .iter()
        .map(|env| reveal_tx(env, placeholder))
        .collect();
    let reveal_fees: Vec<Amount> = reveals
        .iter()
        .map(|t| fee_for_vsize(fee_rate, t.vsize() as u64))
        .collect();
    let last = &envelopes[k - 1];
    let mut anchor = anchor_tx(
        last,
        placeholder,
        payload,
        change_script.clone(),
        &flows.payouts,
    );
    let anchor_fee = fee_for_vsize(fee_rate, anchor.vsize() as u64);
    let mut commit = unsigned_tx(
        prev.outpoint,
        max_witness(input_kind),
        envelopes
            .iter()
            .map(|env| TxOut {
                value: Amount::ZERO,
                script_pubkey: env.script_pubkey(),
            })
            .collect(),
    );
    for sweep in &flows.sweeps {
        commit.input.push(TxIn {
            previous_output: sweep.prev.outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: max_witness(KeyKind::P2tr),
        });
    }
    let commit_vsize = commit.vsize() as u64;
    let mut commit_fee = fee_for_vsize(fee_rate, commit_vsize);
    if let Some(evicted) = evicted_fee {
        // (Capped so the sums below cannot overflow; no output can pay that much anyway.)
        let evicted = evicted.min(Amount::MAX_MONEY);
        commit_fee = commit_fee.max(evicted + fee_for_vsize(INCREMENTAL_RELAY_FEE, commit_vsize));
    }

    let total_fee = commit_fee + reveal_fees.iter().copied().sum::<Amount>() + anchor_fee;
    let dust_limit = change_script.minimal_non_dust();
    let available = prev.txout.value + flows.swept();
    let change = available
        .checked_sub(total_fee + flows.paid())
        .unwrap_or(Amount::ZERO);
    if change < dust_limit {
        return Err(AnchorTxError::DustChange {
            available,
            fee: total_fee + flows.paid(),
            change,
            dust_limit,
        }
        .into());
    }
    for (out, fee) in commit.output.iter_mut().zip(&reveal_fees) {
        out.value = *fee;
    }
    commit.output[k - 1].value = anchor_fee + flows.paid() + change;
    anchor.output[CHANGE_VOUT as usize].value = change;

    let spent: Vec<TxOut> = std::iter::once(prev.txout.clone())
        .chain(flows.sweeps.iter().map(|s| s.prev.txout.clone()))
        .collect();
    sign_input_at(key, &mut commit, 0, &spent, input_kind)?;
    for (i, sweep) in flows.sweeps.iter().enumerate() {
        let keypair = key
            .deposit_keypair(&sweep.owner)
            .map_err(|source| PackageError::Sweep { index: i, source })?;
        commit.input[i + 1].witness = key_path_witness(key, &keypair, &commit, i + 1, &spent)?;
    }
    expect_fee(check_relay_policy(&commit, &spent)?, commit_fee)?;
    let commit_txid = commit.compute_txid();
    for (i, (reveal, env)) in reveals.iter_mut().zip(&envelopes).enumerate() {
        reveal.input[0].previous_output = OutPoint::new(commit_txid, i as u32);
        let spent = &commit.output[i];
        env.sign(key, reveal, 0, std::slice::from_ref(spent))
            .map_err(|e| AnchorTxError::Sighash(e.to_string()))?;
        expect_fee(
            check_relay_policy(reveal, std::slice::from_ref(spent))?,
            reveal_fees[i],
        )?;
    }
    anchor.input[0].previous_output = OutPoint::new(commit_txid, (k - 1) as u32);
    sign_anchor(key, last, &mut anchor, &commit.output[k - 1], anchor_fee)?;

    Ok(AnchorPackage {
        commit,
        reveals,
        anchor,
        prev: prev.clone(),
        flows: flows.clone(),
        payload: *payload,
        change_kind,
        fee_rate,
        commit_fee,
        reveal_fees,
        anchor_fee,
        data: data.to_vec(),
        last_envelope: envelopes.pop().expect("at least one envelope"),
    })
}

impl AnchorPackage {
    /// The package of stored, signed transactions (a node's record of what it broadcast),
    /// re-read with [`read_package`]: the data, payload, key and fees are recovered from the
    /// transactions, `prev` (the output the commit spends first) and `sweeps` (the peg-ins it
    /// spends after it), so the package can be bumped. `fee_rate` is the rate it was built for.
    #[allow(clippy::too_many_arguments)]
    pub fn from_transactions(
        key: &OperatorKey,
        prev: PrevOut,
        sweeps: Vec<crate::bridge::flows::Sweep>,
        commit: Transaction,
        reveals: Vec<Transaction>,
        anchor: Transaction,
        fee_rate: FeeRate,
    ) -> Result<AnchorPackage, PackageError> {
        let contents = read_package(&commit, &reveals, &anchor)?;
        if contents.operator != key.internal_key() {
            return Err(PackageError::ForeignKey);
        }
        let spends_prev = commit.input[0].previous_output == prev.outpoint;
        if !spends_prev {
            return Err(PackageError::WrongSpend {
                tx: "commit".into(),
                vout: prev.outpoint.vout,
            });
        }
        let flows = BridgeFlows {
            payouts: contents.payouts.clone(),
            sweeps,
        };
        if flows.swept_outpoints() != contents.swept {
            return Err(PackageError::SweepMismatch);
        }
        let sum = |tx: &Transaction| tx.output.iter().map(|o| o.value).sum::<Amount>();
        let commit_fee = (prev.txout.value + flows.swept()).checked_sub(sum(&commit));
        let k = reveals.len();
        let last_value = commit.output[k].value;
        let anchor_fee = last_value.checked_sub(sum(&anchor));
        let change_kind = anchor
            .output
            .get(CHANGE_VOUT as usize)
            .and_then(|o| key.kind_of(&o.script_pubkey));
        let (Some(commit_fee), Some(anchor_fee), Some(change_kind)) =
            (commit_fee, anchor_fee, change_kind)
        else {
            return Err(PackageError::WrongSpend {
                tx: "anchor".into(),
                vout: k as u32,
            });
        };
        let reveal_fees = commit.output[..k].iter().map(|o| o.value).collect();
        let last_len = *chunk_lengths(contents.data.len())
            .last()
            .expect("one chunk");
        let last_envelope = Envelope::new(
            contents.operator,
            &contents.data[contents.data.len() - last_len..],
        );
        Ok(AnchorPackage {
            commit,
            reveals,
            anchor,
            prev,
            flows,
            payload: contents.payload,
            change_kind,
            fee_rate,
            commit_fee,
            reveal_fees,
            anchor_fee,
            data: contents.data,
            last_envelope,
        })
    }

    /// The envelope data.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Number of envelopes `k` (reveals plus one).
    pub fn envelope_count(&self) -> usize {
        self.reveals.len() + 1
    }

    /// The transactions in broadcast order: commit, reveals, anchor.
    pub fn transactions(&self) -> Vec<&Transaction> {
        let mut out = vec![&self.commit];
        out.extend(&self.reveals);
        out.push(&self.anchor);
        out
    }

    /// Their txids, in the same order.
    pub fn txids(&self) -> Vec<Txid> {
        self.transactions()
            .into_iter()
            .map(Transaction::compute_txid)
            .collect()
    }

    /// The anchor's txid.
    pub fn anchor_txid(&self) -> Txid {
        self.anchor.compute_txid()
    }

    /// Sum of the transactions' virtual sizes.
    pub fn total_vsize(&self) -> u64 {
        self.transactions()
            .into_iter()
            .map(|t| t.vsize() as u64)
            .sum()
    }

    /// Sum of the transactions' weights.
    pub fn total_weight(&self) -> Weight {
        self.transactions()
            .into_iter()
            .map(Transaction::weight)
            .sum()
    }

    /// Sum of the fees.
    pub fn total_fee(&self) -> Amount {
        self.commit_fee + self.reveal_fees.iter().copied().sum::<Amount>() + self.anchor_fee
    }

    /// Whether all the transactions can sit unconfirmed in a mempool together (total size at
    /// most [`MAX_UNCONFIRMED_PACKAGE_VSIZE`]). If not, broadcast the commit alone and the
    /// reveals and anchor once it has confirmed; they are then unrelated in the mempool.
    pub fn fits_mempool_at_once(&self) -> bool {
        self.total_vsize() <= MAX_UNCONFIRMED_PACKAGE_VSIZE
    }

    /// The anchor's change output, which the next package spends.
    pub fn change(&self) -> PrevOut {
        PrevOut {
            outpoint: OutPoint::new(self.anchor_txid(), CHANGE_VOUT),
            txout: self.anchor.output[CHANGE_VOUT as usize].clone(),
        }
    }

    /// The package with its anchor re-signed at `new_rate`, taking the extra fee from the
    /// change; the commit and reveals are unchanged and stay valid. The new anchor pays the
    /// larger of `new_rate` (on what `scope` says) and the old anchor fee plus the incremental
    /// relay fee on its size (BIP 125 rules 3 and 4: it replaces the old anchor only, which
    /// must have no descendants; bump before the next package spends the change).
    pub fn bump_anchor(
        &self,
        key: &OperatorKey,
        new_rate: FeeRate,
        scope: BumpScope,
    ) -> Result<AnchorPackage, PackageError> {
        check_fee_rate(new_rate)?;
        if key.internal_key() != self.last_envelope.operator() {
            return Err(PackageError::ForeignKey);
        }
        let vsize = self.anchor.vsize() as u64;
        let wanted = match scope {
            BumpScope::Anchor => fee_for_vsize(new_rate, vsize),
            BumpScope::AnchorAndCommit => {
                fee_for_vsize(new_rate, vsize + self.commit.vsize() as u64)
                    .checked_sub(self.commit_fee)
                    .unwrap_or(Amount::ZERO)
            }
        };
        let fee = wanted.max(self.anchor_fee + fee_for_vsize(INCREMENTAL_RELAY_FEE, vsize));
        let spent = self.commit.output[self.reveals.len()].clone();
        let change_script = key.script_pubkey(self.change_kind);
        let dust_limit = change_script.minimal_non_dust();
        let change = spent
            .value
            .checked_sub(fee + self.flows.paid())
            .unwrap_or(Amount::ZERO);
        if change < dust_limit {
            return Err(AnchorTxError::DustChange {
                available: spent.value,
                fee: fee + self.flows.paid(),
                change,
                dust_limit,
            }
            .into());
        }
        let mut anchor = anchor_tx(
            &self.last_envelope,
            self.anchor.input[0].previous_output,
            &self.payload,
            change_script,
            &self.flows.payouts,
        );
        anchor.output[CHANGE_VOUT as usize].value = change;
        sign_anchor(key, &self.last_envelope, &mut anchor, &spent, fee)?;
        Ok(AnchorPackage {
            anchor,
            anchor_fee: fee,
            fee_rate: new_rate,
            ..self.clone()
        })
    }

    /// A new package for the same input, payload and data at `new_rate` that replaces this one
    /// (BIP 125 rules 3 and 4): its commit conflicts with this commit and evicts it with every
    /// descendant in the mempool, so it pays at least `evicted_fee`, the fees of this package's
    /// transactions that are in the mempool, plus the incremental relay fee on its own size.
    /// Pass [`Self::total_fee`] if the whole package was broadcast, `commit_fee` if only the
    /// commit was (a package too large for the mempool, waiting for its commit to confirm).
    /// The new package as a whole then also pays at least `evicted_fee` plus the incremental
    /// relay fee on its total size.
    pub fn rebuild(
        &self,
        key: &OperatorKey,
        new_rate: FeeRate,
        evicted_fee: Amount,
    ) -> Result<AnchorPackage, PackageError> {
        build(
            key,
            &self.prev,
            &self.payload,
            &self.data,
            self.change_kind,
            new_rate,
            &self.flows,
            Some(evicted_fee),
        )
    }
}

/// What a package reveals: the operator key, the data, the payload and the next change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageContents {
    /// The key every envelope is locked to.
    pub operator: XOnlyPublicKey,
    /// The envelope data, chunks concatenated.
    pub data: Vec<u8>,
    /// The anchor's payload.
    pub payload: AnchorPayloadV2,
    /// The anchor's change output.
    pub change: PrevOut,
    /// The outpoints the commit spends after its first input (swept peg-ins).
    pub swept: Vec<OutPoint>,
    /// The anchor's outputs after the change (withdrawals paid).
    pub payouts: Vec<TxOut>,
}

impl PackageContents {
    /// SHA-256 of the data, which the payload's range commitment covers.
    pub fn data_hash(&self) -> [u8; 32] {
        Sha256::digest(&self.data).into()
    }
}

/// Reads a package from its commit, its reveals in commit output order and its anchor: checks
/// that each spends its envelope output of the commit and nothing else, that every witness is
/// an envelope spend committing to that output, all for one key, with every chunk but the last
/// full, and decodes the anchor's payload.
pub fn read_package(
    commit: &Transaction,
    reveals: &[Transaction],
    anchor: &Transaction,
) -> Result<PackageContents, PackageError> {
    let k = reveals.len() + 1;
    if commit.output.len() != k {
        return Err(PackageError::CommitOutputs {
            found: commit.output.len(),
            expected: k,
        });
    }
    let commit_txid = commit.compute_txid();
    let spenders = reveals
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("reveal {i}"), t))
        .chain([("anchor".to_owned(), anchor)]);
    let mut operator = None;
    let mut data = Vec::new();
    for (i, (name, tx)) in spenders.enumerate() {
        let vout = i as u32;
        if tx.input.len() != 1 || tx.input[0].previous_output != OutPoint::new(commit_txid, vout) {
            return Err(PackageError::WrongSpend { tx: name, vout });
        }
        let (key, chunk) =
            data_from_witness(&tx.input[0].witness, Some(&commit.output[i].script_pubkey))
                .map_err(|source| PackageError::Envelope { index: i, source })?;
        if *operator.get_or_insert(key) != key {
            return Err(PackageError::KeyMismatch { index: i });
        }
        if i + 1 < k && chunk.len() != MAX_ENVELOPE_DATA {
            return Err(PackageError::ChunkLength {
                index: i,
                len: chunk.len(),
            });
        }
        data.extend_from_slice(&chunk);
    }
    let payload = AnchorPayloadV2::from_tx(anchor)?;
    if anchor.output.len() < 2 {
        return Err(PackageError::AnchorOutputs {
            found: anchor.output.len(),
        });
    }
    Ok(PackageContents {
        operator: operator.expect("at least the anchor's envelope"),
        data,
        payload,
        change: PrevOut {
            outpoint: OutPoint::new(anchor.compute_txid(), CHANGE_VOUT),
            txout: anchor.output[CHANGE_VOUT as usize].clone(),
        },
        swept: commit
            .input
            .iter()
            .skip(1)
            .map(|i| i.previous_output)
            .collect(),
        payouts: anchor.output[CHANGE_VOUT as usize + 1..].to_vec(),
    })
}

/// The envelope data of a package (see [`read_package`]).
pub fn extract_data(
    commit: &Transaction,
    reveals: &[Transaction],
    anchor: &Transaction,
) -> Result<Vec<u8>, PackageError> {
    read_package(commit, reveals, anchor).map(|c| c.data)
}

/// Finds the reveals and the anchor of `commit` through `spender` (the transaction spending an
/// outpoint, from a block index or `gettxspendingprevout`) and reads the package.
pub fn read_package_by_spends(
    commit: &Transaction,
    spender: impl Fn(OutPoint) -> Option<Transaction>,
) -> Result<(PackageContents, Vec<Transaction>, Transaction), PackageError> {
    let txid = commit.compute_txid();
    let mut spends = Vec::with_capacity(commit.output.len());
    for vout in 0..commit.output.len() as u32 {
        spends
            .push(spender(OutPoint::new(txid, vout)).ok_or(PackageError::MissingSpender { vout })?);
    }
    let anchor = spends.pop().ok_or(PackageError::CommitOutputs {
        found: 0,
        expected: 1,
    })?;
    let contents = read_package(commit, &spends, &anchor)?;
    Ok((contents, spends, anchor))
}

#[cfg(test)]
mod tests;
