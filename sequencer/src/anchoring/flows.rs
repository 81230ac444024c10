//! The bridge flows of an anchor (`docs/bridge.md`): which credited peg-in outputs its commit
//! sweeps into the reserve and which withdrawals its anchor pays, read from the batches' public
//! data and the bridge's records (the deposit found on Bitcoin for a `deposit_ref`, the script
//! submitted for a `dest`).

use bitcoin::hashes::Hash;
use bitcoin::{Amount, OutPoint, ScriptBuf, TxOut, Txid};
use veil_bitcoin::bridge::flows::{BridgeFlows, Sweep};
use veil_bitcoin::PrevOut;
use veil_circuits::field::{from_bytes_be, to_bytes_be};
use veil_circuits::keys::PaymentAddress;
use veil_verifier::da::AnchorData;

use super::{AnchorError, Anchorer};
use crate::node::NodeError;
use crate::store::bridge::DepositStatus;
use crate::store::SweptOutput;

impl Anchorer {
    /// The sweeps and payouts of an anchor of `data`, with the sweeps as stored in its record.
    ///
    /// A deposit is swept when the watcher credited it from a Bitcoin output that is still in
    /// the best chain; an attested deposit (no Bitcoin output) is not, nor one a reorg took out
    /// after crediting (reported: the reserve is short by it, and `verify-chain` says so). A
    /// withdrawal is paid exactly `public_out` to the script whose hash is its `dest`.
    pub(super) async fn bridge_flows(
        &self,
        data: &AnchorData,
    ) -> Result<(BridgeFlows, Vec<SweptOutput>), AnchorError> {
        let node = self.node.clone();
        let transfers: Vec<_> = data
            .batches
            .iter()
            .flat_map(|b| b.transfers.iter().map(|t| t.public))
            .collect();
        let batch = data.first_batch;
        tokio::task::spawn_blocking(move || -> Result<_, AnchorError> {
            let store = node.store();
            let mut flows = BridgeFlows::default();
            let mut swept = Vec::new();
            for t in &transfers {
                if t.public_in > 0 {
                    let r = to_bytes_be(&t.deposit_ref);
                    match store.deposit_by_ref(&r).map_err(NodeError::from)? {
                        Some(d) if d.status == DepositStatus::Credited => {
                            if d.value != t.public_in {
                                return Err(AnchorError::Corrupt {
                                    batch,
                                    message: format!(
                                        "deposit of {} sat credited as {} sat",
                                        d.value, t.public_in
                                    ),
                                });
                            }
                            let owner = PaymentAddress {
                                addr: from_bytes_be(&d.owner.addr).map_err(|e| {
                                    AnchorError::Corrupt {
                                        batch,
                                        message: format!("deposit owner: {e}"),
                                    }
                                })?,
                                pk_enc: d.owner.pk_enc,
                            };
                            flows.sweeps.push(Sweep {
                                prev: PrevOut {
                                    outpoint: OutPoint::new(Txid::from_byte_array(d.txid), d.vout),
                                    txout: TxOut {
                                        value: Amount::from_sat(d.value),
                                        script_pubkey: ScriptBuf::from_bytes(d.script.clone()),
                                    },
                                },
                                owner,
                            });
                            swept.push(SweptOutput {
                                txid: d.txid,
                                vout: d.vout,
                                value: d.value,
                                script: d.script,
                                owner: Some(d.owner),
                            });
                        }
                        Some(d) => tracing::error!(
                            txid = %Txid::from_byte_array(d.txid),
                            vout = d.vout,
                            status = d.status.as_str(),
                            "credited deposit is not in the best chain: not swept; the reserve \
                             is short by {} sat",
                            d.value
                        ),
                        None => tracing::debug!("attested deposit: nothing to sweep"),
                    }
                }
                if t.public_out > 0 {
                    let dest = to_bytes_be(&t.dest);
                    match store.withdrawal_script(&dest).map_err(NodeError::from)? {
                        Some(script) => flows.payouts.push(TxOut {
                            value: Amount::from_sat(t.public_out),
                            script_pubkey: ScriptBuf::from_bytes(script),
                        }),
                        None => tracing::error!(
                            dest = %hex::encode(dest),
                            amount = t.public_out,
                            "withdrawal without a known script: not paid (admitted without \
                             Bitcoin)"
                        ),
                    }
                }
            }
            Ok((flows, swept))
        })
        .await
        .map_err(|e| NodeError::Task(e.to_string()))?
    }
}
