//! `veil verify-chain`: audits a node's whole history against Bitcoin (DESIGN §11). Downloads
//! every batch, recomputes each `batch_hash` from the published transfers, checks that each
//! transfer's published notes carry its commitments, its output rhos and the ciphertexts its
//! spender signed (`ciphertext_hash`), checks the state roots chain from the genesis root,
//! verifies every proof with one multi-pairing (and, if that fails, one by one to name the bad
//! ones), then fetches each anchor transaction from Bitcoin Core and checks that it is in the
//! best chain, that its `OP_RETURN` payload commits to the batch's number, new state root and
//! `sha256(proof || batch_hash)`, and that the anchors form one unbroken chain of spends
//! (anchor `n` spends anchor `n - 1`'s change output).
//!
//! Only the node's published data, the verifying key and Bitcoin are trusted; the txid the node
//! names is just where to look (a block hash hint lets Bitcoin Core without `-txindex` find a
//! confirmed anchor). Exit 0 when everything holds; otherwise exit 1 with one line per problem,
//! each naming its batch (`batch N: ...`); exit 2 with one `error: ...` line when the node or
//! Bitcoin Core cannot be queried at all. [`audit_node`] is the audit itself, without printing
//! (`veil demo` runs it, on a node without Bitcoin without the anchor checks).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use ark_bn254::Bn254;
use ark_groth16::Proof;
use bitcoin::{BlockHash, OutPoint, Transaction, Txid};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use veil_bitcoin::package::read_package;
use veil_bitcoin::payload::{AnchorPayloadAny, AnchorPayloadV2};
use veil_bitcoin::tx::CHANGE_VOUT;
use veil_bitcoin::{proof_commitment, BitcoinRpc};
use veil_circuits::batch::BatchPublicInputs;
use veil_circuits::field::to_hex;
use veil_circuits::note::{ciphertext_hash, output_rho};
use veil_circuits::Fr;
use veil_prover::keys::{self, KeyKind};
use veil_prover::proof::proof_from_hex;
use veil_verifier::da::{AnchorData, BatchData, TransferData};
use veil_wallet::client::{BatchInfo, PublishedNote};
use veil_wallet::NodeClient;

use crate::util;

/// Arguments of `veil verify-chain`.
#[derive(clap::Args)]
pub struct Args {
    /// Node URL (default: $VEIL_NODE, else http://127.0.0.1:8080).
    #[arg(long)]
    node: Option<String>,
    /// Bitcoin Core.
    #[command(flatten)]
    bitcoin: util::BitcoinArgs,
    /// Verifying key file, or a directory holding `vk-B{B}-D{D}.bin` for the node's shape.
    #[arg(long, default_value = "keys")]
    vk: PathBuf,
    /// The genesis outpoint (TXID:VOUT) batch 0's anchor must spend; unchecked if not given
    /// (the one found is printed).
    #[arg(long)]
    genesis: Option<String>,
    /// Confirmations each anchor needs.
    #[arg(long, default_value_t = 1)]
    min_confirmations: u64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Trust nothing but Bitcoin: follow the chain of anchors from --genesis, read every
    /// envelope, rebuild the state and verify every proof, without a node (--node is ignored).
    #[arg(long, requires = "genesis")]
    from_bitcoin: bool,
    /// With --from-bitcoin: accept deposits that name no swept peg-in output (the operator's
    /// word, as a node without the bridge credits them); they are counted, not reported.
    #[arg(long, requires = "from_bitcoin")]
    allow_attested: bool,
}

/// What one batch's checks derived (for its anchor's checks).
struct Derived {
    new_root: Fr,
    batch_hash: Fr,
    proof_bytes: Vec<u8>,
}

struct Problems(Vec<(u64, String)>);

impl Problems {
    fn add(&mut self, batch: u64, msg: impl Into<String>) {
        self.0.push((batch, msg.into()));
    }
}

fn resolve_vk(vk: &Path, batch_size: Option<usize>, depth: Option<usize>) -> Result<PathBuf> {
    if !vk.is_dir() {
        return Ok(vk.to_owned());
    }
    let (Some(b), Some(d)) = (batch_size, depth) else {
        bail!(
            "the node does not report its shape: pass the verifying key file to --vk instead of {}",
            vk.display()
        );
    };
    let shape = util::shape(b, d)?;
    Ok(vk.join(keys::key_file_name(KeyKind::Verifying, shape)))
}

