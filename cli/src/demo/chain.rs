//! The Bitcoin side of `veil demo`'s story, and its audit: the throwaway regtest node with a
//! funded operator and Bitcoin user ([`Demo::start_bitcoin`]), the peg-in through the bridge
//! ([`Demo::peg_in`]), the check that an anchor paid the withdrawal ([`Demo::paid_to`]), the wait
//! until every batch is anchored ([`Demo::wait_all_anchored`]), and `verify-chain` (with Bitcoin,
//! against it and `--from-bitcoin`: [`Demo::verify`]).

use std::path::Path;
use std::str::FromStr;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use bitcoin::{Address, Network as BtcNetwork, OutPoint, Txid};
use veil_bitcoin::{KeyKind, OperatorKey};
use veil_sequencer::config::AnchorConfig;
use veil_wallet::Wallet;

use super::regtest::{self, Bitcoind, BtcUser};
use super::summary::{self, AnchorLine, BitcoinFlows};
use super::{BtcSide, Demo, DEPOSIT, DEPOSIT_CONFIRMATIONS, PEG_IN_FEE, POLL, STEP_LIMIT};

impl Demo<'_> {
    /// Starts the throwaway bitcoind, funds the operator (its genesis outpoint) and the Bitcoin
    /// user; returns the node's `[anchor]` table.
    pub(super) fn start_bitcoin(&mut self, exe: &Path) -> Result<AnchorConfig> {
        let step = self
            .progress
            .step("bitcoind", "starting a throwaway regtest Bitcoin Core");
        let bitcoind = self
            .rt
            .block_on(Bitcoind::start(exe, self.dir, self.cleanup))?;
        let operator = OperatorKey::generate(&mut rand::rngs::OsRng);
        let key_file = self.dir.join("operator.key");
        operator.save(&key_file, BtcNetwork::Regtest)?;
        let mut user = BtcUser::new();
        step.set("mining 102 blocks (the operator's and the user's coinbases, matured)");
        let genesis = self.rt.block_on(async {
            let rpc = &bitcoind.rpc;
            let op = rpc
                .generate_to_address(1, &operator.address(KeyKind::P2tr, BtcNetwork::Regtest))
                .await?;
            let us = rpc.generate_to_address(1, &user.address).await?;
            user.take_coinbase(rpc, &us[0]).await?;
            bitcoind.mine(100).await?;
            let block = rpc.get_block(&op[0]).await?;
            Ok::<_, anyhow::Error>(OutPoint::new(block.txdata[0].compute_txid(), 0))
        })?;
        let config = AnchorConfig {
            rpc_url: bitcoind.url.clone(),
            rpc_user: Some(regtest::RPC_USER.to_owned()),
            rpc_password: Some(bitcoind.password.clone()),
            network: "regtest".into(),
            key_file: Some(key_file),
            key_kind: "p2tr".into(),
            fee_rate: Some(2),
            bump_after_blocks: 1_000,
            confirmations: 1,
            genesis: Some(genesis.to_string()),
            poll_ms: 150,
            retry_max_ms: 1_000,
            deposit_confirmations: DEPOSIT_CONFIRMATIONS,
            ..AnchorConfig::default()
        };
        step.done(
            &self.progress,
            format!(
                "{} on {}, operator genesis {genesis}",
                bitcoind.version, bitcoind.url
            ),
        );
        self.btc = Some(BtcSide {
            bitcoind,
            user,
            genesis,
        });
        Ok(config)
    }

    /// The peg-in: the Bitcoin user pays alice's deposit address; the demo mines its
    /// confirmations until the node credits it. Returns the credit's transfer id.
    pub(super) fn peg_in(&mut self, alice: &Wallet, flows: &mut BitcoinFlows) -> Result<String> {
        let step = self.progress.step("peg-in", "alice's deposit address");
        let (address, _) = alice.deposit_address()?;
        let script = address
            .parse::<Address<bitcoin::address::NetworkUnchecked>>()?
            .require_network(BtcNetwork::Regtest)?
            .script_pubkey();
        let btc = self.btc.as_mut().expect("bitcoin is started");
        let tx = self
            .rt
            .block_on(btc.user.pay(&btc.bitcoind.rpc, script, DEPOSIT, PEG_IN_FEE))?;
        let outpoint = OutPoint::new(tx.compute_txid(), 0);
        flows.sats_in = DEPOSIT;
        flows.peg_in_fee = PEG_IN_FEE;
        flows.peg_in = Some(outpoint.to_string());
        let btc = self.btc.as_ref().expect("bitcoin is started");
        self.rt.block_on(btc.bitcoind.mine(1))?;
        let mut mined = 1;
        let begun = Instant::now();
        let transfer = loop {
            let seen = alice
                .peg_ins()?
                .into_iter()
                .find(|d| d.outpoint == outpoint.to_string());
            if let Some(d) = seen {
                match d.status.as_str() {
                    "credited" => {
                        break d
                            .transfer_id
                            .context("a credited peg-in without its transfer")?
                    }
                    "reorged_after_credit" => bail!("the peg-in left the best chain"),
                    _ => {
                        step.set(format!(
                            "{outpoint}: {}/{} confirmations",
                            d.confirmations.min(d.required),
                            d.required
                        ));
                        if d.confirmations >= mined && mined < d.required {
                            self.rt.block_on(btc.bitcoind.mine(1))?;
                            mined += 1;
                        }
                    }
                }
            }
            ensure!(
                begun.elapsed() < STEP_LIMIT,
                "timed out waiting for the node to credit peg-in {outpoint}"
            );
            std::thread::sleep(POLL);
        };
        step.done(
            &self.progress,
            format!(
                "{DEPOSIT} sat paid to alice's deposit address ({outpoint}), {mined} blocks mined, credited by the node"
            ),
        );
        Ok(transfer)
    }

    /// Satoshis the transaction `txid` pays to `dest`.
    pub(super) fn paid_to(&self, txid: &str, dest: &Address) -> Result<u64> {
        let btc = self.btc.as_ref().expect("bitcoin is started");
        let txid = Txid::from_str(txid)?;
        let tx = self
            .rt
            .block_on(btc.bitcoind.rpc.get_raw_transaction(&txid))?
            .with_context(|| format!("{txid} is not known to bitcoind"))?;
        Ok(tx
            .tx
            .output
            .iter()
            .filter(|o| o.script_pubkey == dest.script_pubkey())
            .map(|o| o.value.to_sat())
            .sum())
    }

    /// Mines until every batch is proven and anchored; returns the anchors.
    pub(super) fn wait_all_anchored(&self) -> Result<Vec<AnchorLine>> {
        let step = self.progress.step("anchors", "every batch anchored");
        let client = &self.node().client;
        self.wait_for("every batch to be anchored", || {
            let state = client.state()?;
            if state.proven_height < state.batch_height || state.batch_height == 0 {
                return Ok(None);
            }
            let last = client.batch(state.batch_height - 1)?;
            step.set(format!(
                "batch {}: {}",
                last.number,
                last.anchor
                    .as_ref()
                    .map_or("not signed", |a| a.status.as_str())
            ));
            Ok(last
                .anchor
                .is_some_and(|a| a.status == "anchored")
                .then_some(()))
        })?;
        let mut anchors: Vec<AnchorLine> = Vec::new();
        for n in 0..client.state()?.batch_height {
            let a = client
                .batch(n)?
                .anchor
                .with_context(|| format!("batch {n} has no anchor"))?;
            match anchors.last_mut() {
                Some(last) if last.txid == a.txid => last.last_batch = n,
                _ => anchors.push(AnchorLine {
                    txid: a.txid,
                    first_batch: n,
                    last_batch: n,
                    fee_sat: a.fee_sat,
                    vsize: a.vsize.unwrap_or(0),
                    block_height: a.block_height,
                }),
            }
        }
        step.done(
            &self.progress,
            format!(
                "{} anchors, {} sat of fees",
                anchors.len(),
                anchors.iter().map(|a| a.fee_sat).sum::<u64>()
            ),
        );
        Ok(anchors)
    }

    /// `verify-chain` over the node (with Bitcoin: every anchor too), then, with Bitcoin,
    /// `verify-chain --from-bitcoin`. Any problem is an error.
    pub(super) fn verify(&self, vk_path: &Path) -> Result<summary::Verified> {
        let step = self
            .progress
            .step("verify-chain", "every batch, proof and root");
        let btc = self.btc.as_ref();
        let audit = crate::verify_chain::audit_node(
            &self.node().client,
            vk_path,
            btc.map(|b| &b.bitcoind.rpc),
            btc.map(|b| b.genesis),
            1,
        )?;
        if let Some((n, problem)) = audit.problems.first() {
            bail!(
                "verify-chain found {} problems, first: batch {n}: {problem}",
                audit.problems.len()
            );
        }
        let mut verified = summary::Verified {
            batches: audit.batches,
            anchors: audit.anchors,
            from_bitcoin: None,
        };
        let Some(btc) = btc else {
            step.done(
                &self.progress,
                format!(
                    "ok: {} batches verified (one multi-pairing), roots chain from genesis",
                    audit.batches
                ),
            );
            return Ok(verified);
        };
        step.set("--from-bitcoin: following the chain of anchors from genesis");
        let read =
            crate::verify_from_bitcoin::read_chain(&btc.bitcoind.rpc, btc.genesis, vk_path, true)?;
        let reserves = veil_bitcoin::bridge::audit::audit_reserves(&read.walk, &read.replay, false);
        let problems: Vec<_> = read
            .replay
            .problems
            .iter()
            .chain(&reserves.problems)
            .collect();
        if let Some(p) = problems.first() {
            bail!(
                "verify-chain --from-bitcoin found {} problems, first: batch {}: {}",
                problems.len(),
                p.batch,
                p.message
            );
        }
        let rebuilt = read.replay.rebuilder.next_batch();
        ensure!(
            rebuilt == audit.batches as u64,
            "verify-chain --from-bitcoin rebuilt {rebuilt} batches, the node has {}",
            audit.batches
        );
        verified.from_bitcoin = Some(summary::FromBitcoin {
            batches: rebuilt,
            anchors: read.replay.anchors.len(),
            reserves_sat: reserves.reserves_sat,
            supply_sat: i64::try_from(reserves.supply_sat()).unwrap_or(i64::MAX),
            peg_ins: reserves.peg_ins,
            peg_outs: reserves.peg_outs,
        });
        step.done(
            &self.progress,
            format!(
                "ok: {} batches and {} anchors against Bitcoin; --from-bitcoin ok: rebuilt from genesis, reserves {} sat >= supply {} sat",
                audit.batches,
                audit.anchors,
                reserves.reserves_sat,
                reserves.supply_sat()
            ),
        );
        Ok(verified)
    }
}
