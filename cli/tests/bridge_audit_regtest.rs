//! The bridge's reserve audit against a deliberately misbehaving operator (issue 15,
//! `docs/bridge.md`): a real regtest Bitcoin Core and the real `veil verify-chain
//! --from-bitcoin`. No node: the test is the operator. It builds each batch with the fixtures'
//! scenario, proves it with the dev keys, and anchors it with the operator key
//! (`build_bridge_package`), choosing which peg-in outputs the commit sweeps and what the anchor
//! pays.
//!
//! Anchor 0 is honest: a deposit swept at its amount and a withdrawal paid exactly, and the audit
//! exits 0. Each later anchor cheats once, and each cheat adds exactly one precise line to an
//! exit-1 audit: a deposit credited above its output's value, an outpoint credited a second
//! time, a withdrawal underpaid, and a withdrawal not paid at all.
//!
//! Skipped, with a notice, only when no `bitcoind` is found (`VEIL_BITCOIND=/path/to/bitcoind`).

mod support;

use bitcoin::{Amount, FeeRate, OutPoint, ScriptBuf, TxOut, Txid};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use support::{keys_dir, shape, BtcUser, Chain};
use veil_bitcoin::bridge::deposit_script_pubkey;
use veil_bitcoin::bridge::flows::{BridgeFlows, Sweep};
use veil_bitcoin::package::{build_bridge_package, AnchorPackage};
use veil_bitcoin::payload::AnchorPayloadV2;
use veil_bitcoin::refs::{deposit_ref, withdrawal_dest};
use veil_bitcoin::{proof_commitment, KeyKind, PrevOut};
use veil_circuits::transfer::{OutputSpec, PublicAmounts, Transfer};
use veil_circuits::SpendingKey;
use veil_fixtures::Scenario;
use veil_verifier::da::{AnchorData, BatchData, TransferData};

/// The operator gone bad: the scenario's state, the proving key, the chain's change.
struct Operator<'a> {
    chain: &'a Chain,
    sc: Scenario,
    pk: ark_groth16::ProvingKey<ark_bn254::Bn254>,
    prev: PrevOut,
    next: u64,
    rng: ChaCha20Rng,
}

impl Operator<'_> {
    /// Proves `transfers` as the next batch and anchors it, sweeping and paying `flows`.
    fn anchor(&mut self, transfers: &[Transfer], flows: BridgeFlows) -> AnchorPackage {
        let built = self.sc.apply(transfers).unwrap();
        let proof = veil_prover::prove(&self.pk, built.circuit(), &mut self.rng).unwrap();
        let proof = veil_prover::proof::proof_to_bytes(&proof);
        let data = AnchorData {
            batch_size: shape().batch_size as u64,
            first_batch: self.next,
            batches: vec![BatchData {
                proof,
                transfers: transfers
                    .iter()
                    .map(|t| TransferData {
                        public: t.public,
                        ciphertexts: t.ciphertexts.clone(),
                    })
                    .collect(),
            }],
        };
        let pc = proof_commitment(&proof, &built.public_inputs.batch_hash).unwrap();
        let payload = AnchorPayloadV2::new(
            self.next,
            built.public_inputs.new_state_root,
            &data.data_hash().unwrap(),
            &[pc],
        )
        .unwrap();
        let p = build_bridge_package(
            &self.chain.key,
            &self.prev,
            &payload,
            &data.encode().unwrap(),
            KeyKind::P2tr,
            FeeRate::from_sat_per_vb(2).unwrap(),
            &flows,
        )
        .unwrap();
        for tx in p.transactions() {
            self.chain
                .rt
                .block_on(self.chain.btc.rpc.send_raw_transaction(tx))
                .unwrap();
        }
        self.chain.mine(1);
        self.prev = p.change();
        self.next += 1;
        p
    }

    /// A withdrawal of `amount` to `script` from `from`'s oldest note (change back).
    fn withdrawal(&mut self, from: &SpendingKey, amount: u64, script: &ScriptBuf) -> Transfer {
        let note = self.sc.unspent(from)[0];
        let me = from.payment_address();
        let inputs = [note, Transfer::dummy_input(from, self.sc.rng())];
        Transfer::create(
            from,
            inputs,
            [
                OutputSpec {
                    to: me,
                    value: note.note.value - amount - 100,
                },
                OutputSpec { to: me, value: 0 },
            ],
            PublicAmounts {
                public_out: amount,
                fee: 100,
                dest: withdrawal_dest(script),
                ..Default::default()
            },
            self.sc.rng(),
        )
    }
}

/// `verify-chain --from-bitcoin` (strict): its exit code and output lines.
fn audit(chain: &Chain) -> (Option<i32>, Vec<String>) {
    let (code, out) = chain.verify_from_bitcoin_with(&[]);
    (code, out.lines().map(str::to_owned).collect())
}