/// Runs the command.
pub fn run(args: Args) -> Result<ExitCode> {
    let expected_genesis = args
        .genesis
        .as_deref()
        .map(|g| OutPoint::from_str(g).with_context(|| format!("--genesis {g:?} is not TXID:VOUT")))
        .transpose()?;

    if args.from_bitcoin {
        let genesis = expected_genesis.context("--from-bitcoin needs --genesis TXID:VOUT")?;
        let rpc = args.bitcoin.rpc()?;
        return crate::verify_from_bitcoin::run(
            rpc,
            genesis,
            &args.vk,
            args.min_confirmations,
            args.allow_attested,
            args.json,
        );
    }

    let client = NodeClient::new(&crate::wallet::node_url(args.node))?;
    let rpc = args.bitcoin.rpc()?;
    let audit = audit_node(
        &client,
        &args.vk,
        Some(&rpc),
        expected_genesis,
        args.min_confirmations,
    )?;
    let NodeAudit {
        batches,
        final_root,
        chain,
        anchors,
        genesis,
        vk_sha256,
        problems,
    } = audit;
    let chain = chain.unwrap_or_default();
    let ok = problems.is_empty();
    if args.json {
        let list: Vec<Value> = problems
            .iter()
            .map(|(b, m)| json!({"batch": b, "problem": m}))
            .collect();
        println!(
            "{}",
            json!({
                "ok": ok,
                "batches": batches,
                "chain": chain,
                "anchors": anchors,
                "genesis": genesis.map(|g| g.to_string()),
                "vk_sha256": vk_sha256,
                "problems": list,
            })
        );
    } else if ok {
        let last = final_root
            .map(|r| format!(", final root {}", to_hex(&r)))
            .unwrap_or_default();
        println!(
            "ok: {batches} batches verified (one multi-pairing), roots chain from genesis{last}; {anchors} anchors on {chain} chain from {}",
            genesis.map_or_else(|| "-".to_owned(), |g| g.to_string()),
        );
    } else {
        for (b, m) in &problems {
            println!("batch {b}: {m}");
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What [`audit_node`] found.
pub struct NodeAudit {
    /// Batches audited.
    pub batches: usize,
    /// The last batch's new state root, as the node states it.
    pub final_root: Option<Fr>,
    /// Bitcoin Core's chain (`None` when anchors were not checked).
    pub chain: Option<String>,
    /// Anchors found and checked.
    pub anchors: u64,
    /// The outpoint batch 0's anchor spends.
    pub genesis: Option<OutPoint>,
    /// SHA-256 of the verifying key file.
    pub vk_sha256: String,
    /// Every problem found, with its batch; empty when everything holds.
    pub problems: Vec<(u64, String)>,
}

/// The audit of `veil verify-chain` (and `veil demo`): downloads the node's whole history,
/// checks every batch's published data and notes and its root chain, verifies every proof
/// (one multi-pairing), and, given Bitcoin Core (`rpc`), each batch's anchor and the chain of
/// anchors (from `expected_genesis` when given). `vk` is a verifying key file, or a directory
/// holding the one of the node's shape. Errors only when the node or Bitcoin Core cannot be
/// queried or the key not read; problems are in [`NodeAudit::problems`].
pub fn audit_node(
    client: &NodeClient,
    vk: &Path,
    rpc: Option<&BitcoinRpc>,
    expected_genesis: Option<OutPoint>,
    min_confirmations: u64,
) -> Result<NodeAudit> {
    // Everything from the node first (its client is blocking), then Bitcoin.
    let state = client.state()?;
    let vk_path = resolve_vk(vk, state.batch_size, state.depth)?;
    let header = keys::read_header(&vk_path)?;
    if header.kind != KeyKind::Verifying {
        bail!("{} is not a verifying key", vk_path.display());
    }
    let shape = util::shape(header.batch_size as usize, header.depth as usize)?;
    let vk = keys::load_verifying_key(&vk_path, shape)?;
    let mut batches = Vec::with_capacity(state.batch_height as usize);
    for n in 0..state.batch_height {
        batches.push(
            client
                .batch(n)
                .with_context(|| format!("downloading batch {n}"))?,
        );
    }

    let notes = download_notes(client)?;

    let mut problems = Problems(Vec::new());
    let derived = check_batches(&batches, shape, &vk.vk, &mut problems)?;
    let ciphertexts = check_notes(&batches, &notes, &mut problems);
    let data = node_anchor_data(&batches, &derived, &ciphertexts);
    let node = NodeHistory {
        batch_size: shape.batch_size as u64,
        batches: &batches,
        derived: &derived,
        data: &data,
    };

    let (chain, genesis, anchors) = match rpc {
        Some(rpc) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let (chain, genesis, anchors) = runtime.block_on(check_anchors(
                rpc,
                &node,
                expected_genesis,
                min_confirmations,
                &mut problems,
            ))?;
            (Some(chain), genesis, anchors)
        }
        None => (None, None, 0),
    };
    Ok(NodeAudit {
        batches: batches.len(),
        final_root: batches.last().map(|b| b.public_inputs.new_state_root),
        chain,
        anchors,
        genesis,
        vk_sha256: vk.sha256,
        problems: problems.0,
    })
}

fn check_batches(
    batches: &[BatchInfo],
    shape: veil_circuits::batch::BatchShape,
    vk: &ark_groth16::VerifyingKey<Bn254>,
    problems: &mut Problems,
) -> Result<Vec<Option<Derived>>> {
    let mut root = veil_verifier::genesis_state_root(shape.depth)?;
    let mut items: Vec<(BatchPublicInputs, Proof<Bn254>)> = Vec::new();
    let mut item_batch = Vec::new();
    let mut derived = Vec::with_capacity(batches.len());
    for (n, b) in batches.iter().enumerate() {
        let n = n as u64;
        if b.number != n {
            problems.add(n, format!("the node sent batch {} instead", b.number));
            derived.push(None);
            continue;
        }
        let stated = b.public_inputs;
        let hash =
            match veil_verifier::batch_hash_from_published(n, shape.batch_size, &b.public_data) {
                Ok(h) => h,
                Err(e) => {
                    problems.add(n, format!("published data: {e}"));
                    derived.push(None);
                    root = stated.new_state_root;
                    continue;
                }
            };
        if hash != stated.batch_hash {
            problems.add(
                n,
                format!(
                    "batch_hash {} stated by the node is not the hash of its published transfers ({})",
                    to_hex(&stated.batch_hash),
                    to_hex(&hash)
                ),
            );
        }
        if stated.old_state_root != root {
            let from = if n == 0 {
                "the genesis root".to_owned()
            } else {
                format!("batch {}'s new root", n - 1)
            };
            problems.add(
                n,
                format!(
                    "old_state_root {} does not chain from {from} {}",
                    to_hex(&stated.old_state_root),
                    to_hex(&root)
                ),
            );
        }
        let inputs = BatchPublicInputs {
            old_state_root: root,
            new_state_root: stated.new_state_root,
            batch_hash: hash,
        };
        root = stated.new_state_root;
        let Some(proof_hex) = b.proof.as_deref() else {
            problems.add(n, format!("not proven ({})", b.status));
            derived.push(None);
            continue;
        };
        let proof = match proof_from_hex(proof_hex) {
            Ok(p) => p,
            Err(e) => {
                problems.add(n, format!("proof does not decode: {e}"));
                derived.push(None);
                continue;
            }
        };
        items.push((inputs, proof));
        item_batch.push(n);
        derived.push(Some(Derived {
            new_root: stated.new_state_root,
            batch_hash: hash,
            proof_bytes: hex::decode(proof_hex).context("proof hex")?,
        }));
    }
    let pvk = veil_verifier::prepare(vk);
    if !veil_verifier::verify_batch(&pvk, &items, &mut rand::rngs::OsRng)? {
        for ((inputs, proof), n) in items.iter().zip(&item_batch) {
            if !veil_verifier::verify(&pvk, inputs, proof)? {
                problems.add(
                    *n,
                    "the proof does not verify for its published data and chained roots",
                );
            }
        }
    }
    Ok(derived)
}

/// Every published note, by position (`GET /v1/notes`, page by page).
fn download_notes(client: &NodeClient) -> Result<BTreeMap<u64, PublishedNote>> {
    const PAGE: usize = 1000;
    let mut notes = BTreeMap::new();
    let mut from = 0;
    loop {
        let page = client
            .notes(from, PAGE)
            .with_context(|| format!("downloading notes from {from}"))?;
        let full = page.notes.len() == PAGE;
        notes.extend(page.notes.into_iter().map(|n| (n.position, n)));
        if !full || page.next <= from {
            break;
        }
        from = page.next;
    }
    Ok(notes)
}

/// Each transfer's published notes are the ones it committed to and signed: the commitment at
/// `note_start + 2s + j` is the transfer's `cm_j`, its rho is `H(nf_1, j)` (which its recipient
/// decrypts with), and the hash of the two published ciphertexts is the `ciphertext_hash` the
/// spender signed (and the batch hash carries). A node that publishes other ciphertexts or rhos
/// would leave the recipient unable to find the note; this names it.
fn check_notes(
    batches: &[BatchInfo],
    notes: &BTreeMap<u64, PublishedNote>,
    problems: &mut Problems,
) -> Vec<Option<Vec<[Vec<u8>; 2]>>> {
    let mut published = Vec::with_capacity(batches.len());
    for b in batches {
        let Some(start) = b.note_start else {
            problems.add(
                b.number,
                "the node does not say where the batch's notes are",
            );
            published.push(None);
            continue;
        };
        let mut batch_cts = Some(Vec::with_capacity(b.public_data.len()));
        for (s, public) in b.public_data.iter().enumerate() {
            let mut ciphertexts: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
            let mut complete = true;
            for (j, ciphertext) in ciphertexts.iter_mut().enumerate() {
                let position = start + (2 * s + j) as u64;
                let Some(note) = notes.get(&position) else {
                    problems.add(b.number, format!("note {position} is not published"));
                    complete = false;
                    continue;
                };
                if veil_circuits::field::from_hex(&note.commitment).ok()
                    != Some(public.commitments[j])
                {
                    problems.add(
                        b.number,
                        format!(
                            "note {position}: published commitment is not transfer {s}'s cm_{j}"
                        ),
                    );
                }
                // The recipient decrypts with the published rho: it must be H(nf_1, j).
                let rho = output_rho(public.nullifiers[0], j as u64 + 1);
                if veil_circuits::field::from_hex(&note.rho).ok() != Some(rho) {
                    problems.add(
                        b.number,
                        format!(
                            "note {position}: published rho is not H(nf_1, {}) of transfer {s}",
                            j + 1
                        ),
                    );
                }
                match hex::decode(&note.ciphertext) {
                    Ok(ct) => *ciphertext = ct,
                    Err(_) => {
                        problems.add(b.number, format!("note {position}: ciphertext is not hex"));
                        complete = false;
                    }
                }
            }
            if complete && ciphertext_hash(&ciphertexts) != public.ciphertext_hash {
                problems.add(
                    b.number,
                    format!(
                        "transfer {s}: published ciphertexts are not the ones its spender signed"
                    ),
                );
            }
            match (&mut batch_cts, complete) {
                (Some(v), true) => v.push(ciphertexts),
                _ => batch_cts = None,
            }
        }
        published.push(batch_cts);
    }
    published
}

/// The transaction `txid` with its confirmations: from the mempool or `-txindex`, else from
/// the hinted block (0 confirmations if that block is not in the best chain).
async fn fetch_tx(
    rpc: &BitcoinRpc,
    txid: &Txid,
    hint: Option<BlockHash>,
) -> Result<Option<(Transaction, u64)>> {
    if let Some(rt) = rpc.get_raw_transaction(txid).await? {
        return Ok(Some((rt.tx, rt.confirmations)));
    }
    let Some(hash) = hint else {
        return Ok(None);
    };
    let v: Value = match rpc
        .call(
            "getrawtransaction",
            vec![
                json!(txid.to_string()),
                json!(true),
                json!(hash.to_string()),
            ],
        )
        .await
    {
        Ok(v) => v,
        Err(veil_bitcoin::RpcError::Rpc { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let hex = v["hex"].as_str().context("getrawtransaction: no hex")?;
    let tx: Transaction =
        bitcoin::consensus::encode::deserialize_hex(hex).context("getrawtransaction: bad hex")?;
    let confs = if v["in_active_chain"].as_bool() == Some(true) {
        v["confirmations"].as_u64().unwrap_or(0)
    } else {
        0
    };
    Ok(Some((tx, confs)))
}

/// Each batch's data as it goes on Bitcoin (`None` where the node's data is incomplete, which
/// is reported already).
fn node_anchor_data(
    batches: &[BatchInfo],
    derived: &[Option<Derived>],
    ciphertexts: &[Option<Vec<[Vec<u8>; 2]>>],
) -> Vec<Option<BatchData>> {
    batches
        .iter()
        .zip(derived)
        .zip(ciphertexts)
        .map(|((b, d), cts)| {
            let proof = d.as_ref()?.proof_bytes.as_slice().try_into().ok()?;
            let transfers = b
                .public_data
                .iter()
                .zip(cts.as_ref()?)
                .map(|(public, cts)| TransferData {
                    public: *public,
                    ciphertexts: cts.clone(),
                })
                .collect();
            Some(BatchData { proof, transfers })
        })
        .collect()
}

/// What the node published, with what the batch checks derived from it.
struct NodeHistory<'a> {
    batch_size: u64,
    batches: &'a [BatchInfo],
    derived: &'a [Option<Derived>],
    data: &'a [Option<BatchData>],
}

/// An anchor transaction as found on Bitcoin.
struct FoundAnchor {
    txid: Txid,
    tx: Transaction,
    confirmations: u64,
    hint: Option<BlockHash>,
}

async fn find_anchor(
    rpc: &BitcoinRpc,
    n: u64,
    b: &BatchInfo,
    problems: &mut Problems,
) -> Result<Option<FoundAnchor>> {
    let Some(a) = &b.anchor else {
        problems.add(n, "not anchored");
        return Ok(None);
    };
    let Ok(txid) = Txid::from_str(&a.txid) else {
        problems.add(n, format!("anchor txid {:?} is not a txid", a.txid));
        return Ok(None);
    };
    let hint = a
        .block_hash
        .as_deref()
        .and_then(|h| BlockHash::from_str(h).ok());
    let Some((tx, confirmations)) = fetch_tx(rpc, &txid, hint).await? else {
        problems.add(n, format!("anchor {txid} is not known to Bitcoin Core"));
        return Ok(None);
    };
    if tx.compute_txid() != txid {
        problems.add(
            n,
            format!("Bitcoin Core returned another transaction for {txid}"),
        );
        return Ok(None);
    }
    Ok(Some(FoundAnchor {
        txid,
        tx,
        confirmations,
        hint,
    }))
}

/// Checks a version 2 anchor of batches `n..` against the node's data; returns the outpoint
/// its package spends (the commit's input) and the number of batches it covers.
async fn check_range_anchor(
    rpc: &BitcoinRpc,
    n: u64,
    found: &FoundAnchor,
    p: &AnchorPayloadV2,
    node: &NodeHistory<'_>,
    problems: &mut Problems,
) -> Result<(Option<OutPoint>, u64)> {
    let (batches, derived) = (node.batches, node.derived);
    let txid = found.txid;
    let count = u64::from(p.count);
    let last = p.last_batch();
    if p.first_batch != n {
        problems.add(
            n,
            format!(
                "anchor {txid} is for batches {}..={last}, not from batch {n}",
                p.first_batch
            ),
        );
        return Ok((None, 1));
    }
    if last as usize >= batches.len() {
        problems.add(
            n,
            format!(
                "anchor {txid} covers batches {n}..={last}, the node has {}",
                batches.len()
            ),
        );
        return Ok((None, batches.len() as u64 - n));
    }
    let range = n as usize..=last as usize;
    for m in range.clone().skip(1) {
        let named = batches[m].anchor.as_ref().map(|a| a.txid.as_str());
        if named != Some(txid.to_string().as_str()) {
            problems.add(
                m as u64,
                format!("anchor {txid} covers this batch, the node names {named:?}"),
            );
        }
    }
    let node_data: Option<AnchorData> = range
        .clone()
        .map(|m| node.data[m].clone())
        .collect::<Option<Vec<_>>>()
        .map(|batches| AnchorData {
            batch_size: node.batch_size,
            first_batch: n,
            batches,
        });
    let commitments: Option<Vec<[u8; 32]>> = range
        .clone()
        .map(|m| {
            let d = derived[m].as_ref()?;
            proof_commitment(&d.proof_bytes, &d.batch_hash).ok()
        })
        .collect();
    let encoded = node_data.as_ref().and_then(|d| d.encode().ok());
    if let (Some(bytes), Some(pcs)) = (&encoded, &commitments) {
        let hash: [u8; 32] = Sha256::digest(bytes).into();
        if !p.commits_to(&hash, pcs) {
            problems.add(
                n,
                format!(
                    "anchor {txid}'s range commitment is not over the node's data and the proof commitments sha256(proof || batch_hash) of batches {n}..={last}"
                ),
            );
        }
    }
    if let Some(d) = &derived[last as usize] {
        if p.new_state_root != d.new_root {
            problems.add(
                last,
                format!(
                    "anchor {txid} commits to root {}, the batch's new root is {}",
                    to_hex(&p.new_state_root),
                    to_hex(&d.new_root)
                ),
            );
        }
    }
    // The envelope the anchor reveals carries the same data (one-envelope packages; larger
    // ones are read in full by `--from-bitcoin`).
    let Some(input) = found.tx.input.first().map(|i| i.previous_output) else {
        problems.add(n, format!("anchor {txid} has no input"));
        return Ok((None, count));
    };
    let Some((commit, _)) = fetch_tx(rpc, &input.txid, found.hint).await? else {
        problems.add(
            n,
            format!("anchor {txid} spends {input}, whose transaction Bitcoin Core does not know"),
        );
        return Ok((None, count));
    };
    if commit.output.len() == 1 {
        match read_package(&commit, &[], &found.tx) {
            Ok(contents) => {
                if let Some(bytes) = &encoded {
                    if &contents.data != bytes {
                        problems.add(
                            n,
                            format!(
                                "anchor {txid}'s envelope does not carry the node's data for batches {n}..={last}"
                            ),
                        );
                    }
                }
            }
            Err(e) => problems.add(n, format!("anchor {txid}'s envelope does not read: {e}")),
        }
    }
    Ok((commit.input.first().map(|i| i.previous_output), count))
}

async fn check_anchors(
    rpc: &BitcoinRpc,
    node: &NodeHistory<'_>,
    expected_genesis: Option<OutPoint>,
    min_confirmations: u64,
    problems: &mut Problems,
) -> Result<(String, Option<OutPoint>, u64)> {
    let info = rpc
        .get_blockchain_info()
        .await
        .context("querying Bitcoin Core")?;
    let mut genesis = None;
    let (batches, derived) = (node.batches, node.derived);
    let mut prev: Option<(u64, Txid)> = None;
    let mut anchors = 0;
    let mut n = 0u64;
    while (n as usize) < batches.len() {
        let b = &batches[n as usize];
        let Some(found) = find_anchor(rpc, n, b, problems).await? else {
            prev = None;
            n += 1;
            continue;
        };
        anchors += 1;
        let txid = found.txid;
        // Whatever else is wrong, the next anchor must spend this one.
        let this_prev = prev.replace((n, txid));
        if found.confirmations < min_confirmations {
            problems.add(
                n,
                format!(
                    "anchor {txid} has {} confirmations in the best chain, fewer than {min_confirmations}",
                    found.confirmations
                ),
            );
        }
        let (spends, count) = match AnchorPayloadAny::from_tx(&found.tx) {
            Err(e) => {
                problems.add(n, format!("anchor {txid} carries no Veil payload: {e}"));
                (None, 1)
            }
            Ok(AnchorPayloadAny::V1(p)) => {
                if p.batch_number != n {
                    problems.add(n, format!("anchor {txid} is for batch {}", p.batch_number));
                }
                if let Some(d) = &derived[n as usize] {
                    if p.new_state_root != d.new_root {
                        problems.add(
                            n,
                            format!(
                                "anchor {txid} commits to root {}, the batch's new root is {}",
                                to_hex(&p.new_state_root),
                                to_hex(&d.new_root)
                            ),
                        );
                    }
                    if !p.commits_to(&d.proof_bytes, &d.batch_hash) {
                        problems.add(
                            n,
                            format!("anchor {txid}'s proof commitment is not sha256(proof || batch_hash) of the batch"),
                        );
                    }
                }
                if found.tx.input.len() != 1 {
                    problems.add(
                        n,
                        format!("anchor {txid} has {} inputs, not 1", found.tx.input.len()),
                    );
                }
                (found.tx.input.first().map(|i| i.previous_output), 1)
            }
            Ok(AnchorPayloadAny::V2(p)) => {
                check_range_anchor(rpc, n, &found, &p, node, problems).await?
            }
        };
        if let Some(spends) = spends {
            if n == 0 {
                genesis = Some(spends);
                if let Some(g) = expected_genesis.filter(|g| *g != spends) {
                    problems.add(
                        0,
                        format!("anchor {txid} spends {spends}, not the genesis outpoint {g}"),
                    );
                }
            } else {
                match this_prev {
                    Some((_, p)) if spends == OutPoint::new(p, CHANGE_VOUT) => {}
                    Some((first, p)) => problems.add(
                        n,
                        format!("anchor {txid}'s package spends {spends}, not the change {p}:{CHANGE_VOUT} of the anchor of batch {first}: the chain of anchors is broken"),
                    ),
                    // The previous anchor is already reported.
                    None => {}
                }
            }
        }
        n += count.max(1);
    }
    Ok((info.chain, genesis, anchors))
}
