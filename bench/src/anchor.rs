//! `veil-bench anchor` (`make bench-anchor`): what settling on Bitcoin costs (issue 14). On a
//! throwaway regtest Bitcoin Core, one range anchor per size (1, 16, 64 and 256 private
//! transfers, batches of 16) is built over real anchor data (compact notes, 308 bytes per
//! transfer), checked by `testmempoolaccept`, sent and mined, chained from a funded genesis
//! output as the node chains them. The table gives each package's vbytes as Core counts them,
//! vbytes per transfer, and sats per transfer at 1, 10 and 50 sat/vB; then the time
//! `verify-chain --from-bitcoin` takes per 1,000 transfers on a real proven history
//! ([`crate::anchor_verify`]); written to `target/bench/anchor.md`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use bitcoin::{FeeRate, Network};
use sha2::{Digest, Sha256};
use veil_bitcoin::package::build_anchor_package;
use veil_bitcoin::payload::AnchorPayloadV2;
use veil_bitcoin::{BitcoinRpc, KeyKind, OperatorKey};
use veil_circuits::batch::BatchShape;
use veil_circuits::Fr;
use veil_fixtures::Scenario;
use veil_verifier::da::{AnchorData, BatchData, TransferData};

#[path = "../../bitcoin/tests/support/bitcoind.rs"]
mod bitcoind;

use crate::anchor_verify::{self, coinbase_prevout};
use crate::machine::Machine;

/// Arguments of `veil-bench anchor`.
#[derive(clap::Args)]
pub struct Args {
    /// Transfers per anchor, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    sizes: Vec<usize>,
    /// Transfers of the proven history `verify-chain --from-bitcoin` is timed on (a multiple of
    /// 32; 0 skips it).
    #[arg(long, default_value_t = 256)]
    verify_transfers: usize,
    /// Transfers per anchor in that history (a multiple of 16).
    #[arg(long, default_value_t = 64)]
    verify_per_anchor: usize,
    /// Output directory (default: `$CARGO_TARGET_DIR/bench`, else the workspace's `target/bench`).
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

/// Transfers per batch in the anchor data (the production `B`).
const BATCH: usize = 16;

/// `n` private transfers (no public amounts), as the anchor data carries them.
fn private_transfers(n: usize) -> Result<Vec<TransferData>> {
    let shape = BatchShape::new(BATCH, 16)?;
    let mut sc = Scenario::new(shape, 14);
    let alice = sc.new_key();
    let bob = sc.new_key();
    let deposits: Vec<_> = (0..=n)
        .map(|i| sc.deposit(&alice, 1_000 + i as u64))
        .collect();
    for chunk in deposits.chunks(BATCH) {
        sc.apply(chunk)?;
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = sc.pay(&alice, &bob, 10 + i as u64, 0, 0);
        sc.apply(std::slice::from_ref(&t))?;
        out.push(TransferData {
            public: t.public,
            ciphertexts: t.ciphertexts,
        });
    }
    Ok(out)
}

struct Row {
    transfers: usize,
    batches: usize,
    data_bytes: usize,
    commit_vb: u64,
    anchor_vb: u64,
}

/// Runs the benchmark.
pub fn run(args: Args) -> Result<()> {
    let out_dir = args.out_dir.unwrap_or_else(crate::default_out_dir);
    std::fs::create_dir_all(&out_dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let Some(btc) = runtime.block_on(bitcoind::Bitcoind::start_or_skip("bench-anchor")) else {
        bail!("no bitcoind: set VEIL_BITCOIND=/path/to/bitcoind (or run `make bitcoind`)");
    };
    let rpc: &BitcoinRpc = &btc.rpc;
    let key = OperatorKey::from_secret_bytes(&[0x44; 32])?;
    let addr = key.address(KeyKind::P2tr, Network::Regtest);
    // Two mature coinbases: one genesis for the cost rows, one for the verify history.
    let hashes = runtime.block_on(rpc.generate_to_address(102, &addr))?;
    let mut prev = coinbase_prevout(&runtime, rpc, &hashes[0])?;
    let verify_genesis = coinbase_prevout(&runtime, rpc, &hashes[1])?;
    let rate = FeeRate::from_sat_per_vb(1).context("1 sat/vB")?;
    let mut rows = Vec::new();
    let mut first_batch = 0u64;
    for &n in &args.sizes {
        let transfers = private_transfers(n)?;
        let batches: Vec<BatchData> = transfers
            .chunks(BATCH)
            .enumerate()
            .map(|(i, ts)| BatchData {
                proof: [i as u8 + 1; 128],
                transfers: ts.to_vec(),
            })
            .collect();
        let data = AnchorData {
            batch_size: BATCH as u64,
            first_batch,
            batches,
        };
        let bytes = data.encode()?;
        let data_hash: [u8; 32] = Sha256::digest(&bytes).into();
        let pcs = vec![[7u8; 32]; data.batches.len()];
        let payload = AnchorPayloadV2::new(first_batch, Fr::from(1u64), &data_hash, &pcs)?;
        let package = build_anchor_package(&key, &prev, &payload, &bytes, KeyKind::P2tr, rate)?;
        let mut vsizes = Vec::new();
        for tx in package.transactions() {
            let accept = runtime.block_on(rpc.test_mempool_accept(tx))?;
            if !accept.allowed {
                bail!(
                    "Bitcoin Core refused the package: {:?}",
                    accept.reject_reason
                );
            }
            vsizes.push(accept.vsize.unwrap_or(tx.vsize() as u64));
            runtime.block_on(rpc.send_raw_transaction(tx))?;
        }
        runtime.block_on(rpc.generate_to_address(1, &addr))?;
        rows.push(Row {
            transfers: n,
            batches: data.batches.len(),
            data_bytes: bytes.len(),
            commit_vb: vsizes[0],
            anchor_vb: *vsizes.last().expect("an anchor"),
        });
        prev = package.change();
        first_batch += data.batches.len() as u64;
    }
    let mut table = markdown(&Machine::collect(), &rows);
    if args.verify_transfers > 0 {
        let row = anchor_verify::measure(
            &runtime,
            rpc,
            &key,
            verify_genesis,
            &addr,
            &out_dir.join("keys"),
            args.verify_transfers,
            args.verify_per_anchor,
        )?;
        table += &row.markdown();
    }
    print!("{table}");
    let path = out_dir.join("anchor.md");
    std::fs::write(&path, &table).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn markdown(machine: &Machine, rows: &[Row]) -> String {
    let mut s = String::from("# Anchor cost (make bench-anchor)\n\n");
    s += &machine.markdown();
    s += "\nOne range anchor package (commit + anchor, P2TR, built at 1 sat/vB) per row, accepted \
          and mined by regtest Bitcoin Core; vbytes as Core reports them. Private transfers (no \
          public amounts), compact notes, batches of 16. Fees scale with the rate: sats per \
          transfer = vB per transfer x rate.\n\n";
    s += "| transfers | batches | data bytes | commit vB | anchor vB | total vB | vB/transfer | sat/transfer @1 | @10 | @50 |\n";
    s += "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for r in rows {
        let total = r.commit_vb + r.anchor_vb;
        let per = total as f64 / r.transfers as f64;
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {:.1} | {:.0} | {:.0} | {:.0} |\n",
            r.transfers,
            r.batches,
            r.data_bytes,
            r.commit_vb,
            r.anchor_vb,
            total,
            per,
            per,
            per * 10.0,
            per * 50.0
        );
    }
    s
}