#[test]
fn verify_chain_catches_each_bridge_cheat_with_one_precise_line() {
    let test = "verify_chain_catches_each_bridge_cheat_with_one_precise_line";
    let Some(chain) = Chain::start(test, KeyKind::P2tr) else {
        return;
    };
    let (pk, _) =
        veil_prover::load_or_setup_dev_keys(keys_dir().parent().unwrap(), shape(), 1).unwrap();
    let genesis = chain
        .rt
        .block_on(chain.btc.rpc.get_tx_out(&chain.genesis, true))
        .unwrap()
        .unwrap();
    let mut op = Operator {
        chain: &chain,
        sc: Scenario::new(shape(), 77),
        pk,
        prev: PrevOut {
            outpoint: chain.genesis,
            txout: TxOut {
                value: genesis.value,
                script_pubkey: genesis.script_pubkey,
            },
        },
        next: 0,
        rng: ChaCha20Rng::seed_from_u64(77),
    };
    let alice = op.sc.new_key();
    let to = alice.payment_address();

    // Two peg-ins to Alice's deposit address: 50,000 and 60,000 sat.
    let mut user = BtcUser::funded(&chain, 0x55);
    let script = deposit_script_pubkey(
        &bitcoin::secp256k1::Secp256k1::verification_only(),
        &chain.key.internal_key(),
        &to,
    )
    .unwrap();
    let txid: Txid = user.pay(
        &chain,
        &[(script.clone(), 50_000), (script.clone(), 60_000)],
    );
    chain.mine(1);
    let coin = |vout: u32, sat: u64| Sweep {
        prev: PrevOut {
            outpoint: OutPoint::new(txid, vout),
            txout: TxOut {
                value: Amount::from_sat(sat),
                script_pubkey: script.clone(),
            },
        },
        owner: to,
    };
    let o1 = OutPoint::new(txid, 0);
    let o2 = OutPoint::new(txid, 1);
    let payee = user.address.script_pubkey();
    let payout = |sat: u64| TxOut {
        value: Amount::from_sat(sat),
        script_pubkey: payee.clone(),
    };

    // 0. Honest: the 50,000 sat deposit swept; then a withdrawal of 10,000 paid exactly.
    let d1 = op.sc.deposit_with_ref(&alice, 50_000, deposit_ref(&o1));
    op.anchor(
        &[d1],
        BridgeFlows {
            sweeps: vec![coin(0, 50_000)],
            payouts: vec![],
        },
    );
    let w = op.withdrawal(&alice, 10_000, &payee);
    let honest = op.anchor(
        &[w],
        BridgeFlows {
            sweeps: vec![],
            payouts: vec![payout(10_000)],
        },
    );
    let (code, lines) = audit(&chain);
    assert_eq!(code, Some(0), "{lines:?}");
    assert!(
        lines[1].starts_with("bridge: reserves ") && lines[1].contains("1 peg-ins, 1 peg-outs"),
        "{lines:?}"
    );
    assert_eq!(
        honest.anchor.output[2].value.to_sat(),
        10_000,
        "the honest anchor pays the withdrawal"
    );

    // 1. The 60,000 sat output credited as 70,000.
    let d2 = op.sc.deposit_with_ref(&alice, 70_000, deposit_ref(&o2));
    let cheat = op.anchor(
        &[d2],
        BridgeFlows {
            sweeps: vec![coin(1, 60_000)],
            payouts: vec![],
        },
    );
    let (code, lines) = audit(&chain);
    assert_eq!(code, Some(1), "{lines:?}");
    assert_eq!(
        lines,
        vec![format!(
            "batch 2: deposit credits 70000 sat for output {o2}, which holds 60000 sat"
        )],
        "anchor {}",
        cheat.anchor_txid()
    );

    // 2. The first output credited a second time (nothing left to sweep).
    let again = op.sc.deposit_with_ref(&alice, 50_000, deposit_ref(&o1));
    op.anchor(&[again], BridgeFlows::default());
    let (code, lines) = audit(&chain);
    assert_eq!(code, Some(1), "{lines:?}");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[1].starts_with("batch 3: deposit_ref ")
            && lines[1].ends_with(&format!(
                "(output {o1}) is credited again; it was credited in batch 0"
            )),
        "{lines:?}"
    );

    // 3. A withdrawal of 10,000 paid 9,000.
    let w = op.withdrawal(&alice, 10_000, &payee);
    let under = op.anchor(
        &[w],
        BridgeFlows {
            sweeps: vec![],
            payouts: vec![payout(9_000)],
        },
    );
    let (code, lines) = audit(&chain);
    assert_eq!(code, Some(1), "{lines:?}");
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(
        lines[2],
        format!(
            "batch 4: withdrawal of 10000 sat is paid 9000 sat by output 2 of anchor {}",
            under.anchor_txid()
        )
    );

    // 4. A withdrawal not paid at all.
    let w = op.withdrawal(&alice, 10_000, &payee);
    let dest = veil_circuits::field::to_hex(&w.public.dest);
    let omitted = op.anchor(&[w], BridgeFlows::default());
    let (code, lines) = audit(&chain);
    assert_eq!(code, Some(1), "{lines:?}");
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(
        lines[3],
        format!(
            "batch 5: withdrawal of 10000 sat (dest {dest}) is not paid by anchor {}",
            omitted.anchor_txid()
        )
    );
}
